#include "stats.h"

#include <string.h>

void stats_count_clients(struct proxy *px, struct client_counts *out)
{
	memset(out, 0, sizeof(*out));
	out->bytes_client_to_server = px->stats.bytes_client_to_server;
	out->bytes_server_to_client = px->stats.bytes_server_to_client;
	out->messages_client_to_server = px->stats.messages_client_to_server;
	out->messages_server_to_client = px->stats.messages_server_to_client;
	for (struct client *c = px->clients; c; c = client_next(c)) {
		enum client_state st = client_get_state(c);
		uint64_t b1, b2, m1, m2;
		if ((int)st < STATS_CLIENT_STATES)
			out->by_state[st]++;
		out->held += st == CL_GATE;
		out->active += st == CL_ACTIVE;
		out->servers += client_has_server(c);
		client_traffic(c, &b1, &b2, &m1, &m2);
		out->bytes_client_to_server += b1;
		out->bytes_server_to_client += b2;
		out->messages_client_to_server += m1;
		out->messages_server_to_client += m2;
	}
}
