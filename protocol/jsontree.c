#include "jsontree.h"

#include <stdlib.h>
#include <string.h>

/* While the text is read, containers still open are chained through their
 * end field (the index of the enclosing open container, or NO_PARENT) until
 * they close. */
#define NO_PARENT UINT32_MAX

struct reader {
	const char *s;
	size_t len;
	struct jsontree_value *v;
	size_t n;
	size_t cap;
};

static inline size_t skip_space(const char *s, size_t len, size_t i)
{
	while (i < len && (unsigned char)s[i] <= ' ' &&
	       (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r'))
		i++;
	return i;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The code unit of the four hex digits at s[i..i+4), or -1. */
static long hex4(const char *s, size_t len, size_t i)
{
	if (i > len || len - i < 4)
		return -1;
	long u = 0;
	for (size_t k = 0; k < 4; k++) {
		int d = hex_digit(s[i + k]);
		if (d < 0)
			return -1;
		u = u * 16 + d;
	}
	return u;
}

static bool is_high_surrogate(long u)
{
	return u >= 0xd800 && u <= 0xdbff;
}

static bool is_low_surrogate(long u)
{
	return u >= 0xdc00 && u <= 0xdfff;
}

/* Past the escape at s[i] ('\'), or 0 when it is not a valid one. */
static size_t skip_escape(const char *s, size_t len, size_t i)
{
	if (len - i < 2)
		return 0;
	char e = s[i + 1];
	if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
	    e == 't')
		return i + 2;
	long u = e == 'u' ? hex4(s, len, i + 2) : -1;
	if (u < 0 || is_low_surrogate(u))
		return 0;
	i += 6;
	if (!is_high_surrogate(u))
		return i;
	if (len - i < 2 || s[i] != '\\' || s[i + 1] != 'u' || !is_low_surrogate(hex4(s, len, i + 2)))
		return 0;
	return i + 6;
}

/* The bytes a string cannot hold as they are: controls, '"' and '\'. */
#define ROW_OF(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const bool string_special[256] = {
	ROW_OF(true), ROW_OF(true),
	false, false, true, false, false, false, false, false,	/* '"' */
	false, false, false, false, false, false, false, false,
	ROW_OF(false), ROW_OF(false),
	false, false, false, false, false, false, false, false,
	false, false, false, false, true, false, false, false,	/* '\' */
	ROW_OF(false), ROW_OF(false),
	ROW_OF(false), ROW_OF(false), ROW_OF(false), ROW_OF(false),
	ROW_OF(false), ROW_OF(false), ROW_OF(false), ROW_OF(false),
};
#undef ROW_OF

/* A string's contents from just past its opening quote: the offset of its
 * closing quote, or 0 when it is not a valid string. */
static inline size_t scan_string(const char *s, size_t len, size_t i, bool *escaped)
{
	for (;;) {
		while (i < len && !string_special[(unsigned char)s[i]])
			i++;
		if (i >= len || (unsigned char)s[i] < 0x20)
			return 0;
		if (s[i] == '"')
			return i;
		*escaped = true;
		if ((i = skip_escape(s, len, i)) == 0)
			return 0;
	}
}

static size_t skip_digits(const char *s, size_t len, size_t i)
{
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* Past the number at s[i], or 0. */
static size_t scan_number(const char *s, size_t len, size_t i)
{
	if (s[i] == '-')
		i++;
	if (i < len && s[i] == '0')
		i++;
	else if (i < len && s[i] >= '1' && s[i] <= '9')
		i = skip_digits(s, len, i);
	else
		return 0;
	if (i < len && s[i] == '.') {
		size_t digits = ++i;
		if ((i = skip_digits(s, len, i)) == digits)
			return 0;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t digits = i;
		if ((i = skip_digits(s, len, i)) == digits)
			return 0;
	}
	return i;
}

/* Reads the string, number or literal at s[i] into v: past it, or 0. */
static size_t scan_scalar(const char *s, size_t len, size_t i, struct jsontree_value *v)
{
	static const struct {
		const char *word;
		size_t len;
		enum jsontree_type type;
	} literals[] = {
		{ "null", 4, JSONTREE_NULL },
		{ "false", 5, JSONTREE_FALSE },
		{ "true", 4, JSONTREE_TRUE },
	};
	char c = s[i];
	if (c == '"') {
		size_t end = scan_string(s, len, i + 1, &v->escaped);
		v->type = JSONTREE_STRING;
		v->start = (uint32_t)(i + 1);
		v->len = (uint32_t)(end - i - 1);
		return end ? end + 1 : 0;
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		size_t end = scan_number(s, len, i);
		v->type = JSONTREE_NUMBER;
		v->len = (uint32_t)(end - i);
		return end;
	}
	for (size_t k = 0; k < sizeof(literals) / sizeof(literals[0]); k++) {
		size_t n = literals[k].len;
		if (len - i >= n && memcmp(s + i, literals[k].word, n) == 0) {
			v->type = (uint8_t)literals[k].type;
			return i + n;
		}
	}
	return 0;
}

/* Room for one more value. */
static bool reserve(struct reader *r)
{
	if (r->n < r->cap)
		return true;
	size_t cap = r->cap ? 2 * r->cap : r->len / 6 + 16;
	struct jsontree_value *v = realloc(r->v, cap * sizeof(*v));
	if (!v)
		return false;
	r->v = v;
	r->cap = cap;
	return true;
}

/* A key and its ':' at s[*i], inside object obj. */
static inline enum jsontree_status read_key(struct reader *r, uint32_t obj, size_t *i)
{
	const char *s = r->s;
	size_t at = skip_space(s, r->len, *i);
	if (at >= r->len || s[at] != '"' || r->v[obj].count == JSONTREE_MAX_MEMBERS)
		return JSONTREE_INVALID;
	if (!reserve(r))
		return JSONTREE_NO_MEMORY;
	r->v[obj].count++;
	bool escaped = false;
	size_t end = scan_string(s, r->len, at + 1, &escaped);
	if (end == 0 || escaped)
		return JSONTREE_INVALID;
	r->v[r->n] = (struct jsontree_value){
		.start = (uint32_t)(at + 1),
		.len = (uint32_t)(end - at - 1),
		.end = (uint32_t)(r->n + 1),
		.type = JSONTREE_STRING,
		.key = true,
	};
	r->n++;
	at = skip_space(s, r->len, end + 1);
	if (at >= r->len || s[at] != ':')
		return JSONTREE_INVALID;
	*i = at + 1;
	return JSONTREE_OK;
}

/* Whether the members of object obj (closed) have distinct keys. */
static bool keys_distinct(const struct reader *r, size_t obj)
{
	const struct jsontree_value *v = r->v;
	for (size_t a = obj + 1; a < v[obj].end; a = v[a + 1].end) {
		for (size_t b = v[a + 1].end; b < v[obj].end; b = v[b + 1].end) {
			if (v[a].len == v[b].len &&
			    memcmp(r->s + v[a].start, r->s + v[b].start, v[a].len) == 0)
				return false;
		}
	}
	return true;
}

static enum jsontree_status read_document(struct reader *r)
{
	const char *s = r->s;
	size_t len = r->len;
	size_t i = 0;
	uint32_t open = NO_PARENT;	/* the innermost open container */
	bool in_object = false;		/* whether that is an object */
	enum jsontree_status st;
	for (;;) {
		/* a value: an element, a member's value, or the document */
		i = skip_space(s, len, i);
		if (i >= len)
			return JSONTREE_INVALID;
		if (!reserve(r))
			return JSONTREE_NO_MEMORY;
		if (open != NO_PARENT && !in_object)
			r->v[open].count++;
		uint32_t index = (uint32_t)r->n++;
		struct jsontree_value *v = &r->v[index];
		*v = (struct jsontree_value){ .start = (uint32_t)i, .end = index + 1 };
		if (s[i] == '{' || s[i] == '[') {
			in_object = s[i] == '{';
			v->type = in_object ? JSONTREE_OBJECT : JSONTREE_ARRAY;
			v->end = open;
			open = index;
			i = skip_space(s, len, i + 1);
			bool empty = i < len && s[i] == (in_object ? '}' : ']');
			if (!empty && in_object && (st = read_key(r, open, &i)) != JSONTREE_OK)
				return st;
			if (!empty)
				continue;
		} else if ((i = scan_scalar(s, len, i, v)) == 0) {
			return JSONTREE_INVALID;
		}
		/* after a complete value: the containers that end here, then
		 * the ',' (and key) before the next value */
		for (;;) {
			i = skip_space(s, len, i);
			if (open == NO_PARENT)
				return i == len ? JSONTREE_OK : JSONTREE_INVALID;
			if (i < len && s[i] == ',') {
				i++;
				if (in_object && (st = read_key(r, open, &i)) != JSONTREE_OK)
					return st;
				break;
			}
			if (i >= len || s[i] != (in_object ? '}' : ']'))
				return JSONTREE_INVALID;
			struct jsontree_value *c = &r->v[open];
			uint32_t parent = c->end;
			c->end = (uint32_t)r->n;
			if (in_object && !keys_distinct(r, open))
				return JSONTREE_INVALID;
			open = parent;
			in_object = open != NO_PARENT && r->v[open].type == JSONTREE_OBJECT;
			i++;
		}
	}
}

enum jsontree_status jsontree_parse(struct jsontree *t, const char *text, size_t len)
{
	memset(t, 0, sizeof(*t));
	t->text = text;
	t->len = len;
	if (!text || len >= UINT32_MAX)
		return JSONTREE_INVALID;
	struct reader r = { .s = text, .len = len };
	enum jsontree_status st = read_document(&r);
	if (st != JSONTREE_OK) {
		free(r.v);
		return st;
	}
	t->v = r.v;
	t->n = r.n;
	t->cap = r.cap;
	return JSONTREE_OK;
}

void jsontree_free(struct jsontree *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
	t->cap = 0;
}

size_t jsontree_member_n(const struct jsontree *t, size_t obj, const char *key, size_t n)
{
	if (!jsontree_is(t, obj, JSONTREE_OBJECT))
		return JSONTREE_NONE;
	for (size_t k = obj + 1; k < t->v[obj].end; k = t->v[k + 1].end) {
		const struct jsontree_value *v = &t->v[k];
		if (v->len == n && memcmp(t->text + v->start, key, n) == 0)
			return k + 1;
	}
	return JSONTREE_NONE;
}

/* Appends the UTF-8 encoding of code point u to out; returns the bytes. */
static size_t put_utf8(unsigned long u, char *out)
{
	if (u < 0x80) {
		out[0] = (char)u;
		return 1;
	}
	if (u < 0x800) {
		out[0] = (char)(0xc0 | (u >> 6));
		out[1] = (char)(0x80 | (u & 0x3f));
		return 2;
	}
	if (u < 0x10000) {
		out[0] = (char)(0xe0 | (u >> 12));
		out[1] = (char)(0x80 | ((u >> 6) & 0x3f));
		out[2] = (char)(0x80 | (u & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (u >> 18));
	out[1] = (char)(0x80 | ((u >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((u >> 6) & 0x3f));
	out[3] = (char)(0x80 | (u & 0x3f));
	return 4;
}

/* Unescapes one byte or escape of a string already checked by read_string,
 * starting at raw[*i]; returns the bytes written to out (at most 4). */
static size_t unescape_one(const char *raw, size_t len, size_t *i, char out[4])
{
	char c = raw[*i];
	if (c != '\\') {
		out[0] = c;
		(*i)++;
		return 1;
	}
	char e = raw[*i + 1];
	*i += 2;
	switch (e) {
	case 'b': out[0] = '\b'; return 1;
	case 'f': out[0] = '\f'; return 1;
	case 'n': out[0] = '\n'; return 1;
	case 'r': out[0] = '\r'; return 1;
	case 't': out[0] = '\t'; return 1;
	case 'u': break;
	default: out[0] = e; return 1;
	}
	unsigned long u = (unsigned long)hex4(raw, len, *i);
	*i += 4;
	if (is_high_surrogate((long)u)) {
		unsigned long low = (unsigned long)hex4(raw, len, *i + 2);
		*i += 6;
		u = 0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00);
	}
	return put_utf8(u, out);
}

bool jsontree_string_eq_n(const struct jsontree *t, size_t i, const char *s, size_t n)
{
	if (!jsontree_is(t, i, JSONTREE_STRING))
		return false;
	const struct jsontree_value *v = &t->v[i];
	const char *raw = t->text + v->start;
	if (!v->escaped)
		return v->len == n && memcmp(raw, s, n) == 0;
	size_t at = 0;
	for (size_t k = 0; k < v->len;) {
		char bytes[4];
		size_t m = unescape_one(raw, v->len, &k, bytes);
		if (n - at < m || memcmp(s + at, bytes, m) != 0)
			return false;
		at += m;
	}
	return at == n;
}

bool jsontree_string_empty(const struct jsontree *t, size_t i)
{
	return jsontree_is(t, i, JSONTREE_STRING) && t->v[i].len == 0;
}

enum jsontree_status jsontree_string_dup(const struct jsontree *t, size_t i, char **out)
{
	*out = NULL;
	if (!jsontree_is(t, i, JSONTREE_STRING))
		return JSONTREE_INVALID;
	const struct jsontree_value *v = &t->v[i];
	const char *raw = t->text + v->start;
	/* unescaping never lengthens a string */
	char *s = malloc((size_t)v->len + 1);
	if (!s)
		return JSONTREE_NO_MEMORY;
	size_t w = 0;
	for (size_t k = 0; k < v->len;)
		w += unescape_one(raw, v->len, &k, s + w);
	if (memchr(s, '\0', w)) {
		free(s);
		return JSONTREE_INVALID;
	}
	s[w] = '\0';
	*out = s;
	return JSONTREE_OK;
}

bool jsontree_int(const struct jsontree *t, size_t i, int64_t *out)
{
	if (!jsontree_is(t, i, JSONTREE_NUMBER))
		return false;
	const char *s = t->text + t->v[i].start;
	size_t len = t->v[i].len;
	bool negative = s[0] == '-';
	uint64_t magnitude = 0;
	uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (size_t k = negative; k < len; k++) {
		if (s[k] < '0' || s[k] > '9')
			return false;
		uint64_t d = (uint64_t)(s[k] - '0');
		if (magnitude > (limit - d) / 10)
			return false;
		magnitude = magnitude * 10 + d;
	}
	*out = !negative ? (int64_t)magnitude
			 : magnitude == 0 ? 0 : -(int64_t)(magnitude - 1) - 1;
	return true;
}
