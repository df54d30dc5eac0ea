/* Opening a connection to the database server: DNS, TCP or Unix socket,
 * the SSLRequest exchange and the TLS handshake. The caller gets a ready
 * stream (or an error) through one callback. */
#ifndef UUIDGATE_SERVER_H
#define UUIDGATE_SERVER_H

#include <stdbool.h>

#include "proxy.h"
#include "stream.h"

struct server_connect;

/* stream is NULL on failure, with error saying why. */
typedef void (*server_ready_fn)(struct stream *stream, const char *error, void *arg);

/* use_tls: follow the upstream's sslmode; false for cancel requests. */
struct server_connect *server_connect_start(struct proxy *px, bool use_tls, server_ready_fn cb,
                                            void *arg);
/* Abandons a connection attempt; the callback is not called. */
void server_connect_abort(struct server_connect *sc);

#endif
