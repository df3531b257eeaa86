/* store_internal.h: what the store's own files share (not part of the API). */
#ifndef CRAFT_STORE_INTERNAL_H
#define CRAFT_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store.h"

struct craft_store {
    sqlite3 *db;
    char *path;
    int opened_version;
    int readonly;
    int64_t key_skip_rows; /* queue skips of this many rows or more read keys only (craft_store_queue;
                              tests lower it to send every skip that way) */
};

/* One queue row by its order row id: the statement, and reading order's row (for
 * model_id's scores) into r (keys untouched; strings owned by r). */
int store_queue_row_prepare(craft_store *s, sqlite3_stmt **st, craft_error *err);
int store_queue_row_read(craft_store *s, sqlite3_stmt *st, int64_t model_id, int64_t order, int n_classes,
                         craft_queue_row *r, craft_error *err);

/* Migrates db from its user_version up to `target` (tests use it to build old files). */
int craft_store_migrate(sqlite3 *db, int target, craft_error *err);

/* Prepares sql; on failure sets err with the SQLite message. */
int store_prepare(craft_store *s, sqlite3_stmt **st, const char *sql, craft_error *err);
/* Runs a statement without results. */
int store_exec(craft_store *s, const char *sql, craft_error *err);
/* Sets err from the connection's last error. */
int store_fail(craft_store *s, craft_error *err, const char *what);
/* A row whose stored values contradict each other or the schema (a tampered or
 * damaged file): CRAFT_EFORMAT, "PATH: store damaged: table T, WHAT". */
int store_damaged(craft_store *s, craft_error *err, const char *table, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Checks a float32 BLOB column against what its row says it holds: NULL is allowed
 * when may_null; otherwise exactly want floats (want < 0: any whole number of
 * floats up to -want). *n gets the count. 0, or store_damaged naming table, column
 * and what (the row). */
int store_check_floats(craft_store *s, sqlite3_stmt *st, int col, int64_t want, int may_null, int *n,
                       const char *table, const char *column, const char *what, craft_error *err);
/* The audit chain (schema 5): a row's hash is the SHA-256 of the previous row's
 * hash (64 zeros for the first) and the row's fields, each length-prefixed. */
int store_audit_hash(const char *prev, int64_t id, int64_t case_id, double at, const char *actor, const char *action,
                     const char *before, const char *after, char out[65]);
/* Appends one audit row after the last one, with its hash (inside the caller's
 * transaction). */
int store_audit_append(craft_store *s, int64_t case_id, double at, const char *actor, const char *action,
                       const char *before, const char *after, craft_error *err);
double store_time(void);   /* Unix seconds (wall clock) */
char *store_strdup(const char *s);
char *store_col_text(sqlite3_stmt *st, int col);   /* copy of a text column, NULL for NULL */
/* Steps `st` to the end, appending one element of `size` bytes per row to the growing
 * array *out (*n elements), filled by `read`. Returns SQLITE_DONE when every row was
 * read (SQLITE_NOMEM when the array could not grow); the caller frees on failure. */
int store_collect_rows(sqlite3_stmt *st, size_t size, void (*read)(sqlite3_stmt *, void *), void **out, int *n);
/* Class names of a model's config JSON (caller frees with store_free_strings). */
int store_model_classes(craft_store *s, int64_t model_id, char ***classes, int *n, craft_error *err);
void store_free_strings(char **v, int n);
/* craft_score(blob, k) and craft_any_above(blob, thresholds) for queue queries. */
int store_register_functions(sqlite3 *db);

#endif
