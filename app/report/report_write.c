/* report_write.c: select, gather and render in one call, writing a temporary file
 * beside the output and renaming it over the output only when all went well
 * (app/core/outfile.h: a device or FIFO is written in place, never replaced). */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"
#include "scoring.h"

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
    /* A report names entities, notes and actors, like the store it comes from: a new
     * file is 0600 (a replaced file keeps its own mode; a device or FIFO is written
     * in place, never replaced, its mode untouched). */
    craft_outfile of;
    if (craft_outfile_open(&of, path, 0600, err))
        return err->code;
    FILE *f = of.f;
    int rc = CRAFT_OK;
    if (fmt == CRAFT_REPORT_CSV) {
        rc = craft_report_write_csv(s, sel, f, o->progress, o->user, o->cancel, &stats->n_cases, err);
    } else {
        craft_report r;
        rc = craft_report_build(s, sel, &r, o->progress, o->user, o->cancel, err);
        if (!rc) {
            stats->n_cases = r.n_cases;
            if (fmt == CRAFT_REPORT_PDF)
                rc = craft_report_write_pdf_stream(&r, f, path, o->progress, o->user, o->cancel, &stats->pages, err);
            else if (fmt == CRAFT_REPORT_JSON)
                rc = craft_report_write_json(&r, f, err);
            else
                rc = craft_report_write_markdown(&r, f, err);
            craft_report_free(&r);
        }
    }
    if (!rc)
        rc = craft_outfile_commit(&of, err);
    else
        craft_outfile_discard(&of);
    stats->seconds = craft_now() - t0;
    return rc;
}
