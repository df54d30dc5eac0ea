/* TCP and Unix-socket listeners that hand accepted sockets to the clients. */
#ifndef UUIDGATE_LISTENER_H
#define UUIDGATE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy.h"

bool listener_open_all(struct proxy *px, char *err, size_t errlen);
void listener_close_all(struct proxy *px);

#endif
