#include "rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "sqlscan.h"

#define NO_TOKEN SIZE_MAX
/* Longest text one splice adds: ", '" + 36 + "'::uuid" or " ($65535)". */
#define SPLICE_TEXT_MAX 64

enum splice_kind {
	SPLICE_COLUMN,		/* ", uuid" before the column list's ')' */
	SPLICE_ROW,		/* ", <value>" before a VALUES row's ')' */
	SPLICE_DEFAULT_COLUMN,	/* "(uuid)" in place of DEFAULT in DEFAULT VALUES */
	SPLICE_DEFAULT_ROW,	/* " (<value>)" after VALUES in DEFAULT VALUES */
};

struct splice {
	size_t off;		/* byte offset in the original */
	size_t del;		/* original bytes replaced */
	enum splice_kind kind;
};

/* The work on one text: its tokens (scanned only once an INSERT qualifies)
 * and the splices planned so far, in text order. */
struct plan {
	const char *sql;
	size_t len;
	PgQuery__ScanResult *scan;
	uint32_t max_param;	/* highest $k in the text */
	struct splice *splices;
	size_t n_splices;
	size_t cap_splices;
	uint32_t rows;
	bool no_memory;
};

static bool add_splice(struct plan *p, size_t off, size_t del, enum splice_kind kind)
{
	if (p->n_splices == p->cap_splices) {
		size_t cap = p->cap_splices ? 2 * p->cap_splices : 16;
		struct splice *s = realloc(p->splices, cap * sizeof(*s));
		if (!s) {
			p->no_memory = true;
			return false;
		}
		p->splices = s;
		p->cap_splices = cap;
	}
	p->splices[p->n_splices++] = (struct splice){ off, del, kind };
	return true;
}

/* ---- tokens ---- */

static bool scan_tokens(struct plan *p)
{
	if (p->scan)
		return true;
	PgQueryScanResult r = pg_query_scan(p->sql);
	if (!r.error)
		p->scan = pg_query__scan_result__unpack(NULL, r.pbuf.len, (const uint8_t *)r.pbuf.data);
	pg_query_free_scan_result(r);
	if (!p->scan)
		return false;
	for (size_t i = 0; i < p->scan->n_tokens; i++) {
		const PgQuery__ScanToken *t = p->scan->tokens[i];
		if (t->token != PG_QUERY__TOKEN__PARAM)
			continue;
		uint32_t k = 0;
		for (int32_t c = t->start + 1; c < t->end; c++) {
			char d = p->sql[c];
			if (d < '0' || d > '9')
				break;
			k = k > 10000000 ? k : k * 10 + (uint32_t)(d - '0');
		}
		if (k > p->max_param)
			p->max_param = k;
	}
	return true;
}

static int32_t token_kind(const struct plan *p, size_t i)
{
	return i < p->scan->n_tokens ? (int32_t)p->scan->tokens[i]->token : -1;
}

static size_t token_start(const struct plan *p, size_t i)
{
	return (size_t)p->scan->tokens[i]->start;
}

static size_t token_end(const struct plan *p, size_t i)
{
	return (size_t)p->scan->tokens[i]->end;
}

/* The first token at or after byte offset pos. */
static size_t token_at(const struct plan *p, size_t pos)
{
	size_t lo = 0, hi = p->scan->n_tokens;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (token_start(p, mid) < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first token at index i or later that is not a comment and starts
 * before end, or NO_TOKEN. */
static size_t next_token(const struct plan *p, size_t i, size_t end)
{
	for (; i < p->scan->n_tokens && token_start(p, i) < end; i++) {
		int32_t k = token_kind(p, i);
		if (k != PG_QUERY__TOKEN__SQL_COMMENT && k != PG_QUERY__TOKEN__C_COMMENT)
			return i;
	}
	return NO_TOKEN;
}

/* The ')' that closes the '(' at index open, or NO_TOKEN. */
static size_t closing_paren(const struct plan *p, size_t open, size_t end)
{
	size_t depth = 0;
	for (size_t i = open; i < p->scan->n_tokens && token_start(p, i) < end; i++) {
		int32_t k = token_kind(p, i);
		if (k == '(') {
			depth++;
		} else if (k == ')') {
			if (depth == 0)
				return NO_TOKEN;
			if (--depth == 0)
				return i;
		}
	}
	return NO_TOKEN;
}

/* ---- which INSERTs qualify (from the parse tree) ---- */

static bool is_migrated_table(const struct rewrite_session *s, const PgQuery__RangeVar *rv)
{
	if (!rv || !rv->relname || (rv->catalogname && rv->catalogname[0]))
		return false;
	if (rv->schemaname && rv->schemaname[0]) {
		if (!s->schema || strcmp(rv->schemaname, s->schema) != 0)
			return false;
	} else if (!s->unqualified_in_schema) {
		return false;
	}
	for (size_t i = 0; i < s->n_tables; i++) {
		if (s->tables[i] && strcmp(rv->relname, s->tables[i]) == 0)
			return true;
	}
	return false;
}

/* A bare VALUES list whose rows each supply one expression per column. */
static bool is_plain_values(const PgQuery__Node *n, size_t n_cols)
{
	if (!n || n->node_case != PG_QUERY__NODE__NODE_SELECT_STMT)
		return false;
	const PgQuery__SelectStmt *sel = n->select_stmt;
	if (sel->n_values_lists == 0 || sel->n_distinct_clause || sel->into_clause ||
	    sel->n_target_list || sel->n_from_clause || sel->where_clause ||
	    sel->n_group_clause || sel->having_clause || sel->n_window_clause ||
	    sel->n_sort_clause || sel->limit_offset || sel->limit_count ||
	    sel->n_locking_clause || sel->with_clause ||
	    sel->op != PG_QUERY__SET_OPERATION__SETOP_NONE)
		return false;
	for (size_t i = 0; i < sel->n_values_lists; i++) {
		const PgQuery__Node *row = sel->values_lists[i];
		if (row->node_case != PG_QUERY__NODE__NODE_LIST || row->list->n_items != n_cols)
			return false;
	}
	return true;
}

static bool insert_qualifies(const struct rewrite_session *s, const PgQuery__InsertStmt *ins)
{
	if (!is_migrated_table(s, ins->relation))
		return false;
	if (ins->n_cols == 0)
		return ins->select_stmt == NULL;	/* DEFAULT VALUES */
	for (size_t i = 0; i < ins->n_cols; i++) {
		const PgQuery__Node *c = ins->cols[i];
		if (c->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !c->res_target->name ||
		    strcmp(c->res_target->name, "uuid") == 0)
			return false;
	}
	return is_plain_values(ins->select_stmt, ins->n_cols);
}

/* ---- where the splices go (from the tokens) ---- */

/* INSERT INTO t [AS a] DEFAULT VALUES -> INSERT INTO t [AS a] (uuid) VALUES (v) */
static bool plan_default_values(struct plan *p, size_t i, size_t end)
{
	for (i = next_token(p, i, end); i != NO_TOKEN; i = next_token(p, i + 1, end)) {
		int32_t k = token_kind(p, i);
		if (k == PG_QUERY__TOKEN__DEFAULT)
			break;
		if (k == '(')
			return false;
	}
	if (i == NO_TOKEN)
		return false;
	size_t values = next_token(p, i + 1, end);
	if (token_kind(p, values) != PG_QUERY__TOKEN__VALUES)
		return false;
	size_t def_start = token_start(p, i);
	if (!add_splice(p, def_start, token_end(p, i) - def_start, SPLICE_DEFAULT_COLUMN) ||
	    !add_splice(p, token_end(p, values), 0, SPLICE_DEFAULT_ROW))
		return false;
	p->rows++;
	return true;
}

/* INSERT INTO t (cols) [OVERRIDING ... VALUE] VALUES (row), ... */
static bool plan_column_list(struct plan *p, const PgQuery__InsertStmt *ins, size_t i, size_t end)
{
	size_t open = next_token(p, i, end);
	while (open != NO_TOKEN && token_kind(p, open) != '(')
		open = next_token(p, open + 1, end);
	if (open == NO_TOKEN)
		return false;
	size_t close = closing_paren(p, open, end);
	int32_t first_col = ins->cols[0]->res_target->location;
	int32_t last_col = ins->cols[ins->n_cols - 1]->res_target->location;
	if (close == NO_TOKEN || first_col < 0 || token_start(p, open) >= (size_t)first_col ||
	    token_start(p, close) <= (size_t)last_col)
		return false;
	if (!add_splice(p, token_start(p, close), 0, SPLICE_COLUMN))
		return false;

	size_t t = next_token(p, close + 1, end);
	if (token_kind(p, t) == PG_QUERY__TOKEN__OVERRIDING) {
		for (int skip = 0; skip < 3 && t != NO_TOKEN; skip++)
			t = next_token(p, t + 1, end);
	}
	if (token_kind(p, t) != PG_QUERY__TOKEN__VALUES)
		return false;
	size_t n_rows = 0;
	for (;;) {
		size_t row = next_token(p, t + 1, end);
		if (token_kind(p, row) != '(')
			return false;
		size_t row_end = closing_paren(p, row, end);
		if (row_end == NO_TOKEN || !add_splice(p, token_start(p, row_end), 0, SPLICE_ROW))
			return false;
		n_rows++;
		t = next_token(p, row_end + 1, end);
		if (token_kind(p, t) != ',')
			break;
	}
	if (n_rows != ins->select_stmt->select_stmt->n_values_lists)
		return false;
	p->rows += (uint32_t)n_rows;
	return true;
}

/* Plans one qualifying INSERT; a statement whose tokens do not look as its
 * tree says is left alone. */
static void plan_insert(struct plan *p, const PgQuery__RawStmt *raw, const PgQuery__InsertStmt *ins)
{
	size_t begin = (size_t)raw->stmt_location;
	size_t end = raw->stmt_len > 0 ? begin + (size_t)raw->stmt_len : p->len;
	if (ins->relation->location < 0 || (size_t)ins->relation->location < begin ||
	    end > p->len)
		return;
	size_t saved_splices = p->n_splices;
	uint32_t saved_rows = p->rows;
	size_t i = token_at(p, (size_t)ins->relation->location);
	bool ok = ins->n_cols == 0 ? plan_default_values(p, i, end)
				   : plan_column_list(p, ins, i, end);
	if (!ok) {
		p->n_splices = saved_splices;
		p->rows = saved_rows;
	}
}

/* ---- assembling the new text ---- */

static size_t utf8_chars(const char *s, size_t n)
{
	size_t chars = 0;
	for (size_t i = 0; i < n; i++)
		chars += ((unsigned char)s[i] & 0xc0) != 0x80;
	return chars;
}

/* The value of one row: a literal drawn from gen, or the next parameter. */
static bool row_value(struct uuidv7_gen *gen, uint32_t *next_param, char *out, size_t *len)
{
	if (!gen) {
		*len = (size_t)snprintf(out, SPLICE_TEXT_MAX, "$%u", (unsigned)(*next_param)++);
		return true;
	}
	out[0] = '\'';
	if (!uuidv7_next_text(gen, out + 1))
		return false;
	memcpy(out + 1 + UUIDV7_TEXT_LEN, "'::uuid", 7);
	*len = 1 + UUIDV7_TEXT_LEN + 7;
	return true;
}

static bool splice_text(const struct splice *sp, struct uuidv7_gen *gen, uint32_t *next_param,
			char *out, size_t *len)
{
	size_t n;
	switch (sp->kind) {
	case SPLICE_COLUMN:
		memcpy(out, ", uuid", 6);
		*len = 6;
		return true;
	case SPLICE_DEFAULT_COLUMN:
		memcpy(out, "(uuid)", 6);
		*len = 6;
		return true;
	case SPLICE_ROW:
		memcpy(out, ", ", 2);
		if (!row_value(gen, next_param, out + 2, &n))
			return false;
		*len = 2 + n;
		return true;
	case SPLICE_DEFAULT_ROW:
		memcpy(out, " (", 2);
		if (!row_value(gen, next_param, out + 2, &n))
			return false;
		out[2 + n] = ')';
		*len = 3 + n;
		return true;
	}
	return false;
}

static enum rewrite_status assemble(struct plan *p, struct uuidv7_gen *gen, uint32_t first_param,
				    struct rewrite_result *out)
{
	size_t cap = p->len + p->n_splices * SPLICE_TEXT_MAX + 1;
	char *text = malloc(cap);
	struct rewrite_splice *map = malloc(p->n_splices * sizeof(*map));
	if (!text || !map) {
		free(text);
		free(map);
		return REWRITE_NO_MEMORY;
	}
	size_t pos = 0, w = 0, orig_chars = 0;
	uint32_t next_param = first_param;
	for (size_t k = 0; k < p->n_splices; k++) {
		const struct splice *sp = &p->splices[k];
		memcpy(text + w, p->sql + pos, sp->off - pos);
		w += sp->off - pos;
		orig_chars += utf8_chars(p->sql + pos, sp->off - pos);
		char add[SPLICE_TEXT_MAX];
		size_t add_len;
		if (!splice_text(sp, gen, &next_param, add, &add_len)) {
			free(text);
			free(map);
			return REWRITE_PASS;
		}
		size_t del_chars = utf8_chars(p->sql + sp->off, sp->del);
		map[k] = (struct rewrite_splice){ (uint32_t)orig_chars, (uint32_t)del_chars,
						  (uint32_t)add_len };
		memcpy(text + w, add, add_len);
		w += add_len;
		orig_chars += del_chars;
		pos = sp->off + sp->del;
	}
	memcpy(text + w, p->sql + pos, p->len - pos);
	w += p->len - pos;
	text[w] = '\0';
	out->sql = text;
	out->sql_len = w;
	out->rows = p->rows;
	out->posmap.splices = map;
	out->posmap.n = p->n_splices;
	return REWRITE_DONE;
}

/* ---- entry points ---- */

/* Whether sql may name one of the tables at all, so that INSERTs into other
 * tables skip the parser. Unquoted names are folded to lower case (ASCII
 * only, as the parser does), so the search ignores ASCII case; a U&"..."
 * identifier can spell a name with escapes, so its presence means maybe. */
static bool may_name_a_table(const struct rewrite_session *s, const char *sql)
{
	if (strcasestr(sql, "u&"))
		return true;
	for (size_t i = 0; i < s->n_tables; i++) {
		if (s->tables[i] && s->tables[i][0] && strcasestr(sql, s->tables[i]))
			return true;
	}
	return false;
}

/* The statements of sql, or NULL when the parser rejects it. */
static PgQuery__ParseResult *parse_tree(const char *sql)
{
	PgQueryProtobufParseResult parsed = pg_query_parse_protobuf(sql);
	PgQuery__ParseResult *tree = NULL;
	if (!parsed.error)
		tree = pg_query__parse_result__unpack(NULL, parsed.parse_tree.len,
						      (const uint8_t *)parsed.parse_tree.data);
	pg_query_free_protobuf_parse_result(parsed);
	return tree;
}

static enum rewrite_status rewrite_text(const struct rewrite_session *s, const char *sql,
					struct uuidv7_gen *gen, uint32_t declared,
					struct rewrite_result *out)
{
	memset(out, 0, sizeof(*out));
	if (!s->utf8_standard_strings || !sql)
		return REWRITE_PASS;
	size_t len = strlen(sql);
	if (len > INT32_MAX)
		return REWRITE_PASS;
	unsigned kw = sqlscan_leading_keywords(sql, len);
	if (!(kw & (SQLSCAN_INSERT | SQLSCAN_WITH)) || (kw & SQLSCAN_SET) ||
	    !may_name_a_table(s, sql))
		return REWRITE_PASS;

	PgQuery__ParseResult *tree = parse_tree(sql);
	if (!tree)
		return REWRITE_PASS;

	bool extended = gen == NULL;
	enum rewrite_status st = REWRITE_PASS;
	struct plan p = { .sql = sql, .len = len };
	if (extended && tree->n_stmts != 1)
		goto done;
	for (size_t i = 0; i < tree->n_stmts; i++) {
		if (tree->stmts[i]->stmt->node_case == PG_QUERY__NODE__NODE_VARIABLE_SET_STMT)
			goto done;
	}
	for (size_t i = 0; i < tree->n_stmts && !p.no_memory; i++) {
		const PgQuery__RawStmt *raw = tree->stmts[i];
		if (raw->stmt->node_case != PG_QUERY__NODE__NODE_INSERT_STMT ||
		    !insert_qualifies(s, raw->stmt->insert_stmt))
			continue;
		if (!scan_tokens(&p))
			goto done;
		plan_insert(&p, raw, raw->stmt->insert_stmt);
	}
	if (p.no_memory) {
		st = REWRITE_NO_MEMORY;
		goto done;
	}
	if (p.n_splices == 0)
		goto done;
	uint32_t orig_params = 0;
	if (extended) {
		orig_params = declared > p.max_param ? declared : p.max_param;
		if ((uint64_t)orig_params + p.rows > REWRITE_MAX_PARAMS)
			goto done;
	}
	st = assemble(&p, gen, orig_params + 1, out);
	if (st == REWRITE_DONE && extended) {
		out->declared_params = declared;
		out->orig_params = orig_params;
		out->extra_params = p.rows;
	}
done:
	free(p.splices);
	if (p.scan)
		pg_query__scan_result__free_unpacked(p.scan, NULL);
	pg_query__parse_result__free_unpacked(tree, NULL);
	return st;
}

enum rewrite_status rewrite_query(const struct rewrite_session *s, struct uuidv7_gen *gen,
				  const char *sql, struct rewrite_result *out)
{
	if (!gen) {
		memset(out, 0, sizeof(*out));
		return REWRITE_PASS;
	}
	return rewrite_text(s, sql, gen, 0, out);
}

enum rewrite_status rewrite_parse_sql(const struct rewrite_session *s, const char *sql,
				      uint32_t declared_params, struct rewrite_result *out)
{
	if (declared_params > REWRITE_MAX_PARAMS) {
		memset(out, 0, sizeof(*out));
		return REWRITE_PASS;
	}
	return rewrite_text(s, sql, NULL, declared_params, out);
}

void rewrite_posmap_free(struct rewrite_posmap *m)
{
	free(m->splices);
	m->splices = NULL;
	m->n = 0;
}

void rewrite_result_free(struct rewrite_result *r)
{
	free(r->sql);
	r->sql = NULL;
	rewrite_posmap_free(&r->posmap);
}

uint32_t rewrite_posmap_original(const struct rewrite_posmap *m, uint32_t pos)
{
	if (pos == 0)
		return 0;
	int64_t p = (int64_t)pos - 1;
	int64_t shift = 0;	/* rewritten minus original, before the splice */
	for (size_t k = 0; k < m->n; k++) {
		const struct rewrite_splice *s = &m->splices[k];
		int64_t at = (int64_t)s->orig_char + shift;
		if (p < at)
			break;
		if (p < at + (int64_t)s->ins_chars)
			return s->orig_char + 1;
		shift += (int64_t)s->ins_chars - (int64_t)s->del_chars;
	}
	int64_t orig = p - shift + 1;
	return orig < 1 ? 1 : (uint32_t)orig;
}

static bool add_deallocation(char ***names, size_t *n, const char *name)
{
	char *copy = NULL;
	if (name && !(copy = strdup(name)))
		return false;
	char **grown = realloc(*names, (*n + 1) * sizeof(**names));
	if (!grown) {
		free(copy);
		return false;
	}
	grown[(*n)++] = copy;
	*names = grown;
	return true;
}

bool rewrite_deallocations(const char *sql, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	if (!sql || !(sqlscan_leading_keywords(sql, strlen(sql)) & SQLSCAN_DEALLOCATE))
		return true;
	PgQuery__ParseResult *tree = parse_tree(sql);
	if (!tree)
		return true;
	bool ok = true;
	for (size_t i = 0; i < tree->n_stmts && ok; i++) {
		const PgQuery__Node *stmt = tree->stmts[i]->stmt;
		if (stmt->node_case == PG_QUERY__NODE__NODE_DEALLOCATE_STMT) {
			const char *name = stmt->deallocate_stmt->name;
			ok = add_deallocation(names, n, name && name[0] ? name : NULL);
		} else if (stmt->node_case == PG_QUERY__NODE__NODE_DISCARD_STMT &&
			   stmt->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_ALL) {
			ok = add_deallocation(names, n, NULL);
		}
	}
	pg_query__parse_result__free_unpacked(tree, NULL);
	if (!ok) {
		rewrite_deallocations_free(*names, *n);
		*names = NULL;
		*n = 0;
	}
	return ok;
}

void rewrite_deallocations_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
