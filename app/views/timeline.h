/* timeline.h: an order's shipment journey (scan events) on a time axis.
 * Events come from the order's "journey" text field, "SCAN <event> t+<hours>h key=value ... | ...";
 * an event whose status is not ok or whose reason is not none is marked as an anomaly. */
#ifndef CRAFT_TIMELINE_H
#define CRAFT_TIMELINE_H

#include <cairo.h>

#include "palette.h"

typedef struct {
    char name[64];
    double hours;        /* since the order; NaN when the event gave no time */
    int anomaly;
    char detail[160];    /* the key=value pairs as given */
} craft_journey_event;

/* Parses up to max events; returns how many were read (0 for NULL or empty text). */
int craft_journey_parse(const char *text, craft_journey_event *ev, int max);

typedef struct {
    int n;
    double width, height;
    double axis_y, x0, x1;    /* the axis in pixels */
    double t0, t1;            /* hours at x0 and x1 */
    double xs[64];            /* x of each event (first 64) */
} craft_timeline_geom;

#define CRAFT_TIMELINE_MAX 64

void craft_timeline_layout(craft_timeline_geom *g, const craft_journey_event *ev, int n, double width,
                           double height, const craft_view_style *st);
/* Index of the event marker nearest x within 8 pixels, or -1. */
int craft_timeline_hit(const craft_timeline_geom *g, double x, double y);
void craft_timeline_render(cairo_t *cr, const craft_timeline_geom *g, const craft_journey_event *ev,
                           int selected, const craft_view_style *st);

#endif
