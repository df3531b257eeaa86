/* ops.c: elementwise and row-wise layers; matrix products go to OpenBLAS. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops.h"

/* per calling thread: an app may score on a worker while re-scoring one order on another */
static _Thread_local int n_threads = 1;

void craft_threads_init(int threads)
{
    n_threads = threads > 0 ? threads : 1;
    openblas_set_num_threads(1);
#ifdef _OPENMP
    omp_set_num_threads(n_threads);
#endif
}

int craft_threads_get(void) { return n_threads; }

void craft_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    const enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    const long work = (long)M * N * K;
    int parts = n_threads;
    if (work < 200000 || parts < 2) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const int by_rows = M >= 8 * parts || M >= N;
    const int total = by_rows ? M : N;
    if (total < parts)
        parts = total;
#pragma omp parallel for schedule(static) num_threads(parts)
    for (int p = 0; p < parts; p++) {
        int lo = (int)((long)total * p / parts), hi = (int)((long)total * (p + 1) / parts);
        if (hi <= lo)
            continue;
        if (by_rows) {
            const float *Ap = transA ? A + lo : A + (size_t)lo * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, N, K, alpha, Ap, lda, B, ldb, beta, C + (size_t)lo * ldc, ldc);
        } else {
            const float *Bp = transB ? B + (size_t)lo * ldb : B + lo;
            cblas_sgemm(CblasRowMajor, ta, tb, M, hi - lo, K, alpha, A, lda, Bp, ldb, beta, C + lo, ldc);
        }
    }
}

void linear_forward(float *out, int ldo, const float *in, int ldi, const craft_linear *lin, int N)
{
    /* Seed every row with the bias, then accumulate the product on top (beta = 1). */
    for (int i = 0; i < N; i++)
        memcpy(out + (size_t)i * ldo, lin->b, sizeof(float) * lin->out);
    craft_sgemm(0, 1, N, lin->out, lin->in, 1.0f, in, ldi, lin->w, lin->in, 1.0f, out, ldo);
}

/* Mean and variance with 16 partial sums in a fixed order (vectorizes, repeatable). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void layernorm_row(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int C)
{
    float acc[16] = {0};
    int c = 0;
    for (; c + 16 <= C; c += 16)
        for (int l = 0; l < 16; l++)
            acc[l] += x[c + l];
    for (; c < C; c++)
        acc[c & 15] += x[c];
    float s = 0.0f;
    for (int l = 0; l < 16; l++)
        s += acc[l];
    const float mu = s / C;
    float vacc[16] = {0};
    for (c = 0; c + 16 <= C; c += 16)
        for (int l = 0; l < 16; l++) {
            float dx = x[c + l] - mu;
            vacc[l] += dx * dx;
        }
    for (; c < C; c++)
        vacc[c & 15] += (x[c] - mu) * (x[c] - mu);
    float v = 0.0f;
    for (int l = 0; l < 16; l++)
        v += vacc[l];
    const float r = 1.0f / sqrtf(v / C + 1e-5f);
    for (c = 0; c < C; c++)
        y[c] = (x[c] - mu) * r * w[c] + b[c];
    if (mean)
        *mean = mu;
    if (rstd)
        *rstd = r;
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *in, const craft_norm *ln,
                       int N, int C)
{
#pragma omp parallel for schedule(static) if (N > 256)
    for (int i = 0; i < N; i++)
        layernorm_row(out + (size_t)i * C, mean ? mean + i : NULL, rstd ? rstd + i : NULL, in + (size_t)i * C,
                      ln->w, ln->b, C);
}

/* tanh as a rational function (the minimax fit used by Eigen): within a few
 * float ulp of tanhf on all inputs, and branch-free so that it vectorizes;
 * libm's tanhf was a quarter of the whole scoring time. */
static inline float fast_tanhf(float x)
{
    const float clamp = 7.90531110763549805f;
    x = x > clamp ? clamp : x < -clamp ? -clamp : x;
    const float x2 = x * x;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = x * p;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    return p / q;
}

float craft_tanhf(float x) { return fast_tanhf(x); }

__attribute__((target_clones("avx512f", "avx2", "default")))
static void gelu_block(float *out, const float *in, size_t n)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + fast_tanhf(k * (x + 0.044715f * x * x * x)));
    }
}

void gelu_forward(float *out, const float *in, size_t n)
{
    const size_t block = 1 << 14;
    const long nblocks = (long)((n + block - 1) / block);
#pragma omp parallel for schedule(static) if (nblocks > 1)
    for (long b = 0; b < nblocks; b++) {
        size_t lo = (size_t)b * block, len = n - lo < block ? n - lo : block;
        gelu_block(out + lo, in + lo, len);
    }
}

void softmax_inplace(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    float s = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = 1.0f / s;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

void topk_select(int *idx, float *best, const float *s, int n, int k)
{
    /* Insertion into a descending list of the best k so far; scanning j upwards
     * and inserting only past equal scores keeps ties on the smaller index.
     * Once the list is full, blocks of 16 with nothing above the k-th best are
     * skipped with one vectorized test. */
    int have = 0, j = 0;
    for (;;) {
        if (have == k) {
            const float thr = best[k - 1];
            while (j + 16 <= n) {
                int any = 0;
                for (int l = 0; l < 16; l++)
                    any |= s[j + l] > thr;
                if (any)
                    break;
                j += 16;
            }
        }
        if (j >= n)
            break;
        const int stop = j + 16 < n ? j + 16 : n;
        for (; j < stop; j++) {
            float v = s[j];
            if (have == k && !(v > best[k - 1]))
                continue;
            int pos = have < k ? have : k - 1;
            while (pos > 0 && v > best[pos - 1]) {
                best[pos] = best[pos - 1];
                idx[pos] = idx[pos - 1];
                pos--;
            }
            best[pos] = v;
            idx[pos] = j;
            if (have < k)
                have++;
        }
    }
}

/* ------------------------------------------------------- backward passes */

#define ROW_CHUNKS 16 /* fixed, so that sums over rows do not depend on the threads */

void colsum_add(float *sums, const float *x, int N, int C, int ld)
{
    if (N <= 0)
        return;
    float *part = calloc((size_t)ROW_CHUNKS * C, sizeof(float));
    if (!part) { /* no memory for partial sums: one serial pass, still deterministic */
        for (int i = 0; i < N; i++)
            for (int c = 0; c < C; c++)
                sums[c] += x[(size_t)i * ld + c];
        return;
    }
#pragma omp parallel for schedule(static) if ((long)N * C > 65536)
    for (int p = 0; p < ROW_CHUNKS; p++) {
        int lo = (int)((long)N * p / ROW_CHUNKS), hi = (int)((long)N * (p + 1) / ROW_CHUNKS);
        float *s = part + (size_t)p * C;
        for (int i = lo; i < hi; i++)
            for (int c = 0; c < C; c++)
                s[c] += x[(size_t)i * ld + c];
    }
    for (int p = 0; p < ROW_CHUNKS; p++)
        for (int c = 0; c < C; c++)
            sums[c] += part[(size_t)p * C + c];
    free(part);
}

void linear_backward(float *dIn, int ldd, int acc_in, craft_linear *g, const float *dOut, int ldo,
                     const float *in, int ldi, const craft_linear *lin, int N)
{
    if (N <= 0)
        return;
    /* dW[out, in] += dOut^T [out, N] in [N, in] */
    craft_sgemm(1, 0, lin->out, lin->in, N, 1.0f, dOut, ldo, in, ldi, 1.0f, g->w, lin->in);
    if (g->b)
        colsum_add(g->b, dOut, N, lin->out, ldo);
    /* dIn [N, in] (+)= dOut [N, out] W [out, in] */
    if (dIn)
        craft_sgemm(0, 0, N, lin->in, lin->out, 1.0f, dOut, ldo, lin->w, lin->in, acc_in ? 1.0f : 0.0f, dIn, ldd);
}

void layernorm_backward(float *dIn, int acc_in, craft_norm *g, const float *dOut, const float *in,
                        const float *mean, const float *rstd, const craft_norm *ln, int N, int C)
{
    float *part = calloc((size_t)ROW_CHUNKS * 2 * C, sizeof(float));
#pragma omp parallel for schedule(static) if ((long)N * C > 65536)
    for (int p = 0; p < ROW_CHUNKS; p++) {
        int lo = (int)((long)N * p / ROW_CHUNKS), hi = (int)((long)N * (p + 1) / ROW_CHUNKS);
        float *gw = part ? part + (size_t)p * 2 * C : NULL, *gb = gw ? gw + C : NULL;
        for (int i = lo; i < hi; i++) {
            const float *x = in + (size_t)i * C, *dy = dOut + (size_t)i * C;
            float *dx = dIn + (size_t)i * C;
            const float mu = mean[i], r = rstd[i];
            /* dx = r (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy w */
            float s1 = 0.0f, s2 = 0.0f;
            for (int c = 0; c < C; c++) {
                float xh = (x[c] - mu) * r, dxh = dy[c] * ln->w[c];
                s1 += dxh;
                s2 += dxh * xh;
                if (gw) {
                    gw[c] += dy[c] * xh;
                    gb[c] += dy[c];
                }
            }
            s1 /= C;
            s2 /= C;
            for (int c = 0; c < C; c++) {
                float xh = (x[c] - mu) * r, v = r * (dy[c] * ln->w[c] - s1 - xh * s2);
                dx[c] = acc_in ? dx[c] + v : v;
            }
        }
    }
    if (part) {
        for (int p = 0; p < ROW_CHUNKS; p++)
            for (int c = 0; c < C; c++) {
                g->w[c] += part[(size_t)p * 2 * C + c];
                g->b[c] += part[(size_t)p * 2 * C + C + c];
            }
        free(part);
    } else { /* no memory for partial sums: a serial pass for the parameters */
        for (int i = 0; i < N; i++)
            for (int c = 0; c < C; c++) {
                float dy = dOut[(size_t)i * C + c];
                g->w[c] += dy * (in[(size_t)i * C + c] - mean[i]) * rstd[i];
                g->b[c] += dy;
            }
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void gelu_backward_block(float *dIn, const float *in, const float *dOut, size_t n)
{
    const float k = 0.7978845608028654f;
    for (size_t i = 0; i < n; i++) {
        float x = in[i], x2 = x * x;
        float t = fast_tanhf(k * (x + 0.044715f * x2 * x));
        float dgelu = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x2);
        dIn[i] = dgelu * dOut[i];
    }
}

void gelu_backward(float *dIn, const float *in, const float *dOut, size_t n)
{
    const size_t block = 1 << 14;
    const long nblocks = (long)((n + block - 1) / block);
#pragma omp parallel for schedule(static) if (nblocks > 1)
    for (long b = 0; b < nblocks; b++) {
        size_t lo = (size_t)b * block, len = n - lo < block ? n - lo : block;
        gelu_backward_block(dIn + lo, in + lo, dOut + lo, len);
    }
}
