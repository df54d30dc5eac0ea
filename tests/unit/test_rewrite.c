#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "pgbuf.h"
#include "pgread.h"
#include "rewrite.h"
#include "rewrite_ext.h"
#include "sqlscan.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
	exit(1); } } while (0)

static const char *const tables[] = { "users", "email_logs", "Ünïcödé", "Mixed Case" };

static const struct rewrite_session default_session = {
	.schema = "public",
	.tables = tables,
	.n_tables = sizeof(tables) / sizeof(tables[0]),
	.unqualified_in_schema = true,
	.utf8_standard_strings = true,
};

/* A generator with a frozen clock (2023-11-14T22:13:20Z) and zero random
 * bytes: the k-th value drawn is 018bcfe5-6800-7kkk-8000-000000000000. */
static uint64_t frozen_clock(void *ctx)
{
	(void)ctx;
	return 1700000000000000000u;
}

static bool zero_random(void *ctx, uint8_t *buf, size_t n)
{
	(void)ctx;
	memset(buf, 0, n);
	return true;
}

/* Replaces each {k} in pattern with the k-th deterministic value. */
static char *expand(const char *pattern)
{
	size_t cap = strlen(pattern) * 8 + 1;
	char *out = malloc(cap);
	CHECK(out);
	size_t w = 0;
	for (const char *p = pattern; *p;) {
		if (*p == '{') {
			char *end;
			unsigned long k = strtoul(p + 1, &end, 10);
			CHECK(*end == '}');
			w += (size_t)snprintf(out + w, cap - w, "018bcfe5-6800-7%03lx-8000-000000000000", k);
			p = end + 1;
		} else {
			out[w++] = *p++;
		}
	}
	out[w] = '\0';
	return out;
}

static void check_parses(const char *sql)
{
	PgQueryParseResult r = pg_query_parse(sql);
	if (r.error)
		fprintf(stderr, "does not parse: %s\n  %s\n", r.error->message, sql);
	CHECK(!r.error);
	pg_query_free_parse_result(r);
}

struct query_case {
	const char *in;
	const char *out;	/* NULL: passes through */
};

static const struct query_case query_cases[] = {
	/* the basic shapes */
	{ "INSERT INTO users (name) VALUES ('a')",
	  "INSERT INTO users (name, uuid) VALUES ('a', '{0}'::uuid)" },
	{ "insert into public.users(name,email) values ('a','b'),('c','d')",
	  "insert into public.users(name,email, uuid) values ('a','b', '{0}'::uuid),('c','d', '{1}'::uuid)" },
	{ "INSERT INTO Users (a) VALUES (1)",
	  "INSERT INTO Users (a, uuid) VALUES (1, '{0}'::uuid)" },
	{ "INSERT INTO PUBLIC.USERS (a) VALUES (1)",
	  "INSERT INTO PUBLIC.USERS (a, uuid) VALUES (1, '{0}'::uuid)" },
	{ "INSERT INTO users DEFAULT VALUES",
	  "INSERT INTO users (uuid) VALUES ('{0}'::uuid)" },
	{ "INSERT INTO public.users AS u DEFAULT /* d */ VALUES RETURNING id",
	  "INSERT INTO public.users AS u (uuid) /* d */ VALUES ('{0}'::uuid) RETURNING id" },
	{ "INSERT INTO users AS u (a) VALUES (1)",
	  "INSERT INTO users AS u (a, uuid) VALUES (1, '{0}'::uuid)" },
	{ "INSERT INTO users (id, a) OVERRIDING SYSTEM VALUE VALUES (1, 2)",
	  "INSERT INTO users (id, a, uuid) OVERRIDING SYSTEM VALUE VALUES (1, 2, '{0}'::uuid)" },
	{ "INSERT INTO users (a[1], b.c) VALUES (1, 2)",
	  "INSERT INTO users (a[1], b.c, uuid) VALUES (1, 2, '{0}'::uuid)" },
	{ "INSERT INTO users (a, b) VALUES ((1 + 2) * 3, f(x, (y), DEFAULT))",
	  "INSERT INTO users (a, b, uuid) VALUES ((1 + 2) * 3, f(x, (y), DEFAULT), '{0}'::uuid)" },
	{ "INSERT INTO users (a) VALUES (DEFAULT), ((SELECT max(a) FROM users))",
	  "INSERT INTO users (a, uuid) VALUES (DEFAULT, '{0}'::uuid), ((SELECT max(a) FROM users), '{1}'::uuid)" },
	/* ON CONFLICT and RETURNING are untouched */
	{ "INSERT INTO users (email) VALUES ('a') ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name RETURNING id, (SELECT 1)",
	  "INSERT INTO users (email, uuid) VALUES ('a', '{0}'::uuid) ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name RETURNING id, (SELECT 1)" },
	{ "INSERT INTO users (email) VALUES ('a'),('b') ON CONFLICT DO NOTHING",
	  "INSERT INTO users (email, uuid) VALUES ('a', '{0}'::uuid),('b', '{1}'::uuid) ON CONFLICT DO NOTHING" },
	/* quoted and Unicode names */
	{ "INSERT INTO \"public\".\"users\" (\"Name\") VALUES ($$x$$)",
	  "INSERT INTO \"public\".\"users\" (\"Name\", uuid) VALUES ($$x$$, '{0}'::uuid)" },
	{ "INSERT INTO \"Ünïcödé\" (ä) VALUES ('ö')",
	  "INSERT INTO \"Ünïcödé\" (ä, uuid) VALUES ('ö', '{0}'::uuid)" },
	{ "INSERT INTO U&\"\\00dcn\\00efc\\00f6d\\00e9\" (a) VALUES (U&'\\0041')",
	  "INSERT INTO U&\"\\00dcn\\00efc\\00f6d\\00e9\" (a, uuid) VALUES (U&'\\0041', '{0}'::uuid)" },
	{ "INSERT INTO \"Mixed Case\" (a) VALUES (1)",
	  "INSERT INTO \"Mixed Case\" (a, uuid) VALUES (1, '{0}'::uuid)" },
	{ "INSERT INTO \"USERS\" (a) VALUES (1)", NULL },
	{ "INSERT INTO Mixed (a) VALUES (1)", NULL },
	/* comments, strings and dollar quotes holding parentheses */
	{ "INSERT /* ( */ INTO users -- (x\n ( a /* ) */ , b -- )\n ) VALUES ( 1 /* ) */, ( 2 ) -- )\n ) ;",
	  "INSERT /* ( */ INTO users -- (x\n ( a /* ) */ , b -- )\n , uuid) VALUES ( 1 /* ) */, ( 2 ) -- )\n , '{0}'::uuid) ;" },
	{ "/* lead /* nested */ */ INSERT INTO users (a) VALUES ('); SET x = 1; (')",
	  "/* lead /* nested */ */ INSERT INTO users (a, uuid) VALUES ('); SET x = 1; (', '{0}'::uuid)" },
	{ "INSERT INTO users (a) VALUES ($q$ ) ; $ $q$), ($$)$$)",
	  "INSERT INTO users (a, uuid) VALUES ($q$ ) ; $ $q$, '{0}'::uuid), ($$)$$, '{1}'::uuid)" },
	{ "INSERT INTO users (a) VALUES (E'\\')\\'')",
	  "INSERT INTO users (a, uuid) VALUES (E'\\')\\'', '{0}'::uuid)" },
	{ "INSERT INTO users (a) VALUES ('it''s (')",
	  "INSERT INTO users (a, uuid) VALUES ('it''s (', '{0}'::uuid)" },
	/* WITH */
	{ "WITH x AS (SELECT 1 AS v) INSERT INTO users (a) VALUES ((SELECT v FROM x))",
	  "WITH x AS (SELECT 1 AS v) INSERT INTO users (a, uuid) VALUES ((SELECT v FROM x), '{0}'::uuid)" },
	{ "WITH d AS (DELETE FROM users RETURNING a) INSERT INTO email_logs (a) VALUES (1)",
	  "WITH d AS (DELETE FROM users RETURNING a) INSERT INTO email_logs (a, uuid) VALUES (1, '{0}'::uuid)" },
	{ "WITH x AS (INSERT INTO users (a) VALUES (1) RETURNING id) SELECT * FROM x", NULL },
	{ "WITH x AS (INSERT INTO users (a) VALUES (1) RETURNING id) INSERT INTO email_logs (b) VALUES (2)",
	  "WITH x AS (INSERT INTO users (a) VALUES (1) RETURNING id) INSERT INTO email_logs (b, uuid) VALUES (2, '{0}'::uuid)" },
	/* several statements: each qualifying INSERT on its own */
	{ "SELECT 1; INSERT INTO users (a) VALUES (1); INSERT INTO other (a) VALUES (2);\ninsert into users (b) values (3),(4)",
	  "SELECT 1; INSERT INTO users (a, uuid) VALUES (1, '{0}'::uuid); INSERT INTO other (a) VALUES (2);\ninsert into users (b, uuid) values (3, '{1}'::uuid),(4, '{2}'::uuid)" },
	{ "INSERT INTO users DEFAULT VALUES; INSERT INTO users (a) SELECT 1; INSERT INTO users (a) VALUES (1)",
	  "INSERT INTO users (uuid) VALUES ('{0}'::uuid); INSERT INTO users (a) SELECT 1; INSERT INTO users (a, uuid) VALUES (1, '{1}'::uuid)" },
	/* a SET anywhere passes the whole text */
	{ "SET search_path = app; INSERT INTO users (a) VALUES (1)", NULL },
	{ "INSERT INTO users (a) VALUES (1); reset all", NULL },
	{ "INSERT INTO users (a) VALUES (1); /* x */ set local search_path = x", NULL },
	/* everything else passes */
	{ "INSERT INTO users (a) SELECT 1", NULL },
	{ "INSERT INTO users (a) SELECT a FROM users", NULL },
	{ "INSERT INTO users (a) VALUES (1) ORDER BY 1", NULL },
	{ "INSERT INTO users (a) VALUES (1) LIMIT 1", NULL },
	{ "INSERT INTO users (a) (VALUES (1))", NULL },
	{ "INSERT INTO users (a) VALUES (1) UNION VALUES (2)", NULL },
	{ "INSERT INTO users VALUES (1)", NULL },
	{ "INSERT INTO users SELECT 1", NULL },
	{ "INSERT INTO users (a, uuid) VALUES (1, gen_random_uuid())", NULL },
	{ "INSERT INTO users (\"uuid\", a) VALUES (gen_random_uuid(), 1)", NULL },
	{ "INSERT INTO users (uuid[1]) VALUES (1)", NULL },
	{ "INSERT INTO users (a) VALUES (1, 2)", NULL },
	{ "INSERT INTO users (a, b) VALUES (1)", NULL },
	{ "INSERT INTO other.users (a) VALUES (1)", NULL },
	{ "INSERT INTO app.public.users (a) VALUES (1)", NULL },
	{ "INSERT INTO pg_temp.users (a) VALUES (1)", NULL },
	{ "INSERT INTO accounts (a) VALUES (1)", NULL },
	{ "PREPARE p(int) AS INSERT INTO users (a) VALUES ($1)", NULL },
	{ "EXPLAIN INSERT INTO users (a) VALUES (1)", NULL },
	{ "EXPLAIN ANALYZE WITH x AS (SELECT 1) INSERT INTO users (a) VALUES (1)", NULL },
	{ "CREATE RULE r AS ON INSERT TO t DO INSTEAD INSERT INTO users (a) VALUES (1)", NULL },
	{ "CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC INSERT INTO users (a) VALUES (1); END",
	  NULL },
	{ "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ INSERT INTO users (a) VALUES (1) $$", NULL },
	{ "DO $$BEGIN INSERT INTO users (a) VALUES (1); END$$", NULL },
	{ "COPY users (a) FROM STDIN", NULL },
	{ "SELECT 'INSERT INTO users (a) VALUES (1)'", NULL },
	{ "UPDATE users SET a = 1", NULL },
	{ "MERGE INTO users u USING s ON u.id = s.id WHEN NOT MATCHED THEN INSERT (a) VALUES (s.a)", NULL },
	/* statements the parser rejects */
	{ "INSERT INTO users (a) VALUES (1", NULL },
	{ "INSERT INTO users (a) VALUES (1)) garbage", NULL },
	{ "INSERT INTO users (a) VALUES ('unterminated)", NULL },
	{ "INSERT INTO users (a) VALUES (1); SELEC 2", NULL },
	{ "INSERT INTO users () VALUES ()", NULL },
	{ "", NULL },
	{ "   -- only a comment", NULL },
	{ ";;;", NULL },
};

static void test_query_table(void)
{
	for (size_t i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
		const struct query_case *c = &query_cases[i];
		struct uuidv7_gen gen;
		uuidv7_init_with(&gen, frozen_clock, NULL, zero_random, NULL);
		struct rewrite_result r;
		enum rewrite_status st = rewrite_query(&default_session, &gen, c->in, &r);
		if (!c->out) {
			if (st != REWRITE_PASS)
				fprintf(stderr, "case %zu should pass: %s\n  got: %s\n", i, c->in, r.sql);
			CHECK(st == REWRITE_PASS);
			CHECK(r.sql == NULL);
			continue;
		}
		char *want = expand(c->out);
		if (st != REWRITE_DONE || strcmp(r.sql, want) != 0)
			fprintf(stderr, "case %zu: %s\n  want: %s\n  got:  %s\n", i, c->in, want,
				st == REWRITE_DONE ? r.sql : "(pass)");
		CHECK(st == REWRITE_DONE);
		CHECK(strcmp(r.sql, want) == 0);
		CHECK(r.sql_len == strlen(want));
		CHECK(r.extra_params == 0);
		check_parses(r.sql);
		free(want);
		rewrite_result_free(&r);
	}
}

static void test_session_conditions(void)
{
	struct uuidv7_gen gen;
	uuidv7_init_with(&gen, frozen_clock, NULL, zero_random, NULL);
	struct rewrite_result r;
	struct rewrite_session s = default_session;

	s.utf8_standard_strings = false;
	CHECK(rewrite_query(&s, &gen, "INSERT INTO public.users (a) VALUES (1)", &r) == REWRITE_PASS);

	s = default_session;
	s.unqualified_in_schema = false;
	CHECK(rewrite_query(&s, &gen, "INSERT INTO users (a) VALUES (1)", &r) == REWRITE_PASS);
	CHECK(rewrite_query(&s, &gen, "INSERT INTO public.users (a) VALUES (1)", &r) == REWRITE_DONE);
	rewrite_result_free(&r);

	s = default_session;
	s.schema = "app";
	CHECK(rewrite_query(&s, &gen, "INSERT INTO public.users (a) VALUES (1)", &r) == REWRITE_PASS);
	CHECK(rewrite_query(&s, &gen, "INSERT INTO app.users (a) VALUES (1)", &r) == REWRITE_DONE);
	rewrite_result_free(&r);

	s.n_tables = 0;
	CHECK(rewrite_query(&s, &gen, "INSERT INTO app.users (a) VALUES (1)", &r) == REWRITE_PASS);
	CHECK(rewrite_query(&default_session, NULL, "INSERT INTO users (a) VALUES (1)", &r) ==
	      REWRITE_PASS);
}

struct parse_case {
	const char *in;
	uint32_t declared;
	const char *out;	/* NULL: passes through */
	uint32_t orig_params;
	uint32_t extra_params;
};

static const struct parse_case parse_cases[] = {
	{ "INSERT INTO users (a, b) VALUES ($1, $2)", 0,
	  "INSERT INTO users (a, b, uuid) VALUES ($1, $2, $3)", 2, 1 },
	{ "INSERT INTO users (a, b) VALUES ($1, $2)", 5,
	  "INSERT INTO users (a, b, uuid) VALUES ($1, $2, $6)", 5, 1 },
	{ "INSERT INTO users (a, b) VALUES ($1, $3)", 1,
	  "INSERT INTO users (a, b, uuid) VALUES ($1, $3, $4)", 3, 1 },
	{ "INSERT INTO users (a) VALUES ($1), ($2) RETURNING id", 2,
	  "INSERT INTO users (a, uuid) VALUES ($1, $3), ($2, $4) RETURNING id", 2, 2 },
	{ "INSERT INTO users DEFAULT VALUES RETURNING id", 0,
	  "INSERT INTO users (uuid) VALUES ($1) RETURNING id", 0, 1 },
	{ "WITH x AS (SELECT $2::int AS v) INSERT INTO users (a) VALUES ((SELECT v FROM x))", 0,
	  "WITH x AS (SELECT $2::int AS v) INSERT INTO users (a, uuid) VALUES ((SELECT v FROM x), $3)", 2, 1 },
	{ "INSERT INTO users (a) VALUES ('$9')", 0,
	  "INSERT INTO users (a, uuid) VALUES ('$9', $1)", 0, 1 },
	{ "INSERT INTO users (a) VALUES ($1)", 65534,
	  "INSERT INTO users (a, uuid) VALUES ($1, $65535)", 65534, 1 },
	{ "INSERT INTO users (a) VALUES ($1), ($1)", 65534, NULL, 0, 0 },
	{ "INSERT INTO users (a) VALUES ($1)", 65535, NULL, 0, 0 },
	{ "INSERT INTO users (a) VALUES ($65535)", 0, NULL, 0, 0 },
	{ "INSERT INTO users (a) VALUES ($1)", 70000, NULL, 0, 0 },
	{ "INSERT INTO users (a) VALUES ($1); INSERT INTO users (a) VALUES ($1)", 0, NULL, 0, 0 },
	{ "INSERT INTO users (a) SELECT $1", 0, NULL, 0, 0 },
	{ "PREPARE p AS INSERT INTO users (a) VALUES ($1)", 0, NULL, 0, 0 },
	{ "SELECT $1", 1, NULL, 0, 0 },
};

static void test_parse_table(void)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct rewrite_result r;
		enum rewrite_status st = rewrite_parse_sql(&default_session, c->in, c->declared, &r);
		if (!c->out) {
			if (st != REWRITE_PASS)
				fprintf(stderr, "parse case %zu should pass: %s\n  got: %s\n", i, c->in, r.sql);
			CHECK(st == REWRITE_PASS);
			continue;
		}
		if (st != REWRITE_DONE || strcmp(r.sql, c->out) != 0)
			fprintf(stderr, "parse case %zu: %s\n  want: %s\n  got:  %s\n", i, c->in, c->out,
				st == REWRITE_DONE ? r.sql : "(pass)");
		CHECK(st == REWRITE_DONE);
		CHECK(strcmp(r.sql, c->out) == 0);
		CHECK(r.declared_params == c->declared);
		CHECK(r.orig_params == c->orig_params);
		CHECK(r.extra_params == c->extra_params);
		CHECK(r.rows == c->extra_params);
		check_parses(r.sql);
		rewrite_result_free(&r);
	}
}

/* 1-based character position of the first occurrence of needle. */
static uint32_t char_pos(const char *text, const char *needle)
{
	const char *at = strstr(text, needle);
	CHECK(at);
	uint32_t chars = 0;
	for (const char *p = text; p < at; p++)
		chars += ((unsigned char)*p & 0xc0) != 0x80;
	return chars + 1;
}

static void test_positions(void)
{
	struct uuidv7_gen gen;
	uuidv7_init_with(&gen, frozen_clock, NULL, zero_random, NULL);
	const char *in = "INSERT INTO \"Ünïcödé\" (ä) VALUES ('ö' || x1), ('ü' || x2) RETURNING x3 + \"é\"";
	struct rewrite_result r;
	CHECK(rewrite_query(&default_session, &gen, in, &r) == REWRITE_DONE);
	const char *marks[] = { "INSERT", "\"Ünïcödé\"", "ä", "VALUES", "x1", "x2", "x3", "\"é\"" };
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		CHECK(rewrite_posmap_original(&r.posmap, char_pos(r.sql, marks[i])) == char_pos(in, marks[i]));
	/* inside added text: the place it was added */
	CHECK(rewrite_posmap_original(&r.posmap, char_pos(r.sql, "uuid)")) == char_pos(in, ") VALUES"));
	CHECK(rewrite_posmap_original(&r.posmap, char_pos(r.sql, "'018b")) == char_pos(in, "), ('ü'"));
	CHECK(rewrite_posmap_original(&r.posmap, 0) == 0);
	rewrite_result_free(&r);

	/* DEFAULT VALUES replaces a keyword */
	in = "INSERT INTO users AS \"ü\" DEFAULT VALUES RETURNING bad";
	CHECK(rewrite_query(&default_session, &gen, in, &r) == REWRITE_DONE);
	CHECK(rewrite_posmap_original(&r.posmap, char_pos(r.sql, "bad")) == char_pos(in, "bad"));
	CHECK(rewrite_posmap_original(&r.posmap, char_pos(r.sql, "VALUES")) == char_pos(in, "VALUES"));
	CHECK(rewrite_posmap_original(&r.posmap, char_pos(r.sql, "(uuid)")) == char_pos(in, "DEFAULT"));
	rewrite_result_free(&r);

	/* extended */
	in = "INSERT INTO users (a) VALUES ($1), ($2) RETURNING ü, bad";
	CHECK(rewrite_parse_sql(&default_session, in, 0, &r) == REWRITE_DONE);
	CHECK(rewrite_posmap_original(&r.posmap, char_pos(r.sql, "bad")) == char_pos(in, "bad"));
	rewrite_result_free(&r);
}

static void test_prefilter(void)
{
	CHECK(sqlscan_leading_keywords("select 1", 8) == 0);
	CHECK(sqlscan_leading_keywords("  Insert", 8) == SQLSCAN_INSERT);
	CHECK(sqlscan_leading_keywords("insertx", 7) == 0);
	const char *q = "/* a */ -- b\n with x as (select 1) select 1; 'x; insert' ; \"y;insert\"; "
			"$a$ ; insert $a$; E'\\'; insert'; SeT x=1; DISCARD all";
	CHECK(sqlscan_leading_keywords(q, strlen(q)) == (SQLSCAN_WITH | SQLSCAN_SET | SQLSCAN_DEALLOCATE));
	q = "select $1; insert";
	CHECK(sqlscan_leading_keywords(q, strlen(q)) == SQLSCAN_INSERT);
	q = "select a$b; reset x";
	CHECK(sqlscan_leading_keywords(q, strlen(q)) == SQLSCAN_SET);
	q = "select 'unterminated; insert";
	CHECK(sqlscan_leading_keywords(q, strlen(q)) == 0);
	q = "/* /* nested */ ; insert */ deallocate p";
	CHECK(sqlscan_leading_keywords(q, strlen(q)) == SQLSCAN_DEALLOCATE);
}

/* ---- extended protocol messages ---- */

static void put_u16(struct pgbuf *b, unsigned v)
{
	pgbuf_put_int16(b, (int16_t)(uint16_t)v);
}

/* A Bind body: formats[n_formats], values (NULL for SQL NULL), one result
 * format code (binary). */
static void make_bind(struct pgbuf *b, const char *stmt, const unsigned *formats, unsigned n_formats,
		      const char *const *values, unsigned n_values)
{
	pgbuf_reset(b);
	pgbuf_put_str(b, "portal");
	pgbuf_put_str(b, stmt);
	put_u16(b, n_formats);
	for (unsigned i = 0; i < n_formats; i++)
		put_u16(b, formats[i]);
	put_u16(b, n_values);
	for (unsigned i = 0; i < n_values; i++) {
		if (!values[i]) {
			pgbuf_put_int32(b, -1);
			continue;
		}
		pgbuf_put_int32(b, (int32_t)strlen(values[i]));
		pgbuf_put_bytes(b, values[i], strlen(values[i]));
	}
	put_u16(b, 1);
	put_u16(b, 1);
	CHECK(!pgbuf_failed(b));
}

struct decoded_bind {
	unsigned n_formats;
	unsigned formats[8];
	unsigned n_values;
	int32_t lens[8];
	const uint8_t *values[8];
	unsigned n_results;
};

static void decode_bind(const struct pgbuf *msg, struct decoded_bind *d)
{
	CHECK(msg->len >= 5 && msg->data[0] == 'B');
	CHECK(pg_get_u32(msg->data + 1) == msg->len - 1);
	struct pgread r;
	pgread_init(&r, msg->data + 5, msg->len - 5);
	CHECK(strcmp(pgread_str(&r), "portal") == 0);
	pgread_str(&r);
	d->n_formats = (uint16_t)pgread_int16(&r);
	CHECK(d->n_formats <= 8);
	for (unsigned i = 0; i < d->n_formats; i++)
		d->formats[i] = (uint16_t)pgread_int16(&r);
	d->n_values = (uint16_t)pgread_int16(&r);
	CHECK(d->n_values <= 8);
	for (unsigned i = 0; i < d->n_values; i++) {
		d->lens[i] = pgread_int32(&r);
		d->values[i] = d->lens[i] > 0 ? pgread_bytes(&r, (size_t)d->lens[i]) : NULL;
	}
	d->n_results = (uint16_t)pgread_int16(&r);
	CHECK(d->n_results == 1 && pgread_int16(&r) == 1);
	CHECK(pgread_at_end(&r));
}

static void test_bind(void)
{
	struct uuidv7_gen gen;
	uuidv7_init_with(&gen, frozen_clock, NULL, zero_random, NULL);
	struct pgbuf in, out;
	pgbuf_init(&in);
	pgbuf_init(&out);
	struct rewrite_ext_error err;
	struct decoded_bind d;
	const char *values[] = { "1", NULL };

	/* no format codes: all text, ours too */
	make_bind(&in, "s", NULL, 0, values, 2);
	CHECK(rewrite_ext_bind(in.data, in.len, 2, 1, &gen, &out, &err) == REWRITE_BIND_OK);
	decode_bind(&out, &d);
	CHECK(d.n_formats == 0 && d.n_values == 3);
	CHECK(d.lens[0] == 1 && memcmp(d.values[0], "1", 1) == 0 && d.lens[1] == -1);
	CHECK(d.lens[2] == 36 && memcmp(d.values[2], "018bcfe5-6800-7000-8000-000000000000", 36) == 0);

	/* one code for all: binary, ours too */
	unsigned one_binary[] = { 1 };
	make_bind(&in, "s", one_binary, 1, values, 2);
	pgbuf_reset(&out);
	CHECK(rewrite_ext_bind(in.data, in.len, 2, 2, &gen, &out, &err) == REWRITE_BIND_OK);
	decode_bind(&out, &d);
	CHECK(d.n_formats == 1 && d.formats[0] == 1 && d.n_values == 4);
	CHECK(d.lens[2] == 16 && d.lens[3] == 16);
	CHECK(d.values[2][0] == 0x01 && (d.values[2][6] >> 4) == 7 && memcmp(d.values[2], d.values[3], 16) < 0);

	/* one code for all: text */
	unsigned one_text[] = { 0 };
	make_bind(&in, "s", one_text, 1, values, 1);
	pgbuf_reset(&out);
	CHECK(rewrite_ext_bind(in.data, in.len, 1, 1, &gen, &out, &err) == REWRITE_BIND_OK);
	decode_bind(&out, &d);
	CHECK(d.n_formats == 1 && d.formats[0] == 0 && d.n_values == 2 && d.lens[1] == 36);

	/* one code per parameter: ours binary with a code of its own */
	unsigned per_param[] = { 0, 1 };
	make_bind(&in, "s", per_param, 2, values, 2);
	pgbuf_reset(&out);
	CHECK(rewrite_ext_bind(in.data, in.len, 2, 1, &gen, &out, &err) == REWRITE_BIND_OK);
	decode_bind(&out, &d);
	CHECK(d.n_formats == 3 && d.formats[0] == 0 && d.formats[1] == 1 && d.formats[2] == 1);
	CHECK(d.n_values == 3 && d.lens[2] == 16);

	/* a single unknown code is spelled out so the server still rejects it */
	unsigned odd[] = { 7 };
	make_bind(&in, "s", odd, 1, values, 2);
	pgbuf_reset(&out);
	CHECK(rewrite_ext_bind(in.data, in.len, 2, 1, &gen, &out, &err) == REWRITE_BIND_OK);
	decode_bind(&out, &d);
	CHECK(d.n_formats == 3 && d.formats[0] == 7 && d.formats[1] == 7 && d.formats[2] == 1);
	make_bind(&in, "s", odd, 1, NULL, 0);
	pgbuf_reset(&out);
	CHECK(rewrite_ext_bind(in.data, in.len, 0, 1, &gen, &out, &err) == REWRITE_BIND_OK);
	decode_bind(&out, &d);
	CHECK(d.n_formats == 1 && d.formats[0] == 1 && d.n_values == 1 && d.lens[0] == 16);

	/* the server's errors, with the counts the client knows */
	make_bind(&in, "s", NULL, 0, values, 1);
	pgbuf_reset(&out);
	CHECK(rewrite_ext_bind(in.data, in.len, 2, 1, &gen, &out, &err) == REWRITE_BIND_ERROR);
	CHECK(strcmp(err.sqlstate, "08P01") == 0);
	CHECK(strcmp(err.message, "bind message supplies 1 parameters, but prepared statement \"s\" requires 2") == 0);
	CHECK(out.len == 0);
	unsigned three[] = { 0, 0, 0 };
	make_bind(&in, "", three, 3, values, 2);
	CHECK(rewrite_ext_bind(in.data, in.len, 2, 1, &gen, &out, &err) == REWRITE_BIND_ERROR);
	CHECK(strcmp(err.message, "bind message has 3 parameter formats but 2 parameters") == 0);

	/* every truncation and a trailing byte are rejected */
	make_bind(&in, "s", per_param, 2, values, 2);
	for (size_t n = 0; n < in.len; n++) {
		pgbuf_reset(&out);
		CHECK(rewrite_ext_bind(in.data, n, 2, 1, &gen, &out, &err) == REWRITE_BIND_ERROR);
		CHECK(out.len == 0);
	}
	pgbuf_put_u8(&in, 0);
	CHECK(rewrite_ext_bind(in.data, in.len, 2, 1, &gen, &out, &err) == REWRITE_BIND_ERROR);
	CHECK(strcmp(err.message, "invalid message format") == 0);
	/* a negative length other than -1 */
	pgbuf_reset(&in);
	pgbuf_put_str(&in, "");
	pgbuf_put_str(&in, "");
	put_u16(&in, 0);
	put_u16(&in, 1);
	pgbuf_put_int32(&in, -2);
	put_u16(&in, 0);
	CHECK(rewrite_ext_bind(in.data, in.len, 1, 1, &gen, &out, &err) == REWRITE_BIND_ERROR);

	pgbuf_free(&in);
	pgbuf_free(&out);
}

static void test_parse_message(void)
{
	struct pgbuf in, out;
	pgbuf_init(&in);
	pgbuf_init(&out);
	pgbuf_put_str(&in, "s1");
	pgbuf_put_str(&in, "INSERT INTO users (a, b) VALUES ($1, $3)");
	put_u16(&in, 1);
	pgbuf_put_int32(&in, 23);
	struct rewrite_result res;
	CHECK(rewrite_ext_parse(&default_session, in.data, in.len, &out, &res) == REWRITE_DONE);
	CHECK(res.declared_params == 1 && res.orig_params == 3 && res.extra_params == 1);
	CHECK(out.data[0] == 'P' && pg_get_u32(out.data + 1) == out.len - 1);
	struct pgread r;
	pgread_init(&r, out.data + 5, out.len - 5);
	CHECK(strcmp(pgread_str(&r), "s1") == 0);
	CHECK(strcmp(pgread_str(&r), "INSERT INTO users (a, b, uuid) VALUES ($1, $3, $4)") == 0);
	CHECK(pgread_int16(&r) == 4);
	CHECK(pgread_int32(&r) == 23);
	CHECK(pgread_int32(&r) == 0);
	CHECK(pgread_int32(&r) == 0);
	CHECK(pgread_int32(&r) == 2950);
	CHECK(pgread_at_end(&r));
	rewrite_result_free(&res);

	/* not rewritten, or malformed: nothing written */
	pgbuf_reset(&in);
	pgbuf_reset(&out);
	pgbuf_put_str(&in, "");
	pgbuf_put_str(&in, "SELECT 1");
	put_u16(&in, 0);
	CHECK(rewrite_ext_parse(&default_session, in.data, in.len, &out, &res) == REWRITE_PASS);
	pgbuf_reset(&in);
	pgbuf_put_str(&in, "");
	pgbuf_put_str(&in, "INSERT INTO users (a) VALUES (1)");
	put_u16(&in, 2);
	pgbuf_put_int32(&in, 23);
	CHECK(rewrite_ext_parse(&default_session, in.data, in.len, &out, &res) == REWRITE_PASS);
	CHECK(out.len == 0);
	pgbuf_free(&in);
	pgbuf_free(&out);
}

static void test_param_desc_and_errors(void)
{
	struct pgbuf in, out;
	pgbuf_init(&in);
	pgbuf_init(&out);
	put_u16(&in, 3);
	pgbuf_put_int32(&in, 23);
	pgbuf_put_int32(&in, 25);
	pgbuf_put_int32(&in, 2950);
	CHECK(rewrite_ext_param_desc(in.data, in.len, 1, &out));
	CHECK(out.len == 5 + 2 + 8 && out.data[0] == 't' && pg_get_u32(out.data + 1) == 14);
	CHECK(pg_get_u16(out.data + 5) == 2 && pg_get_u32(out.data + 11) == 25);
	pgbuf_reset(&out);
	CHECK(!rewrite_ext_param_desc(in.data, in.len, 4, &out));
	CHECK(!rewrite_ext_param_desc(in.data, in.len - 1, 1, &out));
	CHECK(out.len == 0);

	/* an error at the position of x in the rewritten text */
	struct uuidv7_gen gen;
	uuidv7_init_with(&gen, frozen_clock, NULL, zero_random, NULL);
	struct rewrite_result res;
	const char *sql = "INSERT INTO users (a) VALUES (1) RETURNING x";
	CHECK(rewrite_query(&default_session, &gen, sql, &res) == REWRITE_DONE);
	char pos[16];
	snprintf(pos, sizeof(pos), "%u", char_pos(res.sql, "x"));
	pgbuf_reset(&in);
	pgbuf_put_u8(&in, 'S');
	pgbuf_put_str(&in, "ERROR");
	pgbuf_put_u8(&in, 'P');
	pgbuf_put_str(&in, pos);
	pgbuf_put_u8(&in, 'M');
	pgbuf_put_str(&in, "column \"x\" does not exist");
	pgbuf_put_u8(&in, 0);
	pgbuf_reset(&out);
	CHECK(rewrite_ext_error_position('E', in.data, in.len, &res.posmap, &out));
	CHECK(out.data[0] == 'E' && pg_get_u32(out.data + 1) == out.len - 1);
	struct pg_fields {
		const char *severity, *position, *message;
	} f;
	struct pgread r;
	pgread_init(&r, out.data + 5, out.len - 5);
	CHECK(pgread_u8(&r) == 'S' && (f.severity = pgread_str(&r)) && strcmp(f.severity, "ERROR") == 0);
	CHECK(pgread_u8(&r) == 'P' && (f.position = pgread_str(&r)) && strcmp(f.position, "44") == 0);
	CHECK(pgread_u8(&r) == 'M' && (f.message = pgread_str(&r)));
	CHECK(pgread_u8(&r) == 0 && pgread_at_end(&r));
	for (size_t n = 0; n < in.len; n++) {
		pgbuf_reset(&out);
		CHECK(!rewrite_ext_error_position('E', in.data, n, &res.posmap, &out));
		CHECK(out.len == 0);
	}
	rewrite_result_free(&res);
	pgbuf_free(&in);
	pgbuf_free(&out);
}

int main(void)
{
	test_prefilter();
	test_query_table();
	test_session_conditions();
	test_parse_table();
	test_positions();
	test_bind();
	test_parse_message();
	test_param_desc_and_errors();
	pg_query_exit();
	printf("ok\n");
	return 0;
}
