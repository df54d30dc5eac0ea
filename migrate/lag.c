#include "lag.h"

#include <stdlib.h>

#include "mlog.h"
#include "mtime.h"
#include "progress.h"

/* replay_lag is NULL for a replica that has caught up and seen no new WAL;
 * a role without pg_read_all_stats sees rows with NULL positions. */
static const char lag_sql[] =
	"SELECT coalesce((SELECT max(extract(epoch FROM replay_lag) * 1000)::int8"
	"   FROM pg_stat_replication), 0),"
	" (SELECT count(*) FILTER (WHERE replay_lsn IS NULL) FROM pg_stat_replication),"
	" greatest(coalesce((SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(),"
	"   coalesce(confirmed_flush_lsn, restart_lsn)))::int8"
	"   FROM pg_replication_slots WHERE active), 0),"
	"  coalesce((SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::int8"
	"   FROM pg_stat_replication), 0))";

bool lag_should_pause(struct runner *r, PGconn *conn, struct lag_watch *w)
{
	const struct migrate_options *o = r->opt;
	struct mg_error err;
	if (o->max_replication_lag_ms <= 0 && o->max_replication_lag_bytes <= 0)
		return false;
	int64_t now = mtime_now_ms();
	if (now - w->last_check_ms < 1000)
		return w->paused;
	w->last_check_ms = now;
	mg_error_clear(&err);
	PGresult *res = db_query(conn, lag_sql, 0, NULL, &err);
	if (!res) {
		if (!w->warned)
			mlog_warn(o, "cannot read replication lag (%s); batches will not wait for"
				  " replicas (grant pg_monitor to the migration's role)", err.message);
		w->warned = true;
		return w->paused = false;
	}
	int64_t replay_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	int64_t hidden = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	int64_t slot_bytes = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	if (hidden > 0 && !w->warned) {
		mlog_warn(o, "cannot see the replay position of %lld replica(s); batches will not"
			  " wait for them (grant pg_monitor to the migration's role)", (long long)hidden);
		w->warned = true;
	}
	bool pause = (o->max_replication_lag_ms > 0 && replay_ms > o->max_replication_lag_ms) ||
		     (o->max_replication_lag_bytes > 0 && slot_bytes > o->max_replication_lag_bytes);
	if (pause != w->paused)
		mlog_info(o, pause ? "pausing batches: replica replay lag %lld ms, %lld bytes of WAL behind"
				   : "resuming batches: replica replay lag %lld ms, %lld bytes of WAL behind",
			  (long long)replay_ms, (long long)slot_bytes);
	w->paused = pause;
	progress_replication_paused(r->prog, pause);
	return pause;
}
