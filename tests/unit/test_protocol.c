/* The protocol layer's framing, startup packets, ErrorResponse and SASL
 * helpers: table-driven, with truncated, oversized and random input. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "message.h"
#include "pgbuf.h"
#include "pgread.h"
#include "resultset.h"
#include "startup.h"

/* ---- pgbuf / pgread ------------------------------------------------------- */

static void test_builder_and_reader(void)
{
	struct pgbuf b;
	pgbuf_init(&b);
	size_t start = pgbuf_begin_msg(&b, 'X');
	pgbuf_put_int32(&b, -2);
	pgbuf_put_int16(&b, 513);
	pgbuf_put_str(&b, "hi");
	pgbuf_end_msg(&b, start);
	CHECK(b.len == 1 + 4 + 4 + 2 + 3);
	CHECK(b.data[0] == 'X' && pg_get_u32(b.data + 1) == b.len - 1);

	struct pgread r;
	pgread_init(&r, b.data + 5, b.len - 5);
	CHECK(pgread_int32(&r) == -2);
	CHECK(pgread_int16(&r) == 513);
	const char *s = pgread_str(&r);
	CHECK(s && strcmp(s, "hi") == 0);
	CHECK(pgread_at_end(&r));
	/* Reading past the end sets a sticky error and returns zeros. */
	CHECK(pgread_int32(&r) == 0 && !pgread_ok(&r));
	CHECK(pgread_str(&r) == NULL);
	pgbuf_free(&b);

	uint8_t unterminated[3] = { 'a', 'b', 'c' };
	pgread_init(&r, unterminated, sizeof(unterminated));
	CHECK(pgread_str(&r) == NULL && !pgread_ok(&r));
	pgread_init(&r, unterminated, sizeof(unterminated));
	CHECK(pgread_bytes(&r, 4) == NULL && !pgread_ok(&r));
}

/* ---- message headers ------------------------------------------------------ */

static void test_headers(void)
{
	static const struct {
		uint8_t bytes[5];
		size_t len;
		uint32_t max;
		enum pgmsg_status want;
		uint32_t total;
	} cases[] = {
		{ { 'Q', 0, 0, 0, 4 }, 5, 1000, PGMSG_OK, 5 },
		{ { 'Q', 0, 0, 0, 9 }, 5, 1000, PGMSG_OK, 10 },
		{ { 'Q', 0, 0, 0, 9 }, 4, 1000, PGMSG_NEED_MORE, 0 },
		{ { 'Q', 0, 0, 0, 0 }, 5, 1000, PGMSG_BAD_LENGTH, 0 },
		{ { 'Q', 0, 0, 0, 3 }, 5, 1000, PGMSG_BAD_LENGTH, 0 },
		{ { 'Q', 0xff, 0xff, 0xff, 0xff }, 5, 1000, PGMSG_BAD_LENGTH, 0 },  /* negative */
		{ { 'Q', 0x80, 0, 0, 0 }, 5, 0x7fffffff, PGMSG_BAD_LENGTH, 0 },
		{ { 'Q', 0x7f, 0xff, 0xff, 0xff }, 5, 0x40000000, PGMSG_TOO_LARGE, 0 }, /* 2^31-1 */
		{ { 'Q', 0, 0, 0x03, 0xe9 }, 5, 1000, PGMSG_TOO_LARGE, 0 },
		{ { 'Q', 0, 0, 0x03, 0xe8 }, 5, 1000, PGMSG_OK, 1001 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t type = 0;
		uint32_t total = 0;
		enum pgmsg_status st = pgmsg_header(cases[i].bytes, cases[i].len, cases[i].max, &type, &total);
		CHECK(st == cases[i].want);
		if (st == PGMSG_OK)
			CHECK(type == 'Q' && total == cases[i].total);
	}
}

/* ---- startup packets -------------------------------------------------------- */

static size_t packet(uint8_t *out, uint32_t code, const char *body, size_t body_len)
{
	uint32_t n = (uint32_t)(8 + body_len);
	uint8_t head[8] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n,
			    (uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8), (uint8_t)code };
	memcpy(out, head, 8);
	memcpy(out + 8, body, body_len);
	return n;
}

static void test_startup_kinds(void)
{
	uint8_t buf[256];
	struct startup_packet p;
	size_t n = packet(buf, PG_PROTOCOL_SSL, "", 0);
	CHECK(startup_parse(buf, n, &p) == STARTUP_OK && p.kind == STARTUP_SSL_REQUEST);
	n = packet(buf, PG_PROTOCOL_GSSENC, "", 0);
	CHECK(startup_parse(buf, n, &p) == STARTUP_OK && p.kind == STARTUP_GSSENC_REQUEST);
	n = packet(buf, PG_PROTOCOL_CANCEL, "\0\0\0\7\1\2\3\4", 8);
	CHECK(startup_parse(buf, n, &p) == STARTUP_OK && p.kind == STARTUP_CANCEL);
	CHECK(p.cancel_pid == 7 && p.cancel_key_len == 4 && p.cancel_key[3] == 4);
	n = packet(buf, PG_PROTOCOL_CANCEL, "\0\0\0\7\1\2", 6);
	CHECK(startup_parse(buf, n, &p) == STARTUP_BAD_LENGTH);
	n = packet(buf, PG_PROTOCOL_SSL, "x", 1);
	CHECK(startup_parse(buf, n, &p) == STARTUP_BAD_LENGTH);

	static const char params[] = "user\0alice\0database\0app\0_pq_.thing\0on\0";
	n = packet(buf, 3u << 16 | 2, params, sizeof(params));
	CHECK(startup_parse(buf, n, &p) == STARTUP_OK);
	CHECK(p.kind == STARTUP_MESSAGE && p.major == 3 && p.minor == 2);
	CHECK(p.nparams == 2 && p.noptions == 1 && strcmp(p.protocol_options[0], "_pq_.thing") == 0);
	CHECK(strcmp(startup_get(&p, "user"), "alice") == 0 && startup_get(&p, "nothing") == NULL);
	startup_free(&p);

	n = packet(buf, 2u << 16, "user\0a\0\0", 9);
	CHECK(startup_parse(buf, n, &p) == STARTUP_BAD_VERSION);
}

static void test_startup_malformed(void)
{
	static const struct {
		const char *body;
		size_t len;
	} bad[] = {
		{ "user\0alice", 10 },          /* no terminator */
		{ "user\0alice\0", 11 },        /* no final empty name */
		{ "user", 4 },
		{ "user\0alice\0\0x", 13 },    /* bytes after the end */
		{ "user\0", 5 },                /* name without a value */
	};
	uint8_t buf[64];
	struct startup_packet p;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = packet(buf, 3u << 16, bad[i].body, bad[i].len);
		CHECK(startup_parse(buf, n, &p) == STARTUP_MALFORMED);
	}
	uint8_t big[4] = { 0, 0, 0x27, 0x11 }; /* 10001 bytes */
	CHECK(startup_parse(big, sizeof(big), &p) == STARTUP_BAD_LENGTH);
	uint8_t small[4] = { 0, 0, 0, 7 };
	CHECK(startup_parse(small, sizeof(small), &p) == STARTUP_BAD_LENGTH);
	uint8_t partial[6] = { 0, 0, 0, 8, 4, 0xd2 };
	CHECK(startup_parse(partial, sizeof(partial), &p) == STARTUP_NEED_MORE);
	CHECK(startup_parse(partial, 3, &p) == STARTUP_NEED_MORE);
}

static void test_startup_builders(void)
{
	struct pgbuf b;
	struct startup_packet p;
	pgbuf_init(&b);
	struct startup_param params[] = { { "user", "u" }, { "database", "d" } };
	startup_put_message(&b, params, 2);
	CHECK(startup_parse(b.data, b.len, &p) == STARTUP_OK && p.minor == 0 && p.nparams == 2);
	startup_free(&p);
	pgbuf_reset(&b);
	uint8_t key[4] = { 9, 8, 7, 6 };
	startup_put_cancel(&b, 42, key, 4);
	CHECK(startup_parse(b.data, b.len, &p) == STARTUP_OK && p.cancel_pid == 42 && p.cancel_key[0] == 9);
	pgbuf_free(&b);
}

/* ---- errors, SASL, result sets -------------------------------------------- */

static void test_error_round_trip(void)
{
	struct pgbuf b;
	struct pg_error e;
	pgbuf_init(&b);
	pgmsg_put_fatal(&b, "08P01", "bad thing", "do better");
	CHECK(b.data[0] == 'E');
	CHECK(pgmsg_parse_error(b.data + 5, b.len - 5, &e));
	CHECK(strcmp(e.severity, "FATAL") == 0 && strcmp(e.sqlstate, "08P01") == 0);
	CHECK(strcmp(e.message, "bad thing") == 0 && strcmp(e.hint, "do better") == 0 && e.detail == NULL);
	/* No SQLSTATE at all: fields stay NULL, nothing crashes. */
	static const uint8_t no_code[] = { 'M', 'x', 0, 0 };
	CHECK(pgmsg_parse_error(no_code, sizeof(no_code), &e) && e.sqlstate == NULL);
	static const uint8_t unterminated[] = { 'M', 'x' };
	CHECK(!pgmsg_parse_error(unterminated, sizeof(unterminated), &e));
	static const uint8_t trailing[] = { 0, 'x' };
	CHECK(!pgmsg_parse_error(trailing, sizeof(trailing), &e));
	CHECK(!pgmsg_parse_error(NULL, 0, &e));
	pgbuf_free(&b);
}

static void test_sasl(void)
{
	struct pgbuf out;
	pgbuf_init(&out);
	static const uint8_t both[] = "\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
	CHECK(pgmsg_filter_sasl_mechanisms(both, sizeof(both), &out));
	CHECK(memmem(out.data, out.len, "PLUS", 4) == NULL && memmem(out.data, out.len, "SCRAM-SHA-256", 13));
	pgbuf_reset(&out);
	static const uint8_t only_plus[] = "\0\0\0\x0aSCRAM-SHA-256-PLUS\0";
	CHECK(!pgmsg_filter_sasl_mechanisms(only_plus, sizeof(only_plus), &out));
	pgbuf_reset(&out);
	static const uint8_t unterminated[] = { 0, 0, 0, 10, 'S', 'C' };
	CHECK(!pgmsg_filter_sasl_mechanisms(unterminated, sizeof(unterminated), &out));
	pgbuf_free(&out);

	const char *mech;
	char gs2;
	static const uint8_t initial[] = "SCRAM-SHA-256\0\0\0\0\x05y,,n=";
	CHECK(pgmsg_parse_sasl_initial(initial, sizeof(initial) - 1, &mech, &gs2) && gs2 == 'y');
	static const uint8_t overlong[] = "SCRAM-SHA-256\0\0\0\0\x50y,,";
	CHECK(!pgmsg_parse_sasl_initial(overlong, sizeof(overlong) - 1, &mech, &gs2));
	static const uint8_t negative[] = "SCRAM-SHA-256\0\xff\xff\xff\xfe";
	CHECK(!pgmsg_parse_sasl_initial(negative, sizeof(negative) - 1, &mech, &gs2));
}

static void test_negotiate_and_results(void)
{
	struct pgbuf b;
	pgbuf_init(&b);
	const char *unknown[] = { "_pq_.a", "_pq_.b" };
	pgmsg_put_negotiate(&b, 0, unknown, 2);
	CHECK(b.data[0] == 'v' && pg_get_u32(b.data + 5) == 3u << 16 && pg_get_u32(b.data + 9) == 2);
	pgbuf_reset(&b);
	struct resultset_column cols[] = { { "a", PG_TYPE_TEXT }, { "b", PG_TYPE_INT8 } };
	const char *row[] = { "x", NULL };
	resultset_put_description(&b, cols, 2);
	resultset_put_row(&b, row, 2);
	resultset_put_complete(&b, "SHOW");
	CHECK(b.data[0] == 'T');
	size_t off = 1 + pg_get_u32(b.data + 1);
	CHECK(b.data[off] == 'D');
	/* the NULL column is length -1 */
	CHECK(memmem(b.data + off, b.len - off, "\xff\xff\xff\xff", 4) != NULL);
	pgbuf_free(&b);
}

/* ---- random input into every parser --------------------------------------- */

static void test_random(void)
{
	uint32_t state = 123456789u;
	uint8_t buf[512];
	for (int round = 0; round < 20000; round++) {
		size_t n = check_rng(&state) % sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)check_rng(&state);
		if (n >= 4 && round % 2) { /* plausible lengths reach deeper */
			buf[0] = 0;
			buf[1] = 0;
			buf[2] = (uint8_t)(n >> 8);
			buf[3] = (uint8_t)n;
		}
		struct startup_packet p;
		if (startup_parse(buf, n, &p) == STARTUP_OK && p.kind == STARTUP_MESSAGE)
			startup_free(&p);
		struct pg_error e;
		pgmsg_parse_error(buf, n, &e);
		uint8_t type;
		uint32_t total;
		pgmsg_header(buf, n, 1u << 30, &type, &total);
		struct pgbuf out;
		pgbuf_init(&out);
		pgmsg_filter_sasl_mechanisms(buf, n, &out);
		pgbuf_free(&out);
		const char *mech;
		char gs2;
		pgmsg_parse_sasl_initial(buf, n, &mech, &gs2);
	}
}

int main(void)
{
	test_builder_and_reader();
	test_headers();
	test_startup_kinds();
	test_startup_malformed();
	test_startup_builders();
	test_error_round_trip();
	test_sasl();
	test_negotiate_and_results();
	test_random();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("protocol: all checks passed\n");
	return 0;
}
