/* heatmap.h: the CMIS heatmap (backbone features x auxiliary modalities) as
 * plain geometry plus one Cairo drawing, shared by the app's widget, PNG/PDF
 * exports and the headless tests. Geometry needs no display and may be computed
 * on a worker thread; rendering only reads it. */
#ifndef CRAFT_HEATMAP_H
#define CRAFT_HEATMAP_H

#include <cairo.h>

#include "palette.h"

typedef struct {
    int n_features;                 /* backbone tokens */
    const char *const *features;    /* [n_features] names */
    int n_modalities;               /* auxiliary columns */
    const char *const *modalities;  /* [n_modalities] names */
    const float *cmis;              /* [n_modalities][n_features]; NaN: modality not used */
    const float *importance;        /* [n_features] alpha with every available modality, or NULL */
} craft_heatmap_data;

typedef struct {
    int n_rows, n_cols;
    int *rows;                      /* feature index of each drawn row, |CMIS| descending */
    double vmax;                    /* colour scale: +-vmax (largest |CMIS| drawn, > 0) */
    double width, height;
    double grid_x, grid_y, cell_w, cell_h;
    double legend_x, legend_y, legend_w, legend_h;
} craft_heatmap_geom;

/* Picks the top_n features by their largest |CMIS| over the modalities (ties: lower
 * index first; all-NaN rows last) and lays them out in width x height.
 * Returns 0, or -1 when memory runs out (g is then empty). */
int craft_heatmap_layout(craft_heatmap_geom *g, const craft_heatmap_data *d, int top_n,
                         double width, double height, const craft_view_style *st);
void craft_heatmap_geom_clear(craft_heatmap_geom *g);

/* Which cell is under (x, y): returns 1 and sets row and col, or 0. */
int craft_heatmap_hit(const craft_heatmap_geom *g, double x, double y, int *row, int *col);
/* Centre of a cell, for tests and tooltips. */
void craft_heatmap_cell_centre(const craft_heatmap_geom *g, int row, int col, double *x, double *y);

typedef struct {
    int feature;
    double cmis;
    double alpha_with;     /* importance with every available modality */
    double alpha_without;  /* importance with this modality's gate left out: alpha - CMIS */
} craft_heatmap_cell;

int craft_heatmap_cell_info(const craft_heatmap_geom *g, const craft_heatmap_data *d, int row, int col,
                            craft_heatmap_cell *out);

/* Feature rankings shown beside the heatmap. Each writes up to max feature indices
 * to out and returns how many:
 * - synergistic: largest positive CMIS over the modalities, descending;
 * - suppressed: most negative CMIS, ascending;
 * - self-sufficient: importance above the uniform share 1/F while every |CMIS| stays
 *   under a quarter of that importance, by importance descending. */
int craft_cmis_synergistic(const craft_heatmap_data *d, int *out, int max);
int craft_cmis_suppressed(const craft_heatmap_data *d, int *out, int max);
int craft_cmis_self_sufficient(const craft_heatmap_data *d, int *out, int max);

/* Draws the heatmap at the origin of cr. selected_feature (or -1) is outlined. */
void craft_heatmap_render(cairo_t *cr, const craft_heatmap_geom *g, const craft_heatmap_data *d,
                          int selected_feature, const craft_view_style *st);

#endif
