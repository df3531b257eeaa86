/* craft synth: realistic synthetic orders with planted defects (docs/SYNTH.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
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

/* mkstemp makes 0600 files; data files get the usual 0666 less the umask. */
static void usual_mode(int fd)
{
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
}

/* Writes text to path through a temporary file and a rename. */
static int write_file_atomic(const char *path, const char *text)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd >= 0)
        usual_mode(fd);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    int ok = f && fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f)
        ok = (fclose(f) == 0) && ok;
    else if (fd >= 0)
        close(fd);
    if (ok && rename(tmp, path) == 0) {
        free(tmp);
        return 0;
    }
    int e = errno;
    if (fd >= 0)
        unlink(tmp);
    free(tmp);
    errno = e;
    return -1;
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
        int bad = write_file_atomic(config, json);
        free(json);
        if (bad) {
            fprintf(stderr, "craft synth: cannot write %s: %s\n", config, strerror(errno));
            return EXIT_IOERR;
        }
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
    char *tmp = NULL;
    if (!to_stdout) {
        tmp = malloc(strlen(output) + 16);
        int fd = -1;
        if (tmp) {
            sprintf(tmp, "%s.tmp-XXXXXX", output);
            fd = mkstemp(tmp);
            if (fd >= 0)
                usual_mode(fd);
        }
        if (fd < 0 || !(out = fdopen(fd, "w"))) {
            fprintf(stderr, "craft synth: cannot write %s: %s\n", output, strerror(errno));
            if (fd >= 0) {
                close(fd);
                unlink(tmp);
            }
            free(tmp);
            free(truth_path);
            return EXIT_IOERR;
        }
    }
    double t0 = craft_now();
    craft_error err = {0};
    craft_synth_stats st;
    int status = 0;
    if (craft_synth_write(&o, out, &st, isatty(2) ? show_progress : NULL, &t0, &err))
        status = cli_fail("synth", &err);
    if (isatty(2))
        fputc('\n', stderr);
    if (fflush(out) || ferror(out) || (!to_stdout && fsync(fileno(out)))) {
        if (!status)
            fprintf(stderr, "craft synth: writing %s failed: %s\n", output, strerror(errno));
        status = status ? status : EXIT_IOERR;
    }
    if (!to_stdout) {
        fclose(out);
        if (status) {
            unlink(tmp);
        } else if (rename(tmp, output)) {
            fprintf(stderr, "craft synth: cannot replace %s: %s\n", output, strerror(errno));
            unlink(tmp);
            status = EXIT_IOERR;
        }
        free(tmp);
    }
    if (!status && truth_path) {
        char *json = craft_synth_truth_json(&o, &st);
        if (!json || write_file_atomic(truth_path, json)) {
            fprintf(stderr, "craft synth: cannot write %s: %s\n", truth_path, json ? strerror(errno) : "out of memory");
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
