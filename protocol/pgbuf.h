/* A growable byte buffer for building protocol messages. Pure memory, no I/O.
 * Allocation failure is sticky: every later put is a no-op and pgbuf_failed()
 * reports it once, so builders need no error check per field. */
#ifndef UUIDGATE_PGBUF_H
#define UUIDGATE_PGBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;
};

void pgbuf_init(struct pgbuf *b);
void pgbuf_free(struct pgbuf *b);
void pgbuf_reset(struct pgbuf *b);
bool pgbuf_failed(const struct pgbuf *b);

void pgbuf_put_u8(struct pgbuf *b, uint8_t v);
void pgbuf_put_int16(struct pgbuf *b, int16_t v);
void pgbuf_put_int32(struct pgbuf *b, int32_t v);
void pgbuf_put_bytes(struct pgbuf *b, const void *p, size_t n);
/* A C string followed by its NUL terminator, as the protocol's String type. */
void pgbuf_put_str(struct pgbuf *b, const char *s);

/* Starts a typed message (type byte and a length placeholder); returns the
 * offset that pgbuf_end_msg() needs to patch the length. */
size_t pgbuf_begin_msg(struct pgbuf *b, char type);
void pgbuf_end_msg(struct pgbuf *b, size_t start);
/* The same for the untyped startup-phase packets (length first). */
size_t pgbuf_begin_packet(struct pgbuf *b);

#endif
