/* Loop mode and asynchronous holds (zkr/async.h) against a real server.
 *
 * Every loop here is this thread's own epoll loop on zkr_session_fd(), run
 * until a condition holds; every callback records the thread it ran on,
 * and in loop mode that must be this thread. */
#include "harness.h"
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

static pthread_t main_thread;

/* --- the loop ----------------------------------------------------------------- */

typedef struct loop {
  zkr_session *s;
  int ep;
} loop;

static zkr_session *open_loop_session(const char *hosts, int timeout_ms) {
  zkr_session_opts o;
  zkr_session *s = NULL;
  int rc;

  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = timeout_ms > 0 ? timeout_ms : TH_SESSION_MS;
  o.connect_timeout_ms = TH_CONNECT_MS;
  o.loop = 1;
  rc = zkr_session_open(&s, hosts, &o);
  CU_ASSERT_EQUAL(rc, ZKR_OK);
  return rc == ZKR_OK ? s : NULL;
}

static void loop_init(loop *lp, zkr_session *s) {
  struct epoll_event ev;

  lp->s = s;
  lp->ep = epoll_create1(EPOLL_CLOEXEC);
  CU_ASSERT_FATAL(lp->ep >= 0);
  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN;
  CU_ASSERT_FATAL(zkr_session_fd(s) >= 0);
  CU_ASSERT_EQUAL_FATAL(epoll_ctl(lp->ep, EPOLL_CTL_ADD, zkr_session_fd(s), &ev), 0);
}

static void loop_done(loop *lp) {
  close(lp->ep);
}

/* Runs the loop until pred(arg) holds (checked after every dispatch) or
 * timeout_ms passes. Returns 1 if pred came true. */
static int run_until(loop *lp, int (*pred)(void *), void *arg, int timeout_ms) {
  int64_t end = th_now_ms() + timeout_ms;

  for (;;) {
    struct epoll_event ev;
    int ms = zkr_session_dispatch(lp->s);
    int64_t left = end - th_now_ms();

    CU_ASSERT_FATAL(ms >= 0);
    if (pred(arg))
      return 1;
    if (left <= 0)
      return 0;
    epoll_wait(lp->ep, &ev, 1, ms < left ? ms : (int)left);
  }
}

/* 1 once the session's descriptor is readable, without dispatching. */
static int fd_readable(void *arg) {
  loop *lp = arg;
  struct epoll_event ev;

  return epoll_wait(lp->ep, &ev, 1, 0) == 1;
}

/* --- what the callbacks saw ---------------------------------------------------- */

typedef struct rec {
  int acquired, acquired_rc;
  int lost, lost_rc;
  int released, released_rc;
  int off_thread; /* callbacks that ran on another thread than main */
  int loop_mode;
  zkr_hold *h;
  int64_t token;
} rec;

static void check_thread(rec *r) {
  if (r->loop_mode && !pthread_equal(pthread_self(), main_thread))
    __atomic_add_fetch(&r->off_thread, 1, __ATOMIC_SEQ_CST);
}

static void on_acquired(zkr_hold *h, int rc, void *arg) {
  rec *r = arg;

  check_thread(r);
  CU_ASSERT_PTR_EQUAL(h, r->h);
  if (rc == ZKR_OK)
    CU_ASSERT_EQUAL(zkr_hold_token(h, &r->token), ZKR_OK);
  __atomic_store_n(&r->acquired_rc, rc, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&r->acquired, 1, __ATOMIC_SEQ_CST);
}

static void on_lost(zkr_hold *h, int rc, void *arg) {
  rec *r = arg;

  check_thread(r);
  CU_ASSERT_PTR_EQUAL(h, r->h);
  __atomic_store_n(&r->lost_rc, rc, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&r->lost, 1, __ATOMIC_SEQ_CST);
}

static void on_released(zkr_hold *h, int rc, void *arg) {
  rec *r = arg;

  check_thread(r);
  CU_ASSERT_PTR_EQUAL(h, r->h);
  __atomic_store_n(&r->released_rc, rc, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&r->released, 1, __ATOMIC_SEQ_CST);
}

static int acquired(void *arg) {
  return __atomic_load_n(&((rec *)arg)->acquired, __ATOMIC_SEQ_CST) > 0;
}

static int released(void *arg) {
  return __atomic_load_n(&((rec *)arg)->released, __ATOMIC_SEQ_CST) > 0;
}

static int lost(void *arg) {
  return __atomic_load_n(&((rec *)arg)->lost, __ATOMIC_SEQ_CST) > 0;
}

static int start(zkr_lock *l, int timeout_ms, rec *r) {
  memset(r, 0, sizeof(*r));
  r->loop_mode = 1;
  return zkr_lock_acquire_async(l, timeout_ms, on_acquired, on_lost, r, &r->h);
}

/* Acquires l through the loop and asserts the grant. */
static void take(loop *lp, zkr_lock *l, rec *r) {
  CU_ASSERT_EQUAL_FATAL(start(l, -1, r), ZKR_OK);
  CU_ASSERT_FATAL(run_until(lp, acquired, r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL_FATAL(r->acquired_rc, ZKR_OK);
}

/* Releases a granted hold through the loop; returns on_released's code. */
static int give_back(loop *lp, rec *r) {
  CU_ASSERT_EQUAL_FATAL(zkr_hold_release(r->h, on_released, r), ZKR_OK);
  CU_ASSERT_FATAL(run_until(lp, released, r, TH_SETTLE_MS));
  return r->released_rc;
}

/* --- 1. the evidence: one thread, 1,000 holds and 1,000 waiters ------------------ */

#define N_PATHS 1000

typedef struct many {
  rec first[N_PATHS], second[N_PATHS];
  int done; /* callbacks of the phase under way */
} many;

static int all_first_acquired(void *arg) {
  many *m = arg;
  int i;

  for (i = 0; i < N_PATHS; i++)
    if (!m->first[i].acquired)
      return 0;
  return 1;
}

static int all_second_acquired(void *arg) {
  many *m = arg;
  int i;

  for (i = 0; i < N_PATHS; i++)
    if (!m->second[i].acquired)
      return 0;
  return 1;
}

static int all_released(void *arg) {
  many *m = arg;
  int i;

  for (i = 0; i < N_PATHS; i++)
    if (!m->first[i].released || !m->second[i].released)
      return 0;
  return 1;
}

static void test_async_epoll_thousand(void) {
  char *base = th_path("as-thousand");
  int threads_before, i, off = 0, bad = 0, left = 0;
  zkr_session *s;
  many *m = calloc(1, sizeof(*m));
  zkr_lock **locks = calloc(N_PATHS, sizeof(*locks));
  loop lp;

  /* A session opened and closed first lets a runtime's helper thread
   * (ThreadSanitizer's starts with the first thread created) exist before
   * the count. */
  zkr_session_close(open_loop_session(th_hosts(), 0));
  threads_before = th_thread_count();
  s = open_loop_session(th_hosts(), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  /* No thread of the library: only the ZooKeeper client's I/O and
   * completion threads were added. */
  CU_ASSERT_EQUAL(th_thread_count(), threads_before + 2);
  loop_init(&lp, s);
  for (i = 0; i < N_PATHS; i++) {
    char path[256];
    snprintf(path, sizeof(path), "%s/p%04d", base, i);
    CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&locks[i], s, path, NULL), ZKR_OK);
    CU_ASSERT_EQUAL_FATAL(start(locks[i], -1, &m->first[i]), ZKR_OK);
  }
  CU_ASSERT_TRUE_FATAL(run_until(&lp, all_first_acquired, m, TH_QUEUE_MS(N_PATHS / 100)));
  /* 1,000 more, one behind each hold: they wait. */
  for (i = 0; i < N_PATHS; i++)
    CU_ASSERT_EQUAL_FATAL(start(locks[i], -1, &m->second[i]), ZKR_OK);
  CU_ASSERT_EQUAL(th_thread_count(), threads_before + 2);
  for (i = 0; i < N_PATHS; i++) {
    bad += m->first[i].acquired_rc != ZKR_OK || !zkr_hold_held(m->first[i].h);
    bad += m->second[i].acquired != 0; /* none may be granted beside a hold */
  }
  CU_ASSERT_EQUAL(bad, 0);
  /* Releasing the first hold of each path grants the waiter behind it. */
  for (i = 0; i < N_PATHS; i++)
    CU_ASSERT_EQUAL(zkr_hold_release(m->first[i].h, on_released, &m->first[i]), ZKR_OK);
  CU_ASSERT_TRUE_FATAL(run_until(&lp, all_second_acquired, m, TH_QUEUE_MS(N_PATHS / 100)));
  for (i = 0; i < N_PATHS; i++) {
    bad += m->first[i].released_rc != ZKR_OK || m->second[i].acquired_rc != ZKR_OK;
    bad += m->second[i].token <= m->first[i].token; /* fencing order */
    CU_ASSERT_EQUAL(zkr_hold_release(m->second[i].h, on_released, &m->second[i]), ZKR_OK);
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_TRUE(run_until(&lp, all_released, m, TH_QUEUE_MS(N_PATHS / 100)));
  for (i = 0; i < N_PATHS; i++) {
    bad +=
        m->first[i].acquired != 1 || m->second[i].acquired != 1 || m->first[i].lost + m->second[i].lost != 0;
    bad += m->first[i].released != 1 || m->second[i].released != 1 || m->second[i].released_rc != ZKR_OK;
    off += m->first[i].off_thread + m->second[i].off_thread;
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(off, 0); /* every callback ran on this thread */
  CU_ASSERT_EQUAL(th_thread_count(), threads_before + 2);
  left = th_count_nodes(base) - N_PATHS; /* the 1,000 lock directories stay */
  CU_ASSERT_EQUAL(left, 0);
  printf("[%d holds and %d waiters on one thread, %d callbacks off it, %d nodes left] ", N_PATHS, N_PATHS,
         off, left);
  for (i = 0; i < N_PATHS; i++)
    zkr_lock_free(locks[i]);
  loop_done(&lp);
  zkr_session_close(s);
  free(locks);
  free(m);
  CU_ASSERT_EQUAL(th_delete_tree(base), 0);
  free(base);
}

/* --- 2. faults ------------------------------------------------------------------------ */

static void test_async_expiry_while_holding(void) {
  char *path = th_path("as-expire-held");
  zkr_session *s = open_loop_session(th_hosts(), 0);
  zkr_lock *l;
  rec r;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  take(&lp, l, &r);
  CU_ASSERT_EQUAL(th_expire(s), 0);
  CU_ASSERT_TRUE(run_until(&lp, lost, &r, TH_EXPIRED_BY_MS(TH_SESSION_MS)));
  CU_ASSERT_EQUAL(r.lost_rc, ZKR_ESESSION);
  CU_ASSERT_EQUAL(zkr_hold_lost_reason(r.h), ZKR_LOST_EXPIRED);
  CU_ASSERT_EQUAL(zkr_hold_held(r.h), 0);
  CU_ASSERT_EQUAL(zkr_hold_valid_until(r.h), 0);
  CU_ASSERT_EQUAL(give_back(&lp, &r), ZKR_ESESSION);
  CU_ASSERT_EQUAL(r.lost, 1); /* once */
  CU_ASSERT_EQUAL(r.acquired, 1);
  CU_ASSERT_EQUAL(r.off_thread, 0);
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  th_finish_path(path);
}

/* A holder of another session keeps us waiting. */
static zkr_lock *blocker(zkr_session **bs, const char *path) {
  zkr_lock *b;

  *bs = th_session(0);
  b = th_lock(*bs, path);
  CU_ASSERT_EQUAL(zkr_lock_acquire(b, 0), ZKR_OK);
  return b;
}

static void test_async_expiry_while_pending(void) {
  char *path = th_path("as-expire-pending");
  zkr_session *bs, *s = open_loop_session(th_hosts(), 0);
  zkr_lock *b = blocker(&bs, path), *l;
  rec r;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(start(l, -1, &r), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(path, 2)); /* queued behind the holder */
  CU_ASSERT_EQUAL(th_expire(s), 0);
  CU_ASSERT_TRUE(run_until(&lp, acquired, &r, TH_EXPIRED_BY_MS(TH_SESSION_MS)));
  CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ESESSION);
  CU_ASSERT_TRUE(th_await_nodes(path, 1)); /* only the holder's */
  CU_ASSERT_EQUAL(zkr_lock_release(b), ZKR_OK);
  CU_ASSERT_EQUAL(r.acquired, 1);
  CU_ASSERT_EQUAL(r.lost + r.released, 0);
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  zkr_lock_free(b);
  zkr_session_close(bs);
  th_finish_path(path);
}

/* The grant has come (the descriptor says an event is pending) but is not
 * delivered when the cancel comes: the cancel wins, exactly one outcome,
 * and nothing is held (the node goes; another client gets the lock). */
static void test_async_cancel_races_grant(void) {
  char *path = th_path("as-cancel-grant");
  zkr_session *bs, *s = open_loop_session(th_hosts(), 0);
  zkr_lock *b = blocker(&bs, path), *l;
  rec r;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(start(l, -1, &r), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  /* Drain what is pending, then let the grant come without delivering it. */
  zkr_session_dispatch(s);
  CU_ASSERT_FALSE(fd_readable(&lp));
  CU_ASSERT_EQUAL(zkr_lock_release(b), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(fd_readable, &lp, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_hold_cancel(r.h), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_hold_cancel(r.h), ZKR_EINVAL); /* decided already */
  CU_ASSERT_TRUE(run_until(&lp, acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ECANCELLED);
  CU_ASSERT_TRUE(th_await_nodes(path, 0));
  CU_ASSERT_EQUAL(zkr_lock_acquire(b, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(b), ZKR_OK);
  CU_ASSERT_EQUAL(r.acquired, 1);
  CU_ASSERT_EQUAL(r.lost + r.released, 0);
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  zkr_lock_free(b);
  zkr_session_close(bs);
  th_finish_path(path);
}

/* A cancel after 0, 1, 2... dispatches of an uncontended acquisition lands
 * before the create, between create and grant, or after the grant was
 * delivered: each time exactly one outcome, and a cancel refused only
 * once on_acquired had said ZKR_OK (which the release then ends). */
static void test_async_cancel_at_every_step(void) {
  char *path = th_path("as-cancel-steps");
  zkr_session *s = open_loop_session(th_hosts(), 0);
  zkr_lock *l;
  int k, cancelled = 0, granted = 0;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  for (k = 0; k < 60; k++) {
    rec r;
    int i, crc;
    CU_ASSERT_EQUAL_FATAL(start(l, -1, &r), ZKR_OK);
    for (i = 0; i < k % 6 && !r.acquired; i++) {
      struct epoll_event ev;
      epoll_wait(lp.ep, &ev, 1, TH_LATE_MS);
      zkr_session_dispatch(s);
    }
    crc = zkr_hold_cancel(r.h);
    if (crc == ZKR_OK) {
      CU_ASSERT_TRUE(run_until(&lp, acquired, &r, TH_SETTLE_MS));
      CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ECANCELLED);
      cancelled++;
    } else {
      CU_ASSERT_EQUAL(crc, ZKR_EINVAL);
      CU_ASSERT_EQUAL(r.acquired_rc, ZKR_OK);
      CU_ASSERT_EQUAL(give_back(&lp, &r), ZKR_OK);
      granted++;
    }
    CU_ASSERT_EQUAL(r.acquired, 1);
    CU_ASSERT_TRUE(th_await_nodes(path, 0));
  }
  printf("[%d cancelled, %d granted first] ", cancelled, granted);
  CU_ASSERT_TRUE(cancelled > 0);
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  th_finish_path(path);
}

static void test_async_deadline(void) {
  char *path = th_path("as-deadline");
  zkr_session *bs, *s = open_loop_session(th_hosts(), 0);
  zkr_lock *b = blocker(&bs, path), *l;
  int64_t t0;
  rec r, t;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  t0 = th_now_ms();
  CU_ASSERT_EQUAL_FATAL(start(l, TH_SESSION_MS / 4, &r), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&lp, acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(th_now_ms() - t0 >= TH_SESSION_MS / 4);
  CU_ASSERT_TRUE(th_now_ms() - t0 <= TH_SESSION_MS / 4 + TH_LATE_MS);
  CU_ASSERT_TRUE(th_await_nodes(path, 1)); /* our node went */
  /* A try on the taken lock says so through on_acquired. */
  CU_ASSERT_EQUAL_FATAL(start(l, 0, &t), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&lp, acquired, &t, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(t.acquired_rc, ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(th_await_nodes(path, 1));
  CU_ASSERT_EQUAL(zkr_lock_release(b), ZKR_OK);
  /* And on a free one it holds. */
  CU_ASSERT_EQUAL_FATAL(start(l, 0, &t), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&lp, acquired, &t, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(t.acquired_rc, ZKR_OK);
  CU_ASSERT_EQUAL(give_back(&lp, &t), ZKR_OK);
  CU_ASSERT_EQUAL(r.acquired + r.lost + r.released, 1);
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  zkr_lock_free(b);
  zkr_session_close(bs);
  th_finish_path(path);
}

/* The deadline passes while the grant waits undelivered: the one that runs
 * first decides (events run before the timers of a dispatch: the grant),
 * and there is one outcome either way. */
static int past(void *arg) {
  return th_now_ms() >= *(int64_t *)arg;
}

static void test_async_deadline_races_grant(void) {
  char *path = th_path("as-deadline-grant");
  zkr_session *bs, *s = open_loop_session(th_hosts(), 0);
  zkr_lock *b = blocker(&bs, path), *l;
  int64_t due;
  rec r;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  /* Short enough for the loop's stall below to stay within the session's
   * validity, which the stall would otherwise end. */
  due = th_now_ms() + TH_SESSION_MS / 4;
  CU_ASSERT_EQUAL_FATAL(start(l, TH_SESSION_MS / 4, &r), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  zkr_session_dispatch(s);
  CU_ASSERT_EQUAL(zkr_lock_release(b), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(fd_readable, &lp, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_wait_until(past, &due, TH_SESSION_MS));
  CU_ASSERT_TRUE(run_until(&lp, acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.acquired, 1);
  printf("[%s won] ", zkr_err_name(r.acquired_rc));
  if (r.acquired_rc == ZKR_OK) {
    CU_ASSERT_EQUAL(give_back(&lp, &r), ZKR_OK);
  } else {
    CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ETIMEDOUT);
  }
  CU_ASSERT_TRUE(th_await_nodes(path, 0));
  CU_ASSERT_EQUAL(r.acquired, 1);
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  zkr_lock_free(b);
  zkr_session_close(bs);
  th_finish_path(path);
}

static int node_watched(void *arg) {
  return th_watched(arg);
}

static void test_async_node_deleted(void) {
  char *path = th_path("as-deleted");
  zkr_session *s = open_loop_session(th_hosts(), 0);
  zhandle_t *raw = th_raw();
  char node[1024];
  zkr_lock *l;
  rec r;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  take(&lp, l, &r);
  CU_ASSERT_EQUAL(zkr_hold_node(r.h, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_hold_node(r.h, node, 4), ZKR_EINVAL);
  CU_ASSERT_TRUE(run_until(&lp, node_watched, node, TH_SETTLE_MS)); /* own-node watch (set by a dispatch) */
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE(run_until(&lp, lost, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.lost_rc, ZKR_ELOST);
  CU_ASSERT_EQUAL(zkr_hold_lost_reason(r.h), ZKR_LOST_DELETED);
  CU_ASSERT_EQUAL(zkr_hold_held(r.h), 0);
  CU_ASSERT_EQUAL(give_back(&lp, &r), ZKR_ELOST);
  CU_ASSERT_EQUAL(r.lost, 1);
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
}

/* The create's reply is lost with the connection: the acquisition finds its
 * node by its uuid after reconnecting, is granted once, leaves one node. */
static void test_async_connloss_mid_create(void) {
  char *path = th_path("as-connloss");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *s;
  zkr_lock *l;
  int i;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = open_loop_session(tp_hosts(p), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  for (i = 0; i < 10; i++) {
    int fired = tp_cut_fired(p);
    rec r;
    CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE2_OP, 1), 0);
    take(&lp, l, &r);
    CU_ASSERT_EQUAL(tp_cut_fired(p), fired + 1);
    CU_ASSERT_EQUAL(th_count_nodes(path), 1);
    CU_ASSERT_TRUE(zkr_hold_held(r.h));
    CU_ASSERT_EQUAL(give_back(&lp, &r), ZKR_OK);
    CU_ASSERT_EQUAL(th_count_nodes(path), 0);
    CU_ASSERT_EQUAL(r.acquired + r.released, 2);
    CU_ASSERT_EQUAL(r.lost + r.off_thread, 0);
  }
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  tp_stop(p);
  th_finish_path(path);
}

/* --- 3. lifetimes -------------------------------------------------------------------- */

typedef struct freer {
  rec r;
  zkr_lock **l;
} freer;

/* Frees the lock from the hold's own callback: every other hold of the lock
 * ends at once, this one with the callback. */
static void free_lock(zkr_hold *h, int rc, void *arg) {
  freer *f = arg;

  on_acquired(h, rc, &f->r);
  zkr_lock_free(*f->l);
  *f->l = NULL;
}

static void test_async_free_from_callback(void) {
  char *path = th_path("as-free-cb");
  zkr_session *s = open_loop_session(th_hosts(), 0);
  zkr_lock *l;
  freer f;
  rec w;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  memset(&f, 0, sizeof(f));
  f.r.loop_mode = 1;
  f.l = &l;
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire_async(l, -1, free_lock, on_lost, &f, &f.r.h), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(start(l, -1, &w), ZKR_OK); /* waits behind it */
  CU_ASSERT_TRUE(run_until(&lp, acquired, &f.r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(f.r.acquired_rc, ZKR_OK);
  CU_ASSERT_PTR_NULL(l);
  /* The waiter was ended by the free, at once, on this thread. */
  CU_ASSERT_EQUAL(w.acquired, 1);
  CU_ASSERT_EQUAL(w.acquired_rc, ZKR_ECLOSED);
  CU_ASSERT_TRUE(th_await_nodes(path, 0));
  CU_ASSERT_EQUAL(f.r.lost + f.r.released + f.r.off_thread + w.off_thread, 0);
  loop_done(&lp);
  zkr_session_close(s);
  th_finish_path(path);
}

/* Closing the session ends what is pending (on_acquired: ZKR_ECLOSED) and
 * what is held (on_lost), on the closing thread; the lock's free then frees
 * the held handle; a release after the close is refused. */
static void test_async_session_close(void) {
  char *path = th_path("as-close");
  zkr_session *s = open_loop_session(th_hosts(), 0);
  zkr_lock *l;
  rec held, pending;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  take(&lp, l, &held);
  CU_ASSERT_EQUAL_FATAL(start(l, -1, &pending), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  loop_done(&lp);
  zkr_session_close(s);
  CU_ASSERT_EQUAL(pending.acquired, 1);
  CU_ASSERT_EQUAL(pending.acquired_rc, ZKR_ECLOSED);
  CU_ASSERT_EQUAL(held.lost, 1);
  CU_ASSERT_EQUAL(held.lost_rc, ZKR_ESESSION);
  CU_ASSERT_EQUAL(zkr_hold_release(held.h, on_released, &held), ZKR_ECLOSED);
  CU_ASSERT_EQUAL(zkr_lock_acquire_async(l, -1, on_acquired, NULL, &pending, &pending.h), ZKR_ECLOSED);
  zkr_lock_free(l);
  CU_ASSERT_EQUAL(held.released + pending.lost + held.off_thread + pending.off_thread, 0);
  th_finish_path(path);
}

/* A loop that stops dispatching for longer than the session's validity:
 * the hold stops counting as held on the library's clock at once, and the
 * next dispatch tells on_lost. */
static int hold_invalid(void *arg) {
  return !zkr_hold_held(((rec *)arg)->h);
}

static void test_async_stalled_loop(void) {
  char *path = th_path("as-stall");
  zkr_session *s = open_loop_session(th_hosts(), TH_SESSION_MS / 2);
  int64_t valid;
  zkr_lock *l;
  rec r;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  take(&lp, l, &r);
  valid = zkr_hold_valid_until(r.h);
  CU_ASSERT_TRUE(valid > zkr_monotonic_ns());
  /* No dispatch: nobody confirms the session for the library. */
  CU_ASSERT_TRUE(th_wait_until(hold_invalid, &r, TH_SETTLE_FOR(TH_SESSION_MS / 2)));
  CU_ASSERT_TRUE(zkr_monotonic_ns() >= valid);
  CU_ASSERT_EQUAL(r.lost, 0);
  zkr_session_dispatch(s);
  CU_ASSERT_EQUAL(r.lost, 1);
  CU_ASSERT_EQUAL(r.lost_rc, ZKR_ESESSION);
  CU_ASSERT_EQUAL(zkr_hold_lost_reason(r.h), ZKR_LOST_DEADLINE);
  CU_ASSERT_EQUAL(give_back(&lp, &r), ZKR_ESESSION);
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- 4. the read-write lock, and the threaded session ------------------------------ */

static int both_acquired(void *arg) {
  rec *r = arg;
  return acquired(&r[0]) && acquired(&r[1]);
}

static void test_async_rwlock(void) {
  char *path = th_path("as-rw");
  zkr_session *s = open_loop_session(th_hosts(), 0);
  zkr_rwlock *rw;
  rec rd[2], wr;
  int i;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_rwlock_new(&rw, s, path, NULL), ZKR_OK);
  for (i = 0; i < 2; i++) {
    memset(&rd[i], 0, sizeof(rd[i]));
    rd[i].loop_mode = 1;
    CU_ASSERT_EQUAL_FATAL(zkr_rwlock_acquire_async(rw, 0, -1, on_acquired, on_lost, &rd[i], &rd[i].h),
                          ZKR_OK);
  }
  memset(&wr, 0, sizeof(wr));
  wr.loop_mode = 1;
  CU_ASSERT_EQUAL_FATAL(zkr_rwlock_acquire_async(rw, 1, -1, on_acquired, on_lost, &wr, &wr.h), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&lp, both_acquired, rd, TH_SETTLE_MS)); /* readers share */
  CU_ASSERT_EQUAL(rd[0].acquired_rc + rd[1].acquired_rc, ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(path, 3));
  CU_ASSERT_EQUAL(wr.acquired, 0); /* the writer waits for both */
  CU_ASSERT_EQUAL(give_back(&lp, &rd[0]), ZKR_OK);
  CU_ASSERT_EQUAL(wr.acquired, 0);
  CU_ASSERT_EQUAL(give_back(&lp, &rd[1]), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&lp, acquired, &wr, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(wr.acquired_rc, ZKR_OK);
  CU_ASSERT_EQUAL(give_back(&lp, &wr), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_acquire_async(rw, 2, -1, on_acquired, NULL, &wr, &wr.h), ZKR_EINVAL);
  zkr_rwlock_free(rw);
  loop_done(&lp);
  zkr_session_close(s);
  th_finish_path(path);
}

/* Without loop mode the callbacks come on the session's event thread; an
 * asynchronous hold and a thread's blocking hold of one lock object
 * exclude each other like two clients. */
static void test_async_threaded_session(void) {
  char *path = th_path("as-threaded");
  zkr_session *s = th_session(0);
  zkr_lock *l = th_lock(s, path);
  th_acquirer a;
  rec r;

  memset(&r, 0, sizeof(r));
  CU_ASSERT_EQUAL(zkr_session_dispatch(s), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_session_fd(s), ZKR_EINVAL);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire_async(l, -1, on_acquired, on_lost, &r, &r.h), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.acquired_rc, ZKR_OK);
  th_acquirer_start(&a, l, -1, 0);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  CU_ASSERT_FALSE(th_acquirer_done(&a));
  CU_ASSERT_EQUAL(zkr_hold_release(r.h, on_released, &r), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(released, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.released_rc, ZKR_OK);
  CU_ASSERT_EQUAL(th_acquirer_finish(&a), ZKR_OK);
  zkr_lock_free(l);
  zkr_session_close(s);
  th_finish_path(path);
}

static void test_async_bad_input(void) {
  char *path = th_path("as-bad");
  zkr_session *s = open_loop_session(th_hosts(), 0);
  zkr_lock *l;
  zkr_hold *h = (zkr_hold *)1;
  int64_t tok;
  char buf[8];
  rec r;
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire_async(NULL, -1, on_acquired, NULL, NULL, &h), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lock_acquire_async(l, -1, NULL, NULL, NULL, &h), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(h);
  CU_ASSERT_EQUAL(zkr_lock_acquire_async(l, -1, on_acquired, NULL, NULL, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_rwlock_acquire_async(NULL, 0, -1, on_acquired, NULL, NULL, &h), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_hold_cancel(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_hold_release(NULL, NULL, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_hold_token(NULL, &tok), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_hold_node(NULL, buf, sizeof(buf)), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_hold_held(NULL), 0);
  CU_ASSERT_EQUAL(zkr_hold_valid_until(NULL), 0);
  CU_ASSERT_EQUAL(zkr_hold_lost_reason(NULL), ZKR_LOST_NONE);
  CU_ASSERT_EQUAL(zkr_session_fd(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_session_dispatch(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(th_count_nodes(path), 0); /* nothing was created */
  /* A pending hold is not released, nor read; a granted one not cancelled. */
  CU_ASSERT_EQUAL_FATAL(start(l, -1, &r), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_hold_release(r.h, on_released, &r), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_hold_token(r.h, &tok), ZKR_ENOTHELD);
  CU_ASSERT_TRUE(run_until(&lp, acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_hold_cancel(r.h), ZKR_EINVAL);
  CU_ASSERT_EQUAL(give_back(&lp, &r), ZKR_OK);
  CU_ASSERT_STRING_EQUAL(zkr_err_name(ZKR_ECANCELLED), "ZKR_ECANCELLED");
  zkr_lock_free(l);
  loop_done(&lp);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- 5. the election through the loop ------------------------------------------------ */

typedef struct terms {
  int ups, downs, off_thread;
} terms;

static void on_term(zkr_election *e, int leader, void *arg) {
  terms *t = arg;

  (void)e;
  if (!pthread_equal(pthread_self(), main_thread))
    t->off_thread++;
  if (leader)
    t->ups++;
  else
    t->downs++;
}

static int leads(void *arg) {
  return ((terms *)arg)->ups > 0;
}

static int stepped_down(void *arg) {
  return ((terms *)arg)->downs > 0;
}

/* Two participants on one loop-mode session: joining and resigning never
 * wait, leadership changes come through the loop, in pairs. */
static void test_async_election(void) {
  char *path = th_path("as-elect");
  zkr_session *s = open_loop_session(th_hosts(), 0);
  zkr_election_opts o;
  zkr_election *a, *b;
  terms ta = {0, 0, 0}, tb = {0, 0, 0};
  loop lp;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  loop_init(&lp, s);
  memset(&o, 0, sizeof(o));
  o.on_change = on_term;
  o.arg = &ta;
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&a, s, path, &o), ZKR_OK);
  o.arg = &tb;
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&b, s, path, &o), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(a), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&lp, leads, &ta, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_election_join(b), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  CU_ASSERT_EQUAL(zkr_election_resign_nowait(a), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_resign_nowait(a), ZKR_ENOTHELD);
  CU_ASSERT_TRUE(run_until(&lp, leads, &tb, TH_SETTLE_MS));
  CU_ASSERT_TRUE(run_until(&lp, stepped_down, &ta, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_election_is_leader(a), 0);
  CU_ASSERT_EQUAL(zkr_election_is_leader(b), 1);
  CU_ASSERT_EQUAL(zkr_election_resign_nowait(b), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&lp, stepped_down, &tb, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_await_nodes(path, 0));
  CU_ASSERT_EQUAL(ta.ups + ta.downs + tb.ups + tb.downs, 4);
  CU_ASSERT_EQUAL(ta.off_thread + tb.off_thread, 0);
  CU_ASSERT_EQUAL(zkr_election_resign_nowait(NULL), ZKR_EINVAL);
  zkr_election_free(a);
  zkr_election_free(b);
  loop_done(&lp);
  zkr_session_close(s);
  th_finish_path(path);
}

int main(void) {
  static const th_test tests[] = {{"test_async_epoll_thousand", test_async_epoll_thousand},
                                  {"test_async_expiry_while_holding", test_async_expiry_while_holding},
                                  {"test_async_expiry_while_pending", test_async_expiry_while_pending},
                                  {"test_async_cancel_races_grant", test_async_cancel_races_grant},
                                  {"test_async_cancel_at_every_step", test_async_cancel_at_every_step},
                                  {"test_async_deadline", test_async_deadline},
                                  {"test_async_deadline_races_grant", test_async_deadline_races_grant},
                                  {"test_async_node_deleted", test_async_node_deleted},
                                  {"test_async_connloss_mid_create", test_async_connloss_mid_create},
                                  {"test_async_free_from_callback", test_async_free_from_callback},
                                  {"test_async_session_close", test_async_session_close},
                                  {"test_async_stalled_loop", test_async_stalled_loop},
                                  {"test_async_rwlock", test_async_rwlock},
                                  {"test_async_threaded_session", test_async_threaded_session},
                                  {"test_async_bad_input", test_async_bad_input},
                                  {"test_async_election", test_async_election},
                                  {NULL, NULL}};

  main_thread = pthread_self();
  return th_run("async", tests);
}
