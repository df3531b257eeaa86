/* batch.c: order batches resolved against a model config, and tabular binning. */
#include "craft.h"
#include "ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int craft_batch_init(craft_batch *b, const craft_config *cfg, int cap, craft_error *err)
{
    memset(b, 0, sizeof *b);
    if (cap < 1)
        return craft_fail(err, CRAFT_EINPUT, "batch capacity must be at least 1");
    b->cap = cap;
    b->F = cfg->tabular >= 0 ? cfg->modalities[cfg->tabular].n_features : 0;
    int ok = 1;
    if (b->F)
        ok &= (b->tab = malloc(sizeof(float) * (size_t)cap * b->F)) != NULL;
    for (int m = 0; m < cfg->n_modalities; m++) {
        const craft_modality *mod = &cfg->modalities[m];
        if (mod->kind != CRAFT_EMBEDDING)
            continue;
        ok &= (b->ntok[m] = calloc((size_t)cap, sizeof(int))) != NULL;
        ok &= (b->emb[m] = calloc((size_t)cap * mod->tokens * mod->dim, sizeof(float))) != NULL;
    }
    ok &= (b->labels = malloc(sizeof(float) * (size_t)cap * cfg->n_classes)) != NULL;
    if (!ok) {
        craft_batch_free(b);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for a batch of %d orders", cap);
    }
    for (int i = 0; i < cap; i++)
        craft_batch_clear_order(b, cfg, i);
    return CRAFT_OK;
}

void craft_batch_free(craft_batch *b)
{
    free(b->tab);
    for (int m = 0; m < CRAFT_MAX_MODALITIES; m++) {
        free(b->ntok[m]);
        free(b->emb[m]);
    }
    free(b->labels);
    memset(b, 0, sizeof *b);
}

void craft_batch_clear_order(craft_batch *b, const craft_config *cfg, int i)
{
    for (int j = 0; j < b->F; j++)
        b->tab[(size_t)i * b->F + j] = NAN;
    for (int m = 0; m < cfg->n_modalities; m++)
        if (b->ntok[m])
            b->ntok[m][i] = 0;
    for (int k = 0; k < cfg->n_classes; k++)
        b->labels[(size_t)i * cfg->n_classes + k] = NAN;
}

void craft_batch_copy_order(craft_batch *dst, int dst_i, const craft_batch *src, int src_i, const craft_config *cfg)
{
    if (src->F && dst->F == src->F)
        memcpy(dst->tab + (size_t)dst_i * src->F, src->tab + (size_t)src_i * src->F, sizeof(float) * src->F);
    for (int m = 0; m < cfg->n_modalities; m++) {
        if (!src->ntok[m] || !dst->ntok[m])
            continue;
        dst->ntok[m][dst_i] = src->ntok[m][src_i];
        if (cfg->modalities[m].kind == CRAFT_EMBEDDING && src->emb[m] && dst->emb[m]) {
            const size_t w = (size_t)cfg->modalities[m].tokens * cfg->modalities[m].dim;
            memcpy(dst->emb[m] + (size_t)dst_i * w, src->emb[m] + (size_t)src_i * w, sizeof(float) * w);
        }
    }
    if (src->labels && dst->labels)
        memcpy(dst->labels + (size_t)dst_i * cfg->n_classes, src->labels + (size_t)src_i * cfg->n_classes,
               sizeof(float) * cfg->n_classes);
}

int craft_category_code(const craft_config *cfg, const craft_feature *f, const char *value)
{
    for (int v = 0; v < f->n_vocab; v++)
        if (strcmp(f->vocab[v], value) == 0)
            return v + 1;
    return cfg->bins;
}

void craft_bin_numeric(const float *E, int nb, float x, int *b, float *rr)
{
    if (isnan(x)) {
        *b = 0;
        *rr = 0.0f;
        return;
    }
    /* b = 1 + #{k in 1..nb-1 : E[k] <= x}; edges never decrease, so bisect. */
    int lo = 1, hi = nb; /* first k in [1, nb) with E[k] > x, or nb */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (E[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    int bin = lo; /* = 1 + (number of k in 1..lo-1 with E[k] <= x) */
    float den = E[bin] - E[bin - 1];
    float r;
    if (den == 0.0f) {
        r = 0.5f;
    } else {
        r = (x - E[bin - 1]) / den;
        r = r < 0.0f ? 0.0f : r > 1.0f ? 1.0f : r;
    }
    *b = bin;
    *rr = r;
}

void tabular_inputs_forward(float *tab_in, int *bins, float *rr_out, const craft_config *cfg, const craft_embed *em,
                            const float *tab, int n)
{
    const craft_modality *mod = &cfg->modalities[cfg->tabular];
    const int F = mod->n_features, nb = cfg->bins, E = cfg->emb_dim;
#pragma omp parallel for schedule(static) if (n > 1)
    for (int b = 0; b < n; b++)
        for (int j = 0; j < F; j++) {
            float x = tab[(size_t)b * F + j], rr = 0.0f;
            int bin = 0;
            if (mod->features[j].type == CRAFT_NUMERIC)
                craft_bin_numeric(em->edges + (size_t)j * (nb + 1), nb, x, &bin, &rr);
            else
                bin = isnan(x) ? 0 : (int)x;
            if (bins)
                bins[(size_t)b * F + j] = bin;
            if (rr_out)
                rr_out[(size_t)b * F + j] = rr;
            float *row = tab_in + ((size_t)b * F + j) * 3 * E;
            const float *be = em->bin_emb + (size_t)j * (nb + 1) * E;
            if (cfg->tab_encoding == CRAFT_TAB_PIECEWISE && mod->features[j].type == CRAFT_NUMERIC && bin > 0) {
                /* h = sum_{k=1}^{b-1} bin_emb[k] + rr bin_emb[b]: bins below the value are full */
                for (int c = 0; c < E; c++)
                    row[c] = rr * be[(size_t)bin * E + c];
                for (int k = bin - 1; k >= 1; k--)
                    for (int c = 0; c < E; c++)
                        row[c] += be[(size_t)k * E + c];
            } else {
                memcpy(row, be + (size_t)bin * E, sizeof(float) * E);
            }
            for (int c = 0; c < E; c++)
                row[E + c] = rr * em->res_emb[(size_t)j * E + c];
            memcpy(row + 2 * E, em->feat_emb + (size_t)j * E, sizeof(float) * E);
        }
}
