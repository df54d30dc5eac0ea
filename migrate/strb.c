#include "strb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void strb_reserve(struct strb *s, size_t extra)
{
	if (s->len + extra + 1 <= s->cap)
		return;
	size_t cap = s->cap ? s->cap : 256;
	while (cap < s->len + extra + 1)
		cap *= 2;
	s->buf = realloc(s->buf, cap);
	if (!s->buf)
		abort();
	s->cap = cap;
}

void strb_init(struct strb *s)
{
	s->buf = NULL;
	s->len = 0;
	s->cap = 0;
	strb_reserve(s, 0);
	s->buf[0] = '\0';
}

void strb_free(struct strb *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

void strb_reset(struct strb *s)
{
	s->len = 0;
	s->buf[0] = '\0';
}

static void strb_vprintf(struct strb *s, const char *fmt, va_list ap)
{
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	if (n < 0)
		abort();
	strb_reserve(s, (size_t)n);
	vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
	s->len += (size_t)n;
}

void strb_printf(struct strb *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	strb_vprintf(s, fmt, ap);
	va_end(ap);
}

void strb_ident(struct strb *s, PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));
	if (!q)
		abort();
	strb_printf(s, "%s", q);
	PQfreemem(q);
}

void strb_literal(struct strb *s, PGconn *conn, const char *value)
{
	char *q = PQescapeLiteral(conn, value, strlen(value));
	if (!q)
		abort();
	strb_printf(s, "%s", q);
	PQfreemem(q);
}

void strb_qualified(struct strb *s, PGconn *conn, const char *schema, const char *name)
{
	strb_ident(s, conn, schema);
	strb_printf(s, ".");
	strb_ident(s, conn, name);
}

void strb_subst(struct strb *s, const char *tmpl, const char *const *vals, int nvals)
{
	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '{' && p[1] >= '1' && p[1] <= '9' && p[2] == '}' && p[1] - '1' < nvals) {
			strb_printf(s, "%s", vals[p[1] - '1']);
			p += 2;
			continue;
		}
		strb_reserve(s, 1);
		s->buf[s->len++] = *p;
		s->buf[s->len] = '\0';
	}
}

char *strb_steal(struct strb *s)
{
	char *out = s->buf;
	s->buf = NULL;
	s->len = s->cap = 0;
	return out;
}

char *strb_fmt(const char *fmt, ...)
{
	struct strb s;
	va_list ap;
	strb_init(&s);
	va_start(ap, fmt);
	strb_vprintf(&s, fmt, ap);
	va_end(ap);
	return strb_steal(&s);
}
