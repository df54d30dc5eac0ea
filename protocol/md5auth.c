#include "md5auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "scram.h"

#define MD5_DIGEST_BYTES 16

/* "md5" + hex(md5(a + b)); both parts are hashed without a copy. */
static bool md5_hex(const void *a, size_t alen, const void *b, size_t blen,
                    char out[MD5AUTH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t digest[MD5_DIGEST_BYTES];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	          EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1 &&
	          EVP_DigestFinal_ex(ctx, digest, &len) == 1 && len == MD5_DIGEST_BYTES;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return false;
	memcpy(out, "md5", 3);
	for (size_t i = 0; i < MD5_DIGEST_BYTES; i++) {
		out[3 + 2 * i] = hex[digest[i] >> 4];
		out[4 + 2 * i] = hex[digest[i] & 15];
	}
	out[MD5AUTH_LEN] = '\0';
	return true;
}

bool md5auth_is_secret(const char *s)
{
	return strncmp(s, "md5", 3) == 0 && strlen(s) == MD5AUTH_LEN &&
	       strspn(s + 3, "0123456789abcdef") == MD5AUTH_LEN - 3;
}

bool md5auth_hash(const char *password, const char *user, char out[MD5AUTH_LEN + 1])
{
	return md5_hex(password, strlen(password), user, strlen(user), out);
}

bool md5auth_response(const char *secret, const char *user,
                      const uint8_t salt[MD5AUTH_SALT_LEN], char out[MD5AUTH_LEN + 1])
{
	char stored[MD5AUTH_LEN + 1];
	struct scram_secret scram;
	/* A SCRAM secret is not a password: hashing it as one would let anyone
	 * who read the secret log in with md5. */
	if (scram_parse_secret(secret, &scram))
		return false;
	if (md5auth_is_secret(secret))
		memcpy(stored, secret, sizeof(stored));
	else if (!md5auth_hash(secret, user, stored))
		return false;
	bool ok = md5_hex(stored + 3, MD5AUTH_LEN - 3, salt, MD5AUTH_SALT_LEN, out);
	OPENSSL_cleanse(stored, sizeof(stored));
	return ok;
}

bool md5auth_check(const char *secret, const char *user, const uint8_t salt[MD5AUTH_SALT_LEN],
                   const char *client_response)
{
	char expected[MD5AUTH_LEN + 1];
	if (secret[0] == '\0' || strlen(client_response) != MD5AUTH_LEN ||
	    !md5auth_response(secret, user, salt, expected))
		return false;
	return CRYPTO_memcmp(expected, client_response, MD5AUTH_LEN) == 0;
}
