#include "mlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static const char *mlog_level_name(enum migrate_log_level level)
{
	switch (level) {
	case MIGRATE_LOG_DEBUG: return "debug";
	case MIGRATE_LOG_INFO: return "info";
	case MIGRATE_LOG_WARNING: return "warning";
	case MIGRATE_LOG_ERROR: return "error";
	}
	return "?";
}

void mlog(const struct migrate_options *opt, enum migrate_log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (level == MIGRATE_LOG_DEBUG && (opt->quiet || !(opt->log || opt->verbose)))
		return;
	if (level == MIGRATE_LOG_INFO && opt->quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (opt->log) {
		opt->log(opt->log_ctx, level, msg);
		return;
	}
	/* One fprintf per line so lines of parallel workers do not interleave. */
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ migrate %s: %s\n", stamp, ts.tv_nsec / 1000000,
		mlog_level_name(level), msg);
}
