/* craft import: orders (JSONL, CSV) into a case store, all-or-nothing by default. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "scoring.h"
#include "store.h"

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
           "  --replace            a duplicate order_id replaces the stored order (its scores go)\n"
           "  --max-errors N       list at most N bad rows (default 20), then count the rest\n\n"
           "Without --skip-bad one bad row stores nothing: every bad row is listed as FILE:LINE: reason\n"
           "and the exit status is 65. A duplicate order_id is a bad row unless --replace.\n"
           "Progress (orders, orders/s, time left) goes to standard error on a terminal.\n");
}

typedef struct {
    FILE *rejects;
    int listed, max_listed;
    uint64_t total;
    int write_failed;
} reject_sink;

static void on_reject(void *user, const char *file, size_t line, const char *reason, const char *row, size_t len)
{
    reject_sink *rs = user;
    rs->total++;
    if (rs->listed < rs->max_listed) {
        fprintf(stderr, "%s%s:%zu: %s\n", isatty(2) ? "\r" : "", file, line, reason);
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
    if (ferror(f))
        rs->write_failed = 1;
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
    if (rejects_path) {
        o.skip_bad = 1;
        if (!(rs.rejects = fopen(rejects_path, "w"))) {
            fprintf(stderr, "craft import: cannot write %s: %s\n", rejects_path, strerror(errno));
            free(files);
            return EXIT_IOERR;
        }
    }
    o.on_reject = on_reject;
    o.reject_user = &rs;
    if (isatty(2))
        o.progress = show_progress;
    craft_error err = {0};
    craft_store *s;
    if (craft_store_open(&s, db, CRAFT_STORE_CREATE, &err)) {
        free(files);
        if (rs.rejects)
            fclose(rs.rejects);
        return cli_fail("import", &err);
    }
    craft_import_stats st;
    int rc = craft_store_import(s, files, n_files, &o, &st, &err);
    if (o.progress)
        fputc('\n', stderr);
    if (rs.total > (uint64_t)rs.listed)
        fprintf(stderr, "... and %llu more bad row%s\n", (unsigned long long)(rs.total - rs.listed),
                rs.total - rs.listed == 1 ? "" : "s");
    if (rc) {
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
        if (fclose(rs.rejects) || rs.write_failed) {
            fprintf(stderr, "craft import: writing %s failed\n", rejects_path);
            status = status ? status : EXIT_IOERR;
        }
    }
    craft_store_close(s);
    free(files);
    return status;
}
