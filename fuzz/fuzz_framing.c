/* Message framing in both directions: pgmsg_header on its own, and the
 * relay's two paths over evbuffers (relay_forward, which moves whole batches
 * and streams large messages through; relay_peek_message, which hands whole
 * messages to the inspecting path), fed the same bytes in random chunks.
 *
 * Input: byte 0 picks the length limit (pre-login, client after login,
 * server), bytes 1-2 seed the chunk sizes, the rest is the byte stream.
 *
 * Checks: both paths forward exactly a prefix of the stream, byte for byte;
 * they agree with a reference framing on where messages end and on the first
 * bad header; the relay's counters match the messages it forwarded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "message.h"
#include "relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t limits[] = { PG_PRE_AUTH_MAX_MESSAGE, 1u << 20, 0x7fffffffu, 16 };

struct chunker {
	uint32_t state;
};

static size_t next_chunk(struct chunker *c, size_t left)
{
	c->state = c->state * 1103515245u + 12345u;
	size_t n = (c->state >> 16) % 64 + 1;
	if ((c->state & 7) == 0)
		n = 1;
	return n < left ? n : left;
}

/* Where the reference framing stops: the offset after the last whole or
 * partial message, and whether a bad header ended it. */
struct reference {
	size_t messages;
	size_t readies;
	size_t syncs;
	size_t good_end;   /* end of the last header the relay may accept */
	bool bad;
	enum pgmsg_status bad_status;
};

static struct reference frame(const uint8_t *s, size_t n, uint32_t max)
{
	struct reference ref = { 0 };
	size_t off = 0;
	while (n - off >= PG_HEADER_LEN) {
		uint32_t len = (uint32_t)s[off + 1] << 24 | (uint32_t)s[off + 2] << 16 |
			       (uint32_t)s[off + 3] << 8 | s[off + 4];
		if (len < 4 || len > 0x7fffffffu || len > max) {
			ref.bad = true;
			ref.bad_status = len < 4 || len > 0x7fffffffu ? PGMSG_BAD_LENGTH : PGMSG_TOO_LARGE;
			break;
		}
		uint8_t type;
		uint32_t total;
		if (pgmsg_header(s + off, n - off, max, &type, &total) != PGMSG_OK || type != s[off] ||
		    total != len + 1)
			abort();
		ref.messages++;
		if (type == 'Z')
			ref.readies++;
		else if (type == 'Q' || type == 'S')
			ref.syncs++;
		if ((size_t)total > n - off) {
			off = n;
			break;
		}
		off += total;
	}
	ref.good_end = off;
	return ref;
}

static void run_forward(const uint8_t *s, size_t n, uint32_t max, uint32_t seed,
			const struct reference *ref)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct relay r;
	struct chunker ch = { seed };
	enum relay_status st = RELAY_OK;
	memset(&r, 0, sizeof(r));
	for (size_t off = 0; off < n && st == RELAY_OK;) {
		size_t c = next_chunk(&ch, n - off);
		evbuffer_add(in, s + off, c);
		off += c;
		st = relay_forward(in, out, &r, max);
	}
	size_t fwd = evbuffer_get_length(out);
	if (fwd > n || (fwd && memcmp(evbuffer_pullup(out, -1), s, fwd) != 0))
		abort();
	if (st != RELAY_OK) {
		if (!ref->bad || fwd != ref->good_end)
			abort();
		if ((st == RELAY_TOO_LARGE) != (ref->bad_status == PGMSG_TOO_LARGE))
			abort();
	} else {
		if (ref->bad)
			abort();
		if (r.remaining == 0 && evbuffer_get_length(in) >= PG_HEADER_LEN)
			abort();
		if (r.remaining && evbuffer_get_length(in) != 0)
			abort();
	}
	if (r.bytes != fwd || r.messages != ref->messages || r.readies != ref->readies ||
	    r.syncs != ref->syncs)
		abort();
	if (!ref->bad && fwd + evbuffer_get_length(in) != n)
		abort();
	evbuffer_free(in);
	evbuffer_free(out);
}

static void run_peek(const uint8_t *s, size_t n, uint32_t max, uint32_t seed,
		     const struct reference *ref)
{
	struct evbuffer *in = evbuffer_new();
	struct chunker ch = { seed ^ 0x5bd1e995u };
	size_t taken = 0;
	bool failed = false;
	for (size_t off = 0; off < n && !failed;) {
		size_t c = next_chunk(&ch, n - off);
		evbuffer_add(in, s + off, c);
		off += c;
		for (;;) {
			uint8_t type = 0, *msg = NULL;
			enum relay_status st = RELAY_OK;
			long total = relay_peek_message(in, max, &type, &msg, &st);
			if (total < 0) {
				if (!ref->bad || taken != ref->good_end ||
				    (st == RELAY_TOO_LARGE) != (ref->bad_status == PGMSG_TOO_LARGE))
					abort();
				failed = true;
				break;
			}
			if (total == 0)
				break;
			if ((size_t)total > n - taken || memcmp(msg, s + taken, (size_t)total) != 0 ||
			    type != s[taken])
				abort();
			taken += (size_t)total;
			evbuffer_drain(in, (size_t)total);
		}
	}
	if (failed != ref->bad)
		abort();
	evbuffer_free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	uint32_t max = limits[data[0] % (sizeof(limits) / sizeof(limits[0]))];
	uint32_t seed = (uint32_t)data[1] << 8 | data[2];
	const uint8_t *s = data + 3;
	size_t n = size - 3;
	struct reference ref = frame(s, n, max);
	run_forward(s, n, max, seed, &ref);
	run_peek(s, n, max, seed, &ref);
	return 0;
}
