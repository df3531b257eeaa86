/* baselines.c: the baseline table (as the paper's Table 1): single-modality
 * MLPs, the early-fusion concatenation MLP, XGBoost, the backbone alone and the
 * CRAFT model itself, all scored on the same held-out orders, each as a ratio
 * to the best single-modality model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baselines.h"
#include "metrics.h"

void craft_eval_baseline_defaults(craft_eval_baseline_options *o)
{
    memset(o, 0, sizeof *o);
    o->val_fraction = 0.1;
    o->seed = 1;
    o->hidden = 64;
    o->epochs = 60;
    o->batch = 128;
    o->lr = 1e-3f;
    o->weight_decay = 0.01f;
    o->xgb_rounds = 100;
    o->xgb_depth = 4;
    o->xgb_eta = 0.1f;
    o->backbone_epochs = 10;
    o->backbone_batch = 64;
    o->backbone_lr = 1e-3f;
}

static void progress(const craft_eval_baseline_options *o, const char *what)
{
    if (!o->quiet && isatty(2))
        fprintf(stderr, "craft eval: baselines: %s...\n", what);
}

typedef struct {
    const craft_config *cfg;
    const craft_eval_set *s;
    const int *fit_rows, *val_rows, *test_rows; /* fit: MLP training; val: its early stopping */
    int n_fit, n_val, n_test;
    float *Y_fit, *Y_val, *Y_test;
    const craft_eval_baseline_options *o;
} split_data;

static void row_set(craft_eval_baseline_row *r, const char *name, int single, int available, const char *detail)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->detail, sizeof r->detail, "%s", detail);
    r->single_modality = single;
    r->available = available;
    r->macro_ap = r->accuracy = r->ratio = NAN;
}

static void row_scores(craft_eval_baseline_row *r, const split_data *d, const float *P)
{
    const int K = d->cfg->n_classes;
    r->macro_ap = craft_macro_pr_auc(P, d->Y_test, d->n_test, K);
    r->accuracy = d->cfg->task == CRAFT_MULTICLASS ? craft_eval_accuracy(d->n_test, K, P, d->Y_test) : NAN;
    r->n_classes = K;
    for (int k = 0; k < K && k < 16; k++)
        r->class_ap[k] = craft_pr_auc(P + k, d->Y_test + k, d->n_test, K);
}

/* Trains the MLP on the early-fusion features of modalities mods; scores the test rows. */
static int mlp_row(craft_eval_baseline_row *r, const split_data *d, uint32_t mods, craft_error *err)
{
    const int K = d->cfg->n_classes;
    craft_concat_features f;
    int rc = craft_concat_fit(&f, d->cfg, mods, d->s, d->fit_rows, d->n_fit, err);
    if (rc)
        return rc;
    float *Xf = malloc(sizeof(float) * ((size_t)d->n_fit * f.dim + 1));
    float *Xv = malloc(sizeof(float) * ((size_t)d->n_val * f.dim + 1));
    float *Xt = malloc(sizeof(float) * ((size_t)d->n_test * f.dim + 1));
    float *P = malloc(sizeof(float) * ((size_t)d->n_test * K + 1));
    craft_mlp mlp = {0};
    if (!Xf || !Xv || !Xt || !P)
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for the MLP baseline's features");
    if (!rc) {
        craft_concat_transform(&f, d->s, d->fit_rows, d->n_fit, Xf);
        craft_concat_transform(&f, d->s, d->val_rows, d->n_val, Xv);
        craft_concat_transform(&f, d->s, d->test_rows, d->n_test, Xt);
        rc = craft_mlp_init(&mlp, f.dim, d->o->hidden, K, d->cfg->task, d->o->seed, err);
    }
    if (!rc) {
        craft_mlp_train_options to = {d->o->epochs, d->o->batch, 5, d->o->lr, d->o->weight_decay, d->o->seed};
        rc = craft_mlp_train(&mlp, Xf, d->Y_fit, d->n_fit, Xv, d->Y_val, d->n_val, &to, err);
    }
    if (!rc)
        rc = craft_mlp_predict(&mlp, Xt, d->n_test, P, err);
    if (!rc) {
        row_scores(r, d, P);
        if (d->val_rows == d->fit_rows)
            snprintf(r->detail, sizeof r->detail,
                     "%d inputs, %d hidden, ReLU; AdamW lr %g; too few orders to hold back: kept the best training loss",
                     f.dim, d->o->hidden, d->o->lr);
        else
            snprintf(r->detail, sizeof r->detail, "%d inputs, %d hidden, ReLU; AdamW lr %g, early stop on %d orders",
                     f.dim, d->o->hidden, d->o->lr, d->n_val);
    }
    craft_mlp_free(&mlp);
    craft_concat_free(&f);
    free(Xf), free(Xv), free(Xt), free(P);
    return rc;
}

static int xgb_row(craft_eval_baseline_row *r, const split_data *d, uint32_t all, craft_error *err)
{
    const int K = d->cfg->n_classes;
    craft_concat_features f;
    int rc = craft_concat_fit(&f, d->cfg, all, d->s, d->fit_rows, d->n_fit, err);
    if (rc)
        return rc;
    /* XGBoost has its own regularization: it trains on fit and val rows together */
    int ntr = d->n_fit + d->n_val;
    int *rows = malloc(sizeof(int) * ((size_t)ntr + 1));
    float *Xtr = malloc(sizeof(float) * ((size_t)ntr * f.dim + 1));
    float *Ytr = malloc(sizeof(float) * ((size_t)ntr * K + 1));
    float *Xt = malloc(sizeof(float) * ((size_t)d->n_test * f.dim + 1));
    float *P = malloc(sizeof(float) * ((size_t)d->n_test * K + 1));
    if (!rows || !Xtr || !Ytr || !Xt || !P) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for the XGBoost baseline");
    } else {
        memcpy(rows, d->fit_rows, sizeof(int) * d->n_fit);
        memcpy(rows + d->n_fit, d->val_rows, sizeof(int) * d->n_val);
        memcpy(Ytr, d->Y_fit, sizeof(float) * (size_t)d->n_fit * K);
        memcpy(Ytr + (size_t)d->n_fit * K, d->Y_val, sizeof(float) * (size_t)d->n_val * K);
        craft_concat_transform(&f, d->s, rows, ntr, Xtr);
        craft_concat_transform(&f, d->s, d->test_rows, d->n_test, Xt);
        craft_xgb_options xo = {d->o->xgb_rounds, d->o->xgb_depth, d->o->threads, d->o->xgb_eta, d->o->seed};
        rc = craft_xgb_fit_predict(d->cfg->task, K, f.dim, Xtr, Ytr, ntr, Xt, d->n_test, &xo, P, r->detail,
                                   sizeof r->detail, err);
        if (!rc)
            row_scores(r, d, P);
    }
    craft_concat_free(&f);
    free(rows), free(Xtr), free(Ytr), free(Xt), free(P);
    return rc;
}

/* A CRAFT model trained on the backbone alone (auxiliaries off). */
static int backbone_row(craft_eval_baseline_row *r, const craft_model *m, const split_data *d, craft_error *err)
{
    float *P = malloc(sizeof(float) * ((size_t)d->n_test * d->cfg->n_classes + 1));
    if (!P)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for the backbone baseline's scores");
    craft_backbone_options bo = {d->o->backbone_epochs, d->o->backbone_batch, 3, d->o->threads, d->o->backbone_lr,
                                 d->o->weight_decay, d->o->seed};
    int rc = craft_eval_backbone_fit_predict(m, d->s, d->fit_rows, d->n_fit, d->val_rows, d->n_val, d->test_rows,
                                             d->n_test, &bo, P, r->detail, sizeof r->detail, err);
    if (!rc)
        row_scores(r, d, P);
    free(P);
    return rc;
}

/* The given CRAFT model on the test rows. */
static int craft_row(craft_eval_baseline_row *r, const craft_model *m, const split_data *d, craft_error *err)
{
    craft_eval_set test;
    int rc = craft_eval_set_subset(&test, d->s, d->test_rows, d->n_test, err);
    if (rc)
        return rc;
    float *P = malloc(sizeof(float) * ((size_t)d->n_test * d->cfg->n_classes + 1));
    craft_request req = {0};
    if (!P)
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for CRAFT's scores");
    if (!rc)
        rc = craft_eval_predict(m, &test, &req, 1, &P, d->o->threads, err);
    if (!rc)
        row_scores(r, d, P);
    free(P);
    craft_eval_set_free(&test);
    return rc;
}

static float *gather_labels(const craft_eval_set *s, const int *rows, int n)
{
    const int K = s->cfg->n_classes;
    float *Y = malloc(sizeof(float) * ((size_t)n * K + 1));
    for (int i = 0; Y && i < n; i++)
        memcpy(Y + (size_t)i * K, s->b.labels + (size_t)rows[i] * K, sizeof(float) * K);
    return Y;
}

int craft_eval_baselines_run(craft_eval_baselines *out, const craft_model *m, const craft_eval_set *s,
                             const craft_eval_baseline_options *o, craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    const int n = s->b.n;
    memset(out, 0, sizeof *out);
    out->val_fraction = o->val_fraction;
    out->seed = o->seed;
    out->best_single = -1;
    out->metric = cfg->task == CRAFT_MULTICLASS ? "accuracy" : "macro_pr_auc";
    int *is_test = malloc(sizeof(int) * ((size_t)n + 1));
    int *rows = malloc(sizeof(int) * ((size_t)n + 1) * 3);
    split_data d = {cfg, s, NULL, NULL, NULL, 0, 0, 0, NULL, NULL, NULL, o};
    int rc = CRAFT_OK;
    if (!is_test || !rows) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for the split of %d orders", n);
        goto done;
    }
    if (o->n_train_given > 0) {
        out->train_file = 1;
        out->n_test = 0;
        for (int i = 0; i < n; i++)
            out->n_test += is_test[i] = i >= o->n_train_given;
    } else {
        out->n_test = craft_eval_split(s, o->val_fraction, o->seed, is_test);
    }
    out->n_train = n - out->n_test;
    if (out->n_test < 2 || out->n_train < 2) {
        rc = craft_fail(err, CRAFT_EINPUT,
                        "the split (--val-fraction %g, seed %llu) leaves %d training and %d held-out orders of %d; "
                        "baselines need at least 2 of each",
                        o->val_fraction, (unsigned long long)o->seed, out->n_train, out->n_test, n);
        goto done;
    }
    /* the MLPs stop early on a tenth of the training part (a second seeded hash) */
    int *fit = rows, *val = rows + n + 1, *test = rows + 2 * (n + 1);
    for (int i = 0; i < n; i++) {
        if (is_test[i])
            test[d.n_test++] = i;
        else if (out->n_train >= 20 && craft_eval_split_hash(s->ids[i], o->seed + 0x5eed) < 0.1)
            val[d.n_val++] = i;
        else
            fit[d.n_fit++] = i;
    }
    d.fit_rows = fit, d.val_rows = val, d.test_rows = test;
    if (d.n_val == 0) { /* too few orders to hold any back: stop on the training loss */
        d.val_rows = fit, d.n_val = d.n_fit;
    }
    d.Y_fit = gather_labels(s, fit, d.n_fit);
    d.Y_val = gather_labels(s, d.val_rows, d.n_val);
    d.Y_test = gather_labels(s, test, d.n_test);
    if (!d.Y_fit || !d.Y_val || !d.Y_test) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for labels");
        goto done;
    }

    char name[64];
    for (int mm = 0; !rc && !o->xgb_only && mm < cfg->n_modalities; mm++) {
        craft_eval_baseline_row *r = &out->row[out->n++];
        snprintf(name, sizeof name, "MLP on %s only", cfg->modalities[mm].name);
        row_set(r, name, 1, 1, "");
        progress(o, name);
        rc = mlp_row(r, &d, 1u << mm, err);
    }
    if (!rc && !o->xgb_only) {
        craft_eval_baseline_row *r = &out->row[out->n++];
        row_set(r, "concat MLP (early fusion)", 0, 1, "");
        progress(o, r->name);
        rc = mlp_row(r, &d, (1u << cfg->n_modalities) - 1, err);
    }
    for (int pass = 0; !rc && pass < 2; pass++) {
        /* XGBoost on the backbone modality alone, then on every modality (early fusion) */
        craft_eval_baseline_row *r = &out->row[out->n++];
        snprintf(name, sizeof name, "XGBoost on %s only", cfg->modalities[cfg->backbone].name);
        row_set(r, pass ? "XGBoost (early fusion)" : name, pass == 0, craft_xgb_available(), "");
        progress(o, r->name);
        if (r->available)
            rc = xgb_row(r, &d, pass ? (1u << cfg->n_modalities) - 1 : 1u << cfg->backbone, err);
        else
            snprintf(r->detail, sizeof r->detail, "unavailable: this build has no libxgboost (install libxgboost-dev)");
    }
    if (!rc && !o->xgb_only) {
        craft_eval_baseline_row *r = &out->row[out->n++];
        row_set(r, "backbone alone (trained)", 0, 1, "");
        progress(o, r->name);
        rc = backbone_row(r, m, &d, err);
    }
    if (!rc) {
        craft_eval_baseline_row *r = &out->row[out->n++];
        row_set(r, "CRAFT (this model)", 0, 1, "the evaluated checkpoint, full modalities");
        progress(o, r->name);
        rc = craft_row(r, m, &d, err);
    }
    if (!rc) {
        /* ratios to the best single-modality model (defined ones only) */
        double best = NAN;
        for (int i = 0; i < out->n; i++) {
            double v = cfg->task == CRAFT_MULTICLASS ? out->row[i].accuracy : out->row[i].macro_ap;
            if (out->row[i].single_modality && !isnan(v) && (isnan(best) || v > best))
                best = v, out->best_single = i;
        }
        for (int i = 0; i < out->n; i++) {
            double v = cfg->task == CRAFT_MULTICLASS ? out->row[i].accuracy : out->row[i].macro_ap;
            out->row[i].ratio = !isnan(best) && best > 0 && !isnan(v) ? v / best : NAN;
        }
    }
done:
    free(d.Y_fit), free(d.Y_val), free(d.Y_test);
    free(is_test), free(rows);
    return rc;
}
