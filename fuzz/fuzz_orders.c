/* libFuzzer target: the JSON Lines and CSV readers (FUZZ_FORMAT=csv picks CSV),
 * against the tiny fixture model's config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orders.h"

static craft_model *model;
static char path[64];

static void remove_input(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    craft_error err;
    const char *fx = getenv("CRAFT_FIXTURES");
    char mp[1024];
    snprintf(mp, sizeof mp, "%s/tiny-multilabel.safetensors", fx ? fx : "tests/fixtures");
    if (craft_model_load(&model, mp, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    const char *fmt = getenv("FUZZ_FORMAT");
    snprintf(path, sizeof path, "/tmp/craft-fuzz-%d.%s", (int)getpid(), fmt && !strcmp(fmt, "csv") ? "csv" : "jsonl");
    atexit(remove_input);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    craft_reader *r;
    craft_error err;
    if (craft_reader_open(&r, path, CRAFT_FORMAT_AUTO, &model->cfg, &err))
        return 0;
    craft_reader_set_max_line(r, 1 << 16);
    craft_order_batch ob;
    if (craft_order_batch_init(&ob, &model->cfg, 3, 1, &err) == CRAFT_OK) {
        int eof = 0, rounds = 0;
        while (!eof && rounds++ < 10000) {
            craft_order_batch_reset(&ob, &model->cfg);
            craft_reader_next(r, &ob, &eof, &err); /* errors are expected: go on past them */
        }
        craft_order_batch_free(&ob);
    }
    craft_reader_close(r);
    return 0;
}
