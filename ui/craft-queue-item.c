/* craft-queue-item.c: an immutable queue row for list widgets. */
#include "craft-queue-item.h"

#include <math.h>

struct _CraftQueueItem {
    GObject parent_instance;
    char *order_id, *ts, *top_class;
    int64_t case_id;
    int status;
    float top_score;
};

G_DEFINE_FINAL_TYPE(CraftQueueItem, craft_queue_item, G_TYPE_OBJECT)

enum { SIGNAL_FILLED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void craft_queue_item_finalize(GObject *o)
{
    CraftQueueItem *self = CRAFT_QUEUE_ITEM(o);
    g_free(self->order_id);
    g_free(self->ts);
    g_free(self->top_class);
    G_OBJECT_CLASS(craft_queue_item_parent_class)->finalize(o);
}

static void craft_queue_item_class_init(CraftQueueItemClass *k)
{
    G_OBJECT_CLASS(k)->finalize = craft_queue_item_finalize;
    signals[SIGNAL_FILLED] = g_signal_new("filled", G_TYPE_FROM_CLASS(k), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 0);
}
static void craft_queue_item_init(CraftQueueItem *self) {}

CraftQueueItem *craft_queue_item_new(const craft_queue_row *row, char **classes)
{
    CraftQueueItem *self = g_object_new(CRAFT_TYPE_QUEUE_ITEM, NULL);
    self->order_id = g_strdup(row->order_id);
    self->ts = g_strdup(row->ts);
    self->case_id = row->case_id;
    self->status = row->status;
    self->top_score = row->top_score;
    self->top_class = g_strdup(row->top_class >= 0 && classes ? classes[row->top_class] : "");
    return self;
}

const char *craft_queue_item_get_order_id(CraftQueueItem *self) { return self->order_id; }
int64_t craft_queue_item_get_case_id(CraftQueueItem *self) { return self->case_id; }
int craft_queue_item_get_status(CraftQueueItem *self) { return self->status; }
const char *craft_queue_item_get_top_class(CraftQueueItem *self) { return self->top_class; }
float craft_queue_item_get_top_score(CraftQueueItem *self) { return self->top_score; }
const char *craft_queue_item_get_ts(CraftQueueItem *self) { return self->ts ? self->ts : ""; }

CraftQueueItem *craft_queue_item_new_placeholder(void)
{
    CraftQueueItem *self = g_object_new(CRAFT_TYPE_QUEUE_ITEM, NULL);
    self->status = -1;
    self->top_score = NAN;
    self->top_class = g_strdup("");
    return self;
}

gboolean craft_queue_item_is_placeholder(CraftQueueItem *self) { return self->order_id == NULL; }

gboolean craft_queue_item_equal(CraftQueueItem *a, CraftQueueItem *b)
{
    return a->case_id == b->case_id && a->status == b->status &&
           (a->top_score == b->top_score || (isnan(a->top_score) && isnan(b->top_score))) &&
           !g_strcmp0(a->order_id, b->order_id) && !g_strcmp0(a->ts, b->ts) && !g_strcmp0(a->top_class, b->top_class);
}

void craft_queue_item_fill(CraftQueueItem *self, CraftQueueItem *from)
{
    g_return_if_fail(craft_queue_item_is_placeholder(self) && !craft_queue_item_is_placeholder(from));
    self->order_id = g_strdup(from->order_id);
    g_free(self->ts);
    self->ts = g_strdup(from->ts);
    g_free(self->top_class);
    self->top_class = g_strdup(from->top_class);
    self->case_id = from->case_id;
    self->status = from->status;
    self->top_score = from->top_score;
    g_signal_emit(self, signals[SIGNAL_FILLED], 0);
}
