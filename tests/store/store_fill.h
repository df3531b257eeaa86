/* store_fill.h: a test store made the way a user makes one: import a file of
 * orders (the fixture's, copied under new ids), then score it with a model file
 * (for the queue and UI suites). */
#ifndef CRAFT_STORE_FILL_H
#define CRAFT_STORE_FILL_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* Writes every order of the JSONL file `in` `copies` times to `out`, copy c of its
 * i-th line named PREFIX-ii-ccc (identical inputs: tied scores). 0, or -1 after
 * printing what failed. */
static inline int write_order_copies(const char *in, const char *out, int copies, const char *prefix)
{
    FILE *f = fopen(in, "r"), *g = f ? fopen(out, "w") : NULL;
    int rc = f && g ? 0 : -1;
    static char line[1 << 16];
    for (int i = 0; !rc && fgets(line, sizeof line, f); i++) {
        size_t len = strlen(line);
        if (len + 1 == sizeof line && line[len - 1] != '\n') {
            rc = -1; /* longer than the buffer */
            break;
        }
        if (strspn(line, " \t\r\n") == len)
            continue;
        for (int c = 0; c < copies && !rc; c++) {
            cJSON *o = cJSON_Parse(line);
            char id[64], *s = NULL;
            snprintf(id, sizeof id, "%s-%02d-%03d", prefix, i, c);
            rc = o && cJSON_ReplaceItemInObject(o, "order_id", cJSON_CreateString(id)) &&
                         (s = cJSON_PrintUnformatted(o)) && fprintf(g, "%s\n", s) > 0 ? 0 : -1;
            free(s);
            cJSON_Delete(o);
        }
    }
    if (f)
        fclose(f);
    if (g && fclose(g))
        rc = -1;
    if (rc)
        fprintf(stderr, "copying the orders of %s into %s failed\n", in, out);
    return rc;
}

/* Creates the store `db` from `orders` and scores it with the model file `model`
 * (options `so`). 0, or -1 after printing what failed. */
static inline int make_scored_store(const char *db, const char *orders, const char *model,
                                    const craft_store_score_options *so)
{
    craft_store *s = NULL;
    craft_error err = {0};
    craft_import_options io = {0};
    craft_import_stats is = {0};
    craft_model *m = NULL;
    craft_store_score_stats ss = {0};
    const char *paths[] = {orders};
    int rc = craft_store_open(&s, db, CRAFT_STORE_CREATE, &err) || craft_store_import(s, paths, 1, &io, &is, &err) ||
             craft_model_load(&m, model, &err) || craft_store_score(s, m, model, so, &ss, &err);
    if (rc)
        fprintf(stderr, "making the store %s: %s\n", db, err.msg);
    if (m)
        craft_model_free(m);
    if (s)
        craft_store_close(s);
    return rc ? -1 : 0;
}

#endif
