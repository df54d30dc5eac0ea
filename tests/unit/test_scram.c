/* SCRAM-SHA-256 both sides: RFC 7677's published exchange, secrets made by a
 * real PostgreSQL 15, and malformed, truncated and random messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "authmsg.h"
#include "message.h"
#include "pgbuf.h"
#include "scram.h"

/* RFC 7677 section 3. */
#define RFC_PASSWORD "pencil"
#define RFC_CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT_B64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CLIENT_NONCE
#define RFC_SERVER_FIRST "r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE ",s=" RFC_SALT_B64 ",i=4096"
#define RFC_FINAL_NO_PROOF "c=biws,r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_CLIENT_FINAL RFC_FINAL_NO_PROOF ",p=" RFC_PROOF
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* Secrets read from pg_authid of a PostgreSQL 15 cluster after
 * SET password_encryption = 'scram-sha-256'; CREATE ROLE ... PASSWORD ... */
static const struct {
	const char *password;
	const char *secret;
} pg_secrets[] = {
	{ "correct horse battery staple",
	  "SCRAM-SHA-256$4096:beTkAk8uNm/zMOhOg7V/4A==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
	  ":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=" },
	/* precomposed umlauts: NFKC-stable, SASLprep leaves them */
	{ "p\xc3\xa4ssw\xc3\xb6rd",
	  "SCRAM-SHA-256$4096:cUyuKF76UZUH7yKkGPILJQ==$7/56+AX1/YoPElp7Hcz/Gl0tQHwXf+KiIbKRRUt85Ws="
	  ":I6i+AS6dqDvjeK8Af8cbxb5oYRADWjEPqpSAJGHA93o=" },
	/* 'a' NO-BREAK SPACE 'b' SOFT HYPHEN 'c': SASLprep makes it "a bc" */
	{ "a\xc2\xa0" "b\xc2\xad" "c",
	  "SCRAM-SHA-256$4096:gKHSwzRETz1Z17aTuniknQ==$VGMA4nyuhzm10DfPToPNDeXTT4G4oTIgH/TQeQp4ngw="
	  ":qaqgpOTiRRZWv+CRFlWogshicGcp953YJuKUSwmhsHE=" },
};

static char err[256];

static const uint8_t *u8(const char *s)
{
	return (const uint8_t *)s;
}

static bool buf_is(const struct pgbuf *b, const char *s)
{
	return !pgbuf_failed(b) && b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

/* Derived once: PBKDF2 per use would make the random rounds slow. */
static void rfc_secret(struct scram_secret *sec)
{
	static struct scram_secret cached;
	static bool done;
	if (!done) {
		struct scram_secret tmp;
		/* A throwaway secret only to decode the RFC's base64 salt. */
		CHECK(scram_parse_secret("SCRAM-SHA-256$4096:" RFC_SALT_B64
		                         "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		                         ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &tmp));
		CHECK(scram_secret_from_password(RFC_PASSWORD, tmp.salt, tmp.salt_len, 4096, &cached));
		done = true;
	}
	*sec = cached;
}

static struct scram_server *rfc_server(void)
{
	struct scram_secret sec;
	rfc_secret(&sec);
	struct scram_server *st = scram_server_begin(&sec);
	CHECK(st != NULL);
	CHECK(scram_server_set_nonce(st, RFC_SERVER_NONCE));
	return st;
}

/* A server that has accepted RFC_CLIENT_FIRST, ready for a client-final. */
static struct scram_server *rfc_server_after_first(void)
{
	struct pgbuf out;
	struct scram_server *st = rfc_server();
	pgbuf_init(&out);
	CHECK(scram_server_handle_client_first(st, u8(RFC_CLIENT_FIRST), strlen(RFC_CLIENT_FIRST),
	                                       &out, err, sizeof(err)) == SCRAM_OK);
	pgbuf_free(&out);
	return st;
}

static void test_rfc7677_server(void)
{
	struct pgbuf out;
	uint8_t client_key[SCRAM_KEY_LEN];
	struct scram_server *st = rfc_server();

	pgbuf_init(&out);
	CHECK(!scram_server_client_key(st, client_key));
	CHECK(scram_server_handle_client_first(st, u8(RFC_CLIENT_FIRST), strlen(RFC_CLIENT_FIRST),
	                                       &out, err, sizeof(err)) == SCRAM_OK);
	CHECK(buf_is(&out, RFC_SERVER_FIRST));
	pgbuf_reset(&out);
	CHECK(scram_server_handle_client_final(st, u8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL),
	                                       &out, err, sizeof(err)) == SCRAM_OK);
	CHECK(buf_is(&out, RFC_SERVER_FINAL));
	CHECK(scram_server_client_key(st, client_key));
	/* The exchange is over: nothing more is accepted. */
	CHECK(scram_server_handle_client_final(st, u8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL),
	                                       &out, err, sizeof(err)) == SCRAM_OUT_OF_ORDER);
	pgbuf_free(&out);
	scram_server_free(st);
}

static void run_rfc_client(struct scram_client *cl)
{
	struct pgbuf out;
	pgbuf_init(&out);
	CHECK(scram_client_set_identity(cl, "user", RFC_CLIENT_NONCE));
	CHECK(scram_client_first(cl, &out) == SCRAM_OK);
	CHECK(buf_is(&out, RFC_CLIENT_FIRST));
	pgbuf_reset(&out);
	CHECK(scram_client_handle_server_first(cl, u8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST),
	                                       &out, err, sizeof(err)) == SCRAM_OK);
	CHECK(buf_is(&out, RFC_CLIENT_FINAL));
	CHECK(scram_client_verify_server_final(cl, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL),
	                                       err, sizeof(err)) == SCRAM_OK);
	pgbuf_free(&out);
	scram_client_free(cl);
}

/* The client side with the password, then with the ClientKey the server side
 * recovered from the client's proof: both must produce the RFC's messages. */
static void test_rfc7677_client(void)
{
	struct pgbuf out;
	struct scram_secret sec;
	uint8_t client_key[SCRAM_KEY_LEN];
	struct scram_server *st = rfc_server_after_first();

	run_rfc_client(scram_client_begin_password(RFC_PASSWORD));
	pgbuf_init(&out);
	CHECK(scram_server_handle_client_final(st, u8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL),
	                                       &out, err, sizeof(err)) == SCRAM_OK);
	CHECK(scram_server_client_key(st, client_key));
	rfc_secret(&sec);
	run_rfc_client(scram_client_begin_keys(&sec, client_key));
	pgbuf_free(&out);
	scram_server_free(st);
}

static void test_pg_secrets(void)
{
	for (size_t i = 0; i < sizeof(pg_secrets) / sizeof(pg_secrets[0]); i++) {
		struct scram_secret parsed, derived;
		char text[SCRAM_SECRET_MAX_LEN];
		CHECK(scram_parse_secret(pg_secrets[i].secret, &parsed));
		CHECK(parsed.iterations == 4096 && parsed.salt_len == 16);
		CHECK(scram_secret_from_password(pg_secrets[i].password, parsed.salt, parsed.salt_len,
		                                 parsed.iterations, &derived));
		CHECK(memcmp(&parsed, &derived, sizeof(parsed)) == 0);
		CHECK(scram_format_secret(&parsed, text, sizeof(text)));
		CHECK(strcmp(text, pg_secrets[i].secret) == 0);
		CHECK(!scram_format_secret(&parsed, text, 40));
	}
}

/* Runs a whole exchange between our two sides; returns the server's verdict
 * on the client-final, and checks the client accepts the server-final. */
static enum scram_status exchange(const struct scram_secret *sec, const char *password)
{
	struct pgbuf a, b;
	enum scram_status status;
	struct scram_server *sv = scram_server_begin(sec);
	struct scram_client *cl = scram_client_begin_password(password);

	pgbuf_init(&a);
	pgbuf_init(&b);
	CHECK(scram_client_first(cl, &a) == SCRAM_OK);
	CHECK(scram_server_handle_client_first(sv, a.data, a.len, &b, err, sizeof(err)) == SCRAM_OK);
	pgbuf_reset(&a);
	CHECK(scram_client_handle_server_first(cl, b.data, b.len, &a, err, sizeof(err)) == SCRAM_OK);
	pgbuf_reset(&b);
	status = scram_server_handle_client_final(sv, a.data, a.len, &b, err, sizeof(err));
	if (status == SCRAM_OK)
		CHECK(scram_client_verify_server_final(cl, b.data, b.len, err, sizeof(err)) ==
		      SCRAM_OK);
	pgbuf_free(&a);
	pgbuf_free(&b);
	scram_server_free(sv);
	scram_client_free(cl);
	return status;
}

static void test_round_trips(void)
{
	struct scram_secret sec;
	CHECK(scram_parse_secret(pg_secrets[0].secret, &sec));
	CHECK(exchange(&sec, pg_secrets[0].password) == SCRAM_OK);
	CHECK(exchange(&sec, "wrong") == SCRAM_WRONG_PASSWORD);
	CHECK(strstr(err, "password authentication failed") != NULL);
	CHECK(scram_parse_secret(pg_secrets[2].secret, &sec));
	CHECK(exchange(&sec, "a bc") == SCRAM_OK);  /* SASLprep'ed form, typed directly */
	CHECK(scram_secret_generate("s3cret", SCRAM_DEFAULT_ITERATIONS, &sec));
	CHECK(exchange(&sec, "s3cret") == SCRAM_OK);
	CHECK(exchange(&sec, "") == SCRAM_WRONG_PASSWORD);
}

/* 84 base64 characters, 63 bytes. */
#define LONG_SALT_63 "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"

static void test_parse_secret_rejects(void)
{
	static const char *const bad[] = {
		"",
		"SCRAM-SHA-256$",
		"scram-sha-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		"SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		"SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		"SCRAM-SHA-256$4096x:W22ZaJ0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		"SCRAM-SHA-256$99999999999:W22ZaJ0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7"
		"JXrP3A=:EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		"SCRAM-SHA-256$4096:$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		"SCRAM-SHA-256$4096:W22Za J0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		/* StoredKey of 31 bytes */
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrPw=="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		/* ServerKey missing, then with trailing data */
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=x",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A="
		":EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc= ",
		/* salt of 66 bytes, above SCRAM_MAX_SALT_LEN */
		"SCRAM-SHA-256$4096:" LONG_SALT_63 "QUFB"
		"$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/HdTN7JXrP3A=:EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=",
		"md5d054392f985a267df752bb2b16be2f2f",
	};
	struct scram_secret sec;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (scram_parse_secret(bad[i], &sec)) {
			fprintf(stderr, "accepted bad secret %zu: %s\n", i, bad[i]);
			failures++;
		}
	}
	CHECK(scram_parse_secret("SCRAM-SHA-256$4096:" LONG_SALT_63 "$uesDT7wOU4XPA5DQI3zmzKAaTHItdPC/"
	                         "HdTN7JXrP3A=:EbrvnT13s+aG9DOTwcxpeQFvGb0hz9c91I9MOZZlCVc=", &sec));
	CHECK(sec.salt_len == 63);
	/* Every truncation of a good secret is rejected. */
	char buf[SCRAM_SECRET_MAX_LEN];
	size_t n = strlen(pg_secrets[0].secret);
	for (size_t cut = 0; cut < n; cut++) {
		memcpy(buf, pg_secrets[0].secret, cut);
		buf[cut] = '\0';
		CHECK(!scram_parse_secret(buf, &sec));
	}
}

struct msg_case {
	const char *msg;
	enum scram_status expect;
};

static void test_client_first_cases(void)
{
	static const struct msg_case cases[] = {
		{ "n,,n=user,r=abc", SCRAM_OK },
		{ "y,,n=,r=abc", SCRAM_OK },
		{ "n,,n=,r=abc,x=ignored", SCRAM_OK },
		{ "n,,n=a=2Cb=3Dc,r=abc", SCRAM_OK },
		{ "", SCRAM_MALFORMED },
		{ "n", SCRAM_MALFORMED },
		{ "n,", SCRAM_MALFORMED },
		{ "n,,", SCRAM_MALFORMED },
		{ "n,,n=", SCRAM_MALFORMED },
		{ "n,,n=,r=", SCRAM_MALFORMED },
		{ "n,,n=,r=a b", SCRAM_MALFORMED },
		{ "n,,r=abc", SCRAM_MALFORMED },
		{ "n,,n=a=b,r=abc", SCRAM_MALFORMED },
		{ "n,,n=a=2,r=abc", SCRAM_MALFORMED },
		{ "n,,n=,r=abc,garbage", SCRAM_MALFORMED },
		{ "n,,n=,r=abc,", SCRAM_MALFORMED },
		{ "N,,n=,r=abc", SCRAM_MALFORMED },
		{ "nn,,n=,r=abc", SCRAM_MALFORMED },
		{ "n,x,n=,r=abc", SCRAM_MALFORMED },
		{ "p=tls-server-end-point,,n=,r=abc", SCRAM_CHANNEL_BINDING },
		{ "p", SCRAM_CHANNEL_BINDING },
		{ "n,a=admin,n=,r=abc", SCRAM_UNSUPPORTED },
		{ "n,,m=ext,n=,r=abc", SCRAM_UNSUPPORTED },
	};
	struct pgbuf out;
	pgbuf_init(&out);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct scram_server *st = rfc_server();
		enum scram_status got = scram_server_handle_client_first(
			st, u8(cases[i].msg), strlen(cases[i].msg), &out, err, sizeof(err));
		if (got != cases[i].expect) {
			fprintf(stderr, "client-first \"%s\": got %d, want %d\n", cases[i].msg, got,
			        cases[i].expect);
			failures++;
		}
		if (got == SCRAM_CHANNEL_BINDING)
			CHECK(strstr(err, "channel binding") != NULL);
		scram_server_free(st);
	}
	pgbuf_free(&out);
}

static enum scram_status client_first_bytes(const uint8_t *p, size_t n)
{
	struct pgbuf out;
	struct scram_server *st = rfc_server();
	pgbuf_init(&out);
	enum scram_status got = scram_server_handle_client_first(st, p, n, &out, err, sizeof(err));
	pgbuf_free(&out);
	scram_server_free(st);
	return got;
}

static void test_client_first_limits(void)
{
	char msg[2100];
	memcpy(msg, "n,,n=,r=", 8);
	memset(msg + 8, 'x', SCRAM_MAX_NONCE_LEN);
	CHECK(client_first_bytes(u8(msg), 8 + SCRAM_MAX_NONCE_LEN) == SCRAM_OK);
	memset(msg + 8, 'x', SCRAM_MAX_NONCE_LEN + 1);
	CHECK(client_first_bytes(u8(msg), 8 + SCRAM_MAX_NONCE_LEN + 1) == SCRAM_MALFORMED);
	static const uint8_t with_nul[] = "n,,n=,r=ab\0c";
	CHECK(client_first_bytes(with_nul, sizeof(with_nul) - 1) == SCRAM_MALFORMED);
	/* Not NUL-terminated: the parser must stop at len. */
	CHECK(client_first_bytes(u8(RFC_CLIENT_FIRST "GARBAGE"), strlen(RFC_CLIENT_FIRST)) ==
	      SCRAM_OK);
	for (size_t cut = 0; cut < strlen(RFC_CLIENT_FIRST); cut++)
		CHECK(client_first_bytes(u8(RFC_CLIENT_FIRST), cut) != SCRAM_OK ||
		      cut > strlen("n,,n=user,r="));
}

static void test_client_final_cases(void)
{
	static const struct msg_case cases[] = {
		{ RFC_CLIENT_FINAL, SCRAM_OK },
		/* an extension before the proof is signed, so the RFC proof fails */
		{ RFC_FINAL_NO_PROOF ",x=1,p=" RFC_PROOF, SCRAM_WRONG_PASSWORD },
		{ RFC_FINAL_NO_PROOF ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  SCRAM_WRONG_PASSWORD },
		{ "c=eSws,r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE ",p=" RFC_PROOF, SCRAM_MALFORMED },
		{ "c=bix5LA==,r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE ",p=" RFC_PROOF, SCRAM_MALFORMED },
		{ "c=biw=,r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE ",p=" RFC_PROOF, SCRAM_MALFORMED },
		{ "c=,r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE ",p=" RFC_PROOF, SCRAM_MALFORMED },
		{ "c=biws,r=" RFC_CLIENT_NONCE ",p=" RFC_PROOF, SCRAM_MALFORMED },
		{ "c=biws,r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE "x,p=" RFC_PROOF, SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE ",c=biws,p=" RFC_PROOF, SCRAM_MALFORMED },
		{ RFC_FINAL_NO_PROOF, SCRAM_MALFORMED },
		{ RFC_FINAL_NO_PROOF ",p=", SCRAM_MALFORMED },
		{ RFC_FINAL_NO_PROOF ",p=" RFC_PROOF ",x=1", SCRAM_MALFORMED },
		{ RFC_FINAL_NO_PROOF ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==",
		  SCRAM_MALFORMED },
		{ RFC_FINAL_NO_PROOF ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ", SCRAM_MALFORMED },
		{ RFC_FINAL_NO_PROOF ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And!Q=",
		  SCRAM_MALFORMED },
		{ RFC_FINAL_NO_PROOF ",garbage,p=" RFC_PROOF, SCRAM_MALFORMED },
		{ "", SCRAM_MALFORMED },
	};
	struct pgbuf out;
	pgbuf_init(&out);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct scram_server *st = rfc_server_after_first();
		uint8_t key[SCRAM_KEY_LEN];
		enum scram_status got = scram_server_handle_client_final(
			st, u8(cases[i].msg), strlen(cases[i].msg), &out, err, sizeof(err));
		if (got != cases[i].expect) {
			fprintf(stderr, "client-final \"%s\": got %d, want %d\n", cases[i].msg, got,
			        cases[i].expect);
			failures++;
		}
		CHECK(scram_server_client_key(st, key) == (got == SCRAM_OK));
		scram_server_free(st);
	}
	pgbuf_free(&out);
}

static void test_server_order(void)
{
	struct pgbuf out;
	struct scram_server *st = rfc_server();
	pgbuf_init(&out);
	CHECK(scram_server_handle_client_final(st, u8(RFC_CLIENT_FINAL), strlen(RFC_CLIENT_FINAL),
	                                       &out, err, sizeof(err)) == SCRAM_OUT_OF_ORDER);
	scram_server_free(st);
	st = rfc_server();
	CHECK(scram_server_handle_client_first(st, u8("x"), 1, &out, err, sizeof(err)) ==
	      SCRAM_MALFORMED);
	/* A failed exchange stays failed. */
	CHECK(scram_server_handle_client_first(st, u8(RFC_CLIENT_FIRST), strlen(RFC_CLIENT_FIRST),
	                                       &out, err, sizeof(err)) == SCRAM_OUT_OF_ORDER);
	scram_server_free(st);
	st = rfc_server_after_first();
	CHECK(!scram_server_set_nonce(st, "late"));
	CHECK(scram_server_handle_client_first(st, u8(RFC_CLIENT_FIRST), strlen(RFC_CLIENT_FIRST),
	                                       &out, err, sizeof(err)) == SCRAM_OUT_OF_ORDER);
	scram_server_free(st);
	st = rfc_server();
	CHECK(!scram_server_set_nonce(st, "has,comma"));
	CHECK(!scram_server_set_nonce(st, ""));
	scram_server_free(st);
	pgbuf_free(&out);
}

/* A doomed exchange looks real (stable salt per user) and always fails. */
static void test_doomed(void)
{
	uint8_t mock_key[SCRAM_KEY_LEN] = { 1, 2, 3 };
	struct pgbuf a, b;
	pgbuf_init(&a);
	pgbuf_init(&b);
	const char *users[] = { "ghost", "ghost", "other" };
	for (size_t i = 0; i < 3; i++) {
		struct scram_server *st = scram_server_begin_doomed(users[i], mock_key);
		CHECK(scram_server_set_nonce(st, RFC_SERVER_NONCE));
		struct pgbuf *out = i == 0 ? &a : &b;
		pgbuf_reset(out);
		CHECK(scram_server_handle_client_first(st, u8(RFC_CLIENT_FIRST),
		                                       strlen(RFC_CLIENT_FIRST), out, err,
		                                       sizeof(err)) == SCRAM_OK);
		if (i == 1)
			CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
		if (i == 2)
			CHECK(a.len != b.len || memcmp(a.data, b.data, a.len) != 0);
		pgbuf_reset(&b);
		CHECK(scram_server_handle_client_final(st, u8(RFC_CLIENT_FINAL),
		                                       strlen(RFC_CLIENT_FINAL), &b, err,
		                                       sizeof(err)) == SCRAM_WRONG_PASSWORD);
		scram_server_free(st);
	}
	pgbuf_free(&a);
	pgbuf_free(&b);
}

static struct scram_client *rfc_client_after_first(const struct scram_secret *keys_of)
{
	struct pgbuf out;
	struct scram_client *cl;
	if (keys_of) {
		uint8_t client_key[SCRAM_KEY_LEN] = { 0 };
		cl = scram_client_begin_keys(keys_of, client_key);
	} else {
		cl = scram_client_begin_password(RFC_PASSWORD);
	}
	pgbuf_init(&out);
	CHECK(scram_client_set_identity(cl, "user", RFC_CLIENT_NONCE));
	CHECK(scram_client_first(cl, &out) == SCRAM_OK);
	pgbuf_free(&out);
	return cl;
}

static enum scram_status server_first_case(const struct scram_secret *keys_of, const char *msg)
{
	struct pgbuf out;
	struct scram_client *cl = rfc_client_after_first(keys_of);
	pgbuf_init(&out);
	enum scram_status got = scram_client_handle_server_first(cl, u8(msg), strlen(msg), &out,
	                                                         err, sizeof(err));
	pgbuf_free(&out);
	scram_client_free(cl);
	return got;
}

static void test_server_first_cases(void)
{
	static const struct msg_case cases[] = {
		{ RFC_SERVER_FIRST, SCRAM_OK },
		{ RFC_SERVER_FIRST ",x=ext", SCRAM_OK },
		{ "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=1", SCRAM_OK },
		{ "r=" RFC_CLIENT_NONCE ",s=" RFC_SALT_B64 ",i=4096", SCRAM_SERVER_FORGED },
		{ "r=xOprNGfwEbeRWgbNEkqOabc,s=" RFC_SALT_B64 ",i=4096", SCRAM_SERVER_FORGED },
		{ "r=rOprNG,s=" RFC_SALT_B64 ",i=4096", SCRAM_SERVER_FORGED },
		{ "m=x,r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=4096", SCRAM_UNSUPPORTED },
		{ "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=0", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=-1", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=4k", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=10000001", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=99999999999999999999", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=,i=4096", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=W22Z\x01J0SNY7soEsUEjb6gQ==,i=4096", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,i=4096,s=" RFC_SALT_B64, SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64, SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=4096,junk", SCRAM_MALFORMED },
		{ "r=" RFC_CLIENT_NONCE "X X,s=" RFC_SALT_B64 ",i=4096", SCRAM_MALFORMED },
		{ "", SCRAM_MALFORMED },
		{ "e=other-error", SCRAM_MALFORMED },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum scram_status got = server_first_case(NULL, cases[i].msg);
		if (got != cases[i].expect) {
			fprintf(stderr, "server-first \"%s\": got %d, want %d\n", cases[i].msg, got,
			        cases[i].expect);
			failures++;
		}
	}
	char msg[1200];
	int n = snprintf(msg, sizeof(msg), "r=%s%0*d,s=%s,i=4096", RFC_CLIENT_NONCE,
	                 SCRAM_MAX_NONCE_LEN + 1 - (int)strlen(RFC_CLIENT_NONCE), 0, RFC_SALT_B64);
	CHECK(n > 0 && (size_t)n < sizeof(msg));
	CHECK(server_first_case(NULL, msg) == SCRAM_MALFORMED);
}

/* With a ClientKey, the server must hold the same salt and iterations. */
static void test_server_first_secret_mismatch(void)
{
	struct scram_secret sec;
	rfc_secret(&sec);
	CHECK(server_first_case(&sec, RFC_SERVER_FIRST) == SCRAM_OK);
	CHECK(server_first_case(&sec, "r=" RFC_CLIENT_NONCE "X,s=" RFC_SALT_B64 ",i=4097") ==
	      SCRAM_SECRET_MISMATCH);
	CHECK(server_first_case(&sec, "r=" RFC_CLIENT_NONCE "X,s=X22ZaJ0SNY7soEsUEjb6gQ==,i=4096") ==
	      SCRAM_SECRET_MISMATCH);
	CHECK(server_first_case(&sec, "r=" RFC_CLIENT_NONCE "X,s=W22ZaJ0SNY7soEsU,i=4096") ==
	      SCRAM_SECRET_MISMATCH);
}

static enum scram_status server_final_case(const char *msg)
{
	struct pgbuf out;
	struct scram_client *cl = rfc_client_after_first(NULL);
	pgbuf_init(&out);
	CHECK(scram_client_handle_server_first(cl, u8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST),
	                                       &out, err, sizeof(err)) == SCRAM_OK);
	enum scram_status got = scram_client_verify_server_final(cl, u8(msg), strlen(msg), err,
	                                                         sizeof(err));
	pgbuf_free(&out);
	scram_client_free(cl);
	return got;
}

static void test_server_final_cases(void)
{
	CHECK(server_final_case(RFC_SERVER_FINAL) == SCRAM_OK);
	CHECK(server_final_case(RFC_SERVER_FINAL ",x=ext") == SCRAM_OK);
	CHECK(server_final_case("e=invalid-proof") == SCRAM_SERVER_REJECTED);
	CHECK(strstr(err, "invalid-proof") != NULL);
	CHECK(server_final_case("e=\x01\x7f") == SCRAM_SERVER_REJECTED);
	CHECK(strstr(err, "??") != NULL);
	CHECK(server_final_case("e=") == SCRAM_SERVER_REJECTED);
	CHECK(server_final_case("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=") ==
	      SCRAM_SERVER_FORGED);
	CHECK(server_final_case("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G=") ==
	      SCRAM_MALFORMED);
	CHECK(server_final_case("v=") == SCRAM_MALFORMED);
	CHECK(server_final_case("") == SCRAM_MALFORMED);
	CHECK(server_final_case(RFC_SERVER_FINAL ",junk") == SCRAM_MALFORMED);

	struct scram_client *cl = rfc_client_after_first(NULL);
	CHECK(scram_client_verify_server_final(cl, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL),
	                                       err, sizeof(err)) == SCRAM_OUT_OF_ORDER);
	scram_client_free(cl);
}

/* Checks b holds exactly one message of the given type; returns its body. */
static const uint8_t *one_message(const struct pgbuf *b, char type, size_t *body_len)
{
	uint8_t got_type = 0;
	uint32_t total = 0;
	if (pgmsg_header(b->data, b->len, PG_PRE_AUTH_MAX_MESSAGE, &got_type, &total) != PGMSG_OK ||
	    got_type != (uint8_t)type || total != b->len) {
		failures++;
		fprintf(stderr, "expected one '%c' message\n", type);
		*body_len = 0;
		return b->data;
	}
	*body_len = b->len - PG_HEADER_LEN;
	return b->data + PG_HEADER_LEN;
}

/* The whole login as bytes on the wire: the proxy's server side facing a
 * client built from the proxy's client side, through the authmsg envelopes. */
static void test_wire_exchange(void)
{
	static const char *const mechs[] = { SCRAM_MECHANISM };
	struct scram_secret sec;
	struct pgbuf wire, payload;
	struct authmsg_request req;
	const uint8_t *body, *data;
	const char *mech;
	size_t body_len, data_len;

	CHECK(scram_parse_secret(pg_secrets[0].secret, &sec));
	struct scram_server *sv = scram_server_begin(&sec);
	struct scram_client *cl = scram_client_begin_password(pg_secrets[0].password);
	pgbuf_init(&wire);
	pgbuf_init(&payload);

	authmsg_put_sasl(&wire, mechs, 1);
	body = one_message(&wire, 'R', &body_len);
	CHECK(authmsg_parse_request(body, body_len, &req) && req.code == PG_AUTH_SASL &&
	      req.offers_scram);

	CHECK(scram_client_first(cl, &payload) == SCRAM_OK);
	pgbuf_reset(&wire);
	authmsg_put_sasl_initial(&wire, SCRAM_MECHANISM, payload.data, payload.len);
	body = one_message(&wire, 'p', &body_len);
	CHECK(authmsg_parse_sasl_initial(body, body_len, &mech, &data, &data_len));
	CHECK(strcmp(mech, SCRAM_MECHANISM) == 0);

	pgbuf_reset(&payload);
	CHECK(scram_server_handle_client_first(sv, data, data_len, &payload, err, sizeof(err)) ==
	      SCRAM_OK);
	pgbuf_reset(&wire);
	authmsg_put_sasl_continue(&wire, payload.data, payload.len);
	body = one_message(&wire, 'R', &body_len);
	CHECK(authmsg_parse_request(body, body_len, &req) && req.code == PG_AUTH_SASL_CONTINUE);

	pgbuf_reset(&payload);
	CHECK(scram_client_handle_server_first(cl, req.data, req.data_len, &payload, err,
	                                       sizeof(err)) == SCRAM_OK);
	pgbuf_reset(&wire);
	authmsg_put_sasl_response(&wire, payload.data, payload.len);
	body = one_message(&wire, 'p', &body_len);
	CHECK(authmsg_parse_sasl_response(body, body_len, &data, &data_len));

	pgbuf_reset(&payload);
	CHECK(scram_server_handle_client_final(sv, data, data_len, &payload, err, sizeof(err)) ==
	      SCRAM_OK);
	pgbuf_reset(&wire);
	authmsg_put_sasl_final(&wire, payload.data, payload.len);
	body = one_message(&wire, 'R', &body_len);
	CHECK(authmsg_parse_request(body, body_len, &req) && req.code == PG_AUTH_SASL_FINAL);
	CHECK(scram_client_verify_server_final(cl, req.data, req.data_len, err, sizeof(err)) ==
	      SCRAM_OK);

	pgbuf_free(&wire);
	pgbuf_free(&payload);
	scram_server_free(sv);
	scram_client_free(cl);
}

static void test_authmsg_parsers(void)
{
	static const struct {
		const char *body;
		size_t len;
		bool ok;
	} requests[] = {
		{ "\0\0\0\0", 4, true },                       /* AuthenticationOk */
		{ "\0\0\0\0x", 5, false },
		{ "\0\0\0\3", 4, true },                       /* cleartext */
		{ "\0\0\0\5\1\2\3\4", 8, true },              /* md5 + salt */
		{ "\0\0\0\5\1\2\3", 7, false },
		{ "\0\0\0\5\1\2\3\4\5", 9, false },
		{ "\0\0\0\12SCRAM-SHA-256\0\0", 19, true },
		{ "\0\0\0\12SCRAM-SHA-256\0", 18, false },   /* no terminator */
		{ "\0\0\0\12SCRAM-SHA-256", 17, false },
		{ "\0\0\0\12\0x", 6, false },                 /* bytes after the list */
		{ "\0\0\0\13", 4, false },                     /* SASLContinue, no data */
		{ "\0\0\0\14v=x", 7, true },
		{ "\0\0\0\7", 4, true },                       /* GSS: code only */
		{ "\0\0\0", 3, false },
		{ "", 0, false },
	};
	struct authmsg_request req;
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		if (authmsg_parse_request((const uint8_t *)requests[i].body, requests[i].len, &req) !=
		    requests[i].ok) {
			fprintf(stderr, "auth request case %zu\n", i);
			failures++;
		}
	}
	CHECK(authmsg_parse_request(u8("\0\0\0\5\1\2\3\4"), 8, &req) &&
	      memcmp(req.md5_salt, "\1\2\3\4", 4) == 0);
	CHECK(authmsg_parse_request(u8("\0\0\0\12OTHER\0\0"), 11, &req) && !req.offers_scram);

	const char *s, *mech;
	const uint8_t *data;
	size_t n;
	CHECK(authmsg_parse_password(u8("pw"), 3, &s) && strcmp(s, "pw") == 0);
	CHECK(!authmsg_parse_password(u8("pw"), 2, &s));
	CHECK(!authmsg_parse_password(u8("pw\0x"), 4, &s));
	CHECK(!authmsg_parse_password(u8(""), 0, &s));
	CHECK(authmsg_parse_sasl_initial(u8("M\0\xff\xff\xff\xff"), 6, &mech, &data, &n) &&
	      data == NULL && n == 0);
	CHECK(authmsg_parse_sasl_initial(u8("M\0\0\0\0\2ab"), 8, &mech, &data, &n) && n == 2);
	CHECK(!authmsg_parse_sasl_initial(u8("M\0\0\0\0\3ab"), 8, &mech, &data, &n));
	CHECK(!authmsg_parse_sasl_initial(u8("M\0\0\0\0\1ab"), 8, &mech, &data, &n));
	CHECK(!authmsg_parse_sasl_initial(u8("M\0\xff\xff\xff\xfe"), 6, &mech, &data, &n));
	CHECK(!authmsg_parse_sasl_initial(u8("M\0\x7f\xff\xff\xff"), 6, &mech, &data, &n));
	CHECK(!authmsg_parse_sasl_initial(u8("M\0\0\0"), 4, &mech, &data, &n));
	CHECK(!authmsg_parse_sasl_initial(u8("M"), 1, &mech, &data, &n));
	CHECK(!authmsg_parse_sasl_response(u8(""), 0, &data, &n));
}

static void test_saslprep(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "pencil", "pencil" },
		{ "tab\there", "tab\there" },                    /* prohibited: kept raw */
		{ "a\xc2\xa0" "b\xc2\xad" "c", "a bc" },
		{ "x\xe2\x80\x8by", "x y" },                     /* U+200B: space first */
		{ "\xe3\x80\x80", " " },                         /* ideographic space */
		{ "p\xc3\xa4ss", "p\xc3\xa4ss" },
		{ "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },      /* emoji, unchanged */
		{ "\xc3\xa4\x07", "\xc3\xa4\x07" },              /* control char: raw */
		{ "\xee\x80\x80\xc2\xad", "\xee\x80\x80\xc2\xad" }, /* private use: raw */
		{ "\xff\xfe\xc2\xad", "\xff\xfe\xc2\xad" },      /* not UTF-8: raw */
		{ "\xc0\xaf\xc2\xad", "\xc0\xaf\xc2\xad" },      /* overlong: raw */
		{ "\xed\xa0\x80\xc2\xad", "\xed\xa0\x80\xc2\xad" }, /* surrogate: raw */
		{ "\xf4\x90\x80\x80\xc2\xad", "\xf4\x90\x80\x80\xc2\xad" }, /* > U+10FFFF */
		{ "\xc2\xad\xe2", "\xc2\xad\xe2" },              /* truncated sequence */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = scram_saslprep(cases[i].in);
		if (!got || strcmp(got, cases[i].out) != 0) {
			fprintf(stderr, "saslprep case %zu: got \"%s\"\n", i, got ? got : "(null)");
			failures++;
		}
		free(got);
	}
}

static void test_sqlstates(void)
{
	CHECK(strcmp(scram_status_sqlstate(SCRAM_WRONG_PASSWORD), "28P01") == 0);
	CHECK(strcmp(scram_status_sqlstate(SCRAM_MALFORMED), "08P01") == 0);
	CHECK(strcmp(scram_status_sqlstate(SCRAM_CHANNEL_BINDING), "0A000") == 0);
}

/* xorshift: reproducible noise without a seed file. */
static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
	return check_rng(&rng_state);
}

/* Random bytes, and valid messages with random bytes overwritten, into every
 * parser; the sanitizer build catches any over-read. */
static void test_random_inputs(void)
{
	static const char *const seeds[] = { RFC_CLIENT_FIRST, RFC_CLIENT_FINAL, RFC_SERVER_FIRST,
	                                     RFC_SERVER_FINAL };
	uint8_t buf[300];
	struct pgbuf out;
	pgbuf_init(&out);
	for (int round = 0; round < 4000; round++) {
		size_t n = rng() % sizeof(buf);
		const char *seed = seeds[round % 4];
		size_t seed_n = strlen(seed) < n ? strlen(seed) : n;
		memcpy(buf, seed, seed_n);
		for (size_t i = seed_n; i < n; i++)
			buf[i] = (uint8_t)rng();
		for (int flips = (int)(rng() % 4); flips > 0 && n > 0; flips--)
			buf[rng() % n] = (uint8_t)(rng() % 4 == 0 ? ',' : rng());

		struct scram_server *sv = rfc_server();
		pgbuf_reset(&out);
		if (scram_server_handle_client_first(sv, buf, n, &out, err, sizeof(err)) == SCRAM_OK)
			(void)scram_server_handle_client_final(sv, buf, n, &out, err, sizeof(err));
		scram_server_free(sv);
		sv = rfc_server_after_first();
		(void)scram_server_handle_client_final(sv, buf, n, &out, err, sizeof(err));
		scram_server_free(sv);

		struct scram_client *cl = rfc_client_after_first(NULL);
		pgbuf_reset(&out);
		if (scram_client_handle_server_first(cl, buf, n, &out, err, sizeof(err)) == SCRAM_OK)
			(void)scram_client_verify_server_final(cl, buf, n, err, sizeof(err));
		scram_client_free(cl);

		char text[sizeof(buf) + 1];
		memcpy(text, buf, n);
		text[n] = '\0';
		struct scram_secret sec;
		(void)scram_parse_secret(text, &sec);
		free(scram_saslprep(text));

		struct authmsg_request req;
		const char *str;
		const uint8_t *data;
		size_t data_len;
		(void)authmsg_parse_request(buf, n, &req);
		(void)authmsg_parse_password(buf, n, &str);
		(void)authmsg_parse_sasl_initial(buf, n, &str, &data, &data_len);
	}
	pgbuf_free(&out);
}

int main(void)
{
	test_rfc7677_server();
	test_rfc7677_client();
	test_pg_secrets();
	test_round_trips();
	test_parse_secret_rejects();
	test_client_first_cases();
	test_client_first_limits();
	test_client_final_cases();
	test_server_order();
	test_doomed();
	test_server_first_cases();
	test_server_first_secret_mismatch();
	test_server_final_cases();
	test_wire_exchange();
	test_authmsg_parsers();
	test_saslprep();
	test_sqlstates();
	test_random_inputs();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
