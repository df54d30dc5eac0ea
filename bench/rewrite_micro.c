/* Prints what the INSERT rewriter costs one core per statement, in ns: the
 * rewrites (an Ecto-style INSERT over simple Query and over Parse, a
 * multi-row VALUES, a DEFAULT VALUES) and the pass-throughs (a SELECT, an
 * INSERT into a table that is not migrated, and one into a table whose name
 * merely contains a migrated one, which the parser has to rule out).
 *
 * Each case runs ROUNDS times ITERATIONS statements; the fastest round counts,
 * as other load on the machine only ever adds time.
 *
 * Usage: rewrite_micro [ITERATIONS [ROUNDS]]   (default 50000, 5) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rewrite.h"
#include "uuidv7.h"

/* The tables of the PhoenixKit V40 list, as the proxy would hold them. */
static const char *const tables[] = {
	"phoenix_kit", "phoenix_kit_users", "phoenix_kit_user_roles",
	"phoenix_kit_user_role_assignments", "phoenix_kit_settings",
	"phoenix_kit_referral_codes", "phoenix_kit_referral_code_usage",
	"phoenix_kit_email_logs", "phoenix_kit_email_events", "phoenix_kit_email_blocklist",
	"phoenix_kit_email_templates", "phoenix_kit_email_orphaned_events",
	"phoenix_kit_email_metrics", "phoenix_kit_user_oauth_providers", "phoenix_kit_entities",
	"phoenix_kit_entity_data", "phoenix_kit_audit_logs", "phoenix_kit_currencies",
	"phoenix_kit_billing_profiles", "phoenix_kit_orders", "phoenix_kit_invoices",
	"phoenix_kit_transactions", "phoenix_kit_payment_methods",
	"phoenix_kit_subscription_plans", "phoenix_kit_subscriptions",
	"phoenix_kit_payment_provider_configs", "phoenix_kit_webhook_events",
	"phoenix_kit_ai_endpoints", "phoenix_kit_ai_requests", "phoenix_kit_ai_prompts",
	"phoenix_kit_db_sync_connections", "phoenix_kit_db_sync_transfers",
	"phoenix_kit_admin_notes",
};

static const struct rewrite_session session = {
	.schema = "public",
	.tables = tables,
	.n_tables = sizeof(tables) / sizeof(tables[0]),
	.unqualified_in_schema = true,
	.utf8_standard_strings = true,
};

enum mode { SIMPLE, PARSE };

struct bench_case {
	const char *name;
	enum mode mode;
	enum rewrite_status expect;
	const char *sql;
};

static const struct bench_case cases[] = {
	{ "ecto insert, simple query", SIMPLE, REWRITE_DONE,
	  "INSERT INTO \"phoenix_kit_users\" (\"confirmed_at\",\"email\",\"first_name\","
	  "\"hashed_password\",\"is_active\",\"last_name\",\"username\",\"inserted_at\","
	  "\"updated_at\") VALUES (NULL,'user42@example.com','Ada','$2b$12$abcdefghijklmnopqrstuv',"
	  "TRUE,'Lovelace','ada42','2025-01-01T12:00:00','2025-01-01T12:00:00') RETURNING \"id\"" },
	{ "ecto insert, parse", PARSE, REWRITE_DONE,
	  "INSERT INTO \"phoenix_kit_users\" (\"confirmed_at\",\"email\",\"first_name\","
	  "\"hashed_password\",\"is_active\",\"last_name\",\"username\",\"inserted_at\","
	  "\"updated_at\") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING \"id\"" },
	{ "multi-row values (10 rows)", SIMPLE, REWRITE_DONE,
	  "INSERT INTO phoenix_kit_settings (key, value, date_added, date_updated) VALUES "
	  "('k1', 'v', now(), now()), ('k2', 'v', now(), now()), ('k3', 'v', now(), now()), "
	  "('k4', 'v', now(), now()), ('k5', 'v', now(), now()), ('k6', 'v', now(), now()), "
	  "('k7', 'v', now(), now()), ('k8', 'v', now(), now()), ('k9', 'v', now(), now()), "
	  "('k10', 'v', now(), now())" },
	{ "pgbench-style insert", SIMPLE, REWRITE_DONE,
	  "INSERT INTO phoenix_kit_settings (key, value, date_added, date_updated) "
	  "VALUES (md5(random()::text || 3), 'v', now(), now());" },
	{ "default values", SIMPLE, REWRITE_DONE,
	  "INSERT INTO phoenix_kit_audit_logs DEFAULT VALUES" },
	{ "select (pass)", SIMPLE, REWRITE_PASS,
	  "SELECT u0.\"id\", u0.\"email\", u0.\"username\" FROM \"phoenix_kit_users\" AS u0 "
	  "WHERE (u0.\"email\" = 'user42@example.com') LIMIT 1" },
	{ "insert, unknown table (pass)", SIMPLE, REWRITE_PASS,
	  "INSERT INTO \"schema_migrations\" (\"version\",\"inserted_at\") "
	  "VALUES (20250101120000,'2025-01-01T12:00:00')" },
	{ "insert, look-alike table (pass)", SIMPLE, REWRITE_PASS,
	  "INSERT INTO \"phoenix_kit_users_tokens\" (\"token\",\"context\",\"sent_to\","
	  "\"user_id\",\"inserted_at\") VALUES ('\\x0102','session',NULL,42,"
	  "'2025-01-01T12:00:00')" },
};

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static enum rewrite_status run_once(const struct bench_case *c, struct uuidv7_gen *gen)
{
	struct rewrite_result res;
	enum rewrite_status st = c->mode == SIMPLE ? rewrite_query(&session, gen, c->sql, &res)
						   : rewrite_parse_sql(&session, c->sql, 0, &res);
	rewrite_result_free(&res);
	return st;
}

/* ns per statement in the fastest of rounds runs of n statements. */
static double best_round(const struct bench_case *c, struct uuidv7_gen *gen, long n, long rounds)
{
	double best = 0;
	for (long r = 0; r < rounds; r++) {
		double t0 = now_ns();
		for (long k = 0; k < n; k++)
			run_once(c, gen);
		double ns = (now_ns() - t0) / (double)n;
		if (r == 0 || ns < best)
			best = ns;
	}
	return best;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 50000;
	long rounds = argc > 2 ? atol(argv[2]) : 5;
	if (n <= 0)
		n = 50000;
	if (rounds <= 0)
		rounds = 5;
	struct uuidv7_gen gen;
	uuidv7_init(&gen);
	int failed = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bench_case *c = &cases[i];
		if (run_once(c, &gen) != c->expect) {
			fprintf(stderr, "rewrite_micro: unexpected result for %s\n", c->name);
			failed = 1;
			continue;
		}
		for (long k = 0; k < n / 10; k++)
			run_once(c, &gen);
		printf("%-34s %9.0f ns\n", c->name, best_round(c, &gen, n, rounds));
	}
	uuidv7_destroy(&gen);
	return failed;
}
