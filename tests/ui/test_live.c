/* test_live.c: the toggles' live path against the store. A store is scored with
 * every subset; then for orders across its time line, craft_store_order_batch +
 * craft_order_rescore must reproduce the stored full-model and subset scores
 * (the graph encoder replayed over the earlier orders, the text encoder, the
 * tabular features by name). The score space's bulk query must agree with the
 * stored predictions too. Runs on the fixture model and on generated orders with a
 * model of the sample's config (built-in txt and graph encoders). */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "order_rescore.h"
#include "scoring.h"
#include "store.h"
#include "synth.h"


/* Every order of the store (case or not), oldest first: the order the graph input
 * sees them in. */
static void read_by_time(craft_store *s, craft_queue_page *page)
{
    craft_error err = {0};
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.cases_only = 0;
    q.sort = CRAFT_SORT_TIME;
    q.ascending = 1;
    q.limit = 10000;
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, page, &err), CRAFT_OK);
}
static const char *fixtures;
static char tmpdir[] = "/tmp/craft-live-XXXXXX";

static craft_store *make_store(const char *name, const char *orders, const craft_model *m, const char *model_path)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.craftdb", tmpdir, name);
    craft_store *s = NULL;
    craft_error err = {0};
    const char *paths[] = {orders};
    craft_import_options io = {0};
    craft_store_score_options so = {.explain = 0, .subsets = 1, .flag_threshold = 0.3f, .batch = 16, .threads = 1};
    if (craft_store_open(&s, path, CRAFT_STORE_CREATE, &err) || craft_store_import(s, paths, 1, &io, NULL, &err) ||
        craft_store_score(s, m, model_path, &so, NULL, &err)) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        if (s)
            craft_store_close(s);
        return NULL;
    }
    return s;
}

/* Every k-th order: live scores equal to the stored ones for every subset. */
static void check_live(craft_store *s, const craft_model *m, int every, double *worst_out, int *checked_out)
{
    craft_error err = {0};
    craft_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, m, 1, 1, &err), CRAFT_OK);
    craft_order_batch ob;
    CU_ASSERT_EQUAL_FATAL(craft_order_batch_init(&ob, &m->cfg, 1, 1, &err), CRAFT_OK);
    craft_queue_page page = {0};
    read_by_time(s, &page);
    CU_ASSERT_FATAL(page.n > 0);
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < page.n; i += every) {
        const char *oid = page.rows[i].order_id;
        craft_order_detail d = {0};
        CU_ASSERT_EQUAL_FATAL(craft_store_order_get(s, oid, 0, &d, &err), CRAFT_OK);
        CU_ASSERT_EQUAL_FATAL(craft_store_order_batch(s, &m->cfg, oid, &ob, &err), CRAFT_OK);
        CU_ASSERT_EQUAL(ob.in.n, 1);
        for (int p = 0; p < d.n_predictions; p++) {
            craft_rescore r;
            CU_ASSERT_EQUAL_FATAL(craft_order_rescore(e, m, &ob.in, 0, d.predictions[p].off, &r, &err), CRAFT_OK);
            CU_ASSERT_EQUAL(r.available, d.predictions[0].used);
            for (int k = 0; k < d.n_classes; k++) {
                double a = fabs(r.full[k] - d.predictions[0].scores[k]);
                double b = fabs(r.subset[k] - d.predictions[p].scores[k]);
                worst = fmax(worst, fmax(a, b));
            }
        }
        checked++;
        craft_order_detail_free(&d);
    }
    craft_queue_page_free(&page);
    CU_ASSERT(worst < 1e-5);
    /* an unknown order is an error naming it, and leaves the batch empty */
    CU_ASSERT_EQUAL(craft_store_order_batch(s, &m->cfg, "no-such-order", &ob, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no-such-order"));
    CU_ASSERT_EQUAL(ob.in.n, 0);
    craft_order_batch_free(&ob);
    craft_engine_free(e);
    *worst_out = worst;
    *checked_out = checked;
}

/* The graph input two ways: from the counts the order needs (the default) and by
 * replaying every earlier order (CRAFT_GRAPH_REPLAY); equal for every k-th order,
 * after some decisions have overridden imported labels. Prints the time of each. */
static void compare_graph_paths(craft_store *s, const craft_model *m, int every);

static void check_graph_paths(craft_store *s, const craft_model *m, int every)
{
    int graph = craft_config_find_modality(&m->cfg, "graph");
    if (graph < 0)
        return;
    craft_error err = {0};
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.cases_only = 1;
    q.limit = 10000;
    craft_queue_page page = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &page, &err), CRAFT_OK);
    int decided = 0;
    for (int i = 0; i < page.n && decided < 6; i += 3, decided++)
        CU_ASSERT_EQUAL(craft_store_case_decide(s, page.rows[i].case_id, decided % 2 ? CRAFT_CASE_CONFIRMED
                                                                                     : CRAFT_CASE_FALSE_POSITIVE,
                                                NULL, "test", NULL, &err), CRAFT_OK);
    craft_queue_page_free(&page);
    CU_ASSERT(decided > 0);
    compare_graph_paths(s, m, every);
}

static void compare_graph_paths(craft_store *s, const craft_model *m, int every)
{
    int graph = craft_config_find_modality(&m->cfg, "graph");
    craft_error err = {0};
    craft_queue_page page = {0};
    read_by_time(s, &page);
    craft_order_batch a, b;
    CU_ASSERT_EQUAL_FATAL(craft_order_batch_init(&a, &m->cfg, 1, 1, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_order_batch_init(&b, &m->cfg, 1, 1, &err), CRAFT_OK);
    size_t width = (size_t)m->cfg.modalities[graph].tokens * m->cfg.modalities[graph].dim;
    int compared = 0, with_graph = 0, differ = 0;
    double fast = 0, replay = 0;
    for (int i = 0; i < page.n; i += every) {
        const char *oid = page.rows[i].order_id;
        double t0 = craft_now();
        CU_ASSERT_EQUAL_FATAL(craft_store_order_batch(s, &m->cfg, oid, &a, &err), CRAFT_OK);
        double t1 = craft_now();
        setenv("CRAFT_GRAPH_REPLAY", "1", 1);
        CU_ASSERT_EQUAL_FATAL(craft_store_order_batch(s, &m->cfg, oid, &b, &err), CRAFT_OK);
        unsetenv("CRAFT_GRAPH_REPLAY");
        replay += craft_now() - t1;
        fast += t1 - t0;
        CU_ASSERT_EQUAL(a.in.ntok[graph][0], b.in.ntok[graph][0]);
        with_graph += a.in.ntok[graph][0] > 0;
        differ += memcmp(a.in.emb[graph], b.in.emb[graph], sizeof(float) * width) != 0;
        compared++;
    }
    CU_ASSERT(with_graph > 0);
    CU_ASSERT_EQUAL(differ, 0);
    printf("  graph input of %d orders (%d with entities): from counts %.2f ms each, replayed %.2f ms each, %d differ\n",
           compared, with_graph, 1000 * fast / compared, 1000 * replay / compared, differ);
    craft_order_batch_free(&a);
    craft_order_batch_free(&b);
    craft_queue_page_free(&page);
}

/* The order view's entity history counts only the orders before the order shown:
 * for every k-th order and each of its entities, orders, labelled and positive
 * counts per class equal a count over the other orders at earlier times (so the
 * order's own label never enters its entity's defect rate). */
static void check_entity_history(craft_store *s, int every)
{
    craft_error err = {0};
    craft_queue_page page = {0};
    read_by_time(s, &page);
    craft_order_detail *d = calloc((size_t)page.n, sizeof *d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (int i = 0; i < page.n; i++)
        CU_ASSERT_EQUAL_FATAL(craft_store_order_get(s, page.rows[i].order_id, 0, &d[i], &err), CRAFT_OK);
    int checked = 0, fewer = 0;
    for (int i = 0; i < page.n; i += every) {
        for (int e = 0; e < d[i].entities.n; e++) {
            const char *type = d[i].entities.keys[e], *id = d[i].entities.values[e];
            craft_entity_history h = {0}, all = {0};
            CU_ASSERT_EQUAL_FATAL(craft_store_entity_history_before(s, type, id, d[i].order_id, 5, &h, &err), CRAFT_OK);
            CU_ASSERT_EQUAL_FATAL(craft_store_entity_history(s, type, id, 5, &all, &err), CRAFT_OK);
            int64_t n = 0;
            for (int j = 0; j < page.n; j++) {
                if (j == i || !d[j].ts || !d[i].ts || strcmp(d[j].ts, d[i].ts) >= 0)
                    continue;
                const char *v = craft_kv_get(&d[j].entities, type);
                if (!v || strcmp(v, id))
                    continue;
                n++;
            }
            CU_ASSERT_EQUAL(h.n_orders, n);
            CU_ASSERT(all.n_orders >= h.n_orders + 1); /* the order itself is in the entity's full history */
            fewer += all.n_orders > h.n_orders;
            for (int k = 0; k < h.n_classes; k++) {
                int64_t lab = 0, pos = 0;
                for (int j = 0; j < page.n; j++) {
                    if (j == i || strcmp(d[j].ts, d[i].ts) >= 0)
                        continue;
                    const char *v = craft_kv_get(&d[j].entities, type), *l = craft_kv_get(&d[j].labels, h.classes[k]);
                    if (!v || strcmp(v, id) || !l)
                        continue;
                    lab++;
                    pos += atoi(l) == 1;
                }
                CU_ASSERT_EQUAL(h.n_labelled[k], lab);
                CU_ASSERT_EQUAL(h.n_positive[k], pos);
            }
            /* the latest earlier orders never name the order itself */
            for (int r = 0; r < h.n_recent; r++)
                CU_ASSERT(strcmp(h.recent_orders[r], d[i].order_id) != 0);
            craft_entity_history_free(&h);
            craft_entity_history_free(&all);
            checked++;
        }
    }
    CU_ASSERT(checked > 0);
    CU_ASSERT_EQUAL(fewer, checked);
    printf("  entity history of %d (order, entity) pairs: only earlier orders counted\n", checked);
    CU_ASSERT_EQUAL(craft_store_entity_history_before(s, "customer", "x", "no-such-order", 5, &(craft_entity_history){0}, &err),
                    CRAFT_EINPUT);
    for (int i = 0; i < page.n; i++)
        craft_order_detail_free(&d[i]);
    free(d);
    craft_queue_page_free(&page);
}

/* The bulk query: one point per scored order, equal to the stored predictions. */
static void check_space(craft_store *s, const craft_model *m)
{
    craft_error err = {0};
    int cls = m->cfg.n_classes - 1;
    craft_space_point *pts = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(craft_store_score_space(s, 0, cls, &pts, &n, &err), CRAFT_OK);
    craft_queue_counts c = {0};
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.cases_only = 0;
    CU_ASSERT_EQUAL(craft_store_queue_counts(s, &q, &c, &err), CRAFT_OK);
    CU_ASSERT_EQUAL((int64_t)n, c.total);
    uint32_t all_aux = 0;
    for (int mm = 0; mm < m->cfg.n_modalities; mm++)
        if (mm != m->cfg.backbone)
            all_aux |= 1u << mm;
    int with_case = 0;
    for (size_t i = 0; i < n; i += 7) {
        /* find the order's external id through the queue's search */
        craft_queue_query one;
        craft_queue_query_init(&one);
        one.cases_only = 0;
        one.limit = 10000;
        craft_queue_page page = {0};
        CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &one, &page, &err), CRAFT_OK);
        for (int r = 0; r < page.n; r++) {
            if (page.rows[r].order != pts[i].order)
                continue;
            craft_order_detail d = {0};
            CU_ASSERT_EQUAL_FATAL(craft_store_order_get(s, page.rows[r].order_id, 0, &d, &err), CRAFT_OK);
            CU_ASSERT_EQUAL(pts[i].full, d.predictions[0].scores[cls]);
            for (int p = 0; p < d.n_predictions; p++)
                if (d.predictions[p].off == all_aux)
                    CU_ASSERT_EQUAL(pts[i].backbone, d.predictions[p].scores[cls]);
            CU_ASSERT_EQUAL(pts[i].status, d.has_case ? d.kase.status : -1);
            with_case += d.has_case;
            const char *label = craft_kv_get(&d.labels, m->cfg.classes[cls]);
            CU_ASSERT_EQUAL(pts[i].label, label ? atoi(label) : -1);
            craft_order_detail_free(&d);
        }
        craft_queue_page_free(&page);
    }
    free(pts);
    CU_ASSERT_EQUAL(craft_store_score_space(s, 0, m->cfg.n_classes, &pts, &n, &err), CRAFT_EINPUT);
}

static void test_fixture(void)
{
    char orders[1024], model[1024];
    snprintf(orders, sizeof orders, "%s/tiny-multilabel.orders.jsonl", fixtures);
    snprintf(model, sizeof model, "%s/tiny-multilabel.safetensors", fixtures);
    craft_error err = {0};
    craft_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, model, &err), CRAFT_OK);
    craft_store *s = make_store("fixture", orders, m, model);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    double worst;
    int checked;
    check_live(s, m, 1, &worst, &checked);
    printf("\n  fixture: %d orders, every subset, worst |live - stored| %.2g\n", checked, worst);
    check_space(s, m);
    craft_store_close(s);
    craft_model_free(m);
}

/* Generated orders (text, entities, time stamps, labels) and a model of the
 * generator's config with random weights: the encoders fill txt and graph. */
static void test_generated(void)
{
    char orders[1200], model[1200];
    snprintf(orders, sizeof orders, "%s/gen.jsonl", tmpdir);
    snprintf(model, sizeof model, "%s/gen.safetensors", tmpdir);
    craft_error err = {0};
    FILE *f = fopen(orders, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    craft_synth_options so = {.orders = 400, .seed = 7, .features = 40, .with_labels = 1};
    CU_ASSERT_EQUAL_FATAL(craft_synth_write(&so, f, NULL, NULL, NULL, &err), CRAFT_OK);
    fclose(f);
    char *json = craft_synth_model_config(40);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    craft_config cfg = {0};
    CU_ASSERT_EQUAL_FATAL(craft_config_parse(&cfg, json, strlen(json), &err), CRAFT_OK);
    free(json);
    cfg.d_model = 32;
    cfg.layers = 1;
    craft_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_model_new(&m, &cfg, 0, 11, &err), CRAFT_OK);
    craft_config_free(&cfg);
    CU_ASSERT_EQUAL_FATAL(craft_model_save(m, model, NULL, &err), CRAFT_OK);
    CU_ASSERT(craft_config_find_modality(&m->cfg, "graph") >= 0);
    craft_store *s = make_store("generated", orders, m, model);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    double worst;
    int checked;
    check_live(s, m, 13, &worst, &checked);
    printf("  generated: %d orders across the time line, every subset, worst |live - stored| %.2g\n", checked, worst);
    check_space(s, m);
    check_graph_paths(s, m, 3);
    check_entity_history(s, 11);
    craft_store_close(s);
    craft_model_free(m);
}

/* CRAFT_LIVE_STORE: the two paths on a given scored store (e.g. the 20,000-order
 * sample), every 1000th order (nothing is written but a schema update). */
static void test_given_store(void)
{
    const char *path = getenv("CRAFT_LIVE_STORE");
    craft_store *s = NULL;
    craft_model *m = NULL;
    craft_error err = {0};
    int rc = craft_store_open(&s, path, CRAFT_STORE_READWRITE, &err); /* brings an older schema up to date */
    if (!rc)
        rc = craft_store_model_load(s, craft_store_latest_model(s), &m, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", path, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, CRAFT_OK);
    compare_graph_paths(s, m, 1000);
    craft_model_free(m);
    craft_store_close(s);
}

int main(void)
{
    fixtures = getenv("CRAFT_FIXTURES");
    if (!fixtures)
        return 77;
    if (!mkdtemp(tmpdir))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("live re-scoring from the store", NULL, NULL);
    if (!s || !CU_add_test(s, "fixture model: live equals stored", test_fixture) ||
        !CU_add_test(s, "generated orders, built-in encoders: live equals stored", test_generated) ||
        (getenv("CRAFT_LIVE_STORE") && !CU_add_test(s, "a given store: graph input from counts equals the replay",
                                                    test_given_store))) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return failures ? 1 : 0;
}
