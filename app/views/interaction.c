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
    craft_batch_copy_order(one, 0, b, index, cfg);
    one->has_labels = b->has_labels;
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

/* chunk > 0: plain runs (no perturbation request) over batches of perturbed copies.
 * res[i] (made for `chunk` orders) hold the requests' results; req[0] is every modality on. */
static int interaction_chunked(craft_engine *e, const craft_config *cfg, const craft_batch *one,
                               const craft_interaction_options *opt, craft_request *req, int n_req,
                               craft_result *res, craft_interaction *out, craft_error *err)
{
    const int K = out->K, F = out->F, chunk = opt->chunk;
    /* the order itself: its scores with every modality on and with each auxiliary off */
    int rc = craft_engine_run(e, one, req, n_req, res, err);
    if (rc)
        return rc;
    out->used = res[0].used[0];
    memcpy(out->scores, res[0].scores, sizeof(float) * K);
    float base[CRAFT_MAX_MODALITIES][64];
    float *basep[CRAFT_MAX_MODALITIES];
    for (int i = 0; i < n_req; i++) {
        basep[i] = K <= 64 ? base[i] : malloc(sizeof(float) * K);
        if (!basep[i]) {
            for (int q = 0; q < i; q++)
                if (basep[q] != base[q]) free(basep[q]);
            return craft_fail(err, CRAFT_ENOMEM, "out of memory for the interaction score");
        }
        memcpy(basep[i], res[i].scores, sizeof(float) * K);
    }
    /* a request per auxiliary the order has (the others' I is NaN) */
    craft_request run_req[CRAFT_MAX_MODALITIES];
    int run_of[CRAFT_MAX_MODALITIES], n_run = 1; /* run_of[r]: the index into req of run r */
    run_req[0] = req[0];
    run_of[0] = 0;
    for (int a = 0; a < out->n_aux; a++) {
        out->aux_used[a] = out->used >> out->aux[a] & 1u;
        if (out->aux_used[a]) {
            run_req[n_run] = req[1 + a];
            run_of[n_run++] = 1 + a;
        }
    }
    craft_batch pb;
    rc = craft_batch_init(&pb, cfg, chunk, err);
    int *feat = rc ? NULL : malloc(sizeof(int) * (size_t)chunk);
    if (!rc && !feat)
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for the interaction score");
    for (int r = 0; !rc && r < chunk; r++)
        craft_batch_copy_order(&pb, r, one, 0, cfg);
    int done = 0;
    for (int j0 = 0; !rc && j0 < F;) {
        /* the next `chunk` features the order has; one it lacks changes nothing */
        int c = 0;
        for (; j0 < F && c < chunk; j0++) {
            if (isnan(one->tab[j0])) {
                for (int k = 0; k < K; k++) {
                    out->perturb[(size_t)k * F + j0] = 0;
                    for (int a = 0; a < out->n_aux; a++)
                        out->perturb_off[((size_t)a * K + k) * F + j0] = 0;
                }
                continue;
            }
            memcpy(pb.tab + (size_t)c * F, one->tab, sizeof(float) * F);
            pb.tab[(size_t)c * F + j0] = NAN;
            feat[c++] = j0;
        }
        if (c == 0)
            break;
        pb.n = c;
        rc = craft_engine_run(e, &pb, run_req, n_run, res, err);
        for (int r = 0; !rc && r < n_run; r++) {
            const int i = run_of[r];
            for (int b = 0; b < c; b++)
                for (int k = 0; k < K; k++) {
                    float d = basep[i][k] - res[r].scores[(size_t)b * K + k];
                    if (i == 0)
                        out->perturb[(size_t)k * F + feat[b]] = d;
                    else
                        out->perturb_off[((size_t)(i - 1) * K + k) * F + feat[b]] = d;
                }
        }
        done = j0;
        if (!rc && opt->progress && opt->progress(opt->user, done, F))
            rc = craft_fail(err, CRAFT_ECANCELLED, "the interaction score was stopped");
    }
    if (!rc && opt->progress && done < F && opt->progress(opt->user, F, F))
        rc = craft_fail(err, CRAFT_ECANCELLED, "the interaction score was stopped");
    for (int i = 0; i < n_req; i++)
        if (basep[i] != base[i]) free(basep[i]);
    free(feat);
    craft_batch_free(&pb);
    if (rc)
        return rc;
    const size_t KF = (size_t)K * F;
    for (int a = 0; a < out->n_aux; a++)
        for (size_t i = 0; i < KF; i++) {
            if (!out->aux_used[a])
                out->perturb_off[a * KF + i] = NAN;
            out->value[a * KF + i] = out->aux_used[a] ? out->perturb[i] - out->perturb_off[a * KF + i] : NAN;
        }
    return CRAFT_OK;
}

int craft_order_interaction(craft_engine *e, const craft_model *m, const craft_batch *batch, int index,
                            const craft_interaction_options *opt, craft_interaction *out, craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    static const craft_interaction_options one_run = {0, NULL, NULL};
    if (!opt)
        opt = &one_run;
    memset(out, 0, sizeof *out);
    if (cfg->tabular < 0 || cfg->modalities[cfg->tabular].n_features <= 0)
        return craft_fail(err, CRAFT_EUNSUPPORTED, "the model has no tabular features: no interaction score");
    craft_batch one;
    int rc = craft_interaction_copy_order(&one, cfg, batch, index, err);
    if (rc)
        return rc;
    const int K = cfg->n_classes, F = cfg->modalities[cfg->tabular].n_features;
    const int chunked = opt->chunk > 0;
    /* request 0: every modality on; 1 + a: auxiliary a off (as craft score --interaction) */
    craft_request req[CRAFT_MAX_MODALITIES];
    craft_result res[CRAFT_MAX_MODALITIES];
    memset(res, 0, sizeof res);
    int n_req = 1;
    req[0] = (craft_request){0, 0, 0, !chunked};
    for (int mm = 0; mm < cfg->n_modalities; mm++)
        if (mm != cfg->backbone) {
            out->aux[out->n_aux++] = mm;
            req[n_req++] = (craft_request){1u << mm, 0, 0, !chunked};
        }
    for (int i = 0; i < n_req && !rc; i++)
        rc = craft_result_init(&res[i], cfg, chunked ? opt->chunk : 1, &req[i], err);
    const size_t KF = (size_t)K * F, AKF = (size_t)(out->n_aux ? out->n_aux : 1) * KF;
    if (!rc) {
        out->K = K;
        out->F = F;
        out->scores = malloc(sizeof(float) * K);
        out->perturb = malloc(sizeof(float) * KF);
        out->perturb_off = malloc(sizeof(float) * AKF);
        out->value = malloc(sizeof(float) * AKF);
        if (!out->scores || !out->perturb || !out->perturb_off || !out->value)
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for the interaction score");
    }
    double t0 = craft_now();
    if (!rc && chunked) {
        rc = interaction_chunked(e, cfg, &one, opt, req, n_req, res, out, err);
    } else if (!rc) {
        rc = craft_engine_run(e, &one, req, n_req, res, err);
        if (!rc && (!res[0].perturb || res[0].n != 1))
            rc = craft_fail(err, CRAFT_EUNSUPPORTED, "the engine computed no perturbation importance");
        if (!rc) {
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
            if (opt->progress && opt->progress(opt->user, F, F))
                rc = craft_fail(err, CRAFT_ECANCELLED, "the interaction score was stopped");
        }
    }
    out->seconds = craft_now() - t0;
    for (int i = 0; i < n_req; i++)
        craft_result_free(&res[i]);
    craft_batch_free(&one);
    if (rc)
        craft_interaction_free(out);
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
