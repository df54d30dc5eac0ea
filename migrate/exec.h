/* Running one statement of a step the online way: strong locks only under a
 * short lock_timeout with retries; waits without timeouts but visible. */
#ifndef UUIDGATE_EXEC_H
#define UUIDGATE_EXEC_H

#include "runner.h"

/* A statement (or ;-separated statements, run as one transaction) taking an
 * ACCESS EXCLUSIVE lock: each attempt waits at most lock_timeout, so the
 * application's queries never queue behind it for longer; lock_not_available
 * and deadlocks are retried with capped exponential backoff and jitter, and
 * the sessions in the way are named in the log when it keeps failing. */
bool exec_locked(struct runner *r, const char *table, const char *what, const char *sql,
		 struct mg_error *err);

/* A statement that waits without blocking others (CREATE INDEX
 * CONCURRENTLY, VALIDATE, VACUUM): no lock or statement timeout; what it
 * waits for is logged every progress interval. */
bool exec_waiting(struct runner *r, const char *table, const char *what, const char *sql,
		  struct mg_error *err);

/* Capped exponential backoff with jitter, in ms, for attempt 1, 2, ... */
int64_t exec_backoff_ms(int attempt);

#endif
