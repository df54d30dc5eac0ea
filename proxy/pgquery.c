#include "pgquery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#define MAX_KEYS 64
#define MAX_PARAMS 4
/* libpq's connect_timeout does not apply to non-blocking connections. */
#define QUERY_TIMEOUT_SECONDS 30

struct pgquery {
	struct event_base *base;
	PGconn *conn;
	struct event *io;
	struct event *kick;
	struct event *deadline;
	char *sql;
	int nparams;
	char *params[MAX_PARAMS];
	pgquery_done cb;
	void *arg;
};

static void release(struct pgquery *q)
{
	if (q->io)
		event_free(q->io);
	if (q->kick)
		event_free(q->kick);
	if (q->deadline)
		event_free(q->deadline);
	if (q->conn)
		PQfinish(q->conn);
	free(q->sql);
	for (int i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q);
}

void pgquery_abort(struct pgquery *q)
{
	if (q)
		release(q);
}

static void finish(struct pgquery *q, const PGresult *res, const char *what)
{
	char error[400] = "";
	if (!res) {
		snprintf(error, sizeof(error), "%s: %s", what, q->conn ? PQerrorMessage(q->conn) : "out of memory");
		error[strcspn(error, "\n")] = '\0';
	}
	pgquery_done cb = q->cb;
	void *arg = q->arg;
	q->cb = NULL;
	cb(res, res ? NULL : error, arg);
	release(q);
}

static void wait_io(struct pgquery *q, short what, event_callback_fn fn);

static void on_result(evutil_socket_t fd, short what, void *arg)
{
	struct pgquery *q = arg;
	(void)fd;
	(void)what;
	if (!PQconsumeInput(q->conn)) {
		finish(q, NULL, "reading the result");
		return;
	}
	if (PQisBusy(q->conn))
		return;
	PGresult *res, *ok = NULL;
	while ((res = PQgetResult(q->conn)) != NULL) {
		if (!ok && PQresultStatus(res) == PGRES_TUPLES_OK)
			ok = res;
		else
			PQclear(res);
	}
	finish(q, ok, "running the query");
	PQclear(ok);
}

static void on_connect(evutil_socket_t fd, short what, void *arg)
{
	struct pgquery *q = arg;
	(void)fd;
	(void)what;
	switch (PQconnectPoll(q->conn)) {
	case PGRES_POLLING_READING:
		wait_io(q, EV_READ, on_connect);
		return;
	case PGRES_POLLING_WRITING:
		wait_io(q, EV_WRITE, on_connect);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		finish(q, NULL, "connecting");
		return;
	}
	if (PQsetnonblocking(q->conn, 1) != 0 ||
	    !PQsendQueryParams(q->conn, q->sql, q->nparams, NULL, (const char *const *)q->params, NULL, NULL, 0)) {
		finish(q, NULL, "sending the query");
		return;
	}
	wait_io(q, EV_READ | EV_PERSIST, on_result);
}

/* libpq may change sockets while connecting (several hosts): the event is
 * made anew for every wait. */
static void wait_io(struct pgquery *q, short what, event_callback_fn fn)
{
	if (q->io)
		event_free(q->io);
	q->io = event_new(q->base, PQsocket(q->conn), what, fn, q);
	if (!q->io || event_add(q->io, NULL) != 0)
		finish(q, NULL, "waiting for the database");
}

static void begin(evutil_socket_t fd, short what, void *arg)
{
	struct pgquery *q = arg;
	(void)fd;
	(void)what;
	if (!q->conn || PQstatus(q->conn) == CONNECTION_BAD)
		finish(q, NULL, "connecting");
	else
		wait_io(q, EV_WRITE, on_connect);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, NULL, "timed out");
}

/* The conninfo's own options, then the overrides, as keyword arrays. */
static PGconn *start_connection(const char *conninfo, const char *const *keys, const char *const *values)
{
	const char *k[MAX_KEYS + 1], *v[MAX_KEYS + 1];
	int n = 0;
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	for (PQconninfoOption *o = opts; o && o->keyword && n < MAX_KEYS; o++) {
		if (!o->val)
			continue;
		k[n] = o->keyword;
		v[n++] = o->val;
	}
	for (int i = 0; keys && keys[i] && n < MAX_KEYS; i++) {
		k[n] = keys[i];
		v[n++] = values[i];
	}
	k[n] = NULL;
	v[n] = NULL;
	/* Later keywords win over earlier ones in libpq's keyword arrays. */
	PGconn *conn = PQconnectStartParams(k, v, 0);
	PQconninfoFree(opts);
	return conn;
}

struct pgquery *pgquery_start(struct event_base *base, const char *conninfo, const char *const *keys,
			      const char *const *values, const char *sql, int nparams,
			      const char *const *params, pgquery_done cb, void *arg)
{
	struct pgquery *q = calloc(1, sizeof(*q));
	if (!q || nparams > MAX_PARAMS)
		goto fail;
	q->base = base;
	q->cb = cb;
	q->arg = arg;
	q->sql = strdup(sql);
	for (; q->nparams < nparams; q->nparams++)
		if (!(q->params[q->nparams] = strdup(params[q->nparams] ? params[q->nparams] : "")))
			goto fail;
	q->conn = start_connection(conninfo, keys, values);
	struct timeval now = { 0, 0 }, limit = { QUERY_TIMEOUT_SECONDS, 0 };
	q->kick = evtimer_new(base, begin, q);
	q->deadline = evtimer_new(base, on_deadline, q);
	if (!q->sql || !q->kick || !q->deadline || evtimer_add(q->kick, &now) != 0 ||
	    evtimer_add(q->deadline, &limit) != 0)
		goto fail;
	return q;
fail:
	if (q)
		release(q);
	return NULL;
}
