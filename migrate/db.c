#include "db.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mtime.h"

void mg_error_set(struct mg_error *e, const char *sqlstate, bool transient, const char *fmt, ...)
{
	va_list ap;
	if (!e)
		return;
	snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", sqlstate ? sqlstate : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	e->transient = transient;
	e->set = true;
}

void mg_error_clear(struct mg_error *e)
{
	memset(e, 0, sizeof(*e));
}

bool mg_error_is(const struct mg_error *e, const char *sqlstate)
{
	return e->set && strcmp(e->sqlstate, sqlstate) == 0;
}

/* Errors that may go away by themselves: lost connections, lock and statement
 * timeouts, cancels, deadlocks and serialisation failures, resource shortage,
 * server shutdown. Everything else needs an operator. */
static bool db_sqlstate_transient(const char *s)
{
	static const char *classes[] = { "08", "40", "53", "57", "58" };
	if (strcmp(s, "55P03") == 0 || strcmp(s, "55006") == 0)
		return true;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strncmp(s, classes[i], 2) == 0)
			return true;
	return false;
}

static void db_error_from(struct mg_error *err, PGconn *conn, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;

	if (!state || PQstatus(conn) == CONNECTION_BAD)
		state = state ? state : "08006";
	if (!msg || !*msg)
		msg = PQerrorMessage(conn);
	mg_error_set(err, state, db_sqlstate_transient(state), "%s%s%s", msg,
		     detail ? " — " : "", detail ? detail : "");
	size_t n = strlen(err->message);
	while (n > 0 && (err->message[n - 1] == '\n' || err->message[n - 1] == ' '))
		err->message[--n] = '\0';
}

PGconn *db_connect(const struct migrate_options *opt, struct mg_error *err)
{
	/* Later keys override what the expanded conninfo says. */
	const char *keys[] = { "dbname", "application_name", "keepalives", "keepalives_idle",
			       "keepalives_interval", "keepalives_count", "tcp_user_timeout",
			       "connect_timeout", NULL };
	const char *vals[] = { opt->conninfo ? opt->conninfo : "", DB_APPLICATION_NAME, "1", "5",
			       "2", "3", "15000", "10", NULL };
	if (!opt->conninfo)
		keys[0] = "application_name", vals[0] = DB_APPLICATION_NAME;
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		mg_error_set(err, "08001", true, "cannot connect: %s",
			     conn ? PQerrorMessage(conn) : "out of memory");
		if (err) {
			size_t n = strlen(err->message);
			while (n > 0 && err->message[n - 1] == '\n')
				err->message[--n] = '\0';
		}
		PQfinish(conn);
		return NULL;
	}
	/* Server-side keepalives and (14+) client checks: a runner that
	 * vanishes without closing its sockets must not keep its advisory lock
	 * or a long statement alive for the kernel's default two hours. Only
	 * qualified function calls here: search_path is not pinned yet. */
	bool check = PQserverVersion(conn) >= 140000;
	PGresult *res = db_query(conn, check
		? "SELECT pg_catalog.set_config('search_path', 'pg_catalog', false),"
		  " pg_catalog.set_config('client_connection_check_interval', '2s', false)"
		: "SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)",
		0, NULL, err);
	bool pinned = res != NULL;
	PQclear(res);
	if (pinned)
		res = db_query(conn,
			"SELECT set_config('lock_timeout', '0', false),"
			" set_config('statement_timeout', '0', false),"
			" set_config('idle_in_transaction_session_timeout', '60s', false),"
			" set_config('tcp_keepalives_idle', '5', false),"
			" set_config('tcp_keepalives_interval', '2', false),"
			" set_config('tcp_keepalives_count', '3', false)",
			0, NULL, err);
	if (!res) {
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

void db_cancel(PGconn *conn)
{
	char buf[256];
	PGcancel *c = PQgetCancel(conn);
	if (!c)
		return;
	PQcancel(c, buf, sizeof(buf));
	PQfreeCancel(c);
}

static bool db_send(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	if (nparams < 0)
		return PQsendQuery(conn, sql) == 1;
	return PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0) == 1;
}

/* Waits until a result can be read without blocking, cancelling on stop. */
static bool db_await(PGconn *conn, const struct db_wait *wait, int64_t started, int64_t *next_tick,
		     bool *cancelled)
{
	while (PQisBusy(conn)) {
		if (wait && wait->stop && atomic_load(wait->stop) && !*cancelled) {
			db_cancel(conn);
			*cancelled = true;
		}
		int timeout = 50;
		if (wait && wait->tick && wait->tick_ms > 0 && wait->tick_ms < timeout)
			timeout = wait->tick_ms;
		struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
		if (poll(&pfd, 1, timeout) < 0)
			continue;
		if (PQconsumeInput(conn) == 0)
			return false;
		int64_t now = mtime_now_ms();
		if (wait && wait->tick && wait->tick_ms > 0 && now >= *next_tick) {
			wait->tick(wait->ctx, now - started);
			*next_tick = now + wait->tick_ms;
		}
	}
	return true;
}

PGresult *db_run(PGconn *conn, const char *sql, int nparams, const char *const *params,
		 const struct db_wait *wait, struct mg_error *err)
{
	PGresult *last = NULL;
	bool failed = false, cancelled = false;
	int64_t started = mtime_now_ms();
	int64_t next_tick = started + (wait && wait->tick_ms > 0 ? wait->tick_ms : 0);

	if (!db_send(conn, sql, nparams, params)) {
		db_error_from(err, conn, NULL);
		return NULL;
	}
	for (;;) {
		if (!db_await(conn, wait, started, &next_tick, &cancelled)) {
			if (!failed)
				db_error_from(err, conn, NULL);
			failed = true;
			break;
		}
		PGresult *res = PQgetResult(conn);
		if (!res)
			break;
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
			PQclear(last);
			last = res;
			continue;
		}
		if (!failed)
			db_error_from(err, conn, res);
		failed = true;
		PQclear(res);
	}
	if (failed) {
		PQclear(last);
		if (cancelled && err)
			err->transient = true;
		return NULL;
	}
	if (!last)
		mg_error_set(err, "XX000", false, "no result for: %.80s", sql);
	return last;
}

PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   struct mg_error *err)
{
	return db_run(conn, sql, nparams, params, NULL, err);
}

bool db_command(PGconn *conn, const char *sql, struct mg_error *err)
{
	PGresult *res = db_run(conn, sql, -1, NULL, NULL, err);
	PQclear(res);
	return res != NULL;
}
