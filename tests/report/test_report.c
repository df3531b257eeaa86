/* test_report: explanation reports from a store built from the fixtures: the PDF's
 * text (pdftotext) holds the order id, the scores, the decision and the note exactly
 * as stored, its pages render (pdftoppm) and are not blank; the JSON report matches
 * the store field by field; markup in notes stays literal in PDF, JSON, Markdown and
 * CSV; selections, errors, cancellation and the CLI. Exits 77 without pdftotext. */
#include <CUnit/Basic.h>
#include <cairo.h>
#include <cjson/cJSON.h>
#ifdef HAVE_FONTCONFIG
#include <fontconfig/fontconfig.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "palette.h"
#include "report.h"

/* Markup, an entity, both quotes and a line break: all must stay literal. */
#define NOTE "Check <b>&amp;\"' now\nsecond line <i>ok</i>"
#define ASSIGNEE "ann, \"the\" <reviewer>"

static char dir[256];
static char db[300];
static char order_id[64];  /* the decided order */
static int64_t case_id;

static const char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static const char *fixture(const char *name)
{
    static char buf[2][512];
    static int k;
    k = (k + 1) % 2;
    const char *d = getenv("CRAFT_FIXTURES");
    snprintf(buf[k], sizeof buf[k], "%s/%s", d ? d : "tests/fixtures", name);
    return buf[k];
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

/* Output of a shell command (the tools' text). */
static char *run_capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    pclose(p);
    if (buf)
        buf[n] = 0;
    return buf;
}

static int run_status(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------ the store */

static int build_store(void)
{
    snprintf(db, sizeof db, "%s/cases.db", dir);
    craft_store *s = NULL;
    craft_error err = {0};
    craft_model *m = NULL;
    if (craft_store_open(&s, db, CRAFT_STORE_CREATE, &err))
        goto fail;
    const char *paths[1] = {fixture("tiny-multilabel.orders.jsonl")};
    craft_import_options io = {0};
    craft_import_stats ist;
    if (craft_store_import(s, paths, 1, &io, &ist, &err) || craft_model_load(&m, fixture("tiny-multilabel.safetensors"), &err))
        goto fail;
    craft_store_score_options so = {.explain = 1, .subsets = 1, .perturbation = 1, .flag_threshold = 0.3f};
    craft_store_score_stats ss;
    if (craft_store_score(s, m, fixture("tiny-multilabel.safetensors"), &so, &ss, &err))
        goto fail;
    /* the top case of the queue gets a decision with a note full of markup, and an assignee */
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.limit = 1;
    craft_queue_page p;
    if (craft_store_queue(s, &q, &p, &err) || p.n != 1)
        goto fail;
    snprintf(order_id, sizeof order_id, "%s", p.rows[0].order_id);
    case_id = p.rows[0].case_id;
    craft_queue_page_free(&p);
    if (craft_store_case_assign(s, case_id, ASSIGNEE, "tester", &err) ||
        craft_store_case_decide(s, case_id, CRAFT_CASE_CONFIRMED, NULL, "alice", NOTE, &err))
        goto fail;
    craft_model_free(m);
    craft_store_close(s);
    return 0;
fail:
    fprintf(stderr, "building the test store failed: %s\n", err.msg);
    craft_model_free(m);
    craft_store_close(s);
    return -1;
}

static craft_store *open_store(void)
{
    craft_store *s = NULL;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_READONLY, &err), CRAFT_OK);
    return s;
}

static int write_one(const char *name, craft_report_stats *st, craft_error *err)
{
    craft_store *s = open_store();
    craft_report_selection sel;
    craft_report_selection_init(&sel);
    const char *ids[1] = {order_id};
    sel.order_ids = ids;
    sel.n_order_ids = 1;
    int rc = craft_report_write(s, &sel, path_in(name), NULL, st, err);
    craft_store_close(s);
    return rc;
}

/* ------------------------------------------------------------ PDF */

static char *pdf_text(const char *pdf)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "pdftotext -enc UTF-8 '%s' -", pdf);
    return run_capture(cmd);
}

static void test_pdf_text(void)
{
    craft_report_stats st;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(write_one("one.pdf", &st, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(st.n_cases, 1);
    CU_ASSERT(st.pages >= 2);
    char *text = pdf_text(path_in("one.pdf"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, order_id));
    /* every score of every subset, as stored, in the report's format */
    craft_store *s = open_store();
    craft_order_detail d;
    CU_ASSERT_EQUAL_FATAL(craft_store_order_get(s, order_id, 0, &d, &err), CRAFT_OK);
    CU_ASSERT(d.n_predictions >= 4);
    for (int i = 0; i < d.n_predictions; i++)
        for (int k = 0; k < d.n_classes; k++) {
            char buf[32];
            craft_report_fmt_score(buf, sizeof buf, d.predictions[i].scores[k]);
            if (!strstr(text, buf))
                fprintf(stderr, "score %s (subset %u, class %d) not in the PDF text\n", buf, d.predictions[i].off, k);
            CU_ASSERT_PTR_NOT_NULL(strstr(text, buf));
        }
    /* the decision as stored */
    CU_ASSERT_TRUE_FATAL(d.has_case);
    CU_ASSERT_EQUAL(d.kase.status, CRAFT_CASE_CONFIRMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, craft_case_status_label(d.kase.status)));
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.kase.decided_classes);
    char decided[80];
    snprintf(decided, sizeof decided, "(%s)", d.kase.decided_classes);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, decided));
    /* the note, literally, line by line (markup, entity, quotes) */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Check <b>&amp;\"' now"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "second line <i>ok</i>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "ann, \"the\" <reviewer>"));
    /* the model's identity and page numbers */
    craft_model_info *mi = NULL;
    int nm = 0;
    CU_ASSERT_EQUAL(craft_store_models(s, &mi, &nm, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(nm, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, mi[0].sha256));
    craft_model_info_free(mi, nm);
    char last[64];
    snprintf(last, sizeof last, "Page %lld of %lld", (long long)st.pages, (long long)st.pages);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, last));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Page 1 of"));
    craft_order_detail_free(&d);
    craft_store_close(s);
    free(text);
}

/* Every rationale sentence cites a number that the report shows somewhere else too
 * (a table, a caption): found at least twice in the PDF's text. */
static void test_rationale_cites_numbers(void)
{
    craft_store *s = open_store();
    craft_report_selection sel;
    craft_report_selection_init(&sel);
    const char *ids[1] = {order_id};
    sel.order_ids = ids;
    sel.n_order_ids = 1;
    craft_report r;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_report_build(s, &sel, &r, NULL, NULL, NULL, &err), CRAFT_OK);
    craft_store_close(s);
    char *text = pdf_text(path_in("one.pdf"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    const craft_report_case *c = &r.cases[0];
    CU_ASSERT(c->n_rationale >= 6);
    for (int i = 0; i < c->n_rationale; i++) {
        const char *sent = c->rationale[i];
        int cited = 0;
        for (const char *q = sent; *q; q++) {
            /* numbers with four decimals, dates (2026-...) and plain integers */
            if (!(q[0] >= '0' && q[0] <= '9') || (q > sent && ((q[-1] >= '0' && q[-1] <= '9') || q[-1] == '.')))
                continue;
            size_t n = strspn(q, "0123456789.:- ");
            while (n > 0 && strchr(".:- ", q[n - 1]))
                n--;
            char num[40];
            snprintf(num, sizeof num, "%.*s", (int)(n < 39 ? n : 39), q);
            const char *first = strstr(text, num);
            if (first && strstr(first + 1, num))
                cited = 1;
        }
        if (!cited)
            fprintf(stderr, "rationale sentence cites nothing shown elsewhere: %s\n", sent);
        CU_ASSERT_TRUE(cited);
    }
    free(text);
    craft_report_free(&r);
}

static long ink_pixels(const char *png)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(png);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return -1;
    }
    long ink = 0;
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            craft_rgb c = craft_surface_pixel(s, x, y);
            ink += c.r + c.g + c.b < 2.4;
        }
    cairo_surface_destroy(s);
    return ink;
}

static void test_pdf_pages_render(void)
{
    char cmd[900];
    snprintf(cmd, sizeof cmd, "pdftoppm -png -r 40 '%s' '%s' 2>&1", path_in("one.pdf"), path_in("page"));
    CU_ASSERT_EQUAL_FATAL(run_status(cmd), 0);
    int pages = 0;
    for (int i = 1; i <= 20; i++) {
        char name[64];
        snprintf(name, sizeof name, "page-%d.png", i);
        if (access(path_in(name), F_OK) != 0) {
            snprintf(name, sizeof name, "page-%02d.png", i);
            if (access(path_in(name), F_OK) != 0)
                break;
        }
        long ink = ink_pixels(path_in(name));
        if (ink < 500)
            fprintf(stderr, "%s: only %ld dark pixels\n", name, ink);
        CU_ASSERT(ink >= 500);
        pages++;
    }
    CU_ASSERT(pages >= 2);
}

/* ------------------------------------------------------------ JSON */

static float num_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (float)v->valuedouble : NAN;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_json_fields(void)
{
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(write_one("one.json", NULL, &err), CRAFT_OK);
    char *text = slurp(path_in("one.json"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    cJSON *root = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    craft_store *s = open_store();
    craft_order_detail d;
    CU_ASSERT_EQUAL_FATAL(craft_store_order_get(s, order_id, 0, &d, &err), CRAFT_OK);
    CU_ASSERT_STRING_EQUAL(str_of(root, "format"), "craft-report");
    CU_ASSERT_EQUAL(num_of(root, "version"), 1);
    /* model */
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    craft_model_info *mi = NULL;
    int nm = 0;
    CU_ASSERT_EQUAL_FATAL(craft_store_models(s, &mi, &nm, &err), CRAFT_OK);
    CU_ASSERT_STRING_EQUAL(str_of(model, "sha256"), mi[0].sha256);
    CU_ASSERT_STRING_EQUAL(str_of(model, "backbone"), "tab");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(model, "classes")), d.n_classes);
    craft_model_info_free(mi, nm);
    /* the case */
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(cases), 1);
    const cJSON *c = cJSON_GetArrayItem(cases, 0);
    CU_ASSERT_STRING_EQUAL(str_of(c, "order_id"), d.order_id);
    CU_ASSERT_EQUAL(num_of(c, "row_id"), (float)d.id);
    const cJSON *kase = cJSON_GetObjectItemCaseSensitive(c, "case");
    CU_ASSERT_EQUAL(num_of(kase, "id"), (float)d.kase.id);
    CU_ASSERT_STRING_EQUAL(str_of(kase, "status"), craft_case_status_name(d.kase.status));
    CU_ASSERT_STRING_EQUAL(str_of(kase, "assignee"), ASSIGNEE);
    CU_ASSERT_STRING_EQUAL(str_of(kase, "decided_classes"), d.kase.decided_classes);
    CU_ASSERT_EQUAL(num_of(kase, "priority"), d.kase.priority);
    /* predictions: every subset, every class, exactly (float32 round trip) */
    const cJSON *preds = cJSON_GetObjectItemCaseSensitive(c, "predictions");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(preds), d.n_predictions);
    for (int i = 0; i < d.n_predictions; i++) {
        const cJSON *p = cJSON_GetArrayItem(preds, i);
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(p, "scores");
        for (int k = 0; k < d.n_classes; k++)
            CU_ASSERT_EQUAL(num_of(sc, d.classes[k]), d.predictions[i].scores[k]);
        CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "off")),
                        __builtin_popcount(d.predictions[i].off));
    }
    CU_ASSERT_STRING_EQUAL(str_of(cJSON_GetArrayItem(preds, 0), "subset"), "full model");
    /* explanation */
    const craft_explanation *e = &d.explanation;
    CU_ASSERT_TRUE_FATAL(d.has_explanation);
    const cJSON *imp = cJSON_GetObjectItemCaseSensitive(c, "importance");
    const cJSON *cmis = cJSON_GetObjectItemCaseSensitive(c, "cmis");
    const cJSON *gates = cJSON_GetObjectItemCaseSensitive(c, "gates");
    const cJSON *pert = cJSON_GetObjectItemCaseSensitive(c, "perturbation");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->perturb);
    for (int j = 0; j < e->n_tokens; j++) {
        CU_ASSERT_EQUAL(num_of(imp, e->token_names[j]), e->importance[j]);
        for (int a = 0; a < e->n_aux; a++) {
            float want = e->cmis[(size_t)a * e->n_tokens + j];
            float got = num_of(cJSON_GetObjectItemCaseSensitive(cmis, e->aux_names[a]), e->token_names[j]);
            CU_ASSERT(isnan(want) ? isnan(got) : got == want);
        }
        for (int k = 0; k < e->n_classes; k++)
            CU_ASSERT_EQUAL(num_of(cJSON_GetObjectItemCaseSensitive(pert, e->classes[k]), e->token_names[j]),
                            e->perturb[(size_t)k * e->n_tokens + j]);
    }
    for (int a = 0; a < e->n_aux; a++) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(gates, e->aux_names[a]);
        float fg = num_of(g, "fusion"), cg = num_of(g, "conditioning");
        CU_ASSERT(isnan(e->fuse_gate[a]) ? isnan(fg) : fg == e->fuse_gate[a]);
        CU_ASSERT(isnan(e->cond_gate[a]) ? isnan(cg) : cg == e->cond_gate[a]);
    }
    /* features: numeric values exactly, categorical as text, missing as null */
    const cJSON *feats = cJSON_GetObjectItemCaseSensitive(c, "features");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(feats), d.n_features);
    for (int i = 0; i < d.n_features; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(feats, d.feature_names[i]);
        if (d.feature_types[i] == CRAFT_CATEGORICAL) {
            CU_ASSERT(d.categories[i] ? cJSON_IsString(v) && !strcmp(v->valuestring, d.categories[i]) : cJSON_IsNull(v));
        } else {
            CU_ASSERT(isnan(d.values[i]) ? cJSON_IsNull(v) : (float)v->valuedouble == d.values[i]);
        }
    }
    /* notes and audit, literally */
    craft_note *notes = NULL;
    craft_audit_entry *audit = NULL;
    int nn = 0, na = 0;
    CU_ASSERT_EQUAL(craft_store_case_notes(s, d.kase.id, &notes, &nn, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_store_case_audit(s, d.kase.id, &audit, &na, &err), CRAFT_OK);
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(c, "notes"), *ja = cJSON_GetObjectItemCaseSensitive(c, "audit");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(jn), nn);
    CU_ASSERT_EQUAL(nn, 1);
    for (int i = 0; i < nn; i++) {
        CU_ASSERT_STRING_EQUAL(str_of(cJSON_GetArrayItem(jn, i), "text"), notes[i].text);
        CU_ASSERT_STRING_EQUAL(str_of(cJSON_GetArrayItem(jn, i), "author"), notes[i].author);
    }
    CU_ASSERT_STRING_EQUAL(notes[0].text, NOTE);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(ja), na);
    for (int i = 0; i < na; i++) {
        CU_ASSERT_STRING_EQUAL(str_of(cJSON_GetArrayItem(ja, i), "action"), audit[i].action);
        CU_ASSERT_STRING_EQUAL(str_of(cJSON_GetArrayItem(ja, i), "actor"), audit[i].actor);
    }
    craft_notes_free(notes, nn);
    craft_audit_free(audit, na);
    /* rankings and rationale are present; the score space places the order */
    CU_ASSERT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "key_features")) > 0);
    CU_ASSERT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "rationale")) >= 6);
    const cJSON *space = cJSON_GetObjectItemCaseSensitive(c, "score_space");
    CU_ASSERT_EQUAL(num_of(space, "full"), d.predictions[0].scores[d.kase.top_class]);
    CU_ASSERT_EQUAL(num_of(space, "of"), 24);
    CU_ASSERT_EQUAL(num_of(space, "rank"), 1); /* the queue's top case has the highest score */
    craft_order_detail_free(&d);
    craft_store_close(s);
    cJSON_Delete(root);
    free(text);
}

/* ------------------------------------------------------------ Markdown, CSV */

static void test_markdown_literal(void)
{
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(write_one("one.md", NULL, &err), CRAFT_OK);
    char *md = slurp(path_in("one.md"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(md);
    /* no raw tag or entity from the note survives unescaped */
    CU_ASSERT_PTR_NULL(strstr(md, "<b>"));
    CU_ASSERT_PTR_NULL(strstr(md, "<i>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "Check \\<b\\>\\&amp;\"' now\\\n  second line \\<i\\>ok\\</i\\>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, order_id));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "Confirmed defect"));
    free(md);
}

/* A minimal RFC 4180 reader: the fields of one record; *p moves past it. */
static int csv_record(const char **p, char fields[][128], int max)
{
    int n = 0;
    const char *c = *p;
    if (!*c)
        return 0;
    while (n < max) {
        char *o = fields[n];
        size_t len = 0;
        if (*c == '"') {
            c++;
            while (*c && !(c[0] == '"' && c[1] != '"')) {
                if (c[0] == '"')
                    c++;
                if (len < 127)
                    o[len++] = *c;
                c++;
            }
            c++;
        } else {
            while (*c && *c != ',' && *c != '\r' && *c != '\n') {
                if (len < 127)
                    o[len++] = *c;
                c++;
            }
        }
        o[len] = 0;
        n++;
        if (*c == ',') {
            c++;
            continue;
        }
        break;
    }
    if (*c == '\r')
        c++;
    if (*c == '\n')
        c++;
    *p = c;
    return n;
}

static void test_csv_queue(void)
{
    craft_store *s = open_store();
    craft_report_selection sel;
    craft_report_selection_init(&sel);
    craft_report_stats st;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_report_write(s, &sel, path_in("queue.csv"), NULL, &st, &err), CRAFT_OK);
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.limit = 1000;
    craft_queue_page page;
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &page, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(st.n_cases, page.n);
    char *text = slurp(path_in("queue.csv"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    const char *p = text;
    char f[16][128];
    CU_ASSERT_EQUAL(csv_record(&p, f, 16), 8 + page.n_classes);
    CU_ASSERT_STRING_EQUAL(f[0], "order_id");
    for (int i = 0; i < page.n; i++) {
        CU_ASSERT_EQUAL_FATAL(csv_record(&p, f, 16), 8 + page.n_classes);
        const craft_queue_row *w = &page.rows[i];
        CU_ASSERT_STRING_EQUAL(f[0], w->order_id);
        CU_ASSERT_STRING_EQUAL(f[3], craft_case_status_name(w->status));
        CU_ASSERT_STRING_EQUAL(f[4], w->assignee ? w->assignee : "");
        CU_ASSERT_EQUAL(strtof(f[7], NULL), w->top_score);
        for (int k = 0; k < page.n_classes; k++)
            CU_ASSERT_EQUAL(strtof(f[8 + k], NULL), w->scores[k]);
    }
    CU_ASSERT_EQUAL(*p, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"ann, \"\"the\"\" <reviewer>\""));
    free(text);
    /* the same orders named (last first): the same records, in the order named */
    const char **named = calloc((size_t)page.n, sizeof *named);
    for (int i = 0; i < page.n; i++)
        named[i] = page.rows[page.n - 1 - i].order_id;
    craft_report_selection_init(&sel);
    sel.order_ids = named;
    sel.n_order_ids = page.n;
    CU_ASSERT_EQUAL_FATAL(craft_report_write(s, &sel, path_in("named.csv"), NULL, &st, &err), CRAFT_OK);
    text = slurp(path_in("named.csv"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    p = text;
    CU_ASSERT_EQUAL(csv_record(&p, f, 16), 8 + page.n_classes);
    for (int i = 0; i < page.n; i++) {
        CU_ASSERT_EQUAL_FATAL(csv_record(&p, f, 16), 8 + page.n_classes);
        const craft_queue_row *w = &page.rows[page.n - 1 - i];
        CU_ASSERT_STRING_EQUAL(f[0], w->order_id);
        CU_ASSERT_STRING_EQUAL(f[3], craft_case_status_name(w->status));
        CU_ASSERT_EQUAL(strtof(f[7], NULL), w->top_score);
        for (int k = 0; k < page.n_classes; k++)
            CU_ASSERT_EQUAL(strtof(f[8 + k], NULL), w->scores[k]);
    }
    CU_ASSERT_EQUAL(*p, 0);
    free(text);
    /* the same orders by their row ids: the same file, and a report of the same cases */
    int64_t *rows = calloc((size_t)page.n, sizeof *rows);
    for (int i = 0; i < page.n; i++)
        rows[i] = page.rows[page.n - 1 - i].order;
    craft_report_selection by_row;
    craft_report_selection_init(&by_row);
    by_row.order_rows = rows;
    by_row.n_order_rows = page.n;
    CU_ASSERT_EQUAL_FATAL(craft_report_write(s, &by_row, path_in("rows.csv"), NULL, &st, &err), CRAFT_OK);
    char *named_text = slurp(path_in("named.csv"), NULL), *rows_text = slurp(path_in("rows.csv"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rows_text);
    CU_ASSERT_STRING_EQUAL(rows_text, named_text);
    free(named_text);
    free(rows_text);
    by_row.n_order_rows = 3;
    craft_report r;
    CU_ASSERT_EQUAL_FATAL(craft_report_build(s, &by_row, &r, NULL, NULL, NULL, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(r.n_cases, 3);
    for (int i = 0; i < r.n_cases && i < 3; i++)
        CU_ASSERT_STRING_EQUAL(r.cases[i].detail.order_id, named[i]);
    craft_report_free(&r);
    free(rows);
    /* one name not in the store: an error naming it */
    named[page.n / 2] = "NO-SUCH-ORDER";
    CU_ASSERT_EQUAL(craft_report_write(s, &sel, path_in("named2.csv"), NULL, &st, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NO-SUCH-ORDER"));
    free(named);
    craft_queue_page_free(&page);
    craft_store_close(s);
}

/* ------------------------------------------------------------ selections, errors */

static int file_is(const char *path, const char *content)
{
    char *t = slurp(path, NULL);
    int same = t && !strcmp(t, content);
    free(t);
    return same;
}

static void test_selection_and_failures(void)
{
    craft_store *s = open_store();
    craft_report_selection sel;
    craft_error err = {0};
    craft_report_stats st;
    /* a filtered queue: confirmed cases only -> the one decided case */
    craft_report_selection_init(&sel);
    sel.query.status_mask = 1u << CRAFT_CASE_CONFIRMED;
    sel.description = "confirmed cases";
    CU_ASSERT_EQUAL(craft_report_write(s, &sel, path_in("confirmed.json"), NULL, &st, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(st.n_cases, 1);
    /* the whole queue as PDF with a progress callback */
    craft_report_selection_init(&sel);
    CU_ASSERT_EQUAL(craft_report_write(s, &sel, path_in("queue.pdf"), NULL, &st, &err), CRAFT_OK);
    CU_ASSERT(st.n_cases >= 10);
    CU_ASSERT(st.pages > st.n_cases);

    /* failures leave an existing file as it was */
    const char *keep = "keep me\n";
    FILE *f = fopen(path_in("kept.pdf"), "w");
    fputs(keep, f);
    fclose(f);
    const char *missing[1] = {"NO-SUCH-ORDER"};
    craft_report_selection_init(&sel);
    sel.order_ids = missing;
    sel.n_order_ids = 1;
    CU_ASSERT_EQUAL(craft_report_write(s, &sel, path_in("kept.pdf"), NULL, &st, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NO-SUCH-ORDER"));
    CU_ASSERT_TRUE(file_is(path_in("kept.pdf"), keep));
    /* an empty selection */
    craft_report_selection_init(&sel);
    sel.query.status_mask = 1u << CRAFT_CASE_ESCALATED;
    sel.description = "escalated cases";
    CU_ASSERT_EQUAL(craft_report_write(s, &sel, path_in("kept.pdf"), NULL, &st, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "escalated cases"));
    CU_ASSERT_TRUE(file_is(path_in("kept.pdf"), keep));
    /* cancelled before it starts */
    volatile int cancel = 1;
    craft_report_options o = {.cancel = &cancel};
    craft_report_selection_init(&sel);
    CU_ASSERT_EQUAL(craft_report_write(s, &sel, path_in("kept.pdf"), &o, &st, &err), CRAFT_ECANCELLED);
    CU_ASSERT_TRUE(file_is(path_in("kept.pdf"), keep));
    /* an output name without a known extension */
    CU_ASSERT_EQUAL(craft_report_write(s, &sel, path_in("report.txt"), NULL, &st, &err), CRAFT_EINPUT);
    CU_ASSERT_NOT_EQUAL(access(path_in("report.txt"), F_OK), 0);
    /* no temporary files left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp-", dir);
    char *count = run_capture(cmd);
    CU_ASSERT(count && atoi(count) == 0);
    free(count);
    craft_store_close(s);
}

static void test_plots(void)
{
    craft_store *s = open_store();
    craft_report_selection sel;
    craft_report_selection_init(&sel);
    const char *ids[1] = {order_id};
    sel.order_ids = ids;
    sel.n_order_ids = 1;
    craft_report r;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_report_build(s, &sel, &r, NULL, NULL, NULL, &err), CRAFT_OK);
    static const char *const kinds[] = {"scores", "heatmap", "space", "perturbation"};
    for (int k = 0; k < 4; k++) {
        char png[64], svg[64];
        snprintf(png, sizeof png, "plot-%s.png", kinds[k]);
        snprintf(svg, sizeof svg, "plot-%s.svg", kinds[k]);
        CU_ASSERT_EQUAL(craft_plot_kind_parse(kinds[k]), k);
        CU_ASSERT_EQUAL(craft_report_write_plot(&r, &r.cases[0], (craft_plot_kind)k, path_in(png), &err), CRAFT_OK);
        CU_ASSERT_EQUAL(craft_report_write_plot(&r, &r.cases[0], (craft_plot_kind)k, path_in(svg), &err), CRAFT_OK);
        CU_ASSERT(ink_pixels(path_in(png)) > 300);
        char *t = slurp(path_in(svg), NULL);
        CU_ASSERT(t && strstr(t, "<svg"));
        free(t);
    }
    CU_ASSERT_EQUAL(craft_report_write_plot(&r, &r.cases[0], CRAFT_PLOT_SCORES, path_in("plot.gif"), &err), CRAFT_EINPUT);
    craft_report_free(&r);
    craft_store_close(s);
}

/* ------------------------------------------------------------ CLI */

static void test_cli(void)
{
    const char *build = getenv("CRAFT_BUILD");
    if (!build) {
        fprintf(stderr, "CRAFT_BUILD unset: CLI checks skipped\n");
        return;
    }
    char craft[512], cmd[2048];
    snprintf(craft, sizeof craft, "%s/app/cli/craft", build);
    snprintf(cmd, sizeof cmd, "'%s' report --help >/dev/null", craft);
    CU_ASSERT_EQUAL(run_status(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' report --output x.pdf 2>/dev/null", craft);
    CU_ASSERT_EQUAL(run_status(cmd), 64);
    snprintf(cmd, sizeof cmd, "'%s' report --db '%s' --order X --output '%s' 2>/dev/null", craft, path_in("none.db"),
             path_in("x.pdf"));
    CU_ASSERT_EQUAL(run_status(cmd), 66);
    snprintf(cmd, sizeof cmd, "'%s' report --db '%s' --order NO-SUCH --output '%s' 2>/dev/null", craft, db,
             path_in("x.pdf"));
    CU_ASSERT_EQUAL(run_status(cmd), 65);
    snprintf(cmd, sizeof cmd, "'%s' report --db '%s' --status bogus --output '%s' 2>/dev/null", craft, db,
             path_in("x.pdf"));
    CU_ASSERT_EQUAL(run_status(cmd), 64);
    snprintf(cmd, sizeof cmd, "'%s' report --db '%s' --order X --output '%s' 2>/dev/null", craft, db, path_in("x.doc"));
    CU_ASSERT_EQUAL(run_status(cmd), 64);
    snprintf(cmd, sizeof cmd, "'%s' report --db '%s' --class D9 --threshold 0.5 --output '%s' 2>/dev/null", craft, db,
             path_in("x.pdf"));
    CU_ASSERT_EQUAL(run_status(cmd), 64);
    snprintf(cmd, sizeof cmd, "'%s' report --db '%s' --status new,confirmed --threshold 0.3 --output '%s' --quiet", craft,
             db, path_in("cli.md"));
    CU_ASSERT_EQUAL(run_status(cmd), 0);
    char *md = slurp(path_in("cli.md"), NULL);
    CU_ASSERT(md && strstr(md, order_id));
    free(md);
    snprintf(cmd, sizeof cmd, "'%s' report --db '%s' --order '%s' --model '%s' --output '%s' --quiet", craft, db,
             order_id, fixture("tiny-multilabel.safetensors"), path_in("cli.pdf"));
    CU_ASSERT_EQUAL(run_status(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' report --db '%s' --order '%s' --plot heatmap --output '%s'", craft, db, order_id,
             path_in("cli.png"));
    CU_ASSERT_EQUAL(run_status(cmd), 0);
    CU_ASSERT(ink_pixels(path_in("cli.png")) > 300);
}

int main(void)
{
    if (run_status("command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1") != 0) {
        fprintf(stderr, "pdftotext/pdftoppm (poppler-utils) not found: skipping\n");
        return 77;
    }
    snprintf(dir, sizeof dir, "/tmp/craft-report-test-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    if (build_store() != 0)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("report", NULL, NULL);
    if (!s || !CU_add_test(s, "PDF text: order id, scores, decision, note literally", test_pdf_text) ||
        !CU_add_test(s, "rationale sentences cite numbers shown in the report", test_rationale_cites_numbers) ||
        !CU_add_test(s, "PDF pages render and are not blank", test_pdf_pages_render) ||
        !CU_add_test(s, "JSON field by field against the store", test_json_fields) ||
        !CU_add_test(s, "Markdown keeps markup literal", test_markdown_literal) ||
        !CU_add_test(s, "CSV queue with RFC 4180 quoting", test_csv_queue) ||
        !CU_add_test(s, "selections, missing orders, empty selection, cancel", test_selection_and_failures) ||
        !CU_add_test(s, "plots as PNG and SVG", test_plots) || !CU_add_test(s, "craft report CLI", test_cli)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    /* Cairo's font caches and fontconfig's configuration, so valgrind sees no leaks */
    cairo_debug_reset_static_data();
#ifdef HAVE_FONTCONFIG
    FcFini();
#endif
    if (failures == 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        (void)!system(cmd);
    } else {
        fprintf(stderr, "test files kept in %s\n", dir);
    }
    return failures ? 1 : 0;
}
