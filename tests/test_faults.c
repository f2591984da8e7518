/* Fault scenarios of the lock against a real server: expiry, SIGKILL, GC
 * pause, lost create replies, stalled connections, cancellation, queue
 * surgery and hostile directories. Ensemble scenarios live in
 * test_faults_ensemble.c. Every case ends with no znode left. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zookeeper/proto.h>

#include "harness.h"
#include "history.h"
#include "proxy.h"

#define T_MS 2000 /* session timeout of the fault cases */

/* --- small helpers ------------------------------------------------------- */

typedef struct lost_count {
  int n;
} lost_count;

static void count_lost(zkr_lock *l, void *arg) {
  (void)l;
  __atomic_add_fetch(&((lost_count *)arg)->n, 1, __ATOMIC_SEQ_CST);
}

static int lost_fired(void *arg) {
  return __atomic_load_n(&((lost_count *)arg)->n, __ATOMIC_SEQ_CST) > 0;
}

static zkr_lock *new_lock(zkr_session *s, const char *path, lost_count *lc) {
  zkr_lock_opts o;
  zkr_lock *l = NULL;

  memset(&o, 0, sizeof(o));
  o.on_lost = lc != NULL ? count_lost : NULL;
  o.arg = lc;
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, &o), ZKR_OK);
  return l;
}

/* A child process that holds a lock and reports over a pipe. */
typedef struct shared {
  int64_t token;
  int64_t valid_until;
  int64_t resumed_at;
  int held_after_resume;
  int fence_result;
  int lost_calls;
  int release_rc;
} shared;

static shared *shared_new(void) {
  shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CU_ASSERT_FATAL(sh != MAP_FAILED);
  memset(sh, 0, sizeof(*sh));
  return sh;
}

static void read_byte(int fd) {
  char c;
  CU_ASSERT_EQUAL(read(fd, &c, 1), 1);
}

static void write_byte(int fd) {
  CU_ASSERT_EQUAL(write(fd, "x", 1), 1);
}

/* --- 1. expiry on demand --------------------------------------------------- */

static void test_faults_expired_holder_hands_over(void) {
  char *path = th_path("f-expire");
  zkr_session *a = th_session(T_MS), *b = th_session(T_MS);
  lost_count lc = {0};
  zkr_lock *la = new_lock(a, path, &lc), *lb = new_lock(b, path, NULL);
  th_fence *fence = th_fence_create();
  int64_t ta = 0, tb = 0;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(la, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_token(la, &ta), ZKR_OK);
  CU_ASSERT_TRUE(th_fence_write(fence, ta));
  CU_ASSERT_EQUAL(th_expire(a), 0);
  CU_ASSERT_EQUAL(zkr_lock_acquire(lb, TH_SETTLE_FOR(T_MS)), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_token(lb, &tb), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(lost_fired, &lc, TH_SETTLE_FOR(T_MS)));
  CU_ASSERT_EQUAL(lc.n, 1);
  CU_ASSERT_EQUAL(zkr_lock_held(la), 0);
  CU_ASSERT_EQUAL(zkr_lock_release(la), ZKR_ESESSION);
  CU_ASSERT_TRUE(ta < tb);
  CU_ASSERT_TRUE(th_fence_write(fence, tb));
  CU_ASSERT_FALSE(th_fence_write(fence, ta)); /* the old holder is fenced off */
  CU_ASSERT_EQUAL(zkr_lock_release(lb), ZKR_OK);
  zkr_lock_free(la);
  zkr_lock_free(lb);
  zkr_session_close(a);
  zkr_session_close(b);
  th_fence_destroy(fence);
  CU_ASSERT_EQUAL(lc.n, 1); /* exactly once, also through close */
  th_finish_path(path);
}

/* --- 2. SIGKILL -------------------------------------------------------------- */

/* In a child process: takes the lock at path and keeps it. */
static int take_lock(zkr_session *s, const char *path) {
  zkr_lock *l = NULL;
  int rc = zkr_lock_new(&l, s, path, NULL);

  return rc == ZKR_OK ? zkr_lock_acquire(l, -1) : rc;
}

static void test_faults_holder_sigkill(void) {
  char *path = th_path("f-kill");
  pid_t pid = th_child_holding(take_lock, path, T_MS);
  int64_t t0;
  zkr_session *s;
  zkr_lock *l;

  CU_ASSERT_FATAL(pid > 0);
  s = th_session(T_MS);
  l = new_lock(s, path, NULL);
  th_child_kill(pid);
  t0 = th_now_ms();
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, TH_SETTLE_FOR(T_MS)), ZKR_OK);
  printf("[takeover after SIGKILL: %lld ms, session timeout %d ms, bound %d ms] ",
         (long long)(th_now_ms() - t0), T_MS, TH_EXPIRED_BY_MS(T_MS));
  CU_ASSERT_TRUE(th_now_ms() - t0 < TH_EXPIRED_BY_MS(T_MS));
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  zkr_lock_free(l);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- 3. GC pause ----------------------------------------------------------------- */

static void test_faults_gc_pause(void) {
  char *path = th_path("f-pause");
  th_hist *h = th_hist_create(64);
  th_fence *fence = th_fence_create();
  shared *sh = shared_new();
  int up[2], down[2], st;
  int64_t paused_from, paused_to, tb = 0;
  th_hist_opts ho;
  th_hist_report rep;
  pid_t pid;
  zkr_session *s;
  zkr_lock *l;

  CU_ASSERT_EQUAL_FATAL(pipe(up), 0);
  CU_ASSERT_EQUAL_FATAL(pipe(down), 0);
  pid = fork();
  if (pid == 0) {
    zkr_session *cs = th_session(T_MS);
    lost_count lc = {0};
    zkr_lock_opts o;
    zkr_lock *cl = NULL;

    memset(&o, 0, sizeof(o));
    o.on_lost = count_lost;
    o.arg = &lc;
    if (cs == NULL || zkr_lock_new(&cl, cs, path, &o) != ZKR_OK || zkr_lock_acquire(cl, -1) != ZKR_OK)
      _exit(1);
    zkr_lock_token(cl, &sh->token);
    sh->valid_until = zkr_lock_valid_until(cl);
    th_hist_enter(h, 1, sh->token);
    if (write(up[1], "x", 1) != 1) /* holding: the parent pauses us now */
      _exit(1);
    if (read(down[0], &st, 1) != 1) /* continued: we write as a paused process would */
      _exit(1);
    sh->resumed_at = zkr_monotonic_ns();
    sh->held_after_resume = zkr_lock_held(cl);
    sh->fence_result = th_fence_write(fence, sh->token);
    th_hist_exit(h, 1, sh->token);
    th_wait_until(lost_fired, &lc, TH_SETTLE_FOR(T_MS));
    sh->lost_calls = lc.n;
    sh->release_rc = zkr_lock_release(cl);
    zkr_lock_free(cl);
    zkr_session_close(cs);
    _exit(0);
  }
  read_byte(up[0]);
  paused_from = th_hist_now_ns();
  kill(pid, SIGSTOP);
  s = th_session(T_MS);
  l = new_lock(s, path, NULL);
  /* The paused holder's session expires on the server; we take over. */
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, TH_SETTLE_FOR(T_MS)), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_token(l, &tb), ZKR_OK);
  th_hist_enter(h, 2, tb);
  CU_ASSERT_TRUE(th_fence_write(fence, tb));
  /* Keep the pause at 2.5x the session timeout in all. */
  while (th_hist_now_ns() - paused_from < (int64_t)T_MS * 2500000)
    usleep(10000); /* the pause itself is the fault being tested */
  paused_to = th_hist_now_ns();
  kill(pid, SIGCONT);
  th_hist_paused(h, 1, paused_from, paused_to);
  write_byte(down[1]);
  CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
  CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  th_hist_exit(h, 2, tb);

  /* It learned at once, and its deadline had passed before it resumed. */
  CU_ASSERT_TRUE(sh->valid_until > 0 && sh->valid_until < paused_to);
  CU_ASSERT_EQUAL(sh->held_after_resume, 0);
  CU_ASSERT_EQUAL(sh->fence_result, 0); /* its stale write was rejected */
  CU_ASSERT_EQUAL(sh->lost_calls, 1);
  CU_ASSERT_EQUAL(sh->release_rc, ZKR_ESESSION);
  CU_ASSERT_TRUE(sh->token < tb);
  memset(&ho, 0, sizeof(ho));
  CU_ASSERT_EQUAL(th_hist_check(h, &ho, &rep), 0);
  CU_ASSERT_EQUAL(rep.overlaps, 0);
  CU_ASSERT_EQUAL(rep.fenced_overlaps, 1); /* reported, not hidden */
  CU_ASSERT_EQUAL(rep.token_regressions, 0);

  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  zkr_lock_free(l);
  zkr_session_close(s);
  th_hist_destroy(h);
  th_fence_destroy(fence);
  munmap(sh, sizeof(*sh));
  close(up[0]);
  close(up[1]);
  close(down[0]);
  close(down[1]);
  th_finish_path(path);
}

/* --- 4. lost create reply ---------------------------------------------------------- */

static void test_faults_lost_create_reply_100(void) {
  char *path = th_path("f-lostcreate");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *other = th_session(T_MS);
  zkr_lock *lo = new_lock(other, path, NULL);
  int i, ok = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  for (i = 0; i < 100; i++) {
    zkr_session *s = th_session_at(tp_hosts(p), TH_SESSION_MS, 0);
    zkr_lock *l;
    int fired = tp_cut_fired(p);

    if (s == NULL)
      break;
    l = new_lock(s, path, NULL);
    CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE2_OP, 1), 0);
    if (zkr_lock_acquire(l, TH_SETTLE_MS) == ZKR_OK && tp_cut_fired(p) == fired + 1 &&
        th_count_nodes(path) == 1) {
      ok++;
      CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
    }
    /* No orphan: nothing is left, and someone else gets the lock at once. */
    CU_ASSERT_EQUAL(th_count_nodes(path), 0);
    zkr_lock_free(l);
    zkr_session_close(s);
    if (i % 25 == 0) {
      CU_ASSERT_EQUAL(zkr_lock_acquire(lo, 0), ZKR_OK);
      CU_ASSERT_EQUAL(zkr_lock_release(lo), ZKR_OK);
    }
  }
  printf("[%d/100 trials recovered their own node] ", ok);
  CU_ASSERT_EQUAL(ok, 100);
  zkr_lock_free(lo);
  zkr_session_close(other);
  tp_stop(p);
  th_finish_path(path);
}

/* --- 5. stalled connection --------------------------------------------------------- */

typedef struct stamp {
  int64_t at;
} stamp;

static void stamp_lost(zkr_lock *l, void *arg) {
  (void)l;
  __atomic_store_n(&((stamp *)arg)->at, zkr_monotonic_ns(), __ATOMIC_SEQ_CST);
}

static int stamped(void *arg) {
  return __atomic_load_n(&((stamp *)arg)->at, __ATOMIC_SEQ_CST) != 0;
}

static void test_faults_stall_steps_down_first(void) {
  char *path = th_path("f-stall");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *a, *b;
  zkr_lock *la, *lb;
  zkr_lock_opts o;
  stamp lost = {0};
  int64_t granted, until;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  a = th_session_at(tp_hosts(p), T_MS, 0);
  b = th_session(T_MS);
  memset(&o, 0, sizeof(o));
  o.on_lost = stamp_lost;
  o.arg = &lost;
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&la, a, path, &o), ZKR_OK);
  lb = new_lock(b, path, NULL);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(la, -1), ZKR_OK);
  tp_stall(p, 1); /* the process runs on; its server is unreachable */
  until = zkr_lock_valid_until(la);
  CU_ASSERT_EQUAL(zkr_lock_acquire(lb, TH_SETTLE_FOR(T_MS)), ZKR_OK);
  granted = zkr_monotonic_ns();
  /* The guarantee: our deadline (which held() checks itself) passed before
   * the server could hand the lock on. on_lost follows on the event thread,
   * normally also before; under load a little later. */
  CU_ASSERT_EQUAL(zkr_lock_held(la), 0);
  CU_ASSERT_TRUE(until > 0 && until <= granted);
  CU_ASSERT_TRUE(th_wait_until(stamped, &lost, TH_SETTLE_FOR(T_MS)));
  printf("[validity deadline %.0f ms and on_lost %.0f ms before the server handed the lock on] ",
         (double)(granted - until) / 1e6, (double)(granted - lost.at) / 1e6);
  CU_ASSERT_EQUAL(zkr_lock_release(lb), ZKR_OK);
  tp_stall(p, 0);
  CU_ASSERT_EQUAL(zkr_lock_release(la), ZKR_ESESSION);
  zkr_lock_free(la);
  zkr_lock_free(lb);
  zkr_session_close(a);
  zkr_session_close(b);
  tp_stop(p);
  th_finish_path(path);
}

/* --- 8. give-up paths: timeout, cancellation, free --------------------------------- */

typedef struct waiter_arg {
  zkr_lock *l;
  int timeout_ms;
  int rc;
  int started;
} waiter_arg;

static void *waiter_main(void *p) {
  waiter_arg *w = p;

  __atomic_store_n(&w->started, 1, __ATOMIC_SEQ_CST);
  w->rc = zkr_lock_acquire(w->l, w->timeout_ms);
  if (w->rc == ZKR_OK)
    zkr_lock_release(w->l);
  return NULL;
}

static void test_faults_give_up_leaves_nothing(void) {
  char *path = th_path("f-giveup");
  zkr_session *s = th_session(T_MS);
  zkr_lock *holder = new_lock(s, path, NULL), *w1 = new_lock(s, path, NULL), *w2 = new_lock(s, path, NULL);
  waiter_arg a1 = {w1, -1, 99, 0}, a2 = {w2, -1, 99, 0};
  pthread_t t1, t2;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(holder, -1), ZKR_OK);
  /* Timeout: no late grant even though the holder releases right after. */
  CU_ASSERT_EQUAL(zkr_lock_acquire(w1, 300), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  /* Cancellation of a thread blocked in acquire. */
  pthread_create(&t1, NULL, waiter_main, &a1);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  pthread_cancel(t1);
  pthread_join(t1, NULL);
  CU_ASSERT_EQUAL(a1.rc, 99); /* it never returned */
  CU_ASSERT_TRUE(th_await_nodes(path, 1));
  /* Free while another thread waits. */
  pthread_create(&t2, NULL, waiter_main, &a2);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  zkr_lock_free(w2);
  pthread_join(t2, NULL);
  CU_ASSERT_EQUAL(a2.rc, ZKR_ECLOSED);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  CU_ASSERT_EQUAL(zkr_lock_release(holder), ZKR_OK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 0);
  CU_ASSERT_EQUAL(zkr_lock_acquire(w1, 0), ZKR_OK); /* the cancelled one blocks nobody */
  CU_ASSERT_EQUAL(zkr_lock_release(w1), ZKR_OK);
  zkr_lock_free(holder);
  zkr_lock_free(w1);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- 9. a predecessor leaves mid-queue ------------------------------------------------ */

typedef struct order {
  pthread_mutex_t mu;
  int seq[8];
  int n;
} order;

typedef struct queued {
  zkr_lock *l;
  int id;
  int timeout_ms;
  order *ord;
  int rc;
} queued;

static void *queued_main(void *p) {
  queued *q = p;

  q->rc = zkr_lock_acquire(q->l, q->timeout_ms);
  if (q->rc == ZKR_OK) {
    pthread_mutex_lock(&q->ord->mu);
    q->ord->seq[q->ord->n++] = q->id;
    pthread_mutex_unlock(&q->ord->mu);
    zkr_lock_release(q->l);
  }
  return NULL;
}

static void test_faults_predecessor_leaves_mid_queue(void) {
  char *path = th_path("f-midqueue");
  zkr_session *s = th_session(T_MS);
  zkr_lock *h = new_lock(s, path, NULL);
  order ord = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
  queued q[3];
  pthread_t t[3];
  int i;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(h, -1), ZKR_OK);
  for (i = 0; i < 3; i++) {
    q[i].l = new_lock(s, path, NULL);
    q[i].id = i + 1;
    /* The middle one gives up, once the test saw its node and queued the
     * next behind it (a few round trips each); the others wait for the
     * holder, who releases after that. */
    q[i].timeout_ms = i == 1 ? 2 * TH_LATE_MS : TH_QUEUE_MS(3);
    q[i].ord = &ord;
    q[i].rc = 99;
    pthread_create(&t[i], NULL, queued_main, &q[i]);
    CU_ASSERT_TRUE(th_await_nodes(path, i + 2));
  }
  pthread_join(t[1], NULL);
  CU_ASSERT_EQUAL(q[1].rc, ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(th_await_nodes(path, 3));
  CU_ASSERT_EQUAL(zkr_lock_release(h), ZKR_OK);
  pthread_join(t[0], NULL);
  pthread_join(t[2], NULL);
  CU_ASSERT_EQUAL(q[0].rc, ZKR_OK);
  CU_ASSERT_EQUAL(q[2].rc, ZKR_OK); /* re-watched past the leaver: no lost wake-up */
  CU_ASSERT_EQUAL(ord.n, 2);
  CU_ASSERT_EQUAL(ord.seq[0], 1);
  CU_ASSERT_EQUAL(ord.seq[1], 3);
  for (i = 0; i < 3; i++)
    zkr_lock_free(q[i].l);
  zkr_lock_free(h);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- 10. hostile directory -------------------------------------------------------------- */

static void test_faults_hostile_directory(void) {
  static const char *const junk[] = {
      "config", "x-lock-abc", "zz-lock--000000001", "h-lock-99999999999", "k__lock__12x",
      "-lock-", "__lock__"};
  char *path = th_path("f-hostile"), node[1024], created[1024];
  zhandle_t *raw = th_raw();
  zkr_session *s = th_session(T_MS);
  zkr_lock *l = new_lock(s, path, NULL);
  size_t i;

  CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, 0), ZKR_OK); /* creates the directory */
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  /* Persistent junk, some with contender-like names sorting first. */
  for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
    snprintf(node, sizeof(node), "%s/%s", path, junk[i]);
    CU_ASSERT_EQUAL(zoo_create(raw, node, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  }
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, TH_SETTLE_MS), ZKR_OK); /* no crash, no deadlock */
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  /* Another session's live contender does block us, until it goes. */
  snprintf(node, sizeof(node), "%s/_c_00000000-0000-4000-8000-000000000000-lock-", path);
  CU_ASSERT_EQUAL(zoo_create(raw, node, "raw", 3, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, created,
                             sizeof(created)),
                  ZOK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zoo_delete(raw, created, -1), ZOK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  /* Nothing of others was deleted. */
  CU_ASSERT_EQUAL(th_count_nodes(path), (int)(sizeof(junk) / sizeof(junk[0])));
  zkr_lock_free(l);
  zkr_session_close(s);
  th_delete_tree(path);
  th_raw_close(raw);
  free(path);
}

int main(void) {
  static const th_test tests[] = {
      {"test_faults_expired_holder_hands_over", test_faults_expired_holder_hands_over},
      {"test_faults_holder_sigkill", test_faults_holder_sigkill},
      {"test_faults_gc_pause", test_faults_gc_pause},
      {"test_faults_lost_create_reply_100", test_faults_lost_create_reply_100},
      {"test_faults_stall_steps_down_first", test_faults_stall_steps_down_first},
      {"test_faults_give_up_leaves_nothing", test_faults_give_up_leaves_nothing},
      {"test_faults_predecessor_leaves_mid_queue", test_faults_predecessor_leaves_mid_queue},
      {"test_faults_hostile_directory", test_faults_hostile_directory},
      {NULL, NULL}};

  return th_run("faults", tests);
}
