/* A growable string for building SQL text; identifiers go through
 * PQescapeIdentifier, literals (where a statement takes no parameters, as
 * COMMENT does) through PQescapeLiteral. */
#ifndef UUIDGATE_STRB_H
#define UUIDGATE_STRB_H

#include <libpq-fe.h>
#include <stddef.h>

struct strb {
	char *buf;
	size_t len;
	size_t cap;
};

void strb_init(struct strb *s);
void strb_free(struct strb *s);
void strb_reset(struct strb *s);
void strb_printf(struct strb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strb_ident(struct strb *s, PGconn *conn, const char *name);
void strb_literal(struct strb *s, PGconn *conn, const char *value);
/* "schema"."name" */
void strb_qualified(struct strb *s, PGconn *conn, const char *schema, const char *name);
/* Appends tmpl with {1}..{9} replaced by vals[0]..vals[8]: SQL templates
 * that name the same identifier several times stay readable. */
void strb_subst(struct strb *s, const char *tmpl, const char *const *vals, int nvals);
/* Hands the buffer over to the caller (malloc'd, never NULL). */
char *strb_steal(struct strb *s);
/* malloc'd copy of printf output. */
char *strb_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
