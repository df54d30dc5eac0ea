/* The login: uuidgate authenticating the client itself (proxy-side auth),
 * connecting to the server, and relaying or answering the server's
 * authentication until the first ReadyForQuery. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "authmsg.h"
#include "client_internal.h"
#include "log.h"
#include "message.h"
#include "pgquery.h"
#include "pgread.h"
#include "proxy.h"
#include "rwsess.h"

/* ---- whole-message handling before and outside the relay ---------------- */

typedef bool (*message_fn)(struct client *c, uint8_t type, const uint8_t *msg, long total);

/* Hands each whole message of `in` to fn while fn returns true and the client
 * stays in `state`; a bad length closes the client. */
void client_each_message(struct client *c, struct evbuffer *in, uint32_t max, enum client_state state,
			 message_fn fn)
{
	while (c->state == state) {
		uint8_t type = 0, *msg = NULL;
		enum relay_status st = RELAY_OK;
		long total = relay_peek_message(in, max, &type, &msg, &st);
		if (total == 0)
			return;
		if (total < 0 || !msg) {
			bool server = c->ss && in == stream_input(c->ss);
			client_fail(c, SQLSTATE_PROTOCOL_VIOLATION,
				    server ? "server sent an invalid message during login"
				    : st == RELAY_TOO_LARGE ? "message too large before authentication"
							    : "invalid message length", NULL);
			return;
		}
		if (!fn(c, type, msg, total))
			return;
	}
}

/* ---- login: messages between the server's startup and ReadyForQuery ---- */

void client_forward_whole(struct evbuffer *in, struct stream *to, long total)
{
	evbuffer_remove_buffer(in, stream_output(to), (size_t)total);
}

void client_send_server(struct client *c, const struct pgbuf *b)
{
	if (!c->ss || pgbuf_failed(b))
		return;
	evbuffer_add(stream_output(c->ss), b->data, b->len);
	stream_flush(c->ss);
}

/* With proxy-side authentication the server's challenge is answered by
 * uuidgate with the stored secret; the client only sees AuthenticationOk. */
static bool answer_server_auth(struct client *c, const uint8_t *msg, long total)
{
	char err[300];
	struct pgbuf out;
	if (!c->sauth && !(c->sauth = server_auth_new(client_user(c), c->secret, c->cauth))) {
		client_fail(c, SQLSTATE_INTERNAL_ERROR, "out of memory", NULL);
		return false;
	}
	pgbuf_init(&out);
	enum auth_result rc = server_auth_step(c->sauth, msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN,
					       &out, err, sizeof(err));
	evbuffer_drain(stream_input(c->ss), (size_t)total);
	if (rc == AUTH_CONTINUE) {
		client_send_server(c, &out);
	} else if (rc == AUTH_DONE) {
		pgbuf_reset(&out);
		pgmsg_put_auth_ok(&out);
		client_send(c, &out);
	}
	pgbuf_free(&out);
	if (rc == AUTH_FAILED) {
		log_event(LOG_WARNING, "server_login_failed", c->id, c->addr, "user", client_user(c), "msg", err, LOG_KV_END);
		client_fail(c, SQLSTATE_INVALID_AUTHORIZATION, err, NULL);
		return false;
	}
	return true;
}

static bool login_auth_request(struct client *c, const uint8_t *msg, long total)
{
	struct pgread r;
	pgread_init(&r, msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN);
	int code = pgread_int32(&r);
	if (!pgread_ok(&r)) {
		client_fail(c, SQLSTATE_PROTOCOL_VIOLATION, "server sent an invalid authentication request", NULL);
		return false;
	}
	c->last_auth_request = code;
	if (c->proxy_auth)
		return answer_server_auth(c, msg, total);
	if (code != PG_AUTH_SASL) {
		client_forward_whole(stream_input(c->ss), c->cs, total);
		return true;
	}
	struct pgbuf b;
	pgbuf_init(&b);
	bool ok = pgmsg_filter_sasl_mechanisms(msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN, &b);
	c->server_offered_plus = memmem(msg, (size_t)total, "-PLUS", 5) != NULL;
	if (ok)
		client_send(c, &b);
	pgbuf_free(&b);
	evbuffer_drain(stream_input(c->ss), (size_t)total);
	if (!ok)
		client_fail(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			    "the server offers only SASL mechanisms that cannot pass through a proxy",
			    "use auth_type = scram-sha-256 with an auth_file so uuidgate authenticates clients itself");
	return ok;
}

void client_new_cancel_key(struct client *c)
{
	do {
		if (RAND_bytes((unsigned char *)&c->key_pid, sizeof(c->key_pid)) != 1 ||
		    RAND_bytes((unsigned char *)&c->key_secret, sizeof(c->key_secret)) != 1) {
			c->key_pid = (uint32_t)random();
			c->key_secret = (uint32_t)random();
		}
		c->key_pid &= 0x7fffffff; /* clients print it as a positive pid */
	} while (c->key_pid == 0);
}

static bool login_backend_key(struct client *c, const uint8_t *msg, long total)
{
	size_t key_len = (size_t)total - PG_HEADER_LEN - 4;
	if (total < PG_HEADER_LEN + 8 || key_len > sizeof(c->server_key)) {
		client_fail(c, SQLSTATE_PROTOCOL_VIOLATION, "server sent an invalid BackendKeyData", NULL);
		return false;
	}
	c->server_pid = pg_get_u32(msg + PG_HEADER_LEN);
	memcpy(c->server_key, msg + PG_HEADER_LEN + 4, key_len);
	c->server_key_len = key_len;
	evbuffer_drain(stream_input(c->ss), (size_t)total);
	client_new_cancel_key(c);
	struct pgbuf b;
	pgbuf_init(&b);
	pgmsg_put_backend_key(&b, c->key_pid, c->key_secret);
	client_send(c, &b);
	pgbuf_free(&b);
	return true;
}

static void login_failed(struct client *c, const uint8_t *msg, long total)
{
	struct pg_error e;
	char reason[300] = "login failed";
	if (pgmsg_parse_error(msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN, &e) && e.message)
		snprintf(reason, sizeof(reason), "login failed: %s", e.message);
	/* e points into msg, which forwarding the message frees: log first. */
	log_event(LOG_INFO, "login_failed", c->id, c->addr, "user", client_user(c), "db", client_database(c),
		  "sqlstate", e.sqlstate ? e.sqlstate : "", "msg", reason, LOG_KV_END);
	client_forward_whole(stream_input(c->ss), c->cs, total);
	stream_flush(c->cs);
	c->px->stats.login_failures++;
	client_close(c, reason);
}

static void become_active(struct client *c)
{
	stream_flush(c->cs);
	c->state = CL_ACTIVE;
	c->tx_status = 'I';
	if (c->login_timer)
		evtimer_del(c->login_timer);
	c->px->stats.logins++;
	if (c->px->cfg->log_connections)
		log_event(LOG_INFO, "login", c->id, c->addr, "user", client_user(c), "db", client_database(c),
			  "tls", stream_is_tls(c->cs) ? "yes" : "no", LOG_KV_END);
}

/* Before the client sees its first ReadyForQuery, the rewriter learns
 * where unqualified table names resolve (PostgreSQL before 18 does not
 * report search_path); the answer is not shown to the client. */
static void start_probe(struct client *c, const uint8_t *msg, long total)
{
	c->login_ready_status = msg[PG_HEADER_LEN];
	evbuffer_drain(stream_input(c->ss), (size_t)total);
	struct pgbuf b;
	pgbuf_init(&b);
	size_t start = pgbuf_begin_msg(&b, 'Q');
	pgbuf_put_str(&b, rwsess_probe_query());
	pgbuf_end_msg(&b, start);
	client_send_server(c, &b);
	pgbuf_free(&b);
	c->probing = true;
}

static bool probe_answer(struct client *c, uint8_t type, const uint8_t *msg, long total)
{
	bool done = rwsess_probe_message(c->rw, type, msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN);
	evbuffer_drain(stream_input(c->ss), (size_t)total);
	if (!done)
		return true;
	c->probing = false;
	struct pgbuf b;
	pgbuf_init(&b);
	pgmsg_put_ready(&b, (char)c->login_ready_status);
	client_send(c, &b);
	pgbuf_free(&b);
	become_active(c);
	return false;
}

static void login_complete(struct client *c, const uint8_t *msg, long total)
{
	if (c->rw && total == PG_HEADER_LEN + 1) {
		start_probe(c, msg, total);
		return;
	}
	client_forward_whole(stream_input(c->ss), c->cs, total);
	become_active(c);
}

static void login_parameter(struct client *c, const uint8_t *msg, long total)
{
	struct pgread r;
	pgread_init(&r, msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN);
	const char *name = pgread_str(&r);
	const char *value = pgread_str(&r);
	if (c->rw && name && value)
		rwsess_parameter(c->rw, name, value);
	client_forward_whole(stream_input(c->ss), c->cs, total);
}

/* Handles one whole server message during login; false once the client is
 * closed or the login is over. */
static bool login_server_message(struct client *c, uint8_t type, const uint8_t *msg, long total)
{
	if (c->probing)
		return probe_answer(c, type, msg, total);
	switch (type) {
	case 'S':
		login_parameter(c, msg, total);
		return true;
	case 'R':
		return login_auth_request(c, msg, total);
	case 'K':
		return login_backend_key(c, msg, total);
	case 'E':
		login_failed(c, msg, total);
		return false;
	case 'Z':
		login_complete(c, msg, total);
		return false;
	case 'v':
		/* The server is always asked for plain 3.0; nothing to relay. */
		evbuffer_drain(stream_input(c->ss), (size_t)total);
		return true;
	default:
		client_forward_whole(stream_input(c->ss), c->cs, total);
		return true;
	}
}

void client_login_from_server(struct client *c)
{
	client_each_message(c, stream_input(c->ss), LOGIN_SERVER_MAX_MESSAGE, CL_LOGIN, login_server_message);
	if (c->state == CL_ACTIVE) {
		stream_flush(c->cs);
		if (evbuffer_get_length(stream_input(c->ss)) > 0)
			client_relay_down(c);
		if (c->state == CL_ACTIVE && evbuffer_get_length(stream_input(c->cs)) > 0)
			client_relay_up(c);
	} else if (c->state == CL_LOGIN) {
		stream_flush(c->cs);
	}
}

/* With TLS on both legs, the server offers SCRAM-SHA-256-PLUS; the proxy hides
 * it, and a libpq client that could bind then says so with gs2 flag 'y', which
 * the server must treat as a downgrade attack. Explain instead of letting the
 * server fail with a puzzling message. */
static bool refuses_downgrade(struct client *c, const uint8_t *msg, long total)
{
	if (c->last_auth_request != PG_AUTH_SASL || !c->server_offered_plus)
		return false;
	const char *mech;
	char gs2;
	if (!pgmsg_parse_sasl_initial(msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN, &mech, &gs2) ||
	    gs2 != 'y')
		return false;
	client_fail(c, SQLSTATE_INVALID_AUTHORIZATION,
		    "SCRAM channel binding cannot pass through uuidgate when TLS is used on both legs",
		    "connect with channel_binding=disable, use a plaintext leg between uuidgate and the "
		    "server (loopback), or let uuidgate authenticate clients (auth_type = scram-sha-256 "
		    "with an auth_file)");
	return true;
}

static bool login_client_message(struct client *c, uint8_t type, const uint8_t *msg, long total)
{
	if (type == 'X') {
		client_close(c, "client terminated during login");
		return false;
	}
	if (type != 'p' || c->proxy_auth) {
		char text[96];
		snprintf(text, sizeof(text), "expected a password response, got message type %d", type);
		client_fail(c, SQLSTATE_PROTOCOL_VIOLATION, text, NULL);
		return false;
	}
	if (refuses_downgrade(c, msg, total))
		return false;
	client_forward_whole(stream_input(c->cs), c->ss, total);
	return true;
}

void client_login_from_client(struct client *c)
{
	client_each_message(c, stream_input(c->cs), PG_PRE_AUTH_MAX_MESSAGE, CL_LOGIN, login_client_message);
	if (c->state == CL_LOGIN)
		stream_flush(c->ss);
}

/* ---- connecting to the server ------------------------------------------ */

static void send_server_startup(struct client *c)
{
	const struct startup_packet *sp = &c->startup;
	struct startup_param *params = calloc(sp->nparams + 1, sizeof(*params));
	size_t n = 0;
	bool has_database = false;
	if (!params) {
		client_fail(c, SQLSTATE_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	for (size_t i = 0; i < sp->nparams; i++) {
		has_database |= strcmp(sp->params[i].name, "database") == 0 && *sp->params[i].value;
		if (strcmp(sp->params[i].name, "database") == 0 && !*sp->params[i].value)
			continue;
		params[n++] = sp->params[i];
	}
	if (!has_database && c->px->upstream->dbname)
		params[n++] = (struct startup_param){ "database", c->px->upstream->dbname };
	struct pgbuf b;
	pgbuf_init(&b);
	startup_put_message(&b, params, n);
	free(params);
	evbuffer_add(stream_output(c->ss), b.data, b.len);
	pgbuf_free(&b);
	stream_flush(c->ss);
}

static void on_server_ready(struct stream *s, const char *error, void *arg)
{
	struct client *c = arg;
	c->sconn = NULL;
	if (!s) {
		char text[400];
		snprintf(text, sizeof(text), "uuidgate could not reach the database server: %s", error);
		log_event(LOG_WARNING, "server_connect_failed", c->id, c->addr, "msg", error, LOG_KV_END);
		client_fail(c, SQLSTATE_UNABLE_TO_CONNECT, text, NULL);
		return;
	}
	c->ss = s;
	stream_set_cb(s, client_on_server_stream, c);
	c->state = CL_LOGIN;
	send_server_startup(c);
	if (c->state != CL_LOGIN)
		return;
	stream_resume_read(c->cs);
	if (evbuffer_get_length(stream_input(c->cs)) > 0)
		client_login_from_client(c);
}

void client_connect_server(struct client *c)
{
	if (c->px->cfg->insert_uuid != INSERT_UUID_OFF && !c->rw)
		c->rw = rwsess_new(c->px, c->id, c->addr);
	c->state = CL_SERVER_WAIT;
	stream_pause_read(c->cs);
	c->sconn = server_connect_start(c->px, true, on_server_ready, c);
	if (!c->sconn)
		client_fail(c, SQLSTATE_INTERNAL_ERROR, "out of memory", NULL);
}

static void client_authenticated(struct client *c)
{
	c->proxy_auth = true;
	log_event(LOG_DEBUG, "client_authenticated", c->id, c->addr, "user", client_user(c), LOG_KV_END);
	if (c->wants_admin)
		client_admin_start(c);
	else
		client_pass_gate(c);
}

void client_auth_failed(struct client *c, const char *sqlstate, const char *err)
{
	c->px->stats.login_failures++;
	log_event(LOG_INFO, "login_failed", c->id, c->addr, "user", client_user(c), "db", client_database(c),
		  "sqlstate", sqlstate, "msg", err, LOG_KV_END);
	client_fail(c, sqlstate, err, NULL);
}

static enum authfile_method configured_method(const struct ug_config *cfg)
{
	switch (cfg->auth_type) {
	case AUTH_TRUST: return AUTHFILE_METHOD_TRUST;
	case AUTH_MD5: return AUTHFILE_METHOD_MD5;
	default: return AUTHFILE_METHOD_SCRAM;
	}
}

static void challenge_client(struct client *c, const char *secret)
{
	const char *sqlstate = NULL;
	char err[300] = "";
	struct pgbuf out;
	if (secret && !(c->secret = strdup(secret))) {
		client_fail(c, SQLSTATE_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	pgbuf_init(&out);
	enum auth_result rc = client_auth_begin(&c->cauth, client_user(c), secret, configured_method(c->px->cfg),
						c->px->scram_mock_key, &out, &sqlstate, err, sizeof(err));
	client_send(c, &out);
	pgbuf_free(&out);
	if (rc == AUTH_DONE)
		client_authenticated(c);
	else if (rc == AUTH_FAILED)
		client_auth_failed(c, sqlstate, err);
}

/* auth_query answers (user, secret); a missing row or a NULL secret is an
 * unknown user, who still gets a challenge that cannot succeed. */
static void on_auth_lookup(const PGresult *res, const char *error, void *arg)
{
	struct client *c = arg;
	c->auth_lookup = NULL;
	if (!res) {
		log_event(LOG_WARNING, "auth_query_failed", c->id, c->addr, "user", client_user(c), "msg", error,
			  LOG_KV_END);
		client_fail(c, SQLSTATE_INVALID_AUTHORIZATION, "uuidgate could not look up the user (auth_query failed)",
			    "see uuidgate's log");
		return;
	}
	int col = PQnfields(res) - 1;
	const char *secret = PQntuples(res) > 0 && col >= 0 && !PQgetisnull(res, 0, col) ? PQgetvalue(res, 0, col) : NULL;
	challenge_client(c, secret);
}

/* Runs auth_query as auth_user in the client's database; auth_user's own
 * password comes from auth_file (or libpq's usual sources). */
static void look_up_secret(struct client *c)
{
	const struct ug_config *cfg = c->px->cfg;
	const char *auth_secret = proxy_user_secret(c->px, cfg->auth_user);
	bool plain = auth_secret && authfile_secret_kind(auth_secret) == AUTHFILE_SECRET_PLAIN;
	const char *database = c->wants_admin ? NULL : client_database(c);
	const char *keys[] = { "user", "application_name", "password", "dbname", NULL };
	const char *values[] = { cfg->auth_user, "uuidgate-auth", plain ? auth_secret : NULL, database, NULL };
	const char *user = client_user(c);
	c->state = CL_AUTH;
	c->auth_lookup = pgquery_start(c->px->base, cfg->upstream, keys, values, cfg->auth_query, 1, &user,
				       on_auth_lookup, c);
	if (!c->auth_lookup)
		client_fail(c, SQLSTATE_INTERNAL_ERROR, "out of memory", NULL);
}

void client_begin_auth(struct client *c)
{
	const struct ug_config *cfg = c->px->cfg;
	const char *secret = proxy_user_secret(c->px, client_user(c));
	c->state = CL_AUTH;
	if (!secret && *cfg->auth_user && strcmp(client_user(c), cfg->auth_user) != 0)
		look_up_secret(c);
	else
		challenge_client(c, secret);
}

static bool auth_client_message(struct client *c, uint8_t type, const uint8_t *msg, long total)
{
	if (type != 'p') {
		if (type == 'X')
			client_close(c, "client terminated during login");
		else
			client_fail(c, SQLSTATE_PROTOCOL_VIOLATION, "expected a password response", NULL);
		return false;
	}
	const char *sqlstate = NULL;
	char err[300] = "";
	struct pgbuf out;
	pgbuf_init(&out);
	enum auth_result rc = client_auth_step(c->cauth, msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN,
					       &out, &sqlstate, err, sizeof(err));
	evbuffer_drain(stream_input(c->cs), (size_t)total);
	client_send(c, &out);
	pgbuf_free(&out);
	if (rc == AUTH_DONE)
		client_authenticated(c);
	else if (rc == AUTH_FAILED)
		client_auth_failed(c, sqlstate, err);
	return rc == AUTH_CONTINUE;
}

void client_auth_input(struct client *c)
{
	if (c->auth_lookup)
		return; /* nothing was asked of the client yet */
	client_each_message(c, stream_input(c->cs), PG_PRE_AUTH_MAX_MESSAGE, CL_AUTH, auth_client_message);
}

