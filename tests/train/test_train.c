/* test_train.c: the training forward and backward passes against the
 * fixtures (tests/fixtures/tiny-train-*), the inference engine, and finite
 * differences. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "train_util.h"

/* Fixture tolerance: gradients and losses within 1e-5 absolute or 1e-4 relative. */
#define ABS_TOL 1e-5
#define REL_TOL 1e-4

static int close_enough(double got, double want)
{
    return fabs(got - want) <= ABS_TOL || fabs(got - want) <= REL_TOL * fabs(want);
}

static void check_fixture(const char *stem)
{
    char path[256];
    craft_error err;
    craft_model *m;
    snprintf(path, sizeof path, "%s.safetensors", stem);
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture(path), &err), 0);
    CU_ASSERT_FATAL(m->has_supcma);
    craft_order_batch ob;
    snprintf(path, sizeof path, "%s.orders.jsonl", stem);
    CU_ASSERT_EQUAL_FATAL(read_fixture_orders(&ob, &m->cfg, path), 0);
    CU_ASSERT_EQUAL(ob.in.n, 24);
    st_file gf;
    snprintf(path, sizeof path, "%s.grads.safetensors", stem);
    CU_ASSERT_EQUAL_FATAL(st_open(&gf, fixture(path)), 0);

    craft_train *t;
    CU_ASSERT_EQUAL_FATAL(craft_train_new(&t, m, 32, 2, &err), 0);
    craft_train_opts o = fixture_opts();
    craft_losses ls;
    CU_ASSERT_EQUAL_FATAL(craft_train_forward(t, &ob.in, &o, &ls, &err), 0);
    float *grads = calloc(m->layout.total, sizeof(float));
    CU_ASSERT_EQUAL_FATAL(craft_train_backward(t, grads, &err), 0);

    /* the losses and temperatures */
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(gf.header, "__metadata__");
    cJSON *losses = cJSON_Parse(cJSON_GetObjectItemCaseSensitive(meta, "craft.losses")->valuestring);
    CU_ASSERT_FATAL(losses != NULL);
    double want_cls = cJSON_GetObjectItem(losses, "loss_cls")->valuedouble;
    double want_sup = cJSON_GetObjectItem(losses, "loss_supcma")->valuedouble;
    double want_tot = cJSON_GetObjectItem(losses, "loss_total")->valuedouble;
    printf("\n  %s: loss_cls %.7f (want %.7f) supcma %.7f (%.7f) total %.7f (%.7f)\n", stem, ls.cls, want_cls,
           ls.supcma, want_sup, ls.total, want_tot);
    CU_ASSERT(close_enough(ls.cls, want_cls));
    CU_ASSERT(close_enough(ls.supcma, want_sup));
    CU_ASSERT(close_enough(ls.total, want_tot));
    cJSON *tau = cJSON_GetObjectItem(losses, "tau");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(tau), m->cfg.n_classes);
    for (int k = 0; k < m->cfg.n_classes; k++)
        CU_ASSERT(fabs(craft_train_tau(t)[k] - cJSON_GetArrayItem(tau, k)->valuedouble) < 1e-7);

    /* every parameter's gradient */
    int checked = 0, bad = 0;
    double worst = 0.0;
    for (int i = 0; i < m->layout.n; i++) {
        const craft_tensor_info *ti = &m->layout.t[i];
        if (strstr(ti->name, ".edges"))
            continue;
        char gname[128];
        snprintf(gname, sizeof gname, "grad.%s", ti->name);
        size_t cnt = 0;
        const float *want = st_tensor(&gf, gname, &cnt);
        CU_ASSERT_PTR_NOT_NULL(want);
        if (!want)
            continue;
        CU_ASSERT_EQUAL(cnt, ti->count);
        int tbad = 0;
        for (size_t k = 0; k < ti->count && k < cnt; k++) {
            double got = grads[ti->offset + k], w = want[k], e = fabs(got - w);
            if (!close_enough(got, w))
                tbad++;
            worst = e > worst ? e : worst;
        }
        if (tbad) {
            printf("  %s: %d of %zu entries off\n", gname, tbad, ti->count);
            bad++;
        }
        checked++;
    }
    printf("  %d gradients checked, worst absolute difference %.3g\n", checked, worst);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(checked > 40);

    /* the training forward's scores equal the inference engine's */
    craft_engine *e;
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, m, 32, 2, &err), 0);
    craft_request rq = {0};
    craft_result res;
    CU_ASSERT_EQUAL_FATAL(craft_result_init(&res, &m->cfg, 32, &rq, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_engine_run(e, &ob.in, &rq, 1, &res, &err), 0);
    double wl = 0.0;
    for (int i = 0; i < ob.in.n * m->cfg.n_classes; i++) {
        double dl = fabs(res.logits[i] - craft_train_logits(t)[i]);
        wl = dl > wl ? dl : wl;
    }
    printf("  logits: training forward vs engine, worst difference %.3g\n", wl);
    CU_ASSERT(wl < 1e-5);
    craft_result_free(&res);
    craft_engine_free(e);

    cJSON_Delete(losses);
    free(grads);
    craft_train_free(t);
    st_close(&gf);
    craft_order_batch_free(&ob);
    craft_model_free(m);
}

/* The extensions (MODEL.md): the piecewise-linear encoding and the wide head give the same
 * logits in the training forward and the inference engine, a checkpoint with them round-trips
 * bit for bit, and a calibration turns the engine's scores into sigma(a y + b). */
static void test_extensions_agree(void)
{
    craft_error err;
    craft_model *m;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture("tiny-train-multilabel.safetensors"), &err), 0);
    craft_config wc;
    CU_ASSERT_EQUAL_FATAL(craft_config_copy(&wc, &m->cfg, &err), 0);
    wc.tab_encoding = CRAFT_TAB_PIECEWISE;
    wc.wide_head = 1;
    craft_model *w;
    CU_ASSERT_EQUAL_FATAL(craft_model_new(&w, &wc, m->has_supcma, 3, &err), 0);
    for (int i = 0; i < w->layout.n; i++) {
        const craft_tensor_info *ti = &w->layout.t[i];
        int found = 0;
        for (int j = 0; j < m->layout.n && !found; j++)
            if (!strcmp(m->layout.t[j].name, ti->name)) {
                memcpy(w->params + ti->offset, m->params + m->layout.t[j].offset, sizeof(float) * ti->count);
                found = 1;
            }
        if (!found) /* head.wide.weight: not zero, so that it counts */
            for (size_t k = 0; k < ti->count; k++)
                w->params[ti->offset + k] = 0.03f * cosf((float)k);
    }
    craft_order_batch ob;
    CU_ASSERT_EQUAL_FATAL(read_fixture_orders(&ob, &w->cfg, "tiny-train-multilabel.orders.jsonl"), 0);
    craft_train *t;
    CU_ASSERT_EQUAL_FATAL(craft_train_new(&t, w, 32, 2, &err), 0);
    craft_train_opts o = fixture_opts();
    craft_losses ls;
    CU_ASSERT_EQUAL_FATAL(craft_train_forward(t, &ob.in, &o, &ls, &err), 0);
    craft_engine *e;
    craft_request rq = {0};
    craft_result res, res0;
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, w, 32, 2, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_result_init(&res, &w->cfg, 32, &rq, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_engine_run(e, &ob.in, &rq, 1, &res, &err), 0);
    const int K = w->cfg.n_classes;
    double wl = 0.0;
    for (int i = 0; i < ob.in.n * K; i++)
        wl = fmax(wl, fabs(res.logits[i] - craft_train_logits(t)[i]));
    printf("\n  piecewise + wide head: logits, training forward vs engine, worst difference %.3g\n", wl);
    CU_ASSERT(wl < 1e-5);
    /* the same model without its wide weights gives other logits: the term is used */
    craft_engine_free(e);
    CU_ASSERT_EQUAL_FATAL(craft_result_init(&res0, &m->cfg, 32, &rq, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, m, 32, 2, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_engine_run(e, &ob.in, &rq, 1, &res0, &err), 0);
    double dl = 0.0;
    for (int i = 0; i < ob.in.n * K; i++)
        dl = fmax(dl, fabs(res.logits[i] - res0.logits[i]));
    CU_ASSERT(dl > 1e-3);
    craft_engine_free(e);
    /* a calibration: scores sigma(a y + b), logits unchanged; saved and loaded with the model */
    w->cfg.calib_a = malloc(sizeof(float) * K);
    w->cfg.calib_b = malloc(sizeof(float) * K);
    for (int k = 0; k < K; k++)
        w->cfg.calib_a[k] = 0.5f + 0.25f * k, w->cfg.calib_b[k] = -1.0f + 0.1f * k;
    char path[] = "/tmp/craft-test-ext-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(craft_model_save(w, path, NULL, &err), 0);
    craft_model *back;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&back, path, &err), 0);
    unlink(path);
    CU_ASSERT_EQUAL(back->cfg.tab_encoding, CRAFT_TAB_PIECEWISE);
    CU_ASSERT_EQUAL(back->cfg.wide_head, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back->cfg.calib_a);
    CU_ASSERT_EQUAL_FATAL(back->layout.total, w->layout.total);
    CU_ASSERT(memcmp(back->params, w->params, sizeof(float) * w->layout.total) == 0);
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, back, 32, 2, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_engine_run(e, &ob.in, &rq, 1, &res0, &err), 0);
    double ws = 0.0, wy = 0.0;
    for (int i = 0; i < ob.in.n * K; i++) {
        const int k = i % K;
        double want = 1.0 / (1.0 + exp(-(back->cfg.calib_a[k] * (double)res.logits[i] + back->cfg.calib_b[k])));
        ws = fmax(ws, fabs(res0.scores[i] - want));
        wy = fmax(wy, fabs(res0.logits[i] - res.logits[i]));
    }
    printf("  calibrated scores vs sigma(a y + b): worst %.3g; logits unchanged within %.3g\n", ws, wy);
    CU_ASSERT(ws < 1e-6);
    CU_ASSERT(wy == 0.0);
    craft_engine_free(e);
    craft_result_free(&res);
    craft_result_free(&res0);
    craft_train_free(t);
    craft_order_batch_free(&ob);
    craft_model_free(back);
    craft_model_free(w);
    craft_config_free(&wc);
    craft_model_free(m);
}

static void test_fixture_multilabel(void) { check_fixture("tiny-train-multilabel"); }
static void test_fixture_multiclass(void) { check_fixture("tiny-train-multiclass"); }

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("train", NULL, NULL);
    if (!s || !CU_add_test(s, "fixture multilabel: losses, tau, every gradient, scores", test_fixture_multilabel) ||
        !CU_add_test(s, "fixture multiclass: losses, tau, every gradient, scores", test_fixture_multiclass) ||
        !CU_add_test(s, "piecewise, wide head, calibration: engine = training forward, round trip",
                     test_extensions_agree)) {
        CU_cleanup_registry();
        return 1;
    }
    return run_suites();
}
