/* craft_cuda_loader.c: the CUDA interface in a build with the CUDA engine.
 *
 * The engine itself lives in a module (libcraft_cuda_gpu.so) loaded on first
 * use, so that craft and craftdesk start, and use no memory for cuBLAS, on
 * machines without CUDA libraries or a GPU; there every call says why it cannot
 * run. The module is looked for at $CRAFT_CUDA_MODULE, then where it is
 * installed, then in the build tree. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craft_cuda.h"

typedef struct {
    int (*available)(char *name, size_t n);
    int (*device_info)(craft_cuda_info *info, craft_error *err);
    int (*engine_new)(craft_cuda_engine **out, const craft_model *m, int max_batch, int precision, craft_error *err);
    void (*engine_free)(craft_cuda_engine *e);
    int (*engine_chunk)(const craft_cuda_engine *e);
    int (*engine_run)(craft_cuda_engine *e, const craft_batch *batch, const craft_request *req, int n_req,
                      craft_result *results, craft_error *err);
    int (*route_select)(const float *U, int n, int r, int k, int *idx, craft_error *err);
} cuda_api;

static cuda_api api;
static int api_ok;
static char why[600];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    const char *paths[3] = {getenv("CRAFT_CUDA_MODULE"), CRAFT_CUDA_MODULE_INSTALL, CRAFT_CUDA_MODULE_BUILD};
    void *h = NULL;
    snprintf(why, sizeof why, "the CUDA engine module is not installed");
    for (int i = 0; i < 3 && !h; i++) {
        if (!paths[i] || !paths[i][0])
            continue;
        h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
        if (!h && i == 0) /* an explicit path that fails is the answer */
            break;
        if (!h) {
            const char *e = dlerror();
            /* a module that exists but cannot load (no libcudart, say) explains itself */
            if (e && !strstr(e, "No such file"))
                snprintf(why, sizeof why, "the CUDA engine cannot load: %s", e);
        }
    }
    if (!h)
        return;
#define SYM(field, name)                                                                                             \
    if (!(*(void **)&api.field = dlsym(h, name))) {                                                                  \
        snprintf(why, sizeof why, "the CUDA engine module lacks %s", name);                                          \
        return;                                                                                                      \
    }
    SYM(available, "craft_cuda_available");
    SYM(device_info, "craft_cuda_device_info");
    SYM(engine_new, "craft_cuda_engine_new");
    SYM(engine_free, "craft_cuda_engine_free");
    SYM(engine_chunk, "craft_cuda_engine_chunk");
    SYM(engine_run, "craft_cuda_engine_run");
    SYM(route_select, "craft_cuda_route_select");
#undef SYM
    api_ok = 1;
}

static int ready(void)
{
    pthread_once(&once, load);
    return api_ok;
}

int craft_cuda_available(char *name, size_t n)
{
    if (ready())
        return api.available(name, n);
    if (name && n)
        snprintf(name, n, "%s", why);
    return 0;
}

int craft_cuda_device_info(craft_cuda_info *info, craft_error *err)
{
    return ready() ? api.device_info(info, err) : craft_fail(err, CRAFT_EUNSUPPORTED, "%s", why);
}

int craft_cuda_engine_new(craft_cuda_engine **out, const craft_model *m, int max_batch, int precision,
                          craft_error *err)
{
    *out = NULL;
    return ready() ? api.engine_new(out, m, max_batch, precision, err) : craft_fail(err, CRAFT_EUNSUPPORTED, "%s", why);
}

void craft_cuda_engine_free(craft_cuda_engine *e)
{
    if (e && ready())
        api.engine_free(e);
}

int craft_cuda_engine_chunk(const craft_cuda_engine *e) { return e && ready() ? api.engine_chunk(e) : 0; }

int craft_cuda_engine_run(craft_cuda_engine *e, const craft_batch *batch, const craft_request *req, int n_req,
                          craft_result *results, craft_error *err)
{
    return ready() ? api.engine_run(e, batch, req, n_req, results, err)
                   : craft_fail(err, CRAFT_EUNSUPPORTED, "%s", why);
}

int craft_cuda_route_select(const float *U, int n, int r, int k, int *idx, craft_error *err)
{
    return ready() ? api.route_select(U, n, r, k, idx, err) : craft_fail(err, CRAFT_EUNSUPPORTED, "%s", why);
}
