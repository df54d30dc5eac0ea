/* SQL that produces UUIDv7 values: <prefix>.uuid_generate_v7() and the
 * inline expression the backfill uses. */
#ifndef UUIDGATE_UUIDV7_SQL_H
#define UUIDGATE_UUIDV7_SQL_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "runner.h"

/* A qualified call returning 16 random bytes as a v4 uuid: core
 * gen_random_uuid() from PostgreSQL 13, pgcrypto's before. malloc'd. */
char *uuidv7_random_source(PGconn *conn, int server_version, const char *pgcrypto_schema);

/* CREATE FUNCTION <prefix>.uuid_generate_v7(). malloc'd. */
char *uuidv7_create_function_sql(PGconn *conn, const char *prefix, const char *random_source);

/* The value for one backfilled row of `alias`: Unix ms from ts_col (read as
 * UTC; NULL, infinite or pre-1970 fall back to parameter $<start_param>) or
 * the clock when ts_col is NULL; the 12 rand_a bits from the primary key when
 * pk is given, so ties within one millisecond follow id order. malloc'd. */
char *uuidv7_backfill_expr(PGconn *conn, const char *alias, const char *ts_col, const char *pk,
			   const char *random_source, int start_param);

/* Calls <prefix>.uuid_generate_v7() and checks it returns a v7 value with
 * the server's current time. */
bool uuidv7_check_function(struct runner *r, struct mg_error *err);

#endif
