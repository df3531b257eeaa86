/* palette.h: colours and text style shared by every drawing in app/views
 * (widgets, PNG exports, PDF reports), for light and dark appearance. */
#ifndef CRAFT_PALETTE_H
#define CRAFT_PALETTE_H

#include <cairo.h>

typedef struct { double r, g, b; } craft_rgb;

typedef struct {
    craft_rgb fg;        /* text and axes */
    craft_rgb muted;     /* grid lines, secondary text */
    craft_rgb bg;        /* plot background (drawn only when paint_bg) */
    craft_rgb accent;    /* highlight, selection */
    int paint_bg;        /* widgets leave the background to GTK; exports paint it */
    double font_size;    /* in device units */
} craft_view_style;

craft_view_style craft_view_style_light(void);
craft_view_style craft_view_style_dark(void);

/* Diverging colour for v in [-vmax, vmax]: blue (suppression, < 0), near white at 0,
 * red (synergy, > 0); ColorBrewer RdBu stops, linear in between, clamped outside.
 * NaN gives a neutral grey (the modality was not used). */
craft_rgb craft_diverging(double v, double vmax);
craft_rgb craft_missing_colour(void);

/* Colour of a category in the score space (case status or label), index 0..7. */
#define CRAFT_N_CATEGORY_COLOURS 8
craft_rgb craft_category_colour(int category);

void craft_set_rgb(cairo_t *cr, craft_rgb c);
void craft_set_rgba(cairo_t *cr, craft_rgb c, double alpha);
/* True when two colours are within tol on each channel (0..1 scale); for tests and hit checks. */
int craft_rgb_near(craft_rgb a, craft_rgb b, double tol);
/* Reads the colour of pixel (x, y) of an ARGB32/RGB24 image surface (un-premultiplied). */
craft_rgb craft_surface_pixel(cairo_surface_t *s, int x, int y);

/* Draws text with its left edge at x (align 0), centre (0.5) or right edge (1) and its
 * vertical middle at y. Uses the cairo toy font API so drawing needs nothing but cairo. */
void craft_draw_text(cairo_t *cr, const craft_view_style *st, const char *text, double x, double y,
                     double align);
/* Width of text in the style's font. */
double craft_text_width(cairo_t *cr, const craft_view_style *st, const char *text);

#endif
