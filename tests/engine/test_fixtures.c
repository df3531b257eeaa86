/* The engine against the independent fixtures (../shared/fixtures): every record
 * of both fixtures (scores, importance, CMIS, perturbation, all four subsets)
 * within 1e-5 absolute, through craft_score_file: the code path of `craft score`. */
#include <cjson/cJSON.h>
#include <math.h>

#include "scoring.h"
#include "test_util.h"

#define TOL 1e-5

static double worst;

/* Compares two JSON values of the same shape; numbers within TOL. */
static int same_json(const cJSON *want, const cJSON *got, const char *where)
{
    if (cJSON_IsNumber(want)) {
        if (!cJSON_IsNumber(got)) {
            fprintf(stderr, "%s: not a number\n", where);
            return 0;
        }
        double d = fabs(want->valuedouble - got->valuedouble);
        if (d > worst)
            worst = d;
        if (d > TOL)
            fprintf(stderr, "%s: want %.9g got %.9g\n", where, want->valuedouble, got->valuedouble);
        return d <= TOL;
    }
    if (cJSON_IsObject(want)) {
        if (!cJSON_IsObject(got) || cJSON_GetArraySize(want) != cJSON_GetArraySize(got)) {
            fprintf(stderr, "%s: keys differ\n", where);
            return 0;
        }
        int ok = 1;
        for (const cJSON *w = want->child; w; w = w->next) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.%s", where, w->string);
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);
            if (!g) {
                fprintf(stderr, "%s: missing\n", sub);
                ok = 0;
                continue;
            }
            ok &= same_json(w, g, sub);
        }
        return ok;
    }
    if (cJSON_IsArray(want)) {
        if (!cJSON_IsArray(got) || cJSON_GetArraySize(want) != cJSON_GetArraySize(got))
            return 0;
        int ok = 1;
        for (const cJSON *w = want->child, *g = got->child; w; w = w->next, g = g->next)
            ok &= same_json(w, g, where);
        return ok;
    }
    if (cJSON_IsString(want))
        return cJSON_IsString(got) && strcmp(want->valuestring, got->valuestring) == 0;
    return 0;
}

static void check_fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s.safetensors", name);
    craft_model *m = NULL;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture(path), &err), CRAFT_OK);
    char orders[256], expected_name[256];
    snprintf(orders, sizeof orders, "%s", fixture(strcat(strcpy(path, name), ".orders.jsonl")));
    snprintf(expected_name, sizeof expected_name, "%s.expected.jsonl", name);
    size_t esize;
    char *exp_text = (char *)read_all(fixture(expected_name), &esize);
    CU_ASSERT_PTR_NOT_NULL_FATAL(exp_text);

    /* Score the orders once per subset, the way `craft score --off ... --explain --perturbation` does. */
    const char *subsets[4] = {"", "txt", "graph", "txt,graph"};
    char *outputs[4];
    for (int s = 0; s < 4; s++) {
        size_t len;
        FILE *out = open_memstream(&outputs[s], &len);
        craft_score_options o = {0};
        o.input = orders;
        o.explain = 1;
        o.perturbation = 1;
        o.batch = s + 3; /* odd batch sizes: batching must not change results */
        CU_ASSERT_EQUAL(craft_parse_modality_list(&m->cfg, subsets[s], &o.off_mask, &err), CRAFT_OK);
        uint64_t n = 0;
        CU_ASSERT_EQUAL(craft_score_file(m, &o, out, &n, &err), CRAFT_OK);
        CU_ASSERT_EQUAL(n, 24);
        fclose(out);
    }
    int records = 0, failures = 0;
    for (char *line = strtok(exp_text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *want = cJSON_Parse(line);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        const char *id = cJSON_GetObjectItem(want, "order_id")->valuestring;
        char offs[64] = "";
        const cJSON *off;
        cJSON_ArrayForEach(off, cJSON_GetObjectItem(want, "off")) {
            if (offs[0])
                strcat(offs, ",");
            strcat(offs, off->valuestring);
        }
        int s = 0;
        while (s < 4 && strcmp(subsets[s], offs))
            s++;
        CU_ASSERT_FATAL(s < 4);
        /* find the order's line in that subset's output */
        cJSON *got = NULL;
        char *copy = strdup(outputs[s]);
        for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l && !got; l = strtok_r(NULL, "\n", &save)) {
            cJSON *g = cJSON_Parse(l);
            if (g && strcmp(cJSON_GetObjectItem(g, "order_id")->valuestring, id) == 0)
                got = g;
            else
                cJSON_Delete(g);
        }
        free(copy);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(got, "model")->valuestring, m->sha256);
        const char *keys[5] = {"modalities", "scores", "importance", "cmis", "perturbation"};
        for (int k = 0; k < 5; k++) {
            char where[128];
            snprintf(where, sizeof where, "%s off=[%s] %s", id, offs, keys[k]);
            int ok = same_json(cJSON_GetObjectItem(want, keys[k]), cJSON_GetObjectItem(got, keys[k]), where);
            CU_ASSERT(ok);
            failures += !ok;
        }
        records++;
        cJSON_Delete(want);
        cJSON_Delete(got);
    }
    CU_ASSERT_EQUAL(records, 96);
    CU_ASSERT_EQUAL(failures, 0);
    printf("\n  %s: %d records, worst absolute difference %.3g\n", name, records, worst);
    for (int s = 0; s < 4; s++)
        free(outputs[s]);
    free(exp_text);
    craft_model_free(m);
}

static void test_multilabel(void) { check_fixture("tiny-multilabel"); }
static void test_multiclass(void) { check_fixture("tiny-multiclass"); }

/* Several subsets in one engine call share the backbone and give the same numbers as separate calls. */
static void test_shared_backbone(void)
{
    craft_model *m;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture("tiny-multilabel.safetensors"), &err), CRAFT_OK);
    craft_reader *rd;
    craft_order_batch ob;
    int eof;
    CU_ASSERT_EQUAL_FATAL(craft_reader_open(&rd, fixture("tiny-multilabel.orders.jsonl"), CRAFT_FORMAT_AUTO, &m->cfg, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_order_batch_init(&ob, &m->cfg, 32, 0, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_reader_next(rd, &ob, &eof, &err), 0);
    CU_ASSERT_EQUAL(ob.in.n, 24);
    craft_request req[4] = {{0, 1, 1, 0}, {1u << 1, 1, 1, 0}, {1u << 2, 1, 1, 0}, {6u, 1, 1, 0}};
    craft_result together[4], alone;
    craft_engine *e;
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, m, 32, 1, &err), 0);
    for (int i = 0; i < 4; i++)
        craft_result_init(&together[i], &m->cfg, 32, &req[i], &err);
    CU_ASSERT_EQUAL(craft_engine_run(e, &ob.in, req, 4, together, &err), 0);
    for (int i = 0; i < 4; i++) {
        craft_result_init(&alone, &m->cfg, 32, &req[i], &err);
        CU_ASSERT_EQUAL(craft_engine_run(e, &ob.in, &req[i], 1, &alone, &err), 0);
        CU_ASSERT_EQUAL(memcmp(alone.scores, together[i].scores, sizeof(float) * 24 * 5), 0);
        CU_ASSERT_EQUAL(memcmp(alone.importance, together[i].importance, sizeof(float) * 24 * 12), 0);
        craft_result_free(&alone);
        craft_result_free(&together[i]);
    }
    /* the backbone cannot be switched off */
    craft_request bad = {1u, 0, 0, 0};
    craft_result_init(&alone, &m->cfg, 32, &bad, &err);
    CU_ASSERT_EQUAL(craft_engine_run(e, &ob.in, &bad, 1, &alone, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "backbone"));
    craft_result_free(&alone);
    craft_engine_free(e);
    craft_order_batch_free(&ob);
    craft_reader_close(rd);
    craft_model_free(m);
}

/* Runs are bit-for-bit repeatable for a given thread count; across thread counts
 * OpenBLAS may pick other kernels for the split products, so they agree to 1e-6. */
static void test_threads_deterministic(void)
{
    const char *cfgjson =
        "{\"format\":\"craft-model\",\"version\":1,\"d_model\":64,\"heads\":4,\"layers\":2,\"ffn_mult\":2,\"topk\":8,"
        "\"route_dim\":16,\"bins\":16,\"emb_dim\":8,\"task\":\"multilabel\",\"classes\":[\"a\",\"b\",\"c\"],"
        "\"backbone\":\"tab\",\"modalities\":[{\"name\":\"tab\",\"kind\":\"tabular\",\"features\":["
        "{\"name\":\"x0\",\"type\":\"numeric\"},{\"name\":\"x1\",\"type\":\"numeric\"},{\"name\":\"x2\",\"type\":\"numeric\"},"
        "{\"name\":\"x3\",\"type\":\"numeric\"},{\"name\":\"x4\",\"type\":\"numeric\"},{\"name\":\"x5\",\"type\":\"numeric\"},"
        "{\"name\":\"x6\",\"type\":\"numeric\"},{\"name\":\"x7\",\"type\":\"numeric\"},{\"name\":\"x8\",\"type\":\"numeric\"},"
        "{\"name\":\"x9\",\"type\":\"numeric\"},{\"name\":\"c0\",\"type\":\"categorical\",\"vocab\":[\"a\",\"b\"]}]},"
        "{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":24},{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":8,\"tokens\":2}]}";
    craft_config cfg;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_config_parse(&cfg, cfgjson, strlen(cfgjson), &err), 0);
    craft_model *m;
    CU_ASSERT_EQUAL_FATAL(craft_model_new(&m, &cfg, 0, 7, &err), 0);
    craft_config_free(&cfg);
    const int n = 200;
    craft_batch b;
    CU_ASSERT_EQUAL_FATAL(craft_batch_init(&b, &m->cfg, n, &err), 0);
    b.n = n;
    unsigned s = 1;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 11; j++) {
            s = s * 1103515245u + 12345u;
            b.tab[i * 11 + j] = j == 10 ? (float)(1 + (s >> 16) % 3) : ((s >> 8) % 2000) / 300.0f - 3.0f;
        }
        for (int mm = 1; mm < 3; mm++) {
            const craft_modality *md = &m->cfg.modalities[mm];
            b.ntok[mm][i] = (i + mm) % 3 ? 1 + i % md->tokens : 0;
            for (int c = 0; c < md->tokens * md->dim; c++) {
                s = s * 1103515245u + 12345u;
                b.emb[mm][(size_t)i * md->tokens * md->dim + c] = ((s >> 8) % 1000) / 500.0f - 1.0f;
            }
        }
    }
    craft_request req = {0, 1, 1, 0};
    craft_result r1, r2;
    craft_engine *e1, *e2;
    craft_result_init(&r1, &m->cfg, n, &req, &err);
    craft_result_init(&r2, &m->cfg, n, &req, &err);
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e1, m, n, 1, &err), 0);
    CU_ASSERT_EQUAL(craft_engine_run(e1, &b, &req, 1, &r1, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e2, m, n, 2, &err), 0);
    CU_ASSERT_EQUAL(craft_engine_run(e2, &b, &req, 1, &r2, &err), 0);
    for (int i = 0; i < n * 3; i++)
        CU_ASSERT_DOUBLE_EQUAL(r1.scores[i], r2.scores[i], 1e-6);
    for (int i = 0; i < n * 11; i++)
        CU_ASSERT_DOUBLE_EQUAL(r1.importance[i], r2.importance[i], 1e-6);
    for (int i = 0; i < n * 3 * 11; i++)
        CU_ASSERT(isnan(r1.cmis[i]) == isnan(r2.cmis[i]) && (isnan(r1.cmis[i]) || fabs(r1.cmis[i] - r2.cmis[i]) < 1e-6));
    /* the same engine twice: bit for bit (CMIS is NaN where a modality is absent, so compare bits) */
    craft_result r3;
    craft_result_init(&r3, &m->cfg, n, &req, &err);
    CU_ASSERT_EQUAL(craft_engine_run(e2, &b, &req, 1, &r3, &err), 0);
    CU_ASSERT_EQUAL(memcmp(r3.scores, r2.scores, sizeof(float) * n * 3), 0);
    CU_ASSERT_EQUAL(memcmp(r3.importance, r2.importance, sizeof(float) * n * 11), 0);
    CU_ASSERT_EQUAL(memcmp(r3.cmis, r2.cmis, sizeof(float) * n * 3 * 11), 0);
    craft_result_free(&r3);
    /* importance sums to 1 per order */
    for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int j = 0; j < 11; j++)
            sum += r1.importance[i * 11 + j];
        CU_ASSERT_DOUBLE_EQUAL(sum, 1.0, 1e-5);
    }
    craft_engine_free(e1);
    craft_engine_free(e2);
    craft_result_free(&r1);
    craft_result_free(&r2);
    craft_batch_free(&b);
    craft_model_free(m);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("fixtures", NULL, NULL);
    if (!s || !CU_add_test(s, "tiny-multilabel: every record", test_multilabel) ||
        !CU_add_test(s, "tiny-multiclass: every record", test_multiclass) ||
        !CU_add_test(s, "subsets in one call share the backbone", test_shared_backbone) ||
        !CU_add_test(s, "repeatable; 1 and 2 threads agree", test_threads_deterministic))
        return 1;
    return run_suites();
}
