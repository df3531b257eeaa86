/* process.c: see process.h. */
#include "process.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void craft_process_init(int argc, char **argv)
{
    (void)argc;
    if (getenv("OMP_WAIT_POLICY"))
        return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    /* ...after a short spin (about 0.2 ms): measured on the idle 2-core machine, batch-1
     * scoring takes 4.4 ms with it and 5.4 ms without (3 ms spins: 4.2 ms, but 15x slower
     * under load). */
    if (!getenv("GOMP_SPINCOUNT"))
        setenv("GOMP_SPINCOUNT", "20000", 1);
    /* The engine calls OpenBLAS single-threaded (it splits products itself); without
     * this OpenBLAS starts its own pool at load, and one of its threads spins. */
    if (!getenv("OPENBLAS_NUM_THREADS"))
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
    /* Under valgrind /proc/self/exe is valgrind's own tool, which refuses to run:
     * stay in this process (its preload library shows in LD_PRELOAD). */
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload"))
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): run on with spinning threads rather than not at all */
}
