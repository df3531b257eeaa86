/* model.c: the parameter layout (one contiguous buffer, named views), and
 * safetensors checkpoints: validated loading, atomic saving. */
#define _POSIX_C_SOURCE 200809L
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* O_TMPFILE */
#endif
#include "craft.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER (64u << 20)

/* ------------------------------------------------------------ the layout */

/* One walk over every tensor of a config, in a fixed order; the visitor sees
 * the name, the shape and (when w is given) the view to point. */
typedef void (*tensor_visit)(void *ctx, const char *name, int ndim, const int64_t *shape, float **view);

typedef struct { void *ctx; tensor_visit visit; char name[96]; } walker;

static void emit(walker *wk, float **view, int ndim, int64_t a, int64_t b, int64_t c, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void emit(walker *wk, float **view, int ndim, int64_t a, int64_t b, int64_t c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(wk->name, sizeof wk->name, fmt, ap);
    va_end(ap);
    int64_t shape[3] = {a, b, c};
    wk->visit(wk->ctx, wk->name, ndim, shape, view);
}

#define VIEW(p) (w ? &(p) : NULL)

static void emit_linear(walker *wk, craft_linear *lin, int out, int in, const char *prefix)
{
    if (lin) {
        lin->out = out;
        lin->in = in;
    }
    emit(wk, lin ? &lin->w : NULL, 2, out, in, 0, "%s.weight", prefix);
    emit(wk, lin ? &lin->b : NULL, 1, out, 0, 0, "%s.bias", prefix);
}

static void emit_norm(walker *wk, craft_norm *n, int dim, const char *prefix)
{
    if (n)
        n->dim = dim;
    emit(wk, n ? &n->w : NULL, 1, dim, 0, 0, "%s.weight", prefix);
    emit(wk, n ? &n->b : NULL, 1, dim, 0, 0, "%s.bias", prefix);
}

static void walk_tensors(const craft_config *cfg, int with_supcma, craft_weights *w, walker *wk)
{
    const int d = cfg->d_model, nb = cfg->bins, e = cfg->emb_dim;
    char p[96];
    for (int m = 0; m < cfg->n_modalities; m++) {
        const craft_modality *mod = &cfg->modalities[m];
        craft_embed *em = w ? &w->embed[m] : NULL;
        if (mod->kind == CRAFT_TABULAR) {
            const int F = mod->n_features;
            emit(wk, VIEW(em->edges), 2, F, nb + 1, 0, "%s.edges", mod->name);
            emit(wk, VIEW(em->bin_emb), 3, F, nb + 1, e, "%s.bin_emb", mod->name);
            emit(wk, VIEW(em->res_emb), 2, F, e, 0, "%s.res_emb", mod->name);
            emit(wk, VIEW(em->feat_emb), 2, F, e, 0, "%s.feat_emb", mod->name);
        } else if (mod->tokens > 1) {
            emit(wk, VIEW(em->pos_emb), 2, mod->tokens, d, 0, "%s.pos_emb", mod->name);
        }
        snprintf(p, sizeof p, "%s.proj", mod->name);
        emit_linear(wk, em ? &em->proj : NULL, d, mod->dim, p);
    }
    for (int l = 0; l < cfg->layers; l++) {
        craft_block *bl = w ? &w->blocks[l] : NULL;
        const char *qkvo[4] = {"q", "k", "v", "o"};
        craft_linear *lin[4] = {bl ? &bl->q : NULL, bl ? &bl->k : NULL, bl ? &bl->v : NULL, bl ? &bl->o : NULL};
        snprintf(p, sizeof p, "backbone.%d.ln1", l);
        emit_norm(wk, bl ? &bl->ln1 : NULL, d, p);
        for (int i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "backbone.%d.attn.%s", l, qkvo[i]);
            emit_linear(wk, lin[i], d, d, p);
        }
        emit(wk, VIEW(bl->route), 2, cfg->route_dim, d, 0, "backbone.%d.route.weight", l);
        snprintf(p, sizeof p, "backbone.%d.ln2", l);
        emit_norm(wk, bl ? &bl->ln2 : NULL, d, p);
        snprintf(p, sizeof p, "backbone.%d.ffn.fc1", l);
        emit_linear(wk, bl ? &bl->fc1 : NULL, d * cfg->ffn_mult, d, p);
        snprintf(p, sizeof p, "backbone.%d.ffn.fc2", l);
        emit_linear(wk, bl ? &bl->fc2 : NULL, d, d * cfg->ffn_mult, p);
    }
    emit_norm(wk, w ? &w->ln_f : NULL, d, "backbone.ln_f");
    for (int m = 0; m < cfg->n_modalities; m++) {
        if (m == cfg->backbone)
            continue;
        const char *name = cfg->modalities[m].name;
        craft_cross *cr = w ? &w->cross[m] : NULL;
        const char *parts[5] = {"q", "k", "v", "o", "gate"};
        craft_linear *lin[5] = {cr ? &cr->q : NULL, cr ? &cr->k : NULL, cr ? &cr->v : NULL,
                                cr ? &cr->o : NULL, cr ? &cr->gate : NULL};
        for (int i = 0; i < 5; i++) {
            snprintf(p, sizeof p, "cross.%s.%s", name, parts[i]);
            emit_linear(wk, lin[i], d, d, p);
        }
    }
    emit(wk, VIEW(w->pool_query), 1, d, 0, 0, "pool.query");
    emit_linear(wk, w ? &w->pool_k : NULL, d, d, "pool.k");
    emit_linear(wk, w ? &w->pool_v : NULL, d, d, "pool.v");
    emit_linear(wk, w ? &w->pool_o : NULL, d, d, "pool.o");
    for (int m = 0; m < cfg->n_modalities; m++) {
        if (m == cfg->backbone)
            continue;
        snprintf(p, sizeof p, "fuse.%s", cfg->modalities[m].name);
        emit_linear(wk, w ? &w->fuse[m] : NULL, d, 2 * d, p);
    }
    emit_norm(wk, w ? &w->head_ln : NULL, d, "head.ln");
    emit_linear(wk, w ? &w->head_fc1 : NULL, d, d, "head.fc1");
    emit_linear(wk, w ? &w->head_fc2 : NULL, cfg->n_classes, d, "head.fc2");
    if (cfg->wide_head)
        emit(wk, VIEW(w->head_wide), 2, cfg->n_classes, (int64_t)craft_config_max_tokens(cfg, cfg->backbone) * d, 0,
             "head.wide.weight");
    else if (w)
        w->head_wide = NULL;
    if (with_supcma) {
        for (int m = 0; m < cfg->n_modalities; m++) {
            craft_projhead *ph = w ? &w->supcma[m] : NULL;
            snprintf(p, sizeof p, "supcma.%s.fc1", cfg->modalities[m].name);
            emit_linear(wk, ph ? &ph->fc1 : NULL, d, d, p);
            snprintf(p, sizeof p, "supcma.%s.fc2", cfg->modalities[m].name);
            emit_linear(wk, ph ? &ph->fc2 : NULL, CRAFT_SUPCMA_DIM, d, p);
        }
    }
}

typedef struct { craft_layout *L; int cap; int failed; } layout_ctx;

static void layout_visit(void *vctx, const char *name, int ndim, const int64_t *shape, float **view)
{
    (void)view;
    layout_ctx *c = vctx;
    if (c->failed)
        return;
    craft_layout *L = c->L;
    if (L->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        craft_tensor_info *t = realloc(L->t, sizeof *t * cap);
        if (!t) {
            c->failed = 1;
            return;
        }
        L->t = t;
        c->cap = cap;
    }
    craft_tensor_info *t = &L->t[L->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->count = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->count *= (size_t)shape[i];
    }
    /* Start each tensor on a 16-float boundary so that views stay 64-byte aligned. */
    t->offset = (L->total + 15) & ~(size_t)15;
    L->total = t->offset + t->count;
}

int craft_layout_build(craft_layout *L, const craft_config *cfg, int with_supcma, craft_error *err)
{
    memset(L, 0, sizeof *L);
    layout_ctx c = {L, 0, 0};
    walker wk = {&c, layout_visit, {0}};
    walk_tensors(cfg, with_supcma, NULL, &wk);
    if (c.failed) {
        craft_layout_free(L);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory building the parameter layout");
    }
    /* Config bounds keep each tensor small, but the sum can still be absurd. */
    if (L->total > ((size_t)1 << 34)) {
        craft_layout_free(L);
        return craft_fail(err, CRAFT_EFORMAT, "config: the model would hold more than 2^34 parameters");
    }
    return CRAFT_OK;
}

void craft_layout_free(craft_layout *L)
{
    free(L->t);
    memset(L, 0, sizeof *L);
}

int craft_layout_find(const craft_layout *L, const char *name)
{
    for (int i = 0; i < L->n; i++)
        if (strcmp(L->t[i].name, name) == 0)
            return i;
    return -1;
}

typedef struct { float *base; size_t offset; } bind_ctx;

static void bind_visit(void *vctx, const char *name, int ndim, const int64_t *shape, float **view)
{
    (void)name;
    bind_ctx *c = vctx;
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    c->offset = (c->offset + 15) & ~(size_t)15;
    if (view)
        *view = c->base + c->offset;
    c->offset += count;
}

void craft_weights_bind(craft_weights *w, const craft_config *cfg, int with_supcma, float *base)
{
    memset(w, 0, sizeof *w);
    bind_ctx c = {base, 0};
    walker wk = {&c, bind_visit, {0}};
    walk_tensors(cfg, with_supcma, w, &wk);
}

int craft_tensor_is_matrix(const craft_tensor_info *t)
{
    /* Weight decay applies to the weight matrices, not to biases, norms,
     * embeddings' positions or the pooling query. */
    size_t n = strlen(t->name);
    return t->ndim == 2 && n > 7 && strcmp(t->name + n - 7, ".weight") == 0;
}

/* ------------------------------------------------------------- the model */

static float *alloc_params(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)))
        return NULL;
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

void craft_model_free(craft_model *m)
{
    if (!m)
        return;
    craft_config_free(&m->cfg);
    craft_layout_free(&m->layout);
    free(m->params);
    free(m->metadata_json);
    free(m);
}

size_t craft_model_param_count(const craft_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->layout.n; i++)
        n += m->layout.t[i].count;
    return n;
}

static int model_alloc(craft_model **out, const craft_config *cfg_src, int with_supcma, craft_error *err)
{
    craft_model *m = calloc(1, sizeof *m);
    if (!m)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    int rc = craft_config_copy(&m->cfg, cfg_src, err);
    if (!rc)
        rc = craft_layout_build(&m->layout, &m->cfg, with_supcma, err);
    if (!rc && !(m->params = alloc_params(m->layout.total)))
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for %zu parameters", m->layout.total);
    if (rc) {
        craft_model_free(m);
        return rc;
    }
    m->has_supcma = with_supcma;
    craft_weights_bind(&m->w, &m->cfg, with_supcma, m->params);
    *out = m;
    return CRAFT_OK;
}

/* splitmix64: a small, well-mixed generator for reproducible initialization. */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uniform01(uint64_t *s) { return (float)((splitmix(s) >> 40) * (1.0 / 16777216.0)); }

int craft_model_new(craft_model **out, const craft_config *cfg, int with_supcma, uint64_t seed,
                    craft_error *err)
{
    *out = NULL;
    craft_model *m;
    int rc = model_alloc(&m, cfg, with_supcma, err);
    if (rc)
        return rc;
    uint64_t s = seed ^ 0x5eedc4a1f7ull;
    for (int i = 0; i < m->layout.n; i++) {
        const craft_tensor_info *t = &m->layout.t[i];
        float *p = m->params + t->offset;
        const char *name = t->name;
        size_t n = strlen(name);
        int is_norm_w = strstr(name, "ln") && n > 7 && strcmp(name + n - 7, ".weight") == 0 && t->ndim == 1;
        if (strstr(name, ".edges")) {
            /* Standard-normal quantiles until the trainer fits real edges. */
            int nb = m->cfg.bins;
            for (int64_t f = 0; f < t->shape[0]; f++)
                for (int k = 0; k <= nb; k++)
                    p[f * (nb + 1) + k] = -3.0f + 6.0f * (float)k / (float)nb;
        } else if (is_norm_w) {
            for (size_t k = 0; k < t->count; k++)
                p[k] = 1.0f;
        } else if (t->ndim == 1 && strcmp(name + n - 5, ".bias") == 0) {
            /* biases start at zero */
        } else if (strcmp(name, "head.wide.weight") == 0) {
            /* the wide term starts at zero: the model starts as the plain CRAFT model */
        } else {
            /* Xavier-uniform on [out, in]; embeddings and vectors use their last axis. */
            double fan_in = t->ndim >= 2 ? (double)t->shape[t->ndim - 1] : (double)t->count;
            double fan_out = t->ndim >= 2 ? (double)t->shape[t->ndim - 2] : 1.0;
            float a = (float)sqrt(6.0 / (fan_in + fan_out));
            for (size_t k = 0; k < t->count; k++)
                p[k] = a * (2.0f * uniform01(&s) - 1.0f);
        }
    }
    *out = m;
    return CRAFT_OK;
}

/* -------------------------------------------------------------- loading */

typedef struct { const char *name; size_t begin, end; } span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static int parse_checkpoint(craft_model **out, const uint8_t *data, size_t size, craft_error *err)
{
    if (size < 8)
        return craft_fail(err, CRAFT_EFORMAT, "file is %zu bytes, too short for a safetensors header", size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | data[i];
    if (hlen > size - 8)
        return craft_fail(err, CRAFT_EFORMAT, "header length %llu is longer than the file (%zu bytes)",
                          (unsigned long long)hlen, size);
    if (hlen > MAX_HEADER)
        return craft_fail(err, CRAFT_EFORMAT, "header length %llu is over the %u-byte limit",
                          (unsigned long long)hlen, MAX_HEADER);
    const char *hdr = (const char *)data + 8;
    const uint8_t *payload = data + 8 + hlen;
    const size_t payload_size = size - 8 - hlen;
    cJSON *root = cJSON_ParseWithLength(hdr, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return craft_fail(err, CRAFT_EFORMAT, "header is not a JSON object");
    }
    int rc = CRAFT_OK, n_entries = 0;
    craft_model *m = NULL;
    span *spans = NULL;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    const cJSON *cfgj = meta ? cJSON_GetObjectItemCaseSensitive(meta, "craft.config") : NULL;
    if (!cJSON_IsObject(meta) || !cJSON_IsString(cfgj)) {
        rc = craft_fail(err, CRAFT_EFORMAT, "__metadata__ has no \"craft.config\" string: not a CRAFT model");
        goto done;
    }
    for (const cJSON *a = root->child; a; a = a->next) {
        n_entries++;
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0) {
                rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s\" appears twice in the header", a->string);
                goto done;
            }
    }
    for (const cJSON *a = meta->child; a; a = a->next)
        if (!cJSON_IsString(a)) {
            rc = craft_fail(err, CRAFT_EFORMAT, "__metadata__ entry \"%s\" is not a string", a->string);
            goto done;
        }
    craft_config cfg;
    if ((rc = craft_config_parse(&cfg, cfgj->valuestring, strlen(cfgj->valuestring), err)))
        goto done;
    /* SupCMA heads are optional: all or none. */
    char probe[128];
    snprintf(probe, sizeof probe, "supcma.%s.fc1.weight", cfg.modalities[0].name);
    int with_supcma = cJSON_GetObjectItemCaseSensitive(root, probe) != NULL;
    rc = model_alloc(&m, &cfg, with_supcma, err);
    craft_config_free(&cfg);
    if (rc)
        goto done;
    /* Every header entry: a known tensor, F32, the right shape, in range. */
    spans = calloc((size_t)n_entries + 1, sizeof *spans);
    if (!spans) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        goto done;
    }
    int n_spans = 0;
    for (const cJSON *a = root->child; a; a = a->next) {
        if (a == meta)
            continue;
        const char *name = a->string;
        int ti = craft_layout_find(&m->layout, name);
        if (ti < 0) {
            rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s\" is not part of a model with this config", name);
            goto done;
        }
        const craft_tensor_info *t = &m->layout.t[ti];
        const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(a, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(a, "shape");
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(a, "data_offsets");
        if (!cJSON_IsObject(a) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
            cJSON_GetArraySize(offs) != 2) {
            rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s\": entry needs dtype, shape and data_offsets", name);
            goto done;
        }
        if (strcmp(dtype->valuestring, "F32") != 0) {
            rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s\": dtype %s, expected F32", name, dtype->valuestring);
            goto done;
        }
        char got[96] = "", want[96] = "";
        int ndim = cJSON_GetArraySize(shape), same = ndim == t->ndim, k = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, shape) {
            double x = cJSON_IsNumber(v) ? v->valuedouble : -1;
            size_t len = strlen(got);
            snprintf(got + len, sizeof got - len, "%s%.0f", k ? ", " : "", x);
            if (k >= 3 || x != (double)t->shape[k])
                same = 0;
            k++;
        }
        for (int i = 0; i < t->ndim; i++) {
            size_t len = strlen(want);
            snprintf(want + len, sizeof want - len, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        }
        if (!same) {
            rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s\": shape [%s], the config needs [%s]", name, got, want);
            goto done;
        }
        double b0 = cJSON_GetArrayItem(offs, 0)->valuedouble, b1 = cJSON_GetArrayItem(offs, 1)->valuedouble;
        if (!cJSON_IsNumber(cJSON_GetArrayItem(offs, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(offs, 1)) ||
            b0 < 0 || b1 < b0 || b1 > (double)payload_size || b0 != floor(b0) || b1 != floor(b1)) {
            rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s\": data_offsets [%.0f, %.0f] outside the %zu data bytes",
                            name, b0, b1, payload_size);
            goto done;
        }
        if ((size_t)(b1 - b0) != t->count * sizeof(float)) {
            rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s\": %.0f data bytes for %zu floats", name, b1 - b0, t->count);
            goto done;
        }
        spans[n_spans++] = (span){t->name, (size_t)b0, (size_t)b1};
        float *dst = m->params + t->offset;
        memcpy(dst, payload + (size_t)b0, t->count * sizeof(float));
        for (size_t i = 0; i < t->count; i++)
            if (!isfinite(dst[i])) {
                rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s\": element %zu is %s", name, i,
                                isnan(dst[i]) ? "NaN" : "infinite");
                goto done;
            }
    }
    if (n_spans != m->layout.n) {
        for (int i = 0; i < m->layout.n; i++) {
            if (!cJSON_GetObjectItemCaseSensitive(root, m->layout.t[i].name)) {
                rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s\" is missing", m->layout.t[i].name);
                goto done;
            }
        }
    }
    qsort(spans, (size_t)n_spans, sizeof *spans, span_cmp);
    for (int i = 1; i < n_spans; i++)
        if (spans[i].begin < spans[i - 1].end) {
            rc = craft_fail(err, CRAFT_EFORMAT, "tensors \"%s\" and \"%s\" overlap in the data section",
                            spans[i - 1].name, spans[i].name);
            goto done;
        }
    /* Bin edges of numeric features must not decrease. */
    if (m->cfg.tabular >= 0) {
        const craft_modality *tm = &m->cfg.modalities[m->cfg.tabular];
        const int nb = m->cfg.bins;
        for (int f = 0; f < tm->n_features; f++) {
            if (tm->features[f].type != CRAFT_NUMERIC)
                continue;
            const float *E = m->w.embed[m->cfg.tabular].edges + (size_t)f * (nb + 1);
            for (int k = 1; k <= nb; k++)
                if (E[k] < E[k - 1]) {
                    rc = craft_fail(err, CRAFT_EFORMAT, "tensor \"%s.edges\": edges of feature \"%s\" decrease at %d",
                                    tm->name, tm->features[f].name, k);
                    goto done;
                }
        }
    }
    m->metadata_json = cJSON_PrintUnformatted(meta);
done:
    free(spans);
    cJSON_Delete(root);
    if (rc) {
        craft_model_free(m);
        return rc;
    }
    *out = m;
    return CRAFT_OK;
}

int craft_model_load_memory(craft_model **out, const void *data, size_t size, const char *name,
                            craft_error *err)
{
    *out = NULL;
    int rc = parse_checkpoint(out, data, size, err);
    if (rc) {
        craft_error_prefix(err, "%s", name);
        return rc;
    }
    uint8_t h[32];
    craft_sha256(data, size, h);
    for (int i = 0; i < 32; i++)
        snprintf((*out)->sha256 + 2 * i, 3, "%02x", h[i]);
    return CRAFT_OK;
}

int craft_model_load(craft_model **out, const char *path, craft_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return craft_fail(err, CRAFT_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return craft_fail(err, CRAFT_EIO, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > (16ull << 30)) {
        fclose(f);
        return craft_fail(err, CRAFT_EFORMAT, "%s: %lld bytes is larger than any model we accept (16 GiB)",
                          path, (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data) {
        fclose(f);
        return craft_fail(err, CRAFT_ENOMEM, "%s: out of memory reading %zu bytes", path, size);
    }
    size_t got = fread(data, 1, size, f);
    fclose(f);
    if (got != size) {
        free(data);
        return craft_fail(err, CRAFT_EIO, "%s: short read (%zu of %zu bytes)", path, got, size);
    }
    int rc = craft_model_load_memory(out, data, size, path, err);
    free(data);
    return rc;
}

/* --------------------------------------------------------------- saving */

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Temporary files of a save are named PATH.tmp-PID-XXXXXX, PID the saving
 * process, so that a later save can tell those of dead processes. */

/* The folder of path ("." when it has none), in buf. */
static const char *folder_of(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return ".";
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, path, n);
    buf[n] = 0;
    return buf;
}

/* Removes PATH.tmp-PID-XXXXXX files whose process is gone (a save killed after
 * it named its temporary file and before the rename). Best effort. */
static void sweep_stale_temporaries(const char *path)
{
    char dbuf[4096];
    const char *dir = folder_of(path, dbuf, sizeof dbuf);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp-", 5))
            continue;
        const char *num = name + blen + 5;
        char *end;
        errno = 0;
        long pid = strtol(num, &end, 10);
        if (errno || end == num || *end != '-' || strlen(end + 1) != 6 || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) && errno == ESRCH)
            unlinkat(dirfd(d), name, 0);
    }
    closedir(d);
}

/* fsync of the folder, so that a rename in it is durable. */
static void sync_folder(const char *path)
{
    char dbuf[4096];
    int dfd = open(folder_of(path, dbuf, sizeof dbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

/* Writes buf to path atomically: a reader (or a crash) sees the old file or the
 * whole new one. On Linux the bytes go to an unnamed O_TMPFILE in the folder,
 * which is named (linkat) only once written and fsynced, then renamed over path:
 * a kill while writing leaves nothing, and one between the link and the rename
 * leaves a PATH.tmp-PID-XXXXXX that the next save removes. Where O_TMPFILE is not
 * supported, a named temporary file (mkstemp) is written instead. */
static int save_atomically(const char *path, const uint8_t *buf, size_t total, craft_error *err)
{
    sweep_stale_temporaries(path);
    size_t cap = strlen(path) + 48;
    char *tmp = malloc(cap);
    if (!tmp)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    int rc = CRAFT_OK, fd = -1, named = 0;
#ifdef O_TMPFILE
    char dbuf[4096];
    fd = open(folder_of(path, dbuf, sizeof dbuf), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        rc = craft_fail(err, CRAFT_EIO, "%s: cannot create a temporary file: %s", path, strerror(errno));
    if (fd >= 0) {
        if (write_all(fd, buf, total) || fsync(fd))
            rc = craft_fail(err, CRAFT_EIO, "%s: write failed: %s", path, strerror(errno));
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        /* a fresh name for the link (linkat does not replace), then the rename */
        static unsigned counter;
        for (int attempt = 0; !rc && !named && attempt < 100; attempt++) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            unsigned long x = (unsigned long)ts.tv_nsec * 2654435761u + (unsigned long)counter++ * 40503u + attempt;
            static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            char suffix[7];
            for (int i = 0; i < 6; i++, x /= 62)
                suffix[i] = abc[x % 62];
            suffix[6] = 0;
            snprintf(tmp, cap, "%s.tmp-%ld-%s", path, (long)getpid(), suffix);
            if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0)
                named = 1;
            else if (errno != EEXIST)
                break;
        }
        if (!rc && !named && errno != ENOENT) /* ENOENT: no /proc, so the named way below */
            rc = craft_fail(err, CRAFT_EIO, "%s: cannot name the written file %s: %s", path, tmp, strerror(errno));
        if (close(fd) && !rc)
            rc = craft_fail(err, CRAFT_EIO, "%s: write failed: %s", path, strerror(errno));
        fd = -1;
    }
#endif
    if (!rc && !named) {
        snprintf(tmp, cap, "%s.tmp-%ld-XXXXXX", path, (long)getpid());
        fd = mkstemp(tmp);
        if (fd < 0) {
            rc = craft_fail(err, CRAFT_EIO, "%s: cannot create a temporary file: %s", path, strerror(errno));
        } else {
            named = 1;
            if (write_all(fd, buf, total) || fsync(fd))
                rc = craft_fail(err, CRAFT_EIO, "%s: write failed: %s", path, strerror(errno));
            if (close(fd) && !rc)
                rc = craft_fail(err, CRAFT_EIO, "%s: write failed: %s", path, strerror(errno));
        }
    }
    if (!rc && rename(tmp, path))
        rc = craft_fail(err, CRAFT_EIO, "%s: cannot replace: %s", path, strerror(errno));
    if (rc && named)
        unlink(tmp);
    if (!rc)
        sync_folder(path);
    free(tmp);
    return rc;
}

int craft_model_save(craft_model *m, const char *path, const char *extra_metadata_json, craft_error *err)
{
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    char *cfg_json = craft_config_to_json(&m->cfg);
    if (!root || !meta || !cfg_json) {
        cJSON_Delete(root);
        cJSON_Delete(meta);
        cJSON_free(cfg_json);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    /* Keep the metadata a model came with (training metrics, rho table), then add the new. */
    cJSON *old = m->metadata_json ? cJSON_Parse(m->metadata_json) : NULL;
    cJSON *extra = extra_metadata_json ? cJSON_Parse(extra_metadata_json) : NULL;
    cJSON *sources[2] = {old, extra};
    for (int s = 0; s < 2; s++)
        for (cJSON *a = sources[s] ? sources[s]->child : NULL; a; a = a->next) {
            if (strcmp(a->string, "craft.config") == 0)
                continue;
            char *val = cJSON_IsString(a) ? NULL : cJSON_PrintUnformatted(a);
            cJSON *item = cJSON_CreateString(val ? val : a->valuestring);
            cJSON_free(val);
            if (cJSON_GetObjectItemCaseSensitive(meta, a->string))
                cJSON_ReplaceItemInObjectCaseSensitive(meta, a->string, item);
            else
                cJSON_AddItemToObject(meta, a->string, item);
        }
    cJSON_Delete(old);
    cJSON_Delete(extra);
    cJSON_AddStringToObject(meta, "craft.config", cfg_json);
    cJSON_free(cfg_json);
    cJSON_AddItemToObject(root, "__metadata__", meta);
    size_t off = 0;
    for (int i = 0; i < m->layout.n; i++) {
        const craft_tensor_info *t = &m->layout.t[i];
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        cJSON_AddStringToObject(e, "dtype", "F32");
        for (int k = 0; k < t->ndim; k++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[k]));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += t->count * sizeof(float);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToObject(e, "data_offsets", offs);
        cJSON_AddItemToObject(root, t->name, e);
    }
    char *hdr = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!hdr)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7; /* data starts 8-aligned */
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));

    /* Hash what we write, so the model's identity needs no second read. */
    size_t total = 8 + padded + off;
    uint8_t *buf = malloc(total);
    if (!buf) {
        cJSON_free(hdr);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    memcpy(buf, lenbuf, 8);
    memcpy(buf + 8, hdr, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    uint8_t *p = buf + 8 + padded;
    for (int i = 0; i < m->layout.n; i++) {
        const craft_tensor_info *t = &m->layout.t[i];
        memcpy(p, m->params + t->offset, t->count * sizeof(float));
        p += t->count * sizeof(float);
    }
    int rc = save_atomically(path, buf, total, err);
    if (!rc) {
        uint8_t h[32];
        craft_sha256(buf, total, h);
        for (int i = 0; i < 32; i++)
            snprintf(m->sha256 + 2 * i, 3, "%02x", h[i]);
    }
    free(buf);
    cJSON_free(hdr);
    return rc;
}
