/* score.c: scoring the store's orders with a model: predictions for the full
 * model and every modality subset containing the backbone, explanations, and a
 * case for every flagged order. Orders go through the engine in time order, so
 * the built-in graph encoder only ever sees earlier orders.
 *
 * A run is all or nothing. Each batch's results go to TEMP staging tables of the
 * run's own connection (no lock on the store, so analysts keep deciding cases);
 * one short final transaction moves them into the score tables with INSERT ...
 * SELECT, together with the run's "complete" status. A failed, cancelled or
 * killed run leaves the score tables as they were, and nothing to clean up: a
 * connection's TEMP tables end with it. An order that cannot be scored (its
 * stored inputs do not fit the model) is skipped, its reason kept in
 * score_errors, and the run goes on. */
#include "encoders.h"
#include "scoring.h"
#include "store_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* dataset feature -> model input */
typedef struct {
    int64_t dataset_id;
    int n;
    int *to_model;           /* model tabular feature index, -1 unused */
    int *ds_type;
} feature_map;

typedef struct {
    craft_store *s;
    const craft_model *m;
    const craft_config *cfg;
    const craft_store_score_options *o;
    int64_t model_id, run_id;
    float thr[CRAFT_STORE_MAX_CLASSES];
    feature_map *maps;
    int n_maps;
    sqlite3_stmt *emb, *labels, *ins_pred, *ins_cs, *ins_expl, *ins_case, *ins_error;
    craft_encoders *enc;
    int n_req;
    craft_request req[1 << (CRAFT_MAX_MODALITIES - 1)];
    craft_result res[1 << (CRAFT_MAX_MODALITIES - 1)];
} scorer;

/* Per-class flag thresholds: the checkpoint's "thresholds" metadata (an array, or
 * a JSON string holding one) where present, else the default. */
static void read_thresholds(scorer *sc, float fallback)
{
    int K = sc->cfg->n_classes;
    for (int k = 0; k < K; k++)
        sc->thr[k] = fallback;
    cJSON *md = sc->m->metadata_json ? cJSON_Parse(sc->m->metadata_json) : NULL;
    const cJSON *t = md ? cJSON_GetObjectItemCaseSensitive(md, "thresholds") : NULL;
    cJSON *inner = NULL;
    if (cJSON_IsString(t))
        t = inner = cJSON_Parse(t->valuestring);
    if (cJSON_IsArray(t) && cJSON_GetArraySize(t) == K)
        for (int k = 0; k < K; k++) {
            const cJSON *v = cJSON_GetArrayItem(t, k);
            if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble <= 1)
                sc->thr[k] = (float)v->valuedouble;
        }
    cJSON_Delete(inner);
    cJSON_Delete(md);
}

static feature_map *map_for(scorer *sc, int64_t dataset_id, craft_error *err)
{
    for (int i = 0; i < sc->n_maps; i++)
        if (sc->maps[i].dataset_id == dataset_id)
            return &sc->maps[i];
    feature_map *nm = realloc(sc->maps, sizeof *nm * (sc->n_maps + 1));
    if (!nm) {
        craft_fail(err, CRAFT_ENOMEM, "out of memory");
        return NULL;
    }
    sc->maps = nm;
    feature_map *fm = &sc->maps[sc->n_maps++];
    memset(fm, 0, sizeof *fm);
    fm->dataset_id = dataset_id;
    sqlite3_stmt *st;
    if (store_prepare(sc->s, &st, "SELECT name, type FROM dataset_features WHERE dataset_id = ? ORDER BY idx", err))
        return NULL;
    sqlite3_bind_int64(st, 1, dataset_id);
    const craft_config *cfg = sc->cfg;
    const craft_modality *tm = cfg->tabular >= 0 ? &cfg->modalities[cfg->tabular] : NULL;
    int cap = 0, rc, failed = 0;
    while (!failed && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (fm->n == cap) {
            cap = cap ? cap * 2 : 256;
            int *a = realloc(fm->to_model, sizeof(int) * cap);
            if (a)
                fm->to_model = a;
            int *b = a ? realloc(fm->ds_type, sizeof(int) * cap) : NULL;
            if (b)
                fm->ds_type = b;
            if (!a || !b) {
                failed = craft_fail(err, CRAFT_ENOMEM, "out of memory");
                break;
            }
        }
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int type = sqlite3_column_int(st, 1);
        int j = -1;
        for (int f = 0; tm && f < tm->n_features; f++)
            if (!strcmp(tm->features[f].name, name))
                j = f;
        if (j >= 0 && tm->features[j].type == CRAFT_NUMERIC && type == CRAFT_CATEGORICAL)
            failed = craft_fail(err, CRAFT_EINPUT,
                                "feature \"%.60s\" is categorical in the store's dataset but numeric in the model",
                                name);
        fm->to_model[fm->n] = j;
        fm->ds_type[fm->n++] = type;
    }
    sqlite3_finalize(st);
    if (!failed && rc != SQLITE_DONE)
        failed = store_fail(sc->s, err, "reading the feature list");
    if (!failed && tm && cfg->tabular == cfg->backbone && tm->n_features > 0) {
        /* a dataset holding none of the model's features would get one score for
         * every order, silently: each of its orders is refused with this reason */
        int mapped = 0;
        for (int k = 0; k < fm->n; k++)
            mapped += fm->to_model[k] >= 0;
        if (!mapped)
            failed = craft_fail(err, CRAFT_EINPUT,
                                "its dataset has none of the model's %d features (\"%s\", ...): a model for other data?",
                                tm->n_features, tm->features[0].name);
    }
    if (failed) {
        /* not kept: the next order of the dataset tries again (and says why again) */
        free(fm->to_model);
        free(fm->ds_type);
        sc->n_maps--;
        return NULL;
    }
    return fm;
}

/* Loads stored order row (id, order_id, ts, dataset_id, num, cat) into batch row i.
 * CRAFT_EINPUT: the order's stored inputs do not fit the model (err says why,
 * without the order id); any other failure is the store's or memory's. */
static int load_order(scorer *sc, sqlite3_stmt *ord, craft_order_batch *ob, int i, craft_error *err)
{
    const craft_config *cfg = sc->cfg;
    craft_batch_clear_order(&ob->in, cfg, i);
    int64_t id = sqlite3_column_int64(ord, 0);
    const char *order_id = (const char *)sqlite3_column_text(ord, 1);
    ob->ids[i] = store_strdup(order_id);
    ob->ts[i] = store_col_text(ord, 2);
    ob->line[i] = 0;
    feature_map *fm = map_for(sc, sqlite3_column_int64(ord, 3), err);
    if (!fm)
        return err->code;
    char what[160];
    snprintf(what, sizeof what, "order row %lld", (long long)id);
    int n_num = 0;
    if (store_check_floats(sc->s, ord, 4, -(int64_t)(fm->n > 0 ? fm->n : 0), 1, &n_num, "orders", "num", what, err))
        return err->code;
    const float *num = sqlite3_column_blob(ord, 4);
    const craft_modality *tm = cfg->tabular >= 0 ? &cfg->modalities[cfg->tabular] : NULL;
    float *tab = tm ? ob->in.tab + (size_t)i * ob->in.F : NULL;
    for (int j = 0; tab && j < n_num && j < fm->n; j++) {
        int f = fm->to_model[j];
        if (f < 0 || isnan(num[j]))
            continue;
        if (tm->features[f].type == CRAFT_NUMERIC) {
            tab[f] = num[j];
        } else {
            char tmp[40];
            snprintf(tmp, sizeof tmp, "%.17g", (double)num[j]);
            tab[f] = (float)craft_category_code(cfg, &tm->features[f], tmp);
        }
    }
    if (tab && sqlite3_column_type(ord, 5) != SQLITE_NULL) {
        cJSON *cat = cJSON_Parse((const char *)sqlite3_column_text(ord, 5));
        for (const cJSON *v = cat ? cat->child : NULL; v; v = v->next) {
            if (!cJSON_IsString(v))
                continue;
            for (int f = 0; f < tm->n_features; f++)
                if (tm->features[f].type == CRAFT_CATEGORICAL && !strcmp(tm->features[f].name, v->string))
                    tab[f] = (float)craft_category_code(cfg, &tm->features[f], v->valuestring);
        }
        cJSON_Delete(cat);
    }
    /* precomputed embeddings of the model's embedding modalities */
    sqlite3_bind_int64(sc->emb, 1, id);
    while (sqlite3_step(sc->emb) == SQLITE_ROW) {
        int m = craft_config_find_modality(cfg, (const char *)sqlite3_column_text(sc->emb, 0));
        if (m < 0 || cfg->modalities[m].kind != CRAFT_EMBEDDING)
            continue;
        const craft_modality *mod = &cfg->modalities[m];
        int tokens = sqlite3_column_int(sc->emb, 1), dim = sqlite3_column_int(sc->emb, 2);
        if (dim != mod->dim || tokens < 1 || tokens > mod->tokens) {
            sqlite3_reset(sc->emb);
            return craft_fail(err, CRAFT_EINPUT, "embedding \"%s\" is %d x %d, the model takes at most %d x %d",
                              mod->name, tokens, dim, mod->tokens, mod->dim);
        }
        /* the BLOB must hold what its row says (a short one was read past its end) */
        char ewhat[200];
        snprintf(ewhat, sizeof ewhat, "order row %lld, modality \"%.40s\"", (long long)id, mod->name);
        if (store_check_floats(sc->s, sc->emb, 3, (int64_t)tokens * dim, 0, NULL, "embeddings", "data", ewhat, err)) {
            sqlite3_reset(sc->emb);
            return err->code;
        }
        memcpy(ob->in.emb[m] + (size_t)i * mod->tokens * mod->dim, sqlite3_column_blob(sc->emb, 3),
               sizeof(float) * tokens * dim);
        ob->in.ntok[m][i] = tokens;
    }
    sqlite3_reset(sc->emb);
    if (cfg->modalities[cfg->backbone].kind == CRAFT_EMBEDDING && ob->in.ntok[cfg->backbone][i] == 0)
        return craft_fail(err, CRAFT_EINPUT, "no \"%s\" embedding, the model's backbone",
                          cfg->modalities[cfg->backbone].name);
    /* text and entities for the built-in encoders, labels for the graph encoder */
    if (sc->enc) {
        static const char *const sql_kind[2] = {"text", "entities"};
        (void)sql_kind;
        sqlite3_stmt *st;
        if (store_prepare(sc->s, &st, "SELECT field, value FROM order_text WHERE order_id = ?", err))
            return err->code;
        sqlite3_bind_int64(st, 1, id);
        while (sqlite3_step(st) == SQLITE_ROW)
            craft_kv_add(&ob->text[i], (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
        if (store_prepare(sc->s, &st,
                          "SELECT e.type, e.entity_id FROM order_entities oe JOIN entities e ON e.id = oe.entity"
                          " WHERE oe.order_id = ?",
                          err))
            return err->code;
        sqlite3_bind_int64(st, 1, id);
        while (sqlite3_step(st) == SQLITE_ROW)
            craft_kv_add(&ob->entities[i], (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
    }
    sqlite3_bind_int64(sc->labels, 1, id);
    while (sqlite3_step(sc->labels) == SQLITE_ROW) {
        const char *cls = (const char *)sqlite3_column_text(sc->labels, 0);
        for (int k = 0; k < cfg->n_classes; k++)
            if (!strcmp(cfg->classes[k], cls)) {
                ob->in.labels[(size_t)i * cfg->n_classes + k] = (float)sqlite3_column_int(sc->labels, 1);
                ob->has_labels[i] = 1;
                ob->in.has_labels = 1;
            }
    }
    sqlite3_reset(sc->labels);
    return CRAFT_OK;
}

/* The engine's own checks of one order's inputs (engine/forward.c check_batch),
 * made per order so that one order the model cannot take is skipped by itself
 * instead of failing its whole batch. */
static int check_row(const scorer *sc, const craft_batch *in, int i, craft_error *err)
{
    const craft_config *cfg = sc->cfg;
    for (int j = 0; cfg->tabular >= 0 && j < in->F; j++) {
        float x = in->tab[(size_t)i * in->F + j];
        const craft_feature *f = &cfg->modalities[cfg->tabular].features[j];
        if (isinf(x))
            return craft_fail(err, CRAFT_EINPUT, "feature \"%s\" is infinite", f->name);
        if (f->type == CRAFT_CATEGORICAL && !isnan(x) && (x < 1 || x > cfg->bins || x != floorf(x)))
            return craft_fail(err, CRAFT_EINPUT, "feature \"%s\" has no valid category code", f->name);
    }
    for (int m = 0; m < cfg->n_modalities; m++) {
        const craft_modality *mod = &cfg->modalities[m];
        if (mod->kind != CRAFT_EMBEDDING)
            continue;
        int t = in->ntok[m][i];
        const float *X = in->emb[m] + (size_t)i * mod->tokens * mod->dim;
        for (size_t k = 0; k < (size_t)t * mod->dim; k++)
            if (!isfinite(X[k]))
                return craft_fail(err, CRAFT_EINPUT, "\"%s\" embedding holds a non-finite value", mod->name);
    }
    return CRAFT_OK;
}

/* Forgets batch row i (an order that could not be loaded) so the next one can take it. */
static void drop_row(scorer *sc, craft_order_batch *ob, int i)
{
    free(ob->ids[i]);
    free(ob->ts[i]);
    ob->ids[i] = ob->ts[i] = NULL;
    craft_kv_clear(&ob->text[i]);
    craft_kv_clear(&ob->entities[i]);
    ob->has_labels[i] = 0;
    craft_batch_clear_order(&ob->in, sc->cfg, i);
}

static int step(scorer *sc, sqlite3_stmt *st, craft_error *err, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? CRAFT_OK : store_fail(sc->s, err, what);
}

/* Stages the results of one batch in the run's TEMP tables (one transaction
 * that takes no lock on the store). */
static int stage_batch(scorer *sc, const craft_order_batch *ob, const int64_t *ids, uint64_t *flagged,
                       craft_error *err)
{
    const craft_config *cfg = sc->cfg;
    int K = cfg->n_classes, M = cfg->n_modalities;
    int A = M - 1;
    if (store_exec(sc->s, "BEGIN", err))
        return err->code;
    int rc = CRAFT_OK;
    float *buf = malloc(sizeof(float) * (size_t)(sc->res[0].T * (A > 0 ? A : 1) + sc->res[0].T * K + 64));
    if (!buf)
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    for (int b = 0; b < ob->in.n && !rc; b++) {
        int64_t oid = ids[b];
        for (int r = 0; r < sc->n_req && !rc; r++) {
            const craft_result *res = &sc->res[r];
            const float *s = res->scores + (size_t)b * K;
            int top = 0;
            for (int k = 1; k < K; k++)
                if (s[k] > s[top])
                    top = k;
            sqlite3_stmt *st = sc->ins_pred;
            sqlite3_bind_int64(st, 1, oid);
            sqlite3_bind_int64(st, 2, sc->model_id);
            sqlite3_bind_int64(st, 3, sc->req[r].off_mask);
            sqlite3_bind_int64(st, 4, res->used[b]);
            sqlite3_bind_int(st, 5, top);
            sqlite3_bind_double(st, 6, s[top]);
            sqlite3_bind_blob(st, 7, s, K * (int)sizeof(float), SQLITE_STATIC);
            sqlite3_bind_int64(st, 8, sc->run_id);
            rc = step(sc, st, err, "staging a prediction");
            if (rc || r)
                continue;
            /* the full model: class scores for the queue, the case rule, explanations */
            for (int k = 0; k < K && !rc; k++) {
                sqlite3_bind_int64(sc->ins_cs, 1, sc->model_id);
                sqlite3_bind_int(sc->ins_cs, 2, k);
                sqlite3_bind_double(sc->ins_cs, 3, s[k]);
                sqlite3_bind_int64(sc->ins_cs, 4, oid);
                rc = step(sc, sc->ins_cs, err, "staging class scores");
            }
            int flag = 0;
            for (int k = 0; k < K; k++)
                flag |= s[k] >= sc->thr[k];
            if (!rc && flag) {
                (*flagged)++;
                char after[512];
                snprintf(after, sizeof after,
                         "{\"status\": \"new\", \"model\": \"%s\", \"class\": \"%.60s\", \"score\": %.6g, "
                         "\"threshold\": %.6g}",
                         sc->m->sha256, cfg->classes[top], s[top], sc->thr[top]);
                sqlite3_bind_int64(sc->ins_case, 1, oid);
                sqlite3_bind_int(sc->ins_case, 2, top);
                sqlite3_bind_double(sc->ins_case, 3, s[top]);
                sqlite3_bind_text(sc->ins_case, 4, after, -1, SQLITE_TRANSIENT);
                rc = step(sc, sc->ins_case, err, "staging a case");
            }
            if (!rc && sc->req[0].importance) {
                int T = res->T;
                sqlite3_stmt *e = sc->ins_expl;
                sqlite3_bind_int64(e, 1, oid);
                sqlite3_bind_int64(e, 2, sc->model_id);
                sqlite3_bind_int(e, 3, T);
                sqlite3_bind_blob(e, 4, res->importance + (size_t)b * T, T * (int)sizeof(float), SQLITE_TRANSIENT);
                /* cmis and gates of the auxiliaries only, in model order */
                int a = 0;
                for (int m = 0; m < M; m++)
                    if (m != cfg->backbone) {
                        for (int j = 0; j < T; j++)
                            buf[(size_t)a * T + j] = res->cmis ? res->cmis[((size_t)b * M + m) * T + j] : NAN;
                        a++;
                    }
                sqlite3_bind_blob(e, 5, buf, A * T * (int)sizeof(float), SQLITE_TRANSIENT);
                float cg[CRAFT_MAX_MODALITIES], fg[CRAFT_MAX_MODALITIES];
                a = 0;
                for (int m = 0; m < M; m++)
                    if (m != cfg->backbone) {
                        cg[a] = res->cond_gate ? res->cond_gate[(size_t)b * M + m] : NAN;
                        fg[a] = res->fuse_gate ? res->fuse_gate[(size_t)b * M + m] : NAN;
                        a++;
                    }
                sqlite3_bind_blob(e, 6, cg, A * (int)sizeof(float), SQLITE_TRANSIENT);
                sqlite3_bind_blob(e, 7, fg, A * (int)sizeof(float), SQLITE_TRANSIENT);
                if (res->perturb && ob->in.F == T)
                    sqlite3_bind_blob(e, 8, res->perturb + (size_t)b * K * T, K * T * (int)sizeof(float),
                                      SQLITE_TRANSIENT);
                else
                    sqlite3_bind_null(e, 8);
                rc = step(sc, e, err, "staging an explanation");
            }
        }
    }
    free(buf);
    if (!rc && sqlite3_exec(sc->s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = store_fail(sc->s, err,
                        "staging a batch of scores in SQLite's temporary folder ($SQLITE_TMPDIR, $TMPDIR or /var/tmp)");
    if (rc)
        sqlite3_exec(sc->s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Stages an order that could not be scored, with the reason. */
static int stage_error(scorer *sc, int64_t oid, const char *reason, craft_error *err)
{
    sqlite3_bind_int64(sc->ins_error, 1, oid);
    sqlite3_bind_text(sc->ins_error, 2, reason, -1, SQLITE_TRANSIENT);
    return step(sc, sc->ins_error, err, "staging a scoring error");
}

/* The run's staging tables: TEMP, so only this connection sees them and they
 * go with it (a killed run leaves nothing behind). Emptied for a new run. */
static const char stage_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS stage_predictions(order_id INTEGER NOT NULL, model_id INTEGER NOT NULL,"
    "  off INTEGER NOT NULL, used INTEGER NOT NULL, top_class INTEGER NOT NULL, top_score REAL NOT NULL,"
    "  scores BLOB NOT NULL, run_id INTEGER, PRIMARY KEY(order_id, off)) WITHOUT ROWID;"
    "CREATE TEMP TABLE IF NOT EXISTS stage_class_scores(model_id INTEGER NOT NULL, class INTEGER NOT NULL,"
    "  score REAL NOT NULL, order_id INTEGER NOT NULL, PRIMARY KEY(order_id, class)) WITHOUT ROWID;"
    "CREATE TEMP TABLE IF NOT EXISTS stage_explanations(order_id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL,"
    "  tokens INTEGER NOT NULL, importance BLOB NOT NULL, cmis BLOB, cond_gate BLOB, fuse_gate BLOB, perturb BLOB);"
    "CREATE TEMP TABLE IF NOT EXISTS stage_cases(order_id INTEGER PRIMARY KEY, top_class INTEGER NOT NULL,"
    "  top_score REAL NOT NULL, after TEXT NOT NULL);"
    "CREATE TEMP TABLE IF NOT EXISTS stage_errors(order_id INTEGER PRIMARY KEY, reason TEXT NOT NULL);"
    "DELETE FROM temp.stage_predictions; DELETE FROM temp.stage_class_scores; DELETE FROM temp.stage_explanations;"
    "DELETE FROM temp.stage_cases; DELETE FROM temp.stage_errors;";

static void stage_drop(craft_store *s)
{
    sqlite3_exec(s->db,
                 "DROP TABLE IF EXISTS temp.stage_predictions; DROP TABLE IF EXISTS temp.stage_class_scores;"
                 " DROP TABLE IF EXISTS temp.stage_explanations; DROP TABLE IF EXISTS temp.stage_cases;"
                 " DROP TABLE IF EXISTS temp.stage_errors",
                 NULL, NULL, NULL);
}

static int prepare_all(scorer *sc, craft_error *err)
{
    craft_store *s = sc->s;
    if (store_exec(s, stage_sql, err))
        return err->code;
    if (store_prepare(s, &sc->emb, "SELECT modality, tokens, dim, data FROM embeddings WHERE order_id = ?", err) ||
        store_prepare(s, &sc->labels,
                      "SELECT class, value FROM labels l WHERE order_id = ?1 AND (source = 'decision' OR NOT EXISTS"
                      " (SELECT 1 FROM labels d WHERE d.order_id = l.order_id AND d.class = l.class"
                      " AND d.source = 'decision'))",
                      err) ||
        store_prepare(s, &sc->ins_pred,
                      "INSERT OR REPLACE INTO temp.stage_predictions(order_id, model_id, off, used, top_class,"
                      " top_score, scores, run_id) VALUES(?,?,?,?,?,?,?,?)",
                      err) ||
        store_prepare(s, &sc->ins_cs,
                      "INSERT OR REPLACE INTO temp.stage_class_scores(model_id, class, score, order_id)"
                      " VALUES(?,?,?,?)",
                      err) ||
        store_prepare(s, &sc->ins_expl,
                      "INSERT OR REPLACE INTO temp.stage_explanations(order_id, model_id, tokens, importance, cmis,"
                      " cond_gate, fuse_gate, perturb) VALUES(?,?,?,?,?,?,?,?)",
                      err) ||
        store_prepare(s, &sc->ins_case,
                      "INSERT OR REPLACE INTO temp.stage_cases(order_id, top_class, top_score, after) VALUES(?,?,?,?)",
                      err) ||
        store_prepare(s, &sc->ins_error, "INSERT OR REPLACE INTO temp.stage_errors(order_id, reason) VALUES(?,?)",
                      err))
        return err->code;
    return CRAFT_OK;
}

static void scorer_free(scorer *sc)
{
    sqlite3_stmt *all[] = {sc->emb, sc->labels, sc->ins_pred, sc->ins_cs, sc->ins_expl, sc->ins_case, sc->ins_error};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        sqlite3_finalize(all[i]);
    for (int i = 0; i < sc->n_maps; i++) {
        free(sc->maps[i].to_model);
        free(sc->maps[i].ds_type);
    }
    free(sc->maps);
    for (int r = 0; r < sc->n_req; r++)
        craft_result_free(&sc->res[r]);
    if (sc->enc)
        craft_encoders_free(sc->enc);
}

/* Records how a run that stored nothing ended (its own small transaction). */
static int finish_run(scorer *sc, const char *status, uint64_t scored, uint64_t flagged, uint64_t failed)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(sc->s->db,
                           "UPDATE scoring_runs SET finished = ?, scored = ?, flagged = ?, status = ?, failed = ?"
                           " WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_double(st, 1, store_time());
    sqlite3_bind_int64(st, 2, (int64_t)scored);
    sqlite3_bind_int64(st, 3, (int64_t)flagged);
    sqlite3_bind_text(st, 4, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (int64_t)failed);
    sqlite3_bind_int64(st, 6, sc->run_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* One statement of the final move, binding ?1 model, ?2 run, ?3 now, ?4 the
 * highest case id before the move (those of ?5 .. ?7: scored, flagged, failed). */
static int move_step(scorer *sc, const char *sql, int64_t max_case, const craft_store_score_stats *stats,
                     double now, int *changes, craft_error *err)
{
    sqlite3_stmt *st;
    if (store_prepare(sc->s, &st, sql, err))
        return err->code;
    int n = sqlite3_bind_parameter_count(st);
    const int64_t v[7] = {sc->model_id, sc->run_id, 0, max_case, (int64_t)stats->scored, (int64_t)stats->flagged,
                          (int64_t)stats->failed};
    for (int i = 1; i <= n && i <= 7; i++)
        if (i == 3)
            sqlite3_bind_double(st, 3, now);
        else
            sqlite3_bind_int64(st, i, v[i - 1]);
    int rc = sqlite3_step(st);
    if (changes)
        *changes = sqlite3_changes(sc->s->db);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? CRAFT_OK : store_fail(sc->s, err, "storing the run's scores");
}

/* The final move: the staged results into the score tables, cases with their
 * audit rows, the reasons of the orders that failed, and the run's "complete",
 * in one transaction. */
static int move_staged(scorer *sc, craft_store_score_stats *stats, craft_error *err)
{
    craft_store *s = sc->s;
    double now = store_time();
    if (store_exec(s, "BEGIN IMMEDIATE", err))
        return err->code;
    int64_t max_case = 0;
    sqlite3_stmt *st;
    int rc = store_prepare(s, &st, "SELECT coalesce(max(id), 0) FROM main.cases", err);
    if (!rc) {
        if (sqlite3_step(st) == SQLITE_ROW)
            max_case = sqlite3_column_int64(st, 0);
        else
            rc = store_fail(s, err, "reading the cases");
        sqlite3_finalize(st);
    }
    static const char *const sql[] = {
        "INSERT OR REPLACE INTO main.predictions(order_id, model_id, off, used, top_class, top_score, scores, run_id)"
        " SELECT order_id, model_id, off, used, top_class, top_score, scores, run_id FROM temp.stage_predictions",
        "DELETE FROM main.class_scores WHERE model_id = ?1 AND order_id IN"
        " (SELECT order_id FROM temp.stage_predictions WHERE off = 0)",
        "INSERT OR REPLACE INTO main.class_scores(model_id, class, score, order_id)"
        " SELECT model_id, class, score, order_id FROM temp.stage_class_scores",
        "INSERT OR REPLACE INTO main.explanations(order_id, model_id, tokens, importance, cmis, cond_gate, fuse_gate,"
        " perturb) SELECT order_id, model_id, tokens, importance, cmis, cond_gate, fuse_gate, perturb"
        " FROM temp.stage_explanations",
        /* a flagged order without a case gets one; an existing case keeps its status */
        "INSERT INTO main.cases(order_id, model_id, status, top_class, top_score, created, updated)"
        " SELECT order_id, ?1, 0, top_class, top_score, ?3, ?3 FROM temp.stage_cases WHERE 1"
        " ORDER BY order_id ON CONFLICT(order_id) DO NOTHING",
        /* an order scored now has no error left; one that failed now keeps why */
        "DELETE FROM main.score_errors WHERE model_id = ?1 AND order_id IN"
        " (SELECT order_id FROM temp.stage_predictions WHERE off = 0)",
        "INSERT OR REPLACE INTO main.score_errors(order_id, model_id, run_id, reason, at)"
        " SELECT order_id, ?1, ?2, reason, ?3 FROM temp.stage_errors",
        "UPDATE main.scoring_runs SET finished = ?3, scored = ?5, flagged = ?6, failed = ?7, status = 'complete'"
        " WHERE id = ?2",
    };
    for (size_t i = 0; i < sizeof sql / sizeof *sql && !rc; i++) {
        int changes = 0;
        rc = move_step(sc, sql[i], max_case, stats, now, &changes, err);
        if (i == 4) {
            stats->new_cases = (uint64_t)changes;
            /* the new cases' audit rows (the cases above the highest id before: rowids
             * grow), each chained to the one before it (store_audit_append) */
            if (!rc && changes)
                rc = store_prepare(s, &st,
                                   "SELECT c.id, g.after FROM main.cases c JOIN temp.stage_cases g"
                                   " ON g.order_id = c.order_id WHERE c.id > ?1 ORDER BY c.id",
                                   err);
            if (!rc && changes) {
                sqlite3_bind_int64(st, 1, max_case);
                int r;
                while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW)
                    rc = store_audit_append(s, sqlite3_column_int64(st, 0), now, "craft score", "create", NULL,
                                            (const char *)sqlite3_column_text(st, 1), err);
                if (!rc && r != SQLITE_DONE)
                    rc = store_fail(s, err, "writing the audit log");
                sqlite3_finalize(st);
            }
        }
    }
    if (!rc && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = store_fail(s, err, "storing the run's scores");
    if (rc) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        stats->new_cases = 0;
    }
    return rc;
}

int craft_store_score(craft_store *s, const craft_model *m, const char *model_path, const craft_store_score_options *o,
                      craft_store_score_stats *stats, craft_error *err)
{
    craft_store_score_options defaults = {0};
    if (!o)
        o = &defaults;
    craft_store_score_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (s->readonly)
        return craft_fail(err, CRAFT_EINPUT, "%s: opened read-only", s->path);
    const craft_config *cfg = &m->cfg;
    if (cfg->n_classes > CRAFT_STORE_MAX_CLASSES)
        return craft_fail(err, CRAFT_EUNSUPPORTED, "the store keeps at most %d classes; the model has %d",
                          CRAFT_STORE_MAX_CLASSES, cfg->n_classes);
    double t0 = craft_now();
    scorer sc = {.s = s, .m = m, .cfg = cfg, .o = o};
    int batch = o->batch > 0 ? o->batch : 64;
    read_thresholds(&sc, o->flag_threshold > 0 && o->flag_threshold <= 1 ? o->flag_threshold : 0.5f);
    int rc = craft_store_model_add(s, m, model_path, 0, NULL, &sc.model_id, err);
    stats->model_id = sc.model_id;
    /* requests: the full model with explanations, then each subset of auxiliaries switched off */
    int aux[CRAFT_MAX_MODALITIES], A = 0;
    for (int i = 0; i < cfg->n_modalities; i++)
        if (i != cfg->backbone)
            aux[A++] = i;
    sc.n_req = o->subsets ? 1 << A : 1;
    for (int r = 0; r < sc.n_req; r++) {
        uint32_t off = 0;
        for (int a = 0; a < A; a++)
            if (r & (1 << a))
                off |= 1u << aux[a];
        sc.req[r] = (craft_request){.off_mask = off};
    }
    sc.req[0].importance = sc.req[0].cmis = o->explain;
    sc.req[0].perturbation = o->explain && o->perturbation;
    int n_init = 0;
    for (int r = 0; r < sc.n_req && !rc; r++, n_init++)
        rc = craft_result_init(&sc.res[r], cfg, batch, &sc.req[r], err);
    sc.n_req = n_init;
    if (!rc)
        rc = craft_encoders_new(&sc.enc, cfg, err);
    if (!rc && !craft_encoders_active(sc.enc)) {
        craft_encoders_free(sc.enc);
        sc.enc = NULL;
    }
    if (!rc)
        rc = prepare_all(&sc, err);
    craft_engine *engine = NULL;
    if (!rc)
        rc = craft_engine_new(&engine, m, batch, o->threads, err);
    craft_order_batch ob;
    int ob_ok = 0;
    if (!rc && !(rc = craft_order_batch_init(&ob, cfg, batch, 1, err)))
        ob_ok = 1;
    /* the run's row, committed first so an interrupted run is visible as such */
    sqlite3_stmt *st = NULL;
    if (!rc && !(rc = store_prepare(s, &st,
                                    "INSERT INTO scoring_runs(model_id, dataset_id, started, status, options)"
                                    " VALUES(?, ?, ?, 'running', ?)",
                                    err))) {
        char opts[160];
        snprintf(opts, sizeof opts, "{\"explain\": %d, \"perturbation\": %d, \"subsets\": %d, \"only_unscored\": %d}",
                 o->explain, o->perturbation, o->subsets, o->only_unscored);
        sqlite3_bind_int64(st, 1, sc.model_id);
        if (o->dataset_id)
            sqlite3_bind_int64(st, 2, o->dataset_id);
        sqlite3_bind_double(st, 3, store_time());
        sqlite3_bind_text(st, 4, opts, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_fail(s, err, "recording the scoring run");
        else
            sc.run_id = sqlite3_last_insert_rowid(s->db);
        stats->run_id = sc.run_id;
        sqlite3_finalize(st);
    }
    /* Orders in time order (the graph encoder must only see earlier orders), paged by
     * (ts, id) so no read stays open across the batches; orders without a time
     * come last. */
    sqlite3_stmt *ords[2] = {NULL, NULL};
    static const char *const order_sql[2] = {
        "SELECT id, order_id, ts, dataset_id, num, cat FROM orders o WHERE (?1 = 0 OR dataset_id = ?1)"
        " AND (?3 = 0 OR NOT EXISTS (SELECT 1 FROM predictions p WHERE p.order_id = o.id AND p.model_id = ?2"
        " AND p.off = 0)) AND ts IS NOT NULL AND (?6 IS NULL OR (ts, id) > (?6, ?4)) ORDER BY ts, id LIMIT ?5",
        "SELECT id, order_id, ts, dataset_id, num, cat FROM orders o WHERE (?1 = 0 OR dataset_id = ?1)"
        " AND (?3 = 0 OR NOT EXISTS (SELECT 1 FROM predictions p WHERE p.order_id = o.id AND p.model_id = ?2"
        " AND p.off = 0)) AND ts IS NULL AND id > ?4 ORDER BY id LIMIT ?5"};
    for (int k = 0; k < 2 && !rc; k++)
        rc = store_prepare(s, &ords[k], order_sql[k], err);
    int phase = 0;
    /* the last time read, as the exact SQLite value (a copy of the text would lose
     * what follows a NUL byte in a tampered row, and the same page would be read
     * again forever); NULL before the first page */
    sqlite3_value *last_ts = NULL;
    int64_t last_id = 0;
    int64_t *ids = malloc(sizeof(int64_t) * batch);
    uint64_t total = 0;
    if (!rc && !ids)
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (!rc) {
        sqlite3_stmt *cnt;
        if (!store_prepare(s, &cnt, "SELECT count(*) FROM orders WHERE ?1 = 0 OR dataset_id = ?1", err)) {
            sqlite3_bind_int64(cnt, 1, o->dataset_id);
            if (sqlite3_step(cnt) == SQLITE_ROW)
                total = (uint64_t)sqlite3_column_int64(cnt, 0);
            sqlite3_finalize(cnt);
        }
    }
    int cancelled = 0;
    while (!rc) {
        if (o->cancel && *o->cancel) {
            cancelled = 1;
            rc = craft_fail(err, CRAFT_ECANCELLED,
                            "scoring was cancelled after %llu orders; the run stored nothing (the earlier scores stay)",
                            (unsigned long long)stats->scored);
            break;
        }
        craft_order_batch_reset(&ob, cfg);
        sqlite3_stmt *ord = ords[phase];
        sqlite3_bind_int64(ord, 1, o->dataset_id);
        if (last_ts)
            sqlite3_bind_value(ord, 6, last_ts);
        else
            sqlite3_bind_null(ord, 6);
        sqlite3_bind_int64(ord, 2, sc.model_id);
        sqlite3_bind_int(ord, 3, o->only_unscored);
        sqlite3_bind_int64(ord, 4, last_id);
        sqlite3_bind_int(ord, 5, batch);
        int r2, fetched = 0;
        while (!rc && (r2 = sqlite3_step(ord)) == SQLITE_ROW) {
            int i = ob.in.n;
            fetched++;
            ids[i] = last_id = sqlite3_column_int64(ord, 0);
            if (phase == 0) {
                sqlite3_value_free(last_ts);
                if (!(last_ts = sqlite3_value_dup(sqlite3_column_value(ord, 2))))
                    rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
            }
            if (rc)
                break;
            rc = load_order(&sc, ord, &ob, i, err);
            if (!rc)
                rc = check_row(&sc, &ob.in, i, err);
            if (rc == CRAFT_EINPUT) {
                /* this order cannot be scored by this model: skipped, its reason kept */
                stats->failed++;
                rc = stage_error(&sc, ids[i], err->msg, err);
                drop_row(&sc, &ob, i);
                continue;
            }
            ob.in.n++;
        }
        sqlite3_reset(ord);
        if (rc)
            break;
        if (r2 != SQLITE_DONE) {
            rc = store_fail(s, err, "reading orders");
            break;
        }
        if (fetched == 0) {
            if (phase == 1)
                break;
            phase = 1;
            last_id = 0;
            continue;
        }
        if (ob.in.n == 0)
            continue;
        if (sc.enc && (rc = craft_encoders_fill(sc.enc, cfg, &ob, err)))
            break;
        if ((rc = craft_engine_run(engine, &ob.in, sc.req, sc.n_req, sc.res, err))) {
            craft_error_prefix(err, "scoring orders %s .. %s", ob.ids[0], ob.ids[ob.in.n - 1]);
            break;
        }
        if ((rc = stage_batch(&sc, &ob, ids, &stats->flagged, err)))
            break;
        stats->scored += (uint64_t)ob.in.n;
        if (o->progress)
            o->progress(o->progress_user, stats->scored + stats->failed, stats->scored + stats->failed, total,
                        craft_now() - t0);
    }
    if (!rc && sc.run_id)
        rc = move_staged(&sc, stats, err);
    if (rc) {
        if (sc.run_id)
            finish_run(&sc, cancelled ? "cancelled" : "failed", 0, 0, stats->failed);
        stats->scored = stats->flagged = stats->new_cases = 0;
    }
    sqlite3_finalize(ords[0]);
    sqlite3_finalize(ords[1]);
    sqlite3_value_free(last_ts);
    free(ids);
    if (ob_ok)
        craft_order_batch_free(&ob);
    craft_engine_free(engine);
    scorer_free(&sc);
    stage_drop(s);
    stats->seconds = craft_now() - t0;
    return rc;
}

static void read_score_error_row(sqlite3_stmt *st, void *elem)
{
    craft_score_error *e = elem;
    e->order_id = store_col_text(st, 0);
    e->run_id = sqlite3_column_int64(st, 1);
    e->reason = store_col_text(st, 2);
    e->at = sqlite3_column_double(st, 3);
}

int craft_store_score_errors(craft_store *s, int64_t model_id, int64_t run_id, const char *order_id, int limit,
                             craft_score_error **out, int *n, craft_error *err)
{
    *out = NULL;
    *n = 0;
    if (!model_id)
        model_id = craft_store_latest_model(s);
    sqlite3_stmt *st;
    if (store_prepare(s, &st,
                      "SELECT o.order_id, e.run_id, e.reason, e.at FROM score_errors e JOIN orders o ON o.id = e.order_id"
                      " WHERE e.model_id = ?1 AND (?2 IS NULL OR o.order_id = ?2) AND (?4 = 0 OR e.run_id = ?4)"
                      " ORDER BY o.ts, o.id LIMIT ?3",
                      err))
        return err->code;
    sqlite3_bind_int64(st, 1, model_id);
    if (order_id)
        sqlite3_bind_text(st, 2, order_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    sqlite3_bind_int64(st, 4, run_id);
    int rc = store_collect_rows(st, sizeof **out, read_score_error_row, (void **)out, n);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        craft_score_errors_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc == SQLITE_NOMEM ? craft_fail(err, CRAFT_ENOMEM, "out of memory")
                                  : store_fail(s, err, "reading the scoring errors");
    }
    return CRAFT_OK;
}

void craft_score_errors_free(craft_score_error *e, int n)
{
    if (!e)
        return;
    for (int i = 0; i < n; i++) {
        free(e[i].order_id);
        free(e[i].reason);
    }
    free(e);
}
