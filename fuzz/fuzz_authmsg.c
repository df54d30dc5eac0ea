/* Authentication message bodies from either peer. The first input byte picks
 * the parser, the rest is the body. */
#include <stddef.h>
#include <stdint.h>

#include "authmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authmsg_request req;
	const char *s;
	const uint8_t *payload;
	size_t n;
	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0: (void)authmsg_parse_request(data + 1, size - 1, &req); break;
	case 1: (void)authmsg_parse_password(data + 1, size - 1, &s); break;
	case 2: (void)authmsg_parse_sasl_initial(data + 1, size - 1, &s, &payload, &n); break;
	default: (void)authmsg_parse_sasl_response(data + 1, size - 1, &payload, &n); break;
	}
	return 0;
}
