/* Cheap lexical passes over SQL text: which keywords begin its statements,
 * so that text which cannot hold a top-level INSERT (or a SET, DEALLOCATE,
 * ...) is never handed to the real parser; and the tokens of text the parser
 * has accepted, for the places to splice at.
 *
 * Both follow the lexical rules of PostgreSQL 15's scanner for comments
 * (nested), quoted identifiers, standard, E'', B'', X'', N'' and U&'' strings
 * (continued over a newline, an E'' one with its escapes), dollar quotes,
 * parameters and numbers, assuming standard_conforming_strings is on. */
#ifndef UUIDGATE_SQLSCAN_H
#define UUIDGATE_SQLSCAN_H

#include <stdbool.h>
#include <stddef.h>

enum sqlscan_keyword {
	SQLSCAN_INSERT = 1u << 0,
	SQLSCAN_WITH = 1u << 1,
	SQLSCAN_SET = 1u << 2,		/* SET or RESET */
	SQLSCAN_DEALLOCATE = 1u << 3,	/* DEALLOCATE or DISCARD */
};

/* A bitwise OR of the sqlscan_keyword values that begin some statement. A
 * ';' inside parentheses or a function body counts as a statement boundary
 * too: that yields false positives (the parser then decides), never a missed
 * statement. */
unsigned sqlscan_leading_keywords(const char *sql, size_t len);

enum sqlscan_token_kind {
	SQLSCAN_TOKEN_END,	/* no token before the end of the text */
	SQLSCAN_TOKEN_WORD,	/* an unquoted identifier or keyword */
	SQLSCAN_TOKEN_PARAM,	/* $n */
	SQLSCAN_TOKEN_OPEN,	/* ( */
	SQLSCAN_TOKEN_CLOSE,	/* ) */
	SQLSCAN_TOKEN_COMMA,	/* , */
	SQLSCAN_TOKEN_OTHER,	/* a literal, quoted identifier or other punctuation */
};

struct sqlscan_token {
	enum sqlscan_token_kind kind;
	size_t start;		/* byte offsets; both len at SQLSCAN_TOKEN_END */
	size_t end;
};

/* The first token that starts at or after byte offset pos, past whitespace
 * and comments. pos must be where the scanner would begin a token, a comment
 * or whitespace (0, a token's end, or a location the parser reported);
 * elsewhere the answer means nothing. The boundaries are the scanner's for
 * every token that can begin or end a parenthesis, a list or a literal;
 * operators come one byte at a time. */
struct sqlscan_token sqlscan_token(const char *sql, size_t len, size_t pos);

/* Whether t is the unquoted keyword kw (lower case), in any ASCII case. */
bool sqlscan_token_is(const char *sql, const struct sqlscan_token *t, const char *kw);

#endif
