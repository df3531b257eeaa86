/* fuzz_replay: runs a libFuzzer target's entry point over every file of its corpus
 * folder (fuzz/corpus/<target>/: the seeds and every input that once crashed, hung or
 * leaked), as a CUnit test. Linked with one fuzz/fuzz_*.c per executable, so each
 * fixed fuzz finding stays a regression test in every build, the sanitizer one too.
 * FUZZ_CORPUS names the folder. */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_replay_corpus(void)
{
    const char *dir = getenv("FUZZ_CORPUS");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char *names[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;)
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    CU_ASSERT(n > 0);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        CU_ASSERT_PTR_NOT_NULL(f);
        if (f) {
            fseek(f, 0, SEEK_END);
            long len = ftell(f);
            fseek(f, 0, SEEK_SET);
            uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
            CU_ASSERT_EQUAL(fread(buf, 1, (size_t)len, f), (size_t)len);
            fclose(f);
            /* a crash, a sanitizer report or a trap ends the test program: that is the failure */
            CU_ASSERT_EQUAL(LLVMFuzzerTestOneInput(buf, (size_t)len), 0);
            free(buf);
        }
        free(names[i]);
    }
    fprintf(stderr, "(%d inputs) ", n);
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("fuzz corpus", NULL, NULL);
    if (!s || !CU_add_test(s, "every corpus input runs clean", test_replay_corpus)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
