/* SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, on both sides:
 * the proxy as server (authenticating its clients) and as client (logging in
 * to PostgreSQL). Pure: the caller moves the SASL payloads in and out of
 * AuthenticationSASLContinue/Final and SASLInitialResponse/SASLResponse
 * messages (see authmsg.h); this module only sees the SCRAM text. */
#ifndef UUIDGATE_SCRAM_H
#define UUIDGATE_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgbuf.h"

#define SCRAM_MECHANISM "SCRAM-SHA-256"
#define SCRAM_KEY_LEN 32                /* SHA-256 output */
#define SCRAM_DEFAULT_ITERATIONS 4096   /* PostgreSQL's default */
#define SCRAM_DEFAULT_SALT_LEN 16       /* PostgreSQL's default */
#define SCRAM_MAX_SALT_LEN 64
/* PBKDF2 cost is paid by whoever derives keys from a password; a hostile
 * server must not make the proxy spin for minutes. */
#define SCRAM_MAX_ITERATIONS 10000000
#define SCRAM_MAX_NONCE_LEN 1024
/* "SCRAM-SHA-256$" + iterations + 3 base64 fields, rounded up. */
#define SCRAM_SECRET_MAX_LEN 256

/* A stored SCRAM secret, as in pg_authid.rolpassword:
 * SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> */
struct scram_secret {
	int iterations;
	size_t salt_len;
	uint8_t salt[SCRAM_MAX_SALT_LEN];
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

enum scram_status {
	SCRAM_OK,
	SCRAM_MALFORMED,           /* not a SCRAM message per the RFC: 08P01 */
	SCRAM_CHANNEL_BINDING,     /* client asked for channel binding ('p'): 0A000 */
	SCRAM_UNSUPPORTED,         /* authzid, mandatory extension (m=): 0A000 */
	SCRAM_WRONG_PASSWORD,      /* proof does not match the secret: 28P01 */
	SCRAM_SERVER_REJECTED,     /* client side: the server sent e=<error> */
	SCRAM_SERVER_FORGED,       /* client side: bad server nonce or signature */
	SCRAM_SECRET_MISMATCH,     /* client side: server's salt/iterations differ
	                              from the secret the ClientKey belongs to */
	SCRAM_OUT_OF_ORDER,        /* a call that does not fit the exchange's state */
	SCRAM_INTERNAL,            /* allocation, randomness or crypto failure */
};

/* The SQLSTATE an ErrorResponse should carry for a failed status. */
const char *scram_status_sqlstate(enum scram_status st);

/* Parses a stored secret. False when s is not exactly a well-formed
 * SCRAM-SHA-256 secret (PostgreSQL then treats the string as a plain
 * password, and so does authfile_secret_kind()). */
bool scram_parse_secret(const char *s, struct scram_secret *out);
/* Formats a secret back into PostgreSQL's text form; false if out is too
 * small (SCRAM_SECRET_MAX_LEN always suffices). */
bool scram_format_secret(const struct scram_secret *sec, char *out, size_t outlen);

/* Derives a secret from a password, as CREATE ROLE ... PASSWORD does.
 * The password is SASLprep-normalized first, see scram_saslprep(). */
bool scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
                                int iterations, struct scram_secret *out);
/* The same with a fresh random salt of SCRAM_DEFAULT_SALT_LEN bytes. */
bool scram_secret_generate(const char *password, int iterations, struct scram_secret *out);

/* SASLprep (RFC 4013) of a password into a malloc'd string, or NULL on
 * allocation failure. Like PostgreSQL, a password that is not valid UTF-8 or
 * holds prohibited characters is used as is. ASCII passwords are always
 * unchanged. For other UTF-8 input, the RFC 3454 mappings are applied
 * (non-ASCII spaces to U+0020, "commonly mapped to nothing" characters
 * removed) but Unicode NFKC normalization and the bidirectional check are not:
 * the result matches PostgreSQL's whenever the password is already in NFKC
 * form, which holds for precomposed text as keyboards produce it, and differs
 * for compatibility characters (ligatures, full-width forms) and decomposed
 * sequences. */
char *scram_saslprep(const char *password);

/* ---- Server side: the proxy authenticates a client. ---- */

struct scram_server;

/* Starts an exchange against a stored secret (copied). NULL on allocation
 * failure. */
struct scram_server *scram_server_begin(const struct scram_secret *secret);
/* Starts an exchange that can never succeed but looks like a real one, for
 * users that do not exist, so that a client cannot probe user names. The salt
 * is derived from the user name and mock_key (random bytes the caller draws
 * once per process) so that it stays the same across attempts, as a real
 * user's salt does. */
struct scram_server *scram_server_begin_doomed(const char *user,
                                              const uint8_t mock_key[SCRAM_KEY_LEN]);
void scram_server_free(struct scram_server *st);

/* data is the client-first-message (the SASLInitialResponse payload). On
 * SCRAM_OK the server-first-message is appended to out (payload only, for
 * AuthenticationSASLContinue). On failure err holds a message for the client. */
enum scram_status scram_server_handle_client_first(struct scram_server *st,
                                                   const uint8_t *data, size_t len,
                                                   struct pgbuf *out,
                                                   char *err, size_t errlen);
/* data is the client-final-message (SASLResponse payload). On SCRAM_OK the
 * server-final-message is appended to out (for AuthenticationSASLFinal) and
 * the client's ClientKey is available. */
enum scram_status scram_server_handle_client_final(struct scram_server *st,
                                                   const uint8_t *data, size_t len,
                                                   struct pgbuf *out,
                                                   char *err, size_t errlen);
/* The ClientKey recovered from a verified proof; false before success. It
 * lets the proxy log in to a server that holds the same secret. */
bool scram_server_client_key(const struct scram_server *st, uint8_t out[SCRAM_KEY_LEN]);
/* Replaces the random server nonce part, before the client-first message;
 * only for reproducing published test vectors. */
bool scram_server_set_nonce(struct scram_server *st, const char *nonce);

/* ---- Client side: the proxy logs in to PostgreSQL. ---- */

struct scram_client;

/* With a password: keys are derived from the salt and iterations the server
 * sends. */
struct scram_client *scram_client_begin_password(const char *password);
/* With a ClientKey (recovered by scram_server_client_key()) and the stored
 * secret it belongs to: no password needed, but the server must hold the
 * same salt and iterations. */
struct scram_client *scram_client_begin_keys(const struct scram_secret *secret,
                                             const uint8_t client_key[SCRAM_KEY_LEN]);
void scram_client_free(struct scram_client *st);
/* Replaces the user name (empty by default: PostgreSQL uses the startup
 * packet's) and the random nonce, before scram_client_first(); only for
 * reproducing published test vectors. */
bool scram_client_set_identity(struct scram_client *st, const char *user, const char *nonce);

/* Appends the client-first-message to out (the SASLInitialResponse payload). */
enum scram_status scram_client_first(struct scram_client *st, struct pgbuf *out);
/* data is the server-first-message (AuthenticationSASLContinue payload); on
 * SCRAM_OK the client-final-message is appended to out. */
enum scram_status scram_client_handle_server_first(struct scram_client *st,
                                                   const uint8_t *data, size_t len,
                                                   struct pgbuf *out,
                                                   char *err, size_t errlen);
/* data is the server-final-message (AuthenticationSASLFinal payload).
 * SCRAM_OK only when the server proved it knows the ServerKey. */
enum scram_status scram_client_verify_server_final(struct scram_client *st,
                                                   const uint8_t *data, size_t len,
                                                   char *err, size_t errlen);

#endif
