#include "catalog.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strb.h"

/* The seed's order: `up` walks it forwards, `down` backwards. */
const char *const catalog_tables[CATALOG_TABLES] = {
	"phoenix_kit_users",
	"phoenix_kit_users_tokens",
	"phoenix_kit_user_roles",
	"phoenix_kit_user_role_assignments",
	"phoenix_kit_settings",
	"phoenix_kit_referral_codes",
	"phoenix_kit_referral_code_usage",
	"phoenix_kit_email_logs",
	"phoenix_kit_email_events",
	"phoenix_kit_email_blocklist",
	"phoenix_kit_email_templates",
	"phoenix_kit_email_orphaned_events",
	"phoenix_kit_email_metrics",
	"phoenix_kit_user_oauth_providers",
	"phoenix_kit_entities",
	"phoenix_kit_entity_data",
	"phoenix_kit_audit_logs",
	"phoenix_kit_currencies",
	"phoenix_kit_billing_profiles",
	"phoenix_kit_orders",
	"phoenix_kit_invoices",
	"phoenix_kit_transactions",
	"phoenix_kit_payment_methods",
	"phoenix_kit_subscription_plans",
	"phoenix_kit_subscriptions",
	"phoenix_kit_payment_provider_configs",
	"phoenix_kit_webhook_events",
	"phoenix_kit_ai_endpoints",
	"phoenix_kit_ai_requests",
	"phoenix_kit_ai_prompts",
	"phoenix_kit_db_sync_connections",
	"phoenix_kit_db_sync_transfers",
	"phoenix_kit_admin_notes",
};

bool catalog_valid_prefix(const char *prefix)
{
	size_t n = prefix ? strlen(prefix) : 0;
	if (n == 0 || n > 63 || !(islower((unsigned char)prefix[0]) || prefix[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)prefix[i];
		if (!(islower(ch) || isdigit(ch) || ch == '_'))
			return false;
	}
	return true;
}

void catalog_row_key(struct strb *out, PGconn *conn, const struct table_state *t)
{
	if (t->pk[0])
		strb_ident(out, conn, t->pk);
	else
		strb_printf(out, "ctid");
}

void catalog_index_name(const char *table, char *buf, size_t len)
{
	snprintf(buf, len, "%s_uuid_idx", table);
}

void catalog_check_name(const char *table, char *buf, size_t len)
{
	snprintf(buf, len, "%s_uuid_uuidgate_check", table);
}

static char *catalog_dup(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return strdup(PQgetvalue(res, row, col));
}

static bool catalog_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

static int64_t catalog_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void catalog_copy(char *dst, size_t len, const PGresult *res, int row, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static bool catalog_load_info(struct runner *r, struct catalog *cat, struct mg_error *err)
{
	const char *params[] = { r->opt->prefix };
	PGresult *res = db_query(r->conn,
		"SELECT current_setting('server_version_num')::int, n.oid IS NOT NULL,"
		" c.oid IS NOT NULL, obj_description(c.oid, 'pg_class'),"
		" (SELECT en.nspname FROM pg_extension e JOIN pg_namespace en ON en.oid = e.extnamespace"
		"   WHERE e.extname = 'pgcrypto'),"
		" p.oid IS NOT NULL, l.lanname, p.provolatile"
		" FROM (SELECT 1) one"
		" LEFT JOIN pg_namespace n ON n.nspname = $1"
		" LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'phoenix_kit'"
		"   AND c.relkind IN ('r', 'p')"
		" LEFT JOIN pg_proc p ON p.pronamespace = n.oid AND p.proname = 'uuid_generate_v7'"
		"   AND p.pronargs = 0"
		" LEFT JOIN pg_language l ON l.oid = p.prolang",
		1, params, err);
	if (!res)
		return false;
	cat->server_version = (int)catalog_int(res, 0, 0);
	cat->schema_exists = catalog_bool(res, 0, 1);
	cat->marker_table = catalog_bool(res, 0, 2);
	cat->marker_text = catalog_dup(res, 0, 3);
	cat->pgcrypto_schema = catalog_dup(res, 0, 4);
	cat->fn_exists = catalog_bool(res, 0, 5);
	catalog_copy(cat->fn_language, sizeof(cat->fn_language), res, 0, 6);
	cat->fn_volatility = PQgetisnull(res, 0, 7) ? 0 : PQgetvalue(res, 0, 7)[0];
	PQclear(res);

	/* PhoenixKit writes the bare number; anything else is no marker. */
	const char *m = cat->marker_text;
	cat->has_version = false;
	if (m) {
		while (isspace((unsigned char)*m))
			m++;
		char *end;
		long v = strtol(m, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (end != m && *end == '\0' && v >= 0 && v < 100000) {
			cat->has_version = true;
			cat->version = (int)v;
		}
	}
	return true;
}

/* One row per listed table, in list order; NULLs where the table is missing. */
static const char catalog_tables_sql[] =
	"SELECT t.name, c.oid,"
	" (SELECT a.attname FROM pg_index i JOIN pg_attribute a"
	"    ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
	"   WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1"
	"     AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)),"
	" (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
	"   WHERE a.attrelid = c.oid AND a.attname = 'inserted_at' AND NOT a.attisdropped"
	"     AND a.atttypid IN ('timestamp'::regtype, 'timestamptz'::regtype)),"
	" u.attnum IS NOT NULL, format_type(u.atttypid, u.atttypmod), u.attnotnull,"
	" pg_get_expr(d.adbin, d.adrelid),"
	" pg_get_expr(d.adbin, d.adrelid) = quote_ident($1) || '.uuid_generate_v7()',"
	" col_description(c.oid, u.attnum),"
	" (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid"
	"   WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indisready"
	"     AND i.indislive AND i.indnatts = 1 AND i.indkey[0] = u.attnum"
	"     AND i.indpred IS NULL AND i.indexprs IS NULL"
	"   ORDER BY ic.relname = t.name || '_uuid_idx' DESC, ic.relname LIMIT 1),"
	" ni.indexrelid, ni.indisvalid,"
	" ni.indrelid = c.oid AND ni.indisunique AND ni.indnatts = 1 AND ni.indkey[0] = u.attnum"
	"   AND ni.indpred IS NULL AND ni.indexprs IS NULL,"
	" ck.oid IS NOT NULL, ck.convalidated,"
	" (SELECT string_agg(quote_ident(tg.tgname), ', ' ORDER BY tg.tgname) FROM pg_trigger tg"
	"   WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal),"
	" greatest(c.reltuples, 0)::int8, pg_total_relation_size(c.oid), pg_relation_size(c.oid)"
	" FROM unnest($2::text[]) WITH ORDINALITY AS t(name, ord)"
	" LEFT JOIN pg_namespace n ON n.nspname = $1"
	" LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind = 'r'"
	" LEFT JOIN pg_attribute u ON u.attrelid = c.oid AND u.attname = 'uuid'"
	"   AND NOT u.attisdropped AND u.attnum > 0"
	" LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = u.attnum"
	" LEFT JOIN pg_class nic ON nic.relnamespace = n.oid AND nic.relname = t.name || '_uuid_idx'"
	"   AND nic.relkind = 'i'"
	" LEFT JOIN pg_index ni ON ni.indexrelid = nic.oid"
	" LEFT JOIN pg_constraint ck ON ck.conrelid = c.oid"
	"   AND ck.conname = t.name || '_uuid_uuidgate_check'"
	" ORDER BY t.ord";

static void catalog_free_table(struct table_state *t)
{
	free(t->uuid_default);
	free(t->comment);
	free(t->kept.old_default);
	free(t->triggers);
	memset(t, 0, sizeof(*t));
}

/* "uuidgate:v40 kept nullable=yes index=no default=<expr>": default last,
 * since an expression may hold spaces. */
static void catalog_parse_mark(struct table_state *t)
{
	const char *c = t->comment;
	t->mark = CATALOG_MARK_NONE;
	if (!c)
		return;
	if (strncmp(c, CATALOG_MARK_CREATED, strlen(CATALOG_MARK_CREATED)) == 0) {
		t->mark = CATALOG_MARK_IS_CREATED;
		return;
	}
	if (strncmp(c, CATALOG_MARK_RESTORED, strlen(CATALOG_MARK_RESTORED)) == 0) {
		t->mark = CATALOG_MARK_IS_RESTORED;
		return;
	}
	if (strncmp(c, CATALOG_MARK_KEPT, strlen(CATALOG_MARK_KEPT)) != 0) {
		t->mark = CATALOG_MARK_FOREIGN;
		return;
	}
	t->mark = CATALOG_MARK_IS_KEPT;
	t->kept.was_nullable = strstr(c, " nullable=yes") != NULL;
	t->kept.had_index = strstr(c, " index=yes") != NULL;
	const char *d = strstr(c, " default=");
	if (d && d[9] != '\0')
		t->kept.old_default = strdup(d + 9);
}

static void catalog_fill_table(struct table_state *t, const PGresult *res, int row)
{
	t->exists = !PQgetisnull(res, row, 1);
	if (!t->exists)
		return;
	t->oid = (unsigned int)catalog_int(res, row, 1);
	catalog_copy(t->pk, sizeof(t->pk), res, row, 2);
	catalog_copy(t->inserted_at_type, sizeof(t->inserted_at_type), res, row, 3);
	t->has_uuid = catalog_bool(res, row, 4);
	catalog_copy(t->uuid_type, sizeof(t->uuid_type), res, row, 5);
	t->uuid_notnull = catalog_bool(res, row, 6);
	t->uuid_default = catalog_dup(res, row, 7);
	t->default_ok = catalog_bool(res, row, 8);
	t->comment = catalog_dup(res, row, 9);
	catalog_copy(t->unique_index, sizeof(t->unique_index), res, row, 10);
	t->named_index_oid = (unsigned int)catalog_int(res, row, 11);
	t->named_index_valid = catalog_bool(res, row, 12);
	t->named_index_exact = catalog_bool(res, row, 13);
	t->check_exists = catalog_bool(res, row, 14);
	t->check_validated = catalog_bool(res, row, 15);
	t->triggers = catalog_dup(res, row, 16);
	t->reltuples = catalog_int(res, row, 17);
	t->total_bytes = catalog_int(res, row, 18);
	t->heap_bytes = catalog_int(res, row, 19);
	catalog_parse_mark(t);
}

static bool catalog_load_tables(struct runner *r, struct catalog *cat, int only,
				struct mg_error *err)
{
	struct strb names;
	strb_init(&names);
	strb_printf(&names, "{");
	for (int i = 0; i < CATALOG_TABLES; i++)
		if (only < 0 || only == i)
			strb_printf(&names, "%s%s", names.len > 1 ? "," : "", catalog_tables[i]);
	strb_printf(&names, "}");
	const char *params[] = { r->opt->prefix, names.buf };
	PGresult *res = db_query(r->conn, catalog_tables_sql, 2, params, err);
	strb_free(&names);
	if (!res)
		return false;
	for (int row = 0; row < PQntuples(res); row++) {
		int idx = only >= 0 ? only : row;
		struct table_state *t = &cat->tables[idx];
		catalog_free_table(t);
		t->name = catalog_tables[idx];
		catalog_fill_table(t, res, row);
	}
	PQclear(res);
	return true;
}

bool catalog_load(struct runner *r, struct catalog *cat, struct mg_error *err)
{
	memset(cat, 0, sizeof(*cat));
	for (int i = 0; i < CATALOG_TABLES; i++)
		cat->tables[i].name = catalog_tables[i];
	if (catalog_load_info(r, cat, err) && catalog_load_tables(r, cat, -1, err))
		return true;
	catalog_free(cat);
	return false;
}

bool catalog_reload_table(struct runner *r, struct catalog *cat, int idx, struct mg_error *err)
{
	return catalog_load_tables(r, cat, idx, err);
}

void catalog_free(struct catalog *cat)
{
	free(cat->marker_text);
	free(cat->pgcrypto_schema);
	for (int i = 0; i < CATALOG_TABLES; i++)
		catalog_free_table(&cat->tables[i]);
	memset(cat, 0, sizeof(*cat));
}

bool catalog_table_complete(const struct table_state *t, char *why, size_t len)
{
	struct strb s;
	strb_init(&s);
	if (!t->has_uuid)
		strb_printf(&s, "no uuid column");
	else {
		if (strcmp(t->uuid_type, "uuid") != 0)
			strb_printf(&s, "%suuid column has type %s", s.len ? ", " : "", t->uuid_type);
		if (!t->uuid_notnull)
			strb_printf(&s, "%snullable", s.len ? ", " : "");
		if (!t->default_ok)
			strb_printf(&s, "%sdefault is %s", s.len ? ", " : "",
				    t->uuid_default ? t->uuid_default : "missing");
		if (!t->unique_index[0])
			strb_printf(&s, "%sno unique index on (uuid)", s.len ? ", " : "");
		if (t->check_exists)
			strb_printf(&s, "%stemporary check constraint left", s.len ? ", " : "");
	}
	if (t->named_index_oid && !t->named_index_valid)
		strb_printf(&s, "%sinvalid index %s_uuid_idx", s.len ? ", " : "", t->name);
	bool complete = s.len == 0;
	if (why)
		snprintf(why, len, "%s", s.buf);
	strb_free(&s);
	return complete;
}

bool catalog_count(struct runner *r, const char *table, int64_t *rows, int64_t *filled,
		   struct mg_error *err)
{
	struct strb sql;
	strb_init(&sql);
	strb_printf(&sql, "SELECT count(*), count(uuid) FROM ");
	strb_qualified(&sql, r->conn, r->opt->prefix, table);
	PGresult *res = db_query(r->conn, sql.buf, 0, NULL, err);
	strb_free(&sql);
	if (!res)
		return false;
	*rows = catalog_int(res, 0, 0);
	*filled = catalog_int(res, 0, 1);
	PQclear(res);
	return true;
}

bool catalog_has_marks(const struct catalog *cat)
{
	for (int i = 0; i < CATALOG_TABLES; i++) {
		enum catalog_mark m = cat->tables[i].mark;
		if (cat->tables[i].has_uuid && (m == CATALOG_MARK_IS_CREATED || m == CATALOG_MARK_IS_KEPT ||
						m == CATALOG_MARK_IS_RESTORED))
			return true;
	}
	return false;
}
