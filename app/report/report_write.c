/* report_write.c: select, gather and render in one call, writing a temporary file
 * beside the output and renaming it over the output only when all went well. */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scoring.h"

/* A temporary file in the output's directory (so the rename stays on one file system). */
static int temp_beside(const char *path, char **tmp_out, craft_error *err)
{
    char *tmp = malloc(strlen(path) + 16);
    if (!tmp)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    sprintf(tmp, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return craft_fail(err, CRAFT_EIO, "%s: cannot create a file there: %s", path, strerror(e));
    }
    /* a report is a document to share: the usual mode of a new file, or the old file's */
    struct stat old;
    fchmod(fd, stat(path, &old) == 0 ? (old.st_mode & 0777) : 0644);
    close(fd);
    *tmp_out = tmp;
    return CRAFT_OK;
}

/* Flushes the temporary file to disk and renames it over path. */
static int commit(const char *tmp, const char *path, craft_error *err)
{
    int fd = open(tmp, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (rename(tmp, path) != 0)
        return craft_fail(err, CRAFT_EIO, "%s: cannot replace it: %s", path, strerror(errno));
    return CRAFT_OK;
}

int craft_report_write(craft_store *s, const craft_report_selection *sel, const char *path,
                       const craft_report_options *o, craft_report_stats *stats, craft_error *err)
{
    craft_report_options none = {0};
    if (!o)
        o = &none;
    craft_report_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    double t0 = craft_now();
    craft_report_format fmt = o->format ? o->format : craft_report_format_from_path(path);
    if (fmt == CRAFT_REPORT_AUTO)
        return craft_fail(err, CRAFT_EINPUT, "%s: the output must end in .pdf, .json, .md or .csv", path);
    char *tmp = NULL;
    if (temp_beside(path, &tmp, err))
        return err->code;
    int rc = CRAFT_OK;
    if (fmt == CRAFT_REPORT_CSV) {
        FILE *f = fopen(tmp, "wb");
        if (!f)
            rc = craft_fail(err, CRAFT_EIO, "%s: cannot write: %s", tmp, strerror(errno));
        if (!rc)
            rc = craft_report_write_csv(s, sel, f, o->progress, o->user, o->cancel, &stats->n_cases, err);
        if (f && fclose(f) != 0 && !rc)
            rc = craft_fail(err, CRAFT_EIO, "%s: writing failed: %s", path, strerror(errno));
    } else {
        craft_report r;
        rc = craft_report_build(s, sel, &r, o->progress, o->user, o->cancel, err);
        if (!rc) {
            stats->n_cases = r.n_cases;
            if (fmt == CRAFT_REPORT_PDF) {
                rc = craft_report_write_pdf(&r, tmp, o->progress, o->user, o->cancel, &stats->pages, err);
            } else {
                FILE *f = fopen(tmp, "wb");
                if (!f)
                    rc = craft_fail(err, CRAFT_EIO, "%s: cannot write: %s", tmp, strerror(errno));
                else if (fmt == CRAFT_REPORT_JSON)
                    rc = craft_report_write_json(&r, f, err);
                else
                    rc = craft_report_write_markdown(&r, f, err);
                if (f && fclose(f) != 0 && !rc)
                    rc = craft_fail(err, CRAFT_EIO, "%s: writing failed: %s", path, strerror(errno));
            }
            craft_report_free(&r);
        }
    }
    if (!rc)
        rc = commit(tmp, path, err);
    if (rc)
        unlink(tmp);
    free(tmp);
    stats->seconds = craft_now() - t0;
    return rc;
}
