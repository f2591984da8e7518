/* Loop mode and asynchronous holds (zkr/async.h) against a real server.
 *
 * Every loop here is this thread's own epoll loop on zkr_session_fd(), run
 * until a condition holds; every callback records the thread it ran on,
 * and in loop mode that must be this thread. */
#include "core.h"
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

/* The same on a threaded session: the callback comes on the event thread. */
static int give_back_threaded(rec *r) {
  CU_ASSERT_EQUAL_FATAL(zkr_hold_release(r->h, on_released, r), ZKR_OK);
  CU_ASSERT_FATAL(th_wait_until(released, r, TH_SETTLE_MS));
  return r->released_rc;
}

/* --- 1. the evidence: one thread, 1,000 holds and 1,000 waiters ------------------ */

#define N_PATHS 1000

typedef struct many {
  rec first[N_PATHS], second[N_PATHS];
} many;

/* Every hold of a phase (first or second) had its on_acquired. */
typedef struct phase_of {
  many *m;
  int second;
} phase_of;

static int all_acquired(void *arg) {
  phase_of *p = arg;
  int i;

  for (i = 0; i < N_PATHS; i++)
    if (!(p->second ? p->m->second : p->m->first)[i].acquired)
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
  zkr_session_close(th_session_at(th_hosts(), 0, 1));
  threads_before = th_thread_count();
  s = th_session_at(th_hosts(), 0, 1);
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
  CU_ASSERT_TRUE_FATAL(run_until(&lp, all_acquired, &(phase_of){m, 0}, TH_QUEUE_MS(N_PATHS / 100)));
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
  CU_ASSERT_TRUE_FATAL(run_until(&lp, all_acquired, &(phase_of){m, 1}, TH_QUEUE_MS(N_PATHS / 100)));
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

/* What most cases start from: a loop-mode session with its loop, a lock
 * on a fresh path through it, and optionally a holder of another (threaded)
 * session that keeps us waiting. */
typedef struct fixture {
  char *path;
  zkr_session *s;
  loop lp;
  zkr_lock *l;
  zkr_session *bs; /* the blocker's, or NULL */
  zkr_lock *b;
} fixture;

static void fx_open(fixture *f, const char *tag, int session_ms, int blocked) {
  memset(f, 0, sizeof(*f));
  f->path = th_path(tag);
  if (blocked) {
    f->bs = th_session(0);
    f->b = th_lock(f->bs, f->path);
    CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(f->b, 0), ZKR_OK);
  }
  f->s = th_session_at(th_hosts(), session_ms, 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f->s);
  loop_init(&f->lp, f->s);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&f->l, f->s, f->path, NULL), ZKR_OK);
}

/* Frees everything and asserts nothing is left on the server. */
static void fx_close(fixture *f) {
  zkr_lock_free(f->l);
  loop_done(&f->lp);
  zkr_session_close(f->s);
  zkr_lock_free(f->b);
  zkr_session_close(f->bs);
  th_finish_path(f->path);
}

static void test_async_expiry_while_holding(void) {
  fixture f;
  rec r;

  fx_open(&f, "as-expire-held", 0, 0);
  take(&f.lp, f.l, &r);
  CU_ASSERT_EQUAL(th_expire(f.s), 0);
  CU_ASSERT_TRUE(run_until(&f.lp, lost, &r, TH_EXPIRED_BY_MS(TH_SESSION_MS)));
  CU_ASSERT_EQUAL(r.lost_rc, ZKR_ESESSION);
  CU_ASSERT_EQUAL(zkr_hold_lost_reason(r.h), ZKR_LOST_EXPIRED);
  CU_ASSERT_EQUAL(zkr_hold_held(r.h), 0);
  CU_ASSERT_EQUAL(zkr_hold_valid_until(r.h), 0);
  CU_ASSERT_EQUAL(give_back(&f.lp, &r), ZKR_ESESSION);
  CU_ASSERT_EQUAL(r.lost, 1); /* once */
  CU_ASSERT_EQUAL(r.acquired, 1);
  CU_ASSERT_EQUAL(r.off_thread, 0);
  fx_close(&f);
}

static void test_async_expiry_while_pending(void) {
  fixture f;
  rec r;

  fx_open(&f, "as-expire-pending", 0, 1);
  CU_ASSERT_EQUAL_FATAL(start(f.l, -1, &r), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(f.path, 2)); /* queued behind the holder */
  CU_ASSERT_EQUAL(th_expire(f.s), 0);
  CU_ASSERT_TRUE(run_until(&f.lp, acquired, &r, TH_EXPIRED_BY_MS(TH_SESSION_MS)));
  CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ESESSION);
  CU_ASSERT_TRUE(th_await_nodes(f.path, 1)); /* only the holder's */
  CU_ASSERT_EQUAL(zkr_lock_release(f.b), ZKR_OK);
  CU_ASSERT_EQUAL(r.acquired, 1);
  CU_ASSERT_EQUAL(r.lost + r.released, 0);
  fx_close(&f);
}

/* The grant has come (the descriptor says an event is pending) but is not
 * delivered when the cancel comes: the cancel wins, exactly one outcome,
 * and nothing is held (the node goes; another client gets the lock). */
static void test_async_cancel_races_grant(void) {
  fixture f;
  rec r;

  fx_open(&f, "as-cancel-grant", 0, 1);
  CU_ASSERT_EQUAL_FATAL(start(f.l, -1, &r), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(f.path, 2));
  /* Drain what is pending, then let the grant come without delivering it. */
  zkr_session_dispatch(f.s);
  CU_ASSERT_FALSE(fd_readable(&f.lp));
  CU_ASSERT_EQUAL(zkr_lock_release(f.b), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(fd_readable, &f.lp, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_hold_cancel(r.h), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_hold_cancel(r.h), ZKR_EINVAL); /* decided already */
  CU_ASSERT_TRUE(run_until(&f.lp, acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ECANCELLED);
  CU_ASSERT_TRUE(th_await_nodes(f.path, 0));
  CU_ASSERT_EQUAL(zkr_lock_acquire(f.b, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(f.b), ZKR_OK);
  CU_ASSERT_EQUAL(r.acquired, 1);
  CU_ASSERT_EQUAL(r.lost + r.released, 0);
  fx_close(&f);
}

/* A cancel after 0, 1, 2... dispatches of an uncontended acquisition lands
 * before the create, between create and grant, or after the grant was
 * delivered: each time exactly one outcome, and a cancel refused only
 * once on_acquired had said ZKR_OK (which the release then ends). */
static void test_async_cancel_at_every_step(void) {
  fixture f;
  int k, cancelled = 0, granted = 0;

  fx_open(&f, "as-cancel-steps", 0, 0);
  for (k = 0; k < 60; k++) {
    rec r;
    int i, crc;
    CU_ASSERT_EQUAL_FATAL(start(f.l, -1, &r), ZKR_OK);
    for (i = 0; i < k % 6 && !r.acquired; i++) {
      struct epoll_event ev;
      epoll_wait(f.lp.ep, &ev, 1, TH_LATE_MS);
      zkr_session_dispatch(f.s);
    }
    crc = zkr_hold_cancel(r.h);
    if (crc == ZKR_OK) {
      CU_ASSERT_TRUE(run_until(&f.lp, acquired, &r, TH_SETTLE_MS));
      CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ECANCELLED);
      cancelled++;
    } else {
      CU_ASSERT_EQUAL(crc, ZKR_EINVAL);
      CU_ASSERT_EQUAL(r.acquired_rc, ZKR_OK);
      CU_ASSERT_EQUAL(give_back(&f.lp, &r), ZKR_OK);
      granted++;
    }
    CU_ASSERT_EQUAL(r.acquired, 1);
    CU_ASSERT_TRUE(th_await_nodes(f.path, 0));
  }
  printf("[%d cancelled, %d granted first] ", cancelled, granted);
  CU_ASSERT_TRUE(cancelled > 0);
  fx_close(&f);
}

static void test_async_deadline(void) {
  fixture f;
  int64_t t0;
  rec r, t;

  fx_open(&f, "as-deadline", 0, 1);
  t0 = th_now_ms();
  CU_ASSERT_EQUAL_FATAL(start(f.l, TH_SESSION_MS / 4, &r), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&f.lp, acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(th_now_ms() - t0 >= TH_SESSION_MS / 4);
  CU_ASSERT_TRUE(th_now_ms() - t0 <= TH_SESSION_MS / 4 + TH_LATE_MS);
  CU_ASSERT_TRUE(th_await_nodes(f.path, 1)); /* our node went */
  /* A try on the taken lock says so through on_acquired. */
  CU_ASSERT_EQUAL_FATAL(start(f.l, 0, &t), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&f.lp, acquired, &t, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(t.acquired_rc, ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(th_await_nodes(f.path, 1));
  CU_ASSERT_EQUAL(zkr_lock_release(f.b), ZKR_OK);
  /* And on a free one it holds. */
  CU_ASSERT_EQUAL_FATAL(start(f.l, 0, &t), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&f.lp, acquired, &t, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(t.acquired_rc, ZKR_OK);
  CU_ASSERT_EQUAL(give_back(&f.lp, &t), ZKR_OK);
  CU_ASSERT_EQUAL(r.acquired + r.lost + r.released, 1);
  fx_close(&f);
}

/* The deadline passes while the grant waits undelivered: the one that runs
 * first decides (events run before the timers of a dispatch: the grant),
 * and there is one outcome either way. */
static int past(void *arg) {
  return th_now_ms() >= *(int64_t *)arg;
}

static void test_async_deadline_races_grant(void) {
  fixture f;
  int64_t due;
  rec r;

  fx_open(&f, "as-deadline-grant", 0, 1);
  /* Short enough for the loop's stall below to stay within the session's
   * validity, which the stall would otherwise end. */
  due = th_now_ms() + TH_SESSION_MS / 4;
  CU_ASSERT_EQUAL_FATAL(start(f.l, TH_SESSION_MS / 4, &r), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(f.path, 2));
  zkr_session_dispatch(f.s);
  CU_ASSERT_EQUAL(zkr_lock_release(f.b), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(fd_readable, &f.lp, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_wait_until(past, &due, TH_SESSION_MS));
  CU_ASSERT_TRUE(run_until(&f.lp, acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.acquired, 1);
  printf("[%s won] ", zkr_err_name(r.acquired_rc));
  if (r.acquired_rc == ZKR_OK) {
    CU_ASSERT_EQUAL(give_back(&f.lp, &r), ZKR_OK);
  } else {
    CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ETIMEDOUT);
  }
  CU_ASSERT_TRUE(th_await_nodes(f.path, 0));
  CU_ASSERT_EQUAL(r.acquired, 1);
  fx_close(&f);
}

static int node_watched(void *arg) {
  return th_watched(arg);
}

static int node_known(void *arg) {
  char node[1024];

  return zkr_hold_node(arg, node, sizeof(node)) == ZKR_OK;
}

static void test_async_node_deleted(void) {
  fixture f;
  zhandle_t *raw = th_raw();
  char node[1024];
  rec r;

  fx_open(&f, "as-deleted", 0, 0);
  take(&f.lp, f.l, &r);
  CU_ASSERT_EQUAL(zkr_hold_node(r.h, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_hold_node(r.h, node, 4), ZKR_EINVAL);
  CU_ASSERT_TRUE(run_until(&f.lp, node_watched, node, TH_SETTLE_MS)); /* own-node watch (set by a dispatch) */
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE(run_until(&f.lp, lost, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.lost_rc, ZKR_ELOST);
  CU_ASSERT_EQUAL(zkr_hold_lost_reason(r.h), ZKR_LOST_DELETED);
  CU_ASSERT_EQUAL(zkr_hold_held(r.h), 0);
  CU_ASSERT_EQUAL(give_back(&f.lp, &r), ZKR_ELOST);
  CU_ASSERT_EQUAL(r.lost, 1);
  th_raw_close(raw);
  fx_close(&f);
}

/* Our waiting node deleted by another client: the acquisition ends with
 * ZKR_ELOST (never a grant from a node that is gone), and the holder keeps
 * the lock alone. */
static void test_async_waiting_node_deleted(void) {
  fixture f;
  zhandle_t *raw = th_raw();
  char node[1024];
  rec r;

  fx_open(&f, "as-wait-deleted", 0, 1);
  CU_ASSERT_EQUAL_FATAL(start(f.l, -1, &r), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(f.path, 2));
  CU_ASSERT_TRUE(run_until(&f.lp, node_known, r.h, TH_SETTLE_MS));
  CU_ASSERT_EQUAL_FATAL(zkr_hold_node(r.h, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&f.lp, node_watched, node, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE(run_until(&f.lp, acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r.acquired_rc, ZKR_ELOST);
  CU_ASSERT_EQUAL(th_count_nodes(f.path), 1); /* the holder's */
  CU_ASSERT_EQUAL(zkr_lock_release(f.b), ZKR_OK);
  CU_ASSERT_EQUAL(r.acquired + r.lost + r.released, 1);
  th_raw_close(raw);
  fx_close(&f);
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
  s = th_session_at(tp_hosts(p), 0, 1);
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
  fixture fx;
  freer f;
  rec w;

  fx_open(&fx, "as-free-cb", 0, 0);
  memset(&f, 0, sizeof(f));
  f.r.loop_mode = 1;
  f.l = &fx.l;
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire_async(fx.l, -1, free_lock, on_lost, &f, &f.r.h), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(start(fx.l, -1, &w), ZKR_OK); /* waits behind it */
  CU_ASSERT_TRUE(run_until(&fx.lp, acquired, &f.r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(f.r.acquired_rc, ZKR_OK);
  CU_ASSERT_PTR_NULL(fx.l);
  /* The waiter was ended by the free, at once, on this thread. */
  CU_ASSERT_EQUAL(w.acquired, 1);
  CU_ASSERT_EQUAL(w.acquired_rc, ZKR_ECLOSED);
  CU_ASSERT_TRUE(th_await_nodes(fx.path, 0));
  CU_ASSERT_EQUAL(f.r.lost + f.r.released + f.r.off_thread + w.off_thread, 0);
  fx_close(&fx);
}

/* Closing the session ends what is pending (on_acquired: ZKR_ECLOSED) and
 * what is held (on_lost), on the closing thread; the lock's free then frees
 * the held handle; a release after the close is refused. */
static void test_async_session_close(void) {
  fixture f;
  char *path2 = th_path("as-close-rel");
  zkr_lock *l2;
  rec held, pending, releasing;

  fx_open(&f, "as-close", 0, 0);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l2, f.s, path2, NULL), ZKR_OK);
  take(&f.lp, l2, &releasing);
  take(&f.lp, f.l, &held);
  CU_ASSERT_EQUAL_FATAL(start(f.l, -1, &pending), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(f.path, 2));
  CU_ASSERT_EQUAL(zkr_hold_release(releasing.h, on_released, &releasing), ZKR_OK);
  zkr_session_close(f.s);
  f.s = NULL;
  CU_ASSERT_EQUAL(releasing.released, 1);
  CU_ASSERT_TRUE(releasing.released_rc == ZKR_OK || releasing.released_rc == ZKR_ESESSION);
  CU_ASSERT_EQUAL(pending.acquired, 1);
  CU_ASSERT_EQUAL(pending.acquired_rc, ZKR_ECLOSED);
  CU_ASSERT_EQUAL(held.lost, 1);
  CU_ASSERT_EQUAL(held.lost_rc, ZKR_ESESSION);
  CU_ASSERT_EQUAL(zkr_hold_release(held.h, on_released, &held), ZKR_ECLOSED);
  CU_ASSERT_EQUAL(zkr_lock_acquire_async(f.l, -1, on_acquired, NULL, &pending, &pending.h), ZKR_ECLOSED);
  fx_close(&f); /* the lock's free frees the held handle */
  zkr_lock_free(l2);
  th_finish_path(path2);
  CU_ASSERT_EQUAL(held.released + pending.lost + held.off_thread + pending.off_thread, 0);
}

/* A loop that stops dispatching for longer than the session's validity:
 * the hold stops counting as held on the library's clock at once, and the
 * next dispatch tells on_lost. */
static int hold_invalid(void *arg) {
  return !zkr_hold_held(((rec *)arg)->h);
}

static void test_async_stalled_loop(void) {
  fixture f;
  int64_t valid;
  rec r;

  fx_open(&f, "as-stall", TH_SESSION_MS / 2, 0);
  take(&f.lp, f.l, &r);
  valid = zkr_hold_valid_until(r.h);
  CU_ASSERT_TRUE(valid > zkr_monotonic_ns());
  /* No dispatch: nobody confirms the session for the library. */
  CU_ASSERT_TRUE(th_wait_until(hold_invalid, &r, TH_SETTLE_FOR(TH_SESSION_MS / 2)));
  CU_ASSERT_TRUE(zkr_monotonic_ns() >= valid);
  CU_ASSERT_EQUAL(r.lost, 0);
  zkr_session_dispatch(f.s);
  CU_ASSERT_EQUAL(r.lost, 1);
  CU_ASSERT_EQUAL(r.lost_rc, ZKR_ESESSION);
  CU_ASSERT_EQUAL(zkr_hold_lost_reason(r.h), ZKR_LOST_DEADLINE);
  CU_ASSERT_EQUAL(give_back(&f.lp, &r), ZKR_ESESSION);
  fx_close(&f);
}

/* --- 4. the read-write lock, and the threaded session ------------------------------ */

static int both_acquired(void *arg) {
  rec *r = arg;
  return acquired(&r[0]) && acquired(&r[1]);
}

static void test_async_rwlock(void) {
  char *path = th_path("as-rw");
  zkr_session *s = th_session_at(th_hosts(), 0, 1);
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
  fixture f;
  zkr_hold *h = (zkr_hold *)1;
  int64_t tok;
  char buf[8];
  rec r;

  fx_open(&f, "as-bad", 0, 0);
  CU_ASSERT_EQUAL(zkr_lock_acquire_async(NULL, -1, on_acquired, NULL, NULL, &h), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lock_acquire_async(f.l, -1, NULL, NULL, NULL, &h), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(h);
  CU_ASSERT_EQUAL(zkr_lock_acquire_async(f.l, -1, on_acquired, NULL, NULL, NULL), ZKR_EINVAL);
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
  {
    zkr_session_opts o;
    zkr_session *bad = (zkr_session *)1;
    memset(&o, 0, sizeof(o));
    o.loop = 2;
    CU_ASSERT_EQUAL(zkr_session_open(&bad, th_hosts(), &o), ZKR_EINVAL);
    CU_ASSERT_PTR_NULL(bad);
  }
  CU_ASSERT_EQUAL(th_count_nodes(f.path), 0); /* nothing was created */
  /* A pending hold is not released, nor read; a granted one not cancelled. */
  CU_ASSERT_EQUAL_FATAL(start(f.l, -1, &r), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_hold_release(r.h, on_released, &r), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_hold_token(r.h, &tok), ZKR_ENOTHELD);
  CU_ASSERT_TRUE(run_until(&f.lp, acquired, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_hold_cancel(r.h), ZKR_EINVAL);
  CU_ASSERT_EQUAL(give_back(&f.lp, &r), ZKR_OK);
  CU_ASSERT_STRING_EQUAL(zkr_err_name(ZKR_ECANCELLED), "ZKR_ECANCELLED");
  fx_close(&f);
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
  zkr_session *s = th_session_at(th_hosts(), 0, 1);
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

/* --- 6. a threaded session: what another thread may do meanwhile ------------------ */

/* A hold whose on_acquired blocks the event thread until the test opens the
 * gate: every other callback of the session waits behind it. */
typedef struct gate {
  rec r;
  int entered, open;
} gate;

static void gated(zkr_hold *h, int rc, void *arg) {
  gate *g = arg;

  on_acquired(h, rc, &g->r);
  __atomic_store_n(&g->entered, 1, __ATOMIC_SEQ_CST);
  while (!__atomic_load_n(&g->open, __ATOMIC_SEQ_CST))
    usleep(1000);
}

static int gate_entered(void *arg) {
  return __atomic_load_n(&((gate *)arg)->entered, __ATOMIC_SEQ_CST);
}

/* A call made on a thread of its own, so that the test can bound how long
 * it takes. */
typedef struct call_on_thread {
  int (*fn)(void *);
  void *arg;
  int rc, done;
  pthread_t t;
} call_on_thread;

static void *call_main(void *arg) {
  call_on_thread *c = arg;

  c->rc = c->fn(c->arg);
  __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static int call_done(void *arg) {
  return __atomic_load_n(&((call_on_thread *)arg)->done, __ATOMIC_SEQ_CST);
}

static int cancel_it(void *arg) {
  return zkr_hold_cancel(arg);
}

static int resign_it(void *arg) {
  return zkr_election_resign_nowait(arg);
}

/* Granted on the server side, not yet delivered (the event thread is busy). */
typedef struct inside {
  zkr_session *s;
  zkr_hold *h;
} inside;

static int granted_inside(void *arg) {
  inside *in = arg;
  pthread_mutex_t *mu = zkr__session_mutex(in->s);
  zkr__contender *c;
  int held;

  pthread_mutex_lock(mu);
  c = zkr__hold_contender(in->h);
  held = c != NULL && zkr__contender_held_now(c);
  pthread_mutex_unlock(mu);
  return held;
}

/* Found by a newcomer: a cancel (and a resign_nowait) from another thread
 * waited for the hold's contender's queued events, which only the event
 * thread runs, and that thread was busy in another hold's callback: it
 * returned only once that callback did (a deadlock when the callback
 * waited for the canceller). Both now return at once. */
static void test_async_cancel_never_waits(void) {
  char *path = th_path("as-nowait"), p2[300], p3[300];
  zkr_session *s = th_session(0);
  zkr_lock *la = th_lock(s, path), *lb;
  zkr_election *e;
  gate g;
  rec b;
  inside in;
  call_on_thread ct;

  snprintf(p2, sizeof(p2), "%s/b", path);
  snprintf(p3, sizeof(p3), "%s/e", path);
  lb = th_lock(s, p2);
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&e, s, p3, NULL), ZKR_OK);
  memset(&g, 0, sizeof(g));
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire_async(la, -1, gated, NULL, &g, &g.r.h), ZKR_OK);
  CU_ASSERT_TRUE_FATAL(th_wait_until(gate_entered, &g, TH_SETTLE_MS)); /* the event thread is held */
  memset(&b, 0, sizeof(b));
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire_async(lb, -1, on_acquired, NULL, &b, &b.h), ZKR_OK);
  in.s = s;
  in.h = b.h;
  CU_ASSERT_TRUE(th_wait_until(granted_inside, &in, TH_SETTLE_MS)); /* its grant waits in the queue */
  memset(&ct, 0, sizeof(ct));
  ct.fn = cancel_it;
  ct.arg = b.h;
  pthread_create(&ct.t, NULL, call_main, &ct);
  CU_ASSERT_TRUE(th_wait_until(call_done, &ct, TH_LATE_MS));
  /* And the election: leading on the server, its on_change(1) queued. */
  CU_ASSERT_EQUAL(zkr_election_join(e), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_await(e, TH_SETTLE_MS), ZKR_OK);
  call_on_thread cr = {resign_it, e, 0, 0, 0};
  pthread_create(&cr.t, NULL, call_main, &cr);
  CU_ASSERT_TRUE(th_wait_until(call_done, &cr, TH_LATE_MS));
  __atomic_store_n(&g.open, 1, __ATOMIC_SEQ_CST);
  pthread_join(ct.t, NULL);
  pthread_join(cr.t, NULL);
  CU_ASSERT_EQUAL(ct.rc, ZKR_OK);
  CU_ASSERT_EQUAL(cr.rc, ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(acquired, &b, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(b.acquired_rc, ZKR_ECANCELLED);
  CU_ASSERT_EQUAL(give_back_threaded(&g.r), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(p2, 0));
  CU_ASSERT_TRUE(th_await_nodes(p3, 0));
  zkr_election_free(e);
  zkr_lock_free(lb);
  zkr_lock_free(la);
  zkr_session_close(s);
  CU_ASSERT_EQUAL(th_delete_tree(path), 0);
  free(path);
}

/* Found by a newcomer: a cancel from another thread raced the event thread
 * delivering the same hold's outcome: on_acquired came with ZKR_ECLOSED,
 * and the hold and its contender were used after being freed. Many cancels
 * at varied moments: each returns ZKR_OK and the outcome is then
 * ZKR_ECANCELLED, or it returns ZKR_EINVAL after a delivered grant. */
static void test_async_cancel_from_thread(void) {
  char *path = th_path("as-cancel-thread");
  zkr_session *s = th_session(0);
  zkr_lock *l = th_lock(s, path);
  int k, cancelled = 0, granted = 0, wrong = 0;

  for (k = 0; k < 300; k++) {
    rec r;
    int crc;
    int64_t until = zkr_monotonic_ns() + (k % 30) * 100000LL; /* 0 to 3 ms: around the grant */
    memset(&r, 0, sizeof(r));
    CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire_async(l, -1, on_acquired, NULL, &r, &r.h), ZKR_OK);
    while (zkr_monotonic_ns() < until && !acquired(&r))
      ;
    crc = zkr_hold_cancel(r.h); /* h lives: a cancel comes before any final callback */
    CU_ASSERT_TRUE(th_wait_until(acquired, &r, TH_SETTLE_MS));
    if (crc == ZKR_OK) {
      wrong += r.acquired_rc != ZKR_ECANCELLED;
      cancelled++;
    } else {
      wrong += crc != ZKR_EINVAL || r.acquired_rc != ZKR_OK;
      if (r.acquired_rc == ZKR_OK)
        CU_ASSERT_EQUAL(give_back_threaded(&r), ZKR_OK);
      granted++;
    }
    wrong += r.acquired != 1;
  }
  printf("[%d cancelled, %d granted first, %d wrong] ", cancelled, granted, wrong);
  CU_ASSERT_EQUAL(wrong, 0);
  CU_ASSERT_TRUE(th_await_nodes(path, 0));
  zkr_lock_free(l);
  zkr_session_close(s);
  th_finish_path(path);
}

/* Found by a newcomer: a release asked for inside the hold's own callback,
 * then the lock freed there too: on_released never came. It comes once,
 * with ZKR_ECLOSED, after the callback. */
typedef struct rel_free {
  rec r;
  zkr_lock **l;
} rel_free;

static void release_then_free(zkr_hold *h, int rc, void *arg) {
  rel_free *f = arg;

  on_acquired(h, rc, &f->r);
  CU_ASSERT_EQUAL(zkr_hold_release(h, on_released, &f->r), ZKR_OK);
  zkr_lock_free(*f->l);
  *f->l = NULL;
  CU_ASSERT_EQUAL(f->r.released, 0); /* not before the callback returned */
}

static void test_async_release_then_free_in_callback(void) {
  fixture fx;
  rel_free f;

  fx_open(&fx, "as-rel-free", 0, 0);
  memset(&f, 0, sizeof(f));
  f.r.loop_mode = 1;
  f.l = &fx.l;
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire_async(fx.l, -1, release_then_free, NULL, &f, &f.r.h), ZKR_OK);
  CU_ASSERT_TRUE(run_until(&fx.lp, released, &f.r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(f.r.acquired, 1);
  CU_ASSERT_EQUAL(f.r.released, 1);
  CU_ASSERT_EQUAL(f.r.released_rc, ZKR_ECLOSED);
  CU_ASSERT_TRUE(th_await_nodes(fx.path, 0));
  fx_close(&fx);
}

/* Found by the second review: a lock freed from another thread while a
 * hold's last callback ran on the event thread returned at once; the
 * callback then used what the caller freed (and could start an acquisition
 * on the freed lock). The free now returns only after that callback. */
typedef struct freeing {
  gate g;
  int free_returned;
  int seen_returned; /* free_returned as the callback saw it at its end */
} freeing;

static void gated_final(zkr_hold *h, int rc, void *arg) {
  freeing *f = arg;

  gated(h, rc, &f->g);
  f->seen_returned = __atomic_load_n(&f->free_returned, __ATOMIC_SEQ_CST);
}

typedef struct freer_thread {
  zkr_lock *l;
  freeing *f;
} freer_thread;

static int free_lock_it(void *arg) {
  freer_thread *ft = arg;

  zkr_lock_free(ft->l);
  __atomic_store_n(&ft->f->free_returned, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static void test_async_free_waits_for_last_callback(void) {
  char *path = th_path("as-free-wait");
  zkr_session *bs, *s = th_session(0);
  zkr_lock *b, *l = th_lock(s, path);
  freeing f;
  freer_thread ft;
  call_on_thread ct;

  bs = th_session(0);
  b = th_lock(bs, path);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(b, 0), ZKR_OK);
  memset(&f, 0, sizeof(f));
  /* A try on the taken lock: its on_acquired(ZKR_ETIMEDOUT) is its last. */
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire_async(l, 0, gated_final, NULL, &f, &f.g.r.h), ZKR_OK);
  CU_ASSERT_TRUE_FATAL(th_wait_until(gate_entered, &f.g, TH_SETTLE_MS));
  ft.l = l;
  ft.f = &f;
  memset(&ct, 0, sizeof(ct));
  ct.fn = free_lock_it;
  ct.arg = &ft;
  pthread_create(&ct.t, NULL, call_main, &ct);
  /* The free must wait for the callback, which waits for the gate. */
  CU_ASSERT_FALSE(th_wait_until(call_done, &ct, TH_LATE_MS));
  __atomic_store_n(&f.g.open, 1, __ATOMIC_SEQ_CST);
  pthread_join(ct.t, NULL);
  CU_ASSERT_EQUAL(f.g.r.acquired_rc, ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(f.seen_returned, 0);
  zkr_session_close(s);
  zkr_lock_free(b);
  zkr_session_close(bs);
  th_finish_path(path);
}

/* Found by the second review: an election let go of two participations
 * without waiting (resign_nowait, join after a term ended) and free waited
 * only for the last one's callback: the first one's on_change(0), still
 * running, then used the freed election. */
typedef struct term_gate {
  int entered, open, downs;
  zkr_election *e;
  int leader_seen; /* is_leader() as the callback saw it at its end */
} term_gate;

static void on_term_gated(zkr_election *e, int leader, void *arg) {
  term_gate *t = arg;

  if (leader)
    return;
  __atomic_add_fetch(&t->downs, 1, __ATOMIC_SEQ_CST);
  if (__atomic_exchange_n(&t->entered, 1, __ATOMIC_SEQ_CST))
    return;
  while (!__atomic_load_n(&t->open, __ATOMIC_SEQ_CST))
    usleep(1000);
  t->leader_seen = zkr_election_is_leader(e); /* uses e */
}

static int term_entered(void *arg) {
  return __atomic_load_n(&((term_gate *)arg)->entered, __ATOMIC_SEQ_CST);
}

static int free_election_it(void *arg) {
  zkr_election_free(arg);
  return 0;
}

static void test_async_election_free_waits_for_callbacks(void) {
  char *path = th_path("as-elect-free");
  zkr_session *s = th_session(0);
  zhandle_t *raw = th_raw();
  zkr_election_opts o;
  zkr_election *e;
  term_gate t;
  call_on_thread ct;
  char node[1024];

  memset(&t, 0, sizeof(t));
  memset(&o, 0, sizeof(o));
  o.on_change = on_term_gated;
  o.arg = &t;
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&e, s, path, &o), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(e), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_await(e, TH_SETTLE_MS), ZKR_OK);
  snprintf(node, sizeof(node), "%s/%s", path, strtok((char *)th_children(path), "\n"));
  CU_ASSERT_TRUE(th_wait_until(node_watched, node, TH_SETTLE_MS)); /* own-node watch */
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE_FATAL(th_wait_until(term_entered, &t, TH_SETTLE_MS)); /* on_change(0) runs, held */
  /* Two participations let go while it runs. */
  CU_ASSERT_EQUAL(zkr_election_resign_nowait(e), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(e), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_resign_nowait(e), ZKR_OK);
  memset(&ct, 0, sizeof(ct));
  ct.fn = free_election_it;
  ct.arg = e;
  pthread_create(&ct.t, NULL, call_main, &ct);
  CU_ASSERT_FALSE(th_wait_until(call_done, &ct, TH_LATE_MS));
  __atomic_store_n(&t.open, 1, __ATOMIC_SEQ_CST);
  pthread_join(ct.t, NULL);
  CU_ASSERT_EQUAL(t.leader_seen, 0);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
}

/* Found by a newcomer: an election freed from its own on_change crashed at
 * the next dispatch (the on_change(0) it still owed ran on the freed
 * election); and one freed from an on_change(0) that owed() delivers was
 * read by owed() after the callback. Both are allowed now: what is still
 * owed is dropped. */
typedef struct free_on {
  int when; /* free on this announcement: 1 or 0 */
  int calls;
  zkr_election **e;
} free_on;

static void free_on_change(zkr_election *e, int leader, void *arg) {
  free_on *f = arg;

  f->calls++;
  if (leader == f->when) {
    zkr_election_free(e);
    *f->e = NULL;
  }
}

static int election_freed(void *arg) {
  return *((free_on *)arg)->e == NULL;
}

static void test_async_election_free_in_callback(void) {
  int when;

  for (when = 1; when >= 0; when--) {
    char *path = th_path("as-elect-free-cb");
    zkr_session *s = th_session_at(th_hosts(), 0, 1);
    zkr_election_opts o;
    zkr_election *e;
    free_on f = {when, 0, &e};
    loop lp;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    loop_init(&lp, s);
    memset(&o, 0, sizeof(o));
    o.on_change = free_on_change;
    o.arg = &f;
    CU_ASSERT_EQUAL_FATAL(zkr_election_new(&e, s, path, &o), ZKR_OK);
    CU_ASSERT_EQUAL(zkr_election_join(e), ZKR_OK);
    if (when == 0) {
      CU_ASSERT_EQUAL(zkr_election_await(e, TH_SETTLE_MS), ZKR_OK);
      /* on_change(1) is still queued: resigning now makes owed() announce
       * the term's 0 after it, and the callback frees there. */
      CU_ASSERT_EQUAL(zkr_election_resign_nowait(e), ZKR_OK);
    }
    CU_ASSERT_TRUE(run_until(&lp, election_freed, &f, TH_SETTLE_MS));
    /* More dispatches: nothing owed to the freed election may run. */
    zkr_session_dispatch(s);
    zkr_session_dispatch(s);
    CU_ASSERT_EQUAL(f.calls, when == 1 ? 1 : 2);
    CU_ASSERT_TRUE(th_await_nodes(path, 0));
    loop_done(&lp);
    zkr_session_close(s);
    th_finish_path(path);
  }
}

int main(void) {
  static const th_test tests[] = {
      {"test_async_epoll_thousand", test_async_epoll_thousand},
      {"test_async_expiry_while_holding", test_async_expiry_while_holding},
      {"test_async_expiry_while_pending", test_async_expiry_while_pending},
      {"test_async_cancel_races_grant", test_async_cancel_races_grant},
      {"test_async_cancel_at_every_step", test_async_cancel_at_every_step},
      {"test_async_deadline", test_async_deadline},
      {"test_async_deadline_races_grant", test_async_deadline_races_grant},
      {"test_async_node_deleted", test_async_node_deleted},
      {"test_async_waiting_node_deleted", test_async_waiting_node_deleted},
      {"test_async_connloss_mid_create", test_async_connloss_mid_create},
      {"test_async_free_from_callback", test_async_free_from_callback},
      {"test_async_session_close", test_async_session_close},
      {"test_async_stalled_loop", test_async_stalled_loop},
      {"test_async_rwlock", test_async_rwlock},
      {"test_async_threaded_session", test_async_threaded_session},
      {"test_async_bad_input", test_async_bad_input},
      {"test_async_election", test_async_election},
      {"test_async_cancel_never_waits", test_async_cancel_never_waits},
      {"test_async_cancel_from_thread", test_async_cancel_from_thread},
      {"test_async_release_then_free_in_callback", test_async_release_then_free_in_callback},
      {"test_async_free_waits_for_last_callback", test_async_free_waits_for_last_callback},
      {"test_async_election_free_waits_for_callbacks", test_async_election_free_waits_for_callbacks},
      {"test_async_election_free_in_callback", test_async_election_free_in_callback},
      {NULL, NULL}};

  main_thread = pthread_self();
  return th_run("async", tests);
}
