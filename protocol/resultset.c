#include "resultset.h"

#include <string.h>

void resultset_put_description(struct pgbuf *b, const struct resultset_column *cols, size_t n)
{
	size_t start = pgbuf_begin_msg(b, 'T');
	pgbuf_put_int16(b, (int16_t)n);
	for (size_t i = 0; i < n; i++) {
		pgbuf_put_str(b, cols[i].name);
		pgbuf_put_int32(b, 0);                       /* table oid */
		pgbuf_put_int16(b, 0);                       /* column number */
		pgbuf_put_int32(b, (int32_t)cols[i].type);
		pgbuf_put_int16(b, cols[i].type == PG_TYPE_INT8 ? 8 : -1);
		pgbuf_put_int32(b, -1);                      /* type modifier */
		pgbuf_put_int16(b, 0);                       /* text format */
	}
	pgbuf_end_msg(b, start);
}

void resultset_put_row(struct pgbuf *b, const char *const *values, size_t n)
{
	size_t start = pgbuf_begin_msg(b, 'D');
	pgbuf_put_int16(b, (int16_t)n);
	for (size_t i = 0; i < n; i++) {
		if (!values[i]) {
			pgbuf_put_int32(b, -1);
			continue;
		}
		size_t len = strlen(values[i]);
		pgbuf_put_int32(b, (int32_t)len);
		pgbuf_put_bytes(b, values[i], len);
	}
	pgbuf_end_msg(b, start);
}

void resultset_put_complete(struct pgbuf *b, const char *tag)
{
	size_t start = pgbuf_begin_msg(b, 'C');
	pgbuf_put_str(b, tag);
	pgbuf_end_msg(b, start);
}
