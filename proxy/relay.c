#include "relay.h"

#include <string.h>

#include "message.h"

static bool copy_at(struct evbuffer *in, size_t offset, void *dst, size_t n)
{
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(in, &pos, offset, EVBUFFER_PTR_SET) != 0)
		return false;
	return evbuffer_copyout_from(in, &pos, dst, n) == (ev_ssize_t)n;
}

const uint8_t *relay_contiguous(struct evbuffer *in, size_t avail)
{
	if (avail == 0 || avail > RELAY_CONTIGUOUS_MAX)
		return NULL;
	return evbuffer_pullup(in, (ev_ssize_t)avail);
}

void relay_copy_at(struct evbuffer *in, const uint8_t *base, size_t offset, void *dst, size_t n)
{
	if (base)
		memcpy(dst, base + offset, n);
	else
		copy_at(in, offset, dst, n);
}

static enum relay_status to_relay_status(enum pgmsg_status st)
{
	return st == PGMSG_TOO_LARGE ? RELAY_TOO_LARGE : RELAY_BAD_LENGTH;
}

/* ReadyForQuery is the one server message the proxy watches while relaying:
 * it tells whether the session is idle, in a transaction, or failed. */
static void note_ready(struct evbuffer *in, const uint8_t *base, size_t offset, uint32_t total, size_t avail,
		       struct relay *r)
{
	uint8_t status;
	if (total == 6 && offset + 6 <= avail) {
		relay_copy_at(in, base, offset + 5, &status, 1);
		r->ready_status = status;
		r->saw_ready = true;
	}
}

enum relay_status relay_forward(struct evbuffer *in, struct evbuffer *out, struct relay *r,
				uint32_t max_len)
{
	size_t avail = evbuffer_get_length(in);
	const uint8_t *base = relay_contiguous(in, avail);
	size_t forward = 0;
	enum relay_status result = RELAY_OK;
	r->saw_ready = false;
	if (r->remaining) {
		forward = avail < r->remaining ? avail : r->remaining;
		r->remaining -= (uint32_t)forward;
	}
	while (r->remaining == 0 && avail - forward >= PG_HEADER_LEN) {
		uint8_t header[PG_HEADER_LEN], type;
		uint32_t total;
		relay_copy_at(in, base, forward, header, sizeof(header));
		enum pgmsg_status st = pgmsg_header(header, sizeof(header), max_len, &type, &total);
		if (st != PGMSG_OK) {
			result = to_relay_status(st);
			break;
		}
		r->messages++;
		r->last_type = type;
		if (type == 'Z') {
			r->readies++;
			note_ready(in, base, forward, total, avail, r);
		} else if (type == 'Q' || type == 'S') {
			r->syncs++;
		}
		size_t take = avail - forward < total ? avail - forward : total;
		forward += take;
		r->remaining = (uint32_t)(total - take);
	}
	if (forward) {
		evbuffer_remove_buffer(in, out, forward);
		r->bytes += forward;
	}
	return result;
}

long relay_peek_message(struct evbuffer *in, uint32_t max_len, uint8_t *type, uint8_t **data,
			enum relay_status *status)
{
	uint8_t header[PG_HEADER_LEN];
	uint32_t total;
	size_t avail = evbuffer_get_length(in);
	if (avail < PG_HEADER_LEN)
		return 0;
	evbuffer_copyout(in, header, sizeof(header));
	enum pgmsg_status st = pgmsg_header(header, sizeof(header), max_len, type, &total);
	if (st != PGMSG_OK) {
		*status = to_relay_status(st);
		return -1;
	}
	if (avail < total)
		return 0;
	*data = evbuffer_pullup(in, total);
	return (long)total;
}
