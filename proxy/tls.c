#include "tls.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>

#include "log.h"

static const unsigned char alpn_postgresql[] = { 10, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l' };

void tls_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[200] = "unknown error";
	if (e)
		ERR_error_string_n(e, detail, sizeof(detail));
	snprintf(err, errlen, "%s: %s", what, detail);
	ERR_clear_error();
}

/* A client that offers ALPN must offer "postgresql"; one that offers none is
 * accepted on the SSLRequest path (older libpq) and refused on the direct
 * path after the handshake. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	unsigned char *selected;
	if (SSL_select_next_proto(&selected, outlen, alpn_postgresql, sizeof(alpn_postgresql), in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = selected;
	return SSL_TLSEXT_ERR_OK;
}

bool tls_alpn_is_postgresql(SSL *ssl)
{
	const unsigned char *p;
	unsigned int n;
	SSL_get0_alpn_selected(ssl, &p, &n);
	return n == 10 && memcmp(p, "postgresql", 10) == 0;
}

/* A private key every local user can read is as good as published; say so
 * (PostgreSQL refuses to start with such a key file). */
static void warn_if_key_readable(const char *path)
{
	struct stat st;
	if (path && *path && stat(path, &st) == 0 && (st.st_mode & S_IRWXO))
		log_event(LOG_WARNING, "tls_key_permissions", 0, NULL, "path", path, "msg",
			  "TLS key file is readable by other users; chmod 600 it", LOG_KV_END);
}

static bool apply_protocols(SSL_CTX *ctx, const char *spec, char *err, size_t errlen)
{
	if (strcasecmp(spec, "secure") == 0 || strcasecmp(spec, "default") == 0)
		return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1;
	if (strcasecmp(spec, "all") == 0)
		return SSL_CTX_set_min_proto_version(ctx, 0) == 1;
	int lo = 0, hi = 0;
	char copy[128];
	snprintf(copy, sizeof(copy), "%s", spec);
	for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		int v;
		if (strcasecmp(tok, "tlsv1.2") == 0)
			v = TLS1_2_VERSION;
		else if (strcasecmp(tok, "tlsv1.3") == 0)
			v = TLS1_3_VERSION;
		else if (strcasecmp(tok, "tlsv1.1") == 0)
			v = TLS1_1_VERSION;
		else if (strcasecmp(tok, "tlsv1") == 0 || strcasecmp(tok, "tlsv1.0") == 0)
			v = TLS1_VERSION;
		else {
			snprintf(err, errlen, "client_tls_protocols: unknown protocol \"%s\" (allowed: secure, "
				 "all, tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3)", tok);
			return false;
		}
		lo = lo && lo < v ? lo : v;
		hi = hi > v ? hi : v;
	}
	return SSL_CTX_set_min_proto_version(ctx, lo) == 1 && SSL_CTX_set_max_proto_version(ctx, hi) == 1;
}

SSL_CTX *tls_client_facing_ctx(const struct ug_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_error(err, errlen, "TLS");
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (!apply_protocols(ctx, cfg->client_tls_protocols, err, errlen))
		goto fail;
	if (strcasecmp(cfg->client_tls_ciphers, "default") != 0 &&
	    SSL_CTX_set_cipher_list(ctx, cfg->client_tls_ciphers) != 1) {
		tls_error(err, errlen, "client_tls_ciphers");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->client_tls_cert_file) != 1) {
		tls_error(err, errlen, "client_tls_cert_file");
		goto fail;
	}
	warn_if_key_readable(cfg->client_tls_key_file);
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->client_tls_key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, errlen, "client_tls_key_file");
		goto fail;
	}
	if (*cfg->client_tls_ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->client_tls_ca_file, NULL) != 1) {
			tls_error(err, errlen, "client_tls_ca_file");
			goto fail;
		}
		if (cfg->client_tls_sslmode >= TLS_VERIFY_CA)
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_server_facing_ctx(int sslmode, const char *rootcert, const char *cert,
			       const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		tls_error(err, errlen, "TLS");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_alpn_protos(ctx, alpn_postgresql, sizeof(alpn_postgresql));
	if (sslmode >= TLS_VERIFY_CA) {
		bool loaded = rootcert && *rootcert
			? SSL_CTX_load_verify_locations(ctx, rootcert, NULL) == 1
			: SSL_CTX_set_default_verify_paths(ctx) == 1;
		if (!loaded) {
			tls_error(err, errlen, "upstream sslrootcert");
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if (cert && *cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
			tls_error(err, errlen, "upstream sslcert");
			goto fail;
		}
		warn_if_key_readable(key && *key ? key : cert);
		if (SSL_CTX_use_PrivateKey_file(ctx, key && *key ? key : cert, SSL_FILETYPE_PEM) != 1) {
			tls_error(err, errlen, "upstream sslkey");
			goto fail;
		}
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}
