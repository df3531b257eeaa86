/* craft: the command-line face of CRAFT Desk. Everything the app does, scriptable. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "outfile.h"
#include "process.h"
#include "termsafe.h"

/* Commands of optional parts (the case store, say) are weak: a build without
 * them simply does not list them. */
int cmd_import(int argc, char **argv) __attribute__((weak));
int cmd_cases(int argc, char **argv) __attribute__((weak));
int cmd_synth(int argc, char **argv) __attribute__((weak));
int cmd_train(int argc, char **argv) __attribute__((weak));
int cmd_config(int argc, char **argv) __attribute__((weak));
int cmd_eval(int argc, char **argv) __attribute__((weak));
int cmd_report(int argc, char **argv) __attribute__((weak));

static const craft_command commands[] = {
    {"import", "import orders into a case store (all-or-nothing)", cmd_import},
    {"score", "score orders with a model (scores, explanations, subsets)", cmd_score},
    {"cases", "list, show and decide cases in a case store", cmd_cases},
    {"explain", "score with explanations (same as score --explain)", NULL},
    {"train", "train a model on labelled orders", cmd_train},
    {"config", "make a model config from a labelled orders file (config init)", cmd_config},
    {"eval", "evaluate a model: PR-AUC, ROC-AUC, subsets, baselines, noise", cmd_eval},
    {"synth", "generate realistic synthetic orders with planted defects", cmd_synth},
    {"report", "explanation reports (PDF, JSON, Markdown)", cmd_report},
    {"model", "inspect a model checkpoint (craft model info M)", cmd_model},
    {"bench", "measure scoring speed on a random model of a given shape", cmd_bench},
};

static int cmd_explain(int argc, char **argv)
{
    /* craft explain ... == craft score --explain ... */
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return EXIT_SOFTWARE;
    args[0] = "score";
    for (int i = 1; i < argc; i++)
        args[i] = argv[i];
    args[argc] = "--explain";
    int rc = cmd_score(argc + 1, args);
    free(args);
    return rc;
}

int cli_fail(const char *cmd, const craft_error *err)
{
    /* messages quote ids and rows from files and stores: escaped for the terminal */
    fprintf(stderr, "craft %s: ", cmd);
    craft_term_fputs(err->msg, stderr, 1);
    fputc('\n', stderr);
    switch (err->code) {
    case CRAFT_EIO: return strstr(err->msg, "cannot open") ? EXIT_NOINPUT : EXIT_IOERR;
    case CRAFT_EFORMAT:
    case CRAFT_EINPUT: return EXIT_DATA;
    case CRAFT_EUNSUPPORTED: return EXIT_UNAVAIL;
    case CRAFT_ECANCELLED: return EXIT_CANCELLED;
    default: return EXIT_SOFTWARE;
    }
}

int cli_model_file(const char *cmd, const char *path)
{
    /* O_NONBLOCK: a FIFO's open would wait for a writer forever */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    const char *why = NULL;
    if (fd < 0)
        why = strerror(errno);
    else if (fstat(fd, &st))
        why = strerror(errno);
    else if (S_ISDIR(st.st_mode))
        why = "is a directory";
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file (a FIFO, socket or device cannot be a model)";
    if (fd >= 0)
        close(fd);
    if (!why)
        return 0;
    fprintf(stderr, "craft %s: ", cmd);
    craft_term_fputs(path, stderr, 0);
    fprintf(stderr, ": cannot open: %s\n", why);
    return EXIT_NOINPUT;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "craft %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'craft %s --help'.\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || v < lo || v > hi) {
        cli_usage(cmd, "%s needs an integer in %ld..%ld, got \"%s\"", opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = (int)v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: craft COMMAND [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (commands[i].run || !strcmp(commands[i].name, "explain"))
            fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'craft COMMAND --help' describes each. Exit status: 0 done, 64 usage, 65 bad data or\n"
               "model, 66 a file cannot be opened, 69 unavailable here, 74 write error.\n");
}

/* Every command's standard output, checked once at the end: a listing that could
 * not be written (a full disk, a closed pipe, >/dev/full) is a write error (74),
 * never a silent success. */
static int finish_stdout(int status)
{
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int e = errno;
    if (fclose(stdout) != 0 && !bad)
        bad = 1, e = errno;
    if (!bad || status) /* a failed command has said why already */
        return status;
    fprintf(stderr, "craft: writing to standard output failed: %s\n", e ? strerror(e) : "write error");
    return status ? status : EXIT_IOERR;
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("craft 0.1.0\n");
        return 0;
    }
    if (!strcmp(argv[1], "explain"))
        return cmd_explain(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name) && commands[i].run)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "craft: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    craft_process_init(argc, argv);
    /* SIGINT/SIGTERM/SIGHUP remove a half-written --output's temporary file */
    craft_outfile_cleanup_on_signals();
    return finish_stdout(run(argc, argv));
}
