/* device.h: choosing where the engine runs (--device cpu|cuda|auto). */
#ifndef CRAFT_DEVICE_H
#define CRAFT_DEVICE_H

/* Returns 0 and the device to use ("cpu"), or an exit status after printing why. */
int cli_pick_device(const char *cmd, const char *requested, const char **chosen);

#endif
