/* train.h: training the CRAFT model (MODEL.md, "Training") on the CPU.
 *
 * craft_train holds, for batches of up to max_batch orders, the cached
 * activations of a training forward pass and the hand-written backward pass of
 * every layer (llm.c style: one X_forward / X_backward pair per layer). The
 * gradients go into one contiguous buffer with the model's own layout
 * (craft_layout), so craft_weights_bind gives named views of it, and AdamW keeps
 * its moments in buffers of the same layout.
 *
 * Everything is deterministic for a given seed and thread count: per-order work
 * writes only its own rows, and sums over orders run in a fixed order. */
#ifndef CRAFT_TRAIN_H
#define CRAFT_TRAIN_H

#include "craft.h"

typedef struct craft_train_opts {
    float lambda;            /* weight of SupCMA (0.3) */
    float tau_base;          /* SupCMA base temperature (0.07) */
    int uniform_tau;         /* 1: tau_k = tau_base for every class (ablation) */
    int supcma;              /* 1: add SupCMA (needs the model's projection heads) */
    float dropout;           /* residual branches and before the head (0.2; 0 = off) */
    float modality_dropout;  /* per auxiliary per order (0.2; 0 = off) */
    const float *pos_weight; /* [K] BCE positive weights, or NULL for 1 */
    uint64_t seed;           /* draws this step's dropout masks */
    int keep_selection;      /* 1: reuse the last forward's top-k keys (the same batch):
                                for finite-difference checks of the piecewise-smooth loss */
} craft_train_opts;

/* The defaults of MODEL.md; dropout and modality dropout included. */
craft_train_opts craft_train_defaults(void);

typedef struct craft_losses {
    double cls;     /* BCE (multilabel) or cross-entropy (multiclass) */
    double supcma;  /* 0 when off or when no class had an anchor */
    double total;   /* cls + lambda * supcma */
} craft_losses;

typedef struct craft_train craft_train;

/* A workspace for model m (not owned; its params are read at every forward). */
int craft_train_new(craft_train **out, const craft_model *m, int max_batch, int threads, craft_error *err);
void craft_train_free(craft_train *t);

/* The training forward pass over batch (labels required), keeping every
 * activation for the backward pass; fills the losses. */
int craft_train_forward(craft_train *t, const craft_batch *batch, const craft_train_opts *opts,
                        craft_losses *losses, craft_error *err);
/* The logits [n, K] of the last forward. */
const float *craft_train_logits(const craft_train *t);
/* The SupCMA temperatures tau_k of the last forward ([K]). */
const float *craft_train_tau(const craft_train *t);
/* The gradient of the last forward's total loss with respect to every parameter:
 * grads (m->layout.total floats) is overwritten. */
int craft_train_backward(craft_train *t, float *grads, craft_error *err);

/* tau_k = tau_base * sqrt(p_k / p_max) (or tau_base when uniform) for the config's prevalence. */
void craft_supcma_tau(const craft_config *cfg, float tau_base, int uniform, float *tau);

/* ------------------------------------------------------------ optimizer */
typedef struct craft_adamw {
    size_t n;
    float *m, *v;            /* first and second moments, the model's layout */
    unsigned char *decay;    /* 1 where weight decay applies (craft_tensor_is_matrix) */
    long step;
    float beta1, beta2, eps, weight_decay;
} craft_adamw;

int craft_adamw_init(craft_adamw *opt, const craft_model *m, float weight_decay, craft_error *err);
void craft_adamw_free(craft_adamw *opt);
/* One decoupled-weight-decay Adam step on params with grads at learning rate lr. */
void craft_adamw_step(craft_adamw *opt, float *params, const float *grads, float lr);
/* Scales grads so that their global L2 norm is at most max_norm; returns the norm before. */
double craft_clip_grad_norm(float *grads, size_t n, double max_norm);
/* Linear warm-up over `warmup` steps to lr_max, then cosine decay to 0 at `total`. */
float craft_lr_at(long step, long warmup, long total, float lr_max);

#endif
