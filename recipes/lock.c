/* zkr_lock: a reentrant mutex on the contender queue.
 *
 * A zkr_lock keeps one "hold" per thread that is acquiring or holding it:
 * threads sharing one zkr_lock contend like separate clients, and the
 * holding thread's re-acquires only count. All state is guarded by the
 * session mutex, the one the contender queue uses. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct hold {
  struct hold *next;
  pthread_t thread;
  int count; /* 0 while still acquiring */
  zkr__contender *c;
} hold;

struct zkr_lock {
  zkr__recipe r;
  zkr_lock_lost_fn on_lost;
  void *arg;
  hold *holds;
  int acquiring;   /* threads inside zkr_lock_acquire */
  int lost_reason; /* of the last lost hold; atomic */
  int freeing;
  pthread_cond_t cond; /* acquiring reached 0 */
};

static hold *find(zkr_lock *l) {
  hold *h;

  for (h = l->holds; h != NULL; h = h->next)
    if (pthread_equal(h->thread, pthread_self()))
      return h;
  return NULL;
}

static void unlink_hold(zkr_lock *l, hold *h) {
  hold **pp;

  for (pp = &l->holds; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == h) {
      *pp = h->next;
      break;
    }
  }
  zkr__contender_drop(h->c);
  free(h);
}

static void note_lost(zkr_lock *l, const zkr__contender *c) {
  int r = zkr__contender_lost_reason(c);

  if (r != ZKR_LOST_NONE)
    __atomic_store_n(&l->lost_reason, r, __ATOMIC_RELEASE);
}

static void lock_lost(void *owner, zkr__contender *c) {
  zkr_lock *l = owner;

  note_lost(l, c);
  if (l->on_lost != NULL)
    l->on_lost(l, l->arg);
}

int zkr_lock_new(zkr_lock **out, zkr_session *s, const char *path, const zkr_lock_opts *opts) {
  zkr_lock *l;
  int rc;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  l = calloc(1, sizeof(*l));
  if (l == NULL)
    return ZKR_ENOMEM;
  rc = zkr__recipe_init(&l->r, s, path, opts != NULL ? opts->id : NULL, opts != NULL ? opts->acl : NULL);
  if (rc == ZKR_OK && zkr__cond_init(&l->cond) != ZKR_OK) {
    zkr__recipe_done(&l->r);
    rc = ZKR_ENOMEM;
  }
  if (rc != ZKR_OK) {
    free(l);
    return rc;
  }
  if (opts != NULL) {
    l->on_lost = opts->on_lost;
    l->arg = opts->arg;
  }
  *out = l;
  return ZKR_OK;
}

typedef struct cancel_cleanup {
  zkr_lock *l;
  hold *h;
} cancel_cleanup;

/* Runs when a thread is cancelled inside the wait, with the mutex held. */
static void acquire_cancelled(void *arg) {
  cancel_cleanup *cu = arg;
  zkr_lock *l = cu->l;

  if (zkr__contender_withdraw(cu->h->c) == ZKR_OK)
    zkr__contender_release(cu->h->c, 1);
  unlink_hold(l, cu->h);
  if (--l->acquiring == 0)
    pthread_cond_broadcast(&l->cond);
  pthread_mutex_unlock(zkr__session_mutex(l->r.s));
}

static int wait_cancellable(zkr_lock *l, hold *h, int64_t deadline) {
  cancel_cleanup cu = {l, h};
  int rc;

  pthread_cleanup_push(acquire_cancelled, &cu);
  rc = zkr__contender_wait(h->c, deadline);
  pthread_cleanup_pop(0);
  return rc;
}

int zkr_lock_acquire(zkr_lock *l, int timeout_ms) {
  pthread_mutex_t *mu;
  zkr__contender_cfg cfg;
  int64_t deadline;
  hold *h;
  int rc, cancel_state;

  if (l == NULL)
    return ZKR_EINVAL;
  deadline = zkr__deadline(timeout_ms);
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  if (l->freeing) {
    pthread_mutex_unlock(mu);
    return ZKR_ECLOSED;
  }
  h = find(l);
  if (h != NULL) {
    /* Reentrant: count only, no request. A lost hold must be released; the
     * code says why it was lost. */
    rc = zkr__contender_granted(h->c)                           ? ZKR_OK
         : zkr__contender_lost_reason(h->c) == ZKR_LOST_DELETED ? ZKR_ELOST
                                                                : ZKR_ESESSION;
    if (rc == ZKR_OK)
      h->count++;
    pthread_mutex_unlock(mu);
    return rc;
  }
  h = calloc(1, sizeof(*h));
  if (h == NULL) {
    pthread_mutex_unlock(mu);
    return ZKR_ENOMEM;
  }
  memset(&cfg, 0, sizeof(cfg));
  cfg.dir = l->r.path;
  cfg.marker = "-lock-";
  cfg.data = l->r.id;
  cfg.acl = l->r.acl;
  cfg.on_lost = lock_lost;
  cfg.owner = l;
  cfg.try_once = timeout_ms == 0;
  rc = zkr__contender_start(l->r.s, &cfg, &h->c);
  if (rc != ZKR_OK) {
    pthread_mutex_unlock(mu);
    free(h);
    return rc;
  }
  h->thread = pthread_self();
  h->next = l->holds;
  l->holds = h;
  l->acquiring++;

  /* The wait is a cancellation point: a cancelled waiter leaves the queue
   * (node deleted) and unlocks on its way out. Later waits are short and
   * not cancellable. */
  rc = wait_cancellable(l, h, deadline);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  if (rc == ZKR_ETIMEDOUT || rc == ZKR_ECLOSED) {
    /* Giving up: our node is deleted before we return. A grant that won
     * the race is kept on a timeout, handed back when we are being freed. */
    int wrc = zkr__contender_withdraw(h->c), granted = wrc == ZKR_OK;
    if (granted && rc == ZKR_ETIMEDOUT)
      rc = ZKR_OK;
    else if (granted)
      zkr__contender_release(h->c, 1);
    else if (wrc == ZKR_ELOST && rc == ZKR_ETIMEDOUT)
      rc = ZKR_ELOST; /* the cause, not the symptom */
  }
  if (rc == ZKR_OK && l->freeing) {
    zkr__contender_release(h->c, 1);
    rc = ZKR_ECLOSED;
  }
  if (rc == ZKR_OK)
    h->count = 1;
  else
    unlink_hold(l, h);
  if (--l->acquiring == 0)
    pthread_cond_broadcast(&l->cond);
  pthread_mutex_unlock(mu);
  pthread_setcancelstate(cancel_state, NULL);
  return rc;
}

static int release(zkr_lock *l, int wait) {
  pthread_mutex_t *mu;
  hold *h;
  int rc = ZKR_OK;

  if (l == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  h = find(l);
  if (h == NULL || h->count == 0) {
    rc = ZKR_ENOTHELD;
  } else if (!zkr__contender_granted(h->c)) {
    /* Lost meanwhile: clear the whole hold and say why. */
    note_lost(l, h->c);
    rc = zkr__contender_lost_reason(h->c) == ZKR_LOST_DELETED ? ZKR_ELOST : ZKR_ESESSION;
    zkr__contender_release(h->c, 1);
    unlink_hold(l, h);
  } else if (--h->count == 0) {
    rc = zkr__contender_release(h->c, wait);
    note_lost(l, h->c); /* a deletion learnt only from our own delete */
    unlink_hold(l, h);
  }
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_lock_release(zkr_lock *l) {
  return release(l, 1);
}

int zkr_lock_release_nowait(zkr_lock *l) {
  return release(l, 0);
}

/* The calling thread's granted hold whose validity deadline has not passed,
 * or NULL; mutex held. Every accessor answers from this one snapshot. */
static hold *granted_hold(zkr_lock *l) {
  hold *h = find(l);

  if (h == NULL || h->count == 0 || !zkr__contender_granted(h->c))
    return NULL;
  return zkr__now_ns() < zkr__session_valid_until_locked(l->r.s) ? h : NULL;
}

int64_t zkr_lock_valid_until(zkr_lock *l) {
  pthread_mutex_t *mu;
  int64_t until;

  if (l == NULL)
    return 0;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  until = granted_hold(l) != NULL ? zkr__session_valid_until_locked(l->r.s) : 0;
  pthread_mutex_unlock(mu);
  return until;
}

int zkr_lock_held(zkr_lock *l) {
  int64_t until = zkr_lock_valid_until(l);

  /* The local clock decides at once, before the event thread notices. */
  return until != 0 && zkr__now_ns() < until;
}

int zkr_lock_token(zkr_lock *l, int64_t *token) {
  pthread_mutex_t *mu;
  hold *h;

  if (l == NULL || token == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  h = granted_hold(l);
  if (h != NULL)
    *token = zkr__contender_token(h->c);
  pthread_mutex_unlock(mu);
  return h != NULL ? ZKR_OK : ZKR_ENOTHELD;
}

int zkr_lock_node(zkr_lock *l, char *buf, size_t len) {
  pthread_mutex_t *mu;
  hold *h;
  int rc = ZKR_OK;

  if (l == NULL || buf == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  h = granted_hold(l);
  if (h == NULL)
    rc = ZKR_ENOTHELD;
  else if (strlen(zkr__contender_node(h->c)) >= len)
    rc = ZKR_EINVAL;
  else
    strcpy(buf, zkr__contender_node(h->c));
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_lock_multi(zkr_lock *l, int count, const zoo_op_t *ops, zoo_op_result_t *results) {
  char node[ZKR__PATH_MAX + 128];
  zoo_op_t *all;
  zoo_op_result_t *res;
  zhandle_t *zh;
  int rc, zrc, i;

  if (l == NULL || count < 0 || (count > 0 && ops == NULL))
    return ZKR_EINVAL;
  rc = zkr_lock_node(l, node, sizeof(node));
  if (rc != ZKR_OK)
    return rc;
  if (!zkr_lock_held(l))
    return ZKR_ENOTHELD;
  zh = zkr_session_zhandle(l->r.s);
  if (zh == NULL)
    return ZKR_ECLOSED;
  all = calloc((size_t)count + 1, sizeof(*all));
  res = calloc((size_t)count + 1, sizeof(*res));
  if (all == NULL || res == NULL) {
    free(all);
    free(res);
    return ZKR_ENOMEM;
  }
  /* The check on our own node makes the whole multi fail once it is gone. */
  zoo_check_op_init(&all[0], node, -1);
  for (i = 0; i < count; i++)
    all[i + 1] = ops[i];
  zrc = zoo_multi(zh, count + 1, all, res);
  if (results != NULL)
    for (i = 0; i < count; i++)
      results[i] = res[i + 1];
  if (zrc == ZOK)
    rc = ZKR_OK;
  else if (res[0].err != ZOK && res[0].err != ZRUNTIMEINCONSISTENCY && zkr__zk_answered(zrc))
    rc = ZKR_ENOTHELD;
  else
    rc = zkr__from_zk(zrc);
  free(all);
  free(res);
  return rc;
}

int zkr_lock_lost_reason(zkr_lock *l) {
  pthread_mutex_t *mu;
  hold *h;
  int r;

  if (l == NULL)
    return ZKR_LOST_NONE;
  /* The calling thread's own lost hold first: known as soon as held() says
   * 0, before on_lost has run on the event thread. */
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  h = find(l);
  r = h != NULL ? zkr__contender_lost_reason(h->c) : ZKR_LOST_NONE;
  pthread_mutex_unlock(mu);
  return r != ZKR_LOST_NONE ? r : __atomic_load_n(&l->lost_reason, __ATOMIC_ACQUIRE);
}

void zkr_lock_free(zkr_lock *l) {
  pthread_mutex_t *mu;
  hold *h;

  if (l == NULL)
    return;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  l->freeing = 1;
  for (h = l->holds; h != NULL; h = h->next)
    if (h->count == 0)
      zkr__contender_close(h->c);
  while (l->acquiring > 0)
    pthread_cond_wait(&l->cond, mu);
  while ((h = l->holds) != NULL) {
    zkr__contender_release(h->c, 1);
    unlink_hold(l, h);
  }
  pthread_mutex_unlock(mu);
  pthread_cond_destroy(&l->cond);
  zkr__recipe_done(&l->r);
  free(l);
}
