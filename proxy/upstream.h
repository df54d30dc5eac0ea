/* Where the database server is and how to reach it, from a libpq connection
 * string or URL (parsed by libpq itself). */
#ifndef UUIDGATE_UPSTREAM_H
#define UUIDGATE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

struct upstream {
	char *host;        /* host name, IP address, or a Unix socket directory */
	char *hostaddr;    /* numeric address that overrides DNS, or NULL */
	char *port;
	char *dbname;
	char *user;
	char *password;
	int sslmode;       /* enum tls_mode */
	char *sslrootcert;
	char *sslcert;
	char *sslkey;
	bool unix_socket;
	char unix_path[108]; /* sizeof(sockaddr_un.sun_path) */
	SSL_CTX *tls;      /* NULL when sslmode is disable or the socket is local */
	struct upstream *retired; /* replaced by a reload; freed with this one */
};

/* Parses conninfo; returns NULL with err filled when it is unusable. */
struct upstream *upstream_new(const char *conninfo, char *err, size_t errlen);
void upstream_free(struct upstream *u);
/* A short description for logs, without the password. */
void upstream_describe(const struct upstream *u, char *buf, size_t len);

#endif
