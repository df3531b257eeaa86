/* test_train_ui: the window's Train action under a display (Xvfb), on a small
 * store of labelled orders scored by a tiny model:
 * 1. Train with many epochs, Cancel (win.cancel-job) once the first epoch is
 *    reported: the job ends as cancelled, no model file is left, and the store
 *    is exactly as it was (models, predictions, runs, cases, audit, labels).
 * 2. Train with 3 epochs (the train-epochs setting): one progress report per
 *    epoch, in order, with its fraction and text; then the new checkpoint is
 *    registered in the store and has scored every order.
 * Exits 77 when no display can be opened. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <glib/gstdio.h>

#include "craft-application.h"
#include "craft-window.h"
#include "store.h"
#include "../store/store_fill.h"
#include "../store/store_test_util.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)
#define SPIN_UNTIL(cond, ms) ({ gint64 _end = g_get_monotonic_time() + (ms) * 1000; gboolean _ok; \
    while (!(_ok = (cond)) && g_get_monotonic_time() < _end) g_main_context_iteration(NULL, FALSE); _ok; })

#define COPIES 12 /* 24 fixture orders each: 288 labelled orders */

static char *dir, *store;

static gboolean make_store(const char *fixtures)
{
    char *in = g_build_filename(fixtures, "tiny-train-multilabel.orders.jsonl", NULL);
    char *model = g_build_filename(fixtures, "tiny-train-multilabel.safetensors", NULL);
    char *orders = g_build_filename(dir, "orders.jsonl", NULL);
    gboolean ok = write_order_copies(in, orders, COPIES, "TR") == 0;
    const craft_store_score_options so = {.explain = 1, .subsets = 1, .flag_threshold = 0.5f, .batch = 32};
    ok = ok && make_scored_store(store, orders, model, &so) == 0;
    g_remove(orders);
    g_free(in);
    g_free(model);
    g_free(orders);
    return ok;
}

/* Everything a training or scoring could change, as one string. */
static char *store_state(void)
{
    static const char *const q[] = {
        "SELECT count(*) || '/' || group_concat(sha256) FROM models",
        "SELECT count(*) || '/' || total(top_score) || '/' || total(model_id) FROM predictions",
        "SELECT count(*) || '/' || total(score) FROM class_scores",
        "SELECT count(*) FROM explanations",
        "SELECT count(*) || '/' || group_concat(status) FROM scoring_runs",
        "SELECT count(*) || '/' || total(status) || '/' || total(updated) FROM cases",
        "SELECT count(*) || '/' || max(id) FROM audit",
        "SELECT count(*) || '/' || total(value) FROM labels",
        "SELECT count(*) FROM orders",
    };
    sqlite3 *h = NULL;
    GString *s = g_string_new(NULL);
    if (sqlite3_open_v2(store, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(h, 5000);
        for (size_t i = 0; i < G_N_ELEMENTS(q); i++) {
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(h, q[i], -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                g_string_append_printf(s, "%s;", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
            else
                g_string_append(s, "?;");
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(h);
    return g_string_free(s, FALSE);
}

/* Checkpoints beside the store (the trainer writes them there). */
static GPtrArray *model_files(void)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d)))
        if (g_str_has_suffix(name, ".safetensors"))
            g_ptr_array_add(a, g_build_filename(dir, name, NULL));
    if (d)
        g_dir_close(d);
    return a;
}

typedef struct {
    GArray *fractions;
    GPtrArray *texts;
    gboolean cancel_at_first;
    CraftWindow *win;
} Progress;

static void on_progress(CraftWindow *w, double fraction, const char *text, Progress *p)
{
    g_array_append_val(p->fractions, fraction);
    g_ptr_array_add(p->texts, g_strdup(text));
    if (p->cancel_at_first && p->fractions->len == 1)
        g_action_group_activate_action(G_ACTION_GROUP(w), "cancel-job", NULL);
}

static void progress_reset(Progress *p, gboolean cancel)
{
    g_array_set_size(p->fractions, 0);
    g_ptr_array_set_size(p->texts, 0);
    p->cancel_at_first = cancel;
}

static void on_activate(GApplication *app, gpointer user)
{
    GSettings *settings = craft_application_get_settings(CRAFT_APPLICATION(app));
    CraftWindow *w = craft_window_new(GTK_APPLICATION(app));
    gtk_window_set_default_size(GTK_WINDOW(w), 1280, 800);
    gtk_window_present(GTK_WINDOW(w));
    GError *error = NULL;
    CHECK(craft_window_open_store(w, store, &error));
    if (error) {
        fprintf(stderr, "%s\n", error->message);
        g_clear_error(&error);
    }
    Progress p = {g_array_new(FALSE, FALSE, sizeof(double)), g_ptr_array_new_with_free_func(g_free), FALSE, w};
    g_signal_connect(w, "job-progress", G_CALLBACK(on_progress), &p);
    int64_t n_orders = sql_int(store, "SELECT count(*) FROM orders");
    CHECK(n_orders == 24 * COPIES);
    CHECK(sql_int(store, "SELECT count(*) FROM models") == 1);

    /* 1. cancel once the first epoch is reported */
    g_settings_set_int(settings, "train-epochs", 200);
    char *before = store_state();
    GPtrArray *files0 = model_files();
    progress_reset(&p, TRUE);
    g_action_group_activate_action(G_ACTION_GROUP(w), "train", NULL);
    CHECK(craft_window_job_running(w));
    CHECK(SPIN_UNTIL(!craft_window_job_running(w), 240000));
    const char *msg = craft_window_get_job_message(w);
    printf("  cancel: %u epoch reports; \"%s\"\n", p.fractions->len, msg ? msg : "(none)");
    CHECK(msg && strstr(msg, "cancelled"));
    /* the worker waits (up to 2 s) for each epoch to be shown, so it stops at the next one; a
     * main loop slower than that (valgrind) lets it run a little further, never to the end */
    CHECK(p.fractions->len >= 1 && p.fractions->len < 200);
    if (p.fractions->len != 1)
        printf("  (cancel landed after %u epochs: the main loop was slow)\n", p.fractions->len);
    char *after = store_state();
    CHECK(strcmp(before, after) == 0);
    if (strcmp(before, after))
        fprintf(stderr, "store before: %s\nstore after:  %s\n", before, after);
    GPtrArray *files1 = model_files();
    CHECK(files1->len == files0->len); /* the cancelled checkpoint is gone */
    g_free(before);
    g_free(after);
    g_ptr_array_unref(files1);

    /* 2. a completed training: progress per epoch, then the new model scores the store */
    g_settings_set_int(settings, "train-epochs", 3);
    progress_reset(&p, FALSE);
    g_action_group_activate_action(G_ACTION_GROUP(w), "train", NULL);
    CHECK(SPIN_UNTIL(!craft_window_job_running(w), 240000));
    msg = craft_window_get_job_message(w);
    printf("  train: %u epoch reports; last job: \"%s\"\n", p.fractions->len, msg ? msg : "(none)");
    for (guint i = 0; i < p.texts->len; i++)
        printf("    %.3f  %s\n", g_array_index(p.fractions, double, i), (const char *)g_ptr_array_index(p.texts, i));
    CHECK(p.fractions->len == 3);
    for (guint i = 0; i < p.fractions->len; i++) {
        CHECK(fabs(g_array_index(p.fractions, double, i) - (i + 1) / 3.0) < 0.002);
        char want[64];
        snprintf(want, sizeof want, "epoch %u of 3", i + 1);
        CHECK(strstr(g_ptr_array_index(p.texts, i), want) != NULL);
    }
    CHECK(msg && g_str_has_prefix(msg, "Scored"));
    GPtrArray *files2 = model_files();
    CHECK(files2->len == files0->len + 1);
    CHECK(sql_int(store, "SELECT count(*) FROM models") == 2);
    int64_t new_id = sql_int(store, "SELECT max(id) FROM models");
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM predictions WHERE model_id = %lld AND off = 0", (long long)new_id);
    CHECK(sql_int(store, sql) == n_orders);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM scoring_runs WHERE model_id = %lld AND finished IS NOT NULL",
             (long long)new_id);
    CHECK(sql_int(store, sql) == 1);
    /* the registered model is the file the training wrote */
    craft_store *s = NULL;
    craft_error err = {0};
    craft_model_info *info = NULL;
    int n_info = 0;
    if (craft_store_open(&s, store, CRAFT_STORE_READONLY, &err) == CRAFT_OK &&
        craft_store_models(s, &info, &n_info, &err) == CRAFT_OK) {
        gboolean found = FALSE;
        for (int i = 0; i < n_info; i++)
            for (guint f = 0; f < files2->len; f++)
                found |= info[i].id == new_id && !g_strcmp0(info[i].path, g_ptr_array_index(files2, f));
        CHECK(found);
        craft_model_info_free(info, n_info);
    } else {
        CHECK(!"the store opens");
    }
    if (s)
        craft_store_close(s);
    for (guint f = 0; f < files2->len; f++)
        if (!g_ptr_array_find_with_equal_func(files0, g_ptr_array_index(files2, f), g_str_equal, NULL))
            g_remove(g_ptr_array_index(files2, f));
    g_ptr_array_unref(files0);
    g_ptr_array_unref(files2);
    g_array_unref(p.fractions);
    g_ptr_array_unref(p.texts);
    gtk_window_destroy(GTK_WINDOW(w));
    g_application_quit(app);
}

int main(int argc, char **argv)
{
    const char *fixtures = getenv("CRAFT_FIXTURES");
    if (!fixtures || !gtk_init_check())
        return 77;
    dir = g_dir_make_tmp("craftdesk-train-test-XXXXXX", NULL);
    store = g_build_filename(dir, "train.craftdb", NULL);
    if (!make_store(fixtures))
        return 1;
    CraftApplication *app = craft_application_new();
    g_signal_connect(app, "activate", G_CALLBACK(on_activate), NULL);
    int rc = g_application_run(G_APPLICATION(app), 1, argv);
    g_object_unref(app);
    remove_store(store);
    g_rmdir(dir);
    printf("%s\n", failures ? "FAILED" : "train from the app: ok");
    return rc || failures ? 1 : 0;
}
