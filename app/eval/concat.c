/* concat.c: early-fusion features: every modality's inputs side by side in one
 * vector per order (the input of the concatenation MLP and of XGBoost). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"

/* Columns a modality takes. */
static int modality_width(const craft_config *cfg, int m)
{
    const craft_modality *mod = &cfg->modalities[m];
    if (mod->kind == CRAFT_EMBEDDING)
        return mod->dim + 1;
    int w = 0;
    for (int j = 0; j < mod->n_features; j++)
        w += mod->features[j].type == CRAFT_NUMERIC ? 2 : mod->features[j].n_vocab + 2;
    return w;
}

/* Raw (unstandardized) columns of order i; one-hot and indicator columns are 0/1. */
static void raw_row(const craft_concat_features *f, const craft_eval_set *s, int i, float *x)
{
    const craft_config *cfg = f->cfg;
    const craft_batch *b = &s->b;
    memset(x, 0, sizeof(float) * f->dim);
    for (int m = 0; m < cfg->n_modalities; m++) {
        if (f->offset[m] < 0)
            continue;
        const craft_modality *mod = &cfg->modalities[m];
        float *c = x + f->offset[m];
        if (mod->kind == CRAFT_TABULAR) {
            for (int j = 0; j < mod->n_features; j++) {
                float v = b->tab[(size_t)i * b->F + j];
                if (mod->features[j].type == CRAFT_NUMERIC) {
                    if (isnan(v))
                        c[1] = 1;
                    else
                        c[0] = v;
                    c += 2;
                } else {
                    int slots = mod->features[j].n_vocab + 1; /* vocabulary, then "unseen" */
                    if (isnan(v)) {
                        c[slots] = 1;
                    } else {
                        int code = (int)v; /* 1..n_vocab, or bins for unseen */
                        c[code >= 1 && code <= mod->features[j].n_vocab ? code - 1 : slots - 1] = 1;
                    }
                    c += slots + 1;
                }
            }
        } else {
            int t = b->ntok[m][i];
            if (t == 0) {
                c[mod->dim] = 1;
                continue;
            }
            const float *e = b->emb[m] + (size_t)i * mod->tokens * mod->dim;
            for (int r = 0; r < t; r++)
                for (int d = 0; d < mod->dim; d++)
                    c[d] += e[(size_t)r * mod->dim + d] / t;
        }
    }
}

/* For each column carrying a measured value (standardized), the column of its
 * missing indicator; -1 for 0/1 columns (one-hot slots and indicators). */
static void value_columns(const craft_concat_features *f, int *ind)
{
    const craft_config *cfg = f->cfg;
    for (int c = 0; c < f->dim; c++)
        ind[c] = -1;
    for (int m = 0; m < cfg->n_modalities; m++) {
        if (f->offset[m] < 0)
            continue;
        const craft_modality *mod = &cfg->modalities[m];
        int c = f->offset[m];
        if (mod->kind == CRAFT_TABULAR) {
            for (int j = 0; j < mod->n_features; j++) {
                if (mod->features[j].type == CRAFT_NUMERIC) {
                    ind[c] = c + 1;
                    c += 2;
                } else {
                    c += mod->features[j].n_vocab + 2;
                }
            }
        } else {
            for (int d = 0; d < mod->dim; d++)
                ind[c + d] = c + mod->dim;
        }
    }
}

int craft_concat_fit(craft_concat_features *f, const craft_config *cfg, uint32_t mods, const craft_eval_set *s,
                     const int *rows, int n, craft_error *err)
{
    memset(f, 0, sizeof *f);
    f->cfg = cfg;
    f->mods = mods;
    f->offset = malloc(sizeof(int) * CRAFT_MAX_MODALITIES);
    if (!f->offset)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    for (int m = 0; m < CRAFT_MAX_MODALITIES; m++) {
        f->offset[m] = -1;
        if (m < cfg->n_modalities && (mods >> m & 1u)) {
            f->offset[m] = f->dim;
            f->dim += modality_width(cfg, m);
        }
    }
    if (f->dim == 0) {
        craft_concat_free(f);
        return craft_fail(err, CRAFT_EINPUT, "no modality chosen for the early-fusion features");
    }
    f->mean = calloc((size_t)f->dim * 2, sizeof(double));
    float *row = malloc(sizeof(float) * f->dim);
    int *ind = f->indicator = malloc(sizeof(int) * f->dim);
    double *sq = calloc((size_t)f->dim * 2, sizeof(double));
    if (!f->mean || !row || !ind || !sq) {
        free(row), free(sq);
        craft_concat_free(f);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for %d feature columns", f->dim);
    }
    f->sd = f->mean + f->dim;
    double *cnt = sq + f->dim;
    value_columns(f, ind);
    for (int r = 0; r < n; r++) {
        raw_row(f, s, rows[r], row);
        for (int c = 0; c < f->dim; c++)
            if (ind[c] >= 0 && row[ind[c]] == 0) {
                f->mean[c] += row[c];
                sq[c] += (double)row[c] * row[c];
                cnt[c] += 1;
            }
    }
    for (int c = 0; c < f->dim; c++) {
        if (ind[c] < 0 || cnt[c] == 0) { /* 0/1 columns (and never-seen ones) stay as they are */
            f->mean[c] = 0, f->sd[c] = 1;
            continue;
        }
        f->mean[c] /= cnt[c];
        double var = sq[c] / cnt[c] - f->mean[c] * f->mean[c];
        f->sd[c] = var > 1e-12 ? sqrt(var) : 1;
    }
    free(row), free(sq);
    return CRAFT_OK;
}

void craft_concat_transform(const craft_concat_features *f, const craft_eval_set *s, const int *rows, int n, float *X)
{
    const int *ind = f->indicator;
    for (int r = 0; r < n; r++) {
        float *x = X + (size_t)r * f->dim;
        raw_row(f, s, rows[r], x);
        for (int c = 0; c < f->dim; c++) {
            if (ind[c] >= 0 && x[ind[c]] != 0)
                x[c] = 0; /* missing: 0 after standardization, the indicator says why */
            else
                x[c] = (float)((x[c] - f->mean[c]) / f->sd[c]);
        }
    }
}

void craft_concat_free(craft_concat_features *f)
{
    free(f->offset);
    free(f->mean);
    free(f->indicator);
    memset(f, 0, sizeof *f);
}
