/* The extended-protocol side of the INSERT rewriter, over whole messages:
 * Parse is rewritten once, every Bind to the statement then gets fresh values
 * for the added parameters, and the ParameterDescription and ErrorResponse
 * the server sends back are trimmed and remapped so that the client never
 * sees a parameter or a position it did not write.
 *
 * Bodies are the bytes after the 5-byte header; outputs are whole messages
 * (type byte and length included) appended to a pgbuf. */
#ifndef UUIDGATE_REWRITE_EXT_H
#define UUIDGATE_REWRITE_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgbuf.h"
#include "rewrite.h"
#include "uuidv7.h"

/* Parse ('P'): on REWRITE_DONE, out holds the new Parse (the rewritten text;
 * parameter types: the declared ones, 0 up to res->orig_params, then
 * res->extra_params times uuid) and res describes the statement (the caller
 * keeps res->posmap for errors the server reports against this Parse, and
 * frees res). A malformed body passes through for the server to reject. */
enum rewrite_status rewrite_ext_parse(const struct rewrite_session *s, const uint8_t *body,
				      size_t len, struct pgbuf *out, struct rewrite_result *res);

/* An error the proxy turns into an ErrorResponse instead of forwarding. */
struct rewrite_ext_error {
	const char *sqlstate;
	char message[160];
};

enum rewrite_bind_status {
	REWRITE_BIND_OK,		/* out holds the new Bind */
	REWRITE_BIND_ERROR,		/* err says what the client did wrong */
	REWRITE_BIND_NO_MEMORY,		/* the random source or an allocation failed */
};

/* Bind ('B') to a rewritten statement: appends extra_params fresh values
 * drawn from gen. Parameter format codes: none (all text) and a single 0 or
 * 1 code (for all, ours included) stay as they are; one code per parameter
 * gets a binary code per added value. Result format codes are untouched.
 * The client's Bind is checked as the server would check it against the
 * statement the client prepared (orig_params parameters, named stmt). */
enum rewrite_bind_status rewrite_ext_bind(const uint8_t *body, size_t len, uint32_t orig_params,
					  uint32_t extra_params, struct uuidv7_gen *gen,
					  struct pgbuf *out, struct rewrite_ext_error *err);

/* ParameterDescription ('t'): drops the last extra_params types. False when
 * the body is malformed or holds fewer types. */
bool rewrite_ext_param_desc(const uint8_t *body, size_t len, uint32_t extra_params,
			    struct pgbuf *out);

/* ErrorResponse or NoticeResponse (type 'E' or 'N'): maps the 'P' field
 * through m, other fields copied. False when the body is malformed. */
bool rewrite_ext_error_position(char type, const uint8_t *body, size_t len,
				const struct rewrite_posmap *m, struct pgbuf *out);

#endif
