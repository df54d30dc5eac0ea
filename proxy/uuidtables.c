#include "uuidtables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "log.h"
#include "pgquery.h"
#include "proxy.h"

struct uuid_tables {
	struct proxy *px;
	char *names[CATALOG_TABLES];
	size_t n;
	struct pgquery *query;
	bool again;            /* a refresh was asked for while one ran */
};

/* Fully qualified catalog names, operators and parameters only: the query
 * runs on a connection of uuidgate's own, but under the search_path the role
 * or database sets, where a schema listed before pg_catalog could supply its
 * own "=". */
static const char table_query[] =
	"SELECT c.relname FROM pg_catalog.pg_class c "
	"JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
	"JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid "
	"WHERE n.nspname OPERATOR(pg_catalog.=) $1 "
	"AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.\"char\"[]) "
	"AND a.attname OPERATOR(pg_catalog.=) 'uuid' AND NOT a.attisdropped "
	"AND a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype "
	"AND c.relname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]) ORDER BY 1";

static void take_result(struct uuid_tables *t, const PGresult *res)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->names[i]);
	t->n = 0;
	for (int i = 0; i < PQntuples(res) && t->n < CATALOG_TABLES; i++) {
		char *name = strdup(PQgetvalue(res, i, 0));
		if (name)
			t->names[t->n++] = name;
	}
	char count[16];
	snprintf(count, sizeof(count), "%zu", t->n);
	log_event(LOG_INFO, "uuid_tables", 0, NULL, "tables", count, LOG_KV_END);
}

static void on_done(const PGresult *res, const char *error, void *arg)
{
	struct uuid_tables *t = arg;
	t->query = NULL;
	if (res)
		take_result(t, res);
	else
		log_event(LOG_WARNING, "uuid_tables_failed", 0, NULL, "msg", error, LOG_KV_END);
	if (t->again) {
		t->again = false;
		uuid_tables_refresh(t, "queued");
	}
}

void uuid_tables_refresh(struct uuid_tables *t, const char *why)
{
	if (!t)
		return;
	if (t->query) {
		t->again = true;
		return;
	}
	const struct ug_config *cfg = t->px->cfg;
	char list[2048] = "{";
	size_t off = 1;
	for (int i = 0; i < CATALOG_TABLES && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? "," : "", catalog_tables[i]);
	if (off < sizeof(list) - 1) {
		list[off++] = '}';
		list[off] = '\0';
	}
	static const char *const keys[] = { "application_name", NULL };
	static const char *const values[] = { "uuidgate", NULL };
	const char *params[2] = { cfg->migrate_prefix, list };
	log_event(LOG_DEBUG, "uuid_tables_refresh", 0, NULL, "why", why, LOG_KV_END);
	t->query = pgquery_start(t->px->base, *cfg->migrate_upstream ? cfg->migrate_upstream : cfg->upstream,
				 keys, values, table_query, 2, params, on_done, t);
}

struct uuid_tables *uuid_tables_new(struct proxy *px)
{
	struct uuid_tables *t = calloc(1, sizeof(*t));
	if (t)
		t->px = px;
	return t;
}

void uuid_tables_free(struct uuid_tables *t)
{
	if (!t)
		return;
	pgquery_abort(t->query);
	for (size_t i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t);
}

const char *const *uuid_tables_list(const struct uuid_tables *t, size_t *n)
{
	*n = t ? t->n : 0;
	return t ? (const char *const *)t->names : NULL;
}
