/* The configuration file parser. The input is written to a memfd and loaded
 * through its /proc/self/fd path, as `uuidgate -c FILE` would load it; an
 * accepted configuration is validated, described key by key (SHOW CONFIG)
 * and applied as a reload over the defaults. The same bytes, as one string,
 * also go to the duration and timestamp parsers.
 *
 * Checks: an error message is always filled and NUL-terminated; a parsed
 * duration is never negative. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;

static void load(const uint8_t *data, size_t size)
{
	if (memfd < 0)
		memfd = memfd_create("fuzz_config", 0);
	if (memfd < 0 || ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);

	struct ug_config c, live;
	char err[CONFIG_ERR_LEN];
	config_init(&c);
	memset(err, 'x', sizeof(err));
	if (!config_load(&c, path, err, sizeof(err))) {
		if (!memchr(err, 0, sizeof(err)) || err[0] == '\0')
			abort();
		config_free(&c);
		return;
	}
	(void)config_validate(&c, err, sizeof(err));
	char value[1024];
	const char *name, *def;
	bool reloadable;
	for (size_t i = 0; config_describe(&c, i, &name, value, sizeof(value), &def, &reloadable); i++) {
		if (!name || !memchr(value, 0, sizeof(value)))
			abort();
	}
	char changed[1024];
	config_init(&live);
	config_apply_reload(&live, &c, changed, sizeof(changed));
	config_free(&live);
	config_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	load(data, size);

	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	int64_t ms = -1, t;
	if (config_parse_duration(s, &ms) && ms < 0)
		abort();
	(void)config_parse_timestamp(s, &t);
	free(s);
	return 0;
}
