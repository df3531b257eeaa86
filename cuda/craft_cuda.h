/* craft_cuda.h: the CRAFT engine on NVIDIA GPUs (CUDA + cuBLAS), the same
 * computation as the CPU engine of craft.h (docs/CUDA.md).
 *
 * The interface mirrors craft_engine_*: an engine holds a model (not owned) and
 * device workspace; craft_cuda_engine_run fills the same craft_result arrays.
 * Every build has these functions. A build without the CUDA toolkit, or a
 * machine without a usable GPU, answers craft_cuda_available() with 0 and a
 * reason, and craft_cuda_engine_new() with CRAFT_EUNSUPPORTED and that reason. */
#ifndef CRAFT_CUDA_H
#define CRAFT_CUDA_H

#include <stddef.h>

#include "craft.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CRAFT_PRECISION_FP32 = 0, /* float32 everywhere (cuBLAS default math): agrees with the CPU */
    CRAFT_PRECISION_FAST = 1  /* matrix products in TF32 on tensor cores; opt-in only */
} craft_precision;

/* Parses "fp32" or "fast"; returns -1 for anything else. */
int craft_precision_parse(const char *s);
const char *craft_precision_name(int precision);

/* 1 when this build has the CUDA engine and a GPU it can run on: name gets the
 * GPU's name. 0 otherwise: name gets the reason (no CUDA in this build, no
 * driver, no GPU, a GPU older than compute capability 8.0). */
int craft_cuda_available(char *name, size_t n);

typedef struct {
    char name[256];
    int major, minor;       /* compute capability */
    int sms;                /* streaming multiprocessors */
    double clock_ghz;       /* peak SM clock the driver reports */
    double mem_gib;         /* global memory */
    double peak_fp32_tflops; /* SMs x FP32 lanes x 2 x clock: the CUDA-core peak */
    double peak_tf32_tflops; /* dense TF32 tensor-core peak, 0 where this code does not know it */
} craft_cuda_info;

/* Describes the GPU the engine uses (device 0). */
int craft_cuda_device_info(craft_cuda_info *info, craft_error *err);

typedef struct craft_cuda_engine craft_cuda_engine;

/* An engine for batches of up to max_batch orders. Device memory is bounded: a
 * larger batch than fits is run in chunks of craft_cuda_engine_chunk() orders. */
int craft_cuda_engine_new(craft_cuda_engine **out, const craft_model *m, int max_batch, int precision,
                          craft_error *err);
void craft_cuda_engine_free(craft_cuda_engine *e);
/* Orders per device pass (<= max_batch). */
int craft_cuda_engine_chunk(const craft_cuda_engine *e);
/* Runs n_req requests (modality subsets) over one batch, sharing the backbone
 * pass; results[i] made by craft_result_init with a cap >= batch->n. */
int craft_cuda_engine_run(craft_cuda_engine *e, const craft_batch *batch, const craft_request *req, int n_req,
                          craft_result *results, craft_error *err);

/* The routing selection kernel on its own (for tests): U [n, r] row-major, the
 * scores S = U U^T / sqrt(r); idx [n, min(k, n)] gets each row's selected keys in
 * descending score, ties to the smaller index (the CPU's topk_select order). */
int craft_cuda_route_select(const float *U, int n, int r, int k, int *idx, craft_error *err);

/* Floating-point operations of one order's forward pass as the engines compute
 * it (folded single-query attentions), for cfg's shape with every modality
 * present; explain adds the CMIS reruns. Used to report achieved TFLOP/s. */
double craft_flops_per_order(const craft_config *cfg, int explain);

#ifdef __cplusplus
}
#endif
#endif
