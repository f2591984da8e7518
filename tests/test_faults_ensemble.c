/* Fault scenarios that need a 3-node ensemble: the ZooKeeper leader killed
 * while a lock is held and others wait, and the whole ensemble stopped and
 * restarted within the session timeout. The program starts its own
 * ensemble; every case ends with no znode left. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ensemble.h"
#include "harness.h"

/* Session timeouts (parameters, not bounds): one that outlasts a ZooKeeper
 * leader election (the ensemble's initLimit is 20 ticks of 200 ms = 4 s),
 * and one that outlasts a restart of the whole ensemble (three JVMs
 * starting at once, then an election: many seconds on a loaded machine;
 * the server's maxSessionTimeout is 60 s). */
#define ENS_SESSION_MS 10000
#define RESTART_SESSION_MS 45000

static th_ens *ens;

typedef struct waiter {
  zkr_session *s;
  zkr_lock *l;
  int rc;
  int64_t got_at;
} waiter;

static void *waiter_main(void *p) {
  waiter *w = p;

  /* Through the fault and the holder's release: a settle of its session. */
  w->rc = zkr_lock_acquire(w->l, TH_SETTLE_FOR(zkr_session_timeout(w->s)));
  w->got_at = th_now_ms();
  if (w->rc == ZKR_OK)
    zkr_lock_release(w->l);
  return NULL;
}

static zkr_session *open_on(const char *hosts, int timeout_ms) {
  zkr_session_opts o;
  zkr_session *s = NULL;

  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = timeout_ms;
  o.connect_timeout_ms = TH_SETTLE_FOR(timeout_ms);
  CU_ASSERT_EQUAL(zkr_session_open(&s, hosts, &o), ZKR_OK);
  return s;
}

/* Holder keeps the lock through a leader kill; waiters stay out, then go on. */
static void test_faults_ensemble_leader_killed(void) {
  char *path = th_path("fe-leader");
  zkr_session *hs = open_on(th_ens_hosts(ens), ENS_SESSION_MS);
  zkr_lock *hl = NULL;
  waiter w[2];
  pthread_t t[2];
  int i, leader;
  int64_t sid, released_at;

  CU_ASSERT_PTR_NOT_NULL_FATAL(hs);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&hl, hs, path, NULL), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(hl, -1), ZKR_OK);
  sid = zkr_session_id(hs);
  for (i = 0; i < 2; i++) {
    memset(&w[i], 0, sizeof(w[i]));
    w[i].s = open_on(th_ens_hosts(ens), ENS_SESSION_MS);
    CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&w[i].l, w[i].s, path, NULL), ZKR_OK);
    w[i].rc = 99;
    pthread_create(&t[i], NULL, waiter_main, &w[i]);
  }
  CU_ASSERT_TRUE(th_await_nodes(path, 3));
  leader = th_ens_leader(ens);
  CU_ASSERT_TRUE_FATAL(leader > 0);
  CU_ASSERT_EQUAL(th_ens_kill(ens, leader), 0);
  /* A new leader is elected; meanwhile and after, the holder still holds. */
  CU_ASSERT_EQUAL(th_ens_await_leader(ens), 0);
  CU_ASSERT_EQUAL(zkr_lock_held(hl), 1);
  CU_ASSERT_EQUAL(zkr_session_id(hs), sid);
  CU_ASSERT_NOT_EQUAL(zkr_session_get_state(hs), ZKR_SESSION_LOST);
  CU_ASSERT_EQUAL(w[0].rc, 99); /* nobody else entered */
  CU_ASSERT_EQUAL(w[1].rc, 99);
  released_at = th_now_ms();
  CU_ASSERT_EQUAL(zkr_lock_release(hl), ZKR_OK);
  for (i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(w[i].rc, ZKR_OK); /* waiters continue afterwards */
    CU_ASSERT_TRUE(w[i].got_at >= released_at);
    zkr_lock_free(w[i].l);
    zkr_session_close(w[i].s);
  }
  zkr_lock_free(hl);
  zkr_session_close(hs);
  CU_ASSERT_EQUAL(th_ens_start_member(ens, leader), 0);
  th_finish_path(path);
}

/* The whole ensemble down and back within the session timeout: no grant
 * while down, the hold and the queue intact after. */
static void test_faults_ensemble_full_restart(void) {
  char *path = th_path("fe-restart");
  zkr_session *hs = open_on(th_ens_hosts(ens), RESTART_SESSION_MS);
  zkr_lock *hl = NULL;
  waiter w;
  pthread_t t;
  int64_t token_before = 0, token_after = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL(hs);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&hl, hs, path, NULL), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(hl, -1), ZKR_OK);
  zkr_lock_token(hl, &token_before);
  memset(&w, 0, sizeof(w));
  w.s = open_on(th_ens_hosts(ens), RESTART_SESSION_MS);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&w.l, w.s, path, NULL), ZKR_OK);
  w.rc = 99;
  pthread_create(&t, NULL, waiter_main, &w);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));

  CU_ASSERT_EQUAL(th_ens_stop_all(ens), 0);
  CU_ASSERT_EQUAL(w.rc, 99); /* no grant while down */
  CU_ASSERT_EQUAL(th_ens_start_all(ens), 0);
  CU_ASSERT_EQUAL(w.rc, 99);
  CU_ASSERT_EQUAL(zkr_lock_held(hl), 1);
  CU_ASSERT_EQUAL(zkr_lock_token(hl, &token_after), ZKR_OK);
  CU_ASSERT_EQUAL(token_before, token_after);
  CU_ASSERT_TRUE(th_await_nodes(path, 2)); /* nothing re-created, nothing lost */
  CU_ASSERT_EQUAL(zkr_lock_release(hl), ZKR_OK);
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(w.rc, ZKR_OK);
  zkr_lock_free(w.l);
  zkr_session_close(w.s);
  zkr_lock_free(hl);
  zkr_session_close(hs);
  th_finish_path(path);
}

typedef struct changes {
  int ups, downs;
} changes;

static void on_change(zkr_election *e, int leader, void *arg) {
  changes *c = arg;

  (void)e;
  __atomic_add_fetch(leader ? &c->ups : &c->downs, 1, __ATOMIC_SEQ_CST);
}

/* Leadership stays put through a ZooKeeper leader kill when the session
 * survives. */
static void test_faults_ensemble_election_survives_leader_kill(void) {
  char *path = th_path("fe-elect");
  zkr_session *a = open_on(th_ens_hosts(ens), ENS_SESSION_MS),
              *b = open_on(th_ens_hosts(ens), ENS_SESSION_MS);
  changes ca = {0, 0}, cb = {0, 0};
  zkr_election_opts o;
  zkr_election *ea = NULL, *eb = NULL;
  int64_t epoch = 0, after = 0;
  int zk_leader;

  memset(&o, 0, sizeof(o));
  o.on_change = on_change;
  o.arg = &ca;
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&ea, a, path, &o), ZKR_OK);
  o.arg = &cb;
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&eb, b, path, &o), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(ea), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_election_await(ea, TH_SETTLE_FOR(ENS_SESSION_MS)), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(eb), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  zkr_election_epoch(ea, &epoch);
  zk_leader = th_ens_leader(ens);
  CU_ASSERT_TRUE_FATAL(zk_leader > 0);
  CU_ASSERT_EQUAL(th_ens_kill(ens, zk_leader), 0);
  CU_ASSERT_EQUAL(th_ens_await_leader(ens), 0);
  CU_ASSERT_EQUAL(zkr_election_is_leader(ea), 1);
  CU_ASSERT_EQUAL(zkr_election_is_leader(eb), 0);
  CU_ASSERT_EQUAL(zkr_election_epoch(ea, &after), ZKR_OK);
  CU_ASSERT_EQUAL(after, epoch); /* same term */
  CU_ASSERT_EQUAL(ca.downs, 0);
  CU_ASSERT_EQUAL(cb.ups, 0);
  CU_ASSERT_EQUAL(th_ens_start_member(ens, zk_leader), 0);
  zkr_election_free(ea);
  zkr_election_free(eb);
  zkr_session_close(a);
  zkr_session_close(b);
  CU_ASSERT_EQUAL(ca.ups, 1);
  CU_ASSERT_EQUAL(ca.downs, 1);
  th_finish_path(path);
}

int main(void) {
  static const th_test tests[] = {{"test_faults_ensemble_leader_killed", test_faults_ensemble_leader_killed},
                                  {"test_faults_ensemble_full_restart", test_faults_ensemble_full_restart},
                                  {"test_faults_ensemble_election_survives_leader_kill",
                                   test_faults_ensemble_election_survives_leader_kill},
                                  {NULL, NULL}};
  int rc;

  ens = th_ens_start(3);
  if (ens == NULL) {
    fprintf(stderr, "test_faults_ensemble: the ensemble did not start\n");
    return 1;
  }
  setenv("ZKR_TEST_HOSTS", th_ens_hosts(ens), 1); /* th_count_nodes & co. */
  rc = th_run("faults_ensemble", tests);
  th_ens_free(ens);
  return rc;
}
