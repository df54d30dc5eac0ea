#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "admin.h"
#include "auth.h"
#include "authmsg.h"
#include "cancel.h"
#include "gate.h"
#include "log.h"
#include "message.h"
#include "net.h"
#include "pgread.h"
#include "relay.h"
#include "rwsess.h"
#include "server.h"
#include "startup.h"
#include "stream.h"
#include "tls.h"

/* Backpressure: stop reading from one side while the other side's output
 * holds more than HIGH bytes; resume when it has drained to LOW. */
#define RELAY_HIGH_WATER (1024 * 1024)
#define RELAY_LOW_WATER (256 * 1024)
/* Server messages during login are small; this bounds a misbehaving one. */
#define LOGIN_SERVER_MAX_MESSAGE (1024 * 1024)
#define CLOSE_FLUSH_SECONDS 5

struct client {
	struct proxy *px;
	struct client *prev;
	struct client *next;
	uint64_t id;
	char addr[64];
	enum client_state state;
	int peek_fd;
	struct event *peek_ev;
	struct stream *cs;               /* client leg */
	struct stream *ss;               /* server leg */
	struct server_connect *sconn;
	struct event *login_timer;
	struct event *close_timer;
	struct startup_packet startup;
	bool have_startup;
	bool counted;
	bool direct_tls;
	bool ssl_negotiated;
	uint32_t key_pid;                /* the BackendKeyData the client sees */
	uint32_t key_secret;
	uint32_t server_pid;             /* the server's own, kept for cancels */
	uint8_t server_key[STARTUP_CANCEL_KEY_MAX];
	size_t server_key_len;
	int last_auth_request;
	bool server_offered_plus;
	uint8_t tx_status;
	bool proxy_auth;                 /* uuidgate authenticated the client and logs in for it */
	bool admin;                      /* an authenticated admin console session */
	bool wants_admin;                /* authenticating for the admin console */
	bool peer_same_uid;              /* Unix socket peer runs as uuidgate's own user */
	bool admin_skipping;             /* after an extended-protocol error, until Sync */
	struct client_auth *cauth;
	struct server_auth *sauth;
	char *secret;
	struct rwsess *rw;               /* INSERT rewriting; NULL: plain relay */
	bool probing;                    /* swallowing the answer to the search_path probe */
	uint8_t login_ready_status;
	struct relay c2s;
	struct relay s2c;
	struct timeval started;
};

static void on_client_stream(struct stream *s, enum stream_event ev, void *arg);
static const char *user_of(const struct client *c);
static const char *database_of(const struct client *c);
static void on_server_stream(struct stream *s, enum stream_event ev, void *arg);
static void begin_client_auth(struct client *c);
static void pass_gate(struct client *c);
static void admin_login(struct client *c);
static void auth_failed(struct client *c, const char *sqlstate, const char *err);

const char *client_state_name(enum client_state s)
{
	static const char *const names[] = { "peek", "tls_handshake", "startup", "auth", "gate",
					     "server_wait", "login", "active", "admin", "closing" };
	return names[s];
}

struct client *client_next(struct client *c)
{
	return c->next;
}

enum client_state client_get_state(const struct client *c)
{
	return c->state;
}

bool client_has_server(const struct client *c)
{
	return c->ss != NULL;
}

void client_get_info(const struct client *c, struct client_info *out)
{
	struct timeval now, d;
	gettimeofday(&now, NULL);
	timersub(&now, &c->started, &d);
	out->id = c->id;
	out->addr = c->addr;
	out->user = user_of(c);
	out->database = c->have_startup ? database_of(c) : "";
	out->state = c->state;
	out->tls = c->cs && stream_is_tls(c->cs);
	out->admin = c->admin;
	out->connected_seconds = (double)d.tv_sec + (double)d.tv_usec / 1e6;
	out->bytes_in = c->c2s.bytes;
	out->bytes_out = c->s2c.bytes;
	out->tx_status = (char)(c->state == CL_ACTIVE ? c->tx_status : 0);
	out->server_pid = c->ss ? c->server_pid : 0;
}

struct client *client_find(struct proxy *px, uint64_t id)
{
	for (struct client *c = px->clients; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

void client_traffic(const struct client *c, uint64_t *bytes_c2s, uint64_t *bytes_s2c,
		    uint64_t *msgs_c2s, uint64_t *msgs_s2c)
{
	*bytes_c2s = c->c2s.bytes;
	*bytes_s2c = c->s2c.bytes;
	*msgs_c2s = c->c2s.messages;
	*msgs_s2c = c->s2c.messages;
}

bool client_is_idle(const struct client *c)
{
	return c->state == CL_ACTIVE && c->tx_status == 'I' && c->c2s.syncs == c->s2c.readies &&
	       relay_at_boundary(&c->c2s);
}

static const char *user_of(const struct client *c)
{
	const char *u = c->have_startup ? startup_get(&c->startup, "user") : NULL;
	return u ? u : "";
}

static const char *database_of(const struct client *c)
{
	const char *d = c->have_startup ? startup_get(&c->startup, "database") : NULL;
	if (d && *d)
		return d;
	const char *up = c->px->upstream->dbname;
	return up ? up : user_of(c);
}

static void client_free(struct client *c)
{
	struct proxy *px = c->px;
	px->stats.bytes_client_to_server += c->c2s.bytes;
	px->stats.bytes_server_to_client += c->s2c.bytes;
	px->stats.messages_client_to_server += c->c2s.messages;
	px->stats.messages_server_to_client += c->s2c.messages;
	if (c->prev)
		c->prev->next = c->next;
	else
		px->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->counted)
		px->nclients--;
	if (c->peek_ev)
		event_free(c->peek_ev);
	if (c->peek_fd >= 0)
		close(c->peek_fd);
	server_connect_abort(c->sconn);
	stream_free(c->ss);
	stream_free(c->cs);
	if (c->login_timer)
		event_free(c->login_timer);
	if (c->close_timer)
		event_free(c->close_timer);
	if (c->have_startup)
		startup_free(&c->startup);
	client_auth_free(c->cauth);
	rwsess_free(c->rw);
	server_auth_free(c->sauth);
	if (c->secret)
		OPENSSL_cleanse(c->secret, strlen(c->secret));
	free(c->secret);
	free(c);
	proxy_client_gone(px);
}

void client_free_all(struct proxy *px)
{
	while (px->clients)
		client_free(px->clients);
}

static void log_disconnect(struct client *c, const char *reason)
{
	if (!c->counted || !c->px->cfg->log_disconnections)
		return;
	struct timeval now, d;
	char secs[32];
	gettimeofday(&now, NULL);
	timersub(&now, &c->started, &d);
	snprintf(secs, sizeof(secs), "%ld.%03ld", (long)d.tv_sec, (long)d.tv_usec / 1000);
	log_event(LOG_INFO, "client_disconnect", c->id, c->addr, "user", user_of(c), "db",
		  database_of(c), "reason", reason, "duration_s", secs, LOG_KV_END);
}

static void on_close_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	client_free(arg);
}

/* Closes the server leg at once; the client leg after its output (a final
 * ErrorResponse, usually) has been flushed, bounded by a short timer. The
 * client itself is freed from the event loop, never here: callers up the
 * stack may still look at it (they see CL_CLOSING and stop). */
static void client_close(struct client *c, const char *reason)
{
	if (c->state == CL_CLOSING)
		return;
	log_disconnect(c, reason);
	/* A query still running for a client that is gone would go on until it
	 * tries to send its results: cancel it. */
	if (c->ss && c->state == CL_ACTIVE && c->c2s.syncs != c->s2c.readies && c->server_key_len)
		cancel_server(c->px, c->server_pid, c->server_key, c->server_key_len);
	if (c->ss && c->state == CL_ACTIVE && relay_at_boundary(&c->c2s)) {
		/* Tell the server goodbye so it logs a clean disconnect. */
		static const uint8_t terminate[5] = { 'X', 0, 0, 0, 4 };
		evbuffer_add(stream_output(c->ss), terminate, sizeof(terminate));
		stream_flush(c->ss);
	}
	server_connect_abort(c->sconn);
	c->sconn = NULL;
	stream_free(c->ss);
	c->ss = NULL;
	c->state = CL_CLOSING;
	if (c->peek_ev)
		event_del(c->peek_ev);
	struct timeval tv = { 0, 0 };
	if (c->cs && stream_output_length(c->cs) > 0) {
		stream_pause_read(c->cs);
		stream_want_drained(c->cs, 0);
		tv.tv_sec = CLOSE_FLUSH_SECONDS;
	}
	if (!c->close_timer)
		c->close_timer = evtimer_new(c->px->base, on_close_timeout, c);
	if (c->close_timer)
		evtimer_add(c->close_timer, &tv);
	else
		client_free(c); /* out of memory: nothing better left */
}

static void send_to_client(struct client *c, const struct pgbuf *b)
{
	if (!c->cs || pgbuf_failed(b))
		return;
	evbuffer_add(stream_output(c->cs), b->data, b->len);
	stream_flush(c->cs);
}

static void send_error(struct client *c, const char *severity, const char *sqlstate,
		       const char *message, const char *hint)
{
	struct pgbuf b;
	struct pg_error e = { .severity = severity, .sqlstate = sqlstate, .message = message, .hint = hint };
	pgbuf_init(&b);
	pgmsg_put_error(&b, 'E', &e);
	send_to_client(c, &b);
	pgbuf_free(&b);
}

/* A FATAL error goes out only where the client expects a message: never in
 * the middle of a server message being streamed to it. */
static void fail_client(struct client *c, const char *sqlstate, const char *message, const char *hint)
{
	if (c->cs && relay_at_boundary(&c->s2c) && c->state != CL_CLOSING)
		send_error(c, "FATAL", sqlstate, message, hint);
	if (strcmp(sqlstate, SQLSTATE_PROTOCOL_VIOLATION) == 0)
		c->px->stats.protocol_errors++;
	proxy_count_error(c->px, sqlstate);
	log_event(c->counted ? LOG_INFO : LOG_DEBUG, "client_error", c->id, c->addr, "sqlstate", sqlstate,
		  "msg", message, LOG_KV_END);
	client_close(c, message);
}

void client_terminate(struct client *c, const char *sqlstate, const char *message)
{
	fail_client(c, sqlstate, message, NULL);
}

/* ---- relay after login ------------------------------------------------ */

static void apply_backpressure(struct stream *from, struct stream *to)
{
	stream_flush(to);
	if (stream_output_length(to) > RELAY_HIGH_WATER) {
		stream_pause_read(from);
		stream_want_drained(to, RELAY_LOW_WATER);
	}
}

/* Once the window has closed and nothing rewritten can be bound any more,
 * the session goes back to the plain relay. */
static void drop_rewriter_if_done(struct client *c)
{
	if (c->rw && !rwsess_needed(c->rw)) {
		rwsess_free(c->rw);
		c->rw = NULL;
	}
}

static void relay_client_to_server(struct client *c)
{
	uint32_t max = (uint32_t)c->px->cfg->max_packet_size;
	drop_rewriter_if_done(c);
	enum relay_status st = c->rw ? rwsess_client_to_server(c->rw, stream_input(c->cs), stream_output(c->ss), &c->c2s, max)
				     : relay_forward(stream_input(c->cs), stream_output(c->ss), &c->c2s, max);
	apply_backpressure(c->cs, c->ss);
	if (st == RELAY_TOO_LARGE)
		fail_client(c, SQLSTATE_PROTOCOL_VIOLATION, "message too large (max_packet_size)", NULL);
	else if (st != RELAY_OK)
		fail_client(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length", NULL);
}

static void relay_server_to_client(struct client *c)
{
	enum relay_status st = c->rw ? rwsess_server_to_client(c->rw, stream_input(c->ss), stream_output(c->cs), &c->s2c)
				     : relay_forward(stream_input(c->ss), stream_output(c->cs), &c->s2c, 0x7fffffffu);
	apply_backpressure(c->ss, c->cs);
	if (st != RELAY_OK) {
		fail_client(c, SQLSTATE_PROTOCOL_VIOLATION, "server sent an invalid message", NULL);
		return;
	}
	if (c->s2c.saw_ready) {
		c->tx_status = c->s2c.ready_status;
		proxy_close_idle_if_draining(c->px, c);
	}
}

/* ---- whole-message handling before and outside the relay ---------------- */

typedef bool (*message_fn)(struct client *c, uint8_t type, const uint8_t *msg, long total);

/* Hands each whole message of `in` to fn while fn returns true and the client
 * stays in `state`; a bad length closes the client. */
static void each_message(struct client *c, struct evbuffer *in, uint32_t max, enum client_state state,
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
			fail_client(c, SQLSTATE_PROTOCOL_VIOLATION,
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

static void forward_whole(struct evbuffer *in, struct stream *to, long total)
{
	evbuffer_remove_buffer(in, stream_output(to), (size_t)total);
}

static void send_to_server(struct client *c, const struct pgbuf *b)
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
	if (!c->sauth && !(c->sauth = server_auth_new(user_of(c), c->secret, c->cauth))) {
		fail_client(c, SQLSTATE_INTERNAL_ERROR, "out of memory", NULL);
		return false;
	}
	pgbuf_init(&out);
	enum auth_result rc = server_auth_step(c->sauth, msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN,
					       &out, err, sizeof(err));
	evbuffer_drain(stream_input(c->ss), (size_t)total);
	if (rc == AUTH_CONTINUE) {
		send_to_server(c, &out);
	} else if (rc == AUTH_DONE) {
		pgbuf_reset(&out);
		pgmsg_put_auth_ok(&out);
		send_to_client(c, &out);
	}
	pgbuf_free(&out);
	if (rc == AUTH_FAILED) {
		log_event(LOG_WARNING, "server_login_failed", c->id, c->addr, "user", user_of(c), "msg", err, LOG_KV_END);
		fail_client(c, SQLSTATE_INVALID_AUTHORIZATION, err, NULL);
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
		fail_client(c, SQLSTATE_PROTOCOL_VIOLATION, "server sent an invalid authentication request", NULL);
		return false;
	}
	c->last_auth_request = code;
	if (c->proxy_auth)
		return answer_server_auth(c, msg, total);
	if (code != PG_AUTH_SASL) {
		forward_whole(stream_input(c->ss), c->cs, total);
		return true;
	}
	struct pgbuf b;
	pgbuf_init(&b);
	bool ok = pgmsg_filter_sasl_mechanisms(msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN, &b);
	c->server_offered_plus = memmem(msg, (size_t)total, "-PLUS", 5) != NULL;
	if (ok)
		send_to_client(c, &b);
	pgbuf_free(&b);
	evbuffer_drain(stream_input(c->ss), (size_t)total);
	if (!ok)
		fail_client(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			    "the server offers only SASL mechanisms that cannot pass through a proxy",
			    "use auth_type = scram-sha-256 with an auth_file so uuidgate authenticates clients itself");
	return ok;
}

static void new_cancel_key(struct client *c)
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
		fail_client(c, SQLSTATE_PROTOCOL_VIOLATION, "server sent an invalid BackendKeyData", NULL);
		return false;
	}
	c->server_pid = pg_get_u32(msg + PG_HEADER_LEN);
	memcpy(c->server_key, msg + PG_HEADER_LEN + 4, key_len);
	c->server_key_len = key_len;
	evbuffer_drain(stream_input(c->ss), (size_t)total);
	new_cancel_key(c);
	struct pgbuf b;
	pgbuf_init(&b);
	pgmsg_put_backend_key(&b, c->key_pid, c->key_secret);
	send_to_client(c, &b);
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
	log_event(LOG_INFO, "login_failed", c->id, c->addr, "user", user_of(c), "db", database_of(c),
		  "sqlstate", e.sqlstate ? e.sqlstate : "", "msg", reason, LOG_KV_END);
	forward_whole(stream_input(c->ss), c->cs, total);
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
		log_event(LOG_INFO, "login", c->id, c->addr, "user", user_of(c), "db", database_of(c),
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
	send_to_server(c, &b);
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
	send_to_client(c, &b);
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
	forward_whole(stream_input(c->ss), c->cs, total);
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
	forward_whole(stream_input(c->ss), c->cs, total);
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
		forward_whole(stream_input(c->ss), c->cs, total);
		return true;
	}
}

static void login_from_server(struct client *c)
{
	each_message(c, stream_input(c->ss), LOGIN_SERVER_MAX_MESSAGE, CL_LOGIN, login_server_message);
	if (c->state == CL_ACTIVE) {
		stream_flush(c->cs);
		if (evbuffer_get_length(stream_input(c->ss)) > 0)
			relay_server_to_client(c);
		if (c->state == CL_ACTIVE && evbuffer_get_length(stream_input(c->cs)) > 0)
			relay_client_to_server(c);
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
	fail_client(c, SQLSTATE_INVALID_AUTHORIZATION,
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
		fail_client(c, SQLSTATE_PROTOCOL_VIOLATION, text, NULL);
		return false;
	}
	if (refuses_downgrade(c, msg, total))
		return false;
	forward_whole(stream_input(c->cs), c->ss, total);
	return true;
}

static void login_from_client(struct client *c)
{
	each_message(c, stream_input(c->cs), PG_PRE_AUTH_MAX_MESSAGE, CL_LOGIN, login_client_message);
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
		fail_client(c, SQLSTATE_INTERNAL_ERROR, "out of memory", NULL);
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
		fail_client(c, SQLSTATE_UNABLE_TO_CONNECT, text, NULL);
		return;
	}
	c->ss = s;
	stream_set_cb(s, on_server_stream, c);
	c->state = CL_LOGIN;
	send_server_startup(c);
	if (c->state != CL_LOGIN)
		return;
	stream_resume_read(c->cs);
	if (evbuffer_get_length(stream_input(c->cs)) > 0)
		login_from_client(c);
}

static void connect_server(struct client *c)
{
	if (c->px->cfg->insert_uuid != INSERT_UUID_OFF && !c->rw)
		c->rw = rwsess_new(c->px, c->id, c->addr);
	c->state = CL_SERVER_WAIT;
	stream_pause_read(c->cs);
	c->sconn = server_connect_start(c->px, true, on_server_ready, c);
	if (!c->sconn)
		fail_client(c, SQLSTATE_INTERNAL_ERROR, "out of memory", NULL);
}

/* ---- the startup phase --------------------------------------------------- */

static bool wants_replication(const struct startup_packet *sp)
{
	const char *v = startup_get(sp, "replication");
	if (!v)
		return false;
	static const char *const off[] = { "false", "off", "no", "0" };
	for (size_t i = 0; i < 4; i++)
		if (strcasecmp(v, off[i]) == 0)
			return false;
	return true;
}

static void negotiate_protocol(struct client *c)
{
	const struct startup_packet *sp = &c->startup;
	if (sp->minor == 0 && sp->noptions == 0)
		return;
	struct pgbuf b;
	pgbuf_init(&b);
	pgmsg_put_negotiate(&b, 0, sp->protocol_options, sp->noptions);
	send_to_client(c, &b);
	pgbuf_free(&b);
}

/* Checks in the order PostgreSQL itself applies them; NULL when admitted. */
static const char *refusal(struct client *c, const char **sqlstate, const char **hint)
{
	const struct ug_config *cfg = c->px->cfg;
	*hint = NULL;
	*sqlstate = SQLSTATE_INVALID_AUTHORIZATION;
	if (cfg->client_tls_sslmode >= TLS_REQUIRE && !stream_is_tls(c->cs)) {
		*hint = "connect with sslmode=require";
		return "SSL required";
	}
	if (!startup_get(&c->startup, "user") || !*startup_get(&c->startup, "user"))
		return "no PostgreSQL user name specified in startup packet";
	if (wants_replication(&c->startup)) {
		*sqlstate = SQLSTATE_FEATURE_NOT_SUPPORTED;
		*hint = "connect replication clients to the database server directly";
		return "replication connections are not supported by uuidgate";
	}
	if (c->px->state == PROXY_SHUTTING_DOWN) {
		*sqlstate = SQLSTATE_CANNOT_CONNECT_NOW;
		return "uuidgate is shutting down";
	}
	if (c->px->nclients >= cfg->max_client_conn) {
		*sqlstate = SQLSTATE_TOO_MANY_CONNECTIONS;
		*hint = "raise max_client_conn or close idle connections";
		return "no more connections allowed (max_client_conn)";
	}
	return NULL;
}

static void startup_message(struct client *c)
{
	const char *sqlstate, *hint;
	const char *why = refusal(c, &sqlstate, &hint);
	if (why) {
		fail_client(c, sqlstate, why, hint);
		return;
	}
	c->counted = true;
	c->px->nclients++;
	negotiate_protocol(c);
	log_event(LOG_DEBUG, "startup", c->id, c->addr, "user", user_of(c), "db", database_of(c), LOG_KV_END);
	if (admin_is_console(database_of(c)))
		admin_login(c);
	else if (c->px->cfg->auth_type == AUTH_PASSTHROUGH)
		pass_gate(c);
	else
		begin_client_auth(c);
}

static void arm_timer(struct event *timer, int64_t ms)
{
	evtimer_del(timer);
	if (ms > 0) {
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		evtimer_add(timer, &tv);
	}
}

static void refuse_at_gate(struct client *c)
{
	char text[600];
	gate_describe(c->px->gate, text, sizeof(text));
	fail_client(c, SQLSTATE_CANNOT_CONNECT_NOW, text,
		    "retry in a moment; uuidgate opens the gate when the migration is complete");
}

/* While held, gate_timeout bounds the wait instead of client_login_timeout. */
static void hold_at_gate(struct client *c)
{
	c->state = CL_GATE;
	arm_timer(c->login_timer, c->px->cfg->gate_timeout_ms);
	log_event(LOG_DEBUG, "client_held", c->id, c->addr, "user", user_of(c), "db", database_of(c), LOG_KV_END);
}

void client_gate_opened(struct client *c)
{
	if (c->state != CL_GATE)
		return;
	arm_timer(c->login_timer, c->px->cfg->client_login_timeout_ms);
	connect_server(c);
}

static void pass_gate(struct client *c)
{
	struct gate *g = c->px->gate;
	if (!gate_guards(g, database_of(c))) {
		connect_server(c);
		return;
	}
	bool refuse = !c->px->paused &&
		      (c->px->cfg->gate_mode == GATE_MODE_REFUSE || gate_state(g) == GATE_NOT_APPLICABLE);
	if (refuse)
		refuse_at_gate(c);
	else
		hold_at_gate(c);
}

static void admin_start(struct client *c)
{
	struct pgbuf out;
	c->admin = true;
	c->state = CL_ADMIN;
	evtimer_del(c->login_timer);
	new_cancel_key(c);
	pgbuf_init(&out);
	admin_put_welcome(&out, user_of(c), c->key_pid, c->key_secret);
	send_to_client(c, &out);
	pgbuf_free(&out);
	log_event(LOG_INFO, "admin_login", c->id, c->addr, "user", user_of(c), LOG_KV_END);
}

/* Same-user peers on the Unix socket are trusted (they could read the
 * configuration anyway); everyone else must be in admin_users and prove it
 * against auth_file. */
static void admin_login(struct client *c)
{
	if (c->peer_same_uid) {
		admin_start(c);
		return;
	}
	if (!admin_user_allowed(c->px, user_of(c))) {
		auth_failed(c, SQLSTATE_INVALID_AUTHORIZATION, "not allowed to connect to the uuidgate admin console");
		return;
	}
	c->wants_admin = true;
	begin_client_auth(c);
}

static bool admin_client_message(struct client *c, uint8_t type, const uint8_t *msg, long total)
{
	struct evbuffer *in = stream_input(c->cs);
	if (type == 'X') {
		client_close(c, "client closed the admin session");
		return false;
	}
	struct pgbuf out;
	pgbuf_init(&out);
	bool alive = true;
	if (type == 'Q' && msg[total - 1] == '\0') {
		char *query = strndup((const char *)msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN);
		evbuffer_drain(in, (size_t)total);
		c->admin_skipping = false;
		alive = query && admin_execute(c->px, c, query, &out);
		free(query);
	} else {
		/* As the server does: one error for an extended-protocol batch, the
		 * rest skipped, and ReadyForQuery when its Sync arrives. */
		evbuffer_drain(in, (size_t)total);
		if (type == 'S') {
			pgmsg_put_ready(&out, 'I');
			c->admin_skipping = false;
		} else if (!c->admin_skipping && type != 'H') {
			struct pg_error e = { .severity = "ERROR", .sqlstate = SQLSTATE_FEATURE_NOT_SUPPORTED,
					      .message = "the admin console speaks only the simple query protocol" };
			pgmsg_put_error(&out, 'E', &e);
			c->admin_skipping = true;
		}
	}
	send_to_client(c, &out);
	pgbuf_free(&out);
	if (!alive)
		client_close(c, "closed by the admin console");
	return alive;
}

static void admin_from_client(struct client *c)
{
	each_message(c, stream_input(c->cs), PG_PRE_AUTH_MAX_MESSAGE, CL_ADMIN, admin_client_message);
}

static void client_authenticated(struct client *c)
{
	c->proxy_auth = true;
	log_event(LOG_DEBUG, "client_authenticated", c->id, c->addr, "user", user_of(c), LOG_KV_END);
	if (c->wants_admin)
		admin_start(c);
	else
		pass_gate(c);
}

static void auth_failed(struct client *c, const char *sqlstate, const char *err)
{
	c->px->stats.login_failures++;
	log_event(LOG_INFO, "login_failed", c->id, c->addr, "user", user_of(c), "db", database_of(c),
		  "sqlstate", sqlstate, "msg", err, LOG_KV_END);
	fail_client(c, sqlstate, err, NULL);
}

static enum authfile_method configured_method(const struct ug_config *cfg)
{
	switch (cfg->auth_type) {
	case AUTH_TRUST: return AUTHFILE_METHOD_TRUST;
	case AUTH_MD5: return AUTHFILE_METHOD_MD5;
	default: return AUTHFILE_METHOD_SCRAM;
	}
}

static void begin_client_auth(struct client *c)
{
	const char *secret = proxy_user_secret(c->px, user_of(c));
	const char *sqlstate = NULL;
	char err[300] = "";
	struct pgbuf out;
	if (secret && !(c->secret = strdup(secret))) {
		fail_client(c, SQLSTATE_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	pgbuf_init(&out);
	c->state = CL_AUTH;
	enum auth_result rc = client_auth_begin(&c->cauth, user_of(c), secret, configured_method(c->px->cfg),
						c->px->scram_mock_key, &out, &sqlstate, err, sizeof(err));
	send_to_client(c, &out);
	pgbuf_free(&out);
	if (rc == AUTH_DONE)
		client_authenticated(c);
	else if (rc == AUTH_FAILED)
		auth_failed(c, sqlstate, err);
}

static bool auth_client_message(struct client *c, uint8_t type, const uint8_t *msg, long total)
{
	if (type != 'p') {
		if (type == 'X')
			client_close(c, "client terminated during login");
		else
			fail_client(c, SQLSTATE_PROTOCOL_VIOLATION, "expected a password response", NULL);
		return false;
	}
	const char *sqlstate = NULL;
	char err[300] = "";
	struct pgbuf out;
	pgbuf_init(&out);
	enum auth_result rc = client_auth_step(c->cauth, msg + PG_HEADER_LEN, (size_t)total - PG_HEADER_LEN,
					       &out, &sqlstate, err, sizeof(err));
	evbuffer_drain(stream_input(c->cs), (size_t)total);
	send_to_client(c, &out);
	pgbuf_free(&out);
	if (rc == AUTH_DONE)
		client_authenticated(c);
	else if (rc == AUTH_FAILED)
		auth_failed(c, sqlstate, err);
	return rc == AUTH_CONTINUE;
}

static void auth_from_client(struct client *c)
{
	each_message(c, stream_input(c->cs), PG_PRE_AUTH_MAX_MESSAGE, CL_AUTH, auth_client_message);
}

static void upgrade_to_tls(struct client *c)
{
	int fd = stream_detach_fd(c->cs);
	c->cs = NULL;
	SSL *ssl = SSL_new(c->px->client_tls);
	if (fd < 0 || !ssl) {
		if (fd >= 0)
			close(fd);
		SSL_free(ssl);
		client_close(c, "cannot start TLS");
		return;
	}
	c->state = CL_TLS_HANDSHAKE;
	c->cs = stream_new_tls(c->px->base, fd, ssl, true, on_client_stream, c);
	if (!c->cs)
		client_close(c, "cannot start TLS");
}

/* Returns true when the startup loop may go on reading packets. */
static bool ssl_request(struct client *c)
{
	if (c->ssl_negotiated || stream_is_tls(c->cs)) {
		fail_client(c, SQLSTATE_PROTOCOL_VIOLATION, "duplicate SSL request", NULL);
		return false;
	}
	c->ssl_negotiated = true;
	if (!c->px->client_tls) {
		evbuffer_add(stream_output(c->cs), "N", 1);
		stream_flush(c->cs);
		return true;
	}
	/* Bytes that arrived with the request were sent before the handshake
	 * and would otherwise be read as if TLS protected them. */
	if (evbuffer_get_length(stream_input(c->cs)) > 0) {
		fail_client(c, SQLSTATE_PROTOCOL_VIOLATION, "received unencrypted data after SSL request", NULL);
		return false;
	}
	evbuffer_add(stream_output(c->cs), "S", 1);
	stream_flush(c->cs);
	if (stream_output_length(c->cs) != 0) {
		client_close(c, "could not answer the SSL request");
		return false;
	}
	upgrade_to_tls(c);
	return false;
}

static void startup_failed(struct client *c, enum startup_status st)
{
	const char *sqlstate = st == STARTUP_BAD_VERSION ? SQLSTATE_FEATURE_NOT_SUPPORTED
							 : SQLSTATE_PROTOCOL_VIOLATION;
	fail_client(c, sqlstate, startup_status_text(st), NULL);
}

static void handle_startup_input(struct client *c)
{
	struct evbuffer *in = stream_input(c->cs);
	while (c->state == CL_STARTUP) {
		size_t avail = evbuffer_get_length(in);
		uint8_t len_be[4];
		if (avail < 4)
			return;
		evbuffer_copyout(in, len_be, 4);
		uint32_t n = pg_get_u32(len_be);
		if (n < 8 || n > STARTUP_MAX_PACKET) {
			startup_failed(c, STARTUP_BAD_LENGTH);
			return;
		}
		if (avail < n)
			return;
		struct startup_packet sp;
		enum startup_status st = startup_parse(evbuffer_pullup(in, n), n, &sp);
		if (st != STARTUP_OK) {
			startup_failed(c, st);
			return;
		}
		evbuffer_drain(in, n);
		switch (sp.kind) {
		case STARTUP_SSL_REQUEST:
			if (!ssl_request(c))
				return;
			break;
		case STARTUP_GSSENC_REQUEST:
			evbuffer_add(stream_output(c->cs), "N", 1);
			stream_flush(c->cs);
			break;
		case STARTUP_CANCEL:
			cancel_request(c->px, sp.cancel_pid, sp.cancel_key, sp.cancel_key_len, c->addr);
			client_close(c, "cancel request");
			return;
		case STARTUP_MESSAGE:
			c->startup = sp;
			c->have_startup = true;
			startup_message(c);
			return;
		}
	}
}

/* ---- stream events --------------------------------------------------------- */

static void on_client_stream(struct stream *s, enum stream_event ev, void *arg)
{
	struct client *c = arg;
	(void)s;
	switch (ev) {
	case STREAM_READ:
		if (c->state == CL_STARTUP)
			handle_startup_input(c);
		else if (c->state == CL_AUTH)
			auth_from_client(c);
		else if (c->state == CL_LOGIN)
			login_from_client(c);
		else if (c->state == CL_ACTIVE)
			relay_client_to_server(c);
		else if (c->state == CL_ADMIN)
			admin_from_client(c);
		else if (c->state == CL_CLOSING)
			evbuffer_drain(stream_input(c->cs), evbuffer_get_length(stream_input(c->cs)));
		break;
	case STREAM_DRAINED:
		if (c->state == CL_CLOSING) {
			client_free(c);
		} else if (c->ss && stream_read_paused(c->ss)) {
			stream_resume_read(c->ss);
			if (evbuffer_get_length(stream_input(c->ss)) > 0)
				relay_server_to_client(c);
		}
		break;
	case STREAM_TLS_READY:
		if (c->direct_tls && !tls_alpn_is_postgresql(stream_ssl(c->cs))) {
			fail_client(c, SQLSTATE_PROTOCOL_VIOLATION,
				    "direct TLS connection without ALPN \"postgresql\"", NULL);
			return;
		}
		c->state = CL_STARTUP;
		handle_startup_input(c);
		break;
	case STREAM_EOF:
		client_close(c, c->state == CL_ACTIVE ? "client closed the connection"
						      : "client closed the connection during login");
		break;
	case STREAM_ERROR:
		log_event(LOG_DEBUG, "client_socket_error", c->id, c->addr, "msg", stream_error_text(s), LOG_KV_END);
		client_close(c, c->state == CL_TLS_HANDSHAKE ? "TLS handshake failed" : "client connection error");
		break;
	}
}

static void on_server_stream(struct stream *s, enum stream_event ev, void *arg)
{
	struct client *c = arg;
	switch (ev) {
	case STREAM_READ:
		if (c->state == CL_LOGIN)
			login_from_server(c);
		else if (c->state == CL_ACTIVE)
			relay_server_to_client(c);
		break;
	case STREAM_DRAINED:
		if (stream_read_paused(c->cs)) {
			stream_resume_read(c->cs);
			if (c->state == CL_ACTIVE && evbuffer_get_length(stream_input(c->cs)) > 0)
				relay_client_to_server(c);
		}
		break;
	case STREAM_TLS_READY:
		break;
	case STREAM_EOF:
	case STREAM_ERROR:
		log_event(LOG_DEBUG, "server_closed", c->id, c->addr, "msg",
			  ev == STREAM_EOF ? "end of stream" : stream_error_text(s), LOG_KV_END);
		fail_client(c, SQLSTATE_CONNECTION_FAILURE,
			    c->state == CL_LOGIN ? "server closed the connection during login"
						 : "server closed the connection unexpectedly", NULL);
		break;
	}
}

/* ---- accept ---------------------------------------------------------------- */

static void on_login_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	(void)fd;
	(void)what;
	if (c->state == CL_ACTIVE || c->state == CL_ADMIN || c->state == CL_CLOSING)
		return;
	if (c->state == CL_GATE) {
		refuse_at_gate(c);
		return;
	}
	fail_client(c, SQLSTATE_CONNECTION_FAILURE, "login timed out (client_login_timeout)", NULL);
}

static void start_stream(struct client *c, bool direct_tls)
{
	int fd = c->peek_fd;
	c->peek_fd = -1;
	if (direct_tls) {
		SSL *ssl = SSL_new(c->px->client_tls);
		if (!ssl) {
			close(fd);
			client_close(c, "cannot start TLS");
			return;
		}
		c->direct_tls = true;
		c->ssl_negotiated = true;
		c->state = CL_TLS_HANDSHAKE;
		c->cs = stream_new_tls(c->px->base, fd, ssl, true, on_client_stream, c);
	} else {
		c->state = CL_STARTUP;
		c->cs = stream_new_plain(c->px->base, fd, on_client_stream, c);
	}
	if (!c->cs)
		client_close(c, "out of memory");
}

/* The first byte tells a direct TLS ClientHello (0x16, PostgreSQL 17's
 * sslnegotiation=direct) from a startup packet, whose first byte is the high
 * byte of a length of at most 10000, i.e. 0. Peeking leaves it for OpenSSL. */
static void on_first_byte(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	(void)what;
	uint8_t first;
	ssize_t n = recv(fd, &first, 1, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		event_add(c->peek_ev, NULL);
		return;
	}
	if (n <= 0) {
		client_close(c, "client closed the connection before sending anything");
		return;
	}
	start_stream(c, first == 0x16 && c->px->client_tls != NULL);
}

void client_accept(struct proxy *px, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->px = px;
	c->id = ++px->next_conn_id;
	c->peek_fd = fd;
	c->state = CL_PEEK;
	gettimeofday(&c->started, NULL);
	net_format_addr(addr, addrlen, c->addr, sizeof(c->addr));
	c->next = px->clients;
	if (px->clients)
		px->clients->prev = c;
	px->clients = c;
	px->stats.clients_accepted++;
	if (addr->sa_family != AF_UNIX) {
		net_tune_socket(fd, px->cfg);
	} else {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		c->peer_same_uid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == geteuid();
	}
	c->peek_ev = event_new(px->base, fd, EV_READ, on_first_byte, c);
	c->login_timer = evtimer_new(px->base, on_login_timeout, c);
	if (!c->peek_ev || !c->login_timer) {
		client_close(c, "out of memory");
		return;
	}
	event_add(c->peek_ev, NULL);
	int64_t ms = px->cfg->client_login_timeout_ms;
	if (ms > 0) {
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		evtimer_add(c->login_timer, &tv);
	}
}

/* ---- cancel support ------------------------------------------------------ */

bool client_cancel_target(struct proxy *px, uint32_t pid, const uint8_t *key, size_t key_len,
			  uint32_t *server_pid, uint8_t *server_key, size_t *server_key_len)
{
	for (struct client *c = px->clients; c; c = c->next) {
		if (c->key_pid != pid || key_len != 4 || !c->ss || !c->server_key_len)
			continue;
		uint8_t mine[4] = { (uint8_t)(c->key_secret >> 24), (uint8_t)(c->key_secret >> 16),
				    (uint8_t)(c->key_secret >> 8), (uint8_t)c->key_secret };
		if (CRYPTO_memcmp(mine, key, 4) != 0)
			continue;
		*server_pid = c->server_pid;
		memcpy(server_key, c->server_key, c->server_key_len);
		*server_key_len = c->server_key_len;
		return true;
	}
	return false;
}
