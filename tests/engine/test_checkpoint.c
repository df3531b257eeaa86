/* Checkpoints: every malformed file gives one clear error naming the file and
 * the tensor, never a crash and never a partly loaded model; saving round-trips. */
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

#include "craft.h"
#include "test_util.h"

static unsigned char *orig;
static size_t orig_size, orig_hlen;

static int load_fixture(void)
{
    orig = read_all(fixture("tiny-multilabel.safetensors"), &orig_size);
    if (!orig)
        return -1;
    orig_hlen = 0;
    for (int i = 7; i >= 0; i--)
        orig_hlen = (orig_hlen << 8) | orig[i];
    return 0;
}

static int cleanup(void)
{
    free(orig);
    return 0;
}

/* A file with the fixture's data section and the header JSON given. */
static unsigned char *with_header(const char *hdr, size_t *size)
{
    size_t hlen = strlen(hdr), data = orig_size - 8 - orig_hlen;
    unsigned char *p = malloc(8 + hlen + data);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(p + 8, hdr, hlen);
    memcpy(p + 8 + hlen, orig + 8 + orig_hlen, data);
    *size = 8 + hlen + data;
    return p;
}

static cJSON *header(void) { return cJSON_ParseWithLength((const char *)orig + 8, orig_hlen); }

/* Loads bytes and expects failure with every fragment in the message. */
static void expect_refused(const unsigned char *bytes, size_t size, const char *frag1, const char *frag2)
{
    craft_model *m = (craft_model *)0x1;
    craft_error err = {0};
    int rc = craft_model_load_memory(&m, bytes, size, "bad.safetensors", &err);
    CU_ASSERT_NOT_EQUAL(rc, CRAFT_OK);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bad.safetensors"));
    if (frag1 && !strstr(err.msg, frag1)) {
        fprintf(stderr, "\n  message \"%s\" lacks \"%s\"\n", err.msg, frag1);
        CU_FAIL("message lacks the expected words");
    }
    if (frag2 && !strstr(err.msg, frag2)) {
        fprintf(stderr, "\n  message \"%s\" lacks \"%s\"\n", err.msg, frag2);
        CU_FAIL("message lacks the expected words");
    }
    if (rc == CRAFT_OK && m)
        craft_model_free(m);
}

static void expect_header_refused(cJSON *h, const char *frag1, const char *frag2)
{
    char *text = cJSON_PrintUnformatted(h);
    size_t size;
    unsigned char *bytes = with_header(text, &size);
    expect_refused(bytes, size, frag1, frag2);
    free(bytes);
    free(text);
    cJSON_Delete(h);
}

static void test_good_file_loads(void)
{
    craft_model *m;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_model_load_memory(&m, orig, orig_size, "good", &err), CRAFT_OK);
    CU_ASSERT_EQUAL(m->cfg.n_classes, 5);
    CU_ASSERT_EQUAL(m->layout.n, 84);
    CU_ASSERT_EQUAL(strlen(m->sha256), 64);
    craft_model_free(m);
}

static void test_truncated(void)
{
    size_t cuts[] = {0, 4, 7, 8, 8 + orig_hlen / 2, 8 + orig_hlen, orig_size - 4, orig_size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        expect_refused(orig, cuts[i], NULL, NULL);
    expect_refused(orig, 4, "too short", NULL);
    expect_refused(orig, orig_size - 1, "data_offsets", NULL);
}

static void test_header_longer_than_file(void)
{
    unsigned char *p = malloc(orig_size);
    memcpy(p, orig, orig_size);
    uint64_t big = orig_size; /* one more than fits */
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(big >> (8 * i));
    expect_refused(p, orig_size, "longer than the file", NULL);
    for (int i = 0; i < 8; i++)
        p[i] = 0xff; /* 2^64 - 1 */
    expect_refused(p, orig_size, "longer than the file", NULL);
    free(p);
}

static void test_bad_json(void)
{
    size_t size;
    unsigned char *p = with_header("{\"__metadata__\": {\"craft.config\": \"{}\"}, \"x\": [1, 2", &size);
    expect_refused(p, size, "not a JSON object", NULL);
    free(p);
    p = with_header("[1, 2, 3]", &size);
    expect_refused(p, size, "not a JSON object", NULL);
    free(p);
    /* metadata without a config: not a CRAFT model */
    cJSON *h = header();
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(h, "__metadata__"), "craft.config");
    expect_header_refused(h, "craft.config", NULL);
    /* a config that is not JSON */
    h = header();
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "__metadata__"), "craft.config", cJSON_CreateString("{oops"));
    expect_header_refused(h, "config", "not valid JSON");
}

static void test_wrong_dtype(void)
{
    cJSON *h = header();
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "pool.query"), "dtype", cJSON_CreateString("F16"));
    expect_header_refused(h, "pool.query", "F16");
}

static void test_wrong_shape(void)
{
    cJSON *h = header();
    cJSON *shape = cJSON_CreateIntArray((int[]){16, 4}, 2);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "head.fc2.weight"), "shape", shape);
    expect_header_refused(h, "head.fc2.weight", "[16, 4]");
}

static void test_overlapping_offsets(void)
{
    cJSON *h = header();
    cJSON *offs = cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "pool.k.bias"), "data_offsets"), 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "pool.query"), "data_offsets", offs);
    expect_header_refused(h, "overlap", "pool.");
}

static void test_offsets_out_of_range(void)
{
    cJSON *h = header();
    size_t data = orig_size - 8 - orig_hlen;
    cJSON *offs = cJSON_CreateArray();
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)data - 32));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)data + 32));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "pool.query"), "data_offsets", offs);
    expect_header_refused(h, "pool.query", "outside");
    h = header();
    offs = cJSON_CreateArray();
    cJSON_AddItemToArray(offs, cJSON_CreateNumber(1e300));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber(-5));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "pool.query"), "data_offsets", offs);
    expect_header_refused(h, "pool.query", NULL);
}

static void test_missing_and_unknown_tensor(void)
{
    cJSON *h = header();
    cJSON_DeleteItemFromObject(h, "cross.txt.gate.bias");
    expect_header_refused(h, "cross.txt.gate.bias", "missing");
    h = header();
    cJSON_AddItemToObject(h, "cross.audio.q.weight", cJSON_Duplicate(cJSON_GetObjectItem(h, "pool.query"), 1));
    expect_header_refused(h, "cross.audio.q.weight", "not part of");
}

static void set_config(cJSON *h, const char *from, const char *to)
{
    cJSON *meta = cJSON_GetObjectItem(h, "__metadata__");
    const char *cfg = cJSON_GetObjectItem(meta, "craft.config")->valuestring;
    const char *at = strstr(cfg, from);
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    size_t n = strlen(cfg) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - cfg), cfg, to, at + strlen(from));
    cJSON_ReplaceItemInObject(meta, "craft.config", cJSON_CreateString(out));
    free(out);
}

static void test_inconsistent_config(void)
{
    cJSON *h = header();
    set_config(h, "\"heads\": 2", "\"heads\": 3");
    expect_header_refused(h, "d_model 16", "heads 3");
    h = header();
    set_config(h, "\"D5\"", "\"D5\", \"D6\"");
    set_config(h, "0.015]", "0.015, 0.01]");
    expect_header_refused(h, "head.fc2", "the config needs [6");
    h = header();
    set_config(h, "\"backbone\": \"tab\"", "\"backbone\": \"audio\"");
    expect_header_refused(h, "backbone", NULL);
    h = header();
    set_config(h, "\"dim\": 10", "\"dim\": 11");
    expect_header_refused(h, "txt.proj.weight", "[16, 11]");
    h = header();
    set_config(h, "\"layers\": 2", "\"layers\": 1");
    expect_header_refused(h, "backbone.1.", "not part of");
    h = header();
    set_config(h, "\"version\": 1", "\"version\": 2");
    expect_header_refused(h, "version", NULL);
    h = header();
    set_config(h, "\"bins\": 8", "\"bins\": 1e9");
    expect_header_refused(h, "bins", NULL);
    h = header();
    set_config(h, "\"v0\", \"v1\", \"v2\"]", "\"v0\", \"v0\"]");
    expect_header_refused(h, "\"v0\" twice", NULL);
}

static void test_duplicate_tensor(void)
{
    const char *hdr = (const char *)orig + 8;
    char *text = malloc(orig_hlen + 200);
    /* repeat the first tensor entry: JSON with a duplicate key */
    const char *first = strstr(hdr, "\"backbone.0.attn.k.bias\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    const char *end = strchr(first, '}');
    size_t pre = (size_t)(end + 1 - hdr);
    snprintf(text, orig_hlen + 200, "%.*s, %.*s%.*s", (int)pre, hdr, (int)(end + 1 - first), first,
             (int)(orig_hlen - pre), hdr + pre);
    size_t size;
    unsigned char *p = with_header(text, &size);
    expect_refused(p, size, "backbone.0.attn.k.bias", "twice");
    free(p);
    free(text);
}

static void test_non_finite_values(void)
{
    cJSON *h = header();
    double begin = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "head.fc1.weight"), "data_offsets"), 0)->valuedouble;
    cJSON_Delete(h);
    unsigned char *p = malloc(orig_size);
    memcpy(p, orig, orig_size);
    float nan = NAN;
    memcpy(p + 8 + orig_hlen + (size_t)begin + 12, &nan, 4);
    expect_refused(p, orig_size, "head.fc1.weight", "NaN");
    float inf = INFINITY;
    memcpy(p + 8 + orig_hlen + (size_t)begin + 12, &inf, 4);
    expect_refused(p, orig_size, "head.fc1.weight", "infinite");
    free(p);
}

static void test_decreasing_edges(void)
{
    cJSON *h = header();
    double begin = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "tab.edges"), "data_offsets"), 0)->valuedouble;
    cJSON_Delete(h);
    unsigned char *p = malloc(orig_size);
    memcpy(p, orig, orig_size);
    /* feature 4 (num4, numeric): make edge 3 larger than edge 4 */
    float big = 1e6f;
    memcpy(p + 8 + orig_hlen + (size_t)begin + (4 * 9 + 3) * 4, &big, 4);
    expect_refused(p, orig_size, "tab.edges", "num4");
    free(p);
}

static void test_not_a_file(void)
{
    craft_model *m;
    craft_error err = {0};
    CU_ASSERT_EQUAL(craft_model_load(&m, "/nonexistent/model.safetensors", &err), CRAFT_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/model.safetensors"));
    CU_ASSERT_EQUAL(craft_model_load(&m, "/tmp", &err), CRAFT_EIO);
}

static void test_save_roundtrip(void)
{
    craft_model *m, *m2;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_model_load_memory(&m, orig, orig_size, "fixture", &err), CRAFT_OK);
    char path[] = "/tmp/craft-test-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(craft_model_save(m, path, "{\"craft.metrics\": {\"macro_pr_auc\": 0.5}}", &err), CRAFT_OK);
    char hex[65];
    CU_ASSERT_EQUAL(craft_sha256_file(path, hex, &err), CRAFT_OK);
    CU_ASSERT_STRING_EQUAL(hex, m->sha256);
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m2, path, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(m2->layout.total, m->layout.total);
    CU_ASSERT_EQUAL(memcmp(m2->params, m->params, sizeof(float) * m->layout.total), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(m2->metadata_json, "craft.metrics"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m2->metadata_json, "macro_pr_auc"));
    /* a file saved by us is a standard safetensors file: 8-aligned data, F32 tensors */
    size_t size;
    unsigned char *bytes = read_all(path, &size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | bytes[i];
    CU_ASSERT_EQUAL(hl % 8, 0);
    CU_ASSERT_EQUAL(size, 8 + hl + m->layout.n * 0 + craft_model_param_count(m) * 4);
    free(bytes);
    /* a write into a missing directory fails cleanly and leaves nothing behind */
    CU_ASSERT_EQUAL(craft_model_save(m, "/nonexistent-dir/x.safetensors", NULL, &err), CRAFT_EIO);
    unlink(path);
    craft_model_free(m2);
    craft_model_free(m);
}

/* A save removes the temporary files (PATH.tmp-PID-XXXXXX) that saves killed
 * between naming them and the rename left, when their process is gone; it keeps
 * a live process's, other models' and files that only look alike. */
static void test_save_sweeps_dead_temporaries(void)
{
    craft_model *m;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_model_load_memory(&m, orig, orig_size, "fixture", &err), CRAFT_OK);
    char dir[] = "/tmp/craft-sweep-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    CU_ASSERT_FATAL(dead > 0);
    waitpid(dead, NULL, 0); /* reaped: kill(dead, 0) now fails with ESRCH */
    char path[128], stale[160], live[160], other[160], alike[160];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    snprintf(stale, sizeof stale, "%s.tmp-%ld-Ab3dEf", path, (long)dead);
    snprintf(live, sizeof live, "%s.tmp-%ld-Ab3dEf", path, (long)getppid());
    snprintf(other, sizeof other, "%s/n.safetensors.tmp-%ld-Ab3dEf", dir, (long)dead);
    snprintf(alike, sizeof alike, "%s.tmp-%ld-Ab3dEfg", path, (long)dead);
    const char *const files[] = {stale, live, other, alike};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(write_all_file(files[i], "x", 1), 0);
    CU_ASSERT_EQUAL(craft_model_save(m, path, NULL, &err), CRAFT_OK);
    CU_ASSERT_NOT_EQUAL(access(stale, F_OK), 0);
    CU_ASSERT_EQUAL(access(live, F_OK), 0);
    CU_ASSERT_EQUAL(access(other, F_OK), 0);
    CU_ASSERT_EQUAL(access(alike, F_OK), 0);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    for (int i = 1; i < 4; i++)
        unlink(files[i]);
    unlink(path);
    CU_ASSERT_EQUAL(rmdir(dir), 0); /* nothing else was left in the folder */
    craft_model_free(m);
}

static void test_random_model_roundtrip(void)
{
    craft_model *m, *m2;
    craft_error err = {0};
    craft_model *base;
    CU_ASSERT_EQUAL_FATAL(craft_model_load_memory(&base, orig, orig_size, "fixture", &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_model_new(&m, &base->cfg, 1, 99, &err), CRAFT_OK);
    CU_ASSERT(m->has_supcma);
    char path[] = "/tmp/craft-test-XXXXXX";
    close(mkstemp(path));
    CU_ASSERT_EQUAL_FATAL(craft_model_save(m, path, NULL, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m2, path, &err), CRAFT_OK);
    CU_ASSERT(m2->has_supcma);
    CU_ASSERT_EQUAL(memcmp(m2->params, m->params, sizeof(float) * m->layout.total), 0);
    unlink(path);
    craft_model_free(m2);
    craft_model_free(m);
    craft_model_free(base);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("checkpoint", load_fixture, cleanup);
    if (!s || !CU_add_test(s, "the fixture loads", test_good_file_loads) ||
        !CU_add_test(s, "truncated files", test_truncated) ||
        !CU_add_test(s, "header longer than the file", test_header_longer_than_file) ||
        !CU_add_test(s, "bad JSON", test_bad_json) || !CU_add_test(s, "wrong dtype", test_wrong_dtype) ||
        !CU_add_test(s, "wrong shape", test_wrong_shape) ||
        !CU_add_test(s, "overlapping offsets", test_overlapping_offsets) ||
        !CU_add_test(s, "offsets out of range", test_offsets_out_of_range) ||
        !CU_add_test(s, "missing and unknown tensors", test_missing_and_unknown_tensor) ||
        !CU_add_test(s, "inconsistent config", test_inconsistent_config) ||
        !CU_add_test(s, "duplicate tensor", test_duplicate_tensor) ||
        !CU_add_test(s, "NaN and infinity in weights", test_non_finite_values) ||
        !CU_add_test(s, "decreasing bin edges", test_decreasing_edges) ||
        !CU_add_test(s, "missing file, directory", test_not_a_file) ||
        !CU_add_test(s, "save and load round-trip", test_save_roundtrip) ||
        !CU_add_test(s, "random model round-trip", test_random_model_roundtrip) ||
        !CU_add_test(s, "a save removes dead saves' temporary files", test_save_sweeps_dead_temporaries))
        return 1;
    return run_suites();
}
