/* engine.cu: the CUDA engine (craft_cuda.h). The host side mirrors
 * engine/forward.c step for step; the large products go to cuBLAS (FP32 by
 * default, TF32 tensor cores in the opt-in fast mode), everything else to the
 * kernels of kernels.cu. One stream per engine; inputs and outputs go through
 * pinned staging buffers; one synchronization per request and chunk.
 *
 * Differences in how (not what) it computes, each exact in real arithmetic:
 * - tabular tokens: proj([bin_emb || rr res_emb || feat_emb]) is precomputed
 *   per feature and bin at engine creation (tok_bin = W1 bin_emb + W3 feat_emb + b,
 *   tok_res = W2 res_emb), so a token is one gather and one multiply-add;
 * - the biases of q, k and v are added inside the sparse attention, that of
 *   Linear_o and fc2 inside the next LayerNorm (which writes the sum back);
 * - fusion computes W [P || f_m] as two products instead of one over a concat.
 * Device memory is bounded: a batch runs in chunks of e->B orders. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craft_cuda.h"
#include "kernels.cuh"

struct craft_cuda_engine {
    const craft_model *m;
    const craft_config *cfg;
    int B, max_batch, T, d, H, dh, M, K, F, ffn, r, topk, kk, nb, E, bb, ldq, precision;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasStatus_t blas_status; /* first cuBLAS failure since the last check */
    /* weights */
    float *params;              /* the model's parameter buffer, on the device */
    float *tok_bin, *tok_res;   /* [F, nb+1, d], [F, d] ([F, nb+1, d] when res_per_bin) */
    int res_per_bin;            /* piecewise tabular encoding: the rr term differs per bin */
    float *calib;               /* [2K]: calibration a then b, or NULL */
    int *is_cat;                /* [F] */
    float *wcat[CRAFT_MAX_LAYERS]; /* [3d + r, d]: q, k, v, route weights stacked */
    float *pool_qk;             /* [H, d] Wk_h^T query_h of the pooling */
    /* activations: one arena */
    void *arena;
    float *X, *Hb, *QKVU;       /* [B*T, d], [B*T, d] (h, then z), [B*T, max(3d+r, ffn)] */
    int *nbr;                   /* [B*T, kk] */
    float *nbr_s, *att_s;       /* [B*T, kk] */
    int *bins;                  /* [B, F] */
    float *rr;                  /* [B, F] */
    float *tab;                 /* [B, F] */
    float *emb[CRAFT_MAX_MODALITIES];  /* [B, tokens, D] */
    int *ntok[CRAFT_MAX_MODALITIES];   /* [B] */
    int *n_bb;                  /* [B] */
    int *avail;                 /* [M, B] */
    float *xmean;               /* [B, Dmax] */
    float *f;                   /* [M, B, d] */
    float *C, *Csnap, *qv, *qk, *att, *xbar, *zb, *fhat, *cg, *alpha, *alpha_cf, *P, *g, *fused, *hh, *h1;
    float *logits, *scores, *cond_gate, *fuse_gate, *cmis;
    float *wide; /* [B, K] the wide term of the backbone tokens ("wide_head") */
    /* pinned staging */
    unsigned char *pin_in, *pin_out;
    size_t pin_in_bytes, pin_out_bytes;
    /* host copies of the chunk's flags */
    int *h_avail;               /* [M, B] */
    int *h_nbb;                 /* [B] */
    int any_avail[CRAFT_MAX_MODALITIES];
};

/* ---------------------------------------------------------------- errors */

static int cuda_fail(craft_error *err, cudaError_t st, const char *what)
{
    return craft_fail(err, st == cudaErrorMemoryAllocation ? CRAFT_ENOMEM : CRAFT_EUNSUPPORTED, "CUDA: %s: %s",
                      what, cudaGetErrorString(st));
}

#define CK(call)                                   \
    do {                                           \
        cudaError_t st_ = (call);                  \
        if (st_ != cudaSuccess)                    \
            return cuda_fail(err, st_, #call);     \
    } while (0)

/* Waits for the stream and reports any kernel or cuBLAS failure since the last check. */
static int sync_check(craft_cuda_engine *e, craft_error *err, const char *where)
{
    cudaError_t st = cudaGetLastError();
    if (st == cudaSuccess)
        st = cudaStreamSynchronize(e->stream);
    if (st != cudaSuccess)
        return cuda_fail(err, st, where);
    if (e->blas_status != CUBLAS_STATUS_SUCCESS) {
        int s = (int)e->blas_status;
        e->blas_status = CUBLAS_STATUS_SUCCESS;
        return craft_fail(err, CRAFT_EUNSUPPORTED, "cuBLAS: %s failed with status %d", where, s);
    }
    return CRAFT_OK;
}

/* ---------------------------------------------------------------- products */

/* Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, as the column-major C^T = op(B)^T op(A)^T. */
static void gemm(craft_cuda_engine *e, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    cublasStatus_t st = cublasSgemm(e->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                                    &alpha, B, ldb, A, lda, &beta, C, ldc);
    if (st != CUBLAS_STATUS_SUCCESS && e->blas_status == CUBLAS_STATUS_SUCCESS)
        e->blas_status = st;
}

/* The same, once per head h with A, B, C advanced by sa, sb, sc floats. */
static void gemm_heads(craft_cuda_engine *e, int ta, int tb, int M, int N, int K, const float *A, int lda,
                       long long sa, const float *B, int ldb, long long sb, float beta, float *C, int ldc,
                       long long sc)
{
    if (M <= 0)
        return;
    const float one = 1.0f;
    cublasStatus_t st = cublasSgemmStridedBatched(e->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                  ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &one, B, ldb, sb, A, lda,
                                                  sa, &beta, C, ldc, sc, e->H);
    if (st != CUBLAS_STATUS_SUCCESS && e->blas_status == CUBLAS_STATUS_SUCCESS)
        e->blas_status = st;
}

/* The device copy of a weight view of the model (NULL stays NULL). */
static const float *dp(const craft_cuda_engine *e, const float *host)
{
    return host ? e->params + (host - e->m->params) : NULL;
}

/* out[N, lin->out] = in[N, lin->in] W^T + b */
static void linear(craft_cuda_engine *e, float *out, int ldo, const float *in, int ldi, const craft_linear *lin,
                   int N)
{
    launch_bias_rows(e->stream, out, ldo, dp(e, lin->b), N, lin->out);
    gemm(e, 0, 1, N, lin->out, lin->in, 1.0f, in, ldi, dp(e, lin->w), lin->in, 1.0f, out, ldo);
}

/* ------------------------------------------------------------ workspace */

/* Lays the activations of a chunk of B orders out in one arena (base NULL:
 * only measures); returns the bytes needed. */
static size_t plan(craft_cuda_engine *e, unsigned char *base, int B)
{
    size_t off = 0;
    const craft_config *cfg = e->cfg;
    const size_t N = (size_t)B * e->T, d = e->d;
#define TAKE(ptr, type, count)                                      \
    do {                                                            \
        if (base)                                                   \
            (ptr) = (type *)(base + off);                           \
        off += ((sizeof(type) * (size_t)(count)) + 255) & ~(size_t)255; \
    } while (0)
    TAKE(e->X, float, N * d);
    TAKE(e->Hb, float, N * d);
    TAKE(e->QKVU, float, N * (size_t)(e->ldq > e->ffn ? e->ldq : e->ffn));
    TAKE(e->nbr, int, N * e->kk);
    TAKE(e->nbr_s, float, N * e->kk);
    TAKE(e->att_s, float, N * e->kk);
    TAKE(e->bins, int, (size_t)B * (e->F ? e->F : 1));
    TAKE(e->rr, float, (size_t)B * (e->F ? e->F : 1));
    TAKE(e->tab, float, (size_t)B * (e->F ? e->F : 1));
    int Dmax = 1;
    for (int m = 0; m < e->M; m++) {
        const craft_modality *md = &cfg->modalities[m];
        if (md->kind != CRAFT_EMBEDDING)
            continue;
        TAKE(e->emb[m], float, (size_t)B * md->tokens * md->dim);
        TAKE(e->ntok[m], int, B);
        Dmax = md->dim > Dmax ? md->dim : Dmax;
    }
    TAKE(e->n_bb, int, B);
    TAKE(e->avail, int, (size_t)e->M * B);
    TAKE(e->xmean, float, (size_t)B * Dmax);
    TAKE(e->f, float, (size_t)e->M * B * d);
    TAKE(e->C, float, B * d);
    TAKE(e->Csnap, float, (size_t)e->M * B * d);
    TAKE(e->qv, float, B * d);
    TAKE(e->qk, float, (size_t)B * e->H * d);
    TAKE(e->att, float, (size_t)B * e->H * e->T);
    TAKE(e->xbar, float, (size_t)B * e->H * d);
    float **rows[] = {&e->zb, &e->fhat, &e->cg, &e->P, &e->g, &e->fused, &e->hh, &e->h1};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        TAKE(*rows[i], float, B * d);
    TAKE(e->alpha, float, (size_t)B * e->T);
    TAKE(e->alpha_cf, float, (size_t)B * e->T);
    TAKE(e->logits, float, (size_t)B * e->K);
    TAKE(e->wide, float, (size_t)B * e->K);
    TAKE(e->scores, float, (size_t)B * e->K);
    TAKE(e->cond_gate, float, (size_t)B * e->M);
    TAKE(e->fuse_gate, float, (size_t)B * e->M);
    TAKE(e->cmis, float, (size_t)B * e->M * e->T);
#undef TAKE
    return off;
}

static size_t input_bytes(const craft_cuda_engine *e, int B)
{
    size_t n = sizeof(float) * (size_t)B * e->F + sizeof(int) * (size_t)B * (1 + 2 * e->M);
    for (int m = 0; m < e->M; m++)
        if (e->cfg->modalities[m].kind == CRAFT_EMBEDDING)
            n += sizeof(float) * (size_t)B * e->cfg->modalities[m].tokens * e->cfg->modalities[m].dim;
    return n;
}

static size_t output_bytes(const craft_cuda_engine *e, int B)
{
    return sizeof(float) * (size_t)B * (2 * e->K + e->T + 2 * e->M + (size_t)e->M * e->T);
}

/* -------------------------------------------------------- availability */

int craft_cuda_available(char *name, size_t n)
{
    char dummy[8];
    if (!name || !n)
        name = dummy, n = sizeof dummy;
    int count = 0;
    cudaError_t st = cudaGetDeviceCount(&count);
    if (st != cudaSuccess) {
        snprintf(name, n, "no usable CUDA GPU (%s)", cudaGetErrorString(st));
        return 0;
    }
    if (count < 1) {
        snprintf(name, n, "no CUDA GPU found");
        return 0;
    }
    cudaDeviceProp p;
    if ((st = cudaGetDeviceProperties(&p, 0)) != cudaSuccess) {
        snprintf(name, n, "the CUDA GPU cannot be queried (%s)", cudaGetErrorString(st));
        return 0;
    }
    if (p.major < 8) {
        snprintf(name, n, "the GPU %s has compute capability %d.%d; the CUDA engine needs 8.0 or newer", p.name,
                 p.major, p.minor);
        return 0;
    }
    if ((st = craft_cuda_kernels_loadable()) != cudaSuccess) {
        snprintf(name, n, "the CUDA engine's kernels cannot run on the GPU %s (%s)", p.name, cudaGetErrorString(st));
        return 0;
    }
    snprintf(name, n, "%s", p.name);
    return 1;
}

int craft_cuda_device_info(craft_cuda_info *info, craft_error *err)
{
    char why[256];
    memset(info, 0, sizeof *info);
    if (!craft_cuda_available(why, sizeof why))
        return craft_fail(err, CRAFT_EUNSUPPORTED, "%s", why);
    cudaDeviceProp p;
    int khz = 0;
    CK(cudaGetDeviceProperties(&p, 0));
    CK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->major = p.major;
    info->minor = p.minor;
    info->sms = p.multiProcessorCount;
    info->clock_ghz = khz * 1e-6;
    info->mem_gib = p.totalGlobalMem / 1073741824.0;
    /* FP32 lanes per SM: 64 on compute capability 8.0, 128 on 8.6, 8.9, 9.0 and later. */
    const int lanes = p.major == 8 && p.minor == 0 ? 64 : 128;
    info->peak_fp32_tflops = info->sms * (double)lanes * 2.0 * info->clock_ghz * 1e-3;
    /* Dense TF32 tensor flops per SM and clock: A100 (8.0) 1024, H100 (9.0) 2048.
     * With the driver's peak clock this is an upper bound (the vendor's sheets use a
     * lower sustained clock); other GPUs: unknown (0). */
    const int tf32 = p.major == 8 && p.minor == 0 ? 1024 : p.major == 9 && p.minor == 0 ? 2048 : 0;
    info->peak_tf32_tflops = info->sms * (double)tf32 * info->clock_ghz * 1e-3;
    return CRAFT_OK;
}

/* ----------------------------------------------------------- engine life */

void craft_cuda_engine_free(craft_cuda_engine *e)
{
    if (!e)
        return;
    if (e->stream)
        cudaStreamSynchronize(e->stream);
    cudaFree(e->params);
    cudaFree(e->tok_bin);
    cudaFree(e->tok_res);
    cudaFree(e->is_cat);
    cudaFree(e->calib);
    cudaFree(e->pool_qk);
    for (int l = 0; l < CRAFT_MAX_LAYERS; l++)
        cudaFree(e->wcat[l]);
    cudaFree(e->arena);
    cudaFreeHost(e->pin_in);
    cudaFreeHost(e->pin_out);
    if (e->blas)
        cublasDestroy(e->blas);
    if (e->stream)
        cudaStreamDestroy(e->stream);
    free(e->h_avail);
    free(e->h_nbb);
    free(e);
}

int craft_cuda_engine_chunk(const craft_cuda_engine *e) { return e ? e->B : 0; }

/* The per-class calibration (a then b) for k_scores. */
static int upload_calibration(craft_cuda_engine *e, craft_error *err)
{
    const int K = e->K;
    float *h = (float *)malloc(sizeof(float) * 2 * K);
    if (!h)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    memcpy(h, e->cfg->calib_a, sizeof(float) * K);
    memcpy(h + K, e->cfg->calib_b, sizeof(float) * K);
    cudaError_t st = cudaMalloc(&e->calib, sizeof(float) * 2 * K);
    if (st == cudaSuccess)
        st = cudaMemcpyAsync(e->calib, h, sizeof(float) * 2 * K, cudaMemcpyHostToDevice, e->stream);
    if (st == cudaSuccess)
        st = cudaStreamSynchronize(e->stream);
    free(h);
    return st == cudaSuccess ? CRAFT_OK : cuda_fail(err, st, "uploading the calibration");
}

/* The piecewise-linear encoding (MODEL.md): with P[j][k] = W1 bin_emb[j][k] and R[j] = W2 res_emb[j],
 * a numeric token is sum_{k<b} P[j][k] + rr (P[j][b] + R[j]) + W3 feat_emb[j] + bias, so the tables
 * become tok_bin[j][b] = sum_{k=1}^{b-1} P[j][k] (P[j][0] for missing) and a per-bin
 * tok_res[j][b] = P[j][b] + R[j] (R[j] for categorical features and missing values, whose rr is 0).
 * Computed once on the host in double precision, at engine creation. */
static int piecewise_tables(craft_cuda_engine *e, craft_error *err)
{
    const craft_modality *tm = &e->cfg->modalities[e->cfg->tabular];
    const int F = e->F, nb = e->nb, d = e->d;
    const size_t nbin = (size_t)F * (nb + 1) * d;
    float *P = (float *)malloc(sizeof(float) * nbin), *R = (float *)malloc(sizeof(float) * (size_t)F * d);
    float *RB = (float *)malloc(sizeof(float) * nbin);
    double *acc = (double *)malloc(sizeof(double) * d);
    float *dres = NULL;
    int rc = CRAFT_OK;
    cudaError_t st = cudaSuccess;
    if (!P || !R || !RB || !acc) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for the piecewise token tables");
        goto out;
    }
    if ((st = cudaMemcpyAsync(P, e->tok_bin, sizeof(float) * nbin, cudaMemcpyDeviceToHost, e->stream)) != cudaSuccess ||
        (st = cudaMemcpyAsync(R, e->tok_res, sizeof(float) * (size_t)F * d, cudaMemcpyDeviceToHost, e->stream)) !=
            cudaSuccess ||
        (st = cudaStreamSynchronize(e->stream)) != cudaSuccess) {
        rc = cuda_fail(err, st, "reading the token tables");
        goto out;
    }
    for (int j = 0; j < F; j++) {
        const int numeric = tm->features[j].type == CRAFT_NUMERIC;
        for (int c = 0; c < d; c++)
            acc[c] = 0.0;
        for (int b = 0; b <= nb; b++) {
            float *pb = P + ((size_t)j * (nb + 1) + b) * d, *rb = RB + ((size_t)j * (nb + 1) + b) * d;
            const float *rj = R + (size_t)j * d;
            for (int c = 0; c < d; c++) {
                const float own = pb[c];
                if (numeric && b > 0) {
                    rb[c] = own + rj[c];
                    pb[c] = (float)acc[c];
                    acc[c] += own;
                } else {
                    rb[c] = rj[c];
                }
            }
        }
    }
    if ((st = cudaMalloc(&dres, sizeof(float) * nbin)) != cudaSuccess ||
        (st = cudaMemcpyAsync(e->tok_bin, P, sizeof(float) * nbin, cudaMemcpyHostToDevice, e->stream)) != cudaSuccess ||
        (st = cudaMemcpyAsync(dres, RB, sizeof(float) * nbin, cudaMemcpyHostToDevice, e->stream)) != cudaSuccess ||
        (st = cudaStreamSynchronize(e->stream)) != cudaSuccess) {
        cudaFree(dres);
        rc = cuda_fail(err, st, "uploading the piecewise token tables");
        goto out;
    }
    cudaFree(e->tok_res);
    e->tok_res = dres;
    e->res_per_bin = 1;
out:
    free(P);
    free(R);
    free(RB);
    free(acc);
    return rc;
}

/* Token tables of the tabular modality (see the top of this file), in FP32. */
static int prepare_tabular(craft_cuda_engine *e, craft_error *err)
{
    const craft_config *cfg = e->cfg;
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    const craft_embed *em = &e->m->w.embed[cfg->tabular];
    const int F = e->F, nb = e->nb, E = e->E, d = e->d;
    const float *W = dp(e, em->proj.w); /* [d, 3E] */
    float *feat = NULL;
    CK(cudaMalloc(&e->tok_bin, sizeof(float) * (size_t)F * (nb + 1) * d));
    CK(cudaMalloc(&e->tok_res, sizeof(float) * (size_t)F * d));
    CK(cudaMalloc(&e->is_cat, sizeof(int) * F));
    CK(cudaMalloc(&feat, sizeof(float) * (size_t)F * d));
    gemm(e, 0, 1, F * (nb + 1), d, E, 1.0f, dp(e, em->bin_emb), E, W, 3 * E, 0.0f, e->tok_bin, d);
    gemm(e, 0, 1, F, d, E, 1.0f, dp(e, em->res_emb), E, W + E, 3 * E, 0.0f, e->tok_res, d);
    if (cfg->tab_encoding == CRAFT_TAB_PIECEWISE) {
        int rc = piecewise_tables(e, err);
        if (rc) {
            cudaFree(feat);
            return rc;
        }
    }
    launch_bias_rows(e->stream, feat, d, dp(e, em->proj.b), F, d);
    gemm(e, 0, 1, F, d, E, 1.0f, dp(e, em->feat_emb), E, W + 2 * E, 3 * E, 1.0f, feat, d);
    launch_add_feature_rows(e->stream, e->tok_bin, feat, F, nb, d);
    int *cat = (int *)malloc(sizeof(int) * F);
    if (!cat) {
        cudaStreamSynchronize(e->stream);
        cudaFree(feat);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    for (int j = 0; j < F; j++)
        cat[j] = tm->features[j].type == CRAFT_CATEGORICAL;
    cudaError_t st = cudaMemcpyAsync(e->is_cat, cat, sizeof(int) * F, cudaMemcpyHostToDevice, e->stream);
    int rc = st == cudaSuccess ? sync_check(e, err, "the tabular token tables") : cuda_fail(err, st, "copying");
    free(cat);
    cudaFree(feat);
    return rc;
}

/* Stacked q, k, v and routing weights per layer; the folded pooling query. */
static int prepare_blocks(craft_cuda_engine *e, craft_error *err)
{
    const craft_weights *w = &e->m->w;
    const size_t dd = (size_t)e->d * e->d;
    for (int l = 0; l < e->cfg->layers; l++) {
        const craft_block *bl = &w->blocks[l];
        CK(cudaMalloc(&e->wcat[l], sizeof(float) * (size_t)e->ldq * e->d));
        const float *parts[4] = {bl->q.w, bl->k.w, bl->v.w, bl->route};
        const size_t sizes[4] = {dd, dd, dd, (size_t)e->r * e->d};
        size_t off = 0;
        for (int i = 0; i < 4; i++) {
            CK(cudaMemcpyAsync(e->wcat[l] + off, dp(e, parts[i]), sizeof(float) * sizes[i], cudaMemcpyDeviceToDevice,
                               e->stream));
            off += sizes[i];
        }
    }
    /* pool_qk[h, c] = sum over the head's rows of query[r] Wk[r, c], as engine/forward.c */
    float *qk = (float *)malloc(sizeof(float) * (size_t)e->H * e->d);
    if (!qk)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    for (int hd = 0; hd < e->H; hd++)
        for (int c = 0; c < e->d; c++) {
            float acc = 0.0f;
            for (int r = hd * e->dh; r < (hd + 1) * e->dh; r++)
                acc += w->pool_query[r] * w->pool_k.w[(size_t)r * e->d + c];
            qk[(size_t)hd * e->d + c] = acc;
        }
    cudaError_t st = cudaMalloc(&e->pool_qk, sizeof(float) * (size_t)e->H * e->d);
    if (st == cudaSuccess)
        st = cudaMemcpy(e->pool_qk, qk, sizeof(float) * (size_t)e->H * e->d, cudaMemcpyHostToDevice);
    free(qk);
    if (st != cudaSuccess)
        return cuda_fail(err, st, "the pooling query");
    return sync_check(e, err, "the stacked block weights");
}

/* The largest chunk whose activations fit in 80% of the free device memory. */
static int choose_chunk(craft_cuda_engine *e, int max_batch)
{
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess)
        return 0;
    const size_t one = plan(e, NULL, 1), two = plan(e, NULL, 2);
    const size_t per = two - one, fixed = one > per ? one - per : 0, budget = free_b / 10 * 8;
    if (budget <= fixed + per)
        return 0;
    size_t fit = (budget - fixed) / per;
    return fit < (size_t)max_batch ? (int)fit : max_batch;
}

int craft_cuda_engine_new(craft_cuda_engine **out, const craft_model *m, int max_batch, int precision,
                          craft_error *err)
{
    *out = NULL;
    char why[256];
    if (!craft_cuda_available(why, sizeof why))
        return craft_fail(err, CRAFT_EUNSUPPORTED, "%s", why);
    if (max_batch < 1 || max_batch > (1 << 20))
        return craft_fail(err, CRAFT_EINPUT, "batch size %d is outside 1..1048576", max_batch);
    if (precision != CRAFT_PRECISION_FP32 && precision != CRAFT_PRECISION_FAST)
        return craft_fail(err, CRAFT_EINPUT, "unknown precision %d (fp32 or fast)", precision);
    craft_cuda_engine *e = (craft_cuda_engine *)calloc(1, sizeof *e);
    if (!e)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    const craft_config *cfg = &m->cfg;
    e->m = m;
    e->cfg = cfg;
    e->max_batch = max_batch;
    e->precision = precision;
    e->bb = cfg->backbone;
    e->T = cfg->modalities[cfg->backbone].tokens;
    e->d = cfg->d_model;
    e->H = cfg->heads;
    e->dh = e->d / e->H;
    e->M = cfg->n_modalities;
    e->K = cfg->n_classes;
    e->F = cfg->tabular >= 0 ? cfg->modalities[cfg->tabular].n_features : 0;
    e->ffn = e->d * cfg->ffn_mult;
    e->r = cfg->route_dim;
    e->topk = cfg->topk;
    e->kk = cfg->topk < e->T ? cfg->topk : e->T;
    e->nb = cfg->bins;
    e->E = cfg->emb_dim;
    e->ldq = 3 * e->d + e->r;
    int rc = CRAFT_OK;
    cudaError_t st;
#define STEP(call, what)                                  \
    if (!rc && (st = (call)) != cudaSuccess)              \
        rc = cuda_fail(err, st, what);
    STEP(cudaSetDevice(0), "selecting the GPU");
    STEP(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking), "creating a stream");
    if (!rc && cublasCreate(&e->blas) != CUBLAS_STATUS_SUCCESS)
        rc = craft_fail(err, CRAFT_EUNSUPPORTED, "cuBLAS could not be initialized");
    if (!rc) {
        cublasSetStream(e->blas, e->stream);
        cublasSetMathMode(e->blas, CUBLAS_DEFAULT_MATH); /* the tables below are always FP32 */
    }
    STEP(cudaMalloc(&e->params, sizeof(float) * m->layout.total), "the model's parameters");
    STEP(cudaMemcpy(e->params, m->params, sizeof(float) * m->layout.total, cudaMemcpyHostToDevice),
         "copying the model's parameters");
#undef STEP
    if (!rc && cfg->tabular >= 0)
        rc = prepare_tabular(e, err);
    if (!rc)
        rc = prepare_blocks(e, err);
    if (!rc && cfg->calib_a)
        rc = upload_calibration(e, err);
    if (!rc && precision == CRAFT_PRECISION_FAST)
        cublasSetMathMode(e->blas, CUBLAS_TF32_TENSOR_OP_MATH);
    if (!rc && !(e->B = choose_chunk(e, max_batch)))
        rc = craft_fail(err, CRAFT_ENOMEM, "the GPU has no room for the activations of even one order");
    if (!rc) {
        const size_t bytes = plan(e, NULL, e->B);
        if ((st = cudaMalloc(&e->arena, bytes)) != cudaSuccess)
            rc = cuda_fail(err, st, "the activations");
        else
            plan(e, (unsigned char *)e->arena, e->B);
    }
    if (!rc) {
        e->pin_in_bytes = input_bytes(e, e->B);
        e->pin_out_bytes = output_bytes(e, e->B);
        if ((st = cudaMallocHost(&e->pin_in, e->pin_in_bytes)) != cudaSuccess ||
            (st = cudaMallocHost(&e->pin_out, e->pin_out_bytes)) != cudaSuccess)
            rc = cuda_fail(err, st, "pinned staging memory");
    }
    if (!rc && (!(e->h_avail = (int *)calloc((size_t)e->M * e->B, sizeof(int))) ||
                !(e->h_nbb = (int *)calloc((size_t)e->B, sizeof(int)))))
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (rc) {
        craft_cuda_engine_free(e);
        return rc;
    }
    *out = e;
    return CRAFT_OK;
}

/* ------------------------------------------------------------ validation */

/* The checks of the CPU engine's check_batch, with the same messages. */
static int check_batch(const craft_cuda_engine *e, const craft_batch *bt, craft_error *err)
{
    const craft_config *cfg = e->cfg;
    if (bt->n < 0 || bt->n > e->max_batch)
        return craft_fail(err, CRAFT_EINPUT, "batch of %d orders; this engine takes at most %d", bt->n, e->max_batch);
    if (bt->F != e->F)
        return craft_fail(err, CRAFT_EINPUT, "batch has %d tabular features, the model %d", bt->F, e->F);
    for (int b = 0; b < bt->n; b++) {
        for (int j = 0; j < e->F; j++) {
            float x = bt->tab[(size_t)b * e->F + j];
            const craft_feature *f = &cfg->modalities[cfg->tabular].features[j];
            if (isinf(x))
                return craft_fail(err, CRAFT_EINPUT, "order %d: feature \"%s\" is infinite", b, f->name);
            if (f->type == CRAFT_CATEGORICAL && !isnan(x) && (x < 1 || x > cfg->bins || x != floorf(x)))
                return craft_fail(err, CRAFT_EINPUT, "order %d: feature \"%s\" has no valid category code", b,
                                  f->name);
        }
        for (int m = 0; m < cfg->n_modalities; m++) {
            const craft_modality *mod = &cfg->modalities[m];
            if (mod->kind != CRAFT_EMBEDDING)
                continue;
            int t = bt->ntok[m][b];
            if (t < 0 || t > mod->tokens)
                return craft_fail(err, CRAFT_EINPUT, "order %d: %d \"%s\" tokens (at most %d)", b, t, mod->name,
                                  mod->tokens);
            if (m == cfg->backbone && t < 1)
                return craft_fail(err, CRAFT_EINPUT, "order %d has no \"%s\" input, the model's backbone", b,
                                  mod->name);
            const float *X = bt->emb[m] + (size_t)b * mod->tokens * mod->dim;
            for (size_t i = 0; i < (size_t)t * mod->dim; i++)
                if (!isfinite(X[i]))
                    return craft_fail(err, CRAFT_EINPUT, "order %d: \"%s\" embedding holds a non-finite value", b,
                                      mod->name);
        }
    }
    return CRAFT_OK;
}

/* ------------------------------------------------------------ the passes */

/* Copies orders [off, off+cnt) of the batch to the device (through pinned memory)
 * and sets the host flags n_bb and avail. */
static int upload_chunk(craft_cuda_engine *e, const craft_batch *bt, int off, int cnt, craft_error *err)
{
    const craft_config *cfg = e->cfg;
    unsigned char *p = e->pin_in;
    const size_t pin_cap = e->pin_in_bytes;
    size_t used = 0;
    /* stage one array: host -> pinned -> device (asynchronous) */
#define STAGE(dev, src, bytes)                                                              \
    do {                                                                                    \
        size_t nb_ = (bytes);                                                               \
        if (used + nb_ > pin_cap)                                                           \
            return craft_fail(err, CRAFT_EINPUT, "internal: staging buffer too small");      \
        memcpy(p + used, (src), nb_);                                                       \
        CK(cudaMemcpyAsync((dev), p + used, nb_, cudaMemcpyHostToDevice, e->stream));       \
        used += nb_;                                                                        \
    } while (0)
    for (int m = 0; m < e->M; m++) {
        e->any_avail[m] = 0;
        for (int b = 0; b < cnt; b++) {
            int a = cfg->modalities[m].kind == CRAFT_TABULAR || bt->ntok[m][off + b] > 0;
            e->h_avail[(size_t)m * e->B + b] = a;
            e->any_avail[m] |= a;
        }
    }
    for (int b = 0; b < cnt; b++)
        e->h_nbb[b] = cfg->modalities[e->bb].kind == CRAFT_TABULAR ? e->T : bt->ntok[e->bb][off + b];
    if (e->F)
        STAGE(e->tab, bt->tab + (size_t)off * e->F, sizeof(float) * (size_t)cnt * e->F);
    for (int m = 0; m < e->M; m++) {
        const craft_modality *md = &cfg->modalities[m];
        if (md->kind != CRAFT_EMBEDDING)
            continue;
        const size_t per = (size_t)md->tokens * md->dim;
        STAGE(e->emb[m], bt->emb[m] + (size_t)off * per, sizeof(float) * cnt * per);
        STAGE(e->ntok[m], bt->ntok[m] + off, sizeof(int) * cnt);
    }
    STAGE(e->n_bb, e->h_nbb, sizeof(int) * cnt);
    for (int m = 0; m < e->M; m++)
        STAGE(e->avail + (size_t)m * e->B, e->h_avail + (size_t)m * e->B, sizeof(int) * cnt);
#undef STAGE
    return CRAFT_OK;
}

/* Tokens, blocks, LN_f and the auxiliary representations of the chunk's cnt orders;
 * missing_j >= 0 treats that tabular feature as missing (perturbation). */
static void backbone_forward(craft_cuda_engine *e, int cnt, int missing_j)
{
    const craft_config *cfg = e->cfg;
    const craft_weights *w = &e->m->w;
    cudaStream_t s = e->stream;
    const int T = e->T, d = e->d, N = cnt * T, bb = e->bb;
    if (cfg->tabular >= 0)
        launch_binning(s, e->bins, e->rr, e->tab, dp(e, w->embed[cfg->tabular].edges), e->is_cat, cnt, e->F, e->nb,
                       missing_j);
    if (cfg->modalities[bb].kind == CRAFT_TABULAR) {
        launch_tab_tokens(s, e->X, T, e->bins, e->rr, e->tok_bin, e->tok_res, e->res_per_bin, cnt, e->F, e->nb, d);
    } else {
        const craft_embed *em = &w->embed[bb];
        const int D = cfg->modalities[bb].dim;
        gemm(e, 0, 1, N, d, D, 1.0f, e->emb[bb], D, dp(e, em->proj.w), D, 0.0f, e->X, d);
        launch_emb_tokens_finish(s, e->X, e->ntok[bb], dp(e, em->proj.b), dp(e, em->pos_emb), cnt, T, d);
    }
    if (cfg->wide_head) /* wide = X0 head_wide^T, added to every request's logits */
        gemm(e, 0, 1, cnt, e->K, T * d, 1.0f, e->X, T * d, dp(e, w->head_wide), T * d, 0.0f, e->wide, e->K);
    const float *pend = NULL; /* a bias still to be added to X (by the next LayerNorm) */
    for (int l = 0; l < cfg->layers; l++) {
        const craft_block *bl = &w->blocks[l];
        launch_layernorm(s, e->Hb, e->X, pend, dp(e, bl->ln1.w), dp(e, bl->ln1.b), N, d, T, NULL);
        gemm(e, 0, 1, N, e->ldq, d, 1.0f, e->Hb, d, e->wcat[l], d, 0.0f, e->QKVU, e->ldq);
        launch_route_select(s, e->nbr, e->nbr_s, e->QKVU + 3 * d, e->ldq, e->n_bb, cnt, T, e->r, e->topk, e->kk);
        launch_sparse_attention(s, e->Hb, e->QKVU, e->ldq, dp(e, bl->q.b), dp(e, bl->k.b), dp(e, bl->v.b), e->nbr,
                                e->nbr_s, e->att_s, e->n_bb, cnt, T, d, e->H, e->topk, e->kk);
        gemm(e, 0, 1, N, d, d, 1.0f, e->Hb, d, dp(e, bl->o.w), d, 1.0f, e->X, d);
        launch_layernorm(s, e->Hb, e->X, dp(e, bl->o.b), dp(e, bl->ln2.w), dp(e, bl->ln2.b), N, d, T, NULL);
        gemm(e, 0, 1, N, e->ffn, d, 1.0f, e->Hb, d, dp(e, bl->fc1.w), d, 0.0f, e->QKVU, e->ffn);
        launch_bias_gelu(s, e->QKVU, e->ffn, dp(e, bl->fc1.b), N, e->ffn);
        gemm(e, 0, 1, N, d, e->ffn, 1.0f, e->QKVU, e->ffn, dp(e, bl->fc2.w), e->ffn, 1.0f, e->X, d);
        pend = dp(e, bl->fc2.b);
    }
    launch_layernorm(s, e->X, e->X, pend, dp(e, w->ln_f.w), dp(e, w->ln_f.b), N, d, T, e->n_bb);
    for (int m = 0; m < e->M; m++) {
        if (m == bb)
            continue;
        float *fm = e->f + (size_t)m * e->B * d;
        const craft_modality *md = &cfg->modalities[m];
        if (md->kind == CRAFT_TABULAR) {
            launch_tab_mean(s, fm, e->bins, e->rr, e->tok_bin, e->tok_res, e->res_per_bin, cnt, e->F, e->nb, d);
            continue;
        }
        const craft_embed *em = &w->embed[m];
        launch_row_mean(s, e->xmean, e->emb[m], e->ntok[m], cnt, md->tokens, md->dim);
        gemm(e, 0, 1, cnt, d, md->dim, 1.0f, e->xmean, md->dim, dp(e, em->proj.w), md->dim, 0.0f, fm, d);
        launch_aux_finish(s, fm, e->ntok[m], dp(e, em->proj.b), dp(e, em->pos_emb), cnt, d);
    }
}

/* zb = per head xbar_h Wv_h^T + bv_h; out = Linear_o(zb). */
static void attention_output(craft_cuda_engine *e, float *out, const craft_linear *wv, const craft_linear *wo,
                             int cnt)
{
    const int d = e->d, dh = e->dh;
    launch_bias_rows(e->stream, e->zb, d, dp(e, wv->b), cnt, d);
    gemm_heads(e, 0, 1, cnt, dh, d, e->xbar, e->H * d, d, dp(e, wv->w), d, (long long)dh * d, 1.0f, e->zb, d, dh);
    linear(e, out, d, e->zb, d, wo, cnt);
}

/* Conditioning by auxiliary m of the orders active under act_a (and act_b): C *= c_m. */
static void conditioning(craft_cuda_engine *e, int m, const int *act_a, const int *act_b, float *gate_mean, int cnt)
{
    const craft_cross *cr = &e->m->w.cross[m];
    const int d = e->d, dh = e->dh, H = e->H;
    linear(e, e->qv, d, e->f + (size_t)m * e->B * d, d, &cr->q, cnt);
    /* qk[b, h, :] = q[b, h-chunk] Wk[h-chunk, :] */
    gemm_heads(e, 0, 0, cnt, d, dh, e->qv, d, dh, dp(e, cr->k.w), d, (long long)dh * d, 0.0f, e->qk, H * d, d);
    launch_single_query(e->stream, e->att, e->xbar, NULL, e->X, e->n_bb, e->qk, (size_t)H * d, e->C, act_a, act_b,
                        cnt, e->T, d, H);
    attention_output(e, e->fhat, &cr->v, &cr->o, cnt);
    linear(e, e->cg, d, e->fhat, d, &cr->gate, cnt);
    launch_gate(e->stream, e->cg, e->C, NULL, NULL, act_a, act_b, gate_mean, e->M, m, cnt, d);
}

static void pooling(craft_cuda_engine *e, float *alpha, int want_P, int cnt)
{
    const craft_weights *w = &e->m->w;
    launch_single_query(e->stream, e->att, e->xbar, alpha, e->X, e->n_bb, e->pool_qk, 0, e->C, NULL, NULL, cnt, e->T,
                        e->d, e->H);
    if (want_P)
        attention_output(e, e->P, &w->pool_v, &w->pool_o, cnt);
}

static int aux_on(const craft_cuda_engine *e, const craft_request *rq, int m)
{
    return m != e->bb && !(rq->off_mask >> m & 1u) && e->any_avail[m];
}

static const int *avail_dev(const craft_cuda_engine *e, int m) { return e->avail + (size_t)m * e->B; }

/* Steps 2-5 of MODEL.md for one request: logits and scores; with gates, the mean
 * gates per auxiliary (NaN where unused); alpha always. */
static void tail_forward(craft_cuda_engine *e, const craft_request *rq, int cnt, int gates)
{
    const craft_weights *w = &e->m->w;
    cudaStream_t s = e->stream;
    const int d = e->d, M = e->M;
    launch_fill(s, e->C, 1.0f, (size_t)cnt * d);
    if (gates) {
        launch_fill(s, e->cond_gate, NAN, (size_t)cnt * M);
        launch_fill(s, e->fuse_gate, NAN, (size_t)cnt * M);
    }
    for (int m = 0; m < M; m++) {
        if (!aux_on(e, rq, m))
            continue;
        if (rq->cmis)
            cudaMemcpyAsync(e->Csnap + (size_t)m * e->B * d, e->C, sizeof(float) * cnt * d, cudaMemcpyDeviceToDevice,
                            s);
        conditioning(e, m, avail_dev(e, m), NULL, gates ? e->cond_gate : NULL, cnt);
    }
    pooling(e, e->alpha, 1, cnt);
    cudaMemcpyAsync(e->fused, e->P, sizeof(float) * cnt * d, cudaMemcpyDeviceToDevice, s);
    for (int m = 0; m < M; m++) {
        if (!aux_on(e, rq, m))
            continue;
        const float *fm = e->f + (size_t)m * e->B * d;
        launch_bias_rows(s, e->g, d, dp(e, w->fuse[m].b), cnt, d);
        gemm(e, 0, 1, cnt, d, d, 1.0f, e->P, d, dp(e, w->fuse[m].w), 2 * d, 1.0f, e->g, d);
        gemm(e, 0, 1, cnt, d, d, 1.0f, fm, d, dp(e, w->fuse[m].w) + d, 2 * d, 1.0f, e->g, d);
        launch_gate(s, e->g, NULL, e->fused, fm, avail_dev(e, m), NULL, gates ? e->fuse_gate : NULL, M, m, cnt, d);
    }
    launch_layernorm(s, e->hh, e->fused, NULL, dp(e, w->head_ln.w), dp(e, w->head_ln.b), cnt, d, 1, NULL);
    gemm(e, 0, 1, cnt, d, d, 1.0f, e->hh, d, dp(e, w->head_fc1.w), d, 0.0f, e->h1, d);
    launch_bias_gelu(s, e->h1, d, dp(e, w->head_fc1.b), cnt, d);
    linear(e, e->logits, e->K, e->h1, d, &w->head_fc2, cnt);
    if (e->cfg->wide_head) {
        const float one = 1.0f;
        cublasSaxpy(e->blas, cnt * e->K, &one, e->wide, 1, e->logits, 1);
    }
    launch_scores(s, e->scores, e->logits, e->calib, e->calib ? e->calib + e->K : NULL, cnt, e->K,
                  e->cfg->task == CRAFT_MULTICLASS);
}

/* CMIS(j, m) = alpha_j - alpha_j with m's gate the identity; the conditionings
 * after m rerun from C before m (saved by tail_forward). */
static void cmis_forward(craft_cuda_engine *e, const craft_request *rq, int cnt)
{
    const int d = e->d, M = e->M;
    launch_fill(e->stream, e->cmis, NAN, (size_t)cnt * M * e->T);
    for (int m = 0; m < M; m++) {
        if (!aux_on(e, rq, m))
            continue;
        cudaMemcpyAsync(e->C, e->Csnap + (size_t)m * e->B * d, sizeof(float) * cnt * d, cudaMemcpyDeviceToDevice,
                        e->stream);
        for (int m2 = m + 1; m2 < M; m2++) {
            if (!aux_on(e, rq, m2))
                continue;
            int any = 0;
            for (int b = 0; b < cnt && !any; b++)
                any = e->h_avail[(size_t)m * e->B + b] && e->h_avail[(size_t)m2 * e->B + b];
            if (any)
                conditioning(e, m2, avail_dev(e, m), avail_dev(e, m2), NULL, cnt);
        }
        pooling(e, e->alpha_cf, 0, cnt);
        launch_cmis(e->stream, e->cmis, e->alpha, e->alpha_cf, avail_dev(e, m), e->n_bb, cnt, M, m, e->T);
    }
}

/* Queues a device -> pinned copy; returns the pinned address. */
static float *fetch(craft_cuda_engine *e, size_t *used, const float *dev, size_t floats)
{
    float *p = (float *)(e->pin_out + *used);
    cudaMemcpyAsync(p, dev, sizeof(float) * floats, cudaMemcpyDeviceToHost, e->stream);
    *used += sizeof(float) * floats;
    return p;
}

/* One request over the chunk's backbone pass: fills orders [off, off+cnt) of res. */
static int run_request(craft_cuda_engine *e, const craft_request *rq, int off, int cnt, craft_result *res,
                       craft_error *err)
{
    const int K = e->K, M = e->M, T = e->T, bb = e->bb;
    tail_forward(e, rq, cnt, 1);
    size_t used = 0;
    float *scores = fetch(e, &used, e->scores, (size_t)cnt * K);
    float *logits = fetch(e, &used, e->logits, (size_t)cnt * K);
    float *cond = fetch(e, &used, e->cond_gate, (size_t)cnt * M);
    float *fuse = fetch(e, &used, e->fuse_gate, (size_t)cnt * M);
    float *alpha = res->importance ? fetch(e, &used, e->alpha, (size_t)cnt * T) : NULL;
    float *cmis = NULL;
    if (rq->cmis && res->cmis) {
        cmis_forward(e, rq, cnt);
        cmis = fetch(e, &used, e->cmis, (size_t)cnt * M * T);
    }
    int rc = sync_check(e, err, "scoring");
    if (rc)
        return rc;
    memcpy(res->scores + (size_t)off * K, scores, sizeof(float) * cnt * K);
    memcpy(res->logits + (size_t)off * K, logits, sizeof(float) * cnt * K);
    memcpy(res->cond_gate + (size_t)off * M, cond, sizeof(float) * cnt * M);
    memcpy(res->fuse_gate + (size_t)off * M, fuse, sizeof(float) * cnt * M);
    if (alpha)
        memcpy(res->importance + (size_t)off * T, alpha, sizeof(float) * cnt * T);
    if (cmis)
        memcpy(res->cmis + (size_t)off * M * T, cmis, sizeof(float) * cnt * M * T);
    for (int b = 0; b < cnt; b++) {
        uint32_t u = 1u << bb;
        for (int m = 0; m < M; m++)
            if (m != bb && !(rq->off_mask >> m & 1u) && e->h_avail[(size_t)m * e->B + b])
                u |= 1u << m;
        res->used[off + b] = u;
        res->ntok[off + b] = e->h_nbb[b];
    }
    return CRAFT_OK;
}

/* Perturbation importance: the whole pass once per tabular feature set missing. */
static int perturbation(craft_cuda_engine *e, const craft_request *req, int n_req, int off, int cnt,
                        craft_result *results, craft_error *err)
{
    const int F = e->F, K = e->K;
    for (int j = 0; j < F; j++) {
        backbone_forward(e, cnt, j);
        for (int i = 0; i < n_req; i++) {
            if (!(req[i].perturbation && results[i].perturb))
                continue;
            tail_forward(e, &req[i], cnt, 0);
            size_t used = 0;
            const float *ps = fetch(e, &used, e->scores, (size_t)cnt * K);
            int rc = sync_check(e, err, "perturbation importance");
            if (rc)
                return rc;
            for (int b = 0; b < cnt; b++)
                for (int k = 0; k < K; k++) {
                    const size_t o = (size_t)(off + b) * K + k;
                    results[i].perturb[o * F + j] = results[i].scores[o] - ps[(size_t)b * K + k];
                }
        }
    }
    return CRAFT_OK;
}

int craft_cuda_engine_run(craft_cuda_engine *e, const craft_batch *bt, const craft_request *req, int n_req,
                          craft_result *results, craft_error *err)
{
    int rc = check_batch(e, bt, err);
    if (rc)
        return rc;
    for (int i = 0; i < n_req; i++)
        if (req[i].off_mask >> e->bb & 1u)
            return craft_fail(err, CRAFT_EINPUT, "the backbone \"%s\" cannot be switched off",
                              e->cfg->modalities[e->bb].name);
    for (int i = 0; i < n_req; i++)
        results[i].n = bt->n;
    int want_pert = 0;
    for (int i = 0; i < n_req; i++)
        want_pert |= req[i].perturbation && results[i].perturb;
    for (int off = 0; off < bt->n; off += e->B) {
        const int cnt = bt->n - off < e->B ? bt->n - off : e->B;
        if ((rc = upload_chunk(e, bt, off, cnt, err)))
            return rc;
        backbone_forward(e, cnt, -1);
        for (int i = 0; i < n_req && !rc; i++)
            rc = run_request(e, &req[i], off, cnt, &results[i], err);
        if (!rc && want_pert && e->F)
            rc = perturbation(e, req, n_req, off, cnt, results, err);
        if (rc)
            return rc;
    }
    return CRAFT_OK;
}

/* ------------------------------------------------------------- test hook */

int craft_cuda_route_select(const float *U, int n, int r, int k, int *idx, craft_error *err)
{
    char why[256];
    if (!craft_cuda_available(why, sizeof why))
        return craft_fail(err, CRAFT_EUNSUPPORTED, "%s", why);
    if (n < 1 || r < 1 || k < 1)
        return craft_fail(err, CRAFT_EINPUT, "route_select: n, r and k must be positive");
    const int kk = k < n ? k : n;
    float *dU = NULL, *ds = NULL;
    int *dn = NULL, *di = NULL;
    cudaError_t st = cudaMalloc(&dU, sizeof(float) * (size_t)n * r);
    if (st == cudaSuccess)
        st = cudaMalloc(&ds, sizeof(float) * (size_t)n * kk);
    if (st == cudaSuccess)
        st = cudaMalloc(&di, sizeof(int) * (size_t)n * kk);
    if (st == cudaSuccess)
        st = cudaMalloc(&dn, sizeof(int));
    if (st == cudaSuccess)
        st = cudaMemcpy(dU, U, sizeof(float) * (size_t)n * r, cudaMemcpyHostToDevice);
    if (st == cudaSuccess)
        st = cudaMemcpy(dn, &n, sizeof(int), cudaMemcpyHostToDevice);
    if (st == cudaSuccess) {
        launch_route_select(0, di, ds, dU, r, dn, 1, n, r, k, kk);
        st = cudaGetLastError();
    }
    if (st == cudaSuccess)
        st = cudaMemcpy(idx, di, sizeof(int) * (size_t)n * kk, cudaMemcpyDeviceToHost);
    cudaFree(dU);
    cudaFree(ds);
    cudaFree(di);
    cudaFree(dn);
    return st == cudaSuccess ? CRAFT_OK : cuda_fail(err, st, "route_select");
}
