/* test_inputs.c: inputs a new user can trust (issue 14): the graph encoder over
 * any entity types, text as several rows, the new config keys through a
 * checkpoint, the config made from data, and the silent failures made loud.
 * Suite 'data'. */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config_infer.h"
#include "encoders.h"
#include "orders.h"
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

static int all_zero(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (x[i] != 0.0f)
            return 0;
    return 1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

/* A config of 2 features, txt and graph as given (NULL: left out). */
static char *config_json(const char *classes, const char *txt, const char *graph)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"format\":\"craft-model\",\"version\":1,\"d_model\":16,\"heads\":2,\"layers\":1,\"ffn_mult\":2,"
             "\"topk\":4,\"route_dim\":8,\"bins\":8,\"emb_dim\":4,\"task\":\"multilabel\",\"classes\":[%s],"
             "\"modalities\":[{\"name\":\"tab\",\"kind\":\"tabular\",\"features\":[{\"name\":\"a\",\"type\":"
             "\"numeric\"},{\"name\":\"b\",\"type\":\"categorical\"}]}%s%s%s%s]}",
             classes, txt ? "," : "", txt ? txt : "", graph ? "," : "", graph ? graph : "");
    return buf;
}

/* ------------------------------------------------- graph over any types */

static const char *custom_types[] = {"vendor", "site", "project"};

static void test_graph_custom_types(void)
{
    const int K = 2, T = 3, W = craft_graph_width_types(T, K);
    CU_ASSERT_EQUAL(W, 3 * (1 + 2 + 10));
    craft_graph *g1, *g2;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_graph_new_types(&g1, K, (char *const *)custom_types, T, &err) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_graph_new_types(&g2, K, (char *const *)custom_types, T, &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(craft_graph_n_types(g1), 3);
    CU_ASSERT_STRING_EQUAL(craft_graph_type(g1, 1), "site");
    const char *k[] = {"vendor", "site", "country"};
    float *a = calloc((size_t)W, sizeof *a), *b = calloc((size_t)W, sizeof *b), *c = calloc((size_t)W, sizeof *c);
    /* 40 orders of vendor V-(i%4), site S-(i%3); vendor V-0 is always defective in class 0 */
    for (int i = 0; i < 40; i++) {
        char v[16], s[16];
        snprintf(v, sizeof v, "V-%d", i % 4);
        snprintf(s, sizeof s, "S-%d", i % 3);
        const char *vals[] = {v, s, "NZ"};
        craft_kv e = make_kv(3, k, vals);
        float lab[2] = {i % 4 == 0 ? 1.0f : 0.0f, 0.0f};
        CU_ASSERT(craft_graph_observe(g1, &e, 1000.0 + i, lab, &err) == CRAFT_OK);
        CU_ASSERT(craft_graph_observe(g2, &e, 1000.0 + i, lab, &err) == CRAFT_OK);
    }
    const char *vals[] = {"V-0", "S-1", "NZ"};
    craft_kv e = make_kv(3, k, vals);
    CU_ASSERT_EQUAL(craft_graph_known(g1, &e), 2); /* country is not one of the types */
    CU_ASSERT(craft_graph_encode(g1, &e, 2000.0, a, &err) == CRAFT_OK);
    CU_ASSERT(craft_graph_encode(g2, &e, 2000.0, b, &err) == CRAFT_OK);
    CU_ASSERT(memcmp(a, b, sizeof *a * (size_t)W) == 0); /* deterministic */
    CU_ASSERT(!all_zero(a, W));
    const int B = 1 + K + 10;
    CU_ASSERT(a[0] > 0);          /* vendor V-0 has history */
    CU_ASSERT(a[1] > 0.5f);       /* and a high lift for class 0 */
    CU_ASSERT(a[B] > 0);          /* site S-1 */
    CU_ASSERT(all_zero(a + 2 * B, B)); /* no project given */
    /* time-respecting: orders at or after 2000 do not change a vector at 2000 */
    for (int i = 0; i < 10; i++) {
        float lab[2] = {1.0f, 1.0f};
        CU_ASSERT(craft_graph_observe(g2, &e, 2000.0, lab, &err) == CRAFT_OK);
    }
    CU_ASSERT(craft_graph_encode(g2, &e, 2000.0, c, &err) == CRAFT_OK);
    CU_ASSERT(memcmp(a, c, sizeof *a * (size_t)W) == 0);
    CU_ASSERT(craft_graph_encode(g2, &e, 1500.0, c, &err) == CRAFT_EINPUT); /* the past is refused */
    /* an order of none of the types: nothing known */
    const char *kk[] = {"customer", "hub"}, *vv[] = {"C-1", "H-1"};
    craft_kv none = make_kv(2, kk, vv);
    CU_ASSERT_EQUAL(craft_graph_known(g1, &none), 0);
    craft_graph_free(g1);
    craft_graph_free(g2);
    /* the default five, named or not, are today's encoder bit for bit */
    const char *five[] = {"customer", "seller", "carrier", "route", "hub"};
    craft_graph *d1, *d2;
    CU_ASSERT_FATAL(craft_graph_new(&d1, 5, &err) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_graph_new_types(&d2, 5, (char *const *)five, 5, &err) == CRAFT_OK);
    float x[80], y[80];
    const char *dk[] = {"customer", "hub"}, *dv[] = {"C-1", "H-2"};
    craft_kv de = make_kv(2, dk, dv);
    float lab5[5] = {1, 0, 0, 0, 0};
    for (int i = 0; i < 5; i++) {
        craft_graph_observe(d1, &de, 10.0 + i, lab5, &err);
        craft_graph_observe(d2, &de, 10.0 + i, lab5, &err);
    }
    CU_ASSERT(craft_graph_encode(d1, &de, 100.0, x, &err) == CRAFT_OK);
    CU_ASSERT(craft_graph_encode(d2, &de, 100.0, y, &err) == CRAFT_OK);
    CU_ASSERT(memcmp(x, y, sizeof x) == 0);
    CU_ASSERT_EQUAL(craft_graph_width(5), 80);
    craft_graph_free(d1);
    craft_graph_free(d2);
    /* bad type lists are refused */
    const char *dup[] = {"a", "a"};
    craft_graph *bad = NULL;
    CU_ASSERT(craft_graph_new_types(&bad, 2, (char *const *)dup, 2, &err) == CRAFT_EINPUT);
    CU_ASSERT(bad == NULL);
    free(a);
    free(b);
    free(c);
}

/* Orders with vendor/site entities through a reader and craft_encoders_fill. */
static void test_encoders_fill_custom_types(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("custom.jsonl"));
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < 30; i++)
        fprintf(f,
                "{\"order_id\":\"O-%d\",\"ts\":\"2026-01-01T00:%02d:00Z\",\"features\":{\"a\":%d,\"b\":\"x\"},"
                "\"entities\":{\"vendor\":\"V-%d\",\"site\":\"S-%d\"},\"labels\":{\"D1\":%d,\"D2\":0}}\n",
                i, i, i, i % 3, i % 2, i % 3 == 0);
    fprintf(f, "{\"order_id\":\"O-x\",\"ts\":\"2026-01-01T01:00:00Z\",\"features\":{\"a\":1},"
               "\"entities\":{\"customer\":\"C-1\"}}\n");
    fclose(f);
    craft_config cfg;
    craft_error err = {0};
    const char *json = config_json("\"D1\",\"D2\"", NULL,
                                   "{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":26,\"tokens\":1,"
                                   "\"entity_types\":[\"vendor\",\"site\"]}");
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    int g = craft_config_find_modality(&cfg, "graph");
    craft_encoders *enc;
    CU_ASSERT_FATAL(craft_encoders_new(&enc, &cfg, &err) == CRAFT_OK);
    CU_ASSERT(craft_encoders_active(enc));
    craft_reader *rd;
    craft_order_batch ob;
    CU_ASSERT_FATAL(craft_reader_open(&rd, path, CRAFT_FORMAT_AUTO, &cfg, &err) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_order_batch_init(&ob, &cfg, 64, 1, &err) == CRAFT_OK);
    int eof = 0;
    CU_ASSERT(craft_reader_next(rd, &ob, &eof, &err) == CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(ob.in.n, 31);
    CU_ASSERT(craft_encoders_fill(enc, &cfg, &ob, &err) == CRAFT_OK);
    int nonzero = 0;
    for (int i = 0; i < 30; i++) {
        CU_ASSERT_EQUAL(ob.in.ntok[g][i], 1);
        nonzero += !all_zero(ob.in.emb[g] + (size_t)i * 26, 26);
    }
    CU_ASSERT_EQUAL(nonzero, 30); /* the sketch alone makes every vector non-zero */
    CU_ASSERT_EQUAL(ob.in.ntok[g][30], 0); /* a customer only: no graph vector, missing */
    craft_order_batch_free(&ob);
    craft_reader_close(rd);
    craft_encoders_free(enc);
    craft_config_free(&cfg);
}

/* ------------------------------------------------------- text as rows */

static void test_text_rows(void)
{
    craft_text_encoder *te;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_text_encoder_new(&te, &err) == CRAFT_OK);
    const char *keys[] = {"journey", "history"};
    const char *vals[] = {"SCAN pickup t+1h reason=none | SCAN sort reason=manual_handling | ;; | SCAN delivered",
                          "item=a brand=b; item=c"};
    craft_kv text = make_kv(2, keys, vals);
    float *out = calloc(8 * CRAFT_TEXT_DIM, sizeof *out), *again = calloc(8 * CRAFT_TEXT_DIM, sizeof *again);
    float one[CRAFT_TEXT_DIM];
    int rows = -1;
    /* vector: today's encoder */
    CU_ASSERT(craft_text_encode_rows(te, &text, CRAFT_TEXT_VECTOR, 4, out, &rows, &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(rows, 1);
    CU_ASSERT(craft_text_encode(te, &text, one) > 0);
    CU_ASSERT(memcmp(out, one, sizeof one) == 0);
    /* fields: history then journey (byte order), each alone */
    CU_ASSERT(craft_text_encode_rows(te, &text, CRAFT_TEXT_FIELDS, 4, out, &rows, &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(rows, 2);
    craft_kv h = make_kv(1, keys + 1, vals + 1);
    CU_ASSERT(craft_text_encode(te, &h, one) > 0);
    CU_ASSERT(memcmp(out, one, sizeof one) == 0);
    CU_ASSERT(all_zero(out + 2 * CRAFT_TEXT_DIM, 2 * CRAFT_TEXT_DIM));
    /* events: 2 of history, 3 of journey (the empty ones give no row) */
    CU_ASSERT(craft_text_encode_rows(te, &text, CRAFT_TEXT_EVENTS, 8, out, &rows, &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(rows, 5);
    CU_ASSERT(craft_text_encode_rows(te, &text, CRAFT_TEXT_EVENTS, 8, again, &rows, &err) == CRAFT_OK);
    CU_ASSERT(memcmp(out, again, sizeof *out * 8 * CRAFT_TEXT_DIM) == 0); /* deterministic */
    const char *ev_keys[] = {"journey"}, *ev_vals[] = {" SCAN delivered"};
    craft_kv last = make_kv(1, ev_keys, ev_vals);
    CU_ASSERT(craft_text_encode(te, &last, one) > 0);
    CU_ASSERT(memcmp(out + 4 * CRAFT_TEXT_DIM, one, sizeof one) == 0); /* the last event is the last row */
    /* fewer rows than events: the latest ones, in order */
    CU_ASSERT(craft_text_encode_rows(te, &text, CRAFT_TEXT_EVENTS, 2, again, &rows, &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(rows, 2);
    CU_ASSERT(memcmp(again, out + 3 * CRAFT_TEXT_DIM, sizeof *out * 2 * CRAFT_TEXT_DIM) == 0);
    /* no words: no rows */
    const char *nk[] = {"journey"}, *nv[] = {" | ; |"};
    craft_kv none = make_kv(1, nk, nv);
    CU_ASSERT(craft_text_encode_rows(te, &none, CRAFT_TEXT_EVENTS, 4, out, &rows, &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(rows, 0);
    free(out);
    free(again);
    craft_text_encoder_free(te);
}

/* The encoders fill txt with rows by the config's text_tokens. */
static void test_encoders_fill_text_events(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("events.jsonl"));
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f, "{\"order_id\":\"A\",\"features\":{\"a\":1},\"text\":{\"journey\":\"SCAN a | SCAN b | SCAN c\"}}\n");
    fprintf(f, "{\"order_id\":\"B\",\"features\":{\"a\":2},\"text\":{\"journey\":\"SCAN a\"}}\n");
    fprintf(f, "{\"order_id\":\"C\",\"features\":{\"a\":3}}\n");
    fclose(f);
    const char *json = config_json("\"D1\"", "{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":256,\"tokens\":2,"
                                             "\"text_tokens\":\"events\"}",
                                   NULL);
    craft_config cfg;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    int t = craft_config_find_modality(&cfg, "txt");
    CU_ASSERT_EQUAL(cfg.modalities[t].text_tokens, CRAFT_TEXT_EVENTS);
    craft_encoders *enc;
    CU_ASSERT_FATAL(craft_encoders_new(&enc, &cfg, &err) == CRAFT_OK);
    craft_reader *rd;
    craft_order_batch ob;
    CU_ASSERT_FATAL(craft_reader_open(&rd, path, CRAFT_FORMAT_AUTO, &cfg, &err) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_order_batch_init(&ob, &cfg, 8, 1, &err) == CRAFT_OK);
    int eof = 0;
    CU_ASSERT(craft_reader_next(rd, &ob, &eof, &err) == CRAFT_OK);
    CU_ASSERT(craft_encoders_fill(enc, &cfg, &ob, &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(ob.in.ntok[t][0], 2); /* 3 events, the latest 2 kept */
    CU_ASSERT_EQUAL(ob.in.ntok[t][1], 1);
    CU_ASSERT_EQUAL(ob.in.ntok[t][2], 0);
    craft_order_batch_free(&ob);
    craft_reader_close(rd);
    craft_encoders_free(enc);
    craft_config_free(&cfg);
}

/* ------------------------------------------ config keys, checkpoint trip */

static void test_config_keys_round_trip(void)
{
    const char *json = config_json(
        "\"D1\",\"D2\"", "{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":256,\"tokens\":6,\"text_tokens\":\"events\"}",
        "{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":39,\"tokens\":1,\"entity_types\":[\"vendor\",\"site\","
        "\"suburb\"]}");
    craft_config cfg;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(cfg.backbone, cfg.tabular); /* no "backbone": the tabular modality */
    craft_model *m = NULL, *back = NULL;
    CU_ASSERT_FATAL(craft_model_new(&m, &cfg, 0, 7, &err) == CRAFT_OK);
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("keys.safetensors"));
    CU_ASSERT_FATAL(craft_model_save(m, path, NULL, &err) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_model_load(&back, path, &err) == CRAFT_OK);
    int g = craft_config_find_modality(&back->cfg, "graph"), t = craft_config_find_modality(&back->cfg, "txt");
    CU_ASSERT_FATAL(g >= 0 && t >= 0);
    CU_ASSERT_EQUAL(back->cfg.modalities[g].n_entity_types, 3);
    CU_ASSERT_STRING_EQUAL(back->cfg.modalities[g].entity_types[2], "suburb");
    CU_ASSERT_EQUAL(back->cfg.modalities[t].text_tokens, CRAFT_TEXT_EVENTS);
    CU_ASSERT_EQUAL(back->cfg.modalities[t].tokens, 6);
    CU_ASSERT_EQUAL(craft_layout_find(&back->layout, "txt.pos_emb") >= 0, 1);
    char *out = craft_config_to_json(&back->cfg);
    CU_ASSERT(strstr(out, "\"entity_types\":[\"vendor\",\"site\",\"suburb\"]") != NULL);
    CU_ASSERT(strstr(out, "\"text_tokens\":\"events\"") != NULL);
    free(out);
    craft_model_free(back);
    craft_model_free(m);
    craft_config_free(&cfg);
    /* old configs: no new key written back */
    const char *old = config_json("\"D1\"", "{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":256,\"tokens\":1}",
                                  "{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":12,\"tokens\":1}");
    CU_ASSERT_FATAL(craft_config_parse(&cfg, old, strlen(old), &err) == CRAFT_OK);
    out = craft_config_to_json(&cfg);
    CU_ASSERT(strstr(out, "entity_types") == NULL && strstr(out, "text_tokens") == NULL);
    free(out);
    craft_config_free(&cfg);
    /* refused: a width that disagrees with the types, keys on the wrong modality, an unknown mode */
    static const char *const bad[][2] = {
        {NULL, "{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":12,\"entity_types\":[\"a\",\"b\"]}"},
        {NULL, "{\"name\":\"other\",\"kind\":\"embedding\",\"dim\":12,\"entity_types\":[\"a\"]}"},
        {"{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":256,\"text_tokens\":\"words\"}", NULL},
        {"{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":10,\"text_tokens\":\"fields\"}", NULL},
        {NULL, "{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":12,\"entity_types\":[\"a\",\"a\"]}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *b = config_json("\"D1\"", bad[i][0], bad[i][1]);
        CU_ASSERT_EQUAL(craft_config_parse(&cfg, b, strlen(b), &err), CRAFT_EFORMAT);
    }
    const char *w = config_json("\"D1\"", NULL, "{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":13,\"entity_types\":[\"a\",\"b\"]}");
    CU_ASSERT_EQUAL(craft_config_parse(&cfg, w, strlen(w), &err), CRAFT_EFORMAT);
    CU_ASSERT(strstr(err.msg, "= 24, not 13") != NULL);
}

/* ------------------------------------------------- the config from data */

/* craft synth's orders with other names: ord_* -> vend_*, del_* -> ship_*, the
 * entity types customer..hub -> vendor, site, project, country, suburb. */
static void write_renamed(const char *path, int n, uint64_t seed)
{
    const char *raw = tmp_path("raw.jsonl");
    FILE *f = fopen(raw, "w");
    CU_ASSERT_FATAL(f != NULL);
    craft_synth_options so = {.orders = (uint64_t)n, .seed = seed, .features = 40, .with_labels = 1};
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_synth_write(&so, f, NULL, NULL, NULL, &err) == CRAFT_OK);
    fclose(f);
    static const char *from[] = {"customer", "seller", "carrier", "route", "hub"};
    static const char *to[] = {"vendor", "site", "project", "country", "suburb"};
    FILE *in = fopen(raw, "r"), *out = fopen(path, "w");
    CU_ASSERT_FATAL(in && out);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        cJSON *o = cJSON_Parse(line);
        CU_ASSERT_FATAL(o != NULL);
        cJSON *feats = cJSON_GetObjectItem(o, "features"), *ents = cJSON_GetObjectItem(o, "entities");
        for (cJSON *v = feats->child; v; v = v->next) {
            char nm[128];
            if (!strncmp(v->string, "ord_", 4))
                snprintf(nm, sizeof nm, "vend_%s", v->string + 4);
            else if (!strncmp(v->string, "del_", 4))
                snprintf(nm, sizeof nm, "ship_%s", v->string + 4);
            else
                snprintf(nm, sizeof nm, "x_%s", v->string);
            cJSON_free(v->string);
            v->string = strdup(nm);
        }
        for (cJSON *v = ents->child; v; v = v->next)
            for (int t = 0; t < 5; t++)
                if (!strcmp(v->string, from[t])) {
                    cJSON_free(v->string);
                    v->string = strdup(to[t]);
                    break;
                }
        char *s = cJSON_PrintUnformatted(o);
        fprintf(out, "%s\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
    }
    free(line);
    fclose(in);
    fclose(out);
    unlink(raw);
}

static void test_config_infer_renamed(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("renamed.jsonl"));
    write_renamed(path, 400, 11);
    craft_infer_options o;
    craft_infer_defaults(&o);
    char *json = NULL;
    craft_error err = {0};
    FILE *summary = tmpfile();
    int rc = craft_config_infer(path, &o, summary, &json, &err);
    CU_ASSERT_EQUAL_FATAL(rc, CRAFT_OK);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    craft_config cfg;
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(cfg.task, CRAFT_MULTILABEL);
    CU_ASSERT_EQUAL(cfg.n_classes, 5);
    CU_ASSERT_STRING_EQUAL(cfg.classes[0], "D1");
    CU_ASSERT_EQUAL(cfg.d_model, 32); /* 400 orders: the small model */
    CU_ASSERT_EQUAL(cfg.layers, 1);
    const craft_modality *tab = &cfg.modalities[cfg.tabular];
    CU_ASSERT(tab->n_features >= 39 && tab->n_features <= 40);
    int vend = 0, cats = 0;
    for (int f = 0; f < tab->n_features; f++) {
        vend += !strncmp(tab->features[f].name, "vend_", 5);
        cats += tab->features[f].type == CRAFT_CATEGORICAL;
        if (!strcmp(tab->features[f].name, "vend_category"))
            CU_ASSERT_EQUAL(tab->features[f].type, CRAFT_CATEGORICAL);
        if (!strcmp(tab->features[f].name, "vend_item_value"))
            CU_ASSERT_EQUAL(tab->features[f].type, CRAFT_NUMERIC);
    }
    CU_ASSERT(vend > 5);
    CU_ASSERT(cats > 0 && cats < tab->n_features);
    int g = craft_config_find_modality(&cfg, "graph"), t = craft_config_find_modality(&cfg, "txt");
    CU_ASSERT_FATAL(g >= 0 && t >= 0);
    CU_ASSERT_EQUAL(cfg.modalities[t].dim, 256);
    CU_ASSERT_EQUAL(cfg.modalities[g].n_entity_types, 5);
    CU_ASSERT_STRING_EQUAL(cfg.modalities[g].entity_types[0], "country"); /* byte order */
    CU_ASSERT_STRING_EQUAL(cfg.modalities[g].entity_types[4], "vendor");
    CU_ASSERT_EQUAL(cfg.modalities[g].dim, 5 * (1 + 5 + 10));
    /* the summary says what was found */
    fflush(summary);
    rewind(summary);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, summary);
    buf[n] = 0;
    fclose(summary);
    CU_ASSERT(strstr(buf, "400 orders") != NULL);
    CU_ASSERT(strstr(buf, "vend_category") != NULL && strstr(buf, "categorical") != NULL);
    CU_ASSERT(strstr(buf, "entities: 5 types") != NULL);
    /* the graph is encoded (not zero) for the orders of this file */
    craft_encoders *enc;
    CU_ASSERT_FATAL(craft_encoders_new(&enc, &cfg, &err) == CRAFT_OK);
    craft_reader *rd;
    craft_order_batch ob;
    CU_ASSERT_FATAL(craft_reader_open(&rd, path, CRAFT_FORMAT_AUTO, &cfg, &err) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_order_batch_init(&ob, &cfg, 500, 1, &err) == CRAFT_OK);
    int eof = 0;
    CU_ASSERT(craft_reader_next(rd, &ob, &eof, &err) == CRAFT_OK);
    CU_ASSERT(craft_encoders_fill(enc, &cfg, &ob, &err) == CRAFT_OK);
    int with_graph = 0, with_history = 0;
    for (int i = 0; i < ob.in.n; i++) {
        with_graph += ob.in.ntok[g][i] == 1 && !all_zero(ob.in.emb[g] + (size_t)i * cfg.modalities[g].dim,
                                                         cfg.modalities[g].dim);
        with_history += ob.in.ntok[g][i] == 1 && ob.in.emb[g][(size_t)i * cfg.modalities[g].dim] > 0;
    }
    CU_ASSERT_EQUAL(with_graph, 400);
    CU_ASSERT(with_history > 100); /* entities seen before: activity > 0 */
    craft_order_batch_free(&ob);
    craft_reader_close(rd);
    craft_encoders_free(enc);
    craft_config_free(&cfg);
    free(json);
    /* events mode: txt gets rows */
    o.text_tokens = CRAFT_TEXT_EVENTS;
    CU_ASSERT_FATAL(craft_config_infer(path, &o, NULL, &json, &err) == CRAFT_OK);
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    t = craft_config_find_modality(&cfg, "txt");
    CU_ASSERT_EQUAL(cfg.modalities[t].text_tokens, CRAFT_TEXT_EVENTS);
    CU_ASSERT(cfg.modalities[t].tokens > 3);
    craft_config_free(&cfg);
    free(json);
    unlink(path);
}

/* CSV, multiclass "label" column, no text, no entities: those modalities left out. */
static void test_config_infer_csv_multiclass(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("mc.csv"));
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f, "order_id,price,\"room, type\",label\n");
    for (int i = 0; i < 30; i++)
        fprintf(f, "R-%d,%d.5,%s,%s\n", i, 100 + i, i % 2 ? "\"flat, big\"" : "house", i % 3 == 0 ? "b1" : i % 3 == 1 ? "b2" : "b3");
    fprintf(f, "R-x,,house,\n");
    fclose(f);
    char *json = NULL;
    craft_error err = {0};
    FILE *summary = tmpfile();
    CU_ASSERT_FATAL(craft_config_infer(path, NULL, summary, &json, &err) == CRAFT_OK);
    craft_config cfg;
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    CU_ASSERT_EQUAL(cfg.task, CRAFT_MULTICLASS);
    CU_ASSERT_EQUAL(cfg.n_classes, 3);
    CU_ASSERT_EQUAL(cfg.n_modalities, 1);
    const craft_modality *tab = &cfg.modalities[cfg.tabular];
    CU_ASSERT_EQUAL_FATAL(tab->n_features, 2);
    CU_ASSERT_STRING_EQUAL(tab->features[0].name, "price");
    CU_ASSERT_EQUAL(tab->features[0].type, CRAFT_NUMERIC);
    CU_ASSERT_STRING_EQUAL(tab->features[1].name, "room, type");
    CU_ASSERT_EQUAL(tab->features[1].type, CRAFT_CATEGORICAL);
    rewind(summary);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, summary);
    buf[n] = 0;
    fclose(summary);
    CU_ASSERT(strstr(buf, "txt modality is LEFT OUT") != NULL);
    CU_ASSERT(strstr(buf, "graph modality is LEFT OUT") != NULL);
    craft_config_free(&cfg);
    free(json);
    /* unlabelled: refused with the reason */
    f = fopen(path, "w");
    fprintf(f, "order_id,price\nA,1\n");
    fclose(f);
    CU_ASSERT_EQUAL(craft_config_infer(path, NULL, NULL, &json, &err), CRAFT_EINPUT);
    CU_ASSERT(strstr(err.msg, "no labelled orders") != NULL);
    unlink(path);
}

/* ------------------------------------------------ silent failures, loud */

static char *check_log(const craft_config *cfg, const char *path, craft_input_report *rep, int *rc, craft_error *err)
{
    FILE *log = tmpfile();
    *rc = craft_input_check(cfg, path, "train", log, 0, rep, err);
    rewind(log);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, log);
    buf[n] = 0;
    fclose(log);
    return buf;
}

static void test_unused_features_reported(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("unused.jsonl"));
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 10; i++)
        fprintf(f, "{\"order_id\":\"O-%d\",\"features\":{\"a\":%d,\"b\":\"x\",\"extra_one\":1%s},\"labels\":{\"D1\":0}}\n",
                i, i, i < 4 ? ",\"extra_two\":\"q\"" : "");
    fclose(f);
    const char *json = config_json("\"D1\"", NULL, NULL);
    craft_config cfg;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    craft_input_report rep;
    int rc;
    char *log = check_log(&cfg, path, &rep, &rc, &err);
    CU_ASSERT_EQUAL(rc, CRAFT_OK);
    CU_ASSERT_EQUAL(rep.orders, 10);
    CU_ASSERT_EQUAL(rep.unused_features, 2);
    CU_ASSERT(strstr(log, "2 features of") != NULL);
    CU_ASSERT(strstr(log, "extra_one (10 orders)") != NULL);
    CU_ASSERT(strstr(log, "extra_two (4 orders)") != NULL);
    free(log);
    craft_config_free(&cfg);
    unlink(path);
}

static void test_wrong_width_refused(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("width.jsonl"));
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"order_id\":\"O-1\",\"features\":{\"a\":1},\"embeddings\":{\"txt\":[1,2,3,4,5,6,7,8,9,10]},"
               "\"text\":{\"j\":\"SCAN x\"}}\n");
    fprintf(f, "{\"order_id\":\"O-2\",\"features\":{\"a\":1},\"text\":{\"j\":\"SCAN late\"}}\n");
    fclose(f);
    const char *json = config_json("\"D1\"", "{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":10}", NULL);
    craft_config cfg;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    craft_input_report rep;
    int rc;
    char *log = check_log(&cfg, path, &rep, &rc, &err);
    CU_ASSERT_EQUAL(rc, CRAFT_EINPUT);
    CU_ASSERT(strstr(err.msg, "width.jsonl:2") != NULL);
    CU_ASSERT(strstr(err.msg, "\"O-2\"") != NULL);
    CU_ASSERT(strstr(err.msg, "10 wide") != NULL && strstr(err.msg, "gives 256") != NULL);
    free(log);
    craft_config_free(&cfg);
    /* the graph likewise: 5 classes' width for a 2-class model */
    f = fopen(path, "w");
    fprintf(f, "{\"order_id\":\"G-1\",\"features\":{\"a\":1},\"entities\":{\"customer\":\"C-1\"}}\n");
    fclose(f);
    json = config_json("\"D1\",\"D2\"", NULL, "{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":80}");
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    log = check_log(&cfg, path, &rep, &rc, &err);
    CU_ASSERT_EQUAL(rc, CRAFT_EINPUT);
    CU_ASSERT(strstr(err.msg, "\"G-1\"") != NULL && strstr(err.msg, "80 wide") != NULL &&
              strstr(err.msg, "= 65") != NULL);
    free(log);
    craft_config_free(&cfg);
    unlink(path);
}

static void test_empty_modality_warned(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("empty.jsonl"));
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 5; i++)
        fprintf(f, "{\"order_id\":\"O-%d\",\"features\":{\"a\":%d},\"entities\":{\"customer\":\"C-%d\"},"
                   "\"labels\":{\"D1\":%d}}\n",
                i, i, i, i & 1);
    fclose(f);
    const char *json = config_json("\"D1\"", NULL,
                                   "{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":12,\"entity_types\":[\"vendor\"]}");
    craft_config cfg;
    craft_error err = {0};
    CU_ASSERT_FATAL(craft_config_parse(&cfg, json, strlen(json), &err) == CRAFT_OK);
    craft_input_report rep;
    int rc;
    char *log = check_log(&cfg, path, &rep, &rc, &err);
    CU_ASSERT_EQUAL(rc, CRAFT_OK);
    CU_ASSERT_EQUAL(rep.empty_modalities, 1);
    CU_ASSERT_EQUAL(rep.unused_entity_types, 1);
    CU_ASSERT(strstr(log, "modality \"graph\" is EMPTY") != NULL);
    CU_ASSERT(strstr(log, "customer (5 orders)") != NULL);
    free(log);
    craft_config_free(&cfg);
    unlink(path);
}

/* The CLI: craft config init, and craft train without --config on the renamed file. */
static void test_cli_config_init(void)
{
    const char *build = getenv("CRAFT_BUILD");
    if (!build)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("cli.jsonl"));
    write_renamed(path, 300, 5);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/app/cli/craft config init --input %s --output %s 2>%s", build, path,
             tmp_path("cli.cfg.json"), tmp_path("cli.err"));
    CU_ASSERT(system(cmd) == 0);
    char *cfg_text = slurp(tmp_path("cli.cfg.json"));
    CU_ASSERT_FATAL(cfg_text != NULL);
    craft_config cfg;
    craft_error err = {0};
    CU_ASSERT(craft_config_parse(&cfg, cfg_text, strlen(cfg_text), &err) == CRAFT_OK);
    craft_config_free(&cfg);
    free(cfg_text);
    char *errs = slurp(tmp_path("cli.err"));
    CU_ASSERT(errs && strstr(errs, "entities: 5 types (country") != NULL);
    free(errs);
    snprintf(cmd, sizeof cmd, "%s/app/cli/craft config init --input %s --text-tokens words >/dev/null 2>&1", build,
             path);
    int st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 64);
    snprintf(cmd, sizeof cmd,
             "%s/app/cli/craft train --input %s --output %s --epochs 1 --threads 1 >%s 2>&1", build, path,
             tmp_path("cli.safetensors"), tmp_path("cli.train"));
    st = system(cmd);
    CU_ASSERT(st == 0);
    if (st) {
        char *out = slurp(tmp_path("cli.train"));
        fprintf(stderr, "craft train without --config failed:\n%s\n", out ? out : "");
        free(out);
    }
    craft_model *m = NULL;
    CU_ASSERT(craft_model_load(&m, tmp_path("cli.safetensors"), &err) == CRAFT_OK);
    if (m) {
        int g = craft_config_find_modality(&m->cfg, "graph");
        CU_ASSERT(g >= 0 && m->cfg.modalities[g].n_entity_types == 5);
        craft_model_free(m);
    }
    /* scored through the file path: the graph is used (encoded from vendor, site, ...) */
    snprintf(cmd, sizeof cmd, "%s/app/cli/craft score --model %s --input %s --threads 1 >%s 2>/dev/null", build,
             tmp_path("cli.safetensors"), path, tmp_path("cli.scores"));
    CU_ASSERT(system(cmd) == 0);
    char *scores = slurp(tmp_path("cli.scores"));
    CU_ASSERT(scores && strstr(scores, "\"modalities\": [\"tab\", \"txt\", \"graph\"]") != NULL);
    free(scores);
    snprintf(cmd, sizeof cmd, "cd %s && rm -f cli.jsonl cli.cfg.json cli.err cli.safetensors cli.train cli.scores",
             tmpdir);
    CU_ASSERT(system(cmd) == 0);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/craft-inputs-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("inputs", NULL, NULL);
    if (!s || !CU_add_test(s, "graph: custom entity types", test_graph_custom_types) ||
        !CU_add_test(s, "graph: encoders fill custom types", test_encoders_fill_custom_types) ||
        !CU_add_test(s, "text: rows per field and per event", test_text_rows) ||
        !CU_add_test(s, "text: encoders fill events", test_encoders_fill_text_events) ||
        !CU_add_test(s, "config: new keys through a checkpoint", test_config_keys_round_trip) ||
        !CU_add_test(s, "config from data: renamed synth", test_config_infer_renamed) ||
        !CU_add_test(s, "config from data: CSV multiclass", test_config_infer_csv_multiclass) ||
        !CU_add_test(s, "loud: unused features", test_unused_features_reported) ||
        !CU_add_test(s, "loud: wrong width", test_wrong_width_refused) ||
        !CU_add_test(s, "loud: empty modality", test_empty_modality_warned) ||
        !CU_add_test(s, "CLI: config init, train without --config", test_cli_config_init)) {
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
