/* craft train: train a model on labelled orders (a file or the case store),
 * or measure training speed (--bench). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config_infer.h"
#include "device.h"
#include "scoring.h"
#include "train.h"
#include "trainer.h"
#ifdef CRAFT_TRAIN_HAVE_STORE
#include "store.h"
/* The store's export is newer than the store itself: weak, so that a build
 * without it still links and says so at run time. */
int craft_store_export_jsonl(craft_store *s, int64_t dataset_id, int labelled_only, FILE *out, uint64_t *n,
                             craft_error *err) __attribute__((weak));
#endif

static void help(void)
{
    printf("Usage: craft train (--input FILE | --db DB [--dataset D]) [--config CONFIG] --output MODEL\n"
           "                   [--epochs 20] [--batch 128] [--lr 2e-3] [--lambda 0.3] [--tau 0.07]\n"
           "                   [--val-fraction 0.1] [--seed 1] [--threads N] [--device cpu|cuda|auto]\n"
           "                   [--time-budget SECONDS] [--patience 3] [--no-supcma] [--uniform-tau]\n"
           "                   [--split auto|time|hash] [--val FILE] [--sampler uniform|balanced]\n"
           "                   [--encoding piecewise|bins] [--weight-decay 0.01] [--dropout 0.2]\n"
           "                   [--wide-head on|off] [--no-calibrate] [--auto --time-budget SECONDS]\n"
           "       craft train --bench [--shape production|KEY=V,...] [--batch 512] [--steps 3] [--threads N]\n\n"
           "Trains the CRAFT model of CONFIG (a model config JSON: modalities, features, classes and\n"
           "sizes; `craft config init --input FILE` writes one, docs/MODEL.md describes it) on labelled\n"
           "orders. Without --config the config is made from the training file as `craft config init`\n"
           "makes it (its summary on stderr). Features of the file that the config does not use are\n"
           "listed, and a modality that no order has is warned about. Vocabularies, quantile edges and\n"
           "prevalences are fitted on the training part; the backbone is chosen by rho from\n"
           "single-modality logistic-regression probes (the table is printed and stored in the\n"
           "checkpoint). Each epoch prints its losses, validation macro PR-AUC and speed; the best\n"
           "model is written to MODEL at every improvement, so Ctrl-C keeps the best so far.\n"
           "Training stops after --epochs, after --patience epochs without improvement, or when\n"
           "--time-budget runs out.\n\n"
           "--no-supcma trains without the SupCMA term (and without projection heads); --uniform-tau\n"
           "uses one temperature for every class (ablations).\n"
           "Validation: --split auto (default) holds out the latest --val-fraction of the labelled\n"
           "orders when every one has a \"ts\", else a hash of the order id; --split time insists on\n"
           "time, --split hash on the hash; --val FILE takes the validation orders from FILE (every\n"
           "order of the input then trains).\n"
           "Recipe: --sampler uniform (default: each training order once per epoch) or balanced (each\n"
           "slot a class's positive half the time); --encoding piecewise (default unless the config\n"
           "names \"tab_encoding\": neighbouring quantile bins share parameters) or bins (a free\n"
           "embedding per bin). After training, per-class calibration (Platt scaling; a temperature\n"
           "for multiclass) is fitted on the validation orders and stored in MODEL, so scores read\n"
           "as probabilities; --no-calibrate keeps the raw head.\n"
           "--auto searches a few recipes (sizes, learning rate, regularization, SupCMA) within\n"
           "--time-budget on the same validation orders and keeps the best (docs/TRAINING.md).\n"
           "--bench measures forward + backward + AdamW steps per second on a random model of the\n"
           "shape (production: F=300 features (40 categorical), d=256, 8 heads, 1 layer, ffn x2,\n"
           "top-k 16, routing 32, 32 bins, sub-embedding 32, txt 768, graph 128, 5 classes).\n");
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int parse_float(const char *opt, const char *s, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s ? s : "", &end);
    if (!s || end == s || *end || errno || !(v >= lo && v <= hi))
        return cli_usage("train", "%s needs a number in [%g, %g], got \"%s\"", opt, lo, hi, s ? s : "");
    *out = (float)v;
    return 0;
}

/* The production shape of `craft bench`, or KEY=V changes to it. */
static char *bench_config(const char *shape)
{
    int F = 300, cat = 40, d = 256, heads = 8, layers = 1, ffn = 2, topk = 16, route = 32, bins = 32, emb = 32;
    int txt = 768, graph = 128, classes = 5;
    if (strcmp(shape, "production")) {
        char *copy = strdup(shape), *save = NULL;
        if (!copy)
            return NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq) {
                free(copy);
                return NULL;
            }
            *eq = 0;
            int v = atoi(eq + 1);
            struct { const char *k; int *p; } keys[] = {{"F", &F}, {"cat", &cat}, {"d", &d}, {"heads", &heads},
                {"layers", &layers}, {"ffn", &ffn}, {"topk", &topk}, {"route", &route}, {"bins", &bins},
                {"emb", &emb}, {"txt", &txt}, {"graph", &graph}, {"classes", &classes}};
            int hit = 0;
            for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
                if (!strcmp(tok, keys[i].k) && v >= 0) {
                    *keys[i].p = v;
                    hit = 1;
                }
            if (!hit) {
                free(copy);
                return NULL;
            }
        }
        free(copy);
    }
    if (cat > F || F < 1 || classes < 1)
        return NULL;
    size_t cap = 1024 + (size_t)F * 160;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int n = snprintf(s, cap,
                     "{\"format\":\"craft-model\",\"version\":1,\"d_model\":%d,\"heads\":%d,\"layers\":%d,\"ffn_mult\":%d,"
                     "\"topk\":%d,\"route_dim\":%d,\"bins\":%d,\"emb_dim\":%d,\"task\":\"multilabel\",\"backbone\":\"tab\","
                     "\"classes\":[", d, heads, layers, ffn, topk, route, bins, emb);
    for (int k = 0; k < classes; k++)
        n += snprintf(s + n, cap - n, "%s\"D%d\"", k ? "," : "", k + 1);
    n += snprintf(s + n, cap - n, "],\"modalities\":[{\"name\":\"tab\",\"kind\":\"tabular\",\"features\":[");
    for (int j = 0; j < F; j++)
        n += j < cat ? snprintf(s + n, cap - n, "%s{\"name\":\"c%d\",\"type\":\"categorical\",\"vocab\":[\"a\",\"b\",\"c\"]}",
                                j ? "," : "", j)
                     : snprintf(s + n, cap - n, "%s{\"name\":\"x%d\",\"type\":\"numeric\"}", j ? "," : "", j);
    n += snprintf(s + n, cap - n, "]}");
    if (txt)
        n += snprintf(s + n, cap - n, ",{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":%d,\"tokens\":1}", txt);
    if (graph)
        n += snprintf(s + n, cap - n, ",{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":%d,\"tokens\":1}", graph);
    snprintf(s + n, cap - n, "]}");
    return s;
}

static int run_bench(const char *shape, int batch, int steps, int threads, int supcma)
{
    char *json = bench_config(shape);
    if (!json)
        return cli_usage("train", "--shape: \"%s\" is not production or KEY=V,... with known keys", shape);
    craft_config cfg;
    craft_error err;
    int rc = craft_config_parse(&cfg, json, strlen(json), &err);
    free(json);
    if (rc)
        return cli_fail("train", &err);
    double sps = 0, sec = 0;
    int th = threads > 0 ? threads : craft_cpu_count();
    rc = craft_trainer_bench(&cfg, batch, th, steps, supcma, &sps, &sec, &err);
    craft_config_free(&cfg);
    if (rc)
        return cli_fail("train", &err);
    printf("training (forward + backward + AdamW%s), shape %s, batch %d, %d threads: %.1f samples/s "
           "(%.2f s per step, %d steps after one warm-up)\n",
           supcma ? ", SupCMA" : "", shape, batch, th, sps, sec, steps);
    return 0;
}

#ifdef CRAFT_TRAIN_HAVE_STORE
/* The store's labelled orders (of one dataset) into a temporary JSONL file. */
static int export_store(const char *db, const char *dataset, char *path, size_t cap)
{
    craft_error err;
    craft_store *s;
    if (!craft_store_export_jsonl) {
        fprintf(stderr, "craft train: --db: this build's case store cannot export orders yet\n");
        return EXIT_UNAVAIL;
    }
    if (craft_store_open(&s, db, CRAFT_STORE_READONLY, &err))
        return cli_fail("train", &err);
    int64_t ds = 0;
    int rc = 0;
    if (dataset && craft_store_dataset_find(s, dataset, &ds, &err)) {
        craft_store_close(s);
        return cli_fail("train", &err);
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(path, cap, "%s/craft-train-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    uint64_t n = 0;
    if (!f) {
        fprintf(stderr, "craft train: cannot create a temporary file in %s: %s\n", tmp ? tmp : "/tmp", strerror(errno));
        rc = EXIT_IOERR;
    } else if (craft_store_export_jsonl(s, ds, 1, f, &n, &err)) {
        rc = cli_fail("train", &err);
    }
    if (f && fclose(f) && !rc) {
        fprintf(stderr, "craft train: writing %s failed\n", path);
        rc = EXIT_IOERR;
    }
    craft_store_close(s);
    if (rc)
        unlink(path);
    else
        fprintf(stderr, "craft train: %llu labelled orders from %s\n", (unsigned long long)n, db);
    return rc;
}
#endif

/* The --config file, read whole. */
static int read_config(const char *config, char **out)
{
    *out = NULL;
    FILE *cf = fopen(config, "rb");
    if (!cf) {
        fprintf(stderr, "craft train: cannot open %s: %s\n", config, strerror(errno));
        return EXIT_NOINPUT;
    }
    char *json = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *p = realloc(json, cap = 2 * cap + 8192);
            if (!p) {
                free(json);
                fclose(cf);
                fprintf(stderr, "craft train: out of memory reading %s\n", config);
                return EXIT_SOFTWARE;
            }
            json = p;
        }
        size_t got = fread(json + len, 1, 4096, cf);
        len += got;
        if (got < 4096)
            break;
    }
    fclose(cf);
    json[len] = 0;
    *out = json;
    return 0;
}

/* Without --config (*json NULL), the config made from the training file, its
 * summary on stderr (craft config init). Then the file against the config:
 * unused features and entity types are listed, empty modalities warned about,
 * text or entities the encoders cannot encode at the model's widths refused. */
static int config_and_inputs(const char *config, const char *input, char **json)
{
    craft_error err;
    if (!*json) {
        craft_infer_options io;
        craft_infer_defaults(&io);
        fprintf(stderr, "craft train: no --config: the model config is made from %s (craft config init)\n", input);
        if (craft_config_infer(input, &io, stderr, json, &err))
            return cli_fail("train", &err);
    }
    if (!strcmp(input, "-"))
        return 0;
    craft_config cfg;
    if (craft_config_parse(&cfg, *json, strlen(*json), &err)) {
        craft_error_prefix(&err, "%s", config ? config : "the config made from the data");
        return cli_fail("train", &err);
    }
    craft_input_report rep;
    int rc = craft_input_check(&cfg, input, "train", stderr, 0, &rep, &err);
    craft_config_free(&cfg);
    return rc ? cli_fail("train", &err) : 0;
}

int cmd_train(int argc, char **argv)
{
    craft_trainer_options o;
    craft_trainer_defaults(&o);
    const char *db = NULL, *dataset = NULL, *config = NULL, *device = NULL, *shape = "production";
    int bench = 0, steps = 3, rc, autosearch = 0, batch_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
#define NEED_VALUE                                                      \
    if (!v)                                                             \
        return cli_usage("train", "%s needs a value", a);               \
    i++;
        if (!strcmp(a, "--no-supcma")) {
            o.supcma = 0;
        } else if (!strcmp(a, "--uniform-tau")) {
            o.uniform_tau = 1;
        } else if (!strcmp(a, "--bench")) {
            bench = 1;
        } else if (!strcmp(a, "--no-calibrate")) {
            o.calibrate = 0;
        } else if (!strcmp(a, "--auto")) {
            autosearch = 1;
        } else if (!strcmp(a, "--val")) {
            NEED_VALUE o.val_input = v;
        } else if (!strcmp(a, "--split")) {
            NEED_VALUE if (!strcmp(v, "auto")) o.split = CRAFT_SPLIT_AUTO;
            else if (!strcmp(v, "time")) o.split = CRAFT_SPLIT_TIME;
            else if (!strcmp(v, "hash")) o.split = CRAFT_SPLIT_HASH;
            else return cli_usage("train", "--split takes auto, time or hash, not \"%s\"", v);
        } else if (!strcmp(a, "--sampler")) {
            NEED_VALUE if (!strcmp(v, "uniform")) o.sampler = CRAFT_SAMPLER_UNIFORM;
            else if (!strcmp(v, "balanced")) o.sampler = CRAFT_SAMPLER_BALANCED;
            else return cli_usage("train", "--sampler takes uniform or balanced, not \"%s\"", v);
        } else if (!strcmp(a, "--encoding")) {
            NEED_VALUE if (!strcmp(v, "piecewise")) o.tab_encoding = CRAFT_TAB_PIECEWISE;
            else if (!strcmp(v, "bins")) o.tab_encoding = CRAFT_TAB_BINS;
            else return cli_usage("train", "--encoding takes piecewise or bins, not \"%s\"", v);
        } else if (!strcmp(a, "--wide-head")) {
            NEED_VALUE if (!strcmp(v, "on")) o.wide_head = 1;
            else if (!strcmp(v, "off")) o.wide_head = 0;
            else return cli_usage("train", "--wide-head takes on or off, not \"%s\"", v);
        } else if (!strcmp(a, "--weight-decay")) {
            NEED_VALUE if ((rc = parse_float(a, v, 0.0, 10.0, &o.weight_decay))) return rc;
        } else if (!strcmp(a, "--dropout")) {
            NEED_VALUE if ((rc = parse_float(a, v, 0.0, 0.9, &o.dropout))) return rc;
        } else if (!strcmp(a, "--input")) {
            NEED_VALUE o.input = v;
        } else if (!strcmp(a, "--db")) {
            NEED_VALUE db = v;
        } else if (!strcmp(a, "--dataset")) {
            NEED_VALUE dataset = v;
        } else if (!strcmp(a, "--output")) {
            NEED_VALUE o.output = v;
        } else if (!strcmp(a, "--config")) {
            NEED_VALUE config = v;
        } else if (!strcmp(a, "--device")) {
            NEED_VALUE device = v;
        } else if (!strcmp(a, "--shape")) {
            NEED_VALUE shape = v;
        } else if (!strcmp(a, "--epochs")) {
            NEED_VALUE if (cli_int("train", a, v, 1, 100000, &o.epochs)) return EXIT_USAGE;
        } else if (!strcmp(a, "--batch")) {
            NEED_VALUE if (cli_int("train", a, v, 2, 65536, &o.batch)) return EXIT_USAGE;
            batch_given = 1;
        } else if (!strcmp(a, "--steps")) {
            NEED_VALUE if (cli_int("train", a, v, 1, 100000, &steps)) return EXIT_USAGE;
        } else if (!strcmp(a, "--threads")) {
            NEED_VALUE if (cli_int("train", a, v, 1, 1024, &o.threads)) return EXIT_USAGE;
        } else if (!strcmp(a, "--patience")) {
            NEED_VALUE if (cli_int("train", a, v, 1, 100000, &o.patience)) return EXIT_USAGE;
        } else if (!strcmp(a, "--seed")) {
            NEED_VALUE int s;
            if (cli_int("train", a, v, 0, 2147483647, &s))
                return EXIT_USAGE;
            o.seed = (uint64_t)s;
        } else if (!strcmp(a, "--lr")) {
            NEED_VALUE if ((rc = parse_float(a, v, 1e-7, 1.0, &o.lr))) return rc;
        } else if (!strcmp(a, "--lambda")) {
            NEED_VALUE if ((rc = parse_float(a, v, 0.0, 100.0, &o.lambda))) return rc;
        } else if (!strcmp(a, "--tau")) {
            NEED_VALUE if ((rc = parse_float(a, v, 1e-4, 100.0, &o.tau))) return rc;
        } else if (!strcmp(a, "--val-fraction")) {
            NEED_VALUE if ((rc = parse_float(a, v, 0.001, 0.9, &o.val_fraction))) return rc;
        } else if (!strcmp(a, "--time-budget")) {
            NEED_VALUE float tb;
            if ((rc = parse_float(a, v, 1.0, 1e7, &tb)))
                return rc;
            o.time_budget = tb;
        } else {
            return cli_usage("train", "unknown option \"%s\" (see craft train --help)", a);
        }
#undef NEED_VALUE
    }
    const char *dev;
    if ((rc = cli_pick_device("train", device, &dev)))
        return rc;
    if (bench)
        return run_bench(shape, batch_given ? o.batch : 512, steps, o.threads, o.supcma);
    if (!!o.input == !!db)
        return cli_usage("train", "give one of --input FILE or --db DB");
    if (!o.output)
        return cli_usage("train", "--output MODEL is required");
    if (!config && o.input && !strcmp(o.input, "-"))
        return cli_usage("train", "without --config the config is made from the input, which cannot be standard input");
    if (dataset && !db)
        return cli_usage("train", "--dataset goes with --db");
    char *json = NULL;
    if (config && (rc = read_config(config, &json)))
        return rc;
    char tmp_path[1024] = "";
    if (db) {
#ifdef CRAFT_TRAIN_HAVE_STORE
        if ((rc = export_store(db, dataset, tmp_path, sizeof tmp_path))) {
            free(json);
            return rc;
        }
        o.input = tmp_path;
#else
        free(json);
        fprintf(stderr, "craft train: --db: this build has no case store (SQLite)\n");
        return EXIT_UNAVAIL;
#endif
    } else if (o.val_input && access(o.val_input, R_OK)) {
        fprintf(stderr, "craft train: cannot open %s: %s\n", o.val_input, strerror(errno));
        free(json);
        return EXIT_NOINPUT;
    } else if (strcmp(o.input, "-") && access(o.input, R_OK)) {
        fprintf(stderr, "craft train: cannot open %s: %s\n", o.input, strerror(errno));
        free(json);
        return EXIT_NOINPUT;
    }
    /* No --config: the config from the training file; then the file's inputs
     * against the config, loudly (config_infer.h). */
    if ((rc = config_and_inputs(config, o.input, &json))) {
        if (tmp_path[0])
            unlink(tmp_path);
        free(json);
        return rc;
    }
    /* A checkpoint's config is accepted too: {"craft.config": "..."} is not, a plain config is. */
    o.config_json = json;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART; /* a write of the checkpoint in progress goes on */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    o.cancel = &interrupted;
    o.log = stdout;
    o.live = 1;
    craft_trainer_result res;
    craft_error err;
    rc = autosearch ? craft_trainer_auto(&o, &res, &err) : craft_trainer_run(&o, &res, &err);
    sigaction(SIGINT, &old, NULL);
    if (tmp_path[0])
        unlink(tmp_path);
    free(json);
    /* Any error fails the command, also one after an improvement (a checkpoint
     * that could not be written): "model written" must mean it was. */
    if (rc)
        return cli_fail("train", &err);
    printf("best validation macro PR-AUC %.4f (ROC-AUC %.4f) at epoch %d of %d; %.1f samples/s; %.0f s%s\n"
           "model written to %s\n",
           res.best_val_ap, res.best_val_roc, res.best_epoch, res.epochs_run, res.samples_per_s, res.seconds,
           res.cancelled ? " (interrupted: the best checkpoint so far is kept)" : "", o.output);
    return res.cancelled ? EXIT_CANCELLED : 0;
}
