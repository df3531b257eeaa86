/* subsets.c: the modality-subset table (one engine pass per batch serves every
 * subset) and robustness to Gaussian noise per modality. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "craft_hash.h"
#include "eval.h"
#include "metrics.h"

#define EVAL_BATCH 256

/* "full", "without txt", "tab + graph", "backbone only". */
static char *subset_name(const craft_config *cfg, uint32_t off, int n_aux)
{
    char buf[512] = "";
    int n_off = __builtin_popcount(off);
    if (n_off == 0) {
        snprintf(buf, sizeof buf, "full");
    } else if (n_off == n_aux) {
        snprintf(buf, sizeof buf, "backbone only (%s)", cfg->modalities[cfg->backbone].name);
    } else if (n_off == 1) {
        snprintf(buf, sizeof buf, "without %s", cfg->modalities[__builtin_ctz(off)].name);
    } else {
        for (int m = 0; m < cfg->n_modalities; m++)
            if (!(off >> m & 1u)) {
                size_t len = strlen(buf);
                snprintf(buf + len, sizeof buf - len, "%s%s", len ? " + " : "", cfg->modalities[m].name);
            }
    }
    return strdup(buf);
}

static int by_popcount(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int px = __builtin_popcount(x), py = __builtin_popcount(y);
    return px != py ? px - py : (x > y) - (x < y);
}

void craft_eval_subsets_free(craft_eval_subsets *t)
{
    if (t->name)
        for (int i = 0; i < t->n; i++)
            free(t->name[i]);
    free(t->name);
    free(t->off_mask);
    free(t->macro_ap);
    memset(t, 0, sizeof *t);
}

int craft_eval_subsets_run(craft_eval_subsets *out, const craft_model *m, const craft_eval_set *s, int threads,
                           float **full_scores, craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    const int K = cfg->n_classes, n = s->b.n;
    memset(out, 0, sizeof *out);
    int aux[CRAFT_MAX_MODALITIES], n_aux = 0;
    for (int i = 0; i < cfg->n_modalities; i++)
        if (i != cfg->backbone)
            aux[n_aux++] = i;
    out->n = 1 << n_aux;
    out->off_mask = calloc((size_t)out->n, sizeof(uint32_t));
    out->name = calloc((size_t)out->n, sizeof(char *));
    out->macro_ap = calloc((size_t)out->n * 3, sizeof(double));
    craft_request *req = calloc((size_t)out->n, sizeof *req);
    float **scores = calloc((size_t)out->n, sizeof *scores);
    int rc = CRAFT_OK;
    if (!out->off_mask || !out->name || !out->macro_ap || !req || !scores)
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for %d subsets", out->n);
    if (!rc) {
        out->macro_roc = out->macro_ap + out->n;
        out->accuracy = out->macro_ap + 2 * out->n;
        /* subset bits -> off masks: most modalities first, as Table 7 reads */
        for (int sub = 0; sub < out->n; sub++)
            for (int a = 0; a < n_aux; a++)
                if (sub >> a & 1)
                    out->off_mask[sub] |= 1u << aux[a];
        qsort(out->off_mask, (size_t)out->n, sizeof(uint32_t), by_popcount);
        for (int i = 0; !rc && i < out->n; i++) {
            req[i].off_mask = out->off_mask[i];
            out->name[i] = subset_name(cfg, out->off_mask[i], n_aux);
            scores[i] = malloc(sizeof(float) * (size_t)n * K);
            if (!out->name[i] || !scores[i])
                rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for the scores of %d orders", n);
        }
    }
    if (!rc)
        rc = craft_eval_predict(m, s, req, out->n, scores, threads, err);
    for (int i = 0; !rc && i < out->n; i++) {
        out->macro_ap[i] = craft_macro_pr_auc(scores[i], s->b.labels, n, K);
        out->macro_roc[i] = craft_macro_roc_auc(scores[i], s->b.labels, n, K);
        out->accuracy[i] = cfg->task == CRAFT_MULTICLASS ? craft_eval_accuracy(n, K, scores[i], s->b.labels) : NAN;
    }
    if (!rc && full_scores) { /* off_mask 0 sorts first */
        *full_scores = scores[0];
        scores[0] = NULL;
    }
    for (int i = 0; scores && i < out->n; i++)
        free(scores[i]);
    free(scores);
    free(req);
    if (rc)
        craft_eval_subsets_free(out);
    return rc;
}

/* ---------------------------------------------------------------- noise */

typedef struct {
    uint64_t state;
    int has_spare;
    double spare;
} gauss_rng;

/* Standard normal by Box-Muller (both values used). */
static double next_gauss(gauss_rng *g)
{
    if (g->has_spare) {
        g->has_spare = 0;
        return g->spare;
    }
    double u1 = ((craft_splitmix64(&g->state) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
    double u2 = (craft_splitmix64(&g->state) >> 11) * (1.0 / 9007199254740992.0);
    double r = sqrt(-2.0 * log(u1));
    g->spare = r * sin(2 * M_PI * u2);
    g->has_spare = 1;
    return r * cos(2 * M_PI * u2);
}

/* Mean and standard deviation of the present values: per numeric feature for
 * the tabular modality (features have their own units), over every element of
 * the valid tokens for an embedding modality. */
typedef struct {
    double *mean, *sd; /* tabular: [F]; embedding: [1] */
} modality_stats;

static void stats_of(const craft_config *cfg, const craft_eval_set *s, int m, modality_stats *st)
{
    const craft_modality *mod = &cfg->modalities[m];
    const craft_batch *b = &s->b;
    if (mod->kind == CRAFT_TABULAR) {
        for (int j = 0; j < b->F; j++) {
            double sum = 0, sq = 0;
            long cnt = 0;
            for (int i = 0; i < b->n; i++) {
                float x = b->tab[(size_t)i * b->F + j];
                if (!isnan(x))
                    sum += x, sq += (double)x * x, cnt++;
            }
            st->mean[j] = cnt ? sum / cnt : 0;
            st->sd[j] = cnt ? sqrt(fmax(sq / cnt - st->mean[j] * st->mean[j], 0)) : 0;
        }
        return;
    }
    size_t w = (size_t)mod->tokens * mod->dim;
    double sum = 0, sq = 0;
    long cnt = 0;
    for (int i = 0; i < b->n; i++)
        for (size_t e = 0; e < (size_t)b->ntok[m][i] * mod->dim; e++) {
            float x = b->emb[m][i * w + e];
            sum += x, sq += (double)x * x, cnt++;
        }
    st->mean[0] = cnt ? sum / cnt : 0;
    st->sd[0] = cnt ? sqrt(fmax(sq / cnt - st->mean[0] * st->mean[0], 0)) : 0;
}

/* Adds factor * N(mean, sd^2) to the present values of modality m of order i
 * (row r of batch b). The generator is seeded by (seed, setting, level, order)
 * so the noise never depends on batching or threads. */
static void add_noise(const craft_config *cfg, craft_batch *b, int r, int m, const modality_stats *st, double factor,
                      gauss_rng *g)
{
    const craft_modality *mod = &cfg->modalities[m];
    if (mod->kind == CRAFT_TABULAR) {
        for (int j = 0; j < b->F; j++) {
            float *x = &b->tab[(size_t)r * b->F + j];
            if (mod->features[j].type != CRAFT_NUMERIC || isnan(*x))
                continue;
            *x = (float)(*x + factor * (st->mean[j] + st->sd[j] * next_gauss(g)));
        }
        return;
    }
    size_t w = (size_t)mod->tokens * mod->dim;
    for (size_t e = 0; e < (size_t)b->ntok[m][r] * mod->dim; e++) {
        float *x = &b->emb[m][r * w + e];
        *x = (float)(*x + factor * (st->mean[0] + st->sd[0] * next_gauss(g)));
    }
}

void craft_eval_noise_free(craft_eval_noise *t)
{
    if (t->name)
        for (int i = 0; i < t->n; i++)
            free(t->name[i]);
    free(t->name);
    free(t->value);
    memset(t, 0, sizeof *t);
}

/* Copies orders [start, start+n) of s into rows 0..n-1 of scratch. */
static void copy_slice(const craft_config *cfg, craft_batch *dst, const craft_eval_set *s, int start, int n)
{
    craft_batch v;
    craft_eval_set_view(s, start, n, &v);
    if (v.F)
        memcpy(dst->tab, v.tab, sizeof(float) * (size_t)n * v.F);
    for (int m = 0; m < cfg->n_modalities; m++)
        if (v.emb[m]) {
            size_t w = (size_t)cfg->modalities[m].tokens * cfg->modalities[m].dim;
            memcpy(dst->ntok[m], v.ntok[m], sizeof(int) * (size_t)n);
            memcpy(dst->emb[m], v.emb[m], sizeof(float) * n * w);
        }
    memcpy(dst->labels, v.labels, sizeof(float) * (size_t)n * cfg->n_classes);
    dst->n = n;
    dst->has_labels = v.has_labels;
}

int craft_eval_noise_run(craft_eval_noise *out, const craft_model *m, const craft_eval_set *s, uint64_t seed,
                         int threads, craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    const int M = cfg->n_modalities, K = cfg->n_classes, n = s->b.n;
    const int cap = n < EVAL_BATCH ? n : EVAL_BATCH;
    memset(out, 0, sizeof *out);
    out->seed = seed;
    out->metric = cfg->task == CRAFT_MULTICLASS ? "accuracy" : "macro_pr_auc";
    for (int l = 0; l < CRAFT_NOISE_LEVELS; l++)
        out->factor[l] = l / 10.0;
    out->n = M + 1;
    out->name = calloc((size_t)out->n, sizeof(char *));
    out->value = calloc((size_t)out->n * CRAFT_NOISE_LEVELS, sizeof(double));
    modality_stats st[CRAFT_MAX_MODALITIES];
    memset(st, 0, sizeof st);
    int F = s->b.F > 0 ? s->b.F : 1;
    float *scores = malloc(sizeof(float) * (size_t)n * K);
    craft_batch scratch;
    craft_result res;
    craft_engine *eng = NULL;
    memset(&scratch, 0, sizeof scratch);
    memset(&res, 0, sizeof res);
    craft_request req = {0};
    int rc = !out->name || !out->value || !scores ? craft_fail(err, CRAFT_ENOMEM, "out of memory for noise runs")
                                                   : CRAFT_OK;
    for (int i = 0; !rc && i < M; i++) {
        st[i].mean = calloc((size_t)F * 2, sizeof(double));
        if (!st[i].mean) {
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for noise statistics");
            break;
        }
        st[i].sd = st[i].mean + F;
        stats_of(cfg, s, i, &st[i]);
    }
    for (int i = 0; !rc && i <= M; i++)
        if (!(out->name[i] = strdup(i < M ? cfg->modalities[i].name : "all")))
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (!rc)
        rc = craft_batch_init(&scratch, cfg, cap, err);
    if (!rc)
        rc = craft_result_init(&res, cfg, cap, &req, err);
    if (!rc)
        rc = craft_engine_new(&eng, m, cap, threads, err);
    for (int setting = 0; !rc && setting <= M; setting++) {
        for (int l = 0; !rc && l < CRAFT_NOISE_LEVELS; l++) {
            for (int start = 0; !rc && start < n; start += cap) {
                int bn = n - start < cap ? n - start : cap;
                copy_slice(cfg, &scratch, s, start, bn);
                for (int r = 0; r < bn; r++) {
                    gauss_rng g = {seed ^ ((uint64_t)(setting + 1) << 56) ^ ((uint64_t)(l + 1) << 48) ^
                                       (uint64_t)(start + r) * 0x9e3779b97f4a7c15ull,
                                   0, 0};
                    for (int mm = 0; mm < M; mm++)
                        if ((setting == M || setting == mm) && out->factor[l] > 0)
                            add_noise(cfg, &scratch, r, mm, &st[mm], out->factor[l], &g);
                }
                if ((rc = craft_engine_run(eng, &scratch, &req, 1, &res, err)))
                    break;
                memcpy(scores + (size_t)start * K, res.scores, sizeof(float) * (size_t)bn * K);
            }
            if (!rc)
                out->value[setting * CRAFT_NOISE_LEVELS + l] =
                    cfg->task == CRAFT_MULTICLASS ? craft_eval_accuracy(n, K, scores, s->b.labels)
                                                  : craft_macro_pr_auc(scores, s->b.labels, n, K);
        }
    }
    for (int i = 0; i < M; i++)
        free(st[i].mean);
    craft_engine_free(eng);
    craft_result_free(&res);
    craft_batch_free(&scratch);
    free(scores);
    if (rc)
        craft_eval_noise_free(out);
    return rc;
}
