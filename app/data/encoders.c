/* encoders.c: fills a batch's `txt` and `graph` inputs from the orders' text
 * and entities where no precomputed embedding was given. */
#include "encoders.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct craft_encoders {
    int txt;   /* modality index filled by the text encoder, -1: none */
    int graph; /* modality index filled by the graph encoder, -1: none */
    craft_text_encoder *text;
    craft_graph *state;
};

/* The modality `name` when it is an embedding of width dim, else -1. */
/* The modality named `name` when a built-in encoder fills it (craft_encoders_would_fill) and it
 * is not the backbone; else -1. */
static int matching_modality(const craft_config *cfg, const char *name)
{
    int m = craft_config_find_modality(cfg, name);
    return m >= 0 && m != cfg->backbone && craft_encoders_would_fill(cfg, m) ? m : -1;
}

int craft_encoders_new(craft_encoders **out, const craft_config *cfg, craft_error *err)
{
    *out = NULL;
    craft_encoders *enc = calloc(1, sizeof *enc);
    if (!enc)
        return craft_fail(err, CRAFT_ENOMEM, "out of memory for the encoders");
    enc->txt = matching_modality(cfg, "txt");
    enc->graph = matching_modality(cfg, "graph");
    int rc = CRAFT_OK;
    if (enc->txt >= 0)
        rc = craft_text_encoder_new(&enc->text, err);
    if (!rc && enc->graph >= 0)
        rc = craft_graph_new_for(&enc->state, cfg, enc->graph, err);
    if (rc) {
        craft_encoders_free(enc);
        return rc;
    }
    *out = enc;
    return CRAFT_OK;
}

void craft_encoders_free(craft_encoders *enc)
{
    if (!enc)
        return;
    craft_text_encoder_free(enc->text);
    craft_graph_free(enc->state);
    free(enc);
}

int craft_encoders_would_fill(const craft_config *cfg, int m)
{
    const craft_modality *mod = &cfg->modalities[m];
    if (mod->kind != CRAFT_EMBEDDING || mod->tokens < 1)
        return 0;
    if (!strcmp(mod->name, "txt"))
        return mod->dim == CRAFT_TEXT_DIM;
    if (!strcmp(mod->name, "graph")) {
        int types = mod->n_entity_types > 0 ? mod->n_entity_types : CRAFT_GRAPH_TYPES;
        return mod->dim == craft_graph_width_types(types, cfg->n_classes);
    }
    return 0;
}

int craft_encoders_active(const craft_encoders *enc) { return enc && (enc->txt >= 0 || enc->graph >= 0); }

static int fill_text(craft_encoders *enc, const craft_config *cfg, craft_order_batch *ob, int i, craft_error *err)
{
    const craft_modality *mod = &cfg->modalities[enc->txt];
    if (ob->in.ntok[enc->txt][i] != 0 || ob->text[i].n == 0)
        return CRAFT_OK;
    float *dst = ob->in.emb[enc->txt] + (size_t)i * mod->tokens * mod->dim;
    if (mod->text_tokens == CRAFT_TEXT_VECTOR) { /* today's one vector, exactly as before */
        long got = craft_text_encode(enc->text, &ob->text[i], dst);
        if (got < 0)
            return craft_fail(err, CRAFT_ENOMEM, "text encoder: out of memory");
        if (got > 0)
            ob->in.ntok[enc->txt][i] = 1; /* no usable words leaves the modality missing */
        return CRAFT_OK;
    }
    int rows = 0;
    int rc = craft_text_encode_rows(enc->text, &ob->text[i], mod->text_tokens, mod->tokens, dst, &rows, err);
    if (!rc)
        ob->in.ntok[enc->txt][i] = rows; /* 0: no usable words, the modality is missing */
    return rc;
}

static int fill_graph(craft_encoders *enc, const craft_config *cfg, craft_order_batch *ob, int i, craft_error *err)
{
    const craft_modality *mod = &cfg->modalities[enc->graph];
    double t = NAN;
    int rc = ob->ts[i] ? craft_graph_parse_time(ob->ts[i], &t, err) : CRAFT_OK;
    if (rc)
        return rc;
    if (ob->in.ntok[enc->graph][i] == 0 && craft_graph_known(enc->state, &ob->entities[i]) > 0) {
        float *dst = ob->in.emb[enc->graph] + (size_t)i * mod->tokens * mod->dim;
        if ((rc = craft_graph_encode(enc->state, &ob->entities[i], t, dst, err)))
            return rc;
        ob->in.ntok[enc->graph][i] = 1;
    }
    /* every order joins the history, whether or not it brought its own embedding */
    const float *labels = ob->has_labels[i] ? ob->in.labels + (size_t)i * cfg->n_classes : NULL;
    return craft_graph_observe(enc->state, &ob->entities[i], t, labels, err);
}

int craft_encoders_fill(craft_encoders *enc, const craft_config *cfg, craft_order_batch *ob, craft_error *err)
{
    if (!craft_encoders_active(enc))
        return CRAFT_OK;
    if (!ob->keep_raw)
        return craft_fail(err, CRAFT_EINPUT, "encoders: the orders were read without their text and entities");
    for (int i = 0; i < ob->in.n; i++) {
        int rc = CRAFT_OK;
        if (enc->txt >= 0)
            rc = fill_text(enc, cfg, ob, i, err);
        if (!rc && enc->graph >= 0)
            rc = fill_graph(enc, cfg, ob, i, err);
        if (rc) {
            craft_error_prefix(err, "line %zu (order %s)", ob->line[i], ob->ids[i] ? ob->ids[i] : "?");
            return rc;
        }
    }
    return CRAFT_OK;
}
