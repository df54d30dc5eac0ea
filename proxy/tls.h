/* OpenSSL contexts for both legs. */
#ifndef UUIDGATE_TLS_H
#define UUIDGATE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

/* The context presented to clients; NULL with err when the files are unusable. */
SSL_CTX *tls_client_facing_ctx(const struct ug_config *cfg, char *err, size_t errlen);
/* The context for connecting to the server with libpq's sslmode semantics. */
SSL_CTX *tls_server_facing_ctx(int sslmode, const char *rootcert, const char *cert,
                               const char *key, char *err, size_t errlen);
/* After a direct-TLS handshake: PostgreSQL requires ALPN "postgresql". */
bool tls_alpn_is_postgresql(SSL *ssl);
/* Fills err with the first queued OpenSSL error, prefixed. */
void tls_error(char *err, size_t errlen, const char *what);

#endif
