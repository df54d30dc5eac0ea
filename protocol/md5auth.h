/* PostgreSQL's md5 password method: the stored form "md5" + hex(md5(password
 * + user)) and the salted challenge response "md5" + hex(md5(stored hex +
 * salt)). Pure computation, no I/O. */
#ifndef UUIDGATE_MD5AUTH_H
#define UUIDGATE_MD5AUTH_H

#include <stdbool.h>
#include <stdint.h>

#define MD5AUTH_LEN 35        /* "md5" + 32 hex digits */
#define MD5AUTH_SALT_LEN 4

/* True for a stored md5 secret: "md5" and 32 lowercase hex digits, exactly
 * PostgreSQL's test (anything else is a plain password to it). */
bool md5auth_is_secret(const char *s);

/* out = "md5" + hex(md5(password + user)), NUL-terminated. False only when
 * MD5 is unavailable (a FIPS-only OpenSSL). */
bool md5auth_hash(const char *password, const char *user, char out[MD5AUTH_LEN + 1]);

/* The response to an AuthenticationMD5Password challenge. secret is either a
 * stored md5 secret or a plain password (hashed with user first); false for a
 * SCRAM secret, which cannot answer md5. */
bool md5auth_response(const char *secret, const char *user,
                      const uint8_t salt[MD5AUTH_SALT_LEN], char out[MD5AUTH_LEN + 1]);

/* Checks a client's PasswordMessage answer to our challenge, in constant
 * time. secret is a stored md5 secret or a plain password; like PostgreSQL
 * and pgbouncer, an empty plain password never matches. */
bool md5auth_check(const char *secret, const char *user, const uint8_t salt[MD5AUTH_SALT_LEN],
                   const char *client_response);

#endif
