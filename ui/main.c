/* main.c: craftdesk. The logic lives in the display-free libraries; this only starts GTK. */
#include "craft-application.h"
#include "process.h"

int main(int argc, char **argv)
{
    craft_process_init(argc, argv);
    CraftApplication *app = craft_application_new();
    int status = g_application_run(G_APPLICATION(app), argc, argv);
    g_object_unref(app);
    return status;
}
