/* craft-application.h: the CRAFT Desk application (AdwApplication). */
#ifndef CRAFT_APPLICATION_H
#define CRAFT_APPLICATION_H

#include <adwaita.h>

G_BEGIN_DECLS

#define CRAFT_APP_ID "io.github.craftdesk.CraftDesk"
#define CRAFT_TYPE_APPLICATION (craft_application_get_type())
G_DECLARE_FINAL_TYPE(CraftApplication, craft_application, CRAFT, APPLICATION, AdwApplication)

CraftApplication *craft_application_new(void);
/* The application's settings (schema io.github.craftdesk.CraftDesk). */
GSettings *craft_application_get_settings(CraftApplication *self);

G_END_DECLS

#endif
