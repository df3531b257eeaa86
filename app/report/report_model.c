/* report_model.c: the report model: which orders, the model's identity, the score
 * space, and each order's evidence with its feature rankings. Display-free. */
#include "report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "heatmap.h"
#include "scoring.h"
#include "store_internal.h"

/* ------------------------------------------------------------ formats */

/* Four decimals; values too small to show that way (CMIS of a weak model) keep
 * three significant digits instead of printing as zero. */
void craft_report_fmt_score(char *buf, size_t n, float v)
{
    if (isnan(v))
        snprintf(buf, n, "n/a");
    else if (v != 0 && fabsf(v) < 0.0005f)
        snprintf(buf, n, "%.3g", v);
    else
        snprintf(buf, n, "%.4f", v);
}

void craft_report_fmt_signed(char *buf, size_t n, float v)
{
    if (isnan(v))
        snprintf(buf, n, "n/a");
    else if (v != 0 && fabsf(v) < 0.0005f)
        snprintf(buf, n, "%+.3g", v);
    else
        snprintf(buf, n, "%+.4f", v);
}

void craft_report_metrics_text(const craft_report_model *m, char *buf, size_t n)
{
    cJSON *root = m->metrics_json ? cJSON_Parse(m->metrics_json) : NULL;
    snprintf(buf, n, "%s", root ? "" : "not recorded");
    for (const cJSON *a = root ? root->child : NULL; a && a->string; a = a->next) {
        size_t len = strlen(buf);
        if (cJSON_IsNumber(a))
            snprintf(buf + len, n - len, "%s%s %.4g", len ? ", " : "", a->string, a->valuedouble);
        else if (cJSON_IsString(a))
            snprintf(buf + len, n - len, "%s%s %s", len ? ", " : "", a->string, a->valuestring);
    }
    cJSON_Delete(root);
}

void craft_report_fmt_time(char *buf, size_t n, double t)
{
    if (!(t > 0)) {
        snprintf(buf, n, "not recorded");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

craft_report_format craft_report_format_from_path(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot || strchr(dot, '/'))
        return CRAFT_REPORT_AUTO;
    if (!strcasecmp(dot, ".pdf"))
        return CRAFT_REPORT_PDF;
    if (!strcasecmp(dot, ".json"))
        return CRAFT_REPORT_JSON;
    if (!strcasecmp(dot, ".md") || !strcasecmp(dot, ".markdown"))
        return CRAFT_REPORT_MARKDOWN;
    if (!strcasecmp(dot, ".csv"))
        return CRAFT_REPORT_CSV;
    return CRAFT_REPORT_AUTO;
}

void craft_report_selection_init(craft_report_selection *sel)
{
    memset(sel, 0, sizeof *sel);
    craft_queue_query_init(&sel->query);
}

static char *dup_or_null(const char *s)
{
    return s ? store_strdup(s) : NULL;
}

/* --------------------------------------------------------------- model */

/* Training metrics: the store's metrics, else the checkpoint's "craft.training" entry
 * (a JSON string) without its options and rho table. */
static char *model_metrics(const char *store_metrics, const char *metadata_json)
{
    if (store_metrics && *store_metrics)
        return store_strdup(store_metrics);
    cJSON *md = metadata_json ? cJSON_Parse(metadata_json) : NULL;
    const cJSON *t = md ? cJSON_GetObjectItemCaseSensitive(md, "craft.training") : NULL;
    cJSON *inner = cJSON_IsString(t) ? cJSON_Parse(t->valuestring) : NULL;
    if (!inner && cJSON_IsObject(t))
        inner = cJSON_Duplicate(t, 1);
    char *out = NULL;
    if (cJSON_IsObject(inner)) {
        cJSON *m = cJSON_CreateObject();
        for (const cJSON *a = inner->child; a; a = a->next)
            if (cJSON_IsNumber(a) || cJSON_IsString(a))
                cJSON_AddItemToObject(m, a->string, cJSON_Duplicate(a, 0));
        char *p = cJSON_PrintUnformatted(m);
        out = p ? store_strdup(p) : NULL;
        cJSON_free(p);
        cJSON_Delete(m);
    }
    cJSON_Delete(inner);
    cJSON_Delete(md);
    return out;
}

/* The thresholds and training date a checkpoint's metadata records. */
static void model_metadata(craft_report_model *rm, const char *metadata_json)
{
    cJSON *md = metadata_json ? cJSON_Parse(metadata_json) : NULL;
    const cJSON *t = md ? cJSON_GetObjectItemCaseSensitive(md, "thresholds") : NULL;
    cJSON *inner = cJSON_IsString(t) ? cJSON_Parse(t->valuestring) : NULL;
    if (inner)
        t = inner;
    if (cJSON_IsArray(t) && cJSON_GetArraySize(t) == rm->n_classes)
        for (int k = 0; k < rm->n_classes; k++) {
            const cJSON *v = cJSON_GetArrayItem(t, k);
            if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble <= 1)
                rm->thresholds[k] = (float)v->valuedouble;
        }
    cJSON_Delete(inner);
    const cJSON *tr = md ? cJSON_GetObjectItemCaseSensitive(md, "craft.trained") : NULL;
    if (!(rm->trained > 0) && cJSON_IsString(tr))
        rm->trained = atof(tr->valuestring);
    cJSON_Delete(md);
}

static void report_model_free(craft_report_model *m)
{
    free(m->path);
    free(m->metrics_json);
    store_free_strings(m->classes, m->n_classes);
    store_free_strings(m->modalities, m->n_modalities);
    memset(m, 0, sizeof *m);
}

static int report_model_load(craft_store *s, int64_t model_id, craft_report_model *rm, craft_error *err)
{
    memset(rm, 0, sizeof *rm);
    for (int k = 0; k < CRAFT_STORE_MAX_CLASSES; k++)
        rm->thresholds[k] = NAN;
    craft_model_info *info = NULL;
    int n = 0;
    if (craft_store_models(s, &info, &n, err))
        return err->code;
    const craft_model_info *mi = NULL;
    for (int i = 0; i < n; i++)
        if (info[i].id == model_id)
            mi = &info[i];
    if (!mi) {
        craft_model_info_free(info, n);
        return craft_fail(err, CRAFT_EINPUT, "%s: no model %lld (score the store first: craft score --db)",
                          craft_store_path(s), (long long)model_id);
    }
    craft_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = mi->config_json ? craft_config_parse(&cfg, mi->config_json, strlen(mi->config_json), err)
                             : craft_fail(err, CRAFT_EFORMAT, "no config");
    if (rc) {
        craft_error_prefix(err, "%s: store damaged: table models, model %lld", craft_store_path(s), (long long)model_id);
        craft_model_info_free(info, n);
        return rc;
    }
    rm->id = model_id;
    memcpy(rm->sha256, mi->sha256, sizeof rm->sha256);
    rm->path = dup_or_null(mi->path);
    rm->trained = mi->trained;
    rm->added = mi->added;
    rm->n_classes = cfg.n_classes < CRAFT_STORE_MAX_CLASSES ? cfg.n_classes : CRAFT_STORE_MAX_CLASSES;
    rm->classes = calloc((size_t)rm->n_classes + 1, sizeof(char *));
    rm->n_modalities = cfg.n_modalities;
    rm->modalities = calloc((size_t)cfg.n_modalities + 1, sizeof(char *));
    rm->backbone = cfg.backbone;
    for (int k = 0; rm->classes && k < rm->n_classes; k++)
        rm->classes[k] = store_strdup(cfg.classes[k]);
    for (int m = 0; rm->modalities && m < cfg.n_modalities; m++)
        rm->modalities[m] = store_strdup(cfg.modalities[m].name);
    craft_config_free(&cfg);
    /* The checkpoint itself (blob or path) holds thresholds and training metadata;
     * a report can still be made without it, from what the store recorded. */
    craft_model *model = NULL;
    craft_error lerr = {0};
    if (craft_store_model_load(s, model_id, &model, &lerr) == CRAFT_OK) {
        rm->loaded = 1;
        model_metadata(rm, model->metadata_json);
    }
    rm->metrics_json = model_metrics(mi->metrics_json, model ? model->metadata_json : NULL);
    craft_model_free(model);
    craft_model_info_free(info, n);
    if (!rm->classes || !rm->modalities) {
        report_model_free(rm);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    return CRAFT_OK;
}

/* --------------------------------------------------------- score space */

/* One pass over the predictions table: the full model (off = 0) beside the
 * backbone-only subset (every auxiliary off) of every order the model scored. */
static int space_load(craft_store *s, const craft_report_model *rm, craft_report_space *sp, craft_error *err)
{
    memset(sp, 0, sizeof *sp);
    uint32_t bb_off = 0;
    for (int m = 0; m < rm->n_modalities; m++)
        if (m != rm->backbone)
            bb_off |= 1u << m;
    sqlite3_stmt *st;
    if (store_prepare(s, &st,
                      "SELECT f.order_id, f.scores, b.scores, c.status FROM predictions f"
                      " JOIN predictions b ON b.order_id = f.order_id AND b.model_id = f.model_id AND b.off = ?2"
                      " LEFT JOIN cases c ON c.order_id = f.order_id WHERE f.model_id = ?1 AND f.off = 0"
                      " ORDER BY f.order_id",
                      err))
        return err->code;
    sqlite3_bind_int64(st, 1, rm->id);
    sqlite3_bind_int64(st, 2, bb_off);
    int K = rm->n_classes, rc;
    int64_t cap = 0;
    sp->n_classes = K;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sp->n == cap) {
            cap = cap ? cap * 2 : 1024;
            int64_t *o = realloc(sp->orders, sizeof *o * cap);
            if (o)
                sp->orders = o;
            float *x = realloc(sp->x, sizeof *x * cap * (K ? K : 1));
            if (x)
                sp->x = x;
            float *y = realloc(sp->y, sizeof *y * cap * (K ? K : 1));
            if (y)
                sp->y = y;
            uint8_t *c = realloc(sp->status, cap);
            if (c)
                sp->status = c;
            if (!o || !x || !y || !c) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        int64_t i = sp->n++;
        sp->orders[i] = sqlite3_column_int64(st, 0);
        const float *full = sqlite3_column_blob(st, 1), *bb = sqlite3_column_blob(st, 2);
        int nf = sqlite3_column_bytes(st, 1) / (int)sizeof(float), nb = sqlite3_column_bytes(st, 2) / (int)sizeof(float);
        for (int k = 0; k < K; k++) {
            sp->y[i * K + k] = full && k < nf ? full[k] : NAN;
            sp->x[i * K + k] = bb && k < nb ? bb[k] : NAN;
        }
        sp->status[i] = sqlite3_column_type(st, 3) == SQLITE_NULL ? CRAFT_CASE_N_STATUS
                                                                   : (uint8_t)sqlite3_column_int(st, 3);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(sp->orders);
        free(sp->x);
        free(sp->y);
        free(sp->status);
        memset(sp, 0, sizeof *sp);
        return rc == SQLITE_NOMEM ? craft_fail(err, CRAFT_ENOMEM, "out of memory reading the score space")
                                  : store_fail(s, err, "reading the score space");
    }
    return CRAFT_OK;
}

static void space_free(craft_report_space *sp)
{
    free(sp->orders);
    free(sp->x);
    free(sp->y);
    free(sp->status);
    memset(sp, 0, sizeof *sp);
}

/* ---------------------------------------------------------- one case */

/* The order's value of backbone token j, as shown: a number, a category or "missing". */
static void token_value(const craft_order_detail *d, const char *name, char *buf, size_t n)
{
    for (int i = 0; i < d->n_features; i++) {
        if (strcmp(d->feature_names[i], name) != 0)
            continue;
        if (d->feature_types[i] == CRAFT_CATEGORICAL)
            snprintf(buf, n, "%s", d->categories[i] ? d->categories[i] : "missing");
        else if (isnan(d->values[i]))
            snprintf(buf, n, "missing");
        else
            snprintf(buf, n, "%.6g", d->values[i]);
        return;
    }
    snprintf(buf, n, "%s", d->n_features ? "missing" : "");
}

static void fill_feature(const craft_order_detail *d, int j, craft_report_feature *f)
{
    const craft_explanation *e = &d->explanation;
    f->index = j;
    f->name = e->token_names[j];
    token_value(d, f->name, f->value, sizeof f->value);
    f->importance = e->importance ? e->importance[j] : NAN;
    f->cmis = NAN;
    f->aux = -1;
    f->max_abs_cmis = NAN;
    for (int a = 0; e->cmis && a < e->n_aux; a++) {
        float v = e->cmis[(size_t)a * e->n_tokens + j];
        if (!isnan(v) && (isnan(f->max_abs_cmis) || fabsf(v) > f->max_abs_cmis))
            f->max_abs_cmis = fabsf(v);
    }
}

/* The auxiliary with the largest (sign > 0) or smallest (sign < 0) CMIS of token j. */
static void extreme_cmis(const craft_explanation *e, int j, int sign, craft_report_feature *f)
{
    for (int a = 0; a < e->n_aux; a++) {
        float v = e->cmis[(size_t)a * e->n_tokens + j];
        if (!isnan(v) && (f->aux < 0 || (sign > 0 ? v > f->cmis : v < f->cmis))) {
            f->aux = a;
            f->cmis = v;
        }
    }
}

static void rank_features(craft_report_case *c)
{
    const craft_order_detail *d = &c->detail;
    const craft_explanation *e = &d->explanation;
    if (!d->has_explanation || !e->importance || !e->token_names)
        return;
    int T = e->n_tokens;
    /* key features: importance descending, ties to the lower index */
    int *order = malloc(sizeof(int) * (T ? T : 1));
    if (order) {
        for (int j = 0; j < T; j++)
            order[j] = j;
        for (int a = 1; a < T; a++) { /* insertion sort: T is a few hundred at most */
            int v = order[a], b = a - 1;
            while (b >= 0 && e->importance[order[b]] < e->importance[v])
                order[b + 1] = order[b], b--;
            order[b + 1] = v;
        }
        for (int i = 0; i < T && c->n_key < CRAFT_REPORT_KEY_FEATURES; i++)
            fill_feature(d, order[i], &c->key[c->n_key++]);
        free(order);
    }
    if (e->cmis && e->n_aux > 0) {
        craft_heatmap_data hd = {T, (const char *const *)e->token_names, e->n_aux, (const char *const *)e->aux_names,
                                 e->cmis, e->importance};
        int idx[CRAFT_REPORT_TOP];
        c->n_synergistic = craft_cmis_synergistic(&hd, idx, CRAFT_REPORT_TOP);
        for (int i = 0; i < c->n_synergistic; i++) {
            fill_feature(d, idx[i], &c->synergistic[i]);
            extreme_cmis(e, idx[i], 1, &c->synergistic[i]);
        }
        c->n_suppressed = craft_cmis_suppressed(&hd, idx, CRAFT_REPORT_TOP);
        for (int i = 0; i < c->n_suppressed; i++) {
            fill_feature(d, idx[i], &c->suppressed[i]);
            extreme_cmis(e, idx[i], -1, &c->suppressed[i]);
        }
        c->n_self_sufficient = craft_cmis_self_sufficient(&hd, idx, CRAFT_REPORT_TOP);
        for (int i = 0; i < c->n_self_sufficient; i++)
            fill_feature(d, idx[i], &c->self_sufficient[i]);
    }
    /* perturbation of the top class: the largest drops in size */
    if (e->perturb && c->top_class >= 0 && c->top_class < e->n_classes) {
        const float *p = e->perturb + (size_t)c->top_class * T;
        for (int j = 0; j < T; j++) {
            if (isnan(p[j]))
                continue;
            int at = c->n_drops;
            while (at > 0 && fabsf(c->drops[at - 1].drop) < fabsf(p[j]))
                at--;
            if (at >= CRAFT_REPORT_TOP)
                continue;
            int last = c->n_drops < CRAFT_REPORT_TOP ? c->n_drops : CRAFT_REPORT_TOP - 1;
            memmove(&c->drops[at + 1], &c->drops[at], sizeof c->drops[0] * (last - at));
            if (c->n_drops < CRAFT_REPORT_TOP)
                c->n_drops++;
            craft_report_drop *dr = &c->drops[at];
            dr->index = j;
            dr->name = e->token_names[j];
            token_value(d, dr->name, dr->value, sizeof dr->value);
            dr->drop = p[j];
        }
    }
}

int craft_report_case_build(craft_store *s, const craft_report_model *model, const char *order_id,
                            craft_report_case *c, craft_error *err)
{
    memset(c, 0, sizeof *c);
    c->top_class = -1;
    c->backbone_only = -1;
    if (craft_store_order_get(s, order_id, model ? model->id : 0, &c->detail, err))
        return err->code;
    const craft_order_detail *d = &c->detail;
    if (d->has_case && (craft_store_case_notes(s, d->kase.id, &c->notes, &c->n_notes, err) ||
                        craft_store_case_audit(s, d->kase.id, &c->audit, &c->n_audit, err))) {
        craft_report_case_free(c);
        return err->code;
    }
    if (d->n_predictions > 0) {
        const craft_prediction *full = &d->predictions[0];
        for (int k = 0; k < d->n_classes && k < CRAFT_STORE_MAX_CLASSES; k++)
            if (!isnan(full->scores[k]) && (c->top_class < 0 || full->scores[k] > full->scores[c->top_class]))
                c->top_class = k;
        /* backbone-only: every auxiliary switched off */
        uint32_t bb_off = 0;
        for (int m = 0; model && m < model->n_modalities; m++)
            if (m != model->backbone)
                bb_off |= 1u << m;
        for (int i = 0; i < d->n_predictions; i++)
            if (d->predictions[i].off == bb_off)
                c->backbone_only = i;
    }
    rank_features(c);
    return CRAFT_OK;
}

void craft_report_case_free(craft_report_case *c)
{
    if (!c)
        return;
    craft_order_detail_free(&c->detail);
    craft_notes_free(c->notes, c->n_notes);
    craft_audit_free(c->audit, c->n_audit);
    store_free_strings(c->rationale, c->n_rationale);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------- report */

static void progress_at(craft_report_progress_fn fn, void *user, const char *stage, int64_t done, int64_t total)
{
    if (fn)
        fn(user, stage, done, total);
}

static int push_id(char ***ids, int64_t *n, int64_t *cap, const char *id)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        char **v = realloc(*ids, sizeof(char *) * *cap);
        if (!v)
            return -1;
        *ids = v;
    }
    if (!((*ids)[*n] = store_strdup(id)))
        return -1;
    (*n)++;
    return 0;
}

static void free_ids(char **ids, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

typedef struct {
    char ***ids;
    int64_t *n, *cap, max;
    craft_report_progress_fn progress;
    void *user;
    int oom;
} SelectPages;

/* One page of the selected queue: its orders' external ids. */
static int select_page(void *u, const craft_queue_page *p)
{
    SelectPages *sp = u;
    for (int i = 0; i < p->n && *sp->n < sp->max && !sp->oom; i++)
        sp->oom = push_id(sp->ids, sp->n, sp->cap, p->rows[i].order_id) != 0;
    progress_at(sp->progress, sp->user, "selecting", *sp->n, 0);
    return sp->oom || *sp->n >= sp->max;
}

/* The external ids of the selected orders, in the selection's order. */
static int select_orders(craft_store *s, const craft_report_selection *sel, int64_t model_id, char ***ids, int64_t *n,
                         craft_report_progress_fn progress, void *user, const volatile int *cancel, craft_error *err)
{
    *ids = NULL;
    *n = 0;
    int64_t cap = 0, max = sel->max_cases > 0 ? sel->max_cases : INT64_MAX;
    if (sel->n_order_ids > 0) {
        for (int i = 0; i < sel->n_order_ids && *n < max; i++)
            if (push_id(ids, n, &cap, sel->order_ids[i])) {
                free_ids(*ids, *n);
                return craft_fail(err, CRAFT_ENOMEM, "out of memory");
            }
        return CRAFT_OK;
    }
    for (int64_t at = 0; at < sel->n_order_rows && *n < max; at += 10000) { /* by row id: their names */
        craft_queue_page p;
        int m = sel->n_order_rows - at < 10000 ? (int)(sel->n_order_rows - at) : 10000, bad = 0;
        if (craft_store_queue_rows(s, model_id, sel->order_rows + at, m, &p, err)) {
            free_ids(*ids, *n);
            return err->code;
        }
        for (int i = 0; i < p.n && *n < max && !bad; i++)
            bad = push_id(ids, n, &cap, p.rows[i].order_id);
        craft_queue_page_free(&p);
        if (bad) {
            free_ids(*ids, *n);
            return craft_fail(err, CRAFT_ENOMEM, "out of memory");
        }
    }
    if (sel->n_order_rows > 0)
        return CRAFT_OK;
    craft_queue_query q = sel->query;
    q.model_id = model_id;
    q.limit = 1000;
    SelectPages sp = {ids, n, &cap, max, progress, user, 0};
    int rc = craft_store_queue_each(s, &q, select_page, &sp, cancel, err);
    if (!rc && sp.oom)
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (rc) {
        free_ids(*ids, *n);
        *ids = NULL;
        *n = 0;
        if (rc == CRAFT_ECANCELLED)
            craft_fail(err, CRAFT_ECANCELLED, "the report was cancelled");
    }
    return rc;
}

int craft_report_build(craft_store *s, const craft_report_selection *sel, craft_report *r,
                       craft_report_progress_fn progress, void *user, const volatile int *cancel, craft_error *err)
{
    memset(r, 0, sizeof *r);
    r->generated = store_time();
    int64_t model_id = sel->model_id ? sel->model_id : sel->query.model_id;
    if (!model_id)
        model_id = craft_store_latest_model(s);
    if (!model_id)
        return craft_fail(err, CRAFT_EINPUT, "%s: no scored orders (score the store first: craft score --db)",
                          craft_store_path(s));
    r->store_path = store_strdup(craft_store_path(s));
    int named = sel->n_order_ids > 0 || sel->n_order_rows > 0;
    r->description = store_strdup(sel->description ? sel->description : named ? "named orders" : "the review queue");
    int rc = report_model_load(s, model_id, &r->model, err);
    if (!rc && !named) {
        craft_queue_query q = sel->query;
        q.model_id = model_id;
        rc = craft_store_queue_counts(s, &q, &r->counts, err);
    }
    char **ids = NULL;
    int64_t n = 0;
    if (!rc)
        rc = select_orders(s, sel, model_id, &ids, &n, progress, user, cancel, err);
    if (!rc && n == 0)
        rc = craft_fail(err, CRAFT_EINPUT, "no orders match the selection (%s) in %s", r->description,
                        craft_store_path(s));
    if (!rc)
        rc = space_load(s, &r->model, &r->space, err);
    if (!rc && !(r->cases = calloc((size_t)n, sizeof *r->cases)))
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for %lld cases", (long long)n);
    for (int64_t i = 0; !rc && i < n; i++) {
        if (cancel && *cancel) {
            rc = craft_fail(err, CRAFT_ECANCELLED, "the report was cancelled");
            break;
        }
        rc = craft_report_case_build(s, &r->model, ids[i], &r->cases[i], err);
        if (!rc) {
            r->n_cases++;
            rc = craft_report_rationale(&r->cases[i], &r->model, &r->space, err);
        }
        if (i % 16 == 15 || i + 1 == n)
            progress_at(progress, user, "gathering", i + 1, n);
    }
    free_ids(ids, n);
    if (rc)
        craft_report_free(r);
    return rc;
}

void craft_report_free(craft_report *r)
{
    if (!r)
        return;
    for (int64_t i = 0; i < r->n_cases; i++)
        craft_report_case_free(&r->cases[i]);
    free(r->cases);
    free(r->store_path);
    free(r->description);
    report_model_free(&r->model);
    space_free(&r->space);
    memset(r, 0, sizeof *r);
}
