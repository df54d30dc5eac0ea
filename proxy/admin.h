/* The admin console: the virtual database "uuidgate" on the proxy's own
 * port, pgbouncer style. Commands are answered with ordinary result sets so
 * that psql shows tables. */
#ifndef UUIDGATE_ADMIN_H
#define UUIDGATE_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "pgbuf.h"

struct proxy;
struct client;

#define ADMIN_DATABASE "uuidgate"

bool admin_is_console(const char *database);
/* Whether user is listed in admin_users. */
bool admin_user_allowed(const struct proxy *px, const char *user);
/* AuthenticationOk, ParameterStatus, BackendKeyData and ReadyForQuery. */
void admin_put_welcome(struct pgbuf *out, const char *user, uint32_t pid, uint32_t key);
/* Runs one simple Query from an admin session; the result (or error) and
 * ReadyForQuery go to out. The caller may be closed by the command
 * (KILL_CLIENT of itself, SHUTDOWN), so it must not touch self afterwards
 * unless the return value is true. */
bool admin_execute(struct proxy *px, struct client *self, const char *query, struct pgbuf *out);

#endif
