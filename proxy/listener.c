#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "log.h"

#define LISTEN_BACKLOG 1024

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int len,
		      void *arg)
{
	(void)l;
	client_accept(arg, fd, addr, (socklen_t)len);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and friends: the listener retries on the next readiness. */
	log_event(LOG_WARNING, "accept_failed", 0, NULL, "msg", strerror(errno), LOG_KV_END);
}

static bool add_listener(struct proxy *px, int fd, char *err, size_t errlen)
{
	if (px->nlisteners >= PROXY_MAX_LISTENERS) {
		close(fd);
		snprintf(err, errlen, "too many listen addresses (at most %d)", PROXY_MAX_LISTENERS);
		return false;
	}
	struct evconnlistener *l = evconnlistener_new(px->base, on_accept, px,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, LISTEN_BACKLOG, fd);
	if (!l) {
		close(fd);
		snprintf(err, errlen, "cannot listen: %s", strerror(errno));
		return false;
	}
	evconnlistener_set_error_cb(l, on_accept_error);
	px->listeners[px->nlisteners++] = l;
	return true;
}

/* Returns a bound socket, or -1 with errno set. */
static int bound_socket(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	int on = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* With '*' both families are bound separately. */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static bool listen_tcp_entry(struct proxy *px, const char *name, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	char port[16];
	snprintf(port, sizeof(port), "%d", px->cfg->listen_port);
	int rc = getaddrinfo(strcmp(name, "*") == 0 ? NULL : name, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "listen_addr %s: %s", name, gai_strerror(rc));
		return false;
	}
	bool ok = true;
	for (struct addrinfo *ai = res; ok && ai; ai = ai->ai_next) {
		int fd = bound_socket(ai);
		if (fd < 0) {
			/* A host without IPv6 still serves IPv4 for '*'. */
			if (strcmp(name, "*") == 0 && ai->ai_family == AF_INET6 && errno == EADDRNOTAVAIL)
				continue;
			snprintf(err, errlen, "listen_addr %s port %d: cannot bind: %s", name, px->cfg->listen_port,
				 strerror(errno));
			ok = false;
			break;
		}
		ok = add_listener(px, fd, err, errlen);
	}
	freeaddrinfo(res);
	return ok;
}

static bool listen_tcp(struct proxy *px, char *err, size_t errlen)
{
	char list[512];
	snprintf(list, sizeof(list), "%s", px->cfg->listen_addr);
	for (char *save = NULL, *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
		if (!listen_tcp_entry(px, tok, err, errlen))
			return false;
	return true;
}

/* A socket file left by a crashed instance is removed; one that answers
 * belongs to a running server and is an error. */
static bool clear_stale_socket(const struct sockaddr_un *sun, char *err, size_t errlen)
{
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (const struct sockaddr *)sun, sizeof(*sun)) == 0) {
		close(probe);
		snprintf(err, errlen, "unix socket %s is in use by another server", sun->sun_path);
		return false;
	}
	if (probe >= 0)
		close(probe);
	unlink(sun->sun_path);
	return true;
}

static bool listen_unix(struct proxy *px, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", px->cfg->unix_socket_dir,
			 px->cfg->listen_port);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "unix_socket_dir: path too long: %s", px->cfg->unix_socket_dir);
		return false;
	}
	if (!clear_stale_socket(&sun, err, errlen))
		return false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		snprintf(err, errlen, "unix_socket_dir %s: cannot bind %s: %s", px->cfg->unix_socket_dir,
			 sun.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	chmod(sun.sun_path, (mode_t)px->cfg->unix_socket_mode);
	snprintf(px->unix_socket_path, sizeof(px->unix_socket_path), "%s", sun.sun_path);
	return add_listener(px, fd, err, errlen);
}

bool listener_open_all(struct proxy *px, char *err, size_t errlen)
{
	if (*px->cfg->listen_addr && !listen_tcp(px, err, errlen))
		return false;
	if (*px->cfg->unix_socket_dir && !listen_unix(px, err, errlen))
		return false;
	return true;
}

void listener_close_all(struct proxy *px)
{
	for (int i = 0; i < px->nlisteners; i++)
		evconnlistener_free(px->listeners[i]);
	px->nlisteners = 0;
	if (px->unix_socket_path[0]) {
		unlink(px->unix_socket_path);
		px->unix_socket_path[0] = '\0';
	}
}
