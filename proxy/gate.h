/* The gate: runs the V40 migration in a background thread at start and keeps
 * clients of the migrated database waiting until it is complete. The event
 * loop never blocks on the migration; it polls the engine's progress. */
#ifndef UUIDGATE_GATE_H
#define UUIDGATE_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate.h"

struct proxy;

enum gate_state {
	GATE_CONNECTING,       /* the engine is reaching the database */
	GATE_MIGRATING,
	GATE_READY,
	GATE_FAILED,
	GATE_NOT_APPLICABLE,   /* V40 does not apply to this database */
};

struct gate;

struct gate *gate_new(struct proxy *px);
/* Starts the migration (migrate_on_start) or opens the gate at once. */
void gate_start(struct gate *g);
/* Asks a running migration to stop at a safe point, without waiting. */
void gate_request_stop(struct gate *g);
/* Asks a running migration to stop at a safe point and waits for it. */
void gate_stop(struct gate *g);
void gate_free(struct gate *g);
/* RELOAD: a failed migration is retried now. */
void gate_reload(struct gate *g);

enum gate_state gate_state(const struct gate *g);
const char *gate_state_name(enum gate_state s);
bool gate_is_open(const struct gate *g);
/* Whether clients of `database` wait at the gate. */
bool gate_guards(const struct gate *g, const char *database);
/* "phoenix_kit V40 migration in progress: 14/33 tables, 61% of rows, ETA 40s" */
void gate_describe(struct gate *g, char *buf, size_t len);
/* The engine's latest progress. */
void gate_snapshot(struct gate *g, struct migrate_snapshot *out);
/* When the gate opened, in Unix milliseconds (0 while closed). */
int64_t gate_opened_at_ms(const struct gate *g);
/* Milliseconds from start to the gate opening, or -1 while closed. */
int64_t gate_open_after_ms(const struct gate *g);

#endif
