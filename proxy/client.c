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
#include "cancel.h"
#include "client_internal.h"
#include "log.h"
#include "message.h"
#include "net.h"
#include "pgquery.h"
#include "pgread.h"
#include "rwsess.h"
#include "tls.h"

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
	out->user = client_user(c);
	out->database = c->have_startup ? client_database(c) : "";
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

const char *client_user(const struct client *c)
{
	const char *u = c->have_startup ? startup_get(&c->startup, "user") : NULL;
	return u ? u : "";
}

const char *client_database(const struct client *c)
{
	const char *d = c->have_startup ? startup_get(&c->startup, "database") : NULL;
	if (d && *d)
		return d;
	const char *up = c->px->upstream->dbname;
	return up ? up : client_user(c);
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
	pgquery_abort(c->auth_lookup);
	rwsess_free(c->rw);
	server_auth_free(c->sauth);
	auth_free_secret(c->secret);
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
	log_event(LOG_INFO, "client_disconnect", c->id, c->addr, "user", client_user(c), "db",
		  client_database(c), "reason", reason, "duration_s", secs, LOG_KV_END);
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
void client_close(struct client *c, const char *reason)
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

void client_send(struct client *c, const struct pgbuf *b)
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
	client_send(c, &b);
	pgbuf_free(&b);
}

/* A FATAL error goes out only where the client expects a message: never in
 * the middle of a server message being streamed to it. */
void client_fail(struct client *c, const char *sqlstate, const char *message, const char *hint)
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
	client_fail(c, sqlstate, message, NULL);
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
	client_send(c, &b);
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
		client_fail(c, sqlstate, why, hint);
		return;
	}
	c->counted = true;
	c->px->nclients++;
	negotiate_protocol(c);
	log_event(LOG_DEBUG, "startup", c->id, c->addr, "user", client_user(c), "db", client_database(c), LOG_KV_END);
	if (admin_is_console(client_database(c)))
		client_admin_login(c);
	else if (c->px->cfg->auth_type == AUTH_PASSTHROUGH)
		client_pass_gate(c);
	else
		client_begin_auth(c);
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
	c->cs = stream_new_tls(c->px->base, fd, ssl, true, client_on_stream, c);
	if (!c->cs)
		client_close(c, "cannot start TLS");
}

/* Returns true when the startup loop may go on reading packets. */
static bool ssl_request(struct client *c)
{
	if (c->ssl_negotiated || stream_is_tls(c->cs)) {
		client_fail(c, SQLSTATE_PROTOCOL_VIOLATION, "duplicate SSL request", NULL);
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
		client_fail(c, SQLSTATE_PROTOCOL_VIOLATION, "received unencrypted data after SSL request", NULL);
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
	client_fail(c, sqlstate, startup_status_text(st), NULL);
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

void client_on_stream(struct stream *s, enum stream_event ev, void *arg)
{
	struct client *c = arg;
	(void)s;
	switch (ev) {
	case STREAM_READ:
		if (c->state == CL_STARTUP)
			handle_startup_input(c);
		else if (c->state == CL_AUTH)
			client_auth_input(c);
		else if (c->state == CL_LOGIN)
			client_login_from_client(c);
		else if (c->state == CL_ACTIVE)
			client_relay_up(c);
		else if (c->state == CL_ADMIN)
			client_admin_input(c);
		else if (c->state == CL_CLOSING)
			evbuffer_drain(stream_input(c->cs), evbuffer_get_length(stream_input(c->cs)));
		break;
	case STREAM_DRAINED:
		if (c->state == CL_CLOSING) {
			client_free(c);
		} else if (c->ss && stream_read_paused(c->ss)) {
			stream_resume_read(c->ss);
			if (evbuffer_get_length(stream_input(c->ss)) > 0)
				client_relay_down(c);
		}
		break;
	case STREAM_TLS_READY:
		if (c->direct_tls && !tls_alpn_is_postgresql(stream_ssl(c->cs))) {
			client_fail(c, SQLSTATE_PROTOCOL_VIOLATION,
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

void client_on_server_stream(struct stream *s, enum stream_event ev, void *arg)
{
	struct client *c = arg;
	switch (ev) {
	case STREAM_READ:
		if (c->state == CL_LOGIN)
			client_login_from_server(c);
		else if (c->state == CL_ACTIVE)
			client_relay_down(c);
		break;
	case STREAM_DRAINED:
		if (stream_read_paused(c->cs)) {
			stream_resume_read(c->cs);
			if (c->state == CL_ACTIVE && evbuffer_get_length(stream_input(c->cs)) > 0)
				client_relay_up(c);
		}
		break;
	case STREAM_TLS_READY:
		break;
	case STREAM_EOF:
	case STREAM_ERROR:
		log_event(LOG_DEBUG, "server_closed", c->id, c->addr, "msg",
			  ev == STREAM_EOF ? "end of stream" : stream_error_text(s), LOG_KV_END);
		client_fail(c, SQLSTATE_CONNECTION_FAILURE,
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
		client_refuse_at_gate(c);
		return;
	}
	client_fail(c, SQLSTATE_CONNECTION_FAILURE, "login timed out (client_login_timeout)", NULL);
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
		c->cs = stream_new_tls(c->px->base, fd, ssl, true, client_on_stream, c);
	} else {
		c->state = CL_STARTUP;
		c->cs = stream_new_plain(c->px->base, fd, client_on_stream, c);
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

