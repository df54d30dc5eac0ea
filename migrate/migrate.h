/* The PhoenixKit V40 migration engine (online, resumable, coordinated). */
#ifndef UUIDGATE_MIGRATE_H
#define UUIDGATE_MIGRATE_H

/* `uuidgate migrate ...`: argv[0] is "migrate". Returns the process exit code. */
int migrate_cli_main(int argc, char **argv);

#endif
