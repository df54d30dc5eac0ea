/* The INSERT rewriter: adds a UUIDv7 for the `uuid` column to INSERTs into the
 * migrated tables that do not set it.
 *
 * It rewrites only when certain: a top-level INSERT (possibly under a
 * top-level WITH) with a column list that does not name uuid, or with
 * DEFAULT VALUES, whose rows are a plain VALUES list, into a migrated table
 * that is qualified with the migration schema or unqualified while the
 * session's search_path resolves it there; on a UTF8 session with
 * standard_conforming_strings on. Everything else passes through unchanged
 * (the column's default still fills it).
 *
 * The text is parsed with PostgreSQL's own parser (libpg_query, read from its
 * JSON output) and changed by splicing at token boundaries, never by
 * deparsing, so the server sees the client's text with only the added column
 * and values. The tokens come from a scanner with the parser's lexical rules
 * (sqlscan.h), and a statement is changed only where they agree with the
 * locations the parser reports for its columns and values.
 *
 * Not thread-safe through the generator it is given; libpg_query itself keeps
 * per-thread state. */
#ifndef UUIDGATE_REWRITE_H
#define UUIDGATE_REWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uuidv7.h"

#define REWRITE_UUID_TYPE_OID 2950u
#define REWRITE_MAX_PARAMS 65535u

/* What the caller knows about the session. */
struct rewrite_session {
	const char *schema;		/* migration schema, as the catalog spells it */
	const char *const *tables;	/* migrated table names, as the catalog spells them */
	size_t n_tables;
	/* search_path resolves unqualified names of these tables to schema */
	bool unqualified_in_schema;
	/* client_encoding is UTF8 and standard_conforming_strings is on */
	bool utf8_standard_strings;
};

enum rewrite_status {
	REWRITE_PASS,		/* forward the original text */
	REWRITE_DONE,		/* forward result.sql */
	REWRITE_NO_MEMORY,	/* forward the original text, or fail the session */
};

/* One change to the client's text, in characters (the unit of the server's
 * error positions). */
struct rewrite_splice {
	uint32_t orig_char;	/* 0-based character offset in the original */
	uint32_t del_chars;	/* original characters replaced */
	uint32_t ins_chars;	/* characters inserted in their place */
};

/* Maps positions in the rewritten text back to the client's text. Owned by
 * whoever holds it; movable by struct copy. */
struct rewrite_posmap {
	struct rewrite_splice *splices;	/* sorted by orig_char */
	size_t n;
};

struct rewrite_result {
	char *sql;		/* NUL-terminated, malloc'd; NULL unless REWRITE_DONE */
	size_t sql_len;
	uint32_t rows;		/* values added (one per VALUES row) */
	/* Extended protocol only: */
	uint32_t declared_params; /* parameter types the Parse declared */
	uint32_t orig_params;	/* the statement's parameters as the client sees
				   them: max(declared, highest $k) */
	uint32_t extra_params;	/* added parameters $orig+1 .. $orig+extra, each of
				   type uuid; equals rows */
	struct rewrite_posmap posmap;
};

/* Simple Query: every qualifying INSERT of the (possibly multi-statement)
 * text gets literal values drawn from gen. A text that also holds a SET or
 * RESET passes through whole: the session settings the decision relies on
 * might change half way. */
enum rewrite_status rewrite_query(const struct rewrite_session *s, struct uuidv7_gen *gen,
				  const char *sql, struct rewrite_result *out);

/* Extended protocol (Parse): the single statement's rows get parameters
 * numbered after max(declared_params, highest $k) instead of literals. Passes
 * through when the total would exceed REWRITE_MAX_PARAMS. */
enum rewrite_status rewrite_parse_sql(const struct rewrite_session *s, const char *sql,
				      uint32_t declared_params, struct rewrite_result *out);

void rewrite_result_free(struct rewrite_result *r);
void rewrite_posmap_free(struct rewrite_posmap *m);

/* A 1-based character position in the rewritten text (an ErrorResponse 'P'
 * field) as a 1-based position in the client's text; a position inside added
 * text points at the place it was added. 0 stays 0. */
uint32_t rewrite_posmap_original(const struct rewrite_posmap *m, uint32_t pos);

/* The prepared statements a simple Query's text deallocates, in order: one
 * name per DEALLOCATE, NULL for DEALLOCATE ALL and DISCARD ALL. The names
 * and the array are malloc'd (free with rewrite_deallocations_free). False
 * only when out of memory. */
bool rewrite_deallocations(const char *sql, char ***names, size_t *n);
void rewrite_deallocations_free(char **names, size_t n);

#endif
