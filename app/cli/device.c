/* device.c: the CPU is the reference and the fallback; CUDA is used where built and present. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "device.h"

int cli_pick_device(const char *cmd, const char *requested, const char **chosen)
{
    if (!requested || !strcmp(requested, "cpu")) {
        *chosen = "cpu";
        return 0;
    }
    if (!strcmp(requested, "cuda")) {
        fprintf(stderr, "craft %s: --device cuda: this build of craft has no CUDA engine\n", cmd);
        return EXIT_UNAVAIL;
    }
    if (!strcmp(requested, "auto")) {
        fprintf(stderr, "craft %s: no CUDA engine in this build; using the CPU\n", cmd);
        *chosen = "cpu";
        return 0;
    }
    return cli_usage(cmd, "--device must be cpu, cuda or auto, got \"%s\"", requested);
}
