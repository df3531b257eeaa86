/* craft-queue-model.h: the case queue as a lazy GListModel over the case store.
 * Only the count and the first page are known up front (read together, see
 * CraftQueueSnapshot); other rows are fetched a page at a time when a list widget
 * asks for them, and recent pages are kept, read by a worker with its own
 * connection, placeholder rows (craft_queue_item_is_placeholder) standing in
 * until they arrive. Call from the main thread only. */
#ifndef CRAFT_QUEUE_MODEL_H
#define CRAFT_QUEUE_MODEL_H

#include <gio/gio.h>

#include "store.h"

G_BEGIN_DECLS

#define CRAFT_TYPE_QUEUE_MODEL (craft_queue_model_get_type())
G_DECLARE_FINAL_TYPE(CraftQueueModel, craft_queue_model, CRAFT, QUEUE_MODEL, GObject)

#define CRAFT_QUEUE_PAGE 256

CraftQueueModel *craft_queue_model_new(void);
/* Points the model at a store (not owned; NULL empties it) and a query (copied;
 * offset and limit are the model's own), reading its counts and first page on the
 * calling thread (the window reads a snapshot in a worker instead and applies it).
 * Emits items-changed for everything before it returns. */
gboolean craft_queue_model_set_query(CraftQueueModel *self, craft_store *store, const craft_queue_query *q,
                                     GError **error);
/* What a query (or a set of chosen orders) shows: its counts and first page, read
 * anywhere (a worker on its own connection), then applied on the main thread in
 * one step. So a new query never reads the store on the main thread: the old rows
 * stay until the new ones are ready. */
typedef struct _CraftQueueSnapshot CraftQueueSnapshot;
/* q copied; NULL: an empty queue. */
CraftQueueSnapshot *craft_queue_snapshot_new_query(const craft_queue_query *q);
/* ids copied; counts per status copied (may be NULL). */
CraftQueueSnapshot *craft_queue_snapshot_new_orders(int64_t model_id, const int64_t *ids, guint n,
                                                    const craft_queue_counts *counts);
/* Reads it from store (a connection of the calling thread). */
gboolean craft_queue_snapshot_read(CraftQueueSnapshot *snap, craft_store *store, GError **error);
/* Reads it through a read-only connection of its own to store_path (any thread). */
gboolean craft_queue_snapshot_read_from(CraftQueueSnapshot *snap, const char *store_path, GError **error);
/* Reads it in a worker with its own read-only connection to store_path (takes snap). */
void craft_queue_snapshot_read_async(CraftQueueSnapshot *snap, const char *store_path, GCancellable *cancel,
                                     GAsyncReadyCallback callback, gpointer user);
/* The snapshot read (the caller's), or NULL with error set. */
CraftQueueSnapshot *craft_queue_snapshot_read_finish(GAsyncResult *res, GError **error);
void craft_queue_snapshot_free(CraftQueueSnapshot *snap);
/* Shows a read snapshot (taken) over store (not owned; NULL empties the model). The
 * first rows are told at once, the rest of the first page a few main-loop turns later
 * (see get_settled), so no turn makes a page of row widgets. Main thread. */
void craft_queue_model_apply(CraftQueueModel *self, craft_store *store, CraftQueueSnapshot *snap);
/* TRUE once the list holds every row of the query applied last (set_query
 * settles at once). */
gboolean craft_queue_model_get_settled(CraftQueueModel *self);

/* TRUE while the model shows chosen orders rather than a query. */
gboolean craft_queue_model_is_selection(CraftQueueModel *self);
/* The chosen orders' row ids while is_selection (owned by the model); NULL otherwise. */
const int64_t *craft_queue_model_get_orders(CraftQueueModel *self, guint *n);
/* Counts per status of the current query (valid after set_query). */
const craft_queue_counts *craft_queue_model_get_counts(CraftQueueModel *self);
/* Pages fetched from the store so far (for tests of laziness). */
guint craft_queue_model_get_pages_fetched(CraftQueueModel *self);
/* Pages requested from the worker and not yet arrived. */
guint craft_queue_model_get_pages_pending(CraftQueueModel *self);
/* Page reads of the current query that started from a kept row key (the neighbour of a page read before). */
guint craft_queue_model_get_pages_by_key(CraftQueueModel *self);
/* TRUE once the background pass over the current query has kept the last key of every
 * page (for the sorts an index serves, queues of at least the set number of rows;
 * default 64 pages): from then on a jump to any page is read by key. */
gboolean craft_queue_model_get_anchored(CraftQueueModel *self);
void craft_queue_model_set_anchor_min_rows(CraftQueueModel *self, guint rows);
/* A page read still waiting when this many other pages have been asked for since is
 * skipped (default 8; a page skipped is read when asked for again). */
void craft_queue_model_set_pages_wanted(CraftQueueModel *self, guint pages);

G_END_DECLS

#endif
