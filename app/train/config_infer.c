/* config_infer.c: a model config from a labelled orders file, and the checks
 * that make unused or unusable inputs loud (config_infer.h; the rules are in
 * docs/TRAINING.md, "Config from data").
 *
 * The file is scanned once with cJSON (JSON Lines) or an RFC 4180 record reader
 * (CSV), since the project's readers resolve every order against a config that
 * does not exist yet (a label that names no class is an error there, and a
 * JSON number and a numeric string look the same in their raw fields). The
 * config made is then checked by reading the whole file back with those
 * readers (craft_input_check), so what `craft train` reads is what was seen. */
#include "config_infer.h"
#include "craft_hash.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encoders.h"
#include "orders.h"

#define MAX_DISTINCT_TRACKED 4096 /* distinct values counted exactly up to this many per feature */
#define MAX_TEXT_ROWS 32

void craft_infer_defaults(craft_infer_options *o)
{
    memset(o, 0, sizeof *o);
    o->text_tokens = CRAFT_TEXT_VECTOR;
    o->max_text_rows = MAX_TEXT_ROWS;
}

/* ------------------------------------------------------ small containers */

static uint64_t hash_str(const char *s, size_t n) { return craft_fnv1a(CRAFT_FNV_OFFSET, s, n); }

/* A set of 64-bit hashes (distinct values), capped. */
typedef struct {
    uint64_t *h;
    size_t cap, n;
    int overflow;
} hset;

static int hset_add(hset *s, uint64_t h)
{
    if (!h)
        h = 1;
    if (s->overflow)
        return 0;
    if ((s->n + 1) * 2 > s->cap) {
        if (s->n >= MAX_DISTINCT_TRACKED) {
            s->overflow = 1;
            return 0;
        }
        size_t cap = s->cap ? s->cap * 2 : 16;
        uint64_t *nh = calloc(cap, sizeof *nh);
        if (!nh)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->h[i]) {
                size_t j = s->h[i] & (cap - 1);
                while (nh[j])
                    j = (j + 1) & (cap - 1);
                nh[j] = s->h[i];
            }
        free(s->h);
        s->h = nh;
        s->cap = cap;
    }
    size_t j = h & (s->cap - 1);
    while (s->h[j] && s->h[j] != h)
        j = (j + 1) & (s->cap - 1);
    if (!s->h[j]) {
        s->h[j] = h;
        s->n++;
    }
    return 0;
}

/* Names in first-seen order, with a hash index and a count per name. */
typedef struct {
    char **name;
    long *count;
    int n, cap;
    int *slot; /* index + 1, 0 empty */
    size_t n_slots;
} names;

static int names_find(const names *s, const char *name)
{
    if (!s->n_slots)
        return -1;
    for (size_t i = hash_str(name, strlen(name)) & (s->n_slots - 1);; i = (i + 1) & (s->n_slots - 1)) {
        int v = s->slot[i];
        if (!v)
            return -1;
        if (!strcmp(s->name[v - 1], name))
            return v - 1;
    }
}

/* The index of name, added when new; -1 when out of memory. */
static int names_add(names *s, const char *name)
{
    int f = names_find(s, name);
    if (f >= 0)
        return f;
    if ((size_t)(s->n + 1) * 2 > s->n_slots) {
        size_t ns = s->n_slots ? s->n_slots * 2 : 64;
        int *slot = calloc(ns, sizeof *slot);
        if (!slot)
            return -1;
        for (int k = 0; k < s->n; k++) {
            size_t i = hash_str(s->name[k], strlen(s->name[k])) & (ns - 1);
            while (slot[i])
                i = (i + 1) & (ns - 1);
            slot[i] = k + 1;
        }
        free(s->slot);
        s->slot = slot;
        s->n_slots = ns;
    }
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        char **nn = realloc(s->name, sizeof *nn * (size_t)cap);
        if (!nn)
            return -1;
        s->name = nn;
        long *nc = realloc(s->count, sizeof *nc * (size_t)cap);
        if (!nc)
            return -1;
        s->count = nc;
        s->cap = cap;
    }
    if (!(s->name[s->n] = strdup(name)))
        return -1;
    s->count[s->n] = 0;
    size_t i = hash_str(name, strlen(name)) & (s->n_slots - 1);
    while (s->slot[i])
        i = (i + 1) & (s->n_slots - 1);
    s->slot[i] = s->n + 1;
    return s->n++;
}

static void names_free(names *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->name[i]);
    free(s->name);
    free(s->count);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ------------------------------------------------------------ the scan */

typedef struct {
    long present, nulls;
    int all_numeric;
    double min, max;
    hset distinct;
    char example[40]; /* a value that is not a number */
} feat_acc;

typedef struct {
    int dim, tokens;
} emb_acc;

typedef struct {
    const char *path;
    size_t line;
    long orders, labelled, with_text, with_ents, with_ts;
    int saw_labels, saw_label; /* multilabel "labels" / multiclass "label" */
    names feats;
    feat_acc *fa;
    int fa_cap;
    names classes; /* count: positives */
    names text;    /* count: orders with the field */
    names ents;    /* count: orders with the type */
    names embs;    /* precomputed embeddings by modality name */
    emb_acc *ea;
    int ea_cap;
    int max_fields, max_events;
    long *hist_events; /* orders by number of events, 0..MAX_TEXT_ROWS (last: more) */
    /* per order: seen flags to count each name once */
} scan;

static int scan_fail(scan *s, craft_error *err, craft_code code, const char *fmt, const char *a, const char *b)
{
    char msg[600];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    return craft_fail(err, code, "%s:%zu: %s", s->path, s->line, msg);
}

static int feature_value(scan *s, const char *name, int is_null, int is_num, double num, const char *str)
{
    int f = names_add(&s->feats, name);
    if (f < 0)
        return -1;
    if (f >= s->fa_cap) {
        int cap = s->fa_cap ? 2 * s->fa_cap : 64;
        feat_acc *p = realloc(s->fa, sizeof *p * (size_t)cap);
        if (!p)
            return -1;
        memset(p + s->fa_cap, 0, sizeof *p * (size_t)(cap - s->fa_cap));
        s->fa = p;
        s->fa_cap = cap;
    }
    feat_acc *a = &s->fa[f];
    if (a->present == 0 && a->nulls == 0) {
        a->all_numeric = 1;
        a->min = INFINITY;
        a->max = -INFINITY;
    }
    s->feats.count[f]++;
    if (is_null) {
        a->nulls++;
        return 0;
    }
    a->present++;
    uint64_t h;
    if (is_num && isfinite(num) && fabs(num) <= 3.0e38) {
        if (num < a->min)
            a->min = num;
        if (num > a->max)
            a->max = num;
        double z = num == 0 ? 0.0 : num; /* -0 and 0 are one value */
        memcpy(&h, &z, sizeof h);
        h = craft_hash64(h);
    } else {
        if (a->all_numeric)
            snprintf(a->example, sizeof a->example, "%s", str ? str : "?");
        a->all_numeric = 0;
        h = hash_str(str ? str : "", str ? strlen(str) : 0) ^ 0x9E3779B97F4A7C15ull;
    }
    return hset_add(&a->distinct, h);
}

static int has_word(const char *v)
{
    for (; *v; v++)
        if ((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') || *v == '_' ||
            (unsigned char)*v >= 0x80)
            return 1;
    return 0;
}

/* Events of a text value: pieces between '\n', '\r', '|' and ';' that hold a word. */
static int count_events(const char *v)
{
    int n = 0, word = 0;
    for (;; v++) {
        if (!*v || *v == '\n' || *v == '\r' || *v == '|' || *v == ';') {
            n += word;
            word = 0;
            if (!*v)
                break;
        } else if (has_word((char[]){*v, 0})) {
            word = 1;
        }
    }
    return n;
}

typedef struct {
    int fields, events;
} order_text;

static int text_value(scan *s, const char *field, const char *v, order_text *ot)
{
    if (!v[0] || !has_word(v))
        return 0;
    int f = names_add(&s->text, field);
    if (f < 0)
        return -1;
    s->text.count[f]++;
    ot->fields++;
    ot->events += count_events(v);
    return 0;
}

static int entity_value(scan *s, const char *type, const char *id, int *any)
{
    if (!id[0])
        return 0;
    int t = names_add(&s->ents, type);
    if (t < 0)
        return -1;
    s->ents.count[t]++;
    *any = 1;
    return 0;
}

static int class_positive(scan *s, const char *cls, int pos)
{
    int k = names_add(&s->classes, cls);
    if (k < 0)
        return -1;
    s->classes.count[k] += pos;
    return 0;
}

static int embedding_seen(scan *s, const char *name, int dim, int tokens, craft_error *err)
{
    int e = names_add(&s->embs, name);
    if (e < 0)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (e >= s->ea_cap) {
        int cap = s->ea_cap ? 2 * s->ea_cap : 8;
        emb_acc *p = realloc(s->ea, sizeof *p * (size_t)cap);
        if (!p)
            return craft_fail(err, CRAFT_ENOMEM, "out of memory");
        memset(p + s->ea_cap, 0, sizeof *p * (size_t)(cap - s->ea_cap));
        s->ea = p;
        s->ea_cap = cap;
    }
    emb_acc *a = &s->ea[e];
    if (a->dim && a->dim != dim) {
        char w[64];
        snprintf(w, sizeof w, "%d wide, earlier orders %d", dim, a->dim);
        return scan_fail(s, err, CRAFT_EINPUT, "embedding \"%s\" is %s", name, w);
    }
    a->dim = dim;
    if (tokens > a->tokens)
        a->tokens = tokens;
    s->embs.count[e]++;
    return CRAFT_OK;
}

static void order_done(scan *s, const order_text *ot, int any_ent, int labelled, int has_ts)
{
    s->orders++;
    s->labelled += labelled;
    s->with_text += ot->fields > 0;
    s->with_ents += any_ent;
    s->with_ts += has_ts;
    if (ot->fields > s->max_fields)
        s->max_fields = ot->fields;
    if (ot->events > s->max_events)
        s->max_events = ot->events;
    s->hist_events[ot->events < MAX_TEXT_ROWS ? ot->events : MAX_TEXT_ROWS]++;
}

/* One JSON line. */
static int scan_json(scan *s, const char *line, size_t len, craft_error *err)
{
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return scan_fail(s, err, CRAFT_EINPUT, "not a JSON object%s%s", "", "");
    }
    int rc = CRAFT_OK, labelled = 0, any_ent = 0;
    order_text ot = {0};
    const cJSON *v;
    const cJSON *feats = cJSON_GetObjectItemCaseSensitive(o, "features");
    if (cJSON_IsObject(feats))
        cJSON_ArrayForEach(v, feats) {
            if (cJSON_IsNull(v) || cJSON_IsNumber(v) || cJSON_IsString(v)) {
                if (feature_value(s, v->string, cJSON_IsNull(v), cJSON_IsNumber(v), v->valuedouble,
                                  cJSON_IsString(v) ? v->valuestring : NULL))
                    goto oom;
            } else {
                rc = scan_fail(s, err, CRAFT_EINPUT, "feature \"%.60s\" must be a number, a string or null%s",
                               v->string, "");
                goto done;
            }
        }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
    if (cJSON_IsObject(text))
        cJSON_ArrayForEach(v, text) {
            if (cJSON_IsString(v) && text_value(s, v->string, v->valuestring, &ot))
                goto oom;
        }
    const cJSON *ents = cJSON_GetObjectItemCaseSensitive(o, "entities");
    if (cJSON_IsObject(ents))
        cJSON_ArrayForEach(v, ents) {
            if (cJSON_IsString(v) && entity_value(s, v->string, v->valuestring, &any_ent))
                goto oom;
        }
    const cJSON *embs = cJSON_GetObjectItemCaseSensitive(o, "embeddings");
    if (cJSON_IsObject(embs))
        cJSON_ArrayForEach(v, embs) {
            if (!cJSON_IsArray(v) || !v->child)
                continue;
            int tokens = 1, dim = cJSON_GetArraySize(v);
            if (cJSON_IsArray(v->child)) {
                tokens = dim;
                dim = cJSON_GetArraySize(v->child);
            }
            if ((rc = embedding_seen(s, v->string, dim, tokens, err)))
                goto done;
        }
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(o, "labels");
    if (cJSON_IsObject(labels))
        cJSON_ArrayForEach(v, labels) {
            double x = cJSON_IsBool(v) ? cJSON_IsTrue(v) : cJSON_IsNumber(v) ? v->valuedouble : NAN;
            if (cJSON_IsNull(v))
                continue;
            if (!(x == 0 || x == 1)) {
                rc = scan_fail(s, err, CRAFT_EINPUT, "label \"%.60s\" must be 0 or 1%s", v->string, "");
                goto done;
            }
            s->saw_labels = 1;
            labelled = 1;
            if (class_positive(s, v->string, x == 1))
                goto oom;
        }
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(o, "label");
    if (cJSON_IsString(label) && label->valuestring[0]) {
        s->saw_label = 1;
        labelled = 1;
        if (class_positive(s, label->valuestring, 1))
            goto oom;
    }
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
    order_done(s, &ot, any_ent, labelled, cJSON_IsString(ts));
done:
    cJSON_Delete(o);
    return rc;
oom:
    cJSON_Delete(o);
    return craft_fail(err, CRAFT_ENOMEM, "out of memory");
}

/* RFC 4180: one record into fields (each NUL-terminated in buf). Returns the
 * number of fields, 0 at the end of the file, -1 out of memory. */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t *start;
    int n, cap_f;
} csv_rec;

static int csv_put(csv_rec *r, int c)
{
    if (r->len + 2 > r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 4096;
        char *p = realloc(r->buf, cap);
        if (!p)
            return -1;
        r->buf = p;
        r->cap = cap;
    }
    r->buf[r->len++] = (char)c;
    return 0;
}

static int csv_field(csv_rec *r)
{
    if (csv_put(r, 0))
        return -1;
    if (r->n == r->cap_f) {
        int cap = r->cap_f ? 2 * r->cap_f : 64;
        size_t *p = realloc(r->start, sizeof *p * (size_t)cap);
        if (!p)
            return -1;
        r->start = p;
        r->cap_f = cap;
    }
    r->n++;
    return 0;
}

static int csv_next(FILE *f, csv_rec *r, size_t *line)
{
    r->len = 0;
    r->n = 0;
    int c = getc(f);
    if (c == EOF)
        return 0;
    int quoted = 0, at_start = 1;
    size_t field_start = 0;
    for (;; c = getc(f)) {
        if (at_start) {
            field_start = r->len;
            at_start = 0;
            if (c == '"') {
                quoted = 1;
                continue;
            }
        }
        if (quoted) {
            if (c == EOF) {
                quoted = 0;
            } else if (c == '"') {
                int d = getc(f);
                if (d == '"') {
                    if (csv_put(r, '"'))
                        return -1;
                    continue;
                }
                quoted = 0;
                c = d;
            } else {
                if (c == '\n')
                    (*line)++;
                if (csv_put(r, c))
                    return -1;
                continue;
            }
        }
        if (c == ',' || c == '\n' || c == EOF) {
            if (r->len > field_start && c != ',' && r->buf[r->len - 1] == '\r')
                r->len--;
            int n = r->n;
            if (csv_field(r))
                return -1;
            r->start[n] = field_start;
            if (c == ',') {
                at_start = 1;
                continue;
            }
            (*line)++;
            return r->n;
        }
        if (csv_put(r, c))
            return -1;
    }
}

enum { C_IGNORE, C_ID, C_TS, C_TEXT, C_ENTITY, C_EMB, C_LABEL, C_CLASS, C_FEATURE };

static int scan_csv(scan *s, FILE *f, craft_error *err)
{
    csv_rec rec = {0}, head = {0};
    int rc = CRAFT_OK, *role = NULL;
    const char **col = NULL;
    size_t line = 0;
    int nh = csv_next(f, &head, &line);
    if (nh < 0)
        goto oom;
    if (nh == 0) {
        free(head.buf);
        free(head.start);
        return craft_fail(err, CRAFT_EINPUT, "%s: empty file (no header row)", s->path);
    }
    role = calloc((size_t)nh, sizeof *role);
    col = calloc((size_t)nh, sizeof *col);
    if (!role || !col)
        goto oom;
    for (int c = 0; c < nh; c++) {
        const char *h = head.buf + head.start[c];
        if (c == 0 && (unsigned char)h[0] == 0xEF && (unsigned char)h[1] == 0xBB && (unsigned char)h[2] == 0xBF)
            h += 3;
        col[c] = h;
        role[c] = !strcmp(h, "order_id") ? C_ID
                  : !strcmp(h, "ts")     ? C_TS
                  : !strncmp(h, "text:", 5) ? C_TEXT
                  : !strncmp(h, "entity:", 7) ? C_ENTITY
                  : !strncmp(h, "emb:", 4)    ? C_EMB
                  : !strcmp(h, "label")       ? C_CLASS
                  : !strncmp(h, "label:", 6)  ? C_LABEL
                                              : C_FEATURE;
        if (role[c] == C_LABEL) {
            s->saw_labels = 1;
            if (class_positive(s, h + 6, 0))
                goto oom;
        }
        if (role[c] == C_CLASS)
            s->saw_label = 1;
    }
    for (;;) {
        s->line = line + 1;
        int n = csv_next(f, &rec, &line);
        if (n < 0)
            goto oom;
        if (n == 0)
            break;
        if (n == 1 && !rec.buf[rec.start[0]])
            continue; /* a blank line */
        if (n != nh) {
            char w[64];
            snprintf(w, sizeof w, "%d fields, the header has %d", n, nh);
            rc = scan_fail(s, err, CRAFT_EINPUT, "%s%s", w, "");
            goto out;
        }
        int labelled = 0, any_ent = 0, has_ts = 0;
        order_text ot = {0};
        for (int c = 0; c < n; c++) {
            const char *v = rec.buf + rec.start[c];
            switch (role[c]) {
            case C_TS:
                has_ts = v[0] != 0;
                break;
            case C_TEXT:
                if (text_value(s, col[c] + 5, v, &ot))
                    goto oom;
                break;
            case C_ENTITY:
                if (entity_value(s, col[c] + 7, v, &any_ent))
                    goto oom;
                break;
            case C_EMB:
                if (v[0]) {
                    int tokens = 1, dim = 0, k = 0;
                    for (const char *p = v;;) {
                        while (*p == ' ' || *p == '\t')
                            p++;
                        if (!*p || *p == '|') {
                            if (!dim)
                                dim = k;
                            if (!*p)
                                break;
                            tokens++;
                            k = 0;
                            p++;
                            continue;
                        }
                        char *end;
                        strtod(p, &end);
                        if (end == p)
                            break;
                        k++;
                        p = end;
                    }
                    if ((rc = embedding_seen(s, col[c] + 4, dim, tokens, err)))
                        goto out;
                }
                break;
            case C_LABEL:
                if (v[0]) {
                    char *end;
                    double x = strtod(v, &end);
                    if (*end || !(x == 0 || x == 1)) {
                        rc = scan_fail(s, err, CRAFT_EINPUT, "column \"%.60s\": \"%.20s\" is not 0 or 1", col[c], v);
                        goto out;
                    }
                    labelled = 1;
                    if (class_positive(s, col[c] + 6, x == 1))
                        goto oom;
                }
                break;
            case C_CLASS:
                if (v[0]) {
                    labelled = 1;
                    if (class_positive(s, v, 1))
                        goto oom;
                }
                break;
            case C_FEATURE: {
                char *end;
                errno = 0;
                double x = v[0] ? strtod(v, &end) : 0;
                int is_num = v[0] && !*end && !errno && isfinite(x) && fabs(x) <= 3.0e38;
                if (feature_value(s, col[c], !v[0], is_num, x, v))
                    goto oom;
                break;
            }
            default:
                break;
            }
        }
        order_done(s, &ot, any_ent, labelled, has_ts);
    }
out:
    free(role);
    free(col);
    free(rec.buf);
    free(rec.start);
    free(head.buf);
    free(head.start);
    return rc;
oom:
    rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    goto out;
}

static int scan_file(scan *s, const char *path, craft_error *err)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return craft_fail(err, CRAFT_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t n = strlen(path);
    int csv = n >= 4 && !strcmp(path + n - 4, ".csv");
    int rc = CRAFT_OK;
    if (csv) {
        rc = scan_csv(s, f, err);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, f)) >= 0) {
            s->line++;
            size_t len = (size_t)got;
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
                len--;
            if (!len)
                continue;
            if ((rc = scan_json(s, line, len, err)))
                break;
        }
        free(line);
    }
    if (!rc && ferror(f))
        rc = craft_fail(err, CRAFT_EIO, "%s: read error", path);
    if (f != stdin)
        fclose(f);
    return rc;
}

static void scan_free(scan *s)
{
    for (int f = 0; f < s->feats.n; f++)
        free(s->fa[f].distinct.h);
    free(s->fa);
    free(s->ea);
    free(s->hist_events);
    names_free(&s->feats);
    names_free(&s->classes);
    names_free(&s->text);
    names_free(&s->ents);
    names_free(&s->embs);
}

/* ------------------------------------------------------- the config made */

typedef struct {
    int d_model, heads, layers, ffn_mult, topk, route_dim, bins, emb_dim;
} sizes;

/* Sizes from the number of labelled orders (docs/TRAINING.md, "Config from data"). */
static sizes sizes_for(long n)
{
    /* Measured on the 2-core machine: d 64 / 1 layer trains 20,000 orders of 300 features in
     * about 45 s an epoch and reaches more in a fixed time than d 128 / 2 layers (a quarter of
     * the speed, under-trained in 30 minutes): small sizes until the data is large. */
    if (n < 2000)
        return (sizes){32, 2, 1, 2, 8, 16, 16, 8};
    if (n < 100000)
        return (sizes){64, 4, 1, 2, 8, 16, 32, 16};
    if (n < 1000000)
        return (sizes){128, 4, 1, 2, 16, 32, 32, 16};
    return (sizes){256, 8, 2, 2, 16, 32, 32, 32};
}

static const char *const text_mode_names[] = {"vector", "fields", "events"};

int craft_text_tokens_parse(const char *s, int *mode)
{
    for (int m = CRAFT_TEXT_VECTOR; m <= CRAFT_TEXT_EVENTS; m++)
        if (!strcmp(s, text_mode_names[m])) {
            *mode = m;
            return 0;
        }
    return -1;
}

int craft_config_infer(const char *path, const craft_infer_options *opt, FILE *summary, char **json_out,
                       craft_error *err)
{
    *json_out = NULL;
    craft_infer_options defaults;
    if (!opt) {
        craft_infer_defaults(&defaults);
        opt = &defaults;
    }
    if (opt->text_tokens < CRAFT_TEXT_VECTOR || opt->text_tokens > CRAFT_TEXT_EVENTS)
        return craft_fail(err, CRAFT_EINPUT, "config from data: unknown text_tokens mode %d", opt->text_tokens);
    const int max_rows = opt->max_text_rows > 0 && opt->max_text_rows <= 4096 ? opt->max_text_rows : MAX_TEXT_ROWS;
    scan s;
    memset(&s, 0, sizeof s);
    s.path = path;
    cJSON *root = NULL;
    char *json = NULL;
    int rc = CRAFT_OK;
    if (!(s.hist_events = calloc(MAX_TEXT_ROWS + 1, sizeof(long)))) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = scan_file(&s, path, err)))
        goto out;
    /* ---- labels: task and classes */
    if (s.saw_labels && s.saw_label) {
        rc = craft_fail(err, CRAFT_EINPUT,
                        "%s: orders give both \"labels\" (multilabel, 0/1 per class) and \"label\" (multiclass): "
                        "use one (FORMATS.md)",
                        path);
        goto out;
    }
    if (!s.classes.n || !s.labelled) {
        rc = craft_fail(err, CRAFT_EINPUT,
                        "%s: no labelled orders (\"labels\": {class: 0|1} or \"label\": \"class\"; CSV label:<class> or "
                        "label columns): a config from data needs the classes",
                        path);
        goto out;
    }
    const int multiclass = s.saw_label;
    if (multiclass && s.classes.n < 2) {
        rc = craft_fail(err, CRAFT_EINPUT, "%s: multiclass labels name only one class (\"%s\")", path,
                        s.classes.name[0]);
        goto out;
    }
    if (s.classes.n > 4096) {
        rc = craft_fail(err, CRAFT_EINPUT, "%s: %d classes (at most 4096)", path, s.classes.n);
        goto out;
    }
    const int K = s.classes.n;
    /* ---- features */
    int n_num = 0, n_cat = 0, n_out = 0;
    for (int f = 0; f < s.feats.n; f++) {
        if (!s.fa[f].present)
            n_out++;
        else if (s.fa[f].all_numeric)
            n_num++;
        else
            n_cat++;
    }
    /* ---- precomputed embeddings: txt and graph only at the built-in widths */
    for (int e = 0; e < s.embs.n; e++) {
        const char *nm = s.embs.name[e];
        if (!strcmp(nm, "txt") && s.text.n && s.ea[e].dim != CRAFT_TEXT_DIM) {
            rc = craft_fail(err, CRAFT_EINPUT,
                            "%s: orders give \"embeddings.txt\" %d wide and text fields, which the built-in text "
                            "encoder makes 256 wide: one modality cannot hold both (rename the embedding)",
                            path, s.ea[e].dim);
            goto out;
        }
        if (!strcmp(nm, "graph") && s.ents.n) {
            rc = craft_fail(err, CRAFT_EINPUT,
                            "%s: orders give both \"embeddings.graph\" and \"entities\": the built-in graph encoder "
                            "would fill \"graph\" at its own width (rename the embedding)",
                            path);
            goto out;
        }
    }
    sizes z = sizes_for(s.labelled);
    /* ---- the JSON */
    root = cJSON_CreateObject();
    if (!root)
        goto oom;
    cJSON_AddStringToObject(root, "format", "craft-model");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddNumberToObject(root, "d_model", z.d_model);
    cJSON_AddNumberToObject(root, "heads", z.heads);
    cJSON_AddNumberToObject(root, "layers", z.layers);
    cJSON_AddNumberToObject(root, "ffn_mult", z.ffn_mult);
    cJSON_AddNumberToObject(root, "topk", z.topk);
    cJSON_AddNumberToObject(root, "route_dim", z.route_dim);
    cJSON_AddNumberToObject(root, "bins", z.bins);
    cJSON_AddNumberToObject(root, "emb_dim", z.emb_dim);
    cJSON_AddStringToObject(root, "task", multiclass ? "multiclass" : "multilabel");
    cJSON *cls = cJSON_AddArrayToObject(root, "classes");
    for (int k = 0; k < K; k++)
        cJSON_AddItemToArray(cls, cJSON_CreateString(s.classes.name[k]));
    cJSON *mods = cJSON_AddArrayToObject(root, "modalities");
    if (!cls || !mods)
        goto oom;
    int n_mod = 0;
    if (n_num + n_cat) {
        cJSON *tab = cJSON_CreateObject();
        cJSON_AddItemToArray(mods, tab);
        cJSON_AddStringToObject(tab, "name", "tab");
        cJSON_AddStringToObject(tab, "kind", "tabular");
        cJSON *fs = cJSON_AddArrayToObject(tab, "features");
        for (int f = 0; f < s.feats.n; f++) {
            if (!s.fa[f].present)
                continue;
            cJSON *fj = cJSON_CreateObject();
            cJSON_AddStringToObject(fj, "name", s.feats.name[f]);
            cJSON_AddStringToObject(fj, "type", s.fa[f].all_numeric ? "numeric" : "categorical");
            cJSON_AddItemToArray(fs, fj);
        }
        n_mod++;
    }
    int txt_rows = 1;
    if (s.text.n) {
        if (opt->text_tokens == CRAFT_TEXT_FIELDS)
            txt_rows = s.max_fields;
        else if (opt->text_tokens == CRAFT_TEXT_EVENTS)
            txt_rows = s.max_events;
        if (txt_rows < 1)
            txt_rows = 1;
        if (txt_rows > max_rows)
            txt_rows = max_rows;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(mods, t);
        cJSON_AddStringToObject(t, "name", "txt");
        cJSON_AddStringToObject(t, "kind", "embedding");
        cJSON_AddNumberToObject(t, "dim", CRAFT_TEXT_DIM);
        cJSON_AddNumberToObject(t, "tokens", txt_rows);
        if (opt->text_tokens != CRAFT_TEXT_VECTOR)
            cJSON_AddStringToObject(t, "text_tokens", text_mode_names[opt->text_tokens]);
        n_mod++;
    }
    /* entity types in byte order of their names */
    char **types = NULL;
    int T = s.ents.n < CRAFT_MAX_ENTITY_TYPES ? s.ents.n : CRAFT_MAX_ENTITY_TYPES;
    if (s.ents.n) {
        if (!(types = malloc(sizeof *types * (size_t)s.ents.n)))
            goto oom;
        memcpy(types, s.ents.name, sizeof *types * (size_t)s.ents.n);
        qsort(types, (size_t)s.ents.n, sizeof *types, by_name);
        cJSON *g = cJSON_CreateObject();
        cJSON_AddItemToArray(mods, g);
        cJSON_AddStringToObject(g, "name", "graph");
        cJSON_AddStringToObject(g, "kind", "embedding");
        cJSON_AddNumberToObject(g, "dim", craft_graph_width_types(T, K));
        cJSON_AddNumberToObject(g, "tokens", 1);
        cJSON *ta = cJSON_AddArrayToObject(g, "entity_types");
        for (int t = 0; t < T; t++)
            cJSON_AddItemToArray(ta, cJSON_CreateString(types[t]));
        n_mod++;
    }
    /* other precomputed embeddings, as given */
    for (int e = 0; e < s.embs.n; e++) {
        const char *nm = s.embs.name[e];
        if (!strcmp(nm, "txt") || !strcmp(nm, "graph") || !strcmp(nm, "tab"))
            continue; /* txt at 256: the txt modality above (or below); graph without entities: below */
        if (n_mod >= CRAFT_MAX_MODALITIES)
            break;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(mods, m);
        cJSON_AddStringToObject(m, "name", nm);
        cJSON_AddStringToObject(m, "kind", "embedding");
        cJSON_AddNumberToObject(m, "dim", s.ea[e].dim);
        cJSON_AddNumberToObject(m, "tokens", s.ea[e].tokens);
        n_mod++;
    }
    for (int e = 0; e < s.embs.n; e++) { /* txt or graph given only as embeddings */
        const char *nm = s.embs.name[e];
        if (!((!strcmp(nm, "txt") && !s.text.n) || (!strcmp(nm, "graph") && !s.ents.n)) || n_mod >= CRAFT_MAX_MODALITIES)
            continue;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(mods, m);
        cJSON_AddStringToObject(m, "name", nm);
        cJSON_AddStringToObject(m, "kind", "embedding");
        cJSON_AddNumberToObject(m, "dim", s.ea[e].dim);
        cJSON_AddNumberToObject(m, "tokens", s.ea[e].tokens);
        n_mod++;
    }
    if (!(n_num + n_cat)) {
        free(types);
        rc = craft_fail(err, CRAFT_EINPUT,
                        "%s: no feature has a value in any order: the model needs a tabular modality (\"features\")",
                        path);
        goto out;
    }
    json = cJSON_Print(root);
    if (!json) {
        free(types);
        goto oom;
    }
    /* ---- the summary */
    if (summary) {
        FILE *o = summary;
        fprintf(o, "config from %s: %ld orders, %ld labelled, %ld with \"ts\"\n", path, s.orders, s.labelled,
                s.with_ts);
        fprintf(o, "task %s, %d classes (positives among labelled orders):", multiclass ? "multiclass" : "multilabel",
                K);
        for (int k = 0; k < K; k++)
            fprintf(o, "%s %s %ld (%.1f%%)", k ? "," : "", s.classes.name[k], s.classes.count[k],
                    100.0 * (double)s.classes.count[k] / (double)s.labelled);
        fprintf(o, "\nfeatures: %d (%d numeric, %d categorical)", n_num + n_cat, n_num, n_cat);
        if (n_out)
            fprintf(o, "; %d left out: no value in any order", n_out);
        fprintf(o, "\n  %-32s %-11s %8s %9s  %s\n", "name", "type", "missing", "distinct", "range / example");
        for (int f = 0; f < s.feats.n; f++) {
            const feat_acc *a = &s.fa[f];
            double miss = 100.0 * (double)(s.orders - a->present) / (double)(s.orders ? s.orders : 1);
            char dist[32];
            if (a->distinct.overflow)
                snprintf(dist, sizeof dist, ">%d", MAX_DISTINCT_TRACKED);
            else
                snprintf(dist, sizeof dist, "%zu", a->distinct.n);
            if (!a->present)
                fprintf(o, "  %-32s %-11s %7.1f%% %9s  left out (always missing)\n", s.feats.name[f], "-", miss, "0");
            else if (a->all_numeric)
                fprintf(o, "  %-32s %-11s %7.1f%% %9s  %g .. %g\n", s.feats.name[f], "numeric", miss, dist, a->min,
                        a->max);
            else
                fprintf(o, "  %-32s %-11s %7.1f%% %9s  e.g. \"%s\"%s\n", s.feats.name[f], "categorical", miss, dist,
                        a->example,
                        a->distinct.overflow || (long)a->distinct.n > z.bins - 1
                            ? " (more values than bins-1: the rarest share one bin)"
                            : "");
        }
        if (s.text.n) {
            fprintf(o, "text: %d field%s (", s.text.n, s.text.n > 1 ? "s" : "");
            for (int t = 0; t < s.text.n; t++)
                fprintf(o, "%s%s %.1f%%", t ? ", " : "", s.text.name[t],
                        100.0 * (double)s.text.count[t] / (double)s.orders);
            fprintf(o, ") in %.1f%% of orders -> txt, 256 wide, text_tokens \"%s\", tokens %d",
                    100.0 * (double)s.with_text / (double)s.orders, text_mode_names[opt->text_tokens], txt_rows);
            if (opt->text_tokens == CRAFT_TEXT_EVENTS)
                fprintf(o, " (events per order: at most %d%s)", s.max_events,
                        s.max_events > txt_rows ? "; longer journeys keep their latest events" : "");
            fputc('\n', o);
        } else {
            fprintf(o, "NOTE: no text fields in %s: the txt modality is LEFT OUT of the config\n", path);
        }
        if (s.ents.n) {
            fprintf(o, "entities: %d type%s (", s.ents.n, s.ents.n > 1 ? "s" : "");
            for (int t = 0; t < s.ents.n; t++)
                fprintf(o, "%s%s %.1f%%", t ? ", " : "", types[t],
                        100.0 * (double)s.ents.count[names_find(&s.ents, types[t])] / (double)s.orders);
            fprintf(o, ") in %.1f%% of orders -> graph, %d x (1 + %d + %d) = %d wide\n",
                    100.0 * (double)s.with_ents / (double)s.orders, T, K, CRAFT_GRAPH_SKETCH,
                    craft_graph_width_types(T, K));
            if (T < s.ents.n)
                fprintf(o, "NOTE: only the first %d entity types (by name) are used\n", T);
            if (!s.with_ts)
                fprintf(o, "NOTE: no order has \"ts\": the graph encoder takes the file order as time order\n");
        } else {
            fprintf(o, "NOTE: no entities in %s: the graph modality is LEFT OUT of the config\n", path);
        }
        for (int e = 0; e < s.embs.n; e++)
            fprintf(o, "embeddings \"%s\": %d wide, up to %d tokens, in %ld orders\n", s.embs.name[e], s.ea[e].dim,
                    s.ea[e].tokens, s.embs.count[e]);
        fprintf(o,
                "sizes for %ld labelled orders: d_model %d, heads %d, layers %d, ffn_mult %d, topk %d, route_dim %d, "
                "bins %d, emb_dim %d (docs/TRAINING.md, \"Config from data\"); the backbone is chosen by rho at "
                "training\n",
                s.labelled, z.d_model, z.heads, z.layers, z.ffn_mult, z.topk, z.route_dim, z.bins, z.emb_dim);
        fflush(o);
    }
    free(types);
    /* ---- the config must parse, and the project's reader must read the file with it */
    craft_config cfg;
    if ((rc = craft_config_parse(&cfg, json, strlen(json), err))) {
        craft_error_prefix(err, "config from %s (a bug: please report)", path);
        goto out;
    }
    if (strcmp(path, "-")) {
        craft_input_report rep;
        rc = craft_input_check(&cfg, path, NULL, NULL, 0, &rep, err);
    }
    craft_config_free(&cfg);
    if (rc)
        goto out;
    size_t jl = strlen(json);
    char *copy = malloc(jl + 2);
    if (!copy)
        goto oom;
    memcpy(copy, json, jl);
    copy[jl] = '\n';
    copy[jl + 1] = 0;
    *json_out = copy;
out:
    if (json)
        cJSON_free(json);
    cJSON_Delete(root);
    scan_free(&s);
    return rc;
oom:
    rc = craft_fail(err, CRAFT_ENOMEM, "config from data: out of memory");
    goto out;
}

/* ------------------------------------------------------ the input check */

static int text_has_words(const craft_kv *t)
{
    for (int i = 0; t && i < t->n; i++)
        if (has_word(t->values[i]))
            return 1;
    return 0;
}

static void list_names(FILE *log, const names *n, int limit)
{
    for (int i = 0; i < n->n && i < limit; i++)
        fprintf(log, "%s%s (%ld order%s)", i ? ", " : "", n->name[i], n->count[i], n->count[i] == 1 ? "" : "s");
    if (n->n > limit)
        fprintf(log, ", and %d more", n->n - limit);
}

int craft_input_check(const craft_config *cfg, const char *path, const char *cmd, FILE *log, long max_orders,
                      craft_input_report *rep, craft_error *err)
{
    memset(rep, 0, sizeof *rep);
    if (!strcmp(path, "-"))
        return CRAFT_OK;
    const char *who = cmd ? cmd : "check";
    const int K = cfg->n_classes;
    int txt = craft_config_find_modality(cfg, "txt"), graph = craft_config_find_modality(cfg, "graph");
    if (txt >= 0 && (txt == cfg->backbone || cfg->modalities[txt].kind != CRAFT_EMBEDDING))
        txt = -1;
    if (graph >= 0 && (graph == cfg->backbone || cfg->modalities[graph].kind != CRAFT_EMBEDDING))
        graph = -1;
    const int txt_ok = txt >= 0 && cfg->modalities[txt].dim == CRAFT_TEXT_DIM;
    const int T = graph >= 0 && cfg->modalities[graph].n_entity_types > 0 ? cfg->modalities[graph].n_entity_types
                                                                          : CRAFT_GRAPH_TYPES;
    const int gwidth = craft_graph_width_types(T, K);
    const int graph_ok = graph >= 0 && cfg->modalities[graph].dim == gwidth;
    names unused = {0}, unused_types = {0}, used = {0};
    craft_graph *g = NULL;
    craft_reader *rd = NULL;
    craft_order_batch ob;
    memset(&ob, 0, sizeof ob);
    int rc = CRAFT_OK;
    if (cfg->tabular >= 0) {
        const craft_modality *tm = &cfg->modalities[cfg->tabular];
        for (int f = 0; f < tm->n_features; f++)
            if (names_add(&used, tm->features[f].name) < 0)
                goto oom;
    }
    if ((rc = craft_graph_new_for(&g, cfg, graph, err)))
        goto out;
    if ((rc = craft_reader_open(&rd, path, CRAFT_FORMAT_AUTO, cfg, err)) ||
        (rc = craft_order_batch_init(&ob, cfg, 256, 1, err)))
        goto out;
    int eof = 0;
    while (!eof) {
        if (max_orders > 0 && rep->orders >= max_orders) {
            rep->partial = 1;
            break;
        }
        craft_order_batch_reset(&ob, cfg);
        if ((rc = craft_reader_next(rd, &ob, &eof, err))) {
            rep->read_error = 1;
            goto out;
        }
        for (int i = 0; i < ob.in.n; i++) {
            rep->orders++;
            const craft_kv *rf = &ob.raw_features[i];
            for (int j = 0; j < rf->n; j++)
                if (names_find(&used, rf->keys[j]) < 0) {
                    int u = names_add(&unused, rf->keys[j]);
                    if (u < 0)
                        goto oom;
                    unused.count[u]++;
                }
            const craft_kv *en = &ob.entities[i];
            for (int j = 0; graph_ok && j < en->n; j++) { /* types the model's graph encoder leaves out */
                if (!en->values[j][0])
                    continue;
                int known = 0;
                for (int t = 0; graph_ok && t < T; t++)
                    known |= !strcmp(en->keys[j], craft_graph_type(g, t));
                if (!known) {
                    int u = names_add(&unused_types, en->keys[j]);
                    if (u < 0)
                        goto oom;
                    unused_types.count[u]++;
                }
            }
            int words = text_has_words(&ob.text[i]), known = craft_graph_known(g, en);
            for (int m = 0; m < cfg->n_modalities; m++) {
                const craft_modality *mod = &cfg->modalities[m];
                int avail = m == cfg->tabular || ob.in.ntok[m][i] > 0;
                if (!avail && m == txt) {
                    if (txt_ok)
                        avail = words;
                    else if (words) {
                        rc = craft_fail(err, CRAFT_EINPUT,
                                        "%s:%zu: order \"%s\" has text but no \"txt\" embedding, and the model's \"txt\" "
                                        "is %d wide while the built-in text encoder gives %d: the modality would be "
                                        "missing for it (give embeddings.txt %d wide, or make \"txt\" %d wide)",
                                        path, ob.line[i], ob.ids[i], mod->dim, CRAFT_TEXT_DIM, mod->dim,
                                        CRAFT_TEXT_DIM);
                        goto out;
                    }
                }
                if (!avail && m == graph) {
                    if (graph_ok)
                        avail = known > 0;
                    else if (en->n > 0) {
                        rc = craft_fail(err, CRAFT_EINPUT,
                                        "%s:%zu: order \"%s\" has entities but no \"graph\" embedding, and the model's "
                                        "\"graph\" is %d wide while the built-in graph encoder gives %d x (1 + %d + %d) "
                                        "= %d for its %d entity types and %d classes: the modality would be missing "
                                        "for it (set \"dim\" to %d, or list \"entity_types\" to match)",
                                        path, ob.line[i], ob.ids[i], mod->dim, T, K, CRAFT_GRAPH_SKETCH, gwidth, T, K,
                                        gwidth);
                        goto out;
                    }
                }
                rep->available[m] += avail;
            }
        }
    }
    char in_file[600];
    if (rep->partial)
        snprintf(in_file, sizeof in_file, "the first %ld orders of %s", rep->orders, path);
    else
        snprintf(in_file, sizeof in_file, "%s", path);
    rep->unused_features = unused.n;
    rep->unused_entity_types = unused_types.n;
    if (log && unused.n) {
        fprintf(log, "craft %s: warning: %d feature%s of %s %s not in the model config and %s NOT used: ", who,
                unused.n, unused.n == 1 ? "" : "s", in_file, unused.n == 1 ? "is" : "are", unused.n == 1 ? "is" : "are");
        list_names(log, &unused, 30);
        fputc('\n', log);
    }
    if (log && unused_types.n) {
        fprintf(log, "craft %s: warning: %d entity type%s of %s %s NOT used by the graph encoder "
                     "(not in the graph modality's entity types): ",
                who, unused_types.n, unused_types.n == 1 ? "" : "s", in_file, unused_types.n == 1 ? "is" : "are");
        list_names(log, &unused_types, 30);
        fputc('\n', log);
    }
    for (int m = 0; m < cfg->n_modalities; m++) {
        if (m == cfg->backbone || m == cfg->tabular || rep->available[m] || !rep->orders)
            continue;
        rep->empty_modalities++;
        if (!log)
            continue;
        const char *nm = cfg->modalities[m].name;
        fprintf(log, "craft %s: WARNING: modality \"%s\" is EMPTY: no order of %s has it (no \"%s\" embedding", who,
                nm, in_file, nm);
        if (m == txt)
            fprintf(log, ", and no text with words");
        if (m == graph && graph_ok) {
            fprintf(log, ", and no entity of the types ");
            for (int t = 0; t < T; t++)
                fprintf(log, "%s%s", t ? ", " : "", craft_graph_type(g, t));
        }
        fprintf(log, "); it adds nothing to the model\n");
    }
    if (log)
        fflush(log);
out:
    craft_order_batch_free(&ob);
    if (rd)
        craft_reader_close(rd);
    craft_graph_free(g);
    names_free(&unused);
    names_free(&unused_types);
    names_free(&used);
    return rc;
oom:
    rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    goto out;
}
