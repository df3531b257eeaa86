/* report_rationale.c: the plain-language rationale. Each template is one sentence
 * about one piece of structured evidence, and every number in it is printed by the
 * same formatter as the table or caption that shows it, so a reader can find it. */
#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void craft_report_subset_label(const craft_report_model *m, uint32_t off, char *buf, size_t n)
{
    uint32_t bb_off = 0;
    for (int i = 0; i < m->n_modalities; i++)
        if (i != m->backbone)
            bb_off |= 1u << i;
    if (off == 0) {
        snprintf(buf, n, "full model");
        return;
    }
    if (off == bb_off) {
        snprintf(buf, n, "backbone only");
        return;
    }
    snprintf(buf, n, "without ");
    int first = 1;
    for (int i = 0; i < m->n_modalities; i++)
        if (off & (1u << i)) {
            size_t len = strlen(buf);
            snprintf(buf + len, n - len, "%s%s", first ? "" : "+", m->modalities[i]);
            first = 0;
        }
}

int craft_report_space_place(const craft_report_space *sp, const craft_report_case *c, int k, float *x, float *y,
                             int64_t *rank, int64_t *of)
{
    const craft_order_detail *d = &c->detail;
    if (k < 0 || k >= CRAFT_STORE_MAX_CLASSES || d->n_predictions == 0 || c->backbone_only < 0)
        return 0;
    *y = d->predictions[0].scores[k];
    *x = d->predictions[c->backbone_only].scores[k];
    if (isnan(*x) || isnan(*y))
        return 0;
    int64_t above = 0, n = 0;
    for (int64_t i = 0; sp && k < sp->n_classes && i < sp->n; i++) {
        float v = sp->y[i * sp->n_classes + k];
        if (isnan(v))
            continue;
        n++;
        above += v > *y;
    }
    *rank = above + 1;
    *of = n;
    return 1;
}

typedef struct {
    char **s;
    int n, cap;
    int failed;
} sentences;

static void say(sentences *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(sentences *out, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (out->n == out->cap) {
        int cap = out->cap ? out->cap * 2 : 16;
        char **v = realloc(out->s, sizeof(char *) * cap);
        if (!v) {
            out->failed = 1;
            return;
        }
        out->s = v;
        out->cap = cap;
    }
    char *copy = strdup(buf);
    if (!copy) {
        out->failed = 1;
        return;
    }
    out->s[out->n++] = copy;
}

/* The score and its threshold, the backbone against the full model, and the one
 * auxiliary whose removal moves the top class most. */
static void score_sentences(sentences *out, const craft_report_case *c, const craft_report_model *m)
{
    const craft_order_detail *d = &c->detail;
    int k = c->top_class;
    const char *cls = m->classes[k];
    char a[32], b[32], delta[32];
    float full = d->predictions[0].scores[k];
    craft_report_fmt_score(a, sizeof a, full);
    if (!isnan(m->thresholds[k])) {
        craft_report_fmt_score(b, sizeof b, m->thresholds[k]);
        say(out, "The full model's highest score is %s for class %s, %s its flag threshold of %s.", a, cls,
            full >= m->thresholds[k] ? "at or above" : "below", b);
    } else {
        say(out, "The full model's highest score is %s for class %s.", a, cls);
    }
    if (c->backbone_only > 0) {
        float bb = d->predictions[c->backbone_only].scores[k];
        craft_report_fmt_score(b, sizeof b, bb);
        craft_report_fmt_signed(delta, sizeof delta, full - bb);
        say(out, "With the %s backbone alone the %s score is %s, so the other modalities change it by %s.",
            m->modalities[m->backbone], cls, b, delta);
    }
    /* the single auxiliary that matters most for this class */
    int best = -1;
    float best_delta = 0;
    for (int i = 1; i < d->n_predictions; i++) {
        uint32_t off = d->predictions[i].off;
        if (off == 0 || (off & (off - 1)) != 0 || i == c->backbone_only)
            continue; /* not exactly one auxiliary off */
        float dv = d->predictions[i].scores[k] - full;
        if (!isnan(dv) && (best < 0 || fabsf(dv) > fabsf(best_delta))) {
            best = i;
            best_delta = dv;
        }
    }
    if (best > 0) {
        char label[128];
        craft_report_subset_label(m, d->predictions[best].off, label, sizeof label);
        craft_report_fmt_score(b, sizeof b, d->predictions[best].scores[k]);
        craft_report_fmt_signed(delta, sizeof delta, best_delta);
        if (fabsf(best_delta) < 0.00005f)
            say(out, "Switching off any single auxiliary modality leaves the %s score at %s (%s: %s).", cls, a, label, b);
        else
            say(out, "Of the single modalities, switching one off moves the %s score most %s: from %s to %s (%s).",
                cls, label, a, b, delta);
    }
}

static void gate_sentence(sentences *out, const craft_report_case *c)
{
    const craft_explanation *e = &c->detail.explanation;
    if (!c->detail.has_explanation || !e->fuse_gate || e->n_aux == 0)
        return;
    char buf[768] = "", v[32];
    int shown = 0;
    for (int a = 0; a < e->n_aux; a++) {
        if (isnan(e->fuse_gate[a]))
            continue;
        craft_report_fmt_score(v, sizeof v, e->fuse_gate[a]);
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof buf - len, "%s%s at %s", shown ? " and " : "", e->aux_names[a], v);
        shown++;
    }
    if (shown)
        say(out, "The fusion gates weight %s.", buf);
    else
        say(out, "No auxiliary modality was available, so the prediction rests on the backbone alone.");
}

static void feature_sentences(sentences *out, const craft_report_case *c, const craft_report_model *m)
{
    const craft_explanation *e = &c->detail.explanation;
    char a[32], b[32];
    if (c->n_key > 0) {
        craft_report_fmt_score(a, sizeof a, c->key[0].importance);
        say(out, "The pooling attends most to %s (value %s), with importance %s.", c->key[0].name, c->key[0].value, a);
    }
    if (c->n_synergistic > 0) {
        const craft_report_feature *f = &c->synergistic[0];
        craft_report_fmt_signed(a, sizeof a, f->cmis);
        say(out, "The strongest synergy: %s amplifies %s (value %s), CMIS %s.", e->aux_names[f->aux], f->name, f->value,
            a);
    }
    if (c->n_suppressed > 0) {
        const craft_report_feature *f = &c->suppressed[0];
        craft_report_fmt_signed(a, sizeof a, f->cmis);
        say(out, "The strongest suppression: %s damps %s (value %s), CMIS %s.", e->aux_names[f->aux], f->name, f->value,
            a);
    }
    if (c->n_self_sufficient > 0) {
        const craft_report_feature *f = &c->self_sufficient[0];
        craft_report_fmt_score(a, sizeof a, f->importance);
        craft_report_fmt_score(b, sizeof b, f->max_abs_cmis);
        say(out, "%s (value %s) is self-sufficient: importance %s while its largest |CMIS| is only %s.", f->name,
            f->value, a, b);
    }
    if (c->n_drops > 0) {
        const char *cls = m->classes[c->top_class];
        /* the largest positive drop among those shown, else the largest change */
        int best = 0;
        for (int i = 0; i < c->n_drops; i++)
            if (c->drops[i].drop > c->drops[best].drop)
                best = i;
        const craft_report_drop *dr = &c->drops[best];
        if (dr->drop > 0) {
            craft_report_fmt_score(a, sizeof a, dr->drop);
            say(out, "Setting %s (value %s) missing lowers the %s score by %s, the largest drop of any feature.",
                dr->name, dr->value, cls, a);
        } else {
            craft_report_fmt_signed(a, sizeof a, c->drops[0].drop);
            say(out, "No single feature set missing lowers the %s score; the largest change is %s for %s.", cls, a,
                c->drops[0].name);
        }
    }
}

static void space_sentence(sentences *out, const craft_report_case *c, const craft_report_model *m,
                           const craft_report_space *sp)
{
    float x, y;
    int64_t rank, of;
    if (!craft_report_space_place(sp, c, c->top_class, &x, &y, &rank, &of) || of == 0)
        return;
    say(out, "In the score space of %s its full-model score ranks %lld of %lld scored orders.", m->classes[c->top_class],
        (long long)rank, (long long)of);
}

static void decision_sentence(sentences *out, const craft_report_case *c)
{
    const craft_order_detail *d = &c->detail;
    if (!d->has_case) {
        say(out, "The order has no case in the review queue.");
        return;
    }
    const craft_case *k = &d->kase;
    /* who set the current status, and when: the last status row of the audit trail */
    const craft_audit_entry *last = NULL;
    for (int i = 0; i < c->n_audit; i++)
        if (c->audit[i].action && strcmp(c->audit[i].action, "status") == 0)
            last = &c->audit[i];
    char when[64];
    if (k->status == CRAFT_CASE_NEW || !last) {
        craft_report_fmt_time(when, sizeof when, k->created);
        say(out, "Case %lld has no decision yet: it is %s since %s.", (long long)k->id, craft_case_status_label(k->status),
            when);
        return;
    }
    craft_report_fmt_time(when, sizeof when, last->at);
    if (k->decided_classes && *k->decided_classes)
        say(out, "Case %lld was marked %s (%s) by %s on %s.", (long long)k->id, craft_case_status_label(k->status),
            k->decided_classes, last->actor, when);
    else
        say(out, "Case %lld was marked %s by %s on %s.", (long long)k->id, craft_case_status_label(k->status),
            last->actor, when);
}

int craft_report_rationale(craft_report_case *c, const craft_report_model *m, const craft_report_space *sp,
                           craft_error *err)
{
    for (int i = 0; i < c->n_rationale; i++)
        free(c->rationale[i]);
    free(c->rationale);
    c->rationale = NULL;
    c->n_rationale = 0;
    sentences out = {0};
    if (c->top_class < 0 || c->top_class >= m->n_classes) {
        say(&out, "The model has not scored this order, so there is no evidence to explain.");
    } else {
        score_sentences(&out, c, m);
        gate_sentence(&out, c);
        feature_sentences(&out, c, m);
        space_sentence(&out, c, m, sp);
    }
    decision_sentence(&out, c);
    if (out.failed) {
        for (int i = 0; i < out.n; i++)
            free(out.s[i]);
        free(out.s);
        return craft_fail(err, CRAFT_ENOMEM, "out of memory writing the rationale");
    }
    c->rationale = out.s;
    c->n_rationale = out.n;
    return CRAFT_OK;
}
