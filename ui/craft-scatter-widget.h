/* craft-scatter-widget.h: the score space as a widget: scroll zooms, a right or
 * middle drag (or Shift+drag) pans, a left drag selects a rectangle of orders.
 * Binning runs on a worker thread (GTask) each time the view or the points change. */
#ifndef CRAFT_SCATTER_WIDGET_H
#define CRAFT_SCATTER_WIDGET_H

#include <gtk/gtk.h>
#include <stdint.h>

G_BEGIN_DECLS

#define CRAFT_TYPE_SCATTER_WIDGET (craft_scatter_widget_get_type())
G_DECLARE_FINAL_TYPE(CraftScatterWidget, craft_scatter_widget, CRAFT, SCATTER_WIDGET, GtkWidget)

GtkWidget *craft_scatter_widget_new(void);
/* Takes ownership of the arrays (g_malloc'd), n points each; cat and ids may be NULL. */
void craft_scatter_widget_take_points(CraftScatterWidget *self, size_t n, float *x, float *y, uint8_t *cat,
                                      int64_t *ids);
/* Legend names for the categories (copied). */
void craft_scatter_widget_set_categories(CraftScatterWidget *self, const char *const *names);
void craft_scatter_widget_set_highlight(CraftScatterWidget *self, gboolean on, double x, double y);
void craft_scatter_widget_reset_view(CraftScatterWidget *self);
void craft_scatter_widget_zoom_at(CraftScatterWidget *self, double px, double py, double factor);
/* Selects the orders inside a pixel rectangle as a drag would, and emits "selection-done". */
void craft_scatter_widget_select_rect(CraftScatterWidget *self, double ax, double ay, double bx, double by);
/* The ids of the last selection (owned by the widget). */
const int64_t *craft_scatter_widget_get_selection(CraftScatterWidget *self, size_t *n);
/* Points binned by the geometry currently drawn, and whether a build is pending. */
size_t craft_scatter_widget_get_n_visible(CraftScatterWidget *self);
gboolean craft_scatter_widget_is_busy(CraftScatterWidget *self);
/* The longest geometry build so far (seconds, on the worker). */
double craft_scatter_widget_get_max_build_seconds(CraftScatterWidget *self);

G_END_DECLS

#endif
