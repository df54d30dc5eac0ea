/* The proxy's SCRAM server side against arbitrary client messages. The input
 * is the client-first message, a NUL byte, then the client-final message
 * (SCRAM text never holds NUL, so the split loses nothing). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pgbuf.h"
#include "scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 7677's user "user", password "pencil", with the RFC's server nonce,
 * so that the seed exchange reaches a successful proof check. */
static const char secret_text[] =
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
	":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scram_secret secret;
	struct pgbuf out;
	char err[128];
	uint8_t key[SCRAM_KEY_LEN];

	if (!scram_parse_secret(secret_text, &secret))
		return 0;
	const uint8_t *nul = memchr(data, 0, size);
	size_t first_len = nul ? (size_t)(nul - data) : size;
	struct scram_server *st = scram_server_begin(&secret);
	if (!st || !scram_server_set_nonce(st, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")) {
		scram_server_free(st);
		return 0;
	}
	pgbuf_init(&out);
	if (scram_server_handle_client_first(st, data, first_len, &out, err, sizeof(err)) ==
	    SCRAM_OK && nul) {
		pgbuf_reset(&out);
		if (scram_server_handle_client_final(st, nul + 1, size - first_len - 1, &out, err,
		                                     sizeof(err)) == SCRAM_OK)
			(void)scram_server_client_key(st, key);
	}
	pgbuf_free(&out);
	scram_server_free(st);
	return 0;
}
