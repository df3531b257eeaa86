/* ops.c: elementwise and row-wise layers; matrix products go to OpenBLAS. */
#include <math.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops.h"

static int n_threads = 1;

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

__attribute__((target_clones("avx512f", "avx2", "default")))
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
