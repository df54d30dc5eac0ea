#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

/* Largest single read: big enough for bulk transfers, small enough that one
 * busy connection cannot monopolise the loop. */
#define STREAM_READ_CHUNK (256 * 1024)

struct stream {
	int fd;
	stream_cb cb;
	void *arg;
	bool paused;
	bool want_drained;
	size_t drained_low;
	char error[160];
	/* plain */
	struct event *rev;
	struct event *wev;
	struct evbuffer *in;
	struct evbuffer *out;
	/* TLS */
	struct bufferevent *bev;
};

static void set_errno_text(struct stream *s, int err)
{
	snprintf(s->error, sizeof(s->error), "%s", strerror(err));
}

static void plain_read(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	(void)what;
	int n = evbuffer_read(s->in, fd, STREAM_READ_CHUNK);
	if (n > 0) {
		s->cb(s, STREAM_READ, s->arg);
	} else if (n == 0) {
		s->cb(s, STREAM_EOF, s->arg);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		set_errno_text(s, errno);
		s->cb(s, STREAM_ERROR, s->arg);
	}
}

static void check_drained(struct stream *s)
{
	if (s->want_drained && stream_output_length(s) <= s->drained_low) {
		s->want_drained = false;
		s->cb(s, STREAM_DRAINED, s->arg);
	}
}

/* Returns false after a write error (already reported or to be reported). */
static bool plain_write(struct stream *s)
{
	while (evbuffer_get_length(s->out) > 0) {
		int n = evbuffer_write(s->out, s->fd);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			event_add(s->wev, NULL);
			return true;
		}
		set_errno_text(s, n == 0 ? EPIPE : errno);
		return false;
	}
	event_del(s->wev);
	return true;
}

static void plain_writable(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	(void)fd;
	(void)what;
	if (!plain_write(s)) {
		event_del(s->wev);
		s->cb(s, STREAM_ERROR, s->arg);
		return;
	}
	check_drained(s);
}

struct stream *stream_new_plain(struct event_base *base, int fd, stream_cb cb, void *arg)
{
	struct stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fd = fd;
	s->cb = cb;
	s->arg = arg;
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	s->rev = event_new(base, fd, EV_READ | EV_PERSIST, plain_read, s);
	s->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, plain_writable, s);
	if (!s->in || !s->out || !s->rev || !s->wev || event_add(s->rev, NULL) != 0) {
		s->fd = -1;
		stream_free(s);
		return NULL;
	}
	return s;
}

static void tls_read(struct bufferevent *bev, void *arg)
{
	struct stream *s = arg;
	(void)bev;
	s->cb(s, STREAM_READ, s->arg);
}

static void tls_write(struct bufferevent *bev, void *arg)
{
	struct stream *s = arg;
	(void)bev;
	check_drained(s);
}

static void tls_error_text(struct stream *s)
{
	unsigned long e = bufferevent_get_openssl_error(s->bev);
	if (e)
		ERR_error_string_n(e, s->error, sizeof(s->error));
	else if (errno)
		set_errno_text(s, errno);
	else
		snprintf(s->error, sizeof(s->error), "TLS connection closed");
}

static void tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct stream *s = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		s->cb(s, STREAM_TLS_READY, s->arg);
	} else if (what & BEV_EVENT_EOF) {
		s->cb(s, STREAM_EOF, s->arg);
	} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		tls_error_text(s);
		s->cb(s, STREAM_ERROR, s->arg);
	}
}

struct stream *stream_new_tls(struct event_base *base, int fd, SSL *ssl, bool accepting,
			      stream_cb cb, void *arg)
{
	struct stream *s = calloc(1, sizeof(*s));
	if (!s) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	s->fd = fd;
	s->cb = cb;
	s->arg = arg;
	s->bev = bufferevent_openssl_socket_new(base, fd, ssl,
		accepting ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
		BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev) {
		SSL_free(ssl);
		close(fd);
		free(s);
		return NULL;
	}
	/* A dirty shutdown from a peer that just closes its socket is normal for
	 * PostgreSQL clients; report it as EOF, not as an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	bufferevent_set_max_single_read(s->bev, STREAM_READ_CHUNK);
	bufferevent_setcb(s->bev, tls_read, tls_write, tls_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	return s;
}

void stream_free(struct stream *s)
{
	if (!s)
		return;
	if (s->bev) {
		bufferevent_free(s->bev); /* closes the socket and frees the SSL */
	} else {
		if (s->rev)
			event_free(s->rev);
		if (s->wev)
			event_free(s->wev);
		if (s->in)
			evbuffer_free(s->in);
		if (s->out)
			evbuffer_free(s->out);
		if (s->fd >= 0)
			close(s->fd);
	}
	free(s);
}

void stream_set_cb(struct stream *s, stream_cb cb, void *arg)
{
	s->cb = cb;
	s->arg = arg;
}

int stream_detach_fd(struct stream *s)
{
	int fd = s->fd;
	if (s->bev)
		return -1;
	s->fd = -1;
	stream_free(s);
	return fd;
}

struct evbuffer *stream_input(struct stream *s)
{
	return s->bev ? bufferevent_get_input(s->bev) : s->in;
}

struct evbuffer *stream_output(struct stream *s)
{
	return s->bev ? bufferevent_get_output(s->bev) : s->out;
}

size_t stream_output_length(struct stream *s)
{
	return evbuffer_get_length(stream_output(s));
}

bool stream_is_tls(const struct stream *s)
{
	return s->bev != NULL;
}

SSL *stream_ssl(struct stream *s)
{
	return s->bev ? bufferevent_openssl_get_ssl(s->bev) : NULL;
}

int stream_fd(const struct stream *s)
{
	return s->fd;
}

void stream_flush(struct stream *s)
{
	if (s->bev)
		return; /* the bufferevent writes on its own */
	if (event_pending(s->wev, EV_WRITE, NULL))
		return; /* the kernel buffer is full; the write event will continue */
	if (!plain_write(s))
		event_add(s->wev, NULL); /* report the error from the loop, not from here */
}

void stream_pause_read(struct stream *s)
{
	if (s->paused)
		return;
	s->paused = true;
	if (s->bev)
		bufferevent_disable(s->bev, EV_READ);
	else
		event_del(s->rev);
}

void stream_resume_read(struct stream *s)
{
	if (!s->paused)
		return;
	s->paused = false;
	if (s->bev)
		bufferevent_enable(s->bev, EV_READ);
	else
		event_add(s->rev, NULL);
}

bool stream_read_paused(const struct stream *s)
{
	return s->paused;
}

void stream_want_drained(struct stream *s, size_t low)
{
	s->want_drained = true;
	s->drained_low = low;
	if (s->bev)
		bufferevent_setwatermark(s->bev, EV_WRITE, low, 0);
}

const char *stream_error_text(struct stream *s)
{
	return s->error[0] ? s->error : "connection error";
}
