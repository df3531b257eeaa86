/* test_cmis.c: the CMIS check against planted truth (craft eval --cmis-truth).
 *
 * The per-order ranks on hand-made vectors; the whole check on the tiny multilabel fixture,
 * whose expected file holds CMIS values computed independently of the engine, against a
 * truth file written here: every cell's population, means, AUCs and top-5 share are
 * recomputed from the fixture's values by plain loops. Then bad truth files and the CLI.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include "eval.h"
#include "eval_util.h"

#define N_ORDERS 24
#define N_FEAT 12

static char labelled_path[512], truth_path[512], out_path[512];
static craft_model *tiny;

/* Labels of order i, class k: a fixed pattern with positives in every class. */
static int test_label(int i, int k) { return ((i * 5 + k * 3) % 4) < 2; }

/* D1: num5 synergistic with txt and graph, num10 suppressed by txt, cat0 self-sufficient;
 * D2: num7 synergistic with txt only, a categorical rule on cat1; D9: a class the model lacks. */
static const char *TRUTH =
    "{\"format\": \"craft-synth-truth\", \"version\": 1, \"classes\": {"
    "\"D1\": {\"self_sufficient\": [{\"feature\": \"cat0\", \"rule\": \"cat0 == \\\"v2\\\"\"}],"
    "        \"synergistic\": [{\"feature\": \"num5\", \"modalities\": [\"txt\", \"graph\"], \"rule\": \"num5 >= 0\"}],"
    "        \"suppressed\": [{\"feature\": \"num10\", \"modality\": \"txt\", \"rule\": \"num10 < 1\"}]},"
    "\"D2\": {\"synergistic\": [{\"feature\": \"num7\", \"modalities\": [\"txt\"], \"rule\": \"num7 >= -1\"}],"
    "        \"suppressed\": [{\"feature\": \"cat1\", \"modality\": \"graph\", \"rule\": \"cat1 == \\\"v0\\\"\"}]},"
    "\"D9\": {\"synergistic\": [{\"feature\": \"num3\", \"modalities\": [\"txt\"], \"rule\": \"num3 > 0\"}]}}}";

/* ------------------------------------------------------------ the ranks */

static void test_rank(void)
{
    const float v[6] = {0.5f, -0.2f, 0.1f, 0.1f, NAN, -0.9f};
    const int others[4] = {1, 2, 3, 4};
    craft_cmis_order_stat st;
    /* planted 0 is above every finite other: AUC 1, rank 1; |0.5| is above |-0.2|, |0.1| */
    craft_cmis_rank(v, 0, others, 4, +1, &st);
    CU_ASSERT(st.valid);
    CU_ASSERT_DOUBLE_EQUAL(st.auc, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(st.auc_abs, 1.0, 1e-12);
    CU_ASSERT_EQUAL(st.rank, 1);
    /* suppressed direction: the same planted value is now the worst */
    craft_cmis_rank(v, 0, others, 4, -1, &st);
    CU_ASSERT_DOUBLE_EQUAL(st.auc, 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(st.auc_abs, 1.0, 1e-12);
    CU_ASSERT_EQUAL(st.rank, 4);
    /* planted 2 (0.1) ties with 3, beats 1: (1 + 0.5) / 3; |0.1| loses to |-0.2| */
    const int others2[3] = {0, 1, 3};
    craft_cmis_rank(v, 2, others2, 3, +1, &st);
    CU_ASSERT_DOUBLE_EQUAL(st.auc, 1.5 / 3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(st.auc_abs, 0.5 / 3, 1e-12);
    CU_ASSERT_EQUAL(st.rank, 2); /* only 0.5 strictly ahead */
    /* the most negative value is the best suppressed candidate */
    const int others3[3] = {0, 1, 2};
    craft_cmis_rank(v, 5, others3, 3, -1, &st);
    CU_ASSERT_DOUBLE_EQUAL(st.auc, 1.0, 1e-12);
    CU_ASSERT_EQUAL(st.rank, 1);
    /* a NaN planted value, or only NaN others, is no evidence */
    craft_cmis_rank(v, 4, others3, 3, +1, &st);
    CU_ASSERT_FALSE(st.valid);
    const int nan_only[1] = {4};
    craft_cmis_rank(v, 0, nan_only, 1, +1, &st);
    CU_ASSERT_FALSE(st.valid);
}

/* ------------------------------------------- the check against the fixture */

typedef struct {
    int used[2];          /* txt, graph used */
    float cmis[2][N_FEAT];
    float x[N_FEAT];      /* numeric values (NaN missing); categorical: -1 missing, else the string's hash below */
    char cat[N_FEAT][16];
} fixture_order;

static const char *FEAT[N_FEAT] = {"cat0", "cat1", "cat2", "num3", "num4", "num5",
                                   "num6", "num7", "num8", "num9", "num10", "num11"};

static int load_fixture(fixture_order *o)
{
    memset(o, 0, sizeof *o * N_ORDERS);
    FILE *e = fopen(fixture("tiny-multilabel.expected.jsonl"), "r");
    FILE *f = fopen(fixture("tiny-multilabel.orders.jsonl"), "r");
    if (!e || !f)
        return -1;
    static char line[1 << 17];
    int i = 0;
    while (fgets(line, sizeof line, f) && i < N_ORDERS) {
        cJSON *j = cJSON_Parse(line), *feats = cJSON_GetObjectItem(j, "features");
        for (int k = 0; k < N_FEAT; k++) {
            cJSON *v = cJSON_GetObjectItem(feats, FEAT[k]);
            o[i].x[k] = cJSON_IsNumber(v) ? (float)v->valuedouble : NAN;
            if (cJSON_IsString(v))
                snprintf(o[i].cat[k], sizeof o[i].cat[k], "%s", v->valuestring);
        }
        cJSON_Delete(j);
        i++;
    }
    int seen = 0;
    while (fgets(line, sizeof line, e)) {
        cJSON *j = cJSON_Parse(line);
        if (cJSON_GetArraySize(cJSON_GetObjectItem(j, "off")) == 0) {
            const char *id = cJSON_GetObjectItem(j, "order_id")->valuestring;
            int n = atoi(strrchr(id, '-') + 1);
            cJSON *cm = cJSON_GetObjectItem(j, "cmis");
            const char *mods[2] = {"txt", "graph"};
            for (int m = 0; m < 2; m++) {
                cJSON *per = cJSON_GetObjectItem(cm, mods[m]);
                o[n].used[m] = per != NULL;
                for (int k = 0; per && k < N_FEAT; k++)
                    o[n].cmis[m][k] = (float)cJSON_GetObjectItem(per, FEAT[k])->valuedouble;
            }
            seen++;
        }
        cJSON_Delete(j);
    }
    fclose(e);
    fclose(f);
    return i == N_ORDERS && seen == N_ORDERS ? 0 : -1;
}

static int feat_index(const char *name)
{
    for (int k = 0; k < N_FEAT; k++)
        if (!strcmp(FEAT[k], name))
            return k;
    return -1;
}

/* The expected statistics of one cell, by plain loops over the fixture's CMIS. */
static void expected_cell(const fixture_order *o, int cls, int feat, int mod, int dir, int pop, int *n_out,
                          double *mean, double *auc, double *top5)
{
    /* named: cat0, num5, num10, num7, cat1, num3 -> others: cat2 num4 num6 num8 num9 num11 */
    const int oth[6] = {2, 4, 6, 8, 9, 11};
    int n = 0;
    double sm = 0, sa = 0, st = 0;
    for (int i = 0; i < N_ORDERS; i++) {
        int positive = test_label(i, cls);
        int holds;
        if (feat == 5)
            holds = !isnan(o[i].x[5]) && o[i].x[5] >= 0;
        else if (feat == 10)
            holds = !isnan(o[i].x[10]) && o[i].x[10] < 1;
        else if (feat == 7)
            holds = !isnan(o[i].x[7]) && o[i].x[7] >= -1;
        else
            holds = !strcmp(o[i].cat[1], "v0");
        int in = pop == 0 ? positive : pop == 1 ? holds : positive && holds;
        if (!in || !o[i].used[mod])
            continue;
        const float *c = o[i].cmis[mod];
        double beat = 0;
        int ahead = 0;
        for (int q = 0; q < 6; q++) {
            double a = dir * c[feat], b = dir * c[oth[q]];
            beat += a > b ? 1 : a == b ? 0.5 : 0;
            ahead += b > a;
        }
        n++;
        sm += c[feat];
        sa += beat / 6;
        st += ahead < 5;
    }
    *n_out = n;
    *mean = n ? sm / n : NAN;
    *auc = n ? sa / n : NAN;
    *top5 = n ? st / n : NAN;
}

static void test_check_against_fixture(void)
{
    fixture_order o[N_ORDERS];
    CU_ASSERT_FATAL(load_fixture(o) == 0);
    craft_error err = {0};
    craft_eval_set set;
    craft_eval_set_init(&set, &tiny->cfg);
    CU_ASSERT_FATAL(craft_eval_set_load(&set, &tiny->cfg, labelled_path, CRAFT_FORMAT_AUTO, &err) == 0);
    craft_eval_cmis_check chk;
    int rc = craft_eval_cmis_check_run(&chk, tiny, &set, TRUTH, "truth", 1, &err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(chk.n_orders, N_ORDERS);
    CU_ASSERT_EQUAL(chk.n_others, 6); /* 12 minus cat0, num5, num10, num7, cat1, num3 (D9's counts too) */
    /* D1 num5 x {txt, graph}, D1 num10 x txt, D2 num7 x txt, D2 cat1 x graph; 3 populations each */
    CU_ASSERT_EQUAL_FATAL(chk.n, 5 * CRAFT_CMIS_POPULATIONS);
    int checked = 0, nonempty = 0;
    for (int c = 0; c < chk.n; c++) {
        const craft_eval_cmis_cell *x = &chk.cell[c];
        const char *fname = tiny->cfg.modalities[tiny->cfg.tabular].features[x->feature].name;
        int feat = feat_index(fname), mod = x->modality == craft_config_find_modality(&tiny->cfg, "txt") ? 0 : 1;
        int n;
        double mean, auc, top5;
        expected_cell(o, x->cls, feat, mod, x->direction, x->population, &n, &mean, &auc, &top5);
        CU_ASSERT_EQUAL(x->n_orders, n);
        if (n) {
            CU_ASSERT_DOUBLE_EQUAL(x->planted_mean, mean, 1e-4);
            CU_ASSERT_DOUBLE_EQUAL(x->auc, auc, 1e-9);
            CU_ASSERT_DOUBLE_EQUAL(x->top5, top5, 1e-9);
            nonempty++;
        } else {
            CU_ASSERT(isnan(x->auc));
        }
        CU_ASSERT_EQUAL(x->direction, !strcmp(x->kind, "synergistic") ? 1 : -1);
        checked++;
    }
    CU_ASSERT_EQUAL(checked, 15);
    CU_ASSERT(nonempty >= 12); /* the populations are not empty by accident */
    /* the summary counts the non-empty cells of each kind and population */
    int cells = 0;
    for (int k = 0; k < 2; k++)
        for (int p = 0; p < CRAFT_CMIS_POPULATIONS; p++)
            cells += chk.summary[k][p].cells;
    CU_ASSERT_EQUAL(cells, nonempty);
    craft_eval_cmis_check_free(&chk);
    craft_eval_set_free(&set);
}

/* --------------------------------------------------------- bad truth files */

static void expect_failure(const char *truth, craft_code code, const char *needle)
{
    craft_error err = {0};
    craft_eval_set set;
    craft_eval_set_init(&set, &tiny->cfg);
    CU_ASSERT_FATAL(craft_eval_set_load(&set, &tiny->cfg, labelled_path, CRAFT_FORMAT_AUTO, &err) == 0);
    craft_eval_cmis_check chk;
    int rc = craft_eval_cmis_check_run(&chk, tiny, &set, truth, "t.json", 1, &err);
    CU_ASSERT_EQUAL(rc, (int)code);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "t.json"));
    if (!strstr(err.msg, needle))
        fprintf(stderr, "\n  message was: %s\n", err.msg);
    CU_ASSERT_EQUAL(chk.n, 0);
    CU_ASSERT_PTR_NULL(chk.cell);
    craft_eval_set_free(&set);
}

static void test_bad_truth(void)
{
    expect_failure("{\"format\": \"craft-synth-truth\"", CRAFT_EFORMAT, "not JSON");
    expect_failure("{\"format\": \"other\", \"classes\": {}}", CRAFT_EFORMAT, "craft-synth-truth");
    expect_failure("{\"format\": \"craft-synth-truth\"}", CRAFT_EFORMAT, "classes");
    expect_failure("{\"format\": \"craft-synth-truth\", \"classes\": {\"D1\": {\"synergistic\": [{\"feature\": "
                   "\"no_such\", \"modalities\": [\"txt\"], \"rule\": \"no_such >= 1\"}]}}}",
                   CRAFT_EINPUT, "no_such");
    expect_failure("{\"format\": \"craft-synth-truth\", \"classes\": {\"D1\": {\"synergistic\": [{\"feature\": "
                   "\"num5\", \"modalities\": [\"txt\"], \"rule\": \"num5 ~ 1\"}]}}}",
                   CRAFT_EFORMAT, "operator");
    expect_failure("{\"format\": \"craft-synth-truth\", \"classes\": {\"D1\": {\"synergistic\": [{\"feature\": "
                   "\"num5\", \"modalities\": [\"txt\"], \"rule\": \"num5 >= abc\"}]}}}",
                   CRAFT_EFORMAT, "not a number");
    expect_failure("{\"format\": \"craft-synth-truth\", \"classes\": {\"D1\": {\"suppressed\": [{\"feature\": "
                   "\"num5\", \"modality\": \"txt\", \"rule\": \"num6 >= 1\"}]}}}",
                   CRAFT_EFORMAT, "num6");
    expect_failure("{\"format\": \"craft-synth-truth\", \"classes\": {\"D1\": {\"suppressed\": [{\"feature\": "
                   "\"cat0\", \"modality\": \"txt\", \"rule\": \"cat0 >= 1\"}]}}}",
                   CRAFT_EFORMAT, "categorical");
    expect_failure("{\"format\": \"craft-synth-truth\", \"classes\": {\"D1\": {\"suppressed\": [{\"feature\": "
                   "\"cat0\", \"modality\": \"txt\", \"rule\": \"cat0 == \\\"never-seen\\\"\"}]}}}",
                   CRAFT_EINPUT, "vocabulary");
    /* nothing that concerns this model: no class of its, or no auxiliary of its */
    expect_failure("{\"format\": \"craft-synth-truth\", \"classes\": {\"X\": {\"synergistic\": [{\"feature\": "
                   "\"num5\", \"modalities\": [\"txt\"], \"rule\": \"num5 >= 1\"}]}}}",
                   CRAFT_EINPUT, "no synergistic or suppressed feature");
    expect_failure("{\"format\": \"craft-synth-truth\", \"classes\": {\"D1\": {\"synergistic\": [{\"feature\": "
                   "\"num5\", \"modalities\": [\"audio\"], \"rule\": \"num5 >= 1\"}]}}}",
                   CRAFT_EINPUT, "no synergistic or suppressed feature");
}

/* ------------------------------------------------------------------ CLI */

static int run_craft(const char *args)
{
    const char *build = getenv("CRAFT_BUILD");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/app/cli/craft eval %s > %s 2>/dev/null", build ? build : "build", args, out_path);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static cJSON *read_json_out(void)
{
    FILE *f = fopen(out_path, "r");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return cJSON_Parse(buf);
}

static void test_cli(void)
{
    FILE *t = fopen(truth_path, "w");
    CU_ASSERT_FATAL(t != NULL);
    fputs(TRUTH, t);
    fclose(t);
    char args[2048];
    snprintf(args, sizeof args, "--model %s --input %s --json --cmis-truth %s --threads 1",
             fixture("tiny-multilabel.safetensors"), labelled_path, truth_path);
    CU_ASSERT_EQUAL(run_craft(args), 0);
    cJSON *j = read_json_out();
    CU_ASSERT_FATAL(j != NULL);
    cJSON *c = cJSON_GetObjectItem(j, "cmis_check");
    CU_ASSERT(cJSON_IsObject(c));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(c, "cells")), 15);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(c, "summary")), 2 * CRAFT_CMIS_POPULATIONS);
    CU_ASSERT_EQUAL((int)cJSON_GetObjectItem(c, "others")->valuedouble, 6);
    cJSON_Delete(j);
    /* the table names the section */
    snprintf(args, sizeof args, "--model %s --input %s --cmis-truth %s --threads 1",
             fixture("tiny-multilabel.safetensors"), labelled_path, truth_path);
    CU_ASSERT_EQUAL(run_craft(args), 0);
    FILE *f = fopen(out_path, "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        found |= strstr(line, "CMIS against the planted truth") != NULL;
    if (f)
        fclose(f);
    CU_ASSERT(found);
    /* not asked for: null */
    snprintf(args, sizeof args, "--model %s --input %s --json --threads 1", fixture("tiny-multilabel.safetensors"),
             labelled_path);
    CU_ASSERT_EQUAL(run_craft(args), 0);
    j = read_json_out();
    CU_ASSERT(j && cJSON_IsNull(cJSON_GetObjectItem(j, "cmis_check")));
    cJSON_Delete(j);
    /* a truth file that is not there: 66; a bad one: 65 */
    snprintf(args, sizeof args, "--model %s --input %s --cmis-truth /nonexistent/truth.json",
             fixture("tiny-multilabel.safetensors"), labelled_path);
    CU_ASSERT_EQUAL(run_craft(args), 66);
    snprintf(args, sizeof args, "--model %s --input %s --cmis-truth %s", fixture("tiny-multilabel.safetensors"),
             labelled_path, labelled_path);
    CU_ASSERT_EQUAL(run_craft(args), 65);
    snprintf(args, sizeof args, "--model %s --input %s --cmis-truth", fixture("tiny-multilabel.safetensors"),
             labelled_path);
    CU_ASSERT_EQUAL(run_craft(args), 64);
}

int main(void)
{
    snprintf(labelled_path, sizeof labelled_path, "/tmp/craft-test-cmis-%d.jsonl", (int)getpid());
    snprintf(truth_path, sizeof truth_path, "/tmp/craft-test-cmis-%d.truth.json", (int)getpid());
    snprintf(out_path, sizeof out_path, "/tmp/craft-test-cmis-%d.out", (int)getpid());
    craft_error err = {0};
    if (write_labelled_copy("tiny-multilabel.orders.jsonl", labelled_path, 5, N_ORDERS, test_label)) {
        fprintf(stderr, "cannot write the labelled copy of the fixture orders\n");
        return 1;
    }
    if (craft_model_load(&tiny, fixture("tiny-multilabel.safetensors"), &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cmis", NULL, NULL);
    int ok = s && CU_add_test(s, "per-order ranks: direction, ties, NaN", test_rank) &&
             CU_add_test(s, "check against the fixture's independent CMIS", test_check_against_fixture) &&
             CU_add_test(s, "bad truth files name what and where", test_bad_truth) &&
             CU_add_test(s, "craft eval --cmis-truth", test_cli);
    if (!ok) {
        CU_cleanup_registry();
        return 1;
    }
    int rc = run_suites();
    craft_model_free(tiny);
    unlink(labelled_path);
    unlink(truth_path);
    unlink(out_path);
    return rc;
}
