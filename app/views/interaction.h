/* interaction.h: the interaction score of one order (docs/MODEL.md, "Interaction
 * score") for the explanation view: for class score s, tabular feature j and
 * auxiliary modality m,
 *   I(j, m) = (s - s without j) - (s without m - s without j and m),
 * the perturbation importance of j with every modality on minus that with m off.
 * By default one engine call over a one-order batch: {off 0, perturbation} and {off
 * m, perturbation} for each auxiliary (the same requests as `craft score
 * --interaction`, app/core/scoring.c); or in batches of perturbed copies that can be
 * stopped between batches (craft_interaction_options). Display-free and without GLib: the app's
 * worker, reports and tests use it. Perturbation reruns the backbone once per
 * tabular feature, so callers with a display run it off their main thread. */
#ifndef CRAFT_INTERACTION_H
#define CRAFT_INTERACTION_H

#include <stddef.h>
#include <stdint.h>

#include "craft.h"

/* Every number the explanation view shows of I has this one format: "%+.4f"
 * (+0.0123, -0.0456; the score's units). */
#define CRAFT_INTERACTION_FORMAT "%+.4f"
/* The smallest |I| that format shows as other than +0.0000 / -0.0000 (lists leave out
 * what it would show as zero, and say so). */
#define CRAFT_INTERACTION_SHOWN_MIN 0.00005

typedef struct {
    int K, F;                               /* classes, tabular features */
    int n_aux;                              /* auxiliaries (every modality but the backbone) */
    int aux[CRAFT_MAX_MODALITIES];          /* the modality index of each */
    int aux_used[CRAFT_MAX_MODALITIES];     /* 1: the order has it; 0: missing (its values are NaN) */
    uint32_t used;                          /* bit m: modality m was used by the full model */
    float *scores;                          /* [K] full-model scores */
    float *perturb;                         /* [K, F] perturbation importance, every modality on */
    float *perturb_off;                     /* [n_aux, K, F] the same with aux a switched off */
    float *value;                           /* [n_aux, K, F] I = perturb - perturb_off; NaN: aux unused */
    double seconds;                         /* wall time of the engine call */
} craft_interaction;

/* A one-order batch holding a copy of row `index` of b (the caller frees it with
 * craft_batch_free): what a worker gets, so the source batch may change meanwhile. */
int craft_interaction_copy_order(craft_batch *one, const craft_config *cfg, const craft_batch *b, int index,
                                 craft_error *err);

/* How craft_order_interaction runs the engine.
 * chunk <= 0: one craft_engine_run with the engine's perturbation requests ({off 0} and
 *   {off m} per auxiliary, as craft score --interaction): the engine needs one order.
 * chunk > 0: the same score differences from plain runs over batches of `chunk` copies
 *   of the order, each with one feature missing (the engine needs `chunk` orders):
 *   between batches `progress` may stop the work, and a feature the order lacks is not
 *   rerun (its I is exactly 0). Equal to the engine's perturbation to float rounding.
 * progress (may be NULL) is called after each engine run with the features done and
 *   their total; a nonzero return stops the work with CRAFT_ECANCELLED. */
typedef struct {
    int chunk;
    int (*progress)(void *user, int done, int total);
    void *user;
} craft_interaction_options;

/* Computes I of order `index` of batch with e (an engine of m, see the options; NULL
 * options: the engine's perturbation in one run). The model needs a tabular modality.
 * On failure out is empty. */
int craft_order_interaction(craft_engine *e, const craft_model *m, const craft_batch *batch, int index,
                            const craft_interaction_options *opt, craft_interaction *out, craft_error *err);
void craft_interaction_free(craft_interaction *x);

/* I of feature j for auxiliary number a (0..n_aux-1) and class k; NaN outside. */
float craft_interaction_value(const craft_interaction *x, int a, int k, int j);
/* The auxiliary number of modality m, or -1. */
int craft_interaction_aux_of(const craft_interaction *x, int modality);
/* Up to max features of auxiliary a and class k by |I| descending (ties: lower index
 * first); NaN and exact zeros (a missing feature changes nothing) are left out.
 * Returns how many were written to out. */
int craft_interaction_top(const craft_interaction *x, int a, int k, int *out, int max);
/* v in CRAFT_INTERACTION_FORMAT ("–" for NaN); returns buf. */
char *craft_interaction_format(char *buf, size_t size, double v);

#endif
