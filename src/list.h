/* The one list type of the library: intrusive, circular, doubly linked.
 *
 * A zkr__list is both the head of a list and the link embedded in each
 * element; zkr__list_entry() gets from a link back to its element. An
 * initialised link that is on no list points to itself, so "is it queued"
 * is a question the link answers, and removal needs no search. Nothing here
 * allocates: an element can always be queued. Callers lock. */
#ifndef ZKR_LIST_H
#define ZKR_LIST_H

#include <stddef.h>

typedef struct zkr__list {
  struct zkr__list *prev, *next;
} zkr__list;

#define zkr__list_entry(link, type, member) ((type *)((char *)(link)-offsetof(type, member)))

/* Walks head's elements; pos may not be removed (see _safe). */
#define zkr__list_foreach(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
/* Walks head's elements; pos may be removed, tmp holds the next one. */
#define zkr__list_foreach_safe(pos, tmp, head)                                                               \
  for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

static inline void zkr__list_init(zkr__list *l) {
  l->prev = l;
  l->next = l;
}

static inline int zkr__list_empty(const zkr__list *head) {
  return head->next == head;
}

/* 1 while link is on a list (it was initialised). */
static inline int zkr__list_linked(const zkr__list *link) {
  return link->next != link;
}

static inline void zkr__list_insert_after(zkr__list *at, zkr__list *link) {
  link->prev = at;
  link->next = at->next;
  at->next->prev = link;
  at->next = link;
}

static inline void zkr__list_push_front(zkr__list *head, zkr__list *link) {
  zkr__list_insert_after(head, link);
}

static inline void zkr__list_push_back(zkr__list *head, zkr__list *link) {
  zkr__list_insert_after(head->prev, link);
}

/* Unlinks link from its list (if any); it is then on none. */
static inline void zkr__list_remove(zkr__list *link) {
  link->prev->next = link->next;
  link->next->prev = link->prev;
  zkr__list_init(link);
}

/* The first element's link, or NULL when empty. */
static inline zkr__list *zkr__list_first(const zkr__list *head) {
  return zkr__list_empty(head) ? NULL : head->next;
}

#endif
