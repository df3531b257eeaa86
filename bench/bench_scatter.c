/* bench_scatter: what a frame of the score space costs with many points.
 *
 * 1. The drawing (app/views/scatter.c) without a display: binning N points on the
 *    worker (craft_scatter_geom_build), then craft_scatter_render into a
 *    1000 x 700 image per frame, with the current geometry and with an older one
 *    scaled while a zoom's rebuild runs.
 * 2. The widget (ui/craft-scatter-widget.c) in a window, when a display opens:
 *    per frame, the widget's snapshot and its rendering by the window's GSK
 *    renderer, while zooming in steps (each step starts a rebuild on the worker).
 *
 * Prints the median, 95th percentile and worst frame in milliseconds.
 * Usage: bench_scatter [POINTS...]   (default 100000 1000000) */
#include <adwaita.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craft-scatter-widget.h"
#include "scatter.h"

#define FRAMES 120

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *ms, int n)
{
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    printf("  %-52s median %7.3f ms  p95 %7.3f ms  worst %7.3f ms  (%d frames)\n", what, ms[n / 2],
           ms[(int)(n * 0.95)], ms[n - 1], n);
}

/* Scores as they look: most orders low on both axes, a band near y = x, a
 * flagged tail; categories like case statuses. */
static void make_points(size_t n, float **x, float **y, uint8_t **cat, int64_t **ids)
{
    *x = g_new(float, n);
    *y = g_new(float, n);
    *cat = g_new(uint8_t, n);
    *ids = g_new(int64_t, n);
    GRand *r = g_rand_new_with_seed(7);
    for (size_t i = 0; i < n; i++) {
        double b = pow(g_rand_double(r), 3.0);
        double d = g_rand_double_range(r, -0.15, 0.15) * (g_rand_int_range(r, 0, 10) ? 0.3 : 1.0);
        (*x)[i] = (float)b;
        (*y)[i] = (float)CLAMP(b + d, 0.0, 1.0);
        (*cat)[i] = (uint8_t)(g_rand_int_range(r, 0, 20) ? 0 : g_rand_int_range(r, 1, CRAFT_N_CATEGORY_COLOURS));
        (*ids)[i] = (int64_t)i + 1;
    }
    g_rand_free(r);
}

static void bench_drawing(size_t n)
{
    float *x, *y;
    uint8_t *cat;
    int64_t *ids;
    make_points(n, &x, &y, &cat, &ids);
    craft_scatter_points pts = {n, x, y, cat, ids};
    craft_view_style st = craft_view_style_light(); /* the app's light style, background painted */
    craft_scatter_view v;
    craft_scatter_view_init(&v, 1000, 700, &st);
    craft_scatter_geom g = {0};
    gint64 t0 = g_get_monotonic_time();
    if (craft_scatter_geom_build(&g, &pts, &v, 3, NULL)) {
        fprintf(stderr, "binning failed\n");
        exit(1);
    }
    printf("%zu points: binning on the worker %.1f ms (%zu visible)\n", n, (g_get_monotonic_time() - t0) / 1000.0,
           g.n_visible);
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1000, 700);
    static const char *const names[] = {"New", "In review", "Confirmed", "False positive", "Escalated", NULL};
    craft_scatter_decor decor = {.has_highlight = 1, .hx = 0.4, .hy = 0.6, .n_categories = 5,
                                 .category_names = names, .x_label = "backbone only", .y_label = "full model"};
    double ms[FRAMES];
    for (int f = 0; f < FRAMES; f++) {
        cairo_t *cr = cairo_create(surf);
        gint64 a = g_get_monotonic_time();
        craft_scatter_render(cr, &g, &v, &decor, &st);
        cairo_surface_flush(surf);
        ms[f] = (g_get_monotonic_time() - a) / 1000.0;
        cairo_destroy(cr);
    }
    report("render, current geometry", ms, FRAMES);
    /* zooming: the old geometry drawn scaled into the new view until the rebuild lands */
    craft_scatter_view z = v;
    for (int f = 0; f < FRAMES; f++) {
        craft_scatter_zoom(&z, 500, 350, 1.02);
        cairo_t *cr = cairo_create(surf);
        gint64 a = g_get_monotonic_time();
        craft_scatter_render(cr, &g, &z, &decor, &st);
        cairo_surface_flush(surf);
        ms[f] = (g_get_monotonic_time() - a) / 1000.0;
        cairo_destroy(cr);
    }
    report("render while zooming (older geometry scaled)", ms, FRAMES);
    cairo_surface_destroy(surf);
    craft_scatter_geom_clear(&g);
    g_free(x);
    g_free(y);
    g_free(cat);
    g_free(ids);
}

static gint64 paint_start;
static double last_frame_ms;
static guint frames_painted;

static void on_before_paint(GdkFrameClock *c, gpointer u) { paint_start = g_get_monotonic_time(); }

static void on_after_paint(GdkFrameClock *c, gpointer u)
{
    last_frame_ms = (g_get_monotonic_time() - paint_start) / 1000.0;
    frames_painted++;
}

static void spin_until_idle(CraftScatterWidget *w, int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;
    while (g_get_monotonic_time() < end && (craft_scatter_widget_is_busy(w) || g_main_context_pending(NULL)))
        g_main_context_iteration(NULL, FALSE);
}

static void bench_widget(size_t n)
{
    GtkWidget *win = gtk_window_new();
    GtkWidget *sc = craft_scatter_widget_new();
    CraftScatterWidget *w = CRAFT_SCATTER_WIDGET(sc);
    gtk_window_set_child(GTK_WINDOW(win), sc);
    gtk_window_set_default_size(GTK_WINDOW(win), 1000, 700);
    gtk_window_present(GTK_WINDOW(win));
    float *x, *y;
    uint8_t *cat;
    int64_t *ids;
    make_points(n, &x, &y, &cat, &ids);
    craft_scatter_widget_take_points(w, n, x, y, cat, ids);
    spin_until_idle(w, 20000);
    GskRenderer *renderer = gtk_native_get_renderer(GTK_NATIVE(win));
    GdkFrameClock *clock = gtk_widget_get_frame_clock(win);
    int width = gtk_widget_get_width(sc), height = gtk_widget_get_height(sc);
    printf("%zu points in a %dx%d widget (%s):\n", n, width, height, renderer ? G_OBJECT_TYPE_NAME(renderer) : "none");
    gulong h1 = g_signal_connect(clock, "before-paint", G_CALLBACK(on_before_paint), NULL);
    gulong h2 = g_signal_connect(clock, "after-paint", G_CALLBACK(on_after_paint), NULL);
    double frame[FRAMES];
    int got = 0;
    for (int f = 0; f < FRAMES; f++) {
        /* a zoom step per frame: a rebuild starts on the worker, the frame draws the bins it has */
        craft_scatter_widget_zoom_at(w, width / 2.0, height / 2.0, f < FRAMES / 2 ? 1.03 : 1 / 1.03);
        guint before = frames_painted;
        gint64 end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
        while (frames_painted == before && g_get_monotonic_time() < end)
            g_main_context_iteration(NULL, TRUE);
        if (frames_painted != before)
            frame[got++] = last_frame_ms;
    }
    g_signal_handler_disconnect(clock, h1);
    g_signal_handler_disconnect(clock, h2);
    if (got)
        report("frame: update, layout, snapshot, GSK render (main thread)", frame, got);
    /* the widget's own snapshot: the drawing recorded into a cairo node */
    double snap[FRAMES];
    for (int f = 0; f < FRAMES; f++) {
        GtkSnapshot *s = gtk_snapshot_new();
        gint64 a = g_get_monotonic_time();
        GTK_WIDGET_GET_CLASS(sc)->snapshot(sc, s);
        GskRenderNode *node = gtk_snapshot_free_to_node(s);
        snap[f] = (g_get_monotonic_time() - a) / 1000.0;
        if (node)
            gsk_render_node_unref(node);
    }
    report("widget snapshot (recording the drawing)", snap, FRAMES);
    printf("  longest binning on the worker: %.1f ms\n", craft_scatter_widget_get_max_build_seconds(w) * 1000);
    gtk_window_destroy(GTK_WINDOW(win));
}

int main(int argc, char **argv)
{
    size_t sizes[8] = {100000, 1000000};
    int n_sizes = 2;
    if (argc > 1) {
        n_sizes = 0;
        for (int i = 1; i < argc && n_sizes < 8; i++)
            sizes[n_sizes++] = (size_t)strtoull(argv[i], NULL, 10);
    }
    for (int i = 0; i < n_sizes; i++)
        bench_drawing(sizes[i]);
    if (!gtk_init_check()) {
        printf("no display: the widget part is left out\n");
        return 0;
    }
    adw_init();
    for (int i = 0; i < n_sizes; i++)
        bench_widget(sizes[i]);
    return 0;
}
