/* zkr_rwlock against a real ZooKeeper server: readers together, writers
 * alone, no overtaking of a queued writer, reentrancy, downgrade, refused
 * upgrade, faults, and a multi-process occupancy check. */
#define _GNU_SOURCE
#include "harness.h"
#include "proxy.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static zkr_rwlock *rw_on(zkr_session *s, const char *path, const zkr_rwlock_opts *o) {
  zkr_rwlock *rw = NULL;

  CU_ASSERT_EQUAL_FATAL(zkr_rwlock_new(&rw, s, path, o), ZKR_OK);
  return rw;
}

/* An rdlock or wrlock on a thread of its own, held until told to let go. */
typedef struct taker {
  zkr_rwlock *rw;
  int write, timeout_ms;
  int rc, done, let_go, unlock_rc;
  pthread_t t;
} taker;

static void *taker_main(void *p) {
  taker *k = p;
  int rc = k->write ? zkr_rwlock_wrlock(k->rw, k->timeout_ms) : zkr_rwlock_rdlock(k->rw, k->timeout_ms);

  k->rc = rc;
  __atomic_store_n(&k->done, 1, __ATOMIC_SEQ_CST);
  if (rc == ZKR_OK) {
    while (!__atomic_load_n(&k->let_go, __ATOMIC_SEQ_CST))
      usleep(1000);
    k->unlock_rc = zkr_rwlock_unlock(k->rw);
  }
  return NULL;
}

static void taker_start(taker *k, zkr_rwlock *rw, int write, int timeout_ms) {
  memset(k, 0, sizeof(*k));
  k->rw = rw;
  k->write = write;
  k->timeout_ms = timeout_ms;
  pthread_create(&k->t, NULL, taker_main, k);
}

static int taker_done(void *p) {
  return __atomic_load_n(&((taker *)p)->done, __ATOMIC_SEQ_CST);
}

/* Lets k release, joins it, and returns what its lock call returned. */
static int taker_finish(taker *k) {
  __atomic_store_n(&k->let_go, 1, __ATOMIC_SEQ_CST);
  pthread_join(k->t, NULL);
  if (k->rc == ZKR_OK)
    CU_ASSERT_EQUAL(k->unlock_rc, ZKR_OK);
  return k->rc;
}

static void test_rwlock_readers_share_writer_waits(void) {
  char *path = th_path("rw-share");
  zkr_session *s = th_session(0);
  zkr_rwlock *rw = rw_on(s, path, NULL);
  taker r1, r2, w;

  taker_start(&r1, rw, 0, -1);
  taker_start(&r2, rw, 0, -1);
  CU_ASSERT_TRUE(th_wait_until(taker_done, &r1, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_wait_until(taker_done, &r2, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(r1.rc, ZKR_OK); /* both inside together */
  CU_ASSERT_EQUAL(r2.rc, ZKR_OK);
  /* A writer is kept out while they read: a try fails and leaves nothing. */
  taker_start(&w, rw, 1, 0);
  CU_ASSERT_EQUAL(taker_finish(&w), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(th_count_nodes(path), 2);
  /* A waiting writer gets in once both readers are out, not before. */
  taker_start(&w, rw, 1, -1);
  CU_ASSERT_TRUE(th_await_nodes(path, 3));
  /* The listing tells modes and holders by the same rule. */
  {
    zkr_participant *p = NULL;
    size_t n = 0;

    CU_ASSERT_EQUAL_FATAL(zkr_participants(s, path, &p, &n), ZKR_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_EQUAL(p[0].mode, ZKR_MODE_SHARED);
    CU_ASSERT_EQUAL(p[1].mode, ZKR_MODE_SHARED);
    CU_ASSERT_EQUAL(p[2].mode, ZKR_MODE_EXCLUSIVE);
    CU_ASSERT_TRUE(p[0].holder && p[1].holder && !p[2].holder);
    zkr_participants_free(p, n);
  }
  CU_ASSERT_EQUAL(taker_finish(&r1), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  CU_ASSERT_FALSE(taker_done(&w));
  CU_ASSERT_EQUAL(taker_finish(&r2), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(taker_done, &w, TH_SETTLE_MS));
  /* A reader of the same session behind the holding writer waits, and the
   * listing says so (it once took it for a downgrade: a newcomer's find). */
  taker_start(&r1, rw, 0, -1);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  {
    zkr_participant *p = NULL;
    size_t n = 0;

    CU_ASSERT_EQUAL_FATAL(zkr_participants(s, path, &p, &n), ZKR_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_TRUE(p[0].mode == ZKR_MODE_EXCLUSIVE && p[0].holder);
    CU_ASSERT_TRUE(p[1].mode == ZKR_MODE_SHARED && !p[1].holder);
    zkr_participants_free(p, n);
  }
  CU_ASSERT_EQUAL(taker_finish(&w), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(taker_done, &r1, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(taker_finish(&r1), ZKR_OK);
  zkr_rwlock_free(rw);
  zkr_session_close(s);
  th_finish_path(path);
}

/* A reader arriving after a queued writer waits behind it. */
static void test_rwlock_late_reader_behind_queued_writer(void) {
  char *path = th_path("rw-order");
  zkr_session *s = th_session(0);
  zkr_rwlock *rw = rw_on(s, path, NULL);
  taker r1, w, r2;
  int64_t t0;

  taker_start(&r1, rw, 0, -1);
  CU_ASSERT_TRUE(th_wait_until(taker_done, &r1, TH_SETTLE_MS));
  CU_ASSERT_EQUAL_FATAL(r1.rc, ZKR_OK);
  taker_start(&w, rw, 1, -1);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  /* The late reader's try fails although only a reader holds. */
  taker_start(&r2, rw, 0, 0);
  CU_ASSERT_EQUAL(taker_finish(&r2), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(th_count_nodes(path), 2);
  /* Its timed wait runs out too, and leaves nothing. */
  t0 = th_now_ms();
  taker_start(&r2, rw, 0, 300);
  CU_ASSERT_EQUAL(taker_finish(&r2), ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(th_now_ms() - t0 >= 300);
  CU_ASSERT_EQUAL(th_count_nodes(path), 2);
  /* Queued behind the writer, it gets in only after the writer. */
  taker_start(&r2, rw, 0, -1);
  CU_ASSERT_TRUE(th_await_nodes(path, 3));
  CU_ASSERT_EQUAL(taker_finish(&r1), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(taker_done, &w, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(w.rc, ZKR_OK);
  CU_ASSERT_FALSE(taker_done(&r2));
  CU_ASSERT_EQUAL(taker_finish(&w), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(taker_done, &r2, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(taker_finish(&r2), ZKR_OK);
  zkr_rwlock_free(rw);
  zkr_session_close(s);
  th_finish_path(path);
}

static void test_rwlock_reentrancy_downgrade_upgrade(void) {
  char *path = th_path("rw-reent");
  zkr_session *s = th_session(0);
  zkr_rwlock *rw = rw_on(s, path, NULL), *other = rw_on(s, path, NULL);
  int64_t wt, rt;
  taker k;

  /* Reentrant read: one node, two levels. */
  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(rw, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(rw, -1), ZKR_OK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  /* Upgrade refused at once, nothing sent. */
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(rw, -1), ZKR_EDEADLK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 0), 1);
  CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 1), 0);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_ENOTHELD);
  CU_ASSERT_TRUE(th_await_nodes(path, 0));

  /* Downgrade: write, read, write released; still reading, and still
   * excluding others (a writer queued meanwhile must not get in beside the
   * downgraded reader). */
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(rw, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_token(rw, 1, &wt), ZKR_OK);
  taker_start(&k, other, 1, -1);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(rw, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_wrunlock(rw), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 0), 1);
  CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 1), 0);
  CU_ASSERT_EQUAL(zkr_rwlock_token(rw, 0, &rt), ZKR_OK);
  CU_ASSERT_EQUAL(rt, wt);
  CU_ASSERT_EQUAL(th_count_nodes(path), 2);
  CU_ASSERT_FALSE(taker_done(&k));
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(taker_done, &k, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(taker_finish(&k), ZKR_OK);

  /* Innermost first: write, read; unlock releases the read. */
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(rw, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(rw, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 0), 0);
  CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 1), 1);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 1), 0);
  CU_ASSERT_EQUAL(zkr_rwlock_rdunlock(rw), ZKR_ENOTHELD);
  zkr_rwlock_free(rw);
  zkr_rwlock_free(other);
  zkr_session_close(s);
  th_finish_path(path);
}

/* Kazoo's and Curator's nodes on the same path are honoured by kind. */
static void test_rwlock_peer_nodes_by_kind(void) {
  char *path = th_path("rw-peers"), node[1024];
  zkr_session *s = th_session(0);
  zkr_rwlock *rw = rw_on(s, path, NULL);
  zhandle_t *raw = th_raw();
  char made[1024];

  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(rw, 0), ZKR_OK); /* creates the path */
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
  /* A Kazoo reader: ours reads beside it, ours writes only after it. */
  snprintf(node, sizeof(node), "%s/0f0f__rlock__", path);
  CU_ASSERT_EQUAL_FATAL(
      zoo_create(raw, node, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, made, sizeof(made)), ZOK);
  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(rw, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(rw, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zoo_delete(raw, made, -1), ZOK);
  /* A Kazoo writer, then a Curator writer: ours neither reads nor writes. */
  snprintf(node, sizeof(node), "%s/0f0f__lock__", path);
  CU_ASSERT_EQUAL_FATAL(
      zoo_create(raw, node, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, made, sizeof(made)), ZOK);
  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(rw, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zoo_delete(raw, made, -1), ZOK);
  snprintf(node, sizeof(node), "%s/_c_0f0f-__WRIT__", path);
  CU_ASSERT_EQUAL_FATAL(
      zoo_create(raw, node, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, made, sizeof(made)), ZOK);
  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(rw, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(rw, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zoo_delete(raw, made, -1), ZOK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 0);
  zkr_rwlock_free(rw);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
}

/* --- faults ------------------------------------------------------------------ */

static void on_lost(zkr_rwlock *rw, void *arg) {
  (void)rw;
  __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static int lost_seen(void *arg) {
  return __atomic_load_n((int *)arg, __ATOMIC_SEQ_CST) > 0;
}

static int node_watched(void *arg) {
  return th_watched(arg);
}

static void test_rwlock_node_deleted_and_expiry(void) {
  char *path = th_path("rw-faults"), node[1024];
  zkr_session *s = th_session(0), *s2 = th_session(0);
  zkr_rwlock_opts o;
  zkr_rwlock *rw, *rw2;
  zhandle_t *raw = th_raw();
  struct String_vector sv;
  int lost = 0;

  memset(&o, 0, sizeof(o));
  o.on_lost = on_lost;
  o.arg = &lost;
  rw = rw_on(s, path, &o);
  rw2 = rw_on(s2, path, NULL);
  /* A read hold whose node another client deletes: lost, said once. */
  CU_ASSERT_EQUAL_FATAL(zkr_rwlock_rdlock(rw, -1), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, path, 0, &sv), ZOK);
  CU_ASSERT_EQUAL_FATAL(sv.count, 1);
  snprintf(node, sizeof(node), "%s/%s", path, sv.data[0]);
  CU_ASSERT_PTR_NOT_NULL(strstr(sv.data[0], "-__READ__"));
  deallocate_String_vector(&sv);
  {
    char mine[1024];
    CU_ASSERT_EQUAL(zkr_rwlock_node(rw, 0, mine, sizeof(mine)), ZKR_OK);
    CU_ASSERT_STRING_EQUAL(mine, node);
    CU_ASSERT_EQUAL(zkr_rwlock_node(rw, 1, mine, sizeof(mine)), ZKR_ENOTHELD);
  }
  CU_ASSERT_EQUAL(zkr_rwlock_lost_reason(rw), ZKR_LOST_NONE);
  CU_ASSERT_TRUE(th_wait_until(node_watched, node, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE(th_wait_until(lost_seen, &lost, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 0), 0);
  CU_ASSERT_EQUAL(zkr_rwlock_lost_reason(rw), ZKR_LOST_DELETED);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_ELOST);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_ENOTHELD);
  /* A write hold whose session expires: lost; the other client writes. */
  lost = 0;
  CU_ASSERT_EQUAL_FATAL(zkr_rwlock_wrlock(rw, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(rw2, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(th_expire(s), 0);
  CU_ASSERT_TRUE(th_wait_until(lost_seen, &lost, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 1), 0);
  CU_ASSERT_EQUAL(zkr_rwlock_lost_reason(rw), ZKR_LOST_EXPIRED);
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(rw2, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_ESESSION);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw2), ZKR_OK);
  zkr_rwlock_free(rw);
  zkr_rwlock_free(rw2);
  zkr_session_close(s);
  zkr_session_close(s2);
  th_raw_close(raw);
  th_finish_path(path);
}

/* A holder killed with SIGKILL: its node goes with its session, and a
 * writer gets in within the session timeout. */
/* In a child process: takes the read lock at path and keeps it. */
static int take_read(zkr_session *s, const char *path) {
  zkr_rwlock *rw = NULL;
  int rc = zkr_rwlock_new(&rw, s, path, NULL);

  return rc == ZKR_OK ? zkr_rwlock_rdlock(rw, -1) : rc;
}

static void test_rwlock_holder_killed(void) {
  char *path = th_path("rw-kill");
  pid_t pid = th_child_holding(take_read, path, 0); /* first: no threads yet */
  zkr_session *s;
  zkr_rwlock *rw;

  CU_ASSERT_FATAL(pid > 0);
  s = th_session(0);
  rw = rw_on(s, path, NULL);
  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(rw, 0), ZKR_OK); /* readers share */
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(rw, 0), ZKR_ETIMEDOUT);
  th_child_kill(pid);
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(rw, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
  zkr_rwlock_free(rw);
  zkr_session_close(s);
  th_finish_path(path);
}

/* The create's reply lost (the connection cut right after it): the node
 * is found again by its uuid, the hold is granted on it, and nothing is
 * left behind, in both modes. */
static void test_rwlock_lost_create_reply(void) {
  char *path = th_path("rw-lostcreate");
  tp_proxy *p = tp_start(th_hosts());
  int i, ok = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  for (i = 0; i < 20; i++) {
    zkr_session *s = NULL;
    zkr_session_opts so;
    zkr_rwlock *rw;
    int fired = tp_cut_fired(p), write = i % 2;

    memset(&so, 0, sizeof(so));
    so.session_timeout_ms = TH_SESSION_MS;
    if (zkr_session_open(&s, tp_hosts(p), &so) != ZKR_OK)
      break;
    rw = rw_on(s, path, NULL);
    CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE2_OP, 1), 0);
    if ((write ? zkr_rwlock_wrlock(rw, TH_SETTLE_MS) : zkr_rwlock_rdlock(rw, TH_SETTLE_MS)) == ZKR_OK &&
        tp_cut_fired(p) == fired + 1 && th_count_nodes(path) == 1) {
      ok++;
      CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
    }
    CU_ASSERT_EQUAL(th_count_nodes(path), 0);
    zkr_rwlock_free(rw);
    zkr_session_close(s);
  }
  printf("[%d/20 recovered their own node] ", ok);
  CU_ASSERT_EQUAL(ok, 20);
  tp_stop(p);
  th_finish_path(path);
}

/* --- many processes and threads --------------------------------------------------- */

#define MX_PROCS 3
#define MX_THREADS 2
#define MX_OPS 300

typedef struct mx_shared {
  int readers, writers;
  int violations, reads, writes, max_readers;
} mx_shared;

typedef struct mx_thread {
  zkr_rwlock *rw;
  mx_shared *sh;
  unsigned seed;
  int failures;
} mx_thread;

static void *mx_main(void *p) {
  mx_thread *t = p;
  int i;

  for (i = 0; i < MX_OPS; i++) {
    int write = rand_r(&t->seed) % 4 == 0, r;

    if ((write ? zkr_rwlock_wrlock(t->rw, -1) : zkr_rwlock_rdlock(t->rw, -1)) != ZKR_OK) {
      t->failures++;
      continue;
    }
    if (write) {
      if (__atomic_add_fetch(&t->sh->writers, 1, __ATOMIC_SEQ_CST) != 1 ||
          __atomic_load_n(&t->sh->readers, __ATOMIC_SEQ_CST) != 0)
        __atomic_add_fetch(&t->sh->violations, 1, __ATOMIC_SEQ_CST);
      __atomic_add_fetch(&t->sh->writes, 1, __ATOMIC_SEQ_CST);
      usleep(200);
      __atomic_sub_fetch(&t->sh->writers, 1, __ATOMIC_SEQ_CST);
    } else {
      r = __atomic_add_fetch(&t->sh->readers, 1, __ATOMIC_SEQ_CST);
      if (__atomic_load_n(&t->sh->writers, __ATOMIC_SEQ_CST) != 0)
        __atomic_add_fetch(&t->sh->violations, 1, __ATOMIC_SEQ_CST);
      if (r > __atomic_load_n(&t->sh->max_readers, __ATOMIC_SEQ_CST))
        __atomic_store_n(&t->sh->max_readers, r, __ATOMIC_SEQ_CST);
      __atomic_add_fetch(&t->sh->reads, 1, __ATOMIC_SEQ_CST);
      usleep(500);
      __atomic_sub_fetch(&t->sh->readers, 1, __ATOMIC_SEQ_CST);
    }
    if (zkr_rwlock_unlock(t->rw) != ZKR_OK)
      t->failures++;
  }
  return NULL;
}

static int mx_process(const char *path, mx_shared *sh, int n) {
  zkr_session *s = NULL;
  zkr_session_opts so;
  zkr_rwlock *rw = NULL;
  mx_thread t[MX_THREADS];
  pthread_t tid[MX_THREADS];
  int i, failures = 0;

  memset(&so, 0, sizeof(so));
  so.session_timeout_ms = TH_SESSION_MS;
  if (zkr_session_open(&s, th_hosts(), &so) != ZKR_OK || zkr_rwlock_new(&rw, s, path, NULL) != ZKR_OK)
    return 1;
  for (i = 0; i < MX_THREADS; i++) {
    t[i].rw = rw;
    t[i].sh = sh;
    t[i].seed = (unsigned)(n * 31 + i);
    t[i].failures = 0;
    pthread_create(&tid[i], NULL, mx_main, &t[i]);
  }
  for (i = 0; i < MX_THREADS; i++) {
    pthread_join(tid[i], NULL);
    failures += t[i].failures;
  }
  zkr_rwlock_free(rw);
  zkr_session_close(s);
  return failures == 0 ? 0 : 1;
}

static void test_rwlock_processes_mixed(void) {
  char *path = th_path("rw-mixed");
  mx_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid_t pid[MX_PROCS];
  int i, st;

  CU_ASSERT_FATAL(sh != MAP_FAILED);
  memset(sh, 0, sizeof(*sh));
  for (i = 0; i < MX_PROCS; i++) {
    pid[i] = fork();
    if (pid[i] == 0)
      _exit(mx_process(path, sh, i));
  }
  for (i = 0; i < MX_PROCS; i++) {
    CU_ASSERT_EQUAL(waitpid(pid[i], &st, 0), pid[i]);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  printf("[%d reads, %d writes, up to %d readers together] ", sh->reads, sh->writes, sh->max_readers);
  CU_ASSERT_EQUAL(sh->violations, 0);
  CU_ASSERT_EQUAL(sh->reads + sh->writes, MX_PROCS * MX_THREADS * MX_OPS);
  CU_ASSERT_TRUE(sh->max_readers >= 2); /* readers did share */
  munmap(sh, sizeof(*sh));
  th_finish_path(path);
}

static void test_rwlock_bad_input(void) {
  zkr_session *s = th_session(0);
  zkr_rwlock *rw = NULL;
  int64_t tok;

  CU_ASSERT_EQUAL(zkr_rwlock_new(NULL, s, "/x", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_rwlock_new(&rw, NULL, "/x", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_rwlock_new(&rw, s, "relative", NULL), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(rw);
  CU_ASSERT_EQUAL(zkr_rwlock_rdlock(NULL, 0), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_rwlock_wrlock(NULL, 0), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_rwlock_unlock(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_rwlock_token(NULL, 0, &tok), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_rwlock_held(NULL, 0), 0);
  zkr_rwlock_free(NULL);
  /* The mode is 0 or 1: a held write lock is no answer to write = 42. */
  {
    char *path = th_path("rw-bad");
    char node[1024];

    rw = rw_on(s, path, NULL);
    CU_ASSERT_EQUAL_FATAL(zkr_rwlock_wrlock(rw, -1), ZKR_OK);
    CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 1), 1);
    CU_ASSERT_EQUAL(zkr_rwlock_held(rw, 42), 0);
    CU_ASSERT_EQUAL(zkr_rwlock_valid_until(rw, -1), 0);
    CU_ASSERT_EQUAL(zkr_rwlock_token(rw, 42, &tok), ZKR_EINVAL);
    CU_ASSERT_EQUAL(zkr_rwlock_node(rw, 2, node, sizeof(node)), ZKR_EINVAL);
    CU_ASSERT_EQUAL(zkr_rwlock_unlock(rw), ZKR_OK);
    zkr_rwlock_free(rw);
    th_finish_path(path);
  }
  zkr_session_close(s);
}

int main(void) {
  static const th_test tests[] = {
      {"test_rwlock_readers_share_writer_waits", test_rwlock_readers_share_writer_waits},
      {"test_rwlock_late_reader_behind_queued_writer", test_rwlock_late_reader_behind_queued_writer},
      {"test_rwlock_reentrancy_downgrade_upgrade", test_rwlock_reentrancy_downgrade_upgrade},
      {"test_rwlock_peer_nodes_by_kind", test_rwlock_peer_nodes_by_kind},
      {"test_rwlock_node_deleted_and_expiry", test_rwlock_node_deleted_and_expiry},
      {"test_rwlock_holder_killed", test_rwlock_holder_killed},
      {"test_rwlock_lost_create_reply", test_rwlock_lost_create_reply},
      {"test_rwlock_processes_mixed", test_rwlock_processes_mixed},
      {"test_rwlock_bad_input", test_rwlock_bad_input},
      {NULL, NULL},
  };

  return th_run("rwlock", tests);
}
