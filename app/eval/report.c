/* report.c: an evaluation as JSON (stable keys, docs/EVAL.md) or as readable tables. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eval.h"

/* A number, or null where undefined. */
static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *modality_names(const craft_config *cfg, uint32_t mask)
{
    cJSON *a = cJSON_CreateArray();
    for (int m = 0; m < cfg->n_modalities; m++)
        if (mask >> m & 1u)
            cJSON_AddItemToArray(a, cJSON_CreateString(cfg->modalities[m].name));
    return a;
}

static cJSON *metrics_json(const craft_config *cfg, const craft_eval_metrics *mt)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *macro = cJSON_AddObjectToObject(o, "macro");
    cJSON_AddItemToObject(macro, "pr_auc", num(mt->macro_ap));
    cJSON_AddItemToObject(macro, "roc_auc", num(mt->macro_roc));
    cJSON_AddItemToObject(macro, "accuracy", num(mt->accuracy));
    cJSON_AddItemToObject(macro, "f1", num(mt->macro_f1));
    cJSON_AddItemToObject(o, "ece", num(mt->ece));
    cJSON_AddNumberToObject(o, "ece_bins", CRAFT_ECE_BINS);
    cJSON_AddNumberToObject(o, "target_precision", mt->target_precision);
    cJSON *classes = cJSON_AddArrayToObject(o, "classes");
    for (int k = 0; k < mt->K; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "class", cfg->classes[k]);
        cJSON_AddNumberToObject(c, "labelled", mt->n_known[k]);
        cJSON_AddNumberToObject(c, "positives", mt->n_pos[k]);
        cJSON_AddItemToObject(c, "pr_auc", num(mt->ap[k]));
        cJSON_AddItemToObject(c, "roc_auc", num(mt->roc[k]));
        cJSON_AddItemToObject(c, "threshold", num(mt->thr[k]));
        cJSON_AddItemToObject(c, "precision_at_threshold", num(mt->thr_precision[k]));
        cJSON_AddItemToObject(c, "recall_at_threshold", num(mt->thr_recall[k]));
        cJSON_AddItemToArray(classes, c);
    }
    return o;
}

static cJSON *subsets_json(const craft_config *cfg, const craft_eval_subsets *t)
{
    cJSON *a = cJSON_CreateArray();
    uint32_t all = (1u << cfg->n_modalities) - 1;
    for (int i = 0; i < t->n; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "name", t->name[i]);
        cJSON_AddItemToObject(s, "modalities", modality_names(cfg, all & ~t->off_mask[i]));
        cJSON_AddItemToObject(s, "off", modality_names(cfg, t->off_mask[i]));
        cJSON_AddItemToObject(s, "pr_auc", num(t->macro_ap[i]));
        cJSON_AddItemToObject(s, "roc_auc", num(t->macro_roc[i]));
        cJSON_AddItemToObject(s, "accuracy", num(t->accuracy[i]));
        cJSON_AddItemToArray(a, s);
    }
    return a;
}

static cJSON *noise_json(const craft_eval_noise *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seed", (double)t->seed);
    cJSON_AddStringToObject(o, "metric", t->metric);
    cJSON *f = cJSON_AddArrayToObject(o, "factors");
    for (int l = 0; l < CRAFT_NOISE_LEVELS; l++)
        cJSON_AddItemToArray(f, cJSON_CreateNumber(t->factor[l]));
    cJSON *settings = cJSON_AddArrayToObject(o, "settings");
    for (int i = 0; i < t->n; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "noised", t->name[i]);
        cJSON *v = cJSON_AddArrayToObject(s, "values");
        for (int l = 0; l < CRAFT_NOISE_LEVELS; l++)
            cJSON_AddItemToArray(v, num(t->value[i * CRAFT_NOISE_LEVELS + l]));
        cJSON_AddItemToArray(settings, s);
    }
    return o;
}

static cJSON *baselines_json(const craft_eval_baselines *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *split = cJSON_AddObjectToObject(o, "split");
    cJSON_AddNumberToObject(split, "val_fraction", b->val_fraction);
    cJSON_AddNumberToObject(split, "seed", (double)b->seed);
    cJSON_AddNumberToObject(split, "train", b->n_train);
    cJSON_AddNumberToObject(split, "test", b->n_test);
    cJSON_AddBoolToObject(split, "train_file", b->train_file);
    cJSON_AddStringToObject(o, "metric", b->metric);
    if (b->best_single >= 0)
        cJSON_AddStringToObject(o, "reference", b->row[b->best_single].name);
    else
        cJSON_AddNullToObject(o, "reference");
    cJSON *rows = cJSON_AddArrayToObject(o, "rows");
    for (int i = 0; i < b->n; i++) {
        const craft_eval_baseline_row *r = &b->row[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", r->name);
        cJSON_AddBoolToObject(j, "available", r->available);
        cJSON_AddBoolToObject(j, "single_modality", r->single_modality);
        cJSON_AddItemToObject(j, "pr_auc", num(r->macro_ap));
        cJSON_AddItemToObject(j, "accuracy", num(r->accuracy));
        cJSON_AddItemToObject(j, "ratio", num(r->ratio));
        cJSON *pc = cJSON_AddArrayToObject(j, "class_pr_auc");
        for (int k = 0; k < r->n_classes && k < 16; k++)
            cJSON_AddItemToArray(pc, num(r->class_ap[k]));
        cJSON_AddStringToObject(j, "detail", r->detail);
        cJSON_AddItemToArray(rows, j);
    }
    return o;
}

static cJSON *cmis_json(const craft_config *cfg, const craft_eval_cmis_check *t)
{
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "truth", t->truth);
    cJSON_AddNumberToObject(o, "orders", t->n_orders);
    cJSON_AddNumberToObject(o, "others", t->n_others);
    cJSON_AddNumberToObject(o, "top5_chance", t->top5_chance);
    cJSON *cells = cJSON_AddArrayToObject(o, "cells");
    for (int i = 0; i < t->n; i++) {
        const craft_eval_cmis_cell *c = &t->cell[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "class", cfg->classes[c->cls]);
        cJSON_AddStringToObject(j, "feature", tm->features[c->feature].name);
        cJSON_AddStringToObject(j, "kind", c->kind);
        cJSON_AddStringToObject(j, "modality", cfg->modalities[c->modality].name);
        cJSON_AddStringToObject(j, "population", craft_cmis_population_name(c->population));
        cJSON_AddStringToObject(j, "rule", c->rule);
        cJSON_AddNumberToObject(j, "orders", c->n_orders);
        cJSON_AddItemToObject(j, "planted_cmis", num(c->planted_mean));
        cJSON_AddItemToObject(j, "others_cmis", num(c->others_mean));
        cJSON_AddItemToObject(j, "interaction_sign_right", num(c->int_right));
        cJSON_AddItemToObject(j, "interaction_sign_chance", num(c->int_others_right));
        cJSON_AddItemToObject(j, "planted_abs_cmis", num(c->planted_abs));
        cJSON_AddItemToObject(j, "others_abs_cmis", num(c->others_abs));
        cJSON_AddItemToObject(j, "auc", num(c->auc));
        cJSON_AddItemToObject(j, "auc_abs", num(c->auc_abs));
        cJSON_AddItemToObject(j, "top5", num(c->top5));
        cJSON_AddNumberToObject(j, "interaction_orders", c->int_orders);
        cJSON_AddItemToArray(cells, j);
    }
    cJSON *sum = cJSON_AddArrayToObject(o, "summary");
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < CRAFT_CMIS_POPULATIONS; b++) {
            const craft_eval_cmis_summary *s = &t->summary[a][b];
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "kind", a ? "suppressed" : "synergistic");
            cJSON_AddStringToObject(j, "population", craft_cmis_population_name(b));
            cJSON_AddNumberToObject(j, "cells", s->cells);
            cJSON_AddNumberToObject(j, "above_chance", s->above_chance);
            cJSON_AddItemToObject(j, "mean_auc", num(s->mean_auc));
            cJSON_AddItemToObject(j, "mean_auc_abs", num(s->mean_auc_abs));
            cJSON_AddItemToObject(j, "mean_top5", num(s->mean_top5));
            cJSON_AddItemToObject(j, "mean_interaction_sign_right", num(s->mean_int_right));
            cJSON_AddItemToObject(j, "mean_interaction_sign_chance", num(s->mean_int_others));
            cJSON_AddItemToArray(sum, j);
        }
    return o;
}

void craft_eval_write_json(FILE *out, const craft_eval_report *r)
{
    const craft_config *cfg = &r->model->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "craft-eval");
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON *model = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(model, "sha256", r->model->sha256);
    cJSON_AddStringToObject(model, "task", cfg->task == CRAFT_MULTICLASS ? "multiclass" : "multilabel");
    cJSON_AddStringToObject(model, "backbone", cfg->modalities[cfg->backbone].name);
    cJSON_AddItemToObject(model, "modalities", modality_names(cfg, (1u << cfg->n_modalities) - 1));
    cJSON *classes = cJSON_AddArrayToObject(model, "classes");
    for (int k = 0; k < cfg->n_classes; k++)
        cJSON_AddItemToArray(classes, cJSON_CreateString(cfg->classes[k]));
    cJSON_AddStringToObject(o, "input", r->input ? r->input : "");
    cJSON_AddNumberToObject(o, "orders", r->metrics.n);
    cJSON_AddItemToObject(o, "metrics", metrics_json(cfg, &r->metrics));
    cJSON_AddItemToObject(o, "subsets", subsets_json(cfg, &r->subsets));
    cJSON_AddItemToObject(o, "noise", r->noise ? noise_json(r->noise) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "baselines", r->baselines ? baselines_json(r->baselines) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "cmis_check", r->cmis ? cmis_json(cfg, r->cmis) : cJSON_CreateNull());
    char *text = cJSON_Print(o);
    if (text) {
        fputs(text, out);
        fputc('\n', out);
    }
    free(text);
    cJSON_Delete(o);
}

/* ---------------------------------------------------------------- table */

/* "0.8123", or "-" where undefined. */
static const char *fmt(char *buf, double v)
{
    if (isfinite(v))
        snprintf(buf, 16, "%.4f", v);
    else
        snprintf(buf, 16, "-");
    return buf;
}

/* Small CMIS values: 3 significant digits; "-" where undefined. */
static const char *fmt_g(char *buf, double v)
{
    if (isfinite(v))
        snprintf(buf, 16, "%.3g", v);
    else
        snprintf(buf, 16, "-");
    return buf;
}

static const char *fmt3(char *buf, double v)
{
    if (isfinite(v))
        snprintf(buf, 16, "%.3f", v);
    else
        snprintf(buf, 16, "-");
    return buf;
}

static void write_cmis_table(FILE *out, const craft_config *cfg, const craft_eval_cmis_check *t)
{
    const craft_modality *tm = &cfg->modalities[cfg->tabular];
    char a[16], b[16], c[16], d[16], e[16], f[16], g[16];
    fprintf(out, "\nCMIS against the planted truth (%s; %d orders; %d features the truth does not name as the others)\n",
            t->truth, t->n_orders, t->n_others);
    fprintf(out, "  AUC: chance that the planted feature's CMIS is above (synergistic) or below (suppressed) that of\n"
                 "  an other feature of the same order, 0.5 = no better than chance; |AUC| the same for |CMIS|;\n"
                 "  top-5: share of orders where it ranks among the 5 most extreme (chance %.4f)\n",
            t->top5_chance);
    fprintf(out, "  sign: share of orders where the interaction score I = (s - s without j) - (s without m -\n"
                 "  s without j and m) of the class score s has the planted sign (+ synergistic, - suppressed),\n"
                 "  beside the same share for a sample of the other features (this cell's chance level)\n");
    fprintf(out, "  %-5s %-26s %-11s %-5s %-13s %6s %10s %10s %9s %9s %6s %6s %6s %6s %6s\n", "class", "feature", "kind",
            "mod", "orders", "n", "CMIS", "others", "|CMIS|", "others", "AUC", "|AUC|", "top-5", "sign", "chance");
    for (int i = 0; i < t->n; i++) {
        const craft_eval_cmis_cell *x = &t->cell[i];
        char h[16], i2[16];
        fprintf(out, "  %-5s %-26s %-11s %-5s %-13s %6d %10s %10s %9s %9s %6s %6s %6s %6s %6s\n", cfg->classes[x->cls],
                tm->features[x->feature].name, x->kind, cfg->modalities[x->modality].name,
                craft_cmis_population_name(x->population), x->n_orders,
                fmt_g(a, x->planted_mean), fmt_g(b, x->others_mean), fmt_g(c, x->planted_abs), fmt_g(d, x->others_abs),
                fmt3(e, x->auc), fmt3(f, x->auc_abs), fmt3(g, x->top5), fmt3(h, x->int_right),
                fmt3(i2, x->int_others_right));
    }
    fprintf(out, "  summary: cells with AUC > 0.5, mean AUC, mean |AUC|, mean top-5, mean sign share "
                 "(planted / chance)\n");
    for (int k = 0; k < 2; k++)
        for (int p = 0; p < CRAFT_CMIS_POPULATIONS; p++) {
            const craft_eval_cmis_summary *s = &t->summary[k][p];
            fprintf(out, "    %-11s on %-13s  %d of %d   %s   %s   %s   %s / %s\n", k ? "suppressed" : "synergistic",
                    craft_cmis_population_name(p), s->above_chance, s->cells, fmt3(a, s->mean_auc),
                    fmt3(b, s->mean_auc_abs), fmt3(c, s->mean_top5), fmt3(d, s->mean_int_right),
                    fmt3(e, s->mean_int_others));
        }
}

void craft_eval_write_table(FILE *out, const craft_eval_report *r)
{
    const craft_config *cfg = &r->model->cfg;
    const craft_eval_metrics *mt = &r->metrics;
    char a[16], b[16], c[16], d[16], e[16];
    fprintf(out, "Model %.16s… (%s, backbone %s), %d orders from %s\n\n", r->model->sha256,
            cfg->task == CRAFT_MULTICLASS ? "multiclass" : "multilabel", cfg->modalities[cfg->backbone].name, mt->n,
            r->input ? r->input : "?");
    fprintf(out, "Per class (threshold: lowest score with precision >= %.2f)\n", mt->target_precision);
    fprintf(out, "  %-16s %8s %8s %8s %8s %10s %10s %8s\n", "class", "labelled", "positive", "PR-AUC", "ROC-AUC",
            "threshold", "precision", "recall");
    for (int k = 0; k < mt->K; k++)
        fprintf(out, "  %-16s %8d %8d %8s %8s %10s %10s %8s\n", cfg->classes[k], mt->n_known[k], mt->n_pos[k],
                fmt(a, mt->ap[k]), fmt(b, mt->roc[k]), fmt(c, mt->thr[k]), fmt(d, mt->thr_precision[k]),
                fmt(e, mt->thr_recall[k]));
    fprintf(out, "  %-16s %8s %8s %8s %8s\n", "macro", "", "", fmt(a, mt->macro_ap), fmt(b, mt->macro_roc));
    if (cfg->task == CRAFT_MULTICLASS)
        fprintf(out, "Accuracy %s   macro-F1 %s\n", fmt(a, mt->accuracy), fmt(b, mt->macro_f1));
    fprintf(out, "Calibration error (ECE, %d equal-width bins, %s): %s\n", CRAFT_ECE_BINS,
            cfg->task == CRAFT_MULTICLASS ? "top-class confidence" : "every labelled order and class",
            fmt(a, mt->ece));
    fprintf(out, "  (\"-\": undefined, e.g. a class without positives; left out of the macro means)\n\n");

    fprintf(out, "Modality subsets (one model, auxiliaries switched off)\n");
    fprintf(out, "  %-28s %8s %8s%s\n", "subset", "PR-AUC", "ROC-AUC", cfg->task == CRAFT_MULTICLASS ? "  accuracy" : "");
    for (int i = 0; i < r->subsets.n; i++) {
        fprintf(out, "  %-28s %8s %8s", r->subsets.name[i], fmt(a, r->subsets.macro_ap[i]),
                fmt(b, r->subsets.macro_roc[i]));
        if (cfg->task == CRAFT_MULTICLASS)
            fprintf(out, "  %8s", fmt(c, r->subsets.accuracy[i]));
        fputc('\n', out);
    }
    if (r->noise) {
        const craft_eval_noise *t = r->noise;
        fprintf(out, "\nRobustness to Gaussian noise (%s; noise = factor x N(mean, sd^2) of the modality; seed %llu)\n",
                t->metric, (unsigned long long)t->seed);
        fprintf(out, "  %-8s", "noised");
        for (int l = 0; l < CRAFT_NOISE_LEVELS; l++)
            fprintf(out, " %7.1f", t->factor[l]);
        fputc('\n', out);
        for (int i = 0; i < t->n; i++) {
            fprintf(out, "  %-8s", t->name[i]);
            for (int l = 0; l < CRAFT_NOISE_LEVELS; l++) {
                double v = t->value[i * CRAFT_NOISE_LEVELS + l];
                if (isfinite(v))
                    fprintf(out, " %7.4f", v);
                else
                    fprintf(out, " %7s", "-");
            }
            fputc('\n', out);
        }
    }
    if (r->baselines) {
        const craft_eval_baselines *bl = r->baselines;
        if (bl->train_file)
            fprintf(out, "\nBaselines (trained on the %d orders of the --train file, scored on the %d evaluated orders)\n",
                    bl->n_train, bl->n_test);
        else
            fprintf(out, "\nBaselines (trained on %d orders, scored on %d held out: hash of order_id < %.2f, seed %llu)\n",
                    bl->n_train, bl->n_test, bl->val_fraction, (unsigned long long)bl->seed);
        fprintf(out, "  ratio = %s / that of the best single-modality model (%s)\n", bl->metric,
                bl->best_single >= 0 ? bl->row[bl->best_single].name : "none");
        fprintf(out, "  %-28s %8s %8s %7s  %s\n", "model", "PR-AUC", cfg->task == CRAFT_MULTICLASS ? "accuracy" : "",
                "ratio", "notes");
        for (int i = 0; i < bl->n; i++) {
            const craft_eval_baseline_row *row = &bl->row[i];
            fprintf(out, "  %-28s %8s %8s %7s  %s\n", row->name, fmt(a, row->macro_ap),
                    cfg->task == CRAFT_MULTICLASS ? fmt(b, row->accuracy) : "", fmt(c, row->ratio), row->detail);
        }
    }
    if (r->cmis)
        write_cmis_table(out, cfg, r->cmis);
}
