/* Proxy-side authentication: uuidgate challenges the client itself (trust,
 * md5 or SCRAM-SHA-256 against a secret from auth_file or auth_query), then
 * answers the server's own challenge with that secret, or for SCRAM with the
 * ClientKey recovered from the client's proof. */
#ifndef UUIDGATE_AUTH_H
#define UUIDGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authfile.h"
#include "pgbuf.h"
#include "scram.h"

enum auth_result {
	AUTH_CONTINUE,   /* send `out` and wait for the peer's next message */
	AUTH_DONE,       /* authenticated (client side) / logged in (server side) */
	AUTH_FAILED,     /* err and sqlstate say why */
};

struct client_auth;

/* Wipes a secret's bytes, then frees it. */
void auth_free_secret(char *secret);

/* Forgets the SCRAM secrets derived from plain passwords (auth_file reload). */
void auth_forget_derived_secrets(void);

/* Starts challenging a client. secret is NULL for an unknown user, who gets
 * an exchange that looks real but cannot succeed. The first challenge (none
 * for trust) is appended to out; AUTH_DONE means no challenge is needed. */
enum auth_result client_auth_begin(struct client_auth **out_state, const char *user,
                                   const char *secret, enum authfile_method configured,
                                   const uint8_t mock_key[SCRAM_KEY_LEN], struct pgbuf *out,
                                   const char **sqlstate, char *err, size_t errlen);
/* One 'p' message body from the client. */
enum auth_result client_auth_step(struct client_auth *st, const uint8_t *body, size_t len,
                                  struct pgbuf *out, const char **sqlstate, char *err,
                                  size_t errlen);
void client_auth_free(struct client_auth *st);

struct server_auth;

/* secret: the user's stored secret; st_client: the finished client exchange
 * (for SCRAM keys), may be NULL. */
struct server_auth *server_auth_new(const char *user, const char *secret,
                                    const struct client_auth *st_client);
/* One 'R' message body from the server; the answer, if any, goes to out. */
enum auth_result server_auth_step(struct server_auth *st, const uint8_t *body, size_t len,
                                  struct pgbuf *out, char *err, size_t errlen);
void server_auth_free(struct server_auth *st);

#endif
