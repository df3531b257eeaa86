/* text_encoder.c: hashed word/char n-grams -> sparse seeded projection -> 256
 * dims, L2-normalized. The exact algorithm is docs/ENCODERS.md. Everything up
 * to the final normalization is integer arithmetic, so the vector does not
 * depend on summation order, FMA contraction or the C library. */
#include "encoders.h"
#include "craft_hash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_SEED 0x5EED7E47C2AF7001ull
#define PROJ_NNZ 4          /* output dimensions touched per n-gram */
#define MAX_CHARGRAM_WORD 30 /* longer words give no character trigrams */
#define EXACT_LIMIT (1ll << 26) /* |acc| below this: acc*acc is exact in double */

enum { KIND_WORD = 'w', KIND_BIGRAM = 'b', KIND_CHAR = 'c' };

struct craft_text_encoder {
    uint64_t *keys;   /* feature hashes, 0 = empty slot */
    uint32_t *counts; /* term frequency */
    uint8_t *weights; /* kind weight */
    size_t cap, used;
    char *lower;      /* lowercased copy of the current field */
    size_t lower_cap;
};

int craft_text_encoder_new(craft_text_encoder **out, craft_error *err)
{
    craft_text_encoder *te = calloc(1, sizeof *te);
    if (!te)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for the text encoder");
    *out = te;
    return CRAFT_OK;
}

void craft_text_encoder_free(craft_text_encoder *te)
{
    if (!te)
        return;
    free(te->keys);
    free(te->counts);
    free(te->weights);
    free(te->lower);
    free(te);
}

static int table_grow(craft_text_encoder *te)
{
    size_t cap = te->cap ? te->cap * 2 : 4096;
    uint64_t *keys = calloc(cap, sizeof *keys);
    uint32_t *counts = malloc(cap * sizeof *counts);
    uint8_t *weights = malloc(cap);
    if (!keys || !counts || !weights) {
        free(keys);
        free(counts);
        free(weights);
        return -1;
    }
    for (size_t i = 0; i < te->cap; i++) {
        if (!te->keys[i])
            continue;
        size_t j = te->keys[i] & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = te->keys[i];
        counts[j] = te->counts[i];
        weights[j] = te->weights[i];
    }
    free(te->keys);
    free(te->counts);
    free(te->weights);
    te->keys = keys;
    te->counts = counts;
    te->weights = weights;
    te->cap = cap;
    return 0;
}

/* Counts one occurrence of feature h with kind weight w. */
static int add_feature(craft_text_encoder *te, uint64_t h, uint8_t w)
{
    if (h == 0)
        h = 1; /* 0 marks an empty slot */
    if ((te->used + 1) * 2 > te->cap && table_grow(te))
        return -1;
    size_t j = h & (te->cap - 1);
    while (te->keys[j] && te->keys[j] != h)
        j = (j + 1) & (te->cap - 1);
    if (!te->keys[j]) {
        te->keys[j] = h;
        te->counts[j] = 0;
        te->weights[j] = w;
        te->used++;
    }
    if (te->counts[j] < UINT32_MAX)
        te->counts[j]++;
    return 0;
}

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

/* Adds the n-grams of one field. Returns occurrences added, -1 out of memory. */
static long add_field(craft_text_encoder *te, const char *name, const char *value)
{
    size_t n = strlen(value);
    if (n + 1 > te->lower_cap) {
        char *p = realloc(te->lower, n + 1);
        if (!p)
            return -1;
        te->lower = p;
        te->lower_cap = n + 1;
    }
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)value[i];
        te->lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c); /* ASCII only: no locale */
    }
    uint64_t prefix = craft_fnv1a(CRAFT_FNV_OFFSET, name, strlen(name));
    prefix = craft_fnv1a(prefix, "\x1f", 1);
    const char *s = te->lower, *prev = NULL;
    size_t prev_len = 0;
    long added = 0;
    size_t i = 0;
    while (i < n) {
        if (!is_word_byte((unsigned char)s[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && is_word_byte((unsigned char)s[i]))
            i++;
        const char *w = s + start;
        size_t len = i - start;
        uint8_t kind = KIND_WORD;
        uint64_t h = craft_fnv1a(craft_fnv1a(prefix, &kind, 1), w, len);
        if (add_feature(te, h, 4))
            return -1;
        added++;
        if (prev) {
            kind = KIND_BIGRAM;
            h = craft_fnv1a(craft_fnv1a(prefix, &kind, 1), prev, prev_len);
            h = craft_fnv1a(h, " ", 1);
            h = craft_fnv1a(h, w, len);
            if (add_feature(te, h, 3))
                return -1;
            added++;
        }
        if (len <= MAX_CHARGRAM_WORD) {
            char padded[MAX_CHARGRAM_WORD + 2];
            padded[0] = '<';
            memcpy(padded + 1, w, len);
            padded[len + 1] = '>';
            kind = KIND_CHAR;
            uint64_t hc = craft_fnv1a(prefix, &kind, 1);
            for (size_t k = 0; k + 3 <= len + 2; k++) {
                if (add_feature(te, craft_fnv1a(hc, padded + k, 3), 1))
                    return -1;
                added++;
            }
        }
        prev = w;
        prev_len = len;
    }
    return added;
}

/* floor(sqrt(x)) exactly. */
static uint64_t isqrt(uint64_t x)
{
    uint64_t r = (uint64_t)sqrt((double)x);
    while (r * r > x)
        r--;
    while ((r + 1) * (r + 1) <= x)
        r++;
    return r;
}

static int cmp_field(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

long craft_text_encode(craft_text_encoder *te, const craft_kv *text, float *out)
{
    memset(out, 0, CRAFT_TEXT_DIM * sizeof *out);
    if (te->used) /* left over from a call that ran out of memory */
        memset(te->keys, 0, te->cap * sizeof *te->keys);
    te->used = 0;
    if (!text || text->n == 0)
        return 0;
    /* fields in byte order of their names, whatever order the order gave them in */
    const char **order[64];
    const char ***fields = text->n <= 64 ? order : malloc(sizeof *fields * (size_t)text->n);
    if (!fields)
        return -1;
    for (int f = 0; f < text->n; f++)
        fields[f] = (const char **)&text->keys[f];
    qsort(fields, (size_t)text->n, sizeof *fields, cmp_field);
    long total = 0;
    for (int f = 0; f < text->n; f++) {
        size_t idx = (size_t)(fields[f] - (const char **)text->keys);
        long got = add_field(te, text->keys[idx], text->values[idx]);
        if (got < 0) {
            total = -1;
            break;
        }
        total += got;
    }
    if (fields != order)
        free(fields);
    if (total <= 0)
        return total;
    int64_t acc[CRAFT_TEXT_DIM] = {0};
    for (size_t j = 0; j < te->cap; j++) {
        if (!te->keys[j])
            continue;
        int64_t q = (int64_t)te->weights[j] * (int64_t)isqrt((uint64_t)te->counts[j] << 16);
        uint64_t x = te->keys[j] ^ TEXT_SEED;
        for (int r = 0; r < PROJ_NNZ; r++) {
            uint64_t z = craft_splitmix64(&x);
            int dim = (int)(z & (CRAFT_TEXT_DIM - 1));
            acc[dim] += (z >> 8 & 1) ? -q : q;
        }
        te->keys[j] = 0; /* leaves the table empty for the next order */
    }
    te->used = 0;
    int64_t max = 0;
    for (int d = 0; d < CRAFT_TEXT_DIM; d++)
        if (llabs(acc[d]) > max)
            max = llabs(acc[d]);
    while (max >= EXACT_LIMIT) { /* keep every square exact (see ENCODERS.md) */
        for (int d = 0; d < CRAFT_TEXT_DIM; d++)
            acc[d] /= 2;
        max /= 2;
    }
    double ss = 0;
    for (int d = 0; d < CRAFT_TEXT_DIM; d++)
        ss += (double)acc[d] * (double)acc[d];
    if (ss == 0)
        return 0;
    double norm = sqrt(ss);
    for (int d = 0; d < CRAFT_TEXT_DIM; d++)
        out[d] = (float)((double)acc[d] / norm);
    return total;
}

/* ------------------------------------------------- several rows per order */

static int is_event_separator(char c) { return c == '\n' || c == '\r' || c == '|' || c == ';'; }

typedef struct {
    int field;      /* index into text */
    size_t start, len;
} text_piece;

int craft_text_encode_rows(craft_text_encoder *te, const craft_kv *text, int mode, int max_rows, float *out,
                           int *rows, craft_error *err)
{
    *rows = 0;
    if (max_rows < 1)
        return craft_fail(err, CRAFT_EINPUT, "text encoder: room for %d rows", max_rows);
    memset(out, 0, sizeof *out * (size_t)max_rows * CRAFT_TEXT_DIM);
    if (mode == CRAFT_TEXT_VECTOR) {
        long got = craft_text_encode(te, text, out);
        if (got < 0)
            return craft_fail(err, CRAFT_ENOMEM, "text encoder: out of memory");
        *rows = got > 0;
        return CRAFT_OK;
    }
    if (mode != CRAFT_TEXT_FIELDS && mode != CRAFT_TEXT_EVENTS)
        return craft_fail(err, CRAFT_EINPUT, "text encoder: unknown text_tokens mode %d", mode);
    if (!text || text->n == 0)
        return CRAFT_OK;
    /* fields in byte order of their names (ties: as given), as craft_text_encode */
    int *order = malloc(sizeof *order * (size_t)text->n);
    if (!order)
        return craft_fail(err, CRAFT_ENOMEM, "text encoder: out of memory");
    for (int f = 0; f < text->n; f++) {
        int j = f;
        while (j > 0 && strcmp(text->keys[order[j - 1]], text->keys[f]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = f;
    }
    /* the pieces: a whole field, or each event of a field (text between separators) */
    size_t n_pieces = 0, longest = 0;
    for (int pass = 0; pass < 2; pass++) {
        text_piece *pieces = NULL;
        if (pass == 1 && !(pieces = malloc(sizeof *pieces * (n_pieces ? n_pieces : 1)))) {
            free(order);
            return craft_fail(err, CRAFT_ENOMEM, "text encoder: out of memory");
        }
        size_t np = 0;
        for (int o = 0; o < text->n; o++) {
            const char *v = text->values[order[o]];
            size_t n = strlen(v);
            if (mode == CRAFT_TEXT_FIELDS) {
                if (pass)
                    pieces[np] = (text_piece){order[o], 0, n};
                np++;
                if (n > longest)
                    longest = n;
                continue;
            }
            for (size_t i = 0; i <= n;) {
                size_t start = i;
                while (i < n && !is_event_separator(v[i]))
                    i++;
                if (i > start) {
                    if (pass)
                        pieces[np] = (text_piece){order[o], start, i - start};
                    np++;
                    if (i - start > longest)
                        longest = i - start;
                }
                i++;
            }
        }
        if (pass == 0) {
            n_pieces = np;
            continue;
        }
        /* the latest pieces win: encode from the last one back until the rows are full */
        char *buf = malloc(longest + 1);
        float *row = malloc(sizeof *row * CRAFT_TEXT_DIM);
        int rc = buf && row ? CRAFT_OK : craft_fail(err, CRAFT_ENOMEM, "text encoder: out of memory");
        int r = 0;
        for (size_t p = n_pieces; p-- > 0 && r < max_rows && !rc;) {
            const text_piece *pc = &pieces[p];
            memcpy(buf, text->values[pc->field] + pc->start, pc->len);
            buf[pc->len] = 0;
            char *key = text->keys[pc->field], *val = buf;
            craft_kv one = {1, &key, &val};
            long got = craft_text_encode(te, &one, row);
            if (got < 0)
                rc = craft_fail(err, CRAFT_ENOMEM, "text encoder: out of memory");
            else if (got > 0) {
                memcpy(out + (size_t)(max_rows - 1 - r) * CRAFT_TEXT_DIM, row, sizeof *row * CRAFT_TEXT_DIM);
                r++;
            }
        }
        if (!rc && r < max_rows) { /* the r rows filled sit at the end: move them to the front, in order */
            memmove(out, out + (size_t)(max_rows - r) * CRAFT_TEXT_DIM, sizeof *out * (size_t)r * CRAFT_TEXT_DIM);
            memset(out + (size_t)r * CRAFT_TEXT_DIM, 0, sizeof *out * (size_t)(max_rows - r) * CRAFT_TEXT_DIM);
        }
        free(buf);
        free(row);
        free(pieces);
        free(order);
        if (rc)
            return rc;
        *rows = r;
        return CRAFT_OK;
    }
    free(order);
    return CRAFT_OK; /* not reached */
}
