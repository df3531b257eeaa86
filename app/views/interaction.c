/* interaction.c: the interaction score of one order for the explanation view. */
#include "interaction.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scoring.h"

int craft_interaction_copy_order(craft_batch *one, const craft_config *cfg, const craft_batch *b, int index,
                                 craft_error *err)
{
    memset(one, 0, sizeof *one);
    if (index < 0 || index >= b->n)
        return craft_fail(err, CRAFT_EINPUT, "order %d is not in the batch of %d", index, b->n);
    int rc = craft_batch_init(one, cfg, 1, err);
    if (rc)
        return rc;
    one->n = 1;
    if (b->F && one->F == b->F)
        memcpy(one->tab, b->tab + (size_t)index * b->F, sizeof(float) * b->F);
    for (int m = 0; m < cfg->n_modalities; m++) {
        if (!b->ntok[m] || !one->ntok[m])
            continue;
        one->ntok[m][0] = b->ntok[m][index];
        if (cfg->modalities[m].kind == CRAFT_EMBEDDING && b->emb[m] && one->emb[m]) {
            size_t per = (size_t)cfg->modalities[m].tokens * cfg->modalities[m].dim;
            memcpy(one->emb[m], b->emb[m] + (size_t)index * per, sizeof(float) * per);
        }
    }
    if (b->has_labels && b->labels && one->labels) {
        memcpy(one->labels, b->labels + (size_t)index * cfg->n_classes, sizeof(float) * cfg->n_classes);
        one->has_labels = 1;
    }
    return CRAFT_OK;
}

void craft_interaction_free(craft_interaction *x)
{
    if (!x)
        return;
    free(x->scores);
    free(x->perturb);
    free(x->perturb_off);
    free(x->value);
    memset(x, 0, sizeof *x);
}

int craft_order_interaction(craft_engine *e, const craft_model *m, const craft_batch *batch, int index,
                            craft_interaction *out, craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    memset(out, 0, sizeof *out);
    if (cfg->tabular < 0 || cfg->modalities[cfg->tabular].n_features <= 0)
        return craft_fail(err, CRAFT_EUNSUPPORTED, "the model has no tabular features: no interaction score");
    craft_batch one;
    int rc = craft_interaction_copy_order(&one, cfg, batch, index, err);
    if (rc)
        return rc;
    const int K = cfg->n_classes, F = cfg->modalities[cfg->tabular].n_features;
    /* request 0: every modality on; 1 + a: auxiliary a off (as craft score --interaction) */
    craft_request req[CRAFT_MAX_MODALITIES];
    craft_result res[CRAFT_MAX_MODALITIES];
    memset(res, 0, sizeof res);
    int n_req = 1;
    req[0] = (craft_request){0, 0, 0, 1};
    for (int mm = 0; mm < cfg->n_modalities; mm++)
        if (mm != cfg->backbone) {
            out->aux[out->n_aux++] = mm;
            req[n_req++] = (craft_request){1u << mm, 0, 0, 1};
        }
    for (int i = 0; i < n_req && !rc; i++)
        rc = craft_result_init(&res[i], cfg, 1, &req[i], err);
    const size_t KF = (size_t)K * F, AKF = (size_t)(out->n_aux ? out->n_aux : 1) * KF;
    if (!rc) {
        out->scores = malloc(sizeof(float) * K);
        out->perturb = malloc(sizeof(float) * KF);
        out->perturb_off = malloc(sizeof(float) * AKF);
        out->value = malloc(sizeof(float) * AKF);
        if (!out->scores || !out->perturb || !out->perturb_off || !out->value)
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for the interaction score");
    }
    double t0 = craft_now();
    if (!rc)
        rc = craft_engine_run(e, &one, req, n_req, res, err);
    out->seconds = craft_now() - t0;
    if (!rc && (!res[0].perturb || res[0].n != 1))
        rc = craft_fail(err, CRAFT_EUNSUPPORTED, "the engine computed no perturbation importance");
    if (!rc) {
        out->K = K;
        out->F = F;
        out->used = res[0].used[0];
        memcpy(out->scores, res[0].scores, sizeof(float) * K);
        memcpy(out->perturb, res[0].perturb, sizeof(float) * KF);
        for (int a = 0; a < out->n_aux; a++) {
            const craft_result *off = &res[1 + a];
            out->aux_used[a] = (out->used >> out->aux[a] & 1u) && off->perturb;
            for (size_t i = 0; i < KF; i++) {
                out->perturb_off[a * KF + i] = off->perturb ? off->perturb[i] : NAN;
                /* the order has no such input: no interaction to speak of */
                out->value[a * KF + i] = out->aux_used[a] ? res[0].perturb[i] - off->perturb[i] : NAN;
            }
        }
    }
    for (int i = 0; i < n_req; i++)
        craft_result_free(&res[i]);
    craft_batch_free(&one);
    if (rc) {
        craft_interaction_free(out);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

float craft_interaction_value(const craft_interaction *x, int a, int k, int j)
{
    if (!x || !x->value || a < 0 || a >= x->n_aux || k < 0 || k >= x->K || j < 0 || j >= x->F)
        return NAN;
    return x->value[((size_t)a * x->K + k) * x->F + j];
}

int craft_interaction_aux_of(const craft_interaction *x, int modality)
{
    for (int a = 0; x && a < x->n_aux; a++)
        if (x->aux[a] == modality)
            return a;
    return -1;
}

int craft_interaction_top(const craft_interaction *x, int a, int k, int *out, int max)
{
    int n = 0;
    if (!x || max <= 0 || a < 0 || a >= x->n_aux || k < 0 || k >= x->K)
        return 0;
    /* insertion into a short sorted list: max is a handful, F a few hundred */
    for (int j = 0; j < x->F; j++) {
        float v = craft_interaction_value(x, a, k, j);
        if (isnan(v) || v == 0.0f)
            continue;
        float av = fabsf(v);
        int at = n;
        while (at > 0 && fabsf(craft_interaction_value(x, a, k, out[at - 1])) < av)
            at--;
        if (at >= max)
            continue;
        int last = n < max ? n : max - 1;
        memmove(out + at + 1, out + at, sizeof(int) * (size_t)(last - at));
        out[at] = j;
        if (n < max)
            n++;
    }
    return n;
}

char *craft_interaction_format(char *buf, size_t size, double v)
{
    if (isnan(v))
        snprintf(buf, size, "\u2013");
    else
        snprintf(buf, size, CRAFT_INTERACTION_FORMAT, v);
    return buf;
}
