/* The craft CLI as a user runs it: help, exit statuses, messages, atomic output. */
#include <sys/wait.h>
#include <stdarg.h>
#include <unistd.h>

#include "test_util.h"

static char craft[1024];

/* Runs a shell command line; returns the exit status and the first 4 KiB of stdout+stderr. */
static int run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    size_t n = p ? fread(out, 1, cap - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_help(void)
{
    char out[4096];
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s --help", craft), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "score"));
    const char *cmds[] = {"score", "model", "bench", "explain"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        CU_ASSERT_EQUAL(run(out, sizeof out, "%s %s --help", craft, cmds[i]), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "Usage: craft"));
    }
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s frobnicate", craft), 64);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown command"));
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s score --model", craft), 64);
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s score --model m --input i --batch 0", craft), 64);
}

static void test_score_and_errors(void)
{
    char out[4096];
    const char *model = fixture("tiny-multilabel.safetensors"), *orders = fixture("tiny-multilabel.orders.jsonl");
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s score --model %s --input %s --off graph | head -1", craft, model, orders), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"modalities\": [\"tab\", \"txt\"]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"scores\": {\"D1\": "));
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s model info %s", craft, model), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "parameters"));
    /* a model that is not one: exit 65, the file named */
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s score --model %s --input %s", craft, orders, orders), 65);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, orders));
    /* a missing file: exit 66 */
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s score --model /nonexistent.safetensors --input %s", craft, orders), 66);
    /* an unknown modality, the backbone switched off: usage-level data errors */
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s score --model %s --input %s --off audio", craft, model, orders), 65);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no modality \"audio\""));
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s score --model %s --input %s --device cuda", craft, model, orders), 69);
}

static void test_output_is_atomic(void)
{
    char out[4096], dir[] = "/tmp/craft-cli-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    const char *model = fixture("tiny-multilabel.safetensors"), *orders = fixture("tiny-multilabel.orders.jsonl");
    /* a file whose line 3 is bad: the run fails and the old output stays as it was */
    CU_ASSERT_EQUAL(run(out, sizeof out, "head -2 %s > %s/bad.jsonl && echo '{\"order_id\": 1}' >> %s/bad.jsonl && "
                                          "echo previous > %s/scores.jsonl", orders, dir, dir, dir), 0);
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s score --model %s --input %s/bad.jsonl --output %s/scores.jsonl", craft, model,
                        dir, dir), 65);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bad.jsonl:3: \"order_id\""));
    CU_ASSERT_EQUAL(run(out, sizeof out, "cat %s/scores.jsonl; ls %s | wc -l", dir, dir), 0);
    CU_ASSERT_STRING_EQUAL(out, "previous\n2\n");
    CU_ASSERT_EQUAL(run(out, sizeof out, "%s score --model %s --input %s --output %s/scores.jsonl --explain && wc -l < %s/scores.jsonl",
                        craft, model, orders, dir, dir), 0);
    CU_ASSERT_STRING_EQUAL(out, "24\n");
    run(out, sizeof out, "rm -rf %s", dir);
}

int main(void)
{
    const char *build = getenv("CRAFT_BUILD");
    snprintf(craft, sizeof craft, "%s/app/cli/craft", build ? build : "build");
    if (access(craft, X_OK)) {
        fprintf(stderr, "no craft binary at %s\n", craft);
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cli", NULL, NULL);
    if (!s || !CU_add_test(s, "help and usage errors", test_help) ||
        !CU_add_test(s, "score, model info, error statuses", test_score_and_errors) ||
        !CU_add_test(s, "--output is replaced only on success", test_output_is_atomic))
        return 1;
    return run_suites();
}
