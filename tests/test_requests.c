/* The lock's request budget, counted by opcode at a proxy between one
 * session and the server: 3 requests per uncontended cycle; 5 for a waiter
 * that listed only the holder (one read of its own node on handoff); 5 for
 * one that listed more (one listing on handoff, never one probe per node)
 * — Curator's counts at each position; none
 * for a reentrant acquire; the own-node watch only for holds that last; and
 * release without waiting (returns before the server ran the delete, and a
 * re-acquire across a connection loss still waits for it). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <zookeeper/proto.h>

#include "core.h"

#include "harness.h"
#include "proxy.h"

/* Session timeout (a parameter, not a bound) long enough that the session
 * sends no ping of its own in a test (one every third of it). */
#define QUIET_MS 30000

typedef struct counts {
  int create, list, get, exists, del, other;
} counts;

/* Requests seen so far; pings (exists on "/") are counted as exists. */
static counts now_counts(tp_proxy *p) {
  counts k;

  k.create = tp_requests(p, ZOO_CREATE2_OP);
  k.list = tp_requests(p, ZOO_GETCHILDREN_OP);
  k.get = tp_requests(p, ZOO_GETDATA_OP);
  k.exists = tp_requests(p, ZOO_EXISTS_OP);
  k.del = tp_requests(p, ZOO_DELETE_OP);
  k.other =
      tp_requests(p, TP_ANY_OP) - k.create - k.list - k.get - k.exists - k.del - tp_requests(p, ZOO_PING_OP);
  return k;
}

static counts since(tp_proxy *p, counts a) {
  counts b = now_counts(p);

  b.create -= a.create;
  b.list -= a.list;
  b.get -= a.get;
  b.exists -= a.exists;
  b.del -= a.del;
  b.other -= a.other;
  return b;
}

static zkr_session *session_via(tp_proxy *p) {
  zkr_session_opts o;
  zkr_session *s = NULL;

  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = QUIET_MS;
  CU_ASSERT_EQUAL_FATAL(zkr_session_open(&s, tp_hosts(p), &o), ZKR_OK);
  /* Counts must not depend on the machine's speed: a wait or hold that
   * happens to last 0.25 s would add its own-node watch. The test of that
   * watch sets the delay back. */
  zkr__session_set_own_watch_after(s, (int64_t)QUIET_MS * 1000000);
  return s;
}

typedef struct at_least {
  tp_proxy *p;
  int op, n;
} at_least;

static int reached(void *arg) {
  at_least *a = arg;

  return tp_requests(a->p, a->op) >= a->n;
}

/* Awaits the n-th request of this opcode, i.e. a waiter's watch was sent.
 * The watch is set once the server answered; the next check on the server
 * (a node count) is a later request, so it sees the watch in place. */
static int await_requests(tp_proxy *p, int op, int n) {
  at_least a = {p, op, n};

  return th_wait_until(reached, &a, TH_SETTLE_MS);
}

static void test_requests_uncontended_three(void) {
  char *path = th_path("r-unc");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *s;
  zkr_lock *l;
  counts k;
  int i, n = 100;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = session_via(p);
  l = th_lock(s, path);
  /* The first cycle makes the lock's parents. */
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  k = now_counts(p);
  for (i = 0; i < n; i++) {
    CU_ASSERT_EQUAL(zkr_lock_acquire(l, -1), ZKR_OK);
    CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  }
  k = since(p, k);
  printf("[%d cycles: %d create, %d list, %d get, %d exists, %d delete, %d other] ", n, k.create, k.list,
         k.get, k.exists, k.del, k.other);
  CU_ASSERT_EQUAL(k.create, n);
  CU_ASSERT_EQUAL(k.list, n);
  CU_ASSERT_EQUAL(k.del, n);
  CU_ASSERT_EQUAL(k.get, 0); /* short holds set no watch on their own node */
  CU_ASSERT_EQUAL(k.exists, 0);
  CU_ASSERT_EQUAL(k.other, 0);
  zkr_lock_free(l);
  zkr_session_close(s);
  tp_stop(p);
  th_finish_path(path);
}

static void test_requests_reentrant_none(void) {
  char *path = th_path("r-reent");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *s;
  zkr_lock *l;
  int i, before;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = session_via(p);
  l = th_lock(s, path);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  before = tp_requests(p, TP_ANY_OP);
  for (i = 0; i < 10000; i++) {
    CU_ASSERT_EQUAL(zkr_lock_acquire(l, -1), ZKR_OK);
    CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  }
  CU_ASSERT_EQUAL(tp_requests(p, TP_ANY_OP) - before, 0);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  zkr_lock_free(l);
  zkr_session_close(s);
  tp_stop(p);
  th_finish_path(path);
}

/* Second in line, a waiter pays create, list, a watch on its predecessor,
 * a read of its own node when the predecessor goes (where Curator lists
 * again: the read proves our node is still there), and its delete: five
 * requests, as Curator. */
static void test_requests_contended_five(void) {
  char *path = th_path("r-cont");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *holder = th_session(QUIET_MS), *s;
  zkr_lock *lh = th_lock(holder, path), *l;
  counts k;
  int i, n = 20;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = session_via(p);
  l = th_lock(s, path);
  CU_ASSERT_EQUAL(zkr_lock_acquire(lh, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(lh), ZKR_OK);
  k = now_counts(p);
  for (i = 0; i < n; i++) {
    th_acquirer a;
    CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(lh, -1), ZKR_OK);
    th_acquirer_start(&a, l, TH_SETTLE_MS, 0);
    CU_ASSERT_TRUE(await_requests(p, ZOO_GETDATA_OP, k.get + 2 * i + 1)); /* its watch is set */
    CU_ASSERT_EQUAL(th_count_nodes(path), 2);
    CU_ASSERT_EQUAL(zkr_lock_release(lh), ZKR_OK);
    th_acquirer_finish(&a);
    CU_ASSERT_EQUAL(a.rc, ZKR_OK);
    CU_ASSERT_EQUAL(a.release_rc, ZKR_OK);
  }
  k = since(p, k);
  printf("[%d acquisitions: %d create, %d list, %d get, %d delete] ", n, k.create, k.list, k.get, k.del);
  CU_ASSERT_EQUAL(k.create + k.list + k.get + k.del + k.exists + k.other, 5 * n);
  CU_ASSERT_EQUAL(k.list, n);
  CU_ASSERT_EQUAL(k.get, 2 * n); /* its predecessor, then (on its deletion) its own node */
  zkr_lock_free(l);
  zkr_lock_free(lh);
  zkr_session_close(s);
  zkr_session_close(holder);
  tp_stop(p);
  th_finish_path(path);
}

/* A queue of three: A holds, B waits, then C (through the proxy) waits
 * behind B with its watch sent; k counts C's requests from its start. */
typedef struct line3 {
  char *path;
  tp_proxy *p;
  zkr_session *sa, *sb, *s;
  zkr_lock *la, *lb, *l;
  th_acquirer b, c;
  counts k;
} line3;

static void line3_start(line3 *q, const char *tag) {
  q->path = th_path(tag);
  q->p = tp_start(th_hosts());
  CU_ASSERT_PTR_NOT_NULL_FATAL(q->p);
  q->sa = th_session(QUIET_MS);
  q->sb = th_session(QUIET_MS);
  q->s = session_via(q->p);
  q->la = th_lock(q->sa, q->path);
  q->lb = th_lock(q->sb, q->path);
  q->l = th_lock(q->s, q->path);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(q->la, -1), ZKR_OK);
  th_acquirer_start(&q->b, q->lb, TH_QUEUE_MS(1), 0);
  CU_ASSERT_TRUE(th_await_nodes(q->path, 2));
  q->k = now_counts(q->p);
  th_acquirer_start(&q->c, q->l, TH_QUEUE_MS(2), 0);
  CU_ASSERT_TRUE(await_requests(q->p, ZOO_GETDATA_OP, q->k.get + 1));
}

static void line3_finish(line3 *q) {
  zkr_lock_free(q->l);
  zkr_lock_free(q->la);
  zkr_lock_free(q->lb);
  zkr_session_close(q->s);
  zkr_session_close(q->sa);
  zkr_session_close(q->sb);
  tp_stop(q->p);
  th_finish_path(q->path);
}

/* The watched predecessor leaves the queue while an earlier node still
 * holds: its deletion alone cannot tell "held and released" from "gave up",
 * so the waiter lists once and watches the holder. */
static void test_requests_predecessor_leaves_one_listing(void) {
  line3 q;
  counts k;

  line3_start(&q, "r-leave");
  /* B's lock is freed: its node goes, C moves on to A's node. */
  zkr_lock_free(q.lb);
  q.lb = NULL;
  th_acquirer_finish(&q.b);
  CU_ASSERT_EQUAL(q.b.rc, ZKR_ECLOSED);
  CU_ASSERT_TRUE(await_requests(q.p, ZOO_GETDATA_OP, q.k.get + 2));
  CU_ASSERT_EQUAL(th_count_nodes(q.path), 2);
  CU_ASSERT_EQUAL(zkr_lock_release(q.la), ZKR_OK);
  th_acquirer_finish(&q.c);
  CU_ASSERT_EQUAL(q.c.rc, ZKR_OK);
  CU_ASSERT_EQUAL(q.c.release_rc, ZKR_OK);
  k = since(q.p, q.k);
  CU_ASSERT_EQUAL(k.create, 1);
  CU_ASSERT_EQUAL(k.list, 2);
  CU_ASSERT_EQUAL(k.get, 3); /* B; then A; then its own node when A goes */
  CU_ASSERT_EQUAL(k.del, 1);
  line3_finish(&q);
}

/* Third in line: its predecessor holds, then releases; one listing tells
 * the first is gone too (five requests, not one probe per earlier node). */
static void test_requests_third_in_line_five(void) {
  line3 q;
  counts k;

  line3_start(&q, "r-third");
  CU_ASSERT_EQUAL(zkr_lock_release(q.la), ZKR_OK);
  th_acquirer_finish(&q.b);
  th_acquirer_finish(&q.c);
  CU_ASSERT_EQUAL(q.b.rc, ZKR_OK);
  CU_ASSERT_EQUAL(q.c.rc, ZKR_OK);
  CU_ASSERT_EQUAL(q.c.release_rc, ZKR_OK);
  k = since(q.p, q.k);
  CU_ASSERT_EQUAL(k.create + k.list + k.get + k.del, 5);
  CU_ASSERT_EQUAL(k.list, 2);
  CU_ASSERT_EQUAL(k.get, 1);
  line3_finish(&q);
}

static int node_gone(void *arg) {
  return th_count_nodes(arg) == 0;
}

/* A hold that lasts gets its own-node watch (one getData on its node). */
static void test_requests_long_hold_watches_own_node(void) {
  char *path = th_path("r-own");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *s;
  zkr_lock *l;
  int before;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = session_via(p);
  zkr__session_set_own_watch_after(s, ZKR__OWN_WATCH_AFTER_NS);
  l = th_lock(s, path);
  before = tp_requests(p, ZOO_GETDATA_OP);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  CU_ASSERT_TRUE(await_requests(p, ZOO_GETDATA_OP, before + 1));
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_GETDATA_OP), before + 1);
  CU_ASSERT_TRUE(th_wait_until(node_gone, path, TH_SETTLE_MS));
  zkr_lock_free(l);
  zkr_session_close(s);
  tp_stop(p);
  th_finish_path(path);
}

/* release_nowait returns before the server has run the delete: with the
 * connection stalled the node is still there when it returns. */
static void test_requests_release_nowait_returns_first(void) {
  char *path = th_path("r-nowait");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *s;
  zkr_lock *l;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = session_via(p);
  l = th_lock(s, path);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, -1), ZKR_OK);
  tp_stall(p, 1);
  CU_ASSERT_EQUAL(zkr_lock_release_nowait(l), ZKR_OK); /* one level: still held */
  CU_ASSERT_EQUAL(zkr_lock_held(l), 1);
  CU_ASSERT_EQUAL(zkr_lock_release_nowait(l), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_held(l), 0);
  CU_ASSERT_EQUAL(zkr_lock_release_nowait(l), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  tp_stall(p, 0);
  CU_ASSERT_TRUE(th_wait_until(node_gone, path, TH_SETTLE_MS));
  zkr_lock_free(l);
  zkr_session_close(s);
  tp_stop(p);
  th_finish_path(path);
}

/* The delete of a release without waiting is lost with the connection; the
 * same thread acquires again at once. The new node sorts after the old one,
 * so the grant waits for the retried delete: one node, a newer token. */
static void test_requests_release_nowait_then_reacquire_across_loss(void) {
  char *path = th_path("r-nowait-loss");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *s;
  zkr_lock *l;
  int64_t t1 = 0, t2 = 0;
  int i;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = session_via(p);
  l = th_lock(s, path);
  for (i = 0; i < 5; i++) {
    CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
    CU_ASSERT_EQUAL(zkr_lock_token(l, &t1), ZKR_OK);
    tp_stall(p, 1);
    CU_ASSERT_EQUAL(zkr_lock_release_nowait(l), ZKR_OK);
    tp_drop_all(p); /* the delete never reached the server */
    tp_stall(p, 0);
    /* After a reconnection and the retried delete. */
    CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, TH_SETTLE_MS), ZKR_OK);
    CU_ASSERT_EQUAL(zkr_lock_token(l, &t2), ZKR_OK);
    CU_ASSERT(t2 > t1);
    CU_ASSERT_EQUAL(th_count_nodes(path), 1);
    CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
    CU_ASSERT_EQUAL(th_count_nodes(path), 0);
  }
  zkr_lock_free(l);
  zkr_session_close(s);
  tp_stop(p);
  th_finish_path(path);
}

int main(void) {
  static const th_test tests[] = {
      {"test_requests_uncontended_three", test_requests_uncontended_three},
      {"test_requests_reentrant_none", test_requests_reentrant_none},
      {"test_requests_contended_five", test_requests_contended_five},
      {"test_requests_predecessor_leaves_one_listing", test_requests_predecessor_leaves_one_listing},
      {"test_requests_third_in_line_five", test_requests_third_in_line_five},
      {"test_requests_long_hold_watches_own_node", test_requests_long_hold_watches_own_node},
      {"test_requests_release_nowait_returns_first", test_requests_release_nowait_returns_first},
      {"test_requests_release_nowait_then_reacquire_across_loss",
       test_requests_release_nowait_then_reacquire_across_loss},
      {NULL, NULL}};

  return th_run("requests", tests);
}
