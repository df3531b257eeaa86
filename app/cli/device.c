/* device.c: the CPU is the reference and the fallback; CUDA is used where built and present. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "craft_cuda.h"
#include "device.h"

int cli_pick_device(const char *cmd, const char *requested, const char **chosen)
{
    if (!requested || !strcmp(requested, "cpu")) {
        *chosen = "cpu";
        return 0;
    }
    if (strcmp(requested, "cuda") && strcmp(requested, "auto"))
        return cli_usage(cmd, "--device must be cpu, cuda or auto, got \"%s\"", requested);
    /* Only these commands have a CUDA engine so far; the others compute on the CPU. */
    const int has_cuda_path = !strcmp(cmd, "score") || !strcmp(cmd, "bench");
    char why[256];
    if (!has_cuda_path)
        snprintf(why, sizeof why, "craft %s has no GPU implementation yet", cmd);
    else if (craft_cuda_available(why, sizeof why)) {
        *chosen = "cuda";
        return 0;
    }
    if (!strcmp(requested, "cuda")) {
        fprintf(stderr, "craft %s: --device cuda: %s\n", cmd, why);
        return EXIT_UNAVAIL;
    }
    fprintf(stderr, "craft %s: %s; using the CPU\n", cmd, why);
    *chosen = "cpu";
    return 0;
}

int cli_pick_precision(const char *cmd, const char *requested, const char *device, int *precision)
{
    int p = craft_precision_parse(requested);
    if (p < 0)
        return cli_usage(cmd, "--precision must be fp32 or fast, got \"%s\"", requested);
    if (p == CRAFT_PRECISION_FAST && strcmp(device, "cuda")) {
        fprintf(stderr, "craft %s: --precision fast is for the GPU; the CPU computes in fp32\n", cmd);
        p = CRAFT_PRECISION_FP32;
    }
    *precision = p;
    return 0;
}

static int cuda_create(void **engine, const craft_model *m, int max_batch, int threads, const void *user,
                       craft_error *err)
{
    (void)threads; /* the GPU engine's host side is one thread */
    return craft_cuda_engine_new((craft_cuda_engine **)engine, m, max_batch, *(const int *)user, err);
}

static int cuda_run(void *engine, const craft_batch *b, const craft_request *req, int n_req, craft_result *results,
                    craft_error *err)
{
    return craft_cuda_engine_run(engine, b, req, n_req, results, err);
}

static void cuda_destroy(void *engine) { craft_cuda_engine_free(engine); }

const craft_engine_ops *cli_engine_ops(const char *device, int precision)
{
    static const int precisions[2] = {CRAFT_PRECISION_FP32, CRAFT_PRECISION_FAST};
    static const craft_engine_ops cuda_ops[2] = {{cuda_create, cuda_run, cuda_destroy, &precisions[0]},
                                                 {cuda_create, cuda_run, cuda_destroy, &precisions[1]}};
    if (strcmp(device, "cuda"))
        return &craft_cpu_engine_ops;
    return &cuda_ops[precision == CRAFT_PRECISION_FAST];
}
