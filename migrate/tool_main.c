/*
 * uuidgate-migrate: the migration CLI on its own, for tests and benchmarks
 * and for hosts that only need the migration. `-c FILE` reads the migration's
 * keys of uuidgate.ini (upstream, migrate_*); command-line options win.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

static char *tool_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static void tool_set(struct migrate_options *o, const char *key, const char *val)
{
	static const struct { const char *key; size_t off; } ints[] = {
		{ "migrate_lock_timeout", offsetof(struct migrate_options, lock_timeout_ms) },
		{ "migrate_batch_time", offsetof(struct migrate_options, batch_time_ms) },
		{ "migrate_batch_pause", offsetof(struct migrate_options, batch_pause_ms) },
		{ "migrate_workers", offsetof(struct migrate_options, workers) },
		{ "migrate_max_replication_lag", offsetof(struct migrate_options, max_replication_lag_ms) },
	};
	if (strcmp(key, "migrate_upstream") == 0 ||
	    (strcmp(key, "upstream") == 0 && !o->conninfo))
		o->conninfo = strdup(val);
	else if (strcmp(key, "migrate_prefix") == 0)
		o->prefix = strdup(val);
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if (strcmp(key, ints[i].key) == 0)
			*(int *)((char *)o + ints[i].off) = atoi(val);
}

static int tool_read_config(const char *path, struct migrate_options *o)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	if (!f) {
		perror(path);
		return -1;
	}
	/* migrate_upstream wins over upstream whatever their order. */
	char *upstream = NULL;
	while (fgets(line, sizeof(line), f)) {
		char *s = tool_trim(line);
		char *eq = strchr(s, '=');
		if (!*s || *s == '#' || *s == ';' || *s == '[' || !eq)
			continue;
		*eq = '\0';
		char *key = tool_trim(s), *val = tool_trim(eq + 1);
		if (strcmp(key, "upstream") == 0) {
			free(upstream);
			upstream = strdup(val);
			continue;
		}
		tool_set(o, key, val);
	}
	fclose(f);
	if (upstream && !o->conninfo)
		o->conninfo = upstream;
	else
		free(upstream);
	return 0;
}

int main(int argc, char **argv)
{
	struct migrate_options opt;
	migrate_options_init(&opt);
	for (int i = 1; i + 1 < argc; i++)
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    tool_read_config(argv[i + 1], &opt) != 0)
			return MIGRATE_EXIT_USAGE;
	return migrate_cli_main(argc, argv, &opt);
}
