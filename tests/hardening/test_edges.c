/* test_edges: resource edges and hostile input through the craft CLI, each a
 * clear error (exit status and a message naming what and where) that loses
 * nothing: a disk that fills up (RLIMIT_FSIZE in the child, SIGXFSZ ignored), a
 * read-only store file and folder, a store another writer holds, a 100 MB line,
 * deeply nested JSON, NaN and infinity, 100,000-wide embeddings against a model
 * that takes 10, invalid UTF-8. Through `craft import`, `craft score` (file and
 * --db) and `craft train` where they apply. */
#include "hardening_util.h"
#include "store.h"

static const char *model;      /* tiny-multilabel: txt embeddings 10 wide */
static const char *config;     /* its config, for craft train */
static const char *good;       /* 300 good orders */
static const char *many;       /* 4000 good orders */

/* Runs craft; checks the exit status and that stderr holds every needle. */
static void expect(int status, const char *const *args, const char *needle1, const char *needle2)
{
    const char *errf = path_in("stderr.txt");
    run_opts o = {.stderr_path = errf};
    int rc = run_craft(&o, args);
    char *msg = slurp(errf);
    if (rc != status || (needle1 && !strstr(msg, needle1)) || (needle2 && !strstr(msg, needle2)))
        fprintf(stderr, "\n  craft %s %s: exit %d (wanted %d): %.400s\n", args[0], args[1] ? args[1] : "", rc, status,
                msg);
    CU_ASSERT_EQUAL(rc, status);
    if (needle1)
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, needle1));
    if (needle2)
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, needle2));
    free(msg);
}

/* A store of the 300 good orders at path. */
static void make_store(const char *db)
{
    remove_store(db);
    const char *args[] = {"import", "--db", db, good, NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, args), 0);
}

static void hash_of(const char *path, char out[65])
{
    craft_error err;
    if (craft_sha256_file(path, out, &err))
        out[0] = 0;
}

static int temporaries_beside(const char *stem)
{
    char cmd[700], out[32] = "0";
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^%s.tmp-'", hd_dir, stem);
    FILE *p = popen(cmd, "r");
    if (p) {
        if (!fgets(out, sizeof out, p))
            snprintf(out, sizeof out, "0");
        pclose(p);
    }
    return atoi(out);
}

static void folder_listing(char *out, size_t cap);

/* ------------------------------------------------------------ full disk */

static long long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) ? 0 : (long long)st.st_size;
}

static void test_full_disk_import(void)
{
    const char *db = path_in("full-imp.db");
    make_store(db);
    char before[512], now[512];
    store_digest(db, before, sizeof before);
    run_opts o = {.stderr_path = path_in("full.err"), .fsize_limit = file_size(db) + 65536};
    const char *args[] = {"import", "--db", db, many, NULL};
    CU_ASSERT_EQUAL(run_craft(&o, args), 74);
    char *msg = slurp(o.stderr_path);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, db));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "disk full"));
    free(msg);
    CU_ASSERT(integrity_ok(db));
    store_digest(db, now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, before);
    /* with room again, the same import goes through */
    CU_ASSERT_EQUAL(run_craft(NULL, args), 0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 4300);
}

static void test_full_disk_score(void)
{
    const char *db = path_in("full-sc.db");
    make_store(db);
    /* scores already there (the 300 good orders), then 4000 more orders to score */
    const char *first[] = {"score", "--db", db, "--model", model, "--threads", "1", "--threshold", "0.3", NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, first), 0);
    const char *imp[] = {"import", "--db", db, many, NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, imp), 0);
    char before[512], now[512], scores_before[65], scores_now[65];
    sql_text(db, "SELECT count(*) || '/' || sum(length(num)) FROM orders", before, sizeof before);
    score_tables_hash(db, scores_before);
    CU_ASSERT_FATAL(scores_before[0] != 0);
    CU_ASSERT_EQUAL_FATAL(sql_int(db, "SELECT count(*) FROM predictions WHERE off = 0"), 300);
    run_opts o = {.stderr_path = path_in("full.err"), .fsize_limit = file_size(db) + 65536};
    const char *args[] = {"score", "--db", db, "--model", model, "--threads", "1", "--threshold", "0.3", NULL};
    CU_ASSERT_EQUAL(run_craft(&o, args), 74);
    char *msg = slurp(o.stderr_path);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "disk full"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, db));
    free(msg);
    CU_ASSERT(integrity_ok(db));
    /* all or nothing: the orders, and every score, case and audit row, exactly as
     * before the run; the run is recorded as failed */
    sql_text(db, "SELECT count(*) || '/' || sum(length(num)) FROM orders", now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, before);
    score_tables_hash(db, scores_now);
    CU_ASSERT_STRING_EQUAL(scores_now, scores_before);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM scoring_runs WHERE status = 'failed'"), 1);
    /* with room again, the same run stores everything */
    CU_ASSERT_EQUAL(run_craft(NULL, args), 0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions WHERE off = 0"), 4300);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions"), 4 * 4300);
}

static void test_full_disk_checkpoint_and_output(void)
{
    const char *ckpt = path_in("full.safetensors"), *out = path_in("full-scores.jsonl");
    char old[65], now[65];
    CU_ASSERT_EQUAL_FATAL(copy_file(model, ckpt), 0);
    hash_of(ckpt, old);
    /* the trainer's checkpoint cannot be written whole: the old one stays */
    run_opts o = {.stderr_path = path_in("full.err"), .fsize_limit = 16384};
    const char *train[] = {"train", "--input", good, "--config", config, "--output", ckpt, "--epochs", "1",
                           "--threads", "1", NULL};
    int rc = run_craft(&o, train);
    char *msg = slurp(o.stderr_path);
    if (rc != 74)
        fprintf(stderr, "\n  train on a full disk: exit %d: %.300s\n", rc, msg);
    CU_ASSERT_EQUAL(rc, 74);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, ckpt));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "File too large"));
    free(msg);
    hash_of(ckpt, now);
    CU_ASSERT_STRING_EQUAL(now, old);
    CU_ASSERT_EQUAL(temporaries_beside("full.safetensors"), 0);
    /* craft score --output replaces its file atomically: a failed write keeps the old
     * one, says so once, naming the file and the reason, and leaves no temporary file */
    FILE *f = fopen(out, "w");
    fputs("{\"old\": true}\n", f);
    fclose(f);
    o.fsize_limit = 4096;
    const char *score[] = {"score", "--model", model, "--input", many, "--output", out, "--threads", "1", NULL};
    CU_ASSERT_EQUAL(run_craft(&o, score), 74);
    msg = slurp(out);
    CU_ASSERT_STRING_EQUAL(msg, "{\"old\": true}\n");
    free(msg);
    char said[800];
    snprintf(said, sizeof said, "craft score: %s: writing the scores failed: File too large", out);
    msg = slurp(o.stderr_path);
    if (!strstr(msg, said) || strchr(msg, '\n') != msg + strlen(msg) - 1)
        fprintf(stderr, "\n  score --output on a full disk said: %.600s\n", msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, said));
    CU_ASSERT_PTR_EQUAL(strchr(msg, '\n'), msg + strlen(msg) - 1); /* one line */
    free(msg);
    CU_ASSERT_EQUAL(temporaries_beside("full-scores.jsonl"), 0);
    /* without an old file: none afterwards, no partial output */
    CU_ASSERT_EQUAL(unlink(out), 0);
    CU_ASSERT_EQUAL(run_craft(&o, score), 74);
    CU_ASSERT(access(out, F_OK) != 0);
    CU_ASSERT_EQUAL(temporaries_beside("full-scores.jsonl"), 0);
    msg = slurp(o.stderr_path);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, said));
    free(msg);
}

/* ------------------------------------------------- read-only, locked */

static int can_test_permissions;

static void test_read_only_store_file(void)
{
    if (!can_test_permissions) {
        fprintf(stderr, "(root without CAP_SETPCAP: file modes do not bind here) ");
        return;
    }
    const char *db = path_in("ro.db");
    make_store(db);
    const char *sc[] = {"score", "--db", db, "--model", model, "--threads", "1", "--threshold", "0.3", NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, sc), 0);
    char before[512], now[512], id[64];
    store_digest(db, before, sizeof before);
    sql_text(db, "SELECT o.order_id FROM cases c JOIN orders o ON o.id = c.order_id LIMIT 1", id, sizeof id);
    CU_ASSERT_EQUAL_FATAL(chmod(db, 0400), 0);
    const char *errf = path_in("ro.err");
    run_opts o = {.stderr_path = errf, .drop_dac = 1};
    const char *imp[] = {"import", "--db", db, many, NULL};
    const char *decide[] = {"cases", "decide", id, "escalated", "--db", db, "--actor", "t", NULL};
    const char *list[] = {"cases", "list", "--db", db, NULL};
    const char *const *writers[] = {imp, sc, decide};
    for (int i = 0; i < 3; i++) {
        int rc = run_craft(&o, writers[i]);
        char *msg = slurp(errf);
        CU_ASSERT(rc == 74 || rc == 66);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "readonly"));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, db));
        free(msg);
    }
    /* reading still works, and leaves the folder as it was (no -wal or -shm) */
    char listed_before[4096], listed_now[4096];
    folder_listing(listed_before, sizeof listed_before);
    CU_ASSERT_EQUAL(run_craft(&o, list), 0);
    folder_listing(listed_now, sizeof listed_now);
    CU_ASSERT_STRING_EQUAL(listed_now, listed_before);
    CU_ASSERT_EQUAL(chmod(db, 0600), 0);
    CU_ASSERT(integrity_ok(db));
    store_digest(db, now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, before);
}

static void test_read_only_folder(void)
{
    if (!can_test_permissions) {
        fprintf(stderr, "(root without CAP_SETPCAP: file modes do not bind here) ");
        return;
    }
    char ro[600], db[700], fresh[700], ckpt[700], out[700];
    snprintf(ro, sizeof ro, "%s/ro-folder", hd_dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(ro, 0700), 0);
    snprintf(db, sizeof db, "%s/s.db", ro);
    snprintf(fresh, sizeof fresh, "%s/new.db", ro);
    snprintf(ckpt, sizeof ckpt, "%s/m.safetensors", ro);
    snprintf(out, sizeof out, "%s/scores.jsonl", ro);
    make_store(db);
    char before[512], now[512];
    store_digest(db, before, sizeof before);
    CU_ASSERT_EQUAL_FATAL(chmod(ro, 0500), 0);
    const char *errf = path_in("rof.err");
    run_opts o = {.stderr_path = errf, .drop_dac = 1};
    const char *imp[] = {"import", "--db", db, many, NULL};
    const char *create[] = {"import", "--db", fresh, good, NULL};
    const char *train[] = {"train", "--input", good, "--config", config, "--output", ckpt, "--epochs", "1",
                           "--threads", "1", NULL};
    const char *score[] = {"score", "--model", model, "--input", good, "--output", out, NULL};
    struct {
        const char *const *args;
        const char *says;
    } cases[] = {{imp, "folder must be writable"}, {create, "Permission denied"}, {train, "Permission denied"},
                 {score, "Permission denied"}};
    for (int i = 0; i < 4; i++) {
        int rc = run_craft(&o, cases[i].args);
        char *msg = slurp(errf);
        if (!strstr(msg, cases[i].says) || rc == 0)
            fprintf(stderr, "\n  read-only folder, craft %s: exit %d: %.300s\n", cases[i].args[0], rc, msg);
        CU_ASSERT(rc == 66 || rc == 74);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, cases[i].says));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, ro));
        free(msg);
    }
    /* reading the store in the read-only folder works, and creates nothing there */
    const char *list[] = {"cases", "list", "--db", db, NULL};
    CU_ASSERT_EQUAL(run_craft(&o, list), 0);
    char wal[800];
    snprintf(wal, sizeof wal, "%s-wal", db);
    CU_ASSERT(access(wal, F_OK) != 0);
    CU_ASSERT_EQUAL(chmod(ro, 0700), 0);
    CU_ASSERT(access(fresh, F_OK) != 0 && access(ckpt, F_OK) != 0 && access(out, F_OK) != 0);
    CU_ASSERT(integrity_ok(db));
    store_digest(db, now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, before);
}

/* The names in the scratch folder, sorted, one string. */
static void folder_listing(char *out, size_t cap)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | tr '\\n' ' '", hd_dir);
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (p) {
        if (!fgets(out, (int)cap, p))
            out[0] = 0;
        pclose(p);
    }
}

/* Read-only commands leave the store's folder as they found it: no -wal or -shm
 * files (a read-only SQLite connection to a WAL database would leave them). */
static void test_read_only_commands_leave_no_files(void)
{
    const char *db = path_in("quiet.db");
    make_store(db);
    const char *sc[] = {"score", "--db", db, "--model", model, "--threads", "1", "--threshold", "0.3", NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, sc), 0);
    char wal[700], shm[700], id[64], before[4096], now[4096];
    snprintf(wal, sizeof wal, "%s-wal", db);
    snprintf(shm, sizeof shm, "%s-shm", db);
    CU_ASSERT_FATAL(access(wal, F_OK) != 0 && access(shm, F_OK) != 0); /* a writer's close removes them */
    sql_text(db, "SELECT o.order_id FROM cases c JOIN orders o ON o.id = c.order_id LIMIT 1", id, sizeof id);
    folder_listing(before, sizeof before);
    const char *list[] = {"cases", "list", "--db", db, NULL};
    const char *show[] = {"cases", "show", id, "--db", db, NULL};
    const char *entity[] = {"cases", "entity", "customer", "C-1", "--db", db, NULL};
    const char *const *readers[] = {list, show, entity};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(run_craft(NULL, readers[i]), 0);
        CU_ASSERT(access(wal, F_OK) != 0);
        CU_ASSERT(access(shm, F_OK) != 0);
    }
    folder_listing(now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, before);
    /* and a read-only handle still refuses to write */
    craft_store *s;
    craft_error err;
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_READONLY, &err), CRAFT_OK);
    CU_ASSERT_NOT_EQUAL(craft_store_case_add_note(s, 1, "x", "t", &err), CRAFT_OK);
    craft_store_close(s);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM notes"), 0);
    CU_ASSERT(access(wal, F_OK) != 0 && access(shm, F_OK) != 0);
}

static void test_locked_store(void)
{
    const char *db = path_in("locked.db");
    make_store(db);
    const char *sc[] = {"score", "--db", db, "--model", model, "--threads", "1", "--threshold", "0.3", NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, sc), 0);
    char before[512], now[512], id[64];
    store_digest(db, before, sizeof before);
    sql_text(db, "SELECT o.order_id FROM cases c JOIN orders o ON o.id = c.order_id LIMIT 1", id, sizeof id);
    /* another writer holds the store */
    sqlite3 *h;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    const char *imp[] = {"import", "--db", db, many, NULL};
    const char *decide[] = {"cases", "decide", id, "escalated", "--db", db, "--actor", "t", "--note", "locked", NULL};
    const char *list[] = {"cases", "list", "--db", db, NULL};
    double t0 = now_s();
    expect(74, imp, "another program is writing to the store", db);
    double waited = now_s() - t0;
    CU_ASSERT(waited >= 9.0); /* the busy timeout: it waited for the other writer first */
    expect(74, decide, "another program is writing to the store", db);
    CU_ASSERT_EQUAL(run_craft(NULL, list), 0); /* readers are not blocked (WAL) */
    sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(h);
    store_digest(db, now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, before);
    /* once the other writer is done, both go through */
    CU_ASSERT_EQUAL(run_craft(NULL, decide), 0);
    CU_ASSERT_EQUAL(run_craft(NULL, imp), 0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM notes WHERE text = 'locked'"), 1);
    fprintf(stderr, "(waited %.1f s) ", waited);
}

/* ------------------------------------------------------ hostile input */

/* A file: a good order (not in make_store's store), the hostile line, another good order. */
static const char *hostile(const char *name, const char *line)
{
    const char *p = path_in(name);
    FILE *f = fopen(p, "w"), *g = fopen(many, "r");
    char buf[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(buf, sizeof buf, g));
    fputs(buf, f);
    fputs(line, f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(buf, sizeof buf, g));
    fputs(buf, f);
    fclose(f);
    fclose(g);
    return p;
}

/* The hostile file at line 2 through import (nothing stored; --skip-bad stores the
 * two good ones), score and train: each exit 65 naming file:2 and the reason. */
static void refused_everywhere(const char *file, const char *import_reason, const char *reason, int train_too)
{
    const char *db = path_in("hostile.db");
    make_store(db);
    char before[512], now[512], where[700];
    store_digest(db, before, sizeof before);
    snprintf(where, sizeof where, "%s:2", file);
    const char *imp[] = {"import", "--db", db, file, NULL};
    expect(65, imp, where, import_reason);
    store_digest(db, now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, before);
    const char *rej = path_in("rejects.jsonl");
    const char *skip[] = {"import", "--db", db, "--skip-bad", rej, file, NULL};
    expect(0, skip, where, import_reason);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 302);
    CU_ASSERT(integrity_ok(db));
    const char *score[] = {"score", "--model", model, "--input", file, NULL};
    expect(65, score, where, reason);
    if (train_too) {
        const char *ckpt = path_in("hostile.safetensors");
        const char *train[] = {"train", "--input", file, "--config", config, "--output", ckpt, "--epochs", "1",
                               "--threads", "1", NULL};
        expect(65, train, where, reason);
        CU_ASSERT(access(ckpt, F_OK) != 0);
    }
}

static void test_100mb_line(void)
{
    size_t n = 100u << 20;
    char *line = malloc(n + 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    int k = sprintf(line, "{\"order_id\": \"BIG-1\", \"text\": {\"journey\": \"");
    memset(line + k, 'x', n);
    strcpy(line + k + n, "\"}}\n");
    const char *file = hostile("big.jsonl", line);
    free(line);
    refused_everywhere(file, "longer than", "longer than", 1);
}

static void test_deeply_nested_json(void)
{
    int depth = 100000;
    char *line = malloc(2 * (size_t)depth + 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    int k = sprintf(line, "{\"order_id\": \"DEEP-1\", \"features\": {\"num3\": ");
    memset(line + k, '[', depth);
    memset(line + k + depth, ']', depth);
    strcpy(line + k + 2 * depth, "}}\n");
    const char *file = hostile("deep.jsonl", line);
    free(line);
    refused_everywhere(file, "feature \"num3\" must be a number", "nested deeper than", 1);
}

static void test_nan_and_infinity(void)
{
    static const struct {
        const char *name, *line, *reason;
    } cases[] = {
        {"inf-feature.jsonl", "{\"order_id\": \"N-1\", \"features\": {\"num3\": 1e999}}\n", "num3"},
        {"minf-feature.jsonl", "{\"order_id\": \"N-2\", \"features\": {\"num4\": -1e400}}\n", "num4"},
        {"nan-feature.jsonl", "{\"order_id\": \"N-3\", \"features\": {\"num3\": NaN}}\n", NULL},
        {"inf-emb.jsonl",
         "{\"order_id\": \"N-4\", \"embeddings\": {\"txt\": [0, 0, 0, 1e999, 0, 0, 0, 0, 0, 0]}}\n", "txt"},
        {"nan-emb.jsonl",
         "{\"order_id\": \"N-5\", \"embeddings\": {\"txt\": [0, 0, 0, NaN, 0, 0, 0, 0, 0, 0]}}\n", NULL},
        {"inf-graph.jsonl", "{\"order_id\": \"N-6\", \"embeddings\": {\"graph\": [[0, 0, Infinity, 0, 0, 0]]}}\n",
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        refused_everywhere(hostile(cases[i].name, cases[i].line), cases[i].reason, cases[i].reason, 1);
    /* CSV: "nan", "inf" and "1e999" in a numeric column */
    const char *csv = path_in("nonfinite.csv");
    FILE *f = fopen(csv, "w");
    fputs("order_id,num3,num4\nC-1,1.5,2\nC-2,nan,1\nC-3,2,inf\nC-4,1e999,1\nC-5,-inf,1\n", f);
    fclose(f);
    const char *db = path_in("csv.db");
    make_store(db);
    const char *imp[] = {"import", "--db", db, csv, NULL};
    const char *errf = path_in("csv.err");
    run_opts o = {.stderr_path = errf};
    int rc = run_craft(&o, imp);
    char *msg = slurp(errf);
    /* either refused, or stored as missing: never a NaN or infinity reaching a score */
    if (rc == 65) {
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "nonfinite.csv:4"));
        CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 300);
    }
    CU_ASSERT(rc == 0 || rc == 65);
    free(msg);
    const char *out = path_in("csv-scores.jsonl");
    const char *score[] = {"score", "--model", model, "--input", csv, NULL};
    o.stdout_path = out;
    rc = run_craft(&o, score);
    msg = slurp(out);
    CU_ASSERT(rc == 0 || rc == 65);
    CU_ASSERT_PTR_NULL(strstr(msg, "nan"));
    CU_ASSERT_PTR_NULL(strstr(msg, "inf"));
    CU_ASSERT_PTR_NULL(strstr(msg, "null"));
    free(msg);
}

static void test_100000_wide_embedding(void)
{
    size_t cap = 100000 * 8 + 200;
    char *line = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    /* the earliest order of all, so that scoring a store meets it first */
    int k = sprintf(line, "{\"order_id\": \"WIDE-1\", \"ts\": \"2026-01-01T00:00:00Z\", \"features\": {\"num3\": 1},"
                          " \"embeddings\": {\"txt\": [");
    for (int i = 0; i < 100000; i++)
        k += sprintf(line + k, "%s0.25", i ? ", " : "");
    strcpy(line + k, "]}}\n");
    const char *file = hostile("wide.jsonl", line);
    free(line);
    /* the model takes 10: scoring the file refuses the order */
    const char *score[] = {"score", "--model", model, "--input", file, NULL};
    char where[700];
    snprintf(where, sizeof where, "%s:2", file);
    expect(65, score, where, "100000 wide");
    const char *ckpt = path_in("wide.safetensors");
    const char *train[] = {"train", "--input", file, "--config", config, "--output", ckpt, "--epochs", "1",
                           "--threads", "1", NULL};
    expect(65, train, where, NULL);
    /* import is model-independent: the order is stored. Scoring the store skips it
     * (the first order in time), stores every other order's scores, keeps the
     * reason, and exits 65 naming the order and the reason. */
    const char *db = path_in("wide.db");
    make_store(db);
    const char *imp[] = {"import", "--db", db, file, NULL};
    CU_ASSERT_EQUAL(run_craft(NULL, imp), 0);
    long long n = sql_int(db, "SELECT count(*) FROM orders");
    CU_ASSERT_EQUAL(n, 303); /* the store's 300 and the file's three */
    const char *sc[] = {"score", "--db", db, "--model", model, "--threads", "1", NULL};
    expect(65, sc, "WIDE-1: could not score", "1 x 100000");
    CU_ASSERT(integrity_ok(db));
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions WHERE off = 0"), 302);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions"), 4 * 302);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM explanations"), 302);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM scoring_runs WHERE status = 'complete' AND scored = 302"
                                " AND failed = 1"),
                    1);
    char reason[300];
    sql_text(db, "SELECT reason FROM score_errors e JOIN orders o ON o.id = e.order_id WHERE o.order_id = 'WIDE-1'",
             reason, sizeof reason);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "1 x 100000"));
    /* the order's page says why it has no scores */
    const char *show[] = {"cases", "show", "WIDE-1", "--db", db, NULL};
    const char *out = path_in("wide-show.txt");
    run_opts o = {.stdout_path = out};
    CU_ASSERT_EQUAL(run_craft(&o, show), 0);
    char *text = slurp(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "could not score: embedding \"txt\" is 1 x 100000"));
    free(text);
    /* --only-unscored tries it again (and only it), and the reason stays */
    const char *again[] = {"score", "--db", db, "--model", model, "--threads", "1", "--only-unscored", NULL};
    expect(65, again, "could not score 1 order", "WIDE-1");
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions WHERE off = 0"), 302);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM score_errors"), 1);
}

static void test_invalid_utf8(void)
{
    static const char *const lines[] = {
        "{\"order_id\": \"U-\xff\xfe\", \"features\": {\"num3\": 1}}\n",
        "{\"order_id\": \"U-2\", \"features\": {\"cat0\": \"\xc3\x28\"}}\n",
        "{\"order_id\": \"U-3\", \"features\": {\"n\xe2\x82um\": 1}}\n",
        "{\"order_id\": \"U-4\", \"text\": {\"journey\": \"SCAN \xed\xa0\x80 surrogate\"}}\n",
        "{\"order_id\": \"U-5\", \"entities\": {\"customer\": \"\xc0\xaf overlong\"}}\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        char name[32];
        snprintf(name, sizeof name, "utf8-%zu.jsonl", i);
        refused_everywhere(hostile(name, lines[i]), "UTF-8", "UTF-8", 1);
    }
    const char *csv = path_in("utf8.csv");
    FILE *f = fopen(csv, "w");
    fputs("order_id,num3,cat0\nC-1,1.5,v1\nC-2,2,v\xff\n", f);
    fclose(f);
    const char *db = path_in("utf8csv.db");
    make_store(db);
    const char *imp[] = {"import", "--db", db, csv, NULL};
    char where[700];
    snprintf(where, sizeof where, "%s:3", csv);
    expect(65, imp, where, "UTF-8");
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 300);
    const char *score[] = {"score", "--model", model, "--input", csv, NULL};
    expect(65, score, where, "UTF-8");
}

/* A model registered by path, then replaced on disk (a retrained model written over
 * it): loading it from the store is refused, naming the change, instead of scoring
 * with a model other than the one whose predictions are stored. */
static void test_replaced_model_file(void)
{
    const char *db = path_in("replaced.db"), *ckpt = path_in("replaced.safetensors");
    make_store(db);
    CU_ASSERT_EQUAL_FATAL(copy_file(model, ckpt), 0);
    const char *sc[] = {"score", "--db", db, "--model", ckpt, "--threads", "1", NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, sc), 0);
    craft_store *s;
    craft_error err;
    craft_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_READONLY, &err), CRAFT_OK);
    int64_t id = craft_store_latest_model(s);
    CU_ASSERT_EQUAL(craft_store_model_load(s, id, &m, &err), CRAFT_OK);
    craft_model_free(m);
    CU_ASSERT_EQUAL_FATAL(copy_file(fixture("tiny-train-multilabel.safetensors"), ckpt), 0);
    m = NULL;
    CU_ASSERT_NOT_EQUAL(craft_store_model_load(s, id, &m, &err), CRAFT_OK);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "changed since it was registered"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ckpt));
    craft_store_close(s);
}

int main(void)
{
    need_craft();
    if (make_scratch("edges") || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    model = fixture("tiny-multilabel.safetensors");
    can_test_permissions = permissions_testable();
    /* inputs: good orders, and the model's config for craft train */
    static char g[600], m[600], c[600];
    snprintf(g, sizeof g, "%s", path_in("good.jsonl"));
    snprintf(m, sizeof m, "%s", path_in("many.jsonl"));
    snprintf(c, sizeof c, "%s", path_in("config.json"));
    good = g;
    many = m;
    config = c;
    craft_model *mod;
    craft_error err;
    if (write_orders(good, 0, 300) || write_orders(many, 10000, 4000) || craft_model_load(&mod, model, &err))
        return 1;
    char *json = craft_config_to_json(&mod->cfg);
    craft_model_free(mod);
    FILE *f = fopen(config, "w");
    if (!f || !json)
        return 1;
    fputs(json, f);
    fclose(f);
    free(json);
    CU_pSuite s = CU_add_suite("edges", NULL, NULL);
    if (!s || !CU_add_test(s, "full disk: import stores nothing", test_full_disk_import) ||
        !CU_add_test(s, "full disk: score --db stores nothing", test_full_disk_score) ||
        !CU_add_test(s, "full disk: checkpoint and score output keep the old file", test_full_disk_checkpoint_and_output) ||
        !CU_add_test(s, "read-only store file", test_read_only_store_file) ||
        !CU_add_test(s, "read-only folder", test_read_only_folder) ||
        !CU_add_test(s, "read-only commands leave no -wal/-shm files", test_read_only_commands_leave_no_files) ||
        !CU_add_test(s, "store locked by another writer", test_locked_store) ||
        !CU_add_test(s, "a 100 MB line", test_100mb_line) ||
        !CU_add_test(s, "deeply nested JSON", test_deeply_nested_json) ||
        !CU_add_test(s, "NaN and infinity", test_nan_and_infinity) ||
        !CU_add_test(s, "100,000-wide embedding against a 10-wide model", test_100000_wide_embedding) ||
        !CU_add_test(s, "invalid UTF-8", test_invalid_utf8) ||
        !CU_add_test(s, "a registered model file replaced on disk", test_replaced_model_file)) {
        CU_cleanup_registry();
        return 1;
    }
    int rc = run_suite();
    remove_scratch();
    return rc;
}
