/*
 * The PhoenixKit V40 migration engine: brings every legacy table to
 * `uuid uuid NOT NULL DEFAULT <prefix>.uuid_generate_v7()` with a unique index,
 * online (short lock timeouts, small batches, concurrent index builds),
 * resumable (every step derived from the catalog) and coordinated (a
 * PostgreSQL advisory lock), then stamps PhoenixKit's version marker '40'.
 *
 * migrate_run() is blocking and may be called from a background thread; the
 * caller watches it through a struct migrate_progress and stops it with
 * migrate_progress_request_stop().
 */
#ifndef UUIDGATE_MIGRATE_H
#define UUIDGATE_MIGRATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum migrate_action {
	MIGRATE_STATUS,
	MIGRATE_PLAN,
	MIGRATE_UP,
	MIGRATE_DOWN,
};

enum migrate_log_level {
	MIGRATE_LOG_DEBUG,
	MIGRATE_LOG_INFO,
	MIGRATE_LOG_WARNING,
	MIGRATE_LOG_ERROR,
};

typedef void (*migrate_log_fn)(void *ctx, enum migrate_log_level level, const char *msg);

struct migrate_options {
	const char *conninfo;         /* libpq conninfo or URI; NULL: libpq defaults (PG* env) */
	const char *prefix;           /* schema holding PhoenixKit's tables */
	int lock_timeout_ms;          /* each ACCESS EXCLUSIVE attempt */
	int batch_time_ms;            /* backfill batch duration target */
	int batch_pause_ms;           /* sleep between batches (per worker) */
	int workers;                  /* parallel backfill connections */
	int max_replication_lag_ms;   /* pause batches above this replica lag; 0: don't watch */
	int64_t max_replication_lag_bytes; /* pause while a replica or active slot is more WAL behind; 0: off */
	int statement_timeout_ms;     /* bound on one backfill batch */
	int skip_retries;             /* passes over rows skipped because the app held them */
	int lock_retry_limit;         /* attempts per locked step; 0: retry until stopped */
	int progress_interval_ms;     /* progress lines on the log */
	bool repair;                  /* at version >= 40: complete incomplete tables */
	bool json;                    /* status/plan as JSON */
	bool quiet;                   /* only warnings and errors on the log */
	bool verbose;                 /* also every statement of the steps */
	migrate_log_fn log;           /* NULL: lines on stderr */
	void *log_ctx;
};

/* Defaults: conninfo NULL, prefix "public", lock_timeout_ms 50, batch_time_ms 50,
 * batch_pause_ms 0, workers 1, max_replication_lag_ms 10000, max_replication_lag_bytes 1 GiB,
 * statement_timeout_ms 10000, skip_retries 5, lock_retry_limit 0,
 * progress_interval_ms 3000, repair/json/quiet false, log NULL. */
void migrate_options_init(struct migrate_options *opt);

enum migrate_phase {
	MIGRATE_PHASE_IDLE,
	MIGRATE_PHASE_CONNECTING,
	MIGRATE_PHASE_WAITING_LOCK,   /* another runner holds the migration lock */
	MIGRATE_PHASE_CHECKING,       /* preconditions, version, catalog */
	MIGRATE_PHASE_PREPARING,      /* pgcrypto and uuid_generate_v7() */
	MIGRATE_PHASE_MIGRATING,      /* tables */
	MIGRATE_PHASE_STAMPING,
	MIGRATE_PHASE_FINISHED,
};

enum migrate_result {
	MIGRATE_RESULT_RUNNING,
	MIGRATE_RESULT_DONE,
	MIGRATE_RESULT_NOT_APPLICABLE,
	MIGRATE_RESULT_FAILED,
};

/* A consistent copy of the engine's progress. */
struct migrate_snapshot {
	enum migrate_phase phase;
	enum migrate_result result;
	int leader_pid;               /* backend pid holding the migration lock */
	char leader_app[64];
	char leader_host[64];
	int version_before;           /* PhoenixKit version found; -1 none */
	int tables_done;
	int tables_total;
	int tables_incomplete;        /* at >= 40 without --repair: tables found incomplete */
	char current_table[64];
	int64_t rows_done;
	int64_t rows_total;
	double rows_per_sec;
	double eta_sec;               /* < 0: unknown */
	int64_t lock_retries;
	bool replication_paused;
	char error_sqlstate[6];
	char error_message[512];
	bool error_transient;         /* worth retrying later as is */
	char message[512];            /* why not applicable, or what was verified */
};

struct migrate_progress {
	pthread_mutex_t mu;
	struct migrate_snapshot snap;
	atomic_bool stop;
};

void migrate_progress_init(struct migrate_progress *p);
void migrate_progress_destroy(struct migrate_progress *p);
void migrate_progress_read(struct migrate_progress *p, struct migrate_snapshot *out);
/* Async-signal-safe: the engine stops at the next safe point. */
void migrate_progress_request_stop(struct migrate_progress *p);

/* Runs one action to its end. Returns an exit code (enum migrate_exit);
 * progress may be NULL. */
int migrate_run(const struct migrate_options *opt, enum migrate_action action,
		struct migrate_progress *progress);

enum migrate_exit {
	MIGRATE_EXIT_DONE = 0,
	MIGRATE_EXIT_FAILED = 1,
	MIGRATE_EXIT_USAGE = 2,
	MIGRATE_EXIT_NOT_APPLICABLE = 3,
};

/* `uuidgate migrate ...`: argv[0] is "migrate". `-c FILE` is accepted and
 * skipped: the caller has already turned the file into `defaults` (may be NULL).
 * Returns the process exit code. */
int migrate_cli_main(int argc, char **argv, const struct migrate_options *defaults);

const char *migrate_phase_name(enum migrate_phase phase);
const char *migrate_result_name(enum migrate_result result);

#endif
