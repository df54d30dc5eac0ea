/* PostgreSQL v3 protocol messages: framing checks, builders for the messages
 * the proxy originates, and parsers for the ones it inspects. Pure: bytes in,
 * structs out. */
#ifndef UUIDGATE_MESSAGE_H
#define UUIDGATE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgbuf.h"

#define PG_HEADER_LEN 5                 /* type byte + int32 length */
#define PG_PRE_AUTH_MAX_MESSAGE 65536   /* any message before login completes */
#define PG_DEFAULT_MAX_MESSAGE 0x40000000u /* 1 GB, the server's own limit */

enum pgmsg_status {
	PGMSG_OK,
	PGMSG_NEED_MORE,   /* fewer than PG_HEADER_LEN bytes */
	PGMSG_BAD_LENGTH,  /* length field below 4 (or negative) */
	PGMSG_TOO_LARGE,   /* length field above the allowed maximum */
};

/* Reads a typed message header. *total is the whole message including the
 * type byte; it is checked against max_len (which counts the length field and
 * body, as the protocol does). */
enum pgmsg_status pgmsg_header(const uint8_t *buf, size_t len, uint32_t max_len,
                               uint8_t *type, uint32_t *total);

/* SQLSTATEs the proxy itself raises. */
#define SQLSTATE_PROTOCOL_VIOLATION "08P01"
#define SQLSTATE_CONNECTION_FAILURE "08006"
#define SQLSTATE_CANNOT_CONNECT_NOW "57P03"
#define SQLSTATE_ADMIN_SHUTDOWN "57P01"
#define SQLSTATE_TOO_MANY_CONNECTIONS "53300"
#define SQLSTATE_INVALID_AUTHORIZATION "28000"
#define SQLSTATE_INVALID_PASSWORD "28P01"
#define SQLSTATE_FEATURE_NOT_SUPPORTED "0A000"
#define SQLSTATE_PROGRAM_LIMIT "54000"
#define SQLSTATE_QUERY_CANCELED "57014"
#define SQLSTATE_INTERNAL_ERROR "XX000"
#define SQLSTATE_CONNECTION_EXCEPTION "08000"
#define SQLSTATE_UNABLE_TO_CONNECT "08001"
#define SQLSTATE_INVALID_DATABASE "3D000"

struct pg_error {
	const char *severity;  /* "FATAL", "ERROR", ... (non-localized) */
	const char *sqlstate;
	const char *message;
	const char *detail;    /* may be NULL */
	const char *hint;      /* may be NULL */
};

/* ErrorResponse ('E') or NoticeResponse ('N') with the given fields. */
void pgmsg_put_error(struct pgbuf *b, char type, const struct pg_error *e);
/* Convenience for the common FATAL case. */
void pgmsg_put_fatal(struct pgbuf *b, const char *sqlstate, const char *message,
                     const char *hint);

/* Parses the body of an ErrorResponse/NoticeResponse (after the 5-byte header).
 * Fields point into body; a missing field is NULL, never a crash. Returns false
 * when the body is not a well-formed field list. */
bool pgmsg_parse_error(const uint8_t *body, size_t len, struct pg_error *out);

void pgmsg_put_auth_ok(struct pgbuf *b);
void pgmsg_put_parameter_status(struct pgbuf *b, const char *name, const char *value);
void pgmsg_put_backend_key(struct pgbuf *b, uint32_t pid, uint32_t key);
void pgmsg_put_ready(struct pgbuf *b, char tx_status);
/* NegotiateProtocolVersion: the newest minor version we speak plus the
 * protocol options we did not recognise. */
void pgmsg_put_negotiate(struct pgbuf *b, int minor, const char *const *unknown, size_t n);

/* Authentication request codes ('R' messages). */
enum pg_auth_code {
	PG_AUTH_OK = 0,
	PG_AUTH_CLEARTEXT = 3,
	PG_AUTH_MD5 = 5,
	PG_AUTH_GSS = 7,
	PG_AUTH_GSS_CONTINUE = 8,
	PG_AUTH_SSPI = 9,
	PG_AUTH_SASL = 10,
	PG_AUTH_SASL_CONTINUE = 11,
	PG_AUTH_SASL_FINAL = 12,
};

/* Rewrites an AuthenticationSASL body (after the header) into out as a whole
 * 'R' message whose mechanism list leaves out the channel-binding variants
 * (which cannot cross a TLS-terminating proxy). Returns false on a malformed
 * list or when nothing would be left. */
bool pgmsg_filter_sasl_mechanisms(const uint8_t *body, size_t len, struct pgbuf *out);

/* From a SASLInitialResponse body ('p' after login starts): the mechanism and
 * the gs2 channel-binding flag of the client-first message ('n', 'y', 'p'),
 * or 0 when it cannot be read. */
bool pgmsg_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
                              char *gs2_flag);

#endif
