/* What the client modules share: the client struct and the functions that
 * pass a client from one phase to the next. Private to proxy/client*.c. */
#ifndef UUIDGATE_CLIENT_INTERNAL_H
#define UUIDGATE_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include <event2/buffer.h>

#include "auth.h"
#include "client.h"
#include "pgbuf.h"
#include "relay.h"
#include "server.h"
#include "startup.h"
#include "stream.h"

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
	struct pgquery *auth_lookup;     /* auth_query running for this client */
	struct server_auth *sauth;
	char *secret;
	struct rwsess *rw;               /* INSERT rewriting; NULL: plain relay */
	bool probing;                    /* swallowing the answer to the search_path probe */
	uint8_t login_ready_status;
	struct relay c2s;
	struct relay s2c;
	struct timeval started;
};


/* client.c: lifecycle, sending, the startup phase and stream events */
const char *client_user(const struct client *c);
const char *client_database(const struct client *c);
void client_close(struct client *c, const char *reason);
void client_fail(struct client *c, const char *sqlstate, const char *message, const char *hint);
void client_send(struct client *c, const struct pgbuf *b);
void client_send_server(struct client *c, const struct pgbuf *b);
void client_forward_whole(struct evbuffer *in, struct stream *to, long total);
void client_on_stream(struct stream *s, enum stream_event ev, void *arg);
void client_on_server_stream(struct stream *s, enum stream_event ev, void *arg);

/* client_login.c: authentication and the login relayed to the server */
typedef bool (*message_fn)(struct client *c, uint8_t type, const uint8_t *msg, long total);
void client_each_message(struct client *c, struct evbuffer *in, uint32_t max, enum client_state state,
                         message_fn fn);
void client_connect_server(struct client *c);
void client_begin_auth(struct client *c);
void client_auth_input(struct client *c);
void client_login_from_server(struct client *c);
void client_login_from_client(struct client *c);
void client_new_cancel_key(struct client *c);
void client_auth_failed(struct client *c, const char *sqlstate, const char *err);

/* client_session.c: the gate, the admin console, the relay after login */
void client_pass_gate(struct client *c);
void client_admin_login(struct client *c);
void client_admin_start(struct client *c);
void client_refuse_at_gate(struct client *c);
void client_admin_input(struct client *c);
void client_relay_up(struct client *c);
void client_relay_down(struct client *c);

#endif
