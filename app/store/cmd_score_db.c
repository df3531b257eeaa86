/* craft score --db: score a case store's orders, storing predictions,
 * explanations and cases (the hook in app/cli/cmd_score.c calls this). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "store.h"

int craft_store_score_command(int argc, char **argv);

static void help(void)
{
    printf("Usage: craft score --db DB --model MODEL [options]\n\n"
           "Scores the orders of the case store DB with MODEL and stores, per order: the full model's\n"
           "scores and those of every modality subset containing the backbone, the backbone importance,\n"
           "CMIS and gates (and with --perturbation, perturbation importance). The model is registered\n"
           "in the store by its SHA-256.\n\n"
           "Flag rule: an order is flagged when some class k has a full-model score >= its threshold:\n"
           "the checkpoint's \"thresholds\" metadata for k where present, else --threshold (default 0.5).\n"
           "A flagged order without a case gets one (status new, audit row by \"craft score\"); an existing\n"
           "case keeps its status and history.\n\n"
           "  --db DB              the case store\n"
           "  --model MODEL        a CRAFT checkpoint (.safetensors)\n"
           "  --dataset NAME       only this dataset's orders (default: all)\n"
           "  --threshold P        flag threshold for classes without one in the model (default 0.5)\n"
           "  --only-unscored      skip orders this model has already scored\n"
           "  --no-explain         store scores only (no importance, CMIS)\n"
           "  --no-subsets         store the full model's scores only\n"
           "  --perturbation       also store perturbation importance (slow on wide models)\n"
           "  --threads N          CPU threads (default: all cores)\n"
           "  --batch N            orders per engine batch (default 64)\n\n"
           "A run is all or nothing: its batches are staged in SQLite's temporary folder and stored\n"
           "in one short transaction at the end, so a failed, interrupted or killed run leaves the\n"
           "stored scores and cases as they were (the run is recorded as failed or cancelled).\n"
           "An order whose stored inputs do not fit the model is skipped with its reason (craft cases\n"
           "show ID says it); the others are stored, and the run exits 65 naming the first few.\n"
           "Progress goes to standard error on a terminal.\n");
}

static void show_progress(void *user, uint64_t done, uint64_t bytes, uint64_t total, double seconds)
{
    (void)user;
    (void)bytes;
    double rate = seconds > 0 ? done / seconds : 0;
    if (total)
        fprintf(stderr, "\r%llu of %llu orders, %.0f orders/s, %.0f s left   ", (unsigned long long)done,
                (unsigned long long)total, rate, rate > 0 ? (total - done) / rate : 0.0);
    else
        fprintf(stderr, "\r%llu orders, %.0f orders/s   ", (unsigned long long)done, rate);
}

int craft_store_score_command(int argc, char **argv)
{
    const char *db = NULL, *model = NULL, *dataset = NULL;
    craft_store_score_options o = {.explain = 1, .subsets = 1, .flag_threshold = 0.5f, .batch = 64};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--only-unscored")) {
            o.only_unscored = 1;
        } else if (!strcmp(a, "--no-explain")) {
            o.explain = 0;
        } else if (!strcmp(a, "--no-subsets")) {
            o.subsets = 0;
        } else if (!strcmp(a, "--perturbation")) {
            o.perturbation = 1;
        } else if (!v) {
            return cli_usage("score", "unknown option or missing value: %s", a);
        } else if (!strcmp(a, "--db")) {
            db = v, i++;
        } else if (!strcmp(a, "--model")) {
            model = v, i++;
        } else if (!strcmp(a, "--dataset")) {
            dataset = v, i++;
        } else if (!strcmp(a, "--threshold")) {
            char *end;
            double t = strtod(v, &end);
            if (!*v || *end || !(t > 0 && t <= 1))
                return cli_usage("score", "--threshold needs a number in (0, 1], got \"%s\"", v);
            o.flag_threshold = (float)t;
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
            return cli_usage("score", "unknown option %s (with --db)", a);
        }
    }
    if (!db || !model)
        return cli_usage("score", "--db and --model are required");
    craft_error err = {0};
    craft_model *m;
    if (cli_model_file("score", model)) /* a directory, FIFO or device: exit 66, never a blocked open */
        return EXIT_NOINPUT;
    if (craft_model_load(&m, model, &err))
        return cli_fail("score", &err);
    craft_store *s;
    if (craft_store_open(&s, db, CRAFT_STORE_READWRITE, &err)) {
        craft_model_free(m);
        return cli_fail("score", &err);
    }
    int status = 0;
    if (dataset && craft_store_dataset_find(s, dataset, &o.dataset_id, &err))
        status = cli_fail("score", &err);
    if (!status) {
        if (isatty(2))
            o.progress = show_progress;
        craft_store_score_stats st;
        int rc = craft_store_score(s, m, model, &o, &st, &err);
        if (o.progress)
            fputc('\n', stderr);
        if (rc)
            status = cli_fail("score", &err);
        else
            fprintf(stderr, "scored %llu orders in %.1f s (%.0f orders/s): %llu flagged, %llu new cases (run %lld)\n",
                    (unsigned long long)st.scored, st.seconds, st.seconds > 0 ? st.scored / st.seconds : 0.0,
                    (unsigned long long)st.flagged, (unsigned long long)st.new_cases, (long long)st.run_id);
        if (!rc && st.failed) {
            /* the good scores are stored; the orders that could not be scored are named */
            craft_score_error *e = NULL;
            int n = 0;
            fprintf(stderr, "craft score: %s: could not score %llu order%s (the model cannot take their stored"
                            " inputs; the other orders' scores are stored):\n",
                    db, (unsigned long long)st.failed, st.failed == 1 ? "" : "s");
            if (!craft_store_score_errors(s, st.model_id, st.run_id, NULL, 5, &e, &n, &err))
                for (int i = 0; i < n; i++)
                    fprintf(stderr, "  %s: could not score: %s\n", e[i].order_id, e[i].reason);
            if ((uint64_t)n < st.failed)
                fprintf(stderr, "  ... and %llu more (craft cases show ID --db %s says why)\n",
                        (unsigned long long)(st.failed - (uint64_t)n), db);
            craft_score_errors_free(e, n);
            status = EXIT_DATA;
        }
    }
    craft_store_close(s);
    craft_model_free(m);
    return status;
}
