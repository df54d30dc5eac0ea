/* libFuzzer target for the INSERT rewriter.
 *
 * Whenever the rewriter changes a text, the result must parse and, once the
 * added column and values are taken out of its parse tree again, deparse to
 * exactly what the original deparses to. The same bytes are also fed to the
 * extended-protocol message helpers, which must reject or accept them
 * without reading out of bounds.
 *
 * Build and run from the project root:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iprotocol \
 *     fuzz/fuzz_rewrite.c protocol/rewrite.c protocol/rewrite_ext.c protocol/jsontree.c \
 *     protocol/sqlscan.c protocol/stmtmap.c protocol/uuidv7.c \
 *     protocol/pgbuf.c protocol/pgread.c \
 *     -l:libpg_query.a -lprotobuf-c -lcrypto -lpthread -o fuzz_rewrite
 *   ./fuzz_rewrite -max_total_time=60 fuzz/corpus/fuzz_rewrite
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "pgbuf.h"
#include "rewrite.h"
#include "rewrite_ext.h"
#include "stmtmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const tables[] = { "t", "users", "x", "Ü" };

static const struct rewrite_session session = {
	.schema = "public",
	.tables = tables,
	.n_tables = sizeof(tables) / sizeof(tables[0]),
	.unqualified_in_schema = true,
	.utf8_standard_strings = true,
};

static PgQuery__ParseResult *parse_tree(const char *sql)
{
	PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql);
	PgQuery__ParseResult *tree = NULL;
	if (!r.error)
		tree = pg_query__parse_result__unpack(NULL, r.parse_tree.len,
						      (const uint8_t *)r.parse_tree.data);
	pg_query_free_protobuf_parse_result(r);
	return tree;
}

/* The deparsed text of a tree, or NULL when the deparser cannot print it. */
static char *deparse(const PgQuery__ParseResult *tree)
{
	size_t len = protobuf_c_message_get_packed_size(&tree->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		abort();
	protobuf_c_message_pack(&tree->base, buf);
	PgQueryProtobuf pb = { len, (char *)buf };
	PgQueryDeparseResult d = pg_query_deparse_protobuf(pb);
	char *text = d.error ? NULL : strdup(d.query);
	pg_query_free_deparse_result(d);
	free(buf);
	return text;
}

static bool is_added_value(const PgQuery__Node *n, bool extended, uint32_t orig_params)
{
	if (extended)
		return n->node_case == PG_QUERY__NODE__NODE_PARAM_REF &&
		       (uint32_t)n->param_ref->number > orig_params;
	return n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST &&
	       n->type_cast->arg->node_case == PG_QUERY__NODE__NODE_A_CONST;
}

/* Takes the added column and values out of rewritten statement b (which must
 * correspond to a) in place; the counts are restored by restore_insert. */
struct saved_insert {
	PgQuery__InsertStmt *ins;
	size_t n_cols;
	PgQuery__Node *select_stmt;
	size_t rows;
};

static void strip_insert(PgQuery__InsertStmt *a, PgQuery__InsertStmt *b, bool extended,
			 uint32_t orig_params, struct saved_insert *saved)
{
	saved->ins = b;
	saved->n_cols = b->n_cols;
	saved->select_stmt = b->select_stmt;
	saved->rows = 0;
	if (b->n_cols != a->n_cols + 1)
		abort();
	PgQuery__Node *added = b->cols[b->n_cols - 1];
	if (added->node_case != PG_QUERY__NODE__NODE_RES_TARGET ||
	    strcmp(added->res_target->name, "uuid") != 0 || added->res_target->n_indirection)
		abort();
	b->n_cols--;
	if (!b->select_stmt || b->select_stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT)
		abort();
	PgQuery__SelectStmt *sel = b->select_stmt->select_stmt;
	for (size_t r = 0; r < sel->n_values_lists; r++) {
		PgQuery__List *row = sel->values_lists[r]->list;
		if (row->n_items == 0 || !is_added_value(row->items[row->n_items - 1], extended, orig_params))
			abort();
		row->n_items--;
	}
	saved->rows = sel->n_values_lists;
	if (a->select_stmt == NULL) {	/* DEFAULT VALUES */
		if (sel->n_values_lists != 1 || sel->values_lists[0]->list->n_items != 0)
			abort();
		b->select_stmt = NULL;
	}
}

static void restore_insert(struct saved_insert *s)
{
	s->ins->n_cols = s->n_cols;
	s->ins->select_stmt = s->select_stmt;
	PgQuery__SelectStmt *sel = s->select_stmt->select_stmt;
	for (size_t r = 0; r < s->rows; r++)
		sel->values_lists[r]->list->n_items++;
}

static void check_rewrite(const char *sql, const struct rewrite_result *res, bool extended)
{
	PgQuery__ParseResult *a = parse_tree(sql);
	PgQuery__ParseResult *b = parse_tree(res->sql);
	if (!a || !b || a->n_stmts != b->n_stmts) {
		fprintf(stderr, "rewritten text does not parse alike:\n%s\n%s\n", sql, res->sql);
		abort();
	}
	struct saved_insert *saved = calloc(b->n_stmts + 1, sizeof(*saved));
	size_t n_saved = 0;
	uint32_t rows = 0;
	for (size_t i = 0; i < b->n_stmts; i++) {
		PgQuery__Node *na = a->stmts[i]->stmt, *nb = b->stmts[i]->stmt;
		if (na->node_case != nb->node_case)
			abort();
		if (nb->node_case != PG_QUERY__NODE__NODE_INSERT_STMT ||
		    nb->insert_stmt->n_cols == na->insert_stmt->n_cols)
			continue;
		strip_insert(na->insert_stmt, nb->insert_stmt, extended, res->orig_params,
			     &saved[n_saved]);
		rows += (uint32_t)saved[n_saved].rows;
		n_saved++;
	}
	if (n_saved == 0 || rows != res->rows)
		abort();
	char *da = deparse(a), *db = deparse(b);
	if ((da == NULL) != (db == NULL) || (da && strcmp(da, db) != 0)) {
		fprintf(stderr, "trees differ:\n%s\n%s\n", da ? da : "(null)", db ? db : "(null)");
		abort();
	}
	free(da);
	free(db);
	while (n_saved)
		restore_insert(&saved[--n_saved]);
	free(saved);
	pg_query__parse_result__free_unpacked(a, NULL);
	pg_query__parse_result__free_unpacked(b, NULL);
}

static void check_posmap(const struct rewrite_result *res, size_t orig_len)
{
	uint32_t prev = 0;
	for (uint32_t pos = 1; pos <= res->sql_len + 1; pos += 7) {
		uint32_t o = rewrite_posmap_original(&res->posmap, pos);
		if (o < prev || o > orig_len + 1)
			abort();
		prev = o;
	}
}

static uint64_t fixed_clock(void *ctx)
{
	(void)ctx;
	return 1700000000000000000u;
}

static void fuzz_messages(const uint8_t *data, size_t size, struct uuidv7_gen *gen)
{
	struct pgbuf out;
	pgbuf_init(&out);
	struct rewrite_ext_error err;
	uint32_t orig = size ? data[0] % 4 : 0;
	rewrite_ext_bind(data, size, orig, 1 + orig % 2, gen, &out, &err);
	pgbuf_reset(&out);
	rewrite_ext_param_desc(data, size, orig, &out);
	pgbuf_reset(&out);
	struct rewrite_splice sp = { 3, 1, 5 };
	struct rewrite_posmap pm = { &sp, 1 };
	rewrite_ext_error_position('E', data, size, &pm, &out);
	pgbuf_reset(&out);
	struct rewrite_result res;
	if (rewrite_ext_parse(&session, data, size, &out, &res) == REWRITE_DONE)
		rewrite_result_free(&res);
	pgbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *sql = malloc(size + 1);
	if (!sql)
		return 0;
	memcpy(sql, data, size);
	sql[size] = '\0';
	size_t len = strlen(sql);

	struct uuidv7_gen gen;
	uuidv7_init_with(&gen, fixed_clock, NULL, NULL, NULL);
	struct rewrite_result res;
	if (rewrite_query(&session, &gen, sql, &res) == REWRITE_DONE) {
		check_rewrite(sql, &res, false);
		check_posmap(&res, len);
		rewrite_result_free(&res);
	}
	uint32_t declared = size ? data[size - 1] % 4 : 0;
	if (rewrite_parse_sql(&session, sql, declared, &res) == REWRITE_DONE) {
		if (res.orig_params < declared)
			abort();
		check_rewrite(sql, &res, true);
		check_posmap(&res, len);
		rewrite_result_free(&res);
	}
	char **names;
	size_t n_names;
	if (rewrite_deallocations(sql, &names, &n_names))
		rewrite_deallocations_free(names, n_names);

	fuzz_messages(data, size, &gen);
	uuidv7_destroy(&gen);
	free(sql);
	return 0;
}
