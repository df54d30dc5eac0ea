#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "message.h"
#include "startup.h"

int main(void)
{
	uint8_t ssl[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	struct startup_packet p;
	assert(startup_parse(ssl, sizeof(ssl), &p) == STARTUP_OK);
	assert(p.kind == STARTUP_SSL_REQUEST);
	printf("ok\n");
	return 0;
}
