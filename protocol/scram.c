#include "scram.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "errtext.h"
#include "message.h"

#define SECRET_PREFIX "SCRAM-SHA-256$"
/* libpq and PostgreSQL both draw 18 random bytes per nonce. */
#define RAW_NONCE_LEN 18
/* Every SCRAM message is short; anything longer is hostile or broken. */
#define MAX_MESSAGE_LEN 8192
/* Largest binary field we base64-encode: a SCRAM_MAX_SALT_LEN salt. */
#define B64_BUF_LEN (((SCRAM_MAX_SALT_LEN + 2) / 3) * 4 + 1)

/* ---- small helpers ---- */


const char *scram_status_sqlstate(enum scram_status st)
{
	switch (st) {
	case SCRAM_OK: return "00000";
	case SCRAM_MALFORMED: return SQLSTATE_PROTOCOL_VIOLATION;
	case SCRAM_CHANNEL_BINDING:
	case SCRAM_UNSUPPORTED: return SQLSTATE_FEATURE_NOT_SUPPORTED;
	case SCRAM_WRONG_PASSWORD: return SQLSTATE_INVALID_PASSWORD;
	case SCRAM_SERVER_REJECTED:
	case SCRAM_SERVER_FORGED:
	case SCRAM_SECRET_MISMATCH: return SQLSTATE_CONNECTION_FAILURE;
	case SCRAM_OUT_OF_ORDER: return SQLSTATE_PROTOCOL_VIOLATION;
	case SCRAM_INTERNAL: return SQLSTATE_INTERNAL_ERROR;
	}
	return SQLSTATE_INTERNAL_ERROR;
}

/* Encodes n <= SCRAM_MAX_SALT_LEN bytes; returns the text length. */
static size_t b64_encode(const uint8_t *in, size_t n, char out[B64_BUF_LEN])
{
	if (n > SCRAM_MAX_SALT_LEN)
		return 0;
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static bool is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Strict RFC 4648 base64 (no whitespace, padding only at the end, length a
 * multiple of 4), because EVP_DecodeBlock alone skips blanks and does not
 * report the padding it decoded. */
static bool b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t tmp[B64_BUF_LEN];
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(tmp))
		return false;
	size_t pad = in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
	for (size_t i = 0; i < n - pad; i++)
		if (!is_b64_char(in[i]))
			return false;
	size_t len = n / 4 * 3 - pad;
	if (len > cap)
		return false;
	if (EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n) < 0)
		return false;
	memcpy(out, tmp, len);
	*outlen = len;
	return true;
}

static bool b64_decode_key(const char *in, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
	size_t len;
	return b64_decode(in, n, out, SCRAM_KEY_LEN, &len) && len == SCRAM_KEY_LEN;
}

/* Callers pass at most SCRAM_MAX_SALT_LEN bytes (salts, keys). */
static void put_b64(struct pgbuf *b, const uint8_t *in, size_t n)
{
	char text[B64_BUF_LEN];
	pgbuf_put_bytes(b, text, b64_encode(in, n, text));
}

static void put_text(struct pgbuf *b, const char *s)
{
	pgbuf_put_bytes(b, s, strlen(s));
}

/* Decimal iteration count in [1, max], digits only, no sign or blanks. */
static bool parse_iterations(const char *s, size_t n, int64_t max, int *out)
{
	int64_t v = 0;
	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
		if (v > max)
			return false;
	}
	if (v < 1)
		return false;
	*out = (int)v;
	return true;
}

/* ---- crypto primitives ---- */

static bool sha256(const uint8_t *in, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int len = 0;
	return EVP_Digest(in, n, out, &len, EVP_sha256(), NULL) == 1 && len == SCRAM_KEY_LEN;
}

static bool hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t n,
                        uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int len = 0;
	return HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len) != NULL &&
	       len == SCRAM_KEY_LEN;
}

static bool salted_password(const char *prepped, const uint8_t *salt, size_t salt_len,
                            int iterations, uint8_t out[SCRAM_KEY_LEN])
{
	return PKCS5_PBKDF2_HMAC(prepped, (int)strlen(prepped), salt, (int)salt_len, iterations,
	                         EVP_sha256(), SCRAM_KEY_LEN, out) == 1;
}

/* ClientKey and ServerKey from a SaltedPassword, per RFC 5802 section 3. */
static bool derive_keys(const uint8_t sp[SCRAM_KEY_LEN], uint8_t client_key[SCRAM_KEY_LEN],
                        uint8_t server_key[SCRAM_KEY_LEN])
{
	return hmac_sha256(sp, SCRAM_KEY_LEN, "Client Key", 10, client_key) &&
	       hmac_sha256(sp, SCRAM_KEY_LEN, "Server Key", 10, server_key);
}

static void xor_keys(const uint8_t *a, const uint8_t *b, uint8_t out[SCRAM_KEY_LEN])
{
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		out[i] = a[i] ^ b[i];
}

static bool random_nonce(char out[B64_BUF_LEN])
{
	uint8_t raw[RAW_NONCE_LEN];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return false;
	return b64_encode(raw, sizeof(raw), out) > 0;
}

/* ---- stored secrets ---- */

/* Splits s at the first sep: the part before is [s, *len), *next after sep. */
static bool take_until(const char *s, char sep, size_t *len, const char **next)
{
	const char *at = strchr(s, sep);
	if (!at)
		return false;
	*len = (size_t)(at - s);
	*next = at + 1;
	return true;
}

bool scram_parse_secret(const char *s, struct scram_secret *out)
{
	struct scram_secret sec;
	const char *p, *salt, *stored, *server;
	size_t n, salt_n, stored_n;

	memset(&sec, 0, sizeof(sec));
	if (strncmp(s, SECRET_PREFIX, strlen(SECRET_PREFIX)) != 0)
		return false;
	p = s + strlen(SECRET_PREFIX);
	if (!take_until(p, ':', &n, &salt) || !parse_iterations(p, n, 0x7fffffff, &sec.iterations))
		return false;
	if (!take_until(salt, '$', &salt_n, &stored) || !take_until(stored, ':', &stored_n, &server))
		return false;
	if (!b64_decode(salt, salt_n, sec.salt, sizeof(sec.salt), &sec.salt_len) ||
	    !b64_decode_key(stored, stored_n, sec.stored_key) ||
	    !b64_decode_key(server, strlen(server), sec.server_key))
		return false;
	*out = sec;
	return true;
}

bool scram_format_secret(const struct scram_secret *sec, char *out, size_t outlen)
{
	char salt[B64_BUF_LEN], stored[B64_BUF_LEN], server[B64_BUF_LEN];
	if (sec->salt_len == 0 || b64_encode(sec->salt, sec->salt_len, salt) == 0)
		return false;
	b64_encode(sec->stored_key, SCRAM_KEY_LEN, stored);
	b64_encode(sec->server_key, SCRAM_KEY_LEN, server);
	int n = snprintf(out, outlen, SECRET_PREFIX "%d:%s$%s:%s", sec->iterations, salt, stored,
	                 server);
	return n > 0 && (size_t)n < outlen;
}

bool scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
                                int iterations, struct scram_secret *out)
{
	uint8_t sp[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
	if (salt_len == 0 || salt_len > SCRAM_MAX_SALT_LEN || iterations < 1)
		return false;
	char *prepped = scram_saslprep(password);
	if (!prepped)
		return false;
	memset(out, 0, sizeof(*out));
	bool ok = salted_password(prepped, salt, salt_len, iterations, sp) &&
	          derive_keys(sp, client_key, out->server_key) &&
	          sha256(client_key, SCRAM_KEY_LEN, out->stored_key);
	OPENSSL_cleanse(sp, sizeof(sp));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_clear_free(prepped, strlen(prepped));
	out->iterations = iterations;
	out->salt_len = salt_len;
	memcpy(out->salt, salt, salt_len);
	return ok;
}

bool scram_secret_generate(const char *password, int iterations, struct scram_secret *out)
{
	uint8_t salt[SCRAM_DEFAULT_SALT_LEN];
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return false;
	return scram_secret_from_password(password, salt, sizeof(salt), iterations, out);
}

/* ---- message fields ---- */

/* Walks a SCRAM message field by field (comma separated). The message is not
 * NUL-terminated and no field may run past its end. */
struct fields {
	const char *p;
	size_t len;
	size_t pos;
	bool done;
};

static void fields_init(struct fields *f, const char *p, size_t len)
{
	f->p = p;
	f->len = len;
	f->pos = 0;
	f->done = false;
}

static bool fields_next(struct fields *f, const char **s, size_t *n)
{
	if (f->done)
		return false;
	const char *start = f->p + f->pos;
	const char *comma = memchr(start, ',', f->len - f->pos);
	*s = start;
	if (comma) {
		*n = (size_t)(comma - start);
		f->pos += *n + 1;
	} else {
		*n = f->len - f->pos;
		f->pos = f->len;
		f->done = true;
	}
	return true;
}

/* Takes the next field when it is "<name>=value"; the value is returned. */
static bool fields_attr(struct fields *f, char name, const char **val, size_t *n)
{
	const char *s;
	size_t len;
	if (!fields_next(f, &s, &len) || len < 2 || s[0] != name || s[1] != '=')
		return false;
	*val = s + 2;
	*n = len - 2;
	return true;
}

static bool is_attr(const char *s, size_t n)
{
	return n >= 2 && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) &&
	       s[1] == '=';
}

/* RFC 5802 printable: %x21-2B / %x2D-7E (the comma already split off). */
static bool is_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

static bool is_nonce(const char *s, size_t n)
{
	return n > 0 && n <= SCRAM_MAX_NONCE_LEN && is_printable(s, n);
}

/* saslname: any bytes but ',' (split off) and '=' outside "=2C"/"=3D". */
static bool is_saslname(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '=')
			continue;
		if (n - i < 3 ||
		    !((s[i + 1] == '2' && s[i + 2] == 'C') || (s[i + 1] == '3' && s[i + 2] == 'D')))
			return false;
		i += 2;
	}
	return true;
}

/* Optional extensions at the end of a message are ignored, as PostgreSQL
 * does, but must still look like attributes. */
static bool rest_are_extensions(struct fields *f)
{
	const char *s;
	size_t n;
	while (fields_next(f, &s, &n))
		if (!is_attr(s, n))
			return false;
	return true;
}

/* SCRAM text is printable ASCII or UTF-8; a NUL byte is never valid and
 * would cut strings built from it. */
static bool message_ok(const uint8_t *data, size_t len)
{
	return len > 0 && len <= MAX_MESSAGE_LEN && memchr(data, 0, len) == NULL;
}

/* ---- server side ---- */

enum exchange_phase { PHASE_START, PHASE_CONTINUE, PHASE_DONE, PHASE_FAILED };

struct scram_server {
	enum exchange_phase phase;
	struct scram_secret secret;
	bool doomed;
	char gs2_flag;                   /* 'n' or 'y' */
	char server_nonce[SCRAM_MAX_NONCE_LEN + 1];
	char *nonce;                     /* client nonce + server nonce */
	size_t nonce_len;
	struct pgbuf auth_message;       /* RFC 5802 AuthMessage, built as we go */
	bool have_client_key;
	uint8_t client_key[SCRAM_KEY_LEN];
};

static struct scram_server *server_new(void)
{
	struct scram_server *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	pgbuf_init(&st->auth_message);
	if (!random_nonce(st->server_nonce)) {
		free(st);
		return NULL;
	}
	return st;
}

struct scram_server *scram_server_begin(const struct scram_secret *secret)
{
	struct scram_server *st = server_new();
	if (st)
		st->secret = *secret;
	return st;
}

struct scram_server *scram_server_begin_doomed(const char *user,
                                              const uint8_t mock_key[SCRAM_KEY_LEN])
{
	uint8_t salt[SCRAM_KEY_LEN];
	struct scram_server *st = server_new();
	if (!st)
		return NULL;
	st->doomed = true;
	st->secret.iterations = SCRAM_DEFAULT_ITERATIONS;
	st->secret.salt_len = SCRAM_DEFAULT_SALT_LEN;
	if (!hmac_sha256(mock_key, SCRAM_KEY_LEN, user, strlen(user), salt) ||
	    RAND_bytes(st->secret.stored_key, SCRAM_KEY_LEN) != 1) {
		scram_server_free(st);
		return NULL;
	}
	memcpy(st->secret.salt, salt, SCRAM_DEFAULT_SALT_LEN);
	return st;
}

void scram_server_free(struct scram_server *st)
{
	if (!st)
		return;
	free(st->nonce);
	pgbuf_free(&st->auth_message);
	OPENSSL_cleanse(st, sizeof(*st));
	free(st);
}

bool scram_server_set_nonce(struct scram_server *st, const char *nonce)
{
	size_t n = strlen(nonce);
	if (st->phase != PHASE_START || !is_nonce(nonce, n))
		return false;
	memcpy(st->server_nonce, nonce, n + 1);
	return true;
}

bool scram_server_client_key(const struct scram_server *st, uint8_t out[SCRAM_KEY_LEN])
{
	if (!st->have_client_key)
		return false;
	memcpy(out, st->client_key, SCRAM_KEY_LEN);
	return true;
}

/* gs2-header: the channel-binding flag and an empty authzid. */
static enum scram_status parse_gs2_header(struct scram_server *st, struct fields *f,
                                          char *err, size_t errlen)
{
	const char *s;
	size_t n;
	if (!fields_next(f, &s, &n))
		goto malformed;
	if (n >= 1 && s[0] == 'p') {
		errtext_set(err, errlen, "channel binding is not supported by this connection pooler; "
		        "connect with channel_binding=prefer or disable");
		return SCRAM_CHANNEL_BINDING;
	}
	if (n != 1 || (s[0] != 'n' && s[0] != 'y'))
		goto malformed;
	st->gs2_flag = s[0];
	if (!fields_next(f, &s, &n) || f->done)
		goto malformed;
	if (n > 0) {
		if (s[0] == 'a' && n >= 2 && s[1] == '=') {
			errtext_set(err, errlen, "SCRAM authorization identity is not supported");
			return SCRAM_UNSUPPORTED;
		}
		goto malformed;
	}
	return SCRAM_OK;
malformed:
	errtext_set(err, errlen, "malformed SCRAM message: invalid GS2 header");
	return SCRAM_MALFORMED;
}

/* client-first-message-bare: n=user,r=nonce[,extensions]. */
static enum scram_status parse_client_bare(struct fields *f, const char **nonce, size_t *nonce_n,
                                           char *err, size_t errlen)
{
	const char *s;
	size_t n;
	struct fields peek = *f;
	if (fields_next(&peek, &s, &n) && n >= 2 && s[0] == 'm' && s[1] == '=') {
		errtext_set(err, errlen, "SCRAM mandatory extensions are not supported");
		return SCRAM_UNSUPPORTED;
	}
	if (!fields_attr(f, 'n', &s, &n) || !is_saslname(s, n)) {
		errtext_set(err, errlen, "malformed SCRAM message: invalid user name attribute");
		return SCRAM_MALFORMED;
	}
	if (!fields_attr(f, 'r', nonce, nonce_n) || !is_nonce(*nonce, *nonce_n)) {
		errtext_set(err, errlen, "malformed SCRAM message: invalid nonce");
		return SCRAM_MALFORMED;
	}
	if (!rest_are_extensions(f)) {
		errtext_set(err, errlen, "malformed SCRAM message: garbage after nonce");
		return SCRAM_MALFORMED;
	}
	return SCRAM_OK;
}

static void put_server_first(struct pgbuf *b, const struct scram_server *st)
{
	char iterations[16];
	snprintf(iterations, sizeof(iterations), "%d", st->secret.iterations);
	put_text(b, "r=");
	pgbuf_put_bytes(b, st->nonce, st->nonce_len);
	put_text(b, ",s=");
	put_b64(b, st->secret.salt, st->secret.salt_len);
	put_text(b, ",i=");
	put_text(b, iterations);
}

static enum scram_status server_fail(struct scram_server *st, enum scram_status status)
{
	st->phase = PHASE_FAILED;
	return status;
}

static bool join_nonce(struct scram_server *st, const char *client_nonce, size_t n)
{
	size_t server_n = strlen(st->server_nonce);
	st->nonce = malloc(n + server_n);
	if (!st->nonce)
		return false;
	memcpy(st->nonce, client_nonce, n);
	memcpy(st->nonce + n, st->server_nonce, server_n);
	st->nonce_len = n + server_n;
	return true;
}

enum scram_status scram_server_handle_client_first(struct scram_server *st,
                                                   const uint8_t *data, size_t len,
                                                   struct pgbuf *out,
                                                   char *err, size_t errlen)
{
	struct fields f;
	const char *nonce;
	size_t nonce_n;
	enum scram_status status;

	if (st->phase != PHASE_START) {
		errtext_set(err, errlen, "unexpected SCRAM client-first message");
		return server_fail(st, SCRAM_OUT_OF_ORDER);
	}
	if (!message_ok(data, len)) {
		errtext_set(err, errlen, "malformed SCRAM message: empty, too long or contains NUL");
		return server_fail(st, SCRAM_MALFORMED);
	}
	fields_init(&f, (const char *)data, len);
	status = parse_gs2_header(st, &f, err, errlen);
	if (status != SCRAM_OK)
		return server_fail(st, status);
	const char *bare = f.p + f.pos;
	size_t bare_len = len - f.pos;
	status = parse_client_bare(&f, &nonce, &nonce_n, err, errlen);
	if (status != SCRAM_OK)
		return server_fail(st, status);
	if (!join_nonce(st, nonce, nonce_n)) {
		errtext_set(err, errlen, "out of memory");
		return server_fail(st, SCRAM_INTERNAL);
	}
	size_t first_at = out->len;
	put_server_first(out, st);
	pgbuf_put_bytes(&st->auth_message, bare, bare_len);
	pgbuf_put_u8(&st->auth_message, ',');
	if (!pgbuf_failed(out))
		pgbuf_put_bytes(&st->auth_message, out->data + first_at, out->len - first_at);
	if (pgbuf_failed(out) || pgbuf_failed(&st->auth_message)) {
		errtext_set(err, errlen, "out of memory");
		return server_fail(st, SCRAM_INTERNAL);
	}
	st->phase = PHASE_CONTINUE;
	return SCRAM_OK;
}

/* c= must carry exactly the gs2 header of the first message: without channel
 * binding data, that is "n,," or "y,,". */
static bool channel_binding_matches(const struct scram_server *st, const char *s, size_t n)
{
	uint8_t decoded[8];
	size_t len;
	char expect[3] = { st->gs2_flag, ',', ',' };
	return b64_decode(s, n, decoded, sizeof(decoded), &len) && len == sizeof(expect) &&
	       memcmp(decoded, expect, len) == 0;
}

/* client-final-message: c=...,r=...[,extensions],p=proof. Finds the proof and
 * the length of the message without it. */
static enum scram_status parse_client_final(const struct scram_server *st, const char *msg,
                                            size_t len, uint8_t proof[SCRAM_KEY_LEN],
                                            size_t *without_proof, char *err, size_t errlen)
{
	struct fields f;
	const char *s;
	size_t n;
	fields_init(&f, msg, len);
	if (!fields_attr(&f, 'c', &s, &n) || !channel_binding_matches(st, s, n)) {
		errtext_set(err, errlen, "SCRAM channel binding check failed");
		return SCRAM_MALFORMED;
	}
	if (!fields_attr(&f, 'r', &s, &n) || n != st->nonce_len ||
	    memcmp(s, st->nonce, n) != 0) {
		errtext_set(err, errlen, "SCRAM nonce does not match");
		return SCRAM_MALFORMED;
	}
	for (;;) {
		size_t field_at = f.pos;
		if (!fields_next(&f, &s, &n) || !is_attr(s, n))
			break;
		if (s[0] != 'p')
			continue;
		if (!f.done || !b64_decode_key(s + 2, n - 2, proof))
			break;
		*without_proof = field_at - 1;
		return SCRAM_OK;
	}
	errtext_set(err, errlen, "malformed SCRAM message: invalid or missing proof");
	return SCRAM_MALFORMED;
}

/* Checks the proof against StoredKey; keeps the ClientKey it reveals. */
static enum scram_status verify_proof(struct scram_server *st,
                                      const uint8_t proof[SCRAM_KEY_LEN])
{
	uint8_t signature[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	const struct pgbuf *am = &st->auth_message;
	if (!hmac_sha256(st->secret.stored_key, SCRAM_KEY_LEN, am->data, am->len, signature))
		return SCRAM_INTERNAL;
	xor_keys(proof, signature, client_key);
	if (!sha256(client_key, SCRAM_KEY_LEN, stored))
		return SCRAM_INTERNAL;
	bool match = CRYPTO_memcmp(stored, st->secret.stored_key, SCRAM_KEY_LEN) == 0;
	if (!match || st->doomed) {
		OPENSSL_cleanse(client_key, sizeof(client_key));
		return SCRAM_WRONG_PASSWORD;
	}
	memcpy(st->client_key, client_key, SCRAM_KEY_LEN);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	st->have_client_key = true;
	return SCRAM_OK;
}

enum scram_status scram_server_handle_client_final(struct scram_server *st,
                                                   const uint8_t *data, size_t len,
                                                   struct pgbuf *out,
                                                   char *err, size_t errlen)
{
	uint8_t proof[SCRAM_KEY_LEN], server_sig[SCRAM_KEY_LEN];
	size_t without_proof;
	enum scram_status status;

	if (st->phase != PHASE_CONTINUE) {
		errtext_set(err, errlen, "unexpected SCRAM client-final message");
		return server_fail(st, SCRAM_OUT_OF_ORDER);
	}
	if (!message_ok(data, len)) {
		errtext_set(err, errlen, "malformed SCRAM message: empty, too long or contains NUL");
		return server_fail(st, SCRAM_MALFORMED);
	}
	status = parse_client_final(st, (const char *)data, len, proof, &without_proof,
	                            err, errlen);
	if (status != SCRAM_OK)
		return server_fail(st, status);
	pgbuf_put_u8(&st->auth_message, ',');
	pgbuf_put_bytes(&st->auth_message, data, without_proof);
	if (pgbuf_failed(&st->auth_message)) {
		errtext_set(err, errlen, "out of memory");
		return server_fail(st, SCRAM_INTERNAL);
	}
	status = verify_proof(st, proof);
	if (status == SCRAM_OK &&
	    !hmac_sha256(st->secret.server_key, SCRAM_KEY_LEN, st->auth_message.data,
	                 st->auth_message.len, server_sig))
		status = SCRAM_INTERNAL;
	if (status != SCRAM_OK) {
		errtext_set(err, errlen, status == SCRAM_WRONG_PASSWORD ? "password authentication failed"
		        : "SCRAM verification failed internally");
		return server_fail(st, status);
	}
	put_text(out, "v=");
	put_b64(out, server_sig, SCRAM_KEY_LEN);
	st->phase = PHASE_DONE;
	return pgbuf_failed(out) ? SCRAM_INTERNAL : SCRAM_OK;
}

/* ---- client side ---- */

struct scram_client {
	enum exchange_phase phase;
	char *password;                  /* SASLprep'ed; NULL when keys are given */
	bool have_secret;
	struct scram_secret secret;      /* the keys' salt and iterations */
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
	char *user;                      /* saslname, escaped */
	char nonce[SCRAM_MAX_NONCE_LEN + 1];
	struct pgbuf auth_message;
	uint8_t server_signature[SCRAM_KEY_LEN];
};

static struct scram_client *client_new(void)
{
	struct scram_client *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	pgbuf_init(&st->auth_message);
	st->user = calloc(1, 1);
	if (!st->user || !random_nonce(st->nonce)) {
		scram_client_free(st);
		return NULL;
	}
	return st;
}

struct scram_client *scram_client_begin_password(const char *password)
{
	struct scram_client *st = client_new();
	if (!st)
		return NULL;
	st->password = scram_saslprep(password);
	if (!st->password) {
		scram_client_free(st);
		return NULL;
	}
	return st;
}

struct scram_client *scram_client_begin_keys(const struct scram_secret *secret,
                                             const uint8_t client_key[SCRAM_KEY_LEN])
{
	struct scram_client *st = client_new();
	if (!st)
		return NULL;
	st->have_secret = true;
	st->secret = *secret;
	memcpy(st->client_key, client_key, SCRAM_KEY_LEN);
	memcpy(st->server_key, secret->server_key, SCRAM_KEY_LEN);
	return st;
}

void scram_client_free(struct scram_client *st)
{
	if (!st)
		return;
	if (st->password)
		OPENSSL_clear_free(st->password, strlen(st->password));
	free(st->user);
	pgbuf_free(&st->auth_message);
	OPENSSL_cleanse(st, sizeof(*st));
	free(st);
}

/* Escapes ',' and '=' as RFC 5802 saslname requires. */
static char *escape_saslname(const char *user)
{
	size_t n = strlen(user);
	if (n > MAX_MESSAGE_LEN)
		return NULL;
	char *out = malloc(n * 3 + 1), *p = out;
	if (!out)
		return NULL;
	for (const char *s = user; *s; s++) {
		if (*s == ',' || *s == '=') {
			memcpy(p, *s == ',' ? "=2C" : "=3D", 3);
			p += 3;
		} else {
			*p++ = *s;
		}
	}
	*p = '\0';
	return out;
}

bool scram_client_set_identity(struct scram_client *st, const char *user, const char *nonce)
{
	size_t n = strlen(nonce);
	if (st->phase != PHASE_START || !is_nonce(nonce, n))
		return false;
	char *escaped = escape_saslname(user);
	if (!escaped)
		return false;
	free(st->user);
	st->user = escaped;
	memcpy(st->nonce, nonce, n + 1);
	return true;
}

static enum scram_status client_fail(struct scram_client *st, enum scram_status status)
{
	st->phase = PHASE_FAILED;
	return status;
}

enum scram_status scram_client_first(struct scram_client *st, struct pgbuf *out)
{
	if (st->phase != PHASE_START)
		return client_fail(st, SCRAM_OUT_OF_ORDER);
	/* The proxy never binds to the server's channel: 'n', no authzid. */
	put_text(out, "n,,");
	size_t bare_at = out->len;
	put_text(out, "n=");
	put_text(out, st->user);
	put_text(out, ",r=");
	put_text(out, st->nonce);
	if (pgbuf_failed(out))
		return client_fail(st, SCRAM_INTERNAL);
	pgbuf_put_bytes(&st->auth_message, out->data + bare_at, out->len - bare_at);
	st->phase = PHASE_CONTINUE;
	return pgbuf_failed(&st->auth_message) ? client_fail(st, SCRAM_INTERNAL) : SCRAM_OK;
}

struct server_first {
	const char *nonce;
	size_t nonce_len;
	uint8_t salt[SCRAM_MAX_SALT_LEN];
	size_t salt_len;
	int iterations;
};

static enum scram_status parse_server_first(const struct scram_client *st, const char *msg,
                                            size_t len, struct server_first *sf,
                                            char *err, size_t errlen)
{
	struct fields f;
	const char *s;
	size_t n, ours = strlen(st->nonce);
	fields_init(&f, msg, len);
	if (len >= 2 && msg[0] == 'm' && msg[1] == '=') {
		errtext_set(err, errlen, "server requires an unsupported SCRAM extension");
		return SCRAM_UNSUPPORTED;
	}
	if (!fields_attr(&f, 'r', &sf->nonce, &sf->nonce_len) ||
	    !is_nonce(sf->nonce, sf->nonce_len)) {
		errtext_set(err, errlen, "malformed SCRAM server-first message: invalid nonce");
		return SCRAM_MALFORMED;
	}
	if (sf->nonce_len <= ours || memcmp(sf->nonce, st->nonce, ours) != 0) {
		errtext_set(err, errlen, "SCRAM server nonce does not extend the client nonce");
		return SCRAM_SERVER_FORGED;
	}
	if (!fields_attr(&f, 's', &s, &n) ||
	    !b64_decode(s, n, sf->salt, sizeof(sf->salt), &sf->salt_len) ||
	    !fields_attr(&f, 'i', &s, &n) ||
	    !parse_iterations(s, n, SCRAM_MAX_ITERATIONS, &sf->iterations) ||
	    !rest_are_extensions(&f)) {
		errtext_set(err, errlen, "malformed SCRAM server-first message: invalid salt or "
		        "iteration count");
		return SCRAM_MALFORMED;
	}
	return SCRAM_OK;
}

/* Fills client_key/server_key from the password, or checks that the server's
 * salt and iterations are those of the secret the keys came from. */
static enum scram_status client_keys(struct scram_client *st, const struct server_first *sf,
                                     char *err, size_t errlen)
{
	if (st->have_secret) {
		if (sf->iterations != st->secret.iterations || sf->salt_len != st->secret.salt_len ||
		    memcmp(sf->salt, st->secret.salt, sf->salt_len) != 0) {
			errtext_set(err, errlen, "the server's SCRAM secret differs from the stored one "
			        "(salt or iteration count)");
			return SCRAM_SECRET_MISMATCH;
		}
		return SCRAM_OK;
	}
	uint8_t sp[SCRAM_KEY_LEN];
	bool ok = salted_password(st->password, sf->salt, sf->salt_len, sf->iterations, sp) &&
	          derive_keys(sp, st->client_key, st->server_key);
	OPENSSL_cleanse(sp, sizeof(sp));
	if (!ok)
		errtext_set(err, errlen, "SCRAM key derivation failed");
	return ok ? SCRAM_OK : SCRAM_INTERNAL;
}

/* Completes AuthMessage with the server-first and final-without-proof, and
 * computes the proof and the signature the server must return. */
static bool client_sign(struct scram_client *st, const uint8_t *server_first, size_t sf_len,
                        const struct pgbuf *without_proof, uint8_t proof[SCRAM_KEY_LEN])
{
	uint8_t stored[SCRAM_KEY_LEN], signature[SCRAM_KEY_LEN];
	struct pgbuf *am = &st->auth_message;
	pgbuf_put_u8(am, ',');
	pgbuf_put_bytes(am, server_first, sf_len);
	pgbuf_put_u8(am, ',');
	pgbuf_put_bytes(am, without_proof->data, without_proof->len);
	if (pgbuf_failed(am) || !sha256(st->client_key, SCRAM_KEY_LEN, stored) ||
	    !hmac_sha256(stored, SCRAM_KEY_LEN, am->data, am->len, signature) ||
	    !hmac_sha256(st->server_key, SCRAM_KEY_LEN, am->data, am->len, st->server_signature))
		return false;
	xor_keys(st->client_key, signature, proof);
	return true;
}

enum scram_status scram_client_handle_server_first(struct scram_client *st,
                                                   const uint8_t *data, size_t len,
                                                   struct pgbuf *out,
                                                   char *err, size_t errlen)
{
	struct server_first sf;
	struct pgbuf final;
	uint8_t proof[SCRAM_KEY_LEN];
	enum scram_status status;

	if (st->phase != PHASE_CONTINUE) {
		errtext_set(err, errlen, "unexpected SCRAM server-first message");
		return client_fail(st, SCRAM_OUT_OF_ORDER);
	}
	if (!message_ok(data, len)) {
		errtext_set(err, errlen, "malformed SCRAM server-first message");
		return client_fail(st, SCRAM_MALFORMED);
	}
	status = parse_server_first(st, (const char *)data, len, &sf, err, errlen);
	if (status == SCRAM_OK)
		status = client_keys(st, &sf, err, errlen);
	if (status != SCRAM_OK)
		return client_fail(st, status);
	pgbuf_init(&final);
	put_text(&final, "c=biws,r=");  /* biws = base64("n,,") */
	pgbuf_put_bytes(&final, sf.nonce, sf.nonce_len);
	if (pgbuf_failed(&final) || !client_sign(st, data, len, &final, proof)) {
		pgbuf_free(&final);
		errtext_set(err, errlen, "SCRAM proof computation failed");
		return client_fail(st, SCRAM_INTERNAL);
	}
	pgbuf_put_bytes(out, final.data, final.len);
	pgbuf_free(&final);
	put_text(out, ",p=");
	put_b64(out, proof, SCRAM_KEY_LEN);
	st->phase = PHASE_DONE;
	return pgbuf_failed(out) ? client_fail(st, SCRAM_INTERNAL) : SCRAM_OK;
}

/* Copies a server's error text for a log line, replacing anything that is
 * not printable ASCII. */
static void server_error_text(const char *s, size_t n, char *err, size_t errlen)
{
	char text[128];
	size_t i;
	for (i = 0; i < n && i < sizeof(text) - 1; i++)
		text[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	text[i] = '\0';
	errtext_set(err, errlen, "server rejected SCRAM authentication: %s", text);
}

enum scram_status scram_client_verify_server_final(struct scram_client *st,
                                                   const uint8_t *data, size_t len,
                                                   char *err, size_t errlen)
{
	struct fields f;
	const char *s;
	size_t n;
	uint8_t signature[SCRAM_KEY_LEN];

	if (st->phase != PHASE_DONE) {
		errtext_set(err, errlen, "unexpected SCRAM server-final message");
		return client_fail(st, SCRAM_OUT_OF_ORDER);
	}
	st->phase = PHASE_FAILED;  /* a server-final is accepted once */
	if (!message_ok(data, len)) {
		errtext_set(err, errlen, "malformed SCRAM server-final message");
		return SCRAM_MALFORMED;
	}
	fields_init(&f, (const char *)data, len);
	if (len >= 2 && data[0] == 'e' && data[1] == '=') {
		fields_next(&f, &s, &n);
		server_error_text(s + 2, n - 2, err, errlen);
		return SCRAM_SERVER_REJECTED;
	}
	if (!fields_attr(&f, 'v', &s, &n) || !b64_decode_key(s, n, signature) ||
	    !rest_are_extensions(&f)) {
		errtext_set(err, errlen, "malformed SCRAM server-final message");
		return SCRAM_MALFORMED;
	}
	if (CRYPTO_memcmp(signature, st->server_signature, SCRAM_KEY_LEN) != 0) {
		errtext_set(err, errlen, "the server's SCRAM signature is invalid");
		return SCRAM_SERVER_FORGED;
	}
	return SCRAM_OK;
}

/* ---- SASLprep (RFC 4013 over RFC 3454 tables) ---- */

struct cp_range {
	uint32_t lo, hi;
};

/* RFC 3454 C.1.2, mapped to U+0020. PostgreSQL checks this table before
 * B.1, so U+200B (in both) becomes a space. */
static const struct cp_range non_ascii_spaces[] = {
	{ 0x00A0, 0x00A0 }, { 0x1680, 0x1680 }, { 0x2000, 0x200B }, { 0x202F, 0x202F },
	{ 0x205F, 0x205F }, { 0x3000, 0x3000 },
};

/* RFC 3454 B.1, "commonly mapped to nothing". */
static const struct cp_range mapped_to_nothing[] = {
	{ 0x00AD, 0x00AD }, { 0x034F, 0x034F }, { 0x1806, 0x1806 }, { 0x180B, 0x180D },
	{ 0x200B, 0x200D }, { 0x2060, 0x2060 }, { 0xFE00, 0xFE0F }, { 0xFEFF, 0xFEFF },
};

/* RFC 3454 C.2.1 to C.9 as RFC 4013 lists them (C.1.2 is mapped away first,
 * C.5 surrogates never decode from valid UTF-8). Unassigned code points (A.1)
 * are not checked. */
static const struct cp_range prohibited[] = {
	{ 0x0000, 0x001F }, { 0x007F, 0x009F }, { 0x0340, 0x0341 }, { 0x06DD, 0x06DD },
	{ 0x070F, 0x070F }, { 0x180E, 0x180E }, { 0x200C, 0x200F }, { 0x2028, 0x202E },
	{ 0x2060, 0x2063 }, { 0x206A, 0x206F }, { 0x2FF0, 0x2FFB },
	{ 0xE000, 0xF8FF }, { 0xFDD0, 0xFDEF }, { 0xFEFF, 0xFEFF }, { 0xFFF9, 0xFFFF },
	{ 0x1D173, 0x1D17A }, { 0x1FFFE, 0x1FFFF }, { 0x2FFFE, 0x2FFFF }, { 0x3FFFE, 0x3FFFF },
	{ 0x4FFFE, 0x4FFFF }, { 0x5FFFE, 0x5FFFF }, { 0x6FFFE, 0x6FFFF }, { 0x7FFFE, 0x7FFFF },
	{ 0x8FFFE, 0x8FFFF }, { 0x9FFFE, 0x9FFFF }, { 0xAFFFE, 0xAFFFF }, { 0xBFFFE, 0xBFFFF },
	{ 0xCFFFE, 0xCFFFF }, { 0xDFFFE, 0xDFFFF }, { 0xE0001, 0xE0001 }, { 0xE0020, 0xE007F },
	{ 0xEFFFE, 0x10FFFF },
};

static bool in_table(uint32_t cp, const struct cp_range *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (cp >= t[i].lo && cp <= t[i].hi)
			return true;
	return false;
}

#define IN_TABLE(cp, t) in_table((cp), (t), sizeof(t) / sizeof((t)[0]))

/* Decodes one UTF-8 sequence; 0 on anything invalid (overlong forms,
 * surrogates, beyond U+10FFFF, truncation). */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
	             : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	uint32_t v = len == 1 ? s[0] : (uint32_t)(s[0] & (0x7F >> len));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3F);
	}
	if (v < min_for_len[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* Maps into out (never longer than the input); false when the input is not
 * valid UTF-8 or keeps a prohibited character, the cases where PostgreSQL
 * falls back to the raw bytes. */
static bool saslprep_map(const char *in, char *out)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t n = strlen(in), o = 0;
	while (n > 0) {
		uint32_t cp;
		size_t len = utf8_decode(s, n, &cp);
		if (len == 0)
			return false;
		s += len;
		n -= len;
		if (IN_TABLE(cp, non_ascii_spaces))
			cp = ' ';
		else if (IN_TABLE(cp, mapped_to_nothing))
			continue;
		if (IN_TABLE(cp, prohibited))
			return false;
		o += utf8_encode(cp, out + o);
	}
	out[o] = '\0';
	return true;
}

char *scram_saslprep(const char *password)
{
	size_t n = strlen(password);
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	/* ASCII needs no mapping, and ASCII control characters make the whole
	 * password prohibited, which again means "use it as is". */
	if (is_ascii(password) || !saslprep_map(password, out))
		memcpy(out, password, n + 1);
	return out;
}
