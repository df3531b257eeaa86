/* Orders in: every bad line gives file:line and a reason, and never a crash;
 * CSV and JSON Lines give the same inputs. */
#include <math.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "orders.h"
#include "scoring.h"
#include "test_util.h"

static craft_model *model;

static int setup(void)
{
    craft_error err = {0};
    return craft_model_load(&model, fixture("tiny-multilabel.safetensors"), &err) ? -1 : 0;
}

static int teardown(void)
{
    craft_model_free(model);
    return 0;
}

static const char *temp_with(const char *suffix, const void *text, size_t len)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/craft-orders-XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        return NULL;
    close(fd);
    return path;
}

/* Reads a whole file with a model config; returns the first error (or OK) and the count read. */
static int read_file(const craft_config *cfg, const char *path, int *count, craft_error *err)
{
    craft_reader *r;
    craft_order_batch ob;
    int rc = craft_reader_open(&r, path, CRAFT_FORMAT_AUTO, cfg, err);
    if (rc)
        return rc;
    craft_order_batch_init(&ob, cfg, 4, 1, err);
    int eof = 0;
    *count = 0;
    while (!eof && !rc) {
        craft_order_batch_reset(&ob, cfg);
        rc = craft_reader_next(r, &ob, &eof, err);
        *count += ob.in.n;
    }
    craft_order_batch_free(&ob);
    craft_reader_close(r);
    return rc;
}

#define GOOD "{\"order_id\": \"A\", \"features\": {\"num3\": 1.5, \"cat0\": \"v1\"}, \"embeddings\": {\"txt\": [1,2,3,4,5,6,7,8,9,10]}}\n"

static void expect_bad(const char *body, size_t len, const char *suffix, int line, const char *reason)
{
    const char *path = temp_with(suffix, body, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    char expect[128];
    snprintf(expect, sizeof expect, "%s:%d: ", path, line);
    craft_error err = {0};
    int n = 0;
    int rc = read_file(&model->cfg, path, &n, &err);
    CU_ASSERT_EQUAL(rc, CRAFT_EINPUT);
    if (!strstr(err.msg, expect) || !strstr(err.msg, reason)) {
        fprintf(stderr, "\n  got \"%s\", wanted \"%s...%s\"\n", err.msg, expect, reason);
        CU_FAIL("error lacks file:line or reason");
    }
    unlink(path);
}

static void bad_json(const char *line2, const char *reason)
{
    char body[4096];
    snprintf(body, sizeof body, GOOD "%s\n" GOOD, line2);
    expect_bad(body, strlen(body), ".jsonl", 2, reason);
}

static void test_jsonl_errors(void)
{
    bad_json("{\"order_id\": \"B\", \"features\": {", "not valid JSON");
    bad_json("[1,2,3]", "must be a JSON object");
    bad_json("{\"features\": {}}", "order_id");
    bad_json("{\"order_id\": \"B\", \"embeddings\": {\"txt\": [1,2,3]}}", "3 wide, the model needs 10");
    bad_json("{\"order_id\": \"B\", \"embeddings\": {\"graph\": [[1,2,3,4,5,6],[1,2,3,4,5,6],[1,2,3,4,5,6],[1,2,3,4,5,6]]}}",
             "at most 3");
    bad_json("{\"order_id\": \"B\", \"embeddings\": {\"graph\": [[1,2,3,4,5,6],[1,2,3]]}}", "token 1 is 3 wide");
    bad_json("{\"order_id\": \"B\", \"order_id\": \"C\"}", "appears twice");
    bad_json("{\"order_id\": \"B\", \"features\": {\"num3\": 1, \"num3\": 2}}", "feature \"num3\" appears twice");
    bad_json("{\"order_id\": \"B\", \"features\": {\"num3\": \"high\"}}", "numeric");
    bad_json("{\"order_id\": \"B\", \"features\": {\"num3\": 1e999}}", "finite");
    bad_json("{\"order_id\": \"B\", \"features\": {\"num3\": [1]}}", "a number, a string or null");
    bad_json("{\"order_id\": \"B\", \"embeddings\": {\"txt\": [1,2,3,4,5,6,7,8,9,\"x\"]}}", "not a number");
    bad_json("{\"order_id\": \"B\", \"labels\": {\"D9\": 1}}", "not one of the model's classes");
    bad_json("{\"order_id\": \"B\", \"labels\": {\"D1\": 2}}", "0 or 1");
    bad_json("{\"order_id\": \"B\", \"ts\": \"yesterday\"}", "ISO 8601");
    bad_json("{\"order_id\": \"B\", \"text\": {\"journey\": 5}}", "must be a string");
    /* invalid UTF-8: an overlong slash and a lone continuation byte */
    bad_json("{\"order_id\": \"B\xc0\xaf\"}", "UTF-8");
    bad_json("{\"order_id\": \"\x80\"}", "UTF-8");
    /* deep nesting is refused by the parser, not by the stack */
    char deep[5000] = "{\"order_id\": \"B\", \"text\": ";
    for (int i = 0; i < 2000; i++)
        strcat(deep, "[");
    bad_json(deep, "not valid JSON");
}

static void test_line_too_long(void)
{
    size_t n = 300000;
    char *body = malloc(n + 1000);
    strcpy(body, GOOD "{\"order_id\": \"B\", \"text\": {\"x\": \"");
    size_t at = strlen(body);
    memset(body + at, 'a', n);
    strcpy(body + at + n, "\"}}\n" GOOD);
    const char *path = temp_with(".jsonl", body, strlen(body));
    craft_reader *r;
    craft_order_batch ob;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_reader_open(&r, path, CRAFT_FORMAT_AUTO, &model->cfg, &err), 0);
    craft_reader_set_max_line(r, 100000);
    craft_order_batch_init(&ob, &model->cfg, 8, 0, &err);
    int eof = 0;
    CU_ASSERT_EQUAL(craft_reader_next(r, &ob, &eof, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ":2: the line is longer than 100000 bytes"));
    CU_ASSERT_EQUAL(ob.in.n, 1);
    /* the bad line was consumed: reading on gives the third order */
    CU_ASSERT_EQUAL(craft_reader_next(r, &ob, &eof, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(ob.in.n, 2);
    CU_ASSERT_STRING_EQUAL(ob.ids[1], "A");
    CU_ASSERT_EQUAL(ob.line[1], 3);
    CU_ASSERT(eof);
    craft_order_batch_free(&ob);
    craft_reader_close(r);
    unlink(path);
    free(body);
}

static void test_missing_backbone(void)
{
    /* a model whose backbone is the graph embedding refuses orders without it */
    char *json = craft_config_to_json(&model->cfg);
    char *at = strstr(json, "\"backbone\":\"tab\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    memcpy(at, "\"backbone\":\"txt\"", 16);
    craft_config cfg;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_config_parse(&cfg, json, strlen(json), &err), 0);
    free(json);
    const char *body = GOOD "{\"order_id\": \"B\", \"features\": {\"num3\": 1}}\n";
    const char *path = temp_with(".jsonl", body, strlen(body));
    int n = 0;
    CU_ASSERT_EQUAL(read_file(&cfg, path, &n, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ":2: no \"txt\" embedding"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "backbone"));
    unlink(path);
    craft_config_free(&cfg);
}

static void test_values_parsed(void)
{
    const char *body =
        "\n{\"order_id\": \"O-1\", \"ts\": \"2026-03-01T12:00:00Z\", \"features\": {\"cat0\": \"v2\", \"cat1\": \"nope\", "
        "\"num3\": null, \"num4\": -2.5, \"extra\": 7}, \"text\": {\"journey\": \"SCAN a | SCAN b\"}, "
        "\"entities\": {\"carrier\": \"CR-2\"}, \"embeddings\": {\"graph\": [[1,2,3,4,5,6],[6,5,4,3,2,1]], \"other\": [1]}, "
        "\"labels\": {\"D2\": 1, \"D3\": 0}}\n";
    const char *path = temp_with(".jsonl", body, strlen(body));
    craft_reader *r;
    craft_order_batch ob;
    craft_error err = {0};
    int eof;
    CU_ASSERT_EQUAL_FATAL(craft_reader_open(&r, path, CRAFT_FORMAT_AUTO, &model->cfg, &err), 0);
    craft_order_batch_init(&ob, &model->cfg, 8, 1, &err);
    CU_ASSERT_EQUAL_FATAL(craft_reader_next(r, &ob, &eof, &err), 0);
    CU_ASSERT_EQUAL_FATAL(ob.in.n, 1);
    CU_ASSERT_STRING_EQUAL(ob.ids[0], "O-1");
    CU_ASSERT_STRING_EQUAL(ob.ts[0], "2026-03-01T12:00:00Z");
    CU_ASSERT_EQUAL(ob.line[0], 2);
    CU_ASSERT_EQUAL(ob.in.tab[0], 3.0f);              /* cat0 "v2": third vocabulary entry */
    CU_ASSERT_EQUAL(ob.in.tab[1], (float)model->cfg.bins); /* unseen category */
    CU_ASSERT(isnan(ob.in.tab[2]));                   /* cat2 absent */
    CU_ASSERT(isnan(ob.in.tab[3]));                   /* num3 null */
    CU_ASSERT_EQUAL(ob.in.tab[4], -2.5f);
    CU_ASSERT_EQUAL(ob.in.ntok[1][0], 0);             /* no txt */
    CU_ASSERT_EQUAL(ob.in.ntok[2][0], 2);
    CU_ASSERT_EQUAL(ob.in.emb[2][6], 6.0f);
    CU_ASSERT(isnan(ob.in.labels[0]));
    CU_ASSERT_EQUAL(ob.in.labels[1], 1.0f);
    CU_ASSERT_EQUAL(ob.in.labels[2], 0.0f);
    CU_ASSERT_STRING_EQUAL(craft_kv_get(&ob.text[0], "journey"), "SCAN a | SCAN b");
    CU_ASSERT_STRING_EQUAL(craft_kv_get(&ob.entities[0], "carrier"), "CR-2");
    CU_ASSERT_STRING_EQUAL(craft_kv_get(&ob.raw_features[0], "extra"), "7");
    craft_order_batch_free(&ob);
    craft_reader_close(r);
    unlink(path);
}

/* The fixture orders written as CSV score exactly as the JSONL file does. */
static void test_csv_matches_jsonl(void)
{
    size_t size;
    char *text = (char *)read_all(fixture("tiny-multilabel.orders.jsonl"), &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    /* Convert with the reader itself: read JSONL, write CSV with quoting. */
    craft_reader *r;
    craft_order_batch ob;
    craft_error err = {0};
    int eof;
    const craft_config *cfg = &model->cfg;
    CU_ASSERT_EQUAL_FATAL(craft_reader_open(&r, fixture("tiny-multilabel.orders.jsonl"), CRAFT_FORMAT_AUTO, cfg, &err), 0);
    craft_order_batch_init(&ob, cfg, 64, 1, &err);
    CU_ASSERT_EQUAL_FATAL(craft_reader_next(r, &ob, &eof, &err), 0);
    char *csv;
    size_t csv_len;
    FILE *f = open_memstream(&csv, &csv_len);
    const craft_modality *tm = &cfg->modalities[0];
    fprintf(f, "order_id,\"text:note\"");
    for (int j = 0; j < tm->n_features; j++)
        fprintf(f, ",%s", tm->features[j].name);
    fprintf(f, ",emb:txt,emb:graph\r\n");
    for (int i = 0; i < ob.in.n; i++) {
        fprintf(f, "%s,\"a \"\"quoted\"\", multi\nline note\"", ob.ids[i]);
        for (int j = 0; j < tm->n_features; j++) {
            const char *raw = craft_kv_get(&ob.raw_features[i], tm->features[j].name);
            fprintf(f, ",%s", raw ? raw : "");
        }
        for (int m = 1; m <= 2; m++) {
            const craft_modality *md = &cfg->modalities[m];
            fputc(',', f);
            for (int t = 0; t < ob.in.ntok[m][i]; t++)
                for (int c = 0; c < md->dim; c++)
                    fprintf(f, "%s%.9g", t && !c ? "|" : c ? " " : "", ob.in.emb[m][((size_t)i * md->tokens + t) * md->dim + c]);
        }
        fprintf(f, "\r\n");
    }
    fclose(f);
    craft_order_batch_free(&ob);
    craft_reader_close(r);
    const char *path = temp_with(".csv", csv, csv_len);
    char *outs[2];
    const char *inputs[2] = {fixture("tiny-multilabel.orders.jsonl"), path};
    for (int k = 0; k < 2; k++) {
        size_t len;
        FILE *out = open_memstream(&outs[k], &len);
        craft_score_options o = {0};
        o.input = inputs[k];
        o.explain = 1;
        uint64_t n;
        CU_ASSERT_EQUAL(craft_score_file(model, &o, out, &n, &err), CRAFT_OK);
        if (err.msg[0])
            fprintf(stderr, "\n  %s\n", err.msg);
        CU_ASSERT_EQUAL(n, 24);
        fclose(out);
    }
    CU_ASSERT_STRING_EQUAL(outs[0], outs[1]);
    free(outs[0]);
    free(outs[1]);
    unlink(path);
    free(csv);
    free(text);
}

static void test_csv_errors(void)
{
    const char *hdr = "order_id,num3,cat0,emb:txt\n";
    char body[1024];
    snprintf(body, sizeof body, "%sA,1,v0,\nB,2\nC,3,v1,\n", hdr);
    expect_bad(body, strlen(body), ".csv", 3, "2 fields, the header has 4");
    snprintf(body, sizeof body, "%sA,1,v0,\nB,\"open,v1,\n", hdr);
    expect_bad(body, strlen(body), ".csv", 3, "not closed");
    snprintf(body, sizeof body, "%sA,x1,v0,\n", hdr);
    expect_bad(body, strlen(body), ".csv", 2, "numeric");
    snprintf(body, sizeof body, "%sA,1,v0,1 2 3\n", hdr);
    expect_bad(body, strlen(body), ".csv", 2, "3 wide, the model needs 10");
    snprintf(body, sizeof body, "num3,cat0\n1,v0\n");
    expect_bad(body, strlen(body), ".csv", 1, "no \"order_id\" column");
    snprintf(body, sizeof body, "order_id,num3,num3\nA,1,2\n");
    expect_bad(body, strlen(body), ".csv", 1, "appears twice");
    snprintf(body, sizeof body, "%sA,1,v0,\nB,\"x\"y,v0,\n", hdr);
    expect_bad(body, strlen(body), ".csv", 3, "after a closing quote");
    snprintf(body, sizeof body, "%sA,1,v\xff,\n", hdr);
    expect_bad(body, strlen(body), ".csv", 2, "UTF-8");
}

/* --interaction: I(j, m) in the score line equals the perturbation importance with every
 * modality on minus that with m off, both from the engine directly. */
static void test_interaction(void)
{
    craft_error err = {0};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    craft_score_options o = {0};
    o.input = fixture("tiny-multilabel.orders.jsonl");
    o.interaction = 1;
    uint64_t n = 0;
    CU_ASSERT_EQUAL_FATAL(craft_score_file(model, &o, out, &n, &err), CRAFT_OK);
    fclose(out);
    /* the first order, from the engine: full and txt-off perturbation */
    craft_reader *r;
    craft_order_batch ob;
    int eof = 0;
    const craft_config *cfg = &model->cfg;
    CU_ASSERT_EQUAL_FATAL(craft_reader_open(&r, o.input, CRAFT_FORMAT_AUTO, cfg, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_order_batch_init(&ob, cfg, 64, 0, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_reader_next(r, &ob, &eof, &err), 0);
    const int txt = craft_config_find_modality(cfg, "txt"), K = cfg->n_classes;
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    craft_request rq[2] = {{0, 0, 0, 1}, {1u << txt, 0, 0, 1}};
    craft_result res[2];
    craft_engine *e;
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, model, 64, 1, &err), 0);
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(craft_result_init(&res[i], cfg, 64, &rq[i], &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_engine_run(e, &ob.in, rq, 2, res, &err), 0);
    cJSON *line = cJSON_ParseWithLength(text, strchr(text, '\n') - text);
    cJSON *it = cJSON_GetObjectItem(cJSON_GetObjectItem(line, "interaction"), "txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    int checked = 0, nonzero = 0;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < tm->n_features; j++) {
            cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(it, cfg->classes[k]), tm->features[j].name);
            double want = (double)res[0].perturb[(size_t)k * tm->n_features + j] -
                          (double)res[1].perturb[(size_t)k * tm->n_features + j];
            CU_ASSERT_PTR_NOT_NULL_FATAL(v);
            CU_ASSERT_DOUBLE_EQUAL(v->valuedouble, want, 1e-6);
            checked++;
            nonzero += fabs(want) > 1e-7;
        }
    CU_ASSERT(checked == K * tm->n_features && nonzero > 0);
    cJSON_Delete(line);
    for (int i = 0; i < 2; i++)
        craft_result_free(&res[i]);
    craft_engine_free(e);
    craft_order_batch_free(&ob);
    craft_reader_close(r);
    free(text);
}

static void test_modality_list(void)
{
    uint32_t mask;
    craft_error err = {0};
    CU_ASSERT_EQUAL(craft_parse_modality_list(&model->cfg, "txt,graph", &mask, &err), 0);
    CU_ASSERT_EQUAL(mask, 6u);
    CU_ASSERT_EQUAL(craft_parse_modality_list(&model->cfg, "tab", &mask, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "backbone"));
    CU_ASSERT_EQUAL(craft_parse_modality_list(&model->cfg, "audio", &mask, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "txt, graph"));
}

static void test_missing_file(void)
{
    craft_reader *r;
    craft_error err = {0};
    CU_ASSERT_EQUAL(craft_reader_open(&r, "/nonexistent/orders.jsonl", CRAFT_FORMAT_AUTO, &model->cfg, &err), CRAFT_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/orders.jsonl"));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("orders", setup, teardown);
    if (!s || !CU_add_test(s, "JSONL errors name file, line and reason", test_jsonl_errors) ||
        !CU_add_test(s, "an over-long line is refused and skipped", test_line_too_long) ||
        !CU_add_test(s, "missing backbone", test_missing_backbone) ||
        !CU_add_test(s, "values, categories, embeddings, labels", test_values_parsed) ||
        !CU_add_test(s, "CSV scores as JSONL does", test_csv_matches_jsonl) ||
        !CU_add_test(s, "CSV errors", test_csv_errors) || !CU_add_test(s, "--off lists", test_modality_list) ||
        !CU_add_test(s, "--interaction: I = perturbation(all on) - perturbation(m off)", test_interaction) ||
        !CU_add_test(s, "missing file", test_missing_file))
        return 1;
    return run_suites();
}
