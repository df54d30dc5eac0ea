/* Everything the migration decides is derived from the catalog: which tables
 * exist, what their uuid column, default, index and constraints look like,
 * and PhoenixKit's version marker. Nothing is remembered between runs except
 * the column comments that mark what `up` changed. */
#ifndef UUIDGATE_CATALOG_H
#define UUIDGATE_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "runner.h"
#include "strb.h"

#define CATALOG_TABLES 33

/* Comment prefixes marking a column `up` created or completed. */
#define CATALOG_MARK_CREATED "uuidgate:v40 created"
#define CATALOG_MARK_KEPT "uuidgate:v40 kept"
/* A completed column down has put back; the comment goes last, so that an
 * interrupted down can still tell it from PhoenixKit's unmarked columns. */
#define CATALOG_MARK_RESTORED "uuidgate:v40 restored"

extern const char *const catalog_tables[CATALOG_TABLES];

enum catalog_mark {
	CATALOG_MARK_NONE,      /* no comment */
	CATALOG_MARK_IS_CREATED,
	CATALOG_MARK_IS_KEPT,
	CATALOG_MARK_IS_RESTORED,
	CATALOG_MARK_FOREIGN,   /* someone else's comment: left alone */
};

/* What a pre-existing column looked like before `up` completed it. */
struct catalog_kept {
	bool was_nullable;
	bool had_index;
	char *old_default;      /* NULL: none */
};

struct table_state {
	const char *name;
	bool exists;
	unsigned int oid;
	char pk[64];                /* single-column integer primary key; "" if none */
	char inserted_at_type[40];  /* "" when no timestamp inserted_at */
	bool has_uuid;
	char uuid_type[64];
	bool uuid_notnull;
	char *uuid_default;         /* NULL: none */
	bool default_ok;
	char *comment;
	enum catalog_mark mark;
	struct catalog_kept kept;
	char unique_index[64];      /* a valid unique index on exactly (uuid); "" if none */
	unsigned int named_index_oid; /* <table>_uuid_idx, 0 if none */
	bool named_index_valid;
	bool named_index_exact;     /* unique, on exactly (uuid) of this table */
	bool check_exists;          /* our temporary CHECK (uuid IS NOT NULL) */
	bool check_validated;
	char *triggers;             /* user triggers, NULL if none */
	int64_t reltuples;
	int64_t total_bytes;
	int64_t heap_bytes;
};

struct catalog {
	int server_version;
	bool schema_exists;
	bool marker_table;
	bool has_version;
	int version;
	char *marker_text;          /* the raw comment, NULL if none */
	char *pgcrypto_schema;      /* NULL: extension missing */
	bool fn_exists;
	char fn_language[32];
	char fn_volatility;
	struct table_state tables[CATALOG_TABLES];
};

bool catalog_load(struct runner *r, struct catalog *cat, struct mg_error *err);
void catalog_free(struct catalog *cat);
/* Reloads one table's state (after steps changed it). */
bool catalog_reload_table(struct runner *r, struct catalog *cat, int idx, struct mg_error *err);

/* Complete = V40's end state. Writes what is missing to why. */
bool catalog_table_complete(const struct table_state *t, char *why, size_t len);
/* Rows and rows with a uuid, by a scan (status, progress). */
bool catalog_count(struct runner *r, const char *table, int64_t *rows, int64_t *filled,
		   struct mg_error *err);
/* True when any existing table carries one of uuidgate's column marks. */
bool catalog_has_marks(const struct catalog *cat);

/* The column identifying a row in SQL: the integer primary key, else ctid. */
void catalog_row_key(struct strb *out, PGconn *conn, const struct table_state *t);

/* Checks the schema name: plain lower-case identifier. */
bool catalog_valid_prefix(const char *prefix);

/* Index/constraint names derived from the table name. */
void catalog_index_name(const char *table, char *buf, size_t len);
void catalog_check_name(const char *table, char *buf, size_t len);

#endif
