/* order.c: one order with everything about it, entity history, and the
 * labelled export that the trainer reads. */
#include "scoring.h"
#include "store_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fills kv from a two-column query bound to one integer. */
static int read_pairs(craft_store *s, const char *sql, int64_t id, craft_kv *kv, craft_error *err)
{
    sqlite3_stmt *st;
    if (store_prepare(s, &st, sql, err))
        return err->code;
    sqlite3_bind_int64(st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (craft_kv_add(kv, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1))) {
            rc = SQLITE_NOMEM;
            break;
        }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? CRAFT_OK : store_fail(s, err, "reading an order");
}

/* Effective labels: a decision overrides the imported label of the same class. */
#define LABELS_SQL                                                                                                     \
    "SELECT class, CAST(value AS TEXT) FROM labels l WHERE order_id = ?1 AND (source = 'decision' OR NOT EXISTS"     \
    " (SELECT 1 FROM labels d WHERE d.order_id = l.order_id AND d.class = l.class AND d.source = 'decision'))"       \
    " ORDER BY class"

/* A copy of a float32 BLOB column already checked by store_check_floats (NULL for
 * NULL; n floats). */
static float *blob_copy(sqlite3_stmt *st, int col, int n)
{
    const float *b = sqlite3_column_blob(st, col);
    if (!b)
        return NULL;
    float *v = malloc(sizeof(float) * (n ? (size_t)n : 1));
    if (v)
        memcpy(v, b, sizeof(float) * (size_t)n);
    return v;
}

static int model_config(craft_store *s, int64_t model_id, craft_config *cfg, craft_error *err)
{
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT config FROM models WHERE id = ?", err))
        return err->code;
    sqlite3_bind_int64(st, 1, model_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return craft_fail(err, CRAFT_EINPUT, "%s: no model %lld", s->path, (long long)model_id);
    }
    const char *json = (const char *)sqlite3_column_text(st, 0);
    if (!json) {
        sqlite3_finalize(st);
        return store_damaged(s, err, "models", "model %lld: no config", (long long)model_id);
    }
    rc = craft_config_parse(cfg, json, strlen(json), err);
    sqlite3_finalize(st);
    if (rc)
        craft_error_prefix(err, "%s: store damaged: table models, model %lld", s->path, (long long)model_id);
    return rc;
}

static char **token_names(const craft_config *cfg, int T)
{
    char **names = calloc((size_t)T, sizeof(char *));
    const craft_modality *bb = &cfg->modalities[cfg->backbone];
    for (int j = 0; names && j < T; j++) {
        if (bb->kind == CRAFT_TABULAR && j < bb->n_features) {
            names[j] = store_strdup(bb->features[j].name);
        } else {
            char tmp[16];
            snprintf(tmp, sizeof tmp, "%d", j);
            names[j] = store_strdup(tmp);
        }
    }
    return names;
}

static int read_scores(craft_store *s, craft_order_detail *d, int64_t model_id, const craft_config *cfg,
                       craft_error *err)
{
    sqlite3_stmt *st;
    if (store_prepare(s, &st,
                      "SELECT off, used, scores FROM predictions WHERE order_id = ? AND model_id = ? ORDER BY off", err))
        return err->code;
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_int64(st, 2, model_id);
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (d->n_predictions == cap) {
            cap = cap ? cap * 2 : 8;
            craft_prediction *np = realloc(d->predictions, sizeof *np * cap);
            if (!np) {
                rc = SQLITE_NOMEM;
                break;
            }
            d->predictions = np;
        }
        craft_prediction *p = &d->predictions[d->n_predictions++];
        memset(p, 0, sizeof *p);
        p->model_id = model_id;
        p->off = (uint32_t)sqlite3_column_int64(st, 0);
        p->used = (uint32_t)sqlite3_column_int64(st, 1);
        char what[200];
        snprintf(what, sizeof what, "order row %lld, model %lld, off %u", (long long)d->id, (long long)model_id, p->off);
        int n = 0;
        if (store_check_floats(s, st, 2, cfg->n_classes, 0, &n, "predictions", "scores", what, err)) {
            sqlite3_finalize(st);
            return err->code;
        }
        const float *sc = sqlite3_column_blob(st, 2);
        for (int k = 0; k < CRAFT_STORE_MAX_CLASSES; k++)
            p->scores[k] = sc && k < n ? sc[k] : NAN;
        char names[256] = "";
        for (int m = 0; m < cfg->n_modalities; m++)
            if (p->used & (1u << m))
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? "+" : "",
                         cfg->modalities[m].name);
        p->modalities = store_strdup(names);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "reading predictions");
    return CRAFT_OK;
}

static int read_explanation(craft_store *s, craft_order_detail *d, int64_t model_id, const craft_config *cfg,
                            craft_error *err)
{
    sqlite3_stmt *st;
    if (store_prepare(s, &st,
                      "SELECT tokens, importance, cmis, cond_gate, fuse_gate, perturb FROM explanations"
                      " WHERE order_id = ? AND model_id = ?",
                      err))
        return err->code;
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_int64(st, 2, model_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        craft_explanation *e = &d->explanation;
        int64_t T64 = sqlite3_column_int64(st, 0);
        int A = cfg->n_modalities - 1, K = cfg->n_classes;
        int want_T = craft_config_max_tokens(cfg, cfg->backbone);
        char what[200];
        snprintf(what, sizeof what, "order row %lld (\"%.80s\"), model %lld", (long long)d->id, d->order_id,
                 (long long)model_id);
        /* every count and BLOB checked against the model and each other before use */
        int bad = 0;
        if (T64 != want_T)
            bad = store_damaged(s, err, "explanations", "%s: tokens = %lld, the model's backbone has %d", what,
                                (long long)T64, want_T);
        int T = (int)want_T;
        if (!bad)
            bad = store_check_floats(s, st, 1, T, 0, NULL, "explanations", "importance", what, err) ||
                  store_check_floats(s, st, 2, (int64_t)A * T, 1, NULL, "explanations", "cmis", what, err) ||
                  store_check_floats(s, st, 3, A, 1, NULL, "explanations", "cond_gate", what, err) ||
                  store_check_floats(s, st, 4, A, 1, NULL, "explanations", "fuse_gate", what, err) ||
                  store_check_floats(s, st, 5, (int64_t)K * T, 1, NULL, "explanations", "perturb", what, err);
        if (bad) {
            sqlite3_finalize(st);
            return err->code;
        }
        e->model_id = model_id;
        e->n_tokens = T;
        e->token_names = token_names(cfg, T);
        e->importance = blob_copy(st, 1, T);
        e->n_aux = A;
        e->aux_names = calloc((size_t)(A > 0 ? A : 1), sizeof(char *));
        for (int m = 0, a = 0; e->aux_names && m < cfg->n_modalities; m++)
            if (m != cfg->backbone)
                e->aux_names[a++] = store_strdup(cfg->modalities[m].name);
        e->cmis = blob_copy(st, 2, A * T);
        e->cond_gate = blob_copy(st, 3, A);
        e->fuse_gate = blob_copy(st, 4, A);
        e->n_classes = K;
        e->classes = calloc((size_t)K, sizeof(char *));
        for (int k = 0; e->classes && k < K; k++)
            e->classes[k] = store_strdup(cfg->classes[k]);
        e->perturb = blob_copy(st, 5, K * T);
        if (!e->token_names || !e->importance || !e->aux_names || !e->classes) {
            sqlite3_finalize(st);
            d->has_explanation = 1; /* freed by craft_order_detail_free */
            return craft_fail(err, CRAFT_ENOMEM, "out of memory");
        }
        d->has_explanation = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? CRAFT_OK : store_fail(s, err, "reading explanations");
}

int craft_store_order_get(craft_store *s, const char *order_id, int64_t model_id, craft_order_detail *d,
                          craft_error *err)
{
    memset(d, 0, sizeof *d);
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT id, order_id, ts, dataset_id, num, cat FROM orders WHERE order_id = ?", err))
        return err->code;
    sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? craft_fail(err, CRAFT_EINPUT, "no order \"%.80s\" in %s", order_id, s->path)
                                 : store_fail(s, err, "reading an order");
    }
    d->id = sqlite3_column_int64(st, 0);
    d->order_id = store_col_text(st, 1);
    d->ts = store_col_text(st, 2);
    d->dataset_id = sqlite3_column_int64(st, 3);
    char what[200];
    snprintf(what, sizeof what, "order row %lld", (long long)d->id);
    int n_num = 0;
    if (store_check_floats(s, st, 4, -(int64_t)INT32_MAX / 4, 1, &n_num, "orders", "num", what, err)) {
        sqlite3_finalize(st);
        craft_order_detail_free(d);
        return err->code;
    }
    const float *num = sqlite3_column_blob(st, 4);
    cJSON *cat = sqlite3_column_type(st, 5) == SQLITE_NULL ? NULL : cJSON_Parse((const char *)sqlite3_column_text(st, 5));
    /* the dataset's feature list */
    sqlite3_stmt *fs;
    rc = store_prepare(s, &fs, "SELECT name, type FROM dataset_features WHERE dataset_id = ? ORDER BY idx", err);
    if (!rc) {
        sqlite3_bind_int64(fs, 1, d->dataset_id);
        int cap = 0, r2;
        while ((r2 = sqlite3_step(fs)) == SQLITE_ROW) {
            if (d->n_features == cap) {
                cap = cap ? cap * 2 : 256;
                d->feature_names = realloc(d->feature_names, sizeof(char *) * cap);
                d->feature_types = realloc(d->feature_types, sizeof(int) * cap);
                d->values = realloc(d->values, sizeof(float) * cap);
                d->categories = realloc(d->categories, sizeof(char *) * cap);
                if (!d->feature_names || !d->feature_types || !d->values || !d->categories) {
                    r2 = SQLITE_NOMEM;
                    break;
                }
            }
            int j = d->n_features++;
            const char *name = (const char *)sqlite3_column_text(fs, 0);
            d->feature_names[j] = store_strdup(name);
            d->feature_types[j] = sqlite3_column_int(fs, 1) == CRAFT_CATEGORICAL ? CRAFT_CATEGORICAL : CRAFT_NUMERIC;
            d->values[j] = num && j < n_num ? num[j] : NAN;
            const cJSON *c = cat ? cJSON_GetObjectItemCaseSensitive(cat, name) : NULL;
            d->categories[j] = cJSON_IsString(c) ? store_strdup(c->valuestring) : NULL;
        }
        sqlite3_finalize(fs);
        if (r2 != SQLITE_DONE)
            rc = store_fail(s, err, "reading the feature list");
        else if (n_num > d->n_features)
            rc = store_damaged(s, err, "orders", "%s: num holds %d values, its dataset has %d features", what, n_num,
                               d->n_features);
    }
    cJSON_Delete(cat);
    sqlite3_finalize(st);
    if (!rc)
        rc = read_pairs(s, "SELECT field, value FROM order_text WHERE order_id = ? ORDER BY field", d->id, &d->text, err);
    if (!rc)
        rc = read_pairs(s,
                        "SELECT e.type, e.entity_id FROM order_entities oe JOIN entities e ON e.id = oe.entity"
                        " WHERE oe.order_id = ? ORDER BY e.type",
                        d->id, &d->entities, err);
    if (!rc)
        rc = read_pairs(s, LABELS_SQL, d->id, &d->labels, err);
    if (!rc && !model_id)
        model_id = craft_store_latest_model(s);
    if (!rc && model_id) {
        craft_config cfg = {0};
        if (!(rc = model_config(s, model_id, &cfg, err))) {
            d->n_classes = cfg.n_classes;
            d->classes = calloc((size_t)cfg.n_classes, sizeof(char *));
            for (int k = 0; d->classes && k < cfg.n_classes; k++)
                d->classes[k] = store_strdup(cfg.classes[k]);
            rc = read_scores(s, d, model_id, &cfg, err);
            if (!rc)
                rc = read_explanation(s, d, model_id, &cfg, err);
            craft_config_free(&cfg);
        }
    }
    if (!rc) {
        craft_error e2;
        d->has_case = craft_store_case_by_order(s, order_id, &d->kase, &e2) == CRAFT_OK;
    }
    if (rc)
        craft_order_detail_free(d);
    return rc;
}

void craft_order_detail_free(craft_order_detail *d)
{
    if (!d)
        return;
    free(d->order_id);
    free(d->ts);
    for (int j = 0; j < d->n_features; j++)
        free(d->categories ? d->categories[j] : NULL);
    store_free_strings(d->feature_names, d->n_features);
    free(d->categories);
    free(d->feature_types);
    free(d->values);
    craft_kv_clear(&d->text);
    craft_kv_clear(&d->entities);
    craft_kv_clear(&d->labels);
    for (int i = 0; i < d->n_predictions; i++)
        free(d->predictions[i].modalities);
    free(d->predictions);
    store_free_strings(d->classes, d->n_classes);
    craft_explanation *e = &d->explanation;
    store_free_strings(e->token_names, e->n_tokens);
    store_free_strings(e->aux_names, e->n_aux);
    store_free_strings(e->classes, e->n_classes);
    free(e->importance);
    free(e->cmis);
    free(e->cond_gate);
    free(e->fuse_gate);
    free(e->perturb);
    craft_case_free(&d->kase);
    memset(d, 0, sizeof *d);
}

/* --------------------------------------------------------------- entities */

/* The orders an order may look back on (bound as ?3 = its row id, NULL for all
 * orders, and ?4 = its time): strictly earlier times; an untimed order sees every
 * timed one and the untimed ones stored before it (the graph encoder's rule). Never
 * the order itself, nor orders at its own time. */
#define BEFORE_ORDER " (?3 IS NULL OR CASE WHEN ?4 IS NOT NULL THEN o.ts IS NOT NULL AND o.ts < ?4" \
                     " ELSE o.id < ?3 OR (o.ts IS NOT NULL AND o.id <> ?3) END)"

int craft_store_entity_history(craft_store *s, const char *type, const char *entity_id, int recent,
                               craft_entity_history *h, craft_error *err)
{
    return craft_store_entity_history_before(s, type, entity_id, NULL, recent, h, err);
}

int craft_store_entity_history_before(craft_store *s, const char *type, const char *entity_id, const char *order_id,
                                      int recent, craft_entity_history *h, craft_error *err)
{
    memset(h, 0, sizeof *h);
    sqlite3_stmt *st;
    int64_t before = 0;
    char *before_ts = NULL;
    if (order_id) {
        if (store_prepare(s, &st, "SELECT id, ts FROM orders WHERE order_id = ?", err))
            return err->code;
        sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            before = sqlite3_column_int64(st, 0);
            before_ts = store_col_text(st, 1);
        }
        sqlite3_finalize(st);
        if (r != SQLITE_ROW)
            return r == SQLITE_DONE ? craft_fail(err, CRAFT_EINPUT, "no order \"%.80s\" in %s", order_id, s->path)
                                    : store_fail(s, err, "reading an order");
    }
#define BIND_BEFORE(st)                                                     \
    do {                                                                    \
        if (order_id)                                                       \
            sqlite3_bind_int64(st, 3, before);                              \
        if (before_ts)                                                      \
            sqlite3_bind_text(st, 4, before_ts, -1, SQLITE_STATIC);         \
    } while (0)
    if (store_prepare(s, &st,
                      "SELECT e.id, count(o.id), min(o.ts), max(o.ts), count(c.id),"
                      " sum(c.status = 2), sum(c.status = 3)"
                      " FROM entities e LEFT JOIN order_entities oe ON oe.entity = e.id"
                      " LEFT JOIN orders o ON o.id = oe.order_id AND" BEFORE_ORDER
                      " LEFT JOIN cases c ON c.order_id = o.id"
                      " WHERE e.type = ?1 AND e.entity_id = ?2 GROUP BY e.id",
                      err)) {
        free(before_ts);
        return err->code;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, entity_id, -1, SQLITE_STATIC);
    BIND_BEFORE(st);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        free(before_ts);
        return rc == SQLITE_DONE ? craft_fail(err, CRAFT_EINPUT, "no %.40s \"%.80s\" in %s", type, entity_id, s->path)
                                 : store_fail(s, err, "reading an entity");
    }
    int64_t eid = sqlite3_column_int64(st, 0);
    h->type = store_strdup(type);
    h->entity_id = store_strdup(entity_id);
    h->n_orders = sqlite3_column_int64(st, 1);
    h->first_ts = store_col_text(st, 2);
    h->last_ts = store_col_text(st, 3);
    h->n_cases = sqlite3_column_int64(st, 4);
    h->n_confirmed = sqlite3_column_int64(st, 5);
    h->n_false_positive = sqlite3_column_int64(st, 6);
    sqlite3_finalize(st);
    /* labels per class over the entity's orders (decisions override imports) */
    if (store_prepare(s, &st,
                      "SELECT class, count(*), sum(value) FROM labels l JOIN order_entities oe ON oe.order_id = l.order_id"
                      " JOIN orders o ON o.id = l.order_id"
                      " WHERE oe.entity = ?1 AND" BEFORE_ORDER " AND (source = 'decision' OR NOT EXISTS (SELECT 1 FROM labels d"
                      " WHERE d.order_id = l.order_id AND d.class = l.class AND d.source = 'decision'))"
                      " GROUP BY class ORDER BY class",
                      err)) {
        craft_entity_history_free(h);
        free(before_ts);
        return err->code;
    }
    sqlite3_bind_int64(st, 1, eid);
    BIND_BEFORE(st);
    int cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (h->n_classes == cap) {
            cap = cap ? cap * 2 : 8;
            h->classes = realloc(h->classes, sizeof(char *) * cap);
            h->n_labelled = realloc(h->n_labelled, sizeof(int64_t) * cap);
            h->n_positive = realloc(h->n_positive, sizeof(int64_t) * cap);
            if (!h->classes || !h->n_labelled || !h->n_positive) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        h->classes[h->n_classes] = store_col_text(st, 0);
        h->n_labelled[h->n_classes] = sqlite3_column_int64(st, 1);
        h->n_positive[h->n_classes] = sqlite3_column_int64(st, 2);
        h->n_classes++;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE && recent > 0 &&
        !store_prepare(s, &st,
                       "SELECT o.order_id FROM order_entities oe JOIN orders o ON o.id = oe.order_id"
                       " WHERE oe.entity = ?1 AND" BEFORE_ORDER " ORDER BY o.ts DESC, o.id DESC LIMIT ?2",
                       err)) {
        sqlite3_bind_int64(st, 1, eid);
        sqlite3_bind_int(st, 2, recent);
        BIND_BEFORE(st);
        h->recent_orders = calloc((size_t)recent, sizeof(char *));
        while (h->recent_orders && (rc = sqlite3_step(st)) == SQLITE_ROW)
            h->recent_orders[h->n_recent++] = store_col_text(st, 0);
        sqlite3_finalize(st);
    }
    free(before_ts);
#undef BIND_BEFORE
    if (rc != SQLITE_DONE) {
        craft_entity_history_free(h);
        return store_fail(s, err, "reading an entity's history");
    }
    return CRAFT_OK;
}

void craft_entity_history_free(craft_entity_history *h)
{
    if (!h)
        return;
    free(h->type);
    free(h->entity_id);
    free(h->first_ts);
    free(h->last_ts);
    store_free_strings(h->classes, h->n_classes);
    free(h->n_labelled);
    free(h->n_positive);
    store_free_strings(h->recent_orders, h->n_recent);
    memset(h, 0, sizeof *h);
}

/* ----------------------------------------------------------------- export */

static void write_float(FILE *out, float v)
{
    fprintf(out, "%.9g", v);
}

static int export_one(craft_store *s, sqlite3_stmt *ord, sqlite3_stmt *text, sqlite3_stmt *ents, sqlite3_stmt *embs,
                      sqlite3_stmt *labels, craft_dataset_info *ds, int labelled_only, FILE *out, int *written,
                      craft_error *err)
{
    int64_t id = sqlite3_column_int64(ord, 0);
    *written = 0;
    sqlite3_bind_int64(labels, 1, id);
    int has_label = sqlite3_step(labels) == SQLITE_ROW;
    if (labelled_only && !has_label) {
        sqlite3_reset(labels);
        return CRAFT_OK;
    }
    fputs("{\"order_id\": ", out);
    craft_json_string(out, (const char *)sqlite3_column_text(ord, 1));
    if (sqlite3_column_type(ord, 2) != SQLITE_NULL) {
        fputs(", \"ts\": ", out);
        craft_json_string(out, (const char *)sqlite3_column_text(ord, 2));
    }
    char what[160];
    snprintf(what, sizeof what, "order row %lld", (long long)id);
    int n_num = 0;
    if (store_check_floats(s, ord, 3, -(int64_t)(ds->n_features > 0 ? ds->n_features : 0), 1, &n_num, "orders", "num",
                           what, err)) {
        sqlite3_reset(labels);
        return err->code;
    }
    fputs(", \"features\": {", out);
    const float *num = sqlite3_column_blob(ord, 3);
    int first = 1;
    for (int j = 0; j < n_num && j < ds->n_features; j++) {
        if (isnan(num[j]))
            continue;
        fputs(first ? "" : ", ", out);
        first = 0;
        craft_json_string(out, ds->feature_names[j]);
        fputs(": ", out);
        write_float(out, num[j]);
    }
    if (sqlite3_column_type(ord, 4) != SQLITE_NULL) {
        /* the categorical object, as stored (already JSON), without its braces */
        const char *cat = (const char *)sqlite3_column_text(ord, 4);
        size_t n = strlen(cat);
        if (n > 2) {
            fputs(first ? "" : ", ", out);
            fwrite(cat + 1, 1, n - 2, out);
        }
    }
    fputc('}', out);
    struct {
        sqlite3_stmt *st;
        const char *key;
    } maps[2] = {{text, "text"}, {ents, "entities"}};
    for (int m = 0; m < 2; m++) {
        sqlite3_bind_int64(maps[m].st, 1, id);
        fprintf(out, ", \"%s\": {", maps[m].key);
        for (int i = 0; sqlite3_step(maps[m].st) == SQLITE_ROW; i++) {
            fputs(i ? ", " : "", out);
            craft_json_string(out, (const char *)sqlite3_column_text(maps[m].st, 0));
            fputs(": ", out);
            craft_json_string(out, (const char *)sqlite3_column_text(maps[m].st, 1));
        }
        fputc('}', out);
        sqlite3_reset(maps[m].st);
    }
    sqlite3_bind_int64(embs, 1, id);
    int n_emb = 0;
    for (int i = 0; sqlite3_step(embs) == SQLITE_ROW; i++, n_emb++) {
        fputs(i ? ", " : ", \"embeddings\": {", out);
        craft_json_string(out, (const char *)sqlite3_column_text(embs, 0));
        int64_t tokens = sqlite3_column_int64(embs, 1), dim = sqlite3_column_int64(embs, 2);
        char ewhat[200];
        snprintf(ewhat, sizeof ewhat, "order row %lld, modality \"%.40s\"", (long long)id,
                 (const char *)sqlite3_column_text(embs, 0));
        if (tokens < 1 || dim < 1 || tokens > (1 << 20) || dim > (1 << 20)) {
            sqlite3_reset(embs);
            sqlite3_reset(labels);
            return store_damaged(s, err, "embeddings", "%s: %lld x %lld is not a shape", ewhat, (long long)tokens,
                                 (long long)dim);
        }
        if (store_check_floats(s, embs, 3, tokens * dim, 0, NULL, "embeddings", "data", ewhat, err)) {
            sqlite3_reset(embs);
            sqlite3_reset(labels);
            return err->code;
        }
        const float *v = sqlite3_column_blob(embs, 3);
        int64_t n = tokens * dim;
        fputs(tokens > 1 ? ": [[" : ": [", out);
        for (int64_t k = 0; k < n; k++) {
            if (k && k % dim == 0)
                fputs("], [", out);
            else if (k)
                fputs(", ", out);
            write_float(out, v[k]);
        }
        fputs(tokens > 1 ? "]]" : "]", out);
    }
    sqlite3_reset(embs);
    if (n_emb)
        fputc('}', out);
    *written = 1;
    if (has_label) {
        fputs(", \"labels\": {", out);
        int i = 0;
        do {
            fputs(i++ ? ", " : "", out);
            craft_json_string(out, (const char *)sqlite3_column_text(labels, 0));
            fprintf(out, ": %d", sqlite3_column_int(labels, 1));
        } while (sqlite3_step(labels) == SQLITE_ROW);
        fputc('}', out);
    }
    sqlite3_reset(labels);
    fputs("}\n", out);
    return CRAFT_OK;
}

int craft_store_export_jsonl(craft_store *s, int64_t dataset_id, int labelled_only, FILE *out, uint64_t *n,
                             craft_error *err)
{
    *n = 0;
    craft_dataset_info *ds = NULL;
    int nds = 0;
    if (craft_store_datasets(s, &ds, &nds, err))
        return err->code;
    sqlite3_stmt *ord = NULL, *text = NULL, *ents = NULL, *embs = NULL, *labels = NULL;
    int rc = store_prepare(s, &ord,
                           "SELECT id, order_id, ts, num, cat, dataset_id FROM orders"
                           " WHERE ?1 = 0 OR dataset_id = ?1 ORDER BY ts, id",
                           err);
    if (!rc)
        rc = store_prepare(s, &text, "SELECT field, value FROM order_text WHERE order_id = ? ORDER BY field", err);
    if (!rc)
        rc = store_prepare(s, &ents,
                           "SELECT e.type, e.entity_id FROM order_entities oe JOIN entities e ON e.id = oe.entity"
                           " WHERE oe.order_id = ? ORDER BY e.type",
                           err);
    if (!rc)
        rc = store_prepare(s, &embs, "SELECT modality, tokens, dim, data FROM embeddings WHERE order_id = ?", err);
    if (!rc)
        rc = store_prepare(s, &labels, LABELS_SQL, err);
    if (!rc) {
        sqlite3_bind_int64(ord, 1, dataset_id);
        int r2;
        while ((r2 = sqlite3_step(ord)) == SQLITE_ROW) {
            int64_t dsid = sqlite3_column_int64(ord, 5);
            craft_dataset_info *d = NULL;
            for (int i = 0; i < nds; i++)
                if (ds[i].id == dsid)
                    d = &ds[i];
            if (!d)
                continue;
            int written;
            if ((rc = export_one(s, ord, text, ents, embs, labels, d, labelled_only, out, &written, err)))
                break;
            *n += (uint64_t)written;
            if (ferror(out)) {
                rc = craft_fail(err, CRAFT_EIO, "writing the exported orders failed");
                break;
            }
        }
        if (!rc && r2 != SQLITE_DONE)
            rc = store_fail(s, err, "exporting orders");
    }
    sqlite3_finalize(ord);
    sqlite3_finalize(text);
    sqlite3_finalize(ents);
    sqlite3_finalize(embs);
    sqlite3_finalize(labels);
    craft_dataset_info_free(ds, nds);
    return rc;
}
