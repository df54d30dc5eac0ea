/* UUIDv7 generator (RFC 9562) with PostgreSQL 18's "method 3": the 12 bits of
 * rand_a hold the sub-millisecond fraction of the clock, so values drawn by one
 * generator sort in the order they were drawn, even within one millisecond.
 *
 * Layout: 48-bit Unix time in ms, version 7, 12-bit fraction of the ms
 * (units of 1/4096 ms), variant 0b10, 62 bits from a CSPRNG.
 *
 * Monotonicity: the (ms, fraction) pair is a 60-bit counter. When the clock
 * reads a value not above the previous one (the clock went backwards, or more
 * than 4096 values were drawn in one ms), the counter advances by one step
 * (1/4096 ms) past the previous value instead, so the generated timestamps run
 * slightly ahead of the clock until it catches up.
 *
 * Random bytes are drawn from OpenSSL's RAND_bytes in blocks, so one value
 * costs a few nanoseconds. A generator is not thread-safe: uuidgate's proxy is
 * single-threaded and owns one generator per process. A generator must not be
 * shared across fork() either (both processes would hand out the same
 * buffered random bytes); create a fresh one in the child. */
#ifndef UUIDGATE_UUIDV7_H
#define UUIDGATE_UUIDV7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UUIDV7_LEN 16
#define UUIDV7_TEXT_LEN 36
#define UUIDV7_RANDOM_BLOCK 4096

/* Nanoseconds since the Unix epoch. */
typedef uint64_t (*uuidv7_clock_fn)(void *ctx);
/* Fills buf with n cryptographically strong random bytes; false on failure. */
typedef bool (*uuidv7_random_fn)(void *ctx, uint8_t *buf, size_t n);

/* Fields are private to uuidv7.c; the struct is public only so that callers
 * can embed it. */
struct uuidv7_gen {
	uuidv7_clock_fn clock;
	void *clock_ctx;
	uuidv7_random_fn random;
	void *random_ctx;
	uint64_t last;			/* last (ms << 12 | fraction) handed out */
	size_t random_pos;		/* next unused byte of random_block */
	uint8_t random_block[UUIDV7_RANDOM_BLOCK];
};

/* The system clock (CLOCK_REALTIME) and OpenSSL's CSPRNG. */
void uuidv7_init(struct uuidv7_gen *g);
/* Either function may be NULL for the default. */
void uuidv7_init_with(struct uuidv7_gen *g, uuidv7_clock_fn clock, void *clock_ctx,
		      uuidv7_random_fn random, void *random_ctx);
/* Wipes the buffered random bytes. */
void uuidv7_destroy(struct uuidv7_gen *g);

/* Draws the next value; false only when the random source fails. */
bool uuidv7_next(struct uuidv7_gen *g, uint8_t out[UUIDV7_LEN]);
/* Draws the next value as 36 lower-case characters (no terminator). */
bool uuidv7_next_text(struct uuidv7_gen *g, char out[UUIDV7_TEXT_LEN]);

/* The canonical 8-4-4-4-12 form of any UUID, without a terminator. */
void uuidv7_format(const uint8_t uuid[UUIDV7_LEN], char out[UUIDV7_TEXT_LEN]);
/* The Unix timestamp in ms that a UUIDv7 carries. */
uint64_t uuidv7_timestamp_ms(const uint8_t uuid[UUIDV7_LEN]);

uint64_t uuidv7_system_clock(void *ctx);

#endif
