#include "mtime.h"

#include <stdlib.h>
#include <time.h>

int64_t mtime_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mtime_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool mtime_sleep(int64_t ms, atomic_bool *stop)
{
	int64_t end = mtime_now_ms() + ms;
	for (;;) {
		if (stop && atomic_load(stop))
			return false;
		int64_t left = end - mtime_now_ms();
		if (left <= 0)
			return true;
		if (left > 50)
			left = 50;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)left * 1000000 };
		nanosleep(&ts, NULL);
	}
}

int64_t mtime_jitter(int64_t lo, int64_t hi)
{
	static _Thread_local unsigned int seed;
	if (seed == 0)
		seed = (unsigned int)(mtime_wall_ms() ^ (int64_t)(uintptr_t)&seed);
	if (hi <= lo)
		return lo;
	return lo + (int64_t)(rand_r(&seed) % (int)(hi - lo + 1));
}
