/* test_metrics.c: PR-AUC and ROC-AUC against values worked out by hand
 * (and agreeing with scikit-learn's average_precision_score / roc_auc_score). */
#include <CUnit/Basic.h>
#include <math.h>

#include "../engine/test_util.h"
#include "metrics.h"

static void test_pr_auc_hand(void)
{
    /* ranks: 0.9 (+), 0.8 (-), 0.7 (+), 0.1 (-): AP = (1/1 + 2/3) / 2 */
    float s[] = {0.9f, 0.8f, 0.7f, 0.1f}, y[] = {1, 0, 1, 0};
    CU_ASSERT_DOUBLE_EQUAL(craft_pr_auc(s, y, 4, 1), (1.0 + 2.0 / 3.0) / 2.0, 1e-12);
    /* ROC: positives above negatives: (0.9 > both) 2 + (0.7 > 0.1) 1 = 3 of 4 */
    CU_ASSERT_DOUBLE_EQUAL(craft_roc_auc(s, y, 4, 1), 0.75, 1e-12);
}

static void test_ties_and_unknown(void)
{
    /* all tied: AP = prevalence, ROC = 0.5; the NaN label is skipped */
    float s[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.2f}, y[] = {1, 0, 0, 1, NAN};
    CU_ASSERT_DOUBLE_EQUAL(craft_pr_auc(s, y, 5, 1), 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(craft_roc_auc(s, y, 5, 1), 0.5, 1e-12);
    /* sklearn: average_precision_score([1,0,1,1],[.3,.3,.9,.1]) = 0.8333... */
    float s2[] = {0.3f, 0.3f, 0.9f, 0.1f}, y2[] = {1, 0, 1, 1};
    CU_ASSERT_DOUBLE_EQUAL(craft_pr_auc(s2, y2, 4, 1), 1.0 / 3 * (1.0 + 2.0 / 3 + 3.0 / 4), 1e-12);
}

static void test_undefined_and_macro(void)
{
    float s[] = {0.1f, 0.9f, 0.2f, 0.8f, 0.3f, 0.7f}; /* [3, 2] */
    float y[] = {0, 1, 0, 1, 0, 1};                    /* class 0 has no positive */
    CU_ASSERT(isnan(craft_pr_auc(s, y, 3, 2)));
    CU_ASSERT(isnan(craft_roc_auc(s + 1, y + 1, 3, 2))); /* class 1 has no negative */
    CU_ASSERT_DOUBLE_EQUAL(craft_macro_pr_auc(s, y, 3, 2), 1.0, 1e-12);
    CU_ASSERT(isnan(craft_macro_roc_auc(s, y, 3, 2)));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    if (!s || !CU_add_test(s, "pr_auc by hand", test_pr_auc_hand) || !CU_add_test(s, "ties and unknown", test_ties_and_unknown) ||
        !CU_add_test(s, "undefined and macro", test_undefined_and_macro)) {
        CU_cleanup_registry();
        return 1;
    }
    return run_suites();
}
