/* uuidgate's settings: one table of keys drives the ini parser, environment
 * overrides, --help, --check, the sample config and SHOW CONFIG. */
#ifndef UUIDGATE_CONFIG_H
#define UUIDGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum auth_type { AUTH_PASSTHROUGH, AUTH_TRUST, AUTH_MD5, AUTH_SCRAM };
enum tls_mode { TLS_DISABLE, TLS_ALLOW, TLS_PREFER, TLS_REQUIRE, TLS_VERIFY_CA, TLS_VERIFY_FULL };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR };
enum gate_mode { GATE_MODE_HOLD, GATE_MODE_REFUSE, GATE_MODE_OFF };
enum on_not_applicable { NOT_APPLICABLE_OPEN, NOT_APPLICABLE_REFUSE };
enum on_failure { ON_FAILURE_RETRY, ON_FAILURE_EXIT, ON_FAILURE_OPEN };
enum insert_uuid_mode { INSERT_UUID_OFF, INSERT_UUID_WINDOW, INSERT_UUID_ALWAYS };

struct ug_config {
	char *upstream;
	char *listen_addr;
	int listen_port;
	char *unix_socket_dir;
	int unix_socket_mode;
	int max_client_conn;

	int auth_type;
	char *auth_file;
	char *auth_user;
	char *auth_query;
	char *admin_users;

	int client_tls_sslmode;
	char *client_tls_cert_file;
	char *client_tls_key_file;
	char *client_tls_ca_file;
	char *client_tls_protocols;
	char *client_tls_ciphers;

	int64_t client_login_timeout_ms;
	int64_t server_connect_timeout_ms;
	int64_t shutdown_timeout_ms;
	int64_t max_packet_size;
	bool tcp_keepalive;
	int tcp_keepidle;
	int tcp_keepintvl;
	int tcp_keepcnt;

	char *logfile;
	int log_format;
	int log_level;
	bool log_connections;
	bool log_disconnections;
	char *pidfile;

	bool migrate_on_start;
	bool migrate_repair;
	int gate_mode;
	int64_t gate_timeout_ms;
	int on_not_applicable;
	int on_migration_failure;
	char *http_listen;
	int insert_uuid;
	int64_t insert_uuid_window_ms;
	char *insert_uuid_until;
	bool log_rewrites;
	char *migrate_upstream;
	char *migrate_prefix;
	int64_t migrate_lock_timeout_ms;
	int64_t migrate_batch_time_ms;
	int64_t migrate_batch_pause_ms;
	int migrate_workers;
	int64_t migrate_max_replication_lag_ms;
};

/* Where an error is reported: "FILE:LINE: KEY: what is wrong (allowed: ...)". */
#define CONFIG_ERR_LEN 512

void config_init(struct ug_config *c);
void config_free(struct ug_config *c);
/* Loads FILE (when path is not NULL) over the defaults, then the UUIDGATE_*
 * environment. Returns false with err filled on the first bad line or value. */
bool config_load(struct ug_config *c, const char *path, char *err, size_t errlen);
/* Sets one key from a command-line flag or other source; `origin` names it
 * in errors. */
bool config_set(struct ug_config *c, const char *key, const char *value, const char *origin,
                char *err, size_t errlen);
/* Cross-key checks (TLS files present when TLS is on, ...). */
bool config_validate(const struct ug_config *c, char *err, size_t errlen);

/* Values given as command-line flags: they win over the file and the
 * environment, at start and on every reload. */
struct config_overrides {
	const char *upstream;   /* --upstream */
	const char *listen;     /* --listen ADDR:PORT, [V6]:PORT, :PORT or PORT */
};
bool config_apply_overrides(struct ug_config *c, const struct config_overrides *ov, char *err, size_t errlen);

/* Reload: copies reloadable keys from `fresh` into `live`; writes the names of
 * changed keys that need a restart into `not_reloaded` (comma separated). */
void config_apply_reload(struct ug_config *live, const struct ug_config *fresh,
                         char *not_reloaded, size_t len);

void config_print_help(FILE *out);
void config_print_sample(FILE *out);

/* Iterates keys for SHOW CONFIG: returns false past the end. */
bool config_describe(const struct ug_config *c, size_t index, const char **name,
                     char *value, size_t value_len, const char **def, bool *reloadable);

/* Parses "2026-12-01T00:00:00Z" (or with a space, or an offset such as
 * +02:00) into Unix seconds. */
bool config_parse_timestamp(const char *s, int64_t *unix_seconds);

/* Parses "500ms", "60s", "15m", "2h", "1d" (a bare number is seconds). */
bool config_parse_duration(const char *s, int64_t *ms);

#endif
