/* craft_cuda_none.c: the CUDA interface in a build without the CUDA toolkit
 * (-Dcuda=disabled, or nvcc/cuBLAS not found). Every call says why it cannot
 * run; nothing pretends to compute. */
#include <stdio.h>

#include "craft_cuda.h"

static const char no_cuda[] = "this build of craft has no CUDA engine (configured without the CUDA toolkit)";

int craft_cuda_available(char *name, size_t n)
{
    if (name && n)
        snprintf(name, n, "%s", no_cuda);
    return 0;
}

int craft_cuda_device_info(craft_cuda_info *info, craft_error *err)
{
    (void)info;
    return craft_fail(err, CRAFT_EUNSUPPORTED, "%s", no_cuda);
}

int craft_cuda_engine_new(craft_cuda_engine **out, const craft_model *m, int max_batch, int precision,
                          craft_error *err)
{
    (void)m, (void)max_batch, (void)precision;
    *out = NULL;
    return craft_fail(err, CRAFT_EUNSUPPORTED, "%s", no_cuda);
}

void craft_cuda_engine_free(craft_cuda_engine *e) { (void)e; }

int craft_cuda_engine_chunk(const craft_cuda_engine *e)
{
    (void)e;
    return 0;
}

int craft_cuda_engine_run(craft_cuda_engine *e, const craft_batch *batch, const craft_request *req, int n_req,
                          craft_result *results, craft_error *err)
{
    (void)e, (void)batch, (void)req, (void)n_req, (void)results;
    return craft_fail(err, CRAFT_EUNSUPPORTED, "%s", no_cuda);
}

int craft_cuda_route_select(const float *U, int n, int r, int k, int *idx, craft_error *err)
{
    (void)U, (void)n, (void)r, (void)k, (void)idx;
    return craft_fail(err, CRAFT_EUNSUPPORTED, "%s", no_cuda);
}
