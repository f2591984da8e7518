/* zkr_rwlock: a reentrant read-write lock on the contender engine.
 *
 * Two policies on one directory: a reader is blocked by earlier exclusive
 * nodes only, a writer by every earlier node (the engine watches the
 * nearest that blocks and decides when its deletion alone grants). Holds
 * are per thread and per mode (holds.c), one holder set for each mode.
 *
 * Downgrade. A thread that holds the write lock and takes the read lock
 * gets a read hold that rides on its write node: no new node. A read node
 * of its own would sort after any writer queued meanwhile, and that writer
 * (which waits only for earlier nodes) would be granted as soon as the
 * write node went, while the downgraded reader still read: Curator's
 * downgrade has that window. Ours keeps the write node until the thread's
 * last hold of either mode ends, so the downgraded reader excludes others
 * as a writer would: never a writer beside it, at the cost of readers
 * queued behind it waiting until it is done.
 *
 * Every thread's order of acquisitions is kept (a stack of modes), so
 * zkr_rwlock_unlock() releases the innermost. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

/* What one acquisition of the calling thread took. */
enum { M_READ = 'r', M_RIDE = 'v', M_WRITE = 'w' };

typedef struct rwthread {
  zkr__list link; /* on the lock's list of threads */
  pthread_t thread;
  char *modes; /* acquisitions still counted, oldest first */
  int n, cap;
} rwthread;

struct zkr_rwlock {
  zkr__recipe r;
  zkr_rwlock_lost_fn on_lost;
  void *arg;
  zkr__holds rd, wr;
  zkr__asyncs asyncs; /* zkr_rwlock_acquire_async()'s holds */
  zkr__list threads;  /* rwthread; changed under the session mutex and mu */
  pthread_mutex_t mu; /* lets held() skip the session mutex */
};

/* Curator's reader: blocked only by writers queued before it. Kazoo's
 * "__lock__" and any "-lock-" node are exclusive too. */
static int reader_blocks(const zkr__name *me, const zkr__name *other, int earlier) {
  (void)me;
  return earlier && other->kind != ZKR__SHARED;
}

static const zkr__policy read_policy = {.marker = "-__READ__", .blocks = reader_blocks};
static const zkr__policy write_policy = {.marker = "-__WRIT__"};

static void rw_lost(void *arg) {
  zkr_rwlock *rw = arg;

  if (rw->on_lost != NULL)
    rw->on_lost(rw, rw->arg);
}

int zkr_rwlock_new(zkr_rwlock **out, zkr_session *s, const char *path, const zkr_rwlock_opts *opts) {
  zkr_rwlock *rw;
  int rc;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  rw = zkr__recipe_new(sizeof(*rw), s, path, opts != NULL ? opts->id : NULL, opts != NULL ? opts->acl : NULL,
                       &rc);
  if (rw == NULL)
    return rc;
  if (zkr__holds_init(&rw->rd, s, rw_lost, rw) != ZKR_OK) {
    rc = ZKR_ENOMEM;
  } else if (zkr__holds_init(&rw->wr, s, rw_lost, rw) != ZKR_OK) {
    zkr__holds_destroy(&rw->rd);
    rc = ZKR_ENOMEM;
  } else if (pthread_mutex_init(&rw->mu, NULL) != 0) {
    zkr__holds_destroy(&rw->rd);
    zkr__holds_destroy(&rw->wr);
    rc = ZKR_ENOMEM;
  }
  if (rc != ZKR_OK) {
    zkr__recipe_free(rw);
    return rc;
  }
  zkr__list_init(&rw->threads);
  zkr__asyncs_init(&rw->asyncs);
  if (opts != NULL) {
    rw->on_lost = opts->on_lost;
    rw->arg = opts->arg;
  }
  *out = rw;
  return ZKR_OK;
}

/* --- the calling thread's acquisitions (session mutex held) ---------------- */

static rwthread *find_thread(zkr_rwlock *rw) {
  zkr__list *l;

  zkr__list_foreach(l, &rw->threads) {
    rwthread *t = zkr__list_entry(l, rwthread, link);
    if (pthread_equal(t->thread, pthread_self()))
      return t;
  }
  return NULL;
}

static int count_of(const rwthread *t, int mode) {
  int i, n = 0;

  for (i = 0; t != NULL && i < t->n; i++)
    n += t->modes[i] == mode;
  return n;
}

static int push_mode(zkr_rwlock *rw, int mode) {
  rwthread *t = find_thread(rw);

  if (t == NULL) {
    t = calloc(1, sizeof(*t));
    if (t == NULL)
      return ZKR_ENOMEM;
    t->thread = pthread_self();
    pthread_mutex_lock(&rw->mu);
    zkr__list_push_front(&rw->threads, &t->link);
    pthread_mutex_unlock(&rw->mu);
  }
  if (t->n == t->cap) {
    int cap = t->cap > 0 ? t->cap * 2 : 4;
    char *more = realloc(t->modes, (size_t)cap);
    if (more == NULL)
      return ZKR_ENOMEM;
    t->modes = more;
    t->cap = cap;
  }
  t->modes[t->n++] = (char)mode;
  return ZKR_OK;
}

static void forget_thread(zkr_rwlock *rw, rwthread *t) {
  pthread_mutex_lock(&rw->mu);
  zkr__list_remove(&t->link);
  pthread_mutex_unlock(&rw->mu);
  free(t->modes);
  free(t);
}

/* Removes the most recent acquisition of one of the modes in which (all
 * of them if all). */
static void drop_modes(zkr_rwlock *rw, rwthread *t, const char *which, int all) {
  int i, j;

  for (i = t->n - 1; i >= 0; i--) {
    if (strchr(which, t->modes[i]) == NULL)
      continue;
    for (j = i; j + 1 < t->n; j++)
      t->modes[j] = t->modes[j + 1];
    t->n--;
    if (!all)
      break;
  }
  if (t->n == 0)
    forget_thread(rw, t);
}

/* Takes one acquisition of the calling thread in mode. */
static int take(zkr_rwlock *rw, int write, int timeout_ms) {
  int64_t deadline = zkr__deadline(timeout_ms);
  pthread_mutex_t *mu = zkr__session_mutex(rw->r.s);
  zkr__contender_cfg cfg;
  zkr__hold *wh;
  rwthread *t;
  int rc, mode = 0;

  zkr__recipe_contender(&rw->r, rw->r.path, write ? &write_policy : &read_policy, &cfg);
  cfg.try_once = timeout_ms == 0;
  pthread_mutex_lock(mu);
  t = find_thread(rw);
  wh = zkr__holds_mine(&rw->wr);
  if (write && wh == NULL && count_of(t, M_READ) > 0) {
    rc = ZKR_EDEADLK; /* our read node would block our write node forever */
  } else if (!write && wh != NULL && wh->count > 0 && zkr__holds_mine(&rw->rd) == NULL) {
    /* Downgrade: ride on the write node (see the top of this file). */
    rc = zkr__holds_acquire(&rw->wr, &cfg, deadline);
    mode = M_RIDE;
  } else {
    rc = zkr__holds_acquire(write ? &rw->wr : &rw->rd, &cfg, deadline);
    mode = write ? M_WRITE : M_READ;
  }
  if (rc == ZKR_OK && push_mode(rw, mode) != ZKR_OK) {
    zkr__holds_release(write || mode == M_RIDE ? &rw->wr : &rw->rd, 1);
    rc = ZKR_ENOMEM;
  }
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_rwlock_rdlock(zkr_rwlock *rw, int timeout_ms) {
  return rw != NULL ? take(rw, 0, timeout_ms) : ZKR_EINVAL;
}

int zkr_rwlock_wrlock(zkr_rwlock *rw, int timeout_ms) {
  return rw != NULL ? take(rw, 1, timeout_ms) : ZKR_EINVAL;
}

int zkr_rwlock_acquire_async(zkr_rwlock *rw, int write, int timeout_ms, zkr_hold_fn on_acquired,
                             zkr_hold_fn on_lost, void *arg, zkr_hold **out) {
  if (rw == NULL || (write != 0 && write != 1))
    return ZKR_EINVAL;
  return zkr__async_start(&rw->asyncs, &rw->r, write ? &write_policy : &read_policy, timeout_ms, on_acquired,
                          on_lost, arg, out);
}

/* Releases the most recent acquisition among the modes in which ("" for
 * the innermost of any mode). */
static int give_back(zkr_rwlock *rw, const char *which) {
  pthread_mutex_t *mu;
  zkr__holds *hs;
  rwthread *t;
  int i, rc, mode = 0;

  if (rw == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(rw->r.s);
  pthread_mutex_lock(mu);
  t = find_thread(rw);
  for (i = t != NULL ? t->n - 1 : -1; i >= 0 && mode == 0; i--)
    if (which[0] == '\0' || strchr(which, t->modes[i]) != NULL)
      mode = t->modes[i];
  if (mode == 0) {
    pthread_mutex_unlock(mu);
    return ZKR_ENOTHELD;
  }
  hs = mode == M_READ ? &rw->rd : &rw->wr;
  rc = zkr__holds_release(hs, 1);
  /* A hold found lost is cleared whole: so are its acquisitions. */
  if (zkr__holds_mine(hs) == NULL)
    drop_modes(rw, t, mode == M_READ ? "r" : "wv", 1);
  else
    drop_modes(rw, t, (char[]){(char)mode, '\0'}, 0);
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_rwlock_unlock(zkr_rwlock *rw) {
  return give_back(rw, "");
}

int zkr_rwlock_rdunlock(zkr_rwlock *rw) {
  return give_back(rw, "rv");
}

int zkr_rwlock_wrunlock(zkr_rwlock *rw) {
  return give_back(rw, "w");
}

/* The hold serving the calling thread's mode, or NULL (session mutex
 * held): a downgraded read is served by the write node. */
static zkr__holds *serving(zkr_rwlock *rw, const rwthread *t, int write) {
  if (write)
    return count_of(t, M_WRITE) > 0 ? &rw->wr : NULL;
  if (count_of(t, M_READ) > 0)
    return &rw->rd;
  return count_of(t, M_RIDE) > 0 ? &rw->wr : NULL;
}

int64_t zkr_rwlock_valid_until(zkr_rwlock *rw, int write) {
  zkr__holds *hs = NULL;
  rwthread *t;

  if (rw == NULL || (write != 0 && write != 1))
    return 0;
  /* Only the calling thread changes its own record; mu keeps the list
   * steady while we look for it. */
  pthread_mutex_lock(&rw->mu);
  t = find_thread(rw);
  if (t != NULL)
    hs = serving(rw, t, write);
  pthread_mutex_unlock(&rw->mu);
  return hs != NULL ? zkr__holds_valid_until(hs) : 0;
}

int zkr_rwlock_held(zkr_rwlock *rw, int write) {
  int64_t until = zkr_rwlock_valid_until(rw, write);

  return until != 0 && zkr__now_ns() < until;
}

/* The calling thread's granted, valid hold serving mode write, or NULL
 * (session mutex held). */
static zkr__hold *granted(zkr_rwlock *rw, int write) {
  zkr__holds *hs = serving(rw, find_thread(rw), write);

  return hs != NULL ? zkr__holds_granted(hs) : NULL;
}

int zkr_rwlock_token(zkr_rwlock *rw, int write, int64_t *token) {
  pthread_mutex_t *mu;
  zkr__hold *h;

  if (rw == NULL || token == NULL || (write != 0 && write != 1))
    return ZKR_EINVAL;
  mu = zkr__session_mutex(rw->r.s);
  pthread_mutex_lock(mu);
  h = granted(rw, write);
  if (h != NULL)
    *token = zkr__contender_token(h->c);
  pthread_mutex_unlock(mu);
  return h != NULL ? ZKR_OK : ZKR_ENOTHELD;
}

int zkr_rwlock_node(zkr_rwlock *rw, int write, char *buf, size_t len) {
  pthread_mutex_t *mu;
  zkr__hold *h;
  int rc;

  if (rw == NULL || buf == NULL || (write != 0 && write != 1))
    return ZKR_EINVAL;
  mu = zkr__session_mutex(rw->r.s);
  pthread_mutex_lock(mu);
  h = granted(rw, write);
  rc = h != NULL ? zkr__contender_copy_node(h->c, buf, len) : ZKR_ENOTHELD;
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_rwlock_lost_reason(zkr_rwlock *rw) {
  pthread_mutex_t *mu;
  zkr__hold *r, *w;
  int reason;

  if (rw == NULL)
    return ZKR_LOST_NONE;
  mu = zkr__session_mutex(rw->r.s);
  pthread_mutex_lock(mu);
  /* The calling thread's own hold first, of either mode. */
  r = zkr__holds_mine(&rw->rd);
  w = zkr__holds_mine(&rw->wr);
  reason = r != NULL ? zkr__contender_lost_reason(r->c) : ZKR_LOST_NONE;
  if (reason == ZKR_LOST_NONE && w != NULL)
    reason = zkr__contender_lost_reason(w->c);
  if (reason == ZKR_LOST_NONE)
    reason = zkr__holds_lost_reason(&rw->wr);
  if (reason == ZKR_LOST_NONE)
    reason = zkr__holds_lost_reason(&rw->rd);
  pthread_mutex_unlock(mu);
  return reason;
}

void zkr_rwlock_free(zkr_rwlock *rw) {
  pthread_mutex_t *mu;

  if (rw == NULL)
    return;
  mu = zkr__session_mutex(rw->r.s);
  pthread_mutex_lock(mu);
  zkr__async_close(&rw->asyncs);
  zkr__holds_close(&rw->rd);
  zkr__holds_close(&rw->wr);
  while (!zkr__list_empty(&rw->threads))
    forget_thread(rw, zkr__list_entry(rw->threads.next, rwthread, link));
  pthread_mutex_unlock(mu);
  zkr__holds_destroy(&rw->rd);
  zkr__holds_destroy(&rw->wr);
  pthread_mutex_destroy(&rw->mu);
  zkr__recipe_free(rw);
}
