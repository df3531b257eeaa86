/* forward.c: the CPU reference forward pass of the CRAFT model (MODEL.md),
 * batched, with subset predictions, CMIS and perturbation importance.
 *
 * Data flow for a batch of B orders, each with up to T backbone tokens
 * (rows b*T .. b*T+n_b-1 of every [B*T, .] array; padding rows are zero):
 *   tokens -> backbone blocks -> LN_f = Xb      (once per batch, shared by all requests)
 *   for each request (a modality subset): conditioning -> pooling -> fusion -> head
 *
 * The single-query attentions (conditioning, pooling) never project K or V:
 * with gated tokens Xb_j * C (C the product of the gates so far),
 *   q_h . K_hj = (Wk_h^T q_h) . (Xb_j * C) + const      (the constant cancels in softmax)
 *   sum_j a_hj V_hj = Wv_h (C * sum_j a_hj Xb_j) + bv_h  (the weights sum to 1)
 * so each costs O(n d H) instead of O(n d^2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <cblas.h>

#include "ops.h"

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

struct craft_engine {
    const craft_model *m;
    const craft_config *cfg;
    int B, T, d, H, dh, M, K, F, ffn, r, kk, threads;
    float *pool_qk;        /* [H, d]: Wk_h^T query_h of the pooling attention */
    /* tokens and backbone (one set of activations, reused layer by layer) */
    float *tab_in;         /* [B*T, 3e] */
    float *X;              /* [B*T, d] residual stream, then Xb */
    float *h, *q, *k, *v;  /* [B*T, d] */
    float *u;              /* [B*T, r] routing projection */
    int *nbr;              /* [B*T, kk] selected keys */
    float *z;              /* [B*T, d] attention output (concat of heads) */
    float *f1, *f1g;       /* [B*T, ffn] */
    int *n_bb;             /* [B] backbone tokens per order */
    /* auxiliaries */
    float *xmean;          /* [B, Dmax] mean input row */
    float *f[CRAFT_MAX_MODALITIES];   /* [B, d] f_m */
    int *avail[CRAFT_MAX_MODALITIES]; /* [B] input present */
    /* tail (per request) */
    float *C;              /* [B, d] product of the gates so far */
    float *Csnap;          /* [M, B, d] C before each auxiliary (for CMIS) */
    float *qv, *qk;        /* [B, d], [B, H, d] */
    float *xbar;           /* [B, H, d] attention-weighted token sums */
    float *zb;             /* [B, d] */
    float *fhat;           /* [M, B, d] */
    float *cg;             /* [B, d] conditioning gate */
    float *att;            /* [B, H, T] pooling weights */
    float *alpha;          /* [B, T] importance */
    float *alpha_cf;       /* [B, T] importance without one auxiliary's gate */
    float *P, *cat, *g, *fused, *hh, *h1; /* [B, d] ([B, 2d] for cat) */
    float *logits;         /* [B, K] */
    float *wide;           /* [B, K] the wide term of the backbone tokens ("wide_head"), or unused */
    float *work;           /* [threads][wstride] per-order scratch: S, logits, folded query */
    size_t wstride;
    int *active;           /* [B] */
    int *used_m;           /* [B] */
    float *pert_tab;       /* [B, F] the tabular block with one feature set missing */
    float *pert_scores;    /* [B, K] */
};

static float *fbuf(size_t n, int *ok)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        *ok = 0;
    return p;
}

int craft_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void craft_set_threads(int threads)
{
    craft_threads_init(threads > 0 ? threads : craft_cpu_count());
}

int craft_engine_threads(const craft_engine *e) { return e->threads; }

void craft_engine_free(craft_engine *e)
{
    if (!e)
        return;
    float **bufs[] = {&e->pool_qk, &e->tab_in, &e->X, &e->h, &e->q, &e->k, &e->v, &e->u,
                      &e->z, &e->f1, &e->f1g, &e->xmean, &e->C, &e->Csnap, &e->qv, &e->qk,
                      &e->xbar, &e->zb, &e->fhat, &e->cg, &e->att, &e->alpha, &e->alpha_cf, &e->P,
                      &e->cat, &e->g, &e->fused, &e->hh, &e->h1, &e->logits, &e->wide, &e->work, &e->pert_scores,
                      &e->pert_tab};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(*bufs[i]);
    for (int m = 0; m < CRAFT_MAX_MODALITIES; m++) {
        free(e->f[m]);
        free(e->avail[m]);
    }
    free(e->nbr);
    free(e->n_bb);
    free(e->active);
    free(e->used_m);
    free(e);
}

int craft_engine_new(craft_engine **out, const craft_model *m, int max_batch, int threads,
                     craft_error *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > (1 << 20))
        return craft_fail(err, CRAFT_EINPUT, "batch size %d is outside 1..1048576", max_batch);
    const craft_config *cfg = &m->cfg;
    craft_engine *e = calloc(1, sizeof *e);
    if (!e)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    e->m = m;
    e->cfg = cfg;
    e->B = max_batch;
    e->T = cfg->modalities[cfg->backbone].tokens;
    e->d = cfg->d_model;
    e->H = cfg->heads;
    e->dh = e->d / e->H;
    e->M = cfg->n_modalities;
    e->K = cfg->n_classes;
    e->F = cfg->tabular >= 0 ? cfg->modalities[cfg->tabular].n_features : 0;
    e->ffn = e->d * cfg->ffn_mult;
    e->r = cfg->route_dim;
    e->kk = cfg->topk < e->T ? cfg->topk : e->T;
    e->threads = threads > 0 ? threads : craft_cpu_count();
    craft_set_threads(e->threads);
    const size_t B = (size_t)e->B, N = B * e->T, d = (size_t)e->d, H = (size_t)e->H;
    int Dmax = 1;
    for (int i = 0; i < e->M; i++)
        if (cfg->modalities[i].kind == CRAFT_EMBEDDING && cfg->modalities[i].dim > Dmax)
            Dmax = cfg->modalities[i].dim;
    int ok = 1;
    e->pool_qk = fbuf(H * d, &ok);
    if (cfg->tabular >= 0)
        e->tab_in = fbuf(B * e->F * 3 * (size_t)cfg->emb_dim, &ok);
    e->X = fbuf(N * d, &ok);
    e->h = fbuf(N * d, &ok);
    e->q = fbuf(N * d, &ok);
    e->k = fbuf(N * d, &ok);
    e->v = fbuf(N * d, &ok);
    e->u = fbuf(N * e->r, &ok);
    e->z = fbuf(N * d, &ok);
    e->f1 = fbuf(N * e->ffn, &ok);
    e->f1g = fbuf(N * e->ffn, &ok);
    e->xmean = fbuf(B * Dmax, &ok);
    for (int i = 0; i < e->M; i++) {
        e->f[i] = fbuf(B * d, &ok);
        if (!(e->avail[i] = calloc(B, sizeof(int))))
            ok = 0;
    }
    e->C = fbuf(B * d, &ok);
    e->Csnap = fbuf((size_t)e->M * B * d, &ok);
    e->qv = fbuf(B * d, &ok);
    e->qk = fbuf(B * H * d, &ok);
    e->xbar = fbuf(B * H * d, &ok);
    e->zb = fbuf(B * d, &ok);
    e->fhat = fbuf((size_t)e->M * B * d, &ok);
    e->cg = fbuf(B * d, &ok);
    e->att = fbuf(B * H * e->T, &ok);
    e->alpha = fbuf(B * e->T, &ok);
    e->alpha_cf = fbuf(B * e->T, &ok);
    e->P = fbuf(B * d, &ok);
    e->cat = fbuf(B * 2 * d, &ok);
    e->g = fbuf(B * d, &ok);
    e->fused = fbuf(B * d, &ok);
    e->hh = fbuf(B * d, &ok);
    e->h1 = fbuf(B * d, &ok);
    e->logits = fbuf(B * e->K, &ok);
    e->wide = fbuf(B * e->K, &ok);
    /* per thread: S [T,T] | logits [T,H] | folded query [d,H] | top-k scores [2kk] */
    e->wstride = ((size_t)e->T * e->T + (size_t)e->T * H + d * H + 2 * (size_t)e->kk + 15) & ~(size_t)15;
    e->work = fbuf(e->wstride * e->threads, &ok);
    e->pert_scores = fbuf(B * e->K, &ok);
    e->pert_tab = fbuf(B * (e->F ? e->F : 1), &ok);
    if (!(e->nbr = calloc(N * e->kk, sizeof(int))) || !(e->n_bb = calloc(B, sizeof(int))) ||
        !(e->active = calloc(B, sizeof(int))) || !(e->used_m = calloc(B, sizeof(int))))
        ok = 0;
    if (!ok) {
        craft_engine_free(e);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for an engine of batch %d", max_batch);
    }
    /* The pooling query is a parameter: fold it into the keys once. */
    const craft_weights *w = &m->w;
    for (int hd = 0; hd < e->H; hd++)
        for (int c = 0; c < e->d; c++) {
            float acc = 0.0f;
            for (int r = hd * e->dh; r < (hd + 1) * e->dh; r++)
                acc += w->pool_query[r] * w->pool_k.w[(size_t)r * e->d + c];
            e->pool_qk[(size_t)hd * e->d + c] = acc;
        }
    *out = e;
    return CRAFT_OK;
}

/* ------------------------------------------------------------- tokens */

/* Tabular tokens of orders [0, n): t_j = proj([bin_emb[j][b] || rr res_emb[j] || feat_emb[j]]). */
static void tabular_tokens_forward(craft_engine *e, float *out, int ldo_rows, const craft_batch *bt, int n)
{
    const craft_config *cfg = e->cfg;
    const craft_embed *em = &e->m->w.embed[cfg->tabular];
    const int F = e->F, E = cfg->emb_dim;
    tabular_inputs_forward(e->tab_in, NULL, NULL, cfg, em, bt->tab, n);
    if (ldo_rows == F) {
        linear_forward(out, e->d, e->tab_in, 3 * E, &em->proj, n * F);
    } else {
        for (int b = 0; b < n; b++)
            linear_forward(out + (size_t)b * ldo_rows * e->d, e->d, e->tab_in + (size_t)b * F * 3 * E,
                           3 * E, &em->proj, F);
    }
}

/* Embedding tokens of one order: t_i = proj(X_i) + pos_emb[i]. */
static void embedding_tokens_forward(craft_engine *e, float *out, int m, const float *X, int t)
{
    const craft_embed *em = &e->m->w.embed[m];
    linear_forward(out, e->d, X, em->proj.in, &em->proj, t);
    if (em->pos_emb)
        for (int i = 0; i < t; i++)
            for (int c = 0; c < e->d; c++)
                out[(size_t)i * e->d + c] += em->pos_emb[(size_t)i * e->d + c];
}

/* f_m = mean_i t_i = proj(mean_i X_i) + mean_i pos_emb[i], for every order that has m. */
static void auxiliary_representation_forward(craft_engine *e, int m, const craft_batch *bt, int n)
{
    const craft_config *cfg = e->cfg;
    const craft_modality *mod = &cfg->modalities[m];
    const int d = e->d;
    if (mod->kind == CRAFT_TABULAR) {
        /* A tabular auxiliary (another modality is the backbone): mean of its tokens. */
        float *tok = malloc(sizeof(float) * (size_t)e->F * d);
        for (int b = 0; b < n; b++) {
            e->avail[m][b] = 1;
            if (!tok)
                continue;
            craft_batch one = *bt;
            one.tab = bt->tab + (size_t)b * e->F;
            tabular_tokens_forward(e, tok, e->F, &one, 1);
            for (int c = 0; c < d; c++) {
                float s = 0.0f;
                for (int j = 0; j < e->F; j++)
                    s += tok[(size_t)j * d + c];
                e->f[m][(size_t)b * d + c] = s / e->F;
            }
        }
        free(tok);
        return;
    }
    const int D = mod->dim;
    for (int b = 0; b < n; b++) {
        int t = bt->ntok[m][b];
        e->avail[m][b] = t > 0;
        float *xm = e->xmean + (size_t)b * D;
        if (t == 0) {
            memset(xm, 0, sizeof(float) * D);
            continue;
        }
        const float *X = bt->emb[m] + (size_t)b * mod->tokens * D;
        for (int c = 0; c < D; c++) {
            float s = 0.0f;
            for (int i = 0; i < t; i++)
                s += X[(size_t)i * D + c];
            xm[c] = s / t;
        }
    }
    const craft_embed *em = &e->m->w.embed[m];
    linear_forward(e->f[m], d, e->xmean, D, &em->proj, n);
    if (em->pos_emb)
        for (int b = 0; b < n; b++) {
            int t = bt->ntok[m][b];
            for (int c = 0; c < d && t > 0; c++) {
                float s = 0.0f;
                for (int i = 0; i < t; i++)
                    s += em->pos_emb[(size_t)i * d + c];
                e->f[m][(size_t)b * d + c] += s / t;
            }
        }
}

/* ---------------------------------------------------------- backbone */

/* A dot product with 16 partial sums in a fixed order: vectorizes without
 * -ffast-math and gives the same result on every machine and thread count. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dot_f32(const float *a, const float *b, int n)
{
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++)
            acc[l] += a[i + l] * b[i + l];
    for (; i < n; i++)
        acc[i & 15] += a[i] * b[i];
    float s = 0.0f;
    for (int l = 0; l < 16; l++)
        s += acc[l];
    return s;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void axpy_f32(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* Sparse top-k self-attention of one order's n tokens (rows of q, k, v, u).
 * S_ij = U_i.U_j / sqrt(r); keys N(i) = top-min(kappa,n) of S_i;
 * z_hi = sum_{j in N(i)} softmax_j(q_hi.k_hj / sqrt(dh) + S_ij) v_hj. */
static void sparse_attention_forward(craft_engine *e, float *z, int *nbr, const float *q, const float *k,
                                     const float *v, const float *u, int n)
{
    const int d = e->d, H = e->H, dh = e->dh, r = e->r;
    const int kk = e->kk < n ? e->kk : n;
    const float rs = 1.0f / sqrtf((float)r), qs = 1.0f / sqrtf((float)dh);
    float *S = e->work + e->wstride * thread_id();
    float *logit = S + (size_t)e->T * e->T + (size_t)e->T * H + (size_t)d * H, *best = logit + e->kk;
    /* inside a parallel region: OpenBLAS runs single-threaded here */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, r, rs, u, r, u, r, 0.0f, S, n);
    for (int i = 0; i < n; i++) {
        int *sel = nbr + (size_t)i * e->kk;
        const float *Si = S + (size_t)i * n;
        topk_select(sel, best, Si, n, kk);
        for (int hd = 0; hd < H; hd++) {
            const float *qi = q + (size_t)i * d + hd * dh;
            for (int a = 0; a < kk; a++)
                logit[a] = dot_f32(qi, k + (size_t)sel[a] * d + hd * dh, dh) * qs + Si[sel[a]];
            softmax_inplace(logit, kk);
            float *zi = z + (size_t)i * d + hd * dh;
            memset(zi, 0, sizeof(float) * dh);
            for (int a = 0; a < kk; a++)
                axpy_f32(zi, logit[a], v + (size_t)sel[a] * d + hd * dh, dh);
        }
    }
}

static void add_row_bias(float *X, const float *bias, int N, int d)
{
#pragma omp parallel for schedule(static) if (N > 256)
    for (int i = 0; i < N; i++)
        axpy_f32(X + (size_t)i * d, 1.0f, bias, d);
}

/* One pre-LN block over all B*T rows, in place on e->X. */
static void block_forward(craft_engine *e, const craft_block *bl, int n_orders)
{
    const int d = e->d, T = e->T;
    const int N = n_orders * T;
    layernorm_forward(e->h, NULL, NULL, e->X, &bl->ln1, N, d);
    linear_forward(e->q, d, e->h, d, &bl->q, N);
    linear_forward(e->k, d, e->h, d, &bl->k, N);
    linear_forward(e->v, d, e->h, d, &bl->v, N);
    craft_sgemm(0, 1, N, e->r, d, 1.0f, e->h, d, bl->route, d, 0.0f, e->u, e->r);
#pragma omp parallel for schedule(dynamic, 1) if (n_orders > 1)
    for (int b = 0; b < n_orders; b++) {
        size_t o = (size_t)b * T;
        sparse_attention_forward(e, e->z + o * d, e->nbr + o * e->kk, e->q + o * d, e->k + o * d,
                                 e->v + o * d, e->u + o * e->r, e->n_bb[b]);
        /* padding rows stay zero in z */
        memset(e->z + (o + e->n_bb[b]) * d, 0, sizeof(float) * (size_t)(T - e->n_bb[b]) * d);
    }
    /* X += Linear_o(z) */
    add_row_bias(e->X, bl->o.b, N, d);
    craft_sgemm(0, 1, N, d, d, 1.0f, e->z, d, bl->o.w, d, 1.0f, e->X, d);
    /* X += fc2(GELU(fc1(LN2(X)))) */
    layernorm_forward(e->h, NULL, NULL, e->X, &bl->ln2, N, d);
    linear_forward(e->f1, e->ffn, e->h, d, &bl->fc1, N);
    gelu_forward(e->f1g, e->f1, (size_t)N * e->ffn);
    add_row_bias(e->X, bl->fc2.b, N, d);
    craft_sgemm(0, 1, N, d, e->ffn, 1.0f, e->f1g, e->ffn, bl->fc2.w, e->ffn, 1.0f, e->X, d);
}

/* Tokens, blocks and LN_f for orders [0, n): leaves Xb in e->X and f_m of every auxiliary. */
static int backbone_forward(craft_engine *e, const craft_batch *bt, int n, craft_error *err)
{
    const craft_config *cfg = e->cfg;
    const int bb = cfg->backbone, T = e->T, d = e->d;
    const craft_modality *bmod = &cfg->modalities[bb];
    if (bmod->kind == CRAFT_TABULAR) {
        for (int b = 0; b < n; b++)
            e->n_bb[b] = T;
        tabular_tokens_forward(e, e->X, T, bt, n);
    } else {
        memset(e->X, 0, sizeof(float) * (size_t)n * T * d);
        for (int b = 0; b < n; b++) {
            int t = bt->ntok[bb][b];
            if (t < 1)
                return craft_fail(err, CRAFT_EINPUT, "order %d has no \"%s\" input, the model's backbone", b,
                                  bmod->name);
            e->n_bb[b] = t;
            embedding_tokens_forward(e, e->X + (size_t)b * T * d, bb,
                                     bt->emb[bb] + (size_t)b * bmod->tokens * bmod->dim, t);
        }
    }
    if (cfg->wide_head) {
        /* wide[b, k] = X0[b] . head_wide[k]: a linear term of the tokens before the blocks
         * (padding rows are zero), added to every request's logits */
        memset(e->wide, 0, sizeof(float) * (size_t)n * e->K);
        craft_sgemm(0, 1, n, e->K, T * d, 1.0f, e->X, T * d, e->m->w.head_wide, T * d, 0.0f, e->wide, e->K);
    }
    for (int l = 0; l < cfg->layers; l++)
        block_forward(e, &e->m->w.blocks[l], n);
    layernorm_forward(e->X, NULL, NULL, e->X, &e->m->w.ln_f, n * T, d);
    for (int b = 0; b < n; b++) /* padding rows never take part, but keep them finite */
        memset(e->X + ((size_t)b * T + e->n_bb[b]) * d, 0, sizeof(float) * (size_t)(T - e->n_bb[b]) * d);
    for (int m = 0; m < e->M; m++)
        if (m != bb)
            auxiliary_representation_forward(e, m, bt, n);
    return CRAFT_OK;
}

/* ---------------------------------------------------- single-query attention */

/* For order b: logits_hj = (Xb_j * C) . qk_h / sqrt(dh) over its n tokens;
 * att[h, j] the softmax; xbar[h] = C * sum_j att_hj Xb_j. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void single_query_attention(craft_engine *e, float *att, float *xbar, const float *Xb, int n,
                                   const float *qk, const float *C)
{
    const int d = e->d, H = e->H;
    const float scale = 1.0f / sqrtf((float)e->dh);
    float *lg = e->work + e->wstride * thread_id() + (size_t)e->T * e->T; /* [n, H] */
    float *qkc = lg + (size_t)e->T * H;                                     /* [d, H] */
    for (int c = 0; c < d; c++)
        for (int hd = 0; hd < H; hd++)
            qkc[(size_t)c * H + hd] = qk[(size_t)hd * d + c] * C[c] * scale;
    /* logits [n, H] = Xb [n, d] qkc [d, H] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, H, d, 1.0f, Xb, d, qkc, H, 0.0f, lg, H);
    for (int hd = 0; hd < H; hd++) {
        float *a = att + (size_t)hd * e->T;
        for (int j = 0; j < n; j++)
            a[j] = lg[(size_t)j * H + hd];
        softmax_inplace(a, n);
    }
    /* xbar [H, d] = att [H, n] Xb [n, d], then gated by C */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, d, n, 1.0f, att, e->T, Xb, d, 0.0f, xbar, d);
    for (int hd = 0; hd < H; hd++)
        for (int c = 0; c < d; c++)
            xbar[(size_t)hd * d + c] *= C[c];
}

/* Per head h: zb[:, h] = xbar[:, h, :] Wv_h^T + bv_h, then out = Linear_o(zb). */
static void attention_output(craft_engine *e, float *out, const craft_linear *wv, const craft_linear *wo, int n)
{
    const int d = e->d, H = e->H, dh = e->dh;
    for (int b = 0; b < n; b++)
        memcpy(e->zb + (size_t)b * d, wv->b, sizeof(float) * d);
    for (int hd = 0; hd < H; hd++)
        craft_sgemm(0, 1, n, dh, d, 1.0f, e->xbar + (size_t)hd * d, H * d, wv->w + (size_t)hd * dh * d, d, 1.0f,
                    e->zb + hd * dh, d);
    linear_forward(out, d, e->zb, d, wo, n);
}

/* Conditioning by auxiliary m for the active orders: fhat_m, gate c_m, C *= c_m. */
static void conditioning_forward(craft_engine *e, int m, float *C, float *fhat, int n)
{
    const craft_cross *cr = &e->m->w.cross[m];
    const int d = e->d, H = e->H, dh = e->dh, T = e->T;
    linear_forward(e->qv, d, e->f[m], d, &cr->q, n);
    /* qk[b, h, :] = q[b, h-chunk] Wk[h-chunk, :] */
    for (int hd = 0; hd < H; hd++)
        craft_sgemm(0, 0, n, d, dh, 1.0f, e->qv + hd * dh, d, cr->k.w + (size_t)hd * dh * d, d, 0.0f,
                    e->qk + (size_t)hd * d, H * d);
#pragma omp parallel for schedule(static) if (n > 1)
    for (int b = 0; b < n; b++)
        if (e->active[b])
            single_query_attention(e, e->att + (size_t)b * H * T, e->xbar + (size_t)b * H * d,
                                   e->X + (size_t)b * T * d, e->n_bb[b], e->qk + (size_t)b * H * d,
                                   C + (size_t)b * d);
    attention_output(e, fhat, &cr->v, &cr->o, n);
    linear_forward(e->cg, d, fhat, d, &cr->gate, n);
    for (int b = 0; b < n; b++) {
        if (!e->active[b])
            continue;
        float *g = e->cg + (size_t)b * d, *cb = C + (size_t)b * d;
        for (int c = 0; c < d; c++) {
            g[c] = craft_sigmoid(g[c]);
            cb[c] *= g[c];
        }
    }
}

/* Attention pooling with the learned query: P and the importance alpha. */
static void pooling_forward(craft_engine *e, const float *C, float *alpha, int n, int want_P)
{
    const craft_weights *w = &e->m->w;
    const int d = e->d, H = e->H, T = e->T;
#pragma omp parallel for schedule(static) if (n > 1)
    for (int b = 0; b < n; b++) {
        float *att = e->att + (size_t)b * H * T;
        single_query_attention(e, att, e->xbar + (size_t)b * H * d, e->X + (size_t)b * T * d, e->n_bb[b],
                               e->pool_qk, C + (size_t)b * d);
        float *al = alpha + (size_t)b * T;
        memset(al, 0, sizeof(float) * T);
        for (int j = 0; j < e->n_bb[b]; j++) {
            float s = 0.0f;
            for (int hd = 0; hd < H; hd++)
                s += att[(size_t)hd * T + j];
            al[j] = s / H;
        }
    }
    if (want_P)
        attention_output(e, e->P, &w->pool_v, &w->pool_o, n);
}

/* Whether modality m is used for order b under the request. */
static int uses(const craft_engine *e, const craft_request *rq, int m, int b)
{
    return !(rq->off_mask >> m & 1u) && e->avail[m][b];
}

/* Steps 2-5 for one request over the backbone pass in e->X: fills logits, alpha, gates. */
static void tail_forward(craft_engine *e, const craft_request *rq, int n, craft_result *res)
{
    const craft_config *cfg = e->cfg;
    const craft_weights *w = &e->m->w;
    const int d = e->d, M = e->M, bb = cfg->backbone, K = e->K;
    for (size_t i = 0; i < (size_t)n * d; i++)
        e->C[i] = 1.0f;
    for (int m = 0; m < M; m++) {
        if (m == bb)
            continue;
        int any = 0;
        for (int b = 0; b < n; b++)
            any |= e->active[b] = uses(e, rq, m, b);
        memcpy(e->Csnap + (size_t)m * e->B * d, e->C, sizeof(float) * (size_t)n * d);
        if (!any)
            continue;
        float *fh = e->fhat + (size_t)m * e->B * d;
        conditioning_forward(e, m, e->C, fh, n);
        if (res && res->cond_gate)
            for (int b = 0; b < n; b++) {
                float s = 0.0f;
                for (int c = 0; c < d && e->active[b]; c++)
                    s += e->cg[(size_t)b * d + c];
                res->cond_gate[(size_t)b * M + m] = e->active[b] ? s / d : NAN;
            }
    }
    pooling_forward(e, e->C, e->alpha, n, 1);
    /* Gated residual fusion: fused = P + sum_m g_m * f_m, g_m = sigma(W [P || f_m] + b). */
    memcpy(e->fused, e->P, sizeof(float) * (size_t)n * d);
    for (int m = 0; m < M; m++) {
        if (m == bb)
            continue;
        int any = 0;
        for (int b = 0; b < n; b++)
            any |= e->active[b] = uses(e, rq, m, b);
        if (!any)
            continue;
        for (int b = 0; b < n; b++) {
            memcpy(e->cat + (size_t)b * 2 * d, e->P + (size_t)b * d, sizeof(float) * d);
            memcpy(e->cat + (size_t)b * 2 * d + d, e->f[m] + (size_t)b * d, sizeof(float) * d);
        }
        linear_forward(e->g, d, e->cat, 2 * d, &w->fuse[m], n);
        for (int b = 0; b < n; b++) {
            if (!e->active[b])
                continue;
            float s = 0.0f;
            for (int c = 0; c < d; c++) {
                float gc = craft_sigmoid(e->g[(size_t)b * d + c]);
                e->fused[(size_t)b * d + c] += gc * e->f[m][(size_t)b * d + c];
                s += gc;
            }
            if (res && res->fuse_gate)
                res->fuse_gate[(size_t)b * M + m] = s / d;
        }
    }
    /* Head: fc2(GELU(fc1(LN(fused)))) */
    layernorm_forward(e->hh, NULL, NULL, e->fused, &w->head_ln, n, d);
    linear_forward(e->h1, d, e->hh, d, &w->head_fc1, n);
    gelu_forward(e->h1, e->h1, (size_t)n * d);
    linear_forward(e->logits, K, e->h1, d, &w->head_fc2, n);
    if (e->cfg->wide_head)
        for (size_t i = 0; i < (size_t)n * K; i++)
            e->logits[i] += e->wide[i];
}

void craft_logits_to_scores(int task, int K, const float *calib_a, const float *calib_b, const float *logits,
                            float *scores, int n)
{
    for (int b = 0; b < n; b++) {
        const float *y = logits + (size_t)b * K;
        float *p = scores + (size_t)b * K;
        for (int k = 0; k < K; k++) /* z = a y + b, when calibrated */
            p[k] = calib_a ? calib_a[k] * y[k] + calib_b[k] : y[k];
        if (task == CRAFT_MULTICLASS) {
            softmax_inplace(p, K);
        } else {
            for (int k = 0; k < K; k++)
                p[k] = craft_sigmoid(p[k]);
        }
    }
}

static void logits_to_scores(const craft_engine *e, float *scores, const float *logits, int n)
{
    craft_logits_to_scores(e->cfg->task, e->K, e->cfg->calib_a, e->cfg->calib_b, logits, scores, n);
}

/* CMIS(j, m) = alpha_j(all of A) - alpha_j(A with m's gate the identity), for each used m.
 * Conditioning after m is rerun from C before m; earlier gates are shared. */
static void cmis_forward(craft_engine *e, const craft_request *rq, int n, craft_result *res)
{
    const int d = e->d, M = e->M, T = e->T, bb = e->cfg->backbone;
    for (int m = 0; m < M; m++) {
        float *out = res->cmis + (size_t)m * T;
        for (int b = 0; b < n; b++)
            for (int j = 0; j < T; j++)
                out[(size_t)b * M * T + j] = NAN;
    }
    for (int m = 0; m < M; m++) {
        if (m == bb)
            continue;
        int anyu = 0;
        int *used_m = e->used_m;
        for (int b = 0; b < n; b++)
            anyu |= used_m[b] = uses(e, rq, m, b);
        if (!anyu)
            continue;
        memcpy(e->C, e->Csnap + (size_t)m * e->B * d, sizeof(float) * (size_t)n * d);
        for (int m2 = m + 1; m2 < M; m2++) {
            if (m2 == bb)
                continue;
            int any = 0;
            for (int b = 0; b < n; b++)
                any |= e->active[b] = used_m[b] && uses(e, rq, m2, b);
            if (any)
                conditioning_forward(e, m2, e->C, e->hh /* scratch: fhat is not kept */, n);
        }
        pooling_forward(e, e->C, e->alpha_cf, n, 0);
        for (int b = 0; b < n; b++) {
            if (!used_m[b])
                continue;
            float *out = res->cmis + ((size_t)b * M + m) * T;
            for (int j = 0; j < e->n_bb[b]; j++)
                out[j] = e->alpha[(size_t)b * T + j] - e->alpha_cf[(size_t)b * T + j];
        }
    }
}

/* ------------------------------------------------------------- results */

int craft_result_init(craft_result *r, const craft_config *cfg, int cap, const craft_request *req,
                      craft_error *err)
{
    memset(r, 0, sizeof *r);
    r->K = cfg->n_classes;
    r->M = cfg->n_modalities;
    r->T = cfg->modalities[cfg->backbone].tokens;
    const size_t n = (size_t)cap;
    const int F = cfg->tabular >= 0 ? cfg->modalities[cfg->tabular].n_features : 0;
    int ok = (r->scores = calloc(n * r->K, sizeof(float))) && (r->logits = calloc(n * r->K, sizeof(float))) &&
             (r->used = calloc(n, sizeof(uint32_t))) && (r->ntok = calloc(n, sizeof(int))) &&
             (r->cond_gate = calloc(n * r->M, sizeof(float))) && (r->fuse_gate = calloc(n * r->M, sizeof(float)));
    if (ok && req && req->importance)
        ok = (r->importance = calloc(n * r->T, sizeof(float))) != NULL;
    if (ok && req && req->cmis)
        ok = (r->cmis = calloc(n * r->M * r->T, sizeof(float))) != NULL;
    if (ok && req && req->perturbation && F)
        ok = (r->perturb = calloc(n * r->K * F, sizeof(float))) != NULL;
    if (!ok) {
        craft_result_free(r);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for results of %d orders", cap);
    }
    return CRAFT_OK;
}

void craft_result_free(craft_result *r)
{
    free(r->scores);
    free(r->logits);
    free(r->used);
    free(r->ntok);
    free(r->importance);
    free(r->cmis);
    free(r->cond_gate);
    free(r->fuse_gate);
    free(r->perturb);
    memset(r, 0, sizeof *r);
}

/* ----------------------------------------------------------------- run */

static int check_batch(const craft_engine *e, const craft_batch *bt, craft_error *err)
{
    const craft_config *cfg = e->cfg;
    if (bt->n < 0 || bt->n > e->B)
        return craft_fail(err, CRAFT_EINPUT, "batch of %d orders; this engine takes at most %d", bt->n, e->B);
    if (bt->F != e->F)
        return craft_fail(err, CRAFT_EINPUT, "batch has %d tabular features, the model %d", bt->F, e->F);
    for (int b = 0; b < bt->n; b++) {
        for (int j = 0; j < e->F; j++) {
            float x = bt->tab[(size_t)b * e->F + j];
            const craft_feature *f = &cfg->modalities[cfg->tabular].features[j];
            if (isinf(x))
                return craft_fail(err, CRAFT_EINPUT, "order %d: feature \"%s\" is infinite", b, f->name);
            if (f->type == CRAFT_CATEGORICAL && !isnan(x) && (x < 1 || x > cfg->bins || x != floorf(x)))
                return craft_fail(err, CRAFT_EINPUT, "order %d: feature \"%s\" has no valid category code", b, f->name);
        }
        for (int m = 0; m < cfg->n_modalities; m++) {
            const craft_modality *mod = &cfg->modalities[m];
            if (mod->kind != CRAFT_EMBEDDING)
                continue;
            int t = bt->ntok[m][b];
            if (t < 0 || t > mod->tokens)
                return craft_fail(err, CRAFT_EINPUT, "order %d: %d \"%s\" tokens (at most %d)", b, t, mod->name,
                                  mod->tokens);
            const float *X = bt->emb[m] + (size_t)b * mod->tokens * mod->dim;
            for (size_t i = 0; i < (size_t)t * mod->dim; i++)
                if (!isfinite(X[i]))
                    return craft_fail(err, CRAFT_EINPUT, "order %d: \"%s\" embedding holds a non-finite value",
                                      b, mod->name);
        }
    }
    return CRAFT_OK;
}

static void collect(craft_engine *e, const craft_request *rq, int n, craft_result *res)
{
    const int bb = e->cfg->backbone;
    res->n = n;
    memcpy(res->logits, e->logits, sizeof(float) * (size_t)n * e->K);
    logits_to_scores(e, res->scores, e->logits, n);
    for (int b = 0; b < n; b++) {
        uint32_t u = 1u << bb;
        for (int m = 0; m < e->M; m++)
            if (m != bb && uses(e, rq, m, b))
                u |= 1u << m;
            else if (m != bb) {
                res->cond_gate[(size_t)b * e->M + m] = NAN;
                res->fuse_gate[(size_t)b * e->M + m] = NAN;
            }
        res->cond_gate[(size_t)b * e->M + bb] = NAN;
        res->fuse_gate[(size_t)b * e->M + bb] = NAN;
        res->used[b] = u;
        res->ntok[b] = e->n_bb[b];
    }
    if (res->importance)
        memcpy(res->importance, e->alpha, sizeof(float) * (size_t)n * e->T);
}

int craft_engine_run(craft_engine *e, const craft_batch *bt, const craft_request *req, int n_req,
                     craft_result *results, craft_error *err)
{
    const int bb = e->cfg->backbone, n = bt->n;
    craft_threads_init(e->threads); /* the calling thread may not be the one that made the engine */
    int rc = check_batch(e, bt, err);
    if (rc)
        return rc;
    for (int i = 0; i < n_req; i++)
        if (req[i].off_mask >> bb & 1u)
            return craft_fail(err, CRAFT_EINPUT, "the backbone \"%s\" cannot be switched off",
                              e->cfg->modalities[bb].name);
    if (n == 0) {
        for (int i = 0; i < n_req; i++)
            results[i].n = 0;
        return CRAFT_OK;
    }
    if ((rc = backbone_forward(e, bt, n, err)))
        return rc;
    int want_pert = 0;
    for (int i = 0; i < n_req; i++) {
        tail_forward(e, &req[i], n, &results[i]);
        collect(e, &req[i], n, &results[i]);
        if (req[i].cmis && results[i].cmis)
            cmis_forward(e, &req[i], n, &results[i]);
        want_pert |= req[i].perturbation && results[i].perturb;
    }
    if (!want_pert)
        return CRAFT_OK;
    /* Perturbation importance: rerun everything with feature j missing. */
    const int F = e->F, K = e->K;
    craft_batch pb = *bt; /* shares the embeddings; only the tabular block is our own */
    pb.tab = e->pert_tab;
    memcpy(pb.tab, bt->tab, sizeof(float) * (size_t)n * F);
    for (int j = 0; j < F; j++) {
        for (int b = 0; b < n; b++)
            pb.tab[(size_t)b * F + j] = NAN;
        backbone_forward(e, &pb, n, NULL);
        for (int i = 0; i < n_req; i++) {
            if (!(req[i].perturbation && results[i].perturb))
                continue;
            tail_forward(e, &req[i], n, NULL);
            logits_to_scores(e, e->pert_scores, e->logits, n);
            for (int b = 0; b < n; b++)
                for (int k = 0; k < K; k++)
                    results[i].perturb[((size_t)b * K + k) * F + j] =
                        results[i].scores[(size_t)b * K + k] - e->pert_scores[(size_t)b * K + k];
        }
        for (int b = 0; b < n; b++)
            pb.tab[(size_t)b * F + j] = bt->tab[(size_t)b * F + j];
    }
    return CRAFT_OK;
}
