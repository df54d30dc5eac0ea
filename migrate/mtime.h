/* Clocks and interruptible sleeps for the migration's loops. */
#ifndef UUIDGATE_MTIME_H
#define UUIDGATE_MTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

int64_t mtime_now_ms(void);      /* monotonic */
int64_t mtime_wall_ms(void);     /* Unix epoch */
/* Sleeps up to ms in small steps; false when *stop was raised meanwhile. */
bool mtime_sleep(int64_t ms, atomic_bool *stop);
/* Uniform in [lo, hi]; thread-safe. */
int64_t mtime_jitter(int64_t lo, int64_t hi);

#endif
