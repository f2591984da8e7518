/* Asynchronous holds (zkr/async.h): a contender driven by its events
 * instead of a waiting thread.
 *
 * A hold moves PENDING -> HELD -> RELEASING -> freed, or PENDING -> ENDED
 * -> freed; every move is made under the session mutex, by whoever sees
 * the reason first: the contender's change (granted, failed, released), the
 * deadline's timer, a cancel, the recipe's close. The first move out of
 * PENDING decides the outcome, so on_acquired is called exactly once:
 *
 * Premise A: every callback of a hold is called from one of its events
 * (change_ev of its contender, its timer, its done event) or from the
 * recipe's close, after the move that decided it; each move happens once
 * (it tests the phase it leaves). Tests: test_async_cancel_races_grant,
 * test_async_deadline_races_grant.
 *
 * Premise B: nothing is held once on_acquired got anything but ZKR_OK: a
 * move out of PENDING other than the grant's drops the contender, and a
 * dropped contender's node is deleted even if it was granted meanwhile
 * (zkr__contender_drop). Tests: the same, which list the directory after.
 *
 * Premise C: nothing of a hold, nor of its recipe, is used after it is
 * freed. The hold's own events are unposted (or it is their run that frees
 * it); its contender's are voided by the drop, and one already running
 * finds h->c cleared first. A cancel waits for nothing: the hold outlives
 * a contender callback already running because the hold is freed by its
 * done event, which the event thread runs after that callback. The
 * recipe's close waits for a callback of a hold running on another thread
 * (the hold stays listed until its last callback returned, in_cb and
 * cb_thread say where) and for a running callback of a contender a cancel
 * let go; then it frees the hold itself (closing). A callback that frees
 * the recipe (closing its own hold) leaves the freeing, and what the close
 * owes (on_released), to the event that runs the callback (orphaned).
 * Tests: test_async_free_from_callback,
 * test_async_release_then_free_in_callback, test_async_cancel_from_thread,
 * test_async_free_waits_for_last_callback.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

enum phase { H_PENDING, H_HELD, H_RELEASING, H_ENDED, H_GONE };

struct zkr_hold {
  zkr__list link; /* on its recipe's zkr__asyncs */
  zkr_session *s;
  zkr__contender *c; /* NULL once dropped */
  int phase;
  int owed;  /* H_ENDED: the outcome on_acquired gets (done_ev) */
  int in_cb; /* a callback of ours is running, on cb_thread */
  pthread_t cb_thread;
  int closing;         /* a close on another thread waits for the callback: it frees h */
  int orphaned;        /* the recipe closed it meanwhile: the event frees it */
  zkr_hold_fn late_fn; /* owed by the recipe's close to an orphaned hold */
  void *late_arg;
  int late_rc;
  const void *abandoned; /* the contender a cancel let go (a tag, never read) */
  zkr_hold_fn on_acquired, on_lost, on_released;
  void *arg, *rel_arg;
  zkr__timer deadline;
  zkr__event done_ev;
};

static void hold_free(zkr_hold *h) {
  zkr__session_unref(h->s);
  free(h);
}

/* Mutex held. Leaves the contender (its node is deleted in the background if
 * it is still there) and the hold's timer and queued outcome. h->c goes
 * first: a callback of the contender about to take the mutex finds it is
 * no longer ours. With wait, a callback of it already running is waited
 * for (for a close, which frees h next); without, nothing is (a cancel,
 * promised never to block: h lives until its done event, which runs after
 * that callback, on the same thread). */
static void detach(zkr_hold *h, int wait) {
  zkr__contender *c = h->c;

  zkr__timer_stop(h->s, &h->deadline);
  zkr__session_unpost(h->s, &h->done_ev);
  if (c == NULL)
    return;
  h->c = NULL;
  if (wait) {
    zkr__contender_drop(c);
  } else {
    h->abandoned = c;
    zkr__contender_abandon(c);
  }
}

/* Mutex held on entry and exit. Calls fn outside it. A final call (the
 * hold ends with it) frees the hold afterwards; any call frees a hold the
 * recipe closed while the callback ran. */
static void call(zkr_hold *h, zkr_hold_fn fn, int rc, void *arg, int final) {
  pthread_mutex_t *mu = zkr__session_mutex(h->s);

  /* Still listed while the callback runs: a close on another thread finds
   * it and waits for the callback (session condition, broadcast when this
   * event ends) before the recipe goes. */
  if (final)
    h->phase = H_GONE;
  if (fn != NULL) {
    h->in_cb = 1;
    h->cb_thread = pthread_self();
    pthread_mutex_unlock(mu);
    fn(h, rc, arg);
    pthread_mutex_lock(mu);
    h->in_cb = 0;
  }
  if (h->closing && !h->orphaned)
    return; /* the close waiting for us frees h */
  if (h->orphaned && h->late_fn != NULL) {
    /* The callback freed the recipe: what the close owed comes now (a
     * release asked for in the callback gets its on_released). */
    zkr_hold_fn late = h->late_fn;
    h->late_fn = NULL;
    pthread_mutex_unlock(mu);
    late(h, h->late_rc, h->late_arg);
    pthread_mutex_lock(mu);
  }
  if (final || h->orphaned) {
    if (zkr__list_linked(&h->link))
      zkr__list_remove(&h->link);
    hold_free(h);
  }
}

/* The move out of PENDING for any reason but the grant (mutex held). */
static void end_pending(zkr_hold *h, int rc) {
  detach(h, 1);
  h->phase = H_ENDED;
  call(h, h->on_acquired, rc, h->arg, 1);
}

/* --- events ------------------------------------------------------------------- */

static void on_change(void *owner, zkr__contender *c) {
  zkr_hold *h = owner;
  pthread_mutex_t *mu = zkr__session_mutex(h->s);
  int rc;

  pthread_mutex_lock(mu);
  if (h->c != c) {
    /* Dropped meanwhile (the drop voids the callback, but this call had
     * read it before). */
  } else if (h->phase == H_PENDING && (rc = zkr__contender_outcome(c)) != ZKR__PENDING) {
    if (rc == ZKR_OK) {
      zkr__timer_stop(h->s, &h->deadline);
      h->phase = H_HELD;
      call(h, h->on_acquired, ZKR_OK, h->arg, 0);
    } else {
      end_pending(h, rc);
    }
  } else if (h->phase == H_RELEASING && (rc = zkr__contender_released(c)) != ZKR__PENDING) {
    detach(h, 1);
    call(h, h->on_released, rc, h->rel_arg, 1);
  }
  pthread_mutex_unlock(mu);
}

static void on_lost(void *owner, zkr__contender *c) {
  zkr_hold *h = owner;
  pthread_mutex_t *mu = zkr__session_mutex(h->s);

  pthread_mutex_lock(mu);
  /* Once: the contender posts its lost event once, when its hold ends. */
  if (h->c == c && h->phase == H_HELD) {
    int rc = zkr__contender_outcome(c);
    call(h, h->on_lost, rc == ZKR_ELOST ? ZKR_ELOST : ZKR_ESESSION, h->arg, 0);
  }
  pthread_mutex_unlock(mu);
}

static void deadline_passed(void *arg) {
  zkr_hold *h = arg;
  pthread_mutex_t *mu = zkr__session_mutex(h->s);

  pthread_mutex_lock(mu);
  if (h->phase == H_PENDING)
    end_pending(h, ZKR_ETIMEDOUT);
  pthread_mutex_unlock(mu);
}

static void deliver_owed(void *arg) {
  zkr_hold *h = arg;
  pthread_mutex_t *mu = zkr__session_mutex(h->s);

  pthread_mutex_lock(mu);
  if (h->phase == H_ENDED)
    call(h, h->on_acquired, h->owed, h->arg, 1);
  pthread_mutex_unlock(mu);
}

/* --- the recipes' side ---------------------------------------------------------- */

void zkr__asyncs_init(zkr__asyncs *as) {
  zkr__list_init(&as->holds);
  as->closed = 0;
}

/* Mutex held. */
static int start(zkr__asyncs *as, zkr_session *s, zkr__contender_cfg *cfg, int timeout_ms,
                 zkr_hold_fn on_acquired, zkr_hold_fn on_lost_fn, void *arg, zkr_hold **out) {
  zkr_hold *h;
  int rc;

  if (as->closed)
    return ZKR_ECLOSED;
  if ((rc = zkr__session_usable(s)) != ZKR_OK)
    return rc;
  h = calloc(1, sizeof(*h));
  if (h == NULL)
    return ZKR_ENOMEM;
  h->s = s;
  zkr__session_ref(s);
  h->on_acquired = on_acquired;
  h->on_lost = on_lost_fn;
  h->arg = arg;
  zkr__timer_init(&h->deadline, deadline_passed, h, h);
  zkr__event_init(&h->done_ev, deliver_owed, h, h);
  cfg->on_change = on_change;
  cfg->on_lost = on_lost;
  cfg->on_granted = NULL;
  cfg->owner = h;
  cfg->try_once = timeout_ms == 0;
  rc = zkr__contender_start(s, cfg, &h->c);
  if (rc != ZKR_OK) {
    hold_free(h);
    return rc;
  }
  h->phase = H_PENDING;
  zkr__list_push_back(&as->holds, &h->link);
  /* A try decides from its listing, however long it takes. */
  if (timeout_ms > 0)
    zkr__timer_start(s, &h->deadline, zkr__deadline(timeout_ms));
  *out = h;
  return ZKR_OK;
}

int zkr__async_start(zkr__asyncs *as, const zkr__recipe *r, const zkr__policy *policy, int timeout_ms,
                     zkr_hold_fn on_acquired, zkr_hold_fn on_lost_fn, void *arg, zkr_hold **out) {
  pthread_mutex_t *mu = zkr__session_mutex(r->s);
  zkr__contender_cfg cfg;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (on_acquired == NULL || out == NULL)
    return ZKR_EINVAL;
  zkr__recipe_contender(r, r->path, policy, &cfg);
  pthread_mutex_lock(mu);
  rc = start(as, r->s, &cfg, timeout_ms, on_acquired, on_lost_fn, arg, out);
  pthread_mutex_unlock(mu);
  return rc;
}

void zkr__async_close(zkr__asyncs *as) {
  zkr__list *l;

  as->closed = 1;
  while ((l = zkr__list_first(&as->holds)) != NULL) {
    zkr_hold *h = zkr__list_entry(l, zkr_hold, link);
    int phase;
    zkr_hold_fn fn = NULL;
    void *arg = NULL;

    zkr__list_remove(l);
    /* A callback of h running on another thread (the event thread) may
     * still use the recipe, or release h: the recipe goes only after it,
     * and what is owed is read after it. */
    h->closing = 1;
    while (h->in_cb && !pthread_equal(h->cb_thread, pthread_self()))
      zkr__session_wait(h->s);
    phase = h->phase;
    if (phase == H_PENDING || phase == H_ENDED) {
      fn = h->on_acquired;
      arg = h->arg;
    } else if (phase == H_RELEASING) {
      fn = h->on_released;
      arg = h->rel_arg;
    }
    h->phase = H_GONE;
    detach(h, 1);
    /* Events of ours, or of a contender a cancel let go, running on another
     * thread find H_GONE (or no contender) and leave: wait for them. */
    if (h->abandoned != NULL)
      zkr__session_quiesce_running(h->s, h->abandoned);
    zkr__session_quiesce(h->s, h);
    if (h->in_cb) {
      /* We run inside its callback: the event delivers what is owed, then
       * frees it. */
      h->orphaned = 1;
      h->late_fn = fn;
      h->late_arg = arg;
      h->late_rc = phase == H_ENDED ? h->owed : ZKR_ECLOSED;
      continue;
    }
    if (fn != NULL) {
      pthread_mutex_t *mu = zkr__session_mutex(h->s);
      pthread_mutex_unlock(mu);
      fn(h, phase == H_ENDED ? h->owed : ZKR_ECLOSED, arg);
      pthread_mutex_lock(mu);
    }
    hold_free(h);
  }
}

/* --- public ------------------------------------------------------------------------ */

int zkr_hold_cancel(zkr_hold *h) {
  pthread_mutex_t *mu;
  int rc = ZKR_EINVAL;

  if (h == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(h->s);
  pthread_mutex_lock(mu);
  if (h->phase == H_PENDING) {
    h->phase = H_ENDED;
    h->owed = ZKR_ECANCELLED;
    detach(h, 0);
    /* Refused once the session is closed: the recipe's close delivers it. */
    zkr__session_post(h->s, &h->done_ev);
    rc = ZKR_OK;
  }
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_hold_release(zkr_hold *h, zkr_hold_fn on_released, void *arg) {
  pthread_mutex_t *mu;
  int rc = ZKR_EINVAL;

  if (h == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(h->s);
  pthread_mutex_lock(mu);
  if (h->phase == H_HELD && zkr__session_usable(h->s) == ZKR_ECLOSED) {
    rc = ZKR_ECLOSED; /* no event can run any more: freeing the recipe frees h */
  } else if (h->phase == H_HELD) {
    h->phase = H_RELEASING;
    h->on_released = on_released;
    h->rel_arg = arg;
    /* Its outcome comes through on_change (a lost hold finishes at once). */
    zkr__contender_release(h->c, 0);
    rc = ZKR_OK;
  }
  pthread_mutex_unlock(mu);
  return rc;
}

/* The contender while h is granted and not lost (mutex held), or NULL. */
static zkr__contender *granted(zkr_hold *h) {
  return h->phase == H_HELD && zkr__contender_granted(h->c) ? h->c : NULL;
}

int zkr_hold_held(zkr_hold *h) {
  return zkr_hold_valid_until(h) > zkr__now_ns();
}

int64_t zkr_hold_valid_until(zkr_hold *h) {
  pthread_mutex_t *mu;
  int64_t v = 0;

  if (h == NULL)
    return 0;
  mu = zkr__session_mutex(h->s);
  pthread_mutex_lock(mu);
  if (granted(h) != NULL)
    v = zkr__session_valid_until(h->s);
  pthread_mutex_unlock(mu);
  return v;
}

int zkr_hold_token(zkr_hold *h, int64_t *token) {
  pthread_mutex_t *mu;
  zkr__contender *c;

  if (h == NULL || token == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(h->s);
  pthread_mutex_lock(mu);
  c = granted(h);
  if (c != NULL)
    *token = zkr__contender_token(c);
  pthread_mutex_unlock(mu);
  return c != NULL ? ZKR_OK : ZKR_ENOTHELD;
}

int zkr_hold_node(zkr_hold *h, char *buf, size_t len) {
  pthread_mutex_t *mu;
  int rc = ZKR_ENOTHELD;

  if (h == NULL || buf == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(h->s);
  pthread_mutex_lock(mu);
  if (h->c != NULL && zkr__contender_node(h->c) != NULL)
    rc = zkr__contender_copy_node(h->c, buf, len);
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_hold_lost_reason(zkr_hold *h) {
  pthread_mutex_t *mu;
  int r = ZKR_LOST_NONE;

  if (h == NULL)
    return ZKR_LOST_NONE;
  mu = zkr__session_mutex(h->s);
  pthread_mutex_lock(mu);
  if (h->c != NULL)
    r = zkr__contender_lost_reason(h->c);
  pthread_mutex_unlock(mu);
  return r;
}

zkr__contender *zkr__hold_contender(zkr_hold *h) {
  return h->c;
}
