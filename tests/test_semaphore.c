/* The semaphore's contract against a real server: never more than
 * max_leases holders (and max_leases actually reached), try and timed
 * acquisition leaving nothing behind, leases freed by their session's
 * expiry, loss notification, release from another thread, the max_leases
 * record, free with leases out, fencing tokens, Curator's layout, bad
 * input. Every case leaves no znode behind. */
#define _GNU_SOURCE
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "proxy.h"

static zkr_semaphore *sem_on(zkr_session *s, const char *path, int n, const zkr_semaphore_opts *o) {
  zkr_semaphore *sem = NULL;

  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_new(&sem, s, path, n, o), ZKR_OK);
  return sem;
}

/* "<path>/<sub>" in buf. */
static const char *sub(char *buf, size_t len, const char *path, const char *name) {
  snprintf(buf, len, "%s/%s", path, name);
  return buf;
}

/* Number of children of path/<name> (0 if absent), asserting the read. */
static int kids_of(const char *path, const char *name) {
  struct String_vector kids = {0, NULL};
  zhandle_t *raw = th_raw();
  char dir[1100];
  int rc, n;

  rc = zoo_get_children(raw, sub(dir, sizeof(dir), path, name), 0, &kids);
  CU_ASSERT_TRUE(rc == ZOK || rc == ZNONODE);
  n = rc == ZOK ? kids.count : 0;
  deallocate_String_vector(&kids);
  th_raw_close(raw);
  return n;
}

/* Same, read through session s right after one of its calls returned: the
 * server runs a session's requests in order, so every delete the call sent
 * has run by then, whatever another client may have seen yet. */
static int kids_seen_by(zkr_session *s, const char *path, const char *name) {
  struct String_vector kids = {0, NULL};
  char dir[1100];
  int rc, n;

  rc = zoo_get_children(zkr_session_zhandle(s), sub(dir, sizeof(dir), path, name), 0, &kids);
  CU_ASSERT_TRUE(rc == ZOK || rc == ZNONODE);
  n = rc == ZOK ? kids.count : 0;
  deallocate_String_vector(&kids);
  return n;
}

/* The full path of the only lease node (asserts there is exactly one). */
static void only_lease(const char *path, char *node, size_t len) {
  struct String_vector kids = {0, NULL};
  zhandle_t *raw = th_raw();
  char dir[1100];

  CU_ASSERT_EQUAL(zoo_get_children(raw, sub(dir, sizeof(dir), path, "leases"), 0, &kids), ZOK);
  CU_ASSERT_EQUAL_FATAL(kids.count, 1);
  snprintf(node, len, "%s/%s", dir, kids.data[0]);
  deallocate_String_vector(&kids);
  th_raw_close(raw);
}

/* End of a test's use of a semaphore path: its contender directories are
 * empty containers by now (the server reclaims them later), so what must be
 * gone is every node below them. */
static void sem_finish(char *path) {
  char dir[1100];

  CU_ASSERT_TRUE(th_await_nodes(sub(dir, sizeof(dir), path, "leases"), 0));
  CU_ASSERT_TRUE(th_await_nodes(sub(dir, sizeof(dir), path, "locks"), 0));
  th_delete_tree(path);
  free(path);
}

/* An acquire on a thread of its own, so that a test can wait for it. */
typedef struct acq {
  zkr_semaphore *sem;
  int timeout_ms;
  int rc, done;
  zkr_lease *lease;
  int64_t returned_ms;
  pthread_t t;
} acq;

static void *acq_main(void *p) {
  acq *a = p;

  a->rc = zkr_semaphore_acquire(a->sem, a->timeout_ms, &a->lease);
  a->returned_ms = th_now_ms();
  __atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void acq_start(acq *a, zkr_semaphore *sem, int timeout_ms) {
  memset(a, 0, sizeof(*a));
  a->sem = sem;
  a->timeout_ms = timeout_ms;
  pthread_create(&a->t, NULL, acq_main, a);
}

static int acq_done(void *p) {
  return __atomic_load_n(&((acq *)p)->done, __ATOMIC_SEQ_CST);
}

/* Waits (bounded) for a's acquire to return, and joins it. */
static int acq_join(acq *a) {
  CU_ASSERT_TRUE_FATAL(th_wait_until(acq_done, a, 4 * TH_SETTLE_MS));
  pthread_join(a->t, NULL);
  return a->rc;
}

typedef struct count_arg {
  const char *path, *name;
  int want;
} count_arg;

static int count_reached(void *p) {
  count_arg *c = p;
  return kids_of(c->path, c->name) == c->want;
}

/* Waits until path/<name> has want children. */
static int await_kids(const char *path, const char *name, int want) {
  count_arg c = {path, name, want};
  return th_wait_until(count_reached, &c, TH_SETTLE_MS);
}

/* An acquirer of s waiting for a free lease: its lease node exists (it is
 * created only by the holder of the internal mutex, which then lists the
 * leases and, the semaphore being full, watches PATH/leases: a child watch
 * that the server's wchp does not list, so the node is what we can see). A
 * release after this point is seen by its listing or by its watch. */
typedef struct waiting_arg {
  const char *path;
  zkr_session *s;
} waiting_arg;

static int waiting_for_lease(void *p) {
  waiting_arg *w = p;
  char dir[1100], node[1400];
  zhandle_t *raw = th_raw();
  struct String_vector kids;
  int i, found = 0;

  sub(dir, sizeof(dir), w->path, "leases");
  if (raw == NULL || zoo_get_children(raw, dir, 0, &kids) != ZOK) {
    th_raw_close(raw);
    return 0;
  }
  for (i = 0; i < kids.count && !found; i++) {
    struct Stat st;
    snprintf(node, sizeof(node), "%s/%s", dir, kids.data[i]);
    found = zoo_exists(raw, node, 0, &st) == ZOK && st.ephemeralOwner == zkr_session_id(w->s);
  }
  deallocate_String_vector(&kids);
  th_raw_close(raw);
  return found;
}

static int await_waiting(const char *path, zkr_session *s) {
  waiting_arg w = {path, s};
  return th_wait_until(waiting_for_lease, &w, TH_SETTLE_MS);
}

/* --- the limit ----------------------------------------------------------------- */

#define LIM_N 3
#define LIM_THREADS 8
#define LIM_ROUNDS 6

typedef struct lim_shared {
  int occupancy, max, violations, grants, failures;
} lim_shared;

typedef struct lim_thread {
  const char *path;
  lim_shared *sh;
  pthread_t t;
} lim_thread;

static int limit_seen(void *p) {
  return __atomic_load_n(&((lim_shared *)p)->max, __ATOMIC_SEQ_CST) >= LIM_N;
}

static void *lim_main(void *p) {
  lim_thread *t = p;
  lim_shared *sh = t->sh;
  zkr_session *s = th_session(0);
  zkr_semaphore *sem = NULL;
  int i;

  /* Each thread its own session and object: separate clients. */
  if (s == NULL || zkr_semaphore_new(&sem, s, t->path, LIM_N, NULL) != ZKR_OK) {
    __atomic_add_fetch(&sh->failures, 1, __ATOMIC_SEQ_CST);
    zkr_session_close(s);
    return NULL;
  }
  for (i = 0; i < LIM_ROUNDS; i++) {
    zkr_lease *lease = NULL;
    int now, max;

    if (zkr_semaphore_acquire(sem, TH_QUEUE_MS(LIM_THREADS), &lease) != ZKR_OK) {
      __atomic_add_fetch(&sh->failures, 1, __ATOMIC_SEQ_CST);
      continue;
    }
    now = __atomic_add_fetch(&sh->occupancy, 1, __ATOMIC_SEQ_CST);
    if (now > LIM_N)
      __atomic_add_fetch(&sh->violations, 1, __ATOMIC_SEQ_CST);
    max = __atomic_load_n(&sh->max, __ATOMIC_SEQ_CST);
    while (now > max &&
           !__atomic_compare_exchange_n(&sh->max, &max, now, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
      ;
    __atomic_add_fetch(&sh->grants, 1, __ATOMIC_SEQ_CST);
    /* The first holders stay until the limit has been reached once: the
     * test must see it reached, not hope for it. Later holds are short
     * work. */
    if (!th_wait_until(limit_seen, sh, TH_SETTLE_MS))
      __atomic_add_fetch(&sh->failures, 1, __ATOMIC_SEQ_CST);
    /* The work a holder does, long beside the acquires the others make
     * meanwhile (a few round trips each): without the limit they would
     * all be inside at once. */
    usleep(20000);
    __atomic_sub_fetch(&sh->occupancy, 1, __ATOMIC_SEQ_CST);
    if (zkr_lease_release(lease) != ZKR_OK)
      __atomic_add_fetch(&sh->failures, 1, __ATOMIC_SEQ_CST);
  }
  zkr_semaphore_free(sem);
  zkr_session_close(s);
  return NULL;
}

static void test_semaphore_never_above_limit(void) {
  char *path = th_path("sem-limit");
  lim_shared sh;
  lim_thread t[LIM_THREADS];
  int i;

  memset(&sh, 0, sizeof(sh));
  for (i = 0; i < LIM_THREADS; i++) {
    t[i].path = path;
    t[i].sh = &sh;
    pthread_create(&t[i].t, NULL, lim_main, &t[i]);
  }
  for (i = 0; i < LIM_THREADS; i++)
    pthread_join(t[i].t, NULL);
  printf("[%d grants, at most %d at once] ", sh.grants, sh.max);
  CU_ASSERT_EQUAL(sh.failures, 0);
  CU_ASSERT_EQUAL(sh.violations, 0);
  CU_ASSERT_EQUAL(sh.max, LIM_N);
  CU_ASSERT_EQUAL(sh.grants, LIM_THREADS * LIM_ROUNDS);
  sem_finish(path);
}

/* --- try and timeout ---------------------------------------------------------------- */

static void test_semaphore_try_when_full(void) {
  char *path = th_path("sem-try");
  zkr_session *a = th_session(0), *b = th_session(0);
  zkr_semaphore *sa = sem_on(a, path, 2, NULL), *sb = sem_on(b, path, 2, NULL);
  zkr_lease *l1 = NULL, *l2 = NULL, *l3 = NULL;

  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sb, 0, &l3), ZKR_OK); /* free: a try gets it */
  CU_ASSERT_EQUAL(zkr_lease_release(l3), ZKR_OK);
  l3 = NULL;
  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sa, 0, &l1), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sa, -1, &l2), ZKR_OK); /* one object, several leases */
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(sb, 0, &l3), ZKR_ETIMEDOUT);
  CU_ASSERT_PTR_NULL(l3);
  /* Nothing of the try is left: its lease node and its mutex node were
   * deleted before it returned. */
  CU_ASSERT_EQUAL(kids_seen_by(b, path, "leases"), 2);
  CU_ASSERT_EQUAL(kids_seen_by(b, path, "locks"), 0);
  CU_ASSERT_EQUAL(zkr_lease_release(l1), ZKR_OK);
  CU_ASSERT_EQUAL(kids_of(path, "leases"), 1); /* gone when release returned */
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(sb, 0, &l3), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lease_release(l3), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lease_release(l2), ZKR_OK);
  zkr_semaphore_free(sa);
  zkr_semaphore_free(sb);
  zkr_session_close(a);
  zkr_session_close(b);
  sem_finish(path);
}

static void test_semaphore_timed_when_full(void) {
  char *path = th_path("sem-timed");
  zkr_session *a = th_session(0), *b = th_session(0), *c = th_session(0);
  zkr_semaphore *sa = sem_on(a, path, 1, NULL), *sb = sem_on(b, path, 1, NULL),
                *sc = sem_on(c, path, 1, NULL);
  zkr_lease *held = NULL, *l = NULL;
  /* Past the deadline: the deletes of our two nodes, a few round trips. */
  const int64_t slack = TH_SESSION_MS / 4 * TH_TIME_SCALE;
  int64_t t0, ms;
  acq w;

  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sa, -1, &held), ZKR_OK);
  /* Waiting for a free lease, holding the internal mutex. */
  t0 = th_now_ms();
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(sb, 700, &l), ZKR_ETIMEDOUT);
  ms = th_now_ms() - t0;
  printf("[700 ms waiting for a lease: %lld ms] ", (long long)ms);
  CU_ASSERT_TRUE(ms >= 700 && ms < 700 + slack);
  CU_ASSERT_PTR_NULL(l);
  CU_ASSERT_EQUAL(kids_seen_by(b, path, "leases"), 1);
  CU_ASSERT_EQUAL(kids_seen_by(b, path, "locks"), 0);
  /* Waiting for the internal mutex, held by a waiter for a lease. */
  acq_start(&w, sc, -1);
  CU_ASSERT_TRUE(await_waiting(path, c));
  CU_ASSERT_EQUAL(kids_of(path, "leases"), 2);
  CU_ASSERT_EQUAL(kids_of(path, "locks"), 1);
  t0 = th_now_ms();
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(sb, 500, &l), ZKR_ETIMEDOUT);
  ms = th_now_ms() - t0;
  printf("[500 ms waiting for the mutex: %lld ms] ", (long long)ms);
  CU_ASSERT_TRUE(ms >= 500 && ms < 500 + slack);
  CU_ASSERT_EQUAL(kids_seen_by(b, path, "leases"), 2);
  CU_ASSERT_EQUAL(kids_seen_by(b, path, "locks"), 1);
  CU_ASSERT_FALSE(acq_done(&w));
  /* The waiter gets the lease once it is free. */
  CU_ASSERT_EQUAL(zkr_lease_release(held), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(acq_join(&w), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lease_held(w.lease), 1);
  CU_ASSERT_EQUAL(kids_of(path, "locks"), 0);
  CU_ASSERT_EQUAL(zkr_lease_release(w.lease), ZKR_OK);
  zkr_semaphore_free(sa);
  zkr_semaphore_free(sb);
  zkr_semaphore_free(sc);
  zkr_session_close(a);
  zkr_session_close(b);
  zkr_session_close(c);
  sem_finish(path);
}

/* --- loss ------------------------------------------------------------------------------ */

typedef struct lost_n {
  int n;
  zkr_lease *lease;
} lost_n;

static void on_lost(zkr_lease *lease, void *arg) {
  lost_n *ln = arg;

  __atomic_store_n(&ln->lease, lease, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&ln->n, 1, __ATOMIC_SEQ_CST);
}

static int lost_seen(void *arg) {
  return __atomic_load_n(&((lost_n *)arg)->n, __ATOMIC_SEQ_CST) > 0;
}

static void test_semaphore_expiry_frees_lease(void) {
  char *path = th_path("sem-expiry");
  zkr_session *a = th_session(0), *b = th_session(0);
  lost_n ln = {0, NULL};
  zkr_semaphore_opts o;
  zkr_semaphore *sa, *sb;
  zkr_lease *l = NULL;
  acq w;

  memset(&o, 0, sizeof(o));
  o.on_lost = on_lost;
  o.arg = &ln;
  sa = sem_on(a, path, 1, &o);
  sb = sem_on(b, path, 1, NULL);
  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sa, -1, &l), ZKR_OK);
  acq_start(&w, sb, 4 * TH_SETTLE_MS);
  CU_ASSERT_TRUE(await_waiting(path, b));
  CU_ASSERT_FALSE(acq_done(&w));
  CU_ASSERT_EQUAL_FATAL(th_expire(a), 0);
  /* The holder's session is gone: its lease with it, the waiter's turn. */
  CU_ASSERT_EQUAL(acq_join(&w), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lease_held(w.lease), 1);
  CU_ASSERT_TRUE(th_wait_until(lost_seen, &ln, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(ln.n, 1);
  CU_ASSERT_PTR_EQUAL(ln.lease, l);
  CU_ASSERT_EQUAL(zkr_lease_held(l), 0);
  CU_ASSERT_EQUAL(zkr_lease_release(l), ZKR_ESESSION);
  CU_ASSERT_EQUAL(zkr_lease_release(w.lease), ZKR_OK);
  zkr_semaphore_free(sa);
  zkr_semaphore_free(sb);
  zkr_session_close(a);
  zkr_session_close(b);
  sem_finish(path);
}

/* A lease holder killed with SIGKILL: its lease goes with its session and
 * a waiter gets it within the session timeout and the notification. */
/* In a child process: takes the one lease at path and keeps it. */
static int take_lease(zkr_session *s, const char *path) {
  zkr_semaphore *sem = NULL;
  zkr_lease *l = NULL;
  int rc = zkr_semaphore_new(&sem, s, path, 1, NULL);

  return rc == ZKR_OK ? zkr_semaphore_acquire(sem, -1, &l) : rc;
}

static void test_semaphore_holder_killed(void) {
  char *path = th_path("sem-kill");
  pid_t pid = th_child_holding(take_lease, path, 0); /* first: no threads yet */
  zkr_session *b;
  zkr_semaphore *sb;
  zkr_lease *l = NULL;
  int64_t t0;

  CU_ASSERT_FATAL(pid > 0);
  b = th_session(0);
  sb = sem_on(b, path, 1, NULL);
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(sb, 0, &l), ZKR_ETIMEDOUT);
  th_child_kill(pid);
  t0 = th_now_ms();
  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sb, TH_SETTLE_MS, &l), ZKR_OK);
  CU_ASSERT_TRUE(th_now_ms() - t0 <= TH_EXPIRED_BY_MS(TH_SESSION_MS));
  CU_ASSERT_EQUAL(zkr_lease_release(l), ZKR_OK);
  zkr_semaphore_free(sb);
  zkr_session_close(b);
  sem_finish(path);
}

/* Found by a newcomer: the record on PATH was read with a synchronous call
 * that ignored the deadline; a connection stalled at that read held a 1 s
 * acquire for 3 to 20 s. Here the proxy stalls the link when the read
 * arrives, before forwarding it (tp_stall_at; a thread that polled the
 * proxy's count of reads and then stalled lost the race to the server now
 * and then). */
static void test_semaphore_deadline_through_record(void) {
  char *path = th_path("sem-record-stall");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *s = NULL;
  zkr_semaphore *sem;
  zkr_lease *l = NULL;
  int64_t t0, took;
  int rc;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = th_session_at(tp_hosts(p), 0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  sem = sem_on(s, path, 2, NULL);
  /* The record's read is the acquisition's first: it never reaches the
   * server. */
  CU_ASSERT_EQUAL(tp_stall_at(p, ZOO_GETDATA_OP, 1), 0);
  t0 = th_now_ms();
  rc = zkr_semaphore_acquire(sem, 1000, &l);
  took = th_now_ms() - t0;
  printf("[1000 ms acquire stalled at the record: %s after %lld ms] ", zkr_err_name(rc), (long long)took);
  CU_ASSERT_EQUAL(rc, ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(took <= 1000 + TH_LATE_MS);
  tp_stall(p, 0);
  zkr_semaphore_free(sem);
  zkr_session_close(s);
  tp_stop(p);
  sem_finish(path);
}

/* The create's reply lost (the connection cut right after it), for the
 * internal mutex's node and for the lease's: each is found again by its
 * uuid, the lease is granted, and nothing is left behind. */
static void test_semaphore_lost_create_reply(void) {
  char *path = th_path("sem-lostcreate");
  tp_proxy *p = tp_start(th_hosts());
  int i, ok = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  for (i = 0; i < 20; i++) {
    zkr_session *s = NULL;
    zkr_session_opts so;
    zkr_semaphore *sem;
    zkr_lease *l = NULL;
    int fired = tp_cut_fired(p);

    memset(&so, 0, sizeof(so));
    so.session_timeout_ms = TH_SESSION_MS;
    if (zkr_session_open(&s, tp_hosts(p), &so) != ZKR_OK)
      break;
    sem = sem_on(s, path, 2, NULL);
    /* Even trials cut the mutex's create, odd ones the lease's. */
    CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE2_OP, 1 + i % 2), 0);
    if (zkr_semaphore_acquire(sem, TH_SETTLE_MS, &l) == ZKR_OK && tp_cut_fired(p) == fired + 1 &&
        kids_of(path, "leases") == 1 && kids_of(path, "locks") == 0) {
      ok++;
    }
    if (l != NULL)
      CU_ASSERT_EQUAL(zkr_lease_release(l), ZKR_OK);
    CU_ASSERT_EQUAL(kids_of(path, "leases"), 0);
    zkr_semaphore_free(sem);
    zkr_session_close(s);
  }
  printf("[%d/20 recovered their own nodes] ", ok);
  CU_ASSERT_EQUAL(ok, 20);
  tp_stop(p);
  sem_finish(path);
}

static int node_watched(void *arg) {
  return th_watched(arg);
}

static void test_semaphore_lease_deleted_on_lost(void) {
  char *path = th_path("sem-deleted"), node[1200];
  zkr_session *s = th_session(0);
  lost_n ln = {0, NULL};
  zkr_semaphore_opts o;
  zkr_semaphore *sem;
  zkr_lease *l = NULL, *l2 = NULL;
  zhandle_t *raw = th_raw();
  int64_t tok;

  memset(&o, 0, sizeof(o));
  o.on_lost = on_lost;
  o.arg = &ln;
  sem = sem_on(s, path, 1, &o);
  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sem, -1, &l), ZKR_OK);
  only_lease(path, node, sizeof(node));
  {
    char mine[1200];
    CU_ASSERT_EQUAL(zkr_lease_node(l, mine, sizeof(mine)), ZKR_OK);
    CU_ASSERT_STRING_EQUAL(mine, node);
    CU_ASSERT_EQUAL(zkr_lease_node(l, mine, 4), ZKR_EINVAL);
  }
  CU_ASSERT_EQUAL(zkr_lease_lost_reason(l), ZKR_LOST_NONE);
  /* The own-node watch is set a while after the grant: await it. */
  CU_ASSERT_TRUE(th_wait_until(node_watched, node, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE(th_wait_until(lost_seen, &ln, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(ln.n, 1);
  CU_ASSERT_PTR_EQUAL(ln.lease, l);
  CU_ASSERT_EQUAL(zkr_lease_held(l), 0);
  CU_ASSERT_EQUAL(zkr_lease_token(l, &tok), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(zkr_lease_lost_reason(l), ZKR_LOST_DELETED);
  CU_ASSERT_EQUAL(zkr_lease_release(l), ZKR_ELOST); /* says why */
  /* The place is free again. */
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(sem, 0, &l2), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lease_release(l2), ZKR_OK);
  CU_ASSERT_EQUAL(ln.n, 1);
  zkr_semaphore_free(sem);
  zkr_session_close(s);
  th_raw_close(raw);
  sem_finish(path);
}

/* --- threads ---------------------------------------------------------------------------- */

typedef struct rel_arg {
  zkr_lease *lease;
  int rc;
} rel_arg;

static void *rel_main(void *p) {
  rel_arg *r = p;

  r->rc = zkr_lease_release(r->lease);
  return NULL;
}

static void test_semaphore_release_other_thread(void) {
  char *path = th_path("sem-thread");
  zkr_session *s = th_session(0), *b = th_session(0);
  zkr_semaphore *sem = sem_on(s, path, 1, NULL), *sb = sem_on(b, path, 1, NULL);
  rel_arg r = {NULL, -100};
  pthread_t t;
  acq w;

  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sem, -1, &r.lease), ZKR_OK);
  acq_start(&w, sb, -1);
  CU_ASSERT_TRUE(await_waiting(path, b));
  CU_ASSERT_FALSE(acq_done(&w));
  /* Leases belong to no thread: another one releases it. */
  pthread_create(&t, NULL, rel_main, &r);
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(r.rc, ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(acq_join(&w), ZKR_OK);
  CU_ASSERT_EQUAL(kids_of(path, "leases"), 1);
  r.lease = w.lease;
  r.rc = -100;
  pthread_create(&t, NULL, rel_main, &r);
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(r.rc, ZKR_OK);
  CU_ASSERT_EQUAL(kids_of(path, "leases"), 0);
  zkr_semaphore_free(sem);
  zkr_semaphore_free(sb);
  zkr_session_close(s);
  zkr_session_close(b);
  sem_finish(path);
}

/* --- the max_leases record --------------------------------------------------------------- */

/* PATH's data, as a string. */
static void record_of(const char *path, char *buf, int cap) {
  zhandle_t *raw = th_raw();
  int len = cap - 1;

  CU_ASSERT_EQUAL(zoo_get(raw, path, 0, buf, &len, NULL), ZOK);
  buf[len > 0 ? len : 0] = '\0';
  th_raw_close(raw);
}

static void test_semaphore_max_leases_mismatch(void) {
  char *path = th_path("sem-record"), *junk = th_path("sem-junk"), *preset = th_path("sem-preset"), rec[32];
  zkr_session *s = th_session(0), *b = th_session(0);
  zkr_semaphore *s2 = sem_on(s, path, 2, NULL), *s3 = sem_on(b, path, 3, NULL), *sj, *sp;
  zkr_lease *l = NULL, *l3 = NULL;
  zhandle_t *raw = th_raw();

  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(s2, -1, &l), ZKR_OK);
  record_of(path, rec, sizeof(rec));
  CU_ASSERT_STRING_EQUAL(rec, "2");
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(s3, -1, &l3), ZKR_EMISMATCH);
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(s3, 0, &l3), ZKR_EMISMATCH);
  CU_ASSERT_PTR_NULL(l3);
  CU_ASSERT_EQUAL(kids_seen_by(b, path, "leases"), 1); /* nothing of the mismatched one */
  CU_ASSERT_EQUAL(kids_seen_by(b, path, "locks"), 0);
  record_of(path, rec, sizeof(rec));
  CU_ASSERT_STRING_EQUAL(rec, "2");
  CU_ASSERT_EQUAL(zkr_lease_release(l), ZKR_OK);
  /* Data that is no count of ours is a mismatch too; our own count in an
   * existing record is agreement. */
  zoo_create(raw, "/zkr-test", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0); /* may exist */
  CU_ASSERT_EQUAL(zoo_create(raw, junk, "config", 6, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  CU_ASSERT_EQUAL(zoo_create(raw, preset, "3", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  sj = sem_on(s, junk, 3, NULL);
  sp = sem_on(s, preset, 3, NULL);
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(sj, 0, &l), ZKR_EMISMATCH);
  record_of(junk, rec, sizeof(rec));
  CU_ASSERT_STRING_EQUAL(rec, "config");
  CU_ASSERT_EQUAL(kids_seen_by(s, junk, "leases"), 0);
  CU_ASSERT_EQUAL(kids_seen_by(s, junk, "locks"), 0);
  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sp, 0, &l), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lease_release(l), ZKR_OK);
  zkr_semaphore_free(s2);
  zkr_semaphore_free(s3);
  zkr_semaphore_free(sj);
  zkr_semaphore_free(sp);
  zkr_session_close(s);
  zkr_session_close(b);
  th_raw_close(raw);
  sem_finish(path);
  sem_finish(junk);
  sem_finish(preset);
}

/* --- free ------------------------------------------------------------------------------------ */

static void test_semaphore_free_with_leases_out(void) {
  char *path = th_path("sem-free");
  zkr_session *s = th_session(0);
  zkr_semaphore *sem = sem_on(s, path, 2, NULL);
  zkr_lease *l1 = NULL, *l2 = NULL;
  acq w;

  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sem, -1, &l1), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sem, -1, &l2), ZKR_OK);
  acq_start(&w, sem, -1); /* full: waits, holding the internal mutex */
  /* Its lease node created: it waits, or is about to. (A waiter for one
   * of several leases watches the directory, which wchp does not show.) */
  CU_ASSERT_TRUE(await_kids(path, "leases", 3));
  CU_ASSERT_EQUAL(kids_of(path, "locks"), 1);
  CU_ASSERT_FALSE(acq_done(&w));
  zkr_semaphore_free(sem);
  CU_ASSERT_TRUE(acq_done(&w)); /* free waited for it */
  CU_ASSERT_EQUAL(acq_join(&w), ZKR_ECLOSED);
  CU_ASSERT_PTR_NULL(w.lease);
  /* Released and deleted before free returned. */
  CU_ASSERT_EQUAL(kids_of(path, "leases"), 0);
  CU_ASSERT_EQUAL(kids_of(path, "locks"), 0);
  zkr_semaphore_free(NULL);
  zkr_session_close(s);
  sem_finish(path);
}

/* --- tokens and layout --------------------------------------------------------------------- */

static void test_semaphore_token_increases(void) {
  char *path = th_path("sem-token");
  zkr_session *s = th_session(0);
  zkr_semaphore *sem = sem_on(s, path, 2, NULL);
  zkr_lease *l = NULL, *other = NULL;
  int64_t prev = 0, tok = 0, tok2 = 0;
  int i;

  for (i = 0; i < 6; i++) {
    CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sem, -1, &l), ZKR_OK);
    CU_ASSERT_EQUAL(zkr_lease_token(l, &tok), ZKR_OK);
    CU_ASSERT_TRUE(tok > prev);
    prev = tok;
    if (i == 3) {
      /* Two leases at once: two tokens, the later grant's larger. */
      CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sem, -1, &other), ZKR_OK);
      CU_ASSERT_EQUAL(zkr_lease_token(other, &tok2), ZKR_OK);
      CU_ASSERT_TRUE(tok2 > tok);
      prev = tok2;
      CU_ASSERT_EQUAL(zkr_lease_release(other), ZKR_OK);
    }
    CU_ASSERT_EQUAL(zkr_lease_release(l), ZKR_OK);
    if (i == 2)
      CU_ASSERT_EQUAL(th_delete_tree(path), 0); /* the sequence restarts; the token does not */
  }
  zkr_semaphore_free(sem);
  zkr_session_close(s);
  sem_finish(path);
}

static void test_semaphore_curator_layout(void) {
  char *path = th_path("sem-layout"), dir[1100], node[1200], data[64];
  zkr_session *s = th_session(0), *b = th_session(0);
  zkr_semaphore_opts o;
  zkr_semaphore *sem, *sb;
  zkr_lease *l = NULL;
  struct String_vector kids = {0, NULL};
  zhandle_t *raw = th_raw();
  regex_t lease_re, lock_re;
  int len = sizeof(data) - 1;
  acq w;

  memset(&o, 0, sizeof(o));
  o.id = "worker-3";
  sem = sem_on(s, path, 1, &o);
  sb = sem_on(b, path, 1, &o);
  CU_ASSERT_EQUAL_FATAL(
      regcomp(&lease_re,
              "^_c_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-lease-[0-9]{10}$",
              REG_EXTENDED),
      0);
  CU_ASSERT_EQUAL_FATAL(
      regcomp(&lock_re,
              "^_c_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-lock-[0-9]{10}$",
              REG_EXTENDED),
      0);
  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_acquire(sem, -1, &l), ZKR_OK);
  only_lease(path, node, sizeof(node));
  CU_ASSERT_EQUAL(regexec(&lease_re, strrchr(node, '/') + 1, 0, NULL, 0), 0);
  CU_ASSERT_EQUAL(zoo_get(raw, node, 0, data, &len, NULL), ZOK);
  data[len > 0 ? len : 0] = '\0';
  CU_ASSERT_STRING_EQUAL(data, "worker-3");
  /* A waiter holds Curator's mutex on PATH/locks. */
  acq_start(&w, sb, -1);
  CU_ASSERT_TRUE(await_kids(path, "locks", 1));
  CU_ASSERT_EQUAL(zoo_get_children(raw, sub(dir, sizeof(dir), path, "locks"), 0, &kids), ZOK);
  CU_ASSERT_TRUE(kids.count == 1 && regexec(&lock_re, kids.data[0], 0, NULL, 0) == 0);
  deallocate_String_vector(&kids);
  CU_ASSERT_EQUAL(zkr_lease_release(l), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(acq_join(&w), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lease_release(w.lease), ZKR_OK);
  regfree(&lease_re);
  regfree(&lock_re);
  zkr_semaphore_free(sem);
  zkr_semaphore_free(sb);
  zkr_session_close(s);
  zkr_session_close(b);
  th_raw_close(raw);
  sem_finish(path);
}

/* --- bad input ----------------------------------------------------------------------------- */

static void test_semaphore_bad_input(void) {
  static const char *const bad[] = {"", "relative", "/", "/a/", "//a", "/a/../b", "/zookeeper/x"};
  zkr_session *s = th_session(0);
  zkr_semaphore *sem = NULL;
  zkr_semaphore_opts o;
  struct ACL_vector empty = {0, NULL};
  zkr_lease *l = (zkr_lease *)&o; /* acquire must clear it */
  int64_t tok;
  size_t i;

  CU_ASSERT_EQUAL(zkr_semaphore_new(NULL, s, "/a", 1, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_semaphore_new(&sem, NULL, "/a", 1, NULL), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(sem);
  CU_ASSERT_EQUAL(zkr_semaphore_new(&sem, s, NULL, 1, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_semaphore_new(&sem, s, "/a", 0, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_semaphore_new(&sem, s, "/a", -3, NULL), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(sem);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CU_ASSERT_EQUAL(zkr_semaphore_new(&sem, s, bad[i], 2, NULL), ZKR_EINVAL);
    CU_ASSERT_PTR_NULL(sem);
  }
  memset(&o, 0, sizeof(o));
  o.acl = &empty;
  CU_ASSERT_EQUAL(zkr_semaphore_new(&sem, s, "/a", 2, &o), ZKR_EINVAL);
  CU_ASSERT_EQUAL(th_count_nodes("/a"), 0); /* nothing sent */
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(NULL, 0, &l), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(l);
  CU_ASSERT_EQUAL_FATAL(zkr_semaphore_new(&sem, s, "/a", 1, NULL), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_semaphore_acquire(sem, 0, NULL), ZKR_EINVAL);
  zkr_semaphore_free(sem);
  CU_ASSERT_EQUAL(th_count_nodes("/a"), 0);
  CU_ASSERT_EQUAL(zkr_lease_token(NULL, &tok), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lease_held(NULL), 0);
  CU_ASSERT_EQUAL(zkr_lease_release(NULL), ZKR_EINVAL);
  zkr_session_close(s);
}

int main(void) {
  static const th_test tests[] = {
      {"test_semaphore_never_above_limit", test_semaphore_never_above_limit},
      {"test_semaphore_try_when_full", test_semaphore_try_when_full},
      {"test_semaphore_timed_when_full", test_semaphore_timed_when_full},
      {"test_semaphore_expiry_frees_lease", test_semaphore_expiry_frees_lease},
      {"test_semaphore_holder_killed", test_semaphore_holder_killed},
      {"test_semaphore_lost_create_reply", test_semaphore_lost_create_reply},
      {"test_semaphore_deadline_through_record", test_semaphore_deadline_through_record},
      {"test_semaphore_lease_deleted_on_lost", test_semaphore_lease_deleted_on_lost},
      {"test_semaphore_release_other_thread", test_semaphore_release_other_thread},
      {"test_semaphore_max_leases_mismatch", test_semaphore_max_leases_mismatch},
      {"test_semaphore_free_with_leases_out", test_semaphore_free_with_leases_out},
      {"test_semaphore_token_increases", test_semaphore_token_increases},
      {"test_semaphore_curator_layout", test_semaphore_curator_layout},
      {"test_semaphore_bad_input", test_semaphore_bad_input},
      {NULL, NULL}};

  return th_run("semaphore", tests);
}
