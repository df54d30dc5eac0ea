/* The statements of the migration, one place per step. A table's state from
 * the catalog turns into a list of steps; `plan` prints the list, `up` and
 * `down` run it. Running a list twice is harmless: every statement is
 * guarded by IF [NOT] EXISTS or by the state it was planned from. */
#ifndef UUIDGATE_STEPS_H
#define UUIDGATE_STEPS_H

#include "catalog.h"
#include "runner.h"

enum step_kind {
	STEP_LOCKED,            /* brief ACCESS EXCLUSIVE (or lighter): lock_timeout, retried */
	STEP_WAIT,              /* may wait for other transactions without blocking them */
	STEP_BACKFILL,          /* batches by primary-key range */
	STEP_VACUUM,            /* after a backfill that wrote rows */
	STEP_VALIDATE,          /* VALIDATE; rows still NULL are filled and it runs again */
	STEP_CHECK_DUPLICATES,  /* a pre-existing column may hold repeated values */
	STEP_DROP_INVALID_INDEX,/* leftover of a failed build, once no build runs */
	STEP_BUILD_INDEX,       /* CREATE UNIQUE INDEX CONCURRENTLY */
};

struct step {
	enum step_kind kind;
	const char *what;       /* for logs and plan */
	const char *lock;       /* lock mode and how long it is held */
	char *sql;              /* main statement; NULL for kinds that build their own */
};

#define STEPS_MAX 16

struct step_list {
	struct step items[STEPS_MAX];
	int n;
	char *table_q;          /* "prefix"."table" */
	char *index_name;       /* <table>_uuid_idx */
	char *index_q;          /* "prefix"."<table>_uuid_idx" */
};

/* Steps bringing t to V40's end state; false with err when it cannot be
 * (wrong column type, conflicting index name). */
bool steps_plan_up(struct runner *r, const struct table_state *t, struct step_list *out,
		   struct mg_error *err);
/* Steps undoing what `up` did to t; a column without any comment is
 * PhoenixKit's own: index and column go, as in PhoenixKit's down. */
void steps_plan_down(struct runner *r, const struct table_state *t, struct step_list *out);
/* The last statement of down for a restored column: its comment goes. */
char *steps_sql_unmark(struct runner *r, const struct table_state *t);
void steps_free(struct step_list *list);

/* Statements outside tables. All malloc'd. */
char *steps_sql_stamp(struct runner *r, const char *version);
char *steps_sql_create_pgcrypto(struct runner *r);

#endif
