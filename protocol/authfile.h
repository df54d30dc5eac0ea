/* The auth_file (pgbouncer's userlist.txt): one `"user" "secret"` per line,
 * a double quote inside a field written twice, lines starting with ';'
 * ignored, anything after the second field ignored. The secret is a plain
 * password, an md5 secret or a SCRAM secret, the same forms an auth_query
 * returns. Pure: the caller reads the file and hands over its bytes. */
#ifndef UUIDGATE_AUTHFILE_H
#define UUIDGATE_AUTHFILE_H

#include <stdbool.h>
#include <stddef.h>

#define AUTHFILE_MAX_USER_LEN 127
#define AUTHFILE_MAX_SECRET_LEN 2047

enum authfile_status {
	AUTHFILE_OK,
	AUTHFILE_SYNTAX,      /* err holds "line N: ..." */
	AUTHFILE_NO_MEMORY,
};

enum authfile_secret_kind {
	AUTHFILE_SECRET_PLAIN,
	AUTHFILE_SECRET_MD5,
	AUTHFILE_SECRET_SCRAM,
};

/* The client-facing methods of auth_type. */
enum authfile_method {
	AUTHFILE_METHOD_TRUST,
	AUTHFILE_METHOD_MD5,
	AUTHFILE_METHOD_SCRAM,
};

struct authfile;

struct authfile_entry {
	const char *user;
	const char *secret;
};

/* Parses the whole file. On AUTHFILE_OK *out owns every entry; on failure
 * *out is NULL and nothing is kept: a broken file should not half-replace
 * the users loaded before. */
enum authfile_status authfile_parse(const char *buf, size_t len, struct authfile **out,
                                    char *err, size_t errlen);
void authfile_free(struct authfile *af);

/* The user's secret, or NULL. When a user appears twice the last line wins,
 * as in pgbouncer. */
const char *authfile_lookup(const struct authfile *af, const char *user);
size_t authfile_count(const struct authfile *af);
/* Entries in file order, duplicates included; i < authfile_count(). */
const struct authfile_entry *authfile_entry_at(const struct authfile *af, size_t i);

/* How PostgreSQL classifies a stored secret: SCRAM if it parses as one, md5
 * if "md5" and 32 lowercase hex digits, else a plain password. */
enum authfile_secret_kind authfile_secret_kind(const char *secret);

/* The method to challenge a client with, given auth_type and the user's
 * secret, following pgbouncer: md5 with a SCRAM secret upgrades to SCRAM,
 * scram-sha-256 with an md5 secret cannot work, and an empty secret never
 * authenticates. Returns NULL and sets *use, or the reason for the log. */
const char *authfile_client_method(enum authfile_method configured, const char *secret,
                                   enum authfile_method *use);

#endif
