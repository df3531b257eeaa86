/* metrics.c: PR-AUC (average precision) and ROC-AUC with tie handling. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

typedef struct { float s; float y; } scored;

static int by_score_desc(const void *a, const void *b)
{
    float x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x < y) - (x > y);
}

/* The known rows sorted by descending score; *npos positives. NULL when none or no memory. */
static scored *sorted_known(const float *score, const float *label, int n, int stride, int *count, int *npos)
{
    *count = *npos = 0;
    scored *v = malloc(sizeof(scored) * (size_t)(n > 0 ? n : 1));
    if (!v)
        return NULL;
    for (int i = 0; i < n; i++) {
        float y = label[(size_t)i * stride], s = score[(size_t)i * stride];
        if (isnan(y) || isnan(s))
            continue;
        v[*count].s = s;
        v[*count].y = y > 0.5f ? 1.0f : 0.0f;
        *npos += y > 0.5f;
        (*count)++;
    }
    qsort(v, (size_t)*count, sizeof *v, by_score_desc);
    return v;
}

double craft_pr_auc(const float *score, const float *label, int n, int stride)
{
    int cnt, npos;
    scored *v = sorted_known(score, label, n, stride, &cnt, &npos);
    if (!v || npos == 0) {
        free(v);
        return NAN;
    }
    /* Walk the thresholds (groups of equal scores): AP = sum (R_t - R_{t-1}) P_t. */
    double ap = 0.0;
    long tp = 0, seen = 0;
    for (int i = 0; i < cnt;) {
        int j = i;
        long gpos = 0;
        while (j < cnt && v[j].s == v[i].s) {
            gpos += v[j].y > 0.5f;
            j++;
        }
        tp += gpos;
        seen += j - i;
        ap += (double)gpos / npos * ((double)tp / seen);
        i = j;
    }
    free(v);
    return ap;
}

double craft_roc_auc(const float *score, const float *label, int n, int stride)
{
    int cnt, npos;
    scored *v = sorted_known(score, label, n, stride, &cnt, &npos);
    const long nneg = cnt - npos;
    if (!v || npos == 0 || nneg == 0) {
        free(v);
        return NAN;
    }
    /* Count, for each negative, the positives above it (ties: one half). */
    double wins = 0.0;
    long pos_above = 0;
    for (int i = 0; i < cnt;) {
        int j = i;
        long gpos = 0, gneg = 0;
        while (j < cnt && v[j].s == v[i].s) {
            if (v[j].y > 0.5f)
                gpos++;
            else
                gneg++;
            j++;
        }
        wins += (double)gneg * (pos_above + 0.5 * gpos);
        pos_above += gpos;
        i = j;
    }
    free(v);
    return wins / ((double)npos * nneg);
}

static double macro(double (*metric)(const float *, const float *, int, int), const float *scores,
                    const float *labels, int n, int K)
{
    double s = 0.0;
    int defined = 0;
    for (int k = 0; k < K; k++) {
        double v = metric(scores + k, labels + k, n, K);
        if (!isnan(v)) {
            s += v;
            defined++;
        }
    }
    return defined ? s / defined : NAN;
}

double craft_macro_pr_auc(const float *scores, const float *labels, int n, int K)
{
    return macro(craft_pr_auc, scores, labels, n, K);
}

double craft_macro_roc_auc(const float *scores, const float *labels, int n, int K)
{
    return macro(craft_roc_auc, scores, labels, n, K);
}
