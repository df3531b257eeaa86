/* train_optim.c: AdamW with decoupled weight decay on matrices, global-norm
 * gradient clipping, and the warm-up + cosine learning-rate schedule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

int craft_adamw_init(craft_adamw *opt, const craft_model *m, float weight_decay, craft_error *err)
{
    memset(opt, 0, sizeof *opt);
    const size_t n = m->layout.total;
    opt->n = n;
    opt->m = calloc(n ? n : 1, sizeof(float));
    opt->v = calloc(n ? n : 1, sizeof(float));
    opt->decay = calloc(n ? n : 1, 1);
    if (!opt->m || !opt->v || !opt->decay) {
        craft_adamw_free(opt);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for the optimizer's %zu moments", n);
    }
    for (int i = 0; i < m->layout.n; i++) {
        const craft_tensor_info *t = &m->layout.t[i];
        if (craft_tensor_is_matrix(t))
            memset(opt->decay + t->offset, 1, t->count);
    }
    opt->beta1 = 0.9f;
    opt->beta2 = 0.999f;
    opt->eps = 1e-8f;
    opt->weight_decay = weight_decay;
    return CRAFT_OK;
}

void craft_adamw_free(craft_adamw *opt)
{
    free(opt->m);
    free(opt->v);
    free(opt->decay);
    memset(opt, 0, sizeof *opt);
}

void craft_adamw_step(craft_adamw *opt, float *params, const float *grads, float lr)
{
    opt->step++;
    const float b1 = opt->beta1, b2 = opt->beta2;
    const float c1 = 1.0f - powf(b1, (float)opt->step), c2 = 1.0f - powf(b2, (float)opt->step);
    const float wd = lr * opt->weight_decay;
#pragma omp parallel for schedule(static) if (opt->n > 65536)
    for (long i = 0; i < (long)opt->n; i++) {
        float g = grads[i];
        float m = opt->m[i] = b1 * opt->m[i] + (1.0f - b1) * g;
        float v = opt->v[i] = b2 * opt->v[i] + (1.0f - b2) * g * g;
        float p = params[i];
        if (opt->decay[i])
            p -= wd * p;
        params[i] = p - lr * (m / c1) / (sqrtf(v / c2) + opt->eps);
    }
}

double craft_clip_grad_norm(float *grads, size_t n, double max_norm)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++)
        ss += (double)grads[i] * grads[i];
    double norm = sqrt(ss);
    if (norm > max_norm && norm > 0.0) {
        float s = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++)
            grads[i] *= s;
    }
    return norm;
}

float craft_lr_at(long step, long warmup, long total, float lr_max)
{
    if (warmup > 0 && step < warmup)
        return lr_max * (float)(step + 1) / (float)warmup;
    if (total <= warmup)
        return lr_max;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    if (progress > 1.0)
        progress = 1.0;
    return (float)(lr_max * 0.5 * (1.0 + cos(M_PI * progress)));
}
