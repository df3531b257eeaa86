/* eval.h: honest evaluation of a CRAFT model (docs/EVAL.md).
 *
 * The evaluated orders are held in memory as one engine batch (craft_eval_set).
 * Everything here is a library call: `craft eval`, the app's Model view and
 * the tests share it. Undefined values (a class without positives, say) are
 * NaN, printed as null in JSON and "-" in tables, never 0.
 */
#ifndef CRAFT_EVAL_H
#define CRAFT_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "craft.h"
#include "orders.h"

/* ------------------------------------------------------------ the orders */
typedef struct craft_eval_set {
    const craft_config *cfg; /* the model config the orders are resolved against */
    craft_batch b;           /* all orders: b.n of them, b.cap allocated */
    char **ids;              /* [b.n] order ids */
    double *t;               /* [b.n] order times ("ts", seconds since 1970 UTC); NaN when absent */
    int n_labelled;          /* orders that carried labels */
} craft_eval_set;

/* Reads every order of path (JSONL or CSV, "-" stdin). Fills missing txt/graph
 * embeddings with the built-in encoders (app/data/encoders.h) where the model's
 * modality has the encoder's width, as craft score does. Stops at the first bad
 * order with its file and line. */
int craft_eval_set_load(craft_eval_set *s, const craft_config *cfg, const char *path, craft_format format,
                        craft_error *err);
/* Appends the orders of one reader batch (copies them). */
int craft_eval_set_append(craft_eval_set *s, const craft_order_batch *ob, craft_error *err);
void craft_eval_set_init(craft_eval_set *s, const craft_config *cfg);
void craft_eval_set_free(craft_eval_set *s);
/* A batch that views orders [start, start+n) of s (no copy; do not free). */
void craft_eval_set_view(const craft_eval_set *s, int start, int n, craft_batch *view);
/* Copies rows[0..n) of s into batch dst (cap >= n, same config); dst->n = n. */
void craft_eval_set_gather(const craft_eval_set *s, const int *rows, int n, craft_batch *dst);
/* Appends every order of src (same config) to dst. */
int craft_eval_set_extend(craft_eval_set *dst, const craft_eval_set *src, craft_error *err);
/* The subset of s given by rows (copies). */
int craft_eval_set_subset(craft_eval_set *dst, const craft_eval_set *src, const int *rows, int n, craft_error *err);

/* The split: order i is held out (test) when hash(seed, order_id) < fraction,
 * the same hash as the trainer's, so the same fraction and seed hold out the
 * trainer's validation orders. is_test[i] is 1 or 0. Returns the number held out. */
int craft_eval_split(const craft_eval_set *s, double fraction, uint64_t seed, int *is_test);
/* The hash behind the split, uniform in [0, 1). */
double craft_eval_split_hash(const char *order_id, uint64_t seed);

/* The val_fraction and seed that `craft train` recorded in m's metadata
 * ("craft.training" -> "options"); 0 when m has none. */
int craft_eval_training_split(const craft_model *m, double *val_fraction, uint64_t *seed);

/* Scores every order under n_req requests (modality subsets) in one engine pass
 * per batch; scores[r] gets [n, K] probabilities (caller allocates). */
int craft_eval_predict(const craft_model *m, const craft_eval_set *s, const craft_request *req, int n_req,
                       float **scores, int threads, craft_error *err);

/* ------------------------------------------------------------- metrics */
#define CRAFT_ECE_BINS 10

typedef struct craft_eval_metrics {
    int task, K;
    int n;                  /* orders scored */
    int *n_known, *n_pos;   /* [K] orders with a known label, positives */
    double *ap, *roc;       /* [K] average precision, ROC-AUC (NaN: undefined) */
    double macro_ap, macro_roc; /* mean over the classes where defined */
    double accuracy, macro_f1;  /* multiclass (argmax); NaN for multilabel */
    double ece;             /* expected calibration error, 10 equal-width bins */
    double target_precision;
    double *thr, *thr_precision, *thr_recall; /* [K] lowest threshold reaching the target */
} craft_eval_metrics;

/* Every metric of scores [n, K] against labels [n, K] (NaN = unknown).
 * PR-AUC and ROC-AUC come from engine/metrics.h (craft_pr_auc, craft_roc_auc). */
int craft_eval_metrics_compute(craft_eval_metrics *out, int task, int n, int K, const float *scores,
                               const float *labels, double target_precision, craft_error *err);
void craft_eval_metrics_free(craft_eval_metrics *mt);

/* Accuracy of the argmax over the orders whose class is known (multiclass). */
double craft_eval_accuracy(int n, int K, const float *scores, const float *labels);
/* ECE with equal-width bins: multilabel over every known (order, class) pair,
 * multiclass over the top class's confidence against its correctness. */
double craft_eval_ece(int task, int n, int K, const float *scores, const float *labels, int bins);
/* The lowest score threshold t with precision(score >= t) >= target; NaN when none. */
double craft_eval_threshold_at_precision(const float *score, const float *label, int n, int stride, double target,
                                         double *precision, double *recall);
double craft_eval_macro_f1(int n, int K, const float *scores, const float *labels);

/* --------------------------------------------------------- subset table */
typedef struct craft_eval_subsets {
    int n;                 /* subsets: every one that contains the backbone */
    uint32_t *off_mask;    /* [n] auxiliaries switched off */
    char **name;           /* [n] "full", "without txt", "backbone only", ... */
    double *macro_ap, *macro_roc, *accuracy; /* [n] (accuracy: multiclass only) */
} craft_eval_subsets;

int craft_eval_subsets_run(craft_eval_subsets *out, const craft_model *m, const craft_eval_set *s, int threads,
                           float **full_scores, craft_error *err);
void craft_eval_subsets_free(craft_eval_subsets *t);

/* ---------------------------------------------------------------- noise */
#define CRAFT_NOISE_LEVELS 10 /* factors 0, 0.1, ..., 0.9 */

typedef struct craft_eval_noise {
    int n;               /* settings: each modality, then all at once */
    char **name;         /* [n] modality name or "all" */
    const char *metric;  /* "accuracy" or "macro_pr_auc" */
    double factor[CRAFT_NOISE_LEVELS];
    double *value;       /* [n, CRAFT_NOISE_LEVELS] */
    uint64_t seed;
} craft_eval_noise;

/* Per modality (and per numeric tabular feature) mean and standard deviation of
 * the present values of s; noise for factor f is f * N(mean, std^2) added to
 * every present value of the modality (categorical features are left alone). */
int craft_eval_noise_run(craft_eval_noise *out, const craft_model *m, const craft_eval_set *s, uint64_t seed,
                         int threads, craft_error *err);
void craft_eval_noise_free(craft_eval_noise *t);

/* ------------------------------------------------------------ baselines */
typedef struct craft_eval_baseline_row {
    char name[64];
    char detail[160];    /* what it is, or why it is unavailable */
    int available;
    int single_modality; /* counts toward the ratio's denominator */
    double macro_ap, accuracy, ratio; /* ratio: to the best single-modality model */
    double class_ap[16];              /* per-class PR-AUC (first 16 classes; NaN when undefined) */
    int n_classes;
} craft_eval_baseline_row;

typedef struct craft_eval_baselines {
    double val_fraction;
    uint64_t seed;
    int n_train, n_test;
    int train_file;      /* trained on a separate file (--train), scored on every evaluated order */
    const char *metric;  /* "macro_pr_auc" or "accuracy": what the ratio divides */
    int best_single;     /* row index of the best single-modality model, -1 if none */
    int n;
    craft_eval_baseline_row row[16];
} craft_eval_baselines;

typedef struct {
    double val_fraction;  /* held-out share (default 0.1, the trainer's) */
    uint64_t seed;
    int threads;
    int hidden, epochs, batch; /* MLP baselines */
    float lr, weight_decay;
    int xgb_rounds, xgb_depth;
    float xgb_eta;
    int backbone_epochs, backbone_batch; /* the backbone alone, through the trainer */
    float backbone_lr;
    int quiet;            /* no progress on stderr */
    int n_train_given;    /* > 0: the first n orders of the set train, the rest are held out (--train FILE) */
    int xgb_only;         /* only the XGBoost rows (backbone alone and early fusion) and this model */
} craft_eval_baseline_options;

void craft_eval_baseline_defaults(craft_eval_baseline_options *o);
int craft_eval_baselines_run(craft_eval_baselines *out, const craft_model *m, const craft_eval_set *s,
                             const craft_eval_baseline_options *o, craft_error *err);

/* ------------------------------------------------- CMIS against planted truth */
/* Populations of orders a planted feature is judged on: the class's positives, the
 * orders where its planted tabular condition holds, and the positives where it holds. */
#define CRAFT_CMIS_POPULATIONS 3
const char *craft_cmis_population_name(int population);

/* One planted (class, tabular feature, auxiliary) on one population of orders. */
typedef struct craft_eval_cmis_cell {
    int cls, feature, modality; /* class, tabular feature and modality indices of the model */
    int direction;              /* +1 synergistic (CMIS should be high), -1 suppressed (low) */
    const char *kind;           /* "synergistic" or "suppressed" */
    int population;             /* 0 positives, 1 rule holds, 2 both (craft_cmis_population_name) */
    char rule[128];             /* the planted tabular condition, as the truth file states it */
    int rule_op;                /* 0 >=, 1 >, 2 <=, 3 <, 4 == */
    float rule_value;           /* number, or the categorical bin code */
    int n_orders;               /* orders of the population where the modality was used */
    double planted_mean, others_mean; /* mean signed CMIS: the planted feature, the others' mean */
    double planted_abs, others_abs;   /* the same for |CMIS| */
    double auc;      /* mean over orders of P(planted beats an other in `direction`), ties 1/2 */
    double auc_abs;  /* the same for |CMIS| (direction-free) */
    double top5;     /* share of orders where the planted feature ranks in the top 5 in `direction` */
    /* The interaction score I = (s - s without j) - (s without m - s without j and m), s the
     * class's score: the share of the population's orders where the planted feature's I has
     * the sign of `direction` (strictly), and the same share over a sample of the other
     * features (the chance level of this cell). */
    int int_orders;
    double int_right, int_others_right;
} craft_eval_cmis_cell;

typedef struct craft_eval_cmis_summary {
    int cells, above_chance; /* cells with orders, and those whose auc > 0.5 */
    double mean_auc, mean_auc_abs, mean_top5;
    double mean_int_right, mean_int_others; /* the interaction score's sign: planted, others */
} craft_eval_cmis_summary;

typedef struct craft_eval_cmis_check {
    char *truth;                  /* the truth file's name */
    int n_orders;                 /* orders scored */
    int n_others;                 /* features the truth names in no role: the comparison set */
    double top5_chance;           /* 5 / (n_others + 1) */
    int n, cap;
    craft_eval_cmis_cell *cell;
    craft_eval_cmis_summary summary[2][CRAFT_CMIS_POPULATIONS]; /* [synergistic, suppressed][population] */
} craft_eval_cmis_check;

/* The ranks of one order's planted feature among the others (for tests and the check). */
typedef struct {
    int valid;       /* planted and at least one other finite */
    double auc, auc_abs;
    int rank;        /* 1 + others strictly ahead in `direction` */
} craft_cmis_order_stat;
void craft_cmis_rank(const float *cmis, int planted, const int *others, int n_others, int direction,
                     craft_cmis_order_stat *st);

/* Scores every order of s with CMIS and compares the planted features of truth_json
 * (a `craft synth` FILE.truth.json) with the features it does not name. */
int craft_eval_cmis_check_run(craft_eval_cmis_check *out, const craft_model *m, const craft_eval_set *s,
                              const char *truth_json, const char *truth_name, int threads, craft_error *err);
void craft_eval_cmis_check_free(craft_eval_cmis_check *t);

/* ---------------------------------------------------------------- report */
typedef struct craft_eval_report {
    const craft_model *model;
    const char *input;
    craft_eval_metrics metrics;
    craft_eval_subsets subsets;
    craft_eval_noise *noise;         /* NULL when not asked for */
    craft_eval_baselines *baselines; /* NULL when not asked for */
    craft_eval_cmis_check *cmis;     /* NULL when not asked for (--cmis-truth) */
} craft_eval_report;

void craft_eval_write_json(FILE *out, const craft_eval_report *r);
void craft_eval_write_table(FILE *out, const craft_eval_report *r);

#endif
