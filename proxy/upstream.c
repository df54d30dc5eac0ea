#include "upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "tls.h"

static const char *const sslmodes[] = { "disable", "allow", "prefer", "require", "verify-ca",
					"verify-full" };

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* libpq allows comma-separated host lists; the proxy uses the first entry. */
static char *first_of_list(const char *s)
{
	if (!s || !*s)
		return NULL;
	size_t n = strcspn(s, ",");
	char *r = malloc(n + 1);
	if (r) {
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

static bool set_option(struct upstream *u, const char *key, const char *val, char *err, size_t errlen)
{
	if (strcmp(key, "host") == 0)
		u->host = first_of_list(val);
	else if (strcmp(key, "hostaddr") == 0)
		u->hostaddr = first_of_list(val);
	else if (strcmp(key, "port") == 0)
		u->port = first_of_list(val);
	else if (strcmp(key, "dbname") == 0)
		u->dbname = dup_or_null(val);
	else if (strcmp(key, "user") == 0)
		u->user = dup_or_null(val);
	else if (strcmp(key, "password") == 0)
		u->password = dup_or_null(val);
	else if (strcmp(key, "sslrootcert") == 0)
		u->sslrootcert = dup_or_null(val);
	else if (strcmp(key, "sslcert") == 0)
		u->sslcert = dup_or_null(val);
	else if (strcmp(key, "sslkey") == 0)
		u->sslkey = dup_or_null(val);
	else if (strcmp(key, "sslmode") == 0 && val && *val) {
		for (int i = 0; i < 6; i++)
			if (strcmp(val, sslmodes[i]) == 0)
				u->sslmode = i;
		if (strcmp(val, sslmodes[u->sslmode]) != 0) {
			snprintf(err, errlen, "upstream: sslmode \"%s\" is not one of disable, allow, prefer, "
				 "require, verify-ca, verify-full", val);
			return false;
		}
	}
	return true;
}

static bool resolve_defaults(struct upstream *u, char *err, size_t errlen)
{
	if (!u->port)
		u->port = strdup("5432");
	char *end;
	long port = strtol(u->port, &end, 10);
	if (*end || port < 1 || port > 65535) {
		snprintf(err, errlen, "upstream: port \"%s\" is not a number from 1 to 65535", u->port);
		return false;
	}
	if (!u->host && !u->hostaddr)
		u->host = strdup("/var/run/postgresql");
	u->unix_socket = u->host && u->host[0] == '/' && !u->hostaddr;
	if (u->unix_socket) {
		int n = snprintf(u->unix_path, sizeof(u->unix_path), "%s/.s.PGSQL.%ld", u->host, port);
		if (n < 0 || (size_t)n >= sizeof(u->unix_path)) {
			snprintf(err, errlen, "upstream: socket directory path too long: %s", u->host);
			return false;
		}
	}
	return true;
}

struct upstream *upstream_new(const char *conninfo, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		snprintf(err, errlen, "upstream: %s", perr ? perr : "cannot parse connection string");
		if (perr) {
			err[strcspn(err, "\n")] = '\0';
			PQfreemem(perr);
		}
		return NULL;
	}
	struct upstream *u = calloc(1, sizeof(*u));
	bool ok = u != NULL;
	if (u)
		u->sslmode = TLS_PREFER;
	for (PQconninfoOption *o = opts; ok && o->keyword; o++)
		if (o->val)
			ok = set_option(u, o->keyword, o->val, err, errlen);
	PQconninfoFree(opts);
	if (ok)
		ok = resolve_defaults(u, err, errlen);
	if (ok && !u->unix_socket && u->sslmode != TLS_DISABLE) {
		u->tls = tls_server_facing_ctx(u->sslmode, u->sslrootcert, u->sslcert, u->sslkey, err, errlen);
		ok = u->tls != NULL;
	}
	if (!ok) {
		upstream_free(u);
		return NULL;
	}
	return u;
}

void upstream_free(struct upstream *u)
{
	if (!u)
		return;
	upstream_free(u->retired);
	free(u->host);
	free(u->hostaddr);
	free(u->port);
	free(u->dbname);
	free(u->user);
	free(u->password);
	free(u->sslrootcert);
	free(u->sslcert);
	free(u->sslkey);
	if (u->tls)
		SSL_CTX_free(u->tls);
	free(u);
}

void upstream_describe(const struct upstream *u, char *buf, size_t len)
{
	if (u->unix_socket)
		snprintf(buf, len, "%s", u->unix_path);
	else
		snprintf(buf, len, "%s:%s sslmode=%s", u->hostaddr ? u->hostaddr : u->host, u->port,
			 sslmodes[u->sslmode]);
}
