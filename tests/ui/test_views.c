/* test_views.c: the pure Cairo views (app/views) drawn headless into PNG files,
 * checked for content: colours at positions the geometry computes, rankings,
 * hit tests, selection and the zoom/pan transform. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bars.h"
#include "heatmap.h"
#include "palette.h"
#include "scatter.h"
#include "timeline.h"

static char out_dir[1024] = ".";

static void save_png(cairo_surface_t *s, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    CU_ASSERT_EQUAL(cairo_surface_write_to_png(s, path), CAIRO_STATUS_SUCCESS);
    /* the PNG must read back with the same size: the export path works end to end */
    cairo_surface_t *back = cairo_image_surface_create_from_png(path);
    CU_ASSERT_EQUAL(cairo_surface_status(back), CAIRO_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(cairo_image_surface_get_width(back), cairo_image_surface_get_width(s));
    cairo_surface_destroy(back);
}

static void test_diverging(void)
{
    craft_rgb zero = craft_diverging(0, 1), pos = craft_diverging(1, 1), neg = craft_diverging(-1, 1);
    CU_ASSERT(craft_rgb_near(zero, (craft_rgb){0xf7 / 255.0, 0xf7 / 255.0, 0xf7 / 255.0}, 1e-9));
    CU_ASSERT(pos.r > 0.6 && pos.b < 0.3);   /* synergy is red */
    CU_ASSERT(neg.b > 0.6 && neg.r < 0.3);   /* suppression is blue */
    CU_ASSERT(craft_rgb_near(craft_diverging(5, 1), pos, 1e-12)); /* clamped */
    CU_ASSERT(craft_rgb_near(craft_diverging(NAN, 1), craft_missing_colour(), 1e-12));
    /* symmetric around zero in lightness: equal |v| gives equal distance from white */
    craft_rgb a = craft_diverging(0.5, 1), b = craft_diverging(-0.5, 1);
    CU_ASSERT(fabs((a.r + a.g + a.b) - (b.r + b.g + b.b)) < 0.35);
}

/* 6 features x 2 auxiliaries; f3 has the largest |CMIS| (negative), f0 has none. */
static const char *feat_names[] = {"f0", "f1", "f2", "f3", "f4", "f5"};
static const char *mod_names[] = {"txt", "graph"};
static const float cmis_vals[2][6] = {
    {0.00f, 0.02f, 0.10f, -0.01f, 0.001f, 0.05f},
    {0.00f, -0.04f, NAN, -0.20f, 0.002f, 0.00f},
};
static const float importance[6] = {0.40f, 0.10f, 0.15f, 0.25f, 0.05f, 0.05f};

static craft_heatmap_data heat_data(void)
{
    craft_heatmap_data d = {6, feat_names, 2, mod_names, &cmis_vals[0][0], importance};
    return d;
}

static void test_heatmap_geometry(void)
{
    craft_heatmap_data d = heat_data();
    craft_view_style st = craft_view_style_light();
    craft_heatmap_geom g;
    CU_ASSERT_EQUAL_FATAL(craft_heatmap_layout(&g, &d, 4, 600, 400, &st), 0);
    CU_ASSERT_EQUAL(g.n_rows, 4);
    CU_ASSERT_EQUAL(g.n_cols, 2);
    /* sorted by largest |CMIS|: f3 (0.20), f2 (0.10), f5 (0.05), f1 (0.04) */
    CU_ASSERT_EQUAL(g.rows[0], 3);
    CU_ASSERT_EQUAL(g.rows[1], 2);
    CU_ASSERT_EQUAL(g.rows[2], 5);
    CU_ASSERT_EQUAL(g.rows[3], 1);
    CU_ASSERT_DOUBLE_EQUAL(g.vmax, 0.20, 1e-6);
    /* the grid fits inside the drawing */
    CU_ASSERT(g.grid_x + g.cell_w * g.n_cols <= 600 + 1e-9);
    CU_ASSERT(g.legend_y + g.legend_h <= 400);
    /* hit test inverts the cell centre, and misses outside */
    for (int r = 0; r < g.n_rows; r++)
        for (int c = 0; c < g.n_cols; c++) {
            double x, y;
            int hr, hc;
            craft_heatmap_cell_centre(&g, r, c, &x, &y);
            CU_ASSERT(craft_heatmap_hit(&g, x, y, &hr, &hc));
            CU_ASSERT(hr == r && hc == c);
        }
    int hr, hc;
    CU_ASSERT_FALSE(craft_heatmap_hit(&g, 1, 1, &hr, &hc));
    /* hover values: importance without graph = alpha - CMIS */
    craft_heatmap_cell info;
    CU_ASSERT(craft_heatmap_cell_info(&g, &d, 0, 1, &info));
    CU_ASSERT_EQUAL(info.feature, 3);
    CU_ASSERT_DOUBLE_EQUAL(info.cmis, -0.20, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(info.alpha_with, 0.25, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(info.alpha_without, 0.45, 1e-6);
    CU_ASSERT_FALSE(craft_heatmap_cell_info(&g, &d, 4, 0, &info));
    craft_heatmap_geom_clear(&g);

    /* top N larger than the features: every feature, all-zero f0 still present */
    CU_ASSERT_EQUAL(craft_heatmap_layout(&g, &d, 100, 600, 400, &st), 0);
    CU_ASSERT_EQUAL(g.n_rows, 6);
    craft_heatmap_geom_clear(&g);
}

static void test_heatmap_rankings(void)
{
    craft_heatmap_data d = heat_data();
    int out[6];
    int n = craft_cmis_synergistic(&d, out, 6);
    CU_ASSERT_EQUAL(n, 4); /* f1, f2, f4, f5 have a CMIS > 0; f0 and f3 none */
    n = craft_cmis_synergistic(&d, out, 2);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(out[0], 2);
    CU_ASSERT_EQUAL(out[1], 5);
    n = craft_cmis_suppressed(&d, out, 6);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(out[0], 3);
    CU_ASSERT_EQUAL(out[1], 1);
    /* self-sufficient: importance > 1/6 and every |CMIS| < importance/4: only f0 (f3's 0.20 > 0.0625) */
    n = craft_cmis_self_sufficient(&d, out, 6);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(out[0], 0);
}

static void test_heatmap_render(void)
{
    craft_heatmap_data d = heat_data();
    const craft_view_style styles[2] = {craft_view_style_light(), craft_view_style_dark()};
    const char *names[2] = {"heatmap-light.png", "heatmap-dark.png"};
    for (int s = 0; s < 2; s++) {
        craft_heatmap_geom g;
        CU_ASSERT_EQUAL_FATAL(craft_heatmap_layout(&g, &d, 6, 600, 400, &styles[s]), 0);
        cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 600, 400);
        cairo_t *cr = cairo_create(surf);
        craft_heatmap_render(cr, &g, &d, 2, &styles[s]);
        cairo_destroy(cr);
        /* each cell's corner has the diverging colour of its value */
        for (int r = 0; r < g.n_rows; r++)
            for (int c = 0; c < g.n_cols; c++) {
                double x = g.grid_x + c * g.cell_w + 4, y = g.grid_y + r * g.cell_h + 4;
                craft_rgb want = craft_diverging(cmis_vals[c][g.rows[r]], g.vmax);
                craft_rgb got = craft_surface_pixel(surf, (int)ceil(x), (int)ceil(y));
                if (g.rows[r] == 2) /* the selected row: its outline is inside the corner */
                    continue;
                CU_ASSERT(craft_rgb_near(got, want, 2.5 / 255));
            }
        /* the strongest suppression cell (f3, graph) is saturated blue, f2 x txt is red */
        craft_rgb f3g = craft_surface_pixel(surf, (int)(g.grid_x + 1.5 * g.cell_w), (int)(g.grid_y + 6));
        CU_ASSERT(f3g.b > 0.55 && f3g.r < 0.25);
        /* legend: left end blue, right end red, middle near white */
        int ly = (int)(g.legend_y + g.legend_h / 2);
        craft_rgb l = craft_surface_pixel(surf, (int)g.legend_x + 2, ly);
        craft_rgb r = craft_surface_pixel(surf, (int)(g.legend_x + g.legend_w) - 2, ly);
        craft_rgb m = craft_surface_pixel(surf, (int)(g.legend_x + g.legend_w / 2), ly);
        CU_ASSERT(l.b > 0.55 && l.r < 0.3);
        CU_ASSERT(r.r > 0.6 && r.b < 0.3);
        CU_ASSERT(m.r > 0.9 && m.g > 0.9 && m.b > 0.9);
        /* selected row (f2, row 1) has the accent outline at its left edge */
        craft_rgb sel = craft_surface_pixel(surf, (int)g.grid_x + 1, (int)(g.grid_y + 1.5 * g.cell_h));
        CU_ASSERT(craft_rgb_near(sel, styles[s].accent, 0.08));
        /* the background outside the grid is the style's */
        craft_rgb bg = craft_surface_pixel(surf, 599, 399);
        CU_ASSERT(craft_rgb_near(bg, styles[s].bg, 1.0 / 255));
        /* some text was drawn in the label column */
        int ink = 0;
        for (int x = 0; x < (int)g.grid_x; x++)
            for (int y = (int)g.grid_y; y < (int)(g.grid_y + g.cell_h * g.n_rows); y++)
                ink += !craft_rgb_near(craft_surface_pixel(surf, x, y), styles[s].bg, 0.1);
        CU_ASSERT(ink > 20);
        save_png(surf, names[s]);
        cairo_surface_destroy(surf);
        craft_heatmap_geom_clear(&g);
    }
}

/* deterministic pseudo-random numbers */
static uint64_t rng_state = 88172645463325252ull;
static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static void test_scatter_transform(void)
{
    craft_view_style st = craft_view_style_light();
    craft_scatter_view v;
    craft_scatter_view_init(&v, 800, 600, &st);
    double px, py, dx, dy;
    craft_scatter_to_pixel(&v, 0.3, 0.7, &px, &py);
    craft_scatter_to_data(&v, px, py, &dx, &dy);
    CU_ASSERT_DOUBLE_EQUAL(dx, 0.3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dy, 0.7, 1e-12);
    /* y grows upward on screen */
    double px2, py2;
    craft_scatter_to_pixel(&v, 0.3, 0.9, &px2, &py2);
    CU_ASSERT(py2 < py);
    /* zoom keeps the data point under the cursor in place and shrinks the range */
    double w0 = v.x1 - v.x0;
    craft_scatter_zoom(&v, px, py, 2.0);
    CU_ASSERT_DOUBLE_EQUAL(v.x1 - v.x0, w0 / 2, 1e-12);
    craft_scatter_to_data(&v, px, py, &dx, &dy);
    CU_ASSERT_DOUBLE_EQUAL(dx, 0.3, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(dy, 0.7, 1e-9);
    /* pan by 100 px moves the point 100 px */
    craft_scatter_to_pixel(&v, 0.3, 0.7, &px, &py);
    craft_scatter_pan(&v, 100, -50);
    craft_scatter_to_pixel(&v, 0.3, 0.7, &px2, &py2);
    CU_ASSERT_DOUBLE_EQUAL(px2 - px, 100, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(py2 - py, -50, 1e-9);
    /* a degenerate zoom is refused rather than breaking the transform */
    craft_scatter_view before = v;
    craft_scatter_zoom(&v, px, py, 1e12);
    CU_ASSERT_DOUBLE_EQUAL(v.x1 - v.x0, before.x1 - before.x0, 1e-15);
}

#define NPTS 100000
static void test_scatter_bins_and_render(void)
{
    float *x = malloc(NPTS * sizeof *x), *y = malloc(NPTS * sizeof *y);
    uint8_t *cat = malloc(NPTS);
    int64_t *ids = malloc(NPTS * sizeof *ids);
    CU_ASSERT_FATAL(x && y && cat && ids);
    /* most orders near the diagonal, low scores; a cluster of category 3 moved up by
     * cross-modal evidence at (0.2, 0.8); nothing in the region x > 0.6, y < 0.3 */
    for (int i = 0; i < NPTS; i++) {
        ids[i] = 1000 + i;
        if (i % 50 == 0) {
            x[i] = 0.2f + (float)(urand() - 0.5) * 0.04f;
            y[i] = 0.8f + (float)(urand() - 0.5) * 0.04f;
            cat[i] = 3;
        } else {
            double b = urand() * 0.5;
            x[i] = (float)b;
            y[i] = (float)fmin(fmax(b + (urand() - 0.5) * 0.1, 0), 1);
            cat[i] = 0;
        }
    }
    craft_scatter_points pts = {NPTS, x, y, cat, ids};
    const craft_view_style styles[2] = {craft_view_style_light(), craft_view_style_dark()};
    const char *names[2] = {"scatter-light.png", "scatter-dark.png"};
    for (int s = 0; s < 2; s++) {
        craft_scatter_view v;
        craft_scatter_view_init(&v, 800, 600, &styles[s]);
        craft_scatter_geom g;
        CU_ASSERT_EQUAL_FATAL(craft_scatter_geom_build(&g, &pts, &v, 3, NULL), 0);
        CU_ASSERT_EQUAL(g.n_visible, NPTS);
        CU_ASSERT_EQUAL(g.per_category[3], NPTS / 50);
        CU_ASSERT_EQUAL(g.per_category[0], NPTS - NPTS / 50);
        cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 800, 600);
        cairo_t *cr = cairo_create(surf);
        craft_scatter_decor decor = {.has_highlight = 1, .hx = 0.9, .hy = 0.9,
                                     .has_selection = 1, .sx0 = 0, .sy0 = 0, .sx1 = 0, .sy1 = 0};
        craft_scatter_to_pixel(&v, 0.15, 0.85, &decor.sx0, &decor.sy0);
        craft_scatter_to_pixel(&v, 0.25, 0.75, &decor.sx1, &decor.sy1);
        const char *cats[] = {"New", "In review", "Escalated", "Confirmed"};
        decor.n_categories = 4;
        decor.category_names = cats;
        craft_scatter_render(cr, &g, &v, &decor, &styles[s]);
        cairo_destroy(cr);
        double px, py;
        /* the cluster's centre has category 3's hue (reddish purple: green lowest), blended
         * with the background by its density and with the selection tint */
        craft_scatter_to_pixel(&v, 0.2, 0.8, &px, &py);
        craft_rgb got = craft_surface_pixel(surf, (int)px, (int)py);
        CU_ASSERT(got.r > got.g + 0.1 && got.b > got.g + 0.05);
        CU_ASSERT_FALSE(craft_rgb_near(got, styles[s].bg, 0.1));
        /* the dense diagonal at (0.25, 0.25) is category 0's colour, fully opaque-ish */
        craft_scatter_to_pixel(&v, 0.25, 0.25, &px, &py);
        got = craft_surface_pixel(surf, (int)px, (int)py);
        CU_ASSERT(craft_rgb_near(got, craft_category_colour(0), 0.15));
        /* the empty region shows the background */
        craft_scatter_to_pixel(&v, 0.8, 0.12, &px, &py);
        got = craft_surface_pixel(surf, (int)px, (int)py);
        CU_ASSERT(craft_rgb_near(got, styles[s].bg, 2.0 / 255));
        /* the highlighted order at (0.9, 0.9) has the accent dot */
        craft_scatter_to_pixel(&v, 0.9, 0.9, &px, &py);
        got = craft_surface_pixel(surf, (int)px, (int)py);
        CU_ASSERT(craft_rgb_near(got, styles[s].accent, 0.02));
        save_png(surf, names[s]);
        cairo_surface_destroy(surf);
        craft_scatter_geom_clear(&g);

        /* rectangle selection: exactly the points a brute-force count finds */
        int64_t *sel = NULL;
        long n = craft_scatter_select(&pts, &v, decor.sx1, decor.sy1, decor.sx0, decor.sy0, &sel);
        long want = 0;
        for (int i = 0; i < NPTS; i++)
            want += x[i] >= 0.15f - 1e-6 && x[i] <= 0.25f + 1e-6 && y[i] >= 0.75f - 1e-6 && y[i] <= 0.85f + 1e-6;
        CU_ASSERT(labs(n - want) <= 2); /* only float rounding at the edges may differ */
        CU_ASSERT(n >= NPTS / 50);
        int all_ids_valid = 1;
        for (long i = 0; i < n; i++)
            all_ids_valid &= sel[i] >= 1000 && sel[i] < 1000 + NPTS;
        CU_ASSERT(all_ids_valid);
        free(sel);
    }
    /* zoomed into the cluster, only it (and nothing of the diagonal) is visible */
    craft_scatter_view v;
    craft_scatter_view_init(&v, 800, 600, &styles[0]);
    double px, py;
    craft_scatter_to_pixel(&v, 0.2, 0.8, &px, &py);
    craft_scatter_zoom(&v, px, py, 8);
    craft_scatter_geom g;
    CU_ASSERT_EQUAL(craft_scatter_geom_build(&g, &pts, &v, 3, NULL), 0);
    CU_ASSERT_EQUAL(g.per_category[3], NPTS / 50);
    CU_ASSERT_EQUAL(g.per_category[0], 0);
    craft_scatter_geom_clear(&g);
    /* a cancelled build stops and reports it */
    volatile int cancel = 1;
    CU_ASSERT_EQUAL(craft_scatter_geom_build(&g, &pts, &v, 3, &cancel), 1);
    CU_ASSERT_PTR_NULL(g.argb);
    /* nearest point to the cluster centre is a category-3 point */
    long k = craft_scatter_nearest(&pts, &v, px, py, 30);
    CU_ASSERT(k >= 0 && cat[k] == 3);
    CU_ASSERT_EQUAL(craft_scatter_nearest(&pts, &v, -500, -500, 5), -1);
    free(x); free(y); free(cat); free(ids);
}

static void test_bars(void)
{
    const char *classes[] = {"D1", "D2", "D3"};
    float scores[] = {0.12f, 0.91f, 0.40f}, alt[] = {0.10f, 0.64f, NAN}, thr[] = {0.5f, 0.5f, 0.3f};
    craft_bars_data d = {3, classes, scores, alt, thr};
    craft_view_style st = craft_view_style_light();
    craft_bars_geom g;
    craft_bars_layout(&g, &d, 500, 120, &st);
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 500, 120);
    cairo_t *cr = cairo_create(surf);
    craft_bars_render(cr, &g, &d, &st);
    cairo_destroy(cr);
    for (int i = 0; i < 3; i++) {
        double x, y, w, h;
        craft_bars_track(&g, i, &x, &y, &w, &h);
        int flagged = scores[i] >= thr[i];
        /* inside the bar: its colour; past the score (and clear of the threshold mark): the track */
        craft_rgb in = craft_surface_pixel(surf, (int)(x + w * scores[i] * 0.5), (int)(y + h / 2));
        CU_ASSERT(craft_rgb_near(in, craft_bars_colour(&st, flagged), 0.02));
        double past = scores[i] + (1 - scores[i]) * 0.5;
        if (fabs(past - thr[i]) < 0.03) past += 0.03;
        craft_rgb out = craft_surface_pixel(surf, (int)(x + w * past), (int)(y + h / 2));
        CU_ASSERT_FALSE(craft_rgb_near(out, craft_bars_colour(&st, flagged), 0.2));
        /* the subset bar below has the muted colour up to its score */
        if (!isnan(alt[i])) {
            craft_rgb a = craft_surface_pixel(surf, (int)(x + w * alt[i] * 0.5), (int)(y + h * 1.6));
            CU_ASSERT(craft_rgb_near(a, st.muted, 0.02));
        }
    }
    save_png(surf, "bars-light.png");
    cairo_surface_destroy(surf);
}

static void test_timeline(void)
{
    const char *j = "SCAN picked t+0.5h reason=none status=ok station=wh | SCAN arrive_hub t+2.5h reason=none "
                    "status=ok station=sort handlers=3 | SCAN damaged t+30h reason=crushed status=exception | "
                    "  | SCAN delivered t+48h status=ok";
    craft_journey_event ev[8];
    int n = craft_journey_parse(j, ev, 8);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_STRING_EQUAL(ev[0].name, "picked");
    CU_ASSERT_DOUBLE_EQUAL(ev[1].hours, 2.5, 1e-12);
    CU_ASSERT_STRING_EQUAL(ev[1].name, "arrive_hub");
    CU_ASSERT_FALSE(ev[1].anomaly);
    CU_ASSERT(ev[2].anomaly);
    CU_ASSERT_STRING_EQUAL(ev[2].detail, "reason=crushed status=exception");
    CU_ASSERT_DOUBLE_EQUAL(ev[3].hours, 48, 1e-12);
    CU_ASSERT_EQUAL(craft_journey_parse(NULL, ev, 8), 0);
    CU_ASSERT_EQUAL(craft_journey_parse("", ev, 8), 0);
    CU_ASSERT_EQUAL(craft_journey_parse(j, ev, 2), 2);
    /* garbage still parses into named events without crashing */
    CU_ASSERT_EQUAL(craft_journey_parse("t+xh =|===|SCAN", ev, 8), 3);
    n = craft_journey_parse(j, ev, 8);

    craft_view_style st = craft_view_style_dark();
    craft_timeline_geom g;
    craft_timeline_layout(&g, ev, n, 600, 100, &st);
    CU_ASSERT(g.xs[0] < g.xs[1] && g.xs[1] < g.xs[2] && g.xs[2] < g.xs[3]);
    CU_ASSERT_DOUBLE_EQUAL(g.xs[3], g.x1, 1e-9);
    /* positions are proportional to time */
    CU_ASSERT_DOUBLE_EQUAL((g.xs[2] - g.x0) / (g.x1 - g.x0), 30.0 / 48.0, 1e-9);
    CU_ASSERT_EQUAL(craft_timeline_hit(&g, g.xs[2] + 3, g.axis_y), 2);
    CU_ASSERT_EQUAL(craft_timeline_hit(&g, g.xs[2], g.axis_y + 40), -1);
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 600, 100);
    cairo_t *cr = cairo_create(surf);
    craft_timeline_render(cr, &g, ev, -1, &st);
    cairo_destroy(cr);
    CU_ASSERT(craft_rgb_near(craft_surface_pixel(surf, (int)g.xs[2], (int)g.axis_y), craft_category_colour(4), 0.02));
    CU_ASSERT(craft_rgb_near(craft_surface_pixel(surf, (int)g.xs[1], (int)g.axis_y), craft_category_colour(2), 0.02));
    save_png(surf, "timeline-dark.png");
    cairo_surface_destroy(surf);
}

int main(void)
{
    const char *b = getenv("CRAFT_BUILD");
    if (b)
        snprintf(out_dir, sizeof out_dir, "%s/tests/ui", b);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("views", NULL, NULL);
    if (!s || !CU_add_test(s, "diverging colours", test_diverging) ||
        !CU_add_test(s, "heatmap geometry", test_heatmap_geometry) ||
        !CU_add_test(s, "heatmap rankings", test_heatmap_rankings) ||
        !CU_add_test(s, "heatmap render", test_heatmap_render) ||
        !CU_add_test(s, "scatter transform", test_scatter_transform) ||
        !CU_add_test(s, "scatter bins, render, select", test_scatter_bins_and_render) ||
        !CU_add_test(s, "score bars", test_bars) || !CU_add_test(s, "journey timeline", test_timeline)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
