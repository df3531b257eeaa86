/* train.c: the training forward pass with cached activations and the
 * hand-written backward pass of every layer (MODEL.md, "Forward pass" and
 * "Training"). Layer by layer, X_forward keeps what X_backward needs.
 *
 * Shapes: B orders, T backbone tokens at most (rows b*T .. b*T+n_b-1 of every
 * [N = B*T, .] array belong to order b; padding rows never take part and get
 * zero gradients), d width, H heads of dh, K classes, F tabular features.
 *
 * The single-query attentions (conditioning, pooling) use the same folding as
 * the inference engine (forward.c): with gated tokens G_j = Xb_j * C,
 *   logit_hj = (Wk_h^T q_h) . G_j / sqrt(dh)   (q_h . bk_h cancels in the softmax)
 *   z_h = Wv_h (sum_j a_hj G_j) + bv_h            (the weights sum to 1)
 * so their keys and values are never projected; the gradient of bk is zero
 * exactly, as it is mathematically. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <cblas.h>

#include "craft_hash.h"
#include "ops.h"
#include "train.h"

typedef struct {
    float *h1, *q, *k, *v, *u, *z, *att, *xmid, *h2, *f1, *f1g; /* [N, .] */
    float *ln1m, *ln1r, *ln2m, *ln2r;                            /* [N] */
    int *nbr;                                                    /* [N, kk] */
    unsigned char *mask_a, *mask_f;                              /* [N, d] dropout keeps */
} layer_cache;

typedef struct { /* one single-query attention over the batch (conditioning or pooling) */
    float *qv;   /* [B, d] query (conditioning only) */
    float *qk;   /* [B, H, d] Wk_h^T q_h */
    float *att;  /* [B, H, T] softmax weights */
    float *s;    /* [B, H, d] sum_j a_hj Xb_j (ungated) */
    float *xbar; /* [B, H, d] C * s */
    float *zb;   /* [B, d] */
    float *out;  /* [B, d] fhat_m or P */
    float *gate; /* [B, d] sigma(gate(fhat)) (conditioning only) */
    float *Cin;  /* [B, d] the gate product before this attention */
} sq_cache;

struct craft_train {
    const craft_model *m;
    const craft_config *cfg;
    int B, T, d, H, dh, M, K, F, E, ffn, r, kk, L, bb, threads, n;
    int supcma_on;
    const craft_batch *batch; /* of the last forward (the backward reads its embeddings) */
    craft_train_opts o;
    float *tau;               /* [K] */
    float *labels;            /* [B, K] */
    /* tokens */
    int *bin;                 /* [B*F] */
    float *rr;                /* [B*F] */
    float *tab_in;            /* [B*F, 3E] */
    int *n_bb;                /* [B] */
    float *xs[CRAFT_MAX_LAYERS + 1]; /* [N, d] residual stream into each block, and into LN_f */
    layer_cache lc[CRAFT_MAX_LAYERS];
    float *lnfm, *lnfr, *Xb;  /* LN_f */
    /* auxiliaries */
    int *avail[CRAFT_MAX_MODALITIES];   /* [B] used in this forward (after modality dropout) */
    float *xmean[CRAFT_MAX_MODALITIES]; /* [B, D_m] mean input row */
    float *f[CRAFT_MAX_MODALITIES];     /* [B, d] */
    sq_cache cross[CRAFT_MAX_MODALITIES], pool;
    float *C;                 /* [B, d] gate product after the last auxiliary */
    float *pool_qk;           /* [H, d] */
    float *fuse_g[CRAFT_MAX_MODALITIES]; /* [B, d] sigma of the fusion gates */
    float *cat;               /* [B, 2d] */
    float *fused, *fd, *hm, *hr, *hh, *a1, *a1g, *logits; /* head */
    unsigned char *mask_h;    /* [B, d] */
    /* SupCMA projection heads, per modality */
    float *sa1[CRAFT_MAX_MODALITIES], *sz[CRAFT_MAX_MODALITIES], *snrm[CRAFT_MAX_MODALITIES];
    float *sr[CRAFT_MAX_MODALITIES];
    /* gradients of activations */
    float *dX, *dhid, *dq, *dk, *dv, *du, *dz, *df1, *dtab, *dXb;
    float *dC, *dP, *dfused, *dsmall, *dsmall2, *dqk, *dxbar, *dcat, *dlogits, *dbig;
    float *df[CRAFT_MAX_MODALITIES], *dfhat[CRAFT_MAX_MODALITIES], *dzs[CRAFT_MAX_MODALITIES];
    float *dxmean;            /* [B, Dmax] */
    /* per-thread scratch */
    float *work;
    size_t wstride;
    /* SupCMA scratch */
    float *za, *zb2, *sim, *dsim, *dza, *dzb; /* [B,128] x4, [B,B] x2 */
    int *idx;
};

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

craft_train_opts craft_train_defaults(void)
{
    craft_train_opts o = {0.3f, 0.07f, 0, 1, 0.2f, 0.2f, NULL, 1, 0};
    return o;
}

void craft_supcma_tau(const craft_config *cfg, float tau_base, int uniform, float *tau)
{
    float pmax = 0.0f;
    for (int k = 0; k < cfg->n_classes; k++)
        pmax = cfg->prevalence && cfg->prevalence[k] > pmax ? cfg->prevalence[k] : pmax;
    for (int k = 0; k < cfg->n_classes; k++) {
        float p = cfg->prevalence ? cfg->prevalence[k] : 0.0f;
        /* A class never seen in training (p = 0) would get tau 0: keep the base instead. */
        tau[k] = (uniform || pmax <= 0.0f || p <= 0.0f) ? tau_base : tau_base * sqrtf(p / pmax);
    }
}

/* ------------------------------------------------------------ allocation */

static float *fz(size_t n, int *ok)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float))) {
        *ok = 0;
        return NULL;
    }
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

void craft_train_free(craft_train *t)
{
    if (!t)
        return;
    /* every float buffer is listed once; free(NULL) is harmless */
    float **all[] = {&t->tau, &t->labels, &t->rr, &t->tab_in, &t->lnfm, &t->lnfr, &t->Xb, &t->C, &t->pool_qk,
                     &t->cat, &t->fused, &t->fd, &t->hm, &t->hr, &t->hh, &t->a1, &t->a1g, &t->logits, &t->dX,
                     &t->dhid, &t->dq, &t->dk, &t->dv, &t->du, &t->dz, &t->df1, &t->dtab, &t->dXb, &t->dC, &t->dP,
                     &t->dfused, &t->dsmall, &t->dsmall2, &t->dqk, &t->dxbar, &t->dcat, &t->dlogits, &t->dbig,
                     &t->dxmean, &t->work, &t->za, &t->zb2, &t->sim, &t->dsim, &t->dza, &t->dzb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(*all[i]);
    for (int l = 0; l <= CRAFT_MAX_LAYERS; l++)
        free(t->xs[l]);
    for (int l = 0; l < CRAFT_MAX_LAYERS; l++) {
        layer_cache *c = &t->lc[l];
        float **lf[] = {&c->h1, &c->q, &c->k, &c->v, &c->u, &c->z, &c->att, &c->xmid, &c->h2, &c->f1,
                        &c->f1g, &c->ln1m, &c->ln1r, &c->ln2m, &c->ln2r};
        for (size_t i = 0; i < sizeof lf / sizeof *lf; i++)
            free(*lf[i]);
        free(c->nbr);
        free(c->mask_a);
        free(c->mask_f);
    }
    for (int m = 0; m < CRAFT_MAX_MODALITIES; m++) {
        sq_cache *s = &t->cross[m];
        float **sf[] = {&s->qv, &s->qk, &s->att, &s->s, &s->xbar, &s->zb, &s->out, &s->gate, &s->Cin};
        for (size_t i = 0; i < sizeof sf / sizeof *sf; i++)
            free(*sf[i]);
        free(t->avail[m]);
        free(t->xmean[m]);
        free(t->f[m]);
        free(t->fuse_g[m]);
        free(t->sa1[m]);
        free(t->sz[m]);
        free(t->snrm[m]);
        free(t->sr[m]);
        free(t->df[m]);
        free(t->dfhat[m]);
        free(t->dzs[m]);
    }
    sq_cache *s = &t->pool;
    float **sf[] = {&s->qv, &s->qk, &s->att, &s->s, &s->xbar, &s->zb, &s->out, &s->gate, &s->Cin};
    for (size_t i = 0; i < sizeof sf / sizeof *sf; i++)
        free(*sf[i]);
    free(t->bin);
    free(t->n_bb);
    free(t->mask_h);
    free(t->idx);
    free(t);
}

static void sq_alloc(sq_cache *s, size_t B, size_t H, size_t T, size_t d, int cond, int *ok)
{
    if (cond) {
        s->qv = fz(B * d, ok);
        s->gate = fz(B * d, ok);
        s->Cin = fz(B * d, ok);
    }
    s->qk = fz(B * H * d, ok);
    s->att = fz(B * H * T, ok);
    s->s = fz(B * H * d, ok);
    s->xbar = fz(B * H * d, ok);
    s->zb = fz(B * d, ok);
    s->out = fz(B * d, ok);
}

int craft_train_new(craft_train **out, const craft_model *m, int max_batch, int threads, craft_error *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > (1 << 16))
        return craft_fail(err, CRAFT_EINPUT, "training batch size %d is outside 1..65536", max_batch);
    const craft_config *cfg = &m->cfg;
    craft_train *t = calloc(1, sizeof *t);
    if (!t)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    t->m = m;
    t->cfg = cfg;
    t->B = max_batch;
    t->bb = cfg->backbone;
    t->T = cfg->modalities[t->bb].tokens;
    t->d = cfg->d_model;
    t->H = cfg->heads;
    t->dh = t->d / t->H;
    t->M = cfg->n_modalities;
    t->K = cfg->n_classes;
    t->F = cfg->tabular >= 0 ? cfg->modalities[cfg->tabular].n_features : 0;
    t->E = cfg->emb_dim;
    t->ffn = t->d * cfg->ffn_mult;
    t->r = cfg->route_dim;
    t->kk = cfg->topk < t->T ? cfg->topk : t->T;
    t->L = cfg->layers;
    t->threads = threads > 0 ? threads : craft_cpu_count();
    craft_set_threads(t->threads);
    const size_t B = (size_t)t->B, T = (size_t)t->T, N = B * T, d = (size_t)t->d, H = (size_t)t->H;
    const size_t F = (size_t)t->F, E3 = 3 * (size_t)t->E, K = (size_t)t->K, ffn = (size_t)t->ffn;
    int Dmax = 1;
    for (int i = 0; i < t->M; i++) {
        int D = cfg->modalities[i].kind == CRAFT_TABULAR ? (int)E3 : cfg->modalities[i].dim;
        Dmax = D > Dmax ? D : Dmax;
    }
    int ok = 1;
    t->tau = fz(K, &ok);
    t->labels = fz(B * K, &ok);
    t->rr = fz(B * (F ? F : 1), &ok);
    t->tab_in = fz(B * (F ? F : 1) * E3, &ok);
    t->dtab = fz(B * (F ? F : 1) * E3, &ok);
    for (int l = 0; l <= t->L; l++)
        t->xs[l] = fz(N * d, &ok);
    for (int l = 0; l < t->L; l++) {
        layer_cache *c = &t->lc[l];
        c->h1 = fz(N * d, &ok);
        c->q = fz(N * d, &ok);
        c->k = fz(N * d, &ok);
        c->v = fz(N * d, &ok);
        c->u = fz(N * t->r, &ok);
        c->z = fz(N * d, &ok);
        c->att = fz(N * H * t->kk, &ok);
        c->xmid = fz(N * d, &ok);
        c->h2 = fz(N * d, &ok);
        c->f1 = fz(N * ffn, &ok);
        c->f1g = fz(N * ffn, &ok);
        c->ln1m = fz(N, &ok);
        c->ln1r = fz(N, &ok);
        c->ln2m = fz(N, &ok);
        c->ln2r = fz(N, &ok);
        if (!(c->nbr = calloc(N * t->kk, sizeof(int))) || !(c->mask_a = malloc(N * d)) || !(c->mask_f = malloc(N * d)))
            ok = 0;
    }
    t->lnfm = fz(N, &ok);
    t->lnfr = fz(N, &ok);
    t->Xb = fz(N * d, &ok);
    for (int i = 0; i < t->M; i++) {
        if (!(t->avail[i] = calloc(B, sizeof(int))))
            ok = 0;
        t->xmean[i] = fz(B * Dmax, &ok);
        t->f[i] = fz(B * d, &ok);
        t->df[i] = fz(B * d, &ok);
        t->dfhat[i] = fz(B * d, &ok);
        if (i != t->bb) {
            sq_alloc(&t->cross[i], B, H, T, d, 1, &ok);
            t->fuse_g[i] = fz(B * d, &ok);
        }
        if (m->has_supcma) {
            t->sa1[i] = fz(B * d, &ok);
            t->sr[i] = fz(B * d, &ok);
            t->sz[i] = fz(B * CRAFT_SUPCMA_DIM, &ok);
            t->snrm[i] = fz(B, &ok);
            t->dzs[i] = fz(B * CRAFT_SUPCMA_DIM, &ok);
        }
    }
    sq_alloc(&t->pool, B, H, T, d, 0, &ok);
    t->C = fz(B * d, &ok);
    t->pool_qk = fz(H * d, &ok);
    t->cat = fz(B * 2 * d, &ok);
    t->fused = fz(B * d, &ok);
    t->fd = fz(B * d, &ok);
    t->hm = fz(B, &ok);
    t->hr = fz(B, &ok);
    t->hh = fz(B * d, &ok);
    t->a1 = fz(B * d, &ok);
    t->a1g = fz(B * d, &ok);
    t->logits = fz(B * K, &ok);
    t->dX = fz(N * d, &ok);
    t->dhid = fz(N * d, &ok);
    t->dq = fz(N * d, &ok);
    t->dk = fz(N * d, &ok);
    t->dv = fz(N * d, &ok);
    t->du = fz(N * t->r, &ok);
    t->dz = fz(N * d, &ok);
    t->df1 = fz(N * ffn, &ok);
    t->dXb = fz(N * d, &ok);
    t->dC = fz(B * d, &ok);
    t->dP = fz(B * d, &ok);
    t->dfused = fz(B * d, &ok);
    const size_t BH = B > H ? B : H;
    t->dsmall = fz(BH * d, &ok);
    t->dsmall2 = fz(B * d, &ok);
    t->dqk = fz(B * H * d, &ok);
    t->dxbar = fz(B * H * d, &ok);
    t->dcat = fz(B * 2 * d, &ok);
    t->dlogits = fz(B * K, &ok);
    t->dbig = fz(B * (d > K ? d : K) * 2 + B * CRAFT_SUPCMA_DIM, &ok);
    t->dxmean = fz(B * Dmax, &ok);
    t->za = fz(B * CRAFT_SUPCMA_DIM, &ok);
    t->zb2 = fz(B * CRAFT_SUPCMA_DIM, &ok);
    t->dza = fz(B * CRAFT_SUPCMA_DIM, &ok);
    t->dzb = fz(B * CRAFT_SUPCMA_DIM, &ok);
    t->sim = fz(B * B, &ok);
    t->dsim = fz(B * B, &ok);
    /* per thread: S or dS [T, T] | top-k scores [kk] | 4 x [H, d] | [H, T] | [H, kk] x2 */
    t->wstride = (T * T + (size_t)t->kk + 4 * H * d + H * T + 2 * H * (size_t)t->kk + 15) & ~(size_t)15;
    t->work = fz(t->wstride * t->threads, &ok);
    if (!(t->bin = calloc(B * (F ? F : 1), sizeof(int))) || !(t->n_bb = calloc(B, sizeof(int))) ||
        !(t->mask_h = malloc(B * d)) || !(t->idx = calloc(B, sizeof(int))))
        ok = 0;
    if (!ok) {
        craft_train_free(t);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for a training workspace of batch %d", max_batch);
    }
    *out = t;
    return CRAFT_OK;
}

const float *craft_train_logits(const craft_train *t) { return t->logits; }
const float *craft_train_tau(const craft_train *t) { return t->tau; }

/* ---------------------------------------------------------------- random */

/* Dropout keeps for rows [0, N) of width C: row i draws from its own stream
 * (seed, salt, i), so the masks do not depend on the thread count. */
static void dropout_mask(unsigned char *mask, size_t N, int C, float p, uint64_t seed, uint64_t salt)
{
    const uint64_t thr = (uint64_t)(p * 16777216.0);
#pragma omp parallel for schedule(static) if (N > 1024)
    for (long i = 0; i < (long)N; i++) {
        uint64_t s = craft_mix64(seed ^ craft_mix64(salt * 0x9e3779b97f4a7c15ull + (uint64_t)i));
        for (int c = 0; c < C; c++) {
            s += 0x9e3779b97f4a7c15ull;
            mask[(size_t)i * C + c] = (craft_mix64(s) >> 40) >= thr;
        }
    }
}

/* out = in + branch * mask / keep (mask NULL: no dropout) */
static void residual_add(float *out, const float *in, const float *branch, const unsigned char *mask, float keep,
                         size_t n)
{
    const float s = 1.0f / keep;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long i = 0; i < (long)n; i++)
        out[i] = in[i] + (mask ? (mask[i] ? branch[i] * s : 0.0f) : branch[i]);
}

/* -------------------------------------------------------------- tokens */

/* Scatters dtab (the gradient of tab_in) into the embedding tables; each
 * feature's rows are summed by one thread, orders in order. */
static void tabular_inputs_backward(craft_train *t, craft_weights *g, int n)
{
    const craft_config *cfg = t->cfg;
    craft_embed *ge = &g->embed[cfg->tabular];
    const int F = t->F, nb = cfg->bins, E = t->E, piecewise = cfg->tab_encoding == CRAFT_TAB_PIECEWISE;
#pragma omp parallel for schedule(static) if (F > 1)
    for (int j = 0; j < F; j++)
        for (int b = 0; b < n; b++) {
            const float *dr = t->dtab + ((size_t)b * F + j) * 3 * E;
            const float rr = t->rr[(size_t)b * F + j];
            const int bin = t->bin[(size_t)b * F + j];
            float *be = ge->bin_emb + ((size_t)j * (nb + 1) + bin) * E;
            if (piecewise && cfg->modalities[cfg->tabular].features[j].type == CRAFT_NUMERIC && bin > 0) {
                /* h = sum_{k<b} bin_emb[k] + rr bin_emb[b] (bins 1..b-1 full) */
                for (int c = 0; c < E; c++)
                    be[c] += rr * dr[c];
                for (int k = 1; k < bin; k++) {
                    float *bk = ge->bin_emb + ((size_t)j * (nb + 1) + k) * E;
                    for (int c = 0; c < E; c++)
                        bk[c] += dr[c];
                }
            } else {
                for (int c = 0; c < E; c++)
                    be[c] += dr[c];
            }
            for (int c = 0; c < E; c++) {
                ge->res_emb[(size_t)j * E + c] += rr * dr[E + c];
                ge->feat_emb[(size_t)j * E + c] += dr[2 * E + c];
            }
        }
}

/* Backbone tokens X0 [N, d]: tabular t_j = proj(tab_in_j); embedding t_i = proj(X_i) + pos_emb[i]. */
static int tokens_forward(craft_train *t, const craft_batch *bt, int n, craft_error *err)
{
    const craft_config *cfg = t->cfg;
    const craft_modality *mod = &cfg->modalities[t->bb];
    const craft_embed *em = &t->m->w.embed[t->bb];
    const int T = t->T, d = t->d;
    float *X0 = t->xs[0];
    if (mod->kind == CRAFT_TABULAR) {
        for (int b = 0; b < n; b++)
            t->n_bb[b] = T;
        linear_forward(X0, d, t->tab_in, 3 * t->E, &em->proj, n * T);
        return CRAFT_OK;
    }
    memset(X0, 0, sizeof(float) * (size_t)n * T * d);
    for (int b = 0; b < n; b++) {
        int nt = bt->ntok[t->bb][b];
        if (nt < 1)
            return craft_fail(err, CRAFT_EINPUT, "order %d has no \"%s\" input, the model's backbone", b, mod->name);
        if (nt > mod->tokens)
            return craft_fail(err, CRAFT_EINPUT, "order %d: %d \"%s\" tokens (at most %d)", b, nt, mod->name, mod->tokens);
        t->n_bb[b] = nt;
        float *x = X0 + (size_t)b * T * d;
        linear_forward(x, d, bt->emb[t->bb] + (size_t)b * mod->tokens * mod->dim, mod->dim, &em->proj, nt);
        if (em->pos_emb)
            for (size_t i = 0; i < (size_t)nt * d; i++)
                x[i] += em->pos_emb[i];
    }
    return CRAFT_OK;
}

static void tokens_backward(craft_train *t, craft_weights *g, const craft_batch *bt, int n)
{
    const craft_config *cfg = t->cfg;
    const craft_modality *mod = &cfg->modalities[t->bb];
    const craft_embed *em = &t->m->w.embed[t->bb];
    craft_embed *ge = &g->embed[t->bb];
    const int T = t->T, d = t->d;
    const float *dX0 = t->dX;
    if (mod->kind == CRAFT_TABULAR) {
        linear_backward(t->dtab, 3 * t->E, 1, &ge->proj, dX0, d, t->tab_in, 3 * t->E, &em->proj, n * T);
        return;
    }
    for (int b = 0; b < n; b++) {
        int nt = t->n_bb[b];
        const float *dx = dX0 + (size_t)b * T * d;
        linear_backward(NULL, 0, 0, &ge->proj, dx, d, bt->emb[t->bb] + (size_t)b * mod->tokens * mod->dim, mod->dim,
                        &em->proj, nt);
        if (ge->pos_emb)
            for (size_t i = 0; i < (size_t)nt * d; i++)
                ge->pos_emb[i] += dx[i];
    }
}

/* f_m = mean_i t_{m,i} = proj(mean_i input_i) + mean_i pos_emb[i] for the orders that use m. */
static void auxiliary_forward(craft_train *t, int m, const craft_batch *bt, int n)
{
    const craft_config *cfg = t->cfg;
    const craft_modality *mod = &cfg->modalities[m];
    const craft_embed *em = &t->m->w.embed[m];
    const int d = t->d, D = em->proj.in;
    float *xm = t->xmean[m];
    for (int b = 0; b < n; b++) {
        float *row = xm + (size_t)b * D;
        memset(row, 0, sizeof(float) * D);
        if (!t->avail[m][b])
            continue;
        int nt = mod->kind == CRAFT_TABULAR ? t->F : bt->ntok[m][b];
        const float *X = mod->kind == CRAFT_TABULAR ? t->tab_in + (size_t)b * t->F * D
                                                    : bt->emb[m] + (size_t)b * mod->tokens * D;
        for (int i = 0; i < nt; i++)
            for (int c = 0; c < D; c++)
                row[c] += X[(size_t)i * D + c];
        for (int c = 0; c < D; c++)
            row[c] /= nt;
    }
    linear_forward(t->f[m], d, xm, D, &em->proj, n);
    if (em->pos_emb)
        for (int b = 0; b < n; b++) {
            int nt = bt->ntok[m][b];
            for (int c = 0; c < d && t->avail[m][b]; c++) {
                float s = 0.0f;
                for (int i = 0; i < nt; i++)
                    s += em->pos_emb[(size_t)i * d + c];
                t->f[m][(size_t)b * d + c] += s / nt;
            }
        }
}

/* df[m] (zero for orders without m) into proj, pos_emb and, for a tabular auxiliary, dtab. */
static void auxiliary_backward(craft_train *t, craft_weights *g, int m, const craft_batch *bt, int n)
{
    const craft_modality *mod = &t->cfg->modalities[m];
    const craft_embed *em = &t->m->w.embed[m];
    craft_embed *ge = &g->embed[m];
    const int d = t->d, D = em->proj.in;
    const float *df = t->df[m];
    linear_backward(mod->kind == CRAFT_TABULAR ? t->dxmean : NULL, D, 0, &ge->proj, df, d, t->xmean[m], D,
                    &em->proj, n);
    if (mod->kind == CRAFT_TABULAR) {
        for (int b = 0; b < n; b++)
            for (int j = 0; j < t->F && t->avail[m][b]; j++)
                for (int c = 0; c < D; c++)
                    t->dtab[((size_t)b * t->F + j) * D + c] += t->dxmean[(size_t)b * D + c] / t->F;
    }
    if (ge->pos_emb)
        for (int b = 0; b < n; b++) {
            int nt = t->avail[m][b] ? bt->ntok[m][b] : 0;
            for (int i = 0; i < nt; i++)
                for (int c = 0; c < d; c++)
                    ge->pos_emb[(size_t)i * d + c] += df[(size_t)b * d + c] / nt;
        }
}

/* Per-head dot products and axpys over a width-d row (H chunks of dh), one
 * call for all heads; fixed summation order (no -ffast-math needed to
 * vectorize, the same result on every thread count). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void heads_dot(float *out, int ostride, const float *a, const float *b, int H, int dh)
{
    for (int hd = 0; hd < H; hd++) {
        const float *x = a + hd * dh, *y = b + hd * dh;
        float acc[8] = {0};
        int e = 0;
        for (; e + 8 <= dh; e += 8)
            for (int l = 0; l < 8; l++)
                acc[l] += x[e + l] * y[e + l];
        for (; e < dh; e++)
            acc[e & 7] += x[e] * y[e];
        out[(size_t)hd * ostride] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
}

/* y[h-chunk] += scale * coef[h * cstride] * x[h-chunk] for every head h */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void heads_axpy(float *y, const float *coef, int cstride, float scale, const float *x, int H, int dh)
{
    for (int hd = 0; hd < H; hd++) {
        const float c = coef[(size_t)hd * cstride] * scale;
        float *yy = y + hd * dh;
        const float *xx = x + hd * dh;
        for (int e = 0; e < dh; e++)
            yy[e] += c * xx[e];
    }
}

/* ------------------------------------------------- sparse top-k attention */

/* One order's n tokens: S = U U^T / sqrt(r); N(i) = top-min(kappa, n) of S_i;
 * att[i, h, a] = softmax_a(q_hi . k_h,N(i)_a / sqrt(dh) + S_i,N(i)_a); z_hi = sum_a att v_h,N(i)_a. */
static void sparse_attention_forward(craft_train *t, layer_cache *c, size_t o, int n)
{
    const int d = t->d, H = t->H, dh = t->dh, r = t->r, KK = t->kk;
    const int kk = KK < n ? KK : n;
    const float rs = 1.0f / sqrtf((float)r), qs = 1.0f / sqrtf((float)dh);
    float *S = t->work + t->wstride * thread_id(), *best = S + (size_t)t->T * t->T;
    const float *q = c->q + o * d, *k = c->k + o * d, *v = c->v + o * d, *u = c->u + o * r;
    float *z = c->z + o * d;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, r, rs, u, r, u, r, 0.0f, S, n);
    for (int i = 0; i < n; i++) {
        int *sel = c->nbr + (o + i) * KK;
        const float *Si = S + (size_t)i * n;
        if (!t->o.keep_selection)
            topk_select(sel, best, Si, n, kk);
        /* att[i] is [H, KK]: logits of every head for each selected key, then the softmax per head */
        float *a = c->att + (o + i) * H * KK;
        const float *qi = q + (size_t)i * d;
        for (int s = 0; s < kk; s++)
            heads_dot(a + s, KK, qi, k + (size_t)sel[s] * d, H, dh);
        for (int hd = 0; hd < H; hd++) {
            for (int s = 0; s < kk; s++)
                a[hd * KK + s] = a[hd * KK + s] * qs + Si[sel[s]];
            softmax_inplace(a + hd * KK, kk);
        }
        float *zi = z + (size_t)i * d;
        memset(zi, 0, sizeof(float) * d);
        for (int s = 0; s < kk; s++)
            heads_axpy(zi, a + s, KK, 1.0f, v + (size_t)sel[s] * d, H, dh);
    }
    memset(z + (size_t)n * d, 0, sizeof(float) * (size_t)(t->T - n) * d);
}

/* Given dz (rows of this order), writes dq, dk, dv and du (the routing
 * projection learns through the selected scores; the selection itself is fixed). */
static void sparse_attention_backward(craft_train *t, layer_cache *c, size_t o, int n)
{
    const int d = t->d, H = t->H, dh = t->dh, r = t->r, KK = t->kk, T = t->T;
    const int kk = KK < n ? KK : n;
    const float rs = 1.0f / sqrtf((float)r), qs = 1.0f / sqrtf((float)dh);
    float *dS = t->work + t->wstride * thread_id(), *dl = dS + (size_t)T * T;
    const float *q = c->q + o * d, *k = c->k + o * d, *v = c->v + o * d, *u = c->u + o * r;
    const float *dz = t->dz + o * d;
    float *dq = t->dq + o * d, *dk = t->dk + o * d, *dv = t->dv + o * d, *du = t->du + o * r;
    memset(dq, 0, sizeof(float) * (size_t)T * d);
    memset(dk, 0, sizeof(float) * (size_t)T * d);
    memset(dv, 0, sizeof(float) * (size_t)T * d);
    memset(du, 0, sizeof(float) * (size_t)T * r);
    memset(dS, 0, sizeof(float) * (size_t)n * n);
    for (int i = 0; i < n; i++) {
        const int *sel = c->nbr + (o + i) * KK;
        const float *a = c->att + (o + i) * H * KK;
        const float *dzi = dz + (size_t)i * d, *qi = q + (size_t)i * d;
        float *dqi = dq + (size_t)i * d;
        /* dl [H, KK]: first dA = dz . v, then the softmax's backward */
        for (int s = 0; s < kk; s++) {
            size_t row = (size_t)sel[s] * d;
            heads_dot(dl + s, KK, dzi, v + row, H, dh);
            heads_axpy(dv + row, a + s, KK, 1.0f, dzi, H, dh);
        }
        for (int hd = 0; hd < H; hd++) {
            float sum = 0.0f;
            for (int s = 0; s < kk; s++)
                sum += a[hd * KK + s] * dl[hd * KK + s];
            for (int s = 0; s < kk; s++)
                dl[hd * KK + s] = a[hd * KK + s] * (dl[hd * KK + s] - sum);
        }
        for (int s = 0; s < kk; s++) {
            size_t row = (size_t)sel[s] * d;
            float gs = 0.0f;
            for (int hd = 0; hd < H; hd++)
                gs += dl[hd * KK + s];
            dS[(size_t)i * n + sel[s]] += gs; /* S is added to every head's logits */
            heads_axpy(dqi, dl + s, KK, qs, k + row, H, dh);
            heads_axpy(dk + row, dl + s, KK, qs, qi, H, dh);
        }
    }
    /* S = rs U U^T: dU = rs (dS + dS^T) U */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, r, n, rs, dS, n, u, r, 0.0f, du, r);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, r, n, rs, dS, n, u, r, 1.0f, du, r);
}

/* ------------------------------------------------------ backbone blocks */

static void block_forward(craft_train *t, int l, int n)
{
    const craft_block *bl = &t->m->w.blocks[l];
    layer_cache *c = &t->lc[l];
    const int d = t->d, T = t->T, N = n * T;
    const float *xin = t->xs[l];
    float *xout = t->xs[l + 1];
    const float p = t->o.dropout, keep = 1.0f - p;
    layernorm_forward(c->h1, c->ln1m, c->ln1r, xin, &bl->ln1, N, d);
    linear_forward(c->q, d, c->h1, d, &bl->q, N);
    linear_forward(c->k, d, c->h1, d, &bl->k, N);
    linear_forward(c->v, d, c->h1, d, &bl->v, N);
    craft_sgemm(0, 1, N, t->r, d, 1.0f, c->h1, d, bl->route, d, 0.0f, c->u, t->r);
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
    for (int b = 0; b < n; b++)
        sparse_attention_forward(t, c, (size_t)b * T, t->n_bb[b]);
    /* xmid = xin + drop(Linear_o(z)); the branch goes through dh as scratch */
    linear_forward(t->dhid, d, c->z, d, &bl->o, N);
    if (p > 0.0f)
        dropout_mask(c->mask_a, (size_t)N, d, p, t->o.seed, 2 * l + 1);
    residual_add(c->xmid, xin, t->dhid, p > 0.0f ? c->mask_a : NULL, keep, (size_t)N * d);
    /* xout = xmid + drop(fc2(GELU(fc1(LN2(xmid))))) */
    layernorm_forward(c->h2, c->ln2m, c->ln2r, c->xmid, &bl->ln2, N, d);
    linear_forward(c->f1, t->ffn, c->h2, d, &bl->fc1, N);
    gelu_forward(c->f1g, c->f1, (size_t)N * t->ffn);
    linear_forward(t->dhid, d, c->f1g, t->ffn, &bl->fc2, N);
    if (p > 0.0f)
        dropout_mask(c->mask_f, (size_t)N, d, p, t->o.seed, 2 * l + 2);
    residual_add(xout, c->xmid, t->dhid, p > 0.0f ? c->mask_f : NULL, keep, (size_t)N * d);
}

/* dbranch = dx * mask / keep */
static void dropout_backward(float *out, const float *dx, const unsigned char *mask, float keep, size_t n)
{
    const float s = 1.0f / keep;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long i = 0; i < (long)n; i++)
        out[i] = mask ? (mask[i] ? dx[i] * s : 0.0f) : dx[i];
}

/* dX holds the gradient of xs[l+1]; leaves the gradient of xs[l] in dX. */
static void block_backward(craft_train *t, craft_weights *g, int l, int n)
{
    const craft_block *bl = &t->m->w.blocks[l];
    craft_block *gb = &g->blocks[l];
    layer_cache *c = &t->lc[l];
    const int d = t->d, T = t->T, N = n * T, ffn = t->ffn;
    const float p = t->o.dropout, keep = 1.0f - p;
    /* FFN branch: dX stays as the gradient of xmid's residual path */
    dropout_backward(t->dz, t->dX, p > 0.0f ? c->mask_f : NULL, keep, (size_t)N * d);
    linear_backward(t->df1, ffn, 0, &gb->fc2, t->dz, d, c->f1g, ffn, &bl->fc2, N);
    gelu_backward(t->df1, c->f1, t->df1, (size_t)N * ffn);
    linear_backward(t->dhid, d, 0, &gb->fc1, t->df1, ffn, c->h2, d, &bl->fc1, N);
    layernorm_backward(t->dX, 1, &gb->ln2, t->dhid, c->xmid, c->ln2m, c->ln2r, &bl->ln2, N, d);
    /* attention branch */
    float *dbr = t->dhid;
    dropout_backward(dbr, t->dX, p > 0.0f ? c->mask_a : NULL, keep, (size_t)N * d);
    linear_backward(t->dz, d, 0, &gb->o, dbr, d, c->z, d, &bl->o, N);
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
    for (int b = 0; b < n; b++)
        sparse_attention_backward(t, c, (size_t)b * T, t->n_bb[b]);
    linear_backward(t->dhid, d, 0, &gb->q, t->dq, d, c->h1, d, &bl->q, N);
    linear_backward(t->dhid, d, 1, &gb->k, t->dk, d, c->h1, d, &bl->k, N);
    linear_backward(t->dhid, d, 1, &gb->v, t->dv, d, c->h1, d, &bl->v, N);
    /* U = h1 Wr^T (no bias) */
    craft_sgemm(1, 0, t->r, d, N, 1.0f, t->du, t->r, c->h1, d, 1.0f, gb->route, d);
    craft_sgemm(0, 0, N, d, t->r, 1.0f, t->du, t->r, bl->route, d, 1.0f, t->dhid, d);
    layernorm_backward(t->dX, 1, &gb->ln1, t->dhid, t->xs[l], c->ln1m, c->ln1r, &bl->ln1, N, d);
}

/* ------------------------------------------- single-query attentions */

/* Order b: att[h, j] = softmax_j(scale (qk_h * C) . Xb_j), s_h = sum_j att_hj Xb_j, xbar_h = C * s_h. */
static void sq_forward(craft_train *t, float *att, float *s, float *xbar, const float *Xb, int n, const float *qk,
                       const float *C)
{
    const int d = t->d, H = t->H, T = t->T;
    const float scale = 1.0f / sqrtf((float)t->dh);
    float *qkc = t->work + t->wstride * thread_id() + (size_t)T * T + t->kk; /* [H, d] */
    for (int hd = 0; hd < H; hd++)
        for (int c = 0; c < d; c++)
            qkc[(size_t)hd * d + c] = qk[(size_t)hd * d + c] * C[c] * scale;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, H, n, d, 1.0f, qkc, d, Xb, d, 0.0f, att, T);
    for (int hd = 0; hd < H; hd++) {
        softmax_inplace(att + (size_t)hd * T, n);
        memset(att + (size_t)hd * T + n, 0, sizeof(float) * (size_t)(T - n));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, d, n, 1.0f, att, T, Xb, d, 0.0f, s, d);
    for (int hd = 0; hd < H; hd++)
        for (int c = 0; c < d; c++)
            xbar[(size_t)hd * d + c] = C[c] * s[(size_t)hd * d + c];
}

/* Given dxbar [H, d]: dXb [n, d] +=, dC [d] +=, dqk [H, d] = (the gradient of the unscaled qk). */
static void sq_backward(craft_train *t, float *dXb, float *dC, float *dqk, const float *dxbar, const float *att,
                        const float *s, const float *Xb, int n, const float *qk, const float *C)
{
    const int d = t->d, H = t->H, T = t->T;
    const float scale = 1.0f / sqrtf((float)t->dh);
    float *qkc = t->work + t->wstride * thread_id() + (size_t)T * T + t->kk; /* [H, d] */
    float *ds = qkc + (size_t)H * d, *dqkc = ds + (size_t)H * d, *da = dqkc + (size_t)H * d; /* da [H, T] */
    for (int hd = 0; hd < H; hd++)
        for (int c = 0; c < d; c++) {
            size_t i = (size_t)hd * d + c;
            qkc[i] = qk[i] * C[c] * scale;
            dC[c] += dxbar[i] * s[i];
            ds[i] = dxbar[i] * C[c];
        }
    /* da [H, n] = ds Xb^T; dlogit = att (da - sum att da) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, H, n, d, 1.0f, ds, d, Xb, d, 0.0f, da, T);
    for (int hd = 0; hd < H; hd++) {
        const float *a = att + (size_t)hd * T;
        float *g = da + (size_t)hd * T, sum = 0.0f;
        for (int j = 0; j < n; j++)
            sum += a[j] * g[j];
        for (int j = 0; j < n; j++)
            g[j] = a[j] * (g[j] - sum);
    }
    /* dXb += att^T ds + dlogit^T qkc */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, d, H, 1.0f, att, T, ds, d, 1.0f, dXb, d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, d, H, 1.0f, da, T, qkc, d, 1.0f, dXb, d);
    /* dqkc [H, d] = dlogit Xb: then qkc = scale qk C */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, H, d, n, 1.0f, da, T, Xb, d, 0.0f, dqkc, d);
    for (int hd = 0; hd < H; hd++)
        for (int c = 0; c < d; c++) {
            size_t i = (size_t)hd * d + c;
            dqk[i] = dqkc[i] * C[c] * scale;
            dC[c] += dqkc[i] * qk[i] * scale;
        }
}

/* zb[:, h] = xbar_h Wv_h^T + bv_h; out = Linear_o(zb). */
static void sq_output_forward(craft_train *t, sq_cache *s, const craft_linear *wv, const craft_linear *wo, int n)
{
    const int d = t->d, H = t->H, dh = t->dh;
    for (int b = 0; b < n; b++)
        memcpy(s->zb + (size_t)b * d, wv->b, sizeof(float) * d);
    for (int hd = 0; hd < H; hd++)
        craft_sgemm(0, 1, n, dh, d, 1.0f, s->xbar + (size_t)hd * d, H * d, wv->w + (size_t)hd * dh * d, d, 1.0f,
                    s->zb + hd * dh, d);
    linear_forward(s->out, d, s->zb, d, wo, n);
}

/* Given dout [B, d]: dxbar [B, H, d] and the gradients of v and o. */
static void sq_output_backward(craft_train *t, sq_cache *s, const float *dout, craft_linear *gv, craft_linear *go,
                               const craft_linear *wv, const craft_linear *wo, int n)
{
    const int d = t->d, H = t->H, dh = t->dh;
    float *dzb = t->dsmall2;
    linear_backward(dzb, d, 0, go, dout, d, s->zb, d, wo, n);
    colsum_add(gv->b, dzb, n, d, d);
    for (int hd = 0; hd < H; hd++) {
        /* dWv_h [dh, d] += dzb_h^T xbar_h; dxbar_h [n, d] = dzb_h Wv_h */
        craft_sgemm(1, 0, dh, d, n, 1.0f, dzb + hd * dh, d, s->xbar + (size_t)hd * d, H * d, 1.0f,
                    gv->w + (size_t)hd * dh * d, d);
        craft_sgemm(0, 0, n, d, dh, 1.0f, dzb + hd * dh, d, wv->w + (size_t)hd * dh * d, d, 0.0f,
                    t->dxbar + (size_t)hd * d, H * d);
    }
}

/* Conditioning by auxiliary m: fhat_m, the gate c_m, and C *= c_m for the orders that use m. */
static void conditioning_forward(craft_train *t, int m, int n)
{
    const craft_cross *cr = &t->m->w.cross[m];
    sq_cache *s = &t->cross[m];
    const int d = t->d, H = t->H, dh = t->dh, T = t->T;
    memcpy(s->Cin, t->C, sizeof(float) * (size_t)n * d);
    linear_forward(s->qv, d, t->f[m], d, &cr->q, n);
    for (int hd = 0; hd < H; hd++) /* qk[b, h, :] = q[b, h-chunk] Wk[h-chunk, :] */
        craft_sgemm(0, 0, n, d, dh, 1.0f, s->qv + hd * dh, d, cr->k.w + (size_t)hd * dh * d, d, 0.0f,
                    s->qk + (size_t)hd * d, H * d);
#pragma omp parallel for schedule(static) if (n > 1)
    for (int b = 0; b < n; b++) {
        size_t hb = (size_t)b * H;
        if (t->avail[m][b])
            sq_forward(t, s->att + hb * T, s->s + hb * d, s->xbar + hb * d, t->Xb + (size_t)b * T * d, t->n_bb[b],
                       s->qk + hb * d, s->Cin + (size_t)b * d);
        else
            memset(s->xbar + hb * d, 0, sizeof(float) * H * d);
    }
    sq_output_forward(t, s, &cr->v, &cr->o, n);
    linear_forward(s->gate, d, s->out, d, &cr->gate, n);
    for (int b = 0; b < n; b++)
        for (int c = 0; c < d; c++) {
            size_t i = (size_t)b * d + c;
            s->gate[i] = craft_sigmoid(s->gate[i]);
            if (t->avail[m][b])
                t->C[i] *= s->gate[i];
        }
}

/* t->dC holds the gradient of C after m; leaves the gradient of C before m, adds to dXb, df[m]. */
static void conditioning_backward(craft_train *t, craft_weights *g, int m, int n)
{
    const craft_cross *cr = &t->m->w.cross[m];
    craft_cross *gc = &g->cross[m];
    sq_cache *s = &t->cross[m];
    const int d = t->d, H = t->H, dh = t->dh, T = t->T;
    float *dgl = t->dsmall, *dfh = t->dfhat[m];
    for (int b = 0; b < n; b++)
        for (int c = 0; c < d; c++) {
            size_t i = (size_t)b * d + c;
            if (t->avail[m][b]) {
                float gv = s->gate[i], dcv = t->dC[i];
                dgl[i] = dcv * s->Cin[i] * gv * (1.0f - gv);
                t->dC[i] = dcv * gv;
            } else {
                dgl[i] = 0.0f;
            }
        }
    linear_backward(dfh, d, 1, &gc->gate, dgl, d, s->out, d, &cr->gate, n);
    sq_output_backward(t, s, dfh, &gc->v, &gc->o, &cr->v, &cr->o, n);
#pragma omp parallel for schedule(static) if (n > 1)
    for (int b = 0; b < n; b++) {
        size_t hb = (size_t)b * H;
        if (t->avail[m][b])
            sq_backward(t, t->dXb + (size_t)b * T * d, t->dC + (size_t)b * d, t->dqk + hb * d, t->dxbar + hb * d,
                        s->att + hb * T, s->s + hb * d, t->Xb + (size_t)b * T * d, t->n_bb[b], s->qk + hb * d,
                        s->Cin + (size_t)b * d);
        else
            memset(t->dqk + hb * d, 0, sizeof(float) * H * d);
    }
    float *dqv = t->dsmall;
    for (int hd = 0; hd < H; hd++) {
        /* qk_h = q_h Wk_h: dq_h = dqk_h Wk_h^T, dWk_h += q_h^T dqk_h */
        craft_sgemm(0, 1, n, dh, d, 1.0f, t->dqk + (size_t)hd * d, H * d, cr->k.w + (size_t)hd * dh * d, d, 0.0f,
                    dqv + hd * dh, d);
        craft_sgemm(1, 0, dh, d, n, 1.0f, s->qv + hd * dh, d, t->dqk + (size_t)hd * d, H * d, 1.0f,
                    gc->k.w + (size_t)hd * dh * d, d);
    }
    linear_backward(t->df[m], d, 1, &gc->q, dqv, d, t->f[m], d, &cr->q, n);
}

static void pooling_forward(craft_train *t, int n)
{
    const craft_weights *w = &t->m->w;
    sq_cache *s = &t->pool;
    const int d = t->d, H = t->H, dh = t->dh, T = t->T;
    for (int hd = 0; hd < H; hd++) /* the learned query folded into the keys */
        for (int c = 0; c < d; c++) {
            float acc = 0.0f;
            for (int r = hd * dh; r < (hd + 1) * dh; r++)
                acc += w->pool_query[r] * w->pool_k.w[(size_t)r * d + c];
            t->pool_qk[(size_t)hd * d + c] = acc;
        }
#pragma omp parallel for schedule(static) if (n > 1)
    for (int b = 0; b < n; b++) {
        size_t hb = (size_t)b * H;
        sq_forward(t, s->att + hb * T, s->s + hb * d, s->xbar + hb * d, t->Xb + (size_t)b * T * d, t->n_bb[b],
                   t->pool_qk, t->C + (size_t)b * d);
    }
    sq_output_forward(t, s, &w->pool_v, &w->pool_o, n);
}

/* t->dP holds dP: adds to dXb, sets dC, and the pooling parameters' gradients. */
static void pooling_backward(craft_train *t, craft_weights *g, int n)
{
    const craft_weights *w = &t->m->w;
    sq_cache *s = &t->pool;
    const int d = t->d, H = t->H, dh = t->dh, T = t->T;
    sq_output_backward(t, s, t->dP, &g->pool_v, &g->pool_o, &w->pool_v, &w->pool_o, n);
    memset(t->dC, 0, sizeof(float) * (size_t)n * d);
#pragma omp parallel for schedule(static) if (n > 1)
    for (int b = 0; b < n; b++) {
        size_t hb = (size_t)b * H;
        sq_backward(t, t->dXb + (size_t)b * T * d, t->dC + (size_t)b * d, t->dqk + hb * d, t->dxbar + hb * d,
                    s->att + hb * T, s->s + hb * d, t->Xb + (size_t)b * T * d, t->n_bb[b], t->pool_qk,
                    t->C + (size_t)b * d);
    }
    /* the orders' dqk summed in order; pool_qk_h = Wk_h^T query_h */
    float *dpq = t->dsmall; /* [H, d] */
    memset(dpq, 0, sizeof(float) * (size_t)H * d);
    for (int b = 0; b < n; b++)
        for (size_t i = 0; i < (size_t)H * d; i++)
            dpq[i] += t->dqk[(size_t)b * H * d + i];
    for (int hd = 0; hd < H; hd++)
        for (int r = hd * dh; r < (hd + 1) * dh; r++) {
            float acc = 0.0f;
            for (int c = 0; c < d; c++) {
                acc += w->pool_k.w[(size_t)r * d + c] * dpq[(size_t)hd * d + c];
                g->pool_k.w[(size_t)r * d + c] += w->pool_query[r] * dpq[(size_t)hd * d + c];
            }
            g->pool_query[r] += acc;
        }
}

/* ------------------------------------------------------ fusion and head */

static void fusion_head_forward(craft_train *t, int n)
{
    const craft_weights *w = &t->m->w;
    const int d = t->d, K = t->K;
    const float *P = t->pool.out;
    memcpy(t->fused, P, sizeof(float) * (size_t)n * d);
    for (int m = 0; m < t->M; m++) {
        if (m == t->bb)
            continue;
        for (int b = 0; b < n; b++) {
            memcpy(t->cat + (size_t)b * 2 * d, P + (size_t)b * d, sizeof(float) * d);
            memcpy(t->cat + (size_t)b * 2 * d + d, t->f[m] + (size_t)b * d, sizeof(float) * d);
        }
        float *gm = t->fuse_g[m];
        linear_forward(gm, d, t->cat, 2 * d, &w->fuse[m], n);
        for (int b = 0; b < n; b++)
            for (int c = 0; c < d; c++) {
                size_t i = (size_t)b * d + c;
                gm[i] = craft_sigmoid(gm[i]);
                if (t->avail[m][b])
                    t->fused[i] += gm[i] * t->f[m][i];
            }
    }
    const float p = t->o.dropout;
    if (p > 0.0f)
        dropout_mask(t->mask_h, (size_t)n, d, p, t->o.seed, 0x4ead);
    for (size_t i = 0; i < (size_t)n * d; i++)
        t->fd[i] = p > 0.0f ? (t->mask_h[i] ? t->fused[i] / (1.0f - p) : 0.0f) : t->fused[i];
    layernorm_forward(t->hh, t->hm, t->hr, t->fd, &w->head_ln, n, d);
    linear_forward(t->a1, d, t->hh, d, &w->head_fc1, n);
    gelu_forward(t->a1g, t->a1, (size_t)n * d);
    linear_forward(t->logits, K, t->a1g, d, &w->head_fc2, n);
}

/* t->dlogits into dP (set) and df[m] (added). */
static void fusion_head_backward(craft_train *t, craft_weights *g, int n)
{
    const craft_weights *w = &t->m->w;
    const int d = t->d, K = t->K;
    const float p = t->o.dropout;
    linear_backward(t->dsmall, d, 0, &g->head_fc2, t->dlogits, K, t->a1g, d, &w->head_fc2, n);
    gelu_backward(t->dsmall, t->a1, t->dsmall, (size_t)n * d);
    linear_backward(t->dsmall2, d, 0, &g->head_fc1, t->dsmall, d, t->hh, d, &w->head_fc1, n);
    layernorm_backward(t->dfused, 0, &g->head_ln, t->dsmall2, t->fd, t->hm, t->hr, &w->head_ln, n, d);
    dropout_backward(t->dfused, t->dfused, p > 0.0f ? t->mask_h : NULL, 1.0f - p, (size_t)n * d);
    memcpy(t->dP, t->dfused, sizeof(float) * (size_t)n * d);
    const float *P = t->pool.out;
    for (int m = 0; m < t->M; m++) {
        if (m == t->bb)
            continue;
        float *gm = t->fuse_g[m], *dgp = t->dsmall;
        for (int b = 0; b < n; b++)
            for (int c = 0; c < d; c++) {
                size_t i = (size_t)b * d + c;
                if (t->avail[m][b]) {
                    dgp[i] = t->dfused[i] * t->f[m][i] * gm[i] * (1.0f - gm[i]);
                    t->df[m][i] += t->dfused[i] * gm[i];
                } else {
                    dgp[i] = 0.0f;
                }
            }
        for (int b = 0; b < n; b++) {
            memcpy(t->cat + (size_t)b * 2 * d, P + (size_t)b * d, sizeof(float) * d);
            memcpy(t->cat + (size_t)b * 2 * d + d, t->f[m] + (size_t)b * d, sizeof(float) * d);
        }
        linear_backward(t->dcat, 2 * d, 0, &g->fuse[m], dgp, d, t->cat, 2 * d, &w->fuse[m], n);
        for (int b = 0; b < n; b++)
            for (int c = 0; c < d; c++) {
                t->dP[(size_t)b * d + c] += t->dcat[(size_t)b * 2 * d + c];
                t->df[m][(size_t)b * d + c] += t->dcat[(size_t)b * 2 * d + d + c];
            }
    }
}

/* ------------------------------------------------------------- losses */

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* BCE from logits (mean over known labels) or cross-entropy (mean over labelled orders); fills dlogits. */
static double classification_loss(craft_train *t, int n)
{
    const int K = t->K;
    const float *y = t->labels, *x = t->logits;
    float *dx = t->dlogits;
    memset(dx, 0, sizeof(float) * (size_t)n * K);
    double loss = 0.0;
    long count = 0;
    if (t->cfg->task == CRAFT_MULTILABEL) {
        for (size_t i = 0; i < (size_t)n * K; i++)
            count += !isnan(y[i]);
        for (int b = 0; b < n; b++)
            for (int k = 0; k < K; k++) {
                size_t i = (size_t)b * K + k;
                if (isnan(y[i]))
                    continue;
                double pw = t->o.pos_weight ? t->o.pos_weight[k] : 1.0, yy = y[i];
                /* -[pw y log s(x) + (1-y) log(1 - s(x))] */
                loss += pw * yy * softplus(-x[i]) + (1.0 - yy) * softplus(x[i]);
                double s = 1.0 / (1.0 + exp(-(double)x[i]));
                dx[i] = (float)((-pw * yy * (1.0 - s) + (1.0 - yy) * s) / count);
            }
    } else {
        for (int b = 0; b < n; b++)
            count += !isnan(y[(size_t)b * K]);
        for (int b = 0; b < n; b++) {
            const float *yb = y + (size_t)b * K, *xb = x + (size_t)b * K;
            if (isnan(yb[0]))
                continue;
            double mx = xb[0], se = 0.0;
            for (int k = 1; k < K; k++)
                mx = xb[k] > mx ? xb[k] : mx;
            for (int k = 0; k < K; k++)
                se += exp(xb[k] - mx);
            double lse = mx + log(se);
            for (int k = 0; k < K; k++) {
                double pk = exp(xb[k] - lse);
                loss += -yb[k] * (xb[k] - lse);
                dx[(size_t)b * K + k] = (float)((pk - yb[k]) / count);
            }
        }
    }
    return count ? loss / count : 0.0;
}

/* The SupCMA projection head of modality m: z = normalize(fc2(relu(fc1(rep)))). */
static const float *supcma_rep(const craft_train *t, int m)
{
    return m == t->bb ? t->pool.out : t->cross[m].out;
}

static void projhead_forward(craft_train *t, int m, int n)
{
    const craft_projhead *ph = &t->m->w.supcma[m];
    const int d = t->d, Z = CRAFT_SUPCMA_DIM;
    linear_forward(t->sa1[m], d, supcma_rep(t, m), d, &ph->fc1, n);
    for (size_t i = 0; i < (size_t)n * d; i++)
        t->sr[m][i] = t->sa1[m][i] > 0.0f ? t->sa1[m][i] : 0.0f;
    linear_forward(t->sz[m], Z, t->sr[m], d, &ph->fc2, n);
    for (int b = 0; b < n; b++) {
        float *z = t->sz[m] + (size_t)b * Z;
        double ss = 0.0;
        for (int c = 0; c < Z; c++)
            ss += (double)z[c] * z[c];
        float nrm = (float)sqrt(ss);
        nrm = nrm > 1e-12f ? nrm : 1e-12f;
        t->snrm[m][b] = nrm;
        for (int c = 0; c < Z; c++)
            z[c] /= nrm;
    }
}

/* dzs[m] (zero for orders without m) into the head's parameters and the representation's gradient. */
static void projhead_backward(craft_train *t, craft_weights *g, int m, int n)
{
    const craft_projhead *ph = &t->m->w.supcma[m];
    craft_projhead *gp = &g->supcma[m];
    const int d = t->d, Z = CRAFT_SUPCMA_DIM;
    float *du = t->dbig; /* [n, Z] */
    for (int b = 0; b < n; b++) {
        const float *z = t->sz[m] + (size_t)b * Z, *dz = t->dzs[m] + (size_t)b * Z;
        float nrm = t->snrm[m][b], dot = 0.0f;
        for (int c = 0; c < Z; c++)
            dot += z[c] * dz[c];
        /* z = u / max(|u|, eps): below eps the norm is a constant */
        int clamped = nrm <= 1e-12f;
        for (int c = 0; c < Z; c++)
            du[(size_t)b * Z + c] = (dz[c] - (clamped ? 0.0f : z[c] * dot)) / nrm;
    }
    linear_backward(t->dsmall, d, 0, &gp->fc2, du, Z, t->sr[m], d, &ph->fc2, n);
    for (size_t i = 0; i < (size_t)n * d; i++)
        t->dsmall[i] = t->sa1[m][i] > 0.0f ? t->dsmall[i] : 0.0f;
    float *drep = m == t->bb ? t->dP : t->dfhat[m];
    linear_backward(drep, d, 1, &gp->fc1, t->dsmall, d, supcma_rep(t, m), d, &ph->fc1, n);
}

/* Whether order b has modality m (the backbone always). */
static int has(const craft_train *t, int m, int b) { return m == t->bb || t->avail[m][b]; }

/* SupCMA (MODEL.md): fills dzs (already scaled by lambda) and returns the loss. */
static double supcma_loss(craft_train *t, int n)
{
    const int M = t->M, K = t->K, Z = CRAFT_SUPCMA_DIM;
    const float *y = t->labels;
    for (int m = 0; m < M; m++)
        memset(t->dzs[m], 0, sizeof(float) * (size_t)n * Z);
    /* Anchors per (pair, class) from the labels alone: the weights of the means. */
    int npairs = M * (M - 1);
    int *nanch = calloc((size_t)npairs * K + K, sizeof(int));
    if (!nanch)
        return NAN;
    int *pairs_k = nanch + (size_t)npairs * K;
    for (int a = 0, p = 0; a < M; a++)
        for (int bm = 0; bm < M; bm++) {
            if (a == bm)
                continue;
            for (int k = 0; k < K; k++) {
                int pos = 0;
                for (int i = 0; i < n; i++)
                    pos += has(t, a, i) && has(t, bm, i) && y[(size_t)i * K + k] == 1.0f;
                /* every positive is an anchor when there are at least two of them */
                nanch[(size_t)p * K + k] = pos >= 2 ? pos : 0;
                pairs_k[k] += pos >= 2;
            }
            p++;
        }
    int classes = 0;
    for (int k = 0; k < K; k++)
        classes += pairs_k[k] > 0;
    double total = 0.0;
    for (int a = 0, p = 0; a < M && classes; a++)
        for (int bm = 0; bm < M; bm++) {
            if (a == bm)
                continue;
            int any = 0;
            for (int k = 0; k < K; k++)
                any |= nanch[(size_t)p * K + k] > 0;
            if (!any) {
                p++;
                continue;
            }
            int ns = 0;
            for (int i = 0; i < n; i++)
                if (has(t, a, i) && has(t, bm, i))
                    t->idx[ns++] = i;
            for (int s = 0; s < ns; s++) {
                memcpy(t->za + (size_t)s * Z, t->sz[a] + (size_t)t->idx[s] * Z, sizeof(float) * Z);
                memcpy(t->zb2 + (size_t)s * Z, t->sz[bm] + (size_t)t->idx[s] * Z, sizeof(float) * Z);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ns, ns, Z, 1.0f, t->za, Z, t->zb2, Z, 0.0f, t->sim, ns);
            memset(t->dsim, 0, sizeof(float) * (size_t)ns * ns);
            for (int k = 0; k < K; k++) {
                int na = nanch[(size_t)p * K + k];
                if (!na)
                    continue;
                const double tau = t->tau[k], wgt = 1.0 / ((double)classes * pairs_k[k] * na);
                for (int s = 0; s < ns; s++) {
                    int i = t->idx[s];
                    if (y[(size_t)i * K + k] != 1.0f)
                        continue;
                    const float *row = t->sim + (size_t)s * ns;
                    double mx = row[0] / tau, se = 0.0, possum = 0.0;
                    int npos = 0;
                    for (int l = 1; l < ns; l++)
                        mx = row[l] / tau > mx ? row[l] / tau : mx;
                    for (int l = 0; l < ns; l++)
                        se += exp(row[l] / tau - mx);
                    double lse = mx + log(se);
                    for (int l = 0; l < ns; l++)
                        if (l != s && y[(size_t)t->idx[l] * K + k] == 1.0f) {
                            possum += row[l] / tau;
                            npos++;
                        }
                    double li = -(possum / npos - lse);
                    total += wgt * li;
                    float *drow = t->dsim + (size_t)s * ns;
                    for (int l = 0; l < ns; l++) {
                        double pl = exp(row[l] / tau - lse);
                        int ispos = l != s && y[(size_t)t->idx[l] * K + k] == 1.0f;
                        drow[l] += (float)(wgt / tau * (pl - (ispos ? 1.0 / npos : 0.0)));
                    }
                }
            }
            /* sim = za zb^T: dza = dsim zb, dzb = dsim^T za (scaled by lambda) */
            const float lam = t->o.lambda;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ns, Z, ns, lam, t->dsim, ns, t->zb2, Z, 0.0f, t->dza, Z);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ns, Z, ns, lam, t->dsim, ns, t->za, Z, 0.0f, t->dzb, Z);
            for (int s = 0; s < ns; s++)
                for (int c = 0; c < Z; c++) {
                    t->dzs[a][(size_t)t->idx[s] * Z + c] += t->dza[(size_t)s * Z + c];
                    t->dzs[bm][(size_t)t->idx[s] * Z + c] += t->dzb[(size_t)s * Z + c];
                }
            p++;
        }
    free(nanch);
    return total;
}

/* ------------------------------------------------------------ the pass */

static int check_train_batch(const craft_train *t, const craft_batch *bt, craft_error *err)
{
    if (bt->n < 1 || bt->n > t->B)
        return craft_fail(err, CRAFT_EINPUT, "training batch of %d orders; this workspace takes 1..%d", bt->n, t->B);
    if (bt->F != t->F)
        return craft_fail(err, CRAFT_EINPUT, "batch has %d tabular features, the model %d", bt->F, t->F);
    if (!bt->labels)
        return craft_fail(err, CRAFT_EINPUT, "training needs labelled orders");
    for (int b = 0; b < bt->n; b++)
        for (int j = 0; j < t->F; j++) {
            float x = bt->tab[(size_t)b * t->F + j];
            const craft_feature *f = &t->cfg->modalities[t->cfg->tabular].features[j];
            if (isinf(x))
                return craft_fail(err, CRAFT_EINPUT, "order %d: feature \"%s\" is infinite", b, f->name);
            if (f->type == CRAFT_CATEGORICAL && !isnan(x) && (x < 1 || x > t->cfg->bins || x != floorf(x)))
                return craft_fail(err, CRAFT_EINPUT, "order %d: feature \"%s\" has no valid category code", b, f->name);
        }
    return CRAFT_OK;
}

int craft_train_forward(craft_train *t, const craft_batch *bt, const craft_train_opts *opts, craft_losses *losses,
                        craft_error *err)
{
    int rc = check_train_batch(t, bt, err);
    if (rc)
        return rc;
    if (opts->dropout < 0.0f || opts->dropout >= 1.0f || opts->modality_dropout < 0.0f ||
        opts->modality_dropout >= 1.0f)
        return craft_fail(err, CRAFT_EINPUT, "dropout rates must lie in [0, 1)");
    const craft_config *cfg = t->cfg;
    const int n = bt->n, d = t->d, T = t->T;
    t->o = *opts;
    t->n = 0;
    t->batch = NULL;
    t->supcma_on = opts->supcma && t->m->has_supcma && opts->lambda != 0.0f;
    craft_supcma_tau(cfg, opts->tau_base, opts->uniform_tau, t->tau);
    memcpy(t->labels, bt->labels, sizeof(float) * (size_t)n * t->K);
    /* which auxiliaries each order uses: present, and not dropped */
    for (int m = 0; m < t->M; m++) {
        if (m == t->bb)
            continue;
        const craft_modality *mod = &cfg->modalities[m];
        for (int b = 0; b < n; b++) {
            int present = mod->kind == CRAFT_TABULAR || bt->ntok[m][b] > 0;
            if (mod->kind == CRAFT_EMBEDDING && bt->ntok[m][b] > mod->tokens)
                return craft_fail(err, CRAFT_EINPUT, "order %d: %d \"%s\" tokens (at most %d)", b, bt->ntok[m][b],
                                  mod->name, mod->tokens);
            int dropped = 0;
            if (present && opts->modality_dropout > 0.0f) {
                uint64_t r = craft_mix64(opts->seed ^ craft_mix64(0xd809ull * (uint64_t)(m + 1) + (uint64_t)b));
                dropped = (double)(r >> 11) * (1.0 / 9007199254740992.0) < opts->modality_dropout;
            }
            t->avail[m][b] = present && !dropped;
        }
    }
    if (cfg->tabular >= 0)
        tabular_inputs_forward(t->tab_in, t->bin, t->rr, cfg, &t->m->w.embed[cfg->tabular], bt->tab, n);
    if ((rc = tokens_forward(t, bt, n, err)))
        return rc;
    for (int l = 0; l < t->L; l++)
        block_forward(t, l, n);
    layernorm_forward(t->Xb, t->lnfm, t->lnfr, t->xs[t->L], &t->m->w.ln_f, n * T, d);
    for (int b = 0; b < n; b++) /* padding rows never take part */
        memset(t->Xb + ((size_t)b * T + t->n_bb[b]) * d, 0, sizeof(float) * (size_t)(T - t->n_bb[b]) * d);
    for (int m = 0; m < t->M; m++)
        if (m != t->bb)
            auxiliary_forward(t, m, bt, n);
    for (size_t i = 0; i < (size_t)n * d; i++)
        t->C[i] = 1.0f;
    for (int m = 0; m < t->M; m++)
        if (m != t->bb)
            conditioning_forward(t, m, n);
    pooling_forward(t, n);
    fusion_head_forward(t, n);
    if (cfg->wide_head) /* logits += X0 head_wide^T: the wide term of the tokens (MODEL.md, "Extensions") */
        craft_sgemm(0, 1, n, t->K, T * d, 1.0f, t->xs[0], T * d, t->m->w.head_wide, T * d, 1.0f, t->logits, t->K);
    losses->cls = classification_loss(t, n);
    losses->supcma = 0.0;
    if (t->supcma_on) {
        for (int m = 0; m < t->M; m++)
            projhead_forward(t, m, n);
        losses->supcma = supcma_loss(t, n);
        if (isnan(losses->supcma))
            return craft_fail(err, CRAFT_ENOMEM, "out of memory in the SupCMA loss");
    }
    losses->total = losses->cls + (t->supcma_on ? opts->lambda * losses->supcma : 0.0);
    t->n = n;
    t->batch = bt;
    return CRAFT_OK;
}

int craft_train_backward(craft_train *t, float *grads, craft_error *err)
{
    const int n = t->n, d = t->d, T = t->T;
    if (n < 1 || !t->batch)
        return craft_fail(err, CRAFT_EINPUT, "backward pass without a forward pass");
    memset(grads, 0, sizeof(float) * t->m->layout.total);
    craft_weights g;
    craft_weights_bind(&g, t->cfg, t->m->has_supcma, grads);
    for (int m = 0; m < t->M; m++) {
        memset(t->df[m], 0, sizeof(float) * (size_t)n * d);
        memset(t->dfhat[m], 0, sizeof(float) * (size_t)n * d);
    }
    memset(t->dXb, 0, sizeof(float) * (size_t)n * T * d);
    fusion_head_backward(t, &g, n);
    if (t->supcma_on)
        for (int m = 0; m < t->M; m++)
            projhead_backward(t, &g, m, n);
    pooling_backward(t, &g, n);
    for (int m = t->M - 1; m >= 0; m--)
        if (m != t->bb)
            conditioning_backward(t, &g, m, n);
    layernorm_backward(t->dX, 0, &g.ln_f, t->dXb, t->xs[t->L], t->lnfm, t->lnfr, &t->m->w.ln_f, n * T, d);
    for (int b = 0; b < n; b++) /* padding rows of Xb were set to zero, not normalized */
        memset(t->dX + ((size_t)b * T + t->n_bb[b]) * d, 0, sizeof(float) * (size_t)(T - t->n_bb[b]) * d);
    for (int l = t->L - 1; l >= 0; l--)
        block_backward(t, &g, l, n);
    if (t->cfg->wide_head) {
        /* the wide term: head_wide gets dlogits^T X0, X0 gets dlogits head_wide */
        craft_sgemm(1, 0, t->K, T * d, n, 1.0f, t->dlogits, t->K, t->xs[0], T * d, 1.0f, g.head_wide, T * d);
        craft_sgemm(0, 0, n, T * d, t->K, 1.0f, t->dlogits, t->K, t->m->w.head_wide, T * d, 1.0f, t->dX, T * d);
    }
    if (t->F)
        memset(t->dtab, 0, sizeof(float) * (size_t)n * t->F * 3 * t->E);
    tokens_backward(t, &g, t->batch, n);
    for (int m = 0; m < t->M; m++)
        if (m != t->bb)
            auxiliary_backward(t, &g, m, t->batch, n);
    if (t->cfg->tabular >= 0)
        tabular_inputs_backward(t, &g, n);
    return CRAFT_OK;
}
