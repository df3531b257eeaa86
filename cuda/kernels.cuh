/* kernels.cuh: the CUDA engine's own kernels (everything but the large matrix
 * products, which go to cuBLAS). Each launcher enqueues on the given stream and
 * returns immediately. Shapes as in engine/forward.c: an order b owns rows
 * b*T .. b*T+T-1 of every token array, of which the first n_bb[b] are valid.
 * No kernel uses float atomics: every sum has a fixed order, so a run is
 * bit-for-bit repeatable on a given GPU and cuBLAS version. */
#ifndef CRAFT_CUDA_KERNELS_CUH
#define CRAFT_CUDA_KERNELS_CUH

#include <cuda_runtime.h>

/* Tabular binning of orders [0, n): bins/rr [n, F]. Feature missing_j (>= 0) is
 * treated as missing for every order (perturbation importance). */
void launch_binning(cudaStream_t s, int *bins, float *rr, const float *tab, const float *edges,
                    const int *is_cat, int n, int F, int nb, int missing_j);

/* Tabular tokens: out[b, j, :] (row stride ld_rows tokens per order) =
 * tok_bin[j, bins[b,j], :] + rr[b,j] * tok_res[j, :]. */
void launch_tab_tokens(cudaStream_t s, float *out, int ld_rows, const int *bins, const float *rr,
                       const float *tok_bin, const float *tok_res, int res_per_bin, int n, int F, int nb, int d);

/* f[b, :] = mean_j of the tabular tokens of order b (a tabular auxiliary). */
void launch_tab_mean(cudaStream_t s, float *f, const int *bins, const float *rr, const float *tok_bin,
                     const float *tok_res, int res_per_bin, int n, int F, int nb, int d);

/* Embedding tokens after the product Y = X W^T: valid rows get bias + pos_emb[i],
 * padding rows (i >= ntok[b]) become 0. pos may be NULL. */
void launch_emb_tokens_finish(cudaStream_t s, float *Y, const int *ntok, const float *bias, const float *pos,
                              int n, int T, int d);

/* xmean[b, :] = mean of the ntok[b] input rows of order b (0 when none). */
void launch_row_mean(cudaStream_t s, float *xmean, const float *X, const int *ntok, int n, int tokens, int D);

/* f[b, :] += bias + mean_{i < ntok[b]} pos[i, :] (pos may be NULL; bias always). */
void launch_aux_finish(cudaStream_t s, float *f, const int *ntok, const float *bias, const float *pos, int n, int d);

/* out[r, :] = LN(in[r, :] (+ pend)) over rows; with pend, in gets in + pend first.
 * With n_bb, rows i >= n_bb[r / T] are written as 0. out may be in. */
void launch_layernorm(cudaStream_t s, float *out, float *in, const float *pend, const float *w, const float *b,
                      int rows, int d, int T, const int *n_bb);

/* Y[r, c] = GELU(Y[r, c] + bias[c]) (tanh form; bias may be NULL), row stride ld. */
void launch_bias_gelu(cudaStream_t s, float *Y, int ld, const float *bias, int rows, int cols);

/* out[r, c] = bias[c] (row stride ld). */
void launch_bias_rows(cudaStream_t s, float *out, int ld, const float *bias, int rows, int cols);
void launch_fill(cudaStream_t s, float *x, float v, size_t n);

/* Routing: per order b and row i < n_bb[b], S_ij = U_i . U_j / sqrt(r) over j < n_bb[b]
 * and the min(topk, n_bb[b]) largest (ties to the smaller j): nbr/nbr_s [rows, kk]. */
void launch_route_select(cudaStream_t s, int *nbr, float *nbr_s, const float *U, int ldu, const int *n_bb,
                         int n, int T, int r, int topk, int kk);

/* Sparse attention per row: z_hi = sum_{j in N(i)} softmax(q.k/sqrt(dh) + S_ij) v_hj,
 * q, k, v the columns 0, d, 2d of qkv (row stride ldq) plus their biases. Padding rows get 0.
 * scratch [rows, kk]. */
void launch_sparse_attention(cudaStream_t s, float *z, const float *qkv, int ldq, const float *bq, const float *bk,
                             const float *bv, const int *nbr, const float *nbr_s, float *scratch, const int *n_bb,
                             int n, int T, int d, int H, int topk, int kk);

/* A single-query attention per order over its gated tokens Xb_j * C (folded):
 * logits_hj = (Xb_j * C) . qk_h / sqrt(dh), att[b, h, :] the softmax over j < n_bb[b],
 * xbar[b, h, :] = C * sum_j att_hj Xb_j. qk [H, d] per order (qk_stride floats apart; 0
 * shares one). Orders with act_a[b] == 0 or (act_b && act_b[b] == 0) are skipped
 * (their xbar is 0). alpha (may be NULL): alpha[b, j] = mean_h att[b, h, j], 0 for padding. */
void launch_single_query(cudaStream_t s, float *att, float *xbar, float *alpha, const float *Xb, const int *n_bb,
                         const float *qk, size_t qk_stride, const float *C, const int *act_a, const int *act_b,
                         int n, int T, int d, int H);

/* Gates: g = sigmoid(pre[b, :]) for active orders. Conditioning (C != NULL): C *= g.
 * Fusion (fused != NULL): fused += g * f. gate_mean (may be NULL): [b * M + m] gets
 * the mean of g, NaN for inactive orders. */
void launch_gate(cudaStream_t s, const float *pre, float *C, float *fused, const float *f, const int *act_a,
                 const int *act_b, float *gate_mean, int M, int m, int n, int d);

/* scores[b, :] = sigmoid(logits) (multilabel) or softmax (multiclass). */
void launch_scores(cudaStream_t s, float *scores, const float *logits, const float *ca, const float *cb, int n, int K,
                   int multiclass);

/* cmis[(b*M + m)*T + j] = alpha - alpha_cf for orders with act[b] and j < n_bb[b]. */
void launch_cmis(cudaStream_t s, float *cmis, const float *alpha, const float *alpha_cf, const int *act,
                 const int *n_bb, int n, int M, int m, int T);

/* tok_bin[j, b, :] += add[j, :] for b in 0..nb (the feature part and bias of the tokens). */
void launch_add_feature_rows(cudaStream_t s, float *tok_bin, const float *add, int F, int nb, int d);

/* cudaSuccess when the kernels of this build can run on device 0. */
cudaError_t craft_cuda_kernels_loadable(void);

#endif
