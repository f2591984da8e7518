/* zkr_semaphore: Curator's InterProcessSemaphoreV2 on the contender queue.
 *
 * One acquire, top to bottom (zkr_semaphore_acquire):
 *  1. take the internal mutex, a mutex contender on PATH/locks (Curator's
 *     InterProcessMutex names, so Java acquirers queue with ours);
 *  2. check the record of max_leases on PATH's data (ours and Kazoo's idea:
 *     Curator keeps none), writing it if PATH has none;
 *  3. start the lease contender on PATH/leases and wait for its grant: every
 *     lease node counts, before or after ours, as Curator counts every child;
 *  4. release the internal mutex, whatever happened.
 * A single deadline covers all of it; a try (timeout 0) decides each step
 * from its first listing. On any failure our lease node and our mutex node
 * are deleted before we return.
 *
 * Safety rests on the count alone: a lease is granted only from a listing
 * read after its node was created that shows at most max_leases leases, so
 * two grants over the limit would need each listing to miss the other's
 * node. The mutex gives liveness: only its holder waits on the leases, so
 * acquirers never all sit with a lease node each in a full directory.
 *
 * A granted lease is a zkr_lease the caller owns, released from any thread.
 * The semaphore keeps the outstanding ones (under the session mutex) to
 * release them when it is freed, and counts the threads inside acquire so
 * that free waits for them. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zkr_lease {
  zkr__list link; /* on the semaphore's list of outstanding leases */
  zkr_semaphore *sem;
  zkr__contender *c;
};

/* One thread inside acquire: the contender it waits on, so that free can
 * wake it. */
typedef struct attempt {
  zkr__list link;          /* on the semaphore's list of attempts */
  zkr__contender *waiting; /* NULL while it waits on nothing */
} attempt;

struct zkr_semaphore {
  zkr__recipe r;
  char *locks, *leases;     /* PATH/locks, PATH/leases */
  char record[16];          /* max_leases in decimal: PATH's data */
  zkr__policy lease_policy; /* a pool of max_leases places */
  zkr_lease_lost_fn on_lost;
  void *arg;
  /* Under the session mutex: */
  zkr__list out;      /* zkr_lease: granted, not yet released */
  zkr__list attempts; /* attempt */
  int acquiring;      /* threads inside acquire */
  int freeing;
  pthread_cond_t cond; /* acquiring reached 0 */
};

/* --- policies ---------------------------------------------------------------- */

/* Every other lease holds or waits for one of the max_leases places. */
static int lease_blocks(const zkr__name *me, const zkr__name *other, int earlier) {
  (void)me;
  (void)earlier;
  return other->kind == ZKR__LEASE;
}

/* --- on the event thread ------------------------------------------------------ */

static void lease_lost(void *owner, zkr__contender *c) {
  zkr_lease *lease = owner;

  (void)c;
  /* The lease is still linked: its drop, which precedes any free, voids
   * this call, so sem is alive here. */
  if (lease->sem->on_lost != NULL)
    lease->sem->on_lost(lease, lease->sem->arg);
}

/* --- creating ------------------------------------------------------------------- */

int zkr_semaphore_new(zkr_semaphore **out, zkr_session *s, const char *path, int max_leases,
                      const zkr_semaphore_opts *opts) {
  zkr_semaphore *sem;
  int rc;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  if (max_leases < 1)
    return ZKR_EINVAL;
  sem = zkr__recipe_new(sizeof(*sem), s, path, opts != NULL ? opts->id : NULL,
                        opts != NULL ? opts->acl : NULL, &rc);
  if (sem == NULL)
    return rc;
  sem->locks = zkr__path_join(path, "locks");
  sem->leases = zkr__path_join(path, "leases");
  if (sem->locks == NULL || sem->leases == NULL || zkr__cond_init(&sem->cond) != ZKR_OK) {
    free(sem->locks);
    free(sem->leases);
    zkr__recipe_free(sem);
    return ZKR_ENOMEM;
  }
  zkr__list_init(&sem->out);
  zkr__list_init(&sem->attempts);
  sem->lease_policy.marker = "-lease-";
  sem->lease_policy.blocks = lease_blocks;
  sem->lease_policy.whole = 1;
  sem->lease_policy.limit = max_leases;
  snprintf(sem->record, sizeof(sem->record), "%d", max_leases);
  if (opts != NULL) {
    sem->on_lost = opts->on_lost;
    sem->arg = opts->arg;
  }
  *out = sem;
  return ZKR_OK;
}

/* --- acquiring: the steps ---------------------------------------------------------- */

/* Waits for c's grant until deadline (mutex held). A wait that ends early
 * (deadline, free) deletes our node before returning; a grant that won the
 * race is the caller's only if keep_late_grant, else it is handed back.
 * On any error c is dropped. */
static int wait_grant(zkr_semaphore *sem, attempt *at, zkr__contender *c, int64_t deadline,
                      int keep_late_grant) {
  int rc;

  at->waiting = c;
  rc = zkr__contender_wait(c, deadline);
  at->waiting = NULL;
  rc = zkr__contender_settle(c, rc, keep_late_grant, deadline);
  if (rc == ZKR_OK && sem->freeing) {
    zkr__contender_release(c, 1);
    rc = ZKR_ECLOSED;
  }
  if (rc != ZKR_OK)
    zkr__contender_drop(c);
  return rc;
}

/* Step 1 (mutex held): the internal mutex, granted into *m. A grant that
 * comes only as we give up is handed back: the deadline is spent, there is
 * no time left for the lease. */
static int take_mutex(zkr_semaphore *sem, attempt *at, int try_once, int64_t deadline, zkr__contender **m) {
  zkr__contender_cfg cfg;
  int rc;

  zkr__recipe_contender(&sem->r, sem->locks, &zkr__mutex_policy, &cfg);
  cfg.try_once = try_once;
  rc = zkr__contender_start(sem->r.s, &cfg, m);
  if (rc != ZKR_OK)
    return rc;
  return wait_grant(sem, at, *m, deadline, 0);
}

/* Step 2 (session mutex held, as is the internal mutex): PATH's data
 * records max_leases. The record is ours to read and write, not a
 * contender's, so the recipe sends these two requests itself
 * (zkr__request, engine.h), and waits for them within the acquire's one
 * deadline (a stalled connection must not hold the caller; a lost session
 * ends the wait with its code, ZKR_ESESSION, or ZKR_ECLOSED once closed). A
 * read whose answer was lost to a connection loss is sent again. Empty
 * data is claimed with the version read, so a concurrent writer (a peer
 * outside the internal mutex, e.g. Kazoo) wins or loses as a whole and we
 * read again. Anything but our own decimal count is a mismatch; only
 * participants that keep the record are detected: a Curator peer with
 * another count is not. */
static int check_record(zkr_semaphore *sem, int64_t deadline) {
  /* No stop(): free waits for the acquire to return, and the deadline (or,
   * for a try, the session's life) bounds this wait as it always did. */
  zkr__requester rq = {sem->r.s, NULL, NULL};
  zkr__req read = {.op = ZKR__REQ_GET, .path = sem->r.path, .version = -1};
  zkr__req claim = {.op = ZKR__REQ_SET, .path = sem->r.path, .data = sem->record};
  size_t want = strlen(sem->record);

  for (;;) {
    zkr__reply got;
    int set, zrc, rc = zkr__request_answered(&rq, &read, deadline, &got);

    if (rc != ZKR_OK)
      return rc;
    zrc = got.zrc;
    set = zrc == ZOK && got.stat.dataLength > 0;
    if (set)
      rc = (size_t)got.len == want && memcmp(got.data, sem->record, want) == 0 ? ZKR_OK : ZKR_EMISMATCH;
    claim.version = got.stat.version;
    zkr__reply_clear(&got);
    if (zrc != ZOK)
      return zkr__from_zk(zrc);
    if (set)
      return rc;
    rc = zkr__request(&rq, &claim, deadline, &got);
    if (rc != ZKR_OK)
      return rc;
    zrc = got.zrc;
    zkr__reply_clear(&got);
    if (zrc == ZOK)
      return ZKR_OK;
    /* Lost the race, or the reply: the next read tells. */
    if (zrc != ZBADVERSION && !zkr__request_conn_lost(zrc))
      return zkr__from_zk(zrc);
  }
}

/* Step 3 (mutex held): the lease, granted into lease->c. A grant that comes
 * as we give up at the deadline is kept, as the lock does. */
static int take_lease(zkr_semaphore *sem, attempt *at, zkr_lease *lease, int try_once, int64_t deadline) {
  zkr__contender_cfg cfg;
  int rc;

  zkr__recipe_contender(&sem->r, sem->leases, &sem->lease_policy, &cfg);
  cfg.on_lost = lease_lost;
  cfg.owner = lease;
  cfg.try_once = try_once;
  rc = zkr__contender_start(sem->r.s, &cfg, &lease->c);
  if (rc != ZKR_OK)
    return rc;
  return wait_grant(sem, at, lease->c, deadline, 1);
}

/* --- acquiring: the entry point ------------------------------------------------------ */

int zkr_semaphore_acquire(zkr_semaphore *sem, int timeout_ms, zkr_lease **out) {
  int64_t deadline = zkr__deadline(timeout_ms);
  int try_once = timeout_ms == 0;
  pthread_mutex_t *mu;
  attempt at;
  zkr__contender *m = NULL;
  zkr_lease *lease;
  int rc, cancel_state;

  if (out != NULL)
    *out = NULL;
  if (sem == NULL || out == NULL)
    return ZKR_EINVAL;
  lease = calloc(1, sizeof(*lease));
  if (lease == NULL)
    return ZKR_ENOMEM;
  lease->sem = sem;
  /* Cancelled inside a wait, a thread would leave the session mutex locked
   * and its nodes behind: this call is no cancellation point. */
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  mu = zkr__session_mutex(sem->r.s);
  pthread_mutex_lock(mu);
  if (sem->freeing) {
    pthread_mutex_unlock(mu);
    pthread_setcancelstate(cancel_state, NULL);
    free(lease);
    return ZKR_ECLOSED;
  }
  at.waiting = NULL;
  zkr__list_push_back(&sem->attempts, &at.link);
  sem->acquiring++;

  rc = take_mutex(sem, &at, try_once, deadline, &m);
  if (rc == ZKR_OK) {
    /* A try waits for the record's answer as it waits for a listing. */
    rc = check_record(sem, try_once ? -1 : deadline);
    if (rc == ZKR_OK && sem->freeing)
      rc = ZKR_ECLOSED;
    if (rc == ZKR_OK)
      rc = take_lease(sem, &at, lease, try_once, deadline);
    /* Waiting for the delete's confirmation, as Curator does (the next
     * acquirer may go on at once, and a failed acquire leaves nothing), but
     * within the deadline's grace: a server that does not answer gets it
     * in the background. Its outcome is not ours to report: a lost internal
     * mutex (session gone, node deleted) takes nothing from a granted
     * lease, whose grant rests on the count alone. */
    zkr__contender_release_until(m, zkr__give_up_by(deadline));
    zkr__contender_drop(m);
  }

  zkr__list_remove(&at.link);
  if (rc == ZKR_OK)
    zkr__list_push_back(&sem->out, &lease->link);
  if (--sem->acquiring == 0)
    pthread_cond_broadcast(&sem->cond);
  pthread_mutex_unlock(mu);
  pthread_setcancelstate(cancel_state, NULL);
  if (rc != ZKR_OK) {
    free(lease);
    return rc;
  }
  *out = lease;
  return ZKR_OK;
}

/* --- leases ------------------------------------------------------------------------ */

int zkr_lease_token(zkr_lease *lease, int64_t *token) {
  pthread_mutex_t *mu;
  int rc;

  if (lease == NULL || token == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(lease->sem->r.s);
  pthread_mutex_lock(mu);
  /* One snapshot: held, and the token of that very node. */
  rc = zkr__contender_granted(lease->c) && zkr__now_ns() < zkr__session_valid_until(lease->sem->r.s)
           ? ZKR_OK
           : ZKR_ENOTHELD;
  if (rc == ZKR_OK)
    *token = zkr__contender_token(lease->c);
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_lease_node(zkr_lease *lease, char *buf, size_t len) {
  pthread_mutex_t *mu;
  int rc;

  if (lease == NULL || buf == NULL)
    return ZKR_EINVAL;
  mu = zkr__session_mutex(lease->sem->r.s);
  pthread_mutex_lock(mu);
  rc = zkr__contender_granted(lease->c) ? zkr__contender_copy_node(lease->c, buf, len) : ZKR_ENOTHELD;
  pthread_mutex_unlock(mu);
  return rc;
}

int zkr_lease_lost_reason(zkr_lease *lease) {
  pthread_mutex_t *mu;
  int reason;

  if (lease == NULL)
    return ZKR_LOST_NONE;
  mu = zkr__session_mutex(lease->sem->r.s);
  pthread_mutex_lock(mu);
  reason = zkr__contender_lost_reason(lease->c);
  pthread_mutex_unlock(mu);
  return reason;
}

int zkr_lease_held(zkr_lease *lease) {
  if (lease == NULL)
    return 0;
  /* Both read atomically, without waiting behind the completion thread; our
   * own clock decides at once, before the event thread notices. */
  return zkr__contender_held_now(lease->c) && zkr__now_ns() < zkr__session_valid_until(lease->sem->r.s);
}

/* Mutex held: deletes the lease's node (waiting for the server) and forgets
 * it. Returns why it had been lost, if it had. */
static int give_back(zkr_lease *lease) {
  int rc = zkr__contender_release(lease->c, 1);

  zkr__list_remove(&lease->link);
  zkr__contender_drop(lease->c); /* voids a pending on_lost */
  free(lease);
  return rc;
}

int zkr_lease_release(zkr_lease *lease) {
  zkr_semaphore *sem;
  pthread_mutex_t *mu;
  int rc, cancel_state;

  if (lease == NULL)
    return ZKR_EINVAL;
  sem = lease->sem;
  mu = zkr__session_mutex(sem->r.s);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  pthread_mutex_lock(mu);
  rc = give_back(lease);
  pthread_mutex_unlock(mu);
  pthread_setcancelstate(cancel_state, NULL);
  return rc;
}

/* --- freeing ----------------------------------------------------------------------- */

void zkr_semaphore_free(zkr_semaphore *sem) {
  pthread_mutex_t *mu;
  zkr__list *l;
  int cancel_state;

  if (sem == NULL)
    return;
  mu = zkr__session_mutex(sem->r.s);
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  pthread_mutex_lock(mu);
  sem->freeing = 1;
  /* An acquirer between two waits sees freeing when it next takes the
   * mutex; one inside a wait is woken here. */
  zkr__list_foreach(l, &sem->attempts) {
    attempt *at = zkr__list_entry(l, attempt, link);
    if (at->waiting != NULL)
      zkr__contender_close(at->waiting);
  }
  while (sem->acquiring > 0)
    pthread_cond_wait(&sem->cond, mu);
  while ((l = zkr__list_first(&sem->out)) != NULL)
    give_back(zkr__list_entry(l, zkr_lease, link));
  pthread_mutex_unlock(mu);
  pthread_setcancelstate(cancel_state, NULL);
  pthread_cond_destroy(&sem->cond);
  free(sem->locks);
  free(sem->leases);
  zkr__recipe_free(sem);
}
