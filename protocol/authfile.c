#include "authfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errtext.h"
#include "md5auth.h"
#include "scram.h"

struct authfile {
	struct authfile_entry *entries;
	size_t count;
	size_t cap;
};

/* One line being parsed: [p, end) without its newline. */
struct line {
	const char *p;
	const char *end;
	size_t number;
};


static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void skip_blanks(struct line *l)
{
	while (l->p < l->end && is_blank(*l->p))
		l->p++;
}

/* Reads a quoted field starting at l->p into a new string, undoubling "".
 * Returns NULL with err set on a syntax error, or with *oom on allocation
 * failure. */
static char *read_quoted(struct line *l, const char *what, size_t max, bool *oom,
                         char *err, size_t errlen)
{
	if (l->p >= l->end || *l->p != '"') {
		errtext_set(err, errlen, "line %zu: expected '\"' to start the %s%s", l->number, what,
		        l->p < l->end && *l->p == '#' ? " (comments start with ';')" : "");
		return NULL;
	}
	const char *s = ++l->p;
	size_t n = 0;
	/* First pass: find the closing quote and the unquoted length. */
	for (;;) {
		if (s >= l->end) {
			errtext_set(err, errlen, "line %zu: unterminated quote in %s", l->number, what);
			return NULL;
		}
		if (*s == '"') {
			if (s + 1 < l->end && s[1] == '"')
				s++;
			else
				break;
		}
		s++;
		n++;
	}
	if (n > max) {
		errtext_set(err, errlen, "line %zu: %s longer than %zu bytes", l->number, what, max);
		return NULL;
	}
	char *out = malloc(n + 1), *o = out;
	if (!out) {
		*oom = true;
		return NULL;
	}
	for (const char *q = l->p; q < s; q++) {
		*o++ = *q;
		if (*q == '"')
			q++;
	}
	*o = '\0';
	l->p = s + 1;
	return out;
}

static bool add_entry(struct authfile *af, char *user, char *secret)
{
	if (af->count == af->cap) {
		size_t cap = af->cap ? af->cap * 2 : 16;
		struct authfile_entry *e = realloc(af->entries, cap * sizeof(*e));
		if (!e)
			return false;
		af->entries = e;
		af->cap = cap;
	}
	af->entries[af->count].user = user;
	af->entries[af->count].secret = secret;
	af->count++;
	return true;
}

static enum authfile_status parse_line(struct authfile *af, struct line *l, char *err,
                                       size_t errlen)
{
	bool oom = false;
	char *user = NULL, *secret = NULL;
	skip_blanks(l);
	if (l->p == l->end || *l->p == ';')
		return AUTHFILE_OK;
	user = read_quoted(l, "user name", AUTHFILE_MAX_USER_LEN, &oom, err, errlen);
	if (user && user[0] == '\0') {
		errtext_set(err, errlen, "line %zu: empty user name", l->number);
		goto fail;
	}
	if (user) {
		skip_blanks(l);
		secret = read_quoted(l, "secret", AUTHFILE_MAX_SECRET_LEN, &oom, err, errlen);
	}
	if (!secret)
		goto fail;
	if (!add_entry(af, user, secret)) {
		oom = true;
		goto fail;
	}
	return AUTHFILE_OK;
fail:
	free(user);
	free(secret);
	if (oom)
		errtext_set(err, errlen, "line %zu: out of memory", l->number);
	return oom ? AUTHFILE_NO_MEMORY : AUTHFILE_SYNTAX;
}

enum authfile_status authfile_parse(const char *buf, size_t len, struct authfile **out,
                                    char *err, size_t errlen)
{
	struct authfile *af = calloc(1, sizeof(*af));
	enum authfile_status status = AUTHFILE_OK;
	struct line l = { .p = buf, .number = 0 };
	const char *stop = buf + len;

	*out = NULL;
	if (!af) {
		errtext_set(err, errlen, "out of memory");
		return AUTHFILE_NO_MEMORY;
	}
	while (status == AUTHFILE_OK && l.p < stop) {
		const char *nl = memchr(l.p, '\n', (size_t)(stop - l.p));
		l.end = nl ? nl : stop;
		l.number++;
		if (memchr(l.p, '\0', (size_t)(l.end - l.p))) {
			errtext_set(err, errlen, "line %zu: NUL byte", l.number);
			status = AUTHFILE_SYNTAX;
			break;
		}
		status = parse_line(af, &l, err, errlen);
		l.p = nl ? nl + 1 : stop;
	}
	if (status != AUTHFILE_OK) {
		authfile_free(af);
		return status;
	}
	*out = af;
	return AUTHFILE_OK;
}

void authfile_free(struct authfile *af)
{
	if (!af)
		return;
	for (size_t i = 0; i < af->count; i++) {
		free((char *)af->entries[i].user);
		free((char *)af->entries[i].secret);
	}
	free(af->entries);
	free(af);
}

const char *authfile_lookup(const struct authfile *af, const char *user)
{
	for (size_t i = af->count; i > 0; i--)
		if (strcmp(af->entries[i - 1].user, user) == 0)
			return af->entries[i - 1].secret;
	return NULL;
}

size_t authfile_count(const struct authfile *af)
{
	return af->count;
}

const struct authfile_entry *authfile_entry_at(const struct authfile *af, size_t i)
{
	return i < af->count ? &af->entries[i] : NULL;
}

enum authfile_secret_kind authfile_secret_kind(const char *secret)
{
	struct scram_secret scram;
	if (scram_parse_secret(secret, &scram))
		return AUTHFILE_SECRET_SCRAM;
	if (md5auth_is_secret(secret))
		return AUTHFILE_SECRET_MD5;
	return AUTHFILE_SECRET_PLAIN;
}

const char *authfile_client_method(enum authfile_method configured, const char *secret,
                                   enum authfile_method *use)
{
	enum authfile_secret_kind kind = authfile_secret_kind(secret);
	if (configured == AUTHFILE_METHOD_TRUST) {
		*use = AUTHFILE_METHOD_TRUST;
		return NULL;
	}
	if (secret[0] == '\0')
		return "user has an empty password";
	if (configured == AUTHFILE_METHOD_SCRAM && kind == AUTHFILE_SECRET_MD5)
		return "SCRAM authentication failed: the user's stored secret is an md5 hash, "
		       "which cannot serve SCRAM; store a plain password or a SCRAM secret";
	*use = kind == AUTHFILE_SECRET_SCRAM ? AUTHFILE_METHOD_SCRAM : configured;
	return NULL;
}
