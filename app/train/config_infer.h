/* config_infer.h: a complete model config derived from a labelled orders file
 * (docs/TRAINING.md, "Config from data"), and the checks that make a file's
 * unused or unusable inputs loud (features the config does not name, text or
 * entities the built-in encoders cannot encode at the model's widths,
 * modalities empty for every order). A library: never exits. */
#ifndef CRAFT_CONFIG_INFER_H
#define CRAFT_CONFIG_INFER_H

#include <stdio.h>

#include "craft.h"

typedef struct craft_infer_options {
    int text_tokens;   /* CRAFT_TEXT_VECTOR (default), CRAFT_TEXT_FIELDS or CRAFT_TEXT_EVENTS */
    int max_text_rows; /* fields/events: at most this many rows (0: 32) */
} craft_infer_options;

void craft_infer_defaults(craft_infer_options *o);
/* "vector", "fields" or "events" -> CRAFT_TEXT_*; -1 for anything else. */
int craft_text_tokens_parse(const char *s, int *mode);

/* Reads the labelled orders of path (JSON Lines, or CSV for *.csv; FORMATS.md)
 * and derives a model config: every feature with its type, the task and classes
 * from the labels, a `txt` modality when the orders have text fields, a `graph`
 * modality with "entity_types" when they have entities, sizes from the number of
 * labelled orders. A summary of what was found (and every modality left out,
 * loudly) goes to summary (may be NULL). The config JSON (indented, ending in a
 * newline) is returned in *json_out (free with free()). Errors name the file and
 * line. */
int craft_config_infer(const char *path, const craft_infer_options *o, FILE *summary, char **json_out,
                       craft_error *err);

/* The file's inputs against a model config, over the whole file:
 * - features present in the data but not in the config: a warning to log that
 *   lists and counts them (orders they appear in);
 * - entity types the graph encoder does not use (where it fills the model's
 *   graph modality): listed likewise;
 * - an order with text (entities) but no `txt` (`graph`) embedding, where the
 *   model's `txt` (`graph`) modality has a width the built-in encoder does not
 *   produce: an error naming the order, its line and both widths (the modality
 *   would be missing for that order in silence);
 * - an auxiliary modality present in no order of the file: a loud warning.
 * cmd ("train", "score", ...) prefixes the lines. "-" (standard input) is not
 * checked (it cannot be read twice). */
typedef struct craft_input_report {
    long orders;
    int unused_features;               /* distinct feature names the config does not use */
    int unused_entity_types;
    long available[CRAFT_MAX_MODALITIES]; /* orders where the modality would be present */
    int empty_modalities;              /* auxiliary modalities present in no order */
    int read_error;                    /* the error returned is the reader's (a bad order) */
    int partial;                       /* max_orders stopped the check before the end */
} craft_input_report;

/* max_orders > 0 checks only the first max_orders orders (the lines say so). */
int craft_input_check(const craft_config *cfg, const char *path, const char *cmd, FILE *log, long max_orders,
                      craft_input_report *rep, craft_error *err);

#endif
