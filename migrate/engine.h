/* Shared pieces of up and down: preconditions, the function and extension,
 * and running a table's step list. */
#ifndef UUIDGATE_ENGINE_H
#define UUIDGATE_ENGINE_H

#include "catalog.h"
#include "runner.h"
#include "steps.h"

enum engine_verdict {
	ENGINE_RUN,             /* version 39 */
	ENGINE_AT_40,           /* version >= 40: verify, repair on request */
	ENGINE_NOT_APPLICABLE,  /* reason in the message */
};

/* PostgreSQL 12+, not 14.0-14.3 (CREATE INDEX CONCURRENTLY could corrupt
 * indexes before 14.4). */
bool engine_check_server(int server_version, struct mg_error *err);

/* What the version marker says about V40; reason gets why not. */
enum engine_verdict engine_verdict(const struct runner *r, const struct catalog *cat, char *reason,
				   size_t len);

/* pgcrypto and <prefix>.uuid_generate_v7(), then r->rand_uuid_sql. */
bool engine_prepare(struct runner *r, struct catalog *cat, struct mg_error *err);

/* Runs a table's steps in order; stops at a safe point when asked. */
bool engine_run_steps(struct runner *r, const struct table_state *t, struct step_list *l,
		      struct mg_error *err);

/* Tables still short of V40's end state, with reasons on the log. */
int engine_report_incomplete(struct runner *r, const struct catalog *cat, bool warn);

/* Runs fn holding the migration lock (waiting for it first). */
typedef bool (*engine_locked_fn)(struct runner *r, enum migrate_result *result,
				 struct mg_error *err);
bool engine_under_lock(struct runner *r, engine_locked_fn fn, enum migrate_result *result,
		       struct mg_error *err);

bool up_run(struct runner *r, enum migrate_result *result, struct mg_error *err);
bool down_run(struct runner *r, enum migrate_result *result, struct mg_error *err);

#endif
