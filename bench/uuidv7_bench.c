/* Prints how many UUIDv7 values one core draws per second, binary and text. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "uuidv7.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20000000;
	if (n <= 0)
		n = 20000000;
	struct uuidv7_gen g;
	uuidv7_init(&g);
	uint8_t u[UUIDV7_LEN];
	char text[UUIDV7_TEXT_LEN];
	unsigned sink = 0;

	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		if (!uuidv7_next(&g, u))
			return 1;
		sink += u[15];
	}
	double t1 = now_s();
	for (long i = 0; i < n; i++) {
		if (!uuidv7_next_text(&g, text))
			return 1;
		sink += (unsigned char)text[35];
	}
	double t2 = now_s();

	printf("uuidv7 binary: %.1f M values/s (%.1f ns each)\n",
	       (double)n / (t1 - t0) / 1e6, (t1 - t0) / (double)n * 1e9);
	printf("uuidv7 text:   %.1f M values/s (%.1f ns each)\n",
	       (double)n / (t2 - t1) / 1e6, (t2 - t1) / (double)n * 1e9);
	uuidv7_destroy(&g);
	return sink == 0xffffffffu;
}
