/* A connection's byte stream: one socket (plain or TLS) with an input and an
 * output evbuffer, and one callback that reports events to the owner.
 *
 * Plain sockets are driven with raw events so that output is written straight
 * from stream_flush() and write interest is registered only when the kernel
 * buffer is full: one send() per relayed batch, no extra epoll round trip.
 * TLS sockets use libevent's OpenSSL bufferevent underneath, mapped onto the
 * same callback. */
#ifndef UUIDGATE_STREAM_H
#define UUIDGATE_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

enum stream_event {
	STREAM_READ,       /* new bytes in the input buffer */
	STREAM_DRAINED,    /* output fell below the low-water mark (after stream_want_drained) */
	STREAM_TLS_READY,  /* TLS handshake completed */
	STREAM_EOF,        /* the peer closed its side */
	STREAM_ERROR,      /* socket or TLS error; errno/OpenSSL details in stream_error_text */
};

struct stream;
typedef void (*stream_cb)(struct stream *s, enum stream_event ev, void *arg);

/* Takes ownership of fd (closed by stream_free). */
struct stream *stream_new_plain(struct event_base *base, int fd, stream_cb cb, void *arg);
/* Takes ownership of fd and ssl. */
struct stream *stream_new_tls(struct event_base *base, int fd, SSL *ssl, bool accepting,
                              stream_cb cb, void *arg);
void stream_free(struct stream *s);
/* Hands the stream to a new owner. */
void stream_set_cb(struct stream *s, stream_cb cb, void *arg);
/* Frees a plain stream but returns its socket for reuse (e.g. to start TLS on
 * it). Bytes still in the input buffer are discarded. */
int stream_detach_fd(struct stream *s);

struct evbuffer *stream_input(struct stream *s);
struct evbuffer *stream_output(struct stream *s);
size_t stream_output_length(struct stream *s);
bool stream_is_tls(const struct stream *s);
SSL *stream_ssl(struct stream *s);
int stream_fd(const struct stream *s);

/* Writes what the output buffer holds, as far as the socket takes it now. */
void stream_flush(struct stream *s);
void stream_pause_read(struct stream *s);
void stream_resume_read(struct stream *s);
bool stream_read_paused(const struct stream *s);
/* Ask for one STREAM_DRAINED when the output buffer falls to `low` bytes. */
void stream_want_drained(struct stream *s, size_t low);
const char *stream_error_text(struct stream *s);

#endif
