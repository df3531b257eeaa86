/* report_pdf.c: the report as a PDF drawn with Cairo (vector, selectable text,
 * numbered pages) and single plots as PNG or SVG. The plots are the app's own
 * drawing code (app/views: bars, heatmap, scatter, palette).
 *
 * Pages are laid out twice with the same code: a layout pass on a context whose
 * clip is empty (nothing is drawn, text is still measured) counts the pages, so
 * the drawing pass can print "Page i of N" and the title page's index of cases. */
#include "outfile.h"
#include "report.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bars.h"
#include "heatmap.h"
#include "palette.h"
#include "scatter.h"

#define PAGE_W 595.276 /* A4 in points */
#define PAGE_H 841.890
#define MARGIN_X 48.0
#define TOP 58.0
#define BOTTOM 782.0
#define CONTENT_W (PAGE_W - 2 * MARGIN_X)
#define TEXT_CAP 1500 /* characters of one order text field shown in the PDF (the JSON has all) */
#define SPACE_CATEGORIES 7 /* six case statuses and "no case" */

/* ------------------------------------------------------------ text */

/* A copy of s that Cairo can show: valid UTF-8 (an invalid byte becomes '?') and
 * no control characters (tabs become spaces; the caller splits lines first). */
static char *printable(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    const unsigned char *c = (const unsigned char *)s, *end = c + n;
    while (c < end) {
        int len = *c < 0x80 ? 1 : (*c >> 5) == 6 ? 2 : (*c >> 4) == 14 ? 3 : (*c >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && c + len <= end;
        for (int i = 1; ok && i < len; i++)
            ok = (c[i] & 0xc0) == 0x80;
        if (ok && len > 1) {
            unsigned cp = len == 2 ? (c[0] & 0x1fu) << 6 | (c[1] & 0x3f)
                        : len == 3 ? (c[0] & 0x0fu) << 12 | (c[1] & 0x3fu) << 6 | (c[2] & 0x3f)
                                   : (c[0] & 0x07u) << 18 | (c[1] & 0x3fu) << 12 | (c[2] & 0x3fu) << 6 | (c[3] & 0x3f);
            ok = cp >= (len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u) && cp <= 0x10ffff &&
                 !(cp >= 0xd800 && cp <= 0xdfff);
        }
        if (!ok) {
            *o++ = '?';
            c++;
        } else if (len == 1) {
            *o++ = *c < 0x20 || *c == 0x7f ? ' ' : (char)*c;
            c++;
        } else {
            memcpy(o, c, (size_t)len);
            o += len;
            c += len;
        }
    }
    *o = 0;
    return out;
}

static void font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double width_of(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* ------------------------------------------------------------ pages */

typedef struct {
    cairo_t *cr;
    int dry;                     /* the layout pass: count pages, draw nothing */
    int page, total;
    double y;
    const craft_report *r;
    const char *running;         /* header of the current pages (an order id), or NULL */
    int64_t *case_page;          /* first page of each case (the layout pass fills it) */
    craft_view_style st;         /* the plots' style */
    /* score space per class, built once */
    craft_scatter_view space_view;
    craft_scatter_geom *space_geom;
    float **space_x, **space_y;
    uint8_t *space_cat;
    int space_failed;
} pdf;

static void set_grey(cairo_t *cr, double g)
{
    cairo_set_source_rgb(cr, g, g, g);
}

/* Text at (x, baseline y), cut with an ellipsis to max_w (0: no limit); align 0 left, 1 right. */
static void text_at(pdf *p, const char *s, double x, double y, double max_w, double align)
{
    if (!s)
        s = "\xe2\x80\x94";
    char *t = printable(s, strlen(s));
    if (!t)
        return;
    double w = width_of(p->cr, t);
    if (max_w > 0 && w > max_w) {
        size_t n = strlen(t);
        char *buf = malloc(n + 4);
        if (buf) {
            /* drop whole UTF-8 characters from the end until it fits with the ellipsis */
            while (n > 0) {
                do
                    n--;
                while (n > 0 && ((unsigned char)t[n] & 0xc0) == 0x80);
                memcpy(buf, t, n);
                memcpy(buf + n, "\xe2\x80\xa6", 4);
                if (width_of(p->cr, buf) <= max_w)
                    break;
            }
            free(t);
            t = buf;
            w = width_of(p->cr, t);
        }
    }
    cairo_move_to(p->cr, x - w * align, y);
    cairo_show_text(p->cr, t);
    free(t);
}

static void page_decor(pdf *p)
{
    cairo_t *cr = p->cr;
    char when[64], left[200], right[64];
    craft_report_fmt_time(when, sizeof when, p->r->generated);
    font(cr, 7.5, 0);
    set_grey(cr, 0.35);
    snprintf(left, sizeof left, "CRAFT Desk explanation report \xc2\xb7 model %.12s \xc2\xb7 generated %s",
             p->r->model.sha256, when);
    text_at(p, left, MARGIN_X, PAGE_H - 34, CONTENT_W - 90, 0);
    snprintf(right, sizeof right, "Page %d of %d", p->page, p->total);
    text_at(p, right, PAGE_W - MARGIN_X, PAGE_H - 34, 0, 1);
    if (p->running) {
        text_at(p, "CRAFT Desk explanation report", MARGIN_X, 34, 0, 0);
        font(cr, 7.5, 1);
        text_at(p, p->running, PAGE_W - MARGIN_X, 34, CONTENT_W / 2, 1);
        set_grey(cr, 0.75);
        cairo_set_line_width(cr, 0.5);
        cairo_move_to(cr, MARGIN_X, 40.5);
        cairo_line_to(cr, PAGE_W - MARGIN_X, 40.5);
        cairo_stroke(cr);
    }
    set_grey(cr, 0);
}

static void new_page(pdf *p)
{
    if (p->page > 0 && !p->dry)
        cairo_show_page(p->cr);
    p->page++;
    p->y = TOP;
    if (!p->dry)
        page_decor(p);
}

/* Starts a new page unless h more points fit on this one. */
static void need(pdf *p, double h)
{
    if (p->y + h > BOTTOM)
        new_page(p);
}

/* Wrapped text: paragraphs split at line breaks, lines at spaces (a word wider than
 * the column is split between characters). */
static void para(pdf *p, const char *s, double x, double w, double size, int bold, double line_h)
{
    font(p->cr, size, bold);
    if (!s)
        s = "";
    while (1) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        char *t = printable(s, n);
        if (!t)
            return;
        char *line = malloc(n + 1);
        if (!line) {
            free(t);
            return;
        }
        size_t len = 0;
        const char *c = t;
        while (1) {
            while (*c == ' ')
                c++;
            if (!*c)
                break;
            const char *e = c;
            while (*e && *e != ' ')
                e++;
            /* try the line with the next word */
            size_t add = (size_t)(e - c), keep = len;
            if (len)
                line[len++] = ' ';
            memcpy(line + len, c, add);
            line[len + add] = 0;
            if (width_of(p->cr, line) <= w) {
                len += add;
                c = e;
                continue;
            }
            if (keep > 0) {
                line[keep] = 0; /* the word goes to the next line */
                need(p, line_h);
                font(p->cr, size, bold);
                text_at(p, line, x, p->y + size, 0, 0);
                p->y += line_h;
                len = 0;
                continue;
            }
            /* one word wider than the column: as many whole characters as fit (at least one),
             * found by a binary search over byte positions moved back to character starts */
            size_t first = 1;
            while (first < add && ((unsigned char)c[first] & 0xc0) == 0x80)
                first++;
            size_t lo = first, hi = add;
            while (lo < hi) {
                size_t mid = lo + (hi - lo + 1) / 2;
                while (mid > lo && ((unsigned char)c[mid] & 0xc0) == 0x80)
                    mid--;
                if (mid == lo)
                    break;
                memcpy(line, c, mid);
                line[mid] = 0;
                if (width_of(p->cr, line) <= w)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            memcpy(line, c, lo);
            line[lo] = 0;
            need(p, line_h);
            font(p->cr, size, bold);
            text_at(p, line, x, p->y + size, 0, 0);
            p->y += line_h;
            c += lo;
            len = 0;
        }
        line[len] = 0;
        need(p, line_h);
        font(p->cr, size, bold);
        text_at(p, line, x, p->y + size, 0, 0);
        p->y += line_h;
        free(line);
        free(t);
        if (!nl)
            break;
        s = nl + 1;
    }
}

static void heading(pdf *p, const char *s, double keep_with)
{
    need(p, 26 + keep_with);
    p->y += 8;
    font(p->cr, 11, 1);
    set_grey(p->cr, 0.1);
    text_at(p, s, MARGIN_X, p->y + 11, CONTENT_W, 0);
    set_grey(p->cr, 0);
    p->y += 18;
}

/* ------------------------------------------------------------ tables */

typedef struct {
    const char *title;
    double w;
    int right;                   /* right-aligned (numbers) */
} column;

#define ROW_H 12.5
#define CELL_FONT 8.0

static void table_header(pdf *p, const column *cols, int n)
{
    need(p, ROW_H * 2);
    font(p->cr, CELL_FONT, 1);
    double x = MARGIN_X;
    for (int i = 0; i < n; i++) {
        text_at(p, cols[i].title, cols[i].right ? x + cols[i].w - 3 : x, p->y + 9, cols[i].w - 4, cols[i].right);
        x += cols[i].w;
    }
    if (!p->dry) {
        set_grey(p->cr, 0.6);
        cairo_set_line_width(p->cr, 0.6);
        cairo_move_to(p->cr, MARGIN_X, p->y + ROW_H);
        cairo_line_to(p->cr, x, p->y + ROW_H);
        cairo_stroke(p->cr);
        set_grey(p->cr, 0);
    }
    p->y += ROW_H + 1;
}

/* One row; on a new page the header is repeated. */
static void table_row(pdf *p, const column *cols, int n, const char *const *cells)
{
    if (p->y + ROW_H > BOTTOM) {
        new_page(p);
        table_header(p, cols, n);
    }
    font(p->cr, CELL_FONT, 0);
    double x = MARGIN_X;
    for (int i = 0; i < n; i++) {
        text_at(p, cells[i], cols[i].right ? x + cols[i].w - 3 : x, p->y + 9, cols[i].w - 4, cols[i].right);
        x += cols[i].w;
    }
    p->y += ROW_H;
}

/* ------------------------------------------------------------ plots */

static craft_view_style plot_style(void)
{
    craft_view_style st = craft_view_style_light();
    st.font_size = 8.0;
    st.paint_bg = 0;
    return st;
}

static void draw_bars(cairo_t *cr, const craft_report *r, const craft_report_case *c, double w, double h,
                      const craft_view_style *st)
{
    const craft_order_detail *d = &c->detail;
    if (d->n_predictions == 0)
        return;
    craft_bars_data bd = {r->model.n_classes, (const char *const *)r->model.classes, d->predictions[0].scores,
                          c->backbone_only > 0 ? d->predictions[c->backbone_only].scores : NULL, r->model.thresholds};
    int any_thr = 0;
    for (int k = 0; k < r->model.n_classes; k++)
        any_thr |= !isnan(r->model.thresholds[k]);
    if (!any_thr)
        bd.thresholds = NULL;
    craft_bars_geom g;
    craft_bars_layout(&g, &bd, w, h, st);
    craft_bars_render(cr, &g, &bd, st);
}

static void heatmap_data(const craft_report_case *c, craft_heatmap_data *hd)
{
    const craft_explanation *e = &c->detail.explanation;
    *hd = (craft_heatmap_data){e->n_tokens, (const char *const *)e->token_names, e->n_aux,
                               (const char *const *)e->aux_names, e->cmis, e->importance};
}

static int has_heatmap(const craft_report_case *c)
{
    const craft_explanation *e = &c->detail.explanation;
    return c->detail.has_explanation && e->cmis && e->n_aux > 0 && e->n_tokens > 0;
}

static void draw_heatmap(cairo_t *cr, const craft_report_case *c, double w, double h, const craft_view_style *st)
{
    if (!has_heatmap(c))
        return;
    craft_heatmap_data hd;
    heatmap_data(c, &hd);
    craft_heatmap_geom g;
    if (craft_heatmap_layout(&g, &hd, 12, w, h, st) == 0) {
        craft_heatmap_render(cr, &g, &hd, -1, st);
        craft_heatmap_geom_clear(&g);
    }
}

/* Perturbation importance: one diverging bar per feature around a centre line,
 * coloured like the heatmap (red: the feature raised the score). */
static void draw_perturbation(cairo_t *cr, const craft_report_case *c, double w, double h, const craft_view_style *st)
{
    if (c->n_drops == 0)
        return;
    double vmax = 0, label_w = 0;
    for (int i = 0; i < c->n_drops; i++) {
        vmax = fmax(vmax, fabs(c->drops[i].drop));
        label_w = fmax(label_w, craft_text_width(cr, st, c->drops[i].name));
    }
    if (!(vmax > 0))
        vmax = 1;
    double row = fmin(h / c->n_drops, st->font_size * 2.2);
    double value_w = craft_text_width(cr, st, "+0.0000") + st->font_size;
    double x0 = label_w + st->font_size, span = fmax(w - x0 - value_w, 20), cx = x0 + span / 2;
    char buf[32];
    for (int i = 0; i < c->n_drops; i++) {
        double y = i * row, v = c->drops[i].drop, bw = span / 2 * fabs(v) / vmax;
        craft_set_rgb(cr, st->fg);
        craft_draw_text(cr, st, c->drops[i].name, 0, y + row / 2, 0);
        craft_set_rgb(cr, craft_diverging(v, vmax));
        cairo_rectangle(cr, v >= 0 ? cx : cx - bw, y + row * 0.2, bw, row * 0.6);
        cairo_fill(cr);
        craft_report_fmt_signed(buf, sizeof buf, (float)v);
        craft_set_rgb(cr, st->fg);
        craft_draw_text(cr, st, buf, w, y + row / 2, 1);
    }
    craft_set_rgb(cr, st->muted);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, cx, 0);
    cairo_line_to(cr, cx, c->n_drops * row);
    cairo_stroke(cr);
}

static const char *const space_names[SPACE_CATEGORIES] = {"New", "In review", "Confirmed defect", "False positive",
                                                           "Escalated", "Needs info", "No case"};

/* The score space of class k, binned once per class and kept for later pages. */
static const craft_scatter_geom *space_geom(pdf *p, int k, double w, double h)
{
    const craft_report_space *sp = &p->r->space;
    if (k < 0 || k >= sp->n_classes || sp->n == 0 || p->space_failed)
        return NULL;
    if (!p->space_geom) {
        p->space_geom = calloc((size_t)sp->n_classes, sizeof *p->space_geom);
        p->space_x = calloc((size_t)sp->n_classes, sizeof(float *));
        p->space_y = calloc((size_t)sp->n_classes, sizeof(float *));
        p->space_cat = malloc((size_t)sp->n);
        if (!p->space_geom || !p->space_x || !p->space_y || !p->space_cat) {
            p->space_failed = 1;
            return NULL;
        }
        for (int64_t i = 0; i < sp->n; i++)
            p->space_cat[i] = sp->status[i] < CRAFT_CASE_N_STATUS ? sp->status[i] : SPACE_CATEGORIES - 1;
        craft_scatter_view_init(&p->space_view, w, h, &p->st);
    }
    if (!p->space_x[k]) {
        p->space_x[k] = malloc(sizeof(float) * (size_t)sp->n);
        p->space_y[k] = malloc(sizeof(float) * (size_t)sp->n);
        if (!p->space_x[k] || !p->space_y[k]) {
            p->space_failed = 1;
            return NULL;
        }
        for (int64_t i = 0; i < sp->n; i++) {
            p->space_x[k][i] = sp->x[i * sp->n_classes + k];
            p->space_y[k][i] = sp->y[i * sp->n_classes + k];
        }
        craft_scatter_points pts = {(size_t)sp->n, p->space_x[k], p->space_y[k], p->space_cat, sp->orders};
        if (craft_scatter_geom_build(&p->space_geom[k], &pts, &p->space_view, 3, NULL) != 0) {
            p->space_failed = 1;
            return NULL;
        }
    }
    return &p->space_geom[k];
}

static void space_free(pdf *p)
{
    const craft_report_space *sp = &p->r->space;
    for (int k = 0; p->space_geom && k < sp->n_classes; k++) {
        craft_scatter_geom_clear(&p->space_geom[k]);
        free(p->space_x[k]);
        free(p->space_y[k]);
    }
    free(p->space_geom);
    free(p->space_x);
    free(p->space_y);
    free(p->space_cat);
}

static void draw_space(cairo_t *cr, pdf *p, const craft_report_case *c, double w, double h)
{
    float x, y;
    int64_t rank, of;
    int placed = craft_report_space_place(&p->r->space, c, c->top_class, &x, &y, &rank, &of);
    const craft_scatter_geom *g = space_geom(p, c->top_class, w, h);
    char ylabel[160];
    snprintf(ylabel, sizeof ylabel, "full-model score (%s)", p->r->model.classes[c->top_class]);
    craft_scatter_decor decor = {.has_highlight = placed,
                                 .hx = x,
                                 .hy = y,
                                 .n_categories = SPACE_CATEGORIES,
                                 .category_names = space_names,
                                 .x_label = "backbone-only score",
                                 .y_label = ylabel};
    craft_scatter_render(cr, g, &p->space_view, &decor, &p->st);
}

/* A figure: reserves h points, draws with the origin at its top-left corner. */
static void figure_begin(pdf *p, double h)
{
    need(p, h + 6);
    cairo_save(p->cr);
    cairo_translate(p->cr, MARGIN_X, p->y);
}

static void figure_end(pdf *p, double h)
{
    cairo_restore(p->cr);
    p->y += h + 6;
}

/* ------------------------------------------------------------ one case */

static void scores_section(pdf *p, const craft_report_case *c)
{
    const craft_report_model *m = &p->r->model;
    const craft_order_detail *d = &c->detail;
    heading(p, "Scores per class: full model and each modality subset", 40);
    if (d->n_predictions == 0) {
        para(p, "The model has not scored this order.", MARGIN_X, CONTENT_W, 9, 0, 12);
        return;
    }
    /* classes in chunks of seven columns */
    for (int k0 = 0; k0 < m->n_classes; k0 += 7) {
        int nk = m->n_classes - k0 < 7 ? m->n_classes - k0 : 7;
        column cols[9] = {{"Subset", 120, 0}, {"Modalities used", 100, 0}};
        for (int k = 0; k < nk; k++)
            cols[2 + k] = (column){m->classes[k0 + k], (CONTENT_W - 220) / 7, 1};
        table_header(p, cols, 2 + nk);
        char label[128], v[7][32];
        const char *cells[9];
        for (int i = 0; i < d->n_predictions; i++) {
            craft_report_subset_label(m, d->predictions[i].off, label, sizeof label);
            cells[0] = label;
            cells[1] = d->predictions[i].modalities;
            for (int k = 0; k < nk; k++) {
                craft_report_fmt_score(v[k], sizeof v[k], d->predictions[i].scores[k0 + k]);
                cells[2 + k] = v[k];
            }
            table_row(p, cols, 2 + nk, cells);
        }
        cells[0] = "flag threshold";
        cells[1] = "";
        for (int k = 0; k < nk; k++) {
            craft_report_fmt_score(v[k], sizeof v[k], m->thresholds[k0 + k]);
            cells[2 + k] = v[k];
        }
        table_row(p, cols, 2 + nk, cells);
        p->y += 4;
    }
    double h = m->n_classes * p->st.font_size * 2.2;
    figure_begin(p, h);
    if (!p->dry)
        draw_bars(p->cr, p->r, c, CONTENT_W, h, &p->st);
    figure_end(p, h);
    if (c->backbone_only > 0) {
        font(p->cr, 7.5, 0);
        set_grey(p->cr, 0.35);
        text_at(p, "Bars: full model (upper) and backbone only (lower) per class; marks: flag thresholds.", MARGIN_X,
                p->y + 7.5, CONTENT_W, 0);
        set_grey(p->cr, 0);
        p->y += 12;
    }
}

static void gates_section(pdf *p, const craft_report_case *c)
{
    const craft_explanation *e = &c->detail.explanation;
    if (!c->detail.has_explanation || e->n_aux == 0)
        return;
    heading(p, "Fusion gates per modality", 30);
    column cols[3] = {{"Modality", 160, 0}, {"Fusion gate g (mean)", 140, 1}, {"Conditioning gate c (mean)", 160, 1}};
    table_header(p, cols, 3);
    for (int a = 0; a < e->n_aux; a++) {
        char g[32], cg[32];
        craft_report_fmt_score(g, sizeof g, e->fuse_gate ? e->fuse_gate[a] : NAN);
        craft_report_fmt_score(cg, sizeof cg, e->cond_gate ? e->cond_gate[a] : NAN);
        const char *cells[3] = {e->aux_names[a], g, cg};
        table_row(p, cols, 3, cells);
    }
    font(p->cr, 7.5, 0);
    set_grey(p->cr, 0.35);
    text_at(p, "n/a: the order lacks the modality, so it contributed nothing.", MARGIN_X, p->y + 9, CONTENT_W, 0);
    set_grey(p->cr, 0);
    p->y += 13;
}

static void feature_table(pdf *p, const char *title, const craft_report_feature *f, int n, const craft_explanation *e,
                          int with_cmis)
{
    if (n == 0)
        return;
    need(p, ROW_H * 3 + 14);
    font(p->cr, 9, 1);
    text_at(p, title, MARGIN_X, p->y + 10, CONTENT_W, 0);
    p->y += 14;
    column with[5] = {{"Feature", 150, 0}, {"Value", 130, 0}, {"Modality", 80, 0}, {"CMIS", 75, 1}, {"Importance", 75, 1}};
    column without[4] = {{"Feature", 150, 0}, {"Value", 130, 0}, {"Importance", 90, 1}, {"max |CMIS|", 90, 1}};
    const column *cols = with_cmis ? with : without;
    int nc = with_cmis ? 5 : 4;
    table_header(p, cols, nc);
    for (int i = 0; i < n; i++) {
        char a[32], b[32];
        const char *cells[5];
        cells[0] = f[i].name;
        cells[1] = f[i].value;
        if (with_cmis) {
            craft_report_fmt_signed(a, sizeof a, f[i].cmis);
            craft_report_fmt_score(b, sizeof b, f[i].importance);
            cells[2] = f[i].aux >= 0 ? e->aux_names[f[i].aux] : NULL;
            cells[3] = a;
            cells[4] = b;
        } else {
            craft_report_fmt_score(a, sizeof a, f[i].importance);
            craft_report_fmt_score(b, sizeof b, f[i].max_abs_cmis);
            cells[2] = a;
            cells[3] = b;
        }
        table_row(p, cols, nc, cells);
    }
    p->y += 4;
}

static void summary_section(pdf *p, const craft_report_case *c)
{
    const craft_order_detail *d = &c->detail;
    heading(p, "Order summary", 30);
    char *ents = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&ents, &len);
    if (f) {
        fputs("Entities: ", f);
        for (int i = 0; i < d->entities.n; i++)
            fprintf(f, "%s%s %s", i ? ", " : "", d->entities.keys[i], d->entities.values[i]);
        if (!d->entities.n)
            fputs("none", f);
        fputs(".  Labels: ", f);
        for (int i = 0; i < d->labels.n; i++)
            fprintf(f, "%s%s=%s", i ? ", " : "", d->labels.keys[i], d->labels.values[i]);
        if (!d->labels.n)
            fputs("none", f);
        fputc('.', f);
        fclose(f);
        para(p, ents, MARGIN_X, CONTENT_W, 9, 0, 12);
        free(ents);
    }
    for (int t = 0; t < d->text.n; t++) {
        size_t n = strlen(d->text.values[t]);
        char head[200];
        snprintf(head, sizeof head, "Text \xe2\x80\x9c%s\xe2\x80\x9d (%zu characters%s):", d->text.keys[t], n,
                 n > TEXT_CAP ? "; the first 1500 shown, all in the JSON report" : "");
        para(p, head, MARGIN_X, CONTENT_W, 8.5, 1, 11);
        char *cut = n > TEXT_CAP ? strndup(d->text.values[t], TEXT_CAP) : NULL;
        para(p, cut ? cut : d->text.values[t], MARGIN_X + 8, CONTENT_W - 8, 8.5, 0, 11);
        free(cut);
    }
    p->y += 4;
    feature_table(p, "Key features (by pooling importance)", c->key, c->n_key, &d->explanation, 0);
}

static void explanation_section(pdf *p, const craft_report_case *c)
{
    const craft_explanation *e = &c->detail.explanation;
    const craft_report_model *m = &p->r->model;
    if (has_heatmap(c)) {
        heading(p, "CMIS heatmap: backbone features \xc3\x97 auxiliary modalities", 240);
        double h = 240;
        figure_begin(p, h);
        if (!p->dry)
            draw_heatmap(p->cr, c, CONTENT_W, h, &p->st);
        figure_end(p, h);
        font(p->cr, 7.5, 0);
        set_grey(p->cr, 0.35);
        para(p, "Red: the modality amplifies the feature's importance (synergy); blue: it suppresses it; grey: the "
                "order lacks the modality. The twelve features with the largest |CMIS| are shown.",
             MARGIN_X, CONTENT_W, 7.5, 0, 10);
        set_grey(p->cr, 0);
    }
    if (c->n_synergistic || c->n_suppressed || c->n_self_sufficient) {
        heading(p, "Top synergistic, suppressed and self-sufficient features", 50);
        feature_table(p, "Synergistic (largest positive CMIS)", c->synergistic, c->n_synergistic, e, 1);
        feature_table(p, "Suppressed (most negative CMIS)", c->suppressed, c->n_suppressed, e, 1);
        feature_table(p, "Self-sufficient (importance above 1/F, every |CMIS| under a quarter of it)",
                      c->self_sufficient, c->n_self_sufficient, e, 0);
    }
    if (c->n_drops > 0) {
        char title[200];
        snprintf(title, sizeof title, "Perturbation importance for %s", m->classes[c->top_class]);
        double h = c->n_drops * p->st.font_size * 2.2;
        heading(p, title, ROW_H * (c->n_drops + 2) + h + 10); /* the table and its plot together */
        column cols[3] = {{"Feature", 180, 0}, {"Value", 150, 0}, {"Score drop when missing", 130, 1}};
        table_header(p, cols, 3);
        for (int i = 0; i < c->n_drops; i++) {
            char v[32];
            craft_report_fmt_signed(v, sizeof v, c->drops[i].drop);
            const char *cells[3] = {c->drops[i].name, c->drops[i].value, v};
            table_row(p, cols, 3, cells);
        }
        p->y += 4;
        figure_begin(p, h);
        if (!p->dry)
            draw_perturbation(p->cr, c, CONTENT_W * 0.75, h, &p->st);
        figure_end(p, h);
    }
}

static void space_section(pdf *p, const craft_report_case *c)
{
    float x, y;
    int64_t rank, of;
    if (!craft_report_space_place(&p->r->space, c, c->top_class, &x, &y, &rank, &of))
        return;
    char title[200], a[32], b[32], caption[300];
    snprintf(title, sizeof title, "Score space for %s", p->r->model.classes[c->top_class]);
    heading(p, title, 230);
    double h = 220;
    figure_begin(p, h);
    if (!p->dry)
        draw_space(p->cr, p, c, CONTENT_W, h);
    figure_end(p, h);
    craft_report_fmt_score(a, sizeof a, x);
    craft_report_fmt_score(b, sizeof b, y);
    snprintf(caption, sizeof caption,
             "This order (ringed): backbone-only %s, full model %s; rank %lld of %lld scored orders by the full-model "
             "score. Points above the dashed diagonal gained from the auxiliary modalities.",
             a, b, (long long)rank, (long long)of);
    set_grey(p->cr, 0.25);
    para(p, caption, MARGIN_X, CONTENT_W, 8, 0, 10.5);
    set_grey(p->cr, 0);
}

static void decision_section(pdf *p, const craft_report_case *c)
{
    const craft_order_detail *d = &c->detail;
    heading(p, "Decision, notes and audit trail", 40);
    char line[400], when[64];
    if (d->has_case) {
        const craft_case *k = &d->kase;
        snprintf(line, sizeof line, "Case %lld \xc2\xb7 status: %s%s%s%s \xc2\xb7 assignee: %s \xc2\xb7 priority %d",
                 (long long)k->id, craft_case_status_label(k->status), k->decided_classes ? " (" : "",
                 k->decided_classes ? k->decided_classes : "", k->decided_classes ? ")" : "",
                 k->assignee ? k->assignee : "unassigned", k->priority);
    } else {
        snprintf(line, sizeof line, "This order has no case.");
    }
    para(p, line, MARGIN_X, CONTENT_W, 9.5, 1, 13);
    p->y += 2;
    for (int i = 0; i < c->n_notes; i++) {
        craft_report_fmt_time(when, sizeof when, c->notes[i].at);
        snprintf(line, sizeof line, "Note by %s, %s:", c->notes[i].author, when);
        need(p, 24);
        para(p, line, MARGIN_X, CONTENT_W, 8.5, 1, 11);
        para(p, c->notes[i].text, MARGIN_X + 10, CONTENT_W - 10, 9, 0, 11.5);
        p->y += 3;
    }
    if (c->n_audit > 0) {
        p->y += 4;
        column cols[5] = {{"Time", 118, 0}, {"Actor", 64, 0}, {"Action", 46, 0}, {"Before", 135, 0}, {"After", 136, 0}};
        table_header(p, cols, 5);
        for (int i = 0; i < c->n_audit; i++) {
            const craft_audit_entry *a = &c->audit[i];
            craft_report_fmt_time(when, sizeof when, a->at);
            const char *cells[5] = {when, a->actor, a->action, a->before ? a->before : "", a->after ? a->after : ""};
            table_row(p, cols, 5, cells);
        }
    }
}

static void case_pages(pdf *p, const craft_report_case *c)
{
    const craft_order_detail *d = &c->detail;
    char run[160];
    snprintf(run, sizeof run, "Order %s", d->order_id);
    p->running = run;
    new_page(p);
    font(p->cr, 17, 1);
    text_at(p, run, MARGIN_X, p->y + 17, CONTENT_W, 0);
    p->y += 26;
    char sub[400];
    snprintf(sub, sizeof sub, "Order time: %s \xc2\xb7 store row %lld \xc2\xb7 dataset %lld%s%s",
             d->ts ? d->ts : "not given", (long long)d->id, (long long)d->dataset_id,
             d->has_case ? " \xc2\xb7 status: " : " \xc2\xb7 no case", d->has_case ? craft_case_status_label(d->kase.status) : "");
    set_grey(p->cr, 0.3);
    para(p, sub, MARGIN_X, CONTENT_W, 9, 0, 12);
    set_grey(p->cr, 0);
    heading(p, "Rationale", 24);
    for (int i = 0; i < c->n_rationale; i++) {
        need(p, 12);
        font(p->cr, 9.5, 0);
        text_at(p, "\xe2\x80\xa2", MARGIN_X + 2, p->y + 9.5, 0, 0);
        para(p, c->rationale[i], MARGIN_X + 12, CONTENT_W - 12, 9.5, 0, 12.5);
        p->y += 1.5;
    }
    scores_section(p, c);
    gates_section(p, c);
    summary_section(p, c);
    explanation_section(p, c);
    space_section(p, c);
    decision_section(p, c);
    p->running = NULL;
}

/* ------------------------------------------------------------ title */

static void title_pages(pdf *p)
{
    const craft_report *r = p->r;
    const craft_report_model *m = &r->model;
    new_page(p);
    font(p->cr, 22, 1);
    text_at(p, "CRAFT Desk explanation report", MARGIN_X, p->y + 22, CONTENT_W, 0);
    p->y += 36;
    char line[600], when[64];
    craft_report_fmt_time(when, sizeof when, r->generated);
    snprintf(line, sizeof line, "Generated %s from the case store %s.", when, r->store_path);
    para(p, line, MARGIN_X, CONTENT_W, 10, 0, 14);
    snprintf(line, sizeof line, "Selection: %s \xe2\x80\x94 %lld case%s in this report.", r->description,
             (long long)r->n_cases, r->n_cases == 1 ? "" : "s");
    para(p, line, MARGIN_X, CONTENT_W, 10, 0, 14);
    if (r->counts.total > 0) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f) {
            fprintf(f, "Orders matching the filter: %lld (", (long long)r->counts.total);
            for (int s = 0; s < CRAFT_CASE_N_STATUS; s++)
                fprintf(f, "%s %lld, ", craft_case_status_label(s), (long long)r->counts.status[s]);
            fprintf(f, "no case %lld).", (long long)r->counts.no_case);
            fclose(f);
            para(p, buf, MARGIN_X, CONTENT_W, 10, 0, 14);
            free(buf);
        }
    }
    heading(p, "Model", 80);
    struct {
        const char *k;
        char v[700];
    } rows[8];
    int n = 0;
    rows[n].k = "SHA-256";
    snprintf(rows[n++].v, sizeof rows[0].v, "%s", m->sha256);
    rows[n].k = "Checkpoint";
    snprintf(rows[n++].v, sizeof rows[0].v, "%s%s", m->path ? m->path : "stored in the case store only",
             m->loaded ? "" : " (not readable now: thresholds and training metadata unavailable)");
    rows[n].k = "Trained";
    craft_report_fmt_time(rows[n++].v, sizeof rows[0].v, m->trained);
    rows[n].k = "Added to store";
    craft_report_fmt_time(rows[n++].v, sizeof rows[0].v, m->added);
    rows[n].k = "Metrics";
    craft_report_metrics_text(m, rows[n++].v, sizeof rows[0].v);
    rows[n].k = "Modalities";
    rows[n].v[0] = 0;
    for (int i = 0; i < m->n_modalities; i++)
        snprintf(rows[n].v + strlen(rows[n].v), sizeof rows[0].v - strlen(rows[n].v), "%s%s%s", i ? ", " : "",
                 m->modalities[i], i == m->backbone ? " (backbone)" : "");
    n++;
    rows[n].k = "Classes";
    rows[n].v[0] = 0;
    for (int k = 0; k < m->n_classes; k++) {
        char t[32];
        craft_report_fmt_score(t, sizeof t, m->thresholds[k]);
        snprintf(rows[n].v + strlen(rows[n].v), sizeof rows[0].v - strlen(rows[n].v), "%s%s (threshold %s)",
                 k ? ", " : "", m->classes[k], t);
    }
    n++;
    rows[n].k = "Scored orders";
    snprintf(rows[n++].v, sizeof rows[0].v, "%lld", (long long)r->space.n);
    for (int i = 0; i < n; i++) {
        need(p, 13);
        font(p->cr, 9, 1);
        text_at(p, rows[i].k, MARGIN_X, p->y + 9, 95, 0);
        para(p, rows[i].v, MARGIN_X + 100, CONTENT_W - 100, 9, 0, 12.5);
    }
    heading(p, "Cases in this report", 40);
    column cols[6] = {{"#", 35, 1}, {"Order", 150, 0}, {"Status", 110, 0}, {"Top class", 80, 0}, {"Score", 70, 1},
                      {"Page", 50, 1}};
    table_header(p, cols, 6);
    for (int64_t i = 0; i < r->n_cases; i++) {
        const craft_report_case *c = &r->cases[i];
        char num[24], score[32], page[24];
        snprintf(num, sizeof num, "%lld", (long long)i + 1);
        craft_report_fmt_score(score, sizeof score,
                               c->top_class >= 0 ? c->detail.predictions[0].scores[c->top_class] : NAN);
        snprintf(page, sizeof page, "%lld", (long long)(p->case_page ? p->case_page[i] : 0));
        const char *cells[6] = {num, c->detail.order_id,
                                c->detail.has_case ? craft_case_status_label(c->detail.kase.status) : "no case",
                                c->top_class >= 0 ? m->classes[c->top_class] : "unscored", score, page};
        table_row(p, cols, 6, cells);
    }
}

/* One whole pass over the report. */
static int run_pass(pdf *p, craft_report_progress_fn progress, void *user, const volatile int *cancel, craft_error *err)
{
    p->page = 0;
    title_pages(p);
    for (int64_t i = 0; i < p->r->n_cases; i++) {
        if (cancel && *cancel)
            return craft_fail(err, CRAFT_ECANCELLED, "the report was cancelled");
        if (p->dry)
            p->case_page[i] = p->page + 1;
        case_pages(p, &p->r->cases[i]);
        if (cairo_status(p->cr) != CAIRO_STATUS_SUCCESS)
            return craft_fail(err, CRAFT_EIO, "drawing the report of order %s failed: %s",
                              p->r->cases[i].detail.order_id, cairo_status_to_string(cairo_status(p->cr)));
        if (progress && (i % 8 == 7 || i + 1 == p->r->n_cases))
            progress(user, p->dry ? "laying out" : "rendering", i + 1, p->r->n_cases);
    }
    return CRAFT_OK;
}

static cairo_status_t write_to_file(void *closure, const unsigned char *data, unsigned int length)
{
    return fwrite(data, 1, length, (FILE *)closure) == length ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

int craft_report_write_pdf(const craft_report *r, const char *path, craft_report_progress_fn progress, void *user,
                           const volatile int *cancel, int64_t *pages, craft_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return craft_fail(err, CRAFT_EIO, "%s: cannot write the report", path);
    int rc = craft_report_write_pdf_stream(r, f, path, progress, user, cancel, pages, err);
    if (fclose(f) != 0 && !rc)
        rc = craft_fail(err, CRAFT_EIO, "%s: writing the PDF failed", path);
    return rc;
}

int craft_report_write_pdf_stream(const craft_report *r, FILE *f, const char *path, craft_report_progress_fn progress,
                                  void *user, const volatile int *cancel, int64_t *pages, craft_error *err)
{
    pdf p;
    memset(&p, 0, sizeof p);
    p.r = r;
    p.st = plot_style();
    if (!(p.case_page = calloc((size_t)r->n_cases + 1, sizeof *p.case_page)))
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    /* layout pass: the same code on a context that draws nothing */
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
    p.cr = cairo_create(scratch);
    cairo_rectangle(p.cr, 0, 0, 0, 0);
    cairo_clip(p.cr);
    p.dry = 1;
    int rc = run_pass(&p, progress, user, cancel, err);
    cairo_destroy(p.cr);
    cairo_surface_destroy(scratch);
    p.total = p.page;
    if (!rc) {
        cairo_surface_t *surface = cairo_pdf_surface_create_for_stream(write_to_file, f, PAGE_W, PAGE_H);
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, "CRAFT Desk explanation report");
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "CRAFT Desk (craft report)");
        p.cr = cairo_create(surface);
        p.dry = 0;
        rc = run_pass(&p, progress, user, cancel, err);
        if (!rc)
            cairo_show_page(p.cr);
        cairo_destroy(p.cr);
        cairo_surface_finish(surface);
        cairo_status_t st = cairo_surface_status(surface);
        cairo_surface_destroy(surface);
        if (!rc && st != CAIRO_STATUS_SUCCESS)
            rc = craft_fail(err, CRAFT_EIO, "%s: writing the PDF failed: %s", path, cairo_status_to_string(st));
        if ((fflush(f) != 0 || ferror(f)) && !rc)
            rc = craft_fail(err, CRAFT_EIO, "%s: writing the PDF failed", path);
    }
    space_free(&p);
    free(p.case_page);
    if (pages)
        *pages = rc ? 0 : p.total;
    return rc;
}

/* ------------------------------------------------------------ single plots */

int craft_plot_kind_parse(const char *name)
{
    static const char *const names[] = {"scores", "heatmap", "space", "perturbation"};
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

void craft_plot_size(craft_plot_kind kind, double *w, double *h)
{
    *w = CONTENT_W;
    *h = kind == CRAFT_PLOT_HEATMAP ? 240 : kind == CRAFT_PLOT_SPACE ? 220 : 110;
}

void craft_report_draw_plot(cairo_t *cr, const craft_report *r, const craft_report_case *c, craft_plot_kind kind,
                            double w, double h)
{
    craft_view_style st = plot_style();
    st.paint_bg = 1;
    switch (kind) {
    case CRAFT_PLOT_SCORES: {
        craft_set_rgb(cr, st.bg);
        cairo_paint(cr);
        draw_bars(cr, r, c, w, h, &st);
        break;
    }
    case CRAFT_PLOT_HEATMAP: draw_heatmap(cr, c, w, h, &st); break;
    case CRAFT_PLOT_SPACE: {
        pdf p;
        memset(&p, 0, sizeof p);
        p.r = r;
        p.st = st;
        if (c->top_class >= 0)
            draw_space(cr, &p, c, w, h);
        space_free(&p);
        break;
    }
    case CRAFT_PLOT_PERTURBATION:
        craft_set_rgb(cr, st.bg);
        cairo_paint(cr);
        draw_perturbation(cr, c, w, h, &st);
        break;
    }
}

int craft_report_write_plot(const craft_report *r, const craft_report_case *c, craft_plot_kind kind, const char *path,
                            craft_error *err)
{
    const char *dot = strrchr(path, '.');
    int svg = dot && !strcasecmp(dot, ".svg"), png = dot && !strcasecmp(dot, ".png");
    if (!svg && !png)
        return craft_fail(err, CRAFT_EINPUT, "%s: a plot is written as .png or .svg", path);
    if (kind == CRAFT_PLOT_HEATMAP && !has_heatmap(c))
        return craft_fail(err, CRAFT_EINPUT, "order %s has no CMIS explanation to plot", c->detail.order_id);
    if (kind == CRAFT_PLOT_PERTURBATION && c->n_drops == 0)
        return craft_fail(err, CRAFT_EINPUT, "order %s has no perturbation importance (score with --perturbation)",
                          c->detail.order_id);
    if (c->top_class < 0)
        return craft_fail(err, CRAFT_EINPUT, "order %s has not been scored", c->detail.order_id);
    double w, h;
    craft_plot_size(kind, &w, &h);
    /* through the one output writer (app/core/outfile.h): whole or not at all, 0600
     * like reports, a device or FIFO written in place */
    craft_outfile of;
    if (craft_outfile_open(&of, path, 0600, err))
        return err->code;
    cairo_surface_t *s;
    const double scale = 2.0; /* PNG: twice the point size, for sharp text */
    if (svg) {
        s = cairo_svg_surface_create_for_stream(write_to_file, of.f, w, h);
    } else {
        s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)(w * scale), (int)(h * scale));
    }
    cairo_t *cr = cairo_create(s);
    if (png)
        cairo_scale(cr, scale, scale);
    craft_report_draw_plot(cr, r, c, kind, w, h);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (png && st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_write_to_png_stream(s, write_to_file, of.f);
    cairo_surface_finish(s);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
        craft_outfile_discard(&of);
        return craft_fail(err, CRAFT_EIO, "%s: writing the plot failed: %s", path, cairo_status_to_string(st));
    }
    return craft_outfile_commit(&of, err);
}
