#include "admin.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "client.h"
#include "config.h"
#include "gate.h"
#include "message.h"
#include "proxy.h"
#include "resultset.h"
#include "stats.h"

#define NUM_BUF 32

bool admin_is_console(const char *database)
{
	return strcmp(database, ADMIN_DATABASE) == 0;
}

bool admin_user_allowed(const struct proxy *px, const char *user)
{
	const char *list = px->cfg->admin_users;
	size_t n = strlen(user);
	while (*list) {
		while (*list == ',' || isspace((unsigned char)*list))
			list++;
		size_t len = strcspn(list, ", \t");
		if (len == n && n > 0 && strncmp(list, user, n) == 0)
			return true;
		list += len;
	}
	return false;
}

void admin_put_welcome(struct pgbuf *out, const char *user, uint32_t pid, uint32_t key)
{
	static const char *const params[][2] = {
		{ "server_version", "15.0 (uuidgate " UUIDGATE_VERSION ")" },
		{ "server_encoding", "UTF8" },
		{ "client_encoding", "UTF8" },
		{ "DateStyle", "ISO, MDY" },
		{ "integer_datetimes", "on" },
		{ "standard_conforming_strings", "on" },
		{ "TimeZone", "UTC" },
		{ "application_name", "" },
	};
	pgmsg_put_auth_ok(out);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		pgmsg_put_parameter_status(out, params[i][0], params[i][1]);
	pgmsg_put_parameter_status(out, "session_authorization", user);
	pgmsg_put_backend_key(out, pid, key);
	pgmsg_put_ready(out, 'I');
}

static void put_error(struct pgbuf *out, const char *sqlstate, const char *message, const char *hint)
{
	struct pg_error e = { .severity = "ERROR", .sqlstate = sqlstate, .message = message, .hint = hint };
	pgmsg_put_error(out, 'E', &e);
}

/* Two-column name/value listings share one shape. */
static void put_pairs(struct pgbuf *out, const char *(*pairs)[2], size_t n)
{
	static const struct resultset_column cols[] = { { "key", PG_TYPE_TEXT }, { "value", PG_TYPE_TEXT } };
	resultset_put_description(out, cols, 2);
	for (size_t i = 0; i < n; i++)
		resultset_put_row(out, pairs[i], 2);
	resultset_put_complete(out, "SHOW");
}

static const char *fmt_u64(char *buf, uint64_t v)
{
	snprintf(buf, NUM_BUF, "%" PRIu64, v);
	return buf;
}

static const char *fmt_i64(char *buf, int64_t v)
{
	snprintf(buf, NUM_BUF, "%" PRId64, v);
	return buf;
}

static void show_gate(struct proxy *px, struct pgbuf *out)
{
	static const char *const modes[] = { "hold", "refuse", "off" };
	char desc[600], after[NUM_BUF];
	struct client_counts cc;
	gate_describe(px->gate, desc, sizeof(desc));
	stats_count_clients(px, &cc);
	char held[NUM_BUF];
	const char *pairs[][2] = {
		{ "state", gate_state_name(gate_state(px->gate)) },
		{ "open", gate_is_open(px->gate) ? "yes" : "no" },
		{ "paused", px->paused ? "yes" : "no" },
		{ "gate_mode", modes[px->cfg->gate_mode] },
		{ "open_after_ms", fmt_i64(after, gate_open_after_ms(px->gate)) },
		{ "clients_held", fmt_i64(held, cc.held) },
		{ "description", desc },
	};
	put_pairs(out, pairs, sizeof(pairs) / sizeof(pairs[0]));
}

static void show_migration(struct proxy *px, struct pgbuf *out)
{
	struct migrate_snapshot s;
	char v[10][NUM_BUF], leader[256];
	gate_snapshot(px->gate, &s);
	snprintf(leader, sizeof(leader), "pid %d, host %s, application %s", s.leader_pid,
		 s.leader_host[0] ? s.leader_host : "-", s.leader_app[0] ? s.leader_app : "-");
	snprintf(v[8], NUM_BUF, "%.1f", s.rows_per_sec);
	snprintf(v[9], NUM_BUF, "%.0f", s.eta_sec);
	const char *pairs[][2] = {
		{ "phase", migrate_phase_name(s.phase) },
		{ "result", migrate_result_name(s.result) },
		{ "version_before", fmt_i64(v[0], s.version_before) },
		{ "tables_done", fmt_i64(v[1], s.tables_done) },
		{ "tables_total", fmt_i64(v[2], s.tables_total) },
		{ "tables_incomplete", fmt_i64(v[3], s.tables_incomplete) },
		{ "current_table", s.current_table },
		{ "rows_done", fmt_i64(v[4], s.rows_done) },
		{ "rows_total", fmt_i64(v[5], s.rows_total) },
		{ "rows_per_second", v[8] },
		{ "eta_seconds", s.eta_sec >= 0 ? v[9] : "unknown" },
		{ "lock_retries", fmt_i64(v[6], s.lock_retries) },
		{ "replication_paused", s.replication_paused ? "yes" : "no" },
		{ "leader", s.leader_pid ? leader : "" },
		{ "error", s.error_message },
		{ "error_sqlstate", s.error_sqlstate },
		{ "message", s.message },
	};
	put_pairs(out, pairs, sizeof(pairs) / sizeof(pairs[0]));
}

static void show_clients(struct proxy *px, struct pgbuf *out, bool servers_only)
{
	static const struct resultset_column cols[] = {
		{ "id", PG_TYPE_INT8 }, { "addr", PG_TYPE_TEXT }, { "user", PG_TYPE_TEXT },
		{ "database", PG_TYPE_TEXT }, { "state", PG_TYPE_TEXT }, { "tls", PG_TYPE_TEXT },
		{ "connected_s", PG_TYPE_TEXT }, { "bytes_in", PG_TYPE_INT8 }, { "bytes_out", PG_TYPE_INT8 },
		{ "tx", PG_TYPE_TEXT }, { "server_pid", PG_TYPE_INT8 },
	};
	enum { NCOLS = sizeof(cols) / sizeof(cols[0]) };
	resultset_put_description(out, cols, NCOLS);
	int rows = 0;
	for (struct client *c = px->clients; c; c = client_next(c)) {
		struct client_info ci;
		client_get_info(c, &ci);
		if (servers_only && !ci.server_pid)
			continue;
		char id[NUM_BUF], secs[NUM_BUF], in[NUM_BUF], outb[NUM_BUF], pid[NUM_BUF], tx[2] = { ci.tx_status, 0 };
		snprintf(secs, sizeof(secs), "%.1f", ci.connected_seconds);
		const char *row[NCOLS] = { fmt_u64(id, ci.id), ci.addr, ci.user, ci.database,
					   client_state_name(ci.state), ci.tls ? "yes" : "no", secs,
					   fmt_u64(in, ci.bytes_in), fmt_u64(outb, ci.bytes_out), tx,
					   fmt_u64(pid, ci.server_pid) };
		resultset_put_row(out, row, NCOLS);
		rows++;
	}
	resultset_put_complete(out, "SHOW");
}

static void show_stats(struct proxy *px, struct pgbuf *out)
{
	struct client_counts cc;
	char v[16][NUM_BUF];
	stats_count_clients(px, &cc);
	const struct proxy_stats *st = &px->stats;
	const char *pairs[][2] = {
		{ "clients_accepted", fmt_u64(v[0], st->clients_accepted) },
		{ "clients_now", fmt_i64(v[1], px->nclients) },
		{ "clients_held", fmt_i64(v[2], cc.held) },
		{ "servers_now", fmt_i64(v[3], cc.servers) },
		{ "logins", fmt_u64(v[4], st->logins) },
		{ "login_failures", fmt_u64(v[5], st->login_failures) },
		{ "cancels_forwarded", fmt_u64(v[6], st->cancels_forwarded) },
		{ "protocol_errors", fmt_u64(v[7], st->protocol_errors) },
		{ "bytes_client_to_server", fmt_u64(v[8], cc.bytes_client_to_server) },
		{ "bytes_server_to_client", fmt_u64(v[9], cc.bytes_server_to_client) },
		{ "messages_client_to_server", fmt_u64(v[10], cc.messages_client_to_server) },
		{ "messages_server_to_client", fmt_u64(v[11], cc.messages_server_to_client) },
		{ "insert_rewrites", fmt_u64(v[12], st->rewrite_statements) },
		{ "insert_uuid_values", fmt_u64(v[13], st->rewrite_values) },
		{ "insert_passed_session_settings", fmt_u64(v[14], st->rewrite_passed_settings) },
		{ "insert_passed_not_certain", fmt_u64(v[15], st->rewrite_passed_uncertain) },
	};
	put_pairs(out, pairs, sizeof(pairs) / sizeof(pairs[0]));
}

/* Secrets never leave the process, not even to an administrator. */
static bool is_secret_key(const char *name)
{
	return strcmp(name, "upstream") == 0 || strcmp(name, "migrate_upstream") == 0;
}

static void show_config(struct proxy *px, struct pgbuf *out)
{
	static const struct resultset_column cols[] = {
		{ "key", PG_TYPE_TEXT }, { "value", PG_TYPE_TEXT }, { "default", PG_TYPE_TEXT },
		{ "changeable", PG_TYPE_TEXT },
	};
	resultset_put_description(out, cols, 4);
	const char *name, *def;
	bool reloadable;
	char value[1024];
	for (size_t i = 0; config_describe(px->cfg, i, &name, value, sizeof(value), &def, &reloadable); i++) {
		if (is_secret_key(name) && strstr(value, "password"))
			snprintf(value, sizeof(value), "(contains a password; not shown)");
		const char *row[4] = { name, value, def, reloadable ? "yes" : "no" };
		resultset_put_row(out, row, 4);
	}
	resultset_put_complete(out, "SHOW");
}

static void show_help(struct pgbuf *out)
{
	const char *pairs[][2] = {
		{ "SHOW HELP", "this list" },
		{ "SHOW GATE", "gate state, mode, held clients" },
		{ "SHOW MIGRATION", "V40 migration progress" },
		{ "SHOW CLIENTS", "client connections" },
		{ "SHOW SERVERS", "server connections" },
		{ "SHOW STATS", "counters" },
		{ "SHOW CONFIG", "configuration keys" },
		{ "SHOW VERSION", "uuidgate's version" },
		{ "PAUSE", "hold new sessions at the gate" },
		{ "RESUME", "let held sessions go on" },
		{ "RELOAD", "re-read the configuration file" },
		{ "SHUTDOWN", "stop new logins, exit when clients have left" },
		{ "KILL_CLIENT id", "close one client connection" },
	};
	put_pairs(out, pairs, sizeof(pairs) / sizeof(pairs[0]));
}

static void show_version(struct pgbuf *out)
{
	static const struct resultset_column cols[] = { { "version", PG_TYPE_TEXT } };
	const char *row[1] = { "uuidgate " UUIDGATE_VERSION };
	resultset_put_description(out, cols, 1);
	resultset_put_row(out, row, 1);
	resultset_put_complete(out, "SHOW");
}

/* Upper-cased words of the command, without a trailing semicolon. */
static size_t split_words(const char *query, char words[3][64])
{
	size_t n = 0;
	const char *p = query;
	while (n < 3) {
		while (isspace((unsigned char)*p) || *p == ';')
			p++;
		if (!*p)
			break;
		size_t len = 0;
		while (*p && !isspace((unsigned char)*p) && *p != ';') {
			if (len < 63)
				words[n][len++] = (char)toupper((unsigned char)*p);
			p++;
		}
		words[n][len] = '\0';
		n++;
	}
	while (isspace((unsigned char)*p) || *p == ';')
		p++;
	return *p ? 4 : n; /* more than three words: no command has that many */
}

static bool kill_client(struct proxy *px, struct client *self, const char *arg, struct pgbuf *out)
{
	char *end;
	unsigned long long id = strtoull(arg, &end, 10);
	struct client *target = *end ? NULL : client_find(px, id);
	if (!target) {
		put_error(out, "42704", "no such client; see SHOW CLIENTS", NULL);
		return true;
	}
	resultset_put_complete(out, "KILL_CLIENT");
	if (target == self)
		return false;
	client_terminate(target, SQLSTATE_ADMIN_SHUTDOWN, "terminated by the uuidgate administrator (KILL_CLIENT)");
	return true;
}

static bool run_show(struct proxy *px, const char *what, struct pgbuf *out)
{
	if (strcmp(what, "HELP") == 0)
		show_help(out);
	else if (strcmp(what, "GATE") == 0)
		show_gate(px, out);
	else if (strcmp(what, "MIGRATION") == 0)
		show_migration(px, out);
	else if (strcmp(what, "CLIENTS") == 0)
		show_clients(px, out, false);
	else if (strcmp(what, "SERVERS") == 0)
		show_clients(px, out, true);
	else if (strcmp(what, "STATS") == 0)
		show_stats(px, out);
	else if (strcmp(what, "CONFIG") == 0)
		show_config(px, out);
	else if (strcmp(what, "VERSION") == 0)
		show_version(out);
	else
		return false;
	return true;
}

bool admin_execute(struct proxy *px, struct client *self, const char *query, struct pgbuf *out)
{
	char w[3][64] = { "", "", "" };
	size_t n = split_words(query, w);
	bool self_alive = true;
	struct client_info me;
	client_get_info(self, &me);
	if (!me.admin) {
		/* Sessions reach this code only after the admin check; checking
		 * again per command keeps it that way if that ever changes. */
		put_error(out, SQLSTATE_INVALID_AUTHORIZATION, "admin access required", NULL);
	} else if (n == 0) {
		pgbuf_put_u8(out, 'I');
		pgbuf_put_int32(out, 4);
	} else if (n == 2 && strcmp(w[0], "SHOW") == 0 && run_show(px, w[1], out)) {
		/* answered */
	} else if (n == 1 && strcmp(w[0], "PAUSE") == 0) {
		px->paused = true;
		resultset_put_complete(out, "PAUSE");
	} else if (n == 1 && strcmp(w[0], "RESUME") == 0) {
		proxy_resume(px);
		resultset_put_complete(out, "RESUME");
	} else if (n == 1 && strcmp(w[0], "RELOAD") == 0) {
		proxy_reload(px);
		resultset_put_complete(out, "RELOAD");
	} else if (n == 1 && strcmp(w[0], "SHUTDOWN") == 0) {
		resultset_put_complete(out, "SHUTDOWN");
		proxy_shutdown(px, false, "admin console");
	} else if (n == 2 && strcmp(w[0], "KILL_CLIENT") == 0) {
		self_alive = kill_client(px, self, w[1], out);
	} else {
		put_error(out, "42601", "unknown admin command", "try SHOW HELP");
	}
	pgmsg_put_ready(out, 'I');
	return self_alive;
}
