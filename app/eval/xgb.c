/* xgb.c: the XGBoost baseline through libxgboost's C API. Optional: a build
 * without libxgboost-dev reports the baseline as unavailable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"

#ifdef CRAFT_HAVE_XGBOOST
#include <xgboost/c_api.h>

int craft_xgb_available(void) { return 1; }

static int xgb_fail(craft_error *err, const char *what)
{
    return craft_fail(err, CRAFT_EUNSUPPORTED, "XGBoost: %s: %s", what, XGBGetLastError());
}

/* Trains one booster on (X, y) and predicts Xte; out gets nte * width values. */
static int fit_one(const float *X, const float *y, int n, int dim, const float *Xte, int nte, const char *objective,
                   int num_class, const craft_xgb_options *o, float *out, size_t width, craft_error *err)
{
    DMatrixHandle dtr = NULL, dte = NULL;
    BoosterHandle bst = NULL;
    int rc = CRAFT_OK;
    char buf[32];
    if (XGDMatrixCreateFromMat(X, (bst_ulong)n, (bst_ulong)dim, NAN, &dtr) ||
        XGDMatrixSetFloatInfo(dtr, "label", y, (bst_ulong)n) ||
        XGDMatrixCreateFromMat(Xte, (bst_ulong)nte, (bst_ulong)dim, NAN, &dte)) {
        rc = xgb_fail(err, "building the data matrices");
        goto done;
    }
    if (XGBoosterCreate(&dtr, 1, &bst)) {
        rc = xgb_fail(err, "creating a booster");
        goto done;
    }
    int bad = XGBoosterSetParam(bst, "objective", objective);
    snprintf(buf, sizeof buf, "%d", o->max_depth);
    bad |= XGBoosterSetParam(bst, "max_depth", buf);
    snprintf(buf, sizeof buf, "%g", o->eta);
    bad |= XGBoosterSetParam(bst, "eta", buf);
    snprintf(buf, sizeof buf, "%d", o->threads > 0 ? o->threads : 0);
    bad |= XGBoosterSetParam(bst, "nthread", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)(o->seed & 0x7fffffff));
    bad |= XGBoosterSetParam(bst, "seed", buf);
    bad |= XGBoosterSetParam(bst, "verbosity", "0");
    bad |= XGBoosterSetParam(bst, "tree_method", "hist");
    if (num_class > 1) {
        snprintf(buf, sizeof buf, "%d", num_class);
        bad |= XGBoosterSetParam(bst, "num_class", buf);
    }
    if (bad) {
        rc = xgb_fail(err, "setting parameters");
        goto done;
    }
    for (int it = 0; it < o->rounds; it++)
        if (XGBoosterUpdateOneIter(bst, it, dtr)) {
            rc = xgb_fail(err, "training");
            goto done;
        }
    bst_ulong len = 0;
    const float *pred = NULL;
    if (XGBoosterPredict(bst, dte, 0, 0, 0, &len, &pred)) {
        rc = xgb_fail(err, "predicting");
        goto done;
    }
    if (len != (bst_ulong)nte * width) {
        rc = craft_fail(err, CRAFT_EUNSUPPORTED, "XGBoost: %llu predictions for %d rows of %zu", (unsigned long long)len,
                        nte, width);
        goto done;
    }
    memcpy(out, pred, sizeof(float) * (size_t)len);
done:
    if (bst)
        XGBoosterFree(bst);
    if (dtr)
        XGDMatrixFree(dtr);
    if (dte)
        XGDMatrixFree(dte);
    return rc;
}

int craft_xgb_fit_predict(int task, int K, int dim, const float *Xtr, const float *Ytr, int ntr, const float *Xte,
                          int nte, const craft_xgb_options *o, float *P, char *detail, size_t detail_len,
                          craft_error *err)
{
    int major = 0, minor = 0, patch = 0;
    XGBoostVersion(&major, &minor, &patch);
    if (detail)
        snprintf(detail, detail_len, "libxgboost %d.%d.%d, %d rounds, depth %d, eta %g", major, minor, patch,
                 o->rounds, o->max_depth, o->eta);
    float *X = malloc(sizeof(float) * ((size_t)ntr * dim + 1));
    float *y = malloc(sizeof(float) * ((size_t)ntr + 1));
    float *col = malloc(sizeof(float) * ((size_t)nte + 1));
    int rc = CRAFT_OK;
    if (!X || !y || !col) {
        rc = craft_fail(err, CRAFT_ENOMEM, "out of memory for XGBoost's training data");
        goto done;
    }
    if (task == CRAFT_MULTICLASS) {
        /* one softmax booster over the orders whose class is known */
        int n = 0;
        for (int i = 0; i < ntr; i++) {
            const float *yi = Ytr + (size_t)i * K;
            int t = -1, unknown = 0;
            for (int k = 0; k < K; k++) {
                unknown |= isnan(yi[k]);
                if (!isnan(yi[k]) && yi[k] > 0.5f && t < 0)
                    t = k;
            }
            if (unknown || t < 0)
                continue;
            memcpy(X + (size_t)n * dim, Xtr + (size_t)i * dim, sizeof(float) * dim);
            y[n++] = (float)t;
        }
        if (n == 0) {
            rc = craft_fail(err, CRAFT_EINPUT, "XGBoost: no labelled training orders");
            goto done;
        }
        rc = fit_one(X, y, n, dim, Xte, nte, "multi:softprob", K, o, P, (size_t)K, err);
        goto done;
    }
    /* multilabel: one binary booster per class over the orders that know it */
    for (int k = 0; !rc && k < K; k++) {
        int n = 0, pos = 0;
        for (int i = 0; i < ntr; i++) {
            float yk = Ytr[(size_t)i * K + k];
            if (isnan(yk))
                continue;
            memcpy(X + (size_t)n * dim, Xtr + (size_t)i * dim, sizeof(float) * dim);
            y[n] = yk > 0.5f;
            pos += y[n] > 0;
            n++;
        }
        if (n == 0 || pos == 0 || pos == n) {
            /* one label value only: the best a model can say is its rate */
            float rate = n ? (float)pos / n : 0.5f;
            for (int i = 0; i < nte; i++)
                P[(size_t)i * K + k] = rate;
            continue;
        }
        rc = fit_one(X, y, n, dim, Xte, nte, "binary:logistic", 1, o, col, 1, err);
        for (int i = 0; !rc && i < nte; i++)
            P[(size_t)i * K + k] = col[i];
    }
done:
    free(X), free(y), free(col);
    return rc;
}

#else

int craft_xgb_available(void) { return 0; }

int craft_xgb_fit_predict(int task, int K, int dim, const float *Xtr, const float *Ytr, int ntr, const float *Xte,
                          int nte, const craft_xgb_options *o, float *P, char *detail, size_t detail_len,
                          craft_error *err)
{
    (void)task, (void)K, (void)dim, (void)Xtr, (void)Ytr, (void)ntr, (void)Xte, (void)nte, (void)o, (void)P;
    if (detail)
        snprintf(detail, detail_len, "unavailable: this build has no libxgboost (install libxgboost-dev)");
    return craft_fail(err, CRAFT_EUNSUPPORTED, "XGBoost is unavailable: this build has no libxgboost");
}

#endif
