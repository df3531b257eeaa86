/* process.h: process-wide setup shared by craft and craftdesk. */
#ifndef CRAFT_PROCESS_H
#define CRAFT_PROCESS_H

/* The engine's OpenMP threads must wait passively: spinning threads on a shared
 * 2-core desktop starve each other (measured: 6 instead of 97 orders/s at batch 1
 * under load). libgomp reads OMP_WAIT_POLICY only when it loads, so when the
 * variable is unset this sets it and re-executes the program once. Returns only
 * when the policy is in place (or re-execution was impossible). The same step gives
 * OpenBLAS one thread (OPENBLAS_NUM_THREADS=1): the engine splits products itself. */
void craft_process_init(int argc, char **argv);

#endif
