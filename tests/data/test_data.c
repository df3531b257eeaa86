/* test_data.c: the built-in encoders and the synthetic order generator.
 * Suite 'data'. */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "encoders.h"
#include "orders.h"
#include "scoring.h"
#include "synth.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *out = buf[next++ & 3];
    snprintf(out, sizeof buf[0], "%s/%s", tmpdir, name);
    return out;
}

static craft_kv make_kv(int n, const char **keys, const char **values)
{
    craft_kv kv = {n, (char **)keys, (char **)values};
    return kv;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ------------------------------------------------------------------ text */

static const char *journey =
    "SCAN pickup t+2.7h reason=none status=ok station=gateway handlers=2 value=36.44 | "
    "SCAN delivered t+91.9h reason=address_unclear status=ok station=delivery_station handlers=1 value=36.44";
static const char *history = "item=brake_pads brand=Aurel seller=S-48 qty=1 pay=cod addr=office outcome=returned";

static void test_text_deterministic_and_normalized(void)
{
    craft_text_encoder *te;
    CU_ASSERT_FATAL(craft_text_encoder_new(&te, NULL) == CRAFT_OK);
    const char *k1[] = {"journey", "history"}, *v1[] = {journey, history};
    const char *k2[] = {"history", "journey"}, *v2[] = {history, journey};
    craft_kv a = make_kv(2, k1, v1), b = make_kv(2, k2, v2);
    float x[CRAFT_TEXT_DIM], y[CRAFT_TEXT_DIM], z[CRAFT_TEXT_DIM];
    CU_ASSERT(craft_text_encode(te, &a, x) > 0);
    CU_ASSERT(craft_text_encode(te, &a, y) > 0);
    CU_ASSERT(memcmp(x, y, sizeof x) == 0);      /* same text, same bits */
    CU_ASSERT(craft_text_encode(te, &b, z) > 0); /* field order does not matter */
    CU_ASSERT(memcmp(x, z, sizeof x) == 0);
    double ss = 0;
    int nonzero = 0;
    for (int d = 0; d < CRAFT_TEXT_DIM; d++) {
        ss += (double)x[d] * x[d];
        nonzero += x[d] != 0;
    }
    CU_ASSERT(fabs(ss - 1.0) < 1e-6);
    CU_ASSERT(nonzero > 100);
    /* ASCII case folding: upper case gives the same vector */
    char upper[512];
    snprintf(upper, sizeof upper, "%s", journey);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    const char *v3[] = {upper, history};
    craft_kv c = make_kv(2, k1, v3);
    CU_ASSERT(craft_text_encode(te, &c, z) > 0);
    CU_ASSERT(memcmp(x, z, sizeof x) == 0);
    /* one word changed: a different vector */
    const char *v4[] = {"SCAN pickup t+2.7h reason=weather_disruption", history};
    craft_kv d4 = make_kv(2, k1, v4);
    CU_ASSERT(craft_text_encode(te, &d4, z) > 0);
    CU_ASSERT(memcmp(x, z, sizeof x) != 0);
    /* the same words in another field: another vector (fields are namespaced) */
    const char *k5[] = {"notes", "history"};
    craft_kv e = make_kv(2, k5, v1);
    CU_ASSERT(craft_text_encode(te, &e, z) > 0);
    CU_ASSERT(memcmp(x, z, sizeof x) != 0);
    craft_text_encoder_free(te);
}

/* Values pinned from the algorithm of docs/ENCODERS.md: any change to the
 * tokenizer, hash, weights or projection changes them. */
static void test_text_known_answer(void)
{
    craft_text_encoder *te;
    CU_ASSERT_FATAL(craft_text_encoder_new(&te, NULL) == CRAFT_OK);
    const char *k[] = {"journey"}, *v[] = {"SCAN arrive_hub reason=none"};
    craft_kv kv = make_kv(1, k, v);
    float x[CRAFT_TEXT_DIM];
    /* 4 words, 3 bigrams, and as many character trigrams of "<word>" as letters */
    CU_ASSERT_EQUAL(craft_text_encode(te, &kv, x), 4 + 3 + 4 + 10 + 6 + 4);
    static const struct { int dim; uint32_t bits; } pinned[] = {
        {4, 0xbd4429afu}, {5, 0x3d4429afu}, {6, 0x3d4429afu}, {12, 0x3e4429afu}, {19, 0x3d4429afu}};
    for (size_t i = 0; i < sizeof pinned / sizeof *pinned; i++) {
        if (float_bits(x[pinned[i].dim]) != pinned[i].bits)
            fprintf(stderr, "dim %d: got 0x%08x (%.9g), pinned 0x%08x\n", pinned[i].dim,
                    float_bits(x[pinned[i].dim]), x[pinned[i].dim], pinned[i].bits);
        CU_ASSERT_EQUAL(float_bits(x[pinned[i].dim]), pinned[i].bits);
    }
    /* every dimension, bit for bit: FNV-1a over the 256 float bit patterns */
    uint64_t h = 1469598103934665603ull;
    int zeros = 0;
    for (int d = 0; d < CRAFT_TEXT_DIM; d++) {
        h = (h ^ float_bits(x[d])) * 1099511628211ull;
        zeros += x[d] == 0;
    }
    CU_ASSERT_EQUAL(h, 0x27bc386a6193db2cull);
    CU_ASSERT_EQUAL(zeros, 158);
    /* no usable words: no vector */
    const char *v0[] = {" -- | ... "};
    craft_kv empty = make_kv(1, k, v0);
    CU_ASSERT_EQUAL(craft_text_encode(te, &empty, x), 0);
    for (int d = 0; d < CRAFT_TEXT_DIM; d++)
        CU_ASSERT(x[d] == 0);
    craft_text_encoder_free(te);
}

/* ----------------------------------------------------------------- graph */

static void test_graph_time_parsing(void)
{
    double t;
    CU_ASSERT(craft_graph_parse_time("2026-01-01T00:00:00Z", &t, NULL) == CRAFT_OK);
    CU_ASSERT_EQUAL(t, 1767225600.0);
    CU_ASSERT(craft_graph_parse_time("2026-01-01T01:00:00+01:00", &t, NULL) == CRAFT_OK);
    CU_ASSERT_EQUAL(t, 1767225600.0);
    CU_ASSERT(craft_graph_parse_time("2026-01-01 00:00:01.5", &t, NULL) == CRAFT_OK);
    CU_ASSERT_EQUAL(t, 1767225601.5);
    CU_ASSERT(craft_graph_parse_time("2026-03-01", &t, NULL) == CRAFT_OK);
    CU_ASSERT_EQUAL(t, 1767225600.0 + 59 * 86400.0);
    craft_error err = {0};
    CU_ASSERT(craft_graph_parse_time("2026-01-01Tnoon", &t, &err) == CRAFT_EINPUT);
    CU_ASSERT(strstr(err.msg, "2026-01-01Tnoon") != NULL);
    CU_ASSERT(craft_graph_parse_time("2026-13-01", &t, NULL) == CRAFT_EINPUT);
}

static const char *types[] = {"customer", "seller", "carrier", "route", "hub"};

static void observe(craft_graph *g, const char *customer, const char *seller, double t, float d1, float d2)
{
    const char *vals[] = {customer, seller, "CR-1", "R-1", "H-1"};
    craft_kv kv = make_kv(5, types, vals);
    float labels[5] = {d1, d2, 0, 0, NAN};
    CU_ASSERT(craft_graph_observe(g, &kv, t, labels, NULL) == CRAFT_OK);
}

static void test_graph_values(void)
{
    const int K = 5, W = craft_graph_width(K), B = 1 + K + CRAFT_GRAPH_SKETCH;
    CU_ASSERT_EQUAL(W, 80);
    craft_graph *g;
    CU_ASSERT_FATAL(craft_graph_new(&g, K, NULL) == CRAFT_OK);
    observe(g, "C-1", "S-1", 1, 1, 0);
    observe(g, "C-2", "S-1", 2, 0, 0);
    observe(g, "C-3", "S-1", 3, 1, 1);
    observe(g, "C-4", "S-2", 4, 0, 0);
    const char *vals[] = {"C-9", "S-1"};
    craft_kv kv = make_kv(2, types, vals);
    float out[80];
    CU_ASSERT_FATAL(craft_graph_encode(g, &kv, 5, out, NULL) == CRAFT_OK);
    /* customer C-9 never seen: no activity, lift 0; its sketch is still there */
    CU_ASSERT_EQUAL(out[0], 0.0f);
    CU_ASSERT_EQUAL(out[1], 0.0f);
    CU_ASSERT(fabsf(out[1 + K]) == 0.25f);
    /* seller S-1: 3 earlier orders, D1 positives 2 of 3; global D1: 2 of 4 */
    const float *s = out + B;
    CU_ASSERT(fabs(s[0] - log1p(3.0)) < 1e-6);
    double prior = (2 + 0.5) / (4 + 1.0), rate = (2 + 10 * prior) / (3 + 10.0);
    CU_ASSERT(fabs(s[1] - log(rate / prior)) < 1e-6);
    double prior2 = (1 + 0.5) / (4 + 1.0), rate2 = (1 + 10 * prior2) / (3 + 10.0);
    CU_ASSERT(fabs(s[2] - log(rate2 / prior2)) < 1e-6);
    CU_ASSERT_EQUAL(s[5], 0.0f); /* D5 never labelled: prior only, lift 0 */
    /* types the order lacks stay zero */
    for (int j = 2 * B; j < W; j++)
        CU_ASSERT_EQUAL(out[j], 0.0f);
    /* the sketch is a fixed function of (type, id) */
    float again[80];
    const char *vals2[] = {"C-other", "S-1"};
    craft_kv kv2 = make_kv(2, types, vals2);
    CU_ASSERT(craft_graph_encode(g, &kv2, 5, again, NULL) == CRAFT_OK);
    CU_ASSERT(memcmp(s + 1 + K, again + B + 1 + K, CRAFT_GRAPH_SKETCH * sizeof(float)) == 0);
    craft_graph_free(g);
}

static void test_graph_no_future_leakage(void)
{
    const int K = 5;
    craft_graph *g1, *g2;
    CU_ASSERT_FATAL(craft_graph_new(&g1, K, NULL) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_graph_new(&g2, K, NULL) == CRAFT_OK);
    for (int i = 0; i < 10; i++) {
        observe(g1, "C-1", "S-1", i, (float)(i % 3 == 0), 0);
        observe(g2, "C-1", "S-1", i, (float)(i % 3 == 0), 0);
    }
    /* g2 also sees two orders at the very time of the encoded order */
    observe(g2, "C-1", "S-1", 10, 1, 1);
    observe(g2, "C-1", "S-1", 10, 1, 1);
    const char *vals[] = {"C-1", "S-1", "CR-1", "R-1", "H-1"};
    craft_kv kv = make_kv(5, types, vals);
    float a[80], b[80];
    CU_ASSERT(craft_graph_encode(g1, &kv, 10, a, NULL) == CRAFT_OK);
    CU_ASSERT(craft_graph_encode(g2, &kv, 10, b, NULL) == CRAFT_OK);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    /* once a later order is seen, an earlier time is refused, not leaked */
    observe(g2, "C-1", "S-1", 11, 1, 1);
    craft_error err = {0};
    CU_ASSERT(craft_graph_encode(g2, &kv, 10, b, &err) == CRAFT_EINPUT);
    CU_ASSERT(strstr(err.msg, "time order") != NULL);
    /* and at time 12 the orders of time 10 and 11 count */
    CU_ASSERT(craft_graph_encode(g2, &kv, 12, b, NULL) == CRAFT_OK);
    CU_ASSERT(b[0] > a[0]);
    craft_graph_free(g1);
    craft_graph_free(g2);
}

/* ------------------------------------------------- generator and reading */

static int parse_synth_config(craft_config *cfg, int features)
{
    char *json = craft_synth_model_config(features);
    if (!json)
        return -1;
    craft_error err = {0};
    int rc = craft_config_parse(cfg, json, strlen(json), &err);
    if (rc)
        fprintf(stderr, "config: %s\n", err.msg);
    free(json);
    return rc;
}

static char *synth_to_memory(uint64_t orders, uint64_t seed, int features, size_t *len, craft_synth_stats *st)
{
    char *data = NULL;
    FILE *f = open_memstream(&data, len);
    if (!f)
        return NULL;
    craft_synth_options o = {orders, seed, features, 1};
    int rc = craft_synth_write(&o, f, st, NULL, NULL, NULL);
    fclose(f);
    if (rc) {
        free(data);
        return NULL;
    }
    return data;
}

static void test_synth_deterministic(void)
{
    size_t n1, n2, n3;
    char *a = synth_to_memory(1500, 42, 300, &n1, NULL);
    char *b = synth_to_memory(1500, 42, 300, &n2, NULL);
    char *c = synth_to_memory(1500, 43, 300, &n3, NULL);
    CU_ASSERT_FATAL(a && b && c);
    CU_ASSERT(n1 == n2 && memcmp(a, b, n1) == 0);
    CU_ASSERT(n1 != n3 || memcmp(a, c, n1) != 0);
    free(a);
    free(b);
    free(c);
    craft_error err = {0};
    craft_synth_options bad = {10, 1, 5, 1};
    FILE *devnull = fopen("/dev/null", "w");
    CU_ASSERT_FATAL(devnull != NULL);
    CU_ASSERT(craft_synth_write(&bad, devnull, NULL, NULL, NULL, &err) == CRAFT_EINPUT);
    CU_ASSERT(strstr(err.msg, "--features") != NULL);
    fclose(devnull);
}

/* Prevalences of 50,000 orders within 12% (relative) of D1 2.1%, D2 5.1%,
 * D3 1.8%, D4 2.5%, D5 1.5%, for three seeds. */
static void test_synth_prevalence(void)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        FILE *devnull = fopen("/dev/null", "w");
        CU_ASSERT_FATAL(devnull != NULL);
        craft_synth_options o = {50000, seed, 300, 1};
        craft_synth_stats st;
        CU_ASSERT_FATAL(craft_synth_write(&o, devnull, &st, NULL, NULL, NULL) == CRAFT_OK);
        fclose(devnull);
        CU_ASSERT_EQUAL(st.orders, 50000);
        for (int k = 0; k < CRAFT_SYNTH_CLASSES; k++) {
            double p = (double)st.positives[k] / st.orders, target = craft_synth_prevalence[k];
            if (fabs(p - target) > 0.12 * target)
                fprintf(stderr, "seed %llu %s: %.4f, target %.3f\n", (unsigned long long)seed,
                        craft_synth_class_names[k], p, target);
            CU_ASSERT(fabs(p - target) <= 0.12 * target);
        }
    }
}

/* The generated file reads back through craft_reader with the generated
 * config; labels agree with the generator's counts; time increases; the
 * encoders fill txt and graph for every order. */
static void test_synth_reads_back(void)
{
    const int features = 300;
    craft_config cfg;
    CU_ASSERT_FATAL(parse_synth_config(&cfg, features) == 0);
    CU_ASSERT_EQUAL(cfg.modalities[cfg.tabular].n_features, features);
    int n_cat = 0;
    for (int j = 0; j < features; j++)
        n_cat += cfg.modalities[cfg.tabular].features[j].type == CRAFT_CATEGORICAL;
    CU_ASSERT(n_cat >= 35 && n_cat <= 45);
    const char *path = tmp_path("orders.jsonl");
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    craft_synth_options o = {2000, 7, features, 1};
    craft_synth_stats st;
    CU_ASSERT_FATAL(craft_synth_write(&o, f, &st, NULL, NULL, NULL) == CRAFT_OK);
    CU_ASSERT_FATAL(fclose(f) == 0);

    craft_reader *rd;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_reader_open(&rd, path, CRAFT_FORMAT_AUTO, &cfg, &err) == CRAFT_OK);
    craft_encoders *enc;
    CU_ASSERT_FATAL(craft_encoders_new(&enc, &cfg, &err) == CRAFT_OK);
    CU_ASSERT(craft_encoders_active(enc));
    craft_order_batch ob;
    CU_ASSERT_FATAL(craft_order_batch_init(&ob, &cfg, 128, 1, &err) == CRAFT_OK);
    const int txt = craft_config_find_modality(&cfg, "txt"), graph = craft_config_find_modality(&cfg, "graph");
    uint64_t n = 0, pos[CRAFT_SYNTH_CLASSES] = {0}, missing = 0, filled = 0;
    double last_t = -INFINITY;
    int eof = 0, time_ok = 1, raw_ok = 1, norm_ok = 1;
    while (!eof) {
        craft_order_batch_reset(&ob, &cfg);
        int rc = craft_reader_next(rd, &ob, &eof, &err);
        if (rc)
            fprintf(stderr, "%s\n", err.msg);
        CU_ASSERT_FATAL(rc == CRAFT_OK);
        CU_ASSERT_FATAL(craft_encoders_fill(enc, &cfg, &ob, &err) == CRAFT_OK);
        for (int i = 0; i < ob.in.n; i++, n++) {
            double t;
            CU_ASSERT_FATAL(ob.ts[i] && craft_graph_parse_time(ob.ts[i], &t, NULL) == CRAFT_OK);
            time_ok &= t > last_t;
            last_t = t;
            raw_ok &= ob.text[i].n == 2 && ob.entities[i].n == 5 && ob.has_labels[i];
            for (int k = 0; k < CRAFT_SYNTH_CLASSES; k++)
                pos[k] += ob.in.labels[(size_t)i * cfg.n_classes + k] == 1.0f;
            for (int j = 0; j < ob.in.F; j++)
                missing += isnan(ob.in.tab[(size_t)i * ob.in.F + j]);
            filled += ob.in.ntok[txt][i] == 1 && ob.in.ntok[graph][i] == 1;
            double ss = 0;
            for (int d = 0; d < CRAFT_TEXT_DIM; d++) {
                float x = ob.in.emb[txt][(size_t)i * CRAFT_TEXT_DIM + d];
                ss += (double)x * x;
            }
            norm_ok &= fabs(ss - 1) < 1e-5;
        }
    }
    CU_ASSERT_EQUAL(n, 2000);
    CU_ASSERT(time_ok);
    CU_ASSERT(raw_ok);
    CU_ASSERT(norm_ok);
    CU_ASSERT_EQUAL(filled, 2000);
    for (int k = 0; k < CRAFT_SYNTH_CLASSES; k++)
        CU_ASSERT_EQUAL(pos[k], st.positives[k]);
    /* some values are missing, but not many */
    CU_ASSERT(missing > 2000 && missing < 2000 * 300 / 10);
    craft_order_batch_free(&ob);
    craft_encoders_free(enc);
    craft_reader_close(rd);
    craft_config_free(&cfg);
    unlink(path);
}

/* An order's encoded inputs do not change when later orders of the file change. */
static void collect_graph(const craft_config *cfg, const char *path, int n, float *out)
{
    craft_reader *rd;
    craft_encoders *enc;
    craft_order_batch ob;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_reader_open(&rd, path, CRAFT_FORMAT_AUTO, cfg, &err) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_encoders_new(&enc, cfg, &err) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_order_batch_init(&ob, cfg, 50, 1, &err) == CRAFT_OK);
    const int graph = craft_config_find_modality(cfg, "graph"), W = cfg->modalities[graph].dim;
    int eof = 0, got = 0;
    while (!eof && got < n) {
        craft_order_batch_reset(&ob, cfg);
        CU_ASSERT_FATAL(craft_reader_next(rd, &ob, &eof, &err) == CRAFT_OK);
        CU_ASSERT_FATAL(craft_encoders_fill(enc, cfg, &ob, &err) == CRAFT_OK);
        for (int i = 0; i < ob.in.n && got < n; i++, got++)
            memcpy(out + (size_t)got * W, ob.in.emb[graph] + (size_t)i * W, sizeof(float) * W);
    }
    CU_ASSERT_EQUAL(got, n);
    craft_order_batch_free(&ob);
    craft_encoders_free(enc);
    craft_reader_close(rd);
}

static void test_file_no_future_leakage(void)
{
    craft_config cfg;
    CU_ASSERT_FATAL(parse_synth_config(&cfg, 40) == 0);
    size_t len;
    char *data = synth_to_memory(600, 11, 40, &len, NULL);
    CU_ASSERT_FATAL(data != NULL);
    /* file B: the first 300 lines as they are, then every later order's labels flipped */
    char *b = malloc(len + 1);
    CU_ASSERT_FATAL(b != NULL);
    memcpy(b, data, len);
    b[len] = 0;
    int line = 0;
    for (char *p = b; *p; p++) {
        if (*p == '\n')
            line++;
        if (line >= 300 && p[0] == '"' && p[1] == 'D' && p[3] == '"' && p[4] == ':' && p[5] == ' ')
            p[6] = p[6] == '0' ? '1' : '0';
    }
    const char *pa = tmp_path("a.jsonl"), *pb = tmp_path("b.jsonl");
    FILE *f = fopen(pa, "w");
    CU_ASSERT_FATAL(f && fwrite(data, 1, len, f) == len && fclose(f) == 0);
    f = fopen(pb, "w");
    CU_ASSERT_FATAL(f && fwrite(b, 1, len, f) == len && fclose(f) == 0);
    const int W = craft_graph_width(5);
    float *va = malloc(sizeof(float) * W * 600), *vb = malloc(sizeof(float) * W * 600);
    CU_ASSERT_FATAL(va && vb);
    collect_graph(&cfg, pa, 600, va);
    collect_graph(&cfg, pb, 600, vb);
    /* the first 301 orders only see unchanged orders; later ones see the flips */
    CU_ASSERT(memcmp(va, vb, sizeof(float) * W * 301) == 0);
    CU_ASSERT(memcmp(va + (size_t)W * 301, vb + (size_t)W * 301, sizeof(float) * W * 299) != 0);
    free(va);
    free(vb);
    free(b);
    free(data);
    craft_config_free(&cfg);
    unlink(pa);
    unlink(pb);
}

/* craft_score_file fills txt and graph for generated orders without embeddings. */
static void test_scoring_uses_encoders(void)
{
    craft_config cfg;
    CU_ASSERT_FATAL(parse_synth_config(&cfg, 40) == 0);
    craft_model *m;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_model_new(&m, &cfg, 0, 5, &err) == CRAFT_OK);
    const char *path = tmp_path("score.jsonl");
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    craft_synth_options o = {100, 3, 40, 0};
    CU_ASSERT_FATAL(craft_synth_write(&o, f, NULL, NULL, NULL, NULL) == CRAFT_OK);
    CU_ASSERT_FATAL(fclose(f) == 0);
    char *out = NULL;
    size_t out_len = 0;
    FILE *mem = open_memstream(&out, &out_len);
    craft_score_options so = {0};
    so.input = path;
    so.batch = 32;
    so.threads = 1;
    uint64_t n = 0;
    int rc = craft_score_file(m, &so, mem, &n, &err);
    fclose(mem);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT(rc == CRAFT_OK);
    CU_ASSERT_EQUAL(n, 100);
    int lines = 0, all_three = 0;
    for (char *p = out; p && (p = strstr(p, "\"modalities\": [")); p++, lines++)
        all_three += strncmp(p, "\"modalities\": [\"tab\", \"txt\", \"graph\"]", 37) == 0;
    CU_ASSERT_EQUAL(lines, 100);
    CU_ASSERT_EQUAL(all_three, 100);
    free(out);
    craft_model_free(m);
    craft_config_free(&cfg);
    unlink(path);
}

static void test_truth_json(void)
{
    craft_synth_options o = {1000, 1, 300, 1};
    craft_synth_stats st = {1000, {21, 51, 18, 25, 15}, 0};
    char *json = craft_synth_truth_json(&o, &st);
    CU_ASSERT_FATAL(json != NULL);
    cJSON *doc = cJSON_Parse(json);
    CU_ASSERT_FATAL(doc != NULL);
    craft_config cfg;
    CU_ASSERT_FATAL(parse_synth_config(&cfg, 300) == 0);
    const cJSON *classes = cJSON_GetObjectItem(doc, "classes");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(classes), 5);
    const char *kinds[] = {"self_sufficient", "synergistic", "suppressed"};
    for (const cJSON *c = classes ? classes->child : NULL; c; c = c->next)
        for (int k = 0; k < 3; k++) {
            const cJSON *list = cJSON_GetObjectItem(c, kinds[k]);
            CU_ASSERT_FATAL(cJSON_GetArraySize(list) >= 1);
            const char *feature = cJSON_GetStringValue(cJSON_GetObjectItem(list->child, "feature"));
            int found = 0;
            for (int j = 0; feature && j < cfg.modalities[cfg.tabular].n_features; j++)
                found |= strcmp(cfg.modalities[cfg.tabular].features[j].name, feature) == 0;
            CU_ASSERT(found);
        }
    CU_ASSERT(fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(classes, "D2"),
                                                            "prevalence_observed")) - 0.051) < 1e-9);
    cJSON_Delete(doc);
    craft_config_free(&cfg);
    free(json);
}

/* craft synth on the command line: same seed, same bytes; bad options exit 64. */
static void test_cli(void)
{
    const char *build = getenv("CRAFT_BUILD");
    if (!build)
        return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && %s/app/cli/craft synth --orders 300 --seed 9 --output a.jsonl 2>/dev/null && "
             "%s/app/cli/craft synth --orders 300 --seed 9 --output b.jsonl 2>/dev/null && cmp -s a.jsonl b.jsonl && "
             "test -s a.jsonl.truth.json && test $(wc -l < a.jsonl) -eq 300",
             tmpdir, build, build);
    CU_ASSERT(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s/app/cli/craft synth --orders 0 --output %s/c.jsonl 2>/dev/null", build, tmpdir);
    int st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 64);
    snprintf(cmd, sizeof cmd, "test ! -e %s/c.jsonl", tmpdir);
    CU_ASSERT(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s/app/cli/craft synth --orders 10 --output /nonexistent/dir/x.jsonl 2>/dev/null",
             build);
    st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 74);
    snprintf(cmd, sizeof cmd, "cd %s && rm -f a.jsonl b.jsonl a.jsonl.truth.json b.jsonl.truth.json", tmpdir);
    CU_ASSERT(system(cmd) == 0);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/craft-data-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("data", NULL, NULL);
    if (!s || !CU_add_test(s, "text encoder: deterministic, normalized", test_text_deterministic_and_normalized) ||
        !CU_add_test(s, "text encoder: known answer", test_text_known_answer) ||
        !CU_add_test(s, "graph: time parsing", test_graph_time_parsing) ||
        !CU_add_test(s, "graph: values", test_graph_values) ||
        !CU_add_test(s, "graph: no future leakage", test_graph_no_future_leakage) ||
        !CU_add_test(s, "synth: deterministic", test_synth_deterministic) ||
        !CU_add_test(s, "synth: prevalences", test_synth_prevalence) ||
        !CU_add_test(s, "synth: reads back, encoders fill", test_synth_reads_back) ||
        !CU_add_test(s, "file: no future leakage", test_file_no_future_leakage) ||
        !CU_add_test(s, "scoring uses the encoders", test_scoring_uses_encoders) ||
        !CU_add_test(s, "synth: truth", test_truth_json) || !CU_add_test(s, "synth: CLI", test_cli)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    rmdir(tmpdir);
    return failed ? 1 : 0;
}
