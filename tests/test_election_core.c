/* Leader election against a real server: one leader at a time (also while
 * leaders are SIGKILLed), on_change pairs, resign handoff, expiry, epochs,
 * observing without participating, bad input. No znode is left behind. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* Session timeout of the expiry and SIGKILL cases: short, so that their
 * protocol bounds are short. */
#define E_MS 2000

typedef struct changes {
  int ups, downs, leader; /* on_change(1) / on_change(0) counts, last value */
} changes;

static void on_change(zkr_election *e, int leader, void *arg) {
  changes *c = arg;

  (void)e;
  if (leader)
    __atomic_add_fetch(&c->ups, 1, __ATOMIC_SEQ_CST);
  else
    __atomic_add_fetch(&c->downs, 1, __ATOMIC_SEQ_CST);
  __atomic_store_n(&c->leader, leader, __ATOMIC_SEQ_CST);
}

static int is_up(void *arg) {
  return __atomic_load_n(&((changes *)arg)->ups, __ATOMIC_SEQ_CST) > 0;
}

static int is_down(void *arg) {
  return __atomic_load_n(&((changes *)arg)->downs, __ATOMIC_SEQ_CST) > 0;
}

static zkr_election *join(zkr_session *s, const char *path, const char *id, changes *c) {
  zkr_election_opts o;
  zkr_election *e = NULL;

  memset(&o, 0, sizeof(o));
  o.id = id;
  o.on_change = c != NULL ? on_change : NULL;
  o.arg = c;
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&e, s, path, &o), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(e), ZKR_OK);
  return e;
}

static void test_election_basic_and_epoch(void) {
  char *path = th_path("e-basic"), id[64], node[1024];
  zkr_session *a = th_session(0), *b = th_session(0);
  changes ca = {0, 0, 0}, cb = {0, 0, 0};
  zkr_election *ea = join(a, path, "alpha", &ca), *eb;
  zkr_participant *p = NULL;
  zhandle_t *raw = th_raw();
  struct Stat st;
  int64_t epoch = 0;
  size_t n = 0;

  CU_ASSERT_EQUAL(zkr_election_await(ea, TH_SETTLE_MS), ZKR_OK);
  eb = join(b, path, "beta", &cb);
  CU_ASSERT_EQUAL(zkr_election_await(eb, 300), ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(th_wait_until(is_up, &ca, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(ca.ups, 1);
  CU_ASSERT_EQUAL(cb.ups, 0);
  CU_ASSERT_EQUAL(zkr_election_is_leader(ea), 1);
  CU_ASSERT_EQUAL(zkr_election_is_leader(eb), 0);
  CU_ASSERT_EQUAL(zkr_election_leader(eb, id, sizeof(id)), ZKR_OK);
  CU_ASSERT_STRING_EQUAL(id, "alpha");
  CU_ASSERT_EQUAL(zkr_election_leader(eb, id, 3), ZKR_EINVAL);
  /* Epoch = czxid of the leader's node; names follow Curator's LeaderLatch. */
  CU_ASSERT_EQUAL(zkr_election_epoch(ea, &epoch), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_epoch(eb, &epoch) == ZKR_ENOTHELD, 1);
  CU_ASSERT_EQUAL(zkr_election_epoch(ea, &epoch), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_participants(a, path, &p, &n), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(n, 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(p[0].node, "-latch-"));
  CU_ASSERT_EQUAL(strncmp(p[0].node, "_c_", 3), 0);
  snprintf(node, sizeof(node), "%s/%s", path, p[0].node);
  CU_ASSERT_EQUAL(zoo_exists(raw, node, 0, &st), ZOK);
  CU_ASSERT_EQUAL(st.czxid, epoch);
  zkr_participants_free(p, n);
  /* Joining again while participating is a no-op. */
  CU_ASSERT_EQUAL(zkr_election_join(eb), ZKR_OK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 2);
  zkr_election_free(ea);
  zkr_election_free(eb);
  CU_ASSERT_EQUAL(ca.downs, 1); /* free while leading: on_change(0) before free returned */
  zkr_session_close(a);
  zkr_session_close(b);
  th_raw_close(raw);
  th_finish_path(path);
}

static void test_election_resign_hands_over(void) {
  char *path = th_path("e-resign");
  zkr_session *a = th_session(0), *b = th_session(0);
  changes ca = {0, 0, 0}, cb = {0, 0, 0};
  zkr_election *ea = join(a, path, "a", &ca), *eb;
  int64_t t0, e1 = 0, e2 = 0;

  CU_ASSERT_EQUAL_FATAL(zkr_election_await(ea, TH_SETTLE_MS), ZKR_OK);
  eb = join(b, path, "b", &cb);
  zkr_election_epoch(ea, &e1);
  t0 = th_now_ms();
  CU_ASSERT_EQUAL(zkr_election_resign(ea), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_await(eb, TH_SETTLE_MS), ZKR_OK);
  printf("[resign handoff %lld ms] ", (long long)(th_now_ms() - t0));
  CU_ASSERT_TRUE(th_now_ms() - t0 < TH_LATE_MS); /* one round trip and a notification */
  CU_ASSERT_TRUE(th_wait_until(is_down, &ca, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_wait_until(is_up, &cb, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(ca.ups, 1);
  CU_ASSERT_EQUAL(ca.downs, 1);
  CU_ASSERT_EQUAL(cb.ups, 1);
  zkr_election_epoch(eb, &e2);
  CU_ASSERT_TRUE(e2 > e1);
  CU_ASSERT_EQUAL(zkr_election_resign(ea), ZKR_ENOTHELD);
  /* Rejoin: back of the queue, leads only after b resigns. */
  CU_ASSERT_EQUAL(zkr_election_join(ea), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_await(ea, 300), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zkr_election_resign(eb), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_await(ea, TH_SETTLE_MS), ZKR_OK);
  zkr_election_free(ea);
  zkr_election_free(eb);
  zkr_session_close(a);
  zkr_session_close(b);
  CU_ASSERT_EQUAL(ca.ups, 2);
  CU_ASSERT_EQUAL(ca.downs, 2);
  CU_ASSERT_EQUAL(cb.ups, 1);
  CU_ASSERT_EQUAL(cb.downs, 1);
  th_finish_path(path);
}

static int session_lost(void *arg) {
  return zkr_session_get_state(arg) == ZKR_SESSION_LOST;
}

static void test_election_session_expired(void) {
  char *path = th_path("e-expire");
  zkr_session *a = th_session(E_MS), *b = th_session(E_MS);
  changes ca = {0, 0, 0}, cb = {0, 0, 0};
  zkr_election *ea = join(a, path, "a", &ca), *eb;
  int64_t e1 = 0, e2 = 0, t0;

  CU_ASSERT_EQUAL_FATAL(zkr_election_await(ea, TH_SETTLE_MS), ZKR_OK);
  eb = join(b, path, "b", &cb);
  zkr_election_epoch(ea, &e1);
  CU_ASSERT_EQUAL(th_expire(a), 0);
  t0 = th_now_ms(); /* the server has expired it: from here on, within its timeout */
  CU_ASSERT_TRUE(th_wait_until(is_down, &ca, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_now_ms() - t0 < E_MS * TH_TIME_SCALE); /* stepped down within its own timeout */
  CU_ASSERT_EQUAL(zkr_election_is_leader(ea), 0);
  CU_ASSERT_EQUAL(zkr_election_await(eb, TH_SETTLE_MS), ZKR_OK);
  zkr_election_epoch(eb, &e2);
  CU_ASSERT_TRUE(e1 < e2);
  /* No silent rejoin; once the session is known lost, no rejoin at all. */
  CU_ASSERT_TRUE(th_wait_until(session_lost, a, TH_SETTLE_FOR(E_MS)));
  CU_ASSERT_EQUAL(zkr_election_join(ea), ZKR_ESESSION);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  zkr_election_free(ea);
  zkr_election_free(eb);
  zkr_session_close(a);
  zkr_session_close(b);
  CU_ASSERT_EQUAL(ca.ups, 1);
  CU_ASSERT_EQUAL(ca.downs, 1);
  th_finish_path(path);
}

typedef struct observed {
  zkr_session *s;
  const char *path;
  int64_t epoch;
  char id[64];
  int rc;
} observed;

static void *observe_main(void *p) {
  observed *o = p;

  o->rc = zkr_election_observe(o->s, o->path, &o->epoch, o->id, sizeof(o->id), TH_SETTLE_MS);
  return NULL;
}

static void test_election_observe(void) {
  char *path = th_path("e-observe");
  zkr_session *a = th_session(0), *b = th_session(0), *obs = th_session(0);
  observed o = {obs, path, 0, "", 99};
  zkr_election *ea, *eb;
  int64_t t0, e = 0;
  pthread_t t;

  /* Nothing yet: times out, having set a watch for the creation. */
  t0 = th_now_ms();
  CU_ASSERT_EQUAL(zkr_election_observe(obs, path, &e, NULL, 0, 300), ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(th_now_ms() - t0 >= 300);
  pthread_create(&t, NULL, observe_main, &o);
  ea = join(a, path, "first", NULL);
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(o.rc, ZKR_OK);
  CU_ASSERT_STRING_EQUAL(o.id, "first");
  CU_ASSERT_EQUAL(zkr_election_await(ea, TH_SETTLE_MS), ZKR_OK);
  zkr_election_epoch(ea, &e);
  CU_ASSERT_EQUAL(o.epoch, e);
  eb = join(b, path, "second", NULL);
  /* A waiter joining changes nothing: the observer times out. */
  CU_ASSERT_EQUAL(zkr_election_observe(obs, path, &o.epoch, o.id, sizeof(o.id), 300), ZKR_ETIMEDOUT);
  pthread_create(&t, NULL, observe_main, &o);
  CU_ASSERT_EQUAL(zkr_election_resign(ea), ZKR_OK);
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(o.rc, ZKR_OK);
  CU_ASSERT_STRING_EQUAL(o.id, "second");
  CU_ASSERT_TRUE(o.epoch > e);
  zkr_election_free(ea);
  zkr_election_free(eb);
  zkr_session_close(a);
  zkr_session_close(b);
  zkr_session_close(obs);
  th_finish_path(path);
}

/* Exactly one leader among 5 participants in 3 processes, sampled all the
 * time through shared memory, while leaders are SIGKILLed. */
#define PROCS 3
#define SLOTS 5

typedef struct board {
  int leader[SLOTS];
  int proc_of[SLOTS];
} board;

static board *bd;
/* The children stay until the write end (held by the parent only) closes:
 * their read then sees the end of the file. */
static int stop_pipe[2];

typedef struct slot_arg {
  int slot;
} slot_arg;

static void slot_change(zkr_election *e, int leader, void *arg) {
  (void)e;
  __atomic_store_n(&bd->leader[((slot_arg *)arg)->slot], leader, __ATOMIC_SEQ_CST);
}

static int child(const char *path, int proc) {
  zkr_session *s[SLOTS];
  zkr_election *e[SLOTS];
  slot_arg args[SLOTS];
  int i, n = 0;
  char c;

  close(stop_pipe[1]); /* only the parent may end the wait */
  for (i = 0; i < SLOTS; i++) {
    zkr_election_opts o;
    if (bd->proc_of[i] != proc)
      continue;
    s[n] = th_session(E_MS);
    memset(&o, 0, sizeof(o));
    args[n].slot = i;
    o.on_change = slot_change;
    o.arg = &args[n];
    if (s[n] == NULL || zkr_election_new(&e[n], s[n], path, &o) != ZKR_OK ||
        zkr_election_join(e[n]) != ZKR_OK)
      return 1;
    n++;
  }
  while (read(stop_pipe[0], &c, 1) != 0 && errno == EINTR)
    ;
  for (i = 0; i < n; i++) {
    zkr_election_free(e[i]);
    zkr_session_close(s[i]);
  }
  return 0;
}

static int leaders(void) {
  int i, n = 0;

  for (i = 0; i < SLOTS; i++)
    n += __atomic_load_n(&bd->leader[i], __ATOMIC_SEQ_CST);
  return n;
}

static int one_leader(void *arg) {
  (void)arg;
  return leaders() == 1;
}

static void test_election_one_leader_under_kills(void) {
  char *path = th_path("e-kills");
  pid_t pid[PROCS + 3];
  int i, kills, max_seen = 0, nproc = PROCS, st;

  bd = mmap(NULL, sizeof(*bd), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CU_ASSERT_FATAL(bd != MAP_FAILED);
  CU_ASSERT_EQUAL_FATAL(pipe(stop_pipe), 0);
  memset(bd, 0, sizeof(*bd));
  for (i = 0; i < SLOTS; i++)
    bd->proc_of[i] = i % PROCS;
  for (i = 0; i < PROCS; i++) {
    pid[i] = fork();
    if (pid[i] == 0)
      _exit(child(path, i));
  }
  CU_ASSERT_TRUE(th_wait_until(one_leader, NULL, TH_SETTLE_FOR(E_MS)));
  for (kills = 0; kills < 2; kills++) {
    int victim = -1, s;
    int64_t t0, until;

    for (s = 0; s < SLOTS; s++)
      if (__atomic_load_n(&bd->leader[s], __ATOMIC_SEQ_CST))
        victim = bd->proc_of[s];
    CU_ASSERT_TRUE_FATAL(victim >= 0);
    /* The dead cannot report: clear their slots, then kill. */
    for (s = 0; s < SLOTS; s++)
      if (bd->proc_of[s] == victim) {
        __atomic_store_n(&bd->leader[s], 0, __ATOMIC_SEQ_CST);
        bd->proc_of[s] = -1;
      }
    kill(pid[victim], SIGKILL);
    waitpid(pid[victim], NULL, 0);
    pid[victim] = -1;
    t0 = th_now_ms();
    /* Strict: the dead leader's sessions end, the next one takes over. */
    until = t0 + TH_EXPIRED_BY_MS(E_MS);
    while (th_now_ms() < until && leaders() != 1) {
      if (leaders() > max_seen)
        max_seen = leaders();
      usleep(1000);
    }
    CU_ASSERT_EQUAL(leaders(), 1);
    printf("[new leader %lld ms after SIGKILL] ", (long long)(th_now_ms() - t0));
    /* Sample a while: never two. */
    until = th_now_ms() + 500;
    while (th_now_ms() < until) {
      if (leaders() > max_seen)
        max_seen = leaders();
      usleep(1000);
    }
  }
  CU_ASSERT_TRUE(max_seen <= 1);
  close(stop_pipe[1]);
  for (i = 0; i < nproc; i++) {
    if (pid[i] < 0)
      continue;
    CU_ASSERT_EQUAL(waitpid(pid[i], &st, 0), pid[i]);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  close(stop_pipe[0]);
  munmap(bd, sizeof(*bd));
  th_finish_path(path);
}

static void test_election_bad_input(void) {
  static const char *const bad[] = {"",       "relative", "/",          "/a/",          "//a",    "/a//b",
                                    "/a/./b", "/a/../b",  "/zookeeper", "/zookeeper/x", "/a\001b"};
  zkr_session *s = th_session(0);
  zkr_election *e = NULL;
  char id[8];
  int64_t ep;
  size_t i;

  CU_ASSERT_EQUAL(zkr_election_new(NULL, s, "/a", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_election_new(&e, NULL, "/a", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_election_new(&e, s, NULL, NULL), ZKR_EINVAL);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CU_ASSERT_EQUAL(zkr_election_new(&e, s, bad[i], NULL), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(e);
  CU_ASSERT_EQUAL(th_count_nodes("/a"), 0);
  CU_ASSERT_EQUAL(zkr_election_join(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_election_await(NULL, 0), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_election_is_leader(NULL), 0);
  CU_ASSERT_EQUAL(zkr_election_epoch(NULL, &ep), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_election_leader(NULL, id, sizeof(id)), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_election_resign(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_election_observe(NULL, "/a", &ep, NULL, 0, 0), ZKR_EINVAL);
  zkr_election_free(NULL);
  CU_ASSERT_EQUAL(zkr_election_new(&e, s, "/a", NULL), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_await(e, 0), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(zkr_election_resign(e), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(zkr_election_leader(e, id, sizeof(id)), ZKR_ENOLEADER);
  zkr_election_free(e);
  CU_ASSERT_EQUAL(th_count_nodes("/a"), 0);
  zkr_session_close(s);
}

static void test_election_session_close(void) {
  char *path = th_path("e-close");
  zkr_session *a = th_session(0);
  changes ca = {0, 0, 0};
  zkr_election *ea = join(a, path, "a", &ca);

  CU_ASSERT_EQUAL_FATAL(zkr_election_await(ea, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(is_up, &ca, TH_SETTLE_MS));
  zkr_session_close(a);
  CU_ASSERT_EQUAL(ca.downs, 1);
  CU_ASSERT_EQUAL(zkr_election_is_leader(ea), 0);
  zkr_election_free(ea);
  th_finish_path(path);
}

int main(void) {
  static const th_test tests[] = {
      {"test_election_basic_and_epoch", test_election_basic_and_epoch},
      {"test_election_resign_hands_over", test_election_resign_hands_over},
      {"test_election_session_expired", test_election_session_expired},
      {"test_election_observe", test_election_observe},
      {"test_election_one_leader_under_kills", test_election_one_leader_under_kills},
      {"test_election_bad_input", test_election_bad_input},
      {"test_election_session_close", test_election_session_close},
      {NULL, NULL}};

  return th_run("election", tests);
}
