/* cases.c: case actions with their audit rows, notes, and reading cases back. */
#include "scoring.h"
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

static int valid_actor(const char *actor, craft_error *err)
{
    if (!actor || !*actor)
        return craft_fail(err, CRAFT_EINPUT, "a case action needs the name of who acts (actor)");
    if (strlen(actor) > 200 || !craft_utf8_valid(actor, strlen(actor)))
        return craft_fail(err, CRAFT_EINPUT, "the actor name must be valid UTF-8 of at most 200 bytes");
    return CRAFT_OK;
}

/* A JSON object {"key": value} as a malloc'd string (value a string or NULL -> null). */
static char *json_kv(const char *key, const char *value)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    if (!f)
        return NULL;
    fputc('{', f);
    craft_json_string(f, key);
    fputs(": ", f);
    if (value)
        craft_json_string(f, value);
    else
        fputs("null", f);
    fputc('}', f);
    fclose(f);
    return out;
}

static int audit_row(craft_store *s, int64_t case_id, const char *actor, const char *action, const char *before,
                     const char *after, double now, craft_error *err)
{
    return store_audit_append(s, case_id, now, actor, action, before, after, err);
}

static int finish(craft_store *s, int rc, craft_error *err)
{
    if (rc) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    if (store_exec(s, "COMMIT", err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return err->code;
    }
    return CRAFT_OK;
}

void craft_case_free(craft_case *c)
{
    if (!c)
        return;
    free(c->order_id);
    free(c->assignee);
    free(c->decided_classes);
    memset(c, 0, sizeof *c);
}

#define CASE_COLS                                                                                                      \
    "c.id, c.order_id, o.order_id, c.model_id, c.status, c.assignee, c.priority, c.top_class, c.top_score,"           \
    " c.decided_classes, c.created, c.updated FROM cases c JOIN orders o ON o.id = c.order_id"

static void read_case(sqlite3_stmt *st, craft_case *c)
{
    c->id = sqlite3_column_int64(st, 0);
    c->order = sqlite3_column_int64(st, 1);
    c->order_id = store_col_text(st, 2);
    c->model_id = sqlite3_column_int64(st, 3);
    c->status = sqlite3_column_int(st, 4);
    c->assignee = store_col_text(st, 5);
    c->priority = sqlite3_column_int(st, 6);
    c->top_class = sqlite3_column_int(st, 7);
    c->top_score = (float)sqlite3_column_double(st, 8);
    c->decided_classes = store_col_text(st, 9);
    c->created = sqlite3_column_double(st, 10);
    c->updated = sqlite3_column_double(st, 11);
}

static int get_case(craft_store *s, const char *sql, int64_t id, const char *text, craft_case *out, craft_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    if (store_prepare(s, &st, sql, err))
        return err->code;
    if (text)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read_case(st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return CRAFT_OK;
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "reading a case");
    if (text)
        return craft_fail(err, CRAFT_EINPUT, "order \"%.80s\" has no case in %s", text, s->path);
    return craft_fail(err, CRAFT_EINPUT, "no case %lld in %s", (long long)id, s->path);
}

int craft_store_case_get(craft_store *s, int64_t case_id, craft_case *out, craft_error *err)
{
    return get_case(s, "SELECT " CASE_COLS " WHERE c.id = ?", case_id, NULL, out, err);
}

int craft_store_case_by_order(craft_store *s, const char *order_id, craft_case *out, craft_error *err)
{
    return get_case(s, "SELECT " CASE_COLS " WHERE o.order_id = ?", 0, order_id, out, err);
}

/* Writes the labels a decision implies (or withdraws them). */
static int decision_labels(craft_store *s, const craft_case *c, int status, const char *classes, double now,
                           char **decided, craft_error *err)
{
    *decided = NULL;
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "DELETE FROM labels WHERE order_id = ? AND source = 'decision'", err))
        return err->code;
    sqlite3_bind_int64(st, 1, c->order);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "withdrawing labels");
    if (status != CRAFT_CASE_CONFIRMED && status != CRAFT_CASE_FALSE_POSITIVE)
        return CRAFT_OK;
    if (!c->model_id)
        return craft_fail(err, CRAFT_EINPUT, "case %lld has no model, so its classes are unknown", (long long)c->id);
    char **names;
    int k;
    if (store_model_classes(s, c->model_id, &names, &k, err))
        return err->code;
    int yes[CRAFT_STORE_MAX_CLASSES] = {0};
    rc = CRAFT_OK;
    if (status == CRAFT_CASE_CONFIRMED) {
        if (!classes || !*classes) {
            if (c->top_class < 0 || c->top_class >= k)
                rc = craft_fail(err, CRAFT_EINPUT, "case %lld: name the confirmed class", (long long)c->id);
            else
                yes[c->top_class] = 1;
        } else {
            char *copy = store_strdup(classes), *save = NULL;
            for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !rc; t = strtok_r(NULL, ",", &save)) {
                int hit = -1;
                for (int i = 0; i < k; i++)
                    if (!strcmp(names[i], t))
                        hit = i;
                if (hit < 0) {
                    char list[512] = "";
                    for (int i = 0; i < k; i++)
                        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
                    rc = craft_fail(err, CRAFT_EINPUT, "\"%.60s\" is not a class of the case's model (%s)", t, list);
                }
                else
                    yes[hit] = 1;
            }
            free(copy);
            int any = 0;
            for (int i = 0; i < k; i++)
                any |= yes[i];
            if (!rc && !any) /* "," or " ": a confirmed defect of no class is no decision */
                rc = craft_fail(err, CRAFT_EINPUT, "case %lld: \"%.60s\" names no class to confirm", (long long)c->id,
                                classes);
        }
        if (!rc) {
            /* the canonical list, in the model's class order */
            size_t len = 1;
            for (int i = 0; i < k; i++)
                len += strlen(names[i]) + 1;
            if ((*decided = calloc(len, 1)))
                for (int i = 0; i < k; i++)
                    if (yes[i])
                        strcat(strcat(*decided, **decided ? "," : ""), names[i]);
        }
    }
    if (!rc && store_prepare(s, &st,
                             "INSERT OR REPLACE INTO labels(order_id, class, value, source, case_id, at)"
                             " VALUES(?,?,?,'decision',?,?)",
                             err))
        rc = err->code;
    for (int i = 0; i < k && !rc; i++) {
        sqlite3_bind_int64(st, 1, c->order);
        sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, yes[i]);
        sqlite3_bind_int64(st, 4, c->id);
        sqlite3_bind_double(st, 5, now);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_fail(s, err, "storing a decision label");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    store_free_strings(names, k);
    return rc;
}

static int add_note(craft_store *s, int64_t case_id, const char *text, const char *actor, double now, craft_error *err)
{
    if (!text || !*text)
        return craft_fail(err, CRAFT_EINPUT, "a note needs some text");
    if (!craft_utf8_valid(text, strlen(text)))
        return craft_fail(err, CRAFT_EINPUT, "the note is not valid UTF-8");
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "INSERT INTO notes(case_id, at, author, text) VALUES(?,?,?,?)", err))
        return err->code;
    sqlite3_bind_int64(st, 1, case_id);
    sqlite3_bind_double(st, 2, now);
    sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "storing a note");
    char *after = json_kv("note", text);
    rc = audit_row(s, case_id, actor, "note", NULL, after, now, err);
    free(after);
    return rc;
}

/* The current case inside a write transaction (so nothing changes under us). */
static int begin_case(craft_store *s, int64_t case_id, const char *actor, craft_case *c, craft_error *err)
{
    if (valid_actor(actor, err))
        return err->code;
    if (s->readonly)
        return craft_fail(err, CRAFT_EINPUT, "%s: opened read-only", s->path);
    if (store_exec(s, "BEGIN IMMEDIATE", err))
        return err->code;
    if (craft_store_case_get(s, case_id, c, err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return err->code;
    }
    return CRAFT_OK;
}

int craft_store_case_decide(craft_store *s, int64_t case_id, int status, const char *classes, const char *actor,
                            const char *note, craft_error *err)
{
    if (status < 0 || status >= CRAFT_CASE_N_STATUS)
        return craft_fail(err, CRAFT_EINPUT, "%d is not a case status", status);
    craft_case c;
    if (begin_case(s, case_id, actor, &c, err))
        return err->code;
    double now = store_time();
    char *decided = NULL;
    int rc = decision_labels(s, &c, status, classes, now, &decided, err);
    sqlite3_stmt *st = NULL;
    if (!rc && !(rc = store_prepare(s, &st, "UPDATE cases SET status = ?, decided_classes = ?, updated = ? WHERE id = ?",
                                    err))) {
        sqlite3_bind_int(st, 1, status);
        if (decided)
            sqlite3_bind_text(st, 2, decided, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, now);
        sqlite3_bind_int64(st, 4, case_id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_fail(s, err, "updating the case");
        sqlite3_finalize(st);
    }
    if (!rc) {
        char before[256], after[512];
        snprintf(before, sizeof before, "{\"status\": \"%s\", \"classes\": %s%s%s}", craft_case_status_name(c.status),
                 c.decided_classes ? "\"" : "", c.decided_classes ? c.decided_classes : "null",
                 c.decided_classes ? "\"" : "");
        snprintf(after, sizeof after, "{\"status\": \"%s\", \"classes\": %s%s%s}", craft_case_status_name(status),
                 decided ? "\"" : "", decided ? decided : "null", decided ? "\"" : "");
        rc = audit_row(s, case_id, actor, "status", before, after, now, err);
    }
    if (!rc && note && *note)
        rc = add_note(s, case_id, note, actor, now, err);
    free(decided);
    craft_case_free(&c);
    return finish(s, rc, err);
}

int craft_store_case_assign(craft_store *s, int64_t case_id, const char *assignee, const char *actor, craft_error *err)
{
    if (assignee && !*assignee)
        assignee = NULL;
    if (assignee && (strlen(assignee) > 200 || !craft_utf8_valid(assignee, strlen(assignee))))
        return craft_fail(err, CRAFT_EINPUT, "the assignee must be valid UTF-8 of at most 200 bytes");
    craft_case c;
    if (begin_case(s, case_id, actor, &c, err))
        return err->code;
    double now = store_time();
    sqlite3_stmt *st;
    int rc = store_prepare(s, &st, "UPDATE cases SET assignee = ?, updated = ? WHERE id = ?", err);
    if (!rc) {
        if (assignee)
            sqlite3_bind_text(st, 1, assignee, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 2, now);
        sqlite3_bind_int64(st, 3, case_id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_fail(s, err, "assigning the case");
        sqlite3_finalize(st);
    }
    if (!rc) {
        char *before = json_kv("assignee", c.assignee), *after = json_kv("assignee", assignee);
        rc = audit_row(s, case_id, actor, "assign", before, after, now, err);
        free(before);
        free(after);
    }
    craft_case_free(&c);
    return finish(s, rc, err);
}

int craft_store_case_set_priority(craft_store *s, int64_t case_id, int priority, const char *actor, craft_error *err)
{
    craft_case c;
    if (begin_case(s, case_id, actor, &c, err))
        return err->code;
    double now = store_time();
    sqlite3_stmt *st;
    int rc = store_prepare(s, &st, "UPDATE cases SET priority = ?, updated = ? WHERE id = ?", err);
    if (!rc) {
        sqlite3_bind_int(st, 1, priority);
        sqlite3_bind_double(st, 2, now);
        sqlite3_bind_int64(st, 3, case_id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_fail(s, err, "changing the priority");
        sqlite3_finalize(st);
    }
    if (!rc) {
        char before[64], after[64];
        snprintf(before, sizeof before, "{\"priority\": %d}", c.priority);
        snprintf(after, sizeof after, "{\"priority\": %d}", priority);
        rc = audit_row(s, case_id, actor, "priority", before, after, now, err);
    }
    craft_case_free(&c);
    return finish(s, rc, err);
}

int craft_store_case_add_note(craft_store *s, int64_t case_id, const char *text, const char *actor, craft_error *err)
{
    craft_case c;
    if (begin_case(s, case_id, actor, &c, err))
        return err->code;
    double now = store_time();
    int rc = add_note(s, case_id, text, actor, now, err);
    sqlite3_stmt *st;
    if (!rc && !(rc = store_prepare(s, &st, "UPDATE cases SET updated = ? WHERE id = ?", err))) {
        sqlite3_bind_double(st, 1, now);
        sqlite3_bind_int64(st, 2, case_id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_fail(s, err, "updating the case");
        sqlite3_finalize(st);
    }
    craft_case_free(&c);
    return finish(s, rc, err);
}

/* ------------------------------------------------------- audit and notes */

int store_collect_rows(sqlite3_stmt *st, size_t size, void (*read)(sqlite3_stmt *, void *), void **out, int *n)
{
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            void *nv = realloc(*out, size * cap);
            if (!nv)
                return SQLITE_NOMEM;
            *out = nv;
        }
        read(st, (char *)*out + size * (*n)++);
    }
    return rc;
}

static void read_audit_row(sqlite3_stmt *st, void *elem)
{
    craft_audit_entry *a = elem;
    a->id = sqlite3_column_int64(st, 0);
    a->case_id = sqlite3_column_int64(st, 1);
    a->at = sqlite3_column_double(st, 2);
    a->actor = store_col_text(st, 3);
    a->action = store_col_text(st, 4);
    a->before = store_col_text(st, 5);
    a->after = store_col_text(st, 6);
}

int craft_store_case_audit(craft_store *s, int64_t case_id, craft_audit_entry **out, int *n, craft_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT id, case_id, at, actor, action, before, after FROM audit WHERE case_id = ? ORDER BY id",
                      err))
        return err->code;
    sqlite3_bind_int64(st, 1, case_id);
    int rc = store_collect_rows(st, sizeof **out, read_audit_row, (void **)out, n);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        craft_audit_free(*out, *n);
        *out = NULL;
        *n = 0;
        return store_fail(s, err, "reading the audit log");
    }
    return CRAFT_OK;
}

void craft_audit_free(craft_audit_entry *a, int n)
{
    if (!a)
        return;
    for (int i = 0; i < n; i++) {
        free(a[i].actor);
        free(a[i].action);
        free(a[i].before);
        free(a[i].after);
    }
    free(a);
}

static void read_note_row(sqlite3_stmt *st, void *elem)
{
    craft_note *a = elem;
    a->id = sqlite3_column_int64(st, 0);
    a->case_id = sqlite3_column_int64(st, 1);
    a->at = sqlite3_column_double(st, 2);
    a->author = store_col_text(st, 3);
    a->text = store_col_text(st, 4);
}

int craft_store_case_notes(craft_store *s, int64_t case_id, craft_note **out, int *n, craft_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT id, case_id, at, author, text FROM notes WHERE case_id = ? ORDER BY id", err))
        return err->code;
    sqlite3_bind_int64(st, 1, case_id);
    int rc = store_collect_rows(st, sizeof **out, read_note_row, (void **)out, n);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        craft_notes_free(*out, *n);
        *out = NULL;
        *n = 0;
        return store_fail(s, err, "reading notes");
    }
    return CRAFT_OK;
}

void craft_notes_free(craft_note *a, int n)
{
    if (!a)
        return;
    for (int i = 0; i < n; i++) {
        free(a[i].author);
        free(a[i].text);
    }
    free(a);
}

/* ------------------------------------------------------ the audit chain */

int craft_store_audit_verify(craft_store *s, int64_t *rows, int64_t *bad_id, char head[65], craft_error *err)
{
    *rows = 0;
    *bad_id = 0;
    snprintf(head, 65, "%064d", 0);
    if (craft_store_opened_version(s) < 5)
        return craft_fail(err, CRAFT_EUNSUPPORTED,
                          "%s: schema version %d has no audit hash chain (any command that writes the store adds it)",
                          s->path, craft_store_opened_version(s));
    sqlite3_stmt *st;
    static const char *const triggers[] = {"audit_no_update", "audit_no_delete", "audit_append_only"};
    for (int i = 0; i < 3; i++) {
        if (store_prepare(s, &st, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?", err))
            return err->code;
        sqlite3_bind_text(st, 1, triggers[i], -1, SQLITE_STATIC);
        int have = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
        sqlite3_finalize(st);
        if (!have)
            return store_damaged(s, err, "audit", "its trigger %s is missing: the log may have been rewritten",
                                 triggers[i]);
    }
    if (store_prepare(s, &st, "SELECT id, case_id, at, actor, action, before, after, hash FROM audit ORDER BY id", err))
        return err->code;
    char prev[65];
    snprintf(prev, sizeof prev, "%064d", 0);
    int64_t last = 0;
    int rc = CRAFT_OK, r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        char want[65];
        if (store_audit_hash(prev, id, sqlite3_column_int64(st, 1), sqlite3_column_double(st, 2),
                             (const char *)sqlite3_column_text(st, 3), (const char *)sqlite3_column_text(st, 4),
                             (const char *)sqlite3_column_text(st, 5), (const char *)sqlite3_column_text(st, 6), want)) {
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
            break;
        }
        const char *have = (const char *)sqlite3_column_text(st, 7);
        if (id != last + 1 || !have || strcmp(have, want)) {
            *bad_id = id;
            rc = store_damaged(s, err, "audit",
                               "row %lld: %s (the row, or one before it, was changed, inserted or removed)",
                               (long long)id,
                               id != last + 1 ? "its id does not follow the row before"
                               : !have        ? "it has no hash"
                                              : "its hash does not match");
            break;
        }
        memcpy(prev, want, sizeof prev);
        last = id;
        (*rows)++;
    }
    if (!rc && r != SQLITE_DONE)
        rc = store_fail(s, err, "reading the audit log");
    sqlite3_finalize(st);
    if (!rc)
        memcpy(head, prev, 65);
    return rc;
}
