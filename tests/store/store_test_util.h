/* store_test_util.h: reading a store behind the library's back, and removing one,
 * for the store, hardening and UI suites. */
#ifndef CRAFT_STORE_TEST_UTIL_H
#define CRAFT_STORE_TEST_UTIL_H

#include <CUnit/Basic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A store file and its -wal, -shm and -journal files. */
static inline void remove_store(const char *p)
{
    static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
    char t[600];
    unlink(p);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(t, sizeof t, "%s%s", p, suffixes[i]);
        unlink(t);
    }
}

/* The first column of the first row of sql as text ("" for NULL, "?" on error), in buf. */
static inline const char *sql_text(const char *db, const char *sql, char *buf, size_t cap)
{
    snprintf(buf, cap, "?");
    sqlite3 *h = NULL;
    /* read-write where allowed: closing it then removes the -wal and -shm files (a
     * read-only connection leaves them, and they would let a later writer work in a
     * read-only folder) */
    int rc = sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(h);
        rc = sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    }
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(h, 10000);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(buf, cap, "%s", t ? (const char *)t : "");
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return buf;
}

static inline long long sql_int(const char *db, const char *sql)
{
    char b[64];
    const char *t = sql_text(db, sql, b, sizeof b);
    return strcmp(t, "?") ? atoll(t) : -1;
}

static inline int integrity_ok(const char *db)
{
    char b[256];
    return strcmp(sql_text(db, "PRAGMA integrity_check", b, sizeof b), "ok") == 0;
}

/* Runs the registered suites; when every test passed (and some ran), removes the
 * suite's scratch folder `dir`, which is kept after a failure to look at. Returns the
 * exit status: non-zero on any failure. */
static inline int run_suites_then_remove(const char *dir)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (failed || !run)
        return 1;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}

#endif
