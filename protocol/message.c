#include "message.h"

#include <string.h>

#include "pgread.h"

enum pgmsg_status pgmsg_header(const uint8_t *buf, size_t len, uint32_t max_len,
                               uint8_t *type, uint32_t *total)
{
	if (len < PG_HEADER_LEN)
		return PGMSG_NEED_MORE;
	uint32_t n = pg_get_u32(buf + 1);
	/* The length counts itself; anything with the top bit set is negative. */
	if (n < 4 || n > 0x7fffffffu)
		return PGMSG_BAD_LENGTH;
	if (n > max_len)
		return PGMSG_TOO_LARGE;
	*type = buf[0];
	*total = n + 1;
	return PGMSG_OK;
}

static void put_field(struct pgbuf *b, char code, const char *value)
{
	if (!value)
		return;
	pgbuf_put_u8(b, (uint8_t)code);
	pgbuf_put_str(b, value);
}

void pgmsg_put_error(struct pgbuf *b, char type, const struct pg_error *e)
{
	size_t start = pgbuf_begin_msg(b, type);
	put_field(b, 'S', e->severity);
	put_field(b, 'V', e->severity);
	put_field(b, 'C', e->sqlstate);
	put_field(b, 'M', e->message);
	put_field(b, 'D', e->detail);
	put_field(b, 'H', e->hint);
	pgbuf_put_u8(b, 0);
	pgbuf_end_msg(b, start);
}

void pgmsg_put_fatal(struct pgbuf *b, const char *sqlstate, const char *message,
                     const char *hint)
{
	struct pg_error e = {
		.severity = "FATAL", .sqlstate = sqlstate, .message = message, .hint = hint,
	};
	pgmsg_put_error(b, 'E', &e);
}

bool pgmsg_parse_error(const uint8_t *body, size_t len, struct pg_error *out)
{
	struct pgread r;
	memset(out, 0, sizeof(*out));
	pgread_init(&r, body, len);
	for (;;) {
		uint8_t code = pgread_u8(&r);
		if (!pgread_ok(&r))
			return false;
		if (code == 0)
			return pgread_at_end(&r);
		const char *value = pgread_str(&r);
		if (!value)
			return false;
		switch (code) {
		case 'V': out->severity = value; break;
		case 'S': if (!out->severity) out->severity = value; break;
		case 'C': out->sqlstate = value; break;
		case 'M': out->message = value; break;
		case 'D': out->detail = value; break;
		case 'H': out->hint = value; break;
		default: break;
		}
	}
}

void pgmsg_put_auth_ok(struct pgbuf *b)
{
	size_t start = pgbuf_begin_msg(b, 'R');
	pgbuf_put_int32(b, PG_AUTH_OK);
	pgbuf_end_msg(b, start);
}

void pgmsg_put_parameter_status(struct pgbuf *b, const char *name, const char *value)
{
	size_t start = pgbuf_begin_msg(b, 'S');
	pgbuf_put_str(b, name);
	pgbuf_put_str(b, value);
	pgbuf_end_msg(b, start);
}

void pgmsg_put_backend_key(struct pgbuf *b, uint32_t pid, uint32_t key)
{
	size_t start = pgbuf_begin_msg(b, 'K');
	pgbuf_put_int32(b, (int32_t)pid);
	pgbuf_put_int32(b, (int32_t)key);
	pgbuf_end_msg(b, start);
}

void pgmsg_put_ready(struct pgbuf *b, char tx_status)
{
	size_t start = pgbuf_begin_msg(b, 'Z');
	pgbuf_put_u8(b, (uint8_t)tx_status);
	pgbuf_end_msg(b, start);
}

void pgmsg_put_negotiate(struct pgbuf *b, int minor, const char *const *unknown, size_t n)
{
	size_t start = pgbuf_begin_msg(b, 'v');
	pgbuf_put_int32(b, (3 << 16) | minor);
	pgbuf_put_int32(b, (int32_t)n);
	for (size_t i = 0; i < n; i++)
		pgbuf_put_str(b, unknown[i]);
	pgbuf_end_msg(b, start);
}

static bool is_channel_binding_mechanism(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && strcmp(name + n - 5, "-PLUS") == 0;
}

bool pgmsg_filter_sasl_mechanisms(const uint8_t *body, size_t len, struct pgbuf *out)
{
	struct pgread r;
	pgread_init(&r, body, len);
	if (pgread_int32(&r) != PG_AUTH_SASL)
		return false;
	size_t start = pgbuf_begin_msg(out, 'R');
	pgbuf_put_int32(out, PG_AUTH_SASL);
	int kept = 0;
	for (;;) {
		const char *name = pgread_str(&r);
		if (!name)
			return false;
		if (*name == '\0')
			break;
		if (is_channel_binding_mechanism(name))
			continue;
		pgbuf_put_str(out, name);
		kept++;
	}
	pgbuf_put_u8(out, 0);
	pgbuf_end_msg(out, start);
	return kept > 0 && pgread_at_end(&r) && !pgbuf_failed(out);
}

bool pgmsg_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
                              char *gs2_flag)
{
	struct pgread r;
	pgread_init(&r, body, len);
	*mechanism = pgread_str(&r);
	int32_t n = pgread_int32(&r);
	*gs2_flag = 0;
	if (!*mechanism || !pgread_ok(&r))
		return false;
	if (n < 1)
		return n == -1 && pgread_at_end(&r);
	const uint8_t *data = pgread_bytes(&r, (size_t)n);
	if (!data || !pgread_at_end(&r))
		return false;
	*gs2_flag = (char)data[0];
	return true;
}
