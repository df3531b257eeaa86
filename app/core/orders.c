/* orders.c: streaming JSON Lines and CSV readers of orders (FORMATS.md).
 * One line (or CSV record) at a time; a bad order is reported as
 * "file:line: reason" and consumed, so callers choose to stop or go on. */
#include "orders.h"

#include "craft_hash.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ utilities */

int craft_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        int n;
        unsigned min;
        if ((c & 0xE0) == 0xC0) { n = 1; min = 0x80; c &= 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; min = 0x800; c &= 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; min = 0x10000; c &= 0x07; }
        else return 0;
        if (end - s <= n)
            if (end - s < n + 1)
                return 0;
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (s[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void craft_kv_clear(craft_kv *kv)
{
    for (int i = 0; i < kv->n; i++) {
        free(kv->keys[i]);
        free(kv->values[i]);
    }
    free(kv->keys);
    free(kv->values);
    memset(kv, 0, sizeof *kv);
}

int craft_kv_add(craft_kv *kv, const char *k, const char *v)
{
    if (kv->n >= kv->cap) {
        /* doubling: a row of 300,000 features is linear, not 300,000 reallocs */
        int cap = kv->n < 4 ? 8 : kv->n * 2;
        char **nk = realloc(kv->keys, sizeof(char *) * (size_t)cap);
        if (!nk)
            return -1;
        kv->keys = nk;
        char **nv = realloc(kv->values, sizeof(char *) * (size_t)cap);
        if (!nv)
            return -1;
        kv->values = nv;
        kv->cap = cap;
    }
    kv->keys[kv->n] = xstrdup(k);
    kv->values[kv->n] = xstrdup(v);
    if (!kv->keys[kv->n] || !kv->values[kv->n]) {
        free(kv->keys[kv->n]);
        free(kv->values[kv->n]);
        return -1;
    }
    kv->n++;
    return 0;
}

const char *craft_kv_get(const craft_kv *kv, const char *key)
{
    for (int i = 0; i < kv->n; i++)
        if (strcmp(kv->keys[i], key) == 0)
            return kv->values[i];
    return NULL;
}

/* --------------------------------------------------------------- batches */

int craft_order_batch_init(craft_order_batch *ob, const craft_config *cfg, int cap, int keep_raw,
                           craft_error *err)
{
    memset(ob, 0, sizeof *ob);
    int rc = craft_batch_init(&ob->in, cfg, cap, err);
    if (rc)
        return rc;
    ob->keep_raw = keep_raw;
    size_t n = (size_t)cap;
    int ok = (ob->ids = calloc(n, sizeof(char *))) && (ob->ts = calloc(n, sizeof(char *))) &&
             (ob->line = calloc(n, sizeof(size_t))) && (ob->text = calloc(n, sizeof(craft_kv))) &&
             (ob->entities = calloc(n, sizeof(craft_kv))) &&
             (ob->raw_features = calloc(n, sizeof(craft_kv))) && (ob->has_labels = calloc(n, sizeof(int)));
    if (!ok) {
        craft_order_batch_free(ob);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for a batch of %d orders", cap);
    }
    return CRAFT_OK;
}

static void clear_row(craft_order_batch *ob, const craft_config *cfg, int i)
{
    free(ob->ids[i]);
    free(ob->ts[i]);
    ob->ids[i] = ob->ts[i] = NULL;
    craft_kv_clear(&ob->text[i]);
    craft_kv_clear(&ob->entities[i]);
    craft_kv_clear(&ob->raw_features[i]);
    ob->has_labels[i] = 0;
    if (cfg)
        craft_batch_clear_order(&ob->in, cfg, i);
}

void craft_order_batch_reset(craft_order_batch *ob, const craft_config *cfg)
{
    for (int i = 0; i < ob->in.n; i++)
        clear_row(ob, cfg, i);
    ob->in.n = 0;
}

void craft_order_batch_free(craft_order_batch *ob)
{
    if (ob->ids)
        for (int i = 0; i < ob->in.cap; i++)
            if (ob->text && ob->entities && ob->raw_features && ob->ts && ob->has_labels)
                clear_row(ob, NULL, i);
    free(ob->ids);
    free(ob->ts);
    free(ob->line);
    free(ob->text);
    free(ob->entities);
    free(ob->raw_features);
    free(ob->has_labels);
    craft_batch_free(&ob->in);
    memset(ob, 0, sizeof *ob);
}

/* ---------------------------------------------------------------- reader */

typedef struct { const char *key; int index; } slot;

struct craft_reader {
    FILE *f;
    int own_file;
    char *path;
    craft_format format;
    const craft_config *cfg;
    size_t max_line;
    char *buf;             /* the current line or record */
    size_t len, cap;
    size_t line;           /* line where the current order starts */
    size_t next_line;      /* line number of the next physical line */
    uint64_t done, total;
    int eof;
    int regular;           /* a regular file (an over-long line is skipped to its end, not abandoned) */
    /* feature name -> index (open addressing) */
    slot *slots;
    size_t nslots;
    /* CSV */
    int ncols;
    int *col_role;         /* role of each column */
    int *col_index;        /* feature index, modality, or class */
    char **col_name;
    char **fields;
    size_t *field_len;
    int fields_cap;
};

enum { COL_IGNORE, COL_ID, COL_TS, COL_TEXT, COL_ENTITY, COL_EMB, COL_LABEL, COL_LABEL_CLASS, COL_FEATURE,
       COL_EXTRA_FEATURE };

static int feature_index(const craft_reader *r, const char *name)
{
    if (!r->nslots)
        return -1;
    for (size_t i = craft_fnv1a_str(name) & (r->nslots - 1);; i = (i + 1) & (r->nslots - 1)) {
        if (!r->slots[i].key)
            return -1;
        if (strcmp(r->slots[i].key, name) == 0)
            return r->slots[i].index;
    }
}

static int reader_fail(craft_reader *r, craft_error *err, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return craft_fail(err, CRAFT_EINPUT, "%s:%zu: %s", r->path, r->line, msg);
}

int craft_reader_open(craft_reader **out, const char *path, craft_format format, const craft_config *cfg,
                      craft_error *err)
{
    *out = NULL;
    craft_reader *r = calloc(1, sizeof *r);
    if (!r)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    r->cfg = cfg;
    r->max_line = CRAFT_MAX_LINE_DEFAULT;
    r->next_line = 1;
    r->path = xstrdup(path);
    if (strcmp(path, "-") == 0) {
        r->f = stdin;
    } else {
        r->f = fopen(path, "rb");
        r->own_file = 1;
        if (!r->f) {
            int e = errno;
            craft_reader_close(r);
            return craft_fail(err, CRAFT_EIO, "%s: cannot open: %s", path, strerror(e));
        }
        struct stat st;
        if (fstat(fileno(r->f), &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                craft_reader_close(r);
                return craft_fail(err, CRAFT_EIO, "%s: cannot open: is a directory", path);
            }
            if (S_ISREG(st.st_mode)) {
                r->total = (uint64_t)st.st_size;
                r->regular = 1;
            }
        }
    }
    if (format == CRAFT_FORMAT_AUTO) {
        size_t n = strlen(path);
        format = n > 4 && strcasecmp(path + n - 4, ".csv") == 0 ? CRAFT_FORMAT_CSV : CRAFT_FORMAT_JSONL;
    }
    r->format = format;
    if (cfg->tabular >= 0) {
        const craft_modality *tm = &cfg->modalities[cfg->tabular];
        r->nslots = 16;
        while (r->nslots < (size_t)tm->n_features * 2)
            r->nslots *= 2;
        r->slots = calloc(r->nslots, sizeof *r->slots);
        if (!r->slots) {
            craft_reader_close(r);
            return craft_fail(err, CRAFT_ENOMEM, "out of memory");
        }
        for (int j = 0; j < tm->n_features; j++) {
            size_t i = craft_fnv1a_str(tm->features[j].name) & (r->nslots - 1);
            while (r->slots[i].key)
                i = (i + 1) & (r->nslots - 1);
            r->slots[i] = (slot){tm->features[j].name, j};
        }
    }
    *out = r;
    return CRAFT_OK;
}

void craft_reader_set_max_line(craft_reader *r, size_t max_line) { r->max_line = max_line; }
size_t craft_reader_line(const craft_reader *r) { return r->line; }

const char *craft_reader_last_text(const craft_reader *r, size_t *len)
{
    *len = r->len;
    return r->buf ? r->buf : "";
}

void craft_reader_progress(const craft_reader *r, uint64_t *done, uint64_t *total)
{
    *done = r->done;
    *total = r->total;
}

void craft_reader_close(craft_reader *r)
{
    if (!r)
        return;
    if (r->own_file && r->f)
        fclose(r->f);
    free(r->path);
    free(r->buf);
    free(r->slots);
    for (int c = 0; c < r->ncols; c++)
        free(r->col_name[c]);
    free(r->col_name);
    free(r->col_role);
    free(r->col_index);
    free(r->fields);
    free(r->field_len);
    free(r);
}

/* Makes room for need bytes in r->buf (need never exceeds max_line + 2). */
static int ensure(craft_reader *r, size_t need)
{
    if (need <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 1 << 16;
    while (cap < need)
        cap *= 2;
    if (cap > r->max_line + 2)
        cap = r->max_line + 2;
    if (cap < need)
        return -1;
    char *nb = realloc(r->buf, cap);
    if (!nb)
        return -1;
    r->buf = nb;
    r->cap = cap;
    return 0;
}

/* Appends one physical line (without its newline) to r->buf. Returns 1 when a
 * line was read, 0 at end of file, -1 when the line is too long: skipped to its end
 * in a regular file; elsewhere reading stops there for good (the rest of the line
 * may never end: /dev/zero, a pipe) and the reader is at its end afterwards. */
static int read_physical_line(craft_reader *r, int append)
{
    if (!append)
        r->len = 0;
    int c, got = 0, too_long = ensure(r, r->len + 1);
    while (!(too_long && !r->regular) && (c = getc_unlocked(r->f)) != EOF) {
        got = 1;
        r->done++;
        if (c == '\n')
            break;
        if (too_long)
            continue;
        if (r->len + 2 > r->cap && ensure(r, r->len + 2)) {
            too_long = 1;
            continue;
        }
        r->buf[r->len++] = (char)c;
    }
    if (too_long && !r->regular) {
        /* not a regular file: the rest of the line may never end (/dev/zero, a pipe):
         * reading stops here for good; a regular file's line is skipped to its end */
        r->eof = 1;
        r->len = 0;
        if (r->buf)
            r->buf[0] = 0;
        return -1;
    }
    if (!got)
        return 0;
    r->next_line++;
    if (too_long)
        return -1;
    if (r->len && r->buf[r->len - 1] == '\r')
        r->len--;
    r->buf[r->len] = 0;
    return 1;
}

/* ------------------------------------------------------- filling a row */

static int set_feature(craft_reader *r, craft_order_batch *ob, int row, int j, const char *name,
                       const char *str, double num, int is_null, int is_num, craft_error *err)
{
    const craft_config *cfg = r->cfg;
    const craft_feature *f = &cfg->modalities[cfg->tabular].features[j];
    float *dst = &ob->in.tab[(size_t)row * ob->in.F + j];
    if (is_null) {
        *dst = NAN;
        return CRAFT_OK;
    }
    if (f->type == CRAFT_NUMERIC) {
        if (!is_num)
            return reader_fail(r, err, "feature \"%s\" is numeric, got the text \"%.40s\"", name, str);
        if (!isfinite(num) || fabs(num) > 3.0e38)
            return reader_fail(r, err, "feature \"%s\": value %g is not a finite float32", name, num);
        *dst = (float)num;
    } else {
        char tmp[64];
        if (is_num) {
            snprintf(tmp, sizeof tmp, "%.17g", num);
            str = tmp;
        }
        *dst = (float)craft_category_code(cfg, f, str);
    }
    return CRAFT_OK;
}

static int raw_feature(craft_order_batch *ob, int row, const char *name, const char *str, double num, int kind)
{
    if (!ob->keep_raw)
        return 0;
    char tmp[64];
    if (kind == 1) {
        snprintf(tmp, sizeof tmp, "%.9g", num);
        str = tmp;
    } else if (kind == 2) {
        str = "";
    }
    return craft_kv_add(&ob->raw_features[row], name, str);
}

static int set_label(craft_reader *r, craft_order_batch *ob, int row, int k, double v, craft_error *err)
{
    if (!(v == 0 || v == 1))
        return reader_fail(r, err, "label \"%s\" must be 0 or 1, got %g", r->cfg->classes[k], v);
    ob->in.labels[(size_t)row * r->cfg->n_classes + k] = (float)v;
    ob->has_labels[row] = 1;
    ob->in.has_labels = 1;
    return CRAFT_OK;
}

static int set_class_label(craft_reader *r, craft_order_batch *ob, int row, const char *cls, craft_error *err)
{
    const craft_config *cfg = r->cfg;
    int hit = -1;
    for (int k = 0; k < cfg->n_classes; k++)
        if (strcmp(cfg->classes[k], cls) == 0)
            hit = k;
    if (hit < 0)
        return reader_fail(r, err, "label \"%.60s\" is not one of the model's classes", cls);
    for (int k = 0; k < cfg->n_classes; k++)
        ob->in.labels[(size_t)row * cfg->n_classes + k] = k == hit ? 1.0f : 0.0f;
    ob->has_labels[row] = 1;
    ob->in.has_labels = 1;
    return CRAFT_OK;
}

static int check_ts(craft_reader *r, const char *ts, craft_error *err)
{
    /* ISO 8601: at least YYYY-MM-DD; the rest is kept as given. */
    for (int i = 0; i < 10; i++) {
        char c = ts[i];
        int ok = (i == 4 || i == 7) ? c == '-' : (c >= '0' && c <= '9');
        if (!ok)
            return reader_fail(r, err, "\"ts\" \"%.40s\" is not an ISO 8601 date-time", ts);
    }
    return CRAFT_OK;
}

/* ---------------------------------------------------------------- JSONL */

static int dup_key(const cJSON *obj)
{
    /* Small objects: pairwise; large ones (hundreds of features): hash set. */
    int n = 0;
    for (const cJSON *a = obj->child; a; a = a->next)
        n++;
    if (n < 24) {
        for (const cJSON *a = obj->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0)
                    return 1;
        return 0;
    }
    size_t cap = 64;
    while (cap < (size_t)n * 2)
        cap *= 2;
    const char **set = calloc(cap, sizeof *set);
    if (!set)
        return 0;
    int dup = 0;
    for (const cJSON *a = obj->child; a && !dup; a = a->next) {
        size_t i = craft_fnv1a_str(a->string) & (cap - 1);
        while (set[i] && !(dup = strcmp(set[i], a->string) == 0))
            i = (i + 1) & (cap - 1);
        set[i] = a->string;
    }
    free(set);
    return dup;
}

static const char *dup_key_name(const cJSON *obj)
{
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return a->string;
    return "?";
}

static int parse_embedding(craft_reader *r, craft_order_batch *ob, int row, int m, const cJSON *v, craft_error *err)
{
    const craft_modality *mod = &r->cfg->modalities[m];
    if (cJSON_IsNull(v))
        return CRAFT_OK;
    if (!cJSON_IsArray(v) || !v->child)
        return reader_fail(r, err, "embedding \"%s\" must be a non-empty array of numbers or of arrays", mod->name);
    float *dst = ob->in.emb[m] + (size_t)row * mod->tokens * mod->dim;
    int t = 0;
    if (cJSON_IsArray(v->child)) {
        for (const cJSON *tok = v->child; tok; tok = tok->next) {
            if (t == mod->tokens)
                return reader_fail(r, err, "embedding \"%s\" has %d tokens, at most %d", mod->name,
                                   cJSON_GetArraySize(v), mod->tokens);
            if (!cJSON_IsArray(tok))
                return reader_fail(r, err, "embedding \"%s\": token %d is not an array", mod->name, t);
            int c = 0;
            for (const cJSON *x = tok->child; x; x = x->next, c++) {
                if (c == mod->dim || !cJSON_IsNumber(x)) {
                    c = c == mod->dim ? cJSON_GetArraySize(tok) : -1;
                    break;
                }
                if (!isfinite(x->valuedouble) || fabs(x->valuedouble) > 3.0e38)
                    return reader_fail(r, err, "embedding \"%s\": token %d holds a non-finite value", mod->name, t);
                dst[(size_t)t * mod->dim + c] = (float)x->valuedouble;
            }
            if (c != mod->dim)
                return c < 0 ? reader_fail(r, err, "embedding \"%s\": token %d holds a non-number", mod->name, t)
                             : reader_fail(r, err, "embedding \"%s\": token %d is %d wide, the model needs %d",
                                           mod->name, t, c, mod->dim);
            t++;
        }
    } else {
        int c = 0;
        for (const cJSON *x = v->child; x; x = x->next, c++) {
            if (c == mod->dim)
                return reader_fail(r, err, "embedding \"%s\" is %d wide, the model needs %d", mod->name,
                                   cJSON_GetArraySize(v), mod->dim);
            if (!cJSON_IsNumber(x))
                return reader_fail(r, err, "embedding \"%s\": element %d is not a number", mod->name, c);
            if (!isfinite(x->valuedouble) || fabs(x->valuedouble) > 3.0e38)
                return reader_fail(r, err, "embedding \"%s\": element %d is not a finite float32", mod->name, c);
            dst[c] = (float)x->valuedouble;
        }
        if (c != mod->dim)
            return reader_fail(r, err, "embedding \"%s\" is %d wide, the model needs %d", mod->name, c, mod->dim);
        t = 1;
    }
    ob->in.ntok[m][row] = t;
    return CRAFT_OK;
}

static int string_map(craft_reader *r, const cJSON *obj, const char *what, craft_kv *dst, int keep, craft_error *err)
{
    if (!obj || cJSON_IsNull(obj))
        return CRAFT_OK;
    if (!cJSON_IsObject(obj))
        return reader_fail(r, err, "\"%s\" must be an object", what);
    if (dup_key(obj))
        return reader_fail(r, err, "\"%s\" has the key \"%.60s\" twice", what, dup_key_name(obj));
    for (const cJSON *v = obj->child; v; v = v->next) {
        if (cJSON_IsNull(v))
            continue;
        if (!cJSON_IsString(v))
            return reader_fail(r, err, "\"%s.%.60s\" must be a string", what, v->string);
        if (keep && craft_kv_add(dst, v->string, v->valuestring))
            return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    return CRAFT_OK;
}

/* How deeply arrays and objects are nested at `at` (strings skipped): cJSON
 * refuses more than CJSON_NESTING_LIMIT levels, which deserves its own words. */
static long json_depth_at(const char *p, const char *at)
{
    long depth = 0;
    int in_string = 0;
    for (; p < at; p++) {
        if (in_string) {
            if (*p == '\\' && p + 1 < at)
                p++;
            else if (*p == '"')
                in_string = 0;
        } else if (*p == '"') {
            in_string = 1;
        } else if (*p == '[' || *p == '{') {
            depth++;
        } else if (*p == ']' || *p == '}') {
            depth--;
        }
    }
    return depth;
}

/* The column (1-based) of the first \u0000 escape inside a JSON string, or 0: cJSON
 * would decode it to a NUL and cut the string there (two ids becoming one). */
static size_t json_nul_escape(const char *p, size_t n)
{
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_string) {
            in_string = p[i] == '"';
        } else if (p[i] == '\\' && i + 1 < n) {
            if (p[i + 1] == 'u' && i + 5 < n && !memcmp(p + i + 2, "0000", 4))
                return i + 1;
            i++;
        } else if (p[i] == '"') {
            in_string = 0;
        }
    }
    return 0;
}

static int parse_json_order(craft_reader *r, craft_order_batch *ob, int row, craft_error *err)
{
    const craft_config *cfg = r->cfg;
    /* the same verdicts as craft import (app/store/import.c): a NUL byte, a \u0000
     * escape and text after the object are refused, never cut short or ignored */
    if (r->len >= 3 && !memcmp(r->buf, "\xEF\xBB\xBF", 3)) /* only the file's first line may start with one */
        return reader_fail(r, err, "an order must be a JSON object (a byte-order mark starts the line)");
    const char *nul = memchr(r->buf, 0, r->len);
    if (nul)
        return reader_fail(r, err, "not valid JSON: a NUL byte at column %zu", (size_t)(nul - r->buf) + 1);
    if (!craft_utf8_valid(r->buf, r->len))
        return reader_fail(r, err, "the line is not valid UTF-8");
    size_t esc = json_nul_escape(r->buf, r->len);
    if (esc)
        return reader_fail(r, err, "a string holds the NUL character (\\u0000) at column %zu", esc);
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(r->buf, r->len, &end, 0);
    if (o && end) {
        while (end < r->buf + r->len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (end < r->buf + r->len) {
            cJSON_Delete(o);
            return reader_fail(r, err, "not valid JSON (text after the order's closing brace) at column %zu",
                               (size_t)(end - r->buf) + 1);
        }
    }
    if (!o) {
        const char *at = cJSON_GetErrorPtr();
        long col = at && at >= r->buf && at <= r->buf + r->len ? (long)(at - r->buf) + 1 : 0;
        if (col && json_depth_at(r->buf, at) >= CJSON_NESTING_LIMIT)
            return reader_fail(r, err, "not valid JSON: nested deeper than %d levels (at column %ld)",
                               CJSON_NESTING_LIMIT, col);
        return reader_fail(r, err, "not valid JSON (at column %ld)", col);
    }
    int rc = CRAFT_OK;
    if (!cJSON_IsObject(o)) {
        rc = reader_fail(r, err, "an order must be a JSON object");
        goto done;
    }
    if (dup_key(o)) {
        rc = reader_fail(r, err, "the key \"%.60s\" appears twice", dup_key_name(o));
        goto done;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "order_id");
    if (!cJSON_IsString(id) || !id->valuestring[0]) {
        rc = reader_fail(r, err, "\"order_id\" is missing or not a non-empty string");
        goto done;
    }
    if (strlen(id->valuestring) > 256) {
        rc = reader_fail(r, err, "\"order_id\" is longer than 256 bytes");
        goto done;
    }
    if (!(ob->ids[row] = xstrdup(id->valuestring))) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
        goto done;
    }
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
    if (ts && !cJSON_IsNull(ts)) {
        if (!cJSON_IsString(ts)) {
            rc = reader_fail(r, err, "\"ts\" must be a string");
            goto done;
        }
        if ((rc = check_ts(r, ts->valuestring, err)))
            goto done;
        ob->ts[row] = xstrdup(ts->valuestring);
    }
    const cJSON *feats = cJSON_GetObjectItemCaseSensitive(o, "features");
    if (feats && !cJSON_IsNull(feats)) {
        if (!cJSON_IsObject(feats)) {
            rc = reader_fail(r, err, "\"features\" must be an object");
            goto done;
        }
        if (dup_key(feats)) {
            rc = reader_fail(r, err, "feature \"%.60s\" appears twice", dup_key_name(feats));
            goto done;
        }
        for (const cJSON *v = feats->child; v; v = v->next) {
            int is_null = cJSON_IsNull(v), is_num = cJSON_IsNumber(v), is_str = cJSON_IsString(v);
            if (!is_null && !is_num && !is_str) {
                rc = reader_fail(r, err, "feature \"%.60s\" must be a number, a string or null", v->string);
                goto done;
            }
            if (raw_feature(ob, row, v->string, is_str ? v->valuestring : NULL, is_num ? v->valuedouble : 0,
                            is_num ? 1 : is_null ? 2 : 0)) {
                rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
                goto done;
            }
            int j = feature_index(r, v->string);
            if (j < 0)
                continue; /* a feature this model does not use */
            if ((rc = set_feature(r, ob, row, j, v->string, is_str ? v->valuestring : "", is_num ? v->valuedouble : 0,
                                  is_null, is_num, err)))
                goto done;
        }
    }
    const cJSON *embs = cJSON_GetObjectItemCaseSensitive(o, "embeddings");
    if (embs && !cJSON_IsNull(embs)) {
        if (!cJSON_IsObject(embs)) {
            rc = reader_fail(r, err, "\"embeddings\" must be an object");
            goto done;
        }
        if (dup_key(embs)) {
            rc = reader_fail(r, err, "embedding \"%.60s\" appears twice", dup_key_name(embs));
            goto done;
        }
        for (const cJSON *v = embs->child; v; v = v->next) {
            int m = craft_config_find_modality(cfg, v->string);
            if (m < 0)
                continue;
            if (cfg->modalities[m].kind != CRAFT_EMBEDDING) {
                rc = reader_fail(r, err, "\"%s\" is the tabular modality; its values go under \"features\"", v->string);
                goto done;
            }
            if ((rc = parse_embedding(r, ob, row, m, v, err)))
                goto done;
        }
    }
    if ((rc = string_map(r, cJSON_GetObjectItemCaseSensitive(o, "text"), "text", &ob->text[row], ob->keep_raw, err)) ||
        (rc = string_map(r, cJSON_GetObjectItemCaseSensitive(o, "entities"), "entities", &ob->entities[row],
                         ob->keep_raw, err)))
        goto done;
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(o, "labels");
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(o, "label");
    if (label && !cJSON_IsNull(label)) {
        if (cfg->task != CRAFT_MULTICLASS || !cJSON_IsString(label)) {
            rc = reader_fail(r, err, cfg->task != CRAFT_MULTICLASS ? "\"label\" is for multiclass models; use \"labels\""
                                                                   : "\"label\" must be a class name");
            goto done;
        }
        if ((rc = set_class_label(r, ob, row, label->valuestring, err)))
            goto done;
    }
    if (labels && !cJSON_IsNull(labels)) {
        if (!cJSON_IsObject(labels)) {
            rc = reader_fail(r, err, "\"labels\" must be an object");
            goto done;
        }
        if (dup_key(labels)) {
            rc = reader_fail(r, err, "label \"%.60s\" appears twice", dup_key_name(labels));
            goto done;
        }
        for (const cJSON *v = labels->child; v; v = v->next) {
            int k = -1;
            for (int c = 0; c < cfg->n_classes; c++)
                if (strcmp(cfg->classes[c], v->string) == 0)
                    k = c;
            if (k < 0) {
                rc = reader_fail(r, err, "label \"%.60s\" is not one of the model's classes", v->string);
                goto done;
            }
            double x = cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1 : 0) : cJSON_IsNumber(v) ? v->valuedouble : -1;
            if (cJSON_IsNull(v))
                continue;
            if (cfg->task == CRAFT_MULTICLASS) {
                if (x == 1 && (rc = set_class_label(r, ob, row, cfg->classes[k], err)))
                    goto done;
                continue;
            }
            if ((rc = set_label(r, ob, row, k, x, err)))
                goto done;
        }
    }
    if (cfg->modalities[cfg->backbone].kind == CRAFT_EMBEDDING && ob->in.ntok[cfg->backbone][row] == 0)
        rc = reader_fail(r, err, "no \"%s\" embedding, and \"%s\" is the model's backbone",
                         cfg->modalities[cfg->backbone].name, cfg->modalities[cfg->backbone].name);
done:
    cJSON_Delete(o);
    return rc;
}

static int next_jsonl(craft_reader *r, craft_order_batch *ob, int *eof, craft_error *err)
{
    while (ob->in.n < ob->in.cap) {
        r->line = r->next_line;
        int got = read_physical_line(r, 0);
        if (got == 0) {
            *eof = r->eof = 1;
            return CRAFT_OK;
        }
        if (got < 0) {
            r->len = 0;
            return reader_fail(r, err, "the line is longer than %zu bytes", r->max_line);
        }
        if (r->line == 1 && r->len >= 3 && !memcmp(r->buf, "\xEF\xBB\xBF", 3)) {
            /* a UTF-8 byte-order mark at the start of the file is dropped (as craft import does) */
            memmove(r->buf, r->buf + 3, r->len - 3);
            r->len -= 3;
            r->buf[r->len] = 0;
        }
        size_t i = 0;
        while (i < r->len && (r->buf[i] == ' ' || r->buf[i] == '\t'))
            i++;
        if (i == r->len)
            continue; /* blank lines separate nothing; skip them */
        int row = ob->in.n;
        craft_batch_clear_order(&ob->in, r->cfg, row);
        ob->line[row] = r->line;
        int rc = parse_json_order(r, ob, row, err);
        if (rc) {
            clear_row(ob, r->cfg, row);
            return rc;
        }
        ob->in.n++;
    }
    return CRAFT_OK;
}

/* ------------------------------------------------------------------ CSV */

/* Reads one RFC 4180 record (quoted fields may hold newlines) into r->buf and
 * splits it into r->fields (unquoted in place). Returns 1, 0 at end, <0 on error. */
static int read_csv_record(craft_reader *r, craft_error *err)
{
    r->line = r->next_line;
    int got = read_physical_line(r, 0);
    if (got <= 0) {
        if (got < 0)
            return reader_fail(r, err, "the line is longer than %zu bytes", r->max_line), -1;
        return 0;
    }
    /* Append physical lines while a quote is open. */
    for (;;) {
        int inq = 0;
        for (size_t i = 0; i < r->len; i++)
            if (r->buf[i] == '"')
                inq = !inq;
        if (!inq)
            break;
        size_t keep = r->len;
        if (ensure(r, r->len + 2))
            return reader_fail(r, err, "the record is longer than %zu bytes", r->max_line), -1;
        r->buf[r->len++] = '\n';
        got = read_physical_line(r, 1);
        if (got == 0) {
            r->len = keep;
            return reader_fail(r, err, "a quoted field is not closed before the end of the file"), -1;
        }
        if (got < 0)
            return reader_fail(r, err, "the record is longer than %zu bytes", r->max_line), -1;
    }
    if (!craft_utf8_valid(r->buf, r->len))
        return reader_fail(r, err, "the record is not valid UTF-8"), -1;
    int n = 0;
    size_t i = 0;
    char *b = r->buf;
    for (;;) {
        if (n == r->fields_cap) {
            int cap = r->fields_cap ? r->fields_cap * 2 : 64;
            char **nf = realloc(r->fields, sizeof(char *) * cap);
            size_t *nl = nf ? realloc(r->field_len, sizeof(size_t) * cap) : NULL;
            if (!nf || !nl) {
                if (nf)
                    r->fields = nf;
                return craft_fail(err, CRAFT_ENOMEM, "out of memory"), -1;
            }
            r->fields = nf;
            r->field_len = nl;
            r->fields_cap = cap;
        }
        char *start = b + i, *w = start;
        if (i < r->len && b[i] == '"') {
            i++;
            for (;;) {
                if (i >= r->len)
                    return reader_fail(r, err, "field %d: unterminated quote", n + 1), -1;
                if (b[i] == '"') {
                    if (i + 1 < r->len && b[i + 1] == '"') {
                        *w++ = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                *w++ = b[i++];
            }
            if (i < r->len && b[i] != ',')
                return reader_fail(r, err, "field %d: text after a closing quote", n + 1), -1;
        } else {
            while (i < r->len && b[i] != ',') {
                if (b[i] == '"')
                    return reader_fail(r, err, "field %d: a quote inside an unquoted field", n + 1), -1;
                if (b[i] == '\r') /* as craft import: a bare CR is no line ending here */
                    return reader_fail(r, err, "field %d: a carriage return outside quotes (CR-only line endings?"
                                               " use LF or CRLF)", n + 1), -1;
                *w++ = b[i++];
            }
        }
        int at_end = i >= r->len;
        *w = 0; /* overwrites the comma (or the terminator) */
        r->fields[n] = start;
        r->field_len[n] = (size_t)(w - start);
        n++;
        if (at_end)
            break;
        i++; /* past the comma */
    }
    return n;
}

static int csv_header(craft_reader *r, craft_error *err)
{
    int n = read_csv_record(r, err);
    if (n < 0)
        return err ? err->code : CRAFT_EINPUT;
    if (n == 0) /* as craft import: a CSV file is a header at least */
        return craft_fail(err, CRAFT_EINPUT, "%s: the file is empty (a CSV file needs a header row)", r->path);
    const craft_config *cfg = r->cfg;
    r->ncols = n;
    r->col_role = calloc((size_t)n, sizeof(int));
    r->col_index = calloc((size_t)n, sizeof(int));
    r->col_name = calloc((size_t)n, sizeof(char *));
    if (!r->col_role || !r->col_index || !r->col_name)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    int have_id = 0;
    /* the names seen so far, hashed: a header of 300,000 columns is checked in linear time */
    size_t cap = 64;
    while (cap < (size_t)n * 2)
        cap *= 2;
    const char **seen = calloc(cap, sizeof *seen);
    if (!seen)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    for (int c = 0; c < n; c++) {
        const char *h = r->fields[c];
        size_t hl = r->field_len[c];
        if (c == 0 && hl >= 3 && (unsigned char)h[0] == 0xEF && (unsigned char)h[1] == 0xBB &&
            (unsigned char)h[2] == 0xBF)
            h += 3, hl -= 3; /* a byte-order mark */
        if (memchr(h, 0, hl)) {
            free(seen);
            return reader_fail(r, err, "header field %d holds a NUL byte", c + 1);
        }
        if (!*h) {
            free(seen);
            return reader_fail(r, err, "column %d has an empty name", c + 1);
        }
        if (!(r->col_name[c] = xstrdup(h))) {
            free(seen);
            return craft_fail(err, CRAFT_ENOMEM, "out of memory");
        }
        size_t at = craft_fnv1a_str(h) & (cap - 1);
        while (seen[at] && strcmp(seen[at], h))
            at = (at + 1) & (cap - 1);
        if (seen[at]) {
            free(seen);
            return reader_fail(r, err, "column \"%.60s\" appears twice in the header", h);
        }
        seen[at] = r->col_name[c];
        int role = COL_FEATURE, idx = -1;
        if (strcmp(h, "order_id") == 0) {
            role = COL_ID;
            have_id = 1;
        } else if (strcmp(h, "ts") == 0) {
            role = COL_TS;
        } else if (strncmp(h, "text:", 5) == 0) {
            role = COL_TEXT;
        } else if (strncmp(h, "entity:", 7) == 0) {
            role = COL_ENTITY;
        } else if (strncmp(h, "emb:", 4) == 0) {
            idx = craft_config_find_modality(cfg, h + 4);
            role = idx >= 0 && cfg->modalities[idx].kind == CRAFT_EMBEDDING ? COL_EMB : COL_IGNORE;
        } else if (strcmp(h, "label") == 0) {
            role = COL_LABEL_CLASS;
        } else if (strncmp(h, "label:", 6) == 0) {
            role = COL_IGNORE;
            for (int k = 0; k < cfg->n_classes; k++)
                if (strcmp(cfg->classes[k], h + 6) == 0) {
                    role = COL_LABEL;
                    idx = k;
                }
        } else {
            idx = feature_index(r, h);
            role = idx >= 0 ? COL_FEATURE : COL_EXTRA_FEATURE;
        }
        r->col_role[c] = role;
        r->col_index[c] = idx;
        if (role == COL_IGNORE && r->col_name[c][0] == 'l' && !strncmp(r->col_name[c], "label:", 6)) {
            free(seen);
            return reader_fail(r, err, "column \"%.60s\": \"%s\" is not one of the model's classes", h, h + 6);
        }
    }
    free(seen);
    if (!have_id)
        return reader_fail(r, err, "the header has no \"order_id\" column");
    return CRAFT_OK;
}

/* 1 when s is a number in JSON's grammar (-?int frac? exp?), as craft import reads a
 * CSV field: " 1", "+1", ".5", "1.", "0x10", "inf" and "nan" are text there, and
 * must be here too (strtod took them as numbers: the same file meant two things). */
static int json_number_syntax(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return 0;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == 0;
}

static int parse_number(const char *s, double *out)
{
    if (!json_number_syntax(s))
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end)
        return 0;
    *out = v;
    return 1;
}

static int parse_csv_order(craft_reader *r, craft_order_batch *ob, int row, int n, craft_error *err)
{
    const craft_config *cfg = r->cfg;
    if (n != r->ncols)
        return reader_fail(r, err, "%d fields, the header has %d", n, r->ncols);
    for (int c = 0; c < n; c++) /* as craft import: never cut a field at a NUL */
        if (memchr(r->fields[c], 0, r->field_len[c]))
            return reader_fail(r, err, "field %d (\"%.60s\") holds a NUL byte", c + 1, r->col_name[c]);
    for (int c = 0; c < n; c++) {
        const char *v = r->fields[c], *name = r->col_name[c];
        int idx = r->col_index[c];
        switch (r->col_role[c]) {
        case COL_ID:
            if (!v[0])
                return reader_fail(r, err, "\"order_id\" is empty");
            if (strlen(v) > 256)
                return reader_fail(r, err, "\"order_id\" is longer than 256 bytes");
            if (!(ob->ids[row] = xstrdup(v)))
                return craft_fail(err, CRAFT_ENOMEM, "out of memory");
            break;
        case COL_TS:
            if (v[0]) {
                int rc = check_ts(r, v, err);
                if (rc)
                    return rc;
                ob->ts[row] = xstrdup(v);
            }
            break;
        case COL_TEXT:
            if (v[0] && ob->keep_raw && craft_kv_add(&ob->text[row], name + 5, v))
                return craft_fail(err, CRAFT_ENOMEM, "out of memory");
            break;
        case COL_ENTITY:
            if (v[0] && ob->keep_raw && craft_kv_add(&ob->entities[row], name + 7, v))
                return craft_fail(err, CRAFT_ENOMEM, "out of memory");
            break;
        case COL_EMB: {
            if (!v[0])
                break;
            const craft_modality *mod = &cfg->modalities[idx];
            float *dst = ob->in.emb[idx] + (size_t)row * mod->tokens * mod->dim;
            int t = 0, k = 0;
            const char *p = v;
            /* floats separated by spaces; '|' separates tokens */
            for (;;) {
                while (*p == ' ' || *p == '\t')
                    p++;
                if (!*p || *p == '|') {
                    if (k != mod->dim)
                        return reader_fail(r, err, "column \"%s\": token %d is %d wide, the model needs %d", name, t,
                                           k, mod->dim);
                    t++;
                    k = 0;
                    if (!*p)
                        break;
                    p++;
                    if (t == mod->tokens)
                        return reader_fail(r, err, "column \"%s\": more than %d tokens", name, mod->tokens);
                    continue;
                }
                char *end;
                double x = strtod(p, &end);
                if (end == p)
                    return reader_fail(r, err, "column \"%s\": \"%.20s\" is not a number", name, p);
                if (k == mod->dim)
                    return reader_fail(r, err, "column \"%s\": token %d is wider than %d", name, t, mod->dim);
                if (!isfinite(x) || fabs(x) > 3.0e38)
                    return reader_fail(r, err, "column \"%s\": a value is not a finite float32", name);
                dst[(size_t)t * mod->dim + k++] = (float)x;
                p = end;
            }
            ob->in.ntok[idx][row] = t;
            break;
        }
        case COL_LABEL: {
            if (!v[0])
                break;
            double x;
            if (strcmp(v, "0") && strcmp(v, "1")) /* as craft import: "1.0" or " 1" is no label */
                return reader_fail(r, err, "column \"%s\": \"%.20s\" is not 0 or 1", name, v);
            x = v[0] - '0';
            if (cfg->task == CRAFT_MULTICLASS) {
                if (x == 1) {
                    int rc = set_class_label(r, ob, row, name + 6, err);
                    if (rc)
                        return rc;
                }
                break;
            }
            int rc = set_label(r, ob, row, idx, x, err);
            if (rc)
                return rc;
            break;
        }
        case COL_LABEL_CLASS:
            if (v[0]) {
                if (cfg->task != CRAFT_MULTICLASS)
                    return reader_fail(r, err, "a \"label\" column is for multiclass models; use label:<class>");
                int rc = set_class_label(r, ob, row, v, err);
                if (rc)
                    return rc;
            }
            break;
        case COL_FEATURE:
        case COL_EXTRA_FEATURE: {
            double x = 0;
            int is_null = !v[0], is_num = !is_null && parse_number(v, &x);
            if (raw_feature(ob, row, name, v, x, is_num ? 1 : is_null ? 2 : 0))
                return craft_fail(err, CRAFT_ENOMEM, "out of memory");
            if (r->col_role[c] == COL_FEATURE) {
                int rc = set_feature(r, ob, row, idx, name, v, x, is_null, is_num, err);
                if (rc)
                    return rc;
            }
            break;
        }
        default:
            break;
        }
    }
    if (cfg->modalities[cfg->backbone].kind == CRAFT_EMBEDDING && ob->in.ntok[cfg->backbone][row] == 0)
        return reader_fail(r, err, "no \"%s\" embedding, and it is the model's backbone",
                           cfg->modalities[cfg->backbone].name);
    return CRAFT_OK;
}

static int next_csv(craft_reader *r, craft_order_batch *ob, int *eof, craft_error *err)
{
    if (!r->col_role) {
        int rc = csv_header(r, err);
        if (rc)
            return rc;
        if (!r->col_role) {
            *eof = r->eof = 1;
            return CRAFT_OK;
        }
    }
    while (ob->in.n < ob->in.cap) {
        int n = read_csv_record(r, err);
        if (n < 0)
            return err ? err->code : CRAFT_EINPUT;
        if (n == 0) {
            *eof = r->eof = 1;
            return CRAFT_OK;
        }
        if (n == 1 && r->field_len[0] == 0)
            continue; /* an empty line */
        int row = ob->in.n;
        craft_batch_clear_order(&ob->in, r->cfg, row);
        ob->line[row] = r->line;
        int rc = parse_csv_order(r, ob, row, n, err);
        if (rc) {
            clear_row(ob, r->cfg, row);
            return rc;
        }
        ob->in.n++;
    }
    return CRAFT_OK;
}

int craft_reader_next(craft_reader *r, craft_order_batch *ob, int *eof, craft_error *err)
{
    *eof = r->eof;
    if (r->eof)
        return CRAFT_OK;
    return r->format == CRAFT_FORMAT_CSV ? next_csv(r, ob, eof, err) : next_jsonl(r, ob, eof, err);
}
