/* `uuidgate migrate status|plan|up|down [options]`. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

static struct migrate_progress *cli_progress;

static void cli_on_signal(int sig)
{
	(void)sig;
	if (cli_progress)
		migrate_progress_request_stop(cli_progress);
}

static void cli_usage(FILE *out)
{
	fprintf(out,
		"usage: uuidgate migrate status|plan|up|down [options]\n"
		"  -c FILE                    configuration file (read by the caller)\n"
		"  --upstream CONNINFO        database to migrate (libpq conninfo or URI)\n"
		"  --prefix SCHEMA            PhoenixKit's schema (default public)\n"
		"  --repair                   up at version >= 40: complete incomplete tables\n"
		"  --json                     status/plan as JSON\n"
		"  --workers N                parallel backfill connections (default 1)\n"
		"  --lock-timeout MS          per attempt of a strong lock (default 50)\n"
		"  --batch-time MS            backfill batch duration target (default 50)\n"
		"  --batch-pause MS           sleep between batches (default 0)\n"
		"  --statement-timeout MS     bound on one batch (default 10000)\n"
		"  --max-replication-lag MS   pause batches above this replica lag, 0 off (default 10000)\n"
		"  --max-replication-lag-bytes SIZE  ... or this much WAL not replayed by a replica\n"
		"                             or held by an active slot, 0 off (default 1GB)\n"
		"  --skip-retries N           passes over rows the application held (default 5)\n"
		"  --lock-retries N           attempts per locked step, 0 unlimited (default 0)\n"
		"  --progress-interval MS     progress lines on stderr (default 3000)\n"
		"  --quiet                    only warnings and errors\n"
		"  --verbose                  also every statement the steps run\n"
		"exit codes: 0 done, 1 failed, 2 usage, 3 not applicable\n");
}

static bool cli_int(const char *v, int *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 0 || n > 100000000)
		return false;
	*out = (int)n;
	return true;
}

static bool cli_action(const char *s, enum migrate_action *a)
{
	static const struct { const char *name; enum migrate_action action; } actions[] = {
		{ "status", MIGRATE_STATUS }, { "plan", MIGRATE_PLAN },
		{ "up", MIGRATE_UP }, { "down", MIGRATE_DOWN },
	};
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(s, actions[i].name) == 0) {
			*a = actions[i].action;
			return true;
		}
	}
	return false;
}

/* Options taking a number, by name. */
static int *cli_int_option(struct migrate_options *o, const char *name)
{
	if (strcmp(name, "--workers") == 0) return &o->workers;
	if (strcmp(name, "--lock-timeout") == 0) return &o->lock_timeout_ms;
	if (strcmp(name, "--batch-time") == 0) return &o->batch_time_ms;
	if (strcmp(name, "--batch-pause") == 0) return &o->batch_pause_ms;
	if (strcmp(name, "--statement-timeout") == 0) return &o->statement_timeout_ms;
	if (strcmp(name, "--max-replication-lag") == 0) return &o->max_replication_lag_ms;
	if (strcmp(name, "--skip-retries") == 0) return &o->skip_retries;
	if (strcmp(name, "--lock-retries") == 0) return &o->lock_retry_limit;
	if (strcmp(name, "--progress-interval") == 0) return &o->progress_interval_ms;
	return NULL;
}

/* Sizes: a byte count with an optional kB, MB or GB suffix (1024-based). */
static bool cli_bytes(const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || n < 0)
		return false;
	static const struct { const char *unit; int shift; } units[] = {
		{ "", 0 }, { "kB", 10 }, { "MB", 20 }, { "GB", 30 },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			*out = (int64_t)n << units[i].shift;
			return true;
		}
	}
	return false;
}

static bool cli_flag(struct migrate_options *o, const char *name)
{
	if (strcmp(name, "--repair") == 0)
		o->repair = true;
	else if (strcmp(name, "--json") == 0)
		o->json = true;
	else if (strcmp(name, "--quiet") == 0)
		o->quiet = true;
	else if (strcmp(name, "--verbose") == 0)
		o->verbose = true;
	else
		return false;
	return true;
}

/* Returns false on a usage error (message printed). */
static bool cli_parse(int argc, char **argv, struct migrate_options *o, enum migrate_action *a,
		      bool *have_action)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int *num;
		if (arg[0] != '-') {
			if (*have_action || !cli_action(arg, a)) {
				fprintf(stderr, "uuidgate migrate: unexpected argument '%s'\n", arg);
				return false;
			}
			*have_action = true;
		} else if (cli_flag(o, arg)) {
			continue;
		} else if (!val) {
			fprintf(stderr, "uuidgate migrate: %s needs a value\n", arg);
			return false;
		} else if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
			i++;
		} else if (strcmp(arg, "--upstream") == 0) {
			o->conninfo = argv[++i];
		} else if (strcmp(arg, "--prefix") == 0) {
			o->prefix = argv[++i];
		} else if (strcmp(arg, "--max-replication-lag-bytes") == 0) {
			if (!cli_bytes(argv[++i], &o->max_replication_lag_bytes)) {
				fprintf(stderr, "uuidgate migrate: %s: not a size: %s\n", arg, argv[i]);
				return false;
			}
		} else if ((num = cli_int_option(o, arg)) != NULL) {
			if (!cli_int(argv[++i], num)) {
				fprintf(stderr, "uuidgate migrate: %s: not a number: %s\n", arg, argv[i]);
				return false;
			}
		} else {
			fprintf(stderr, "uuidgate migrate: unknown option '%s'\n", arg);
			return false;
		}
	}
	return true;
}

int migrate_cli_main(int argc, char **argv, const struct migrate_options *defaults)
{
	struct migrate_options opt;
	enum migrate_action action = MIGRATE_STATUS;
	bool have_action = false;
	if (defaults)
		opt = *defaults;
	else
		migrate_options_init(&opt);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			cli_usage(stdout);
			return MIGRATE_EXIT_DONE;
		}
	}
	if (!cli_parse(argc, argv, &opt, &action, &have_action) || !have_action) {
		if (!have_action)
			fprintf(stderr, "uuidgate migrate: which action: status, plan, up or down?\n");
		cli_usage(stderr);
		return MIGRATE_EXIT_USAGE;
	}
	struct migrate_progress progress;
	struct sigaction sa, old_term, old_int;
	migrate_progress_init(&progress);
	cli_progress = &progress;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	int code = migrate_run(&opt, action, &progress);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
	cli_progress = NULL;
	migrate_progress_destroy(&progress);
	return code;
}
