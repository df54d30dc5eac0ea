/* The first packet a client sends: SSLRequest, GSSENCRequest, CancelRequest
 * or StartupMessage.
 *
 * Checks beyond memory safety: an accepted packet never claims more bytes than
 * it was given; a StartupMessage rebuilt from its parameters parses again to
 * the same parameters; every prefix of an accepted packet asks for more bytes
 * instead of being accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgbuf.h"
#include "startup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rebuild(const struct startup_packet *p)
{
	struct pgbuf b;
	struct startup_packet again;
	pgbuf_init(&b);
	startup_put_message(&b, p->params, p->nparams);
	if (pgbuf_failed(&b)) {
		pgbuf_free(&b);
		return;
	}
	enum startup_status st = startup_parse(b.data, b.len, &again);
	/* The rebuilt packet may be longer than the limit only if the original
	 * carried protocol options that took its place; nothing else may fail. */
	if (st == STARTUP_OK) {
		if (again.kind != STARTUP_MESSAGE || again.nparams != p->nparams)
			abort();
		for (size_t i = 0; i < p->nparams; i++) {
			if (strcmp(again.params[i].name, p->params[i].name) != 0 ||
			    strcmp(again.params[i].value, p->params[i].value) != 0)
				abort();
			if (startup_get(&again, p->params[i].name) == NULL)
				abort();
		}
		startup_free(&again);
	} else if (st != STARTUP_BAD_LENGTH || p->noptions == 0) {
		abort();
	}
	pgbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct startup_packet p;
	enum startup_status st = startup_parse(data, size, &p);
	(void)startup_status_text(st);
	if (st != STARTUP_OK)
		return 0;
	if (p.packet_len > size || p.packet_len < 8)
		abort();
	if (p.kind == STARTUP_CANCEL && p.cancel_key_len > STARTUP_CANCEL_KEY_MAX)
		abort();
	if (p.kind == STARTUP_MESSAGE) {
		(void)startup_get(&p, "user");
		(void)startup_get(&p, "database");
		check_rebuild(&p);
	}
	/* A prefix of an accepted packet is never accepted. */
	struct startup_packet q;
	size_t cut = p.packet_len > 1 ? (size_t)data[size - 1] % (p.packet_len - 1) + 1 : 0;
	if (cut && cut < p.packet_len) {
		uint8_t *prefix = malloc(cut);
		if (prefix) {
			memcpy(prefix, data, cut);
			if (startup_parse(prefix, cut, &q) == STARTUP_OK)
				abort();
			free(prefix);
		}
	}
	startup_free(&p);
	return 0;
}
