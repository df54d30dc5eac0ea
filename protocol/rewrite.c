#include "rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "jsontree.h"
#include "sqlscan.h"

/* Longest text one splice adds: ", '" + 36 + "'::uuid" or " ($65535)". */
#define SPLICE_TEXT_MAX 64
/* $k beyond this only has to be known as too many */
#define PARAM_NUMBER_CAP 10000000u

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

/* The parser's view of a text: libpg_query's JSON output, read. */
struct parsed {
	PgQueryParseResult result;
	struct jsontree tree;
	size_t stmts;		/* the array of RawStmt objects */
};

/* The work on one text: the splices planned so far, in text order. */
struct plan {
	const char *sql;
	size_t len;
	const struct jsontree *tree;
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

/* ---- the parse tree ---- */

/* The statements of sql, or false when the parser rejects it (or its output
 * cannot be read). Free with parsed_free either way. */
static bool parse_tree(const char *sql, struct parsed *out)
{
	memset(out, 0, sizeof(*out));
	out->result = pg_query_parse(sql);
	if (out->result.error || !out->result.parse_tree ||
	    jsontree_parse(&out->tree, out->result.parse_tree, strlen(out->result.parse_tree)) !=
		    JSONTREE_OK)
		return false;
	out->stmts = jsontree_member(&out->tree, 0, "stmts");
	return jsontree_is(&out->tree, out->stmts, JSONTREE_ARRAY);
}

static void parsed_free(struct parsed *p)
{
	jsontree_free(&p->tree);
	pg_query_free_parse_result(p->result);
}

/* The fields of node i ({"Type": {fields}}) when it is of that type, or
 * JSONTREE_NONE. */
static size_t node_fields(const struct jsontree *t, size_t i, const char *type)
{
	if (!jsontree_is(t, i, JSONTREE_OBJECT) || t->v[i].count != 1 ||
	    !jsontree_key_is(t, i + 1, type) || !jsontree_is(t, i + 2, JSONTREE_OBJECT))
		return JSONTREE_NONE;
	return i + 2;
}

/* An integer field; an absent one is 0, as the writer leaves zeros out. */
static bool int_field(const struct jsontree *t, size_t fields, const char *name, int64_t *out)
{
	size_t v = jsontree_member(t, fields, name);
	*out = 0;
	return v == JSONTREE_NONE || jsontree_int(t, v, out);
}

/* A string field that is absent or empty. */
static bool string_field_empty(const struct jsontree *t, size_t fields, const char *name)
{
	size_t v = jsontree_member(t, fields, name);
	return v == JSONTREE_NONE || jsontree_string_empty(t, v);
}

/* The lowest and highest location of the nodes in subtree i; false when it
 * holds none. */
static bool location_span(const struct jsontree *t, size_t i, int64_t *lo, int64_t *hi)
{
	bool found = false;
	for (size_t k = i; k < t->v[i].end; k++) {
		int64_t loc;
		if (!jsontree_key_is(t, k, "location") || !jsontree_int(t, k + 1, &loc) || loc < 0)
			continue;
		if (!found || loc < *lo)
			*lo = loc;
		if (!found || loc > *hi)
			*hi = loc;
		found = true;
	}
	return found;
}

/* The highest $k the tree refers to (capped as the scanner caps it), or -1
 * when a ParamRef cannot be read. */
static int64_t tree_max_param(const struct jsontree *t)
{
	int64_t max = 0;
	for (size_t k = 0; k < t->n; k++) {
		if (!jsontree_key_is(t, k, "ParamRef"))
			continue;
		int64_t number;
		if (!int_field(t, k + 1, "number", &number))
			return -1;
		if (number > PARAM_NUMBER_CAP)
			number = PARAM_NUMBER_CAP + 1;
		if (number > max)
			max = number;
	}
	return max;
}

/* ---- which INSERTs qualify (from the parse tree) ---- */

static bool is_migrated_table(const struct rewrite_session *s, const struct jsontree *t, size_t rv)
{
	if (!jsontree_is(t, rv, JSONTREE_OBJECT))
		return false;
	size_t relname = jsontree_member(t, rv, "relname");
	size_t schema = jsontree_member(t, rv, "schemaname");
	if (!jsontree_is(t, relname, JSONTREE_STRING) || !string_field_empty(t, rv, "catalogname"))
		return false;
	if (schema != JSONTREE_NONE && !jsontree_string_empty(t, schema)) {
		if (!s->schema || !jsontree_string_eq(t, schema, s->schema))
			return false;
	} else if (!s->unqualified_in_schema) {
		return false;
	}
	for (size_t i = 0; i < s->n_tables; i++) {
		if (s->tables[i] && jsontree_string_eq(t, relname, s->tables[i]))
			return true;
	}
	return false;
}

/* The rows (an array of List nodes) of a bare VALUES list whose rows each
 * supply one expression per column, or JSONTREE_NONE. Any clause besides the
 * VALUES list, or a set operation, disqualifies it. */
static size_t plain_values_rows(const struct jsontree *t, size_t node, size_t n_cols)
{
	size_t sel = node_fields(t, node, "SelectStmt");
	if (sel == JSONTREE_NONE)
		return JSONTREE_NONE;
	size_t rows = JSONTREE_NONE;
	for (size_t k = jsontree_first(t, sel); k != JSONTREE_NONE; k = jsontree_next(t, sel, k + 1)) {
		if (jsontree_key_is(t, k, "valuesLists"))
			rows = k + 1;
		else if (!(jsontree_key_is(t, k, "op") &&
			   jsontree_string_eq(t, k + 1, "SETOP_NONE")) &&
			 !(jsontree_key_is(t, k, "limitOption") &&
			   jsontree_string_eq(t, k + 1, "LIMIT_OPTION_DEFAULT")))
			return JSONTREE_NONE;
	}
	if (!jsontree_is(t, rows, JSONTREE_ARRAY) || t->v[rows].count == 0)
		return JSONTREE_NONE;
	for (size_t r = jsontree_first(t, rows); r != JSONTREE_NONE; r = jsontree_next(t, rows, r)) {
		size_t items = jsontree_member(t, node_fields(t, r, "List"), "items");
		if (!jsontree_is(t, items, JSONTREE_ARRAY) || t->v[items].count != n_cols)
			return JSONTREE_NONE;
	}
	return rows;
}

static bool insert_qualifies(const struct rewrite_session *s, const struct jsontree *t, size_t ins)
{
	if (!is_migrated_table(s, t, jsontree_member(t, ins, "relation")))
		return false;
	size_t cols = jsontree_member(t, ins, "cols");
	size_t select = jsontree_member(t, ins, "selectStmt");
	if (cols == JSONTREE_NONE)
		return select == JSONTREE_NONE;	/* DEFAULT VALUES */
	if (!jsontree_is(t, cols, JSONTREE_ARRAY) || t->v[cols].count == 0)
		return false;
	for (size_t c = jsontree_first(t, cols); c != JSONTREE_NONE; c = jsontree_next(t, cols, c)) {
		size_t name = jsontree_member(t, node_fields(t, c, "ResTarget"), "name");
		if (!jsontree_is(t, name, JSONTREE_STRING) || jsontree_string_eq(t, name, "uuid"))
			return false;
	}
	return plain_values_rows(t, select, t->v[cols].count) != JSONTREE_NONE;
}

/* ---- where the splices go (from the tokens) ---- */

/* The first token at or after pos that starts before end, or an END token.
 * pos is a token boundary: the end of a token, or a location the parser
 * reported. */
static struct sqlscan_token next_token(const struct plan *p, size_t pos, size_t end)
{
	struct sqlscan_token t = sqlscan_token(p->sql, p->len, pos);
	if (t.start >= end)
		t.kind = SQLSCAN_TOKEN_END;
	return t;
}

/* The ')' that closes the '(' open, or an END token. */
static struct sqlscan_token closing_paren(const struct plan *p, struct sqlscan_token open,
					  size_t end)
{
	size_t depth = 0;
	struct sqlscan_token t = open;
	if (t.kind != SQLSCAN_TOKEN_OPEN)
		t.kind = SQLSCAN_TOKEN_END;
	for (; t.kind != SQLSCAN_TOKEN_END; t = next_token(p, t.end, end)) {
		if (t.kind == SQLSCAN_TOKEN_OPEN) {
			depth++;
		} else if (t.kind == SQLSCAN_TOKEN_CLOSE) {
			if (depth == 0)
				break;
			if (--depth == 0)
				return t;
		}
	}
	t.kind = SQLSCAN_TOKEN_END;
	return t;
}

/* Whether the parser's locations of the nodes in subtree i all lie strictly
 * between the parentheses the scanner found around them: the two views of
 * the text must agree before it is changed. */
static bool encloses(const struct plan *p, size_t i, struct sqlscan_token open,
		     struct sqlscan_token close)
{
	int64_t lo, hi;
	return open.kind == SQLSCAN_TOKEN_OPEN && close.kind == SQLSCAN_TOKEN_CLOSE &&
	       location_span(p->tree, i, &lo, &hi) && (int64_t)open.start < lo &&
	       hi < (int64_t)close.start;
}

/* INSERT INTO t [AS a] DEFAULT VALUES -> INSERT INTO t [AS a] (uuid) VALUES (v) */
static bool plan_default_values(struct plan *p, size_t pos, size_t end)
{
	struct sqlscan_token t = next_token(p, pos, end);
	for (; t.kind != SQLSCAN_TOKEN_END; t = next_token(p, t.end, end)) {
		if (sqlscan_token_is(p->sql, &t, "default"))
			break;
		if (t.kind == SQLSCAN_TOKEN_OPEN)
			return false;
	}
	if (t.kind == SQLSCAN_TOKEN_END)
		return false;
	struct sqlscan_token values = next_token(p, t.end, end);
	if (!sqlscan_token_is(p->sql, &values, "values"))
		return false;
	if (!add_splice(p, t.start, t.end - t.start, SPLICE_DEFAULT_COLUMN) ||
	    !add_splice(p, values.end, 0, SPLICE_DEFAULT_ROW))
		return false;
	p->rows++;
	return true;
}

/* INSERT INTO t (cols) [OVERRIDING ... VALUE] VALUES (row), ... */
static bool plan_column_list(struct plan *p, size_t ins, size_t pos, size_t end)
{
	const struct jsontree *tree = p->tree;
	struct sqlscan_token open = next_token(p, pos, end);
	while (open.kind != SQLSCAN_TOKEN_END && open.kind != SQLSCAN_TOKEN_OPEN)
		open = next_token(p, open.end, end);
	struct sqlscan_token close = closing_paren(p, open, end);
	size_t cols = jsontree_member(tree, ins, "cols");
	if (!encloses(p, cols, open, close) || !add_splice(p, close.start, 0, SPLICE_COLUMN))
		return false;

	struct sqlscan_token t = next_token(p, close.end, end);
	if (sqlscan_token_is(p->sql, &t, "overriding")) {
		for (int skip = 0; skip < 3 && t.kind != SQLSCAN_TOKEN_END; skip++)
			t = next_token(p, t.end, end);
	}
	size_t rows = plain_values_rows(tree, jsontree_member(tree, ins, "selectStmt"),
					tree->v[cols].count);
	if (!sqlscan_token_is(p->sql, &t, "values") || rows == JSONTREE_NONE)
		return false;
	size_t row = jsontree_first(tree, rows);
	for (;;) {
		struct sqlscan_token row_open = next_token(p, t.end, end);
		struct sqlscan_token row_close = closing_paren(p, row_open, end);
		if (row == JSONTREE_NONE || !encloses(p, row, row_open, row_close) ||
		    !add_splice(p, row_close.start, 0, SPLICE_ROW))
			return false;
		row = jsontree_next(tree, rows, row);
		t = next_token(p, row_close.end, end);
		if (t.kind != SQLSCAN_TOKEN_COMMA)
			break;
	}
	if (row != JSONTREE_NONE)
		return false;
	p->rows += tree->v[rows].count;
	return true;
}

/* Plans one qualifying INSERT; a statement whose tokens do not look as its
 * tree says is left alone. */
static void plan_insert(struct plan *p, size_t raw, size_t ins)
{
	int64_t begin, stmt_len, relation;
	if (!int_field(p->tree, raw, "stmt_location", &begin) ||
	    !int_field(p->tree, raw, "stmt_len", &stmt_len) ||
	    !int_field(p->tree, jsontree_member(p->tree, ins, "relation"), "location", &relation) ||
	    begin < 0 || stmt_len < 0 || relation < begin || (uint64_t)begin > p->len ||
	    (uint64_t)stmt_len > p->len - (uint64_t)begin)
		return;
	size_t end = stmt_len > 0 ? (size_t)(begin + stmt_len) : p->len;
	size_t saved_splices = p->n_splices;
	uint32_t saved_rows = p->rows;
	bool ok = jsontree_member(p->tree, ins, "cols") == JSONTREE_NONE
			  ? plan_default_values(p, (size_t)relation, end)
			  : plan_column_list(p, ins, (size_t)relation, end);
	if (!ok) {
		p->n_splices = saved_splices;
		p->rows = saved_rows;
	}
}

/* The highest $k in the text, by the scanner (capped), or -1 when it and the
 * parse tree disagree. */
static int64_t max_param(const struct plan *p)
{
	int64_t max = 0;
	for (struct sqlscan_token t = sqlscan_token(p->sql, p->len, 0); t.kind != SQLSCAN_TOKEN_END;
	     t = sqlscan_token(p->sql, p->len, t.end)) {
		if (t.kind != SQLSCAN_TOKEN_PARAM)
			continue;
		int64_t k = 0;
		for (size_t c = t.start + 1; c < t.end && k <= PARAM_NUMBER_CAP; c++)
			k = k * 10 + (p->sql[c] - '0');
		if (k > PARAM_NUMBER_CAP)
			k = PARAM_NUMBER_CAP + 1;
		if (k > max)
			max = k;
	}
	return max == tree_max_param(p->tree) ? max : -1;
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

/* ---- which texts may name a migrated table ---- */

/* The adjacent byte pairs of a text (ASCII case folded), hashed into a set
 * of bits: a name occurs in the text only if all its pairs are in the set. */
#define PAIR_SET_BITS 4096u

struct pair_set {
	uint64_t bits[PAIR_SET_BITS / 64];
};

static unsigned char fold_ascii(char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : (unsigned char)c;
}

static unsigned pair_bit(const char *s)
{
	return (((unsigned)fold_ascii(s[0]) << 6) ^ fold_ascii(s[1])) & (PAIR_SET_BITS - 1);
}

static void pair_set_fill(struct pair_set *set, const char *s, size_t len)
{
	memset(set, 0, sizeof(*set));
	for (size_t i = 0; i + 1 < len; i++) {
		unsigned b = pair_bit(s + i);
		set->bits[b / 64] |= (uint64_t)1 << (b % 64);
	}
}

static bool pair_set_may_hold(const struct pair_set *set, const char *name, size_t n)
{
	for (size_t k = 0; k + 1 < n; k++) {
		unsigned b = pair_bit(name + k);
		if (!(set->bits[b / 64] >> (b % 64) & 1))
			return false;
	}
	return true;
}

/* Whether text holds name, ignoring ASCII case. */
static bool holds_folded(const char *text, size_t len, const char *name, size_t n)
{
	for (size_t i = 0; n <= len && i <= len - n; i++) {
		size_t k = 0;
		while (k < n && fold_ascii(text[i + k]) == fold_ascii(name[k]))
			k++;
		if (k == n)
			return true;
	}
	return false;
}

/* Whether sql may name one of the tables at all, so that INSERTs into other
 * tables skip the parser. Unquoted names are folded to lower case (ASCII
 * only, as the parser does), so the search ignores ASCII case; a U&"..."
 * identifier can spell a name with escapes, so its presence means maybe. */
static bool may_name_a_table(const struct rewrite_session *s, const char *sql, size_t len)
{
	struct pair_set pairs;
	pair_set_fill(&pairs, sql, len);
	if (pair_set_may_hold(&pairs, "u&", 2) && holds_folded(sql, len, "u&", 2))
		return true;
	for (size_t i = 0; i < s->n_tables; i++) {
		const char *name = s->tables[i];
		size_t n = name ? strlen(name) : 0;
		if (n > 0 && pair_set_may_hold(&pairs, name, n) && holds_folded(sql, len, name, n))
			return true;
	}
	return false;
}

/* ---- entry points ---- */

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
	    !may_name_a_table(s, sql, len))
		return REWRITE_PASS;

	struct parsed parsed;
	struct plan p = { .sql = sql, .len = len, .tree = &parsed.tree };
	enum rewrite_status st = REWRITE_PASS;
	if (!parse_tree(sql, &parsed))
		goto done;
	const struct jsontree *t = &parsed.tree;
	bool extended = gen == NULL;
	if (extended && t->v[parsed.stmts].count != 1)
		goto done;
	for (size_t r = jsontree_first(t, parsed.stmts); r != JSONTREE_NONE;
	     r = jsontree_next(t, parsed.stmts, r)) {
		size_t stmt = jsontree_member(t, r, "stmt");
		if (node_fields(t, stmt, "VariableSetStmt") != JSONTREE_NONE)
			goto done;
	}
	for (size_t r = jsontree_first(t, parsed.stmts); r != JSONTREE_NONE && !p.no_memory;
	     r = jsontree_next(t, parsed.stmts, r)) {
		size_t ins = node_fields(t, jsontree_member(t, r, "stmt"), "InsertStmt");
		if (ins != JSONTREE_NONE && insert_qualifies(s, t, ins))
			plan_insert(&p, r, ins);
	}
	if (p.no_memory) {
		st = REWRITE_NO_MEMORY;
		goto done;
	}
	if (p.n_splices == 0)
		goto done;
	uint32_t orig_params = 0;
	if (extended) {
		int64_t max = max_param(&p);
		if (max < 0)
			goto done;
		orig_params = declared > max ? declared : (uint32_t)max;
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
	parsed_free(&parsed);
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

/* Adds the name in value i (NULL for a missing or empty one: all of them);
 * a name no C string can hold names no statement and is skipped. */
static bool add_deallocation(char ***names, size_t *n, const struct jsontree *t, size_t i)
{
	char *copy = NULL;
	if (i != JSONTREE_NONE && !jsontree_string_empty(t, i)) {
		enum jsontree_status st = jsontree_string_dup(t, i, &copy);
		if (st == JSONTREE_INVALID)
			return true;
		if (st == JSONTREE_NO_MEMORY)
			return false;
	}
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
	struct parsed parsed;
	bool ok = true;
	if (!parse_tree(sql, &parsed))
		goto done;
	const struct jsontree *t = &parsed.tree;
	for (size_t r = jsontree_first(t, parsed.stmts); r != JSONTREE_NONE && ok;
	     r = jsontree_next(t, parsed.stmts, r)) {
		size_t stmt = jsontree_member(t, r, "stmt");
		size_t dealloc = node_fields(t, stmt, "DeallocateStmt");
		size_t discard = node_fields(t, stmt, "DiscardStmt");
		if (dealloc != JSONTREE_NONE) {
			ok = add_deallocation(names, n, t, jsontree_member(t, dealloc, "name"));
		} else if (discard != JSONTREE_NONE &&
			   jsontree_string_eq(t, jsontree_member(t, discard, "target"), "DISCARD_ALL")) {
			ok = add_deallocation(names, n, t, JSONTREE_NONE);
		}
	}
	if (!ok) {
		rewrite_deallocations_free(*names, *n);
		*names = NULL;
		*n = 0;
	}
done:
	parsed_free(&parsed);
	return ok;
}

void rewrite_deallocations_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
