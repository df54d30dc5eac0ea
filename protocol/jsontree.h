/* A strict reader for the JSON parse trees libpg_query writes.
 *
 * The whole text is checked against RFC 8259 and laid out as one flat array
 * of values in document order: a container is followed by its members, so
 * that a subtree is a range of indexes, and an object member is its key (a
 * string) followed by its value. Strings stay in the text and are compared or
 * copied, unescaped, on demand.
 *
 * Stricter than RFC 8259 where libpg_query's output never goes: object keys
 * hold no escapes, an object holds no key twice and at most
 * JSONTREE_MAX_MEMBERS members, and the text is shorter than UINT32_MAX bytes.
 * Strings are byte strings: bytes from 0x80 on are taken as they are (the
 * parser copies them from the SQL text, in the session's encoding). */
#ifndef UUIDGATE_JSONTREE_H
#define UUIDGATE_JSONTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define JSONTREE_MAX_MEMBERS 256u
#define JSONTREE_NONE SIZE_MAX	/* no such value */

enum jsontree_type {
	JSONTREE_NULL,
	JSONTREE_FALSE,
	JSONTREE_TRUE,
	JSONTREE_NUMBER,
	JSONTREE_STRING,
	JSONTREE_ARRAY,
	JSONTREE_OBJECT,
};

struct jsontree_value {
	uint32_t start;		/* text offset: a number's first byte, the first byte
				   after a string's opening quote, a container's bracket */
	uint32_t len;		/* bytes of a number, or of a string between its quotes */
	uint32_t count;		/* elements of an array, members of an object */
	uint32_t end;		/* index just past the value and all it holds */
	uint8_t type;		/* enum jsontree_type */
	bool key;		/* a string that is an object member's key */
	bool escaped;		/* a string holding at least one escape */
};

struct jsontree {
	const char *text;
	size_t len;
	struct jsontree_value *v;	/* v[0] is the document's value */
	size_t n;
	size_t cap;
};

enum jsontree_status {
	JSONTREE_OK,
	JSONTREE_INVALID,
	JSONTREE_NO_MEMORY,
};

/* Reads text[0..len) (which must outlive t) into t; t is left empty unless
 * JSONTREE_OK. Free with jsontree_free either way. */
enum jsontree_status jsontree_parse(struct jsontree *t, const char *text, size_t len);
void jsontree_free(struct jsontree *t);

/* The value of obj's member key (of n bytes), or JSONTREE_NONE (also when
 * obj is not an object or is JSONTREE_NONE). */
size_t jsontree_member_n(const struct jsontree *t, size_t obj, const char *key, size_t n);

static inline size_t jsontree_member(const struct jsontree *t, size_t obj, const char *key)
{
	return jsontree_member_n(t, obj, key, strlen(key));
}

/* Arrays: the first element is at i + 1, each next one at the previous
 * one's end. Objects: the first key is at i + 1, its value at key + 1, the
 * next key at the value's end. */
static inline size_t jsontree_first(const struct jsontree *t, size_t i)
{
	return t->v[i].count ? i + 1 : JSONTREE_NONE;
}

static inline size_t jsontree_next(const struct jsontree *t, size_t parent, size_t i)
{
	size_t next = t->v[i].end;
	return next < t->v[parent].end ? next : JSONTREE_NONE;
}

static inline bool jsontree_is(const struct jsontree *t, size_t i, enum jsontree_type type)
{
	return i != JSONTREE_NONE && t->v[i].type == type;
}

/* Whether value i is a string whose unescaped bytes are exactly s[0..n). */
bool jsontree_string_eq_n(const struct jsontree *t, size_t i, const char *s, size_t n);

static inline bool jsontree_string_eq(const struct jsontree *t, size_t i, const char *s)
{
	return jsontree_string_eq_n(t, i, s, strlen(s));
}

/* Whether value i is an object member's key spelled key (keys hold no
 * escapes). */
static inline bool jsontree_key_is(const struct jsontree *t, size_t i, const char *key)
{
	size_t n = strlen(key);
	return t->v[i].key && t->v[i].len == n && memcmp(t->text + t->v[i].start, key, n) == 0;
}

/* Whether value i is a string whose unescaped bytes are empty. */
bool jsontree_string_empty(const struct jsontree *t, size_t i);

/* Value i as a malloc'd NUL-terminated string: JSONTREE_INVALID when it is
 * not a string or holds a NUL. */
enum jsontree_status jsontree_string_dup(const struct jsontree *t, size_t i, char **out);

/* Value i as an integer: false unless it is a number written without
 * fraction or exponent that fits in int64_t. */
bool jsontree_int(const struct jsontree *t, size_t i, int64_t *out);

#endif
