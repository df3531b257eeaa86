/* craft-heatmap-widget.h: the CMIS heatmap as a widget (drawing in app/views/heatmap.c). */
#ifndef CRAFT_HEATMAP_WIDGET_H
#define CRAFT_HEATMAP_WIDGET_H

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define CRAFT_TYPE_HEATMAP_WIDGET (craft_heatmap_widget_get_type())
G_DECLARE_FINAL_TYPE(CraftHeatmapWidget, craft_heatmap_widget, CRAFT, HEATMAP_WIDGET, GtkWidget)

GtkWidget *craft_heatmap_widget_new(void);
/* Copies the data: cmis is [n_modalities][n_features] (NaN: modality not used),
 * importance [n_features] (may be NULL). n_features 0 clears the heatmap. */
void craft_heatmap_widget_set_data(CraftHeatmapWidget *self, int n_features, const char *const *features,
                                   int n_modalities, const char *const *modalities, const float *cmis,
                                   const float *importance);
void craft_heatmap_widget_set_top_n(CraftHeatmapWidget *self, int top_n);
int craft_heatmap_widget_get_top_n(CraftHeatmapWidget *self);
void craft_heatmap_widget_set_selected_feature(CraftHeatmapWidget *self, int feature);
int craft_heatmap_widget_get_selected_feature(CraftHeatmapWidget *self);
/* The tooltip text for a point of the widget (NULL outside the cells); caller frees. */
char *craft_heatmap_widget_describe_at(CraftHeatmapWidget *self, double x, double y);

G_END_DECLS

#endif
