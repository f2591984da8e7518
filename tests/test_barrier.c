/* The barrier recipes' contract against a real server: a barrier wait
 * returns when the barrier is removed (and only then), timeouts and
 * session loss; a double barrier lets its participants (threads, separate
 * processes) enter only once all arrived and leave only once all left; a
 * participant killed, or giving up, breaks the enter of the others without
 * a hang, and is the normal way out of a leave; timeouts leave no node;
 * Curator's layout; bad input. Every case leaves no znode behind. */
#define _GNU_SOURCE
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proxy.h"

/* --- helpers -------------------------------------------------------------------------------- */

static zkr_barrier *barrier_on(zkr_session *s, const char *path) {
  zkr_barrier *b = NULL;

  CU_ASSERT_EQUAL_FATAL(zkr_barrier_new(&b, s, path, NULL), ZKR_OK);
  return b;
}

static zkr_double_barrier *db_on(zkr_session *s, const char *path, int n) {
  zkr_double_barrier *db = NULL;

  CU_ASSERT_EQUAL_FATAL(zkr_double_barrier_new(&db, s, path, n, NULL), ZKR_OK);
  return db;
}

/* One blocking call on a thread of its own: a barrier wait, or a double
 * barrier's enter or leave. */
enum step { WAIT, ENTER, LEAVE };

typedef struct member {
  zkr_barrier *b;
  zkr_double_barrier *db;
  int step, timeout_ms;
  int rc, done;
  int64_t called_ms, returned_ms;
  pthread_t t;
} member;

static void *member_main(void *arg) {
  member *m = arg;

  m->called_ms = th_now_ms();
  if (m->step == WAIT)
    m->rc = zkr_barrier_wait(m->b, m->timeout_ms);
  else if (m->step == ENTER)
    m->rc = zkr_double_barrier_enter(m->db, m->timeout_ms);
  else
    m->rc = zkr_double_barrier_leave(m->db, m->timeout_ms);
  m->returned_ms = th_now_ms();
  __atomic_store_n(&m->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void member_start(member *m, int step, int timeout_ms) {
  m->step = step;
  m->timeout_ms = timeout_ms;
  m->done = 0;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&m->t, NULL, member_main, m), 0);
}

static int member_done(void *arg) {
  return __atomic_load_n(&((member *)arg)->done, __ATOMIC_SEQ_CST);
}

static int member_join(member *m) {
  pthread_join(m->t, NULL);
  return m->rc;
}

/* Number of children of path (0 if absent), read through session s right
 * after one of its calls returned: the server runs a session's requests in
 * order, so every delete the call sent has run by then. */
static int kids_seen_by(zkr_session *s, const char *path) {
  struct String_vector kids = {0, NULL};
  int rc, n;

  rc = zoo_get_children(zkr_session_zhandle(s), path, 0, &kids);
  CU_ASSERT_TRUE(rc == ZOK || rc == ZNONODE);
  n = rc == ZOK ? kids.count : 0;
  deallocate_String_vector(&kids);
  return n;
}

/* 1 if path's children include "ready" (through s). */
static int ready_seen_by(zkr_session *s, const char *path) {
  char ready[1100];
  struct Stat st;

  snprintf(ready, sizeof(ready), "%s/ready", path);
  return zoo_exists(zkr_session_zhandle(s), ready, 0, &st) == ZOK;
}

/* --- the barrier ------------------------------------------------------------------------------ */

typedef struct watched_arg {
  const char *path;
} watched_arg;

static int is_watched(void *arg) {
  return th_watched(((watched_arg *)arg)->path);
}

static void test_barrier_wait_returns_when_removed(void) {
  char *path = th_path("barrier-removed");
  zkr_session *a = th_session(0), *b = th_session(0);
  zkr_barrier *setter = barrier_on(a, path), *waiter = barrier_on(b, path);
  watched_arg wa = {path};
  member m;
  int64_t removed;

  memset(&m, 0, sizeof(m));
  m.b = waiter;
  CU_ASSERT_EQUAL_FATAL(zkr_barrier_set(setter), ZKR_OK);
  member_start(&m, WAIT, 2 * TH_SETTLE_MS); /* bounded: a regression fails, never hangs */
  /* Waiting: its watch is on the server, and it has not returned. */
  CU_ASSERT_TRUE(th_wait_until(is_watched, &wa, TH_SETTLE_MS));
  CU_ASSERT_FALSE(member_done(&m));
  removed = th_now_ms();
  CU_ASSERT_EQUAL(zkr_barrier_remove(setter), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(member_done, &m, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(member_join(&m), ZKR_OK);
  CU_ASSERT_TRUE(m.returned_ms - removed <= TH_LATE_MS);
  /* Not set: a wait returns at once, without a watch or a node left. */
  CU_ASSERT_EQUAL(zkr_barrier_wait(waiter, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_barrier_wait(waiter, 0), ZKR_OK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 0);
  zkr_barrier_free(setter);
  zkr_barrier_free(waiter);
  zkr_session_close(a);
  zkr_session_close(b);
  th_finish_path(path);
}

static void test_barrier_wait_timeout(void) {
  char *path = th_path("barrier-timeout");
  zkr_session *s = th_session(0);
  zkr_barrier *b = barrier_on(s, path);
  int64_t t0, took;
  int timeout_ms = TH_LATE_MS;

  /* Setting creates the missing parents; setting twice, removing twice
   * are no errors. */
  CU_ASSERT_EQUAL_FATAL(zkr_barrier_set(b), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_barrier_set(b), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_barrier_wait(b, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_FALSE(th_watched(path)); /* a look leaves no watch behind */
  t0 = th_now_ms();
  CU_ASSERT_EQUAL(zkr_barrier_wait(b, timeout_ms), ZKR_ETIMEDOUT);
  took = th_now_ms() - t0;
  CU_ASSERT_TRUE(took >= timeout_ms);
  CU_ASSERT_TRUE(took <= timeout_ms + TH_LATE_MS);
  CU_ASSERT_EQUAL(th_count_nodes(path), 0); /* a wait creates nothing */
  CU_ASSERT_EQUAL(zkr_barrier_remove(b), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_barrier_remove(b), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_barrier_wait(b, 0), ZKR_OK);
  zkr_barrier_free(b);
  zkr_session_close(s);
  th_finish_path(path);
}

/* A waiter whose session expires returns ZKR_ESESSION; free wakes one with
 * ZKR_ECLOSED. */
static void test_barrier_session_lost_and_free(void) {
  char *path = th_path("barrier-lost");
  zkr_session *a = th_session(0), *b = th_session(0);
  zkr_barrier *setter = barrier_on(a, path), *waiter = barrier_on(b, path);
  watched_arg wa = {path};
  member m;

  memset(&m, 0, sizeof(m));
  m.b = waiter;
  CU_ASSERT_EQUAL_FATAL(zkr_barrier_set(setter), ZKR_OK);
  member_start(&m, WAIT, 2 * TH_SETTLE_MS); /* bounded: a regression fails, never hangs */
  CU_ASSERT_TRUE(th_wait_until(is_watched, &wa, TH_SETTLE_MS));
  CU_ASSERT_EQUAL_FATAL(th_expire(b), 0);
  CU_ASSERT_TRUE(th_wait_until(member_done, &m, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(member_join(&m), ZKR_ESESSION);
  zkr_barrier_free(waiter);
  zkr_session_close(b);

  b = th_session(0);
  waiter = barrier_on(b, path);
  m.b = waiter;
  member_start(&m, WAIT, 2 * TH_SETTLE_MS); /* bounded: a regression fails, never hangs */
  CU_ASSERT_TRUE(th_wait_until(is_watched, &wa, TH_SETTLE_MS));
  zkr_barrier_free(waiter); /* wakes the waiter and waits for it */
  CU_ASSERT_EQUAL(member_join(&m), ZKR_ECLOSED);
  CU_ASSERT_EQUAL(zkr_barrier_remove(setter), ZKR_OK);
  zkr_barrier_free(setter);
  zkr_session_close(a);
  zkr_session_close(b);
  th_finish_path(path);
}

/* --- the double barrier: together ----------------------------------------------------------- */

/* Three participants on threads of their own sessions arrive one after
 * another: none enters before the last arrived, none leaves before the
 * last started leaving; the path is usable again afterwards (two rounds). */
static void test_double_barrier_enter_leave_together(void) {
  char *path = th_path("dbarrier-together");
  zkr_session *s[3];
  zkr_double_barrier *db[3];
  member m[3];
  int round, i;

  for (i = 0; i < 3; i++) {
    s[i] = th_session(0);
    db[i] = db_on(s[i], path, 3);
  }
  for (round = 0; round < 2; round++) {
    memset(m, 0, sizeof(m));
    for (i = 0; i < 3; i++) {
      m[i].db = db[i];
      member_start(&m[i], ENTER, TH_SETTLE_MS);
      if (i < 2) {
        /* Arrived, and held back until the last one comes. */
        CU_ASSERT_TRUE(th_await_nodes(path, i + 1));
        CU_ASSERT_FALSE(member_done(&m[0]));
      }
    }
    for (i = 0; i < 3; i++) {
      CU_ASSERT_EQUAL(member_join(&m[i]), ZKR_OK);
      CU_ASSERT_TRUE(m[i].returned_ms >= m[2].called_ms);
    }
    CU_ASSERT_EQUAL(zkr_double_barrier_enter(db[0], 0), ZKR_EINVAL); /* entered already */
    for (i = 0; i < 3; i++) {
      member_start(&m[i], LEAVE, TH_SETTLE_MS);
      if (i < 2) {
        /* Left, and held back until the last one leaves: our node is
         * gone, the others' are there. */
        CU_ASSERT_TRUE(th_await_nodes(path, 3 - i)); /* the rest and "ready" */
        CU_ASSERT_FALSE(member_done(&m[0]));
      }
    }
    for (i = 0; i < 3; i++) {
      CU_ASSERT_EQUAL(member_join(&m[i]), ZKR_OK);
      CU_ASSERT_TRUE(m[i].returned_ms >= m[2].called_ms);
    }
    /* The last one out removed "ready". */
    CU_ASSERT_EQUAL(th_count_nodes(path), 0);
  }
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(db[0], 0), ZKR_ENOTHELD);
  for (i = 0; i < 3; i++) {
    zkr_double_barrier_free(db[i]);
    zkr_session_close(s[i]);
  }
  th_finish_path(path);
}

/* N participants in separate processes, arriving and leaving staggered. */
#define PROCS 3

typedef struct proc_report {
  int enter_rc, leave_rc;
  int64_t enter_called, enter_returned, leave_called, leave_returned;
} proc_report;

static void proc_main(const char *path, int i, int fd) {
  /* The stagger spreads arrivals: it is the scenario, not a wait. */
  int stagger_ms = TH_LATE_MS / 4;
  proc_report r;
  zkr_session *s = NULL;
  zkr_double_barrier *db = NULL;

  memset(&r, 0, sizeof(r));
  if (zkr_session_open(&s, th_hosts(), NULL) != ZKR_OK ||
      zkr_double_barrier_new(&db, s, path, PROCS, NULL) != ZKR_OK)
    _exit(1);
  usleep((useconds_t)(i * stagger_ms * 1000));
  r.enter_called = th_now_ms();
  r.enter_rc = zkr_double_barrier_enter(db, TH_QUEUE_MS(PROCS));
  r.enter_returned = th_now_ms();
  usleep((useconds_t)((PROCS - 1 - i) * stagger_ms * 1000));
  r.leave_called = th_now_ms();
  r.leave_rc = zkr_double_barrier_leave(db, TH_QUEUE_MS(PROCS));
  r.leave_returned = th_now_ms();
  zkr_double_barrier_free(db);
  zkr_session_close(s);
  _exit(write(fd, &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
}

static void test_double_barrier_processes(void) {
  char *path = th_path("dbarrier-procs");
  proc_report r[PROCS];
  int64_t last_enter = 0, last_leave = 0;
  int fds[PROCS][2], i, st;
  pid_t pid[PROCS];

  /* Fork first: this process has no session (nor thread) yet. */
  for (i = 0; i < PROCS; i++) {
    CU_ASSERT_EQUAL_FATAL(pipe(fds[i]), 0);
    pid[i] = fork();
    CU_ASSERT_FATAL(pid[i] >= 0);
    if (pid[i] == 0) {
      close(fds[i][0]);
      proc_main(path, i, fds[i][1]);
    }
    close(fds[i][1]);
  }
  for (i = 0; i < PROCS; i++) {
    CU_ASSERT_EQUAL(read(fds[i][0], &r[i], sizeof(r[i])), (ssize_t)sizeof(r[i]));
    close(fds[i][0]);
    CU_ASSERT_EQUAL(waitpid(pid[i], &st, 0), pid[i]);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT_EQUAL(r[i].enter_rc, ZKR_OK);
    CU_ASSERT_EQUAL(r[i].leave_rc, ZKR_OK);
    if (r[i].enter_called > last_enter)
      last_enter = r[i].enter_called;
    if (r[i].leave_called > last_leave)
      last_leave = r[i].leave_called;
  }
  /* CLOCK_MONOTONIC is one clock for every process of the machine. */
  for (i = 0; i < PROCS; i++) {
    CU_ASSERT_TRUE(r[i].enter_returned >= last_enter);
    CU_ASSERT_TRUE(r[i].leave_returned >= last_leave);
    CU_ASSERT_TRUE(r[i].enter_returned - last_enter <= TH_LATE_MS);
    CU_ASSERT_TRUE(r[i].leave_returned - last_leave <= TH_LATE_MS);
  }
  th_finish_path(path);
}

/* --- the double barrier: failures ----------------------------------------------------------- */

/* In a child process: enters the double barrier at path (of child_qty) on a
 * thread of its own, and returns once its node is on the server. */
static int child_qty;

static void *child_enter(void *arg) {
  zkr_double_barrier_enter(arg, -1);
  return NULL;
}

static zkr_session *child_session;
static const char *child_path_;

static int child_node_there(void *arg) {
  struct String_vector kids = {0, NULL};
  int n = 0;

  (void)arg;
  if (zoo_get_children(zkr_session_zhandle(child_session), child_path_, 0, &kids) == ZOK)
    n = kids.count;
  deallocate_String_vector(&kids);
  return n > 0;
}

static int take_place(zkr_session *s, const char *path) {
  zkr_double_barrier *db = NULL;
  pthread_t t;
  int rc = zkr_double_barrier_new(&db, s, path, child_qty, NULL);

  if (rc != ZKR_OK)
    return rc;
  if (pthread_create(&t, NULL, child_enter, db) != 0)
    return ZKR_ENOMEM;
  child_session = s;
  child_path_ = path;
  /* The child enters first: the only node is its own. */
  return th_wait_until(child_node_there, NULL, TH_SETTLE_MS) ? ZKR_OK : ZKR_ETIMEDOUT;
}

/* One of four participants SIGKILLed before all arrived: the others' enter
 * ends with ZKR_EBROKEN once its session has expired, long before their
 * deadline; nothing is left. */
static void test_double_barrier_member_killed_in_enter(void) {
  char *path = th_path("dbarrier-kill-enter");
  zkr_session *s[2];
  zkr_double_barrier *db[2];
  member m[2];
  pid_t pid;
  int64_t killed;
  int i;

  child_qty = 4;
  pid = th_child_holding(take_place, path, 0); /* first: no threads yet */
  CU_ASSERT_FATAL(pid > 0);
  memset(m, 0, sizeof(m));
  for (i = 0; i < 2; i++) {
    s[i] = th_session(0);
    db[i] = db_on(s[i], path, 4);
    m[i].db = db[i];
    member_start(&m[i], ENTER, 2 * TH_SETTLE_MS);
  }
  CU_ASSERT_TRUE(th_await_nodes(path, 3));
  CU_ASSERT_FALSE(member_done(&m[0]) || member_done(&m[1]));
  th_child_kill(pid);
  killed = th_now_ms();
  for (i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(member_join(&m[i]), ZKR_EBROKEN);
    CU_ASSERT_TRUE(m[i].returned_ms - killed <= TH_EXPIRED_BY_MS(TH_SESSION_MS));
  }
  /* Each deleted its node before returning: once both returned (not as
   * soon as the first did, while the other may still be deleting), none is
   * left, as each session sees it. */
  for (i = 0; i < 2; i++)
    CU_ASSERT_EQUAL(kids_seen_by(s[i], path), 0);
  for (i = 0; i < 2; i++) {
    zkr_double_barrier_free(db[i]);
    zkr_session_close(s[i]);
  }
  th_finish_path(path);
}

/* One of three participants SIGKILLed once all entered: in leave its node
 * vanishing is the normal way out; the others leave once its session has
 * expired, not before. */
static void test_double_barrier_member_killed_in_leave(void) {
  char *path = th_path("dbarrier-kill-leave");
  zkr_session *s[2];
  zkr_double_barrier *db[2];
  member m[2];
  pid_t pid;
  int64_t killed;
  int i;

  child_qty = 3;
  pid = th_child_holding(take_place, path, 0); /* first: no threads yet */
  CU_ASSERT_FATAL(pid > 0);
  memset(m, 0, sizeof(m));
  for (i = 0; i < 2; i++) {
    s[i] = th_session(0);
    db[i] = db_on(s[i], path, 3);
    m[i].db = db[i];
    member_start(&m[i], ENTER, TH_SETTLE_MS);
  }
  for (i = 0; i < 2; i++)
    CU_ASSERT_EQUAL(member_join(&m[i]), ZKR_OK);
  th_child_kill(pid);
  killed = th_now_ms();
  for (i = 0; i < 2; i++)
    member_start(&m[i], LEAVE, 2 * TH_SETTLE_MS);
  for (i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(member_join(&m[i]), ZKR_OK);
    /* Not before the server could expire the session (it hears nothing
     * from the child for a session timeout, less a heartbeat's third). */
    CU_ASSERT_TRUE(m[i].returned_ms - killed >= TH_SESSION_MS / 2);
    CU_ASSERT_TRUE(m[i].returned_ms - killed <= TH_EXPIRED_BY_MS(TH_SESSION_MS));
  }
  for (i = 0; i < 2; i++) {
    zkr_double_barrier_free(db[i]);
    zkr_session_close(s[i]);
  }
  th_finish_path(path);
}

/* A participant that gives up breaks the barrier for the one waiting with
 * it at once; a timed enter returns on time and leaves no node; a try
 * decides from one listing. */
static void test_double_barrier_timeout_leaves_nothing(void) {
  char *path = th_path("dbarrier-timeout");
  zkr_session *a = th_session(0), *b = th_session(0);
  zkr_double_barrier *da = db_on(a, path, 3), *dbb = db_on(b, path, 3);
  int timeout_ms = TH_LATE_MS;
  member m;
  int64_t t0, took;

  CU_ASSERT_EQUAL(zkr_double_barrier_enter(da, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(kids_seen_by(a, path), 0);
  memset(&m, 0, sizeof(m));
  m.db = da;
  /* A deadline far beyond the bounds below: a regression fails, never
   * hangs. */
  member_start(&m, ENTER, 2 * TH_SETTLE_MS);
  CU_ASSERT_TRUE(th_await_nodes(path, 1));
  t0 = th_now_ms();
  CU_ASSERT_EQUAL(zkr_double_barrier_enter(dbb, timeout_ms), ZKR_ETIMEDOUT);
  took = th_now_ms() - t0;
  CU_ASSERT_TRUE(took >= timeout_ms);
  CU_ASSERT_TRUE(took <= timeout_ms + TH_LATE_MS);
  /* Its node went before it returned; the other participant learns at
   * once, not at its deadline, that the barrier cannot complete. */
  CU_ASSERT_EQUAL(member_join(&m), ZKR_EBROKEN);
  CU_ASSERT_TRUE(m.returned_ms - t0 - took <= TH_LATE_MS);
  CU_ASSERT_EQUAL(kids_seen_by(a, path), 0);
  zkr_double_barrier_free(da);
  zkr_double_barrier_free(dbb);
  zkr_session_close(a);
  zkr_session_close(b);
  th_finish_path(path);
}

/* A leave that times out (a participant stays inside) has deleted our
 * node; the one that stayed then leaves at once and removes "ready". */
static void test_double_barrier_leave_timeout(void) {
  char *path = th_path("dbarrier-leave-timeout");
  zkr_session *a = th_session(0), *b = th_session(0);
  zkr_double_barrier *da = db_on(a, path, 2), *dbb = db_on(b, path, 2);
  int timeout_ms = TH_LATE_MS;
  member m;
  int64_t t0, took;

  memset(&m, 0, sizeof(m));
  m.db = da;
  member_start(&m, ENTER, TH_SETTLE_MS);
  CU_ASSERT_EQUAL(zkr_double_barrier_enter(dbb, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(member_join(&m), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(da, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(kids_seen_by(a, path), 2); /* b's node and "ready" */
  CU_ASSERT_TRUE(ready_seen_by(a, path));
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(da, timeout_ms), ZKR_ENOTHELD); /* left already */
  /* Enter and leave again, this time with a deadline. */
  member_start(&m, ENTER, TH_SETTLE_MS);
  CU_ASSERT_EQUAL(member_join(&m), ZKR_OK); /* "ready" is still there */
  t0 = th_now_ms();
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(da, timeout_ms), ZKR_ETIMEDOUT);
  took = th_now_ms() - t0;
  CU_ASSERT_TRUE(took >= timeout_ms);
  CU_ASSERT_TRUE(took <= timeout_ms + TH_LATE_MS);
  CU_ASSERT_EQUAL(kids_seen_by(a, path), 2);
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(dbb, 0), ZKR_OK);
  CU_ASSERT_EQUAL(kids_seen_by(b, path), 0);
  zkr_double_barrier_free(da);
  zkr_double_barrier_free(dbb);
  zkr_session_close(a);
  zkr_session_close(b);
  th_finish_path(path);
}

/* Our node deleted by another client while we wait: ZKR_ELOST; our
 * session expired: ZKR_ESESSION; free while waiting: ZKR_ECLOSED. */
static void test_double_barrier_node_deleted_expiry_free(void) {
  char *path = th_path("dbarrier-lost");
  zkr_session *a = th_session(0);
  zkr_double_barrier *da = db_on(a, path, 2);
  struct String_vector kids = {0, NULL};
  zhandle_t *raw;
  char node[1200];
  member m;

  memset(&m, 0, sizeof(m));
  m.db = da;
  member_start(&m, ENTER, 2 * TH_SETTLE_MS);
  CU_ASSERT_TRUE(th_await_nodes(path, 1));
  raw = th_raw();
  CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, path, 0, &kids), ZOK);
  CU_ASSERT_EQUAL_FATAL(kids.count, 1);
  snprintf(node, sizeof(node), "%s/%s", path, kids.data[0]);
  deallocate_String_vector(&kids);
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  th_raw_close(raw);
  CU_ASSERT_EQUAL(member_join(&m), ZKR_ELOST);
  CU_ASSERT_TRUE(m.returned_ms - m.called_ms <= TH_SETTLE_MS);

  member_start(&m, ENTER, 2 * TH_SETTLE_MS);
  CU_ASSERT_TRUE(th_await_nodes(path, 1));
  CU_ASSERT_EQUAL_FATAL(th_expire(a), 0);
  CU_ASSERT_EQUAL(member_join(&m), ZKR_ESESSION);
  zkr_double_barrier_free(da);
  zkr_session_close(a);

  a = th_session(0);
  da = db_on(a, path, 2);
  m.db = da;
  member_start(&m, ENTER, 2 * TH_SETTLE_MS); /* bounded: a regression fails, never hangs */
  CU_ASSERT_TRUE(th_await_nodes(path, 1));
  zkr_double_barrier_free(da); /* wakes the enter and waits for it */
  CU_ASSERT_EQUAL(member_join(&m), ZKR_ECLOSED);
  zkr_session_close(a);
  th_finish_path(path);
}

/* Replies lost to connection loss (the server ran the request): our
 * node's create (the retry finds it: one node, ours), a listing, our
 * node's delete in leave (the retry finds it gone). The session survives
 * each cut; the barrier completes as if nothing happened. */
static void test_double_barrier_lost_replies(void) {
  char *path = th_path("dbarrier-lost-replies");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *a = NULL, *b = th_session(0);
  zkr_double_barrier *da, *dbb = db_on(b, path, 2);
  member m;
  int fired;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  a = th_session_at(tp_hosts(p), 0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  da = db_on(a, path, 2);
  memset(&m, 0, sizeof(m));
  m.db = dbb;
  member_start(&m, ENTER, TH_SETTLE_MS);
  CU_ASSERT_TRUE(th_await_nodes(path, 1));
  fired = tp_cut_fired(p);
  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE_OP, 1), 0); /* PATH exists: the first create is our node's */
  CU_ASSERT_EQUAL(zkr_double_barrier_enter(da, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(tp_cut_fired(p), fired + 1);
  CU_ASSERT_EQUAL(member_join(&m), ZKR_OK);
  CU_ASSERT_EQUAL(kids_seen_by(a, path), 3); /* two participants and "ready" */
  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_DELETE_OP, 1), 0);
  m.db = da;
  member_start(&m, LEAVE, TH_SETTLE_MS);
  CU_ASSERT_TRUE(th_await_nodes(path, 2)); /* a's node is gone */
  CU_ASSERT_EQUAL(tp_cut_fired(p), fired + 2);
  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_GETCHILDREN_OP, 1), 0); /* a's next listing */
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(dbb, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(member_join(&m), ZKR_OK);
  CU_ASSERT_EQUAL(tp_cut_fired(p), fired + 3);
  CU_ASSERT_EQUAL(kids_seen_by(a, path), 0);
  zkr_double_barrier_free(da);
  zkr_double_barrier_free(dbb);
  zkr_session_close(a);
  zkr_session_close(b);
  tp_stop(p);
  th_finish_path(path);
}

/* The changes a waiter waits for happen while it is cut off from the
 * server (its connections dropped, new ones refused, well within the
 * session timeout): the barrier removed, the double barrier completed. On
 * reconnection the client re-arms its watches, the server fires them for
 * what changed meanwhile, and both waits return. */
static void test_barrier_waits_across_connection_loss(void) {
  char *path = th_path("barrier-connloss"), *dpath = th_path("dbarrier-connloss");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *a = NULL, *b = th_session(0);
  zkr_barrier *waiter, *setter = barrier_on(b, path);
  zkr_double_barrier *da, *dbb = db_on(b, dpath, 2);
  watched_arg wa = {path};
  member m[2];
  int conns;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  a = th_session_at(tp_hosts(p), 0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  waiter = barrier_on(a, path);
  da = db_on(a, dpath, 2);
  memset(m, 0, sizeof(m));
  m[0].b = waiter;
  m[1].db = da;
  CU_ASSERT_EQUAL_FATAL(zkr_barrier_set(setter), ZKR_OK);
  member_start(&m[0], WAIT, 2 * TH_SETTLE_MS);
  member_start(&m[1], ENTER, 2 * TH_SETTLE_MS);
  CU_ASSERT_TRUE(th_wait_until(is_watched, &wa, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_await_nodes(dpath, 1));
  conns = tp_connections(p);
  tp_refuse(p, 1);
  tp_drop_all(p);
  CU_ASSERT_EQUAL(zkr_barrier_remove(setter), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_double_barrier_enter(dbb, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_FALSE(member_done(&m[0]) || member_done(&m[1])); /* cut off: they cannot know yet */
  tp_refuse(p, 0);
  CU_ASSERT_EQUAL(member_join(&m[0]), ZKR_OK);
  CU_ASSERT_EQUAL(member_join(&m[1]), ZKR_OK);
  CU_ASSERT_TRUE(tp_connections(p) > conns);                        /* they learnt it over a new connection */
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(dbb, 0), ZKR_ETIMEDOUT); /* a is inside */
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(da, TH_SETTLE_MS), ZKR_OK);
  zkr_barrier_free(waiter);
  zkr_barrier_free(setter);
  zkr_double_barrier_free(da);
  zkr_double_barrier_free(dbb);
  zkr_session_close(a);
  zkr_session_close(b);
  tp_stop(p);
  th_finish_path(path);
  th_finish_path(dpath);
}

/* Curator's DistributedDoubleBarrier layout: PATH/<uuid> EPHEMERAL with our
 * id as data, PATH/ready PERSISTENT. */
static void test_double_barrier_curator_layout(void) {
  char *path = th_path("dbarrier-layout");
  zkr_session *a = th_session(0);
  zkr_barrier_opts o = {"layout-id", NULL};
  zkr_double_barrier *da = NULL;
  struct String_vector kids = {0, NULL};
  zhandle_t *raw = th_raw();
  regex_t uuid;
  int i, seen_ready = 0, seen_own = 0;

  CU_ASSERT_EQUAL_FATAL(regcomp(&uuid,
                                "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                                REG_EXTENDED | REG_NOSUB),
                        0);
  CU_ASSERT_EQUAL_FATAL(zkr_double_barrier_new(&da, a, path, 1, &o), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_double_barrier_enter(da, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, path, 0, &kids), ZOK);
  CU_ASSERT_EQUAL(kids.count, 2);
  for (i = 0; i < kids.count; i++) {
    char full[1200], buf[64];
    int len = (int)sizeof(buf) - 1;
    struct Stat st;

    snprintf(full, sizeof(full), "%s/%s", path, kids.data[i]);
    CU_ASSERT_EQUAL_FATAL(zoo_get(raw, full, 0, buf, &len, &st), ZOK);
    if (strcmp(kids.data[i], "ready") == 0) {
      seen_ready = 1;
      CU_ASSERT_EQUAL(st.ephemeralOwner, 0);
    } else {
      seen_own = 1;
      CU_ASSERT_EQUAL(regexec(&uuid, kids.data[i], 0, NULL, 0), 0);
      CU_ASSERT_EQUAL(st.ephemeralOwner, zkr_session_id(a));
      buf[len > 0 ? len : 0] = '\0';
      CU_ASSERT_STRING_EQUAL(buf, "layout-id");
    }
  }
  deallocate_String_vector(&kids);
  CU_ASSERT_TRUE(seen_ready && seen_own);
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(da, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(kids_seen_by(a, path), 0);
  regfree(&uuid);
  th_raw_close(raw);
  zkr_double_barrier_free(da);
  zkr_session_close(a);
  th_finish_path(path);
}

static void test_barrier_bad_input(void) {
  static const char *const bad[] = {"", "relative", "/", "/a/", "//a", "/a/../b", "/zookeeper/x"};
  zkr_session *s = th_session(0);
  zkr_barrier *b = NULL;
  zkr_double_barrier *db = NULL;
  struct ACL_vector empty = {0, NULL};
  zkr_barrier_opts o = {NULL, &empty};
  size_t i;

  CU_ASSERT_EQUAL(zkr_barrier_new(NULL, s, "/a", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_barrier_new(&b, NULL, "/a", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_barrier_new(&b, s, NULL, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_barrier_new(&b, s, "/a", &o), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(b);
  CU_ASSERT_EQUAL(zkr_double_barrier_new(NULL, s, "/a", 2, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_double_barrier_new(&db, NULL, "/a", 2, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_double_barrier_new(&db, s, NULL, 2, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_double_barrier_new(&db, s, "/a", 0, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_double_barrier_new(&db, s, "/a", -1, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_double_barrier_new(&db, s, "/a", 2, &o), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(db);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CU_ASSERT_EQUAL(zkr_barrier_new(&b, s, bad[i], NULL), ZKR_EINVAL);
    CU_ASSERT_EQUAL(zkr_double_barrier_new(&db, s, bad[i], 2, NULL), ZKR_EINVAL);
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT_PTR_NULL(db);
  }
  CU_ASSERT_EQUAL(zkr_barrier_set(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_barrier_remove(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_barrier_wait(NULL, 0), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_double_barrier_enter(NULL, 0), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_double_barrier_leave(NULL, 0), ZKR_EINVAL);
  zkr_barrier_free(NULL);
  zkr_double_barrier_free(NULL);
  CU_ASSERT_EQUAL(th_count_nodes("/a"), 0); /* nothing sent */
  zkr_session_close(s);
}

int main(void) {
  static const th_test tests[] = {
      {"test_barrier_wait_returns_when_removed", test_barrier_wait_returns_when_removed},
      {"test_barrier_wait_timeout", test_barrier_wait_timeout},
      {"test_barrier_session_lost_and_free", test_barrier_session_lost_and_free},
      {"test_double_barrier_enter_leave_together", test_double_barrier_enter_leave_together},
      {"test_double_barrier_processes", test_double_barrier_processes},
      {"test_double_barrier_member_killed_in_enter", test_double_barrier_member_killed_in_enter},
      {"test_double_barrier_member_killed_in_leave", test_double_barrier_member_killed_in_leave},
      {"test_double_barrier_timeout_leaves_nothing", test_double_barrier_timeout_leaves_nothing},
      {"test_double_barrier_leave_timeout", test_double_barrier_leave_timeout},
      {"test_double_barrier_node_deleted_expiry_free", test_double_barrier_node_deleted_expiry_free},
      {"test_double_barrier_lost_replies", test_double_barrier_lost_replies},
      {"test_barrier_waits_across_connection_loss", test_barrier_waits_across_connection_loss},
      {"test_double_barrier_curator_layout", test_double_barrier_curator_layout},
      {"test_barrier_bad_input", test_barrier_bad_input},
      {NULL, NULL}};

  return th_run("barrier", tests);
}
