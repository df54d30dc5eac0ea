/* The proxy's SCRAM client side against arbitrary server messages. The input
 * is the server-first message, a NUL byte, then the server-final message.
 * The client holds keys, not a password, so a hostile iteration count costs
 * no PBKDF2 time and the fuzzer stays fast. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pgbuf.h"
#include "scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 7677's user "user", password "pencil", and the ClientKey derived
 * from it, so that the seed exchange verifies the server's signature. */
static const char secret_text[] =
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
	":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t client_key[SCRAM_KEY_LEN] = {
		0xa6, 0x0f, 0xc9, 0x23, 0xd6, 0x7e, 0x86, 0x44, 0xa9, 0x2d, 0x16, 0xb9, 0x6e, 0xda, 0x5e, 0xf4,
		0x65, 0x6b, 0x0c, 0x72, 0x5c, 0x48, 0x43, 0x74, 0xbe, 0x25, 0x53, 0x55, 0x76, 0x99, 0x6e, 0x8b,
	};
	struct scram_secret secret;
	struct pgbuf out;
	char err[128];

	if (!scram_parse_secret(secret_text, &secret))
		return 0;
	const uint8_t *nul = memchr(data, 0, size);
	size_t first_len = nul ? (size_t)(nul - data) : size;
	struct scram_client *st = scram_client_begin_keys(&secret, client_key);
	pgbuf_init(&out);
	if (st && scram_client_set_identity(st, "user", "rOprNGfwEbeRWgbNEkqO") &&
	    scram_client_first(st, &out) == SCRAM_OK) {
		pgbuf_reset(&out);
		if (scram_client_handle_server_first(st, data, first_len, &out, err, sizeof(err)) ==
		    SCRAM_OK && nul)
			(void)scram_client_verify_server_final(st, nul + 1, size - first_len - 1, err,
			                                       sizeof(err));
	}
	pgbuf_free(&out);
	scram_client_free(st);
	return 0;
}
