/* metrics.h: ranking metrics of scores against 0/1 labels (plain C, no allocation
 * beyond a sort buffer). Labels may be NaN (unknown): those rows are skipped.
 * A metric that is undefined (no positives, or no negatives for ROC-AUC) is NaN. */
#ifndef CRAFT_METRICS_H
#define CRAFT_METRICS_H

/* PR-AUC as average precision: sum over positives of the precision at their rank,
 * divided by the number of positives; tied scores form one threshold (the step
 * interpolation of scikit-learn's average_precision_score).
 * score[i*stride], label[i*stride] for i < n. */
double craft_pr_auc(const float *score, const float *label, int n, int stride);
/* ROC-AUC: the probability that a random positive outranks a random negative,
 * ties counting one half (Mann-Whitney). */
double craft_roc_auc(const float *score, const float *label, int n, int stride);
/* Means over the K classes of scores [n, K] and labels [n, K] where the metric is
 * defined; NaN when no class has one. */
double craft_macro_pr_auc(const float *scores, const float *labels, int n, int K);
double craft_macro_roc_auc(const float *scores, const float *labels, int n, int K);

#endif
