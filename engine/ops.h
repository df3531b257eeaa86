/* ops.h: the layers of the CRAFT model as forward functions over plain arrays.
 * Shapes in comments: N rows (tokens or orders), C channels. Each op is the
 * reference for the CUDA path and for the trainer's backward passes. */
#ifndef CRAFT_OPS_H
#define CRAFT_OPS_H

#include <math.h>

#include "craft.h"

/* Threads for the engine's own loops and its matrix products. OpenBLAS itself
 * runs single-threaded: the engine splits each product into row blocks, one per
 * thread, so one thread pool serves everything and results do not depend on
 * how OpenBLAS would have split the work. */
void craft_threads_init(int threads);
int craft_threads_get(void);
/* Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, split over rows of C
 * (or over columns when there are too few rows). */
void craft_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);

/* Tabular token inputs (MODEL.md): tab_in rows [b*F + j] =
 * [bin_emb[j][b] || rr res_emb[j] || feat_emb[j]] (width 3e) for orders [0, n) of
 * tab [n, F]; bins and rr [n, F] (each may be NULL) keep the binning for a backward pass. */
void tabular_inputs_forward(float *tab_in, int *bins, float *rr, const craft_config *cfg, const craft_embed *em,
                            const float *tab, int n);

/* out[N,out] = in[N,in] W^T + b   (W [out,in]; ldi/ldo are row strides) */
void linear_forward(float *out, int ldo, const float *in, int ldi, const craft_linear *lin, int N);
/* out[N,C] = LN(in[N,C]); mean/rstd [N] may be NULL (kept for the backward pass) */
void layernorm_forward(float *out, float *mean, float *rstd, const float *in, const craft_norm *ln,
                       int N, int C);
/* tanh (vectorizable rational form, a few ulp from tanhf) */
float craft_tanhf(float x);
/* tanh-form GELU, elementwise over n values */
void gelu_forward(float *out, const float *in, size_t n);
static inline float craft_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
/* softmax of x[n] in place */
void softmax_inplace(float *x, int n);
/* indices of the k largest of s[n] (ties to the smaller index), in idx[k]; best[k] is scratch */
void topk_select(int *idx, float *best, const float *s, int n, int k);

#endif

/* ------------------------------------------------ backward passes (the trainer)
 * Each X_backward takes the gradient of the loss with respect to X_forward's
 * output and adds the parameters' gradients into g (a craft_linear / craft_norm
 * view of the gradient buffer). Sums over rows use fixed row chunks, so results
 * do not depend on the thread count. */

/* sums[C] += column sums of x[N, C] (row stride ld) */
void colsum_add(float *sums, const float *x, int N, int C, int ld);
/* For out = in W^T + b: g->w += dOut^T in, g->b += colsum(dOut), and
 * dIn = dOut W (acc_in = 0) or dIn += dOut W (acc_in = 1); dIn may be NULL. */
void linear_backward(float *dIn, int ldd, int acc_in, craft_linear *g, const float *dOut, int ldo,
                     const float *in, int ldi, const craft_linear *lin, int N);
/* For out = LN(in) with the kept mean and rstd: g->w, g->b accumulate, dIn = or += the input gradient. */
void layernorm_backward(float *dIn, int acc_in, craft_norm *g, const float *dOut, const float *in,
                        const float *mean, const float *rstd, const craft_norm *ln, int N, int C);
/* dIn[i] = GELU'(in[i]) * dOut[i] (dIn may alias dOut) */
void gelu_backward(float *dIn, const float *in, const float *dOut, size_t n);
