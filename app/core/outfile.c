/* outfile.c: whole-or-nothing output files that never replace a device or FIFO
 * (outfile.h). */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------- signal-time cleanup */

#define OUTFILE_SLOTS 8
#define OUTFILE_PATH_MAX 4096
static char slot_path[OUTFILE_SLOTS][OUTFILE_PATH_MAX];
static volatile sig_atomic_t slot_used[OUTFILE_SLOTS];

static int slot_take(const char *tmp)
{
    if (strlen(tmp) >= OUTFILE_PATH_MAX)
        return -1;
    for (int i = 0; i < OUTFILE_SLOTS; i++)
        if (!slot_used[i]) {
            memcpy(slot_path[i], tmp, strlen(tmp) + 1);
            slot_used[i] = 1;
            return i;
        }
    return -1;
}

static void slot_release(int i)
{
    if (i >= 0 && i < OUTFILE_SLOTS)
        slot_used[i] = 0;
}

static void on_signal(int sig)
{
    for (int i = 0; i < OUTFILE_SLOTS; i++)
        if (slot_used[i])
            unlink(slot_path[i]); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

void craft_outfile_cleanup_on_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old;
        /* a signal the caller's parent ignores (nohup) stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

/* ----------------------------------------------------------- the file */

mode_t craft_outfile_umask_mode(void)
{
    mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void clear(craft_outfile *o)
{
    free(o->path);
    free(o->target);
    free(o->tmp);
    memset(o, 0, sizeof *o);
    o->slot = -1;
}

/* 1 when following the symbolic link at path is what the kernel's
 * protected_symlinks would allow: the link is ours, or its folder is not a
 * sticky world-writable one (/tmp), or the link's owner owns the folder. */
static int link_may_be_followed(const char *path, const struct stat *lst)
{
    if (lst->st_uid == geteuid())
        return 1;
    char *dir = dup_str(path);
    if (!dir)
        return 0;
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else
        slash[slash == dir ? 1 : 0] = 0;
    struct stat dst;
    int ok = stat(dir, &dst) == 0 && (!((dst.st_mode & S_ISVTX) && (dst.st_mode & S_IWOTH)) || dst.st_uid == lst->st_uid);
    free(dir);
    return ok;
}

int craft_outfile_open(craft_outfile *o, const char *path, mode_t new_mode, craft_error *err)
{
    memset(o, 0, sizeof *o);
    o->slot = -1;
    if (!path || !*path)
        return craft_fail(err, CRAFT_EINPUT, "an output needs a file name");
    if (!(o->path = dup_str(path))) {
        clear(o);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    struct stat lst, st;
    int have_l = lstat(path, &lst) == 0, have = stat(path, &st) == 0;
    if (have && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        /* a device or a pipe: written where it is, never replaced (a FIFO's open
         * waits for its reader, as a shell's > does) */
        int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            clear(o);
            return craft_fail(err, CRAFT_EIO, "%s: cannot write: %s", path, strerror(e));
        }
        o->in_place = 1;
        return CRAFT_OK;
    }
    if (have && !S_ISREG(st.st_mode)) {
        clear(o);
        return craft_fail(err, CRAFT_EIO, "%s: is a %s, not a file to write", path,
                          S_ISDIR(st.st_mode) ? "directory" : S_ISBLK(st.st_mode) ? "block device" : "socket");
    }
    mode_t mode = new_mode & 0777;
    if (have) {
        mode = st.st_mode & 0777; /* a regular file keeps its own permissions */
        if (have_l && S_ISLNK(lst.st_mode)) {
            /* the link stays; its target is replaced (when the kernel would let us follow it) */
            char *real = realpath(path, NULL);
            if (!real || !link_may_be_followed(path, &lst)) {
                free(real);
                clear(o);
                return craft_fail(err, CRAFT_EIO,
                                  "%s: a symbolic link in a shared sticky folder owned by someone else: not followed",
                                  path);
            }
            o->target = real;
        }
    } else if (have_l) {
        clear(o);
        return craft_fail(err, CRAFT_EIO, "%s: a symbolic link to nothing: not followed", path);
    }
    if (!o->target && !(o->target = dup_str(path))) {
        clear(o);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    size_t n = strlen(o->target) + 16;
    if (!(o->tmp = malloc(n))) {
        clear(o);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory");
    }
    snprintf(o->tmp, n, "%s.tmp-XXXXXX", o->target);
    int fd = mkostemp(o->tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        clear(o);
        return craft_fail(err, CRAFT_EIO, "%s: cannot create a file there: %s", path, strerror(e));
    }
    o->slot = slot_take(o->tmp);
    /* mkstemp made it 0600; fchmod is exact (no umask) */
    if (mode != 0600)
        fchmod(fd, mode);
    if (!(o->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        craft_outfile_discard(o);
        return craft_fail(err, CRAFT_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return CRAFT_OK;
}

int craft_outfile_commit(craft_outfile *o, craft_error *err)
{
    if (!o->path)
        return craft_fail(err, CRAFT_EIO, "no output open");
    int rc = CRAFT_OK, e = 0;
    if (o->f) {
        if (fflush(o->f) || ferror(o->f) || (!o->in_place && fsync(fileno(o->f))))
            e = errno ? errno : EIO, rc = CRAFT_EIO;
        if (fclose(o->f) && !rc)
            e = errno, rc = CRAFT_EIO;
        o->f = NULL;
    }
    if (!rc && !o->in_place && rename(o->tmp, o->target)) {
        int re = errno;
        rc = craft_fail(err, CRAFT_EIO, "%s: cannot replace it: %s (its old contents, if any, are kept)", o->path,
                        strerror(re));
    } else if (rc) {
        craft_fail(err, CRAFT_EIO, "%s: writing failed: %s%s", o->path, strerror(e ? e : EIO),
                   o->in_place ? "" : " (nothing was written there; its old contents, if any, are kept)");
    }
    if (rc) {
        craft_outfile_discard(o);
        return rc;
    }
    slot_release(o->slot);
    clear(o);
    return CRAFT_OK;
}

void craft_outfile_discard(craft_outfile *o)
{
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    if (o->tmp)
        unlink(o->tmp);
    slot_release(o->slot);
    clear(o);
}

int craft_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    int ha = stat(a, &sa) == 0, hb = stat(b, &sb) == 0;
    if (ha && hb)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return !ha && !hb && !strcmp(a, b);
}
