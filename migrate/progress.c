#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mtime.h"

/* Rate over a sliding window of samples, so the ETA follows changes of pace
 * (a table with triggers, a replication pause) without jumping every second. */
#define PROGRESS_WINDOW 10

void migrate_progress_init(struct migrate_progress *p)
{
	memset(&p->snap, 0, sizeof(p->snap));
	p->snap.version_before = -1;
	p->snap.eta_sec = -1;
	pthread_mutex_init(&p->mu, NULL);
	atomic_init(&p->stop, false);
}

void migrate_progress_destroy(struct migrate_progress *p)
{
	pthread_mutex_destroy(&p->mu);
}

void migrate_progress_read(struct migrate_progress *p, struct migrate_snapshot *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->snap;
	pthread_mutex_unlock(&p->mu);
}

void migrate_progress_request_stop(struct migrate_progress *p)
{
	atomic_store(&p->stop, true);
}

const char *migrate_phase_name(enum migrate_phase phase)
{
	switch (phase) {
	case MIGRATE_PHASE_IDLE: return "idle";
	case MIGRATE_PHASE_CONNECTING: return "connecting";
	case MIGRATE_PHASE_WAITING_LOCK: return "waiting_lock";
	case MIGRATE_PHASE_CHECKING: return "checking";
	case MIGRATE_PHASE_PREPARING: return "preparing";
	case MIGRATE_PHASE_MIGRATING: return "migrating";
	case MIGRATE_PHASE_STAMPING: return "stamping";
	case MIGRATE_PHASE_FINISHED: return "finished";
	}
	return "?";
}

const char *migrate_result_name(enum migrate_result result)
{
	switch (result) {
	case MIGRATE_RESULT_RUNNING: return "running";
	case MIGRATE_RESULT_DONE: return "done";
	case MIGRATE_RESULT_NOT_APPLICABLE: return "not_applicable";
	case MIGRATE_RESULT_FAILED: return "failed";
	}
	return "?";
}

#define WITH_LOCK(p, body) do { pthread_mutex_lock(&(p)->mu); body; pthread_mutex_unlock(&(p)->mu); } while (0)

void progress_phase(struct migrate_progress *p, enum migrate_phase phase)
{
	WITH_LOCK(p, p->snap.phase = phase);
}

void progress_leader(struct migrate_progress *p, int pid, const char *app, const char *host)
{
	WITH_LOCK(p, {
		p->snap.leader_pid = pid;
		snprintf(p->snap.leader_app, sizeof(p->snap.leader_app), "%s", app ? app : "");
		snprintf(p->snap.leader_host, sizeof(p->snap.leader_host), "%s", host ? host : "");
	});
}

void progress_table(struct migrate_progress *p, const char *table, int done, int total)
{
	WITH_LOCK(p, {
		snprintf(p->snap.current_table, sizeof(p->snap.current_table), "%s", table ? table : "");
		p->snap.tables_done = done;
		p->snap.tables_total = total;
	});
}

void progress_rows_total(struct migrate_progress *p, int64_t delta)
{
	WITH_LOCK(p, p->snap.rows_total += delta);
}

void progress_rows_done(struct migrate_progress *p, int64_t delta)
{
	WITH_LOCK(p, p->snap.rows_done += delta);
}

void progress_lock_retry(struct migrate_progress *p)
{
	WITH_LOCK(p, p->snap.lock_retries++);
}

void progress_replication_paused(struct migrate_progress *p, bool paused)
{
	WITH_LOCK(p, p->snap.replication_paused = paused);
}

void progress_version(struct migrate_progress *p, int version)
{
	WITH_LOCK(p, p->snap.version_before = version);
}

void progress_incomplete(struct migrate_progress *p, int tables)
{
	WITH_LOCK(p, p->snap.tables_incomplete = tables);
}

void progress_message(struct migrate_progress *p, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&p->mu);
	va_start(ap, fmt);
	vsnprintf(p->snap.message, sizeof(p->snap.message), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&p->mu);
}

void progress_finish(struct migrate_progress *p, enum migrate_result result,
		     const struct mg_error *err)
{
	WITH_LOCK(p, {
		p->snap.result = result;
		p->snap.phase = MIGRATE_PHASE_FINISHED;
		if (err && err->set) {
			memcpy(p->snap.error_sqlstate, err->sqlstate, sizeof(p->snap.error_sqlstate));
			snprintf(p->snap.error_message, sizeof(p->snap.error_message), "%s", err->message);
			p->snap.error_transient = err->transient;
		}
	});
}

/* The window lives beside the snapshot, guarded by the same mutex; one
 * engine runs per progress object. */
struct progress_window {
	int64_t at_ms[PROGRESS_WINDOW];
	int64_t rows[PROGRESS_WINDOW];
	int n;
	struct migrate_progress *owner;
};
static _Thread_local struct progress_window progress_win;

void progress_sample(struct migrate_progress *p)
{
	struct progress_window *w = &progress_win;
	if (w->owner != p) {
		memset(w, 0, sizeof(*w));
		w->owner = p;
	}
	pthread_mutex_lock(&p->mu);
	int64_t now = mtime_now_ms();
	if (w->n == PROGRESS_WINDOW) {
		memmove(w->at_ms, w->at_ms + 1, sizeof(w->at_ms[0]) * (PROGRESS_WINDOW - 1));
		memmove(w->rows, w->rows + 1, sizeof(w->rows[0]) * (PROGRESS_WINDOW - 1));
		w->n--;
	}
	w->at_ms[w->n] = now;
	w->rows[w->n] = p->snap.rows_done;
	w->n++;
	int64_t span = w->at_ms[w->n - 1] - w->at_ms[0];
	if (span > 0) {
		double rate = (double)(w->rows[w->n - 1] - w->rows[0]) * 1000.0 / (double)span;
		int64_t left = p->snap.rows_total - p->snap.rows_done;
		p->snap.rows_per_sec = rate;
		p->snap.eta_sec = rate > 0 ? (double)(left > 0 ? left : 0) / rate : -1;
	}
	pthread_mutex_unlock(&p->mu);
}

void progress_line(struct migrate_progress *p, char *buf, size_t len)
{
	struct migrate_snapshot s;
	migrate_progress_read(p, &s);
	char eta[32] = "?";
	if (s.eta_sec >= 0)
		snprintf(eta, sizeof(eta), "%.0fs", s.eta_sec);
	double pct = s.rows_total > 0 ? 100.0 * (double)s.rows_done / (double)s.rows_total : 100.0;
	snprintf(buf, len,
		 "progress: table %d/%d %s, rows %lld/%lld (%.1f%%), %.0f rows/s, ETA %s, "
		 "lock retries %lld%s",
		 s.tables_done, s.tables_total, s.current_table, (long long)s.rows_done,
		 (long long)s.rows_total, pct, s.rows_per_sec, eta, (long long)s.lock_retries,
		 s.replication_paused ? ", paused for replication lag" : "");
}
