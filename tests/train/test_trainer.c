/* test_trainer.c: the trainer end to end on generated orders with a planted
 * signal (D1 when num3 > 0.5; D2 from the txt embedding),
 * its checkpoint and metadata, cancelling, and the craft train command line. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "trainer.h"
#include "train_util.h"

static char dir[256], orders_path[300], model_path[300], config_json_path[300];
static char *config_json;

static uint64_t rs = 2463534242ull;
static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (rs >> 11) * (1.0 / 9007199254740992.0);
}

/* 600 orders: the fixture model's features, txt and graph, two learnable classes; with_ts:
 * each carries a time, one hour apart, in a shuffled file order (so the time split is not the
 * file's tail). */
static int write_orders_ts(const char *path, int with_ts)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (int i = 0; i < 600; i++) {
        double x3 = urand() * 4 - 2, t0 = urand() * 2 - 1;
        int c0 = (int)(urand() * 3);
        int d1 = x3 > 0.5, d2 = t0 > 0.4;
        if (with_ts) {
            int hour = (i * 7919) % 600; /* a permutation of 0..599 */
            fprintf(f, "{\"order_id\": \"G-%04d\", \"ts\": \"2026-02-%02dT%02d:00:00Z\", ", i, 1 + hour / 24, hour % 24);
        } else {
            fprintf(f, "{\"order_id\": \"G-%04d\", ", i);
        }
        fprintf(f, "\"features\": {\"cat0\": \"v%d\", \"cat1\": \"v%d\", \"num3\": %.4f, \"num4\": %.4f",
                c0, (int)(urand() * 4), x3, urand());
        for (int j = 5; j < 12; j++)
            fprintf(f, ", \"num%d\": %.4f", j, urand() * 2 - 1);
        fprintf(f, "}, \"embeddings\": {\"txt\": [%.4f", t0);
        for (int c = 1; c < 10; c++)
            fprintf(f, ", %.4f", urand() - 0.5);
        fprintf(f, "]");
        if (i % 4) /* a quarter of the orders without graph */
            fprintf(f, ", \"graph\": [[%.3f, %.3f, %.3f, %.3f, %.3f, %.3f]]", urand(), urand(), urand(), urand(), urand(), urand());
        fprintf(f, "}, \"labels\": {\"D1\": %d, \"D2\": %d, \"D3\": 0, \"D4\": %d, \"D5\": 0}}\n", d1, d2, urand() < 0.1);
    }
    return fclose(f);
}

static int write_orders(const char *path) { return write_orders_ts(path, 0); }

static int setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/craft-test-trainer-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(orders_path, sizeof orders_path, "%s/orders.jsonl", dir);
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", dir);
    snprintf(config_json_path, sizeof config_json_path, "%s/config.json", dir);
    craft_model *m;
    craft_error err;
    if (craft_model_load(&m, fixture("tiny-train-multilabel.safetensors"), &err))
        return -1;
    config_json = craft_config_to_json(&m->cfg);
    craft_model_free(m);
    FILE *f = fopen(config_json_path, "w");
    if (!f || !config_json)
        return -1;
    fputs(config_json, f);
    fclose(f);
    return write_orders(orders_path);
}

static int teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    free(config_json);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_trains_and_saves(void)
{
    craft_trainer_options o;
    craft_trainer_defaults(&o);
    o.input = orders_path;
    o.config_json = config_json;
    o.output = model_path;
    o.epochs = 80;
    o.batch = 64;
    o.lr = 3e-3f;
    o.patience = 80;
    o.val_fraction = 0.25f;
    o.threads = 2;
    craft_trainer_result res;
    craft_error err;
    int rc = craft_trainer_run(&o, &res, &err);
    if (rc)
        printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    printf("\n  %d train / %d val orders, best val macro PR-AUC %.3f at epoch %d\n", res.n_train, res.n_val,
           res.best_val_ap, res.best_epoch);
    CU_ASSERT(res.n_train + res.n_val == 600);
    CU_ASSERT(res.n_val > 100 && res.n_val < 200);
    CU_ASSERT_EQUAL(res.backbone, 0); /* tab: 12 tokens against 1 and 3 */
    /* the checkpoint loads, carries the training metadata, and scores the planted D1 well */
    craft_model *m;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, model_path, &err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m->metadata_json);
    cJSON *meta = cJSON_Parse(m->metadata_json);
    cJSON *tr = meta ? cJSON_Parse(cJSON_GetObjectItem(meta, "craft.training")->valuestring) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(tr);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(tr, "rho")), 3);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(tr, "backbone")->valuestring, "tab");
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(tr, "val_macro_pr_auc")->valuedouble, res.best_val_ap, 1e-9);
    cJSON_Delete(tr);
    cJSON_Delete(meta);
    /* vocabularies refit from the data: cat0 has v0..v2, cat2 was never seen */
    const craft_modality *tm = &m->cfg.modalities[m->cfg.tabular];
    CU_ASSERT_EQUAL(tm->features[0].n_vocab, 3);
    CU_ASSERT_EQUAL(tm->features[2].n_vocab, 0);
    /* edges: num3 spans about [-2, 2] */
    const float *E = m->w.embed[m->cfg.tabular].edges + 3 * (m->cfg.bins + 1);
    CU_ASSERT(E[0] > -2.01f && E[0] < -1.9f && E[m->cfg.bins] < 2.01f && E[m->cfg.bins] > 1.9f);
    /* the planted classes are learned: D1 (tab) and D2 (txt) well above their base rates */
    craft_order_batch ob;
    craft_reader *rd;
    int eof = 0;
    CU_ASSERT_EQUAL_FATAL(craft_reader_open(&rd, orders_path, CRAFT_FORMAT_AUTO, &m->cfg, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_order_batch_init(&ob, &m->cfg, 600, 0, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_reader_next(rd, &ob, &eof, &err), 0);
    craft_engine *e;
    craft_result r;
    craft_request rq = {0};
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, m, 600, 2, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_result_init(&r, &m->cfg, 600, &rq, &err), 0);
    CU_ASSERT_EQUAL_FATAL(craft_engine_run(e, &ob.in, &rq, 1, &r, &err), 0);
    double ap1 = craft_pr_auc(r.scores, ob.in.labels, ob.in.n, 5), ap2 = craft_pr_auc(r.scores + 1, ob.in.labels + 1, ob.in.n, 5);
    printf("  PR-AUC on all orders: D1 %.3f, D2 %.3f\n", ap1, ap2);
    CU_ASSERT(ap1 > 0.8);
    CU_ASSERT(ap2 > 0.8);
    craft_result_free(&r);
    craft_engine_free(e);
    craft_order_batch_free(&ob);
    craft_reader_close(rd);
    craft_model_free(m);
}

/* Orders with times: the default split holds out the latest 20%, whatever the file order;
 * --split hash and --val FILE override it; --split time refuses orders without a time; the
 * checkpoint carries the calibration fitted on the validation orders. */
static void test_time_split_and_calibration(void)
{
    char ts_path[400], out[400], val_path[400];
    snprintf(ts_path, sizeof ts_path, "%s/orders-ts.jsonl", dir);
    snprintf(val_path, sizeof val_path, "%s/orders-val.jsonl", dir);
    snprintf(out, sizeof out, "%s/timed.safetensors", dir);
    CU_ASSERT_EQUAL_FATAL(write_orders_ts(ts_path, 1), 0);
    CU_ASSERT_EQUAL_FATAL(write_orders_ts(val_path, 1), 0);
    craft_trainer_options o;
    craft_trainer_defaults(&o);
    o.input = ts_path;
    o.config_json = config_json;
    o.output = out;
    o.epochs = 3;
    o.batch = 64;
    o.val_fraction = 0.2f;
    o.threads = 2;
    craft_trainer_result res;
    craft_error err;
    int rc = craft_trainer_run(&o, &res, &err);
    if (rc)
        printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(res.split_used, CRAFT_SPLIT_TIME);
    CU_ASSERT_EQUAL(res.n_val, 120); /* hours 480..599: the latest fifth */
    CU_ASSERT_EQUAL(res.n_train, 480);
    /* hour 480 = 2026-02-21T00:00:00Z */
    CU_ASSERT_DOUBLE_EQUAL(res.val_from, 1771632000.0, 0.5);
    craft_model *m;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(m->cfg.calib_a);
    CU_ASSERT_PTR_NOT_NULL(m->cfg.calib_b);
    CU_ASSERT_EQUAL(m->cfg.tab_encoding, CRAFT_TAB_PIECEWISE); /* the trainer's default */
    /* Platt scaling minimizes the validation log-loss, not the binned ECE: on 120 orders the ECE
     * may move either way, but it stays small and every slope is positive (ranks kept) */
    CU_ASSERT(isfinite(res.val_ece) && res.val_ece < 0.1);
    for (int k = 0; k < m->cfg.n_classes; k++)
        CU_ASSERT(m->cfg.calib_a[k] > 0.0f);
    printf("\n  time split: %d / %d; validation ECE %.4f -> %.4f\n", res.n_train, res.n_val, res.val_ece_raw,
           res.val_ece);
    cJSON *meta = cJSON_Parse(m->metadata_json);
    cJSON *tr = meta ? cJSON_Parse(cJSON_GetObjectItem(meta, "craft.training")->valuestring) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(tr);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(tr, "split")->valuestring, "time");
    cJSON_Delete(tr);
    cJSON_Delete(meta);
    craft_model_free(m);
    /* --split hash on the same file */
    o.split = CRAFT_SPLIT_HASH;
    o.calibrate = 0;
    CU_ASSERT_EQUAL_FATAL(craft_trainer_run(&o, &res, &err), 0);
    CU_ASSERT_EQUAL(res.split_used, CRAFT_SPLIT_HASH);
    CU_ASSERT(res.n_val > 80 && res.n_val < 160 && res.n_val != 120);
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, out, &err), 0);
    CU_ASSERT_PTR_NULL(m->cfg.calib_a); /* --no-calibrate */
    craft_model_free(m);
    /* --val FILE: every input order trains */
    o.split = CRAFT_SPLIT_AUTO;
    o.val_input = val_path;
    CU_ASSERT_EQUAL_FATAL(craft_trainer_run(&o, &res, &err), 0);
    CU_ASSERT_EQUAL(res.n_train, 600);
    CU_ASSERT_EQUAL(res.n_val, 600);
    /* --split time on orders without times: refused, naming the order */
    o.val_input = NULL;
    o.input = orders_path;
    o.split = CRAFT_SPLIT_TIME;
    CU_ASSERT_NOT_EQUAL(craft_trainer_run(&o, &res, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "G-0000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ts"));
    /* auto falls back to the hash there */
    o.split = CRAFT_SPLIT_AUTO;
    CU_ASSERT_EQUAL_FATAL(craft_trainer_run(&o, &res, &err), 0);
    CU_ASSERT_EQUAL(res.split_used, CRAFT_SPLIT_HASH);
}

static void test_cancel_before_an_epoch(void)
{
    char out[400];
    snprintf(out, sizeof out, "%s/cancelled.safetensors", dir);
    volatile sig_atomic_t cancel = 1;
    craft_trainer_options o;
    craft_trainer_defaults(&o);
    o.input = orders_path;
    o.config_json = config_json;
    o.output = out;
    o.batch = 64;
    o.cancel = &cancel;
    craft_trainer_result res;
    craft_error err;
    CU_ASSERT_NOT_EQUAL(craft_trainer_run(&o, &res, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nothing was saved"));
    CU_ASSERT_NOT_EQUAL(access(out, F_OK), 0);
}

static void test_bad_inputs(void)
{
    craft_trainer_options o;
    craft_trainer_defaults(&o);
    o.input = "/nonexistent/orders.jsonl";
    o.config_json = config_json;
    o.output = model_path;
    craft_trainer_result res;
    craft_error err;
    CU_ASSERT_NOT_EQUAL(craft_trainer_run(&o, &res, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/orders.jsonl"));
    o.input = orders_path;
    o.config_json = "{\"format\": \"craft-model\"}";
    CU_ASSERT_NOT_EQUAL(craft_trainer_run(&o, &res, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "model config"));
}

/* Runs `craft train ARGS` and returns its exit status (-1 when it cannot run). */
static int craft_status(const char *args)
{
    const char *build = getenv("CRAFT_BUILD");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s/app/cli/craft' train %s >/dev/null 2>&1", build ? build : "build", args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void)
{
    char args[1000];
    CU_ASSERT_EQUAL(craft_status("--help"), 0);
    CU_ASSERT_EQUAL(craft_status("--frobnicate"), 64);
    CU_ASSERT_EQUAL(craft_status("--input x.jsonl"), 64);                      /* no output, no config */
    CU_ASSERT_EQUAL(craft_status("--input a --db b --output m --config c"), 64); /* both inputs */
    CU_ASSERT_EQUAL(craft_status("--batch 1 --input a --output m --config c"), 64);
    CU_ASSERT_EQUAL(craft_status("--device cuda --input a --output m --config c"), 69);
    snprintf(args, sizeof args, "--input /nonexistent.jsonl --output %s/m2.safetensors --config %s", dir, config_json_path);
    CU_ASSERT_EQUAL(craft_status(args), 66);
    snprintf(args, sizeof args, "--input %s --output %s/m3.safetensors --config %s --epochs 1 --batch 32", orders_path, dir,
             config_json_path);
    CU_ASSERT_EQUAL(craft_status(args), 0);
    snprintf(args, sizeof args, "%s/m3.safetensors", dir);
    CU_ASSERT_EQUAL(access(args, R_OK), 0);
}

/* --db: the store's labelled orders (where this build has the store). */
static void test_db_input(void)
{
    const char *build = getenv("CRAFT_BUILD");
    char cmd[1500], args[1000];
    snprintf(cmd, sizeof cmd, "'%s/app/cli/craft' import --db '%s/s.db' '%s' >/dev/null 2>&1", build ? build : "build", dir,
             orders_path);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("\n  no case store in this build: --db not tested\n");
        return;
    }
    snprintf(args, sizeof args, "--db %s/s.db --output %s/mdb.safetensors --config %s --epochs 1 --batch 32", dir, dir,
             config_json_path);
    CU_ASSERT_EQUAL(craft_status(args), 0);
    snprintf(args, sizeof args, "--db %s/s.db --dataset no-such-dataset --output %s/mdb2.safetensors --config %s", dir, dir,
             config_json_path);
    CU_ASSERT_NOT_EQUAL(craft_status(args), 0);
}

/* Ctrl-C during training: exit 130, and the checkpoint holds the best model so far. */
static void test_sigint_keeps_best(void)
{
    const char *build = getenv("CRAFT_BUILD");
    char exe[600], out[400];
    snprintf(exe, sizeof exe, "%s/app/cli/craft", build ? build : "build");
    snprintf(out, sizeof out, "%s/interrupted.safetensors", dir);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(exe, exe, "train", "--input", orders_path, "--config", config_json_path, "--output", out, "--epochs",
              "100000", "--patience", "100000", "--batch", "32", (char *)NULL);
        _exit(127);
    }
    /* wait for the first checkpoint (at most a minute), then interrupt */
    for (int i = 0; i < 600 && access(out, R_OK) != 0; i++)
        usleep(100000);
    CU_ASSERT_EQUAL(access(out, R_OK), 0);
    kill(pid, SIGINT);
    int st = 0;
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 130);
    craft_model *m = NULL;
    craft_error err;
    CU_ASSERT_EQUAL(craft_model_load(&m, out, &err), 0);
    CU_ASSERT(m && m->metadata_json && strstr(m->metadata_json, "val_macro_pr_auc"));
    craft_model_free(m);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("trainer", setup, teardown);
    if (!s || !CU_add_test(s, "trains, saves, learns the planted classes", test_trains_and_saves) ||
        !CU_add_test(s, "time split, --split hash, --val FILE, calibration", test_time_split_and_calibration) ||
        !CU_add_test(s, "cancelled before an epoch: nothing saved", test_cancel_before_an_epoch) ||
        !CU_add_test(s, "bad input and config named", test_bad_inputs) || !CU_add_test(s, "craft train command line", test_cli) ||
        !CU_add_test(s, "--db through the case store", test_db_input) ||
        !CU_add_test(s, "Ctrl-C keeps the best checkpoint", test_sigint_keeps_best)) {
        CU_cleanup_registry();
        return 1;
    }
    return run_suites();
}
