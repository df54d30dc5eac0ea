/* A bounded reader over one message body. Every read checks what remains;
 * a short read sets a sticky error flag and returns a zero value, so a parser
 * can read all fields and check pgread_ok() once at the end. */
#ifndef UUIDGATE_PGREAD_H
#define UUIDGATE_PGREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgread {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool bad;
};

void pgread_init(struct pgread *r, const uint8_t *p, size_t len);
bool pgread_ok(const struct pgread *r);
size_t pgread_remaining(const struct pgread *r);
bool pgread_at_end(const struct pgread *r);

uint8_t pgread_u8(struct pgread *r);
int16_t pgread_int16(struct pgread *r);
int32_t pgread_int32(struct pgread *r);
/* Returns a pointer into the buffer, or NULL (and the error flag) when fewer
 * than n bytes remain. */
const uint8_t *pgread_bytes(struct pgread *r, size_t n);
/* A NUL-terminated String inside the buffer; NULL when no terminator. */
const char *pgread_str(struct pgread *r);

/* Big-endian helpers for code that peeks at a header without a reader. */
uint32_t pg_get_u32(const uint8_t *p);
uint16_t pg_get_u16(const uint8_t *p);

#endif
