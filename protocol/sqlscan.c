#include "sqlscan.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_ident_char(unsigned char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_newline(unsigned char c)
{
	return c == '\n' || c == '\r';
}

/* Each skip_* function starts at the opening character and returns the
 * offset just past the construct, or len when it is not terminated. */

static size_t skip_line_comment(const char *s, size_t len, size_t i)
{
	while (i < len && !is_newline((unsigned char)s[i]))
		i++;
	return i < len ? i + 1 : len;
}

static size_t skip_block_comment(const char *s, size_t len, size_t i)
{
	unsigned depth = 0;
	while (i + 1 < len) {
		if (s[i] == '/' && s[i + 1] == '*') {
			depth++;
			i += 2;
		} else if (s[i] == '*' && s[i + 1] == '/') {
			i += 2;
			if (--depth == 0)
				return i;
		} else {
			i++;
		}
	}
	return len;
}

/* '...' or "..." where a doubled quote stands for itself; with backslash
 * escapes for E'...'. */
static size_t skip_quoted(const char *s, size_t len, size_t i, bool backslash)
{
	char q = s[i++];
	while (i < len) {
		if (backslash && s[i] == '\\') {
			i += 2;
		} else if (s[i] == q) {
			if (i + 1 < len && s[i + 1] == q)
				i += 2;
			else
				return i + 1;
		} else {
			i++;
		}
	}
	return len;
}

/* After a string's closing quote at i - 1: the offset just past the quote
 * that continues it, or 0. A string continues over whitespace that holds a
 * newline, -- comments included, up to the next quote; a comment must end in
 * a newline, and the scanner takes \v for no whitespace. */
static size_t continuation(const char *s, size_t len, size_t i)
{
	bool newline = false;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (is_newline(c)) {
			newline = true;
			i++;
		} else if (c == ' ' || c == '\t' || c == '\f') {
			i++;
		} else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
			while (i < len && !is_newline((unsigned char)s[i]))
				i++;
		} else {
			return c == '\'' && newline ? i + 1 : 0;
		}
	}
	return 0;
}

/* A string literal from its opening quote, with every continuation. */
static size_t skip_string(const char *s, size_t len, size_t i, bool backslash)
{
	for (;;) {
		i = skip_quoted(s, len, i, backslash);
		if (i >= len)
			return len;
		size_t next = continuation(s, len, i);
		if (next == 0)
			return i;
		i = next - 1;
	}
}

/* $tag$...$tag$, or just past the '$' when no valid delimiter starts here
 * (a stray '$'). */
static size_t skip_dollar(const char *s, size_t len, size_t i)
{
	size_t t = i + 1;
	if (t < len && is_ident_start((unsigned char)s[t])) {
		while (t < len && is_ident_char((unsigned char)s[t]) && s[t] != '$')
			t++;
	}
	if (t >= len || s[t] != '$')
		return i + 1;
	size_t tag_len = t + 1 - i;
	for (size_t j = t + 1; j + tag_len <= len; j++) {
		if (s[j] == '$' && memcmp(s + j, s + i, tag_len) == 0)
			return j + tag_len;
	}
	return len;
}

static size_t skip_digits(const char *s, size_t len, size_t i)
{
	while (i < len && is_digit((unsigned char)s[i]))
		i++;
	return i;
}

/* 12, 1.5, .5, 1., 1e5, 1.5E-3; "1.." is 1 followed by "..", and an E not
 * followed by an exponent begins the next token (E'...' after 1 is a string). */
static size_t skip_number(const char *s, size_t len, size_t i)
{
	i = skip_digits(s, len, i);
	if (i < len && s[i] == '.' && !(i + 1 < len && s[i + 1] == '.'))
		i = skip_digits(s, len, i + 1);
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;
		if (j < len && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j < len && is_digit((unsigned char)s[j]))
			i = skip_digits(s, len, j);
	}
	return i;
}

static size_t skip_ident(const char *s, size_t len, size_t i)
{
	while (i < len && is_ident_char((unsigned char)s[i]))
		i++;
	return i;
}

/* Past the literal that the one-letter word s[i] prefixes (E'', B'', X'',
 * N'', U&'', U&""), or 0 when it prefixes none. */
static size_t skip_prefixed_literal(const char *s, size_t len, size_t i)
{
	size_t q = i + 1;
	char p = (char)(s[i] | 0x20);
	if (q < len && s[q] == '\'' && (p == 'e' || p == 'b' || p == 'x' || p == 'n'))
		return skip_string(s, len, q, p == 'e');
	if (p == 'u' && q + 1 < len && s[q] == '&' && (s[q + 1] == '\'' || s[q + 1] == '"'))
		return s[q + 1] == '\'' ? skip_string(s, len, q + 1, false)
					: skip_quoted(s, len, q + 1, false);
	return 0;
}

/* The token that starts at s[i], which is no whitespace and no comment. */
static struct sqlscan_token token_at(const char *s, size_t len, size_t i)
{
	unsigned char c = (unsigned char)s[i];
	struct sqlscan_token t = { SQLSCAN_TOKEN_OTHER, i, i + 1 };
	if (is_ident_start(c)) {
		t.end = skip_ident(s, len, i);
		size_t literal = t.end == i + 1 ? skip_prefixed_literal(s, len, i) : 0;
		if (literal)
			t.end = literal;
		else
			t.kind = SQLSCAN_TOKEN_WORD;
	} else if (c == '\'') {
		t.end = skip_string(s, len, i, false);
	} else if (c == '"') {
		t.end = skip_quoted(s, len, i, false);
	} else if (c == '$' && i + 1 < len && is_digit((unsigned char)s[i + 1])) {
		t.kind = SQLSCAN_TOKEN_PARAM;
		t.end = skip_digits(s, len, i + 1);
	} else if (c == '$') {
		t.end = skip_dollar(s, len, i);
	} else if (is_digit(c) || (c == '.' && i + 1 < len && is_digit((unsigned char)s[i + 1]))) {
		t.end = skip_number(s, len, i);
	} else if (c == '(') {
		t.kind = SQLSCAN_TOKEN_OPEN;
	} else if (c == ')') {
		t.kind = SQLSCAN_TOKEN_CLOSE;
	} else if (c == ',') {
		t.kind = SQLSCAN_TOKEN_COMMA;
	}
	return t;
}

struct sqlscan_token sqlscan_token(const char *s, size_t len, size_t i)
{
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (is_space(c))
			i++;
		else if (c == '-' && i + 1 < len && s[i + 1] == '-')
			i = skip_line_comment(s, len, i);
		else if (c == '/' && i + 1 < len && s[i + 1] == '*')
			i = skip_block_comment(s, len, i);
		else
			return token_at(s, len, i);
	}
	return (struct sqlscan_token){ SQLSCAN_TOKEN_END, len, len };
}

bool sqlscan_token_is(const char *s, const struct sqlscan_token *t, const char *kw)
{
	if (t->kind != SQLSCAN_TOKEN_WORD || t->end - t->start != strlen(kw))
		return false;
	for (size_t k = 0; k < t->end - t->start; k++) {
		char c = s[t->start + k];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + ('a' - 'A'));
		if (c != kw[k])
			return false;
	}
	return true;
}

static unsigned keyword_bit(const char *w, size_t n)
{
	static const struct {
		const char *word;
		unsigned bit;
	} words[] = {
		{ "insert", SQLSCAN_INSERT },
		{ "with", SQLSCAN_WITH },
		{ "set", SQLSCAN_SET },
		{ "reset", SQLSCAN_SET },
		{ "deallocate", SQLSCAN_DEALLOCATE },
		{ "discard", SQLSCAN_DEALLOCATE },
	};
	for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
		if (strlen(words[k].word) == n && strncasecmp(w, words[k].word, n) == 0)
			return words[k].bit;
	}
	return 0;
}

/* Without a ';' before the end of the text only the first token can begin a
 * statement, so the rest needs no scan: the common case of one statement
 * (with or without its closing ';') costs a few comparisons. */
static unsigned first_keyword(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (is_space(c))
			i++;
		else if (c == '-' && i + 1 < len && s[i + 1] == '-')
			i = skip_line_comment(s, len, i);
		else if (c == '/' && i + 1 < len && s[i + 1] == '*')
			i = skip_block_comment(s, len, i);
		else if (!is_ident_start(c))
			return 0;
		else {
			size_t end = skip_ident(s, len, i);
			if (end == i + 1 && skip_prefixed_literal(s, len, i))
				return 0;
			return keyword_bit(s + i, end - i);
		}
	}
	return 0;
}

/* Only blanks and semicolons from p on: no statement starts there. */
static bool nothing_follows(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ';' && !is_space((unsigned char)*p))
			return false;
	return true;
}

unsigned sqlscan_leading_keywords(const char *s, size_t len)
{
	const char *semicolon = memchr(s, ';', len);
	if (!semicolon || nothing_follows(semicolon, s + len))
		return first_keyword(s, len);
	unsigned found = 0;
	bool at_start = true;
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (is_space(c)) {
			i++;
		} else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
			i = skip_line_comment(s, len, i);
		} else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
			i = skip_block_comment(s, len, i);
		} else if (c == ';') {
			at_start = true;
			i++;
		} else {
			if (is_ident_start(c)) {
				size_t end = skip_ident(s, len, i);
				size_t literal = end == i + 1 ? skip_prefixed_literal(s, len, i) : 0;
				if (at_start && !literal)
					found |= keyword_bit(s + i, end - i);
				i = literal ? literal : end;
			} else if (c == '\'') {
				i = skip_string(s, len, i, false);
			} else if (c == '"') {
				i = skip_quoted(s, len, i, false);
			} else if (c == '$') {
				i = skip_dollar(s, len, i);
			} else {
				i++;
			}
			at_start = false;
		}
	}
	return found;
}
