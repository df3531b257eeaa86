/* store.h: the case store: one SQLite file holding orders, predictions,
 * explanations, cases, decisions and their audit trail.
 *
 * Rules every function keeps:
 * - Failure is a return code (CRAFT_OK = 0, else a craft_code) and a craft_error
 *   naming what and where; nothing here exits or aborts.
 * - A craft_store handle belongs to one thread at a time. Open one handle per
 *   thread (the app: one for the UI thread, one per worker); WAL mode lets any
 *   number of readers run beside one writer.
 * - Every case action (decide, assign, priority, note) writes its audit row in
 *   the same transaction and is durable on disk when the call returns.
 * - Strings returned inside structs are owned by the struct; free them with the
 *   matching *_free function. Structs may be zero-initialised before a call.
 *
 * Vocabulary: an order's `id` is the store's integer row id; `order_id` is the
 * external string id from the imported file. A case is one flagged order (at
 * most one case per order).
 */
#ifndef CRAFT_STORE_H
#define CRAFT_STORE_H

#include <stdint.h>
#include <stdio.h>

#include "craft.h"
#include "orders.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CRAFT_STORE_VERSION 5        /* PRAGMA user_version of the newest schema (1 orders, 2 models and predictions, 3 cases,
                                        4 scoring errors, 5 the audit hash chain) */
#define CRAFT_STORE_MAX_CLASSES 64

/* ---------------------------------------------------------- open, close */
enum {
    CRAFT_STORE_READWRITE = 0,
    CRAFT_STORE_CREATE = 1,          /* create the file (mode 0600) when absent */
    CRAFT_STORE_READONLY = 2         /* refuses writes; leaves no -wal/-shm files behind (store.c) */
};

typedef struct craft_store craft_store;

/* Opens (and with CRAFT_STORE_CREATE creates) a store and migrates it to
 * CRAFT_STORE_VERSION. A file from a newer program is refused (CRAFT_EUNSUPPORTED). */
int craft_store_open(craft_store **out, const char *path, int flags, craft_error *err);
void craft_store_close(craft_store *s);
const char *craft_store_path(const craft_store *s);
/* The schema version found on disk before migrating (0 for a new file). */
int craft_store_opened_version(const craft_store *s);

/* ---------------------------------------------------------------- cases */
typedef enum {
    CRAFT_CASE_NEW = 0,
    CRAFT_CASE_IN_REVIEW,
    CRAFT_CASE_CONFIRMED,            /* confirmed defect */
    CRAFT_CASE_FALSE_POSITIVE,
    CRAFT_CASE_ESCALATED,
    CRAFT_CASE_NEEDS_INFO,
    CRAFT_CASE_N_STATUS
} craft_case_status;

/* "new", "in_review", "confirmed_defect", "false_positive", "escalated", "needs_info" */
const char *craft_case_status_name(int status);
/* "New", "In review", "Confirmed defect", "False positive", "Escalated", "Needs info" */
const char *craft_case_status_label(int status);
/* Accepts the names above (and "in-review", "confirmed", "fp"); -1 when unknown. */
int craft_case_status_parse(const char *name);

typedef struct {
    int64_t id;                      /* case id */
    int64_t order;                   /* order row id */
    char *order_id;
    int64_t model_id;                /* the model whose scores flagged it */
    int status;                      /* craft_case_status */
    char *assignee;                  /* NULL when unassigned */
    int priority;                    /* higher first; 0 normal */
    int top_class;                   /* class index of the highest score, in the model's classes */
    float top_score;
    char *decided_classes;           /* "D2,D3" for a confirmed defect, else NULL */
    double created, updated;         /* Unix seconds */
} craft_case;

void craft_case_free(craft_case *c);

/* The case of an order, by the order's external id (CRAFT_EINPUT when none). */
int craft_store_case_by_order(craft_store *s, const char *order_id, craft_case *out, craft_error *err);
int craft_store_case_get(craft_store *s, int64_t case_id, craft_case *out, craft_error *err);

/* Case actions. `actor` names who acts (required, non-empty). Each is one
 * durable transaction with its audit row.
 * decide: sets the status. For CRAFT_CASE_CONFIRMED, `classes` ("D2" or "D2,D3",
 * NULL = the case's top class) names the confirmed defect classes, and every
 * class of the model gets a label (1 for those named, 0 for the rest); for
 * CRAFT_CASE_FALSE_POSITIVE every class gets label 0. Any other status withdraws
 * the labels of an earlier decision (the imported labels stay). `note` (may be NULL) is stored as a note in the same transaction. */
int craft_store_case_decide(craft_store *s, int64_t case_id, int status, const char *classes,
                            const char *actor, const char *note, craft_error *err);
/* assignee NULL or "" unassigns. */
int craft_store_case_assign(craft_store *s, int64_t case_id, const char *assignee, const char *actor,
                            craft_error *err);
int craft_store_case_set_priority(craft_store *s, int64_t case_id, int priority, const char *actor,
                                  craft_error *err);
int craft_store_case_add_note(craft_store *s, int64_t case_id, const char *text, const char *actor,
                              craft_error *err);

/* ---------------------------------------------------------- audit, notes */
typedef struct {
    int64_t id, case_id;
    double at;                       /* Unix seconds */
    char *actor;
    char *action;                    /* "create", "status", "assign", "priority", "note", "replace" (import --replace) */
    char *before, *after;            /* JSON values (may be NULL) */
} craft_audit_entry;

typedef struct {
    int64_t id, case_id;
    double at;
    char *author;
    char *text;
} craft_note;

/* Oldest first. Free with craft_audit_free / craft_notes_free. */
int craft_store_case_audit(craft_store *s, int64_t case_id, craft_audit_entry **out, int *n, craft_error *err);
void craft_audit_free(craft_audit_entry *a, int n);
int craft_store_case_notes(craft_store *s, int64_t case_id, craft_note **out, int *n, craft_error *err);
void craft_notes_free(craft_note *a, int n);

/* Checks the audit log's hash chain (schema 5) and its triggers: every row's hash
 * against the row and the hash before it. CRAFT_OK with *rows and head (the last
 * row's hash: record it elsewhere to detect a later truncation); CRAFT_EFORMAT
 * naming the first broken row (*bad_id) when a row was changed, inserted or
 * removed, or a trigger is missing; CRAFT_EUNSUPPORTED on a store before schema 5. */
int craft_store_audit_verify(craft_store *s, int64_t *rows, int64_t *bad_id, char head[65], craft_error *err);

/* ---------------------------------------------------------------- queue */
typedef enum {
    CRAFT_SORT_TOP_SCORE = 0,        /* highest class score of the model's full prediction */
    CRAFT_SORT_CLASS_SCORE,          /* score of queue.sort_class */
    CRAFT_SORT_TIME,                 /* order time (ts) */
    CRAFT_SORT_STATUS,               /* status, then priority, then top score */
    CRAFT_SORT_PRIORITY,             /* priority, then top score */
    CRAFT_SORT_ORDER_ID,
    CRAFT_SORT_UPDATED               /* last case change */
} craft_queue_sort;

typedef struct {
    int64_t model_id;                /* 0: the most recently scored model */
    int64_t dataset_id;              /* 0: every dataset */
    int cases_only;                  /* 1: only orders with a case (the review queue) */
    uint32_t status_mask;            /* bit s: keep status s; 0 keeps all (implies cases_only) */
    int cls;                         /* -1 any; else keep orders whose score of class cls >= min_score */
    float min_score;                 /* with cls < 0: the top score >= min_score; 0 keeps all */
    const float *class_min;          /* NULL, or [n_classes] per-class thresholds (NaN = ignore the
                                        class): keep orders with some score >= its threshold */
    int n_class_min;
    const char *assignee;            /* NULL any, "" unassigned, else exactly this assignee */
    const char *search;              /* NULL, or a substring of the order id or of an entity id */
    int sort;                        /* craft_queue_sort */
    int sort_class;                  /* for CRAFT_SORT_CLASS_SCORE */
    int ascending;                   /* 0: descending (highest scores, newest first) */
    int64_t offset;                  /* rows skipped (after `seek` when one is given) */
    int limit;                       /* rows per page (1..10000) */
    const struct craft_queue_key *seek; /* keyset paging: NULL, or the key of a row of this same query
                                        (craft_queue_row.key): the page starts just after it */
    int seek_back;                   /* the `limit` rows just before the key instead, or without a key
                                        the last rows of the queue (still returned in queue order;
                                        offset counts backwards from the key or the end) */
} craft_queue_query;

/* A queue row's position in its sort: the sort columns' values and the order row
 * id (the last tie-break). Pass it back as craft_queue_query.seek to read the next
 * (or previous) page by an index seek instead of skipping `offset` rows. */
enum { CRAFT_QV_NULL = 0, CRAFT_QV_INT, CRAFT_QV_REAL, CRAFT_QV_TEXT, CRAFT_QV_BLOB };
typedef struct {
    int type;                        /* CRAFT_QV_* */
    int64_t i;
    double d;
    char *t;                         /* owned; TEXT and BLOB (a tampered row's time may be either) */
    int len;                         /* bytes of t: a NUL inside it must not cut the key short (the
                                        next page would start at the same row again, forever) */
} craft_queue_value;

#define CRAFT_QUEUE_KEY_COLUMNS 3
typedef struct craft_queue_key {
    int sort;                        /* the craft_queue_sort it was read under */
    int n;                           /* sort columns before the order row id (0: no key) */
    craft_queue_value v[CRAFT_QUEUE_KEY_COLUMNS];
    int64_t order;
} craft_queue_key;

/* Deep copy (dst is overwritten, not freed) and release of a key's strings. */
int craft_queue_key_copy(craft_queue_key *dst, const craft_queue_key *src);
void craft_queue_key_clear(craft_queue_key *k);

/* A query that returns the review queue: cases of the latest model, top score first, 100 rows. */
void craft_queue_query_init(craft_queue_query *q);

typedef struct {
    int64_t order;                   /* order row id */
    char *order_id;
    char *ts;                        /* NULL when the order had none */
    int64_t case_id;                 /* 0 when the order has no case */
    int status;                      /* -1 without a case */
    char *assignee;
    int priority;
    int n_classes;
    float scores[CRAFT_STORE_MAX_CLASSES]; /* the model's full prediction; NaN when unscored */
    int top_class;                   /* -1 when unscored */
    float top_score;
    craft_queue_key key;             /* its sort key (craft_store_queue only; n = 0 elsewhere) */
} craft_queue_row;

typedef struct {
    int n;
    craft_queue_row *rows;
    int n_classes;
    char **classes;                  /* the model's class names */
    int64_t model_id;
} craft_queue_page;

int craft_store_queue(craft_store *s, const craft_queue_query *q, craft_queue_page *out, craft_error *err);
void craft_queue_page_free(craft_queue_page *p);
/* Reads q's queue from its start, q->limit rows a read, each page from the last key
 * of the one before (an index seek, however deep), calling fn on every page (the
 * first even when empty) until fn returns non-zero or the queue ends. cancel (may
 * be NULL) is checked before each read: CRAFT_ECANCELLED. */
typedef int (*craft_queue_page_fn)(void *user, const craft_queue_page *page);
int craft_store_queue_each(craft_store *s, const craft_queue_query *q, craft_queue_page_fn fn, void *user,
                           const volatile int *cancel, craft_error *err);
/* The sort keys only of the rows craft_store_queue would return for q (its seek,
 * offset and limit; read in q's direction): the key of every `every`-th row into
 * keys (up to max_keys; caller-zeroed, cleared before being overwritten), the
 * last row's key into last (cleared first), the rows read into n_read. No row data
 * is read: a pass over a long queue (a key per page, for far jumps) costs index
 * reads only. An offset after a key is refused for the time sort read descending
 * (its NULL times are a second segment). */
int craft_store_queue_keys(craft_store *s, const craft_queue_query *q, int every, craft_queue_key *keys, int max_keys,
                           int *n_keys, craft_queue_key *last, int64_t *n_read, craft_error *err);

/* Counts of the query's orders (status_mask, offset and limit ignored): per case
 * status, orders without a case, and the total. */
typedef struct {
    int64_t status[CRAFT_CASE_N_STATUS];
    int64_t no_case;
    int64_t total;
} craft_queue_counts;

int craft_store_queue_counts(craft_store *s, const craft_queue_query *q, craft_queue_counts *out,
                             craft_error *err);

/* ---------------------------------------------------------- one order */
typedef struct {
    int64_t model_id;
    uint32_t used;                   /* bit m: modality m of the model was used */
    uint32_t off;                    /* bit m: modality m was switched off (0 = full model) */
    char *modalities;                /* "tab+txt+graph": the modalities used */
    float scores[CRAFT_STORE_MAX_CLASSES];
} craft_prediction;

typedef struct {
    int64_t model_id;
    int n_tokens;                    /* backbone tokens */
    char **token_names;              /* feature names (tabular backbone) or "0", "1", ... */
    float *importance;               /* [n_tokens] */
    int n_aux;
    char **aux_names;                /* auxiliary modalities of the model */
    float *cmis;                     /* [n_aux, n_tokens], NaN where the auxiliary was unused */
    float *cond_gate, *fuse_gate;    /* [n_aux] mean gates, NaN where unused */
    int n_classes;
    char **classes;
    float *perturb;                  /* [n_classes, n_tokens] or NULL when not computed */
} craft_explanation;

typedef struct {
    int64_t id;
    char *order_id;
    char *ts;
    int64_t dataset_id;
    /* tabular features over the dataset's feature list */
    int n_features;
    char **feature_names;
    int *feature_types;              /* CRAFT_NUMERIC or CRAFT_CATEGORICAL */
    float *values;                   /* numeric value, NaN when missing or categorical */
    char **categories;               /* categorical value, NULL when missing or numeric */
    craft_kv text;                   /* text fields */
    craft_kv entities;               /* entity type -> entity id */
    craft_kv labels;                 /* class -> "0"/"1" (imported or decided) */
    int n_predictions;
    craft_prediction *predictions;   /* of `model_id`: the full model first, then each subset */
    int n_classes;
    char **classes;
    int has_explanation;
    craft_explanation explanation;   /* of `model_id`, full model */
    int has_case;
    craft_case kase;
} craft_order_detail;

/* One order with everything about it. model_id 0: the most recently scored model. */
int craft_store_order_get(craft_store *s, const char *order_id, int64_t model_id, craft_order_detail *out,
                          craft_error *err);
void craft_order_detail_free(craft_order_detail *d);

/* ------------------------------------------------------------- entities */
typedef struct {
    char *type, *entity_id;
    int64_t n_orders;                /* orders linked to the entity */
    char *first_ts, *last_ts;
    int64_t n_cases;                 /* of those, orders with a case */
    int64_t n_confirmed, n_false_positive;
    int n_classes;
    char **classes;                  /* classes seen in labels of its orders */
    int64_t *n_labelled;             /* [n_classes] orders with a label for the class */
    int64_t *n_positive;             /* [n_classes] of those, label 1 */
    int n_recent;
    char **recent_orders;            /* up to `recent` latest order ids, newest first */
} craft_entity_history;

int craft_store_entity_history(craft_store *s, const char *type, const char *entity_id, int recent,
                               craft_entity_history *out, craft_error *err);
/* The same over the entity's orders that order_id may look back on: strictly
 * earlier times (an untimed order: every timed order and the untimed ones stored
 * before it). Never the order itself, so its own label, case and decision are not
 * part of its entity's defect rate. order_id NULL: every order of the entity. */
int craft_store_entity_history_before(craft_store *s, const char *type, const char *entity_id, const char *order_id,
                                      int recent, craft_entity_history *out, craft_error *err);
void craft_entity_history_free(craft_entity_history *h);

/* ------------------------------------------------------ datasets, models */
typedef struct {
    int64_t id;
    char *name;
    int n_features;
    char **feature_names;
    int *feature_types;              /* CRAFT_NUMERIC or CRAFT_CATEGORICAL */
    int64_t n_orders;
    double created;
} craft_dataset_info;

int craft_store_datasets(craft_store *s, craft_dataset_info **out, int *n, craft_error *err);
void craft_dataset_info_free(craft_dataset_info *d, int n);
/* The dataset called name (CRAFT_EINPUT when none). */
int craft_store_dataset_find(craft_store *s, const char *name, int64_t *id, craft_error *err);

typedef struct {
    int64_t id;
    char sha256[65];
    char *path;                      /* as registered (NULL when only the blob is stored) */
    int has_blob;
    char *config_json;
    char *metrics_json;              /* NULL when unknown */
    double trained;                  /* Unix seconds, 0 when unknown */
    double added;
} craft_model_info;

/* Registers a model (idempotent by checkpoint hash). blob: also store the file's bytes. */
int craft_store_model_add(craft_store *s, const craft_model *m, const char *path, int blob, const char *metrics_json,
                          int64_t *model_id, craft_error *err);
int craft_store_models(craft_store *s, craft_model_info **out, int *n, craft_error *err);
void craft_model_info_free(craft_model_info *m, int n);
/* Loads a registered model from its blob, or from its path when no blob is stored. */
int craft_store_model_load(craft_store *s, int64_t model_id, craft_model **out, craft_error *err);
/* The most recently scored model (0 when none). */
int64_t craft_store_latest_model(craft_store *s);
/* 1 when the store holds a case, 0 when none, -1 when it cannot be read (an index probe). */
int craft_store_has_cases(craft_store *s);

/* --------------------------------------------------------------- import */
typedef void (*craft_store_progress_fn)(void *user, uint64_t done, uint64_t bytes, uint64_t total_bytes,
                                        double seconds);
/* Called for each rejected row: "file:line: reason" and the raw row. */
typedef void (*craft_store_reject_fn)(void *user, const char *file, size_t line, const char *reason,
                                      const char *row, size_t row_len);

typedef struct {
    const char *dataset;             /* dataset name (default "default"); created when absent */
    int replace;                     /* a duplicate order_id replaces the stored order */
    int skip_bad;                    /* store good rows; bad rows go to on_reject */
    int max_errors;                  /* all-or-nothing: errors reported before stopping to list (default 20) */
    craft_format format;             /* CRAFT_FORMAT_AUTO: CSV for *.csv */
    craft_store_progress_fn progress;
    void *progress_user;
    craft_store_reject_fn on_reject; /* every bad row (skip_bad), or the listed ones (all-or-nothing) */
    void *reject_user;
    volatile int *cancel;            /* set to 1 from another thread to stop; nothing is stored */
} craft_import_options;

typedef struct {
    uint64_t stored;                 /* orders stored (new + replaced) */
    uint64_t replaced;
    uint64_t bad;                    /* rows rejected */
    uint64_t new_features;           /* features added to the dataset's list */
    double seconds;
} craft_import_stats;

/* Imports files in one transaction: either every good order (all of them, unless
 * skip_bad) is stored, or nothing is. Features are stored by name against the
 * dataset's feature list, which grows as new names appear. On a bad row without
 * skip_bad: CRAFT_EINPUT, err says how many rows were bad, nothing stored. */
int craft_store_import(craft_store *s, const char *const *paths, int n_paths, const craft_import_options *o,
                       craft_import_stats *stats, craft_error *err);

/* ---------------------------------------------------------------- score */
typedef struct {
    int64_t dataset_id;              /* 0: every order */
    int explain;                     /* store importance and CMIS (default on in the CLI) */
    int perturbation;                /* store perturbation importance too (slow) */
    int subsets;                     /* store every modality subset containing the backbone */
    float flag_threshold;            /* used for classes without a model threshold (default 0.5) */
    int batch;                       /* orders per engine batch (default 64) */
    int threads;                     /* <= 0: all cores */
    int only_unscored;               /* skip orders already scored by this model */
    craft_store_progress_fn progress;
    void *progress_user;
    volatile int *cancel;
} craft_store_score_options;

typedef struct {
    uint64_t scored, flagged, new_cases;
    int64_t model_id, run_id;
    double seconds;
    uint64_t failed;                 /* orders skipped: their inputs do not fit the model (see score_errors) */
} craft_store_score_stats;

/* Scores the store's orders with m and stores predictions (the full model and,
 * with subsets, every subset containing the backbone), explanations and cases.
 * Flag rule: an order is flagged when some class k has full-model score
 * >= threshold_k, where threshold_k is the model's metadata "thresholds" entry
 * for class k when present, else o->flag_threshold. A flagged order without a
 * case gets a new case (status new); an existing case keeps its status.
 * All or nothing: the batches are staged in the run's own temporary tables
 * (SQLite's temporary folder: $SQLITE_TMPDIR, else $TMPDIR, else /var/tmp or
 * /tmp) and moved into the store in one short transaction at the end, so a
 * failed, cancelled or killed run leaves the stored scores and cases exactly as
 * they were (the run itself is recorded as failed or cancelled; a killed one
 * stays "running"). An order whose stored inputs do not fit the model (an
 * embedding of the wrong size, no backbone embedding, a non-finite value) is
 * skipped and the run goes on: stats->failed counts them, and the reason of each
 * is stored (craft_store_score_errors) until the model scores the order. Such a
 * run still returns CRAFT_OK. */
int craft_store_score(craft_store *s, const craft_model *m, const char *model_path,
                      const craft_store_score_options *o, craft_store_score_stats *stats, craft_error *err);

typedef struct {
    char *order_id;
    int64_t run_id;                  /* the run that could not score it */
    char *reason;                    /* e.g. embedding "txt" is 1 x 100000, the model takes at most 1 x 10 */
    double at;
} craft_score_error;

/* Orders model_id (0: the latest scored) could not score, with the reason, in
 * time order; run_id non-zero: only those of that run; order_id non-NULL: only
 * that order; limit <= 0: all. Free with craft_score_errors_free. */
int craft_store_score_errors(craft_store *s, int64_t model_id, int64_t run_id, const char *order_id, int limit,
                             craft_score_error **out, int *n, craft_error *err);
void craft_score_errors_free(craft_score_error *e, int n);

/* -------------------------------------------------------------- trainer */
/* Writes the store's orders (of dataset_id, 0 = all) in the JSONL interchange
 * format with their labels: imported labels, overridden by decisions. With
 * labelled_only, orders without any label are left out. *n gets the count. */
int craft_store_export_jsonl(craft_store *s, int64_t dataset_id, int labelled_only, FILE *out, uint64_t *n,
                             craft_error *err);

/* ------------------------------------------------ live re-scoring (app) */
/* Rebuilds the engine inputs of the stored order `order_id` for a model of cfg
 * into row 0 of ob (made by craft_order_batch_init with cap >= 1 and keep_raw = 1;
 * its earlier contents are dropped; ob->in.n becomes 1): tabular features by name
 * (categorical through craft_category_code), stored embeddings, text and entities,
 * and where the model has the built-in `txt` / `graph` encoder modalities and the
 * order has no stored embedding for them, the encoders' vectors made as
 * craft_store_score makes them: text from the order's text fields, graph from
 * every order strictly earlier than it (with the labels as they stand now:
 * imported, overridden by decisions). The graph replay reads every earlier
 * order, so on a large store run it off the UI thread. */
int craft_store_order_batch(craft_store *s, const craft_config *cfg, const char *order_id, craft_order_batch *ob,
                            craft_error *err);

/* One point of the score space: an order's score of one class by the backbone
 * alone (every auxiliary switched off) and by the full model. */
typedef struct {
    int64_t order;                   /* order row id */
    float backbone, full;
    int8_t status;                   /* case status, -1 without a case */
    int8_t label;                    /* the class's label: 1, 0, or -1 when unknown (a decision overrides an import) */
} craft_space_point;

/* Every order that model_id (0: the latest scored) scored both in full and with
 * the backbone alone (craft_store_score with subsets), for class cls, in one
 * query. *out is malloc'ed (free it); *n gets the count. */
int craft_store_score_space(craft_store *s, int64_t model_id, int cls, craft_space_point **out, size_t *n,
                            craft_error *err);

/* Queue rows of the given orders (row ids), in that order; ids not in the store
 * are left out. For a queue of chosen orders (a score-space selection). n <= 10000. */
/* Every order row id of q's queue, in its order (q's seek, offset and limit ignored;
 * *ids malloc'd, NULL when empty). One sorted scan: for the sorts no index serves,
 * where every page read by key is a scan of the whole queue anyway. */
int craft_store_queue_order_ids(craft_store *s, const craft_queue_query *q, int64_t **ids, int64_t *n,
                                craft_error *err);
/* The row ids of n orders named by their external ids (rows: n slots); an id not in
 * the store is an error naming it. */
int craft_store_order_rows(craft_store *s, const char *const *order_ids, int n, int64_t *rows, craft_error *err);
int craft_store_queue_rows(craft_store *s, int64_t model_id, const int64_t *orders, int n, craft_queue_page *out,
                           craft_error *err);

/* The stored predictions of subset `off` (0: the full model; bit m: auxiliary m
 * switched off) of every order with a label, for metrics: scores and labels
 * [n, K] (malloc'ed; labels NaN where unknown; a decision overrides an import). */
int craft_store_labelled_predictions(craft_store *s, int64_t model_id, uint32_t off, float **scores, float **labels,
                                     int *n, int *K, craft_error *err);

#ifdef __cplusplus
}
#endif
#endif
