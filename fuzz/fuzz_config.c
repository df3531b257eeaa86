/* libFuzzer target: the craft.config parser and its serializer (which must round-trip). */
#include <stdlib.h>
#include <string.h>

#include "craft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    craft_config cfg, again;
    craft_error err;
    if (craft_config_parse(&cfg, (const char *)data, size, &err) != CRAFT_OK)
        return 0;
    char *json = craft_config_to_json(&cfg);
    if (json) {
        if (craft_config_parse(&again, json, strlen(json), &err) != CRAFT_OK)
            __builtin_trap(); /* what we write, we must read */
        craft_config_free(&again);
        free(json);
    }
    craft_layout L;
    if (craft_layout_build(&L, &cfg, 1, &err) == CRAFT_OK)
        craft_layout_free(&L);
    craft_config_free(&cfg);
    return 0;
}
