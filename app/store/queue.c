/* queue.c: the review queue (paged, sorted, filtered), one order in full,
 * entity history and the export for the trainer. */
#include "scoring.h"
#include "store_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ SQL functions */

/* craft_score(scores_blob, k): class k's score from a float32 blob, NULL when absent. */
static void fn_score(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const float *v = sqlite3_value_blob(argv[0]);
    int n = sqlite3_value_bytes(argv[0]) / (int)sizeof(float);
    int k = sqlite3_value_int(argv[1]);
    if (!v || k < 0 || k >= n)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_double(ctx, v[k]);
}

/* craft_any_above(scores_blob, thresholds_blob): 1 when some class reaches its
 * threshold (NaN thresholds are ignored). */
static void fn_any_above(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const float *v = sqlite3_value_blob(argv[0]);
    int n = sqlite3_value_bytes(argv[0]) / (int)sizeof(float);
    const float *t = sqlite3_value_blob(argv[1]);
    int nt = sqlite3_value_bytes(argv[1]) / (int)sizeof(float);
    int hit = 0;
    for (int k = 0; v && t && k < n && k < nt && !hit; k++)
        hit = !isnan(t[k]) && v[k] >= t[k];
    sqlite3_result_int(ctx, hit);
}

int store_register_functions(sqlite3 *db)
{
    int f = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    return sqlite3_create_function(db, "craft_score", 2, f, NULL, fn_score, NULL, NULL) ||
           sqlite3_create_function(db, "craft_any_above", 2, f, NULL, fn_any_above, NULL, NULL);
}

/* ---------------------------------------------------------------- queue */

void craft_queue_query_init(craft_queue_query *q)
{
    memset(q, 0, sizeof *q);
    q->cases_only = 1;
    q->cls = -1;
    q->sort = CRAFT_SORT_TOP_SCORE;
    q->limit = 100;
}

typedef struct {
    char sql[4096];
    int64_t model_id;
    float *thresholds;
    int n_thresholds;
} query_text;

static void cat(query_text *t, const char *s)
{
    size_t n = strlen(t->sql);
    snprintf(t->sql + n, sizeof t->sql - n, "%s", s);
}

/* FROM and WHERE of a queue query; parameters by name, bound by bind_query. */
static void build_from_where(query_text *t, const craft_queue_query *q, int with_status)
{
    int by_class = q->sort == CRAFT_SORT_CLASS_SCORE;
    int needs_scores = by_class || q->sort == CRAFT_SORT_TOP_SCORE;
    int case_driven = !needs_scores && (q->cases_only || (with_status && q->status_mask) ||
                                        (q->assignee && *q->assignee));
    if (by_class)
        cat(t, " FROM class_scores cs JOIN predictions p ON p.order_id = cs.order_id AND p.model_id = cs.model_id"
               " AND p.off = 0 JOIN orders o ON o.id = cs.order_id");
    else if (needs_scores)
        cat(t, " FROM predictions p JOIN orders o ON o.id = p.order_id");
    else if (case_driven) /* the review queue: start from the (much smaller) cases table */
        cat(t, " FROM cases c JOIN orders o ON o.id = c.order_id"
               " LEFT JOIN predictions p ON p.order_id = o.id AND p.model_id = :model AND p.off = 0");
    else
        cat(t, " FROM orders o LEFT JOIN predictions p ON p.order_id = o.id AND p.model_id = :model AND p.off = 0");
    cat(t, case_driven ? " WHERE 1" : " LEFT JOIN cases c ON c.order_id = o.id WHERE 1");
    if (by_class)
        cat(t, " AND cs.model_id = :model AND cs.class = :sort_class");
    else if (needs_scores)
        cat(t, " AND p.model_id = :model AND p.off = 0");
    if (q->dataset_id)
        cat(t, " AND o.dataset_id = :dataset");
    if (q->cases_only || (with_status && q->status_mask))
        cat(t, " AND c.id IS NOT NULL");
    if (with_status && q->status_mask)
        cat(t, " AND ((:status_mask >> c.status) & 1)");
    if (q->cls >= 0 && q->min_score > 0)
        cat(t, by_class && q->cls == q->sort_class ? " AND cs.score >= :min_score"
                                                   : " AND craft_score(p.scores, :cls) >= :min_score");
    else if (q->cls < 0 && q->min_score > 0)
        cat(t, " AND p.top_score >= :min_score");
    if (q->class_min && q->n_class_min > 0)
        cat(t, " AND craft_any_above(p.scores, :thresholds)");
    if (q->assignee)
        cat(t, *q->assignee ? " AND c.assignee = :assignee" : " AND c.id IS NOT NULL AND c.assignee IS NULL");
    if (q->search && *q->search)
        cat(t, " AND (o.order_id LIKE :pattern ESCAPE '\\' OR o.id IN (SELECT oe.order_id FROM entities e"
               " JOIN order_entities oe ON oe.entity = e.id WHERE e.entity_id LIKE :pattern ESCAPE '\\'))");
}

static void bind_named(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i)
        sqlite3_bind_int64(st, i, v);
}

static void bind_query(sqlite3_stmt *st, const craft_queue_query *q, int64_t model_id)
{
    bind_named(st, ":model", model_id);
    bind_named(st, ":sort_class", q->sort_class);
    bind_named(st, ":dataset", q->dataset_id);
    bind_named(st, ":status_mask", q->status_mask);
    bind_named(st, ":cls", q->cls);
    bind_named(st, ":offset", q->offset);
    bind_named(st, ":cases_only", q->cases_only);
    bind_named(st, ":limit", q->limit);
    int i;
    if ((i = sqlite3_bind_parameter_index(st, ":min_score")))
        sqlite3_bind_double(st, i, q->min_score);
    if ((i = sqlite3_bind_parameter_index(st, ":thresholds")))
        sqlite3_bind_blob(st, i, q->class_min, q->n_class_min * (int)sizeof(float), SQLITE_TRANSIENT);
    if ((i = sqlite3_bind_parameter_index(st, ":assignee")))
        sqlite3_bind_text(st, i, q->assignee, -1, SQLITE_TRANSIENT);
    if ((i = sqlite3_bind_parameter_index(st, ":pattern"))) {
        /* a substring match: escape LIKE's wildcards in what was typed */
        size_t n = strlen(q->search);
        char *pat = malloc(2 * n + 3);
        if (pat) {
            char *o = pat;
            *o++ = '%';
            for (const char *c = q->search; *c; c++) {
                if (*c == '%' || *c == '_' || *c == '\\')
                    *o++ = '\\';
                *o++ = *c;
            }
            *o++ = '%';
            *o = 0;
            sqlite3_bind_text(st, i, pat, -1, free);
        }
    }
}

static int check_query(craft_store *s, const craft_queue_query *q, int64_t *model_id, craft_error *err)
{
    if (q->limit < 1 || q->limit > 10000)
        return craft_fail(err, CRAFT_EINPUT, "a queue page holds 1..10000 rows, not %d", q->limit);
    if (q->offset < 0)
        return craft_fail(err, CRAFT_EINPUT, "a negative queue offset");
    if (q->sort < CRAFT_SORT_TOP_SCORE || q->sort > CRAFT_SORT_UPDATED)
        return craft_fail(err, CRAFT_EINPUT, "unknown queue sort %d", q->sort);
    *model_id = q->model_id ? q->model_id : craft_store_latest_model(s);
    (void)s;
    return CRAFT_OK;
}

/* ------------------------------------------------------ sort keys */

int craft_queue_key_copy(craft_queue_key *dst, const craft_queue_key *src)
{
    *dst = *src;
    for (int i = 0; i < CRAFT_QUEUE_KEY_COLUMNS; i++) {
        dst->v[i].t = NULL;
        if (i < src->n && (src->v[i].type == CRAFT_QV_TEXT || src->v[i].type == CRAFT_QV_BLOB)) {
            if (!(dst->v[i].t = malloc((size_t)src->v[i].len + 1))) {
                craft_queue_key_clear(dst);
                return CRAFT_ENOMEM;
            }
            if (src->v[i].t)
                memcpy(dst->v[i].t, src->v[i].t, (size_t)src->v[i].len);
            dst->v[i].t[src->v[i].len] = 0;
        }
    }
    return CRAFT_OK;
}

void craft_queue_key_clear(craft_queue_key *k)
{
    if (!k)
        return;
    for (int i = 0; i < CRAFT_QUEUE_KEY_COLUMNS; i++)
        free(k->v[i].t);
    memset(k, 0, sizeof *k);
}

/* One sort column: its SQL, its direction, whether it can be NULL in this query,
 * and whether a range on it may lead the plan (not for a column of a LEFT JOINed
 * table: a range there turns the join inner, and SQLite then sorts every case). */
typedef struct {
    const char *expr;
    int desc, nullable, range_ok;
} sort_col;

/* The sort columns of q (before the order row id, always ascending). */
static int sort_cols(const craft_queue_query *q, sort_col *c)
{
    int needs_scores = q->sort == CRAFT_SORT_CLASS_SCORE || q->sort == CRAFT_SORT_TOP_SCORE;
    /* a case column is NULL only for orders without a case */
    int case_nullable = !(q->cases_only || q->status_mask || q->assignee);
    int desc = !q->ascending;
    switch (q->sort) {
    case CRAFT_SORT_CLASS_SCORE: c[0] = (sort_col){"cs.score", desc, 0, 1}; return 1;
    case CRAFT_SORT_TIME: c[0] = (sort_col){"o.ts", desc, 1, 1}; return 1;
    /* Status and priority lead with a few values, then the prediction's top score (another
     * table): no index serves the order. Reading cases through cases_status would visit them in
     * random order (14 s a page at 1,000,000 cases, against 0.5 s for one pass in table order
     * keeping the best `limit`), so "+" keeps the planner off the indexes on these columns. */
    case CRAFT_SORT_STATUS:
        c[0] = (sort_col){"+c.status", !desc, case_nullable, 0};
        c[1] = (sort_col){"+c.priority", 1, case_nullable, 0};
        c[2] = (sort_col){"p.top_score", 1, !needs_scores, 0};
        return 3;
    case CRAFT_SORT_PRIORITY:
        c[0] = (sort_col){"+c.priority", desc, case_nullable, 0};
        c[1] = (sort_col){"p.top_score", 1, !needs_scores, 0};
        return 2;
    case CRAFT_SORT_ORDER_ID: c[0] = (sort_col){"o.order_id", !desc, 0, 1}; return 1;
    case CRAFT_SORT_UPDATED: c[0] = (sort_col){"c.updated", desc, case_nullable, !case_nullable}; return 1;
    default: c[0] = (sort_col){"p.top_score", desc, 0, 1}; return 1;
    }
}

/* "x comes strictly after the key's value" in a column read in direction desc
 * (SQLite orders NULL first ascending, last descending). */
static void cat_after(query_text *t, const sort_col *c, int desc, int i, const craft_queue_value *v)
{
    char buf[160];
    if (v->type == CRAFT_QV_NULL)
        snprintf(buf, sizeof buf, desc ? "0" : "%s IS NOT NULL", c->expr);
    else if (desc && c->nullable)
        snprintf(buf, sizeof buf, "(%s < :k%d OR %s IS NULL)", c->expr, i, c->expr);
    else
        snprintf(buf, sizeof buf, "%s %s :k%d", c->expr, desc ? "<" : ">", i);
    cat(t, buf);
}

static void cat_equal(query_text *t, const sort_col *c, int i, const craft_queue_value *v)
{
    char buf[160];
    if (v->type == CRAFT_QV_NULL)
        snprintf(buf, sizeof buf, "%s IS NULL", c->expr);
    else
        snprintf(buf, sizeof buf, "%s = :k%d", c->expr, i);
    cat(t, buf);
}

/* The rows after (back: before) the key, in the sort of cols: a range on the first
 * column where it is one (so an index seek starts there), then the exact
 * lexicographic comparison, the order row id last. not_null: the caller reads
 * the first column's NULLs (which follow every value, descending) separately. */
static void cat_seek(query_text *t, const sort_col *cols, int n, const craft_queue_key *k, int back, int not_null)
{
    char buf[200];
    int d0 = cols[0].desc ^ back;
    const craft_queue_value *v0 = &k->v[0];
    if (v0->type == CRAFT_QV_NULL) {
        if (d0) { /* after NULL, descending: only the other NULLs */
            snprintf(buf, sizeof buf, " AND %s IS NULL", cols[0].expr);
            cat(t, buf);
        }
    } else if (cols[0].range_ok && (!d0 || !cols[0].nullable || not_null)) {
        snprintf(buf, sizeof buf, " AND %s %s :k0", cols[0].expr, d0 ? "<=" : ">=");
        cat(t, buf);
        if (not_null) {
            snprintf(buf, sizeof buf, " AND %s IS NOT NULL", cols[0].expr);
            cat(t, buf);
        }
    }
    /* (a0 OR (e0 AND (a1 OR (e1 AND ... id)))) */
    cat(t, " AND ");
    for (int i = 0; i < n; i++) {
        cat(t, "(");
        cat_after(t, &cols[i], cols[i].desc ^ back, i, &k->v[i]);
        cat(t, " OR (");
        cat_equal(t, &cols[i], i, &k->v[i]);
        cat(t, " AND ");
    }
    cat(t, back ? "o.id < :kid" : "o.id > :kid");
    for (int i = 0; i < n; i++)
        cat(t, "))");
}

static void bind_seek(sqlite3_stmt *st, const craft_queue_key *k)
{
    for (int i = 0; i < k->n; i++) {
        char name[16];
        snprintf(name, sizeof name, ":k%d", i);
        int at = sqlite3_bind_parameter_index(st, name);
        if (!at)
            continue;
        const craft_queue_value *v = &k->v[i];
        switch (v->type) {
        case CRAFT_QV_INT: sqlite3_bind_int64(st, at, v->i); break;
        case CRAFT_QV_REAL: sqlite3_bind_double(st, at, v->d); break;
        case CRAFT_QV_TEXT: sqlite3_bind_text(st, at, v->t ? v->t : "", v->t ? v->len : 0, SQLITE_TRANSIENT); break;
        case CRAFT_QV_BLOB: sqlite3_bind_blob(st, at, v->t ? v->t : "", v->t ? v->len : 0, SQLITE_TRANSIENT); break;
        default: sqlite3_bind_null(st, at); break;
        }
    }
    bind_named(st, ":kid", k->order);
}

static int read_value(sqlite3_stmt *st, int col, craft_queue_value *v)
{
    memset(v, 0, sizeof *v);
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER: v->type = CRAFT_QV_INT; v->i = sqlite3_column_int64(st, col); break;
    case SQLITE_FLOAT: v->type = CRAFT_QV_REAL; v->d = sqlite3_column_double(st, col); break;
    case SQLITE_NULL: v->type = CRAFT_QV_NULL; break;
    default: {
        /* the exact bytes and type: a copy cut at a NUL would not be this row's key */
        int blob = sqlite3_column_type(st, col) == SQLITE_BLOB;
        const void *b = blob ? sqlite3_column_blob(st, col) : (const void *)sqlite3_column_text(st, col);
        int n = sqlite3_column_bytes(st, col);
        v->type = blob ? CRAFT_QV_BLOB : CRAFT_QV_TEXT;
        if (!(v->t = malloc((size_t)n + 1)))
            return CRAFT_ENOMEM;
        if (n)
            memcpy(v->t, b, (size_t)n);
        v->t[n] = 0;
        v->len = n;
        break;
    }
    }
    return CRAFT_OK;
}

/* The FROM, WHERE and seek of one segment of a queue read. segment 0: the whole
 * read; 1: rows whose first sort column is not NULL; 2: rows where it is NULL
 * (which all come after a non-NULL key: no seek condition). */
static void cat_segment(query_text *t, const craft_queue_query *q, const sort_col *cols, int n_cols, int segment)
{
    build_from_where(t, q, 1);
    if (q->seek && segment != 2)
        cat_seek(t, cols, n_cols, q->seek, q->seek_back != 0, segment == 1);
    if (segment == 2) {
        cat(t, " AND ");
        cat(t, cols[0].expr);
        cat(t, " IS NULL");
    }
}

static int bind_segment(craft_store *s, sqlite3_stmt **st, const query_text *t, const craft_queue_query *q,
                        int64_t model_id, int64_t offset, int limit, craft_error *err)
{
    if (store_prepare(s, st, t->sql, err))
        return err->code;
    craft_queue_query qq = *q;
    qq.offset = offset;
    qq.limit = limit;
    bind_query(*st, &qq, model_id);
    if (q->seek)
        bind_seek(*st, q->seek);
    return CRAFT_OK;
}

/* The SQL of a read of a segment: select, then the sort columns (from column
 * `select`'s count on), in queue order (backwards: every direction turned). */
static void cat_read(query_text *t, const craft_queue_query *q, const sort_col *cols, int n_cols, int segment,
                     const char *select)
{
    int back = q->seek_back != 0;
    cat(t, select);
    for (int i = 0; i < n_cols; i++) {
        cat(t, ", ");
        cat(t, cols[i].expr);
    }
    cat_segment(t, q, cols, n_cols, segment);
    /* The order: the sort columns, then the order row id ascending (reading
     * backwards: every direction turned, the page reversed after reading). */
    cat(t, " ORDER BY ");
    for (int i = 0; i < n_cols; i++) {
        cat(t, cols[i].expr);
        cat(t, cols[i].desc ^ back ? " DESC, " : " ASC, ");
    }
    cat(t, back ? "o.id DESC" : "o.id ASC");
    cat(t, " LIMIT :limit OFFSET :offset");
}

/* A row's key from a statement's columns: the order row id at id_col, the sort
 * columns from first_col on. */
static int read_key(sqlite3_stmt *st, const craft_queue_query *q, int n_cols, int id_col, int first_col,
                    craft_queue_key *k)
{
    int oom = 0;
    k->sort = q->sort;
    k->n = n_cols;
    k->order = sqlite3_column_int64(st, id_col);
    for (int i = 0; i < n_cols; i++)
        oom |= read_value(st, first_col + i, &k->v[i]) != CRAFT_OK;
    return oom ? CRAFT_ENOMEM : CRAFT_OK;
}

/* One queue row by its order row id (bound ?1; the model ?2): how every page's rows
 * are read once their ids are known (see read_segment). */
int store_queue_row_prepare(craft_store *s, sqlite3_stmt **st, craft_error *err)
{
    return store_prepare(s, st,
                         "SELECT o.order_id, o.ts, c.id, c.status, c.assignee, c.priority, p.scores, p.top_class,"
                         " p.top_score FROM orders o LEFT JOIN cases c ON c.order_id = o.id LEFT JOIN predictions p"
                         " ON p.order_id = o.id AND p.model_id = ?2 AND p.off = 0 WHERE o.id = ?1",
                         err);
}

int store_queue_row_read(craft_store *s, sqlite3_stmt *st, int64_t model_id, int64_t order, int n_classes,
                         craft_queue_row *r, craft_error *err)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, order);
    sqlite3_bind_int64(st, 2, model_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return craft_fail(err, CRAFT_EINPUT, "order %lld left the store while the queue was read", (long long)order);
    if (rc != SQLITE_ROW)
        return store_fail(s, err, "reading a queue row");
    r->order = order;
    r->order_id = store_col_text(st, 0);
    r->ts = store_col_text(st, 1);
    r->case_id = sqlite3_column_int64(st, 2);
    r->status = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 3);
    r->assignee = store_col_text(st, 4);
    r->priority = sqlite3_column_int(st, 5);
    const float *sc = sqlite3_column_blob(st, 6);
    int ns = sqlite3_column_bytes(st, 6) / (int)sizeof(float);
    r->n_classes = n_classes;
    for (int k = 0; k < CRAFT_STORE_MAX_CLASSES; k++)
        r->scores[k] = sc && k < ns ? sc[k] : NAN;
    r->top_class = sc ? sqlite3_column_int(st, 7) : -1;
    r->top_score = sc ? (float)sqlite3_column_double(st, 8) : NAN;
    if (!r->order_id)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    return CRAFT_OK;
}

/* Reads up to `limit` rows of a segment into out (appended, keys included): first
 * the ids and keys alone (the order the index gives, with the joins only the
 * filters need), then each row by its id. Reading whole rows in the sorted scan
 * read every scanned row's order and case first, wanted or not: the last page of a
 * review queue of 78,750 cases among 1,000,000 orders took 7.7 s that way, 1.7 s
 * this way. */
static int read_segment(craft_store *s, const craft_queue_query *q, int64_t model_id, const sort_col *cols,
                        int n_cols, int segment, int64_t offset, int limit, craft_queue_page *out, craft_error *err)
{
    query_text t = {""};
    cat_read(&t, q, cols, n_cols, segment, "SELECT o.id");
    sqlite3_stmt *st;
    if (bind_segment(s, &st, &t, q, model_id, offset, limit, err))
        return err->code;
    int rc = SQLITE_DONE, oom = 0, first = out->n, end = out->n + limit;
    while (!oom && out->n < end && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        craft_queue_row *r = &out->rows[out->n++];
        oom |= read_key(st, q, n_cols, 0, 1, &r->key) != CRAFT_OK;
        r->order = r->key.order;
    }
    if (out->n >= end)
        rc = SQLITE_DONE;
    sqlite3_finalize(st);
    if (oom)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(s, err, "reading the queue");
    if (out->n == first || store_queue_row_prepare(s, &st, err))
        return out->n == first ? CRAFT_OK : err->code;
    int bad = CRAFT_OK;
    for (int i = first; i < out->n && !bad; i++)
        bad = store_queue_row_read(s, st, model_id, out->rows[i].order, out->n_classes, &out->rows[i], err);
    sqlite3_finalize(st);
    return bad;
}

/* The keys only (no row data: index reads) of rows [offset, offset + limit) of a
 * segment: the key of every `every`-th row counted from *n_read (rows read before,
 * updated) goes to keys (up to max_keys, *n_keys counting), the last row's to last. */
static int read_segment_keys(craft_store *s, const craft_queue_query *q, int64_t model_id, const sort_col *cols,
                             int n_cols, int segment, int64_t offset, int limit, int every, craft_queue_key *keys,
                             int max_keys, int *n_keys, craft_queue_key *last, int64_t *n_read, craft_error *err)
{
    query_text t = {""};
    cat_read(&t, q, cols, n_cols, segment, "SELECT o.id");
    sqlite3_stmt *st;
    if (bind_segment(s, &st, &t, q, model_id, offset, limit, err))
        return err->code;
    int rc, oom = 0;
    while (!oom && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ++*n_read;
        if (every > 0 && *n_read % every == 0 && *n_keys < max_keys) {
            craft_queue_key_clear(&keys[*n_keys]);
            oom |= read_key(st, q, n_cols, 0, 1, &keys[(*n_keys)++]) != CRAFT_OK;
        }
        craft_queue_key_clear(last);
        oom |= read_key(st, q, n_cols, 0, 1, last) != CRAFT_OK;
    }
    sqlite3_finalize(st);
    if (oom)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    return rc == SQLITE_DONE ? CRAFT_OK : store_fail(s, err, "reading the queue's keys");
}

/* A descending read after a value of a nullable column that an index range serves
 * (the time): the values below the key by that range, then the NULLs (last,
 * descending) as a second segment. */
static int split_read(const craft_queue_query *q, const sort_col *cols)
{
    const craft_queue_key *seek = q->seek;
    int back = q->seek_back != 0;
    return seek && cols[0].nullable && cols[0].range_ok && (cols[0].desc ^ back) && seek->v[0].type != CRAFT_QV_NULL;
}

/* The rows of segment 1 (for an offset that may reach into segment 2). */
static int count_segment(craft_store *s, const craft_queue_query *q, int64_t model_id, const sort_col *cols,
                         int n_cols, int64_t *n, craft_error *err)
{
    query_text t = {""};
    cat(&t, "SELECT count(*)");
    cat_segment(&t, q, cols, n_cols, 1);
    sqlite3_stmt *st;
    if (bind_segment(s, &st, &t, q, model_id, 0, 1, err))
        return err->code;
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? CRAFT_OK : store_fail(s, err, "counting the queue");
}

static int queue_read(craft_store *s, const craft_queue_query *q, craft_queue_page *out, craft_error *err);

/* One read transaction around a page's statements (its keys, its rows, a second
 * segment): they all see the store as it was at the first. */
int craft_store_queue(craft_store *s, const craft_queue_query *q, craft_queue_page *out, craft_error *err)
{
    int own = sqlite3_get_autocommit(s->db) && sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    int rc = queue_read(s, q, out, err);
    if (own)
        sqlite3_exec(s->db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    return rc;
}

static int queue_read(craft_store *s, const craft_queue_query *q, craft_queue_page *out, craft_error *err)
{
    memset(out, 0, sizeof *out);
    int64_t model_id = 0;
    if (check_query(s, q, &model_id, err))
        return err->code;
    out->model_id = model_id;
    if (model_id && store_model_classes(s, model_id, &out->classes, &out->n_classes, err))
        return err->code;
    if ((q->sort == CRAFT_SORT_CLASS_SCORE && (q->sort_class < 0 || q->sort_class >= out->n_classes)) ||
        (q->cls >= out->n_classes)) {
        craft_queue_page_free(out);
        return craft_fail(err, CRAFT_EINPUT, "class %d is not one of the model's %d classes",
                          q->sort == CRAFT_SORT_CLASS_SCORE ? q->sort_class : q->cls, out->n_classes);
    }
    sort_col cols[CRAFT_QUEUE_KEY_COLUMNS];
    int n_cols = sort_cols(q, cols);
    const craft_queue_key *seek = q->seek;
    if (seek && (seek->sort != q->sort || seek->n != n_cols)) {
        craft_queue_page_free(out);
        return craft_fail(err, CRAFT_EINPUT, "a queue key of another sort (%d, not %d)", seek->sort, q->sort);
    }
    int back = q->seek_back != 0; /* without a key: from the end */
    if (!model_id && (q->sort == CRAFT_SORT_TOP_SCORE || q->sort == CRAFT_SORT_CLASS_SCORE))
        return CRAFT_OK; /* nothing scored yet: an empty queue */
    if (!(out->rows = calloc((size_t)q->limit, sizeof *out->rows))) {
        craft_queue_page_free(out);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    int split = split_read(q, cols);
    if (q->offset >= s->key_skip_rows && !split) {
        /* A long skip reads keys only up to the row before the page (index reads: a
         * whole row per skipped row, through the sorter, was 5-10 s to the middle of
         * 1,000,000 orders), then the page from that key. */
        craft_queue_query k = *q;
        craft_queue_key last = {0};
        int64_t n_read = 0;
        int n_keys = 0, rc = read_segment_keys(s, &k, model_id, cols, n_cols, 0, q->offset - 1, 1, 0, NULL, 0, &n_keys,
                                               &last, &n_read, err);
        if (rc || n_read == 0) { /* an error, or the skip reaches past the end: no rows */
            craft_queue_key_clear(&last);
            free(out->rows);
            out->rows = NULL;
            if (rc)
                craft_queue_page_free(out);
            return rc;
        }
        craft_queue_query from = *q;
        from.offset = 0;
        from.seek = &last;
        craft_queue_page_free(out);
        rc = queue_read(s, &from, out, err);
        craft_queue_key_clear(&last);
        return rc;
    }
    int rc = read_segment(s, q, model_id, cols, n_cols, split ? 1 : 0, q->offset, q->limit, out, err);
    if (!rc && split && out->n < q->limit) {
        int64_t offset = 0;
        if (out->n == 0 && q->offset > 0) { /* the offset may reach past the values: how far */
            int64_t in_values = 0;
            rc = count_segment(s, q, model_id, cols, n_cols, &in_values, err);
            offset = q->offset > in_values ? q->offset - in_values : 0;
        }
        if (!rc)
            rc = read_segment(s, q, model_id, cols, n_cols, 2, offset, q->limit - out->n, out, err);
    }
    if (rc) {
        craft_queue_page_free(out);
        return rc;
    }
    if (back) /* read backwards: put the page in queue order */
        for (int i = 0, j = out->n - 1; i < j; i++, j--) {
            craft_queue_row tmp = out->rows[i];
            out->rows[i] = out->rows[j];
            out->rows[j] = tmp;
        }
    return CRAFT_OK;
}

int craft_store_queue_keys(craft_store *s, const craft_queue_query *q, int every, craft_queue_key *keys, int max_keys,
                           int *n_keys, craft_queue_key *last, int64_t *n_read, craft_error *err)
{
    *n_keys = 0;
    *n_read = 0;
    craft_queue_key_clear(last);
    int64_t model_id = 0;
    if (check_query(s, q, &model_id, err))
        return err->code;
    if (every < 1)
        return craft_fail(err, CRAFT_EINPUT, "keys of every %d-th row", every);
    sort_col cols[CRAFT_QUEUE_KEY_COLUMNS];
    int n_cols = sort_cols(q, cols);
    if (q->seek && (q->seek->sort != q->sort || q->seek->n != n_cols))
        return craft_fail(err, CRAFT_EINPUT, "a queue key of another sort (%d, not %d)", q->seek->sort, q->sort);
    if (!model_id && (q->sort == CRAFT_SORT_TOP_SCORE || q->sort == CRAFT_SORT_CLASS_SCORE))
        return CRAFT_OK; /* nothing scored yet */
    int split = split_read(q, cols);
    if (split && q->offset > 0)
        return craft_fail(err, CRAFT_EINPUT, "an offset after a key of this sort (read its keys from the key)");
    int rc = read_segment_keys(s, q, model_id, cols, n_cols, split ? 1 : 0, q->offset, q->limit, every, keys, max_keys,
                               n_keys, last, n_read, err);
    if (!rc && split && *n_read < q->limit)
        rc = read_segment_keys(s, q, model_id, cols, n_cols, 2, 0, q->limit - (int)*n_read, every, keys, max_keys,
                               n_keys, last, n_read, err);
    return rc;
}

int craft_store_queue_each(craft_store *s, const craft_queue_query *q, craft_queue_page_fn fn, void *user,
                           const volatile int *cancel, craft_error *err)
{
    craft_queue_query at = *q;
    at.offset = 0;
    at.seek = NULL;
    at.seek_back = 0;
    craft_queue_key key = {0};
    int rc = CRAFT_OK;
    for (;;) {
        if (cancel && *cancel) {
            rc = craft_fail(err, CRAFT_ECANCELLED, "cancelled");
            break;
        }
        craft_queue_page p;
        if ((rc = craft_store_queue(s, &at, &p, err)))
            break;
        int stop = fn(user, &p) != 0, last = p.n < at.limit;
        craft_queue_key_clear(&key);
        if (!stop && !last && craft_queue_key_copy(&key, &p.rows[p.n - 1].key) != CRAFT_OK)
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        craft_queue_page_free(&p);
        if (stop || last || rc)
            break;
        at.seek = &key; /* the next page: an index seek from this one's last row */
    }
    craft_queue_key_clear(&key);
    return rc;
}

int craft_store_queue_order_ids(craft_store *s, const craft_queue_query *q, int64_t **ids, int64_t *n,
                                craft_error *err)
{
    *ids = NULL;
    *n = 0;
    craft_queue_query all = *q;
    all.seek = NULL;
    all.seek_back = 0;
    all.offset = 0;
    all.limit = 1;
    int64_t model_id = 0;
    if (check_query(s, &all, &model_id, err))
        return err->code;
    if (!model_id && (q->sort == CRAFT_SORT_TOP_SCORE || q->sort == CRAFT_SORT_CLASS_SCORE))
        return CRAFT_OK; /* nothing scored yet */
    sort_col cols[CRAFT_QUEUE_KEY_COLUMNS];
    int n_cols = sort_cols(&all, cols);
    query_text t = {""};
    cat_read(&t, &all, cols, n_cols, 0, "SELECT o.id");
    sqlite3_stmt *st;
    if (bind_segment(s, &st, &t, &all, model_id, 0, -1, err)) /* LIMIT -1: every row */
        return err->code;
    int64_t cap = 0;
    int rc, oom = 0;
    while (!oom && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            int64_t *grown = realloc(*ids, sizeof **ids * (size_t)(cap = cap ? 2 * cap : 4096));
            if (!grown) {
                oom = 1;
                break;
            }
            *ids = grown;
        }
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (oom || rc != SQLITE_DONE) {
        free(*ids);
        *ids = NULL;
        *n = 0;
        return oom ? craft_fail(err, CRAFT_ENOMEM, "out of memory") : store_fail(s, err, "reading the queue's orders");
    }
    return CRAFT_OK;
}

int craft_store_order_rows(craft_store *s, const char *const *order_ids, int n, int64_t *rows, craft_error *err)
{
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT id FROM orders WHERE order_id = ?1", err))
        return err->code;
    int rc = CRAFT_OK;
    for (int i = 0; i < n && !rc; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, order_ids[i], -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            rows[i] = sqlite3_column_int64(st, 0);
        else if (r == SQLITE_DONE)
            rc = craft_fail(err, CRAFT_EINPUT, "order %s is not in %s", order_ids[i], craft_store_path(s));
        else
            rc = store_fail(s, err, "looking up orders");
    }
    sqlite3_finalize(st);
    return rc;
}

void craft_queue_page_free(craft_queue_page *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++) {
        free(p->rows[i].order_id);
        free(p->rows[i].ts);
        free(p->rows[i].assignee);
        craft_queue_key_clear(&p->rows[i].key);
    }
    free(p->rows);
    store_free_strings(p->classes, p->n_classes);
    memset(p, 0, sizeof *p);
}

int craft_store_queue_counts(craft_store *s, const craft_queue_query *q, craft_queue_counts *out, craft_error *err)
{
    memset(out, 0, sizeof *out);
    int64_t model_id;
    craft_queue_query qq = *q;
    qq.limit = 1;
    qq.offset = 0;
    /* counts depend on the filters only: the cheapest driving table for them */
    qq.sort = CRAFT_SORT_TIME;
    if (check_query(s, &qq, &model_id, err))
        return err->code;
    if (qq.cls >= 0 && qq.min_score > 0) {
        qq.sort = CRAFT_SORT_CLASS_SCORE; /* a range of the class's clustered scores */
        qq.sort_class = qq.cls;
    } else if (qq.min_score > 0 || qq.class_min) {
        qq.sort = CRAFT_SORT_TOP_SCORE;
    }
    if ((qq.sort == CRAFT_SORT_TOP_SCORE || qq.sort == CRAFT_SORT_CLASS_SCORE) && !model_id)
        return CRAFT_OK;
    query_text t = {""};
    int plain = !qq.dataset_id && qq.cls < 0 && qq.min_score <= 0 && !qq.class_min && !qq.assignee &&
                !(qq.search && *qq.search) && qq.sort == CRAFT_SORT_TIME;
    int lean = !plain && !qq.dataset_id && !qq.assignee && !(qq.search && *qq.search) && !qq.class_min &&
               qq.sort != CRAFT_SORT_TIME;
    if (lean) {
        /* a score threshold alone: count a range of an index, looking up only the case */
        snprintf(t.sql, sizeof t.sql, "%s",
                 qq.sort == CRAFT_SORT_CLASS_SCORE
                     ? "SELECT coalesce(c.status, -2), count(*) FROM class_scores cs LEFT JOIN cases c ON c.order_id ="
                       " cs.order_id WHERE cs.model_id = :model AND cs.class = :sort_class AND cs.score >= :min_score"
                       " AND (:cases_only = 0 OR c.id IS NOT NULL) GROUP BY 1"
                     : "SELECT coalesce(c.status, -2), count(*) FROM predictions p LEFT JOIN cases c ON c.order_id ="
                       " p.order_id WHERE p.model_id = :model AND p.off = 0 AND p.top_score >= :min_score"
                       " AND (:cases_only = 0 OR c.id IS NOT NULL) GROUP BY 1");
    } else if (plain) {
        /* the common case, straight from the indexes */
        snprintf(t.sql, sizeof t.sql,
                 "SELECT status, count(*) FROM cases GROUP BY status UNION ALL SELECT -1, count(*) FROM orders");
    } else {
        cat(&t, "SELECT coalesce(c.status, -2), count(*)");
        build_from_where(&t, &qq, 0);
        cat(&t, " GROUP BY 1");
    }
    sqlite3_stmt *st;
    if (store_prepare(s, &st, t.sql, err))
        return err->code;
    bind_query(st, &qq, model_id);
    int rc;
    int64_t cases = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int status = sqlite3_column_int(st, 0);
        int64_t n = sqlite3_column_int64(st, 1);
        if (status >= 0 && status < CRAFT_CASE_N_STATUS) {
            out->status[status] = n;
            cases += n;
        } else if (status == -1) {
            out->total = n;
        } else if (status == -2) {
            out->no_case = n;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "counting the queue");
    if (plain)
        out->no_case = qq.cases_only ? 0 : out->total - cases;
    if (!plain || qq.cases_only)
        out->total = cases + out->no_case;
    return CRAFT_OK;
}
