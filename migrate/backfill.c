#include "backfill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "lag.h"
#include "mlog.h"
#include "mtime.h"
#include "progress.h"
#include "strb.h"
#include "uuidv7_sql.h"

#define BACKFILL_FIRST_SPAN 64
#define BACKFILL_MAX_SPAN 1000000
#define BACKFILL_BATCH_LOCK_TIMEOUT_MS 1000
#define BACKFILL_REST_ROWS 1000
#define BACKFILL_MAX_RANGES 4096

struct backfill_range {
	int64_t lo, hi;   /* [lo, hi) */
};

struct backfill {
	struct runner *r;
	const struct table_state *t;
	char *table_q;
	char *batch_sql;      /* $1 lo, $2 hi [, $3 start ms] */
	int nparams;
	char start_ms[24];

	pthread_mutex_t mu;
	int64_t next_lo;      /* shared cursor over [next_lo, end) */
	int64_t end;
	struct backfill_range retry[BACKFILL_MAX_RANGES];
	int nretry;
	bool retry_overflow;
	int64_t written;
	struct mg_error err;  /* first failure of any worker */
	atomic_bool lag_pause;
};

/* One batch: lock the range's NULL rows the application does not hold
 * (NO KEY UPDATE does not conflict with child tables' foreign-key checks),
 * write them, and count the NULL rows of the range in the same snapshot, so
 * that the difference is what was skipped. */
static char *backfill_batch_sql(struct runner *r, const struct table_state *t,
				const char *table_q)
{
	struct strb s, pk;
	strb_init(&s);
	strb_init(&pk);
	strb_ident(&pk, r->conn, t->pk);
	char *expr = uuidv7_backfill_expr(r->conn, "t", t->inserted_at_type[0] ? "inserted_at" : NULL,
					  t->pk, r->rand_uuid_sql, 3);
	const char *vals[] = { pk.buf, table_q, expr };
	strb_subst(&s,
		"WITH locked AS (SELECT {1} FROM {2} WHERE {1} >= $1 AND {1} < $2 AND uuid IS NULL"
		" FOR NO KEY UPDATE SKIP LOCKED),"
		" written AS (UPDATE {2} AS t SET uuid = {3}"
		" WHERE t.{1} >= $1 AND t.{1} < $2 AND t.{1} IN (SELECT {1} FROM locked) RETURNING 1)"
		" SELECT (SELECT count(*) FROM written),"
		" (SELECT count(*) FROM {2} WHERE {1} >= $1 AND {1} < $2 AND uuid IS NULL)",
		vals, 3);
	free(expr);
	strb_free(&pk);
	return strb_steal(&s);
}

static void backfill_fail(struct backfill *b, const struct mg_error *err)
{
	pthread_mutex_lock(&b->mu);
	if (!b->err.set)
		b->err = *err;
	pthread_mutex_unlock(&b->mu);
}

static bool backfill_failed(struct backfill *b)
{
	pthread_mutex_lock(&b->mu);
	bool failed = b->err.set;
	pthread_mutex_unlock(&b->mu);
	return failed;
}

static void backfill_remember(struct backfill *b, int64_t lo, int64_t hi)
{
	pthread_mutex_lock(&b->mu);
	if (b->nretry < BACKFILL_MAX_RANGES)
		b->retry[b->nretry++] = (struct backfill_range){ lo, hi };
	else
		b->retry_overflow = true;
	pthread_mutex_unlock(&b->mu);
}

static PGconn *backfill_connect(struct backfill *b, struct mg_error *err)
{
	PGconn *conn = db_connect(b->r->opt, err);
	if (!conn)
		return NULL;
	char st[16], lt[16];
	snprintf(st, sizeof(st), "%dms", b->r->opt->statement_timeout_ms);
	snprintf(lt, sizeof(lt), "%dms", BACKFILL_BATCH_LOCK_TIMEOUT_MS);
	const char *params[] = { st, lt };
	PGresult *res = db_query(conn, "SELECT set_config('statement_timeout', $1, false),"
				 " set_config('lock_timeout', $2, false)", 2, params, err);
	if (!res) {
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	runner_track(b->r, conn);
	return conn;
}

static void backfill_disconnect(struct backfill *b, PGconn *conn)
{
	if (!conn)
		return;
	runner_untrack(b->r, conn);
	PQfinish(conn);
}

/* Runs [lo, hi); false on error (err set). */
static bool backfill_batch(struct backfill *b, PGconn *conn, int64_t lo, int64_t hi,
			   int64_t *written, int64_t *skipped, struct mg_error *err)
{
	char lotxt[24], hitxt[24];
	snprintf(lotxt, sizeof(lotxt), "%lld", (long long)lo);
	snprintf(hitxt, sizeof(hitxt), "%lld", (long long)hi);
	const char *params[] = { lotxt, hitxt, b->start_ms };
	struct db_wait wait = { .stop = b->r->stop };
	PGresult *res = db_run(conn, b->batch_sql, b->nparams, params, &wait, err);
	if (!res)
		return false;
	*written = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	int64_t nulls = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	*skipped = nulls > *written ? nulls - *written : 0;
	PQclear(res);
	return true;
}

/* Batch size follows the time target: scaled by target/elapsed, at most
 * doubling or halving per batch so one odd batch does not swing it. */
static int64_t backfill_adapt(int64_t span, int64_t elapsed_ms, int target_ms)
{
	double f = (double)target_ms / (double)(elapsed_ms > 0 ? elapsed_ms : 1);
	if (f > 2.0)
		f = 2.0;
	if (f < 0.5)
		f = 0.5;
	int64_t next = (int64_t)((double)span * f);
	if (next < 1)
		next = 1;
	if (next > BACKFILL_MAX_SPAN)
		next = BACKFILL_MAX_SPAN;
	return next;
}

static bool backfill_take(struct backfill *b, int64_t span, int64_t *lo, int64_t *hi)
{
	pthread_mutex_lock(&b->mu);
	bool more = b->next_lo < b->end;
	if (more) {
		*lo = b->next_lo;
		*hi = b->end - *lo > span ? *lo + span : b->end;
		b->next_lo = *hi;
	}
	pthread_mutex_unlock(&b->mu);
	return more;
}

static bool backfill_wait_lag(struct backfill *b)
{
	while (atomic_load(&b->lag_pause))
		if (!mtime_sleep(100, b->r->stop))
			return false;
	return true;
}

/* A statement timeout or lock timeout on a batch is not fatal: the range is
 * revisited later and batches shrink. */
static bool backfill_soft_error(const struct mg_error *err)
{
	return mg_error_is(err, "55P03") || mg_error_is(err, "40P01") || mg_error_is(err, "40001") ||
	       mg_error_is(err, "57014");
}

static void *backfill_worker(void *arg)
{
	struct backfill *b = arg;
	struct mg_error err;
	int64_t span = BACKFILL_FIRST_SPAN, lo, hi;
	mg_error_clear(&err);
	PGconn *conn = backfill_connect(b, &err);
	if (!conn) {
		backfill_fail(b, &err);
		return NULL;
	}
	while (!atomic_load(b->r->stop) && !backfill_failed(b) && backfill_wait_lag(b) &&
	       backfill_take(b, span, &lo, &hi)) {
		int64_t written = 0, skipped = 0, t0 = mtime_now_ms();
		mg_error_clear(&err);
		if (!backfill_batch(b, conn, lo, hi, &written, &skipped, &err)) {
			if (atomic_load(b->r->stop) || !backfill_soft_error(&err)) {
				backfill_fail(b, &err);
				break;
			}
			backfill_remember(b, lo, hi);
			span = span / 4 > 0 ? span / 4 : 1;
			continue;
		}
		span = backfill_adapt(span, mtime_now_ms() - t0, b->r->opt->batch_time_ms);
		progress_rows_done(b->r->prog, written);
		pthread_mutex_lock(&b->mu);
		b->written += written;
		pthread_mutex_unlock(&b->mu);
		if (skipped > 0)
			backfill_remember(b, lo, hi);
		if (b->r->opt->batch_pause_ms > 0)
			mtime_sleep(b->r->opt->batch_pause_ms, b->r->stop);
	}
	backfill_disconnect(b, conn);
	return NULL;
}

/* While workers run: progress lines, rate samples, replication lag. */
static void backfill_watch(struct backfill *b, pthread_t *threads, int n)
{
	struct lag_watch lw = { 0 };
	int64_t next_line = mtime_now_ms() + b->r->opt->progress_interval_ms;
	int64_t next_sample = 0;
	for (;;) {
		pthread_mutex_lock(&b->mu);
		bool busy = b->next_lo < b->end && !b->err.set;
		pthread_mutex_unlock(&b->mu);
		if (!busy || atomic_load(b->r->stop))
			break;
		atomic_store(&b->lag_pause, lag_should_pause(b->r, b->r->conn, &lw));
		if (mtime_now_ms() >= next_sample) {
			progress_sample(b->r->prog);
			next_sample = mtime_now_ms() + 1000;
		}
		if (mtime_now_ms() >= next_line) {
			char line[512];
			progress_line(b->r->prog, line, sizeof(line));
			mlog_info(b->r->opt, "%s", line);
			next_line = mtime_now_ms() + b->r->opt->progress_interval_ms;
		}
		mtime_sleep(10, b->r->stop);
	}
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
}

/* Revisits skipped ranges in pieces, a bounded number of passes. */
static bool backfill_retry_pass(struct backfill *b, PGconn *conn, struct backfill_range *ranges,
				int n, struct mg_error *err)
{
	int64_t span = BACKFILL_FIRST_SPAN;
	b->nretry = 0;
	for (int i = 0; i < n; i++) {
		for (int64_t lo = ranges[i].lo; lo < ranges[i].hi;) {
			int64_t hi = ranges[i].hi - lo > span ? lo + span : ranges[i].hi;
			int64_t written = 0, skipped = 0, t0 = mtime_now_ms();
			mg_error_clear(err);
			if (!backfill_batch(b, conn, lo, hi, &written, &skipped, err)) {
				if (atomic_load(b->r->stop) || !backfill_soft_error(err))
					return false;
				backfill_remember(b, lo, hi);
			} else {
				progress_rows_done(b->r->prog, written);
				b->written += written;
				if (skipped > 0)
					backfill_remember(b, lo, hi);
				span = backfill_adapt(span, mtime_now_ms() - t0, b->r->opt->batch_time_ms);
			}
			lo = hi;
		}
	}
	mg_error_clear(err);
	return true;
}

/* Who holds rows still NULL in [$1, $2): a row's xmax is the transaction
 * that locked it, pg_locks maps that to a backend. */
static char *backfill_held_sql(PGconn *conn, const struct table_state *t, const char *table_q,
			       bool ranged)
{
	struct strb sql, col;
	strb_init(&sql);
	strb_init(&col);
	catalog_row_key(&col, conn, t);
	const char *vals[] = { col.buf, table_q, ranged ? " AND {1} >= $1 AND {1} < $2" : "" };
	static const char tmpl[] =
		"SELECT string_agg(format('%s held by %s', r.k, coalesce((SELECT"
		" format('pid %s (application_name %L, state %s, transaction started %s)', a.pid,"
		" a.application_name, a.state, a.xact_start) FROM pg_locks l JOIN pg_stat_activity a"
		" ON a.pid = l.pid WHERE l.locktype = 'transactionid' AND l.granted"
		" AND l.transactionid::text = r.x::text LIMIT 1), 'transaction ' || r.x)), '; ')"
		" FROM (SELECT {1} AS k, xmax AS x FROM {2} WHERE uuid IS NULL{3} LIMIT 5) r";
	/* {3} brings {1} with it: substitute twice. */
	struct strb once;
	strb_init(&once);
	strb_subst(&once, tmpl, vals, 3);
	strb_subst(&sql, once.buf, vals, 2);
	strb_free(&once);
	strb_free(&col);
	return strb_steal(&sql);
}

static void backfill_report_held(struct backfill *b, PGconn *conn)
{
	struct mg_error err;
	char lotxt[24], hitxt[24];
	char *sql = backfill_held_sql(conn, b->t, b->table_q, true);
	for (int i = 0; i < b->nretry && i < 3; i++) {
		snprintf(lotxt, sizeof(lotxt), "%lld", (long long)b->retry[i].lo);
		snprintf(hitxt, sizeof(hitxt), "%lld", (long long)b->retry[i].hi);
		const char *params[] = { lotxt, hitxt };
		mg_error_clear(&err);
		PGresult *res = db_query(conn, sql, 2, params, &err);
		if (res && !PQgetisnull(res, 0, 0))
			mlog_warn(b->r->opt, "%s: rows still held by the application after %d passes"
				  " (%s): %s", b->t->name, b->r->opt->skip_retries, b->t->pk,
				  PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	free(sql);
}

static bool backfill_retries(struct backfill *b, struct mg_error *err)
{
	if (b->nretry == 0 && !b->retry_overflow)
		return true;
	PGconn *conn = backfill_connect(b, err);
	if (!conn)
		return false;
	struct backfill_range *ranges = malloc(sizeof(b->retry));
	bool ok = true;
	for (int pass = 1; ok && pass <= b->r->opt->skip_retries && b->nretry > 0; pass++) {
		int n = b->nretry;
		memcpy(ranges, b->retry, sizeof(ranges[0]) * (size_t)n);
		mlog_info(b->r->opt, "%s: pass %d over %d range(s) with rows the application held",
			  b->t->name, pass, n);
		if (!mtime_sleep(100LL * pass, b->r->stop)) {
			mg_error_set(err, "57014", true, "stopped");
			ok = false;
			break;
		}
		ok = backfill_retry_pass(b, conn, ranges, n, err);
	}
	if (ok && b->nretry > 0)
		backfill_report_held(b, conn);
	free(ranges);
	backfill_disconnect(b, conn);
	return ok;
}

/* Where the NULL rows start (in key order, so a fresh column answers at
 * once and a resumed one skips what is done) and the largest key (rows added
 * since have the default). The count is exact for small tables and
 * estimated from the key range for large ones, only for progress. */
static bool backfill_bounds(struct backfill *b, int64_t *nulls, struct mg_error *err)
{
	struct strb sql, pk;
	strb_init(&sql);
	strb_init(&pk);
	strb_ident(&pk, b->r->conn, b->t->pk);
	const char *vals[] = { pk.buf, b->table_q };
	strb_subst(&sql,
		"SELECT lo, hi, CASE WHEN lo IS NULL THEN 0"
		" WHEN n < 200000 THEN (SELECT count(*) FROM {2} WHERE uuid IS NULL)"
		" ELSE (n * (hi - lo + 1) / greatest(hi - mn + 1, 1))::int8 END"
		" FROM (SELECT (SELECT reltuples FROM pg_class WHERE oid = '{2}'::regclass) AS n,"
		" (SELECT {1} FROM {2} WHERE uuid IS NULL ORDER BY {1} LIMIT 1) AS lo,"
		" (SELECT max({1}) FROM {2}) AS hi, (SELECT min({1}) FROM {2}) AS mn) k",
		vals, 2);
	strb_free(&pk);
	struct db_wait wait = { .stop = b->r->stop };
	PGresult *res = db_run(b->r->conn, sql.buf, 0, NULL, &wait, err);
	strb_free(&sql);
	if (!res)
		return false;
	*nulls = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	if (!PQgetisnull(res, 0, 0)) {
		b->next_lo = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		b->end = strtoll(PQgetvalue(res, 0, 1), NULL, 10) + 1;
		if (*nulls <= 0)
			*nulls = 1;
	}
	PQclear(res);
	return true;
}

static void backfill_init(struct backfill *b, struct runner *r, const struct table_state *t)
{
	struct strb q;
	memset(b, 0, sizeof(*b));
	b->r = r;
	b->t = t;
	strb_init(&q);
	strb_qualified(&q, r->conn, r->opt->prefix, t->name);
	b->table_q = strb_steal(&q);
	b->batch_sql = backfill_batch_sql(r, t, b->table_q);
	b->nparams = t->inserted_at_type[0] ? 3 : 2;
	snprintf(b->start_ms, sizeof(b->start_ms), "%lld", (long long)r->start_ms);
	pthread_mutex_init(&b->mu, NULL);
	atomic_init(&b->lag_pause, false);
}

static void backfill_destroy(struct backfill *b)
{
	free(b->table_q);
	free(b->batch_sql);
	pthread_mutex_destroy(&b->mu);
}

static bool backfill_ranges(struct backfill *b, struct mg_error *err)
{
	int n = b->r->opt->workers > 0 ? b->r->opt->workers : 1;
	if (n > RUNNER_MAX_CONNS - 8)
		n = RUNNER_MAX_CONNS - 8;
	pthread_t *threads = calloc((size_t)n, sizeof(pthread_t));
	int started = 0;
	for (; started < n; started++)
		if (pthread_create(&threads[started], NULL, backfill_worker, b) != 0)
			break;
	if (started == 0) {
		free(threads);
		mg_error_set(err, "53000", true, "cannot start a backfill worker thread");
		return false;
	}
	backfill_watch(b, threads, started);
	free(threads);
	if (b->err.set) {
		*err = b->err;
		return false;
	}
	if (atomic_load(b->r->stop)) {
		mg_error_set(err, "57014", true, "stopped");
		return false;
	}
	return backfill_retries(b, err);
}

bool backfill_run(struct runner *r, const struct table_state *t, int64_t *written,
		  struct mg_error *err)
{
	struct backfill b;
	int64_t nulls = 0;
	*written = 0;
	if (!t->pk[0]) {
		mlog_warn(r->opt, "%s: no single-column integer primary key; filling without ranges",
			  t->name);
		return backfill_fill_rest(r, t, err);
	}
	backfill_init(&b, r, t);
	bool ok = backfill_bounds(&b, &nulls, err);
	if (ok)
		progress_rows_total(r->prog, nulls - t->reltuples);
	if (ok && nulls > 0) {
		mlog_info(r->opt, "%s: backfilling %lld rows (%s %lld..%lld), %d worker(s)%s%s", t->name,
			  (long long)nulls, t->pk, (long long)b.next_lo, (long long)b.end - 1,
			  r->opt->workers, t->triggers ? "; these user triggers fire on each row: " : "",
			  t->triggers ? t->triggers : "");
		ok = backfill_ranges(&b, err);
		*written = b.written;
	}
	backfill_destroy(&b);
	return ok;
}

/* Rows still NULL, a bounded number at a time, waiting for rows the
 * application holds at most lock_timeout per attempt. Without an integer
 * key, ctid identifies the rows. */
static char *backfill_rest_sql(struct runner *r, const struct table_state *t, const char *table_q)
{
	struct strb s, key;
	strb_init(&s);
	strb_init(&key);
	catalog_row_key(&key, r->conn, t);
	char *expr = uuidv7_backfill_expr(r->conn, "t", t->inserted_at_type[0] ? "inserted_at" : NULL,
					  t->pk[0] ? t->pk : NULL, r->rand_uuid_sql, 1);
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", BACKFILL_REST_ROWS);
	const char *vals[] = { key.buf, table_q, limit, expr };
	strb_subst(&s,
		"WITH locked AS (SELECT {1} AS k FROM {2} WHERE uuid IS NULL LIMIT {3}"
		" FOR NO KEY UPDATE)"
		" UPDATE {2} AS t SET uuid = {4} FROM locked WHERE t.{1} = locked.k",
		vals, 4);
	free(expr);
	strb_free(&key);
	return strb_steal(&s);
}

static bool backfill_rest_timeouts(struct runner *r, bool on, struct mg_error *err)
{
	char lt[16], st[16];
	snprintf(lt, sizeof(lt), "%dms", on ? r->opt->lock_timeout_ms : 0);
	snprintf(st, sizeof(st), "%dms", on ? r->opt->statement_timeout_ms : 0);
	const char *params[] = { lt, st };
	PGresult *res = db_query(r->conn, "SELECT set_config('lock_timeout', $1, false),"
				 " set_config('statement_timeout', $2, false)", 2, params, err);
	PQclear(res);
	return res != NULL;
}

static void backfill_rest_report(struct runner *r, const struct table_state *t, int attempt)
{
	struct strb q;
	struct mg_error err;
	strb_init(&q);
	strb_qualified(&q, r->conn, r->opt->prefix, t->name);
	char *sql = backfill_held_sql(r->conn, t, q.buf, false);
	mg_error_clear(&err);
	PGresult *res = db_query(r->conn, sql, 0, NULL, &err);
	mlog_warn(r->opt, "%s: %d attempts to fill rows the application holds: %s", t->name, attempt,
		  res && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "(released meanwhile)");
	PQclear(res);
	free(sql);
	strb_free(&q);
}

static bool backfill_rest_loop(struct runner *r, const struct table_state *t, const char *sql,
			       struct mg_error *err)
{
	char start[24];
	snprintf(start, sizeof(start), "%lld", (long long)r->start_ms);
	const char *params[] = { start };
	struct db_wait wait = { .stop = r->stop };
	int nparams = t->inserted_at_type[0] ? 1 : 0;
	for (int attempt = 1;;) {
		mg_error_clear(err);
		PGresult *res = db_run(r->conn, sql, nparams, params, &wait, err);
		if (res) {
			int64_t n = strtoll(PQcmdTuples(res), NULL, 10);
			PQclear(res);
			progress_rows_done(r->prog, n);
			if (n == 0)
				return true;
			attempt = 1;
			continue;
		}
		if (atomic_load(r->stop) || !(mg_error_is(err, "55P03") || mg_error_is(err, "40P01")))
			return false;
		progress_lock_retry(r->prog);
		if (attempt % 10 == 0)
			backfill_rest_report(r, t, attempt);
		if (!mtime_sleep(exec_backoff_ms(attempt++), r->stop)) {
			mg_error_set(err, "57014", true, "stopped");
			return false;
		}
	}
}

bool backfill_fill_rest(struct runner *r, const struct table_state *t, struct mg_error *err)
{
	struct strb q;
	strb_init(&q);
	strb_qualified(&q, r->conn, r->opt->prefix, t->name);
	char *sql = backfill_rest_sql(r, t, q.buf);
	bool ok = backfill_rest_timeouts(r, true, err) && backfill_rest_loop(r, t, sql, err);
	struct mg_error reset_err;
	mg_error_clear(&reset_err);
	backfill_rest_timeouts(r, false, &reset_err);
	free(sql);
	strb_free(&q);
	return ok;
}

char *backfill_batch_statement(struct runner *r, const struct table_state *t)
{
	if (!t->pk[0])
		return NULL;
	struct strb q;
	strb_init(&q);
	strb_qualified(&q, r->conn, r->opt->prefix, t->name);
	char *sql = backfill_batch_sql(r, t, q.buf);
	strb_free(&q);
	return sql;
}
