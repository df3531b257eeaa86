/* store_fill.h: a test store made the way a user makes one: import a file of
 * orders, then score it with a model file (for the queue and UI suites). */
#ifndef CRAFT_STORE_FILL_H
#define CRAFT_STORE_FILL_H

#include <stdio.h>

#include "store.h"

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
