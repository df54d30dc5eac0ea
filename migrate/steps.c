#include "steps.h"

#include <stdlib.h>
#include <string.h>

#include "strb.h"

#define LOCK_AEL "ACCESS EXCLUSIVE, brief, under lock_timeout"
#define LOCK_SUE "SHARE UPDATE EXCLUSIVE, may wait long, blocks no reads or writes"

static struct step *steps_add(struct step_list *l, enum step_kind kind, const char *what,
			      const char *lock, char *sql)
{
	struct step *s = &l->items[l->n++];
	s->kind = kind;
	s->what = what;
	s->lock = lock;
	s->sql = sql;
	return s;
}

static void steps_names(struct runner *r, const struct table_state *t, struct step_list *l)
{
	char idx[128];
	struct strb s;
	memset(l, 0, sizeof(*l));
	catalog_index_name(t->name, idx, sizeof(idx));
	l->index_name = strdup(idx);
	strb_init(&s);
	strb_qualified(&s, r->conn, r->opt->prefix, t->name);
	l->table_q = strb_steal(&s);
	strb_init(&s);
	strb_qualified(&s, r->conn, r->opt->prefix, idx);
	l->index_q = strb_steal(&s);
}

static void steps_default_expr(struct runner *r, struct strb *s)
{
	strb_qualified(s, r->conn, r->opt->prefix, "uuid_generate_v7");
	strb_printf(s, "()");
}

/* ADD COLUMN without a default is metadata only; SET DEFAULT in the same
 * statement only affects rows inserted afterwards (a volatile default in ADD
 * COLUMN would rewrite the table under the lock). The comment that marks the
 * column as ours commits with it. */
static char *steps_sql_add_column(struct runner *r, struct step_list *l)
{
	struct strb s;
	strb_init(&s);
	strb_printf(&s, "ALTER TABLE %s ADD COLUMN uuid pg_catalog.uuid, ALTER COLUMN uuid SET DEFAULT ",
		    l->table_q);
	steps_default_expr(r, &s);
	strb_printf(&s, "; COMMENT ON COLUMN %s.uuid IS ", l->table_q);
	strb_literal(&s, r->conn, CATALOG_MARK_CREATED ": uuidgate migrate down drops this column");
	return strb_steal(&s);
}

/* Records what a pre-existing column looked like, before anything changes,
 * so that `down` can put it back. */
static char *steps_sql_mark_kept(struct runner *r, const struct table_state *t,
				 struct step_list *l)
{
	struct strb s, mark;
	strb_init(&s);
	strb_init(&mark);
	strb_printf(&mark, CATALOG_MARK_KEPT " nullable=%s index=%s default=%s",
		    t->uuid_notnull ? "no" : "yes", t->unique_index[0] ? "yes" : "no",
		    t->uuid_default ? t->uuid_default : "");
	strb_printf(&s, "COMMENT ON COLUMN %s.uuid IS ", l->table_q);
	strb_literal(&s, r->conn, mark.buf);
	strb_free(&mark);
	return strb_steal(&s);
}

static char *steps_sql_set_default(struct runner *r, struct step_list *l)
{
	struct strb s;
	strb_init(&s);
	strb_printf(&s, "ALTER TABLE %s ALTER COLUMN uuid SET DEFAULT ", l->table_q);
	steps_default_expr(r, &s);
	return strb_steal(&s);
}

static char *steps_sql_constraint(struct runner *r, const struct table_state *t,
				  struct step_list *l, const char *action, const char *tail)
{
	char name[128];
	struct strb s;
	catalog_check_name(t->name, name, sizeof(name));
	strb_init(&s);
	strb_printf(&s, "ALTER TABLE %s %s ", l->table_q, action);
	strb_ident(&s, r->conn, name);
	strb_printf(&s, "%s", tail);
	return strb_steal(&s);
}

static void steps_plan_index(struct runner *r, const struct table_state *t, struct step_list *l)
{
	if (t->named_index_oid && !t->named_index_valid)
		steps_add(l, STEP_DROP_INVALID_INDEX, "drop the invalid index left by a failed build",
			  "SHARE UPDATE EXCLUSIVE, waits for running transactions",
			  strb_fmt("DROP INDEX CONCURRENTLY IF EXISTS %s", l->index_q));
	if (t->unique_index[0])
		return;
	if (t->has_uuid && t->mark != CATALOG_MARK_IS_CREATED)
		steps_add(l, STEP_CHECK_DUPLICATES, "check the existing values are distinct",
			  "none (reads)", NULL);
	struct strb s;
	strb_init(&s);
	strb_printf(&s, "CREATE UNIQUE INDEX CONCURRENTLY ");
	strb_ident(&s, r->conn, l->index_name);
	strb_printf(&s, " ON %s (uuid)", l->table_q);
	steps_add(l, STEP_BUILD_INDEX, "build the unique index", LOCK_SUE, strb_steal(&s));
}

/* NOT NULL without a scan under ACCESS EXCLUSIVE: a NOT VALID check guards
 * new rows at once, VALIDATE scans under a lock that blocks no DML (rows
 * still NULL, held by the application during the backfill or inserted with
 * an explicit NULL before the check, make it fail: they are filled and it
 * runs again), and SET
 * NOT NULL then trusts the valid check (PostgreSQL 12+). SET NOT NULL and the
 * DROP of the check are separate statements so that the check is still there
 * (and valid) when SET NOT NULL looks for it. */
static void steps_plan_not_null(struct runner *r, const struct table_state *t,
				struct step_list *l)
{
	if (t->uuid_notnull) {
		if (t->check_exists)
			steps_add(l, STEP_LOCKED, "drop the temporary check", LOCK_AEL,
				  steps_sql_constraint(r, t, l, "DROP CONSTRAINT IF EXISTS", ""));
		return;
	}
	if (!t->check_exists)
		steps_add(l, STEP_LOCKED, "add CHECK (uuid IS NOT NULL) NOT VALID", LOCK_AEL,
			  steps_sql_constraint(r, t, l, "ADD CONSTRAINT",
					       " CHECK (uuid IS NOT NULL) NOT VALID"));
	if (!t->check_validated)
		steps_add(l, STEP_VALIDATE, "validate the check (scan, no DML blocked)", LOCK_SUE,
			  steps_sql_constraint(r, t, l, "VALIDATE CONSTRAINT", ""));
	steps_add(l, STEP_LOCKED, "SET NOT NULL (no scan: the check is valid)", LOCK_AEL,
		  strb_fmt("ALTER TABLE %s ALTER COLUMN uuid SET NOT NULL", l->table_q));
	steps_add(l, STEP_LOCKED, "drop the temporary check", LOCK_AEL,
		  steps_sql_constraint(r, t, l, "DROP CONSTRAINT IF EXISTS", ""));
}

bool steps_plan_up(struct runner *r, const struct table_state *t, struct step_list *l,
		   struct mg_error *err)
{
	steps_names(r, t, l);
	if (t->has_uuid && strcmp(t->uuid_type, "uuid") != 0) {
		mg_error_set(err, "42804", false,
			     "%s.%s has a column \"uuid\" of type %s, not uuid: convert or rename it,"
			     " then run again", r->opt->prefix, t->name, t->uuid_type);
		return false;
	}
	if (t->named_index_oid && t->named_index_valid && !t->named_index_exact) {
		mg_error_set(err, "42P07", false,
			     "index %s.%s exists but is not a unique index on %s (uuid): rename or drop"
			     " it, then run again", r->opt->prefix, l->index_name, t->name);
		return false;
	}
	if (!t->has_uuid) {
		steps_add(l, STEP_LOCKED, "add the column with its default, and mark it", LOCK_AEL,
			  steps_sql_add_column(r, l));
	} else {
		if (t->mark == CATALOG_MARK_NONE || t->mark == CATALOG_MARK_IS_RESTORED)
			steps_add(l, STEP_LOCKED, "mark the existing column (what down restores)",
				  "SHARE UPDATE EXCLUSIVE, brief, under lock_timeout",
				  steps_sql_mark_kept(r, t, l));
		if (!t->default_ok)
			steps_add(l, STEP_LOCKED, "set the default", LOCK_AEL, steps_sql_set_default(r, l));
	}
	if (!t->uuid_notnull) {
		steps_add(l, STEP_BACKFILL, "backfill in batches by primary key",
			  "ROW EXCLUSIVE + row locks of one batch, SKIP LOCKED", NULL);
		steps_add(l, STEP_VACUUM, "vacuum and analyze after the backfill", LOCK_SUE,
			  strb_fmt("VACUUM (ANALYZE, TRUNCATE false) %s", l->table_q));
	}
	steps_plan_index(r, t, l);
	steps_plan_not_null(r, t, l);
	return true;
}

static void steps_plan_down_kept(struct runner *r, const struct table_state *t,
				 struct step_list *l)
{
	struct strb s;
	if (!t->kept.had_index && t->named_index_oid)
		steps_add(l, STEP_WAIT, "drop the index up built", LOCK_SUE,
			  strb_fmt("DROP INDEX CONCURRENTLY IF EXISTS %s", l->index_q));
	strb_init(&s);
	strb_printf(&s, "ALTER TABLE %s ", l->table_q);
	if (t->kept.old_default)
		strb_printf(&s, "ALTER COLUMN uuid SET DEFAULT %s", t->kept.old_default);
	else
		strb_printf(&s, "ALTER COLUMN uuid DROP DEFAULT");
	if (t->kept.was_nullable && t->uuid_notnull)
		strb_printf(&s, ", ALTER COLUMN uuid DROP NOT NULL");
	if (t->check_exists) {
		char name[128];
		catalog_check_name(t->name, name, sizeof(name));
		strb_printf(&s, ", DROP CONSTRAINT IF EXISTS ");
		strb_ident(&s, r->conn, name);
	}
	strb_printf(&s, "; COMMENT ON COLUMN %s.uuid IS ", l->table_q);
	strb_literal(&s, r->conn, CATALOG_MARK_RESTORED ": removed when down completes");
	steps_add(l, STEP_LOCKED, "restore the column's default and nullability", LOCK_AEL,
		  strb_steal(&s));
}

/* created, or no comment at all (PhoenixKit's own V40): drop index and
 * column. kept: put back what it was. restored, or someone else's comment:
 * nothing here. */
void steps_plan_down(struct runner *r, const struct table_state *t, struct step_list *l)
{
	steps_names(r, t, l);
	if (!t->exists || !t->has_uuid)
		return;
	if (t->mark == CATALOG_MARK_IS_KEPT) {
		steps_plan_down_kept(r, t, l);
		return;
	}
	if (t->mark != CATALOG_MARK_IS_CREATED && t->mark != CATALOG_MARK_NONE)
		return;
	if (t->named_index_oid)
		steps_add(l, STEP_WAIT, "drop the index", LOCK_SUE,
			  strb_fmt("DROP INDEX CONCURRENTLY IF EXISTS %s", l->index_q));
	steps_add(l, STEP_LOCKED, "drop the column (metadata only)", LOCK_AEL,
		  strb_fmt("ALTER TABLE %s DROP COLUMN IF EXISTS uuid", l->table_q));
}

void steps_free(struct step_list *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->items[i].sql);
	free(l->table_q);
	free(l->index_name);
	free(l->index_q);
	memset(l, 0, sizeof(*l));
}

char *steps_sql_stamp(struct runner *r, const char *version)
{
	struct strb s;
	strb_init(&s);
	strb_printf(&s, "COMMENT ON TABLE ");
	strb_qualified(&s, r->conn, r->opt->prefix, "phoenix_kit");
	strb_printf(&s, " IS ");
	strb_literal(&s, r->conn, version);
	return strb_steal(&s);
}

/* In the prefix schema: our sessions' search_path is pg_catalog, and
 * PhoenixKit's unqualified statement lands in the application's schema. */
char *steps_sql_create_pgcrypto(struct runner *r)
{
	struct strb s;
	strb_init(&s);
	strb_printf(&s, "CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA ");
	strb_ident(&s, r->conn, r->opt->prefix);
	return strb_steal(&s);
}

char *steps_sql_unmark(struct runner *r, const struct table_state *t)
{
	struct strb s;
	strb_init(&s);
	strb_printf(&s, "COMMENT ON COLUMN ");
	strb_qualified(&s, r->conn, r->opt->prefix, t->name);
	strb_printf(&s, ".uuid IS NULL");
	return strb_steal(&s);
}
