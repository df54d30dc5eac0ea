#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "catalog.h"
#include "coord.h"
#include "engine.h"
#include "steps.h"
#include "uuidv7_sql.h"

/* Rough rates of this kind of work on ordinary hardware, for estimates. */
#define REPORT_BACKFILL_ROWS_PER_S 40000.0
#define REPORT_SCAN_ROWS_PER_S 2000000.0
#define REPORT_INDEX_ROWS_PER_S 500000.0

struct report_row {
	const char *state;
	char detail[64];
	int64_t rows;
	int64_t filled;
	char why[512];
};

static void report_json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* absent / added / backfilling n of m / backfilled / indexed / done. */
static bool report_table_state(struct runner *r, const struct table_state *t,
			       struct report_row *row, struct mg_error *err)
{
	memset(row, 0, sizeof(*row));
	row->rows = row->filled = -1;
	if (!t->exists) {
		row->state = "missing";
		return true;
	}
	if (!t->has_uuid) {
		row->state = "absent";
		catalog_table_complete(t, row->why, sizeof(row->why));
		return true;
	}
	if (catalog_table_complete(t, row->why, sizeof(row->why))) {
		row->state = "done";
		return true;
	}
	if (!catalog_count(r, t->name, &row->rows, &row->filled, err))
		return false;
	if (t->unique_index[0] && row->filled == row->rows)
		row->state = "indexed";
	else if (row->filled == row->rows)
		row->state = "backfilled";
	else if (row->filled == 0)
		row->state = "added";
	else
		row->state = "backfilling";
	if (strcmp(row->state, "backfilling") == 0)
		snprintf(row->detail, sizeof(row->detail), "%lld of %lld", (long long)row->filled,
			 (long long)row->rows);
	return true;
}

static const char *report_version_text(const struct catalog *cat, char *buf, size_t len)
{
	if (cat->has_version)
		snprintf(buf, len, "%d", cat->version);
	else
		snprintf(buf, len, "none");
	return buf;
}

/* WAL of what is left: a new version of every row to backfill, the index,
 * and the vacuum; a rough upper figure. */
static int64_t report_wal_estimate(const struct table_state *t)
{
	if (!t->exists || catalog_table_complete(t, NULL, 0))
		return 0;
	int64_t heap = t->uuid_notnull ? 0 : t->heap_bytes * 2;
	int64_t index = t->unique_index[0] ? 0 : t->reltuples * 40;
	return heap + index;
}

static void report_status_text(struct runner *r, const struct catalog *cat, const char *verdict,
			       const struct coord_holder *h, bool held, const struct report_row *rows,
			       int64_t wal, FILE *out)
{
	char v[16];
	fprintf(out, "schema %s: PhoenixKit version %s (%s)\n", r->opt->prefix,
		report_version_text(cat, v, sizeof(v)), verdict);
	fprintf(out, "PostgreSQL %d.%d; pgcrypto: %s%s; %s.uuid_generate_v7(): %s\n",
		cat->server_version / 10000, cat->server_version % 10000,
		cat->pgcrypto_schema ? "in schema " : "missing",
		cat->pgcrypto_schema ? cat->pgcrypto_schema : "", r->opt->prefix,
		cat->fn_exists ? cat->fn_language : "missing");
	if (held)
		fprintf(out, "runner: pid %d (application_name %s, client %s, since %s) holds the"
			" migration lock\n", h->pid, h->app, h->host, h->since);
	else
		fprintf(out, "runner: none\n");
	fprintf(out, "estimated WAL still to write: %lld MB\n\n", (long long)(wal >> 20));
	fprintf(out, "%-40s %-7s %-28s %s\n", "TABLE", "EXISTS", "UUID", "NOTES");
	for (int i = 0; i < CATALOG_TABLES; i++) {
		const struct table_state *t = &cat->tables[i];
		char state[96];
		snprintf(state, sizeof(state), "%s%s%s", rows[i].state, rows[i].detail[0] ? " " : "",
			 rows[i].detail);
		fprintf(out, "%-40s %-7s %-28s %s%s%s%s\n", t->name, t->exists ? "yes" : "no", state,
			rows[i].why, t->triggers && rows[i].why[0] ? "; " : "",
			t->triggers ? "user triggers: " : "", t->triggers ? t->triggers : "");
	}
}

static void report_status_json(struct runner *r, const struct catalog *cat, const char *verdict,
			       const struct coord_holder *h, bool held, const struct report_row *rows,
			       int64_t wal, FILE *out)
{
	fprintf(out, "{\"prefix\": ");
	report_json_str(out, r->opt->prefix);
	fprintf(out, ", \"server_version\": %d, \"version\": ", cat->server_version);
	if (cat->has_version)
		fprintf(out, "%d", cat->version);
	else
		fprintf(out, "null");
	fprintf(out, ", \"verdict\": ");
	report_json_str(out, verdict);
	fprintf(out, ", \"pgcrypto\": %s, \"function\": %s, \"wal_estimate_bytes\": %lld, \"runner\": ",
		cat->pgcrypto_schema ? "true" : "false", cat->fn_exists ? "true" : "false",
		(long long)wal);
	if (held) {
		fprintf(out, "{\"pid\": %d, \"application_name\": ", h->pid);
		report_json_str(out, h->app);
		fprintf(out, ", \"client\": ");
		report_json_str(out, h->host);
		fprintf(out, "}");
	} else {
		fprintf(out, "null");
	}
	fprintf(out, ", \"tables\": [");
	for (int i = 0; i < CATALOG_TABLES; i++) {
		const struct table_state *t = &cat->tables[i];
		fprintf(out, "%s\n  {\"name\": \"%s\", \"exists\": %s, \"state\": \"%s\", \"rows\": %lld,"
			" \"filled\": %lld, \"incomplete\": ", i ? "," : "", t->name,
			t->exists ? "true" : "false", rows[i].state, (long long)rows[i].rows,
			(long long)rows[i].filled);
		report_json_str(out, rows[i].why);
		fprintf(out, ", \"triggers\": ");
		if (t->triggers)
			report_json_str(out, t->triggers);
		else
			fprintf(out, "null");
		fprintf(out, "}");
	}
	fprintf(out, "\n]}\n");
}

static const char *report_verdict(struct runner *r, const struct catalog *cat, char *buf,
				  size_t len)
{
	switch (engine_verdict(r, cat, buf, len)) {
	case ENGINE_RUN: return "V40 applies";
	case ENGINE_AT_40: return "at or past V40";
	case ENGINE_NOT_APPLICABLE: return buf;
	}
	return "";
}

bool report_status(struct runner *r, FILE *out, struct mg_error *err)
{
	struct catalog cat;
	struct report_row rows[CATALOG_TABLES];
	struct coord_holder h;
	char reason[512];
	if (!catalog_load(r, &cat, err))
		return false;
	int64_t wal = 0;
	bool ok = true;
	for (int i = 0; ok && i < CATALOG_TABLES; i++) {
		ok = report_table_state(r, &cat.tables[i], &rows[i], err);
		wal += report_wal_estimate(&cat.tables[i]);
	}
	struct mg_error herr;
	mg_error_clear(&herr);
	bool held = ok && coord_holder(r, r->conn, &h, &herr);
	const char *verdict = report_verdict(r, &cat, reason, sizeof(reason));
	if (ok && r->opt->json)
		report_status_json(r, &cat, verdict, &h, held, rows, wal, out);
	else if (ok)
		report_status_text(r, &cat, verdict, &h, held, rows, wal, out);
	catalog_free(&cat);
	return ok;
}

static double report_table_seconds(const struct runner *r, const struct table_state *t)
{
	double rows = (double)t->reltuples;
	int workers = r->opt->workers > 0 ? r->opt->workers : 1;
	double s = 0;
	if (!t->uuid_notnull)
		s += rows / (REPORT_BACKFILL_ROWS_PER_S * workers) + 2 * rows / REPORT_SCAN_ROWS_PER_S;
	if (!t->unique_index[0])
		s += rows / REPORT_INDEX_ROWS_PER_S;
	return s;
}

static void report_plan_step(struct runner *r, const struct table_state *t, const struct step *s,
			     FILE *out)
{
	char *sql = s->sql;
	char *own = NULL;
	if (s->kind == STEP_BACKFILL)
		sql = own = backfill_batch_statement(r, t);
	fprintf(out, "  - %s\n    lock: %s", s->what, s->lock);
	if (strstr(s->lock, "lock_timeout"))
		fprintf(out, " (%d ms per attempt, retried)", r->opt->lock_timeout_ms);
	if (s->kind == STEP_BACKFILL)
		fprintf(out, "; batches of about %d ms, %d worker(s)", r->opt->batch_time_ms,
			r->opt->workers);
	fprintf(out, "\n");
	if (sql)
		fprintf(out, "    %s\n", sql);
	free(own);
}

static bool report_plan_table(struct runner *r, const struct table_state *t, FILE *out,
			      double *total_s)
{
	struct step_list steps;
	struct mg_error err;
	mg_error_clear(&err);
	if (!t->exists) {
		fprintf(out, "%s: missing, skipped\n\n", t->name);
		return true;
	}
	if (catalog_table_complete(t, NULL, 0)) {
		fprintf(out, "%s: complete, nothing to do\n\n", t->name);
		return true;
	}
	double secs = report_table_seconds(r, t);
	*total_s += secs;
	fprintf(out, "%s: ~%lld rows, %lld MB, estimated %.1f s%s%s\n", t->name,
		(long long)t->reltuples, (long long)(t->total_bytes >> 20), secs,
		t->triggers ? "; the backfill fires user triggers: " : "",
		t->triggers ? t->triggers : "");
	if (!steps_plan_up(r, t, &steps, &err)) {
		fprintf(out, "  cannot run: %s\n\n", err.message);
		steps_free(&steps);
		return false;
	}
	for (int i = 0; i < steps.n; i++)
		report_plan_step(r, t, &steps.items[i], out);
	fprintf(out, "\n");
	steps_free(&steps);
	return true;
}

bool report_plan(struct runner *r, FILE *out, struct mg_error *err)
{
	struct catalog cat;
	char reason[512];
	if (!catalog_load(r, &cat, err))
		return false;
	enum engine_verdict v = engine_verdict(r, &cat, reason, sizeof(reason));
	r->rand_uuid_sql = uuidv7_random_source(r->conn, cat.server_version, cat.pgcrypto_schema);
	fprintf(out, "plan for schema %s: %s\n", r->opt->prefix,
		v == ENGINE_NOT_APPLICABLE ? reason
		: v == ENGINE_RUN ? "version 39 -> 40"
		: r->opt->repair ? "at version >= 40, repair" : "at version >= 40, verify only");
	if (v == ENGINE_NOT_APPLICABLE || (v == ENGINE_AT_40 && !r->opt->repair)) {
		catalog_free(&cat);
		return true;
	}
	if (!cat.pgcrypto_schema) {
		char *sql = steps_sql_create_pgcrypto(r);
		fprintf(out, "%s;  -- needs CREATE on the database (trusted from PostgreSQL 13)\n", sql);
		free(sql);
	}
	if (!cat.fn_exists) {
		char *sql = uuidv7_create_function_sql(r->conn, r->opt->prefix, r->rand_uuid_sql);
		fprintf(out, "%s;  -- no table lock\n", sql);
		free(sql);
	}
	fprintf(out, "\n");
	double total = 0;
	bool ok = true;
	for (int i = 0; i < CATALOG_TABLES; i++)
		ok = report_plan_table(r, &cat.tables[i], out, &total) && ok;
	if (v == ENGINE_RUN) {
		char *sql = steps_sql_stamp(r, "40");
		fprintf(out, "last, when every table is complete: %s;\n", sql);
		free(sql);
	}
	fprintf(out, "estimated total: %.0f s (rough: rates of ordinary hardware, no concurrent load)\n",
		total);
	catalog_free(&cat);
	if (!ok)
		mg_error_set(err, "55000", false, "some tables cannot be migrated as they are (see above)");
	return ok;
}
