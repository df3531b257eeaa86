/* craft-queue-model.c: lazy paged queue model. */
#include "craft-queue-model.h"

#include "craft-queue-item.h"

#define CACHED_PAGES 8

struct _CraftQueueModel {
    GObject parent_instance;
    craft_store *store;
    craft_queue_query q;
    char *assignee, *search;
    float *class_min;
    craft_queue_counts counts;
    guint n_items;
    char **classes;
    GHashTable *pages;        /* page index -> GPtrArray of CraftQueueItem */
    GQueue lru;               /* page indices, most recent first */
    guint pages_fetched;
    int64_t *ids;             /* a chosen set of orders (score-space selection), or NULL */
};

static void craft_queue_model_list_init(GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(CraftQueueModel, craft_queue_model, G_TYPE_OBJECT,
                              G_IMPLEMENT_INTERFACE(G_TYPE_LIST_MODEL, craft_queue_model_list_init))

static GType get_item_type(GListModel *m) { return CRAFT_TYPE_QUEUE_ITEM; }
static guint get_n_items(GListModel *m) { return CRAFT_QUEUE_MODEL(m)->n_items; }

static GPtrArray *fetch_page(CraftQueueModel *self, guint page)
{
    GPtrArray *items = g_hash_table_lookup(self->pages, GUINT_TO_POINTER(page));
    if (items)
        return items;
    craft_queue_query q = self->q;
    q.offset = (int64_t)page * CRAFT_QUEUE_PAGE;
    q.limit = CRAFT_QUEUE_PAGE;
    craft_queue_page p = {0};
    craft_error err = {0};
    items = g_ptr_array_new_with_free_func(g_object_unref);
    int rc = self->ids ? craft_store_queue_rows(self->store, q.model_id, self->ids + q.offset,
                                                (int)MIN((guint)CRAFT_QUEUE_PAGE, self->n_items - (guint)q.offset), &p, &err)
                       : craft_store_queue(self->store, &q, &p, &err);
    if (rc == CRAFT_OK) {
        for (int i = 0; i < p.n; i++)
            g_ptr_array_add(items, craft_queue_item_new(&p.rows[i], p.classes));
    } else {
        g_warning("case queue: %s", err.msg);
    }
    craft_queue_page_free(&p);
    self->pages_fetched++;
    g_hash_table_insert(self->pages, GUINT_TO_POINTER(page), items);
    g_queue_push_head(&self->lru, GUINT_TO_POINTER(page));
    while (g_queue_get_length(&self->lru) > CACHED_PAGES)
        g_hash_table_remove(self->pages, g_queue_pop_tail(&self->lru));
    return items;
}

static gpointer get_item(GListModel *m, guint position)
{
    CraftQueueModel *self = CRAFT_QUEUE_MODEL(m);
    if (position >= self->n_items || !self->store)
        return NULL;
    GPtrArray *items = fetch_page(self, position / CRAFT_QUEUE_PAGE);
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
    g_clear_pointer(&self->assignee, g_free);
    g_clear_pointer(&self->search, g_free);
    g_clear_pointer(&self->class_min, g_free);
    g_clear_pointer(&self->ids, g_free);
    g_hash_table_remove_all(self->pages);
    g_queue_clear(&self->lru);
}

gboolean craft_queue_model_set_query(CraftQueueModel *self, craft_store *store, const craft_queue_query *q,
                                     GError **error)
{
    guint old = self->n_items;
    clear_query(self);
    self->store = store;
    self->n_items = 0;
    memset(&self->counts, 0, sizeof self->counts);
    gboolean ok = TRUE;
    if (store && q) {
        self->q = *q;
        self->assignee = g_strdup(q->assignee);
        self->search = g_strdup(q->search && *q->search ? q->search : NULL);
        self->class_min = q->class_min ? g_memdup2(q->class_min, sizeof(float) * q->n_class_min) : NULL;
        self->q.assignee = self->assignee;
        self->q.search = self->search;
        self->q.class_min = self->class_min;
        craft_error err = {0};
        if (craft_store_queue_counts(store, &self->q, &self->counts, &err) != CRAFT_OK) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
            ok = FALSE;
        } else {
            /* with a status filter the queue holds only those statuses */
            int64_t n = 0;
            if (self->q.status_mask) {
                for (int s = 0; s < CRAFT_CASE_N_STATUS; s++)
                    if (self->q.status_mask & (1u << s)) n += self->counts.status[s];
            } else if (self->q.cases_only) {
                n = self->counts.total - self->counts.no_case;
            } else {
                n = self->counts.total;
            }
            self->n_items = (guint)MIN(n, (int64_t)G_MAXUINT);
            /* class names come with any page */
            craft_queue_query one = self->q;
            one.limit = 1;
            craft_queue_page p = {0};
            if (craft_store_queue(store, &one, &p, &err) == CRAFT_OK) {
                g_strfreev(self->classes);
                self->classes = g_new0(char *, p.n_classes + 1);
                for (int k = 0; k < p.n_classes; k++)
                    self->classes[k] = g_strdup(p.classes[k]);
            }
            craft_queue_page_free(&p);
        }
    }
    g_list_model_items_changed(G_LIST_MODEL(self), 0, old, self->n_items);
    return ok;
}

gboolean craft_queue_model_set_orders(CraftQueueModel *self, craft_store *store, int64_t model_id, const int64_t *ids,
                                      guint n, const craft_queue_counts *counts)
{
    guint old = self->n_items;
    clear_query(self);
    memset(&self->counts, 0, sizeof self->counts);
    craft_queue_query_init(&self->q);
    self->q.model_id = model_id;
    self->store = store;
    self->ids = g_memdup2(ids, sizeof(int64_t) * (n ? n : 1));
    self->n_items = store ? n : 0;
    self->counts.total = n;
    if (counts)
        self->counts = *counts;
    g_list_model_items_changed(G_LIST_MODEL(self), 0, old, self->n_items);
    return TRUE;
}

gboolean craft_queue_model_is_selection(CraftQueueModel *self) { return self->ids != NULL; }

const craft_queue_counts *craft_queue_model_get_counts(CraftQueueModel *self) { return &self->counts; }
char **craft_queue_model_get_classes(CraftQueueModel *self) { return self->classes; }
guint craft_queue_model_get_pages_fetched(CraftQueueModel *self) { return self->pages_fetched; }

static void craft_queue_model_finalize(GObject *o)
{
    CraftQueueModel *self = CRAFT_QUEUE_MODEL(o);
    clear_query(self);
    g_hash_table_destroy(self->pages);
    g_strfreev(self->classes);
    G_OBJECT_CLASS(craft_queue_model_parent_class)->finalize(o);
}

static void craft_queue_model_class_init(CraftQueueModelClass *k) { G_OBJECT_CLASS(k)->finalize = craft_queue_model_finalize; }

static void craft_queue_model_init(CraftQueueModel *self)
{
    self->pages = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)g_ptr_array_unref);
    g_queue_init(&self->lru);
    self->classes = g_new0(char *, 1);
}

CraftQueueModel *craft_queue_model_new(void) { return g_object_new(CRAFT_TYPE_QUEUE_MODEL, NULL); }
