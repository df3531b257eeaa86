/* import.c: orders (JSONL, CSV) into the case store, in one transaction.
 *
 * Import is model-independent: features are stored by name against the
 * dataset's feature list (a float32 blob over that list plus a JSON object of
 * categorical values), text, entities, embeddings and labels in their tables.
 *
 * Speed: a 300-feature order is ~9 KB of JSON and the target is 20,000 orders/s
 * on two cores, so a reader thread parses while the caller's thread stores, and
 * they hand orders over in batches. The JSONL parser allocates nothing: strings
 * are decoded in place, feature names are matched against the one expected next
 * (files list features in one order) before a hash lookup, numbers take a fast
 * exact path (Clinger) and fall back to strtod, and all-ASCII lines skip the
 * UTF-8 decoder. The store side is one prepared single-row INSERT per row (forms
 * that make SQLite keep a statement journal cost more than the row), foreign key
 * checks off for the import's own rows, and the by-entity index built once at
 * the end when the import is large next to the store. Measured (2-core EPYC,
 * shared): about 19,000-21,000 orders per CPU-second on 200,000 orders.
 *
 * Memory is bounded whatever the file size: a ring of at most 128 orders (and
 * about 64 MB of their text), a bounded entity-id cache and SQLite's 128 MB
 * page cache, which spills to the WAL.
 *
 * Atomicity: everything happens in one transaction in WAL mode, so a kill at any
 * moment leaves the store as it was (WAL frames without a commit record are
 * ignored) and readers keep reading the before-state while an import runs.
 */
#include "scoring.h"
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINE CRAFT_MAX_LINE_DEFAULT
#define MAX_DEPTH 64
#define ENTITY_CACHE 65536   /* slots (a power of two) */

/* ------------------------------------------------------ growable buffers */

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static int buf_reserve(buf *b, size_t extra)
{
    if (b->n + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np)
        return -1;
    b->p = np;
    b->cap = cap;
    return 0;
}

static int buf_add(buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n))
        return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* Appends s as a JSON string literal. */
static int buf_json_string(buf *b, const char *s)
{
    if (buf_reserve(b, strlen(s) * 6 + 2))
        return -1;
    char *o = b->p + b->n;
    *o++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c;
        } else if (*c < 0x20) {
            o += sprintf(o, "\\u%04x", *c);
        } else {
            *o++ = (char)*c;
        }
    }
    *o++ = '"';
    b->n = (size_t)(o - b->p);
    b->p[b->n] = 0;
    return 0;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ------------------------------------------------ the dataset's features */

typedef struct {
    int64_t id;
    int n, cap;
    char **names;
    int *types;              /* CRAFT_NUMERIC, CRAFT_CATEGORICAL or -1 (no value seen yet) */
    size_t *lens;            /* strlen of each name */
    int n_stored;            /* features already in dataset_features */
    int *stored_type;        /* type as stored, to update the ones that changed */
    int *slots;              /* name hash -> index + 1 */
    size_t nslots;
} featmap;

static int featmap_find(const featmap *fm, const char *name)
{
    for (size_t i = fnv1a(name) & (fm->nslots - 1);; i = (i + 1) & (fm->nslots - 1)) {
        int j = fm->slots[i] - 1;
        if (j < 0)
            return -1;
        if (!strcmp(fm->names[j], name))
            return j;
    }
}

static int featmap_rehash(featmap *fm)
{
    size_t n = 256;
    while (n < (size_t)fm->cap * 2)
        n *= 2;
    int *s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    free(fm->slots);
    fm->slots = s;
    fm->nslots = n;
    for (int j = 0; j < fm->n; j++) {
        size_t i = fnv1a(fm->names[j]) & (n - 1);
        while (s[i])
            i = (i + 1) & (n - 1);
        s[i] = j + 1;
    }
    return 0;
}

static int featmap_add(featmap *fm, const char *name, int type)
{
    if (fm->n == fm->cap) {
        int cap = fm->cap ? fm->cap * 2 : 512;
        char **nn = realloc(fm->names, sizeof(char *) * cap);
        if (nn)
            fm->names = nn;
        int *nt = realloc(fm->types, sizeof(int) * cap);
        if (nt)
            fm->types = nt;
        int *ns = realloc(fm->stored_type, sizeof(int) * cap);
        if (ns)
            fm->stored_type = ns;
        size_t *nl = realloc(fm->lens, sizeof(size_t) * cap);
        if (nl)
            fm->lens = nl;
        if (!nn || !nt || !ns || !nl)
            return -1;
        fm->cap = cap;
    }
    if (!(fm->names[fm->n] = store_strdup(name)))
        return -1;
    fm->lens[fm->n] = strlen(name);
    fm->types[fm->n] = type;
    fm->stored_type[fm->n] = type;
    fm->n++;
    if ((size_t)fm->n * 2 > fm->nslots)
        return featmap_rehash(fm) ? -1 : fm->n - 1;
    size_t i = fnv1a(name) & (fm->nslots - 1);
    while (fm->slots[i])
        i = (i + 1) & (fm->nslots - 1);
    fm->slots[i] = fm->n;
    return fm->n - 1;
}

static void featmap_free(featmap *fm)
{
    store_free_strings(fm->names, fm->n);
    free(fm->types);
    free(fm->stored_type);
    free(fm->lens);
    free(fm->slots);
}

/* ------------------------------------------------------- one parsed order */

typedef struct { const char *k, *v; size_t vlen; } pair;
typedef struct { const char *name; int tokens, dim; size_t at; } emb_ref;
typedef struct { const char *cls; int value; } label_ref;

typedef struct {
    const char *order_id, *ts;
    float *vals;             /* [vals_cap] NaN = missing */
    int vals_cap;
    unsigned *seen;          /* feature -> stamp of the last order that set it */
    unsigned stamp;
    int next_feature;        /* the feature expected next: files list features in one order */
    buf cat;                 /* JSON object of categorical values */
    buf scratch;             /* numbers printed for categorical features */
    pair *text, *ent;
    int n_text, n_ent, cap_text, cap_ent;
    emb_ref *emb;
    int n_emb, cap_emb;
    float *embf;
    size_t n_embf, cap_embf;
    label_ref *labels;
    int n_labels, cap_labels;
    int nf;                  /* the dataset's feature count when the order was parsed */
    char reason[600];
} parsed;

static int grow(void **p, int *cap, int need, size_t size)
{
    if (need <= *cap)
        return 0;
    int c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *np = realloc(*p, size * c);
    if (!np)
        return -1;
    *p = np;
    *cap = c;
    return 0;
}

static int bad(parsed *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(parsed *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->reason, sizeof o->reason, fmt, ap);
    va_end(ap);
    return -1;
}

static void parsed_reset(parsed *o, int n_features)
{
    o->order_id = o->ts = NULL;
    for (int j = 0; j < n_features && j < o->vals_cap; j++)
        o->vals[j] = NAN;
    o->cat.n = 0;
    o->scratch.n = 0;
    o->n_text = o->n_ent = o->n_emb = o->n_labels = 0;
    o->n_embf = 0;
    o->stamp++;
    o->next_feature = 0;
    o->reason[0] = 0;
}

static void parsed_free(parsed *o)
{
    free(o->vals);
    free(o->seen);
    free(o->cat.p);
    free(o->scratch.p);
    free(o->text);
    free(o->ent);
    free(o->emb);
    free(o->embf);
    free(o->labels);
}

static int ensure_vals(parsed *o, int n)
{
    if (n <= o->vals_cap)
        return 0;
    int cap = o->vals_cap ? o->vals_cap : 512;
    while (cap < n)
        cap *= 2;
    float *nv = realloc(o->vals, sizeof(float) * cap);
    if (nv)
        o->vals = nv;
    unsigned *ns = realloc(o->seen, sizeof(unsigned) * cap);
    if (ns)
        o->seen = ns;
    if (!nv || !ns)
        return -1;
    for (int j = o->vals_cap; j < cap; j++) {
        o->vals[j] = NAN;
        o->seen[j] = 0;
    }
    o->vals_cap = cap;
    return 0;
}

/* Sets one feature of the order; type mismatches against the dataset are row errors. */
static int set_feature(parsed *o, featmap *fm, const char *name, size_t name_len, const char *str, double num,
                       int kind)
{
    /* kind: 0 string, 1 number, 2 null */
    int j = o->next_feature;
    if (j >= fm->n || fm->lens[j] != name_len || memcmp(fm->names[j], name, name_len))
        j = featmap_find(fm, name);
    if (j < 0) {
        if ((j = featmap_add(fm, name, kind == 2 ? -1 : kind == 1 ? CRAFT_NUMERIC : CRAFT_CATEGORICAL)) < 0 ||
            ensure_vals(o, fm->n))
            return bad(o, "out of memory");
    }
    if (o->seen[j] == o->stamp)
        return bad(o, "feature \"%.60s\" appears twice", name);
    o->seen[j] = o->stamp;
    o->next_feature = j + 1;
    if (kind == 2)
        return 0;
    if (fm->types[j] < 0)
        fm->types[j] = kind == 1 ? CRAFT_NUMERIC : CRAFT_CATEGORICAL;
    if (fm->types[j] == CRAFT_NUMERIC) {
        if (kind != 1)
            return bad(o, "feature \"%.60s\" is numeric in this dataset, got the text \"%.40s\"", name, str);
        if (!isfinite(num) || fabs(num) > 3.0e38)
            return bad(o, "feature \"%.60s\": value %g is not a finite float32", name, num);
        o->vals[j] = (float)num;
        return 0;
    }
    char tmp[40];
    if (kind == 1) {
        snprintf(tmp, sizeof tmp, "%.17g", num);
        str = tmp;
    }
    if (buf_add(&o->cat, o->cat.n ? "," : "{", 1) || buf_json_string(&o->cat, name) || buf_add(&o->cat, ":", 1) ||
        buf_json_string(&o->cat, str))
        return bad(o, "out of memory");
    return 0;
}

static int check_ts(parsed *o, const char *ts)
{
    /* ISO 8601: at least YYYY-MM-DD; the rest is kept as given (the readers' rule). */
    for (int i = 0; i < 10; i++) {
        char c = ts[i];
        int ok = (i == 4 || i == 7) ? c == '-' : (c >= '0' && c <= '9');
        if (!ok)
            return bad(o, "\"ts\" \"%.40s\" is not an ISO 8601 date-time", ts);
    }
    return 0;
}

static int check_id(parsed *o, const char *id)
{
    if (!id || !id[0])
        return bad(o, "\"order_id\" is missing or empty");
    if (strlen(id) > 256)
        return bad(o, "\"order_id\" is longer than 256 bytes");
    return 0;
}

static int add_pair(parsed *o, int text, const char *k, const char *v, size_t vlen)
{
    pair **arr = text ? &o->text : &o->ent;
    int *n = text ? &o->n_text : &o->n_ent, *cap = text ? &o->cap_text : &o->cap_ent;
    for (int i = 0; i < *n; i++)
        if (!strcmp((*arr)[i].k, k))
            return bad(o, "\"%s\" has the key \"%.60s\" twice", text ? "text" : "entities", k);
    if (grow((void **)arr, cap, *n + 1, sizeof(pair)))
        return bad(o, "out of memory");
    (*arr)[(*n)++] = (pair){k, v, vlen};
    return 0;
}

static int add_label(parsed *o, const char *cls, int value)
{
    for (int i = 0; i < o->n_labels; i++)
        if (!strcmp(o->labels[i].cls, cls))
            return bad(o, "label \"%.60s\" appears twice", cls);
    if (grow((void **)&o->labels, &o->cap_labels, o->n_labels + 1, sizeof(label_ref)))
        return bad(o, "out of memory");
    o->labels[o->n_labels++] = (label_ref){cls, value};
    return 0;
}

static int add_emb_float(parsed *o, double x)
{
    if (o->n_embf == o->cap_embf) {
        size_t c = o->cap_embf ? o->cap_embf * 2 : 1024;
        float *nf = realloc(o->embf, sizeof(float) * c);
        if (!nf)
            return bad(o, "out of memory");
        o->embf = nf;
        o->cap_embf = c;
    }
    o->embf[o->n_embf++] = (float)x;
    return 0;
}

/* ------------------------------------------------------------ JSON lines */

typedef struct {
    char *p, *end;
    parsed *o;
    size_t len;              /* the length of the string jstring decoded last */
    size_t key_len;          /* the length of the key of the member being parsed */
} jp;

static void ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Decodes the string at j->p (the opening quote) in place; *out is NUL-terminated. */
static int jstring(jp *j, char **out)
{
    if (j->p >= j->end || *j->p != '"')
        return bad(j->o, "not valid JSON (a string expected)");
    char *r = ++j->p, *w;
    *out = r;
    /* most strings have no escapes: find the end without copying */
    while (r < j->end && *r != '"' && *r != '\\' && (unsigned char)*r >= 0x20)
        r++;
    w = r;
    for (;;) {
        /* fast scan to the next quote, backslash or control character */
        while (r < j->end && *r != '"' && *r != '\\' && (unsigned char)*r >= 0x20)
            *w++ = *r++;
        if (r >= j->end)
            return bad(j->o, "not valid JSON (an unterminated string)");
        if (*r == '"') {
            j->p = r + 1;
            *w = 0;
            j->len = (size_t)(w - *out);
            return 0;
        }
        if ((unsigned char)*r < 0x20)
            return bad(j->o, "not valid JSON (a control character inside a string)");
        r++;
        if (r >= j->end)
            return bad(j->o, "not valid JSON (an unterminated string)");
        char c = *r++;
        switch (c) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            unsigned u;
            if (hex4(r, j->end, &u))
                return bad(j->o, "not valid JSON (a bad \\u escape)");
            r += 4;
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned lo;
                if (j->end - r < 6 || r[0] != '\\' || r[1] != 'u' || hex4(r + 2, j->end, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return bad(j->o, "not valid JSON (an unpaired surrogate in a \\u escape)");
                r += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                return bad(j->o, "not valid JSON (an unpaired surrogate in a \\u escape)");
            }
            if (u == 0)
                return bad(j->o, "a string holds the NUL character (\\u0000)");
            if (u < 0x80) {
                *w++ = (char)u;
            } else if (u < 0x800) {
                *w++ = (char)(0xC0 | (u >> 6));
                *w++ = (char)(0x80 | (u & 0x3F));
            } else if (u < 0x10000) {
                *w++ = (char)(0xE0 | (u >> 12));
                *w++ = (char)(0x80 | ((u >> 6) & 0x3F));
                *w++ = (char)(0x80 | (u & 0x3F));
            } else {
                *w++ = (char)(0xF0 | (u >> 18));
                *w++ = (char)(0x80 | ((u >> 12) & 0x3F));
                *w++ = (char)(0x80 | ((u >> 6) & 0x3F));
                *w++ = (char)(0x80 | (u & 0x3F));
            }
            break;
        }
        default: return bad(j->o, "not valid JSON (a bad escape \\%c)", c);
        }
    }
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parses a number with JSON's grammar in [p, end); the result is exactly strtod's. */
static int parse_number_span(const char *p, const char *end, double *out, const char **stop)
{
    const char *s = p;
    int neg = 0;
    if (p < end && *p == '-')
        neg = 1, p++;
    if (p >= end || !(*p >= '0' && *p <= '9'))
        return -1;
    uint64_t mant = 0;
    int digits = 0, exp10 = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                if (mant)
                    digits++;
            } else {
                exp10++;
            }
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !(*p >= '0' && *p <= '9'))
            return -1;
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                if (mant)
                    digits++;
                exp10--;
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, e = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p == '-', p++;
        if (p >= end || !(*p >= '0' && *p <= '9'))
            return -1;
        while (p < end && *p >= '0' && *p <= '9') {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    *stop = p;
    if (digits <= 15 && mant < (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
        /* Clinger's fast path: both operands exact, one correctly rounded operation. */
        double v = (double)mant;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
        *out = neg ? -v : v;
        return 0;
    }
    char tmp[512];
    size_t n = (size_t)(p - s);
    if (n >= sizeof tmp) {
        *out = strtod(s, NULL); /* the delimiter after a JSON number stops strtod */
        return 0;
    }
    memcpy(tmp, s, n);
    tmp[n] = 0;
    *out = strtod(tmp, NULL);
    return 0;
}

static int jnumber(jp *j, double *out)
{
    const char *stop;
    if (parse_number_span(j->p, j->end, out, &stop))
        return bad(j->o, "not valid JSON (a malformed number)");
    j->p = (char *)stop;
    return 0;
}

static int jliteral(jp *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
        return bad(j->o, "not valid JSON (\"%s\" expected)", lit);
    j->p += n;
    return 0;
}

/* Validates and skips any value. */
static int jskip(jp *j, int depth)
{
    if (depth > MAX_DEPTH)
        return bad(j->o, "JSON nested deeper than %d", MAX_DEPTH);
    ws(j);
    if (j->p >= j->end)
        return bad(j->o, "not valid JSON (the line ends early)");
    char c = *j->p;
    if (c == '"') {
        char *s;
        return jstring(j, &s);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                char *k;
                ws(j);
                if (jstring(j, &k))
                    return -1;
                ws(j);
                if (j->p >= j->end || *j->p != ':')
                    return bad(j->o, "not valid JSON (':' expected)");
                j->p++;
            }
            if (jskip(j, depth + 1))
                return -1;
            ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                return 0;
            }
            return bad(j->o, "not valid JSON ('%c' or ',' expected)", close);
        }
    }
    if (c == 't')
        return jliteral(j, "true");
    if (c == 'f')
        return jliteral(j, "false");
    if (c == 'n')
        return jliteral(j, "null");
    if (c != '-' && !(c >= '0' && c <= '9'))
        return bad(j->o, "not valid JSON (a value expected)");
    double d;
    return jnumber(j, &d);
}

/* Iterates an object: calls member(j, key, ctx) positioned at each value. */
typedef int (*member_fn)(jp *j, char *key, void *ctx);

static int jobject(jp *j, const char *what, member_fn member, void *ctx)
{
    ws(j);
    if (j->p >= j->end || *j->p != '{')
        return bad(j->o, "\"%s\" must be an object", what);
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        char *k;
        ws(j);
        if (jstring(j, &k))
            return -1;
        j->key_len = j->len;
        ws(j);
        if (j->p >= j->end || *j->p != ':')
            return bad(j->o, "not valid JSON (':' expected after \"%.60s\")", k);
        j->p++;
        ws(j);
        if (j->p >= j->end)
            return bad(j->o, "not valid JSON (the line ends early)");
        if (member(j, k, ctx))
            return -1;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return 0;
        }
        return bad(j->o, "not valid JSON ('}' or ',' expected)");
    }
}

static int is_null(jp *j)
{
    if (j->end - j->p >= 4 && !memcmp(j->p, "null", 4)) {
        j->p += 4;
        return 1;
    }
    return 0;
}

static int m_feature(jp *j, char *key, void *ctx)
{
    featmap *fm = ctx;
    size_t key_len = j->key_len;
    char c = *j->p;
    if (c == '"') {
        char *v;
        return jstring(j, &v) || set_feature(j->o, fm, key, key_len, v, 0, 0);
    }
    if (is_null(j))
        return set_feature(j->o, fm, key, key_len, NULL, 0, 2);
    if (c == '-' || (c >= '0' && c <= '9')) {
        double d;
        return jnumber(j, &d) || set_feature(j->o, fm, key, key_len, NULL, d, 1);
    }
    return bad(j->o, "feature \"%.60s\" must be a number, a string or null", key);
}

static int m_string_map(jp *j, char *key, void *ctx)
{
    int text = ctx != NULL;
    if (is_null(j))
        return 0;
    if (*j->p != '"')
        return bad(j->o, "\"%s.%.60s\" must be a string", text ? "text" : "entities", key);
    char *v;
    return jstring(j, &v) || add_pair(j->o, text, key, v, j->len);
}

static int m_label(jp *j, char *key, void *ctx)
{
    (void)ctx;
    if (is_null(j))
        return add_label(j->o, key, -1) ? -1 : (j->o->n_labels--, 0); /* checks duplicates only */
    int v = -1;
    if (*j->p == 't' && !jliteral(j, "true"))
        v = 1;
    else if (*j->p == 'f' && !jliteral(j, "false"))
        v = 0;
    else if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
        double d;
        if (jnumber(j, &d))
            return -1;
        v = d == 0 ? 0 : d == 1 ? 1 : -1;
    }
    if (v < 0)
        return bad(j->o, "label \"%.60s\" must be 0 or 1", key);
    return add_label(j->o, key, v);
}

/* One embedding: a vector, or an array of vectors of one width. */
static int m_embedding(jp *j, char *key, void *ctx)
{
    (void)ctx;
    parsed *o = j->o;
    if (is_null(j))
        return 0;
    for (int i = 0; i < o->n_emb; i++)
        if (!strcmp(o->emb[i].name, key))
            return bad(o, "embedding \"%.60s\" appears twice", key);
    if (*j->p != '[')
        return bad(o, "embedding \"%.60s\" must be a non-empty array of numbers or of arrays", key);
    j->p++;
    ws(j);
    size_t at = o->n_embf;
    int nested = j->p < j->end && *j->p == '[';
    int tokens = 0, dim = -1;
    for (;;) {
        ws(j);
        int width = 0;
        if (nested) {
            if (j->p >= j->end || *j->p != '[')
                return bad(o, "embedding \"%.60s\": token %d is not an array", key, tokens);
            j->p++;
        }
        for (;;) {
            ws(j);
            if (width == 0 && j->p < j->end && *j->p == ']')
                break;
            double d;
            if (j->p >= j->end || !(*j->p == '-' || (*j->p >= '0' && *j->p <= '9')))
                return bad(o, "embedding \"%.60s\": element %d is not a number", key, width);
            if (jnumber(j, &d))
                return -1;
            if (!isfinite(d) || fabs(d) > 3.0e38)
                return bad(o, "embedding \"%.60s\": element %d is not a finite float32", key, width);
            if (add_emb_float(o, d))
                return -1;
            width++;
            ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                if (!nested)
                    continue;
                continue;
            }
            break;
        }
        if (j->p >= j->end || *j->p != ']')
            return bad(o, "not valid JSON (']' expected in embedding \"%.60s\")", key);
        j->p++;
        if (!nested) {
            tokens = 1;
            dim = width;
            break;
        }
        if (dim >= 0 && width != dim)
            return bad(o, "embedding \"%.60s\": token %d is %d wide, token 0 is %d", key, tokens, width, dim);
        dim = width;
        tokens++;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            break;
        }
        return bad(o, "not valid JSON (']' expected in embedding \"%.60s\")", key);
    }
    if (dim <= 0)
        return bad(o, "embedding \"%.60s\" is empty", key);
    if (grow((void **)&o->emb, &o->cap_emb, o->n_emb + 1, sizeof(emb_ref)))
        return bad(o, "out of memory");
    o->emb[o->n_emb++] = (emb_ref){key, tokens, dim, at};
    return 0;
}

typedef struct {
    featmap *fm;
    unsigned seen;   /* bit per top-level key, to refuse duplicates */
} top_ctx;

static int m_top(jp *j, char *key, void *ctx)
{
    top_ctx *t = ctx;
    parsed *o = j->o;
    static const char *const keys[] = {"order_id", "ts", "features", "text", "entities", "embeddings", "labels", "label"};
    int which = -1;
    for (int i = 0; i < 8; i++)
        if (!strcmp(key, keys[i]))
            which = i;
    if (which < 0)
        return jskip(j, 1); /* extension keys are allowed and ignored */
    if (t->seen & (1u << which))
        return bad(o, "the key \"%s\" appears twice", key);
    t->seen |= 1u << which;
    if (which <= 1 || which == 7) {
        if (is_null(j))
            return 0;
        char *v;
        if (*j->p != '"')
            return bad(o, "\"%s\" must be a string", key);
        if (jstring(j, &v))
            return -1;
        if (which == 0)
            o->order_id = v;
        else if (which == 1)
            o->ts = v;
        else
            return add_label(o, v, 1); /* multiclass: "label": "<class>" */
        return 0;
    }
    if (is_null(j))
        return 0;
    switch (which) {
    case 2: return jobject(j, "features", m_feature, t->fm);
    case 3: return jobject(j, "text", m_string_map, (void *)1);
    case 4: return jobject(j, "entities", m_string_map, NULL);
    case 5: return jobject(j, "embeddings", m_embedding, NULL);
    default: return jobject(j, "labels", m_label, NULL);
    }
}

/* craft_utf8_valid, with a word-at-a-time pass for the usual all-ASCII line. */
static int line_utf8_valid(const char *line, size_t len)
{
    uint64_t high = 0;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t w[4];
        memcpy(w, line + i, sizeof w);
        high |= w[0] | w[1] | w[2] | w[3];
    }
    for (; i < len; i++)
        high |= (unsigned char)line[i];
    return !(high & 0x8080808080808080ull) || craft_utf8_valid(line, len);
}

static int parse_json_line(parsed *o, featmap *fm, char *line, size_t len)
{
    if (!line_utf8_valid(line, len))
        return bad(o, "the line is not valid UTF-8");
    jp j = {line, line + len, o};
    top_ctx t = {fm, 0};
    ws(&j);
    if (j.p >= j.end || *j.p != '{')
        return bad(o, "an order must be a JSON object");
    if (jobject(&j, "order", m_top, &t)) {
        /* where the parser stopped: a byte column of the line as given (strings are
         * decoded in place, behind the read position) */
        size_t n = strlen(o->reason);
        if (!strncmp(o->reason, "not valid JSON", 14) && n + 32 < sizeof o->reason)
            snprintf(o->reason + n, sizeof o->reason - n, " at column %zu", (size_t)(j.p - line) + 1);
        return -1;
    }
    ws(&j);
    if (j.p != j.end)
        return bad(o, "not valid JSON (text after the order's closing brace) at column %zu", (size_t)(j.p - line) + 1);
    if (check_id(o, o->order_id))
        return -1;
    if (o->ts && check_ts(o, o->ts))
        return -1;
    return 0;
}

/* ----------------------------------------------------------- file input */

typedef struct {
    FILE *f;
    const char *path;
    char *chunk;
    size_t chunk_len, chunk_pos;
    buf line;
    size_t lineno;           /* line of the record being read */
    size_t next_line;
    uint64_t done, total;
    int eof;
    int too_long;            /* the record was longer than MAX_LINE (skipped) */
    int stopped;             /* ...in a file that is not regular: reading stopped there for good */
    int regular;             /* a regular file (its pages can be dropped once read) */
    off_t dropped;           /* bytes from the start given back to the page cache */
} input;

#define CHUNK (1u << 20)

static int input_open(input *in, const char *path, craft_error *err)
{
    memset(in, 0, sizeof *in);
    in->path = path;
    in->next_line = 1;
    if (!strcmp(path, "-")) {
        in->f = stdin;
    } else if (!(in->f = fopen(path, "rb"))) {
        return craft_fail(err, CRAFT_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(in->f), &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            fclose(in->f);
            return craft_fail(err, CRAFT_EIO, "%s: cannot open: is a directory", path);
        }
        if (S_ISREG(st.st_mode)) {
            in->total = (uint64_t)st.st_size;
            in->regular = 1;
        }
    }
    if (!(in->chunk = malloc(CHUNK))) {
        if (in->f != stdin)
            fclose(in->f);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    return CRAFT_OK;
}

static void input_close(input *in)
{
    if (in->f && in->f != stdin)
        fclose(in->f);
    free(in->chunk);
    free(in->line.p);
}

/* Next byte, or -1 at the end of the file (-2 on a read error). */
static inline int input_byte(input *in)
{
    if (in->chunk_pos == in->chunk_len) {
        if (in->eof)
            return -1;
        if (in->regular) {
            /* the text read so far is parsed: let the kernel drop it from its page
             * cache, so a file larger than memory does not push out the store's
             * own pages (the WAL the commit copies back, the B-tree pages) */
            off_t at = ftello(in->f);
            if (at > in->dropped) {
                posix_fadvise(fileno(in->f), in->dropped, at - in->dropped, POSIX_FADV_DONTNEED);
                in->dropped = at;
            }
        }
        in->chunk_len = fread(in->chunk, 1, CHUNK, in->f);
        in->chunk_pos = 0;
        if (in->chunk_len == 0) {
            in->eof = 1;
            return ferror(in->f) ? -2 : -1;
        }
    }
    in->done++;
    return (unsigned char)in->chunk[in->chunk_pos++];
}

/* Reads one physical line (without its newline) into in->line. 0 ok, 1 end of file, -1 read error. */
static int input_line(input *in, int append)
{
    if (!append) {
        in->line.n = 0;
        in->too_long = 0;
        in->lineno = in->next_line;
    }
    int any = append;
    for (;;) {
        if (in->chunk_pos == in->chunk_len) {
            int c = input_byte(in);
            if (c == -2)
                return -1;
            if (c == -1)
                return any ? 0 : 1;
            in->chunk_pos--;
            in->done--;
        }
        any = 1;
        char *start = in->chunk + in->chunk_pos;
        size_t avail = in->chunk_len - in->chunk_pos;
        char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        if (!in->too_long && in->line.n + take > MAX_LINE) {
            in->too_long = 1;
            if (!in->regular) {
                /* not a regular file: the rest of the line may never end (/dev/zero, a
                 * pipe), so reading stops here for good and the caller refuses the whole
                 * input; a regular file's line is skipped to its end (the file ends) */
                in->stopped = 1;
                in->eof = 1;
                in->chunk_pos = in->chunk_len;
                return 0;
            }
        } else if (!in->too_long && buf_add(&in->line, start, take)) {
            return -1;
        }
        in->chunk_pos += take + (nl ? 1 : 0);
        in->done += take + (nl ? 1 : 0);
        if (nl) {
            in->next_line++;
            if (in->line.n && in->line.p[in->line.n - 1] == '\r')
                in->line.p[--in->line.n] = 0;
            return 0;
        }
    }
}

/* ----------------------------------------------------------------- CSV */

enum { COL_IGNORE, COL_ID, COL_TS, COL_TEXT, COL_ENTITY, COL_EMB, COL_LABEL, COL_LABEL_CLASS, COL_FEATURE };

typedef struct {
    int ncols;
    int *role;
    char **name;             /* the column name without its prefix */
    size_t *start, *len;     /* fields of the current record, in the record buffer */
    buf rec;                 /* the record with quotes removed, fields NUL-separated */
} csv;

static void csv_free(csv *c)
{
    store_free_strings(c->name, c->ncols);
    free(c->role);
    free(c->start);
    free(c->len);
    free(c->rec.p);
}

/* Reads one CSV record (which may span lines) into c->rec; returns the field count,
 * 0 at the end of the file, -1 on a bad record (reason in o), -2 on a read error. */
static int csv_record(input *in, csv *c, int max_fields, parsed *o)
{
    int rc = input_line(in, 0);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return -2;
    if (in->stopped)
        return bad(o, "the record is longer than %u bytes", MAX_LINE), -3;
    c->rec.n = 0;
    int n = 0;
    size_t i = 0;
    for (;;) {
        /* one field starting at line offset i */
        if (n == max_fields)
            return bad(o, "more than %d fields", max_fields), -1;
        if (buf_reserve(&c->rec, in->line.n - i + 1))
            return bad(o, "out of memory"), -1;
        c->start[n] = c->rec.n;
        if (i < in->line.n && in->line.p[i] == '"') {
            i++;
            for (;;) {
                if (i >= in->line.n) {
                    /* the quoted field goes on over the newline */
                    if (buf_add(&c->rec, "\n", 1))
                        return bad(o, "out of memory"), -1;
                    size_t keep = in->line.n;
                    rc = input_line(in, 1);
                    if (rc < 0)
                        return -2;
                    if (in->line.n == keep && in->eof)
                        return bad(o, "a quoted field is not closed before the end of the file"), -1;
                    if (in->too_long)
                        return bad(o, "the record is longer than %u bytes", MAX_LINE), in->stopped ? -3 : -1;
                    if (buf_reserve(&c->rec, in->line.n - i + 1))
                        return bad(o, "out of memory"), -1;
                    continue;
                }
                char ch = in->line.p[i];
                if (ch == '"') {
                    if (i + 1 < in->line.n && in->line.p[i + 1] == '"') {
                        c->rec.p[c->rec.n++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                c->rec.p[c->rec.n++] = ch;
                i++;
            }
            if (i < in->line.n && in->line.p[i] != ',')
                return bad(o, "field %d: text after a closing quote", n + 1), -1;
        } else {
            while (i < in->line.n && in->line.p[i] != ',') {
                if (in->line.p[i] == '"')
                    return bad(o, "field %d: a quote inside an unquoted field", n + 1), -1;
                if (in->line.p[i] == '\r') /* as craft score: a bare CR is no line ending here */
                    return bad(o, "field %d: a carriage return outside quotes (CR-only line endings? use LF or"
                                  " CRLF)", n + 1), -1;
                c->rec.p[c->rec.n++] = in->line.p[i++];
            }
        }
        c->len[n] = c->rec.n - c->start[n];
        c->rec.p[c->rec.n++] = 0;
        n++;
        if (i >= in->line.n)
            break;
        i++; /* the comma */
        if (i == in->line.n) {
            /* a trailing comma: one more, empty field */
            if (n == max_fields)
                return bad(o, "more than %d fields", max_fields), -1;
            if (buf_reserve(&c->rec, 1))
                return bad(o, "out of memory"), -1;
            c->start[n] = c->rec.n;
            c->len[n] = 0;
            c->rec.p[c->rec.n++] = 0;
            n++;
            break;
        }
    }
    if (in->too_long)
        return bad(o, "the record is longer than %u bytes", MAX_LINE), in->stopped ? -3 : -1;
    return n;
}

static int csv_header(input *in, csv *c, parsed *o, craft_error *err)
{
    int cap = 4096;
    c->start = malloc(sizeof(size_t) * cap);
    c->len = malloc(sizeof(size_t) * cap);
    if (!c->start || !c->len)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    int n = csv_record(in, c, cap, o);
    if (n == 0)
        return craft_fail(err, CRAFT_EINPUT, "%s: the file is empty (a CSV file needs a header row)", in->path);
    if (n < 0)
        return n == -2 ? craft_fail(err, CRAFT_EIO, "%s: read error: %s", in->path, strerror(errno))
                       : craft_fail(err, CRAFT_EINPUT, "%s:%zu: header: %s", in->path, in->lineno, o->reason);
    if (!craft_utf8_valid(c->rec.p, c->rec.n))
        return craft_fail(err, CRAFT_EINPUT, "%s:%zu: the header is not valid UTF-8", in->path, in->lineno);
    c->ncols = n;
    c->role = calloc((size_t)n, sizeof(int));
    c->name = calloc((size_t)n, sizeof(char *));
    if (!c->role || !c->name)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    int has_id = 0;
    /* a UTF-8 byte-order mark before the first column name is dropped (as craft score does) */
    if (c->len[0] >= 3 && !memcmp(c->rec.p + c->start[0], "\xEF\xBB\xBF", 3)) {
        c->start[0] += 3;
        c->len[0] -= 3;
    }
    for (int k = 0; k < n; k++) {
        const char *h = c->rec.p + c->start[k];
        const char *name = h;
        int role = COL_FEATURE;
        if (memchr(h, 0, c->len[k])) /* as craft score: never a name cut at a NUL */
            return craft_fail(err, CRAFT_EINPUT, "%s:%zu: header field %d holds a NUL byte", in->path, in->lineno,
                              k + 1);
        if (!strcmp(h, "order_id"))
            role = COL_ID, has_id = 1;
        else if (!strcmp(h, "ts"))
            role = COL_TS;
        else if (!strcmp(h, "label"))
            role = COL_LABEL_CLASS;
        else if (!strncmp(h, "text:", 5))
            role = COL_TEXT, name = h + 5;
        else if (!strncmp(h, "entity:", 7))
            role = COL_ENTITY, name = h + 7;
        else if (!strncmp(h, "emb:", 4))
            role = COL_EMB, name = h + 4;
        else if (!strncmp(h, "label:", 6))
            role = COL_LABEL, name = h + 6;
        if (!*name)
            return craft_fail(err, CRAFT_EINPUT, "%s:%zu: column %d has an empty name", in->path, in->lineno, k + 1);
        for (int q = 0; q < k; q++)
            if (!strcmp(c->rec.p + c->start[q], h))
                return craft_fail(err, CRAFT_EINPUT, "%s:%zu: the column \"%.60s\" appears twice", in->path,
                                  in->lineno, h);
        c->role[k] = role;
        if (!(c->name[k] = store_strdup(name)))
            return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    if (!has_id)
        return craft_fail(err, CRAFT_EINPUT, "%s:%zu: the header has no order_id column", in->path, in->lineno);
    return CRAFT_OK;
}

static int parse_csv_fields(parsed *o, featmap *fm, csv *c, int n)
{
    if (n != c->ncols)
        return bad(o, "%d fields, the header has %d", n, c->ncols);
    if (!craft_utf8_valid(c->rec.p, c->rec.n))
        return bad(o, "the row is not valid UTF-8");
    for (int k = 0; k < n; k++) {
        char *v = c->rec.p + c->start[k];
        size_t len = c->len[k];
        const char *name = c->name[k];
        if (memchr(v, 0, len))
            return bad(o, "field %d (\"%.60s\") holds a NUL byte", k + 1, name);
        switch (c->role[k]) {
        case COL_ID: o->order_id = v; break;
        case COL_TS:
            if (len)
                o->ts = v;
            break;
        case COL_TEXT:
            if (len && add_pair(o, 1, name, v, len))
                return -1;
            break;
        case COL_ENTITY:
            if (len && add_pair(o, 0, name, v, len))
                return -1;
            break;
        case COL_LABEL_CLASS:
            if (len && add_label(o, v, 1))
                return -1;
            break;
        case COL_LABEL:
            if (!len)
                break;
            if (strcmp(v, "0") && strcmp(v, "1"))
                return bad(o, "label \"%.60s\" must be 0, 1 or empty, got \"%.20s\"", name, v);
            if (add_label(o, name, v[0] - '0'))
                return -1;
            break;
        case COL_EMB: {
            if (!len)
                break;
            size_t at = o->n_embf;
            const char *p = v, *end = v + len;
            int dim = 0;
            while (p < end) {
                while (p < end && *p == ' ')
                    p++;
                if (p >= end)
                    break;
                double d;
                const char *stop;
                if (parse_number_span(p, end, &d, &stop) || (stop < end && *stop != ' '))
                    return bad(o, "embedding \"%.60s\": element %d is not a number", name, dim);
                if (!isfinite(d) || fabs(d) > 3.0e38)
                    return bad(o, "embedding \"%.60s\": element %d is not a finite float32", name, dim);
                if (add_emb_float(o, d))
                    return -1;
                dim++;
                p = stop;
            }
            if (!dim)
                break;
            if (grow((void **)&o->emb, &o->cap_emb, o->n_emb + 1, sizeof(emb_ref)))
                return bad(o, "out of memory");
            o->emb[o->n_emb++] = (emb_ref){name, 1, dim, at};
            break;
        }
        case COL_FEATURE: {
            if (!len) {
                if (set_feature(o, fm, name, strlen(name), NULL, 0, 2))
                    return -1;
                break;
            }
            double d;
            const char *stop;
            int numeric = !parse_number_span(v, v + len, &d, &stop) && stop == v + len;
            if (set_feature(o, fm, name, strlen(name), v, numeric ? d : 0, numeric ? 1 : 0))
                return -1;
            break;
        }
        default: break;
        }
    }
    if (check_id(o, o->order_id))
        return -1;
    if (o->ts && check_ts(o, o->ts))
        return -1;
    return 0;
}

/* ----------------------------------------------------------- the writer */

typedef struct {
    char *key;
    int64_t id;
} entity_slot;

typedef struct {
    craft_store *s;
    const craft_import_options *o;
    craft_import_stats *stats;
    featmap fm;
    double now;
    sqlite3_stmt *ins_order, *find_order, *upd_order, *ins_text, *find_entity, *ins_entity, *ins_link, *ins_emb,
        *ins_label;
    sqlite3_stmt *clear[8];
    entity_slot *cache;
    buf key;
} writer;

static const char *const clear_sql[8] = {
    "DELETE FROM order_text WHERE order_id = ?1",
    "DELETE FROM order_entities WHERE order_id = ?1",
    "DELETE FROM embeddings WHERE order_id = ?1",
    "DELETE FROM labels WHERE order_id = ?1 AND source = 'import'",
    "DELETE FROM predictions WHERE order_id = ?1",
    "DELETE FROM explanations WHERE order_id = ?1",
    "DELETE FROM class_scores WHERE order_id = ?1",
    NULL,
};

static int writer_prepare(writer *w, craft_error *err)
{
    craft_store *s = w->s;
    if (store_prepare(s, &w->ins_order,
                      "INSERT INTO orders(dataset_id, order_id, ts, num, cat, imported) VALUES(?1,?2,?3,?4,?5,?6)", err) ||
        store_prepare(s, &w->find_order, "SELECT id FROM orders WHERE order_id = ?", err) ||
        store_prepare(s, &w->upd_order,
                      "UPDATE orders SET dataset_id = ?1, ts = ?3, num = ?4, cat = ?5, imported = ?6 WHERE id = ?7",
                      err) ||
        /* plain INSERTs (no OR REPLACE, OR IGNORE, nor several rows per statement): a
         * conflict cannot happen (a new order has no rows, a replaced one lost its
         * imported ones, a key repeated within an order is a bad row), and those forms
         * make SQLite keep a statement journal for every row, which doubles the
         * import's kernel time */
        store_prepare(s, &w->ins_text, "INSERT INTO order_text(order_id, field, value) VALUES(?,?,?)", err) ||
        store_prepare(s, &w->find_entity, "SELECT id FROM entities WHERE type = ? AND entity_id = ?", err) ||
        store_prepare(s, &w->ins_entity, "INSERT INTO entities(type, entity_id) VALUES(?,?)", err) ||
        store_prepare(s, &w->ins_link, "INSERT INTO order_entities(order_id, entity) VALUES(?,?)", err) ||
        store_prepare(s, &w->ins_emb, "INSERT INTO embeddings(order_id, modality, tokens, dim, data) VALUES(?,?,?,?,?)",
                      err) ||
        store_prepare(s, &w->ins_label,
                      "INSERT INTO labels(order_id, class, value, source, at) VALUES(?,?,?,'import',?)", err))
        return err->code;
    for (int i = 0; clear_sql[i]; i++)
        if (store_prepare(s, &w->clear[i], clear_sql[i], err))
            return err->code;
    if (!(w->cache = calloc(ENTITY_CACHE, sizeof *w->cache)))
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    return CRAFT_OK;
}

static void writer_free(writer *w)
{
    sqlite3_stmt *all[] = {w->ins_order, w->find_order, w->upd_order, w->ins_text, w->find_entity,
                           w->ins_entity, w->ins_link, w->ins_emb, w->ins_label};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        sqlite3_finalize(all[i]);
    for (int i = 0; i < 8; i++)
        sqlite3_finalize(w->clear[i]);
    if (w->cache)
        for (int i = 0; i < ENTITY_CACHE; i++)
            free(w->cache[i].key);
    free(w->cache);
    free(w->key.p);
    featmap_free(&w->fm);
}

static int step_done(writer *w, sqlite3_stmt *st, craft_error *err, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_fail(w->s, err, what);
    return CRAFT_OK;
}

/* The row id of entity (type, id), inserting it when new. */
static int entity_id(writer *w, const char *type, const char *id, int64_t *out, craft_error *err)
{
    w->key.n = 0;
    if (buf_add(&w->key, type, strlen(type) + 1) || buf_add(&w->key, id, strlen(id)))
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    size_t klen = w->key.n;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < klen; i++)
        h = (h ^ (unsigned char)w->key.p[i]) * 1099511628211ull;
    entity_slot *slot = &w->cache[h & (ENTITY_CACHE - 1)];
    size_t tl = strlen(type);
    if (slot->key && !strcmp(slot->key, type) && !strcmp(slot->key + tl + 1, id)) {
        *out = slot->id;
        return CRAFT_OK;
    }
    sqlite3_bind_text(w->find_entity, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(w->find_entity, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(w->find_entity);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(w->find_entity, 0);
    sqlite3_reset(w->find_entity);
    if (rc == SQLITE_DONE) {
        sqlite3_bind_text(w->ins_entity, 1, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(w->ins_entity, 2, id, -1, SQLITE_STATIC);
        if (step_done(w, w->ins_entity, err, "storing an entity"))
            return err->code;
        *out = sqlite3_last_insert_rowid(w->s->db);
    } else if (rc != SQLITE_ROW) {
        return store_fail(w->s, err, "finding an entity");
    }
    char *k = malloc(klen + 1);
    if (k) {
        memcpy(k, w->key.p, klen);
        k[klen] = 0;
        free(slot->key);
        slot->key = k;
        slot->id = *out;
    }
    return CRAFT_OK;
}

/* Stores one parsed order. Returns CRAFT_OK, CRAFT_EINPUT for a duplicate
 * (reason in o), or another code for a store failure (in err). */
static int write_order(writer *w, parsed *o, int64_t dataset_id, craft_error *err)
{
    int nf = o->nf;
    /* trailing missing features need not be stored: a shorter blob means missing */
    while (nf > 0 && isnan(o->vals[nf - 1]))
        nf--;
    sqlite3_stmt *st = w->ins_order;
    sqlite3_bind_int64(st, 1, dataset_id);
    sqlite3_bind_text(st, 2, o->order_id, -1, SQLITE_STATIC);
    if (o->ts)
        sqlite3_bind_text(st, 3, o->ts, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    if (nf)
        sqlite3_bind_blob(st, 4, o->vals, nf * (int)sizeof(float), SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    if (o->cat.n && !buf_add(&o->cat, "}", 1))
        sqlite3_bind_text(st, 5, o->cat.p, (int)o->cat.n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_double(st, 6, w->now);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    int64_t oid;
    if (rc == SQLITE_DONE) {
        oid = sqlite3_last_insert_rowid(w->s->db);
    } else if (rc == SQLITE_CONSTRAINT) {
        if (!w->o->replace) {
            bad(o, "duplicate order_id \"%.80s\" (already in the store or earlier in the import; --replace replaces it)",
                o->order_id);
            return CRAFT_EINPUT;
        }
        sqlite3_bind_text(w->find_order, 1, o->order_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(w->find_order);
        oid = rc == SQLITE_ROW ? sqlite3_column_int64(w->find_order, 0) : 0;
        sqlite3_reset(w->find_order);
        if (rc != SQLITE_ROW)
            return store_fail(w->s, err, "finding the order to replace");
        sqlite3_stmt *u = w->upd_order;
        sqlite3_bind_int64(u, 1, dataset_id);
        if (o->ts)
            sqlite3_bind_text(u, 3, o->ts, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(u, 3);
        if (nf)
            sqlite3_bind_blob(u, 4, o->vals, nf * (int)sizeof(float), SQLITE_STATIC);
        else
            sqlite3_bind_null(u, 4);
        if (o->cat.n)
            sqlite3_bind_text(u, 5, o->cat.p, (int)o->cat.n, SQLITE_STATIC);
        else
            sqlite3_bind_null(u, 5);
        sqlite3_bind_double(u, 6, w->now);
        sqlite3_bind_int64(u, 7, oid);
        if (step_done(w, u, err, "replacing an order"))
            return err->code;
        /* the replaced order's old data and the scores computed from it go */
        for (int i = 0; w->clear[i]; i++) {
            sqlite3_bind_int64(w->clear[i], 1, oid);
            if (step_done(w, w->clear[i], err, "replacing an order"))
                return err->code;
        }
        /* A case on the order keeps its status, decision and history (the analyst's
         * work is about the order id), but its evidence changed: an audit row says
         * so, and that its scores are gone until the store is scored again. */
        sqlite3_stmt *cs;
        if (store_prepare(w->s, &cs, "SELECT id FROM cases WHERE order_id = ?", err))
            return err->code;
        sqlite3_bind_int64(cs, 1, oid);
        rc = sqlite3_step(cs);
        int64_t case_id = rc == SQLITE_ROW ? sqlite3_column_int64(cs, 0) : 0;
        sqlite3_finalize(cs);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return store_fail(w->s, err, "finding the order's case");
        if (case_id && store_audit_append(w->s, case_id, w->now, "craft import", "replace", NULL,
                                          "{\"order\": \"replaced by an import\", \"scores\": \"removed until the store"
                                          " is scored again\", \"status\": \"kept\"}",
                                          err))
            return err->code;
        w->stats->replaced++;
    } else {
        return store_fail(w->s, err, "storing an order");
    }
    for (int i = 0; i < o->n_text; i++) {
        sqlite3_bind_int64(w->ins_text, 1, oid);
        sqlite3_bind_text(w->ins_text, 2, o->text[i].k, -1, SQLITE_STATIC);
        sqlite3_bind_text(w->ins_text, 3, o->text[i].v, (int)o->text[i].vlen, SQLITE_STATIC);
        if (step_done(w, w->ins_text, err, "storing text"))
            return err->code;
    }
    for (int i = 0; i < o->n_ent; i++) {
        int64_t eid = 0;
        if (entity_id(w, o->ent[i].k, o->ent[i].v, &eid, err))
            return err->code;
        sqlite3_bind_int64(w->ins_link, 1, oid);
        sqlite3_bind_int64(w->ins_link, 2, eid);
        if (step_done(w, w->ins_link, err, "linking an entity"))
            return err->code;
    }
    for (int i = 0; i < o->n_emb; i++) {
        const emb_ref *e = &o->emb[i];
        sqlite3_bind_int64(w->ins_emb, 1, oid);
        sqlite3_bind_text(w->ins_emb, 2, e->name, -1, SQLITE_STATIC);
        sqlite3_bind_int(w->ins_emb, 3, e->tokens);
        sqlite3_bind_int(w->ins_emb, 4, e->dim);
        sqlite3_bind_blob(w->ins_emb, 5, o->embf + e->at, e->tokens * e->dim * (int)sizeof(float), SQLITE_STATIC);
        if (step_done(w, w->ins_emb, err, "storing an embedding"))
            return err->code;
    }
    for (int i = 0; i < o->n_labels; i++) {
        sqlite3_bind_int64(w->ins_label, 1, oid);
        sqlite3_bind_text(w->ins_label, 2, o->labels[i].cls, -1, SQLITE_STATIC);
        sqlite3_bind_int(w->ins_label, 3, o->labels[i].value);
        sqlite3_bind_double(w->ins_label, 4, w->now);
        if (step_done(w, w->ins_label, err, "storing a label"))
            return err->code;
    }
    w->stats->stored++;
    return CRAFT_OK;
}

/* The dataset's id, creating it, and its feature list into w->fm. */
static int load_dataset(writer *w, const char *name, int64_t *id, craft_error *err)
{
    craft_store *s = w->s;
    sqlite3_stmt *st;
    if (store_prepare(s, &st, "INSERT INTO datasets(name, created) VALUES(?, ?) ON CONFLICT(name) DO NOTHING", err))
        return err->code;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, w->now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "creating the dataset");
    if (craft_store_dataset_find(s, name, id, err))
        return err->code;
    w->fm.id = *id;
    if (featmap_rehash(&w->fm))
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    if (store_prepare(s, &st, "SELECT name, type FROM dataset_features WHERE dataset_id = ? ORDER BY idx", err))
        return err->code;
    sqlite3_bind_int64(st, 1, *id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (featmap_add(&w->fm, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1)) < 0) {
            sqlite3_finalize(st);
            return craft_fail(err, CRAFT_ENOMEM, "out of memory");
        }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, err, "reading the feature list");
    w->fm.n_stored = w->fm.n;
    return CRAFT_OK;
}

/* Writes the features first seen in this import, and types now known. */
static int save_features(writer *w, craft_error *err)
{
    sqlite3_stmt *ins, *upd;
    if (store_prepare(w->s, &ins, "INSERT INTO dataset_features(dataset_id, idx, name, type) VALUES(?,?,?,?)", err))
        return err->code;
    if (store_prepare(w->s, &upd, "UPDATE dataset_features SET type = ? WHERE dataset_id = ? AND idx = ?", err)) {
        sqlite3_finalize(ins);
        return err->code;
    }
    int rc = CRAFT_OK;
    for (int j = 0; j < w->fm.n && !rc; j++) {
        if (j >= w->fm.n_stored) {
            sqlite3_bind_int64(ins, 1, w->fm.id);
            sqlite3_bind_int(ins, 2, j);
            sqlite3_bind_text(ins, 3, w->fm.names[j], -1, SQLITE_STATIC);
            sqlite3_bind_int(ins, 4, w->fm.types[j]);
            rc = step_done(w, ins, err, "storing the feature list");
            w->stats->new_features++;
        } else if (w->fm.types[j] != w->fm.stored_type[j]) {
            sqlite3_bind_int(upd, 1, w->fm.types[j]);
            sqlite3_bind_int64(upd, 2, w->fm.id);
            sqlite3_bind_int(upd, 3, j);
            rc = step_done(w, upd, err, "storing the feature list");
        }
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(upd);
    return rc;
}

/* ------------------------------------------------------------- the loop */

/* Two threads share the work (this machine has two cores): a reader parses
 * orders into a ring of slots, the caller's thread stores them. Only the reader
 * touches the feature map; only the writer touches SQLite; every callback runs on
 * the writer, in file order.
 *
 * Hand-offs go in batches: the reader publishes BATCH parsed orders at a time
 * and the writer gives slots back BATCH at a time, so the two threads meet (a
 * mutex, and a futex wake when the other one sleeps) once per batch, not once per
 * order. The ring holds at most RING orders and about MAX_INFLIGHT bytes of
 * their text (one order always fits), which bounds memory for any file. */
#define RING 128
#define BATCH 16
#define MAX_INFLIGHT (64u << 20)
#define BIG_BUFFER (1u << 20)    /* slot buffers above this are freed after use */

typedef struct {
    parsed o;
    buf line;                /* the order's text (parsed strings point into it) */
    buf raw;                 /* the unparsed text, for the reject report */
    const char *path;
    size_t lineno;
    uint64_t bytes;          /* bytes read when the order was taken */
    int prc;                 /* 0 parsed, -1 bad row (reason in o.reason) */
} slot;

typedef struct {
    writer *w;
    const char *const *paths;
    int n_paths;
    slot *ring;
    /* shared, under mu: counts since the start (slot i lives at ring[i % RING]) */
    uint64_t filled;         /* published by the reader */
    uint64_t drained;        /* given back by the writer */
    uint64_t inflight;       /* text bytes of the published, not yet given back slots */
    int reader_waits, writer_waits;
    int done;                /* the reader has finished (see rc) */
    _Atomic int stop;        /* the writer asks the reader to stop (read without the lock) */
    craft_error rerr;        /* the reader's error */
    int rc;
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    /* the reader's own */
    uint64_t produced;       /* slots filled, published or not */
    uint64_t drained_seen;   /* r->drained when the reader last looked */
    uint64_t inflight_seen;  /* r->inflight when the reader last looked, plus its unpublished bytes */
    uint64_t pending_bytes;  /* bytes of the filled, unpublished slots */
    /* the writer's own */
    uint64_t consumed;       /* slots stored or rejected */
    uint64_t filled_seen;    /* r->filled when the writer last looked */
    uint64_t released_bytes; /* bytes of the consumed slots not yet given back */
    uint64_t given_back;     /* r->drained as the writer last set it */
    int64_t dataset_id;
    uint64_t total_bytes;
    double t0, last_progress;
} run;

/* Makes the reader's filled slots visible to the writer (call with mu held). */
static void publish_locked(run *r)
{
    if (r->filled == r->produced)
        return;
    r->filled = r->produced;
    r->inflight += r->pending_bytes;
    r->pending_bytes = 0;
    if (r->writer_waits)
        pthread_cond_signal(&r->not_empty);
}

static int ring_full(const run *r, uint64_t drained, uint64_t inflight)
{
    uint64_t held = r->produced - drained;
    return held >= RING || (held > 0 && inflight >= MAX_INFLIGHT);
}

/* The next slot to fill, waiting for the writer when the ring is full; NULL when
 * the writer asked to stop. */
static slot *reader_slot(run *r)
{
    if (ring_full(r, r->drained_seen, r->inflight_seen + r->pending_bytes)) {
        pthread_mutex_lock(&r->mu);
        publish_locked(r);
        r->reader_waits = 1;
        while (!r->stop && ring_full(r, r->drained, r->inflight))
            pthread_cond_wait(&r->not_full, &r->mu);
        r->reader_waits = 0;
        r->drained_seen = r->drained;
        r->inflight_seen = r->inflight;
        pthread_mutex_unlock(&r->mu);
    }
    if (r->stop) /* a stale read only delays the stop by one order */
        return NULL;
    slot *sl = &r->ring[r->produced % RING];
    /* a huge earlier line leaves no huge buffer behind */
    if (sl->raw.cap > BIG_BUFFER) {
        free(sl->raw.p);
        sl->raw = (buf){0};
    }
    if (sl->line.cap > BIG_BUFFER) {
        free(sl->line.p);
        sl->line = (buf){0};
    }
    return sl;
}

/* The slot from reader_slot is filled; publishes a batch when one is ready. */
static void reader_publish(run *r, size_t bytes)
{
    r->produced++;
    r->pending_bytes += bytes;
    if (r->produced - r->filled >= BATCH) {
        pthread_mutex_lock(&r->mu);
        publish_locked(r);
        r->drained_seen = r->drained;
        r->inflight_seen = r->inflight;
        pthread_mutex_unlock(&r->mu);
    }
}

/* Publishes what is left and waits until the writer has given every slot back. */
static void reader_flush_wait(run *r)
{
    pthread_mutex_lock(&r->mu);
    publish_locked(r);
    r->reader_waits = 1;
    while (r->drained != r->produced && !r->stop)
        pthread_cond_wait(&r->not_full, &r->mu);
    r->reader_waits = 0;
    r->drained_seen = r->drained;
    r->inflight_seen = r->inflight;
    pthread_mutex_unlock(&r->mu);
}

/* Gives the consumed slots back to the reader (call with mu held). */
static void give_back_locked(run *r)
{
    if (r->given_back == r->consumed)
        return;
    r->drained = r->given_back = r->consumed;
    r->inflight -= r->released_bytes;
    r->released_bytes = 0;
    if (r->reader_waits)
        pthread_cond_signal(&r->not_full);
}

/* The next parsed order for the writer, waiting for the reader; NULL at the end. */
static slot *writer_slot(run *r)
{
    if (r->consumed == r->filled_seen) {
        pthread_mutex_lock(&r->mu);
        give_back_locked(r);
        r->writer_waits = 1;
        while (r->filled == r->consumed && !r->done)
            pthread_cond_wait(&r->not_empty, &r->mu);
        r->writer_waits = 0;
        r->filled_seen = r->filled;
        int end = r->filled == r->consumed;
        pthread_mutex_unlock(&r->mu);
        if (end)
            return NULL;
    }
    return &r->ring[r->consumed % RING];
}

/* The writer is done with the slot from writer_slot. */
static void writer_release(run *r, size_t bytes)
{
    r->consumed++;
    r->released_bytes += bytes;
    if (r->consumed - r->given_back >= BATCH) {
        pthread_mutex_lock(&r->mu);
        give_back_locked(r);
        pthread_mutex_unlock(&r->mu);
    }
}

static void swap_buf(buf *a, buf *b)
{
    buf t = *a;
    *a = *b;
    *b = t;
}

/* Fills sl from the record just read (in->line for JSONL, c->rec for CSV). */
static void fill_slot(run *r, slot *sl, input *in, int keep_raw)
{
    sl->path = in->path;
    sl->lineno = in->lineno;
    sl->bytes = in->done;
    sl->raw.n = 0;
    if (keep_raw && buf_add(&sl->raw, in->line.p ? in->line.p : "", in->line.n))
        sl->raw.n = 0;
    parsed_reset(&sl->o, r->w->fm.n);
}

static int read_jsonl(run *r, input *in, uint64_t base, craft_error *err)
{
    int keep_raw = r->w->o->on_reject != NULL;
    for (;;) {
        int lr = input_line(in, 0);
        if (lr == 1)
            return CRAFT_OK;
        if (lr < 0)
            return craft_fail(err, CRAFT_EIO, "%s: read error: %s", in->path, strerror(errno));
        size_t k = 0;
        while (k < in->line.n && (in->line.p[k] == ' ' || in->line.p[k] == '\t'))
            k++;
        if (in->stopped) /* reading stopped at the limit: nothing of this input is stored */
            return craft_fail(err, CRAFT_EINPUT, "%s:%zu: the line is longer than %u bytes (reading stopped there)",
                              in->path, in->lineno, MAX_LINE);
        if (in->lineno == 1 && in->line.n >= 3 && !memcmp(in->line.p, "\xEF\xBB\xBF", 3)) {
            /* a UTF-8 byte-order mark at the start of the file is dropped (as craft score does) */
            memmove(in->line.p, in->line.p + 3, in->line.n - 3);
            in->line.n -= 3;
            in->line.p[in->line.n] = 0;
            k = 0;
            while (k < in->line.n && (in->line.p[k] == ' ' || in->line.p[k] == '\t'))
                k++;
        }
        if (k == in->line.n)
            continue; /* blank lines are allowed */
        slot *sl = reader_slot(r);
        if (!sl)
            return CRAFT_OK;
        fill_slot(r, sl, in, keep_raw);
        sl->bytes += base;
        swap_buf(&sl->line, &in->line);
        if (in->too_long)
            sl->prc = bad(&sl->o, "the line is longer than %u bytes", MAX_LINE);
        else if (ensure_vals(&sl->o, r->w->fm.n + 1))
            sl->prc = bad(&sl->o, "out of memory");
        else
            sl->prc = parse_json_line(&sl->o, &r->w->fm, sl->line.p, sl->line.n);
        sl->o.nf = r->w->fm.n;
        reader_publish(r, sl->line.cap + sl->raw.cap);
    }
}

static int read_csv(run *r, input *in, uint64_t base, craft_error *err)
{
    int keep_raw = r->w->o->on_reject != NULL;
    csv c = {0};
    parsed hdr = {0};
    int rc = csv_header(in, &c, &hdr, err);
    parsed_free(&hdr);
    while (!rc) {
        slot *sl = reader_slot(r);
        if (!sl)
            break;
        parsed_reset(&sl->o, r->w->fm.n);
        swap_buf(&c.rec, &sl->line); /* the record's fields will live in the slot */
        int n = csv_record(in, &c, c.ncols + 1, &sl->o);
        if (n == 0)
            break;
        if (n == -2) {
            rc = craft_fail(err, CRAFT_EIO, "%s: read error: %s", in->path, strerror(errno));
            break;
        }
        if (n == -3) { /* reading stopped at the limit: nothing of this input is stored */
            rc = craft_fail(err, CRAFT_EINPUT, "%s:%zu: the record is longer than %u bytes (reading stopped there)",
                            in->path, in->lineno, MAX_LINE);
            break;
        }
        if (n == 1 && c.len[0] == 0 && c.ncols > 1)
            continue; /* a blank line */
        char reason[sizeof sl->o.reason];
        memcpy(reason, sl->o.reason, sizeof reason);
        fill_slot(r, sl, in, keep_raw);
        sl->bytes += base;
        if (n < 0) {
            memcpy(sl->o.reason, reason, sizeof reason);
            sl->prc = -1;
        } else if (ensure_vals(&sl->o, r->w->fm.n + c.ncols + 1)) {
            sl->prc = bad(&sl->o, "out of memory");
        } else {
            sl->prc = parse_csv_fields(&sl->o, &r->w->fm, &c, n);
        }
        sl->o.nf = r->w->fm.n;
        swap_buf(&c.rec, &sl->line);
        reader_publish(r, sl->line.cap + sl->raw.cap);
    }
    /* parsed orders point at the header's column names: let the writer finish them */
    reader_flush_wait(r);
    csv_free(&c);
    return rc;
}

static void *reader_main(void *arg)
{
    run *r = arg;
    const craft_import_options *o = r->w->o;
    uint64_t base = 0;
    int rc = CRAFT_OK;
    for (int i = 0; i < r->n_paths && !rc && !r->stop; i++) {
        input in;
        if ((rc = input_open(&in, r->paths[i], &r->rerr)))
            break;
        craft_format f = o->format;
        if (f == CRAFT_FORMAT_AUTO) {
            size_t n = strlen(r->paths[i]);
            f = n > 4 && !strcasecmp(r->paths[i] + n - 4, ".csv") ? CRAFT_FORMAT_CSV : CRAFT_FORMAT_JSONL;
        }
        rc = f == CRAFT_FORMAT_CSV ? read_csv(r, &in, base, &r->rerr) : read_jsonl(r, &in, base, &r->rerr);
        base += in.done;
        input_close(&in);
    }
    pthread_mutex_lock(&r->mu);
    publish_locked(r);
    r->rc = rc;
    r->done = 1;
    pthread_cond_signal(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void progress(run *r, uint64_t bytes, int force)
{
    const craft_import_options *o = r->w->o;
    if (!o->progress)
        return;
    double now = craft_now();
    if (!force && now - r->last_progress < 0.25)
        return;
    r->last_progress = now;
    uint64_t done = r->w->stats->stored + r->w->stats->bad;
    o->progress(o->progress_user, done, bytes, r->total_bytes, now - r->t0);
}

/* The writer's loop: stores or rejects each parsed order. */
static int drain(run *r, int *any_bad, craft_error *err)
{
    const craft_import_options *o = r->w->o;
    uint64_t bytes = 0;
    slot *sl;
    while ((sl = writer_slot(r))) {
        int rc = CRAFT_OK;
        if (o->cancel && *o->cancel)
            rc = craft_fail(err, CRAFT_ECANCELLED, "the import was cancelled; nothing was stored");
        else if (!sl->prc && (rc = write_order(r->w, &sl->o, r->dataset_id, err)) == CRAFT_EINPUT)
            sl->prc = -1, rc = CRAFT_OK;
        if (rc)
            return rc;
        if (sl->prc) {
            *any_bad = 1;
            r->w->stats->bad++;
            if (o->on_reject)
                o->on_reject(o->reject_user, sl->path, sl->lineno, sl->o.reason, sl->raw.p ? sl->raw.p : "",
                             sl->raw.n);
        }
        bytes = sl->bytes;
        progress(r, bytes, 0);
        writer_release(r, sl->line.cap + sl->raw.cap);
    }
    progress(r, bytes, 1);
    return CRAFT_OK;
}

/* The graph's by-entity index takes five random inserts per order, the costliest
 * rows of an import. When the import is large next to what is stored (a new store,
 * a first big load), the index is dropped inside the import's transaction and built
 * once, sorted, before the commit: a third of the cost. A kill or a failure rolls
 * the drop back with everything else; readers keep their snapshot, index included. */
#define DEFERRED_INDEX "order_entities_entity"

/* Drops the deferred index when worth it; *sql gets its definition to rebuild it. */
static int defer_index(craft_store *s, uint64_t import_bytes, char **sql, craft_error *err)
{
    *sql = NULL;
    sqlite3_stmt *st;
    /* stored orders (max(id) costs a lookup, count(*) a scan) against a low guess of
     * the orders coming (a 300-feature order is ~9 KB of JSON) */
    if (store_prepare(s, &st, "SELECT (SELECT coalesce(max(id), 0) FROM orders),"
                              " (SELECT sql FROM sqlite_master WHERE type = 'index' AND name = '" DEFERRED_INDEX "')",
                      err))
        return err->code;
    int rc = sqlite3_step(st);
    int64_t stored = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 1) && (uint64_t)stored < import_bytes / 4096)
        *sql = store_col_text(st, 1);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return store_fail(s, err, "reading the schema");
    if (*sql && store_exec(s, "DROP INDEX " DEFERRED_INDEX, err)) {
        free(*sql);
        *sql = NULL;
        return err->code;
    }
    return CRAFT_OK;
}

int craft_store_import(craft_store *s, const char *const *paths, int n_paths, const craft_import_options *o,
                       craft_import_stats *stats, craft_error *err)
{
    craft_import_options defaults = {0};
    if (!o)
        o = &defaults;
    craft_import_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (s->readonly)
        return craft_fail(err, CRAFT_EINPUT, "%s: opened read-only", s->path);
    if (n_paths <= 0)
        return craft_fail(err, CRAFT_EINPUT, "no files to import");
    for (int i = 0; i < n_paths; i++) {
        /* a missing file fails before anything starts */
        if (strcmp(paths[i], "-") && access(paths[i], R_OK))
            return craft_fail(err, CRAFT_EIO, "%s: cannot open: %s", paths[i], strerror(errno));
    }
    writer w = {.s = s, .o = o, .stats = stats, .now = store_time()};
    run r = {.w = &w, .paths = paths, .n_paths = n_paths, .t0 = craft_now()};
    for (int i = 0; i < n_paths; i++) {
        struct stat st;
        if (strcmp(paths[i], "-") && stat(paths[i], &st) == 0)
            r.total_bytes += (uint64_t)st.st_size;
    }
    /* A big page cache, spilled to the WAL beyond it, keeps memory bounded.
     * Foreign keys are off for the import's own transaction only (the pragma is a
     * no-op inside one): every row it writes refers to the order it has just stored
     * and to entities it has just found or stored, and it deletes no order, so the
     * checks (a lookup per row: a fifth of the store's time) would never fire. The
     * tests check PRAGMA foreign_key_check after imports. */
    int rc = store_exec(s, "PRAGMA cache_size = -131072; PRAGMA journal_size_limit = 67108864;"
                           " PRAGMA foreign_keys = OFF", err);
    if (!rc && (rc = store_exec(s, "BEGIN IMMEDIATE", err)))
        sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (rc) {
        writer_free(&w);
        return rc;
    }
    char *index_sql = NULL;
    if (!(rc = defer_index(s, r.total_bytes, &index_sql, err)) &&
        !(rc = load_dataset(&w, o->dataset && *o->dataset ? o->dataset : "default", &r.dataset_id, err)) &&
        !(rc = writer_prepare(&w, err)) && !(r.ring = calloc(RING, sizeof *r.ring)))
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
    int any_bad = 0;
    if (!rc) {
        pthread_t th;
        pthread_mutex_init(&r.mu, NULL);
        pthread_cond_init(&r.not_full, NULL);
        pthread_cond_init(&r.not_empty, NULL);
        if (pthread_create(&th, NULL, reader_main, &r)) {
            rc = craft_fail(err, CRAFT_ENOMEM, "cannot start the reader thread");
        } else {
            rc = drain(&r, &any_bad, err);
            pthread_mutex_lock(&r.mu);
            r.stop = 1;
            pthread_cond_signal(&r.not_full);
            pthread_mutex_unlock(&r.mu);
            pthread_join(th, NULL);
            if (!rc && r.rc) {
                rc = r.rc;
                if (err)
                    *err = r.rerr;
            }
        }
        pthread_mutex_destroy(&r.mu);
        pthread_cond_destroy(&r.not_full);
        pthread_cond_destroy(&r.not_empty);
    }
    if (r.ring) {
        for (int i = 0; i < RING; i++) {
            parsed_free(&r.ring[i].o);
            free(r.ring[i].line.p);
            free(r.ring[i].raw.p);
        }
        free(r.ring);
    }
    if (!rc && any_bad && !o->skip_bad)
        rc = craft_fail(err, CRAFT_EINPUT, "%llu bad row%s; nothing was imported (--skip-bad stores the good ones)",
                        (unsigned long long)stats->bad, stats->bad == 1 ? "" : "s");
    if (!rc)
        rc = save_features(&w, err);
    /* The index build sorts on a helper thread too (the reader's core is free by
     * now), each in memory up to the page cache's size: shrink the cache first (its
     * dirty pages go to the WAL, where the commit would write them) so that cache
     * and sorters together stay within the import's memory. */
    if (!rc && index_sql && !(rc = store_exec(s, "PRAGMA cache_size = -32768; PRAGMA threads = 1", err))) {
        rc = store_exec(s, index_sql, err);
        sqlite3_exec(s->db, "PRAGMA threads = 0", NULL, NULL, NULL);
    }
    free(index_sql);
    writer_free(&w);
    /* a cancel that came with the last rows (say the rejects could not be written) */
    if (!rc && o->cancel && *o->cancel)
        rc = craft_fail(err, CRAFT_ECANCELLED, "the import was cancelled; nothing was stored");
    if (!rc) {
        craft_error e2 = {0};
        if ((rc = store_exec(s, "COMMIT", &e2)) && err)
            *err = e2;
    }
    if (rc) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        stats->stored = stats->replaced = stats->new_features = 0;
    } else {
        sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    }
    sqlite3_exec(s->db, "PRAGMA cache_size = -2000; PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    stats->seconds = craft_now() - r.t0;
    return rc;
}
