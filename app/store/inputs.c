/* inputs.c: the engine inputs of one stored order, rebuilt for a model, so the
 * app can re-score that order live (modality toggles) exactly as
 * craft_store_score fed it to the engine. */
#include "encoders.h"
#include "store_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int read_kv(craft_store *s, const char *sql, int64_t id, craft_kv *kv, craft_error *err)
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
    return rc == SQLITE_DONE ? CRAFT_OK : store_fail(s, err, "reading an order's text and entities");
}

/* Tabular features by name: the dataset's numeric blob and categorical JSON into
 * the model's features (a categorical model feature stored as a number is looked
 * up by its printed value, as craft_store_score does). */
static int fill_tabular(craft_store *s, const craft_config *cfg, int64_t dataset_id, const float *num, int n_num,
                        const char *cat_json, float *tab, craft_error *err)
{
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT name FROM dataset_features WHERE dataset_id = ? ORDER BY idx", err))
        return err->code;
    sqlite3_bind_int64(st, 1, dataset_id);
    int rc;
    for (int j = 0; (rc = sqlite3_step(st)) == SQLITE_ROW; j++) {
        if (!num || j >= n_num || isnan(num[j]))
            continue;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        for (int f = 0; f < tm->n_features; f++) {
            if (strcmp(tm->features[f].name, name))
                continue;
            if (tm->features[f].type == CRAFT_NUMERIC) {
                tab[f] = num[j];
            } else {
                char tmp[40];
                snprintf(tmp, sizeof tmp, "%.17g", (double)num[j]);
                tab[f] = (float)craft_category_code(cfg, &tm->features[f], tmp);
            }
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "reading the feature list");
    cJSON *cat = cat_json ? cJSON_Parse(cat_json) : NULL;
    for (const cJSON *v = cat ? cat->child : NULL; v; v = v->next)
        for (int f = 0; cJSON_IsString(v) && f < tm->n_features; f++)
            if (tm->features[f].type == CRAFT_CATEGORICAL && !strcmp(tm->features[f].name, v->string))
                tab[f] = (float)craft_category_code(cfg, &tm->features[f], v->valuestring);
    cJSON_Delete(cat);
    return CRAFT_OK;
}

static int fill_embeddings(craft_store *s, const craft_config *cfg, int64_t id, const char *order_id, craft_batch *in,
                           craft_error *err)
{
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT modality, tokens, dim, data FROM embeddings WHERE order_id = ?", err))
        return err->code;
    sqlite3_bind_int64(st, 1, id);
    int rc = CRAFT_OK;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        int m = craft_config_find_modality(cfg, (const char *)sqlite3_column_text(st, 0));
        if (m < 0 || cfg->modalities[m].kind != CRAFT_EMBEDDING)
            continue;
        const craft_modality *mod = &cfg->modalities[m];
        int tokens = sqlite3_column_int(st, 1), dim = sqlite3_column_int(st, 2);
        if (dim != mod->dim || tokens < 1 || tokens > mod->tokens ||
            sqlite3_column_bytes(st, 3) != (int)sizeof(float) * tokens * dim) {
            rc = craft_fail(err, CRAFT_EINPUT, "order \"%.80s\": embedding \"%s\" is %d x %d, the model takes at most %d x %d",
                            order_id, mod->name, tokens, dim, mod->tokens, mod->dim);
            break;
        }
        memcpy(in->emb[m], sqlite3_column_blob(st, 3), sizeof(float) * tokens * dim);
        in->ntok[m][0] = tokens;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The graph state as it stood when the order was scored: every order strictly
 * earlier than ts (all timed orders, and untimed ones before id, when ts is NULL)
 * observed in (ts, id) order with its entities and current labels. Orders at the
 * same time as this one stay invisible to it either way (the encoder's rule). */
static int replay_graph(craft_store *s, const craft_config *cfg, craft_graph *g, const char *ts, int64_t id,
                        craft_error *err)
{
    static const char *const sql[2] = {
        "SELECT o.id, o.ts, e.type, e.entity_id FROM orders o JOIN order_entities oe ON oe.order_id = o.id"
        " JOIN entities e ON e.id = oe.entity WHERE o.ts IS NOT NULL AND (?1 IS NULL OR o.ts < ?1) ORDER BY o.ts, o.id",
        "SELECT o.id, o.ts, e.type, e.entity_id FROM orders o JOIN order_entities oe ON oe.order_id = o.id"
        " JOIN entities e ON e.id = oe.entity WHERE o.ts IS NULL AND o.id < ?2 ORDER BY o.id"};
    sqlite3_stmt *lab;
    if (store_prepare(s, &lab,
                      "SELECT class, value FROM labels l WHERE order_id = ?1 AND (source = 'decision' OR NOT EXISTS"
                      " (SELECT 1 FROM labels d WHERE d.order_id = l.order_id AND d.class = l.class"
                      " AND d.source = 'decision'))",
                      err))
        return err->code;
    int K = cfg->n_classes;
    float *labels = malloc(sizeof(float) * (K ? K : 1));
    craft_kv ents = {0};
    int rc = labels ? CRAFT_OK : craft_fail(err, CRAFT_ENOMEM, "out of memory");
    for (int phase = 0; phase < (ts ? 1 : 2) && !rc; phase++) {
        sqlite3_stmt *st;
        if ((rc = store_prepare(s, &st, sql[phase], err)))
            break;
        if (ts)
            sqlite3_bind_text(st, 1, ts, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
        int64_t cur = 0;
        double t = NAN;
        int has_labels = 0;
        int r2;
        /* rows come grouped by order: flush one order when the next begins */
        for (;;) {
            r2 = sqlite3_step(st);
            int64_t oid = r2 == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
            if (cur && oid != cur) {
                rc = craft_graph_observe(g, &ents, t, has_labels ? labels : NULL, err);
                craft_kv_clear(&ents);
                cur = 0;
                if (rc)
                    break;
            }
            if (r2 != SQLITE_ROW)
                break;
            if (!cur) {
                cur = oid;
                t = NAN;
                const char *ots = (const char *)sqlite3_column_text(st, 1);
                if (ots && (rc = craft_graph_parse_time(ots, &t, err)))
                    break;
                has_labels = 0;
                for (int k = 0; k < K; k++)
                    labels[k] = NAN;
                sqlite3_bind_int64(lab, 1, oid);
                while (sqlite3_step(lab) == SQLITE_ROW) {
                    const char *cls = (const char *)sqlite3_column_text(lab, 0);
                    for (int k = 0; k < K; k++)
                        if (!strcmp(cfg->classes[k], cls)) {
                            labels[k] = (float)sqlite3_column_int(lab, 1);
                            has_labels = 1;
                        }
                }
                sqlite3_reset(lab);
            }
            if (craft_kv_add(&ents, (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3))) {
                rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
                break;
            }
        }
        if (!rc && r2 != SQLITE_DONE)
            rc = store_fail(s, err, "reading earlier orders for the graph encoder");
        sqlite3_finalize(st);
        craft_kv_clear(&ents);
    }
    sqlite3_finalize(lab);
    free(labels);
    return rc;
}

/* The same graph state without the replay: the encoder's output for an order
 * depends only on counts over the orders it may see (the earlier ones, as
 * replay_graph defines them), per entity of the order (orders, labelled and
 * positive orders per class) and over all of them (labelled and positive per
 * class, the prior). Those counts are read with three indexed aggregates (the
 * orders of this order's own entities, grouped by which of them they share, and
 * the labels before this order), and a small graph holding exactly those counts is
 * built through the encoder's own API (craft_graph_observe), so the formulas stay
 * the encoder's. Reads a few thousand index rows instead of every earlier order.
 *
 * Returns CRAFT_EUNSUPPORTED (nothing done) where the stored times could make the
 * replay see a different set, i.e. an earlier time string that does not parse to
 * an earlier time (same instant written differently): the caller replays. */
#define SHARE_TYPES CRAFT_GRAPH_TYPES
static int counted_graph(craft_store *s, const craft_config *cfg, craft_graph *g, const craft_kv *mine, const char *ts,
                         double t, int64_t id, craft_error *err)
{
    const int K = cfg->n_classes;
    /* this order's entity of each type (the last one given wins, as in the encoder) */
    const char *type_of[SHARE_TYPES] = {0}, *id_of[SHARE_TYPES] = {0};
    int64_t ent[SHARE_TYPES];
    for (int ty = 0; ty < SHARE_TYPES; ty++) ent[ty] = -1;
    for (int i = 0; i < mine->n; i++)
        for (int ty = 0; ty < SHARE_TYPES; ty++)
            if (!strcmp(mine->keys[i], craft_graph_type_names[ty]) && mine->values[i][0]) {
                type_of[ty] = mine->keys[i];
                id_of[ty] = mine->values[i];
            }
    sqlite3_stmt *st;
    int rc = CRAFT_OK;
    if (ts) {
        /* the latest earlier time must parse to an earlier instant (else: replay) */
        if (store_prepare(s, &st, "SELECT max(ts) FROM orders WHERE ts < ?1", err))
            return err->code;
        sqlite3_bind_text(st, 1, ts, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            double prev = NAN;
            craft_error perr = {0};
            if (craft_graph_parse_time((const char *)sqlite3_column_text(st, 0), &prev, &perr) || !(prev < t))
                rc = CRAFT_EUNSUPPORTED;
        }
        sqlite3_finalize(st);
        if (rc)
            return rc;
    }
    if (store_prepare(s, &st, "SELECT e.id FROM entities e WHERE e.type = ?1 AND e.entity_id = ?2", err))
        return err->code;
    for (int ty = 0; ty < SHARE_TYPES; ty++) {
        if (!type_of[ty])
            continue;
        sqlite3_bind_text(st, 1, type_of[ty], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id_of[ty], -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            ent[ty] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    /* the orders this one may see: the replay's set (strictly earlier times; untimed
     * orders before it only when it is untimed itself, after every timed order) */
#define EARLIER " (CASE WHEN ?6 IS NOT NULL THEN o.ts IS NOT NULL AND o.ts < ?6 ELSE o.ts IS NOT NULL OR o.id < ?7 END)"
#define EFFECTIVE " (l.source = 'decision' OR NOT EXISTS (SELECT 1 FROM labels d WHERE d.order_id = l.order_id" \
                  " AND d.class = l.class AND d.source = 'decision'))"
#define SHARED "(SELECT oe.order_id AS oid, sum(CASE oe.entity WHEN ?1 THEN 1 WHEN ?2 THEN 2 WHEN ?3 THEN 4" \
               " WHEN ?4 THEN 8 WHEN ?5 THEN 16 ELSE 0 END) AS mask FROM order_entities oe" \
               " WHERE oe.entity IN (?1, ?2, ?3, ?4, ?5) GROUP BY oe.order_id)"
    /* without any decision every label is effective as imported (a cheaper count) */
    int decisions = 1;
    if (!store_prepare(s, &st, "SELECT EXISTS (SELECT 1 FROM labels WHERE source = 'decision')", err)) {
        decisions = sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    static const char *const sql_decided[3] = {
        /* 0: earlier orders per pattern of shared entities */
        "SELECT x.mask, count(*), NULL, NULL FROM " SHARED " x JOIN orders o ON o.id = x.oid WHERE" EARLIER
        " GROUP BY x.mask",
        /* 1: their labels per pattern and class */
        "SELECT x.mask, l.class, count(*), sum(l.value) FROM " SHARED " x JOIN orders o ON o.id = x.oid"
        " JOIN labels l ON l.order_id = o.id WHERE" EARLIER " AND" EFFECTIVE " GROUP BY x.mask, l.class",
        /* 2: the labels of every earlier order per class (the prior; the replay
         * observes the orders that have entities) */
        "SELECT 0, l.class, count(*), sum(l.value) FROM orders o JOIN labels l ON l.order_id = o.id WHERE" EARLIER
        " AND" EFFECTIVE " AND EXISTS (SELECT 1 FROM order_entities x WHERE x.order_id = o.id) GROUP BY l.class"};
    static const char *const sql_imported[3] = {
        "SELECT x.mask, count(*), NULL, NULL FROM " SHARED " x JOIN orders o ON o.id = x.oid WHERE" EARLIER
        " GROUP BY x.mask",
        "SELECT x.mask, l.class, count(*), sum(l.value) FROM " SHARED " x JOIN orders o ON o.id = x.oid"
        " JOIN labels l ON l.order_id = o.id WHERE" EARLIER " GROUP BY x.mask, l.class",
        "SELECT 0, l.class, count(*), sum(l.value) FROM orders o JOIN labels l ON l.order_id = o.id WHERE" EARLIER
        " AND EXISTS (SELECT 1 FROM order_entities x WHERE x.order_id = o.id) GROUP BY l.class"};
    const char *const *sql = decisions ? sql_decided : sql_imported;
#undef EARLIER
#undef EFFECTIVE
#undef SHARED
    enum { MASKS = 1 << SHARE_TYPES };
    int64_t *n_orders = calloc(MASKS, sizeof *n_orders), *lab = calloc((size_t)(MASKS + 1) * K, sizeof *lab),
            *pos = calloc((size_t)(MASKS + 1) * K, sizeof *pos);
    float *labels = malloc(sizeof(float) * (size_t)K);
    if (!n_orders || !lab || !pos || !labels)
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    for (int q = 0; q < 3 && !rc; q++) {
        if ((rc = store_prepare(s, &st, sql[q], err)))
            break;
        if (q < 2)
            for (int ty = 0; ty < SHARE_TYPES; ty++)
                sqlite3_bind_int64(st, 1 + ty, ent[ty]);
        if (ts)
            sqlite3_bind_text(st, 6, ts, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, id);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            int mask = q == 2 ? MASKS : sqlite3_column_int(st, 0);
            if (mask < 0 || mask > MASKS)
                continue;
            if (q == 0) {
                n_orders[mask] = sqlite3_column_int64(st, 1);
                continue;
            }
            const char *cls = (const char *)sqlite3_column_text(st, 1);
            for (int k = 0; k < K; k++)
                if (cls && !strcmp(cfg->classes[k], cls)) {
                    lab[(size_t)mask * K + k] += sqlite3_column_int64(st, 2);
                    pos[(size_t)mask * K + k] += sqlite3_column_int64(st, 3);
                }
        }
        if (r != SQLITE_DONE)
            rc = store_fail(s, err, "counting earlier orders for the graph encoder");
        sqlite3_finalize(st);
    }
    /* the small graph: per pattern, its orders with those entities and labels
     * (class k: pos[k] positive, lab[k] - pos[k] negative, the rest unlabelled);
     * then the other earlier orders, without entities, for the prior */
    craft_kv ents = {0};
    for (int mask = 0; mask <= MASKS && !rc; mask++) {
        int64_t n = mask == 0 ? 0 : mask < MASKS ? n_orders[mask] : 0;
        int64_t *L = lab + (size_t)mask * K, *P = pos + (size_t)mask * K;
        if (mask == MASKS) /* the prior: what the patterns did not cover */
            for (int k = 0; k < K; k++) {
                for (int m = 1; m < MASKS; m++) {
                    L[k] -= lab[(size_t)m * K + k];
                    P[k] -= pos[(size_t)m * K + k];
                }
                if (L[k] < 0 || P[k] < 0 || P[k] > L[k]) {
                    rc = CRAFT_EUNSUPPORTED; /* not the counts of one set: replay */
                    break;
                }
                if (L[k] > n)
                    n = L[k];
            }
        if (rc || n == 0)
            continue;
        craft_kv_clear(&ents);
        for (int ty = 0; ty < SHARE_TYPES && mask < MASKS; ty++)
            if ((mask >> ty & 1) && craft_kv_add(&ents, type_of[ty], id_of[ty]))
                rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        for (int64_t i = 0; i < n && !rc; i++) {
            int any = 0;
            for (int k = 0; k < K; k++) {
                labels[k] = i < P[k] ? 1.0f : i < L[k] ? 0.0f : NAN;
                any |= i < L[k];
            }
            rc = craft_graph_observe(g, &ents, NAN, any ? labels : NULL, err);
        }
    }
    craft_kv_clear(&ents);
    free(n_orders);
    free(lab);
    free(pos);
    free(labels);
    return rc;
}

/* Fills txt and graph where the model has the built-in encoders' modalities and
 * the order brought no embedding for them (the rule of craft_encoders_fill). */
static int fill_encoders(craft_store *s, const craft_config *cfg, craft_order_batch *ob, int64_t id, craft_error *err)
{
    int txt = craft_config_find_modality(cfg, "txt"), graph = craft_config_find_modality(cfg, "graph");
    /* the modalities craft_encoders_fill would fill: txt at the text width (one vector or rows
     * per field or event), graph at the width of its entity types (default: the five) */
    if (txt >= 0 && (txt == cfg->backbone || !craft_encoders_would_fill(cfg, txt)))
        txt = -1;
    if (graph >= 0 && (graph == cfg->backbone || !craft_encoders_would_fill(cfg, graph)))
        graph = -1;
    int rc = CRAFT_OK;
    if (txt >= 0 && ob->in.ntok[txt][0] == 0 && ob->text[0].n > 0) {
        const craft_modality *tm = &cfg->modalities[txt];
        craft_text_encoder *te = NULL;
        if (!(rc = craft_text_encoder_new(&te, err))) {
            if (tm->text_tokens == CRAFT_TEXT_VECTOR) {
                long got = craft_text_encode(te, &ob->text[0], ob->in.emb[txt]);
                if (got < 0)
                    rc = craft_fail(err, CRAFT_ENOMEM, "text encoder: out of memory");
                else if (got > 0)
                    ob->in.ntok[txt][0] = 1;
            } else {
                int rows = 0;
                rc = craft_text_encode_rows(te, &ob->text[0], tm->text_tokens, tm->tokens, ob->in.emb[txt], &rows, err);
                if (!rc)
                    ob->in.ntok[txt][0] = rows;
            }
            craft_text_encoder_free(te);
        }
    }
    /* the counted shortcut knows the five default types; a model with its own entity types
     * replays the earlier orders through the encoder instead */
    const int custom_types = graph >= 0 && cfg->modalities[graph].n_entity_types > 0;
    if (!rc && graph >= 0 && ob->in.ntok[graph][0] == 0 && ob->entities[0].n > 0) {
        craft_graph *g = NULL;
        double t = NAN;
        if (!(rc = craft_graph_new_for(&g, cfg, graph, err)) && ob->ts[0])
            rc = craft_graph_parse_time(ob->ts[0], &t, err);
        if (!rc && craft_graph_known(g, &ob->entities[0])) {
            /* the counts the order needs, or (where they could differ) the replay */
            rc = getenv("CRAFT_GRAPH_REPLAY") || custom_types
                     ? CRAFT_EUNSUPPORTED
                     : counted_graph(s, cfg, g, &ob->entities[0], ob->ts[0], t, id, err);
            if (rc == CRAFT_EUNSUPPORTED) {
                craft_graph_free(g);
                g = NULL;
                if (!(rc = craft_graph_new_for(&g, cfg, graph, err)))
                    rc = replay_graph(s, cfg, g, ob->ts[0], id, err);
            }
            if (!rc && !(rc = craft_graph_encode(g, &ob->entities[0], t, ob->in.emb[graph], err)))
                ob->in.ntok[graph][0] = 1;
        }
        /* an order naming none of the model's entity types has no graph input (as in scoring) */
        craft_graph_free(g);
    }
    return rc;
}

int craft_store_order_batch(craft_store *s, const craft_config *cfg, const char *order_id, craft_order_batch *ob,
                            craft_error *err)
{
    if (ob->in.cap < 1 || !ob->keep_raw)
        return craft_fail(err, CRAFT_EINPUT, "craft_store_order_batch needs a batch made with room and keep_raw");
    craft_order_batch_reset(ob, cfg);
    craft_batch_clear_order(&ob->in, cfg, 0);
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT id, order_id, ts, dataset_id, num, cat FROM orders WHERE order_id = ?", err))
        return err->code;
    sqlite3_bind_text(st, 1, order_id, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        sqlite3_finalize(st);
        return r == SQLITE_DONE ? craft_fail(err, CRAFT_EINPUT, "no order \"%.80s\" in %s", order_id, s->path)
                                : store_fail(s, err, "reading an order");
    }
    int64_t id = sqlite3_column_int64(st, 0);
    ob->ids[0] = store_strdup(order_id);
    ob->ts[0] = store_col_text(st, 2);
    ob->line[0] = 0;
    ob->in.n = 1;
    int rc = CRAFT_OK;
    if (cfg->tabular >= 0)
        rc = fill_tabular(s, cfg, sqlite3_column_int64(st, 3), sqlite3_column_blob(st, 4),
                          sqlite3_column_bytes(st, 4) / (int)sizeof(float), (const char *)sqlite3_column_text(st, 5),
                          ob->in.tab, err);
    sqlite3_finalize(st);
    if (!rc)
        rc = fill_embeddings(s, cfg, id, order_id, &ob->in, err);
    if (!rc && cfg->modalities[cfg->backbone].kind == CRAFT_EMBEDDING && ob->in.ntok[cfg->backbone][0] == 0)
        rc = craft_fail(err, CRAFT_EINPUT, "order \"%.80s\" has no \"%s\" embedding, the model's backbone", order_id,
                        cfg->modalities[cfg->backbone].name);
    if (!rc)
        rc = read_kv(s, "SELECT field, value FROM order_text WHERE order_id = ?", id, &ob->text[0], err);
    if (!rc)
        rc = read_kv(s,
                     "SELECT e.type, e.entity_id FROM order_entities oe JOIN entities e ON e.id = oe.entity"
                     " WHERE oe.order_id = ?",
                     id, &ob->entities[0], err);
    if (!rc)
        rc = fill_encoders(s, cfg, ob, id, err);
    if (rc) {
        craft_error_prefix(err, "order \"%.80s\"", order_id);
        craft_order_batch_reset(ob, cfg);
    }
    return rc;
}

/* ----------------------------------------------------------- score space */

int craft_store_score_space(craft_store *s, int64_t model_id, int cls, craft_space_point **out, size_t *n,
                            craft_error *err)
{
    *out = NULL;
    *n = 0;
    if (!model_id)
        model_id = craft_store_latest_model(s);
    if (!model_id)
        return craft_fail(err, CRAFT_EINPUT, "%s: nothing has been scored yet", s->path);
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "SELECT config FROM models WHERE id = ?", err))
        return err->code;
    sqlite3_bind_int64(st, 1, model_id);
    craft_config cfg = {0};
    int rc = sqlite3_step(st) == SQLITE_ROW
                 ? craft_config_parse(&cfg, (const char *)sqlite3_column_text(st, 0),
                                      (size_t)sqlite3_column_bytes(st, 0), err)
                 : craft_fail(err, CRAFT_EINPUT, "%s: no model %lld", s->path, (long long)model_id);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (cls < 0 || cls >= cfg.n_classes) {
        rc = craft_fail(err, CRAFT_EINPUT, "class %d: the model has %d classes", cls, cfg.n_classes);
        craft_config_free(&cfg);
        return rc;
    }
    /* the backbone alone: every auxiliary switched off */
    uint32_t all_aux = 0;
    for (int m = 0; m < cfg.n_modalities; m++)
        if (m != cfg.backbone)
            all_aux |= 1u << m;
    char *cls_name = store_strdup(cfg.classes[cls]);
    craft_config_free(&cfg);
    rc = store_prepare(s, &st,
                       "SELECT p.order_id, p.scores, b.scores, c.status,"
                       " (SELECT value FROM labels l WHERE l.order_id = p.order_id AND l.class = ?3"
                       "  ORDER BY l.source = 'decision' DESC LIMIT 1)"
                       " FROM predictions p JOIN predictions b ON b.order_id = p.order_id AND b.model_id = p.model_id"
                       " AND b.off = ?2 LEFT JOIN cases c ON c.order_id = p.order_id"
                       " WHERE p.model_id = ?1 AND p.off = 0",
                       err);
    if (rc) {
        free(cls_name);
        return rc;
    }
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 2, all_aux);
    sqlite3_bind_text(st, 3, cls_name, -1, SQLITE_TRANSIENT);
    free(cls_name);
    size_t cap = 0;
    craft_space_point *pts = NULL;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const float *full = sqlite3_column_blob(st, 1), *bb = sqlite3_column_blob(st, 2);
        int bytes = (int)sizeof(float) * (cls + 1);
        if (!full || !bb || sqlite3_column_bytes(st, 1) < bytes || sqlite3_column_bytes(st, 2) < bytes)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 4096;
            craft_space_point *np = realloc(pts, sizeof *np * cap);
            if (!np) {
                r = SQLITE_NOMEM;
                break;
            }
            pts = np;
        }
        craft_space_point *p = &pts[(*n)++];
        p->order = sqlite3_column_int64(st, 0);
        p->full = full[cls];
        p->backbone = bb[cls];
        p->status = (int8_t)(sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 3));
        p->label = (int8_t)(sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 4));
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        free(pts);
        *n = 0;
        return r == SQLITE_NOMEM ? craft_fail(err, CRAFT_ENOMEM, "out of memory for the score space")
                                 : store_fail(s, err, "reading the score space");
    }
    *out = pts;
    return CRAFT_OK;
}

/* ------------------------------------------------- queue rows by order id */

int craft_store_queue_rows(craft_store *s, int64_t model_id, const int64_t *orders, int n, craft_queue_page *out,
                           craft_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 0 || n > 10000)
        return craft_fail(err, CRAFT_EINPUT, "queue rows: %d orders asked, 1..10000 per call", n);
    if (!model_id)
        model_id = craft_store_latest_model(s);
    out->model_id = model_id;
    if (model_id && store_model_classes(s, model_id, &out->classes, &out->n_classes, err))
        return err->code;
    out->rows = calloc((size_t)(n ? n : 1), sizeof *out->rows);
    if (!out->rows) {
        craft_queue_page_free(out);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    sqlite3_stmt *st;
    if (store_queue_row_prepare(s, &st, err)) {
        craft_queue_page_free(out);
        return err->code;
    }
    int rc = CRAFT_OK;
    for (int i = 0; i < n && !rc; i++) {
        rc = store_queue_row_read(s, st, model_id, orders[i], out->n_classes, &out->rows[out->n], err);
        if (rc == CRAFT_EINPUT) /* an order not in the store: left out */
            rc = CRAFT_OK;
        else if (!rc)
            out->n++;
    }
    sqlite3_finalize(st);
    if (rc)
        craft_queue_page_free(out);
    return rc;
}

/* ------------------------------------------- labelled predictions of a subset */

int craft_store_labelled_predictions(craft_store *s, int64_t model_id, uint32_t off, float **scores, float **labels,
                                     int *n, int *K, craft_error *err)
{
    *scores = *labels = NULL;
    *n = *K = 0;
    if (!model_id)
        model_id = craft_store_latest_model(s);
    char **classes = NULL;
    int nk = 0;
    if (store_model_classes(s, model_id, &classes, &nk, err))
        return err->code;
    sqlite3_stmt *st;
    if (store_prepare(s, &st,
                      "SELECT p.order_id, p.scores, l.class, l.value FROM predictions p JOIN labels l"
                      " ON l.order_id = p.order_id WHERE p.model_id = ?1 AND p.off = ?2 AND (l.source = 'decision'"
                      " OR NOT EXISTS (SELECT 1 FROM labels d WHERE d.order_id = l.order_id AND d.class = l.class"
                      " AND d.source = 'decision')) ORDER BY p.order_id",
                      err)) {
        store_free_strings(classes, nk);
        return err->code;
    }
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 2, off);
    size_t cap = 0, rows = 0;
    float *sc = NULL, *lb = NULL;
    int64_t last_order = -1;
    int r, failed = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const float *blob = sqlite3_column_blob(st, 1);
        if (!blob || sqlite3_column_bytes(st, 1) != (int)sizeof(float) * nk)
            continue;
        int64_t order = sqlite3_column_int64(st, 0);
        if (order != last_order) { /* the rows of one order are adjacent */
            if (rows == cap) {
                cap = cap ? cap * 2 : 1024;
                float *ns = realloc(sc, sizeof(float) * cap * nk);
                if (ns)
                    sc = ns;
                float *nl = ns ? realloc(lb, sizeof(float) * cap * nk) : NULL;
                if (!ns || !nl) {
                    failed = 1;
                    break;
                }
                lb = nl;
            }
            memcpy(sc + rows * nk, blob, sizeof(float) * nk);
            for (int k = 0; k < nk; k++)
                lb[rows * nk + k] = NAN;
            rows++;
            last_order = order;
        }
        const char *cls = (const char *)sqlite3_column_text(st, 2);
        for (int k = 0; k < nk; k++)
            if (!strcmp(classes[k], cls))
                lb[(rows - 1) * nk + k] = (float)sqlite3_column_int(st, 3);
    }
    sqlite3_finalize(st);
    store_free_strings(classes, nk);
    if (failed || r != SQLITE_DONE) {
        free(sc);
        free(lb);
        return failed ? craft_fail(err, CRAFT_ENOMEM, "out of memory") : store_fail(s, err, "reading labelled predictions");
    }
    *scores = sc;
    *labels = lb;
    *n = (int)rows;
    *K = nk;
    return CRAFT_OK;
}
