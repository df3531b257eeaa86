/* libFuzzer target: the case store's own import parser (app/store/import.c).
 *
 * Each input is imported into a fresh temporary store (copied from an empty
 * template made once, on /dev/shm when it exists, so fsyncs cost nothing). The
 * first byte picks the mode: bit 0 CSV instead of JSONL, bit 1 --skip-bad,
 * bit 2 --replace. Besides crashes, leaks and hangs it checks the import's
 * promise: an all-or-nothing import that fails stores no order, and one that
 * succeeds stores exactly the count it reports. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static char dir[256], template_db[300], db[300], input_jsonl[300], input_csv[300];

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char b[65536];
    ssize_t n;
    int rc = in >= 0 && out >= 0 ? 0 : -1;
    while (!rc && (n = read(in, b, sizeof b)) > 0)
        rc = write(out, b, (size_t)n) == n ? 0 : -1;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

static void remove_db(const char *path)
{
    char p[320];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static void remove_dir(void)
{
    char p[320];
    remove_db(template_db);
    remove_db(db);
    unlink(input_jsonl);
    unlink(input_csv);
    snprintf(p, sizeof p, "%s", dir);
    rmdir(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "%s/craft-fuzz-import-XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(template_db, sizeof template_db, "%s/template.db", dir);
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(input_jsonl, sizeof input_jsonl, "%s/in.jsonl", dir);
    snprintf(input_csv, sizeof input_csv, "%s/in.csv", dir);
    craft_store *s;
    craft_error err;
    if (craft_store_open(&s, template_db, CRAFT_STORE_CREATE, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    craft_store_close(s); /* closing checkpoints the WAL: the template is one file */
    atexit(remove_dir);
    return 0;
}

static uint64_t stored_orders(craft_store *s)
{
    craft_dataset_info *d = NULL;
    int n = 0;
    craft_error err;
    uint64_t total = 0;
    if (craft_store_datasets(s, &d, &n, &err))
        abort();
    for (int i = 0; i < n; i++)
        total += (uint64_t)d[i].n_orders;
    craft_dataset_info_free(d, n);
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    const char *input = mode & 1 ? input_csv : input_jsonl;
    FILE *f = fopen(input, "wb");
    if (!f)
        return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    remove_db(db);
    if (copy_file(template_db, db))
        abort();
    craft_store *s;
    craft_error err;
    if (craft_store_open(&s, db, 0, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    craft_import_options o = {0};
    o.skip_bad = (mode >> 1) & 1;
    o.replace = (mode >> 2) & 1;
    o.format = CRAFT_FORMAT_AUTO;
    craft_import_stats st = {0};
    const char *paths[1] = {input};
    int rc = craft_store_import(s, paths, 1, &o, &st, &err);
    uint64_t n = stored_orders(s);
    if (rc && n != 0) {
        fprintf(stderr, "failed import (%s) left %llu orders\n", err.msg, (unsigned long long)n);
        abort();
    }
    if (!rc && n != st.stored - st.replaced) {
        fprintf(stderr, "import reported %llu stored (%llu replaced) but the store has %llu\n",
                (unsigned long long)st.stored, (unsigned long long)st.replaced, (unsigned long long)n);
        abort();
    }
    craft_store_close(s);
    return 0;
}
