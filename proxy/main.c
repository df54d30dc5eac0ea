#include <stdio.h>
#include <string.h>

#include "migrate.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "migrate") == 0)
		return migrate_cli_main(argc - 1, argv + 1);
	fprintf(stderr, "uuidgate: proxy not built yet\n");
	return 1;
}
