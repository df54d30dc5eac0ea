#include "rewrite_ext.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgread.h"

#define SQLSTATE_PROTOCOL_VIOLATION "08P01"

static void put_u16(struct pgbuf *b, uint32_t v)
{
	uint8_t be[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	pgbuf_put_bytes(b, be, 2);
}

static void put_u32(struct pgbuf *b, uint32_t v)
{
	uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	pgbuf_put_bytes(b, be, 4);
}

static uint16_t read_u16(struct pgread *r)
{
	const uint8_t *p = pgread_bytes(r, 2);
	return p ? pg_get_u16(p) : 0;
}

enum rewrite_status rewrite_ext_parse(const struct rewrite_session *s, const uint8_t *body,
				      size_t len, struct pgbuf *out, struct rewrite_result *res)
{
	memset(res, 0, sizeof(*res));
	struct pgread r;
	pgread_init(&r, body, len);
	const char *name = pgread_str(&r);
	const char *sql = pgread_str(&r);
	uint16_t declared = read_u16(&r);
	const uint8_t *types = pgread_bytes(&r, (size_t)declared * 4);
	if (!pgread_at_end(&r))
		return REWRITE_PASS;

	enum rewrite_status st = rewrite_parse_sql(s, sql, declared, res);
	if (st != REWRITE_DONE)
		return st;
	size_t start = pgbuf_begin_msg(out, 'P');
	pgbuf_put_str(out, name);
	pgbuf_put_bytes(out, res->sql, res->sql_len + 1);
	put_u16(out, res->orig_params + res->extra_params);
	pgbuf_put_bytes(out, types, (size_t)declared * 4);
	for (uint32_t i = declared; i < res->orig_params; i++)
		put_u32(out, 0);
	for (uint32_t i = 0; i < res->extra_params; i++)
		put_u32(out, REWRITE_UUID_TYPE_OID);
	pgbuf_end_msg(out, start);
	if (pgbuf_failed(out)) {
		rewrite_result_free(res);
		return REWRITE_NO_MEMORY;
	}
	return REWRITE_DONE;
}

static enum rewrite_bind_status bind_error(struct rewrite_ext_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum rewrite_bind_status bind_error(struct rewrite_ext_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	err->sqlstate = SQLSTATE_PROTOCOL_VIOLATION;
	return REWRITE_BIND_ERROR;
}

enum rewrite_bind_status rewrite_ext_bind(const uint8_t *body, size_t len, uint32_t orig_params,
					  uint32_t extra_params, struct uuidv7_gen *gen,
					  struct pgbuf *out, struct rewrite_ext_error *err)
{
	struct pgread r;
	pgread_init(&r, body, len);
	const char *portal = pgread_str(&r);
	const char *stmt = pgread_str(&r);
	uint16_t n_formats = read_u16(&r);
	const uint8_t *formats = pgread_bytes(&r, (size_t)n_formats * 2);
	uint16_t n_params = read_u16(&r);
	if (!pgread_ok(&r))
		return bind_error(err, "insufficient data left in message");
	/* the server's own checks, in its order, with the client's counts */
	if (n_formats > 1 && n_formats != n_params)
		return bind_error(err, "bind message has %u parameter formats but %u parameters",
				  (unsigned)n_formats, (unsigned)n_params);
	if (n_params != orig_params)
		return bind_error(err,
				  "bind message supplies %u parameters, but prepared statement \"%.64s\" requires %u",
				  (unsigned)n_params, stmt, (unsigned)orig_params);
	size_t values_start = r.pos;
	for (uint32_t i = 0; i < n_params; i++) {
		const uint8_t *p = pgread_bytes(&r, 4);
		int32_t value_len = p ? (int32_t)pg_get_u32(p) : 0;
		if (value_len < -1 || (value_len > 0 && !pgread_bytes(&r, (size_t)value_len)))
			return bind_error(err, "insufficient data left in message");
	}
	size_t values_end = r.pos;
	uint16_t n_results = read_u16(&r);
	pgread_bytes(&r, (size_t)n_results * 2);
	if (!pgread_ok(&r))
		return bind_error(err, "insufficient data left in message");
	if (!pgread_at_end(&r))
		return bind_error(err, "invalid message format");
	if (orig_params + extra_params > REWRITE_MAX_PARAMS)
		return bind_error(err, "bind message has too many parameters");

	/* Our values' format: the single code when there is one (if it is one
	 * the server knows), else binary with a code of its own. */
	bool one_code = n_formats == 1 && (pg_get_u16(formats) == 0 || pg_get_u16(formats) == 1);
	bool binary = one_code ? pg_get_u16(formats) == 1 : n_formats > 0;
	size_t out_len = out->len;
	size_t start = pgbuf_begin_msg(out, 'B');
	pgbuf_put_str(out, portal);
	pgbuf_put_str(out, stmt);
	if (n_formats == 0 || one_code) {
		put_u16(out, n_formats);
		pgbuf_put_bytes(out, formats, (size_t)n_formats * 2);
	} else {
		/* per parameter; a single unknown code is spelled out per
		 * parameter so that the server still rejects it as before */
		put_u16(out, n_params + extra_params);
		for (uint32_t i = 0; i < n_params; i++)
			pgbuf_put_bytes(out, formats + (n_formats == 1 ? 0 : 2 * i), 2);
		for (uint32_t i = 0; i < extra_params; i++)
			put_u16(out, 1);
	}
	put_u16(out, n_params + extra_params);
	pgbuf_put_bytes(out, body + values_start, values_end - values_start);
	for (uint32_t i = 0; i < extra_params; i++) {
		uint8_t u[UUIDV7_LEN];
		if (!uuidv7_next(gen, u)) {
			out->len = out_len;
			return REWRITE_BIND_NO_MEMORY;
		}
		if (binary) {
			put_u32(out, UUIDV7_LEN);
			pgbuf_put_bytes(out, u, UUIDV7_LEN);
		} else {
			char text[UUIDV7_TEXT_LEN];
			uuidv7_format(u, text);
			put_u32(out, UUIDV7_TEXT_LEN);
			pgbuf_put_bytes(out, text, UUIDV7_TEXT_LEN);
		}
	}
	pgbuf_put_bytes(out, body + values_end, len - values_end);
	pgbuf_end_msg(out, start);
	return pgbuf_failed(out) ? REWRITE_BIND_NO_MEMORY : REWRITE_BIND_OK;
}

bool rewrite_ext_param_desc(const uint8_t *body, size_t len, uint32_t extra_params,
			    struct pgbuf *out)
{
	struct pgread r;
	pgread_init(&r, body, len);
	uint16_t n = read_u16(&r);
	const uint8_t *types = pgread_bytes(&r, (size_t)n * 4);
	if (!pgread_at_end(&r) || n < extra_params)
		return false;
	size_t start = pgbuf_begin_msg(out, 't');
	put_u16(out, n - extra_params);
	pgbuf_put_bytes(out, types, (size_t)(n - extra_params) * 4);
	pgbuf_end_msg(out, start);
	return !pgbuf_failed(out);
}

bool rewrite_ext_error_position(char type, const uint8_t *body, size_t len,
				const struct rewrite_posmap *m, struct pgbuf *out)
{
	struct pgread r;
	pgread_init(&r, body, len);
	size_t out_len = out->len;
	size_t start = pgbuf_begin_msg(out, type);
	for (;;) {
		uint8_t code = pgread_u8(&r);
		const char *value = code ? pgread_str(&r) : NULL;
		if (!pgread_ok(&r)) {
			out->len = out_len;
			return false;
		}
		if (code == 0)
			break;
		pgbuf_put_u8(out, code);
		char *end;
		unsigned long pos = strtoul(value, &end, 10);
		if (code == 'P' && *end == '\0' && end != value && pos <= UINT32_MAX) {
			char mapped[16];
			snprintf(mapped, sizeof(mapped), "%u",
				 (unsigned)rewrite_posmap_original(m, (uint32_t)pos));
			pgbuf_put_str(out, mapped);
		} else {
			pgbuf_put_str(out, value);
		}
	}
	pgbuf_put_u8(out, 0);
	if (!pgread_at_end(&r)) {
		out->len = out_len;
		return false;
	}
	pgbuf_end_msg(out, start);
	return !pgbuf_failed(out);
}
