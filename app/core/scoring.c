/* scoring.c: reader -> engine -> score lines. */
#include "scoring.h"

#include "encoders.h"

#include <math.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <time.h>

double craft_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int craft_parse_modality_list(const craft_config *cfg, const char *list, uint32_t *mask, craft_error *err)
{
    *mask = 0;
    if (!list || !*list)
        return CRAFT_OK;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[64];
        if (n == 0 || n >= sizeof name)
            return craft_fail(err, CRAFT_EINPUT, "--off: \"%s\" is not a list of modality names", list);
        memcpy(name, p, n);
        name[n] = 0;
        int m = craft_config_find_modality(cfg, name);
        if (m < 0) {
            char names[256] = "";
            for (int i = 0; i < cfg->n_modalities; i++)
                if (i != cfg->backbone) {
                    size_t len = strlen(names);
                    snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", cfg->modalities[i].name);
                }
            return craft_fail(err, CRAFT_EINPUT, "--off: the model has no modality \"%s\" (auxiliaries: %s)", name,
                              names);
        }
        if (m == cfg->backbone)
            return craft_fail(err, CRAFT_EINPUT, "--off: \"%s\" is the backbone and cannot be switched off", name);
        *mask |= 1u << m;
        p += n;
        if (*p == ',')
            p++;
    }
    return CRAFT_OK;
}

void craft_json_string(FILE *out, const char *s)
{
    putc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*c < 0x20)
                fprintf(out, "\\u%04x", *c);
            else
                putc(*c, out);
        }
    }
    putc('"', out);
}

/* Shortest text that reads back as the same float32. */
static void json_float(FILE *out, float v)
{
    if (!isfinite(v)) {
        fputs("null", out);
        return;
    }
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtof(buf, NULL) == v)
            break;
    }
    fputs(buf, out);
}

static void token_key(FILE *out, const craft_config *cfg, int j)
{
    const craft_modality *bb = &cfg->modalities[cfg->backbone];
    if (bb->kind == CRAFT_TABULAR) {
        craft_json_string(out, bb->features[j].name);
    } else {
        fprintf(out, "\"%d\"", j);
    }
}

/* {"<class>": {"<feature>": v, ...}, ...} with v = a[k*F + j] - b[k*F + j] (b NULL: a alone) */
static void class_feature_map(FILE *out, const craft_config *cfg, const craft_modality *tm, int K, int F, const float *a,
                              const float *b)
{
    fputs("{", out);
    for (int k = 0; k < K; k++) {
        fputs(k ? ", " : "", out);
        craft_json_string(out, cfg->classes[k]);
        fputs(": {", out);
        for (int j = 0; j < F; j++) {
            const size_t at = (size_t)k * F + j;
            fputs(j ? ", " : "", out);
            craft_json_string(out, tm->features[j].name);
            fputs(": ", out);
            json_float(out, b ? a[at] - b[at] : a[at]);
        }
        fputs("}", out);
    }
    fputs("}", out);
}

void craft_write_score_line(FILE *out, const craft_model *m, const char *order_id, const craft_result *r, int b,
                            int perturbation)
{
    const craft_config *cfg = &m->cfg;
    const int K = r->K, M = r->M, T = r->T, n = r->ntok[b];
    fputs("{\"order_id\": ", out);
    craft_json_string(out, order_id);
    fprintf(out, ", \"model\": \"%s\", \"modalities\": [", m->sha256);
    int first = 1;
    for (int i = 0; i < M; i++)
        if (r->used[b] >> i & 1u) {
            fputs(first ? "" : ", ", out);
            craft_json_string(out, cfg->modalities[i].name);
            first = 0;
        }
    fputs("], \"scores\": {", out);
    for (int k = 0; k < K; k++) {
        fputs(k ? ", " : "", out);
        craft_json_string(out, cfg->classes[k]);
        fputs(": ", out);
        json_float(out, r->scores[(size_t)b * K + k]);
    }
    fputs("}", out);
    if (r->importance) {
        fputs(", \"importance\": {", out);
        for (int j = 0; j < n; j++) {
            fputs(j ? ", " : "", out);
            token_key(out, cfg, j);
            fputs(": ", out);
            json_float(out, r->importance[(size_t)b * T + j]);
        }
        fputs("}", out);
    }
    if (r->cmis) {
        fputs(", \"cmis\": {", out);
        first = 1;
        for (int i = 0; i < M; i++) {
            if (i == cfg->backbone || !(r->used[b] >> i & 1u))
                continue;
            fputs(first ? "" : ", ", out);
            first = 0;
            craft_json_string(out, cfg->modalities[i].name);
            fputs(": {", out);
            for (int j = 0; j < n; j++) {
                fputs(j ? ", " : "", out);
                token_key(out, cfg, j);
                fputs(": ", out);
                json_float(out, r->cmis[((size_t)b * M + i) * T + j]);
            }
            fputs("}", out);
        }
        fputs("}", out);
    }
    if (perturbation && r->perturb && cfg->tabular >= 0) {
        const craft_modality *tm = &cfg->modalities[cfg->tabular];
        const int F = tm->n_features;
        fputs(", \"perturbation\": ", out);
        class_feature_map(out, cfg, tm, K, F, r->perturb + (size_t)b * K * F, NULL);
    }
    fputs("}\n", out);
}

void craft_write_interaction(FILE *out, const craft_model *m, const craft_result *full, const craft_result *off,
                             const int *off_mod, int n_off, int b)
{
    const craft_config *cfg = &m->cfg;
    if (cfg->tabular < 0 || !full->perturb)
        return;
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    const int F = tm->n_features, K = full->K;
    fputs(", \"interaction\": {", out);
    int first = 1;
    for (int i = 0; i < n_off; i++) {
        const int mm = off_mod[i];
        if (!(full->used[b] >> mm & 1u) || !off[i].perturb)
            continue; /* the order has no such input: no interaction to speak of */
        fputs(first ? "" : ", ", out);
        first = 0;
        craft_json_string(out, cfg->modalities[mm].name);
        fputs(": ", out);
        class_feature_map(out, cfg, tm, K, F, full->perturb + (size_t)b * K * F, off[i].perturb + (size_t)b * K * F);
    }
    fputs("}", out);
}

static int cpu_create(void **engine, const craft_model *m, int max_batch, int threads, const void *user,
                      craft_error *err)
{
    (void)user;
    return craft_engine_new((craft_engine **)engine, m, max_batch, threads, err);
}

static int cpu_run(void *engine, const craft_batch *b, const craft_request *req, int n_req, craft_result *results,
                   craft_error *err)
{
    return craft_engine_run(engine, b, req, n_req, results, err);
}

static void cpu_destroy(void *engine) { craft_engine_free(engine); }

const craft_engine_ops craft_cpu_engine_ops = {cpu_create, cpu_run, cpu_destroy, NULL};

/* The model's tabular features against the first batch: none present is refused
 * (every order would get the same score, silently), most missing is warned. */
static int check_features(const craft_config *cfg, const craft_score_options *o, const craft_order_batch *ob,
                          craft_error *err)
{
    if (cfg->tabular < 0)
        return CRAFT_OK;
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    int F = tm->n_features, present = 0;
    for (int j = 0; j < F; j++) {
        int seen = 0;
        for (int i = 0; i < ob->in.n && !seen; i++)
            seen = !isnan(ob->in.tab[(size_t)i * ob->in.F + j]);
        present += seen;
    }
    if (F <= 0)
        return CRAFT_OK;
    if (present == 0 && cfg->tabular == cfg->backbone)
        return craft_fail(err, CRAFT_EINPUT,
                          "%s: none of the model's %d features (\"%s\"%s) is in its first %d order%s: a model for"
                          " other data, or renamed columns? Nothing was scored",
                          o->input, F, tm->features[0].name, F > 1 ? ", ..." : "", ob->in.n, ob->in.n == 1 ? "" : "s");
    if (o->log && F - present > CRAFT_SCORE_MISSING_WARN * F) {
        fprintf(o->log, "craft score: WARNING: %d of the model's %d features (%.0f%%) are missing from all of the first"
                        " %d order%s of %s (over the %.0f%% this warns at); their scores lean on the rest:",
                F - present, F, 100.0 * (F - present) / F, ob->in.n, ob->in.n == 1 ? "" : "s", o->input,
                100 * CRAFT_SCORE_MISSING_WARN);
        int shown = 0;
        for (int j = 0; j < F && shown < 10; j++) {
            int seen = 0;
            for (int i = 0; i < ob->in.n && !seen; i++)
                seen = !isnan(ob->in.tab[(size_t)i * ob->in.F + j]);
            if (!seen)
                fprintf(o->log, "%s \"%s\"", shown++ ? "," : "", tm->features[j].name);
        }
        fprintf(o->log, "%s\n", F - present > 10 ? ", ..." : "");
    }
    return CRAFT_OK;
}

int craft_score_file(const craft_model *m, const craft_score_options *o, FILE *out, uint64_t *n_scored,
                     craft_error *err)
{
    const craft_config *cfg = &m->cfg;
    const int batch = o->batch > 0 ? o->batch : 64;
    craft_request req = {o->off_mask, o->explain, o->explain, o->perturbation || o->interaction};
    /* the interaction score: the perturbation passes again with each used auxiliary off */
    craft_request reqs[CRAFT_MAX_MODALITIES];
    craft_result rs[CRAFT_MAX_MODALITIES];
    int off_mod[CRAFT_MAX_MODALITIES], n_off = 0;
    memset(rs, 0, sizeof rs);
    reqs[0] = req;
    for (int mm = 0; o->interaction && mm < cfg->n_modalities; mm++)
        if (mm != cfg->backbone && !(o->off_mask >> mm & 1u)) {
            off_mod[n_off] = mm;
            reqs[1 + n_off] = (craft_request){o->off_mask | 1u << mm, 0, 0, 1};
            n_off++;
        }
    craft_reader *rd = NULL;
    const craft_engine_ops *ops = o->engine ? o->engine : &craft_cpu_engine_ops;
    void *eng = NULL;
    craft_encoders *enc = NULL;
    craft_order_batch ob;
    craft_result res;
    memset(&ob, 0, sizeof ob);
    memset(&res, 0, sizeof res);
    uint64_t done = 0;
    double t0 = craft_now();
    int rc = craft_reader_open(&rd, o->input, o->format, cfg, err);
    /* the built-in encoders fill txt/graph for orders without embeddings; they
     * need the raw text and entities, which are kept only then */
    if (!rc)
        rc = craft_encoders_new(&enc, cfg, err);
    if (!rc)
        rc = craft_order_batch_init(&ob, cfg, batch, craft_encoders_active(enc), err);
    if (!rc)
        rc = craft_result_init(&res, cfg, batch, &req, err);
    for (int i = 0; !rc && i < n_off; i++)
        rc = craft_result_init(&rs[1 + i], cfg, batch, &reqs[1 + i], err);
    if (!rc)
        rc = ops->create(&eng, m, batch, o->threads, ops->user, err);
    int eof = 0;
    while (!rc && !eof) {
        craft_order_batch_reset(&ob, cfg);
        rc = craft_reader_next(rd, &ob, &eof, err);
        if (rc)
            break;
        if (ob.in.n == 0)
            continue;
        if (!done && (rc = check_features(cfg, o, &ob, err)))
            break;
        if ((rc = craft_encoders_fill(enc, cfg, &ob, err))) {
            craft_error_prefix(err, "%s", o->input);
            break;
        }
        rs[0] = res;
        rc = ops->run(eng, &ob.in, reqs, 1 + n_off, rs, err);
        res = rs[0];
        if (rc) {
            /* name the order: the engine sees batch positions only */
            craft_error_prefix(err, "%s:%zu (order %s)", o->input, ob.line[0], ob.ids[0]);
            break;
        }
        for (int b = 0; b < ob.in.n; b++)
            if (n_off) {
                /* the line without its closing brace, then the interaction, then the brace */
                char *line = NULL;
                size_t len = 0;
                FILE *mem = open_memstream(&line, &len);
                if (!mem) {
                    rc = craft_fail(err, CRAFT_ENOMEM, "out of memory");
                    break;
                }
                craft_write_score_line(mem, m, ob.ids[b], &res, b, o->perturbation);
                fclose(mem);
                if (len >= 2)
                    fwrite(line, 1, len - 2, out); /* drop "}\n" */
                free(line);
                craft_write_interaction(out, m, &res, rs + 1, off_mod, n_off, b);
                fputs("}\n", out);
            } else {
                craft_write_score_line(out, m, ob.ids[b], &res, b, o->perturbation);
            }
        done += (uint64_t)ob.in.n;
        if (ferror(out)) {
            rc = craft_fail(err, CRAFT_EIO, "writing the scores failed: %s", strerror(errno));
            break;
        }
        if (o->progress) {
            craft_progress p = {done, 0, 0, craft_now() - t0};
            craft_reader_progress(rd, &p.bytes, &p.total);
            o->progress(o->progress_user, &p);
        }
    }
    if (n_scored)
        *n_scored = done;
    if (eng)
        ops->destroy(eng);
    craft_encoders_free(enc);
    craft_result_free(&res);
    for (int i = 0; i < n_off; i++)
        craft_result_free(&rs[1 + i]);
    craft_order_batch_free(&ob);
    craft_reader_close(rd);
    return rc;
}
