/* craft-queue-item.h: one row of the case queue (a copy of a craft_queue_row);
 * immutable once read (a placeholder is filled once, see craft_queue_item_fill). */
#ifndef CRAFT_QUEUE_ITEM_H
#define CRAFT_QUEUE_ITEM_H

#include <glib-object.h>

#include "store.h"

G_BEGIN_DECLS

#define CRAFT_TYPE_QUEUE_ITEM (craft_queue_item_get_type())
G_DECLARE_FINAL_TYPE(CraftQueueItem, craft_queue_item, CRAFT, QUEUE_ITEM, GObject)

/* classes: the page's class names (borrowed for the call). */
CraftQueueItem *craft_queue_item_new(const craft_queue_row *row, char **classes);
const char *craft_queue_item_get_order_id(CraftQueueItem *self);
int64_t craft_queue_item_get_case_id(CraftQueueItem *self);
int craft_queue_item_get_status(CraftQueueItem *self);
const char *craft_queue_item_get_top_class(CraftQueueItem *self);
float craft_queue_item_get_top_score(CraftQueueItem *self);
const char *craft_queue_item_get_ts(CraftQueueItem *self);

/* A row still being read from the store (order id NULL, no scores). */
CraftQueueItem *craft_queue_item_new_placeholder(void);
gboolean craft_queue_item_is_placeholder(CraftQueueItem *self);
/* Turns a placeholder into the row read (from: a real row) and emits "filled": the
 * list keeps the row's widgets, which show it when they hear the signal. */
void craft_queue_item_fill(CraftQueueItem *self, CraftQueueItem *from);
/* TRUE when both show the same (a row that did not change between two reads). */
gboolean craft_queue_item_equal(CraftQueueItem *a, CraftQueueItem *b);
G_END_DECLS

#endif
