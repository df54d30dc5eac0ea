/* One line per event, logfmt or JSON, to stderr and optionally a file. */
#ifndef UUIDGATE_LOG_H
#define UUIDGATE_LOG_H

#include <stdint.h>

#include "config.h"

bool log_open(const struct ug_config *cfg, char *err, size_t errlen);
void log_close(void);
/* Re-reads level, format and file from cfg (SIGHUP). */
bool log_reconfigure(const struct ug_config *cfg, char *err, size_t errlen);
bool log_enabled(enum log_level level);

/* An event with a connection id (0 for none), the peer address (or NULL),
 * and key/value string pairs terminated by NULL. The "msg" key is ordinary. */
void log_event(enum log_level level, const char *event, uint64_t conn, const char *addr, ...);

#define LOG_KV_END ((const char *)0)

#endif
