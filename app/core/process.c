/* process.c: see process.h. */
#include "process.h"

#include <stdlib.h>
#include <unistd.h>

void craft_process_init(int argc, char **argv)
{
    (void)argc;
    if (getenv("OMP_WAIT_POLICY"))
        return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): run on with spinning threads rather than not at all */
}
