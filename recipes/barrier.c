/* zkr_barrier and zkr_double_barrier: ZooKeeper's barrier recipes in
 * Curator's layout (include/zkr/barrier.h has the protocol).
 *
 * Neither has contenders: a barrier is one persistent node, a double
 * barrier's nodes are named by a uuid, not queued by a sequence. So the
 * recipe sends its requests itself (zkr__request, engine.h), each
 * asynchronously, and waits for the answer on the session mutex within the
 * caller's deadline (a stalled connection must not hold the caller; a lost
 * session ends the wait). A request whose reply was lost to a connection
 * loss is sent again: every one is idempotent by its answer (a create that
 * finds the node, a delete that finds none, have done their work; our
 * double barrier node's name is our uuid, so a node of that name is ours).
 *
 * One double barrier enter, top to bottom (zkr_double_barrier_enter):
 *  1. create PATH/<uuid> (EPHEMERAL; PATH and its parents as containers);
 *  2. list PATH with a children watch: "ready" there means we are in; at
 *     least member_qty other children mean we complete it (create
 *     "ready"); a child of the previous listing gone means the barrier is
 *     broken (ZKR_EBROKEN); else wait for the watch and list again;
 *  3. on any failure delete our node before returning.
 * Leaving deletes our node first, then lists with a watch until no other
 * participant's node remains or "ready" is gone. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READY "ready"

/* A thread inside a blocking call. Its waiter is woken by the watch it set,
 * by the session's loss and by free. */
typedef struct caller {
  zkr__list link; /* on the object's list of callers */
  zkr__waiter w;
  zkr__requester rq; /* its requests: stopped by free, pauses woken on w.cond */
} caller;

/* What both objects share: the recipe and their callers (under the session
 * mutex). */
typedef struct base {
  zkr__recipe r;
  zkr__list callers;
  int freeing;
  int cleaning;        /* a give-up's delete runs: freeing does not stop it */
  pthread_cond_t idle; /* callers became empty */
} base;

struct zkr_barrier {
  base b;
};

struct zkr_double_barrier {
  base b;
  int member_qty;
  int entered;
  int busy;    /* an enter or leave runs */
  char *node;  /* PATH/<uuid>: ours while entering or entered */
  char *ready; /* PATH/ready */
};

/* --- callers ---------------------------------------------------------------- */

static int base_init(base *o) {
  zkr__list_init(&o->callers);
  return zkr__cond_init(&o->idle);
}

/* Mutex held (the requests' stop()). Free ends a caller's wait, but not
 * the delete of a give-up (drop_node). */
static int closing(void *arg) {
  base *o = arg;

  return o->freeing && !o->cleaning ? ZKR_ECLOSED : ZKR_OK;
}

/* Mutex held. Starts a blocking call, or says why not (ZKR_ECLOSED). */
static int call_begin(base *o, caller *me) {
  if (o->freeing)
    return ZKR_ECLOSED;
  if (zkr__cond_init(&me->w.cond) != ZKR_OK)
    return ZKR_ENOMEM;
  me->w.fired = 0;
  me->rq.s = o->r.s;
  me->rq.stop = closing;
  me->rq.arg = o;
  zkr__list_push_back(&o->callers, &me->link);
  return ZKR_OK;
}

static void call_end(base *o, caller *me) {
  zkr__list_remove(&me->link);
  pthread_cond_destroy(&me->w.cond);
  if (zkr__list_first(&o->callers) == NULL)
    pthread_cond_broadcast(&o->idle);
}

/* Mutex held. Wakes every caller and waits until they are gone. */
static void base_close(base *o) {
  pthread_mutex_t *mu = zkr__session_mutex(o->r.s);
  zkr__list *l;

  o->freeing = 1;
  zkr__list_foreach(l, &o->callers) {
    caller *c = zkr__list_entry(l, caller, link);
    pthread_cond_broadcast(&c->w.cond);
  }
  while (zkr__list_first(&o->callers) != NULL)
    pthread_cond_wait(&o->idle, mu);
}

/* The common end of both frees (any thread but a callback): wakes and
 * waits out the callers, then hands *node (ours; node or *node may be NULL)
 * to the session's orphan deletes, destroys the base. *node is read only
 * once the callers are gone: a caller's enter may still drop it until
 * then. The caller frees its own fields and then the recipe. */
static void base_free(base *o, char *const *node) {
  pthread_mutex_t *mu = zkr__session_mutex(o->r.s);
  int cancel_state;

  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  pthread_mutex_lock(mu);
  base_close(o);
  if (node != NULL && *node != NULL)
    zkr__session_orphan(o->r.s, *node);
  pthread_mutex_unlock(mu);
  pthread_setcancelstate(cancel_state, NULL);
  pthread_cond_destroy(&o->idle);
}

/* --- requests --------------------------------------------------------------- */

/* Mutex held. Sends q again across connection loss until the server
 * answers; returns as zkr__request(), the final code in *zrc. */
static int request_answered(caller *me, const zkr__req *q, int64_t deadline, int *zrc) {
  zkr__reply r;
  int rc = zkr__request_answered(&me->rq, q, deadline, &r);

  *zrc = r.zrc;
  zkr__reply_clear(&r);
  return rc;
}

/* Mutex held. Creates every missing ancestor of path as a container (as
 * Curator's creatingParentContainersIfNeeded). A parent the server reclaims
 * meanwhile shows as ZNONODE to the caller's next create, which calls this
 * again. */
static int make_parents(base *o, caller *me, const char *path, int64_t deadline) {
  char buf[ZKR__PATH_MAX + 64];
  const char *p;
  int zrc, rc;

  for (p = strchr(path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
    zkr__req q = {.op = ZKR__REQ_CREATE, .path = buf, .data = "", .flags = ZOO_CONTAINER, .acl = o->r.acl};

    memcpy(buf, path, (size_t)(p - path));
    buf[p - path] = '\0';
    rc = request_answered(me, &q, deadline, &zrc);
    if (rc != ZKR_OK)
      return rc;
    if (zrc != ZOK && zrc != ZNODEEXISTS)
      return zkr__from_zk(zrc);
  }
  return ZKR_OK;
}

/* Mutex held. Creates path with flags, its missing parents as containers.
 * A node already there counts as created (the caller's premise: that node
 * is the one we want, a set barrier or our uuid's node). */
static int create_node(base *o, caller *me, const char *path, const char *data, int flags, int64_t deadline) {
  zkr__req q = {.op = ZKR__REQ_CREATE, .path = path, .data = data, .flags = flags, .acl = o->r.acl};
  int tries, zrc, rc = ZKR_OK;

  for (tries = 0; tries < 3; tries++) {
    rc = request_answered(me, &q, deadline, &zrc);
    if (rc != ZKR_OK)
      return rc;
    if (zrc == ZOK || zrc == ZNODEEXISTS)
      return ZKR_OK;
    if (zrc != ZNONODE)
      return zkr__from_zk(zrc);
    rc = make_parents(o, me, path, deadline);
    if (rc != ZKR_OK)
      return rc;
  }
  return ZKR_EZK; /* parents reclaimed over and over */
}

/* Mutex held. Deletes path; one already gone counts as deleted. */
static int delete_node(caller *me, const char *path, int64_t deadline) {
  zkr__req q = {.op = ZKR__REQ_DELETE, .path = path, .version = -1};
  int zrc, rc = request_answered(me, &q, deadline, &zrc);

  if (rc != ZKR_OK)
    return rc;
  return zrc == ZOK || zrc == ZNONODE ? ZKR_OK : zkr__from_zk(zrc);
}

/* Mutex held. Reads path (op ZKR__REQ_GET or ZKR__REQ_CHILDREN) with a
 * watch whose firing sets me->w.fired. Returns as zkr__request(), the
 * answer in *out; *registered tells whether the watch is set (then the
 * caller waits for it or detaches it with zkr__watch_done(*t, &me->w, 1)). */
static int watched(caller *me, int op, const char *path, int64_t deadline, zkr__reply *out,
                   struct zkr__ticket **t, int *registered) {
  zkr__req q = {.op = op, .path = path};
  int rc;

  *registered = 0;
  me->w.fired = 0;
  memset(out, 0, sizeof(*out));
  *t = zkr__watch_new(me->rq.s, &me->w);
  if (*t == NULL)
    return ZKR_ENOMEM;
  q.watch = *t;
  rc = zkr__request(&me->rq, &q, deadline, out);
  if (rc != ZKR_OK) {
    /* Unanswered: the watch may be set or not; the session frees the
     * context when it fires or with itself. */
    zkr__watch_done(*t, &me->w, 1);
    return rc;
  }
  /* A read sets its watch only when it finds the node (a data read) or
   * the directory (a listing). */
  *registered = out->zrc == ZOK;
  if (!*registered)
    zkr__watch_done(*t, &me->w, 0);
  return ZKR_OK;
}

/* Mutex held. Waits for the watch set by watched() until deadline; detaches
 * it when the wait ends otherwise. */
static int await_watch(caller *me, struct zkr__ticket *t, int64_t deadline) {
  int rc = ZKR_OK;

  while (!me->w.fired) {
    rc = zkr__request_stopped(&me->rq, deadline);
    if (rc != ZKR_OK) {
      zkr__watch_done(t, &me->w, 1);
      return rc;
    }
    zkr__cond_wait(&me->w.cond, zkr__session_mutex(me->rq.s), deadline);
  }
  /* Fired, or handed back by the session's loss: the next look tells. */
  return zkr__request_stopped(&me->rq, -1);
}

/* --- the barrier ---------------------------------------------------------------- */

int zkr_barrier_new(zkr_barrier **out, zkr_session *s, const char *path, const zkr_barrier_opts *opts) {
  zkr_barrier *b;
  int rc;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  b = zkr__recipe_new(sizeof(*b), s, path, opts != NULL ? opts->id : NULL, opts != NULL ? opts->acl : NULL,
                      &rc);
  if (b == NULL)
    return rc;
  if (base_init(&b->b) != ZKR_OK) {
    zkr__recipe_free(b);
    return ZKR_ENOMEM;
  }
  *out = b;
  return ZKR_OK;
}

/* Runs op(b, me) as one blocking call: the mutex held, cancellation held
 * off (a thread cancelled inside a wait would leave the mutex locked). */
static int barrier_call(zkr_barrier *b, int (*op)(zkr_barrier *b, caller *me, int timeout_ms),
                        int timeout_ms) {
  pthread_mutex_t *mu;
  caller me;
  int rc, cancel_state;

  if (b == NULL)
    return ZKR_EINVAL;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  mu = zkr__session_mutex(b->b.r.s);
  pthread_mutex_lock(mu);
  rc = call_begin(&b->b, &me);
  if (rc == ZKR_OK) {
    rc = op(b, &me, timeout_ms);
    call_end(&b->b, &me);
  }
  pthread_mutex_unlock(mu);
  pthread_setcancelstate(cancel_state, NULL);
  return rc;
}

static int set_op(zkr_barrier *b, caller *me, int timeout_ms) {
  (void)timeout_ms;
  return create_node(&b->b, me, b->b.r.path, "", 0, -1);
}

static int remove_op(zkr_barrier *b, caller *me, int timeout_ms) {
  (void)timeout_ms;
  return delete_node(me, b->b.r.path, -1);
}

/* A data read with a watch, not an exists: an exists on a missing node
 * would leave a watch for its creation behind on the server. */
static int wait_op(zkr_barrier *b, caller *me, int timeout_ms) {
  int64_t deadline = zkr__deadline(timeout_ms);
  /* A look (timeout 0) waits for its one answer as long as the session
   * lives. */
  int64_t answer_by = timeout_ms == 0 ? -1 : deadline;

  for (;;) {
    struct zkr__ticket *t = NULL;
    zkr__req look = {.op = ZKR__REQ_GET, .path = b->b.r.path};
    zkr__reply r;
    int zrc, registered;
    unsigned since = zkr__session_connections(b->b.r.s);
    /* A look sets no watch: one left behind per call would pile up in a
     * caller that polls. */
    int rc = timeout_ms == 0 ? zkr__request(&me->rq, &look, answer_by, &r)
                             : watched(me, ZKR__REQ_GET, b->b.r.path, answer_by, &r, &t, &registered);

    if (rc != ZKR_OK)
      return rc;
    zrc = r.zrc;
    zkr__reply_clear(&r);
    if (zrc == ZNONODE)
      return ZKR_OK;
    if (zkr__request_conn_lost(zrc)) {
      rc = zkr__request_pause(&me->rq, since, answer_by);
      if (rc != ZKR_OK)
        return rc;
      continue;
    }
    if (zrc != ZOK)
      return zkr__from_zk(zrc);
    if (t == NULL)
      return ZKR_ETIMEDOUT; /* a look: set */
    /* Set: wait for the deletion (a data change fires too: look again). */
    rc = await_watch(me, t, deadline);
    if (rc != ZKR_OK)
      return rc;
  }
}

int zkr_barrier_set(zkr_barrier *b) {
  return barrier_call(b, set_op, -1);
}

int zkr_barrier_remove(zkr_barrier *b) {
  return barrier_call(b, remove_op, -1);
}

int zkr_barrier_wait(zkr_barrier *b, int timeout_ms) {
  return barrier_call(b, wait_op, timeout_ms);
}

void zkr_barrier_free(zkr_barrier *b) {
  if (b == NULL)
    return;
  base_free(&b->b, NULL);
  zkr__recipe_free(b);
}

/* --- the double barrier: creating ------------------------------------------------- */

int zkr_double_barrier_new(zkr_double_barrier **out, zkr_session *s, const char *path, int member_qty,
                           const zkr_barrier_opts *opts) {
  zkr_double_barrier *db;
  int rc;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  if (member_qty < 1)
    return ZKR_EINVAL;
  db = zkr__recipe_new(sizeof(*db), s, path, opts != NULL ? opts->id : NULL, opts != NULL ? opts->acl : NULL,
                       &rc);
  if (db == NULL)
    return rc;
  db->ready = zkr__path_join(path, READY);
  if (db->ready == NULL || base_init(&db->b) != ZKR_OK) {
    free(db->ready);
    zkr__recipe_free(db);
    return ZKR_ENOMEM;
  }
  db->member_qty = member_qty;
  *out = db;
  return ZKR_OK;
}

/* --- the double barrier: entering ------------------------------------------------- */

/* Our node's name within PATH. */
static const char *own_name(const zkr_double_barrier *db) {
  return db->node + strlen(db->b.r.path) + 1;
}

static int listed_has(const zkr__reply *c, const char *name) {
  int i;

  for (i = 0; i < c->nkids; i++)
    if (strcmp(c->kids[i], name) == 0)
      return 1;
  return 0;
}

/* 1 if a participant of prev (a listing; none when zeroed) is missing from
 * now. */
static int someone_left(const zkr__reply *prev, const zkr__reply *now) {
  int i;

  for (i = 0; i < prev->nkids; i++)
    if (strcmp(prev->kids[i], READY) != 0 && !listed_has(now, prev->kids[i]))
      return 1;
  return 0;
}

/* Mutex held. Reads PATH's children with a watch, sending again across
 * connection loss. Returns as zkr__request(); on ZKR_OK now->zrc is ZOK
 * (the listing in *now, the watch set: wait for it with await_watch() or
 * detach it with zkr__watch_done(*t, &me->w, 1)) or the server's error.
 * Free *now with zkr__reply_clear(). */
static int list_watched(zkr_double_barrier *db, caller *me, int64_t answer_by, zkr__reply *now,
                        struct zkr__ticket **t) {
  for (;;) {
    int registered, rc;
    unsigned since = zkr__session_connections(db->b.r.s);

    rc = watched(me, ZKR__REQ_CHILDREN, db->b.r.path, answer_by, now, t, &registered);
    if (rc != ZKR_OK || !zkr__request_conn_lost(now->zrc))
      return rc;
    zkr__reply_clear(now);
    rc = zkr__request_pause(&me->rq, since, answer_by);
    if (rc != ZKR_OK)
      return rc;
  }
}

/* What a listing during enter tells (our node is on the server). */
static int enter_verdict(zkr_double_barrier *db, caller *me, const zkr__reply *prev, const zkr__reply *now,
                         int64_t answer_by) {
  if (!listed_has(now, own_name(db)))
    return ZKR_ELOST; /* deleted by someone else (a lost session: await_ready tells) */
  if (listed_has(now, READY))
    return ZKR_OK; /* complete (we may be a late arrival: a threshold, not a limit) */
  if (now->nkids >= db->member_qty)
    return create_node(&db->b, me, db->ready, "", 0, answer_by);
  /* The set we waited with can no longer be complete: a replacement might
   * come, but a dead participant must not hold the others until their
   * deadlines (or forever). A participant that completed the barrier as
   * it vanished left "ready" behind, which this listing would show. */
  if (someone_left(prev, now))
    return ZKR_EBROKEN;
  return 1; /* wait */
}

/* Mutex held. Our node is on the server: waits until the barrier is
 * complete. answer_by bounds each request, deadline the whole wait; a try
 * decides from the first listing. */
static int await_ready(zkr_double_barrier *db, caller *me, int try_once, int64_t answer_by,
                       int64_t deadline) {
  zkr__reply prev = {0}; /* the previous listing: none yet */
  int rc;

  for (;;) {
    struct zkr__ticket *t;
    zkr__reply now;
    int zrc;

    rc = list_watched(db, me, answer_by, &now, &t);
    if (rc != ZKR_OK)
      break;
    zrc = now.zrc;
    if (zrc != ZOK) {
      zkr__reply_clear(&now);
      /* PATH gone: our node, its child, went first. */
      rc = zrc == ZNONODE ? ZKR_ELOST : zkr__from_zk(zrc);
      break;
    }
    rc = enter_verdict(db, me, &prev, &now, answer_by);
    if (rc == 1 && try_once)
      rc = ZKR_ETIMEDOUT;
    if (rc != 1) {
      zkr__watch_done(t, &me->w, 1);
      zkr__reply_clear(&now);
      break;
    }
    zkr__reply_clear(&prev);
    prev = now;
    rc = await_watch(me, t, deadline);
    if (rc != ZKR_OK)
      break;
  }
  zkr__reply_clear(&prev);
  if (rc == ZKR_ELOST && zkr__request_stopped(&me->rq, -1) != ZKR_OK)
    rc = zkr__request_stopped(&me->rq, -1); /* the session's end took our node */
  return rc;
}

/* Mutex held. Our node goes: the server confirms within give_up_by, or the
 * session deletes it in the background (it also goes with the session).
 * Also while db is being freed (an enter or leave woken by free): the
 * answer comes in a round trip, while a background delete still in flight
 * when the caller closes the session right after was found (valgrind) to
 * leak its completion and the session in the client's close. */
static int drop_node(zkr_double_barrier *db, caller *me, int64_t give_up_by) {
  int rc;

  db->b.cleaning = 1;
  rc = delete_node(me, db->node, give_up_by);
  db->b.cleaning = 0;
  if (rc != ZKR_OK)
    zkr__session_orphan(db->b.r.s, db->node);
  free(db->node);
  db->node = NULL;
  return rc;
}

/* Mutex held. Starts an enter or a leave: one at a time per participant. */
static int db_begin(zkr_double_barrier *db, caller *me, int entered) {
  int rc;

  if (db->busy)
    return ZKR_EINVAL;
  if (db->entered != entered)
    return entered ? ZKR_ENOTHELD : ZKR_EINVAL;
  rc = call_begin(&db->b, me);
  if (rc == ZKR_OK)
    db->busy = 1;
  return rc;
}

static void db_end(zkr_double_barrier *db, caller *me) {
  db->busy = 0;
  call_end(&db->b, me);
}

int zkr_double_barrier_enter(zkr_double_barrier *db, int timeout_ms) {
  int64_t deadline = zkr__deadline(timeout_ms);
  /* A try waits for each answer as long as the session lives, and decides
   * from the first listing. */
  int64_t answer_by = timeout_ms == 0 ? -1 : deadline;
  pthread_mutex_t *mu;
  char uuid[37];
  caller me;
  int rc, cancel_state;

  if (db == NULL)
    return ZKR_EINVAL;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  mu = zkr__session_mutex(db->b.r.s);
  pthread_mutex_lock(mu);
  rc = db_begin(db, &me, 0);
  if (rc != ZKR_OK)
    goto out;
  rc = zkr__uuid(uuid);
  if (rc == ZKR_OK) {
    /* A fresh name per enter: an earlier node of ours whose delete is still
     * on its way is no part of this one. */
    db->node = zkr__path_join(db->b.r.path, uuid);
    rc = db->node != NULL ? ZKR_OK : ZKR_ENOMEM;
  }
  if (rc == ZKR_OK) {
    rc = create_node(&db->b, &me, db->node, db->b.r.id, ZOO_EPHEMERAL, answer_by);
    if (rc == ZKR_OK)
      rc = await_ready(db, &me, timeout_ms == 0, answer_by, deadline);
    /* Whatever happened to the create (its reply may have been lost), a
     * node of our uuid is ours alone: deleting it by name is safe. */
    if (rc != ZKR_OK)
      drop_node(db, &me, zkr__give_up_by(deadline)); /* rc says why we gave up */
  }
  db->entered = rc == ZKR_OK;
  db_end(db, &me);
out:
  pthread_mutex_unlock(mu);
  pthread_setcancelstate(cancel_state, NULL);
  return rc;
}

/* --- the double barrier: leaving -------------------------------------------------- */

/* Mutex held. Our node is gone: waits until no other participant's node
 * remains, or "ready" is gone. A participant removes "ready" only once it
 * saw the other nodes gone (zkr's leave; Curator's once at most one is
 * left), so its absence means the others of our round have left; a node
 * that appears later is an arrival for the next round, which must not hold
 * us. */
static int await_empty(zkr_double_barrier *db, caller *me, int try_once, int64_t answer_by,
                       int64_t deadline) {
  for (;;) {
    struct zkr__ticket *t;
    zkr__reply now;
    int zrc, ready, others, rc;

    rc = list_watched(db, me, answer_by, &now, &t);
    if (rc != ZKR_OK)
      return rc;
    zrc = now.zrc;
    ready = listed_has(&now, READY);
    others = now.nkids - ready;
    zkr__reply_clear(&now);
    if (zrc == ZNONODE)
      return ZKR_OK; /* PATH reclaimed: nobody left in it */
    if (zrc != ZOK)
      return zkr__from_zk(zrc);
    if (others == 0 || !ready || try_once) {
      zkr__watch_done(t, &me->w, 1);
      if (others > 0 && ready)
        return ZKR_ETIMEDOUT; /* a try: decided from the first listing */
      /* The last one out opens the path for the next round. */
      return ready ? delete_node(me, db->ready, answer_by) : ZKR_OK;
    }
    rc = await_watch(me, t, deadline);
    if (rc != ZKR_OK)
      return rc;
  }
}

int zkr_double_barrier_leave(zkr_double_barrier *db, int timeout_ms) {
  int64_t deadline = zkr__deadline(timeout_ms);
  int64_t answer_by = timeout_ms == 0 ? -1 : deadline;
  pthread_mutex_t *mu;
  caller me;
  int rc, cancel_state;

  if (db == NULL)
    return ZKR_EINVAL;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  mu = zkr__session_mutex(db->b.r.s);
  pthread_mutex_lock(mu);
  rc = db_begin(db, &me, 1);
  if (rc == ZKR_OK) {
    /* Ours goes first (as Curator's leave does): the others wait for it. */
    rc = drop_node(db, &me, answer_by);
    db->entered = 0;
    if (rc == ZKR_OK)
      rc = await_empty(db, &me, timeout_ms == 0, answer_by, deadline);
    db_end(db, &me);
  }
  pthread_mutex_unlock(mu);
  pthread_setcancelstate(cancel_state, NULL);
  return rc;
}

void zkr_double_barrier_free(zkr_double_barrier *db) {
  if (db == NULL)
    return;
  base_free(&db->b, &db->node);
  free(db->node);
  free(db->ready);
  zkr__recipe_free(db);
}
