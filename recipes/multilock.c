/* zkr_multilock: all of several zkr_locks or none, on the public lock API.
 *
 * Deadlock freedom comes from one global order: the parts are created
 * sorted by path, and every acquisition takes them in that order, so no two
 * contenders can each hold a part the other waits for.
 *
 * The parts only ever have a count of one: the multi-lock counts reentrant
 * acquires itself (holder, depth), so a reentrant acquire or an inner
 * release sends nothing and cannot half-succeed. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

struct zkr_multilock {
  zkr_lock **parts; /* sorted by path; owned */
  int count;
  zkr_lock_lost_fn on_lost; /* the user's; the parts call part_lost */
  void *arg;
  pthread_mutex_t mu; /* guards holder and depth */
  pthread_t holder;   /* meaningful while depth > 0 */
  int depth;          /* the holder's count; 0 = nobody holds */
  int armed;          /* atomic: 1 while on_lost is owed for the current hold */
};

/* The user hears of the first part lost per hold only: the whole
 * multi-lock is lost with it, further losses are no news. */
static void part_lost(zkr_lock *l, void *arg) {
  zkr_multilock *m = arg;

  if (__atomic_exchange_n(&m->armed, 0, __ATOMIC_SEQ_CST) && m->on_lost != NULL)
    m->on_lost(l, m->arg);
}

static int cmp_path(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The paths sorted (a new array of borrowed pointers), or NULL with *rc set
 * when one is bad or repeated. */
static const char **sorted_paths(const char *const *paths, int count, int *rc) {
  const char **sorted;
  int i;

  for (i = 0; i < count; i++) {
    if (zkr_path_problem(paths[i]) != NULL) {
      *rc = ZKR_EINVAL;
      return NULL;
    }
  }
  sorted = malloc((size_t)count * sizeof(*sorted));
  if (sorted == NULL) {
    *rc = ZKR_ENOMEM;
    return NULL;
  }
  memcpy(sorted, paths, (size_t)count * sizeof(*sorted));
  qsort(sorted, (size_t)count, sizeof(*sorted), cmp_path);
  for (i = 1; i < count; i++) {
    if (strcmp(sorted[i - 1], sorted[i]) == 0) {
      free(sorted);
      *rc = ZKR_EINVAL;
      return NULL;
    }
  }
  return sorted;
}

int zkr_multilock_new(zkr_multilock **out, zkr_session *s, const char *const *paths, int count,
                      const zkr_lock_opts *opts) {
  zkr_lock_opts po;
  zkr_multilock *m;
  const char **sorted;
  int rc = ZKR_OK, i;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  if (s == NULL || paths == NULL || count <= 0)
    return ZKR_EINVAL;
  sorted = sorted_paths(paths, count, &rc);
  if (sorted == NULL)
    return rc;
  m = calloc(1, sizeof(*m));
  if (m != NULL)
    m->parts = calloc((size_t)count, sizeof(*m->parts));
  if (m == NULL || m->parts == NULL || pthread_mutex_init(&m->mu, NULL) != 0) {
    if (m != NULL)
      free(m->parts);
    free(m);
    free(sorted);
    return ZKR_ENOMEM;
  }
  memset(&po, 0, sizeof(po));
  if (opts != NULL) {
    po = *opts;
    m->on_lost = opts->on_lost;
    m->arg = opts->arg;
  }
  po.on_lost = part_lost;
  po.arg = m;
  m->count = count;
  for (i = 0; i < count && rc == ZKR_OK; i++)
    rc = zkr_lock_new(&m->parts[i], s, sorted[i], &po);
  free(sorted);
  if (rc != ZKR_OK) {
    zkr_multilock_free(m); /* sent nothing yet: only frees */
    return rc;
  }
  *out = m;
  return ZKR_OK;
}

/* ZKR_OK if the calling thread holds every part, else the first lost
 * part's code, as zkr_lock_acquire() names a lost hold. */
static int first_lost(zkr_multilock *m) {
  int i;

  for (i = 0; i < m->count; i++)
    if (!zkr_lock_held(m->parts[i]))
      return zkr_lock_lost_reason(m->parts[i]) == ZKR_LOST_DELETED ? ZKR_ELOST : ZKR_ESESSION;
  return ZKR_OK;
}

/* Releases parts [0, n) in reverse order, all of them whatever fails;
 * returns the first error. */
static int release_parts(zkr_multilock *m, int n) {
  int rc = ZKR_OK, r;

  while (n-- > 0) {
    r = zkr_lock_release(m->parts[n]);
    if (rc == ZKR_OK)
      rc = r;
  }
  return rc;
}

typedef struct taking {
  zkr_multilock *m;
  int taken; /* parts [0, taken) are held */
} taking;

static void taking_cancelled(void *arg) {
  taking *t = arg;

  release_parts(t->m, t->taken);
}

/* Takes every part in order within one deadline. On failure returns the
 * failing part's code with the parts taken so far still held (t->taken). */
static int take_parts(taking *t, int timeout_ms) {
  int64_t deadline = zkr__deadline(timeout_ms);
  int rc = ZKR_OK;

  /* A thread cancelled while waiting for a part lets go of the earlier
   * ones; the part it waited for cleans up after itself. */
  pthread_cleanup_push(taking_cancelled, t);
  while (t->taken < t->m->count) {
    /* A try tries every part; a wait gives each part what is left. */
    int step = timeout_ms == 0 ? 0 : zkr__timeout_left(deadline);

    if (step == 0 && timeout_ms != 0) {
      rc = ZKR_ETIMEDOUT;
      break;
    }
    rc = zkr_lock_acquire(t->m->parts[t->taken], step);
    if (rc != ZKR_OK)
      break;
    t->taken++;
  }
  pthread_cleanup_pop(0);
  return rc;
}

int zkr_multilock_acquire(zkr_multilock *m, int timeout_ms) {
  taking t = {m, 0};
  int rc, cancel_state;

  if (m == NULL)
    return ZKR_EINVAL;
  pthread_mutex_lock(&m->mu);
  if (m->depth > 0 && pthread_equal(m->holder, pthread_self())) {
    rc = first_lost(m);
    if (rc == ZKR_OK)
      m->depth++;
    pthread_mutex_unlock(&m->mu);
    return rc;
  }
  pthread_mutex_unlock(&m->mu);

  rc = take_parts(&t, timeout_ms);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  if (rc == ZKR_OK) {
    /* Armed before the check: a part lost after it is reported by on_lost,
     * one lost while later parts were awaited by our return code. */
    __atomic_store_n(&m->armed, 1, __ATOMIC_SEQ_CST);
    rc = first_lost(m);
    if (rc != ZKR_OK)
      __atomic_store_n(&m->armed, 0, __ATOMIC_SEQ_CST);
  }
  if (rc == ZKR_OK) {
    pthread_mutex_lock(&m->mu);
    m->holder = pthread_self();
    m->depth = 1;
    pthread_mutex_unlock(&m->mu);
  } else {
    release_parts(m, t.taken); /* the cause is rc, not the clean-up's news */
  }
  pthread_setcancelstate(cancel_state, NULL);
  return rc;
}

int zkr_multilock_release(zkr_multilock *m) {
  int last;

  if (m == NULL)
    return ZKR_EINVAL;
  pthread_mutex_lock(&m->mu);
  if (m->depth == 0 || !pthread_equal(m->holder, pthread_self())) {
    pthread_mutex_unlock(&m->mu);
    return ZKR_ENOTHELD;
  }
  last = --m->depth == 0;
  pthread_mutex_unlock(&m->mu);
  if (!last)
    return ZKR_OK;
  /* The hold ends here: a part deleted by our own release is no loss. */
  __atomic_store_n(&m->armed, 0, __ATOMIC_SEQ_CST);
  return release_parts(m, m->count);
}

int zkr_multilock_held(zkr_multilock *m) {
  return m != NULL && first_lost(m) == ZKR_OK;
}

int64_t zkr_multilock_valid_until(zkr_multilock *m) {
  int64_t until = INT64_MAX, u;
  int i;

  if (m == NULL)
    return 0;
  for (i = 0; i < m->count; i++) {
    u = zkr_lock_valid_until(m->parts[i]);
    if (u == 0)
      return 0;
    if (u < until)
      until = u;
  }
  return until;
}

void zkr_multilock_free(zkr_multilock *m) {
  int i;

  if (m == NULL)
    return;
  /* zkr_lock_free releases any hold first; in reverse, like a release. */
  for (i = m->count - 1; i >= 0; i--)
    zkr_lock_free(m->parts[i]);
  pthread_mutex_destroy(&m->mu);
  free(m->parts);
  free(m);
}
