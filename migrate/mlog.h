/* Log lines of the migration: through the embedder's callback, else stderr. */
#ifndef UUIDGATE_MLOG_H
#define UUIDGATE_MLOG_H

#include "migrate.h"

void mlog(const struct migrate_options *opt, enum migrate_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define mlog_debug(opt, ...) mlog(opt, MIGRATE_LOG_DEBUG, __VA_ARGS__)
#define mlog_info(opt, ...) mlog(opt, MIGRATE_LOG_INFO, __VA_ARGS__)
#define mlog_warn(opt, ...) mlog(opt, MIGRATE_LOG_WARNING, __VA_ARGS__)
#define mlog_error(opt, ...) mlog(opt, MIGRATE_LOG_ERROR, __VA_ARGS__)

#endif
