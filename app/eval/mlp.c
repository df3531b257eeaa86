/* mlp.c: the early-fusion baseline's model: Linear -> ReLU -> Linear, with a
 * hand-written backward pass and AdamW. Small enough to check by finite
 * differences (tests/eval). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "baselines.h"
#include "craft_hash.h"

static void bind(craft_mlp *m)
{
    m->w1 = m->params;
    m->b1 = m->w1 + (size_t)m->hidden * m->in;
    m->w2 = m->b1 + m->hidden;
    m->b2 = m->w2 + (size_t)m->out * m->hidden;
}

int craft_mlp_init(craft_mlp *m, int in, int hidden, int out, int task, uint64_t seed, craft_error *err)
{
    memset(m, 0, sizeof *m);
    if (in < 1 || hidden < 1 || out < 1)
        return craft_fail(err, CRAFT_EINPUT, "MLP shape %d-%d-%d is empty", in, hidden, out);
    m->in = in, m->hidden = hidden, m->out = out, m->task = task;
    m->n_params = (size_t)hidden * in + hidden + (size_t)out * hidden + out;
    if (!(m->params = calloc(m->n_params, sizeof(float))))
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for an MLP of %zu parameters", m->n_params);
    bind(m);
    /* Xavier-uniform matrices, zero biases */
    uint64_t s = seed;
    double a1 = sqrt(6.0 / (in + hidden)), a2 = sqrt(6.0 / (hidden + out));
    for (size_t i = 0; i < (size_t)hidden * in; i++)
        m->w1[i] = (float)((2 * craft_unit(&s) - 1) * a1);
    for (size_t i = 0; i < (size_t)out * hidden; i++)
        m->w2[i] = (float)((2 * craft_unit(&s) - 1) * a2);
    return CRAFT_OK;
}

void craft_mlp_free(craft_mlp *m)
{
    free(m->params);
    memset(m, 0, sizeof *m);
}

/* A = ReLU(X W1^T + b1) [n, hidden]; Z = A W2^T + b2 [n, out]. */
static void forward(const craft_mlp *m, const float *X, int n, float *A, float *Z)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m->hidden, m->in, 1.0f, X, m->in, m->w1, m->in, 0.0f, A,
                m->hidden);
    for (int i = 0; i < n; i++)
        for (int h = 0; h < m->hidden; h++) {
            float v = A[(size_t)i * m->hidden + h] + m->b1[h];
            A[(size_t)i * m->hidden + h] = v > 0 ? v : 0;
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m->out, m->hidden, 1.0f, A, m->hidden, m->w2, m->hidden,
                0.0f, Z, m->out);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < m->out; k++)
            Z[(size_t)i * m->out + k] += m->b2[k];
}

/* The true class of a multiclass label row, -1 when unknown. */
static int label_class(const float *y, int K)
{
    int t = -1;
    for (int k = 0; k < K; k++) {
        if (isnan(y[k]))
            return -1;
        if (y[k] > 0.5f && t < 0)
            t = k;
    }
    return t;
}

/* Loss over the known labels; Z is overwritten with d loss / d Z. */
static double loss_and_dz(const craft_mlp *m, const float *Y, int n, float *Z)
{
    const int K = m->out;
    double loss = 0;
    long count = 0;
    if (m->task == CRAFT_MULTICLASS) {
        for (int i = 0; i < n; i++) {
            float *z = Z + (size_t)i * K;
            int t = label_class(Y + (size_t)i * K, K);
            if (t < 0) {
                memset(z, 0, sizeof(float) * K);
                continue;
            }
            double mx = z[0], sum = 0;
            for (int k = 1; k < K; k++)
                mx = z[k] > mx ? z[k] : mx;
            for (int k = 0; k < K; k++)
                sum += exp(z[k] - mx);
            loss += mx + log(sum) - z[t];
            for (int k = 0; k < K; k++)
                z[k] = (float)(exp(z[k] - mx) / sum - (k == t));
            count++;
        }
    } else {
        for (size_t e = 0; e < (size_t)n * K; e++) {
            float y = Y[e];
            if (isnan(y)) {
                Z[e] = 0;
                continue;
            }
            double z = Z[e];
            loss += fmax(z, 0) - z * y + log1p(exp(-fabs(z))); /* stable BCE with logits */
            Z[e] = (float)(1.0 / (1.0 + exp(-z)) - y);
            count++;
        }
    }
    if (count == 0) {
        memset(Z, 0, sizeof(float) * (size_t)n * K);
        return 0;
    }
    for (size_t e = 0; e < (size_t)n * K; e++)
        Z[e] = (float)(Z[e] / count);
    return loss / count;
}

double craft_mlp_loss_grad(const craft_mlp *m, const float *X, const float *Y, int n, float *grad)
{
    float *A = malloc(sizeof(float) * (size_t)n * (m->hidden + m->out) + sizeof(float));
    if (!A)
        return NAN;
    float *Z = A + (size_t)n * m->hidden;
    forward(m, X, n, A, Z);
    double loss = loss_and_dz(m, Y, n, Z);
    if (grad) {
        float *gw1 = grad, *gb1 = gw1 + (size_t)m->hidden * m->in;
        float *gw2 = gb1 + m->hidden, *gb2 = gw2 + (size_t)m->out * m->hidden;
        /* dW2 = dZ^T A, db2 = sum_i dZ_i */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m->out, m->hidden, n, 1.0f, Z, m->out, A, m->hidden,
                    0.0f, gw2, m->hidden);
        memset(gb2, 0, sizeof(float) * m->out);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < m->out; k++)
                gb2[k] += Z[(size_t)i * m->out + k];
        /* dA = dZ W2, through the ReLU (A > 0 where the unit was active) */
        float *dA = malloc(sizeof(float) * (size_t)n * m->hidden + sizeof(float));
        if (!dA) {
            free(A);
            return NAN;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, m->hidden, m->out, 1.0f, Z, m->out, m->w2,
                    m->hidden, 0.0f, dA, m->hidden);
        for (size_t e = 0; e < (size_t)n * m->hidden; e++)
            if (A[e] <= 0)
                dA[e] = 0;
        /* dW1 = dA^T X, db1 = sum_i dA_i */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m->hidden, m->in, n, 1.0f, dA, m->hidden, X, m->in, 0.0f,
                    gw1, m->in);
        memset(gb1, 0, sizeof(float) * m->hidden);
        for (int i = 0; i < n; i++)
            for (int h = 0; h < m->hidden; h++)
                gb1[h] += dA[(size_t)i * m->hidden + h];
        free(dA);
    }
    free(A);
    return loss;
}

int craft_mlp_predict(const craft_mlp *m, const float *X, int n, float *P, craft_error *err)
{
    float *A = malloc(sizeof(float) * (size_t)n * m->hidden + sizeof(float));
    if (!A)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for MLP predictions of %d rows", n);
    forward(m, X, n, A, P);
    const int K = m->out;
    for (int i = 0; i < n; i++) {
        float *z = P + (size_t)i * K;
        if (m->task == CRAFT_MULTICLASS) {
            double mx = z[0], sum = 0;
            for (int k = 1; k < K; k++)
                mx = z[k] > mx ? z[k] : mx;
            for (int k = 0; k < K; k++)
                sum += exp(z[k] - mx);
            for (int k = 0; k < K; k++)
                z[k] = (float)(exp(z[k] - mx) / sum);
        } else {
            for (int k = 0; k < K; k++)
                z[k] = (float)(1.0 / (1.0 + exp(-(double)z[k])));
        }
    }
    free(A);
    return CRAFT_OK;
}

/* Copies rows idx[0..n) of src ([*, w]) into dst. */
static void gather_rows(float *dst, const float *src, const int *idx, int n, int w)
{
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * w, src + (size_t)idx[i] * w, sizeof(float) * w);
}

int craft_mlp_train(craft_mlp *m, const float *Xtr, const float *Ytr, int ntr, const float *Xva, const float *Yva,
                    int nva, const craft_mlp_train_options *o, craft_error *err)
{
    if (ntr < 1)
        return craft_fail(err, CRAFT_EINPUT, "no training rows for the MLP baseline");
    const size_t P = m->n_params;
    const int bs = o->batch < ntr ? o->batch : ntr;
    float *grad = malloc(sizeof(float) * P * 4);
    float *xb = malloc(sizeof(float) * (size_t)bs * m->in);
    float *yb = malloc(sizeof(float) * (size_t)bs * m->out);
    int *order = malloc(sizeof(int) * (size_t)ntr);
    if (!grad || !xb || !yb || !order) {
        free(grad), free(xb), free(yb), free(order);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for MLP training");
    }
    float *mom = grad + P, *var = grad + 2 * P, *best = grad + 3 * P;
    memset(mom, 0, sizeof(float) * P * 2);
    memcpy(best, m->params, sizeof(float) * P);
    /* weight decay on the two matrices only (not the biases) */
    const size_t w1_end = (size_t)m->hidden * m->in, w2_start = w1_end + m->hidden,
                 w2_end = w2_start + (size_t)m->out * m->hidden;
    uint64_t rng = o->seed ^ 0x5bd1e995ull;
    double best_loss = INFINITY;
    long step = 0;
    int since_best = 0, rc = CRAFT_OK;
    for (int i = 0; i < ntr; i++)
        order[i] = i;
    for (int epoch = 0; epoch < o->epochs && since_best < o->patience; epoch++) {
        for (int i = ntr - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)(craft_splitmix64(&rng) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j], order[j] = t;
        }
        for (int start = 0; start < ntr; start += bs) {
            int n = ntr - start < bs ? ntr - start : bs;
            gather_rows(xb, Xtr, order + start, n, m->in);
            gather_rows(yb, Ytr, order + start, n, m->out);
            if (isnan(craft_mlp_loss_grad(m, xb, yb, n, grad))) {
                rc = craft_fail(err, CRAFT_ENOMEM, "out of memory in MLP training");
                goto done;
            }
            step++;
            const double b1 = 0.9, b2 = 0.999, c1 = 1 - pow(b1, (double)step), c2 = 1 - pow(b2, (double)step);
            for (size_t p = 0; p < P; p++) {
                mom[p] = (float)(b1 * mom[p] + (1 - b1) * grad[p]);
                var[p] = (float)(b2 * var[p] + (1 - b2) * (double)grad[p] * grad[p]);
                double upd = (mom[p] / c1) / (sqrt(var[p] / c2) + 1e-8);
                if (p < w1_end || (p >= w2_start && p < w2_end))
                    upd += o->weight_decay * m->params[p];
                m->params[p] = (float)(m->params[p] - o->lr * upd);
            }
        }
        double val = nva > 0 ? craft_mlp_loss_grad(m, Xva, Yva, nva, NULL)
                             : craft_mlp_loss_grad(m, Xtr, Ytr, ntr, NULL);
        if (val < best_loss - 1e-6) {
            best_loss = val;
            since_best = 0;
            memcpy(best, m->params, sizeof(float) * P);
        } else {
            since_best++;
        }
    }
    memcpy(m->params, best, sizeof(float) * P);
done:
    free(grad), free(xb), free(yb), free(order);
    return rc;
}
