/* The proxy process: event loop, listeners, the list of clients, signals. */
#ifndef UUIDGATE_PROXY_H
#define UUIDGATE_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "config.h"
#include "upstream.h"
#include "uuidv7.h"

struct authfile;
struct client;
struct gate;
struct http_server;
struct uuid_tables;
struct evdns_base;

enum proxy_state { PROXY_RUNNING, PROXY_SHUTTING_DOWN };

#define PROXY_MAX_LISTENERS 8

struct proxy_stats {
	uint64_t clients_accepted;
	uint64_t logins;
	uint64_t login_failures;
	uint64_t cancels_forwarded;
	uint64_t protocol_errors;
	uint64_t bytes_client_to_server;
	uint64_t bytes_server_to_client;
	uint64_t messages_client_to_server;
	uint64_t messages_server_to_client;
	uint64_t rewrite_statements;   /* INSERTs rewritten */
	uint64_t rewrite_values;       /* UUIDv7 values generated */
	uint64_t rewrite_passed_settings;  /* INSERTs left alone: client_encoding or strings */
	uint64_t rewrite_passed_uncertain; /* INSERTs left alone: not certainly a migrated table */
};

/* Errors uuidgate itself sent to clients, by SQLSTATE. */
#define PROXY_MAX_ERROR_CODES 32
struct proxy_error_count {
	char sqlstate[6];
	uint64_t count;
};

struct proxy {
	struct event_base *base;
	struct evdns_base *dns;
	struct ug_config *cfg;
	const char *config_path;
	struct config_overrides flags;      /* re-applied on every reload */
	struct upstream *upstream;
	SSL_CTX *client_tls;
	struct evconnlistener *listeners[PROXY_MAX_LISTENERS];
	int nlisteners;
	char unix_socket_path[256];
	struct client *clients;     /* every connection, from accept to close */
	int nclients;               /* connections that sent a StartupMessage */
	uint64_t next_conn_id;
	enum proxy_state state;
	bool fast_shutdown;
	bool paused;                /* PAUSE: new sessions wait at the gate */
	struct event *signals[5];
	struct event *shutdown_timer;
	struct proxy_stats stats;
	struct proxy_error_count errors[PROXY_MAX_ERROR_CODES];
	struct gate *gate;
	struct uuid_tables *tables;         /* migrated tables the rewriter may fill */
	struct uuidv7_gen uuidgen;          /* one generator: values stay monotonic */
	struct http_server *http;
	int exit_code;
	struct authfile *authfile;          /* NULL when auth_file is not set */
	uint8_t scram_mock_key[32];         /* fake salts for unknown users */
};

struct proxy *proxy_new(struct ug_config *cfg, const char *config_path, const struct config_overrides *flags,
                        char *err, size_t errlen);
int proxy_run(struct proxy *px);
void proxy_free(struct proxy *px);

/* The stored secret for user from auth_file, or NULL. */
const char *proxy_user_secret(struct proxy *px, const char *user);

/* Called by the client code when a connection is gone, to finish a shutdown. */
void proxy_client_gone(struct proxy *px);
/* The gate opened: held clients go on to the server. */
void proxy_gate_opened(struct proxy *px);
/* The migration made progress (for the service manager's status line). */
void proxy_gate_progress(struct proxy *px);
/* Whether INSERTs are rewritten now (insert_uuid and its window). */
bool proxy_insert_uuid_active(struct proxy *px);

/* SIGHUP and the admin console's RELOAD. */
void proxy_reload(struct proxy *px);
/* SIGTERM and the admin console's SHUTDOWN. */
void proxy_shutdown(struct proxy *px, bool fast, const char *why);
/* RESUME: sessions held by PAUSE go on. */
void proxy_resume(struct proxy *px);
/* Leaves the event loop; the process exits with code. */
void proxy_exit(struct proxy *px, int code);
void proxy_count_error(struct proxy *px, const char *sqlstate);

/* During a fast shutdown, closes c once its session has become idle. */
void proxy_close_idle_if_draining(struct proxy *px, struct client *c);

#endif
