/* Health and metrics over HTTP (libevent's evhttp): /livez, /readyz,
 * /status (JSON) and /metrics (Prometheus text format). */
#ifndef UUIDGATE_HTTP_H
#define UUIDGATE_HTTP_H

#include <stddef.h>

struct proxy;
struct http_server;

struct http_server *http_start(struct proxy *px, const char *listen, char *err, size_t errlen);
void http_free(struct http_server *h);

#endif
