/* train_util.h: helpers of the trainer's CUnit suites: fixture paths, reading
 * a fixture's orders into one batch, and reading a gradients file. */
#ifndef CRAFT_TRAIN_UTIL_H
#define CRAFT_TRAIN_UTIL_H

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/test_util.h"
#include "craft.h"
#include "orders.h"
#include "train.h"

/* Every order of a fixture file in one reader batch (cap 64). 0 on success. */
static inline int read_fixture_orders(craft_order_batch *ob, const craft_config *cfg, const char *name)
{
    craft_error err;
    craft_reader *rd;
    int eof = 0;
    if (craft_reader_open(&rd, fixture(name), CRAFT_FORMAT_AUTO, cfg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    int rc = craft_order_batch_init(ob, cfg, 64, 0, &err);
    if (!rc)
        rc = craft_reader_next(rd, ob, &eof, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    craft_reader_close(rd);
    return rc;
}

/* A safetensors file of float tensors: the header's JSON and the data. */
typedef struct {
    unsigned char *file;
    size_t size;
    cJSON *header;
    const unsigned char *data;
} st_file;

static inline int st_open(st_file *s, const char *path)
{
    memset(s, 0, sizeof *s);
    if (!(s->file = read_all(path, &s->size)) || s->size < 8)
        return -1;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | s->file[i];
    if (hl > s->size - 8)
        return -1;
    s->header = cJSON_ParseWithLength((const char *)s->file + 8, (size_t)hl);
    s->data = s->file + 8 + hl;
    return s->header ? 0 : -1;
}

/* The tensor called name, and its element count; NULL when absent. */
static inline const float *st_tensor(const st_file *s, const char *name, size_t *count)
{
    cJSON *t = cJSON_GetObjectItemCaseSensitive(s->header, name);
    cJSON *off = t ? cJSON_GetObjectItemCaseSensitive(t, "data_offsets") : NULL;
    if (!off || cJSON_GetArraySize(off) != 2)
        return NULL;
    size_t a = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, b = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    *count = (b - a) / 4;
    return (const float *)(s->data + a);
}

static inline void st_close(st_file *s)
{
    cJSON_Delete(s->header);
    free(s->file);
}

/* Options without randomness: what the fixtures were made with. */
static inline craft_train_opts fixture_opts(void)
{
    craft_train_opts o = craft_train_defaults();
    o.dropout = 0.0f;
    o.modality_dropout = 0.0f;
    return o;
}

#endif
