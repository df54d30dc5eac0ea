/* systemd's service notifications (Type=notify): READY=1 when the gate
 * opens, STATUS= with progress, EXTEND_TIMEOUT_USEC= while migrating so the
 * start timeout never kills a migration, STOPPING=1, and the watchdog.
 * Without systemd (no NOTIFY_SOCKET) every call does nothing. Sending never
 * blocks: a message that does not fit in the socket's queue is dropped. */
#ifndef UUIDGATE_NOTIFY_H
#define UUIDGATE_NOTIFY_H

struct event_base;

void notify_init(struct event_base *base);
void notify_ready(const char *status);
void notify_status(const char *status, int extend_timeout_sec);
void notify_stopping(void);
void notify_free(void);

#endif
