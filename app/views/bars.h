/* bars.h: an order's score per class as horizontal bars, with the per-class
 * threshold and, when a modality is switched off, the subset score beside it. */
#ifndef CRAFT_BARS_H
#define CRAFT_BARS_H

#include <cairo.h>

#include "palette.h"

typedef struct {
    int n;                        /* classes */
    const char *const *names;     /* [n] */
    const float *scores;          /* [n] full-model scores */
    const float *alt;             /* [n] scores on a modality subset, or NULL */
    const float *thresholds;      /* [n] flag thresholds, or NULL */
} craft_bars_data;

typedef struct {
    int n;
    double width, height;
    double label_w, bar_x, bar_w, row_h, bar_h;
} craft_bars_geom;

void craft_bars_layout(craft_bars_geom *g, const craft_bars_data *d, double width, double height,
                       const craft_view_style *st);
/* The full-length track of row i (score 1 reaches x + w). */
void craft_bars_track(const craft_bars_geom *g, int i, double *x, double *y, double *w, double *h);
/* The colour of a full-model bar: flagged (at or over threshold) or not. */
craft_rgb craft_bars_colour(const craft_view_style *st, int flagged);
void craft_bars_render(cairo_t *cr, const craft_bars_geom *g, const craft_bars_data *d,
                       const craft_view_style *st);

#endif
