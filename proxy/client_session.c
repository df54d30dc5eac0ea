/* A client after login: held at the gate, served by the admin console, or
 * relayed to its server. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "admin.h"
#include "client_internal.h"
#include "gate.h"
#include "log.h"
#include "message.h"
#include "proxy.h"
#include "rwsess.h"

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

void client_relay_up(struct client *c)
{
	uint32_t max = (uint32_t)c->px->cfg->max_packet_size;
	drop_rewriter_if_done(c);
	enum relay_status st = c->rw ? rwsess_client_to_server(c->rw, stream_input(c->cs), stream_output(c->ss), &c->c2s, max)
				     : relay_forward(stream_input(c->cs), stream_output(c->ss), &c->c2s, max);
	apply_backpressure(c->cs, c->ss);
	if (st == RELAY_TOO_LARGE)
		client_fail(c, SQLSTATE_PROTOCOL_VIOLATION, "message too large (max_packet_size)", NULL);
	else if (st != RELAY_OK)
		client_fail(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length", NULL);
}

void client_relay_down(struct client *c)
{
	enum relay_status st = c->rw ? rwsess_server_to_client(c->rw, stream_input(c->ss), stream_output(c->cs), &c->s2c)
				     : relay_forward(stream_input(c->ss), stream_output(c->cs), &c->s2c, 0x7fffffffu);
	apply_backpressure(c->ss, c->cs);
	if (st != RELAY_OK) {
		client_fail(c, SQLSTATE_PROTOCOL_VIOLATION, "server sent an invalid message", NULL);
		return;
	}
	if (c->s2c.saw_ready) {
		c->tx_status = c->s2c.ready_status;
		proxy_close_idle_if_draining(c->px, c);
	}
}

static void arm_timer(struct event *timer, int64_t ms)
{
	evtimer_del(timer);
	if (ms > 0) {
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		evtimer_add(timer, &tv);
	}
}

void client_refuse_at_gate(struct client *c)
{
	char text[600];
	gate_describe(c->px->gate, text, sizeof(text));
	client_fail(c, SQLSTATE_CANNOT_CONNECT_NOW, text,
		    "retry in a moment; uuidgate opens the gate when the migration is complete");
}

/* While held, gate_timeout bounds the wait instead of client_login_timeout. */
static void hold_at_gate(struct client *c)
{
	c->state = CL_GATE;
	arm_timer(c->login_timer, c->px->cfg->gate_timeout_ms);
	log_event(LOG_DEBUG, "client_held", c->id, c->addr, "user", client_user(c), "db", client_database(c), LOG_KV_END);
}

void client_gate_opened(struct client *c)
{
	if (c->state != CL_GATE)
		return;
	arm_timer(c->login_timer, c->px->cfg->client_login_timeout_ms);
	client_connect_server(c);
}

void client_pass_gate(struct client *c)
{
	struct gate *g = c->px->gate;
	if (!gate_guards(g, client_database(c))) {
		client_connect_server(c);
		return;
	}
	bool refuse = !c->px->paused &&
		      (c->px->cfg->gate_mode == GATE_MODE_REFUSE || gate_state(g) == GATE_NOT_APPLICABLE);
	if (refuse)
		client_refuse_at_gate(c);
	else
		hold_at_gate(c);
}

void client_admin_start(struct client *c)
{
	struct pgbuf out;
	c->admin = true;
	c->state = CL_ADMIN;
	evtimer_del(c->login_timer);
	client_new_cancel_key(c);
	pgbuf_init(&out);
	admin_put_welcome(&out, client_user(c), c->key_pid, c->key_secret);
	client_send(c, &out);
	pgbuf_free(&out);
	log_event(LOG_INFO, "admin_login", c->id, c->addr, "user", client_user(c), LOG_KV_END);
}

/* Same-user peers on the Unix socket are trusted (they could read the
 * configuration anyway); everyone else must be in admin_users and prove it
 * against auth_file. */
void client_admin_login(struct client *c)
{
	if (c->peer_same_uid) {
		client_admin_start(c);
		return;
	}
	if (!admin_user_allowed(c->px, client_user(c))) {
		client_auth_failed(c, SQLSTATE_INVALID_AUTHORIZATION, "not allowed to connect to the uuidgate admin console");
		return;
	}
	c->wants_admin = true;
	client_begin_auth(c);
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
	client_send(c, &out);
	pgbuf_free(&out);
	if (!alive)
		client_close(c, "closed by the admin console");
	return alive;
}

void client_admin_input(struct client *c)
{
	client_each_message(c, stream_input(c->cs), PG_PRE_AUTH_MAX_MESSAGE, CL_ADMIN, admin_client_message);
}

