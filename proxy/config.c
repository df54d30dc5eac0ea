#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum key_type { KEY_STRING, KEY_INT, KEY_BOOL, KEY_DURATION, KEY_SIZE, KEY_ENUM, KEY_MODE };

struct config_key {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;
	bool reloadable;
	int64_t min, max;        /* KEY_INT, KEY_DURATION, KEY_SIZE */
	const char *const *choices; /* KEY_ENUM, NULL-terminated; index is the value */
	const char *help;
};

static const char *const auth_types[] = { "passthrough", "trust", "md5", "scram-sha-256", NULL };
static const char *const tls_modes[] = { "disable", "allow", "prefer", "require", "verify-ca",
					 "verify-full", NULL };
static const char *const log_formats[] = { "logfmt", "json", NULL };
static const char *const log_levels[] = { "debug", "info", "warning", "error", NULL };
static const char *const gate_modes[] = { "hold", "refuse", "off", NULL };
static const char *const not_applicable_actions[] = { "open", "refuse", NULL };
static const char *const failure_actions[] = { "retry", "exit", "open", NULL };
static const char *const insert_uuid_modes[] = { "off", "window", "always", NULL };

#define OFF(field) offsetof(struct ug_config, field)
#define DAY_MS (24LL * 3600 * 1000)

static const struct config_key keys[] = {
	{ "upstream", KEY_STRING, OFF(upstream), "", true, 0, 0, NULL,
	  "libpq connection string or URL of the database server (and the database to migrate)" },
	{ "listen_addr", KEY_STRING, OFF(listen_addr), "127.0.0.1", false, 0, 0, NULL,
	  "TCP address to listen on; * for all IPv4 and IPv6 addresses; empty for none" },
	{ "listen_port", KEY_INT, OFF(listen_port), "6432", false, 1, 65535, NULL,
	  "TCP port, also used in the Unix socket name .s.PGSQL.<port>" },
	{ "unix_socket_dir", KEY_STRING, OFF(unix_socket_dir), "", false, 0, 0, NULL,
	  "directory for the Unix socket; empty disables it" },
	{ "unix_socket_mode", KEY_MODE, OFF(unix_socket_mode), "0777", false, 0, 0777, NULL,
	  "permissions of the Unix socket file (octal)" },
	{ "max_client_conn", KEY_INT, OFF(max_client_conn), "100", true, 1, 1000000, NULL,
	  "most client connections at once; more are refused with SQLSTATE 53300" },
	{ "auth_type", KEY_ENUM, OFF(auth_type), "passthrough", true, 0, 0, auth_types,
	  "passthrough: the server authenticates clients; otherwise uuidgate does, from auth_file" },
	{ "auth_file", KEY_STRING, OFF(auth_file), "", true, 0, 0, NULL,
	  "userlist.txt-style file of \"user\" \"secret\" lines (plain, md5..., SCRAM-SHA-256$...)" },
	{ "auth_user", KEY_STRING, OFF(auth_user), "", true, 0, 0, NULL,
	  "user that runs auth_query for users missing from auth_file" },
	{ "auth_query", KEY_STRING, OFF(auth_query), "SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1",
	  true, 0, 0, NULL, "query that returns (user, secret) for $1" },
	{ "admin_users", KEY_STRING, OFF(admin_users), "", true, 0, 0, NULL,
	  "comma-separated users allowed on the admin console" },
	{ "client_tls_sslmode", KEY_ENUM, OFF(client_tls_sslmode), "disable", false, 0, 0, tls_modes,
	  "TLS towards clients: disable, allow, prefer, require, verify-ca, verify-full" },
	{ "client_tls_cert_file", KEY_STRING, OFF(client_tls_cert_file), "", false, 0, 0, NULL,
	  "certificate presented to clients (PEM)" },
	{ "client_tls_key_file", KEY_STRING, OFF(client_tls_key_file), "", false, 0, 0, NULL,
	  "private key of client_tls_cert_file (PEM)" },
	{ "client_tls_ca_file", KEY_STRING, OFF(client_tls_ca_file), "", false, 0, 0, NULL,
	  "CA that signs client certificates (verify-ca, verify-full)" },
	{ "client_tls_protocols", KEY_STRING, OFF(client_tls_protocols), "secure", false, 0, 0, NULL,
	  "allowed TLS versions: secure (TLS 1.2 and 1.3), all, or a list such as tlsv1.2,tlsv1.3" },
	{ "client_tls_ciphers", KEY_STRING, OFF(client_tls_ciphers), "default", false, 0, 0, NULL,
	  "OpenSSL cipher list for TLS 1.2, or default" },
	{ "client_login_timeout", KEY_DURATION, OFF(client_login_timeout_ms), "60s", true, 0, DAY_MS, NULL,
	  "a client that has not logged in by then is disconnected; 0 disables" },
	{ "server_connect_timeout", KEY_DURATION, OFF(server_connect_timeout_ms), "15s", true, 1, DAY_MS, NULL,
	  "how long connecting to the server (TCP and TLS) may take" },
	{ "shutdown_timeout", KEY_DURATION, OFF(shutdown_timeout_ms), "30s", true, 0, DAY_MS, NULL,
	  "on SIGTERM, how long to wait for clients to leave before closing them" },
	{ "max_packet_size", KEY_SIZE, OFF(max_packet_size), "1GB", true, 65536, 0x7fffffff, NULL,
	  "largest protocol message accepted after login" },
	{ "tcp_keepalive", KEY_BOOL, OFF(tcp_keepalive), "yes", true, 0, 0, NULL,
	  "TCP keepalive on client and server sockets" },
	{ "tcp_keepidle", KEY_INT, OFF(tcp_keepidle), "0", true, 0, 86400, NULL,
	  "seconds of idle before keepalive probes; 0 keeps the system default" },
	{ "tcp_keepintvl", KEY_INT, OFF(tcp_keepintvl), "0", true, 0, 86400, NULL,
	  "seconds between keepalive probes; 0 keeps the system default" },
	{ "tcp_keepcnt", KEY_INT, OFF(tcp_keepcnt), "0", true, 0, 1000, NULL,
	  "unanswered probes before the connection is dropped; 0 keeps the system default" },
	{ "logfile", KEY_STRING, OFF(logfile), "", true, 0, 0, NULL,
	  "log to this file as well as stderr; empty for stderr only" },
	{ "log_format", KEY_ENUM, OFF(log_format), "logfmt", true, 0, 0, log_formats,
	  "logfmt or json, one line per event" },
	{ "log_level", KEY_ENUM, OFF(log_level), "info", true, 0, 0, log_levels,
	  "debug, info, warning or error" },
	{ "log_connections", KEY_BOOL, OFF(log_connections), "yes", true, 0, 0, NULL,
	  "log each successful login" },
	{ "log_disconnections", KEY_BOOL, OFF(log_disconnections), "yes", true, 0, 0, NULL,
	  "log each disconnection with its reason" },
	{ "pidfile", KEY_STRING, OFF(pidfile), "", false, 0, 0, NULL,
	  "write the process id here; empty for none" },
	{ "migrate_on_start", KEY_BOOL, OFF(migrate_on_start), "yes", false, 0, 0, NULL,
	  "apply PhoenixKit V40 to the upstream database at start" },
	{ "migrate_repair", KEY_BOOL, OFF(migrate_repair), "no", true, 0, 0, NULL,
	  "on a database already at version 40, complete tables that PhoenixKit's own V40 left incomplete" },
	{ "gate_mode", KEY_ENUM, OFF(gate_mode), "hold", true, 0, 0, gate_modes,
	  "while migrating: hold clients until done, refuse them (57P03), or let them through (off)" },
	{ "gate_timeout", KEY_DURATION, OFF(gate_timeout_ms), "60s", true, 0, DAY_MS, NULL,
	  "how long a held client waits before it is refused with 57P03" },
	{ "on_not_applicable", KEY_ENUM, OFF(on_not_applicable), "open", true, 0, 0, not_applicable_actions,
	  "when V40 does not apply (no PhoenixKit version marker, or below 39): open the gate or refuse" },
	{ "on_migration_failure", KEY_ENUM, OFF(on_migration_failure), "retry", true, 0, 0, failure_actions,
	  "when the migration fails: retry with backoff, exit non-zero, or open the gate anyway" },
	{ "http_listen", KEY_STRING, OFF(http_listen), "", false, 0, 0, NULL,
	  "ADDR:PORT for /livez, /readyz, /status and /metrics; empty disables" },
	{ "insert_uuid", KEY_ENUM, OFF(insert_uuid), "window", true, 0, 0, insert_uuid_modes,
	  "add UUIDv7 values to INSERTs into migrated tables that leave out uuid: off, window, always" },
	{ "insert_uuid_window", KEY_DURATION, OFF(insert_uuid_window_ms), "24h", true, 0, 3650 * DAY_MS, NULL,
	  "with insert_uuid = window: how long after the gate opens" },
	{ "insert_uuid_until", KEY_STRING, OFF(insert_uuid_until), "", true, 0, 0, NULL,
	  "with insert_uuid = window: also stop at this time (e.g. 2026-12-31T00:00:00Z); empty for none" },
	{ "log_rewrites", KEY_BOOL, OFF(log_rewrites), "no", true, 0, 0, NULL,
	  "log each rewritten INSERT at debug level" },
	{ "migrate_upstream", KEY_STRING, OFF(migrate_upstream), "", true, 0, 0, NULL,
	  "connection string for the migration (a role that owns the tables); empty: upstream" },
	{ "migrate_prefix", KEY_STRING, OFF(migrate_prefix), "public", true, 0, 0, NULL,
	  "schema that holds PhoenixKit's tables" },
	{ "migrate_lock_timeout", KEY_DURATION, OFF(migrate_lock_timeout_ms), "50ms", true, 1, 60000, NULL,
	  "lock_timeout of each step that takes an ACCESS EXCLUSIVE lock (the stall budget)" },
	{ "migrate_batch_time", KEY_DURATION, OFF(migrate_batch_time_ms), "50ms", true, 1, 60000, NULL,
	  "time target of one backfill batch; the batch size adapts to it" },
	{ "migrate_batch_pause", KEY_DURATION, OFF(migrate_batch_pause_ms), "0", true, 0, 60000, NULL,
	  "pause between backfill batches" },
	{ "migrate_workers", KEY_INT, OFF(migrate_workers), "1", true, 1, 16, NULL,
	  "parallel backfill workers per table" },
	{ "migrate_max_replication_lag", KEY_DURATION, OFF(migrate_max_replication_lag_ms), "10s", true, 0,
	  DAY_MS, NULL, "pause batches while a replica or replication slot lags more than this; 0 disables" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static char **string_at(struct ug_config *c, const struct config_key *k)
{
	return (char **)((char *)c + k->offset);
}

static const struct config_key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return false;
}

static bool parse_int64(const char *s, int64_t *out, char **end)
{
	errno = 0;
	long long v = strtoll(s, end, 10);
	if (errno || *end == s)
		return false;
	*out = v;
	return true;
}

bool config_parse_timestamp(const char *s, int64_t *unix_seconds)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int off_h = 0, off_m = 0, n = 0;
	char sep, sign = 0;
	if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &sep, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &n) != 7 || (sep != 'T' && sep != ' '))
		return false;
	const char *zone = s + n;
	if (strcmp(zone, "Z") == 0 || strcmp(zone, "") == 0 || strcmp(zone, "+00") == 0) {
		/* UTC */
	} else if (sscanf(zone, "%c%2d:%2d", &sign, &off_h, &off_m) == 3 && (sign == '+' || sign == '-')) {
		/* an offset */
	} else {
		return false;
	}
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	int64_t t = (int64_t)timegm(&tm);
	int64_t offset = (int64_t)(off_h * 3600 + off_m * 60);
	*unix_seconds = sign == '-' ? t + offset : t - offset;
	return true;
}

bool config_parse_duration(const char *s, int64_t *ms)
{
	char *end;
	int64_t v;
	if (!parse_int64(s, &v, &end) || v < 0)
		return false;
	static const struct { const char *suffix; int64_t mult; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 }, { "min", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			if (v > INT64_MAX / units[i].mult)
				return false;
			*ms = v * units[i].mult;
			return true;
		}
	}
	return false;
}

static bool parse_size(const char *s, int64_t *bytes)
{
	char *end;
	int64_t v;
	if (!parse_int64(s, &v, &end) || v < 0)
		return false;
	static const struct { const char *suffix; int64_t mult; } units[] = {
		{ "", 1 }, { "B", 1 }, { "kB", 1024 }, { "MB", 1024 * 1024 }, { "GB", 1024 * 1024 * 1024 },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix) == 0) {
			if (v > INT64_MAX / units[i].mult)
				return false;
			*bytes = v * units[i].mult;
			return true;
		}
	}
	return false;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "on", "true", "1" };
	static const char *const no[] = { "no", "off", "false", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static void describe_allowed(const struct config_key *k, char *buf, size_t len)
{
	switch (k->type) {
	case KEY_INT:
		snprintf(buf, len, "a whole number from %lld to %lld", (long long)k->min, (long long)k->max);
		break;
	case KEY_BOOL:
		snprintf(buf, len, "yes or no");
		break;
	case KEY_DURATION:
		snprintf(buf, len, "a duration such as 500ms, 60s, 15m, 1h (up to %lld ms)", (long long)k->max);
		break;
	case KEY_SIZE:
		snprintf(buf, len, "a size such as 65536, 64kB, 16MB, 1GB (from %lld to %lld bytes)",
			 (long long)k->min, (long long)k->max);
		break;
	case KEY_MODE:
		snprintf(buf, len, "an octal file mode such as 0777");
		break;
	case KEY_ENUM: {
		size_t off = 0;
		buf[0] = '\0';
		for (size_t i = 0; k->choices[i] && off < len; i++)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "one of ", k->choices[i]);
		break;
	}
	case KEY_STRING:
		snprintf(buf, len, "any text");
		break;
	}
}

static bool parse_number_key(const struct config_key *k, const char *value, int64_t *v)
{
	char *end;
	switch (k->type) {
	case KEY_INT:
		return parse_int64(value, v, &end) && *end == '\0';
	case KEY_DURATION:
		return config_parse_duration(value, v);
	case KEY_SIZE:
		return parse_size(value, v);
	case KEY_MODE:
		errno = 0;
		*v = strtoll(value, &end, 8);
		return !errno && end != value && *end == '\0';
	default:
		return false;
	}
}

static bool store_value(struct ug_config *c, const struct config_key *k, const char *value)
{
	void *at = (char *)c + k->offset;
	int64_t v;
	switch (k->type) {
	case KEY_STRING: {
		char *copy = strdup(value);
		if (!copy)
			return false;
		free(*string_at(c, k));
		*string_at(c, k) = copy;
		return true;
	}
	case KEY_BOOL:
		return parse_bool(value, (bool *)at);
	case KEY_ENUM:
		for (int i = 0; k->choices[i]; i++) {
			if (strcasecmp(value, k->choices[i]) == 0) {
				*(int *)at = i;
				return true;
			}
		}
		return false;
	case KEY_INT:
	case KEY_MODE:
		if (!parse_number_key(k, value, &v) || v < k->min || v > k->max)
			return false;
		*(int *)at = (int)v;
		return true;
	case KEY_DURATION:
	case KEY_SIZE:
		if (!parse_number_key(k, value, &v) || v < k->min || v > k->max)
			return false;
		*(int64_t *)at = v;
		return true;
	}
	return false;
}

bool config_set(struct ug_config *c, const char *key, const char *value, const char *origin,
		char *err, size_t errlen)
{
	const struct config_key *k = find_key(key);
	if (!k)
		return fail(err, errlen, "%s: unknown key \"%s\" (see uuidgate --help for the keys)", origin, key);
	if (store_value(c, k, value))
		return true;
	char allowed[256];
	describe_allowed(k, allowed, sizeof(allowed));
	return fail(err, errlen, "%s: %s: invalid value \"%s\" (allowed: %s)", origin, key, value, allowed);
}

static bool apply_listen(struct ug_config *c, const char *arg, char *err, size_t errlen)
{
	char addr[256];
	const char *port = strrchr(arg, ':');
	if (!port)
		return config_set(c, "listen_port", arg, "--listen", err, errlen);
	size_t n = (size_t)(port - arg);
	if (n >= sizeof(addr))
		n = sizeof(addr) - 1;
	memcpy(addr, arg, n);
	addr[n] = '\0';
	if (addr[0] == '[' && n > 1 && addr[n - 1] == ']') {
		addr[n - 1] = '\0';
		memmove(addr, addr + 1, n - 1);
	}
	if (*addr && !config_set(c, "listen_addr", addr, "--listen", err, errlen))
		return false;
	return config_set(c, "listen_port", port + 1, "--listen", err, errlen);
}

bool config_apply_overrides(struct ug_config *c, const struct config_overrides *ov, char *err, size_t errlen)
{
	if (ov->upstream && !config_set(c, "upstream", ov->upstream, "--upstream", err, errlen))
		return false;
	return !ov->listen || apply_listen(c, ov->listen, err, errlen);
}

void config_init(struct ug_config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++) {
		if (!store_value(c, &keys[i], keys[i].def)) {
			/* A default that does not parse is a programming error. */
			fprintf(stderr, "uuidgate: bad built-in default for %s\n", keys[i].name);
			abort();
		}
	}
}

void config_free(struct ug_config *c)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].type == KEY_STRING)
			free(*string_at(c, &keys[i]));
	memset(c, 0, sizeof(*c));
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* A value may be wrapped in matching quotes to keep leading or trailing
 * spaces; the quotes are removed. */
static char *unquote(char *v)
{
	size_t n = strlen(v);
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

static bool load_line(struct ug_config *c, char *line, const char *path, int lineno,
		      bool *in_section, char *err, size_t errlen)
{
	char origin[300];
	snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
	char *s = trim(line);
	if (*s == '\0' || *s == '#' || *s == ';')
		return true;
	if (*s == '[') {
		char *close = strchr(s, ']');
		if (!close || close[1] != '\0')
			return fail(err, errlen, "%s: malformed section header \"%s\"", origin, s);
		*close = '\0';
		if (strcmp(trim(s + 1), "uuidgate") != 0)
			return fail(err, errlen, "%s: unknown section [%s] (allowed: [uuidgate])", origin, s + 1);
		*in_section = true;
		return true;
	}
	char *eq = strchr(s, '=');
	if (!eq)
		return fail(err, errlen, "%s: expected \"key = value\", got \"%s\"", origin, s);
	if (!*in_section)
		return fail(err, errlen, "%s: \"%s\" is outside a section (start the file with [uuidgate])",
			    origin, s);
	*eq = '\0';
	return config_set(c, trim(s), unquote(trim(eq + 1)), origin, err, errlen);
}

static bool load_file(struct ug_config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	char line[8192];
	int lineno = 0;
	bool in_section = false, ok = true;
	while (ok && fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			ok = fail(err, errlen, "%s:%d: line longer than %zu bytes", path, lineno, sizeof(line) - 2);
			break;
		}
		ok = load_line(c, line, path, lineno, &in_section, err, errlen);
	}
	fclose(f);
	return ok;
}

static bool load_environment(struct ug_config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < NKEYS; i++) {
		char var[96] = "UUIDGATE_";
		size_t n = strlen(var);
		for (const char *p = keys[i].name; *p && n < sizeof(var) - 1; p++)
			var[n++] = (char)toupper((unsigned char)*p);
		var[n] = '\0';
		const char *value = getenv(var);
		if (!value)
			continue;
		char origin[128];
		snprintf(origin, sizeof(origin), "environment %s", var);
		if (!config_set(c, keys[i].name, value, origin, err, errlen))
			return false;
	}
	return true;
}

bool config_load(struct ug_config *c, const char *path, char *err, size_t errlen)
{
	if (path && !load_file(c, path, err, errlen))
		return false;
	return load_environment(c, err, errlen);
}

static bool file_readable(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	fclose(f);
	return true;
}

bool config_validate(const struct ug_config *c, char *err, size_t errlen)
{
	if (c->client_tls_sslmode != TLS_DISABLE) {
		if (!*c->client_tls_cert_file || !*c->client_tls_key_file)
			return fail(err, errlen, "client_tls_sslmode = %s needs client_tls_cert_file and "
				    "client_tls_key_file", tls_modes[c->client_tls_sslmode]);
		if (!file_readable(c->client_tls_cert_file))
			return fail(err, errlen, "client_tls_cert_file: cannot read %s", c->client_tls_cert_file);
		if (!file_readable(c->client_tls_key_file))
			return fail(err, errlen, "client_tls_key_file: cannot read %s", c->client_tls_key_file);
		if (c->client_tls_sslmode >= TLS_VERIFY_CA && !*c->client_tls_ca_file)
			return fail(err, errlen, "client_tls_sslmode = %s needs client_tls_ca_file",
				    tls_modes[c->client_tls_sslmode]);
	}
	if (c->auth_type != AUTH_PASSTHROUGH && c->auth_type != AUTH_TRUST && !*c->auth_file &&
	    !*c->auth_user)
		return fail(err, errlen, "auth_type = %s needs auth_file or auth_user", auth_types[c->auth_type]);
	int64_t until;
	if (*c->insert_uuid_until && !config_parse_timestamp(c->insert_uuid_until, &until))
		return fail(err, errlen, "insert_uuid_until: \"%s\" is not a timestamp such as 2026-12-31T00:00:00Z",
			    c->insert_uuid_until);
	if (!*c->listen_addr && !*c->unix_socket_dir)
		return fail(err, errlen, "listen_addr and unix_socket_dir are both empty: nothing to listen on");
	return true;
}

static void format_value(const struct ug_config *c, const struct config_key *k, char *buf, size_t len)
{
	const void *at = (const char *)c + k->offset;
	switch (k->type) {
	case KEY_STRING: snprintf(buf, len, "%s", *(char *const *)at); break;
	case KEY_BOOL: snprintf(buf, len, "%s", *(const bool *)at ? "yes" : "no"); break;
	case KEY_ENUM: snprintf(buf, len, "%s", k->choices[*(const int *)at]); break;
	case KEY_INT: snprintf(buf, len, "%d", *(const int *)at); break;
	case KEY_MODE: snprintf(buf, len, "0%o", (unsigned)*(const int *)at); break;
	case KEY_DURATION: snprintf(buf, len, "%lldms", (long long)*(const int64_t *)at); break;
	case KEY_SIZE: snprintf(buf, len, "%lld", (long long)*(const int64_t *)at); break;
	}
}

static bool values_equal(const struct ug_config *a, const struct ug_config *b, const struct config_key *k)
{
	char va[1024], vb[1024];
	format_value(a, k, va, sizeof(va));
	format_value(b, k, vb, sizeof(vb));
	return strcmp(va, vb) == 0;
}

void config_apply_reload(struct ug_config *live, const struct ug_config *fresh,
			 char *not_reloaded, size_t len)
{
	size_t off = 0;
	not_reloaded[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &keys[i];
		if (values_equal(live, fresh, k))
			continue;
		if (!k->reloadable) {
			if (off < len)
				off += (size_t)snprintf(not_reloaded + off, len - off, "%s%s", off ? "," : "", k->name);
			continue;
		}
		char value[1024];
		format_value(fresh, k, value, sizeof(value));
		store_value(live, k, value);
	}
}

bool config_describe(const struct ug_config *c, size_t index, const char **name,
		     char *value, size_t value_len, const char **def, bool *reloadable)
{
	if (index >= NKEYS)
		return false;
	*name = keys[index].name;
	*def = keys[index].def;
	*reloadable = keys[index].reloadable;
	format_value(c, &keys[index], value, value_len);
	return true;
}

void config_print_help(FILE *out)
{
	fprintf(out, "Configuration keys (in the [uuidgate] section, or as UUIDGATE_<KEY> variables):\n");
	for (size_t i = 0; i < NKEYS; i++) {
		char allowed[256];
		describe_allowed(&keys[i], allowed, sizeof(allowed));
		fprintf(out, "  %-28s %s\n  %-28s default: %s%s; %s\n", keys[i].name, keys[i].help, "",
			*keys[i].def ? keys[i].def : "(empty)", keys[i].reloadable ? "" : " (restart to change)",
			allowed);
	}
}

void config_print_sample(FILE *out)
{
	fprintf(out, "; uuidgate configuration. Every key is shown with its default.\n"
		     "; Each key can also be set as an environment variable UUIDGATE_<KEY>.\n"
		     "; Durations: 500ms, 60s, 15m, 1h. Generated by `uuidgate --sample-config`.\n\n"
		     "[uuidgate]\n");
	for (size_t i = 0; i < NKEYS; i++) {
		char allowed[256];
		describe_allowed(&keys[i], allowed, sizeof(allowed));
		fprintf(out, "\n; %s\n; allowed: %s%s\n", keys[i].help, allowed,
			keys[i].reloadable ? "; reloadable (SIGHUP)" : "; needs a restart");
		fprintf(out, ";%s = %s\n", keys[i].name, keys[i].def);
	}
}
