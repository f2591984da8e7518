/* The multi-lock's contract against a real server: all parts or none,
 * one global order (no deadlock across processes taking the same paths in
 * opposite orders), one deadline for the whole acquisition, the cause of a
 * failure returned with nothing left behind, reentrancy, loss through
 * session expiry or a deleted node, free while held, bad input. Every case
 * leaves no znode behind. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* Two lock paths whose sorted order is (a, b); th_path makes them unique. */
typedef struct two_paths {
  char *a, *b;
} two_paths;

static two_paths paths_new(const char *tag) {
  char buf[64];
  two_paths p;

  snprintf(buf, sizeof(buf), "%s-a", tag);
  p.a = th_path(buf);
  snprintf(buf, sizeof(buf), "%s-b", tag);
  p.b = th_path(buf);
  CU_ASSERT_FATAL(strcmp(p.a, p.b) < 0);
  return p;
}

static void paths_finish(two_paths p) {
  th_finish_path(p.a);
  th_finish_path(p.b);
}

/* A multi-lock over both paths, given in the order (first, second). */
static zkr_multilock *multi_on(zkr_session *s, const char *first, const char *second,
                               const zkr_lock_opts *o) {
  const char *const paths[] = {first, second};
  zkr_multilock *m = NULL;

  CU_ASSERT_EQUAL_FATAL(zkr_multilock_new(&m, s, paths, 2, o), ZKR_OK);
  return m;
}

/* Number of children of path seen through a raw handle (-1 on error). */
static int children(const char *path) {
  zhandle_t *raw = th_raw();
  struct String_vector kids;
  int n = -1, rc;

  if (raw == NULL)
    return -1;
  rc = zoo_get_children(raw, path, 0, &kids);
  if (rc == ZNONODE) {
    n = 0;
  } else if (rc == ZOK) {
    n = kids.count;
    deallocate_String_vector(&kids);
  }
  th_raw_close(raw);
  return n;
}

/* A multi-lock acquire on a thread of its own (holds are per thread): it
 * holds what it got until told to release, like th_acquirer. */
typedef struct macq {
  zkr_multilock *m;
  int timeout_ms;
  int rc, done, release_now, release_rc;
  int64_t started_ms, returned_ms;
  pthread_t t;
} macq;

static int flag(int *p) {
  return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static int macq_released(void *arg) {
  return flag(&((macq *)arg)->release_now);
}

static void *macq_main(void *arg) {
  macq *a = arg;

  a->rc = zkr_multilock_acquire(a->m, a->timeout_ms);
  a->returned_ms = th_now_ms();
  __atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
  th_wait_until(macq_released, a, 4 * TH_SETTLE_MS); /* the test lets go long before */
  a->release_rc = a->rc == ZKR_OK ? zkr_multilock_release(a->m) : ZKR_OK;
  return NULL;
}

static void macq_start(macq *a, zkr_multilock *m, int timeout_ms) {
  memset(a, 0, sizeof(*a));
  a->m = m;
  a->timeout_ms = timeout_ms;
  a->started_ms = th_now_ms();
  CU_ASSERT_EQUAL_FATAL(pthread_create(&a->t, NULL, macq_main, a), 0);
}

static int macq_done(void *arg) {
  return flag(&((macq *)arg)->done);
}

/* Lets a release what it holds, joins it, returns what its acquire did. */
static int macq_finish(macq *a) {
  __atomic_store_n(&a->release_now, 1, __ATOMIC_SEQ_CST);
  pthread_join(a->t, NULL);
  CU_ASSERT_EQUAL(a->release_rc, ZKR_OK);
  return a->rc;
}

/* --- all or none ---------------------------------------------------------- */

static void test_multilock_both_or_none(void) {
  two_paths p = paths_new("ml-both");
  zkr_session *s1 = th_session(0), *s2 = th_session(0);
  zkr_multilock *m1 = multi_on(s1, p.b, p.a, NULL), *m2 = multi_on(s2, p.a, p.b, NULL);
  zkr_lock *single = th_lock(s2, p.b);
  char node[1024], *name;
  zhandle_t *raw = th_raw();
  struct String_vector kids;
  int64_t now, until;
  macq w;

  CU_ASSERT_EQUAL_FATAL(zkr_multilock_acquire(m1, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_multilock_held(m1), 1);
  CU_ASSERT_EQUAL(children(p.a), 1);
  CU_ASSERT_EQUAL(children(p.b), 1);
  now = zkr_monotonic_ns();
  until = zkr_multilock_valid_until(m1);
  CU_ASSERT_TRUE(until > now && until <= now + (int64_t)TH_SESSION_MS * 1000000);
  /* The second waits in line on the first path, taking nothing else. */
  macq_start(&w, m2, -1);
  CU_ASSERT_TRUE(th_await_nodes(p.a, 2));
  CU_ASSERT_EQUAL(children(p.b), 1);
  CU_ASSERT_EQUAL(flag(&w.done), 0);
  CU_ASSERT_EQUAL(zkr_multilock_acquire(m1, 0), ZKR_OK); /* reentrant: counts */
  CU_ASSERT_EQUAL(zkr_multilock_release(m1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_multilock_held(m1), 1);
  CU_ASSERT_EQUAL(flag(&w.done), 0);
  CU_ASSERT_EQUAL(zkr_multilock_release(m1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_multilock_held(m1), 0);
  CU_ASSERT_EQUAL(zkr_multilock_valid_until(m1), 0);
  CU_ASSERT_EQUAL(zkr_multilock_release(m1), ZKR_ENOTHELD);
  CU_ASSERT_TRUE(th_wait_until(macq_done, &w, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(w.rc, ZKR_OK);
  CU_ASSERT_EQUAL(children(p.a), 1);
  CU_ASSERT_EQUAL(children(p.b), 1);
  /* Another thread of the same process contends like a separate client. */
  CU_ASSERT_EQUAL(zkr_multilock_acquire(m2, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zkr_multilock_release(m2), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(macq_finish(&w), ZKR_OK);
  CU_ASSERT_EQUAL(children(p.a), 0);
  CU_ASSERT_EQUAL(children(p.b), 0);

  /* A plain zkr_lock on the second path: a try takes the first, fails on
   * the second, and lets the first go before returning. */
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(single, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(single, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_multilock_acquire(m1, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zkr_multilock_held(m1), 0);
  CU_ASSERT_EQUAL(children(p.a), 0);
  CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, p.b, 0, &kids), ZOK);
  name = strrchr(node, '/') + 1;
  CU_ASSERT_EQUAL(kids.count, 1);
  if (kids.count == 1)
    CU_ASSERT_STRING_EQUAL(kids.data[0], name); /* only the plain lock's */
  deallocate_String_vector(&kids);
  CU_ASSERT_EQUAL(zkr_lock_release(single), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_multilock_acquire(m1, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_multilock_release(m1), ZKR_OK);
  zkr_lock_free(single);
  zkr_multilock_free(m1);
  zkr_multilock_free(m2);
  zkr_session_close(s1);
  zkr_session_close(s2);
  th_raw_close(raw);
  paths_finish(p);
}

/* --- one global order ------------------------------------------------------ */

#define ORDER_ROUNDS 50

typedef struct order_shared {
  int entries, overlaps, failures;
} order_shared;

/* One process: ORDER_ROUNDS holds of a multi-lock over (first, second),
 * each proven exclusive by creating a marker file that must not exist. */
static int order_process(const char *first, const char *second, const char *marker, order_shared *sh) {
  zkr_session *s = th_session(0);
  const char *const paths[] = {first, second};
  zkr_multilock *m = NULL;
  int i, fd, rc;

  if (s == NULL || zkr_multilock_new(&m, s, paths, 2, NULL) != ZKR_OK)
    return 1;
  for (i = 0; i < ORDER_ROUNDS; i++) {
    /* A deadlock would show as a timeout: stop at the first. */
    rc = zkr_multilock_acquire(m, TH_SETTLE_MS);
    if (rc != ZKR_OK) {
      fprintf(stderr, "[pid %d round %d: %s] ", (int)getpid(), i, zkr_err_name(rc));
      __atomic_add_fetch(&sh->failures, 1, __ATOMIC_SEQ_CST);
      break;
    }
    fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd < 0) {
      __atomic_add_fetch(&sh->overlaps, 1, __ATOMIC_SEQ_CST);
    } else {
      usleep(500); /* widens the window an overlap would need */
      close(fd);
      unlink(marker);
    }
    __atomic_add_fetch(&sh->entries, 1, __ATOMIC_SEQ_CST);
    if (zkr_multilock_release(m) != ZKR_OK)
      __atomic_add_fetch(&sh->failures, 1, __ATOMIC_SEQ_CST);
  }
  zkr_multilock_free(m);
  zkr_session_close(s);
  return 0;
}

static void test_multilock_opposite_orders_no_deadlock(void) {
  two_paths p = paths_new("ml-order");
  order_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  char dir[] = "/tmp/zkr-test-multilock-XXXXXX", marker[64];
  pid_t pid[2];
  int i, st;

  CU_ASSERT_FATAL(sh != MAP_FAILED && mkdtemp(dir) != NULL);
  memset(sh, 0, sizeof(*sh));
  snprintf(marker, sizeof(marker), "%s/held", dir);
  for (i = 0; i < 2; i++) {
    pid[i] = fork();
    if (pid[i] == 0)
      _exit(i == 0 ? order_process(p.a, p.b, marker, sh) : order_process(p.b, p.a, marker, sh));
  }
  for (i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(waitpid(pid[i], &st, 0), pid[i]);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  printf("[%d entries, %d overlaps, %d failures] ", sh->entries, sh->overlaps, sh->failures);
  CU_ASSERT_EQUAL(sh->failures, 0);
  CU_ASSERT_EQUAL(sh->overlaps, 0);
  CU_ASSERT_EQUAL(sh->entries, 2 * ORDER_ROUNDS);
  unlink(marker);
  rmdir(dir);
  munmap(sh, sizeof(*sh));
  paths_finish(p);
}

/* --- one deadline ---------------------------------------------------------- */

/* The first path is free only halfway through the timeout, the second never:
 * the acquisition must give up at the one deadline, not wait the whole
 * timeout again for the second part. */
static void test_multilock_one_deadline(void) {
  const int timeout = TH_SESSION_MS * TH_TIME_SCALE, slack = timeout / 4;
  two_paths p = paths_new("ml-deadline");
  zkr_session *s1 = th_session(0), *s2 = th_session(0);
  zkr_multilock *m = multi_on(s1, p.a, p.b, NULL);
  zkr_lock *la = th_lock(s2, p.a), *lb = th_lock(s2, p.b);
  int64_t ms;
  macq w;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(la, -1), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(lb, -1), ZKR_OK);
  macq_start(&w, m, timeout);
  CU_ASSERT_TRUE(th_await_nodes(p.a, 2));
  /* Time itself is what is tested here: half the deadline must pass. */
  ms = timeout / 2 - (th_now_ms() - w.started_ms);
  if (ms > 0)
    usleep((useconds_t)ms * 1000);
  CU_ASSERT_EQUAL(zkr_lock_release(la), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(macq_done, &w, 2 * timeout));
  ms = w.returned_ms - w.started_ms;
  printf("[acquire of %d ms, first part after %d ms, returned after %lld ms] ", timeout, timeout / 2,
         (long long)ms);
  CU_ASSERT_EQUAL(w.rc, ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(ms >= timeout && ms < timeout + slack);
  /* Nothing left: the first part was let go, the second's waiter withdrawn. */
  CU_ASSERT_EQUAL(children(p.a), 0);
  CU_ASSERT_EQUAL(children(p.b), 1);
  CU_ASSERT_EQUAL(zkr_multilock_held(m), 0);
  CU_ASSERT_EQUAL(macq_finish(&w), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zkr_lock_release(lb), ZKR_OK);
  zkr_lock_free(la);
  zkr_lock_free(lb);
  zkr_multilock_free(m);
  zkr_session_close(s1);
  zkr_session_close(s2);
  paths_finish(p);
}

/* --- the cause of a failure ------------------------------------------------ */

/* The second path refuses us (its ACL grants no CREATE): the acquisition
 * returns that cause and lets the first part go. */
static void test_multilock_failure_cause(void) {
  struct ACL read_only[] = {{ZOO_PERM_READ, {"world", "anyone"}}};
  struct ACL_vector acl = {1, read_only};
  two_paths p = paths_new("ml-cause");
  zhandle_t *raw = th_raw();
  zkr_session *s = th_session(0);
  zkr_multilock *m = multi_on(s, p.b, p.a, NULL);

  zoo_create(raw, "/zkr-test", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0); /* may exist */
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, p.b, "", 0, &acl, 0, NULL, 0), ZOK);
  CU_ASSERT_EQUAL(zkr_multilock_acquire(m, TH_SETTLE_MS), ZKR_ENOAUTH);
  CU_ASSERT_EQUAL(zkr_multilock_held(m), 0);
  CU_ASSERT_EQUAL(children(p.a), 0);
  CU_ASSERT_EQUAL(children(p.b), 0);
  CU_ASSERT_EQUAL(zkr_multilock_release(m), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(zoo_delete(raw, p.b, -1), ZOK);
  zkr_multilock_free(m);
  zkr_session_close(s);
  th_raw_close(raw);
  paths_finish(p);
}

/* --- loss ------------------------------------------------------------------ */

typedef struct lost_rec {
  int n;
  int reason; /* of the part passed to the first call */
} lost_rec;

/* The reason is recorded before the count is published: a test that awaits
 * the count then reads the reason (the reverse order let it read NONE). */
static void on_lost(zkr_lock *l, void *arg) {
  lost_rec *r = arg;
  int none = ZKR_LOST_NONE;

  __atomic_compare_exchange_n(&r->reason, &none, zkr_lock_lost_reason(l), 0, __ATOMIC_SEQ_CST,
                              __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&r->n, 1, __ATOMIC_SEQ_CST);
}

static int lost_seen(void *arg) {
  return flag(&((lost_rec *)arg)->n) > 0;
}

static zkr_multilock *multi_lost(zkr_session *s, two_paths p, lost_rec *r) {
  zkr_lock_opts o;

  memset(&o, 0, sizeof(o));
  o.on_lost = on_lost;
  o.arg = r;
  return multi_on(s, p.a, p.b, &o);
}

static void test_multilock_session_expiry(void) {
  two_paths p = paths_new("ml-expire");
  zkr_session *s = th_session(0);
  lost_rec r = {0, ZKR_LOST_NONE};
  zkr_multilock *m = multi_lost(s, p, &r);

  CU_ASSERT_EQUAL_FATAL(zkr_multilock_acquire(m, -1), ZKR_OK);
  CU_ASSERT_EQUAL(th_expire(s), 0);
  CU_ASSERT_TRUE(th_wait_until(lost_seen, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_multilock_held(m), 0);
  CU_ASSERT_EQUAL(zkr_multilock_valid_until(m), 0);
  CU_ASSERT_EQUAL(flag(&r.reason), ZKR_LOST_EXPIRED);
  CU_ASSERT_EQUAL(zkr_multilock_acquire(m, 0), ZKR_ESESSION); /* reentrant: no count on a lost hold */
  CU_ASSERT_EQUAL(zkr_multilock_release(m), ZKR_ESESSION);
  CU_ASSERT_EQUAL(zkr_multilock_release(m), ZKR_ENOTHELD);
  CU_ASSERT_TRUE(th_await_nodes(p.a, 0));
  CU_ASSERT_TRUE(th_await_nodes(p.b, 0));
  zkr_multilock_free(m);
  zkr_session_close(s);
  CU_ASSERT_EQUAL(r.n, 1); /* once for the whole hold, though both parts were lost */
  paths_finish(p);
}

static int node_watched(void *arg) {
  return th_watched(arg);
}

static void test_multilock_part_deleted(void) {
  two_paths p = paths_new("ml-deleted");
  zkr_session *s = th_session(0);
  lost_rec r = {0, ZKR_LOST_NONE};
  zkr_multilock *m = multi_lost(s, p, &r);
  zhandle_t *raw = th_raw();
  struct String_vector kids;
  char node[1100];

  CU_ASSERT_EQUAL_FATAL(zkr_multilock_acquire(m, -1), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, p.b, 0, &kids), ZOK);
  CU_ASSERT_EQUAL_FATAL(kids.count, 1);
  snprintf(node, sizeof(node), "%s/%s", p.b, kids.data[0]);
  deallocate_String_vector(&kids);
  /* The own-node watch is set asynchronously after the grant: await it. */
  CU_ASSERT_TRUE(th_wait_until(node_watched, node, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE(th_wait_until(lost_seen, &r, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(flag(&r.reason), ZKR_LOST_DELETED);
  CU_ASSERT_EQUAL(zkr_multilock_held(m), 0);
  CU_ASSERT_EQUAL(zkr_multilock_release(m), ZKR_ELOST);
  CU_ASSERT_EQUAL(children(p.a), 0); /* the intact part was released too */
  CU_ASSERT_EQUAL(children(p.b), 0);
  /* The multi-lock is usable again. */
  CU_ASSERT_EQUAL(zkr_multilock_acquire(m, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_multilock_release(m), ZKR_OK);
  CU_ASSERT_EQUAL(r.n, 1);
  zkr_multilock_free(m);
  zkr_session_close(s);
  th_raw_close(raw);
  paths_finish(p);
}

/* The first part is lost while the second is awaited: the acquisition
 * returns that cause once the second comes, lets it go, and on_lost stays
 * silent (the caller never held the multi-lock). */
static void test_multilock_part_lost_while_waiting(void) {
  two_paths p = paths_new("ml-lostwait");
  zkr_session *s1 = th_session(0), *s2 = th_session(0);
  lost_rec r = {0, ZKR_LOST_NONE};
  zkr_multilock *m = multi_lost(s1, p, &r);
  zkr_lock *lb = th_lock(s2, p.b);
  zhandle_t *raw = th_raw();
  struct String_vector kids;
  char node[1100];
  macq w;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(lb, -1), ZKR_OK);
  macq_start(&w, m, -1);
  CU_ASSERT_TRUE(th_await_nodes(p.b, 2)); /* holds the first, waits for the second */
  CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, p.a, 0, &kids), ZOK);
  CU_ASSERT_EQUAL_FATAL(kids.count, 1);
  snprintf(node, sizeof(node), "%s/%s", p.a, kids.data[0]);
  deallocate_String_vector(&kids);
  CU_ASSERT_TRUE(th_wait_until(node_watched, node, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_EQUAL(zkr_lock_release(lb), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(macq_done, &w, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(macq_finish(&w), ZKR_ELOST);
  CU_ASSERT_EQUAL(children(p.a), 0);
  CU_ASSERT_EQUAL(children(p.b), 0);
  zkr_multilock_free(m);
  zkr_lock_free(lb);
  zkr_session_close(s1);
  zkr_session_close(s2);
  CU_ASSERT_EQUAL(r.n, 0);
  th_raw_close(raw);
  paths_finish(p);
}

/* --- free ------------------------------------------------------------------ */

static void test_multilock_free_while_held(void) {
  two_paths p = paths_new("ml-free");
  zkr_session *s = th_session(0);
  zkr_multilock *m = multi_on(s, p.a, p.b, NULL);

  CU_ASSERT_EQUAL_FATAL(zkr_multilock_acquire(m, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_multilock_acquire(m, -1), ZKR_OK);
  CU_ASSERT_EQUAL(children(p.a), 1);
  CU_ASSERT_EQUAL(children(p.b), 1);
  zkr_multilock_free(m);
  CU_ASSERT_EQUAL(children(p.a), 0); /* released before free returned */
  CU_ASSERT_EQUAL(children(p.b), 0);
  zkr_multilock_free(NULL);
  zkr_session_close(s);
  paths_finish(p);
}

/* --- bad input ------------------------------------------------------------- */

static void test_multilock_bad_input(void) {
  zkr_session *s = th_session(0);
  const char *good[] = {"/zkr-test/ml-bad-x", "/zkr-test/ml-bad-y"};
  const char *bad_path[] = {"/zkr-test/ml-bad-x", "relative"};
  const char *null_path[] = {"/zkr-test/ml-bad-x", NULL};
  const char *dup[] = {"/zkr-test/ml-bad-y", "/zkr-test/ml-bad-x", "/zkr-test/ml-bad-y"};
  struct ACL_vector empty = {0, NULL};
  zkr_multilock *m = NULL;
  zkr_lock_opts o;

  CU_ASSERT_EQUAL(zkr_multilock_new(NULL, s, good, 2, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_multilock_new(&m, NULL, good, 2, NULL), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(m);
  CU_ASSERT_EQUAL(zkr_multilock_new(&m, s, NULL, 2, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_multilock_new(&m, s, good, 0, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_multilock_new(&m, s, good, -1, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_multilock_new(&m, s, bad_path, 2, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_multilock_new(&m, s, null_path, 2, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_multilock_new(&m, s, dup, 3, NULL), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(m);
  /* An option zkr_lock_new refuses: nothing is kept (ASan's leak check
   * would see a part or the array left behind). */
  memset(&o, 0, sizeof(o));
  o.acl = &empty;
  CU_ASSERT_EQUAL(zkr_multilock_new(&m, s, good, 2, &o), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(m);
  CU_ASSERT_EQUAL(th_count_nodes("/zkr-test/ml-bad-x"), 0);
  CU_ASSERT_EQUAL(th_count_nodes("/zkr-test/ml-bad-y"), 0);
  CU_ASSERT_EQUAL(zkr_multilock_acquire(NULL, 0), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_multilock_release(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_multilock_held(NULL), 0);
  CU_ASSERT_EQUAL(zkr_multilock_valid_until(NULL), 0);
  /* One path is a valid multi-lock. */
  CU_ASSERT_EQUAL_FATAL(zkr_multilock_new(&m, s, good, 1, NULL), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_multilock_release(m), ZKR_ENOTHELD);
  zkr_multilock_free(m);
  zkr_session_close(s);
}

int main(void) {
  static const th_test tests[] = {
      {"test_multilock_both_or_none", test_multilock_both_or_none},
      {"test_multilock_opposite_orders_no_deadlock", test_multilock_opposite_orders_no_deadlock},
      {"test_multilock_one_deadline", test_multilock_one_deadline},
      {"test_multilock_failure_cause", test_multilock_failure_cause},
      {"test_multilock_session_expiry", test_multilock_session_expiry},
      {"test_multilock_part_deleted", test_multilock_part_deleted},
      {"test_multilock_part_lost_while_waiting", test_multilock_part_lost_while_waiting},
      {"test_multilock_free_while_held", test_multilock_free_while_held},
      {"test_multilock_bad_input", test_multilock_bad_input},
      {NULL, NULL}};

  return th_run("multilock", tests);
}
