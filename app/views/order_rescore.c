/* order_rescore.c: live subset scores of one order for the modality toggles. */
#include "order_rescore.h"

#include <math.h>
#include <string.h>

#include "scoring.h"

/* A one-order copy of batch row `index`, so the engine runs exactly one order. */
static int copy_order(craft_batch *one, const craft_config *cfg, const craft_batch *b, int index, craft_error *err)
{
    int rc = craft_batch_init(one, cfg, 1, err);
    if (rc)
        return rc;
    one->n = 1;
    craft_batch_copy_order(one, 0, b, index, cfg);
    return CRAFT_OK;
}

int craft_order_rescore(craft_engine *e, const craft_model *m, const craft_batch *batch, int index,
                        uint32_t off_mask, craft_rescore *out, craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    memset(out, 0, sizeof *out);
    if (index < 0 || index >= batch->n)
        return craft_fail(err, CRAFT_EINPUT, "order %d is not in the batch of %d", index, batch->n);
    if (off_mask & (1u << cfg->backbone))
        return craft_fail(err, CRAFT_EINPUT, "the backbone modality '%s' cannot be switched off",
                          cfg->modalities[cfg->backbone].name);
    if (cfg->n_classes > CRAFT_RESCORE_MAX_CLASSES)
        return craft_fail(err, CRAFT_EUNSUPPORTED, "the model has %d classes; at most %d can be shown",
                          cfg->n_classes, CRAFT_RESCORE_MAX_CLASSES);
    craft_batch one;
    int rc = copy_order(&one, cfg, batch, index, err);
    if (rc)
        return rc;
    craft_request req[2] = {{.off_mask = 0}, {.off_mask = off_mask}};
    craft_result res[2];
    memset(res, 0, sizeof res);
    rc = craft_result_init(&res[0], cfg, 1, &req[0], err);
    if (!rc)
        rc = craft_result_init(&res[1], cfg, 1, &req[1], err);
    double t0 = craft_now();
    if (!rc)
        rc = craft_engine_run(e, &one, req, 2, res, err);
    out->seconds = craft_now() - t0;
    if (!rc) {
        out->K = cfg->n_classes;
        out->M = cfg->n_modalities;
        out->off_mask = off_mask;
        out->available = res[0].used[0];
        out->used_subset = res[1].used[0];
        memcpy(out->full, res[0].scores, sizeof(float) * out->K);
        memcpy(out->subset, res[1].scores, sizeof(float) * out->K);
        for (int k = 0; k < out->M; k++) {
            out->fuse_gate[k] = res[0].fuse_gate[k];
            out->cond_gate[k] = res[0].cond_gate[k];
        }
    }
    craft_result_free(&res[0]);
    craft_result_free(&res[1]);
    craft_batch_free(&one);
    return rc;
}

const char *craft_rescore_modality_state(const craft_model *m, const craft_rescore *r, int modality)
{
    if (modality == m->cfg.backbone)
        return "backbone";
    if (!(r->available & (1u << modality)))
        return "missing";
    return (r->off_mask & (1u << modality)) ? "off" : "on";
}
