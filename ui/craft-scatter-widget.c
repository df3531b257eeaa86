/* craft-scatter-widget.c: score space widget over app/views/scatter.c. */
#include "craft-scatter-widget.h"

#include "craft-background.h"

#include "craft-plot-style.h"
#include "scatter.h"

/* The points, shared read-only with the worker building the geometry. */
typedef struct {
    size_t n;
    float *x, *y;
    uint8_t *cat;
    int64_t *ids;
} ScatterPoints;

static void scatter_points_clear(ScatterPoints *p)
{
    g_free(p->x);
    g_free(p->y);
    g_free(p->cat);
    g_free(p->ids);
}

typedef struct {
    ScatterPoints *points;      /* a g_rc_box reference */
    craft_scatter_view view;
    volatile int cancel;
    craft_scatter_geom geom;
    double seconds;
} BuildJob;

static void build_job_free(BuildJob *job)
{
    g_rc_box_release_full(job->points, (GDestroyNotify)scatter_points_clear);
    craft_scatter_geom_clear(&job->geom);
    g_free(job);
}

struct _CraftScatterWidget {
    GtkWidget parent_instance;
    ScatterPoints *points;
    GStrv categories;
    craft_scatter_view view;
    int view_ready;
    craft_scatter_geom geom;        /* what is drawn */
    BuildJob *pending;              /* the newest build on a worker, not owned */
    gboolean highlight;
    double hx, hy;
    gboolean selecting;
    double sx0, sy0, sx1, sy1;
    int64_t *selection;
    size_t n_selection;
    double pointer_x, pointer_y;
    double drag_prev_x, drag_prev_y;   /* offset of the drag already applied as pan */
    double max_build_seconds;
};

G_DEFINE_FINAL_TYPE(CraftScatterWidget, craft_scatter_widget, GTK_TYPE_WIDGET)

enum { SIGNAL_SELECTION_DONE, N_SIGNALS };
static guint signals[N_SIGNALS];

static void build_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    craft_background_thread();
    BuildJob *job = data;
    craft_scatter_points pts = {job->points->n, job->points->x, job->points->y, job->points->cat, job->points->ids};
    gint64 t0 = g_get_monotonic_time();
    int rc = craft_scatter_geom_build(&job->geom, &pts, &job->view, 3, &job->cancel);
    job->seconds = (g_get_monotonic_time() - t0) / 1e6;
    if (rc == 0)
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_new_error(task, G_IO_ERROR, rc == 1 ? G_IO_ERROR_CANCELLED : G_IO_ERROR_FAILED,
                                rc == 1 ? "superseded" : "out of memory while binning the score space");
}

static void build_done(GObject *source, GAsyncResult *res, gpointer user)
{
    CraftScatterWidget *self = CRAFT_SCATTER_WIDGET(source);
    BuildJob *job = g_task_get_task_data(G_TASK(res));
    if (!g_task_propagate_boolean(G_TASK(res), NULL))
        return;
    if (job->seconds > self->max_build_seconds)
        self->max_build_seconds = job->seconds;
    craft_scatter_geom_clear(&self->geom);
    self->geom = job->geom;               /* take the arrays over */
    memset(&job->geom, 0, sizeof job->geom);
    if (self->pending == job)
        self->pending = NULL;
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

/* Starts binning for the current view; an older build still running is told to stop. */
static void rebuild(CraftScatterWidget *self)
{
    if (!self->points || !self->view_ready)
        return;
    if (self->pending)
        self->pending->cancel = 1;
    BuildJob *job = g_new0(BuildJob, 1);
    job->points = g_rc_box_acquire(self->points);
    job->view = self->view;
    GTask *task = g_task_new(self, NULL, build_done, NULL);
    g_task_set_task_data(task, job, (GDestroyNotify)build_job_free);
    self->pending = job;
    g_task_run_in_thread(task, build_thread);
    g_object_unref(task);
}

static void craft_scatter_widget_size_allocate(GtkWidget *w, int width, int height, int baseline)
{
    CraftScatterWidget *self = CRAFT_SCATTER_WIDGET(w);
    craft_view_style st = craft_plot_style_current();
    if (!self->view_ready)
        craft_scatter_view_init(&self->view, width, height, &st);
    else
        craft_scatter_view_resize(&self->view, width, height, &st);
    self->view_ready = 1;
    rebuild(self);
}

static void craft_scatter_widget_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
    CraftScatterWidget *self = CRAFT_SCATTER_WIDGET(widget);
    int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
    if (!self->view_ready || w <= 0 || h <= 0)
        return;
    craft_view_style st = craft_plot_style_current();
    craft_scatter_decor decor = {
        .has_highlight = self->highlight, .hx = self->hx, .hy = self->hy,
        .has_selection = self->selecting, .sx0 = self->sx0, .sy0 = self->sy0, .sx1 = self->sx1, .sy1 = self->sy1,
        .n_categories = self->categories ? (int)g_strv_length(self->categories) : 0,
        .category_names = (const char *const *)self->categories,
    };
    cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
    craft_scatter_render(cr, self->geom.argb ? &self->geom : NULL, &self->view, &decor, &st);
    cairo_destroy(cr);
}

void craft_scatter_widget_take_points(CraftScatterWidget *self, size_t n, float *x, float *y, uint8_t *cat,
                                      int64_t *ids)
{
    if (self->points)
        g_rc_box_release_full(self->points, (GDestroyNotify)scatter_points_clear);
    self->points = g_rc_box_new0(ScatterPoints);
    *self->points = (ScatterPoints){n, x, y, cat, ids};
    rebuild(self);
}

void craft_scatter_widget_set_categories(CraftScatterWidget *self, const char *const *names)
{
    g_strfreev(self->categories);
    self->categories = g_strdupv((char **)names);
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

void craft_scatter_widget_set_highlight(CraftScatterWidget *self, gboolean on, double x, double y)
{
    self->highlight = on;
    self->hx = x;
    self->hy = y;
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

void craft_scatter_widget_reset_view(CraftScatterWidget *self)
{
    craft_view_style st = craft_plot_style_current();
    craft_scatter_view_init(&self->view, gtk_widget_get_width(GTK_WIDGET(self)),
                            gtk_widget_get_height(GTK_WIDGET(self)), &st);
    gtk_widget_queue_draw(GTK_WIDGET(self));
    rebuild(self);
}

void craft_scatter_widget_zoom_at(CraftScatterWidget *self, double px, double py, double factor)
{
    craft_scatter_zoom(&self->view, px, py, factor);
    gtk_widget_queue_draw(GTK_WIDGET(self)); /* the old bins stretch until the new ones arrive */
    rebuild(self);
}

void craft_scatter_widget_select_rect(CraftScatterWidget *self, double ax, double ay, double bx, double by)
{
    g_clear_pointer(&self->selection, g_free);
    self->n_selection = 0;
    if (self->points) {
        craft_scatter_points pts = {self->points->n, self->points->x, self->points->y, self->points->cat,
                                    self->points->ids};
        int64_t *ids = NULL;
        long n = craft_scatter_select(&pts, &self->view, ax, ay, bx, by, &ids);
        if (n >= 0) {
            self->selection = g_memdup2(ids, sizeof *ids * (n ? n : 1));
            self->n_selection = n;
        }
        free(ids);
    }
    g_signal_emit(self, signals[SIGNAL_SELECTION_DONE], 0, (guint64)self->n_selection);
}

const int64_t *craft_scatter_widget_get_selection(CraftScatterWidget *self, size_t *n)
{
    *n = self->n_selection;
    return self->selection;
}

size_t craft_scatter_widget_get_n_visible(CraftScatterWidget *self) { return self->geom.n_visible; }
gboolean craft_scatter_widget_is_busy(CraftScatterWidget *self) { return self->pending != NULL; }
double craft_scatter_widget_get_max_build_seconds(CraftScatterWidget *self) { return self->max_build_seconds; }

static gboolean on_scroll(GtkEventControllerScroll *c, double dx, double dy, CraftScatterWidget *self)
{
    /* zoom around the pointer, whose position the motion controller keeps */
    craft_scatter_widget_zoom_at(self, self->pointer_x, self->pointer_y, dy < 0 ? 1.25 : 0.8);
    return TRUE;
}

static void on_motion(GtkEventControllerMotion *c, double x, double y, CraftScatterWidget *self)
{
    self->pointer_x = x;
    self->pointer_y = y;
}

static gboolean drag_pans(GtkGestureDrag *g)
{
    guint button = gtk_gesture_single_get_current_button(GTK_GESTURE_SINGLE(g));
    GdkModifierType mods = gtk_event_controller_get_current_event_state(GTK_EVENT_CONTROLLER(g));
    return button != GDK_BUTTON_PRIMARY || (mods & GDK_SHIFT_MASK);
}

static void on_drag_begin(GtkGestureDrag *g, double x, double y, CraftScatterWidget *self)
{
    self->drag_prev_x = self->drag_prev_y = 0;
    if (!drag_pans(g)) {
        self->selecting = TRUE;
        self->sx0 = self->sx1 = x;
        self->sy0 = self->sy1 = y;
    }
}

static void on_drag_update(GtkGestureDrag *g, double ox, double oy, CraftScatterWidget *self)
{
    if (self->selecting) {
        self->sx1 = self->sx0 + ox;
        self->sy1 = self->sy0 + oy;
    } else {
        craft_scatter_pan(&self->view, ox - self->drag_prev_x, oy - self->drag_prev_y);
        self->drag_prev_x = ox;
        self->drag_prev_y = oy;
        rebuild(self);
    }
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void on_drag_end(GtkGestureDrag *g, double ox, double oy, CraftScatterWidget *self)
{
    if (!self->selecting)
        return;
    self->selecting = FALSE;
    if (fabs(ox) > 3 && fabs(oy) > 3)
        craft_scatter_widget_select_rect(self, self->sx0, self->sy0, self->sx0 + ox, self->sy0 + oy);
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void on_style_changed(AdwStyleManager *sm, GParamSpec *p, CraftScatterWidget *self)
{
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void craft_scatter_widget_measure(GtkWidget *w, GtkOrientation o, int for_size, int *min, int *nat,
                                         int *min_b, int *nat_b)
{
    *min = 200;
    *nat = o == GTK_ORIENTATION_HORIZONTAL ? 640 : 480;
}

static void craft_scatter_widget_dispose(GObject *o)
{
    CraftScatterWidget *self = CRAFT_SCATTER_WIDGET(o);
    if (self->pending) {
        self->pending->cancel = 1;
        self->pending = NULL;
    }
    g_signal_handlers_disconnect_by_data(adw_style_manager_get_default(), self);
    G_OBJECT_CLASS(craft_scatter_widget_parent_class)->dispose(o);
}

static void craft_scatter_widget_finalize(GObject *o)
{
    CraftScatterWidget *self = CRAFT_SCATTER_WIDGET(o);
    if (self->points)
        g_rc_box_release_full(self->points, (GDestroyNotify)scatter_points_clear);
    craft_scatter_geom_clear(&self->geom);
    g_strfreev(self->categories);
    g_free(self->selection);
    G_OBJECT_CLASS(craft_scatter_widget_parent_class)->finalize(o);
}

static void craft_scatter_widget_class_init(CraftScatterWidgetClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    oc->dispose = craft_scatter_widget_dispose;
    oc->finalize = craft_scatter_widget_finalize;
    wc->snapshot = craft_scatter_widget_snapshot;
    wc->size_allocate = craft_scatter_widget_size_allocate;
    wc->measure = craft_scatter_widget_measure;
    signals[SIGNAL_SELECTION_DONE] = g_signal_new("selection-done", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT64);
    gtk_widget_class_set_css_name(wc, "scorespace");
    gtk_widget_class_set_accessible_role(wc, GTK_ACCESSIBLE_ROLE_IMG);
}

static void craft_scatter_widget_init(CraftScatterWidget *self)
{
    GtkEventController *scroll = gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
    g_signal_connect(scroll, "scroll", G_CALLBACK(on_scroll), self);
    gtk_widget_add_controller(GTK_WIDGET(self), scroll);
    GtkEventController *motion = gtk_event_controller_motion_new();
    g_signal_connect(motion, "motion", G_CALLBACK(on_motion), self);
    gtk_widget_add_controller(GTK_WIDGET(self), motion);
    GtkGesture *drag = gtk_gesture_drag_new();
    gtk_gesture_single_set_button(GTK_GESTURE_SINGLE(drag), 0);
    g_signal_connect(drag, "drag-begin", G_CALLBACK(on_drag_begin), self);
    g_signal_connect(drag, "drag-update", G_CALLBACK(on_drag_update), self);
    g_signal_connect(drag, "drag-end", G_CALLBACK(on_drag_end), self);
    gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(drag));
    g_signal_connect(adw_style_manager_get_default(), "notify::dark", G_CALLBACK(on_style_changed), self);
}

GtkWidget *craft_scatter_widget_new(void) { return g_object_new(CRAFT_TYPE_SCATTER_WIDGET, NULL); }
