#include "stmtmap.h"

#include <stdlib.h>
#include <string.h>

enum op_kind {
	OP_PARSE,
	OP_CLOSE,
	OP_OTHER,		/* one reply or an error */
	OP_SYNC,		/* ends with ReadyForQuery */
	OP_QUERY,		/* ends with ReadyForQuery; errors do not end it */
	OP_FUNCTION_CALL,	/* the same, without dropping the unnamed statement */
};

struct op {
	enum op_kind kind;
	char *name;			/* PARSE, CLOSE */
	bool rewritten;			/* PARSE */
	struct stmtmap_entry entry;	/* PARSE */
	struct rewrite_posmap posmap;	/* PARSE, QUERY */
	char **deallocs;		/* QUERY: names, NULL for all */
	size_t n_deallocs;
	size_t done_deallocs;
	uint32_t hidden_params;		/* OTHER: a Describe of a rewritten statement */
};

/* A committed statement. */
struct stmt {
	struct stmt *next;
	struct stmtmap_entry entry;
	char name[];
};

struct stmtmap {
	struct stmt **buckets;
	size_t n_buckets;
	size_t n_stmts;
	/* the queue: a ring of ops */
	struct op *ops;
	size_t cap;
	size_t head;
	size_t count;
	/* the server skips messages until the Sync the client has not sent yet */
	bool skipping;
	/* stmtmap_lookup's answer for a statement known only as not rewritten */
	struct stmtmap_entry plain;
};

/* ---- committed statements: a chained hash table ---- */

static size_t hash_name(const char *s)
{
	size_t h = 14695981039346656037u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static struct stmt **find_slot(const struct stmtmap *m, const char *name)
{
	struct stmt **slot = &m->buckets[hash_name(name) & (m->n_buckets - 1)];
	while (*slot && strcmp((*slot)->name, name) != 0)
		slot = &(*slot)->next;
	return slot;
}

static const struct stmt *find_stmt(const struct stmtmap *m, const char *name)
{
	return *find_slot(m, name);
}

static void remove_stmt(struct stmtmap *m, const char *name)
{
	struct stmt **slot = find_slot(m, name);
	struct stmt *s = *slot;
	if (!s)
		return;
	*slot = s->next;
	free(s);
	m->n_stmts--;
}

static void grow_table(struct stmtmap *m)
{
	size_t n = m->n_buckets * 2;
	struct stmt **b = calloc(n, sizeof(*b));
	if (!b)
		return;	/* longer chains, still correct */
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct stmt *s = m->buckets[i];
		while (s) {
			struct stmt *next = s->next;
			size_t at = hash_name(s->name) & (n - 1);
			s->next = b[at];
			b[at] = s;
			s = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = n;
}

/* Commits a statement; when memory runs out the name is left unknown, which
 * makes the proxy forward Binds untouched (the server then rejects them). */
static void put_stmt(struct stmtmap *m, const char *name, const struct stmtmap_entry *e)
{
	remove_stmt(m, name);
	size_t len = strlen(name);
	struct stmt *s = malloc(sizeof(*s) + len + 1);
	if (!s)
		return;
	memcpy(s->name, name, len + 1);
	s->entry = *e;
	struct stmt **bucket = &m->buckets[hash_name(name) & (m->n_buckets - 1)];
	s->next = *bucket;
	*bucket = s;
	if (++m->n_stmts > m->n_buckets)
		grow_table(m);
}

static void remove_all_named(struct stmtmap *m)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct stmt **slot = &m->buckets[i];
		while (*slot) {
			struct stmt *s = *slot;
			if (s->name[0] == '\0') {
				slot = &s->next;
				continue;
			}
			*slot = s->next;
			free(s);
			m->n_stmts--;
		}
	}
}

/* ---- the queue ---- */

struct stmtmap *stmtmap_new(void)
{
	struct stmtmap *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->n_buckets = 16;
	m->buckets = calloc(m->n_buckets, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	return m;
}

static struct op *op_at(const struct stmtmap *m, size_t i)
{
	return &m->ops[(m->head + i) % m->cap];
}

static void free_op(struct op *op)
{
	free(op->name);
	rewrite_posmap_free(&op->posmap);
	rewrite_deallocations_free(op->deallocs, op->n_deallocs);
	memset(op, 0, sizeof(*op));
}

static void pop(struct stmtmap *m)
{
	if (m->count == 0)
		return;
	free_op(op_at(m, 0));
	m->head = (m->head + 1) % m->cap;
	m->count--;
}

void stmtmap_free(struct stmtmap *m)
{
	if (!m)
		return;
	while (m->count)
		pop(m);
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct stmt *s = m->buckets[i];
		while (s) {
			struct stmt *next = s->next;
			free(s);
			s = next;
		}
	}
	free(m->buckets);
	free(m->ops);
	free(m);
}

/* Appends op (whose resources the queue then owns). While the server skips
 * until Sync, the messages the client sends meanwhile are skipped too: they
 * never get a reply, so they are not queued. */
static bool push(struct stmtmap *m, struct op *op)
{
	if (op->kind == OP_SYNC)
		m->skipping = false;
	else if (m->skipping) {
		free_op(op);
		return true;
	}
	if (m->count == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 16;
		struct op *ops = malloc(cap * sizeof(*ops));
		if (!ops) {
			free_op(op);
			return false;
		}
		for (size_t i = 0; i < m->count; i++)
			ops[i] = *op_at(m, i);
		free(m->ops);
		m->ops = ops;
		m->cap = cap;
		m->head = 0;
	}
	*op_at(m, m->count++) = *op;
	return true;
}

static void take_posmap(struct op *op, struct rewrite_posmap *posmap)
{
	if (posmap) {
		op->posmap = *posmap;
		posmap->splices = NULL;
		posmap->n = 0;
	}
}

bool stmtmap_parse(struct stmtmap *m, const char *name, const struct stmtmap_entry *entry,
		   struct rewrite_posmap *posmap)
{
	struct op op = { .kind = OP_PARSE };
	take_posmap(&op, posmap);
	op.name = strdup(name);
	if (!op.name) {
		free_op(&op);
		return false;
	}
	if (entry && entry->extra_params > 0) {
		op.rewritten = true;
		op.entry = *entry;
	}
	return push(m, &op);
}

bool stmtmap_close(struct stmtmap *m, const char *name)
{
	struct op op = { .kind = OP_CLOSE, .name = strdup(name) };
	return op.name && push(m, &op);
}

bool stmtmap_other(struct stmtmap *m)
{
	struct op op = { .kind = OP_OTHER };
	return push(m, &op);
}

bool stmtmap_describe_statement(struct stmtmap *m, const char *name)
{
	const struct stmtmap_entry *e = stmtmap_lookup(m, name);
	struct op op = { .kind = OP_OTHER, .hidden_params = e ? e->extra_params : 0 };
	return push(m, &op);
}

bool stmtmap_sync(struct stmtmap *m)
{
	struct op op = { .kind = OP_SYNC };
	return push(m, &op);
}

bool stmtmap_query(struct stmtmap *m, const char *sql, struct rewrite_posmap *posmap)
{
	struct op op = { .kind = OP_QUERY };
	take_posmap(&op, posmap);
	if (!rewrite_deallocations(sql, &op.deallocs, &op.n_deallocs)) {
		free_op(&op);
		return false;
	}
	return push(m, &op);
}

bool stmtmap_function_call(struct stmtmap *m)
{
	struct op op = { .kind = OP_FUNCTION_CALL };
	return push(m, &op);
}

/* ---- server replies ---- */

static void commit_parse(struct stmtmap *m, const struct op *op)
{
	struct stmtmap_entry plain = { 0, 0, 0 };
	put_stmt(m, op->name, op->rewritten ? &op->entry : &plain);
}

/* An extended-protocol message failed: the server skips everything up to
 * the next Sync. */
static void skip_until_sync(struct stmtmap *m)
{
	while (m->count && op_at(m, 0)->kind != OP_SYNC)
		pop(m);
	if (m->count == 0)
		m->skipping = true;
}

static bool tag_is(const uint8_t *body, size_t len, const char *tag)
{
	size_t n = strlen(tag);
	return len == n + 1 && memcmp(body, tag, n) == 0 && body[n] == '\0';
}

/* CommandComplete during a Query: a DEALLOCATE or DISCARD ALL of it ran. */
static void query_command_complete(struct stmtmap *m, struct op *q, const uint8_t *body,
				   size_t len)
{
	if (!tag_is(body, len, "DEALLOCATE") && !tag_is(body, len, "DEALLOCATE ALL") &&
	    !tag_is(body, len, "DISCARD ALL"))
		return;
	if (q->done_deallocs >= q->n_deallocs)
		return;
	const char *name = q->deallocs[q->done_deallocs++];
	if (name)
		remove_stmt(m, name);
	else
		remove_all_named(m);
}

void stmtmap_server(struct stmtmap *m, char type, const uint8_t *body, size_t len)
{
	if (m->count == 0)
		return;
	struct op *head = op_at(m, 0);
	bool simple = head->kind == OP_QUERY || head->kind == OP_FUNCTION_CALL;
	switch (type) {
	case '1':	/* ParseComplete */
		if (head->kind == OP_PARSE) {
			commit_parse(m, head);
			pop(m);
		}
		break;
	case '3':	/* CloseComplete */
		if (head->kind == OP_CLOSE)
			remove_stmt(m, head->name);
		if (head->kind == OP_CLOSE || head->kind == OP_OTHER)
			pop(m);
		break;
	case 'C':	/* CommandComplete */
		if (head->kind == OP_QUERY)
			query_command_complete(m, head, body, len);
		else if (head->kind == OP_OTHER)
			pop(m);
		break;
	case '2':	/* BindComplete */
	case 'T':	/* RowDescription: ends a Describe, not a Query's result */
	case 'n':	/* NoData */
	case 'I':	/* EmptyQueryResponse */
	case 's':	/* PortalSuspended */
		if (head->kind == OP_OTHER)
			pop(m);
		break;
	case 'E':
		if (simple || head->kind == OP_SYNC)
			break;	/* ReadyForQuery follows */
		if (head->kind == OP_PARSE && head->name[0] == '\0')
			remove_stmt(m, "");	/* dropped before parsing */
		pop(m);
		skip_until_sync(m);
		break;
	case 'Z':	/* ReadyForQuery */
		while (m->count) {
			enum op_kind k = op_at(m, 0)->kind;
			if (k == OP_QUERY)
				remove_stmt(m, "");	/* dropped as the Query began */
			pop(m);
			if (k == OP_SYNC || k == OP_QUERY || k == OP_FUNCTION_CALL)
				break;
		}
		break;
	default:
		break;
	}
}

const struct rewrite_posmap *stmtmap_current_posmap(const struct stmtmap *m)
{
	if (m->count == 0)
		return NULL;
	const struct op *head = op_at(m, 0);
	return head->posmap.n ? &head->posmap : NULL;
}

uint32_t stmtmap_current_hidden_params(const struct stmtmap *m)
{
	if (m->count == 0 || op_at(m, 0)->kind != OP_OTHER)
		return 0;
	return op_at(m, 0)->hidden_params;
}

/* ---- lookups ---- */

const struct stmtmap_entry *stmtmap_lookup(const struct stmtmap *m, const char *name)
{
	const struct stmt *s = find_stmt(m, name);
	bool exists = s != NULL;
	const struct stmtmap_entry *e = s ? &s->entry : NULL;
	bool unnamed = name[0] == '\0';
	for (size_t i = 0; i < m->count; i++) {
		const struct op *op = op_at(m, i);
		switch (op->kind) {
		case OP_PARSE:
			/* a named Parse of an existing name will fail */
			if (strcmp(op->name, name) == 0 && (unnamed || !exists)) {
				exists = true;
				e = op->rewritten ? &op->entry : &m->plain;
			}
			break;
		case OP_CLOSE:
			if (strcmp(op->name, name) == 0)
				exists = false;
			break;
		case OP_QUERY:
			if (unnamed)
				exists = false;
			for (size_t d = 0; d < op->n_deallocs; d++) {
				if (op->deallocs[d] ? strcmp(op->deallocs[d], name) == 0 : !unnamed)
					exists = false;
			}
			break;
		default:
			break;
		}
	}
	return exists ? e : NULL;
}

size_t stmtmap_pending(const struct stmtmap *m)
{
	return m->count;
}
