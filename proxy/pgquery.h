/* One query on a connection of uuidgate's own, without blocking the event
 * loop: libpq's non-blocking connect and send, driven by libevent. Used for
 * the catalog read of migrated tables and for auth_query. */
#ifndef UUIDGATE_PGQUERY_H
#define UUIDGATE_PGQUERY_H

#include <libpq-fe.h>

struct event_base;
struct pgquery;

/* res is the query's result (NULL on failure, with error saying why); it is
 * freed after the callback returns. Always called from the event loop,
 * never from inside pgquery_start. */
typedef void (*pgquery_done)(const PGresult *res, const char *error, void *arg);

/* Connection parameters: conninfo (a libpq string or URL), then the keys in
 * `keys`/`values` (NULL-terminated) override its own. */
struct pgquery *pgquery_start(struct event_base *base, const char *conninfo, const char *const *keys,
                              const char *const *values, const char *sql, int nparams,
                              const char *const *params, pgquery_done cb, void *arg);
/* Abandons a query; its callback is not called. */
void pgquery_abort(struct pgquery *q);

#endif
