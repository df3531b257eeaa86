/* libFuzzer target: the safetensors loader and everything it validates. */
#include <stddef.h>
#include <stdint.h>

#include "craft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    craft_model *m = NULL;
    craft_error err;
    if (craft_model_load_memory(&m, data, size, "fuzz", &err) == CRAFT_OK) {
        /* a model that loads must also run */
        craft_engine *e = NULL;
        craft_batch b;
        craft_result r;
        craft_request req = {0, 1, 1, 0};
        if (craft_batch_init(&b, &m->cfg, 2, &err) == CRAFT_OK) {
            b.n = 2;
            if (craft_result_init(&r, &m->cfg, 2, &req, &err) == CRAFT_OK) {
                if (m->cfg.modalities[m->cfg.backbone].kind == CRAFT_TABULAR &&
                    craft_engine_new(&e, m, 2, 1, &err) == CRAFT_OK) {
                    craft_engine_run(e, &b, &req, 1, &r, &err);
                    craft_engine_free(e);
                }
                craft_result_free(&r);
            }
            craft_batch_free(&b);
        }
        craft_model_free(m);
    }
    return 0;
}
