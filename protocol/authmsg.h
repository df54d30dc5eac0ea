/* The authentication messages around SCRAM, md5 and cleartext exchanges, in
 * both directions: the proxy challenges clients as a server would, and
 * answers servers as a client would. Builders append whole messages to a
 * pgbuf; parsers take a message body (after the type byte and length) and
 * point into it. */
#ifndef UUIDGATE_AUTHMSG_H
#define UUIDGATE_AUTHMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgbuf.h"

/* ---- proxy as server: 'R' requests to a client ---- */

/* AuthenticationSASL with the given mechanism names. */
void authmsg_put_sasl(struct pgbuf *b, const char *const *mechanisms, size_t n);
void authmsg_put_sasl_continue(struct pgbuf *b, const uint8_t *data, size_t len);
void authmsg_put_sasl_final(struct pgbuf *b, const uint8_t *data, size_t len);
void authmsg_put_md5_request(struct pgbuf *b, const uint8_t salt[4]);
void authmsg_put_cleartext_request(struct pgbuf *b);

/* ---- proxy as server: a client's 'p' answers ----
 * The 'p' type byte is shared; which one it is follows from the request the
 * proxy sent. */

/* PasswordMessage (cleartext password or md5 response): exactly one String
 * filling the body, as PostgreSQL requires. */
bool authmsg_parse_password(const uint8_t *body, size_t len, const char **password);
/* SASLInitialResponse: mechanism, then Int32 length and that many bytes
 * (-1: none, *data NULL). */
bool authmsg_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
                                const uint8_t **data, size_t *data_len);
/* SASLResponse: the whole body is the SASL payload (never empty). */
bool authmsg_parse_sasl_response(const uint8_t *body, size_t len, const uint8_t **data,
                                 size_t *data_len);

/* ---- proxy as client: answers to a server ---- */

void authmsg_put_password(struct pgbuf *b, const char *password);
void authmsg_put_sasl_initial(struct pgbuf *b, const char *mechanism, const uint8_t *data,
                              size_t len);
void authmsg_put_sasl_response(struct pgbuf *b, const uint8_t *data, size_t len);

/* ---- proxy as client: a server's 'R' request ---- */

struct authmsg_request {
	int32_t code;            /* enum pg_auth_code from message.h */
	uint8_t md5_salt[4];     /* PG_AUTH_MD5 */
	bool offers_scram;       /* PG_AUTH_SASL: SCRAM-SHA-256 is listed */
	const uint8_t *data;     /* PG_AUTH_SASL_CONTINUE/FINAL payload, into body */
	size_t data_len;
};

/* False when the body does not have the shape its code demands. Codes the
 * proxy does not speak (GSS, SSPI, ...) parse with their code only. */
bool authmsg_parse_request(const uint8_t *body, size_t len, struct authmsg_request *out);

#endif
