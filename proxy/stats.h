/* Counting clients by state for /status, /metrics and SHOW commands. */
#ifndef UUIDGATE_STATS_H
#define UUIDGATE_STATS_H

#include <stdint.h>

#include "client.h"

#define STATS_CLIENT_STATES 16

struct client_counts {
	int by_state[STATS_CLIENT_STATES];
	int held;
	int active;
	int servers;
	uint64_t bytes_client_to_server;   /* closed and live connections */
	uint64_t bytes_server_to_client;
	uint64_t messages_client_to_server;
	uint64_t messages_server_to_client;
};

void stats_count_clients(struct proxy *px, struct client_counts *out);

#endif
