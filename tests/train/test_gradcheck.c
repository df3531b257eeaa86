/* test_gradcheck.c: finite-difference checks of the backward passes.
 *
 * Each layer op (linear, layer norm, GELU) against central differences of
 * L = sum(out * R) for a fixed random R; and the whole loss of both fixture
 * models (multilabel BCE, multiclass cross-entropy), with and without SupCMA,
 * with the fixtures' missing modalities, and with dropout and modality dropout
 * on (masks fixed by the seed), for entries of every parameter tensor.
 * Differences are taken in float with step h, so the tolerance allows for
 * float rounding (about 1e-7 |L| / h) but fails on any real error. */
#include <math.h>

#include "ops.h"
#include "train_util.h"

static uint64_t rs = 88172645463325252ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static int fd_ok(double fd, double an, double abs_tol, double rel_tol)
{
    return fabs(fd - an) <= abs_tol + rel_tol * fabs(an);
}

/* ------------------------------------------------------------ layer ops */

enum { N_ROWS = 5, C_IN = 7, C_OUT = 6 };

static double linear_loss(const float *x, const craft_linear *lin, const float *R)
{
    float y[N_ROWS * C_OUT];
    linear_forward(y, C_OUT, x, C_IN, lin, N_ROWS);
    double s = 0.0;
    for (int i = 0; i < N_ROWS * C_OUT; i++)
        s += (double)y[i] * R[i];
    return s;
}

static void test_linear(void)
{
    float x[N_ROWS * C_IN], W[C_OUT * C_IN], b[C_OUT], R[N_ROWS * C_OUT];
    float dx[N_ROWS * C_IN], gW[C_OUT * C_IN] = {0}, gb[C_OUT] = {0};
    for (int i = 0; i < N_ROWS * C_IN; i++)
        x[i] = frand();
    for (int i = 0; i < C_OUT * C_IN; i++)
        W[i] = frand();
    for (int i = 0; i < C_OUT; i++)
        b[i] = frand();
    for (int i = 0; i < N_ROWS * C_OUT; i++)
        R[i] = frand();
    craft_linear lin = {W, b, C_OUT, C_IN}, g = {gW, gb, C_OUT, C_IN};
    linear_backward(dx, C_IN, 0, &g, R, C_OUT, x, C_IN, &lin, N_ROWS);
    const float h = 1e-2f; /* the loss is linear in each: only rounding matters */
    float *vars[3] = {x, W, b}, *grads[3] = {dx, gW, gb};
    int counts[3] = {N_ROWS * C_IN, C_OUT * C_IN, C_OUT}, bad = 0;
    for (int v = 0; v < 3; v++)
        for (int i = 0; i < counts[v]; i++) {
            float keep = vars[v][i];
            vars[v][i] = keep + h;
            double lp = linear_loss(x, &lin, R);
            vars[v][i] = keep - h;
            double lm = linear_loss(x, &lin, R);
            vars[v][i] = keep;
            bad += !fd_ok((lp - lm) / (2 * h), grads[v][i], 1e-4, 1e-4);
        }
    CU_ASSERT_EQUAL(bad, 0);
}

static double ln_loss(const float *x, const craft_norm *ln, const float *R)
{
    float y[N_ROWS * C_IN];
    layernorm_forward(y, NULL, NULL, x, ln, N_ROWS, C_IN);
    double s = 0.0;
    for (int i = 0; i < N_ROWS * C_IN; i++)
        s += (double)y[i] * R[i];
    return s;
}

static void test_layernorm(void)
{
    float x[N_ROWS * C_IN], w[C_IN], b[C_IN], R[N_ROWS * C_IN], y[N_ROWS * C_IN], mean[N_ROWS], rstd[N_ROWS];
    float dx[N_ROWS * C_IN], gw[C_IN] = {0}, gb[C_IN] = {0};
    for (int i = 0; i < N_ROWS * C_IN; i++) {
        x[i] = 2.0f * frand();
        R[i] = frand();
    }
    for (int i = 0; i < C_IN; i++) {
        w[i] = 1.0f + 0.5f * frand();
        b[i] = frand();
    }
    craft_norm ln = {w, b, C_IN}, g = {gw, gb, C_IN};
    layernorm_forward(y, mean, rstd, x, &ln, N_ROWS, C_IN);
    layernorm_backward(dx, 0, &g, R, x, mean, rstd, &ln, N_ROWS, C_IN);
    const float h = 1e-2f;
    float *vars[3] = {x, w, b}, *grads[3] = {dx, gw, gb};
    int counts[3] = {N_ROWS * C_IN, C_IN, C_IN}, bad = 0;
    for (int v = 0; v < 3; v++)
        for (int i = 0; i < counts[v]; i++) {
            float keep = vars[v][i];
            vars[v][i] = keep + h;
            double lp = ln_loss(x, &ln, R);
            vars[v][i] = keep - h;
            double lm = ln_loss(x, &ln, R);
            vars[v][i] = keep;
            bad += !fd_ok((lp - lm) / (2 * h), grads[v][i], 2e-3, 1e-2);
        }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_gelu(void)
{
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        float x = -6.0f + 12.0f * (float)i / 199.0f, one = 1.0f, d, yp, ym;
        const float h = 1e-3f;
        gelu_backward(&d, &x, &one, 1);
        float xp = x + h, xm = x - h;
        gelu_forward(&yp, &xp, 1);
        gelu_forward(&ym, &xm, 1);
        bad += !fd_ok((yp - ym) / (2.0 * h), d, 2e-3, 1e-2);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* ------------------------------------------------------------ whole loss */

typedef struct {
    const char *stem;
    int supcma;
    int dropout; /* dropout 0.2 and modality dropout 0.5, fixed by the seed */
    int piecewise; /* the piecewise-linear tabular encoding (config "tab_encoding") */
    int wide;      /* the wide head (config "wide_head"), its weights drawn at random */
} gc_case;

static double loss_at(craft_train *t, const craft_batch *b, const craft_train_opts *o)
{
    craft_losses ls;
    craft_error err;
    if (craft_train_forward(t, b, o, &ls, &err))
        return NAN;
    return ls.total;
}

static void check_whole_loss(gc_case c)
{
    char path[256];
    craft_error err;
    craft_model *m;
    snprintf(path, sizeof path, "%s.safetensors", c.stem);
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture(path), &err), 0);
    if (c.piecewise)
        m->cfg.tab_encoding = CRAFT_TAB_PIECEWISE;
    if (c.wide) {
        /* a model with the wide head: the fixture's parameters, and the new tensor at random */
        craft_config wc;
        CU_ASSERT_EQUAL_FATAL(craft_config_copy(&wc, &m->cfg, &err), 0);
        wc.wide_head = 1;
        craft_model *w2;
        CU_ASSERT_EQUAL_FATAL(craft_model_new(&w2, &wc, m->has_supcma, 7, &err), 0);
        for (int i = 0; i < w2->layout.n; i++) {
            const craft_tensor_info *ti = &w2->layout.t[i];
            const craft_tensor_info *src = NULL;
            for (int j = 0; j < m->layout.n; j++)
                if (!strcmp(m->layout.t[j].name, ti->name))
                    src = &m->layout.t[j];
            if (src)
                memcpy(w2->params + ti->offset, m->params + src->offset, sizeof(float) * ti->count);
            else
                for (size_t k = 0; k < ti->count; k++)
                    w2->params[ti->offset + k] = 0.05f * sinf((float)(k * 7 + 1));
        }
        craft_config_free(&wc);
        craft_model_free(m);
        m = w2;
    }
    craft_order_batch ob;
    snprintf(path, sizeof path, "%s.orders.jsonl", c.stem);
    CU_ASSERT_EQUAL_FATAL(read_fixture_orders(&ob, &m->cfg, path), 0);
    craft_train *t;
    CU_ASSERT_EQUAL_FATAL(craft_train_new(&t, m, 32, 1, &err), 0);
    craft_train_opts o = fixture_opts();
    o.supcma = c.supcma;
    if (c.dropout) {
        o.dropout = 0.2f;
        o.modality_dropout = 0.5f;
        o.seed = 12345;
    }
    craft_losses ls;
    CU_ASSERT_EQUAL_FATAL(craft_train_forward(t, &ob.in, &o, &ls, &err), 0);
    if (!c.supcma)
        CU_ASSERT_EQUAL(ls.supcma, 0.0);
    float *g = calloc(m->layout.total, sizeof(float));
    CU_ASSERT_EQUAL_FATAL(craft_train_backward(t, g, &err), 0);
    /* The top-k selection is not differentiated: hold it fixed while stepping. */
    o.keep_selection = 1;
    const float h = 1e-3f;
    int tensors = 0, entries = 0, bad = 0;
    for (int i = 0; i < m->layout.n; i++) {
        const craft_tensor_info *ti = &m->layout.t[i];
        if (strstr(ti->name, ".edges"))
            continue;
        tensors++;
        /* the largest gradient of the tensor and two others */
        size_t pick[3] = {0, (size_t)(ti->count / 3), (size_t)(2 * ti->count / 3 + 1) % ti->count};
        for (size_t k = 0; k < ti->count; k++)
            if (fabsf(g[ti->offset + k]) > fabsf(g[ti->offset + pick[0]]))
                pick[0] = k;
        for (int p = 0; p < 3; p++) {
            float *w = m->params + ti->offset + pick[p];
            float keep = *w;
            *w = keep + h;
            double lp = loss_at(t, &ob.in, &o);
            *w = keep - h;
            double lm = loss_at(t, &ob.in, &o);
            *w = keep;
            double fd = (lp - lm) / (2.0 * h), an = g[ti->offset + pick[p]];
            entries++;
            if (!fd_ok(fd, an, 1e-3, 3e-2)) {
                bad++;
                printf("\n  %s[%zu]: finite difference %.6g, backward %.6g", ti->name, pick[p], fd, an);
            }
        }
    }
    printf("\n  %s supcma=%d dropout=%d piecewise=%d: %d tensors, %d entries, %d off\n", c.stem, c.supcma, c.dropout,
           c.piecewise, tensors, entries, bad);
    /* ReLU in the projection heads is piecewise: a step across its kink may
     * break one difference; more than that is a real error. */
    CU_ASSERT(bad <= 1);
    free(g);
    craft_train_free(t);
    craft_order_batch_free(&ob);
    craft_model_free(m);
}

static void test_ml_supcma(void) { check_whole_loss((gc_case){"tiny-train-multilabel", 1, 0}); }
static void test_ml_plain(void) { check_whole_loss((gc_case){"tiny-train-multilabel", 0, 0}); }
static void test_ml_dropout(void) { check_whole_loss((gc_case){"tiny-train-multilabel", 1, 1}); }
static void test_mc_supcma(void) { check_whole_loss((gc_case){"tiny-train-multiclass", 1, 0}); }
static void test_mc_plain(void) { check_whole_loss((gc_case){"tiny-train-multiclass", 0, 0}); }
static void test_mc_dropout(void) { check_whole_loss((gc_case){"tiny-train-multiclass", 1, 1}); }
static void test_ml_piecewise(void) { check_whole_loss((gc_case){"tiny-train-multilabel", 1, 0, 1}); }
static void test_mc_piecewise(void) { check_whole_loss((gc_case){"tiny-train-multiclass", 1, 1, 1}); }
static void test_ml_wide(void) { check_whole_loss((gc_case){"tiny-train-multilabel", 1, 1, 1, 1}); }

/* Same seed, same thread count: bit-identical gradients. */
static void test_deterministic(void)
{
    craft_error err;
    craft_model *m;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture("tiny-train-multilabel.safetensors"), &err), 0);
    craft_order_batch ob;
    CU_ASSERT_EQUAL_FATAL(read_fixture_orders(&ob, &m->cfg, "tiny-train-multilabel.orders.jsonl"), 0);
    craft_train *t;
    CU_ASSERT_EQUAL_FATAL(craft_train_new(&t, m, 32, 2, &err), 0);
    craft_train_opts o = craft_train_defaults();
    o.seed = 7;
    float *g1 = calloc(m->layout.total, sizeof(float)), *g2 = calloc(m->layout.total, sizeof(float));
    craft_losses a, b;
    CU_ASSERT_EQUAL(craft_train_forward(t, &ob.in, &o, &a, &err), 0);
    CU_ASSERT_EQUAL(craft_train_backward(t, g1, &err), 0);
    CU_ASSERT_EQUAL(craft_train_forward(t, &ob.in, &o, &b, &err), 0);
    CU_ASSERT_EQUAL(craft_train_backward(t, g2, &err), 0);
    CU_ASSERT_EQUAL(a.total, b.total);
    CU_ASSERT_EQUAL(memcmp(g1, g2, sizeof(float) * m->layout.total), 0);
    o.seed = 8; /* another seed draws other masks */
    CU_ASSERT_EQUAL(craft_train_forward(t, &ob.in, &o, &b, &err), 0);
    CU_ASSERT(a.total != b.total);
    free(g1);
    free(g2);
    craft_train_free(t);
    craft_order_batch_free(&ob);
    craft_model_free(m);
}

/* AdamW on one batch: the loss must fall well below where it started. */
static void test_optimizer_learns(void)
{
    craft_error err;
    craft_model *m;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture("tiny-train-multiclass.safetensors"), &err), 0);
    craft_order_batch ob;
    CU_ASSERT_EQUAL_FATAL(read_fixture_orders(&ob, &m->cfg, "tiny-train-multiclass.orders.jsonl"), 0);
    craft_train *t;
    craft_adamw opt;
    CU_ASSERT_EQUAL_FATAL(craft_train_new(&t, m, 32, 2, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_adamw_init(&opt, m, 0.01f, &err), 0);
    float *g = calloc(m->layout.total, sizeof(float));
    craft_train_opts o = fixture_opts();
    craft_losses ls;
    double first = 0.0;
    for (int step = 0; step < 60; step++) {
        CU_ASSERT_EQUAL_FATAL(craft_train_forward(t, &ob.in, &o, &ls, &err), 0);
        if (step == 0)
            first = ls.cls;
        craft_train_backward(t, g, &err);
        craft_clip_grad_norm(g, m->layout.total, 1.0);
        craft_adamw_step(&opt, m->params, g, craft_lr_at(step, 5, 60, 3e-3f));
    }
    printf("\n  cross-entropy %.4f -> %.4f after 60 steps\n", first, ls.cls);
    CU_ASSERT(ls.cls < 0.5 * first);
    free(g);
    craft_adamw_free(&opt);
    craft_train_free(t);
    craft_order_batch_free(&ob);
    craft_model_free(m);
}

static void test_schedule_and_clip(void)
{
    CU_ASSERT_DOUBLE_EQUAL(craft_lr_at(0, 10, 100, 1.0f), 0.1, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(craft_lr_at(9, 10, 100, 1.0f), 1.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(craft_lr_at(55, 10, 100, 1.0f), 0.5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(craft_lr_at(100, 10, 100, 1.0f), 0.0, 1e-6);
    float g[2] = {3.0f, 4.0f};
    CU_ASSERT_DOUBLE_EQUAL(craft_clip_grad_norm(g, 2, 1.0), 5.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(g[0], 0.6, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(g[1], 0.8, 1e-6);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("gradcheck", NULL, NULL);
    int ok = s && CU_add_test(s, "linear", test_linear) && CU_add_test(s, "layer norm", test_layernorm) &&
             CU_add_test(s, "gelu", test_gelu) &&
             CU_add_test(s, "whole loss: multilabel with SupCMA", test_ml_supcma) &&
             CU_add_test(s, "whole loss: multilabel without SupCMA", test_ml_plain) &&
             CU_add_test(s, "whole loss: multilabel, dropout and modality dropout", test_ml_dropout) &&
             CU_add_test(s, "whole loss: multiclass with SupCMA", test_mc_supcma) &&
             CU_add_test(s, "whole loss: multiclass without SupCMA", test_mc_plain) &&
             CU_add_test(s, "whole loss: multiclass, dropout and modality dropout", test_mc_dropout) &&
             CU_add_test(s, "whole loss: multilabel, piecewise-linear tabular encoding", test_ml_piecewise) &&
             CU_add_test(s, "whole loss: multiclass, piecewise-linear encoding, dropout", test_mc_piecewise) &&
             CU_add_test(s, "whole loss: multilabel, wide head, piecewise, dropout", test_ml_wide) &&
             CU_add_test(s, "deterministic for a seed", test_deterministic) &&
             CU_add_test(s, "AdamW learns a batch", test_optimizer_learns) &&
             CU_add_test(s, "schedule and clipping", test_schedule_and_clip);
    if (!ok) {
        CU_cleanup_registry();
        return 1;
    }
    return run_suites();
}
