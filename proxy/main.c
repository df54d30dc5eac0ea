/* uuidgate: a PostgreSQL proxy that applies PhoenixKit V40 online. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "config.h"
#include "log.h"
#include "migrate.h"
#include "proxy.h"

enum { OPT_CHECK = 1000, OPT_SAMPLE, OPT_UPSTREAM, OPT_LISTEN };

static void usage(FILE *out)
{
	fprintf(out,
		"uuidgate %s: a PostgreSQL proxy that applies PhoenixKit V40 online.\n\n"
		"Usage:\n"
		"  uuidgate [-c FILE] [--upstream CONNINFO] [--listen ADDR:PORT]   run the proxy\n"
		"  uuidgate --check -c FILE        validate the configuration and exit\n"
		"  uuidgate --sample-config        print a commented configuration with every default\n"
		"  uuidgate migrate status|plan|up|down [options]   run the migration by hand\n"
		"  uuidgate --help | --version\n\n"
		"Options:\n"
		"  -c, --config FILE      ini file with a [uuidgate] section\n"
		"      --upstream STR     libpq connection string or URL of the database\n"
		"      --listen ADDR:PORT TCP address and port to listen on (e.g. 0.0.0.0:6432)\n\n",
		UUIDGATE_VERSION);
	config_print_help(out);
}

struct cli {
	const char *config_path;
	struct config_overrides flags;
	bool check;
};

static int parse_args(int argc, char **argv, struct cli *cli)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "upstream", required_argument, NULL, OPT_UPSTREAM },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "sample-config", no_argument, NULL, OPT_SAMPLE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cli->config_path = optarg; break;
		case OPT_UPSTREAM: cli->flags.upstream = optarg; break;
		case OPT_LISTEN: cli->flags.listen = optarg; break;
		case OPT_CHECK: cli->check = true; break;
		case OPT_SAMPLE: config_print_sample(stdout); return 0;
		case 'h': usage(stdout); return 0;
		case 'V': printf("uuidgate %s\n", UUIDGATE_VERSION); return 0;
		default:
			fprintf(stderr, "Try uuidgate --help.\n");
			return 2;
		}
	}
	if (optind < argc && !cli->config_path)
		cli->config_path = argv[optind++]; /* pgbouncer style: the file as an argument */
	if (optind < argc) {
		fprintf(stderr, "uuidgate: unexpected argument \"%s\"; try uuidgate --help\n", argv[optind]);
		return 2;
	}
	return -1;
}

static bool load_config(struct ug_config *cfg, const struct cli *cli, char *err, size_t errlen)
{
	if (!config_load(cfg, cli->config_path, err, errlen))
		return false;
	if (!config_apply_overrides(cfg, &cli->flags, err, errlen))
		return false;
	if (!*cfg->upstream) {
		snprintf(err, errlen, "no upstream database configured: set upstream in the config file, "
			 "UUIDGATE_UPSTREAM, or --upstream 'host=... dbname=...'");
		return false;
	}
	return config_validate(cfg, err, errlen);
}

static int run_proxy(struct ug_config *cfg, const struct cli *cli)
{
	char err[CONFIG_ERR_LEN];
	if (!log_open(cfg, err, sizeof(err))) {
		fprintf(stderr, "uuidgate: %s\n", err);
		return 1;
	}
	struct proxy *px = proxy_new(cfg, cli->config_path, &cli->flags, err, sizeof(err));
	if (!px) {
		log_event(LOG_ERROR, "startup_failed", 0, NULL, "msg", err, LOG_KV_END);
		return 1;
	}
	int rc = proxy_run(px);
	proxy_free(px);
	log_close();
	return rc;
}

/* `uuidgate migrate ...` reads the same configuration file and environment
 * as the proxy; its own flags then override. */
static int run_migrate_cli(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)
			path = argv[i + 1];
	struct ug_config cfg;
	char err[CONFIG_ERR_LEN];
	config_init(&cfg);
	if (!config_load(&cfg, path, err, sizeof(err))) {
		fprintf(stderr, "uuidgate: %s\n", err);
		config_free(&cfg);
		return MIGRATE_EXIT_USAGE;
	}
	struct migrate_options opt;
	migrate_options_init(&opt);
	opt.conninfo = *cfg.migrate_upstream ? cfg.migrate_upstream : (*cfg.upstream ? cfg.upstream : NULL);
	opt.prefix = cfg.migrate_prefix;
	opt.lock_timeout_ms = (int)cfg.migrate_lock_timeout_ms;
	opt.batch_time_ms = (int)cfg.migrate_batch_time_ms;
	opt.batch_pause_ms = (int)cfg.migrate_batch_pause_ms;
	opt.workers = cfg.migrate_workers;
	opt.max_replication_lag_ms = (int)cfg.migrate_max_replication_lag_ms;
	int rc = migrate_cli_main(argc, argv, &opt);
	config_free(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "migrate") == 0)
		return run_migrate_cli(argc - 1, argv + 1);

	struct cli cli = { 0 };
	int rc = parse_args(argc, argv, &cli);
	if (rc >= 0)
		return rc;
	struct ug_config cfg;
	char err[CONFIG_ERR_LEN];
	config_init(&cfg);
	if (!load_config(&cfg, &cli, err, sizeof(err))) {
		fprintf(stderr, "uuidgate: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (cli.check) {
		printf("uuidgate: configuration %s is valid\n", cli.config_path ? cli.config_path : "(defaults)");
		config_free(&cfg);
		return 0;
	}
	rc = run_proxy(&cfg, &cli);
	config_free(&cfg);
	return rc;
}
