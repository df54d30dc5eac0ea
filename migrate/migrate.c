#include "migrate.h"

#include <stdio.h>

int migrate_cli_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "uuidgate migrate: not available in this build\n");
	return 2;
}
