/* eval_util.h: helpers of the eval suites: a labelled copy of a fixture's orders. */
#ifndef CRAFT_EVAL_UTIL_H
#define CRAFT_EVAL_UTIL_H

#include <cjson/cJSON.h>

#include "../engine/test_util.h"

/* Writes the orders of fixture `name` to `path` with labels D1..D<classes> set by
 * label(i, k) (the fixtures carry none). 0 when exactly `expect` orders were written. */
static inline int write_labelled_copy(const char *name, const char *path, int classes, int expect,
                                      int (*label)(int i, int k))
{
    FILE *in = fopen(fixture(name), "r");
    FILE *out = in ? fopen(path, "w") : NULL;
    if (!in || !out) {
        if (in)
            fclose(in);
        return -1;
    }
    char line[1 << 16];
    int i = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, in)) {
        cJSON *o = cJSON_Parse(line);
        if (!o) {
            rc = -1;
            break;
        }
        cJSON *labels = cJSON_AddObjectToObject(o, "labels");
        for (int k = 0; k < classes; k++) {
            char cls[16];
            snprintf(cls, sizeof cls, "D%d", k + 1);
            cJSON_AddNumberToObject(labels, cls, label(i, k));
        }
        char *text = cJSON_PrintUnformatted(o);
        fprintf(out, "%s\n", text);
        free(text);
        cJSON_Delete(o);
        i++;
    }
    fclose(in);
    return fclose(out) == 0 && !rc && i == expect ? 0 : -1;
}

#endif
