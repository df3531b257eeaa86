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

int craft_store_queue(craft_store *s, const craft_queue_query *q, craft_queue_page *out, craft_error *err)
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
    if (!model_id && (q->sort == CRAFT_SORT_TOP_SCORE || q->sort == CRAFT_SORT_CLASS_SCORE))
        return CRAFT_OK; /* nothing scored yet: an empty queue */
    query_text t = {""};
    cat(&t, "SELECT o.id, o.order_id, o.ts, c.id, c.status, c.assignee, c.priority, p.scores, p.top_class, p.top_score");
    build_from_where(&t, q, 1);
    const char *dir = q->ascending ? " ASC" : " DESC";
    char order[256];
    switch (q->sort) {
    case CRAFT_SORT_CLASS_SCORE: snprintf(order, sizeof order, " ORDER BY cs.score%s, o.id", dir); break;
    case CRAFT_SORT_TIME: snprintf(order, sizeof order, " ORDER BY o.ts%s, o.id", dir); break;
    case CRAFT_SORT_STATUS:
        snprintf(order, sizeof order, " ORDER BY c.status%s, c.priority DESC, p.top_score DESC, o.id",
                 q->ascending ? " DESC" : " ASC");
        break;
    case CRAFT_SORT_PRIORITY: snprintf(order, sizeof order, " ORDER BY c.priority%s, p.top_score DESC, o.id", dir); break;
    case CRAFT_SORT_ORDER_ID: snprintf(order, sizeof order, " ORDER BY o.order_id%s", q->ascending ? " DESC" : " ASC"); break;
    case CRAFT_SORT_UPDATED: snprintf(order, sizeof order, " ORDER BY c.updated%s, o.id", dir); break;
    default: snprintf(order, sizeof order, " ORDER BY p.top_score%s, o.id", dir); break;
    }
    cat(&t, order);
    cat(&t, " LIMIT :limit OFFSET :offset");
    sqlite3_stmt *st;
    if (store_prepare(s, &st, t.sql, err)) {
        craft_queue_page_free(out);
        return err->code;
    }
    bind_query(st, q, model_id);
    int rc;
    if (!(out->rows = calloc((size_t)q->limit, sizeof *out->rows))) {
        sqlite3_finalize(st);
        craft_queue_page_free(out);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->n < q->limit) {
        craft_queue_row *r = &out->rows[out->n++];
        r->order = sqlite3_column_int64(st, 0);
        r->order_id = store_col_text(st, 1);
        r->ts = store_col_text(st, 2);
        r->case_id = sqlite3_column_int64(st, 3);
        r->status = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 4);
        r->assignee = store_col_text(st, 5);
        r->priority = sqlite3_column_int(st, 6);
        const float *sc = sqlite3_column_blob(st, 7);
        int ns = sqlite3_column_bytes(st, 7) / (int)sizeof(float);
        r->n_classes = out->n_classes;
        for (int k = 0; k < CRAFT_STORE_MAX_CLASSES; k++)
            r->scores[k] = sc && k < ns ? sc[k] : NAN;
        r->top_class = sc ? sqlite3_column_int(st, 8) : -1;
        r->top_score = sc ? (float)sqlite3_column_double(st, 9) : NAN;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        craft_queue_page_free(out);
        return store_fail(s, err, "reading the queue");
    }
    return CRAFT_OK;
}

void craft_queue_page_free(craft_queue_page *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++) {
        free(p->rows[i].order_id);
        free(p->rows[i].ts);
        free(p->rows[i].assignee);
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
