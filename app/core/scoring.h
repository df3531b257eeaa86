/* scoring.h: scoring a file of orders with a model, writing the score lines of
 * FORMATS.md. `craft score` and the fixture tests share this one code path. */
#ifndef CRAFT_SCORING_H
#define CRAFT_SCORING_H

#include <stdio.h>

#include "craft.h"
#include "orders.h"

typedef struct {
    uint64_t orders;        /* orders scored so far */
    uint64_t bytes, total;  /* input bytes read, file size (0 when unknown) */
    double seconds;         /* since the start */
} craft_progress;

typedef void (*craft_progress_fn)(void *user, const craft_progress *p);

/* A device-neutral engine (craft_engine_* shaped): craft_score_file runs the
 * one given in its options, the CPU engine when none is. app/cli/device.c makes
 * the CUDA one. */
typedef struct craft_engine_ops {
    int (*create)(void **engine, const craft_model *m, int max_batch, int threads, const void *user,
                  craft_error *err);
    int (*run)(void *engine, const craft_batch *b, const craft_request *req, int n_req, craft_result *results,
               craft_error *err);
    void (*destroy)(void *engine);
    const void *user;           /* passed to create (e.g. a precision) */
} craft_engine_ops;

/* The CPU engine of craft.h as a craft_engine_ops. */
extern const craft_engine_ops craft_cpu_engine_ops;

typedef struct {
    const char *input;          /* a file, or "-" */
    craft_format format;
    uint32_t off_mask;          /* auxiliaries switched off */
    int explain;                /* importance and CMIS */
    int perturbation;           /* perturbation importance per class */
    int interaction;            /* the interaction score per auxiliary, class and feature (implies
                                   the perturbation passes, once more per auxiliary switched off) */
    int batch;                  /* orders per engine batch (default 64) */
    int threads;                /* <= 0: all cores */
    craft_progress_fn progress; /* called after each batch, may be NULL */
    void *progress_user;
    const craft_engine_ops *engine; /* NULL: the CPU engine */
    FILE *log;                  /* warnings (most of the model's features missing); NULL: none */
} craft_score_options;

/* Share of a tabular model's features that may be missing from every order of the
 * first batch before craft_score_file warns (o->log); none present is refused. */
#define CRAFT_SCORE_MISSING_WARN 0.5

/* Parses "txt,graph" into a mask of auxiliaries; refuses unknown names and the backbone. */
int craft_parse_modality_list(const craft_config *cfg, const char *list, uint32_t *mask, craft_error *err);

/* Scores every order of o->input and writes one JSON line per order to out.
 * Stops at the first bad order with an error naming file and line. A file that
 * holds none of a tabular backbone's features (in its first batch of orders: a
 * wrong model, renamed columns) is refused (CRAFT_EINPUT) before anything is
 * written; more than CRAFT_SCORE_MISSING_WARN of them missing is warned about. */
int craft_score_file(const craft_model *m, const craft_score_options *o, FILE *out, uint64_t *n_scored,
                     craft_error *err);

/* Writes the score line of order b of a result (FORMATS.md). */
void craft_write_score_line(FILE *out, const craft_model *m, const char *order_id, const craft_result *r, int b,
                            int perturbation);
/* Appends to a score line (before its closing brace, which the caller writes) the interaction
 * score "interaction": {aux: {class: {feature: I}}}: I(j, m) = perturbation importance of j with
 * every modality on (full) minus that with m switched off (off[i], the auxiliary off_mod[i]);
 * docs/MODEL.md, "Extensions". */
void craft_write_interaction(FILE *out, const craft_model *m, const craft_result *full, const craft_result *off,
                             const int *off_mod, int n_off, int b);
/* Writes s as a JSON string literal. */
void craft_json_string(FILE *out, const char *s);

double craft_now(void);

#endif
