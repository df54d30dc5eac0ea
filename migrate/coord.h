/* Serialising runners with PostgreSQL itself: a session-level advisory lock
 * held on a connection of its own (TCP keepalives), watched by a thread that
 * stops every worker of this runner at once when that connection drops. */
#ifndef UUIDGATE_COORD_H
#define UUIDGATE_COORD_H

#include "runner.h"

struct coord;

struct coord_holder {
	int pid;
	char app[64];
	char host[64];
	char since[40];
};

/* Waits (logging who holds it) until this runner holds the migration lock of
 * the prefix, then cancels what a dead runner left running. */
bool coord_acquire(struct runner *r, struct coord **out, struct mg_error *err);
void coord_release(struct coord *c);
bool coord_lost(const struct coord *c);

/* Who holds the migration lock now (false: nobody). */
bool coord_holder(struct runner *r, PGconn *conn, struct coord_holder *h, struct mg_error *err);

#endif
