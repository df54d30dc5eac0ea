#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "authmsg.h"
#include "md5auth.h"
#include "message.h"

enum client_step { CLIENT_SCRAM_FIRST, CLIENT_SCRAM_FINAL, CLIENT_MD5, CLIENT_DONE };

struct client_auth {
	enum client_step step;
	char *user;
	char *secret;                 /* NULL for an unknown user */
	struct scram_server *scram;
	uint8_t md5_salt[MD5AUTH_SALT_LEN];
	bool have_client_key;
	uint8_t client_key[SCRAM_KEY_LEN];
	struct scram_secret scram_secret;
};

static enum auth_result auth_fail(const char **sqlstate, const char *state, char *err, size_t errlen,
				  const char *fmt, const char *arg)
{
	*sqlstate = state;
	snprintf(err, errlen, fmt, arg);
	return AUTH_FAILED;
}

static enum auth_result password_failed(struct client_auth *st, const char **sqlstate, char *err,
					size_t errlen)
{
	return auth_fail(sqlstate, SQLSTATE_INVALID_PASSWORD, err, errlen,
			 "password authentication failed for user \"%s\"", st->user);
}

/* SCRAM secrets derived from plain passwords, kept so that a user's salt stays
 * the same from one login to the next (as a stored secret's does, and as the
 * doomed exchange of an unknown user imitates) and the key derivation is paid
 * once. The proxy is single-threaded; the cache is emptied on reload. */
void auth_free_secret(char *secret)
{
	if (!secret)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
}

struct derived_secret {
	struct derived_secret *next;
	char *user;
	char *password;
	struct scram_secret secret;
};

static struct derived_secret *derived_secrets;

void auth_forget_derived_secrets(void)
{
	while (derived_secrets) {
		struct derived_secret *d = derived_secrets;
		derived_secrets = d->next;
		auth_free_secret(d->password);
		OPENSSL_cleanse(&d->secret, sizeof(d->secret));
		free(d->user);
		free(d);
	}
}

static bool derive_secret(const char *user, const char *password, struct scram_secret *out)
{
	for (struct derived_secret *d = derived_secrets; d; d = d->next) {
		if (strcmp(d->user, user) == 0 && strcmp(d->password, password) == 0) {
			*out = d->secret;
			return true;
		}
	}
	if (!scram_secret_generate(password, SCRAM_DEFAULT_ITERATIONS, out))
		return false;
	struct derived_secret *d = calloc(1, sizeof(*d));
	if (d && (d->user = strdup(user)) && (d->password = strdup(password))) {
		d->secret = *out;
		d->next = derived_secrets;
		derived_secrets = d;
	} else if (d) {
		free(d->user);
		free(d);
	}
	return true;
}

/* A SCRAM exchange needs a SCRAM secret; a plain password is turned into one
 * (the client cannot tell). Unknown users get a doomed exchange with a stable
 * fake salt, so that user names cannot be probed. */
static bool begin_scram(struct client_auth *st, const uint8_t mock_key[SCRAM_KEY_LEN])
{
	if (!st->secret)
		st->scram = scram_server_begin_doomed(st->user, mock_key);
	else if (authfile_secret_kind(st->secret) == AUTHFILE_SECRET_SCRAM &&
		 scram_parse_secret(st->secret, &st->scram_secret))
		st->scram = scram_server_begin(&st->scram_secret);
	else if (derive_secret(st->user, st->secret, &st->scram_secret))
		st->scram = scram_server_begin(&st->scram_secret);
	return st->scram != NULL;
}

enum auth_result client_auth_begin(struct client_auth **out_state, const char *user,
				   const char *secret, enum authfile_method configured,
				   const uint8_t mock_key[SCRAM_KEY_LEN], struct pgbuf *out,
				   const char **sqlstate, char *err, size_t errlen)
{
	struct client_auth *st = calloc(1, sizeof(*st));
	*out_state = st;
	if (!st || !(st->user = strdup(user)) || (secret && !(st->secret = strdup(secret))))
		return auth_fail(sqlstate, SQLSTATE_INTERNAL_ERROR, err, errlen, "%s", "out of memory");
	enum authfile_method use = configured;
	if (secret) {
		const char *why = authfile_client_method(configured, secret, &use);
		if (why)
			return auth_fail(sqlstate, SQLSTATE_INVALID_PASSWORD, err, errlen, "%s", why);
	}
	if (use == AUTHFILE_METHOD_TRUST) {
		if (!secret)
			return auth_fail(sqlstate, SQLSTATE_INVALID_AUTHORIZATION, err, errlen,
					 "no such user \"%s\" in auth_file", user);
		st->step = CLIENT_DONE;
		return AUTH_DONE;
	}
	if (use == AUTHFILE_METHOD_MD5) {
		RAND_bytes(st->md5_salt, sizeof(st->md5_salt));
		authmsg_put_md5_request(out, st->md5_salt);
		st->step = CLIENT_MD5;
		return AUTH_CONTINUE;
	}
	if (!begin_scram(st, mock_key))
		return auth_fail(sqlstate, SQLSTATE_INTERNAL_ERROR, err, errlen, "%s", "cannot start SCRAM");
	static const char *const mechanisms[] = { SCRAM_MECHANISM };
	authmsg_put_sasl(out, mechanisms, 1);
	st->step = CLIENT_SCRAM_FIRST;
	return AUTH_CONTINUE;
}

static enum auth_result scram_result(struct client_auth *st, enum scram_status rc, const char **sqlstate,
				     char *err, size_t errlen)
{
	if (rc == SCRAM_WRONG_PASSWORD)
		return password_failed(st, sqlstate, err, errlen);
	*sqlstate = scram_status_sqlstate(rc);
	if (!err[0])
		snprintf(err, errlen, "SCRAM authentication failed");
	return AUTH_FAILED;
}

static enum auth_result step_scram_first(struct client_auth *st, const uint8_t *body, size_t len,
					 struct pgbuf *out, const char **sqlstate, char *err, size_t errlen)
{
	const char *mechanism;
	const uint8_t *data;
	size_t data_len;
	if (!authmsg_parse_sasl_initial(body, len, &mechanism, &data, &data_len) || !data)
		return auth_fail(sqlstate, SQLSTATE_PROTOCOL_VIOLATION, err, errlen, "%s",
				 "malformed SASLInitialResponse message");
	if (strcmp(mechanism, SCRAM_MECHANISM) != 0)
		return auth_fail(sqlstate, SQLSTATE_PROTOCOL_VIOLATION, err, errlen,
				 "client selected an invalid SASL authentication mechanism \"%s\"", mechanism);
	struct pgbuf payload;
	pgbuf_init(&payload);
	err[0] = '\0';
	enum scram_status rc = scram_server_handle_client_first(st->scram, data, data_len, &payload, err, errlen);
	if (rc == SCRAM_OK)
		authmsg_put_sasl_continue(out, payload.data, payload.len);
	pgbuf_free(&payload);
	if (rc != SCRAM_OK)
		return scram_result(st, rc, sqlstate, err, errlen);
	st->step = CLIENT_SCRAM_FINAL;
	return AUTH_CONTINUE;
}

static enum auth_result step_scram_final(struct client_auth *st, const uint8_t *body, size_t len,
					 struct pgbuf *out, const char **sqlstate, char *err, size_t errlen)
{
	const uint8_t *data;
	size_t data_len;
	if (!authmsg_parse_sasl_response(body, len, &data, &data_len))
		return auth_fail(sqlstate, SQLSTATE_PROTOCOL_VIOLATION, err, errlen, "%s",
				 "malformed SASLResponse message");
	struct pgbuf payload;
	pgbuf_init(&payload);
	err[0] = '\0';
	enum scram_status rc = scram_server_handle_client_final(st->scram, data, data_len, &payload, err, errlen);
	if (rc == SCRAM_OK)
		authmsg_put_sasl_final(out, payload.data, payload.len);
	pgbuf_free(&payload);
	if (rc != SCRAM_OK || !st->secret)
		return scram_result(st, rc == SCRAM_OK ? SCRAM_WRONG_PASSWORD : rc, sqlstate, err, errlen);
	st->have_client_key = scram_server_client_key(st->scram, st->client_key);
	st->step = CLIENT_DONE;
	return AUTH_DONE;
}

static enum auth_result step_md5(struct client_auth *st, const uint8_t *body, size_t len,
				 const char **sqlstate, char *err, size_t errlen)
{
	const char *response;
	if (!authmsg_parse_password(body, len, &response))
		return auth_fail(sqlstate, SQLSTATE_PROTOCOL_VIOLATION, err, errlen, "%s",
				 "malformed password message");
	if (!st->secret || !md5auth_check(st->secret, st->user, st->md5_salt, response))
		return password_failed(st, sqlstate, err, errlen);
	st->step = CLIENT_DONE;
	return AUTH_DONE;
}

enum auth_result client_auth_step(struct client_auth *st, const uint8_t *body, size_t len,
				  struct pgbuf *out, const char **sqlstate, char *err, size_t errlen)
{
	switch (st->step) {
	case CLIENT_SCRAM_FIRST:
		return step_scram_first(st, body, len, out, sqlstate, err, errlen);
	case CLIENT_SCRAM_FINAL:
		return step_scram_final(st, body, len, out, sqlstate, err, errlen);
	case CLIENT_MD5:
		return step_md5(st, body, len, sqlstate, err, errlen);
	case CLIENT_DONE:
		break;
	}
	return auth_fail(sqlstate, SQLSTATE_PROTOCOL_VIOLATION, err, errlen, "%s",
			 "unexpected password message");
}

void client_auth_free(struct client_auth *st)
{
	if (!st)
		return;
	scram_server_free(st->scram);
	auth_free_secret(st->secret);
	free(st->user);
	OPENSSL_cleanse(st->client_key, sizeof(st->client_key));
	free(st);
}

/* ---- the proxy logging in to the server ---------------------------------- */

struct server_auth {
	char *user;
	char *secret;
	struct scram_client *scram;
	bool have_keys;
	struct scram_secret keys_secret;
	uint8_t client_key[SCRAM_KEY_LEN];
};

struct server_auth *server_auth_new(const char *user, const char *secret,
				    const struct client_auth *st_client)
{
	struct server_auth *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->user = strdup(user);
	st->secret = strdup(secret ? secret : "");
	if (st_client && st_client->have_client_key &&
	    authfile_secret_kind(st->secret) == AUTHFILE_SECRET_SCRAM) {
		st->have_keys = true;
		st->keys_secret = st_client->scram_secret;
		memcpy(st->client_key, st_client->client_key, SCRAM_KEY_LEN);
	}
	if (!st->user || !st->secret) {
		server_auth_free(st);
		return NULL;
	}
	return st;
}

static enum auth_result server_fail(char *err, size_t errlen, const char *fmt, const char *arg)
{
	snprintf(err, errlen, fmt, arg);
	return AUTH_FAILED;
}

static enum auth_result start_server_scram(struct server_auth *st, struct pgbuf *out, char *err,
					   size_t errlen)
{
	enum authfile_secret_kind kind = authfile_secret_kind(st->secret);
	if (kind == AUTHFILE_SECRET_PLAIN && st->secret[0])
		st->scram = scram_client_begin_password(st->secret);
	else if (st->have_keys)
		st->scram = scram_client_begin_keys(&st->keys_secret, st->client_key);
	else
		return server_fail(err, errlen, "the server asks user \"%s\" for SCRAM, but uuidgate holds "
				   "neither a plain password nor a SCRAM secret with the client's proof for it",
				   st->user);
	struct pgbuf first;
	pgbuf_init(&first);
	enum scram_status rc = st->scram ? scram_client_first(st->scram, &first) : SCRAM_INTERNAL;
	if (rc == SCRAM_OK)
		authmsg_put_sasl_initial(out, SCRAM_MECHANISM, first.data, first.len);
	pgbuf_free(&first);
	return rc == SCRAM_OK ? AUTH_CONTINUE : server_fail(err, errlen, "%s", "cannot start SCRAM");
}

static enum auth_result answer_cleartext(struct server_auth *st, struct pgbuf *out, char *err, size_t errlen)
{
	if (authfile_secret_kind(st->secret) != AUTHFILE_SECRET_PLAIN || !st->secret[0])
		return server_fail(err, errlen, "the server asks user \"%s\" for a cleartext password, but "
				   "uuidgate holds only a hash for it", st->user);
	authmsg_put_password(out, st->secret);
	return AUTH_CONTINUE;
}

static enum auth_result answer_md5(struct server_auth *st, const uint8_t salt[4], struct pgbuf *out,
				   char *err, size_t errlen)
{
	char response[MD5AUTH_LEN + 1];
	if (!md5auth_response(st->secret, st->user, salt, response))
		return server_fail(err, errlen, "the server asks user \"%s\" for md5, but uuidgate holds a "
				   "SCRAM secret for it", st->user);
	authmsg_put_password(out, response);
	return AUTH_CONTINUE;
}

static enum auth_result continue_scram(struct server_auth *st, const struct authmsg_request *req,
				       struct pgbuf *out, char *err, size_t errlen)
{
	if (!st->scram)
		return server_fail(err, errlen, "%s", "server sent a SASL message out of order");
	enum scram_status rc;
	if (req->code == PG_AUTH_SASL_CONTINUE) {
		struct pgbuf final;
		pgbuf_init(&final);
		rc = scram_client_handle_server_first(st->scram, req->data, req->data_len, &final, err, errlen);
		if (rc == SCRAM_OK)
			authmsg_put_sasl_response(out, final.data, final.len);
		pgbuf_free(&final);
	} else {
		rc = scram_client_verify_server_final(st->scram, req->data, req->data_len, err, errlen);
	}
	if (rc != SCRAM_OK && !err[0])
		snprintf(err, errlen, "SCRAM login to the server failed");
	return rc == SCRAM_OK ? AUTH_CONTINUE : AUTH_FAILED;
}

enum auth_result server_auth_step(struct server_auth *st, const uint8_t *body, size_t len,
				  struct pgbuf *out, char *err, size_t errlen)
{
	struct authmsg_request req;
	err[0] = '\0';
	if (!authmsg_parse_request(body, len, &req))
		return server_fail(err, errlen, "%s", "server sent a malformed authentication request");
	switch (req.code) {
	case PG_AUTH_OK:
		return AUTH_DONE;
	case PG_AUTH_CLEARTEXT:
		return answer_cleartext(st, out, err, errlen);
	case PG_AUTH_MD5:
		return answer_md5(st, req.md5_salt, out, err, errlen);
	case PG_AUTH_SASL:
		if (!req.offers_scram)
			return server_fail(err, errlen, "%s", "the server offers no SASL mechanism uuidgate speaks");
		return start_server_scram(st, out, err, errlen);
	case PG_AUTH_SASL_CONTINUE:
	case PG_AUTH_SASL_FINAL:
		return continue_scram(st, &req, out, err, errlen);
	default: {
		char code[16];
		snprintf(code, sizeof(code), "%d", req.code);
		return server_fail(err, errlen, "the server asks for authentication method %s, which uuidgate "
				   "cannot answer for its clients", code);
	}
	}
}

void server_auth_free(struct server_auth *st)
{
	if (!st)
		return;
	scram_client_free(st->scram);
	auth_free_secret(st->secret);
	free(st->user);
	OPENSSL_cleanse(st->client_key, sizeof(st->client_key));
	free(st);
}
