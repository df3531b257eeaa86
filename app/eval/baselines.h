/* baselines.h: the building blocks of the baseline table: early-fusion
 * features, a one-hidden-layer MLP with its own backward pass and AdamW, and
 * XGBoost through libxgboost's C API (when the build has it). */
#ifndef CRAFT_EVAL_BASELINES_H
#define CRAFT_EVAL_BASELINES_H

#include <stdint.h>

#include "eval.h"

/* ------------------------------------------------ early-fusion features */
/* Columns, per modality in model order (only those in mods):
 * - tabular numeric feature: standardized value (0 when missing), missing indicator;
 * - tabular categorical feature: one-hot over its vocabulary plus "unseen", missing indicator;
 * - embedding modality: the mean of its tokens, standardized per column (0 when
 *   missing), missing indicator.
 * Means and standard deviations come from the training rows only. */
typedef struct {
    const craft_config *cfg;
    uint32_t mods;     /* bit m: modality m is used */
    int dim;           /* columns */
    int *offset;       /* [M] first column of modality m (-1 if unused) */
    double *mean, *sd; /* [dim] (indicator and one-hot columns: 0 and 1) */
    int *indicator;    /* [dim] a value column's missing indicator, -1 for 0/1 columns */
} craft_concat_features;

int craft_concat_fit(craft_concat_features *f, const craft_config *cfg, uint32_t mods, const craft_eval_set *s,
                     const int *rows, int n, craft_error *err);
/* X [n, dim] for the given rows of s. */
void craft_concat_transform(const craft_concat_features *f, const craft_eval_set *s, const int *rows, int n, float *X);
void craft_concat_free(craft_concat_features *f);

/* ------------------------------------------------------------------ MLP */
typedef struct {
    int in, hidden, out, task;
    size_t n_params;
    float *params;        /* W1 [hidden, in], b1 [hidden], W2 [out, hidden], b2 [out] */
    float *w1, *b1, *w2, *b2;
} craft_mlp;

int craft_mlp_init(craft_mlp *m, int in, int hidden, int out, int task, uint64_t seed, craft_error *err);
void craft_mlp_free(craft_mlp *m);
/* Mean loss over Y's known entries (BCE per known (order, class) for multilabel,
 * cross-entropy per labelled order for multiclass); grad (n_params, may be NULL)
 * gets d loss / d params. Returns NaN when out of memory. */
double craft_mlp_loss_grad(const craft_mlp *m, const float *X, const float *Y, int n, float *grad);
/* P [n, out] probabilities (sigmoid or softmax). */
int craft_mlp_predict(const craft_mlp *m, const float *X, int n, float *P, craft_error *err);

typedef struct {
    int epochs, batch, patience;
    float lr, weight_decay;
    uint64_t seed;
} craft_mlp_train_options;

/* AdamW on minibatches of (Xtr, Ytr); keeps the parameters of the epoch with the
 * lowest loss on (Xva, Yva), stopping after `patience` epochs without progress. */
int craft_mlp_train(craft_mlp *m, const float *Xtr, const float *Ytr, int ntr, const float *Xva, const float *Yva,
                    int nva, const craft_mlp_train_options *o, craft_error *err);

/* --------------------------------------------------- the backbone alone */
typedef struct {
    int epochs, batch, patience, threads;
    float lr, weight_decay;
    uint64_t seed;
} craft_backbone_options;

/* A fresh model of m's shape (bin edges fitted on the fit rows) trained with the
 * trainer's step API (engine/train.h) with every auxiliary switched off and no
 * SupCMA; early stopping on the val rows' macro PR-AUC (patience epochs); P gets
 * [n_test, K] scores of the test rows, auxiliaries off. */
int craft_eval_backbone_fit_predict(const craft_model *m, const craft_eval_set *s, const int *fit, int n_fit,
                                    const int *val, int n_val, const int *test, int n_test,
                                    const craft_backbone_options *o, float *P, char *detail, size_t detail_len,
                                    craft_error *err);

/* -------------------------------------------------------------- XGBoost */
typedef struct {
    int rounds, max_depth, threads;
    float eta;
    uint64_t seed;
} craft_xgb_options;

/* 1 when this build links libxgboost. */
int craft_xgb_available(void);
/* Trains on (Xtr [ntr, dim], Ytr [ntr, K]: NaN unknown) and writes P [nte, K]:
 * one binary:logistic booster per class (multilabel) or one multi:softprob
 * booster (multiclass). CRAFT_EUNSUPPORTED without libxgboost. */
int craft_xgb_fit_predict(int task, int K, int dim, const float *Xtr, const float *Ytr, int ntr, const float *Xte,
                          int nte, const craft_xgb_options *o, float *P, char *detail, size_t detail_len,
                          craft_error *err);

#endif
