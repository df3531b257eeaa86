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
#include "store.h"
#include "synth.h"

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
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.cases_only = 0;
    q.sort = CRAFT_SORT_TIME;
    q.ascending = 1;
    q.limit = 10000;
    craft_queue_page page = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &page, &err), CRAFT_OK);
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
    craft_store_close(s);
    craft_model_free(m);
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
        !CU_add_test(s, "generated orders, built-in encoders: live equals stored", test_generated)) {
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
