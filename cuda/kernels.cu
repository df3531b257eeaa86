/* kernels.cu: the CUDA engine's own kernels (see kernels.cuh). They mirror
 * engine/forward.c and engine/ops.c; every reduction has a fixed order and
 * there are no atomics, so results do not change from run to run. */
#include <math.h>
#include <stdint.h>

#include "kernels.cuh"

#define FULL_MASK 0xffffffffu
#define THREADS 256
#define WARPS (THREADS / 32)

static unsigned grid_for(size_t n, int threads)
{
    size_t g = (n + threads - 1) / threads;
    const size_t cap = 1u << 30; /* grid-stride loops cover the rest */
    return (unsigned)(g < 1 ? 1 : g > cap ? cap : g);
}

#define GRID_STRIDE(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o; o >>= 1)
        v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

/* Sum over the block's THREADS values of v, tree order fixed; every thread gets it. */
__device__ float block_sum(float v)
{
    __shared__ float red[THREADS];
    red[threadIdx.x] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    float r = red[0];
    __syncthreads();
    return r;
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The rational tanh of engine/ops.c (Eigen's minimax fit), so that GELU matches the CPU. */
__device__ __forceinline__ float tanh_rational(float x)
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

/* ------------------------------------------------------------------ tokens */

/* craft_bin_numeric of engine/batch.c, operation for operation. */
__device__ void bin_numeric(const float *E, int nb, float x, int *b, float *rr)
{
    if (isnan(x)) {
        *b = 0;
        *rr = 0.0f;
        return;
    }
    int lo = 1, hi = nb;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (E[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    float den = E[lo] - E[lo - 1], r;
    if (den == 0.0f) {
        r = 0.5f;
    } else {
        r = (x - E[lo - 1]) / den;
        r = r < 0.0f ? 0.0f : r > 1.0f ? 1.0f : r;
    }
    *b = lo;
    *rr = r;
}

__global__ void k_binning(int *bins, float *rr, const float *tab, const float *edges, const int *is_cat, int n,
                          int F, int nb, int missing_j)
{
    GRID_STRIDE(i, (size_t)n * F)
    {
        const int j = (int)(i % F);
        float x = j == missing_j ? NAN : tab[i];
        if (is_cat[j]) {
            bins[i] = isnan(x) ? 0 : (int)x;
            rr[i] = 0.0f;
        } else {
            bin_numeric(edges + (size_t)j * (nb + 1), nb, x, &bins[i], &rr[i]);
        }
    }
}

void launch_binning(cudaStream_t s, int *bins, float *rr, const float *tab, const float *edges, const int *is_cat,
                    int n, int F, int nb, int missing_j)
{
    k_binning<<<grid_for((size_t)n * F, THREADS), THREADS, 0, s>>>(bins, rr, tab, edges, is_cat, n, F, nb,
                                                                   missing_j);
}

__global__ void k_tab_tokens(float *out, int ld_rows, const int *bins, const float *rr, const float *tok_bin,
                             const float *tok_res, int res_per_bin, int n, int F, int nb, int d)
{
    GRID_STRIDE(i, (size_t)n * F * d)
    {
        const int c = (int)(i % d);
        const size_t t = i / d; /* b * F + j */
        const int j = (int)(t % F), b = (int)(t / F);
        const size_t row = (size_t)j * (nb + 1) + bins[t];
        out[((size_t)b * ld_rows + j) * d + c] =
            tok_bin[row * d + c] + rr[t] * tok_res[(res_per_bin ? row : (size_t)j) * d + c];
    }
}

void launch_tab_tokens(cudaStream_t s, float *out, int ld_rows, const int *bins, const float *rr,
                       const float *tok_bin, const float *tok_res, int res_per_bin, int n, int F, int nb, int d)
{
    k_tab_tokens<<<grid_for((size_t)n * F * d, THREADS), THREADS, 0, s>>>(out, ld_rows, bins, rr, tok_bin, tok_res,
                                                                         res_per_bin, n, F, nb, d);
}

__global__ void k_tab_mean(float *f, const int *bins, const float *rr, const float *tok_bin, const float *tok_res,
                           int res_per_bin, int n, int F, int nb, int d)
{
    GRID_STRIDE(i, (size_t)n * d)
    {
        const int c = (int)(i % d), b = (int)(i / d);
        float s = 0.0f;
        for (int j = 0; j < F; j++) {
            const size_t t = (size_t)b * F + j;
            const size_t row = (size_t)j * (nb + 1) + bins[t];
            s += tok_bin[row * d + c] + rr[t] * tok_res[(res_per_bin ? row : (size_t)j) * d + c];
        }
        f[i] = s / F;
    }
}

void launch_tab_mean(cudaStream_t s, float *f, const int *bins, const float *rr, const float *tok_bin,
                     const float *tok_res, int res_per_bin, int n, int F, int nb, int d)
{
    k_tab_mean<<<grid_for((size_t)n * d, THREADS), THREADS, 0, s>>>(f, bins, rr, tok_bin, tok_res, res_per_bin, n, F,
                                                                   nb, d);
}

__global__ void k_emb_tokens_finish(float *Y, const int *ntok, const float *bias, const float *pos, int n, int T,
                                    int d)
{
    GRID_STRIDE(i, (size_t)n * T * d)
    {
        const int c = (int)(i % d);
        const size_t row = i / d;
        const int b = (int)(row / T), t = (int)(row % T);
        Y[i] = t < ntok[b] ? Y[i] + bias[c] + (pos ? pos[(size_t)t * d + c] : 0.0f) : 0.0f;
    }
}

void launch_emb_tokens_finish(cudaStream_t s, float *Y, const int *ntok, const float *bias, const float *pos, int n,
                              int T, int d)
{
    k_emb_tokens_finish<<<grid_for((size_t)n * T * d, THREADS), THREADS, 0, s>>>(Y, ntok, bias, pos, n, T, d);
}

__global__ void k_row_mean(float *xmean, const float *X, const int *ntok, int n, int tokens, int D)
{
    GRID_STRIDE(i, (size_t)n * D)
    {
        const int c = (int)(i % D), b = (int)(i / D), t = ntok[b];
        const float *x = X + (size_t)b * tokens * D + c;
        float s = 0.0f;
        for (int r = 0; r < t; r++)
            s += x[(size_t)r * D];
        xmean[i] = t > 0 ? s / t : 0.0f;
    }
}

void launch_row_mean(cudaStream_t s, float *xmean, const float *X, const int *ntok, int n, int tokens, int D)
{
    k_row_mean<<<grid_for((size_t)n * D, THREADS), THREADS, 0, s>>>(xmean, X, ntok, n, tokens, D);
}

__global__ void k_aux_finish(float *f, const int *ntok, const float *bias, const float *pos, int n, int d)
{
    GRID_STRIDE(i, (size_t)n * d)
    {
        const int c = (int)(i % d), b = (int)(i / d), t = ntok[b];
        float v = f[i] + bias[c];
        if (pos && t > 0) {
            float s = 0.0f;
            for (int r = 0; r < t; r++)
                s += pos[(size_t)r * d + c];
            v += s / t;
        }
        f[i] = v;
    }
}

void launch_aux_finish(cudaStream_t s, float *f, const int *ntok, const float *bias, const float *pos, int n, int d)
{
    k_aux_finish<<<grid_for((size_t)n * d, THREADS), THREADS, 0, s>>>(f, ntok, bias, pos, n, d);
}

/* -------------------------------------------------------- elementwise, LN */

__global__ void k_layernorm(float *out, float *in, const float *pend, const float *w, const float *bias, int rows,
                            int d, int T, const int *n_bb)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * WARPS + warp;
    if (row >= (size_t)rows)
        return;
    float *x = in + row * d, *y = out + row * d;
    if (n_bb && (int)(row % T) >= n_bb[row / T]) {
        for (int c = lane; c < d; c += 32)
            y[c] = 0.0f;
        return;
    }
    float s = 0.0f;
    for (int c = lane; c < d; c += 32) {
        float v = x[c];
        if (pend) {
            v += pend[c];
            x[c] = v;
        }
        s += v;
    }
    const float mu = warp_sum(s) / d;
    float vs = 0.0f;
    for (int c = lane; c < d; c += 32) {
        float dx = x[c] - mu;
        vs += dx * dx;
    }
    const float r = 1.0f / sqrtf(warp_sum(vs) / d + 1e-5f);
    for (int c = lane; c < d; c += 32)
        y[c] = (x[c] - mu) * r * w[c] + bias[c];
}

void launch_layernorm(cudaStream_t s, float *out, float *in, const float *pend, const float *w, const float *b,
                      int rows, int d, int T, const int *n_bb)
{
    k_layernorm<<<grid_for((size_t)rows, WARPS), THREADS, 0, s>>>(out, in, pend, w, b, rows, d, T, n_bb);
}

__global__ void k_bias_gelu(float *Y, int ld, const float *bias, int rows, int cols)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    GRID_STRIDE(i, (size_t)rows * cols)
    {
        const int c = (int)(i % cols);
        float *p = Y + (i / cols) * ld + c;
        const float x = *p + (bias ? bias[c] : 0.0f);
        *p = 0.5f * x * (1.0f + tanh_rational(k * (x + 0.044715f * x * x * x)));
    }
}

void launch_bias_gelu(cudaStream_t s, float *Y, int ld, const float *bias, int rows, int cols)
{
    k_bias_gelu<<<grid_for((size_t)rows * cols, THREADS), THREADS, 0, s>>>(Y, ld, bias, rows, cols);
}

__global__ void k_bias_rows(float *out, int ld, const float *bias, int rows, int cols)
{
    GRID_STRIDE(i, (size_t)rows * cols)
    out[(i / cols) * ld + i % cols] = bias[i % cols];
}

void launch_bias_rows(cudaStream_t s, float *out, int ld, const float *bias, int rows, int cols)
{
    k_bias_rows<<<grid_for((size_t)rows * cols, THREADS), THREADS, 0, s>>>(out, ld, bias, rows, cols);
}

__global__ void k_fill(float *x, float v, size_t n)
{
    GRID_STRIDE(i, n)
    x[i] = v;
}

void launch_fill(cudaStream_t s, float *x, float v, size_t n)
{
    if (n)
        k_fill<<<grid_for(n, THREADS), THREADS, 0, s>>>(x, v, n);
}

__global__ void k_add_feature_rows(float *tok_bin, const float *add, int F, int nb, int d)
{
    GRID_STRIDE(i, (size_t)F * (nb + 1) * d)
    {
        const int c = (int)(i % d), j = (int)(i / d / (nb + 1));
        tok_bin[i] += add[(size_t)j * d + c];
    }
}

void launch_add_feature_rows(cudaStream_t s, float *tok_bin, const float *add, int F, int nb, int d)
{
    k_add_feature_rows<<<grid_for((size_t)F * (nb + 1) * d, THREADS), THREADS, 0, s>>>(tok_bin, add, F, nb, d);
}

/* ----------------------------------------------------------------- routing */

#define RT_KEYS 32   /* keys per tile: one per lane */
#define RT_CHUNK 64  /* routing columns per tile */

/* Warp per query row, the best kk <= 32*R kept in registers: position p of the
 * descending list lives in lane p % 32, slot p / 32. Keys are scanned in
 * ascending j and a key enters only past equal scores, so ties go to the
 * smaller index exactly as in the CPU's topk_select. The block's 8 rows belong
 * to one order and share each tile of keys. */
template <int R>
__global__ void k_route_select(int *nbr, float *nbr_s, const float *U, int ldu, const int *n_bb, int T, int r,
                               int topk, int kk_cap)
{
    __shared__ float tile[RT_KEYS][RT_CHUNK + 1];
    __shared__ float qrow[WARPS][RT_CHUNK];
    const int b = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n = n_bb[b], i0 = blockIdx.y * WARPS, i = i0 + warp;
    if (i0 >= n) /* uniform over the block */
        return;
    const bool live = i < n;
    const int kk = topk < n ? topk : n;
    const float *Ub = U + (size_t)b * T * ldu;
    const float rs = 1.0f / sqrtf((float)r);
    float best[R];
    int bidx[R];
#pragma unroll
    for (int s = 0; s < R; s++) {
        best[s] = 0.0f;
        bidx[s] = 0;
    }
    int have = 0;
    for (int j0 = 0; j0 < n; j0 += RT_KEYS) {
        float acc = 0.0f;
        for (int c0 = 0; c0 < r; c0 += RT_CHUNK) {
            const int w = r - c0 < RT_CHUNK ? r - c0 : RT_CHUNK;
            __syncthreads();
            for (int t = threadIdx.x; t < RT_KEYS * RT_CHUNK; t += THREADS) {
                const int kr = t / RT_CHUNK, cc = t % RT_CHUNK, j = j0 + kr;
                tile[kr][cc] = j < n && cc < w ? Ub[(size_t)j * ldu + c0 + cc] : 0.0f;
            }
            for (int t = threadIdx.x; t < WARPS * RT_CHUNK; t += THREADS) {
                const int wr = t / RT_CHUNK, cc = t % RT_CHUNK, ii = i0 + wr;
                qrow[wr][cc] = ii < n && cc < w ? Ub[(size_t)ii * ldu + c0 + cc] : 0.0f;
            }
            __syncthreads();
            for (int cc = 0; cc < w; cc++)
                acc += qrow[warp][cc] * tile[lane][cc];
        }
        const float sc = acc * rs;
        const bool cand = live && j0 + lane < n;
        unsigned done = 0;
        for (;;) {
            float kth = 0.0f;
            if (have == kk) {
                const int slot = (kk - 1) / 32;
                float v = best[0];
#pragma unroll
                for (int s = 1; s < R; s++)
                    if (s == slot)
                        v = best[s];
                kth = __shfl_sync(FULL_MASK, v, (kk - 1) % 32);
            }
            const bool take = cand && !(done >> lane & 1u) && (have < kk || sc > kth);
            const unsigned mask = __ballot_sync(FULL_MASK, take);
            if (!mask)
                break;
            const int l = __ffs(mask) - 1;
            const float v = __shfl_sync(FULL_MASK, sc, l);
            const int jj = j0 + l;
            done |= l == 31 ? FULL_MASK : (2u << l) - 1u; /* lanes <= l are settled */
            int pos = 0;
#pragma unroll
            for (int s = 0; s < R; s++)
                pos += __popc(__ballot_sync(FULL_MASK, s * 32 + lane < have && best[s] >= v));
            const int lim = have + 1 < kk ? have + 1 : kk;
            float nb_[R];
            int ni[R];
#pragma unroll
            for (int s = 0; s < R; s++) {
                const float up = __shfl_up_sync(FULL_MASK, best[s], 1);
                const int upi = __shfl_up_sync(FULL_MASK, bidx[s], 1);
                const float prev = s ? __shfl_sync(FULL_MASK, best[s ? s - 1 : 0], 31) : 0.0f;
                const int previ = s ? __shfl_sync(FULL_MASK, bidx[s ? s - 1 : 0], 31) : 0;
                const int p = s * 32 + lane;
                if (p == pos) {
                    nb_[s] = v;
                    ni[s] = jj;
                } else if (p > pos && p < lim) {
                    nb_[s] = lane ? up : prev;
                    ni[s] = lane ? upi : previ;
                } else {
                    nb_[s] = best[s];
                    ni[s] = bidx[s];
                }
            }
#pragma unroll
            for (int s = 0; s < R; s++) {
                best[s] = nb_[s];
                bidx[s] = ni[s];
            }
            have = lim;
        }
    }
    if (!live)
        return;
    const size_t o = ((size_t)b * T + i) * kk_cap;
#pragma unroll
    for (int s = 0; s < R; s++) {
        const int p = s * 32 + lane;
        if (p < kk) {
            nbr[o + p] = bidx[s];
            nbr_s[o + p] = best[s];
        }
    }
}

/* Any kk: one thread per row, the CPU's insertion into a descending list (kept
 * in the row's slice of nbr / nbr_s). Used only where topk > 128. */
__global__ void k_route_select_wide(int *nbr, float *nbr_s, const float *U, int ldu, const int *n_bb, int n_orders,
                                    int T, int r, int topk, int kk_cap)
{
    GRID_STRIDE(row, (size_t)n_orders * T)
    {
        const int b = (int)(row / T), i = (int)(row % T), n = n_bb[b];
        if (i >= n)
            continue;
        const int kk = topk < n ? topk : n;
        const float *Ub = U + (size_t)b * T * ldu, *ui = Ub + (size_t)i * ldu;
        const float rs = 1.0f / sqrtf((float)r);
        int *idx = nbr + row * kk_cap;
        float *best = nbr_s + row * kk_cap;
        int have = 0;
        for (int j = 0; j < n; j++) {
            const float *uj = Ub + (size_t)j * ldu;
            float acc = 0.0f;
            for (int c = 0; c < r; c++)
                acc += ui[c] * uj[c];
            const float v = acc * rs;
            if (have == kk && !(v > best[kk - 1]))
                continue;
            int pos = have < kk ? have : kk - 1;
            while (pos > 0 && v > best[pos - 1]) {
                best[pos] = best[pos - 1];
                idx[pos] = idx[pos - 1];
                pos--;
            }
            best[pos] = v;
            idx[pos] = j;
            if (have < kk)
                have++;
        }
    }
}

void launch_route_select(cudaStream_t s, int *nbr, float *nbr_s, const float *U, int ldu, const int *n_bb, int n,
                         int T, int r, int topk, int kk)
{
    const dim3 grid(n, (T + WARPS - 1) / WARPS); /* orders in x: y is limited to 65535 */
    if (kk <= 32)
        k_route_select<1><<<grid, THREADS, 0, s>>>(nbr, nbr_s, U, ldu, n_bb, T, r, topk, kk);
    else if (kk <= 64)
        k_route_select<2><<<grid, THREADS, 0, s>>>(nbr, nbr_s, U, ldu, n_bb, T, r, topk, kk);
    else if (kk <= 128)
        k_route_select<4><<<grid, THREADS, 0, s>>>(nbr, nbr_s, U, ldu, n_bb, T, r, topk, kk);
    else
        k_route_select_wide<<<grid_for((size_t)n * T, 128), 128, 0, s>>>(nbr, nbr_s, U, ldu, n_bb, n, T, r, topk,
                                                                          kk);
}

/* --------------------------------------------------------- sparse attention */

__global__ void k_sparse_attention(float *z, const float *qkv, int ldq, const float *bq, const float *bk,
                                   const float *bv, const int *nbr, const float *nbr_s, float *scratch,
                                   const int *n_bb, size_t rows, int T, int d, int H, int topk, int kk_cap)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * WARPS + warp;
    if (row >= rows)
        return;
    const int b = (int)(row / T), i = (int)(row % T), n = n_bb[b];
    float *zr = z + row * d;
    if (i >= n) {
        for (int c = lane; c < d; c += 32)
            zr[c] = 0.0f;
        return;
    }
    const int kk = topk < n ? topk : n, dh = d / H;
    const float qs = 1.0f / sqrtf((float)dh);
    const float *q = qkv + row * ldq;
    const float *Kb = qkv + (size_t)b * T * ldq + d, *Vb = qkv + (size_t)b * T * ldq + 2 * d;
    const int *sel = nbr + row * kk_cap;
    const float *S = nbr_s + row * kk_cap;
    float *lg = scratch + row * kk_cap;
    for (int h = 0; h < H; h++) {
        const int o = h * dh;
        float mx = -INFINITY;
        for (int a = lane; a < kk; a += 32) {
            const float *kj = Kb + (size_t)sel[a] * ldq + o;
            float dot = 0.0f;
            for (int c = 0; c < dh; c++)
                dot += (q[o + c] + bq[o + c]) * (kj[c] + bk[o + c]);
            const float l = dot * qs + S[a];
            lg[a] = l;
            mx = fmaxf(mx, l);
        }
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int a = lane; a < kk; a += 32) {
            const float e = expf(lg[a] - mx);
            lg[a] = e;
            sum += e;
        }
        const float inv = 1.0f / warp_sum(sum);
        __syncwarp();
        for (int c = lane; c < dh; c += 32) {
            float acc = 0.0f;
            for (int a = 0; a < kk; a++)
                acc += lg[a] * inv * Vb[(size_t)sel[a] * ldq + o + c];
            zr[o + c] = acc + bv[o + c];
        }
        __syncwarp();
    }
}

void launch_sparse_attention(cudaStream_t s, float *z, const float *qkv, int ldq, const float *bq, const float *bk,
                             const float *bv, const int *nbr, const float *nbr_s, float *scratch, const int *n_bb,
                             int n, int T, int d, int H, int topk, int kk)
{
    const size_t rows = (size_t)n * T;
    k_sparse_attention<<<grid_for(rows, WARPS), THREADS, 0, s>>>(z, qkv, ldq, bq, bk, bv, nbr, nbr_s, scratch, n_bb,
                                                                 rows, T, d, H, topk, kk);
}

/* --------------------------------------------------- single-query attention */

#define SQ_SMEM_FLOATS 8192 /* the folded query q_h * C / sqrt(dh) in shared memory up to H*d of this */

__global__ void k_single_query(float *att, float *xbar, float *alpha, const float *Xb, const int *n_bb,
                               const float *qk, size_t qk_stride, const float *C, const int *act_a, const int *act_b,
                               int T, int d, int H, int use_smem)
{
    extern __shared__ float qkc_s[];
    const int b = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *xo = xbar + (size_t)b * H * d;
    const bool active = (!act_a || act_a[b]) && (!act_b || act_b[b]);
    if (!active) {
        for (int t = threadIdx.x; t < H * d; t += THREADS)
            xo[t] = 0.0f;
        return;
    }
    const int n = n_bb[b], dh = d / H;
    const float scale = 1.0f / sqrtf((float)dh);
    const float *q = qk + (size_t)b * qk_stride, *Cb = C + (size_t)b * d, *X = Xb + (size_t)b * T * d;
    float *A = att + (size_t)b * H * T;
    if (use_smem)
        for (int t = threadIdx.x; t < H * d; t += THREADS)
            qkc_s[t] = q[t] * Cb[t % d] * scale;
    __syncthreads();
    /* logits: a warp per token, one warp sum per head */
    for (int j = warp; j < n; j += WARPS) {
        const float *xj = X + (size_t)j * d;
        for (int h = 0; h < H; h++) {
            float p = 0.0f;
            for (int c = lane; c < d; c += 32)
                p += xj[c] * (use_smem ? qkc_s[h * d + c] : q[(size_t)h * d + c] * Cb[c] * scale);
            p = warp_sum(p);
            if (lane == 0)
                A[(size_t)h * T + j] = p;
        }
    }
    __syncthreads();
    /* softmax over the order's tokens: a warp per head */
    for (int h = warp; h < H; h += WARPS) {
        float *a = A + (size_t)h * T;
        float mx = -INFINITY;
        for (int j = lane; j < n; j += 32)
            mx = fmaxf(mx, a[j]);
        mx = warp_max(mx);
        float s = 0.0f;
        for (int j = lane; j < n; j += 32) {
            const float e = expf(a[j] - mx);
            a[j] = e;
            s += e;
        }
        const float inv = 1.0f / warp_sum(s);
        for (int j = lane; j < n; j += 32)
            a[j] *= inv;
    }
    __syncthreads();
    if (alpha)
        for (int j = threadIdx.x; j < T; j += THREADS) {
            float s = 0.0f;
            for (int h = 0; h < H && j < n; h++)
                s += A[(size_t)h * T + j];
            alpha[(size_t)b * T + j] = j < n ? s / H : 0.0f;
        }
    /* xbar[h, c] = C[c] * sum_j att[h, j] Xb[j, c]: a thread per channel, 8 heads at a time */
    for (int c = threadIdx.x; c < d; c += THREADS)
        for (int h0 = 0; h0 < H; h0 += 8) {
            const int hn = H - h0 < 8 ? H - h0 : 8;
            float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int j = 0; j < n; j++) {
                const float x = X[(size_t)j * d + c];
#pragma unroll
                for (int hh = 0; hh < 8; hh++)
                    if (hh < hn)
                        acc[hh] += A[(size_t)(h0 + hh) * T + j] * x;
            }
            for (int hh = 0; hh < hn; hh++)
                xo[(size_t)(h0 + hh) * d + c] = acc[hh] * Cb[c];
        }
}

void launch_single_query(cudaStream_t s, float *att, float *xbar, float *alpha, const float *Xb, const int *n_bb,
                         const float *qk, size_t qk_stride, const float *C, const int *act_a, const int *act_b, int n,
                         int T, int d, int H)
{
    const int use_smem = (size_t)H * d <= SQ_SMEM_FLOATS;
    const size_t smem = use_smem ? sizeof(float) * (size_t)H * d : 0;
    k_single_query<<<n, THREADS, smem, s>>>(att, xbar, alpha, Xb, n_bb, qk, qk_stride, C, act_a, act_b, T, d, H,
                                            use_smem);
}

/* ------------------------------------------------------------ gates, head */

__global__ void k_gate(const float *pre, float *C, float *fused, const float *f, const int *act_a, const int *act_b,
                       float *gate_mean, int M, int m, int d)
{
    const int b = blockIdx.x;
    const bool active = (!act_a || act_a[b]) && (!act_b || act_b[b]);
    if (!active) {
        if (gate_mean && threadIdx.x == 0)
            gate_mean[(size_t)b * M + m] = NAN;
        return;
    }
    float s = 0.0f;
    for (int c = threadIdx.x; c < d; c += THREADS) {
        const size_t i = (size_t)b * d + c;
        const float g = sigmoidf_(pre[i]);
        if (C)
            C[i] *= g;
        if (fused)
            fused[i] += g * f[i];
        s += g;
    }
    s = block_sum(s);
    if (gate_mean && threadIdx.x == 0)
        gate_mean[(size_t)b * M + m] = s / d;
}

void launch_gate(cudaStream_t s, const float *pre, float *C, float *fused, const float *f, const int *act_a,
                 const int *act_b, float *gate_mean, int M, int m, int n, int d)
{
    k_gate<<<n, THREADS, 0, s>>>(pre, C, fused, f, act_a, act_b, gate_mean, M, m, d);
}

/* scores from logits, calibrated (z = a y + b) when ca is not NULL (MODEL.md) */
__global__ void k_scores(float *scores, const float *logits, const float *ca, const float *cb, int n, int K,
                         int multiclass)
{
    GRID_STRIDE(b, (size_t)n)
    {
        const float *y = logits + b * K;
        float *p = scores + b * K;
        if (!multiclass) {
            for (int k = 0; k < K; k++)
                p[k] = sigmoidf_(ca ? ca[k] * y[k] + cb[k] : y[k]);
            continue;
        }
        for (int k = 0; k < K; k++)
            p[k] = ca ? ca[k] * y[k] + cb[k] : y[k];
        float mx = p[0];
        for (int k = 1; k < K; k++)
            mx = p[k] > mx ? p[k] : mx;
        float s = 0.0f;
        for (int k = 0; k < K; k++) {
            p[k] = expf(p[k] - mx);
            s += p[k];
        }
        const float inv = 1.0f / s;
        for (int k = 0; k < K; k++)
            p[k] *= inv;
    }
}

void launch_scores(cudaStream_t s, float *scores, const float *logits, const float *ca, const float *cb, int n, int K,
                   int multiclass)
{
    k_scores<<<grid_for((size_t)n, 128), 128, 0, s>>>(scores, logits, ca, cb, n, K, multiclass);
}

__global__ void k_cmis(float *cmis, const float *alpha, const float *alpha_cf, const int *act, const int *n_bb, int n,
                       int M, int m, int T)
{
    GRID_STRIDE(i, (size_t)n * T)
    {
        const int b = (int)(i / T), j = (int)(i % T);
        if (act[b] && j < n_bb[b])
            cmis[((size_t)b * M + m) * T + j] = alpha[i] - alpha_cf[i];
    }
}

void launch_cmis(cudaStream_t s, float *cmis, const float *alpha, const float *alpha_cf, const int *act,
                 const int *n_bb, int n, int M, int m, int T)
{
    k_cmis<<<grid_for((size_t)n * T, THREADS), THREADS, 0, s>>>(cmis, alpha, alpha_cf, act, n_bb, n, M, m, T);
}

cudaError_t craft_cuda_kernels_loadable(void)
{
    cudaFuncAttributes a;
    return cudaFuncGetAttributes(&a, k_fill);
}
