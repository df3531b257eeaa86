/* craft config init: a model config from a labelled orders file
 * (config_infer.h; docs/TRAINING.md, "Config from data"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config_infer.h"

static void help(void)
{
    printf("Usage: craft config init --input FILE [--output CONFIG.json] [--text-tokens vector|fields|events]\n"
           "                         [--max-text-rows N]\n\n"
           "Reads the labelled orders of FILE (JSON Lines, or CSV for *.csv) and writes a complete model\n"
           "config: every feature with its type (numeric when every value given is a finite number, else\n"
           "categorical), the task and classes from the labels, a txt modality for the text fields, a graph\n"
           "modality with the entity types found, and sizes chosen from the number of labelled orders.\n"
           "What was found (counts, missing shares, distinct values; modalities left out) is printed to\n"
           "standard error; the config goes to CONFIG.json or standard output. `craft train` without\n"
           "--config makes the same config itself.\n\n"
           "--text-tokens: vector (default) one 256-wide vector of all text fields; fields one row per\n"
           "text field; events one row per journey event (text between '|', ';' or line breaks), the\n"
           "latest --max-text-rows (default 32) kept.\n");
}

static int write_file(const char *path, const char *text)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return EXIT_SOFTWARE;
    snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int bad = !f || fputs(text, f) < 0;
    if (f && fclose(f))
        bad = 1;
    if (bad || rename(tmp, path)) {
        fprintf(stderr, "craft config: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return EXIT_IOERR;
    }
    free(tmp);
    return 0;
}

int cmd_config(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        help();
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "init"))
        return cli_usage("config", "unknown subcommand \"%s\" (craft config init --input FILE)", argv[1]);
    craft_infer_options o;
    craft_infer_defaults(&o);
    const char *input = NULL, *output = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
        if (!v)
            return cli_usage("config", "%s needs a value (see craft config --help)", a);
        i++;
        if (!strcmp(a, "--input")) {
            input = v;
        } else if (!strcmp(a, "--output")) {
            output = v;
        } else if (!strcmp(a, "--text-tokens")) {
            if (craft_text_tokens_parse(v, &o.text_tokens))
                return cli_usage("config", "--text-tokens is vector, fields or events, not \"%s\"", v);
        } else if (!strcmp(a, "--max-text-rows")) {
            if (cli_int("config", a, v, 1, 4096, &o.max_text_rows))
                return EXIT_USAGE;
        } else {
            return cli_usage("config", "unknown option \"%s\" (see craft config --help)", a);
        }
    }
    if (!input)
        return cli_usage("config", "--input FILE (labelled orders) is required");
    char *json = NULL;
    craft_error err;
    if (craft_config_infer(input, &o, stderr, &json, &err))
        return cli_fail("config", &err);
    int rc = 0;
    if (output && strcmp(output, "-")) {
        if (!(rc = write_file(output, json)))
            fprintf(stderr, "craft config: config written to %s\n", output);
    } else if (fputs(json, stdout) < 0 || fflush(stdout)) {
        rc = EXIT_IOERR;
    }
    free(json);
    return rc;
}
