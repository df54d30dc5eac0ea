/* Builders for a query result as a server sends it: RowDescription,
 * DataRow, CommandComplete. The admin console answers with these so that
 * any client (psql included) shows its tables. */
#ifndef UUIDGATE_RESULTSET_H
#define UUIDGATE_RESULTSET_H

#include <stddef.h>
#include <stdint.h>

#include "pgbuf.h"

#define PG_TYPE_INT8 20
#define PG_TYPE_TEXT 25

struct resultset_column {
	const char *name;
	uint32_t type;    /* PG_TYPE_TEXT or PG_TYPE_INT8 */
};

void resultset_put_description(struct pgbuf *b, const struct resultset_column *cols, size_t n);
/* values[i] NULL is SQL NULL; every value is in text format. */
void resultset_put_row(struct pgbuf *b, const char *const *values, size_t n);
void resultset_put_complete(struct pgbuf *b, const char *tag);

#endif
