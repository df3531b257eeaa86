/* report_text.c: the report as JSON (stable keys, docs/REPORTS.md) and Markdown,
 * and the queue as CSV (RFC 4180). Order and note text is escaped for each format,
 * never interpreted. */
#include "report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scoring.h"

/* ----------------------------------------------------------------- JSON */

static void j_str(FILE *f, const char *s)
{
    if (s)
        craft_json_string(f, s);
    else
        fputs("null", f);
}

/* Nine significant digits: a float32 reads back exactly. */
static void j_float(FILE *f, float v)
{
    if (!isfinite(v))
        fputs("null", f);
    else
        fprintf(f, "%.9g", v);
}

static void j_time(FILE *f, double t)
{
    if (!(t > 0)) {
        fputs("null", f);
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    char buf[40];
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
    fputs(buf, f);
}

/* A stored JSON value (audit before/after, metrics) as JSON; text that does not
 * parse is written as a string, so the output stays valid whatever was stored. */
static void j_raw(FILE *f, const char *json)
{
    cJSON *v = json ? cJSON_ParseWithOpts(json, NULL, 1) : NULL; /* all of it, or it is text */
    char *p = v ? cJSON_PrintUnformatted(v) : NULL;
    if (p)
        fputs(p, f);
    else
        j_str(f, json);
    cJSON_free(p);
    cJSON_Delete(v);
}

static void j_kv(FILE *f, const craft_kv *kv)
{
    fputc('{', f);
    for (int i = 0; i < kv->n; i++) {
        fputs(i ? ", " : "", f);
        craft_json_string(f, kv->keys[i]);
        fputs(": ", f);
        j_str(f, kv->values[i]);
    }
    fputc('}', f);
}

static void j_feature_list(FILE *f, const char *key, const craft_report_feature *v, int n,
                           const craft_explanation *e)
{
    fprintf(f, ",\n   \"%s\": [", key);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", " : "", f);
        fputs("{\"feature\": ", f);
        j_str(f, v[i].name);
        fputs(", \"value\": ", f);
        j_str(f, v[i].value);
        fputs(", \"importance\": ", f);
        j_float(f, v[i].importance);
        fputs(", \"max_abs_cmis\": ", f);
        j_float(f, v[i].max_abs_cmis);
        if (v[i].aux >= 0) {
            fputs(", \"modality\": ", f);
            j_str(f, e->aux_names[v[i].aux]);
            fputs(", \"cmis\": ", f);
            j_float(f, v[i].cmis);
        }
        fputc('}', f);
    }
    fputc(']', f);
}

static void j_case_record(FILE *f, const craft_case *k)
{
    fputs("{\"id\": ", f);
    fprintf(f, "%lld, \"status\": ", (long long)k->id);
    j_str(f, craft_case_status_name(k->status));
    fputs(", \"status_label\": ", f);
    j_str(f, craft_case_status_label(k->status));
    fputs(", \"assignee\": ", f);
    j_str(f, k->assignee);
    fprintf(f, ", \"priority\": %d, \"decided_classes\": ", k->priority);
    j_str(f, k->decided_classes);
    fputs(", \"top_score\": ", f);
    j_float(f, k->top_score);
    fputs(", \"created\": ", f);
    j_time(f, k->created);
    fputs(", \"updated\": ", f);
    j_time(f, k->updated);
    fputc('}', f);
}

static void j_explanation(FILE *f, const craft_report_case *c)
{
    const craft_order_detail *d = &c->detail;
    const craft_explanation *e = &d->explanation;
    if (!d->has_explanation) {
        fputs(",\n   \"gates\": null, \"importance\": null, \"cmis\": null, \"perturbation\": null", f);
        return;
    }
    fputs(",\n   \"gates\": {", f);
    for (int a = 0; a < e->n_aux; a++) {
        fputs(a ? ", " : "", f);
        craft_json_string(f, e->aux_names[a]);
        fputs(": {\"fusion\": ", f);
        j_float(f, e->fuse_gate ? e->fuse_gate[a] : NAN);
        fputs(", \"conditioning\": ", f);
        j_float(f, e->cond_gate ? e->cond_gate[a] : NAN);
        fputc('}', f);
    }
    fputs("},\n   \"importance\": {", f);
    for (int j = 0; e->importance && j < e->n_tokens; j++) {
        fputs(j ? ", " : "", f);
        craft_json_string(f, e->token_names[j]);
        fputs(": ", f);
        j_float(f, e->importance[j]);
    }
    fputs("},\n   \"cmis\": {", f);
    for (int a = 0; e->cmis && a < e->n_aux; a++) {
        fputs(a ? ", " : "", f);
        craft_json_string(f, e->aux_names[a]);
        fputs(": {", f);
        for (int j = 0; j < e->n_tokens; j++) {
            fputs(j ? ", " : "", f);
            craft_json_string(f, e->token_names[j]);
            fputs(": ", f);
            j_float(f, e->cmis[(size_t)a * e->n_tokens + j]);
        }
        fputc('}', f);
    }
    fputs("},\n   \"perturbation\": ", f);
    if (!e->perturb) {
        fputs("null", f);
        return;
    }
    fputc('{', f);
    for (int k = 0; k < e->n_classes; k++) {
        fputs(k ? ", " : "", f);
        craft_json_string(f, e->classes[k]);
        fputs(": {", f);
        for (int j = 0; j < e->n_tokens; j++) {
            fputs(j ? ", " : "", f);
            craft_json_string(f, e->token_names[j]);
            fputs(": ", f);
            j_float(f, e->perturb[(size_t)k * e->n_tokens + j]);
        }
        fputc('}', f);
    }
    fputc('}', f);
}

static void j_case(FILE *f, const craft_report *r, const craft_report_case *c)
{
    const craft_order_detail *d = &c->detail;
    const craft_report_model *m = &r->model;
    fputs("  {\"order_id\": ", f);
    j_str(f, d->order_id);
    fputs(", \"ts\": ", f);
    j_str(f, d->ts);
    fprintf(f, ", \"row_id\": %lld, \"dataset_id\": %lld,\n   \"features\": {", (long long)d->id,
            (long long)d->dataset_id);
    for (int i = 0; i < d->n_features; i++) {
        fputs(i ? ", " : "", f);
        craft_json_string(f, d->feature_names[i]);
        fputs(": ", f);
        if (d->feature_types[i] == CRAFT_CATEGORICAL)
            j_str(f, d->categories[i]);
        else
            j_float(f, d->values[i]);
    }
    fputs("},\n   \"text\": ", f);
    j_kv(f, &d->text);
    fputs(", \"entities\": ", f);
    j_kv(f, &d->entities);
    fputs(", \"labels\": ", f);
    j_kv(f, &d->labels);
    fputs(",\n   \"case\": ", f);
    if (d->has_case)
        j_case_record(f, &d->kase);
    else
        fputs("null", f);
    fputs(",\n   \"top_class\": ", f);
    j_str(f, c->top_class >= 0 && c->top_class < m->n_classes ? m->classes[c->top_class] : NULL);
    fputs(",\n   \"predictions\": [", f);
    for (int i = 0; i < d->n_predictions; i++) {
        const craft_prediction *p = &d->predictions[i];
        char label[128];
        craft_report_subset_label(m, p->off, label, sizeof label);
        fputs(i ? ",\n     " : "\n     ", f);
        fputs("{\"subset\": ", f);
        j_str(f, label);
        fputs(", \"off\": [", f);
        for (int mm = 0, first = 1; mm < m->n_modalities; mm++)
            if (p->off & (1u << mm)) {
                fputs(first ? "" : ", ", f);
                craft_json_string(f, m->modalities[mm]);
                first = 0;
            }
        fputs("], \"used\": [", f);
        for (int mm = 0, first = 1; mm < m->n_modalities; mm++)
            if (p->used & (1u << mm)) {
                fputs(first ? "" : ", ", f);
                craft_json_string(f, m->modalities[mm]);
                first = 0;
            }
        fputs("], \"scores\": {", f);
        for (int k = 0; k < m->n_classes; k++) {
            fputs(k ? ", " : "", f);
            craft_json_string(f, m->classes[k]);
            fputs(": ", f);
            j_float(f, p->scores[k]);
        }
        fputs("}}", f);
    }
    fputc(']', f);
    j_explanation(f, c);
    fputs(",\n   \"key_features\": [", f);
    for (int i = 0; i < c->n_key; i++) {
        fputs(i ? ", " : "", f);
        fputs("{\"feature\": ", f);
        j_str(f, c->key[i].name);
        fputs(", \"value\": ", f);
        j_str(f, c->key[i].value);
        fputs(", \"importance\": ", f);
        j_float(f, c->key[i].importance);
        fputs(", \"max_abs_cmis\": ", f);
        j_float(f, c->key[i].max_abs_cmis);
        fputc('}', f);
    }
    fputc(']', f);
    j_feature_list(f, "synergistic", c->synergistic, c->n_synergistic, &d->explanation);
    j_feature_list(f, "suppressed", c->suppressed, c->n_suppressed, &d->explanation);
    j_feature_list(f, "self_sufficient", c->self_sufficient, c->n_self_sufficient, &d->explanation);
    fputs(",\n   \"perturbation_top\": [", f);
    for (int i = 0; i < c->n_drops; i++) {
        fputs(i ? ", " : "", f);
        fputs("{\"feature\": ", f);
        j_str(f, c->drops[i].name);
        fputs(", \"value\": ", f);
        j_str(f, c->drops[i].value);
        fputs(", \"drop\": ", f);
        j_float(f, c->drops[i].drop);
        fputc('}', f);
    }
    fputs("],\n   \"score_space\": ", f);
    float x, y;
    int64_t rank, of;
    if (craft_report_space_place(&r->space, c, c->top_class, &x, &y, &rank, &of)) {
        fputs("{\"class\": ", f);
        j_str(f, m->classes[c->top_class]);
        fputs(", \"backbone_only\": ", f);
        j_float(f, x);
        fputs(", \"full\": ", f);
        j_float(f, y);
        fprintf(f, ", \"rank\": %lld, \"of\": %lld}", (long long)rank, (long long)of);
    } else {
        fputs("null", f);
    }
    fputs(",\n   \"notes\": [", f);
    for (int i = 0; i < c->n_notes; i++) {
        fputs(i ? ", " : "", f);
        fputs("{\"at\": ", f);
        j_time(f, c->notes[i].at);
        fputs(", \"author\": ", f);
        j_str(f, c->notes[i].author);
        fputs(", \"text\": ", f);
        j_str(f, c->notes[i].text);
        fputc('}', f);
    }
    fputs("],\n   \"audit\": [", f);
    for (int i = 0; i < c->n_audit; i++) {
        const craft_audit_entry *a = &c->audit[i];
        fputs(i ? ",\n     " : "\n     ", f);
        fputs("{\"at\": ", f);
        j_time(f, a->at);
        fputs(", \"actor\": ", f);
        j_str(f, a->actor);
        fputs(", \"action\": ", f);
        j_str(f, a->action);
        fputs(", \"before\": ", f);
        if (a->before)
            j_raw(f, a->before);
        else
            fputs("null", f);
        fputs(", \"after\": ", f);
        if (a->after)
            j_raw(f, a->after);
        else
            fputs("null", f);
        fputc('}', f);
    }
    fputs("],\n   \"rationale\": [", f);
    for (int i = 0; i < c->n_rationale; i++) {
        fputs(i ? ",\n     " : "\n     ", f);
        j_str(f, c->rationale[i]);
    }
    fputs("]}", f);
}

int craft_report_write_json(const craft_report *r, FILE *f, craft_error *err)
{
    const craft_report_model *m = &r->model;
    fputs("{\"format\": \"craft-report\", \"version\": 1,\n \"generated\": ", f);
    j_time(f, r->generated);
    fputs(", \"store\": ", f);
    j_str(f, r->store_path);
    fputs(",\n \"selection\": {\"description\": ", f);
    j_str(f, r->description);
    fprintf(f, ", \"n_cases\": %lld, \"counts\": {", (long long)r->n_cases);
    for (int s = 0; s < CRAFT_CASE_N_STATUS; s++)
        fprintf(f, "\"%s\": %lld, ", craft_case_status_name(s), (long long)r->counts.status[s]);
    fprintf(f, "\"no_case\": %lld, \"total\": %lld}},\n \"model\": {\"id\": %lld, \"sha256\": ", (long long)r->counts.no_case,
            (long long)r->counts.total, (long long)m->id);
    j_str(f, m->sha256);
    fputs(", \"path\": ", f);
    j_str(f, m->path);
    fputs(", \"trained\": ", f);
    j_time(f, m->trained);
    fputs(", \"added\": ", f);
    j_time(f, m->added);
    fputs(", \"metrics\": ", f);
    if (m->metrics_json)
        j_raw(f, m->metrics_json);
    else
        fputs("null", f);
    fputs(",\n  \"classes\": [", f);
    for (int k = 0; k < m->n_classes; k++) {
        fputs(k ? ", " : "", f);
        j_str(f, m->classes[k]);
    }
    fputs("], \"thresholds\": [", f);
    for (int k = 0; k < m->n_classes; k++) {
        fputs(k ? ", " : "", f);
        j_float(f, m->thresholds[k]);
    }
    fputs("], \"modalities\": [", f);
    for (int i = 0; i < m->n_modalities; i++) {
        fputs(i ? ", " : "", f);
        j_str(f, m->modalities[i]);
    }
    fputs("], \"backbone\": ", f);
    j_str(f, m->n_modalities ? m->modalities[m->backbone] : NULL);
    fprintf(f, ", \"scored_orders\": %lld},\n \"cases\": [\n", (long long)r->space.n);
    for (int64_t i = 0; i < r->n_cases; i++) {
        j_case(f, r, &r->cases[i]);
        fputs(i + 1 < r->n_cases ? ",\n" : "\n", f);
    }
    fputs(" ]}\n", f);
    if (ferror(f))
        return craft_fail(err, CRAFT_EIO, "writing the JSON report failed");
    return CRAFT_OK;
}

/* ------------------------------------------------------------- Markdown */

/* Text as Markdown text: the ASCII punctuation that Markdown or HTML could read
 * (emphasis, code, links, HTML tags and entities, tables, headings) is
 * backslash-escaped (CommonMark); a line break becomes a hard break that stays in
 * the list item (a space inside table cells), and a line then starting with a list
 * or heading marker is escaped too; other control characters become spaces. */
static void md_text(FILE *f, const char *s, int in_table)
{
    if (!s) {
        fputs("\xe2\x80\x94", f);
        return;
    }
    int line_start = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '\r' && c[1] == '\n')
            continue;
        if (*c == '\n' || *c == '\r') {
            fputs(in_table ? " " : "\\\n  ", f);
            line_start = !in_table;
            continue;
        }
        /* C1 controls and bidirectional overrides/isolates: shown as \\uXXXX, so a
         * Markdown file read in a terminal or an editor cannot reorder the text */
        unsigned cp = 0;
        if (c[0] == 0xC2 && c[1] >= 0x80 && c[1] <= 0x9F)
            cp = c[1];
        else if (c[0] == 0xE2 && ((c[1] == 0x80 && c[2] >= 0xAA && c[2] <= 0xAE) ||
                                  (c[1] == 0x81 && c[2] >= 0xA6 && c[2] <= 0xA9)))
            cp = 0x2000 | ((c[1] & 0x3Fu) << 6) | (c[2] & 0x3Fu);
        if (cp) {
            fprintf(f, "\\\\u%04x", cp);
            c += cp < 0x100 ? 1 : 2;
            line_start = 0;
            continue;
        }
        if (*c < 0x20 || *c == 0x7f)
            fputc(' ', f);
        else if (strchr("\\`*_[]<>#|!&~", *c) || (line_start && strchr("-+=", *c)))
            fprintf(f, "\\%c", *c);
        else
            fputc(*c, f);
        line_start = line_start && *c == ' ';
    }
}

static void md_score(FILE *f, float v)
{
    char b[32];
    craft_report_fmt_score(b, sizeof b, v);
    fputs(b, f);
}

static void md_signed(FILE *f, float v)
{
    char b[32];
    craft_report_fmt_signed(b, sizeof b, v);
    fputs(b, f);
}

static void md_time(FILE *f, double t)
{
    char b[64];
    craft_report_fmt_time(b, sizeof b, t);
    fputs(b, f);
}

static void md_features(FILE *f, const char *title, const craft_report_feature *v, int n, const craft_explanation *e,
                        int with_cmis)
{
    if (n == 0)
        return;
    fprintf(f, "\n**%s**\n\n", title);
    fputs(with_cmis ? "| Feature | Value | Modality | CMIS | Importance |\n|---|---|---|---:|---:|\n"
                    : "| Feature | Value | Importance | max \\|CMIS\\| |\n|---|---|---:|---:|\n",
          f);
    for (int i = 0; i < n; i++) {
        fputs("| ", f);
        md_text(f, v[i].name, 1);
        fputs(" | ", f);
        md_text(f, v[i].value, 1);
        fputs(" | ", f);
        if (with_cmis) {
            md_text(f, v[i].aux >= 0 ? e->aux_names[v[i].aux] : NULL, 1);
            fputs(" | ", f);
            md_signed(f, v[i].cmis);
            fputs(" | ", f);
            md_score(f, v[i].importance);
        } else {
            md_score(f, v[i].importance);
            fputs(" | ", f);
            md_score(f, v[i].max_abs_cmis);
        }
        fputs(" |\n", f);
    }
}

static void md_case(FILE *f, const craft_report *r, const craft_report_case *c)
{
    const craft_order_detail *d = &c->detail;
    const craft_explanation *e = &d->explanation;
    const craft_report_model *m = &r->model;
    fputs("\n## Order ", f);
    md_text(f, d->order_id, 0);
    fputs("\n\n- Time: ", f);
    md_text(f, d->ts, 0);
    if (d->has_case) {
        fprintf(f, "\n- Case: %lld, %s", (long long)d->kase.id, craft_case_status_label(d->kase.status));
        if (d->kase.decided_classes) {
            fputs(" (", f);
            md_text(f, d->kase.decided_classes, 0);
            fputc(')', f);
        }
        fputs("\n- Assignee: ", f);
        md_text(f, d->kase.assignee, 0);
        fprintf(f, "\n- Priority: %d", d->kase.priority);
    } else {
        fputs("\n- Case: none", f);
    }
    fputs("\n- Entities: ", f);
    for (int i = 0; i < d->entities.n; i++) {
        fputs(i ? ", " : "", f);
        md_text(f, d->entities.keys[i], 0);
        fputs(" ", f);
        md_text(f, d->entities.values[i], 0);
    }
    if (!d->entities.n)
        fputs("none", f);
    fputs("\n\n### Rationale\n\n", f);
    for (int i = 0; i < c->n_rationale; i++) {
        fputs("- ", f);
        md_text(f, c->rationale[i], 0);
        fputc('\n', f);
    }
    if (d->n_predictions > 0) {
        fputs("\n### Scores\n\n| Subset | Modalities used |", f);
        for (int k = 0; k < m->n_classes; k++) {
            fputc(' ', f);
            md_text(f, m->classes[k], 1);
            fputs(" |", f);
        }
        fputs("\n|---|---|", f);
        for (int k = 0; k < m->n_classes; k++)
            fputs("---:|", f);
        fputc('\n', f);
        for (int i = 0; i < d->n_predictions; i++) {
            char label[128];
            craft_report_subset_label(m, d->predictions[i].off, label, sizeof label);
            fputs("| ", f);
            md_text(f, label, 1);
            fputs(" | ", f);
            md_text(f, d->predictions[i].modalities, 1);
            fputs(" |", f);
            for (int k = 0; k < m->n_classes; k++) {
                fputc(' ', f);
                md_score(f, d->predictions[i].scores[k]);
                fputs(" |", f);
            }
            fputc('\n', f);
        }
        fputs("| flag threshold | |", f);
        for (int k = 0; k < m->n_classes; k++) {
            fputc(' ', f);
            md_score(f, m->thresholds[k]);
            fputs(" |", f);
        }
        fputc('\n', f);
    }
    if (d->has_explanation && e->n_aux > 0) {
        fputs("\n### Fusion gates\n\n| Modality | Fusion gate | Conditioning gate |\n|---|---:|---:|\n", f);
        for (int a = 0; a < e->n_aux; a++) {
            fputs("| ", f);
            md_text(f, e->aux_names[a], 1);
            fputs(" | ", f);
            md_score(f, e->fuse_gate ? e->fuse_gate[a] : NAN);
            fputs(" | ", f);
            md_score(f, e->cond_gate ? e->cond_gate[a] : NAN);
            fputs(" |\n", f);
        }
    }
    if (c->n_key > 0) {
        fputs("\n### Key features\n", f);
        md_features(f, "By importance", c->key, c->n_key, e, 0);
        md_features(f, "Synergistic (largest positive CMIS)", c->synergistic, c->n_synergistic, e, 1);
        md_features(f, "Suppressed (most negative CMIS)", c->suppressed, c->n_suppressed, e, 1);
        md_features(f, "Self-sufficient (important, small |CMIS|)", c->self_sufficient, c->n_self_sufficient, e, 0);
    }
    if (c->n_drops > 0) {
        fputs("\n### Perturbation importance (", f);
        md_text(f, m->classes[c->top_class], 0);
        fputs(")\n\n| Feature | Value | Score drop |\n|---|---|---:|\n", f);
        for (int i = 0; i < c->n_drops; i++) {
            fputs("| ", f);
            md_text(f, c->drops[i].name, 1);
            fputs(" | ", f);
            md_text(f, c->drops[i].value, 1);
            fputs(" | ", f);
            md_signed(f, c->drops[i].drop);
            fputs(" |\n", f);
        }
    }
    float x, y;
    int64_t rank, of;
    if (craft_report_space_place(&r->space, c, c->top_class, &x, &y, &rank, &of)) {
        fputs("\n### Score space (", f);
        md_text(f, m->classes[c->top_class], 0);
        fputs(")\n\nBackbone-only score ", f);
        md_score(f, x);
        fputs(", full-model score ", f);
        md_score(f, y);
        fprintf(f, ", rank %lld of %lld scored orders.\n", (long long)rank, (long long)of);
    }
    for (int t = 0; t < d->text.n; t++) {
        fputs(t ? "\n\n" : "\n### Text\n\n", f);
        fputs("**", f);
        md_text(f, d->text.keys[t], 0);
        fputs("**: ", f);
        md_text(f, d->text.values[t], 0);
        fputc('\n', f);
    }
    fputs("\n### Notes\n\n", f);
    if (!c->n_notes)
        fputs("None.\n", f);
    for (int i = 0; i < c->n_notes; i++) {
        fputs("- ", f);
        md_time(f, c->notes[i].at);
        fputs(", ", f);
        md_text(f, c->notes[i].author, 0);
        fputs(": ", f);
        md_text(f, c->notes[i].text, 0);
        fputc('\n', f);
    }
    fputs("\n### Audit trail\n\n", f);
    if (!c->n_audit)
        fputs("None.\n", f);
    else
        fputs("| Time | Actor | Action | Before | After |\n|---|---|---|---|---|\n", f);
    for (int i = 0; i < c->n_audit; i++) {
        const craft_audit_entry *a = &c->audit[i];
        fputs("| ", f);
        md_time(f, a->at);
        fputs(" | ", f);
        md_text(f, a->actor, 1);
        fputs(" | ", f);
        md_text(f, a->action, 1);
        fputs(" | ", f);
        md_text(f, a->before, 1);
        fputs(" | ", f);
        md_text(f, a->after, 1);
        fputs(" |\n", f);
    }
}

int craft_report_write_markdown(const craft_report *r, FILE *f, craft_error *err)
{
    const craft_report_model *m = &r->model;
    fputs("# CRAFT Desk explanation report\n\n- Generated: ", f);
    md_time(f, r->generated);
    fputs("\n- Store: ", f);
    md_text(f, r->store_path, 0);
    fputs("\n- Selection: ", f);
    md_text(f, r->description, 0);
    fprintf(f, "\n- Cases in this report: %lld\n\n## Model\n\n- SHA-256: `%s`\n- Path: ", (long long)r->n_cases, m->sha256);
    md_text(f, m->path, 0);
    fputs("\n- Trained: ", f);
    md_time(f, m->trained);
    fputs("\n- Added to the store: ", f);
    md_time(f, m->added);
    fputs("\n- Metrics: ", f);
    char metrics[700];
    craft_report_metrics_text(m, metrics, sizeof metrics);
    md_text(f, metrics, 0);
    fputs("\n- Classes: ", f);
    for (int k = 0; k < m->n_classes; k++) {
        fputs(k ? ", " : "", f);
        md_text(f, m->classes[k], 0);
    }
    fputs("\n- Modalities: ", f);
    for (int i = 0; i < m->n_modalities; i++) {
        fputs(i ? ", " : "", f);
        md_text(f, m->modalities[i], 0);
        if (i == m->backbone)
            fputs(" (backbone)", f);
    }
    fprintf(f, "\n- Scored orders: %lld\n", (long long)r->space.n);
    for (int64_t i = 0; i < r->n_cases; i++)
        md_case(f, r, &r->cases[i]);
    if (ferror(f))
        return craft_fail(err, CRAFT_EIO, "writing the Markdown report failed");
    return CRAFT_OK;
}

/* ------------------------------------------------------------------ CSV */

void craft_csv_field(FILE *out, const char *s)
{
    if (!s)
        return;
    /* CSV formula injection (OWASP): a spreadsheet runs a cell that starts with
     * = + - @ (or a tab or CR before one) as a formula, =HYPERLINK(...) included.
     * Such a text cell gets a leading ' and quotes: shown as text, never run. */
    int formula = s[0] && strchr("=+-@\t\r", s[0]) != NULL;
    if (!formula && !strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    if (formula)
        fputc('\'', out);
    for (const char *c = s; *c; c++) {
        if (*c == '"')
            fputc('"', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

static void csv_float(FILE *f, float v)
{
    if (!isnan(v))
        fprintf(f, "%.9g", v);
}

static void csv_header(FILE *f, char **classes, int n_classes)
{
    fputs("order_id,ts,case_id,status,assignee,priority,top_class,top_score", f);
    for (int k = 0; k < n_classes; k++) {
        fputc(',', f);
        craft_csv_field(f, classes[k]);
    }
    fputs("\r\n", f);
}

static void csv_row(FILE *f, const char *order_id, const char *ts, int64_t case_id, int status, const char *assignee,
                    int priority, char **classes, int top_class, float top_score, const float *scores, int n_classes)
{
    craft_csv_field(f, order_id);
    fputc(',', f);
    craft_csv_field(f, ts);
    fputc(',', f);
    if (case_id)
        fprintf(f, "%lld", (long long)case_id);
    fputc(',', f);
    craft_csv_field(f, status >= 0 ? craft_case_status_name(status) : NULL);
    fputc(',', f);
    craft_csv_field(f, assignee);
    fputc(',', f);
    if (case_id)
        fprintf(f, "%d", priority);
    fputc(',', f);
    craft_csv_field(f, top_class >= 0 && top_class < n_classes ? classes[top_class] : NULL);
    fputc(',', f);
    csv_float(f, top_score);
    for (int k = 0; k < n_classes; k++) {
        fputc(',', f);
        csv_float(f, scores[k]);
    }
    fputs("\r\n", f);
}

/* Named orders: one store read each. */
typedef struct {
    FILE *f;
    int64_t max, *n_rows;
    craft_report_progress_fn progress;
    void *user;
    int pages;
    int64_t total;                   /* rows asked for (0: unknown), for the progress */
} CsvPages;

/* One page of the selected queue as CSV rows (the header before the first). */
static int csv_page(void *u, const craft_queue_page *p)
{
    CsvPages *cp = u;
    if (cp->pages++ == 0)
        csv_header(cp->f, p->classes, p->n_classes);
    for (int i = 0; i < p->n && *cp->n_rows < cp->max; i++, (*cp->n_rows)++) {
        const craft_queue_row *w = &p->rows[i];
        csv_row(cp->f, w->order_id, w->ts, w->case_id, w->status, w->assignee, w->priority, p->classes, w->top_class,
                w->top_score, w->scores, p->n_classes);
    }
    if (cp->progress)
        cp->progress(cp->user, "rendering", *cp->n_rows, cp->total);
    return *cp->n_rows >= cp->max;
}

/* Named orders (by name or by row id), a thousand at a time: their row ids, then
 * their queue rows (scores, case) by id. */
static int csv_named(craft_store *s, const craft_report_selection *sel, int64_t model_id, FILE *f,
                     craft_report_progress_fn progress, void *user, const volatile int *cancel, int64_t *n_rows,
                     craft_error *err)
{
    enum { BATCH = 1000 };
    int by_name = sel->n_order_ids > 0;
    int64_t total = by_name ? sel->n_order_ids : sel->n_order_rows, rows[BATCH];
    CsvPages cp = {f, sel->max_cases > 0 ? sel->max_cases : INT64_MAX, n_rows, progress, user, 0, total};
    int rc = CRAFT_OK;
    for (int64_t at = 0; at < total && *n_rows < cp.max && !rc; at += BATCH) {
        if (cancel && *cancel)
            return craft_fail(err, CRAFT_ECANCELLED, "the report was cancelled");
        int n = total - at < BATCH ? (int)(total - at) : BATCH;
        craft_queue_page p;
        if ((by_name && (rc = craft_store_order_rows(s, sel->order_ids + at, n, rows, err))) ||
            (rc = craft_store_queue_rows(s, model_id, by_name ? rows : sel->order_rows + at, n, &p, err)))
            break;
        csv_page(&cp, &p);
        craft_queue_page_free(&p);
    }
    return rc;
}


int craft_report_write_csv(craft_store *s, const craft_report_selection *sel, FILE *f, craft_report_progress_fn progress,
                           void *user, const volatile int *cancel, int64_t *n_rows, craft_error *err)
{
    *n_rows = 0;
    int64_t model_id = sel->model_id ? sel->model_id : sel->query.model_id;
    if (!model_id)
        model_id = craft_store_latest_model(s);
    int rc;
    if (sel->n_order_ids > 0 || sel->n_order_rows > 0) {
        rc = csv_named(s, sel, model_id, f, progress, user, cancel, n_rows, err);
    } else {
        craft_queue_query q = sel->query;
        q.model_id = model_id;
        q.limit = 1000;
        CsvPages cp = {f, sel->max_cases > 0 ? sel->max_cases : INT64_MAX, n_rows, progress, user, 0, 0};
        rc = craft_store_queue_each(s, &q, csv_page, &cp, cancel, err);
        if (rc == CRAFT_ECANCELLED)
            craft_fail(err, CRAFT_ECANCELLED, "the report was cancelled");
    }
    if (!rc && *n_rows == 0)
        rc = craft_fail(err, CRAFT_EINPUT, "no orders match the selection (%s) in %s",
                        sel->description ? sel->description : "the review queue", craft_store_path(s));
    if (!rc && ferror(f))
        rc = craft_fail(err, CRAFT_EIO, "writing the CSV failed");
    return rc;
}
