/* craft model info M: what a checkpoint holds. */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "scoring.h"
#include "termsafe.h"

static void help(void)
{
    printf("Usage: craft model info MODEL [--json]\n\n"
           "Validates MODEL (a CRAFT safetensors checkpoint) and prints its config, backbone,\n"
           "classes, tensor and parameter counts, and the file's SHA-256.\n");
}

int cmd_model(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        help();
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "info"))
        return cli_usage("model", "the only subcommand is \"info\"");
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage("model", "unknown option %s", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return cli_usage("model", "one model at a time");
    }
    if (!path)
        return cli_usage("model", "which model? craft model info MODEL");
    int st = cli_model_file("model", path);
    if (st)
        return st;
    craft_model *m;
    craft_error err = {0};
    if (craft_model_load(&m, path, &err))
        return cli_fail("model", &err);
    const craft_config *c = &m->cfg;
    size_t params = craft_model_param_count(m);
    if (json) {
        char *cfg = craft_config_to_json(c);
        fputs("{\"path\": ", stdout);
        craft_json_string(stdout, path);
        printf(", \"sha256\": \"%s\", \"tensors\": %d, \"parameters\": %zu, \"supcma_heads\": %s, "
               "\"config\": %s, \"metadata\": %s}\n",
               m->sha256, m->layout.n, params, m->has_supcma ? "true" : "false", cfg ? cfg : "null",
               m->metadata_json ? m->metadata_json : "{}");
        free(cfg);
    } else {
        fputs("model       ", stdout);
        craft_term_fputs(path, stdout, 0);
        fputc('\n', stdout);
        printf("sha256      %s\n", m->sha256);
        printf("task        %s, %d classes:", c->task == CRAFT_MULTICLASS ? "multiclass" : "multilabel", c->n_classes);
        for (int k = 0; k < c->n_classes; k++)
            printf(" %s", c->classes[k]);
        printf("\nbackbone    %s\n", c->modalities[c->backbone].name);
        printf("modalities ");
        for (int i = 0; i < c->n_modalities; i++) {
            const craft_modality *md = &c->modalities[i];
            if (md->kind == CRAFT_TABULAR) {
                int ncat = 0;
                for (int f = 0; f < md->n_features; f++)
                    ncat += md->features[f].type == CRAFT_CATEGORICAL;
                printf(" %s (tabular, %d features, %d categorical)", md->name, md->n_features, ncat);
            } else {
                printf(" %s (embedding %d wide, up to %d tokens", md->name, md->dim, md->tokens);
                for (int t = 0; t < md->n_entity_types; t++) /* the graph encoder's types (ENCODERS.md) */
                    printf("%s%s", t ? ", " : "; entity types ", md->entity_types[t]);
                if (md->text_tokens == CRAFT_TEXT_FIELDS || md->text_tokens == CRAFT_TEXT_EVENTS)
                    printf("; text rows per %s", md->text_tokens == CRAFT_TEXT_FIELDS ? "field" : "event");
                printf(")");
            }
            printf(i + 1 < c->n_modalities ? "," : "\n");
        }
        printf("shape       d_model %d, heads %d, layers %d, ffn x%d, top-k %d, routing %d, bins %d, sub-embedding %d\n",
               c->d_model, c->heads, c->layers, c->ffn_mult, c->topk, c->route_dim, c->bins, c->emb_dim);
        printf("encoding    %s tabular encoding%s\n",
               c->tab_encoding == CRAFT_TAB_PIECEWISE ? "piecewise-linear" : "binned (a free embedding per bin)",
               c->wide_head ? ", wide head" : "");
        printf("calibration ");
        if (c->calib_a)
            for (int k = 0; k < c->n_classes; k++)
                printf("%s %s a %.3g b %+.3g", k ? "," : "", c->classes[k], c->calib_a[k], c->calib_b[k]);
        else
            printf(" none (raw head scores)");
        printf("\nprevalence ");
        for (int k = 0; k < c->n_classes; k++)
            printf(" %s %.4g", c->classes[k], c->prevalence[k]);
        printf("\ntensors     %d%s\nparameters  %zu\n", m->layout.n, m->has_supcma ? " (with SupCMA heads)" : "", params);
    }
    craft_model_free(m);
    return 0;
}
