#include "exec.h"

#include <stdio.h>
#include <string.h>

#include "mlog.h"
#include "mtime.h"
#include "progress.h"
#include "strb.h"

#define EXEC_BACKOFF_BASE_MS 20
#define EXEC_BACKOFF_CAP_MS 2000
/* Statements under a strong lock are metadata-only; this bounds a surprise. */
#define EXEC_LOCKED_STATEMENT_TIMEOUT_MS 5000
/* Name the blockers on these attempts, then every EXEC_DIAG_EVERY. */
#define EXEC_DIAG_FIRST 3
#define EXEC_DIAG_EVERY 10

int64_t exec_backoff_ms(int attempt)
{
	int64_t d = EXEC_BACKOFF_BASE_MS;
	for (int i = 1; i < attempt && d < EXEC_BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > EXEC_BACKOFF_CAP_MS)
		d = EXEC_BACKOFF_CAP_MS;
	return mtime_jitter(d / 2, d);
}

/* The sessions holding what pid waits for (pg_blocking_pids), one line. */
static void exec_blockers(struct runner *r, int pid, char *buf, size_t len)
{
	char pidtxt[16];
	struct mg_error err;
	PGconn *diag = runner_diag(r);
	snprintf(buf, len, "%s", "");
	if (!diag)
		return;
	snprintf(pidtxt, sizeof(pidtxt), "%d", pid);
	const char *params[] = { pidtxt };
	mg_error_clear(&err);
	PGresult *res = db_query(diag,
		"SELECT string_agg(format('pid %s (application_name %L, state %s, query started %s,"
		" transaction started %s: %s)', b.pid, b.application_name, b.state,"
		" b.query_start, b.xact_start, left(regexp_replace(b.query, '\\s+', ' ', 'g'), 100)), '; ')"
		" FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids($1::int))",
		1, params, &err);
	if (!res)
		return;
	if (!PQgetisnull(res, 0, 0))
		snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

struct exec_locked_diag {
	struct runner *r;
	int pid;
	char blockers[1024];
};

static void exec_locked_tick(void *ctx, int64_t waited_ms)
{
	struct exec_locked_diag *d = ctx;
	(void)waited_ms;
	if (!d->blockers[0])
		exec_blockers(d->r, d->pid, d->blockers, sizeof(d->blockers));
}

static bool exec_locked_want_diag(int attempt)
{
	return attempt == EXEC_DIAG_FIRST || (attempt > EXEC_DIAG_FIRST && attempt % EXEC_DIAG_EVERY == 0);
}

static bool exec_locked_attempt(struct runner *r, const char *sql, int attempt,
				struct exec_locked_diag *diag, struct mg_error *err)
{
	struct strb s;
	strb_init(&s);
	strb_printf(&s, "SELECT pg_catalog.set_config('lock_timeout', '%dms', true),"
		    " pg_catalog.set_config('statement_timeout', '%dms', true); %s",
		    r->opt->lock_timeout_ms, EXEC_LOCKED_STATEMENT_TIMEOUT_MS, sql);
	/* While this attempt waits for its lock, a second session asks
	 * pg_blocking_pids who is in the way: only possible during the wait. */
	int half = r->opt->lock_timeout_ms / 2;
	struct db_wait wait = { .stop = r->stop, .tick_ms = half > 0 ? half : 1,
				.tick = exec_locked_want_diag(attempt) ? exec_locked_tick : NULL,
				.ctx = diag };
	diag->blockers[0] = '\0';
	diag->pid = PQbackendPID(r->conn);
	if (wait.tick)
		runner_diag(r);
	PGresult *res = db_run(r->conn, s.buf, -1, NULL, &wait, err);
	strb_free(&s);
	PQclear(res);
	return res != NULL;
}

bool exec_locked(struct runner *r, const char *table, const char *what, const char *sql,
		 struct mg_error *err)
{
	struct exec_locked_diag diag = { .r = r };
	mlog_info(r->opt, "%s: %s", table, what);
	mlog_debug(r->opt, "%s: %s", table, sql);
	for (int attempt = 1;; attempt++) {
		mg_error_clear(err);
		if (exec_locked_attempt(r, sql, attempt, &diag, err))
			return true;
		bool retry = mg_error_is(err, "55P03") || mg_error_is(err, "40P01");
		if (!retry || atomic_load(r->stop))
			return false;
		progress_lock_retry(r->prog);
		if (exec_locked_want_diag(attempt))
			mlog_warn(r->opt, "%s: %s: lock not granted within %d ms after %d attempts; "
				  "blocked by: %s", table, what, r->opt->lock_timeout_ms, attempt,
				  diag.blockers[0] ? diag.blockers : "(gone before it could be seen)");
		if (r->opt->lock_retry_limit > 0 && attempt >= r->opt->lock_retry_limit) {
			mg_error_set(err, "55P03", true, "%s: %s: lock not granted after %d attempts%s%s",
				     table, what, attempt, diag.blockers[0] ? "; blocked by: " : "",
				     diag.blockers);
			return false;
		}
		if (!mtime_sleep(exec_backoff_ms(attempt), r->stop)) {
			mg_error_set(err, "57014", true, "stopped");
			return false;
		}
	}
}

struct exec_wait_diag {
	struct runner *r;
	const char *table;
	const char *what;
	int pid;
};

/* Logs what a waiting statement waits for: lock or other wait event, index
 * build phase, and the sessions in the way. */
static void exec_waiting_tick(void *ctx, int64_t waited_ms)
{
	struct exec_wait_diag *d = ctx;
	PGconn *diag = runner_diag(d->r);
	char pidtxt[16];
	struct mg_error err;
	if (!diag)
		return;
	snprintf(pidtxt, sizeof(pidtxt), "%d", d->pid);
	const char *params[] = { pidtxt };
	mg_error_clear(&err);
	PGresult *res = db_query(diag,
		"SELECT coalesce(a.wait_event_type || ' ' || a.wait_event, 'working'),"
		" coalesce(p.phase, ''),"
		" coalesce((SELECT string_agg(format('pid %s (application_name %L, state %s,"
		"   transaction started %s)', b.pid, b.application_name, b.state, b.xact_start), '; ')"
		"   FROM pg_stat_activity b"
		"   WHERE b.pid = ANY (pg_blocking_pids(a.pid)) OR b.pid = p.current_locker_pid), '')"
		" FROM pg_stat_activity a LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid"
		" WHERE a.pid = $1::int",
		1, params, &err);
	if (!res || PQntuples(res) == 0) {
		PQclear(res);
		return;
	}
	const char *holders = PQgetvalue(res, 0, 2);
	mlog_info(d->r->opt, "%s: %s: running for %llds, %s%s%s%s%s", d->table, d->what,
		  (long long)(waited_ms / 1000), PQgetvalue(res, 0, 0),
		  PQgetvalue(res, 0, 1)[0] ? ", phase: " : "", PQgetvalue(res, 0, 1),
		  holders[0] ? ", waiting for: " : "", holders);
	PQclear(res);
}

bool exec_waiting(struct runner *r, const char *table, const char *what, const char *sql,
		  struct mg_error *err)
{
	struct exec_wait_diag diag = { .r = r, .table = table, .what = what,
				       .pid = PQbackendPID(r->conn) };
	struct db_wait wait = { .stop = r->stop, .tick_ms = r->opt->progress_interval_ms,
				.tick = exec_waiting_tick, .ctx = &diag };
	mlog_info(r->opt, "%s: %s", table, what);
	mlog_debug(r->opt, "%s: %s", table, sql);
	PGresult *res = db_run(r->conn, sql, -1, NULL, &wait, err);
	PQclear(res);
	return res != NULL;
}
