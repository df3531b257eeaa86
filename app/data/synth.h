/* synth.h: the synthetic order generator (docs/SYNTH.md), plain C11.
 *
 * Writes orders in the JSON Lines interchange format (FORMATS.md) with ~300
 * tabular features in five groups, a shipment-journey and an order-history
 * text, entities on a heavy-tailed network, time stamps in increasing order,
 * and five multilabel defect classes planted by documented rules of three
 * kinds: self-sufficient tabular signals, cross-modal conjunctions, and
 * text-explained suppressors. Same options, same bytes. */
#ifndef CRAFT_SYNTH_H
#define CRAFT_SYNTH_H

#include <stdint.h>
#include <stdio.h>

#include "craft.h"

#define CRAFT_SYNTH_CLASSES 5
#define CRAFT_SYNTH_MIN_FEATURES 40
#define CRAFT_SYNTH_MAX_FEATURES 2000

extern const char *const craft_synth_class_names[CRAFT_SYNTH_CLASSES];  /* D1..D5 */
extern const char *const craft_synth_class_titles[CRAFT_SYNTH_CLASSES]; /* "delivery failure", ... */
extern const double craft_synth_prevalence[CRAFT_SYNTH_CLASSES];        /* targets */

typedef struct {
    uint64_t orders;
    uint64_t seed;
    int features;    /* tabular features, CRAFT_SYNTH_MIN_FEATURES..MAX (default 300) */
    int with_labels; /* write "labels" (default 1) */
} craft_synth_options;

typedef struct {
    uint64_t orders;
    uint64_t positives[CRAFT_SYNTH_CLASSES];
    uint64_t bytes;
} craft_synth_stats;

typedef void (*craft_synth_progress_fn)(void *user, uint64_t done, uint64_t total);

/* Writes o->orders orders to out. stats may be NULL. */
int craft_synth_write(const craft_synth_options *o, FILE *out, craft_synth_stats *stats,
                      craft_synth_progress_fn progress, void *user, craft_error *err);

/* The ground truth of the planted rules (which feature is self-sufficient,
 * synergistic with which modality, suppressed by which), as a JSON document.
 * stats (may be NULL) adds the observed prevalences. Caller frees. */
char *craft_synth_truth_json(const craft_synth_options *o, const craft_synth_stats *stats);

/* A CRAFT model config for these orders: tab with the generator's features
 * (categorical vocabularies included), txt 256 wide from the text encoder,
 * graph craft_graph_width(5) wide from the graph encoder, classes D1..D5.
 * Caller frees. NULL when out of memory or features is out of range. */
char *craft_synth_model_config(int features);

#endif
