#include "pgbuf.h"

#include <stdlib.h>
#include <string.h>

void pgbuf_init(struct pgbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void pgbuf_free(struct pgbuf *b)
{
	free(b->data);
	pgbuf_init(b);
}

void pgbuf_reset(struct pgbuf *b)
{
	b->len = 0;
	b->failed = false;
}

bool pgbuf_failed(const struct pgbuf *b)
{
	return b->failed;
}

static bool pgbuf_reserve(struct pgbuf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (extra > SIZE_MAX / 2 - b->len) {
		b->failed = true;
		return false;
	}
	if (b->len + extra <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void pgbuf_put_bytes(struct pgbuf *b, const void *p, size_t n)
{
	if (n == 0 || !pgbuf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void pgbuf_put_u8(struct pgbuf *b, uint8_t v)
{
	pgbuf_put_bytes(b, &v, 1);
}

void pgbuf_put_int16(struct pgbuf *b, int16_t v)
{
	uint16_t u = (uint16_t)v;
	uint8_t be[2] = { (uint8_t)(u >> 8), (uint8_t)u };
	pgbuf_put_bytes(b, be, 2);
}

void pgbuf_put_int32(struct pgbuf *b, int32_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t be[4] = { (uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u };
	pgbuf_put_bytes(b, be, 4);
}

void pgbuf_put_str(struct pgbuf *b, const char *s)
{
	pgbuf_put_bytes(b, s, strlen(s) + 1);
}

size_t pgbuf_begin_msg(struct pgbuf *b, char type)
{
	pgbuf_put_u8(b, (uint8_t)type);
	return pgbuf_begin_packet(b);
}

size_t pgbuf_begin_packet(struct pgbuf *b)
{
	size_t start = b->len;
	pgbuf_put_int32(b, 0);
	return start;
}

void pgbuf_end_msg(struct pgbuf *b, size_t start)
{
	if (b->failed || start + 4 > b->len)
		return;
	uint32_t n = (uint32_t)(b->len - start);
	b->data[start] = (uint8_t)(n >> 24);
	b->data[start + 1] = (uint8_t)(n >> 16);
	b->data[start + 2] = (uint8_t)(n >> 8);
	b->data[start + 3] = (uint8_t)n;
}
