/* The engine's layers on hand-checked inputs: top-k ties, binning, tanh, LayerNorm. */
#include <math.h>

#include "ops.h"
#include "test_util.h"

static void test_topk_ties(void)
{
    float s[40], best[8];
    int idx[8];
    for (int i = 0; i < 40; i++)
        s[i] = (float)(i % 5); /* 4 appears at 4, 9, 14, ... */
    topk_select(idx, best, s, 40, 3);
    /* the three largest are all 4: ties go to the smaller indices */
    CU_ASSERT_EQUAL(idx[0], 4);
    CU_ASSERT_EQUAL(idx[1], 9);
    CU_ASSERT_EQUAL(idx[2], 14);
    s[37] = 9.0f;
    topk_select(idx, best, s, 40, 3);
    CU_ASSERT_EQUAL(idx[0], 37);
    CU_ASSERT_EQUAL(idx[1], 4);
    CU_ASSERT_EQUAL(idx[2], 9);
    /* k = n selects everything */
    topk_select(idx, best, s, 5, 5);
    int seen = 0;
    for (int i = 0; i < 5; i++)
        seen |= 1 << idx[i];
    CU_ASSERT_EQUAL(seen, 31);
}

static void test_binning(void)
{
    /* nb = 4: edges min, q1, q2, q3, max with a repeated edge */
    const float E[5] = {-1.0f, 0.0f, 0.0f, 2.0f, 4.0f};
    int b;
    float rr;
    craft_bin_numeric(E, 4, NAN, &b, &rr);
    CU_ASSERT(b == 0 && rr == 0.0f);
    craft_bin_numeric(E, 4, -5.0f, &b, &rr); /* below the minimum: bin 1, clamped */
    CU_ASSERT(b == 1 && rr == 0.0f);
    craft_bin_numeric(E, 4, -0.5f, &b, &rr);
    CU_ASSERT(b == 1 && fabsf(rr - 0.5f) < 1e-7f);
    craft_bin_numeric(E, 4, 0.0f, &b, &rr); /* on the repeated edge: past both */
    CU_ASSERT(b == 3 && rr == 0.0f);
    craft_bin_numeric(E, 4, 1.0f, &b, &rr);
    CU_ASSERT(b == 3 && fabsf(rr - 0.5f) < 1e-7f);
    craft_bin_numeric(E, 4, 2.0f, &b, &rr);
    CU_ASSERT(b == 4 && rr == 0.0f);
    craft_bin_numeric(E, 4, 9.0f, &b, &rr); /* above the maximum: last bin, clamped */
    CU_ASSERT(b == 4 && rr == 1.0f);
    const float flat[5] = {1, 1, 1, 1, 1};
    craft_bin_numeric(flat, 4, 1.0f, &b, &rr); /* zero-width bin: rr = 0.5 */
    CU_ASSERT(b == 4 && rr == 0.5f);
}

static void test_tanh_accuracy(void)
{
    double worst = 0;
    for (int i = -200000; i <= 200000; i++) {
        float x = i * 1e-4f;
        double want = tanh((double)x), got = craft_tanhf(x);
        double err = fabs(got - want);
        if (err > worst)
            worst = err;
    }
    CU_ASSERT(worst < 1e-6);
    CU_ASSERT_EQUAL(craft_tanhf(1e30f), 1.0f);
    CU_ASSERT_EQUAL(craft_tanhf(-1e30f), -1.0f);
    float out[3], in[3] = {0.0f, 1.0f, -3.0f};
    gelu_forward(out, in, 3);
    CU_ASSERT_DOUBLE_EQUAL(out[0], 0.0, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(out[1], 0.841192, 1e-5); /* 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) */
    CU_ASSERT_DOUBLE_EQUAL(out[2], -0.003637, 1e-5);
}

static void test_layernorm(void)
{
    float w[4] = {1, 1, 2, 1}, b[4] = {0, 0, 0, 1}, x[4] = {1, 2, 3, 4}, y[4], mean, rstd;
    craft_norm ln = {w, b, 4};
    layernorm_forward(y, &mean, &rstd, x, &ln, 1, 4);
    CU_ASSERT_DOUBLE_EQUAL(mean, 2.5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(rstd, 1.0 / sqrt(1.25 + 1e-5), 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(y[0], -1.5 / sqrt(1.25 + 1e-5), 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(y[2], 2 * 0.5 / sqrt(1.25 + 1e-5), 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(y[3], 1 + 1.5 / sqrt(1.25 + 1e-5), 1e-5);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("ops", NULL, NULL);
    if (!s || !CU_add_test(s, "top-k ties go to the smaller index", test_topk_ties) ||
        !CU_add_test(s, "numeric binning", test_binning) || !CU_add_test(s, "tanh and GELU", test_tanh_accuracy) ||
        !CU_add_test(s, "LayerNorm", test_layernorm))
        return 1;
    return run_suites();
}
