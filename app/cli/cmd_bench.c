/* craft bench: orders/s of the engine on a random model of a given shape. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "craft_cuda.h"
#include "device.h"
#include "scoring.h"

typedef struct {
    int F, cat, d, heads, layers, ffn, topk, route, bins, emb, txt, graph, graph_tokens, classes;
} bench_shape;

static const bench_shape production = {300, 40, 256, 8, 1, 2, 16, 32, 32, 32, 768, 128, 1, 5};

static void help(void)
{
    printf("Usage: craft bench [--device cpu|cuda|auto] [--precision fp32|fast] [--shape production|KEY=V,...]\n"
           "                   [--threads N] [--batch N] [--seconds S] [--json]\n\n"
           "Builds a random model of the given shape and random orders in memory, and measures\n"
           "orders/s and the median batch latency for scoring and for scoring with explanations\n"
           "(importance and CMIS), at batch 1 and at a large batch (default 64; on the GPU 256 and\n"
           "4096 unless --batch is given), with the achieved TFLOP/s (the flops of one order from the\n"
           "shape, folded attentions) and, on the GPU, the fraction of its peak for the precision.\n\n"
           "production: F=300 tabular features (40 categorical), d=256, 8 heads, 1 layer, ffn x2,\n"
           "top-k 16, routing 32, 32 bins, sub-embedding 32, txt 768 wide, graph 128 wide, 5 classes.\n"
           "Keys for KEY=V: F cat d heads layers ffn topk route bins emb txt graph graph_tokens classes\n"
           "(unset keys keep the production value).\n");
}

static int parse_shape(const char *s, bench_shape *sh)
{
    *sh = production;
    if (!strcmp(s, "production"))
        return 0;
    char *copy = strdup(s), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            rc = -1;
            break;
        }
        *eq = 0;
        long v = strtol(eq + 1, NULL, 10);
        struct { const char *k; int *p; } keys[] = {
            {"F", &sh->F}, {"cat", &sh->cat}, {"d", &sh->d}, {"heads", &sh->heads}, {"layers", &sh->layers},
            {"ffn", &sh->ffn}, {"topk", &sh->topk}, {"route", &sh->route}, {"bins", &sh->bins}, {"emb", &sh->emb},
            {"txt", &sh->txt}, {"graph", &sh->graph}, {"graph_tokens", &sh->graph_tokens}, {"classes", &sh->classes}};
        int hit = 0;
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            if (!strcmp(tok, keys[i].k)) {
                *keys[i].p = (int)v;
                hit = 1;
            }
        if (!hit || v < 0 || v > 1000000)
            rc = -1;
    }
    free(copy);
    if (sh->cat > sh->F)
        rc = -1;
    return rc;
}

static char *shape_config(const bench_shape *sh)
{
    size_t cap = 256 + (size_t)sh->F * 200 + (size_t)sh->classes * 16;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int n = snprintf(s, cap,
                     "{\"format\":\"craft-model\",\"version\":1,\"d_model\":%d,\"heads\":%d,\"layers\":%d,"
                     "\"ffn_mult\":%d,\"topk\":%d,\"route_dim\":%d,\"bins\":%d,\"emb_dim\":%d,\"task\":\"multilabel\","
                     "\"backbone\":\"tab\",\"classes\":[",
                     sh->d, sh->heads, sh->layers, sh->ffn, sh->topk, sh->route, sh->bins, sh->emb);
    for (int k = 0; k < sh->classes; k++)
        n += snprintf(s + n, cap - n, "%s\"D%d\"", k ? "," : "", k + 1);
    n += snprintf(s + n, cap - n, "],\"modalities\":[{\"name\":\"tab\",\"kind\":\"tabular\",\"features\":[");
    for (int j = 0; j < sh->F; j++) {
        if (j < sh->cat) {
            n += snprintf(s + n, cap - n, "%s{\"name\":\"c%d\",\"type\":\"categorical\",\"vocab\":[", j ? "," : "", j);
            int nv = sh->bins - 1 < 8 ? sh->bins - 1 : 8;
            for (int v = 0; v < nv; v++)
                n += snprintf(s + n, cap - n, "%s\"v%d\"", v ? "," : "", v);
            n += snprintf(s + n, cap - n, "]}");
        } else {
            n += snprintf(s + n, cap - n, "%s{\"name\":\"x%d\",\"type\":\"numeric\"}", j ? "," : "", j);
        }
    }
    n += snprintf(s + n, cap - n, "]}");
    if (sh->txt)
        n += snprintf(s + n, cap - n, ",{\"name\":\"txt\",\"kind\":\"embedding\",\"dim\":%d,\"tokens\":1}", sh->txt);
    if (sh->graph)
        n += snprintf(s + n, cap - n, ",{\"name\":\"graph\",\"kind\":\"embedding\",\"dim\":%d,\"tokens\":%d}", sh->graph,
                      sh->graph_tokens > 0 ? sh->graph_tokens : 1);
    snprintf(s + n, cap - n, "]}");
    return s;
}

static uint64_t rng_state = 0x1234567u;
static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static float nrand(void) { return (float)(sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand())); }

static void fill_batch(craft_batch *b, const craft_config *cfg, int n)
{
    b->n = n;
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < b->F; j++) {
            float *x = &b->tab[(size_t)i * b->F + j];
            if (urand() < 0.05)
                *x = NAN;
            else if (tm->features[j].type == CRAFT_CATEGORICAL)
                *x = (float)(1 + (int)(urand() * cfg->bins) % cfg->bins);
            else
                *x = nrand();
        }
        for (int m = 0; m < cfg->n_modalities; m++) {
            const craft_modality *md = &cfg->modalities[m];
            if (md->kind != CRAFT_EMBEDDING)
                continue;
            b->ntok[m][i] = md->tokens;
            for (size_t c = 0; c < (size_t)md->tokens * md->dim; c++)
                b->emb[m][(size_t)i * md->tokens * md->dim + c] = nrand();
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct { const char *mode; int batch; double ops, p50, p99; } bench_row;

static int measure(const craft_model *m, const craft_engine_ops *ops, int batch, int explain, int threads,
                   double seconds, bench_row *row, craft_error *err)
{
    void *e = NULL;
    craft_batch b;
    craft_result r;
    craft_request req = {0, explain, explain, 0};
    memset(&r, 0, sizeof r);
    int rc = craft_batch_init(&b, &m->cfg, batch, err);
    if (rc)
        return rc;
    if ((rc = craft_result_init(&r, &m->cfg, batch, &req, err)) || (rc = ops->create(&e, m, batch, threads, ops->user, err)))
        goto done;
    fill_batch(&b, &m->cfg, batch);
    if ((rc = ops->run(e, &b, &req, 1, &r, err))) /* warm-up */
        goto done;
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(sizeof(double) * cap);
    double t0 = craft_now(), t = t0;
    while ((t - t0 < seconds || n < 5) && n < cap && lat) {
        double s = craft_now();
        if ((rc = ops->run(e, &b, &req, 1, &r, err)))
            break;
        t = craft_now();
        lat[n++] = t - s;
    }
    if (lat && n) {
        qsort(lat, n, sizeof *lat, cmp_double);
        row->mode = explain ? "explain" : "score";
        row->batch = batch;
        row->ops = (double)n * batch / (t - t0);
        row->p50 = lat[n / 2] * 1e3;
        row->p99 = lat[(size_t)(n * 0.99) < n ? (size_t)(n * 0.99) : n - 1] * 1e3;
    }
    free(lat);
done:
    if (e)
        ops->destroy(e);
    craft_result_free(&r);
    craft_batch_free(&b);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    const char *device = NULL, *shape_s = "production", *precision_s = NULL;
    int threads = 0, batch = 64, json = 0, batch_given = 0;
    double seconds = 3.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!v) {
            return cli_usage("bench", "unknown option or missing value: %s", a);
        } else if (!strcmp(a, "--device")) {
            device = v, i++;
        } else if (!strcmp(a, "--precision")) {
            precision_s = v, i++;
        } else if (!strcmp(a, "--shape")) {
            shape_s = v, i++;
        } else if (!strcmp(a, "--threads")) {
            if (cli_int("bench", a, v, 1, 1024, &threads))
                return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--batch")) {
            if (cli_int("bench", a, v, 1, 65536, &batch))
                return EXIT_USAGE;
            batch_given = 1;
            i++;
        } else if (!strcmp(a, "--seconds")) {
            seconds = atof(v);
            if (!(seconds > 0 && seconds < 3600))
                return cli_usage("bench", "--seconds must be in (0, 3600)");
            i++;
        } else {
            return cli_usage("bench", "unknown option %s", a);
        }
    }
    const char *dev;
    int precision, st = cli_pick_device("bench", device, &dev);
    if (st || (st = cli_pick_precision("bench", precision_s, dev, &precision)))
        return st;
    const craft_engine_ops *ops = cli_engine_ops(dev, precision);
    const int gpu = !strcmp(dev, "cuda");
    craft_cuda_info info;
    memset(&info, 0, sizeof info);
    bench_shape sh;
    if (parse_shape(shape_s, &sh))
        return cli_usage("bench", "--shape: \"%s\" is not production or KEY=V,... with known keys", shape_s);
    char *cfg_json = shape_config(&sh);
    craft_config cfg;
    craft_error err = {0};
    if (!cfg_json || craft_config_parse(&cfg, cfg_json, strlen(cfg_json), &err)) {
        free(cfg_json);
        return cli_fail("bench", &err);
    }
    free(cfg_json);
    craft_model *m;
    int rc = craft_model_new(&m, &cfg, 0, 42, &err);
    craft_config_free(&cfg);
    if (rc)
        return cli_fail("bench", &err);
    if (threads <= 0)
        threads = craft_cpu_count();
    /* On the GPU: batch 1, 256 and 4096 unless --batch names the large batch. */
    int batches[3] = {1, batch, 0}, nbatch = 2;
    if (gpu && !batch_given)
        batches[1] = 256, batches[2] = 4096, nbatch = 3;
    bench_row rows[6];
    memset(rows, 0, sizeof rows);
    if (gpu)
        rc = craft_cuda_device_info(&info, &err);
    for (int e = 0; e < 2 && !rc; e++)
        for (int bi = 0; bi < nbatch && !rc; bi++)
            rc = measure(m, ops, batches[bi], e, threads, seconds, &rows[e * nbatch + bi], &err);
    if (rc) {
        craft_model_free(m);
        return cli_fail("bench", &err);
    }
    const int nrows = 2 * nbatch;
    /* achieved TFLOP/s per row, and the peak of the arithmetic used (0: unknown) */
    const double flops[2] = {craft_flops_per_order(&m->cfg, 0), craft_flops_per_order(&m->cfg, 1)};
    const double peak = !gpu ? 0 : precision == CRAFT_PRECISION_FAST ? info.peak_tf32_tflops : info.peak_fp32_tflops;
    double tflops[6];
    for (int i = 0; i < nrows; i++)
        tflops[i] = rows[i].ops * flops[i >= nbatch] * 1e-12;
    if (json) {
        printf("{\"device\": \"%s\", \"gpu\": ", dev);
        if (gpu)
            craft_json_string(stdout, info.name);
        else
            fputs("null", stdout);
        printf(", \"precision\": \"%s\", \"gflop_per_order\": %.4f, \"gflop_per_order_explain\": %.4f, "
               "\"peak_tflops\": ",
               craft_precision_name(precision), flops[0] * 1e-9, flops[1] * 1e-9);
        if (peak > 0)
            printf("%.1f", peak);
        else
            fputs("null", stdout);
        printf(", \"threads\": %d, \"shape\": {\"F\": %d, \"categorical\": %d, \"d\": %d, "
               "\"heads\": %d, \"layers\": %d, \"ffn_mult\": %d, \"topk\": %d, \"route_dim\": %d, \"bins\": %d, "
               "\"emb_dim\": %d, \"txt\": %d, \"graph\": %d, \"classes\": %d}, \"results\": [",
               threads, sh.F, sh.cat, sh.d, sh.heads, sh.layers, sh.ffn, sh.topk, sh.route, sh.bins, sh.emb,
               sh.txt, sh.graph, sh.classes);
        for (int i = 0; i < nrows; i++) {
            printf("%s{\"mode\": \"%s\", \"batch\": %d, \"orders_per_s\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
                   "\"tflops\": %.4f, \"peak_fraction\": ",
                   i ? ", " : "", rows[i].mode, rows[i].batch, rows[i].ops, rows[i].p50, rows[i].p99, tflops[i]);
            if (peak > 0)
                printf("%.4f}", tflops[i] / peak);
            else
                fputs("null}", stdout);
        }
        printf("]}\n");
    } else {
        if (gpu)
            printf("device cuda (%s, %s), peak %s %.1f TFLOP/s%s\n", info.name, craft_precision_name(precision),
                   precision == CRAFT_PRECISION_FAST ? "TF32" : "FP32", peak, peak > 0 ? "" : " (unknown)");
        else
            printf("device %s, %d threads\n", dev, threads);
        printf("shape F=%d (%d categorical) d=%d heads=%d layers=%d top-k=%d: %.3f GFLOP per order (%.3f explained)\n",
               sh.F, sh.cat, sh.d, sh.heads, sh.layers, sh.topk, flops[0] * 1e-9, flops[1] * 1e-9);
        printf("%-8s %6s %12s %10s %10s %9s %7s\n", "mode", "batch", "orders/s", "p50 ms", "p99 ms", "TFLOP/s", "peak");
        for (int i = 0; i < nrows; i++) {
            printf("%-8s %6d %12.1f %10.3f %10.3f %9.4f", rows[i].mode, rows[i].batch, rows[i].ops, rows[i].p50,
                   rows[i].p99, tflops[i]);
            if (peak > 0)
                printf(" %6.2f%%\n", 100.0 * tflops[i] / peak);
            else
                printf(" %7s\n", "-");
        }
    }
    craft_model_free(m);
    return 0;
}
