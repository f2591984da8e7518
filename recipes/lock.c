/* zkr_lock: a reentrant mutex on the contender queue: the mutex policy
 * and per-thread holds (holds.c), nothing of its own. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

struct zkr_lock {
  zkr__recipe r;
  zkr_lock_lost_fn on_lost;
  void *arg;
  zkr__holds holds;
  zkr__asyncs asyncs; /* zkr_lock_acquire_async()'s holds */
};

/* Curator's InterProcessMutex: every earlier contender blocks. */
const zkr__policy zkr__mutex_policy = {.marker = "-lock-"};

static void lock_lost(void *arg) {
  zkr_lock *l = arg;

  if (l->on_lost != NULL)
    l->on_lost(l, l->arg);
}

int zkr_lock_new(zkr_lock **out, zkr_session *s, const char *path, const zkr_lock_opts *opts) {
  zkr_lock *l;
  int rc;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  l = zkr__recipe_new(sizeof(*l), s, path, opts != NULL ? opts->id : NULL, opts != NULL ? opts->acl : NULL,
                      &rc);
  if (l != NULL && zkr__holds_init(&l->holds, s, lock_lost, l) != ZKR_OK) {
    zkr__recipe_free(l);
    return ZKR_ENOMEM;
  }
  if (l == NULL)
    return rc;
  zkr__asyncs_init(&l->asyncs);
  if (opts != NULL) {
    l->on_lost = opts->on_lost;
    l->arg = opts->arg;
  }
  *out = l;
  return ZKR_OK;
}

int zkr_lock_acquire(zkr_lock *l, int timeout_ms) {
  pthread_mutex_t *mu;
  zkr__contender_cfg cfg;
  int64_t deadline;
  int rc;

  if (l == NULL)
    return ZKR_EINVAL;
  deadline = zkr__deadline(timeout_ms);
  zkr__recipe_contender(&l->r, l->r.path, &zkr__mutex_policy, &cfg);
  cfg.try_once = timeout_ms == 0;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  rc = zkr__holds_acquire(&l->holds, &cfg, deadline);
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_lock_acquire_async(zkr_lock *l, int timeout_ms, zkr_hold_fn on_acquired, zkr_hold_fn on_lost,
                           void *arg, zkr_hold **out) {
  if (l == NULL)
    return ZKR_EINVAL;
  return zkr__async_start(&l->asyncs, &l->r, &zkr__mutex_policy, timeout_ms, on_acquired, on_lost, arg, out);
}

static int release(zkr_lock *l, int wait) {
  pthread_mutex_t *mu;
  int rc;

  if (l == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  rc = zkr__holds_release(&l->holds, wait);
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_lock_release(zkr_lock *l) {
  return release(l, 1);
}

int zkr_lock_release_nowait(zkr_lock *l) {
  return release(l, 0);
}

int64_t zkr_lock_valid_until(zkr_lock *l) {
  return l != NULL ? zkr__holds_valid_until(&l->holds) : 0;
}

int zkr_lock_held(zkr_lock *l) {
  int64_t until = zkr_lock_valid_until(l);

  /* The local clock decides at once, before the event thread notices. */
  return until != 0 && zkr__now_ns() < until;
}

int zkr_lock_token(zkr_lock *l, int64_t *token) {
  pthread_mutex_t *mu;
  zkr__hold *h;

  if (l == NULL || token == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  h = zkr__holds_granted(&l->holds);
  if (h != NULL)
    *token = zkr__contender_token(h->c);
  pthread_mutex_unlock(mu);
  return h != NULL ? ZKR_OK : ZKR_ENOTHELD;
}

int zkr_lock_node(zkr_lock *l, char *buf, size_t len) {
  pthread_mutex_t *mu;
  zkr__hold *h;
  int rc;

  if (l == NULL || buf == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  h = zkr__holds_granted(&l->holds);
  rc = h != NULL ? zkr__contender_copy_node(h->c, buf, len) : ZKR_ENOTHELD;
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
  int r;

  if (l == NULL)
    return ZKR_LOST_NONE;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  r = zkr__holds_lost_reason(&l->holds);
  pthread_mutex_unlock(mu);
  return r;
}

void zkr_lock_free(zkr_lock *l) {
  pthread_mutex_t *mu;

  if (l == NULL)
    return;
  mu = zkr__session_mutex(l->r.s);
  pthread_mutex_lock(mu);
  zkr__async_close(&l->asyncs);
  zkr__holds_close(&l->holds);
  pthread_mutex_unlock(mu);
  zkr__holds_destroy(&l->holds);
  zkr__recipe_free(l);
}
