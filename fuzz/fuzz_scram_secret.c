/* Stored SCRAM secrets and SASLprep: whatever parses must format back to the
 * same text, and SASLprep must accept any byte string. */
#include <stdlib.h>
#include <string.h>

#include "scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scram_secret secret, again;
	char text[SCRAM_SECRET_MAX_LEN];
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (scram_parse_secret(s, &secret)) {
		if (!scram_format_secret(&secret, text, sizeof(text)) ||
		    !scram_parse_secret(text, &again) || memcmp(&secret, &again, sizeof(secret)) != 0)
			abort();
	}
	char *prepped = scram_saslprep(s);
	if (prepped && strlen(prepped) > strlen(s))
		abort();
	free(prepped);
	free(s);
	return 0;
}
