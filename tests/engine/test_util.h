/* test_util.h: small helpers shared by the engine's CUnit suites. */
#ifndef CRAFT_TEST_UTIL_H
#define CRAFT_TEST_UTIL_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Path of a fixture file: $CRAFT_FIXTURES/name (the tests' copy of shared/fixtures). */
static inline const char *fixture(const char *name)
{
    static char buf[4][1024];
    static int next;
    const char *dir = getenv("CRAFT_FIXTURES");
    char *out = buf[next++ & 3];
    snprintf(out, sizeof buf[0], "%s/%s", dir ? dir : "tests/fixtures", name);
    return out;
}

static inline unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = 0;
        *size = (size_t)n;
    }
    return p;
}

static inline int write_all_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Runs the registered suites; the exit status is non-zero on any failure. */
static inline int run_suites(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return (failed || run == 0) ? 1 : 0;
}

#endif
