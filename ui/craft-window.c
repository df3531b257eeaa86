/* craft-window.c: the main window. Everything it shows comes from store calls
 * (app/store) and the pure views (app/views); long work runs in GTask workers that
 * open their own store connection and report progress through atomics polled here. */
#define G_LOG_DOMAIN "craftdesk"
#include "craft-window.h"

#include "craft-background.h"

#include <math.h>
#include <string.h>

#include "bars.h"
#include "craft-application.h"
#include "craft-heatmap-widget.h"
#include "craft-plot-style.h"
#include "craft-queue-item.h"
#include "craft-scatter-widget.h"
#include "craftdesk-resources.h"
#include "heatmap.h"
#include "interaction.h"
#include "order_rescore.h"
#include "scoring.h"
#include "metrics.h"
#include "craft_cuda.h"
#include "trainer.h"

#include <glib/gstdio.h>
#include <signal.h>

#include <cjson/cJSON.h>
#include <stdarg.h>
#include "timeline.h"
#include "report.h"

typedef struct ExportJob ExportJob;

struct _CraftWindow {
    AdwApplicationWindow parent_instance;
    /* template children */
    AdwToastOverlay *toasts;
    AdwWindowTitle *title;
    GtkLabel *device_label, *progress_label, *counts_label, *order_title, *subset_label, *rank_label;
    GtkLabel *features_label, *entities_label, *history_label;
    GtkToggleButton *search_button;
    GtkSearchEntry *search_entry;
    GtkSearchBar *search_bar;
    GtkWidget *detail_switcher;
    GtkButton *confirm_button;
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
    /* live re-scoring of the selected order (modality toggles) */
    craft_engine *live_engine;          /* one-order engine of `model`, main thread */
    craft_order_batch live_batch;       /* the selected order's engine inputs */
    gboolean live_batch_ok, live_ready;
    gint live_gen;                      /* which selection the order and inputs workers are reading
                                         * (changed with g_atomic_int_inc; workers skip superseded work) */
    char *loading_id;                   /* the order being read (NULL once shown) */
    guint loading_timer;                /* shows the loading state of a slow read */
    GCancellable *order_cancel;
    GtkSpinner *order_spinner;
    craft_rescore live;
    /* the selected order's interaction score (docs/MODEL.md): a worker runs the
     * perturbation passes (the backbone once per tabular feature), see start_interaction */
    craft_model **model_box;            /* g_atomic_rc_box holding `model`: each worker holds a reference */
    GtkLabel *interaction_title, *interaction_state;
    GtkGrid *interaction_grid;
    GtkSpinner *interaction_spinner;
    int ix_state;                       /* IX_* */
    gint ix_gen;                        /* the live_gen the shown result (or the running job) is for */
    GQueue *ix_cache;                   /* IxEntry, most recently shown first (this model's) */
    struct IxEntry *ix_shown;           /* the result shown (IX_DONE), an entry of ix_cache */
    char *ix_error;                     /* IX_FAILED */
    char *ix_text;                      /* what the part shows, as plain text (tests) */
    int ix_class;                       /* the class shown, -1 when none */
    struct InteractionJob *ix_job;      /* the worker for the shown order, while it runs */
    guint ix_timer;                     /* its progress on the state line */
    guint ix_runs, ix_skipped;          /* engine runs finished, superseded jobs skipped */
    /* the score space of class space_cls */
    int space_cls;
    GBytes *space_points;               /* craft_space_point[], sorted by order id (shared with workers) */
    size_t n_space_points;
    double space_seconds;
    GtkLabel *space_label, *model_label;
    char *subset_table;                 /* markup: per-subset metrics on the store's labelled orders */
    char *model_record;                 /* markup: the store's record of the model (file, dates, metrics) */
    craft_journey_event journey[CRAFT_TIMELINE_MAX];
    int n_journey;
    /* the running job */
    GCancellable *job_cancel;
    volatile int job_cancel_flag;
    volatile gint job_done_milli;       /* progress 0..1000, written by the worker */
    guint job_timer;
    char *job_name;
    char *job_message;                  /* the last job's outcome: its toast or what went wrong */
    guint job_steps_shown;              /* steps of the running job shown so far (under step_lock) */
    guint export_timer;                 /* the export's stage label */
    GtkFileChooserNative *export_chooser; /* the export's save dialog (made once, see export_chooser) */
    guint export_chooser_timer;         /* makes it a moment after a store opens */
    ExportJob *export_chooser_job;      /* the export waiting for the dialog's answer */
    guint exports_done, exports_failed; /* finished exports (tests wait on these) */
    char *export_message;               /* the last export's toast */
    guint decisions_done, decisions_failed;
    guint queue_asked, queue_shown;     /* queue reads started and the newest one shown (by number) */
    gboolean disposed;
};

G_DEFINE_FINAL_TYPE(CraftWindow, craft_window, ADW_TYPE_APPLICATION_WINDOW)

enum { SIGNAL_JOB_PROGRESS, N_WINDOW_SIGNALS };
static guint window_signals[N_WINDOW_SIGNALS];
static GMutex step_lock;                /* a long job's steps shown (job_steps_shown) */
static GCond step_shown;

static const char *actor_name(void)
{
    return g_get_user_name();
}

/* A toast that shows text as written: a toast's title is Pango markup (libadwaita 1.2),
 * and texts carry order ids and paths, which are data ("&", "<"). */
static AdwToast *plain_toast(const char *text)
{
    char *e = g_markup_escape_text(text, -1);
    AdwToast *t = adw_toast_new(e);
    g_free(e);
    return t;
}

/* A text too long for a toast's single line gets a Details button with the whole text. */
static void add_details_button(AdwToast *toast, const char *text)
{
    if (g_utf8_strlen(text, -1) <= 80)
        return;
    adw_toast_set_button_label(toast, "_Details");
    adw_toast_set_detailed_action_name(toast, "win.show-message");
    adw_toast_set_action_target_value(toast, g_variant_new_string(text));
}

void craft_window_toast(CraftWindow *self, const char *text)
{
    AdwToast *toast = plain_toast(text);
    add_details_button(toast, text);
    adw_toast_overlay_add_toast(self->toasts, toast);
}

/* An error stays until dismissed (a long one with its Details button). */
static void error_toast(CraftWindow *self, const char *text, gboolean urgent)
{
    AdwToast *toast = plain_toast(text);
    adw_toast_set_timeout(toast, 0);
    if (urgent) adw_toast_set_priority(toast, ADW_TOAST_PRIORITY_HIGH);
    add_details_button(toast, text);
    adw_toast_overlay_add_toast(self->toasts, toast);
}

static void show_error(CraftWindow *self, const char *what, const char *msg)
{
    char *t = g_strdup_printf("%s: %s", what, msg);
    error_toast(self, t, FALSE);
    g_free(t);
}

static void act_show_message(GSimpleAction *a, GVariant *p, gpointer user)
{
    GtkWidget *d = adw_message_dialog_new(GTK_WINDOW(user), "What went wrong", NULL);
    adw_message_dialog_set_body(ADW_MESSAGE_DIALOG(d), g_variant_get_string(p, NULL)); /* plain text */
    adw_message_dialog_add_response(ADW_MESSAGE_DIALOG(d), "close", "_Close");
    gtk_window_present(GTK_WINDOW(d));
}

/* ------------------------------------------------------------- order view */

/* Flag thresholds per class for the bars: the checkpoint's "thresholds" metadata
 * (the rule craft score flags by), else the queue's threshold slider when set,
 * else craft score's default of 0.5. Returns what they are, for the caption. */
static const char *bar_thresholds(CraftWindow *self, float *thr, int K)
{
    double slider = gtk_adjustment_get_value(self->threshold_adj);
    const char *what = slider > 0 ? "the queue's threshold" : "craft score's default threshold 0.5";
    for (int k = 0; k < K; k++) thr[k] = slider > 0 ? (float)slider : 0.5f;
    cJSON *md = self->model && self->model->metadata_json ? cJSON_Parse(self->model->metadata_json) : NULL;
    const cJSON *t = md ? cJSON_GetObjectItemCaseSensitive(md, "thresholds") : NULL;
    cJSON *inner = cJSON_IsString(t) ? cJSON_Parse(t->valuestring) : NULL;
    if (inner) t = inner;
    if (cJSON_IsArray(t) && cJSON_GetArraySize(t) == K) {
        for (int k = 0; k < K; k++) {
            const cJSON *v = cJSON_GetArrayItem(t, k);
            if (cJSON_IsNumber(v)) thr[k] = (float)v->valuedouble;
        }
        what = "the model's thresholds";
    }
    cJSON_Delete(inner);
    cJSON_Delete(md);
    return what;
}

static void draw_bars(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer user)
{
    CraftWindow *self = user;
    if (!self->has_detail || self->detail.n_predictions == 0)
        return;
    craft_view_style st = craft_plot_style_current();
    float thr[CRAFT_STORE_MAX_CLASSES];
    bar_thresholds(self, thr, self->detail.n_classes);
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

/* Re-scores the selected order live with off_mask switched off (one engine call
 * of one order, sharing the backbone pass with the full model). */
static void rescore_live(CraftWindow *self)
{
    self->has_subset = FALSE;
    if (!self->live_ready || !self->live_engine)
        return;
    craft_error err = {0};
    if (craft_order_rescore(self->live_engine, self->model, &self->live_batch.in, 0, self->off_mask, &self->live,
                            &err) != CRAFT_OK) {
        show_error(self, "Re-scoring", err.msg);
        return;
    }
    self->has_subset = self->off_mask != 0;
    memcpy(self->subset, self->live.subset, sizeof(float) * self->live.K);
}

static void update_subset(CraftWindow *self)
{
    if (self->loading_id)
        return; /* the order being read is shown (and re-scored) when it arrives */
    g_clear_pointer(&self->subset_text, g_free);
    if (!self->has_detail || self->detail.n_predictions == 0 || !self->model) {
        self->has_subset = FALSE;
        gtk_label_set_text(self->subset_label, "");
        gtk_widget_queue_draw(GTK_WIDGET(self->bars_area));
        return;
    }
    rescore_live(self);
    const craft_config *cfg = &self->model->cfg;
    GString *s = g_string_new(NULL);
    const craft_prediction *stored = NULL;
    if (self->off_mask && !self->live_ready && (stored = find_subset(self, self->off_mask))) {
        /* until the live inputs are built (the graph replay reads every earlier order),
         * the subset scores the engine stored when the store was scored */
        self->has_subset = TRUE;
        memcpy(self->subset, stored->scores, sizeof(float) * self->detail.n_classes);
        g_string_append(s, "Stored subset scores (live re-scoring is being prepared):");
        for (int k = 0; k < self->detail.n_classes; k++)
            g_string_append_printf(s, "   %s %.3f → %.3f (%+.3f)", cfg->classes[k], self->detail.predictions[0].scores[k],
                                   stored->scores[k], stored->scores[k] - self->detail.predictions[0].scores[k]);
    } else if (self->off_mask && !self->live_ready) {
        g_string_append(s, "Preparing this order's inputs for re-scoring…");
    } else if (self->has_subset) {
        g_string_append(s, "Without");
        for (int m = 0, first = 1; m < cfg->n_modalities; m++)
            if (self->off_mask & (1u << m)) {
                g_string_append_printf(s, "%s %s", first ? "" : " +", cfg->modalities[m].name);
                first = 0;
            }
        g_string_append_c(s, ':');
        for (int k = 0; k < self->live.K; k++)
            g_string_append_printf(s, "   %s %.3f → %.3f (%+.3f)", cfg->classes[k], self->live.full[k],
                                   self->live.subset[k], self->live.subset[k] - self->live.full[k]);
        g_string_append_printf(s, "   (re-scored in %.2f ms)", self->live.seconds * 1000);
    }
    if (self->has_subset) {
        float thr[CRAFT_STORE_MAX_CLASSES];
        g_string_append_printf(s, "\nBars: full model (coloured; orange at or over %s), grey: without the switched-off "
                               "modalities.", bar_thresholds(self, thr, self->detail.n_classes));
    }
    if (self->live_ready) {
        g_string_append(s, s->len ? "\nFusion gates (full model):" : "Fusion gates (full model):");
        for (int m = 0; m < cfg->n_modalities; m++) {
            if (m == cfg->backbone)
                continue;
            if (isnan(self->live.fuse_gate[m]))
                g_string_append_printf(s, "   %s missing", cfg->modalities[m].name);
            else
                g_string_append_printf(s, "   %s %.2f", cfg->modalities[m].name, self->live.fuse_gate[m]);
        }
    }
    self->subset_text = g_string_free(s, FALSE);
    gtk_label_set_text(self->subset_label, self->subset_text);
    gtk_widget_queue_draw(GTK_WIDGET(self->bars_area));
}

/* ------------------------------------------- the selected order's interaction score */

/* I(j, m) = perturbation importance of feature j with every modality on minus that with
 * auxiliary m off (docs/MODEL.md, "Interaction score"; craft score --interaction). The
 * engine reruns the backbone once per tabular feature, 0.3-1 s for a production model
 * on two cores, so it runs in a worker: it gets a copy of the order's engine inputs and a
 * reference to the model, makes its own engine and hands back the values; the main
 * thread only shows them. Workers run one at a time (ix_lock): one that gets its turn
 * after a newer order was selected skips its work, and a result for an order no longer
 * shown is dropped (kept in a small cache for J/K back and forth). */
enum { IX_NONE, IX_WAITING, IX_COMPUTING, IX_DONE, IX_FAILED };
#define IX_CACHE_MAX 16

typedef struct IxEntry {
    char *order_id;
    craft_interaction ix;
} IxEntry;

static void ix_entry_free(IxEntry *e)
{
    g_free(e->order_id);
    craft_interaction_free(&e->ix);
    g_free(e);
}

typedef struct InteractionJob {
    craft_model **box;                  /* a reference to the window's model_box */
    craft_batch one;                    /* a copy of the order's engine inputs */
    char *order_id;
    gint gen;
    const gint *current;                /* the window's live_gen */
    GCancellable *cancel;
    craft_interaction ix;
    gboolean ran;
    gint done, total;                   /* features done (written by the worker, read by the timer) */
    gint64 queued;
    double waited_ms;
} InteractionJob;

static void model_box_clear(gpointer box) { craft_model_free(*(craft_model **)box); }

static GMutex ix_lock;                   /* one interaction worker computes at a time */
static gint ix_stop;                     /* the application is shutting down: workers stop */
#define IX_CHUNK 8                       /* perturbed copies per engine run: a stop waits one run
                                          * (production model: ~10 ms of a 0.4 s total, the
                                          * same total as the engine's own perturbation) */

/* The class whose interaction is shown: the queue's class filter when it names one (the
 * queue, score space and bars follow it), else the case's top class, else the order's
 * highest full-model score. */
static int interaction_class(CraftWindow *self, const IxEntry *e, const char **why)
{
    const craft_interaction *x = &e->ix;
    guint cls = gtk_drop_down_get_selected(self->class_filter);
    if (cls != GTK_INVALID_LIST_POSITION && cls > 0 && (int)cls - 1 < x->K) {
        *why = "the queue's class";
        return (int)cls - 1;
    }
    if (self->has_detail && self->detail.has_case && !g_strcmp0(self->detail.order_id, e->order_id) &&
        self->detail.kase.top_class >= 0 && self->detail.kase.top_class < x->K) {
        *why = "the case's top class";
        return self->detail.kase.top_class;
    }
    int best = 0;
    for (int k = 1; k < x->K; k++)
        if (x->scores[k] > x->scores[best]) best = k;
    *why = "the top class";
    return best;
}

static GtkWidget *ix_label(const char *text, float xalign, const char *css)
{
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), xalign);
    if (css) gtk_widget_add_css_class(l, css);
    return l;
}

/* The interaction part for ix_state: its title, the state line, and per auxiliary the
 * features with the largest |I| of the shown class (the grid is rebuilt: a dozen rows). */
static void fill_interaction(CraftWindow *self)
{
    if (self->disposed || !self->interaction_grid)
        return;
    GtkWidget *child;
    while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->interaction_grid))))
        gtk_grid_remove(self->interaction_grid, child);
    gboolean busy = self->ix_state == IX_WAITING || self->ix_state == IX_COMPUTING;
    gtk_widget_set_visible(GTK_WIDGET(self->interaction_spinner), busy);
    gtk_spinner_set_spinning(self->interaction_spinner, busy);
    GString *text = g_string_new(NULL);
    char *state = NULL;
    self->ix_class = -1;
    const IxEntry *e = self->ix_state == IX_DONE ? self->ix_shown : NULL;
    const craft_config *cfg = self->model ? &self->model->cfg : NULL;
    if (!e || !cfg) {
        gtk_label_set_text(self->interaction_title, "Interaction");
        switch (self->ix_state) {
        case IX_WAITING: state = g_strdup("Waiting for this order's inputs…"); break;
        case IX_COMPUTING: {
            int total = cfg && cfg->tabular >= 0 ? cfg->modalities[cfg->tabular].n_features : 0;
            int done = self->ix_job ? g_atomic_int_get(&self->ix_job->done) : 0;
            state = g_strdup_printf("Computing… %d of %d features (the class scores with each feature missing, with "
                                    "each modality on and off)", done, total);
            break;
        }
        case IX_FAILED: state = g_strdup_printf("Not available: %s", self->ix_error ? self->ix_error : "?"); break;
        default: state = g_strdup(self->model ? "No order selected." : "No model has scored this store."); break;
        }
        g_string_append_printf(text, "Interaction\n%s\n", state);
    } else {
        const craft_interaction *x = &e->ix;
        const char *why = "";
        int k = self->ix_class = interaction_class(self, e, &why);
        const craft_modality *tm = &cfg->modalities[cfg->tabular];
        char *title = g_strdup_printf("Interaction · %s", cfg->classes[k]);
        gtk_label_set_text(self->interaction_title, title);
        g_string_append_printf(text, "%s\n", title);
        g_free(title);
        char took[32];
        if (x->seconds < 0.0005) g_snprintf(took, sizeof took, "< 1 ms");
        else if (x->seconds < 1) g_snprintf(took, sizeof took, "%.0f ms", x->seconds * 1000);
        else g_snprintf(took, sizeof took, "%.1f s", x->seconds);
        float sk = x->scores[k];
        state = g_strdup_printf("%c%s, score %.3f%s · full model · %s", g_ascii_toupper(why[0]), why + 1, sk,
                                sk > 0.995f || sk < 0.005f ? " (saturated: every I is small)" : "", took);
        g_string_append_printf(text, "%s\n", state);
        int used = 0;
        for (int a = 0; a < x->n_aux; a++) used += x->aux_used[a];
        int per = used <= 2 ? 5 : 3, row = 0;
        for (int a = 0; a < x->n_aux; a++) {
            const char *mname = cfg->modalities[x->aux[a]].name;
            if (!x->aux_used[a]) {
                char *t = g_strdup_printf("%s: missing for this order", mname);
                GtkWidget *l = ix_label(t, 0, "modality-missing");
                gtk_grid_attach(self->interaction_grid, l, 0, row++, 2, 1);
                g_string_append_printf(text, "%s\n", t);
                g_free(t);
                continue;
            }
            char *t = g_strdup_printf("with %s", mname);
            GtkWidget *head = ix_label(t, 0, "interaction-modality");
            gtk_grid_attach(self->interaction_grid, head, 0, row++, 2, 1);
            g_string_append_printf(text, "%s\n", t);
            g_free(t);
            int top[8];
            int n = craft_interaction_top(x, a, k, top, per), any = n;
            /* what the format would show as ±0.0000 is left out (a saturated score) */
            while (n > 0 && fabsf(craft_interaction_value(x, a, k, top[n - 1])) < CRAFT_INTERACTION_SHOWN_MIN) n--;
            if (n < per && any > n) {
                const char *note = n ? "the rest: |I| < 0.0001" : "every |I| < 0.0001";
                gtk_grid_attach(self->interaction_grid, ix_label(note, 0, "dim-label"), 0, row + n, 2, 1);
                g_string_append_printf(text, "  (%s)\n", note);
            } else if (any == 0) {
                gtk_grid_attach(self->interaction_grid, ix_label("no feature changes it (I = 0)", 0, "dim-label"), 0,
                                row, 2, 1);
                g_string_append(text, "  (no feature changes it)\n");
            }
            for (int i = 0; i < n; i++) {
                int j = top[i];
                float v = craft_interaction_value(x, a, k, j);
                char val[32], with[32], without[32];
                craft_interaction_format(val, sizeof val, v);
                craft_interaction_format(with, sizeof with, x->perturb[(size_t)k * x->F + j]);
                craft_interaction_format(without, sizeof without, x->perturb_off[((size_t)a * x->K + k) * x->F + j]);
                GtkWidget *name = ix_label(tm->features[j].name, 0, NULL);
                gtk_label_set_ellipsize(GTK_LABEL(name), PANGO_ELLIPSIZE_MIDDLE);
                gtk_label_set_max_width_chars(GTK_LABEL(name), 14);
                gtk_widget_set_hexpand(name, TRUE);
                GtkWidget *value = ix_label(val, 1, v > 0 ? "interaction-synergy" : "interaction-suppression");
                gtk_widget_add_css_class(value, "numeric");
                char *tip = g_strdup_printf("%s with %s, class %s\nI = %s (%s)\nimportance with every modality %s\n"
                                            "importance with %s off %s",
                                            tm->features[j].name, mname, cfg->classes[k], val,
                                            v > 0 ? "synergy" : "suppression", with, mname, without);
                gtk_widget_set_tooltip_text(name, tip);
                gtk_widget_set_tooltip_text(value, tip);
                g_free(tip);
                gtk_grid_attach(self->interaction_grid, name, 0, row, 1, 1);
                gtk_grid_attach(self->interaction_grid, value, 1, row++, 1, 1);
                g_string_append_printf(text, "  %s\t%s\n", tm->features[j].name, val);
            }
            if (gtk_grid_get_child_at(self->interaction_grid, 0, row)) row++; /* the note */
        }
        if (used == 0) {
            g_free(state);
            state = g_strdup_printf("Class %s (%s): this order has none of the auxiliary modalities, so there is no "
                                    "interaction to show.", cfg->classes[k], why);
        }
    }
    gtk_label_set_text(self->interaction_state, state);
    gtk_widget_set_visible(GTK_WIDGET(self->interaction_state), state != NULL);
    g_free(state);
    g_free(self->ix_text);
    self->ix_text = g_string_free(text, FALSE);
}

static IxEntry *ix_cache_find(CraftWindow *self, const char *order_id)
{
    for (GList *l = self->ix_cache ? self->ix_cache->head : NULL; l; l = l->next)
        if (!g_strcmp0(((IxEntry *)l->data)->order_id, order_id))
            return l->data;
    return NULL;
}

/* Shows a cached result (moved to the front of the cache). */
static void ix_show(CraftWindow *self, IxEntry *e)
{
    g_queue_remove(self->ix_cache, e);
    g_queue_push_head(self->ix_cache, e);
    self->ix_shown = e;
    self->ix_state = IX_DONE;
    fill_interaction(self);
}

/* The running worker (if any) stops after its current engine run. */
static void interaction_stop(CraftWindow *self)
{
    if (self->ix_job)
        g_cancellable_cancel(self->ix_job->cancel); /* it stops after its current engine run */
    self->ix_job = NULL;
    g_clear_handle_id(&self->ix_timer, g_source_remove);
}

/* A new selection (generation live_gen): a cached result at once, else the part waits
 * for the order's engine inputs (inputs_done starts the worker). */
static void interaction_reset(CraftWindow *self, const char *order_id)
{
    interaction_stop(self);
    self->ix_gen = self->live_gen;
    self->ix_shown = NULL;
    g_clear_pointer(&self->ix_error, g_free);
    IxEntry *e = order_id && self->model_box ? ix_cache_find(self, order_id) : NULL;
    if (e) {
        ix_show(self, e);
        return;
    }
    self->ix_state = order_id && self->model_box ? IX_WAITING : IX_NONE;
    fill_interaction(self);
}

static void ix_cache_clear(CraftWindow *self)
{
    self->ix_shown = NULL;
    if (self->ix_cache)
        while (!g_queue_is_empty(self->ix_cache)) ix_entry_free(g_queue_pop_head(self->ix_cache));
}

static void interaction_job_free(InteractionJob *j)
{
    craft_batch_free(&j->one);
    craft_interaction_free(&j->ix);
    g_atomic_rc_box_release_full(j->box, model_box_clear);
    g_clear_object(&j->cancel);
    g_free(j->order_id);
    g_free(j);
}

/* Between engine runs: the features done so far, and whether to stop (a newer order
 * was selected, the window closed, the application is quitting). */
static int interaction_progress(void *user, int done, int total)
{
    InteractionJob *j = user;
    g_atomic_int_set(&j->total, total);
    g_atomic_int_set(&j->done, done);
    return g_atomic_int_get(&ix_stop) || g_atomic_int_get(j->current) != j->gen || g_cancellable_is_cancelled(j->cancel);
}

/* Worker: never touches a widget; its own engine of the (reference-held) model. */
static void interaction_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    craft_background_thread();
    InteractionJob *j = data;
    g_mutex_lock(&ix_lock);
    j->waited_ms = (g_get_monotonic_time() - j->queued) / 1000.0;
    if (interaction_progress(j, 0, 0)) { /* a newer order was selected while this one waited */
        g_mutex_unlock(&ix_lock);
        g_task_return_boolean(task, FALSE);
        return;
    }
    const craft_model *m = *j->box;
    craft_engine *e = NULL;
    craft_error err = {0};
    /* one thread: at nice 10 on a busy machine, a second thread's barriers (one pass per
     * feature, several parallel regions each) cost far more than they gain: a production
     * model took 0.5 s with one thread and 3.9 s with two under load 6 (craft score
     * --interaction --threads 1|2), and over 2 minutes niced in the app */
    int rc = craft_engine_new(&e, m, IX_CHUNK, 1, &err);
    craft_interaction_options o = {IX_CHUNK, interaction_progress, j};
    if (!rc)
        rc = craft_order_interaction(e, m, &j->one, 0, &o, &j->ix, &err);
    craft_engine_free(e);
    g_mutex_unlock(&ix_lock);
    j->ran = rc != CRAFT_ECANCELLED;
    if (rc)
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
    else
        g_task_return_boolean(task, TRUE);
}

static void interaction_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    InteractionJob *j = g_task_get_task_data(G_TASK(res));
    GError *error = NULL;
    gboolean ok = g_task_propagate_boolean(G_TASK(res), &error);
    if (j->ran) self->ix_runs++;
    else self->ix_skipped++;
    if (self->ix_job == j) {
        self->ix_job = NULL;
        g_clear_handle_id(&self->ix_timer, g_source_remove);
    }
    if (self->disposed || !j->ran || !self->model_box || j->box != self->model_box) {
        g_clear_error(&error); /* the window closed, or the order's work was superseded, or another model */
        return;
    }
    IxEntry *e = NULL;
    if (ok) {
        g_debug("order %s: interaction computed in %.0f ms (after %.0f ms waiting its turn)", j->order_id,
                j->ix.seconds * 1000, j->waited_ms);
        e = g_new0(IxEntry, 1);
        e->order_id = g_strdup(j->order_id);
        e->ix = j->ix; /* moved */
        memset(&j->ix, 0, sizeof j->ix);
        g_queue_push_head(self->ix_cache, e);
        while (g_queue_get_length(self->ix_cache) > IX_CACHE_MAX) {
            IxEntry *old = g_queue_pop_tail(self->ix_cache);
            if (old == self->ix_shown) self->ix_shown = NULL;
            ix_entry_free(old);
        }
    }
    if (j->gen != self->live_gen || self->ix_gen != j->gen) { /* another order is shown now */
        g_clear_error(&error);
        return;
    }
    if (e) {
        ix_show(self, e);
    } else {
        self->ix_state = IX_FAILED;
        g_free(self->ix_error);
        self->ix_error = g_strdup(error ? error->message : "failed");
        fill_interaction(self);
    }
    g_clear_error(&error);
}

void craft_window_stop_workers(void)
{
    g_atomic_int_set(&ix_stop, 1);
    g_mutex_lock(&ix_lock); /* the running one, if any, ends within one engine run */
    g_mutex_unlock(&ix_lock);
}

static gboolean interaction_tick(gpointer user)
{
    CraftWindow *self = user;
    if (self->ix_state != IX_COMPUTING) {
        self->ix_timer = 0;
        return G_SOURCE_REMOVE;
    }
    fill_interaction(self);
    return G_SOURCE_CONTINUE;
}

/* Starts the worker for the shown order (its engine inputs just read into live_batch). */
static void start_interaction(CraftWindow *self, const char *order_id)
{
    if (!self->model_box || !self->live_batch_ok || self->ix_gen != self->live_gen)
        return;
    IxEntry *cached = ix_cache_find(self, order_id);
    if (cached) {
        ix_show(self, cached);
        return;
    }
    InteractionJob *j = g_new0(InteractionJob, 1);
    craft_error err = {0};
    if (craft_interaction_copy_order(&j->one, &self->model->cfg, &self->live_batch.in, 0, &err) != CRAFT_OK) {
        g_free(j);
        self->ix_state = IX_FAILED;
        g_free(self->ix_error);
        self->ix_error = g_strdup(err.msg);
        fill_interaction(self);
        return;
    }
    j->box = g_atomic_rc_box_acquire(self->model_box);
    j->order_id = g_strdup(order_id);
    j->gen = self->live_gen;
    j->current = &self->live_gen;
    j->queued = g_get_monotonic_time();
    j->cancel = g_cancellable_new();
    self->ix_state = IX_COMPUTING;
    self->ix_job = j; /* alive until interaction_done, which clears this */
    fill_interaction(self);
    if (!self->ix_timer)
        self->ix_timer = g_timeout_add(250, interaction_tick, self);
    GTask *t = g_task_new(self, j->cancel, interaction_done, NULL);
    g_task_set_check_cancellable(t, FALSE); /* a result finished before the cancel is still cached */
    g_task_set_task_data(t, j, (GDestroyNotify)interaction_job_free);
    g_task_run_in_thread(t, interaction_thread);
    g_object_unref(t);
}

/* ------------------------------------------- the selected order's inputs */

typedef struct {
    char *path, *order_id;
    craft_config cfg;
    craft_order_batch ob;
    gint gen;
    const gint *current;                /* the window's live_gen: a newer selection makes this work moot */
    gint64 started;
} InputsJob;

static void inputs_job_free(InputsJob *j)
{
    g_free(j->path);
    g_free(j->order_id);
    craft_order_batch_free(&j->ob);
    craft_config_free(&j->cfg);
    g_free(j);
}

/* Worker: its own read-only connection; the graph replay reads every earlier order. */
static void inputs_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    craft_background_thread();
    InputsJob *j = data;
    craft_store *s = NULL;
    craft_error err = {0};
    if (g_atomic_int_get(j->current) != j->gen) { /* J held down: only the last order is read */
        g_task_return_boolean(task, FALSE);
        return;
    }
    int rc = craft_store_open(&s, j->path, CRAFT_STORE_READONLY, &err);
    if (!rc)
        rc = craft_store_order_batch(s, &j->cfg, j->order_id, &j->ob, &err);
    if (s)
        craft_store_close(s);
    if (rc)
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
    else
        g_task_return_boolean(task, TRUE);
}

static void inputs_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    InputsJob *j = g_task_get_task_data(G_TASK(res));
    GError *error = NULL;
    gboolean ok = g_task_propagate_boolean(G_TASK(res), &error);
    if (j->gen != self->live_gen || !self->model) { /* another order was selected meanwhile */
        g_clear_error(&error);
        return;
    }
    if (!ok) {
        show_error(self, "Re-scoring", error->message);
        if (self->ix_gen == self->live_gen) { /* the interaction part needs the same inputs */
            self->ix_state = IX_FAILED;
            g_free(self->ix_error);
            self->ix_error = g_strdup(error->message);
            fill_interaction(self);
        }
        g_error_free(error);
        return;
    }
    if (self->live_batch_ok)
        craft_order_batch_free(&self->live_batch);
    self->live_batch = j->ob; /* moved */
    memset(&j->ob, 0, sizeof j->ob);
    self->live_batch_ok = TRUE;
    self->live_ready = TRUE;
    g_debug("order %s: engine inputs ready %.1f ms after it was selected", j->order_id,
            (g_get_monotonic_time() - j->started) / 1000.0);
    update_subset(self);
    start_interaction(self, j->order_id);
}

/* Starts reading the order's engine inputs (for the selection of generation live_gen). */
static void load_inputs(CraftWindow *self, const char *order_id)
{
    self->live_ready = FALSE;
    if (!self->model || !order_id)
        return;
    InputsJob *j = g_new0(InputsJob, 1);
    j->path = g_strdup(self->store_path);
    j->order_id = g_strdup(order_id);
    j->gen = self->live_gen;
    j->current = &self->live_gen;
    j->started = g_get_monotonic_time();
    craft_error err = {0};
    if (craft_config_copy(&j->cfg, &self->model->cfg, &err) ||
        craft_order_batch_init(&j->ob, &self->model->cfg, 1, 1, &err)) {
        show_error(self, "Re-scoring", err.msg);
        inputs_job_free(j);
        return;
    }
    GTask *t = g_task_new(self, NULL, inputs_done, NULL);
    g_task_set_task_data(t, j, (GDestroyNotify)inputs_job_free);
    g_task_run_in_thread(t, inputs_thread);
    g_object_unref(t);
}

gboolean craft_window_rescore_ready(CraftWindow *self) { return self->live_ready; }
guint craft_window_get_exports_done(CraftWindow *self) { return self->exports_done; }
gboolean craft_window_job_running(CraftWindow *self) { return self->job_timer != 0; }
const char *craft_window_get_job_message(CraftWindow *self) { return self->job_message; }
guint craft_window_get_exports_failed(CraftWindow *self) { return self->exports_failed; }
const char *craft_window_get_export_message(CraftWindow *self) { return self->export_message; }

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

typedef struct { int j; float importance; } FeatureRank;

static int cmp_rank(const void *a, const void *b)
{
    float x = ((const FeatureRank *)a)->importance, y = ((const FeatureRank *)b)->importance;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return (x < y) - (x > y);
}

/* The order's features, most important first (the backbone importance the engine
 * stored), with value and the bin the model puts it in (cfg NULL: no model; edges:
 * the tabular embedding's bin edges). Pure: the order worker builds it. */
static char *features_markup(const craft_order_detail *d, const craft_config *cfg, const float *edges)
{
    FeatureRank *rank = g_new(FeatureRank, d->n_features ? d->n_features : 1);
    for (int j = 0; j < d->n_features; j++) {
        rank[j] = (FeatureRank){j, NAN};
        if (d->has_explanation)
            for (int t = 0; t < d->explanation.n_tokens; t++)
                if (!strcmp(d->explanation.token_names[t], d->feature_names[j]))
                    rank[j].importance = d->explanation.importance[t];
    }
    qsort(rank, d->n_features, sizeof *rank, cmp_rank);
    GString *s = g_string_new("<tt>");
    g_string_append_printf(s, "<b>%-28s %12s %5s %10s</b>\n", "feature", "value", "bin", "importance ▾");
    int tab = cfg && edges ? cfg->tabular : -1;
    for (int r = 0; r < d->n_features; r++) {
        int j = rank[r].j;
        char value[64], bin[16] = "", imp[32] = "";
        if (d->categories && d->categories[j]) g_snprintf(value, sizeof value, "%.12s", d->categories[j]);
        else if (!isnan(d->values[j])) g_snprintf(value, sizeof value, "%.6g", d->values[j]);
        else g_snprintf(value, sizeof value, "missing");
        if (tab >= 0) {
            const craft_modality *mod = &cfg->modalities[tab];
            for (int f = 0; f < mod->n_features; f++) {
                if (strcmp(mod->features[f].name, d->feature_names[j])) continue;
                int b = 0;
                float rr = 0;
                int nb = cfg->bins;
                if (mod->features[f].type == CRAFT_CATEGORICAL)
                    b = d->categories && d->categories[j]
                            ? craft_category_code(cfg, &mod->features[f], d->categories[j]) : 0;
                else if (!isnan(d->values[j]))
                    craft_bin_numeric(edges + (size_t)f * (nb + 1), nb, d->values[j], &b, &rr);
                g_snprintf(bin, sizeof bin, "%d", b);
            }
        }
        if (!isnan(rank[r].importance))
            g_snprintf(imp, sizeof imp, "%.4f", rank[r].importance);
        char *name = g_markup_escape_text(d->feature_names[j], -1), *val = g_markup_escape_text(value, -1);
        g_string_append_printf(s, "%-28.28s %12s %5s %10s\n", name, val, bin, imp);
        g_free(name);
        g_free(val);
    }
    g_string_append(s, "</tt>");
    g_free(rank);
    return g_string_free(s, FALSE);
}

typedef struct { char *path, *order_id; craft_kv entities; gint gen; char *text; } EntitiesJob;

static void entities_job_free(EntitiesJob *j)
{
    for (int i = 0; i < j->entities.n; i++) { g_free(j->entities.keys[i]); g_free(j->entities.values[i]); }
    g_free(j->entities.keys); g_free(j->entities.values);
    g_free(j->path); g_free(j->order_id); g_free(j->text); g_free(j);
}

/* Worker: an entity can have thousands of orders, so its history is read off the UI thread. */
static void entities_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    craft_background_thread();
    EntitiesJob *j = data;
    craft_store *st = NULL;
    craft_error err = {0};
    GString *s = g_string_new(NULL);
    if (craft_store_open(&st, j->path, CRAFT_STORE_READONLY, &err) != CRAFT_OK)
        g_string_append_printf(s, "Entity history unavailable: %s\n", err.msg);
    for (int i = 0; st && i < j->entities.n; i++) {
        craft_entity_history h = {0};
        const char *type = j->entities.keys[i], *id = j->entities.values[i];
        g_string_append_printf(s, "%s %s\n", type, id);
        /* only the orders before this one: its own label and decision are not evidence about it */
        if (craft_store_entity_history_before(st, type, id, j->order_id, 5, &h, &err) == CRAFT_OK) {
            if (h.n_orders == 0)
                g_string_append(s, "  no earlier orders\n");
            else
                g_string_append_printf(s, "  %" G_GINT64_FORMAT " earlier orders (%s … %s), %" G_GINT64_FORMAT " cases, %"
                                       G_GINT64_FORMAT " confirmed, %" G_GINT64_FORMAT " false positives\n",
                                       h.n_orders, h.first_ts ? h.first_ts : "?", h.last_ts ? h.last_ts : "?", h.n_cases,
                                       h.n_confirmed, h.n_false_positive);
            for (int k = 0; k < h.n_classes; k++)
                if (h.n_labelled[k] > 0)
                    g_string_append_printf(s, "  %s defect rate %.1f%% of %" G_GINT64_FORMAT " labelled earlier orders\n", h.classes[k],
                                           100.0 * h.n_positive[k] / h.n_labelled[k], h.n_labelled[k]);
            if (h.n_recent) {
                g_string_append(s, "  latest earlier orders:");
                for (int r = 0; r < h.n_recent; r++) g_string_append_printf(s, " %s", h.recent_orders[r]);
                g_string_append_c(s, '\n');
            }
            craft_entity_history_free(&h);
        } else {
            g_string_append_printf(s, "  history unavailable: %s\n", err.msg);
        }
        g_string_append_c(s, '\n');
    }
    if (st) craft_store_close(st);
    j->text = g_string_free(s, FALSE);
    g_task_return_boolean(task, TRUE);
}

static void entities_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    EntitiesJob *j = g_task_get_task_data(G_TASK(res));
    if (g_task_propagate_boolean(G_TASK(res), NULL) && j->gen == self->live_gen)
        gtk_label_set_text(self->entities_label, j->text);
}

static void fill_entities(CraftWindow *self)
{
    if (self->detail.entities.n == 0) {
        gtk_label_set_text(self->entities_label, "No entities recorded for this order.");
        return;
    }
    gtk_label_set_text(self->entities_label, "Reading the entities' histories…");
    EntitiesJob *j = g_new0(EntitiesJob, 1);
    j->path = g_strdup(self->store_path);
    j->order_id = g_strdup(self->detail.order_id);
    j->gen = self->live_gen;
    j->entities.n = self->detail.entities.n;
    j->entities.keys = g_new0(char *, j->entities.n);
    j->entities.values = g_new0(char *, j->entities.n);
    for (int i = 0; i < j->entities.n; i++) {
        j->entities.keys[i] = g_strdup(self->detail.entities.keys[i]);
        j->entities.values[i] = g_strdup(self->detail.entities.values[i]);
    }
    GTask *t = g_task_new(self, NULL, entities_done, NULL);
    g_task_set_task_data(t, j, (GDestroyNotify)entities_job_free);
    g_task_run_in_thread(t, entities_thread);
    g_object_unref(t);
}

/* One audit row in words: the JSON the store records, read back for people. */
static void describe_audit(GString *s, const craft_audit_entry *a)
{
    cJSON *before = a->before ? cJSON_Parse(a->before) : NULL, *after = a->after ? cJSON_Parse(a->after) : NULL;
    const cJSON *bs = cJSON_GetObjectItem(before, "status"), *as = cJSON_GetObjectItem(after, "status");
#define STATUS_LABEL(j) (cJSON_IsString(j) && craft_case_status_parse((j)->valuestring) >= 0 \
                             ? craft_case_status_label(craft_case_status_parse((j)->valuestring)) : "?")
    if (!strcmp(a->action, "create")) {
        const cJSON *cls = cJSON_GetObjectItem(after, "class"), *sc = cJSON_GetObjectItem(after, "score"),
                    *thr = cJSON_GetObjectItem(after, "threshold"), *model = cJSON_GetObjectItem(after, "model");
        g_string_append_printf(s, "case opened: %s scored %.3f (threshold %.2f), model %.12s",
                               cJSON_IsString(cls) ? cls->valuestring : "?", cJSON_IsNumber(sc) ? sc->valuedouble : NAN,
                               cJSON_IsNumber(thr) ? thr->valuedouble : NAN,
                               cJSON_IsString(model) ? model->valuestring : "?");
    } else if (!strcmp(a->action, "status")) {
        const cJSON *cls = cJSON_GetObjectItem(after, "classes");
        g_string_append_printf(s, "status %s → %s", STATUS_LABEL(bs), STATUS_LABEL(as));
        if (cJSON_IsString(cls)) g_string_append_printf(s, " (%s)", cls->valuestring);
    } else if (!strcmp(a->action, "note")) {
        const cJSON *t = cJSON_GetObjectItem(after, "note");
        g_string_append_printf(s, "note: %s", cJSON_IsString(t) ? t->valuestring : "");
    } else {
        g_string_append_printf(s, "%s %s → %s", a->action, a->before ? a->before : "–", a->after ? a->after : "–");
    }
#undef STATUS_LABEL
    cJSON_Delete(before);
    cJSON_Delete(after);
}

/* The case's audit trail and notes in words, read on the order worker's connection. */
static char *history_text(craft_store *st, const craft_order_detail *d)
{
    GString *s = g_string_new(NULL);
    if (!d->has_case) {
        g_string_append(s, "This order has no case (it was not flagged).");
    } else {
        craft_audit_entry *a = NULL;
        int n = 0;
        craft_error err = {0};
        if (craft_store_case_audit(st, d->kase.id, &a, &n, &err) == CRAFT_OK) {
            for (int i = 0; i < n; i++) {
                GDateTime *t = g_date_time_new_from_unix_local((gint64)a[i].at);
                char *when = g_date_time_format(t, "%Y-%m-%d %H:%M:%S");
                g_string_append_printf(s, "%s  %s  ", when, a[i].actor);
                describe_audit(s, &a[i]);
                g_string_append_c(s, '\n');
                g_free(when);
                g_date_time_unref(t);
            }
            craft_audit_free(a, n);
        } else {
            g_string_append_printf(s, "The audit trail could not be read: %s\n", err.msg);
        }
        craft_note *notes = NULL;
        if (craft_store_case_notes(st, d->kase.id, &notes, &n, &err) == CRAFT_OK) {
            if (n) g_string_append(s, "\nNotes\n");
            for (int i = 0; i < n; i++)
                g_string_append_printf(s, "  %s: %s\n", notes[i].author, notes[i].text);
            craft_notes_free(notes, n);
        }
    }
    return g_string_free(s, FALSE);
}

/* The selected order in the score space: its backbone-only and full score of the space's class. */
static void update_highlight(CraftWindow *self)
{
    int k = self->space_cls;
    const craft_prediction *bb = NULL;
    if (self->has_detail && self->detail.n_predictions > 0 && self->model)
        bb = find_subset(self, ~(1u << self->model->cfg.backbone));
    if (bb && k >= 0 && k < self->detail.n_classes)
        craft_scatter_widget_set_highlight(self->scatter, TRUE, bb->scores[k], self->detail.predictions[0].scores[k]);
    else
        craft_scatter_widget_set_highlight(self->scatter, FALSE, 0, 0);
}

/* ------------------------------------------------ the selected order, off the UI thread */

/* Everything the order view shows of one order is read and formatted by a worker on
 * its own read-only connection (the detail, its audit trail, the features table,
 * the journey); the main thread only hands the results to the widgets. Meanwhile
 * the previous order stays on screen, dimmed, with a spinner by the title. */
typedef struct {
    char *path, *order_id;
    int64_t model_id;
    gint gen;
    const gint *current;                /* the window's live_gen */
    gint64 started;
    craft_config cfg;                   /* the model's config, for the features' bins (has_cfg) */
    gboolean has_cfg;
    float *edges;                       /* the tabular embedding's bin edges, NULL without */
    craft_order_detail detail;
    gboolean has_detail;
    craft_journey_event journey[CRAFT_TIMELINE_MAX];
    int n_journey;
    char *features, *history;
    char *error;
} OrderJob;

static void order_job_free(OrderJob *j)
{
    g_free(j->path); g_free(j->order_id);
    if (j->has_cfg) craft_config_free(&j->cfg);
    g_free(j->edges);
    if (j->has_detail) craft_order_detail_free(&j->detail);
    g_free(j->features); g_free(j->history); g_free(j->error);
    g_free(j);
}

static void order_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    craft_background_thread();
    OrderJob *j = data;
    craft_store *st = NULL;
    craft_error err = {0};
    if (g_atomic_int_get(j->current) != j->gen) { /* superseded before it began */
        g_task_return_boolean(task, FALSE);
        return;
    }
    if (craft_store_open(&st, j->path, CRAFT_STORE_READONLY, &err) != CRAFT_OK ||
        craft_store_order_get(st, j->order_id, j->model_id, &j->detail, &err) != CRAFT_OK) {
        j->error = g_strdup(err.msg);
        if (st) craft_store_close(st);
        g_task_return_boolean(task, TRUE);
        return;
    }
    j->has_detail = TRUE;
    if (!g_cancellable_is_cancelled(c)) {
        j->n_journey = craft_journey_parse(craft_kv_get(&j->detail.text, "journey"), j->journey, CRAFT_TIMELINE_MAX);
        j->features = features_markup(&j->detail, j->has_cfg ? &j->cfg : NULL, j->edges);
        j->history = history_text(st, &j->detail);
    }
    craft_store_close(st);
    g_task_return_boolean(task, TRUE);
}

static void set_order_dimmed(CraftWindow *self, gboolean dim)
{
    GtkWidget *parts[] = {GTK_WIDGET(self->bars_area), GTK_WIDGET(self->subset_label), GTK_WIDGET(self->heatmap),
                          GTK_WIDGET(self->rank_label), GTK_WIDGET(self->features_label),
                          GTK_WIDGET(self->journey_area), GTK_WIDGET(self->entities_label),
                          GTK_WIDGET(self->history_label)};
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) gtk_widget_set_opacity(parts[i], dim ? 0.45 : 1.0);
    gtk_widget_set_sensitive(GTK_WIDGET(self->toggles_box), !dim);
    gtk_widget_set_visible(GTK_WIDGET(self->order_spinner), dim);
    gtk_spinner_set_spinning(self->order_spinner, dim);
}

/* A load that takes longer than a glance shows its loading state (quick ones do not flicker). */
static gboolean order_loading_shown(gpointer user)
{
    CraftWindow *self = user;
    self->loading_timer = 0;
    if (self->loading_id)
        set_order_dimmed(self, TRUE);
    return G_SOURCE_REMOVE;
}

static void end_loading(CraftWindow *self)
{
    g_clear_handle_id(&self->loading_timer, g_source_remove);
    g_clear_pointer(&self->loading_id, g_free);
    set_order_dimmed(self, FALSE);
}

/* The order view of self->detail (just read by the worker) on the widgets. */
static void apply_order(CraftWindow *self, OrderJob *j)
{
    const char *order_id = self->detail.order_id;
    char *t = self->detail.has_case
                  ? g_strdup_printf("Order %s · %s", order_id, craft_case_status_label(self->detail.kase.status))
                  : g_strdup_printf("Order %s", order_id);
    gtk_label_set_text(self->order_title, t);
    g_free(t);
    memcpy(self->journey, j->journey, sizeof(craft_journey_event) * (size_t)j->n_journey);
    self->n_journey = j->n_journey;
    build_toggles(self);
    update_subset(self);
    fill_heatmap(self);
    fill_interaction(self); /* the case's top class is known now */
    gtk_label_set_markup(self->features_label, j->features ? j->features : "");
    gtk_label_set_text(self->history_label, j->history ? j->history : "");
    fill_entities(self);
    gtk_widget_queue_draw(GTK_WIDGET(self->journey_area));
    update_highlight(self);
    /* the confirm button names the class a confirmation labels (the case's top class) */
    int top = self->detail.has_case ? self->detail.kase.top_class : -1;
    char *label = top >= 0 && top < self->detail.n_classes
                      ? g_strdup_printf("Confirm %s", self->detail.classes[top]) : g_strdup("Confirm");
    gtk_button_set_label(self->confirm_button, label);
    g_free(label);
}

static void order_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    OrderJob *j = g_task_get_task_data(G_TASK(res));
    g_task_propagate_boolean(G_TASK(res), NULL);
    if (j->gen != self->live_gen)
        return; /* another order was selected meanwhile */
    gint64 t0 = g_get_monotonic_time();
    end_loading(self);
    if (!j->has_detail) {
        show_error(self, j->order_id, j->error ? j->error : "could not be read");
        /* the previous order's view must not stay under this one's title or inputs */
        if (self->has_detail)
            craft_order_detail_free(&self->detail);
        self->has_detail = FALSE;
        self->n_journey = 0;
        self->live_ready = FALSE;
        g_atomic_int_inc(&self->live_gen);
        interaction_reset(self, NULL);
        gtk_label_set_text(self->order_title, "No order selected");
        build_toggles(self);
        update_subset(self);
        craft_heatmap_widget_set_data(self->heatmap, 0, NULL, 0, NULL, NULL, NULL);
        GtkLabel *texts[] = {self->rank_label, self->features_label, self->entities_label, self->history_label};
        for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) gtk_label_set_text(texts[i], "");
        gtk_widget_queue_draw(GTK_WIDGET(self->journey_area));
        return;
    }
    if (self->has_detail)
        craft_order_detail_free(&self->detail);
    self->detail = j->detail; /* moved */
    j->has_detail = FALSE;
    self->has_detail = TRUE;
    apply_order(self, j);
    g_debug("order %s: read in %.1f ms by the worker, shown in %.1f ms on the main thread", j->order_id,
            (t0 - j->started) / 1000.0, (g_get_monotonic_time() - t0) / 1000.0);
}

/* Shows an order: its detail is read by a worker (order_done), its engine inputs by
 * another (inputs_done); NULL clears the view. */
static void show_order(CraftWindow *self, const char *order_id)
{
    gint64 t0 = g_get_monotonic_time();
    g_atomic_int_inc(&self->live_gen);
    self->live_ready = FALSE;
    if (self->order_cancel) {
        g_cancellable_cancel(self->order_cancel);
        g_clear_object(&self->order_cancel);
    }
    interaction_reset(self, self->store_path ? order_id : NULL);
    if (!order_id || !self->store_path) {
        end_loading(self);
        if (self->has_detail)
            craft_order_detail_free(&self->detail);
        self->has_detail = FALSE;
        self->n_journey = 0;
        gtk_label_set_text(self->order_title, "No order selected");
        build_toggles(self);
        update_subset(self);
        return;
    }
    OrderJob *j = g_new0(OrderJob, 1);
    j->path = g_strdup(self->store_path);
    j->order_id = g_strdup(order_id);
    j->model_id = self->model_id;
    j->gen = self->live_gen;
    j->current = &self->live_gen;
    j->started = t0;
    if (self->model) {
        craft_error err = {0};
        j->has_cfg = craft_config_copy(&j->cfg, &self->model->cfg, &err) == CRAFT_OK;
        int tab = self->model->cfg.tabular;
        if (j->has_cfg && tab >= 0 && self->model->w.embed[tab].edges)
            j->edges = g_memdup2(self->model->w.embed[tab].edges, sizeof(float) * (size_t)self->model->cfg.modalities[tab].n_features *
                                                                     (size_t)(self->model->cfg.bins + 1));
    }
    /* the loading state: the title names the order at once; the old view dims if it takes a while */
    g_free(self->loading_id);
    self->loading_id = g_strdup(order_id);
    char *t = g_strdup_printf("Order %s · loading…", order_id);
    gtk_label_set_text(self->order_title, t);
    g_free(t);
    if (!self->has_detail) {
        gtk_label_set_text(self->subset_label, "Reading this order's scores and explanation…");
        gtk_label_set_text(self->features_label, "Reading this order's features…");
        gtk_label_set_text(self->entities_label, "Reading this order's entities…");
        gtk_label_set_text(self->history_label, "Reading this order's case history…");
    }
    if (!self->loading_timer)
        self->loading_timer = g_timeout_add(self->has_detail ? 120 : 0, order_loading_shown, self);
    self->order_cancel = g_cancellable_new();
    GTask *task = g_task_new(self, self->order_cancel, order_done, NULL);
    g_task_set_task_data(task, j, (GDestroyNotify)order_job_free);
    g_task_run_in_thread(task, order_thread);
    g_object_unref(task);
    load_inputs(self, order_id);
    g_debug("show_order %s: %.1f ms on the main thread (reading in a worker)", order_id, (g_get_monotonic_time() - t0) / 1000.0);
}

static void on_selection(GtkSingleSelection *sel, GParamSpec *p, CraftWindow *self);

/* The selected row was a placeholder; now it is read (the list keeps the same item). */
static void on_selected_filled(CraftQueueItem *item, CraftWindow *self)
{
    g_signal_handlers_disconnect_by_func(item, on_selected_filled, self);
    if (gtk_single_selection_get_selected_item(self->selection) == item)
        on_selection(self->selection, NULL, self);
}

static void on_selection(GtkSingleSelection *sel, GParamSpec *p, CraftWindow *self)
{
    CraftQueueItem *item = gtk_single_selection_get_selected_item(sel);
    if (item && craft_queue_item_is_placeholder(item)) { /* its page is on its way: shown when it is in */
        g_signal_handlers_disconnect_by_func(item, on_selected_filled, self);
        g_signal_connect_object(item, "filled", G_CALLBACK(on_selected_filled), self, 0);
        return;
    }
    show_order(self, item ? craft_queue_item_get_order_id(item) : NULL);
}

/* ------------------------------------------------------------------ queue */

static void load_score_space(CraftWindow *self);

/* A GtkSingleSelection whose model changes while an item is selected looks for that
 * item among all the new items (fetching every page of a large queue); so the
 * queue changes with nothing selected, and autoselect picks row 0 after. (Taking
 * the model away instead would make the list drop and rebuild all its rows twice.) */
static void detach_selection(CraftWindow *self)
{
    g_signal_handlers_block_by_func(self->selection, on_selection, self);
    gtk_single_selection_set_autoselect(self->selection, FALSE);
    gtk_single_selection_set_selected(self->selection, GTK_INVALID_LIST_POSITION);
    g_signal_handlers_unblock_by_func(self->selection, on_selection, self);
}

static void attach_selection(CraftWindow *self)
{
    gtk_single_selection_set_autoselect(self->selection, TRUE);
    if (gtk_single_selection_get_selected(self->selection) == GTK_INVALID_LIST_POSITION &&
        g_list_model_get_n_items(G_LIST_MODEL(self->queue)) > 0)
        gtk_single_selection_set_selected(self->selection, 0);
}

static void update_counts(CraftWindow *self)
{
    const craft_queue_counts *c = craft_queue_model_get_counts(self->queue);
    GString *s = g_string_new(NULL);
    if (craft_queue_model_is_selection(self->queue))
        g_string_append(s, "Score-space selection (change a filter to return) · ");
    g_string_append_printf(s, "%'" G_GINT64_FORMAT " orders · %'" G_GINT64_FORMAT " flagged", c->total,
                           c->total - c->no_case);
    for (int st = 0; st < CRAFT_CASE_N_STATUS; st++)
        if (c->status[st])
            g_string_append_printf(s, " · %s %'" G_GINT64_FORMAT, craft_case_status_label(st), c->status[st]);
    gtk_label_set_text(self->counts_label, s->str);
    g_string_free(s, TRUE);
}

/* The queue query the filters describe (q.search points into the search entry). */
static void fill_queue_query(CraftWindow *self, craft_queue_query *q_out)
{
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
    *q_out = q;
}

/* Shows a queue snapshot read by a worker (taken; NULL: the read failed with error,
 * the queue shows nothing). select_pos: the row to select after (the decided case's
 * place), or GTK_INVALID_LIST_POSITION for the first row. */
static void show_queue(CraftWindow *self, CraftQueueSnapshot *snap, GError *error, guint select_pos)
{
    gint64 t0 = g_get_monotonic_time();
    if (!snap) {
        show_error(self, "Case queue", error->message);
        snap = craft_queue_snapshot_new_query(NULL);
    }
    if (select_pos == GTK_INVALID_LIST_POSITION) {
        detach_selection(self);
        craft_queue_model_apply(self->queue, self->store, snap);
        attach_selection(self);
    } else { /* the queue as it is now, then one selection: the given row */
        g_signal_handlers_block_by_func(self->selection, on_selection, self);
        craft_queue_model_apply(self->queue, self->store, snap);
        guint n = g_list_model_get_n_items(G_LIST_MODEL(self->queue));
        if (n > 0)
            gtk_single_selection_set_selected(self->selection, MIN(select_pos, n - 1));
        g_signal_handlers_unblock_by_func(self->selection, on_selection, self);
        on_selection(self->selection, NULL, self);
    }
    update_counts(self);
    g_debug("  queue shown: %.1f ms on the main thread", (g_get_monotonic_time() - t0) / 1000.0);
}

typedef struct { CraftWindow *self; guint number; gint64 asked; } QueueRead;

/* A queue read is in: shown when it is the newest asked for and the window is still
 * there (snap is taken either way). */
static gboolean queue_read_in(const QueueRead *r, CraftQueueSnapshot *snap, GError *error, const char *what)
{
    CraftWindow *self = r->self;
    if (self->disposed || r->number != self->queue_asked) { /* the window closed, or a newer read follows */
        craft_queue_snapshot_free(snap);
        return FALSE;
    }
    g_debug("  %s read by a worker in %.1f ms", what, (g_get_monotonic_time() - r->asked) / 1000.0);
    self->queue_shown = r->number;
    show_queue(self, snap, error, GTK_INVALID_LIST_POSITION);
    return TRUE;
}

static void queue_read_done(GObject *src, GAsyncResult *res, gpointer user)
{
    QueueRead *r = user;
    GError *error = NULL;
    queue_read_in(r, craft_queue_snapshot_read_finish(res, &error), error, "queue");
    g_clear_error(&error);
    g_object_unref(r->self);
    g_free(r);
}

/* Reads the queue the filters describe in a worker; the rows shown stay until it is read. */
static void refresh_queue(CraftWindow *self)
{
    if (!self->store)
        return;
    craft_queue_query q;
    fill_queue_query(self, &q);
    QueueRead *r = g_new0(QueueRead, 1);
    r->self = g_object_ref(self);
    r->number = ++self->queue_asked;
    r->asked = g_get_monotonic_time();
    craft_queue_snapshot_read_async(craft_queue_snapshot_new_query(&q), self->store_path, NULL, queue_read_done, r);
    guint cls = gtk_drop_down_get_selected(self->class_filter);
    int want = cls == 0 || cls == GTK_INVALID_LIST_POSITION ? 0 : (int)cls - 1;
    if (self->model && want != self->space_cls && want < self->model->cfg.n_classes)
        load_score_space(self);
}

gboolean craft_window_queue_current(CraftWindow *self)
{
    return self->queue_shown == self->queue_asked && craft_queue_model_get_settled(self->queue);
}

static void on_filter_changed(gpointer w, GParamSpec *p, CraftWindow *self)
{
    refresh_queue(self);
    fill_interaction(self); /* the class filter's class is the one its interaction shows */
}
static void on_search_changed(GtkSearchEntry *e, CraftWindow *self) { refresh_queue(self); }

static void bind_column(GtkSignalListItemFactory *f, GtkListItem *li, gpointer column);

/* A placeholder row was read: its cell shows it (the row widgets stay). */
static void on_row_filled(CraftQueueItem *item, GtkListItem *li)
{
    bind_column(NULL, li, g_object_get_data(G_OBJECT(li), "column"));
}

static void bind_column(GtkSignalListItemFactory *f, GtkListItem *li, gpointer column)
{
    CraftQueueItem *item = gtk_list_item_get_item(li);
    GtkLabel *label = GTK_LABEL(gtk_list_item_get_child(li));
    char buf[64];
    if (f && craft_queue_item_is_placeholder(item)) { /* bound, not re-shown: listen until it is read */
        g_object_set_data(G_OBJECT(li), "column", column);
        gulong id = g_signal_connect(item, "filled", G_CALLBACK(on_row_filled), li);
        g_object_set_data(G_OBJECT(li), "filled-handler", GSIZE_TO_POINTER(id));
    }
    switch (GPOINTER_TO_INT(column)) {
    case 0:
        gtk_label_set_text(label, craft_queue_item_is_placeholder(item) ? "loading…" : craft_queue_item_get_order_id(item));
        break;
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

static void unbind_column(GtkSignalListItemFactory *f, GtkListItem *li, gpointer column)
{
    gulong id = GPOINTER_TO_SIZE(g_object_get_data(G_OBJECT(li), "filled-handler"));
    if (id) {
        g_signal_handler_disconnect(gtk_list_item_get_item(li), id);
        g_object_set_data(G_OBJECT(li), "filled-handler", NULL);
    }
}

static void setup_column(GtkSignalListItemFactory *f, GtkListItem *li, gpointer column)
{
    GtkWidget *l = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(l), GPOINTER_TO_INT(column) == 2 ? 1 : 0);
    gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
    gtk_list_item_set_child(li, l);
}

static void setup_queue_view(CraftWindow *self)
{
    static const char *titles[] = {"Order", "Top class", "Score", "Status"};
    for (int c = 0; c < 4; c++) {
        GtkListItemFactory *f = gtk_signal_list_item_factory_new();
        g_signal_connect(f, "setup", G_CALLBACK(setup_column), GINT_TO_POINTER(c));
        g_signal_connect(f, "bind", G_CALLBACK(bind_column), GINT_TO_POINTER(c));
        g_signal_connect(f, "unbind", G_CALLBACK(unbind_column), GINT_TO_POINTER(c));
        GtkColumnViewColumn *col = gtk_column_view_column_new(titles[c], f);
        gtk_column_view_column_set_expand(col, c == 0);
        /* widths for the longest values ("Confirmed defect"), so no column is clipped at
         * the pane's edge whichever rows happen to be shown first */
        static const int widths[] = {-1, 84, 64, 132};
        if (widths[c] > 0)
            gtk_column_view_column_set_fixed_width(col, widths[c]);
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

/* The class filter's choices: the model's classes (the queue's scores are its). */
static void set_classes(CraftWindow *self)
{
    GtkStringList *l = gtk_string_list_new((const char *[]){"Any class", NULL});
    for (int k = 0; self->model && k < self->model->cfg.n_classes; k++)
        gtk_string_list_append(l, self->model->cfg.classes[k]);
    gtk_drop_down_set_model(self->class_filter, G_LIST_MODEL(l));
    g_object_unref(l);
}

/* ------------------------------------------------------------ score space */

typedef struct {
    char *path;
    int64_t model_id;
    int cls;
    size_t n;
    float *x, *y;
    uint8_t *cat;
    int64_t *ids;
    craft_space_point *by_order;        /* the points sorted by order id, for selections */
    double seconds;
} SpaceJob;

static void space_job_free(SpaceJob *j)
{
    g_free(j->path); g_free(j->x); g_free(j->y); g_free(j->cat); g_free(j->ids); free(j->by_order); g_free(j);
}

static int cmp_point_order(const void *a, const void *b)
{
    int64_t x = ((const craft_space_point *)a)->order, y = ((const craft_space_point *)b)->order;
    return (x > y) - (x < y);
}

/* orders without a case: the palette's grey (its yellow, after the six statuses, is
 * unreadable on a light background and would paint most of the space) */
#define SPACE_NO_CASE 7

/* Worker: its own store connection and one bulk query; x = backbone-only score,
 * y = full-model score of the chosen class, category = case status (or no case). */
static void space_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    craft_background_thread();
    SpaceJob *j = data;
    craft_store *s = NULL;
    craft_error err = {0};
    double t0 = craft_now();
    if (craft_store_open(&s, j->path, CRAFT_STORE_READONLY, &err) ||
        craft_store_score_space(s, j->model_id, j->cls, &j->by_order, &j->n, &err)) {
        if (s) craft_store_close(s);
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    craft_store_close(s);
    j->x = g_new(float, j->n ? j->n : 1); j->y = g_new(float, j->n ? j->n : 1);
    j->cat = g_new(uint8_t, j->n ? j->n : 1); j->ids = g_new(int64_t, j->n ? j->n : 1);
    for (size_t i = 0; i < j->n; i++) {
        const craft_space_point *p = &j->by_order[i];
        j->x[i] = p->backbone;
        j->y[i] = p->full;
        j->cat[i] = p->status >= 0 && p->status < CRAFT_CASE_N_STATUS ? (uint8_t)p->status : SPACE_NO_CASE;
        j->ids[i] = p->order;
    }
    qsort(j->by_order, j->n, sizeof *j->by_order, cmp_point_order);
    j->seconds = craft_now() - t0;
    g_task_return_boolean(task, TRUE);
}

static void space_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    GError *error = NULL;
    SpaceJob *j = g_task_get_task_data(G_TASK(res));
    if (self->disposed)
        return; /* the window closed while the worker read */
    if (!g_task_propagate_boolean(G_TASK(res), &error)) {
        show_error(self, "Score space", error->message);
        g_error_free(error);
        return;
    }
    if (j->model_id != self->model_id || j->cls != self->space_cls)
        return; /* superseded */
    craft_scatter_widget_take_points(self->scatter, j->n, j->x, j->y, j->cat, j->ids);
    j->x = j->y = NULL; j->cat = NULL; j->ids = NULL;
    g_clear_pointer(&self->space_points, g_bytes_unref);
    self->space_points = g_bytes_new_take(j->by_order, j->n * sizeof *j->by_order);
    self->n_space_points = j->n;
    self->space_seconds = j->seconds;
    j->by_order = NULL;
    update_highlight(self);
}

static void load_score_space(CraftWindow *self)
{
    if (!self->model_id || !self->model)
        return;
    guint cls = gtk_drop_down_get_selected(self->class_filter);
    self->space_cls = cls == 0 || cls == GTK_INVALID_LIST_POSITION ? 0 : (int)cls - 1;
    if (self->space_cls >= self->model->cfg.n_classes)
        self->space_cls = 0;
    char *t = g_strdup_printf("Score space of %s: backbone alone (x) against the full model (y)",
                              self->model->cfg.classes[self->space_cls]);
    gtk_label_set_text(self->space_label, t);
    g_free(t);
    SpaceJob *j = g_new0(SpaceJob, 1);
    j->path = g_strdup(self->store_path);
    j->model_id = self->model_id;
    j->cls = self->space_cls;
    GTask *task = g_task_new(self, NULL, space_done, NULL);
    g_task_set_task_data(task, j, (GDestroyNotify)space_job_free);
    g_task_run_in_thread(task, space_thread);
    g_object_unref(task);
}

static int cmp_by_full_desc(const void *a, const void *b)
{
    float x = ((const craft_space_point *)a)->full, y = ((const craft_space_point *)b)->full;
    return (x < y) - (x > y);
}

/* A score-space selection made into the queue by a worker: the chosen orders' points
 * looked up, highest full score first, counted per status, and the queue's first
 * page read (a rectangle over 1,000,000 points took 0.6 s on the main thread). */
typedef struct {
    QueueRead read;
    int cls;
    char *path;
    int64_t model_id;
    int64_t *chosen;
    size_t n_chosen, n;
    GBytes *points;
} SelectionRead;

static void selection_read_free(SelectionRead *r)
{
    g_free(r->path);
    g_free(r->chosen);
    g_bytes_unref(r->points);
    g_object_unref(r->read.self);
    g_free(r);
}

static void selection_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    craft_background_thread();
    SelectionRead *r = data;
    gsize size = 0;
    const craft_space_point *all = g_bytes_get_data(r->points, &size);
    size_t n_all = size / sizeof *all, m = 0;
    craft_space_point *pts = g_new(craft_space_point, r->n_chosen ? r->n_chosen : 1);
    for (size_t i = 0; i < r->n_chosen; i++) {
        craft_space_point key = {.order = r->chosen[i]};
        const craft_space_point *p = bsearch(&key, all, n_all, sizeof key, cmp_point_order);
        if (p) pts[m++] = *p;
    }
    qsort(pts, m, sizeof *pts, cmp_by_full_desc);
    craft_queue_counts c = {0};
    int64_t *order_ids = g_new(int64_t, m ? m : 1);
    for (size_t i = 0; i < m; i++) {
        order_ids[i] = pts[i].order;
        if (pts[i].status >= 0) c.status[pts[i].status]++;
        else c.no_case++;
    }
    c.total = (int64_t)m;
    r->n = m;
    g_free(pts);
    CraftQueueSnapshot *snap = craft_queue_snapshot_new_orders(r->model_id, order_ids, (guint)m, &c);
    g_free(order_ids);
    GError *error = NULL;
    if (craft_queue_snapshot_read_from(snap, r->path, &error)) {
        g_task_return_pointer(task, snap, (GDestroyNotify)craft_queue_snapshot_free);
    } else {
        craft_queue_snapshot_free(snap);
        g_task_return_error(task, error);
    }
}

static void selection_read_done(GObject *src, GAsyncResult *res, gpointer user)
{
    SelectionRead *r = user;
    CraftWindow *self = r->read.self;
    GError *error = NULL;
    CraftQueueSnapshot *snap = g_task_propagate_pointer(G_TASK(res), &error);
    gboolean ok = snap != NULL;
    if (queue_read_in(&r->read, snap, error, "score-space selection") && ok && self->model &&
        r->cls < self->model->cfg.n_classes) {
        char *t = g_strdup_printf("The queue shows the %zu orders selected in the score space of %s", r->n,
                                  self->model->cfg.classes[r->cls]);
        craft_window_toast(self, t);
        g_free(t);
    }
    g_clear_error(&error);
    selection_read_free(r);
}

/* A rectangle in the score space becomes the queue: its orders, highest full score first. */
static void on_scatter_selection(CraftScatterWidget *w, guint64 n_sel, CraftWindow *self)
{
    gint64 t0 = g_get_monotonic_time();
    size_t n = 0;
    const int64_t *ids = craft_scatter_widget_get_selection(w, &n);
    if (!self->store || n == 0 || !self->space_points) {
        craft_window_toast(self, "No orders in the selected rectangle");
        return;
    }
    SelectionRead *r = g_new0(SelectionRead, 1);
    r->read.self = g_object_ref(self);
    r->read.number = ++self->queue_asked;
    r->read.asked = g_get_monotonic_time();
    r->cls = self->space_cls;
    r->path = g_strdup(self->store_path);
    r->model_id = self->model_id;
    r->chosen = g_memdup2(ids, n * sizeof *ids);
    r->n_chosen = n;
    r->points = g_bytes_ref(self->space_points);
    GTask *task = g_task_new(NULL, NULL, selection_read_done, r);
    g_task_set_task_data(task, r, NULL);
    g_task_run_in_thread(task, selection_thread);
    g_object_unref(task);
    g_debug("score-space selection of %zu orders: %.1f ms on the main thread", n, (g_get_monotonic_time() - t0) / 1000.0);
}

gboolean craft_window_select_space_rect(CraftWindow *self, double ax, double ay, double bx, double by)
{
    if (craft_scatter_widget_is_busy(self->scatter) || self->n_space_points == 0)
        return FALSE;
    craft_scatter_widget_select_rect(self->scatter, ax, ay, bx, by);
    return TRUE;
}

/* ------------------------------------------------------------------ model */

static void markup_row(GString *s, const char *name, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void markup_row(GString *s, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *v = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *e = g_markup_escape_text(v, -1);
    g_string_append_printf(s, "<b>%s</b>  %s\n", name, e);
    g_free(e);
    g_free(v);
}

static char *format_time(double t)
{
    if (t <= 0) return g_strdup("unknown");
    GDateTime *d = g_date_time_new_from_unix_local((gint64)t);
    char *r = g_date_time_format(d, "%Y-%m-%d %H:%M");
    g_date_time_unref(d);
    return r;
}

/* The training record of the checkpoint's metadata: an object, or a JSON string of one. */
static cJSON *training_record(const craft_model *m, cJSON **root)
{
    *root = m->metadata_json ? cJSON_Parse(m->metadata_json) : NULL;
    cJSON *t = *root ? cJSON_GetObjectItemCaseSensitive(*root, "craft.training") : NULL;
    if (cJSON_IsString(t)) {
        cJSON *inner = cJSON_Parse(t->valuestring);
        if (inner) { cJSON_AddItemToObject(*root, "craft.training.parsed", inner); return inner; }
        return NULL;
    }
    return cJSON_IsObject(t) ? t : NULL;
}

typedef struct { char *path; int64_t model_id; craft_config cfg; char *markup, *record; } SubsetJob;

static void subset_job_free(SubsetJob *j)
{
    g_free(j->path); craft_config_free(&j->cfg); g_free(j->markup); g_free(j->record); g_free(j);
}

/* The store's record of a model (file, when registered and trained, metrics) as
 * markup rows: the models table keeps each checkpoint's blob before these columns,
 * so it is read by the worker. */
static char *model_record(craft_store *st, int64_t model_id)
{
    GString *s = g_string_new(NULL);
    craft_model_info *info = NULL;
    int n = 0;
    craft_error err = {0};
    if (craft_store_models(st, &info, &n, &err) == CRAFT_OK) {
        for (int i = 0; i < n; i++) {
            if (info[i].id != model_id) continue;
            char *added = format_time(info[i].added), *trained = format_time(info[i].trained);
            markup_row(s, "File", "%s", info[i].path ? info[i].path : "(stored in the case store)");
            markup_row(s, "Registered", "%s", added);
            if (info[i].trained > 0) markup_row(s, "Trained", "%s", trained);
            if (info[i].metrics_json) markup_row(s, "Metrics", "%s", info[i].metrics_json);
            g_free(added);
            g_free(trained);
        }
        craft_model_info_free(info, n);
    } else {
        markup_row(s, "Record", "unavailable: %s", err.msg);
    }
    return g_string_free(s, FALSE);
}

/* Worker: macro PR-AUC and ROC-AUC of every stored modality subset over the
 * store's labelled orders (the predictions the engine stored; craft metrics). */
static void subset_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    craft_background_thread();
    SubsetJob *j = data;
    craft_store *s = NULL;
    craft_error err = {0};
    if (craft_store_open(&s, j->path, CRAFT_STORE_READONLY, &err)) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    j->record = model_record(s, j->model_id);
    const craft_config *cfg = &j->cfg;
    int aux[CRAFT_MAX_MODALITIES], A = 0;
    for (int m = 0; m < cfg->n_modalities; m++)
        if (m != cfg->backbone) aux[A++] = m;
    GString *out = g_string_new("<b>Modality subsets</b> (this store's labelled orders, stored predictions)\n<tt>");
    g_string_append_printf(out, "  %-28s %8s %10s %10s\n", "modalities", "orders", "PR-AUC", "ROC-AUC");
    int rows = 0;
    for (int r = 0; r < (1 << A); r++) {
        uint32_t off = 0;
        for (int a = 0; a < A; a++)
            if (r & (1 << a)) off |= 1u << aux[a];
        float *sc = NULL, *lb = NULL;
        int n = 0, K = 0;
        if (craft_store_labelled_predictions(s, j->model_id, off, &sc, &lb, &n, &K, &err) || n == 0) {
            free(sc); free(lb);
            continue;
        }
        GString *name = g_string_new(NULL);
        for (int m = 0; m < cfg->n_modalities; m++)
            if (!(off & (1u << m))) g_string_append_printf(name, "%s%s", name->len ? "+" : "", cfg->modalities[m].name);
        double ap = craft_macro_pr_auc(sc, lb, n, K), roc = craft_macro_roc_auc(sc, lb, n, K);
        char *e = g_markup_escape_text(name->str, -1);
        g_string_append_printf(out, "  %-28s %8d %10.4f %10.4f\n", e, n, ap, roc);
        g_free(e);
        g_string_free(name, TRUE);
        free(sc); free(lb);
        rows++;
    }
    g_string_append(out, "</tt>");
    craft_store_close(s);
    if (!rows) {
        g_string_assign(out, "<i>No labelled orders with stored predictions: the subset table needs labels "
                             "(imported, or from decisions) and a scoring run with subsets.</i>");
    }
    j->markup = g_string_free(out, FALSE);
    g_task_return_boolean(task, TRUE);
}

static void fill_model(CraftWindow *self);

static void subset_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    SubsetJob *j = g_task_get_task_data(G_TASK(res));
    GError *error = NULL;
    if (self->disposed)
        return;
    if (!g_task_propagate_boolean(G_TASK(res), &error)) {
        show_error(self, "Subset table", error->message);
        g_error_free(error);
        return;
    }
    if (j->model_id != self->model_id)
        return;
    g_free(self->subset_table);
    self->subset_table = j->markup;
    j->markup = NULL;
    g_free(self->model_record);
    self->model_record = j->record;
    j->record = NULL;
    fill_model(self);
}

static void load_subset_table(CraftWindow *self)
{
    SubsetJob *j = g_new0(SubsetJob, 1);
    craft_error err = {0};
    if (!self->model || craft_config_copy(&j->cfg, &self->model->cfg, &err)) {
        subset_job_free(j);
        return;
    }
    j->path = g_strdup(self->store_path);
    j->model_id = self->model_id;
    GTask *t = g_task_new(self, NULL, subset_done, NULL);
    g_task_set_task_data(t, j, (GDestroyNotify)subset_job_free);
    g_task_run_in_thread(t, subset_thread);
    g_object_unref(t);
}

static void fill_model(CraftWindow *self)
{
    GString *s = g_string_new(NULL);
    if (!self->model) {
        g_string_append(s, "No model has scored this store yet. Use <b>Score</b> to choose a model file, or <b>Train</b> "
                           "to train one from the store's labelled orders.");
        gtk_label_set_markup(self->model_label, s->str);
        g_string_free(s, TRUE);
        return;
    }
    const craft_model *m = self->model;
    const craft_config *cfg = &m->cfg;
    const char *warn = g_getenv("CRAFTDESK_MODEL_WARNING");
    if (warn && *warn) {
        char *e = g_markup_escape_text(warn, -1);
        g_string_append_printf(s, "<span foreground=\"#c01c28\" weight=\"bold\">⚠ %s</span>\n\n", e);
        g_free(e);
    }
    g_string_append(s, "<big><b>Model in use</b></big>\n");
    markup_row(s, "SHA-256", "%s", m->sha256);
    if (self->model_record)
        g_string_append(s, self->model_record);
    else
        g_string_append(s, "<i>Reading the store's record of this model and its subset table…</i>\n");
    markup_row(s, "Task", "%s, %d classes", cfg->task == CRAFT_MULTICLASS ? "multiclass" : "multilabel", cfg->n_classes);
    GString *cl = g_string_new(NULL);
    for (int k = 0; k < cfg->n_classes; k++) g_string_append_printf(cl, "%s%s", k ? ", " : "", cfg->classes[k]);
    markup_row(s, "Classes", "%s", cl->str);
    g_string_free(cl, TRUE);
    markup_row(s, "Architecture", "d_model %d, %d heads, %d layer%s, top-k %d, %d bins, %zu parameters", cfg->d_model,
               cfg->heads, cfg->layers, cfg->layers == 1 ? "" : "s", cfg->topk, cfg->bins, craft_model_param_count(m));
    g_string_append(s, "\n<b>Modalities</b>\n<tt>");
    for (int i = 0; i < cfg->n_modalities; i++) {
        const craft_modality *mod = &cfg->modalities[i];
        char *line = mod->kind == CRAFT_TABULAR
                         ? g_strdup_printf("  %-8s tabular, %d features%s", mod->name, mod->n_features,
                                           i == cfg->backbone ? "  (backbone)" : "")
                         : g_strdup_printf("  %-8s embedding, up to %d x %d%s", mod->name, mod->tokens, mod->dim,
                                           i == cfg->backbone ? "  (backbone)" : "");
        char *e = g_markup_escape_text(line, -1);
        g_string_append_printf(s, "%s\n", e);
        g_free(e);
        g_free(line);
    }
    g_string_append(s, "</tt>");
    cJSON *root = NULL, *t = training_record(m, &root);
    if (t) {
        g_string_append(s, "\n<b>Training</b> (from the checkpoint)\n");
        const char *keys[][2] = {{"trainer", "Trainer"}, {"epoch", "Best epoch"}, {"val_macro_pr_auc", "Validation macro PR-AUC"},
                                 {"val_macro_roc_auc", "Validation macro ROC-AUC"}, {"n_train", "Training orders"},
                                 {"n_val", "Validation orders"}, {"train_loss_total", "Training loss"},
                                 {"samples_per_s", "Samples per second"}};
        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, keys[i][0]);
            if (cJSON_IsString(v)) markup_row(s, keys[i][1], "%s", v->valuestring);
            else if (cJSON_IsNumber(v) && v->valuedouble >= 0) markup_row(s, keys[i][1], "%.6g", v->valuedouble);
        }
        const cJSON *rho = cJSON_GetObjectItemCaseSensitive(t, "rho");
        if (cJSON_IsArray(rho)) {
            g_string_append(s, "\n<b>Backbone selection</b> (rho = log2(tokens) x normalized probe PR-AUC)\n<tt>");
            g_string_append_printf(s, "  %-10s %7s %16s %8s\n", "modality", "tokens", "probe PR-AUC", "rho");
            const cJSON *r;
            cJSON_ArrayForEach(r, rho) {
                const cJSON *name = cJSON_GetObjectItem(r, "modality"), *tok = cJSON_GetObjectItem(r, "tokens"),
                            *ap = cJSON_GetObjectItem(r, "probe_val_pr_auc"), *rv = cJSON_GetObjectItem(r, "rho");
                char *e = g_markup_escape_text(cJSON_IsString(name) ? name->valuestring : "?", -1);
                g_string_append_printf(s, "  %-10s %7d %16.4f %8.4f\n", e, cJSON_IsNumber(tok) ? tok->valueint : 0,
                                       cJSON_IsNumber(ap) ? ap->valuedouble : NAN, cJSON_IsNumber(rv) ? rv->valuedouble : NAN);
                g_free(e);
            }
            g_string_append(s, "</tt>");
        }
    } else {
        g_string_append(s, "\n<i>The checkpoint carries no training record (it was not made by craft train).</i>\n");
    }
    cJSON_Delete(root);
    if (self->subset_table) {
        g_string_append(s, "\n");
        g_string_append(s, self->subset_table);
    }
    gtk_label_set_markup(self->model_label, s->str);
    g_string_free(s, TRUE);
}

/* ------------------------------------------------------------- open store */

static void drop_model(CraftWindow *self)
{
    self->live_ready = FALSE;
    g_atomic_int_inc(&self->live_gen);
    if (self->live_batch_ok)
        craft_order_batch_free(&self->live_batch);
    self->live_batch_ok = FALSE;
    g_clear_pointer(&self->live_engine, craft_engine_free);
    /* results of this model go; a worker still computing keeps the model until it ends */
    ix_cache_clear(self);
    self->ix_state = IX_NONE;
    if (self->model_box) {
        g_atomic_rc_box_release_full(self->model_box, model_box_clear);
        self->model_box = NULL;
        self->model = NULL;
    }
    g_clear_pointer(&self->model, craft_model_free);
}

static gboolean open_store_timed(CraftWindow *self, const char *path, GError **error);

gboolean craft_window_open_store(CraftWindow *self, const char *path, GError **error)
{
    gint64 t0 = g_get_monotonic_time();
    gboolean ok = open_store_timed(self, path, error);
    g_debug("open_store %s: %.1f ms", path, (g_get_monotonic_time() - t0) / 1000.0);
    return ok;
}

static gboolean prepare_export_chooser(gpointer user);

static gboolean open_store_timed(CraftWindow *self, const char *path, GError **error)
{
    craft_store *s = NULL;
    craft_error err = {0};
    if (craft_store_open(&s, path, CRAFT_STORE_READWRITE, &err) != CRAFT_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return FALSE;
    }
    detach_selection(self);
    craft_queue_model_set_query(self->queue, NULL, NULL, NULL);
    self->queue_shown = ++self->queue_asked; /* a read of the store before is not shown */
    attach_selection(self);
    if (self->has_detail) craft_order_detail_free(&self->detail);
    self->has_detail = FALSE;
    if (self->store) craft_store_close(self->store);
    drop_model(self);
    self->store = s;
    g_free(self->store_path);
    self->store_path = g_strdup(path);
    gint64 tm = g_get_monotonic_time();
    self->model_id = craft_store_latest_model(s);
    if (self->model_id && craft_store_model_load(s, self->model_id, &self->model, &err) != CRAFT_OK)
        show_error(self, "Model", err.msg);
    if (self->model) {
        self->model_box = g_atomic_rc_box_new(craft_model *);
        *self->model_box = self->model;
    }
    g_debug("  model load: %.1f ms", (g_get_monotonic_time() - tm) / 1000.0);
    tm = g_get_monotonic_time();
    /* the toggles' engine: one order at a time, one thread, on the UI thread */
    if (self->model && craft_engine_new(&self->live_engine, self->model, 1, 1, &err) != CRAFT_OK)
        show_error(self, "Re-scoring engine", err.msg);
    g_debug("  engine: %.1f ms", (g_get_monotonic_time() - tm) / 1000.0);
    tm = g_get_monotonic_time();
    char *base = g_path_get_basename(path);
    adw_window_title_set_title(self->title, base);
    /* the model by the first 12 digits of its SHA-256, as the Model view and the audit
     * trail name it; the whole digest on hover */
    char *sub = self->model ? g_strdup_printf("model %.12s", self->model->sha256) : g_strdup("not scored yet");
    adw_window_title_set_subtitle(self->title, sub);
    gtk_widget_set_tooltip_text(GTK_WIDGET(self->title), self->model ? self->model->sha256 : NULL);
    g_free(sub);
    g_free(base);
    gtk_stack_set_visible_child_name(self->main_stack, "store");
    /* the filters are set for the new store without a query each: one query follows */
    g_signal_handlers_block_by_func(self->status_filter, on_filter_changed, self);
    g_signal_handlers_block_by_func(self->class_filter, on_filter_changed, self);
    /* a store without cases opens on every order (highest score first), not on an empty
     * queue (a probe, not counts: the counts of 1,000,000 orders took 30 ms here) */
    if (craft_store_has_cases(s) == 0)
        gtk_drop_down_set_selected(self->status_filter, 0);
    if (gtk_drop_down_get_model(self->class_filter))
        gtk_drop_down_set_selected(self->class_filter, 0);
    g_debug("  counts: %.1f ms", (g_get_monotonic_time() - tm) / 1000.0);
    gint64 t1 = g_get_monotonic_time();
    g_clear_pointer(&self->subset_table, g_free);
    g_clear_pointer(&self->model_record, g_free);
    self->space_cls = -1;               /* refresh_queue reads the score space of the class filter's class */
    refresh_queue(self);
    g_debug("  refresh_queue (a worker reads the counts and page 0): %.1f ms", (g_get_monotonic_time() - t1) / 1000.0);
    set_classes(self);
    g_signal_handlers_unblock_by_func(self->status_filter, on_filter_changed, self);
    g_signal_handlers_unblock_by_func(self->class_filter, on_filter_changed, self);
    if (self->model_id)
        load_subset_table(self);
    tm = g_get_monotonic_time();
    fill_model(self);
    g_debug("  fill_model: %.1f ms", (g_get_monotonic_time() - tm) / 1000.0);
    if (!self->export_chooser && !self->export_chooser_timer)
        self->export_chooser_timer = g_timeout_add_seconds_full(G_PRIORITY_LOW, 2, prepare_export_chooser, self, NULL);
    /* set by tools/run-app when the bundled model is missing and a stand-in scored the sample */
    const char *warn = g_getenv("CRAFTDESK_MODEL_WARNING");
    if (warn && *warn)
        show_error(self, "Model", warn);
    return TRUE;
}

/* -------------------------------------------------------------- decisions */

/* A decision is written by a worker on its own connection (a write waits for the
 * disk); the queue and the view follow when it is stored. */
/* A decision is written by a worker on its own connection (a write waits for the
 * disk), which then reads the queue as it is after it; the queue and the view follow
 * when it is stored. */
typedef struct {
    char *path, *order_id, *note, *actor;
    int64_t case_id;
    int status;
    guint pos;                  /* the decided case's row */
    guint queue_number;         /* the queue read this is (see refresh_queue) */
    CraftQueueSnapshot *queue;  /* the queue after the decision (read when it is stored) */
    GError *queue_error;
    char *error;
} DecideJob;

static void decide_job_free(DecideJob *j)
{
    g_free(j->path); g_free(j->order_id); g_free(j->note); g_free(j->actor); g_free(j->error);
    craft_queue_snapshot_free(j->queue);
    g_clear_error(&j->queue_error);
    g_free(j);
}

static void decide_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    craft_background_thread();
    DecideJob *j = data;
    craft_store *st = NULL;
    craft_error err = {0};
    if (craft_store_open(&st, j->path, CRAFT_STORE_READWRITE, &err) != CRAFT_OK ||
        craft_store_case_decide(st, j->case_id, j->status, NULL, j->actor, j->note, &err) != CRAFT_OK)
        j->error = g_strdup(err.msg);
    else if (!craft_queue_snapshot_read(j->queue, st, &j->queue_error))
        g_clear_pointer(&j->queue, craft_queue_snapshot_free);
    if (st) craft_store_close(st);
    g_task_return_boolean(task, TRUE);
}

static void decide_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    DecideJob *j = g_task_get_task_data(G_TASK(res));
    g_task_propagate_boolean(G_TASK(res), NULL);
    if (self->disposed)
        return; /* stored; the window is gone */
    if (j->error) {
        self->decisions_failed++;
        show_error(self, "Decision not saved", j->error);
        /* the note is not lost: it goes back into the entry unless a new one was typed */
        const char *now = gtk_editable_get_text(GTK_EDITABLE(self->note_entry));
        if (j->note && (!now || !*now)) gtk_editable_set_text(GTK_EDITABLE(self->note_entry), j->note);
        if (j->queue_number == self->queue_asked)
            refresh_queue(self); /* a filter change made while it was tried was left to this read */
        return;
    }
    gint64 t0 = g_get_monotonic_time();
    char *t = g_strdup_printf("%s: %s", j->order_id, craft_case_status_label(j->status));
    craft_window_toast(self, t);
    g_free(t);
    if (j->queue_number == self->queue_asked) {
        self->queue_shown = j->queue_number;
        show_queue(self, g_steal_pointer(&j->queue), j->queue_error, j->pos);
    } else {
        refresh_queue(self); /* the filters changed while it was written: read them again, after it */
    }
    self->decisions_done++;
    g_debug("decision on %s stored; queue and selection: %.1f ms", j->order_id, (g_get_monotonic_time() - t0) / 1000.0);
}

static void decide(CraftWindow *self, int status)
{
    if (self->loading_id) {
        char *t = g_strdup_printf("Order %s is still loading: decide once it shows", self->loading_id);
        craft_window_toast(self, t);
        g_free(t);
        return;
    }
    if (!self->has_detail || !self->detail.has_case) {
        craft_window_toast(self, "This order has no case to decide");
        return;
    }
    const char *note = gtk_editable_get_text(GTK_EDITABLE(self->note_entry));
    DecideJob *j = g_new0(DecideJob, 1);
    j->path = g_strdup(self->store_path);
    j->order_id = g_strdup(self->detail.order_id);
    j->note = note && *note ? g_strdup(note) : NULL;
    j->actor = g_strdup(actor_name());
    j->case_id = self->detail.kase.id;
    j->status = status;
    j->pos = gtk_single_selection_get_selected(self->selection);
    craft_queue_query q;
    fill_queue_query(self, &q);
    j->queue = craft_queue_snapshot_new_query(&q);
    j->queue_number = ++self->queue_asked;
    gtk_editable_set_text(GTK_EDITABLE(self->note_entry), "");
    GTask *task = g_task_new(self, NULL, decide_done, NULL);
    g_task_set_task_data(task, j, (GDestroyNotify)decide_job_free);
    g_task_run_in_thread(task, decide_thread);
    g_object_unref(task);
}

guint craft_window_get_decisions_done(CraftWindow *self) { return self->decisions_done; }
guint craft_window_get_decisions_failed(CraftWindow *self) { return self->decisions_failed; }

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

static void act_show_view(GSimpleAction *a, GVariant *p, gpointer user)
{
    gtk_stack_set_visible_child_name(CRAFT_WINDOW(user)->detail_stack, g_variant_get_string(p, NULL));
}

static void act_space(GSimpleAction *a, GVariant *p, gpointer user)
{
    gtk_stack_set_visible_child_name(CRAFT_WINDOW(user)->detail_stack, "space");
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
    g_mutex_lock(&step_lock);
    self->job_steps_shown = 0;
    g_mutex_unlock(&step_lock);
    g_free(self->job_name);
    self->job_name = g_strdup(name);
    gtk_label_set_text(self->progress_label, name);
    gtk_revealer_set_reveal_child(self->progress_revealer, TRUE);
    self->job_timer = g_timeout_add(100, job_tick, self);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "import")), FALSE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "score")), FALSE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "train")), FALSE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "export-case")), FALSE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "export-selection")), FALSE);
}

static void job_end(CraftWindow *self)
{
    g_clear_handle_id(&self->job_timer, g_source_remove);
    gtk_revealer_set_reveal_child(self->progress_revealer, FALSE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "import")), TRUE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "score")), TRUE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "train")), TRUE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "export-case")), TRUE);
    g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(self), "export-selection")), TRUE);
}

static void act_cancel(GSimpleAction *a, GVariant *p, gpointer user) { CRAFT_WINDOW(user)->job_cancel_flag = 1; }

typedef struct {
    CraftWindow *win;
    char *store, *input;
    craft_model *model;
    char *model_path;
    char *result;
    GString *rejects;                   /* import: "file:line: reason" per rejected row (the first 1000) */
    guint64 n_rejects;
    char *config_json;                  /* train: the architecture to train */
    int epochs;
    guint steps_posted;                 /* train: epoch reports sent to the main thread */
    gboolean then_score;                /* train: score the store with the new model when done */
} Job;

static void job_free(Job *j)
{
    g_free(j->store); g_free(j->input); g_free(j->model_path); g_free(j->result); g_free(j->config_json);
    if (j->rejects) g_string_free(j->rejects, TRUE);
    if (j->model) craft_model_free(j->model);
    g_free(j);
}

static void import_progress(void *user, uint64_t done, uint64_t bytes, uint64_t total, double sec)
{
    Job *j = user;
    if (total) g_atomic_int_set(&j->win->job_done_milli, (gint)(1000.0 * bytes / total));
}

/* Called on the worker for each rejected row: kept for the list shown afterwards. */
static void import_reject(void *user, const char *file, size_t line, const char *reason, const char *row, size_t len)
{
    Job *j = user;
    if (j->n_rejects++ < 1000) {
        char *base = g_path_get_basename(file);
        g_string_append_printf(j->rejects, "%s:%zu: %s\n", base, line, reason);
        g_free(base);
    }
}

static void import_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    craft_background_thread();
    Job *j = data;
    craft_store *s = NULL;
    craft_error err = {0};
    craft_import_stats stats = {0};
    j->rejects = g_string_new(NULL);
    craft_import_options o = {.progress = import_progress, .progress_user = j, .skip_bad = 1,
                              .on_reject = import_reject, .reject_user = j,
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
    craft_background_thread();
    Job *j = data;
    craft_store *s = NULL;
    craft_error err = {0};
    craft_store_score_stats stats = {0};
    craft_store_score_options o = {.explain = 1, .subsets = 1, .flag_threshold = 0.5f, .batch = 64,
                                   .progress = score_progress, .progress_user = j, .cancel = &j->win->job_cancel_flag};
    int rc = craft_store_open(&s, j->store, CRAFT_STORE_READWRITE, &err);
    if (!rc && !j->model) rc = craft_model_load(&j->model, j->model_path, &err);
    if (!rc) rc = craft_store_score(s, j->model, j->model_path, &o, &stats, &err);
    /* orders the model could not take were skipped: say how many, and the first one's reason */
    GString *skipped = g_string_new(NULL);
    if (!rc && stats.failed > 0) {
        craft_score_error *fe = NULL;
        int nfe = 0;
        craft_error ferr = {0};
        g_string_printf(skipped, "; %" G_GUINT64_FORMAT " %s could not be scored", stats.failed,
                        stats.failed == 1 ? "order" : "orders");
        if (craft_store_score_errors(s, stats.model_id, stats.run_id, NULL, 1, &fe, &nfe, &ferr) == CRAFT_OK && nfe > 0)
            g_string_append_printf(skipped, " (%s: %s)", fe[0].order_id, fe[0].reason);
        craft_score_errors_free(fe, nfe);
    }
    if (s) craft_store_close(s);
    if (rc) {
        g_string_free(skipped, TRUE);
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    j->result = g_strdup_printf("Scored %" G_GUINT64_FORMAT " orders: %" G_GUINT64_FORMAT " flagged, %"
                                G_GUINT64_FORMAT " new cases (%.1f s)%s", stats.scored, stats.flagged, stats.new_cases,
                                stats.seconds, skipped->str);
    g_string_free(skipped, TRUE);
    g_task_return_boolean(task, TRUE);
}

static void start_job(CraftWindow *self, const char *name, const char *input, const char *model_path,
                      GTaskThreadFunc fn);
static void open_after_job(CraftWindow *self);

/* The rejected rows of an import, readable and copyable, in a dialog. */
static void show_rejects(CraftWindow *self, Job *j)
{
    char *heading = g_strdup_printf("%" G_GUINT64_FORMAT " rows were rejected", j->n_rejects);
    AdwMessageDialog *d = ADW_MESSAGE_DIALOG(adw_message_dialog_new(GTK_WINDOW(self), heading, NULL));
    g_free(heading);
    adw_message_dialog_format_body(d, "The other rows were imported. Fix these rows and import the file again "
                                      "to add them%s.", j->n_rejects > 1000 ? " (the first 1,000 are listed)" : "");
    GtkWidget *view = gtk_text_view_new();
    gtk_text_view_set_editable(GTK_TEXT_VIEW(view), FALSE);
    gtk_text_view_set_monospace(GTK_TEXT_VIEW(view), TRUE);
    gtk_text_buffer_set_text(gtk_text_view_get_buffer(GTK_TEXT_VIEW(view)), j->rejects->str, -1);
    GtkWidget *sw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), view);
    gtk_scrolled_window_set_min_content_height(GTK_SCROLLED_WINDOW(sw), 240);
    gtk_scrolled_window_set_min_content_width(GTK_SCROLLED_WINDOW(sw), 560);
    adw_message_dialog_set_extra_child(d, sw);
    adw_message_dialog_add_response(d, "close", "_Close");
    gtk_window_present(GTK_WINDOW(d));
}

/* A job's step, shown on the main thread: the progress bar, its label, and the
 * job-progress signal. */
typedef struct {
    CraftWindow *win;                   /* a reference */
    guint index;                        /* 1, 2, ... within the job */
    double fraction;
    char *text;
} JobStep;

/* The worker waits for each step to be shown before it goes on (at most a
 * moment): the user sees every epoch, and a Cancel pressed while epoch N is
 * shown stops the training before epoch N + 1 ends. */
static gboolean job_step_main(gpointer data)
{
    JobStep *st = data;
    if (st->win->job_timer) { /* the job is still running */
        gtk_progress_bar_set_fraction(st->win->progress_bar, st->fraction);
        gtk_label_set_text(st->win->progress_label, st->text);
    }
    g_signal_emit(st->win, window_signals[SIGNAL_JOB_PROGRESS], 0, st->fraction, st->text);
    g_mutex_lock(&step_lock);
    st->win->job_steps_shown = MAX(st->win->job_steps_shown, st->index);
    g_cond_broadcast(&step_shown);
    g_mutex_unlock(&step_lock);
    return G_SOURCE_REMOVE;
}

static void job_step_wait(CraftWindow *win, guint index)
{
    gint64 until = g_get_monotonic_time() + 2 * G_TIME_SPAN_SECOND;
    g_mutex_lock(&step_lock);
    while (win->job_steps_shown < index && !win->job_cancel_flag)
        if (!g_cond_wait_until(&step_shown, &step_lock, until))
            break;
    g_mutex_unlock(&step_lock);
}

static void job_step_free(gpointer data)
{
    JobStep *st = data;
    g_object_unref(st->win);
    g_free(st->text);
    g_free(st);
}

/* The trainer's per-epoch log lines ("epoch N  loss ...  val PR-AUC V ..."): each
 * moves the progress bar and says the epoch and its validation PR-AUC. Called on
 * the worker; the step is shown by the main loop, ahead of the job's end (same
 * priority, queued first). */
static ssize_t train_log_write(void *cookie, const char *buf, size_t size)
{
    Job *j = cookie;
    int epoch = 0;
    for (const char *p = buf; p && p < buf + size; p = memchr(p, '\n', buf + size - p), p = p ? p + 1 : NULL) {
        char line[256]; /* buf is not NUL-terminated: scan a terminated copy of the line */
        const char *end = memchr(p, '\n', buf + size - p);
        size_t len = MIN((size_t)((end ? end : buf + size) - p), sizeof line - 1);
        memcpy(line, p, len);
        line[len] = 0;
        if (sscanf(line, "epoch %d", &epoch) != 1 || j->epochs <= 0)
            continue;
        int milli = MIN(1000, 1000 * epoch / j->epochs);
        g_atomic_int_set(&j->win->job_done_milli, milli);
        const char *val = strstr(line, "PR-AUC");
        double ap = NAN;
        if (val)
            sscanf(val, "PR-AUC %lf", &ap);
        JobStep *st = g_new0(JobStep, 1);
        st->win = g_object_ref(j->win);
        st->index = ++j->steps_posted;
        st->fraction = milli / 1000.0;
        st->text = isnan(ap) ? g_strdup_printf("Training: epoch %d of %d", epoch, j->epochs)
                             : g_strdup_printf("Training: epoch %d of %d, validation PR-AUC %.3f", epoch, j->epochs, ap);
        guint index = st->index;
        g_main_context_invoke_full(NULL, G_PRIORITY_DEFAULT, job_step_main, st, job_step_free);
        job_step_wait(j->win, index);
    }
    return (ssize_t)size;
}

/* Worker: exports the store's labelled orders, trains the architecture of the
 * model in use on them (craft train's library call), writes the checkpoint next
 * to the store. */
static void train_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    craft_background_thread();
    Job *j = data;
    craft_store *s = NULL;
    craft_error err = {0};
    char *dir = g_dir_make_tmp("craftdesk-train-XXXXXX", NULL);
    char *orders = dir ? g_build_filename(dir, "labelled.jsonl", NULL) : NULL;
    uint64_t n = 0;
    int rc = orders ? craft_store_open(&s, j->store, CRAFT_STORE_READONLY, &err)
                    : craft_fail(&err, CRAFT_EIO, "could not make a temporary directory");
    if (!rc) {
        FILE *f = fopen(orders, "w");
        rc = f ? craft_store_export_jsonl(s, 0, 1, f, &n, &err) : craft_fail(&err, CRAFT_EIO, "%s: cannot write", orders);
        if (f && fclose(f) && !rc) rc = craft_fail(&err, CRAFT_EIO, "%s: write failed", orders);
    }
    if (s) craft_store_close(s);
    if (!rc && n < 50)
        rc = craft_fail(&err, CRAFT_EINPUT, "the store has %" G_GUINT64_FORMAT " labelled orders; training needs at "
                        "least 50 (import labelled orders or record decisions)", n);
    craft_trainer_result res = {0};
    if (!rc) {
        craft_trainer_options o;
        craft_trainer_defaults(&o);
        o.input = orders;
        o.config_json = j->config_json;
        o.output = j->model_path;
        o.epochs = j->epochs;
        o.cancel = (volatile sig_atomic_t *)&j->win->job_cancel_flag;
        cookie_io_functions_t io = {.write = train_log_write};
        o.log = fopencookie(j, "w", io);
        if (o.log) setvbuf(o.log, NULL, _IOLBF, 0);
        rc = craft_trainer_run(&o, &res, &err);
        if (o.log) fclose(o.log);
    }
    if (orders) g_unlink(orders);
    if (dir) g_rmdir(dir);
    g_free(orders);
    g_free(dir);
    if (j->win->job_cancel_flag || res.cancelled) {
        /* Cancel undoes: the checkpoint written so far goes, the store is not scored */
        g_unlink(j->model_path);
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                "Training cancelled after %d of %d epochs; no model was kept and the store is unchanged",
                                res.epochs_run, j->epochs);
        return;
    }
    if (!rc && res.best_epoch <= 0)
        rc = craft_fail(&err, CRAFT_EINPUT, "no epoch improved on the validation orders; no model was written");
    if (rc) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    j->result = g_strdup_printf("Trained %s on %d orders: best epoch %d of %d, validation macro PR-AUC %.3f%s",
                                j->model_path, res.n_train, res.best_epoch, res.epochs_run, res.best_val_ap,
                                res.cancelled ? " (cancelled; the best checkpoint was kept)" : "");
    g_task_return_boolean(task, TRUE);
}

static void job_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    Job *j = g_task_get_task_data(G_TASK(res));
    GError *error = NULL;
    job_end(self);
    gboolean ok = g_task_propagate_boolean(G_TASK(res), &error);
    g_free(self->job_message);
    if (!ok && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        self->job_message = g_strdup(error->message);
        craft_window_toast(self, error->message); /* asked for: not an error */
        g_clear_error(&error);
    } else if (!ok) {
        self->job_message = g_strdup_printf("%s: %s", self->job_name, error->message);
        show_error(self, self->job_name, error->message);
        g_clear_error(&error);
    } else {
        self->job_message = g_strdup(j->result);
        craft_window_toast(self, j->result);
    }
    if (j->n_rejects)
        show_rejects(self, j);
    if (j->then_score && ok && j->model_path) {
        open_after_job(self);
        start_job(self, "Scoring orders with the new model", NULL, j->model_path, score_thread);
        return;
    }
    open_after_job(self);
}

static void open_after_job(CraftWindow *self)
{
    GError *e2 = NULL;
    char *path = g_strdup(self->store_path); /* opening replaces (frees) store_path */
    if (!craft_window_open_store(self, path, &e2)) {
        show_error(self, "Reopening the store", e2->message);
        g_error_free(e2);
    }
    g_free(path);
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

static void act_train(GSimpleAction *a, GVariant *p, gpointer user)
{
    CraftWindow *self = user;
    if (!self->store) { craft_window_toast(self, "Open or create a case store first"); return; }
    if (!self->model) {
        craft_window_toast(self, "Score the store with a model first: its architecture is the one trained");
        return;
    }
    Job *j = g_new0(Job, 1);
    j->win = self;
    j->store = g_strdup(self->store_path);
    j->config_json = craft_config_to_json(&self->model->cfg);
    GtkApplication *app = gtk_window_get_application(GTK_WINDOW(self));
    GSettings *settings = app && CRAFT_IS_APPLICATION(app) ? craft_application_get_settings(CRAFT_APPLICATION(app)) : NULL;
    j->epochs = settings ? g_settings_get_int(settings, "train-epochs") : 8;
    j->then_score = TRUE;
    GDateTime *now = g_date_time_new_now_local();
    char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");
    g_date_time_unref(now);
    char *base = g_strdup(self->store_path);
    char *dot = strrchr(base, '.');
    if (dot && !strchr(dot, '/')) *dot = 0;
    j->model_path = g_strdup_printf("%s.model-%s.safetensors", base, stamp);
    g_free(base);
    g_free(stamp);
    job_begin(self, "Training a model on the labelled orders");
    GTask *t = g_task_new(self, NULL, job_done, NULL);
    g_task_set_task_data(t, j, (GDestroyNotify)job_free);
    g_task_run_in_thread(t, train_thread);
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
GtkWidget *craft_window_get_queue_view(CraftWindow *self) { return GTK_WIDGET(self->queue_view); }
const char *craft_window_get_order_id(CraftWindow *self)
{
    return self->has_detail && !self->loading_id ? self->detail.order_id : NULL;
}

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

gboolean craft_window_interaction_ready(CraftWindow *self)
{
    return self->ix_gen == self->live_gen && (self->ix_state == IX_DONE || self->ix_state == IX_FAILED);
}

const char *craft_window_get_interaction_state(CraftWindow *self)
{
    static const char *names[] = {"none", "waiting", "computing", "done", "failed"};
    return names[self->ix_state];
}

const char *craft_window_get_interaction_order(CraftWindow *self)
{
    return self->ix_state == IX_DONE && self->ix_shown ? self->ix_shown->order_id : NULL;
}

int craft_window_get_interaction_class(CraftWindow *self) { return self->ix_state == IX_DONE ? self->ix_class : -1; }

double craft_window_get_interaction(CraftWindow *self, int modality, int feature)
{
    if (self->ix_state != IX_DONE || !self->ix_shown || self->ix_class < 0)
        return NAN;
    const craft_interaction *x = &self->ix_shown->ix;
    return craft_interaction_value(x, craft_interaction_aux_of(x, modality), self->ix_class, feature);
}

char *craft_window_get_interaction_table(CraftWindow *self)
{
    GString *s = g_string_new(NULL);
    for (int row = 0;; row++) {
        GtkWidget *a = gtk_grid_get_child_at(self->interaction_grid, 0, row);
        if (!a) break;
        GtkWidget *b = gtk_grid_get_child_at(self->interaction_grid, 1, row);
        g_string_append(s, gtk_label_get_text(GTK_LABEL(a)));
        if (b && b != a) g_string_append_printf(s, "\t%s", gtk_label_get_text(GTK_LABEL(b)));
        g_string_append_c(s, '\n');
    }
    return g_string_free(s, FALSE);
}

const char *craft_window_get_interaction_text(CraftWindow *self) { return self->ix_text; }

gboolean craft_window_set_class_filter(CraftWindow *self, int k)
{
    GListModel *m = gtk_drop_down_get_model(self->class_filter);
    if (!m || k < -1 || (guint)(k + 1) >= g_list_model_get_n_items(m))
        return FALSE;
    gtk_drop_down_set_selected(self->class_filter, (guint)(k + 1));
    return TRUE;
}
guint craft_window_get_interaction_runs(CraftWindow *self, guint *skipped)
{
    if (skipped) *skipped = self->ix_skipped;
    return self->ix_runs;
}

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

/* One render of the window into a PNG; why it failed otherwise. A widget with a
 * layout pending draws nothing (GtkWidgetPaintable), so this runs right after a paint. */
static gboolean screenshot_now(GtkWidget *w, const char *path, const char **why)
{
    GdkPaintable *paintable = gtk_widget_paintable_new(w);
    int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
    GtkSnapshot *snap = gtk_snapshot_new();
    gdk_paintable_snapshot(paintable, snap, width, height);
    GskRenderNode *node = gtk_snapshot_free_to_node(snap);
    gboolean ok = FALSE;
    *why = "the window drew nothing";
    if (node) {
        GskRenderer *r = gtk_native_get_renderer(GTK_NATIVE(w));
        GdkTexture *tex = r ? gsk_renderer_render_texture(r, node, &GRAPHENE_RECT_INIT(0, 0, width, height)) : NULL;
        ok = tex && gdk_texture_save_to_png(tex, path);
        *why = !r ? "the window has no renderer" : !tex ? "rendering failed" : "the PNG could not be written";
        if (tex) g_object_unref(tex);
        gsk_render_node_unref(node);
    }
    g_object_unref(paintable);
    return ok;
}

typedef struct { GtkWidget *w; const char *path, *why; gboolean done, ok; } Shot;

static void shot_after_paint(GdkFrameClock *clock, Shot *s)
{
    if (!s->done) {
        s->ok = screenshot_now(s->w, s->path, &s->why);
        s->done = TRUE;
    }
}

gboolean craft_window_screenshot(CraftWindow *self, const char *path, GError **error)
{
    GtkWidget *w = GTK_WIDGET(self);
    Shot s = {w, path, NULL, FALSE, FALSE};
    GdkFrameClock *clock = gtk_widget_get_frame_clock(w);
    if (clock) {
        /* the next frame, once laid out and painted (at most a few seconds away) */
        gulong id = g_signal_connect(clock, "after-paint", G_CALLBACK(shot_after_paint), &s);
        gtk_widget_queue_draw(w);
        gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (!s.done && g_get_monotonic_time() < end)
            g_main_context_iteration(NULL, TRUE); /* the frame clock wakes it */
        g_signal_handler_disconnect(clock, id);
    }
    if (!s.done)
        s.ok = screenshot_now(w, path, &s.why);
    if (!s.ok)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "could not write the screenshot %s (%dx%d): %s", path,
                    gtk_widget_get_width(w), gtk_widget_get_height(w), s.why);
    return s.ok;
}

/* ------------------------------------------------------------------ class */

static void export_job_free(ExportJob *j);

static void craft_window_dispose(GObject *o)
{
    CraftWindow *self = CRAFT_WINDOW(o);
    g_clear_handle_id(&self->export_chooser_timer, g_source_remove);
    if (self->export_chooser) {
        g_signal_handlers_disconnect_by_data(self->export_chooser, self);
        gtk_native_dialog_destroy(GTK_NATIVE_DIALOG(self->export_chooser));
        g_clear_object(&self->export_chooser);
    }
    g_clear_pointer(&self->export_chooser_job, export_job_free);
    self->job_cancel_flag = 1;
    /* workers still running finish on a window without widgets: their results are dropped */
    self->disposed = TRUE;
    g_atomic_int_inc(&self->live_gen);
    g_clear_handle_id(&self->job_timer, g_source_remove);
    g_clear_handle_id(&self->export_timer, g_source_remove);
    g_clear_handle_id(&self->loading_timer, g_source_remove);
    /* the interaction worker stops after its current engine run (live_gen changed too) */
    interaction_stop(self);
    g_mutex_lock(&ix_lock);
    g_mutex_unlock(&ix_lock);
    if (self->order_cancel)
        g_cancellable_cancel(self->order_cancel);
    g_clear_object(&self->order_cancel);
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
    drop_model(self);
    if (self->store) craft_store_close(self->store);
    g_free(self->store_path);
    g_clear_pointer(&self->space_points, g_bytes_unref);
    g_free(self->subset_text);
    g_free(self->loading_id);
    g_free(self->subset_table);
    g_free(self->model_record);
    g_free(self->export_message);
    g_free(self->job_name);
    g_free(self->job_message);
    g_ptr_array_unref(self->switches);
    ix_cache_clear(self);
    g_queue_free(self->ix_cache);
    g_free(self->ix_error);
    g_free(self->ix_text);
    G_OBJECT_CLASS(craft_window_parent_class)->finalize(o);
}

static void on_view_toggled(GtkToggleButton *b, CraftWindow *self)
{
    if (gtk_toggle_button_get_active(b))
        gtk_stack_set_visible_child_name(self->detail_stack, g_object_get_data(G_OBJECT(b), "view"));
}

static void on_view_changed(GtkStack *stack, GParamSpec *p, CraftWindow *self)
{
    const char *name = gtk_stack_get_visible_child_name(stack);
    for (GtkWidget *c = gtk_widget_get_first_child(self->detail_switcher); c; c = gtk_widget_get_next_sibling(c))
        if (!g_strcmp0(g_object_get_data(G_OBJECT(c), "view"), name))
            gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(c), TRUE);
}

const char *craft_window_get_order_title(CraftWindow *self) { return gtk_label_get_text(self->order_title); }

/* How many of the order view's tabs show as selected, and the view of the (last) one. */
guint craft_window_get_selected_tabs(CraftWindow *self, const char **view)
{
    guint n = 0;
    *view = NULL;
    for (GtkWidget *c = gtk_widget_get_first_child(self->detail_switcher); c; c = gtk_widget_get_next_sibling(c))
        if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(c)) &&
            (gtk_widget_get_state_flags(c) & GTK_STATE_FLAG_CHECKED)) {
            n++;
            *view = g_object_get_data(G_OBJECT(c), "view");
        }
    return n;
}

/* A row of linked toggle buttons as wide as their titles (a GtkStackSwitcher makes
 * all seven as wide as the widest and overflows the order pane at 1280 px). */
static void build_view_switcher(CraftWindow *self)
{
    GtkToggleButton *first = NULL;
    GListModel *pages = G_LIST_MODEL(gtk_stack_get_pages(self->detail_stack));
    for (guint i = 0; i < g_list_model_get_n_items(pages); i++) {
        GtkStackPage *page = g_list_model_get_item(pages, i);
        GtkWidget *b = gtk_toggle_button_new_with_label(gtk_stack_page_get_title(page));
        g_object_set_data_full(G_OBJECT(b), "view", g_strdup(gtk_stack_page_get_name(page)), g_free);
        if (first) gtk_toggle_button_set_group(GTK_TOGGLE_BUTTON(b), first);
        else { first = GTK_TOGGLE_BUTTON(b); gtk_toggle_button_set_active(first, TRUE); }
        g_signal_connect(b, "toggled", G_CALLBACK(on_view_toggled), self);
        gtk_box_append(GTK_BOX(self->detail_switcher), b);
        g_object_unref(page);
    }
    g_object_unref(pages);
    g_signal_connect(self->detail_stack, "notify::visible-child-name", G_CALLBACK(on_view_changed), self);
}

static void craft_window_class_init(CraftWindowClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    oc->dispose = craft_window_dispose;
    oc->finalize = craft_window_finalize;
    /* a long job's step (a training epoch): fraction done and what it says, on the main thread */
    window_signals[SIGNAL_JOB_PROGRESS] = g_signal_new("job-progress", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                                       NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_DOUBLE, G_TYPE_STRING);
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
    BIND(scatter); BIND(space_label); BIND(model_label); BIND(search_bar); BIND(detail_switcher); BIND(confirm_button);
    BIND(order_spinner); BIND(interaction_title); BIND(interaction_state); BIND(interaction_grid);
    BIND(interaction_spinner);
#undef BIND
}

/* ---------------------------------------------------------------- export */
/* "Export report" on the selected order's case (win.export-case) or on the queue as
 * filtered (win.export-selection): a save dialog, then craft_report_write in a worker
 * with its own store connection; progress and Cancel in the job bar, a toast at the
 * end. CRAFTDESK_EXPORT_PATH names the file instead of the dialog (tests, scripts). */

struct ExportJob {
    CraftWindow *win;
    char *store, *path, *what;          /* what: "O-000123" or "the queue" (for messages) */
    char *order_id;                     /* case export; NULL for the queue */
    craft_queue_query query;            /* queue export; search points to `search` */
    char *search, *description;
    int64_t *rows;                      /* a score-space selection (row ids); NULL for the query */
    int64_t expected;                   /* orders the queue showed (the CSV's progress total) */
    guint n_rows;
    int64_t model_id;
    const char *stage;                  /* the report's current stage (a string literal; g_atomic) */
    craft_report_stats stats;
    craft_error err;
};

static void export_job_free(ExportJob *j)
{
    g_free(j->store); g_free(j->path); g_free(j->what); g_free(j->order_id);
    g_free(j->search); g_free(j->description); g_free(j->rows);
    g_free(j);
}

/* One bar for the whole export: each stage fills its own stretch of it (the PDF is
 * gathered, laid out, then rendered; JSON and Markdown are mostly gathering; the CSV
 * is one stream, whose total, unknown to the store's pager, is the queue's count). */
static void export_progress(void *user, const char *stage, int64_t done, int64_t total)
{
    ExportJob *j = user;
    g_atomic_pointer_set(&j->stage, stage);
    gboolean pdf = craft_report_format_from_path(j->path) == CRAFT_REPORT_PDF;
    double from = 0, to = 1;
    if (!strcmp(stage, "selecting")) from = 0, to = 0.05;
    else if (!strcmp(stage, "gathering")) from = 0.05, to = pdf ? 0.6 : 0.95;
    else if (!strcmp(stage, "laying out")) from = 0.6, to = 0.7;
    else if (!strcmp(stage, "rendering") && pdf) from = 0.7, to = 1;
    if (total <= 0) total = j->expected;
    if (total > 0)
        g_atomic_int_set(&j->win->job_done_milli, (gint)(1000 * (from + (to - from) * MIN(1.0, (double)done / total))));
}

/* The external order ids of a score-space selection's row ids (the report names
 * orders by id), read a page at a time; NULL with err set on failure. */
static void export_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    craft_background_thread();
    ExportJob *j = data;
    craft_store *s = NULL;
    if (craft_store_open(&s, j->store, CRAFT_STORE_READONLY, &j->err) != CRAFT_OK) {
        g_task_return_boolean(task, FALSE);
        return;
    }
    craft_report_selection sel;
    craft_report_selection_init(&sel);
    const char *ids[1] = {j->order_id};
    if (j->order_id) {
        sel.order_ids = ids;
        sel.n_order_ids = 1;
    } else if (j->rows) {
        sel.order_rows = j->rows;
        sel.n_order_rows = j->n_rows;
    } else {
        sel.query = j->query;
        sel.query.search = j->search;
    }
    sel.model_id = j->model_id;
    sel.description = j->description;
    craft_report_options o = {.format = CRAFT_REPORT_AUTO, .progress = export_progress, .user = j,
                              .cancel = &j->win->job_cancel_flag};
    int rc = craft_report_write(s, &sel, j->path, &o, &j->stats, &j->err);
    craft_store_close(s);
    g_task_return_boolean(task, rc == CRAFT_OK);
}

/* The job bar's label follows the report's stage. */
static gboolean export_tick(gpointer user)
{
    ExportJob *j = user;
    const char *stage = g_atomic_pointer_get(&j->stage);
    char *t = g_strdup_printf("Exporting the report of %s%s%s", j->what, stage ? " · " : "", stage ? stage : "");
    gtk_label_set_text(j->win->progress_label, t);
    g_free(t);
    return G_SOURCE_CONTINUE;
}

/* The export's outcome, shown at once (ahead of queued toasts: the user is waiting
 * for it); errors stay until dismissed. */
static void export_toast(CraftWindow *self, const char *text, gboolean error)
{
    if (error) {
        error_toast(self, text, TRUE);
    } else {
        AdwToast *toast = plain_toast(text);
        adw_toast_set_priority(toast, ADW_TOAST_PRIORITY_HIGH);
        adw_toast_overlay_add_toast(self->toasts, toast);
    }
    g_free(self->export_message);
    self->export_message = g_strdup(text);
}

static void export_done(GObject *src, GAsyncResult *res, gpointer user)
{
    CraftWindow *self = CRAFT_WINDOW(src);
    ExportJob *j = g_task_get_task_data(G_TASK(res));
    g_clear_handle_id(&self->export_timer, g_source_remove);
    job_end(self);
    char *base = g_path_get_basename(j->path);
    if (g_task_propagate_boolean(G_TASK(res), NULL)) {
        char *t = j->stats.pages > 0
                      ? g_strdup_printf("Report saved: %s (%" G_GINT64_FORMAT " %s, %" G_GINT64_FORMAT " pages, %.1f s)",
                                        base, j->stats.n_cases, j->stats.n_cases == 1 ? "case" : "cases",
                                        j->stats.pages, j->stats.seconds)
                      : g_strdup_printf("Report saved: %s (%" G_GINT64_FORMAT " %s, %.1f s)", base, j->stats.n_cases,
                                        craft_report_format_from_path(j->path) == CRAFT_REPORT_CSV
                                            ? (j->stats.n_cases == 1 ? "row" : "rows")
                                            : (j->stats.n_cases == 1 ? "case" : "cases"),
                                        j->stats.seconds);
        export_toast(self, t, FALSE);
        g_free(t);
        self->exports_done++;
    } else if (j->err.code == CRAFT_ECANCELLED) {
        char *t = g_strdup_printf("Export cancelled: %s was left as it was", base);
        export_toast(self, t, FALSE);
        g_free(t);
        self->exports_failed++;
    } else {
        const char *hint = j->err.code == CRAFT_EIO ? "Choose a folder you can write to and export again."
                           : j->err.code == CRAFT_EINPUT ? "Change the filters or the selected order and export again."
                                                         : "Nothing was written; try again or export as another format.";
        size_t n = strlen(j->err.msg);
        while (n && (j->err.msg[n - 1] == '.' || j->err.msg[n - 1] == '\n')) j->err.msg[--n] = 0;
        char *t = g_strdup_printf("Exporting %s failed: %s. %s", base,
                                  n ? j->err.msg : "the report could not be made", hint);
        export_toast(self, t, TRUE);
        g_free(t);
        self->exports_failed++;
    }
    g_free(base);
}

static void start_export(CraftWindow *self, ExportJob *j, const char *path)
{
    /* a name without a known extension gets .pdf: the format follows the extension */
    j->path = craft_report_format_from_path(path) == CRAFT_REPORT_AUTO ? g_strconcat(path, ".pdf", NULL) : g_strdup(path);
    j->win = self;
    j->store = g_strdup(self->store_path);
    j->model_id = self->model_id;
    char *name = g_strdup_printf("Exporting the report of %s", j->what);
    job_begin(self, name);
    g_free(name);
    GTask *t = g_task_new(self, NULL, export_done, NULL);
    g_task_set_task_data(t, j, (GDestroyNotify)export_job_free);
    self->export_timer = g_timeout_add(100, export_tick, j); /* removed in export_done, before j is freed */
    g_task_run_in_thread(t, export_thread);
    g_object_unref(t);
}

static void on_export_file(GtkNativeDialog *d, int response, ExportJob *j)
{
    CraftWindow *self = j->win;
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
        char *path = g_file_get_path(f);
        /* a name typed without an extension takes the chosen filter's */
        const char *ext = NULL;
        GtkFileFilter *filter = gtk_file_chooser_get_filter(GTK_FILE_CHOOSER(d));
        if (filter) ext = g_object_get_data(G_OBJECT(filter), "craft-ext");
        if (path && craft_report_format_from_path(path) == CRAFT_REPORT_AUTO && ext) {
            char *p2 = g_strconcat(path, ext, NULL);
            g_free(path);
            path = p2;
        }
        if (path) start_export(self, j, path);
        else { show_error(self, "Export", "That location is not a local file: choose a folder on this computer."); export_job_free(j); }
        g_free(path);
        g_object_unref(f);
    } else {
        export_job_free(j);
    }
}

static void add_export_filter(GtkFileChooser *fc, const char *name, const char *pattern, const char *ext)
{
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, name);
    gtk_file_filter_add_pattern(f, pattern);
    g_object_set_data(G_OBJECT(f), "craft-ext", (gpointer)ext);
    gtk_file_chooser_add_filter(fc, f);
    g_object_unref(f);
}

/* The export's save dialog, made once and shown again for each export: GTK builds its
 * own file chooser (when no portal shows one) in one main-loop turn of 35-57 ms, so it
 * is made while the user is not acting (2 s after a store opens, at low priority: after
 * any frame that is due), not when the user asks for it. */
static void on_export_chooser_response(GtkNativeDialog *d, int response, CraftWindow *self)
{
    ExportJob *j = g_steal_pointer(&self->export_chooser_job);
    if (j)
        on_export_file(d, response, j);
}

static GtkFileChooserNative *export_chooser(CraftWindow *self)
{
    if (self->export_chooser)
        return self->export_chooser;
    GtkFileChooserNative *d = gtk_file_chooser_native_new("Export Report", GTK_WINDOW(self), GTK_FILE_CHOOSER_ACTION_SAVE,
                                                          "_Export", "_Cancel");
    GtkFileChooser *fc = GTK_FILE_CHOOSER(d);
    add_export_filter(fc, "PDF report (*.pdf)", "*.pdf", ".pdf");
    add_export_filter(fc, "JSON evidence (*.json)", "*.json", ".json");
    add_export_filter(fc, "Markdown report (*.md)", "*.md", ".md");
    add_export_filter(fc, "Queue as CSV (*.csv)", "*.csv", ".csv");
    gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(d), TRUE);
    g_signal_connect(d, "response", G_CALLBACK(on_export_chooser_response), self);
    self->export_chooser = d;
    return d;
}

static gboolean prepare_export_chooser(gpointer user)
{
    CraftWindow *self = user;
    self->export_chooser_timer = 0;
    gint64 t0 = g_get_monotonic_time();
    export_chooser(self);
    g_debug("export dialog made ahead: %.1f ms", (g_get_monotonic_time() - t0) / 1000.0);
    return G_SOURCE_REMOVE;
}

/* Asks where to save (or takes CRAFTDESK_EXPORT_PATH), then exports; takes j. */
static void choose_export_file(CraftWindow *self, ExportJob *j, const char *suggested)
{
    j->win = self;
    const char *given = g_getenv("CRAFTDESK_EXPORT_PATH");
    if (given && *given) {
        start_export(self, j, given);
        return;
    }
    if (self->export_chooser_job) { /* the dialog is up: one export at a time */
        export_job_free(j);
        return;
    }
    GtkFileChooserNative *d = export_chooser(self);
    GtkFileChooser *fc = GTK_FILE_CHOOSER(d);
    GListModel *filters = gtk_file_chooser_get_filters(fc);
    GtkFileFilter *pdf = g_list_model_get_item(filters, 0);
    gtk_file_chooser_set_filter(fc, pdf); /* the last export's choice of format is not this one's */
    g_object_unref(pdf);
    g_object_unref(filters);
    gtk_file_chooser_set_current_name(fc, suggested);
    self->export_chooser_job = j;
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

static gboolean export_allowed(CraftWindow *self)
{
    if (!self->store) { craft_window_toast(self, "Open a case store first, then export"); return FALSE; }
    if (self->job_timer) { craft_window_toast(self, "Wait for the running job to finish (or cancel it), then export"); return FALSE; }
    return TRUE;
}

static void act_export_case(GSimpleAction *a, GVariant *p, gpointer user)
{
    CraftWindow *self = user;
    if (!export_allowed(self)) return;
    if (!self->has_detail) { craft_window_toast(self, "Select an order in the queue to export its case"); return; }
    if (self->loading_id) { craft_window_toast(self, "The order is still loading: export once it shows"); return; }
    ExportJob *j = g_new0(ExportJob, 1);
    j->order_id = g_strdup(self->detail.order_id);
    j->what = g_strdup(self->detail.order_id);
    j->description = g_strdup_printf("The case of order %s", self->detail.order_id);
    char *suggested = g_strdup_printf("%s-report.pdf", self->detail.order_id);
    for (char *c = suggested; *c; c++) if (*c == '/' || *c == '\\') *c = '_'; /* ids are data, not paths */
    choose_export_file(self, j, suggested);
    g_free(suggested);
}

/* The label of a drop-down's selected string ("" when none). */
static const char *dropdown_label(GtkDropDown *d)
{
    gpointer item = gtk_drop_down_get_selected_item(d);
    return GTK_IS_STRING_OBJECT(item) ? gtk_string_object_get_string(item) : "";
}

static void act_export_selection(GSimpleAction *a, GVariant *p, gpointer user)
{
    CraftWindow *self = user;
    if (!export_allowed(self)) return;
    if (g_list_model_get_n_items(G_LIST_MODEL(self->queue)) == 0) {
        craft_window_toast(self, "The queue is empty: widen the filters, then export");
        return;
    }
    ExportJob *j = g_new0(ExportJob, 1);
    guint n = g_list_model_get_n_items(G_LIST_MODEL(self->queue));
    if (craft_queue_model_is_selection(self->queue)) {
        /* the orders chosen in the score space, in the queue's order */
        guint n_rows = 0;
        const int64_t *rows = craft_queue_model_get_orders(self->queue, &n_rows);
        j->rows = g_memdup2(rows, sizeof(int64_t) * MAX(n_rows, 1));
        j->n_rows = n_rows;
        j->expected = n_rows;
        j->description = g_strdup_printf("Score-space selection of %u orders", n_rows);
        j->what = g_strdup_printf("%u selected orders", n_rows);
        choose_export_file(self, j, "selection-report.pdf");
        return;
    }
    fill_queue_query(self, &j->query);
    j->search = g_strdup(j->query.search);
    j->query.search = NULL; /* the worker points it at j->search */
    GString *d = g_string_new("Queue: ");
    g_string_append(d, dropdown_label(self->status_filter));
    if (j->query.cls >= 0) g_string_append_printf(d, ", class %s", dropdown_label(self->class_filter));
    if (j->query.min_score > 0) g_string_append_printf(d, ", score at least %.2f", j->query.min_score);
    if (j->search) g_string_append_printf(d, ", matching \"%s\"", j->search);
    g_string_append_printf(d, ", sorted by %s", dropdown_label(self->sort_choice));
    j->description = g_string_free(d, FALSE);
    j->expected = n;
    j->what = g_strdup_printf("%u queued orders", n);
    choose_export_file(self, j, "queue-report.pdf");
}

static const GActionEntry win_actions[] = {
    {"import", act_import}, {"score", act_score}, {"cancel-job", act_cancel},
    {"next-case", act_next}, {"previous-case", act_prev},
    {"decide-confirm", act_decide}, {"decide-false-positive", act_decide},
    {"decide-escalate", act_decide}, {"decide-needs-info", act_decide},
    {"toggle-modality", act_toggle_modality, "i"}, {"search", act_search}, {"show-score-space", act_space},
    {"train", act_train}, {"show-view", act_show_view, "s"}, {"show-message", act_show_message, "s"},
    {"export-case", act_export_case}, {"export-selection", act_export_selection},
};

static void craft_window_init(CraftWindow *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    self->switches = g_ptr_array_new();
    self->ix_cache = g_queue_new();
    self->ix_class = -1;
    g_action_map_add_action_entries(G_ACTION_MAP(self), win_actions, G_N_ELEMENTS(win_actions), self);
    setup_queue_view(self);
    build_view_switcher(self);
    gtk_drawing_area_set_draw_func(self->bars_area, draw_bars, self, NULL);
    gtk_drawing_area_set_draw_func(self->journey_area, draw_journey, self, NULL);
    gtk_search_bar_connect_entry(self->search_bar, GTK_EDITABLE(self->search_entry));
    g_signal_connect(self->search_entry, "search-changed", G_CALLBACK(on_search_changed), self);
    g_signal_connect(self->status_filter, "notify::selected", G_CALLBACK(on_filter_changed), self);
    g_signal_connect(self->class_filter, "notify::selected", G_CALLBACK(on_filter_changed), self);
    g_signal_connect(self->sort_choice, "notify::selected", G_CALLBACK(on_filter_changed), self);
    g_signal_connect(self->threshold_adj, "notify::value", G_CALLBACK(on_filter_changed), self);
    g_signal_connect(self->scatter, "selection-done", G_CALLBACK(on_scatter_selection), self);
    const char *cats[SPACE_NO_CASE + 2] = {NULL};
    for (int st = 0; st < SPACE_NO_CASE; st++) cats[st] = st < CRAFT_CASE_N_STATUS ? craft_case_status_label(st) : "";
    cats[SPACE_NO_CASE] = "No case";
    craft_scatter_widget_set_categories(self->scatter, cats);
    /* the app's scoring runs on the CPU engine (craft_store_score); a GPU, when there
     * is one, is named as available to `craft score --device cuda` */
    char gpu[256] = "";
    char *dev = craft_cuda_available(gpu, sizeof gpu)
                    ? g_strdup_printf("CPU (%d cores) · GPU %s for craft score", craft_cpu_count(), gpu)
                    : g_strdup_printf("CPU (%d cores)", craft_cpu_count());
    gtk_widget_set_tooltip_text(GTK_WIDGET(self->device_label), gpu[0] ? gpu : NULL);
    gtk_label_set_text(self->device_label, dev);
    g_free(dev);
    gtk_label_set_text(self->order_title, "No order selected");
}

CraftWindow *craft_window_new(GtkApplication *app)
{
    return g_object_new(CRAFT_TYPE_WINDOW, "application", app, NULL);
}
