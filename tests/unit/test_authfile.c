/* auth_file parsing as pgbouncer's userlist.txt is written, its errors with
 * line numbers, and the choice of method per stored secret. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "authfile.h"

#define SCRAM_SECRET                                                                      \
	"SCRAM-SHA-256$4096:beTkAk8uNm/zMOhOg7V/4A==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A=" \
	":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc="
#define MD5_SECRET "md5d054392f985a267df752bb2b16be2f2f"

static char err[256];

static struct authfile *parse_ok(const char *text)
{
	struct authfile *af = NULL;
	enum authfile_status st = authfile_parse(text, strlen(text), &af, err, sizeof(err));
	if (st != AUTHFILE_OK) {
		fprintf(stderr, "parse failed: %s\n", err);
		failures++;
	}
	return af;
}

static void test_good_file(void)
{
	const char *text =
		"; comment\n"
		"   ; indented comment\n"
		"\n"
		"\"alice\" \"" SCRAM_SECRET "\"\n"
		"\"dave\"\t\"" MD5_SECRET "\" trailing words are ignored\r\n"
		"  \"say \"\"hi\"\"\" \"pa\"\"ss\"\n"
		"\"empty\" \"\"\n"
		"\"dup\" \"first\"\n"
		"\"dup\" \"second\"\n"
		"\"last\" \"no newline\"";
	struct authfile *af = parse_ok(text);
	if (!af)
		return;
	CHECK(authfile_count(af) == 7);
	CHECK(strcmp(authfile_lookup(af, "alice"), SCRAM_SECRET) == 0);
	CHECK(strcmp(authfile_lookup(af, "dave"), MD5_SECRET) == 0);
	CHECK(strcmp(authfile_lookup(af, "say \"hi\""), "pa\"ss") == 0);
	CHECK(strcmp(authfile_lookup(af, "empty"), "") == 0);
	CHECK(strcmp(authfile_lookup(af, "dup"), "second") == 0);
	CHECK(strcmp(authfile_lookup(af, "last"), "no newline") == 0);
	CHECK(authfile_lookup(af, "nobody") == NULL);
	CHECK(authfile_lookup(af, "Alice") == NULL);
	CHECK(strcmp(authfile_entry_at(af, 0)->user, "alice") == 0);
	CHECK(authfile_entry_at(af, 7) == NULL);
	authfile_free(af);

	af = parse_ok("");
	CHECK(af && authfile_count(af) == 0);
	authfile_free(af);
	af = parse_ok("\n\n; only comments\n   \n");
	CHECK(af && authfile_count(af) == 0);
	authfile_free(af);
}

static void test_bad_files(void)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ "\"alice\" \"pw\"\n\"bob\" \"pw\n", "line 2: unterminated quote in secret" },
		{ "\"alice\" \"pw\"\n\"bob\n\" \"pw\"\n", "line 2: unterminated quote in user name" },
		{ "# hash comment\n", "line 1: expected '\"' to start the user name (comments start with ';')" },
		{ "alice \"pw\"\n", "line 1: expected '\"' to start the user name" },
		{ "\"alice\"\n", "line 1: expected '\"' to start the secret" },
		{ "\"alice\" pw\n", "line 1: expected '\"' to start the secret" },
		{ "\"alice\"x\"pw\"\n", "line 1: expected '\"' to start the secret" },
		{ "\n\n\"\" \"pw\"\n", "line 3: empty user name" },
		{ "\"alice\"\"", "line 1: unterminated quote in user name" },
		{ "\"alice\"\"\"", "line 1: expected '\"' to start the secret" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct authfile *af = (struct authfile *)1;
		err[0] = '\0';
		enum authfile_status st = authfile_parse(cases[i].text, strlen(cases[i].text), &af, err,
		                                         sizeof(err));
		if (st != AUTHFILE_SYNTAX || af != NULL || strcmp(err, cases[i].err) != 0) {
			fprintf(stderr, "bad file %zu: status %d, err \"%s\"\n", i, st, err);
			failures++;
		}
	}
	struct authfile *af;
	static const char with_nul[] = "\"a\" \"b\"\n\"c\" \"d\0\"\n";
	CHECK(authfile_parse(with_nul, sizeof(with_nul) - 1, &af, err, sizeof(err)) ==
	      AUTHFILE_SYNTAX);
	CHECK(strcmp(err, "line 2: NUL byte") == 0);
	/* Not NUL-terminated: the parser stops at len. */
	CHECK(authfile_parse("\"a\" \"b\"XYZ", 7, &af, err, sizeof(err)) == AUTHFILE_OK);
	CHECK(strcmp(authfile_lookup(af, "a"), "b") == 0);
	authfile_free(af);
	CHECK(authfile_parse("\"a\" \"b\"", 6, &af, err, sizeof(err)) == AUTHFILE_SYNTAX);
}

static void test_limits(void)
{
	char text[AUTHFILE_MAX_SECRET_LEN + 64];
	struct authfile *af;
	int n = snprintf(text, sizeof(text), "\"%0*d\" \"pw\"", AUTHFILE_MAX_USER_LEN, 0);
	CHECK(authfile_parse(text, (size_t)n, &af, err, sizeof(err)) == AUTHFILE_OK);
	authfile_free(af);
	n = snprintf(text, sizeof(text), "\"%0*d\" \"pw\"", AUTHFILE_MAX_USER_LEN + 1, 0);
	CHECK(authfile_parse(text, (size_t)n, &af, err, sizeof(err)) == AUTHFILE_SYNTAX);
	CHECK(strstr(err, "user name longer than") != NULL);
	n = snprintf(text, sizeof(text), "\"u\" \"%0*d\"", AUTHFILE_MAX_SECRET_LEN, 0);
	CHECK(authfile_parse(text, (size_t)n, &af, err, sizeof(err)) == AUTHFILE_OK);
	authfile_free(af);
	n = snprintf(text, sizeof(text), "\"u\" \"%0*d\"", AUTHFILE_MAX_SECRET_LEN + 1, 0);
	CHECK(authfile_parse(text, (size_t)n, &af, err, sizeof(err)) == AUTHFILE_SYNTAX);
	/* Doubled quotes count once towards the limit. */
	char *big = malloc(2 * AUTHFILE_MAX_USER_LEN + 16), *p = big;
	*p++ = '"';
	for (int i = 0; i < AUTHFILE_MAX_USER_LEN; i++) {
		*p++ = '"';
		*p++ = '"';
	}
	memcpy(p, "\" \"x\"", 5);
	p += 5;
	CHECK(authfile_parse(big, (size_t)(p - big), &af, err, sizeof(err)) == AUTHFILE_OK);
	CHECK(af && strlen(authfile_entry_at(af, 0)->user) == AUTHFILE_MAX_USER_LEN);
	authfile_free(af);
	free(big);
}

static void test_every_truncation(void)
{
	const char *text = "; c\n\"alice\" \"" SCRAM_SECRET "\"\n\"b\"\"ob\" \"pw\" rest\n";
	size_t n = strlen(text);
	for (size_t cut = 0; cut <= n; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, text, cut);
		struct authfile *af;
		enum authfile_status st = authfile_parse(copy, cut, &af, err, sizeof(err));
		CHECK(st == AUTHFILE_OK || st == AUTHFILE_SYNTAX);
		CHECK((st == AUTHFILE_OK) == (af != NULL));
		authfile_free(af);
		free(copy);
	}
}

static uint32_t rng_state = 88172645u;

static uint32_t rng(void)
{
	return check_rng(&rng_state);
}

static void test_random(void)
{
	static const char alphabet[] = "\"\"\"\n ;#\tab\r\0";
	for (int round = 0; round < 5000; round++) {
		size_t n = rng() % 200;
		char *buf = malloc(n ? n : 1);
		for (size_t i = 0; i < n; i++)
			buf[i] = round % 2 ? (char)rng() : alphabet[rng() % (sizeof(alphabet) - 1)];
		struct authfile *af;
		enum authfile_status st = authfile_parse(buf, n, &af, err, sizeof(err));
		CHECK((st == AUTHFILE_OK) == (af != NULL));
		for (size_t i = 0; af && i < authfile_count(af); i++)
			CHECK(authfile_lookup(af, authfile_entry_at(af, i)->user) != NULL);
		authfile_free(af);
		free(buf);
	}
}

static void test_secret_kind(void)
{
	CHECK(authfile_secret_kind(SCRAM_SECRET) == AUTHFILE_SECRET_SCRAM);
	CHECK(authfile_secret_kind(MD5_SECRET) == AUTHFILE_SECRET_MD5);
	CHECK(authfile_secret_kind("hunter2") == AUTHFILE_SECRET_PLAIN);
	CHECK(authfile_secret_kind("") == AUTHFILE_SECRET_PLAIN);
	/* As in PostgreSQL, what does not parse is a plain password. */
	CHECK(authfile_secret_kind("SCRAM-SHA-256$4096:abc") == AUTHFILE_SECRET_PLAIN);
	CHECK(authfile_secret_kind("md5D054392F985A267DF752BB2B16BE2F2F") == AUTHFILE_SECRET_PLAIN);
}

static void test_client_method(void)
{
	static const struct {
		enum authfile_method configured;
		const char *secret;
		bool ok;
		enum authfile_method use;
	} cases[] = {
		{ AUTHFILE_METHOD_TRUST, "", true, AUTHFILE_METHOD_TRUST },
		{ AUTHFILE_METHOD_TRUST, MD5_SECRET, true, AUTHFILE_METHOD_TRUST },
		{ AUTHFILE_METHOD_MD5, "pw", true, AUTHFILE_METHOD_MD5 },
		{ AUTHFILE_METHOD_MD5, MD5_SECRET, true, AUTHFILE_METHOD_MD5 },
		{ AUTHFILE_METHOD_MD5, SCRAM_SECRET, true, AUTHFILE_METHOD_SCRAM },
		{ AUTHFILE_METHOD_MD5, "", false, AUTHFILE_METHOD_TRUST },
		{ AUTHFILE_METHOD_SCRAM, "pw", true, AUTHFILE_METHOD_SCRAM },
		{ AUTHFILE_METHOD_SCRAM, SCRAM_SECRET, true, AUTHFILE_METHOD_SCRAM },
		{ AUTHFILE_METHOD_SCRAM, MD5_SECRET, false, AUTHFILE_METHOD_TRUST },
		{ AUTHFILE_METHOD_SCRAM, "", false, AUTHFILE_METHOD_TRUST },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum authfile_method use = AUTHFILE_METHOD_TRUST;
		const char *why = authfile_client_method(cases[i].configured, cases[i].secret, &use);
		CHECK((why == NULL) == cases[i].ok);
		if (cases[i].ok)
			CHECK(use == cases[i].use);
	}
	enum authfile_method use;
	const char *why = authfile_client_method(AUTHFILE_METHOD_SCRAM, MD5_SECRET, &use);
	CHECK(why && strstr(why, "md5") != NULL);
}

int main(void)
{
	test_good_file();
	test_bad_files();
	test_limits();
	test_every_truncation();
	test_random();
	test_secret_kind();
	test_client_method();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
