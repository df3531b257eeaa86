/* test_hostile: what a break-in attempt found (issue 16), each probe followed by
 * the refusal or behaviour it must get, through the craft CLI: outputs onto a
 * device or FIFO are written in place (never replaced), a tampered store's rows
 * are refused with "store damaged" naming the table and row, the audit log cannot
 * be rewritten (a hash chain that `craft cases verify` checks), reports are 0600,
 * the scoring reader gives import's verdicts, wide CSV headers and endless lines,
 * symlinked rejects files, a model sharing no feature with the data, standard
 * output that cannot be written, control characters and formula cells, and the
 * smaller items of the issue. */
#include <sys/sysmacros.h>

#include "hardening_util.h"
#include "store.h"

static const char *model;  /* tiny-multilabel: 12 features, txt 10 wide, graph 6 wide */
static const char *good;   /* 300 good orders */
static const char *store;  /* the 300 orders, scored (cases made) */

static char last_err[8192];

/* A path in the scratch folder that stays (path_in's buffers rotate): up to 64. */
static const char *keep(const char *name)
{
    static char b[64][600];
    static int k;
    k = (k + 1) % 64;
    snprintf(b[k], sizeof b[k], "%s", path_in(name));
    return b[k];
}

/* Runs craft with stdout to out (NULL: /dev/null); the exit status; stderr in last_err. */
static int craft_out(const char *out, const char *const *args)
{
    const char *errf = path_in("stderr.txt");
    run_opts o = {.stdout_path = out, .stderr_path = errf};
    int rc = run_craft(&o, args);
    char *msg = slurp(errf);
    snprintf(last_err, sizeof last_err, "%s", msg);
    free(msg);
    return rc;
}

/* Runs craft; checks the exit status and that stderr holds the needle. */
static void expect(int status, const char *const *args, const char *needle)
{
    int rc = craft_out(NULL, args);
    if (rc != status || (needle && !strstr(last_err, needle)))
        fprintf(stderr, "\n  craft %s %s: exit %d (wanted %d, \"%s\"): %.600s\n", args[0], args[1] ? args[1] : "", rc,
                status, needle ? needle : "", last_err);
    CU_ASSERT_EQUAL(rc, status);
    if (needle)
        CU_ASSERT_PTR_NOT_NULL(strstr(last_err, needle));
}

static void write_text(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(text, 1, n, f);
    fclose(f);
}

static void sql_exec(const char *db, const char *sql)
{
    sqlite3 *h;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fprintf(stderr, "\n  %s: %s\n", sql, msg);
    sqlite3_free(msg);
    sqlite3_close(h);
}

/* A copy of the scored store at name, to tamper with. */
static const char *store_copy(const char *name)
{
    const char *db = path_in(name);
    remove_store(db);
    CU_ASSERT_EQUAL_FATAL(copy_file(store, db), 0);
    return db;
}

static int temporaries_in_scratch(void)
{
    char cmd[700], out[32] = "0";
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.tmp-'", hd_dir);
    FILE *p = popen(cmd, "r");
    if (p) {
        if (!fgets(out, sizeof out, p))
            snprintf(out, sizeof out, "0");
        pclose(p);
    }
    return atoi(out);
}

/* ------------------------------------------- 1: devices and FIFOs as --output */

/* A FIFO read by a child to its end; the byte count it read. */
static pid_t fifo_reader(const char *fifo, const char *count_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(fifo, O_RDONLY);
        long n = 0;
        char buf[4096];
        ssize_t r;
        while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0)
            n += r;
        FILE *f = fopen(count_path, "w");
        if (f) {
            fprintf(f, "%ld", n);
            fclose(f);
        }
        _exit(0);
    }
    return pid;
}

static void check_not_replaced(const char *what, const char *const *args, const char *out, int fifo)
{
    struct stat before, after;
    CU_ASSERT_EQUAL_FATAL(lstat(out, &before), 0);
    const char *count = keep("fifo.count");
    unlink(count);
    pid_t reader = fifo ? fifo_reader(out, count) : -1;
    int rc = craft_out(NULL, args);
    if (rc)
        fprintf(stderr, "\n  %s onto %s: exit %d: %.300s\n", what, out, rc, last_err);
    CU_ASSERT_EQUAL(rc, 0);
    if (reader > 0) {
        int st;
        waitpid(reader, &st, 0);
        char *n = slurp(count);
        CU_ASSERT(atol(n) > 0); /* the FIFO's reader got the output */
        free(n);
    }
    CU_ASSERT_EQUAL_FATAL(lstat(out, &after), 0);
    CU_ASSERT_EQUAL(after.st_mode, before.st_mode); /* same type, same mode */
    CU_ASSERT_EQUAL(after.st_ino, before.st_ino);   /* the same node, not a new file */
    CU_ASSERT_EQUAL(after.st_rdev, before.st_rdev);
    CU_ASSERT_EQUAL(temporaries_in_scratch(), 0);
}

static void test_output_onto_device_and_fifo(void)
{
    /* a character device node of our own (/dev/null's numbers) where we may make one,
     * and a symbolic link to /dev/null (replacing the link would be the old bug) */
    const char *dev = keep("null-node"), *link = keep("null-link"), *fifo = keep("out-fifo");
    unlink(dev);
    unlink(link);
    unlink(fifo);
    int have_dev = mknod(dev, S_IFCHR | 0666, makedev(1, 3)) == 0;
    CU_ASSERT_EQUAL_FATAL(symlink("/dev/null", link), 0);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    const char *outs[3] = {have_dev ? dev : link, link, fifo};
    for (int i = 0; i < 3; i++) {
        const char *score[] = {"score", "--model", model, "--input", good, "--output", outs[i], NULL};
        check_not_replaced("score", score, outs[i], i == 2);
    }
    /* report and synth through names with the right extension: links and FIFOs */
    const char *csv_link = keep("null-link.csv"), *csv_fifo = keep("fifo.csv"), *jsonl_fifo = keep("fifo.jsonl");
    unlink(csv_link);
    unlink(csv_fifo);
    unlink(jsonl_fifo);
    CU_ASSERT_EQUAL_FATAL(symlink(have_dev ? dev : "/dev/null", csv_link), 0);
    CU_ASSERT_EQUAL_FATAL(mkfifo(csv_fifo, 0600), 0);
    CU_ASSERT_EQUAL_FATAL(mkfifo(jsonl_fifo, 0600), 0);
    const char *rep1[] = {"report", "--db", store, "--output", csv_link, "--quiet", NULL};
    check_not_replaced("report", rep1, csv_link, 0);
    const char *rep2[] = {"report", "--db", store, "--output", csv_fifo, "--quiet", NULL};
    check_not_replaced("report", rep2, csv_fifo, 1);
    const char *syn[] = {"synth", "--orders", "20", "--output", jsonl_fifo, "--truth", keep("truth.json"), NULL};
    check_not_replaced("synth", syn, jsonl_fifo, 1);
    /* a plot (PNG) onto a link to the device */
    const char *png_link = keep("null-link.png");
    unlink(png_link);
    CU_ASSERT_EQUAL_FATAL(symlink(have_dev ? dev : "/dev/null", png_link), 0);
    char oid[64];
    sql_text(store, "SELECT order_id FROM orders WHERE id = 1", oid, sizeof oid);
    const char *plot[] = {"report", "--db", store, "--order", oid, "--plot", "scores", "--output", png_link, "--quiet",
                          NULL};
    check_not_replaced("report --plot", plot, png_link, 0);
    if (have_dev) {
        struct stat st;
        CU_ASSERT_EQUAL(stat(dev, &st), 0);
        CU_ASSERT(S_ISCHR(st.st_mode));
    }
    /* a directory is refused, not replaced */
    const char *dir_out[] = {"score", "--model", model, "--input", good, "--output", hd_dir, NULL};
    expect(74, dir_out, "is a directory");
    /* a symbolic link to a regular file: the target is replaced, the link stays */
    const char *target = keep("target.jsonl"), *tl = keep("target-link.jsonl");
    unlink(tl);
    write_text(target, "old\n", 4);
    CU_ASSERT_EQUAL_FATAL(symlink(target, tl), 0);
    const char *via_link[] = {"score", "--model", model, "--input", good, "--output", tl, NULL};
    expect(0, via_link, NULL);
    struct stat ls;
    CU_ASSERT_EQUAL(lstat(tl, &ls), 0);
    CU_ASSERT(S_ISLNK(ls.st_mode));
    char *t = slurp(target);
    CU_ASSERT(strlen(t) > 1000);
    free(t);
}

/* SIGTERM and SIGINT in the middle of score --output leave no OUT.tmp-XXXXXX. */
static void test_signal_removes_temporary(void)
{
    const char *big = keep("big.jsonl");
    CU_ASSERT_EQUAL_FATAL(write_orders(big, 0, 20000), 0);
    int sigs[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        const char *out = keep("sig-out.jsonl");
        unlink(out);
        const char *args[] = {"score", "--model", model, "--input", big, "--output", out, "--explain", "--perturbation",
                              "--threads", "1", NULL};
        pid_t pid = spawn_craft(NULL, args);
        CU_ASSERT_FATAL(pid > 0);
        /* wait until the temporary file exists */
        for (int k = 0; k < 200 && temporaries_in_scratch() == 0; k++)
            sleep_s(0.02);
        sleep_s(0.1);
        kill(pid, sigs[i]);
        int st;
        waitpid(pid, &st, 0);
        CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == sigs[i]);
        CU_ASSERT_EQUAL(temporaries_in_scratch(), 0);
        CU_ASSERT_NOT_EQUAL(access(out, F_OK), 0);
    }
}

/* --------------------------------------------- 2: a tampered store read back */

static void expect_damaged(const char *const *args, const char *table)
{
    double t0 = now_s();
    expect(65, args, "store damaged");
    CU_ASSERT_PTR_NOT_NULL(strstr(last_err, table));
    CU_ASSERT(now_s() - t0 < 30); /* no hang */
}

static void test_tampered_store(void)
{
    static const char *const oid = "P-0000001";
    static const struct {
        const char *sql, *table;
        int show, score, report;
    } cases[] = {
        /* a short embedding BLOB (was read past its end by score --db) */
        {"UPDATE embeddings SET data = substr(data, 1, 8) WHERE order_id = 2", "embeddings", 0, 1, 0},
        {"UPDATE embeddings SET data = zeroblob(3) WHERE order_id = 2", "embeddings", 0, 1, 0},
        /* the importance BLOB disagreeing with tokens (SIGSEGV in cases show) */
        {"UPDATE explanations SET importance = substr(importance, 1, 4) WHERE order_id = 2", "explanations", 1, 0, 1},
        {"UPDATE explanations SET tokens = 5 WHERE order_id = 2", "explanations", 1, 0, 1},
        {"UPDATE explanations SET tokens = -3 WHERE order_id = 2", "explanations", 1, 0, 1},
        {"UPDATE explanations SET tokens = 2000000000 WHERE order_id = 2", "explanations", 1, 0, 1},
        {"UPDATE explanations SET cmis = x'00' WHERE order_id = 2", "explanations", 1, 0, 1},
        {"UPDATE explanations SET perturb = zeroblob(12) WHERE order_id = 2", "explanations", 1, 0, 1},
        {"UPDATE explanations SET importance = 'text' WHERE order_id = 2", "explanations", 1, 0, 1},
        /* a short prediction, a numeric BLOB that is not whole floats */
        {"UPDATE predictions SET scores = x'0000' WHERE order_id = 2", "predictions", 1, 0, 1},
        {"UPDATE orders SET num = x'000000' WHERE id = 2", "orders", 1, 1, 1},
        {"UPDATE orders SET num = zeroblob(100000) WHERE id = 2", "orders", 1, 1, 1},
        /* a time with a NUL byte (fuzz_store found score --db paging over it forever), and
         * times that are not text at all */
        {"UPDATE orders SET ts = CAST(x'323032362d30332d30310041' AS TEXT) WHERE id = 2", NULL, 0, 2, 0},
        {"UPDATE orders SET ts = 20260301 WHERE id = 3; UPDATE orders SET ts = x'00ff' WHERE id = 4", NULL, 0, 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *db = store_copy("tampered.db");
        sql_exec(db, "PRAGMA journal_mode = DELETE");
        char sql[400];
        snprintf(sql, sizeof sql, "PRAGMA foreign_keys = OFF; %s", cases[i].sql);
        sql_exec(db, sql);
        /* the row tampered with is order row 2 */
        char check[200] = "";
        sql_text(db, "SELECT order_id FROM orders WHERE id = 2", check, sizeof check);
        CU_ASSERT_STRING_EQUAL(check, oid);
        if (cases[i].show) {
            const char *show[] = {"cases", "show", oid, "--db", db, NULL};
            const char *show_json[] = {"cases", "show", oid, "--db", db, "--json", NULL};
            expect_damaged(show, cases[i].table);
            expect_damaged(show_json, cases[i].table);
        }
        if (cases[i].report) {
            const char *rep[] = {"report", "--db", db, "--order", oid, "--output", keep("t.json"), "--quiet", NULL};
            expect_damaged(rep, cases[i].table);
        }
        if (cases[i].score == 2) {
            /* not damage the readers refuse, but it must not loop: score runs to its end */
            const char *sc[] = {"score", "--db", db, "--model", model, NULL};
            double t0 = now_s();
            expect(0, sc, NULL);
            CU_ASSERT(now_s() - t0 < 60);
            CU_ASSERT_EQUAL(sql_int(db, "SELECT count(DISTINCT order_id) FROM predictions"), 300);
        } else if (cases[i].score) {
            char before[65], after[65];
            score_tables_hash(db, before);
            const char *sc[] = {"score", "--db", db, "--model", model, NULL};
            expect_damaged(sc, cases[i].table);
            score_tables_hash(db, after);
            CU_ASSERT_STRING_EQUAL(before, after); /* nothing stored */
        }
    }
}

/* ------------------------------------------------- 3: the audit log */

int craft_store_migrate(sqlite3 *db, int target, craft_error *err); /* store_internal.h */

static int sql_rc(const char *db, const char *sql)
{
    sqlite3 *h;
    if (sqlite3_open(db, &h) != SQLITE_OK)
        return -1;
    int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_close(h);
    return rc;
}

static void test_audit_append_only(void)
{
    const char *db = store_copy("audit.db");
    const char *verify[] = {"cases", "verify", "--db", db, NULL};
    expect(0, verify, NULL);
    char before[200], after[200];
    sql_text(db, "SELECT actor || action || coalesce(after, '') FROM audit WHERE id = 1", before, sizeof before);
    /* the old hole: INSERT OR REPLACE over row 1 (no DELETE trigger fires for it) */
    CU_ASSERT_NOT_EQUAL(sql_rc(db, "INSERT OR REPLACE INTO audit(id, case_id, at, actor, action) VALUES(1, 1, 0, 'x', 'y')"),
                        SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(sql_rc(db, "REPLACE INTO audit(id, case_id, at, actor, action) VALUES(1, 1, 0, 'x', 'y')"),
                        SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(sql_rc(db, "INSERT INTO audit(case_id, at, actor, action) VALUES(1, 0, 'x', 'y')"), SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(sql_rc(db, "UPDATE audit SET actor = 'x' WHERE id = 1"), SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(sql_rc(db, "DELETE FROM audit WHERE id = 1"), SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(sql_rc(db, "UPDATE audit SET id = 1000 WHERE id = 1"), SQLITE_OK);
    sql_text(db, "SELECT actor || action || coalesce(after, '') FROM audit WHERE id = 1", after, sizeof after);
    CU_ASSERT_STRING_EQUAL(before, after);
    expect(0, verify, NULL);
    /* a row added at the end without the chain's hash */
    CU_ASSERT_EQUAL(sql_rc(db, "INSERT INTO audit(id, case_id, at, actor, action, hash) SELECT max(id) + 1, 1, 0, 'x',"
                               " 'status', 'f00' FROM audit"),
                    SQLITE_OK);
    char last[32];
    sql_text(db, "SELECT max(id) FROM audit", last, sizeof last);
    expect(65, verify, "store damaged: table audit, row");
    CU_ASSERT_PTR_NOT_NULL(strstr(last_err, last));
    /* an audit value rewritten to break out of the JSON of cases show --json: it stays a string */
    db = store_copy("audit-json.db");
    CU_ASSERT_EQUAL(sql_rc(db, "DROP TRIGGER audit_no_update; UPDATE audit SET after = '\"}], \"evil\": 1, \"x\": [{\"a'"
                               " WHERE id = 1"),
                    SQLITE_OK);
    char oid[64];
    sql_text(db, "SELECT o.order_id FROM audit a JOIN cases c ON c.id = a.case_id JOIN orders o ON o.id = c.order_id"
                 " WHERE a.id = 1", oid, sizeof oid);
    const char *show_json[] = {"cases", "show", oid, "--db", db, "--json", NULL};
    const char *out = keep("audit-show.json");
    CU_ASSERT_EQUAL(craft_out(out, show_json), 0);
    char *json = slurp(out);
    CU_ASSERT_PTR_NULL(strstr(json, ", \"evil\": 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\\\"evil\\\": 1"));
    free(json);
    /* triggers dropped and row 2 rewritten: the first broken row is named */
    db = store_copy("audit2.db");
    CU_ASSERT_EQUAL(sql_rc(db, "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE id = 2;"
                               " CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN"
                               " SELECT RAISE(ABORT, 'the audit log is append-only'); END;"),
                    SQLITE_OK);
    const char *verify2[] = {"cases", "verify", "--db", db, NULL};
    expect(65, verify2, "row 2:");
    /* a trigger dropped is said */
    db = store_copy("audit3.db");
    CU_ASSERT_EQUAL(sql_rc(db, "DROP TRIGGER audit_no_delete"), SQLITE_OK);
    const char *verify3[] = {"cases", "verify", "--db", db, NULL};
    expect(65, verify3, "audit_no_delete");
    /* a version 4 store (no chain) gets it on its first writable open, its rows kept */
    db = keep("v4.db");
    remove_store(db);
    sqlite3 *h;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
    CU_ASSERT_EQUAL(craft_store_migrate(h, 4, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(h,
                                 "INSERT INTO datasets(id, name, created) VALUES(1, 'd', 0);"
                                 "INSERT INTO orders(id, dataset_id, order_id, imported) VALUES(1, 1, 'O-1', 0);"
                                 "INSERT INTO cases(id, order_id, created, updated) VALUES(1, 1, 0, 0);"
                                 "INSERT INTO audit(case_id, at, actor, action, after) VALUES(1, 1.5, 'craft score',"
                                 " 'create', '{\"status\": \"new\"}');"
                                 "INSERT INTO audit(case_id, at, actor, action, before, after) VALUES(1, 2.25, 'ann',"
                                 " 'status', '{\"status\": \"new\"}', '{\"status\": \"in_review\"}');",
                                 NULL, NULL, NULL),
                    SQLITE_OK);
    sqlite3_close(h);
    const char *v4[] = {"cases", "verify", "--db", db, NULL};
    expect(69, v4, "no audit hash chain");
    const char *note[] = {"cases", "note", "O-1", "checked", "--db", db, "--actor", "bob", NULL};
    expect(0, note, NULL);
    CU_ASSERT_EQUAL(sql_int(db, "PRAGMA user_version"), CRAFT_STORE_VERSION);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM audit WHERE hash IS NOT NULL"), 3);
    /* several programs opening a version 4 store at once: one migrates, the others
     * wait for it and find it done (they failed with "duplicate column" before) */
    const char *v4b = keep("v4b.db");
    remove_store(v4b);
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(v4b, &h), SQLITE_OK);
    CU_ASSERT_EQUAL(craft_store_migrate(h, 4, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(h,
                                 "INSERT INTO datasets(id, name, created) VALUES(1, 'd', 0);"
                                 "INSERT INTO orders(id, dataset_id, order_id, imported) VALUES(1, 1, 'O-1', 0);"
                                 "INSERT INTO cases(id, order_id, created, updated) VALUES(1, 1, 0, 0);",
                                 NULL, NULL, NULL),
                    SQLITE_OK);
    sqlite3_close(h);
    pid_t kids[6];
    const char *note_b[] = {"cases", "note", "O-1", "at once", "--db", v4b, "--actor", "bob", NULL};
    for (int i = 0; i < 6; i++)
        kids[i] = spawn_craft(NULL, note_b);
    for (int i = 0; i < 6; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CU_ASSERT_EQUAL(sql_int(v4b, "SELECT count(*) FROM notes"), 6);
    const char *verify_b[] = {"cases", "verify", "--db", v4b, NULL};
    expect(0, verify_b, NULL);
    CU_ASSERT_EQUAL(craft_out(keep("verify.txt"), v4), 0);
    char *vout = slurp(keep("verify.txt"));
    CU_ASSERT_PTR_NOT_NULL(strstr(vout, "3 rows"));
    free(vout);
}

/* ------------------------------ 5, 7, 12: one verdict from every reader */

/* import and score give the same verdict on the file: both exit `status`, and on a
 * refusal both name file:line. */
static void same_verdict(const char *name, const char *text, size_t n, int status, int line)
{
    const char *file = keep(name);
    write_text(file, text, n);
    const char *db = keep("verdict.db");
    remove_store(db);
    char where[700];
    snprintf(where, sizeof where, "%s:%d", file, line);
    const char *imp[] = {"import", "--db", db, file, NULL};
    const char *sc[] = {"score", "--model", model, "--input", file, NULL};
    expect(status, imp, status ? where : NULL);
    expect(status, sc, status ? where : NULL);
}

#define GOOD_LINE "{\"order_id\": \"G-1\", \"features\": {\"num3\": 1}}\n"

static void test_same_verdicts(void)
{
    /* \u0000 and a raw NUL in a string: refused (they cut "A" + "B" to "A") */
    static const char esc[] = GOOD_LINE "{\"order_id\": \"A\\u0000B\", \"features\": {\"num3\": 1}}\n";
    same_verdict("nul-escape.jsonl", esc, sizeof esc - 1, 65, 2);
    static const char raw[] = GOOD_LINE "{\"order_id\": \"A\0B\", \"features\": {\"num3\": 1}}\n";
    same_verdict("nul-raw.jsonl", raw, sizeof raw - 1, 65, 2);
    /* a \\u0000 (an escaped backslash, then u0000) is text, not a NUL */
    static const char not_nul[] = "{\"order_id\": \"A\\\\u0000B\", \"features\": {\"num3\": 1}}\n";
    same_verdict("not-nul.jsonl", not_nul, sizeof not_nul - 1, 0, 1);
    /* text after the object */
    static const char after[] = GOOD_LINE "{\"order_id\": \"A\"} {\"order_id\": \"B\"}\n";
    same_verdict("after.jsonl", after, sizeof after - 1, 65, 2);
    static const char junk[] = GOOD_LINE "{\"order_id\": \"A\"}x\n";
    same_verdict("junk.jsonl", junk, sizeof junk - 1, 65, 2);
    /* NUL in CSV fields */
    static const char csv_nul[] = "order_id,num3\nA,1\nB\0C,2\n";
    same_verdict("nul.csv", csv_nul, sizeof csv_nul - 1, 65, 3);
    static const char csv_nul_head[] = "order_id,nu\0m3\nA,1\n";
    same_verdict("nul-header.csv", csv_nul_head, sizeof csv_nul_head - 1, 65, 1);
    static const char csv_nul_q[] = "order_id,num3\nA,1\n\"B\0C\",2\n";
    same_verdict("nulq.csv", csv_nul_q, sizeof csv_nul_q - 1, 65, 3);
    /* CR-only line endings: refused by both (it was 0 orders and exit 0) */
    static const char cr[] = "order_id,num3\rA,1\rB,2\r";
    same_verdict("cr.csv", cr, sizeof cr - 1, 65, 1);
    static const char crlf[] = "order_id,num3\r\nA,1\r\nB,2\r\n";
    same_verdict("crlf.csv", crlf, sizeof crlf - 1, 0, 0);
    /* a UTF-8 BOM: accepted at the start of a CSV or JSONL file by both, refused later */
    static const char bom_csv[] = "\xEF\xBB\xBForder_id,num3\nA,1\n";
    same_verdict("bom.csv", bom_csv, sizeof bom_csv - 1, 0, 0);
    static const char bom_jsonl[] = "\xEF\xBB\xBF" GOOD_LINE;
    same_verdict("bom.jsonl", bom_jsonl, sizeof bom_jsonl - 1, 0, 0);
    static const char bom_late[] = GOOD_LINE "\xEF\xBB\xBF{\"order_id\": \"B\"}\n";
    same_verdict("bom-late.jsonl", bom_late, sizeof bom_late - 1, 65, 2);
    /* CSV numbers in JSON's grammar only: " 1", "0x10", "inf" are text for both (a numeric
     * feature refuses them in score; import keeps them as categories, which score --db then
     * refuses for a numeric model feature); a label is "0" or "1" exactly */
    static const char *const not_numbers[] = {" 1", "0x10", "inf", "nan", "+1", ".5", "1."};
    for (int i = 0; i < 7; i++) {
        char text[200];
        int n = snprintf(text, sizeof text, "order_id,num3\nA,\"%s\"\n", not_numbers[i]);
        const char *file = keep("not-number.csv");
        write_text(file, text, (size_t)n);
        const char *sc[] = {"score", "--model", model, "--input", file, NULL};
        expect(65, sc, "is numeric, got the text");
    }
    const char *empty_csv = keep("empty.csv");
    write_text(empty_csv, "", 0);
    const char *db0 = keep("empty.db");
    remove_store(db0);
    const char *imp0[] = {"import", "--db", db0, empty_csv, NULL};
    const char *sc0[] = {"score", "--model", model, "--input", empty_csv, NULL};
    expect(65, imp0, "empty");
    expect(65, sc0, "empty");
    static const char label_float[] = "order_id,num3,label:D1\nA,1,1.0\n";
    same_verdict("label-float.csv", label_float, sizeof label_float - 1, 65, 2);
    /* a header with an empty column name, and a duplicate one */
    static const char empty_col[] = "order_id,,num3\nA,1,2\n";
    same_verdict("empty-col.csv", empty_col, sizeof empty_col - 1, 65, 1);
    static const char dup_col[] = "order_id,num3,num3\nA,1,2\n";
    same_verdict("dup-col.csv", dup_col, sizeof dup_col - 1, 65, 1);
}

/* An endless line (/dev/zero) stops at the limit instead of never finishing. */
static void test_endless_line(void)
{
    const char *db = keep("zero.db");
    remove_store(db);
    const char *sc[] = {"score", "--model", model, "--input", "/dev/zero", NULL};
    const char *sc_csv[] = {"score", "--model", model, "--input", "/dev/zero", "--format", "csv", NULL};
    const char *imp[] = {"import", "--db", db, "/dev/zero", NULL};
    const char *imp_csv[] = {"import", "--db", db, "--format", "csv", "/dev/zero", NULL};
    const char *imp_skip[] = {"import", "--db", db, "--skip-bad", keep("zero-rejects.jsonl"), "/dev/zero", NULL};
    const char *const *all[] = {sc, sc_csv, imp, imp_csv, imp_skip};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        double t0 = now_s();
        expect(65, all[i], "longer than");
        CU_ASSERT(now_s() - t0 < 60);
    }
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 0);
}

/* A CSV header of 300,000 columns is read in linear time (it took over 60 s). */
static void test_wide_csv_header(void)
{
    int n = 300000;
    const char *file = keep("wide.csv");
    FILE *f = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("order_id", f);
    for (int i = 0; i < n; i++)
        fprintf(f, ",c%d", i);
    fputs("\nW-1", f);
    for (int i = 0; i < n; i++)
        fputs(",1", f);
    fputc('\n', f);
    fclose(f);
    const char *sc[] = {"score", "--model", model, "--input", file, NULL};
    double t0 = now_s();
    int rc = craft_out(NULL, sc);
    double dt = now_s() - t0;
    if (dt > 20)
        fprintf(stderr, "\n  score of a 300,000-column CSV: %.1f s\n", dt);
    CU_ASSERT(dt < 20);
    /* no feature of the model is among them: refused as such (item 9), not silently scored */
    CU_ASSERT_EQUAL(rc, 65);
}

/* ------------------------------- 9: a model sharing no features with the data */

static void test_no_common_features(void)
{
    static const char none[] = "{\"order_id\": \"Z-1\", \"features\": {\"zz\": 1, \"yy\": 2}}\n"
                               "{\"order_id\": \"Z-2\", \"features\": {\"zz\": 3}}\n";
    const char *file = keep("none.jsonl"), *out = keep("none-out.jsonl");
    write_text(file, none, sizeof none - 1);
    unlink(out);
    const char *sc[] = {"score", "--model", model, "--input", file, "--output", out, NULL};
    expect(65, sc, "none of the model's 12 features");
    CU_ASSERT_NOT_EQUAL(access(out, F_OK), 0); /* nothing written */
    /* two of twelve present: scored, with a loud warning naming the counts */
    static const char few[] = "{\"order_id\": \"F-1\", \"features\": {\"num3\": 1, \"num4\": 2}}\n";
    const char *ffile = keep("few.jsonl");
    write_text(ffile, few, sizeof few - 1);
    const char *sc2[] = {"score", "--model", model, "--input", ffile, NULL};
    expect(0, sc2, "WARNING: 10 of the model's 12 features (83%) are missing");
    /* all present: no such warning */
    const char *sc3[] = {"score", "--model", model, "--input", good, NULL};
    expect(0, sc3, NULL);
    CU_ASSERT_PTR_NULL(strstr(last_err, "features ("));
    /* a store dataset with none of them: its orders refused with the reason */
    const char *db = keep("none.db");
    remove_store(db);
    const char *imp[] = {"import", "--db", db, file, NULL};
    expect(0, imp, NULL);
    const char *sdb[] = {"score", "--db", db, "--model", model, NULL};
    expect(65, sdb, "none of the model's 12 features");
}

/* ------------------------------------------ 8: the --skip-bad rejects file */

static void test_rejects_file(void)
{
    static const char mixed[] = GOOD_LINE "not json\n{\"order_id\": \"G-2\", \"features\": {\"num3\": 2}}\n";
    const char *file = keep("mixed.jsonl"), *db = keep("rejects.db");
    write_text(file, mixed, sizeof mixed - 1);
    /* a symbolic link to a file is not followed: its target keeps its bytes */
    const char *target = keep("precious.txt"), *link = keep("rejects-link.jsonl");
    write_text(target, "precious\n", 9);
    unlink(link);
    CU_ASSERT_EQUAL_FATAL(symlink(target, link), 0);
    remove_store(db);
    const char *via_link[] = {"import", "--db", db, "--skip-bad", link, file, NULL};
    expect(74, via_link, "symbolic link");
    char *t = slurp(target);
    CU_ASSERT_STRING_EQUAL(t, "precious\n");
    free(t);
    CU_ASSERT_NOT_EQUAL(access(db, F_OK), 0); /* refused before the store was touched */
    /* rejects that cannot be written: nothing imported, and it says so */
    if (access("/dev/full", W_OK) == 0) {
        const char *full[] = {"import", "--db", db, "--skip-bad", "/dev/full", file, NULL};
        expect(74, full, "nothing was imported");
        CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 0);
    }
    /* a plain file: the good rows stored, the bad one listed, the file 0600 */
    const char *rej = keep("rejects.jsonl");
    unlink(rej);
    const char *ok[] = {"import", "--db", db, "--skip-bad", rej, file, NULL};
    expect(0, ok, NULL);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 2);
    struct stat st;
    CU_ASSERT_EQUAL(stat(rej, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    char *r = slurp(rej);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "\"line\": 2"));
    free(r);
}

/* ------------------------------------------------- 4: reports are private */

static void test_report_mode(void)
{
    mode_t old = umask(022);
    const char *names[] = {"rep.json", "rep.csv", "rep.md", "rep.pdf"};
    for (int i = 0; i < 4; i++) {
        const char *out = keep(names[i]);
        unlink(out);
        const char *rep[] = {"report", "--db", store, "--output", out, "--quiet", "--limit", "3", NULL};
        expect(0, rep, NULL);
        struct stat st;
        CU_ASSERT_EQUAL(stat(out, &st), 0);
        if ((st.st_mode & 0777) != 0600)
            fprintf(stderr, "\n  %s: mode %o\n", out, st.st_mode & 0777);
        CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
        CU_ASSERT_EQUAL(temporaries_in_scratch(), 0);
    }
    /* a report written over an existing file keeps that file's mode */
    const char *mine = keep("rep.json");
    chmod(mine, 0640);
    const char *again[] = {"report", "--db", store, "--output", mine, "--quiet", "--limit", "3", NULL};
    expect(0, again, NULL);
    struct stat st;
    CU_ASSERT_EQUAL(stat(mine, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0640);
    umask(old);
}

/* ------------------------- 11: untrusted text on terminals and in spreadsheets */

static int has_raw_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\n') || *p == 0x7F)
            return 1;
        if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) /* C1 */
            return 1;
        if (p[0] == 0xE2 && ((p[1] == 0x80 && p[2] >= 0xAA && p[2] <= 0xAE) || (p[1] == 0x81 && p[2] >= 0xA6 &&
                                                                                  p[2] <= 0xA9))) /* bidi */
            return 1;
    }
    return 0;
}

static void test_terminal_and_csv_injection(void)
{
    /* ids, entities and text with ESC sequences, BEL, DEL, C1 CSI, right-to-left
     * override and isolate; an id that is a spreadsheet formula */
    static const char orders[] =
        "{\"order_id\": \"EVIL\\u001b]0;pwned\\u0007\\u001b[2J\\u202egnp.exe\\u009b31m\\u007f\\u2066x\", "
        "\"features\": {\"num3\": 1}, \"entities\": {\"customer\": \"C\\u001b[31m\"},"
        " \"text\": {\"journey\": \"ok\\r\\nfake line\"}}\n"
        "{\"order_id\": \"=HYPERLINK(\\\"http://x\\\",\\\"y\\\")\", \"features\": {\"num3\": 1}}\n"
        "{\"order_id\": \"+2+5\", \"features\": {\"num3\": 2}}\n"
        "{\"order_id\": \"@SUM(A1)\", \"features\": {\"num3\": 3}}\n";
    const char *file = keep("evil.jsonl"), *db = keep("evil.db");
    write_text(file, orders, sizeof orders - 1);
    remove_store(db);
    const char *imp[] = {"import", "--db", db, file, NULL};
    expect(0, imp, NULL);
    const char *sc[] = {"score", "--db", db, "--model", model, "--threshold", "0.01", NULL};
    expect(0, sc, NULL);
    char evil_id[200];
    sql_text(db, "SELECT order_id FROM orders WHERE id = 1", evil_id, sizeof evil_id);
    CU_ASSERT_PTR_NOT_NULL(strchr(evil_id, 0x1b)); /* stored as given */
    const char *note[] = {"cases", "note", evil_id, "see \x1b[31mred\x07 \xe2\x80\xae", "--db", db, "--actor",
                          "mallory\x1b[0m", NULL};
    expect(0, note, NULL);
    CU_ASSERT(!has_raw_control(last_err));
    const char *out = keep("evil-out.txt");
    const char *list[] = {"cases", "list", "--db", db, "--all", NULL};
    const char *show[] = {"cases", "show", evil_id, "--db", db, NULL};
    const char *entity[] = {"cases", "entity", "customer", "C\x1b[31m", "--db", db, NULL};
    const char *missing[] = {"cases", "show", "NO\x1b[2J\xe2\x80\xae", "--db", db, NULL};
    const char *const *all[] = {list, show, entity, missing};
    for (int i = 0; i < 4; i++) {
        int rc = craft_out(out, all[i]);
        CU_ASSERT_EQUAL(rc, i == 3 ? 65 : 0);
        char *text = slurp(out);
        if (has_raw_control(text) || has_raw_control(last_err))
            fprintf(stderr, "\n  craft cases %s: raw control characters reach the terminal\n", all[i][1]);
        CU_ASSERT(!has_raw_control(text));
        CU_ASSERT(!has_raw_control(last_err));
        if (i == 1) /* shown as escapes */
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "EVIL\\e]0;pwned\\x07"));
        free(text);
    }
    /* the JSON keeps the exact text (escaped the JSON way) */
    const char *show_json[] = {"cases", "show", evil_id, "--db", db, "--json", NULL};
    CU_ASSERT_EQUAL(craft_out(out, show_json), 0);
    char *json = slurp(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\\u001b"));
    free(json);
    /* the report CSV: formula cells neutralized with a leading ' */
    const char *csv = keep("evil.csv");
    const char *rep[] = {"report", "--db", db, "--all", "--output", csv, "--quiet", NULL};
    expect(0, rep, NULL);
    char *text = slurp(csv);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"'=HYPERLINK("));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"'+2+5\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"'@SUM(A1)\""));
    CU_ASSERT_PTR_NULL(strstr(text, ",=HYPERLINK"));
    CU_ASSERT_PTR_NULL(strstr(text, "\n=HYPERLINK"));
    free(text);
    /* the Markdown report: no raw control or bidi characters either */
    const char *md = keep("evil.md");
    const char *rep_md[] = {"report", "--db", db, "--all", "--output", md, "--quiet", NULL};
    expect(0, rep_md, NULL);
    char *mdt = slurp(md);
    CU_ASSERT(strlen(mdt) > 100);
    CU_ASSERT(!has_raw_control(mdt));
    free(mdt);
    /* an assignee that is a formula */
    const char *assign[] = {"cases", "assign", "+2+5", "-1+cmd|' /C calc'!A0", "--db", db, "--actor", "eve", NULL};
    expect(0, assign, NULL);
    expect(0, rep, NULL);
    text = slurp(csv);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"'-1+cmd|' /C calc'!A0\""));
    free(text);
}

/* ------------------------------------------------- 12: the smaller ones */

static void test_smaller_items(void)
{
    const char *db = store_copy("small.db");
    char oid[64];
    sql_text(db, "SELECT o.order_id FROM cases c JOIN orders o ON o.id = c.order_id ORDER BY c.id LIMIT 1", oid,
             sizeof oid);
    CU_ASSERT_FATAL(oid[0] != 0);
    /* a confirmed defect of no class */
    const char *seps[] = {",", " ", ",,"};
    for (int i = 0; i < 3; i++) {
        const char *dec[] = {"cases", "decide", oid, "confirmed_defect", "--classes", seps[i], "--db", db,
                             "--actor", "ann", NULL};
        expect(65, dec, "class");
    }
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM labels WHERE source = 'decision'"), 0);
    /* import --replace of a decided case's order: the case keeps its decision, an audit row says so */
    const char *dec[] = {"cases", "decide", oid, "confirmed_defect", "--classes", "D1", "--db", db, "--actor", "ann",
                         NULL};
    expect(0, dec, NULL);
    long long audit_before = sql_int(db, "SELECT count(*) FROM audit");
    char line[600];
    snprintf(line, sizeof line, "{\"order_id\": \"%s\", \"features\": {\"num3\": 0.5}}\n", oid);
    const char *again = keep("replace.jsonl");
    write_text(again, line, strlen(line));
    const char *rep[] = {"import", "--db", db, "--replace", again, NULL};
    expect(0, rep, NULL);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM audit"), audit_before + 1);
    char action[200];
    sql_text(db, "SELECT actor || '/' || action FROM audit ORDER BY id DESC LIMIT 1", action, sizeof action);
    CU_ASSERT_STRING_EQUAL(action, "craft import/replace");
    CU_ASSERT_EQUAL(sql_int(db, "SELECT status FROM cases c JOIN orders o ON o.id = c.order_id WHERE o.order_id = "
                                "(SELECT order_id FROM orders WHERE id = (SELECT order_id FROM cases ORDER BY id LIMIT 1))"),
                    2);
    const char *verify[] = {"cases", "verify", "--db", db, NULL};
    expect(0, verify, NULL);
    /* directories are "cannot open" (66), not write errors */
    const char *sc_dir[] = {"score", "--model", model, "--input", hd_dir, NULL};
    expect(66, sc_dir, "is a directory");
    const char *info_dir[] = {"model", "info", hd_dir, NULL};
    expect(66, info_dir, "is a directory");
    const char *sc_model_dir[] = {"score", "--model", hd_dir, "--input", good, NULL};
    expect(66, sc_model_dir, "is a directory");
    /* a FIFO as a model: refused at once, not a read that waits forever */
    const char *fifo = keep("model-fifo");
    unlink(fifo);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    const char *info_fifo[] = {"model", "info", fifo, NULL};
    double t0 = now_s();
    expect(66, info_fifo, "not a regular file");
    const char *sc_fifo[] = {"score", "--model", fifo, "--input", good, NULL};
    expect(66, sc_fifo, "not a regular file");
    CU_ASSERT(now_s() - t0 < 10);
    /* a FIFO as the input: read once, every order scored (an input check that read it
     * first left the scoring nothing: 0 orders, exit 0) */
    const char *in_fifo = keep("input-fifo"), *scored = keep("fifo-scores.jsonl");
    unlink(in_fifo);
    CU_ASSERT_EQUAL_FATAL(mkfifo(in_fifo, 0600), 0);
    pid_t writer = fork();
    if (writer == 0) {
        int fd = open(in_fifo, O_WRONLY);
        char *text = slurp(good);
        if (fd >= 0 && write(fd, text, strlen(text)) < 0)
            _exit(1);
        _exit(0);
    }
    const char *sc_in_fifo[] = {"score", "--model", model, "--input", in_fifo, NULL};
    CU_ASSERT_EQUAL(craft_out(scored, sc_in_fifo), 0);
    int st;
    waitpid(writer, &st, 0);
    char *lines = slurp(scored);
    int n = 0;
    for (char *p = lines; (p = strchr(p, '\n')); p++)
        n++;
    CU_ASSERT_EQUAL(n, 300);
    free(lines);
    /* the store, an input or the model as an output is refused, not replaced */
    const char *db2 = store_copy("self.db");
    const char *rej_self[] = {"import", "--db", db2, "--skip-bad", db2, good, NULL};
    expect(64, rej_self, "the store or an input");
    const char *rej_in[] = {"import", "--db", db2, "--skip-bad", good, good, NULL};
    expect(64, rej_in, "the store or an input");
    CU_ASSERT(integrity_ok(db2));
    const char *out_in[] = {"score", "--model", model, "--input", good, "--output", good, NULL};
    expect(64, out_in, "the input or the model");
    /* a store that is a FIFO or a device: refused at once */
    const char *list_fifo[] = {"cases", "list", "--db", fifo, NULL};
    expect(66, list_fifo, "not a regular file");
    const char *list_zero[] = {"cases", "list", "--db", "/dev/zero", NULL};
    expect(66, list_zero, "not a regular file");
    /* a store path that is a link to nothing: not followed (SQLite would create the
     * target wherever the link points, 0644) */
    const char *dangling = keep("dangling.db");
    unlink(dangling);
    CU_ASSERT_EQUAL_FATAL(symlink(keep("elsewhere.db"), dangling), 0);
    const char *imp_link[] = {"import", "--db", dangling, good, NULL};
    expect(66, imp_link, "symbolic link to nothing");
    CU_ASSERT_NOT_EQUAL(access(keep("elsewhere.db"), F_OK), 0);
    /* a negative schema version is named as such */
    const char *neg = store_copy("negative.db");
    sql_exec(neg, "PRAGMA user_version = -5");
    const char *list[] = {"cases", "list", "--db", neg, NULL};
    expect(65, list, "schema version -5");
    const char *imp[] = {"import", "--db", neg, good, NULL};
    expect(65, imp, "store damaged");
}

/* Keyset paging over times with a NUL byte or of other types reads every row once
 * (a key cut at the NUL started the next page at the same row again). */
static void test_queue_keys_over_tampered_times(void)
{
    const char *db = store_copy("keys.db");
    sql_exec(db, "UPDATE orders SET ts = CAST(x'323032362d30332d30310041' AS TEXT) WHERE id IN (2, 3, 4);"
                 "UPDATE orders SET ts = x'00ff' WHERE id = 5; UPDATE orders SET ts = 7 WHERE id = 6;");
    craft_store *s;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, CRAFT_STORE_READONLY, &err), CRAFT_OK);
    for (int asc = 0; asc < 2; asc++) {
        craft_queue_query q;
        craft_queue_query_init(&q);
        q.cases_only = 0;
        q.sort = CRAFT_SORT_TIME;
        q.ascending = asc;
        q.limit = 1;
        craft_queue_key key = {0};
        int rows = 0, more = 1;
        while (more && rows < 1000) {
            q.seek = key.n || key.order ? &key : NULL;
            craft_queue_page pg;
            if (craft_store_queue(s, &q, &pg, &err)) {
                CU_FAIL("queue read failed");
                break;
            }
            more = pg.n > 0;
            rows += pg.n;
            if (pg.n) {
                craft_queue_key_clear(&key);
                CU_ASSERT_EQUAL(craft_queue_key_copy(&key, &pg.rows[pg.n - 1].key), CRAFT_OK);
            }
            craft_queue_page_free(&pg);
        }
        craft_queue_key_clear(&key);
        CU_ASSERT_EQUAL(rows, 300);
    }
    craft_store_close(s);
}

/* ------------------------------------------------- 10: stdout that fails */

static void test_stdout_write_failure(void)
{
    if (access("/dev/full", W_OK)) {
        fprintf(stderr, "(no /dev/full: skipped) ");
        return;
    }
    const char *list[] = {"cases", "list", "--db", store, NULL};
    const char *list_json[] = {"cases", "list", "--db", store, "--json", NULL};
    const char *show[] = {"cases", "show", "P-0000001", "--db", store, NULL};
    const char *show_json[] = {"cases", "show", "P-0000001", "--db", store, "--json", NULL};
    const char *info[] = {"model", "info", model, NULL};
    const char *info_json[] = {"model", "info", model, "--json", NULL};
    const char *const *all[] = {list, list_json, show, show_json, info, info_json};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        int rc = craft_out("/dev/full", all[i]);
        if (rc != 74)
            fprintf(stderr, "\n  craft %s %s >/dev/full: exit %d: %.300s\n", all[i][0], all[i][1], rc, last_err);
        CU_ASSERT_EQUAL(rc, 74);
        CU_ASSERT_PTR_NOT_NULL(strstr(last_err, "standard output"));
        /* and to a file they work */
        CU_ASSERT_EQUAL(craft_out(keep("stdout.txt"), all[i]), 0);
    }
}

/* ------------------------------------------------------------- main */

int main(void)
{
    need_craft();
    if (make_scratch("hostile") || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    model = fixture("tiny-multilabel.safetensors");
    static char g[600], s[600];
    snprintf(g, sizeof g, "%s", keep("good.jsonl"));
    snprintf(s, sizeof s, "%s", keep("scored.db"));
    good = g;
    store = s;
    if (write_orders(good, 0, 300))
        return 1;
    const char *imp[] = {"import", "--db", store, good, NULL};
    const char *sc[] = {"score", "--db", store, "--model", model, "--threshold", "0.3", NULL};
    if (run_craft(NULL, imp) || run_craft(NULL, sc)) {
        fprintf(stderr, "cannot build the scored store\n");
        return 1;
    }
    CU_pSuite su = CU_add_suite("hostile", NULL, NULL);
    if (!su || !CU_add_test(su, "1: --output onto a device, a link to one, a FIFO", test_output_onto_device_and_fifo) ||
        !CU_add_test(su, "2: a tampered store is refused as damaged, naming the table", test_tampered_store) ||
        !CU_add_test(su, "3: the audit log is append-only and hash-chained", test_audit_append_only) ||
        !CU_add_test(su, "5, 12: import and score give one verdict (NUL, trailing text, CR, BOM)", test_same_verdicts) ||
        !CU_add_test(su, "7: an endless line stops at the limit", test_endless_line) ||
        !CU_add_test(su, "6: a 300,000-column CSV header in linear time", test_wide_csv_header) ||
        !CU_add_test(su, "9: a model sharing no feature with the data is refused", test_no_common_features) ||
        !CU_add_test(su, "8: --skip-bad never follows a link; unwritable rejects store nothing", test_rejects_file) ||
        !CU_add_test(su, "4: reports are 0600", test_report_mode) ||
        !CU_add_test(su, "11: control characters escaped on terminals, formulas neutralized in CSV",
                     test_terminal_and_csv_injection) ||
        !CU_add_test(su, "12: empty classes, --replace audit, directories, FIFO models, bad versions",
                     test_smaller_items) ||
        !CU_add_test(su, "queue keys over tampered times read every row once", test_queue_keys_over_tampered_times) ||
        !CU_add_test(su, "12: SIGTERM/SIGINT during score --output leave no temporary", test_signal_removes_temporary) ||
        !CU_add_test(su, "10: standard output that cannot be written is exit 74", test_stdout_write_failure)) {
        CU_cleanup_registry();
        return 1;
    }
    int rc = run_suite();
    remove_scratch();
    return rc;
}
