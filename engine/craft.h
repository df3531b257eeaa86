/* craft.h: the CRAFT fusion engine's public interface (plain C11, no GLib).
 *
 * The engine is a library: every function reports failure through a return
 * code and a craft_error, never by exiting. Arrays are row-major float32.
 * The numerical contract is docs/MODEL.md (a copy of shared/MODEL.md).
 */
#ifndef CRAFT_H
#define CRAFT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRAFT_MAX_MODALITIES 8
#define CRAFT_MAX_LAYERS 16
#define CRAFT_SUPCMA_DIM 128

/* ---------------------------------------------------------------- errors */
typedef enum {
    CRAFT_OK = 0,
    CRAFT_EIO,          /* a file could not be read or written */
    CRAFT_EFORMAT,      /* a file is malformed (checkpoint, config) */
    CRAFT_EINPUT,       /* an order or argument is invalid */
    CRAFT_ENOMEM,       /* an allocation failed */
    CRAFT_EUNSUPPORTED, /* valid, but not something this build can do */
    CRAFT_ECANCELLED
} craft_code;

typedef struct craft_error {
    craft_code code;
    char msg[1024];
} craft_error;

/* Sets err (when not NULL) and returns code: `return craft_fail(err, ...)`. */
int craft_fail(craft_error *err, craft_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes err->msg with "<prefix>: " (to add a file or tensor name). */
void craft_error_prefix(craft_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- config */
enum { CRAFT_NUMERIC = 0, CRAFT_CATEGORICAL = 1 };
enum { CRAFT_TABULAR = 0, CRAFT_EMBEDDING = 1 };
enum { CRAFT_MULTILABEL = 0, CRAFT_MULTICLASS = 1 };
/* How a numeric tabular value becomes its sub-embedding h (docs/MODEL.md):
 * BINS: h = bin_emb[b] (a free embedding per bin);
 * PIECEWISE: h = sum_{k<b} bin_emb[k] + rr bin_emb[b] over bins 1..nb (neighbouring bins
 * share parameters: the piecewise-linear encoding of Gorishniy et al. 2022). */
enum { CRAFT_TAB_BINS = 0, CRAFT_TAB_PIECEWISE = 1 };

typedef struct {
    char *name;
    int type;       /* CRAFT_NUMERIC or CRAFT_CATEGORICAL */
    int n_vocab;    /* categorical: at most bins-1 values */
    char **vocab;
} craft_feature;

typedef struct {
    char *name;
    int kind;        /* CRAFT_TABULAR or CRAFT_EMBEDDING */
    int dim;         /* embedding: input width D_m; tabular: 3*emb_dim */
    int tokens;      /* embedding: at most this many tokens; tabular: F */
    int n_features;  /* tabular only */
    craft_feature *features;
    /* Optional keys of an embedding modality for the built-in encoders
     * (docs/ENCODERS.md); absent keys keep the defaults below. */
    int n_entity_types;  /* "graph": "entity_types"; 0 = absent, the five default types */
    char **entity_types;
    int text_tokens;     /* "txt": "text_tokens"; CRAFT_TEXT_VECTOR (absent), _FIELDS, _EVENTS */
} craft_modality;

/* "text_tokens" of the txt modality: one 256-wide vector, one row per text
 * field, or one row per journey event (docs/ENCODERS.md). */
enum { CRAFT_TEXT_VECTOR = 0, CRAFT_TEXT_FIELDS = 1, CRAFT_TEXT_EVENTS = 2 };
#define CRAFT_MAX_ENTITY_TYPES 64

typedef struct craft_config {
    int d_model, heads, layers, ffn_mult, topk, route_dim, bins, emb_dim;
    int task;                /* CRAFT_MULTILABEL or CRAFT_MULTICLASS */
    int n_classes;
    char **classes;
    float *prevalence;       /* [n_classes] */
    int n_modalities;
    craft_modality modalities[CRAFT_MAX_MODALITIES];
    int backbone;            /* index into modalities */
    int tabular;             /* index of the tabular modality, -1 if none */
    int tab_encoding;        /* CRAFT_TAB_BINS (default) or CRAFT_TAB_PIECEWISE ("tab_encoding") */
    int wide_head;           /* "wide_head": true adds a linear term of the backbone tokens to the logits */
    /* Per-class score calibration ("calibration": {"a":[K],"b":[K]}), fitted on validation
     * orders after training: scores are sigma(a_k y_k + b_k) (multiclass: softmax(a y + b)).
     * NULL when absent: the raw head (a = 1, b = 0). */
    float *calib_a, *calib_b;
    char *json;              /* the config JSON as read or built (keeps extra keys) */
} craft_config;

/* Parses and validates a "craft.config" JSON string. */
int craft_config_parse(craft_config *cfg, const char *json, size_t len, craft_error *err);
/* Serializes cfg (extra keys of cfg->json are kept, ours overwritten). Caller frees. */
char *craft_config_to_json(const craft_config *cfg);
int craft_config_copy(craft_config *dst, const craft_config *src, craft_error *err);
void craft_config_free(craft_config *cfg);
int craft_config_find_modality(const craft_config *cfg, const char *name);
/* Number of backbone tokens an order can have at most. */
int craft_config_max_tokens(const craft_config *cfg, int modality);

/* --------------------------------------------------------------- weights */
typedef struct { float *w, *b; int out, in; } craft_linear;  /* y = x W^T + b, W [out,in] */
typedef struct { float *w, *b; int dim; } craft_norm;         /* LayerNorm weight, bias */

typedef struct {
    /* tabular */
    float *edges;    /* [F, nb+1] */
    float *bin_emb;  /* [F, nb+1, e] */
    float *res_emb;  /* [F, e] */
    float *feat_emb; /* [F, e] */
    /* embedding */
    float *pos_emb;  /* [n_m, d] or NULL */
    craft_linear proj; /* tabular: [d, 3e]; embedding: [d, D_m] */
} craft_embed;

typedef struct {
    craft_norm ln1, ln2;
    craft_linear q, k, v, o;
    float *route;    /* [r, d] */
    craft_linear fc1, fc2;
} craft_block;

typedef struct { craft_linear q, k, v, o, gate; } craft_cross;
typedef struct { craft_linear fc1, fc2; } craft_projhead;

/* Named views into one contiguous parameter (or gradient, or optimizer) buffer. */
typedef struct craft_weights {
    craft_embed embed[CRAFT_MAX_MODALITIES];
    craft_block blocks[CRAFT_MAX_LAYERS];
    craft_norm ln_f;
    craft_cross cross[CRAFT_MAX_MODALITIES];   /* auxiliaries only */
    float *pool_query;
    craft_linear pool_k, pool_v, pool_o;
    craft_linear fuse[CRAFT_MAX_MODALITIES];   /* auxiliaries only */
    craft_norm head_ln;
    craft_linear head_fc1, head_fc2;
    float *head_wide; /* [K, T*d] with "wide_head" (T the backbone's tokens), else NULL */
    craft_projhead supcma[CRAFT_MAX_MODALITIES]; /* all modalities, when present */
} craft_weights;

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[3];
    size_t offset;  /* in floats, into the contiguous buffer */
    size_t count;
} craft_tensor_info;

typedef struct {
    int n;
    craft_tensor_info *t;
    size_t total;   /* floats */
} craft_layout;

int craft_layout_build(craft_layout *L, const craft_config *cfg, int with_supcma, craft_error *err);
void craft_layout_free(craft_layout *L);
int craft_layout_find(const craft_layout *L, const char *name);
/* Points every view of w into base according to the layout of cfg. */
void craft_weights_bind(craft_weights *w, const craft_config *cfg, int with_supcma, float *base);
/* True for tensors that get weight decay (matrices). */
int craft_tensor_is_matrix(const craft_tensor_info *t);

/* ----------------------------------------------------------------- model */
typedef struct craft_model {
    craft_config cfg;
    craft_layout layout;
    float *params;           /* layout.total floats, 64-byte aligned */
    craft_weights w;
    int has_supcma;
    char sha256[65];         /* hex digest of the checkpoint file ("" if never saved) */
    char *metadata_json;     /* the whole __metadata__ object, or NULL */
} craft_model;

/* Loads and validates a checkpoint; on failure *out is NULL and err names file and tensor. */
int craft_model_load(craft_model **out, const char *path, craft_error *err);
int craft_model_load_memory(craft_model **out, const void *data, size_t size,
                            const char *name, craft_error *err);
/* A model with every parameter allocated and initialized from seed (Xavier-like). */
int craft_model_new(craft_model **out, const craft_config *cfg, int with_supcma,
                    uint64_t seed, craft_error *err);
/* Writes atomically (an unnamed O_TMPFILE on Linux, else a temporary file
 * PATH.tmp-PID-XXXXXX; fsync, rename): a kill while writing leaves the old file
 * and, at most, one PATH.tmp-PID-XXXXXX, which a later save removes once its
 * process is gone. Extra metadata entries are given as a JSON object string (may
 * be NULL). Updates m->sha256. */
int craft_model_save(craft_model *m, const char *path, const char *extra_metadata_json,
                     craft_error *err);
void craft_model_free(craft_model *m);
size_t craft_model_param_count(const craft_model *m);

/* ------------------------------------------------------------------ hash */
void craft_sha256(const void *data, size_t len, uint8_t out[32]);
int craft_sha256_file(const char *path, char hex[65], craft_error *err);

/* ---------------------------------------------------------------- orders */
/* A batch of orders resolved against one model config.
 * tab: [cap, F] for the tabular modality: numeric value, or for categorical
 *      features the bin code (1..n_vocab in the vocabulary, bins for unseen);
 *      NaN means missing for both.
 * emb[m]: [cap, tokens_m, dim_m]; ntok[m][i] rows are valid for order i
 *      (0 = the modality is missing for that order).
 * labels: [cap, K], NaN where unknown (multiclass: one-hot). */
typedef struct craft_batch {
    int n, cap;
    int F;
    float *tab;
    int *ntok[CRAFT_MAX_MODALITIES];
    float *emb[CRAFT_MAX_MODALITIES];
    float *labels;
    int has_labels;
} craft_batch;

int craft_batch_init(craft_batch *b, const craft_config *cfg, int cap, craft_error *err);
void craft_batch_free(craft_batch *b);
/* Marks order i as empty: all features missing, no embeddings, labels unknown. */
void craft_batch_clear_order(craft_batch *b, const craft_config *cfg, int i);
/* Copies order src_i of src into order dst_i of dst (both made for cfg): tabular values,
 * token counts and embeddings, labels. */
void craft_batch_copy_order(craft_batch *dst, int dst_i, const craft_batch *src, int src_i, const craft_config *cfg);
/* Bin code of a categorical value: 1..n_vocab, or bins when unseen. */
int craft_category_code(const craft_config *cfg, const craft_feature *f, const char *value);
/* The bin b and within-bin position rr of a numeric value (MODEL.md). */
void craft_bin_numeric(const float *edges, int nb, float x, int *b, float *rr);

/* ---------------------------------------------------------------- engine */
typedef struct craft_request {
    uint32_t off_mask;       /* bit m: modality m switched off (never the backbone) */
    int importance;          /* fill result.importance */
    int cmis;                /* fill result.cmis */
    int perturbation;        /* fill result.perturb (reruns the backbone per feature) */
} craft_request;

typedef struct craft_result {
    int n, K, M, T;          /* orders, classes, modalities, max backbone tokens */
    float *scores;           /* [n, K] probabilities */
    float *logits;           /* [n, K] */
    uint32_t *used;          /* [n] bit m: modality m was used */
    int *ntok;               /* [n] backbone tokens of each order */
    float *importance;       /* [n, T] alpha_j, or NULL */
    float *cmis;             /* [n, M, T], NaN where m unused, or NULL */
    float *cond_gate;        /* [n, M] mean of the conditioning gate c_m (NaN unused) */
    float *fuse_gate;        /* [n, M] mean of the fusion gate g_m (NaN unused) */
    float *perturb;          /* [n, K, F] score drop with feature j missing, or NULL */
} craft_result;

/* scores[n, K] from logits[n, K]: sigmoid (multilabel) or softmax (multiclass) of a y + b, with
 * calib_a/calib_b the model's calibration (MODEL.md, "Extensions"), or of y when calib_a is NULL. */
void craft_logits_to_scores(int task, int K, const float *calib_a, const float *calib_b, const float *logits,
                            float *scores, int n);

int craft_result_init(craft_result *r, const craft_config *cfg, int cap, const craft_request *req,
                      craft_error *err);
void craft_result_free(craft_result *r);

typedef struct craft_engine craft_engine;

/* An engine holds a model (not owned) and workspace for batches of up to max_batch orders.
 * threads <= 0 means all cores. */
int craft_engine_new(craft_engine **out, const craft_model *m, int max_batch, int threads,
                     craft_error *err);
void craft_engine_free(craft_engine *e);
int craft_engine_threads(const craft_engine *e);
/* Runs n_req requests (modality subsets) over one batch, sharing the backbone pass.
 * results[i] must have been made by craft_result_init with a cap >= batch->n. */
int craft_engine_run(craft_engine *e, const craft_batch *batch, const craft_request *req,
                     int n_req, craft_result *results, craft_error *err);

/* Threads used by OpenBLAS and the engine's own loops. */
void craft_set_threads(int threads);
int craft_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif
