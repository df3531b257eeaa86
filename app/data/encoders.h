/* encoders.h: the built-in frozen encoders (docs/ENCODERS.md), plain C11.
 *
 * - text: an order's text fields -> one 256-wide L2-normalized vector (`txt`),
 *   bit-identical on every IEEE-754 machine (integer accumulation, one rounding).
 * - graph: an order's entities -> a time-respecting vector (`graph`) built from
 *   orders strictly earlier than the order: activity, smoothed per-class defect
 *   lifts, and a hashed identity sketch per entity type.
 * - craft_encoders_fill: fills the `txt` / `graph` inputs of a batch where the
 *   orders carry no precomputed embedding and the model's modality has the
 *   encoder's width. */
#ifndef CRAFT_ENCODERS_H
#define CRAFT_ENCODERS_H

#include "craft.h"
#include "orders.h"

/* ------------------------------------------------------------------ text */
#define CRAFT_TEXT_DIM 256

typedef struct craft_text_encoder craft_text_encoder;

int craft_text_encoder_new(craft_text_encoder **out, craft_error *err);
void craft_text_encoder_free(craft_text_encoder *te);
/* Encodes the text fields into out[CRAFT_TEXT_DIM]. Returns the number of
 * n-gram occurrences seen (0: no usable text, out is all zeros and the
 * modality should be treated as missing), or -1 when out of memory. */
long craft_text_encode(craft_text_encoder *te, const craft_kv *text, float *out);

/* Encodes the text as up to max_rows rows of CRAFT_TEXT_DIM (out[max_rows][256],
 * rows past *rows zeroed), by mode (the txt modality's "text_tokens"):
 * CRAFT_TEXT_VECTOR: one row, craft_text_encode of every field;
 * CRAFT_TEXT_FIELDS: one row per field, fields in byte order of their names;
 * CRAFT_TEXT_EVENTS: one row per event, the text between '\n', '\r', '|' or ';'
 *   of each field (fields in byte order of their names, events in text order).
 * Each row is craft_text_encode of that field or event alone (namespaced by
 * the field name); a field or event without words gives no row. With more
 * rows than max_rows, the last ones are kept (the latest events). */
int craft_text_encode_rows(craft_text_encoder *te, const craft_kv *text, int mode, int max_rows, float *out,
                           int *rows, craft_error *err);

/* ----------------------------------------------------------------- graph */
#define CRAFT_GRAPH_TYPES 5   /* customer, seller, carrier, route, hub */
#define CRAFT_GRAPH_SKETCH 10 /* hashed identity bits per entity type */

extern const char *const craft_graph_type_names[CRAFT_GRAPH_TYPES];

/* Output width for a model with n_classes classes: 5 x (1 + K + 10). */
int craft_graph_width(int n_classes);
/* Output width with n_types entity types: n_types x (1 + K + 10). */
int craft_graph_width_types(int n_types, int n_classes);

typedef struct craft_graph craft_graph;

/* The encoder of the five default types (craft_graph_type_names). */
int craft_graph_new(craft_graph **out, int n_classes, craft_error *err);
/* The encoder of the given entity types, in block order (NULL or 0 types: the
 * five default types); at most CRAFT_MAX_ENTITY_TYPES, distinct, non-empty. */
int craft_graph_new_types(craft_graph **out, int n_classes, char *const *types, int n_types, craft_error *err);
/* The encoder of a model's graph modality: its "entity_types", else the default five. */
int craft_graph_new_for(craft_graph **out, const craft_config *cfg, int modality, craft_error *err);
void craft_graph_free(craft_graph *g);
int craft_graph_n_types(const craft_graph *g);
const char *craft_graph_type(const craft_graph *g, int t);
/* Entities of the order (non-empty id) whose type is one of the encoder's:
 * 0 means the order gets no graph vector (the modality is missing). */
int craft_graph_known(const craft_graph *g, const craft_kv *entities);

/* Parses an ISO 8601 date-time (YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM],
 * a space allowed for T) into seconds since 1970-01-01T00:00:00Z. */
int craft_graph_parse_time(const char *ts, double *t, craft_error *err);

/* Encodes an order at time t (NaN: no time, i.e. after every order observed so
 * far) into out[craft_graph_width_types(T, K)], from observed orders strictly earlier
 * than t. Refuses (CRAFT_EINPUT) a t earlier than the latest observed time:
 * the state cannot forget, so such an order would see its future. */
int craft_graph_encode(craft_graph *g, const craft_kv *entities, double t, float *out, craft_error *err);

/* Adds an observed order: its entities, time (NaN: now) and labels
 * (labels[K], NaN where unknown; labels may be NULL for none). Any time order
 * is accepted; encoding needs times at or after the latest one observed. */
int craft_graph_observe(craft_graph *g, const craft_kv *entities, double t, const float *labels,
                        craft_error *err);

/* Latest observed time (-inf when none). */
double craft_graph_latest(const craft_graph *g);
/* Orders observed so far. */
uint64_t craft_graph_orders(const craft_graph *g);

/* ----------------------------------------------- filling a batch of orders */
typedef struct craft_encoders craft_encoders;

/* Chooses the encoders that apply to cfg: the text encoder when the model has
 * an embedding modality "txt" of width 256 (rows by its "text_tokens"), the
 * graph encoder when it has an embedding modality "graph" of width
 * craft_graph_width_types(T, K), T its "entity_types" (default: the five). */
int craft_encoders_new(craft_encoders **out, const craft_config *cfg, craft_error *err);
void craft_encoders_free(craft_encoders *enc);
/* True when a built-in encoder would fill modality m of cfg were it not the backbone (txt at the
 * text width, graph at the graph width of its entity types). The encoders never fill the
 * backbone, so the trainer keeps such a modality out of the backbone choice. */
int craft_encoders_would_fill(const craft_config *cfg, int m);
/* True when some encoder applies (the reader must then keep raw fields). */
int craft_encoders_active(const craft_encoders *enc);
/* For each order of ob in turn: fills `txt` from its text and `graph` from its
 * entities where the order has no such embedding (ntok == 0; an order whose
 * entities name none of the encoder's types gets no graph vector), then feeds
 * the order to the graph state. ob must come from a reader with keep_raw = 1.
 * Errors name the order (id and line). */
int craft_encoders_fill(craft_encoders *enc, const craft_config *cfg, craft_order_batch *ob, craft_error *err);

#endif
