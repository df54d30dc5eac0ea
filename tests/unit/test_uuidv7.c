#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uuidv7.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
	exit(1); } } while (0)

struct fake_clock {
	uint64_t ns;
};

static uint64_t fake_now(void *ctx)
{
	return ((struct fake_clock *)ctx)->ns;
}

static unsigned random_calls;

static bool counting_random(void *ctx, uint8_t *buf, size_t n)
{
	(void)ctx;
	random_calls++;
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 37 + random_calls);
	return true;
}

static bool failing_random(void *ctx, uint8_t *buf, size_t n)
{
	(void)ctx; (void)buf; (void)n;
	return false;
}

static void check_bits(const uint8_t u[16])
{
	CHECK((u[6] >> 4) == 7);
	CHECK((u[8] >> 6) == 2);
}

static void test_layout_and_timestamp(void)
{
	/* 2024-05-01T12:00:00.123456789Z */
	struct fake_clock c = { 1714564800123456789u };
	struct uuidv7_gen g;
	uuidv7_init_with(&g, fake_now, &c, NULL, NULL);
	uint8_t u[16];
	CHECK(uuidv7_next(&g, u));
	check_bits(u);
	CHECK(uuidv7_timestamp_ms(u) == 1714564800123u);
	/* 456789 ns of the ms is 1871 units of 1/4096 ms */
	unsigned fraction = (unsigned)(u[6] & 0x0f) << 8 | u[7];
	CHECK(fraction == 456789u * 4096 / 1000000);
	uuidv7_destroy(&g);
}

static void test_real_clock(void)
{
	struct uuidv7_gen g;
	uuidv7_init(&g);
	uint64_t before = uuidv7_system_clock(NULL) / 1000000;
	uint8_t prev[16] = { 0 };
	for (int i = 0; i < 100000; i++) {
		uint8_t u[16];
		CHECK(uuidv7_next(&g, u));
		check_bits(u);
		CHECK(memcmp(prev, u, 16) < 0);
		memcpy(prev, u, 16);
	}
	uint64_t after = uuidv7_system_clock(NULL) / 1000000;
	uint64_t ts = uuidv7_timestamp_ms(prev);
	/* 100k values may run the counter ahead of the clock by at most
	 * 100000 / 4096 ms */
	CHECK(ts >= before && ts <= after + 100000 / 4096 + 1);
	uuidv7_destroy(&g);
}

static void test_burst_within_one_ms(void)
{
	struct fake_clock c = { 1700000000000000000u };
	struct uuidv7_gen g;
	uuidv7_init_with(&g, fake_now, &c, counting_random, NULL);
	uint8_t prev[16], u[16];
	CHECK(uuidv7_next(&g, prev));
	for (int i = 0; i < 10000; i++) {
		CHECK(uuidv7_next(&g, u));
		check_bits(u);
		CHECK(memcmp(prev, u, 16) < 0);
		memcpy(prev, u, 16);
	}
	/* 10001 values in a frozen ms spill into the next two ms */
	CHECK(uuidv7_timestamp_ms(u) == 1700000000000u + 2);
	/* one random block serves 512 values */
	CHECK(random_calls == (10001 + 511) / 512);
	uuidv7_destroy(&g);
}

static void test_clock_backwards(void)
{
	struct fake_clock c = { 1700000000500000000u };
	struct uuidv7_gen g;
	uuidv7_init_with(&g, fake_now, &c, NULL, NULL);
	uint8_t prev[16], u[16];
	CHECK(uuidv7_next(&g, prev));
	uint64_t first_ms = uuidv7_timestamp_ms(prev);
	c.ns -= 3000000000u;
	for (int i = 0; i < 100; i++) {
		CHECK(uuidv7_next(&g, u));
		CHECK(memcmp(prev, u, 16) < 0);
		/* the smallest step: the fraction advances by one */
		unsigned pf = (unsigned)(prev[6] & 0x0f) << 8 | prev[7];
		unsigned uf = (unsigned)(u[6] & 0x0f) << 8 | u[7];
		CHECK(uf == (pf + 1) % 4096);
		memcpy(prev, u, 16);
		c.ns -= 1000;
	}
	CHECK(uuidv7_timestamp_ms(u) == first_ms);
	/* once the clock is past the counter again, the clock wins */
	c.ns = 1700000001000000000u;
	CHECK(uuidv7_next(&g, u));
	CHECK(uuidv7_timestamp_ms(u) == 1700000001000u);
	CHECK(u[7] == 0 && (u[6] & 0x0f) == 0);
	uuidv7_destroy(&g);
}

static void test_format(void)
{
	const uint8_t u[16] = { 0x01, 0x8f, 0x2a, 0x3b, 0x4c, 0x5d, 0x7e, 0x6f,
				0x80, 0x91, 0xa2, 0xb3, 0xc4, 0xd5, 0xe6, 0xf7 };
	char text[37] = { 0 };
	uuidv7_format(u, text);
	CHECK(strcmp(text, "018f2a3b-4c5d-7e6f-8091-a2b3c4d5e6f7") == 0);
}

static void test_random_failure(void)
{
	struct uuidv7_gen g;
	uuidv7_init_with(&g, NULL, NULL, failing_random, NULL);
	uint8_t u[16];
	char t[36];
	CHECK(!uuidv7_next(&g, u));
	CHECK(!uuidv7_next_text(&g, t));
	uuidv7_destroy(&g);
}

int main(void)
{
	test_layout_and_timestamp();
	test_real_clock();
	test_burst_within_one_ms();
	test_clock_backwards();
	test_format();
	test_random_failure();
	printf("ok\n");
	return 0;
}
