/* test_import: the importer's own parser and pipeline. Every kind of malformed
 * JSON line is a bad row with its line number and a reason; thousands of random
 * mutations of a valid order are checked against cJSON (whatever cJSON cannot
 * parse must be rejected, and what is stored must decode as cJSON decodes it);
 * the batched reader/writer hand-off (cancel, lines larger than a slot keeps,
 * a file that is not a multiple of a batch); and `craft import` killed with
 * SIGKILL at random moments leaves every table exactly as it was. */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
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

static char dir[256];

static const char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* What the import leaves besides rows: no dangling reference (it runs with the
 * foreign key checks off), and the graph's by-entity index (which a big import
 * drops and builds again) in place. */
static void check_references_and_index(const char *db)
{
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'order_entities_entity'"
                              " AND sql LIKE '%order_entities(entity, order_id)%'"),
                    1);
}

/* Every rejected row: its line and reason (lines up to MAX_LINES). */
#define MAX_LINES 8192
typedef struct {
    int n;
    char *reason[MAX_LINES + 1];
} rejects;

static void collect(void *user, const char *file, size_t line, const char *reason, const char *row, size_t len)
{
    (void)file;
    (void)row;
    (void)len;
    rejects *r = user;
    r->n++;
    if (line <= MAX_LINES && !r->reason[line]) {
        r->reason[line] = malloc(strlen(reason) + 1);
        if (r->reason[line])
            strcpy(r->reason[line], reason);
    }
}

static void rejects_free(rejects *r)
{
    for (int i = 0; i <= MAX_LINES; i++)
        free(r->reason[i]);
    memset(r, 0, sizeof *r);
}

static int import_one(const char *db, const char *file, int skip_bad, rejects *r, craft_import_stats *st)
{
    craft_store *s;
    craft_error err = {0};
    if (craft_store_open(&s, db, CRAFT_STORE_CREATE, &err))
        return -1;
    craft_import_options o = {.skip_bad = skip_bad, .on_reject = collect, .reject_user = r};
    const char *paths[1] = {file};
    int rc = craft_store_import(s, paths, 1, &o, st, &err);
    craft_store_close(s);
    return rc;
}

/* ------------------------------------------------- every malformed kind */

typedef struct {
    const char *line;
    const char *reason;   /* a part of the expected reason */
} bad_case;

static const bad_case bad_cases[] = {
    {"not json at all", "must be a JSON object"},
    {"[1, 2, 3]", "must be a JSON object"},
    {"\"a string\"", "must be a JSON object"},
    {"{\"order_id\": \"X\"", "not valid JSON"},
    {"{\"order_id\": \"X\"} trailing", "text after the order"},
    {"{\"order_id\": \"X\"}}", "text after the order"},
    {"{\"order_id\" \"X\"}", "':' expected"},
    {"{\"order_id\": \"X\",}", "a string expected"},
    {"{order_id: \"X\"}", "a string expected"},
    {"{'order_id': 'X'}", "a string expected"},
    {"{\"order_id\": \"X\" \"ts\": null}", "',' expected"},
    {"{\"ts\": \"2026-01-01\"}", "\"order_id\" is missing"},
    {"{\"order_id\": \"\"}", "\"order_id\" is missing or empty"},
    {"{\"order_id\": 17}", "\"order_id\" must be a string"},
    {"{\"order_id\": \"X\", \"order_id\": \"Y\"}", "appears twice"},
    {"{\"order_id\": \"X\", \"ts\": \"yesterday\"}", "not an ISO 8601"},
    {"{\"order_id\": \"X\", \"ts\": 20260101}", "\"ts\" must be a string"},
    {"{\"order_id\": \"X\", \"features\": [1, 2]}", "\"features\" must be an object"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": [1]}}", "feature \"f\" must be a number, a string or null"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": {\"a\": 1}}}", "feature \"f\" must be"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": true}}", "feature \"f\" must be"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": 1, \"f\": 2}}", "feature \"f\" appears twice"},
    {"{\"order_id\": \"X\", \"features\": {\"num\": \"text\"}}", "numeric in this dataset"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": 1e39}}", "not a finite float32"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": 1e400}}", "not a finite float32"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": NaN}}", "feature \"f\" must be"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": -}}", "malformed number"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": 1.}}", "malformed number"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": 1e}}", "malformed number"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": 01}}", "not valid JSON"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": .5}}", "feature \"f\" must be"},
    {"{\"order_id\": \"X\", \"features\": {\"f\": +1}}", "feature \"f\" must be"},
    {"{\"order_id\": \"X\\q\"}", "bad escape"},
    {"{\"order_id\": \"X\\u12\"}", "bad \\u escape"},
    {"{\"order_id\": \"X\\ud800\"}", "unpaired surrogate"},
    {"{\"order_id\": \"X\\udc00\"}", "unpaired surrogate"},
    {"{\"order_id\": \"X\\u0000\"}", "NUL character"},
    {"{\"order_id\": \"X\ty\"}", "control character"},
    {"{\"order_id\": \"X\xff\"}", "not valid UTF-8"},
    {"{\"order_id\": \"X\xc3\"}", "not valid UTF-8"},
    {"{\"order_id\": \"X\xed\xa0\x80\"}", "not valid UTF-8"},   /* a surrogate in UTF-8 */
    {"{\"order_id\": \"X\xc0\xaf\"}", "not valid UTF-8"},       /* an overlong encoding */
    {"{\"order_id\": \"X\", \"text\": {\"journey\": 5}}", "\"text.journey\" must be a string"},
    {"{\"order_id\": \"X\", \"text\": {\"a\": \"1\", \"a\": \"2\"}}", "the key \"a\" twice"},
    {"{\"order_id\": \"X\", \"entities\": {\"seller\": [\"S\"]}}", "\"entities.seller\" must be a string"},
    {"{\"order_id\": \"X\", \"labels\": {\"D1\": 2}}", "label \"D1\" must be 0 or 1"},
    {"{\"order_id\": \"X\", \"labels\": {\"D1\": \"yes\"}}", "label \"D1\" must be 0 or 1"},
    {"{\"order_id\": \"X\", \"labels\": {\"D1\": 1, \"D1\": 0}}", "label \"D1\" appears twice"},
    {"{\"order_id\": \"X\", \"label\": \"D1\", \"labels\": {\"D1\": 1}}", "label \"D1\" appears twice"},
    {"{\"order_id\": \"X\", \"embeddings\": {\"txt\": []}}", "embedding \"txt\" is empty"},
    {"{\"order_id\": \"X\", \"embeddings\": {\"txt\": 3}}", "must be a non-empty array"},
    {"{\"order_id\": \"X\", \"embeddings\": {\"txt\": [1, \"a\"]}}", "element 1 is not a number"},
    {"{\"order_id\": \"X\", \"embeddings\": {\"txt\": [[1, 2], [3]]}}", "token 1 is 1 wide"},
    {"{\"order_id\": \"X\", \"embeddings\": {\"txt\": [[1], 2]}}", "token 1 is not an array"},
    {"{\"order_id\": \"X\", \"embeddings\": {\"txt\": [1e39]}}", "not a finite float32"},
    {"{\"order_id\": \"X\", \"embeddings\": {\"txt\": [1], \"txt\": [2]}}", "embedding \"txt\" appears twice"},
    {"{\"order_id\": \"X\", \"extra\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
     "nested deeper"},
    {"{\"order_id\": \"X\", \"extra\": [1 2]}", "']' or ',' expected"},
    {"{\"order_id\": \"X\", \"extra\": tru}", "\"true\" expected"},
};

static void test_every_malformed_kind_is_a_bad_row(void)
{
    const char *db = path_in("kinds.db"), *file = path_in("kinds.jsonl");
    remove_store(db);
    int n = (int)(sizeof bad_cases / sizeof *bad_cases);
    FILE *f = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    /* line 1 makes "num" numeric; lines 2.. are the bad ones; then a blank line, a
     * CRLF line and a good last line */
    fputs("{\"order_id\": \"G-1\", \"features\": {\"num\": 1.5}}\n", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n", bad_cases[i].line);
    fputs("   \n{\"order_id\": \"G-2\", \"ts\": \"2026-01-02T03:04:05Z\"}\r\n{\"order_id\": \"G-3\"}\n", f);
    fclose(f);
    rejects r = {0};
    craft_import_stats st;
    /* all-or-nothing: every bad row listed, nothing stored */
    CU_ASSERT_EQUAL(import_one(db, file, 0, &r, &st), CRAFT_EINPUT);
    CU_ASSERT_EQUAL(r.n, n);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 0);
    for (int i = 0; i < n; i++) {
        const char *got = r.reason[i + 2];
        int ok = got && strstr(got, bad_cases[i].reason);
        if (!ok)
            fprintf(stderr, "\nline %d %s: expected \"%s\", got \"%s\"\n", i + 2, bad_cases[i].line,
                    bad_cases[i].reason, got ? got : "(accepted)");
        CU_ASSERT(ok);
    }
    rejects_free(&r);
    /* skip-bad: exactly the three good orders */
    CU_ASSERT_EQUAL(import_one(db, file, 1, &r, &st), CRAFT_OK);
    CU_ASSERT_EQUAL(st.stored, 3);
    CU_ASSERT_EQUAL(st.bad, (uint64_t)n);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 3);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders WHERE order_id = 'G-2' AND ts = '2026-01-02T03:04:05Z'"), 1);
    rejects_free(&r);
}

/* The same for CSV: each bad record is named by the line it starts on. */
static void test_every_malformed_csv_kind_is_a_bad_row(void)
{
    const char *db = path_in("csvkinds.db"), *file = path_in("kinds.csv");
    remove_store(db);
    static const bad_case csv_cases[] = {
        {"B1,2,x,0,1", "5 fields, the header has 4"},
        {"B2,2", "2 fields, the header has 4"},
        {"B3,abc,x,0", "numeric in this dataset"},
        {"B4,1e39,x,0", "not a finite float32"},
        {"B5,2,x,yes", "label \"D1\" must be 0, 1 or empty"},
        {"B6,2,\"x\"y,0", "text after a closing quote"},
        {"B7,2,x\"y,0", "a quote inside an unquoted field"},
        {"B8,2,caf\xe9,0", "not valid UTF-8"},
        {",2,x,0", "\"order_id\" is missing or empty"},
        {"B10,2,x,0", "duplicate order_id"},
        {"B11,2,x\x01,0", NULL}, /* a control byte in CSV text is kept, not refused */
        {"B12,2,\"never closed,0", "not closed before the end of the file"},
    };
    int n = (int)(sizeof csv_cases / sizeof *csv_cases);
    FILE *f = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("order_id,amount,text:note,label:D1\nB10,1.5,\"multi\nline\",1\n", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n", csv_cases[i].line);
    fclose(f);
    /* and one with a NUL byte inside a field, written by hand */
    const char *nul = path_in("nul.csv");
    f = fopen(nul, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static const char nul_rows[] = "order_id,text:t\nN1,a\0b\nN2,ok\n";
    fwrite(nul_rows, 1, sizeof nul_rows - 1, f);
    fclose(f);
    rejects r = {0};
    craft_import_stats st;
    CU_ASSERT_EQUAL(import_one(db, file, 1, &r, &st), CRAFT_OK);
    CU_ASSERT_EQUAL(st.stored, 2); /* B10 (two lines) and B11 */
    for (int i = 0; i < n; i++) {
        const char *got = r.reason[i + 4]; /* the header, then B10 on lines 2-3 */
        int ok = csv_cases[i].reason ? got && strstr(got, csv_cases[i].reason) : !got;
        if (!ok)
            fprintf(stderr, "\nline %d %s: expected \"%s\", got \"%s\"\n", i + 4, csv_cases[i].line,
                    csv_cases[i].reason ? csv_cases[i].reason : "(accepted)", got ? got : "(accepted)");
        CU_ASSERT(ok);
    }
    rejects_free(&r);
    CU_ASSERT_EQUAL(import_one(db, nul, 1, &r, &st), CRAFT_OK);
    CU_ASSERT_EQUAL(st.stored, 1);
    CU_ASSERT_EQUAL(st.bad, 1);
    CU_ASSERT_PTR_NOT_NULL(r.reason[2] && strstr(r.reason[2], "holds a NUL byte"));
    rejects_free(&r);
}

/* ---------------------------------------------- random mutations vs cJSON */

static uint64_t rng_state;
static unsigned rnd(unsigned n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((rng_state >> 33) % n);
}

static const char base_order[] =
    "{\"order_id\": \"M%05d\", \"ts\": \"2026-02-03T04:05:06Z\", \"features\": {\"amount\": 12.5, "
    "\"weight\": -0.25e1, \"count\": 3, \"method\": \"air\", \"missing\": null, \"code\": \"\\u00e9t\\u00e9\"}, "
    "\"text\": {\"journey\": \"SCAN \\\"hub\\\" \\\\ t+1h\\nok \\ud83d\\ude00\", \"history\": \"caf\xc3\xa9 x1\"}, "
    "\"entities\": {\"seller\": \"S-1\", \"carrier\": \"C/2\"}, \"labels\": {\"D1\": 1, \"D2\": 0, \"D3\": null}, "
    "\"embeddings\": {\"txt\": [[0.5, 1], [2, -3.5e-1]]}, \"extra\": {\"k\": [true, false, null, {\"z\": []}]}}";

/* One random edit of line (n bytes, NUL-terminated in a buffer of cap bytes). */
static size_t mutate(char *line, size_t n, size_t cap)
{
    static const char pool[] = "{}[]\":,\\ 0123456789eE.-+tfnulrx\xc3\xa9\xff\x01\x1f";
    unsigned op = rnd(5);
    size_t at = rnd((unsigned)n + 1);
    char c = pool[rnd(sizeof pool - 1)];
    if (op == 0 && n > 0 && at < n) { /* delete */
        memmove(line + at, line + at + 1, n - at);
        n--;
    } else if (op == 1 && n + 2 < cap) { /* insert */
        memmove(line + at + 1, line + at, n - at + 1);
        line[at] = c;
        n++;
    } else if (op == 2 && at < n) { /* replace */
        line[at] = c;
    } else if (op == 3) { /* truncate */
        n = at;
        line[n] = 0;
    } else if (n > 8) { /* swap two bytes */
        size_t b = rnd((unsigned)n);
        if (at < n) {
            char t = line[at];
            line[at] = line[b];
            line[b] = t;
        }
    }
    line[n] = 0;
    return n;
}

static const char *json_str(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        x = cJSON_IsObject(x) ? cJSON_GetObjectItemCaseSensitive(x, b) : NULL;
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static char *stored_text(sqlite3 *h, const char *sql, const char *id)
{
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            v = malloc(strlen(t) + 1);
            if (v)
                strcpy(v, t);
        }
    }
    sqlite3_finalize(st);
    return v;
}

static void test_mutations_against_cjson(void)
{
    enum { N = 4000 };
    const char *db = path_in("mut.db"), *file = path_in("mut.jsonl");
    remove_store(db);
    FILE *f = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char lines[N][1024];
    static int cjson_ok[N];
    rng_state = 20260323u;
    int n_invalid = 0;
    for (int i = 0; i < N; i++) {
        char *l = lines[i];
        size_t n = (size_t)snprintf(l, sizeof lines[i], base_order, i);
        int edits = 1 + (int)rnd(3);
        for (int e = 0; e < edits; e++)
            n = mutate(l, n, sizeof lines[i]);
        /* a newline, CR or NUL would change what a line is; keep them out */
        for (size_t k = 0; k < n; k++)
            if (l[k] == '\n' || l[k] == '\r')
                l[k] = ' ';
        n = strlen(l);
        const char *end = NULL;
        /* the length includes the NUL: cJSON wants to see it after the value */
        cJSON *j = cJSON_ParseWithLengthOpts(l, n + 1, &end, 1);
        cjson_ok[i] = j != NULL;
        n_invalid += !j;
        cJSON_Delete(j);
        fprintf(f, "%s\n", n ? l : "{}");   /* an empty line would be a blank line, which is allowed */
        if (!n)
            snprintf(l, sizeof lines[i], "{}"), cjson_ok[i] = 1;
    }
    fclose(f);
    CU_ASSERT(n_invalid > N / 4); /* the mutations do break the JSON often */
    rejects r = {0};
    craft_import_stats st;
    CU_ASSERT_EQUAL(import_one(db, file, 1, &r, &st), CRAFT_OK);
    CU_ASSERT_EQUAL(st.stored + st.bad, (uint64_t)N);
    int missed = 0, mismatched = 0;
    sqlite3 *h;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (int i = 0; i < N; i++) {
        int line = i + 1;
        if (!cjson_ok[i]) {
            /* invalid JSON must never be stored */
            if (!r.reason[line]) {
                if (missed++ < 5)
                    fprintf(stderr, "\naccepted invalid JSON on line %d: %s\n", line, lines[i]);
            }
            continue;
        }
        if (r.reason[line])
            continue; /* valid JSON, refused for its content: fine */
        /* stored: every string decodes as cJSON decodes it */
        cJSON *j = cJSON_Parse(lines[i]);
        const char *id = json_str(j, "order_id", NULL);
        const char *journey = json_str(j, "text", "journey");
        const char *seller = json_str(j, "entities", "seller");
        char *got_id = id ? stored_text(h, "SELECT order_id FROM orders WHERE order_id = ?", id) : NULL;
        char *got_journey = id ? stored_text(h, "SELECT t.value FROM order_text t JOIN orders o ON o.id = t.order_id"
                                                " WHERE o.order_id = ? AND t.field = 'journey'", id)
                               : NULL;
        char *got_seller = id ? stored_text(h, "SELECT e.entity_id FROM entities e JOIN order_entities oe ON"
                                               " oe.entity = e.id JOIN orders o ON o.id = oe.order_id"
                                               " WHERE o.order_id = ? AND e.type = 'seller'", id)
                              : NULL;
        int ok = id && got_id && !strcmp(id, got_id) && (!journey || (got_journey && !strcmp(journey, got_journey))) &&
                 (!seller || (got_seller && !strcmp(seller, got_seller)));
        if (!ok && mismatched++ < 5)
            fprintf(stderr, "\nline %d stored differently from cJSON's reading: %s\n", line, lines[i]);
        free(got_id);
        free(got_journey);
        free(got_seller);
        cJSON_Delete(j);
    }
    sqlite3_close(h);
    check_references_and_index(db);
    CU_ASSERT_EQUAL(missed, 0);
    CU_ASSERT_EQUAL(mismatched, 0);
    /* the reasons name what is wrong; a JSON syntax error says where */
    int with_column = 0, syntax = 0;
    for (int line = 1; line <= N; line++)
        if (r.reason[line]) {
            CU_ASSERT(strlen(r.reason[line]) > 10);
            if (strstr(r.reason[line], "not valid JSON")) {
                syntax++;
                with_column += strstr(r.reason[line], " at column ") != NULL;
            }
        }
    CU_ASSERT(syntax > 0);
    CU_ASSERT_EQUAL(with_column, syntax);
    rejects_free(&r);
}

/* ------------------------------------------------- the batched hand-off */

static void write_simple(const char *path, int first, int n, const char *big_text_every)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "{\"order_id\": \"H-%06d\", \"features\": {\"a\": %d, \"b\": \"k%d\"}, \"text\": {\"t\": \"", first + i,
                i, i % 3);
        if (big_text_every && i % 97 == 5) /* a line larger than a slot keeps its buffer */
            for (int k = 0; k < (3 << 20) / 8; k++)
                fputs(big_text_every, f);
        else
            fputs("short", f);
        fprintf(f, "\"}, \"labels\": {\"D1\": %d}}\n", i % 2);
    }
    fclose(f);
}

static void test_batched_handoff(void)
{
    const char *db = path_in("batch.db"), *file = path_in("batch.jsonl");
    remove_store(db);
    /* 1,003 orders: not a multiple of a batch, several turns of the ring, and a few
     * 3 MB lines among them */
    write_simple(file, 0, 1003, "abcdefgh");
    rejects r = {0};
    craft_import_stats st;
    CU_ASSERT_EQUAL(import_one(db, file, 0, &r, &st), CRAFT_OK);
    CU_ASSERT_EQUAL(st.stored, 1003);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 1003);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM labels"), 1003);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM order_text WHERE length(value) = 3145728"), 11);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM order_text WHERE value = 'short'"), 1003 - 11);
    /* file order is kept: row ids follow the lines */
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders WHERE id = 1 + CAST(substr(order_id, 3) AS INTEGER)"), 1003);
    check_references_and_index(db);
    rejects_free(&r);

    /* cancelled before the first order: the reader stops on a full ring, nothing is stored */
    const char *more = path_in("batch2.jsonl");
    write_simple(more, 5000, 3000, NULL);
    craft_store *s;
    craft_error err = {0};
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, 0, &err), CRAFT_OK);
    volatile int cancel = 1;
    craft_import_options o = {.cancel = &cancel};
    const char *paths[2] = {more, file};
    CU_ASSERT_EQUAL(craft_store_import(s, paths, 2, &o, &st, &err), CRAFT_ECANCELLED);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 1003);
    check_references_and_index(db);
    /* a duplicate late in the second file of two: nothing of either file is stored */
    cancel = 0;
    CU_ASSERT_EQUAL(craft_store_import(s, paths, 2, &o, &st, &err), CRAFT_EINPUT);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 1003);
    const char *one[1] = {more};
    CU_ASSERT_EQUAL(craft_store_import(s, one, 1, &o, &st, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(st.stored, 3000);
    /* --replace over them: the old rows go, the references stay whole */
    o.replace = 1;
    CU_ASSERT_EQUAL(craft_store_import(s, one, 1, &o, &st, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(st.replaced, 3000);
    craft_store_close(s);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 4003);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM labels"), 4003);
    check_references_and_index(db);
    /* the foreign keys are on again for the connection's other work */
    CU_ASSERT_EQUAL_FATAL(craft_store_open(&s, db, 0, &err), CRAFT_OK);
    CU_ASSERT_EQUAL(craft_store_import(s, one, 1, &o, &st, &err), CRAFT_OK);
    craft_store_close(s);
}

/* ------------------------------------------ craft import killed by SIGKILL */

/* A digest of everything an import touches: every table's rows and bytes. */
static void digest(const char *db, char *out, size_t cap)
{
    static const char *const sql =
        "SELECT (SELECT count(*) || '/' || coalesce(sum(length(num)), 0) || '/' || coalesce(sum(length(cat)), 0)"
        "        || '/' || coalesce(max(id), 0) FROM orders) || ' ' ||"
        "       (SELECT count(*) || '/' || coalesce(sum(length(value)), 0) FROM order_text) || ' ' ||"
        "       (SELECT count(*) || '/' || coalesce(max(id), 0) FROM entities) || ' ' ||"
        "       (SELECT count(*) FROM order_entities) || ' ' ||"
        "       (SELECT count(*) || '/' || coalesce(sum(value), 0) FROM labels) || ' ' ||"
        "       (SELECT count(*) FROM dataset_features) || ' ' || (SELECT count(*) FROM datasets) || ' ' ||"
        "       (SELECT group_concat(name) FROM (SELECT name FROM sqlite_master ORDER BY name))";
    snprintf(out, cap, "?");
    sqlite3 *h;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(h, 5000);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
}

static void write_wide(const char *path, int first, int n)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "{\"order_id\": \"K-%07d\", \"ts\": \"2026-04-01T00:00:00Z\", \"features\": {", first + i);
        for (int j = 0; j < 300; j++)
            if (j % 10 == 0)
                fprintf(f, "%s\"c%03d\": \"v%d\"", j ? ", " : "", j, (i + j) % 7);
            else
                fprintf(f, "%s\"f%03d\": %.3f", j ? ", " : "", j, (i * 31 + j) % 1000 / 10.0);
        /* new entities too, so a killed import must also take them back */
        fprintf(f, "}, \"text\": {\"journey\": \"SCAN %d\"}, \"entities\": {\"customer\": \"U-%d\", \"seller\": \"S-%d\"},"
                   " \"labels\": {\"D1\": %d}}\n",
                i, first + i, i % 40, i % 9 == 0);
    }
    fclose(f);
}

/* The craft binary of this build ($CRAFT_BUILD/app/cli/craft) in buf: 1, or 0 (and a
 * note that the test is skipped) when there is none. */
static int craft_binary(char *buf, size_t cap)
{
    const char *build = getenv("CRAFT_BUILD");
    snprintf(buf, cap, "%s/app/cli/craft", build ? build : "");
    if (!build || access(buf, X_OK)) {
        fprintf(stderr, "(no craft binary: CRAFT_BUILD unset) ");
        return 0;
    }
    return 1;
}

static void test_killed_cli_import(void)
{
    char craft[600];
    if (!craft_binary(craft, sizeof craft))
        return;
    const char *db = path_in("killcli.db"), *seed = path_in("kseed.jsonl"), *big = path_in("kbig.jsonl");
    remove_store(db);
    write_wide(seed, 0, 200);
    write_wide(big, 100000, 8000);
    rejects r = {0};
    craft_import_stats st;
    CU_ASSERT_EQUAL_FATAL(import_one(db, seed, 0, &r, &st), CRAFT_OK);
    char before[512], now[512];
    digest(db, before, sizeof before);
    /* the whole command on a store seeded the same way: how long it takes (to aim the
     * kills inside it) and what it leaves */
    struct timespec a, b;
    const char *probe = path_in("kprobe.db");
    remove_store(probe);
    CU_ASSERT_EQUAL_FATAL(import_one(probe, seed, 0, &r, &st), CRAFT_OK);
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        execl(craft, craft, "import", "--db", probe, big, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char after[512];
    digest(probe, after, sizeof after);
    remove_store(probe);
    double full = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    /* Rounds 0-2 stop the import the moment its transaction has begun (its write
     * lock seen) and kill it; rounds 3-6 a random time into it; both check, with
     * the import stopped, that it still holds the lock, so a kill counted as
     * midway provably landed inside the import. Rounds 7-9 kill at a random time
     * from the middle to past the end (the commit, the checkpoint, or done). A
     * first-kind round that finds the import already done (a very slow test
     * process) is run again, up to 20 times. */
    int killed_midway = 0, completed = 0, attempts = 0;
    for (int round = 0; round < 10 && attempts < 30; attempts++) {
        sqlite3 *h;
        CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            freopen("/dev/null", "w", stderr);
            execl(craft, craft, "import", "--db", db, big, (char *)NULL);
            _exit(127);
        }
        int midway = 0;
        double at = 0;
        if (round < 7) {
            CU_ASSERT(wait_for_write_lock(h, pid, 60 + 10 * full));
            if (round >= 3)
                at = full * (0.5 * rand() / RAND_MAX);
        } else {
            at = full * (0.5 + 0.7 * rand() / RAND_MAX);
        }
        struct timespec ts = {(time_t)at, (long)((at - (time_t)at) * 1e9)};
        nanosleep(&ts, NULL);
        int held = kill_holding_lock(h, pid);
        sqlite3_close(h);
        CU_ASSERT(integrity_ok(db));
        digest(db, now, sizeof now);
        /* exactly before, or (it had committed) exactly after: nothing in between */
        int same = !strcmp(now, before), done = !strcmp(now, after);
        if (!same && !done)
            fprintf(stderr, "\nround %d: before %s, after a kill %s\n", round, before, now);
        CU_ASSERT(same || done);
        midway = held && same;
        killed_midway += midway;
        if (getenv("IMPORT_TEST_VERBOSE"))
            fprintf(stderr, "\nround %d at %.2f of %.2f s: %s, %s\n", round, at, full,
                    held ? "killed in its transaction" : "killed", same ? "before" : "after");
        if (done && !same) {
            completed++;
            /* back to the before-state for the next round */
            CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
            sqlite3_exec(h, "PRAGMA foreign_keys = ON; BEGIN; DELETE FROM orders WHERE order_id >= 'K-0100000';"
                            "DELETE FROM entities WHERE id NOT IN (SELECT entity FROM order_entities); COMMIT",
                         NULL, NULL, NULL);
            sqlite3_close(h);
            digest(db, now, sizeof now);
            CU_ASSERT_STRING_EQUAL(now, before);
        }
        if (round < 3 && !midway)
            continue; /* the import was already done: this round again */
        round++;
    }
    CU_ASSERT(killed_midway >= 3);
    /* the store still takes the import whole afterwards */
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        execl(craft, craft, "import", "--db", db, big, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 8200);
    digest(db, now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, after);
    CU_ASSERT(integrity_ok(db));
    check_references_and_index(db);
    (void)completed;
}

/* craft import --skip-bad: the rejects file is JSON Lines (valid UTF-8 even when the
 * row was not), one per bad row, with file, line, reason and the row. */
static void test_cli_rejects_file(void)
{
    char craft[600];
    if (!craft_binary(craft, sizeof craft))
        return;
    const char *db = path_in("rej.db"), *file = path_in("rej.jsonl"), *out = path_in("rej.out");
    remove_store(db);
    FILE *f = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("{\"order_id\": \"R1\"}\n{\"order_id\": \"R\xff\\u00e9\"}\n{\"order_id\": \"R3\", \"x\": }\n{\"order_id\": \"R4\"}\n", f);
    fclose(f);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        execl(craft, craft, "import", "--db", db, "--skip-bad", out, file, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(sql_int(db, "SELECT count(*) FROM orders"), 2);
    f = fopen(out, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        CU_ASSERT_PTR_NOT_NULL(j);
        const cJSON *ln = cJSON_GetObjectItemCaseSensitive(j, "line");
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
        const cJSON *row = cJSON_GetObjectItemCaseSensitive(j, "row");
        CU_ASSERT(cJSON_IsNumber(ln) && cJSON_IsString(reason) && cJSON_IsString(row));
        if (cJSON_IsNumber(ln) && cJSON_IsString(row) && cJSON_IsString(reason)) {
            CU_ASSERT(ln->valueint == 2 || ln->valueint == 3);
            if (ln->valueint == 2) {
                CU_ASSERT_PTR_NOT_NULL(strstr(reason->valuestring, "UTF-8"));
                CU_ASSERT_PTR_NOT_NULL(strstr(row->valuestring, "R\xef\xbf\xbd\\u00e9"));
            } else {
                CU_ASSERT_PTR_NOT_NULL(strstr(reason->valuestring, "a value expected) at column 25"));
            }
        }
        cJSON_Delete(j);
        n++;
    }
    fclose(f);
    CU_ASSERT_EQUAL(n, 2);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/craft-import-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("import", NULL, NULL);
    if (!s || !CU_add_test(s, "every malformed kind is a bad row", test_every_malformed_kind_is_a_bad_row) ||
        !CU_add_test(s, "every malformed CSV kind is a bad row", test_every_malformed_csv_kind_is_a_bad_row) ||
        !CU_add_test(s, "random mutations against cJSON", test_mutations_against_cjson) ||
        !CU_add_test(s, "batched hand-off: big lines, cancel, two files", test_batched_handoff) ||
        !CU_add_test(s, "craft import killed at random moments", test_killed_cli_import) ||
        !CU_add_test(s, "craft import --skip-bad rejects file", test_cli_rejects_file)) {
        CU_cleanup_registry();
        return 1;
    }
    return run_suites_then_remove(dir);
}
