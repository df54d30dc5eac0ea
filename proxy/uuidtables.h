/* The set of migrated tables the INSERT rewriter may fill: the tables of the
 * V40 list that have a uuid column in the migration schema, read from the
 * catalog with a non-blocking libpq query driven by the event loop. */
#ifndef UUIDGATE_UUIDTABLES_H
#define UUIDGATE_UUIDTABLES_H

#include <stddef.h>

struct proxy;
struct uuid_tables;

struct uuid_tables *uuid_tables_new(struct proxy *px);
void uuid_tables_free(struct uuid_tables *t);
/* Starts a catalog read; one already running is followed by another once it
 * ends, so the newest state always wins. */
void uuid_tables_refresh(struct uuid_tables *t, const char *why);
/* The current set (names as the catalog spells them). */
const char *const *uuid_tables_list(const struct uuid_tables *t, size_t *n);

#endif
