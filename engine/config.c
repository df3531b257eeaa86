/* config.c: the "craft.config" JSON of a checkpoint: parse, validate, serialize. */
#include "craft.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that keep every size computation far from overflow. */
#define MAX_WIDTH 65536
#define MAX_FEATURES 100000
#define MAX_EMB_DIM (1 << 20)
#define MAX_TOKENS 65536
#define MAX_CLASSES 4096

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int get_int(const cJSON *obj, const char *key, int lo, int hi, int *out, int required,
                   craft_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (!required)
            return CRAFT_OK;
        return craft_fail(err, CRAFT_EFORMAT, "config: missing \"%s\"", key);
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return craft_fail(err, CRAFT_EFORMAT, "config: \"%s\" must be an integer", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return craft_fail(err, CRAFT_EFORMAT, "config: \"%s\" = %g is outside %d..%d", key,
                          v->valuedouble, lo, hi);
    *out = (int)v->valuedouble;
    return CRAFT_OK;
}

/* Duplicate keys are legal JSON for cJSON but ambiguous for us: refuse them. */
static int check_unique_keys(const cJSON *obj, const char *where, craft_error *err)
{
    for (const cJSON *a = obj ? obj->child : NULL; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return craft_fail(err, CRAFT_EFORMAT, "config: duplicate key \"%s\" in %s",
                                  a->string, where);
    return CRAFT_OK;
}

static int parse_strings(const cJSON *arr, const char *what, int max, char ***out, int *n,
                         craft_error *err)
{
    if (!cJSON_IsArray(arr))
        return craft_fail(err, CRAFT_EFORMAT, "config: %s must be an array of strings", what);
    int count = cJSON_GetArraySize(arr);
    if (count > max)
        return craft_fail(err, CRAFT_EFORMAT, "config: %s has %d entries (at most %d)", what,
                          count, max);
    char **s = calloc(count ? (size_t)count : 1, sizeof *s);
    if (!s)
        return craft_fail(err, CRAFT_ENOMEM, "config: out of memory");
    *out = s;
    *n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsString(v) || !v->valuestring[0])
            return craft_fail(err, CRAFT_EFORMAT, "config: %s entry %d is not a non-empty string",
                              what, *n);
        for (int j = 0; j < *n; j++)
            if (strcmp(s[j], v->valuestring) == 0)
                return craft_fail(err, CRAFT_EFORMAT, "config: %s has \"%s\" twice", what,
                                  v->valuestring);
        if (!(s[*n] = dupstr(v->valuestring)))
            return craft_fail(err, CRAFT_ENOMEM, "config: out of memory");
        (*n)++;
    }
    return CRAFT_OK;
}

/* The built-in encoders' optional keys of a modality (docs/ENCODERS.md):
 * "entity_types" on the embedding modality "graph" (the graph encoder's types;
 * then dim must be T x (1 + K + 10)), "text_tokens" on the embedding modality
 * "txt" ("vector", the default, "fields" or "events"; the last two need dim 256).
 * Absent keys keep today's encoders. */
#define ENCODER_GRAPH_SKETCH 10 /* CRAFT_GRAPH_SKETCH of app/data/encoders.h */
#define ENCODER_TEXT_DIM 256    /* CRAFT_TEXT_DIM of app/data/encoders.h */

static cJSON *strings_json(char **s, int n);

static int parse_encoder_keys(const craft_config *cfg, craft_modality *m, const cJSON *j, craft_error *err)
{
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(j, "entity_types");
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(j, "text_tokens");
    if (types && !cJSON_IsNull(types)) {
        if (m->kind != CRAFT_EMBEDDING || strcmp(m->name, "graph") != 0)
            return craft_fail(err, CRAFT_EFORMAT,
                              "config: modality \"%s\": \"entity_types\" belongs to the embedding modality \"graph\"",
                              m->name);
        int rc = parse_strings(types, "\"entity_types\" of modality \"graph\"", CRAFT_MAX_ENTITY_TYPES,
                               &m->entity_types, &m->n_entity_types, err);
        if (rc)
            return rc;
        if (m->n_entity_types < 1)
            return craft_fail(err, CRAFT_EFORMAT, "config: modality \"graph\": \"entity_types\" is empty");
        long want = (long)m->n_entity_types * (1 + cfg->n_classes + ENCODER_GRAPH_SKETCH);
        if (m->dim != want)
            return craft_fail(err, CRAFT_EFORMAT,
                              "config: modality \"graph\": %d entity types and %d classes need \"dim\" %d x (1 + %d + %d)"
                              " = %ld, not %d",
                              m->n_entity_types, cfg->n_classes, m->n_entity_types, cfg->n_classes,
                              ENCODER_GRAPH_SKETCH, want, m->dim);
    }
    if (tt && !cJSON_IsNull(tt)) {
        if (m->kind != CRAFT_EMBEDDING || strcmp(m->name, "txt") != 0)
            return craft_fail(err, CRAFT_EFORMAT,
                              "config: modality \"%s\": \"text_tokens\" belongs to the embedding modality \"txt\"",
                              m->name);
        const char *v = cJSON_IsString(tt) ? tt->valuestring : "";
        if (strcmp(v, "vector") == 0)
            m->text_tokens = CRAFT_TEXT_VECTOR;
        else if (strcmp(v, "fields") == 0)
            m->text_tokens = CRAFT_TEXT_FIELDS;
        else if (strcmp(v, "events") == 0)
            m->text_tokens = CRAFT_TEXT_EVENTS;
        else
            return craft_fail(err, CRAFT_EFORMAT,
                              "config: modality \"txt\": \"text_tokens\" must be \"vector\", \"fields\" or \"events\"");
        if (m->text_tokens != CRAFT_TEXT_VECTOR && m->dim != ENCODER_TEXT_DIM)
            return craft_fail(err, CRAFT_EFORMAT,
                              "config: modality \"txt\": \"text_tokens\": \"%s\" encodes rows %d wide, but \"dim\" is %d",
                              v, ENCODER_TEXT_DIM, m->dim);
    }
    return CRAFT_OK;
}

/* Writes the keys of parse_encoder_keys back, only where they differ from the default. */
static void encoder_keys_json(const craft_modality *m, cJSON *mj)
{
    static const char *const tt[] = {"vector", "fields", "events"};
    if (m->n_entity_types > 0)
        cJSON_AddItemToObject(mj, "entity_types", strings_json(m->entity_types, m->n_entity_types));
    if (m->text_tokens > CRAFT_TEXT_VECTOR && m->text_tokens <= CRAFT_TEXT_EVENTS)
        cJSON_AddStringToObject(mj, "text_tokens", tt[m->text_tokens]);
}

static int parse_modality(craft_config *cfg, craft_modality *m, const cJSON *j, int index,
                          craft_error *err)
{
    char where[64];
    snprintf(where, sizeof where, "modalities[%d]", index);
    if (!cJSON_IsObject(j))
        return craft_fail(err, CRAFT_EFORMAT, "config: %s is not an object", where);
    int rc = check_unique_keys(j, where, err);
    if (rc)
        return rc;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    if (!cJSON_IsString(name) || !name->valuestring[0] || strlen(name->valuestring) > 40)
        return craft_fail(err, CRAFT_EFORMAT, "config: %s needs a \"name\" (1-40 characters)", where);
    for (const char *c = name->valuestring; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return craft_fail(err, CRAFT_EFORMAT, "config: modality name \"%s\" may hold only letters, digits, '_' and '-'",
                              name->valuestring);
    if (!(m->name = dupstr(name->valuestring)))
        return craft_fail(err, CRAFT_ENOMEM, "config: out of memory");
    if (!cJSON_IsString(kind))
        return craft_fail(err, CRAFT_EFORMAT, "config: modality \"%s\" needs a \"kind\"", m->name);
    if (strcmp(kind->valuestring, "tabular") == 0) {
        m->kind = CRAFT_TABULAR;
        const cJSON *feats = cJSON_GetObjectItemCaseSensitive(j, "features");
        if (!cJSON_IsArray(feats) || cJSON_GetArraySize(feats) < 1)
            return craft_fail(err, CRAFT_EFORMAT, "config: tabular modality \"%s\" needs a non-empty \"features\" array",
                              m->name);
        int nf = cJSON_GetArraySize(feats);
        if (nf > MAX_FEATURES)
            return craft_fail(err, CRAFT_EFORMAT, "config: %d features (at most %d)", nf, MAX_FEATURES);
        m->features = calloc((size_t)nf, sizeof *m->features);
        if (!m->features)
            return craft_fail(err, CRAFT_ENOMEM, "config: out of memory");
        const cJSON *f;
        cJSON_ArrayForEach(f, feats) {
            craft_feature *ft = &m->features[m->n_features];
            const cJSON *fname = cJSON_GetObjectItemCaseSensitive(f, "name");
            const cJSON *ftype = cJSON_GetObjectItemCaseSensitive(f, "type");
            if (!cJSON_IsObject(f) || !cJSON_IsString(fname) || !fname->valuestring[0])
                return craft_fail(err, CRAFT_EFORMAT, "config: feature %d needs a \"name\"", m->n_features);
            if ((rc = check_unique_keys(f, fname->valuestring, err)))
                return rc;
            if (!(ft->name = dupstr(fname->valuestring)))
                return craft_fail(err, CRAFT_ENOMEM, "config: out of memory");
            m->n_features++;
            if (!cJSON_IsString(ftype))
                return craft_fail(err, CRAFT_EFORMAT, "config: feature \"%s\" needs a \"type\"", ft->name);
            if (strcmp(ftype->valuestring, "numeric") == 0) {
                ft->type = CRAFT_NUMERIC;
            } else if (strcmp(ftype->valuestring, "categorical") == 0) {
                ft->type = CRAFT_CATEGORICAL;
                const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(f, "vocab");
                char what[160];
                snprintf(what, sizeof what, "vocab of feature \"%.100s\"", ft->name);
                if (vocab) {
                    if ((rc = parse_strings(vocab, what, cfg->bins - 1, &ft->vocab, &ft->n_vocab, err)))
                        return rc;
                }
            } else {
                return craft_fail(err, CRAFT_EFORMAT, "config: feature \"%s\" has type \"%s\" (numeric or categorical)",
                                  ft->name, ftype->valuestring);
            }
            for (int k = 0; k < m->n_features - 1; k++)
                if (strcmp(m->features[k].name, ft->name) == 0)
                    return craft_fail(err, CRAFT_EFORMAT, "config: feature \"%s\" appears twice", ft->name);
        }
        m->tokens = m->n_features;
        m->dim = 3 * cfg->emb_dim;
    } else if (strcmp(kind->valuestring, "embedding") == 0) {
        m->kind = CRAFT_EMBEDDING;
        m->tokens = 1;
        if ((rc = get_int(j, "dim", 1, MAX_EMB_DIM, &m->dim, 1, err)) ||
            (rc = get_int(j, "tokens", 1, MAX_TOKENS, &m->tokens, 0, err))) {
            craft_error_prefix(err, "modality \"%s\"", m->name);
            return rc;
        }
    } else {
        return craft_fail(err, CRAFT_EFORMAT, "config: modality \"%s\" has kind \"%s\" (tabular or embedding)",
                          m->name, kind->valuestring);
    }
    return parse_encoder_keys(cfg, m, j, err);
}

/* "calibration": {"a": [K numbers], "b": [K numbers]}, every a_k > 0 (a score's order
 * within a class is kept). */
static int parse_calibration(craft_config *cfg, const cJSON *c, craft_error *err)
{
    if (!c)
        return CRAFT_OK;
    const int K = cfg->n_classes;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, "a"), *b = cJSON_GetObjectItemCaseSensitive(c, "b");
    if (!cJSON_IsObject(c) || !cJSON_IsArray(a) || !cJSON_IsArray(b) || cJSON_GetArraySize(a) != K ||
        cJSON_GetArraySize(b) != K)
        return craft_fail(err, CRAFT_EFORMAT, "config: \"calibration\" must hold \"a\" and \"b\", %d numbers each", K);
    cfg->calib_a = malloc(sizeof(float) * K);
    cfg->calib_b = malloc(sizeof(float) * K);
    if (!cfg->calib_a || !cfg->calib_b)
        return craft_fail(err, CRAFT_ENOMEM, "config: out of memory");
    for (int k = 0; k < K; k++) {
        const cJSON *ak = cJSON_GetArrayItem(a, k), *bk = cJSON_GetArrayItem(b, k);
        if (!cJSON_IsNumber(ak) || !cJSON_IsNumber(bk) || !(ak->valuedouble > 0 && ak->valuedouble < 1e6) ||
            !(fabs(bk->valuedouble) < 1e6))
            return craft_fail(err, CRAFT_EFORMAT,
                              "config: calibration of class %d: a must lie in (0, 1e6) and |b| below 1e6", k);
        cfg->calib_a[k] = (float)ak->valuedouble;
        cfg->calib_b[k] = (float)bk->valuedouble;
    }
    return CRAFT_OK;
}

int craft_config_parse(craft_config *cfg, const char *json, size_t len, craft_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->tabular = -1;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        return craft_fail(err, CRAFT_EFORMAT, "config: not valid JSON");
    int rc = CRAFT_OK;
    if (!cJSON_IsObject(root)) {
        rc = craft_fail(err, CRAFT_EFORMAT, "config: not a JSON object");
        goto done;
    }
    if ((rc = check_unique_keys(root, "the config", err)))
        goto done;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "craft-model") != 0) {
        rc = craft_fail(err, CRAFT_EFORMAT, "config: \"format\" is not \"craft-model\"");
        goto done;
    }
    int version = 0;
    if ((rc = get_int(root, "version", 1, 1, &version, 1, err)) ||
        (rc = get_int(root, "d_model", 1, MAX_WIDTH, &cfg->d_model, 1, err)) ||
        (rc = get_int(root, "heads", 1, MAX_WIDTH, &cfg->heads, 1, err)) ||
        (rc = get_int(root, "layers", 1, CRAFT_MAX_LAYERS, &cfg->layers, 1, err)) ||
        (rc = get_int(root, "ffn_mult", 1, 64, &cfg->ffn_mult, 1, err)) ||
        (rc = get_int(root, "topk", 1, MAX_TOKENS, &cfg->topk, 1, err)) ||
        (rc = get_int(root, "route_dim", 1, MAX_WIDTH, &cfg->route_dim, 1, err)) ||
        (rc = get_int(root, "bins", 2, MAX_WIDTH, &cfg->bins, 1, err)) ||
        (rc = get_int(root, "emb_dim", 1, MAX_WIDTH, &cfg->emb_dim, 1, err)))
        goto done;
    if (cfg->d_model % cfg->heads) {
        rc = craft_fail(err, CRAFT_EFORMAT, "config: d_model %d is not a multiple of heads %d",
                        cfg->d_model, cfg->heads);
        goto done;
    }
    if ((size_t)cfg->d_model * cfg->ffn_mult > MAX_WIDTH) {
        rc = craft_fail(err, CRAFT_EFORMAT, "config: ffn width d_model*ffn_mult is too large");
        goto done;
    }
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(root, "task");
    if (cJSON_IsString(task) && strcmp(task->valuestring, "multilabel") == 0)
        cfg->task = CRAFT_MULTILABEL;
    else if (cJSON_IsString(task) && strcmp(task->valuestring, "multiclass") == 0)
        cfg->task = CRAFT_MULTICLASS;
    else {
        rc = craft_fail(err, CRAFT_EFORMAT, "config: \"task\" must be \"multilabel\" or \"multiclass\"");
        goto done;
    }
    if ((rc = parse_strings(cJSON_GetObjectItemCaseSensitive(root, "classes"), "\"classes\"",
                            MAX_CLASSES, &cfg->classes, &cfg->n_classes, err)))
        goto done;
    if (cfg->n_classes < 1 || (cfg->task == CRAFT_MULTICLASS && cfg->n_classes < 2)) {
        rc = craft_fail(err, CRAFT_EFORMAT, "config: too few classes");
        goto done;
    }
    cfg->prevalence = malloc(sizeof(float) * cfg->n_classes);
    if (!cfg->prevalence) {
        rc = craft_fail(err, CRAFT_ENOMEM, "config: out of memory");
        goto done;
    }
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(root, "prevalence");
    if (prev) {
        if (!cJSON_IsArray(prev) || cJSON_GetArraySize(prev) != cfg->n_classes) {
            rc = craft_fail(err, CRAFT_EFORMAT, "config: \"prevalence\" must hold %d numbers", cfg->n_classes);
            goto done;
        }
        int k = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, prev) {
            if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1)) {
                rc = craft_fail(err, CRAFT_EFORMAT, "config: prevalence[%d] is not a number in [0,1]", k);
                goto done;
            }
            cfg->prevalence[k++] = (float)v->valuedouble;
        }
    } else {
        for (int k = 0; k < cfg->n_classes; k++)
            cfg->prevalence[k] = 1.0f / cfg->n_classes;
    }
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(root, "modalities");
    if (!cJSON_IsArray(mods) || cJSON_GetArraySize(mods) < 1 ||
        cJSON_GetArraySize(mods) > CRAFT_MAX_MODALITIES) {
        rc = craft_fail(err, CRAFT_EFORMAT, "config: \"modalities\" must list 1 to %d modalities",
                        CRAFT_MAX_MODALITIES);
        goto done;
    }
    const cJSON *mj;
    cJSON_ArrayForEach(mj, mods) {
        craft_modality *m = &cfg->modalities[cfg->n_modalities];
        cfg->n_modalities++;
        if ((rc = parse_modality(cfg, m, mj, cfg->n_modalities - 1, err)))
            goto done;
        for (int k = 0; k < cfg->n_modalities - 1; k++)
            if (strcmp(cfg->modalities[k].name, m->name) == 0) {
                rc = craft_fail(err, CRAFT_EFORMAT, "config: modality \"%s\" appears twice", m->name);
                goto done;
            }
        if (m->kind == CRAFT_TABULAR) {
            if (cfg->tabular >= 0) {
                rc = craft_fail(err, CRAFT_EFORMAT, "config: more than one tabular modality");
                goto done;
            }
            cfg->tabular = cfg->n_modalities - 1;
        }
    }
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(root, "tab_encoding");
    if (enc) {
        if (cJSON_IsString(enc) && strcmp(enc->valuestring, "bins") == 0)
            cfg->tab_encoding = CRAFT_TAB_BINS;
        else if (cJSON_IsString(enc) && strcmp(enc->valuestring, "piecewise") == 0)
            cfg->tab_encoding = CRAFT_TAB_PIECEWISE;
        else {
            rc = craft_fail(err, CRAFT_EFORMAT, "config: \"tab_encoding\" must be \"bins\" or \"piecewise\"");
            goto done;
        }
    }
    if ((rc = parse_calibration(cfg, cJSON_GetObjectItemCaseSensitive(root, "calibration"), err)))
        goto done;
    const cJSON *wide = cJSON_GetObjectItemCaseSensitive(root, "wide_head");
    if (wide && !cJSON_IsBool(wide)) {
        rc = craft_fail(err, CRAFT_EFORMAT, "config: \"wide_head\" must be true or false");
        goto done;
    }
    cfg->wide_head = cJSON_IsTrue(wide);
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(root, "backbone");
    /* "backbone" is optional: the trainer chooses it by rho; absent means the
     * tabular modality (else the first) until then */
    if (!bb || cJSON_IsNull(bb))
        cfg->backbone = cfg->tabular >= 0 ? cfg->tabular : 0;
    else
        cfg->backbone = cJSON_IsString(bb) ? craft_config_find_modality(cfg, bb->valuestring) : -1;
    if (cfg->backbone < 0) {
        rc = craft_fail(err, CRAFT_EFORMAT, "config: \"backbone\" must name one of the modalities");
        goto done;
    }
    if (!(cfg->json = malloc(len + 1))) {
        rc = craft_fail(err, CRAFT_ENOMEM, "config: out of memory");
        goto done;
    }
    memcpy(cfg->json, json, len);
    cfg->json[len] = 0;
done:
    cJSON_Delete(root);
    if (rc)
        craft_config_free(cfg);
    return rc;
}

static cJSON *strings_json(char **s, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(s[i]));
    return a;
}

static void set_key(cJSON *obj, const char *key, cJSON *value)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value);
    else
        cJSON_AddItemToObject(obj, key, value);
}

char *craft_config_to_json(const craft_config *cfg)
{
    cJSON *root = cfg->json ? cJSON_Parse(cfg->json) : NULL;
    if (!root)
        root = cJSON_CreateObject();
    if (!root)
        return NULL;
    set_key(root, "format", cJSON_CreateString("craft-model"));
    set_key(root, "version", cJSON_CreateNumber(1));
    set_key(root, "d_model", cJSON_CreateNumber(cfg->d_model));
    set_key(root, "heads", cJSON_CreateNumber(cfg->heads));
    set_key(root, "layers", cJSON_CreateNumber(cfg->layers));
    set_key(root, "ffn_mult", cJSON_CreateNumber(cfg->ffn_mult));
    set_key(root, "topk", cJSON_CreateNumber(cfg->topk));
    set_key(root, "route_dim", cJSON_CreateNumber(cfg->route_dim));
    set_key(root, "bins", cJSON_CreateNumber(cfg->bins));
    set_key(root, "emb_dim", cJSON_CreateNumber(cfg->emb_dim));
    set_key(root, "task", cJSON_CreateString(cfg->task == CRAFT_MULTICLASS ? "multiclass" : "multilabel"));
    set_key(root, "classes", strings_json(cfg->classes, cfg->n_classes));
    set_key(root, "backbone", cJSON_CreateString(cfg->modalities[cfg->backbone].name));
    /* optional keys are written only when they differ from the default, so a model
     * without them keeps its config bytes */
    if (cfg->tab_encoding == CRAFT_TAB_PIECEWISE)
        set_key(root, "tab_encoding", cJSON_CreateString("piecewise"));
    else
        cJSON_DeleteItemFromObjectCaseSensitive(root, "tab_encoding");
    if (cfg->wide_head)
        set_key(root, "wide_head", cJSON_CreateTrue());
    else
        cJSON_DeleteItemFromObjectCaseSensitive(root, "wide_head");
    if (cfg->calib_a) {
        cJSON *c = cJSON_CreateObject(), *a = cJSON_CreateArray(), *b = cJSON_CreateArray();
        for (int k = 0; k < cfg->n_classes; k++) {
            cJSON_AddItemToArray(a, cJSON_CreateNumber(cfg->calib_a[k]));
            cJSON_AddItemToArray(b, cJSON_CreateNumber(cfg->calib_b[k]));
        }
        cJSON_AddItemToObject(c, "a", a);
        cJSON_AddItemToObject(c, "b", b);
        set_key(root, "calibration", c);
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "calibration");
    }
    cJSON *prev = cJSON_CreateArray();
    for (int k = 0; k < cfg->n_classes; k++)
        cJSON_AddItemToArray(prev, cJSON_CreateNumber(cfg->prevalence[k]));
    set_key(root, "prevalence", prev);
    cJSON *mods = cJSON_CreateArray();
    for (int i = 0; i < cfg->n_modalities; i++) {
        const craft_modality *m = &cfg->modalities[i];
        cJSON *mj = cJSON_CreateObject();
        cJSON_AddStringToObject(mj, "name", m->name);
        if (m->kind == CRAFT_TABULAR) {
            cJSON_AddStringToObject(mj, "kind", "tabular");
            cJSON *feats = cJSON_CreateArray();
            for (int f = 0; f < m->n_features; f++) {
                const craft_feature *ft = &m->features[f];
                cJSON *fj = cJSON_CreateObject();
                cJSON_AddStringToObject(fj, "name", ft->name);
                cJSON_AddStringToObject(fj, "type", ft->type == CRAFT_CATEGORICAL ? "categorical" : "numeric");
                if (ft->type == CRAFT_CATEGORICAL)
                    cJSON_AddItemToObject(fj, "vocab", strings_json(ft->vocab, ft->n_vocab));
                cJSON_AddItemToArray(feats, fj);
            }
            cJSON_AddItemToObject(mj, "features", feats);
        } else {
            cJSON_AddStringToObject(mj, "kind", "embedding");
            cJSON_AddNumberToObject(mj, "dim", m->dim);
            cJSON_AddNumberToObject(mj, "tokens", m->tokens);
            encoder_keys_json(m, mj);
        }
        cJSON_AddItemToArray(mods, mj);
    }
    set_key(root, "modalities", mods);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

int craft_config_copy(craft_config *dst, const craft_config *src, craft_error *err)
{
    char *json = craft_config_to_json(src);
    if (!json)
        return craft_fail(err, CRAFT_ENOMEM, "config: out of memory");
    int rc = craft_config_parse(dst, json, strlen(json), err);
    cJSON_free(json);
    return rc;
}

void craft_config_free(craft_config *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < cfg->n_modalities; i++) {
        craft_modality *m = &cfg->modalities[i];
        for (int f = 0; f < m->n_features; f++) {
            for (int v = 0; v < m->features[f].n_vocab; v++)
                free(m->features[f].vocab[v]);
            free(m->features[f].vocab);
            free(m->features[f].name);
        }
        free(m->features);
        for (int t = 0; t < m->n_entity_types; t++)
            free(m->entity_types[t]);
        free(m->entity_types);
        free(m->name);
    }
    for (int k = 0; k < cfg->n_classes; k++)
        free(cfg->classes[k]);
    free(cfg->classes);
    free(cfg->prevalence);
    free(cfg->calib_a);
    free(cfg->calib_b);
    free(cfg->json);
    memset(cfg, 0, sizeof *cfg);
    cfg->tabular = -1;
}

int craft_config_find_modality(const craft_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_modalities; i++)
        if (strcmp(cfg->modalities[i].name, name) == 0)
            return i;
    return -1;
}

int craft_config_max_tokens(const craft_config *cfg, int modality)
{
    return cfg->modalities[modality].tokens;
}
