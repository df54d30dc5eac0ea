/* Writing an error message into a caller's buffer, as the parsers report
 * what was wrong. */
#ifndef UUIDGATE_ERRTEXT_H
#define UUIDGATE_ERRTEXT_H

#include <stddef.h>

/* Formats into err[errlen]; does nothing when err is NULL or errlen is 0. */
void errtext_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
