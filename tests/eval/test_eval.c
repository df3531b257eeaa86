/* test_eval.c: suite 'eval': metrics against hand-computed cases, the subset
 * table against the fixture's independent expected scores, noise, the MLP's
 * gradient by finite differences, XGBoost, and the craft eval command. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../eval/eval_util.h"
#include "baselines.h"
#include "eval.h"
#include "metrics.h"

#define N_ORDERS 24

static char labelled_path[256];
static craft_model *tiny;

/* The label the test gives order i, class k; class D5 (k = 4) is never positive,
 * so its PR-AUC is undefined. */
static int test_label(int i, int k) { return k == 4 ? 0 : ((i * 7 + k * 3) % 5) < 2; }

/* ------------------------------------------------------------- metrics */

static void test_pr_roc_ties_and_undefined(void)
{
    /* class 0: scores 0.9 0.8 0.8 0.3, labels 1 0 1 0 (a tie across the classes)
     *   AP = 1 * 1/2 + 2/3 * 1/2 = 5/6; ROC = (1 + 1 + 0.5 + 1) / 4 = 0.875
     * class 1: every label 0: both undefined, left out of the macro means
     * class 2: row 3 unknown; scores 0.1 0.2 0.3 -, labels 0 0 1 -: AP 1, ROC 1 */
    const float s[] = {0.9f, 0.5f, 0.1f, 0.8f, 0.4f, 0.2f, 0.8f, 0.3f, 0.3f, 0.3f, 0.2f, 0.9f};
    const float y[] = {1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, NAN};
    craft_eval_metrics mt;
    CU_ASSERT_EQUAL_FATAL(craft_eval_metrics_compute(&mt, CRAFT_MULTILABEL, 4, 3, s, y, 0.9, NULL), CRAFT_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.ap[0], 5.0 / 6.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(mt.roc[0], 0.875, 1e-9);
    CU_ASSERT(isnan(mt.ap[1]));
    CU_ASSERT(isnan(mt.roc[1]));
    CU_ASSERT(isnan(mt.thr[1]));
    CU_ASSERT_DOUBLE_EQUAL(mt.ap[2], 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(mt.roc[2], 1.0, 1e-9);
    CU_ASSERT_EQUAL(mt.n_known[2], 3);
    CU_ASSERT_EQUAL(mt.n_pos[0], 2);
    CU_ASSERT_EQUAL(mt.n_pos[1], 0);
    CU_ASSERT_DOUBLE_EQUAL(mt.macro_ap, (5.0 / 6.0 + 1.0) / 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(mt.macro_roc, (0.875 + 1.0) / 2, 1e-9);
    CU_ASSERT(isnan(mt.accuracy));
    craft_eval_metrics_free(&mt);
}

static void test_ece(void)
{
    /* multilabel, one class: (0.05, 0) (0.15, 1) (0.95, 1) (0.85, 0) fall in bins
     * 0, 1, 9, 8, one each: ECE = (0.05 + 0.85 + 0.05 + 0.85) / 4 = 0.45 */
    const float s[] = {0.05f, 0.15f, 0.95f, 0.85f};
    const float y[] = {0, 1, 1, 0};
    CU_ASSERT_DOUBLE_EQUAL(craft_eval_ece(CRAFT_MULTILABEL, 4, 1, s, y, 10), 0.45, 1e-6);
    /* two in one bin average first: (0.62, 1) (0.68, 0): |0.5 - 0.65| = 0.15; a score
     * of exactly 1 goes to the last bin: (1.0, 1) adds 0 */
    const float s2[] = {0.62f, 0.68f, 1.0f};
    const float y2[] = {1, 0, 1};
    CU_ASSERT_DOUBLE_EQUAL(craft_eval_ece(CRAFT_MULTILABEL, 3, 1, s2, y2, 10), 2.0 / 3.0 * 0.15, 1e-6);
    /* multiclass: top-class confidence against correctness:
     * (0.72 right) (0.64 wrong) (0.9 right) -> bins 7, 6, 9: (0.28 + 0.64 + 0.1) / 3 */
    const float s3[] = {0.72f, 0.18f, 0.1f, 0.3f, 0.64f, 0.06f, 0.05f, 0.05f, 0.9f};
    const float y3[] = {1, 0, 0, 1, 0, 0, 0, 0, 1};
    CU_ASSERT_DOUBLE_EQUAL(craft_eval_ece(CRAFT_MULTICLASS, 3, 3, s3, y3, 10), 1.02 / 3.0, 1e-6);
    /* nothing labelled: undefined */
    const float y4[] = {NAN, NAN, NAN};
    CU_ASSERT(isnan(craft_eval_ece(CRAFT_MULTILABEL, 3, 1, s2, y4, 10)));
}

static void test_thresholds(void)
{
    /* scores 0.9 0.8 0.7 0.6 0.5, labels 1 1 0 1 0: precision at each cut
     * 1, 1, 2/3, 3/4, 3/5 */
    const float s[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
    const float y[] = {1, 1, 0, 1, 0};
    double p, r;
    CU_ASSERT_DOUBLE_EQUAL(craft_eval_threshold_at_precision(s, y, 5, 1, 0.75, &p, &r), 0.6, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(p, 0.75, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r, 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(craft_eval_threshold_at_precision(s, y, 5, 1, 0.9, &p, &r), 0.8, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(r, 2.0 / 3.0, 1e-9);
    /* a target no cut reaches: undefined */
    const float y2[] = {0, 1, 0, 1, 0};
    CU_ASSERT(isnan(craft_eval_threshold_at_precision(s, y2, 5, 1, 0.9, &p, &r)));
    CU_ASSERT(isnan(p) && isnan(r));
}

static void test_accuracy_f1(void)
{
    /* 4 orders, 3 classes: truths 0 1 2 1, argmax 0 1 1 1 (the last order's 2-way
     * tie goes to the first class); 5th order unknown */
    const float s[] = {0.8f, 0.1f, 0.1f, 0.2f, 0.7f, 0.1f, 0.1f, 0.5f, 0.4f,
                       0.1f, 0.45f, 0.45f, 0.9f, 0.05f, 0.05f};
    const float y[] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, NAN, NAN, NAN};
    CU_ASSERT_DOUBLE_EQUAL(craft_eval_accuracy(5, 3, s, y), 0.75, 1e-9);
    /* F1: class 0: 1; class 1: tp 2 fp 1 -> 4/5; class 2: tp 0 fn 1 -> 0 */
    CU_ASSERT_DOUBLE_EQUAL(craft_eval_macro_f1(5, 3, s, y), (1.0 + 0.8 + 0.0) / 3, 1e-9);
    craft_eval_metrics mt;
    CU_ASSERT_EQUAL_FATAL(craft_eval_metrics_compute(&mt, CRAFT_MULTICLASS, 5, 3, s, y, 0.9, NULL), CRAFT_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.accuracy, 0.75, 1e-9);
    CU_ASSERT_EQUAL(mt.n_known[0], 4);
    craft_eval_metrics_free(&mt);
}

/* --------------------------------------------------- subsets and noise */

/* Scores of the fixture's expected file for the subset with these auxiliaries off. */
static int expected_scores(const char *off_csv, float *scores)
{
    FILE *f = fopen(fixture("tiny-multilabel.expected.jsonl"), "r");
    if (!f)
        return -1;
    char line[1 << 16];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        char off[64] = "";
        cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItem(o, "off"))
        {
            size_t len = strlen(off);
            snprintf(off + len, sizeof off - len, "%s%s", len ? "," : "", item->valuestring);
        }
        if (!strcmp(off, off_csv)) {
            const char *id = cJSON_GetObjectItem(o, "order_id")->valuestring;
            int i = atoi(strrchr(id, '-') + 1);
            for (int k = 0; k < 5; k++) {
                char name[8];
                snprintf(name, sizeof name, "D%d", k + 1);
                scores[i * 5 + k] = (float)cJSON_GetObjectItem(cJSON_GetObjectItem(o, "scores"), name)->valuedouble;
            }
            found++;
        }
        cJSON_Delete(o);
    }
    fclose(f);
    return found == N_ORDERS ? 0 : -1;
}

static void test_subset_table(void)
{
    craft_eval_set set;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_eval_set_load(&set, &tiny->cfg, labelled_path, CRAFT_FORMAT_AUTO, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(set.b.n, N_ORDERS);
    CU_ASSERT_EQUAL(set.n_labelled, N_ORDERS);
    craft_eval_subsets t;
    float *full = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_eval_subsets_run(&t, tiny, &set, 1, &full, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(t.n, 4);
    CU_ASSERT_STRING_EQUAL(t.name[0], "full");
    CU_ASSERT_STRING_EQUAL(t.name[1], "without txt");
    CU_ASSERT_STRING_EQUAL(t.name[2], "without graph");
    CU_ASSERT_STRING_EQUAL(t.name[3], "backbone only (tab)");
    /* each row against the fixture's independently computed scores */
    const char *offs[4] = {"", "txt", "graph", "txt,graph"};
    float labels[N_ORDERS * 5], expect[N_ORDERS * 5];
    for (int i = 0; i < N_ORDERS; i++)
        for (int k = 0; k < 5; k++)
            labels[i * 5 + k] = (float)test_label(i, k);
    for (int r = 0; r < 4; r++) {
        CU_ASSERT_EQUAL_FATAL(expected_scores(offs[r], expect), 0);
        double want = craft_macro_pr_auc(expect, labels, N_ORDERS, 5);
        CU_ASSERT_DOUBLE_EQUAL(t.macro_ap[r], want, 1e-4);
        CU_ASSERT_DOUBLE_EQUAL(t.macro_roc[r], craft_macro_roc_auc(expect, labels, N_ORDERS, 5), 1e-4);
    }
    for (int i = 0; i < N_ORDERS * 5; i++)
        CU_ASSERT_DOUBLE_EQUAL(full[i], (expected_scores("", expect), expect[i]), 1e-5);
    /* D5 has no positives: undefined, and the macro is over the four others */
    craft_eval_metrics mt;
    CU_ASSERT_EQUAL(craft_eval_metrics_compute(&mt, CRAFT_MULTILABEL, N_ORDERS, 5, full, set.b.labels, 0.9, &err),
                    CRAFT_OK);
    CU_ASSERT(isnan(mt.ap[4]));
    double mean4 = (mt.ap[0] + mt.ap[1] + mt.ap[2] + mt.ap[3]) / 4;
    CU_ASSERT_DOUBLE_EQUAL(mt.macro_ap, mean4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.macro_ap, t.macro_ap[0], 1e-12);
    craft_eval_metrics_free(&mt);
    free(full);
    craft_eval_subsets_free(&t);
    craft_eval_set_free(&set);
}

static void test_noise(void)
{
    craft_eval_set set;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_eval_set_load(&set, &tiny->cfg, labelled_path, CRAFT_FORMAT_AUTO, &err), CRAFT_OK);
    craft_eval_subsets t;
    CU_ASSERT_EQUAL_FATAL(craft_eval_subsets_run(&t, tiny, &set, 1, NULL, &err), CRAFT_OK);
    craft_eval_noise a, b;
    CU_ASSERT_EQUAL_FATAL(craft_eval_noise_run(&a, tiny, &set, 7, 1, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(a.n, 4);
    CU_ASSERT_STRING_EQUAL(a.name[3], "all");
    CU_ASSERT_STRING_EQUAL(a.metric, "macro_pr_auc");
    int differs = 0;
    for (int s = 0; s < a.n; s++) {
        /* factor 0 is the clean evaluation, exactly */
        CU_ASSERT_EQUAL(a.value[s * CRAFT_NOISE_LEVELS], t.macro_ap[0]);
        for (int l = 1; l < CRAFT_NOISE_LEVELS; l++)
            differs += a.value[s * CRAFT_NOISE_LEVELS + l] != t.macro_ap[0];
    }
    CU_ASSERT(differs > 0); /* the noise does reach the model */
    /* deterministic for a seed, whatever the threads */
    CU_ASSERT_EQUAL_FATAL(craft_eval_noise_run(&b, tiny, &set, 7, 2, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(memcmp(a.value, b.value, sizeof(double) * a.n * CRAFT_NOISE_LEVELS), 0);
    craft_eval_noise_free(&b);
    CU_ASSERT_EQUAL_FATAL(craft_eval_noise_run(&b, tiny, &set, 8, 1, &err), CRAFT_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(a.value, b.value, sizeof(double) * a.n * CRAFT_NOISE_LEVELS), 0);
    craft_eval_noise_free(&b);
    craft_eval_noise_free(&a);
    craft_eval_subsets_free(&t);
    craft_eval_set_free(&set);
}

/* --------------------------------------------------------------- MLP */

static void check_mlp_gradient(int task)
{
    enum { N = 9, IN = 6, H = 5, K = 4 };
    craft_mlp m;
    CU_ASSERT_EQUAL_FATAL(craft_mlp_init(&m, IN, H, K, task, 11, NULL), CRAFT_OK);
    uint64_t s = 5;
    float X[N * IN], Y[N * K];
    for (int i = 0; i < N * IN; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        X[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 4 - 2);
    }
    for (size_t p = 0; p < m.n_params; p++) /* non-zero biases too */
        if (m.params[p] == 0)
            m.params[p] = 0.05f * (float)((int)(p % 7) - 3);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++)
            Y[i * K + k] = task == CRAFT_MULTICLASS ? (float)(k == i % K) : (float)((i + 2 * k) % 3 == 0);
    Y[1 * K + 2] = NAN; /* an unknown label (multilabel); a fully unknown order (multiclass) */
    if (task == CRAFT_MULTICLASS)
        for (int k = 0; k < K; k++)
            Y[1 * K + k] = NAN;
    float *g = malloc(sizeof(float) * m.n_params);
    double loss = craft_mlp_loss_grad(&m, X, Y, N, g);
    CU_ASSERT(isfinite(loss) && loss > 0);
    int bad = 0;
    for (size_t p = 0; p < m.n_params; p++) {
        const float eps = 1e-3f, keep = m.params[p];
        m.params[p] = keep + eps;
        double up = craft_mlp_loss_grad(&m, X, Y, N, NULL);
        m.params[p] = keep - eps;
        double down = craft_mlp_loss_grad(&m, X, Y, N, NULL);
        m.params[p] = keep;
        double fd = (up - down) / (2.0 * eps);
        if (fabs(fd - g[p]) > 2e-3 + 2e-2 * fabs(fd)) {
            if (bad++ < 5)
                fprintf(stderr, "param %zu: analytic %g, finite difference %g\n", p, g[p], fd);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(g);
    craft_mlp_free(&m);
}

static void test_mlp_gradient_multilabel(void) { check_mlp_gradient(CRAFT_MULTILABEL); }
static void test_mlp_gradient_multiclass(void) { check_mlp_gradient(CRAFT_MULTICLASS); }

/* A separable problem: class 1 when x0 + x1 > 0 (multilabel, one class). */
static void separable(float *X, float *Y, int n, int dim, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        for (int d = 0; d < dim; d++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            X[i * dim + d] = (float)((double)(seed >> 11) / 9007199254740992.0 * 2 - 1);
        }
        Y[i] = X[i * dim] + X[i * dim + 1] > 0;
    }
}

static void test_mlp_learns(void)
{
    enum { NTR = 300, NTE = 100, D = 4 };
    float Xtr[NTR * D], Ytr[NTR], Xte[NTE * D], Yte[NTE], P[NTE];
    separable(Xtr, Ytr, NTR, D, 1);
    separable(Xte, Yte, NTE, D, 2);
    craft_mlp m;
    CU_ASSERT_EQUAL_FATAL(craft_mlp_init(&m, D, 16, 1, CRAFT_MULTILABEL, 3, NULL), CRAFT_OK);
    craft_mlp_train_options o = {200, 32, 10, 1e-2f, 0.01f, 4};
    CU_ASSERT_EQUAL_FATAL(craft_mlp_train(&m, Xtr, Ytr, NTR, Xte, Yte, NTE, &o, NULL), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_mlp_predict(&m, Xte, NTE, P, NULL), CRAFT_OK);
    int right = 0;
    for (int i = 0; i < NTE; i++)
        right += (P[i] > 0.5f) == (Yte[i] > 0.5f);
    CU_ASSERT(right >= 90);
    craft_mlp_free(&m);
}

static void test_xgboost(void)
{
    enum { NTR = 300, NTE = 100, D = 3 };
    float Xtr[NTR * D], Ytr[NTR], Xte[NTE * D], Yte[NTE], P[NTE];
    separable(Xtr, Ytr, NTR, D, 5);
    separable(Xte, Yte, NTE, D, 6);
    craft_xgb_options o = {60, 4, 1, 0.3f, 1};
    char detail[160];
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_xgb_fit_predict(CRAFT_MULTILABEL, 1, D, Xtr, Ytr, NTR, Xte, NTE, &o, P, detail,
                                                sizeof detail, &err),
                          CRAFT_OK);
    int right = 0;
    for (int i = 0; i < NTE; i++)
        right += (P[i] > 0.5f) == (Yte[i] > 0.5f);
    CU_ASSERT(right >= 90);
    CU_ASSERT(strstr(detail, "libxgboost") != NULL);
    /* multiclass: 3 classes by the sign pattern of x0, x1 */
    float Y3[NTR * 3], P3[NTE * 3];
    for (int i = 0; i < NTR; i++) {
        int c = Xtr[i * D] > 0 ? 0 : Xtr[i * D + 1] > 0 ? 1 : 2;
        for (int k = 0; k < 3; k++)
            Y3[i * 3 + k] = k == c;
    }
    CU_ASSERT_EQUAL_FATAL(craft_xgb_fit_predict(CRAFT_MULTICLASS, 3, D, Xtr, Y3, NTR, Xte, NTE, &o, P3, NULL, 0, &err),
                          CRAFT_OK);
    right = 0;
    for (int i = 0; i < NTE; i++) {
        int c = Xte[i * D] > 0 ? 0 : Xte[i * D + 1] > 0 ? 1 : 2;
        float sum = P3[i * 3] + P3[i * 3 + 1] + P3[i * 3 + 2];
        CU_ASSERT_DOUBLE_EQUAL(sum, 1.0, 1e-4);
        int best = P3[i * 3 + 1] > P3[i * 3] ? 1 : 0;
        best = P3[i * 3 + 2] > P3[i * 3 + best] ? 2 : best;
        right += best == c;
    }
    CU_ASSERT(right >= 90);
}

static void test_concat_features(void)
{
    craft_eval_set set;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_eval_set_load(&set, &tiny->cfg, labelled_path, CRAFT_FORMAT_AUTO, &err), CRAFT_OK);
    int rows[N_ORDERS];
    for (int i = 0; i < N_ORDERS; i++)
        rows[i] = i;
    craft_concat_features f;
    uint32_t all = (1u << tiny->cfg.n_modalities) - 1;
    CU_ASSERT_EQUAL_FATAL(craft_concat_fit(&f, &tiny->cfg, all, &set, rows, N_ORDERS, &err), CRAFT_OK);
    /* 9 numeric features x 2, 3 categorical x (vocab + unseen + missing), txt 10 + 1, graph 6 + 1 */
    int cat = 0;
    const craft_modality *tab = &tiny->cfg.modalities[tiny->cfg.tabular];
    for (int j = 0; j < tab->n_features; j++)
        cat += tab->features[j].type == CRAFT_CATEGORICAL ? tab->features[j].n_vocab + 2 : 2;
    CU_ASSERT_EQUAL(f.dim, cat + 11 + 7);
    float *X = malloc(sizeof(float) * N_ORDERS * f.dim);
    craft_concat_transform(&f, &set, rows, N_ORDERS, X);
    /* standardized value columns: mean 0 over the present values; indicators 0/1 */
    int txt = craft_config_find_modality(&tiny->cfg, "txt");
    int c0 = f.offset[txt], ind = c0 + tiny->cfg.modalities[txt].dim;
    double sum = 0;
    int present = 0;
    for (int i = 0; i < N_ORDERS; i++) {
        float flag = X[i * f.dim + ind];
        CU_ASSERT(flag == 0 || flag == 1);
        CU_ASSERT_EQUAL(flag == 1, set.b.ntok[txt][i] == 0);
        if (flag == 0)
            sum += X[i * f.dim + c0], present++;
        else
            CU_ASSERT_EQUAL(X[i * f.dim + c0], 0);
    }
    CU_ASSERT(present > 0 && present < N_ORDERS);
    CU_ASSERT_DOUBLE_EQUAL(sum / present, 0, 1e-5);
    free(X);
    craft_concat_free(&f);
    craft_eval_set_free(&set);
}

static void test_baselines_table(void)
{
    craft_eval_set set;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_eval_set_load(&set, &tiny->cfg, labelled_path, CRAFT_FORMAT_AUTO, &err), CRAFT_OK);
    craft_eval_baseline_options o;
    craft_eval_baseline_defaults(&o);
    o.val_fraction = 0.3;
    o.quiet = 1;
    o.epochs = 20;
    o.backbone_epochs = 3;
    craft_eval_baselines b;
    CU_ASSERT_EQUAL_FATAL(craft_eval_baselines_run(&b, tiny, &set, &o, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(b.n_train + b.n_test, N_ORDERS);
    int test_rows = 0;
    for (int i = 0; i < N_ORDERS; i++)
        test_rows += craft_eval_split_hash(set.ids[i], o.seed) < o.val_fraction;
    CU_ASSERT_EQUAL(b.n_test, test_rows);
    CU_ASSERT_FATAL(b.best_single >= 0);
    CU_ASSERT_DOUBLE_EQUAL(b.row[b.best_single].ratio, 1.0, 1e-12);
    int backbone = 0;
    for (int i = 0; i < b.n; i++) {
        if (b.row[i].single_modality)
            CU_ASSERT(!(b.row[i].ratio > 1.0));
        if (!strcmp(b.row[i].name, "backbone alone (trained)")) {
            backbone = 1;
            CU_ASSERT(b.row[i].available);
            CU_ASSERT(isfinite(b.row[i].macro_ap) && b.row[i].macro_ap > 0 && b.row[i].macro_ap <= 1);
        }
        if (b.row[i].available)
            CU_ASSERT(isfinite(b.row[i].ratio));
    }
    CU_ASSERT(backbone);
    craft_eval_set_free(&set);
}

/* ------------------------------------------------------------- the CLI */

static int run_cli(const char *args, char **output);

static int run_cli(const char *args, char **output)
{
    const char *build = getenv("CRAFT_BUILD");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/app/cli/craft eval %s 2>/dev/null", build ? build : ".", args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    if (output)
        *output = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_json(void)
{
    char args[1024], *out = NULL;
    snprintf(args, sizeof args, "--model %s --input %s --json --noise --baselines --val-fraction 0.3 --epochs 10 --backbone-epochs 2",
             fixture("tiny-multilabel.safetensors"), labelled_path);
    CU_ASSERT_EQUAL_FATAL(run_cli(args, &out), 0);
    cJSON *o = cJSON_Parse(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(o, "format")->valuestring, "craft-eval");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(o, "orders")->valueint, N_ORDERS);
    cJSON *mt = cJSON_GetObjectItem(o, "metrics");
    cJSON *classes = cJSON_GetObjectItem(mt, "classes");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(classes), 5);
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(classes, 4), "pr_auc")));
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(mt, "macro"), "pr_auc")));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(o, "subsets")), 4);
    cJSON *noise = cJSON_GetObjectItem(o, "noise");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(noise, "settings")), 4);
    cJSON *rows = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "baselines"), "rows");
    CU_ASSERT(cJSON_GetArraySize(rows) >= 5);
    cJSON_Delete(o);
    free(out);
}

/* The held-out orders of --baselines are the trainer's validation orders: train
 * a model with craft train, then compare its recorded split with ours. */
static void test_split_matches_trainer(void)
{
    char cfg_path[256], orders_path[256], model_path[256], cmd[2048];
    snprintf(cfg_path, sizeof cfg_path, "/tmp/craft-test-eval-%d.config.json", (int)getpid());
    snprintf(orders_path, sizeof orders_path, "/tmp/craft-test-eval-%d.200.jsonl", (int)getpid());
    snprintf(model_path, sizeof model_path, "/tmp/craft-test-eval-%d.safetensors", (int)getpid());
    char *json = craft_config_to_json(&tiny->cfg);
    FILE *f = fopen(cfg_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(json, f);
    fclose(f);
    free(json);
    /* 200 labelled orders: the fixture's, repeated under new ids */
    FILE *in = fopen(labelled_path, "r"), *out = fopen(orders_path, "w");
    CU_ASSERT_FATAL(in && out);
    char line[1 << 16];
    for (int i = 0; i < 200; i++) {
        if (!fgets(line, sizeof line, in)) {
            rewind(in);
            CU_ASSERT_FATAL(fgets(line, sizeof line, in) != NULL);
        }
        cJSON *o = cJSON_Parse(line);
        char id[32];
        snprintf(id, sizeof id, "S-%04d", i);
        cJSON_ReplaceItemInObject(o, "order_id", cJSON_CreateString(id));
        char *text = cJSON_PrintUnformatted(o);
        fprintf(out, "%s\n", text);
        free(text);
        cJSON_Delete(o);
    }
    fclose(in);
    fclose(out);
    const char *build = getenv("CRAFT_BUILD");
    snprintf(cmd, sizeof cmd,
             "%s/app/cli/craft train --input %s --config %s --output %s --epochs 1 --batch 32 --val-fraction 0.25 "
             "--seed 9 --threads 1 >/dev/null 2>&1",
             build ? build : ".", orders_path, cfg_path, model_path);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 64) {
        fprintf(stderr, "note: this build has no craft train; split check not run\n");
        unlink(cfg_path), unlink(orders_path);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(WEXITSTATUS(st), 0);
    craft_model *m = NULL;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, model_path, &err), CRAFT_OK);
    double vf = 0;
    uint64_t seed = 0;
    CU_ASSERT_FATAL(craft_eval_training_split(m, &vf, &seed));
    CU_ASSERT_DOUBLE_EQUAL(vf, 0.25, 1e-6);
    CU_ASSERT_EQUAL(seed, 9);
    /* the trainer's recorded validation count equals our held-out count */
    cJSON *meta = cJSON_Parse(m->metadata_json);
    cJSON *t = cJSON_Parse(cJSON_GetObjectItem(meta, "craft.training")->valuestring);
    int n_val = cJSON_GetObjectItem(t, "n_val")->valueint;
    craft_eval_set set;
    CU_ASSERT_EQUAL_FATAL(craft_eval_set_load(&set, &m->cfg, orders_path, CRAFT_FORMAT_AUTO, &err), CRAFT_OK);
    int *is_test = malloc(sizeof(int) * set.b.n);
    CU_ASSERT_EQUAL(craft_eval_split(&set, vf, seed, is_test), n_val);
    CU_ASSERT(n_val > 10 && n_val < 100);
    free(is_test);
    craft_eval_set_free(&set);
    cJSON_Delete(t);
    cJSON_Delete(meta);
    craft_model_free(m);
    unlink(cfg_path), unlink(orders_path), unlink(model_path);
}

/* --db: the same orders through the case store give the same evaluation. */
static void test_cli_db(void)
{
    char db[256], cmd[2048], args[1024], *from_file = NULL, *from_db = NULL;
    snprintf(db, sizeof db, "/tmp/craft-test-eval-%d.db", (int)getpid());
    unlink(db);
    const char *build = getenv("CRAFT_BUILD");
    snprintf(cmd, sizeof cmd, "%s/app/cli/craft import --db %s %s >/dev/null 2>&1", build ? build : ".", db,
             labelled_path);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 64) {
        fprintf(stderr, "note: this build has no case store; --db not checked\n");
        return;
    }
    CU_ASSERT_EQUAL_FATAL(WEXITSTATUS(st), 0);
    snprintf(args, sizeof args, "--model %s --input %s --json", fixture("tiny-multilabel.safetensors"), labelled_path);
    CU_ASSERT_EQUAL_FATAL(run_cli(args, &from_file), 0);
    snprintf(args, sizeof args, "--model %s --db %s --json", fixture("tiny-multilabel.safetensors"), db);
    CU_ASSERT_EQUAL_FATAL(run_cli(args, &from_db), 0);
    cJSON *a = cJSON_Parse(from_file), *b = cJSON_Parse(from_db);
    CU_ASSERT_FATAL(a && b);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(b, "orders")->valueint, N_ORDERS);
    cJSON *sa = cJSON_GetObjectItem(a, "subsets"), *sb = cJSON_GetObjectItem(b, "subsets");
    for (int i = 0; i < 4; i++)
        CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(sa, i), "pr_auc")->valuedouble,
                               cJSON_GetObjectItem(cJSON_GetArrayItem(sb, i), "pr_auc")->valuedouble, 1e-9);
    snprintf(args, sizeof args, "--model %s --db %s --dataset no-such-dataset", fixture("tiny-multilabel.safetensors"),
             db);
    CU_ASSERT_EQUAL(run_cli(args, NULL), 65);
    cJSON_Delete(a), cJSON_Delete(b);
    free(from_file), free(from_db);
    unlink(db);
}

static void test_cli_errors(void)
{
    char args[1024];
    CU_ASSERT_EQUAL(run_cli("--input x.jsonl", NULL), 64);
    snprintf(args, sizeof args, "--model %s --input %s --target-precision 2", fixture("tiny-multilabel.safetensors"),
             labelled_path);
    CU_ASSERT_EQUAL(run_cli(args, NULL), 64);
    /* the fixture's own orders carry no labels: refused, not scored as all-negative */
    snprintf(args, sizeof args, "--model %s --input %s", fixture("tiny-multilabel.safetensors"),
             fixture("tiny-multilabel.orders.jsonl"));
    CU_ASSERT_EQUAL(run_cli(args, NULL), 65);
    snprintf(args, sizeof args, "--model %s --input /nonexistent/orders.jsonl", fixture("tiny-multilabel.safetensors"));
    CU_ASSERT_EQUAL(run_cli(args, NULL), 66);
}

int main(void)
{
    craft_error err = {0};
    snprintf(labelled_path, sizeof labelled_path, "/tmp/craft-test-eval-%d.jsonl", (int)getpid());
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
    CU_pSuite s = CU_add_suite("eval", NULL, NULL);
    if (!s)
        return 1;
    int ok = CU_add_test(s, "PR-AUC and ROC-AUC: ties, unknown labels, undefined classes",
                         test_pr_roc_ties_and_undefined) &&
             CU_add_test(s, "calibration error (ECE)", test_ece) && CU_add_test(s, "thresholds at a precision", test_thresholds) &&
             CU_add_test(s, "accuracy and macro-F1", test_accuracy_f1) &&
             CU_add_test(s, "subset table against the fixture's expected scores", test_subset_table) &&
             CU_add_test(s, "noise: level 0 is clean, seeded, thread-independent", test_noise) &&
             CU_add_test(s, "MLP gradient by finite differences (multilabel)", test_mlp_gradient_multilabel) &&
             CU_add_test(s, "MLP gradient by finite differences (multiclass)", test_mlp_gradient_multiclass) &&
             CU_add_test(s, "MLP learns a separable problem", test_mlp_learns) &&
             CU_add_test(s, "early-fusion features", test_concat_features) &&
             CU_add_test(s, "baseline table", test_baselines_table) &&
             CU_add_test(s, "craft eval --json", test_cli_json) && CU_add_test(s, "craft eval errors", test_cli_errors) &&
             CU_add_test(s, "craft eval --db", test_cli_db) &&
             CU_add_test(s, "split equals the trainer's", test_split_matches_trainer);
    if (ok && craft_xgb_available())
        ok = CU_add_test(s, "XGBoost on a separable problem", test_xgboost) != NULL;
    else if (ok)
        fprintf(stderr, "note: this build has no libxgboost; the XGBoost test is not run\n");
    if (!ok) {
        CU_cleanup_registry();
        return 1;
    }
    int rc = run_suites();
    craft_model_free(tiny);
    unlink(labelled_path);
    return rc;
}
