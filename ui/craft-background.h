/* craft-background.h: the scheduling priority of the window's worker threads. */
#ifndef CRAFT_BACKGROUND_H
#define CRAFT_BACKGROUND_H

#include <glib.h>

G_BEGIN_DECLS

/* Lowers the calling worker thread to nice 10 (once per thread; threads it starts,
 * OpenMP's included, inherit it). On a machine with two cores the readers, the
 * engine and the jobs would otherwise take the CPU from the thread that draws the
 * window: the work itself is not slower when the window is idle. Call it first
 * thing in every function run off the main thread. */
void craft_background_thread(void);

G_END_DECLS

#endif
