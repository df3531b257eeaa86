/* craft report: explanation reports (PDF, JSON, Markdown), the queue as CSV and
 * single plots (PNG, SVG) from the case store, through craft_report_write. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "commands.h"
#include "report.h"
#include "scoring.h"

static void help(void)
{
    printf("Usage: craft report --db DB (--order ID ... | [selection]) --output FILE [options]\n\n"
           "Writes an explanation report of one order, several (--order repeated), or a filtered\n"
           "queue. The format follows FILE's extension:\n"
           "  .pdf   pages per case: rationale, scores per modality subset, gates, key features,\n"
           "         CMIS heatmap, rankings, perturbation, score space, decision, notes, audit\n"
           "  .json  the same evidence, stable keys (docs/REPORTS.md)\n"
           "  .md    the same evidence as Markdown\n"
           "  .csv   the queue: one row per selected order (RFC 4180)\n"
           "  .png/.svg  one plot of one order (needs --order and --plot)\n\n"
           "Selection (without --order; default: every case of the latest model):\n"
           "  --status S[,S...]   new, in_review, confirmed_defect, false_positive, escalated, needs_info\n"
           "  --class C           with --threshold: keep orders whose C score >= T\n"
           "  --threshold T       keep scores >= T (the --class score, else the top score)\n"
           "  --assignee NAME     (\"\" = unassigned)   --search TEXT  order or entity id substring\n"
           "  --all               orders without a case too\n"
           "  --dataset NAME      --sort top|class|time|status|priority|order|updated  --asc\n"
           "  --limit N           at most N cases\n\n"
           "Options:\n"
           "  --db DB             the case store (required)\n"
           "  --output FILE       where to write (required); replaced only when the report is complete\n"
           "  --model M           the model whose scores to report: a checkpoint file registered in\n"
           "                      the store (by its SHA-256) or a store model id (default: latest)\n"
           "  --plot KIND         scores, heatmap, space or perturbation (with .png/.svg output)\n"
           "  --quiet             no progress on standard error\n\n"
           "Ctrl-C stops and leaves FILE as it was. Exit status: 0 done, 64 usage, 65 no such\n"
           "order or nothing selected, 66 no such store or model file, 74 write error, 130 cancelled.\n");
}

static volatile int cancelled;

static void on_sigint(int sig)
{
    (void)sig;
    cancelled = 1;
}

typedef struct {
    int tty;
    double last;
} progress_state;

static void show_progress(void *user, const char *stage, int64_t done, int64_t total)
{
    progress_state *ps = user;
    if (!ps->tty)
        return;
    double now = craft_now();
    if (now - ps->last < 0.2 && (total == 0 || done < total))
        return;
    ps->last = now;
    if (total > 0)
        fprintf(stderr, "\r%-11s %lld/%lld cases (%.0f%%)   ", stage, (long long)done, (long long)total,
                100.0 * done / total);
    else
        fprintf(stderr, "\r%-11s %lld orders   ", stage, (long long)done);
    fflush(stderr);
}

static int parse_status_mask(const char *list, uint32_t *mask)
{
    *mask = 0;
    char *copy = strdup(list), *save = NULL;
    int ok = copy != NULL && *list;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && ok; t = strtok_r(NULL, ",", &save)) {
        int s = craft_case_status_parse(t);
        if (s < 0)
            ok = 0;
        else
            *mask |= 1u << s;
    }
    free(copy);
    return ok ? 0 : -1;
}

/* --model: a checkpoint whose hash the store knows, or a store model id. */
static int resolve_model(craft_store *s, const char *arg, int64_t *id)
{
    craft_error err = {0};
    craft_model_info *info = NULL;
    int n = 0;
    if (craft_store_models(s, &info, &n, &err))
        return cli_fail("report", &err);
    char hex[65] = "";
    int is_file = access(arg, F_OK) == 0;
    if (is_file && craft_sha256_file(arg, hex, &err)) {
        craft_model_info_free(info, n);
        return cli_fail("report", &err);
    }
    char *end;
    long long want = is_file ? 0 : strtoll(arg, &end, 10);
    if (!is_file && (!*arg || *end)) {
        craft_model_info_free(info, n);
        fprintf(stderr, "craft report: --model: cannot open \"%s\" (a checkpoint file or a store model id)\n", arg);
        return EXIT_NOINPUT;
    }
    *id = 0;
    for (int i = 0; i < n; i++)
        if (is_file ? !strcmp(info[i].sha256, hex) : info[i].id == want)
            *id = info[i].id;
    craft_model_info_free(info, n);
    if (!*id) {
        fprintf(stderr, "craft report: model %s is not in %s (score the store with it first: craft score --db)\n", arg,
                craft_store_path(s));
        return EXIT_DATA;
    }
    return 0;
}

typedef struct {
    const char *db, *output, *model, *status, *cls, *assignee, *search, *dataset, *sort, *plot;
    const char **orders;
    int n_orders, all, asc, quiet, limit;
    double threshold;
    int has_threshold;
} opts;

static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->orders = calloc((size_t)argc, sizeof(char *));
    if (!o->orders)
        return EXIT_SOFTWARE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **val = NULL;
        if (!strcmp(a, "--all")) o->all = 1;
        else if (!strcmp(a, "--asc")) o->asc = 1;
        else if (!strcmp(a, "--quiet")) o->quiet = 1;
        else if (!strcmp(a, "--db")) val = &o->db;
        else if (!strcmp(a, "--output") || !strcmp(a, "-o")) val = &o->output;
        else if (!strcmp(a, "--model")) val = &o->model;
        else if (!strcmp(a, "--status")) val = &o->status;
        else if (!strcmp(a, "--class")) val = &o->cls;
        else if (!strcmp(a, "--assignee")) val = &o->assignee;
        else if (!strcmp(a, "--search")) val = &o->search;
        else if (!strcmp(a, "--dataset")) val = &o->dataset;
        else if (!strcmp(a, "--sort")) val = &o->sort;
        else if (!strcmp(a, "--plot")) val = &o->plot;
        else if (!strcmp(a, "--order")) {
            if (i + 1 >= argc)
                return cli_usage("report", "--order needs an order id");
            o->orders[o->n_orders++] = argv[++i];
        } else if (!strcmp(a, "--limit")) {
            if (cli_int("report", "--limit", i + 1 < argc ? argv[++i] : NULL, 1, 100000000, &o->limit))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--threshold")) {
            char *end;
            const char *v = i + 1 < argc ? argv[++i] : "";
            o->threshold = strtod(v, &end);
            if (!*v || *end || !(o->threshold >= 0 && o->threshold <= 1))
                return cli_usage("report", "--threshold needs a score in 0..1, got \"%s\"", v);
            o->has_threshold = 1;
        } else {
            return cli_usage("report", "unknown option \"%s\"", a);
        }
        if (val) {
            if (i + 1 >= argc)
                return cli_usage("report", "%s needs a value", a);
            *val = argv[++i];
        }
    }
    if (!o->db)
        return cli_usage("report", "--db DB is required");
    if (!o->output)
        return cli_usage("report", "--output FILE is required");
    if (o->n_orders && (o->status || o->cls || o->has_threshold || o->assignee || o->search || o->all || o->sort))
        return cli_usage("report", "--order names the orders; it does not combine with a queue selection");
    if (o->cls && !o->has_threshold && (!o->sort || strcmp(o->sort, "class")))
        return cli_usage("report", "--class goes with --threshold (or --sort class)");
    return 0;
}

/* The selection's query and its description in words. */
static int build_selection(craft_store *s, const opts *o, craft_report_selection *sel, char *desc, size_t n)
{
    craft_error err = {0};
    craft_queue_query *q = &sel->query;
    q->cases_only = !o->all;
    q->ascending = o->asc;
    q->assignee = o->assignee;
    q->search = o->search;
    sel->max_cases = o->limit;
    snprintf(desc, n, "%s", o->all ? "all scored orders" : "cases");
    if (o->status) {
        if (parse_status_mask(o->status, &q->status_mask))
            return cli_usage("report", "--status: \"%s\" is not a list of statuses", o->status);
        snprintf(desc + strlen(desc), n - strlen(desc), " with status %s", o->status);
    }
    int cls = -1;
    if (o->cls) {
        craft_queue_page p;
        craft_queue_query probe;
        craft_queue_query_init(&probe);
        probe.model_id = sel->model_id;
        probe.limit = 1;
        if (craft_store_queue(s, &probe, &p, &err))
            return cli_fail("report", &err);
        for (int k = 0; k < p.n_classes; k++)
            if (!strcmp(p.classes[k], o->cls))
                cls = k;
        craft_queue_page_free(&p);
        if (cls < 0)
            return cli_usage("report", "--class: the model has no class \"%s\"", o->cls);
    }
    if (o->has_threshold) {
        q->cls = cls;
        q->min_score = (float)o->threshold;
        snprintf(desc + strlen(desc), n - strlen(desc), ", %s score >= %g", o->cls ? o->cls : "top", o->threshold);
    }
    if (o->assignee)
        snprintf(desc + strlen(desc), n - strlen(desc), ", assignee \"%s\"", o->assignee);
    if (o->search)
        snprintf(desc + strlen(desc), n - strlen(desc), ", matching \"%s\"", o->search);
    if (o->dataset) {
        if (craft_store_dataset_find(s, o->dataset, &q->dataset_id, &err))
            return cli_fail("report", &err);
        snprintf(desc + strlen(desc), n - strlen(desc), ", dataset %s", o->dataset);
    }
    if (o->sort) {
        static const char *const sorts[] = {"top", "class", "time", "status", "priority", "order", "updated"};
        q->sort = -1;
        for (int i = 0; i < 7; i++)
            if (!strcmp(o->sort, sorts[i]))
                q->sort = i;
        if (q->sort < 0)
            return cli_usage("report", "--sort: unknown order \"%s\"", o->sort);
        if (q->sort == CRAFT_SORT_CLASS_SCORE) {
            if (cls < 0)
                return cli_usage("report", "--sort class needs --class");
            q->sort_class = cls;
        }
        snprintf(desc + strlen(desc), n - strlen(desc), ", by %s%s", o->sort, o->asc ? " ascending" : "");
    }
    if (o->limit)
        snprintf(desc + strlen(desc), n - strlen(desc), ", first %d", o->limit);
    sel->description = desc;
    return 0;
}

static int write_plot(craft_store *s, const opts *o, const craft_report_selection *sel)
{
    craft_error err = {0};
    int kind = craft_plot_kind_parse(o->plot);
    if (kind < 0)
        return cli_usage("report", "--plot: \"%s\" is not scores, heatmap, space or perturbation", o->plot);
    if (o->n_orders != 1)
        return cli_usage("report", "a plot is of one order: give exactly one --order");
    craft_report r;
    if (craft_report_build(s, sel, &r, NULL, NULL, &cancelled, &err))
        return cli_fail("report", &err);
    int rc = craft_report_write_plot(&r, &r.cases[0], (craft_plot_kind)kind, o->output, &err);
    craft_report_free(&r);
    if (rc)
        return cli_fail("report", &err);
    return 0;
}

int cmd_report(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        }
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        free(o.orders);
        return rc;
    }
    const char *dot = strrchr(o.output, '.');
    int is_plot = dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".svg"));
    if (!is_plot && craft_report_format_from_path(o.output) == CRAFT_REPORT_AUTO) {
        free(o.orders);
        return cli_usage("report", "--output must end in .pdf, .json, .md, .csv, .png or .svg: \"%s\"", o.output);
    }
    if (is_plot != (o.plot != NULL)) {
        free(o.orders);
        return cli_usage("report", is_plot ? "a .png/.svg output needs --plot KIND" : "--plot needs a .png or .svg output");
    }
    if (access(o.db, F_OK) != 0) {
        fprintf(stderr, "craft report: cannot open the store %s: no such file\n", o.db);
        free(o.orders);
        return EXIT_NOINPUT;
    }
    craft_store *s = NULL;
    craft_error err = {0};
    if (craft_store_open(&s, o.db, CRAFT_STORE_READONLY, &err)) {
        free(o.orders);
        return cli_fail("report", &err);
    }
    craft_report_selection sel;
    craft_report_selection_init(&sel);
    char desc[1024];
    if (o.model)
        rc = resolve_model(s, o.model, &sel.model_id);
    if (!rc && o.n_orders) {
        sel.order_ids = o.orders;
        sel.n_order_ids = o.n_orders;
        snprintf(desc, sizeof desc, "%d named order%s", o.n_orders, o.n_orders == 1 ? "" : "s");
        sel.description = desc;
    } else if (!rc) {
        rc = build_selection(s, &o, &sel, desc, sizeof desc);
    }
    if (!rc && is_plot) {
        rc = write_plot(s, &o, &sel);
    } else if (!rc) {
        struct sigaction sa = {0}, old;
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, &old);
        progress_state ps = {isatty(2) && !o.quiet, 0};
        craft_report_options ro = {CRAFT_REPORT_AUTO, show_progress, &ps, &cancelled};
        craft_report_stats st;
        int r2 = craft_report_write(s, &sel, o.output, &ro, &st, &err);
        sigaction(SIGINT, &old, NULL);
        if (ps.tty)
            fputc('\n', stderr);
        if (r2) {
            rc = cli_fail("report", &err);
        } else if (!o.quiet) {
            if (st.pages)
                fprintf(stderr, "craft report: %s: %lld case%s, %lld pages in %.1f s\n", o.output, (long long)st.n_cases,
                        st.n_cases == 1 ? "" : "s", (long long)st.pages, st.seconds);
            else
                fprintf(stderr, "craft report: %s: %lld %s in %.1f s\n", o.output, (long long)st.n_cases,
                        craft_report_format_from_path(o.output) == CRAFT_REPORT_CSV ? "rows" : "cases", st.seconds);
        }
    }
    craft_store_close(s);
    free(o.orders);
    return rc;
}
