#include "startup.h"

#include <stdlib.h>
#include <string.h>

#include "pgread.h"

const char *startup_status_text(enum startup_status s)
{
	switch (s) {
	case STARTUP_OK: return "ok";
	case STARTUP_NEED_MORE: return "incomplete startup packet";
	case STARTUP_BAD_LENGTH: return "invalid length of startup packet";
	case STARTUP_BAD_VERSION: return "unsupported frontend protocol";
	case STARTUP_MALFORMED: return "invalid startup packet layout";
	case STARTUP_NO_MEMORY: return "out of memory";
	}
	return "unknown";
}

static enum startup_status parse_cancel(struct pgread *r, struct startup_packet *out)
{
	out->cancel_pid = (uint32_t)pgread_int32(r);
	size_t key_len = pgread_remaining(r);
	/* Protocol 3.0 keys are 4 bytes; 3.2 allows up to 256. */
	if (key_len < 4 || key_len > STARTUP_CANCEL_KEY_MAX)
		return STARTUP_BAD_LENGTH;
	memcpy(out->cancel_key, pgread_bytes(r, key_len), key_len);
	out->cancel_key_len = key_len;
	return STARTUP_OK;
}

/* Counts the name/value pairs and checks the layout before allocating. */
static bool count_params(const uint8_t *p, size_t n, size_t *count)
{
	struct pgread r;
	pgread_init(&r, p, n);
	*count = 0;
	for (;;) {
		const char *name = pgread_str(&r);
		if (!name)
			return false;
		if (*name == '\0')
			return pgread_at_end(&r);
		if (!pgread_str(&r))
			return false;
		(*count)++;
	}
}

static enum startup_status parse_params(const uint8_t *p, size_t n, struct startup_packet *out)
{
	size_t count;
	if (!count_params(p, n, &count))
		return STARTUP_MALFORMED;
	out->storage = malloc(n ? n : 1);
	out->params = calloc(count ? count : 1, sizeof(*out->params));
	out->protocol_options = calloc(count ? count : 1, sizeof(*out->protocol_options));
	if (!out->storage || !out->params || !out->protocol_options)
		return STARTUP_NO_MEMORY;
	memcpy(out->storage, p, n);
	struct pgread r;
	pgread_init(&r, (const uint8_t *)out->storage, n);
	for (size_t i = 0; i < count; i++) {
		const char *name = pgread_str(&r);
		const char *value = pgread_str(&r);
		if (strncmp(name, "_pq_.", 5) == 0) {
			out->protocol_options[out->noptions++] = name;
			continue;
		}
		out->params[out->nparams].name = name;
		out->params[out->nparams].value = value;
		out->nparams++;
	}
	return STARTUP_OK;
}

enum startup_status startup_parse(const uint8_t *buf, size_t len, struct startup_packet *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 4)
		return STARTUP_NEED_MORE;
	uint32_t n = pg_get_u32(buf);
	if (n < 8 || n > STARTUP_MAX_PACKET)
		return STARTUP_BAD_LENGTH;
	if (len < n)
		return STARTUP_NEED_MORE;
	out->packet_len = n;
	struct pgread r;
	pgread_init(&r, buf + 4, n - 4);
	uint32_t code = (uint32_t)pgread_int32(&r);
	enum startup_status st = STARTUP_OK;
	switch (code) {
	case PG_PROTOCOL_SSL:
		out->kind = STARTUP_SSL_REQUEST;
		return n == 8 ? STARTUP_OK : STARTUP_BAD_LENGTH;
	case PG_PROTOCOL_GSSENC:
		out->kind = STARTUP_GSSENC_REQUEST;
		return n == 8 ? STARTUP_OK : STARTUP_BAD_LENGTH;
	case PG_PROTOCOL_CANCEL:
		out->kind = STARTUP_CANCEL;
		return parse_cancel(&r, out);
	default:
		out->kind = STARTUP_MESSAGE;
		out->major = (uint16_t)(code >> 16);
		out->minor = (uint16_t)(code & 0xffff);
		if (out->major != 3)
			return STARTUP_BAD_VERSION;
		st = parse_params(buf + 8, n - 8, out);
		if (st != STARTUP_OK)
			startup_free(out);
		return st;
	}
}

void startup_free(struct startup_packet *p)
{
	free(p->storage);
	free(p->params);
	free(p->protocol_options);
	p->storage = NULL;
	p->params = NULL;
	p->protocol_options = NULL;
	p->nparams = 0;
	p->noptions = 0;
}

const char *startup_get(const struct startup_packet *p, const char *name)
{
	for (size_t i = 0; i < p->nparams; i++)
		if (strcmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

void startup_put_ssl_request(struct pgbuf *b)
{
	size_t start = pgbuf_begin_packet(b);
	pgbuf_put_int32(b, (int32_t)PG_PROTOCOL_SSL);
	pgbuf_end_msg(b, start);
}

void startup_put_cancel(struct pgbuf *b, uint32_t pid, const uint8_t *key, size_t key_len)
{
	size_t start = pgbuf_begin_packet(b);
	pgbuf_put_int32(b, (int32_t)PG_PROTOCOL_CANCEL);
	pgbuf_put_int32(b, (int32_t)pid);
	pgbuf_put_bytes(b, key, key_len);
	pgbuf_end_msg(b, start);
}

void startup_put_message(struct pgbuf *b, const struct startup_param *params, size_t n)
{
	size_t start = pgbuf_begin_packet(b);
	pgbuf_put_int32(b, 3 << 16);
	for (size_t i = 0; i < n; i++) {
		pgbuf_put_str(b, params[i].name);
		pgbuf_put_str(b, params[i].value);
	}
	pgbuf_put_u8(b, 0);
	pgbuf_end_msg(b, start);
}
