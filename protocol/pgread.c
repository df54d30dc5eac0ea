#include "pgread.h"

#include <string.h>

void pgread_init(struct pgread *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->bad = false;
}

bool pgread_ok(const struct pgread *r)
{
	return !r->bad;
}

size_t pgread_remaining(const struct pgread *r)
{
	return r->len - r->pos;
}

bool pgread_at_end(const struct pgread *r)
{
	return !r->bad && r->pos == r->len;
}

uint32_t pg_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint16_t pg_get_u16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

const uint8_t *pgread_bytes(struct pgread *r, size_t n)
{
	if (r->bad || n > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *at = r->p + r->pos;
	r->pos += n;
	return at;
}

uint8_t pgread_u8(struct pgread *r)
{
	const uint8_t *p = pgread_bytes(r, 1);
	return p ? p[0] : 0;
}

int16_t pgread_int16(struct pgread *r)
{
	const uint8_t *p = pgread_bytes(r, 2);
	return p ? (int16_t)pg_get_u16(p) : 0;
}

int32_t pgread_int32(struct pgread *r)
{
	const uint8_t *p = pgread_bytes(r, 4);
	return p ? (int32_t)pg_get_u32(p) : 0;
}

const char *pgread_str(struct pgread *r)
{
	if (r->bad)
		return NULL;
	const uint8_t *start = r->p + r->pos;
	const uint8_t *nul = memchr(start, 0, r->len - r->pos);
	if (!nul) {
		r->bad = true;
		return NULL;
	}
	r->pos += (size_t)(nul - start) + 1;
	return (const char *)start;
}
