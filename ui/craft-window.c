/* craft-window.c: the main window. Everything it shows comes from store calls
 * (app/store) and the pure views (app/views); long work runs in GTask workers that
 * open their own store connection and report progress through atomics polled here. */
#include "craft-window.h"

#include <math.h>
#include <string.h>

#include "bars.h"
#include "craft-heatmap-widget.h"
#include "craft-plot-style.h"
#include "craft-queue-item.h"
#include "craft-scatter-widget.h"
#include "craftdesk-resources.h"
#include "heatmap.h"
#include "timeline.h"

struct _CraftWindow {
    AdwApplicationWindow parent_instance;
    /* template children */
    AdwToastOverlay *toasts;
    AdwWindowTitle *title;
    GtkLabel *device_label, *progress_label, *counts_label, *order_title, *subset_label, *rank_label;
    GtkLabel *features_label, *entities_label, *history_label;
    GtkToggleButton *search_button;
    GtkSearchEntry *search_entry;
    GtkRevealer *progress_revealer;
    GtkProgressBar *progress_bar;
    GtkStack *main_stack, *detail_stack;
    GtkDropDown *status_filter, *class_filter, *sort_choice;
    GtkAdjustment *threshold_adj;
    GtkColumnView *queue_view;
    GtkDrawingArea *bars_area, *journey_area;
    GtkBox *toggles_box;
    GtkEntry *note_entry;
    CraftHeatmapWidget *heatmap;
    CraftScatterWidget *scatter;

    craft_store *store;                 /* main-thread connection */
    char *store_path;
    CraftQueueModel *queue;
    GtkSingleSelection *selection;
    craft_model *model;                 /* latest scored model (config for names, bins) */
    int64_t model_id;
    craft_order_detail detail;
    gboolean has_detail;
    uint32_t off_mask;
    GPtrArray *switches;                /* GtkSwitch per auxiliary, NULL for the backbone */
    float subset[CRAFT_STORE_MAX_CLASSES];
    gboolean has_subset;
    char *subset_text;
    craft_journey_event journey[CRAFT_TIMELINE_MAX];
    int n_journey;
    /* the running job */
    GCancellable *job_cancel;
    volatile int job_cancel_flag;
    volatile gint job_done_milli;       /* progress 0..1000, written by the worker */
    guint job_timer;
    char *job_name;
};

G_DEFINE_FINAL_TYPE(CraftWindow, craft_window, ADW_TYPE_APPLICATION_WINDOW)

static const char *actor_name(void)
{
    return g_get_user_name();
}

void craft_window_toast(CraftWindow *self, const char *text)
{
    adw_toast_overlay_add_toast(self->toasts, adw_toast_new(text));
}

static void show_error(CraftWindow *self, const char *what, const char *msg)
{
    char *t = g_strdup_printf("%s: %s", what, msg);
    AdwToast *toast = adw_toast_new(t);
    adw_toast_set_timeout(toast, 0); /* errors stay until dismissed */
    adw_toast_overlay_add_toast(self->toasts, toast);
    g_free(t);
}

/* ------------------------------------------------------------- order view */

static void draw_bars(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer user)
{
    CraftWindow *self = user;
    if (!self->has_detail || self->detail.n_predictions == 0)
        return;
    craft_view_style st = craft_plot_style_current();
    float thr[CRAFT_STORE_MAX_CLASSES];
    for (int k = 0; k < self->detail.n_classes; k++)
        thr[k] = (float)gtk_adjustment_get_value(self->threshold_adj);
    craft_bars_data d = {self->detail.n_classes, (const char *const *)self->detail.classes,
                         self->detail.predictions[0].scores, self->off_mask && self->has_subset ? self->subset : NULL,
                         thr};
    craft_bars_geom g;
    craft_bars_layout(&g, &d, w, h, &st);
    craft_bars_render(cr, &g, &d, &st);
}

static void draw_journey(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer user)
{
    CraftWindow *self = user;
    craft_view_style st = craft_plot_style_current();
    craft_timeline_geom g;
    craft_timeline_layout(&g, self->journey, self->n_journey, w, h, &st);
    craft_timeline_render(cr, &g, self->journey, -1, &st);
}

/* The stored prediction of the current model with exactly `mask` switched off. */
static const craft_prediction *find_subset(CraftWindow *self, uint32_t mask)
{
    const craft_prediction *full = &self->detail.predictions[0];
    uint32_t want_used = full->used & ~mask;
    for (int i = 0; i < self->detail.n_predictions; i++) {
        const craft_prediction *p = &self->detail.predictions[i];
        if (p->used == want_used)
            return p;
    }
    return NULL;
}

static void update_subset(CraftWindow *self)
{
    g_clear_pointer(&self->subset_text, g_free);
    self->has_subset = FALSE;
    if (!self->has_detail || self->detail.n_predictions == 0) {
        gtk_label_set_text(self->subset_label, "");
        return;
    }
    const craft_prediction *full = &self->detail.predictions[0];
    GString *s = g_string_new(NULL);
    if (self->off_mask) {
        const craft_prediction *p = find_subset(self, self->off_mask);
        if (!p) {
            g_string_append(s, "This subset was not scored: score the store again (subsets are scored with every run).");
        } else {
            self->has_subset = TRUE;
            memcpy(self->subset, p->scores, sizeof self->subset);
            g_string_append_printf(s, "Without %s:", "switched-off modalities");
            for (int k = 0; k < self->detail.n_classes; k++)
                g_string_append_printf(s, "  %s %.3f → %.3f (%+.3f)", self->detail.classes[k], full->scores[k],
                                       p->scores[k], p->scores[k] - full->scores[k]);
        }
    }
    if (self->detail.has_explanation) {
        const craft_explanation *x = &self->detail.explanation;
        g_string_append(s, s->len ? "\nFusion gates:" : "Fusion gates:");
        for (int m = 0; m < x->n_aux; m++) {
            if (isnan(x->fuse_gate[m]))
                g_string_append_printf(s, "  %s missing", x->aux_names[m]);
            else
                g_string_append_printf(s, "  %s %.2f", x->aux_names[m], x->fuse_gate[m]);
        }
    }
    self->subset_text = g_string_free(s, FALSE);
    gtk_label_set_text(self->subset_label, self->subset_text);
    gtk_widget_queue_draw(GTK_WIDGET(self->bars_area));
}

static void on_switch(GObject *sw, GParamSpec *p, CraftWindow *self)
{
    int m = GPOINTER_TO_INT(g_object_get_data(sw, "modality"));
    if (gtk_switch_get_active(GTK_SWITCH(sw)))
        self->off_mask &= ~(1u << m);
    else
        self->off_mask |= 1u << m;
    update_subset(self);
}

static void build_toggles(CraftWindow *self)
{
    GtkWidget *child;
    while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->toggles_box))))
        gtk_box_remove(self->toggles_box, child);
    g_ptr_array_set_size(self->switches, 0);
    self->off_mask = 0;
    if (!self->model || !self->has_detail || self->detail.n_predictions == 0)
        return;
    const craft_config *cfg = &self->model->cfg;
    uint32_t used = self->detail.predictions[0].used;
    gtk_box_append(self->toggles_box, gtk_label_new("Modalities"));
    for (int m = 0; m < cfg->n_modalities; m++) {
        if (m == cfg->backbone) {
            char *t = g_strdup_printf("(%s: backbone)", cfg->modalities[m].name);
            GtkWidget *l = gtk_label_new(t);
            gtk_widget_add_css_class(l, "dim-label");
            gtk_box_append(self->toggles_box, l);
            g_free(t);
            g_ptr_array_add(self->switches, NULL);
            continue;
        }
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
        GtkWidget *sw = gtk_switch_new();
        gtk_widget_set_valign(sw, GTK_ALIGN_CENTER);
        gboolean present = (used >> m) & 1;
        gtk_switch_set_active(GTK_SWITCH(sw), present);
        gtk_widget_set_sensitive(sw, present);
        g_object_set_data(G_OBJECT(sw), "modality", GINT_TO_POINTER(m));
        g_signal_connect(sw, "notify::active", G_CALLBACK(on_switch), self);
        char *t = present ? g_strdup(cfg->modalities[m].name) : g_strdup_printf("%s: missing", cfg->modalities[m].name);
        GtkWidget *l = gtk_label_new(t);
        g_free(t);
        if (!present)
            gtk_widget_add_css_class(l, "modality-missing");
        gtk_accessible_update_property(GTK_ACCESSIBLE(sw), GTK_ACCESSIBLE_PROPERTY_LABEL, cfg->modalities[m].name, -1);
        gtk_box_append(GTK_BOX(box), sw);
        gtk_box_append(GTK_BOX(box), l);
        gtk_box_append(self->toggles_box, box);
        g_ptr_array_add(self->switches, sw);
    }
}

static void fill_heatmap(CraftWindow *self)
{
    const craft_explanation *x = &self->detail.explanation;
    if (!self->detail.has_explanation) {
        craft_heatmap_widget_set_data(self->heatmap, 0, NULL, 0, NULL, NULL, NULL);
        gtk_label_set_text(self->rank_label, "No explanation stored for this order.");
        return;
    }
    char **tok = g_new0(char *, x->n_tokens + 1), **aux = g_new0(char *, x->n_aux + 1);
    for (int j = 0; j < x->n_tokens; j++) tok[j] = x->token_names[j];
    for (int m = 0; m < x->n_aux; m++) aux[m] = x->aux_names[m];
    craft_heatmap_widget_set_data(self->heatmap, x->n_tokens, (const char *const *)tok, x->n_aux,
                                  (const char *const *)aux, x->cmis, x->importance);
    craft_heatmap_data d = {x->n_tokens, (const char *const *)tok, x->n_aux, (const char *const *)aux, x->cmis,
                            x->importance};
    int idx[5];
    GString *s = g_string_new("Top synergistic\n");
    int n = craft_cmis_synergistic(&d, idx, 5);
    for (int i = 0; i < n; i++) g_string_append_printf(s, "  %s\n", tok[idx[i]]);
    g_string_append(s, "\nTop suppressed\n");
    n = craft_cmis_suppressed(&d, idx, 5);
    for (int i = 0; i < n; i++) g_string_append_printf(s, "  %s\n", tok[idx[i]]);
    g_string_append(s, "\nSelf-sufficient\n");
    n = craft_cmis_self_sufficient(&d, idx, 5);
    for (int i = 0; i < n; i++) g_string_append_printf(s, "  %s (%.3f)\n", tok[idx[i]], x->importance[idx[i]]);
    gtk_label_set_text(self->rank_label, s->str);
    g_string_free(s, TRUE);
    g_free(tok);
    g_free(aux);
}

static void fill_features(CraftWindow *self)
{
    const craft_order_detail *d = &self->detail;
    GString *s = g_string_new("<tt>");
    g_string_append_printf(s, "<b>%-28s %12s %5s %10s</b>\n", "feature", "value", "bin", "importance");
    int tab = self->model ? self->model->cfg.tabular : -1;
    for (int j = 0; j < d->n_features; j++) {
        char value[64], bin[16] = "", imp[32] = "";
        if (d->categories && d->categories[j]) g_snprintf(value, sizeof value, "%.12s", d->categories[j]);
        else if (!isnan(d->values[j])) g_snprintf(value, sizeof value, "%.6g", d->values[j]);
        else g_snprintf(value, sizeof value, "missing");
        if (tab >= 0) {
            const craft_modality *mod = &self->model->cfg.modalities[tab];
            for (int f = 0; f < mod->n_features; f++) {
                if (strcmp(mod->features[f].name, d->feature_names[j])) continue;
                int b = 0;
                float rr = 0;
                int nb = self->model->cfg.bins;
                if (mod->features[f].type == CRAFT_CATEGORICAL)
                    b = d->categories && d->categories[j]
                            ? craft_category_code(&self->model->cfg, &mod->features[f], d->categories[j]) : 0;
                else if (!isnan(d->values[j]))
                    craft_bin_numeric(self->model->w.embed[tab].edges + (size_t)f * (nb + 1), nb, d->values[j], &b, &rr);
                g_snprintf(bin, sizeof bin, "%d", b);
            }
        }
        if (d->has_explanation)
            for (int t = 0; t < d->explanation.n_tokens; t++)
                if (!strcmp(d->explanation.token_names[t], d->feature_names[j]))
                    g_snprintf(imp, sizeof imp, "%.4f", d->explanation.importance[t]);
        char *name = g_markup_escape_text(d->feature_names[j], -1), *val = g_markup_escape_text(value, -1);
        g_string_append_printf(s, "%-28.28s %12s %5s %10s\n", name, val, bin, imp);
        g_free(name);
        g_free(val);
    }
    g_string_append(s, "</tt>");
    gtk_label_set_markup(self->features_label, s->str);
    g_string_free(s, TRUE);
}

static void fill_entities(CraftWindow *self)
{
    GString *s = g_string_new(NULL);
    for (int i = 0; i < self->detail.entities.n; i++) {
        craft_entity_history h = {0};
        craft_error err = {0};
        const char *type = self->detail.entities.keys[i], *id = self->detail.entities.values[i];
        g_string_append_printf(s, "%s %s\n", type, id);
        if (craft_store_entity_history(self->store, type, id, 5, &h, &err) == CRAFT_OK) {
            g_string_append_printf(s, "  %" G_GINT64_FORMAT " orders (%s … %s), %" G_GINT64_FORMAT " cases, %"
                                   G_GINT64_FORMAT " confirmed, %" G_GINT64_FORMAT " false positives\n",
                                   h.n_orders, h.first_ts ? h.first_ts : "?", h.last_ts ? h.last_ts : "?", h.n_cases,
                                   h.n_confirmed, h.n_false_positive);
            for (int k = 0; k < h.n_classes; k++)
                if (h.n_labelled[k] > 0)
                    g_string_append_printf(s, "  %s defect rate %.1f%% of %" G_GINT64_FORMAT " labelled\n", h.classes[k],
                                           100.0 * h.n_positive[k] / h.n_labelled[k], h.n_labelled[k]);
            craft_entity_history_free(&h);
        } else {
            g_string_append_printf(s, "  history unavailable: %s\n", err.msg);
        }
    }
    gtk_label_set_text(self->entities_label, s->len ? s->str : "No entities recorded for this order.");
    g_string_free(s, TRUE);
}

static void fill_history(CraftWindow *self)
{
    GString *s = g_string_new(NULL);
    if (!self->detail.has_case) {
        g_string_append(s, "This order has no case (it was not flagged).");
    } else {
        craft_audit_entry *a = NULL;
        int n = 0;
        craft_error err = {0};
        if (craft_store_case_audit(self->store, self->detail.kase.id, &a, &n, &err) == CRAFT_OK) {
            for (int i = 0; i < n; i++) {
                GDateTime *t = g_date_time_new_from_unix_local((gint64)a[i].at);
                char *when = g_date_time_format(t, "%Y-%m-%d %H:%M:%S");
                g_string_append_printf(s, "%s  %s  %s: %s → %s\n", when, a[i].actor, a[i].action,
                                       a[i].before ? a[i].before : "–", a[i].after ? a[i].after : "–");
                g_free(when);
                g_date_time_unref(t);
            }
            craft_audit_free(a, n);
        }
        craft_note *notes = NULL;
        if (craft_store_case_notes(self->store, self->detail.kase.id, &notes, &n, &err) == CRAFT_OK) {
            if (n) g_string_append(s, "\nNotes\n");
            for (int i = 0; i < n; i++)
                g_string_append_printf(s, "  %s: %s\n", notes[i].author, notes[i].text);
            craft_notes_free(notes, n);
        }
    }
    gtk_label_set_text(self->history_label, s->str);
    g_string_free(s, TRUE);
}

static void show_order(CraftWindow *self, const char *order_id)
{
    if (self->has_detail)
        craft_order_detail_free(&self->detail);
    self->has_detail = FALSE;
    self->n_journey = 0;
    craft_error err = {0};
    if (order_id && craft_store_order_get(self->store, order_id, self->model_id, &self->detail, &err) == CRAFT_OK)
        self->has_detail = TRUE;
    else if (order_id)
        show_error(self, order_id, err.msg);
    if (!self->has_detail) {
        gtk_label_set_text(self->order_title, "No order selected");
        build_toggles(self);
        update_subset(self);
        return;
    }
    char *t = self->detail.has_case
                  ? g_strdup_printf("Order %s · %s", order_id, craft_case_status_label(self->detail.kase.status))
                  : g_strdup_printf("Order %s", order_id);
    gtk_label_set_text(self->order_title, t);
    g_free(t);
    self->n_journey = craft_journey_parse(craft_kv_get(&self->detail.text, "journey"), self->journey, CRAFT_TIMELINE_MAX);
    build_toggles(self);
    update_subset(self);
    fill_heatmap(self);
    fill_features(self);
    fill_entities(self);
    fill_history(self);
    gtk_widget_queue_draw(GTK_WIDGET(self->journey_area));
    if (self->detail.n_predictions > 0) {
        const craft_prediction *bb = find_subset(self, ~(1u << (self->model ? self->model->cfg.backbone : 0)));
        int k = self->detail.has_case ? self->detail.kase.top_class : 0;
        if (bb && k >= 0)
            craft_scatter_widget_set_highlight(self->scatter, TRUE, bb->scores[k], self->detail.predictions[0].scores[k]);
    }
}

static void on_selection(GtkSingleSelection *sel, GParamSpec *p, CraftWindow *self)
{
    CraftQueueItem *item = gtk_single_selection_get_selected_item(sel);
    show_order(self, item ? craft_queue_item_get_order_id(item) : NULL);
}

/* ------------------------------------------------------------------ queue */

static void update_counts(CraftWindow *self)
{
    const craft_queue_counts *c = craft_queue_model_get_counts(self->queue);
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "%'" G_GINT64_FORMAT " orders · %'" G_GINT64_FORMAT " flagged", c->total,
                           c->total - c->no_case);
    for (int st = 0; st < CRAFT_CASE_N_STATUS; st++)
        if (c->status[st])
            g_string_append_printf(s, " · %s %'" G_GINT64_FORMAT, craft_case_status_label(st), c->status[st]);
    gtk_label_set_text(self->counts_label, s->str);
    g_string_free(s, TRUE);
}

static void refresh_queue(CraftWindow *self)
{
    if (!self->store)
        return;
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.model_id = self->model_id;
    guint st = gtk_drop_down_get_selected(self->status_filter);
    q.cases_only = st != 0;                        /* 0: every order, 1: every case, 2..: one status */
    q.status_mask = st >= 2 ? 1u << (st - 2) : 0;
    guint cls = gtk_drop_down_get_selected(self->class_filter);
    q.cls = cls == 0 || cls == GTK_INVALID_LIST_POSITION ? -1 : (int)cls - 1;
    q.min_score = (float)gtk_adjustment_get_value(self->threshold_adj);
    static const int sorts[] = {CRAFT_SORT_TOP_SCORE, CRAFT_SORT_CLASS_SCORE, CRAFT_SORT_TIME, CRAFT_SORT_STATUS,
                                CRAFT_SORT_ORDER_ID};
    guint so = gtk_drop_down_get_selected(self->sort_choice);
    q.sort = sorts[so < G_N_ELEMENTS(sorts) ? so : 0];
    q.sort_class = q.cls >= 0 ? q.cls : 0;
    const char *search = gtk_editable_get_text(GTK_EDITABLE(self->search_entry));
    q.search = search && *search ? search : NULL;
    GError *error = NULL;
    if (!craft_queue_model_set_query(self->queue, self->store, &q, &error)) {
        show_error(self, "Case queue", error->message);
        g_error_free(error);
    }
    update_counts(self);
}

static void on_filter_changed(gpointer w, GParamSpec *p, CraftWindow *self) { refresh_queue(self); }
static void on_search_changed(GtkSearchEntry *e, CraftWindow *self) { refresh_queue(self); }

static void bind_column(GtkSignalListItemFactory *f, GtkListItem *li, gpointer column)
{
    CraftQueueItem *item = gtk_list_item_get_item(li);
    GtkLabel *label = GTK_LABEL(gtk_list_item_get_child(li));
    char buf[64];
    switch (GPOINTER_TO_INT(column)) {
    case 0: gtk_label_set_text(label, craft_queue_item_get_order_id(item)); break;
    case 1: gtk_label_set_text(label, craft_queue_item_get_top_class(item)); break;
    case 2:
        g_snprintf(buf, sizeof buf, "%.3f", craft_queue_item_get_top_score(item));
        gtk_label_set_text(label, isnan(craft_queue_item_get_top_score(item)) ? "–" : buf);
        break;
    default: {
        int s = craft_queue_item_get_status(item);
        gtk_label_set_text(label, s >= 0 ? craft_case_status_label(s) : "");
    }
    }
}

static void setup_column(GtkSignalListItemFactory *f, GtkListItem *li, gpointer column)
{
    GtkWidget *l = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(l), GPOINTER_TO_INT(column) == 2 ? 1 : 0);
    gtk_list_item_set_child(li, l);
}

static void setup_queue_view(CraftWindow *self)
{
    static const char *titles[] = {"Order", "Top class", "Score", "Status"};
    for (int c = 0; c < 4; c++) {
        GtkListItemFactory *f = gtk_signal_list_item_factory_new();
        g_signal_connect(f, "setup", G_CALLBACK(setup_column), GINT_TO_POINTER(c));
        g_signal_connect(f, "bind", G_CALLBACK(bind_column), GINT_TO_POINTER(c));
        GtkColumnViewColumn *col = gtk_column_view_column_new(titles[c], f);
        gtk_column_view_column_set_expand(col, c == 0);
        gtk_column_view_append_column(self->queue_view, col);
        g_object_unref(col);
    }
    self->queue = craft_queue_model_new();
    self->selection = gtk_single_selection_new(G_LIST_MODEL(g_object_ref(self->queue)));
    gtk_single_selection_set_autoselect(self->selection, TRUE);
    g_signal_connect(self->selection, "notify::selected-item", G_CALLBACK(on_selection), self);
    gtk_column_view_set_model(self->queue_view, GTK_SELECTION_MODEL(self->selection));
    const char *statuses[CRAFT_CASE_N_STATUS + 3] = {"All orders", "All cases"};
    for (int s = 0; s < CRAFT_CASE_N_STATUS; s++) statuses[s + 2] = craft_case_status_label(s);
    gtk_drop_down_set_model(self->status_filter, G_LIST_MODEL(gtk_string_list_new(statuses)));
    gtk_drop_down_set_selected(self->status_filter, 1);
    const char *sorts[] = {"Top score", "Class score", "Time", "Status", "Order id", NULL};
    gtk_drop_down_set_model(self->sort_choice, G_LIST_MODEL(gtk_string_list_new(sorts)));
}

static void set_classes(CraftWindow *self)
{
    GtkStringList *l = gtk_string_list_new((const char *[]){"Any class", NULL});
    char **classes = craft_queue_model_get_classes(self->queue);
    for (int k = 0; classes && classes[k]; k++) gtk_string_list_append(l, classes[k]);
    gtk_drop_down_set_model(self->class_filter, G_LIST_MODEL(l));
    g_object_unref(l);
}

/* ------------------------------------------------------------ score space */

typedef struct { char *path; int64_t model_id; size_t n; float *x, *y; uint8_t *cat; int64_t *ids; } SpaceJob;

static void space_job_free(SpaceJob *j)
{
    g_free(j->path); g_free(j->x); g_free(j->y); g_free(j->cat); g_free(j->ids); g_free(j);
}

#define SPACE_MAX 100000

/* Worker: its own store connection; x = backbone-only score, y = full score of each
 * order's top class, category = case status (or "no case"). */
static void space_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    SpaceJob *j = data;
    craft_store *s = NULL;
    craft_error err = {0};
    if (craft_store_open(&s, j->path, CRAFT_STORE_READONLY, &err)) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.model_id = j->model_id;
    q.cases_only = 0;
    q.limit = 1000;
    j->x = g_new(float, SPACE_MAX); j->y = g_new(float, SPACE_MAX);
    j->cat = g_new(uint8_t, SPACE_MAX); j->ids = g_new(int64_t, SPACE_MAX);
    for (q.offset = 0; j->n < SPACE_MAX && !g_cancellable_is_cancelled(cancel); q.offset += q.limit) {
        craft_queue_page p = {0};
        if (craft_store_queue(s, &q, &p, &err) || p.n == 0) { craft_queue_page_free(&p); break; }
        for (int i = 0; i < p.n && j->n < SPACE_MAX; i++) {
            craft_order_detail d = {0};
            if (p.rows[i].top_class < 0 || craft_store_order_get(s, p.rows[i].order_id, j->model_id, &d, &err))
                continue;
            for (int k = 1; k < d.n_predictions; k++)
                if (__builtin_popcount(d.predictions[k].used) == 1) { /* the backbone alone */
                    j->x[j->n] = d.predictions[k].scores[p.rows[i].top_class];
                    j->y[j->n] = p.rows[i].top_score;
                    j->cat[j->n] = p.rows[i].status < 0 ? 7 : (uint8_t)p.rows[i].status;
                    j->ids[j->n] = p.rows[i].order;
                    j->n++;
                    break;
                }
            craft_order_detail_free(&d);
        }
        craft_queue_page_free(&p);
    }
    craft_store_close(s);
    g_task_return_boolean(task, TRUE);
}

static void space_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    GError *error = NULL;
    if (!g_task_propagate_boolean(G_TASK(res), &error)) {
        show_error(self, "Score space", error->message);
        g_error_free(error);
        return;
    }
    SpaceJob *j = g_task_get_task_data(G_TASK(res));
    craft_scatter_widget_take_points(self->scatter, j->n, j->x, j->y, j->cat, j->ids);
    j->x = j->y = NULL; j->cat = NULL; j->ids = NULL;
}

static void load_score_space(CraftWindow *self)
{
    SpaceJob *j = g_new0(SpaceJob, 1);
    j->path = g_strdup(self->store_path);
    j->model_id = self->model_id;
    GTask *t = g_task_new(self, NULL, space_done, NULL);
    g_task_set_task_data(t, j, (GDestroyNotify)space_job_free);
    g_task_run_in_thread(t, space_thread);
    g_object_unref(t);
}

/* ------------------------------------------------------------- open store */

gboolean craft_window_open_store(CraftWindow *self, const char *path, GError **error)
{
    craft_store *s = NULL;
    craft_error err = {0};
    if (craft_store_open(&s, path, CRAFT_STORE_READWRITE, &err) != CRAFT_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return FALSE;
    }
    craft_queue_model_set_query(self->queue, NULL, NULL, NULL);
    if (self->has_detail) craft_order_detail_free(&self->detail);
    self->has_detail = FALSE;
    if (self->store) craft_store_close(self->store);
    if (self->model) craft_model_free(self->model);
    self->model = NULL;
    self->store = s;
    g_free(self->store_path);
    self->store_path = g_strdup(path);
    self->model_id = craft_store_latest_model(s);
    if (self->model_id && craft_store_model_load(s, self->model_id, &self->model, &err) != CRAFT_OK)
        show_error(self, "Model", err.msg);
    char *base = g_path_get_basename(path);
    adw_window_title_set_title(self->title, base);
    adw_window_title_set_subtitle(self->title, self->model ? self->model->sha256 : "not scored yet");
    g_free(base);
    gtk_stack_set_visible_child_name(self->main_stack, "store");
    refresh_queue(self);
    set_classes(self);
    if (self->model_id)
        load_score_space(self);
    return TRUE;
}

/* -------------------------------------------------------------- decisions */

static void decide(CraftWindow *self, int status)
{
    if (!self->has_detail || !self->detail.has_case) {
        craft_window_toast(self, "This order has no case to decide");
        return;
    }
    const char *note = gtk_editable_get_text(GTK_EDITABLE(self->note_entry));
    craft_error err = {0};
    guint pos = gtk_single_selection_get_selected(self->selection);
    if (craft_store_case_decide(self->store, self->detail.kase.id, status, NULL, actor_name(),
                                note && *note ? note : NULL, &err) != CRAFT_OK) {
        show_error(self, "Decision not saved", err.msg);
        return;
    }
    char *t = g_strdup_printf("%s: %s", self->detail.order_id, craft_case_status_label(status));
    craft_window_toast(self, t);
    g_free(t);
    gtk_editable_set_text(GTK_EDITABLE(self->note_entry), "");
    refresh_queue(self);
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->queue));
    if (n > 0)
        gtk_single_selection_set_selected(self->selection, MIN(pos, n - 1));
    on_selection(self->selection, NULL, self);
}

static void act_decide(GSimpleAction *a, GVariant *p, gpointer user)
{
    const char *name = g_action_get_name(G_ACTION(a));
    int status = !strcmp(name, "decide-confirm") ? CRAFT_CASE_CONFIRMED
               : !strcmp(name, "decide-false-positive") ? CRAFT_CASE_FALSE_POSITIVE
               : !strcmp(name, "decide-escalate") ? CRAFT_CASE_ESCALATED : CRAFT_CASE_NEEDS_INFO;
    decide(CRAFT_WINDOW(user), status);
}

static void move_case(CraftWindow *self, int delta)
{
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->queue));
    guint pos = gtk_single_selection_get_selected(self->selection);
    if (n == 0) return;
    if (pos == GTK_INVALID_LIST_POSITION) pos = 0;
    else if (delta > 0 && pos + 1 < n) pos++;
    else if (delta < 0 && pos > 0) pos--;
    gtk_single_selection_set_selected(self->selection, pos);
    gtk_widget_activate_action(GTK_WIDGET(self->queue_view), "list.scroll-to-item", "u", pos);
}

static void act_next(GSimpleAction *a, GVariant *p, gpointer user) { move_case(user, 1); }
static void act_prev(GSimpleAction *a, GVariant *p, gpointer user) { move_case(user, -1); }

static void act_toggle_modality(GSimpleAction *a, GVariant *p, gpointer user)
{
    CraftWindow *self = user;
    int aux = g_variant_get_int32(p), seen = 0;
    for (guint i = 0; i < self->switches->len; i++) {
        GtkSwitch *sw = g_ptr_array_index(self->switches, i);
        if (!sw) continue;
        if (seen++ == aux && gtk_widget_get_sensitive(GTK_WIDGET(sw)))
            gtk_switch_set_active(sw, !gtk_switch_get_active(sw));
    }
}

static void act_search(GSimpleAction *a, GVariant *p, gpointer user)
{
    CraftWindow *self = user;
    gtk_toggle_button_set_active(self->search_button, TRUE);
    gtk_widget_grab_focus(GTK_WIDGET(self->search_entry));
}

static void act_space(GSimpleAction *a, GVariant *p, gpointer user)
{
    gtk_stack_set_visible_child_name(CRAFT_WINDOW(user)->detail_stack, "space");
}

static void on_scatter_selection(CraftScatterWidget *w, guint64 n, CraftWindow *self)
{
    char *t = g_strdup_printf("%" G_GUINT64_FORMAT " orders selected in the score space", n);
    craft_window_toast(self, t);
    g_free(t);
}

/* ------------------------------------------------------------- long jobs */

static gboolean job_tick(gpointer user)
{
    CraftWindow *self = user;
    gtk_progress_bar_set_fraction(self->progress_bar, g_atomic_int_get(&self->job_done_milli) / 1000.0);
    return G_SOURCE_CONTINUE;
}

static void job_begin(CraftWindow *self, const char *name)
{
    self->job_cancel_flag = 0;
    g_atomic_int_set(&self->job_done_milli, 0);
    g_free(self->job_name);
    self->job_name = g_strdup(name);
    gtk_label_set_text(self->progress_label, name);
    gtk_revealer_set_reveal_child(self->progress_revealer, TRUE);
    self->job_timer = g_timeout_add(100, job_tick, self);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "import")), FALSE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "score")), FALSE);
}

static void job_end(CraftWindow *self)
{
    g_clear_handle_id(&self->job_timer, g_source_remove);
    gtk_revealer_set_reveal_child(self->progress_revealer, FALSE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "import")), TRUE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "score")), TRUE);
}

static void act_cancel(GSimpleAction *a, GVariant *p, gpointer user) { CRAFT_WINDOW(user)->job_cancel_flag = 1; }

typedef struct { CraftWindow *win; char *store, *input; craft_model *model; char *model_path; char *result; } Job;

static void job_free(Job *j)
{
    g_free(j->store); g_free(j->input); g_free(j->model_path); g_free(j->result);
    if (j->model) craft_model_free(j->model);
    g_free(j);
}

static void import_progress(void *user, uint64_t done, uint64_t bytes, uint64_t total, double sec)
{
    Job *j = user;
    if (total) g_atomic_int_set(&j->win->job_done_milli, (gint)(1000.0 * bytes / total));
}

static void import_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    Job *j = data;
    craft_store *s = NULL;
    craft_error err = {0};
    craft_import_stats stats = {0};
    craft_import_options o = {.progress = import_progress, .progress_user = j, .skip_bad = 1,
                              .cancel = &j->win->job_cancel_flag};
    const char *paths[1] = {j->input};
    int rc = craft_store_open(&s, j->store, CRAFT_STORE_READWRITE, &err);
    if (!rc) rc = craft_store_import(s, paths, 1, &o, &stats, &err);
    if (s) craft_store_close(s);
    if (rc) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    j->result = g_strdup_printf("Imported %" G_GUINT64_FORMAT " orders (%" G_GUINT64_FORMAT " rejected) in %.1f s",
                                stats.stored, stats.bad, stats.seconds);
    g_task_return_boolean(task, TRUE);
}

static void score_progress(void *user, uint64_t done, uint64_t bytes, uint64_t total, double sec)
{
    Job *j = user;
    if (total) g_atomic_int_set(&j->win->job_done_milli, (gint)(1000.0 * done / total));
}

static void score_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    Job *j = data;
    craft_store *s = NULL;
    craft_error err = {0};
    craft_store_score_stats stats = {0};
    craft_store_score_options o = {.explain = 1, .subsets = 1, .flag_threshold = 0.5f, .batch = 64,
                                   .progress = score_progress, .progress_user = j, .cancel = &j->win->job_cancel_flag};
    int rc = craft_store_open(&s, j->store, CRAFT_STORE_READWRITE, &err);
    if (!rc && !j->model) rc = craft_model_load(&j->model, j->model_path, &err);
    if (!rc) rc = craft_store_score(s, j->model, j->model_path, &o, &stats, &err);
    if (s) craft_store_close(s);
    if (rc) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    j->result = g_strdup_printf("Scored %" G_GUINT64_FORMAT " orders: %" G_GUINT64_FORMAT " flagged, %"
                                G_GUINT64_FORMAT " new cases (%.1f s)", stats.scored, stats.flagged, stats.new_cases,
                                stats.seconds);
    g_task_return_boolean(task, TRUE);
}

static void job_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    Job *j = g_task_get_task_data(G_TASK(res));
    GError *error = NULL;
    job_end(self);
    if (!g_task_propagate_boolean(G_TASK(res), &error)) {
        show_error(self, self->job_name, error->message);
        g_error_free(error);
    } else {
        craft_window_toast(self, j->result);
    }
    GError *e2 = NULL;
    if (!craft_window_open_store(self, self->store_path, &e2)) {
        show_error(self, "Reopening the store", e2->message);
        g_error_free(e2);
    }
}

static void start_job(CraftWindow *self, const char *name, const char *input, const char *model_path,
                      GTaskThreadFunc fn)
{
    Job *j = g_new0(Job, 1);
    j->win = self;
    j->store = g_strdup(self->store_path);
    j->input = g_strdup(input);
    j->model_path = g_strdup(model_path);
    job_begin(self, name);
    GTask *t = g_task_new(self, NULL, job_done, NULL);
    g_task_set_task_data(t, j, (GDestroyNotify)job_free);
    g_task_run_in_thread(t, fn);
    g_object_unref(t);
}

static void on_import_file(GtkNativeDialog *d, int response, CraftWindow *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
        char *path = g_file_get_path(f);
        start_job(self, "Importing orders", path, NULL, import_thread);
        g_free(path);
        g_object_unref(f);
    }
    g_object_unref(d);
}

static void act_import(GSimpleAction *a, GVariant *p, gpointer user)
{
    CraftWindow *self = user;
    if (!self->store) { craft_window_toast(self, "Open or create a case store first"); return; }
    GtkFileChooserNative *d = gtk_file_chooser_native_new("Import Orders", GTK_WINDOW(self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                                          "_Import", "_Cancel");
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, "Orders (JSON Lines, CSV)");
    gtk_file_filter_add_pattern(f, "*.jsonl");
    gtk_file_filter_add_pattern(f, "*.csv");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d), f);
    g_object_unref(f);
    g_signal_connect(d, "response", G_CALLBACK(on_import_file), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

static void on_model_file(GtkNativeDialog *d, int response, CraftWindow *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
        char *path = g_file_get_path(f);
        start_job(self, "Scoring orders", NULL, path, score_thread);
        g_free(path);
        g_object_unref(f);
    }
    g_object_unref(d);
}

static void act_score(GSimpleAction *a, GVariant *p, gpointer user)
{
    CraftWindow *self = user;
    if (!self->store) { craft_window_toast(self, "Open or create a case store first"); return; }
    const char *env = g_getenv("CRAFT_MODEL");
    if (env && *env) { start_job(self, "Scoring orders", NULL, env, score_thread); return; }
    GtkFileChooserNative *d = gtk_file_chooser_native_new("Choose a Model", GTK_WINDOW(self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                                          "_Score", "_Cancel");
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, "CRAFT models (safetensors)");
    gtk_file_filter_add_pattern(f, "*.safetensors");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d), f);
    g_object_unref(f);
    g_signal_connect(d, "response", G_CALLBACK(on_model_file), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

/* ------------------------------------------------------------ test access */

CraftQueueModel *craft_window_get_queue(CraftWindow *self) { return self->queue; }
const char *craft_window_get_order_id(CraftWindow *self) { return self->has_detail ? self->detail.order_id : NULL; }

double craft_window_get_full_score(CraftWindow *self, int k)
{
    if (!self->has_detail || self->detail.n_predictions == 0 || k < 0 || k >= self->detail.n_classes) return NAN;
    return self->detail.predictions[0].scores[k];
}

double craft_window_get_subset_score(CraftWindow *self, int k)
{
    if (!self->has_subset || k < 0 || k >= self->detail.n_classes) return NAN;
    return self->subset[k];
}

const char *craft_window_get_subset_text(CraftWindow *self) { return self->subset_text; }

gboolean craft_window_set_modality(CraftWindow *self, int aux, gboolean on)
{
    int seen = 0;
    for (guint i = 0; i < self->switches->len; i++) {
        GtkSwitch *sw = g_ptr_array_index(self->switches, i);
        if (!sw) continue;
        if (seen++ == aux) {
            if (!gtk_widget_get_sensitive(GTK_WIDGET(sw))) return FALSE;
            gtk_switch_set_active(sw, on);
            return TRUE;
        }
    }
    return FALSE;
}

gboolean craft_window_screenshot(CraftWindow *self, const char *path, GError **error)
{
    GtkWidget *w = GTK_WIDGET(self);
    GdkPaintable *paintable = gtk_widget_paintable_new(w);
    int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
    GtkSnapshot *snap = gtk_snapshot_new();
    gdk_paintable_snapshot(paintable, snap, width, height);
    GskRenderNode *node = gtk_snapshot_free_to_node(snap);
    gboolean ok = FALSE;
    if (node) {
        GskRenderer *r = gtk_native_get_renderer(GTK_NATIVE(w));
        GdkTexture *tex = gsk_renderer_render_texture(r, node, &GRAPHENE_RECT_INIT(0, 0, width, height));
        ok = gdk_texture_save_to_png(tex, path);
        g_object_unref(tex);
        gsk_render_node_unref(node);
    }
    g_object_unref(paintable);
    if (!ok)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "could not write the screenshot %s", path);
    return ok;
}

/* ------------------------------------------------------------------ class */

static void craft_window_dispose(GObject *o)
{
    CraftWindow *self = CRAFT_WINDOW(o);
    self->job_cancel_flag = 1;
    g_clear_handle_id(&self->job_timer, g_source_remove);
    if (self->selection)
        g_signal_handlers_disconnect_by_data(self->selection, self);
    g_clear_object(&self->selection);
    g_clear_object(&self->queue);
    gtk_widget_dispose_template(GTK_WIDGET(o), CRAFT_TYPE_WINDOW);
    G_OBJECT_CLASS(craft_window_parent_class)->dispose(o);
}

static void craft_window_finalize(GObject *o)
{
    CraftWindow *self = CRAFT_WINDOW(o);
    if (self->has_detail) craft_order_detail_free(&self->detail);
    if (self->model) craft_model_free(self->model);
    if (self->store) craft_store_close(self->store);
    g_free(self->store_path);
    g_free(self->subset_text);
    g_free(self->job_name);
    g_ptr_array_unref(self->switches);
    G_OBJECT_CLASS(craft_window_parent_class)->finalize(o);
}

static void craft_window_class_init(CraftWindowClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    oc->dispose = craft_window_dispose;
    oc->finalize = craft_window_finalize;
    /* referencing the bundle pulls its object, whose constructor registers it, out of
     * the static library (the linker drops unreferenced objects) */
    (void)craftdesk_get_resource();
    g_type_ensure(CRAFT_TYPE_HEATMAP_WIDGET);
    g_type_ensure(CRAFT_TYPE_SCATTER_WIDGET);
    gtk_widget_class_set_template_from_resource(wc, "/io/github/craftdesk/CraftDesk/ui/craft-window.ui");
#define BIND(name) gtk_widget_class_bind_template_child(wc, CraftWindow, name)
    BIND(toasts); BIND(title); BIND(device_label); BIND(progress_label); BIND(counts_label); BIND(order_title);
    BIND(subset_label); BIND(rank_label); BIND(features_label); BIND(entities_label); BIND(history_label);
    BIND(search_button); BIND(search_entry); BIND(progress_revealer); BIND(progress_bar); BIND(main_stack);
    BIND(detail_stack); BIND(status_filter); BIND(class_filter); BIND(sort_choice); BIND(threshold_adj);
    BIND(queue_view); BIND(bars_area); BIND(journey_area); BIND(toggles_box); BIND(note_entry); BIND(heatmap);
    BIND(scatter);
#undef BIND
}

static const GActionEntry win_actions[] = {
    {"import", act_import}, {"score", act_score}, {"cancel-job", act_cancel},
    {"next-case", act_next}, {"previous-case", act_prev},
    {"decide-confirm", act_decide}, {"decide-false-positive", act_decide},
    {"decide-escalate", act_decide}, {"decide-needs-info", act_decide},
    {"toggle-modality", act_toggle_modality, "i"}, {"search", act_search}, {"show-score-space", act_space},
};

static void craft_window_init(CraftWindow *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    self->switches = g_ptr_array_new();
    g_action_map_add_action_entries(G_ACTION_MAP(self), win_actions, G_N_ELEMENTS(win_actions), self);
    setup_queue_view(self);
    gtk_drawing_area_set_draw_func(self->bars_area, draw_bars, self, NULL);
    gtk_drawing_area_set_draw_func(self->journey_area, draw_journey, self, NULL);
    gtk_search_bar_connect_entry(GTK_SEARCH_BAR(gtk_widget_get_parent(gtk_widget_get_parent(GTK_WIDGET(self->search_entry)))),
                                 GTK_EDITABLE(self->search_entry));
    g_signal_connect(self->search_entry, "search-changed", G_CALLBACK(on_search_changed), self);
    g_signal_connect(self->status_filter, "notify::selected", G_CALLBACK(on_filter_changed), self);
    g_signal_connect(self->class_filter, "notify::selected", G_CALLBACK(on_filter_changed), self);
    g_signal_connect(self->sort_choice, "notify::selected", G_CALLBACK(on_filter_changed), self);
    g_signal_connect(self->threshold_adj, "notify::value", G_CALLBACK(on_filter_changed), self);
    g_signal_connect(self->scatter, "selection-done", G_CALLBACK(on_scatter_selection), self);
    /* scoring in the app runs on the CPU engine; the CUDA engine is chosen by the CLI */
    char *dev = g_strdup_printf("device: CPU (%d cores)", craft_cpu_count());
    gtk_label_set_text(self->device_label, dev);
    g_free(dev);
    gtk_label_set_text(self->order_title, "No order selected");
}

CraftWindow *craft_window_new(GtkApplication *app)
{
    return g_object_new(CRAFT_TYPE_WINDOW, "application", app, NULL);
}
