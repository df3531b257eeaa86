/* bars.c: per-class score bars. */
#include "bars.h"

#include <math.h>
#include <stdio.h>

void craft_bars_layout(craft_bars_geom *g, const craft_bars_data *d, double width, double height,
                       const craft_view_style *st)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
    cairo_t *cr = cairo_create(s);
    double lw = 0;
    for (int i = 0; i < d->n; i++) {
        double w = craft_text_width(cr, st, d->names[i]);
        if (w > lw) lw = w;
    }
    /* value column: "0.912 -> 0.640 (-0.272)" at most */
    double value_w = craft_text_width(cr, st, "0.000 \xe2\x86\x92 0.000 (\xe2\x88\x92" "0.000)");
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    g->n = d->n;
    g->width = width;
    g->height = height;
    g->label_w = lw + st->font_size;
    g->bar_x = g->label_w;
    g->bar_w = fmax(width - g->label_w - value_w - st->font_size, 10);
    g->row_h = d->n > 0 ? fmin(st->font_size * 2.2, height / d->n) : 0;
    g->bar_h = g->row_h * (d->alt ? 0.4 : 0.6);
}

void craft_bars_track(const craft_bars_geom *g, int i, double *x, double *y, double *w, double *h)
{
    *x = g->bar_x;
    *y = i * g->row_h + (g->row_h - g->bar_h * (g->bar_h < g->row_h * 0.5 ? 2.1 : 1)) / 2;
    *w = g->bar_w;
    *h = g->bar_h;
}

craft_rgb craft_bars_colour(const craft_view_style *st, int flagged)
{
    return flagged ? craft_category_colour(4) : st->accent;
}

void craft_bars_render(cairo_t *cr, const craft_bars_geom *g, const craft_bars_data *d,
                       const craft_view_style *st)
{
    cairo_save(cr);
    if (st->paint_bg) {
        craft_set_rgb(cr, st->bg);
        cairo_rectangle(cr, 0, 0, g->width, g->height);
        cairo_fill(cr);
    }
    char buf[96];
    for (int i = 0; i < d->n; i++) {
        double x, y, w, h;
        craft_bars_track(g, i, &x, &y, &w, &h);
        float s = d->scores[i];
        int flagged = d->thresholds && s >= d->thresholds[i];
        craft_set_rgb(cr, st->fg);
        craft_draw_text(cr, st, d->names[i], 0, y + h / 2, 0);
        craft_set_rgba(cr, st->muted, 0.25);
        cairo_rectangle(cr, x, y, w, h);
        cairo_fill(cr);
        craft_set_rgb(cr, craft_bars_colour(st, flagged));
        cairo_rectangle(cr, x, y, w * fmin(fmax(s, 0), 1), h);
        cairo_fill(cr);
        if (d->alt) {
            float a = d->alt[i];
            craft_set_rgba(cr, st->muted, 0.25);
            cairo_rectangle(cr, x, y + h * 1.1, w, h);
            cairo_fill(cr);
            craft_set_rgb(cr, st->muted);
            if (!isnan(a)) {
                cairo_rectangle(cr, x, y + h * 1.1, w * fmin(fmax(a, 0), 1), h);
                cairo_fill(cr);
            }
        }
        if (d->thresholds) {
            double tx = floor(x + w * d->thresholds[i]) + 0.5;
            craft_set_rgb(cr, st->fg);
            cairo_set_line_width(cr, 1.0);
            cairo_move_to(cr, tx, y - 2);
            cairo_line_to(cr, tx, y + (d->alt ? h * 2.1 : h) + 2);
            cairo_stroke(cr);
        }
        if (d->alt && !isnan(d->alt[i]))
            snprintf(buf, sizeof buf, "%.3f \xe2\x86\x92 %.3f (%+.3f)", s, d->alt[i], d->alt[i] - s);
        else
            snprintf(buf, sizeof buf, "%.3f", s);
        craft_set_rgb(cr, st->fg);
        craft_draw_text(cr, st, buf, x + w + st->font_size * 0.6, i * g->row_h + g->row_h / 2, 0);
    }
    cairo_restore(cr);
}
