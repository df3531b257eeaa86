/* craft-window.h: the main window (DESIGN.md): queue, order view, decisions. */
#ifndef CRAFT_WINDOW_H
#define CRAFT_WINDOW_H

#include <adwaita.h>

#include "craft-queue-model.h"

G_BEGIN_DECLS

#define CRAFT_TYPE_WINDOW (craft_window_get_type())
G_DECLARE_FINAL_TYPE(CraftWindow, craft_window, CRAFT, WINDOW, AdwApplicationWindow)

CraftWindow *craft_window_new(GtkApplication *app);
gboolean craft_window_open_store(CraftWindow *self, const char *path, GError **error);
/* What the display tests read back: the queue, the selected order, the scores shown. */
CraftQueueModel *craft_window_get_queue(CraftWindow *self);
const char *craft_window_get_order_id(CraftWindow *self);
/* Full-model and current-subset score of class k of the selected order (NaN when none). */
double craft_window_get_full_score(CraftWindow *self, int k);
double craft_window_get_subset_score(CraftWindow *self, int k);
const char *craft_window_get_subset_text(CraftWindow *self);
/* The explanation view's interaction score of the selected order (computed by a worker):
 * TRUE once it is shown (or failed) for the current selection; its state ("none",
 * "waiting", "computing", "done", "failed"); the order and class it shows (NULL, -1
 * before); I of (modality index, tabular feature index) for that class (NaN when none);
 * the rows its widgets show ("feature\tvalue", a modality's heading alone), to free;
 * the part as plain text (title, state line, rows); worker runs finished and
 * superseded ones skipped. */
gboolean craft_window_interaction_ready(CraftWindow *self);
const char *craft_window_get_interaction_state(CraftWindow *self);
const char *craft_window_get_interaction_order(CraftWindow *self);
int craft_window_get_interaction_class(CraftWindow *self);
double craft_window_get_interaction(CraftWindow *self, int modality, int feature);
char *craft_window_get_interaction_table(CraftWindow *self);
const char *craft_window_get_interaction_text(CraftWindow *self);
guint craft_window_get_interaction_runs(CraftWindow *self, guint *skipped);
/* Sets the queue's class filter to class k (-1: any class), as its drop-down does. */
gboolean craft_window_set_class_filter(CraftWindow *self, int k);
/* TRUE once the selected order's engine inputs are loaded (toggles re-score at once). */
gboolean craft_window_rescore_ready(CraftWindow *self);
/* Exports (win.export-case, win.export-selection) finished so far: saved, and failed or cancelled. */
guint craft_window_get_exports_done(CraftWindow *self);
guint craft_window_get_exports_failed(CraftWindow *self);
/* The last export's toast ("Report saved: ...", or what went wrong and what to do); NULL before one. */
const char *craft_window_get_export_message(CraftWindow *self);
/* Decisions (win.decide-*) stored so far, and those the store refused. */
guint craft_window_get_decisions_done(CraftWindow *self);
guint craft_window_get_decisions_failed(CraftWindow *self);
/* Switches auxiliary number i (0-based among the auxiliaries) on or off, as its switch does. */
gboolean craft_window_set_modality(CraftWindow *self, int aux, gboolean on);
/* Drags a selection rectangle over the score space (widget pixels) as the user
 * would; FALSE while its points are still loading. */
gboolean craft_window_select_space_rect(CraftWindow *self, double ax, double ay, double bx, double by);
/* TRUE while a long job (import, score, train, and the scoring a training starts) runs. */
gboolean craft_window_job_running(CraftWindow *self);
/* The last finished job's outcome: its toast, what went wrong, or that it was cancelled; NULL before one.
 * While a job runs the window emits "job-progress" (double fraction, const char *text) at each step
 * (a training epoch), on the main thread. */
const char *craft_window_get_job_message(CraftWindow *self);
/* The order view's title as shown ("Order X · status", or "Order X · loading…" while it is read). */
const char *craft_window_get_order_title(CraftWindow *self);
/* How many of the order view's tabs show as selected (checked), and the view name of one. */
guint craft_window_get_selected_tabs(CraftWindow *self, const char **view);
/* TRUE when the queue shows the newest read asked for (a filter change, a decision,
 * opening a store and a score-space selection read the queue in a worker first). */
gboolean craft_window_queue_current(CraftWindow *self);
/* The queue's list widget (tests scroll it). */
GtkWidget *craft_window_get_queue_view(CraftWindow *self);
/* Renders the window into a PNG file (what the user sees) at its next painted frame,
 * running the main loop until then (a window with a layout pending draws nothing). */
gboolean craft_window_screenshot(CraftWindow *self, const char *path, GError **error);
void craft_window_toast(CraftWindow *self, const char *text);
/* At application shutdown: running interaction workers stop after their current engine
 * run (waited for, a few ms) and queued ones do nothing. */
void craft_window_stop_workers(void);

G_END_DECLS

#endif
