/* commands.h: the `craft` subcommands. Each takes argv from its own name on,
 * prints its --help, and returns a process exit status (sysexits.h). */
#ifndef CRAFT_COMMANDS_H
#define CRAFT_COMMANDS_H

#include <stdio.h>

#include "craft.h"

#define EXIT_USAGE 64     /* EX_USAGE: bad command line */
#define EXIT_DATA 65      /* EX_DATAERR: bad input data or model */
#define EXIT_NOINPUT 66   /* EX_NOINPUT: a file cannot be opened */
#define EXIT_UNAVAIL 69   /* EX_UNAVAILABLE: the build or machine cannot do it */
#define EXIT_SOFTWARE 70  /* EX_SOFTWARE: an internal error */
#define EXIT_IOERR 74     /* EX_IOERR: writing failed */
#define EXIT_CANCELLED 130

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} craft_command;

/* Maps an engine error to an exit status and prints "craft NAME: message". */
int cli_fail(const char *cmd, const craft_error *err);
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 when path is a regular file that opens (checked without blocking), else says
 * why ("cannot open: is a directory", "not a regular file": a FIFO would block
 * the load forever) and returns EXIT_NOINPUT. For model paths. */
int cli_model_file(const char *cmd, const char *path);
/* Parses an integer option value in [lo, hi]. */
int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);

int cmd_score(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
