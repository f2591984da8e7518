/* zkr_election: leader election on the contender queue.
 *
 * One contender per participation; leadership is the contender's grant.
 * on_change is delivered on the session's event thread, in order, and in
 * pairs: a 0 only ever follows a 1 (e->term records what was announced).
 * A contender's granted/lost events announce its term; when we leave, the
 * contender is dropped (its pending events void) and we announce what is
 * still owed ourselves. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

/* What has been announced of the current participation's term. */
enum term { T_NONE, T_UP, T_DONE };

struct zkr_election {
  zkr__recipe r;
  zkr_election_fn on_change;
  void *arg;
  zkr__contender *c; /* current participation, or NULL */
  int term;          /* enum term, for c */
  int waiters;       /* threads inside await */
  int freeing;
  int announcing;      /* owed() runs (on the event thread) */
  int freed_in_cb;     /* freed from one of owed()'s calls: owed() finishes the free */
  pthread_cond_t cond; /* waiters reached 0 */
  /* What leave() owes ended participations, announced in order by owed_ev
   * (embedded: it never needs memory): a 0 first (the term's 1 was
   * announced by its contender; nothing else is pending then), then pairs
   * "1 0"; owed_mid once a pair's 1 is out. */
  zkr__event owed_ev;
  int owed_zero, owed_pairs, owed_mid;
};

/* --- on the event thread -------------------------------------------------- */

/* The contender's own events announce its term while it is current: 1 once,
 * then 0 once. Events of a dropped contender never fire (the queue voids
 * them), so only leave() announces what a dropped term still owes. */
static void term_step(zkr_election *e, zkr__contender *c, int from, int to) {
  pthread_mutex_t *mu = zkr__session_mutex(e->r.s);
  int fire;

  pthread_mutex_lock(mu);
  fire = c == e->c && e->term == from;
  if (fire)
    e->term = to;
  pthread_mutex_unlock(mu);
  if (fire && e->on_change != NULL)
    e->on_change(e, to == T_UP, e->arg);
}

static void el_granted(void *owner, zkr__contender *c) {
  term_step(owner, c, T_NONE, T_UP);
}

static void el_ended(void *owner, zkr__contender *c) {
  term_step(owner, c, T_UP, T_DONE);
}

/* The next owed announcement into *up, or 0 when none is (mutex held). */
static int next_owed(zkr_election *e, int *up) {
  if (e->owed_zero) {
    e->owed_zero = 0;
    *up = 0;
  } else if (e->owed_pairs > 0) {
    *up = !e->owed_mid;
    e->owed_mid = !e->owed_mid;
    e->owed_pairs -= *up == 0;
  } else {
    return 0;
  }
  return 1;
}

static void finish_free(zkr_election *e) {
  pthread_cond_destroy(&e->cond);
  zkr__recipe_free(e);
}

/* Announces what leave() owes, in order. It runs before any event of a
 * later participation (posted later): so a term's own 1 is announced only
 * once everything owed before it was. */
static void owed(void *arg) {
  zkr_election *e = arg;
  pthread_mutex_t *mu = zkr__session_mutex(e->r.s);
  int up;

  pthread_mutex_lock(mu);
  e->announcing = 1;
  while (!e->freed_in_cb && next_owed(e, &up)) {
    pthread_mutex_unlock(mu);
    if (e->on_change != NULL)
      e->on_change(e, up, e->arg);
    pthread_mutex_lock(mu);
  }
  e->announcing = 0;
  pthread_mutex_unlock(mu);
  if (e->freed_in_cb)
    finish_free(e);
}

/* Mutex held. Lets c go without waiting for a callback of it that may be
 * running on the event thread (join and resign_nowait never block). The
 * election must outlive that callback: owed_ev, queued now, runs after it
 * (events run one at a time, in order), and free waits for owed_ev. */
static void let_go(zkr_election *e, zkr__contender *c) {
  zkr__contender_abandon(c);
  zkr__session_post(e->r.s, &e->owed_ev);
}

/* --- public ------------------------------------------------------------------ */

int zkr_election_new(zkr_election **out, zkr_session *s, const char *path, const zkr_election_opts *opts) {
  zkr_election *e;
  int rc;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  e = zkr__recipe_new(sizeof(*e), s, path, opts != NULL ? opts->id : NULL, opts != NULL ? opts->acl : NULL,
                      &rc);
  if (e != NULL && zkr__cond_init(&e->cond) != ZKR_OK) {
    zkr__recipe_free(e);
    return ZKR_ENOMEM;
  }
  if (e == NULL)
    return rc;
  if (opts != NULL) {
    e->on_change = opts->on_change;
    e->arg = opts->arg;
  }
  zkr__event_init(&e->owed_ev, owed, e, e);
  *out = e;
  return ZKR_OK;
}

/* The oldest participant leads: Curator's LeaderLatch on the same path. */
static const zkr__policy leader_policy = {.marker = "-latch-"};

int zkr_election_join(zkr_election *e) {
  pthread_mutex_t *mu;
  zkr__contender_cfg cfg;
  int rc = ZKR_OK;

  if (e == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(e->r.s);
  pthread_mutex_lock(mu);
  if (e->freeing) {
    rc = ZKR_ECLOSED;
  } else if (e->c == NULL || !zkr__contender_active(e->c)) {
    if (e->c != NULL) {
      /* An ended participation. join never blocks: not even for its last
       * callback, which may still be running (see let_go). */
      let_go(e, e->c);
      e->c = NULL;
    }
    e->term = T_NONE;
    zkr__recipe_contender(&e->r, e->r.path, &leader_policy, &cfg);
    cfg.on_granted = el_granted;
    cfg.on_lost = el_ended;
    cfg.owner = e;
    rc = zkr__contender_start(e->r.s, &cfg, &e->c);
  }
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_election_await(zkr_election *e, int timeout_ms) {
  pthread_mutex_t *mu;
  int64_t deadline;
  int rc;

  if (e == NULL)
    return ZKR_EINVAL;
  deadline = zkr__deadline(timeout_ms); /* await(0) only looks */
  mu = zkr__session_mutex(e->r.s);
  pthread_mutex_lock(mu);
  if (e->c == NULL) {
    pthread_mutex_unlock(mu);
    return ZKR_ENOTHELD;
  }
  e->waiters++;
  rc = zkr__contender_wait(e->c, deadline);
  if (--e->waiters == 0)
    pthread_cond_broadcast(&e->cond);
  pthread_mutex_unlock(mu);
  return rc;
}

/* Mutex held. The truth, not the announcement: await() returning ZKR_OK
 * implies it, while on_change(1) may still be on its way to the event
 * thread; and our own clock decides at once, before the event thread
 * notices the deadline. */
static int leading(zkr_election *e) {
  return e->c != NULL && zkr__contender_granted(e->c) && zkr__now_ns() < zkr__session_valid_until(e->r.s);
}

int zkr_election_is_leader(zkr_election *e) {
  pthread_mutex_t *mu;
  int leader;

  if (e == NULL)
    return 0;
  mu = zkr__session_mutex(e->r.s);
  pthread_mutex_lock(mu);
  leader = leading(e);
  pthread_mutex_unlock(mu);
  return leader;
}

int zkr_election_epoch(zkr_election *e, int64_t *epoch) {
  pthread_mutex_t *mu;
  int rc;

  if (e == NULL || epoch == NULL)
    return ZKR_EINVAL;
  /* One snapshot: leading and the epoch of that very term. */
  mu = zkr__session_mutex(e->r.s);
  pthread_mutex_lock(mu);
  rc = leading(e) ? ZKR_OK : ZKR_ENOTHELD;
  if (rc == ZKR_OK)
    *epoch = zkr__contender_token(e->c);
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_election_leader(zkr_election *e, char *id, size_t len) {
  zkr_participant *p;
  size_t n;
  int rc;

  if (e == NULL || id == NULL || len == 0)
    return ZKR_EINVAL;
  rc = zkr_participants(e->r.s, e->r.path, &p, &n);
  if (rc != ZKR_OK)
    return rc;
  if (n == 0)
    rc = ZKR_ENOLEADER;
  else if (strlen(p[0].id) >= len)
    rc = ZKR_EINVAL;
  else
    strcpy(id, p[0].id);
  zkr_participants_free(p, n);
  return rc;
}

/* Ends the participation (mutex held): wakes awaiting threads, deletes our
 * node (waiting for the server), forgets the contender, and queues
 * on_change(0) if we were leading. */
/* Mutex held. With wait, returns once the server confirmed our node's
 * delete; without, once it is sent (it goes on in the background). */
static int leave(zkr_election *e, int wait) {
  pthread_mutex_t *mu = zkr__session_mutex(e->r.s);
  zkr__contender *c = e->c;
  int rc, granted;

  if (c == NULL)
    return ZKR_ENOTHELD;
  zkr__contender_close(c);
  while (e->waiters > 0)
    pthread_cond_wait(&e->cond, mu);
  if (zkr__contender_granted(c))
    rc = zkr__contender_release(c, wait);
  else
    rc = zkr__contender_withdraw(c, wait ? -1 : 0) == ZKR_OK ? zkr__contender_release(c, wait) : ZKR_OK;
  granted = zkr__contender_was_granted(c);
  /* Its own queued events are void from here on. Without wait, a callback
   * of it already running is not waited for either (see let_go). */
  if (wait)
    zkr__contender_drop(c);
  else
    let_go(e, c);
  e->c = NULL;
  /* A term that began is announced, and ended, exactly once each, whatever
   * of it the contender's events already announced (CURATOR-83/87). */
  if (granted && e->term == T_NONE)
    e->owed_pairs++;
  else if (granted && e->term == T_UP)
    e->owed_zero = 1;
  if (granted && e->term != T_DONE)
    zkr__session_post(e->r.s, &e->owed_ev);
  e->term = T_NONE;
  /* A term that had already ended with its node (seen or not yet) is
   * resigned all the same: on_change(0) tells of it. */
  return rc == ZKR_ETIMEDOUT || rc == ZKR_ELOST ? ZKR_OK : rc;
}

static int resign(zkr_election *e, int wait) {
  pthread_mutex_t *mu;
  int rc;

  if (e == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(e->r.s);
  pthread_mutex_lock(mu);
  rc = leave(e, wait);
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_election_resign(zkr_election *e) {
  return resign(e, 1);
}

int zkr_election_resign_nowait(zkr_election *e) {
  return resign(e, 0);
}

void zkr_election_free(zkr_election *e) {
  pthread_mutex_t *mu;

  if (e == NULL)
    return;
  mu = zkr__session_mutex(e->r.s);
  pthread_mutex_lock(mu);
  e->freeing = 1;
  leave(e, 1);
  /* The queued on_change(0) runs first; and owed_ev, queued behind any
   * callback of a participation let go, waits for those too. From a
   * callback on the event thread, what is still owed is dropped instead
   * (quiesce takes it off the queue): the caller is done with e. */
  zkr__session_quiesce(e->r.s, e);
  if (e->announcing) {
    /* Called from on_change run by owed(), which reads e once it returns:
     * it finishes the free. (From another thread, quiesce waited for it.) */
    e->freed_in_cb = 1;
    pthread_mutex_unlock(mu);
    return;
  }
  pthread_mutex_unlock(mu);
  finish_free(e);
}

/* --- observing ---------------------------------------------------------------- */

/* Sets a watch on path's children (or on its creation) for w, mutex not
 * held. Returns ZKR_OK or an error. */
static int watch_dir(zkr_session *s, const char *path, zkr__waiter *w, struct zkr__ticket **tp) {
  pthread_mutex_t *mu = zkr__session_mutex(s);
  int tries;

  for (tries = 0; tries < 3; tries++) {
    struct String_vector kids = {0, NULL};
    zhandle_t *zh;
    int zrc, registered;

    pthread_mutex_lock(mu);
    zh = zkr__session_zh(s);
    *tp = zh != NULL ? zkr__watch_new(s, w) : NULL;
    pthread_mutex_unlock(mu);
    if (*tp == NULL)
      return zh == NULL ? ZKR_ECLOSED : ZKR_ENOMEM;
    zrc = zoo_wget_children(zh, path, zkr__watch_fn, *tp, &kids);
    deallocate_String_vector(&kids);
    if (zrc == ZOK)
      return ZKR_OK;
    if (zrc == ZNONODE) {
      /* No election yet: wake when it is created. If it was created in
       * between, the exists watch is set on it anyway: leave it (it only
       * wakes us) and try the children watch again. */
      zrc = zoo_wexists(zh, path, zkr__watch_fn, *tp, NULL);
      if (zrc == ZNONODE)
        return ZKR_OK;
    }
    registered = zrc == ZOK;
    pthread_mutex_lock(mu);
    zkr__watch_done(*tp, w, registered);
    pthread_mutex_unlock(mu);
    if (!registered)
      return zkr__from_zk(zrc);
  }
  return ZKR_EZK;
}

int zkr_election_observe(zkr_session *s, const char *path, int64_t *epoch, char *id, size_t len,
                         int timeout_ms) {
  pthread_mutex_t *mu;
  int64_t deadline;
  zkr__waiter w;
  int rc;

  if (s == NULL || epoch == NULL || zkr__path_check(path) != ZKR_OK || (id != NULL && len == 0))
    return ZKR_EINVAL;
  deadline = zkr__deadline(timeout_ms);
  mu = zkr__session_mutex(s);
  if (zkr__cond_init(&w.cond) != ZKR_OK)
    return ZKR_ENOMEM;
  for (;;) {
    struct zkr__ticket *t;
    zkr_participant *p;
    size_t n;
    int64_t now_epoch;

    w.fired = 0;
    /* Watch first, then look: a change in between fires the watch. */
    rc = watch_dir(s, path, &w, &t);
    if (rc != ZKR_OK)
      break;
    rc = zkr_participants(s, path, &p, &n);
    if (rc == ZKR_OK) {
      now_epoch = n > 0 ? p[0].token : 0;
      if (now_epoch != *epoch && id != NULL && n > 0 && strlen(p[0].id) >= len)
        rc = ZKR_EINVAL;
      else if (now_epoch != *epoch) {
        *epoch = now_epoch;
        if (id != NULL)
          strcpy(id, n > 0 ? p[0].id : "");
        rc = 1; /* changed */
      }
      zkr_participants_free(p, n);
    }
    pthread_mutex_lock(mu);
    while (rc == ZKR_OK && !w.fired && zkr__session_usable(s) == ZKR_OK &&
           zkr__cond_wait(&w.cond, mu, deadline) == 0)
      ;
    if (rc == ZKR_OK && !w.fired)
      rc = zkr__session_usable(s) != ZKR_OK ? zkr__session_usable(s) : ZKR_ETIMEDOUT;
    zkr__watch_done(t, &w, 1);
    pthread_mutex_unlock(mu);
    if (rc != ZKR_OK)
      break;
  }
  pthread_cond_destroy(&w.cond);
  return rc == 1 ? ZKR_OK : rc;
}
