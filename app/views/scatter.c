/* scatter.c: score-space geometry (binning) and drawing. */
#include "scatter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void place_plot_area(craft_scatter_view *v, double width, double height, const craft_view_style *st)
{
    double left = st->font_size * 4.5, bottom = st->font_size * 3.5;
    double top = st->font_size * 2.5, right = st->font_size * 1.0;
    v->width = width;
    v->height = height;
    v->px = left;
    v->py = top;
    v->pw = fmax(width - left - right, 1);
    v->ph = fmax(height - top - bottom, 1);
}

void craft_scatter_view_init(craft_scatter_view *v, double width, double height, const craft_view_style *st)
{
    v->x0 = v->y0 = -0.02;
    v->x1 = v->y1 = 1.02;
    place_plot_area(v, width, height, st);
}

void craft_scatter_view_resize(craft_scatter_view *v, double width, double height, const craft_view_style *st)
{
    place_plot_area(v, width, height, st);
}

void craft_scatter_to_pixel(const craft_scatter_view *v, double dx, double dy, double *px, double *py)
{
    *px = v->px + (dx - v->x0) / (v->x1 - v->x0) * v->pw;
    *py = v->py + (v->y1 - dy) / (v->y1 - v->y0) * v->ph;
}

void craft_scatter_to_data(const craft_scatter_view *v, double px, double py, double *dx, double *dy)
{
    *dx = v->x0 + (px - v->px) / v->pw * (v->x1 - v->x0);
    *dy = v->y1 - (py - v->py) / v->ph * (v->y1 - v->y0);
}

void craft_scatter_zoom(craft_scatter_view *v, double px, double py, double factor)
{
    if (!(factor > 0))
        return;
    double dx, dy;
    craft_scatter_to_data(v, px, py, &dx, &dy);
    double w = (v->x1 - v->x0) / factor, h = (v->y1 - v->y0) / factor;
    if (w < 1e-6 || h < 1e-6 || w > 100 || h > 100)
        return; /* keep the transform invertible and meaningful */
    double fx = (px - v->px) / v->pw, fy = (py - v->py) / v->ph;
    v->x0 = dx - fx * w;
    v->x1 = v->x0 + w;
    v->y1 = dy + fy * h;
    v->y0 = v->y1 - h;
}

void craft_scatter_pan(craft_scatter_view *v, double dx, double dy)
{
    double sx = dx / v->pw * (v->x1 - v->x0), sy = dy / v->ph * (v->y1 - v->y0);
    v->x0 -= sx;
    v->x1 -= sx;
    v->y0 += sy;
    v->y1 += sy;
}

void craft_scatter_geom_clear(craft_scatter_geom *g)
{
    free(g->argb);
    memset(g, 0, sizeof *g);
}

static uint32_t premultiplied(craft_rgb c, double a)
{
    uint32_t A = (uint32_t)lround(a * 255), R = (uint32_t)lround(c.r * a * 255),
             G = (uint32_t)lround(c.g * a * 255), B = (uint32_t)lround(c.b * a * 255);
    return A << 24 | R << 16 | G << 8 | B;
}

int craft_scatter_geom_build(craft_scatter_geom *g, const craft_scatter_points *pts,
                             const craft_scatter_view *view, int cell, const volatile int *cancel)
{
    memset(g, 0, sizeof *g);
    g->view = *view;
    g->cell = cell > 0 ? cell : 1;
    g->cols = (int)ceil(view->pw / g->cell);
    g->rows = (int)ceil(view->ph / g->cell);
    size_t nb = (size_t)g->cols * g->rows;
    uint32_t *counts = calloc(nb * CRAFT_N_CATEGORY_COLOURS, sizeof *counts);
    g->argb = calloc(nb ? nb : 1, sizeof *g->argb);
    if (!counts || !g->argb) {
        free(counts);
        craft_scatter_geom_clear(g);
        return -1;
    }
    double sx = g->cols / (view->x1 - view->x0), sy = g->rows / (view->y1 - view->y0);
    for (size_t i = 0; i < pts->n; i++) {
        if ((i & 0xffff) == 0 && cancel && *cancel) {
            free(counts);
            craft_scatter_geom_clear(g);
            return 1;
        }
        double fx = (pts->x[i] - view->x0) * sx, fy = (view->y1 - pts->y[i]) * sy;
        if (!(fx >= 0 && fy >= 0 && fx < g->cols && fy < g->rows))
            continue; /* outside the view, or NaN */
        int c = pts->cat ? pts->cat[i] : 0;
        if (c >= CRAFT_N_CATEGORY_COLOURS) c = CRAFT_N_CATEGORY_COLOURS - 1;
        counts[((size_t)(int)fy * g->cols + (int)fx) * CRAFT_N_CATEGORY_COLOURS + c]++;
        g->per_category[c]++;
        g->n_visible++;
    }
    uint32_t max_total = 0;
    for (size_t b = 0; b < nb; b++) {
        uint32_t t = 0;
        for (int c = 0; c < CRAFT_N_CATEGORY_COLOURS; c++) t += counts[b * CRAFT_N_CATEGORY_COLOURS + c];
        if (t > max_total) max_total = t;
    }
    double lmax = log1p((double)max_total);
    for (size_t b = 0; b < nb; b++) {
        uint32_t t = 0, best = 0;
        int bc = 0;
        for (int c = 0; c < CRAFT_N_CATEGORY_COLOURS; c++) {
            uint32_t k = counts[b * CRAFT_N_CATEGORY_COLOURS + c];
            t += k;
            if (k > best) { best = k; bc = c; }
        }
        if (t == 0)
            continue;
        /* single points stay clearly visible; dense bins become opaque */
        double a = lmax > 0 ? 0.6 + 0.4 * log1p((double)t) / lmax : 1.0;
        g->argb[b] = premultiplied(craft_category_colour(bc), a);
    }
    free(counts);
    return 0;
}

static void normalise_rect(double *ax, double *ay, double *bx, double *by)
{
    double t;
    if (*ax > *bx) { t = *ax; *ax = *bx; *bx = t; }
    if (*ay > *by) { t = *ay; *ay = *by; *by = t; }
}

long craft_scatter_select(const craft_scatter_points *pts, const craft_scatter_view *view,
                          double ax, double ay, double bx, double by, int64_t **ids)
{
    normalise_rect(&ax, &ay, &bx, &by);
    double x0, y0, x1, y1; /* data: (ax, by) is the lower-left corner */
    craft_scatter_to_data(view, ax, by, &x0, &y0);
    craft_scatter_to_data(view, bx, ay, &x1, &y1);
    size_t cap = 256, n = 0;
    int64_t *out = malloc(cap * sizeof *out);
    if (!out)
        return -1;
    for (size_t i = 0; i < pts->n; i++) {
        if (!(pts->x[i] >= x0 && pts->x[i] <= x1 && pts->y[i] >= y0 && pts->y[i] <= y1))
            continue;
        if (n == cap) {
            int64_t *grown = realloc(out, 2 * cap * sizeof *out);
            if (!grown) { free(out); return -1; }
            out = grown;
            cap *= 2;
        }
        out[n++] = pts->ids ? pts->ids[i] : (int64_t)i;
    }
    *ids = out;
    return (long)n;
}

long craft_scatter_nearest(const craft_scatter_points *pts, const craft_scatter_view *view,
                           double px, double py, double radius)
{
    long best = -1;
    double best_d2 = radius * radius;
    for (size_t i = 0; i < pts->n; i++) {
        double qx, qy;
        craft_scatter_to_pixel(view, pts->x[i], pts->y[i], &qx, &qy);
        double d2 = (qx - px) * (qx - px) + (qy - py) * (qy - py);
        if (d2 <= best_d2) {
            best_d2 = d2;
            best = (long)i;
        }
    }
    return best;
}

static void render_axes(cairo_t *cr, const craft_scatter_view *v, const craft_scatter_decor *d,
                        const craft_view_style *st)
{
    /* grid every 0.1 or 0.25 of a score, whichever gives 4..12 lines */
    double span = v->x1 - v->x0, step = span > 0.6 ? 0.25 : span > 0.25 ? 0.1 : span > 0.06 ? 0.025 : 0.005;
    char buf[32];
    cairo_set_line_width(cr, 1.0);
    for (double t = ceil(v->x0 / step) * step; t <= v->x1 + 1e-9; t += step) {
        double px, py;
        craft_scatter_to_pixel(v, t, v->y0, &px, &py);
        craft_set_rgba(cr, st->muted, 0.35);
        cairo_move_to(cr, floor(px) + 0.5, v->py);
        cairo_line_to(cr, floor(px) + 0.5, v->py + v->ph);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%.3g", fabs(t) < 1e-12 ? 0.0 : t);
        craft_set_rgb(cr, st->fg);
        craft_draw_text(cr, st, buf, px, v->py + v->ph + st->font_size, 0.5);
    }
    span = v->y1 - v->y0;
    step = span > 0.6 ? 0.25 : span > 0.25 ? 0.1 : span > 0.06 ? 0.025 : 0.005;
    for (double t = ceil(v->y0 / step) * step; t <= v->y1 + 1e-9; t += step) {
        double px, py;
        craft_scatter_to_pixel(v, v->x0, t, &px, &py);
        craft_set_rgba(cr, st->muted, 0.35);
        cairo_move_to(cr, v->px, floor(py) + 0.5);
        cairo_line_to(cr, v->px + v->pw, floor(py) + 0.5);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%.3g", fabs(t) < 1e-12 ? 0.0 : t);
        craft_set_rgb(cr, st->fg);
        craft_draw_text(cr, st, buf, v->px - st->font_size * 0.4, py, 1);
    }
    craft_set_rgb(cr, st->muted);
    cairo_rectangle(cr, v->px + 0.5, v->py + 0.5, v->pw - 1, v->ph - 1);
    cairo_stroke(cr);
    craft_set_rgb(cr, st->fg);
    craft_draw_text(cr, st, d && d->x_label ? d->x_label : "backbone-only score",
                    v->px + v->pw / 2, v->py + v->ph + st->font_size * 2.4, 0.5);
    cairo_save(cr);
    cairo_translate(cr, st->font_size * 0.9, v->py + v->ph / 2);
    cairo_rotate(cr, -M_PI / 2);
    craft_draw_text(cr, st, d && d->y_label ? d->y_label : "full-model score", 0, 0, 0.5);
    cairo_restore(cr);
}

static void render_legend(cairo_t *cr, const craft_scatter_view *v, const craft_scatter_decor *d,
                          const craft_view_style *st)
{
    double x = v->px, y = st->font_size * 1.1;
    for (int c = 0; c < d->n_categories && c < CRAFT_N_CATEGORY_COLOURS; c++) {
        if (!d->category_names[c] || !d->category_names[c][0])
            continue; /* a colour the caller does not use */
        craft_set_rgb(cr, craft_category_colour(c));
        cairo_rectangle(cr, x, y - st->font_size * 0.4, st->font_size * 0.8, st->font_size * 0.8);
        cairo_fill(cr);
        craft_set_rgb(cr, st->fg);
        craft_draw_text(cr, st, d->category_names[c], x + st->font_size, y, 0);
        x += st->font_size * 2 + craft_text_width(cr, st, d->category_names[c]);
    }
}

void craft_scatter_render(cairo_t *cr, const craft_scatter_geom *g, const craft_scatter_view *view,
                          const craft_scatter_decor *decor, const craft_view_style *st)
{
    cairo_save(cr);
    if (st->paint_bg) {
        craft_set_rgb(cr, st->bg);
        cairo_rectangle(cr, 0, 0, view->width, view->height);
        cairo_fill(cr);
    }
    render_axes(cr, view, decor, st);
    cairo_rectangle(cr, view->px, view->py, view->pw, view->ph);
    cairo_clip(cr);
    /* y = x: orders that cross-modal evidence did not move lie on it */
    double ax, ay, bx, by;
    craft_scatter_to_pixel(view, -1, -1, &ax, &ay);
    craft_scatter_to_pixel(view, 2, 2, &bx, &by);
    craft_set_rgba(cr, st->muted, 0.8);
    cairo_set_line_width(cr, 1.0);
    double dash = 4;
    cairo_set_dash(cr, &dash, 1, 0);
    cairo_move_to(cr, ax, ay);
    cairo_line_to(cr, bx, by);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);

    if (g && g->argb && g->cols > 0 && g->rows > 0) {
        cairo_surface_t *img = cairo_image_surface_create_for_data(
            (unsigned char *)g->argb, CAIRO_FORMAT_ARGB32, g->cols, g->rows, g->cols * 4);
        /* map g's data range into the current view (equal views: an exact cell-size scale) */
        double gx0, gy0, gx1, gy1;
        craft_scatter_to_pixel(view, g->view.x0, g->view.y1, &gx0, &gy0);
        craft_scatter_to_pixel(view, g->view.x1, g->view.y0, &gx1, &gy1);
        cairo_save(cr);
        cairo_translate(cr, gx0, gy0);
        cairo_scale(cr, (gx1 - gx0) / g->cols, (gy1 - gy0) / g->rows);
        cairo_set_source_surface(cr, img, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
        cairo_paint(cr);
        cairo_restore(cr);
        cairo_surface_destroy(img);
    }
    if (decor && decor->has_highlight) {
        double hx, hy;
        craft_scatter_to_pixel(view, decor->hx, decor->hy, &hx, &hy);
        cairo_set_line_width(cr, 2.5);
        craft_set_rgb(cr, st->fg);
        cairo_arc(cr, hx, hy, 8, 0, 2 * M_PI);
        cairo_stroke(cr);
        craft_set_rgb(cr, st->accent);
        cairo_arc(cr, hx, hy, 5.5, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    if (decor && decor->has_selection) {
        double sx0 = decor->sx0, sy0 = decor->sy0, sx1 = decor->sx1, sy1 = decor->sy1;
        normalise_rect(&sx0, &sy0, &sx1, &sy1);
        cairo_rectangle(cr, sx0, sy0, sx1 - sx0, sy1 - sy0);
        craft_set_rgba(cr, st->accent, 0.15);
        cairo_fill_preserve(cr);
        craft_set_rgb(cr, st->accent);
        cairo_set_line_width(cr, 1.5);
        cairo_stroke(cr);
    }
    cairo_reset_clip(cr);
    if (decor && decor->category_names)
        render_legend(cr, view, decor, st);
    cairo_restore(cr);
}
