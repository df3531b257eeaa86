/* craft score: orders in, score lines out (FORMATS.md). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "config_infer.h"
#include "device.h"
#include "outfile.h"
#include "scoring.h"

#define SCORE_CHECK_ORDERS 10000 /* orders read ahead to check the inputs */

static void help(void)
{
    printf("Usage: craft score --model MODEL --input FILE [options]\n\n"
           "Scores every order of FILE (JSON Lines, or CSV for *.csv; - is standard input) and\n"
           "writes one JSON line per order: order_id, model hash, modalities used, scores.\n\n"
           "  --model MODEL        a CRAFT checkpoint (.safetensors)\n"
           "  --input FILE         orders (JSONL or CSV)\n"
           "  --format jsonl|csv   override the format guessed from the file name\n"
           "  --output FILE        write here instead of standard output (replaced atomically)\n"
           "  --off txt,graph      switch auxiliary modalities off (a subset prediction)\n"
           "  --explain            add backbone importance and CMIS per used auxiliary\n"
           "  --perturbation       add perturbation importance per class (reruns the backbone\n"
           "                       once per tabular feature: slow on wide models)\n"
           "  --interaction        add the interaction score per used auxiliary m, class and\n"
           "                       feature j: (s - s without j) - (s without m - s without j and m),\n"
           "                       > 0 synergy, < 0 suppression (the perturbation passes again\n"
           "                       with each auxiliary off; docs/MODEL.md, \"Extensions\")\n"
           "  --device cpu|cuda|auto  where to compute (default cpu; auto: the GPU when usable)\n"
           "  --precision fp32|fast   GPU arithmetic: fp32 (default, agrees with the CPU) or fast (TF32)\n"
           "  --threads N          CPU threads (default: all cores)\n"
           "  --batch N            orders per engine batch (default 64)\n\n"
           "Progress (orders done, orders/s, time left) goes to standard error on a terminal.\n"
           "A bad order stops the run with its file and line (exit 65).\n\n"
           "craft score --db DB --model MODEL [--dataset D] scores a case store's orders instead\n"
           "(craft score --db DB --help says more).\n");
}

static void show_progress(void *user, const craft_progress *p)
{
    (void)user;
    double rate = p->seconds > 0 ? p->orders / p->seconds : 0;
    if (p->total && p->bytes) {
        double left = p->seconds * ((double)p->total / p->bytes - 1.0);
        fprintf(stderr, "\r%llu orders, %.0f orders/s, %.0f%%, %.0f s left   ", (unsigned long long)p->orders, rate,
                100.0 * p->bytes / p->total, left);
    } else {
        fprintf(stderr, "\r%llu orders, %.0f orders/s   ", (unsigned long long)p->orders, rate);
    }
}

/* craft score --db: scoring the orders of a case store (app/store/cmd_score_db.c). */
int craft_store_score_command(int argc, char **argv) __attribute__((weak));

int cmd_score(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--db")) {
            if (craft_store_score_command)
                return craft_store_score_command(argc, argv);
            fprintf(stderr, "craft score: --db needs the case store, which this build lacks\n");
            return EXIT_UNAVAIL;
        }
    const char *model = NULL, *output = NULL, *off = NULL, *device = NULL, *precision_s = NULL;
    craft_score_options o = {0};
    o.batch = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--explain")) {
            o.explain = 1;
        } else if (!strcmp(a, "--perturbation")) {
            o.perturbation = 1;
        } else if (!strcmp(a, "--interaction")) {
            o.interaction = 1;
        } else if (!v) {
            return cli_usage("score", "unknown option or missing value: %s", a);
        } else if (!strcmp(a, "--model")) {
            model = v, i++;
        } else if (!strcmp(a, "--input")) {
            o.input = v, i++;
        } else if (!strcmp(a, "--output")) {
            output = v, i++;
        } else if (!strcmp(a, "--off")) {
            off = v, i++;
        } else if (!strcmp(a, "--device")) {
            device = v, i++;
        } else if (!strcmp(a, "--precision")) {
            precision_s = v, i++;
        } else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "jsonl"))
                o.format = CRAFT_FORMAT_JSONL;
            else if (!strcmp(v, "csv"))
                o.format = CRAFT_FORMAT_CSV;
            else
                return cli_usage("score", "--format must be jsonl or csv");
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (cli_int("score", a, v, 1, 1024, &o.threads))
                return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--batch")) {
            if (cli_int("score", a, v, 1, 65536, &o.batch))
                return EXIT_USAGE;
            i++;
        } else {
            return cli_usage("score", "unknown option %s", a);
        }
    }
    if (!model || !o.input)
        return cli_usage("score", "--model and --input are required");
    const char *dev;
    int precision, st = cli_pick_device("score", device, &dev);
    if (st || (st = cli_pick_precision("score", precision_s, dev, &precision)))
        return st;
    o.engine = cli_engine_ops(dev, precision); /* CPU or CUDA engine (app/cli/device.c) */
    craft_error err = {0};
    craft_model *m;
    if (cli_model_file("score", model)) /* a directory, FIFO or device: exit 66, never a blocked open */
        return EXIT_NOINPUT;
    if (craft_model_load(&m, model, &err))
        return cli_fail("score", &err);
    if (craft_parse_modality_list(&m->cfg, off, &o.off_mask, &err)) {
        craft_model_free(m);
        return cli_fail("score", &err);
    }
    /* Features the model does not use, entity types it does not encode, empty
     * modalities: said on stderr (over the first orders); text or entities the
     * encoders cannot encode at the model's widths: refused (config_infer.h).
     * A bad order is left to the scoring below, which reports it as always. */
    craft_input_report irep;
    /* only a regular file can be read twice: the check would drain a FIFO, a
     * /dev/stdin or a <(...) and leave the scoring nothing (0 orders, exit 0) */
    struct stat ist;
    int rereadable = strcmp(o.input, "-") && stat(o.input, &ist) == 0 && S_ISREG(ist.st_mode);
    if (rereadable &&
        craft_input_check(&m->cfg, o.input, "score", stderr, SCORE_CHECK_ORDERS, &irep, &err) && !irep.read_error) {
        craft_model_free(m);
        return cli_fail("score", &err);
    }
    o.log = stderr; /* most of the model's features missing from the file: said loudly */
    if (isatty(2)) {
        o.progress = show_progress;
    }
    FILE *out = stdout;
    craft_outfile of = {0};
    if (output && ((strcmp(o.input, "-") && craft_same_file(output, o.input)) || craft_same_file(output, model))) {
        craft_model_free(m);
        return cli_usage("score", "--output %s is the input or the model: refused (it would be replaced)", output);
    }
    if (output) {
        /* the scores name orders: a new file is private (0600), as before */
        if (craft_outfile_open(&of, output, 0600, &err)) {
            craft_model_free(m);
            return cli_fail("score", &err);
        }
        out = of.f;
    }
    static char obuf[1 << 16];
    if (!output)
        setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    uint64_t n = 0;
    int rc = craft_score_file(m, &o, out, &n, &err);
    if (o.progress)
        fputc('\n', stderr);
    /* One message for a failed write, naming the file and why; with --output the
     * temporary file goes and FILE keeps what it had (or stays absent). */
    const char *dest = output ? output : "standard output";
    const char *kept = output && !of.in_place ? " (nothing was written there; its old contents, if any, are kept)" : "";
    int status = 0, write_failed = ferror(out) != 0;
    if (rc && !(write_failed && err.code == CRAFT_EIO)) {
        status = cli_fail("score", &err);
        if (write_failed) /* and the scores before it did not all get written either */
            fprintf(stderr, "craft score: %s: writing the scores failed too%s\n", dest, kept);
    } else if (rc) {
        fprintf(stderr, "craft score: %s: %s%s\n", dest, err.msg, kept);
    }
    if (!output && !write_failed && (fflush(out) || ferror(out))) {
        write_failed = 1;
        fprintf(stderr, "craft score: %s: writing the scores failed: %s\n", dest, strerror(errno));
    }
    if (write_failed)
        status = EXIT_IOERR;
    if (output) {
        if (status) {
            craft_outfile_discard(&of);
        } else if (craft_outfile_commit(&of, &err)) {
            fprintf(stderr, "craft score: %s\n", err.msg);
            status = EXIT_IOERR;
        }
    }
    craft_model_free(m);
    return status;
}
