/* One session's prepared statements as the server sees them, for the INSERT
 * rewriter: which statements were rewritten, with how many parameters the
 * client declared and how many were added.
 *
 * The server changes its statements in the order it processes messages, and
 * confirms or drops each change in its replies; the proxy forwards messages
 * long before the replies arrive (pipelining). So the map is a committed
 * table plus a queue of the operations the client has sent, in order:
 *
 *  - the proxy reports every client message it forwards that the server
 *    answers (stmtmap_parse, _close, _other, _sync, _query, _function_call),
 *  - and every server message type (stmtmap_server), which confirms or drops
 *    the head of the queue: ParseComplete commits a Parse, CloseComplete a
 *    Close, ErrorResponse drops the failing message and, as the server does,
 *    every message after it up to the next Sync; ReadyForQuery ends a Sync or
 *    Query.
 *
 * Server rules it follows: a Parse of an existing name fails (42P05) and
 * leaves the statement as it was; Parse of the unnamed statement and any
 * simple Query drop the unnamed statement first, so even when they fail it is
 * gone; DEALLOCATE and DISCARD ALL in a simple Query remove statements when
 * their CommandComplete arrives.
 *
 * stmtmap_lookup answers for a Bind about to be forwarded: the statement as it
 * will be when the server reaches that Bind, pending operations included (a
 * Bind right after Parse+Describe+Flush sees the Parse).
 *
 * Not thread-safe; one map per client session. */
#ifndef UUIDGATE_STMTMAP_H
#define UUIDGATE_STMTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rewrite.h"

struct stmtmap;

struct stmtmap_entry {
	uint32_t orig_params;	/* parameters the client's statement has */
	uint32_t extra_params;	/* parameters the rewriter added after them; 0:
				   not rewritten */
	uint32_t rows;		/* VALUES rows that get a value */
};

struct stmtmap *stmtmap_new(void);
void stmtmap_free(struct stmtmap *m);

/* ---- client messages, in the order they are forwarded ---- */

/* Parse. entry is NULL when the statement was not rewritten; posmap (may be
 * NULL) is taken over, for errors the server reports against this Parse.
 * All push functions return false only when out of memory. */
bool stmtmap_parse(struct stmtmap *m, const char *name, const struct stmtmap_entry *entry,
		   struct rewrite_posmap *posmap);
/* Close of a statement ('S'). Close of a portal is stmtmap_other. */
bool stmtmap_close(struct stmtmap *m, const char *name);
/* Bind, Describe, Execute, Close of a portal: each answered by one reply
 * (BindComplete, RowDescription or NoData, CommandComplete,
 * EmptyQueryResponse, PortalSuspended, CloseComplete) or an error. */
bool stmtmap_other(struct stmtmap *m);
/* Describe of a statement ('S'): like stmtmap_other, and remembers how many
 * parameters the server's ParameterDescription will show that the client
 * must not see (stmtmap_current_hidden_params). */
bool stmtmap_describe_statement(struct stmtmap *m, const char *name);
bool stmtmap_sync(struct stmtmap *m);
/* Query, with its original text (for DEALLOCATE and DISCARD ALL) and the
 * rewriter's posmap when it was rewritten (taken over; may be NULL). */
bool stmtmap_query(struct stmtmap *m, const char *sql, struct rewrite_posmap *posmap);
bool stmtmap_function_call(struct stmtmap *m);

/* ---- server messages ---- */

/* Reports one server message (type byte and body after the header); only
 * the types that answer client messages matter, the rest are ignored. */
void stmtmap_server(struct stmtmap *m, char type, const uint8_t *body, size_t len);

/* The posmap of the Parse or Query the server is answering now, for an
 * ErrorResponse about to be forwarded (call before stmtmap_server); NULL
 * when that text was not rewritten. */
const struct rewrite_posmap *stmtmap_current_posmap(const struct stmtmap *m);

/* For a ParameterDescription about to be forwarded: how many trailing
 * parameter types to drop (rewrite_ext_param_desc); 0 when none. */
uint32_t stmtmap_current_hidden_params(const struct stmtmap *m);

/* ---- lookups ---- */

/* The statement a Bind forwarded now would use, or NULL when the map knows
 * of none. The pointer is valid until the next call on the map. */
const struct stmtmap_entry *stmtmap_lookup(const struct stmtmap *m, const char *name);

/* Operations sent but not yet answered, for tests and diagnostics. */
size_t stmtmap_pending(const struct stmtmap *m);

#endif
