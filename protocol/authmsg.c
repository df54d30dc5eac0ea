#include "authmsg.h"

#include <string.h>

#include "message.h"
#include "pgread.h"

static void put_request(struct pgbuf *b, int32_t code, const void *data, size_t len)
{
	size_t start = pgbuf_begin_msg(b, 'R');
	pgbuf_put_int32(b, code);
	pgbuf_put_bytes(b, data, len);
	pgbuf_end_msg(b, start);
}

void authmsg_put_sasl(struct pgbuf *b, const char *const *mechanisms, size_t n)
{
	size_t start = pgbuf_begin_msg(b, 'R');
	pgbuf_put_int32(b, PG_AUTH_SASL);
	for (size_t i = 0; i < n; i++)
		pgbuf_put_str(b, mechanisms[i]);
	pgbuf_put_u8(b, 0);
	pgbuf_end_msg(b, start);
}

void authmsg_put_sasl_continue(struct pgbuf *b, const uint8_t *data, size_t len)
{
	put_request(b, PG_AUTH_SASL_CONTINUE, data, len);
}

void authmsg_put_sasl_final(struct pgbuf *b, const uint8_t *data, size_t len)
{
	put_request(b, PG_AUTH_SASL_FINAL, data, len);
}

void authmsg_put_md5_request(struct pgbuf *b, const uint8_t salt[4])
{
	put_request(b, PG_AUTH_MD5, salt, 4);
}

void authmsg_put_cleartext_request(struct pgbuf *b)
{
	put_request(b, PG_AUTH_CLEARTEXT, NULL, 0);
}

bool authmsg_parse_password(const uint8_t *body, size_t len, const char **password)
{
	struct pgread r;
	pgread_init(&r, body, len);
	*password = pgread_str(&r);
	return *password != NULL && pgread_at_end(&r);
}

bool authmsg_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
                                const uint8_t **data, size_t *data_len)
{
	struct pgread r;
	pgread_init(&r, body, len);
	*mechanism = pgread_str(&r);
	int32_t n = pgread_int32(&r);
	*data = NULL;
	*data_len = 0;
	if (!*mechanism || !pgread_ok(&r) || n < -1)
		return false;
	if (n >= 0) {
		*data = pgread_bytes(&r, (size_t)n);
		*data_len = (size_t)n;
	}
	return pgread_at_end(&r);
}

bool authmsg_parse_sasl_response(const uint8_t *body, size_t len, const uint8_t **data,
                                 size_t *data_len)
{
	*data = body;
	*data_len = len;
	return len > 0;
}

void authmsg_put_password(struct pgbuf *b, const char *password)
{
	size_t start = pgbuf_begin_msg(b, 'p');
	pgbuf_put_str(b, password);
	pgbuf_end_msg(b, start);
}

void authmsg_put_sasl_initial(struct pgbuf *b, const char *mechanism, const uint8_t *data,
                              size_t len)
{
	size_t start = pgbuf_begin_msg(b, 'p');
	pgbuf_put_str(b, mechanism);
	pgbuf_put_int32(b, data ? (int32_t)len : -1);
	pgbuf_put_bytes(b, data, len);
	pgbuf_end_msg(b, start);
}

void authmsg_put_sasl_response(struct pgbuf *b, const uint8_t *data, size_t len)
{
	size_t start = pgbuf_begin_msg(b, 'p');
	pgbuf_put_bytes(b, data, len);
	pgbuf_end_msg(b, start);
}

/* Reads the mechanism list; notes whether SCRAM-SHA-256 is among them. */
static bool parse_mechanisms(struct pgread *r, bool *offers_scram)
{
	for (;;) {
		const char *name = pgread_str(r);
		if (!name)
			return false;
		if (*name == '\0')
			return pgread_at_end(r);
		if (strcmp(name, "SCRAM-SHA-256") == 0)
			*offers_scram = true;
	}
}

bool authmsg_parse_request(const uint8_t *body, size_t len, struct authmsg_request *out)
{
	struct pgread r;
	memset(out, 0, sizeof(*out));
	pgread_init(&r, body, len);
	out->code = pgread_int32(&r);
	if (!pgread_ok(&r))
		return false;
	switch (out->code) {
	case PG_AUTH_OK:
	case PG_AUTH_CLEARTEXT:
		return pgread_at_end(&r);
	case PG_AUTH_MD5: {
		const uint8_t *salt = pgread_bytes(&r, 4);
		if (!salt || !pgread_at_end(&r))
			return false;
		memcpy(out->md5_salt, salt, 4);
		return true;
	}
	case PG_AUTH_SASL:
		return parse_mechanisms(&r, &out->offers_scram);
	case PG_AUTH_SASL_CONTINUE:
	case PG_AUTH_SASL_FINAL:
		out->data_len = pgread_remaining(&r);
		out->data = pgread_bytes(&r, out->data_len);
		return out->data_len > 0;
	default:
		return true;
	}
}
