#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "stmtmap.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
	exit(1); } } while (0)

static const struct stmtmap_entry one_row = { 2, 1, 1 };
static const struct stmtmap_entry two_rows = { 4, 2, 2 };

static void reply(struct stmtmap *m, char type)
{
	stmtmap_server(m, type, NULL, 0);
}

static void complete(struct stmtmap *m, const char *tag)
{
	stmtmap_server(m, 'C', (const uint8_t *)tag, strlen(tag) + 1);
}

static uint32_t extra_of(const struct stmtmap *m, const char *name)
{
	const struct stmtmap_entry *e = stmtmap_lookup(m, name);
	return e ? e->extra_params : UINT32_MAX;	/* UINT32_MAX: unknown */
}

/* Parse + Sync answered with ParseComplete + ReadyForQuery. */
static void prepare(struct stmtmap *m, const char *name, const struct stmtmap_entry *e)
{
	CHECK(stmtmap_parse(m, name, e, NULL));
	CHECK(stmtmap_sync(m));
	reply(m, '1');
	reply(m, 'Z');
	CHECK(stmtmap_pending(m) == 0);
}

static void test_commit_and_pending(void)
{
	struct stmtmap *m = stmtmap_new();
	CHECK(m);
	CHECK(stmtmap_lookup(m, "s1") == NULL);
	/* Postgrex: Parse + Describe + Flush, then Bind before any reply */
	CHECK(stmtmap_parse(m, "s1", &one_row, NULL));
	CHECK(stmtmap_describe_statement(m, "s1"));
	const struct stmtmap_entry *e = stmtmap_lookup(m, "s1");
	CHECK(e && e->orig_params == 2 && e->extra_params == 1 && e->rows == 1);
	CHECK(stmtmap_current_hidden_params(m) == 0);
	reply(m, '1');
	CHECK(stmtmap_current_hidden_params(m) == 1);
	reply(m, 't');
	reply(m, 'n');
	CHECK(stmtmap_pending(m) == 0);
	CHECK(extra_of(m, "s1") == 1);
	CHECK(stmtmap_current_hidden_params(m) == 0);
	CHECK(stmtmap_other(m));	/* Bind */
	CHECK(stmtmap_other(m));	/* Execute */
	CHECK(stmtmap_sync(m));
	reply(m, '2');
	reply(m, 'C');
	reply(m, 'Z');
	CHECK(stmtmap_pending(m) == 0);
	CHECK(extra_of(m, "s1") == 1);

	/* a statement that was not rewritten is known, with no extra params */
	prepare(m, "plain", NULL);
	CHECK(extra_of(m, "plain") == 0);
	CHECK(stmtmap_describe_statement(m, "plain"));
	CHECK(stmtmap_current_hidden_params(m) == 0);
	reply(m, 't');
	reply(m, 'T');
	CHECK(stmtmap_pending(m) == 0);
	stmtmap_free(m);
}

static void test_duplicate_name_keeps_old(void)
{
	struct stmtmap *m = stmtmap_new();
	prepare(m, "s1", &one_row);
	CHECK(stmtmap_parse(m, "s1", &two_rows, NULL));
	/* the server will refuse it: a Bind now still uses the old one */
	CHECK(extra_of(m, "s1") == 1);
	CHECK(stmtmap_sync(m));
	reply(m, 'E');	/* 42P05 */
	reply(m, 'Z');
	CHECK(extra_of(m, "s1") == 1);
	CHECK(stmtmap_pending(m) == 0);

	/* after a Close it may be prepared again */
	CHECK(stmtmap_close(m, "s1"));
	CHECK(stmtmap_parse(m, "s1", &two_rows, NULL));
	CHECK(extra_of(m, "s1") == 2);
	CHECK(stmtmap_sync(m));
	reply(m, '3');
	CHECK(stmtmap_lookup(m, "s1") != NULL);	/* the Parse is still pending */
	reply(m, '1');
	reply(m, 'Z');
	CHECK(extra_of(m, "s1") == 2);
	stmtmap_free(m);
}

static void test_skip_until_sync(void)
{
	struct stmtmap *m = stmtmap_new();
	prepare(m, "keep", &one_row);
	/* Bind fails; the Parse and Close after it are skipped */
	CHECK(stmtmap_other(m));
	CHECK(stmtmap_parse(m, "b", &one_row, NULL));
	CHECK(stmtmap_close(m, "keep"));
	reply(m, 'E');
	CHECK(stmtmap_lookup(m, "b") == NULL);
	/* sent after the error but before Sync: skipped as well */
	CHECK(stmtmap_parse(m, "c", &one_row, NULL));
	CHECK(stmtmap_query(m, "SELECT 1", NULL));
	CHECK(stmtmap_lookup(m, "c") == NULL);
	CHECK(stmtmap_sync(m));
	reply(m, 'Z');
	CHECK(stmtmap_pending(m) == 0);
	CHECK(extra_of(m, "keep") == 1);
	CHECK(stmtmap_lookup(m, "b") == NULL && stmtmap_lookup(m, "c") == NULL);

	/* after the Sync, messages count again */
	prepare(m, "c", &two_rows);
	CHECK(extra_of(m, "c") == 2);

	/* a pipeline where the first Execute fails */
	CHECK(stmtmap_parse(m, "p1", &one_row, NULL));
	CHECK(stmtmap_other(m));
	CHECK(stmtmap_other(m));
	CHECK(stmtmap_parse(m, "p2", &one_row, NULL));
	CHECK(stmtmap_other(m));
	CHECK(stmtmap_other(m));
	CHECK(stmtmap_sync(m));
	reply(m, '1');
	reply(m, '2');
	reply(m, 'E');
	reply(m, 'Z');
	CHECK(stmtmap_pending(m) == 0);
	CHECK(extra_of(m, "p1") == 1);
	CHECK(stmtmap_lookup(m, "p2") == NULL);

	/* the same pipeline, all well */
	CHECK(stmtmap_parse(m, "p2", &one_row, NULL));
	CHECK(stmtmap_other(m));
	CHECK(stmtmap_other(m));
	CHECK(stmtmap_parse(m, "p3", &two_rows, NULL));
	CHECK(stmtmap_other(m));
	CHECK(stmtmap_other(m));
	CHECK(stmtmap_sync(m));
	const char *replies = "12D12s";
	for (const char *r = replies; *r; r++)
		reply(m, *r == 'D' ? 'I' : *r);
	CHECK(stmtmap_pending(m) == 1);
	reply(m, 'Z');
	CHECK(extra_of(m, "p2") == 1 && extra_of(m, "p3") == 2);

	/* a Sync whose commit fails: ErrorResponse then ReadyForQuery */
	CHECK(stmtmap_parse(m, "p4", &one_row, NULL));
	CHECK(stmtmap_sync(m));
	CHECK(stmtmap_parse(m, "p5", &one_row, NULL));
	reply(m, '1');
	reply(m, 'E');
	reply(m, 'Z');
	CHECK(stmtmap_pending(m) == 1);
	CHECK(stmtmap_sync(m));
	reply(m, '1');
	reply(m, 'Z');
	CHECK(extra_of(m, "p4") == 1 && extra_of(m, "p5") == 1);
	stmtmap_free(m);
}

static void test_unnamed(void)
{
	struct stmtmap *m = stmtmap_new();
	prepare(m, "", &one_row);
	CHECK(extra_of(m, "") == 1);
	/* Parse("") replaces it */
	prepare(m, "", &two_rows);
	CHECK(extra_of(m, "") == 2);
	prepare(m, "", NULL);
	CHECK(extra_of(m, "") == 0);
	prepare(m, "", &one_row);
	/* ... even when it fails: the old one is dropped before parsing */
	CHECK(stmtmap_parse(m, "", NULL, NULL));
	CHECK(stmtmap_sync(m));
	reply(m, 'E');
	reply(m, 'Z');
	CHECK(stmtmap_lookup(m, "") == NULL);

	/* any simple Query drops it, failing or not */
	prepare(m, "", &one_row);
	prepare(m, "named", &one_row);
	CHECK(stmtmap_query(m, "SELECT 1", NULL));
	CHECK(stmtmap_lookup(m, "") == NULL);
	reply(m, 'T');
	reply(m, 'D');
	reply(m, 'C');
	reply(m, 'Z');
	CHECK(stmtmap_lookup(m, "") == NULL);
	CHECK(extra_of(m, "named") == 1);
	prepare(m, "", &one_row);
	CHECK(stmtmap_query(m, "SELEC 1", NULL));
	reply(m, 'E');
	CHECK(stmtmap_pending(m) == 1);
	reply(m, 'Z');
	CHECK(stmtmap_lookup(m, "") == NULL);
	CHECK(stmtmap_pending(m) == 0);

	/* a FunctionCall does not */
	prepare(m, "", &one_row);
	CHECK(stmtmap_function_call(m));
	reply(m, 'V');
	reply(m, 'Z');
	CHECK(extra_of(m, "") == 1);
	stmtmap_free(m);
}

static void test_close(void)
{
	struct stmtmap *m = stmtmap_new();
	prepare(m, "s1", &one_row);
	prepare(m, "s2", &one_row);
	CHECK(stmtmap_close(m, "s1"));
	CHECK(stmtmap_lookup(m, "s1") == NULL);	/* pending Close */
	CHECK(stmtmap_other(m));		/* Close of a portal */
	CHECK(stmtmap_sync(m));
	reply(m, '3');
	reply(m, '3');
	reply(m, 'Z');
	CHECK(stmtmap_lookup(m, "s1") == NULL);
	CHECK(extra_of(m, "s2") == 1);
	CHECK(stmtmap_pending(m) == 0);
	stmtmap_free(m);
}

static void test_deallocate(void)
{
	struct stmtmap *m = stmtmap_new();
	prepare(m, "s1", &one_row);
	prepare(m, "s2", &one_row);
	prepare(m, "s3", &one_row);
	CHECK(stmtmap_query(m, "DEALLOCATE s1", NULL));
	CHECK(stmtmap_lookup(m, "s1") == NULL);
	CHECK(extra_of(m, "s2") == 1);
	complete(m, "DEALLOCATE");
	reply(m, 'Z');
	CHECK(stmtmap_lookup(m, "s1") == NULL);
	CHECK(extra_of(m, "s2") == 1);

	/* a statement that fails stops the Query before a later DEALLOCATE */
	CHECK(stmtmap_query(m, "SELECT 1/0; deallocate prepare s2", NULL));
	reply(m, 'T');
	reply(m, 'E');
	reply(m, 'Z');
	CHECK(extra_of(m, "s2") == 1);

	/* a Bind sent after the Query meets what the Query leaves */
	CHECK(stmtmap_query(m, "SELECT 1; DEALLOCATE s2; DEALLOCATE ALL", NULL));
	CHECK(stmtmap_lookup(m, "s3") == NULL);
	complete(m, "SELECT 1");
	complete(m, "DEALLOCATE");
	CHECK(stmtmap_lookup(m, "s2") == NULL);
	complete(m, "DEALLOCATE ALL");
	CHECK(stmtmap_lookup(m, "s3") == NULL);
	reply(m, 'Z');

	prepare(m, "s4", &one_row);
	CHECK(stmtmap_query(m, "discard all", NULL));
	complete(m, "DISCARD ALL");
	reply(m, 'Z');
	CHECK(stmtmap_lookup(m, "s4") == NULL);
	CHECK(stmtmap_pending(m) == 0);
	stmtmap_free(m);
}

static void test_posmap_follows_the_head(void)
{
	struct stmtmap *m = stmtmap_new();
	struct rewrite_posmap pm = { malloc(sizeof(struct rewrite_splice)), 1 };
	CHECK(pm.splices);
	pm.splices[0] = (struct rewrite_splice){ 10, 0, 6 };
	CHECK(stmtmap_parse(m, "s", &one_row, &pm));
	CHECK(pm.splices == NULL && pm.n == 0);
	CHECK(stmtmap_sync(m));
	const struct rewrite_posmap *cur = stmtmap_current_posmap(m);
	CHECK(cur && rewrite_posmap_original(cur, 20) == 14);
	reply(m, 'E');
	CHECK(stmtmap_current_posmap(m) == NULL);
	reply(m, 'Z');

	struct rewrite_posmap q = { malloc(sizeof(struct rewrite_splice)), 1 };
	CHECK(q.splices);
	q.splices[0] = (struct rewrite_splice){ 0, 0, 3 };
	CHECK(stmtmap_query(m, "INSERT ...", &q));
	CHECK(stmtmap_current_posmap(m) != NULL);
	reply(m, 'E');
	CHECK(stmtmap_current_posmap(m) != NULL);
	reply(m, 'Z');
	CHECK(stmtmap_current_posmap(m) == NULL);
	stmtmap_free(m);
}

static void test_many_statements(void)
{
	struct stmtmap *m = stmtmap_new();
	char name[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "ecto_%d", i);
		CHECK(stmtmap_parse(m, name, i % 2 ? &one_row : NULL, NULL));
		CHECK(stmtmap_other(m));
	}
	CHECK(stmtmap_sync(m));
	for (int i = 0; i < 2000; i++) {
		reply(m, '1');
		reply(m, 'n');
	}
	reply(m, 'Z');
	CHECK(stmtmap_pending(m) == 0);
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "ecto_%d", i);
		CHECK(extra_of(m, name) == (i % 2 ? 1u : 0u));
	}
	/* stray replies with nothing pending are ignored */
	reply(m, '1');
	reply(m, 'E');
	reply(m, 'Z');
	stmtmap_free(m);
	stmtmap_free(NULL);
}

int main(void)
{
	test_commit_and_pending();
	test_duplicate_name_keeps_old();
	test_skip_until_sync();
	test_unnamed();
	test_close();
	test_deallocate();
	test_posmap_follows_the_head();
	test_many_statements();
	pg_query_exit();
	printf("ok\n");
	return 0;
}
