/* Small socket helpers shared by the listeners and the server connector. */
#ifndef UUIDGATE_NET_H
#define UUIDGATE_NET_H

#include <stddef.h>
#include <sys/socket.h>

#include "config.h"

/* TCP_NODELAY and keepalive as configured; harmless on Unix sockets. */
void net_tune_socket(int fd, const struct ug_config *cfg);
/* "1.2.3.4:5678", "[::1]:5678" or "unix". */
void net_format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen);

#endif
