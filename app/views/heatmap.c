/* heatmap.c: CMIS heatmap geometry and drawing. */
#include "heatmap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float cmis_at(const craft_heatmap_data *d, int col, int feature)
{
    return d->cmis[(size_t)col * d->n_features + feature];
}

/* Largest |CMIS| of a feature over the modalities; -1 when every modality is NaN. */
static double row_strength(const craft_heatmap_data *d, int feature)
{
    double best = -1;
    for (int m = 0; m < d->n_modalities; m++) {
        float v = cmis_at(d, m, feature);
        if (!isnan(v) && fabs(v) > best)
            best = fabs(v);
    }
    return best;
}

typedef struct { int idx; double key; } ranked;

static int by_key_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return x->idx - y->idx;
}

void craft_heatmap_geom_clear(craft_heatmap_geom *g)
{
    free(g->rows);
    memset(g, 0, sizeof *g);
}

/* Text is measured on a scratch surface so layout can run on any thread. */
static double widest_label(const craft_heatmap_data *d, const int *rows, int n, const craft_view_style *st)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
    cairo_t *cr = cairo_create(s);
    double w = 0;
    for (int i = 0; i < n; i++) {
        double tw = craft_text_width(cr, st, d->features[rows[i]]);
        if (tw > w) w = tw;
    }
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    return w;
}

int craft_heatmap_layout(craft_heatmap_geom *g, const craft_heatmap_data *d, int top_n,
                         double width, double height, const craft_view_style *st)
{
    memset(g, 0, sizeof *g);
    g->width = width;
    g->height = height;
    int n = d->n_features;
    if (top_n > 0 && top_n < n)
        n = top_n;
    ranked *order = malloc(sizeof *order * (d->n_features > 0 ? d->n_features : 1));
    g->rows = malloc(sizeof *g->rows * (n > 0 ? n : 1));
    if (!order || !g->rows) {
        free(order);
        craft_heatmap_geom_clear(g);
        return -1;
    }
    for (int j = 0; j < d->n_features; j++) {
        order[j].idx = j;
        order[j].key = row_strength(d, j);
    }
    qsort(order, d->n_features, sizeof *order, by_key_desc);
    g->vmax = 0;
    for (int i = 0; i < n; i++) {
        g->rows[i] = order[i].idx;
        if (order[i].key > g->vmax)
            g->vmax = order[i].key;
    }
    free(order);
    if (!(g->vmax > 0))
        g->vmax = 1e-6; /* all zero: keep the scale finite */
    g->n_rows = n;
    g->n_cols = d->n_modalities;

    double pad = st->font_size * 0.75;
    double label_w = widest_label(d, g->rows, n, st) + pad;
    double header_h = st->font_size * 2.0;
    double legend_block = st->font_size * 3.5;
    g->legend_h = st->font_size * 0.9;
    g->grid_x = pad + label_w;
    g->grid_y = pad + header_h;
    double avail_w = width - g->grid_x - pad;
    double avail_h = height - g->grid_y - legend_block - pad;
    g->cell_w = g->n_cols > 0 ? fmin(140.0, fmax(avail_w, 0) / g->n_cols) : 0;
    g->cell_h = n > 0 ? fmin(28.0, fmax(avail_h, 0) / n) : 0;
    g->legend_x = g->grid_x;
    g->legend_w = fmax(g->cell_w * g->n_cols, fmin(200.0, fmax(avail_w, 0)));
    g->legend_y = g->grid_y + g->cell_h * n + st->font_size * 1.0;
    return 0;
}

int craft_heatmap_hit(const craft_heatmap_geom *g, double x, double y, int *row, int *col)
{
    if (g->cell_w <= 0 || g->cell_h <= 0)
        return 0;
    double cx = (x - g->grid_x) / g->cell_w, cy = (y - g->grid_y) / g->cell_h;
    if (cx < 0 || cy < 0 || cx >= g->n_cols || cy >= g->n_rows)
        return 0;
    *row = (int)cy;
    *col = (int)cx;
    return 1;
}

void craft_heatmap_cell_centre(const craft_heatmap_geom *g, int row, int col, double *x, double *y)
{
    *x = g->grid_x + (col + 0.5) * g->cell_w;
    *y = g->grid_y + (row + 0.5) * g->cell_h;
}

int craft_heatmap_cell_info(const craft_heatmap_geom *g, const craft_heatmap_data *d, int row, int col,
                            craft_heatmap_cell *out)
{
    if (row < 0 || row >= g->n_rows || col < 0 || col >= g->n_cols)
        return 0;
    out->feature = g->rows[row];
    out->cmis = cmis_at(d, col, out->feature);
    out->alpha_with = d->importance ? d->importance[out->feature] : NAN;
    out->alpha_without = out->alpha_with - out->cmis;
    return 1;
}

static int rank_features(const craft_heatmap_data *d, int *out, int max, int kind)
{
    ranked *r = malloc(sizeof *r * (d->n_features > 0 ? d->n_features : 1));
    if (!r)
        return 0;
    int n = 0;
    for (int j = 0; j < d->n_features; j++) {
        double hi = -INFINITY, lo = INFINITY, absmax = 0;
        for (int m = 0; m < d->n_modalities; m++) {
            float v = cmis_at(d, m, j);
            if (isnan(v)) continue;
            if (v > hi) hi = v;
            if (v < lo) lo = v;
            if (fabs(v) > absmax) absmax = fabs(v);
        }
        if (kind == 0 && hi > 0)
            r[n++] = (ranked){j, hi};
        else if (kind == 1 && lo < 0)
            r[n++] = (ranked){j, -lo};
        else if (kind == 2 && d->importance && d->n_features > 0) {
            double a = d->importance[j];
            if (a > 1.0 / d->n_features && absmax < 0.25 * a)
                r[n++] = (ranked){j, a};
        }
    }
    qsort(r, n, sizeof *r, by_key_desc);
    if (n > max) n = max;
    for (int i = 0; i < n; i++)
        out[i] = r[i].idx;
    free(r);
    return n;
}

int craft_cmis_synergistic(const craft_heatmap_data *d, int *out, int max) { return rank_features(d, out, max, 0); }
int craft_cmis_suppressed(const craft_heatmap_data *d, int *out, int max) { return rank_features(d, out, max, 1); }
int craft_cmis_self_sufficient(const craft_heatmap_data *d, int *out, int max) { return rank_features(d, out, max, 2); }

static void render_legend(cairo_t *cr, const craft_heatmap_geom *g, const craft_view_style *st)
{
    cairo_pattern_t *p = cairo_pattern_create_linear(g->legend_x, 0, g->legend_x + g->legend_w, 0);
    for (int i = 0; i <= 12; i++) {
        double t = i / 12.0;
        craft_rgb c = craft_diverging((t * 2 - 1) * g->vmax, g->vmax);
        cairo_pattern_add_color_stop_rgb(p, t, c.r, c.g, c.b);
    }
    cairo_rectangle(cr, g->legend_x, g->legend_y, g->legend_w, g->legend_h);
    cairo_set_source(cr, p);
    cairo_fill(cr);
    cairo_pattern_destroy(p);

    char buf[64];
    double ty = g->legend_y + g->legend_h + st->font_size * 0.9;
    craft_set_rgb(cr, st->fg);
    snprintf(buf, sizeof buf, "%.3g suppression", -g->vmax);
    double left_end = g->legend_x + craft_text_width(cr, st, buf);
    craft_draw_text(cr, st, buf, g->legend_x, ty, 0);
    snprintf(buf, sizeof buf, "synergy +%.3g", g->vmax);
    double right_start = g->legend_x + g->legend_w - craft_text_width(cr, st, buf);
    craft_draw_text(cr, st, buf, g->legend_x + g->legend_w, ty, 1);
    /* the centre mark only where it does not run into the end labels */
    double mid = g->legend_x + g->legend_w / 2, half = craft_text_width(cr, st, "0") / 2 + st->font_size * 0.5;
    if (mid - half > left_end && mid + half < right_start)
        craft_draw_text(cr, st, "0", mid, ty, 0.5);
}

void craft_heatmap_render(cairo_t *cr, const craft_heatmap_geom *g, const craft_heatmap_data *d,
                          int selected_feature, const craft_view_style *st)
{
    cairo_save(cr);
    if (st->paint_bg) {
        craft_set_rgb(cr, st->bg);
        cairo_rectangle(cr, 0, 0, g->width, g->height);
        cairo_fill(cr);
    }
    craft_set_rgb(cr, st->fg);
    for (int c = 0; c < g->n_cols; c++)
        craft_draw_text(cr, st, d->modalities[c], g->grid_x + (c + 0.5) * g->cell_w,
                        g->grid_y - st->font_size, 0.5);
    int show_values = g->cell_w >= 56 && g->cell_h >= st->font_size + 4;
    for (int r = 0; r < g->n_rows; r++) {
        int j = g->rows[r];
        double y = g->grid_y + r * g->cell_h;
        craft_set_rgb(cr, st->fg);
        craft_draw_text(cr, st, d->features[j], g->grid_x - st->font_size * 0.5, y + g->cell_h / 2, 1);
        for (int c = 0; c < g->n_cols; c++) {
            float v = cmis_at(d, c, j);
            craft_rgb col = craft_diverging(v, g->vmax);
            cairo_rectangle(cr, g->grid_x + c * g->cell_w, y, g->cell_w, g->cell_h);
            craft_set_rgb(cr, col);
            cairo_fill(cr);
            if (show_values) {
                char buf[32];
                if (isnan(v))
                    snprintf(buf, sizeof buf, "missing");
                else
                    snprintf(buf, sizeof buf, "%+.2g", v); /* two significant digits: CMIS can be tiny */
                /* dark text on light cells, light text on saturated ones */
                double lum = 0.2126 * col.r + 0.7152 * col.g + 0.0722 * col.b;
                cairo_set_source_rgb(cr, lum > 0.55 ? 0.1 : 0.97, lum > 0.55 ? 0.1 : 0.97, lum > 0.55 ? 0.1 : 0.97);
                craft_draw_text(cr, st, buf, g->grid_x + (c + 0.5) * g->cell_w, y + g->cell_h / 2, 0.5);
            }
        }
        if (j == selected_feature) {
            craft_set_rgb(cr, st->accent);
            cairo_set_line_width(cr, 2.0);
            cairo_rectangle(cr, g->grid_x + 1, y + 1, g->cell_w * g->n_cols - 2, g->cell_h - 2);
            cairo_stroke(cr);
        }
    }
    /* thin separators between cells */
    craft_set_rgb(cr, st->paint_bg ? st->bg : st->muted);
    cairo_set_line_width(cr, 1.0);
    for (int c = 1; c < g->n_cols; c++) {
        cairo_move_to(cr, g->grid_x + c * g->cell_w, g->grid_y);
        cairo_line_to(cr, g->grid_x + c * g->cell_w, g->grid_y + g->n_rows * g->cell_h);
    }
    cairo_stroke(cr);
    if (g->n_rows > 0 && g->n_cols > 0)
        render_legend(cr, g, st);
    cairo_restore(cr);
}
