#include "notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

/* systemd's notification protocol is one datagram per message to the socket
 * named by $NOTIFY_SOCKET. It is spoken here directly rather than through
 * libsystemd's sd_notify(), which blocks when the socket's queue is full: an
 * event loop must never wait on its service manager. A message that does
 * not fit is dropped; the next one carries the current state anyway. */

static struct {
	int fd;
	struct sockaddr_un addr;
	socklen_t addr_len;
	struct event *watchdog;
} notifier = { -1, { 0 }, 0, NULL };

static void send_message(const char *text)
{
	if (notifier.fd < 0)
		return;
	sendto(notifier.fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL,
	       (const struct sockaddr *)&notifier.addr, notifier.addr_len);
}

static bool open_socket(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n = path ? strlen(path) : 0;
	if (n < 2 || n >= sizeof(notifier.addr.sun_path) || (path[0] != '/' && path[0] != '@'))
		return false;
	notifier.addr.sun_family = AF_UNIX;
	memcpy(notifier.addr.sun_path, path, n);
	if (path[0] == '@')
		notifier.addr.sun_path[0] = '\0'; /* the abstract namespace */
	notifier.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
	notifier.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return notifier.fd >= 0;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	send_message("WATCHDOG=1");
}

/* WATCHDOG_USEC applies to this process only when WATCHDOG_PID, if set,
 * names it. */
static long long watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	if (!usec || (pid && atol(pid) != (long)getpid()))
		return 0;
	return atoll(usec);
}

void notify_init(struct event_base *base)
{
	if (!open_socket())
		return;
	long long usec = watchdog_usec();
	if (usec <= 0)
		return;
	/* Ping at half the interval, as systemd recommends. */
	struct timeval tv = { (time_t)(usec / 2 / 1000000), (suseconds_t)(usec / 2 % 1000000) };
	notifier.watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
	if (notifier.watchdog)
		evtimer_add(notifier.watchdog, &tv);
}

void notify_ready(const char *status)
{
	char text[600];
	snprintf(text, sizeof(text), "READY=1\nSTATUS=%s", status);
	send_message(text);
}

void notify_status(const char *status, int extend_timeout_sec)
{
	char text[700];
	if (extend_timeout_sec > 0)
		snprintf(text, sizeof(text), "STATUS=%s\nEXTEND_TIMEOUT_USEC=%llu", status,
			 (unsigned long long)extend_timeout_sec * 1000000ULL);
	else
		snprintf(text, sizeof(text), "STATUS=%s", status);
	send_message(text);
}

void notify_stopping(void)
{
	send_message("STOPPING=1");
}

void notify_free(void)
{
	if (notifier.watchdog)
		event_free(notifier.watchdog);
	notifier.watchdog = NULL;
	if (notifier.fd >= 0)
		close(notifier.fd);
	notifier.fd = -1;
}
