/* eval_metrics.c: the numbers of an evaluation (docs/EVAL.md defines each).
 * PR-AUC and ROC-AUC are the engine's (engine/metrics.h); this file adds the
 * rest: accuracy, macro-F1, calibration and thresholds.
 * A metric that needs positives (or negatives) a class does not have is NaN,
 * "undefined", and left out of the macro means: never counted as 0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "metrics.h"

typedef struct {
    float s;
    int y;
} scored;

static int by_score_desc(const void *a, const void *b)
{
    float x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x < y) - (x > y);
}

/* The rows with a known label, sorted by score, highest first. */
static scored *gather(const float *score, const float *label, int n, int stride, int *n_out, int *n_pos)
{
    scored *v = malloc(sizeof *v * (size_t)(n > 0 ? n : 1));
    int c = 0, pos = 0;
    if (!v)
        return NULL;
    for (int i = 0; i < n; i++) {
        float y = label[(size_t)i * stride];
        if (isnan(y))
            continue;
        v[c].s = score[(size_t)i * stride];
        v[c].y = y > 0.5f;
        pos += v[c].y;
        c++;
    }
    qsort(v, (size_t)c, sizeof *v, by_score_desc);
    *n_out = c;
    *n_pos = pos;
    return v;
}

double craft_eval_threshold_at_precision(const float *score, const float *label, int n, int stride, double target,
                                         double *precision, double *recall)
{
    int c, P;
    scored *v = gather(score, label, n, stride, &c, &P);
    double thr = NAN, prec = NAN, rec = NAN, tp = 0, fp = 0;
    if (v && P > 0) {
        /* Walking thresholds downwards recall only grows: the lowest threshold that
         * still meets the target has the best recall among those that do. */
        for (int i = 0; i < c;) {
            int j = i;
            for (; j < c && v[j].s == v[i].s; j++)
                v[j].y ? tp++ : fp++;
            if (tp / (tp + fp) >= target) {
                thr = v[i].s;
                prec = tp / (tp + fp);
                rec = tp / P;
            }
            i = j;
        }
    }
    free(v);
    if (precision)
        *precision = prec;
    if (recall)
        *recall = rec;
    return thr;
}

static int argmax(const float *x, int K)
{
    int best = 0;
    for (int k = 1; k < K; k++)
        if (x[k] > x[best])
            best = k;
    return best;
}

/* The true class of a multiclass row, -1 when unknown. */
static int true_class(const float *y, int K)
{
    for (int k = 0; k < K; k++)
        if (isnan(y[k]))
            return -1;
    for (int k = 0; k < K; k++)
        if (y[k] > 0.5f)
            return k;
    return -1;
}

double craft_eval_accuracy(int n, int K, const float *scores, const float *labels)
{
    int known = 0, right = 0;
    for (int i = 0; i < n; i++) {
        int t = true_class(labels + (size_t)i * K, K);
        if (t < 0)
            continue;
        known++;
        right += argmax(scores + (size_t)i * K, K) == t;
    }
    return known ? (double)right / known : NAN;
}

double craft_eval_macro_f1(int n, int K, const float *scores, const float *labels)
{
    int *tp = calloc((size_t)K * 3, sizeof(int));
    if (!tp)
        return NAN;
    int *fp = tp + K, *fn = tp + 2 * K;
    for (int i = 0; i < n; i++) {
        int t = true_class(labels + (size_t)i * K, K);
        if (t < 0)
            continue;
        int p = argmax(scores + (size_t)i * K, K);
        if (p == t)
            tp[t]++;
        else
            fp[p]++, fn[t]++;
    }
    double sum = 0;
    int defined = 0;
    for (int k = 0; k < K; k++) {
        int den = 2 * tp[k] + fp[k] + fn[k];
        if (den == 0) /* never true, never predicted: F1 is undefined */
            continue;
        sum += 2.0 * tp[k] / den;
        defined++;
    }
    free(tp);
    return defined ? sum / defined : NAN;
}

double craft_eval_ece(int task, int n, int K, const float *scores, const float *labels, int bins)
{
    double *acc = calloc((size_t)bins * 3, sizeof(double));
    if (!acc || bins < 1) {
        free(acc);
        return NAN;
    }
    double *conf = acc + bins, *count = acc + 2 * bins, total = 0;
    for (int i = 0; i < n; i++) {
        const float *p = scores + (size_t)i * K, *y = labels + (size_t)i * K;
        int first = 0, last = K;
        double pi = 0, yi = 0;
        if (task == CRAFT_MULTICLASS) {
            int t = true_class(y, K);
            if (t < 0)
                continue;
            int top = argmax(p, K);
            pi = p[top], yi = top == t;
            last = 1; /* one pair per order: the top class */
        }
        for (int k = first; k < last; k++) {
            if (task != CRAFT_MULTICLASS) {
                if (isnan(y[k]))
                    continue;
                pi = p[k], yi = y[k] > 0.5f;
            }
            int b = (int)(pi * bins);
            b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
            acc[b] += yi, conf[b] += pi, count[b] += 1, total += 1;
        }
    }
    double ece = 0;
    for (int b = 0; b < bins; b++)
        if (count[b] > 0)
            ece += count[b] / total * fabs(acc[b] / count[b] - conf[b] / count[b]);
    free(acc);
    return total > 0 ? ece : NAN;
}

void craft_eval_metrics_free(craft_eval_metrics *mt)
{
    free(mt->n_known);
    free(mt->ap);
    memset(mt, 0, sizeof *mt);
}

int craft_eval_metrics_compute(craft_eval_metrics *out, int task, int n, int K, const float *scores,
                               const float *labels, double target_precision, craft_error *err)
{
    memset(out, 0, sizeof *out);
    out->task = task, out->K = K, out->n = n;
    out->target_precision = target_precision;
    out->n_known = calloc((size_t)K * 2, sizeof(int));
    out->ap = calloc((size_t)K * 5, sizeof(double));
    if (!out->n_known || !out->ap) {
        craft_eval_metrics_free(out);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for the metrics of %d classes", K);
    }
    out->n_pos = out->n_known + K;
    out->roc = out->ap + K;
    out->thr = out->ap + 2 * K;
    out->thr_precision = out->ap + 3 * K;
    out->thr_recall = out->ap + 4 * K;
    double sum_ap = 0, sum_roc = 0;
    int def_ap = 0, def_roc = 0;
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < n; i++) {
            float y = labels[(size_t)i * K + k];
            if (!isnan(y)) {
                out->n_known[k]++;
                out->n_pos[k] += y > 0.5f;
            }
        }
        out->ap[k] = craft_pr_auc(scores + k, labels + k, n, K);
        out->roc[k] = craft_roc_auc(scores + k, labels + k, n, K);
        out->thr[k] = craft_eval_threshold_at_precision(scores + k, labels + k, n, K, target_precision,
                                                        &out->thr_precision[k], &out->thr_recall[k]);
        if (!isnan(out->ap[k]))
            sum_ap += out->ap[k], def_ap++;
        if (!isnan(out->roc[k]))
            sum_roc += out->roc[k], def_roc++;
    }
    out->macro_ap = def_ap ? sum_ap / def_ap : NAN;
    out->macro_roc = def_roc ? sum_roc / def_roc : NAN;
    out->accuracy = task == CRAFT_MULTICLASS ? craft_eval_accuracy(n, K, scores, labels) : NAN;
    out->macro_f1 = task == CRAFT_MULTICLASS ? craft_eval_macro_f1(n, K, scores, labels) : NAN;
    out->ece = craft_eval_ece(task, n, K, scores, labels, CRAFT_ECE_BINS);
    return CRAFT_OK;
}
