#include "uuidv7.h"

#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define NS_PER_MS 1000000u
#define FRACTION_BITS 12

uint64_t uuidv7_system_clock(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool openssl_random(void *ctx, uint8_t *buf, size_t n)
{
	(void)ctx;
	return RAND_bytes(buf, (int)n) == 1;
}

void uuidv7_init_with(struct uuidv7_gen *g, uuidv7_clock_fn clock, void *clock_ctx,
		      uuidv7_random_fn random, void *random_ctx)
{
	g->clock = clock ? clock : uuidv7_system_clock;
	g->clock_ctx = clock_ctx;
	g->random = random ? random : openssl_random;
	g->random_ctx = random_ctx;
	g->last = 0;
	g->random_pos = UUIDV7_RANDOM_BLOCK;
}

void uuidv7_init(struct uuidv7_gen *g)
{
	uuidv7_init_with(g, NULL, NULL, NULL, NULL);
}

void uuidv7_destroy(struct uuidv7_gen *g)
{
	OPENSSL_cleanse(g->random_block, sizeof(g->random_block));
	g->random_pos = UUIDV7_RANDOM_BLOCK;
}

/* The 60-bit (ms, fraction) counter for the next value: the clock's reading,
 * or one step past the previous value when the clock has not moved past it. */
static uint64_t next_tick(struct uuidv7_gen *g)
{
	uint64_t ns = g->clock(g->clock_ctx);
	uint64_t ms = ns / NS_PER_MS;
	uint64_t fraction = ((ns % NS_PER_MS) << FRACTION_BITS) / NS_PER_MS;
	uint64_t tick = (ms & 0xffffffffffffu) << FRACTION_BITS | fraction;
	if (tick <= g->last)
		tick = g->last + 1;
	g->last = tick;
	return tick;
}

bool uuidv7_next(struct uuidv7_gen *g, uint8_t out[UUIDV7_LEN])
{
	if (g->random_pos > UUIDV7_RANDOM_BLOCK - 8) {
		if (!g->random(g->random_ctx, g->random_block, UUIDV7_RANDOM_BLOCK))
			return false;
		g->random_pos = 0;
	}
	uint64_t tick = next_tick(g);
	uint64_t ms = tick >> FRACTION_BITS;
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(ms >> (40 - 8 * i));
	out[6] = (uint8_t)(0x70 | ((tick >> 8) & 0x0f));
	out[7] = (uint8_t)tick;
	memcpy(out + 8, g->random_block + g->random_pos, 8);
	g->random_pos += 8;
	out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
	return true;
}

/* Two hex digits per byte from one table lookup: formatting is on the hot path
 * of every rewritten row. */
static const char hex_pairs[513] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

void uuidv7_format(const uint8_t uuid[UUIDV7_LEN], char out[UUIDV7_TEXT_LEN])
{
	/* output offset of each byte's two digits in 8-4-4-4-12 */
	static const uint8_t at[UUIDV7_LEN] = { 0, 2, 4, 6, 9, 11, 14, 16,
						19, 21, 24, 26, 28, 30, 32, 34 };
	for (size_t i = 0; i < UUIDV7_LEN; i++)
		memcpy(out + at[i], hex_pairs + 2 * uuid[i], 2);
	out[8] = out[13] = out[18] = out[23] = '-';
}

bool uuidv7_next_text(struct uuidv7_gen *g, char out[UUIDV7_TEXT_LEN])
{
	uint8_t u[UUIDV7_LEN];
	if (!uuidv7_next(g, u))
		return false;
	uuidv7_format(u, out);
	return true;
}

uint64_t uuidv7_timestamp_ms(const uint8_t uuid[UUIDV7_LEN])
{
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | uuid[i];
	return ms;
}
