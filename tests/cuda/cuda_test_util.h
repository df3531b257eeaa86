/* cuda_test_util.h: random models and batches of a chosen shape, and array
 * comparison, for the CUDA suites. */
#ifndef CRAFT_CUDA_TEST_UTIL_H
#define CRAFT_CUDA_TEST_UTIL_H

#include <math.h>
#include <stdint.h>

#include "../engine/test_util.h"
#include "craft.h"

typedef struct {
    int F, cat, d, heads, layers, topk, route, bins, emb, txt, graph, graph_tokens, classes, multiclass;
    const char *backbone;
} test_shape;

/* MODEL.md's production shape. */
static const test_shape production_shape = {300, 40, 256, 8, 1, 16, 32, 32, 32, 768, 128, 1, 5, 0, "tab"};

static inline char *shape_config_json(const test_shape *sh)
{
    size_t cap = 1024 + (size_t)sh->F * 200 + (size_t)sh->classes * 16;
    char *s = malloc(cap);
    int n = snprintf(s, cap,
                     "{\"format\":\"craft-model\",\"version\":1,\"d_model\":%d,\"heads\":%d,\"layers\":%d,\"ffn_mult\":2,"
                     "\"topk\":%d,\"route_dim\":%d,\"bins\":%d,\"emb_dim\":%d,\"task\":\"%s\",\"backbone\":\"%s\","
                     "\"classes\":[",
                     sh->d, sh->heads, sh->layers, sh->topk, sh->route, sh->bins, sh->emb,
                     sh->multiclass ? "multiclass" : "multilabel", sh->backbone);
    for (int k = 0; k < sh->classes; k++)
        n += snprintf(s + n, cap - n, "%s\"C%d\"", k ? "," : "", k);
    n += snprintf(s + n, cap - n, "],\"modalities\":[{\"name\":\"tab\",\"kind\":\"tabular\",\"features\":[");
    for (int j = 0; j < sh->F; j++) {
        if (j < sh->cat)
            n += snprintf(s + n, cap - n, "%s{\"name\":\"c%d\",\"type\":\"categorical\",\"vocab\":[\"a\",\"b\",\"c\"]}",
                          j ? "," : "", j);
        else
            n += snprintf(s + n, cap - n, "%s{\"name\":\"x%d\",\"type\":\"numeric\"}", j ? "," : "", j);
    }
    n += snprintf(s + n, cap - n, "]},{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":%d,\"tokens\":1}", sh->txt);
    snprintf(s + n, cap - n, ",{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":%d,\"tokens\":%d}]}", sh->graph,
             sh->graph_tokens);
    return s;
}

/* A model of the shape with random parameters (seeded), and sorted random edges. */
static inline craft_model *random_model(const test_shape *sh, uint64_t seed)
{
    char *json = shape_config_json(sh);
    craft_config cfg;
    craft_error err = {0};
    craft_model *m = NULL;
    if (craft_config_parse(&cfg, json, strlen(json), &err) == 0) {
        if (craft_model_new(&m, &cfg, 0, seed, &err))
            m = NULL;
        craft_config_free(&cfg);
    }
    if (!m)
        fprintf(stderr, "random_model: %s\n", err.msg);
    free(json);
    return m;
}

static uint64_t test_rng = 0x9e3779b97f4a7c15ull;
static inline double test_urand(void)
{
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return (test_rng >> 11) * (1.0 / 9007199254740992.0);
}
static inline float test_nrand(void)
{
    return (float)(sqrt(-2 * log(test_urand() + 1e-300)) * cos(6.283185307179586 * test_urand()));
}

/* n random orders: 10% missing features, unseen categories, some orders without
 * txt or graph, graph with a varying number of tokens. */
static inline void random_batch(craft_batch *b, const craft_config *cfg, int n)
{
    b->n = n;
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    for (int i = 0; i < n; i++) {
        craft_batch_clear_order(b, cfg, i);
        for (int j = 0; j < b->F; j++) {
            float *x = &b->tab[(size_t)i * b->F + j];
            if (test_urand() < 0.1)
                *x = NAN;
            else if (tm->features[j].type == CRAFT_CATEGORICAL)
                *x = test_urand() < 0.2 ? (float)cfg->bins : (float)(1 + (int)(test_urand() * 3));
            else
                *x = test_nrand();
        }
        for (int m = 0; m < cfg->n_modalities; m++) {
            const craft_modality *md = &cfg->modalities[m];
            if (md->kind != CRAFT_EMBEDDING)
                continue;
            int t = m == cfg->backbone ? 1 + (int)(test_urand() * md->tokens)
                                       : test_urand() < 0.25 ? 0 : 1 + (int)(test_urand() * md->tokens);
            b->ntok[m][i] = t;
            for (size_t c = 0; c < (size_t)t * md->dim; c++)
                b->emb[m][(size_t)i * md->tokens * md->dim + c] = test_nrand();
        }
    }
}

/* Number of entries of a and b further apart than tol (NaN matches only NaN); worst gets the largest gap. */
static inline int count_differences(const char *what, const float *a, const float *b, size_t n, double tol, double *worst)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            if (isnan(a[i]) != isnan(b[i])) {
                if (bad++ < 5)
                    fprintf(stderr, "%s[%zu]: %g vs %g\n", what, i, a[i], b[i]);
            }
            continue;
        }
        double d = fabs((double)a[i] - b[i]);
        if (d > *worst)
            *worst = d;
        if (d > tol && bad++ < 5)
            fprintf(stderr, "%s[%zu]: %.9g vs %.9g\n", what, i, a[i], b[i]);
    }
    return bad;
}

#endif
