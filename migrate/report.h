/* `migrate status` and `migrate plan`: read the catalog, change nothing. */
#ifndef UUIDGATE_REPORT_H
#define UUIDGATE_REPORT_H

#include <stdio.h>

#include "runner.h"

bool report_status(struct runner *r, FILE *out, struct mg_error *err);
bool report_plan(struct runner *r, FILE *out, struct mg_error *err);

#endif
