/* The statement map under a random interleaving of client messages the proxy
 * forwards and server replies it relays. Each input byte is one event (its low
 * bits pick the kind, its high bits a statement name or reply); a Query takes
 * its text from the following bytes up to a NUL.
 *
 * Checks: lookups and hidden-parameter counts only ever return what a Parse
 * declared; a position mapped through the current posmap never grows past the
 * text; the queue never holds more operations than were pushed; every posmap
 * handed over is freed exactly once (LeakSanitizer and ASan watch this). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"
#include "stmtmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = { "", "s1", "s2", "stmt_with_a_longer_name" };
static const char server_types[] = { '1', '2', '3', 'C', 'E', 'I', 'n', 't', 's', 'Z', 'T', 'D', 'N' };
static const char *const tags[] = { "INSERT 0 1", "DEALLOCATE", "DEALLOCATE ALL", "DISCARD ALL", "SELECT 1" };

/* A posmap with one splice, as the rewriter makes for an added column. */
static struct rewrite_posmap make_posmap(uint8_t b)
{
	struct rewrite_posmap pm = { NULL, 0 };
	pm.splices = malloc(sizeof(*pm.splices));
	if (pm.splices) {
		pm.splices[0].orig_char = b;
		pm.splices[0].del_chars = b & 3;
		pm.splices[0].ins_chars = (uint32_t)(b >> 2) + 1;
		pm.n = 1;
	}
	return pm;
}

static void server_reply(struct stmtmap *m, uint8_t b)
{
	char type = server_types[(b >> 3) % sizeof(server_types)];
	const struct rewrite_posmap *pm = stmtmap_current_posmap(m);
	if (pm)
		(void)rewrite_posmap_original(pm, b);
	if (type == 'C') {
		const char *tag = tags[(b >> 3) % (sizeof(tags) / sizeof(tags[0]))];
		stmtmap_server(m, type, (const uint8_t *)tag, strlen(tag) + 1);
	} else if (type == 'Z') {
		stmtmap_server(m, type, (const uint8_t *)"I", 1);
	} else if (type == 't') {
		uint32_t hidden = stmtmap_current_hidden_params(m);
		if (hidden > 3)
			abort();
		stmtmap_server(m, type, NULL, 0);
	} else {
		stmtmap_server(m, type, NULL, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stmtmap *m = stmtmap_new();
	if (!m)
		return 0;
	size_t pushed = 0;
	for (size_t i = 0; i < size; i++) {
		uint8_t b = data[i];
		const char *name = names[(b >> 3) & 3];
		bool ok = true;
		switch (b & 7) {
		case 0: {
			struct stmtmap_entry e = { (uint32_t)(b >> 5), (uint32_t)(b >> 6), (uint32_t)(b >> 6) };
			struct rewrite_posmap pm = make_posmap(b);
			ok = stmtmap_parse(m, name, (b & 0x20) ? &e : NULL, &pm);
			rewrite_posmap_free(&pm);
			break;
		}
		case 1: ok = stmtmap_close(m, name); break;
		case 2: ok = (b & 0x20) ? stmtmap_describe_statement(m, name) : stmtmap_other(m); break;
		case 3: ok = stmtmap_sync(m); break;
		case 4: {
			const uint8_t *start = data + i + 1;
			const uint8_t *end = memchr(start, 0, size - i - 1);
			size_t n = end ? (size_t)(end - start) : size - i - 1;
			char *sql = malloc(n + 1);
			if (!sql)
				break;
			memcpy(sql, start, n);
			sql[n] = '\0';
			struct rewrite_posmap pm = make_posmap(b);
			ok = stmtmap_query(m, sql, (b & 0x20) ? &pm : NULL);
			rewrite_posmap_free(&pm);
			free(sql);
			i += n + (end ? 1 : 0);
			break;
		}
		case 5: ok = stmtmap_function_call(m); break;
		default: server_reply(m, b); break;
		}
		if ((b & 7) < 6 && ok)
			pushed++;
		const struct stmtmap_entry *e = stmtmap_lookup(m, name);
		if (e && (e->orig_params > 7 || e->extra_params > 3 || e->rows > 3))
			abort();
		if (stmtmap_pending(m) > pushed)
			abort();
	}
	stmtmap_free(m);
	return 0;
}
