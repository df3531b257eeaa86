/* craft-application.c: application actions, accelerators, settings, about. */
#include "craft-application.h"

#include "craft-window.h"

struct _CraftApplication {
    AdwApplication parent_instance;
    GSettings *settings;
};

G_DEFINE_FINAL_TYPE(CraftApplication, craft_application, ADW_TYPE_APPLICATION)

/* The schema from the system, or from the build tree (running uninstalled, tests). */
static GSettings *open_settings(void)
{
    GSettingsSchemaSource *src = g_settings_schema_source_get_default();
    GSettingsSchema *schema = src ? g_settings_schema_source_lookup(src, CRAFT_APP_ID, TRUE) : NULL;
    if (!schema) {
        GSettingsSchemaSource *build = g_settings_schema_source_new_from_directory(CRAFT_SCHEMA_DIR, src, FALSE, NULL);
        if (build) {
            schema = g_settings_schema_source_lookup(build, CRAFT_APP_ID, FALSE);
            g_settings_schema_source_unref(build);
        }
    }
    if (!schema)
        return NULL;
    GSettings *s = g_settings_new_full(schema, NULL, NULL);
    g_settings_schema_unref(schema);
    return s;
}

GSettings *craft_application_get_settings(CraftApplication *self) { return self->settings; }

static CraftWindow *main_window(CraftApplication *self)
{
    GtkWindow *w = gtk_application_get_active_window(GTK_APPLICATION(self));
    if (!w) {
        w = GTK_WINDOW(craft_window_new(GTK_APPLICATION(self)));
        if (self->settings)
            gtk_window_set_default_size(w, g_settings_get_int(self->settings, "window-width"),
                                        g_settings_get_int(self->settings, "window-height"));
    }
    return CRAFT_WINDOW(w);
}

static void open_path(CraftApplication *self, const char *path)
{
    CraftWindow *w = main_window(self);
    GError *error = NULL;
    if (!craft_window_open_store(w, path, &error)) {
        char *t = g_strdup_printf("Could not open %s: %s", path, error->message);
        craft_window_toast(w, t);
        g_free(t);
        g_error_free(error);
    } else if (self->settings) {
        g_settings_set_string(self->settings, "last-store", path);
    }
    gtk_window_present(GTK_WINDOW(w));
}

static void craft_application_activate(GApplication *app)
{
    CraftApplication *self = CRAFT_APPLICATION(app);
    CraftWindow *w = main_window(self);
    char *last = self->settings ? g_settings_get_string(self->settings, "last-store") : NULL;
    if (last && *last && g_file_test(last, G_FILE_TEST_IS_REGULAR))
        open_path(self, last);
    g_free(last);
    gtk_window_present(GTK_WINDOW(w));
}

static void craft_application_open(GApplication *app, GFile **files, int n, const char *hint)
{
    char *path = g_file_get_path(files[0]);
    if (path)
        open_path(CRAFT_APPLICATION(app), path);
    g_free(path);
}

static void on_open_response(GtkNativeDialog *d, int response, CraftApplication *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
        char *path = g_file_get_path(f);
        if (gtk_file_chooser_get_action(GTK_FILE_CHOOSER(d)) == GTK_FILE_CHOOSER_ACTION_SAVE) {
            /* a new store: created empty here, then opened like any other */
            craft_store *s = NULL;
            craft_error err = {0};
            if (craft_store_open(&s, path, CRAFT_STORE_CREATE, &err) == CRAFT_OK)
                craft_store_close(s);
        }
        open_path(self, path);
        g_free(path);
        g_object_unref(f);
    }
    g_object_unref(d);
}

static void choose_store(CraftApplication *self, gboolean create)
{
    GtkFileChooserNative *d = gtk_file_chooser_native_new(create ? "New Case Store" : "Open Case Store",
                                                          GTK_WINDOW(main_window(self)),
                                                          create ? GTK_FILE_CHOOSER_ACTION_SAVE : GTK_FILE_CHOOSER_ACTION_OPEN,
                                                          create ? "_Create" : "_Open", "_Cancel");
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, "Case stores");
    gtk_file_filter_add_pattern(f, "*.craftdb");
    gtk_file_filter_add_pattern(f, "*.sqlite");
    gtk_file_filter_add_pattern(f, "*.db");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d), f);
    g_object_unref(f);
    g_signal_connect(d, "response", G_CALLBACK(on_open_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

static void act_open(GSimpleAction *a, GVariant *p, gpointer user) { choose_store(user, FALSE); }
static void act_new(GSimpleAction *a, GVariant *p, gpointer user) { choose_store(user, TRUE); }
static void act_quit(GSimpleAction *a, GVariant *p, gpointer user) { g_application_quit(user); }

static void act_dark(GSimpleAction *a, GVariant *p, gpointer user)
{
    AdwStyleManager *sm = adw_style_manager_get_default();
    gboolean dark = !adw_style_manager_get_dark(sm);
    adw_style_manager_set_color_scheme(sm, dark ? ADW_COLOR_SCHEME_FORCE_DARK : ADW_COLOR_SCHEME_FORCE_LIGHT);
    g_simple_action_set_state(a, g_variant_new_boolean(dark));
}

static void act_about(GSimpleAction *a, GVariant *p, gpointer user)
{
    const char *developers[] = {"The CRAFT Desk developers", NULL};
    GtkWidget *about = adw_about_window_new();
    g_object_set(about, "transient-for", main_window(user), "application-name", "CRAFT Desk", "application-icon",
                 CRAFT_APP_ID, "version", CRAFT_VERSION, "developer-name", "The CRAFT Desk developers", "developers",
                 developers, "license-type", GTK_LICENSE_MIT_X11, "comments",
                 "Review flagged orders with cross-modal explanations", NULL);
    gtk_window_present(GTK_WINDOW(about));
}

static const GActionEntry app_actions[] = {
    {"open", act_open}, {"new-store", act_new}, {"quit", act_quit}, {"about", act_about},
    {"dark", act_dark, NULL, "false"},
};

static void craft_application_startup(GApplication *app)
{
    G_APPLICATION_CLASS(craft_application_parent_class)->startup(app);
    CraftApplication *self = CRAFT_APPLICATION(app);
    g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
    GtkApplication *g = GTK_APPLICATION(app);
    struct { const char *action; const char *accels[3]; } accels[] = {
        {"app.open", {"<Ctrl>o", NULL}}, {"app.quit", {"<Ctrl>q", NULL}},
        {"win.import", {"<Ctrl>i", NULL}}, {"win.score", {"<Ctrl>r", NULL}},
        {"win.search", {"<Ctrl>f", NULL}}, {"win.next-case", {"<Ctrl>j", "<Alt>Down", NULL}},
        {"win.previous-case", {"<Ctrl>k", "<Alt>Up", NULL}}, {"win.decide-confirm", {"<Ctrl>1", NULL}},
        {"win.decide-false-positive", {"<Ctrl>2", NULL}}, {"win.decide-escalate", {"<Ctrl>3", NULL}},
        {"win.decide-needs-info", {"<Ctrl>4", NULL}}, {"win.toggle-modality(0)", {"<Ctrl><Shift>1", "<Ctrl>exclam", NULL}},
        {"win.toggle-modality(1)", {"<Ctrl><Shift>2", "<Ctrl>at", NULL}}, {"win.show-score-space", {"<Ctrl>m", NULL}},
        {"win.export-case", {"<Ctrl>e", NULL}}, {"win.export-selection", {"<Ctrl><Shift>e", NULL}},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(accels); i++)
        gtk_application_set_accels_for_action(g, accels[i].action, accels[i].accels);
    self->settings = open_settings();
    if (!self->settings)
        g_warning("settings schema %s not found: preferences will not be kept", CRAFT_APP_ID);
    if (g_getenv("CRAFT_DARK")) /* screenshots and tests of the dark style */
        adw_style_manager_set_color_scheme(adw_style_manager_get_default(), ADW_COLOR_SCHEME_FORCE_DARK);
}

/* Before the process exits: the interaction worker stops after its current engine run
 * (the engine's libraries must not be torn down under it). */
static void craft_application_shutdown(GApplication *app)
{
    craft_window_stop_workers();
    G_APPLICATION_CLASS(craft_application_parent_class)->shutdown(app);
}

static void craft_application_finalize(GObject *o)
{
    g_clear_object(&CRAFT_APPLICATION(o)->settings);
    G_OBJECT_CLASS(craft_application_parent_class)->finalize(o);
}

static void craft_application_class_init(CraftApplicationClass *k)
{
    G_OBJECT_CLASS(k)->finalize = craft_application_finalize;
    G_APPLICATION_CLASS(k)->startup = craft_application_startup;
    G_APPLICATION_CLASS(k)->shutdown = craft_application_shutdown;
    G_APPLICATION_CLASS(k)->activate = craft_application_activate;
    G_APPLICATION_CLASS(k)->open = craft_application_open;
}

static void craft_application_init(CraftApplication *self) {}

CraftApplication *craft_application_new(void)
{
    return g_object_new(CRAFT_TYPE_APPLICATION, "application-id", CRAFT_APP_ID, "flags",
                        G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE, "resource-base-path",
                        "/io/github/craftdesk/CraftDesk", NULL);
}
