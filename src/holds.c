/* Per-thread holds: the reentrancy every lock-like recipe shares.
 *
 * A holder set keeps one hold per thread that is acquiring or holding: the
 * threads sharing one recipe object contend like separate clients, and the
 * holding thread's re-acquires only count. Changes happen under the session
 * mutex; the list is also guarded by the set's own mutex, so that held()
 * and valid_until() find the calling thread's hold without waiting behind
 * the completion thread (they read the contender's state and the session's
 * deadline atomically). Lock order: session mutex, then the set's. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

int zkr__holds_init(zkr__holds *hs, zkr_session *s, void (*on_lost)(void *arg), void *arg) {
  memset(hs, 0, sizeof(*hs));
  if (pthread_mutex_init(&hs->mu, NULL) != 0)
    return ZKR_ENOMEM;
  if (zkr__cond_init(&hs->cond) != ZKR_OK) {
    pthread_mutex_destroy(&hs->mu);
    return ZKR_ENOMEM;
  }
  zkr__list_init(&hs->holds);
  hs->s = s;
  hs->on_lost = on_lost;
  hs->arg = arg;
  return ZKR_OK;
}

void zkr__holds_destroy(zkr__holds *hs) {
  pthread_cond_destroy(&hs->cond);
  pthread_mutex_destroy(&hs->mu);
}

zkr__hold *zkr__holds_mine(zkr__holds *hs) {
  zkr__list *l;

  zkr__list_foreach(l, &hs->holds) {
    zkr__hold *h = zkr__list_entry(l, zkr__hold, link);
    if (pthread_equal(h->thread, pthread_self()))
      return h;
  }
  return NULL;
}

static void link_hold(zkr__holds *hs, zkr__hold *h) {
  pthread_mutex_lock(&hs->mu);
  zkr__list_push_front(&hs->holds, &h->link);
  pthread_mutex_unlock(&hs->mu);
}

/* Unlinked under the set's mutex before the contender goes: a concurrent
 * held() either finished reading it or no longer finds it. */
static void unlink_hold(zkr__holds *hs, zkr__hold *h) {
  pthread_mutex_lock(&hs->mu);
  zkr__list_remove(&h->link);
  pthread_mutex_unlock(&hs->mu);
  zkr__contender_drop(h->c);
  free(h);
}

static void note_lost(zkr__holds *hs, const zkr__contender *c) {
  int r = zkr__contender_lost_reason(c);

  if (r != ZKR_LOST_NONE)
    __atomic_store_n(&hs->lost_reason, r, __ATOMIC_RELEASE);
}

static void hold_lost(void *owner, zkr__contender *c) {
  zkr__holds *hs = owner;

  note_lost(hs, c);
  if (hs->on_lost != NULL)
    hs->on_lost(hs->arg);
}

/* Why a hold that is no longer granted ended, as a return code. */
static int lost_code(const zkr__contender *c) {
  return zkr__contender_lost_reason(c) == ZKR_LOST_DELETED ? ZKR_ELOST : ZKR_ESESSION;
}

typedef struct cancel_cleanup {
  zkr__holds *hs;
  zkr__hold *h;
} cancel_cleanup;

/* Runs when a thread is cancelled inside the wait, with the mutex held. */
static void acquire_cancelled(void *arg) {
  cancel_cleanup *cu = arg;
  zkr__holds *hs = cu->hs;

  if (zkr__contender_withdraw(cu->h->c, -1) == ZKR_OK)
    zkr__contender_release(cu->h->c, 1);
  unlink_hold(hs, cu->h);
  if (--hs->acquiring == 0)
    pthread_cond_broadcast(&hs->cond);
  pthread_mutex_unlock(zkr__session_mutex(hs->s));
}

static int wait_cancellable(zkr__holds *hs, zkr__hold *h, int64_t deadline) {
  cancel_cleanup cu = {hs, h};
  int rc;

  pthread_cleanup_push(acquire_cancelled, &cu);
  rc = zkr__contender_wait(h->c, deadline);
  pthread_cleanup_pop(0);
  return rc;
}

int zkr__holds_acquire(zkr__holds *hs, zkr__contender_cfg *cfg, int64_t deadline) {
  zkr__hold *h;
  int rc, cancel_state;

  if (hs->freeing)
    return ZKR_ECLOSED;
  h = zkr__holds_mine(hs);
  if (h != NULL) {
    /* Reentrant: count only, no request. A lost hold must be released; the
     * code says why it was lost. */
    rc = zkr__contender_granted(h->c) ? ZKR_OK : lost_code(h->c);
    if (rc == ZKR_OK)
      h->count++;
    return rc;
  }
  h = calloc(1, sizeof(*h));
  if (h == NULL)
    return ZKR_ENOMEM;
  cfg->on_lost = hold_lost;
  cfg->owner = hs;
  rc = zkr__contender_start(hs->s, cfg, &h->c);
  if (rc != ZKR_OK) {
    free(h);
    return rc;
  }
  h->thread = pthread_self();
  link_hold(hs, h);
  hs->acquiring++;

  /* The wait is a cancellation point: a cancelled waiter leaves the queue
   * (node deleted) and unlocks on its way out. Later waits are short and
   * not cancellable. */
  rc = wait_cancellable(hs, h, deadline);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  /* A grant that won the race against the deadline is kept. */
  rc = zkr__contender_settle(h->c, rc, 1, deadline);
  if (rc == ZKR_OK && hs->freeing) {
    zkr__contender_release(h->c, 1);
    rc = ZKR_ECLOSED;
  }
  if (rc == ZKR_OK)
    h->count = 1;
  else
    unlink_hold(hs, h);
  if (--hs->acquiring == 0)
    pthread_cond_broadcast(&hs->cond);
  pthread_setcancelstate(cancel_state, NULL);
  return rc;
}

int zkr__holds_release(zkr__holds *hs, int wait) {
  zkr__hold *h = zkr__holds_mine(hs);
  int rc = ZKR_OK;

  if (h == NULL || h->count == 0) {
    rc = ZKR_ENOTHELD;
  } else if (!zkr__contender_granted(h->c)) {
    /* Lost meanwhile: clear the whole hold and say why. */
    note_lost(hs, h->c);
    rc = lost_code(h->c);
    zkr__contender_release(h->c, 1);
    unlink_hold(hs, h);
  } else if (--h->count == 0) {
    rc = zkr__contender_release(h->c, wait);
    note_lost(hs, h->c); /* a deletion learnt only from our own delete */
    unlink_hold(hs, h);
  }
  return rc;
}

zkr__hold *zkr__holds_granted(zkr__holds *hs) {
  zkr__hold *h = zkr__holds_mine(hs);

  if (h == NULL || h->count == 0 || !zkr__contender_granted(h->c))
    return NULL;
  return zkr__now_ns() < zkr__session_valid_until(hs->s) ? h : NULL;
}

int64_t zkr__holds_valid_until(zkr__holds *hs) {
  int64_t until = 0;
  zkr__hold *h;

  pthread_mutex_lock(&hs->mu);
  h = zkr__holds_mine(hs);
  /* count is the calling thread's own; the state is published atomically. */
  if (h != NULL && h->count > 0 && zkr__contender_held_now(h->c))
    until = zkr__session_valid_until(hs->s);
  pthread_mutex_unlock(&hs->mu);
  return until;
}

int zkr__holds_lost_reason(zkr__holds *hs) {
  zkr__hold *h = zkr__holds_mine(hs);
  int r = h != NULL ? zkr__contender_lost_reason(h->c) : ZKR_LOST_NONE;

  /* The calling thread's own lost hold first: known as soon as held() says
   * 0, before on_lost has run on the event thread. */
  return r != ZKR_LOST_NONE ? r : __atomic_load_n(&hs->lost_reason, __ATOMIC_ACQUIRE);
}

void zkr__holds_close(zkr__holds *hs) {
  pthread_mutex_t *mu = zkr__session_mutex(hs->s);
  zkr__list *l;

  hs->freeing = 1;
  zkr__list_foreach(l, &hs->holds) {
    zkr__hold *h = zkr__list_entry(l, zkr__hold, link);
    if (h->count == 0)
      zkr__contender_close(h->c);
  }
  while (hs->acquiring > 0)
    pthread_cond_wait(&hs->cond, mu);
  while ((l = zkr__list_first(&hs->holds)) != NULL) {
    zkr__hold *h = zkr__list_entry(l, zkr__hold, link);
    zkr__contender_release(h->c, 1);
    unlink_hold(hs, h);
  }
}
