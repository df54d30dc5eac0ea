#include "cancel.h"

#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "log.h"
#include "server.h"
#include "startup.h"
#include "stream.h"

struct cancel {
	struct proxy *px;
	uint32_t server_pid;
	uint8_t server_key[STARTUP_CANCEL_KEY_MAX];
	size_t server_key_len;
	struct stream *stream;
};

static void cancel_free(struct cancel *k)
{
	stream_free(k->stream);
	free(k);
}

/* The server closes the connection once it has read the request. */
static void on_cancel_stream(struct stream *s, enum stream_event ev, void *arg)
{
	struct cancel *k = arg;
	if (ev == STREAM_READ)
		evbuffer_drain(stream_input(s), evbuffer_get_length(stream_input(s)));
	else if (ev == STREAM_EOF || ev == STREAM_ERROR)
		cancel_free(k);
}

static void on_cancel_connected(struct stream *s, const char *error, void *arg)
{
	struct cancel *k = arg;
	if (!s) {
		log_event(LOG_WARNING, "cancel_failed", 0, NULL, "msg", error, LOG_KV_END);
		free(k);
		return;
	}
	k->stream = s;
	stream_set_cb(s, on_cancel_stream, k);
	struct pgbuf b;
	pgbuf_init(&b);
	startup_put_cancel(&b, k->server_pid, k->server_key, k->server_key_len);
	evbuffer_add(stream_output(s), b.data, b.len);
	pgbuf_free(&b);
	stream_flush(s);
	k->px->stats.cancels_forwarded++;
}

void cancel_request(struct proxy *px, uint32_t pid, const uint8_t *key, size_t key_len,
		    const char *from)
{
	struct cancel *k = calloc(1, sizeof(*k));
	if (!k)
		return;
	k->px = px;
	if (!client_cancel_target(px, pid, key, key_len, &k->server_pid, k->server_key,
				  &k->server_key_len)) {
		log_event(LOG_INFO, "cancel_ignored", 0, from, "msg", "no session matches the cancel key",
			  LOG_KV_END);
		free(k);
		return;
	}
	log_event(LOG_DEBUG, "cancel_forwarded", 0, from, LOG_KV_END);
	if (!server_connect_start(px, false, on_cancel_connected, k))
		free(k);
}

void cancel_server(struct proxy *px, uint32_t server_pid, const uint8_t *key, size_t key_len)
{
	struct cancel *k = calloc(1, sizeof(*k));
	if (!k || key_len > sizeof(k->server_key)) {
		free(k);
		return;
	}
	k->px = px;
	k->server_pid = server_pid;
	memcpy(k->server_key, key, key_len);
	k->server_key_len = key_len;
	if (!server_connect_start(px, false, on_cancel_connected, k))
		free(k);
}
