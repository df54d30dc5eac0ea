#include "uuidv7_sql.h"

#include <stdlib.h>
#include <string.h>

#include "strb.h"

char *uuidv7_random_source(PGconn *conn, int server_version, const char *pgcrypto_schema)
{
	struct strb s;
	strb_init(&s);
	if (server_version >= 130000 || !pgcrypto_schema)
		strb_printf(&s, "pg_catalog.gen_random_uuid()");
	else {
		strb_ident(&s, conn, pgcrypto_schema);
		strb_printf(&s, ".gen_random_uuid()");
	}
	return strb_steal(&s);
}

/*
 * A SQL-language function (inlinable, no per-call PL/pgSQL interpreter) that
 * overwrites the first 6 bytes of a random v4 uuid with the Unix time in ms
 * and turns the version nibble 4 (0100) into 7 (0111) by setting bits 52 and
 * 53; the variant bits of the v4 value are already RFC 9562's 10. Every name,
 * type and operator is qualified, so a caller's search_path cannot redirect
 * it, without a SET clause (which would prevent inlining).
 */
char *uuidv7_create_function_sql(PGconn *conn, const char *prefix, const char *random_source)
{
	struct strb s;
	strb_init(&s);
	strb_printf(&s, "CREATE FUNCTION ");
	strb_qualified(&s, conn, prefix, "uuid_generate_v7");
	strb_printf(&s,
		"() RETURNS pg_catalog.uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $uuidv7$"
		" SELECT pg_catalog.encode(pg_catalog.set_bit(pg_catalog.set_bit(pg_catalog.overlay("
		"pg_catalog.uuid_send(%s), pg_catalog.substr(pg_catalog.int8send(pg_catalog.floor("
		"pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.*) 1000"
		")::pg_catalog.int8), 3, 6), 1, 6), 52, 1), 53, 1), 'hex')::pg_catalog.uuid"
		" $uuidv7$",
		random_source);
	return strb_steal(&s);
}

char *uuidv7_backfill_expr(PGconn *conn, const char *alias, const char *ts_col, const char *pk,
			   const char *random_source, int start_param)
{
	struct strb ms, s;
	strb_init(&ms);
	strb_init(&s);
	if (ts_col) {
		/* date_part of a timestamp without time zone is its nominal value,
		 * i.e. read as UTC whatever the session TimeZone; truncating to ms
		 * first and rounding keeps float error from moving a millisecond. */
		struct strb col;
		strb_init(&col);
		strb_printf(&col, "%s.", alias);
		strb_ident(&col, conn, ts_col);
		char param[16];
		snprintf(param, sizeof(param), "$%d", start_param);
		const char *vals[] = { col.buf, param };
		strb_subst(&ms,
			"CASE WHEN pg_catalog.isfinite({1})"
			" AND pg_catalog.date_part('epoch', {1}) >= 0"
			" AND pg_catalog.date_part('epoch', {1}) < 281474976710.655"
			" THEN pg_catalog.round(pg_catalog.date_part('epoch',"
			" pg_catalog.date_trunc('milliseconds', {1})) * 1000)::pg_catalog.int8"
			" ELSE {2}::pg_catalog.int8 END",
			vals, 2);
		strb_free(&col);
	} else {
		strb_printf(&ms, "pg_catalog.floor(pg_catalog.date_part('epoch',"
			    " pg_catalog.clock_timestamp()) * 1000)::pg_catalog.int8");
	}
	strb_printf(&s, "pg_catalog.encode(");
	if (pk)
		strb_printf(&s, "pg_catalog.overlay(");
	else
		strb_printf(&s, "pg_catalog.set_bit(pg_catalog.set_bit(");
	strb_printf(&s, "pg_catalog.overlay(pg_catalog.uuid_send(%s),"
		    " pg_catalog.substr(pg_catalog.int8send(%s), 3, 6), 1, 6)",
		    random_source, ms.buf);
	if (pk) {
		/* 0x7000 | (id & 0xfff): version 7 and 12 bits of id. */
		strb_printf(&s, ", pg_catalog.int2send((28672 + (%s.", alias);
		strb_ident(&s, conn, pk);
		strb_printf(&s, " & 4095))::pg_catalog.int2), 7, 2)");
	} else {
		strb_printf(&s, ", 52, 1), 53, 1)");
	}
	strb_printf(&s, ", 'hex')::pg_catalog.uuid");
	strb_free(&ms);
	return strb_steal(&s);
}

bool uuidv7_check_function(struct runner *r, struct mg_error *err)
{
	struct strb sql;
	strb_init(&sql);
	/* An existing function (PhoenixKit's) may call pgcrypto unqualified, as
	 * the application's search_path allows: call it the same way. */
	strb_printf(&sql, "SELECT pg_catalog.set_config('search_path', ");
	strb_literal(&sql, r->conn, r->opt->prefix);
	strb_printf(&sql, " || ', public', true); SELECT v::text, ('x' || pg_catalog.substr(pg_catalog.replace(v::text, '-', ''), 1, 12))"
		    "::bit(48)::int8 - pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) * 1000)::int8"
		    " FROM (SELECT ");
	strb_qualified(&sql, r->conn, r->opt->prefix, "uuid_generate_v7");
	strb_printf(&sql, "() AS v) g");
	PGresult *res = db_run(r->conn, sql.buf, -1, NULL, NULL, err);
	strb_free(&sql);
	if (!res)
		return false;
	const char *v = PQgetvalue(res, 0, 0);
	long long skew = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	bool ok = strlen(v) == 36 && v[14] == '7' && strchr("89ab", v[19]) != NULL &&
		  skew > -60000 && skew < 60000;
	if (!ok)
		mg_error_set(err, "22000", false,
			     "%s.uuid_generate_v7() exists but returned %s, not a UUIDv7 of the current time;"
			     " drop or fix it, then run again", r->opt->prefix, v);
	PQclear(res);
	return ok;
}
