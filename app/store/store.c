/* store.c: opening the case store, its schema and migrations, datasets and models. */
#include "store_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_BUSY_MS 10000 /* how long a writer waits for another one before giving up */
#define STORE_KEY_SKIP_ROWS 2048 /* shorter queue skips read whole rows: one query, not two */

/* ------------------------------------------------------------- helpers */

double store_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

char *store_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int store_damaged(craft_store *s, craft_error *err, const char *table, const char *fmt, ...)
{
    char what[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return craft_fail(err, CRAFT_EFORMAT, "%s: store damaged: table %s, %s (was the file edited outside craft?)",
                      s->path, table, what);
}

int store_check_floats(craft_store *s, sqlite3_stmt *st, int col, int64_t want, int may_null, int *n,
                       const char *table, const char *column, const char *what, craft_error *err)
{
    int type = sqlite3_column_type(st, col);
    if (n)
        *n = 0;
    if (type == SQLITE_NULL) {
        if (may_null)
            return CRAFT_OK;
        return store_damaged(s, err, table, "%s: %s is missing", what, column);
    }
    if (type != SQLITE_BLOB)
        return store_damaged(s, err, table, "%s: %s is not a BLOB", what, column);
    int64_t bytes = sqlite3_column_bytes(st, col);
    if (bytes % (int64_t)sizeof(float) || (want >= 0 && bytes != want * (int64_t)sizeof(float)) ||
        (want < 0 && bytes > -want * (int64_t)sizeof(float))) {
        if (want >= 0)
            return store_damaged(s, err, table, "%s: %s holds %lld bytes where its row says %lld floats (%lld bytes)",
                                 what, column, (long long)bytes, (long long)want, (long long)want * 4);
        return store_damaged(s, err, table, "%s: %s holds %lld bytes, not a whole number of at most %lld floats",
                             what, column, (long long)bytes, (long long)-want);
    }
    if (n)
        *n = (int)(bytes / (int64_t)sizeof(float));
    return CRAFT_OK;
}

char *store_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? store_strdup((const char *)t) : NULL;
}

void store_free_strings(char **v, int n)
{
    if (!v)
        return;
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* SQLite's message for the connection's last error, with what the user can do
 * about the ones a resource causes: a full disk, a read-only file or folder, a
 * store another program is writing to. `msg` (may be NULL) overrides SQLite's text. */
static const char *store_reason(sqlite3 *db, const char *msg, char *buf, size_t cap)
{
    int rc = sqlite3_errcode(db), ext = sqlite3_extended_errcode(db), sys = sqlite3_system_errno(db);
    const char *m = msg ? msg : sqlite3_errmsg(db);
    int write_failed = ext == SQLITE_IOERR_WRITE || ext == SQLITE_IOERR_FSYNC || ext == SQLITE_IOERR_TRUNCATE ||
                       ext == SQLITE_IOERR_SHMSIZE || sys == ENOSPC || sys == EFBIG || sys == EDQUOT;
    if (rc == SQLITE_FULL || (rc == SQLITE_IOERR && write_failed))
        snprintf(buf, cap, "%s (%s%swriting to disk failed: is the disk full or a file size limit reached?"
                 " The failed transaction was rolled back)", m, sys ? strerror(sys) : "", sys ? ": " : "");
    else if (rc == SQLITE_IOERR && sys)
        snprintf(buf, cap, "%s (%s)", m, strerror(sys));
    else if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        snprintf(buf, cap, "%s: another program is writing to the store (waited %d s); try again when it is done", m,
                 STORE_BUSY_MS / 1000);
    else if (rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN)
        snprintf(buf, cap, "%s (the store file and its folder must be writable: SQLite keeps its -wal and -shm files"
                 " beside the store)", m);
    else
        snprintf(buf, cap, "%s", m);
    return buf;
}

int store_fail(craft_store *s, craft_error *err, const char *what)
{
    int rc = sqlite3_errcode(s->db);
    craft_code code = rc == SQLITE_NOMEM ? CRAFT_ENOMEM : CRAFT_EIO;
    if (rc == SQLITE_CONSTRAINT)
        code = CRAFT_EINPUT;
    char reason[600];
    return craft_fail(err, code, "%s: %s: %s", s->path, what, store_reason(s->db, NULL, reason, sizeof reason));
}

int store_prepare(craft_store *s, sqlite3_stmt **st, const char *sql, craft_error *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return store_fail(s, err, "preparing a query");
    }
    return CRAFT_OK;
}

int store_exec(craft_store *s, const char *sql, craft_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        char reason[600];
        int rc = craft_fail(err, sqlite3_errcode(s->db) == SQLITE_NOMEM ? CRAFT_ENOMEM : CRAFT_EIO, "%s: %s", s->path,
                            store_reason(s->db, msg, reason, sizeof reason));
        sqlite3_free(msg);
        return rc;
    }
    return CRAFT_OK;
}

/* ------------------------------------------------------------ statuses */

static const char *const status_names[CRAFT_CASE_N_STATUS] = {"new", "in_review", "confirmed_defect",
                                                              "false_positive", "escalated", "needs_info"};
static const char *const status_labels[CRAFT_CASE_N_STATUS] = {"New", "In review", "Confirmed defect",
                                                               "False positive", "Escalated", "Needs info"};

const char *craft_case_status_name(int status)
{
    return status >= 0 && status < CRAFT_CASE_N_STATUS ? status_names[status] : "unknown";
}

const char *craft_case_status_label(int status)
{
    return status >= 0 && status < CRAFT_CASE_N_STATUS ? status_labels[status] : "Unknown";
}

int craft_case_status_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < CRAFT_CASE_N_STATUS; i++)
        if (!strcmp(name, status_names[i]) || !strcasecmp(name, status_labels[i]))
            return i;
    if (!strcmp(name, "in-review") || !strcmp(name, "review"))
        return CRAFT_CASE_IN_REVIEW;
    if (!strcmp(name, "confirmed") || !strcmp(name, "defect"))
        return CRAFT_CASE_CONFIRMED;
    if (!strcmp(name, "fp") || !strcmp(name, "false-positive"))
        return CRAFT_CASE_FALSE_POSITIVE;
    if (!strcmp(name, "needs-info") || !strcmp(name, "info"))
        return CRAFT_CASE_NEEDS_INFO;
    return -1;
}

/* ------------------------------------------------------------- schema */

/* Each step takes the schema from version i to i+1; a step never changes once
 * released (a new change is a new step). */
static const char *const migrations[] = {
    /* 1: datasets and orders: features, text, entities (the graph), embeddings, labels */
    "CREATE TABLE datasets(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);"
    "CREATE TABLE dataset_features(dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL, name TEXT NOT NULL,"
    "  type INTEGER NOT NULL,"  /* 0 numeric, 1 categorical, -1 not seen with a value yet */
    "  PRIMARY KEY(dataset_id, idx), UNIQUE(dataset_id, name)) WITHOUT ROWID;"
    /* num: float32 little-endian over the dataset's feature list at import time (shorter
     * blob = later features missing), NaN for missing and categorical; cat: JSON object
     * of the categorical values by feature name (NULL when none). */
    "CREATE TABLE orders(id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL REFERENCES datasets(id),"
    "  order_id TEXT NOT NULL UNIQUE, ts TEXT, num BLOB, cat TEXT, imported REAL NOT NULL);"
    "CREATE INDEX orders_dataset_ts ON orders(dataset_id, ts);"
    "CREATE INDEX orders_ts ON orders(ts);"
    "CREATE TABLE order_text(order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,"
    "  field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(order_id, field)) WITHOUT ROWID;"
    "CREATE TABLE entities(id INTEGER PRIMARY KEY, type TEXT NOT NULL, entity_id TEXT NOT NULL,"
    "  UNIQUE(type, entity_id));"
    "CREATE TABLE order_entities(order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,"
    "  entity INTEGER NOT NULL REFERENCES entities(id), PRIMARY KEY(order_id, entity)) WITHOUT ROWID;"
    "CREATE INDEX order_entities_entity ON order_entities(entity, order_id);"
    /* data: float32 [tokens, dim] */
    "CREATE TABLE embeddings(order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,"
    "  modality TEXT NOT NULL, tokens INTEGER NOT NULL, dim INTEGER NOT NULL, data BLOB NOT NULL,"
    "  PRIMARY KEY(order_id, modality)) WITHOUT ROWID;"
    /* source: 'import' or 'decision' (a decision overrides an imported label) */
    "CREATE TABLE labels(order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,"
    "  class TEXT NOT NULL, value INTEGER NOT NULL CHECK(value IN (0, 1)), source TEXT NOT NULL,"
    "  case_id INTEGER, at REAL NOT NULL, PRIMARY KEY(order_id, class, source)) WITHOUT ROWID;",

    /* 2: models, scoring runs, predictions, explanations */
    "CREATE TABLE models(id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, path TEXT, blob BLOB,"
    "  config TEXT NOT NULL, metrics TEXT, trained REAL, added REAL NOT NULL);"
    "CREATE TABLE scoring_runs(id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL REFERENCES models(id),"
    "  dataset_id INTEGER REFERENCES datasets(id), started REAL NOT NULL, finished REAL,"
    "  scored INTEGER NOT NULL DEFAULT 0, flagged INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL, options TEXT);"
    /* off: bitmask of the auxiliaries switched off (0 = the full model); scores: float32 [K] */
    "CREATE TABLE predictions(order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,"
    "  model_id INTEGER NOT NULL REFERENCES models(id), off INTEGER NOT NULL, used INTEGER NOT NULL,"
    "  top_class INTEGER NOT NULL, top_score REAL NOT NULL, scores BLOB NOT NULL, run_id INTEGER,"
    "  PRIMARY KEY(order_id, model_id, off)) WITHOUT ROWID;"
    "CREATE INDEX predictions_top ON predictions(model_id, off, top_score);"
    /* the full model's score of every class, clustered for sorting the queue by any class */
    "CREATE TABLE class_scores(model_id INTEGER NOT NULL, class INTEGER NOT NULL, score REAL NOT NULL,"
    "  order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,"
    "  PRIMARY KEY(model_id, class, score, order_id)) WITHOUT ROWID;"
    "CREATE INDEX class_scores_order ON class_scores(order_id);"
    /* float32 blobs: importance [T], cmis [A, T], gates [A], perturb [K, T] */
    "CREATE TABLE explanations(order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,"
    "  model_id INTEGER NOT NULL REFERENCES models(id), tokens INTEGER NOT NULL, importance BLOB NOT NULL,"
    "  cmis BLOB, cond_gate BLOB, fuse_gate BLOB, perturb BLOB,"
    "  PRIMARY KEY(order_id, model_id)) WITHOUT ROWID;",

    /* 3: cases, their append-only audit log, notes */
    "CREATE TABLE cases(id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL UNIQUE REFERENCES orders(id),"
    "  model_id INTEGER REFERENCES models(id), status INTEGER NOT NULL DEFAULT 0 CHECK(status BETWEEN 0 AND 5),"
    "  assignee TEXT, priority INTEGER NOT NULL DEFAULT 0, top_class INTEGER NOT NULL DEFAULT -1,"
    "  top_score REAL NOT NULL DEFAULT 0, decided_classes TEXT, created REAL NOT NULL, updated REAL NOT NULL);"
    "CREATE INDEX cases_status ON cases(status, priority, top_score);"
    "CREATE INDEX cases_top ON cases(top_score);"
    "CREATE INDEX cases_assignee ON cases(assignee, status);"
    "CREATE INDEX cases_updated ON cases(updated);"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id),"
    "  at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, before TEXT, after TEXT);"
    "CREATE INDEX audit_case ON audit(case_id, id);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN"
    "  SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN"
    "  SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TABLE notes(id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id),"
    "  at REAL NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL);"
    "CREATE INDEX notes_case ON notes(case_id, id);",

    /* 4: orders a scoring run skipped because their stored inputs do not fit the
     * model, with the reason (until the model scores them); skipped per run */
    "CREATE TABLE score_errors(order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,"
    "  model_id INTEGER NOT NULL REFERENCES models(id), run_id INTEGER NOT NULL, reason TEXT NOT NULL,"
    "  at REAL NOT NULL, PRIMARY KEY(order_id, model_id)) WITHOUT ROWID;"
    "ALTER TABLE scoring_runs ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;",

    /* 5: the audit log as a hash chain (store_audit_hash: each row's SHA-256 covers
     * the row and the hash before it; `craft cases verify` checks it), and no INSERT
     * can reuse an id (INSERT OR REPLACE deleted the old row without firing the
     * DELETE trigger). Existing rows get their hashes in id order (audit_backfill),
     * then the triggers come back. */
    "DROP TRIGGER IF EXISTS audit_no_update;"
    "ALTER TABLE audit ADD COLUMN hash TEXT;",
};

/* SQL run after a step's C part (see migration_hook), NULL where none. */
static const char *const migrations_after[] = {
    NULL, NULL, NULL, NULL,
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN"
    "  SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER audit_append_only BEFORE INSERT ON audit"
    "  WHEN NEW.id IS NOT NULL AND NEW.id <= (SELECT coalesce(max(id), 0) FROM audit) BEGIN"
    "  SELECT RAISE(ABORT, 'the audit log is append-only: a new row goes after the last one'); END;",
};

/* ------------------------------------------------------- the audit chain */

static void hash_field(uint8_t *buf, size_t *n, size_t cap, const char *v)
{
    /* each field length-prefixed ("-" for NULL): no two rows hash the same bytes */
    char head[32];
    int h = v ? snprintf(head, sizeof head, "%zu:", strlen(v)) : snprintf(head, sizeof head, "-");
    if (*n + (size_t)h <= cap)
        memcpy(buf + *n, head, (size_t)h);
    *n += (size_t)h;
    if (v) {
        size_t len = strlen(v);
        if (*n + len <= cap)
            memcpy(buf + *n, v, len);
        *n += len;
    }
}

int store_audit_hash(const char *prev, int64_t id, int64_t case_id, double at, const char *actor, const char *action,
                     const char *before, const char *after, char out[65])
{
    char nums[96];
    snprintf(nums, sizeof nums, "%lld %lld %.17g", (long long)id, (long long)case_id, at);
    const char *fields[7] = {prev, nums, actor, action, before, after, "craft-audit-1"};
    size_t need = 0;
    for (int i = 0; i < 7; i++)
        hash_field(NULL, &need, 0, fields[i]);
    uint8_t *buf = malloc(need ? need : 1);
    if (!buf)
        return -1;
    size_t n = 0;
    for (int i = 0; i < 7; i++)
        hash_field(buf, &n, need, fields[i]);
    uint8_t d[32];
    craft_sha256(buf, n, d);
    free(buf);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    return 0;
}

#define AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

int store_audit_append(craft_store *s, int64_t case_id, double at, const char *actor, const char *action,
                       const char *before, const char *after, craft_error *err)
{
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", err))
        return err->code;
    int64_t last = 0;
    char prev[65] = AUDIT_GENESIS;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
        const char *h = (const char *)sqlite3_column_text(st, 1);
        snprintf(prev, sizeof prev, "%s", h ? h : "");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(s, err, "reading the audit log");
    char hash[65];
    if (store_audit_hash(prev, last + 1, case_id, at, actor, action, before, after, hash))
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (store_prepare(s, &st,
                      "INSERT INTO audit(id, case_id, at, actor, action, before, after, hash) VALUES(?,?,?,?,?,?,?,?)",
                      err))
        return err->code;
    sqlite3_bind_int64(st, 1, last + 1);
    sqlite3_bind_int64(st, 2, case_id);
    sqlite3_bind_double(st, 3, at);
    sqlite3_bind_text(st, 4, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, action, -1, SQLITE_STATIC);
    if (before)
        sqlite3_bind_text(st, 6, before, -1, SQLITE_STATIC);
    if (after)
        sqlite3_bind_text(st, 7, after, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, hash, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? CRAFT_OK : store_fail(s, err, "writing the audit log");
}

/* Migration 5's C part: every existing audit row's hash, in id order. */
static int audit_backfill(sqlite3 *db, char **msg)
{
    sqlite3_stmt *rd = NULL, *up = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT id, case_id, at, actor, action, before, after FROM audit ORDER BY id", -1,
                                &rd, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "UPDATE audit SET hash = ? WHERE id = ?", -1, &up, NULL);
    char prev[65] = AUDIT_GENESIS;
    while (rc == SQLITE_OK && (rc = sqlite3_step(rd)) == SQLITE_ROW) {
        char hash[65];
        if (store_audit_hash(prev, sqlite3_column_int64(rd, 0), sqlite3_column_int64(rd, 1),
                             sqlite3_column_double(rd, 2), (const char *)sqlite3_column_text(rd, 3),
                             (const char *)sqlite3_column_text(rd, 4), (const char *)sqlite3_column_text(rd, 5),
                             (const char *)sqlite3_column_text(rd, 6), hash)) {
            rc = SQLITE_NOMEM;
            break;
        }
        sqlite3_bind_text(up, 1, hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(up, 2, sqlite3_column_int64(rd, 0));
        if (sqlite3_step(up) != SQLITE_DONE) {
            rc = SQLITE_ERROR;
            break;
        }
        sqlite3_reset(up);
        memcpy(prev, hash, sizeof prev);
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    if (rc != SQLITE_OK && msg)
        *msg = sqlite3_mprintf("hashing the audit log: %s", sqlite3_errmsg(db));
    sqlite3_finalize(rd);
    sqlite3_finalize(up);
    return rc;
}

/* The C part of a step (between its SQL and migrations_after), or SQLITE_OK. */
static int migration_hook(sqlite3 *db, int step, char **msg)
{
    return step == 4 ? audit_backfill(db, msg) : SQLITE_OK;
}

int craft_store_migrate(sqlite3 *db, int target, craft_error *err)
{
    const int n_steps = (int)(sizeof migrations / sizeof *migrations);
    if (target > n_steps)
        return craft_fail(err, CRAFT_EUNSUPPORTED, "no schema version %d", target);
    for (;;) {
        sqlite3_stmt *st;
        int version = -1;
        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (version < 0)
            return craft_fail(err, CRAFT_EIO, "cannot read the schema version: %s", sqlite3_errmsg(db));
        if (version > n_steps)
            return craft_fail(err, CRAFT_EUNSUPPORTED,
                              "the store has schema version %d; this program knows up to %d (a newer craft made it)",
                              version, n_steps);
        if (version >= target)
            return CRAFT_OK;
        /* One transaction per step: a crash leaves the file at the old or the new version. */
        char *msg = NULL;
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", version + 1);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) == SQLITE_OK) {
            /* another program may have migrated it while this one waited for the lock */
            int now = -1;
            if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                now = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
            if (now != version) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                continue;
            }
        } else {
            int rc = craft_fail(err, CRAFT_EIO, "migrating the store to version %d: %s", version + 1,
                                msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            return rc;
        }
        if (sqlite3_exec(db, migrations[version], NULL, NULL, &msg) != SQLITE_OK ||
            migration_hook(db, version, &msg) != SQLITE_OK ||
            (migrations_after[version] && sqlite3_exec(db, migrations_after[version], NULL, NULL, &msg) != SQLITE_OK) ||
            sqlite3_exec(db, bump, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            int rc = craft_fail(err, CRAFT_EIO, "migrating the store to version %d: %s", version + 1,
                                msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
}

/* --------------------------------------------------------- open, close */

/* Creates path with mode 0600 (before SQLite does, so it never exists wider). */
static int create_private(const char *path, craft_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return CRAFT_OK;
        return craft_fail(err, CRAFT_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    close(fd);
    return CRAFT_OK;
}

/* Opens s->path read-write with writes refused (PRAGMA query_only); 1 when that
 * works here (the file writable, its -wal and -shm there or creatable, the
 * database readable), else 0 with nothing left open. */
static int open_query_only(craft_store *s)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
             sqlite3_db_readonly(db, "main") == 0;
    if (ok) {
        sqlite3_busy_timeout(db, STORE_BUSY_MS);
        ok = sqlite3_exec(db, "PRAGMA query_only = ON", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    if (!ok) {
        sqlite3_close_v2(db);
        return 0;
    }
    s->db = db;
    return 1;
}

/* Opens s->path read-only and immutable (no locks, no -wal or -shm) when nobody
 * can write it: there is no -wal beside it (so the file holds every committed
 * transaction), and the file has no write permission bits, or its folder has
 * none (a writer could not create the -wal). 1 when opened. */
static int open_immutable(craft_store *s)
{
    struct stat st, dst;
    char wal[4200], dir[4200];
    snprintf(wal, sizeof wal, "%s-wal", s->path);
    snprintf(dir, sizeof dir, "%s", s->path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        slash[slash == dir ? 1 : 0] = 0;
    if (stat(s->path, &st) || stat(dir, &dst) || ((st.st_mode & 0222) && (dst.st_mode & 0222)) ||
        access(wal, F_OK) == 0 || errno != ENOENT)
        return 0;
    /* file: URI of the path, every byte but unreserved ones and '/' %-escaped */
    size_t n = strlen(s->path);
    char *uri = malloc(3 * n + 32);
    if (!uri)
        return 0;
    char *u = uri + sprintf(uri, "file:");
    for (const unsigned char *p = (const unsigned char *)s->path; *p; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
            *u++ = (char)*p;
        else
            u += sprintf(u, "%%%02X", *p);
    strcpy(u, "?immutable=1");
    sqlite3 *db = NULL;
    int ok = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK;
    free(uri);
    if (!ok) {
        sqlite3_close_v2(db);
        return 0;
    }
    s->db = db;
    return 1;
}

int craft_store_open(craft_store **out, const char *path, int flags, craft_error *err)
{
    *out = NULL;
    struct stat stt;
    int exists = stat(path, &stt) == 0;
    if (exists && S_ISDIR(stt.st_mode))
        return craft_fail(err, CRAFT_EIO, "%s: cannot open: is a directory", path);
    if (exists && !S_ISREG(stt.st_mode)) /* a FIFO would block the open forever; a device is no store */
        return craft_fail(err, CRAFT_EIO, "%s: cannot open: not a regular file (a FIFO or device is no case store)",
                          path);
    struct stat lst;
    if (!exists && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) /* SQLite would create the link's target */
        return craft_fail(err, CRAFT_EIO, "%s: cannot open: a symbolic link to nothing (not followed)", path);
    if (!exists && !(flags & CRAFT_STORE_CREATE))
        return craft_fail(err, CRAFT_EIO, "%s: cannot open: no such case store", path);
    if (!exists && create_private(path, err))
        return err ? err->code : CRAFT_EIO;
    /* SQLite creates the -wal and -shm files with the main file's permissions. */
    craft_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = store_strdup(path))) {
        free(s);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    s->readonly = (flags & CRAFT_STORE_READONLY) != 0;
    s->key_skip_rows = STORE_KEY_SKIP_ROWS;
    /* A read-only handle is a read-write connection with PRAGMA query_only where
     * the file and its folder allow it: the last connection to close a WAL
     * database checkpoints it and removes its -wal and -shm files, which a
     * SQLITE_OPEN_READONLY connection cannot do (a read-only command would leave
     * them beside the store). A file nobody can write (no write bits on it or on
     * its folder, and no -wal) is opened immutable, which needs neither file.
     * Otherwise (say a file only others can write: a writer may come)
     * SQLITE_OPEN_READONLY, which creates them where they are missing. */
    if (s->readonly && !open_query_only(s) && !open_immutable(s))
        s->db = NULL;
    int oflags = s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (!s->db && sqlite3_open_v2(path, &s->db, oflags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        craft_fail(err, CRAFT_EIO, "%s: cannot open: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        craft_store_close(s);
        return CRAFT_EIO;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
    store_register_functions(s->db);
    sqlite3_extended_result_codes(s->db, 0);
    craft_error e2 = {0};
    /* Check it is a database at all before anything else touches it. */
    sqlite3_stmt *st;
    int version = -1, have_version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0), have_version = 1;
    sqlite3_finalize(st);
    if (have_version && version < 0) {
        craft_fail(err, CRAFT_EFORMAT,
                   "%s: store damaged or not a case store: schema version %d (PRAGMA user_version) is not one this"
                   " program wrote (it knows 0 to %d)",
                   path, version, CRAFT_STORE_VERSION);
        craft_store_close(s);
        return CRAFT_EFORMAT;
    }
    if (version < 0) {
        /* only a file SQLite cannot read as a database is "not a case store"; a
         * read-only folder, a lock or a full disk is said as such */
        int rc = sqlite3_errcode(s->db), bad = rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
        char reason[600];
        craft_fail(err, bad ? CRAFT_EFORMAT : CRAFT_EIO, "%s: %s: %s", path, bad ? "not a case store" : "cannot open",
                   store_reason(s->db, NULL, reason, sizeof reason));
        craft_store_close(s);
        return bad ? CRAFT_EFORMAT : CRAFT_EIO;
    }
    s->opened_version = version;
    /* A new store gets 16 KiB pages (only an empty file can still choose): an
     * order's row (~2.3 KB of features) fits several to a page, where with 4 KiB
     * pages each took a page of its own and the file was 40% larger. */
    if (!s->readonly && version == 0)
        sqlite3_exec(s->db, "PRAGMA page_size = 16384", NULL, NULL, NULL);
    /* A reader maps the file (up to SQLite's 2 GiB cap): the queue's long reads (a far
     * jump, the pass keeping a key per page) visit rows in index order, all over the
     * file, and each read of a page not in SQLite's small cache was a system call:
     * 2-3x faster at 1,000,000 orders. Writers keep plain reads (SQLite never writes
     * through the map by default). */
    if (s->readonly)
        sqlite3_exec(s->db, "PRAGMA mmap_size = 2147418112", NULL, NULL, NULL);
    if (store_exec(s, "PRAGMA foreign_keys = ON", &e2) ||
        (!s->readonly && (store_exec(s, "PRAGMA journal_mode = WAL", &e2) ||
                          /* FULL: a committed decision survives a power cut, not just a crash */
                          store_exec(s, "PRAGMA synchronous = FULL", &e2))) ||
        (!s->readonly && craft_store_migrate(s->db, CRAFT_STORE_VERSION, &e2))) {
        if (err) {
            *err = e2;
            if (!strstr(err->msg, path))
                craft_error_prefix(err, "%s", path);
        }
        craft_store_close(s);
        return e2.code ? (int)e2.code : CRAFT_EIO;
    }
    /* A read-only handle cannot migrate. Version 4 only added what scoring writes
     * (score_errors, scoring_runs.failed), so a version 3 store still reads (an
     * order's scoring error is then simply not known). */
    if (s->readonly && (version < 3 || version > CRAFT_STORE_VERSION)) {
        craft_fail(err, CRAFT_EUNSUPPORTED, "%s: schema version %d, this program needs %d (open it writable once)",
                   path, version, CRAFT_STORE_VERSION);
        craft_store_close(s);
        return CRAFT_EUNSUPPORTED;
    }
    *out = s;
    return CRAFT_OK;
}

void craft_store_close(craft_store *s)
{
    if (!s)
        return;
    if (s->db)
        sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

const char *craft_store_path(const craft_store *s) { return s->path; }
int craft_store_opened_version(const craft_store *s) { return s->opened_version; }

/* ------------------------------------------------------------ datasets */

static int load_features(craft_store *s, craft_dataset_info *d, craft_error *err)
{
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT name, type FROM dataset_features WHERE dataset_id = ? ORDER BY idx", err))
        return err->code;
    sqlite3_bind_int64(st, 1, d->id);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (d->n_features == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(d->feature_names, sizeof(char *) * cap);
            if (nn)
                d->feature_names = nn;
            int *nt = realloc(d->feature_types, sizeof(int) * cap);
            if (nt)
                d->feature_types = nt;
            if (!nn || !nt) {
                sqlite3_finalize(st);
                return craft_fail(err, CRAFT_ENOMEM, "out of memory");
            }
        }
        d->feature_names[d->n_features] = store_col_text(st, 0);
        int t = sqlite3_column_int(st, 1);
        d->feature_types[d->n_features++] = t == CRAFT_CATEGORICAL ? CRAFT_CATEGORICAL : CRAFT_NUMERIC;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? CRAFT_OK : store_fail(s, err, "reading the feature list");
}

int craft_store_datasets(craft_store *s, craft_dataset_info **out, int *n, craft_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (store_prepare(s, &st,
                      "SELECT id, name, created, (SELECT count(*) FROM orders o WHERE o.dataset_id = d.id)"
                      " FROM datasets d ORDER BY id",
                      err))
        return err->code;
    int rc, cap = 0;
    craft_dataset_info *v = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            craft_dataset_info *nv = realloc(v, sizeof *v * cap);
            if (!nv) {
                rc = SQLITE_NOMEM;
                break;
            }
            v = nv;
        }
        craft_dataset_info *d = &v[(*n)++];
        memset(d, 0, sizeof *d);
        d->id = sqlite3_column_int64(st, 0);
        d->name = store_col_text(st, 1);
        d->created = sqlite3_column_double(st, 2);
        d->n_orders = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    *out = v;
    if (rc != SQLITE_DONE) {
        craft_dataset_info_free(v, *n);
        *out = NULL;
        *n = 0;
        return rc == SQLITE_NOMEM ? craft_fail(err, CRAFT_ENOMEM, "out of memory") : store_fail(s, err, "datasets");
    }
    for (int i = 0; i < *n; i++)
        if (load_features(s, &v[i], err)) {
            craft_dataset_info_free(v, *n);
            *out = NULL;
            *n = 0;
            return err->code;
        }
    return CRAFT_OK;
}

void craft_dataset_info_free(craft_dataset_info *d, int n)
{
    if (!d)
        return;
    for (int i = 0; i < n; i++) {
        free(d[i].name);
        store_free_strings(d[i].feature_names, d[i].n_features);
        free(d[i].feature_types);
    }
    free(d);
}

int craft_store_dataset_find(craft_store *s, const char *name, int64_t *id, craft_error *err)
{
    sqlite3_stmt *st;
    *id = 0;
    if (store_prepare(s, &st, "SELECT id FROM datasets WHERE name = ?", err))
        return err->code;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return CRAFT_OK;
    if (rc == SQLITE_DONE)
        return craft_fail(err, CRAFT_EINPUT, "%s: no dataset \"%s\"", s->path, name);
    return store_fail(s, err, "finding a dataset");
}

/* -------------------------------------------------------------- models */

int craft_store_model_add(craft_store *s, const craft_model *m, const char *path, int blob, const char *metrics_json,
                          int64_t *model_id, craft_error *err)
{
    char hex[65];
    if (m->sha256[0])
        memcpy(hex, m->sha256, sizeof hex);
    else if (!path)
        return craft_fail(err, CRAFT_EINPUT, "a model without a file has no hash to register it by");
    else if (craft_sha256_file(path, hex, err))
        return err->code;
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT id FROM models WHERE sha256 = ?", err))
        return err->code;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *model_id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return CRAFT_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "finding a model");
    void *bytes = NULL;
    long size = 0;
    if (blob && path) {
        FILE *f = fopen(path, "rb");
        if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
            !(bytes = malloc(size ? (size_t)size : 1)) || fread(bytes, 1, (size_t)size, f) != (size_t)size) {
            int e = errno;
            if (f)
                fclose(f);
            free(bytes);
            return craft_fail(err, CRAFT_EIO, "%s: cannot read the checkpoint: %s", path, strerror(e));
        }
        fclose(f);
    }
    char *cfg = craft_config_to_json(&m->cfg);
    /* "trained" from the checkpoint metadata when the trainer recorded it */
    double trained = 0;
    if (m->metadata_json) {
        cJSON *md = cJSON_Parse(m->metadata_json);
        const cJSON *t = md ? cJSON_GetObjectItemCaseSensitive(md, "craft.trained") : NULL;
        if (cJSON_IsString(t))
            trained = atof(t->valuestring);
        cJSON_Delete(md);
    }
    char abs[4096];
    const char *where = path && realpath(path, abs) ? abs : path;
    if (store_prepare(s, &st,
                      "INSERT INTO models(sha256, path, blob, config, metrics, trained, added) VALUES(?,?,?,?,?,?,?)",
                      err)) {
        free(bytes);
        free(cfg);
        return err->code;
    }
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
    if (where)
        sqlite3_bind_text(st, 2, where, -1, SQLITE_TRANSIENT);
    if (bytes)
        sqlite3_bind_blob(st, 3, bytes, (int)size, free);
    sqlite3_bind_text(st, 4, cfg ? cfg : "{}", -1, SQLITE_TRANSIENT);
    if (metrics_json)
        sqlite3_bind_text(st, 5, metrics_json, -1, SQLITE_TRANSIENT);
    if (trained > 0)
        sqlite3_bind_double(st, 6, trained);
    sqlite3_bind_double(st, 7, store_time());
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    free(cfg);
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "registering the model");
    *model_id = sqlite3_last_insert_rowid(s->db);
    return CRAFT_OK;
}

int craft_store_models(craft_store *s, craft_model_info **out, int *n, craft_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (store_prepare(s, &st,
                      "SELECT id, sha256, path, blob IS NOT NULL, config, metrics, trained, added FROM models ORDER BY id",
                      err))
        return err->code;
    int rc, cap = 0;
    craft_model_info *v = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            craft_model_info *nv = realloc(v, sizeof *v * cap);
            if (!nv) {
                rc = SQLITE_NOMEM;
                break;
            }
            v = nv;
        }
        craft_model_info *mi = &v[(*n)++];
        memset(mi, 0, sizeof *mi);
        mi->id = sqlite3_column_int64(st, 0);
        snprintf(mi->sha256, sizeof mi->sha256, "%s", (const char *)sqlite3_column_text(st, 1));
        mi->path = store_col_text(st, 2);
        mi->has_blob = sqlite3_column_int(st, 3);
        mi->config_json = store_col_text(st, 4);
        mi->metrics_json = store_col_text(st, 5);
        mi->trained = sqlite3_column_double(st, 6);
        mi->added = sqlite3_column_double(st, 7);
    }
    sqlite3_finalize(st);
    *out = v;
    if (rc != SQLITE_DONE) {
        craft_model_info_free(v, *n);
        *out = NULL;
        *n = 0;
        return store_fail(s, err, "listing models");
    }
    return CRAFT_OK;
}

void craft_model_info_free(craft_model_info *m, int n)
{
    if (!m)
        return;
    for (int i = 0; i < n; i++) {
        free(m[i].path);
        free(m[i].config_json);
        free(m[i].metrics_json);
    }
    free(m);
}

int craft_store_model_load(craft_store *s, int64_t model_id, craft_model **out, craft_error *err)
{
    *out = NULL;
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT blob, path, sha256 FROM models WHERE id = ?", err))
        return err->code;
    sqlite3_bind_int64(st, 1, model_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? craft_fail(err, CRAFT_EINPUT, "%s: no model %lld", s->path, (long long)model_id)
                                 : store_fail(s, err, "loading a model");
    }
    const void *blob = sqlite3_column_blob(st, 0);
    int size = sqlite3_column_bytes(st, 0);
    char *path = store_col_text(st, 1);
    char name[96];
    snprintf(name, sizeof name, "model %lld in the store", (long long)model_id);
    char sha[65];
    snprintf(sha, sizeof sha, "%s", sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "");
    if (blob)
        rc = craft_model_load_memory(out, blob, (size_t)size, name, err);
    else if (path)
        rc = craft_model_load(out, path, err);
    else
        rc = craft_fail(err, CRAFT_EINPUT, "%s: model %lld has neither a blob nor a path", s->path,
                        (long long)model_id);
    /* The file at a registered path may have been replaced since (a retrained model
     * written over it): its scores would not be the stored ones. */
    if (!rc && strcmp((*out)->sha256, sha)) {
        rc = craft_fail(err, CRAFT_EINPUT,
                        "%s: the file changed since it was registered as model %lld in %s (sha256 %.12s..., now "
                        "%.12s...): restore it, or score the store with the new file",
                        path ? path : name, (long long)model_id, s->path, sha, (*out)->sha256);
        craft_model_free(*out);
        *out = NULL;
    }
    sqlite3_finalize(st);
    free(path);
    return rc;
}

int craft_store_has_cases(craft_store *s)
{
    sqlite3_stmt *st;
    int has = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT EXISTS(SELECT 1 FROM cases)", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        has = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return has;
}

int64_t craft_store_latest_model(craft_store *s)
{
    sqlite3_stmt *st;
    int64_t id = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT model_id FROM scoring_runs ORDER BY id DESC LIMIT 1", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            id = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return id;
}

int store_model_classes(craft_store *s, int64_t model_id, char ***classes, int *n, craft_error *err)
{
    *classes = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT config FROM models WHERE id = ?", err))
        return err->code;
    sqlite3_bind_int64(st, 1, model_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? craft_fail(err, CRAFT_EINPUT, "%s: no model %lld", s->path, (long long)model_id)
                                 : store_fail(s, err, "reading a model");
    }
    cJSON *cfg = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    const cJSON *cls = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "classes") : NULL;
    int k = cJSON_IsArray(cls) ? cJSON_GetArraySize(cls) : 0;
    if (k <= 0 || k > CRAFT_STORE_MAX_CLASSES) {
        cJSON_Delete(cfg);
        return craft_fail(err, CRAFT_EFORMAT, "%s: model %lld has an unreadable class list", s->path,
                          (long long)model_id);
    }
    *classes = calloc((size_t)k, sizeof(char *));
    for (int i = 0; *classes && i < k; i++) {
        const cJSON *c = cJSON_GetArrayItem(cls, i);
        (*classes)[i] = store_strdup(cJSON_IsString(c) ? c->valuestring : "?");
    }
    cJSON_Delete(cfg);
    if (!*classes)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    *n = k;
    return CRAFT_OK;
}
