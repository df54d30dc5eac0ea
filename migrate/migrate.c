/* migrate_run(): one action from connection to result. */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "engine.h"
#include "mlog.h"
#include "mtime.h"
#include "progress.h"
#include "report.h"
#include "runner.h"

void migrate_options_init(struct migrate_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->prefix = "public";
	opt->lock_timeout_ms = 50;
	opt->batch_time_ms = 50;
	opt->batch_pause_ms = 0;
	opt->workers = 1;
	opt->max_replication_lag_ms = 10000;
	opt->max_replication_lag_bytes = (int64_t)1 << 30;
	opt->statement_timeout_ms = 10000;
	opt->skip_retries = 5;
	opt->lock_retry_limit = 0;
	opt->progress_interval_ms = 3000;
}

/* A progress object may be reused for retries: start from a clean slate. */
static void migrate_reset(struct migrate_progress *p)
{
	pthread_mutex_lock(&p->mu);
	memset(&p->snap, 0, sizeof(p->snap));
	p->snap.version_before = -1;
	p->snap.eta_sec = -1;
	p->snap.result = MIGRATE_RESULT_RUNNING;
	pthread_mutex_unlock(&p->mu);
}

/* Zero would mean "no timeout" to PostgreSQL: exactly what must not happen. */
static bool migrate_valid_options(const struct migrate_options *o, struct mg_error *err)
{
	const char *bad = NULL;
	if (!catalog_valid_prefix(o->prefix))
		bad = "prefix: a plain lower-case schema name is expected";
	else if (o->lock_timeout_ms < 1 || o->lock_timeout_ms > 60000)
		bad = "lock timeout: 1 to 60000 ms";
	else if (o->batch_time_ms < 1 || o->batch_time_ms > 60000)
		bad = "batch time: 1 to 60000 ms";
	else if (o->statement_timeout_ms < 100)
		bad = "statement timeout: at least 100 ms";
	else if (o->workers < 1 || o->workers > RUNNER_MAX_CONNS - 8)
		bad = "workers: 1 to 56";
	else if (o->batch_pause_ms < 0 || o->max_replication_lag_ms < 0 ||
		 o->max_replication_lag_bytes < 0 || o->skip_retries < 0 || o->lock_retry_limit < 0)
		bad = "negative value";
	else if (o->progress_interval_ms < 100)
		bad = "progress interval: at least 100 ms";
	if (bad)
		mg_error_set(err, "22023", false, "invalid option (%s)", bad);
	return bad == NULL;
}

static bool migrate_dispatch(struct runner *r, enum migrate_action action,
			     enum migrate_result *result, struct mg_error *err)
{
	bool ok = false;
	*result = MIGRATE_RESULT_DONE;
	switch (action) {
	case MIGRATE_STATUS:
		ok = report_status(r, stdout, err);
		break;
	case MIGRATE_PLAN:
		ok = report_plan(r, stdout, err);
		break;
	case MIGRATE_UP:
		ok = up_run(r, result, err);
		break;
	case MIGRATE_DOWN:
		ok = down_run(r, result, err);
		break;
	}
	fflush(stdout);
	if (!ok)
		*result = MIGRATE_RESULT_FAILED;
	return ok;
}

static int migrate_exit_code(enum migrate_result result)
{
	switch (result) {
	case MIGRATE_RESULT_DONE: return MIGRATE_EXIT_DONE;
	case MIGRATE_RESULT_NOT_APPLICABLE: return MIGRATE_EXIT_NOT_APPLICABLE;
	default: return MIGRATE_EXIT_FAILED;
	}
}

static void migrate_log_outcome(const struct migrate_options *opt, struct migrate_progress *p,
				enum migrate_result result, const struct mg_error *err)
{
	struct migrate_snapshot s;
	migrate_progress_read(p, &s);
	if (result == MIGRATE_RESULT_FAILED)
		mlog_error(opt, "failed: %s (SQLSTATE %s, %s)", err->message, err->sqlstate,
			   err->transient ? "transient: a later run may succeed as is"
					  : "permanent: needs an operator");
	else if (result == MIGRATE_RESULT_NOT_APPLICABLE)
		mlog_warn(opt, "not applicable: %s", s.message);
	else if (s.message[0])
		mlog_info(opt, "done: %s", s.message);
}

static void migrate_runner_init(struct runner *r, const struct migrate_options *opt,
				struct migrate_progress *p)
{
	memset(r, 0, sizeof(*r));
	r->opt = opt;
	r->prog = p;
	r->stop = &p->stop;
	r->start_ms = mtime_wall_ms();
	pthread_mutex_init(&r->conns_mu, NULL);
}

static void migrate_runner_free(struct runner *r)
{
	if (r->conn) {
		runner_untrack(r, r->conn);
		PQfinish(r->conn);
	}
	PQfinish(r->diag);
	free(r->rand_uuid_sql);
	pthread_mutex_destroy(&r->conns_mu);
}

static bool migrate_connect(struct runner *r, struct mg_error *err)
{
	progress_phase(r->prog, MIGRATE_PHASE_CONNECTING);
	r->conn = db_connect(r->opt, err);
	if (!r->conn)
		return false;
	runner_track(r, r->conn);
	progress_phase(r->prog, MIGRATE_PHASE_CHECKING);
	r->server_version = PQserverVersion(r->conn);
	return engine_check_server(r->server_version, err);
}

int migrate_run(const struct migrate_options *opt, enum migrate_action action,
		struct migrate_progress *progress)
{
	struct migrate_progress local;
	struct migrate_progress *p = progress;
	struct runner r;
	struct mg_error err;
	enum migrate_result result = MIGRATE_RESULT_FAILED;

	if (!p) {
		migrate_progress_init(&local);
		p = &local;
	}
	migrate_reset(p);
	mg_error_clear(&err);
	migrate_runner_init(&r, opt, p);
	if (!migrate_valid_options(opt, &err)) {
		result = MIGRATE_RESULT_FAILED;
	} else if (migrate_connect(&r, &err)) {
		migrate_dispatch(&r, action, &result, &err);
	}
	migrate_log_outcome(opt, p, result, &err);
	progress_finish(p, result, &err);
	migrate_runner_free(&r);
	if (p == &local)
		migrate_progress_destroy(&local);
	if (mg_error_is(&err, "22023"))
		return MIGRATE_EXIT_USAGE;
	return migrate_exit_code(result);
}
