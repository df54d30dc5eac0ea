#include "gate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "proxy.h"

#define GATE_POLL_MS 100
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 60000
/* A permanent failure (permission denied, duplicate values, wrong column
 * type) will not fix itself: retry rarely, or at once on RELOAD. */
#define RETRY_PERMANENT_MS (5 * 60 * 1000)

struct gate {
	struct proxy *px;
	enum gate_state state;
	bool open;
	struct migrate_progress progress;
	struct migrate_options opt;
	char *conninfo;
	char *prefix;
	pthread_t thread;
	bool thread_running;
	atomic_bool thread_done;
	int exit_code;
	struct event *poll_timer;
	struct event *retry_timer;
	int done_fd;                 /* the engine thread signals its end here */
	struct event *done_event;
	int failures;
	bool stopping;
	struct timeval started;
	int64_t open_after_ms;
	int64_t opened_at_ms;
	char reason[600];
};

const char *gate_state_name(enum gate_state s)
{
	static const char *const names[] = { "connecting", "migrating", "ready", "failed", "not_applicable" };
	return names[s];
}

static int64_t ms_since(const struct timeval *t)
{
	struct timeval now, d;
	gettimeofday(&now, NULL);
	timersub(&now, t, &d);
	return (int64_t)d.tv_sec * 1000 + d.tv_usec / 1000;
}

static void engine_log(void *ctx, enum migrate_log_level level, const char *msg)
{
	(void)ctx;
	static const enum log_level map[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR };
	log_event(map[level], "migrate", 0, NULL, "msg", msg, LOG_KV_END);
}

static void *engine_thread(void *arg)
{
	struct gate *g = arg;
	g->exit_code = migrate_run(&g->opt, MIGRATE_UP, &g->progress);
	atomic_store(&g->thread_done, true);
	uint64_t one = 1;
	/* Wakes the loop at once, so a database already at 40 opens the gate
	 * without waiting for the next poll. */
	if (write(g->done_fd, &one, sizeof(one)) < 0)
		return NULL;
	return NULL;
}

static void set_state(struct gate *g, enum gate_state s)
{
	if (g->state == s)
		return;
	g->state = s;
	log_event(LOG_INFO, "gate_state", 0, NULL, "state", gate_state_name(s), LOG_KV_END);
}

static void open_gate(struct gate *g, const char *why)
{
	if (g->open)
		return;
	g->open = true;
	g->open_after_ms = ms_since(&g->started);
	struct timeval now;
	gettimeofday(&now, NULL);
	g->opened_at_ms = (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
	char ms[32];
	snprintf(ms, sizeof(ms), "%lld", (long long)g->open_after_ms);
	log_event(LOG_INFO, "gate_open", 0, NULL, "state", gate_state_name(g->state), "after_ms", ms,
		  "msg", why, LOG_KV_END);
	proxy_gate_opened(g->px);
}

static void configure_engine(struct gate *g)
{
	const struct ug_config *cfg = g->px->cfg;
	free(g->conninfo);
	free(g->prefix);
	g->conninfo = strdup(*cfg->migrate_upstream ? cfg->migrate_upstream : cfg->upstream);
	g->prefix = strdup(cfg->migrate_prefix);
	migrate_options_init(&g->opt);
	g->opt.conninfo = g->conninfo;
	g->opt.prefix = g->prefix;
	g->opt.lock_timeout_ms = (int)cfg->migrate_lock_timeout_ms;
	g->opt.batch_time_ms = (int)cfg->migrate_batch_time_ms;
	g->opt.batch_pause_ms = (int)cfg->migrate_batch_pause_ms;
	g->opt.workers = cfg->migrate_workers;
	g->opt.max_replication_lag_ms = (int)cfg->migrate_max_replication_lag_ms;
	g->opt.repair = cfg->migrate_repair;
	g->opt.log = engine_log;
	g->opt.log_ctx = g;
}

static void start_engine(struct gate *g)
{
	configure_engine(g);
	migrate_progress_destroy(&g->progress);
	migrate_progress_init(&g->progress);
	atomic_store(&g->thread_done, false);
	if (pthread_create(&g->thread, NULL, engine_thread, g) != 0) {
		snprintf(g->reason, sizeof(g->reason), "cannot start the migration thread");
		set_state(g, GATE_FAILED);
		return;
	}
	g->thread_running = true;
	set_state(g, GATE_CONNECTING);
	struct timeval tv = { 0, GATE_POLL_MS * 1000 };
	evtimer_add(g->poll_timer, &tv);
}

static void schedule_retry(struct gate *g, bool transient)
{
	int64_t ms = RETRY_PERMANENT_MS;
	if (transient) {
		ms = RETRY_FIRST_MS;
		for (int i = 1; i < g->failures && ms < RETRY_MAX_MS; i++)
			ms *= 2;
		if (ms > RETRY_MAX_MS)
			ms = RETRY_MAX_MS;
	}
	char after[32];
	snprintf(after, sizeof(after), "%lld", (long long)ms);
	log_event(LOG_WARNING, "migration_retry", 0, NULL, "after_ms", after,
		  "kind", transient ? "transient" : "permanent", LOG_KV_END);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(g->retry_timer, &tv);
}

static void engine_failed(struct gate *g, const struct migrate_snapshot *snap)
{
	g->failures++;
	snprintf(g->reason, sizeof(g->reason), "%s%s%s", snap->error_message[0] ? snap->error_message : "migration failed",
		 snap->error_sqlstate[0] ? " SQLSTATE " : "", snap->error_sqlstate);
	set_state(g, GATE_FAILED);
	log_event(LOG_ERROR, "migration_failed", 0, NULL, "msg", g->reason, LOG_KV_END);
	switch (g->px->cfg->on_migration_failure) {
	case ON_FAILURE_EXIT:
		proxy_exit(g->px, 1);
		break;
	case ON_FAILURE_OPEN:
		log_event(LOG_WARNING, "gate_forced_open", 0, NULL, "msg",
			  "opening the gate although the migration failed (on_migration_failure = open)", LOG_KV_END);
		open_gate(g, "migration failed; on_migration_failure = open");
		break;
	default:
		schedule_retry(g, snap->error_transient);
	}
}

static void engine_finished(struct gate *g)
{
	struct migrate_snapshot snap;
	pthread_join(g->thread, NULL);
	g->thread_running = false;
	migrate_progress_read(&g->progress, &snap);
	if (g->stopping && g->exit_code != MIGRATE_EXIT_DONE) {
		log_event(LOG_INFO, "migration_stopped", 0, NULL, "msg", "stopped at a safe point; the next start resumes",
			  LOG_KV_END);
		return;
	}
	if (g->exit_code == MIGRATE_EXIT_DONE) {
		g->failures = 0;
		g->reason[0] = '\0';
		set_state(g, GATE_READY);
		open_gate(g, snap.message[0] ? snap.message : "migration complete");
	} else if (g->exit_code == MIGRATE_EXIT_NOT_APPLICABLE) {
		snprintf(g->reason, sizeof(g->reason), "%s", snap.message[0] ? snap.message : "V40 does not apply");
		set_state(g, GATE_NOT_APPLICABLE);
		log_event(LOG_WARNING, "migration_not_applicable", 0, NULL, "msg", g->reason, LOG_KV_END);
		if (g->px->cfg->on_not_applicable == NOT_APPLICABLE_OPEN)
			open_gate(g, g->reason);
	} else {
		engine_failed(g, &snap);
	}
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct gate *g = arg;
	(void)fd;
	(void)what;
	if (!g->thread_running)
		return;
	if (atomic_load(&g->thread_done)) {
		engine_finished(g);
		return;
	}
	struct migrate_snapshot snap;
	migrate_progress_read(&g->progress, &snap);
	if (snap.phase != MIGRATE_PHASE_IDLE && snap.phase != MIGRATE_PHASE_CONNECTING)
		set_state(g, GATE_MIGRATING);
	proxy_gate_progress(g->px);
	struct timeval tv = { 0, GATE_POLL_MS * 1000 };
	evtimer_add(g->poll_timer, &tv);
}

static void on_engine_done(evutil_socket_t fd, short what, void *arg)
{
	struct gate *g = arg;
	uint64_t n;
	(void)what;
	if (read(fd, &n, sizeof(n)) < 0)
		return;
	if (g->thread_running && atomic_load(&g->thread_done)) {
		evtimer_del(g->poll_timer);
		engine_finished(g);
	}
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_engine(arg);
}

struct gate *gate_new(struct proxy *px)
{
	struct gate *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->px = px;
	g->open_after_ms = -1;
	g->done_fd = -1;
	migrate_progress_init(&g->progress);
	g->poll_timer = evtimer_new(px->base, on_poll, g);
	g->retry_timer = evtimer_new(px->base, on_retry, g);
	g->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->done_fd >= 0)
		g->done_event = event_new(px->base, g->done_fd, EV_READ | EV_PERSIST, on_engine_done, g);
	if (!g->poll_timer || !g->retry_timer || !g->done_event || event_add(g->done_event, NULL) != 0) {
		gate_free(g);
		return NULL;
	}
	return g;
}

void gate_start(struct gate *g)
{
	gettimeofday(&g->started, NULL);
	if (!g->px->cfg->migrate_on_start) {
		set_state(g, GATE_READY);
		open_gate(g, "migrate_on_start = no");
		return;
	}
	start_engine(g);
}

void gate_request_stop(struct gate *g)
{
	g->stopping = true;
	evtimer_del(g->retry_timer);
	if (g->thread_running)
		migrate_progress_request_stop(&g->progress);
}

void gate_stop(struct gate *g)
{
	if (!g || !g->thread_running)
		return;
	migrate_progress_request_stop(&g->progress);
	pthread_join(g->thread, NULL);
	g->thread_running = false;
}

void gate_free(struct gate *g)
{
	if (!g)
		return;
	gate_stop(g);
	if (g->poll_timer)
		event_free(g->poll_timer);
	if (g->retry_timer)
		event_free(g->retry_timer);
	if (g->done_event)
		event_free(g->done_event);
	if (g->done_fd >= 0)
		close(g->done_fd);
	migrate_progress_destroy(&g->progress);
	free(g->conninfo);
	free(g->prefix);
	free(g);
}

void gate_reload(struct gate *g)
{
	if (g->state == GATE_FAILED && !g->thread_running && evtimer_pending(g->retry_timer, NULL)) {
		evtimer_del(g->retry_timer);
		start_engine(g);
	}
}

enum gate_state gate_state(const struct gate *g)
{
	return g->state;
}

bool gate_is_open(const struct gate *g)
{
	return g->open;
}

int64_t gate_opened_at_ms(const struct gate *g)
{
	return g->opened_at_ms;
}

int64_t gate_open_after_ms(const struct gate *g)
{
	return g->open_after_ms;
}

bool gate_guards(const struct gate *g, const char *database)
{
	const struct proxy *px = g->px;
	const char *migrated = px->upstream->dbname;
	/* Without a database in upstream, libpq connects to the user's
	 * database; the gate then guards every client. */
	if (migrated && strcmp(database, migrated) != 0)
		return false;
	if (px->paused)
		return true;
	return !g->open && px->cfg->gate_mode != GATE_MODE_OFF;
}

void gate_snapshot(struct gate *g, struct migrate_snapshot *out)
{
	migrate_progress_read(&g->progress, out);
}

void gate_describe(struct gate *g, char *buf, size_t len)
{
	struct migrate_snapshot s;
	migrate_progress_read(&g->progress, &s);
	if (g->px->paused) {
		snprintf(buf, len, "uuidgate is paused by its administrator (RESUME on the admin console)");
		return;
	}
	if (g->state == GATE_FAILED) {
		snprintf(buf, len, "phoenix_kit V40 migration failed (retrying): %s", g->reason);
		return;
	}
	if (g->state == GATE_NOT_APPLICABLE) {
		snprintf(buf, len, "phoenix_kit V40 migration does not apply: %s", g->reason);
		return;
	}
	if (g->state == GATE_READY) {
		snprintf(buf, len, "phoenix_kit V40 migration complete; the gate is open");
		return;
	}
	if (g->open) {
		snprintf(buf, len, "the gate is open although the migration failed (on_migration_failure = open): %s",
			 g->reason);
		return;
	}
	if (s.phase == MIGRATE_PHASE_WAITING_LOCK) {
		snprintf(buf, len, "phoenix_kit V40 migration in progress: waiting for leader (pid %d, host %s)",
			 s.leader_pid, s.leader_host[0] ? s.leader_host : "?");
		return;
	}
	int pct = s.rows_total > 0 ? (int)(s.rows_done * 100 / s.rows_total) : 0;
	char eta[32] = "unknown";
	if (s.eta_sec >= 0)
		snprintf(eta, sizeof(eta), "%.0fs", s.eta_sec);
	snprintf(buf, len, "phoenix_kit V40 migration in progress: %d/%d tables, %d%% of rows, ETA %s",
		 s.tables_done, s.tables_total, pct, eta);
}
