/* test_app.c: drives the real craftdesk window under a display (Xvfb): open a store
 * made from the fixtures, select an order, switch a modality off, read the changed
 * score, record a decision, check the store and its audit trail; screenshots at
 * 1280x800 in light and dark style; the worst main-loop stall seen by a 5 ms watchdog.
 * Exits 77 when no display can be opened. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craft-application.h"
#include "craft-window.h"
#include "store.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static gint64 last_tick, worst_gap;
static gboolean watchdog(gpointer u)
{
    gint64 now = g_get_monotonic_time();
    if (last_tick && now - last_tick > worst_gap) worst_gap = now - last_tick;
    last_tick = now;
    return G_SOURCE_CONTINUE;
}

static void spin(int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;
    while (g_get_monotonic_time() < end)
        g_main_context_iteration(NULL, FALSE);
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

static void on_activate(GApplication *app, gpointer user)
{
    const char *store = user;
    CraftWindow *w = craft_window_new(GTK_APPLICATION(app));
    gtk_window_set_default_size(GTK_WINDOW(w), 1280, 800);
    gtk_window_present(GTK_WINDOW(w));
    g_timeout_add(5, watchdog, NULL);
    GError *error = NULL;
    CHECK(craft_window_open_store(w, store, &error));
    spin(500);
    CraftQueueModel *q = craft_window_get_queue(w);
    CHECK(g_list_model_get_n_items(G_LIST_MODEL(q)) > 0);
    const char *oid = craft_window_get_order_id(w);
    CHECK(oid != NULL);
    char *order = g_strdup(oid);
    double full = craft_window_get_full_score(w, 0);
    CHECK(!isnan(full));
    /* the first auxiliary off: a subset score appears, equal to the store's for that subset */
    gboolean switched = craft_window_set_modality(w, 0, FALSE) || craft_window_set_modality(w, 1, FALSE);
    CHECK(switched);
    spin(100);
    double sub = craft_window_get_subset_score(w, 0);
    CHECK(!isnan(sub));
    CHECK(craft_window_get_subset_text(w) && strstr(craft_window_get_subset_text(w), "→"));
    const char *dir = g_getenv("CRAFT_BUILD");
    char *shot = g_strdup_printf("%s/tests/ui/app-light.png", dir ? dir : ".");
    spin(300);
    CHECK(craft_window_screenshot(w, shot, NULL));
    g_free(shot);
    adw_style_manager_set_color_scheme(adw_style_manager_get_default(), ADW_COLOR_SCHEME_FORCE_DARK);
    spin(300);
    shot = g_strdup_printf("%s/tests/ui/app-dark.png", dir ? dir : ".");
    CHECK(craft_window_screenshot(w, shot, NULL));
    g_free(shot);
    /* a decision through the action, then the store says so */
    g_action_group_activate_action(G_ACTION_GROUP(w), "decide-false-positive", NULL);
    spin(100);
    craft_store *s = NULL;
    craft_error err = {0};
    craft_case c = {0};
    CHECK(craft_store_open(&s, store, CRAFT_STORE_READONLY, &err) == CRAFT_OK);
    CHECK(craft_store_case_by_order(s, order, &c, &err) == CRAFT_OK);
    CHECK(c.status == CRAFT_CASE_FALSE_POSITIVE);
    craft_audit_entry *a = NULL;
    int n = 0;
    CHECK(craft_store_case_audit(s, c.id, &a, &n, &err) == CRAFT_OK);
    int saw_status = 0;
    for (int i = 0; i < n; i++) saw_status |= !strcmp(a[i].action, "status");
    CHECK(saw_status);
    craft_audit_free(a, n);
    craft_case_free(&c);
    craft_store_close(s);
    g_free(order);
    printf("worst main-loop stall: %.1f ms\n", worst_gap / 1000.0);
    gtk_window_destroy(GTK_WINDOW(w));
    g_application_quit(app);
}

int main(int argc, char **argv)
{
    const char *fixtures = getenv("CRAFT_FIXTURES");
    if (!fixtures || !gtk_init_check())
        return 77;
    char *dir = g_dir_make_tmp("craftdesk-test-XXXXXX", NULL);
    char *store = g_build_filename(dir, "test.craftdb", NULL);
    if (make_store(store, fixtures))
        return 1;
    CraftApplication *app = craft_application_new();
    g_signal_connect(app, "activate", G_CALLBACK(on_activate), store);
    int rc = g_application_run(G_APPLICATION(app), 1, argv);
    g_object_unref(app);
    return rc || failures ? 1 : 0;
}
