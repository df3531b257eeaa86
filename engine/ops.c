/* ops.c: elementwise and row-wise layers; matrix products go to OpenBLAS. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "ops.h"

void linear_forward(float *out, int ldo, const float *in, int ldi, const craft_linear *lin, int N)
{
    /* Seed every row with the bias, then accumulate the product on top (beta = 1). */
    for (int i = 0; i < N; i++)
        memcpy(out + (size_t)i * ldo, lin->b, sizeof(float) * lin->out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, lin->out, lin->in, 1.0f, in, ldi,
                lin->w, lin->in, 1.0f, out, ldo);
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *in, const craft_norm *ln,
                       int N, int C)
{
    for (int i = 0; i < N; i++) {
        const float *x = in + (size_t)i * C;
        float *y = out + (size_t)i * C;
        double s = 0.0, ss = 0.0;
        for (int c = 0; c < C; c++)
            s += x[c];
        double mu = s / C;
        for (int c = 0; c < C; c++) {
            double dx = x[c] - mu;
            ss += dx * dx;
        }
        float m = (float)mu, r = (float)(1.0 / sqrt(ss / C + 1e-5));
        for (int c = 0; c < C; c++)
            y[c] = (x[c] - m) * r * ln->w[c] + ln->b[c];
        if (mean)
            mean[i] = m;
        if (rstd)
            rstd[i] = r;
    }
}

void gelu_forward(float *out, const float *in, size_t n)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
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
     * and inserting only past equal scores keeps ties on the smaller index. */
    int have = 0;
    for (int j = 0; j < n; j++) {
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
