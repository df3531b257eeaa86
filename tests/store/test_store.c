/* test_store: the case store: schema and migrations, file mode, import
 * (all-or-nothing, skip-bad, duplicates, replace, CSV, a killed import),
 * concurrent readers, scoring into the store, every case action and its audit
 * row, queue queries and the trainer's export. */
#include <CUnit/Basic.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "kill_util.h"
#include "store_test_util.h"

int craft_store_migrate(sqlite3 *db, int target, craft_error *err); /* store_internal.h */

static char dir[256];

static const char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Writes n orders of F features (every 30th categorical) with text, entities, labels.
 * bad_at (1-based, 0 none) is a malformed line; dup_at repeats order 0's id. */
static void write_orders(const char *path, int first, int n, int F, int bad_at, int dup_at)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    unsigned seed = 12345u + (unsigned)first;
    for (int i = 0; i < n; i++) {
        if (i + 1 == bad_at) {
            fprintf(f, "{\"order_id\": \"BAD-%d\", \"features\": {\"f1\": [1, 2]}}\n", i);
            continue;
        }
        int id = i + 1 == dup_at ? first : first + i;
        fprintf(f, "{\"order_id\": \"O-%07d\", \"ts\": \"2026-03-%02dT%02d:%02d:00Z\", \"features\": {", id,
                1 + (first + i) / 1440 % 28, (first + i) / 60 % 24, (first + i) % 60);
        for (int j = 0; j < F; j++) {
            seed = seed * 1103515245u + 12345u;
            if (j % 30 == 0)
                fprintf(f, "%s\"c%03d\": \"%s\"", j ? ", " : "", j, (seed >> 16) % 2 ? "ground" : "air");
            else
                fprintf(f, "%s\"f%03d\": %.3f", j ? ", " : "", j, ((int)(seed >> 16) % 20000) / 100.0 - 100.0);
        }
        fprintf(f, "}, \"text\": {\"journey\": \"SCAN arrive_hub t+%dh status=ok\"}, \"entities\": {\"seller\": \"S-%d\","
                   " \"carrier\": \"CR-%d\"}, \"labels\": {\"D1\": %d, \"D2\": 0}}\n",
                i % 7, (first + i) % 50, (first + i) % 4, (first + i) % 10 == 0);
    }
    fclose(f);
}

static int import_files(craft_store *s, const char *file, int replace, int skip_bad, craft_import_stats *st,
                        craft_error *err)
{
    craft_import_options o = {.replace = replace, .skip_bad = skip_bad};
    const char *paths[1] = {file};
    return craft_store_import(s, paths, 1, &o, st, err);
}

/* ------------------------------------------------------------- schema */

static void test_new_store_mode_and_version(void)
{
    const char *db = path_in("new.db");
    remove_store(db);
    craft_store *s;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, 0, &err), CRAFT_EIO); /* no CREATE: refused */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "new.db"));
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_CREATE, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_store_opened_version(s), 0);
    struct stat st;
    CU_ASSERT_EQUAL(stat(db, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", db);
    if (stat(wal, &st) == 0)
        CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    craft_store_close(s);
    CU_ASSERT_EQUAL(sql_int(db, "PRAGMA user_version"), CRAFT_STORE_VERSION);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
    /* reopening is a no-op migration */
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, 0, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_store_opened_version(s), CRAFT_STORE_VERSION);
    craft_store_close(s);
}

static void test_migrations_from_each_version(void)
{
    for (int v = 1; v < CRAFT_STORE_VERSION; v++) {
        char name[32];
        snprintf(name, sizeof name, "old%d.db", v);
        const char *db = path_in(name);
        remove_store(db);
        sqlite3 *h;
        CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
        craft_error err = {0};
        CU_ASSERT_EQUAL(craft_store_migrate(h, v, &err), CRAFT_OK);
        /* data written at the old version survives the migration */
        CU_ASSERT_EQUAL(sqlite3_exec(h, "INSERT INTO datasets(name, created) VALUES('old', 1)", NULL, NULL, NULL),
                        SQLITE_OK);
        sqlite3_close(h);
        CU_ASSERT_EQUAL(sql_int(db, "PRAGMA user_version"), v);
        craft_store *s;
        CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, 0, &err), CRAFT_OK);
        CU_ASSERT_EQUAL(craft_store_opened_version(s), v);
        craft_store_close(s);
        CU_ASSERT_EQUAL(sql_int(db, "PRAGMA user_version"), CRAFT_STORE_VERSION);
        CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM datasets WHERE name = 'old'"), 1);
        CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('cases', 'audit', 'notes',"
                                        " 'predictions', 'explanations', 'orders')"),
                        6);
    }
    /* read-only handles (no migration): a version 3 store reads (version 4 only added
     * scoring errors), and stays at 3; a version 2 store is refused */
    for (int v = 2; v <= 3; v++) {
        char name[32];
        snprintf(name, sizeof name, "ro%d.db", v);
        const char *db = path_in(name);
        remove_store(db);
        sqlite3 *h;
        craft_error err = {0};
        CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
        CU_ASSERT_EQUAL(craft_store_migrate(h, v, &err), CRAFT_OK);
        sqlite3_close(h);
        craft_store *s = NULL;
        int rc = craft_store_open(&s, db, CRAFT_STORE_READONLY, &err);
        CU_ASSERT_EQUAL(rc, v == 3 ? CRAFT_OK : CRAFT_EUNSUPPORTED);
        if (!rc) {
            craft_dataset_info *d = NULL;
            int n = -1;
            CU_ASSERT_EQUAL(craft_store_datasets(s, &d, &n, &err), CRAFT_OK);
            CU_ASSERT_EQUAL(n, 0);
            craft_dataset_info_free(d, n);
            craft_score_error *e = NULL;
            CU_ASSERT_NOT_EQUAL(craft_store_score_errors(s, 1, 0, NULL, 0, &e, &n, &err), CRAFT_OK);
            CU_ASSERT_PTR_NULL(e);
            craft_store_close(s);
        }
        CU_ASSERT_EQUAL(sql_int(db, "PRAGMA user_version"), v);
    }
    /* a file from a newer program is refused, not touched */
    const char *db = path_in("newer.db");
    remove_store(db);
    sqlite3 *h;
    sqlite3_open(db, &h);
    sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(h);
    craft_store *s;
    craft_error err = {0};
    CU_ASSERT_EQUAL(craft_store_open(&s, db, 0, &err), CRAFT_EUNSUPPORTED);
    CU_ASSERT_EQUAL(sql_int(db, "PRAGMA user_version"), 99);
    /* not a database at all */
    const char *junk = path_in("junk.db");
    FILE *f = fopen(junk, "w");
    fputs("this is not a database, just some text that is long enough to look like a header....", f);
    fclose(f);
    CU_ASSERT_NOT_EQUAL(craft_store_open(&s, junk, 0, &err), CRAFT_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "junk.db"));
}

/* ------------------------------------------------------------- import */

typedef struct {
    int n;
    size_t lines[16];
    char reasons[16][200];
} rejects;

static void collect(void *user, const char *file, size_t line, const char *reason, const char *row, size_t len)
{
    (void)file;
    (void)row;
    (void)len;
    rejects *r = user;
    if (r->n < 16) {
        r->lines[r->n] = line;
        snprintf(r->reasons[r->n], sizeof r->reasons[0], "%s", reason);
    }
    r->n++;
}

static void test_import_all_or_nothing_and_skip_bad(void)
{
    const char *db = path_in("imp.db"), *good = path_in("good.jsonl"), *bad = path_in("bad.jsonl");
    remove_store(db);
    write_orders(good, 0, 200, 300, 0, 0);
    write_orders(bad, 1000, 200, 300, 57, 0);
    craft_store *s;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_CREATE, &err), CRAFT_OK);
    craft_import_stats st;
    CU_ASSERT_EQUAL(import_files(s, good, 0, 0, &st, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(st.stored, 200);
    CU_ASSERT_EQUAL(st.new_features, 300);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 200);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM dataset_features WHERE type = 1"), 10);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM order_entities"), 400);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM entities"), 54);
    /* one bad row: nothing stored, the row named by line */
    rejects r = {0};
    craft_import_options o = {.on_reject = collect, .reject_user = &r};
    const char *paths[1] = {bad};
    CU_ASSERT_EQUAL(craft_store_import(s, paths, 1, &o, &st, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nothing was imported"));
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_EQUAL(r.lines[0], 57);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.reasons[0], "f1"));
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 200);
    /* skip-bad: the 199 good rows go in */
    memset(&r, 0, sizeof r);
    o.skip_bad = 1;
    CU_ASSERT_EQUAL(craft_store_import(s, paths, 1, &o, &st, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(st.stored, 199);
    CU_ASSERT_EQUAL(st.bad, 1);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 399);
    /* features round-trip through the blob */
    CU_ASSERT_EQUAL(sql_int(db, "SELECT length(num) FROM orders WHERE order_id = 'O-0000000'"), 300 * 4);
    craft_store_close(s);
    CU_ASSERT(integrity_ok(db));
}

static void test_import_duplicates_and_replace(void)
{
    const char *db = path_in("dup.db"), *a = path_in("a.jsonl"), *b = path_in("b.jsonl");
    remove_store(db);
    write_orders(a, 0, 50, 20, 0, 0);
    write_orders(b, 40, 20, 20, 0, 0); /* O-40..O-59: ten of them already stored */
    craft_store *s;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_CREATE, &err), CRAFT_OK);
    craft_import_stats st;
    CU_ASSERT_EQUAL(import_files(s, a, 0, 0, &st, &err), CRAFT_OK);
    rejects r = {0};
    craft_import_options o = {.on_reject = collect, .reject_user = &r};
    const char *paths[1] = {b};
    CU_ASSERT_EQUAL(craft_store_import(s, paths, 1, &o, &st, &err), CRAFT_EINPUT);
    CU_ASSERT_EQUAL(r.n, 10);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.reasons[0], "duplicate order_id \"O-0000040\""));
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 50);
    /* a duplicate inside one file is caught too */
    const char *c = path_in("c.jsonl");
    write_orders(c, 100, 10, 20, 0, 5);
    CU_ASSERT_EQUAL(import_files(s, c, 0, 0, &st, &err), CRAFT_EINPUT);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 50);
    /* --replace: the ten are replaced, text and entities not doubled */
    o.replace = 1;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(craft_store_import(s, paths, 1, &o, &st, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(st.stored, 20);
    CU_ASSERT_EQUAL(st.replaced, 10);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 60);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM order_text"), 60);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM order_entities"), 120);
    craft_store_close(s);
}

static void test_import_csv_and_type_errors(void)
{
    const char *db = path_in("csv.db"), *csv = path_in("o.csv");
    remove_store(db);
    FILE *f = fopen(csv, "w");
    fputs("order_id,ts,text:journey,entity:seller,amount,ship,label:D1,emb:txt\n"
          "C1,2026-01-01,\"hello, \"\"quoted\"\"\nsecond line\",S-1,1.5,ground,1,0.1 0.2\n"
          "C2,,,,,,,\n"
          "C3,2026-01-02,x,S-2,abc,air,0,\n", f);
    fclose(f);
    craft_store *s;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_CREATE, &err), CRAFT_OK);
    rejects r = {0};
    craft_import_options o = {.on_reject = collect, .reject_user = &r, .skip_bad = 1};
    const char *paths[1] = {csv};
    craft_import_stats st;
    CU_ASSERT_EQUAL(craft_store_import(s, paths, 1, &o, &st, &err), CRAFT_OK);
    /* "amount" is numeric (first seen 1.5), so "abc" on line 5 is a bad row */
    CU_ASSERT_EQUAL(st.stored, 2);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_EQUAL(r.lines[0], 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.reasons[0], "amount"));
    craft_order_detail d;
    CU_ASSERT_EQUAL_FATAL(craft_store_order_get(s, "C1", 0, &d, &err), CRAFT_OK);
    CU_ASSERT_STRING_EQUAL(craft_kv_get(&d.text, "journey"), "hello, \"quoted\"\nsecond line");
    CU_ASSERT_STRING_EQUAL(craft_kv_get(&d.entities, "seller"), "S-1");
    CU_ASSERT_STRING_EQUAL(craft_kv_get(&d.labels, "D1"), "1");
    int amount = -1, ship = -1;
    for (int j = 0; j < d.n_features; j++) {
        if (!strcmp(d.feature_names[j], "amount"))
            amount = j;
        if (!strcmp(d.feature_names[j], "ship"))
            ship = j;
    }
    CU_ASSERT_FATAL(amount >= 0 && ship >= 0);
    CU_ASSERT_DOUBLE_EQUAL(d.values[amount], 1.5, 1e-7);
    CU_ASSERT_STRING_EQUAL(d.categories[ship], "ground");
    craft_order_detail_free(&d);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT tokens * 100 + dim FROM embeddings"), 102);
    craft_store_close(s);
}

/* The child imports a big file; the parent kills it at a random moment. */
static void test_killed_import_leaves_store_unchanged(void)
{
    const char *db = path_in("kill.db"), *seed = path_in("seed.jsonl"), *big = path_in("big.jsonl");
    remove_store(db);
    write_orders(seed, 0, 100, 300, 0, 0);
    write_orders(big, 100000, 6000, 300, 0, 0);
    craft_store *s;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_CREATE, &err), CRAFT_OK);
    craft_import_stats st;
    CU_ASSERT_EQUAL(import_files(s, seed, 0, 0, &st, &err), CRAFT_OK);
    craft_store_close(s);
    /* how long a whole import takes, to aim the kills inside it */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    {
        const char *probe = path_in("probe.db");
        remove_store(probe);
        CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, probe, CRAFT_STORE_CREATE, &err), CRAFT_OK);
        CU_ASSERT_EQUAL(import_files(s, big, 0, 0, &st, &err), CRAFT_OK);
        craft_store_close(s);
        remove_store(probe);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double full = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    srand((unsigned)time(NULL));
    /* Rounds 0-2 kill the import the moment its transaction has begun (its write
     * lock seen; still held while it is stopped before the kill): provably midway,
     * and run again should the import be done first. Rounds 3-5 kill anywhere from
     * the start to just past the expected end (the commit). */
    int killed_midway = 0;
    for (int round = 0, attempts = 0; round < 6 && attempts < 25; attempts++) {
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            craft_store *cs;
            craft_error ce;
            if (craft_store_open(&cs, db, 0, &ce))
                _exit(2);
            craft_import_stats cst;
            int rc = import_files(cs, big, 0, 0, &cst, &ce);
            craft_store_close(cs);
            _exit(rc ? 3 : 0);
        }
        sqlite3 *h; /* opened after the fork: the child shares no SQLite state with it */
        CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        if (round < 3) {
            CU_ASSERT(wait_for_write_lock(h, pid, 60 + 10 * full));
        } else {
            double at = full * (0.02 + 1.0 * rand() / RAND_MAX);
            struct timespec ts = {(time_t)at, (long)((at - (time_t)at) * 1e9)};
            nanosleep(&ts, NULL);
        }
        int held = kill_holding_lock(h, pid);
        sqlite3_close(h);
        CU_ASSERT(integrity_ok(db));
        int64_t n = sql_int(db, "SELECT count(*) FROM orders");
        /* all or nothing: the before-count, or (killed after its commit, during the
         * checkpoint, or not killed at all) every order */
        CU_ASSERT(n == 100 || n == 6100);
        killed_midway += held && n == 100;
        if (n == 6100) {
            /* put the store back to its before-state for the next round */
            CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, 0, &err), CRAFT_OK);
            craft_store_close(s);
            sqlite3_open(db, &h);
            sqlite3_exec(h, "PRAGMA foreign_keys = ON; DELETE FROM orders WHERE order_id >= 'O-0100000'", NULL, NULL,
                         NULL);
            sqlite3_close(h);
        }
        /* the store still opens and takes writes */
        CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, 0, &err), CRAFT_OK);
        craft_store_close(s);
        if (round < 3 && !(held && n == 100))
            continue; /* the import was done before the kill: this round again */
        round++;
    }
    CU_ASSERT(killed_midway >= 3);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 100);
}

/* A reader keeps reading, and sees the before-state, while a child imports. */
static void test_concurrent_reader_during_write(void)
{
    const char *db = path_in("conc.db"), *seed = path_in("cseed.jsonl"), *big = path_in("cbig.jsonl");
    remove_store(db);
    write_orders(seed, 0, 50, 50, 0, 0);
    write_orders(big, 200000, 20000, 50, 0, 0);
    craft_store *s;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_CREATE, &err), CRAFT_OK);
    craft_import_stats st;
    CU_ASSERT_EQUAL(import_files(s, seed, 0, 0, &st, &err), CRAFT_OK);
    craft_store_close(s);
    int pipefd[2];
    CU_ASSERT_EQUAL_FATAL(pipe(pipefd), 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        craft_store *cs;
        craft_error ce;
        if (craft_store_open(&cs, db, 0, &ce))
            _exit(2);
        if (write(pipefd[1], "x", 1) != 1)
            _exit(4);
        craft_import_stats cst;
        int rc = import_files(cs, big, 0, 0, &cst, &ce);
        craft_store_close(cs);
        _exit(rc ? 3 : 0);
    }
    close(pipefd[1]);
    char c;
    CU_ASSERT_EQUAL(read(pipefd[0], &c, 1), 1);
    close(pipefd[0]);
    craft_store *r;
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&r, db, CRAFT_STORE_READONLY, &err), CRAFT_OK);
    int reads = 0, during = 0, status = 0;
    pid_t done = 0;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0) {
        craft_queue_query q;
        craft_queue_query_init(&q);
        q.cases_only = 0;
        q.sort = CRAFT_SORT_TIME;
        q.limit = 10;
        craft_queue_counts counts;
        int rc = craft_store_queue_counts(r, &q, &counts, &err);
        CU_ASSERT_EQUAL(rc, CRAFT_OK);
        if (!rc && counts.total == 50)
            during++;
        craft_queue_page pg;
        CU_ASSERT_EQUAL(craft_store_queue(r, &q, &pg, &err), CRAFT_OK);
        craft_queue_page_free(&pg);
        reads++;
        usleep(2000);
    }
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(during > 0); /* it read the before-state while the import ran */
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.cases_only = 0;
    craft_queue_counts counts;
    CU_ASSERT_EQUAL(craft_store_queue_counts(r, &q, &counts, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(counts.total, 20050);
    craft_store_close(r);
}

/* ---------------------------------------------------- score and cases */

static const char *fixture(const char *name)
{
    static char buf[2][512];
    static int k;
    const char *d = getenv("CRAFT_FIXTURES");
    if (!d)
        return NULL;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", d, name);
    return buf[k];
}

static craft_store *scored_store(const char *name, craft_model **m)
{
    const char *db = path_in(name);
    remove_store(db);
    craft_store *s;
    craft_error err = {0};
    if (craft_store_open(&s, db, CRAFT_STORE_CREATE, &err))
        return NULL;
    craft_import_stats st;
    if (import_files(s, fixture("tiny-multilabel.orders.jsonl"), 0, 0, &st, &err) ||
        craft_model_load(m, fixture("tiny-multilabel.safetensors"), &err)) {
        craft_store_close(s);
        return NULL;
    }
    craft_store_score_options o = {.explain = 1, .subsets = 1, .flag_threshold = 0.3f};
    craft_store_score_stats ss;
    if (craft_store_score(s, *m, fixture("tiny-multilabel.safetensors"), &o, &ss, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        craft_store_close(s);
        craft_model_free(*m);
        return NULL;
    }
    return s;
}

static void test_score_into_store(void)
{
    craft_model *m;
    craft_store *s = scored_store("score.db", &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const char *db = path_in("score.db");
    int K = m->cfg.n_classes;
    CU_ASSERT_EQUAL(craft_store_has_cases(s), 1);
    {
        craft_store *e = NULL;
        craft_error err = {0};
        CU_ASSERT_EQUAL_FATAL(craft_store_open(&e, path_in("no-cases.db"), CRAFT_STORE_CREATE, &err), CRAFT_OK);
        CU_ASSERT_EQUAL(craft_store_has_cases(e), 0); /* the app opens such a store on every order */
        craft_store_close(e);
    }
    /* 24 orders x 4 subsets (tab, +txt, +graph, all) */
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions"), 96);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM explanations"), 24);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM class_scores"), 24 * K);
    /* the flag rule: a case exactly for orders with some score >= 0.3 */
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions p WHERE off = 0 AND top_score >= 0.3"),
                    sql_int(db, "SELECT count(*) FROM cases"));
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM audit WHERE action = 'create'"),
                    sql_int(db, "SELECT count(*) FROM cases"));
    /* stored scores equal the expected fixture outputs of the same model */
    FILE *f = fopen(fixture("tiny-multilabel.expected.jsonl"), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[1 << 16];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"off\": []"))
            continue;
        char id[64];
        if (sscanf(line, "{\"order_id\": \"%63[^\"]\"", id) != 1)
            continue;
        craft_order_detail d;
        craft_error err;
        CU_ASSERT_EQUAL_FATAL(craft_store_order_get(s, id, 0, &d, &err), CRAFT_OK);
        CU_ASSERT_FATAL(d.n_predictions >= 1 && d.predictions[0].off == 0);
        for (int k = 0; k < K; k++) {
            char key[32];
            snprintf(key, sizeof key, "\"%s\": ", d.classes[k]);
            const char *p = strstr(strstr(line, "\"scores\""), key);
            CU_ASSERT_PTR_NOT_NULL_FATAL(p);
            CU_ASSERT_DOUBLE_EQUAL(d.predictions[0].scores[k], atof(p + strlen(key)), 1e-5);
        }
        CU_ASSERT(d.has_explanation);
        float sum = 0;
        for (int j = 0; j < d.explanation.n_tokens; j++)
            sum += d.explanation.importance[j];
        CU_ASSERT_DOUBLE_EQUAL(sum, 1.0, 1e-4);
        craft_order_detail_free(&d);
        checked++;
    }
    fclose(f);
    CU_ASSERT_EQUAL(checked, 24);
    /* rescoring keeps cases and does not duplicate anything */
    craft_store_score_options o = {.explain = 1, .subsets = 1, .flag_threshold = 0.3f};
    craft_store_score_stats ss;
    craft_error err;
    int64_t cases = sql_int(db, "SELECT count(*) FROM cases");
    CU_ASSERT_EQUAL(craft_store_score(s, m, NULL, &o, &ss, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(ss.new_cases, 0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM cases"), cases);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions"), 96);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM class_scores"), 24 * K);
    craft_model_free(m);
    craft_store_close(s);
}

/* Sets *cancel once the first batch is staged. */
static void cancel_after_first(void *user, uint64_t done, uint64_t bytes, uint64_t total, double seconds)
{
    (void)done, (void)bytes, (void)total, (void)seconds;
    *(volatile int *)user = 1;
}

/* Everything a scoring run writes, as one string (the rows themselves, hex). */
static void score_dump(const char *db, char *out, size_t cap)
{
    out[0] = 0;
    sqlite3 *h;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h,
                           "SELECT (SELECT group_concat(order_id || ':' || off || ':' || hex(scores) || ':' || run_id, ',')"
                           " FROM (SELECT * FROM predictions ORDER BY order_id, off)) || '|' ||"
                           " (SELECT group_concat(order_id || ':' || class || ':' || score, ',') FROM (SELECT * FROM"
                           " class_scores ORDER BY order_id, class)) || '|' || (SELECT group_concat(order_id || ':' ||"
                           " hex(importance) || hex(cmis), ',') FROM (SELECT * FROM explanations ORDER BY order_id))"
                           " || '|' || (SELECT group_concat(id || ':' || order_id || ':' || status || ':' || created, ',')"
                           " FROM cases) || '|' || (SELECT count(*) || ':' || max(id) FROM audit) || '|' ||"
                           " (SELECT count(*) FROM score_errors)",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* A scoring run is all or nothing: cancelled after its first batch, it leaves
 * every score, case and audit row as it was. One order whose stored inputs do
 * not fit the model (the earliest of those left to score, so the others come
 * after it) is skipped with its reason, and every other order is scored. */
static void test_score_all_or_nothing_and_bad_orders(void)
{
    const char *db = path_in("score-aon.db");
    remove_store(db);
    craft_store *s;
    craft_error err = {0};
    craft_model *m;
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_CREATE, &err), CRAFT_OK);
    craft_import_stats st;
    CU_ASSERT_EQUAL_FATAL(import_files(s, fixture("tiny-multilabel.orders.jsonl"), 0, 0, &st, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture("tiny-multilabel.safetensors"), &err), CRAFT_OK);
    /* a first run on a quarter of the orders: scores and cases to keep */
    craft_store_score_options o = {.explain = 1, .subsets = 1, .flag_threshold = 0.3f, .batch = 4};
    craft_store_score_stats ss;
    sqlite3 *h;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(h, "CREATE TABLE hold AS SELECT * FROM orders WHERE id > 6;"
                                    " PRAGMA foreign_keys = OFF; DELETE FROM orders WHERE id > 6", NULL, NULL, NULL),
                    SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(craft_store_score(s, m, NULL, &o, &ss, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(ss.scored, 6);
    CU_ASSERT_EQUAL(sqlite3_exec(h, "INSERT INTO orders SELECT * FROM hold; DROP TABLE hold", NULL, NULL, NULL),
                    SQLITE_OK);
    char before[1 << 16], now[1 << 16];
    score_dump(db, before, sizeof before);
    CU_ASSERT_FATAL(before[0] != 0);
    /* cancelled after the first batch of the second run: nothing of it is stored */
    volatile int cancel = 0;
    o.cancel = &cancel;
    o.progress = cancel_after_first;
    o.progress_user = (void *)&cancel;
    CU_ASSERT_EQUAL(craft_store_score(s, m, NULL, &o, &ss, &err), CRAFT_ECANCELLED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "stored nothing"));
    score_dump(db, now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, before);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM scoring_runs WHERE status = 'cancelled'"), 1);
    /* the earliest unscored order's text embedding no longer fits the model (11 wide, the model takes 10) */
    char first[64] = "";
    sqlite3_stmt *q;
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(h, "SELECT order_id FROM orders WHERE id > 6 ORDER BY ts, id LIMIT 1", -1, &q, NULL),
                          SQLITE_OK);
    if (sqlite3_step(q) == SQLITE_ROW)
        snprintf(first, sizeof first, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    CU_ASSERT_FATAL(first[0] != 0);
    CU_ASSERT_EQUAL(sqlite3_exec(h, "CREATE TABLE keep AS SELECT * FROM embeddings WHERE modality = 'txt' AND"
                                    " order_id = (SELECT id FROM orders WHERE id > 6 ORDER BY ts, id LIMIT 1);"
                                    " UPDATE embeddings SET dim = 11, data = zeroblob(44) WHERE modality = 'txt' AND"
                                    " order_id = (SELECT id FROM orders WHERE id > 6 ORDER BY ts, id LIMIT 1)",
                                    NULL, NULL, NULL),
                    SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sql_int(db, "SELECT count(*) FROM keep"), 1);
    o.cancel = NULL;
    o.progress = NULL;
    o.only_unscored = 1;
    CU_ASSERT_EQUAL(craft_store_score(s, m, NULL, &o, &ss, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(ss.failed, 1);
    CU_ASSERT_EQUAL(ss.scored, 24 - 6 - 1);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions WHERE off = 0"), 23);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM scoring_runs WHERE status = 'complete' AND failed = 1"), 1);
    craft_score_error *e = NULL;
    int n = 0;
    CU_ASSERT_EQUAL(craft_store_score_errors(s, 0, ss.run_id, NULL, 0, &e, &n, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(e[0].order_id, first);
    CU_ASSERT_EQUAL(e[0].run_id, ss.run_id);
    CU_ASSERT_PTR_NOT_NULL(strstr(e[0].reason, "embedding \"txt\" is 1 x 11"));
    craft_score_errors_free(e, n);
    /* mended, the order is scored by the next run and its reason goes */
    CU_ASSERT_EQUAL(sqlite3_exec(h, "INSERT OR REPLACE INTO embeddings SELECT * FROM keep; DROP TABLE keep", NULL, NULL,
                                 NULL),
                    SQLITE_OK);
    CU_ASSERT_EQUAL(craft_store_score(s, m, NULL, &o, &ss, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(ss.failed, 0);
    CU_ASSERT_EQUAL(ss.scored, 1);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions WHERE off = 0"), 24);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM score_errors"), 0);
    CU_ASSERT_EQUAL(craft_store_score_errors(s, 0, 0, first, 0, &e, &n, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(n, 0);
    craft_score_errors_free(e, n);
    sqlite3_close(h);
    craft_model_free(m);
    craft_store_close(s);
}

static int64_t audit_rows(craft_store *s, int64_t case_id, craft_audit_entry **a)
{
    int n = 0;
    craft_error err;
    if (craft_store_case_audit(s, case_id, a, &n, &err))
        return -1;
    return n;
}

static void test_case_actions_and_audit(void)
{
    craft_model *m;
    craft_store *s = scored_store("cases.db", &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const char *db = path_in("cases.db");
    craft_queue_query q;
    craft_queue_query_init(&q);
    craft_queue_page pg;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    CU_ASSERT_FATAL(pg.n >= 2);
    int64_t c1 = pg.rows[0].case_id, c2 = pg.rows[1].case_id;
    char *o1 = strdup(pg.rows[0].order_id);
    craft_queue_page_free(&pg);
    craft_audit_entry *a;
    CU_ASSERT_EQUAL(audit_rows(s, c1, &a), 1);
    CU_ASSERT_STRING_EQUAL(a[0].action, "create");
    craft_audit_free(a, 1);

    /* decide: confirmed with classes -> status, labels, audit before/after, note */
    CU_ASSERT_EQUAL(craft_store_case_decide(s, c1, CRAFT_CASE_CONFIRMED, "D2,D4", "ana", "clear damage", &err), CRAFT_OK);
    craft_case c;
    CU_ASSERT_EQUAL_FATAL(craft_store_case_get(s, c1, &c, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(c.status, CRAFT_CASE_CONFIRMED);
    CU_ASSERT_STRING_EQUAL(c.decided_classes, "D2,D4");
    craft_case_free(&c);
    int n = (int)audit_rows(s, c1, &a);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(a[1].action, "status");
    CU_ASSERT_STRING_EQUAL(a[1].actor, "ana");
    CU_ASSERT_PTR_NOT_NULL(strstr(a[1].before, "\"new\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(a[1].after, "confirmed_defect"));
    CU_ASSERT_PTR_NOT_NULL(strstr(a[1].after, "D2,D4"));
    CU_ASSERT_STRING_EQUAL(a[2].action, "note");
    craft_audit_free(a, n);
    craft_order_detail d;
    CU_ASSERT_EQUAL_FATAL(craft_store_order_get(s, o1, 0, &d, &err), CRAFT_OK);
    CU_ASSERT_STRING_EQUAL(craft_kv_get(&d.labels, "D2"), "1");
    CU_ASSERT_STRING_EQUAL(craft_kv_get(&d.labels, "D4"), "1");
    CU_ASSERT_STRING_EQUAL(craft_kv_get(&d.labels, "D1"), "0");
    craft_order_detail_free(&d);

    /* assign, priority, note: one audit row each */
    CU_ASSERT_EQUAL(craft_store_case_assign(s, c1, "bob", "ana", &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_store_case_set_priority(s, c1, 5, "ana", &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_store_case_add_note(s, c1, "called the carrier", "bob", &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_store_case_assign(s, c1, "", "bob", &err), CRAFT_OK);
    n = (int)audit_rows(s, c1, &a);
    CU_ASSERT_EQUAL_FATAL(n, 7);
    CU_ASSERT_STRING_EQUAL(a[3].action, "assign");
    CU_ASSERT_STRING_EQUAL(a[3].before, "{\"assignee\": null}");
    CU_ASSERT_STRING_EQUAL(a[3].after, "{\"assignee\": \"bob\"}");
    CU_ASSERT_STRING_EQUAL(a[4].action, "priority");
    CU_ASSERT_STRING_EQUAL(a[4].after, "{\"priority\": 5}");
    CU_ASSERT_STRING_EQUAL(a[5].action, "note");
    CU_ASSERT_STRING_EQUAL(a[5].actor, "bob");
    CU_ASSERT_STRING_EQUAL(a[6].after, "{\"assignee\": null}");
    craft_audit_free(a, n);
    craft_note *notes;
    CU_ASSERT_EQUAL(craft_store_case_notes(s, c1, &notes, &n, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(n, 2);
    craft_notes_free(notes, n);

    /* every status, through decide, each with its audit row */
    for (int st = 0; st < CRAFT_CASE_N_STATUS; st++)
        CU_ASSERT_EQUAL(craft_store_case_decide(s, c2, st, NULL, "carl", NULL, &err), CRAFT_OK);
    n = (int)audit_rows(s, c2, &a);
    CU_ASSERT_EQUAL(n, 1 + CRAFT_CASE_N_STATUS);
    craft_audit_free(a, n);
    /* false positive labels every class 0; moving on withdraws the decision's labels */
    CU_ASSERT_EQUAL(craft_store_case_decide(s, c2, CRAFT_CASE_FALSE_POSITIVE, NULL, "carl", NULL, &err), CRAFT_OK);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM labels WHERE source = 'decision' AND value = 0 AND case_id = %lld",
             (long long)c2);
    CU_ASSERT_EQUAL(sql_int(db, sql), m->cfg.n_classes);
    CU_ASSERT_EQUAL(craft_store_case_decide(s, c2, CRAFT_CASE_IN_REVIEW, NULL, "carl", NULL, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(sql_int(db, sql), 0);

    /* refused actions change nothing and write no audit row */
    int64_t before = sql_int(db, "SELECT count(*) FROM audit");
    CU_ASSERT_EQUAL(craft_store_case_decide(s, c1, CRAFT_CASE_CONFIRMED, "D9", "ana", NULL, &err), CRAFT_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "D9"));
    CU_ASSERT_EQUAL(craft_store_case_decide(s, c1, 17, NULL, "ana", NULL, &err), CRAFT_EINPUT);
    CU_ASSERT_EQUAL(craft_store_case_decide(s, c1, CRAFT_CASE_ESCALATED, NULL, "", NULL, &err), CRAFT_EINPUT);
    CU_ASSERT_EQUAL(craft_store_case_add_note(s, c1, "", "ana", &err), CRAFT_EINPUT);
    CU_ASSERT_EQUAL(craft_store_case_assign(s, 999999, "x", "ana", &err), CRAFT_EINPUT);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM audit"), before);
    CU_ASSERT_EQUAL_FATAL(craft_store_case_get(s, c1, &c, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(c.status, CRAFT_CASE_CONFIRMED);
    craft_case_free(&c);

    /* the audit log is append-only, even to plain SQL */
    sqlite3 *h;
    sqlite3_open(db, &h);
    CU_ASSERT_NOT_EQUAL(sqlite3_exec(h, "UPDATE audit SET actor = 'mallory'", NULL, NULL, NULL), SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(sqlite3_exec(h, "DELETE FROM audit", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM audit"), before);

    /* the trainer's export carries the decisions as labels */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    uint64_t exported;
    CU_ASSERT_EQUAL(craft_store_export_jsonl(s, 0, 1, out, &exported, &err), CRAFT_OK);
    fclose(out);
    CU_ASSERT_EQUAL(exported, 1); /* the fixture orders carry no labels; one decision stands */
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"D2\": 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, o1));
    if (getenv("STORE_TEST_VERBOSE"))
        fputs(buf, stderr);
    free(buf);
    free(o1);
    craft_model_free(m);
    craft_store_close(s);
}

static void test_queue_queries(void)
{
    craft_model *m;
    craft_store *s = scored_store("queue.db", &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    craft_error err = {0};
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.cases_only = 0;
    for (int k = 0; k < m->cfg.n_classes; k++) {
        q.sort = CRAFT_SORT_CLASS_SCORE;
        q.sort_class = k;
        craft_queue_page pg;
        CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
        CU_ASSERT_EQUAL(pg.n, 24);
        for (int i = 1; i < pg.n; i++)
            CU_ASSERT(pg.rows[i - 1].scores[k] >= pg.rows[i].scores[k]);
        craft_queue_page_free(&pg);
    }
    /* threshold on a class, paging, counts */
    q.sort = CRAFT_SORT_TOP_SCORE;
    q.cls = 2;
    q.min_score = 0.4f;
    craft_queue_page pg;
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    for (int i = 0; i < pg.n; i++)
        CU_ASSERT(pg.rows[i].scores[2] >= 0.4f);
    int above = pg.n;
    craft_queue_page_free(&pg);
    craft_queue_counts counts;
    CU_ASSERT_EQUAL(craft_store_queue_counts(s, &q, &counts, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(counts.total, above);
    q.cls = -1;
    q.min_score = 0;
    q.limit = 5;
    q.offset = 20;
    CU_ASSERT_EQUAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(pg.n, 4);
    craft_queue_page_free(&pg);
    /* per-class thresholds */
    float thr[5] = {NAN, NAN, NAN, 0.6f, NAN};
    craft_queue_query_init(&q);
    q.cases_only = 0;
    q.class_min = thr;
    q.n_class_min = 5;
    CU_ASSERT_EQUAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    for (int i = 0; i < pg.n; i++)
        CU_ASSERT(pg.rows[i].scores[3] >= 0.6f);
    craft_queue_page_free(&pg);
    /* status filter and search */
    craft_queue_query_init(&q);
    CU_ASSERT_EQUAL_FATAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    int64_t first = pg.rows[0].case_id;
    char *id = strdup(pg.rows[0].order_id);
    craft_queue_page_free(&pg);
    CU_ASSERT_EQUAL(craft_store_case_decide(s, first, CRAFT_CASE_ESCALATED, NULL, "ana", NULL, &err), CRAFT_OK);
    q.status_mask = 1u << CRAFT_CASE_ESCALATED;
    CU_ASSERT_EQUAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(pg.n, 1);
    craft_queue_page_free(&pg);
    CU_ASSERT_EQUAL(craft_store_queue_counts(s, &q, &counts, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(counts.status[CRAFT_CASE_ESCALATED], 1);
    craft_queue_query_init(&q);
    q.cases_only = 0;
    q.search = id + 2; /* a substring */
    CU_ASSERT_EQUAL(craft_store_queue(s, &q, &pg, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(pg.n, 1);
    if (pg.n)
        CU_ASSERT_STRING_EQUAL(pg.rows[0].order_id, id);
    craft_queue_page_free(&pg);
    q.limit = 0;
    CU_ASSERT_EQUAL(craft_store_queue(s, &q, &pg, &err), CRAFT_EINPUT);
    free(id);
    craft_model_free(m);
    craft_store_close(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/craft-store-test-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("store", NULL, NULL);
    if (!s)
        return 1;
    int have_fixtures = getenv("CRAFT_FIXTURES") != NULL;
    if (!CU_add_test(s, "new store: 0600, WAL, version", test_new_store_mode_and_version) ||
        !CU_add_test(s, "migrations from each older version", test_migrations_from_each_version) ||
        !CU_add_test(s, "import all-or-nothing and skip-bad", test_import_all_or_nothing_and_skip_bad) ||
        !CU_add_test(s, "import duplicates and replace", test_import_duplicates_and_replace) ||
        !CU_add_test(s, "import CSV", test_import_csv_and_type_errors) ||
        !CU_add_test(s, "killed import leaves the store unchanged", test_killed_import_leaves_store_unchanged) ||
        !CU_add_test(s, "concurrent reader during a write", test_concurrent_reader_during_write) ||
        (have_fixtures && (!CU_add_test(s, "score into the store", test_score_into_store) ||
                           !CU_add_test(s, "score: all or nothing, bad orders skipped with their reason",
                                        test_score_all_or_nothing_and_bad_orders) ||
                           !CU_add_test(s, "case actions and audit", test_case_actions_and_audit) ||
                           !CU_add_test(s, "queue queries", test_queue_queries)))) {
        CU_cleanup_registry();
        return 1;
    }
    return run_suites_then_remove(dir);
}
