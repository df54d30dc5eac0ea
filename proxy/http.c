#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "build_config.h"
#include "gate.h"
#include "log.h"
#include "proxy.h"
#include "stats.h"

struct http_server {
	struct proxy *px;
	struct evhttp *http;
};

static void json_string(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			evbuffer_add_printf(b, "\\%c", ch);
		else if (ch < 0x20)
			evbuffer_add_printf(b, "\\u%04x", ch);
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static void json_field(struct evbuffer *b, const char *key, const char *value, bool comma)
{
	evbuffer_add_printf(b, "%s\"%s\":", comma ? "," : "", key);
	json_string(b, value);
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
		  struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

static void handle_readyz(struct http_server *h, struct evhttp_request *req, struct evbuffer *body)
{
	struct gate *g = h->px->gate;
	char text[600];
	if (gate_is_open(g)) {
		evbuffer_add_printf(body, "ready: gate open (%s)\n", gate_state_name(gate_state(g)));
		reply(req, 200, "OK", "text/plain; charset=utf-8", body);
		return;
	}
	gate_describe(g, text, sizeof(text));
	evbuffer_add_printf(body, "not ready: %s\n", text);
	reply(req, 503, "Service Unavailable", "text/plain; charset=utf-8", body);
}

static void status_migration(struct evbuffer *b, const struct migrate_snapshot *s)
{
	evbuffer_add_printf(b, ",\"migration\":{");
	json_field(b, "phase", migrate_phase_name(s->phase), false);
	json_field(b, "result", migrate_result_name(s->result), true);
	evbuffer_add_printf(b, ",\"version_before\":%d,\"tables_done\":%d,\"tables_total\":%d,"
			       "\"tables_incomplete\":%d,\"rows_done\":%lld,\"rows_total\":%lld,"
			       "\"rows_per_second\":%.1f,\"eta_seconds\":%.1f,\"lock_retries\":%lld,"
			       "\"replication_paused\":%s",
			    s->version_before, s->tables_done, s->tables_total, s->tables_incomplete,
			    (long long)s->rows_done, (long long)s->rows_total, s->rows_per_sec, s->eta_sec,
			    (long long)s->lock_retries, s->replication_paused ? "true" : "false");
	json_field(b, "current_table", s->current_table, true);
	evbuffer_add_printf(b, ",\"leader\":{\"pid\":%d", s->leader_pid);
	json_field(b, "host", s->leader_host, true);
	json_field(b, "application_name", s->leader_app, true);
	evbuffer_add_printf(b, "}");
	json_field(b, "error", s->error_message, true);
	json_field(b, "error_sqlstate", s->error_sqlstate, true);
	json_field(b, "message", s->message, true);
	evbuffer_add_printf(b, "}");
}

static void handle_status(struct http_server *h, struct evhttp_request *req, struct evbuffer *b)
{
	struct proxy *px = h->px;
	struct migrate_snapshot snap;
	struct client_counts cc;
	char text[600];
	gate_snapshot(px->gate, &snap);
	gate_describe(px->gate, text, sizeof(text));
	stats_count_clients(px, &cc);
	evbuffer_add_printf(b, "{");
	json_field(b, "version", UUIDGATE_VERSION, false);
	evbuffer_add_printf(b, ",\"gate\":{");
	json_field(b, "state", gate_state_name(gate_state(px->gate)), false);
	evbuffer_add_printf(b, ",\"open\":%s,\"open_after_ms\":%lld", gate_is_open(px->gate) ? "true" : "false",
			    (long long)gate_open_after_ms(px->gate));
	json_field(b, "description", text, true);
	evbuffer_add_printf(b, "}");
	status_migration(b, &snap);
	evbuffer_add_printf(b, ",\"clients\":{\"held\":%d,\"active\":%d,\"total\":%d,\"servers\":%d}",
			    cc.held, cc.active, px->nclients, cc.servers);
	evbuffer_add_printf(b, ",\"shutting_down\":%s}\n", px->state == PROXY_SHUTTING_DOWN ? "true" : "false");
	reply(req, 200, "OK", "application/json", b);
}

static void metric(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_gate(struct evbuffer *b, struct proxy *px)
{
	struct migrate_snapshot s;
	gate_snapshot(px->gate, &s);
	metric(b, "uuidgate_gate_state", "gauge", "1 for the gate's current state");
	for (int st = GATE_CONNECTING; st <= GATE_NOT_APPLICABLE; st++)
		evbuffer_add_printf(b, "uuidgate_gate_state{state=\"%s\"} %d\n", gate_state_name(st),
				    gate_state(px->gate) == (enum gate_state)st);
	metric(b, "uuidgate_gate_open", "gauge", "1 when clients of the migrated database pass");
	evbuffer_add_printf(b, "uuidgate_gate_open %d\n", gate_is_open(px->gate));
	metric(b, "uuidgate_gate_open_seconds", "gauge", "seconds from start to the gate opening (-1 while closed)");
	int64_t ms = gate_open_after_ms(px->gate);
	evbuffer_add_printf(b, "uuidgate_gate_open_seconds %.3f\n", ms < 0 ? -1.0 : (double)ms / 1000.0);
	metric(b, "uuidgate_migration_rows_done", "gauge", "rows backfilled so far");
	evbuffer_add_printf(b, "uuidgate_migration_rows_done %lld\n", (long long)s.rows_done);
	metric(b, "uuidgate_migration_rows_total", "gauge", "rows to backfill");
	evbuffer_add_printf(b, "uuidgate_migration_rows_total %lld\n", (long long)s.rows_total);
	metric(b, "uuidgate_migration_tables_done", "gauge", "tables complete");
	evbuffer_add_printf(b, "uuidgate_migration_tables_done %d\n", s.tables_done);
	metric(b, "uuidgate_migration_tables_total", "gauge", "tables to migrate");
	evbuffer_add_printf(b, "uuidgate_migration_tables_total %d\n", s.tables_total);
	metric(b, "uuidgate_migration_table_in_progress", "gauge", "1 for the table being migrated");
	if (s.current_table[0])
		evbuffer_add_printf(b, "uuidgate_migration_table_in_progress{table=\"%s\"} 1\n", s.current_table);
	metric(b, "uuidgate_migration_lock_retries_total", "counter", "lock timeouts retried by the migration");
	evbuffer_add_printf(b, "uuidgate_migration_lock_retries_total %lld\n", (long long)s.lock_retries);
}

static void metrics_clients(struct evbuffer *b, struct proxy *px)
{
	struct client_counts cc;
	stats_count_clients(px, &cc);
	metric(b, "uuidgate_client_connections", "gauge", "client connections by state");
	for (int st = CL_PEEK; st <= CL_CLOSING; st++)
		evbuffer_add_printf(b, "uuidgate_client_connections{state=\"%s\"} %d\n",
				    client_state_name((enum client_state)st), cc.by_state[st]);
	metric(b, "uuidgate_clients_held", "gauge", "clients waiting at the gate");
	evbuffer_add_printf(b, "uuidgate_clients_held %d\n", cc.held);
	metric(b, "uuidgate_server_connections", "gauge", "open server connections");
	evbuffer_add_printf(b, "uuidgate_server_connections %d\n", cc.servers);
	metric(b, "uuidgate_relayed_bytes_total", "counter", "bytes relayed");
	evbuffer_add_printf(b, "uuidgate_relayed_bytes_total{direction=\"client_to_server\"} %llu\n"
			       "uuidgate_relayed_bytes_total{direction=\"server_to_client\"} %llu\n",
			    (unsigned long long)cc.bytes_client_to_server, (unsigned long long)cc.bytes_server_to_client);
	metric(b, "uuidgate_relayed_messages_total", "counter", "protocol messages relayed");
	evbuffer_add_printf(b, "uuidgate_relayed_messages_total{direction=\"client_to_server\"} %llu\n"
			       "uuidgate_relayed_messages_total{direction=\"server_to_client\"} %llu\n",
			    (unsigned long long)cc.messages_client_to_server,
			    (unsigned long long)cc.messages_server_to_client);
}

static void metrics_counters(struct evbuffer *b, struct proxy *px)
{
	const struct proxy_stats *st = &px->stats;
	metric(b, "uuidgate_clients_accepted_total", "counter", "connections accepted");
	evbuffer_add_printf(b, "uuidgate_clients_accepted_total %llu\n", (unsigned long long)st->clients_accepted);
	metric(b, "uuidgate_logins_total", "counter", "successful logins");
	evbuffer_add_printf(b, "uuidgate_logins_total %llu\n", (unsigned long long)st->logins);
	metric(b, "uuidgate_login_failures_total", "counter", "failed logins");
	evbuffer_add_printf(b, "uuidgate_login_failures_total %llu\n", (unsigned long long)st->login_failures);
	metric(b, "uuidgate_cancels_forwarded_total", "counter", "cancel requests forwarded to the server");
	evbuffer_add_printf(b, "uuidgate_cancels_forwarded_total %llu\n", (unsigned long long)st->cancels_forwarded);
	metric(b, "uuidgate_errors_total", "counter", "errors uuidgate sent to clients, by SQLSTATE");
	for (int i = 0; i < PROXY_MAX_ERROR_CODES && px->errors[i].sqlstate[0]; i++)
		evbuffer_add_printf(b, "uuidgate_errors_total{sqlstate=\"%s\"} %llu\n", px->errors[i].sqlstate,
				    (unsigned long long)px->errors[i].count);
	metric(b, "uuidgate_insert_rewrites_total", "counter", "INSERTs that got UUIDv7 values from uuidgate");
	evbuffer_add_printf(b, "uuidgate_insert_rewrites_total %llu\n", (unsigned long long)st->rewrite_statements);
	metric(b, "uuidgate_insert_uuid_values_total", "counter", "UUIDv7 values uuidgate generated for INSERTs");
	evbuffer_add_printf(b, "uuidgate_insert_uuid_values_total %llu\n", (unsigned long long)st->rewrite_values);
	metric(b, "uuidgate_insert_passed_total", "counter", "INSERTs passed through unchanged, by reason");
	evbuffer_add_printf(b, "uuidgate_insert_passed_total{reason=\"session_settings\"} %llu\n"
			       "uuidgate_insert_passed_total{reason=\"not_certain\"} %llu\n",
			    (unsigned long long)st->rewrite_passed_settings,
			    (unsigned long long)st->rewrite_passed_uncertain);
	metric(b, "uuidgate_build_info", "gauge", "build information");
	evbuffer_add_printf(b, "uuidgate_build_info{version=\"%s\"} 1\n", UUIDGATE_VERSION);
}

static void handle_metrics(struct http_server *h, struct evhttp_request *req, struct evbuffer *b)
{
	metrics_gate(b, h->px);
	metrics_clients(b, h->px);
	metrics_counters(b, h->px);
	reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *h = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evbuffer *body = evbuffer_new();
	if (!body) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	if (!path)
		path = "/";
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evbuffer_add_printf(body, "only GET\n");
		reply(req, 405, "Method Not Allowed", "text/plain", body);
	} else if (strcmp(path, "/livez") == 0 || strcmp(path, "/healthz") == 0) {
		evbuffer_add_printf(body, "ok\n");
		reply(req, 200, "OK", "text/plain", body);
	} else if (strcmp(path, "/readyz") == 0) {
		handle_readyz(h, req, body);
	} else if (strcmp(path, "/status") == 0) {
		handle_status(h, req, body);
	} else if (strcmp(path, "/metrics") == 0) {
		handle_metrics(h, req, body);
	} else {
		evbuffer_add_printf(body, "not found; try /livez, /readyz, /status, /metrics\n");
		reply(req, 404, "Not Found", "text/plain", body);
	}
	evbuffer_free(body);
}

struct http_server *http_start(struct proxy *px, const char *listen, char *err, size_t errlen)
{
	char addr[256];
	const char *colon = strrchr(listen, ':');
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || *end || port < 1 || port > 65535 || (size_t)(colon - listen) >= sizeof(addr)) {
		snprintf(err, errlen, "http_listen: \"%s\" is not ADDR:PORT (e.g. 127.0.0.1:8080)", listen);
		return NULL;
	}
	memcpy(addr, listen, (size_t)(colon - listen));
	addr[colon - listen] = '\0';
	struct http_server *h = calloc(1, sizeof(*h));
	if (!h || !(h->http = evhttp_new(px->base))) {
		free(h);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->px = px;
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_gencb(h->http, on_request, h);
	evhttp_set_timeout(h->http, 10);
	if (!evhttp_bind_socket_with_handle(h->http, *addr ? addr : "0.0.0.0", (ev_uint16_t)port)) {
		snprintf(err, errlen, "http_listen %s: cannot bind", listen);
		http_free(h);
		return NULL;
	}
	log_event(LOG_INFO, "http_listening", 0, NULL, "http_listen", listen, LOG_KV_END);
	return h;
}

void http_free(struct http_server *h)
{
	if (!h)
		return;
	evhttp_free(h->http);
	free(h);
}
