/* test_rescore.c: the modality toggles' view model against the model contract's
 * fixtures: every order, every subset in *.expected.jsonl, scores within 1e-5,
 * missing modalities reported as missing, gates in (0, 1). */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order_rescore.h"
#include "orders.h"

static const char *fixtures;

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc(n + 1);
    if (s && fread(s, 1, n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static void check_model(const char *name)
{
    char path[1024], orders[1024], expected[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", fixtures, name);
    snprintf(orders, sizeof orders, "%s/%s.orders.jsonl", fixtures, name);
    snprintf(expected, sizeof expected, "%s/%s.expected.jsonl", fixtures, name);
    craft_error err = {0};
    craft_model *m = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_model_load(&m, path, &err), CRAFT_OK);
    craft_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_engine_new(&e, m, 4, 1, &err), CRAFT_OK);
    craft_order_batch ob;
    CU_ASSERT_EQUAL_FATAL(craft_order_batch_init(&ob, &m->cfg, 64, 0, &err), CRAFT_OK);
    craft_reader *r = NULL;
    CU_ASSERT_EQUAL_FATAL(craft_reader_open(&r, orders, CRAFT_FORMAT_AUTO, &m->cfg, &err), CRAFT_OK);
    int eof = 0;
    while (!eof)
        CU_ASSERT_EQUAL_FATAL(craft_reader_next(r, &ob, &eof, &err), CRAFT_OK);
    craft_reader_close(r);
    CU_ASSERT_FATAL(ob.in.n > 0);

    char *text = read_all(expected);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    int checked = 0, missing_seen = 0;
    double worst = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        const char *oid = cJSON_GetObjectItem(j, "order_id")->valuestring;
        int idx = -1;
        for (int i = 0; i < ob.in.n; i++)
            if (!strcmp(ob.ids[i], oid)) idx = i;
        CU_ASSERT_FATAL(idx >= 0);
        uint32_t mask = 0;
        cJSON *off;
        cJSON_ArrayForEach(off, cJSON_GetObjectItem(j, "off"))
            mask |= 1u << craft_config_find_modality(&m->cfg, off->valuestring);
        craft_rescore rs;
        CU_ASSERT_EQUAL_FATAL(craft_order_rescore(e, m, &ob.in, idx, mask, &rs, &err), CRAFT_OK);
        cJSON *scores = cJSON_GetObjectItem(j, "scores");
        for (int k = 0; k < m->cfg.n_classes; k++) {
            double want = cJSON_GetObjectItem(scores, m->cfg.classes[k])->valuedouble;
            double d = fabs(rs.subset[k] - want);
            if (d > worst) worst = d;
            CU_ASSERT(d <= 1e-5);
            if (mask == 0) {
                CU_ASSERT(fabs(rs.full[k] - rs.subset[k]) == 0);
            }
        }
        /* "modalities" lists the ones used: the rest are off or missing, and told apart */
        uint32_t used = 0;
        cJSON *u;
        cJSON_ArrayForEach(u, cJSON_GetObjectItem(j, "modalities"))
            used |= 1u << craft_config_find_modality(&m->cfg, u->valuestring);
        CU_ASSERT_EQUAL(rs.used_subset, used);
        for (int mm = 0; mm < m->cfg.n_modalities; mm++) {
            const char *state = craft_rescore_modality_state(m, &rs, mm);
            if (mm == m->cfg.backbone) {
                CU_ASSERT_STRING_EQUAL(state, "backbone");
            } else if (!(rs.available & (1u << mm))) {
                CU_ASSERT_STRING_EQUAL(state, "missing");
                CU_ASSERT(isnan(rs.fuse_gate[mm]));
                missing_seen++;
            } else {
                CU_ASSERT_STRING_EQUAL(state, (mask & (1u << mm)) ? "off" : "on");
                CU_ASSERT(rs.fuse_gate[mm] > 0 && rs.fuse_gate[mm] < 1);
                CU_ASSERT(rs.cond_gate[mm] > 0 && rs.cond_gate[mm] < 1);
            }
        }
        checked++;
        cJSON_Delete(j);
    }
    CU_ASSERT(checked >= ob.in.n);
    CU_ASSERT(missing_seen > 0); /* the fixtures include orders without txt or graph */
    printf("\n  %s: %d order-subsets, worst |diff| %.2g\n", name, checked, worst);

    /* the backbone cannot be switched off; an index outside the batch is refused */
    craft_rescore rs;
    CU_ASSERT_EQUAL(craft_order_rescore(e, m, &ob.in, 0, 1u << m->cfg.backbone, &rs, &err), CRAFT_EINPUT);
    CU_ASSERT(strstr(err.msg, "backbone") != NULL);
    CU_ASSERT_EQUAL(craft_order_rescore(e, m, &ob.in, ob.in.n, 0, &rs, &err), CRAFT_EINPUT);
    free(text);
    craft_order_batch_free(&ob);
    craft_engine_free(e);
    craft_model_free(m);
}

static void test_multilabel(void) { check_model("tiny-multilabel"); }
static void test_multiclass(void) { check_model("tiny-multiclass"); }

int main(void)
{
    fixtures = getenv("CRAFT_FIXTURES");
    if (!fixtures)
        return 77;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("rescore", NULL, NULL);
    if (!s || !CU_add_test(s, "toggles, multilabel fixture", test_multilabel) ||
        !CU_add_test(s, "toggles, multiclass fixture", test_multiclass)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
