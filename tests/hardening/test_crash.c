/* test_crash: hard stops, for real. Child processes are SIGKILLed at random
 * moments while they import (`craft import`), score into the store (`craft score
 * --db`), write checkpoints (craft_model_save in a loop, and `craft train
 * --output`) and decide cases (`craft cases decide` in a shell loop that prints
 * an acknowledgement after each call returns). Afterwards: PRAGMA
 * integrity_check is ok, an import is wholly there or not at all, a scoring run's
 * results are wholly there or not at all (the old scores stay byte for byte), no
 * acknowledged decision is lost, and a checkpoint is the old file or a whole new
 * one, never torn, with at most the one temporary file of a save killed between
 * naming it and the rename, which the next save removes.
 *
 * Rounds per scenario: CRAFT_CRASH_ROUNDS (default 50); inputs are small so the
 * default suits CI. */
#include "hardening_util.h"

static int rounds;

/* Random moment in [lo, hi) seconds. */
static double between(double lo, double hi)
{
    return lo + (hi - lo) * urand();
}

static int killed_by_sigkill(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

static void copy_store(const char *from, const char *to)
{
    char a[600], b[600];
    remove_store(to);
    CU_ASSERT_EQUAL_FATAL(copy_file(from, to), 0);
    snprintf(a, sizeof a, "%s-wal", from);
    snprintf(b, sizeof b, "%s-wal", to);
    if (access(a, F_OK) == 0)
        CU_ASSERT_EQUAL_FATAL(copy_file(a, b), 0);
}

/* ---------------------------------------------------------------- import */

static void test_killed_import(void)
{
    const char *base = path_in("imp-base.db"), *db = path_in("imp.db"), *seed = path_in("imp-seed.jsonl"),
               *big = path_in("imp-big.jsonl");
    CU_ASSERT_EQUAL_FATAL(write_orders(seed, 0, 200), 0);
    CU_ASSERT_EQUAL_FATAL(write_orders(big, 100000, 4000), 0);
    const char *seed_args[] = {"import", "--db", base, seed, NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, seed_args), 0);
    char before[512], after[512], now[512];
    store_digest(base, before, sizeof before);
    /* one whole import: how long it takes (to aim the kills) and what it leaves */
    copy_store(base, db);
    const char *args[] = {"import", "--db", db, big, NULL};
    double t0 = now_s();
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, args), 0);
    double full = now_s() - t0;
    store_digest(db, after, sizeof after);
    CU_ASSERT_STRING_NOT_EQUAL(before, after);
    /* The first quarter of the rounds stops the import the moment its transaction
     * has begun (its write lock seen, and still held while it is stopped) and
     * kills it: provably midway, run again should the import be done first. The
     * rest kill at a random moment: opening, batches, commit, checkpoint, or done. */
    int midway = 0, whole = 0, aimed = rounds / 4 > 0 ? rounds / 4 : 1;
    for (int r = 0, attempts = 0; r < rounds && attempts < rounds + 20; attempts++) {
        copy_store(base, db);
        pid_t pid = spawn_craft(NULL, args);
        CU_ASSERT_FATAL(pid > 0);
        sqlite3 *h;
        CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        if (r < aimed) {
            CU_ASSERT(wait_for_write_lock(h, pid, 60 + 10 * full));
        } else {
            sleep_s(between(0, 1.15 * full));
        }
        int held = kill_holding_lock(h, pid);
        sqlite3_close(h);
        CU_ASSERT(integrity_ok(db));
        store_digest(db, now, sizeof now);
        int same = !strcmp(now, before), done = !strcmp(now, after);
        if (!same && !done)
            fprintf(stderr, "\nround %d: before %s\nafter %s\nnow %s\n", r, before, after, now);
        CU_ASSERT(same || done);
        midway += held && same;
        whole += done;
        if (r < aimed && !(held && same))
            continue; /* the import was done before the kill: this round again */
        r++;
    }
    fprintf(stderr, "\n  import: %d kills, %d inside its transaction left nothing, %d the whole import (a run takes"
                    " %.2f s) ",
            rounds, midway, whole, full);
    CU_ASSERT(midway >= aimed);
    /* after a kill inside the import the store takes the import whole */
    copy_store(base, db);
    pid_t pid = spawn_craft(NULL, args);
    sqlite3 *h;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    CU_ASSERT(wait_for_write_lock(h, pid, 60 + 10 * full));
    sleep_s(full / 4);
    kill_holding_lock(h, pid);
    sqlite3_close(h);
    store_digest(db, now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, before);
    run_opts o = {.stderr_path = path_in("imp-again.err")};
    int rc = run_craft(&o, args);
    if (rc) {
        char *msg = slurp(o.stderr_path);
        fprintf(stderr, "\n  the import after a kill: exit %d: %.500s\n", rc, msg);
        free(msg);
    }
    CU_ASSERT_EQUAL(rc, 0);
    store_digest(db, now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, after);
}

/* ----------------------------------------------------------------- score */

/* A count over db with the uninterrupted run's store attached as `ref`. */
static long long count_vs_ref(const char *db, const char *ref, const char *sql)
{
    sqlite3 *h;
    long long n = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(h, 10000);
    char *attach = sqlite3_mprintf("ATTACH %Q AS ref", ref);
    sqlite3_stmt *st;
    if (sqlite3_exec(h, attach, NULL, NULL, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_free(attach);
    sqlite3_close(h);
    return n;
}

/* What a scoring run promises at any moment: each scored order has every subset,
 * its class scores and its explanation, and the case it must have (as in the
 * uninterrupted run), and scores equal to that run's. */
static void check_scored_consistently(const char *db, const char *ref, long long subsets, long long classes)
{
    long long scored = sql_int(db, "SELECT count(*) FROM predictions WHERE off = 0");
    CU_ASSERT(scored >= 0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions"), scored * subsets);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM class_scores"), scored * classes);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM explanations"), scored);
    /* cases: exactly the scored orders that the whole run flags, each with its audit row */
    CU_ASSERT_EQUAL(count_vs_ref(db, ref,
                                 "SELECT count(*) FROM predictions p WHERE p.off = 0 AND"
                                 " EXISTS (SELECT 1 FROM cases c WHERE c.order_id = p.order_id) !="
                                 " EXISTS (SELECT 1 FROM ref.cases c WHERE c.order_id = p.order_id)"),
                    0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM cases c WHERE NOT EXISTS (SELECT 1 FROM predictions p"
                                " WHERE p.order_id = c.order_id AND p.off = 0)"),
                    0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM cases c WHERE NOT EXISTS (SELECT 1 FROM audit a"
                                " WHERE a.case_id = c.id)"),
                    0);
    CU_ASSERT_EQUAL(count_vs_ref(db, ref,
                                 "SELECT count(*) FROM predictions p JOIN ref.predictions r USING (order_id, off)"
                                 " WHERE abs(p.top_score - r.top_score) > 1e-5 OR p.top_class != r.top_class"),
                    0);
}

/* The store holds the scores of an earlier run (1000 orders) and 500 orders more;
 * a new run (all 1500) is killed at random moments. A scoring run is all or
 * nothing: after each kill the score tables are byte-for-byte the old ones, or
 * wholly the new run's (every order, every subset, its cases) - never a mix of
 * runs or a part of one. */
static void test_killed_score(void)
{
    const char *base = path_in("sc-base.db"), *db = path_in("sc.db"), *ref = path_in("sc-ref.db"),
               *orders = path_in("sc.jsonl"), *more = path_in("sc-more.jsonl"),
               *model = fixture("tiny-multilabel.safetensors");
    CU_ASSERT_EQUAL_FATAL(write_orders(orders, 0, 1000), 0);
    CU_ASSERT_EQUAL_FATAL(write_orders(more, 1000, 500), 0);
    const char *imp[] = {"import", "--db", base, orders, NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, imp), 0);
    const char *old_args[] = {"score", "--db", base, "--model", model, "--threads", "1", "--batch", "32",
                              "--threshold", "0.4", NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, old_args), 0);
    const char *imp_more[] = {"import", "--db", base, more, NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, imp_more), 0);
    char old_scores[65], now_scores[65];
    score_tables_hash(base, old_scores);
    CU_ASSERT_FATAL(old_scores[0] != 0);
    long long old_cases = sql_int(base, "SELECT count(*) FROM cases");
    CU_ASSERT_EQUAL_FATAL(sql_int(base, "SELECT count(*) FROM predictions WHERE off = 0"), 1000);
    /* the uninterrupted run: its time and its result */
    copy_store(base, ref);
    const char *ref_args[] = {"score", "--db", ref, "--model", model, "--threads", "1", "--batch", "32",
                              "--threshold", "0.4", NULL};
    double t0 = now_s();
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, ref_args), 0);
    double full = now_s() - t0;
    long long scored = sql_int(ref, "SELECT count(*) FROM predictions WHERE off = 0");
    long long subsets = sql_int(ref, "SELECT count(*) FROM predictions") / (scored > 0 ? scored : 1);
    long long classes = sql_int(ref, "SELECT count(*) FROM class_scores") / (scored > 0 ? scored : 1);
    long long cases = sql_int(ref, "SELECT count(*) FROM cases");
    CU_ASSERT_EQUAL_FATAL(scored, 1500);
    CU_ASSERT(subsets >= 2);
    CU_ASSERT(cases > old_cases && cases < 1500); /* the flag rule must split the orders for the case check to bite */
    /* the new run rescored the first 1000 too: their scores are its own (run 2) */
    CU_ASSERT_EQUAL(sql_int(ref, "SELECT count(DISTINCT run_id) FROM predictions"), 1);
    const char *args[] = {"score", "--db", db, "--model", model, "--threads", "1", "--batch", "32",
                          "--threshold", "0.4", NULL};
    int saw_old = 0, saw_new = 0;
    for (int r = 0; r < rounds; r++) {
        copy_store(base, db);
        pid_t pid = spawn_craft(NULL, args);
        CU_ASSERT_FATAL(pid > 0);
        sleep_s(between(0, 1.1 * full));
        killed_by_sigkill(pid);
        CU_ASSERT(integrity_ok(db));
        score_tables_hash(db, now_scores);
        int old = !strcmp(now_scores, old_scores);
        long long runs = sql_int(db, "SELECT count(DISTINCT run_id) FROM predictions");
        long long n = sql_int(db, "SELECT count(*) FROM predictions WHERE off = 0");
        if (!old) {
            /* then wholly the new run: one run's predictions for every order */
            if (runs != 1 || n != scored)
                fprintf(stderr, "\nround %d: neither the old scores nor the new: %lld orders scored by %lld runs\n",
                        r, n, runs);
            CU_ASSERT_EQUAL(runs, 1);
            CU_ASSERT_EQUAL(n, scored);
            CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions WHERE run_id = 1"), 0);
            check_scored_consistently(db, ref, subsets, classes);
            CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM cases"), cases);
        }
        saw_old += old;
        saw_new += !old;
        /* the orders are untouched, and a second run does the whole job */
        CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 1500);
        CU_ASSERT_EQUAL(run_craft(NULL, args), 0);
        check_scored_consistently(db, ref, subsets, classes);
        CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM predictions WHERE off = 0"), scored);
        CU_ASSERT_EQUAL(sql_int(db, "SELECT count(DISTINCT run_id) FROM predictions"), 1);
        CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM cases"), cases);
    }
    fprintf(stderr, "\n  score: %d kills: %d left the old scores, %d the new run's whole (a run takes %.2f s) ", rounds,
            saw_old, saw_new, full);
}

/* ------------------------------------------------------------ checkpoint */

static void hash_of(const char *path, char out[65])
{
    craft_error err;
    out[0] = 0;
    if (craft_sha256_file(path, out, &err))
        out[0] = 0;
}

/* Temporary files of saves to dir_path/stem (stem.tmp-*) present now. */
static int temporaries(const char *dir_path, const char *stem)
{
    char cmd[1400], out[64];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^%s.tmp-'", dir_path, stem);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fgets(out, sizeof out, p))
            n = atoi(out);
        pclose(p);
    }
    return n;
}

/* What a save leaves behind: a save writes an unnamed O_TMPFILE and names it
 * (stem.tmp-PID-XXXXXX) only for the instant between linkat and rename; a save
 * killed in that window leaves that one file, and the next save removes it (its
 * process is gone). So after any kill at most one temporary file is there (the
 * tiny window), and after one more save none. Where the folder lacks O_TMPFILE the
 * named temporary file is there for the whole write, and the same holds. */
static void check_temporaries_after_kill(const char *stem, int *seen)
{
    int n = temporaries(hd_dir, stem);
    if (n > 1)
        fprintf(stderr, "\n  %d temporary files of %s after a kill\n", n, stem);
    CU_ASSERT(n <= 1);
    *seen += n > 0;
}

/* craft_model_save of two different models, one after the other, to one path. */
static void test_killed_checkpoint_save(void)
{
    craft_model *tiny, *a, *b;
    craft_error err;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&tiny, fixture("tiny-multilabel.safetensors"), &err), CRAFT_OK);
    /* a wider model than the fixture, so a save takes long enough to be hit inside */
    tiny->cfg.d_model = 192;
    tiny->cfg.layers = 3;
    CU_ASSERT_EQUAL_FATAL(craft_model_new(&a, &tiny->cfg, 1, 1, &err), CRAFT_OK);
    CU_ASSERT_EQUAL_FATAL(craft_model_new(&b, &tiny->cfg, 1, 2, &err), CRAFT_OK);
    const char *ckpt = path_in("ckpt.safetensors");
    char ha[65], hb[65], h[65];
    CU_ASSERT_EQUAL_FATAL(craft_model_save(b, ckpt, NULL, &err), CRAFT_OK);
    snprintf(hb, sizeof hb, "%s", b->sha256);
    CU_ASSERT_EQUAL_FATAL(craft_model_save(a, ckpt, NULL, &err), CRAFT_OK);
    snprintf(ha, sizeof ha, "%s", a->sha256);
    CU_ASSERT_STRING_NOT_EQUAL(ha, hb);
    double t0 = now_s();
    for (int i = 0; i < 4; i++)
        craft_model_save(i % 2 ? a : b, ckpt, NULL, &err);
    double one = (now_s() - t0) / 4;
    CU_ASSERT_EQUAL_FATAL(craft_model_save(a, ckpt, NULL, &err), CRAFT_OK);
    int saw_a = 0, saw_b = 0, stale = 0, r;
    /* both outcomes must be seen for the kills to prove anything: on a loaded machine
     * the child can be slow to finish its first save, so rounds go on (up to 4x) until
     * both were seen */
    for (r = 0; r < rounds || ((!saw_a || !saw_b) && r < 4 * rounds); r++) {
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            for (int i = 0;; i++) /* b, a, b, a, ... until killed */
                if (craft_model_save(i % 2 ? a : b, ckpt, NULL, &err))
                    _exit(1);
        }
        sleep_s(between(0, 3 * one));
        CU_ASSERT(killed_by_sigkill(pid));
        craft_model *m = NULL;
        int rc = craft_model_load(&m, ckpt, &err);
        if (rc)
            fprintf(stderr, "\nround %d: %s\n", r, err.msg);
        CU_ASSERT_EQUAL(rc, CRAFT_OK);
        hash_of(ckpt, h);
        CU_ASSERT(!strcmp(h, ha) || !strcmp(h, hb));
        if (m) {
            CU_ASSERT_STRING_EQUAL(m->sha256, h);
            craft_model_free(m);
        }
        saw_a += !strcmp(h, ha);
        saw_b += !strcmp(h, hb);
        check_temporaries_after_kill("ckpt.safetensors", &stale);
    }
    /* the next save removes what killed saves left */
    CU_ASSERT_EQUAL(craft_model_save(a, ckpt, NULL, &err), CRAFT_OK);
    int left = temporaries(hd_dir, "ckpt.safetensors");
    CU_ASSERT_EQUAL(left, 0);
    fprintf(stderr, "\n  checkpoint: %d kills (a save takes %.1f ms): old %d, new %d; a temporary file after %d kills,"
                    " %d after the next save ",
            r, one * 1e3, saw_a, saw_b, stale, left);
    CU_ASSERT(saw_a > 0 && saw_b > 0);
    craft_model_free(a);
    craft_model_free(b);
    craft_model_free(tiny);
}

/* `craft train --output` over an existing checkpoint. */
static void test_killed_train(void)
{
    const char *orders = path_in("tr.jsonl"), *cfg = path_in("tr-config.json"), *ckpt = path_in("tr.safetensors");
    CU_ASSERT_EQUAL_FATAL(write_orders(orders, 0, 600), 0);
    craft_model *m;
    craft_error err;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, fixture("tiny-train-multilabel.safetensors"), &err), CRAFT_OK);
    char *json = craft_config_to_json(&m->cfg);
    craft_model_free(m);
    FILE *f = fopen(cfg, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(json, f);
    fclose(f);
    free(json);
    char old[65], h[65];
    const char *args[] = {"train", "--input", orders, "--config", cfg, "--output", ckpt, "--epochs", "3",
                          "--batch", "64", "--threads", "1", NULL};
    CU_ASSERT_EQUAL_FATAL(copy_file(fixture("tiny-train-multilabel.safetensors"), ckpt), 0);
    double t0 = now_s();
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, args), 0);
    double full = now_s() - t0;
    int saw_old = 0, saw_new = 0, stale = 0, r;
    /* both outcomes must be seen: rounds go on (up to 4x) until they were */
    for (r = 0; r < rounds || ((!saw_old || !saw_new) && r < 4 * rounds); r++) {
        CU_ASSERT_EQUAL_FATAL(copy_file(fixture("tiny-train-multilabel.safetensors"), ckpt), 0);
        hash_of(ckpt, old);
        pid_t pid = spawn_craft(NULL, args);
        sleep_s(between(0, 1.05 * full));
        killed_by_sigkill(pid);
        m = NULL;
        int rc = craft_model_load(&m, ckpt, &err);
        if (rc)
            fprintf(stderr, "\nround %d: %s\n", r, err.msg);
        CU_ASSERT_EQUAL(rc, CRAFT_OK);
        hash_of(ckpt, h);
        if (!strcmp(h, old)) {
            saw_old++;
        } else if (m) {
            /* a new one: whole, and the trainer's (it carries the training record) */
            CU_ASSERT_STRING_EQUAL(m->sha256, h);
            CU_ASSERT_PTR_NOT_NULL(m->metadata_json);
            saw_new++;
        }
        craft_model_free(m);
        check_temporaries_after_kill("tr.safetensors", &stale);
    }
    /* the next save removes what killed saves left */
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, ckpt, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_model_save(m, ckpt, NULL, &err), CRAFT_OK);
    craft_model_free(m);
    int left = temporaries(hd_dir, "tr.safetensors");
    CU_ASSERT_EQUAL(left, 0);
    fprintf(stderr, "\n  train: %d kills (a run takes %.2f s): old %d, new %d; a temporary file after %d kills, %d after"
                    " the next save ",
            r, full, saw_old, saw_new, stale, left);
    CU_ASSERT(saw_old > 0 && saw_new > 0);
}

/* ------------------------------------------------------------- decisions */

static void test_killed_decisions(void)
{
    const char *db = path_in("dec.db"), *orders = path_in("dec.jsonl"), *acks = path_in("dec.acks"),
               *model = fixture("tiny-multilabel.safetensors");
    CU_ASSERT_EQUAL_FATAL(write_orders(orders, 0, 300), 0);
    const char *imp[] = {"import", "--db", db, orders, NULL};
    const char *sc[] = {"score", "--db", db, "--model", model, "--threads", "1", "--threshold", "0.4", NULL};
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, imp), 0);
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, sc), 0);
    char ids[8][64], b[64];
    int n_ids = 0;
    for (; n_ids < 8; n_ids++) {
        char q[200];
        snprintf(q, sizeof q, "SELECT o.order_id FROM cases c JOIN orders o ON o.id = c.order_id ORDER BY c.id LIMIT 1 OFFSET %d",
                 n_ids);
        sql_text(db, q, b, sizeof b);
        if (!b[0] || !strcmp(b, "?"))
            break;
        snprintf(ids[n_ids], sizeof ids[n_ids], "%s", b);
    }
    CU_ASSERT_FATAL(n_ids >= 2);
    /* the shell loop: decide, then acknowledge on stdout, forever */
    char script[4096];
    int k = snprintf(script, sizeof script, "i=0; while :; do for o in");
    for (int i = 0; i < n_ids; i++)
        k += snprintf(script + k, sizeof script - k, " %s", ids[i]);
    snprintf(script + k, sizeof script - k,
             "; do for s in confirmed_defect false_positive escalated in_review; do"
             " '%s' cases decide \"$o\" $s --db '%s' --actor crash --note \"$R-$i\" >/dev/null 2>&1 || exit 3;"
             " echo \"$R-$i\"; i=$((i+1)); done; done; done",
             craft_bin(), db);
    /* how long one decision takes (a sanitizer build is several times slower), to aim
     * the kills over the first dozen calls */
    const char *one[] = {"cases", "decide", ids[0], "in_review", "--db", db, "--actor", "warmup", NULL};
    double t0 = now_s();
    CU_ASSERT_EQUAL_FATAL(run_craft(NULL, one), 0);
    double call = now_s() - t0;
    int lost = 0, unacked = 0, total_acks = 0;
    for (int r = 0; r < rounds; r++) {
        char tag[16];
        snprintf(tag, sizeof tag, "r%d", r);
        setenv("R", tag, 1);
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            setpgid(0, 0);
            int fd = open(acks, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(fd, 1);
            execl("/bin/sh", "sh", "-c", script, (char *)NULL);
            _exit(127);
        }
        setpgid(pid, pid);
        sleep_s(between(0.5 * call, 12 * call));
        kill(-pid, SIGKILL); /* the loop and the craft it runs, mid-call */
        int st;
        waitpid(pid, &st, 0);
        sleep_s(0.01); /* the group's craft, orphaned by the shell's death, is gone too */
        CU_ASSERT(integrity_ok(db));
        /* every acknowledged decision is there, with its note, in order */
        char *text = slurp(acks);
        int acked = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), acked++) {
            char q[300];
            snprintf(q, sizeof q, "SELECT count(*) FROM notes WHERE text = '%s' AND author = 'crash'", line);
            long long n = sql_int(db, q);
            lost += n != 1;
            CU_ASSERT_EQUAL(n, 1);
        }
        free(text);
        total_acks += acked;
        /* at most the one call that was running may have landed without its acknowledgement */
        char q[200];
        snprintf(q, sizeof q, "SELECT count(*) FROM notes WHERE text LIKE '%s-%%'", tag);
        long long notes = sql_int(db, q);
        CU_ASSERT(notes == acked || notes == acked + 1);
        unacked += notes == acked + 1;
        /* each decision came with its status audit row (one transaction) */
        CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM audit WHERE actor = 'crash' AND action = 'status'"),
                        sql_int(db, "SELECT count(*) FROM notes WHERE author = 'crash'"));
    }
    fprintf(stderr, "\n  decisions: %d kills, %d acknowledged decisions, %d lost, %d landed unacknowledged (a call takes %.0f ms) ",
            rounds, total_acks, lost, unacked, call * 1e3);
    CU_ASSERT(total_acks >= rounds);
}

int main(void)
{
    need_craft();
    rounds = env_count("CRAFT_CRASH_ROUNDS", 50);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    if (make_scratch("crash") || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("crash", NULL, NULL);
    if (!s || !CU_add_test(s, "craft import SIGKILLed: all or nothing", test_killed_import) ||
        !CU_add_test(s, "craft score --db SIGKILLed: old scores or new, never a mix", test_killed_score) ||
        !CU_add_test(s, "craft_model_save SIGKILLed: old or new file", test_killed_checkpoint_save) ||
        !CU_add_test(s, "craft train --output SIGKILLed: old or new file", test_killed_train) ||
        !CU_add_test(s, "craft cases decide SIGKILLed: no acknowledged decision lost", test_killed_decisions)) {
        CU_cleanup_registry();
        return 1;
    }
    int rc = run_suite();
    remove_scratch();
    return rc;
}
