#include "rwsess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "message.h"
#include "pgread.h"
#include "proxy.h"
#include "rewrite.h"
#include "rewrite_ext.h"
#include "sqlscan.h"
#include "stmtmap.h"
#include "uuidtables.h"

#define SQLSTATE_UNDEFINED_COLUMN "42703"

struct rwsess {
	struct proxy *px;
	uint64_t conn;
	const char *addr;
	struct stmtmap *map;
	bool utf8;
	bool standard_strings;
	bool path_known;          /* unqualified table names resolve to migrate_prefix */
	bool rewrote_statements;  /* Binds must be inspected */
	/* Binds with the wrong number of parameters for a rewritten statement
	 * are sent on with none, so that the server fails them at the right
	 * place in the pipeline; their errors are then replaced by ones that
	 * name the counts the client knows. */
	struct forced_error {
		struct forced_error *next;
		char *statement;
		char *message;
	} *forced, **forced_tail;
};

struct rwsess *rwsess_new(struct proxy *px, uint64_t conn_id, const char *addr)
{
	struct rwsess *rw = calloc(1, sizeof(*rw));
	if (!rw)
		return NULL;
	rw->px = px;
	rw->conn = conn_id;
	rw->addr = addr;
	rw->map = stmtmap_new();
	rw->forced_tail = &rw->forced;
	if (!rw->map) {
		free(rw);
		return NULL;
	}
	return rw;
}

static void forced_pop(struct rwsess *rw)
{
	struct forced_error *f = rw->forced;
	rw->forced = f->next;
	if (!rw->forced)
		rw->forced_tail = &rw->forced;
	free(f->statement);
	free(f->message);
	free(f);
}

void rwsess_free(struct rwsess *rw)
{
	if (!rw)
		return;
	while (rw->forced)
		forced_pop(rw);
	stmtmap_free(rw->map);
	free(rw);
}

bool rwsess_needed(const struct rwsess *rw)
{
	return rw->rewrote_statements || rw->forced || proxy_insert_uuid_active(rw->px);
}

/* ---- what the session's settings allow ---------------------------------- */

/* Whether the first schema searched for an ordinary table is the migration
 * schema. pg_catalog is skipped (no migrated table lives there); a temporary
 * schema, "$user" or anything else first makes the answer "not certain". */
static bool path_resolves_to(const char *list, const char *schema)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", list);
	char *p = buf;
	if (*p == '{')
		p++;
	p[strcspn(p, "}")] = '\0';
	for (char *save = NULL, *tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		size_t n = strlen(tok);
		while (n && tok[n - 1] == ' ')
			tok[--n] = '\0';
		if (n >= 2 && tok[0] == '"' && tok[n - 1] == '"') {
			tok[n - 1] = '\0';
			tok++;
		}
		if (strcmp(tok, "pg_catalog") == 0)
			continue;
		return strcmp(tok, schema) == 0;
	}
	return false;
}

void rwsess_parameter(struct rwsess *rw, const char *name, const char *value)
{
	if (strcmp(name, "client_encoding") == 0)
		rw->utf8 = strcasecmp(value, "UTF8") == 0;
	else if (strcmp(name, "standard_conforming_strings") == 0)
		rw->standard_strings = strcmp(value, "on") == 0;
	else if (strcmp(name, "search_path") == 0)
		rw->path_known = path_resolves_to(value, rw->px->cfg->migrate_prefix);
}

const char *rwsess_probe_query(void)
{
	return "SELECT pg_catalog.current_schemas(true)::pg_catalog.text";
}

bool rwsess_probe_message(struct rwsess *rw, uint8_t type, const uint8_t *body, size_t len)
{
	if (type == 'D') {
		struct pgread r;
		pgread_init(&r, body, len);
		int16_t ncols = pgread_int16(&r);
		int32_t n = pgread_int32(&r);
		const uint8_t *v = n > 0 ? pgread_bytes(&r, (size_t)n) : NULL;
		if (ncols == 1 && v && n < 1024) {
			char list[1024];
			memcpy(list, v, (size_t)n);
			list[n] = '\0';
			rw->path_known = path_resolves_to(list, rw->px->cfg->migrate_prefix);
		}
	} else if (type == 'E') {
		rw->path_known = false;
	}
	return type == 'Z';
}

/* A temporary table may shadow a migrated one under an unqualified name. */
static bool creates_temporary(const char *sql)
{
	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
		sql++;
	return strncasecmp(sql, "create", 6) == 0 && strcasestr(sql, "temp") != NULL;
}

static void note_settings_change(struct rwsess *rw, const char *sql, unsigned keywords)
{
	if ((keywords & SQLSCAN_SET) || creates_temporary(sql))
		rw->path_known = false;
}

static bool session_view(struct rwsess *rw, struct rewrite_session *s)
{
	s->schema = rw->px->cfg->migrate_prefix;
	s->tables = uuid_tables_list(rw->px->tables, &s->n_tables);
	s->unqualified_in_schema = rw->path_known;
	s->utf8_standard_strings = rw->utf8 && rw->standard_strings;
	return s->n_tables > 0 && proxy_insert_uuid_active(rw->px);
}

/* Reads one statement text: notes what changes the session's settings, and
 * says whether the rewriter should look at it (an INSERT or WITH, the
 * window open, migrated tables known). */
static bool wants_rewrite(struct rwsess *rw, const char *sql, size_t len, struct rewrite_session *s)
{
	unsigned keywords = sqlscan_leading_keywords(sql, len);
	note_settings_change(rw, sql, keywords);
	return (keywords & (SQLSCAN_INSERT | SQLSCAN_WITH)) && session_view(rw, s);
}

static void count_result(struct rwsess *rw, enum rewrite_status st, const struct rewrite_result *res,
			 const char *sql)
{
	struct proxy_stats *stats = &rw->px->stats;
	if (st != REWRITE_DONE) {
		if (rw->utf8 && rw->standard_strings)
			stats->rewrite_passed_uncertain++;
		else
			stats->rewrite_passed_settings++;
		return;
	}
	stats->rewrite_statements++;
	stats->rewrite_values += res->rows;
	if (rw->px->cfg->log_rewrites) {
		char rows[16];
		snprintf(rows, sizeof(rows), "%u", res->rows);
		log_event(LOG_DEBUG, "rewrite", rw->conn, rw->addr, "rows", rows, "sql", sql, LOG_KV_END);
	}
}

/* ---- client to server ---------------------------------------------------
 * Each handler sees one whole message body and returns true when it wrote a
 * replacement message into b; otherwise the original goes on untouched. */

static bool client_query(struct rwsess *rw, const uint8_t *body, size_t len, struct pgbuf *b)
{
	const char *sql = (const char *)body;
	if (len == 0 || body[len - 1] != '\0') {
		stmtmap_query(rw->map, "", NULL); /* the server rejects it */
		return false;
	}
	struct rewrite_session s;
	struct rewrite_result res;
	memset(&res, 0, sizeof(res));
	enum rewrite_status st = REWRITE_PASS;
	if (wants_rewrite(rw, sql, len - 1, &s)) {
		st = rewrite_query(&s, &rw->px->uuidgen, sql, &res);
		count_result(rw, st, &res, sql);
	}
	if (st != REWRITE_DONE) {
		stmtmap_query(rw->map, sql, NULL);
		rewrite_result_free(&res);
		return false;
	}
	size_t start = pgbuf_begin_msg(b, 'Q');
	pgbuf_put_bytes(b, res.sql, res.sql_len);
	pgbuf_put_u8(b, 0);
	pgbuf_end_msg(b, start);
	stmtmap_query(rw->map, sql, &res.posmap);
	memset(&res.posmap, 0, sizeof(res.posmap)); /* the map owns it now */
	rewrite_result_free(&res);
	return !pgbuf_failed(b);
}

static bool client_parse(struct rwsess *rw, const uint8_t *body, size_t len, struct pgbuf *b)
{
	struct pgread rd;
	pgread_init(&rd, body, len);
	const char *name = pgread_str(&rd);
	const char *sql = pgread_str(&rd);
	if (!name || !sql) {
		stmtmap_parse(rw->map, "", NULL, NULL);
		return false;
	}
	struct rewrite_session s;
	struct rewrite_result res;
	memset(&res, 0, sizeof(res));
	enum rewrite_status st = REWRITE_PASS;
	if (wants_rewrite(rw, sql, strlen(sql), &s)) {
		st = rewrite_ext_parse(&s, body, len, b, &res);
		count_result(rw, st, &res, sql);
	}
	bool replaced = st == REWRITE_DONE && !pgbuf_failed(b);
	if (replaced) {
		struct stmtmap_entry e = { res.orig_params, res.extra_params, res.rows };
		stmtmap_parse(rw->map, name, &e, &res.posmap);
		memset(&res.posmap, 0, sizeof(res.posmap));
		rw->rewrote_statements = true;
	} else {
		stmtmap_parse(rw->map, name, NULL, NULL);
	}
	rewrite_result_free(&res);
	return replaced;
}

/* A Bind with no parameters to the same statement: the server rejects it
 * with its own count, which server_error() replaces. */
static bool force_bind_error(struct rwsess *rw, const char *portal, const char *stmt,
			     const struct rewrite_ext_error *err, struct pgbuf *b)
{
	struct forced_error *f = calloc(1, sizeof(*f));
	if (!f || !(f->statement = strdup(stmt)) || !(f->message = strdup(err->message))) {
		if (f)
			free(f->statement);
		free(f);
		return false;
	}
	*rw->forced_tail = f;
	rw->forced_tail = &f->next;
	pgbuf_reset(b);
	size_t start = pgbuf_begin_msg(b, 'B');
	pgbuf_put_str(b, portal);
	pgbuf_put_str(b, stmt);
	pgbuf_put_int16(b, 0);
	pgbuf_put_int16(b, 0);
	pgbuf_put_int16(b, 0);
	pgbuf_end_msg(b, start);
	return !pgbuf_failed(b);
}

static bool client_bind(struct rwsess *rw, const uint8_t *body, size_t len, struct pgbuf *b)
{
	struct pgread rd;
	pgread_init(&rd, body, len);
	const char *portal = pgread_str(&rd);
	const char *stmt = pgread_str(&rd);
	const struct stmtmap_entry *e = portal && stmt ? stmtmap_lookup(rw->map, stmt) : NULL;
	struct rewrite_ext_error err;
	bool replaced = false;
	/* Statements prepared with hidden parameters get fresh values on every
	 * Bind, even after the window has closed: their text is fixed. */
	if (e && e->extra_params) {
		enum rewrite_bind_status st = rewrite_ext_bind(body, len, e->orig_params, e->extra_params,
							       &rw->px->uuidgen, b, &err);
		if (st == REWRITE_BIND_OK) {
			rw->px->stats.rewrite_values += e->extra_params;
			replaced = !pgbuf_failed(b);
		} else if (st == REWRITE_BIND_ERROR) {
			replaced = force_bind_error(rw, portal, stmt, &err, b);
		}
	}
	stmtmap_other(rw->map);
	return replaced;
}

/* Close and Describe name a statement ('S') or a portal ('P'). */
static void client_close_or_describe(struct rwsess *rw, uint8_t type, const uint8_t *body, size_t len)
{
	struct pgread rd;
	pgread_init(&rd, body, len);
	uint8_t kind = pgread_u8(&rd);
	const char *name = pgread_str(&rd);
	if (kind != 'S' || !name)
		stmtmap_other(rw->map);
	else if (type == 'C')
		stmtmap_close(rw->map, name);
	else
		stmtmap_describe_statement(rw->map, name);
}

static bool client_needs_body(const struct rwsess *rw, uint8_t type)
{
	return type == 'Q' || type == 'P' || type == 'C' || type == 'D' || (type == 'B' && rw->rewrote_statements);
}

/* Messages forwarded untouched that the server answers. */
static void client_untouched(struct rwsess *rw, uint8_t type)
{
	switch (type) {
	case 'B':
	case 'E':
		stmtmap_other(rw->map);
		break;
	case 'S':
		stmtmap_sync(rw->map);
		break;
	case 'F':
		stmtmap_function_call(rw->map);
		break;
	default:
		break; /* Flush, Terminate, COPY data: no reply of their own */
	}
}

static bool client_message(struct rwsess *rw, uint8_t type, const uint8_t *body, size_t len, struct pgbuf *b)
{
	switch (type) {
	case 'Q':
		return client_query(rw, body, len, b);
	case 'P':
		return client_parse(rw, body, len, b);
	case 'B':
		return client_bind(rw, body, len, b);
	default:
		client_close_or_describe(rw, type, body, len);
		return false;
	}
}

/* ---- server to client ----------------------------------------------------- */

/* The error of a Bind that force_bind_error() sent on. */
static bool is_forced_error(const struct rwsess *rw, const struct pg_error *e)
{
	char expect[300];
	if (!rw->forced || !e->sqlstate || strcmp(e->sqlstate, SQLSTATE_PROTOCOL_VIOLATION) != 0 || !e->message)
		return false;
	snprintf(expect, sizeof(expect), "bind message supplies 0 parameters, but prepared statement \"%s\"",
		 rw->forced->statement);
	return strncmp(e->message, expect, strlen(expect)) == 0;
}

static bool server_error(struct rwsess *rw, const uint8_t *body, size_t len, struct pgbuf *b)
{
	const struct rewrite_posmap *pm = stmtmap_current_posmap(rw->map);
	struct pg_error e;
	if (pgmsg_parse_error(body, len, &e) && is_forced_error(rw, &e)) {
		struct pg_error mine = { .severity = "ERROR", .sqlstate = SQLSTATE_PROTOCOL_VIOLATION,
					 .message = rw->forced->message };
		pgmsg_put_error(b, 'E', &mine);
		stmtmap_server(rw->map, 'E', body, len);
		forced_pop(rw);
		return !pgbuf_failed(b);
	}
	if (pm && pgmsg_parse_error(body, len, &e) && e.sqlstate && strcmp(e.sqlstate, SQLSTATE_UNDEFINED_COLUMN) == 0) {
		/* A rewritten statement met a table without the column (migrate
		 * down, or a temporary table): read the set again, and stop
		 * trusting unqualified names in this session. */
		rw->path_known = false;
		uuid_tables_refresh(rw->px->tables, "undefined column after a rewrite");
	}
	bool mapped = pm && rewrite_ext_error_position('E', body, len, pm, b) && !pgbuf_failed(b);
	stmtmap_server(rw->map, 'E', body, len);
	return mapped;
}

static bool server_param_desc(struct rwsess *rw, const uint8_t *body, size_t len, struct pgbuf *b)
{
	uint32_t hidden = stmtmap_current_hidden_params(rw->map);
	bool trimmed = hidden && rewrite_ext_param_desc(body, len, hidden, b) && !pgbuf_failed(b);
	stmtmap_server(rw->map, 't', body, len);
	return trimmed;
}

static void server_parameter_status(struct rwsess *rw, const uint8_t *body, size_t len)
{
	struct pgread rd;
	pgread_init(&rd, body, len);
	const char *name = pgread_str(&rd);
	const char *value = pgread_str(&rd);
	if (name && value)
		rwsess_parameter(rw, name, value);
}

static bool server_needs_body(const struct rwsess *rw, uint8_t type)
{
	(void)rw;
	return type == 'E' || type == 't' || type == 'S' || type == 'C' || type == 'Z';
}

static void server_untouched(struct rwsess *rw, uint8_t type)
{
	stmtmap_server(rw->map, (char)type, NULL, 0);
}

static bool server_message(struct rwsess *rw, uint8_t type, const uint8_t *body, size_t len, struct pgbuf *b)
{
	switch (type) {
	case 'E':
		return server_error(rw, body, len, b);
	case 't':
		return server_param_desc(rw, body, len, b);
	case 'S':
		server_parameter_status(rw, body, len);
		return false;
	default:
		stmtmap_server(rw->map, (char)type, body, len);
		return false;
	}
}

/* ---- the shared loop -------------------------------------------------------- */

struct direction {
	bool from_client;        /* counts Query and Sync, each answered by a ReadyForQuery */
	bool (*needs_body)(const struct rwsess *rw, uint8_t type);
	void (*untouched)(struct rwsess *rw, uint8_t type);
	bool (*message)(struct rwsess *rw, uint8_t type, const uint8_t *body, size_t len, struct pgbuf *b);
};

static const struct direction client_direction = { true, client_needs_body, client_untouched, client_message };
static const struct direction server_direction = { false, server_needs_body, server_untouched, server_message };

/* Bodies up to this size are copied out instead of pulled up, so that a run
 * of untouched messages still leaves in one evbuffer move. */
#define SMALL_BODY 2048

struct inspect_pass {
	struct evbuffer *in;
	struct evbuffer *out;
	struct relay *r;
	size_t fwd;              /* bytes at the front of `in` to forward untouched */
	const uint8_t *base;     /* `in` as one block, or NULL (relay_contiguous) */
};

static void flush_untouched(struct inspect_pass *p)
{
	if (p->fwd) {
		evbuffer_remove_buffer(p->in, p->out, p->fwd);
		p->r->bytes += p->fwd;
		p->fwd = 0;
	}
	p->base = NULL; /* the input changed: look again */
}

static void count_message(const struct direction *d, struct relay *r, uint8_t type, const uint8_t *body,
			  size_t len)
{
	r->messages++;
	r->last_type = type;
	if (d->from_client) {
		r->syncs += type == 'Q' || type == 'S';
	} else if (type == 'Z') {
		r->readies++;
		r->saw_ready = true;
		r->ready_status = body && len == 1 ? body[0] : 0;
	}
}

/* One whole message that needs its body: handled, then forwarded untouched
 * or replaced. */
static void inspect_message(struct rwsess *rw, const struct direction *d, struct inspect_pass *p, uint8_t type,
			    uint32_t total)
{
	uint8_t small[SMALL_BODY + PG_HEADER_LEN];
	const uint8_t *msg;
	if (p->base) {
		msg = p->base + p->fwd;
	} else if (total <= sizeof(small)) {
		relay_copy_at(p->in, NULL, p->fwd, small, total);
		msg = small;
	} else {
		flush_untouched(p);
		msg = evbuffer_pullup(p->in, total);
	}
	size_t len = total - PG_HEADER_LEN;
	count_message(d, p->r, type, msg + PG_HEADER_LEN, len);
	struct pgbuf b;
	pgbuf_init(&b);
	if (d->message(rw, type, msg + PG_HEADER_LEN, len, &b)) {
		flush_untouched(p);
		evbuffer_drain(p->in, total);
		evbuffer_add(p->out, b.data, b.len);
		p->r->bytes += b.len;
	} else {
		p->fwd += total;
	}
	pgbuf_free(&b);
}

/* Messages that need no inspection are forwarded in runs (and streamed when
 * large); one that does is handled whole, once it has fully arrived. */
static enum relay_status relay_inspecting(struct rwsess *rw, const struct direction *d, struct evbuffer *in,
					  struct evbuffer *out, struct relay *r, uint32_t max_len)
{
	struct inspect_pass p = { in, out, r, 0, NULL };
	enum relay_status result = RELAY_OK;
	bool look = true;
	r->saw_ready = false;
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (look || (!p.base && p.fwd == 0)) {
			/* After a flush the rest starts at the front again. */
			p.base = p.fwd == 0 ? relay_contiguous(in, avail) : NULL;
			look = false;
		}
		if (r->remaining) {
			size_t take = avail - p.fwd < r->remaining ? avail - p.fwd : r->remaining;
			p.fwd += take;
			r->remaining -= (uint32_t)take;
			if (r->remaining)
				break;
		}
		if (avail - p.fwd < PG_HEADER_LEN)
			break;
		uint8_t header[PG_HEADER_LEN], type;
		uint32_t total;
		relay_copy_at(in, p.base, p.fwd, header, sizeof(header));
		enum pgmsg_status st = pgmsg_header(header, sizeof(header), max_len, &type, &total);
		if (st != PGMSG_OK) {
			result = st == PGMSG_TOO_LARGE ? RELAY_TOO_LARGE : RELAY_BAD_LENGTH;
			break;
		}
		if (d->needs_body(rw, type)) {
			if (avail - p.fwd < total)
				break;
			inspect_message(rw, d, &p, type, total);
			continue;
		}
		count_message(d, r, type, NULL, 0);
		d->untouched(rw, type);
		size_t take = avail - p.fwd < total ? avail - p.fwd : total;
		p.fwd += take;
		r->remaining = (uint32_t)(total - take);
	}
	flush_untouched(&p);
	return result;
}

enum relay_status rwsess_client_to_server(struct rwsess *rw, struct evbuffer *in, struct evbuffer *out,
					  struct relay *r, uint32_t max_len)
{
	return relay_inspecting(rw, &client_direction, in, out, r, max_len);
}

enum relay_status rwsess_server_to_client(struct rwsess *rw, struct evbuffer *in, struct evbuffer *out,
					  struct relay *r)
{
	return relay_inspecting(rw, &server_direction, in, out, r, 0x7fffffffu);
}
