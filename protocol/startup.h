/* The untyped packets a client may send first: SSLRequest, GSSENCRequest,
 * CancelRequest and StartupMessage. */
#ifndef UUIDGATE_STARTUP_H
#define UUIDGATE_STARTUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgbuf.h"

#define STARTUP_MAX_PACKET 10000
#define STARTUP_CANCEL_KEY_MAX 256
#define PG_PROTOCOL_SSL ((1234u << 16) | 5679u)
#define PG_PROTOCOL_GSSENC ((1234u << 16) | 5680u)
#define PG_PROTOCOL_CANCEL ((1234u << 16) | 5678u)

enum startup_kind {
	STARTUP_SSL_REQUEST,
	STARTUP_GSSENC_REQUEST,
	STARTUP_CANCEL,
	STARTUP_MESSAGE,
};

enum startup_status {
	STARTUP_OK,
	STARTUP_NEED_MORE,
	STARTUP_BAD_LENGTH,     /* shorter than 8 or longer than STARTUP_MAX_PACKET */
	STARTUP_BAD_VERSION,    /* a protocol major version other than 3 */
	STARTUP_MALFORMED,      /* parameters not NUL-terminated pairs, etc. */
	STARTUP_NO_MEMORY,
};

struct startup_param {
	const char *name;
	const char *value;
};

struct startup_packet {
	enum startup_kind kind;
	uint32_t packet_len;
	uint16_t major;
	uint16_t minor;
	uint32_t cancel_pid;
	size_t cancel_key_len;
	uint8_t cancel_key[STARTUP_CANCEL_KEY_MAX];
	/* StartupMessage only; protocol options (_pq_.*) are kept apart since
	 * the proxy never forwards them. */
	struct startup_param *params;
	size_t nparams;
	const char **protocol_options;
	size_t noptions;
	char *storage;
};

/* Parses the first packet in buf. On STARTUP_OK, *out owns copies of every
 * string and out->packet_len says how many bytes it took. */
enum startup_status startup_parse(const uint8_t *buf, size_t len, struct startup_packet *out);
void startup_free(struct startup_packet *p);
const char *startup_get(const struct startup_packet *p, const char *name);
const char *startup_status_text(enum startup_status s);

/* Builders for the server leg. */
void startup_put_ssl_request(struct pgbuf *b);
void startup_put_cancel(struct pgbuf *b, uint32_t pid, const uint8_t *key, size_t key_len);
/* A 3.0 StartupMessage with the given parameters (already filtered). */
void startup_put_message(struct pgbuf *b, const struct startup_param *params, size_t n);

#endif
