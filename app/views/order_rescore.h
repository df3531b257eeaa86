/* order_rescore.h: the modality toggles' view model. Re-scores one order with
 * some auxiliaries switched off, beside its full-model scores, in one engine call
 * that shares the backbone pass (single-order latency). Display-free: the app's
 * toggles, reports and tests all use it. */
#ifndef CRAFT_ORDER_RESCORE_H
#define CRAFT_ORDER_RESCORE_H

#include <stdint.h>

#include "craft.h"

#define CRAFT_RESCORE_MAX_CLASSES 64

typedef struct {
    int K, M;                                /* classes, modalities of the model */
    uint32_t available;                      /* bit m: the order has modality m */
    uint32_t off_mask;                       /* what was asked to be off */
    uint32_t used_subset;                    /* bit m: used in the subset run */
    float full[CRAFT_RESCORE_MAX_CLASSES];   /* every available modality */
    float subset[CRAFT_RESCORE_MAX_CLASSES]; /* with off_mask switched off */
    float fuse_gate[CRAFT_MAX_MODALITIES];   /* full model, mean g_m; NaN where unused */
    float cond_gate[CRAFT_MAX_MODALITIES];   /* full model, mean c_m; NaN where unused */
    double seconds;                          /* wall time of the engine call */
} craft_rescore;

/* Runs order `index` of batch through e (an engine of m) twice in one call: all
 * modalities, and off_mask switched off. The backbone bit in off_mask is refused. */
int craft_order_rescore(craft_engine *e, const craft_model *m, const craft_batch *batch, int index,
                        uint32_t off_mask, craft_rescore *out, craft_error *err);

/* State of modality m's toggle for display: "backbone", "missing" (the order lacks it:
 * not the same as switched off), "off" or "on". */
const char *craft_rescore_modality_state(const craft_model *m, const craft_rescore *r, int modality);

#endif
