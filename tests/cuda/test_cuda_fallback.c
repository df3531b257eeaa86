/* The CUDA interface in every build: with no usable GPU (or no CUDA in the build)
 * every call says why and the CLI falls back or refuses cleanly; with one, the
 * GPU is described. Also the flop count that the bench reports. Runs everywhere. */
#include <sys/wait.h>

#include "craft_cuda.h"
#include "cuda_test_util.h"

static int have_gpu;
static char gpu_why[256];

static void test_available_or_reason(void)
{
    CU_ASSERT(strlen(gpu_why) > 0);
    craft_model *m = NULL;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture("tiny-multilabel.safetensors"), &err), CRAFT_OK);
    craft_cuda_engine *e = (craft_cuda_engine *)0x1;
    int rc = craft_cuda_engine_new(&e, m, 8, CRAFT_PRECISION_FP32, &err);
    if (have_gpu) {
        CU_ASSERT_EQUAL(rc, CRAFT_OK);
        CU_ASSERT(craft_cuda_engine_chunk(e) >= 1 && craft_cuda_engine_chunk(e) <= 8);
        craft_cuda_info info;
        CU_ASSERT_EQUAL(craft_cuda_device_info(&info, &err), CRAFT_OK);
        CU_ASSERT(info.sms > 0 && info.peak_fp32_tflops > 0 && info.major >= 8);
        printf("\n  GPU: %s, %d SMs, %.2f GHz, FP32 peak %.1f TFLOP/s\n", info.name, info.sms, info.clock_ghz,
               info.peak_fp32_tflops);
    } else {
        CU_ASSERT_EQUAL(rc, CRAFT_EUNSUPPORTED);
        CU_ASSERT_PTR_NULL(e);
        CU_ASSERT_STRING_EQUAL(err.msg, gpu_why);
        int idx[4];
        float U[4] = {1, 2, 3, 4};
        CU_ASSERT_EQUAL(craft_cuda_route_select(U, 2, 2, 1, idx, &err), CRAFT_EUNSUPPORTED);
        craft_cuda_info info;
        CU_ASSERT_EQUAL(craft_cuda_device_info(&info, &err), CRAFT_EUNSUPPORTED);
        printf("\n  no GPU: %s\n", gpu_why);
    }
    craft_cuda_engine_free(have_gpu ? e : NULL);
    craft_model_free(m);
}

static void test_precision_names(void)
{
    CU_ASSERT_EQUAL(craft_precision_parse(NULL), CRAFT_PRECISION_FP32);
    CU_ASSERT_EQUAL(craft_precision_parse("fp32"), CRAFT_PRECISION_FP32);
    CU_ASSERT_EQUAL(craft_precision_parse("fast"), CRAFT_PRECISION_FAST);
    CU_ASSERT_EQUAL(craft_precision_parse("bf16"), -1);
    CU_ASSERT_STRING_EQUAL(craft_precision_name(CRAFT_PRECISION_FAST), "fast");
}

/* The production shape needs about 0.35 GFLOP per order (issue 5); explaining adds the CMIS reruns. */
static void test_flops_production(void)
{
    craft_model *m = random_model(&production_shape, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    double f = craft_flops_per_order(&m->cfg, 0), fx = craft_flops_per_order(&m->cfg, 1);
    printf("\n  production shape: %.4f GFLOP per order, %.4f explained\n", f * 1e-9, fx * 1e-9);
    CU_ASSERT(f > 0.30e9 && f < 0.40e9);
    CU_ASSERT(fx > f && fx < 1.05 * f);
    craft_model_free(m);
}

/* Runs the craft CLI; returns its exit status, stdout lines and stderr lines. */
static int run_cli(const char *args, int *out_lines, int *err_lines, char *err_text, size_t cap)
{
    const char *bdir = getenv("CRAFT_BUILD");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/app/cli/craft %s > cuda_cli.out 2> cuda_cli.err", bdir ? bdir : ".", args);
    int st = system(cmd);
    size_t n;
    char *o = (char *)read_all("cuda_cli.out", &n), *e = (char *)read_all("cuda_cli.err", &n);
    *out_lines = *err_lines = 0;
    for (char *p = o; p && *p; p++)
        *out_lines += *p == '\n';
    for (char *p = e; p && *p; p++)
        *err_lines += *p == '\n';
    snprintf(err_text, cap, "%s", e ? e : "");
    free(o);
    free(e);
    remove("cuda_cli.out");
    remove("cuda_cli.err");
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_devices(void)
{
    char args[1024], err[2048];
    int out, errl;
    snprintf(args, sizeof args, "score --model %s --input %s --device cuda", fixture("tiny-multilabel.safetensors"),
             fixture("tiny-multilabel.orders.jsonl"));
    int st = run_cli(args, &out, &errl, err, sizeof err);
    if (have_gpu) {
        CU_ASSERT_EQUAL(st, 0);
        CU_ASSERT_EQUAL(out, 24);
    } else {
        CU_ASSERT_EQUAL(st, 69);
        CU_ASSERT_EQUAL(out, 0);
        CU_ASSERT_EQUAL(errl, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "--device cuda"));
    }
    snprintf(args, sizeof args, "score --model %s --input %s --device auto", fixture("tiny-multilabel.safetensors"),
             fixture("tiny-multilabel.orders.jsonl"));
    st = run_cli(args, &out, &errl, err, sizeof err);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL(out, 24);
    CU_ASSERT_EQUAL(errl, have_gpu ? 0 : 1);
    if (!have_gpu)
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "using the CPU"));
    st = run_cli("score --model x --input y --device tpu", &out, &errl, err, sizeof err);
    CU_ASSERT_EQUAL(st, 64);
    st = run_cli("bench --device cpu --precision bf16", &out, &errl, err, sizeof err);
    CU_ASSERT_EQUAL(st, 64);
}

int main(void)
{
    have_gpu = craft_cuda_available(gpu_why, sizeof gpu_why);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cuda_fallback", NULL, NULL);
    if (!s || !CU_add_test(s, "available or a reason", test_available_or_reason) ||
        !CU_add_test(s, "precision names", test_precision_names) ||
        !CU_add_test(s, "flops of the production shape", test_flops_production) ||
        !CU_add_test(s, "CLI --device cpu|cuda|auto", test_cli_devices)) {
        CU_cleanup_registry();
        return 1;
    }
    return run_suites();
}
