#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "net.h"
#include "startup.h"
#include "tls.h"

struct server_connect {
	struct proxy *px;
	bool use_tls;
	server_ready_fn cb;
	void *arg;
	struct evdns_getaddrinfo_request *dns_req;
	struct evutil_addrinfo *addrs;
	struct evutil_addrinfo *next_addr;
	int fd;
	struct event *io;
	struct event *timer;
	struct event *kick;
	struct stream *tls_stream;
	char error[256];
};

static void release(struct server_connect *sc)
{
	if (sc->dns_req)
		evdns_getaddrinfo_cancel(sc->dns_req);
	if (sc->addrs)
		evutil_freeaddrinfo(sc->addrs);
	if (sc->io)
		event_free(sc->io);
	if (sc->timer)
		event_free(sc->timer);
	if (sc->kick)
		event_free(sc->kick);
	if (sc->tls_stream)
		stream_free(sc->tls_stream);
	if (sc->fd >= 0)
		close(sc->fd);
	free(sc);
}

void server_connect_abort(struct server_connect *sc)
{
	if (sc)
		release(sc);
}

static void finish(struct server_connect *sc, struct stream *stream)
{
	server_ready_fn cb = sc->cb;
	void *arg = sc->arg;
	char error[256];
	snprintf(error, sizeof(error), "%s", sc->error[0] ? sc->error : "could not connect to server");
	release(sc);
	cb(stream, stream ? NULL : error, arg);
}

static void fail(struct server_connect *sc, const char *fmt, const char *detail)
{
	snprintf(sc->error, sizeof(sc->error), fmt, detail);
	finish(sc, NULL);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct server_connect *sc = arg;
	(void)fd;
	(void)what;
	fail(sc, "%s", "timeout while connecting to the server (server_connect_timeout)");
}

static void wait_io(struct server_connect *sc, short what, event_callback_fn fn)
{
	if (sc->io)
		event_free(sc->io);
	sc->io = event_new(sc->px->base, sc->fd, what, fn, sc);
	if (!sc->io || event_add(sc->io, NULL) != 0)
		fail(sc, "%s", "out of memory");
}

static void hand_over_plain(struct server_connect *sc)
{
	struct stream *s = stream_new_plain(sc->px->base, sc->fd, NULL, NULL);
	sc->fd = -1;
	if (!s) {
		fail(sc, "%s", "out of memory");
		return;
	}
	finish(sc, s);
}

static void on_tls_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct server_connect *sc = arg;
	if (ev == STREAM_TLS_READY) {
		sc->tls_stream = NULL;
		finish(sc, s);
	} else if (ev == STREAM_ERROR || ev == STREAM_EOF) {
		fail(sc, "TLS handshake with the server failed: %s", stream_error_text(s));
	}
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void start_tls(struct server_connect *sc)
{
	const struct upstream *up = sc->px->upstream;
	SSL *ssl = SSL_new(up->tls);
	if (!ssl) {
		fail(sc, "%s", "cannot create a TLS session");
		return;
	}
	const char *name = up->host;
	if (name && !is_ip_literal(name))
		SSL_set_tlsext_host_name(ssl, name);
	if (up->sslmode == TLS_VERIFY_FULL && name && SSL_set1_host(ssl, name) != 1) {
		SSL_free(ssl);
		fail(sc, "%s", "cannot set the host name to verify");
		return;
	}
	int fd = sc->fd;
	sc->fd = -1;
	sc->tls_stream = stream_new_tls(sc->px->base, fd, ssl, false, on_tls_event, sc);
	if (!sc->tls_stream)
		fail(sc, "%s", "out of memory");
}

/* Reads exactly the one-byte answer to SSLRequest. Anything the server sends
 * beyond it before the handshake would be unauthenticated plaintext that
 * could be mistaken for TLS-protected data later, so it is refused. */
static void on_ssl_answer(evutil_socket_t fd, short what, void *arg)
{
	struct server_connect *sc = arg;
	(void)what;
	char answer, extra;
	ssize_t n = recv(fd, &answer, 1, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	event_del(sc->io);
	if (n != 1) {
		fail(sc, "%s", "server closed the connection during the SSL request");
	} else if (answer == 'S') {
		if (recv(fd, &extra, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
			fail(sc, "%s", "server sent unencrypted data after its SSL response");
		else
			start_tls(sc);
	} else if (answer == 'N') {
		if (sc->px->upstream->sslmode >= TLS_REQUIRE)
			fail(sc, "%s", "server does not support SSL, but upstream sslmode requires it");
		else
			hand_over_plain(sc);
	} else {
		fail(sc, "%s", "server answered the SSL request with an error");
	}
}

static void send_ssl_request(struct server_connect *sc)
{
	struct pgbuf b;
	pgbuf_init(&b);
	startup_put_ssl_request(&b);
	ssize_t n = send(sc->fd, b.data, b.len, MSG_NOSIGNAL);
	bool ok = n == (ssize_t)b.len;
	pgbuf_free(&b);
	if (!ok) {
		fail(sc, "could not send SSL request: %s", strerror(errno));
		return;
	}
	wait_io(sc, EV_READ | EV_PERSIST, on_ssl_answer);
}

static void connected(struct server_connect *sc)
{
	const struct upstream *up = sc->px->upstream;
	bool tls = sc->use_tls && up->tls && up->sslmode >= TLS_PREFER;
	if (tls)
		send_ssl_request(sc);
	else
		hand_over_plain(sc);
}

static void try_next_address(struct server_connect *sc);

static void on_connect_done(evutil_socket_t fd, short what, void *arg)
{
	struct server_connect *sc = arg;
	(void)what;
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err) {
		snprintf(sc->error, sizeof(sc->error), "could not connect to server: %s", strerror(err));
		close(sc->fd);
		sc->fd = -1;
		try_next_address(sc);
		return;
	}
	event_del(sc->io);
	connected(sc);
}

static void connect_to(struct server_connect *sc, const struct sockaddr *sa, socklen_t len)
{
	sc->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sc->fd < 0) {
		fail(sc, "could not create socket: %s", strerror(errno));
		return;
	}
	if (sa->sa_family != AF_UNIX)
		net_tune_socket(sc->fd, sc->px->cfg);
	if (connect(sc->fd, sa, len) == 0) {
		connected(sc);
	} else if (errno == EINPROGRESS) {
		wait_io(sc, EV_WRITE, on_connect_done);
	} else {
		snprintf(sc->error, sizeof(sc->error), "could not connect to server: %s", strerror(errno));
		close(sc->fd);
		sc->fd = -1;
		try_next_address(sc);
	}
}

static void try_next_address(struct server_connect *sc)
{
	struct evutil_addrinfo *ai = sc->next_addr;
	if (!ai) {
		finish(sc, NULL);
		return;
	}
	sc->next_addr = ai->ai_next;
	connect_to(sc, ai->ai_addr, (socklen_t)ai->ai_addrlen);
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct server_connect *sc = arg;
	sc->dns_req = NULL;
	if (result == EVUTIL_EAI_CANCEL)
		return;
	if (result != 0) {
		fail(sc, "could not resolve the server's host name: %s", evutil_gai_strerror(result));
		return;
	}
	sc->addrs = res;
	sc->next_addr = res;
	try_next_address(sc);
}

static void connect_unix(struct server_connect *sc)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sc->px->upstream->unix_path);
	snprintf(sc->error, sizeof(sc->error), "could not connect to server socket %s",
		 sc->px->upstream->unix_path);
	connect_to(sc, (const struct sockaddr *)&sun, sizeof(sun));
}

/* Runs from the loop, never inside server_connect_start(), so that the
 * callback cannot fire before the caller has stored the handle. */
static void begin(evutil_socket_t fd, short what, void *arg)
{
	struct server_connect *sc = arg;
	(void)fd;
	(void)what;
	const struct upstream *up = sc->px->upstream;
	if (up->unix_socket) {
		connect_unix(sc);
		return;
	}
	struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					 .ai_protocol = IPPROTO_TCP };
	if (up->hostaddr)
		hints.ai_flags = EVUTIL_AI_NUMERICHOST;
	/* A numeric or /etc/hosts answer comes back synchronously (and may
	 * already have released sc): only a pending request is stored. */
	struct evdns_getaddrinfo_request *req = evdns_getaddrinfo(
		sc->px->dns, up->hostaddr ? up->hostaddr : up->host, up->port, &hints, on_resolved, sc);
	if (req)
		sc->dns_req = req;
}

struct server_connect *server_connect_start(struct proxy *px, bool use_tls, server_ready_fn cb,
					    void *arg)
{
	struct server_connect *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return NULL;
	sc->px = px;
	sc->use_tls = use_tls;
	sc->cb = cb;
	sc->arg = arg;
	sc->fd = -1;
	struct timeval tv = { .tv_sec = px->cfg->server_connect_timeout_ms / 1000,
			      .tv_usec = (px->cfg->server_connect_timeout_ms % 1000) * 1000 };
	struct timeval now = { 0, 0 };
	sc->timer = evtimer_new(px->base, on_timeout, sc);
	sc->kick = evtimer_new(px->base, begin, sc);
	if (!sc->timer || !sc->kick) {
		release(sc);
		return NULL;
	}
	evtimer_add(sc->timer, &tv);
	evtimer_add(sc->kick, &now);
	return sc;
}
