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

/* Each skip_* function starts at the opening character and returns the
 * offset just past the construct, or len when it is not terminated. */

static size_t skip_line_comment(const char *s, size_t len, size_t i)
{
	const char *nl = memchr(s + i, '\n', len - i);
	return nl ? (size_t)(nl - s) + 1 : len;
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

/* $tag$...$tag$, or just past the '$' when no valid delimiter starts here
 * (a parameter like $1, or a stray '$'). */
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

unsigned sqlscan_leading_keywords(const char *s, size_t len)
{
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
		} else if (is_ident_start(c)) {
			size_t start = i;
			while (i < len && is_ident_char((unsigned char)s[i]))
				i++;
			if (at_start)
				found |= keyword_bit(s + start, i - start);
			at_start = false;
			/* E'...' is the one prefixed string whose quoting differs */
			if (i < len && s[i] == '\'' && i - start == 1 && (s[start] == 'e' || s[start] == 'E'))
				i = skip_quoted(s, len, i, true);
		} else {
			at_start = false;
			if (c == '\'' || c == '"')
				i = skip_quoted(s, len, i, false);
			else if (c == '$')
				i = skip_dollar(s, len, i);
			else
				i++;
		}
	}
	return found;
}
