/* evalset.c: the evaluated orders in memory, the seeded split, and scoring
 * them under several modality subsets at once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "craft_hash.h"
#include "encoders.h"
#include "eval.h"

#define EVAL_READ_BATCH 256

void craft_eval_set_init(craft_eval_set *s, const craft_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
}

void craft_eval_set_free(craft_eval_set *s)
{
    if (s->ids)
        for (int i = 0; i < s->b.n; i++)
            free(s->ids[i]);
    free(s->ids);
    free(s->t);
    craft_batch_free(&s->b);
    const craft_config *cfg = s->cfg;
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
}

/* Makes room for at least need orders (doubling). */
static int reserve(craft_eval_set *s, int need, craft_error *err)
{
    if (need <= s->b.cap)
        return CRAFT_OK;
    int cap = s->b.cap ? s->b.cap : EVAL_READ_BATCH;
    while (cap < need)
        cap *= 2;
    craft_batch nb;
    int rc = craft_batch_init(&nb, s->cfg, cap, err);
    if (rc)
        return rc;
    char **ids = realloc(s->ids, sizeof *ids * (size_t)cap);
    if (!ids) {
        craft_batch_free(&nb);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for %d orders", cap);
    }
    s->ids = ids;
    double *t = realloc(s->t, sizeof *t * (size_t)cap);
    if (!t) {
        craft_batch_free(&nb);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for %d orders", cap);
    }
    s->t = t;
    for (int i = 0; i < s->b.n; i++)
        craft_batch_copy_order(&nb, i, &s->b, i, s->cfg);
    nb.n = s->b.n;
    nb.has_labels = s->b.has_labels;
    craft_batch_free(&s->b);
    s->b = nb;
    return CRAFT_OK;
}

int craft_eval_set_append(craft_eval_set *s, const craft_order_batch *ob, craft_error *err)
{
    int rc = reserve(s, s->b.n + ob->in.n, err);
    if (rc)
        return rc;
    for (int i = 0; i < ob->in.n; i++) {
        int at = s->b.n;
        char *id = strdup(ob->ids[i] ? ob->ids[i] : "");
        if (!id)
            return craft_fail(err, CRAFT_ENOMEM, "out of memory for order ids");
        craft_batch_copy_order(&s->b, at, &ob->in, i, s->cfg);
        s->ids[at] = id;
        double t = NAN;
        if (ob->ts[i] && craft_graph_parse_time(ob->ts[i], &t, NULL))
            t = NAN; /* an unreadable time is no time: the split falls back to the hash */
        s->t[at] = t;
        s->b.n++;
        if (ob->has_labels[i]) {
            s->n_labelled++;
            s->b.has_labels = 1;
        }
    }
    return CRAFT_OK;
}

int craft_eval_set_load(craft_eval_set *s, const craft_config *cfg, const char *path, craft_format format,
                        craft_error *err)
{
    craft_eval_set_init(s, cfg);
    craft_reader *rd = NULL;
    craft_encoders *enc = NULL;
    craft_order_batch ob;
    memset(&ob, 0, sizeof ob);
    int rc = craft_reader_open(&rd, path, format, cfg, err);
    /* the built-in encoders fill txt/graph for orders without embeddings, as
     * craft score does; they need the raw text and entities */
    if (!rc)
        rc = craft_encoders_new(&enc, cfg, err);
    if (!rc)
        rc = craft_order_batch_init(&ob, cfg, EVAL_READ_BATCH, craft_encoders_active(enc), err);
    int eof = 0;
    while (!rc && !eof) {
        craft_order_batch_reset(&ob, cfg);
        rc = craft_reader_next(rd, &ob, &eof, err);
        if (!rc && ob.in.n && (rc = craft_encoders_fill(enc, cfg, &ob, err)))
            craft_error_prefix(err, "%s", path);
        if (!rc && ob.in.n)
            rc = craft_eval_set_append(s, &ob, err);
    }
    craft_encoders_free(enc);
    craft_order_batch_free(&ob);
    craft_reader_close(rd);
    if (!rc && s->b.n == 0)
        rc = craft_fail(err, CRAFT_EINPUT, "%s holds no orders", path);
    if (!rc && s->n_labelled == 0)
        rc = craft_fail(err, CRAFT_EINPUT,
                        "%s: none of its %d orders carries labels; evaluation needs labelled orders", path, s->b.n);
    if (rc)
        craft_eval_set_free(s);
    return rc;
}

void craft_eval_set_view(const craft_eval_set *s, int start, int n, craft_batch *v)
{
    memset(v, 0, sizeof *v);
    const craft_config *cfg = s->cfg;
    v->n = v->cap = n;
    v->F = s->b.F;
    v->has_labels = s->b.has_labels;
    if (s->b.tab)
        v->tab = s->b.tab + (size_t)start * s->b.F;
    for (int m = 0; m < cfg->n_modalities; m++) {
        if (!s->b.emb[m])
            continue;
        size_t w = (size_t)cfg->modalities[m].tokens * cfg->modalities[m].dim;
        v->ntok[m] = s->b.ntok[m] + start;
        v->emb[m] = s->b.emb[m] + start * w;
    }
    v->labels = s->b.labels + (size_t)start * cfg->n_classes;
}

void craft_eval_set_gather(const craft_eval_set *s, const int *rows, int n, craft_batch *dst)
{
    for (int i = 0; i < n; i++)
        craft_batch_copy_order(dst, i, &s->b, rows[i], s->cfg);
    dst->n = n;
    dst->has_labels = s->b.has_labels;
}

int craft_eval_set_subset(craft_eval_set *dst, const craft_eval_set *src, const int *rows, int n, craft_error *err)
{
    craft_eval_set_init(dst, src->cfg);
    int rc = reserve(dst, n > 0 ? n : 1, err);
    for (int i = 0; !rc && i < n; i++) {
        int r = rows[i];
        if (!(dst->ids[i] = strdup(src->ids[r]))) {
            rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for order ids");
            break;
        }
        craft_batch_copy_order(&dst->b, i, &src->b, r, src->cfg);
        dst->t[i] = src->t[r];
        dst->b.n = i + 1;
    }
    dst->b.has_labels = src->b.has_labels;
    dst->n_labelled = dst->b.n;
    if (rc)
        craft_eval_set_free(dst);
    return rc;
}

int craft_eval_set_extend(craft_eval_set *dst, const craft_eval_set *src, craft_error *err)
{
    int rc = reserve(dst, dst->b.n + src->b.n, err);
    for (int i = 0; !rc && i < src->b.n; i++) {
        const int at = dst->b.n;
        if (!(dst->ids[at] = strdup(src->ids[i])))
            return craft_fail(err, CRAFT_ENOMEM, "out of memory for order ids");
        craft_batch_copy_order(&dst->b, at, &src->b, i, src->cfg);
        dst->t[at] = src->t[i];
        dst->b.n++;
    }
    if (!rc) {
        dst->n_labelled += src->n_labelled;
        dst->b.has_labels |= src->b.has_labels;
    }
    return rc;
}

/* ---------------------------------------------------------------- split */

double craft_eval_split_hash(const char *order_id, uint64_t seed)
{
    /* The trainer's split (app/train/trainer.c): FNV-1a over the id, started from
     * the mixed seed, then mixed. Same seed and fraction, same held-out orders:
     * `craft eval --baselines` scores on exactly the trainer's validation part. */
    uint64_t h = craft_fnv1a(CRAFT_FNV_OFFSET ^ craft_hash64(seed), order_id, strlen(order_id));
    return (double)(craft_hash64(h) >> 11) * (1.0 / 9007199254740992.0);
}

int craft_eval_training_split(const craft_model *m, double *val_fraction, uint64_t *seed)
{
    if (!m->metadata_json)
        return 0;
    cJSON *meta = cJSON_Parse(m->metadata_json);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(meta, "craft.training");
    cJSON *parsed = cJSON_IsString(t) ? cJSON_Parse(t->valuestring) : NULL; /* metadata values are strings */
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(parsed ? parsed : t, "options");
    const cJSON *vf = cJSON_GetObjectItemCaseSensitive(opt, "val_fraction");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(opt, "seed");
    int found = cJSON_IsNumber(vf) && cJSON_IsNumber(sd) && vf->valuedouble > 0 && vf->valuedouble < 1 &&
                sd->valuedouble >= 0;
    if (found) {
        *val_fraction = vf->valuedouble;
        *seed = (uint64_t)sd->valuedouble;
    }
    cJSON_Delete(parsed);
    cJSON_Delete(meta);
    return found;
}

int craft_eval_split(const craft_eval_set *s, double fraction, uint64_t seed, int *is_test)
{
    int n_test = 0;
    for (int i = 0; i < s->b.n; i++) {
        is_test[i] = craft_eval_split_hash(s->ids[i], seed) < fraction;
        n_test += is_test[i];
    }
    return n_test;
}

/* -------------------------------------------------------------- predict */

int craft_eval_predict(const craft_model *m, const craft_eval_set *s, const craft_request *req, int n_req,
                       float **scores, int threads, craft_error *err)
{
    const int K = m->cfg.n_classes;
    const int cap = s->b.n < EVAL_READ_BATCH ? s->b.n : EVAL_READ_BATCH;
    craft_engine *eng = NULL;
    craft_result *res = calloc((size_t)n_req, sizeof *res);
    if (!res)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for %d results", n_req);
    int rc = craft_engine_new(&eng, m, cap, threads, err);
    for (int r = 0; !rc && r < n_req; r++)
        rc = craft_result_init(&res[r], &m->cfg, cap, &req[r], err);
    for (int start = 0; !rc && start < s->b.n; start += cap) {
        int n = s->b.n - start < cap ? s->b.n - start : cap;
        craft_batch view;
        craft_eval_set_view(s, start, n, &view);
        if ((rc = craft_engine_run(eng, &view, req, n_req, res, err))) {
            craft_error_prefix(err, "order %s (or one of the %d after it)", s->ids[start], n - 1);
            break;
        }
        for (int r = 0; r < n_req; r++)
            memcpy(scores[r] + (size_t)start * K, res[r].scores, sizeof(float) * (size_t)n * K);
    }
    for (int r = 0; r < n_req; r++)
        craft_result_free(&res[r]);
    free(res);
    craft_engine_free(eng);
    return rc;
}
