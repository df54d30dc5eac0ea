/* ErrorResponse and NoticeResponse bodies (after the 5-byte header), as the
 * proxy reads them from the server to log them and map error positions.
 *
 * Checks: every field the parser returns lies inside the body and is
 * NUL-terminated there; an accepted body rebuilt with pgmsg_put_error parses
 * again to the same severity, SQLSTATE, message, detail and hint. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "pgbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(const char *field, const uint8_t *body, size_t len)
{
	if (!field)
		return;
	const uint8_t *p = (const uint8_t *)field;
	if (p < body || p >= body + len || memchr(p, 0, (size_t)(body + len - p)) == NULL)
		abort();
}

static bool same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pg_error e, again;
	if (!pgmsg_parse_error(data, size, &e))
		return 0;
	const char *fields[] = { e.severity, e.sqlstate, e.message, e.detail, e.hint };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		check_inside(fields[i], data, size);

	struct pgbuf b;
	pgbuf_init(&b);
	pgmsg_put_error(&b, size % 2 ? 'E' : 'N', &e);
	if (pgbuf_failed(&b) || b.len < PG_HEADER_LEN)
		abort();
	uint8_t type;
	uint32_t total;
	if (pgmsg_header(b.data, b.len, PG_DEFAULT_MAX_MESSAGE, &type, &total) != PGMSG_OK ||
	    total != b.len)
		abort();
	if (!pgmsg_parse_error(b.data + PG_HEADER_LEN, b.len - PG_HEADER_LEN, &again))
		abort();
	if (!same(e.severity, again.severity) || !same(e.sqlstate, again.sqlstate) ||
	    !same(e.message, again.message) || !same(e.detail, again.detail) ||
	    !same(e.hint, again.hint))
		abort();
	pgbuf_free(&b);
	return 0;
}
