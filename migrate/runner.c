#include "runner.h"

void runner_track(struct runner *r, PGconn *conn)
{
	pthread_mutex_lock(&r->conns_mu);
	for (int i = 0; i < RUNNER_MAX_CONNS; i++) {
		if (!r->conns[i]) {
			r->conns[i] = conn;
			break;
		}
	}
	pthread_mutex_unlock(&r->conns_mu);
}

void runner_untrack(struct runner *r, PGconn *conn)
{
	pthread_mutex_lock(&r->conns_mu);
	for (int i = 0; i < RUNNER_MAX_CONNS; i++)
		if (r->conns[i] == conn)
			r->conns[i] = NULL;
	pthread_mutex_unlock(&r->conns_mu);
}

void runner_abort(struct runner *r)
{
	atomic_store(r->stop, true);
	pthread_mutex_lock(&r->conns_mu);
	for (int i = 0; i < RUNNER_MAX_CONNS; i++)
		if (r->conns[i])
			db_cancel(r->conns[i]);
	pthread_mutex_unlock(&r->conns_mu);
}

PGconn *runner_diag(struct runner *r)
{
	if (r->diag && PQstatus(r->diag) == CONNECTION_OK)
		return r->diag;
	PQfinish(r->diag);
	struct mg_error err;
	mg_error_clear(&err);
	r->diag = db_connect(r->opt, &err);
	return r->diag;
}
