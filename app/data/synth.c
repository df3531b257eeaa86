/* synth.c: realistic synthetic orders with planted defects (docs/SYNTH.md).
 *
 * Each order draws latent factors (item value, route distance, hub congestion,
 * seller quality, carrier reliability, customer activity, fulfillment load,
 * basket size) from its entities and its own noise; the ~300 tabular features
 * are noisy views of those factors, except the rule features, which carry the
 * planted mechanisms. Labels come from the rules in SYNTH.md: per class one
 * self-sufficient tabular rule, one conjunction of a weak tabular, a weak text
 * and a weak graph signal, and one strong tabular signal that the journey text
 * explains away. Only integer hashing, a counter-free PRNG stream and fixed
 * decimal printing: the same options give the same bytes. */
#include "synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encoders.h"
#include "craft_hash.h"

const char *const craft_synth_class_names[CRAFT_SYNTH_CLASSES] = {"D1", "D2", "D3", "D4", "D5"};
const char *const craft_synth_class_titles[CRAFT_SYNTH_CLASSES] = {
    "delivery failure", "item condition", "routing error", "return processing", "compliance"};
const double craft_synth_prevalence[CRAFT_SYNTH_CLASSES] = {0.021, 0.051, 0.018, 0.025, 0.015};

/* ------------------------------------------------------------ randomness */

typedef struct { uint64_t s; } rng;

static uint64_t next64(rng *r) { return craft_mix64(r->s += 0x9E3779B97F4A7C15ull); }
/* uniform in [0, 1) with 53 bits */
static double unif(rng *r) { return (double)(next64(r) >> 11) * (1.0 / 9007199254740992.0); }
static int bern(rng *r, double p) { return unif(r) < p; }
static int below(rng *r, int n) { return (int)((next64(r) >> 33) % (uint64_t)n); }
/* approximately standard normal: a scaled sum of four 16-bit uniforms (no libm) */
static double gauss(rng *r)
{
    uint64_t x = next64(r);
    double s = (double)(x & 0xFFFF) + (double)(x >> 16 & 0xFFFF) + (double)(x >> 32 & 0xFFFF) + (double)(x >> 48);
    return (s / 65536.0 - 2.0) * 1.7320508075688772;
}

/* Hash-derived values of an entity (fixed for a seed, no storage needed). */
static uint64_t ehash(uint64_t seed, int kind, uint64_t index)
{
    return craft_mix64(seed ^ craft_mix64(((uint64_t)kind << 56) ^ index ^ 0xD1B54A32D192ED03ull));
}
static double eunif(uint64_t seed, int kind, uint64_t index)
{
    return (double)(ehash(seed, kind, index) >> 11) * (1.0 / 9007199254740992.0);
}
static double egauss(uint64_t seed, int kind, uint64_t index)
{
    rng r = {ehash(seed, kind, index)};
    return gauss(&r);
}

/* ------------------------------------------------------------ the network */

#define N_CARRIERS 12
#define N_HUBS 60
#define N_REGIONS 16
#define N_SELLERS 2000
/* carriers with elevated loss rates (a graph signal of D1) */
static const int lossy_carriers[2] = {3, 7};
static const double carrier_share[N_CARRIERS] = {0.22, 0.16, 0.12, 0.11, 0.09, 0.07, 0.06, 0.06, 0.04, 0.03, 0.02, 0.02};

enum { EK_SELLER_Q = 1, EK_SELLER_RISK, EK_SELLER_COMPLIANCE, EK_CUSTOMER, EK_CUSTOMER_RETURNS, EK_HUB, EK_HUB_RISK,
       EK_HUB_DAY, EK_WEATHER, EK_ROUTE, EK_CARRIER };

static int is_lossy(int carrier) { return carrier == lossy_carriers[0] || carrier == lossy_carriers[1]; }

/* hubs that mis-sort (a graph signal of D3): fixed, about 22% of the orders */
static const int missort_hubs[] = {1, 5, 9, 14, 19, 25, 33, 41, 50};
static int is_missort_hub(int hub)
{
    for (size_t i = 0; i < sizeof missort_hubs / sizeof *missort_hubs; i++)
        if (missort_hubs[i] == hub)
            return 1;
    return 0;
}
/* risky sellers and customers are drawn by hash, but never among the busiest
 * few, so the share of orders they carry hardly depends on the seed */
#define TOP_SELLERS_SAFE 10
#define TOP_CUSTOMERS_SAFE 20

/* power-law popularity: index k has probability ~ k^(1/a - 1) */
static int heavy_index(rng *r, int n, double a)
{
    double u = unif(r);
    int k = (int)(n * pow(u, a));
    return k < n ? k : n - 1;
}

static int pick_share(rng *r, const double *share, int n)
{
    double u = unif(r), c = 0;
    for (int i = 0; i < n; i++) {
        c += share[i];
        if (u < c)
            return i;
    }
    return n - 1;
}

/* ------------------------------------------------------------ the schema */

enum { G_ORDER, G_FULFILLMENT, G_DELIVERY, G_SELLER, G_NETWORK, N_GROUPS };
static const char *const group_names[N_GROUPS] = {"order properties", "fulfillment attributes",
                                                  "delivery indicators", "seller metrics", "network health signals"};
static const char *const group_prefix[N_GROUPS] = {"ord", "ful", "del", "sel", "net"};
static const double group_share[N_GROUPS] = {0.22, 0.20, 0.22, 0.18, 0.18};

enum { L_VALUE, L_DISTANCE, L_CONGESTION, L_SELLER, L_CARRIER, L_CUSTOMER, L_LOAD, L_BASKET, N_LATENT };

/* the rule and signature features, computed by draw_order */
enum {
    B_ITEM_VALUE, B_QUANTITY, B_WEIGHT, B_FRAGILITY, B_DECLARED_RATIO, B_CATEGORY, B_PAYMENT, B_HAZMAT, B_CONTACTS,
    B_PACK_QUALITY, B_WAREHOUSE, B_PACKAGING, B_PICK_TIME, B_CUSTOMS,
    B_DAYS_LATE, B_FAILED_ATTEMPTS, B_SCAN_GAP, B_SHIP_METHOD, B_WRONG_HUB, B_REROUTES, B_DEVIATION, B_REFUND_DELAY,
    B_RETURN_OPEN,
    B_SELLER_DEFECT, B_SELLER_RATING, B_SELLER_TENURE, B_DOC_COMPLETENESS, B_SELLER_TIER,
    B_HUB_BACKLOG, B_ROUTE_CONGESTION, B_CARRIER_ONTIME, B_REGION,
    N_BASE
};

static const char *const v_category[] = {"electronics", "apparel", "home", "beauty", "toys", "grocery",
                                         "books", "sports", "jewelry", "auto_parts", "health", "garden"};
static const char *const v_payment[] = {"card", "wallet", "cod", "bnpl", "gift_card"};
static const char *const v_hazmat[] = {"none", "lithium", "aerosol", "flammable"};
static const char *const v_warehouse[] = {"WH-01", "WH-02", "WH-03", "WH-04", "WH-05", "WH-06",
                                          "WH-07", "WH-08", "WH-09", "WH-10", "WH-11", "WH-12"};
static const char *const v_packaging[] = {"box_small", "box_medium", "box_large", "poly_mailer", "envelope", "crate"};
static const char *const v_customs[] = {"not_required", "cleared", "pending", "held"};
static const char *const v_ship[] = {"ground", "express", "same_day", "economy", "freight"};
static const char *const v_tier[] = {"bronze", "silver", "gold", "platinum"};
static const char *const v_region[N_REGIONS] = {"north", "south", "east", "west", "central", "coastal", "mountain",
                                                "metro_a", "metro_b", "metro_c", "rural_n", "rural_s", "islands",
                                                "border", "lakes", "plains"};
static const char *const v_codes[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"};

typedef struct {
    const char *name;
    int group, categorical, decimals;
    const char *const *vocab;
    int n_vocab;
} base_def;

static const base_def base_defs[N_BASE] = {
    [B_ITEM_VALUE] = {"ord_item_value", G_ORDER, 0, 2, NULL, 0},
    [B_QUANTITY] = {"ord_quantity", G_ORDER, 0, 0, NULL, 0},
    [B_WEIGHT] = {"ord_weight_kg", G_ORDER, 0, 2, NULL, 0},
    [B_FRAGILITY] = {"ord_fragility_index", G_ORDER, 0, 3, NULL, 0},
    [B_DECLARED_RATIO] = {"ord_declared_value_ratio", G_ORDER, 0, 3, NULL, 0},
    [B_CATEGORY] = {"ord_category", G_ORDER, 1, 0, v_category, 12},
    [B_PAYMENT] = {"ord_payment_method", G_ORDER, 1, 0, v_payment, 5},
    [B_HAZMAT] = {"ord_hazmat_class", G_ORDER, 1, 0, v_hazmat, 4},
    [B_CONTACTS] = {"ord_customer_contacts", G_ORDER, 0, 0, NULL, 0},
    [B_PACK_QUALITY] = {"ful_pack_quality_score", G_FULFILLMENT, 0, 3, NULL, 0},
    [B_WAREHOUSE] = {"ful_warehouse", G_FULFILLMENT, 1, 0, v_warehouse, 12},
    [B_PACKAGING] = {"ful_packaging_type", G_FULFILLMENT, 1, 0, v_packaging, 6},
    [B_PICK_TIME] = {"ful_pick_time_h", G_FULFILLMENT, 0, 2, NULL, 0},
    [B_CUSTOMS] = {"ful_customs_status", G_FULFILLMENT, 1, 0, v_customs, 4},
    [B_DAYS_LATE] = {"del_days_late", G_DELIVERY, 0, 1, NULL, 0},
    [B_FAILED_ATTEMPTS] = {"del_failed_attempts", G_DELIVERY, 0, 0, NULL, 0},
    [B_SCAN_GAP] = {"del_scan_gap_max_h", G_DELIVERY, 0, 1, NULL, 0},
    [B_SHIP_METHOD] = {"del_ship_method", G_DELIVERY, 1, 0, v_ship, 5},
    [B_WRONG_HUB] = {"del_wrong_hub_scans", G_DELIVERY, 0, 0, NULL, 0},
    [B_REROUTES] = {"del_reroute_count", G_DELIVERY, 0, 0, NULL, 0},
    [B_DEVIATION] = {"del_route_deviation_km", G_DELIVERY, 0, 1, NULL, 0},
    [B_REFUND_DELAY] = {"del_refund_delay_days", G_DELIVERY, 0, 1, NULL, 0},
    [B_RETURN_OPEN] = {"del_return_days_open", G_DELIVERY, 0, 1, NULL, 0},
    [B_SELLER_DEFECT] = {"sel_defect_rate_90d", G_SELLER, 0, 4, NULL, 0},
    [B_SELLER_RATING] = {"sel_rating", G_SELLER, 0, 2, NULL, 0},
    [B_SELLER_TENURE] = {"sel_tenure_days", G_SELLER, 0, 0, NULL, 0},
    [B_DOC_COMPLETENESS] = {"sel_doc_completeness", G_SELLER, 0, 3, NULL, 0},
    [B_SELLER_TIER] = {"sel_tier", G_SELLER, 1, 0, v_tier, 4},
    [B_HUB_BACKLOG] = {"net_hub_backlog", G_NETWORK, 0, 0, NULL, 0},
    [B_ROUTE_CONGESTION] = {"net_route_congestion", G_NETWORK, 0, 3, NULL, 0},
    [B_CARRIER_ONTIME] = {"net_carrier_ontime_7d", G_NETWORK, 0, 3, NULL, 0},
    [B_REGION] = {"net_region", G_NETWORK, 1, 0, v_region, N_REGIONS},
};

/* stems of the other features of each group (numbered when they run out) */
static const char *const filler_stems[N_GROUPS][12] = {
    {"basket_distinct_items", "discount_pct", "price_zscore", "session_minutes", "promo_depth", "gift_wrap_share",
     "coupon_count", "shipping_fee", "tax_amount", "item_age_days", "listing_photos", "bundle_size"},
    {"pack_time_min", "label_reprints", "bin_distance_m", "picker_tenure_d", "dock_wait_min", "carton_fill_ratio",
     "wave_size", "sla_buffer_h", "restock_age_d", "qc_sample_rate", "handoff_count", "staging_time_min"},
    {"first_scan_delay_h", "transit_time_h", "scan_count", "promise_slack_h", "last_mile_km", "eta_revisions",
     "door_photo_conf", "signature_required_rate", "courier_load", "locker_distance_km", "attempt_window_h",
     "geo_accuracy_m"},
    {"cancel_rate_30d", "late_ship_rate_30d", "response_time_h", "listing_count", "return_rate_90d", "claims_90d",
     "volume_zscore", "price_competitiveness", "policy_violations", "feedback_count", "inventory_accuracy",
     "catalog_quality"},
    {"hub_throughput", "linehaul_delay_h", "sort_error_rate", "carrier_capacity_util", "route_volume_zscore",
     "fleet_availability", "dock_utilization", "network_slack_h", "lane_reliability", "trailer_fill",
     "cross_dock_wait_h", "capacity_alerts"},
};
static const int group_latents[N_GROUPS][3] = {{L_VALUE, L_BASKET, L_CUSTOMER},
                                               {L_LOAD, L_BASKET, L_VALUE},
                                               {L_DISTANCE, L_CONGESTION, L_CARRIER},
                                               {L_SELLER, L_SELLER, L_VALUE},
                                               {L_CONGESTION, L_CARRIER, L_DISTANCE}};

enum { T_LINEAR, T_POSITIVE, T_RATE, T_COUNT };

typedef struct {
    char name[48];
    int group, categorical, decimals, base; /* base: B_* or -1 for a filler */
    const char *const *vocab;
    int n_vocab;
    int latent, transform;
    double weight, offset, scale, missing;
    char *key;       /* "\"name\": " pre-rendered */
    size_t key_len;
} feat;

typedef struct {
    int n;
    feat *f;
    size_t line_reserve; /* bytes that one order's line can take at most */
} schema;

static void schema_free(schema *s)
{
    for (int i = 0; s->f && i < s->n; i++)
        free(s->f[i].key);
    free(s->f);
    s->f = NULL;
}

/* The feature list depends only on the number of features (never on the seed),
 * so one model config serves every generated file of that width. */
static int schema_build(schema *s, int F)
{
    s->n = F;
    s->f = calloc((size_t)F, sizeof *s->f);
    if (!s->f)
        return -1;
    int per_group[N_GROUPS], base_in_group[N_GROUPS] = {0}, total = 0;
    for (int b = 0; b < N_BASE; b++)
        base_in_group[base_defs[b].group]++;
    for (int g = 0; g < N_GROUPS; g++) {
        per_group[g] = (int)(F * group_share[g] + 0.5);
        if (per_group[g] < base_in_group[g])
            per_group[g] = base_in_group[g];
        total += per_group[g];
    }
    per_group[G_DELIVERY] += F - total; /* rounding goes to the largest group */
    if (per_group[G_DELIVERY] < base_in_group[G_DELIVERY])
        return -1;
    int fillers = F - N_BASE, base_cat = 0;
    for (int b = 0; b < N_BASE; b++)
        base_cat += base_defs[b].categorical;
    int cat_target = (int)(F * 40.0 / 300.0 + 0.5) - base_cat; /* ~40 categorical of 300 */
    if (cat_target < 0)
        cat_target = 0;
    int i = 0, filler_index = 0;
    for (int g = 0; g < N_GROUPS; g++) {
        int stem = 0;
        for (int b = 0; b < N_BASE; b++)
            if (base_defs[b].group == g) {
                feat *f = &s->f[i++];
                snprintf(f->name, sizeof f->name, "%s", base_defs[b].name);
                f->group = g;
                f->categorical = base_defs[b].categorical;
                f->decimals = base_defs[b].decimals;
                f->vocab = base_defs[b].vocab;
                f->n_vocab = base_defs[b].n_vocab;
                f->base = b;
            }
        for (int k = base_in_group[g]; k < per_group[g]; k++, filler_index++) {
            feat *f = &s->f[i++];
            uint64_t h = craft_mix64(0xC0FFEEull + (uint64_t)filler_index);
            f->group = g;
            f->base = -1;
            /* categorical fillers spread evenly over the filler list */
            f->categorical = fillers > 0 && (long)(filler_index + 1) * cat_target / fillers >
                                                (long)filler_index * cat_target / fillers;
            if (stem < 12 && !f->categorical)
                snprintf(f->name, sizeof f->name, "%s_%s", group_prefix[g], filler_stems[g][stem++]);
            else
                snprintf(f->name, sizeof f->name, "%s_%s_%03d", group_prefix[g], f->categorical ? "code" : "signal",
                         k);
            f->latent = group_latents[g][h % 3];
            f->weight = 0.3 + 0.6 * (double)(h >> 8 & 0xFF) / 255.0;
            f->offset = (double)(int)(h >> 16 & 0x3F) - 8;
            f->scale = 0.5 + (double)(h >> 24 & 0xF);
            f->missing = (h >> 28 & 7) == 0 ? 0.15 : (h >> 28 & 7) < 3 ? 0.02 : 0.0;
            if (f->categorical) {
                f->vocab = v_codes;
                f->n_vocab = 3 + (int)(h >> 32 & 3) + (int)(h >> 34 & 1) * 2; /* 3..8 values */
            } else {
                f->transform = (int)(h >> 36 & 3);
                f->decimals = f->transform == T_COUNT ? 0 : f->transform == T_RATE ? 3 : 2;
            }
        }
    }
    for (int j = 0; j < F; j++) {
        feat *f = &s->f[j];
        size_t n = strlen(f->name) + 4;
        if (!(f->key = malloc(n + 1)))
            return -1;
        snprintf(f->key, n + 1, "\"%s\": ", f->name);
        f->key_len = n;
        s->line_reserve += n + 2 + 32; /* separator and the longest value */
    }
    s->line_reserve += 16384;         /* id, time, texts, entities, labels */
    return 0;
}

/* ------------------------------------------------------------- one order */

/* the planted mechanisms and signals of one order (SYNTH.md) */
typedef struct {
    int self[CRAFT_SYNTH_CLASSES];     /* self-sufficient tabular mechanism */
    int weak_tab[CRAFT_SYNTH_CLASSES]; /* the conjunction's weak signals */
    int weak_txt[CRAFT_SYNTH_CLASSES];
    int weak_graph[CRAFT_SYNTH_CLASSES];
    int strong[CRAFT_SYNTH_CLASSES];   /* the suppressor's strong tabular signal */
    int explained[CRAFT_SYNTH_CLASSES];/* ... and the text that explains it away */
    int label[CRAFT_SYNTH_CLASSES];
} planted;

typedef struct {
    uint64_t t;                  /* seconds since 2026-01-01 */
    int customer, seller, carrier, hub, region, route;
    int weather;                 /* carrier-wide weather disruption that day */
    double latent[N_LATENT];
    double base[N_BASE];         /* numeric value or vocabulary index; NAN = missing */
    planted p;
} order;

/* rule constants: probabilities of the mechanisms (SYNTH.md, "Rules") */
static const double p_self[CRAFT_SYNTH_CLASSES] = {0.006, 0.018, 0.005, 0.007, 0.004};
static const double p_self_label[CRAFT_SYNTH_CLASSES] = {0.9, 0.9, 0.9, 0.9, 0.9};
static const double p_weak_txt[CRAFT_SYNTH_CLASSES] = {0.15, 0.25, 0.15, 0.30, 0.12};
static const double p_conj_label = 0.9;
static const double p_strong[CRAFT_SYNTH_CLASSES] = {0.010, 0.020, 0.006, 0.009, 0.006}; /* unexplained */
static const double p_strong_label = 0.65;
static const double p_explainer[CRAFT_SYNTH_CLASSES] = {0.0, 0.05, 0.04, 0.04, 0.03}; /* D1: weather days */
static const double p_explained_strong = 0.8;
static const double p_explained_label = 0.02;
static const double p_background[CRAFT_SYNTH_CLASSES] = {0.0015, 0.0090, 0.0008, 0.0005, 0.0029};

typedef struct {
    uint64_t seed;
    int n_customers;
    double hub_cum[N_HUBS];
} world;

static void world_init(world *w, uint64_t seed, uint64_t orders)
{
    w->seed = seed;
    w->n_customers = orders / 4 > 200 ? (int)(orders / 4 < 50000000 ? orders / 4 : 50000000) : 200;
    double total = 0;
    for (int h = 0; h < N_HUBS; h++)
        total += 1.0 / pow(h + 1, 1.1); /* a few big hubs, many small ones */
    double c = 0;
    for (int h = 0; h < N_HUBS; h++) {
        c += 1.0 / pow(h + 1, 1.1) / total;
        w->hub_cum[h] = c;
    }
}

static int pick_hub(const world *w, rng *r)
{
    double u = unif(r);
    int lo = 0, hi = N_HUBS - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (u < w->hub_cum[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static double clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

static void draw_entities(const world *w, rng *r, order *o)
{
    uint64_t seed = w->seed;
    o->customer = heavy_index(r, w->n_customers, 2.0);
    o->seller = heavy_index(r, N_SELLERS, 2.5);
    o->carrier = pick_share(r, carrier_share, N_CARRIERS);
    o->hub = pick_hub(w, r);
    o->region = below(r, N_REGIONS);
    o->route = o->hub * N_REGIONS + o->region;
    uint64_t day = o->t / 86400;
    o->weather = eunif(seed, EK_WEATHER, (uint64_t)o->carrier << 32 | day) < 0.05;
    double *L = o->latent;
    L[L_VALUE] = gauss(r);
    L[L_DISTANCE] = egauss(seed, EK_ROUTE, (uint64_t)o->route) * 0.8 + gauss(r) * 0.6;
    L[L_CONGESTION] = egauss(seed, EK_HUB, (uint64_t)o->hub) * 0.6 +
                      egauss(seed, EK_HUB_DAY, (uint64_t)o->hub << 32 | day) * 0.6 + gauss(r) * 0.5;
    L[L_SELLER] = egauss(seed, EK_SELLER_Q, (uint64_t)o->seller);
    L[L_CARRIER] = egauss(seed, EK_CARRIER, (uint64_t)o->carrier) * 0.7 + gauss(r) * 0.7;
    L[L_CUSTOMER] = egauss(seed, EK_CUSTOMER, (uint64_t)o->customer);
    L[L_LOAD] = sin((double)(o->t % 86400) / 86400.0 * 6.283185307179586) + gauss(r) * 0.7;
    L[L_BASKET] = gauss(r);
    /* the conjunctions' graph signals: risky entities */
    o->p.weak_graph[0] = is_lossy(o->carrier);
    o->p.weak_graph[1] = o->seller >= TOP_SELLERS_SAFE && eunif(seed, EK_SELLER_RISK, (uint64_t)o->seller) < 0.2;
    o->p.weak_graph[2] = is_missort_hub(o->hub);
    o->p.weak_graph[3] =
        o->customer >= TOP_CUSTOMERS_SAFE && eunif(seed, EK_CUSTOMER_RETURNS, (uint64_t)o->customer) < 0.15;
    o->p.weak_graph[4] =
        o->seller >= TOP_SELLERS_SAFE && eunif(seed, EK_SELLER_COMPLIANCE, (uint64_t)o->seller) < 0.15;
}

/* Draws the mechanisms, then labels. */
static void draw_rules(rng *r, order *o)
{
    planted *p = &o->p;
    for (int k = 0; k < CRAFT_SYNTH_CLASSES; k++) {
        p->self[k] = bern(r, p_self[k]);
        p->weak_tab[k] = bern(r, 0.3);
        p->weak_txt[k] = bern(r, p_weak_txt[k]);
        p->explained[k] = k == 0 ? o->weather && bern(r, 0.9) : bern(r, p_explainer[k]);
        p->strong[k] = p->explained[k] ? bern(r, p_explained_strong) : bern(r, p_strong[k]);
        double q = p_background[k] * (k == 0 && is_lossy(o->carrier) ? 3.0 : 1.0);
        int y = bern(r, q);
        if (p->self[k] && bern(r, p_self_label[k]))
            y = 1;
        if (p->weak_tab[k] && p->weak_txt[k] && p->weak_graph[k] && bern(r, p_conj_label))
            y = 1;
        if (p->strong[k] && bern(r, p->explained[k] ? p_explained_label : p_strong_label))
            y = 1;
        p->label[k] = y;
    }
}

/* The rule features carry the mechanisms; the rest follow the latents. */
static void draw_base(const world *w, rng *r, order *o)
{
    const planted *p = &o->p;
    double *b = o->base, *L = o->latent;
    uint64_t seed = w->seed;
    b[B_ITEM_VALUE] = exp(3.4 + 0.9 * L[L_VALUE]);
    b[B_QUANTITY] = p->weak_tab[3] ? 3 + below(r, 4) : 1 + (bern(r, 0.35) ? 1 : 0);
    b[B_WEIGHT] = clamp(0.4 + 1.2 * exp(0.6 * L[L_BASKET]) * (1 + 0.3 * gauss(r)), 0.05, 60);
    b[B_FRAGILITY] = p->weak_tab[1] ? 0.7 + 0.3 * unif(r) : 0.7 * unif(r);
    b[B_DECLARED_RATIO] = p->weak_tab[4] ? 0.05 + 0.3 * unif(r) : 0.35 + 0.9 * unif(r);
    b[B_CATEGORY] = (double)((o->seller * 7 + below(r, 3)) % 12);
    b[B_PAYMENT] = (double)pick_share(r, (const double[]){0.55, 0.2, 0.1, 0.1, 0.05}, 5);
    b[B_HAZMAT] = b[B_CATEGORY] == 0 && bern(r, 0.4) ? 1 : bern(r, 0.03) ? 2 + below(r, 2) : 0;
    b[B_CONTACTS] = p->strong[1] ? 3 + below(r, 4) : (double)(bern(r, 0.25) + bern(r, 0.1));
    b[B_PACK_QUALITY] = p->self[1] ? 0.02 + 0.13 * unif(r) : 0.15 + 0.85 * (1 - unif(r) * unif(r));
    b[B_WAREHOUSE] = (double)((o->seller + o->region) % 12);
    b[B_PACKAGING] = (double)(b[B_WEIGHT] > 8 ? 5 : b[B_WEIGHT] > 3 ? 2 : below(r, 5));
    b[B_PICK_TIME] = clamp(2 + 1.5 * L[L_LOAD] + gauss(r), 0.1, 48);
    b[B_CUSTOMS] = p->self[4] ? 3 : (double)pick_share(r, (const double[]){0.7, 0.25, 0.05}, 3);
    b[B_DAYS_LATE] = p->strong[0] ? 3 + 6 * unif(r) : clamp(0.8 * L[L_CONGESTION] + 0.5 * gauss(r), 0, 2.9);
    b[B_FAILED_ATTEMPTS] = p->self[0] ? 3 + below(r, 2) : (double)pick_share(r, (const double[]){0.85, 0.12, 0.03}, 3);
    b[B_SCAN_GAP] = p->weak_tab[0] ? 30 + 40 * unif(r) : 2 + 28 * unif(r);
    b[B_SHIP_METHOD] = (double)pick_share(r, (const double[]){0.5, 0.2, 0.05, 0.2, 0.05}, 5);
    b[B_WRONG_HUB] = p->self[2] ? 1 + below(r, 3) : 0;
    b[B_REROUTES] = p->strong[2] ? 2 + below(r, 3) : (double)bern(r, 0.08);
    b[B_DEVIATION] = p->weak_tab[2] ? 40 + 60 * unif(r) : 40 * unif(r) * unif(r);
    b[B_REFUND_DELAY] = p->self[3] ? 10 + 15 * unif(r) : 9.9 * unif(r) * unif(r);
    /* days a return has been open: only for orders with a return in progress */
    b[B_RETURN_OPEN] = p->strong[3] ? 20 + 25 * unif(r) : bern(r, 0.15) ? 19.9 * unif(r) : NAN;
    double tenure = floor(30 + 1500 * eunif(seed, EK_SELLER_Q, (uint64_t)o->seller * 31 + 7));
    b[B_SELLER_TENURE] = tenure;
    b[B_SELLER_DEFECT] = tenure < 90 ? NAN : clamp(0.03 - 0.012 * L[L_SELLER] + 0.005 * gauss(r), 0, 1);
    b[B_SELLER_RATING] = clamp(4.3 + 0.35 * L[L_SELLER] + 0.1 * gauss(r), 1, 5);
    b[B_DOC_COMPLETENESS] = p->strong[4] ? 0.05 + 0.3 * unif(r) : 0.4 + 0.6 * unif(r);
    b[B_SELLER_TIER] = (double)(int)clamp(1.5 + L[L_SELLER], 0, 3);
    b[B_HUB_BACKLOG] = floor(clamp(800 + 400 * L[L_CONGESTION], 0, 5000));
    b[B_ROUTE_CONGESTION] = clamp(0.5 + 0.15 * L[L_CONGESTION] + 0.1 * L[L_DISTANCE], 0, 1);
    b[B_CARRIER_ONTIME] = clamp(0.93 + 0.03 * L[L_CARRIER] - (is_lossy(o->carrier) ? 0.04 : 0), 0, 1);
    b[B_REGION] = (double)o->region;
}

static double filler_value(const feat *f, const order *o, rng *r)
{
    double z = f->weight * o->latent[f->latent] + (1 - f->weight) * gauss(r);
    switch (f->transform) {
    case T_POSITIVE: return f->scale * (z + 3.5) * (z + 3.5) / 4;
    case T_RATE: return clamp((z + 3) / 6, 0, 1);
    case T_COUNT: return floor(clamp(f->scale * (z + 1.5), 0, 1e6));
    default: return f->offset + f->scale * z;
    }
}

/* ---------------------------------------------------------- text output */

typedef struct {
    char *p;
    size_t n, cap;
    int failed; /* an allocation failed: the JSON builders stop writing */
} buf;

static int buf_reserve(buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (b->n + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* callers reserve room first (a line never exceeds the reserve in synth_line) */
static void put(buf *b, const char *s, size_t n)
{
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)
static void puts_z(buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_uint(buf *b, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        b->p[b->n++] = tmp[--n];
}

/* v with `decimals` decimals, trailing zeros dropped: fast and locale-free. */
static void put_fixed(buf *b, double v, int decimals)
{
    static const double pow10[] = {1, 10, 100, 1000, 10000};
    double scaled = v * pow10[decimals];
    if (scaled < 0) {
        scaled = -scaled;
        if (scaled >= 0.5)
            b->p[b->n++] = '-';
    }
    uint64_t q = (uint64_t)(scaled + 0.5);
    uint64_t ip = q / (uint64_t)pow10[decimals], fp = q % (uint64_t)pow10[decimals];
    put_uint(b, ip);
    if (decimals && fp) {
        char d[4];
        int nd = decimals;
        for (int i = nd - 1; i >= 0; i--) {
            d[i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        while (nd > 0 && d[nd - 1] == '0')
            nd--;
        b->p[b->n++] = '.';
        put(b, d, (size_t)nd);
    }
}

static void put_pad2(buf *b, int v)
{
    b->p[b->n++] = (char)('0' + v / 10);
    b->p[b->n++] = (char)('0' + v % 10);
}

/* 2026-01-01T00:00:00Z + t seconds */
static void put_ts(buf *b, uint64_t t)
{
    long days = (long)(t / 86400) + 20454; /* days from 1970-01-01 to 2026-01-01 */
    /* civil from days (H. Hinnant) */
    long z = days + 719468, era = z / 146097, doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
    y += m <= 2;
    int s = (int)(t % 86400);
    put_uint(b, (uint64_t)y);
    b->p[b->n++] = '-';
    put_pad2(b, m);
    b->p[b->n++] = '-';
    put_pad2(b, d);
    b->p[b->n++] = 'T';
    put_pad2(b, s / 3600);
    b->p[b->n++] = ':';
    put_pad2(b, s / 60 % 60);
    b->p[b->n++] = ':';
    put_pad2(b, s % 60);
    b->p[b->n++] = 'Z';
}

static const char *const noise_reasons[] = {"none", "none", "none", "none", "none", "none", "none", "none",
                                            "label_reprint", "scan_missed", "dock_congestion", "late_linehaul"};
static const char *const stations[] = {"sort", "cross_dock", "delivery_station", "gateway", "locker"};

typedef struct {
    const char *type, *reason, *status, *station;
    int handlers;
} scan;

static void put_scan(buf *b, const scan *s, double hours, double value, int first)
{
    if (!first)
        PUTS(b, " | ");
    PUTS(b, "SCAN ");
    puts_z(b, s->type);
    PUTS(b, " t+");
    put_fixed(b, hours, 1);
    PUTS(b, "h reason=");
    puts_z(b, s->reason);
    PUTS(b, " status=");
    puts_z(b, s->status);
    PUTS(b, " station=");
    puts_z(b, s->station);
    PUTS(b, " handlers=");
    put_uint(b, (uint64_t)s->handlers);
    PUTS(b, " value=");
    put_fixed(b, value, 2);
}

/* The shipment journey: scan events whose reasons carry the text signals. */
static void put_journey(buf *b, rng *r, const order *o)
{
    const planted *p = &o->p;
    double value = o->base[B_ITEM_VALUE], h = 0.5 + 3 * unif(r);
    int first = 1;
    scan s = {"pickup", "none", "ok", "gateway", 1 + below(r, 2)};
    put_scan(b, &s, h, value, first), first = 0;
    if (o->base[B_CUSTOMS] != 0 || p->weak_txt[4] || p->explained[4]) {
        scan c = {"customs", noise_reasons[below(r, 12)], "ok", "gateway", 1 + below(r, 3)};
        if (p->weak_txt[4])
            c.reason = "docs_pending", c.status = "hold";
        if (p->explained[4])
            c.reason = "exemption_verified", c.status = "cleared";
        put_scan(b, &c, h += 2 + 10 * unif(r), value, first);
    }
    int hubs = 1 + bern(r, 0.4);
    for (int i = 0; i < hubs; i++) {
        scan a = {"arrive_hub", noise_reasons[below(r, 12)], "ok", "sort", 1 + below(r, 3)};
        put_scan(b, &a, h += 4 + 20 * unif(r), value, first);
        scan so = {"sort", noise_reasons[below(r, 12)], "ok", stations[below(r, 3)], 1 + below(r, 4)};
        if (i == 0 && p->weak_txt[1])
            so.reason = "manual_handling", so.handlers = 5 + below(r, 4);
        if (i == 0 && p->weak_txt[2])
            so.station = "overflow";
        put_scan(b, &so, h += 0.5 + 3 * unif(r), value, first);
        scan d = {"depart_hub", noise_reasons[below(r, 12)], "ok", "sort", 1 + below(r, 2)};
        if (i == 0 && p->explained[0])
            d.reason = "weather_disruption", d.status = "delayed";
        if (i == 0 && p->explained[2])
            d.reason = "customer_redirect", d.status = "rerouted";
        put_scan(b, &d, h += 1 + 6 * unif(r), value, first);
    }
    scan ofd = {"out_for_delivery", "none", "ok", "delivery_station", 1};
    if (p->explained[1])
        ofd.reason = "customer_reschedule", ofd.status = "rescheduled";
    put_scan(b, &ofd, h += 6 + 30 * unif(r) + 24 * o->base[B_DAYS_LATE], value, first);
    int attempts = 1 + (int)o->base[B_FAILED_ATTEMPTS];
    for (int a = 0; a < attempts; a++) {
        int last = a == attempts - 1;
        scan at = {last ? "delivered" : "delivery_attempt", last ? "none" : "recipient_absent",
                   last ? "ok" : "exception", "delivery_station", 1};
        if (a == 0 && p->weak_txt[0])
            at.reason = "address_unclear";
        put_scan(b, &at, h += last && a == 0 ? 0.5 + 3 * unif(r) : 20 + 6 * unif(r), value, first);
    }
    if (!isnan(o->base[B_RETURN_OPEN]) || p->explained[3]) {
        scan rs = {"return_scan", "none", "return_in_transit", "sort", 1 + below(r, 2)};
        if (p->explained[3])
            rs.reason = "holiday_closure", rs.status = "return_paused";
        put_scan(b, &rs, h += 48 + 200 * unif(r), value, first);
    }
}

static const char *const items[] = {"headphones", "phone_case", "sneakers", "jacket", "blender", "lamp",
                                    "face_cream", "board_game", "novel", "yoga_mat", "watch", "brake_pads",
                                    "vitamins", "plant_pot", "charger", "backpack"};
static const char *const brands[] = {"Sonex", "Nordvik", "Aurel", "Kestrel", "Lumio", "Pallas", "Verdant", "Quill"};
static const char *const pays[] = {"card", "wallet", "cod", "bnpl", "gift_card"};
static const char *const addrs[] = {"home", "office", "locker", "pickup_point"};
static const char *const outcomes[] = {"delivered", "delivered", "delivered", "delivered", "delivered_late",
                                       "cancelled", "refunded"};

/* The customer's earlier orders: item, brand/seller, quantity, payment, address, outcome. */
static void put_history(buf *b, rng *r, const order *o)
{
    int n = 1 + below(r, 3);
    int returned_at = o->p.weak_txt[3] ? below(r, n) : -1;
    for (int i = 0; i < n; i++) {
        if (i)
            PUTS(b, "; ");
        PUTS(b, "item=");
        puts_z(b, items[below(r, 16)]);
        PUTS(b, " brand=");
        puts_z(b, brands[below(r, 8)]);
        PUTS(b, " seller=S-");
        put_uint(b, (uint64_t)(i == 0 ? o->seller : heavy_index(r, N_SELLERS, 2.5)));
        PUTS(b, " qty=");
        put_uint(b, (uint64_t)(1 + below(r, 3)));
        PUTS(b, " pay=");
        puts_z(b, pays[below(r, 5)]);
        PUTS(b, " addr=");
        puts_z(b, addrs[below(r, 4)]);
        PUTS(b, " outcome=");
        puts_z(b, i == returned_at ? "returned" : outcomes[below(r, 7)]);
    }
}

/* One JSON line. */
static int synth_line(buf *b, const world *w, const schema *sc, rng *r, order *o, uint64_t index, int with_labels)
{
    if (buf_reserve(b, sc->line_reserve))
        return -1;
    PUTS(b, "{\"order_id\": \"O-");
    char id[16];
    int n = 0;
    for (uint64_t v = index + 1; n < 7 || v; v /= 10)
        id[n++] = (char)('0' + v % 10);
    while (n)
        b->p[b->n++] = id[--n];
    PUTS(b, "\", \"ts\": \"");
    put_ts(b, o->t);
    PUTS(b, "\", \"features\": {");
    for (int j = 0; j < sc->n; j++) {
        const feat *f = &sc->f[j];
        if (j)
            PUTS(b, ", ");
        put(b, f->key, f->key_len);
        double v = f->base >= 0 ? o->base[f->base] : (bern(r, f->missing) ? NAN : filler_value(f, o, r));
        if (isnan(v)) {
            PUTS(b, "null");
        } else if (f->categorical) {
            int k = f->base >= 0 ? (int)v : (int)clamp((v - f->offset) / f->scale / 6 * f->n_vocab + f->n_vocab / 2.0,
                                                        0, f->n_vocab - 1);
            b->p[b->n++] = '"';
            puts_z(b, f->vocab[k]);
            b->p[b->n++] = '"';
        } else {
            put_fixed(b, v, f->decimals);
        }
    }
    PUTS(b, "}, \"text\": {\"journey\": \"");
    put_journey(b, r, o);
    PUTS(b, "\", \"history\": \"");
    put_history(b, r, o);
    PUTS(b, "\"}, \"entities\": {\"customer\": \"C-");
    put_uint(b, (uint64_t)o->customer);
    PUTS(b, "\", \"seller\": \"S-");
    put_uint(b, (uint64_t)o->seller);
    PUTS(b, "\", \"carrier\": \"CR-");
    put_uint(b, (uint64_t)o->carrier);
    PUTS(b, "\", \"route\": \"R-");
    put_uint(b, (uint64_t)o->route);
    PUTS(b, "\", \"hub\": \"H-");
    put_uint(b, (uint64_t)o->hub);
    PUTS(b, "\"}");
    (void)w;
    if (with_labels) {
        PUTS(b, ", \"labels\": {");
        for (int k = 0; k < CRAFT_SYNTH_CLASSES; k++) {
            if (k)
                PUTS(b, ", ");
            b->p[b->n++] = '"';
            puts_z(b, craft_synth_class_names[k]);
            PUTS(b, "\": ");
            b->p[b->n++] = (char)('0' + o->p.label[k]);
        }
        b->p[b->n++] = '}';
    }
    PUTS(b, "}\n");
    return 0;
}

int craft_synth_write(const craft_synth_options *o, FILE *out, craft_synth_stats *stats,
                      craft_synth_progress_fn progress, void *user, craft_error *err)
{
    if (o->features < CRAFT_SYNTH_MIN_FEATURES || o->features > CRAFT_SYNTH_MAX_FEATURES)
        return craft_fail(err, CRAFT_EINPUT, "synth: --features must be in %d..%d, got %d", CRAFT_SYNTH_MIN_FEATURES,
                          CRAFT_SYNTH_MAX_FEATURES, o->features);
    schema sc = {0};
    if (schema_build(&sc, o->features)) {
        schema_free(&sc);
        return craft_fail(err, CRAFT_ENOMEM, "synth: out of memory");
    }
    world w;
    world_init(&w, o->seed, o->orders);
    craft_synth_stats st = {0};
    buf b = {0};
    rng r = {craft_mix64(o->seed ^ 0x5F3759DFull)};
    uint64_t t = 0;
    int rc = CRAFT_OK;
    for (uint64_t i = 0; i < o->orders; i++) {
        order ord;
        memset(&ord, 0, sizeof ord);
        t += 1 + (uint64_t)(-25.0 * log(1.0 - unif(&r))); /* ~25 s apart, strictly increasing */
        ord.t = t;
        draw_entities(&w, &r, &ord);
        draw_rules(&r, &ord);
        draw_base(&w, &r, &ord);
        if (synth_line(&b, &w, &sc, &r, &ord, i, o->with_labels)) {
            rc = craft_fail(err, CRAFT_ENOMEM, "synth: out of memory");
            break;
        }
        for (int k = 0; k < CRAFT_SYNTH_CLASSES; k++)
            st.positives[k] += (uint64_t)ord.p.label[k];
        st.orders++;
        if (b.n >= (1u << 20) || i + 1 == o->orders) {
            if (fwrite(b.p, 1, b.n, out) != b.n) {
                rc = craft_fail(err, CRAFT_EIO, "synth: writing the orders failed");
                break;
            }
            st.bytes += b.n;
            b.n = 0;
            if (progress)
                progress(user, i + 1, o->orders);
        }
    }
    free(b.p);
    schema_free(&sc);
    if (stats)
        *stats = st;
    return rc;
}

/* ------------------------------------------------------- truth and config */

static void jstr(buf *b, const char *s)
{
    if (buf_reserve(b, 2 * strlen(s) + 4))
        return;
    b->p[b->n++] = '"';
    for (; *s; s++) { /* our own texts: only quotes and backslashes need escaping */
        if (*s == '"' || *s == '\\')
            b->p[b->n++] = '\\';
        b->p[b->n++] = *s;
    }
    b->p[b->n++] = '"';
}

static void jraw(buf *b, const char *s)
{
    if (buf_reserve(b, strlen(s) + 1))
        return;
    puts_z(b, s);
}

static void jfmt(buf *b, const char *fmt, double v)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, fmt, v);
    jraw(b, tmp);
}

typedef struct {
    const char *self_feature, *self_rule;
    const char *syn_feature, *syn_rule, *syn_text, *syn_graph_type, *syn_graph;
    const char *sup_feature, *sup_rule, *sup_text;
} class_rules;

static const class_rules rules[CRAFT_SYNTH_CLASSES] = {
    {"del_failed_attempts", "del_failed_attempts >= 3",
     "del_scan_gap_max_h", "del_scan_gap_max_h >= 30", "journey: a delivery scan with reason=address_unclear",
     "carrier", "carrier CR-3 or CR-7 (elevated loss rates)",
     "del_days_late", "del_days_late >= 3", "journey: depart_hub reason=weather_disruption status=delayed "
                                            "(carrier-wide weather disruption that day)"},
    {"ful_pack_quality_score", "ful_pack_quality_score < 0.15",
     "ord_fragility_index", "ord_fragility_index >= 0.7", "journey: sort scan with reason=manual_handling (handlers 5-8)",
     "seller", "a high-risk seller (20% of the sellers outside the 10 busiest)",
     "ord_customer_contacts", "ord_customer_contacts >= 3", "journey: out_for_delivery reason=customer_reschedule"},
    {"del_wrong_hub_scans", "del_wrong_hub_scans >= 1",
     "del_route_deviation_km", "del_route_deviation_km >= 40", "journey: sort scan at station=overflow",
     "hub", "a mis-sorting hub: H-1, H-5, H-9, H-14, H-19, H-25, H-33, H-41, H-50",
     "del_reroute_count", "del_reroute_count >= 2", "journey: depart_hub reason=customer_redirect status=rerouted"},
    {"del_refund_delay_days", "del_refund_delay_days >= 10",
     "ord_quantity", "ord_quantity >= 3", "history: an earlier order with outcome=returned",
     "customer", "a serial-returner customer (15% of the customers outside the 20 busiest)",
     "del_return_days_open", "del_return_days_open >= 20", "journey: return_scan reason=holiday_closure"},
    {"ful_customs_status", "ful_customs_status == \"held\"",
     "ord_declared_value_ratio", "ord_declared_value_ratio < 0.35", "journey: customs scan with reason=docs_pending",
     "seller", "a compliance-risk seller (15% of the sellers outside the 10 busiest)",
     "sel_doc_completeness", "sel_doc_completeness < 0.35", "journey: customs scan reason=exemption_verified"},
};

char *craft_synth_truth_json(const craft_synth_options *o, const craft_synth_stats *stats)
{
    buf b = {0};
    if (buf_reserve(&b, 1 << 14))
        return NULL;
    jraw(&b, "{\n  \"generator\": \"craft synth\",\n  \"format\": \"craft-synth-truth\",\n  \"version\": 1,\n");
    jfmt(&b, "  \"seed\": %.0f,\n", (double)o->seed);
    jfmt(&b, "  \"orders\": %.0f,\n", (double)o->orders);
    jfmt(&b, "  \"features\": %.0f,\n", o->features);
    jraw(&b, "  \"modalities\": {\"tab\": \"features\", \"txt\": \"text.journey + text.history (built-in text "
             "encoder)\", \"graph\": \"entities (built-in graph encoder)\"},\n");
    jraw(&b, "  \"elevated_loss_carriers\": [\"CR-3\", \"CR-7\"],\n  \"classes\": {\n");
    for (int k = 0; k < CRAFT_SYNTH_CLASSES; k++) {
        const class_rules *cr = &rules[k];
        jraw(&b, "    ");
        jstr(&b, craft_synth_class_names[k]);
        jraw(&b, ": {\"title\": ");
        jstr(&b, craft_synth_class_titles[k]);
        jfmt(&b, ", \"prevalence_target\": %.3f", craft_synth_prevalence[k]);
        if (stats && stats->orders)
            jfmt(&b, ", \"prevalence_observed\": %.5f", (double)stats->positives[k] / (double)stats->orders);
        jraw(&b, ",\n      \"self_sufficient\": [{\"feature\": ");
        jstr(&b, cr->self_feature);
        jraw(&b, ", \"rule\": ");
        jstr(&b, cr->self_rule);
        jfmt(&b, ", \"p_mechanism\": %g", p_self[k]);
        jfmt(&b, ", \"p_defect\": %g}],\n", p_self_label[k]);
        jraw(&b, "      \"synergistic\": [{\"feature\": ");
        jstr(&b, cr->syn_feature);
        jraw(&b, ", \"modalities\": [\"txt\", \"graph\"], \"rule\": ");
        jstr(&b, cr->syn_rule);
        jraw(&b, ", \"text\": ");
        jstr(&b, cr->syn_text);
        jraw(&b, ", \"entity_type\": ");
        jstr(&b, cr->syn_graph_type);
        jraw(&b, ", \"graph\": ");
        jstr(&b, cr->syn_graph);
        jfmt(&b, ", \"p_tab\": 0.3, \"p_text\": %g", p_weak_txt[k]);
        jfmt(&b, ", \"p_defect_all_three\": %g}],\n", p_conj_label);
        jraw(&b, "      \"suppressed\": [{\"feature\": ");
        jstr(&b, cr->sup_feature);
        jraw(&b, ", \"modality\": \"txt\", \"rule\": ");
        jstr(&b, cr->sup_rule);
        jraw(&b, ", \"text\": ");
        jstr(&b, cr->sup_text);
        jfmt(&b, ", \"p_defect_unexplained\": %g", p_strong_label);
        jfmt(&b, ", \"p_defect_explained\": %g}]}", p_explained_label);
        jraw(&b, k + 1 < CRAFT_SYNTH_CLASSES ? ",\n" : "\n");
    }
    jraw(&b, "  },\n  \"groups\": {");
    for (int g = 0; g < N_GROUPS; g++) {
        jraw(&b, g ? ", " : "");
        jstr(&b, group_prefix[g]);
        jraw(&b, ": ");
        jstr(&b, group_names[g]);
    }
    jraw(&b, "}\n}\n");
    if (buf_reserve(&b, 1))
        return (free(b.p), NULL);
    b.p[b.n] = 0;
    return b.p;
}

char *craft_synth_model_config(int features)
{
    if (features < CRAFT_SYNTH_MIN_FEATURES || features > CRAFT_SYNTH_MAX_FEATURES)
        return NULL;
    schema sc = {0};
    buf b = {0};
    if (schema_build(&sc, features) || buf_reserve(&b, 1 << 16)) {
        schema_free(&sc);
        free(b.p);
        return NULL;
    }
    /* the sizes of data/model-config.json and of `craft config init` for up to 100,000 orders */
    jraw(&b, "{\"format\": \"craft-model\", \"version\": 1, \"d_model\": 64, \"heads\": 4, \"layers\": 1, "
             "\"ffn_mult\": 2, \"topk\": 8, \"route_dim\": 16, \"bins\": 32, \"emb_dim\": 16, "
             "\"task\": \"multilabel\", \"classes\": [\"D1\", \"D2\", \"D3\", \"D4\", \"D5\"], "
             "\"backbone\": \"tab\", \"prevalence\": [");
    for (int k = 0; k < CRAFT_SYNTH_CLASSES; k++)
        jfmt(&b, k ? ", %g" : "%g", craft_synth_prevalence[k]);
    jraw(&b, "], \"modalities\": [{\"name\": \"tab\", \"kind\": \"tabular\", \"features\": [");
    for (int j = 0; j < sc.n; j++) {
        const feat *f = &sc.f[j];
        jraw(&b, j ? ", {\"name\": " : "{\"name\": ");
        jstr(&b, f->name);
        if (f->categorical) {
            jraw(&b, ", \"type\": \"categorical\", \"vocab\": [");
            for (int v = 0; v < f->n_vocab; v++) {
                jraw(&b, v ? ", " : "");
                jstr(&b, f->vocab[v]);
            }
            jraw(&b, "]}");
        } else {
            jraw(&b, ", \"type\": \"numeric\"}");
        }
    }
    jfmt(&b, "]}, {\"name\": \"txt\", \"kind\": \"embedding\", \"dim\": %.0f, \"tokens\": 1}, ", CRAFT_TEXT_DIM);
    jfmt(&b, "{\"name\": \"graph\", \"kind\": \"embedding\", \"dim\": %.0f, \"tokens\": 1}]}\n",
         craft_graph_width(CRAFT_SYNTH_CLASSES));
    schema_free(&sc);
    if (buf_reserve(&b, 1))
        return (free(b.p), NULL);
    b.p[b.n] = 0;
    return b.p;
}
