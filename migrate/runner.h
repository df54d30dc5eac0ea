/* What one migrate_run() carries from step to step. */
#ifndef UUIDGATE_RUNNER_H
#define UUIDGATE_RUNNER_H

#include <libpq-fe.h>
#include <pthread.h>

#include "db.h"
#include "migrate.h"

#define RUNNER_MAX_CONNS 64

struct coord;

struct runner {
	const struct migrate_options *opt;
	struct migrate_progress *prog;
	atomic_bool *stop;
	PGconn *conn;               /* catalog reads and steps */
	PGconn *diag;               /* opened on demand: who blocks conn while it waits */
	struct coord *coord;        /* the migration lock, NULL for status/plan */
	int server_version;
	char *rand_uuid_sql;        /* a qualified call returning a random (v4) uuid */
	int64_t start_ms;           /* Unix ms; timestamp of rows without a usable inserted_at */

	/* Connections to cancel at once when the migration lock is lost. */
	pthread_mutex_t conns_mu;
	PGconn *conns[RUNNER_MAX_CONNS];
};

void runner_track(struct runner *r, PGconn *conn);
void runner_untrack(struct runner *r, PGconn *conn);
/* Raises stop and cancels whatever every tracked connection is running. */
void runner_abort(struct runner *r);
/* The diagnostics connection, opened on first use; NULL when it cannot be. */
PGconn *runner_diag(struct runner *r);

#endif
