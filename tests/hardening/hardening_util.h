/* hardening_util.h: helpers shared by the hardening suites: a scratch folder,
 * running the craft CLI as a child (optionally with a file-size limit or without
 * root's permission override), SQLite checks of a store, generated orders for the
 * tiny fixture models. Header-only: each suite is one executable. */
#ifndef HARDENING_UTIL_H
#define HARDENING_UTIL_H

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "craft.h"
#include "../store/kill_util.h"
#include "../store/store_test_util.h"

static char hd_dir[256];

static inline const char *path_in(const char *name)
{
    static char b[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(b[k], sizeof b[k], "%.255s/%.300s", hd_dir, name);
    return b[k];
}

static inline const char *fixture(const char *name)
{
    static char b[4][512];
    static int k;
    k = (k + 1) % 4;
    const char *fx = getenv("CRAFT_FIXTURES");
    snprintf(b[k], sizeof b[k], "%s/%s", fx ? fx : "tests/fixtures", name);
    return b[k];
}

/* The craft binary, or NULL (the suite then exits 77). */
static inline const char *craft_bin(void)
{
    static char b[600];
    const char *build = getenv("CRAFT_BUILD");
    if (!build)
        return NULL;
    snprintf(b, sizeof b, "%s/app/cli/craft", build);
    return access(b, X_OK) ? NULL : b;
}

static inline int make_scratch(const char *name)
{
    snprintf(hd_dir, sizeof hd_dir, "%s/craft-%s-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
    return mkdtemp(hd_dir) ? 0 : -1;
}

static inline void remove_scratch(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", hd_dir, hd_dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", hd_dir);
}

/* A count from an environment variable (rounds of the crash tests), else dflt. */
static inline int env_count(const char *name, int dflt)
{
    const char *v = getenv(name);
    int n = v ? atoi(v) : 0;
    return n > 0 ? n : dflt;
}

static inline void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static inline double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline double urand(void)
{
    return rand() / (RAND_MAX + 1.0);
}

static inline int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char b[1 << 16];
    ssize_t n;
    int rc = in >= 0 && out >= 0 ? 0 : -1;
    while (!rc && (n = read(in, b, sizeof b)) > 0)
        rc = write(out, b, (size_t)n) == n ? 0 : -1;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* ------------------------------------------------------- running craft */

typedef struct {
    const char *stdout_path;   /* NULL: /dev/null */
    const char *stderr_path;   /* NULL: /dev/null */
    long long fsize_limit;     /* > 0: RLIMIT_FSIZE in bytes, SIGXFSZ ignored (a full disk) */
    int drop_dac;              /* 1: no permission override even as root (read-only files bite) */
    int new_group;             /* 1: own process group (kill the group) */
} run_opts;

/* Drops root's permission overrides for this process and what it execs, so a
 * file's mode bits apply as they do to an analyst. 0 when they no longer apply. */
static inline int drop_permission_override(void)
{
    if (geteuid() != 0)
        return 0;
    if (prctl(PR_CAPBSET_DROP, 1 /* CAP_DAC_OVERRIDE */, 0, 0, 0) ||
        prctl(PR_CAPBSET_DROP, 2 /* CAP_DAC_READ_SEARCH */, 0, 0, 0) ||
        prctl(PR_CAPBSET_DROP, 3 /* CAP_FOWNER */, 0, 0, 0))
        return -1;
    return 0;
}

/* Whether read-only files and folders can be tested here (root without CAP_SETPCAP cannot). */
static inline int permissions_testable(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(drop_permission_override() ? 1 : 0);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static inline pid_t spawn_craft(const run_opts *o, const char *const *args)
{
    const char *craft = craft_bin();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (o && o->new_group)
        setpgid(0, 0);
    int out = open(o && o->stdout_path ? o->stdout_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(o && o->stderr_path ? o->stderr_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0)
        _exit(126);
    dup2(out, 1);
    dup2(err, 2);
    if (o && o->fsize_limit > 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {(rlim_t)o->fsize_limit, (rlim_t)o->fsize_limit};
        if (setrlimit(RLIMIT_FSIZE, &rl))
            _exit(126);
    }
    if (o && o->drop_dac && drop_permission_override())
        _exit(126);
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)craft;
    for (; args[n - 1] && n < 63; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    execv(craft, argv);
    _exit(127);
}

/* Runs craft with args (NULL-terminated) to the end; the exit status, or 128+signal. */
static inline int run_craft(const run_opts *o, const char *const *args)
{
    pid_t pid = spawn_craft(o, args);
    if (pid < 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The whole of a (small) file, NUL-terminated; "" when missing. Caller frees. */
static inline char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    if (b)
        b[got] = 0;
    return b;
}

/* ------------------------------------------------------ store queries */

/* Everything an import or a scoring run touches, as one comparable string. */
static inline void store_digest(const char *db, char *out, size_t cap)
{
    static const char *const sql =
        "SELECT (SELECT count(*) || '/' || coalesce(sum(length(num)), 0) || '/' || coalesce(sum(length(cat)), 0)"
        "        || '/' || coalesce(max(id), 0) FROM orders) || ' ' ||"
        "       (SELECT count(*) || '/' || coalesce(sum(length(value)), 0) FROM order_text) || ' ' ||"
        "       (SELECT count(*) FROM entities) || ' ' || (SELECT count(*) FROM order_entities) || ' ' ||"
        "       (SELECT count(*) || '/' || coalesce(sum(length(data)), 0) FROM embeddings) || ' ' ||"
        "       (SELECT count(*) || '/' || coalesce(sum(value), 0) FROM labels) || ' ' ||"
        "       (SELECT count(*) FROM dataset_features) || ' ' || (SELECT count(*) FROM datasets) || ' ' ||"
        "       (SELECT count(*) FROM models) || ' ' || (SELECT count(*) FROM predictions) || ' ' ||"
        "       (SELECT count(*) FROM class_scores) || ' ' || (SELECT count(*) FROM explanations) || ' ' ||"
        "       (SELECT count(*) || '/' || coalesce(sum(status), 0) FROM cases) || ' ' ||"
        "       (SELECT count(*) FROM audit) || ' ' || (SELECT count(*) FROM notes)";
    sql_text(db, sql, out, cap);
}

/* A SHA-256 over every row and column of the tables a scoring run writes
 * (predictions, class scores, explanations, cases, audit, notes, scoring
 * errors), in key order: equal hashes mean byte-for-byte equal tables. "" when
 * the store cannot be read. */
static inline void score_tables_hash(const char *db, char out[65])
{
    static const char *const tables[] = {
        "SELECT * FROM predictions ORDER BY order_id, model_id, off",
        "SELECT * FROM class_scores ORDER BY model_id, class, score, order_id",
        "SELECT * FROM explanations ORDER BY order_id, model_id",
        "SELECT * FROM cases ORDER BY id",
        "SELECT * FROM audit ORDER BY id",
        "SELECT * FROM notes ORDER BY id",
        "SELECT * FROM score_errors ORDER BY order_id, model_id",
    };
    out[0] = 0;
    sqlite3 *h = NULL;
    /* read-write where allowed, as sql_text does, so closing removes the -wal and -shm */
    int rc = sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(h);
        rc = sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    }
    size_t n = 0, cap = 1 << 16;
    unsigned char *b = malloc(cap);
    int ok = rc == SQLITE_OK && b;
    if (ok)
        sqlite3_busy_timeout(h, 10000);
    for (size_t t = 0; ok && t < sizeof tables / sizeof *tables; t++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, tables[t], -1, &st, NULL) != SQLITE_OK) {
            ok = 0;
            break;
        }
        while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW)
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                int type = sqlite3_column_type(st, c);
                const void *p = type == SQLITE_BLOB ? sqlite3_column_blob(st, c) : (const void *)sqlite3_column_text(st, c);
                size_t len = (size_t)sqlite3_column_bytes(st, c);
                while (n + len + 16 > cap) {
                    unsigned char *nb = realloc(b, cap *= 2);
                    if (!nb) {
                        ok = 0;
                        break;
                    }
                    b = nb;
                }
                if (!ok)
                    break;
                n += (size_t)snprintf((char *)b + n, 16, "|%d:%zu:", type, len);
                if (len && p)
                    memcpy(b + n, p, len);
                n += len;
            }
        ok = ok && rc == SQLITE_DONE;
        sqlite3_finalize(st);
        if (ok)
            n += (size_t)snprintf((char *)b + n, cap - n, "#");
    }
    sqlite3_close(h);
    if (ok) {
        uint8_t d[32];
        craft_sha256(b, n, d);
        for (int i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
    free(b);
}

/* ------------------------------------------------------ generated orders */

/* A small deterministic generator in [0, 1). */
static inline double lcg(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8 & 0xffff) / 65536.0;
}

/* n orders for the tiny fixture models (12 features, txt 10 wide, graph 6 wide),
 * ids P-<first..first+n-1>, with labels and entities; deterministic in first. */
static inline int write_orders(const char *path, int first, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    unsigned s = (unsigned)first * 2654435761u + 1;
#define NEXT() lcg(&s)
    for (int i = first; i < first + n; i++) {
        fprintf(f, "{\"order_id\": \"P-%07d\", \"ts\": \"2026-03-%02dT10:00:00Z\", \"features\": {", i, 1 + i % 28);
        fprintf(f, "\"cat0\": \"v%d\", \"cat1\": \"v%d\", \"cat2\": \"v%d\"", i % 4, (i / 3) % 4, (i / 7) % 4);
        for (int k = 3; k < 12; k++)
            fprintf(f, ", \"num%d\": %.4f", k, (NEXT() - 0.5) * 8);
        fprintf(f, "}, \"text\": {\"journey\": \"SCAN %d ok\"}, \"entities\": {\"customer\": \"C-%d\", \"seller\": \"S-%d\"},"
                   " \"embeddings\": {\"txt\": [",
                i, i % 97, i % 13);
        for (int k = 0; k < 10; k++)
            fprintf(f, "%s%.4f", k ? ", " : "", NEXT() - 0.5);
        fprintf(f, "], \"graph\": [[");
        for (int k = 0; k < 6; k++)
            fprintf(f, "%s%.4f", k ? ", " : "", NEXT() - 0.5);
        fprintf(f, "]]}, \"labels\": {\"D1\": %d, \"D2\": %d, \"D3\": 0, \"D4\": 0, \"D5\": %d}}\n", NEXT() < 0.2,
                NEXT() < 0.1, NEXT() < 0.05);
    }
#undef NEXT
    return fclose(f);
}

/* Exits 77 (skip) without the craft binary. */
static inline void need_craft(void)
{
    if (!craft_bin()) {
        fprintf(stderr, "CRAFT_BUILD unset or no craft binary: skipped\n");
        exit(77);
    }
}

/* Runs the registered tests; the exit status a suite returns. */
static inline int run_suite(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}

#endif
