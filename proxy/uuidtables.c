#include "uuidtables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "catalog.h"
#include "log.h"
#include "proxy.h"

struct uuid_tables {
	struct proxy *px;
	char *names[CATALOG_TABLES];
	size_t n;
	PGconn *conn;
	struct event *io;
	bool again;            /* a refresh was asked for while one ran */
};

/* Fully qualified catalog names and parameters only: the query runs on a
 * connection of uuidgate's own, but nothing a client sets may change it. */
static const char table_query[] =
	"SELECT c.relname FROM pg_catalog.pg_class c "
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	"JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
	"WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attname = 'uuid' "
	"AND NOT a.attisdropped AND a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype "
	"AND c.relname = ANY ($2::pg_catalog.text[]) ORDER BY 1";

static void finish(struct uuid_tables *t)
{
	if (t->io) {
		event_free(t->io);
		t->io = NULL;
	}
	if (t->conn) {
		PQfinish(t->conn);
		t->conn = NULL;
	}
	if (t->again) {
		t->again = false;
		uuid_tables_refresh(t, "queued");
	}
}

static void fail(struct uuid_tables *t, const char *what)
{
	char msg[400];
	snprintf(msg, sizeof(msg), "%s: %s", what, t->conn ? PQerrorMessage(t->conn) : "out of memory");
	msg[strcspn(msg, "\n")] = '\0';
	log_event(LOG_WARNING, "uuid_tables_failed", 0, NULL, "msg", msg, LOG_KV_END);
	finish(t);
}

static void take_result(struct uuid_tables *t, PGresult *res)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->names[i]);
	t->n = 0;
	for (int i = 0; i < PQntuples(res) && t->n < CATALOG_TABLES; i++) {
		char *name = strdup(PQgetvalue(res, i, 0));
		if (name)
			t->names[t->n++] = name;
	}
	char count[16];
	snprintf(count, sizeof(count), "%zu", t->n);
	log_event(LOG_INFO, "uuid_tables", 0, NULL, "tables", count, LOG_KV_END);
}

static void wait_io(struct uuid_tables *t, short what, event_callback_fn fn);

static void on_result(evutil_socket_t fd, short what, void *arg)
{
	struct uuid_tables *t = arg;
	(void)fd;
	(void)what;
	if (!PQconsumeInput(t->conn)) {
		fail(t, "reading the migrated tables");
		return;
	}
	if (PQisBusy(t->conn))
		return;
	PGresult *res;
	bool ok = false;
	while ((res = PQgetResult(t->conn)) != NULL) {
		if (PQresultStatus(res) == PGRES_TUPLES_OK) {
			take_result(t, res);
			ok = true;
		}
		PQclear(res);
	}
	if (!ok) {
		fail(t, "reading the migrated tables");
		return;
	}
	finish(t);
}

static void send_query(struct uuid_tables *t)
{
	const char *schema = t->px->cfg->migrate_prefix;
	char list[2048] = "{";
	size_t off = 1;
	for (int i = 0; i < CATALOG_TABLES && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? "," : "", catalog_tables[i]);
	if (off < sizeof(list) - 1) {
		list[off++] = '}';
		list[off] = '\0';
	}
	const char *params[2] = { schema, list };
	if (!PQsendQueryParams(t->conn, table_query, 2, NULL, params, NULL, NULL, 0)) {
		fail(t, "querying the migrated tables");
		return;
	}
	wait_io(t, EV_READ | EV_PERSIST, on_result);
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg)
{
	struct uuid_tables *t = arg;
	(void)fd;
	(void)what;
	switch (PQconnectPoll(t->conn)) {
	case PGRES_POLLING_READING:
		wait_io(t, EV_READ, on_connect_io);
		break;
	case PGRES_POLLING_WRITING:
		wait_io(t, EV_WRITE, on_connect_io);
		break;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(t->conn, 1) != 0)
			fail(t, "connecting to read the migrated tables");
		else
			send_query(t);
		break;
	default:
		fail(t, "connecting to read the migrated tables");
	}
}

/* libpq may change sockets while connecting (several hosts): the event is
 * made anew for every wait. */
static void wait_io(struct uuid_tables *t, short what, event_callback_fn fn)
{
	if (t->io)
		event_free(t->io);
	t->io = event_new(t->px->base, PQsocket(t->conn), what, fn, t);
	if (!t->io || event_add(t->io, NULL) != 0)
		fail(t, "waiting for the database");
}

void uuid_tables_refresh(struct uuid_tables *t, const char *why)
{
	if (!t)
		return;
	if (t->conn) {
		t->again = true;
		return;
	}
	const struct ug_config *cfg = t->px->cfg;
	const char *conninfo = *cfg->migrate_upstream ? cfg->migrate_upstream : cfg->upstream;
	const char *keys[] = { "dbname", "application_name", NULL };
	const char *values[] = { conninfo, "uuidgate", NULL };
	log_event(LOG_DEBUG, "uuid_tables_refresh", 0, NULL, "why", why, LOG_KV_END);
	t->conn = PQconnectStartParams(keys, values, 1);
	if (!t->conn || PQstatus(t->conn) == CONNECTION_BAD) {
		fail(t, "connecting to read the migrated tables");
		return;
	}
	wait_io(t, EV_WRITE, on_connect_io);
}

struct uuid_tables *uuid_tables_new(struct proxy *px)
{
	struct uuid_tables *t = calloc(1, sizeof(*t));
	if (t)
		t->px = px;
	return t;
}

void uuid_tables_free(struct uuid_tables *t)
{
	if (!t)
		return;
	t->again = false;
	finish(t);
	for (size_t i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t);
}

const char *const *uuid_tables_list(const struct uuid_tables *t, size_t *n)
{
	*n = t ? t->n : 0;
	return t ? (const char *const *)t->names : NULL;
}
