/* Filling the uuid column of existing rows without holding the application
 * up: batches by primary-key range, each its own short transaction sized to a
 * time target, rows the application holds skipped and revisited. */
#ifndef UUIDGATE_BACKFILL_H
#define UUIDGATE_BACKFILL_H

#include "catalog.h"
#include "runner.h"

/* Fills NULL uuids of t in batches (opt->workers connections); *written gets
 * the number of rows written. Rows still held by the application after the
 * retry passes are logged with their holders and left for
 * backfill_fill_rest(). */
bool backfill_run(struct runner *r, const struct table_state *t, int64_t *written,
		  struct mg_error *err);

/* Fills whatever is still NULL, waiting (under lock_timeout, retried) for
 * rows the application holds: run once the NOT VALID check stops new NULLs. */
bool backfill_fill_rest(struct runner *r, const struct table_state *t, struct mg_error *err);

/* The statement one batch runs ($1, $2: key range, $3: start time), for
 * `plan`. malloc'd; NULL when t has no integer primary key. */
char *backfill_batch_statement(struct runner *r, const struct table_state *t);

#endif
