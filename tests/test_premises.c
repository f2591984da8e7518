/* The contender queue's premises (src/queue.c, P1-P5), each broken by a
 * fault against a real server — the inputs of the "never two holders"
 * report: the directory's sequence counter at its limit (a server started
 * from a snapshot at the limit), a waiting node deleted by another client
 * (next in line, further back, across a reconnection), persistent
 * look-alikes in listings, and an election term announced twice. Each
 * case checks that nobody holds without its node and that no two hold. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zookeeper/proto.h>

#include "core.h"

#include "harness.h"
#include "proxy.h"

/* A wait that must end in any case (a test that fails must not hang): a
 * few session timeouts, far beyond any wait the case expects. */
#define WAIT_BOUND(s) (6 * zkr_session_timeout(s))

/* Full path of the only child of dir other than the node `not` (NULL: the
 * only child), into out. 1 if there is exactly one such child. */
static int other_child(const char *dir, const char * not, char *out, size_t len) {
  zhandle_t *raw = th_raw();
  struct String_vector kids = {0, NULL};
  int i, n = 0;

  if (raw == NULL || zoo_get_children(raw, dir, 0, &kids) != ZOK) {
    th_raw_close(raw);
    return 0;
  }
  for (i = 0; i < kids.count; i++) {
    char full[1024];
    snprintf(full, sizeof(full), "%s/%s", dir, kids.data[i]);
    if (not != NULL && strcmp(full, not ) == 0)
      continue;
    snprintf(out, len, "%s", full);
    n++;
  }
  deallocate_String_vector(&kids);
  th_raw_close(raw);
  return n == 1;
}

/* The newest child of dir (highest czxid) into out; 1 on success. */
static int newest_child(const char *dir, char *out, size_t len) {
  zhandle_t *raw = th_raw();
  struct String_vector kids = {0, NULL};
  int64_t best = -1;
  int i;

  if (raw == NULL || zoo_get_children(raw, dir, 0, &kids) != ZOK) {
    th_raw_close(raw);
    return 0;
  }
  for (i = 0; i < kids.count; i++) {
    char full[1024];
    struct Stat st;
    snprintf(full, sizeof(full), "%s/%s", dir, kids.data[i]);
    if (zoo_exists(raw, full, 0, &st) == ZOK && st.czxid > best) {
      best = st.czxid;
      snprintf(out, len, "%s", full);
    }
  }
  deallocate_String_vector(&kids);
  th_raw_close(raw);
  return best >= 0;
}

static int watched(void *path) {
  return th_watched(path);
}

static void count_terms(zkr_election *e, int leader, void *arg) {
  (void)e;
  if (leader)
    __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static int not_held(void *l) {
  return !zkr_lock_held(l);
}

static int past(void *ms) {
  return th_now_ms() >= *(int64_t *)ms;
}

static int cut_fired(void *p) {
  return tp_cut_fired(p) > 0;
}

static int watched_twice(void *path) {
  return th_watchers(path) == 2;
}

/* --- P1: the sequence counter at its limit ---------------------------------- */

/* A server of our own, started from a snapshot in which `dir` has child
 * version 2147483646: the next node gets suffix 2147483646, every later one
 * 2147483647 again (Debian's 3.8). The seeder uses the server's own classes
 * (tests/seed/SeedSnapshot.java). */
typedef struct seeded {
  char dir[256];
  char hosts[64];
  char *saved_hosts;
} seeded;

static int seeded_start(seeded *sv, const char *znode) {
  const char *srcdir = getenv("srcdir") != NULL ? getenv("srcdir") : ".";
  const char *cp = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar";
  char cmd[4096];
  FILE *f;

  snprintf(sv->dir, sizeof(sv->dir), "%s/zkr-seed.XXXXXX",
           getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(sv->dir) == NULL)
    return 0;
  snprintf(cmd, sizeof(cmd),
           "javac -d '%s' -cp %s '%s/tests/seed/SeedSnapshot.java' && "
           "java -cp %s:/usr/share/java/slf4j-nop.jar:'%s' SeedSnapshot '%s/seed/version-2' '%s' 2147483646",
           sv->dir, cp, srcdir, cp, sv->dir, sv->dir, znode);
  if (system(cmd) != 0)
    return 0;
  snprintf(cmd, sizeof(cmd), "ZKR_ZK_SEED='%s/seed' '%s/tests/zk-server.sh' start '%s'", sv->dir, srcdir,
           sv->dir);
  f = popen(cmd, "r");
  if (f == NULL)
    return 0;
  if (fgets(sv->hosts, sizeof(sv->hosts), f) == NULL)
    sv->hosts[0] = '\0';
  if (pclose(f) != 0 || sv->hosts[0] == '\0')
    return 0;
  sv->hosts[strcspn(sv->hosts, "\n")] = '\0';
  /* The harness reads the server from the environment: point it here. */
  sv->saved_hosts = strdup(th_hosts());
  setenv("ZKR_TEST_HOSTS", sv->hosts, 1);
  return 1;
}

static void seeded_stop(seeded *sv) {
  const char *srcdir = getenv("srcdir") != NULL ? getenv("srcdir") : ".";
  char cmd[1024];

  if (sv->saved_hosts != NULL) {
    setenv("ZKR_TEST_HOSTS", sv->saved_hosts, 1);
    free(sv->saved_hosts);
  }
  snprintf(cmd, sizeof(cmd), "'%s/tests/zk-server.sh' stop '%s'; rm -rf '%s'", srcdir, sv->dir, sv->dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

#define OVF_CONTENDERS 10

/* The report's input: A holds; 10 contenders arrive 300 ms apart; A
 * releases. Before the fix their names tied on the suffix and several were
 * granted at once. Now each is refused with ZKR_EEXHAUSTED and its node
 * deleted; recreating the idle directory (the documented recovery) makes it
 * usable again. */
static void test_overflow_repeated_suffix_one_holder(void) {
  const char *dir = "/zkr-ovf";
  seeded sv;
  zkr_session *sa, *s[OVF_CONTENDERS];
  zkr_lock *a, *l[OVF_CONTENDERS];
  th_acquirer c[OVF_CONTENDERS];
  char node[1024];
  zhandle_t *raw;
  int i, refused = 0, granted = 0;

  memset(&sv, 0, sizeof(sv));
  CU_ASSERT_TRUE_FATAL(seeded_start(&sv, dir));
  sa = th_session(0);
  a = th_lock(sa, dir);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(a, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(a, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(node, "-lock-2147483646")); /* the last regular suffix */
  for (i = 0; i < OVF_CONTENDERS; i++) {
    s[i] = th_session(0);
    l[i] = th_lock(s[i], dir);
    th_acquirer_start(&c[i], l[i], 2 * zkr_session_timeout(s[i]), 1);
    usleep(300 * 1000); /* the report's arrival pattern, not a wait for a condition */
  }
  CU_ASSERT_EQUAL(zkr_lock_held(a), 1);
  CU_ASSERT_EQUAL(zkr_lock_release(a), ZKR_OK);
  /* Granted contenders keep holding until every acquire has returned, so
   * the number granted is the number holding at once. */
  for (i = 0; i < OVF_CONTENDERS; i++)
    CU_ASSERT_TRUE(th_wait_until(th_acquirer_done, &c[i], 4 * zkr_session_timeout(s[i])));
  for (i = 0; i < OVF_CONTENDERS; i++)
    granted += c[i].rc == ZKR_OK;
  for (i = 0; i < OVF_CONTENDERS; i++)
    refused += th_acquirer_finish(&c[i]) == ZKR_EEXHAUSTED;
  printf("[%d refused with ZKR_EEXHAUSTED, %d granted at once] ", refused, granted);
  CU_ASSERT_TRUE(granted <= 1); /* never two holders */
  CU_ASSERT_EQUAL(refused, OVF_CONTENDERS);
  CU_ASSERT_EQUAL(th_count_nodes(dir), 0); /* every refused node was deleted before returning */
  /* The counter stays at its limit: a later contender is refused too. */
  CU_ASSERT_EQUAL(zkr_lock_acquire(l[0], -1), ZKR_EEXHAUSTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(zkr_strerror(ZKR_EEXHAUSTED), "recreate the directory"));
  /* Recovery: delete the idle directory; it is made afresh, counter at 0. */
  raw = th_raw();
  CU_ASSERT_EQUAL(zoo_delete(raw, dir, -1), ZOK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(a, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(a, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(node, "-lock-0000000000"));
  CU_ASSERT_EQUAL(zkr_lock_acquire(l[1], 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zkr_lock_release(a), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l[1], 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(l[1]), ZKR_OK);
  for (i = 0; i < OVF_CONTENDERS; i++) {
    zkr_lock_free(l[i]);
    zkr_session_close(s[i]);
  }
  zkr_lock_free(a);
  zkr_session_close(sa);
  th_raw_close(raw);
  seeded_stop(&sv);
}

/* A wrapped (negative) suffix sorts before every regular one: a peer's node
 * that got one (a server that wraps) is waited for, never overtaken. The
 * test server repeats instead of wrapping, so the peer's node is made with
 * that name directly. */
static void test_overflow_wrapped_suffix_waits(void) {
  char *path = th_path("p-wrap"), peer[1024], pred[1100];
  zhandle_t *raw = th_raw();
  zkr_session *s = th_session(0);
  zkr_lock *l = th_lock(s, path);
  th_acquirer a;

  zoo_create(raw, "/zkr-test", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0); /* may exist */
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(peer, sizeof(peer), "%s/_c_0b7e5e4a-0000-4000-8000-000000000000-lock--2147483648", path);
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, peer, "peer", 4, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0), ZOK);
  th_acquirer_start(&a, l, WAIT_BOUND(s), 1);
  /* It waits on the peer's node: its watch is on it. */
  snprintf(pred, sizeof(pred), "%s", peer);
  CU_ASSERT_TRUE(th_wait_until(watched, pred, TH_SETTLE_MS));
  CU_ASSERT_FALSE(th_acquirer_done(&a));
  CU_ASSERT_EQUAL(zoo_delete(raw, peer, -1), ZOK);
  CU_ASSERT_EQUAL(th_acquirer_finish(&a), ZKR_OK);
  zkr_lock_free(l);
  zkr_session_close(s);
  CU_ASSERT_EQUAL(zoo_delete(raw, path, -1), ZOK);
  th_raw_close(raw);
  th_finish_path(path);
}

/* --- P2: a waiting node deleted by another client ---------------------------- */

/* The report's input (etcd#19597): H holds, W waits behind it, an operator
 * deletes W's node, 2 s later H releases, X acquires. Before the fix W was
 * granted 2 s after its node was gone, alongside X. Now W's acquire returns
 * ZKR_ELOST as soon as the deletion reaches it (its own-node watch), long
 * before H releases, and only X holds. */
static void test_deleted_waiting_node_next_in_line(void) {
  char *path = th_path("p-del1"), hnode[1024], wnode[1024];
  zkr_session *sh = th_session(0), *sw = th_session(0), *sx = th_session(0);
  zkr_lock *h = th_lock(sh, path), *w = th_lock(sw, path), *x = th_lock(sx, path);
  zhandle_t *raw = th_raw();
  th_acquirer a;
  int64_t deleted_ms;
  int timeout_ms = zkr_session_timeout(sw);

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(h, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(h, hnode, sizeof(hnode)), ZKR_OK);
  th_acquirer_start(&a, w, WAIT_BOUND(sw), 1);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  CU_ASSERT_TRUE_FATAL(other_child(path, hnode, wnode, sizeof(wnode)));
  /* W is waiting: watching H's node and its own. */
  CU_ASSERT_TRUE(th_wait_until(watched, hnode, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_wait_until(watched, wnode, TH_SETTLE_MS));
  deleted_ms = th_now_ms();
  CU_ASSERT_EQUAL(zoo_delete(raw, wnode, -1), ZOK);
  /* Promptly: within the session timeout, while H still holds. */
  CU_ASSERT_TRUE(th_wait_until(th_acquirer_done, &a, timeout_ms));
  if (th_acquirer_done(&a))
    printf("[W told %lld ms after the delete was sent] ", (long long)(a.returned_ms - deleted_ms));
  CU_ASSERT_EQUAL(th_acquirer_finish(&a), ZKR_ELOST);
  CU_ASSERT_EQUAL(zkr_lock_held(w), 0);
  CU_ASSERT_EQUAL(zkr_lock_held(h), 1);
  CU_ASSERT_EQUAL(zkr_lock_release(h), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(x, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_held(w), 0);
  CU_ASSERT_EQUAL(zkr_lock_release(w), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(zkr_lock_release(x), ZKR_OK);
  zkr_lock_free(h);
  zkr_lock_free(w);
  zkr_lock_free(x);
  zkr_session_close(sh);
  zkr_session_close(sw);
  zkr_session_close(sx);
  th_raw_close(raw);
  th_finish_path(path);
}

/* Further back (W2 listed two nodes before it): W2 too is told at once by
 * its own-node watch, set once it has waited a moment, and W1, W2's
 * predecessor, is not disturbed. W2 is never granted. */
static void test_deleted_waiting_node_further_back(void) {
  char *path = th_path("p-del2"), hnode[1024], w1node[1024], w2node[1024];
  zkr_session *sh = th_session(0), *s1 = th_session(0), *s2 = th_session(0), *sx = th_session(0);
  zkr_lock *h = th_lock(sh, path), *w1 = th_lock(s1, path), *w2 = th_lock(s2, path), *x = th_lock(sx, path);
  zhandle_t *raw = th_raw();
  th_acquirer a1, a2;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(h, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(h, hnode, sizeof(hnode)), ZKR_OK);
  th_acquirer_start(&a1, w1, WAIT_BOUND(s1), 1);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  CU_ASSERT_TRUE_FATAL(other_child(path, hnode, w1node, sizeof(w1node)));
  th_acquirer_start(&a2, w2, WAIT_BOUND(s2), 1);
  CU_ASSERT_TRUE(th_await_nodes(path, 3));
  CU_ASSERT_TRUE_FATAL(newest_child(path, w2node, sizeof(w2node)));
  /* W2 waits on W1's node (watched by W1 itself and by W2) and watches its
   * own. */
  CU_ASSERT_TRUE(th_wait_until(watched_twice, w1node, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_wait_until(watched, w2node, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zoo_delete(raw, w2node, -1), ZOK);
  CU_ASSERT_TRUE(th_wait_until(th_acquirer_done, &a2, zkr_session_timeout(s2)));
  CU_ASSERT_EQUAL(th_acquirer_finish(&a2), ZKR_ELOST);
  CU_ASSERT_FALSE(th_acquirer_done(&a1));
  CU_ASSERT_EQUAL(zkr_lock_release(h), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(th_acquirer_done, &a1, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(th_acquirer_finish(&a1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_held(w2), 0);
  CU_ASSERT_EQUAL(zkr_lock_acquire(x, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(x), ZKR_OK);
  zkr_lock_free(h);
  zkr_lock_free(w1);
  zkr_lock_free(w2);
  zkr_lock_free(x);
  zkr_session_close(sh);
  zkr_session_close(s1);
  zkr_session_close(s2);
  zkr_session_close(sx);
  th_raw_close(raw);
  th_finish_path(path);
}

/* Three election participants on one path: H leads, W waits behind it
 * (its node and H's watched), and a third, T, is made but has not joined.
 * W's on_change counts its terms: a grant, however brief, is announced. */
typedef struct lineup {
  char *path;
  char hnode[1024], wnode[1024];
  zkr_session *sh, *sw, *st;
  zkr_election *h, *w, *t;
  int terms;
} lineup;

static void lineup_start(lineup *q, const char *tag, zkr_session *sw, const char *third) {
  zkr_election_opts eo;

  memset(q, 0, sizeof(*q));
  q->path = th_path(tag);
  q->sh = th_session(0);
  q->st = th_session(0);
  q->sw = sw;
  memset(&eo, 0, sizeof(eo));
  eo.id = "H";
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&q->h, q->sh, q->path, &eo), ZKR_OK);
  eo.id = third;
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&q->t, q->st, q->path, &eo), ZKR_OK);
  eo.id = "W";
  eo.on_change = count_terms;
  eo.arg = &q->terms;
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&q->w, sw, q->path, &eo), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(q->h), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_election_await(q->h, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_TRUE_FATAL(other_child(q->path, NULL, q->hnode, sizeof(q->hnode)));
  CU_ASSERT_EQUAL(zkr_election_join(q->w), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(q->path, 2));
  CU_ASSERT_TRUE_FATAL(other_child(q->path, q->hnode, q->wnode, sizeof(q->wnode)));
  CU_ASSERT_TRUE(th_wait_until(watched, q->hnode, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_wait_until(watched, q->wnode, TH_SETTLE_MS));
}

/* W's participation ended with its node (await says why) and W never led;
 * then everything goes. */
static void lineup_finish(lineup *q) {
  CU_ASSERT_EQUAL(zkr_election_await(q->w, 2 * zkr_session_timeout(q->sw)), ZKR_ELOST);
  CU_ASSERT_EQUAL(zkr_election_is_leader(q->w), 0);
  zkr_election_free(q->w); /* delivers every announcement owed before returning */
  CU_ASSERT_EQUAL(__atomic_load_n(&q->terms, __ATOMIC_SEQ_CST), 0);
  zkr_election_free(q->h);
  zkr_election_free(q->t);
  zkr_session_close(q->sh);
  zkr_session_close(q->sw);
  zkr_session_close(q->st);
  th_finish_path(q->path);
}

/* One multi deletes the holder's node, then the next waiter's: both events
 * carry one zxid and arrive in the multi's order, the predecessor's first,
 * so their order proves nothing about our node (found by a review: W was
 * granted in 5 of 10 runs, beside W3). The read of our own node before a
 * grant sees the whole multi: W never leads, W3 does. */
static void test_deleted_waiting_node_in_one_multi(void) {
  zhandle_t *raw = th_raw();
  zoo_op_t ops[2];
  zoo_op_result_t res[2];
  lineup q;

  lineup_start(&q, "p-multi", th_session(0), "W3");
  CU_ASSERT_EQUAL(zkr_election_join(q.t), ZKR_OK);
  CU_ASSERT_TRUE(th_await_nodes(q.path, 3));
  CU_ASSERT_TRUE(th_wait_until(watched_twice, q.wnode, TH_SETTLE_MS)); /* W3's watch, and W's own */
  zoo_delete_op_init(&ops[0], q.hnode, -1);
  zoo_delete_op_init(&ops[1], q.wnode, -1);
  CU_ASSERT_EQUAL(zoo_multi(raw, 2, ops, res), ZOK);
  CU_ASSERT_EQUAL(zkr_election_await(q.t, TH_SETTLE_MS), ZKR_OK);
  lineup_finish(&q);
  th_raw_close(raw);
}

/* A young hold (granted from a listing, no own-node watch yet) whose node
 * is deleted: held() turns 0 within the own-node watch's delay and a round
 * trip (it stayed 1 for about a second before the event thread was woken
 * for it), and release says ZKR_ELOST. */
static void test_deleted_young_hold(void) {
  char *path = th_path("p-young"), node[1024];
  zkr_session *s = th_session(0);
  zkr_lock *l = th_lock(s, path);
  zhandle_t *raw = th_raw();
  int64_t deleted;
  int bound_ms = (int)(ZKR__OWN_WATCH_AFTER_NS / 1000000) * 2 * TH_TIME_SCALE;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(l, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  deleted = th_now_ms();
  CU_ASSERT_TRUE(th_wait_until(not_held, l, bound_ms));
  printf("[held() 0 after %lld ms] ", (long long)(th_now_ms() - deleted));
  CU_ASSERT_EQUAL(zkr_lock_lost_reason(l), ZKR_LOST_DELETED);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, 0), ZKR_ELOST); /* reentrant: says why */
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_ELOST);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_ENOTHELD);
  /* Released before the watch saw it: the delete tells. */
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(l, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_ELOST);
  zkr_lock_free(l);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
}

/* Across a reconnection the order of watch events is the client's, not the
 * server's: while W is cut off, its node is deleted, H releases and X takes
 * the lock; when W reconnects both of its watches fire, in either order. W
 * must not conclude "predecessor gone, so I hold" from that order: it lists
 * again, finds its node gone, and returns ZKR_ELOST while X holds. */
static void test_deleted_waiting_node_across_reconnect(void) {
  char *path = th_path("p-del3"), hnode[1024], wnode[1024];
  tp_proxy *p = tp_start(th_hosts());
  zkr_session_opts o;
  zkr_session *sh = th_session(0), *sx = th_session(0), *sw = NULL;
  zkr_lock *h = th_lock(sh, path), *x = th_lock(sx, path), *w;
  zhandle_t *raw = th_raw();
  th_acquirer a;
  int timeout_ms;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = 8000; /* outlives the cut below by far */
  CU_ASSERT_EQUAL_FATAL(zkr_session_open(&sw, tp_hosts(p), &o), ZKR_OK);
  timeout_ms = zkr_session_timeout(sw);
  w = th_lock(sw, path);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(h, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(h, hnode, sizeof(hnode)), ZKR_OK);
  th_acquirer_start(&a, w, WAIT_BOUND(sw), 1);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  CU_ASSERT_TRUE_FATAL(other_child(path, hnode, wnode, sizeof(wnode)));
  CU_ASSERT_TRUE(th_wait_until(watched, hnode, TH_SETTLE_MS));
  CU_ASSERT_TRUE(th_wait_until(watched, wnode, TH_SETTLE_MS));
  tp_refuse(p, 1);
  tp_drop_all(p);
  CU_ASSERT_EQUAL(zoo_delete(raw, wnode, -1), ZOK);
  CU_ASSERT_EQUAL(zkr_lock_release(h), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(x, 0), ZKR_OK);
  tp_refuse(p, 0);
  CU_ASSERT_TRUE(th_wait_until(th_acquirer_done, &a, TH_SETTLE_FOR(timeout_ms)));
  CU_ASSERT_EQUAL(th_acquirer_finish(&a), ZKR_ELOST);
  CU_ASSERT_EQUAL(zkr_lock_held(w), 0);
  CU_ASSERT_EQUAL(zkr_lock_held(x), 1);

  CU_ASSERT_EQUAL(zkr_lock_release(x), ZKR_OK);
  zkr_lock_free(h);
  zkr_lock_free(w);
  zkr_lock_free(x);
  zkr_session_close(sh);
  zkr_session_close(sw);
  zkr_session_close(sx);
  tp_stop(p);
  th_raw_close(raw);
  th_finish_path(path);
}

static int leader_is(zkr_election *e, const char *want) {
  char id[64];

  return zkr_election_leader(e, id, sizeof(id)) == ZKR_OK && strcmp(id, want) == 0;
}

/* The same through the election, where a grant, however brief, is
 * announced (every term that began gets on_change(1)): W must never lead. */
static void test_deleted_waiting_node_across_reconnect_election(void) {
  tp_proxy *p = tp_start(th_hosts());
  zkr_session_opts o;
  zkr_session *sw = NULL;
  zhandle_t *raw = th_raw();
  lineup q;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = 8000;
  CU_ASSERT_EQUAL_FATAL(zkr_session_open(&sw, tp_hosts(p), &o), ZKR_OK);
  lineup_start(&q, "p-del4", sw, "X");
  tp_refuse(p, 1);
  tp_drop_all(p);
  CU_ASSERT_EQUAL(zoo_delete(raw, q.wnode, -1), ZOK);
  CU_ASSERT_EQUAL(zkr_election_resign(q.h), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(q.t), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_await(q.t, TH_SETTLE_MS), ZKR_OK);
  tp_refuse(p, 0);
  CU_ASSERT_TRUE(leader_is(q.t, "X"));
  lineup_finish(&q);
  tp_stop(p);
  th_raw_close(raw);
}

/* --- P5: one rule decides "is a contender" ------------------------------------- */

/* The report's input: a persistent child named like a contender and a real
 * holder. The lock skips it; the listing and the election's leader follow
 * the same rule, so the real holder is shown as holder. */
static void test_participants_skip_persistent(void) {
  char *path = th_path("p-list"), *epath = th_path("p-elect"), junk[1024], ejunk[1024], id[64];
  zhandle_t *raw = th_raw();
  zkr_session *s = th_session(0);
  zkr_lock *l = th_lock(s, path);
  zkr_election_opts eo;
  zkr_election *e = NULL;
  zkr_participant *pp = NULL;
  size_t n = 0;

  zoo_create(raw, "/zkr-test", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0); /* may exist */
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(junk, sizeof(junk), "%s/cleanup-lock-0000000000", path);
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, junk, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_participants(s, path, &pp, &n), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(n, 1);
  CU_ASSERT_TRUE(pp[0].holder);
  CU_ASSERT_EQUAL(pp[0].session, zkr_session_id(s));
  CU_ASSERT_PTR_NULL(strstr(pp[0].node, "cleanup"));
  zkr_participants_free(pp, n);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);

  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, epath, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(ejunk, sizeof(ejunk), "%s/old-latch-0000000000", epath);
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, ejunk, "ghost", 5, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  memset(&eo, 0, sizeof(eo));
  eo.id = "alpha";
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&e, s, epath, &eo), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(e), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_await(e, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_leader(e, id, sizeof(id)), ZKR_OK);
  CU_ASSERT_STRING_EQUAL(id, "alpha");
  zkr_election_free(e);

  CU_ASSERT_EQUAL(zoo_delete(raw, junk, -1), ZOK);
  CU_ASSERT_EQUAL(zoo_delete(raw, ejunk, -1), ZOK);
  CU_ASSERT_EQUAL(zoo_delete(raw, path, -1), ZOK);
  CU_ASSERT_EQUAL(zoo_delete(raw, epath, -1), ZOK);
  zkr_lock_free(l);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
  th_finish_path(epath);
}

/* --- the election's terms ---------------------------------------------------------- */

typedef struct transcript {
  pthread_mutex_t mu;
  char seq[64];
} transcript;

static void record(zkr_election *e, int leader, void *arg) {
  transcript *t = arg;
  size_t n;

  (void)e;
  pthread_mutex_lock(&t->mu);
  n = strlen(t->seq);
  if (n + 1 < sizeof(t->seq)) {
    t->seq[n] = leader ? '1' : '0';
    t->seq[n + 1] = '\0';
  }
  pthread_mutex_unlock(&t->mu);
}

typedef struct seq_want {
  transcript *t;
  const char *want;
} seq_want;

static int seq_is(void *arg) {
  seq_want *w = arg;
  int eq;

  pthread_mutex_lock(&w->t->mu);
  eq = strcmp(w->t->seq, w->want) == 0;
  pthread_mutex_unlock(&w->t->mu);
  return eq;
}

/* Leads, then another client deletes our node: the term ends (0). */
static void lead_then_lose_node(zkr_election *e, const char *path, transcript *t, const char *want_up,
                                const char *want_down) {
  zhandle_t *raw = th_raw();
  seq_want up = {t, want_up}, down = {t, want_down};
  char node[1024];
  struct Stat st;
  int64_t epoch;

  CU_ASSERT_EQUAL(zkr_election_join(e), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_election_await(e, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(seq_is, &up, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_election_epoch(e, &epoch), ZKR_OK);
  /* Our node is the one whose czxid is the epoch. */
  CU_ASSERT_TRUE_FATAL(other_child(path, NULL, node, sizeof(node)));
  CU_ASSERT_EQUAL(zoo_exists(raw, node, 0, &st), ZOK);
  CU_ASSERT_EQUAL(st.czxid, epoch);
  /* Its own-node watch comes once the term has lasted: await it. */
  CU_ASSERT_TRUE(th_wait_until(watched, node, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE(th_wait_until(seq_is, &down, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zkr_election_is_leader(e), 0);
  CU_ASSERT_EQUAL(zkr_election_epoch(e, &epoch), ZKR_ENOTHELD);
  th_raw_close(raw);
}

/* CURATOR-83/87: a term ended by another client deleting our node, then
 * resign() or free(): on_change reports "1 0", never "1 0 1 0". */
static void test_election_term_announced_once(void) {
  char *path = th_path("p-term");
  zkr_session *s = th_session(0);
  zkr_election_opts o;
  zkr_election *e = NULL;
  transcript t;

  memset(&t, 0, sizeof(t));
  pthread_mutex_init(&t.mu, NULL);
  memset(&o, 0, sizeof(o));
  o.on_change = record;
  o.arg = &t;
  CU_ASSERT_EQUAL_FATAL(zkr_election_new(&e, s, path, &o), ZKR_OK);
  lead_then_lose_node(e, path, &t, "1", "10");
  CU_ASSERT_EQUAL(zkr_election_resign(e), ZKR_OK);
  /* A second term, ended the same way, then free (which delivers every
   * pending announcement before returning). */
  lead_then_lose_node(e, path, &t, "101", "1010");
  /* A third term whose node goes before its own-node watch is set: resign
   * still succeeds (the release finds the node gone), announced once. */
  {
    zhandle_t *raw = th_raw();
    seq_want up = {&t, "10101"};
    char node[1024];

    CU_ASSERT_EQUAL(zkr_election_join(e), ZKR_OK);
    CU_ASSERT_EQUAL_FATAL(zkr_election_await(e, TH_SETTLE_MS), ZKR_OK);
    /* The announcement is posted after await() returns: wait for it before
     * the resign, whose own announcement may follow at once. */
    CU_ASSERT_TRUE(th_wait_until(seq_is, &up, TH_SETTLE_MS));
    CU_ASSERT_TRUE_FATAL(other_child(path, NULL, node, sizeof(node)));
    CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
    CU_ASSERT_EQUAL(zkr_election_resign(e), ZKR_OK);
    th_raw_close(raw);
  }
  zkr_election_free(e);
  CU_ASSERT_STRING_EQUAL(t.seq, "101010");
  pthread_mutex_destroy(&t.mu);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- found by a second review ------------------------------------------------ */

/* A resend deferred to the next reconnection must not outrank a newer
 * attempt: W's read before its grant is cut, and W gives up (deadline)
 * while it cannot reconnect. Before the fix the deferred listing, sent on
 * reconnection, made the delete's answer stale and W waited forever. */
static void test_give_up_while_cut_off_returns(void) {
  char *path = th_path("p-cut"), hnode[1024];
  tp_proxy *p = tp_start(th_hosts());
  zkr_session_opts o;
  zkr_session *sh = th_session(0), *sw = NULL;
  zkr_lock *h = th_lock(sh, path), *w;
  th_acquirer a;
  int timeout_ms;
  int64_t give_up_at;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = 8000;
  CU_ASSERT_EQUAL_FATAL(zkr_session_open(&sw, tp_hosts(p), &o), ZKR_OK);
  timeout_ms = zkr_session_timeout(sw);
  w = th_lock(sw, path);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(h, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(h, hnode, sizeof(hnode)), ZKR_OK);
  give_up_at = th_now_ms() + timeout_ms / 4 + TH_LATE_MS;
  th_acquirer_start(&a, w, timeout_ms / 4, 1);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  CU_ASSERT_TRUE(th_wait_until(watched, hnode, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_GETDATA_OP, 1), 0); /* W's read of its own node */
  CU_ASSERT_EQUAL(zkr_lock_release(h), ZKR_OK);
  CU_ASSERT_TRUE(th_wait_until(cut_fired, p, TH_SETTLE_MS));
  tp_stall(p, 1); /* silent until W's deadline has passed */
  /* W's give-up shows nothing outside (its delete waits in the client):
   * only the clock tells that it has passed, with a margin for W's thread
   * to run. */
  CU_ASSERT_TRUE(th_wait_until(past, &give_up_at, timeout_ms));
  tp_stall(p, 0);
  CU_ASSERT_TRUE(th_wait_until(th_acquirer_done, &a, TH_SETTLE_FOR(timeout_ms)));
  /* Granted by the read that was cut, or gave up: either way it returned. */
  CU_ASSERT_TRUE(a.rc == ZKR_OK || a.rc == ZKR_ETIMEDOUT);
  th_acquirer_finish(&a);
  CU_ASSERT_TRUE(th_await_nodes(path, 0));
  zkr_lock_free(h);
  zkr_lock_free(w);
  zkr_session_close(sh);
  zkr_session_close(sw);
  tp_stop(p);
  th_finish_path(path);
}

/* A hold taken by a try is a hold like any other: its node is watched as
 * soon as any hold's, and its deletion ends it (a try was watched only once
 * the event thread woke for something else, about a second later). */
static void test_deleted_try_hold(void) {
  char *path = th_path("p-try"), node[1024];
  zkr_session *s = th_session(0);
  zkr_lock *l = th_lock(s, path);
  zhandle_t *raw = th_raw();
  int bound_ms = (int)(ZKR__OWN_WATCH_AFTER_NS / 1000000) * 2 * TH_TIME_SCALE;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(l, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE(th_wait_until(not_held, l, bound_ms));
  CU_ASSERT_EQUAL(zkr_lock_lost_reason(l), ZKR_LOST_DELETED);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_ELOST);
  zkr_lock_free(l);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
}

static int session_tickets(zkr_session *s) {
  int n;

  pthread_mutex_lock(zkr__session_mutex(s));
  n = zkr__queue_tickets(s);
  pthread_mutex_unlock(zkr__session_mutex(s));
  return n;
}

/* A persistent look-alike ahead of us is read once per session, not once
 * per acquisition: each read leaves a watch on it. */
static void test_persistent_lookalike_read_once(void) {
  char *path = th_path("p-look"), junk[1024];
  zhandle_t *raw = th_raw();
  zkr_session *s = th_session(0);
  zkr_lock *l = th_lock(s, path);
  int i;

  zoo_create(raw, "/zkr-test", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0); /* may exist */
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(junk, sizeof(junk), "%s/stale-lock-0000000000", path);
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, junk, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  for (i = 0; i < 50; i++) {
    CU_ASSERT_EQUAL(zkr_lock_acquire(l, TH_SETTLE_MS), ZKR_OK);
    CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  }
  CU_ASSERT_TRUE(session_tickets(s) <= 1);
  CU_ASSERT_EQUAL(zoo_delete(raw, junk, -1), ZOK);
  CU_ASSERT_EQUAL(zoo_delete(raw, path, -1), ZOK);
  zkr_lock_free(l);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
}

/* A waiter that gives up (deadline) after someone deleted its node says
 * why: ZKR_ELOST, not ZKR_ETIMEDOUT. Its own-node watch is held back so
 * that only the delete of the give-up can tell. */
static void test_give_up_after_node_deleted_says_lost(void) {
  char *path = th_path("p-gone"), hnode[1024], wnode[1024];
  zkr_session *sh = th_session(0), *sw = th_session(0);
  zkr_lock *h = th_lock(sh, path), *w = th_lock(sw, path);
  zhandle_t *raw = th_raw();
  th_acquirer a;

  zkr__session_set_own_watch_after(sw, (int64_t)600 * 1000000000);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(h, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(h, hnode, sizeof(hnode)), ZKR_OK);
  th_acquirer_start(&a, w, zkr_session_timeout(sw) / 2, 1);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  CU_ASSERT_TRUE_FATAL(other_child(path, hnode, wnode, sizeof(wnode)));
  CU_ASSERT_EQUAL(zoo_delete(raw, wnode, -1), ZOK);
  CU_ASSERT_EQUAL(th_acquirer_finish(&a), ZKR_ELOST);
  CU_ASSERT_EQUAL(zkr_lock_release(h), ZKR_OK);
  zkr_lock_free(h);
  zkr_lock_free(w);
  zkr_session_close(sh);
  zkr_session_close(sw);
  th_raw_close(raw);
  th_finish_path(path);
}

/* Found by a newcomer: a timed acquire whose connection stalls (no answer,
 * no error) while it waits held its caller until the session was declared
 * lost (5.4 s for a 1 s timeout): giving up waited for the delete's
 * confirmation. The deadline is a promise: it returns by the deadline and
 * ZKR__GIVE_UP_GRACE_NS, and the delete completes in the background (here
 * the node goes with the session). */
static void test_give_up_bounded_while_stalled(void) {
  char *path = th_path("p-stall");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *sh = th_session(0), *sw = NULL;
  zkr_session_opts o;
  zkr_lock *h = th_lock(sh, path), *w;
  th_acquirer a;
  int64_t t0, took;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = TH_SESSION_MS;
  CU_ASSERT_EQUAL_FATAL(zkr_session_open(&sw, tp_hosts(p), &o), ZKR_OK);
  w = th_lock(sw, path);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(h, -1), ZKR_OK);
  th_acquirer_start(&a, w, 1000, 0);
  CU_ASSERT_TRUE(th_await_nodes(path, 2));
  t0 = th_now_ms();
  tp_stall(p, 1);
  CU_ASSERT_TRUE(th_wait_until(th_acquirer_done, &a, TH_SETTLE_MS));
  took = th_now_ms() - t0;
  printf("[1000 ms acquire returned %lld ms after the stall began] ", (long long)took);
  CU_ASSERT_EQUAL(a.rc, ZKR_ETIMEDOUT);
  CU_ASSERT_TRUE(took <= 1000 + TH_LATE_MS);
  th_acquirer_finish(&a);
  tp_stall(p, 0);
  /* The waiter's node goes, in the background or with its session. */
  CU_ASSERT_TRUE(th_await_nodes(path, 1));
  CU_ASSERT_EQUAL(zkr_lock_release(h), ZKR_OK);
  zkr_lock_free(w);
  zkr_lock_free(h);
  zkr_session_close(sw);
  zkr_session_close(sh);
  tp_stop(p);
  th_finish_path(path);
}

int main(void) {
  static const th_test tests[] = {
      {"test_overflow_repeated_suffix_one_holder", test_overflow_repeated_suffix_one_holder},
      {"test_overflow_wrapped_suffix_waits", test_overflow_wrapped_suffix_waits},
      {"test_deleted_waiting_node_next_in_line", test_deleted_waiting_node_next_in_line},
      {"test_deleted_waiting_node_further_back", test_deleted_waiting_node_further_back},
      {"test_deleted_waiting_node_in_one_multi", test_deleted_waiting_node_in_one_multi},
      {"test_deleted_young_hold", test_deleted_young_hold},
      {"test_deleted_waiting_node_across_reconnect", test_deleted_waiting_node_across_reconnect},
      {"test_deleted_waiting_node_across_reconnect_election",
       test_deleted_waiting_node_across_reconnect_election},
      {"test_participants_skip_persistent", test_participants_skip_persistent},
      {"test_election_term_announced_once", test_election_term_announced_once},
      {"test_give_up_while_cut_off_returns", test_give_up_while_cut_off_returns},
      {"test_give_up_bounded_while_stalled", test_give_up_bounded_while_stalled},
      {"test_deleted_try_hold", test_deleted_try_hold},
      {"test_persistent_lookalike_read_once", test_persistent_lookalike_read_once},
      {"test_give_up_after_node_deleted_says_lost", test_give_up_after_node_deleted_says_lost},
      {NULL, NULL}};

  return th_run("premises", tests);
}
