/* scatter.h: the score space: backbone-only score (x) against full-model score (y)
 * of every scored order, coloured by a category (case status or label).
 * The points are binned into a small image on a worker thread (100,000 points cost
 * one pass); drawing then blits that image, so zoom and pan stay smooth. */
#ifndef CRAFT_SCATTER_H
#define CRAFT_SCATTER_H

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

#include "palette.h"

typedef struct {
    size_t n;
    const float *x;          /* backbone-only score, 0..1 */
    const float *y;          /* full-model score, 0..1 */
    const uint8_t *cat;      /* category per point (0..CRAFT_N_CATEGORY_COLOURS-1), or NULL */
    const int64_t *ids;      /* an id per point (store order id), or NULL: the index */
} craft_scatter_points;

/* The data rectangle shown and where it lies on screen. */
typedef struct {
    double x0, x1, y0, y1;   /* data range */
    double width, height;    /* whole drawing */
    double px, py, pw, ph;   /* plot area in pixels (y grows downward) */
} craft_scatter_view;

void craft_scatter_view_init(craft_scatter_view *v, double width, double height, const craft_view_style *st);
/* New size, same data range. */
void craft_scatter_view_resize(craft_scatter_view *v, double width, double height, const craft_view_style *st);
void craft_scatter_to_pixel(const craft_scatter_view *v, double dx, double dy, double *px, double *py);
void craft_scatter_to_data(const craft_scatter_view *v, double px, double py, double *dx, double *dy);
/* Zooms by factor (> 1 in) keeping the data point under pixel (px, py) in place. */
void craft_scatter_zoom(craft_scatter_view *v, double px, double py, double factor);
/* Moves the content by (dx, dy) pixels. */
void craft_scatter_pan(craft_scatter_view *v, double dx, double dy);

typedef struct {
    craft_scatter_view view; /* the view this geometry was built for */
    int cell;                /* pixels per bin side */
    int cols, rows;
    uint32_t *argb;          /* [rows, cols] premultiplied ARGB32, one pixel per bin */
    size_t n_visible;        /* points inside the view */
    size_t per_category[CRAFT_N_CATEGORY_COLOURS];
} craft_scatter_geom;

/* Bins the points visible in view into cells of cell x cell pixels; a bin takes the colour of
 * its most frequent category and an opacity growing with log(count). *cancel (may be NULL) is
 * polled so a newer request can stop an old build. Returns 0, -1 on memory, 1 when cancelled. */
int craft_scatter_geom_build(craft_scatter_geom *g, const craft_scatter_points *pts,
                             const craft_scatter_view *view, int cell, const volatile int *cancel);
void craft_scatter_geom_clear(craft_scatter_geom *g);

/* The ids of the points inside the pixel rectangle (any corner order). Caller frees *ids.
 * Returns the count, or -1 when memory runs out. */
long craft_scatter_select(const craft_scatter_points *pts, const craft_scatter_view *view,
                          double ax, double ay, double bx, double by, int64_t **ids);
/* Index of the point nearest pixel (px, py) within radius pixels, or -1. */
long craft_scatter_nearest(const craft_scatter_points *pts, const craft_scatter_view *view,
                           double px, double py, double radius);

typedef struct {
    int has_highlight;
    double hx, hy;                    /* data coordinates of the current order */
    int has_selection;
    double sx0, sy0, sx1, sy1;        /* selection rectangle in pixels */
    int n_categories;
    const char *const *category_names;/* legend, may be NULL */
    const char *x_label, *y_label;
} craft_scatter_decor;

/* Draws axes, the y = x diagonal, the binned points of g mapped into view (g may be
 * from a slightly older view while a new one is being built), the highlight and the selection. */
void craft_scatter_render(cairo_t *cr, const craft_scatter_geom *g, const craft_scatter_view *view,
                          const craft_scatter_decor *decor, const craft_view_style *st);

#endif
