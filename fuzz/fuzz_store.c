/* libFuzzer target: the case store's read-back path on tampered rows.
 *
 * A store is made once (the tiny-multilabel fixture's orders imported and scored
 * with its model, so it holds orders, embeddings, predictions, explanations,
 * cases, a decision, a note and audit rows) on /dev/shm when it exists. Each input
 * is a list of tamperings applied to a fresh copy with plain SQL, as someone
 * editing the file would (foreign keys off; CHECK constraints and the audit
 * triggers stay, but a tampering may drop the triggers first): 4-byte records
 * (operation, row, size, seed) whose BLOBs and texts are cut from the rest of the
 * input. Then every reader runs on it: the order detail (cases show), the queue
 * (cases list), the export the trainer reads, the audit chain check, entity
 * history, and scoring the store again. Each must either work or fail with an
 * error; a read past a BLOB, a huge allocation, a hang or a crash is a finding.
 * A reader that succeeds on a store whose BLOB sizes disagree with their rows
 * would be the old silent behaviour: the error path is what the checks exercise. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_internal.h"

static char dir[256], base_db[300], db[300];
static craft_model *model;
static char **order_ids;
static int n_orders;

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char b[65536];
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

static void remove_db(const char *path)
{
    char p[320];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path);
    unlink(p);
}

static void cleanup(void)
{
    remove_db(base_db);
    remove_db(db);
    rmdir(dir);
    craft_model_free(model);
    for (int i = 0; i < n_orders; i++)
        free(order_ids[i]);
    free(order_ids);
}

static void die(const char *what, const craft_error *err)
{
    fprintf(stderr, "fuzz_store: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *fx = getenv("CRAFT_FIXTURES");
    char orders[600], mpath[600];
    snprintf(orders, sizeof orders, "%s/tiny-multilabel.orders.jsonl", fx ? fx : "tests/fixtures");
    snprintf(mpath, sizeof mpath, "%s/tiny-multilabel.safetensors", fx ? fx : "tests/fixtures");
    snprintf(dir, sizeof dir, "%s/craft-fuzz-store-XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    snprintf(base_db, sizeof base_db, "%s/base.db", dir);
    snprintf(db, sizeof db, "%s/store.db", dir);
    atexit(cleanup);
    craft_error err = {0};
    craft_store *s;
    if (craft_store_open(&s, base_db, CRAFT_STORE_CREATE, &err))
        die("creating the store", &err);
    const char *paths[1] = {orders};
    craft_import_options io = {0};
    craft_import_stats ist;
    if (craft_store_import(s, paths, 1, &io, &ist, &err))
        die("importing the fixture orders", &err);
    if (craft_model_load(&model, mpath, &err))
        die("loading the fixture model", &err);
    craft_store_score_options so = {0};
    so.flag_threshold = 0.2f;
    so.explain = 1;
    so.subsets = 1;
    so.perturbation = 1;
    so.threads = 1;
    craft_store_score_stats sst;
    if (craft_store_score(s, model, mpath, &so, &sst, &err))
        die("scoring the store", &err);
    /* a decision and a note, for the audit chain and the labels */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT order_id FROM orders ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        die("listing orders", NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        order_ids = realloc(order_ids, sizeof *order_ids * (size_t)(n_orders + 1));
        order_ids[n_orders++] = store_strdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    craft_case c;
    for (int i = 0; i < n_orders; i++)
        if (craft_store_case_by_order(s, order_ids[i], &c, &err) == CRAFT_OK) {
            craft_store_case_decide(s, c.id, CRAFT_CASE_CONFIRMED, NULL, "fuzz", "a note", &err);
            craft_case_free(&c);
            break;
        }
    craft_store_close(s);
    return 0;
}

/* The SQL of one tampering: op picks what, row which order row (1..), the BLOB or
 * text is n bytes of the input from *at. */
static int tamper(sqlite3 *h, int op, int row, const uint8_t *blob, int n, int64_t num)
{
    static const char *const sql[] = {
        "UPDATE explanations SET tokens = ?3 WHERE order_id = ?1",
        "UPDATE explanations SET importance = ?2 WHERE order_id = ?1",
        "UPDATE explanations SET cmis = ?2 WHERE order_id = ?1",
        "UPDATE explanations SET cond_gate = ?2 WHERE order_id = ?1",
        "UPDATE explanations SET fuse_gate = ?2 WHERE order_id = ?1",
        "UPDATE explanations SET perturb = ?2 WHERE order_id = ?1",
        "UPDATE predictions SET scores = ?2 WHERE order_id = ?1",
        "UPDATE predictions SET top_class = ?3, used = ?3 WHERE order_id = ?1",
        "UPDATE embeddings SET data = ?2 WHERE order_id = ?1",
        "UPDATE embeddings SET tokens = ?3 WHERE order_id = ?1",
        "UPDATE embeddings SET dim = ?3 WHERE order_id = ?1",
        "UPDATE orders SET num = ?2 WHERE id = ?1",
        "UPDATE orders SET cat = CAST(?2 AS TEXT) WHERE id = ?1",
        "UPDATE orders SET ts = CAST(?2 AS TEXT), order_id = order_id || CAST(?2 AS TEXT) WHERE id = ?1",
        "UPDATE cases SET top_class = ?3, model_id = ?3 % 3, priority = ?3 WHERE order_id = ?1",
        "UPDATE cases SET decided_classes = CAST(?2 AS TEXT), assignee = CAST(?2 AS TEXT) WHERE order_id = ?1",
        "UPDATE dataset_features SET type = ?3 WHERE idx = ?1 % 12",
        "UPDATE dataset_features SET name = CAST(?2 AS TEXT) WHERE idx = ?1 % 12",
        "UPDATE models SET config = CAST(?2 AS TEXT)",
        "UPDATE labels SET class = CAST(?2 AS TEXT) WHERE order_id = ?1",
        "UPDATE order_text SET value = CAST(?2 AS TEXT) WHERE order_id = ?1",
        "UPDATE entities SET entity_id = CAST(?2 AS TEXT) WHERE id = ?1",
        "UPDATE scoring_runs SET model_id = ?3",
        "DROP TRIGGER IF EXISTS audit_no_update; UPDATE audit SET actor = CAST(?2 AS TEXT) WHERE id = ?1",
        "DROP TRIGGER IF EXISTS audit_no_update; UPDATE audit SET hash = CAST(?2 AS TEXT) WHERE id = ?1",
        "DROP TRIGGER IF EXISTS audit_no_delete; DELETE FROM audit WHERE id = ?1",
        "INSERT INTO audit(id, case_id, at, actor, action, hash) SELECT max(id) + 1, 1, ?3, 'x', CAST(?2 AS TEXT),"
        " 'h' FROM audit",
        "DELETE FROM explanations WHERE order_id = ?1",
        "DELETE FROM dataset_features WHERE idx = ?1 % 12",
        "DELETE FROM models",
        "UPDATE notes SET text = CAST(?2 AS TEXT)",
        "INSERT OR REPLACE INTO explanations(order_id, model_id, tokens, importance) VALUES(?1, 1, ?3, ?2)",
    };
    const char *q = sql[op % (int)(sizeof sql / sizeof *sql)];
    /* statements with ';' run as two: the DROP first */
    const char *semi = strchr(q, ';');
    if (semi) {
        char first[200];
        snprintf(first, sizeof first, "%.*s", (int)(semi - q), q);
        sqlite3_exec(h, first, NULL, NULL, NULL);
        q = semi + 1;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h, q, -1, &st, NULL) != SQLITE_OK)
        return -1;
    for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        if (!name)
            continue;
        if (!strcmp(name, "?1"))
            sqlite3_bind_int(st, i, row);
        else if (!strcmp(name, "?2"))
            sqlite3_bind_blob(st, i, n ? (const void *)blob : (const void *)"", n, SQLITE_TRANSIENT);
        else if (!strcmp(name, "?3"))
            sqlite3_bind_int64(st, i, num);
    }
    sqlite3_step(st);
    sqlite3_finalize(st);
    return 0;
}

static void read_everything(craft_store *s)
{
    craft_error err = {0};
    /* cases show */
    for (int i = 0; i < n_orders; i++) {
        craft_order_detail d;
        if (craft_store_order_get(s, order_ids[i], 0, &d, &err) == CRAFT_OK) {
            /* what cases show reads of it: every value the detail claims to hold */
            volatile float sum = 0;
            const craft_explanation *e = &d.explanation;
            for (int j = 0; d.has_explanation && j < e->n_tokens; j++) {
                sum += e->importance[j] + (e->token_names[j] ? 1 : 0);
                for (int a = 0; e->cmis && a < e->n_aux; a++)
                    sum += e->cmis[(size_t)a * e->n_tokens + j];
                for (int k = 0; e->perturb && k < e->n_classes; k++)
                    sum += e->perturb[(size_t)k * e->n_tokens + j];
            }
            for (int a = 0; d.has_explanation && a < e->n_aux; a++)
                sum += (e->cond_gate ? e->cond_gate[a] : 0) + (e->fuse_gate ? e->fuse_gate[a] : 0);
            for (int p = 0; p < d.n_predictions; p++)
                for (int k = 0; k < d.n_classes; k++)
                    sum += d.predictions[p].scores[k];
            for (int j = 0; j < d.n_features; j++)
                sum += d.values[j];
            (void)sum;
            if (d.has_case) {
                craft_note *notes = NULL;
                int nn = 0;
                craft_audit_entry *au = NULL;
                int na = 0;
                if (!craft_store_case_notes(s, d.kase.id, &notes, &nn, &err))
                    craft_notes_free(notes, nn);
                if (!craft_store_case_audit(s, d.kase.id, &au, &na, &err))
                    craft_audit_free(au, na);
            }
            craft_order_detail_free(&d);
        }
        craft_entity_history h;
        if (craft_store_entity_history(s, "customer", order_ids[i], 5, &h, &err) == CRAFT_OK)
            craft_entity_history_free(&h);
    }
    /* cases list */
    craft_queue_query q;
    craft_queue_query_init(&q);
    q.cases_only = 0;
    craft_queue_page pg;
    if (craft_store_queue(s, &q, &pg, &err) == CRAFT_OK)
        craft_queue_page_free(&pg);
    craft_queue_counts counts;
    craft_store_queue_counts(s, &q, &counts, &err);
    /* the export the trainer reads */
    FILE *devnull = fopen("/dev/null", "w");
    uint64_t n = 0;
    if (devnull) {
        craft_store_export_jsonl(s, 0, 0, devnull, &n, &err);
        fclose(devnull);
    }
    /* the audit chain */
    int64_t rows, bad;
    char head[65];
    craft_store_audit_verify(s, &rows, &bad, head, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    remove_db(db);
    if (copy_file(base_db, db))
        abort();
    sqlite3 *h;
    if (sqlite3_open(db, &h) != SQLITE_OK)
        abort();
    sqlite3_exec(h, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL);
    /* records of 4 bytes: op, row, size, seed; the BLOBs come from the end */
    size_t nrec = size / 4 > 16 ? 16 : size / 4;
    size_t tail = nrec * 4;
    for (size_t r = 0; r < nrec; r++) {
        const uint8_t *p = data + 4 * r;
        int n = p[2];
        if ((size_t)n > size - tail)
            n = (int)(size - tail);
        int64_t num = (int64_t)(int8_t)p[3] * (p[3] & 1 ? 1 : 16777259); /* small, negative and huge counts */
        tamper(h, p[0], 1 + p[1] % (n_orders + 2), data + tail, n, num);
    }
    sqlite3_close(h);
    craft_error err = {0};
    craft_store *s;
    if (craft_store_open(&s, db, CRAFT_STORE_READONLY, &err) == CRAFT_OK) {
        read_everything(s);
        craft_store_close(s);
    }
    /* scoring it again (the embedding BLOBs, the feature map), writable */
    if (craft_store_open(&s, db, 0, &err) == CRAFT_OK) {
        craft_store_score_options so = {0};
        so.flag_threshold = 0.2f;
        so.explain = 1;
        so.subsets = 1;
        so.threads = 1;
        craft_store_score_stats sst;
        craft_store_score(s, model, NULL, &so, &sst, &err);
        read_everything(s);
        craft_store_close(s);
    }
    return 0;
}
