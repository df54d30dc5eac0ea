#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "coord.h"
#include "exec.h"
#include "mlog.h"
#include "mtime.h"
#include "progress.h"
#include "strb.h"
#include "uuidv7_sql.h"

bool engine_check_server(int v, struct mg_error *err)
{
	if (v < 120000) {
		mg_error_set(err, "0A000", false, "PostgreSQL %d.%d is too old: V40 online needs 12 or"
			     " later (SET NOT NULL trusting a valid CHECK)", v / 10000, v % 10000);
		return false;
	}
	if (v >= 140000 && v < 140004) {
		mg_error_set(err, "0A000", false, "PostgreSQL 14.%d can corrupt indexes built with"
			     " CREATE INDEX CONCURRENTLY (fixed in 14.4): upgrade first", v % 100);
		return false;
	}
	return true;
}

enum engine_verdict engine_verdict(const struct runner *r, const struct catalog *cat, char *reason,
				   size_t len)
{
	const char *p = r->opt->prefix;
	if (!cat->schema_exists)
		snprintf(reason, len, "schema %s does not exist: no PhoenixKit install to migrate", p);
	else if (!cat->marker_table)
		snprintf(reason, len, "table %s.phoenix_kit does not exist: no PhoenixKit install"
			 " (PhoenixKit's own migrator creates it)", p);
	else if (!cat->has_version)
		snprintf(reason, len, "%s.phoenix_kit carries no version marker (comment %s%s%s): a"
			 " fresh install, PhoenixKit's own migrator runs every version", p,
			 cat->marker_text ? "'" : "", cat->marker_text ? cat->marker_text : "none",
			 cat->marker_text ? "'" : "");
	else if (cat->version < 39)
		snprintf(reason, len, "PhoenixKit is at version %d; V40 needs 39 (PhoenixKit's own"
			 " migrator must run V%d..V39 first, so nothing was changed)", cat->version,
			 cat->version + 1);
	else if (cat->version == 39)
		return ENGINE_RUN;
	else
		return ENGINE_AT_40;
	return ENGINE_NOT_APPLICABLE;
}

static bool engine_pgcrypto(struct runner *r, struct catalog *cat, struct mg_error *err)
{
	if (cat->pgcrypto_schema)
		return true;
	char *sql = steps_sql_create_pgcrypto(r);
	mlog_info(r->opt, "creating extension pgcrypto: %s", sql);
	bool ok = db_command(r->conn, sql, err);
	if (!ok) {
		char why[512];
		snprintf(why, sizeof(why), "%s", err->message);
		mg_error_set(err, err->sqlstate, false, "extension pgcrypto is missing and this role"
			     " cannot create it (%s): have a superuser run: %s;", why, sql);
	}
	free(sql);
	if (!ok)
		return false;
	catalog_free(cat);
	return catalog_load(r, cat, err);
}

static bool engine_function(struct runner *r, struct catalog *cat, struct mg_error *err)
{
	if (cat->fn_exists) {
		mlog_info(r->opt, "keeping the existing %s.uuid_generate_v7() (%s)", r->opt->prefix,
			  cat->fn_language);
		return uuidv7_check_function(r, err);
	}
	char *sql = uuidv7_create_function_sql(r->conn, r->opt->prefix, r->rand_uuid_sql);
	mlog_info(r->opt, "creating %s.uuid_generate_v7()", r->opt->prefix);
	bool ok = db_command(r->conn, sql, err);
	free(sql);
	/* Another install may have created it meanwhile: check what is there. */
	if (!ok && !mg_error_is(err, "42723"))
		return false;
	mg_error_clear(err);
	return uuidv7_check_function(r, err);
}

bool engine_prepare(struct runner *r, struct catalog *cat, struct mg_error *err)
{
	progress_phase(r->prog, MIGRATE_PHASE_PREPARING);
	if (!engine_pgcrypto(r, cat, err))
		return false;
	free(r->rand_uuid_sql);
	r->rand_uuid_sql = uuidv7_random_source(r->conn, cat->server_version, cat->pgcrypto_schema);
	return engine_function(r, cat, err);
}

/* Duplicate values in a pre-existing column would make the index build fail
 * after a full scan; say which ones, so the operator can fix them. */
static bool engine_check_duplicates(struct runner *r, const struct table_state *t,
				    struct step_list *l, struct mg_error *err)
{
	struct strb sql, key;
	strb_init(&sql);
	strb_init(&key);
	catalog_row_key(&key, r->conn, t);
	const char *vals[] = { key.buf, l->table_q };
	strb_subst(&sql,
		"SELECT count(*) OVER (), uuid, n, ids FROM (SELECT uuid, count(*) AS n,"
		" left(string_agg({1}::text, ',' ORDER BY {1}), 200) AS ids FROM {2}"
		" WHERE uuid IS NOT NULL GROUP BY uuid HAVING count(*) > 1) d ORDER BY n DESC, uuid"
		" LIMIT 5", vals, 2);
	struct db_wait wait = { .stop = r->stop };
	PGresult *res = db_run(r->conn, sql.buf, 0, NULL, &wait, err);
	strb_free(&sql);
	if (!res) {
		strb_free(&key);
		return false;
	}
	int n = PQntuples(res);
	if (n > 0) {
		struct strb list;
		strb_init(&list);
		for (int i = 0; i < n; i++)
			strb_printf(&list, "%s%s on %s %s", i ? "; " : "", PQgetvalue(res, i, 1),
				    t->pk[0] ? t->pk : "ctid", PQgetvalue(res, i, 3));
		mg_error_set(err, "23505", false,
			     "%s: %s uuid value(s) occur more than once: %s. Make them distinct (for"
			     " example set all but one to NULL: migrate up fills NULLs), then run again",
			     t->name, PQgetvalue(res, 0, 0), list.buf);
		strb_free(&list);
	}
	PQclear(res);
	strb_free(&key);
	return n == 0;
}

/* Dropping an invalid index that a build is still working on would fail that
 * build; wait until no backend builds it. */
static bool engine_wait_no_build(struct runner *r, const struct table_state *t,
				 struct step_list *l, struct mg_error *err)
{
	char oid[16];
	snprintf(oid, sizeof(oid), "%u", t->named_index_oid);
	const char *params[] = { oid, l->index_name };
	int64_t next_log = 0;
	for (;;) {
		PGresult *res = db_query(r->conn,
			"SELECT string_agg(format('pid %s (application_name %L, state %s, started %s)',"
			" a.pid, a.application_name, a.state, a.query_start), '; ')"
			" FROM pg_stat_activity a WHERE a.pid <> pg_backend_pid() AND (a.pid IN"
			" (SELECT pid FROM pg_stat_progress_create_index WHERE index_relid = $1::oid)"
			" OR (a.state = 'active' AND a.query ~* 'create\\s+(unique\\s+)?index'"
			" AND position($2 IN a.query) > 0))",
			2, params, err);
		if (!res)
			return false;
		bool busy = !PQgetisnull(res, 0, 0);
		if (busy && mtime_now_ms() >= next_log) {
			mlog_info(r->opt, "%s: invalid index %s is still being built by %s; waiting",
				  t->name, l->index_name, PQgetvalue(res, 0, 0));
			next_log = mtime_now_ms() + r->opt->progress_interval_ms;
		}
		PQclear(res);
		if (!busy)
			return true;
		if (!mtime_sleep(500, r->stop)) {
			mg_error_set(err, "57014", true, "stopped");
			return false;
		}
	}
}

/* A failed unique build leaves an INVALID index behind: drop it at once so
 * that nothing of ours is left, then name the duplicates. */
static bool engine_build_index(struct runner *r, const struct table_state *t, struct step *s,
			       struct step_list *l, struct mg_error *err)
{
	if (exec_waiting(r, t->name, s->what, s->sql, err))
		return true;
	if (!mg_error_is(err, "23505"))
		return false;
	struct mg_error drop_err, dup_err;
	mg_error_clear(&drop_err);
	mg_error_clear(&dup_err);
	char *drop = strb_fmt("DROP INDEX CONCURRENTLY IF EXISTS %s", l->index_q);
	exec_waiting(r, t->name, "drop the failed unique index", drop, &drop_err);
	free(drop);
	if (!engine_check_duplicates(r, t, l, &dup_err))
		*err = dup_err;
	err->transient = false;
	return false;
}

/* A check violation means rows are still NULL; a full scan to look for
 * them first would cost as much as the validation itself. */
static bool engine_validate(struct runner *r, const struct table_state *t, struct step *s,
			    struct mg_error *err)
{
	if (exec_waiting(r, t->name, s->what, s->sql, err))
		return true;
	if (!mg_error_is(err, "23514"))
		return false;
	mlog_info(r->opt, "%s: rows are still NULL: filling them", t->name);
	mg_error_clear(err);
	return backfill_fill_rest(r, t, err) && exec_waiting(r, t->name, s->what, s->sql, err);
}

static bool engine_step(struct runner *r, const struct table_state *t, struct step_list *l,
			struct step *s, int64_t *written, struct mg_error *err)
{
	switch (s->kind) {
	case STEP_LOCKED:
		return exec_locked(r, t->name, s->what, s->sql, err);
	case STEP_WAIT:
		return exec_waiting(r, t->name, s->what, s->sql, err);
	case STEP_BACKFILL:
		return backfill_run(r, t, written, err);
	case STEP_VACUUM:
		return *written == 0 || exec_waiting(r, t->name, s->what, s->sql, err);
	case STEP_VALIDATE:
		return engine_validate(r, t, s, err);
	case STEP_CHECK_DUPLICATES:
		return engine_check_duplicates(r, t, l, err);
	case STEP_DROP_INVALID_INDEX:
		return engine_wait_no_build(r, t, l, err) &&
		       exec_waiting(r, t->name, s->what, s->sql, err);
	case STEP_BUILD_INDEX:
		return engine_build_index(r, t, s, l, err);
	}
	return false;
}

bool engine_run_steps(struct runner *r, const struct table_state *t, struct step_list *l,
		      struct mg_error *err)
{
	int64_t written = 0;
	for (int i = 0; i < l->n; i++) {
		if (atomic_load(r->stop)) {
			mg_error_set(err, "57014", true, "stopped at a safe point (%s, before: %s)",
				     t->name, l->items[i].what);
			return false;
		}
		if (!engine_step(r, t, l, &l->items[i], &written, err)) {
			/* A cancel we asked for is a stop, whatever the statement said. */
			if (atomic_load(r->stop) && !mg_error_is(err, "08006"))
				mg_error_set(err, "57014", true, "stopped (%s, during: %s); the next run"
					     " resumes from here", t->name, l->items[i].what);
			return false;
		}
	}
	return true;
}

int engine_report_incomplete(struct runner *r, const struct catalog *cat, bool warn)
{
	int n = 0;
	char why[512];
	for (int i = 0; i < CATALOG_TABLES; i++) {
		const struct table_state *t = &cat->tables[i];
		if (!t->exists || catalog_table_complete(t, why, sizeof(why)))
			continue;
		n++;
		mlog(r->opt, warn ? MIGRATE_LOG_WARNING : MIGRATE_LOG_INFO, "%s.%s is incomplete: %s",
		     r->opt->prefix, t->name, why);
	}
	return n;
}

bool engine_under_lock(struct runner *r, engine_locked_fn fn, enum migrate_result *result,
		       struct mg_error *err)
{
	bool ok = coord_acquire(r, &r->coord, err) && fn(r, result, err);
	if (!ok && coord_lost(r->coord))
		mg_error_set(err, "08006", true, "lost the connection holding the migration lock:"
			     " stopped every worker");
	coord_release(r->coord);
	r->coord = NULL;
	return ok;
}
