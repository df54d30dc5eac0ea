/* What the C unit tests share: a CHECK that counts failures instead of
 * aborting (so one run reports every failed case), and reproducible noise. */
#ifndef UUIDGATE_CHECK_H
#define UUIDGATE_CHECK_H

#include <stdint.h>
#include <stdio.h>

static int failures;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,   \
			        __LINE__, #cond);                                \
			failures++;                                              \
		}                                                                \
	} while (0)

/* xorshift32: the same sequence on every run, without a seed file. */
static inline uint32_t check_rng(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

#endif
