/* Forwarding protocol messages from one buffer to another while keeping
 * track of message boundaries. Whole batches of messages move with one
 * evbuffer_remove_buffer() (no byte copies); a message larger than what has
 * arrived is streamed through as it comes, so memory stays bounded. */
#ifndef UUIDGATE_RELAY_H
#define UUIDGATE_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>

struct relay {
	uint32_t remaining;   /* bytes of the current message still to forward */
	uint64_t messages;
	uint64_t bytes;
	uint8_t last_type;    /* type of the last message whose header was seen */
	uint8_t ready_status; /* status byte of the last ReadyForQuery seen, or 0 */
	bool saw_ready;       /* a ReadyForQuery went by in the last call */
	uint64_t syncs;       /* Query and Sync messages: each earns one ReadyForQuery */
	uint64_t readies;     /* ReadyForQuery messages */
};

enum relay_status {
	RELAY_OK,
	RELAY_BAD_LENGTH,
	RELAY_TOO_LARGE,
};

/* Inputs up to this size are made contiguous (one evbuffer pullup, which
 * copies nothing when the bytes sit in one chain, as small ones do) so that
 * headers are read in place. */
#define RELAY_CONTIGUOUS_MAX (16 * 1024)
const uint8_t *relay_contiguous(struct evbuffer *in, size_t avail);
/* n bytes at offset: from base when the input is contiguous, else copied
 * out of the chains. */
void relay_copy_at(struct evbuffer *in, const uint8_t *base, size_t offset, void *dst, size_t n);

enum relay_status relay_forward(struct evbuffer *in, struct evbuffer *out, struct relay *r,
                                uint32_t max_len);

static inline bool relay_at_boundary(const struct relay *r)
{
	return r->remaining == 0;
}

/* Copies the first whole message (header included) of `in` when it has fully
 * arrived: returns its total length, 0 when more bytes are needed, or -1 with
 * *status set when the header is bad. Does not remove anything. */
long relay_peek_message(struct evbuffer *in, uint32_t max_len, uint8_t *type, uint8_t **data,
                        enum relay_status *status);

#endif
