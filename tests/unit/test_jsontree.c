/* The strict JSON reader behind the rewriter: well-formed documents,
 * lookups, and every kind of malformed, truncated and random text. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jsontree.h"

static void test_document(void)
{
	static const char doc[] = "{\"stmts\":[{\"stmt\":{\"InsertStmt\":{\"location\":12,\"name\":\"a\\\"b\"}}},"
				  "{\"x\":null}],\"version\":150001,\"ok\":true}";
	struct jsontree t;
	CHECK(jsontree_parse(&t, doc, strlen(doc)) == JSONTREE_OK);
	size_t stmts = jsontree_member(&t, 0, "stmts");
	CHECK(stmts != JSONTREE_NONE && jsontree_is(&t, stmts, JSONTREE_ARRAY) && t.v[stmts].count == 2);
	size_t first = jsontree_first(&t, stmts);
	size_t insert = jsontree_member(&t, jsontree_member(&t, first, "stmt"), "InsertStmt");
	int64_t loc = 0;
	CHECK(jsontree_int(&t, jsontree_member(&t, insert, "location"), &loc) && loc == 12);
	char *name = NULL;
	CHECK(jsontree_string_dup(&t, jsontree_member(&t, insert, "name"), &name) == JSONTREE_OK);
	CHECK(name && strcmp(name, "a\"b") == 0);
	free(name);
	CHECK(jsontree_member(&t, 0, "missing") == JSONTREE_NONE);
	CHECK(jsontree_member(&t, JSONTREE_NONE, "stmts") == JSONTREE_NONE);
	int64_t version = 0;
	CHECK(jsontree_int(&t, jsontree_member(&t, 0, "version"), &version) && version == 150001);
	jsontree_free(&t);
}

static void test_invalid(void)
{
	static const char *const bad[] = {
		"", "{", "}", "[1,]", "{\"a\":}", "{\"a\" 1}", "{\"a\":1,\"a\":2}", "\"abc", "[\"\\x\"]",
		"[01]", "[1.]", "[-]", "tru", "nul", "[1] 2", "{\"a\":[1,2}", "[\"a\nb\"]", "{1:2}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct jsontree t;
		CHECK(jsontree_parse(&t, bad[i], strlen(bad[i])) == JSONTREE_INVALID);
		jsontree_free(&t);
	}
}

static void test_truncations_and_noise(void)
{
	static const char doc[] = "{\"a\":[1,-2.5e3,\"x\\u00e9\",{\"b\":false}],\"c\":null}";
	size_t n = strlen(doc);
	for (size_t cut = 0; cut < n; cut++) {
		struct jsontree t;
		CHECK(jsontree_parse(&t, doc, cut) != JSONTREE_OK);
		jsontree_free(&t);
	}
	uint32_t state = 987654321u;
	char buf[128];
	for (int round = 0; round < 20000; round++) {
		memcpy(buf, doc, n);
		for (int k = 0; k < 3; k++)
			buf[check_rng(&state) % n] = (char)check_rng(&state);
		struct jsontree t;
		jsontree_parse(&t, buf, n);
		jsontree_free(&t);
	}
}

int main(void)
{
	test_document();
	test_invalid();
	test_truncations_and_noise();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("jsontree: all checks passed\n");
	return 0;
}
