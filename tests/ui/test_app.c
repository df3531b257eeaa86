/* test_app.c: drives the real craftdesk window under a display (Xvfb): open a store
 * made from the fixtures, select an order, switch a modality off, read the changed
 * score, walk the next cases (the loading state), record a decision, check the store
 * and its audit trail; screenshots at 1280x800 in light and dark style of every view,
 * exactly one view tab shown selected in each; exports (the case as PDF, the queue as PDF
 * and CSV, a score-space selection as CSV, Cancel, an unwritable folder, the save dialog);
 * per phase, the worst main-loop stall a 5 ms watchdog sees (wall and the main thread's
 * CPU time) and the slowest frame. Timings are printed, never asserted (the machine is
 * shared). CRAFT_APP_STORE drives a copy of a given store (e.g. the 20k sample) instead.
 * Exits 77 when no display can be opened. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "craft-application.h"
#include "craft-window.h"
#include "store.h"
#include "../store/store_test_util.h"

#include <glib/gstdio.h>

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

/* The watchdog: a 5 ms timeout on the main loop; the longest gap between its runs
 * is the worst main-loop stall, attributed to the phase of the script it fell in.
 * Each gap is also measured in the main thread's own CPU time: on a loaded machine
 * (the tests share their cores) a gap can be long because the thread was not
 * scheduled, while its CPU time is what the app's work cost. Frames are timed too
 * (the frame clock's before-paint to after-paint: layout, snapshot and render).
 * Gaps over 50 ms are listed with what the main thread spent in them.
 * Test-only work (screenshots rendered off-screen) is excluded by pausing it. */
static gint64 last_tick, last_cpu, worst_gap, worst_cpu, phase_worst, phase_worst_cpu, phase_worst_frame, frame_start;
static const char *phase = "start", *worst_phase = "", *worst_cpu_phase = "";

static gint64 thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void watchdog_mark(void)
{
    gint64 now = g_get_monotonic_time(), cpu = thread_cpu_us();
    if (last_tick) {
        gint64 gap = now - last_tick, busy = cpu - last_cpu;
        if (gap > worst_gap) { worst_gap = gap; worst_phase = phase; }
        if (busy > worst_cpu) { worst_cpu = busy; worst_cpu_phase = phase; }
        if (gap > phase_worst) phase_worst = gap;
        if (busy > phase_worst_cpu) phase_worst_cpu = busy;
        if (gap > 50000)
            printf("    stall %.1f ms (main thread busy %.1f ms) in '%s'\n", gap / 1000.0, busy / 1000.0, phase);
    }
    last_tick = now;
    last_cpu = cpu;
}

static gboolean watchdog(gpointer u)
{
    watchdog_mark();
    return G_SOURCE_CONTINUE;
}

static void frame_before(GdkFrameClock *c, gpointer u) { frame_start = g_get_monotonic_time(); }
static void frame_after(GdkFrameClock *c, gpointer u)
{
    if (frame_start && g_get_monotonic_time() - frame_start > phase_worst_frame)
        phase_worst_frame = g_get_monotonic_time() - frame_start;
    frame_start = 0;
}

static void set_phase(const char *name)
{
    if (last_tick)
        watchdog_mark(); /* the gap up to here belongs to the phase that ends */
    if (phase_worst)
        printf("  phase %-24s worst stall %7.1f ms (main thread busy %6.1f ms), slowest frame %6.1f ms\n", phase,
               phase_worst / 1000.0, phase_worst_cpu / 1000.0, phase_worst_frame / 1000.0);
    phase = name;
    phase_worst = phase_worst_cpu = phase_worst_frame = 0;
}

static void spin(int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;
    while (g_get_monotonic_time() < end)
        g_main_context_iteration(NULL, FALSE);
}

/* Runs the main loop until cond holds or ms pass; returns cond. */
#define SPIN_UNTIL(cond, ms) ({ gint64 _end = g_get_monotonic_time() + (ms) * 1000; gboolean _ok; \
    while (!(_ok = (cond)) && g_get_monotonic_time() < _end) { g_main_context_iteration(NULL, FALSE); } _ok; })

/* The first shown window of `type` (a class or an interface), waiting up to ms for
 * it; NULL when none shows. */
static GtkWidget *wait_for_toplevel(GType type, int ms)
{
    GtkWidget *found = NULL;
    for (int waited = 0; waited < ms && !found; waited += 10) {
        spin(10);
        GListModel *tops = gtk_window_get_toplevels();
        for (guint i = 0; i < g_list_model_get_n_items(tops) && !found; i++) {
            GObject *o = g_list_model_get_item(tops, i);
            if (G_TYPE_CHECK_INSTANCE_TYPE(o, type) && gtk_widget_get_visible(GTK_WIDGET(o)))
                found = GTK_WIDGET(o);
            g_object_unref(o);
        }
    }
    return found;
}

static void shoot(CraftWindow *w, const char *view, const char *style)
{
    const char *dir = g_getenv("CRAFT_SHOTS");
    char *d = dir ? g_strdup(dir) : g_build_filename(g_getenv("CRAFT_BUILD") ? g_getenv("CRAFT_BUILD") : ".", "tests", "ui", "shots", NULL);
    g_mkdir_with_parents(d, 0755);
    char *path = g_strdup_printf("%s/%s-%s.png", d, view, style);
    spin(150);
    CHECK(gtk_widget_get_width(GTK_WIDGET(w)) == 1280 && gtk_widget_get_height(GTK_WIDGET(w)) == 800);
    GError *error = NULL;
    gboolean shot = craft_window_screenshot(w, path, &error);
    if (!shot)
        fprintf(stderr, "screenshot: %s\n", error ? error->message : "?");
    g_clear_error(&error);
    CHECK(shot);
    last_tick = 0; /* the off-screen render is the test's, not the app's */
    frame_start = 0;
    g_free(path);
    g_free(d);
}

static const char *const views[] = {"explanation", "features", "journey", "entities", "history", "space", "model"};

static void shoot_all(CraftWindow *w, const char *style)
{
    for (size_t i = 0; i < G_N_ELEMENTS(views); i++) {
        g_action_group_activate_action(G_ACTION_GROUP(w), "show-view", g_variant_new_string(views[i]));
        /* exactly one tab shows as selected: this view's */
        const char *tab = NULL;
        CHECK(craft_window_get_selected_tabs(w, &tab) == 1 && !g_strcmp0(tab, views[i]));
        shoot(w, views[i], style);
    }
    g_action_group_activate_action(G_ACTION_GROUP(w), "show-view", g_variant_new_string("explanation"));
}

static int make_store(const char *path, const char *fixtures)
{
    craft_store *s = NULL;
    craft_error err = {0};
    char orders[1024], model[1024];
    snprintf(orders, sizeof orders, "%s/tiny-multilabel.orders.jsonl", fixtures);
    snprintf(model, sizeof model, "%s/tiny-multilabel.safetensors", fixtures);
    const char *paths[] = {orders};
    craft_import_options io = {0};
    craft_import_stats is = {0};
    craft_model *m = NULL;
    craft_store_score_options so = {.explain = 1, .subsets = 1, .flag_threshold = 0.2f, .batch = 8};
    craft_store_score_stats ss = {0};
    if (craft_store_open(&s, path, CRAFT_STORE_CREATE, &err) || craft_store_import(s, paths, 1, &io, &is, &err) ||
        craft_model_load(&m, model, &err) || craft_store_score(s, m, model, &so, &ss, &err)) {
        fprintf(stderr, "making the store: %s\n", err.msg);
        return -1;
    }
    craft_model_free(m);
    craft_store_close(s);
    return 0;
}

/* The interaction score the explanation view shows, against its definition (docs/MODEL.md):
 * I(j, m) = (s - s without j) - (s without m - s without j and m) for the class shown, from
 * plain engine runs (no perturbation request) over one batch: the order, then the order
 * with each tabular feature missing, with every modality on and with m off. Every row
 * shown: its value within 1e-5, its text in the one format (+0.0123), the rows of a
 * modality by |I| descending and no feature left out with a larger |I|. Returns rows checked. */
static int check_interaction(CraftWindow *w, const char *store, const char *order)
{
    craft_store *s = NULL;
    craft_error err = {0};
    craft_model *m = NULL;
    craft_order_batch ob;
    memset(&ob, 0, sizeof ob);
    int checked = 0;
    if (craft_store_open(&s, store, CRAFT_STORE_READONLY, &err) ||
        craft_store_model_load(s, craft_store_latest_model(s), &m, &err) ||
        craft_order_batch_init(&ob, &m->cfg, 1, 1, &err) || craft_store_order_batch(s, &m->cfg, order, &ob, &err)) {
        fprintf(stderr, "interaction check: %s\n", err.msg);
        CHECK(0);
        if (s) craft_store_close(s);
        craft_model_free(m);
        return 0;
    }
    craft_store_close(s);
    const craft_config *cfg = &m->cfg;
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    const int F = tm->n_features, K = cfg->n_classes;
    int k = craft_window_get_interaction_class(w);
    CHECK(k >= 0 && k < K);
    if (k < 0 || k >= K) k = 0;
    /* the part's title names the class */
    char *title = g_strdup_printf("Interaction · %s\n", cfg->classes[k]);
    CHECK(g_str_has_prefix(craft_window_get_interaction_text(w), title));
    g_free(title);
    /* row 0: the order; row 1 + j: feature j missing */
    craft_batch b;
    CHECK(craft_batch_init(&b, cfg, F + 1, &err) == CRAFT_OK);
    b.n = F + 1;
    for (int i = 0; i <= F; i++) {
        memcpy(b.tab + (size_t)i * F, ob.in.tab, sizeof(float) * F);
        if (i) b.tab[(size_t)i * F + i - 1] = NAN;
        for (int mm = 0; mm < cfg->n_modalities; mm++) {
            if (!b.ntok[mm] || !ob.in.ntok[mm]) continue;
            b.ntok[mm][i] = ob.in.ntok[mm][0];
            size_t per = (size_t)cfg->modalities[mm].tokens * cfg->modalities[mm].dim;
            memcpy(b.emb[mm] + (size_t)i * per, ob.in.emb[mm], sizeof(float) * per);
        }
    }
    craft_engine *e = NULL;
    CHECK(craft_engine_new(&e, m, F + 1, 1, &err) == CRAFT_OK);
    double *direct = g_new0(double, (size_t)CRAFT_MAX_MODALITIES * F);
    uint32_t used = 0;
    for (int mm = 0; e && mm < cfg->n_modalities; mm++) {
        if (mm == cfg->backbone) continue;
        craft_request req[2] = {{0, 0, 0, 0}, {1u << mm, 0, 0, 0}};
        craft_result res[2];
        memset(res, 0, sizeof res);
        CHECK(craft_result_init(&res[0], cfg, F + 1, &req[0], &err) == CRAFT_OK);
        CHECK(craft_result_init(&res[1], cfg, F + 1, &req[1], &err) == CRAFT_OK);
        CHECK(craft_engine_run(e, &b, req, 2, res, &err) == CRAFT_OK);
        used = res[0].used[0];
        for (int j = 0; j < F; j++)
            direct[(size_t)mm * F + j] = (res[0].scores[k] - res[0].scores[(size_t)(1 + j) * K + k]) -
                                         (res[1].scores[k] - res[1].scores[(size_t)(1 + j) * K + k]);
        craft_result_free(&res[0]);
        craft_result_free(&res[1]);
    }
    /* the rows the widgets show */
    char *table = craft_window_get_interaction_table(w);
    printf("  interaction rows shown (class %s):\n%s", cfg->classes[k], table);
    int mod = -1, shown_in_mod = 0;
    double last_abs = INFINITY;
    gboolean *shown = g_new0(gboolean, F);
    char **lines = g_strsplit(table, "\n", -1);
    for (int li = 0;; li++) {
        const char *line = lines[li];
        gboolean end = !line || !*line;
        gboolean head = !end && g_str_has_prefix(line, "with ");
        if ((end || head) && mod >= 0) {
            /* the modality's rows done: no feature left out has a larger |I| */
            double least = INFINITY;
            for (int j = 0; j < F; j++)
                if (shown[j]) least = fmin(least, fabs(direct[(size_t)mod * F + j]));
            for (int j = 0; j < F; j++)
                if (!shown[j]) CHECK(fabs(direct[(size_t)mod * F + j]) <= least + 1e-5);
            CHECK(shown_in_mod > 0);
        }
        if (end) break;
        if (head) {
            mod = craft_config_find_modality(cfg, line + 5);
            CHECK(mod >= 0 && mod != cfg->backbone && (used >> mod & 1u));
            memset(shown, 0, sizeof(gboolean) * F);
            shown_in_mod = 0;
            last_abs = INFINITY;
            continue;
        }
        const char *tab = strchr(line, '\t');
        if (!tab || mod < 0) continue; /* "txt: missing for this order" */
        char *name = g_strndup(line, tab - line);
        int j = -1;
        for (int f = 0; f < F; f++)
            if (!strcmp(tm->features[f].name, name)) j = f;
        CHECK(j >= 0);
        if (j >= 0) {
            double v = craft_window_get_interaction(w, mod, j), want = direct[(size_t)mod * F + j];
            char fmt[32];
            snprintf(fmt, sizeof fmt, "%+.4f", v);
            CHECK(!strcmp(tab + 1, fmt));                       /* the one number format */
            CHECK((tab[1] == '+' || tab[1] == '-') && strlen(tab + 1) == 7 && tab[3] == '.');
            CHECK(strcmp(tab + 2, "0.0000") != 0);               /* nothing shown as zero */
            CHECK(fabs(v - want) < 1e-5);                        /* the definition */
            CHECK(fabs(strtod(tab + 1, NULL) - want) < 5e-5 + 1e-6); /* what is read on screen */
            CHECK(fabs(v) <= last_abs + 1e-9);                    /* |I| descending */
            last_abs = fabs(v);
            shown[j] = TRUE;
            shown_in_mod++;
            checked++;
        }
        g_free(name);
    }
    g_strfreev(lines);
    g_free(shown);
    g_free(table);
    g_free(direct);
    craft_engine_free(e);
    craft_batch_free(&b);
    craft_order_batch_free(&ob);
    craft_model_free(m);
    return checked;
}

static gint64 quit_at;

static void on_activate(GApplication *app, gpointer user)
{
    const char *store = user;
    CraftWindow *w = craft_window_new(GTK_APPLICATION(app));
    gtk_window_set_default_size(GTK_WINDOW(w), 1280, 800);
    gtk_window_present(GTK_WINDOW(w));
    g_timeout_add(5, watchdog, NULL);
    spin(300);
    /* the default size counts the window's frame (its resize borders): grow it by what
     * the frame takes, so the window itself, and every screenshot, is 1280x800 */
    for (int tries = 0; tries < 3 && (gtk_widget_get_width(GTK_WIDGET(w)) != 1280 ||
                                      gtk_widget_get_height(GTK_WIDGET(w)) != 800); tries++) {
        int dw = 1280 - gtk_widget_get_width(GTK_WIDGET(w)), dh = 800 - gtk_widget_get_height(GTK_WIDGET(w));
        int cw, ch;
        gtk_window_get_default_size(GTK_WINDOW(w), &cw, &ch);
        gtk_widget_set_visible(GTK_WIDGET(w), FALSE); /* a shown window keeps its size */
        gtk_window_set_default_size(GTK_WINDOW(w), cw + dw, ch + dh);
        gtk_window_present(GTK_WINDOW(w));
        spin(200);
    }
    printf("  window: %dx%d\n", gtk_widget_get_width(GTK_WIDGET(w)), gtk_widget_get_height(GTK_WIDGET(w)));
    GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(w));
    if (clock) {
        g_signal_connect(clock, "before-paint", G_CALLBACK(frame_before), NULL);
        g_signal_connect(clock, "after-paint", G_CALLBACK(frame_after), NULL);
    }
    set_phase("open the store");
    GError *error = NULL;
    gint64 t0 = g_get_monotonic_time();
    CHECK(craft_window_open_store(w, store, &error));
    printf("  open the store (queue counts, first page, first order): %.1f ms on the main thread\n",
           (g_get_monotonic_time() - t0) / 1000.0);
    set_phase("load the first order");
    CraftQueueModel *q = craft_window_get_queue(w);
    CHECK(SPIN_UNTIL(craft_window_queue_current(w), 30000));
    CHECK(g_list_model_get_n_items(G_LIST_MODEL(q)) > 0);
    t0 = g_get_monotonic_time();
    CHECK(SPIN_UNTIL(craft_window_get_order_id(w) && craft_window_rescore_ready(w), 60000));
    printf("  the first order's engine inputs ready (worker) after %.1f ms more\n", (g_get_monotonic_time() - t0) / 1000.0);
    const char *oid = craft_window_get_order_id(w);
    CHECK(oid != NULL);
    if (!oid) return;
    char *order = g_strdup(oid);
    double full[CRAFT_STORE_MAX_CLASSES];
    for (int k = 0; k < CRAFT_STORE_MAX_CLASSES; k++) full[k] = craft_window_get_full_score(w, k);
    CHECK(!isnan(full[0]));

    /* the explanation view's interaction score: computed by a worker after the order's
     * inputs are read, then the part shows, per auxiliary, the features with the largest
     * |I| of the class it names; checked against the definition with plain engine runs */
    set_phase("interaction score");
    t0 = g_get_monotonic_time();
    if (!craft_window_interaction_ready(w)) { /* a real model takes a while: its computing state */
        printf("  interaction: %s\n", craft_window_get_interaction_text(w));
        CHECK(strstr(craft_window_get_interaction_text(w), "Computing") ||
              strstr(craft_window_get_interaction_text(w), "Waiting"));
        shoot(w, "explanation-computing", "light");
    }
    CHECK(SPIN_UNTIL(craft_window_interaction_ready(w), 120000));
    printf("  interaction score shown %.1f ms after the inputs were ready (%s)\n", (g_get_monotonic_time() - t0) / 1000.0,
           craft_window_get_interaction_state(w));
    CHECK(!strcmp(craft_window_get_interaction_state(w), "done"));
    CHECK(!g_strcmp0(craft_window_get_interaction_order(w), order));
    {
        const char *text = craft_window_get_interaction_text(w);
        CHECK(text && g_str_has_prefix(text, "Interaction · ") && strstr(text, "full model"));
        int rows = check_interaction(w, store, order);
        printf("  interaction: %d rows shown, each equal to the definition's value\n", rows);
        CHECK(rows > 0);
        last_tick = 0; /* the direct engine runs are the test's work */
    }

    /* an auxiliary off: the order is re-scored live, the scores change, and they are
     * the engine's: equal to the subset scores the store holds for that mask */
    set_phase("switch a modality off");
    t0 = g_get_monotonic_time();
    int aux = craft_window_set_modality(w, 0, FALSE) ? 0 : craft_window_set_modality(w, 1, FALSE) ? 1 : -1;
    {
        const char *txt = craft_window_get_subset_text(w), *at = txt ? strstr(txt, "re-scored in") : NULL;
        printf("  toggle: the switch answered in %.2f ms (%.*s)\n", (g_get_monotonic_time() - t0) / 1000.0,
               at ? (int)strcspn(at, ")") : 16, at ? at : "no live re-score");
    }
    CHECK(aux >= 0);
    spin(100);
    int changed = 0, compared = 0;
    craft_store *s = NULL;
    craft_error err = {0};
    craft_order_detail d = {0};
    CHECK(craft_store_open(&s, store, CRAFT_STORE_READONLY, &err) == CRAFT_OK);
    CHECK(craft_store_order_get(s, order, 0, &d, &err) == CRAFT_OK);
    /* the switch's modality: the lowest (aux 0) or second lowest (aux 1) auxiliary bit */
    uint32_t bits = 0;
    for (int p = 1; p < d.n_predictions; p++)
        if (__builtin_popcount(d.predictions[p].off) == 1) bits |= d.predictions[p].off;
    if (aux == 1) bits &= bits - 1;
    uint32_t want = bits & -bits;
    for (int p = 1; p < d.n_predictions; p++) {
        if (d.predictions[p].off != want) continue;
        for (int k = 0; k < d.n_classes; k++) {
            double sub = craft_window_get_subset_score(w, k);
            CHECK(!isnan(sub));
            CHECK(fabs(sub - d.predictions[p].scores[k]) < 1e-5);
            changed |= fabs(sub - full[k]) > 1e-7;
            compared++;
        }
    }
    CHECK(compared > 0);
    CHECK(changed);
    CHECK(craft_window_get_subset_text(w) && strstr(craft_window_get_subset_text(w), "→"));
    /* toggling on and off, as an analyst comparing: each answers at once (one engine call) */
    {
        double worst_ms = 0, total_ms = 0;
        for (int i = 0; i < 10; i++) {
            gint64 ts = g_get_monotonic_time();
            CHECK(craft_window_set_modality(w, aux, i % 2 == 0));
            double ms = (g_get_monotonic_time() - ts) / 1000.0;
            total_ms += ms;
            worst_ms = fmax(worst_ms, ms);
            CHECK(i % 2 == 0 ? isnan(craft_window_get_subset_score(w, 0)) : !isnan(craft_window_get_subset_score(w, 0)));
            spin(20);
        }
        printf("  toggles: 10 on/off, %.2f ms each on average, worst %.2f ms\n", total_ms / 10, worst_ms);
    }
    craft_order_detail_free(&d);
    craft_store_close(s);
    s = NULL;

    /* every view, light and dark */
    set_phase("screenshots, light");
    shoot_all(w, "light");
    adw_style_manager_set_color_scheme(adw_style_manager_get_default(), ADW_COLOR_SCHEME_FORCE_DARK);
    set_phase("screenshots, dark");
    spin(300);
    shoot_all(w, "dark");
    adw_style_manager_set_color_scheme(adw_style_manager_get_default(), ADW_COLOR_SCHEME_FORCE_LIGHT);
    CHECK(craft_window_set_modality(w, aux, TRUE));

    /* the next cases, as J does: the title names the next order at once and says it is
     * loading while a worker reads it; then it shows, its inputs ready for the toggles */
    set_phase("next case (J)");
    {
        g_action_group_activate_action(G_ACTION_GROUP(w), "next-case", NULL);
        const char *title = craft_window_get_order_title(w);
        printf("  next case: the title at once: %s\n", title);
        CHECK(title && strstr(title, "loading"));
        /* the interaction part leaves the previous order's values at once: it waits or computes */
        printf("  next case: the interaction part at once: %s\n", craft_window_get_interaction_state(w));
        CHECK(!craft_window_interaction_ready(w) || g_list_model_get_n_items(G_LIST_MODEL(q)) == 1);
        CHECK(craft_window_get_interaction_order(w) == NULL || g_list_model_get_n_items(G_LIST_MODEL(q)) == 1);
        CHECK(craft_window_get_order_id(w) == NULL || g_list_model_get_n_items(G_LIST_MODEL(q)) == 1);
        for (int i = 0; i < 4; i++) {
            spin(60);
            g_action_group_activate_action(G_ACTION_GROUP(w), "next-case", NULL);
        }
        CHECK(SPIN_UNTIL(craft_window_get_order_id(w) && craft_window_rescore_ready(w), 30000));
        title = craft_window_get_order_title(w);
        CHECK(title && !strstr(title, "loading") && strstr(title, craft_window_get_order_id(w)));
        for (int i = 0; i < 5; i++)
            g_action_group_activate_action(G_ACTION_GROUP(w), "previous-case", NULL);
        CHECK(SPIN_UNTIL(craft_window_get_order_id(w) && !strcmp(craft_window_get_order_id(w), order), 30000));
        /* back on the first order: its interaction again (the window keeps recent results);
         * of the orders passed on the way, superseded ones were skipped, not computed */
        CHECK(SPIN_UNTIL(craft_window_interaction_ready(w), 120000));
        CHECK(!g_strcmp0(craft_window_get_interaction_order(w), order));
        guint skipped = 0, runs = craft_window_get_interaction_runs(w, &skipped);
        printf("  interaction: %u worker runs, %u superseded requests skipped\n", runs, skipped);
    }

    /* the queue scrolled like a hurried analyst: three pages a frame, then jumps */
    set_phase("scroll the queue");
    {
        GtkWidget *sw = gtk_widget_get_ancestor(craft_window_get_queue_view(w), GTK_TYPE_SCROLLED_WINDOW);
        GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
        guint before = craft_queue_model_get_pages_fetched(q);
        for (int i = 0; i < 120; i++) {
            gtk_adjustment_set_value(adj, gtk_adjustment_get_value(adj) + 3 * gtk_adjustment_get_page_size(adj));
            spin(16);
        }
        for (int i = 0; i <= 20; i++) {
            gtk_adjustment_set_value(adj, (gtk_adjustment_get_upper(adj) - gtk_adjustment_get_page_size(adj)) * i / 20.0);
            spin(16);
        }
        double upper = gtk_adjustment_get_upper(adj);
        SPIN_UNTIL(craft_queue_model_get_pages_pending(q) == 0, 30000);
        printf("  queue: %u rows (scroll range %.0f px), %u pages read while scrolling, %u still pending\n",
               g_list_model_get_n_items(G_LIST_MODEL(q)), upper, craft_queue_model_get_pages_fetched(q) - before,
               craft_queue_model_get_pages_pending(q));
        gtk_adjustment_set_value(adj, 0);
        spin(50);
    }

    /* a decision through the action, then the store and its audit log say so */
    set_phase("decide");
    guint decided = craft_window_get_decisions_done(w);
    g_action_group_activate_action(G_ACTION_GROUP(w), "decide-false-positive", NULL);
    CHECK(SPIN_UNTIL(craft_window_get_decisions_done(w) > decided, 30000));
    CHECK(craft_window_get_decisions_failed(w) == 0);
    CHECK(SPIN_UNTIL(craft_window_get_order_id(w) != NULL, 30000));
    craft_case c = {0};
    CHECK(craft_store_open(&s, store, CRAFT_STORE_READONLY, &err) == CRAFT_OK);
    CHECK(craft_store_case_by_order(s, order, &c, &err) == CRAFT_OK);
    CHECK(c.status == CRAFT_CASE_FALSE_POSITIVE);
    craft_audit_entry *a = NULL;
    int n = 0;
    CHECK(craft_store_case_audit(s, c.id, &a, &n, &err) == CRAFT_OK);
    int saw_status = 0;
    for (int i = 0; i < n; i++) saw_status |= !strcmp(a[i].action, "status") && a[i].after && strstr(a[i].after, "false_positive");
    CHECK(saw_status);
    craft_audit_free(a, n);
    craft_case_free(&c);
    craft_store_close(s);
    last_tick = 0; /* reading the store to check it is the test's work */
    /* the audit trail with the decision, as the History view shows it, light and dark
     * (a phase of its own: switching the style restyles every widget) */
    set_phase("screenshots, decided");
    g_action_group_activate_action(G_ACTION_GROUP(w), "show-view", g_variant_new_string("history"));
    shoot(w, "history-decided", "light");
    adw_style_manager_set_color_scheme(adw_style_manager_get_default(), ADW_COLOR_SCHEME_FORCE_DARK);
    shoot(w, "history-decided", "dark");
    adw_style_manager_set_color_scheme(adw_style_manager_get_default(), ADW_COLOR_SCHEME_FORCE_LIGHT);
    g_action_group_activate_action(G_ACTION_GROUP(w), "show-view", g_variant_new_string("explanation"));
    spin(100);

    /* without CRAFTDESK_EXPORT_PATH the save dialog opens with a suggested name and the
     * report formats; cancelling it exports nothing (GTK builds the dialog: its own phase) */
    set_phase("save dialog");
    g_unsetenv("CRAFTDESK_EXPORT_PATH");
    {
        guint d0 = craft_window_get_exports_done(w), f0 = craft_window_get_exports_failed(w);
        g_action_group_activate_action(G_ACTION_GROUP(w), "export-case", NULL);
        GtkWidget *chooser = wait_for_toplevel(GTK_TYPE_FILE_CHOOSER, 2000);
        CHECK(chooser != NULL);
        if (chooser) {
            char *name = gtk_file_chooser_get_current_name(GTK_FILE_CHOOSER(chooser));
            const char *cur = craft_window_get_order_id(w);
            printf("  export: the save dialog suggests %s\n", name ? name : "(nothing)");
            CHECK(name && cur && g_str_has_prefix(name, cur) && g_str_has_suffix(name, "-report.pdf"));
            GListModel *filters = gtk_file_chooser_get_filters(GTK_FILE_CHOOSER(chooser));
            CHECK(g_list_model_get_n_items(filters) == 4);
            g_object_unref(filters);
            g_free(name);
            gtk_dialog_response(GTK_DIALOG(chooser), GTK_RESPONSE_CANCEL);
            spin(100);
        }
        CHECK(craft_window_get_exports_done(w) == d0 && craft_window_get_exports_failed(w) == f0);
    }

    /* exports without the file chooser (CRAFTDESK_EXPORT_PATH): the case as PDF, the queue as CSV */
    set_phase("export");
    /* the export actions have their accelerators (listed in the shortcuts window) */
    char **accels = gtk_application_get_accels_for_action(GTK_APPLICATION(app), "win.export-case");
    CHECK(accels && accels[0] && !strcmp(accels[0], "<Control>e"));
    g_strfreev(accels);
    accels = gtk_application_get_accels_for_action(GTK_APPLICATION(app), "win.export-selection");
    CHECK(accels && accels[0] && !strcmp(accels[0], "<Shift><Control>e"));
    g_strfreev(accels);
    char *dir = g_path_get_dirname(store);
    char *pdf = g_build_filename(dir, "case-report.pdf", NULL);
    char *csv = g_build_filename(dir, "queue.csv", NULL);
    guint done0 = craft_window_get_exports_done(w), failed0 = craft_window_get_exports_failed(w);
    char *exported = g_strdup(craft_window_get_order_id(w)); /* a decision may have moved to the next case */
    CHECK(exported != NULL);
    g_setenv("CRAFTDESK_EXPORT_PATH", pdf, TRUE);
    g_action_group_activate_action(G_ACTION_GROUP(w), "export-case", NULL);
    CHECK(SPIN_UNTIL(craft_window_get_exports_done(w) + craft_window_get_exports_failed(w) > done0 + failed0, 60000));
    CHECK(craft_window_get_exports_done(w) == done0 + 1);
    CHECK(g_file_test(pdf, G_FILE_TEST_IS_REGULAR));
    char *pdftotext = g_find_program_in_path("pdftotext");
    if (pdftotext) {
        char *argv_pdf[] = {pdftotext, pdf, "-", NULL};
        char *text = NULL;
        int status = -1;
        CHECK(g_spawn_sync(NULL, argv_pdf, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &text, NULL, &status, NULL));
        last_tick = 0; /* waiting for pdftotext is the test's work, not the app's */
        CHECK(status == 0 && text && exported && strstr(text, exported));
        g_free(text);
        g_free(pdftotext);
    } else {
        printf("  pdftotext not found: the PDF's text is not checked\n");
    }
    CHECK(g_str_has_prefix(craft_window_get_export_message(w), "Report saved: case-report.pdf"));
    shoot(w, "export-case-done", "light");
    guint queued = g_list_model_get_n_items(G_LIST_MODEL(q));
    g_setenv("CRAFTDESK_EXPORT_PATH", csv, TRUE);
    g_action_group_activate_action(G_ACTION_GROUP(w), "export-selection", NULL);
    CHECK(SPIN_UNTIL(craft_window_get_exports_done(w) + craft_window_get_exports_failed(w) > done0 + failed0 + 1, 60000));
    CHECK(craft_window_get_exports_done(w) == done0 + 2);
    char *csv_text = NULL;
    gsize csv_len = 0;
    CHECK(g_file_get_contents(csv, &csv_text, &csv_len, NULL));
    /* records, not lines: a quoted field may hold a line break */
    guint records = 0;
    gboolean quoted = FALSE;
    for (gsize i = 0; csv_text && i < csv_len; i++) {
        if (csv_text[i] == '"') quoted = !quoted;
        else if (csv_text[i] == '\n' && !quoted) records++;
    }
    last_tick = 0; /* reading the file is the test's work, not the app's */
    printf("  export: queue of %u orders -> %u CSV records (header included)\n", queued, records);
    CHECK(queued > 0 && records == queued + 1);
    CHECK(csv_text && strncmp(csv_text, "order_id,", 9) == 0);
    g_free(csv_text);
    /* the queue as PDF, shot while it runs; Cancel pressed at once: either the export
     * stopped and left no file, or it had already finished and the file is whole */
    char *qpdf = g_build_filename(dir, "queue.pdf", NULL);
    g_setenv("CRAFTDESK_EXPORT_PATH", qpdf, TRUE);
    /* no revealer animation, so the shot shows the progress bar while the job runs */
    g_object_set(gtk_settings_get_default(), "gtk-enable-animations", FALSE, NULL);
    g_action_group_activate_action(G_ACTION_GROUP(w), "export-selection", NULL);
    spin(250);
    shoot(w, "export-progress", "light");
    g_object_set(gtk_settings_get_default(), "gtk-enable-animations", TRUE, NULL);
    if (queued > 5000) { /* a big store's queue (three pages a case): cancelled here, and counted as the cancel */
        g_action_group_activate_action(G_ACTION_GROUP(w), "cancel-job", NULL);
        CHECK(SPIN_UNTIL(craft_window_get_exports_done(w) + craft_window_get_exports_failed(w) > done0 + failed0 + 2, 60000));
        CHECK(craft_window_get_exports_failed(w) == failed0 + 1 && !g_file_test(qpdf, G_FILE_TEST_EXISTS));
        printf("  export: the queue of %u cases as PDF, cancelled: %s\n", queued, craft_window_get_export_message(w));
        failed0++, done0--; /* the counts the checks below expect */
    } else {
        CHECK(SPIN_UNTIL(craft_window_get_exports_done(w) + craft_window_get_exports_failed(w) > done0 + failed0 + 2, 60000));
        CHECK(craft_window_get_exports_done(w) == done0 + 3);
        CHECK(g_file_test(qpdf, G_FILE_TEST_IS_REGULAR));
        printf("  export: %s\n", craft_window_get_export_message(w));
    }
    char *cpdf = g_build_filename(dir, "cancelled.pdf", NULL);
    g_setenv("CRAFTDESK_EXPORT_PATH", cpdf, TRUE);
    g_action_group_activate_action(G_ACTION_GROUP(w), "export-selection", NULL);
    g_action_group_activate_action(G_ACTION_GROUP(w), "cancel-job", NULL);
    CHECK(SPIN_UNTIL(craft_window_get_exports_done(w) + craft_window_get_exports_failed(w) > done0 + failed0 + 3, 60000));
    gboolean cancelled = craft_window_get_exports_failed(w) == failed0 + 1;
    printf("  export: cancel -> %s\n", craft_window_get_export_message(w));
    CHECK(cancelled ? !g_file_test(cpdf, G_FILE_TEST_EXISTS) && g_str_has_prefix(craft_window_get_export_message(w), "Export cancelled")
                    : g_file_test(cpdf, G_FILE_TEST_IS_REGULAR));
    guint failed1 = craft_window_get_exports_failed(w), done1 = craft_window_get_exports_done(w);
    g_remove(qpdf); g_remove(cpdf);
    g_free(qpdf); g_free(cpdf);

    /* a folder that does not exist: an error toast, no crash, nothing counted as saved */
    char *bad = g_build_filename(dir, "no-such-folder", "x.pdf", NULL);
    g_setenv("CRAFTDESK_EXPORT_PATH", bad, TRUE);
    g_action_group_activate_action(G_ACTION_GROUP(w), "export-case", NULL);
    CHECK(SPIN_UNTIL(craft_window_get_exports_failed(w) > failed1, 60000));
    CHECK(craft_window_get_exports_done(w) == done1);
    printf("  export: bad folder -> %s\n", craft_window_get_export_message(w));
    CHECK(strstr(craft_window_get_export_message(w), "failed") != NULL);
    shoot(w, "export-error", "light");
    /* the error's toast is one line: its Details button shows the whole message */
    {
        const char *msg = craft_window_get_export_message(w);
        CHECK(g_utf8_strlen(msg, -1) > 80);
        g_action_group_activate_action(G_ACTION_GROUP(w), "show-message", g_variant_new_string(msg));
        AdwMessageDialog *dialog = (AdwMessageDialog *)wait_for_toplevel(ADW_TYPE_MESSAGE_DIALOG, 1000);
        CHECK(dialog != NULL);
        if (dialog) {
            CHECK(!g_strcmp0(adw_message_dialog_get_body(dialog), msg));
            adw_message_dialog_response(dialog, "close");
            spin(50);
            if (gtk_widget_get_visible(GTK_WIDGET(dialog))) gtk_window_close(GTK_WINDOW(dialog));
        }
    }
    g_unsetenv("CRAFTDESK_EXPORT_PATH");
    g_remove(pdf); g_remove(csv);
    g_free(bad); g_free(pdf); g_free(exported); g_free(csv); g_free(dir);

    /* a rectangle over the whole score space: the queue becomes those orders */
    set_phase("score-space selection");
    g_action_group_activate_action(G_ACTION_GROUP(w), "show-view", g_variant_new_string("space"));
    CHECK(SPIN_UNTIL(craft_window_select_space_rect(w, 0, 0, 4000, 4000), 10000));
    CHECK(SPIN_UNTIL(craft_window_queue_current(w) && craft_queue_model_is_selection(q), 30000));
    spin(100);
    CHECK(g_list_model_get_n_items(G_LIST_MODEL(q)) > 0);
    /* the score-space selection exported as CSV: one row per chosen order */
    {
        guint chosen = g_list_model_get_n_items(G_LIST_MODEL(q));
        guint done2 = craft_window_get_exports_done(w), failed2 = craft_window_get_exports_failed(w);
        char *dir2 = g_path_get_dirname(store);
        char *sel_csv = g_build_filename(dir2, "selection.csv", NULL);
        g_setenv("CRAFTDESK_EXPORT_PATH", sel_csv, TRUE);
        g_action_group_activate_action(G_ACTION_GROUP(w), "export-selection", NULL);
        CHECK(SPIN_UNTIL(craft_window_get_exports_done(w) + craft_window_get_exports_failed(w) > done2 + failed2, 60000));
        CHECK(craft_window_get_exports_done(w) == done2 + 1);
        g_unsetenv("CRAFTDESK_EXPORT_PATH");
        char *text = NULL;
        CHECK(g_file_get_contents(sel_csv, &text, NULL, NULL));
        guint lines = 0;
        for (const char *ch = text; ch && *ch; ch++) lines += *ch == '\n';
        last_tick = 0; /* reading the file is the test's work, not the app's */
        printf("  export: score-space selection of %u orders -> %u CSV lines (header included)\n", chosen, lines);
        CHECK(lines == chosen + 1);
        g_remove(sel_csv);
        g_free(text); g_free(sel_csv); g_free(dir2);
    }
    /* the queue's class filter names a class: the interaction part follows it (the
     * queue reads again and shows its first order), checked against the definition */
    set_phase("interaction, class filter");
    {
        int K = 0;
        while (K < CRAFT_STORE_MAX_CLASSES && !isnan(craft_window_get_full_score(w, K))) K++;
        int cls = K - 1;
        CHECK(cls >= 0 && craft_window_set_class_filter(w, cls));
        CHECK(SPIN_UNTIL(craft_window_queue_current(w) && craft_window_get_order_id(w) &&
                         craft_window_interaction_ready(w), 120000));
        const char *shown = craft_window_get_order_id(w);
        printf("  class filter %d: order %s, interaction of class %d (%s)\n", cls, shown ? shown : "-",
               craft_window_get_interaction_class(w), craft_window_get_interaction_state(w));
        CHECK(craft_window_get_interaction_class(w) == cls);
        CHECK(shown && !g_strcmp0(craft_window_get_interaction_order(w), shown));
        CHECK(craft_window_get_interaction_text(w) && strstr(craft_window_get_interaction_text(w), "queue's class"));
        if (shown) {
            char *o2 = g_strdup(shown);
            int rows = check_interaction(w, store, o2);
            last_tick = 0;
            printf("  interaction, class filter: %d rows checked against the definition\n", rows);
            g_free(o2);
        }
        CHECK(craft_window_set_class_filter(w, -1));
        CHECK(SPIN_UNTIL(craft_window_queue_current(w) && craft_window_get_order_id(w), 30000));
    }
    /* quitting while the interaction worker computes (a real model): the application's
     * shutdown stops it after its current engine run and waits for it (main() times it) */
    g_action_group_activate_action(G_ACTION_GROUP(w), "next-case", NULL);
    SPIN_UNTIL(!strcmp(craft_window_get_interaction_state(w), "computing") || craft_window_interaction_ready(w), 30000);
    printf("  quitting with the interaction part %s\n", craft_window_get_interaction_state(w));
    g_free(order);
    set_phase("end");
    printf("worst main-loop stall: %.1f ms (during: %s); most main-thread CPU in one stall: %.1f ms (during: %s)\n",
           worst_gap / 1000.0, worst_phase, worst_cpu / 1000.0, worst_cpu_phase);
    gtk_window_destroy(GTK_WINDOW(w));
    quit_at = g_get_monotonic_time();
    g_application_quit(app);
}

int main(int argc, char **argv)
{
    const char *fixtures = getenv("CRAFT_FIXTURES");
    if (!fixtures || !gtk_init_check())
        return 77;
    /* CRAFT_APP_STORE: drive a copy of an existing scored store (e.g. the sample) instead */
    char *dir = g_dir_make_tmp("craftdesk-test-XXXXXX", NULL);
    char *store = g_build_filename(dir, "test.craftdb", NULL);
    const char *given = getenv("CRAFT_APP_STORE");
    if (given) {
        char *cmd = g_strdup_printf("cp '%s' '%s'", given, store);
        if (system(cmd) != 0) return 1;
        g_free(cmd);
    } else if (make_store(store, fixtures)) {
        return 1;
    }
    CraftApplication *app = craft_application_new();
    g_signal_connect(app, "activate", G_CALLBACK(on_activate), store);
    int rc = g_application_run(G_APPLICATION(app), 1, argv);
    if (quit_at)
        printf("  quit: the application ended %.1f ms after the window closed\n", (g_get_monotonic_time() - quit_at) / 1000.0);
    g_object_unref(app);
    /* the temporary store and its folder go (the screenshots stay in the build dir) */
    remove_store(store);
    g_rmdir(dir);
    return rc || failures ? 1 : 0;
}
