/* palette.c: colours and text helpers for the pure Cairo views. */
#include "palette.h"

#include <math.h>
#include <stddef.h>

craft_view_style craft_view_style_light(void)
{
    craft_view_style s = {
        .fg = {0.14, 0.16, 0.19}, .muted = {0.60, 0.62, 0.65}, .bg = {1.0, 1.0, 1.0},
        .accent = {0.21, 0.52, 0.89}, .paint_bg = 1, .font_size = 12.0,
    };
    return s;
}

craft_view_style craft_view_style_dark(void)
{
    craft_view_style s = {
        .fg = {0.92, 0.92, 0.92}, .muted = {0.45, 0.46, 0.48}, .bg = {0.14, 0.14, 0.14},
        .accent = {0.47, 0.68, 0.96}, .paint_bg = 1, .font_size = 12.0,
    };
    return s;
}

/* RdBu (ColorBrewer), from most negative to most positive. */
static const craft_rgb diverging_stops[] = {
    {0x21 / 255.0, 0x66 / 255.0, 0xac / 255.0},
    {0x67 / 255.0, 0xa9 / 255.0, 0xcf / 255.0},
    {0xd1 / 255.0, 0xe5 / 255.0, 0xf0 / 255.0},
    {0xf7 / 255.0, 0xf7 / 255.0, 0xf7 / 255.0},
    {0xfd / 255.0, 0xdb / 255.0, 0xc7 / 255.0},
    {0xef / 255.0, 0x8a / 255.0, 0x62 / 255.0},
    {0xb2 / 255.0, 0x18 / 255.0, 0x2b / 255.0},
};

craft_rgb craft_missing_colour(void)
{
    craft_rgb c = {0.55, 0.55, 0.55};
    return c;
}

craft_rgb craft_diverging(double v, double vmax)
{
    if (isnan(v))
        return craft_missing_colour();
    const int n = (int)(sizeof diverging_stops / sizeof diverging_stops[0]);
    double t = vmax > 0 ? v / vmax : 0.0; /* -1..1 */
    if (t < -1) t = -1;
    if (t > 1) t = 1;
    double pos = (t + 1.0) * 0.5 * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) i = n - 2;
    double f = pos - i;
    craft_rgb a = diverging_stops[i], b = diverging_stops[i + 1], c;
    c.r = a.r + (b.r - a.r) * f;
    c.g = a.g + (b.g - a.g) * f;
    c.b = a.b + (b.b - a.b) * f;
    return c;
}

/* Okabe-Ito, readable for colour-blind users. */
static const craft_rgb category_colours[CRAFT_N_CATEGORY_COLOURS] = {
    {0.00, 0.45, 0.70}, /* blue */
    {0.90, 0.62, 0.00}, /* orange */
    {0.00, 0.62, 0.45}, /* bluish green */
    {0.80, 0.47, 0.65}, /* reddish purple */
    {0.84, 0.37, 0.00}, /* vermillion */
    {0.34, 0.71, 0.91}, /* sky blue */
    {0.94, 0.89, 0.26}, /* yellow */
    {0.50, 0.50, 0.50}, /* grey */
};

craft_rgb craft_category_colour(int category)
{
    if (category < 0 || category >= CRAFT_N_CATEGORY_COLOURS)
        category = CRAFT_N_CATEGORY_COLOURS - 1;
    return category_colours[category];
}

void craft_set_rgb(cairo_t *cr, craft_rgb c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }
void craft_set_rgba(cairo_t *cr, craft_rgb c, double alpha) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha); }

int craft_rgb_near(craft_rgb a, craft_rgb b, double tol)
{
    return fabs(a.r - b.r) <= tol && fabs(a.g - b.g) <= tol && fabs(a.b - b.b) <= tol;
}

craft_rgb craft_surface_pixel(cairo_surface_t *s, int x, int y)
{
    craft_rgb c = {0, 0, 0};
    cairo_surface_flush(s);
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    if (x < 0 || y < 0 || x >= w || y >= h)
        return c;
    const unsigned char *row = cairo_image_surface_get_data(s) + (size_t)y * cairo_image_surface_get_stride(s);
    unsigned int px = ((const unsigned int *)row)[x];
    double a = cairo_image_surface_get_format(s) == CAIRO_FORMAT_ARGB32 ? ((px >> 24) & 0xff) / 255.0 : 1.0;
    if (a <= 0)
        return c;
    c.r = ((px >> 16) & 0xff) / 255.0 / a;
    c.g = ((px >> 8) & 0xff) / 255.0 / a;
    c.b = (px & 0xff) / 255.0 / a;
    return c;
}

static void select_font(cairo_t *cr, const craft_view_style *st)
{
    cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, st->font_size);
}

double craft_text_width(cairo_t *cr, const craft_view_style *st, const char *text)
{
    cairo_text_extents_t ext;
    select_font(cr, st);
    cairo_text_extents(cr, text, &ext);
    return ext.x_advance;
}

void craft_draw_text(cairo_t *cr, const craft_view_style *st, const char *text, double x, double y,
                     double align)
{
    cairo_font_extents_t fe;
    select_font(cr, st);
    cairo_font_extents(cr, &fe);
    double w = craft_text_width(cr, st, text);
    cairo_move_to(cr, x - w * align, y + (fe.ascent - fe.descent) / 2.0);
    cairo_show_text(cr, text);
}
