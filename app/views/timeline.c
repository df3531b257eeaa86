/* timeline.c: journey parsing, layout and drawing. */
#include "timeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_trim(char *dst, size_t cap, const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) { s++; len--; }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if (len >= cap) len = cap - 1;
    memcpy(dst, s, len);
    dst[len] = 0;
}

/* One "SCAN name t+2.5h k=v ..." segment. */
static void parse_event(const char *s, size_t len, craft_journey_event *e)
{
    memset(e, 0, sizeof *e);
    e->hours = NAN;
    char seg[512];
    copy_trim(seg, sizeof seg, s, len);
    const char *detail_start = NULL;
    char *save = NULL;
    int tok_i = 0;
    for (char *t = strtok_r(seg, " \t", &save); t; t = strtok_r(NULL, " \t", &save), tok_i++) {
        size_t tl = strlen(t);
        char *eq = strchr(t, '=');
        if (t[0] == 't' && t[1] == '+' && tl > 2) {
            char *end;
            double h = strtod(t + 2, &end);
            if (end != t + 2 && (*end == 0 || *end == 'h'))
                e->hours = h;
        } else if (eq) {
            if (!detail_start)
                detail_start = s + (t - seg) + (size_t)(strspn(s, " \t"));
            if ((!strncmp(t, "status=", 7) && strcmp(t + 7, "ok")) ||
                (!strncmp(t, "reason=", 7) && strcmp(t + 7, "none")))
                e->anomaly = 1;
        } else if (tok_i == 0 && tl > 1 && strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == tl) {
            continue; /* the record kind, e.g. SCAN */
        } else if (!e->name[0]) {
            snprintf(e->name, sizeof e->name, "%s", t);
        }
    }
    if (detail_start) {
        size_t off = (size_t)(detail_start - s);
        if (off < len)
            copy_trim(e->detail, sizeof e->detail, detail_start, len - off);
    }
    if (!e->name[0])
        snprintf(e->name, sizeof e->name, "event");
}

int craft_journey_parse(const char *text, craft_journey_event *ev, int max)
{
    if (!text)
        return 0;
    int n = 0;
    const char *p = text;
    while (*p && n < max) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        size_t blank = 0;
        while (blank < len && (p[blank] == ' ' || p[blank] == '\t' || p[blank] == '\n')) blank++;
        if (blank < len)
            parse_event(p, len, &ev[n++]);
        if (!bar) break;
        p = bar + 1;
    }
    return n;
}

void craft_timeline_layout(craft_timeline_geom *g, const craft_journey_event *ev, int n, double width,
                           double height, const craft_view_style *st)
{
    memset(g, 0, sizeof *g);
    g->n = n < CRAFT_TIMELINE_MAX ? n : CRAFT_TIMELINE_MAX;
    g->width = width;
    g->height = height;
    g->x0 = st->font_size * 3;
    g->x1 = fmax(width - st->font_size * 3, g->x0 + 1);
    g->axis_y = height * 0.45;
    double lo = 0, hi = 0;
    int timed = 0;
    for (int i = 0; i < g->n; i++)
        if (!isnan(ev[i].hours)) {
            if (!timed || ev[i].hours < lo) lo = ev[i].hours;
            if (!timed || ev[i].hours > hi) hi = ev[i].hours;
            timed = 1;
        }
    if (lo > 0) lo = 0; /* the axis starts at the order */
    if (hi <= lo) hi = lo + 1;
    g->t0 = lo;
    g->t1 = hi;
    for (int i = 0; i < g->n; i++) {
        /* untimed events sit evenly spaced, in order */
        double f = !isnan(ev[i].hours) ? (ev[i].hours - lo) / (hi - lo)
                                       : (g->n > 1 ? (double)i / (g->n - 1) : 0.5);
        g->xs[i] = g->x0 + f * (g->x1 - g->x0);
    }
}

int craft_timeline_hit(const craft_timeline_geom *g, double x, double y)
{
    int best = -1;
    double bd = 8;
    if (fabs(y - g->axis_y) > 16)
        return -1;
    for (int i = 0; i < g->n; i++)
        if (fabs(g->xs[i] - x) <= bd) {
            bd = fabs(g->xs[i] - x);
            best = i;
        }
    return best;
}

void craft_timeline_render(cairo_t *cr, const craft_timeline_geom *g, const craft_journey_event *ev,
                           int selected, const craft_view_style *st)
{
    cairo_save(cr);
    if (st->paint_bg) {
        craft_set_rgb(cr, st->bg);
        cairo_rectangle(cr, 0, 0, g->width, g->height);
        cairo_fill(cr);
    }
    if (g->n == 0) {
        craft_set_rgb(cr, st->muted);
        craft_draw_text(cr, st, "No journey recorded for this order", g->width / 2, g->height / 2, 0.5);
        cairo_restore(cr);
        return;
    }
    craft_set_rgb(cr, st->muted);
    cairo_set_line_width(cr, 2);
    cairo_move_to(cr, g->x0, g->axis_y);
    cairo_line_to(cr, g->x1, g->axis_y);
    cairo_stroke(cr);
    char buf[96];
    snprintf(buf, sizeof buf, "t+%.3gh", g->t0);
    craft_draw_text(cr, st, buf, g->x0, g->height - st->font_size, 0);
    snprintf(buf, sizeof buf, "t+%.3gh", g->t1);
    craft_draw_text(cr, st, buf, g->x1, g->height - st->font_size, 1);
    /* labels go into lanes, alternately above and below the axis, each in the first
     * lane where it clears its neighbours; kept inside the drawing */
    enum { LANES = 6 };
    double lane_end[LANES];
    for (int l = 0; l < LANES; l++) lane_end[l] = -1e9;
    for (int i = 0; i < g->n; i++) {
        craft_rgb c = ev[i].anomaly ? craft_category_colour(4) : craft_category_colour(2);
        craft_set_rgb(cr, c);
        cairo_arc(cr, g->xs[i], g->axis_y, i == selected ? 8 : 6, 0, 2 * M_PI);
        cairo_fill(cr);
        if (isnan(ev[i].hours))
            snprintf(buf, sizeof buf, "%s", ev[i].name);
        else
            snprintf(buf, sizeof buf, "%s %.3gh", ev[i].name, ev[i].hours);
        double w = craft_text_width(cr, st, buf);
        double left = fmin(fmax(g->xs[i] - w / 2, 2), g->width - w - 2);
        int lane = 0;
        while (lane < LANES - 1 && lane_end[lane] > left - st->font_size * 0.6)
            lane++;
        lane_end[lane] = left + w;
        int depth = lane / 2 + 1;
        double ly = lane % 2 == 0 ? g->axis_y - st->font_size * (0.1 + 1.3 * depth)
                                  : g->axis_y + st->font_size * (0.2 + 1.3 * depth);
        if (depth > 1) { /* a leader from the dot to a label set further out */
            craft_set_rgba(cr, st->muted, 0.8);
            cairo_set_line_width(cr, 1);
            cairo_move_to(cr, g->xs[i], g->axis_y + (lane % 2 == 0 ? -7 : 7));
            cairo_line_to(cr, g->xs[i], ly + (lane % 2 == 0 ? st->font_size * 0.6 : -st->font_size * 0.6));
            cairo_stroke(cr);
        }
        craft_set_rgb(cr, st->fg);
        craft_draw_text(cr, st, buf, left, ly, 0);
    }
    /* what the colours mean */
    double lx = g->x0, ly = st->font_size;
    craft_set_rgb(cr, craft_category_colour(2));
    cairo_arc(cr, lx + 5, ly, 5, 0, 2 * M_PI);
    cairo_fill(cr);
    craft_set_rgb(cr, st->fg);
    craft_draw_text(cr, st, "scan", lx + 14, ly, 0);
    lx += 14 + craft_text_width(cr, st, "scan") + st->font_size;
    craft_set_rgb(cr, craft_category_colour(4));
    cairo_arc(cr, lx + 5, ly, 5, 0, 2 * M_PI);
    cairo_fill(cr);
    craft_set_rgb(cr, st->fg);
    craft_draw_text(cr, st, "anomaly", lx + 14, ly, 0);
    cairo_restore(cr);
}
