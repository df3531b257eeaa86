/* trainer.c: from labelled orders to a trained checkpoint (MODEL.md, "Training").
 *
 * 1. split: the latest val_fraction of the labelled orders when all have a time, else
 *    hash(seed, order_id) < val_fraction, or an explicit validation file;
 * 2. categorical vocabularies (the bins-1 most frequent values) and numeric
 *    quantile edges from the training part only; prevalence likewise;
 * 3. backbone selection: rho_m = log2(n_m) * R_m, R_m the validation macro
 *    PR-AUC of a logistic-regression probe on modality m alone, min-max
 *    normalized; argmax, ties to the larger n_m;
 * 4. epochs of uniformly shuffled (or class-balanced) batches: AdamW, warm-up then cosine decay,
 *    clipping at norm 1, dropout and modality dropout; after each epoch the
 *    validation macro PR-AUC; the best model is saved (atomically) at every
 *    improvement, so a stop at any point (patience, time budget, Ctrl-C)
 *    leaves the best checkpoint so far;
 * 5. the best epoch's per-class calibration, fitted on the validation orders. */
#include "trainer.h"
#include "craft_hash.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "encoders.h"
#include "eval.h"
#include "metrics.h"
#include "ops.h"
#include "orders.h"
#include "scoring.h"
#include "train.h"

void craft_trainer_defaults(craft_trainer_options *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 20;
    o->batch = 128;
    o->threads = 0;
    o->patience = 3;
    o->supcma = 1;
    o->lr = 2e-3f;
    o->lambda = 0.3f;
    o->tau = 0.07f;
    o->val_fraction = 0.1f;
    o->weight_decay = 0.01f;
    o->dropout = 0.2f;
    o->modality_dropout = 0.2f;
    o->seed = 1;
    o->split = CRAFT_SPLIT_AUTO;
    o->sampler = CRAFT_SAMPLER_UNIFORM;
    o->tab_encoding = -1;
    o->calibrate = 1;
    o->wide_head = -1;
}

/* ------------------------------------------------------------- random */

static uint64_t mix64(uint64_t z) { return craft_hash64(z); }

/* The stream's step hashes the advanced state once more (craft_hash64, not the plain
 * finalizer): kept so that seeded runs, the bundled model's included, stay reproducible. */
static uint64_t rng_next(uint64_t *s) { return craft_hash64(*s += CRAFT_GOLDEN_GAMMA); }
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

/* The split is craft_eval_split_hash (app/eval): `craft eval` then holds out
 * exactly this trainer's validation orders. */
static double split_hash(const char *id, uint64_t seed) { return craft_eval_split_hash(id, seed); }

/* --------------------------------------------------------------- split */

/* Which labelled orders of the input are validation orders: the latest ones (time split),
 * a hash of the id (hash split), or none (an explicit validation file). */
typedef struct {
    int mode;      /* CRAFT_SPLIT_HASH or CRAFT_SPLIT_TIME; 0: every input order trains */
    double cutoff; /* time split: validation is t >= cutoff */
    uint64_t seed;
    float fraction;
} split_rule;

static int in_validation(const split_rule *sr, const char *id, double t)
{
    if (sr->mode == CRAFT_SPLIT_TIME)
        return t >= sr->cutoff;
    if (sr->mode == CRAFT_SPLIT_HASH)
        return split_hash(id, sr->seed) < sr->fraction;
    return 0;
}

static double order_time(const char *ts)
{
    double t = NAN;
    if (!ts || craft_graph_parse_time(ts, &t, NULL))
        return NAN;
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Pass 0 (time and auto splits): the times of the labelled orders; the cutoff leaves the
 * latest val_fraction of them for validation. auto falls back to the hash when an order
 * has no time (or every order has the same time); time refuses that, naming the order. */
static int plan_split(const craft_trainer_options *o, const craft_config *cfg, split_rule *sr, FILE *log,
                      craft_error *err)
{
    sr->seed = o->seed;
    sr->fraction = o->val_fraction;
    if (o->val_input) {
        sr->mode = 0;
        return CRAFT_OK;
    }
    sr->mode = CRAFT_SPLIT_HASH;
    if (o->split == CRAFT_SPLIT_HASH)
        return CRAFT_OK;
    craft_reader *rd;
    craft_order_batch ob;
    int rc = craft_reader_open(&rd, o->input, CRAFT_FORMAT_AUTO, cfg, err);
    if (rc)
        return rc;
    if ((rc = craft_order_batch_init(&ob, cfg, 256, 0, err))) {
        craft_reader_close(rd);
        return rc;
    }
    double *t = NULL;
    size_t n = 0, cap = 0;
    char missing[160] = "";
    int eof = 0;
    while (!eof && !rc && !missing[0]) {
        craft_order_batch_reset(&ob, cfg);
        if ((rc = craft_reader_next(rd, &ob, &eof, err)))
            break;
        for (int i = 0; i < ob.in.n && !missing[0]; i++) {
            if (!ob.has_labels[i])
                continue;
            double ti = order_time(ob.ts[i]);
            if (isnan(ti)) {
                snprintf(missing, sizeof missing, "order \"%.80s\" (line %zu) has no readable \"ts\"",
                         ob.ids[i] ? ob.ids[i] : "", ob.line ? ob.line[i] : (size_t)0);
                break;
            }
            if (n == cap) {
                double *p = realloc(t, sizeof *t * (cap = cap ? 2 * cap : 4096));
                if (!p) {
                    rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
                    break;
                }
                t = p;
            }
            t[n++] = ti;
        }
    }
    craft_order_batch_free(&ob);
    craft_reader_close(rd);
    if (!rc && !missing[0] && n > 1) {
        qsort(t, n, sizeof *t, cmp_double);
        size_t n_val = (size_t)llround((double)o->val_fraction * (double)n); /* 0.2f x 600 is 120, not 119 */
        n_val = n_val < 1 ? 1 : n_val;
        size_t at = n_val >= n ? 0 : n - n_val;
        if (t[at] > t[0]) {
            sr->mode = CRAFT_SPLIT_TIME;
            sr->cutoff = t[at];
        } else {
            snprintf(missing, sizeof missing, "every labelled order has the same time");
        }
    }
    free(t);
    if (rc)
        return rc;
    if (sr->mode != CRAFT_SPLIT_TIME) {
        if (o->split == CRAFT_SPLIT_TIME)
            return craft_fail(err, CRAFT_EINPUT, "%s: --split time: %s", o->input,
                              missing[0] ? missing : "too few labelled orders");
        if (log)
            fprintf(log, "split: by a hash of the order id (%s)\n",
                    missing[0] ? missing : "too few labelled orders for a time split");
    }
    return CRAFT_OK;
}

/* ------------------------------------------------------- vocabularies */

typedef struct { char *value; long count; } vocab_entry;
typedef struct { vocab_entry *v; int n, cap; } vocab_count;

#define MAX_DISTINCT 4096 /* values tracked per feature; rarer newcomers past this are not counted */

static int vocab_add(vocab_count *vc, const char *value)
{
    for (int i = 0; i < vc->n; i++)
        if (!strcmp(vc->v[i].value, value)) {
            vc->v[i].count++;
            return 0;
        }
    if (vc->n >= MAX_DISTINCT)
        return 0;
    if (vc->n == vc->cap) {
        int cap = vc->cap ? 2 * vc->cap : 16;
        vocab_entry *p = realloc(vc->v, sizeof *p * cap);
        if (!p)
            return -1;
        vc->v = p;
        vc->cap = cap;
    }
    if (!(vc->v[vc->n].value = strdup(value)))
        return -1;
    vc->v[vc->n++].count = 1;
    return 0;
}

static int by_count_then_name(const void *a, const void *b)
{
    const vocab_entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->value, y->value);
}

/* Pass 1 over the file: the categorical values of the training part, counted. */
static int count_vocabularies(const craft_trainer_options *o, const split_rule *sr, const craft_config *cfg,
                              vocab_count *vc, craft_error *err)
{
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    craft_reader *rd;
    craft_order_batch ob;
    int rc = craft_reader_open(&rd, o->input, CRAFT_FORMAT_AUTO, cfg, err);
    if (rc)
        return rc;
    if ((rc = craft_order_batch_init(&ob, cfg, 256, 1, err))) {
        craft_reader_close(rd);
        return rc;
    }
    int eof = 0;
    while (!eof && !rc) {
        craft_order_batch_reset(&ob, cfg);
        if ((rc = craft_reader_next(rd, &ob, &eof, err)))
            break;
        for (int i = 0; i < ob.in.n && !rc; i++) {
            if (in_validation(sr, ob.ids[i] ? ob.ids[i] : "", order_time(ob.ts[i])))
                continue;
            for (int j = 0; j < tm->n_features && !rc; j++) {
                if (tm->features[j].type != CRAFT_CATEGORICAL)
                    continue;
                const char *v = craft_kv_get(&ob.raw_features[i], tm->features[j].name);
                if (v && *v && strcmp(v, "null"))
                    rc = vocab_add(&vc[j], v) ? craft_fail(err, CRAFT_ENOMEM, "out of memory counting values") : 0;
            }
        }
    }
    craft_order_batch_free(&ob);
    craft_reader_close(rd);
    return rc;
}

/* Replaces each categorical feature's vocabulary with its bins-1 most frequent training values. */
static int set_vocabularies(craft_config *cfg, vocab_count *vc, craft_error *err)
{
    craft_modality *tm = &cfg->modalities[cfg->tabular];
    for (int j = 0; j < tm->n_features; j++) {
        craft_feature *f = &tm->features[j];
        if (f->type != CRAFT_CATEGORICAL)
            continue;
        if (vc[j].n > 1) /* qsort of NULL (a feature never seen with a value) is undefined */
            qsort(vc[j].v, vc[j].n, sizeof *vc[j].v, by_count_then_name);
        int n = vc[j].n < cfg->bins - 1 ? vc[j].n : cfg->bins - 1;
        char **voc = calloc(n ? n : 1, sizeof *voc);
        if (!voc)
            return craft_fail(err, CRAFT_ENOMEM, "out of memory");
        for (int i = 0; i < n; i++)
            if (!(voc[i] = strdup(vc[j].v[i].value)))
                return craft_fail(err, CRAFT_ENOMEM, "out of memory");
        for (int i = 0; i < f->n_vocab; i++)
            free(f->vocab[i]);
        free(f->vocab);
        f->vocab = voc;
        f->n_vocab = n;
    }
    return CRAFT_OK;
}

/* ------------------------------------------------------------ edges */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* E[0] the minimum, E[nb] the maximum, E[k] the k/nb quantile (linear interpolation). */
static int fit_edges(float *edges, const craft_config *cfg, const craft_batch *all, const int *rows, int n,
                     craft_error *err)
{
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    const int F = tm->n_features, nb = cfg->bins;
    float *v = malloc(sizeof(float) * (n ? n : 1));
    if (!v)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    for (int j = 0; j < F; j++) {
        float *E = edges + (size_t)j * (nb + 1);
        int c = 0;
        if (tm->features[j].type == CRAFT_NUMERIC)
            for (int i = 0; i < n; i++) {
                float x = all->tab[(size_t)rows[i] * F + j];
                if (!isnan(x))
                    v[c++] = x;
            }
        if (c == 0) { /* categorical, or never seen: a harmless ladder */
            for (int k = 0; k <= nb; k++)
                E[k] = (float)k;
            continue;
        }
        qsort(v, c, sizeof *v, cmp_float);
        for (int k = 0; k <= nb; k++) {
            double pos = (double)k / nb * (c - 1);
            int lo = (int)floor(pos);
            int hi = lo + 1 < c ? lo + 1 : lo;
            E[k] = (float)(v[lo] + (pos - lo) * (v[hi] - v[lo]));
        }
    }
    free(v);
    return CRAFT_OK;
}

/* ----------------------------------------------------------- batches */

/* Copies order src_i of src into row dst_i of dst. */
/* Class-balanced sampling: half of each batch uniform over the training orders,
 * half a uniformly chosen class and then one of its positives (so rare classes'
 * positives are over-sampled). */
typedef struct { int **pos; int *npos; int K; } class_index;

static int class_index_build(class_index *ci, const craft_batch *all, const int *rows, int n, int K)
{
    ci->K = K;
    ci->pos = calloc(K, sizeof *ci->pos);
    ci->npos = calloc(K, sizeof *ci->npos);
    if (!ci->pos || !ci->npos)
        return -1;
    for (int k = 0; k < K; k++) {
        if (!(ci->pos[k] = malloc(sizeof(int) * (n ? n : 1))))
            return -1;
        for (int i = 0; i < n; i++)
            if (all->labels[(size_t)rows[i] * K + k] == 1.0f)
                ci->pos[k][ci->npos[k]++] = rows[i];
    }
    return 0;
}

static void class_index_free(class_index *ci)
{
    for (int k = 0; ci->pos && k < ci->K; k++)
        free(ci->pos[k]);
    free(ci->pos);
    free(ci->npos);
}

/* Uniform sampling: each training order once per epoch, in a fresh seeded order. */
static void shuffle_rows(int *perm, const int *rows, int n, uint64_t *rng)
{
    memcpy(perm, rows, sizeof(int) * (size_t)n);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_unit(rng) * (i + 1));
        int x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
}

static int sample_order(const class_index *ci, const int *rows, int n, uint64_t *rng)
{
    if (rng_unit(rng) < 0.5) {
        int k = (int)(rng_unit(rng) * ci->K);
        if (ci->npos[k] > 0)
            return ci->pos[k][(int)(rng_unit(rng) * ci->npos[k])];
    }
    return rows[(int)(rng_unit(rng) * n)];
}

/* --------------------------------------------------------------- probes */

/* Probe inputs of modality m for the given rows: tabular: standardized numeric
 * values (missing 0) and one-hot bin codes of categorical features; embedding:
 * the mean token (zeros when missing). Returns the width; *X is malloc'd. */
static int probe_inputs(const craft_config *cfg, int m, const craft_batch *all, const int *rows, int n, float **X)
{
    const craft_modality *md = &cfg->modalities[m];
    int D;
    if (md->kind == CRAFT_TABULAR) {
        D = 0;
        for (int j = 0; j < md->n_features; j++)
            D += md->features[j].type == CRAFT_NUMERIC ? 1 : cfg->bins + 1;
    } else {
        D = md->dim;
    }
    float *x = calloc((size_t)n * D, sizeof(float));
    if (!(*X = x))
        return -1;
    for (int i = 0; i < n; i++) {
        float *row = x + (size_t)i * D;
        int r = rows[i];
        if (md->kind == CRAFT_TABULAR) {
            int c = 0;
            for (int j = 0; j < md->n_features; j++) {
                float v = all->tab[(size_t)r * all->F + j];
                if (md->features[j].type == CRAFT_NUMERIC)
                    row[c++] = isnan(v) ? NAN : v;
                else {
                    row[c + (isnan(v) ? 0 : (int)v)] = 1.0f;
                    c += cfg->bins + 1;
                }
            }
        } else {
            int t = all->ntok[m][r];
            const float *e = all->emb[m] + (size_t)r * md->tokens * md->dim;
            for (int k = 0; k < t; k++)
                for (int c = 0; c < D; c++)
                    row[c] += e[(size_t)k * D + c] / t;
        }
    }
    return D;
}

/* Standardizes columns by the first n_fit rows' mean and deviation; NaN becomes 0. */
static void standardize(float *X, int n_fit, int n_all, int D)
{
    for (int c = 0; c < D; c++) {
        double s = 0, ss = 0;
        int k = 0;
        for (int i = 0; i < n_fit; i++) {
            float v = X[(size_t)i * D + c];
            if (!isnan(v)) {
                s += v;
                ss += (double)v * v;
                k++;
            }
        }
        double mu = k ? s / k : 0, sd = k ? sqrt(fmax(ss / k - mu * mu, 0)) : 1;
        sd = sd > 1e-6 ? sd : 1.0;
        for (int i = 0; i < n_all; i++) {
            float *v = &X[(size_t)i * D + c];
            *v = isnan(*v) ? 0.0f : (float)((*v - mu) / sd);
        }
    }
}

/* Logistic regression (one sigmoid per class, or softmax for multiclass), full-batch
 * Adam; returns the validation macro PR-AUC. X holds the training rows then the validation rows. */
static double probe_fit(int task, const float *X, int D, const float *Ytr, int ntr, const float *Yva, int nva, int K)
{
    const int iters = 150;
    const float lr = 0.05f, l2 = 1e-4f;
    size_t nw = (size_t)K * (D + 1);
    float *W = calloc(nw, sizeof(float)), *G = calloc(nw, sizeof(float)), *m1 = calloc(nw, sizeof(float));
    float *m2 = calloc(nw, sizeof(float)), *Z = malloc(sizeof(float) * (size_t)(ntr + nva) * K);
    double ap = NAN;
    if (!W || !G || !m1 || !m2 || !Z)
        goto out;
    for (int it = 0; it < iters; it++) {
        /* Z [ntr, K] = X W^T + b */
        for (int i = 0; i < ntr; i++)
            for (int k = 0; k < K; k++)
                Z[(size_t)i * K + k] = W[(size_t)k * (D + 1) + D];
        craft_sgemm(0, 1, ntr, K, D, 1.0f, X, D, W, D + 1, 1.0f, Z, K);
        for (int i = 0; i < ntr; i++) {
            float *z = Z + (size_t)i * K;
            const float *y = Ytr + (size_t)i * K;
            if (task == CRAFT_MULTICLASS) {
                softmax_inplace(z, K);
                for (int k = 0; k < K; k++)
                    z[k] = isnan(y[0]) ? 0.0f : (z[k] - y[k]) / ntr;
            } else {
                for (int k = 0; k < K; k++)
                    z[k] = isnan(y[k]) ? 0.0f : (craft_sigmoid(z[k]) - y[k]) / ntr;
            }
        }
        memset(G, 0, sizeof(float) * nw);
        craft_sgemm(1, 0, K, D, ntr, 1.0f, Z, K, X, D, 0.0f, G, D + 1);
        for (int k = 0; k < K; k++)
            for (int i = 0; i < ntr; i++)
                G[(size_t)k * (D + 1) + D] += Z[(size_t)i * K + k];
        for (size_t p = 0; p < nw; p++) {
            float g = G[p] + l2 * W[p];
            m1[p] = 0.9f * m1[p] + 0.1f * g;
            m2[p] = 0.999f * m2[p] + 0.001f * g * g;
            float c1 = 1.0f - powf(0.9f, it + 1), c2 = 1.0f - powf(0.999f, it + 1);
            W[p] -= lr * (m1[p] / c1) / (sqrtf(m2[p] / c2) + 1e-8f);
        }
    }
    const float *Xva = X + (size_t)ntr * D;
    for (int i = 0; i < nva; i++)
        for (int k = 0; k < K; k++)
            Z[(size_t)i * K + k] = W[(size_t)k * (D + 1) + D];
    craft_sgemm(0, 1, nva, K, D, 1.0f, Xva, D, W, D + 1, 1.0f, Z, K);
    ap = craft_macro_pr_auc(Z, Yva, nva, K);
out:
    free(W);
    free(G);
    free(m1);
    free(m2);
    free(Z);
    return ap;
}

/* rho for every modality; returns the chosen backbone (or -1 when out of memory). */
static int select_backbone(const craft_config *cfg, const craft_batch *all, const int *tr, int ntr, const int *va,
                           int nva, craft_trainer_result *res)
{
    const int K = cfg->n_classes, M = cfg->n_modalities;
    /* probes on at most 20000 training orders: enough to rank modalities */
    int ptr = ntr < 20000 ? ntr : 20000;
    int *rows = malloc(sizeof(int) * (size_t)(ptr + nva));
    float *Y = malloc(sizeof(float) * (size_t)(ptr + nva) * K);
    if (!rows || !Y) {
        free(rows);
        free(Y);
        return -1;
    }
    memcpy(rows, tr, sizeof(int) * ptr);
    memcpy(rows + ptr, va, sizeof(int) * nva);
    for (int i = 0; i < ptr + nva; i++)
        memcpy(Y + (size_t)i * K, all->labels + (size_t)rows[i] * K, sizeof(float) * K);
    double lo = INFINITY, hi = -INFINITY;
    for (int m = 0; m < M; m++) {
        float *X = NULL;
        int D = probe_inputs(cfg, m, all, rows, ptr + nva, &X);
        double ap = NAN;
        if (D > 0) {
            standardize(X, ptr, ptr + nva, D);
            ap = probe_fit(cfg->task, X, D, Y, ptr, Y + (size_t)ptr * K, nva, K);
        }
        free(X);
        res->probe_ap[m] = isnan(ap) ? 0.0 : ap;
        lo = fmin(lo, res->probe_ap[m]);
        hi = fmax(hi, res->probe_ap[m]);
    }
    int best = -1;
    for (int m = 0; m < M; m++) {
        double R = hi > lo ? (res->probe_ap[m] - lo) / (hi - lo) : 1.0;
        res->rho[m] = log2((double)cfg->modalities[m].tokens) * R;
        if (best < 0 || res->rho[m] > res->rho[best] ||
            (res->rho[m] == res->rho[best] && cfg->modalities[m].tokens > cfg->modalities[best].tokens))
            best = m;
    }
    free(rows);
    free(Y);
    return best;
}

/* ----------------------------------------------------------- validation */

/* Scores the validation orders; macro PR-AUC and ROC-AUC, and, when logits_out is given,
 * their logits and labels (malloc'd, [nva, K]) for the calibration. */
static int validate_ex(const craft_model *m, const craft_batch *all, const int *va, int nva, int threads, double *ap,
                       double *roc, float **logits_out, float **labels_out, craft_error *err);

static int validate(const craft_model *m, const craft_batch *all, const int *va, int nva, int threads, double *ap,
                    double *roc, craft_error *err)
{
    return validate_ex(m, all, va, nva, threads, ap, roc, NULL, NULL, err);
}

static int validate_ex(const craft_model *m, const craft_batch *all, const int *va, int nva, int threads, double *ap,
                       double *roc, float **logits_out, float **labels_out, craft_error *err)
{
    const int K = m->cfg.n_classes, B = 512;
    craft_engine *e = NULL;
    craft_batch b;
    craft_result r;
    craft_request rq = {0};
    float *scores = malloc(sizeof(float) * (size_t)(nva ? nva : 1) * K);
    float *labels = malloc(sizeof(float) * (size_t)(nva ? nva : 1) * K);
    float *logits = logits_out ? malloc(sizeof(float) * (size_t)(nva ? nva : 1) * K) : NULL;
    memset(&r, 0, sizeof r);
    memset(&b, 0, sizeof b);
    int rc = scores && labels && (logits || !logits_out) ? CRAFT_OK : craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (!rc)
        rc = craft_batch_init(&b, &m->cfg, B, err);
    if (!rc)
        rc = craft_result_init(&r, &m->cfg, B, &rq, err);
    if (!rc)
        rc = craft_engine_new(&e, m, B, threads, err);
    for (int s = 0; !rc && s < nva; s += B) {
        int n = nva - s < B ? nva - s : B;
        for (int i = 0; i < n; i++)
            craft_batch_copy_order(&b, i, all, va[s + i], &m->cfg);
        b.n = n;
        if ((rc = craft_engine_run(e, &b, &rq, 1, &r, err)))
            break;
        memcpy(scores + (size_t)s * K, r.scores, sizeof(float) * (size_t)n * K);
        memcpy(labels + (size_t)s * K, b.labels, sizeof(float) * (size_t)n * K);
        if (logits)
            memcpy(logits + (size_t)s * K, r.logits, sizeof(float) * (size_t)n * K);
    }
    if (!rc) {
        *ap = craft_macro_pr_auc(scores, labels, nva, K);
        *roc = craft_macro_roc_auc(scores, labels, nva, K);
    }
    craft_engine_free(e);
    craft_result_free(&r);
    craft_batch_free(&b);
    free(scores);
    if (!rc && logits_out) {
        *logits_out = logits;
        *labels_out = labels;
    } else {
        free(logits);
        free(labels);
    }
    return rc;
}

/* ---------------------------------------------------------- calibration */

/* Platt scaling of one class: (a, b) minimizing the mean BCE of sigma(a y + b) over the known
 * labels, plus 1e-4 ((a-1)^2 + b^2) to keep a class with few positives near the identity;
 * Newton steps with halving. a stays positive (the class's ranking is kept). */
static void platt_fit(const float *y, const float *lab, int n, int K, int k, float *a_out, float *b_out)
{
    double a = 1.0, b = 0.0;
    int npos = 0, nneg = 0;
    for (int i = 0; i < n; i++) {
        float t = lab[(size_t)i * K + k];
        npos += t == 1.0f;
        nneg += t == 0.0f;
    }
    if (npos < 1 || nneg < 1) {
        *a_out = 1.0f;
        *b_out = 0.0f;
        return;
    }
    const double reg = 1e-4;
    double cnt = npos + nneg;
#define PLATT_LOSS(A, B, OUT)                                                   \
    do {                                                                        \
        double l_ = 0;                                                          \
        for (int i = 0; i < n; i++) {                                           \
            float t = lab[(size_t)i * K + k];                                   \
            if (isnan(t))                                                       \
                continue;                                                       \
            double z = (A) * y[(size_t)i * K + k] + (B);                        \
            l_ += (z > 0 ? z : 0) - z * t + log1p(exp(-fabs(z)));               \
        }                                                                       \
        OUT = l_ / cnt + reg * (((A) - 1) * ((A) - 1) + (B) * (B));             \
    } while (0)
    double loss;
    PLATT_LOSS(a, b, loss);
    for (int it = 0; it < 50; it++) {
        double ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0;
        for (int i = 0; i < n; i++) {
            float t = lab[(size_t)i * K + k];
            if (isnan(t))
                continue;
            double yi = y[(size_t)i * K + k], p = 1.0 / (1.0 + exp(-(a * yi + b))), w = p * (1 - p);
            ga += (p - t) * yi;
            gb += p - t;
            haa += w * yi * yi;
            hab += w * yi;
            hbb += w;
        }
        ga = ga / cnt + 2 * reg * (a - 1);
        gb = gb / cnt + 2 * reg * b;
        haa = haa / cnt + 2 * reg;
        hab /= cnt;
        hbb = hbb / cnt + 2 * reg;
        double det = haa * hbb - hab * hab;
        if (!(det > 0))
            break;
        double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
        double step = 1.0, na = a, nb = b, nl = loss;
        for (int h = 0; h < 30; h++, step *= 0.5) {
            na = a - step * da;
            nb = b - step * db;
            if (na <= 1e-3)
                continue;
            PLATT_LOSS(na, nb, nl);
            if (nl <= loss)
                break;
        }
        if (!(nl <= loss) || na <= 1e-3)
            break;
        int done = fabs(loss - nl) < 1e-10;
        a = na;
        b = nb;
        loss = nl;
        if (done)
            break;
    }
#undef PLATT_LOSS
    *a_out = (float)a;
    *b_out = (float)b;
}

/* Temperature of a multiclass head: one a for every class (b = 0), minimizing the mean
 * cross-entropy of softmax(a y); golden-section search over log a in [-4, 4]. */
static float temperature_fit(const float *y, const float *lab, int n, int K)
{
    double lo = -4, hi = 4;
    const double g = 0.6180339887498949;
    double x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
#define TEMP_LOSS(LA, OUT)                                                      \
    do {                                                                        \
        double a_ = exp(LA), l_ = 0;                                            \
        for (int i = 0; i < n; i++) {                                           \
            const float *yi = y + (size_t)i * K, *ti = lab + (size_t)i * K;     \
            double mx = -INFINITY, s_ = 0, zt = 0;                              \
            int has = 0;                                                        \
            for (int c = 0; c < K; c++)                                         \
                mx = fmax(mx, a_ * yi[c]);                                      \
            for (int c = 0; c < K; c++) {                                       \
                s_ += exp(a_ * yi[c] - mx);                                     \
                if (ti[c] == 1.0f) {                                            \
                    zt = a_ * yi[c];                                            \
                    has = 1;                                                    \
                }                                                               \
            }                                                                   \
            if (has)                                                            \
                l_ += mx + log(s_) - zt;                                        \
        }                                                                       \
        OUT = l_;                                                               \
    } while (0)
    double f1, f2;
    TEMP_LOSS(x1, f1);
    TEMP_LOSS(x2, f2);
    for (int it = 0; it < 60; it++) {
        if (f1 < f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            TEMP_LOSS(x1, f1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            TEMP_LOSS(x2, f2);
        }
    }
#undef TEMP_LOSS
    return (float)exp(0.5 * (lo + hi));
}

/* Fits the calibration of m on its validation logits and stores it in m->cfg; the
 * validation ECE before and after. */
static int calibrate_model(craft_model *m, const float *logits, const float *labels, int n, craft_trainer_result *res,
                           craft_error *err)
{
    const int K = m->cfg.n_classes, task = m->cfg.task;
    float *a = malloc(sizeof(float) * K), *b = malloc(sizeof(float) * K);
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1) * K);
    if (!a || !b || !p) {
        free(a);
        free(b);
        free(p);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory in the calibration");
    }
    if (task == CRAFT_MULTICLASS) {
        float t = temperature_fit(logits, labels, n, K);
        for (int k = 0; k < K; k++) {
            a[k] = t;
            b[k] = 0.0f;
        }
    } else {
        for (int k = 0; k < K; k++)
            platt_fit(logits, labels, n, K, k, &a[k], &b[k]);
    }
    craft_logits_to_scores(task, K, NULL, NULL, logits, p, n);
    res->val_ece_raw = craft_eval_ece(task, n, K, p, labels, CRAFT_ECE_BINS);
    craft_logits_to_scores(task, K, a, b, logits, p, n);
    res->val_ece = craft_eval_ece(task, n, K, p, labels, CRAFT_ECE_BINS);
    free(p);
    free(m->cfg.calib_a);
    free(m->cfg.calib_b);
    m->cfg.calib_a = a;
    m->cfg.calib_b = b;
    return CRAFT_OK;
}

/* The checkpoint's training metadata: options, split, rho table, metrics. */
static char *training_metadata(const craft_trainer_options *o, const craft_config *cfg, const craft_trainer_result *res,
                               int epoch, double val_ap, double val_roc, const double *loss)
{
    cJSON *root = cJSON_CreateObject(), *t = cJSON_AddObjectToObject(root, "craft.training");
    cJSON_AddStringToObject(t, "trainer", "craft train (CPU)");
    cJSON_AddNumberToObject(t, "epoch", epoch);
    cJSON_AddNumberToObject(t, "val_macro_pr_auc", val_ap);
    cJSON_AddNumberToObject(t, "val_macro_roc_auc", isnan(val_roc) ? -1 : val_roc);
    cJSON_AddNumberToObject(t, "train_loss_cls", loss[0]);
    cJSON_AddNumberToObject(t, "train_loss_supcma", loss[1]);
    cJSON_AddNumberToObject(t, "train_loss_total", loss[2]);
    cJSON_AddNumberToObject(t, "n_train", res->n_train);
    cJSON_AddNumberToObject(t, "n_val", res->n_val);
    cJSON_AddNumberToObject(t, "samples_per_s", res->samples_per_s);
    cJSON *opt = cJSON_AddObjectToObject(t, "options");
    cJSON_AddNumberToObject(opt, "batch", o->batch);
    cJSON_AddNumberToObject(opt, "lr", o->lr);
    cJSON_AddNumberToObject(opt, "lambda", o->supcma ? o->lambda : 0);
    cJSON_AddNumberToObject(opt, "tau", o->tau);
    cJSON_AddBoolToObject(opt, "supcma", o->supcma);
    cJSON_AddBoolToObject(opt, "uniform_tau", o->uniform_tau);
    cJSON_AddNumberToObject(opt, "val_fraction", o->val_fraction);
    cJSON_AddNumberToObject(opt, "seed", (double)o->seed);
    cJSON_AddStringToObject(opt, "sampler", o->sampler == CRAFT_SAMPLER_BALANCED ? "balanced" : "uniform");
    cJSON_AddStringToObject(opt, "tab_encoding", cfg->tab_encoding == CRAFT_TAB_PIECEWISE ? "piecewise" : "bins");
    cJSON_AddBoolToObject(opt, "wide_head", cfg->wide_head);
    cJSON_AddNumberToObject(opt, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(opt, "dropout", o->dropout);
    cJSON_AddStringToObject(t, "split", o->val_input ? "file" : res->split_used == CRAFT_SPLIT_TIME ? "time" : "hash");
    if (res->split_used == CRAFT_SPLIT_TIME)
        cJSON_AddNumberToObject(t, "val_from_time", res->val_from);
    if (!isnan(res->val_ece))
        cJSON_AddNumberToObject(t, "val_ece_uncalibrated", res->val_ece_raw), cJSON_AddNumberToObject(t, "val_ece", res->val_ece);
    cJSON *rho = cJSON_AddArrayToObject(t, "rho");
    for (int m = 0; m < cfg->n_modalities; m++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "modality", cfg->modalities[m].name);
        cJSON_AddNumberToObject(r, "tokens", cfg->modalities[m].tokens);
        cJSON_AddNumberToObject(r, "probe_val_pr_auc", res->probe_ap[m]);
        cJSON_AddNumberToObject(r, "rho", res->rho[m]);
        cJSON_AddItemToArray(rho, r);
    }
    cJSON_AddStringToObject(t, "backbone", cfg->modalities[cfg->backbone].name);
    /* when this checkpoint was written, in Unix seconds (read by the store and craft report) */
    char when[32];
    snprintf(when, sizeof when, "%lld", (long long)time(NULL));
    cJSON_AddStringToObject(root, "craft.trained", when);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* ------------------------------------------------------------- the run */

int craft_trainer_run(const craft_trainer_options *o, craft_trainer_result *res, craft_error *err)
{
    memset(res, 0, sizeof *res);
    if (o->batch < 2 || o->epochs < 1 || !(o->val_fraction > 0.0f && o->val_fraction < 1.0f) || !(o->lr > 0.0f))
        return craft_fail(err, CRAFT_EINPUT, "training options out of range (batch >= 2, epochs >= 1, "
                                             "0 < val-fraction < 1, lr > 0)");
    const double t_start = craft_now();
    craft_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = craft_config_parse(&cfg, o->config_json, strlen(o->config_json), err);
    if (rc) {
        craft_error_prefix(err, "model config");
        return rc;
    }
    if (cfg.tabular < 0) {
        craft_config_free(&cfg);
        return craft_fail(err, CRAFT_EUNSUPPORTED, "the trainer needs a tabular modality in the model config");
    }
    {
        /* the options; else the config's own "tab_encoding" / "wide_head" when it names them; else
         * the trainer's recipe: the piecewise-linear encoding and the wide head */
        cJSON *root = cJSON_Parse(o->config_json);
        if (o->tab_encoding >= 0)
            cfg.tab_encoding = o->tab_encoding;
        else if (!cJSON_GetObjectItemCaseSensitive(root, "tab_encoding"))
            cfg.tab_encoding = CRAFT_TAB_PIECEWISE;
        if (o->wide_head >= 0)
            cfg.wide_head = o->wide_head;
        else if (!cJSON_GetObjectItemCaseSensitive(root, "wide_head"))
            cfg.wide_head = 1;
        cJSON_Delete(root);
    }
    /* a calibration in the given config belongs to another model */
    free(cfg.calib_a);
    free(cfg.calib_b);
    cfg.calib_a = cfg.calib_b = NULL;
    res->val_ece_raw = res->val_ece = NAN;
    split_rule sr = {0};
    if ((rc = plan_split(o, &cfg, &sr, o->log, err))) {
        craft_config_free(&cfg);
        return rc;
    }
    res->split_used = sr.mode;
    res->val_from = sr.cutoff;
    craft_eval_set all, vall;
    craft_eval_set_init(&all, &cfg);
    craft_eval_set_init(&vall, &cfg);
    craft_model *m = NULL;
    craft_train *tr = NULL;
    craft_adamw opt;
    memset(&opt, 0, sizeof opt);
    craft_batch batch;
    memset(&batch, 0, sizeof batch);
    class_index ci = {0};
    int *trows = NULL, *vrows = NULL, *perm = NULL;
    float *val_logits = NULL, *val_labels = NULL;
    float *grads = NULL, *best = NULL;
    const craft_modality *tm = &cfg.modalities[cfg.tabular];

    /* 1-2: vocabularies from the training part, then every order against them */
    vocab_count *vc = calloc(tm->n_features, sizeof *vc);
    if (!vc) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = count_vocabularies(o, &sr, &cfg, vc, err)) || (rc = set_vocabularies(&cfg, vc, err)))
        goto out;
    craft_eval_set_free(&all);
    craft_eval_set_init(&all, &cfg);
    if ((rc = craft_eval_set_load(&all, &cfg, o->input, CRAFT_FORMAT_AUTO, err)))
        goto out;
    const int n_input = all.b.n;
    if (o->val_input) {
        /* the validation file's orders follow the input's; the graph encoder sees the
         * validation file on its own, as `craft eval` and `craft score` would */
        craft_eval_set_free(&vall);
        if ((rc = craft_eval_set_load(&vall, &cfg, o->val_input, CRAFT_FORMAT_AUTO, err)) ||
            (rc = craft_eval_set_extend(&all, &vall, err)))
            goto out;
        craft_eval_set_free(&vall);
    }
    const int K = cfg.n_classes, N = all.b.n;
    trows = malloc(sizeof(int) * (N ? N : 1));
    vrows = malloc(sizeof(int) * (N ? N : 1));
    if (!trows || !vrows) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < N; i++) {
        int known = 0;
        for (int k = 0; k < K; k++)
            known += !isnan(all.b.labels[(size_t)i * K + k]);
        if (!known)
            continue; /* unlabelled orders take no part */
        if (i >= n_input || in_validation(&sr, all.ids[i], all.t[i]))
            vrows[res->n_val++] = i;
        else
            trows[res->n_train++] = i;
    }
    if (o->log) {
        if (o->val_input) {
            fprintf(o->log, "split: validation orders from %s\n", o->val_input);
        } else if (sr.mode == CRAFT_SPLIT_TIME) {
            time_t c = (time_t)sr.cutoff;
            struct tm tmv;
            char when[40] = "?";
            if (gmtime_r(&c, &tmv))
                strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
            fprintf(o->log, "split: by time, validation = the orders at or after %s (the latest %.0f%%)\n", when,
                    100.0 * o->val_fraction);
        } else if (o->split == CRAFT_SPLIT_HASH) {
            fprintf(o->log, "split: by a hash of the order id (--split hash)\n");
        }
    }
    if (res->n_train < 2 || res->n_val < 1) {
        rc = craft_fail(err, CRAFT_EINPUT, "%s: %d labelled training and %d validation orders; training needs more",
                        o->input, res->n_train, res->n_val);
        goto out;
    }
    /* prevalence of the training part */
    for (int k = 0; k < K; k++) {
        double pos = 0, known = 0;
        for (int i = 0; i < res->n_train; i++) {
            float y = all.b.labels[(size_t)trows[i] * K + k];
            pos += y == 1.0f;
            known += !isnan(y);
        }
        cfg.prevalence[k] = known ? (float)(pos / known) : 0.0f;
    }
    /* 3: backbone by rho */
    res->n_modalities = cfg.n_modalities;
    int bb = select_backbone(&cfg, &all.b, trows, res->n_train, vrows, res->n_val, res);
    if (bb < 0) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory in the modality probes");
        goto out;
    }
    if (cfg.tabular >= 0 && bb != cfg.tabular && craft_encoders_would_fill(&cfg, bb)) {
        /* The built-in encoders never fill the backbone (it must be given), so a model whose
         * backbone they would fill could only score orders that carry that embedding: such a
         * modality stays an auxiliary, and the tabular modality is the backbone. */
        if (o->log)
            fprintf(o->log, "backbone: \"%s\" has the highest rho, but the built-in encoders fill it and never fill "
                            "a backbone: \"%s\" is the backbone instead\n",
                    cfg.modalities[bb].name, cfg.modalities[cfg.tabular].name);
        bb = cfg.tabular;
    }
    cfg.backbone = bb;
    res->backbone = bb;
    if (o->log) {
        fprintf(o->log, "backbone selection (rho = log2(tokens) x normalized probe PR-AUC):\n");
        for (int mm = 0; mm < cfg.n_modalities; mm++)
            fprintf(o->log, "  %-10s tokens %4d  probe val PR-AUC %.4f  rho %.4f%s\n", cfg.modalities[mm].name,
                    cfg.modalities[mm].tokens, res->probe_ap[mm], res->rho[mm], mm == bb ? "  <- backbone" : "");
        fprintf(o->log, "%d training and %d validation orders\n", res->n_train, res->n_val);
        fflush(o->log);
    }
    if (cfg.modalities[bb].kind == CRAFT_EMBEDDING)
        for (int i = 0; i < res->n_train + res->n_val; i++) {
            int r = i < res->n_train ? trows[i] : vrows[i - res->n_train];
            if (all.b.ntok[bb][r] < 1) {
                rc = craft_fail(err, CRAFT_EINPUT, "order \"%s\" has no \"%s\" input, the selected backbone",
                                all.ids[r], cfg.modalities[bb].name);
                goto out;
            }
        }
    /* 4: the model */
    if ((rc = craft_model_new(&m, &cfg, o->supcma, o->seed, err)))
        goto out;
    if ((rc = fit_edges(m->w.embed[cfg.tabular].edges, &m->cfg, &all.b, trows, res->n_train, err)))
        goto out;
    const int B = o->batch < res->n_train ? o->batch : res->n_train;
    if ((rc = craft_train_new(&tr, m, B, o->threads, err)) || (rc = craft_adamw_init(&opt, m, o->weight_decay, err)) ||
        (rc = craft_batch_init(&batch, &m->cfg, B, err)))
        goto out;
    grads = malloc(sizeof(float) * m->layout.total);
    best = malloc(sizeof(float) * m->layout.total);
    perm = malloc(sizeof(int) * (size_t)res->n_train);
    if (!grads || !best || !perm || class_index_build(&ci, &all.b, trows, res->n_train, K)) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        goto out;
    }
    const long steps_per_epoch = (res->n_train + B - 1) / B;
    long total = steps_per_epoch * o->epochs;
    const long warmup = steps_per_epoch < total / 10 ? steps_per_epoch : (total / 10 > 0 ? total / 10 : 1);
    craft_train_opts to = craft_train_defaults();
    to.lambda = o->lambda;
    to.tau_base = o->tau;
    to.uniform_tau = o->uniform_tau;
    to.supcma = o->supcma;
    to.dropout = o->dropout;
    to.modality_dropout = o->modality_dropout;
    uint64_t rng = mix64(o->seed ^ 0x7a11ull);
    long step = 0;
    int since_best = 0, saved = 0;
    double best_loss[3] = {0, 0, 0};
    double train_time = 0.0, samples = 0.0;
    res->best_val_ap = -1.0;
    for (int epoch = 1; epoch <= o->epochs; epoch++) {
        double sum[3] = {0, 0, 0};
        long nsteps = 0;
        double te = craft_now();
        if (o->sampler == CRAFT_SAMPLER_UNIFORM)
            shuffle_rows(perm, trows, res->n_train, &rng);
        for (long s = 0; s < steps_per_epoch; s++, step++) {
            if ((o->cancel && *o->cancel) || (o->time_budget > 0 && craft_now() - t_start > o->time_budget))
                break;
            for (int i = 0; i < B; i++)
                craft_batch_copy_order(&batch, i, &all.b,
                           o->sampler == CRAFT_SAMPLER_UNIFORM ? perm[(s * B + i) % res->n_train]
                                                               : sample_order(&ci, trows, res->n_train, &rng),
                           &m->cfg);
            batch.n = B;
            to.seed = mix64(o->seed * 1000003ull + (uint64_t)step);
            craft_losses ls;
            if ((rc = craft_train_forward(tr, &batch, &to, &ls, err)) || (rc = craft_train_backward(tr, grads, err)))
                goto out;
            craft_clip_grad_norm(grads, m->layout.total, 1.0);
            craft_adamw_step(&opt, m->params, grads, craft_lr_at(step, warmup, total, o->lr));
            sum[0] += ls.cls;
            sum[1] += ls.supcma;
            sum[2] += ls.total;
            nsteps++;
            if (o->live && isatty(2))
                fprintf(stderr, "\repoch %d: step %ld/%ld  loss %.4f   ", epoch, s + 1, steps_per_epoch, sum[2] / nsteps);
        }
        double dt = craft_now() - te;
        if (o->time_budget > 0 && nsteps == steps_per_epoch) {
            /* Under a time budget the cosine schedule ends where the budget will: after each
             * epoch, the epochs still to come are those that fit in the time left at this epoch's
             * pace (a shared machine speeds up and slows down), so the learning rate has decayed
             * when time runs out instead of being cut at its height. */
            double per_epoch = dt * 1.1 + 1.0, left = o->time_budget - (craft_now() - t_start);
            long fit = (long)(left / per_epoch), planned = step + fit * steps_per_epoch;
            if (planned > steps_per_epoch * o->epochs)
                planned = steps_per_epoch * o->epochs;
            if (planned != total) {
                total = planned > step ? planned : step;
                if (o->log)
                    fprintf(o->log, "schedule: about %ld more epochs fit in the time budget; the learning rate decays "
                                    "over them\n", (total - step) / steps_per_epoch);
            }
        }
        if (o->live && isatty(2))
            fprintf(stderr, "\r%60s\r", "");
        if (nsteps == 0)
            break;
        train_time += dt;
        samples += (double)nsteps * B;
        res->samples_per_s = samples / train_time;
        res->epochs_run = epoch;
        double ap = NAN, roc = NAN;
        if ((rc = validate(m, &all.b, vrows, res->n_val, o->threads, &ap, &roc, err)))
            goto out;
        for (int k = 0; k < 3; k++)
            sum[k] /= nsteps;
        int improved = !isnan(ap) && ap > res->best_val_ap;
        double left = (o->epochs - epoch) * (craft_now() - t_start) / epoch;
        if (o->time_budget > 0 && left > o->time_budget - (craft_now() - t_start))
            left = fmax(0.0, o->time_budget - (craft_now() - t_start));
        if (o->log) {
            fprintf(o->log, "epoch %2d  loss %.4f (cls %.4f, supcma %.4f)  val PR-AUC %.4f%s  %.1f samples/s  ~%.0fs left\n",
                    epoch, sum[2], sum[0], sum[1], ap, improved ? " *" : "", nsteps * B / dt, left);
            fflush(o->log);
        }
        if (improved) {
            res->best_val_ap = ap;
            res->best_val_roc = roc;
            res->best_epoch = epoch;
            since_best = 0;
            memcpy(best, m->params, sizeof(float) * m->layout.total);
            memcpy(best_loss, sum, sizeof best_loss);
            char *meta = training_metadata(o, &m->cfg, res, epoch, ap, roc, sum);
            rc = craft_model_save(m, o->output, meta, err);
            free(meta);
            if (rc)
                goto out;
            saved = 1;
        } else if (++since_best >= o->patience) {
            break;
        }
        if (nsteps < steps_per_epoch)
            break; /* stopped inside the epoch: cancelled or out of time */
        if (step >= total)
            break; /* the schedule planned for the time budget has ended */
    }
    res->cancelled = o->cancel && *o->cancel;
    if (!saved) {
        rc = craft_fail(err, CRAFT_EINPUT, "no epoch finished (time budget or cancel); nothing was saved");
    } else if (o->calibrate) {
        /* the best epoch's parameters, calibrated on the validation orders, written again */
        memcpy(m->params, best, sizeof(float) * m->layout.total);
        double ap, roc;
        if ((rc = validate_ex(m, &all.b, vrows, res->n_val, o->threads, &ap, &roc, &val_logits, &val_labels, err)) ||
            (rc = calibrate_model(m, val_logits, val_labels, res->n_val, res, err)))
            goto out;
        char *meta = training_metadata(o, &m->cfg, res, res->best_epoch, res->best_val_ap, res->best_val_roc,
                                       best_loss);
        rc = meta ? craft_model_save(m, o->output, meta, err) : craft_fail(err, CRAFT_ENOMEM, "out of memory");
        free(meta);
        if (!rc && o->log)
            fprintf(o->log, "calibration (per class, on the validation orders): ECE %.4f -> %.4f\n",
                    res->val_ece_raw, res->val_ece);
    }
out:
    res->seconds = craft_now() - t_start;
    for (int j = 0; vc && j < tm->n_features; j++) {
        for (int i = 0; i < vc[j].n; i++)
            free(vc[j].v[i].value);
        free(vc[j].v);
    }
    free(vc);
    class_index_free(&ci);
    free(grads);
    free(best);
    free(trows);
    free(vrows);
    free(perm);
    free(val_logits);
    free(val_labels);
    craft_eval_set_free(&vall);
    craft_batch_free(&batch);
    craft_adamw_free(&opt);
    craft_train_free(tr);
    craft_model_free(m);
    craft_eval_set_free(&all);
    craft_config_free(&cfg);
    return rc;
}

/* ---------------------------------------------------------------- bench */

int craft_trainer_bench(const craft_config *cfg, int batch, int threads, int steps, int supcma, double *samples_per_s,
                        double *seconds_per_step, craft_error *err)
{
    craft_model *m = NULL;
    craft_train *tr = NULL;
    craft_adamw opt;
    craft_batch b;
    memset(&opt, 0, sizeof opt);
    memset(&b, 0, sizeof b);
    float *grads = NULL;
    int rc = craft_model_new(&m, cfg, supcma, 42, err);
    if (!rc)
        rc = craft_train_new(&tr, m, batch, threads, err);
    if (!rc)
        rc = craft_adamw_init(&opt, m, 0.01f, err);
    if (!rc)
        rc = craft_batch_init(&b, &m->cfg, batch, err);
    if (!rc && !(grads = malloc(sizeof(float) * m->layout.total)))
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (rc)
        goto out;
    /* random orders: 5% missing values, every auxiliary present, about 10% positives */
    uint64_t s = 99;
    const craft_modality *tmod = cfg->tabular >= 0 ? &cfg->modalities[cfg->tabular] : NULL;
    b.n = batch;
    for (int i = 0; i < batch; i++) {
        for (int j = 0; j < b.F; j++) {
            float *x = &b.tab[(size_t)i * b.F + j];
            if (rng_unit(&s) < 0.05)
                *x = NAN;
            else if (tmod->features[j].type == CRAFT_CATEGORICAL)
                *x = (float)(1 + (int)(rng_unit(&s) * cfg->bins) % cfg->bins);
            else
                *x = (float)(rng_unit(&s) * 6.0 - 3.0);
        }
        for (int mm = 0; mm < cfg->n_modalities; mm++) {
            const craft_modality *md = &cfg->modalities[mm];
            if (md->kind != CRAFT_EMBEDDING)
                continue;
            b.ntok[mm][i] = md->tokens;
            for (size_t c = 0; c < (size_t)md->tokens * md->dim; c++)
                b.emb[mm][(size_t)i * md->tokens * md->dim + c] = (float)(rng_unit(&s) * 2.0 - 1.0);
        }
        for (int k = 0; k < cfg->n_classes; k++)
            b.labels[(size_t)i * cfg->n_classes + k] =
                cfg->task == CRAFT_MULTICLASS ? (k == i % cfg->n_classes) : rng_unit(&s) < 0.1;
    }
    craft_train_opts to = craft_train_defaults();
    to.supcma = supcma;
    double t0 = 0.0;
    for (int st = 0; st <= steps; st++) {
        if (st == 1)
            t0 = craft_now(); /* the first step warms caches and pages */
        craft_losses ls;
        to.seed = (uint64_t)st + 1;
        if ((rc = craft_train_forward(tr, &b, &to, &ls, err)) || (rc = craft_train_backward(tr, grads, err)))
            goto out;
        craft_clip_grad_norm(grads, m->layout.total, 1.0);
        craft_adamw_step(&opt, m->params, grads, 1e-4f);
    }
    double dt = craft_now() - t0;
    *seconds_per_step = dt / steps;
    *samples_per_s = (double)steps * batch / dt;
out:
    free(grads);
    craft_batch_free(&b);
    craft_adamw_free(&opt);
    craft_train_free(tr);
    craft_model_free(m);
    return rc;
}

/* ----------------------------------------------------------------- auto */

/* The recipes `craft train --auto` tries: sizes and optimization around the defaults. */
typedef struct {
    const char *name;
    int d_model, heads, emb_dim;
    float lr, weight_decay, dropout;
    int supcma;
} auto_recipe;

static const auto_recipe auto_recipes[] = {
    {"d 64, lr 2e-3", 64, 4, 16, 2e-3f, 0.01f, 0.2f, 1},
    {"d 32, lr 3e-3", 32, 4, 8, 3e-3f, 0.01f, 0.2f, 1},
    {"d 64, lr 2e-3, no SupCMA", 64, 4, 16, 2e-3f, 0.01f, 0.2f, 0},
    {"d 64, lr 1e-3, weight decay 0.05, dropout 0.3", 64, 4, 16, 1e-3f, 0.05f, 0.3f, 1},
};
#define N_AUTO (int)(sizeof auto_recipes / sizeof *auto_recipes)

static char *recipe_config(const char *json, const auto_recipe *r)
{
    cJSON *root = cJSON_Parse(json);
    if (!root)
        return NULL;
    cJSON_ReplaceItemInObjectCaseSensitive(root, "d_model", cJSON_CreateNumber(r->d_model));
    cJSON_ReplaceItemInObjectCaseSensitive(root, "heads", cJSON_CreateNumber(r->heads));
    cJSON_ReplaceItemInObjectCaseSensitive(root, "emb_dim", cJSON_CreateNumber(r->emb_dim));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

int craft_trainer_auto(const craft_trainer_options *o, craft_trainer_result *res, craft_error *err)
{
    if (!(o->time_budget > 0))
        return craft_fail(err, CRAFT_EINPUT, "--auto needs --time-budget SECONDS (the search shares it)");
    const double t0 = craft_now();
    size_t plen = strlen(o->output) + 32;
    char *paths[N_AUTO + 1];
    double ap[N_AUTO];
    int rc = CRAFT_OK, best = -1;
    memset(paths, 0, sizeof paths);
    for (int i = 0; i <= N_AUTO; i++)
        if (!(paths[i] = malloc(plen)))
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        else
            snprintf(paths[i], plen, "%s.auto-%d", o->output, i);
    if (o->log && !rc)
        fprintf(o->log, "auto: %d recipes for %.0f s each (40%% of the budget), then the best one again with the rest\n",
                N_AUTO, 0.4 * o->time_budget / N_AUTO);
    for (int i = 0; !rc && i < N_AUTO; i++) {
        const auto_recipe *r = &auto_recipes[i];
        craft_trainer_options c = *o;
        char *json = recipe_config(o->config_json, r);
        if (!json) {
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
            break;
        }
        c.config_json = json;
        c.output = paths[i];
        c.lr = r->lr;
        c.weight_decay = r->weight_decay;
        c.dropout = r->dropout;
        c.supcma = r->supcma;
        c.time_budget = 0.4 * o->time_budget / N_AUTO;
        c.log = NULL;
        craft_trainer_result cr;
        rc = craft_trainer_run(&c, &cr, err);
        free(json);
        if (rc)
            break;
        ap[i] = cr.best_val_ap;
        if (o->log)
            fprintf(o->log, "auto: %-48s val PR-AUC %.4f (best epoch %d of %d, %.0f s)\n", r->name, ap[i],
                    cr.best_epoch, cr.epochs_run, cr.seconds);
        if (best < 0 || ap[i] > ap[best])
            best = i;
        if (o->cancel && *o->cancel)
            break;
    }
    if (!rc && best >= 0 && !(o->cancel && *o->cancel)) {
        const auto_recipe *r = &auto_recipes[best];
        craft_trainer_options c = *o;
        char *json = recipe_config(o->config_json, r);
        if (!json)
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        c.config_json = json;
        c.output = paths[N_AUTO];
        c.lr = r->lr;
        c.weight_decay = r->weight_decay;
        c.dropout = r->dropout;
        c.supcma = r->supcma;
        c.time_budget = o->time_budget - (craft_now() - t0);
        if (!rc && c.time_budget < 10)
            c.time_budget = 10;
        if (o->log && !rc)
            fprintf(o->log, "auto: training \"%s\" again with the remaining %.0f s\n", r->name, c.time_budget);
        if (!rc)
            rc = craft_trainer_run(&c, res, err);
        free(json);
        if (!rc) {
            /* the longer run, unless the short one validated better */
            int keep = res->best_val_ap >= ap[best] ? N_AUTO : best;
            if (o->log)
                fprintf(o->log, "auto: kept \"%s\" from the %s run (val PR-AUC %.4f)\n", r->name,
                        keep == N_AUTO ? "long" : "short", keep == N_AUTO ? res->best_val_ap : ap[best]);
            if (keep != N_AUTO)
                res->best_val_ap = ap[best];
            if (rename(paths[keep], o->output))
                rc = craft_fail(err, CRAFT_EIO, "cannot move %s to %s", paths[keep], o->output);
        }
    } else if (!rc) {
        rc = craft_fail(err, CRAFT_ECANCELLED, "the search was cancelled before a model was chosen");
    }
    for (int i = 0; i <= N_AUTO; i++)
        if (paths[i]) {
            unlink(paths[i]);
            free(paths[i]);
        }
    res->seconds = craft_now() - t0;
    return rc;
}
