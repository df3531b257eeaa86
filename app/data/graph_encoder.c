/* graph_encoder.c: a time-respecting encoder of an order's entities.
 *
 * The state holds, per entity (type, id), counts over *committed* orders:
 * orders, labelled orders and positives per class. Orders observed at the
 * latest time stay *pending* until a strictly later time is observed, so an
 * order never sees another order of the same time, nor any later one.
 * Layout and formulas: docs/ENCODERS.md. */
#include "encoders.h"
#include "craft_hash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SKETCH_SEED 0x6A09E667F3BCC909ull
#define RATE_SMOOTHING 10.0 /* pseudo-orders at the global rate */
#define LIFT_CLIP 3.0
#define SKETCH_VALUE 0.25f

const char *const craft_graph_type_names[CRAFT_GRAPH_TYPES] = {"customer", "seller", "carrier", "route", "hub"};

typedef struct {
    uint64_t hash;
    char *id;
    int type;
} entity;

typedef struct {
    int *ent;            /* [T] entity index, -1 when the order has none of that type (into pending_ents) */
    signed char *labels; /* points into pending_labels */
} pending_order;

struct craft_graph {
    int K;
    int T;          /* entity types */
    char **types;   /* [T] their names, in block order */
    int *ent_now;   /* [T] scratch: the entities of the order being observed */
    int *pending_ents; /* [cap_pending * T] */
    /* entities: open-addressing index over a dense array */
    entity *ents;
    size_t n_ents, cap_ents;
    int32_t *slots; /* entity index + 1, 0 = empty */
    size_t n_slots;
    uint32_t *counts; /* per entity: orders, then labelled[K], then positive[K] */
    /* global counts over committed orders, for the prior rate */
    uint64_t *global_lab, *global_pos;
    /* orders at the latest time, not yet visible */
    pending_order *pending;
    signed char *pending_labels;
    size_t n_pending, cap_pending;
    double latest;
    uint64_t observed;
};

static uint64_t entity_hash(int type, const char *id)
{
    unsigned char t = (unsigned char)type;
    return craft_fnv1a(craft_fnv1a(CRAFT_FNV_OFFSET, &t, 1), id, strlen(id));
}

int craft_graph_width(int n_classes) { return craft_graph_width_types(CRAFT_GRAPH_TYPES, n_classes); }

int craft_graph_width_types(int n_types, int n_classes)
{
    return n_types * (1 + n_classes + CRAFT_GRAPH_SKETCH);
}

int craft_graph_new(craft_graph **out, int n_classes, craft_error *err)
{
    return craft_graph_new_types(out, n_classes, NULL, 0, err);
}

int craft_graph_new_types(craft_graph **out, int n_classes, char *const *types, int n_types, craft_error *err)
{
    *out = NULL;
    if (n_classes < 1 || n_classes > 1024)
        return craft_fail(err, CRAFT_EINPUT, "graph encoder: %d classes (1..1024 supported)", n_classes);
    if (!types || n_types <= 0) {
        types = (char *const *)craft_graph_type_names;
        n_types = CRAFT_GRAPH_TYPES;
    }
    if (n_types > CRAFT_MAX_ENTITY_TYPES)
        return craft_fail(err, CRAFT_EINPUT, "graph encoder: %d entity types (at most %d)", n_types,
                          CRAFT_MAX_ENTITY_TYPES);
    for (int t = 0; t < n_types; t++) {
        if (!types[t] || !types[t][0])
            return craft_fail(err, CRAFT_EINPUT, "graph encoder: entity type %d has no name", t);
        for (int u = 0; u < t; u++)
            if (!strcmp(types[u], types[t]))
                return craft_fail(err, CRAFT_EINPUT, "graph encoder: entity type \"%s\" given twice", types[t]);
    }
    craft_graph *g = calloc(1, sizeof *g);
    if (!g || !(g->global_lab = calloc((size_t)n_classes, sizeof(uint64_t))) ||
        !(g->global_pos = calloc((size_t)n_classes, sizeof(uint64_t))) ||
        !(g->types = calloc((size_t)n_types, sizeof(char *))) || !(g->ent_now = calloc((size_t)n_types, sizeof(int)))) {
        craft_graph_free(g);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for the graph encoder");
    }
    g->T = n_types;
    for (int t = 0; t < n_types; t++)
        if (!(g->types[t] = strdup(types[t]))) {
            craft_graph_free(g);
            return craft_fail(err, CRAFT_ENOMEM, "out of memory for the graph encoder");
        }
    g->K = n_classes;
    g->latest = -INFINITY;
    *out = g;
    return CRAFT_OK;
}

int craft_graph_new_for(craft_graph **out, const craft_config *cfg, int modality, craft_error *err)
{
    const craft_modality *m = modality >= 0 && modality < cfg->n_modalities ? &cfg->modalities[modality] : NULL;
    return craft_graph_new_types(out, cfg->n_classes, m ? m->entity_types : NULL, m ? m->n_entity_types : 0, err);
}

int craft_graph_n_types(const craft_graph *g) { return g->T; }
const char *craft_graph_type(const craft_graph *g, int t) { return t >= 0 && t < g->T ? g->types[t] : NULL; }

void craft_graph_free(craft_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_ents; i++)
        free(g->ents[i].id);
    free(g->ents);
    free(g->slots);
    free(g->counts);
    free(g->global_lab);
    free(g->global_pos);
    free(g->pending);
    free(g->pending_labels);
    free(g->pending_ents);
    if (g->types)
        for (int t = 0; t < g->T; t++)
            free(g->types[t]);
    free(g->types);
    free(g->ent_now);
    free(g);
}

double craft_graph_latest(const craft_graph *g) { return g->latest; }
uint64_t craft_graph_orders(const craft_graph *g) { return g->observed; }

static int type_index(const craft_graph *g, const char *name)
{
    for (int t = 0; t < g->T; t++)
        if (strcmp(name, g->types[t]) == 0)
            return t;
    return -1;
}

int craft_graph_known(const craft_graph *g, const craft_kv *entities)
{
    int n = 0;
    for (int i = 0; entities && i < entities->n; i++)
        n += entities->values[i][0] && type_index(g, entities->keys[i]) >= 0;
    return n;
}

static long find_entity(const craft_graph *g, int type, const char *id, uint64_t h)
{
    if (!g->n_slots)
        return -1;
    for (size_t i = h & (g->n_slots - 1);; i = (i + 1) & (g->n_slots - 1)) {
        int32_t s = g->slots[i];
        if (!s)
            return -1;
        const entity *e = &g->ents[s - 1];
        if (e->hash == h && e->type == type && strcmp(e->id, id) == 0)
            return s - 1;
    }
}

static int grow_slots(craft_graph *g)
{
    size_t n = g->n_slots ? g->n_slots * 2 : 1024;
    int32_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t e = 0; e < g->n_ents; e++) {
        size_t i = g->ents[e].hash & (n - 1);
        while (slots[i])
            i = (i + 1) & (n - 1);
        slots[i] = (int32_t)e + 1;
    }
    free(g->slots);
    g->slots = slots;
    g->n_slots = n;
    return 0;
}

static long add_entity(craft_graph *g, int type, const char *id, uint64_t h)
{
    long found = find_entity(g, type, id, h);
    if (found >= 0)
        return found;
    if (g->n_ents >= INT32_MAX - 1)
        return -1;
    if ((g->n_ents + 1) * 2 > g->n_slots && grow_slots(g))
        return -1;
    const size_t per = 1 + 2 * (size_t)g->K;
    if (g->n_ents == g->cap_ents) {
        size_t cap = g->cap_ents ? g->cap_ents * 2 : 1024;
        entity *ents = realloc(g->ents, cap * sizeof *ents);
        if (!ents)
            return -1;
        g->ents = ents;
        uint32_t *counts = realloc(g->counts, cap * per * sizeof *counts);
        if (!counts)
            return -1;
        g->counts = counts;
        g->cap_ents = cap;
    }
    char *copy = strdup(id);
    if (!copy)
        return -1;
    size_t e = g->n_ents++;
    g->ents[e] = (entity){h, copy, type};
    memset(g->counts + e * per, 0, per * sizeof *g->counts);
    size_t i = h & (g->n_slots - 1);
    while (g->slots[i])
        i = (i + 1) & (g->n_slots - 1);
    g->slots[i] = (int32_t)e + 1;
    return (long)e;
}

static void commit(craft_graph *g, const pending_order *p)
{
    const size_t per = 1 + 2 * (size_t)g->K;
    for (int k = 0; k < g->K; k++)
        if (p->labels[k] >= 0) {
            g->global_lab[k]++;
            g->global_pos[k] += (uint64_t)p->labels[k];
        }
    for (int t = 0; t < g->T; t++) {
        if (p->ent[t] < 0)
            continue;
        uint32_t *c = g->counts + (size_t)p->ent[t] * per;
        if (c[0] < UINT32_MAX)
            c[0]++;
        for (int k = 0; k < g->K; k++)
            if (p->labels[k] >= 0 && c[1 + k] < UINT32_MAX) {
                c[1 + k]++;
                c[1 + g->K + k] += (uint32_t)p->labels[k];
            }
    }
}

static void commit_pending(craft_graph *g)
{
    for (size_t i = 0; i < g->n_pending; i++) {
        g->pending[i].labels = g->pending_labels + i * (size_t)g->K;
        g->pending[i].ent = g->pending_ents + i * (size_t)g->T;
        commit(g, &g->pending[i]);
    }
    g->n_pending = 0;
}

int craft_graph_observe(craft_graph *g, const craft_kv *entities, double t, const float *labels,
                        craft_error *err)
{
    pending_order p;
    signed char lab_now[1024];
    p.ent = g->ent_now;
    for (int ty = 0; ty < g->T; ty++)
        p.ent[ty] = -1;
    for (int i = 0; entities && i < entities->n; i++) {
        int ty = type_index(g, entities->keys[i]);
        if (ty < 0 || !entities->values[i][0])
            continue; /* other entity types are not part of this encoder */
        long e = add_entity(g, ty, entities->values[i], entity_hash(ty, entities->values[i]));
        if (e < 0)
            return craft_fail(err, CRAFT_ENOMEM, "graph encoder: out of memory for entities");
        p.ent[ty] = (int)e;
    }
    for (int k = 0; k < g->K; k++)
        lab_now[k] = (signed char)(labels && !isnan(labels[k]) ? (labels[k] >= 0.5f) : -1);
    p.labels = lab_now;
    g->observed++;
    if (isnan(t) || t < g->latest) {
        /* no time, or in the past of orders already seen: visible at once
         * (to orders at or after the latest time, which are all later) */
        commit(g, &p);
        return CRAFT_OK;
    }
    if (t > g->latest) {
        commit_pending(g);
        g->latest = t;
    }
    if (g->n_pending == g->cap_pending) {
        size_t cap = g->cap_pending ? g->cap_pending * 2 : 64;
        pending_order *np = realloc(g->pending, cap * sizeof *np);
        if (!np)
            return craft_fail(err, CRAFT_ENOMEM, "graph encoder: out of memory");
        g->pending = np;
        signed char *nl = realloc(g->pending_labels, cap * (size_t)g->K);
        if (!nl)
            return craft_fail(err, CRAFT_ENOMEM, "graph encoder: out of memory");
        g->pending_labels = nl;
        int *ne = realloc(g->pending_ents, cap * (size_t)g->T * sizeof *ne);
        if (!ne)
            return craft_fail(err, CRAFT_ENOMEM, "graph encoder: out of memory");
        g->pending_ents = ne;
        g->cap_pending = cap;
    }
    memcpy(g->pending_labels + g->n_pending * (size_t)g->K, lab_now, (size_t)g->K);
    memcpy(g->pending_ents + g->n_pending * (size_t)g->T, p.ent, sizeof(int) * (size_t)g->T);
    g->pending[g->n_pending++] = p;
    return CRAFT_OK;
}

int craft_graph_encode(craft_graph *g, const craft_kv *entities, double t, float *out, craft_error *err)
{
    const int K = g->K, block = 1 + K + CRAFT_GRAPH_SKETCH;
    if (!isnan(t) && t < g->latest)
        return craft_fail(err, CRAFT_EINPUT,
                          "graph encoder: the order's time is earlier than orders already seen "
                          "(orders must come in time order)");
    if (isnan(t) || t > g->latest)
        commit_pending(g); /* pending orders are strictly earlier than this one */
    memset(out, 0, sizeof *out * (size_t)craft_graph_width_types(g->T, K));
    const size_t per = 1 + 2 * (size_t)K;
    for (int i = 0; entities && i < entities->n; i++) {
        int ty = type_index(g, entities->keys[i]);
        if (ty < 0 || !entities->values[i][0])
            continue;
        float *o = out + (size_t)ty * block;
        uint64_t h = entity_hash(ty, entities->values[i]);
        long e = find_entity(g, ty, entities->values[i], h);
        /* committed counts only: pending orders share this order's time */
        const uint32_t *c = e >= 0 ? g->counts + (size_t)e * per : NULL;
        o[0] = c ? (float)log1p((double)c[0]) : 0.0f;
        for (int k = 0; k < K; k++) {
            double prior = ((double)g->global_pos[k] + 0.5) / ((double)g->global_lab[k] + 1.0);
            double lab = c ? c[1 + k] : 0, pos = c ? c[1 + K + k] : 0;
            double rate = (pos + RATE_SMOOTHING * prior) / (lab + RATE_SMOOTHING);
            double lift = log(rate / prior);
            o[1 + k] = (float)(lift > LIFT_CLIP ? LIFT_CLIP : lift < -LIFT_CLIP ? -LIFT_CLIP : lift);
        }
        uint64_t x = h ^ SKETCH_SEED;
        uint64_t bits = craft_splitmix64(&x);
        for (int j = 0; j < CRAFT_GRAPH_SKETCH; j++)
            o[1 + K + j] = (bits >> j & 1) ? SKETCH_VALUE : -SKETCH_VALUE;
    }
    return CRAFT_OK;
}

/* ------------------------------------------------------------------ time */

static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static long days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int craft_graph_parse_time(const char *ts, double *t, craft_error *err)
{
    int y, mo, d, h = 0, mi = 0, s = 0;
    double frac = 0;
    long offset = 0;
    const char *p = ts;
    if (strlen(ts) < 10 || digits(p, 4, &y) || p[4] != '-' || digits(p + 5, 2, &mo) || p[7] != '-' ||
        digits(p + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        goto bad;
    p += 10;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        if (digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi) || h > 24 || mi > 59)
            goto bad;
        p += 6;
        if (*p == ':') {
            if (digits(p + 1, 2, &s) || s > 60)
                goto bad;
            p += 3;
            if (*p == '.' || *p == ',') {
                double scale = 0.1;
                p++;
                if (*p < '0' || *p > '9')
                    goto bad;
                while (*p >= '0' && *p <= '9') {
                    frac += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om = 0;
            int sign = *p == '-' ? -1 : 1;
            if (digits(p + 1, 2, &oh))
                goto bad;
            p += 3;
            if (*p == ':')
                p++;
            if (*p && digits(p, 2, &om))
                goto bad;
            if (*p)
                p += 2;
            offset = sign * (oh * 3600L + om * 60L);
        }
    }
    if (*p)
        goto bad;
    *t = (double)(days_from_civil(y, mo, d) * 86400L + h * 3600L + mi * 60L + s - offset) + frac;
    return CRAFT_OK;
bad:
    return craft_fail(err, CRAFT_EINPUT, "\"ts\" \"%.40s\" is not an ISO 8601 date-time", ts);
}
