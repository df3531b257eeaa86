/* flops.c: the operation count of one order (for achieved TFLOP/s) and the
 * precision names; built in every configuration, with or without CUDA. */
#include <string.h>

#include "craft_cuda.h"

int craft_precision_parse(const char *s)
{
    if (!s || !strcmp(s, "fp32"))
        return CRAFT_PRECISION_FP32;
    if (!strcmp(s, "fast"))
        return CRAFT_PRECISION_FAST;
    return -1;
}

const char *craft_precision_name(int precision)
{
    return precision == CRAFT_PRECISION_FAST ? "fast" : "fp32";
}

/* Counts multiply-adds as 2 flops. The single-query attentions are counted folded
 * (no K or V projection), the way both engines compute them; the tabular token
 * projection is counted as the product MODEL.md defines. */
double craft_flops_per_order(const craft_config *cfg, int explain)
{
    const double d = cfg->d_model, H = cfg->heads, r = cfg->route_dim, ffn = d * cfg->ffn_mult;
    const craft_modality *bb = &cfg->modalities[cfg->backbone];
    const double T = bb->tokens, kk = cfg->topk < bb->tokens ? cfg->topk : bb->tokens;
    double f = 0;
    int n_aux = 0;
    for (int m = 0; m < cfg->n_modalities; m++) {
        const craft_modality *md = &cfg->modalities[m];
        if (md->kind == CRAFT_TABULAR)
            f += 2.0 * md->n_features * 3.0 * cfg->emb_dim * d;
        else
            f += 2.0 * (m == cfg->backbone ? md->tokens : 1) * md->dim * d;
        n_aux += m != cfg->backbone;
    }
    /* backbone blocks: q k v route, routing scores, sparse attention, o, ffn */
    f += cfg->layers * (2 * T * d * (3 * d + r) + 2 * T * T * r + 4 * T * kk * d + 2 * T * d * d + 4 * T * d * ffn);
    const double cond = 10 * d * d + 4 * T * H * d, pool_att = 4 * T * H * d;
    f += n_aux * cond + pool_att + 4 * d * d;      /* conditioning, pooling */
    f += n_aux * 4 * d * d + 2 * d * d + 2 * d * cfg->n_classes; /* fusion, head */
    if (explain) /* CMIS: per auxiliary, the conditionings after it and a pooling */
        for (int i = 0; i < n_aux; i++)
            f += (n_aux - i - 1) * cond + pool_att;
    return f;
}
