/* device.h: choosing where the engine runs (--device cpu|cuda|auto, --precision fp32|fast). */
#ifndef CRAFT_DEVICE_H
#define CRAFT_DEVICE_H

#include "scoring.h"

/* Returns 0 and the device to use ("cpu" or "cuda"), or an exit status after
 * printing why: cuda without a usable GPU is EXIT_UNAVAIL (69); auto without one
 * falls back to the CPU and says so in one line on standard error. */
int cli_pick_device(const char *cmd, const char *requested, const char **chosen);

/* Parses --precision (NULL: fp32) for the chosen device into *precision
 * (CRAFT_PRECISION_*); fast is for the GPU only. Returns 0 or an exit status. */
int cli_pick_precision(const char *cmd, const char *requested, const char *device, int *precision);

/* The engine for the chosen device and precision, for craft_score_options.engine
 * and the bench: the CPU engine or the CUDA engine (the precision is kept). */
const craft_engine_ops *cli_engine_ops(const char *device, int precision);

#endif
