/* Replication lag: batches pause while a streaming replica replays too far
 * behind (in time, or in WAL not yet replayed) or an active replication slot
 * holds too much WAL. */
#ifndef UUIDGATE_LAG_H
#define UUIDGATE_LAG_H

#include "runner.h"

struct lag_watch {
	bool warned;          /* the role cannot read the views: said once */
	bool paused;
	int64_t last_check_ms;
};

/* Checks at most once a second on conn; true while batches should pause. */
bool lag_should_pause(struct runner *r, PGconn *conn, struct lag_watch *w);

#endif
