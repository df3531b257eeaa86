/* test_interaction.c: the explanation view's interaction score (app/views/interaction.c)
 * on the model contract's fixtures: the engine's perturbation in one run against the
 * definition I(j, m) = (s - s without j) - (s without m - s without j and m) from plain
 * engine runs; the batched mode (the app's worker) against the one run for several batch
 * sizes; the top features by |I|; the one number format; a stop between batches.
 * CRAFT_INTERACTION_BENCH=MODEL:ORDERS times both modes on the first order of ORDERS. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interaction.h"
#include "orders.h"
#include "scoring.h"

static const char *fixtures;

static int load(const char *model, const char *orders, craft_model **m, craft_order_batch *ob, int cap)
{
    craft_error err = {0};
    craft_reader *r = NULL;
    if (craft_model_load(m, model, &err) || craft_order_batch_init(ob, &(*m)->cfg, cap, 0, &err) ||
        craft_reader_open(&r, orders, CRAFT_FORMAT_AUTO, &(*m)->cfg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    int eof = 0;
    int rc = craft_reader_next(r, ob, &eof, &err);
    craft_reader_close(r);
    return rc;
}

/* s_k of order `index` with feature j missing (j < 0: none) and off_mask off. */
static float score_of(craft_engine *e, const craft_model *m, const craft_batch *b, int index, int j, uint32_t off, int k)
{
    craft_batch one;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_interaction_copy_order(&one, &m->cfg, b, index, &err), CRAFT_OK);
    if (j >= 0) one.tab[j] = NAN;
    craft_request req = {off, 0, 0, 0};
    craft_result res;
    CU_ASSERT_EQUAL_FATAL(craft_result_init(&res, &m->cfg, 1, &req, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_engine_run(e, &one, &req, 1, &res, &err), CRAFT_OK);
    float s = res.scores[k];
    craft_result_free(&res);
    craft_batch_free(&one);
    return s;
}

static int stop_after_first(void *user, int done, int total)
{
    int *calls = user;
    (*calls)++;
    return 1;
}

static void check_fixture(const char *name)
{
    char model[1024], orders[1024];
    snprintf(model, sizeof model, "%s/%s.safetensors", fixtures, name);
    snprintf(orders, sizeof orders, "%s/%s.orders.jsonl", fixtures, name);
    craft_model *m = NULL;
    craft_order_batch ob;
    CU_ASSERT_EQUAL_FATAL(load(model, orders, &m, &ob, 64), CRAFT_OK);
    const craft_config *cfg = &m->cfg;
    craft_engine *e1 = NULL, *e8 = NULL;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e1, m, 1, 1, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e8, m, 8, 1, &err), CRAFT_OK);
    double worst_def = 0, worst_chunk = 0;
    int definition_checked = 0, unused_seen = 0;
    for (int i = 0; i < ob.in.n; i++) {
        craft_interaction x, y;
        CU_ASSERT_EQUAL_FATAL(craft_order_interaction(e1, m, &ob.in, i, NULL, &x, &err), CRAFT_OK);
        CU_ASSERT_EQUAL(x.F, cfg->modalities[cfg->tabular].n_features);
        CU_ASSERT_EQUAL(x.n_aux, cfg->n_modalities - 1);
        /* the definition, from plain runs, on the first orders (every feature, class, auxiliary) */
        if (i < 3) {
            for (int a = 0; a < x.n_aux; a++) {
                const int mm = x.aux[a];
                if (!x.aux_used[a]) continue;
                for (int k = 0; k < x.K; k++)
                    for (int j = 0; j < x.F; j++) {
                        double want = (score_of(e1, m, &ob.in, i, -1, 0, k) - score_of(e1, m, &ob.in, i, j, 0, k)) -
                                      (score_of(e1, m, &ob.in, i, -1, 1u << mm, k) -
                                       score_of(e1, m, &ob.in, i, j, 1u << mm, k));
                        double d = fabs(craft_interaction_value(&x, a, k, j) - want);
                        worst_def = fmax(worst_def, d);
                        CU_ASSERT(d < 1e-5);
                        definition_checked++;
                    }
            }
        }
        /* batched (the app's worker) equals the one run, whatever the batch */
        for (int chunk = 1; chunk <= 8; chunk += 3) {
            craft_interaction_options o = {chunk, NULL, NULL};
            CU_ASSERT_EQUAL_FATAL(craft_order_interaction(e8, m, &ob.in, i, &o, &y, &err), CRAFT_OK);
            CU_ASSERT_EQUAL(y.used, x.used);
            for (int a = 0; a < x.n_aux; a++) {
                CU_ASSERT_EQUAL(y.aux_used[a], x.aux_used[a]);
                for (int k = 0; k < x.K; k++)
                    for (int j = 0; j < x.F; j++) {
                        float vx = craft_interaction_value(&x, a, k, j), vy = craft_interaction_value(&y, a, k, j);
                        CU_ASSERT(isnan(vx) == isnan(vy));
                        if (!isnan(vx)) {
                            worst_chunk = fmax(worst_chunk, fabs(vx - vy));
                            CU_ASSERT(fabs(vx - vy) < 1e-5);
                        }
                        /* a feature the order lacks: exactly nothing to change */
                        if (isnan(ob.in.tab[(size_t)i * ob.in.F + j]) && !isnan(vy)) CU_ASSERT(vy == 0);
                    }
            }
            craft_interaction_free(&y);
        }
        /* top features: |I| descending, none larger left out, no NaN or zero */
        for (int a = 0; a < x.n_aux; a++) {
            int top[5];
            int n = craft_interaction_top(&x, a, 0, top, 5);
            if (!x.aux_used[a]) {
                CU_ASSERT_EQUAL(n, 0);
                unused_seen++;
                continue;
            }
            for (int t = 0; t < n; t++) {
                float v = craft_interaction_value(&x, a, 0, top[t]);
                CU_ASSERT(!isnan(v) && v != 0);
                if (t) CU_ASSERT(fabsf(v) <= fabsf(craft_interaction_value(&x, a, 0, top[t - 1])));
            }
            for (int j = 0; n == 5 && j < x.F; j++) {
                int in = 0;
                for (int t = 0; t < n; t++) in |= top[t] == j;
                if (!in) CU_ASSERT(fabsf(craft_interaction_value(&x, a, 0, j)) <= fabsf(craft_interaction_value(&x, a, 0, top[4])));
            }
        }
        craft_interaction_free(&x);
    }
    CU_ASSERT(definition_checked > 0);
    CU_ASSERT(unused_seen > 0); /* the fixtures have orders without txt or graph */
    /* a stop between batches: CRAFT_ECANCELLED, nothing kept */
    int calls = 0;
    craft_interaction_options o = {2, stop_after_first, &calls};
    craft_interaction x;
    CU_ASSERT_EQUAL(craft_order_interaction(e8, m, &ob.in, 0, &o, &x, &err), CRAFT_ECANCELLED);
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_PTR_NULL(x.value);
    /* an engine made for fewer orders than the batch is refused, not overrun */
    o = (craft_interaction_options){4, NULL, NULL};
    CU_ASSERT_NOT_EQUAL(craft_order_interaction(e1, m, &ob.in, 0, &o, &x, &err), CRAFT_OK);
    CU_ASSERT_NOT_EQUAL(craft_order_interaction(e1, m, &ob.in, ob.in.n, NULL, &x, &err), CRAFT_OK);
    printf("\n  %s: %d orders, definition worst |diff| %.2g (%d values), batched vs one run %.2g\n", name, ob.in.n,
           worst_def, definition_checked, worst_chunk);
    craft_engine_free(e1);
    craft_engine_free(e8);
    craft_order_batch_free(&ob);
    craft_model_free(m);
}

static void test_multilabel(void) { check_fixture("tiny-multilabel"); }
static void test_multiclass(void) { check_fixture("tiny-multiclass"); }

static void test_format(void)
{
    char b[32];
    CU_ASSERT_STRING_EQUAL(craft_interaction_format(b, sizeof b, 0.01234), "+0.0123");
    CU_ASSERT_STRING_EQUAL(craft_interaction_format(b, sizeof b, -0.04561), "-0.0456");
    CU_ASSERT_STRING_EQUAL(craft_interaction_format(b, sizeof b, 0.5), "+0.5000");
    CU_ASSERT_STRING_EQUAL(craft_interaction_format(b, sizeof b, NAN), "\u2013");
}

/* CRAFT_INTERACTION_BENCH=MODEL:ORDERS: both modes' time on the first order */
static void test_bench(void)
{
    const char *spec = getenv("CRAFT_INTERACTION_BENCH");
    if (!spec) return;
    char *model = strdup(spec), *orders = strchr(model, ':');
    CU_ASSERT_PTR_NOT_NULL_FATAL(orders);
    *orders++ = 0;
    craft_model *m = NULL;
    craft_order_batch ob;
    CU_ASSERT_EQUAL_FATAL(load(model, orders, &m, &ob, 1), CRAFT_OK);
    craft_error err = {0};
    int chunks[] = {0, 1, 4, 8, 16, 32};
    craft_interaction ref;
    memset(&ref, 0, sizeof ref);
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        craft_engine *e = NULL;
        double t0 = craft_now();
        CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, m, chunks[c] > 0 ? chunks[c] : 1, 1, &err), CRAFT_OK);
        double t1 = craft_now();
        craft_interaction_options o = {chunks[c], NULL, NULL};
        craft_interaction x;
        CU_ASSERT_EQUAL_FATAL(craft_order_interaction(e, m, &ob.in, 0, &o, &x, &err), CRAFT_OK);
        double worst = 0;
        if (c == 0) ref = x;
        else {
            for (size_t i = 0; i < (size_t)x.n_aux * x.K * x.F; i++)
                if (!isnan(ref.value[i])) worst = fmax(worst, fabs(ref.value[i] - x.value[i]));
            craft_interaction_free(&x);
        }
        printf("\n  bench chunk %2d: engine made in %.1f ms, interaction %.0f ms, vs one run %.2g", chunks[c],
               (t1 - t0) * 1000, (craft_now() - t1) * 1000, worst);
        CU_ASSERT(worst < 1e-4);
        craft_engine_free(e);
    }
    craft_interaction_free(&ref);
    craft_order_batch_free(&ob);
    craft_model_free(m);
    free(model);
}

int main(void)
{
    fixtures = getenv("CRAFT_FIXTURES");
    if (!fixtures)
        return 77;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("interaction", NULL, NULL);
    if (!s || !CU_add_test(s, "multilabel fixture", test_multilabel) ||
        !CU_add_test(s, "multiclass fixture", test_multiclass) || !CU_add_test(s, "number format", test_format) ||
        !CU_add_test(s, "bench (CRAFT_INTERACTION_BENCH)", test_bench)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
