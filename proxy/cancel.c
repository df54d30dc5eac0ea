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
	struct server_connect *connecting;
	struct stream *stream;
	struct cancel *prev, *next;
};

/* Requests on their way to the server, so that an exit frees them too: the
 * server closes a cancel connection only once it has read the request, and
 * a stalled server never does. */
static struct cancel *in_flight;

static struct cancel *cancel_new(struct proxy *px)
{
	struct cancel *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->px = px;
	k->next = in_flight;
	if (in_flight)
		in_flight->prev = k;
	in_flight = k;
	return k;
}

static void cancel_free(struct cancel *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else
		in_flight = k->next;
	if (k->next)
		k->next->prev = k->prev;
	server_connect_abort(k->connecting);
	stream_free(k->stream);
	free(k);
}

void cancel_free_all(void)
{
	while (in_flight)
		cancel_free(in_flight);
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
	k->connecting = NULL;
	if (!s) {
		log_event(LOG_WARNING, "cancel_failed", 0, NULL, "msg", error, LOG_KV_END);
		cancel_free(k);
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
	struct cancel *k = cancel_new(px);
	if (!k)
		return;
	if (!client_cancel_target(px, pid, key, key_len, &k->server_pid, k->server_key,
				  &k->server_key_len)) {
		log_event(LOG_INFO, "cancel_ignored", 0, from, "msg", "no session matches the cancel key",
			  LOG_KV_END);
		cancel_free(k);
		return;
	}
	log_event(LOG_DEBUG, "cancel_forwarded", 0, from, LOG_KV_END);
	if (!(k->connecting = server_connect_start(px, false, on_cancel_connected, k)))
		cancel_free(k);
}

void cancel_server(struct proxy *px, uint32_t server_pid, const uint8_t *key, size_t key_len)
{
	if (key_len > STARTUP_CANCEL_KEY_MAX)
		return;
	struct cancel *k = cancel_new(px);
	if (!k)
		return;
	k->server_pid = server_pid;
	memcpy(k->server_key, key, key_len);
	k->server_key_len = key_len;
	if (!(k->connecting = server_connect_start(px, false, on_cancel_connected, k)))
		cancel_free(k);
}
