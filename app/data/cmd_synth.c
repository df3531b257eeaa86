/* craft synth: realistic synthetic orders with planted defects (docs/SYNTH.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "outfile.h"
#include "scoring.h"
#include "synth.h"

static void help(void)
{
    printf("Usage: craft synth --orders N --output FILE [options]\n\n"
           "Writes N realistic orders in the JSON Lines interchange format: ~300 tabular features\n"
           "in five groups, a shipment-journey and an order-history text, entities (customer,\n"
           "seller, carrier, route, hub) on a heavy-tailed network, increasing time stamps, and\n"
           "labels D1..D5 planted by the rules of docs/SYNTH.md. Beside FILE it writes\n"
           "FILE.truth.json: which features are self-sufficient, synergistic with text and graph,\n"
           "or suppressed by text. The same options always give the same bytes.\n\n"
           "  --orders N             number of orders (required)\n"
           "  --seed S               random seed (default 1)\n"
           "  --features F           tabular features, %d..%d (default 300)\n"
           "  --output FILE          the orders (replaced atomically; - is standard output)\n"
           "  --truth FILE           where the ground truth goes (default FILE.truth.json;\n"
           "                         none for standard output unless given)\n"
           "  --no-labels            leave the labels out (orders to score)\n"
           "  --model-config FILE    also write a CRAFT model config for these orders (tab with\n"
           "                         the generated features, txt 256, graph 80, classes D1..D5);\n"
           "                         with this option --orders and --output may be left out\n",
           CRAFT_SYNTH_MIN_FEATURES, CRAFT_SYNTH_MAX_FEATURES);
}

static void show_progress(void *user, uint64_t done, uint64_t total)
{
    double t0 = *(const double *)user, dt = craft_now() - t0;
    fprintf(stderr, "\r%llu of %llu orders, %.0f orders/s   ", (unsigned long long)done, (unsigned long long)total,
            dt > 0 ? done / dt : 0);
}

/* Writes text to path whole or not at all (app/core/outfile.h: a device or FIFO
 * is written in place, never replaced); data files get 0666 less the umask. */
static int write_file_atomic(const char *path, const char *text, craft_error *err)
{
    craft_outfile of;
    if (craft_outfile_open(&of, path, craft_outfile_umask_mode(), err))
        return -1;
    if (fputs(text, of.f) < 0) {
        craft_outfile_discard(&of);
        return craft_fail(err, CRAFT_EIO, "%s: writing failed", path);
    }
    return craft_outfile_commit(&of, err) ? -1 : 0;
}

int cmd_synth(int argc, char **argv)
{
    craft_synth_options o = {0, 1, 300, 1};
    const char *output = NULL, *truth = NULL, *config = NULL;
    int have_orders = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--no-labels")) {
            o.with_labels = 0;
        } else if (!v) {
            return cli_usage("synth", "unknown option or missing value: %s", a);
        } else if (!strcmp(a, "--orders") || !strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long x = strtoull(v, &end, 10);
            if (!*v || *end || *v == '-' || errno || (a[2] == 'o' && (x < 1 || x > 1000000000ull)))
                return cli_usage("synth", "%s needs %s, got \"%s\"", a,
                                 a[2] == 'o' ? "a whole number in 1..1000000000" : "a non-negative whole number", v);
            if (a[2] == 'o')
                o.orders = x, have_orders = 1;
            else
                o.seed = x;
            i++;
        } else if (!strcmp(a, "--features")) {
            if (cli_int("synth", a, v, CRAFT_SYNTH_MIN_FEATURES, CRAFT_SYNTH_MAX_FEATURES, &o.features))
                return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--output")) {
            output = v, i++;
        } else if (!strcmp(a, "--truth")) {
            truth = v, i++;
        } else if (!strcmp(a, "--model-config")) {
            config = v, i++;
        } else {
            return cli_usage("synth", "unknown option %s", a);
        }
    }
    if (!config && (!have_orders || !output))
        return cli_usage("synth", "--orders and --output are required");
    if (have_orders != !!output)
        return cli_usage("synth", "--orders and --output go together");
    if (config) {
        char *json = craft_synth_model_config(o.features);
        if (!json) {
            fprintf(stderr, "craft synth: out of memory\n");
            return EXIT_SOFTWARE;
        }
        craft_error werr = {0};
        int bad = write_file_atomic(config, json, &werr);
        free(json);
        if (bad)
            return cli_fail("synth", &werr);
    }
    if (!have_orders)
        return 0;
    int to_stdout = !strcmp(output, "-");
    char *truth_path = NULL;
    if (truth) {
        truth_path = strdup(truth);
    } else if (!to_stdout && (truth_path = malloc(strlen(output) + 12))) {
        sprintf(truth_path, "%s.truth.json", output);
    }
    if (!truth_path && (truth || !to_stdout)) {
        fprintf(stderr, "craft synth: out of memory\n");
        return EXIT_SOFTWARE;
    }
    FILE *out = stdout;
    craft_outfile of = {0};
    if (!to_stdout) {
        craft_error oerr = {0};
        if (craft_outfile_open(&of, output, craft_outfile_umask_mode(), &oerr)) {
            free(truth_path);
            return cli_fail("synth", &oerr);
        }
        out = of.f;
    }
    double t0 = craft_now();
    craft_error err = {0};
    craft_synth_stats st;
    int status = 0;
    if (craft_synth_write(&o, out, &st, isatty(2) ? show_progress : NULL, &t0, &err))
        status = cli_fail("synth", &err);
    if (isatty(2))
        fputc('\n', stderr);
    if (to_stdout && (fflush(out) || ferror(out))) {
        if (!status)
            fprintf(stderr, "craft synth: writing %s failed: %s\n", output, strerror(errno));
        status = status ? status : EXIT_IOERR;
    }
    if (!to_stdout) {
        if (status) {
            craft_outfile_discard(&of);
        } else if (craft_outfile_commit(&of, &err)) {
            fprintf(stderr, "craft synth: %s\n", err.msg);
            status = EXIT_IOERR;
        }
    }
    if (!status && truth_path) {
        char *json = craft_synth_truth_json(&o, &st);
        craft_error werr = {0};
        if (!json || write_file_atomic(truth_path, json, &werr)) {
            if (json)
                fprintf(stderr, "craft synth: %s\n", werr.msg);
            else
                fprintf(stderr, "craft synth: cannot write %s: out of memory\n", truth_path);
            status = EXIT_IOERR;
        }
        free(json);
    }
    if (!status) {
        double dt = craft_now() - t0;
        fprintf(stderr, "craft synth: %llu orders, %.1f MB in %.2f s (%.0f orders/s); prevalence",
                (unsigned long long)st.orders, st.bytes / 1e6, dt, dt > 0 ? st.orders / dt : 0.0);
        for (int k = 0; k < CRAFT_SYNTH_CLASSES; k++)
            fprintf(stderr, " %s %.2f%%", craft_synth_class_names[k], 100.0 * st.positives[k] / st.orders);
        fputc('\n', stderr);
    }
    free(truth_path);
    return status;
}
