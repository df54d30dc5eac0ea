/* The two SASL messages the proxy inspects while relaying a passthrough
 * login: the server's AuthenticationSASL mechanism list, which it filters,
 * and the client's SASLInitialResponse, whose mechanism and gs2 flag it reads.
 * The first input byte picks the parser; the rest is the body.
 *
 * Checks: a filtered list is one well-framed 'R' message that offers no
 * channel-binding mechanism, only mechanisms the server offered, in order;
 * the mechanism read from a SASLInitialResponse lies inside the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "pgbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Is name one of the NUL-terminated strings in list[0..len)? */
static bool offered(const char *name, const uint8_t *list, size_t len)
{
	size_t i = 4;
	while (i < len) {
		const uint8_t *end = memchr(list + i, 0, len - i);
		if (!end)
			return false;
		if (strcmp((const char *)list + i, name) == 0)
			return true;
		i = (size_t)(end - list) + 1;
	}
	return false;
}

static void check_filter(const uint8_t *body, size_t len)
{
	struct pgbuf out;
	pgbuf_init(&out);
	if (pgmsg_filter_sasl_mechanisms(body, len, &out)) {
		uint8_t type;
		uint32_t total;
		if (pgmsg_header(out.data, out.len, PG_PRE_AUTH_MAX_MESSAGE, &type, &total) != PGMSG_OK ||
		    type != 'R' || total != out.len || out.len < 11 || out.data[out.len - 1] != 0)
			abort();
		size_t i = 9;
		size_t kept = 0;
		while (i < out.len - 1) {
			const char *name = (const char *)out.data + i;
			size_t n = strlen(name);
			if (n == 0 || (n > 5 && strcmp(name + n - 5, "-PLUS") == 0) || !offered(name, body, len))
				abort();
			kept++;
			i += n + 1;
		}
		if (kept == 0 || i != out.len - 1)
			abort();
	}
	pgbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const uint8_t *body = data + 1;
	size_t len = size - 1;
	if (data[0] & 1) {
		check_filter(body, len);
	} else {
		const char *mechanism = NULL;
		char flag = 0;
		if (pgmsg_parse_sasl_initial(body, len, &mechanism, &flag)) {
			const uint8_t *m = (const uint8_t *)mechanism;
			if (m < body || m >= body + len || memchr(m, 0, (size_t)(body + len - m)) == NULL)
				abort();
		}
	}
	return 0;
}
