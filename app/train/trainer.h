/* trainer.h: training a CRAFT model on labelled orders (MODEL.md, "Training"):
 * the split, vocabularies and quantile edges from the training part, backbone
 * selection by rho from single-modality probes, then AdamW epochs over
 * shuffled (or class-balanced) batches with early stopping on validation macro PR-AUC,
 * then a per-class calibration.
 * A library call: `craft train`, the app and the tests share it. */
#ifndef CRAFT_TRAINER_H
#define CRAFT_TRAINER_H

#include <signal.h>
#include <stdio.h>

#include "craft.h"

typedef struct craft_trainer_options {
    const char *input;        /* labelled orders, JSONL or CSV */
    const char *config_json;  /* the model to train; vocabularies, edges, prevalence, backbone are refit */
    const char *output;       /* checkpoint path (written at every improvement, atomically) */
    const char *val_input;    /* explicit validation orders (NULL: a part of input, by `split`) */
    int split;                /* CRAFT_SPLIT_AUTO (time when every labelled order has "ts"), _HASH, _TIME */
    int sampler;              /* CRAFT_SAMPLER_UNIFORM (each training order once per epoch) or _BALANCED */
    int tab_encoding;         /* CRAFT_TAB_BINS / CRAFT_TAB_PIECEWISE; -1: the config's key, else piecewise */
    int calibrate;            /* fit per-class calibration on the validation orders after training */
    int wide_head;            /* 1/0: the model's "wide_head"; -1: the config's key, else on */
    int epochs, batch, threads, patience, supcma, uniform_tau;
    float lr, lambda, tau, val_fraction, weight_decay, dropout, modality_dropout;
    uint64_t seed;
    double time_budget;       /* seconds; 0: none */
    volatile sig_atomic_t *cancel; /* non-zero: stop after the current step, keep the best */
    FILE *log;                /* per-epoch lines (NULL: quiet) */
    int live;                 /* per-step progress on stderr */
} craft_trainer_options;

enum { CRAFT_SPLIT_AUTO = 0, CRAFT_SPLIT_HASH = 1, CRAFT_SPLIT_TIME = 2 };
enum { CRAFT_SAMPLER_UNIFORM = 0, CRAFT_SAMPLER_BALANCED = 1 };

void craft_trainer_defaults(craft_trainer_options *o);

typedef struct craft_trainer_result {
    int n_train, n_val, epochs_run, best_epoch, cancelled, backbone;
    int n_modalities;
    double rho[CRAFT_MAX_MODALITIES], probe_ap[CRAFT_MAX_MODALITIES];
    double best_val_ap, best_val_roc, samples_per_s, seconds;
    int split_used;           /* CRAFT_SPLIT_HASH or _TIME (0 with val_input) */
    double val_from;          /* time split: validation orders are those at or after this time */
    double val_ece_raw, val_ece; /* validation ECE before and after calibration (NaN: not fitted) */
} craft_trainer_result;

int craft_trainer_run(const craft_trainer_options *o, craft_trainer_result *res, craft_error *err);

/* `craft train --auto`: a small search within o->time_budget (required): each recipe of a
 * fixed list (sizes, learning rate, regularization, SupCMA on/off) trains for 40% of the
 * budget shared out, on the same split; the best by validation macro PR-AUC trains again
 * with what is left, and the better of its two runs is written to o->output. The log says
 * what was tried and how each did. */
int craft_trainer_auto(const craft_trainer_options *o, craft_trainer_result *res, craft_error *err);

/* Training speed: steps of forward, backward and AdamW on a random model of cfg
 * and random orders; samples/s over the steps after one warm-up step. */
int craft_trainer_bench(const craft_config *cfg, int batch, int threads, int steps, int supcma,
                        double *samples_per_s, double *seconds_per_step, craft_error *err);

#endif
