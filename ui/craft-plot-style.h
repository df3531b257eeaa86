/* craft-plot-style.h: the view style (app/views palette) that matches the current
 * GNOME appearance: light or dark, background left to GTK. */
#ifndef CRAFT_PLOT_STYLE_H
#define CRAFT_PLOT_STYLE_H

#include <adwaita.h>

#include "palette.h"

static inline craft_view_style craft_plot_style_current(void)
{
    craft_view_style st = adw_style_manager_get_dark(adw_style_manager_get_default())
                              ? craft_view_style_dark() : craft_view_style_light();
    st.paint_bg = 0;
    return st;
}

#endif
