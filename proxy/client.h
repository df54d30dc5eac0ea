/* One client connection, from accept to close: the startup phase (TLS,
 * cancel, protocol negotiation), the login relayed to the server, then the
 * message relay. */
#ifndef UUIDGATE_CLIENT_H
#define UUIDGATE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy.h"

enum client_state {
	CL_PEEK,          /* waiting for the first byte: plain or direct TLS */
	CL_TLS_HANDSHAKE,
	CL_STARTUP,       /* reading SSLRequest / GSSENCRequest / CancelRequest / StartupMessage */
	CL_AUTH,          /* uuidgate itself authenticating the client (auth_type other than passthrough) */
	CL_GATE,          /* held at the gate until the migration is complete */
	CL_SERVER_WAIT,   /* connecting to the server */
	CL_LOGIN,         /* authentication relayed between client and server */
	CL_ACTIVE,        /* logged in: messages relayed both ways */
	CL_ADMIN,         /* logged in to the admin console */
	CL_CLOSING,       /* flushing a last message before closing */
};

/* Takes ownership of fd, an accepted socket. */
void client_accept(struct proxy *px, int fd, const struct sockaddr *addr, socklen_t addrlen);
/* Closes a client with a FATAL error (sent when the protocol allows it). */
void client_terminate(struct client *c, const char *sqlstate, const char *message);
/* Idle: logged in, outside a transaction, nothing in flight. */
bool client_is_idle(const struct client *c);
/* The gate opened: a held client goes on to the server. */
void client_gate_opened(struct client *c);
/* For statistics: state, whether a server leg is open, relayed bytes and
 * messages so far. */
enum client_state client_get_state(const struct client *c);
bool client_has_server(const struct client *c);
void client_traffic(const struct client *c, uint64_t *bytes_c2s, uint64_t *bytes_s2c,
                    uint64_t *msgs_c2s, uint64_t *msgs_s2c);
struct client_info {
	uint64_t id;
	const char *addr;
	const char *user;
	const char *database;
	enum client_state state;
	bool tls;
	bool admin;
	double connected_seconds;
	uint64_t bytes_in;       /* from the client */
	uint64_t bytes_out;      /* to the client */
	char tx_status;          /* 'I', 'T', 'E' or 0 */
	uint32_t server_pid;     /* 0 without a server */
};
void client_get_info(const struct client *c, struct client_info *out);
struct client *client_find(struct proxy *px, uint64_t id);
/* At exit: frees every client without waiting for output to flush. */
void client_free_all(struct proxy *px);
struct client *client_next(struct client *c);
const char *client_state_name(enum client_state s);
/* Finds the logged-in client that owns the proxy-issued key (compared in
 * constant time) and returns its server's own key. */
bool client_cancel_target(struct proxy *px, uint32_t pid, const uint8_t *key, size_t key_len,
                          uint32_t *server_pid, uint8_t *server_key, size_t *server_key_len);

#endif
