/* auth_file contents: parse, then look every user up and classify and use
 * every secret the way the proxy will. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authfile.h"
#include "md5auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t salt[4] = { 1, 2, 3, 4 };
	struct authfile *af;
	char err[128];
	if (authfile_parse((const char *)data, size, &af, err, sizeof(err)) != AUTHFILE_OK)
		return 0;
	for (size_t i = 0; i < authfile_count(af); i++) {
		const struct authfile_entry *e = authfile_entry_at(af, i);
		enum authfile_method use;
		if (!authfile_lookup(af, e->user))
			abort();
		(void)authfile_secret_kind(e->secret);
		(void)authfile_client_method(AUTHFILE_METHOD_SCRAM, e->secret, &use);
		(void)md5auth_check(e->secret, e->user, salt, e->secret);
	}
	authfile_free(af);
	return 0;
}
