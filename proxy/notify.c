#include "notify.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

static struct event *watchdog_timer;

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

void notify_init(struct event_base *base)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	/* Ping at half the interval, as systemd recommends. */
	struct timeval tv = { (time_t)(usec / 2 / 1000000), (suseconds_t)(usec / 2 % 1000000) };
	watchdog_timer = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
	if (watchdog_timer)
		evtimer_add(watchdog_timer, &tv);
}

void notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_status(const char *status, int extend_timeout_sec)
{
	if (extend_timeout_sec > 0)
		sd_notifyf(0, "STATUS=%s\nEXTEND_TIMEOUT_USEC=%llu", status,
			   (unsigned long long)extend_timeout_sec * 1000000ULL);
	else
		sd_notifyf(0, "STATUS=%s", status);
}

void notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void notify_free(void)
{
	if (watchdog_timer)
		event_free(watchdog_timer);
	watchdog_timer = NULL;
}
#else
void notify_init(struct event_base *base)
{
	(void)base;
}

void notify_ready(const char *status)
{
	(void)status;
}

void notify_status(const char *status, int extend_timeout_sec)
{
	(void)status;
	(void)extend_timeout_sec;
}

void notify_stopping(void)
{
}

void notify_free(void)
{
}
#endif
