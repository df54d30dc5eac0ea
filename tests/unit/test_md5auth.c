/* md5 password method: the stored hash as PostgreSQL 15 wrote it to
 * pg_authid, and salted responses checked against an independent MD5. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "authmsg.h"
#include "md5auth.h"
#include "message.h"

/* CREATE ROLE dave PASSWORD 'secret' with password_encryption = md5. */
#define PG_MD5_SECRET "md5d054392f985a267df752bb2b16be2f2f"

static const uint8_t salt_a[4] = { 1, 2, 3, 4 };
static const uint8_t salt_b[4] = { 0xff, 0, 0x7f, 0x80 };

static void test_hash(void)
{
	char out[MD5AUTH_LEN + 1];
	CHECK(md5auth_hash("secret", "dave", out));
	CHECK(strcmp(out, PG_MD5_SECRET) == 0);
}

static void test_response(void)
{
	static const struct {
		const char *secret;
		const uint8_t *salt;
		const char *expect;
	} cases[] = {
		{ "secret", salt_a, "md55ab45ece48033d1037e5637478e04b0f" },
		{ PG_MD5_SECRET, salt_a, "md55ab45ece48033d1037e5637478e04b0f" },
		{ PG_MD5_SECRET, salt_b, "md527ca8ff557ce04965810c474b46b4fc8" },
	};
	char out[MD5AUTH_LEN + 1];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(md5auth_response(cases[i].secret, "dave", cases[i].salt, out));
		CHECK(strcmp(out, cases[i].expect) == 0);
	}
	/* A SCRAM secret cannot answer md5. */
	CHECK(!md5auth_response("SCRAM-SHA-256$4096:beTkAk8uNm/zMOhOg7V/4A==$uesDT7wOU4XPA5DQI3zmzKA"
	                        "aTHItdPC/HdTN7JXrP3A=:EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
	                        "alice", salt_a, out));
}

static void test_is_secret(void)
{
	static const struct {
		const char *s;
		bool md5;
	} cases[] = {
		{ PG_MD5_SECRET, true },
		{ "md5D054392F985A267DF752BB2B16BE2F2F", false },  /* PostgreSQL: lowercase only */
		{ "md5d054392f985a267df752bb2b16be2f2", false },
		{ "md5d054392f985a267df752bb2b16be2f2f0", false },
		{ "md5d054392f985a267df752bb2b16be2f2g", false },
		{ "MD5d054392f985a267df752bb2b16be2f2f", false },
		{ "md5", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(md5auth_is_secret(cases[i].s) == cases[i].md5);
}

static void test_check(void)
{
	const char *good = "md55ab45ece48033d1037e5637478e04b0f";
	CHECK(md5auth_check("secret", "dave", salt_a, good));
	CHECK(md5auth_check(PG_MD5_SECRET, "dave", salt_a, good));
	CHECK(!md5auth_check(PG_MD5_SECRET, "dave", salt_b, good));
	CHECK(!md5auth_check(PG_MD5_SECRET, "eve", salt_a, "md55ab45ece48033d1037e5637478e04b0e"));
	CHECK(!md5auth_check("secret", "dave", salt_a, "md55ab45ece48033d1037e5637478e04b0"));
	CHECK(!md5auth_check("secret", "dave", salt_a, "md55ab45ece48033d1037e5637478e04b0f0"));
	CHECK(!md5auth_check("secret", "dave", salt_a, ""));
	CHECK(!md5auth_check("secret", "dave", salt_a, "secret"));
	/* The client must answer with the salted hash, not the stored one. */
	CHECK(!md5auth_check(PG_MD5_SECRET, "dave", salt_a, PG_MD5_SECRET));
	/* An empty password never authenticates. */
	char empty_response[MD5AUTH_LEN + 1];
	CHECK(md5auth_response("", "dave", salt_a, empty_response));
	CHECK(!md5auth_check("", "dave", salt_a, empty_response));
}

/* Challenge and answer through the wire envelopes, as the proxy would send
 * and receive them on both of its sides. */
static void test_wire(void)
{
	struct pgbuf b;
	struct authmsg_request req;
	char response[MD5AUTH_LEN + 1];
	const char *password;

	pgbuf_init(&b);
	authmsg_put_md5_request(&b, salt_b);
	CHECK(b.len == 13 && b.data[0] == 'R');
	CHECK(authmsg_parse_request(b.data + 5, b.len - 5, &req) && req.code == PG_AUTH_MD5);
	CHECK(md5auth_response(PG_MD5_SECRET, "dave", req.md5_salt, response));
	pgbuf_reset(&b);
	authmsg_put_password(&b, response);
	CHECK(b.data[0] == 'p');
	CHECK(authmsg_parse_password(b.data + 5, b.len - 5, &password));
	CHECK(md5auth_check("secret", "dave", salt_b, password));
	pgbuf_reset(&b);
	authmsg_put_cleartext_request(&b);
	CHECK(authmsg_parse_request(b.data + 5, b.len - 5, &req) && req.code == PG_AUTH_CLEARTEXT);
	pgbuf_free(&b);
}

int main(void)
{
	test_hash();
	test_response();
	test_is_secret();
	test_check();
	test_wire();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
