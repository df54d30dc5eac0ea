/* `migrate up`: version 39 -> 40, or completing a database at >= 40. */
#include <stdio.h>
#include <stdlib.h>

#include "engine.h"
#include "exec.h"
#include "mlog.h"
#include "progress.h"

static int up_existing_tables(const struct catalog *cat)
{
	int n = 0;
	for (int i = 0; i < CATALOG_TABLES; i++)
		n += cat->tables[i].exists;
	return n;
}

static bool up_table(struct runner *r, struct catalog *cat, int idx, struct mg_error *err)
{
	struct table_state *t = &cat->tables[idx];
	struct step_list steps;
	char why[512];
	if (catalog_table_complete(t, NULL, 0))
		return true;
	if (t->triggers)
		mlog_warn(r->opt, "%s: the backfill's UPDATEs fire these user triggers on every row: %s",
			  t->name, t->triggers);
	if (t->has_uuid && t->mark == CATALOG_MARK_FOREIGN)
		mlog_warn(r->opt, "%s: the existing uuid column carries a comment of its own; it is"
			  " kept, so down will leave this column as up leaves it", t->name);
	bool ok = steps_plan_up(r, t, &steps, err) && engine_run_steps(r, t, &steps, err);
	steps_free(&steps);
	if (!ok)
		return false;
	if (!catalog_reload_table(r, cat, idx, err))
		return false;
	if (!catalog_table_complete(t, why, sizeof(why))) {
		mg_error_set(err, "55000", true, "%s: still incomplete after its steps: %s", t->name, why);
		return false;
	}
	mlog_info(r->opt, "%s: done", t->name);
	return true;
}

static bool up_tables(struct runner *r, struct catalog *cat, struct mg_error *err)
{
	int total = up_existing_tables(cat), done = 0;
	progress_phase(r->prog, MIGRATE_PHASE_MIGRATING);
	/* Rows to backfill, estimated from the statistics until each table's
	 * exact count replaces its estimate (backfill_run). */
	for (int i = 0; i < CATALOG_TABLES; i++)
		if (cat->tables[i].exists && !cat->tables[i].uuid_notnull)
			progress_rows_total(r->prog, cat->tables[i].reltuples);
	for (int i = 0; i < CATALOG_TABLES; i++) {
		if (!cat->tables[i].exists) {
			mlog_info(r->opt, "%s: table missing (module not installed), skipped",
				  catalog_tables[i]);
			continue;
		}
		progress_table(r->prog, catalog_tables[i], done, total);
		if (!up_table(r, cat, i, err))
			return false;
		progress_table(r->prog, catalog_tables[i], ++done, total);
	}
	return true;
}

/* The marker is written last and only when every table checks out: a
 * database at '40' is complete by construction. */
static bool up_stamp(struct runner *r, struct mg_error *err)
{
	struct catalog cat;
	progress_phase(r->prog, MIGRATE_PHASE_STAMPING);
	if (!catalog_load(r, &cat, err))
		return false;
	bool ok = true;
	if (!cat.has_version || cat.version != 39) {
		mg_error_set(err, "55000", false, "the version marker changed during the migration");
		ok = false;
	} else if (engine_report_incomplete(r, &cat, true) > 0 || !cat.fn_exists) {
		mg_error_set(err, "55000", true, "tables are incomplete: not stamping 40");
		ok = false;
	}
	catalog_free(&cat);
	if (!ok)
		return false;
	char *sql = steps_sql_stamp(r, "40");
	ok = exec_locked(r, "phoenix_kit", "stamp version 40", sql, err);
	free(sql);
	return ok;
}

static bool up_verify_only(struct runner *r, const struct catalog *cat)
{
	char msg[256];
	int n = engine_report_incomplete(r, cat, true);
	progress_incomplete(r->prog, n);
	if (n == 0)
		snprintf(msg, sizeof(msg), "at version %d; every table verified complete", cat->version);
	else
		snprintf(msg, sizeof(msg), "at version %d; %d table(s) incomplete: run migrate up"
			 " --repair to complete them online", cat->version, n);
	progress_message(r->prog, "%s", msg);
	mlog(r->opt, n ? MIGRATE_LOG_WARNING : MIGRATE_LOG_INFO, "%s", msg);
	return true;
}

/* What needs no lock ends here: V40 does not apply, or at >= 40 without
 * --repair only the verification is asked for. */
static bool up_settled(struct runner *r, const struct catalog *cat, enum migrate_result *result)
{
	char reason[512];
	enum engine_verdict v = engine_verdict(r, cat, reason, sizeof(reason));
	if (v == ENGINE_NOT_APPLICABLE) {
		*result = MIGRATE_RESULT_NOT_APPLICABLE;
		progress_message(r->prog, "%s", reason);
		return true;
	}
	if (v == ENGINE_AT_40 && !r->opt->repair)
		return up_verify_only(r, cat);
	return false;
}

/* Under the migration lock, with the catalog read afresh: another runner may
 * have finished while this one waited. */
static bool up_locked(struct runner *r, enum migrate_result *result, struct mg_error *err)
{
	struct catalog cat;
	if (!catalog_load(r, &cat, err))
		return false;
	bool ok = true;
	if (!up_settled(r, &cat, result)) {
		bool stamp = cat.version == 39;
		ok = engine_prepare(r, &cat, err) && up_tables(r, &cat, err);
		if (ok && stamp)
			ok = up_stamp(r, err);
		if (ok)
			progress_message(r->prog, stamp ? "migrated to version 40"
				: "repaired at version %d: every table complete", cat.version);
	}
	catalog_free(&cat);
	return ok;
}

bool up_run(struct runner *r, enum migrate_result *result, struct mg_error *err)
{
	struct catalog cat;
	*result = MIGRATE_RESULT_DONE;
	if (!catalog_load(r, &cat, err))
		return false;
	progress_version(r->prog, cat.has_version ? cat.version : -1);
	bool settled = up_settled(r, &cat, result);
	catalog_free(&cat);
	return settled || engine_under_lock(r, up_locked, result, err);
}
