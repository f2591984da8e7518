/* The contender queue: the one implementation of "ephemeral sequential node,
 * sorted queue, watch the predecessor, grant" that every recipe uses.
 *
 * Each contender is a small state machine driven by ZooKeeper completions
 * and watch events on the client's completion thread; callers block on the
 * contender's condvar, never a thread per waiter. Everything here runs with
 * the session mutex held.
 *
 *   create+list (pipelined) -> place in queue -> watch nearest predecessor
 *        -> it vanishes -> read our own node (the next in line) or list
 *           again (further back) -> grant, if the premises below hold
 *
 * Premises. Every grant rests on them; each is checked here, not assumed,
 * and each has the test that breaks it when the check is removed.
 *
 * P1 "Every node sorting before ours existed when we listed." Suffixes follow
 *    creation order only while the directory's 32-bit child counter is below
 *    its limit; past it the server repeats 2147483647 (3.8) or wraps to
 *    negative values, which sort first. So our own node must carry a
 *    regular suffix, else the acquire fails with ZKR_EEXHAUSTED and the node
 *    is deleted (create_done, stat_done). A node created after our listing
 *    then sorts after ours, or carries an exhausted suffix and never holds
 *    (no zkr contender keeps one; peers past the limit are unsafe on their
 *    own, see the README). Broken by: test_overflow_* (a server started from
 *    a snapshot whose lock directory is at the counter's limit).
 * P2 "Our node still exists when we are granted." Every grant follows a
 *    server answer that shows our node, read after the last event we act
 *    on: a listing that contains it (place), or a read of it sent once the
 *    predecessor's deletion was seen (C_CONFIRM). The order of watch events
 *    alone proves nothing: one multi may delete the predecessor first and
 *    our node second, and events re-armed by a reconnection come in the
 *    client's order. A read sent after the event is answered after every
 *    change the server had applied by then. Broken by:
 *    test_deleted_waiting_node_* (a multi deleting holder and waiter;
 *    deletions while the waiter was cut off, where a grant shows as a term).
 * P3 "Only one predecessor was unaccounted for." A waiter that listed more
 *    than one cannot tell from its predecessor's deletion whether the
 *    earlier ones are gone (held and released) or not (gave up, session
 *    ended): it lists again (advance). Broken by: test_lock_fifo,
 *    test_requests_third_in_line_five.
 * P4 "The node is ours, in this session, and the session usable" at every
 *    grant: a view from before a reconnection never grants (CURATOR-604).
 *    Broken by: test_faults_lost_create_reply_100.
 * P5 "A persistent node named like a contender is no contender"
 *    (zkr__contender_check, the one rule every listing uses): it is skipped
 *    and remembered by the session, so no later listing waits for it or
 *    reads it again. Broken by: test_faults_hostile_directory,
 *    test_participants_skip_persistent, test_persistent_lookalike_read_once.
 * P6 "A completion or watch event is for the attempt that sent it": every
 *    new attempt bumps gen, stale answers are dropped, and a resend deferred
 *    to the next reconnection is dropped too (new_attempt); own-node watch
 *    contexts belong to their contender. Broken by:
 *    test_faults_lost_create_reply_100, test_give_up_while_cut_off_returns.
 *
 * Requests: Curator's count at every position (3 uncontended, 5 waiting):
 * the next in line reads its own node where Curator lists again. A
 * contender that has existed ZKR__OWN_WATCH_AFTER_NS also watches its own
 * node (zkr__queue_arm), so that its deletion by someone else ends a wait
 * (ZKR_ELOST) or a hold (on_lost) at once; shorter waits and holds skip
 * that request, and a deletion of such a young node is seen when the watch
 * is set, or by the read before a grant. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

/* One state per situation. A request cut by connection loss is sent again
 * on reconnection; which one follows from the state (resend()). */
enum cstate {
  C_CREATE,  /* create (and listing) in flight; node unknown */
  C_RECOVER, /* create's reply lost: find our node by uuid */
  C_CHECK,   /* a node with our uuid found: is it ours, in this session? */
  C_LIST,    /* node known, listing in flight */
  C_WAIT,    /* watching what blocks us (a node, or the directory) */
  C_CONFIRM, /* predecessor gone: reading our own node before the grant (P2) */
  C_HELD,    /* granted */
  C_LOST,    /* granted, then lost (session, deadline, node deleted): the
                recipe has yet to release it */
  C_RELEASE, /* delete in flight */
  C_DONE
};

enum opkind {
  K_PARENT,
  K_SYNC,
  K_CREATE,
  K_CONFIRM,
  K_LIST,
  K_WLIST,
  K_STAT,
  K_WATCH,
  K_WEXISTS,
  K_PEEK,
  K_OWNWATCH,
  K_DELETE
};

struct zkr__contender {
  zkr__list link; /* on the session's list of contenders */
  zkr_session *s;
  int refs; /* the recipe's, one per request in flight, one per queued event */
  pthread_cond_t cond;

  char *dir;
  zkr__policy policy; /* the recipe's grant rule, copied */
  char *data;
  const struct ACL_vector *acl;
  void (*on_lost)(void *owner, zkr__contender *c);
  void (*on_granted)(void *owner, zkr__contender *c);
  void (*on_change)(void *owner, zkr__contender *c);
  void *owner;

  char uuid[37];
  char *node; /* full path once known */
  int64_t czxid, owner_sid;

  int state;     /* written through set_state() only: read atomically */
  int rc;        /* result once C_DONE or C_LOST */
  int deferred;  /* the state's request waits for the reconnection */
  int own_step;  /* own-node watch pending a reconnection */
  int own_armed; /* own-node watch sent (see zkr__queue_arm) */
  int64_t started_at;
  int delete_unsure; /* a delete of ours may have run unanswered (conn loss) */
  unsigned gen;      /* bumped per attempt; stale completions are ignored */
  int listed;        /* a live predecessor is known: a try-once can decide */
  int try_once;      /* only find out whether we would wait; set no watch */
  int withdrawing, dropped, closed;
  int lost_reason; /* zkr_lost_reason once lost, else ZKR_LOST_NONE */
  int was_granted;
  int parent_tries;
  int parent_denied; /* creating a missing parent was refused (ACL) */
  int root_missing;  /* even a child of the root could not be created */
  int abandon_rc;    /* why we gave up, reported once the node is deleted */
  int exists_mode;   /* predecessor unreadable: watch with exists */
  char **preds;      /* names sorting before ours, in queue order */
  int npreds;
  zkr__list tickets;  /* our watch contexts not yet fired (ticket.mine) */
  zkr__event lost_ev; /* embedded: the notifications never need memory */
  zkr__event granted_ev;
  zkr__event change_ev;
};

typedef struct zkr__ticket {
  zkr__list link; /* on the session's list of tickets */
  zkr__list mine; /* on its owner's list, while it has one */
  zkr_session *s;
  zkr__contender *owner; /* whose watch this is; NULL once it is freed */
  zkr__contender *c;     /* owner while an event concerns it, else NULL */
  unsigned gen;
  int own;        /* watching our own node */
  int dir;        /* watching the directory's children */
  zkr__waiter *w; /* an observer's wake-up instead of a contender */
} ticket;

typedef struct op {
  zkr__contender *c;
  unsigned gen;
  int kind;
  int64_t sent;
  ticket *t;
  int top; /* K_PARENT: creates a child of the root */
} op;

static void send_create(zkr__contender *c);
static void send_list(zkr__contender *c);
static void send_list_watch(zkr__contender *c);
static void send_watch(zkr__contender *c);
static void send_delete(zkr__contender *c);
static void send_stat(zkr__contender *c);
static void send_own_watch(zkr__contender *c);
static void send_confirm(zkr__contender *c);
static void finish(zkr__contender *c, int rc);

/* --- lifetime -------------------------------------------------------------- */

static void free_preds(zkr__contender *c) {
  int i;

  for (i = 0; i < c->npreds; i++)
    free(c->preds[i]);
  free(c->preds);
  c->preds = NULL;
  c->npreds = 0;
}

static void unref(zkr__contender *c) {
  zkr__list *l;

  if (--c->refs > 0)
    return;
  /* Our watches may still fire: their contexts outlive us, pointing
   * nowhere. Only our own list is walked, not every watch of the session. */
  while ((l = zkr__list_first(&c->tickets)) != NULL) {
    ticket *t = zkr__list_entry(l, ticket, mine);
    zkr__list_remove(l);
    t->c = NULL;
    t->owner = NULL;
  }
  zkr__list_remove(&c->link);
  free_preds(c);
  pthread_cond_destroy(&c->cond);
  free(c->dir);
  free(c->data);
  free(c->node);
  zkr__session_unref(c->s);
  free(c);
}

static op *new_op(zkr__contender *c, int kind) {
  op *o = calloc(1, sizeof(*o));

  if (o == NULL)
    return NULL;
  o->c = c;
  o->gen = c->gen;
  o->kind = kind;
  o->sent = zkr__now_ns();
  c->refs++;
  return o;
}

/* A watch context on the session's list (an observer's when c is NULL). */
static ticket *alloc_ticket(zkr_session *s, zkr__contender *c) {
  ticket *t = calloc(1, sizeof(*t));

  if (t == NULL)
    return NULL;
  t->s = s;
  zkr__list_init(&t->mine);
  zkr__list_push_front(&zkr__session_queue(s)->tickets, &t->link);
  if (c != NULL) {
    t->c = c;
    t->owner = c;
    t->gen = c->gen;
    zkr__list_push_front(&c->tickets, &t->mine);
  }
  return t;
}

static ticket *new_ticket(zkr__contender *c, int own) {
  ticket *t = alloc_ticket(c->s, c);

  if (t != NULL)
    t->own = own;
  return t;
}

static void free_ticket(ticket *t) {
  zkr__list_remove(&t->mine);
  zkr__list_remove(&t->link);
  free(t);
}

/* Ends a completion: records the server's answer for the expiry clock and
 * tells whether the result still concerns the contender. */
static int op_begin(op *o, int rc) {
  zkr__contender *c = o->c;

  if (zkr__zk_answered(rc))
    zkr__session_acked(c->s, o->sent);
  return o->gen == c->gen && c->state != C_DONE;
}

static void op_end(op *o) {
  zkr__contender *c = o->c;

  free(o);
  unref(c);
}

/* Every state change goes through here: zkr__contender_held_now() reads
 * the state without the session mutex. */
static void set_state(zkr__contender *c, int state) {
  __atomic_store_n(&c->state, state, __ATOMIC_RELEASE);
}

/* Starts an attempt that supersedes whatever was in flight or deferred:
 * answers to the old one are stale (P6), and a resend deferred to the next
 * reconnection must not outrank the new attempt (it would make the new
 * one's answers stale in turn and leave us waiting for nothing). */
static void new_attempt(zkr__contender *c) {
  c->gen++;
  c->deferred = 0;
}

/* A zoo_a* call that failed at once will never complete. */
static int sent_ok(op *o, int zrc) {
  if (zrc == ZOK)
    return 1;
  if (o->t != NULL)
    free_ticket(o->t);
  op_end(o);
  return 0;
}

static int is_connloss(int rc) {
  return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT;
}

/* Connection loss: resend the state's request once the session reconnects
 * (resend()). The completion always precedes the next "connected" event on
 * the completion thread. */
static void defer(zkr__contender *c) {
  c->deferred = 1;
}

/* An event holds one reference while queued; one already queued runs once
 * (posting it again coalesces, see zkr__session_post), so it takes none. */
static void post(zkr__contender *c, zkr__event *ev) {
  if (zkr__list_linked(&ev->link))
    return;
  c->refs++;
  if (zkr__session_post(c->s, ev) != ZKR_OK)
    c->refs--;
}

/* Wakes whoever waits on c: threads on its condition, and the recipe's
 * on_change through the event thread (coalesced: queued once). */
static void changed(zkr__contender *c) {
  pthread_cond_broadcast(&c->cond);
  if (c->on_change != NULL)
    post(c, &c->change_ev);
}

static void finish(zkr__contender *c, int rc) {
  set_state(c, C_DONE);
  c->rc = rc;
  c->deferred = 0;
  c->gen++;
  free_preds(c);
  changed(c);
}

/* Fails a contender that has not been granted; its node, if any, is deleted
 * in the background by the session. */
static void fail(zkr__contender *c, int rc) {
  /* Even on a session we gave up on locally: the server may still keep it
   * (and our node) alive. */
  if (c->node != NULL && zkr__session_zh(c->s) != NULL)
    zkr__session_orphan(c->s, c->node);
  finish(c, rc);
}

/* Failure of a request sent at once or completed with an error. */
static void fail_zk(zkr__contender *c, int zrc) {
  int rc = zkr__from_zk(zrc);

  if (rc == ZKR_ESESSION || rc == ZKR_ECLOSED) {
    int u = zkr__session_usable(c->s);
    rc = u != ZKR_OK ? u : rc;
  }
  fail(c, rc);
}

/* --- events on the session thread ------------------------------------------ */

typedef void (*notify_fn)(void *owner, zkr__contender *c);

/* Runs the recipe's callback in *slot (read under the mutex: a dropped
 * contender has none any more), then drops the event's reference. */
static void notify(zkr__contender *c, notify_fn *slot) {
  pthread_mutex_t *mu = zkr__session_mutex(c->s);
  notify_fn cb;
  void *owner;

  pthread_mutex_lock(mu);
  cb = *slot;
  owner = c->owner;
  pthread_mutex_unlock(mu);
  if (cb != NULL)
    cb(owner, c);
  pthread_mutex_lock(mu);
  unref(c);
  pthread_mutex_unlock(mu);
}

static void lost_event(void *arg) {
  notify(arg, &((zkr__contender *)arg)->on_lost);
}

static void granted_event(void *arg) {
  notify(arg, &((zkr__contender *)arg)->on_granted);
}

static void change_event(void *arg) {
  notify(arg, &((zkr__contender *)arg)->on_change);
}

/* A granted contender lost its hold: exactly once. */
static void lose_hold(zkr__contender *c, int rc) {
  if (c->state != C_HELD)
    return;
  set_state(c, C_LOST);
  c->rc = rc;
  c->lost_reason = rc == ZKR_ELOST ? ZKR_LOST_DELETED : zkr__session_lost_reason_locked(c->s);
  c->own_step = 0;
  changed(c);
  post(c, &c->lost_ev);
}

/* --- granting ------------------------------------------------------------- */

static void grant(zkr__contender *c) {
  free_preds(c);
  /* A stale view (say, a listing from before a reconnect) must never grant:
   * the node has to be ours, in this session, and the session usable. */
  if (c->owner_sid != zkr__session_id_locked(c->s) || zkr__session_usable(c->s) != ZKR_OK) {
    fail(c, ZKR_ESESSION);
    return;
  }
  if (c->withdrawing) {
    send_delete(c);
    return;
  }
  set_state(c, C_HELD);
  c->was_granted = 1;
  new_attempt(c);
  changed(c);
  if (c->on_granted != NULL)
    post(c, &c->granted_ev);
}

/* Our node is gone (seen through our own-node watch): a hold ends, a wait
 * fails. Nothing is left to delete. */
static void node_gone(zkr__contender *c) {
  if (c->state == C_HELD)
    lose_hold(c, ZKR_ELOST);
  else if (c->state == C_LIST || c->state == C_WAIT || c->state == C_CONFIRM)
    finish(c, ZKR_ELOST);
}

/* States in which our node is known to exist on our side and a watch on it
 * tells us something. */
static int node_matters(const zkr__contender *c) {
  return c->state == C_HELD || c->state == C_LIST || c->state == C_WAIT || c->state == C_CONFIRM;
}

/* Persistent look-alikes are remembered per session, by full path: every
 * later contender of the session passes them by without reading them again
 * (each read leaves a watch on the node until it changes). */
static int remember_skipped(zkr__contender *c, const char *name) {
  zkr__qstate *q = zkr__session_queue(c->s);
  size_t n = strlen(c->dir) + strlen(name) + 2;
  char **more = realloc(q->skipped, sizeof(char *) * (size_t)(q->nskipped + 1));

  if (more == NULL)
    return 0;
  q->skipped = more;
  q->skipped[q->nskipped] = malloc(n);
  if (q->skipped[q->nskipped] == NULL)
    return 0;
  snprintf(q->skipped[q->nskipped++], n, "%s/%s", c->dir, name);
  return 1;
}

static int is_skipped(const zkr__contender *c, const char *name) {
  zkr__qstate *q = zkr__session_queue(c->s);
  size_t dl = strlen(c->dir);
  int i;

  for (i = 0; i < q->nskipped; i++)
    if (strncmp(q->skipped[i], c->dir, dl) == 0 && q->skipped[i][dl] == '/' &&
        strcmp(q->skipped[i] + dl + 1, name) == 0)
      return 1;
  return 0;
}

/* The nearest predecessor is gone, or (skip) is no contender (P5). With
 * every earlier node accounted for (P1, P3) one read of our own node
 * decides (P2); with earlier nodes unaccounted for, one listing. */
static void advance(zkr__contender *c, int skip) {
  c->npreds--;
  if (skip && !remember_skipped(c, c->preds[c->npreds])) {
    fail(c, ZKR_ENOMEM);
    return;
  }
  free(c->preds[c->npreds]);
  c->exists_mode = 0;
  if (c->npreds == 0) {
    send_confirm(c);
  } else if (skip) {
    send_watch(c);
  } else {
    set_state(c, C_LIST);
    send_list(c);
  }
}

static int cmp_names(const void *a, const void *b) {
  return zkr__name_cmp(a, b);
}

/* Places us in the queue from a listing of the directory, by the recipe's
 * grant rule (its policy). The listing shows our node, so it proves P2 by
 * itself. In a queue (mutex, leader, reader, writer) only earlier nodes are
 * asked about and we wait for the nearest one that blocks us; the others
 * that block are remembered, so its deletion alone decides only when it was
 * the last one (P3). In a pool (leases) every node counts and any of them
 * may go first: the directory itself is watched (watched: this listing set
 * that watch) and every change lists again. */
static void place(zkr__contender *c, const struct String_vector *kids, int watched) {
  const zkr__policy *pol = &c->policy;
  int limit = pol->whole && pol->limit > 1 ? pol->limit : 1;
  const char *mine = strrchr(c->node, '/') + 1;
  zkr__name *names, me;
  int i, n = 0, k;

  if (!zkr__name_parse(mine, &me)) {
    fail(c, ZKR_EZK);
    return;
  }
  names = malloc(sizeof(*names) * (size_t)(kids->count > 0 ? kids->count : 1));
  if (names == NULL) {
    fail(c, ZKR_ENOMEM);
    return;
  }
  k = 0;
  for (i = 0; i < kids->count; i++) {
    zkr__name nm;
    int earlier;

    if (strcmp(kids->data[i], mine) == 0) {
      k = 1;
      continue;
    }
    if (!zkr__name_parse(kids->data[i], &nm) || is_skipped(c, kids->data[i]))
      continue;
    earlier = zkr__name_cmp(&nm, &me) < 0;
    if ((earlier || pol->whole) && (pol->blocks != NULL ? pol->blocks(&me, &nm, earlier) : earlier))
      names[n++] = nm;
  }
  if (!k) {
    free(names);
    finish(c, ZKR_ELOST); /* someone deleted our node, or the session ended */
    return;
  }
  qsort(names, (size_t)n, sizeof(*names), cmp_names);
  free_preds(c);
  c->preds = n > 0 ? malloc(sizeof(char *) * (size_t)n) : NULL;
  for (i = 0; i < n && c->preds != NULL; i++) {
    c->preds[i] = strdup(names[i].name);
    if (c->preds[i] == NULL)
      break;
    c->npreds++;
  }
  free(names);
  if (c->npreds != n) {
    fail(c, ZKR_ENOMEM);
    return;
  }
  if (c->withdrawing) {
    send_delete(c);
  } else if (n < limit) {
    grant(c);
  } else if (!pol->whole) {
    send_watch(c);
  } else if (!watched && !c->try_once) {
    send_list_watch(c);
  } else {
    /* Full: a try stops here; a wait waits for the directory to change. */
    set_state(c, C_WAIT);
    c->listed = 1;
    changed(c);
  }
}

/* P1: our own node must carry a regular suffix. Otherwise it is deleted and
 * the acquire fails with ZKR_EEXHAUSTED once the server confirmed that. */
static int suffix_exhausted(zkr__contender *c) {
  zkr__name me;

  if (!zkr__name_parse(strrchr(c->node, '/') + 1, &me) || !zkr__name_seq_exhausted(&me))
    return 0;
  c->withdrawing = 1;
  c->abandon_rc = ZKR_EEXHAUSTED;
  send_delete(c);
  return 1;
}

/* --- completions ---------------------------------------------------------- */

static void lock_op(op *o) {
  pthread_mutex_lock(zkr__session_mutex(o->c->s));
}

static void unlock_op(zkr_session *s) {
  pthread_mutex_unlock(zkr__session_mutex(s));
}

static void parent_done(int rc, const char *value, const void *data) {
  op *o = (op *)data;
  zkr_session *s = o->c->s;

  (void)value;
  lock_op(o);
  /* Only the create that follows matters, but a failure here names its
   * cause: a refusal, or a root that is not there (a chroot deleted after
   * the session was opened). */
  if (op_begin(o, rc) && o->kind == K_PARENT) {
    if (rc == ZNOAUTH)
      o->c->parent_denied = 1;
    else if (rc == ZNONODE && o->top)
      o->c->root_missing = 1;
  }
  op_end(o);
  unlock_op(s);
}

static void create_done(int rc, const char *name, const struct Stat *stat, const void *data) {
  op *o = (op *)data;
  zkr__contender *c = o->c;
  zkr_session *s = c->s;

  lock_op(o);
  if (!op_begin(o, rc) || c->state != C_CREATE) {
    /* Nobody adopts this node any more (given up, session lost meanwhile):
     * it must not stay in the queue. */
    if (rc == ZOK && zkr__session_zh(s) != NULL)
      zkr__session_orphan(s, name);
  } else {
    if (rc == ZOK) {
      c->node = strdup(name);
      c->czxid = stat->czxid;
      c->owner_sid = stat->ephemeralOwner;
      if (c->node == NULL) {
        zkr__session_orphan(s, name);
        fail(c, ZKR_ENOMEM);
      } else if (!suffix_exhausted(c)) {
        set_state(c, C_LIST); /* the pipelined listing is on its way */
      }
    } else if (rc == ZNONODE && c->parent_denied) {
      fail(c, ZKR_ENOAUTH); /* a missing parent we may not create */
    } else if (rc == ZNONODE && c->root_missing) {
      fail(c, ZKR_ENOCHROOT);
    } else if (rc == ZNONODE && c->parent_tries++ < 5) {
      send_create(c); /* parents missing or reclaimed: make them again */
    } else if (is_connloss(rc)) {
      set_state(c, C_RECOVER);
      defer(c);
    } else {
      fail_zk(c, rc);
    }
  }
  op_end(o);
  unlock_op(s);
}

static void found_by_uuid(zkr__contender *c, const struct String_vector *kids) {
  char tag[64];
  int i;

  snprintf(tag, sizeof(tag), "_c_%s%s", c->uuid, c->policy.marker);
  for (i = 0; i < kids->count; i++) {
    if (strncmp(kids->data[i], tag, strlen(tag)) == 0) {
      size_t n = strlen(c->dir) + strlen(kids->data[i]) + 2;
      c->node = malloc(n);
      if (c->node == NULL) {
        fail(c, ZKR_ENOMEM);
        return;
      }
      snprintf(c->node, n, "%s/%s", c->dir, kids->data[i]);
      send_stat(c);
      return;
    }
  }
  /* The create never happened: make it now, unless we gave up meanwhile. */
  if (c->withdrawing) {
    finish(c, ZKR_ETIMEDOUT);
    return;
  }
  set_state(c, C_CREATE);
  send_create(c);
}

static void list_done(int rc, const struct String_vector *kids, const void *data) {
  op *o = (op *)data;
  zkr__contender *c = o->c;
  zkr_session *s = c->s;
  /* A watched listing leaves its watch only when it succeeds. */
  int registered = o->kind == K_WLIST && rc == ZOK;

  lock_op(o);
  if (registered)
    o->t->c = NULL; /* stale unless we wait on it below */
  else if (o->t != NULL)
    free_ticket(o->t);
  if (op_begin(o, rc)) {
    if (c->state == C_LIST) {
      if (rc == ZOK) {
        place(c, kids, o->kind == K_WLIST);
        if (registered && c->state == C_WAIT && c->gen == o->gen)
          o->t->c = c; /* the directory's next change lists again */
      } else if (is_connloss(rc))
        defer(c);
      else if (rc == ZNONODE)
        fail(c, ZKR_ELOST);
      else
        fail_zk(c, rc);
    } else if (c->state == C_RECOVER) {
      if (rc == ZOK)
        found_by_uuid(c, kids);
      else if (rc == ZNONODE) {
        set_state(c, C_CREATE);
        send_create(c);
      } else if (is_connloss(rc))
        defer(c);
      else
        fail_zk(c, rc);
    }
  }
  op_end(o);
  unlock_op(s);
}

static void sync_done(int rc, const char *value, const void *data) {
  parent_done(rc, value, data);
}

static void stat_done(int rc, const struct Stat *stat, const void *data) {
  op *o = (op *)data;
  zkr__contender *c = o->c;
  zkr_session *s = c->s;

  lock_op(o);
  if (op_begin(o, rc) && c->state == C_CHECK) {
    if (rc == ZOK && stat->ephemeralOwner == zkr__session_id_locked(s)) {
      c->czxid = stat->czxid;
      c->owner_sid = stat->ephemeralOwner;
      if (c->withdrawing) {
        send_delete(c);
      } else if (!suffix_exhausted(c)) {
        set_state(c, C_LIST);
        send_list(c);
      }
    } else if (rc == ZOK || rc == ZNONODE) {
      /* Not ours in this session (left by an expired one) or gone: delete
       * it if it is there, and create afresh under a new name. */
      if (rc == ZOK)
        zkr__session_orphan(s, c->node);
      free(c->node);
      c->node = NULL;
      if (zkr__uuid(c->uuid) != ZKR_OK) {
        fail(c, ZKR_EZK);
      } else {
        set_state(c, C_CREATE);
        send_create(c);
      }
    } else if (is_connloss(rc)) {
      defer(c);
    } else {
      fail_zk(c, rc);
    }
  }
  op_end(o);
  unlock_op(s);
}

static void watch_result(op *o, int rc, const struct Stat *stat) {
  zkr__contender *c = o->c;
  /* getData registers its watch only on success; exists also on NONODE. */
  int registered = o->kind != K_PEEK && (rc == ZOK || (o->kind == K_WEXISTS && rc == ZNONODE));

  if (registered)
    o->t->c = NULL; /* any later event is stale unless re-armed below */
  else if (o->t != NULL)
    free_ticket(o->t);
  if (!op_begin(o, rc) || c->state != C_WAIT)
    return;
  if (rc == ZOK && zkr__contender_check(c->preds[c->npreds - 1], stat->ephemeralOwner, &(zkr__name){0})) {
    /* A live contender is ahead of us: we wait (a try-once stops here). */
    c->listed = 1;
    changed(c);
    if (registered)
      o->t->c = c; /* watch set: its event moves us on */
  } else if (rc == ZOK || rc == ZNONODE) {
    /* Gone already, or a persistent node with a contender's name: that is
     * no contender and would block forever (a listing would show it again,
     * so it is skipped). */
    advance(c, rc == ZOK);
  } else if (rc == ZNOAUTH && !c->exists_mode) {
    /* Unreadable predecessor: an exists-watch needs no permission. */
    c->exists_mode = 1;
    send_watch(c);
  } else if (is_connloss(rc)) {
    defer(c);
  } else {
    fail_zk(c, rc);
  }
}

static void wget_done(int rc, const char *value, int len, const struct Stat *stat, const void *data) {
  op *o = (op *)data;
  zkr_session *s = o->c->s;

  (void)value;
  (void)len;
  lock_op(o);
  watch_result(o, rc, stat);
  op_end(o);
  unlock_op(s);
}

static void wexists_done(int rc, const struct Stat *stat, const void *data) {
  op *o = (op *)data;
  zkr_session *s = o->c->s;

  lock_op(o);
  watch_result(o, rc, stat);
  op_end(o);
  unlock_op(s);
}

/* A read of our own node: the watch that tells us if someone deletes it
 * (K_OWNWATCH), or the read that precedes a grant on the predecessor's
 * deletion (K_CONFIRM, P2), which also sets that watch when none is set. */
static void own_read_done(int rc, const char *value, int len, const struct Stat *stat, const void *data) {
  op *o = (op *)data;
  zkr__contender *c = o->c;
  zkr_session *s = c->s;
  int current;

  (void)value;
  (void)len;
  (void)stat;
  lock_op(o);
  current = op_begin(o, rc);
  if (o->t != NULL && rc != ZOK)
    free_ticket(o->t);
  else if (o->t != NULL)
    c->own_armed = 1; /* the watch is set: its events end a wait or a hold */
  if (o->kind == K_CONFIRM) {
    if (current && c->state == C_CONFIRM) {
      if (rc == ZOK)
        grant(c);
      else if (rc == ZNONODE)
        finish(c, ZKR_ELOST);
      else if (is_connloss(rc)) {
        set_state(c, C_LIST);
        defer(c); /* a fresh listing decides after the reconnection */
      } else {
        fail_zk(c, rc);
      }
    }
  } else if (node_matters(c)) {
    if (rc == ZNONODE)
      node_gone(c); /* deleted by someone else before we looked */
    else if (is_connloss(rc))
      c->own_step = 1;
    /* Any other refusal (an ACL that denies us READ on our own node): it
     * stays unwatched; asking again would only be refused again. */
  }
  op_end(o);
  unlock_op(s);
}

static void delete_done(int rc, const void *data) {
  op *o = (op *)data;
  zkr__contender *c = o->c;
  zkr_session *s = c->s;

  lock_op(o);
  if (op_begin(o, rc) && c->state == C_RELEASE) {
    if (rc == ZNONODE && c->was_granted && !c->withdrawing && !c->delete_unsure) {
      /* Released a hold whose node someone else had deleted, unseen yet
       * (a young hold has no own-node watch): the caller must know. */
      c->lost_reason = ZKR_LOST_DELETED;
      finish(c, ZKR_ELOST);
    } else if (rc == ZNONODE && c->withdrawing && c->abandon_rc == 0 && !c->delete_unsure) {
      finish(c, ZKR_ELOST); /* gave up a wait whose node someone had deleted */
    } else if (rc == ZOK || rc == ZNONODE) {
      finish(c, c->abandon_rc != 0 ? c->abandon_rc : c->withdrawing ? ZKR_ETIMEDOUT : ZKR_OK);
    } else if (is_connloss(rc) && c->dropped) {
      /* Released without waiting and forgotten by its recipe: the
       * session's background deletes keep trying. */
      zkr__session_orphan(s, c->node);
      finish(c, ZKR_OK);
    } else if (is_connloss(rc)) {
      c->delete_unsure = 1; /* it may have run: a NONODE later is our own */
      defer(c);             /* keep trying: our node must not outlive us */
    } else {
      fail_zk(c, rc);
    }
  }
  op_end(o);
  unlock_op(s);
}

/* Watch events: a predecessor (or our own node) changed. */
static void ticket_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  ticket *t = ctx;
  zkr_session *s = t->s;
  zkr__contender *c;

  (void)zh;
  (void)state;
  (void)path;
  /* Session events reach every watcher in the C client; the session's own
   * watcher handles them, and the watch stays registered. */
  if (type == ZOO_SESSION_EVENT)
    return;
  pthread_mutex_lock(zkr__session_mutex(s));
  c = t->c;
  if (t->w != NULL) {
    t->w->fired = 1;
    pthread_cond_broadcast(&t->w->cond);
  } else if (c != NULL && t->own) {
    if (node_matters(c)) {
      if (type == ZOO_DELETED_EVENT)
        node_gone(c);
      else
        send_own_watch(c); /* data changed or watch removed: re-arm */
    }
  } else if (c != NULL && t->gen == c->gen && c->state == C_WAIT) {
    if (t->dir)
      send_list_watch(c); /* any change may have freed a place */
    else if (type == ZOO_DELETED_EVENT)
      advance(c, 0);
    else
      send_watch(c); /* consumed by a data change: watch again */
  }
  free_ticket(t);
  pthread_mutex_unlock(zkr__session_mutex(s));
}

void zkr__watch_fn(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  ticket_watcher(zh, type, state, path, ctx);
}

ticket *zkr__watch_new(zkr_session *s, zkr__waiter *w) {
  ticket *t = alloc_ticket(s, NULL);

  if (t != NULL)
    t->w = w;
  return t;
}

void zkr__watch_done(ticket *t, zkr__waiter *w, int registered) {
  if (w->fired)
    return; /* already handed back by the watcher or the session's loss */
  if (registered)
    t->w = NULL; /* freed when it fires, or with the session */
  else
    free_ticket(t);
}

/* --- sending ------------------------------------------------------------- */

/* What every request of a new attempt starts with: the handle (none once
 * the session is closing), a new attempt in state, the op of kind, and a
 * watch context (ticket: 0 none, 1 on a predecessor or the directory, 2 on
 * our own node). Returns the op, or NULL with c failed. */
static op *begin_send(zkr__contender *c, int state, int kind, int ticket_kind, zhandle_t **zh) {
  op *o;

  *zh = zkr__session_zh(c->s);
  if (*zh == NULL) {
    fail(c, ZKR_ECLOSED);
    return NULL;
  }
  new_attempt(c);
  set_state(c, state);
  o = new_op(c, kind);
  if (o != NULL && ticket_kind != 0) {
    o->t = new_ticket(c, ticket_kind == 2);
    if (o->t == NULL) {
      op_end(o);
      o = NULL;
    }
  }
  if (o == NULL)
    fail(c, ZKR_ENOMEM);
  return o;
}

/* Creates the missing ancestors of dir as containers (the server reclaims
 * them once empty), pipelined ahead of the create that needs them. */
static void send_parents(zkr__contender *c, zhandle_t *zh) {
  char path[ZKR__PATH_MAX + 1];
  const struct ACL_vector *acl = c->acl != NULL ? c->acl : &ZOO_OPEN_ACL_UNSAFE;
  size_t i, n = strlen(c->dir);

  for (i = 1; i <= n; i++) {
    if (i < n && c->dir[i] != '/')
      continue;
    memcpy(path, c->dir, i);
    path[i] = '\0';
    {
      op *o = new_op(c, K_PARENT);
      if (o != NULL)
        o->top = strchr(path + 1, '/') == NULL;
      if (o == NULL || !sent_ok(o, zoo_acreate(zh, path, "", 0, acl, ZOO_CONTAINER, parent_done, o)))
        return;
    }
  }
}

static void send_create(zkr__contender *c) {
  zhandle_t *zh = zkr__session_zh(c->s);
  const struct ACL_vector *acl = c->acl != NULL ? c->acl : &ZOO_OPEN_ACL_UNSAFE;
  char path[ZKR__PATH_MAX + 64];
  op *oc, *ol;
  int zrc;

  if (zh == NULL) {
    fail(c, ZKR_ECLOSED);
    return;
  }
  new_attempt(c);
  set_state(c, C_CREATE);
  if (c->parent_tries > 0)
    send_parents(c, zh);
  snprintf(path, sizeof(path), "%s/_c_%s%s", c->dir, c->uuid, c->policy.marker);
  oc = new_op(c, K_CREATE);
  ol = new_op(c, K_LIST);
  if (oc == NULL || ol == NULL) {
    if (oc != NULL)
      op_end(oc);
    if (ol != NULL)
      op_end(ol);
    fail(c, ZKR_ENOMEM);
    return;
  }
  zrc = zoo_acreate2(zh, path, c->data, (int)strlen(c->data), acl, ZOO_EPHEMERAL_SEQUENTIAL, create_done, oc);
  if (!sent_ok(oc, zrc)) {
    op_end(ol);
    fail_zk(c, zrc);
    return;
  }
  /* Back to back: a session's requests run in order, so this listing sees
   * our node and an uncontended acquire waits one round trip. */
  zrc = zoo_aget_children(zh, c->dir, 0, list_done, ol);
  if (!sent_ok(ol, zrc))
    fail_zk(c, zrc);
}

/* A listing of the directory; with watch, one that also watches it (a
 * pool waiting for a place). */
static void send_listing(zkr__contender *c, int watch) {
  zhandle_t *zh;
  op *o = begin_send(c, C_LIST, watch ? K_WLIST : K_LIST, watch, &zh);
  int zrc;

  if (o == NULL)
    return;
  if (watch) {
    o->t->dir = 1;
    zrc = zoo_awget_children(zh, c->dir, ticket_watcher, o->t, list_done, o);
  } else {
    zrc = zoo_aget_children(zh, c->dir, 0, list_done, o);
  }
  if (!sent_ok(o, zrc))
    fail_zk(c, zrc);
}

static void send_list(zkr__contender *c) {
  send_listing(c, 0);
}

static void send_list_watch(zkr__contender *c) {
  send_listing(c, 1);
}

/* After a lost create reply: sync first, so the listing reflects every
 * request of ours the ensemble accepted before we reconnected. */
static void send_recover(zkr__contender *c) {
  zhandle_t *zh = zkr__session_zh(c->s);
  op *os, *ol;
  int zrc;

  if (zh == NULL) {
    fail(c, ZKR_ECLOSED);
    return;
  }
  new_attempt(c);
  set_state(c, C_RECOVER);
  os = new_op(c, K_SYNC);
  if (os == NULL || !sent_ok(os, zoo_async(zh, c->dir, sync_done, os))) {
    fail(c, os == NULL ? ZKR_ENOMEM : ZKR_ESESSION);
    return;
  }
  ol = new_op(c, K_LIST);
  if (ol == NULL) {
    fail(c, ZKR_ENOMEM);
    return;
  }
  zrc = zoo_aget_children(zh, c->dir, 0, list_done, ol);
  if (!sent_ok(ol, zrc))
    fail_zk(c, zrc);
}

static void send_stat(zkr__contender *c) {
  zhandle_t *zh;
  op *o = begin_send(c, C_CHECK, K_STAT, 0, &zh);
  int zrc;

  if (o == NULL)
    return;
  zrc = zoo_aexists(zh, c->node, 0, stat_done, o);
  if (!sent_ok(o, zrc))
    fail_zk(c, zrc);
}

static void send_watch(zkr__contender *c) {
  char path[ZKR__PATH_MAX + 256];
  zhandle_t *zh;
  op *o = begin_send(c, C_WAIT,
                     c->try_once      ? K_PEEK
                     : c->exists_mode ? K_WEXISTS
                                      : K_WATCH,
                     !c->try_once, &zh);
  int zrc;

  if (o == NULL)
    return;
  snprintf(path, sizeof(path), "%s/%s", c->dir, c->preds[c->npreds - 1]);
  /* A data watch, not an exists watch: on a node already gone, getData
   * leaves nothing behind while exists would leave a creation watch. */
  if (c->try_once) /* a try leaves no watch behind */
    zrc = zoo_aexists(zh, path, 0, wexists_done, o);
  else if (c->exists_mode)
    zrc = zoo_awexists(zh, path, ticket_watcher, o->t, wexists_done, o);
  else
    zrc = zoo_awget(zh, path, ticket_watcher, o->t, wget_done, o);
  if (!sent_ok(o, zrc))
    fail_zk(c, zrc);
}

static void send_own_watch(zkr__contender *c) {
  zhandle_t *zh = zkr__session_zh(c->s);
  op *o;

  c->own_step = 0;
  c->own_armed = 1;
  if (zh == NULL)
    return;
  o = new_op(c, K_OWNWATCH);
  if (o != NULL)
    o->t = new_ticket(c, 1);
  if (o == NULL || o->t == NULL) {
    if (o != NULL)
      op_end(o);
    return; /* out of memory: the hold still ends with the session */
  }
  /* Not waited for: it tells us if someone deletes our node. */
  sent_ok(o, zoo_awget(zh, c->node, ticket_watcher, o->t, own_read_done, o));
}

static void send_confirm(zkr__contender *c) {
  zhandle_t *zh;
  op *o = begin_send(c, C_CONFIRM, K_CONFIRM, c->own_armed ? 0 : 2, &zh);
  int zrc;

  if (o == NULL)
    return;
  /* A hold that begins here is watched from its first moment. getData sets
   * its watch only when the node exists, that is when we are granted: a
   * try that is not granted leaves nothing behind. */
  if (o->t != NULL)
    zrc = zoo_awget(zh, c->node, ticket_watcher, o->t, own_read_done, o);
  else
    zrc = zoo_aget(zh, c->node, 0, own_read_done, o);
  if (!sent_ok(o, zrc))
    fail_zk(c, zrc);
}

static void send_delete(zkr__contender *c) {
  zhandle_t *zh = zkr__session_zh(c->s);
  op *o;
  int zrc;

  if (zh == NULL) {
    finish(c, ZKR_ECLOSED);
    return;
  }
  new_attempt(c);
  set_state(c, C_RELEASE);
  o = new_op(c, K_DELETE);
  if (o == NULL) {
    zkr__session_orphan(c->s, c->node);
    finish(c, ZKR_ENOMEM);
    return;
  }
  zrc = zoo_adelete(zh, c->node, -1, delete_done, o);
  if (!sent_ok(o, zrc))
    fail_zk(c, zrc);
}

/* --- the session's side ---------------------------------------------------- */

/* The request a state waits on, sent again after a connection loss. */
static void resend(zkr__contender *c) {
  switch (c->state) {
  case C_RECOVER:
    send_recover(c);
    break;
  case C_CHECK:
    send_stat(c);
    break;
  case C_LIST:
    send_list(c);
    break;
  case C_WAIT:
    send_watch(c);
    break;
  case C_RELEASE:
    send_delete(c);
    break;
  default:
    break;
  }
}

void zkr__queue_reconnected(zkr_session *s) {
  zkr__list *l;

  zkr__list_foreach(l, &zkr__session_queue(s)->contenders) {
    zkr__contender *c = zkr__list_entry(l, zkr__contender, link);
    int deferred = c->deferred;

    c->deferred = 0;
    /* First, so that it is set before a resent predecessor watch (P2). */
    if (c->own_step && node_matters(c))
      send_own_watch(c);
    if (deferred && c->state != C_DONE)
      resend(c);
  }
}

int64_t zkr__queue_arm(zkr_session *s, int64_t now) {
  int64_t after = zkr__session_own_watch_after(s), next = 0;
  zkr__list *l;

  zkr__list_foreach(l, &zkr__session_queue(s)->contenders) {
    zkr__contender *c = zkr__list_entry(l, zkr__contender, link);
    int64_t due = c->started_at + after;
    /* Not while our node is unknown, nor while a read before a grant is
     * under way (it sets the watch itself), nor while a try decides (it
     * leaves no watch unless it holds): look again shortly, so a try that
     * holds is watched on time too. */
    int now_ok = c->node != NULL && c->state != C_CREATE && c->state != C_RECOVER && c->state != C_CHECK &&
                 c->state != C_CONFIRM && (!c->try_once || c->state == C_HELD);

    if (c->own_armed || c->state == C_DONE || c->state == C_RELEASE || c->state == C_LOST)
      continue;
    if (due <= now && now_ok) {
      send_own_watch(c);
      continue;
    }
    due = due > now ? due : now + after / 10;
    if (next == 0 || due < next)
      next = due;
  }
  return next;
}

void zkr__queue_session_lost(zkr_session *s, int code) {
  zkr__list *l;

  zkr__list_foreach(l, &zkr__session_queue(s)->tickets) {
    ticket *t = zkr__list_entry(l, ticket, link);
    if (t->w != NULL) {
      t->w->fired = 1;
      pthread_cond_broadcast(&t->w->cond);
      t->w = NULL;
    }
  }

  zkr__list_foreach(l, &zkr__session_queue(s)->contenders) {
    zkr__contender *c = zkr__list_entry(l, zkr__contender, link);
    if (c->state == C_DONE)
      continue;
    /* The server may still hold the session (we gave up on our own clock):
     * make sure our node does not block others meanwhile. */
    if (c->node != NULL && code != ZKR_ECLOSED && c->state != C_LOST)
      zkr__session_orphan(s, c->node);
    if (c->node == NULL && (c->state == C_CREATE || c->state == C_RECOVER) && code != ZKR_ECLOSED) {
      /* Our create may have been applied with its reply lost: whatever
       * carries our uuid goes too. */
      char prefix[48];
      snprintf(prefix, sizeof(prefix), "_c_%s", c->uuid);
      zkr__session_orphan_prefix(s, c->dir, prefix);
    }
    if (c->state == C_HELD || c->state == C_LOST) {
      lose_hold(c, code);
      c->gen++;
    } else {
      finish(c, code);
    }
  }
}

int zkr__queue_tickets(zkr_session *s) {
  zkr__list *l;
  int n = 0;

  zkr__list_foreach(l, &zkr__session_queue(s)->tickets) n++;
  return n;
}

void zkr__queue_session_closed(zkr_session *s) {
  zkr__qstate *q = zkr__session_queue(s);

  zkr__list *l;

  while ((l = zkr__list_first(&q->tickets)) != NULL)
    free_ticket(zkr__list_entry(l, ticket, link));
  while (q->nskipped > 0)
    free(q->skipped[--q->nskipped]);
  free(q->skipped);
  q->skipped = NULL;
}

/* --- the recipes' side ----------------------------------------------------- */

int zkr__contender_start(zkr_session *s, const zkr__contender_cfg *cfg, zkr__contender **out) {
  zkr__qstate *q = zkr__session_queue(s);
  zkr__contender *c;
  int rc = zkr__session_usable(s);

  *out = NULL;
  if (rc != ZKR_OK)
    return rc;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return ZKR_ENOMEM;
  if (zkr__uuid(c->uuid) != ZKR_OK) {
    free(c);
    return ZKR_EZK;
  }
  c->dir = strdup(cfg->dir);
  c->data = strdup(cfg->data != NULL ? cfg->data : "");
  if (c->dir == NULL || c->data == NULL || zkr__cond_init(&c->cond) != ZKR_OK) {
    free(c->dir);
    free(c->data);
    free(c);
    return ZKR_ENOMEM;
  }
  c->s = s;
  zkr__session_ref(s);
  c->refs = 1;
  c->policy = *cfg->policy;
  c->acl = cfg->acl;
  c->on_lost = cfg->on_lost;
  c->on_granted = cfg->on_granted;
  c->on_change = cfg->on_change;
  c->owner = cfg->owner;
  c->try_once = cfg->try_once;
  c->started_at = zkr__now_ns();
  zkr__list_init(&c->tickets);
  zkr__event_init(&c->lost_ev, lost_event, c, c);
  zkr__event_init(&c->granted_ev, granted_event, c, c);
  zkr__event_init(&c->change_ev, change_event, c, c);
  zkr__list_push_front(&q->contenders, &c->link);
  send_create(c);
  zkr__session_arm_by(s, c->started_at + zkr__session_own_watch_after(s)); /* its own-node watch */
  *out = c;
  return ZKR_OK;
}

int zkr__contender_outcome(const zkr__contender *c) {
  if (c->closed)
    return ZKR_ECLOSED;
  if (c->state == C_HELD)
    return ZKR_OK;
  if (c->state == C_LOST || c->state == C_DONE)
    return c->rc;
  if (c->try_once && c->listed)
    return ZKR_ETIMEDOUT;
  return ZKR__PENDING;
}

int zkr__contender_wait(zkr__contender *c, int64_t deadline_ns) {
  pthread_mutex_t *mu = zkr__session_mutex(c->s);

  for (;;) {
    int rc = zkr__contender_outcome(c);

    if (rc != ZKR__PENDING)
      return rc;
    /* A try waits for the decision, however long the requests take. */
    if (zkr__cond_wait(&c->cond, mu, c->try_once ? -1 : deadline_ns) != 0)
      return ZKR_ETIMEDOUT;
  }
}

int zkr__contender_withdraw(zkr__contender *c, int64_t give_up_by) {
  pthread_mutex_t *mu = zkr__session_mutex(c->s);

  if (c->state == C_HELD)
    return ZKR_OK;
  c->withdrawing = 1;
  if (c->state == C_LIST || c->state == C_WAIT || c->state == C_CONFIRM || c->state == C_LOST)
    send_delete(c);
  /* C_CREATE / C_RECOVER / C_CHECK: the node is deleted as soon as it is
   * known to be ours. */
  while (c->state != C_DONE)
    if (zkr__cond_wait(&c->cond, mu, give_up_by) != 0)
      return ZKR_ETIMEDOUT; /* unconfirmed: it goes on in the background */
  return c->rc == ZKR_ELOST ? ZKR_ELOST : ZKR_ETIMEDOUT;
}

int64_t zkr__give_up_by(int64_t deadline_ns) {
  int64_t now = zkr__now_ns();

  return deadline_ns < 0 ? -1 : (deadline_ns > now ? deadline_ns : now) + ZKR__GIVE_UP_GRACE_NS;
}

int zkr__contender_settle(zkr__contender *c, int rc, int keep_late, int64_t deadline_ns) {
  int wrc;

  if (rc != ZKR_ETIMEDOUT && rc != ZKR_ECLOSED)
    return rc;
  wrc = zkr__contender_withdraw(c, zkr__give_up_by(deadline_ns));
  if (wrc == ZKR_OK && rc == ZKR_ETIMEDOUT && keep_late)
    return ZKR_OK;
  if (wrc == ZKR_OK)
    zkr__contender_release(c, 0); /* handed back; confirmed in the background */
  else if (wrc == ZKR_ELOST && rc == ZKR_ETIMEDOUT)
    rc = ZKR_ELOST;
  return rc;
}

int zkr__contender_release(zkr__contender *c, int wait) {
  return zkr__contender_release_until(c, wait ? -1 : 0);
}

int zkr__contender_release_until(zkr__contender *c, int64_t until) {
  pthread_mutex_t *mu = zkr__session_mutex(c->s);

  if (c->state != C_HELD && c->state != C_LOST)
    return c->state == C_DONE ? c->rc : ZKR_ENOTHELD;
  if (c->state == C_LOST) {
    finish(c, c->rc);
    return c->rc == ZKR_ELOST ? ZKR_ELOST : ZKR_ESESSION;
  }
  send_delete(c);
  /* Not waiting, the delete goes on in the background (retried across
   * connection loss, handed to the session's orphans if the session goes).
   * A later create of this session is executed after it: the server runs a
   * session's requests in order, and a create resent after a reconnection
   * sorts after our node, so it waits for the retried delete. */
  while (until != 0 && c->state != C_DONE)
    if (zkr__cond_wait(&c->cond, mu, until) != 0)
      break;
  return c->state != C_DONE ? ZKR_OK : zkr__contender_released(c);
}

int zkr__contender_released(const zkr__contender *c) {
  if (c->state != C_DONE)
    return ZKR__PENDING;
  /* The cause, whatever it is (a delete our ACL refuses leaves the node
   * until the session ends: the caller must hear of it). */
  return c->rc == ZKR_ECLOSED ? ZKR_ESESSION : c->rc;
}

static void forget(zkr__contender *c) {
  c->on_lost = NULL;
  c->on_granted = NULL;
  c->on_change = NULL;
  c->dropped = 1;
  if (c->state == C_CREATE || c->state == C_RECOVER || c->state == C_CHECK) {
    c->withdrawing = 1; /* the node is deleted once it is known to be ours */
  } else if (c->state != C_DONE && c->state != C_RELEASE) {
    if (c->node != NULL && c->state != C_LOST)
      zkr__session_orphan(c->s, c->node);
    finish(c, ZKR_ECLOSED);
  }
}

void zkr__contender_drop(zkr__contender *c) {
  forget(c);
  /* Queued events of c hold their own reference and find no callback: only
   * one already running can still reach the owner. */
  zkr__session_quiesce_running(c->s, c);
  unref(c);
}

void zkr__contender_abandon(zkr__contender *c) {
  forget(c);
  unref(c);
}

void zkr__contender_close(zkr__contender *c) {
  c->closed = 1;
  pthread_cond_broadcast(&c->cond);
}

int zkr__contender_granted(const zkr__contender *c) {
  return c->state == C_HELD;
}

int zkr__contender_held_now(const zkr__contender *c) {
  return __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == C_HELD;
}

int zkr__contender_was_granted(const zkr__contender *c) {
  return c->was_granted;
}

int zkr__contender_active(const zkr__contender *c) {
  return c->state != C_DONE && c->state != C_LOST && !c->withdrawing && !c->closed;
}

int zkr__contender_lost_reason(const zkr__contender *c) {
  return c->lost_reason;
}

int64_t zkr__contender_token(const zkr__contender *c) {
  return c->czxid;
}

const char *zkr__contender_node(const zkr__contender *c) {
  return c->node;
}

int zkr__contender_copy_node(const zkr__contender *c, char *buf, size_t len) {
  if (c->node == NULL || strlen(c->node) >= len)
    return ZKR_EINVAL;
  strcpy(buf, c->node);
  return ZKR_OK;
}
