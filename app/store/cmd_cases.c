/* craft cases: every case action of the app, from the command line, through
 * the same library calls (store.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "scoring.h"
#include "store.h"
#include "termsafe.h"

/* Untrusted text (ids, names, notes) on a terminal: escaped (termsafe.h). Up to 8
 * at once in one printf. */
static const char *T(const char *s)
{
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    return craft_term_str(s, buf[k], sizeof buf[k]);
}

static void help(void)
{
    printf("Usage: craft cases ACTION --db DB [options]\n\n"
           "Actions:\n"
           "  list                 the review queue (a page of it) and counts per status\n"
           "  show ORDER_ID        one order: features, text, entities, scores per subset,\n"
           "                       explanation, its case, notes and audit trail\n"
           "  decide ORDER_ID STATUS [--classes D2,D3] [--note TEXT]\n"
           "                       STATUS: new, in_review, confirmed_defect, false_positive,\n"
           "                       escalated, needs_info. A confirmed defect labels the named classes\n"
           "                       1 (default: the top class) and the others 0; a false positive\n"
           "                       labels every class 0; other statuses withdraw the decision's labels\n"
           "  assign ORDER_ID NAME (\"\" unassigns)\n"
           "  priority ORDER_ID N\n"
           "  note ORDER_ID TEXT\n"
           "  entity TYPE ID       an entity's history: orders, cases, labels per class\n"
           "  verify               checks the audit log: its hash chain (each row's SHA-256 covers\n"
           "                       the row and the row before) and its append-only triggers; prints\n"
           "                       the rows and the last hash (keep it: a later run can then tell\n"
           "                       a truncated log); exit 65 naming the first broken row\n"
           "  bench                page-read times of the queue (the list options' query; every\n"
           "                       sort unless --sort) at its top, middle and end: by OFFSET, by\n"
           "                       key after the page before, by key before the page after\n"
           "                       (--limit rows a page, default 256; median of 3 warm reads);\n"
           "                       --pass also times reading the whole queue by key (the app's\n"
           "                       pass that keeps a key per page for jumps)\n\n"
           "Options:\n"
           "  --db DB              the case store\n"
           "  --json               JSON output\n"
           "  --actor NAME         who acts (default: $USER)\n"
           "list options:\n"
           "  --status S[,S...]    keep these statuses     --all      orders without a case too\n"
           "  --class C            class name for --min and --sort class\n"
           "  --min P              keep scores >= P (the --class score, else the top score)\n"
           "  --assignee NAME      (\"\" = unassigned)      --search TEXT  order or entity id substring\n"
           "  --sort top|class|time|status|priority|order|updated   --asc\n"
           "  --limit N (default 50)  --offset N  --model ID  --dataset NAME\n\n"
           "Every action is one durable transaction with its audit row.\n");
}

typedef struct {
    const char *db, *actor, *classes, *note, *sort, *cls, *status, *dataset, *assignee, *search;
    int json, all, asc, limit, model_id, pass;
    long offset;
    double min;
    const char *pos[4];
    int n_pos;
} opts;

static void print_time(FILE *f, double t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char buf[40];
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fputs(buf, f);
}

static void json_time(FILE *f, double t)
{
    fputc('"', f);
    print_time(f, t);
    fputc('"', f);
}

static void json_str_or_null(FILE *f, const char *s)
{
    if (s)
        craft_json_string(f, s);
    else
        fputs("null", f);
}

static void json_raw_or_string(FILE *f, const char *s)
{
    cJSON *j = s ? cJSON_ParseWithOpts(s, NULL, 1) : NULL; /* the whole text, nothing after */
    if (!s)
        fputs("null", f);
    else if (j)
        fputs(s, f);
    else
        craft_json_string(f, s);
    cJSON_Delete(j);
}

static void json_float(FILE *f, float v)
{
    if (isnan(v))
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
}

static int parse_status_mask(const char *list, uint32_t *mask)
{
    *mask = 0;
    char *copy = strdup(list), *save = NULL;
    int ok = copy != NULL;
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

/* The queue query of the list options (also the bench's); 0 or an exit status. */
static int list_query(craft_store *s, const opts *op, craft_queue_query *qo)
{
    craft_queue_query q;
    craft_queue_query_init(&q);
    craft_error err = {0};
    q.cases_only = !op->all;
    q.limit = op->limit;
    q.offset = op->offset;
    q.ascending = op->asc;
    q.model_id = op->model_id;
    q.assignee = op->assignee;
    q.search = op->search;
    q.min_score = (float)op->min;
    if (op->status && parse_status_mask(op->status, &q.status_mask))
        return cli_usage("cases", "--status: \"%s\" is not a list of statuses", op->status);
    if (op->dataset && craft_store_dataset_find(s, op->dataset, &q.dataset_id, &err))
        return cli_fail("cases", &err);
    static const char *const sorts[] = {"top", "class", "time", "status", "priority", "order", "updated"};
    if (op->sort) {
        q.sort = -1;
        for (int i = 0; i < 7; i++)
            if (!strcmp(op->sort, sorts[i]))
                q.sort = i;
        if (q.sort < 0)
            return cli_usage("cases", "--sort must be one of top, class, time, status, priority, order, updated");
    }
    if (op->cls) {
        /* class names come from the model of the queue */
        craft_queue_query probe = q;
        probe.limit = 1;
        probe.sort = CRAFT_SORT_TIME;
        probe.cls = -1;
        probe.min_score = 0;
        craft_queue_page pg;
        if (craft_store_queue(s, &probe, &pg, &err))
            return cli_fail("cases", &err);
        int k = -1;
        for (int i = 0; i < pg.n_classes; i++)
            if (!strcmp(pg.classes[i], op->cls))
                k = i;
        craft_queue_page_free(&pg);
        if (k < 0)
            return cli_usage("cases", "--class: the model has no class \"%s\"", op->cls);
        q.cls = q.sort_class = k;
    } else if (q.sort == CRAFT_SORT_CLASS_SCORE) {
        return cli_usage("cases", "--sort class needs --class");
    }
    *qo = q;
    return 0;
}

static int do_list(craft_store *s, const opts *op)
{
    craft_queue_query q;
    craft_error err = {0};
    int rc = list_query(s, op, &q);
    if (rc)
        return rc;
    craft_queue_page pg;
    craft_queue_counts counts;
    if (craft_store_queue(s, &q, &pg, &err) || craft_store_queue_counts(s, &q, &counts, &err))
        return cli_fail("cases", &err);
    if (op->json) {
        printf("{\"model_id\": %lld, \"classes\": [", (long long)pg.model_id);
        for (int k = 0; k < pg.n_classes; k++) {
            fputs(k ? ", " : "", stdout);
            craft_json_string(stdout, pg.classes[k]);
        }
        printf("], \"counts\": {");
        for (int st = 0; st < CRAFT_CASE_N_STATUS; st++)
            printf("\"%s\": %lld, ", craft_case_status_name(st), (long long)counts.status[st]);
        printf("\"no_case\": %lld, \"total\": %lld}, \"rows\": [", (long long)counts.no_case, (long long)counts.total);
        for (int i = 0; i < pg.n; i++) {
            const craft_queue_row *r = &pg.rows[i];
            printf("%s{\"order_id\": ", i ? ", " : "");
            craft_json_string(stdout, r->order_id);
            printf(", \"ts\": ");
            json_str_or_null(stdout, r->ts);
            printf(", \"case_id\": %lld, \"status\": ", (long long)r->case_id);
            json_str_or_null(stdout, r->status >= 0 ? craft_case_status_name(r->status) : NULL);
            printf(", \"assignee\": ");
            json_str_or_null(stdout, r->assignee);
            printf(", \"priority\": %d, \"top_class\": ", r->priority);
            json_str_or_null(stdout, r->top_class >= 0 && r->top_class < pg.n_classes ? pg.classes[r->top_class] : NULL);
            printf(", \"top_score\": ");
            json_float(stdout, r->top_score);
            printf(", \"scores\": {");
            for (int k = 0; k < pg.n_classes; k++) {
                printf("%s", k ? ", " : "");
                craft_json_string(stdout, pg.classes[k]);
                printf(": ");
                json_float(stdout, r->scores[k]);
            }
            printf("}}");
        }
        printf("]}\n");
    } else {
        printf("%-20s %-17s %-10s %-7s %-12s %s\n", "order", "status", "top class", "score", "assignee", "time");
        for (int i = 0; i < pg.n; i++) {
            const craft_queue_row *r = &pg.rows[i];
            printf("%-20s %-17s %-10s ", T(r->order_id), r->status >= 0 ? craft_case_status_name(r->status) : "-",
                   T(r->top_class >= 0 && r->top_class < pg.n_classes ? pg.classes[r->top_class] : "-"));
            if (isnan(r->top_score))
                printf("%-7s ", "-");
            else
                printf("%-7.3f ", r->top_score);
            printf("%-12s %s\n", T(r->assignee), T(r->ts));
        }
        printf("\n");
        for (int st = 0; st < CRAFT_CASE_N_STATUS; st++)
            printf("%s%s %lld", st ? " · " : "", craft_case_status_label(st), (long long)counts.status[st]);
        printf(" · without a case %lld · total %lld\n", (long long)counts.no_case, (long long)counts.total);
    }
    craft_queue_page_free(&pg);
    return 0;
}

/* ------------------------------------------------------------ bench */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reads one page (reps times, after one untimed read); the median in ms, the
 * last page kept in *pg. */
static int timed_page(craft_store *s, const craft_queue_query *q, int reps, craft_queue_page *pg, double *ms,
                      craft_error *err)
{
    double t[16];
    reps = reps < 1 ? 1 : reps > 15 ? 15 : reps;
    for (int r = 0; r <= reps; r++) {
        craft_queue_page_free(pg);
        double t0 = now_ms();
        if (craft_store_queue(s, q, pg, err))
            return err->code;
        if (r)
            t[r - 1] = now_ms() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    *ms = t[reps / 2];
    return CRAFT_OK;
}

static int same_rows(const craft_queue_page *a, const craft_queue_page *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (a->rows[i].order != b->rows[i].order)
            return 0;
    return 1;
}

/* Page reads at the top, middle and end of the queue for each sort: by OFFSET
 * (how a far jump reads), by key after the page before (scrolling down) and by
 * key before the page after (scrolling up). */
static int do_bench(craft_store *s, const opts *op)
{
    static const char *const names[] = {"top", "class", "time", "status", "priority", "order", "updated"};
    const char *sorts[8];
    int n_sorts = 0;
    if (op->sort)
        sorts[n_sorts++] = op->sort;
    else
        for (int i = 0; i < 7; i++)
            sorts[n_sorts++] = names[i];
    int limit = op->limit == 50 ? 256 : op->limit, reps = 3, bad = 0;
    printf("%-9s %-7s %10s %12s %12s %12s  %s\n", "sort", "where", "row", "offset ms", "keyset ms", "back ms",
           "same rows");
    for (int si = 0; si < n_sorts; si++) {
        opts o2 = *op;
        o2.sort = sorts[si];
        if (!strcmp(sorts[si], "class") && !o2.cls)
            o2.cls = "D1";
        craft_queue_query q;
        int rc = list_query(s, &o2, &q);
        if (rc)
            return rc;
        craft_error err = {0};
        craft_queue_counts c;
        if (craft_store_queue_counts(s, &q, &c, &err))
            return cli_fail("cases", &err);
        int64_t n = 0;
        if (q.status_mask) {
            for (int st = 0; st < CRAFT_CASE_N_STATUS; st++)
                if (q.status_mask & (1u << st)) n += c.status[st];
        } else {
            n = q.cases_only ? c.total - c.no_case : c.total;
        }
        q.limit = limit;
        int64_t at[3] = {0, n / 2, n > limit ? n - limit : 0};
        const char *where[3] = {"top", "middle", "end"};
        for (int w = 0; w < 3; w++) {
            craft_queue_page off = {0}, key = {0}, back = {0}, edge = {0};
            double t_off = 0, t_key = 0, t_back = 0;
            craft_queue_query qo = q;
            qo.offset = at[w];
            rc = timed_page(s, &qo, reps, &off, &t_off, &err);
            /* the key of the row before the page, and of the row after it */
            craft_queue_query qe = q;
            qe.limit = 1;
            if (!rc && at[w] > 0) {
                qe.offset = at[w] - 1;
                if (!(rc = craft_store_queue(s, &qe, &edge, &err)) && edge.n) {
                    craft_queue_query qk = q;
                    qk.seek = &edge.rows[0].key;
                    rc = timed_page(s, &qk, reps, &key, &t_key, &err);
                }
                craft_queue_page_free(&edge);
            } else if (!rc) {
                rc = timed_page(s, &q, reps, &key, &t_key, &err);
            }
            if (!rc && at[w] + limit < n) {
                qe.offset = at[w] + limit;
                if (!(rc = craft_store_queue(s, &qe, &edge, &err)) && edge.n) {
                    craft_queue_query qb = q;
                    qb.seek = &edge.rows[0].key;
                    qb.seek_back = 1;
                    rc = timed_page(s, &qb, reps, &back, &t_back, &err);
                }
                craft_queue_page_free(&edge);
            }
            if (rc)
                return cli_fail("cases", &err);
            int same = same_rows(&off, &key) && (!back.n || same_rows(&off, &back));
            bad += !same;
            printf("%-9s %-7s %10lld %12.2f %12.2f ", sorts[si], where[w], (long long)at[w], t_off, t_key);
            if (back.n)
                printf("%12.2f  %s\n", t_back, same ? "yes" : "NO");
            else
                printf("%12s  %s\n", "-", same ? "yes" : "NO");
            fflush(stdout);
            craft_queue_page_free(&off);
            craft_queue_page_free(&key);
            craft_queue_page_free(&back);
        }
        if (op->pass) {
            /* the app's anchor pass: the whole queue's keys (no row data), 8192 rows a read, a key per page */
            craft_queue_key last = {0}, from = {0}, keys[8192 / 256] = {0};
            int64_t rows = 0;
            double t0 = now_ms();
            for (int more = 1; more;) {
                craft_queue_query qp = q;
                qp.limit = 8192;
                qp.offset = 0;
                craft_queue_key_clear(&from);
                if (last.n && craft_queue_key_copy(&from, &last)) {
                    err.code = CRAFT_ENOMEM;
                    snprintf(err.msg, sizeof err.msg, "out of memory");
                    return cli_fail("cases", &err);
                }
                qp.seek = from.n ? &from : NULL;
                int n_keys = 0;
                int64_t n_read = 0;
                if (craft_store_queue_keys(s, &qp, 256, keys, 8192 / 256, &n_keys, &last, &n_read, &err))
                    return cli_fail("cases", &err);
                rows += n_read;
                more = n_read == qp.limit;
            }
            for (int i = 0; i < 8192 / 256; i++)
                craft_queue_key_clear(&keys[i]);
            craft_queue_key_clear(&from);
            craft_queue_key_clear(&last);
            printf("%-9s whole queue's keys (a key per page), 8192 rows a read: %lld rows in %.0f ms%s\n", sorts[si], (long long)rows,
                   now_ms() - t0, rows == n ? "" : " (NOT the counted rows)");
            bad += rows != n;
        }
    }
    return bad ? EXIT_SOFTWARE : 0;
}

static void show_json(craft_store *s, const craft_order_detail *d)
{
    FILE *f = stdout;
    fputs("{\"order_id\": ", f);
    craft_json_string(f, d->order_id);
    fputs(", \"ts\": ", f);
    json_str_or_null(f, d->ts);
    fputs(", \"features\": {", f);
    int first = 1;
    for (int j = 0; j < d->n_features; j++) {
        if (!d->categories[j] && isnan(d->values[j]))
            continue;
        fputs(first ? "" : ", ", f);
        first = 0;
        craft_json_string(f, d->feature_names[j]);
        fputs(": ", f);
        if (d->categories[j])
            craft_json_string(f, d->categories[j]);
        else
            fprintf(f, "%.9g", d->values[j]);
    }
    const craft_kv *maps[3] = {&d->text, &d->entities, &d->labels};
    const char *names[3] = {"text", "entities", "labels"};
    for (int m = 0; m < 3; m++) {
        fprintf(f, "}, \"%s\": {", names[m]);
        for (int i = 0; i < maps[m]->n; i++) {
            fputs(i ? ", " : "", f);
            craft_json_string(f, maps[m]->keys[i]);
            fputs(": ", f);
            if (m == 2)
                fputs(maps[m]->values[i], f);
            else
                craft_json_string(f, maps[m]->values[i]);
        }
    }
    fputs("}, \"predictions\": [", f);
    for (int p = 0; p < d->n_predictions; p++) {
        const craft_prediction *pr = &d->predictions[p];
        fprintf(f, "%s{\"model_id\": %lld, \"off\": %u, \"modalities\": ", p ? ", " : "", (long long)pr->model_id,
                pr->off);
        craft_json_string(f, pr->modalities);
        fputs(", \"scores\": {", f);
        for (int k = 0; k < d->n_classes; k++) {
            fputs(k ? ", " : "", f);
            craft_json_string(f, d->classes[k]);
            fputs(": ", f);
            json_float(f, pr->scores[k]);
        }
        fputs("}}", f);
    }
    fputs("]", f);
    if (d->has_explanation) {
        const craft_explanation *e = &d->explanation;
        fputs(", \"importance\": {", f);
        for (int j = 0; j < e->n_tokens; j++) {
            fputs(j ? ", " : "", f);
            craft_json_string(f, e->token_names[j]);
            fputs(": ", f);
            json_float(f, e->importance ? e->importance[j] : NAN);
        }
        fputs("}, \"cmis\": {", f);
        for (int a = 0; a < e->n_aux; a++) {
            fputs(a ? ", " : "", f);
            craft_json_string(f, e->aux_names[a]);
            fputs(": {", f);
            for (int j = 0; j < e->n_tokens; j++) {
                fputs(j ? ", " : "", f);
                craft_json_string(f, e->token_names[j]);
                fputs(": ", f);
                json_float(f, e->cmis ? e->cmis[(size_t)a * e->n_tokens + j] : NAN);
            }
            fputs("}", f);
        }
        fputs("}", f);
    }
    fputs(", \"case\": ", f);
    if (!d->has_case) {
        fputs("null", f);
    } else {
        const craft_case *c = &d->kase;
        fprintf(f, "{\"id\": %lld, \"status\": \"%s\", \"assignee\": ", (long long)c->id, craft_case_status_name(c->status));
        json_str_or_null(f, c->assignee);
        fprintf(f, ", \"priority\": %d, \"decided_classes\": ", c->priority);
        json_str_or_null(f, c->decided_classes);
        fputs(", \"created\": ", f);
        json_time(f, c->created);
        fputs(", \"updated\": ", f);
        json_time(f, c->updated);
        craft_error err;
        craft_note *notes = NULL;
        int nn = 0;
        craft_store_case_notes(s, c->id, &notes, &nn, &err);
        fputs(", \"notes\": [", f);
        for (int i = 0; i < nn; i++) {
            fputs(i ? ", " : "", f);
            fputs("{\"at\": ", f);
            json_time(f, notes[i].at);
            fputs(", \"author\": ", f);
            craft_json_string(f, notes[i].author);
            fputs(", \"text\": ", f);
            craft_json_string(f, notes[i].text);
            fputs("}", f);
        }
        craft_notes_free(notes, nn);
        craft_audit_entry *au = NULL;
        int na = 0;
        craft_store_case_audit(s, c->id, &au, &na, &err);
        fputs("], \"audit\": [", f);
        for (int i = 0; i < na; i++) {
            fputs(i ? ", " : "", f);
            fputs("{\"at\": ", f);
            json_time(f, au[i].at);
            fputs(", \"actor\": ", f);
            craft_json_string(f, au[i].actor);
            fputs(", \"action\": ", f);
            craft_json_string(f, au[i].action);
            /* before and after are JSON already (checked: a row edited outside craft must
             * not break or inject into this document; anything else goes as a string) */
            fputs(", \"before\": ", f);
            json_raw_or_string(f, au[i].before);
            fputs(", \"after\": ", f);
            json_raw_or_string(f, au[i].after);
            fputs("}", f);
        }
        craft_audit_free(au, na);
        fputs("]}", f);
    }
    fputs("}\n", f);
}

static void show_text(craft_store *s, const craft_order_detail *d)
{
    printf("order %s   time %s\n", T(d->order_id), T(d->ts));
    for (int p = 0; p < d->n_predictions; p++) {
        const craft_prediction *pr = &d->predictions[p];
        printf("  %-18s", pr->off ? T(pr->modalities) : "full model");
        for (int k = 0; k < d->n_classes; k++)
            printf(" %s %.3f", T(d->classes[k]), pr->scores[k]);
        printf("\n");
    }
    if (d->labels.n) {
        printf("  labels:");
        for (int i = 0; i < d->labels.n; i++)
            printf(" %s=%s", T(d->labels.keys[i]), T(d->labels.values[i]));
        printf("\n");
    }
    for (int i = 0; i < d->entities.n; i++)
        printf("  entity %-10s %s\n", T(d->entities.keys[i]), T(d->entities.values[i]));
    for (int i = 0; i < d->text.n; i++) {
        char cut[101];
        snprintf(cut, sizeof cut, "%s", d->text.values[i]);
        printf("  text %-12s %s%s\n", T(d->text.keys[i]), T(cut), strlen(d->text.values[i]) > 100 ? "..." : "");
    }
    if (d->has_explanation) {
        /* the five most important backbone tokens */
        const craft_explanation *e = &d->explanation;
        int used[5] = {-1, -1, -1, -1, -1};
        printf("  most important:");
        for (int r = 0; r < 5 && r < e->n_tokens; r++) {
            int best = -1;
            for (int j = 0; j < e->n_tokens; j++) {
                int taken = 0;
                for (int q = 0; q < r; q++)
                    taken |= used[q] == j;
                if (!taken && (best < 0 || e->importance[j] > e->importance[best]))
                    best = j;
            }
            used[r] = best;
            printf(" %s %.3f", T(e->token_names[best]), e->importance[best]);
        }
        printf("\n");
    }
    if (!d->has_case) {
        printf("  no case\n");
        return;
    }
    const craft_case *c = &d->kase;
    printf("  case %lld: %s, assignee %s, priority %d%s%s\n", (long long)c->id, craft_case_status_label(c->status),
           T(c->assignee), c->priority, c->decided_classes ? ", classes " : "",
           c->decided_classes ? T(c->decided_classes) : "");
    craft_error err;
    craft_note *notes = NULL;
    int nn = 0;
    craft_store_case_notes(s, c->id, &notes, &nn, &err);
    for (int i = 0; i < nn; i++) {
        printf("  note ");
        print_time(stdout, notes[i].at);
        printf(" %s: ", T(notes[i].author));
        craft_term_fputs(notes[i].text, stdout, 0);
        putchar('\n');
    }
    craft_notes_free(notes, nn);
    craft_audit_entry *au = NULL;
    int na = 0;
    craft_store_case_audit(s, c->id, &au, &na, &err);
    for (int i = 0; i < na; i++) {
        printf("  audit ");
        print_time(stdout, au[i].at);
        printf(" %s %s ", T(au[i].actor), T(au[i].action));
        craft_term_fputs(au[i].before, stdout, 0);
        fputs(" -> ", stdout);
        craft_term_fputs(au[i].after, stdout, 0);
        putchar('\n');
    }
    craft_audit_free(au, na);
}

static int do_show(craft_store *s, const opts *op)
{
    craft_order_detail d;
    craft_error err = {0};
    if (craft_store_order_get(s, op->pos[0], op->model_id, &d, &err))
        return cli_fail("cases", &err);
    if (op->json)
        show_json(s, &d);
    else
        show_text(s, &d);
    if (!op->json && !d.n_predictions) {
        /* why the model did not score it, when a run skipped it */
        craft_score_error *e = NULL;
        int n = 0;
        if (!craft_store_score_errors(s, op->model_id, 0, d.order_id, 1, &e, &n, &err) && n)
            printf("  could not score: %s (run %lld)\n", T(e[0].reason), (long long)e[0].run_id);
        craft_score_errors_free(e, n);
    }
    craft_order_detail_free(&d);
    return 0;
}

static int do_entity(craft_store *s, const opts *op)
{
    craft_entity_history h;
    craft_error err = {0};
    if (craft_store_entity_history(s, op->pos[0], op->pos[1], 10, &h, &err))
        return cli_fail("cases", &err);
    if (op->json) {
        printf("{\"type\": ");
        craft_json_string(stdout, h.type);
        printf(", \"id\": ");
        craft_json_string(stdout, h.entity_id);
        printf(", \"orders\": %lld, \"first\": ", (long long)h.n_orders);
        json_str_or_null(stdout, h.first_ts);
        printf(", \"last\": ");
        json_str_or_null(stdout, h.last_ts);
        printf(", \"cases\": %lld, \"confirmed\": %lld, \"false_positive\": %lld, \"labels\": {", (long long)h.n_cases,
               (long long)h.n_confirmed, (long long)h.n_false_positive);
        for (int k = 0; k < h.n_classes; k++) {
            printf("%s", k ? ", " : "");
            craft_json_string(stdout, h.classes[k]);
            printf(": {\"labelled\": %lld, \"positive\": %lld}", (long long)h.n_labelled[k], (long long)h.n_positive[k]);
        }
        printf("}, \"recent\": [");
        for (int i = 0; i < h.n_recent; i++) {
            printf("%s", i ? ", " : "");
            craft_json_string(stdout, h.recent_orders[i]);
        }
        printf("]}\n");
    } else {
        printf("%s %s: %lld orders (%s .. %s), %lld cases, %lld confirmed, %lld false positives\n", T(h.type),
               T(h.entity_id), (long long)h.n_orders, T(h.first_ts), T(h.last_ts),
               (long long)h.n_cases, (long long)h.n_confirmed, (long long)h.n_false_positive);
        for (int k = 0; k < h.n_classes; k++)
            printf("  %s: %lld of %lld labelled orders positive (%.1f%%)\n", T(h.classes[k]), (long long)h.n_positive[k],
                   (long long)h.n_labelled[k], h.n_labelled[k] ? 100.0 * h.n_positive[k] / h.n_labelled[k] : 0.0);
        for (int i = 0; i < h.n_recent; i++)
            printf("  recent %s\n", T(h.recent_orders[i]));
    }
    craft_entity_history_free(&h);
    return 0;
}

static int do_verify(craft_store *s, const opts *op)
{
    craft_error err = {0};
    int64_t rows = 0, bad = 0;
    char head[65];
    int rc = craft_store_audit_verify(s, &rows, &bad, head, &err);
    if (op->json) {
        printf("{\"ok\": %s, \"rows\": %lld, \"first_broken_row\": ", rc ? "false" : "true", (long long)rows);
        if (bad)
            printf("%lld", (long long)bad);
        else
            fputs("null", stdout);
        printf(", \"head\": \"%s\"}\n", rc ? "" : head);
    }
    if (rc)
        return cli_fail("cases", &err);
    if (!op->json)
        printf("audit log intact: %lld rows, chain head %s\n", (long long)rows, head);
    return 0;
}

static int do_action(craft_store *s, const char *action, const opts *op)
{
    craft_error err = {0};
    craft_case c;
    if (craft_store_case_by_order(s, op->pos[0], &c, &err))
        return cli_fail("cases", &err);
    int rc;
    if (!strcmp(action, "decide")) {
        int st = craft_case_status_parse(op->pos[1]);
        if (st < 0) {
            craft_case_free(&c);
            return cli_usage("cases", "\"%s\" is not a status (new, in_review, confirmed_defect, false_positive, "
                                      "escalated, needs_info)", op->pos[1]);
        }
        rc = craft_store_case_decide(s, c.id, st, op->classes, op->actor, op->note, &err);
    } else if (!strcmp(action, "assign")) {
        rc = craft_store_case_assign(s, c.id, op->pos[1], op->actor, &err);
    } else if (!strcmp(action, "priority")) {
        int p;
        if (cli_int("cases", "priority", op->pos[1], -1000000, 1000000, &p)) {
            craft_case_free(&c);
            return EXIT_USAGE;
        }
        rc = craft_store_case_set_priority(s, c.id, p, op->actor, &err);
    } else {
        rc = craft_store_case_add_note(s, c.id, op->pos[1], op->actor, &err);
    }
    craft_case_free(&c);
    if (rc)
        return cli_fail("cases", &err);
    craft_case now;
    if (craft_store_case_by_order(s, op->pos[0], &now, &err) == CRAFT_OK) {
        if (op->json) {
            printf("{\"order_id\": ");
            craft_json_string(stdout, now.order_id);
            printf(", \"case_id\": %lld, \"status\": \"%s\", \"assignee\": ", (long long)now.id,
                   craft_case_status_name(now.status));
            json_str_or_null(stdout, now.assignee);
            printf(", \"priority\": %d, \"decided_classes\": ", now.priority);
            json_str_or_null(stdout, now.decided_classes);
            printf("}\n");
        } else {
            printf("%s: %s%s%s, assignee %s, priority %d\n", T(now.order_id), craft_case_status_label(now.status),
                   now.decided_classes ? " " : "", now.decided_classes ? T(now.decided_classes) : "",
                   T(now.assignee), now.priority);
        }
        craft_case_free(&now);
    }
    return 0;
}

int cmd_cases(int argc, char **argv)
{
    opts op = {.limit = 50};
    op.actor = getenv("USER");
    if (argc < 2)
        return cli_usage("cases", "an action is required (list, show, decide, assign, priority, note, entity, verify)");
    const char *action = argv[1];
    if (!strcmp(action, "--help") || !strcmp(action, "-h") || !strcmp(action, "help")) {
        help();
        return 0;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--json")) {
            op.json = 1;
        } else if (!strcmp(a, "--all")) {
            op.all = 1;
        } else if (!strcmp(a, "--asc")) {
            op.asc = 1;
        } else if (!strcmp(a, "--pass")) {
            op.pass = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            if (!v)
                return cli_usage("cases", "%s needs a value", a);
            i++;
            if (!strcmp(a, "--db")) op.db = v;
            else if (!strcmp(a, "--actor")) op.actor = v;
            else if (!strcmp(a, "--classes")) op.classes = v;
            else if (!strcmp(a, "--note")) op.note = v;
            else if (!strcmp(a, "--sort")) op.sort = v;
            else if (!strcmp(a, "--class")) op.cls = v;
            else if (!strcmp(a, "--status")) op.status = v;
            else if (!strcmp(a, "--dataset")) op.dataset = v;
            else if (!strcmp(a, "--assignee")) op.assignee = v;
            else if (!strcmp(a, "--search")) op.search = v;
            else if (!strcmp(a, "--limit")) {
                if (cli_int("cases", a, v, 1, 10000, &op.limit))
                    return EXIT_USAGE;
            } else if (!strcmp(a, "--offset")) {
                int off;
                if (cli_int("cases", a, v, 0, 2000000000, &off))
                    return EXIT_USAGE;
                op.offset = off;
            } else if (!strcmp(a, "--model")) {
                if (cli_int("cases", a, v, 1, 2000000000, &op.model_id))
                    return EXIT_USAGE;
            } else if (!strcmp(a, "--min")) {
                char *end;
                op.min = strtod(v, &end);
                if (!*v || *end || !(op.min >= 0 && op.min <= 1))
                    return cli_usage("cases", "--min needs a number in [0, 1], got \"%s\"", v);
            } else {
                return cli_usage("cases", "unknown option %s", a);
            }
        } else if (op.n_pos < 4) {
            op.pos[op.n_pos++] = a;
        } else {
            return cli_usage("cases", "too many arguments");
        }
    }
    int need = -1;
    if (!strcmp(action, "list") || !strcmp(action, "bench") || !strcmp(action, "verify")) need = 0;
    else if (!strcmp(action, "show")) need = 1;
    else if (!strcmp(action, "decide") || !strcmp(action, "assign") || !strcmp(action, "priority") ||
             !strcmp(action, "note") || !strcmp(action, "entity")) need = 2;
    else
        return cli_usage("cases", "unknown action \"%s\"", action);
    if (op.n_pos != need)
        return cli_usage("cases", "%s takes %d argument%s", action, need, need == 1 ? "" : "s");
    if (!op.db)
        return cli_usage("cases", "--db is required");
    int writes = need == 2 && strcmp(action, "entity");
    if (writes && (!op.actor || !*op.actor))
        return cli_usage("cases", "who acts? give --actor NAME (or set USER)");
    craft_error err = {0};
    craft_store *s;
    if (craft_store_open(&s, op.db, writes ? CRAFT_STORE_READWRITE : CRAFT_STORE_READONLY, &err))
        return cli_fail("cases", &err);
    int status;
    if (!strcmp(action, "list")) status = do_list(s, &op);
    else if (!strcmp(action, "bench")) status = do_bench(s, &op);
    else if (!strcmp(action, "show")) status = do_show(s, &op);
    else if (!strcmp(action, "entity")) status = do_entity(s, &op);
    else if (!strcmp(action, "verify")) status = do_verify(s, &op);
    else status = do_action(s, action, &op);
    craft_store_close(s);
    return status;
}
