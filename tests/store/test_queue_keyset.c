/* test_queue_keyset: keyset (seek) paging of the case queue returns exactly the
 * rows of the plain ORDER BY, in the same order, for every sort (both
 * directions) and filter combination: forward from each page's last key,
 * backward from each page's first key, and with an offset after a key (also
 * with every skip read by keys only first), and the keys-only read. The
 * store is made so that the sort keys tie: every fixture order is imported six
 * times under other ids (identical inputs, identical scores), time stamps repeat
 * or are missing, and many cases share status, priority and assignee. */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_internal.h"
#include "store_test_util.h"

#define COPIES 6
#define MAX_ROWS 2000
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static char dir[256], db[512];

/* The fixture's orders, COPIES times under new ids; copy c of order i gets a time
 * stamp shared by all its copies (ties), none for every fifth order. */
static void write_copies(const char *in, const char *out, int copies, const char *prefix)
{
    FILE *f = fopen(in, "r"), *g = fopen(out, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    char line[65536];
    int i = 0;
    while (fgets(line, sizeof line, f)) {
        for (int c = 0; c < copies; c++) {
            cJSON *o = cJSON_Parse(line);
            CU_ASSERT_PTR_NOT_NULL_FATAL(o);
            char id[64], ts[64];
            snprintf(id, sizeof id, "%s-%02d-%d", prefix, i, c);
            cJSON_ReplaceItemInObject(o, "order_id", cJSON_CreateString(id));
            if (i % 5) {
                snprintf(ts, sizeof ts, "2026-04-%02dT10:00:00Z", 1 + i % 7);
                cJSON_AddStringToObject(o, "ts", ts);
            }
            char *s = cJSON_PrintUnformatted(o);
            fprintf(g, "%s\n", s);
            free(s);
            cJSON_Delete(o);
        }
        i++;
    }
    fclose(f);
    fclose(g);
}

static void make_store(void)
{
    const char *fx = getenv("CRAFT_FIXTURES");
    char in[512], orders[512], extra[512], model[512];
    snprintf(in, sizeof in, "%s/tiny-multilabel.orders.jsonl", fx);
    snprintf(model, sizeof model, "%s/tiny-multilabel.safetensors", fx);
    snprintf(orders, sizeof orders, "%s/orders.jsonl", dir);
    snprintf(extra, sizeof extra, "%s/extra.jsonl", dir);
    write_copies(in, orders, COPIES, "K");
    write_copies(in, extra, 1, "U"); /* imported after scoring: no scores */
    craft_store *s = NULL;
    craft_error err = {0};
    craft_import_options io = {0};
    craft_import_stats is = {0};
    craft_model *m = NULL;
    craft_store_score_options so = {.explain = 0, .subsets = 0, .flag_threshold = 0.35f, .batch = 16};
    craft_store_score_stats ss = {0};
    const char *p1[] = {orders}, *p2[] = {extra};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_CREATE, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_store_import(s, p1, 1, &io, &is, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, model, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_store_score(s, m, model, &so, &ss, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_store_import(s, p2, 1, &io, &is, &err), CRAFT_OK);
    craft_model_free(m);
    /* case actions: statuses, assignees and priorities, many of them equal */
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.sort = CRAFT_SORT_ORDER_ID;
    q.limit = 10000;
    craft_queue_page pg = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    CU_ASSERT_FATAL(pg.n > 30);
    for (int i = 0; i < pg.n; i++) {
        int64_t c = pg.rows[i].case_id;
        if (i % 3 == 0)
            CU_ASSERT_EQUAL(craft_store_case_decide(s, c, i % 2 ? CRAFT_CASE_CONFIRMED : CRAFT_CASE_FALSE_POSITIVE,
                                                    NULL, "test", NULL, &err), CRAFT_OK);
        if (i % 4 == 1)
            CU_ASSERT_EQUAL(craft_store_case_assign(s, c, i % 8 == 1 ? "ana" : "bo", "test", &err), CRAFT_OK);
        if (i % 5 == 2)
            CU_ASSERT_EQUAL(craft_store_case_set_priority(s, c, i % 10 == 2 ? 2 : -1, "test", &err), CRAFT_OK);
    }
    craft_queue_page_free(&pg);
    craft_store_close(s);
}

static int64_t ref_ids[MAX_ROWS];
static int n_ref;

static void read_all(craft_store *s, const craft_queue_query *base, int64_t *ids, int *n)
{
    craft_queue_query q = *base;
    q.limit = 10000;
    q.offset = 0;
    q.seek = NULL;
    craft_queue_page pg = {0};
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    CU_ASSERT_FATAL(pg.n <= MAX_ROWS);
    for (int i = 0; i < pg.n; i++)
        ids[i] = pg.rows[i].order;
    *n = pg.n;
    craft_queue_page_free(&pg);
}

/* The plain read is in the documented order (checked on the row fields for the
 * sorts whose keys the rows carry). */
static void check_sorted(craft_store *s, const craft_queue_query *base)
{
    craft_queue_query q = *base;
    q.limit = 10000;
    craft_queue_page pg = {0};
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    int dir1 = q.ascending ? 1 : -1;
    for (int i = 1; i < pg.n; i++) {
        const craft_queue_row *a = &pg.rows[i - 1], *b = &pg.rows[i];
        int c = 0;
        if (q.sort == CRAFT_SORT_TOP_SCORE)
            c = dir1 * ((a->top_score > b->top_score) - (a->top_score < b->top_score));
        else if (q.sort == CRAFT_SORT_CLASS_SCORE)
            c = dir1 * ((a->scores[q.sort_class] > b->scores[q.sort_class]) -
                        (a->scores[q.sort_class] < b->scores[q.sort_class]));
        else if (q.sort == CRAFT_SORT_TIME) /* NULL first ascending */
            c = dir1 * (!a->ts || !b->ts ? (a->ts != NULL) - (b->ts != NULL) : strcmp(a->ts, b->ts));
        else if (q.sort == CRAFT_SORT_ORDER_ID)
            c = -dir1 * strcmp(a->order_id, b->order_id);
        else
            continue;
        c = c > 0 ? 1 : c < 0 ? -1 : 0;
        CU_ASSERT(c < 0 || (c == 0 && (q.sort == CRAFT_SORT_ORDER_ID || a->order < b->order)));
    }
    craft_queue_page_free(&pg);
}

static int failures_seen;

static void expect_same(const int64_t *got, int n, const int64_t *want, int m, const char *what,
                        const craft_queue_query *q)
{
    int same = n == m;
    for (int i = 0; same && i < n; i++)
        same = got[i] == want[i];
    CU_ASSERT(same);
    if (!same && failures_seen++ < 5)
        fprintf(stderr, "\n%s differs: sort %d asc %d cases_only %d status %u cls %d min %.2f thresholds %d assignee %s"
                        " search %s: %d rows, want %d\n", what, q->sort, q->ascending, q->cases_only, q->status_mask,
                q->cls, q->min_score, q->class_min != NULL, q->assignee ? q->assignee : "(any)",
                q->search ? q->search : "(none)", n, m);
}

/* Reads the whole queue by keys, forward and backward, page size `limit`, and an
 * offset after a key; each must equal the plain read. */
static void check_keyset(craft_store *s, const craft_queue_query *base, int limit)
{
    craft_error err = {0};
    static int64_t got[MAX_ROWS];
    int n = 0;
    craft_queue_query q = *base;
    q.limit = limit;
    craft_queue_key key = {0};
    int have_key = 0;
    for (;;) {
        craft_queue_page pg = {0};
        q.seek = have_key ? &key : NULL;
        q.seek_back = 0;
        if (craft_store_queue(s, &q, &pg, &err) != CRAFT_OK)
            fprintf(stderr, "\nreading a page by key: %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(err.code, CRAFT_OK);
        for (int i = 0; i < pg.n && n < MAX_ROWS; i++)
            got[n++] = pg.rows[i].order;
        if (pg.n) {
            craft_queue_key_clear(&key);
            CU_ASSERT_EQUAL_FATAL(craft_queue_key_copy(&key, &pg.rows[pg.n - 1].key), CRAFT_OK);
            have_key = 1;
        }
        int done = pg.n < limit || n >= MAX_ROWS;
        craft_queue_page_free(&pg);
        if (done)
            break;
    }
    expect_same(got, n, ref_ids, n_ref, "forward", base);
    /* backward from the last row: every page is the `limit` rows before the key */
    if (n_ref > 0) {
        craft_queue_query ql = *base;
        ql.limit = 1;
        ql.offset = n_ref - 1;
        craft_queue_page last = {0};
        CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &ql, &last, &err), CRAFT_OK);
        CU_ASSERT_EQUAL_FATAL(last.n, 1);
        craft_queue_key_clear(&key);
        craft_queue_key_copy(&key, &last.rows[0].key);
        int at = n_ref - 1;
        got[at] = last.rows[0].order;
        craft_queue_page_free(&last);
        while (at > 0) {
            craft_queue_page pg = {0};
            q.seek = &key;
            q.seek_back = 1;
            CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
            if (pg.n == 0 || pg.n > at)
                break;
            for (int i = 0; i < pg.n; i++)
                got[at - pg.n + i] = pg.rows[i].order;
            at -= pg.n;
            craft_queue_key_clear(&key);
            craft_queue_key_copy(&key, &pg.rows[0].key);
            craft_queue_page_free(&pg);
        }
        CU_ASSERT_EQUAL(at, 0);
        expect_same(got, n_ref, ref_ids, n_ref, "backward", base);
    }
    /* from keys all along the queue, with offsets (into the NULL times too), both ways */
    for (int from = 0; from < n_ref; from += 9) {
        craft_queue_query qk = *base;
        qk.limit = 1;
        qk.offset = from;
        craft_queue_page one = {0};
        CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &qk, &one, &err), CRAFT_OK);
        CU_ASSERT_EQUAL_FATAL(one.n, 1);
        static const int offsets[] = {0, 5, 13};
        for (int oi = 0; oi < 3; oi++)
            for (int b = 0; b < 2; b++) {
                craft_queue_query qs = *base;
                qs.seek = &one.rows[0].key;
                qs.seek_back = b;
                qs.offset = offsets[oi];
                qs.limit = 4;
                craft_queue_page pg = {0};
                CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &qs, &pg, &err), CRAFT_OK);
                /* forward: rows from + 1 + offset ...; backward: the 4 rows ending at from - 1 - offset */
                int hi = b ? from - offsets[oi] : n_ref, lo = b ? 0 : from + 1 + offsets[oi];
                int first = b ? MAX(lo, hi - 4) : lo, m = b ? hi - first : MIN(4, n_ref - lo);
                if (m < 0)
                    m = 0;
                int64_t ids[4];
                for (int i = 0; i < pg.n && i < 4; i++)
                    ids[i] = pg.rows[i].order;
                expect_same(ids, pg.n, ref_ids + (m ? first : 0), m, b ? "offset before a key" : "offset after a key",
                            base);
                craft_queue_page_free(&pg);
            }
        craft_queue_page_free(&one);
    }
    /* the end of the queue, read backwards without a key */
    if (n_ref > 0) {
        craft_queue_query qe = *base;
        qe.seek = NULL;
        qe.seek_back = 1;
        qe.offset = n_ref > 4 ? 2 : 0;
        qe.limit = 5;
        craft_queue_page pg = {0};
        CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &qe, &pg, &err), CRAFT_OK);
        int m = MIN(5, n_ref - (int)qe.offset);
        int64_t ids[5];
        for (int i = 0; i < pg.n && i < 5; i++)
            ids[i] = pg.rows[i].order;
        expect_same(ids, pg.n, ref_ids + n_ref - qe.offset - m, m, "the end, backwards", base);
        craft_queue_page_free(&pg);
    }
    /* an offset counted from a key, both ways */
    if (n_ref >= 18) {
        int from = n_ref / 3; /* >= 6: three rows before from - 2 */
        craft_queue_query qk = *base;
        qk.limit = 1;
        qk.offset = from;
        craft_queue_page one = {0}, pg = {0};
        CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &qk, &one, &err), CRAFT_OK);
        q.seek = &one.rows[0].key;
        q.seek_back = 0;
        q.offset = 2;
        q.limit = 3;
        CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
        int m = MIN(3, n_ref - from - 3);
        int64_t ids[3];
        for (int i = 0; i < pg.n && i < 3; i++)
            ids[i] = pg.rows[i].order;
        expect_same(ids, pg.n, ref_ids + from + 3, m, "offset after a key", base);
        craft_queue_page_free(&pg);
        q.seek_back = 1;
        CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
        for (int i = 0; i < pg.n && i < 3; i++)
            ids[i] = pg.rows[i].order;
        expect_same(ids, pg.n, ref_ids + from - 5, 3, "offset before a key", base);
        craft_queue_page_free(&pg);
        craft_queue_page_free(&one);
    }
    craft_queue_key_clear(&key);
}

typedef struct { int64_t ids[MAX_ROWS]; int n, pages; } Collected;

static int collect_page(void *u, const craft_queue_page *p)
{
    Collected *c = u;
    for (int i = 0; i < p->n && c->n < MAX_ROWS; i++)
        c->ids[c->n++] = p->rows[i].order;
    c->pages++;
    return 0;
}

/* Reading the queue page after page by craft_store_queue_each (7 rows a read),
 * or its order ids all at once, gives the plain read's rows. */
static void check_each(craft_store *s, const craft_queue_query *base)
{
    static Collected c;
    c.n = c.pages = 0;
    craft_queue_query q = *base;
    q.limit = 7;
    q.offset = 3; /* ignored: from the start */
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_queue_each(s, &q, collect_page, &c, NULL, &err), CRAFT_OK);
    expect_same(c.ids, c.n, ref_ids, n_ref, "page after page", base);
    CU_ASSERT_EQUAL(c.pages, n_ref / 7 + 1);
    volatile int cancel = 1;
    CU_ASSERT_EQUAL(craft_store_queue_each(s, &q, collect_page, &c, &cancel, &err), CRAFT_ECANCELLED);
    /* every order id at once, in the queue's order */
    int64_t *ids = NULL, n = 0;
    CU_ASSERT_EQUAL_FATAL(craft_store_queue_order_ids(s, &q, &ids, &n, &err), CRAFT_OK);
    expect_same(ids, (int)n, ref_ids, n_ref, "every order id", base);
    free(ids);
}

/* The keys-only read gives the keys of the plain read's rows: every row's, every
 * third row's, from a key and after an offset. */
static void check_keys(craft_store *s, const craft_queue_query *base)
{
    craft_error err = {0};
    static craft_queue_key keys[MAX_ROWS];
    craft_queue_key last = {0};
    int n_keys = 0;
    int64_t n_read = 0;
    craft_queue_query q = *base;
    q.limit = 10000;
    q.offset = 0;
    q.seek = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_store_queue_keys(s, &q, 1, keys, MAX_ROWS, &n_keys, &last, &n_read, &err), CRAFT_OK);
    static int64_t got[MAX_ROWS];
    for (int i = 0; i < n_keys; i++)
        got[i] = keys[i].order;
    expect_same(got, n_keys, ref_ids, n_ref, "keys", base);
    CU_ASSERT_EQUAL(n_read, n_ref);
    CU_ASSERT(n_ref == 0 || last.order == ref_ids[n_ref - 1]);
    if (n_ref > 10) { /* every third row's key, from the key of row 4 on, 2 rows skipped after it */
        q.seek = &keys[4];
        q.offset = base->sort == CRAFT_SORT_TIME && !base->ascending ? 0 : 2;
        q.limit = 10000;
        static craft_queue_key some[MAX_ROWS];
        int n_some = 0;
        CU_ASSERT_EQUAL_FATAL(craft_store_queue_keys(s, &q, 3, some, MAX_ROWS, &n_some, &last, &n_read, &err), CRAFT_OK);
        int first = 5 + (int)q.offset;
        CU_ASSERT_EQUAL(n_read, n_ref - first);
        int m = (n_ref - first) / 3;
        int64_t want[MAX_ROWS];
        for (int i = 0; i < m; i++)
            want[i] = ref_ids[first + 3 * i + 2];
        for (int i = 0; i < n_some; i++)
            got[i] = some[i].order;
        expect_same(got, n_some, want, m, "every third key", base);
        for (int i = 0; i < n_some; i++)
            craft_queue_key_clear(&some[i]);
    }
    for (int i = 0; i < n_keys; i++)
        craft_queue_key_clear(&keys[i]);
    craft_queue_key_clear(&last);
}

static void test_keyset_equals_order_by(void)
{
    make_store();
    /* the store has what the test is about: tied scores, tied and missing times, unscored orders */
    CU_ASSERT(sql_int(db, "SELECT count(*) - count(DISTINCT top_score) FROM predictions WHERE off = 0") >= 100);
    CU_ASSERT(sql_int(db, "SELECT count(*) FROM orders WHERE ts IS NULL") >= COPIES * 4);
    CU_ASSERT(sql_int(db, "SELECT count(*) - count(DISTINCT ts) FROM orders WHERE ts IS NOT NULL") >= 100);
    CU_ASSERT(sql_int(db, "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM predictions p"
                        " WHERE p.order_id = o.id)") == 24);
    int64_t cases = sql_int(db, "SELECT count(*) FROM cases");
    CU_ASSERT(cases > 30 && cases < 24 * COPIES);
    craft_store *s = NULL;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_READONLY, &err), CRAFT_OK);
    static const float thr[5] = {0.6f, NAN, 0.45f, NAN, NAN};
    typedef struct {
        int cases_only;
        uint32_t status_mask;
        int cls;
        float min_score;
        int thresholds;
        const char *assignee, *search;
    } filter;
    const filter filters[] = {
        {0, 0, -1, 0, 0, NULL, NULL},
        {1, 0, -1, 0, 0, NULL, NULL},
        {1, (1u << CRAFT_CASE_NEW) | (1u << CRAFT_CASE_CONFIRMED), -1, 0, 0, NULL, NULL},
        {0, 1u << CRAFT_CASE_FALSE_POSITIVE, -1, 0, 0, NULL, NULL},
        {0, 0, 1, 0.3f, 0, NULL, NULL},
        {1, 0, 2, 0.4f, 0, NULL, NULL},
        {0, 0, -1, 0.45f, 0, NULL, NULL},
        {0, 0, -1, 0, 1, NULL, NULL},
        {1, 0, -1, 0, 1, "", NULL},
        {0, 0, -1, 0, 0, "ana", NULL},
        {0, 0, -1, 0, 0, "bo", NULL},
        {0, 0, -1, 0, 0, NULL, "-1"},
        {1, 1u << CRAFT_CASE_NEW, 0, 0.2f, 1, "", "K-"},
    };
    int combos = 0, rows = 0;
    for (size_t f = 0; f < sizeof filters / sizeof *filters; f++)
        for (int sort = CRAFT_SORT_TOP_SCORE; sort <= CRAFT_SORT_UPDATED; sort++)
            for (int asc = 0; asc < 2; asc++)
                for (int sc = 0; sc < (sort == CRAFT_SORT_CLASS_SCORE ? 2 : 1); sc++) {
                    craft_queue_query q;
                    craft_queue_query_init(&q);
                    q.cases_only = filters[f].cases_only;
                    q.status_mask = filters[f].status_mask;
                    q.cls = filters[f].cls;
                    q.min_score = filters[f].min_score;
                    q.class_min = filters[f].thresholds ? thr : NULL;
                    q.n_class_min = filters[f].thresholds ? 5 : 0;
                    q.assignee = filters[f].assignee;
                    q.search = filters[f].search;
                    q.sort = sort;
                    q.sort_class = sc ? 3 : (q.cls >= 0 ? q.cls : 0);
                    q.ascending = asc;
                    read_all(s, &q, ref_ids, &n_ref);
                    check_sorted(s, &q);
                    check_keyset(s, &q, 7);
                    if (f == 0 || f == 1)
                        check_keyset(s, &q, 1);
                    check_keys(s, &q);
                    check_each(s, &q);
                    /* every skip by keys only, then the page from the key found */
                    int64_t skip_rows = s->key_skip_rows;
                    s->key_skip_rows = 1;
                    check_keyset(s, &q, 7);
                    s->key_skip_rows = skip_rows;
                    combos++;
                    rows += n_ref;
                }
    printf("\n  %d queries, %d rows in all\n", combos, rows);
    CU_ASSERT(rows > 10000);
    /* a key of another sort is refused */
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.limit = 1;
    craft_queue_page pg = {0}, pg2 = {0};
    CU_ASSERT_EQUAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(pg.n, 1);
    q.sort = CRAFT_SORT_TIME;
    q.seek = &pg.rows[0].key;
    CU_ASSERT_EQUAL(craft_store_queue(s, &q, &pg2, &err), CRAFT_EINPUT);
    craft_queue_page_free(&pg);
    craft_queue_page_free(&pg2);
    craft_store_close(s);
}

int main(void)
{
    if (!getenv("CRAFT_FIXTURES")) {
        fprintf(stderr, "CRAFT_FIXTURES is not set\n");
        return 77;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/craft-keyset-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(db, sizeof db, "%s/keyset.db", dir);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("queue keyset", NULL, NULL);
    if (!s || !CU_add_test(s, "keyset paging equals the plain ORDER BY", test_keyset_equals_order_by)) {
        CU_cleanup_registry();
        return 1;
    }
    return run_suites_then_remove(dir);
}
