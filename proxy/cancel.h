/* Forwarding a client's CancelRequest to the server its session runs on. */
#ifndef UUIDGATE_CANCEL_H
#define UUIDGATE_CANCEL_H

#include <stddef.h>
#include <stdint.h>

#include "proxy.h"

/* The key is the one uuidgate issued; a match opens a new connection to the
 * server and sends the server's own key. Nothing is answered to the sender,
 * as PostgreSQL answers nothing. */
void cancel_request(struct proxy *px, uint32_t pid, const uint8_t *key, size_t key_len,
                    const char *from);

/* Sends a CancelRequest with the server's own key on a new connection. */
void cancel_server(struct proxy *px, uint32_t server_pid, const uint8_t *key, size_t key_len);

/* Frees the requests still on their way (at exit). */
void cancel_free_all(void);

#endif
