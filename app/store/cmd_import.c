/* craft import: orders (JSONL, CSV) into a case store, all-or-nothing by default. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "commands.h"
#include "outfile.h"
#include "scoring.h"
#include "store.h"
#include "termsafe.h"

static void help(void)
{
    printf("Usage: craft import --db DB [options] FILE...\n\n"
           "Imports orders (JSON Lines, or CSV for *.csv; - is standard input) into the case store DB\n"
           "(created, mode 0600, when absent). Features are stored by name; the dataset records its\n"
           "feature list. The import is one transaction: it is stored whole or not at all, also when\n"
           "the program is killed.\n\n"
           "  --db DB              the case store file\n"
           "  --dataset NAME       the dataset to import into (default \"default\")\n"
           "  --format jsonl|csv   override the format guessed from the file name\n"
           "  --skip-bad REJECTS   store the good rows; write each bad row with its reason to REJECTS\n"
           "                       (JSON Lines: file, line, reason, row)\n"
           "  --replace            a duplicate order_id replaces the stored order (its scores go;\n"
           "                       its case keeps status and decision, with a \"replace\" audit row)\n"
           "  --max-errors N       list at most N bad rows (default 20), then count the rest\n\n"
           "Without --skip-bad one bad row stores nothing: every bad row is listed as FILE:LINE: reason\n"
           "and the exit status is 65. A duplicate order_id is a bad row unless --replace.\n"
           "Progress (orders, orders/s, time left) goes to standard error on a terminal.\n");
}

typedef struct {
    FILE *rejects;
    int listed, max_listed;
    uint64_t total;
    int write_failed, write_errno;
    volatile int cancel;     /* set when the rejects cannot be written: the import stores nothing */
} reject_sink;

static void on_reject(void *user, const char *file, size_t line, const char *reason, const char *row, size_t len)
{
    reject_sink *rs = user;
    rs->total++;
    if (rs->listed < rs->max_listed) {
        fprintf(stderr, "%s", isatty(2) ? "\r" : "");
        craft_term_fputs(file, stderr, 0);
        fprintf(stderr, ":%zu: ", line);
        craft_term_fputs(reason, stderr, 0);
        fputc('\n', stderr);
        rs->listed++;
    }
    if (!rs->rejects)
        return;
    FILE *f = rs->rejects;
    fputs("{\"file\": ", f);
    craft_json_string(f, file);
    fprintf(f, ", \"line\": %zu, \"reason\": ", line);
    craft_json_string(f, reason);
    fputs(", \"row\": ", f);
    /* the row may hold NUL bytes or bytes that are not UTF-8 (that may be why it is
     * bad): the rejects file stays valid JSON Lines, with U+FFFD for each such byte */
    char *tmp = malloc(len * 3 + 1);
    if (tmp) {
        size_t k = 0;
        for (size_t i = 0; i < len;) {
            unsigned char c = (unsigned char)row[i];
            size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            if (c && n && i + n <= len && (n == 1 || craft_utf8_valid(row + i, n))) {
                memcpy(tmp + k, row + i, n);
                k += n;
                i += n;
                continue;
            }
            if (c)
                memcpy(tmp + k, "\xEF\xBF\xBD", 3), k += 3;
            i++;
        }
        tmp[k] = 0;
        craft_json_string(f, tmp);
        free(tmp);
    } else {
        fputs("null", f);
    }
    fputs("}\n", f);
    /* flushed row by row: a rejects file that cannot be written (a full disk,
     * /dev/full) cancels the import before its commit instead of after it */
    if (!rs->write_failed && (fflush(f) || ferror(f))) {
        rs->write_failed = 1;
        rs->write_errno = errno;
        rs->cancel = 1;
    }
}

static void show_progress(void *user, uint64_t done, uint64_t bytes, uint64_t total, double seconds)
{
    (void)user;
    double rate = seconds > 0 ? done / seconds : 0;
    if (total && bytes) {
        double left = seconds * ((double)total / bytes - 1.0);
        fprintf(stderr, "\r%llu orders, %.0f orders/s, %.0f%%, %.0f s left   ", (unsigned long long)done, rate,
                100.0 * bytes / total, left);
    } else {
        fprintf(stderr, "\r%llu orders, %.0f orders/s   ", (unsigned long long)done, rate);
    }
}

int cmd_import(int argc, char **argv)
{
    const char *db = NULL, *rejects_path = NULL;
    craft_import_options o = {0};
    reject_sink rs = {.max_listed = 20};
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int n_files = 0;
    if (!files)
        return EXIT_SOFTWARE;
    int status = 0;
    for (int i = 1; i < argc && !status; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            free(files);
            return 0;
        } else if (!strcmp(a, "--replace")) {
            o.replace = 1;
        } else if (a[0] == '-' && a[1] == '-' && a[2]) {
            if (!v)
                status = cli_usage("import", "%s needs a value", a);
            else if (!strcmp(a, "--db"))
                db = v, i++;
            else if (!strcmp(a, "--dataset"))
                o.dataset = v, i++;
            else if (!strcmp(a, "--skip-bad"))
                rejects_path = v, i++;
            else if (!strcmp(a, "--max-errors")) {
                if (cli_int("import", a, v, 0, 1000000, &rs.max_listed))
                    status = EXIT_USAGE;
                i++;
            } else if (!strcmp(a, "--format")) {
                if (!strcmp(v, "jsonl"))
                    o.format = CRAFT_FORMAT_JSONL;
                else if (!strcmp(v, "csv"))
                    o.format = CRAFT_FORMAT_CSV;
                else
                    status = cli_usage("import", "--format must be jsonl or csv");
                i++;
            } else {
                status = cli_usage("import", "unknown option %s", a);
            }
        } else {
            files[n_files++] = a;
        }
    }
    if (!status && (!db || !n_files))
        status = cli_usage("import", "--db and at least one FILE are required");
    if (status) {
        free(files);
        return status;
    }
    craft_outfile rof = {0};
    if (rejects_path) {
        o.skip_bad = 1;
        /* the rejects file replaces what it names: never the store or an input */
        int clash = craft_same_file(rejects_path, db);
        for (int i = 0; i < n_files && !clash; i++)
            clash = strcmp(files[i], "-") && craft_same_file(rejects_path, files[i]);
        if (clash) {
            fprintf(stderr, "craft import: --skip-bad %s is the store or an input file: refused\n", rejects_path);
            free(files);
            return EXIT_USAGE;
        }
        /* never through a symbolic link to a file (it would write wherever the link
         * points); a device or FIFO (/dev/stderr, a pipe) is written in place, a
         * file whole or not at all (app/core/outfile.h), 0600: it holds order rows */
        struct stat lst, tst;
        craft_error oerr = {0};
        if (lstat(rejects_path, &lst) == 0 && S_ISLNK(lst.st_mode) &&
            (stat(rejects_path, &tst) != 0 || S_ISREG(tst.st_mode))) {
            fprintf(stderr, "craft import: --skip-bad %s is a symbolic link: not followed (name the file itself)\n",
                    rejects_path);
            free(files);
            return EXIT_IOERR;
        }
        if (craft_outfile_open(&rof, rejects_path, 0600, &oerr)) {
            free(files);
            return cli_fail("import", &oerr);
        }
        rs.rejects = rof.f;
    }
    o.on_reject = on_reject;
    o.reject_user = &rs;
    o.cancel = &rs.cancel;
    if (isatty(2))
        o.progress = show_progress;
    craft_error err = {0};
    craft_store *s;
    if (craft_store_open(&s, db, CRAFT_STORE_CREATE, &err)) {
        free(files);
        if (rs.rejects)
            craft_outfile_discard(&rof);
        return cli_fail("import", &err);
    }
    craft_import_stats st;
    int rc = craft_store_import(s, files, n_files, &o, &st, &err);
    if (o.progress)
        fputc('\n', stderr);
    if (rs.total > (uint64_t)rs.listed)
        fprintf(stderr, "... and %llu more bad row%s\n", (unsigned long long)(rs.total - rs.listed),
                rs.total - rs.listed == 1 ? "" : "s");
    if (rc && rs.write_failed) {
        fprintf(stderr, "craft import: writing the rejected rows to %s failed: %s; nothing was imported\n",
                rejects_path, strerror(rs.write_errno ? rs.write_errno : EIO));
        status = EXIT_IOERR;
    } else if (rc) {
        status = cli_fail("import", &err);
    } else {
        fprintf(stderr, "imported %llu orders (%llu replaced, %llu new features) in %.1f s, %.0f orders/s",
                (unsigned long long)st.stored, (unsigned long long)st.replaced, (unsigned long long)st.new_features,
                st.seconds, st.seconds > 0 ? st.stored / st.seconds : 0.0);
        if (st.bad)
            fprintf(stderr, "; %llu bad rows written to %s", (unsigned long long)st.bad, rejects_path);
        fputc('\n', stderr);
    }
    if (rs.rejects) {
        craft_error rerr = {0};
        if (rs.write_failed) {
            craft_outfile_discard(&rof);
        } else if (craft_outfile_commit(&rof, &rerr)) {
            /* the import itself is done (or failed) either way: say which */
            fprintf(stderr, "craft import: %s; %s\n", rerr.msg,
                    rc ? "the import stored nothing"
                       : "the import WAS stored (committed): only the list of rejected rows is missing");
            status = status ? status : EXIT_IOERR;
        }
    }
    craft_store_close(s);
    free(files);
    return status;
}
