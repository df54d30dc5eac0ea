/* The INSERT rewriter inside one client session: the message relay in both
 * directions when rewriting may happen, the statement map that follows the
 * server, and what the session's settings allow (encoding, strings,
 * search_path). Sessions without it use the plain relay. */
#ifndef UUIDGATE_RWSESS_H
#define UUIDGATE_RWSESS_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "relay.h"

struct proxy;
struct rwsess;

struct rwsess *rwsess_new(struct proxy *px, uint64_t conn_id, const char *addr);
void rwsess_free(struct rwsess *rw);

/* Whether the session still needs the inspecting relay: the window is open,
 * or statements it rewrote may still be bound. */
bool rwsess_needed(const struct rwsess *rw);

enum relay_status rwsess_client_to_server(struct rwsess *rw, struct evbuffer *in, struct evbuffer *out,
                                          struct relay *r, uint32_t max_len);
enum relay_status rwsess_server_to_client(struct rwsess *rw, struct evbuffer *in, struct evbuffer *out,
                                          struct relay *r);

/* The login probe: the query to send before the client sees its first
 * ReadyForQuery, and each server message of its answer; returns true when
 * the answer is complete (ReadyForQuery seen). */
const char *rwsess_probe_query(void);
bool rwsess_probe_message(struct rwsess *rw, uint8_t type, const uint8_t *body, size_t len);
/* ParameterStatus seen during login. */
void rwsess_parameter(struct rwsess *rw, const char *name, const char *value);

#endif
