#include "proxy.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <event2/dns.h>

#include "build_config.h"

#include "auth.h"
#include "authfile.h"
#include "cancel.h"
#include "client.h"
#include "gate.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "message.h"
#include "notify.h"
#include "tls.h"
#include "uuidtables.h"

/* Reads and parses auth_file; the users loaded before stay in force when
 * the new file is broken. */
static bool load_auth_file(struct proxy *px, char *err, size_t errlen)
{
	const char *path = px->cfg->auth_file;
	if (!*path) {
		authfile_free(px->authfile);
		px->authfile = NULL;
		return true;
	}
	FILE *f = fopen(path, "r");
	struct stat st;
	if (!f || fstat(fileno(f), &st) != 0) {
		snprintf(err, errlen, "auth_file: cannot read %s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return false;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH))
		log_event(LOG_WARNING, "auth_file_permissions", 0, NULL, "path", path, "msg",
			  "auth_file is readable by other users; chmod 600 it", LOG_KV_END);
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = malloc(cap);
	if (buf)
		len = fread(buf, 1, cap - 1, f);
	fclose(f);
	struct authfile *af = NULL;
	char perr[256] = "";
	enum authfile_status rc = buf ? authfile_parse(buf, len, &af, perr, sizeof(perr)) : AUTHFILE_NO_MEMORY;
	free(buf);
	if (rc != AUTHFILE_OK) {
		snprintf(err, errlen, "auth_file %s: %s", path, rc == AUTHFILE_SYNTAX ? perr : "out of memory");
		return false;
	}
	authfile_free(px->authfile);
	px->authfile = af;
	auth_forget_derived_secrets();
	return true;
}

const char *proxy_user_secret(struct proxy *px, const char *user)
{
	return px->authfile ? authfile_lookup(px->authfile, user) : NULL;
}

static void check_shutdown_done(struct proxy *px)
{
	if (px->state == PROXY_SHUTTING_DOWN && px->nclients == 0)
		event_base_loopexit(px->base, NULL);
}

void proxy_exit(struct proxy *px, int code)
{
	px->exit_code = code;
	event_base_loopexit(px->base, NULL);
}

void proxy_count_error(struct proxy *px, const char *sqlstate)
{
	for (int i = 0; i < PROXY_MAX_ERROR_CODES; i++) {
		struct proxy_error_count *e = &px->errors[i];
		if (!e->sqlstate[0])
			snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", sqlstate);
		if (strcmp(e->sqlstate, sqlstate) == 0) {
			e->count++;
			return;
		}
	}
}

bool proxy_insert_uuid_active(struct proxy *px)
{
	const struct ug_config *cfg = px->cfg;
	if (cfg->insert_uuid == INSERT_UUID_ALWAYS)
		return true;
	if (cfg->insert_uuid == INSERT_UUID_OFF || !gate_is_open(px->gate))
		return false;
	struct timeval now;
	event_base_gettimeofday_cached(px->base, &now);
	int64_t opened = gate_opened_at_ms(px->gate);
	int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
	if (now_ms - opened >= cfg->insert_uuid_window_ms)
		return false;
	int64_t until;
	return !*cfg->insert_uuid_until || !config_parse_timestamp(cfg->insert_uuid_until, &until) ||
	       now.tv_sec < until;
}

void proxy_resume(struct proxy *px)
{
	px->paused = false;
	if (gate_is_open(px->gate))
		proxy_gate_opened(px);
}

void proxy_gate_opened(struct proxy *px)
{
	if (px->cfg->insert_uuid != INSERT_UUID_OFF)
		uuid_tables_refresh(px->tables, "gate open");
	struct client *c = px->clients, *next;
	for (; c; c = next) {
		next = client_next(c);
		client_gate_opened(c);
	}
	char status[512];
	gate_describe(px->gate, status, sizeof(status));
	notify_ready(gate_state(px->gate) == GATE_READY ? "gate open: migration complete" : status);
}

void proxy_gate_progress(struct proxy *px)
{
	/* systemd reads notifications at its own pace and a full socket would
	 * block the loop: say something only when the text changes, at most
	 * every second, and repeat it before the extended start timeout runs
	 * out. */
	static char last[512];
	static struct timeval last_sent;
	char status[512];
	struct timeval now, d;
	gate_describe(px->gate, status, sizeof(status));
	event_base_gettimeofday_cached(px->base, &now);
	timersub(&now, &last_sent, &d);
	bool changed = strcmp(status, last) != 0;
	if ((changed && d.tv_sec >= 1) || d.tv_sec >= 20) {
		notify_status(status, 60);
		snprintf(last, sizeof(last), "%s", status);
		last_sent = now;
	}
}

void proxy_client_gone(struct proxy *px)
{
	check_shutdown_done(px);
}

/* Closing a client may free it and others may follow in the list: collect
 * the next pointer first. */
static void close_clients(struct proxy *px, bool only_idle, const char *sqlstate, const char *message)
{
	struct client *c = px->clients, *next;
	for (; c; c = next) {
		next = client_next(c);
		if (!only_idle || client_is_idle(c))
			client_terminate(c, sqlstate, message);
	}
}

void proxy_close_idle_if_draining(struct proxy *px, struct client *c)
{
	if (px->state == PROXY_SHUTTING_DOWN && px->fast_shutdown && client_is_idle(c))
		client_terminate(c, SQLSTATE_ADMIN_SHUTDOWN, "terminating connection due to administrator command");
}

static void on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	(void)fd;
	(void)what;
	log_event(LOG_WARNING, "shutdown_timeout", 0, NULL, "msg", "closing the remaining clients", LOG_KV_END);
	close_clients(px, false, SQLSTATE_ADMIN_SHUTDOWN, "terminating connection due to administrator command");
	event_base_loopexit(px->base, NULL);
}

void proxy_shutdown(struct proxy *px, bool fast, const char *signame)
{
	if (px->state == PROXY_SHUTTING_DOWN) {
		log_event(LOG_WARNING, "shutdown_now", 0, NULL, "signal", signame, LOG_KV_END);
		close_clients(px, false, SQLSTATE_ADMIN_SHUTDOWN, "terminating connection due to administrator command");
		event_base_loopbreak(px->base);
		return;
	}
	px->state = PROXY_SHUTTING_DOWN;
	px->fast_shutdown = fast;
	notify_stopping();
	gate_request_stop(px->gate);
	char clients[16];
	snprintf(clients, sizeof(clients), "%d", px->nclients);
	log_event(LOG_INFO, "shutdown", 0, NULL, "signal", signame, "mode", fast ? "fast" : "smart",
		  "clients", clients, LOG_KV_END);
	int64_t ms = px->cfg->shutdown_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(px->shutdown_timer, &tv);
	/* Held clients have no transaction to finish. */
	struct client *c = px->clients, *next;
	for (; c; c = next) {
		next = client_next(c);
		if (client_get_state(c) == CL_GATE)
			client_terminate(c, SQLSTATE_CANNOT_CONNECT_NOW, "uuidgate is shutting down");
	}
	/* Fast: sessions that are idle now go at once; busy ones as soon as their
	 * current transaction ends (proxy_close_idle_if_draining). */
	if (fast)
		close_clients(px, true, SQLSTATE_ADMIN_SHUTDOWN, "terminating connection due to administrator command");
	check_shutdown_done(px);
}

void proxy_reload(struct proxy *px)
{
	struct ug_config fresh;
	char err[CONFIG_ERR_LEN], not_reloaded[512];
	config_init(&fresh);
	if (!config_load(&fresh, px->config_path, err, sizeof(err)) ||
	    !config_apply_overrides(&fresh, &px->flags, err, sizeof(err)) ||
	    !config_validate(&fresh, err, sizeof(err))) {
		log_event(LOG_ERROR, "reload_failed", 0, NULL, "msg", err, LOG_KV_END);
		config_free(&fresh);
		return;
	}
	bool upstream_changed = strcmp(fresh.upstream, px->cfg->upstream) != 0;
	struct upstream *up = NULL;
	if (upstream_changed && !(up = upstream_new(fresh.upstream, err, sizeof(err)))) {
		log_event(LOG_ERROR, "reload_failed", 0, NULL, "msg", err, LOG_KV_END);
		config_free(&fresh);
		return;
	}
	config_apply_reload(px->cfg, &fresh, not_reloaded, sizeof(not_reloaded));
	config_free(&fresh);
	if (up) {
		/* Connections being set up still use the old one: keep it. */
		up->retired = px->upstream;
		px->upstream = up;
	}
	if (!log_reconfigure(px->cfg, err, sizeof(err)))
		log_event(LOG_ERROR, "reload_failed", 0, NULL, "msg", err, LOG_KV_END);
	if (!load_auth_file(px, err, sizeof(err)))
		log_event(LOG_ERROR, "reload_failed", 0, NULL, "msg", err, LOG_KV_END);
	gate_reload(px->gate);
	if (px->cfg->insert_uuid != INSERT_UUID_OFF)
		uuid_tables_refresh(px->tables, "reload");
	log_event(LOG_INFO, "reloaded", 0, NULL, "needs_restart", not_reloaded, LOG_KV_END);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct proxy *px = arg;
	(void)what;
	switch (sig) {
	case SIGHUP:
		proxy_reload(px);
		break;
	case SIGTERM:
		proxy_shutdown(px, false, "SIGTERM");
		break;
	case SIGINT:
		proxy_shutdown(px, true, "SIGINT");
		break;
	case SIGQUIT:
		log_event(LOG_WARNING, "shutdown_now", 0, NULL, "signal", "SIGQUIT", LOG_KV_END);
		event_base_loopbreak(px->base);
		break;
	}
}

static bool install_signals(struct proxy *px)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGQUIT };
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		px->signals[i] = evsignal_new(px->base, sigs[i], on_signal, px);
		if (!px->signals[i] || evsignal_add(px->signals[i], NULL) != 0)
			return false;
	}
	px->shutdown_timer = evtimer_new(px->base, on_shutdown_timeout, px);
	return px->shutdown_timer != NULL;
}

static bool write_pidfile(const char *path, char *err, size_t errlen)
{
	if (!*path)
		return true;
	FILE *f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "pidfile: cannot write %s: %s", path, strerror(errno));
		return false;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	return true;
}

struct proxy *proxy_new(struct ug_config *cfg, const char *config_path, const struct config_overrides *flags,
			char *err, size_t errlen)
{
	struct proxy *px = calloc(1, sizeof(*px));
	if (!px) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	px->cfg = cfg;
	px->config_path = config_path;
	px->flags = *flags;
	px->base = event_base_new();
	if (!px->base) {
		snprintf(err, errlen, "cannot create the event loop");
		goto fail;
	}
	px->dns = evdns_base_new(px->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!px->dns)
		px->dns = evdns_base_new(px->base, 0); /* no resolv.conf: /etc/hosts and numeric only */
	px->upstream = upstream_new(cfg->upstream, err, errlen);
	if (!px->upstream)
		goto fail;
	if (cfg->client_tls_sslmode != TLS_DISABLE &&
	    !(px->client_tls = tls_client_facing_ctx(cfg, err, errlen)))
		goto fail;
	if (!load_auth_file(px, err, errlen))
		goto fail;
	RAND_bytes(px->scram_mock_key, sizeof(px->scram_mock_key));
	if (!install_signals(px)) {
		snprintf(err, errlen, "cannot install signal handlers");
		goto fail;
	}
	if (!listener_open_all(px, err, errlen) || !write_pidfile(cfg->pidfile, err, errlen))
		goto fail;
	px->gate = gate_new(px);
	px->tables = uuid_tables_new(px);
	uuidv7_init(&px->uuidgen);
	if (!px->gate || !px->tables) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (*cfg->http_listen && !(px->http = http_start(px, cfg->http_listen, err, errlen)))
		goto fail;
	notify_init(px->base);
	return px;
fail:
	proxy_free(px);
	return NULL;
}

int proxy_run(struct proxy *px)
{
	char port[16], upstream[300];
	snprintf(port, sizeof(port), "%d", px->cfg->listen_port);
	upstream_describe(px->upstream, upstream, sizeof(upstream));
	log_event(LOG_INFO, "listening", 0, NULL, "listen_addr", px->cfg->listen_addr, "port", port,
		  "unix_socket", px->unix_socket_path, "upstream", upstream, "version", UUIDGATE_VERSION,
		  LOG_KV_END);
	gate_start(px->gate);
	event_base_dispatch(px->base);
	log_event(LOG_INFO, "stopped", 0, NULL, LOG_KV_END);
	return px->exit_code;
}

void proxy_free(struct proxy *px)
{
	if (!px)
		return;
	client_free_all(px);
	cancel_free_all();
	listener_close_all(px);
	http_free(px->http);
	gate_free(px->gate);
	uuid_tables_free(px->tables);
	uuidv7_destroy(&px->uuidgen);
	notify_free();
	for (size_t i = 0; i < sizeof(px->signals) / sizeof(px->signals[0]); i++)
		if (px->signals[i])
			event_free(px->signals[i]);
	if (px->shutdown_timer)
		event_free(px->shutdown_timer);
	if (px->cfg && *px->cfg->pidfile)
		unlink(px->cfg->pidfile);
	upstream_free(px->upstream);
	authfile_free(px->authfile);
	auth_forget_derived_secrets();
	if (px->client_tls)
		SSL_CTX_free(px->client_tls);
	if (px->dns)
		evdns_base_free(px->dns, 0);
	if (px->base)
		event_base_free(px->base);
	free(px);
}
