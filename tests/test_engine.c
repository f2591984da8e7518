/* The contender engine driven directly, with policies of the tests' own:
 * placement by a policy, a limit above 1 (the directory watched), and the
 * premise of the shortcut (a deletion alone grants only when the deleted
 * node was the last that blocked us), checked by the engine whatever the
 * policy says. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Every other lease blocks, earlier or later: at most two hold. */
static int any_lease(const zkr__name *me, const zkr__name *other, int earlier) {
  (void)me;
  (void)earlier;
  return other->kind == ZKR__LEASE;
}
static const zkr__policy two_leases = {.marker = "-lease-", .blocks = any_lease, .whole = 1, .limit = 2};

/* A reader's rule: only earlier exclusive nodes block. */
static int earlier_exclusive(const zkr__name *me, const zkr__name *other, int earlier) {
  (void)me;
  return earlier && other->kind == ZKR__EXCLUSIVE;
}
static const zkr__policy reader = {.marker = "-__READ__", .blocks = earlier_exclusive};

static int watched(void *path) {
  return th_watched(path);
}

typedef struct started {
  zkr_session *s;
  zkr__contender *c;
} started;

static started start(zkr_session *s, const char *dir, const zkr__policy *p, int try_once) {
  zkr__contender_cfg cfg;
  started st = {s, NULL};

  memset(&cfg, 0, sizeof(cfg));
  cfg.dir = dir;
  cfg.policy = p;
  cfg.try_once = try_once;
  pthread_mutex_lock(zkr__session_mutex(s));
  CU_ASSERT_EQUAL(zkr__contender_start(s, &cfg, &st.c), ZKR_OK);
  pthread_mutex_unlock(zkr__session_mutex(s));
  return st;
}

/* The contender's wait with deadline ms from now (0: only look). */
static int wait_for(started *st, int ms) {
  int rc;

  pthread_mutex_lock(zkr__session_mutex(st->s));
  rc = zkr__contender_wait(st->c, ms > 0 ? zkr__deadline(ms) : zkr__now_ns());
  pthread_mutex_unlock(zkr__session_mutex(st->s));
  return rc;
}

static int finish(started *st, int granted) {
  int rc;

  pthread_mutex_lock(zkr__session_mutex(st->s));
  rc = granted ? zkr__contender_release(st->c, 1) : zkr__contender_withdraw(st->c, -1);
  zkr__contender_drop(st->c);
  pthread_mutex_unlock(zkr__session_mutex(st->s));
  return rc;
}

static void test_engine_limit_two(void) {
  char *path = th_path("e-lim");
  zkr_session *s = th_session(0);
  started a, b, c, t;

  a = start(s, path, &two_leases, 0);
  b = start(s, path, &two_leases, 0);
  CU_ASSERT_EQUAL(wait_for(&a, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(wait_for(&b, TH_SETTLE_MS), ZKR_OK);
  /* Full: a try decides from one listing and leaves nothing. */
  t = start(s, path, &two_leases, 1);
  CU_ASSERT_EQUAL(wait_for(&t, TH_SETTLE_MS), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(finish(&t, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(th_count_nodes(path), 2);
  /* A waiter watches the directory; any release lets it in. */
  c = start(s, path, &two_leases, 0);
  CU_ASSERT_TRUE(th_await_nodes(path, 3));
  CU_ASSERT_EQUAL(wait_for(&c, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(finish(&b, 1), ZKR_OK); /* the later one goes first */
  CU_ASSERT_EQUAL(wait_for(&c, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(finish(&a, 1), ZKR_OK);
  CU_ASSERT_EQUAL(finish(&c, 1), ZKR_OK);
  zkr_session_close(s);
  th_finish_path(path);
}

/* Two earlier writers block a reader; it watches the nearer. Its deletion
 * must not grant (the other still blocks): the engine lists again and
 * watches the other, whatever the policy. */
static void test_engine_shortcut_needs_last_blocker(void) {
  char *path = th_path("e-short"), w1[1024], w2[1024], name[1024], mid[1024];
  zkr_session *s = th_session(0);
  zhandle_t *raw = th_raw();
  started r;

  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, "/zkr-test", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) == ZOK ||
                            zoo_exists(raw, "/zkr-test", 0, NULL) == ZOK,
                        1);
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(name, sizeof(name), "%s/_c_0f-__WRIT__", path);
  CU_ASSERT_EQUAL_FATAL(
      zoo_create(raw, name, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, w1, sizeof(w1)), ZOK);
  /* A reader between them blocks nobody. */
  snprintf(name, sizeof(name), "%s/_c_0f-__READ__", path);
  CU_ASSERT_EQUAL_FATAL(
      zoo_create(raw, name, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, mid, sizeof(mid)), ZOK);
  snprintf(name, sizeof(name), "%s/_c_0f-__WRIT__", path);
  CU_ASSERT_EQUAL_FATAL(
      zoo_create(raw, name, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, w2, sizeof(w2)), ZOK);
  r = start(s, path, &reader, 0);
  CU_ASSERT_TRUE(th_wait_until(watched, w2, TH_SETTLE_MS));
  CU_ASSERT_FALSE(th_watched(w1));
  CU_ASSERT_EQUAL(zoo_delete(raw, w2, -1), ZOK);
  /* It moves on to the other writer, not to a grant. */
  CU_ASSERT_TRUE(th_wait_until(watched, w1, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(wait_for(&r, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zoo_delete(raw, w1, -1), ZOK);
  CU_ASSERT_EQUAL(wait_for(&r, TH_SETTLE_MS), ZKR_OK); /* the reader between is no bar */
  CU_ASSERT_EQUAL(finish(&r, 1), ZKR_OK);
  CU_ASSERT_EQUAL(zoo_delete(raw, mid, -1), ZOK);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
}

int main(void) {
  static const th_test tests[] = {
      {"test_engine_limit_two", test_engine_limit_two},
      {"test_engine_shortcut_needs_last_blocker", test_engine_shortcut_needs_last_blocker},
      {NULL, NULL},
  };

  return th_run("engine", tests);
}
