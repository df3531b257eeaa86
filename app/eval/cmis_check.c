/* cmis_check.c: does CMIS point at the features a generator planted?
 *
 * `craft synth` writes FILE.truth.json beside its orders: per class, the tabular feature of
 * the cross-modal conjunction (synergistic with txt and graph) and the feature whose signal
 * the text explains away (suppressed by txt). For every such (class, feature, modality) this
 * compares, order by order, the planted feature's CMIS with the CMIS of every feature the
 * truth does not name at all, on three populations: the class's positive orders, the orders
 * where the planted tabular condition holds, and the positives where it holds (docs/EVAL.md, "CMIS against planted truth").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eval.h"

#define CMIS_BATCH 256

/* ------------------------------------------------------- per-order ranks */

void craft_cmis_rank(const float *cmis, int planted, const int *others, int n_others, int direction,
                     craft_cmis_order_stat *st)
{
    const float p = cmis[planted];
    double beat = 0, beat_abs = 0;
    int n = 0, ahead = 0;
    for (int i = 0; i < n_others; i++) {
        float o = cmis[others[i]];
        if (isnan(o))
            continue;
        n++;
        float dp = direction * p, dq = direction * o; /* larger is "more planted-like" */
        beat += dp > dq ? 1.0 : dp == dq ? 0.5 : 0.0;
        ahead += dq > dp;
        float ap = fabsf(p), ao = fabsf(o);
        beat_abs += ap > ao ? 1.0 : ap == ao ? 0.5 : 0.0;
    }
    st->valid = n > 0 && !isnan(p);
    st->auc = st->valid ? beat / n : NAN;
    st->auc_abs = st->valid ? beat_abs / n : NAN;
    st->rank = st->valid ? ahead + 1 : 0;
}

/* ---------------------------------------------------------- the truth file */

/* "del_scan_gap_max_h >= 30", "ful_customs_status == \"held\"": the planted tabular
 * condition, as the generator writes it. */
static int parse_rule(craft_eval_cmis_cell *c, const craft_config *cfg, const craft_modality *tm, const char *rule,
                      craft_error *err)
{
    char name[128], op[4], value[128];
    if (sscanf(rule, "%127s %3s %127[^\n]", name, op, value) != 3)
        return craft_fail(err, CRAFT_EFORMAT, "rule \"%s\" is not \"FEATURE OP VALUE\"", rule);
    static const char *ops[] = {">=", ">", "<=", "<", "==", "="};
    c->rule_op = -1;
    for (int i = 0; i < 6; i++)
        if (!strcmp(op, ops[i]))
            c->rule_op = i < 4 ? i : 4;
    if (c->rule_op < 0)
        return craft_fail(err, CRAFT_EFORMAT, "rule \"%s\": unknown operator \"%s\"", rule, op);
    if (strcmp(name, tm->features[c->feature].name))
        return craft_fail(err, CRAFT_EFORMAT, "rule \"%s\" is about \"%s\", not \"%s\"", rule, name,
                          tm->features[c->feature].name);
    const craft_feature *f = &tm->features[c->feature];
    size_t len = strlen(value);
    if (f->type == CRAFT_CATEGORICAL) {
        if (c->rule_op != 4 || len < 2 || value[0] != '"' || value[len - 1] != '"')
            return craft_fail(err, CRAFT_EFORMAT, "rule \"%s\": a categorical feature needs == \"VALUE\"", rule);
        value[len - 1] = '\0';
        int code = craft_category_code(cfg, f, value + 1);
        if (code >= cfg->bins) /* the unseen bin holds every other unseen value too */
            return craft_fail(err, CRAFT_EINPUT, "rule \"%s\": \"%s\" is not in the model's vocabulary of \"%s\"",
                              rule, value + 1, f->name);
        c->rule_value = (float)code;
    } else {
        char *end;
        c->rule_value = strtof(value, &end);
        if (end == value || *end)
            return craft_fail(err, CRAFT_EFORMAT, "rule \"%s\": \"%s\" is not a number", rule, value);
    }
    return CRAFT_OK;
}

/* Does order value x meet the cell's planted condition? Missing never does. */
static int rule_holds(const craft_eval_cmis_cell *c, float x)
{
    if (isnan(x))
        return 0;
    switch (c->rule_op) {
    case 0: return x >= c->rule_value;
    case 1: return x > c->rule_value;
    case 2: return x <= c->rule_value;
    case 3: return x < c->rule_value;
    default: return x == c->rule_value;
    }
}

static int feature_index(const craft_modality *tm, const char *name)
{
    for (int j = 0; j < tm->n_features; j++)
        if (!strcmp(tm->features[j].name, name))
            return j;
    return -1;
}

/* Adds one cell per population for (class k, planted item, modality name). */
static int add_cells(craft_eval_cmis_check *out, const craft_config *cfg, int k, const cJSON *item, const char *kind,
                     int direction, const char *modality, craft_error *err)
{
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    const cJSON *feat = cJSON_GetObjectItemCaseSensitive(item, "feature");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(item, "rule");
    if (!cJSON_IsString(feat) || !cJSON_IsString(rule))
        return craft_fail(err, CRAFT_EFORMAT, "class %s: a %s entry needs \"feature\" and \"rule\" strings",
                          cfg->classes[k], kind);
    int j = feature_index(tm, feat->valuestring);
    if (j < 0)
        return craft_fail(err, CRAFT_EINPUT, "class %s: %s feature \"%s\" is not a feature of the model's \"%s\"",
                          cfg->classes[k], kind, feat->valuestring, tm->name);
    int mm = craft_config_find_modality(cfg, modality);
    if (mm < 0 || mm == cfg->backbone)
        return CRAFT_OK; /* the model has no such auxiliary: nothing to measure */
    for (int pop = 0; pop < CRAFT_CMIS_POPULATIONS; pop++) {
        if (out->n == out->cap) {
            int cap = out->cap ? 2 * out->cap : 16;
            craft_eval_cmis_cell *c = realloc(out->cell, sizeof *c * (size_t)cap);
            if (!c)
                return craft_fail(err, CRAFT_ENOMEM, "out of memory");
            out->cell = c, out->cap = cap;
        }
        craft_eval_cmis_cell *c = &out->cell[out->n];
        memset(c, 0, sizeof *c);
        c->cls = k, c->feature = j, c->modality = mm, c->direction = direction;
        c->kind = kind;
        c->population = pop;
        snprintf(c->rule, sizeof c->rule, "%s", rule->valuestring);
        int rc = parse_rule(c, cfg, tm, rule->valuestring, err);
        if (rc) {
            craft_error_prefix(err, "class %s", cfg->classes[k]);
            return rc;
        }
        out->n++;
    }
    return CRAFT_OK;
}

/* Every feature the truth names (in any role, for any class) is not an "other". */
static void mark_named(const cJSON *list, const craft_modality *tm, unsigned char *named)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "feature");
        int j = cJSON_IsString(f) ? feature_index(tm, f->valuestring) : -1;
        if (j >= 0)
            named[j] = 1;
    }
}

static int parse_truth(craft_eval_cmis_check *out, const craft_config *cfg, const cJSON *root, unsigned char *named,
                       craft_error *err)
{
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "craft-synth-truth"))
        return craft_fail(err, CRAFT_EFORMAT, "not a craft synth truth file (\"format\" is not \"craft-synth-truth\")");
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(root, "classes");
    if (!cJSON_IsObject(classes))
        return craft_fail(err, CRAFT_EFORMAT, "no \"classes\" object");
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    const cJSON *c;
    cJSON_ArrayForEach(c, classes) {
        const char *roles[] = {"self_sufficient", "synergistic", "suppressed"};
        for (int r = 0; r < 3; r++)
            mark_named(cJSON_GetObjectItemCaseSensitive(c, roles[r]), tm, named);
        int k = -1;
        for (int i = 0; i < cfg->n_classes; i++)
            if (!strcmp(cfg->classes[i], c->string))
                k = i;
        if (k < 0)
            continue; /* a class the model does not predict */
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(c, "synergistic")) {
            const cJSON *mods = cJSON_GetObjectItemCaseSensitive(it, "modalities"), *mo;
            if (!cJSON_IsArray(mods))
                return craft_fail(err, CRAFT_EFORMAT, "class %s: a synergistic entry needs \"modalities\"", c->string);
            cJSON_ArrayForEach(mo, mods) {
                int rc = cJSON_IsString(mo) ? add_cells(out, cfg, k, it, "synergistic", +1, mo->valuestring, err)
                                            : craft_fail(err, CRAFT_EFORMAT, "class %s: modality names are strings",
                                                         c->string);
                if (rc)
                    return rc;
            }
        }
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(c, "suppressed")) {
            const cJSON *mo = cJSON_GetObjectItemCaseSensitive(it, "modality");
            int rc = cJSON_IsString(mo) ? add_cells(out, cfg, k, it, "suppressed", -1, mo->valuestring, err)
                                        : craft_fail(err, CRAFT_EFORMAT, "class %s: a suppressed entry needs \"modality\"",
                                                     c->string);
            if (rc)
                return rc;
        }
    }
    if (out->n == 0)
        return craft_fail(err, CRAFT_EINPUT, "no synergistic or suppressed feature of the truth file concerns this "
                                             "model's classes and auxiliary modalities");
    return CRAFT_OK;
}

/* -------------------------------------------------------------- the run */

const char *craft_cmis_population_name(int population)
{
    static const char *names[CRAFT_CMIS_POPULATIONS] = {"positives", "rule holds", "positive+rule"};
    return population >= 0 && population < CRAFT_CMIS_POPULATIONS ? names[population] : "?";
}

void craft_eval_cmis_check_free(craft_eval_cmis_check *t)
{
    free(t->cell);
    free(t->truth);
    memset(t, 0, sizeof *t);
}

/* Adds order i's ranks to every cell whose population it belongs to. */
static void accumulate(craft_eval_cmis_check *out, const craft_config *cfg, const craft_result *r, int i,
                       const float *tab, const float *labels, const int *others)
{
    const int M = r->M, T = r->T, K = cfg->n_classes, F = cfg->modalities[cfg->tabular].n_features;
    for (int c = 0; c < out->n; c++) {
        craft_eval_cmis_cell *cell = &out->cell[c];
        int positive = labels[(size_t)i * K + cell->cls] == 1.0f;
        int holds = rule_holds(cell, tab[(size_t)i * F + cell->feature]);
        int in = cell->population == 0 ? positive : cell->population == 1 ? holds : positive && holds;
        if (!in || !(r->used[i] >> cell->modality & 1u))
            continue;
        const float *cm = r->cmis + ((size_t)i * M + cell->modality) * T;
        craft_cmis_order_stat st;
        craft_cmis_rank(cm, cell->feature, others, out->n_others, cell->direction, &st);
        if (!st.valid)
            continue;
        double others_sum = 0, others_abs = 0;
        for (int o = 0; o < out->n_others; o++)
            others_sum += cm[others[o]], others_abs += fabsf(cm[others[o]]);
        cell->n_orders++;
        cell->planted_mean += cm[cell->feature];
        cell->planted_abs += fabsf(cm[cell->feature]);
        cell->others_mean += others_sum / out->n_others;
        cell->others_abs += others_abs / out->n_others;
        cell->auc += st.auc;
        cell->auc_abs += st.auc_abs;
        cell->top5 += st.rank <= 5;
    }
}

/* ------------------------------------------------------ interaction score */

#define INT_OTHERS 16 /* other features whose interaction sign sets each cell's chance level */

/* The interaction score of the cells' planted features and of a fixed sample of the other
 * features, on the orders of any cell's population: for each feature j, one engine pass with j
 * missing, every auxiliary switched off in turn (the requests share the backbone pass). */
static int interaction_pass(craft_eval_cmis_check *out, const craft_model *m, const craft_eval_set *s,
                            const int *others, int threads, craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    const int K = cfg->n_classes, M = cfg->n_modalities, F = cfg->modalities[cfg->tabular].n_features;
    const int cap = CMIS_BATCH;
    int feats[64 + INT_OTHERS], nf = 0, n_sample = 0;
    for (int c = 0; c < out->n && nf < 64; c++) {
        int seen = 0;
        for (int i = 0; i < nf; i++)
            seen |= feats[i] == out->cell[c].feature;
        if (!seen)
            feats[nf++] = out->cell[c].feature;
    }
    const int n_planted = nf;
    for (int i = 0; i < INT_OTHERS && i < out->n_others; i++, n_sample++)
        feats[nf++] = others[(size_t)i * out->n_others / (INT_OTHERS < out->n_others ? INT_OTHERS : out->n_others)];
    /* requests: 0 all on; 1 + m: m off (m auxiliary) */
    craft_request req[CRAFT_MAX_MODALITIES];
    int nreq = 0, req_of[CRAFT_MAX_MODALITIES];
    req[nreq++] = (craft_request){0};
    for (int mm = 0; mm < M; mm++) {
        req_of[mm] = -1;
        if (mm != cfg->backbone) {
            req_of[mm] = nreq;
            req[nreq++] = (craft_request){.off_mask = 1u << mm};
        }
    }
    int *rows = malloc(sizeof(int) * (size_t)(s->b.n ? s->b.n : 1));
    float *base = malloc(sizeof(float) * (size_t)cap * K * nreq);
    float *drop = malloc(sizeof(float) * (size_t)cap * K * nreq * nf);
    craft_result res[CRAFT_MAX_MODALITIES];
    memset(res, 0, sizeof res);
    craft_batch b;
    memset(&b, 0, sizeof b);
    craft_engine *eng = NULL;
    int rc = rows && base && drop ? CRAFT_OK : craft_fail(err, CRAFT_ENOMEM, "out of memory");
    /* the orders of some cell's population */
    int nrows = 0;
    for (int i = 0; !rc && i < s->b.n; i++) {
        int in = 0;
        for (int c = 0; c < out->n && !in; c++) {
            const craft_eval_cmis_cell *cell = &out->cell[c];
            int positive = s->b.labels[(size_t)i * K + cell->cls] == 1.0f;
            int holds = rule_holds(cell, s->b.tab[(size_t)i * F + cell->feature]);
            in = cell->population == 0 ? positive : cell->population == 1 ? holds : positive && holds;
        }
        if (in)
            rows[nrows++] = i;
    }
    if (!rc)
        rc = craft_batch_init(&b, cfg, cap, err);
    for (int r = 0; !rc && r < nreq; r++)
        rc = craft_result_init(&res[r], cfg, cap, &req[r], err);
    if (!rc)
        rc = craft_engine_new(&eng, m, cap, threads, err);
    double *others_right = calloc((size_t)out->n, sizeof(double));
    double *others_n = calloc((size_t)out->n, sizeof(double));
    if (!rc && (!others_right || !others_n))
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    for (int start = 0; !rc && start < nrows; start += cap) {
        const int n = nrows - start < cap ? nrows - start : cap;
        craft_eval_set_gather(s, rows + start, n, &b);
        if ((rc = craft_engine_run(eng, &b, req, nreq, res, err)))
            break;
        for (int r = 0; r < nreq; r++)
            memcpy(base + (size_t)r * cap * K, res[r].scores, sizeof(float) * (size_t)n * K);
        for (int f = 0; !rc && f < nf; f++) {
            const int j = feats[f];
            for (int i = 0; i < n; i++)
                b.tab[(size_t)i * F + j] = NAN;
            if ((rc = craft_engine_run(eng, &b, req, nreq, res, err)))
                break;
            for (int r = 0; r < nreq; r++)
                memcpy(drop + ((size_t)f * nreq + r) * cap * K, res[r].scores, sizeof(float) * (size_t)n * K);
            for (int i = 0; i < n; i++)
                b.tab[(size_t)i * F + j] = s->b.tab[(size_t)rows[start + i] * F + j];
        }
        if (rc)
            break;
        for (int i = 0; i < n; i++) {
            const int row = rows[start + i];
            for (int c = 0; c < out->n; c++) {
                craft_eval_cmis_cell *cell = &out->cell[c];
                const int k = cell->cls, ro = req_of[cell->modality];
                int positive = s->b.labels[(size_t)row * K + k] == 1.0f;
                int holds = rule_holds(cell, s->b.tab[(size_t)row * F + cell->feature]);
                int in = cell->population == 0 ? positive : cell->population == 1 ? holds : positive && holds;
                if (!in || ro < 0 || !(res[0].used[i] >> cell->modality & 1u))
                    continue;
                const float sa = base[(size_t)i * K + k], sm = base[((size_t)ro * cap + i) * K + k];
                for (int f = 0; f < nf; f++) {
                    if (f < n_planted && feats[f] != cell->feature)
                        continue;
                    const float sj = drop[(((size_t)f * nreq) * cap + i) * K + k];
                    const float sjm = drop[(((size_t)f * nreq + ro) * cap + i) * K + k];
                    const double I = (double)(sa - sj) - (double)(sm - sjm);
                    const int right = cell->direction * I > 0;
                    if (f < n_planted) {
                        cell->int_orders++;
                        cell->int_right += right;
                    } else {
                        others_n[c]++;
                        others_right[c] += right;
                    }
                }
            }
        }
    }
    for (int c = 0; !rc && c < out->n; c++) {
        craft_eval_cmis_cell *cell = &out->cell[c];
        cell->int_right = cell->int_orders ? cell->int_right / cell->int_orders : NAN;
        cell->int_others_right = others_n[c] ? others_right[c] / others_n[c] : NAN;
    }
    (void)n_sample;
    free(others_right);
    free(others_n);
    craft_engine_free(eng);
    for (int r = 0; r < nreq; r++)
        craft_result_free(&res[r]);
    craft_batch_free(&b);
    free(rows);
    free(base);
    free(drop);
    return rc;
}

static void summarize(craft_eval_cmis_check *out)
{
    memset(out->summary, 0, sizeof out->summary);
    for (int c = 0; c < out->n; c++) {
        craft_eval_cmis_cell *cell = &out->cell[c];
        double n = cell->n_orders;
        if (n == 0) {
            cell->planted_mean = cell->planted_abs = cell->others_mean = cell->others_abs = NAN;
            cell->auc = cell->auc_abs = cell->top5 = NAN;
            continue;
        }
        cell->planted_mean /= n, cell->planted_abs /= n, cell->others_mean /= n, cell->others_abs /= n;
        cell->auc /= n, cell->auc_abs /= n, cell->top5 /= n;
        craft_eval_cmis_summary *s = &out->summary[cell->direction < 0][cell->population];
        s->cells++;
        s->above_chance += cell->auc > 0.5;
        s->mean_auc += cell->auc;
        s->mean_auc_abs += cell->auc_abs;
        s->mean_top5 += cell->top5;
        s->mean_int_right += cell->int_right;
        s->mean_int_others += cell->int_others_right;
    }
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < CRAFT_CMIS_POPULATIONS; b++) {
            craft_eval_cmis_summary *s = &out->summary[a][b];
            if (s->cells)
                s->mean_auc /= s->cells, s->mean_auc_abs /= s->cells, s->mean_top5 /= s->cells,
                    s->mean_int_right /= s->cells, s->mean_int_others /= s->cells;
            else
                s->mean_auc = s->mean_auc_abs = s->mean_top5 = s->mean_int_right = s->mean_int_others = NAN;
        }
}

int craft_eval_cmis_check_run(craft_eval_cmis_check *out, const craft_model *m, const craft_eval_set *s,
                              const char *truth_json, const char *truth_name, int threads, craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    memset(out, 0, sizeof *out);
    if (cfg->tabular < 0 || cfg->backbone != cfg->tabular)
        return craft_fail(err, CRAFT_EUNSUPPORTED, "the CMIS check needs a tabular backbone (CMIS ranks its features)");
    const int F = cfg->modalities[cfg->tabular].n_features;
    out->truth = strdup(truth_name ? truth_name : "");
    cJSON *root = cJSON_Parse(truth_json);
    unsigned char *named = calloc((size_t)F, 1);
    int *others = malloc(sizeof(int) * (size_t)F);
    int rc = !out->truth || !named || !others ? craft_fail(err, CRAFT_ENOMEM, "out of memory") : CRAFT_OK;
    if (!rc && !root)
        rc = craft_fail(err, CRAFT_EFORMAT, "not JSON (near byte %ld)",
                        (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - truth_json : 0));
    if (!rc)
        rc = parse_truth(out, cfg, root, named, err);
    if (rc && truth_name)
        craft_error_prefix(err, "%s", truth_name);
    for (int j = 0; !rc && j < F; j++)
        if (!named[j])
            others[out->n_others++] = j;
    if (!rc && out->n_others == 0)
        rc = craft_fail(err, CRAFT_EINPUT, "%s names every feature: nothing to compare with", truth_name);
    craft_engine *eng = NULL;
    craft_result res;
    memset(&res, 0, sizeof res);
    craft_request req = {.off_mask = 0, .cmis = 1};
    const int cap = s->b.n < CMIS_BATCH ? (s->b.n > 0 ? s->b.n : 1) : CMIS_BATCH;
    if (!rc)
        rc = craft_engine_new(&eng, m, cap, threads, err);
    if (!rc)
        rc = craft_result_init(&res, cfg, cap, &req, err);
    for (int start = 0; !rc && start < s->b.n; start += cap) {
        int n = s->b.n - start < cap ? s->b.n - start : cap;
        craft_batch view;
        craft_eval_set_view(s, start, n, &view);
        if ((rc = craft_engine_run(eng, &view, &req, 1, &res, err))) {
            craft_error_prefix(err, "order %s (or one of the %d after it)", s->ids[start], n - 1);
            break;
        }
        for (int i = 0; i < n; i++)
            accumulate(out, cfg, &res, i, view.tab, view.labels, others);
    }
    out->n_orders = s->b.n;
    out->top5_chance = 5.0 / (out->n_others + 1);
    if (!rc)
        rc = interaction_pass(out, m, s, others, threads, err);
    if (!rc)
        summarize(out);
    craft_result_free(&res);
    craft_engine_free(eng);
    cJSON_Delete(root);
    free(named);
    free(others);
    if (rc)
        craft_eval_cmis_check_free(out);
    return rc;
}
