/* libpq connections of the migration and errors as values. */
#ifndef UUIDGATE_DB_H
#define UUIDGATE_DB_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "migrate.h"

#define DB_APPLICATION_NAME "uuidgate-migrate"

struct mg_error {
	char sqlstate[6];
	char message[512];
	bool transient;
	bool set;
};

void mg_error_set(struct mg_error *e, const char *sqlstate, bool transient, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void mg_error_clear(struct mg_error *e);
bool mg_error_is(const struct mg_error *e, const char *sqlstate);

/* A session with application_name uuidgate-migrate, TCP keepalives, no
 * timeouts, search_path pg_catalog (our SQL qualifies every user object) and
 * idle_in_transaction_session_timeout as a safety net. */
PGconn *db_connect(const struct migrate_options *opt, struct mg_error *err);

/* Called about every tick_ms while a statement runs. */
typedef void (*db_tick_fn)(void *ctx, int64_t waited_ms);

struct db_wait {
	atomic_bool *stop;   /* raised: cancel the statement, fail with 57014 */
	int tick_ms;
	db_tick_fn tick;
	void *ctx;
};

/* One statement with parameters ($1.. as text), or, with nparams < 0, a
 * multi-statement string run as one implicit transaction. Returns the last
 * result (caller PQclear()s), NULL with err set on any error. */
PGresult *db_run(PGconn *conn, const char *sql, int nparams, const char *const *params,
		 const struct db_wait *wait, struct mg_error *err);

/* Shorthands without stop/tick. */
PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   struct mg_error *err);
bool db_command(PGconn *conn, const char *sql, struct mg_error *err);

/* Asks the server to cancel what conn is running (thread-safe). */
void db_cancel(PGconn *conn);

#endif
