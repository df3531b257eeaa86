/* backbone.c: the "backbone alone" baseline: a fresh CRAFT model of the same
 * shape trained with every auxiliary switched off, through the trainer's step
 * API (engine/train.h), then scored with the auxiliaries off. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "craft_hash.h"
#include "metrics.h"
#include "train.h"

static int by_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Quantile edges of the numeric features from the training rows only
 * (MODEL.md: E[0] the minimum, E[nb] the maximum, the rest the k/nb quantiles). */
static int fit_edges(craft_model *bm, const craft_eval_set *s, const int *rows, int n, craft_error *err)
{
    const craft_config *cfg = &bm->cfg;
    if (cfg->tabular < 0)
        return CRAFT_OK;
    const craft_modality *tab = &cfg->modalities[cfg->tabular];
    const int nb = cfg->bins, F = tab->n_features;
    float *v = malloc(sizeof(float) * ((size_t)n + 1));
    if (!v)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for bin edges");
    for (int j = 0; j < F; j++) {
        float *E = bm->w.embed[cfg->tabular].edges + (size_t)j * (nb + 1);
        if (tab->features[j].type != CRAFT_NUMERIC)
            continue;
        int c = 0;
        for (int i = 0; i < n; i++) {
            float x = s->b.tab[(size_t)rows[i] * s->b.F + j];
            if (!isnan(x))
                v[c++] = x;
        }
        if (c == 0) { /* never seen: any non-decreasing edges do */
            for (int k = 0; k <= nb; k++)
                E[k] = (float)k;
            continue;
        }
        qsort(v, (size_t)c, sizeof *v, by_float);
        for (int k = 0; k <= nb; k++) {
            double pos = (double)k * (c - 1) / nb;
            int lo = (int)pos;
            int hi = lo + 1 < c ? lo + 1 : lo;
            E[k] = (float)(v[lo] + (pos - lo) * (v[hi] - v[lo]));
        }
        for (int k = 1; k <= nb; k++) /* rounding must not make them decrease */
            if (E[k] < E[k - 1])
                E[k] = E[k - 1];
    }
    free(v);
    return CRAFT_OK;
}

/* Rows of s copied into batch dst with every auxiliary switched off. */
static void gather_backbone(const craft_config *cfg, craft_batch *dst, const craft_eval_set *s, const int *rows, int n)
{
    craft_eval_set_gather(s, rows, n, dst);
    for (int m = 0; m < cfg->n_modalities; m++)
        if (m != cfg->backbone && dst->ntok[m])
            memset(dst->ntok[m], 0, sizeof(int) * (size_t)n);
}

/* Scores of the rows with the auxiliaries off. A new engine each time: an
 * engine folds some parameters (the pooling query) in when it is made. */
static int predict_backbone(const craft_model *bm, int threads, craft_batch *scratch, craft_result *res,
                            const craft_eval_set *s, const int *rows, int n, float *P, craft_error *err)
{
    const int K = bm->cfg.n_classes;
    craft_request req = {0};
    craft_engine *eng = NULL;
    int rc = craft_engine_new(&eng, bm, scratch->cap, threads, err);
    for (int start = 0; !rc && start < n; start += scratch->cap) {
        int bn = n - start < scratch->cap ? n - start : scratch->cap;
        gather_backbone(&bm->cfg, scratch, s, rows + start, bn);
        if (!(rc = craft_engine_run(eng, scratch, &req, 1, res, err)))
            memcpy(P + (size_t)start * K, res->scores, sizeof(float) * (size_t)bn * K);
    }
    craft_engine_free(eng);
    return rc;
}

/* Mean log loss of probabilities P against the known labels (lower is better). */
static double log_loss(int task, int n, int K, const float *P, const float *Y)
{
    double sum = 0;
    long count = 0;
    for (size_t e = 0; e < (size_t)n * K; e++) {
        if (isnan(Y[e]) || (task == CRAFT_MULTICLASS && Y[e] < 0.5f))
            continue;
        double p = fmin(fmax(P[e], 1e-7), 1 - 1e-7);
        sum -= Y[e] > 0.5f ? log(p) : log(1 - p);
        count++;
    }
    return count ? sum / count : 0;
}

int craft_eval_backbone_fit_predict(const craft_model *m, const craft_eval_set *s, const int *fit, int n_fit,
                                    const int *val, int n_val, const int *test, int n_test,
                                    const craft_backbone_options *o, float *P, char *detail, size_t detail_len,
                                    craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    const int K = cfg->n_classes;
    const int B = o->batch < n_fit ? o->batch : n_fit;
    craft_model *bm = NULL;
    craft_train *tr = NULL;
    craft_adamw opt;
    craft_batch batch, scratch;
    craft_result res;
    memset(&opt, 0, sizeof opt);
    memset(&batch, 0, sizeof batch);
    memset(&scratch, 0, sizeof scratch);
    memset(&res, 0, sizeof res);
    craft_request req = {0};
    float *grads = NULL, *best = NULL, *Pv = NULL, *Yv = NULL;
    int *order = NULL;
    int rc = n_fit < 1 ? craft_fail(err, CRAFT_EINPUT, "no training orders for the backbone baseline") : CRAFT_OK;
    if (!rc)
        rc = craft_model_new(&bm, cfg, 0, o->seed, err);
    if (!rc)
        rc = fit_edges(bm, s, fit, n_fit, err);
    if (!rc)
        rc = craft_train_new(&tr, bm, B, o->threads, err);
    if (!rc)
        rc = craft_adamw_init(&opt, bm, o->weight_decay, err);
    if (!rc)
        rc = craft_batch_init(&batch, cfg, B, err);
    if (!rc)
        rc = craft_batch_init(&scratch, cfg, 64, err);
    if (!rc)
        rc = craft_result_init(&res, cfg, 64, &req, err);
    if (!rc) {
        size_t total = bm->layout.total;
        grads = malloc(sizeof(float) * total);
        best = malloc(sizeof(float) * total);
        Pv = malloc(sizeof(float) * ((size_t)n_val * K + 1));
        Yv = malloc(sizeof(float) * ((size_t)n_val * K + 1));
        order = malloc(sizeof(int) * (size_t)n_fit);
        if (!grads || !best || !Pv || !Yv || !order)
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for the backbone baseline");
    }
    if (rc)
        goto done;
    for (int i = 0; i < n_val; i++)
        memcpy(Yv + (size_t)i * K, s->b.labels + (size_t)val[i] * K, sizeof(float) * K);
    memcpy(best, bm->params, sizeof(float) * bm->layout.total);
    memcpy(order, fit, sizeof(int) * (size_t)n_fit);
    craft_train_opts to = craft_train_defaults();
    to.supcma = 0;           /* one modality: nothing to contrast */
    to.modality_dropout = 0; /* no auxiliaries to drop */
    const long steps_per_epoch = (n_fit + B - 1) / B, total_steps = steps_per_epoch * o->epochs;
    uint64_t rng = o->seed ^ 0xb4c0b0e5ull;
    long step = 0;
    double best_val = -INFINITY;
    int best_epoch = 0, since = 0, epochs_run = 0;
    for (int epoch = 0; epoch < o->epochs && since < o->patience; epoch++) {
        for (int i = n_fit - 1; i > 0; i--) {
            int j = (int)(craft_splitmix64(&rng) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j], order[j] = t;
        }
        for (int start = 0; start < n_fit; start += B) {
            int bn = n_fit - start < B ? n_fit - start : B;
            gather_backbone(cfg, &batch, s, order + start, bn);
            craft_losses losses;
            to.seed = o->seed * 1000003u + (uint64_t)step;
            if ((rc = craft_train_forward(tr, &batch, &to, &losses, err)) || (rc = craft_train_backward(tr, grads, err)))
                goto done;
            craft_clip_grad_norm(grads, bm->layout.total, 1.0);
            craft_adamw_step(&opt, bm->params, grads, craft_lr_at(step, steps_per_epoch, total_steps, o->lr));
            step++;
        }
        epochs_run++;
        /* early stopping on the validation macro PR-AUC, as the trainer does */
        if ((rc = predict_backbone(bm, o->threads, &scratch, &res, s, val, n_val, Pv, err)))
            goto done;
        double v = craft_macro_pr_auc(Pv, Yv, n_val, K);
        if (isnan(v))
            v = -log_loss(cfg->task, n_val, K, Pv, Yv); /* no positives to rank: calibration instead */
        if (v > best_val) {
            best_val = v, best_epoch = epoch + 1, since = 0;
            memcpy(best, bm->params, sizeof(float) * bm->layout.total);
        } else {
            since++;
        }
    }
    memcpy(bm->params, best, sizeof(float) * bm->layout.total);
    rc = predict_backbone(bm, o->threads, &scratch, &res, s, test, n_test, P, err);
    if (!rc && detail)
        snprintf(detail, detail_len, "CRAFT trainer, auxiliaries off, no SupCMA; %d epochs, best %d (batch %d, lr %g)",
                 epochs_run, best_epoch, B, o->lr);
done:
    free(grads), free(best), free(Pv), free(Yv), free(order);
    craft_result_free(&res);
    craft_batch_free(&scratch);
    craft_batch_free(&batch);
    craft_adamw_free(&opt);
    craft_train_free(tr);
    craft_model_free(bm);
    return rc;
}
