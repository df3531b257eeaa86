/* craft-background.c: worker threads below the main thread's priority. */
#include "craft-background.h"

#include <sys/resource.h>
#include <unistd.h>

#define CRAFT_WORKER_NICE 10

void craft_background_thread(void)
{
    static __thread gboolean lowered;
    if (lowered)
        return;
    lowered = TRUE;
    /* Linux keeps a nice value per thread: this thread's id names this thread only;
     * raising one's own nice value needs no privilege (lowering it again would) */
    int now = getpriority(PRIO_PROCESS, (id_t)gettid());
    if (now < CRAFT_WORKER_NICE && setpriority(PRIO_PROCESS, (id_t)gettid(), CRAFT_WORKER_NICE) != 0)
        g_debug("worker thread priority unchanged: %s", g_strerror(errno));
}
