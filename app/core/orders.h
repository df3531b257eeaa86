/* orders.h: streaming readers of orders (JSON Lines and CSV, FORMATS.md)
 * into engine batches, holding one batch in memory whatever the file size. */
#ifndef CRAFT_ORDERS_H
#define CRAFT_ORDERS_H

#include <stdio.h>

#include "craft.h"

#define CRAFT_MAX_LINE_DEFAULT (64u << 20) /* a longer line is an error, not an allocation */

/* Raw fields an order carries beside the model's inputs: used by the built-in
 * encoders (text, graph), the case store and reports. */
typedef struct {
    int n;
    char **keys;
    char **values;
    int cap;                 /* room in keys and values (craft_kv_add doubles it); 0 for a kv built by hand */
} craft_kv;

/* One batch of orders: the engine's inputs plus identity and provenance. */
typedef struct craft_order_batch {
    craft_batch in;          /* engine inputs, resolved against the model config */
    int keep_raw;            /* keep text, entities and raw features (for the store) */
    char **ids;              /* [cap] order ids */
    char **ts;               /* [cap] timestamps as given (NULL when absent) */
    size_t *line;            /* [cap] 1-based line of the order in its file */
    craft_kv *text;          /* [cap] text fields (keep_raw) */
    craft_kv *entities;      /* [cap] entities (keep_raw) */
    craft_kv *raw_features;  /* [cap] every feature as given, numbers printed (keep_raw) */
    int *has_labels;         /* [cap] the order carried labels */
} craft_order_batch;

int craft_order_batch_init(craft_order_batch *ob, const craft_config *cfg, int cap, int keep_raw,
                           craft_error *err);
void craft_order_batch_free(craft_order_batch *ob);
/* Forgets the orders held (keeps the allocations). */
void craft_order_batch_reset(craft_order_batch *ob, const craft_config *cfg);
const char *craft_kv_get(const craft_kv *kv, const char *key);
/* Appends a copy of (k, v); -1 when out of memory (nothing added). */
int craft_kv_add(craft_kv *kv, const char *k, const char *v);
/* Frees every entry and empties kv. */
void craft_kv_clear(craft_kv *kv);

typedef enum { CRAFT_FORMAT_AUTO, CRAFT_FORMAT_JSONL, CRAFT_FORMAT_CSV } craft_format;

typedef struct craft_reader craft_reader;

/* Opens path ("-" is standard input). AUTO picks CSV for *.csv, JSONL otherwise. */
int craft_reader_open(craft_reader **out, const char *path, craft_format format,
                      const craft_config *cfg, craft_error *err);
/* Sets the longest line accepted (bytes). */
void craft_reader_set_max_line(craft_reader *r, size_t max_line);
/* Appends orders to ob until it is full or the file ends. Returns CRAFT_OK, or
 * an error for the first bad order (err says "file:line: reason"); the bad order
 * is consumed and not added, so the caller may call again to go on past it.
 * *eof is set once the whole file is read. */
int craft_reader_next(craft_reader *r, craft_order_batch *ob, int *eof, craft_error *err);
/* The line number and raw text of the last order read or rejected (for reject files). */
size_t craft_reader_line(const craft_reader *r);
const char *craft_reader_last_text(const craft_reader *r, size_t *len);
/* Bytes consumed so far and the file's size (0 when unknown), for progress. */
void craft_reader_progress(const craft_reader *r, uint64_t *done, uint64_t *total);
void craft_reader_close(craft_reader *r);

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
int craft_utf8_valid(const char *s, size_t len);

#endif
