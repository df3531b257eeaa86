/* craft-queue-model.c: lazy paged queue model. Page 0 comes with the query's
 * counts in one snapshot (read by a worker, applied at once: the first case shows
 * with the counts, and a new query never reads on the main thread); every other
 * page is read by one worker thread with its own read-only connection, newest
 * request first, while the list shows placeholder rows; a finished page fills its
 * placeholders in place (the items emit "filled"), so the list keeps its row
 * widgets. So scrolling never waits on the store, however deep the page.
 *
 * Pages are read by key (keyset paging, store.h): the first and last row keys of
 * every page read are kept, so the page after (or before) a known one is an index
 * seek from its edge, whatever its depth. A jump to a page far from any known
 * one (a scrollbar drag) skips rows from the nearest known place: the top, the
 * end (read backwards), or a kept key, whichever is closest. For the sorts an
 * index serves, a second worker reads the whole queue's keys once (index reads
 * only, in chunks, dropped when the query changes) after each new query and keeps
 * the last key of every page: once it is through, a jump anywhere is a seek too. A
 * jump before that skips rows by their keys only (craft_store_queue). */
#include "craft-queue-model.h"

#include "craft-background.h"
#include "craft-queue-item.h"

#define CACHED_PAGES 64

struct _CraftQueueModel {
    GObject parent_instance;
    char *store_path;         /* for the worker's own connection */
    craft_queue_query q;
    char *assignee, *search;
    float *class_min;
    craft_queue_counts counts;
    guint n_items;            /* rows of the query */
    guint n_shown;            /* rows the list model holds so far (see craft_queue_model_apply) */
    guint announce_source;    /* adds the next rows shown */
    GHashTable *pages;        /* page index -> GPtrArray of CraftQueueItem */
    GHashTable *pending;      /* page index -> PageRequest of a page requested from the worker */
    GHashTable *placeholders; /* page index -> GPtrArray (a slot per row, NULL until asked for)
                                 of the placeholder items given out for a page on its way */
    GQueue lru;               /* page indices, most recent first */
    GHashTable *first_keys;   /* page index -> craft_queue_key of its first row (kept when the page goes) */
    GHashTable *last_keys;    /* page index -> craft_queue_key of its last row */
    guint pages_by_key;       /* page reads that started at a kept key */
    gboolean sorted_by_case;  /* a sort no index serves (status, priority; the last change over orders
                                 that may have no case): a page read by key would scan the whole
                                 queue, so the query's order is read once (ids_of_query) */
    guint pages_fetched;
    int64_t *ids;             /* a chosen set of orders (score-space selection), the query's own
                                 orders for a sort no index serves (ids_of_query), or NULL */
    gboolean ids_of_query;
    guint generation;         /* bumped at every new query: stale pages are dropped */
    GThreadPool *pool;
    GThreadPool *anchor_pool; /* the pass that keeps every page's last key */
    gboolean anchors_done;    /* that pass is through for the current query */
    guint anchor_min_rows;    /* queues this long or longer get the pass */
    guint64 sequence;         /* pages asked for so far (a page asked for again counts again) */
    guint last_asked;         /* the page asked for last (plus one; 0: none) */
    guint pages_wanted;       /* PAGES_WANTED */
};

/* A page asked for, shared by the model's pending table and the job reading it. A
 * job whose page has not been asked for in the last PAGES_WANTED pages asked for is
 * skipped: scrolling fast or dragging the scrollbar asks for many pages in a few
 * frames, and only the last few are still on screen (a page skipped and shown again
 * is asked for again when its rows are bound). */
#define PAGES_WANTED 8 /* (craft_queue_model_set_pages_wanted) */
typedef struct {
    gint wanted;              /* atomic: 0 once the job may be skipped */
    guint64 asked;            /* the model's sequence when it was last asked for */
} PageRequest;

static void page_request_unref(gpointer r) { g_atomic_rc_box_release(r); }

/* One page request, self-contained: the worker reads no model state. */
typedef struct {
    GWeakRef model;
    guint generation, page;
    guint64 sequence;
    char *path;
    craft_queue_query q;
    char *assignee, *search;
    float *class_min;
    int64_t *ids;
    int n_ids;
    PageRequest *request;     /* (owned reference) still wanted? */
    craft_queue_key seek;     /* seek.n > 0 or seek.order: read from this key (q.seek points here) */
    craft_queue_page result;
    int rc;
} PageJob;

static void craft_queue_model_list_init(GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(CraftQueueModel, craft_queue_model, G_TYPE_OBJECT,
                              G_IMPLEMENT_INTERFACE(G_TYPE_LIST_MODEL, craft_queue_model_list_init))

static GType get_item_type(GListModel *m) { return CRAFT_TYPE_QUEUE_ITEM; }
static guint get_n_items(GListModel *m) { return CRAFT_QUEUE_MODEL(m)->n_shown; }

static void page_job_free(PageJob *j)
{
    g_weak_ref_clear(&j->model);
    g_free(j->path);
    g_free(j->assignee);
    g_free(j->search);
    g_free(j->class_min);
    g_free(j->ids);
    craft_queue_key_clear(&j->seek);
    craft_queue_page_free(&j->result);
    if (j->request)
        page_request_unref(j->request);
    g_free(j);
}

static GPtrArray *items_of(const craft_queue_page *p)
{
    GPtrArray *items = g_ptr_array_new_with_free_func(g_object_unref);
    for (int i = 0; i < p->n; i++)
        g_ptr_array_add(items, craft_queue_item_new(&p->rows[i], p->classes));
    return items;
}

static void key_free(gpointer k)
{
    craft_queue_key_clear(k);
    g_free(k);
}

/* Keeps the page's first and last row keys (for reading its neighbours by key). */
static void keep_keys(CraftQueueModel *self, guint page, const craft_queue_page *p)
{
    if (p->n < 1 || p->rows[0].key.n < 1)
        return;
    craft_queue_key *a = g_new0(craft_queue_key, 1), *b = g_new0(craft_queue_key, 1);
    if (craft_queue_key_copy(a, &p->rows[0].key) || craft_queue_key_copy(b, &p->rows[p->n - 1].key)) {
        key_free(a);
        key_free(b);
        return;
    }
    g_hash_table_insert(self->first_keys, GUINT_TO_POINTER(page), a);
    g_hash_table_insert(self->last_keys, GUINT_TO_POINTER(page), b);
}

static void cache_page(CraftQueueModel *self, guint page, GPtrArray *items)
{
    self->pages_fetched++;
    g_hash_table_insert(self->pages, GUINT_TO_POINTER(page), items);
    g_queue_push_head(&self->lru, GUINT_TO_POINTER(page));
    while (g_queue_get_length(&self->lru) > CACHED_PAGES)
        g_hash_table_remove(self->pages, g_queue_pop_tail(&self->lru));
}

static int read_page(craft_store *s, const craft_queue_query *q, const int64_t *ids, int n_ids, craft_queue_page *p,
                     craft_error *err)
{
    return ids ? craft_store_queue_rows(s, q->model_id, ids, n_ids, p, err) : craft_store_queue(s, q, p, err);
}

/* ------------------------------------------------------------- the worker */

static GPrivate worker_store = G_PRIVATE_INIT((GDestroyNotify)craft_store_close);
static GPrivate worker_path = G_PRIVATE_INIT(g_free);

static gboolean page_arrived(gpointer data)
{
    PageJob *j = data;
    CraftQueueModel *self = g_weak_ref_get(&j->model);
    if (self) {
        if (g_hash_table_lookup(self->pending, GUINT_TO_POINTER(j->page)) == j->request)
            g_hash_table_remove(self->pending, GUINT_TO_POINTER(j->page));
        if (j->generation == self->generation && j->rc == CRAFT_OK) {
            GPtrArray *items = items_of(&j->result);
            guint at = j->page * CRAFT_QUEUE_PAGE;
            guint n = MIN((guint)CRAFT_QUEUE_PAGE, self->n_shown - MIN(at, self->n_shown));
            GPtrArray *given = g_hash_table_lookup(self->placeholders, GUINT_TO_POINTER(j->page));
            /* The placeholders given out become the rows, in place: the list keeps its row
             * widgets (telling it the rows changed would make a page of new ones). */
            gboolean in_place = given && items->len >= n;
            for (guint i = 0; in_place && i < MIN(given->len, items->len); i++) {
                CraftQueueItem *ph = g_ptr_array_index(given, i);
                if (ph) {
                    craft_queue_item_fill(ph, g_ptr_array_index(items, i));
                    g_object_unref(g_ptr_array_index(items, i));
                    g_ptr_array_index(items, i) = g_object_ref(ph);
                }
            }
            g_hash_table_remove(self->placeholders, GUINT_TO_POINTER(j->page));
            cache_page(self, j->page, items);
            keep_keys(self, j->page, &j->result);
            if (n && !in_place) /* none given out, or the store changed under us (fewer rows) */
                g_list_model_items_changed(G_LIST_MODEL(self), at, n, n);
        }
        g_object_unref(self);
    }
    page_job_free(j);
    return G_SOURCE_REMOVE;
}

/* The worker thread's own read-only connection to path (kept for the next job). */
static craft_store *worker_connection(const char *path, craft_error *err)
{
    craft_store *s = g_private_get(&worker_store);
    const char *open_path = g_private_get(&worker_path);
    if (!s || g_strcmp0(open_path, path)) {
        g_private_replace(&worker_store, NULL);
        s = NULL;
        if (craft_store_open(&s, path, CRAFT_STORE_READONLY, err) == CRAFT_OK) {
            g_private_replace(&worker_store, s);
            g_private_replace(&worker_path, g_strdup(path));
        }
    }
    return s;
}

static void page_worker(gpointer data, gpointer pool_data)
{
    craft_background_thread();
    PageJob *j = data;
    CraftQueueModel *self = g_weak_ref_get(&j->model);
    gboolean stale = !self || (guint)g_atomic_int_get(&self->generation) != j->generation ||
                     !g_atomic_int_get(&j->request->wanted);
    if (self)
        g_object_unref(self);
    if (stale) {
        j->rc = CRAFT_ECANCELLED;
        g_idle_add(page_arrived, j);
        return;
    }
    craft_error err = {0};
    craft_store *s = worker_connection(j->path, &err);
    j->rc = s ? read_page(s, &j->q, j->ids, j->n_ids, &j->result, &err) : (int)err.code;
    if (j->rc && j->rc != CRAFT_ECANCELLED)
        g_warning("case queue: %s", err.msg);
    g_idle_add(page_arrived, j);
}

/* ------------------------------------------------------------ anchors */

#define ANCHOR_CHUNK 8192 /* rows per read of the anchor pass (32 pages; at most 10000) */

typedef struct {
    GWeakRef model;
    guint generation;
    guint first_page;         /* keys[i] is the last key of page first_page + i */
    GPtrArray *keys;          /* craft_queue_key* */
    gboolean done;            /* the pass reached the end */
} AnchorBatch;

static void anchor_batch_free(AnchorBatch *b)
{
    g_weak_ref_clear(&b->model);
    g_ptr_array_unref(b->keys);
    g_free(b);
}

static gboolean anchors_arrived(gpointer data)
{
    AnchorBatch *b = data;
    CraftQueueModel *self = g_weak_ref_get(&b->model);
    if (self && b->generation == self->generation) {
        for (guint i = 0; i < b->keys->len; i++) {
            gpointer page = GUINT_TO_POINTER(b->first_page + i);
            if (g_ptr_array_index(b->keys, i) && !g_hash_table_contains(self->last_keys, page)) {
                g_hash_table_insert(self->last_keys, page, g_ptr_array_index(b->keys, i));
                g_ptr_array_index(b->keys, i) = NULL; /* the table owns it now */
            }
        }
        self->anchors_done |= b->done;
    }
    if (self)
        g_object_unref(self);
    anchor_batch_free(b);
    return G_SOURCE_REMOVE;
}

/* Reads the whole queue's keys (no row data), ANCHOR_CHUNK rows at a time from the
 * last key read, handing the last key of every page to the main thread after each
 * chunk; stops when the query changes. */
static void anchor_worker(gpointer data, gpointer pool_data)
{
    craft_background_thread();
    PageJob *j = data;
    craft_error err = {0};
    craft_store *s = worker_connection(j->path, &err);
    craft_queue_key key = {0};
    craft_queue_key *keys = g_new0(craft_queue_key, ANCHOR_CHUNK / CRAFT_QUEUE_PAGE);
    guint64 at = 0; /* rows read */
    for (gboolean done = FALSE; s && !done;) {
        CraftQueueModel *self = g_weak_ref_get(&j->model);
        gboolean stale = !self || (guint)g_atomic_int_get(&self->generation) != j->generation;
        if (self)
            g_object_unref(self);
        if (stale)
            break;
        craft_queue_query q = j->q;
        craft_queue_key from = {0};
        if (key.n && craft_queue_key_copy(&from, &key) != CRAFT_OK)
            break;
        q.seek = key.n ? &from : NULL;
        q.seek_back = 0;
        q.offset = 0;
        q.limit = ANCHOR_CHUNK;
        int n_keys = 0;
        int64_t n_read = 0;
        /* chunks are whole pages, so every 256th row read is the last of a page */
        int rc = craft_store_queue_keys(s, &q, CRAFT_QUEUE_PAGE, keys, ANCHOR_CHUNK / CRAFT_QUEUE_PAGE, &n_keys, &key,
                                        &n_read, &err);
        craft_queue_key_clear(&from);
        if (rc != CRAFT_OK) {
            g_warning("case queue: %s", err.msg);
            break;
        }
        done = n_read < ANCHOR_CHUNK;
        AnchorBatch *b = g_new0(AnchorBatch, 1);
        GObject *m = g_weak_ref_get(&j->model);
        g_weak_ref_init(&b->model, m);
        if (m)
            g_object_unref(m);
        b->generation = j->generation;
        b->first_page = (guint)(at / CRAFT_QUEUE_PAGE);
        b->keys = g_ptr_array_new_with_free_func(key_free);
        b->done = done;
        for (int i = 0; i < n_keys; i++) {
            craft_queue_key *k = g_new0(craft_queue_key, 1);
            *k = keys[i]; /* taken */
            memset(&keys[i], 0, sizeof keys[i]);
            g_ptr_array_add(b->keys, k);
        }
        at += (guint64)n_read;
        if (!key.n)
            done = TRUE;
        g_idle_add(anchors_arrived, b);
    }
    for (int i = 0; i < ANCHOR_CHUNK / CRAFT_QUEUE_PAGE; i++)
        craft_queue_key_clear(&keys[i]);
    g_free(keys);
    craft_queue_key_clear(&key);
    page_job_free(j);
}

/* Newest request first: the rows the user is looking at now. */
static gint newest_first(gconstpointer a, gconstpointer b, gpointer user)
{
    guint64 x = ((const PageJob *)a)->sequence, y = ((const PageJob *)b)->sequence;
    return (x < y) - (x > y);
}

/* Where the worker starts reading page: the kept key, the top or the end with
 * the fewest rows to skip (0 for the neighbour of a page read before). */
static void plan_read(CraftQueueModel *self, guint page, PageJob *j)
{
    guint start = page * CRAFT_QUEUE_PAGE, n = self->n_items;
    guint rows = MIN((guint)CRAFT_QUEUE_PAGE, n - MIN(start, n));
    guint best = start; /* from the top */
    const craft_queue_key *key = NULL;
    gboolean back = FALSE;
    if (rows && n - (start + rows) < best) { /* from the end, backwards */
        best = n - (start + rows);
        back = TRUE;
    }
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, self->last_keys);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        guint a = GPOINTER_TO_UINT(k);
        if (a < page && start - (a + 1) * CRAFT_QUEUE_PAGE <= best) { /* a key wins a tie */
            best = start - (a + 1) * CRAFT_QUEUE_PAGE;
            key = v;
            back = FALSE;
        }
    }
    g_hash_table_iter_init(&it, self->first_keys);
    while (rows && g_hash_table_iter_next(&it, &k, &v)) {
        guint b = GPOINTER_TO_UINT(k);
        if (b > page && b * CRAFT_QUEUE_PAGE - (start + rows) <= best) {
            best = b * CRAFT_QUEUE_PAGE - (start + rows);
            key = v;
            back = TRUE;
        }
    }
    j->q.offset = best;
    j->q.seek_back = back;
    if (back)
        j->q.limit = (int)rows; /* a short last page ends where the queue ends */
    if (key && craft_queue_key_copy(&j->seek, key) == CRAFT_OK) {
        j->q.seek = &j->seek;
        self->pages_by_key++;
    } else if (key) { /* out of memory: from the top */
        j->q.offset = start;
        j->q.seek_back = 0;
        j->q.limit = CRAFT_QUEUE_PAGE;
    }
}

/* A job for the workers: the current query, with its own copies of the strings and
 * thresholds it points to (the model's may change while the job runs). */
static PageJob *page_job_new(CraftQueueModel *self)
{
    PageJob *j = g_new0(PageJob, 1);
    g_weak_ref_init(&j->model, self);
    j->generation = self->generation;
    j->path = g_strdup(self->store_path);
    j->q = self->q;
    j->assignee = g_strdup(self->assignee);
    j->search = g_strdup(self->search);
    j->class_min = self->class_min ? g_memdup2(self->class_min, sizeof(float) * self->q.n_class_min) : NULL;
    j->q.assignee = j->assignee;
    j->q.search = j->search;
    j->q.class_min = j->class_min;
    return j;
}

static void request_page(CraftQueueModel *self, guint page)
{
    if (self->last_asked != page + 1) { /* a page other than the last asked for: the older ones may go */
        self->last_asked = page + 1;
        self->sequence++;
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, self->pending);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            PageRequest *r = v;
            if (GPOINTER_TO_UINT(k) == page)
                r->asked = self->sequence;
            if (r->asked + self->pages_wanted <= self->sequence)
                g_atomic_int_set(&r->wanted, 0);
        }
    }
    PageRequest *r = g_hash_table_lookup(self->pending, GUINT_TO_POINTER(page));
    if (r) {
        r->asked = self->sequence;
        g_atomic_int_set(&r->wanted, 1); /* asked for again before its job ran: keep it */
        return;
    }
    r = g_atomic_rc_box_new0(PageRequest);
    r->wanted = 1;
    r->asked = self->sequence;
    g_hash_table_insert(self->pending, GUINT_TO_POINTER(page), r);
    PageJob *j = page_job_new(self);
    j->page = page;
    j->request = g_atomic_rc_box_acquire(r);
    j->sequence = self->sequence;
    j->q.offset = (int64_t)page * CRAFT_QUEUE_PAGE;
    j->q.limit = CRAFT_QUEUE_PAGE;
    j->q.seek = NULL;
    j->q.seek_back = 0;
    if (!self->ids)
        plan_read(self, page, j);
    if (self->ids) {
        guint at = MIN((guint)j->q.offset, self->n_items);
        j->n_ids = (int)MIN((guint)CRAFT_QUEUE_PAGE, self->n_items - at);
        j->ids = g_memdup2(self->ids + at, sizeof(int64_t) * MAX(j->n_ids, 1));
    }
    g_thread_pool_push(self->pool, j, NULL);
}

/* Starts the anchor pass for the current query (sorts an index serves, long queues). */
static void anchor_start(CraftQueueModel *self)
{
    self->anchors_done = FALSE;
    if (self->ids || !self->store_path || self->sorted_by_case || self->n_items < MAX(self->anchor_min_rows, 1))
        return;
    PageJob *j = page_job_new(self);
    g_thread_pool_push(self->anchor_pool, j, NULL);
}

static void unref_slot(gpointer item)
{
    if (item)
        g_object_unref(item);
}

static gpointer get_item(GListModel *m, guint position)
{
    CraftQueueModel *self = CRAFT_QUEUE_MODEL(m);
    if (position >= self->n_shown || !self->store_path)
        return NULL;
    guint page = position / CRAFT_QUEUE_PAGE;
    GPtrArray *items = g_hash_table_lookup(self->pages, GUINT_TO_POINTER(page));
    if (!items) { /* the first page comes with the query; this one (or it, dropped from the cache) from the worker */
        request_page(self, page);
        GPtrArray *given = g_hash_table_lookup(self->placeholders, GUINT_TO_POINTER(page));
        if (!given) {
            given = g_ptr_array_new_full(CRAFT_QUEUE_PAGE, unref_slot);
            g_ptr_array_set_size(given, CRAFT_QUEUE_PAGE);
            g_hash_table_insert(self->placeholders, GUINT_TO_POINTER(page), given);
        }
        gpointer *slot = &g_ptr_array_index(given, position % CRAFT_QUEUE_PAGE);
        if (!*slot)
            *slot = craft_queue_item_new_placeholder();
        return g_object_ref(*slot);
    }
    guint i = position % CRAFT_QUEUE_PAGE;
    /* the store changed under us (rows fewer than counted): say nothing rather than guess */
    return i < items->len ? g_object_ref(g_ptr_array_index(items, i)) : NULL;
}

static void craft_queue_model_list_init(GListModelInterface *iface)
{
    iface->get_item_type = get_item_type;
    iface->get_n_items = get_n_items;
    iface->get_item = get_item;
}

static void clear_query(CraftQueueModel *self)
{
    g_atomic_int_inc(&self->generation);
    g_clear_pointer(&self->assignee, g_free);
    g_clear_pointer(&self->search, g_free);
    g_clear_pointer(&self->class_min, g_free);
    g_clear_pointer(&self->ids, g_free);
    self->ids_of_query = FALSE;
    g_clear_pointer(&self->store_path, g_free);
    g_hash_table_remove_all(self->pages);
    g_hash_table_remove_all(self->pending);
    g_hash_table_remove_all(self->placeholders);
    self->pages_by_key = 0;
    self->sorted_by_case = FALSE;
    self->anchors_done = FALSE;
    g_hash_table_remove_all(self->first_keys);
    g_hash_table_remove_all(self->last_keys);
    g_queue_clear(&self->lru);
}

static void set_store(CraftQueueModel *self, craft_store *store)
{
    self->store_path = store ? g_strdup(craft_store_path(store)) : NULL;
}

/* ------------------------------------------------------------ snapshots */

struct _CraftQueueSnapshot {
    gboolean empty;           /* no store: the model shows nothing */
    craft_queue_query q;      /* its strings and thresholds point into the copies below */
    char *assignee, *search;
    float *class_min;
    int64_t *ids;             /* chosen orders, or NULL for a query */
    guint n_ids;
    gboolean ids_of_query;    /* ids: the query's own orders, in its order (a sort no index serves) */
    craft_queue_counts counts;
    guint n_items;
    gboolean sorted_by_case;
    craft_queue_page page0;   /* read when has_page0 */
    gboolean has_page0;
    GPtrArray *items0;        /* page0's rows as items (made where it was read) */
};

void craft_queue_snapshot_free(CraftQueueSnapshot *s)
{
    if (!s)
        return;
    g_free(s->assignee);
    g_free(s->search);
    g_free(s->class_min);
    g_free(s->ids);
    craft_queue_page_free(&s->page0);
    if (s->items0)
        g_ptr_array_unref(s->items0);
    g_free(s);
}

CraftQueueSnapshot *craft_queue_snapshot_new_query(const craft_queue_query *q)
{
    CraftQueueSnapshot *s = g_new0(CraftQueueSnapshot, 1);
    if (!q) {
        s->empty = TRUE;
        return s;
    }
    s->q = *q;
    s->q.seek = NULL; /* pages choose their own start */
    s->q.seek_back = 0;
    int by = q->sort;
    s->sorted_by_case = by == CRAFT_SORT_STATUS || by == CRAFT_SORT_PRIORITY ||
                        (by == CRAFT_SORT_UPDATED && !(q->cases_only || q->status_mask || q->assignee));
    s->assignee = g_strdup(q->assignee);
    s->search = g_strdup(q->search && *q->search ? q->search : NULL);
    s->class_min = q->class_min ? g_memdup2(q->class_min, sizeof(float) * q->n_class_min) : NULL;
    s->q.assignee = s->assignee;
    s->q.search = s->search;
    s->q.class_min = s->class_min;
    return s;
}

CraftQueueSnapshot *craft_queue_snapshot_new_orders(int64_t model_id, const int64_t *ids, guint n,
                                                    const craft_queue_counts *counts)
{
    CraftQueueSnapshot *s = g_new0(CraftQueueSnapshot, 1);
    craft_queue_query_init(&s->q);
    s->q.model_id = model_id;
    s->ids = g_memdup2(ids, sizeof(int64_t) * (n ? n : 1));
    s->n_ids = n;
    s->n_items = n;
    s->counts.total = n;
    if (counts)
        s->counts = *counts;
    return s;
}

/* The snapshot's first page (by its ids when it has them) and its items. */
static gboolean read_first_page(CraftQueueSnapshot *s, craft_store *store, GError **error)
{
    craft_error err = {0};
    craft_queue_query q = s->q;
    q.offset = 0;
    q.limit = CRAFT_QUEUE_PAGE;
    if (read_page(store, &q, s->ids, (int)MIN(s->n_ids, (guint)CRAFT_QUEUE_PAGE), &s->page0, &err) != CRAFT_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return FALSE;
    }
    s->has_page0 = TRUE;
    s->items0 = items_of(&s->page0);
    return TRUE;
}

gboolean craft_queue_snapshot_read(CraftQueueSnapshot *s, craft_store *store, GError **error)
{
    if (s->empty)
        return TRUE;
    if (s->ids)
        return read_first_page(s, store, error);
    craft_error err = {0};
    if (craft_store_queue_counts(store, &s->q, &s->counts, &err) != CRAFT_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return FALSE;
    }
    /* with a status filter the queue holds only those statuses */
    int64_t n = 0;
    if (s->q.status_mask) {
        for (int st = 0; st < CRAFT_CASE_N_STATUS; st++)
            if (s->q.status_mask & (1u << st)) n += s->counts.status[st];
    } else if (s->q.cases_only) {
        n = s->counts.total - s->counts.no_case;
    } else {
        n = s->counts.total;
    }
    s->n_items = (guint)MIN(n, (int64_t)G_MAXUINT);
    if (s->sorted_by_case) {
        /* No index serves the sort: every page read by key would scan the whole queue
         * again (4-5 s a page for every order of 1,000,000), so its order is read once
         * and its pages by id. */
        int64_t *ids = NULL, n_ids = 0;
        if (craft_store_queue_order_ids(store, &s->q, &ids, &n_ids, &err) != CRAFT_OK) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
            return FALSE;
        }
        s->ids = g_memdup2(ids ? ids : &n_ids, sizeof(int64_t) * (size_t)MAX(n_ids, 1));
        free(ids);
        s->n_ids = s->n_items = (guint)MIN(n_ids, (int64_t)G_MAXUINT);
        s->ids_of_query = TRUE;
    }
    return read_first_page(s, store, error); /* the first rows show with the counts */
}

/* The new first page with the old items kept where a row did not change: a list
 * widget finds the rows it shows by item, so an unchanged row keeps its widgets
 * (re-creating every shown row costs tens of ms on the main thread). */
static guint reuse_items(GPtrArray *items, GPtrArray *old)
{
    guint kept = 0;
    GHashTable *by_order = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < old->len; i++) {
        CraftQueueItem *it = g_ptr_array_index(old, i);
        if (!craft_queue_item_is_placeholder(it))
            g_hash_table_insert(by_order, (gpointer)craft_queue_item_get_order_id(it), it);
    }
    for (guint i = 0; i < items->len; i++) {
        CraftQueueItem *it = g_ptr_array_index(items, i);
        CraftQueueItem *was = craft_queue_item_is_placeholder(it) ? NULL
                            : g_hash_table_lookup(by_order, craft_queue_item_get_order_id(it));
        if (was && craft_queue_item_equal(was, it)) {
            g_ptr_array_index(items, i) = g_object_ref(was);
            g_object_unref(it);
            kept++;
        }
    }
    g_hash_table_unref(by_order);
    return kept;
}

/* Rows told to the list widget per step. GTK 4.8's list widgets make row widgets for
 * up to 200 rows around the top shown row whatever its height: told at once, a new
 * queue costs ~200 rows of widgets (tens of ms) in one main-loop turn. */
#define ANNOUNCE_ROWS 64
#define ANNOUNCE_INTERVAL_MS 20

static void announce_step(CraftQueueModel *self)
{
    guint at = self->n_shown, head = MIN(self->n_items, (guint)CRAFT_QUEUE_PAGE);
    guint next = at < head ? MIN(head, at + ANNOUNCE_ROWS) : self->n_items;
    self->n_shown = next;
    if (next > at)
        g_list_model_items_changed(G_LIST_MODEL(self), at, 0, next - at);
}

static gboolean announce_more(gpointer data)
{
    CraftQueueModel *self = data;
    announce_step(self);
    if (self->n_shown < self->n_items)
        return G_SOURCE_CONTINUE;
    self->announce_source = 0;
    return G_SOURCE_REMOVE;
}

static void announce_all(CraftQueueModel *self)
{
    g_clear_handle_id(&self->announce_source, g_source_remove);
    while (self->n_shown < self->n_items)
        announce_step(self);
}

void craft_queue_model_apply(CraftQueueModel *self, craft_store *store, CraftQueueSnapshot *snap)
{
    g_clear_handle_id(&self->announce_source, g_source_remove);
    guint old = self->n_shown, first = 0;
    GPtrArray *old0 = g_hash_table_lookup(self->pages, GUINT_TO_POINTER(0));
    guint old_w = old0 ? MIN(old0->len, old) : 0; /* the old rows known from the top */
    if (old0)
        g_ptr_array_ref(old0);
    /* The change is told in steps, each leaving the model in a state it can show:
     * the old rows after the first page go; the first rows shown become the new ones
     * (one change over both, so unchanged rows keep their items and widgets); the
     * rest of the first page follows ANNOUNCE_ROWS at a time, a main-loop turn apart,
     * then everything after it. A list widget looks up every added item when a row it
     * tracks (the selected or focused one) is among the removed: so no step that
     * removes rows adds more than a page. */
    if (old > old_w) {
        self->n_shown = old_w;
        g_list_model_items_changed(G_LIST_MODEL(self), old_w, old - old_w, 0);
    }
    clear_query(self);
    memset(&self->counts, 0, sizeof self->counts);
    self->n_items = 0;
    if (store && !snap->empty) {
        set_store(self, store);
        self->q = snap->q;
        self->assignee = g_steal_pointer(&snap->assignee);
        self->search = g_steal_pointer(&snap->search);
        self->class_min = g_steal_pointer(&snap->class_min);
        self->ids = g_steal_pointer(&snap->ids);
        self->ids_of_query = snap->ids_of_query;
        self->counts = snap->counts;
        self->n_items = snap->n_items;
        self->sorted_by_case = snap->sorted_by_case;
        if (snap->has_page0) {
            GPtrArray *items = g_steal_pointer(&snap->items0);
            guint kept = old0 ? reuse_items(items, old0) : 0;
            /* mostly the rows shown before (a refresh after a decision): the list keeps
             * their widgets, so the whole first page is told at once */
            if (kept * 4 >= items->len * 3)
                first = MIN(items->len, self->n_items);
            cache_page(self, 0, items);
            keep_keys(self, 0, &snap->page0);
        }
        if (!self->ids)
            anchor_start(self);
    }
    craft_queue_snapshot_free(snap);
    self->n_shown = MAX(first, MIN(self->n_items, (guint)ANNOUNCE_ROWS));
    if (old_w || self->n_shown)
        g_list_model_items_changed(G_LIST_MODEL(self), 0, old_w, self->n_shown);
    if (self->n_shown < self->n_items)
        self->announce_source = g_timeout_add(ANNOUNCE_INTERVAL_MS, announce_more, self);
    if (old0)
        g_ptr_array_unref(old0);
}

gboolean craft_queue_model_get_settled(CraftQueueModel *self) { return self->n_shown == self->n_items; }

/* The worker of read_async: its own read-only connection, opened for the job. */
typedef struct { CraftQueueSnapshot *snap; char *path; } SnapshotJob;

static void snapshot_job_free(SnapshotJob *j)
{
    craft_queue_snapshot_free(j->snap);
    g_free(j->path);
    g_free(j);
}

gboolean craft_queue_snapshot_read_from(CraftQueueSnapshot *snap, const char *store_path, GError **error)
{
    craft_store *s = NULL;
    craft_error err = {0};
    gboolean ok = craft_store_open(&s, store_path, CRAFT_STORE_READONLY, &err) == CRAFT_OK;
    if (!ok)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
    else
        ok = craft_queue_snapshot_read(snap, s, error);
    if (s)
        craft_store_close(s);
    return ok;
}

static void snapshot_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    craft_background_thread();
    SnapshotJob *j = data;
    GError *error = NULL;
    if (craft_queue_snapshot_read_from(j->snap, j->path, &error))
        g_task_return_pointer(task, g_steal_pointer(&j->snap), (GDestroyNotify)craft_queue_snapshot_free);
    else
        g_task_return_error(task, error);
}

void craft_queue_snapshot_read_async(CraftQueueSnapshot *snap, const char *store_path, GCancellable *cancel,
                                     GAsyncReadyCallback callback, gpointer user)
{
    SnapshotJob *j = g_new0(SnapshotJob, 1);
    j->snap = snap;
    j->path = g_strdup(store_path);
    GTask *task = g_task_new(NULL, cancel, callback, user);
    g_task_set_source_tag(task, craft_queue_snapshot_read_async);
    g_task_set_task_data(task, j, (GDestroyNotify)snapshot_job_free);
    g_task_run_in_thread(task, snapshot_thread);
    g_object_unref(task);
}

CraftQueueSnapshot *craft_queue_snapshot_read_finish(GAsyncResult *res, GError **error)
{
    return g_task_propagate_pointer(G_TASK(res), error);
}

gboolean craft_queue_model_set_query(CraftQueueModel *self, craft_store *store, const craft_queue_query *q,
                                     GError **error)
{
    CraftQueueSnapshot *snap = craft_queue_snapshot_new_query(store ? q : NULL);
    gboolean ok = !store || craft_queue_snapshot_read(snap, store, error);
    if (!ok) { /* the counts failed: the queue shows nothing (pages would fail alike) */
        craft_queue_snapshot_free(snap);
        snap = craft_queue_snapshot_new_query(NULL);
    }
    craft_queue_model_apply(self, store, snap);
    announce_all(self);
    return ok;
}

gboolean craft_queue_model_is_selection(CraftQueueModel *self) { return self->ids && !self->ids_of_query; }

const int64_t *craft_queue_model_get_orders(CraftQueueModel *self, guint *n)
{
    *n = craft_queue_model_is_selection(self) ? self->n_items : 0;
    return craft_queue_model_is_selection(self) ? self->ids : NULL;
}
const craft_queue_counts *craft_queue_model_get_counts(CraftQueueModel *self) { return &self->counts; }
guint craft_queue_model_get_pages_fetched(CraftQueueModel *self) { return self->pages_fetched; }
guint craft_queue_model_get_pages_pending(CraftQueueModel *self) { return g_hash_table_size(self->pending); }
guint craft_queue_model_get_pages_by_key(CraftQueueModel *self) { return self->pages_by_key; }
gboolean craft_queue_model_get_anchored(CraftQueueModel *self) { return self->anchors_done; }
void craft_queue_model_set_anchor_min_rows(CraftQueueModel *self, guint rows) { self->anchor_min_rows = rows; }
void craft_queue_model_set_pages_wanted(CraftQueueModel *self, guint pages) { self->pages_wanted = MAX(pages, 1); }

static void craft_queue_model_dispose(GObject *o)
{
    CraftQueueModel *self = CRAFT_QUEUE_MODEL(o);
    g_atomic_int_inc(&self->generation);
    g_clear_handle_id(&self->announce_source, g_source_remove);
    if (self->pool) {
        /* queued requests are dropped; a running one finishes and finds the model gone */
        g_thread_pool_free(self->pool, TRUE, FALSE);
        self->pool = NULL;
    }
    if (self->anchor_pool) {
        g_thread_pool_free(self->anchor_pool, TRUE, FALSE);
        self->anchor_pool = NULL;
    }
    G_OBJECT_CLASS(craft_queue_model_parent_class)->dispose(o);
}

static void craft_queue_model_finalize(GObject *o)
{
    CraftQueueModel *self = CRAFT_QUEUE_MODEL(o);
    clear_query(self);
    g_hash_table_unref(self->pages);
    g_hash_table_unref(self->pending);
    g_hash_table_unref(self->placeholders);
    g_hash_table_unref(self->first_keys);
    g_hash_table_unref(self->last_keys);
    G_OBJECT_CLASS(craft_queue_model_parent_class)->finalize(o);
}

static void craft_queue_model_class_init(CraftQueueModelClass *k)
{
    G_OBJECT_CLASS(k)->dispose = craft_queue_model_dispose;
    G_OBJECT_CLASS(k)->finalize = craft_queue_model_finalize;
}

static void craft_queue_model_init(CraftQueueModel *self)
{
    self->pages = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)g_ptr_array_unref);
    self->pending = g_hash_table_new_full(NULL, NULL, NULL, page_request_unref);
    self->placeholders = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)g_ptr_array_unref);
    self->first_keys = g_hash_table_new_full(NULL, NULL, NULL, key_free);
    self->last_keys = g_hash_table_new_full(NULL, NULL, NULL, key_free);
    g_queue_init(&self->lru);
    self->pool = g_thread_pool_new(page_worker, NULL, 1, FALSE, NULL);
    self->anchor_pool = g_thread_pool_new(anchor_worker, NULL, 1, FALSE, NULL);
    self->anchor_min_rows = 64 * CRAFT_QUEUE_PAGE;
    self->pages_wanted = PAGES_WANTED;
    g_thread_pool_set_sort_function(self->pool, newest_first, NULL);
}

CraftQueueModel *craft_queue_model_new(void) { return g_object_new(CRAFT_TYPE_QUEUE_MODEL, NULL); }
