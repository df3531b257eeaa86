/* test_queue_model: the queue's lazy list model reads its pages by key. Scrolling
 * down page by page, every page after the first starts at the kept key of the page
 * before it; a jump to the last page reads it backwards from the end; scrolling up
 * from there reads each page by the key of the page after it; a jump into the
 * middle skips rows from the nearest kept key; after the anchor pass, a jump to any
 * page is read by key. Every row shown equals the row at the same position of the
 * plain query. A refresh after a decision keeps the items of unchanged rows. Needs
 * no display (GIO only). */
#include <cjson/cJSON.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craft-queue-item.h"
#include "craft-queue-model.h"
#include "store.h"
#include "../store/store_fill.h"
#include "../store/store_test_util.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

#define COPIES 50

static gboolean make_store(const char *db, const char *dir)
{
    const char *fx = g_getenv("CRAFT_FIXTURES");
    char *in = g_build_filename(fx, "tiny-multilabel.orders.jsonl", NULL);
    char *model = g_build_filename(fx, "tiny-multilabel.safetensors", NULL);
    char *orders = g_build_filename(dir, "orders.jsonl", NULL);
    gboolean ok = write_order_copies(in, orders, COPIES, "Q") == 0; /* identical orders: tied scores */
    const craft_store_score_options so = {.flag_threshold = 0.3f, .batch = 64};
    ok = ok && make_scored_store(db, orders, model, &so) == 0;
    g_unlink(orders);
    g_free(in);
    g_free(model);
    g_free(orders);
    return ok;
}

/* The order id at position i, waiting for its page to arrive from the worker. */
static char *order_at(CraftQueueModel *m, guint i)
{
    gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    for (;;) {
        CraftQueueItem *it = g_list_model_get_item(G_LIST_MODEL(m), i);
        if (!it)
            return NULL;
        if (!craft_queue_item_is_placeholder(it)) {
            char *id = g_strdup(craft_queue_item_get_order_id(it));
            g_object_unref(it);
            return id;
        }
        g_object_unref(it);
        if (g_get_monotonic_time() > end)
            return NULL;
        while (craft_queue_model_get_pages_pending(m) && g_get_monotonic_time() < end)
            g_main_context_iteration(NULL, TRUE);
    }
}

/* Every row of page p equals the plain query's rows there. */
static void check_page(CraftQueueModel *m, guint p, const craft_queue_page *ref)
{
    guint n = g_list_model_get_n_items(G_LIST_MODEL(m));
    int bad = 0;
    for (guint i = p * CRAFT_QUEUE_PAGE; i < MIN(n, (p + 1) * CRAFT_QUEUE_PAGE); i++) {
        char *id = order_at(m, i);
        bad += !id || (int)i >= ref->n || strcmp(id, ref->rows[i].order_id);
        g_free(id);
    }
    if (bad)
        fprintf(stderr, "page %u: %d rows differ\n", p, bad);
    CHECK(bad == 0);
}

/* Every items-changed the model emits: the model must already hold what it says
 * (the count, and every row of the first page), and no change may both remove rows
 * and add more than a page (a list widget then looks up every added row). */
typedef struct { guint n_before, emissions, bad_count, bad_rows, big_replace; } Changes;

static void on_items_changed(GListModel *l, guint pos, guint removed, guint added, Changes *c)
{
    guint n = g_list_model_get_n_items(l);
    c->emissions++;
    c->bad_count += n != c->n_before - removed + added;
    for (guint i = 0; i < MIN(n, (guint)CRAFT_QUEUE_PAGE); i++) {
        GObject *it = g_list_model_get_item(l, i);
        c->bad_rows += it == NULL;
        if (it)
            g_object_unref(it);
    }
    c->big_replace += removed > 0 && added > CRAFT_QUEUE_PAGE;
    c->n_before = n;
}

/* The first page's items (references held), to compare by pointer after a refresh. */
static GPtrArray *first_page(CraftQueueModel *m)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_object_unref);
    guint n = MIN(g_list_model_get_n_items(G_LIST_MODEL(m)), (guint)CRAFT_QUEUE_PAGE);
    for (guint i = 0; i < n; i++)
        g_ptr_array_add(a, g_list_model_get_item(G_LIST_MODEL(m), i));
    return a;
}

/* A refresh after a decision keeps the items of the rows that did not change (the list
 * widget keeps their row widgets): with every case shown, all but the decided row; with
 * only new cases shown, the decided row goes and the rows after it move up, still the
 * same items. Each change is told in steps the model can show. */
static void check_refresh_reuses_rows(craft_store *s)
{
    craft_error err = {0};
    craft_queue_query q;
    craft_queue_query_init(&q); /* every case, highest score first */
    CraftQueueModel *m = craft_queue_model_new();
    Changes c = {0};
    g_signal_connect(m, "items-changed", G_CALLBACK(on_items_changed), &c);
    CHECK(craft_queue_model_set_query(m, s, &q, NULL));
    guint n = g_list_model_get_n_items(G_LIST_MODEL(m));
    CHECK(n > CRAFT_QUEUE_PAGE);
    GPtrArray *before = first_page(m);
    CHECK(before->len == CRAFT_QUEUE_PAGE);
    CraftQueueItem *third = g_ptr_array_index(before, 3);
    CHECK(craft_queue_item_get_status(third) == CRAFT_CASE_NEW);
    CHECK(craft_store_case_decide(s, craft_queue_item_get_case_id(third), CRAFT_CASE_FALSE_POSITIVE, NULL, "test",
                                  NULL, &err) == CRAFT_OK);
    CHECK(craft_queue_model_set_query(m, s, &q, NULL));
    CHECK(g_list_model_get_n_items(G_LIST_MODEL(m)) == n);
    GPtrArray *after = first_page(m);
    guint same = 0;
    for (guint i = 0; i < after->len; i++)
        same += g_ptr_array_index(after, i) == g_ptr_array_index(before, i);
    CHECK(same == CRAFT_QUEUE_PAGE - 1);
    CHECK(g_ptr_array_index(after, 3) != third &&
          craft_queue_item_get_status(g_ptr_array_index(after, 3)) == CRAFT_CASE_FALSE_POSITIVE);
    /* only new cases: the decided one is not among them */
    q.status_mask = 1u << CRAFT_CASE_NEW;
    CHECK(craft_queue_model_set_query(m, s, &q, NULL));
    g_ptr_array_unref(before);
    before = first_page(m);
    CraftQueueItem *next = g_ptr_array_index(before, 5);
    CHECK(craft_store_case_decide(s, craft_queue_item_get_case_id(next), CRAFT_CASE_ESCALATED, NULL, "test", NULL,
                                  &err) == CRAFT_OK);
    CHECK(craft_queue_model_set_query(m, s, &q, NULL));
    g_ptr_array_unref(after);
    after = first_page(m);
    same = 0;
    for (guint i = 0; i < after->len; i++)
        same += g_ptr_array_index(after, i) == g_ptr_array_index(before, i < 5 ? i : i + 1 < before->len ? i + 1 : i);
    CHECK(same == CRAFT_QUEUE_PAGE - 1); /* the row that moved up into the page is new to it */
    printf("  refresh: %u of %u first-page items kept after a decision; %u changes told\n", same,
           (guint)CRAFT_QUEUE_PAGE, c.emissions);
    CHECK(c.bad_count == 0 && c.bad_rows == 0 && c.big_replace == 0);
    /* the store as it was: the other sections count on new cases */
    CHECK(craft_store_case_decide(s, craft_queue_item_get_case_id(third), CRAFT_CASE_NEW, NULL, "test", NULL, &err) ==
          CRAFT_OK);
    CHECK(craft_store_case_decide(s, craft_queue_item_get_case_id(next), CRAFT_CASE_NEW, NULL, "test", NULL, &err) ==
          CRAFT_OK);
    g_ptr_array_unref(before);
    g_ptr_array_unref(after);
    g_object_unref(m);
}

int main(void)
{
    if (!g_getenv("CRAFT_FIXTURES"))
        return 77;
    char *dir = g_dir_make_tmp("craft-queue-model-XXXXXX", NULL);
    char *db = g_build_filename(dir, "q.db", NULL);
    if (!make_store(db, dir))
        return 1;
    craft_store *s = NULL;
    craft_error err = {0};
    if (craft_store_open(&s, db, CRAFT_STORE_READWRITE, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    static const int sorts[] = {CRAFT_SORT_TOP_SCORE, CRAFT_SORT_CLASS_SCORE, CRAFT_SORT_TIME, CRAFT_SORT_STATUS};
    for (size_t si = 0; si < G_N_ELEMENTS(sorts); si++) {
        craft_queue_query q;
        craft_queue_query_init(&q);
        q.cases_only = 0;
        q.sort = sorts[si];
        q.sort_class = 2;
        craft_queue_query all = q;
        all.limit = 10000;
        craft_queue_page ref = {0};
        CHECK(craft_store_queue(s, &all, &ref, &err) == CRAFT_OK);
        CHECK(ref.n == 24 * COPIES);
        guint pages = (guint)(ref.n + CRAFT_QUEUE_PAGE - 1) / CRAFT_QUEUE_PAGE;
        CHECK(pages >= 4);

        /* scrolling down: every page after the first by the key of the one before */
        CraftQueueModel *m = craft_queue_model_new();
        CHECK(craft_queue_model_set_query(m, s, &q, NULL));
        CHECK(g_list_model_get_n_items(G_LIST_MODEL(m)) == (guint)ref.n);
        for (guint p = 0; p < pages; p++)
            check_page(m, p, &ref);
        /* a sort no index serves reads the query's order once and its pages by id */
        gboolean by_ids = sorts[si] == CRAFT_SORT_STATUS;
        CHECK(craft_queue_model_get_pages_by_key(m) == (by_ids ? 0 : pages - 1));
        CHECK(!craft_queue_model_is_selection(m));

        /* a jump to the end, then scrolling up */
        CHECK(craft_queue_model_set_query(m, s, &q, NULL));
        check_page(m, 0, &ref);
        check_page(m, pages - 1, &ref);
        CHECK(craft_queue_model_get_pages_by_key(m) == 0); /* read backwards from the end */
        for (guint p = pages - 1; p-- > 1;)
            check_page(m, p, &ref);
        CHECK(craft_queue_model_get_pages_by_key(m) == (by_ids ? 0 : pages - 2));

        /* a jump into the middle: from the nearest kept key (page 0's last row) */
        CHECK(craft_queue_model_set_query(m, s, &q, NULL));
        check_page(m, 0, &ref);
        check_page(m, 2, &ref);
        CHECK(craft_queue_model_get_pages_by_key(m) == (by_ids ? 0 : 1));
        check_page(m, 1, &ref); /* between two kept pages */
        CHECK(craft_queue_model_get_pages_by_key(m) == (by_ids ? 0 : 2));
        g_object_unref(m);

        /* the anchor pass: once through, a jump to any page is read by key (not for status:
         * no index serves it, so no pass) */
        m = craft_queue_model_new();
        craft_queue_model_set_anchor_min_rows(m, 0);
        CHECK(craft_queue_model_set_query(m, s, &q, NULL));
        gboolean anchored = FALSE;
        gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
        while (sorts[si] != CRAFT_SORT_STATUS && !(anchored = craft_queue_model_get_anchored(m)) &&
               g_get_monotonic_time() < end)
            if (!g_main_context_iteration(NULL, FALSE))
                g_usleep(1000);
        if (sorts[si] == CRAFT_SORT_STATUS) {
            check_page(m, 0, &ref);
            check_page(m, 2, &ref);
            CHECK(!craft_queue_model_get_anchored(m));
        } else {
            CHECK(anchored);
            check_page(m, pages - 2, &ref);
            CHECK(craft_queue_model_get_pages_by_key(m) == 1);
            check_page(m, 1, &ref);
            CHECK(craft_queue_model_get_pages_by_key(m) == 2);
        }
        g_object_unref(m);
        /* pages asked for in a burst, only the last one kept wanted: whatever was skipped,
         * every page asked for again shows the plain query's rows */
        m = craft_queue_model_new();
        craft_queue_model_set_pages_wanted(m, 1);
        CHECK(craft_queue_model_set_query(m, s, &q, NULL));
        for (guint p = 1; p < pages; p++)
            g_object_unref(g_list_model_get_item(G_LIST_MODEL(m), p * CRAFT_QUEUE_PAGE));
        end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
        while (craft_queue_model_get_pages_pending(m) && g_get_monotonic_time() < end)
            g_main_context_iteration(NULL, TRUE);
        CHECK(craft_queue_model_get_pages_pending(m) == 0);
        for (guint p = 1; p < pages; p++)
            check_page(m, p, &ref);
        g_object_unref(m);
        craft_queue_page_free(&ref);
    }
    check_refresh_reuses_rows(s);
    craft_store_close(s);
    remove_store(db);
    g_rmdir(dir);
    g_free(db);
    g_free(dir);
    printf("%s\n", failures ? "FAILED" : "queue model pages by key: ok");
    return failures ? 1 : 0;
}
