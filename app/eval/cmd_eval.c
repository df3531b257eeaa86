/* craft eval: how good is a model, and against what (docs/EVAL.md). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "config_infer.h"
#include "eval.h"
#ifdef CRAFT_EVAL_HAVE_STORE /* the case store is an optional part (SQLite) */
#include "store.h"
#endif

static void help(void)
{
    printf("Usage: craft eval --model MODEL (--input FILE | --db DB [--dataset D]) [options]\n\n"
           "Evaluates MODEL on labelled orders: per-class and macro PR-AUC and ROC-AUC (with accuracy\n"
           "and macro-F1 for multiclass models), calibration error, per-class thresholds at a target\n"
           "precision, and the table of every modality subset that contains the backbone.\n\n"
           "  --model MODEL            a CRAFT checkpoint (.safetensors)\n"
           "  --input FILE             labelled orders (JSONL, or CSV for *.csv; - is standard input)\n"
           "  --format jsonl|csv       override the format guessed from the file name\n"
           "  --db DB [--dataset D]    labelled orders of a case store (all datasets by default)\n"
           "  --target-precision P     precision the per-class thresholds must reach (default 0.9)\n"
           "  --noise                  robustness to Gaussian noise per modality and on all at once,\n"
           "                           factors 0, 0.1, ..., 0.9 of each modality's mean and sd\n"
           "  --baselines              train baselines on the orders outside the held-out part and\n"
           "                           compare on it: single-modality MLPs, concatenation MLP,\n"
           "                           XGBoost, the backbone alone, and this model\n"
           "  --train FILE             fit the baselines on the labelled orders of FILE and compare\n"
           "                           them on every order of --input (instead of splitting --input)\n"
           "  --xgb-only               --baselines with only XGBoost (on the backbone alone, and on\n"
           "                           every modality) beside this model: quick\n"
           "  --val-fraction F         held-out part for --baselines: orders whose seeded hash of\n"
           "                           order_id is below F, the trainer's split (default: the\n"
           "                           model's recorded training split, else 0.1)\n"
           "  --seed N                 seed of the split, the noise and the baselines (default:\n"
           "                           the model's training seed, else 1)\n"
           "  --hidden N, --epochs N   MLP baselines: hidden width (64), most epochs (60)\n"
           "  --xgb-rounds N           XGBoost boosting rounds (default 100)\n"
           "  --backbone-epochs N      most epochs of the backbone-alone model (default 10)\n"
           "  --cmis-truth FILE        compare CMIS with the features a generator planted (a craft\n"
           "                           synth FILE.truth.json): per class, planted synergistic and\n"
           "                           suppressed features against the features it does not name\n"
           "  --threads N              CPU threads (default: all cores)\n"
           "  --json                   write the evaluation as JSON (keys in docs/EVAL.md)\n"
           "  --output FILE            write there instead of standard output\n\n"
           "Undefined values (a class without positives, say) are shown as - (null in JSON).\n");
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !(v >= lo && v <= hi)) {
        cli_usage("eval", "%s needs a number in [%g, %g], got \"%s\"", opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

/* Exports the store's labelled orders to a temporary JSONL file and loads it. */
static int load_from_store(craft_eval_set *set, const craft_config *cfg, const char *db, const char *dataset,
                           craft_error *err)
{
#ifndef CRAFT_EVAL_HAVE_STORE
    (void)set, (void)cfg, (void)db, (void)dataset;
    return craft_fail(err, CRAFT_EUNSUPPORTED, "--db: this build has no case store (SQLite); use --input");
#else
    craft_store *st = NULL;
    int rc = craft_store_open(&st, db, CRAFT_STORE_READONLY, err);
    if (rc)
        return rc;
    int64_t ds = 0;
    if (dataset)
        rc = craft_store_dataset_find(st, dataset, &ds, err);
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/craft-eval-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = rc ? -1 : mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!rc && !f)
        rc = craft_fail(err, CRAFT_EIO, "cannot create a temporary file in %s: %s", dir && *dir ? dir : "/tmp",
                        strerror(errno));
    uint64_t n = 0;
    if (!rc)
        rc = craft_store_export_jsonl(st, ds, 1, f, &n, err);
    if (f && fclose(f) && !rc)
        rc = craft_fail(err, CRAFT_EIO, "writing %s failed: %s", path, strerror(errno));
    craft_store_close(st);
    if (!rc && n == 0)
        rc = craft_fail(err, CRAFT_EINPUT, "%s%s%s holds no labelled orders", db, dataset ? " dataset " : "",
                        dataset ? dataset : "");
    if (!rc) {
        rc = craft_eval_set_load(set, cfg, path, CRAFT_FORMAT_JSONL, err);
        if (rc)
            craft_error_prefix(err, "%s (exported)", db);
    }
    if (fd >= 0)
        unlink(path);
    return rc;
#endif
}

/* The whole of a small text file (the truth file), NUL-terminated; NULL with err set. */
static char *read_text_file(const char *path, craft_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        craft_fail(err, CRAFT_EIO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (len < cap - 1)
            break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf)
        craft_fail(err, CRAFT_ENOMEM, "out of memory reading %s", path);
    else if (bad) {
        free(buf);
        buf = NULL;
        craft_fail(err, CRAFT_EIO, "reading %s failed", path);
    } else
        buf[len] = '\0';
    return buf;
}

typedef struct {
    const char *model, *input, *db, *dataset, *output, *cmis_truth, *train;
    craft_format format;
    int json, noise, baselines, threads;
    int split_given;        /* --val-fraction or --seed on the command line */
    double target_precision;
    craft_eval_baseline_options bo;
} eval_args;

/* Returns 0, or an exit status (-1 for --help: exit 0). */
static int parse_args(int argc, char **argv, eval_args *a)
{
    memset(a, 0, sizeof *a);
    a->target_precision = 0.9;
    craft_eval_baseline_defaults(&a->bo);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int iv;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            help();
            return -1;
        } else if (!strcmp(o, "--json")) {
            a->json = 1;
        } else if (!strcmp(o, "--noise")) {
            a->noise = 1;
        } else if (!strcmp(o, "--baselines")) {
            a->baselines = 1;
        } else if (!strcmp(o, "--xgb-only")) {
            a->baselines = 1;
            a->bo.xgb_only = 1;
        } else if (!v) {
            return cli_usage("eval", "unknown option or missing value: %s", o);
        } else if (!strcmp(o, "--model")) {
            a->model = v, i++;
        } else if (!strcmp(o, "--input")) {
            a->input = v, i++;
        } else if (!strcmp(o, "--db")) {
            a->db = v, i++;
        } else if (!strcmp(o, "--dataset")) {
            a->dataset = v, i++;
        } else if (!strcmp(o, "--output")) {
            a->output = v, i++;
        } else if (!strcmp(o, "--train")) {
            a->train = v, i++;
        } else if (!strcmp(o, "--cmis-truth")) {
            a->cmis_truth = v, i++;
        } else if (!strcmp(o, "--format")) {
            if (!strcmp(v, "jsonl"))
                a->format = CRAFT_FORMAT_JSONL;
            else if (!strcmp(v, "csv"))
                a->format = CRAFT_FORMAT_CSV;
            else
                return cli_usage("eval", "--format must be jsonl or csv");
            i++;
        } else if (!strcmp(o, "--target-precision")) {
            if (parse_double(o, v, 0.0, 1.0, &a->target_precision))
                return EXIT_USAGE;
            i++;
        } else if (!strcmp(o, "--val-fraction")) {
            if (parse_double(o, v, 0.01, 0.99, &a->bo.val_fraction))
                return EXIT_USAGE;
            a->split_given = 1, i++;
        } else if (!strcmp(o, "--seed")) {
            if (cli_int("eval", o, v, 0, 2147483647, &iv))
                return EXIT_USAGE;
            a->bo.seed = (uint64_t)iv, a->split_given = 1, i++;
        } else if (!strcmp(o, "--threads")) {
            if (cli_int("eval", o, v, 1, 1024, &a->threads))
                return EXIT_USAGE;
            a->bo.threads = a->threads, i++;
        } else if (!strcmp(o, "--hidden")) {
            if (cli_int("eval", o, v, 1, 4096, &a->bo.hidden))
                return EXIT_USAGE;
            i++;
        } else if (!strcmp(o, "--epochs")) {
            if (cli_int("eval", o, v, 1, 10000, &a->bo.epochs))
                return EXIT_USAGE;
            i++;
        } else if (!strcmp(o, "--backbone-epochs")) {
            if (cli_int("eval", o, v, 1, 10000, &a->bo.backbone_epochs))
                return EXIT_USAGE;
            i++;
        } else if (!strcmp(o, "--xgb-rounds")) {
            if (cli_int("eval", o, v, 1, 100000, &a->bo.xgb_rounds))
                return EXIT_USAGE;
            i++;
        } else {
            return cli_usage("eval", "unknown option %s", o);
        }
    }
    if (!a->model)
        return cli_usage("eval", "--model is required");
    if (!a->input == !a->db)
        return cli_usage("eval", "give exactly one of --input FILE and --db DB");
    if (a->dataset && !a->db)
        return cli_usage("eval", "--dataset goes with --db");
    if (a->train && !a->baselines)
        return cli_usage("eval", "--train FILE goes with --baselines (or --xgb-only)");
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    eval_args a;
    int st = parse_args(argc, argv, &a);
    if (st)
        return st < 0 ? 0 : st;
    craft_error err = {0};
    craft_model *m = NULL;
    if (craft_model_load(&m, a.model, &err))
        return cli_fail("eval", &err);
    /* hold out what the trainer held out, unless told otherwise */
    if (!a.split_given && craft_eval_training_split(m, &a.bo.val_fraction, &a.bo.seed) && isatty(2))
        fprintf(stderr, "craft eval: using the model's training split (val fraction %g, seed %llu)\n",
                a.bo.val_fraction, (unsigned long long)a.bo.seed);
    craft_eval_set set;
    craft_eval_set_init(&set, &m->cfg);
    craft_eval_report rep;
    craft_eval_noise noise;
    craft_eval_baselines base;
    memset(&rep, 0, sizeof rep);
    memset(&noise, 0, sizeof noise);
    rep.model = m;
    rep.input = a.input ? a.input : a.db;
    float *full = NULL;
    int progress = isatty(2);
    struct stat ist;
    if (a.input && strcmp(a.input, "-") && stat(a.input, &ist) == 0 && S_ISREG(ist.st_mode)) {
        /* (only a regular file can be read twice: the check would drain a FIFO or standard input)
         * features the model does not use, entity types it does not encode, empty modalities:
         * said on stderr; text or entities the encoders cannot encode: refused (config_infer.h);
         * a bad order is left to the load below, which names it as always */
        craft_input_report irep;
        if (craft_input_check(&m->cfg, a.input, "eval", stderr, 0, &irep, &err) && !irep.read_error) {
            craft_model_free(m);
            return cli_fail("eval", &err);
        }
    }
    int rc = a.input ? craft_eval_set_load(&set, &m->cfg, a.input, a.format, &err)
                     : load_from_store(&set, &m->cfg, a.db, a.dataset, &err);
    if (!rc && progress)
        fprintf(stderr, "craft eval: %d orders (%d labelled); scoring every modality subset...\n", set.b.n,
                set.n_labelled);
    if (!rc)
        rc = craft_eval_subsets_run(&rep.subsets, m, &set, a.threads, &full, &err);
    if (!rc)
        rc = craft_eval_metrics_compute(&rep.metrics, m->cfg.task, set.b.n, m->cfg.n_classes, full, set.b.labels,
                                        a.target_precision, &err);
    if (!rc && a.noise) {
        if (progress)
            fprintf(stderr, "craft eval: noise robustness (%d settings x %d levels)...\n", m->cfg.n_modalities + 1,
                    CRAFT_NOISE_LEVELS);
        if (!(rc = craft_eval_noise_run(&noise, m, &set, a.bo.seed, a.threads, &err)))
            rep.noise = &noise;
    }
    if (!rc && a.baselines && a.train) {
        /* baselines fitted on the training file, compared on every order of the evaluated one */
        craft_eval_set tr, both;
        craft_eval_set_init(&both, &m->cfg);
        if (progress)
            fprintf(stderr, "craft eval: reading the training orders of the baselines (%s)...\n", a.train);
        rc = craft_eval_set_load(&tr, &m->cfg, a.train, CRAFT_FORMAT_AUTO, &err);
        if (!rc && !(rc = craft_eval_set_extend(&both, &tr, &err)) && !(rc = craft_eval_set_extend(&both, &set, &err))) {
            a.bo.n_train_given = tr.b.n;
            if (!(rc = craft_eval_baselines_run(&base, m, &both, &a.bo, &err)))
                rep.baselines = &base;
        }
        craft_eval_set_free(&tr);
        craft_eval_set_free(&both);
    } else if (!rc && a.baselines) {
        if (!(rc = craft_eval_baselines_run(&base, m, &set, &a.bo, &err)))
            rep.baselines = &base;
    }
    craft_eval_cmis_check cmis;
    memset(&cmis, 0, sizeof cmis);
    if (!rc && a.cmis_truth) {
        char *truth = read_text_file(a.cmis_truth, &err);
        if (progress && truth)
            fprintf(stderr, "craft eval: CMIS of every order against %s...\n", a.cmis_truth);
        rc = truth ? craft_eval_cmis_check_run(&cmis, m, &set, truth, a.cmis_truth, a.threads, &err) : (int)err.code;
        if (!rc)
            rep.cmis = &cmis;
        free(truth);
    }
    int status = rc ? cli_fail("eval", &err) : 0;
    if (!status) {
        FILE *out = a.output ? fopen(a.output, "w") : stdout;
        if (!out) {
            fprintf(stderr, "craft eval: cannot write %s: %s\n", a.output, strerror(errno));
            status = EXIT_IOERR;
        } else {
            if (a.json)
                craft_eval_write_json(out, &rep);
            else
                craft_eval_write_table(out, &rep);
            if (fflush(out) || ferror(out)) {
                fprintf(stderr, "craft eval: writing %s failed: %s\n", a.output ? a.output : "the evaluation",
                        strerror(errno));
                status = EXIT_IOERR;
            }
            if (a.output && fclose(out) && !status)
                status = EXIT_IOERR;
        }
    }
    free(full);
    craft_eval_noise_free(&noise);
    craft_eval_cmis_check_free(&cmis);
    craft_eval_subsets_free(&rep.subsets);
    craft_eval_metrics_free(&rep.metrics);
    craft_eval_set_free(&set);
    craft_model_free(m);
    return status;
}
