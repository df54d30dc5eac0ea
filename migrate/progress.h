/* Engine-side updates of struct migrate_progress (see migrate.h for the
 * reader side), and the periodic progress line. */
#ifndef UUIDGATE_PROGRESS_H
#define UUIDGATE_PROGRESS_H

#include "db.h"
#include "migrate.h"

void progress_phase(struct migrate_progress *p, enum migrate_phase phase);
void progress_leader(struct migrate_progress *p, int pid, const char *app, const char *host);
void progress_table(struct migrate_progress *p, const char *table, int done, int total);
void progress_rows_total(struct migrate_progress *p, int64_t delta);
void progress_rows_done(struct migrate_progress *p, int64_t delta);
void progress_lock_retry(struct migrate_progress *p);
void progress_replication_paused(struct migrate_progress *p, bool paused);
void progress_version(struct migrate_progress *p, int version);
void progress_incomplete(struct migrate_progress *p, int tables);
void progress_message(struct migrate_progress *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void progress_finish(struct migrate_progress *p, enum migrate_result result,
		     const struct mg_error *err);
/* Recomputes rows/s and ETA; call about once a second. */
void progress_sample(struct migrate_progress *p);
/* One human line: rows done/total, rate, ETA, lock retries. */
void progress_line(struct migrate_progress *p, char *buf, size_t len);

#endif
