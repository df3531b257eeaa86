/* The CUDA engine against the fixtures and against the CPU engine. Needs a GPU:
 * exits 77 (skip) when this build has no CUDA engine or the machine no usable GPU.
 * - fixtures: every record (scores, importance, CMIS, perturbation, four subsets)
 *   through craft_score_file, the path of `craft score --device cuda`, within 1e-4;
 * - routing: the GPU's top-k selection equals the CPU's topk_select (exactly on
 *   integer scores with ties; as sets, up to near-ties, on random scores);
 * - random models of the production shape and an embedding-backbone shape:
 *   scores, importance, CMIS, gates and perturbation against the CPU engine;
 * - repeatability, batch independence, fast mode's error, input errors. */
#include <cjson/cJSON.h>

#include "craft_cuda.h"
#include "cuda_test_util.h"
#include "ops.h"
#include "scoring.h"

#define TOL 1e-4

/* ------------------------------------------------ craft_score_file on the GPU */

static int precision_fp32 = CRAFT_PRECISION_FP32;

static int gpu_create(void **engine, const craft_model *m, int max_batch, int threads, const void *user,
                      craft_error *err)
{
    (void)threads;
    return craft_cuda_engine_new((craft_cuda_engine **)engine, m, max_batch, *(const int *)user, err);
}
static int gpu_run(void *engine, const craft_batch *b, const craft_request *req, int n_req, craft_result *res,
                   craft_error *err)
{
    return craft_cuda_engine_run(engine, b, req, n_req, res, err);
}
static void gpu_destroy(void *engine) { craft_cuda_engine_free(engine); }
static const craft_engine_ops gpu_ops = {gpu_create, gpu_run, gpu_destroy, &precision_fp32};

static double worst;

static int same_json(const cJSON *want, const cJSON *got, const char *where)
{
    if (cJSON_IsNumber(want)) {
        if (!cJSON_IsNumber(got))
            return 0;
        double d = fabs(want->valuedouble - got->valuedouble);
        worst = d > worst ? d : worst;
        if (d > TOL)
            fprintf(stderr, "%s: want %.9g got %.9g\n", where, want->valuedouble, got->valuedouble);
        return d <= TOL;
    }
    if (cJSON_IsObject(want)) {
        if (!cJSON_IsObject(got) || cJSON_GetArraySize(want) != cJSON_GetArraySize(got))
            return 0;
        int ok = 1;
        for (const cJSON *w = want->child; w; w = w->next) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.%s", where, w->string);
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);
            ok &= g && same_json(w, g, sub);
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
    char path[256], orders[1024], expected[256];
    snprintf(path, sizeof path, "%s.safetensors", name);
    craft_model *m = NULL;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture(path), &err), CRAFT_OK);
    snprintf(path, sizeof path, "%s.orders.jsonl", name);
    snprintf(orders, sizeof orders, "%s", fixture(path));
    snprintf(expected, sizeof expected, "%s.expected.jsonl", name);
    size_t esize;
    char *exp_text = (char *)read_all(fixture(expected), &esize);
    CU_ASSERT_PTR_NOT_NULL_FATAL(exp_text);
    const char *subsets[4] = {"", "txt", "graph", "txt,graph"};
    char *outputs[4];
    for (int s = 0; s < 4; s++) {
        size_t len;
        FILE *out = open_memstream(&outputs[s], &len);
        craft_score_options o = {0};
        o.input = orders;
        o.explain = 1;
        o.perturbation = 1;
        o.batch = s + 3;
        o.engine = &gpu_ops;
        CU_ASSERT_EQUAL(craft_parse_modality_list(&m->cfg, subsets[s], &o.off_mask, &err), CRAFT_OK);
        uint64_t n = 0;
        int rc = craft_score_file(m, &o, out, &n, &err);
        if (rc)
            fprintf(stderr, "%s: %s\n", name, err.msg);
        CU_ASSERT_EQUAL(rc, CRAFT_OK);
        CU_ASSERT_EQUAL(n, 24);
        fclose(out);
    }
    int records = 0, failures = 0;
    worst = 0;
    for (char *line = strtok(exp_text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *want = cJSON_Parse(line);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        const char *id = cJSON_GetObjectItem(want, "order_id")->valuestring;
        char offs[64] = "";
        const cJSON *off;
        cJSON_ArrayForEach(off, cJSON_GetObjectItem(want, "off"))
        {
            if (offs[0])
                strcat(offs, ",");
            strcat(offs, off->valuestring);
        }
        int s = 0;
        while (s < 4 && strcmp(subsets[s], offs))
            s++;
        CU_ASSERT_FATAL(s < 4);
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
        const char *keys[5] = {"modalities", "scores", "importance", "cmis", "perturbation"};
        for (int k = 0; k < 5; k++) {
            char where[128];
            snprintf(where, sizeof where, "%s off=[%s] %s", id, offs, keys[k]);
            int ok = same_json(cJSON_GetObjectItem(want, keys[k]), cJSON_GetObjectItem(got, keys[k]), where);
            failures += !ok;
        }
        records++;
        cJSON_Delete(want);
        cJSON_Delete(got);
    }
    CU_ASSERT_EQUAL(records, 96);
    CU_ASSERT_EQUAL(failures, 0);
    printf("\n  %s on the GPU: %d records, worst absolute difference %.3g\n", name, records, worst);
    for (int s = 0; s < 4; s++)
        free(outputs[s]);
    free(exp_text);
    craft_model_free(m);
}

static void test_fixture_multilabel(void) { check_fixture("tiny-multilabel"); }
static void test_fixture_multiclass(void) { check_fixture("tiny-multiclass"); }

/* ------------------------------------------------------------------ routing */

/* CPU reference: S = U U^T / sqrt(r), topk_select per row. */
static void cpu_route(const float *U, int n, int r, int k, int *idx, float *S)
{
    const float rs = 1.0f / sqrtf((float)r);
    float *best = malloc(sizeof(float) * k);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int c = 0; c < r; c++)
                acc += U[(size_t)i * r + c] * U[(size_t)j * r + c];
            S[(size_t)i * n + j] = acc * rs;
        }
        topk_select(idx + (size_t)i * k, best, S + (size_t)i * n, n, k);
    }
    free(best);
}

static void test_routing_exact_ties(void)
{
    /* small integers: every dot product is exact, and many scores tie */
    const int n = 300, r = 4;
    float *U = malloc(sizeof(float) * n * r), *S = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * r; i++)
        U[i] = (float)((int)(test_urand() * 5) - 2);
    const int ks[] = {1, 5, 16, 31, 32, 33, 64, 65, 128, 129, 300, 400};
    for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
        const int k = ks[t] < n ? ks[t] : n;
        int *gpu = malloc(sizeof(int) * n * k), *cpu = malloc(sizeof(int) * n * k);
        craft_error err = {0};
        CU_ASSERT_EQUAL_FATAL(craft_cuda_route_select(U, n, r, ks[t], gpu, &err), CRAFT_OK);
        cpu_route(U, n, r, k, cpu, S);
        int diff = 0;
        for (int i = 0; i < n * k; i++)
            diff += gpu[i] != cpu[i];
        if (diff)
            fprintf(stderr, "top-%d: %d selections differ from the CPU's\n", ks[t], diff);
        CU_ASSERT_EQUAL(diff, 0);
        free(gpu);
        free(cpu);
    }
    free(U);
    free(S);
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void test_routing_random_sets(void)
{
    const int n = 300, r = 32, k = 16;
    float *U = malloc(sizeof(float) * n * r), *S = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * r; i++)
        U[i] = test_nrand();
    int *gpu = malloc(sizeof(int) * n * k), *cpu = malloc(sizeof(int) * n * k);
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_cuda_route_select(U, n, r, k, gpu, &err), CRAFT_OK);
    cpu_route(U, n, r, k, cpu, S);
    int differ = 0;
    for (int i = 0; i < n; i++) {
        int *g = gpu + (size_t)i * k, *c = cpu + (size_t)i * k;
        const float kth = S[(size_t)i * n + c[k - 1]];
        qsort(g, k, sizeof(int), cmp_int);
        qsort(c, k, sizeof(int), cmp_int);
        if (memcmp(g, c, sizeof(int) * k) == 0)
            continue;
        /* allowed only where the GPU's different pick ties the k-th best within rounding */
        for (int a = 0; a < k; a++)
            if (!bsearch(&g[a], c, k, sizeof(int), cmp_int) && fabsf(S[(size_t)i * n + g[a]] - kth) > 1e-5f)
                differ++;
    }
    CU_ASSERT_EQUAL(differ, 0);
    free(U);
    free(S);
    free(gpu);
    free(cpu);
}

/* ----------------------------------------------------- against the CPU engine */

typedef struct {
    craft_result cpu, gpu;
} result_pair;

/* Runs the same batch and requests on both engines and compares every output. */
static void compare_engines(craft_model *m, int n, const craft_request *req, int n_req, int precision, double tol,
                            double *worst_out)
{
    craft_error err = {0};
    craft_batch b;
    CU_ASSERT_EQUAL_FATAL(craft_batch_init(&b, &m->cfg, n, &err), CRAFT_OK);
    random_batch(&b, &m->cfg, n);
    craft_engine *ce = NULL;
    craft_cuda_engine *ge = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&ce, m, n, 0, &err), CRAFT_OK);
    int rc = craft_cuda_engine_new(&ge, m, n, precision, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, CRAFT_OK);
    result_pair *rp = calloc(n_req, sizeof *rp);
    craft_result *rc_cpu = calloc(n_req, sizeof *rc_cpu), *rc_gpu = calloc(n_req, sizeof *rc_gpu);
    for (int i = 0; i < n_req; i++) {
        craft_result_init(&rc_cpu[i], &m->cfg, n, &req[i], &err);
        craft_result_init(&rc_gpu[i], &m->cfg, n, &req[i], &err);
    }
    CU_ASSERT_EQUAL_FATAL(craft_engine_run(ce, &b, req, n_req, rc_cpu, &err), CRAFT_OK);
    rc = craft_cuda_engine_run(ge, &b, req, n_req, rc_gpu, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, CRAFT_OK);
    const int K = m->cfg.n_classes, M = m->cfg.n_modalities, T = rc_cpu[0].T;
    const int F = m->cfg.tabular >= 0 ? m->cfg.modalities[m->cfg.tabular].n_features : 0;
    double w = 0;
    int bad = 0;
    for (int i = 0; i < n_req; i++) {
        craft_result *a = &rc_cpu[i], *g = &rc_gpu[i];
        CU_ASSERT_EQUAL(g->n, n);
        CU_ASSERT_EQUAL(memcmp(a->used, g->used, sizeof(uint32_t) * n), 0);
        CU_ASSERT_EQUAL(memcmp(a->ntok, g->ntok, sizeof(int) * n), 0);
        bad += count_differences("scores", a->scores, g->scores, (size_t)n * K, tol, &w);
        bad += count_differences("cond_gate", a->cond_gate, g->cond_gate, (size_t)n * M, tol, &w);
        bad += count_differences("fuse_gate", a->fuse_gate, g->fuse_gate, (size_t)n * M, tol, &w);
        if (a->importance)
            bad += count_differences("importance", a->importance, g->importance, (size_t)n * T, tol, &w);
        if (a->cmis)
            bad += count_differences("cmis", a->cmis, g->cmis, (size_t)n * M * T, tol, &w);
        if (a->perturb)
            bad += count_differences("perturbation", a->perturb, g->perturb, (size_t)n * K * F, tol, &w);
    }
    CU_ASSERT_EQUAL(bad, 0);
    *worst_out = w;
    for (int i = 0; i < n_req; i++) {
        craft_result_free(&rc_cpu[i]);
        craft_result_free(&rc_gpu[i]);
    }
    free(rc_cpu);
    free(rc_gpu);
    free(rp);
    craft_cuda_engine_free(ge);
    craft_engine_free(ce);
    craft_batch_free(&b);
}

static void test_production_vs_cpu(void)
{
    craft_model *m = random_model(&production_shape, 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const craft_request req[3] = {{0, 1, 1, 0}, {1u << 1, 1, 1, 0}, {1u << 2, 1, 1, 0}};
    double w;
    compare_engines(m, 48, req, 3, CRAFT_PRECISION_FP32, TOL, &w);
    printf("\n  production shape, 48 orders, 3 subsets: worst |GPU - CPU| %.3g (scores, importance, CMIS, gates)\n", w);
    craft_model_free(m);
}

static void test_perturbation_vs_cpu(void)
{
    test_shape sh = production_shape;
    sh.F = 24;
    sh.cat = 4;
    craft_model *m = random_model(&sh, 11);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const craft_request req[2] = {{0, 1, 1, 1}, {1u << 2, 0, 0, 1}};
    double w;
    compare_engines(m, 9, req, 2, CRAFT_PRECISION_FP32, TOL, &w);
    printf("\n  perturbation, F=24: worst |GPU - CPU| %.3g\n", w);
    craft_model_free(m);
}

/* The optional keys (MODEL.md, "Extensions"): piecewise-linear encoding (the GPU folds it into
 * per-bin tables), the wide head (one more product and an add) and a calibration (in the scores
 * kernel), against the CPU engine, with perturbation. */
static void test_extensions_vs_cpu(void)
{
    test_shape sh = production_shape;
    sh.F = 40;
    sh.cat = 6;
    char *json = shape_config_json(&sh);
    craft_config cfg;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_config_parse(&cfg, json, strlen(json), &err), 0);
    free(json);
    cfg.tab_encoding = CRAFT_TAB_PIECEWISE;
    cfg.wide_head = 1;
    cfg.calib_a = malloc(sizeof(float) * cfg.n_classes);
    cfg.calib_b = malloc(sizeof(float) * cfg.n_classes);
    for (int k = 0; k < cfg.n_classes; k++)
        cfg.calib_a[k] = 0.6f + 0.2f * k, cfg.calib_b[k] = -0.5f + 0.3f * k;
    craft_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_model_new(&m, &cfg, 0, 23, &err), 0);
    craft_config_free(&cfg);
    for (int i = 0; i < m->layout.n; i++)
        if (!strcmp(m->layout.t[i].name, "head.wide.weight"))
            for (size_t k = 0; k < m->layout.t[i].count; k++)
                m->params[m->layout.t[i].offset + k] = 0.01f * test_nrand();
    const craft_request req[2] = {{0, 1, 1, 1}, {1u << 1, 1, 1, 1}};
    double w;
    compare_engines(m, 17, req, 2, CRAFT_PRECISION_FP32, TOL, &w);
    printf("\n  piecewise, wide head, calibration, F=40: worst |GPU - CPU| %.3g\n", w);
    craft_model_free(m);
}

/* An embedding backbone (graph, up to 6 tokens per order) with the tabular modality
 * as an auxiliary, two layers, multiclass, top-k above 4 tokens. */
static void test_embedding_backbone_vs_cpu(void)
{
    test_shape sh = {30, 5, 64, 4, 2, 4, 8, 16, 8, 40, 24, 6, 4, 1, "graph"};
    craft_model *m = random_model(&sh, 13);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const craft_request req[3] = {{0, 1, 1, 1}, {1u << 0, 1, 1, 0}, {1u << 1, 1, 1, 0}};
    double w;
    compare_engines(m, 33, req, 3, CRAFT_PRECISION_FP32, TOL, &w);
    printf("\n  embedding backbone: worst |GPU - CPU| %.3g\n", w);
    craft_model_free(m);
}

/* fast mode (TF32 products) against fp32 on the GPU: the target is 2e-3 on class scores. */
static void test_fast_mode_error(void)
{
    craft_model *m = random_model(&production_shape, 17);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    craft_error err = {0};
    craft_batch b;
    const int n = 256;
    craft_batch_init(&b, &m->cfg, n, &err);
    random_batch(&b, &m->cfg, n);
    craft_request req = {0, 0, 0, 0};
    craft_result r32, rf;
    craft_result_init(&r32, &m->cfg, n, &req, &err);
    craft_result_init(&rf, &m->cfg, n, &req, &err);
    craft_cuda_engine *e32 = NULL, *ef = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_cuda_engine_new(&e32, m, n, CRAFT_PRECISION_FP32, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_cuda_engine_new(&ef, m, n, CRAFT_PRECISION_FAST, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_cuda_engine_run(e32, &b, &req, 1, &r32, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_cuda_engine_run(ef, &b, &req, 1, &rf, &err), CRAFT_OK);
    double w = 0;
    count_differences("fast scores", r32.scores, rf.scores, (size_t)n * r32.K, 2e-3, &w);
    printf("\n  fast (TF32) vs fp32, production shape, %d orders: worst score difference %.3g\n", n, w);
    CU_ASSERT(w <= 2e-3);
    craft_cuda_engine_free(e32);
    craft_cuda_engine_free(ef);
    craft_result_free(&r32);
    craft_result_free(&rf);
    craft_batch_free(&b);
    craft_model_free(m);
}

/* Two runs give the same bits; one order at a time agrees with the whole batch. */
static void test_repeatable_and_batch_independent(void)
{
    test_shape sh = production_shape;
    sh.F = 64;
    sh.cat = 8;
    craft_model *m = random_model(&sh, 19);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    craft_error err = {0};
    const int n = 40;
    craft_batch b, one;
    craft_batch_init(&b, &m->cfg, n, &err);
    craft_batch_init(&one, &m->cfg, 1, &err);
    random_batch(&b, &m->cfg, n);
    craft_request req = {0, 1, 1, 0};
    craft_result r1, r2, r3;
    craft_result_init(&r1, &m->cfg, n, &req, &err);
    craft_result_init(&r2, &m->cfg, n, &req, &err);
    craft_result_init(&r3, &m->cfg, 1, &req, &err);
    craft_cuda_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_cuda_engine_new(&e, m, n, CRAFT_PRECISION_FP32, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_cuda_engine_run(e, &b, &req, 1, &r1, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_cuda_engine_run(e, &b, &req, 1, &r2, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(memcmp(r1.scores, r2.scores, sizeof(float) * n * r1.K), 0);
    CU_ASSERT_EQUAL(memcmp(r1.importance, r2.importance, sizeof(float) * n * r1.T), 0);
    double w = 0;
    int bad = 0;
    for (int i = 0; i < n; i += 7) {
        one.n = 1;
        memcpy(one.tab, b.tab + (size_t)i * b.F, sizeof(float) * b.F);
        for (int mm = 0; mm < m->cfg.n_modalities; mm++) {
            const craft_modality *md = &m->cfg.modalities[mm];
            if (md->kind != CRAFT_EMBEDDING)
                continue;
            one.ntok[mm][0] = b.ntok[mm][i];
            memcpy(one.emb[mm], b.emb[mm] + (size_t)i * md->tokens * md->dim, sizeof(float) * md->tokens * md->dim);
        }
        CU_ASSERT_EQUAL(craft_cuda_engine_run(e, &one, &req, 1, &r3, &err), CRAFT_OK);
        bad += count_differences("batch-1 scores", r1.scores + (size_t)i * r1.K, r3.scores, r1.K, 1e-5, &w);
        bad += count_differences("batch-1 cmis", r1.cmis + (size_t)i * r1.M * r1.T, r3.cmis, (size_t)r1.M * r1.T,
                                 1e-5, &w);
    }
    CU_ASSERT_EQUAL(bad, 0);
    printf("\n  batch of %d vs one order at a time: worst difference %.3g\n", n, w);
    craft_cuda_engine_free(e);
    craft_result_free(&r1);
    craft_result_free(&r2);
    craft_result_free(&r3);
    craft_batch_free(&b);
    craft_batch_free(&one);
    craft_model_free(m);
}

static void test_input_errors(void)
{
    craft_model *m = NULL;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture("tiny-multilabel.safetensors"), &err), CRAFT_OK);
    craft_batch b;
    craft_batch_init(&b, &m->cfg, 4, &err);
    b.n = 2;
    for (int i = 0; i < 2; i++)
        craft_batch_clear_order(&b, &m->cfg, i);
    craft_request req = {0, 0, 0, 0};
    craft_result r;
    craft_result_init(&r, &m->cfg, 4, &req, &err);
    craft_cuda_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_cuda_engine_new(&e, m, 4, CRAFT_PRECISION_FP32, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_cuda_engine_run(e, &b, &req, 1, &r, &err), CRAFT_OK); /* all missing is fine */
    b.tab[3] = INFINITY;
    CU_ASSERT_EQUAL(craft_cuda_engine_run(e, &b, &req, 1, &r, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "infinite"));
    b.tab[3] = NAN;
    craft_request off_bb = {1u << m->cfg.backbone, 0, 0, 0};
    CU_ASSERT_EQUAL(craft_cuda_engine_run(e, &b, &off_bb, 1, &r, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "backbone"));
    b.n = 5;
    CU_ASSERT_EQUAL(craft_cuda_engine_run(e, &b, &req, 1, &r, &err), CRAFT_EINPUT);
    craft_cuda_engine_free(e);
    craft_result_free(&r);
    craft_batch_free(&b);
    craft_model_free(m);
}

int main(void)
{
    char why[256];
    if (!craft_cuda_available(why, sizeof why)) {
        printf("skipped: %s\n", why);
        return 77;
    }
    printf("GPU: %s\n", why);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cuda_parity", NULL, NULL);
    if (!s || !CU_add_test(s, "fixture multilabel", test_fixture_multilabel) ||
        !CU_add_test(s, "fixture multiclass", test_fixture_multiclass) ||
        !CU_add_test(s, "routing: exact, with ties", test_routing_exact_ties) ||
        !CU_add_test(s, "routing: random, as sets", test_routing_random_sets) ||
        !CU_add_test(s, "production shape vs CPU", test_production_vs_cpu) ||
        !CU_add_test(s, "perturbation vs CPU", test_perturbation_vs_cpu) ||
        !CU_add_test(s, "piecewise, wide head, calibration vs CPU", test_extensions_vs_cpu) ||
        !CU_add_test(s, "embedding backbone vs CPU", test_embedding_backbone_vs_cpu) ||
        !CU_add_test(s, "fast mode error", test_fast_mode_error) ||
        !CU_add_test(s, "repeatable, batch independent", test_repeatable_and_batch_independent) ||
        !CU_add_test(s, "input errors", test_input_errors)) {
        CU_cleanup_registry();
        return 1;
    }
    return run_suites();
}
