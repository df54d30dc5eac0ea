/* `migrate down`: version 40 -> 39, removing exactly what up added. */
#include <stdio.h>
#include <stdlib.h>

#include "engine.h"
#include "exec.h"
#include "mlog.h"
#include "progress.h"
#include "strb.h"

/* From 40; or from 39 when an interrupted down (or up) left marked columns. */
static bool down_applies(struct runner *r, const struct catalog *cat, char *reason, size_t len)
{
	char why[512];
	if (engine_verdict(r, cat, why, sizeof(why)) == ENGINE_NOT_APPLICABLE) {
		snprintf(reason, len, "%s", why);
		return false;
	}
	if (cat->version == 40 || (cat->version == 39 && catalog_has_marks(cat)))
		return true;
	snprintf(reason, len, "down to 39 applies only at version 40 (found %d%s)", cat->version,
		 cat->version == 39 ? ", and no column of uuidgate's is left" : "");
	return false;
}

/* Per table: a column up created is dropped, a column up completed gets its
 * earlier default, nullability and index back. A column without any comment
 * cannot be told apart from one PhoenixKit's own V40 created: it is dropped
 * with its index, as PhoenixKit's down does, and the log says so. */
static bool down_tables(struct runner *r, struct catalog *cat, struct mg_error *err)
{
	int total = 0, done = 0;
	for (int i = 0; i < CATALOG_TABLES; i++)
		total += cat->tables[i].exists;
	progress_phase(r->prog, MIGRATE_PHASE_MIGRATING);
	for (int i = CATALOG_TABLES - 1; i >= 0; i--) {
		struct table_state *t = &cat->tables[i];
		struct step_list steps;
		if (!t->exists)
			continue;
		if (t->has_uuid && t->mark == CATALOG_MARK_NONE)
			mlog_warn(r->opt, "%s: uuid column without uuidgate's mark (migrated by PhoenixKit's"
				  " own V40?): dropping it and its index as PhoenixKit's down does", t->name);
		if (t->has_uuid && t->mark == CATALOG_MARK_FOREIGN)
			mlog_warn(r->opt, "%s: uuid column with a comment of its own: kept as it is",
				  t->name);
		progress_table(r->prog, t->name, done, total);
		steps_plan_down(r, t, &steps);
		bool ok = engine_run_steps(r, t, &steps, err);
		steps_free(&steps);
		if (!ok)
			return false;
		progress_table(r->prog, t->name, ++done, total);
	}
	return true;
}

/* Only once nothing unmarked of PhoenixKit's is left do the restored
 * columns lose their marks, all in one transaction: a run killed halfway
 * must not leave a restored column looking like one of PhoenixKit's. */
static bool down_unmark(struct runner *r, struct mg_error *err)
{
	struct catalog cat;
	struct strb sql;
	if (!catalog_load(r, &cat, err))
		return false;
	strb_init(&sql);
	for (int i = 0; i < CATALOG_TABLES; i++) {
		struct table_state *t = &cat.tables[i];
		if (!t->exists || !t->has_uuid || t->mark != CATALOG_MARK_IS_RESTORED)
			continue;
		char *one = steps_sql_unmark(r, t);
		strb_printf(&sql, "%s%s", sql.len ? "; " : "", one);
		free(one);
	}
	bool ok = sql.len == 0 ||
		  exec_locked(r, "phoenix_kit", "remove the marks of restored columns", sql.buf, err);
	strb_free(&sql);
	catalog_free(&cat);
	return ok;
}

static bool down_locked(struct runner *r, enum migrate_result *result, struct mg_error *err)
{
	struct catalog cat;
	char reason[512];
	if (!catalog_load(r, &cat, err))
		return false;
	bool ok = true;
	if (!down_applies(r, &cat, reason, sizeof(reason))) {
		*result = MIGRATE_RESULT_NOT_APPLICABLE;
		progress_message(r->prog, "%s", reason);
		catalog_free(&cat);
		return true;
	}
	if (!catalog_has_marks(&cat))
		mlog_warn(r->opt, "no column carries uuidgate's mark: this database was migrated by"
			  " PhoenixKit's own V40, so down behaves like PhoenixKit's: every uuid column and"
			  " its index are dropped, including columns that existed before V40");
	if (cat.version == 40) {
		char *sql = steps_sql_stamp(r, "39");
		progress_phase(r->prog, MIGRATE_PHASE_STAMPING);
		ok = exec_locked(r, "phoenix_kit", "stamp version 39", sql, err);
		free(sql);
	}
	ok = ok && down_tables(r, &cat, err) && down_unmark(r, err);
	if (ok)
		progress_message(r->prog, "down to version 39");
	catalog_free(&cat);
	return ok;
}

bool down_run(struct runner *r, enum migrate_result *result, struct mg_error *err)
{
	struct catalog cat;
	char reason[512];
	*result = MIGRATE_RESULT_DONE;
	if (!catalog_load(r, &cat, err))
		return false;
	progress_version(r->prog, cat.has_version ? cat.version : -1);
	bool applies = down_applies(r, &cat, reason, sizeof(reason));
	catalog_free(&cat);
	if (!applies) {
		*result = MIGRATE_RESULT_NOT_APPLICABLE;
		progress_message(r->prog, "%s", reason);
		return true;
	}
	return engine_under_lock(r, down_locked, result, err);
}
