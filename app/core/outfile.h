/* outfile.h: the one way the craft commands write an output file (--output of
 * score, report, synth): whole or not at all, and never replacing what is not a
 * regular file.
 *
 *  - a regular file or a new name: the bytes go to PATH.tmp-XXXXXX beside it,
 *    which is flushed, fsynced and renamed over PATH only on commit (a reader
 *    sees the old file or the whole new one; a failed or interrupted run leaves
 *    PATH as it was). A symbolic link to a regular file is followed: its target
 *    is replaced, the link stays.
 *  - a character device or a FIFO (/dev/null, /dev/stdout, a named pipe): written
 *    in place, never replaced, its mode untouched (it cannot be made atomic; a
 *    failed run may have written part of its output there).
 *  - a directory, a block device, a socket: refused.
 *
 * A new file gets new_mode (less nothing: the caller chooses, e.g. 0600 for
 * data that names people, 0666 & ~umask for data files); a replaced regular file
 * keeps its own permission bits (never a device's). */
#ifndef CRAFT_OUTFILE_H
#define CRAFT_OUTFILE_H

#include <stdio.h>
#include <sys/types.h>

#include "craft.h"

typedef struct {
    char *path;     /* the destination as given */
    char *target;   /* where the rename lands (path, or a symbolic link's target) */
    char *tmp;      /* the temporary file; NULL when written in place */
    FILE *f;        /* open for writing (binary) */
    int in_place;   /* 1: a device or FIFO written directly */
    int slot;       /* the signal-cleanup slot of tmp, or -1 */
} craft_outfile;

/* The usual mode of a new data file: 0666 less the umask. */
mode_t craft_outfile_umask_mode(void);

/* Opens path for writing as above; on failure err names path and why (CRAFT_EIO,
 * or CRAFT_EINPUT for a directory, block device or socket). */
int craft_outfile_open(craft_outfile *o, const char *path, mode_t new_mode, craft_error *err);
/* Flushes, fsyncs and closes the file and renames it into place. On failure the
 * temporary file is removed and PATH keeps its old contents. */
int craft_outfile_commit(craft_outfile *o, craft_error *err);
/* Closes and removes the temporary file (PATH untouched). Safe after commit. */
void craft_outfile_discard(craft_outfile *o);

/* 1 when a and b name the same file (same device and inode, or the same name when
 * neither exists yet): an output must never replace the store or an input. */
int craft_same_file(const char *a, const char *b);

/* Installs SIGINT, SIGTERM, SIGHUP and SIGPIPE handlers that remove every open
 * outfile's temporary file and then die of the signal as before. For programs
 * (the craft CLI), not for a library user with its own handlers. */
void craft_outfile_cleanup_on_signals(void);

#endif
