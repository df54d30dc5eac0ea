/* A cheap lexical pass over SQL text that reports which keywords begin its
 * statements, so that text which cannot hold a top-level INSERT (or a SET,
 * DEALLOCATE, ...) is never handed to the real parser.
 *
 * It knows PostgreSQL's lexical rules for comments (nested), quoted
 * identifiers, standard and E'' strings and dollar quotes, assuming
 * standard_conforming_strings is on. A ';' inside parentheses or a function
 * body counts as a statement boundary too: that yields false positives (the
 * parser then decides), never a missed statement. */
#ifndef UUIDGATE_SQLSCAN_H
#define UUIDGATE_SQLSCAN_H

#include <stddef.h>

enum sqlscan_keyword {
	SQLSCAN_INSERT = 1u << 0,
	SQLSCAN_WITH = 1u << 1,
	SQLSCAN_SET = 1u << 2,		/* SET or RESET */
	SQLSCAN_DEALLOCATE = 1u << 3,	/* DEALLOCATE or DISCARD */
};

/* A bitwise OR of the sqlscan_keyword values that begin some statement. */
unsigned sqlscan_leading_keywords(const char *sql, size_t len);

#endif
