#include "coord.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlog.h"
#include "mtime.h"
#include "progress.h"
#include "strb.h"

/* Statements of the coordination connection start with this comment, so a
 * new leader can tell waiters from a dead leader's leftovers. */
#define COORD_MARK "/* uuidgate-coord */ "
#define COORD_PING_MS 1000
#define COORD_LEFTOVER_CANCEL_MS 10000
#define COORD_LEFTOVER_GIVEUP_MS 30000

struct coord {
	struct runner *r;
	PGconn *conn;
	char key[24];
	pthread_t watchdog;
	bool watching;
	atomic_bool quit;
	atomic_bool lost;
};

/* The key is per prefix; advisory locks are per database already. */
static const char coord_key_sql[] =
	COORD_MARK "SELECT hashtextextended('uuidgate-migrate V40 ' || $1, 0)";

static bool coord_key(struct runner *r, PGconn *conn, char *key, size_t len, struct mg_error *err)
{
	const char *params[] = { r->opt->prefix };
	PGresult *res = db_query(conn, coord_key_sql, 1, params, err);
	if (!res)
		return false;
	snprintf(key, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

bool coord_holder(struct runner *r, PGconn *conn, struct coord_holder *h, struct mg_error *err)
{
	char key[24];
	memset(h, 0, sizeof(*h));
	if (!coord_key(r, conn, key, sizeof(key), err))
		return false;
	const char *params[] = { key };
	PGresult *res = db_query(conn, COORD_MARK
		"SELECT a.pid, a.application_name,"
		" coalesce(host(a.client_addr), a.client_hostname, 'local socket'),"
		" date_trunc('second', a.backend_start)::text"
		" FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
		" WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
		" AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
		" AND l.classid = (($1::int8 >> 32) & 4294967295)::oid"
		" AND l.objid = ($1::int8 & 4294967295)::oid",
		1, params, err);
	if (!res)
		return false;
	bool held = PQntuples(res) > 0;
	if (held) {
		h->pid = atoi(PQgetvalue(res, 0, 0));
		snprintf(h->app, sizeof(h->app), "%s", PQgetvalue(res, 0, 1));
		snprintf(h->host, sizeof(h->host), "%s", PQgetvalue(res, 0, 2));
		snprintf(h->since, sizeof(h->since), "%s", PQgetvalue(res, 0, 3));
	}
	PQclear(res);
	return held;
}

static int coord_try(struct coord *c, struct mg_error *err)
{
	const char *params[] = { c->key };
	PGresult *res = db_query(c->conn, COORD_MARK "SELECT pg_try_advisory_lock($1::int8)", 1,
				 params, err);
	if (!res)
		return -1;
	int got = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return got;
}

#define COORD_WAIT_POLL_MS 150

static bool coord_wait(struct coord *c, struct mg_error *err)
{
	struct runner *r = c->r;
	int last_pid = 0;
	for (;;) {
		int got = coord_try(c, err);
		if (got != 0)
			return got == 1;
		struct coord_holder h;
		mg_error_clear(err);
		if (coord_holder(r, c->conn, &h, err) && h.pid != last_pid) {
			progress_phase(r->prog, MIGRATE_PHASE_WAITING_LOCK);
			progress_leader(r->prog, h.pid, h.app, h.host);
			mlog_info(r->opt, "waiting: another runner holds the migration lock: pid %d"
				  " (application_name %s, client %s, connected %s)",
				  h.pid, h.app, h.host, h.since);
			last_pid = h.pid;
		}
		/* Short polls: when the leader is done, every waiter re-verifies
		 * the end state under the lock in turn, and replicas should open
		 * their gates within moments of each other. */
		if (!mtime_sleep(COORD_WAIT_POLL_MS, r->stop)) {
			mg_error_set(err, "57014", true, "stopped while waiting for the migration lock");
			return false;
		}
	}
}

/* Sessions of a runner that died while holding the lock keep running what
 * they were sent (an index build, a batch) until they notice. Our own
 * statements are recognisable; waiters' idle sessions are left alone. */
static const char coord_leftovers_sql[] =
	COORD_MARK "SELECT pid, left(regexp_replace(query, '\\s+', ' ', 'g'), 80)"
	" FROM pg_stat_activity"
	" WHERE datname = current_database() AND application_name = 'uuidgate-migrate'"
	" AND pid <> pg_backend_pid() AND pid <> $1::int AND state IS DISTINCT FROM 'idle'"
	" AND query ~* '^\\s*(WITH locked|CREATE UNIQUE INDEX|ALTER TABLE|VACUUM|DROP INDEX"
	"|COMMENT ON|VALIDATE|SELECT pg_catalog.set_config\\(''lock_timeout'')'"
	" AND position($2 IN query) > 0";

static void coord_stop_session(struct coord *c, const char *pid, const char *what, bool terminate)
{
	struct mg_error err;
	const char *p[] = { pid };
	mlog_warn(c->r->opt, "%s leftover session of a previous runner: pid %s running %s",
		  terminate ? "terminating" : "cancelling", pid, what);
	mg_error_clear(&err);
	PQclear(db_query(c->conn, terminate ? COORD_MARK "SELECT pg_terminate_backend($1::int)"
					    : COORD_MARK "SELECT pg_cancel_backend($1::int)",
			 1, p, &err));
	if (err.set)
		mlog_warn(c->r->opt, "cannot stop pid %s: %s", pid, err.message);
}

static bool coord_clear_leftovers(struct coord *c, struct mg_error *err)
{
	struct runner *r = c->r;
	char mypid[16];
	snprintf(mypid, sizeof(mypid), "%d", PQbackendPID(r->conn));
	/* Runners of other prefixes in the same database are not ours to stop:
	 * every statement of a runner names its tables as "prefix"."table". */
	struct strb schema;
	strb_init(&schema);
	strb_ident(&schema, r->conn, r->opt->prefix);
	strb_printf(&schema, ".");
	const char *params[] = { mypid, schema.buf };
	int64_t start = mtime_now_ms();
	bool ok = false;
	for (;;) {
		PGresult *res = db_query(c->conn, coord_leftovers_sql, 2, params, err);
		if (!res)
			break;
		int n = PQntuples(res);
		bool terminate = mtime_now_ms() - start > COORD_LEFTOVER_CANCEL_MS;
		for (int i = 0; i < n; i++)
			coord_stop_session(c, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), terminate);
		PQclear(res);
		if (n == 0) {
			ok = true;
			break;
		}
		if (mtime_now_ms() - start > COORD_LEFTOVER_GIVEUP_MS) {
			mg_error_set(err, "55006", true, "sessions of a previous runner do not stop");
			break;
		}
		if (!mtime_sleep(200, r->stop)) {
			mg_error_set(err, "57014", true, "stopped");
			break;
		}
	}
	strb_free(&schema);
	return ok;
}

static void *coord_watch(void *arg)
{
	struct coord *c = arg;
	struct mg_error err;
	while (!atomic_load(&c->quit)) {
		mtime_sleep(COORD_PING_MS, &c->quit);
		if (atomic_load(&c->quit))
			break;
		mg_error_clear(&err);
		PGresult *res = db_query(c->conn, COORD_MARK "SELECT 1", 0, NULL, &err);
		if (!res) {
			atomic_store(&c->lost, true);
			mlog_error(c->r->opt, "lost the connection holding the migration lock (%s):"
				   " stopping all workers", err.message);
			runner_abort(c->r);
			break;
		}
		PQclear(res);
	}
	return NULL;
}

bool coord_acquire(struct runner *r, struct coord **out, struct mg_error *err)
{
	struct coord *c = calloc(1, sizeof(*c));
	c->r = r;
	atomic_init(&c->quit, false);
	atomic_init(&c->lost, false);
	*out = NULL;
	c->conn = db_connect(r->opt, err);
	bool ok = c->conn && coord_key(r, c->conn, c->key, sizeof(c->key), err) &&
		  coord_wait(c, err);
	if (ok) {
		progress_leader(r->prog, PQbackendPID(c->conn), DB_APPLICATION_NAME, "this runner");
		mlog_info(r->opt, "holding the migration lock (pid %d)", PQbackendPID(c->conn));
		ok = coord_clear_leftovers(c, err);
	}
	if (ok)
		ok = pthread_create(&c->watchdog, NULL, coord_watch, c) == 0;
	if (!ok) {
		PQfinish(c->conn);
		free(c);
		return false;
	}
	c->watching = true;
	*out = c;
	return true;
}

bool coord_lost(const struct coord *c)
{
	return c && atomic_load(&c->lost);
}

void coord_release(struct coord *c)
{
	if (!c)
		return;
	atomic_store(&c->quit, true);
	if (c->watching)
		pthread_join(c->watchdog, NULL);
	/* Closing the session releases the lock; unlock first for a clean log. */
	if (!atomic_load(&c->lost)) {
		struct mg_error err;
		const char *params[] = { c->key };
		mg_error_clear(&err);
		PQclear(db_query(c->conn, COORD_MARK "SELECT pg_advisory_unlock($1::int8)", 1, params,
				 &err));
	}
	PQfinish(c->conn);
	free(c);
}
