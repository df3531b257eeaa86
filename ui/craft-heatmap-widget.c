/* craft-heatmap-widget.c: CMIS heatmap widget: hover tooltips with the exact values,
 * a click selects the feature (property "selected-feature", shared by the window). */
#include "craft-heatmap-widget.h"

#include <math.h>

#include "craft-plot-style.h"
#include "heatmap.h"

struct _CraftHeatmapWidget {
    GtkWidget parent_instance;
    int n_features, n_modalities;
    GStrv features, modalities;
    float *cmis, *importance;
    int top_n, selected;
    craft_heatmap_geom geom;
    int geom_w, geom_h, geom_valid;
};

G_DEFINE_FINAL_TYPE(CraftHeatmapWidget, craft_heatmap_widget, GTK_TYPE_WIDGET)

enum { PROP_0, PROP_TOP_N, PROP_SELECTED_FEATURE, N_PROPS };
static GParamSpec *props[N_PROPS];

static craft_heatmap_data data_of(CraftHeatmapWidget *self)
{
    craft_heatmap_data d = {self->n_features, (const char *const *)self->features, self->n_modalities,
                            (const char *const *)self->modalities, self->cmis, self->importance};
    return d;
}

/* Layout is a few dozen rows: cheap enough to redo on the main thread when the size changes. */
static void ensure_geometry(CraftHeatmapWidget *self)
{
    int w = gtk_widget_get_width(GTK_WIDGET(self)), h = gtk_widget_get_height(GTK_WIDGET(self));
    if (self->geom_valid && w == self->geom_w && h == self->geom_h)
        return;
    craft_heatmap_geom_clear(&self->geom);
    craft_view_style st = craft_plot_style_current();
    craft_heatmap_data d = data_of(self);
    self->geom_valid = craft_heatmap_layout(&self->geom, &d, self->top_n, w, h, &st) == 0;
    self->geom_w = w;
    self->geom_h = h;
}

static void craft_heatmap_widget_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
    CraftHeatmapWidget *self = CRAFT_HEATMAP_WIDGET(widget);
    int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
    if (self->n_features == 0 || w <= 0 || h <= 0)
        return;
    ensure_geometry(self);
    if (!self->geom_valid)
        return;
    craft_view_style st = craft_plot_style_current();
    craft_heatmap_data d = data_of(self);
    cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
    craft_heatmap_render(cr, &self->geom, &d, self->selected, &st);
    cairo_destroy(cr);
}

char *craft_heatmap_widget_describe_at(CraftHeatmapWidget *self, double x, double y)
{
    int row, col;
    if (self->n_features == 0)
        return NULL;
    ensure_geometry(self);
    if (!self->geom_valid || !craft_heatmap_hit(&self->geom, x, y, &row, &col))
        return NULL;
    craft_heatmap_data d = data_of(self);
    craft_heatmap_cell c;
    if (!craft_heatmap_cell_info(&self->geom, &d, row, col, &c))
        return NULL;
    if (isnan(c.cmis))
        return g_strdup_printf("%s × %s: %s is missing for this order", self->features[c.feature],
                               self->modalities[col], self->modalities[col]);
    return g_strdup_printf("%s × %s\nCMIS %+.5f (%s)\nimportance with %s: %.5f\nimportance without: %.5f",
                           self->features[c.feature], self->modalities[col], c.cmis,
                           c.cmis > 0 ? "synergy" : c.cmis < 0 ? "suppression" : "none",
                           self->modalities[col], c.alpha_with, c.alpha_without);
}

static gboolean on_query_tooltip(GtkWidget *widget, int x, int y, gboolean keyboard, GtkTooltip *tooltip,
                                 gpointer user)
{
    char *text = craft_heatmap_widget_describe_at(CRAFT_HEATMAP_WIDGET(widget), x, y);
    if (!text)
        return FALSE;
    gtk_tooltip_set_text(tooltip, text);
    g_free(text);
    return TRUE;
}

static void on_click(GtkGestureClick *gesture, int n_press, double x, double y, CraftHeatmapWidget *self)
{
    int row, col;
    ensure_geometry(self);
    if (self->geom_valid && craft_heatmap_hit(&self->geom, x, y, &row, &col))
        craft_heatmap_widget_set_selected_feature(self, self->geom.rows[row]);
}

static void on_style_changed(AdwStyleManager *sm, GParamSpec *p, CraftHeatmapWidget *self)
{
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

void craft_heatmap_widget_set_data(CraftHeatmapWidget *self, int n_features, const char *const *features,
                                   int n_modalities, const char *const *modalities, const float *cmis,
                                   const float *importance)
{
    g_strfreev(self->features);
    g_strfreev(self->modalities);
    g_free(self->cmis);
    g_free(self->importance);
    self->features = g_strdupv((char **)features);
    self->modalities = g_strdupv((char **)modalities);
    self->n_features = features ? n_features : 0;
    self->n_modalities = n_modalities;
    self->cmis = n_features ? g_memdup2(cmis, sizeof(float) * n_features * n_modalities) : NULL;
    self->importance = importance && n_features ? g_memdup2(importance, sizeof(float) * n_features) : NULL;
    self->geom_valid = 0;
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

void craft_heatmap_widget_set_top_n(CraftHeatmapWidget *self, int top_n)
{
    if (top_n == self->top_n)
        return;
    self->top_n = top_n;
    self->geom_valid = 0;
    gtk_widget_queue_draw(GTK_WIDGET(self));
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_TOP_N]);
}

int craft_heatmap_widget_get_top_n(CraftHeatmapWidget *self) { return self->top_n; }

void craft_heatmap_widget_set_selected_feature(CraftHeatmapWidget *self, int feature)
{
    if (feature == self->selected)
        return;
    self->selected = feature;
    gtk_widget_queue_draw(GTK_WIDGET(self));
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_SELECTED_FEATURE]);
}

int craft_heatmap_widget_get_selected_feature(CraftHeatmapWidget *self) { return self->selected; }

static void craft_heatmap_widget_get_property(GObject *o, guint id, GValue *v, GParamSpec *p)
{
    CraftHeatmapWidget *self = CRAFT_HEATMAP_WIDGET(o);
    if (id == PROP_TOP_N) g_value_set_int(v, self->top_n);
    else if (id == PROP_SELECTED_FEATURE) g_value_set_int(v, self->selected);
    else G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, p);
}

static void craft_heatmap_widget_set_property(GObject *o, guint id, const GValue *v, GParamSpec *p)
{
    CraftHeatmapWidget *self = CRAFT_HEATMAP_WIDGET(o);
    if (id == PROP_TOP_N) craft_heatmap_widget_set_top_n(self, g_value_get_int(v));
    else if (id == PROP_SELECTED_FEATURE) craft_heatmap_widget_set_selected_feature(self, g_value_get_int(v));
    else G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, p);
}

static void craft_heatmap_widget_size_allocate(GtkWidget *w, int width, int height, int baseline)
{
    CRAFT_HEATMAP_WIDGET(w)->geom_valid = 0;
}

static void craft_heatmap_widget_measure(GtkWidget *w, GtkOrientation o, int for_size, int *min, int *nat,
                                         int *min_b, int *nat_b)
{
    CraftHeatmapWidget *self = CRAFT_HEATMAP_WIDGET(w);
    int rows = self->top_n > 0 && self->top_n < self->n_features ? self->top_n : self->n_features;
    *min = o == GTK_ORIENTATION_HORIZONTAL ? 240 : 120;
    *nat = o == GTK_ORIENTATION_HORIZONTAL ? 480 : MAX(*min, 90 + rows * 24);
}

static void craft_heatmap_widget_finalize(GObject *o)
{
    CraftHeatmapWidget *self = CRAFT_HEATMAP_WIDGET(o);
    g_signal_handlers_disconnect_by_data(adw_style_manager_get_default(), self);
    craft_heatmap_geom_clear(&self->geom);
    g_strfreev(self->features);
    g_strfreev(self->modalities);
    g_free(self->cmis);
    g_free(self->importance);
    G_OBJECT_CLASS(craft_heatmap_widget_parent_class)->finalize(o);
}

static void craft_heatmap_widget_class_init(CraftHeatmapWidgetClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    oc->finalize = craft_heatmap_widget_finalize;
    oc->get_property = craft_heatmap_widget_get_property;
    oc->set_property = craft_heatmap_widget_set_property;
    wc->snapshot = craft_heatmap_widget_snapshot;
    wc->size_allocate = craft_heatmap_widget_size_allocate;
    wc->measure = craft_heatmap_widget_measure;
    props[PROP_TOP_N] = g_param_spec_int("top-n", NULL, NULL, 0, 10000, 15, G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY);
    props[PROP_SELECTED_FEATURE] = g_param_spec_int("selected-feature", NULL, NULL, -1, G_MAXINT, -1,
                                                    G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY);
    g_object_class_install_properties(oc, N_PROPS, props);
    gtk_widget_class_set_css_name(wc, "heatmap");
    gtk_widget_class_set_accessible_role(wc, GTK_ACCESSIBLE_ROLE_IMG);
}

static void craft_heatmap_widget_init(CraftHeatmapWidget *self)
{
    self->top_n = 15;
    self->selected = -1;
    gtk_widget_set_has_tooltip(GTK_WIDGET(self), TRUE);
    g_signal_connect(self, "query-tooltip", G_CALLBACK(on_query_tooltip), NULL);
    GtkGesture *click = gtk_gesture_click_new();
    g_signal_connect(click, "pressed", G_CALLBACK(on_click), self);
    gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(click));
    g_signal_connect(adw_style_manager_get_default(), "notify::dark", G_CALLBACK(on_style_changed), self);
}

GtkWidget *craft_heatmap_widget_new(void) { return g_object_new(CRAFT_TYPE_HEATMAP_WIDGET, NULL); }
