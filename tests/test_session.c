/* zkr_session against a real server: opening and closing, argument
 * checking, connection failure, session properties, expiry seen by
 * listeners, chroot, digest authentication and log routing.
 *
 * Memory leaks are checked by running this program under valgrind
 * (test.sh); here only threads are counted. Every test closes what it opens
 * and deletes the znodes it creates. */
#include "config.h"

#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* The client's global log level (zookeeper_log.h, which cannot be included
 * as <zookeeper/zookeeper_log.h>: it includes <zookeeper.h>). */
extern ZooLogLevel logLevel;

/* Strict: work that should be immediate (argument checks, no round trip):
 * TH_LATE_MS, far below the connect timeout a check made after connecting
 * would spend. */
#define FAST_MS TH_LATE_MS
/* The connect timeout of sessions that must fail to connect (nothing
 * listens, or the name does not resolve): the duration under test, short
 * so that the tests are. */
#define UNREACHABLE_CONNECT_MS 1500

/* --- helpers ------------------------------------------------------------------------ */

/* A loopback port nobody listens on, held for the caller: a socket bound to
 * it without listen() makes connections fail at once (RST) and keeps other
 * processes from taking the port meanwhile. Returns the port; *fd is the
 * socket to close afterwards. */
static int closed_port(int *fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);

  *fd = socket(AF_INET, SOCK_STREAM, 0);
  if (*fd < 0)
    return -1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(*fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(*fd, (struct sockaddr *)&a, &len) != 0) {
    close(*fd);
    *fd = -1;
    return -1;
  }
  return ntohs(a.sin_port);
}

/* Creates /zkr-test (the parent th_path() names live under) if missing. */
static int ensure_test_root(zhandle_t *zh) {
  int rc = zoo_create(zh, "/zkr-test", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);

  return rc == ZOK || rc == ZNODEEXISTS ? 0 : -1;
}

/* Removes /zkr-test if nothing else uses it, so the test leaves no znode. */
static void drop_test_root(zhandle_t *zh) {
  (void)zoo_delete(zh, "/zkr-test", -1);
}

typedef struct thread_target {
  int count;
} thread_target;

static int threads_back_to(void *arg) {
  return th_thread_count() == ((thread_target *)arg)->count;
}

/* What a state listener saw. Written on the session's event thread. */
typedef struct states_seen {
  atomic_int calls;
  atomic_int connected;
  atomic_int suspended;
  atomic_int lost;
} states_seen;

static void record_state(zkr_session *s, zkr_session_state state, void *arg) {
  states_seen *seen = arg;

  (void)s;
  atomic_fetch_add(&seen->calls, 1);
  if (state == ZKR_SESSION_CONNECTED)
    atomic_fetch_add(&seen->connected, 1);
  else if (state == ZKR_SESSION_SUSPENDED)
    atomic_fetch_add(&seen->suspended, 1);
  else if (state == ZKR_SESSION_LOST)
    atomic_fetch_add(&seen->lost, 1);
}

static int saw_lost(void *arg) {
  return atomic_load(&((states_seen *)arg)->lost) > 0;
}

static int saw_connected(void *arg) {
  return atomic_load(&((states_seen *)arg)->connected) > 0;
}

/* Log lines received through opts.log_fn (any client thread). */
typedef struct log_seen {
  atomic_int lines;
  atomic_int mentions; /* lines naming the server address */
  char needle[64];
} log_seen;

static void record_log(const char *message, void *arg) {
  log_seen *ls = arg;

  atomic_fetch_add(&ls->lines, 1);
  if (message != NULL && strstr(message, ls->needle) != NULL)
    atomic_fetch_add(&ls->mentions, 1);
}

/* --- opening and closing ---------------------------------------------------------------- */

static void test_session_open_close_no_thread_leak(void) {
  thread_target before;
  zkr_session *warm;
  int i;

  /* One open first: runtimes (ThreadSanitizer, valgrind) may start a thread
   * of their own at the first pthread_create; that is no leak. */
  warm = th_session(0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(warm);
  zkr_session_close(warm);
  before.count = th_thread_count();
  CU_ASSERT_TRUE_FATAL(before.count > 0);
  for (i = 0; i < 50; i++) {
    zkr_session *s = th_session(0);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    zkr_session_close(s);
  }
  /* close joins the client's and the library's threads; the wait only
   * absorbs a thread that is still exiting. */
  CU_ASSERT_TRUE(th_wait_until(threads_back_to, &before, TH_SETTLE_MS));
  if (th_thread_count() != before.count)
    fprintf(stderr, "threads: %d before, %d after\n", before.count, th_thread_count());
}

static void test_session_close_null_accepted(void) {
  zkr_session_close(NULL);
  CU_ASSERT_EQUAL(zkr_session_id(NULL), 0);
  CU_ASSERT_PTR_NULL(zkr_session_zhandle(NULL));
  CU_ASSERT_EQUAL(zkr_session_valid_until(NULL), 0);
}

static void test_session_malformed_hosts_einval(void) {
  static const char *const bad[] = {NULL,
                                    "",
                                    "nohostport",
                                    "nohostport:",
                                    "127.0.0.1:notaport",
                                    ":::",
                                    ":2181",
                                    "127.0.0.1:0",
                                    "127.0.0.1:65536",
                                    "127.0.0.1:-1",
                                    "127.0.0.1:2181,",
                                    ",127.0.0.1:2181",
                                    "127.0.0.1:2181,,127.0.0.1:2182",
                                    "127.0.0.1 :2181",
                                    "127.0.0.1:2181//chroot",
                                    "127.0.0.1:2181/chroot/",
                                    "127.0.0.1:2181/a/../b"};
  thread_target before;
  size_t i;

  before.count = th_thread_count();
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    zkr_session *s = NULL;
    int64_t t0 = th_now_ms();
    int rc = zkr_session_open(&s, bad[i], NULL);
    int64_t took = th_now_ms() - t0;

    if (rc != ZKR_EINVAL || took > FAST_MS)
      fprintf(stderr, "hosts \"%s\": %s after %lld ms\n", bad[i] != NULL ? bad[i] : "(NULL)",
              zkr_err_name(rc), (long long)took);
    CU_ASSERT_EQUAL(rc, ZKR_EINVAL);
    CU_ASSERT_TRUE(took <= FAST_MS);
    if (rc == ZKR_OK)
      zkr_session_close(s);
  }
  /* A NULL out pointer is an invalid argument too. */
  CU_ASSERT_EQUAL(zkr_session_open(NULL, th_hosts(), NULL), ZKR_EINVAL);
  CU_ASSERT_TRUE(th_wait_until(threads_back_to, &before, TH_SETTLE_MS));
}

static void test_session_bad_opts_einval(void) {
  zkr_session_opts o;
  thread_target before;
  int which;

  before.count = th_thread_count();
  /* Against the real server: only the options can be the reason. */
  for (which = 0; which < 5; which++) {
    zkr_session *s = NULL;
    int64_t t0;
    int rc;

    memset(&o, 0, sizeof(o));
    if (which == 0)
      o.session_timeout_ms = -1;
    else if (which == 1)
      o.connect_timeout_ms = -1;
    else if (which == 2)
      o.expiry_margin_ms = -5;
    else if (which == 3)
      o.resolve_delay_ms = -1;
    else
      o.digest = "no-colon-so-not-user-password";
    t0 = th_now_ms();
    rc = zkr_session_open(&s, th_hosts(), &o);
    if (rc != ZKR_EINVAL)
      fprintf(stderr, "bad option #%d: %s\n", which, zkr_err_name(rc));
    CU_ASSERT_EQUAL(rc, ZKR_EINVAL);
    CU_ASSERT_TRUE(th_now_ms() - t0 <= FAST_MS);
    if (rc == ZKR_OK)
      zkr_session_close(s);
  }
  CU_ASSERT_TRUE(th_wait_until(threads_back_to, &before, TH_SETTLE_MS));
}

static void test_session_unreachable_econnect(void) {
  zkr_session_opts o;
  zkr_session *s = NULL;
  thread_target before;
  char hosts[64];
  int fd, port, rc;
  int64_t t0, took;

  port = closed_port(&fd);
  CU_ASSERT_TRUE_FATAL(port > 0);
  snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", port);
  before.count = th_thread_count();
  memset(&o, 0, sizeof(o));
  o.connect_timeout_ms = UNREACHABLE_CONNECT_MS;
  t0 = th_now_ms();
  rc = zkr_session_open(&s, hosts, &o);
  took = th_now_ms() - t0;
  CU_ASSERT_EQUAL(rc, ZKR_ECONNECT);
  CU_ASSERT_TRUE(took <= UNREACHABLE_CONNECT_MS + TH_LATE_MS); /* strict: the connect timeout */
  if (rc != ZKR_ECONNECT || took > UNREACHABLE_CONNECT_MS + TH_LATE_MS)
    fprintf(stderr, "unreachable: %s after %lld ms\n", zkr_err_name(rc), (long long)took);
  if (rc == ZKR_OK)
    zkr_session_close(s);
  /* A failed open leaves no thread behind. */
  CU_ASSERT_TRUE(th_wait_until(threads_back_to, &before, TH_SETTLE_MS));
  close(fd);
}

/* --- properties of an open session --------------------------------------------------- */

static void test_session_properties_after_open(void) {
  zkr_session *s = th_session(TH_SESSION_MS);

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_EQUAL(zkr_session_get_state(s), ZKR_SESSION_CONNECTED);
  CU_ASSERT_NOT_EQUAL(zkr_session_id(s), 0);
  /* Within the test server's bounds (1000..60000): granted as is. */
  CU_ASSERT_EQUAL(zkr_session_timeout(s), TH_SESSION_MS);
  CU_ASSERT_PTR_NOT_NULL(zkr_session_zhandle(s));
  if (zkr_session_zhandle(s) != NULL)
    CU_ASSERT_EQUAL(zoo_state(zkr_session_zhandle(s)), ZOO_CONNECTED_STATE);
  zkr_session_close(s);
}

static void test_session_valid_until_within_timeout(void) {
  zkr_session *s = th_session(TH_SESSION_MS);
  int64_t v, now;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  v = zkr_session_valid_until(s);
  now = zkr_monotonic_ns();
  /* Open waits for the first acknowledged request, so the deadline is set,
   * in the future, and no later than a whole timeout from now. */
  CU_ASSERT_TRUE(v > now);
  CU_ASSERT_TRUE(v <= now + (int64_t)zkr_session_timeout(s) * 1000000);
  zkr_session_close(s);
}

static void test_session_on_state_sees_connected(void) {
  zkr_session_opts o;
  zkr_session *s = NULL;
  states_seen seen;

  memset(&seen, 0, sizeof(seen));
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = TH_SESSION_MS;
  o.on_state = record_state;
  o.state_arg = &seen;
  CU_ASSERT_EQUAL_FATAL(zkr_session_open(&s, th_hosts(), &o), ZKR_OK);
  /* Listeners run on the event thread, possibly just after open returns. */
  CU_ASSERT_TRUE(th_wait_until(saw_connected, &seen, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(atomic_load(&seen.lost), 0);
  zkr_session_close(s);
}

static void test_session_listener_sees_lost_on_expiry(void) {
  zkr_session *s = th_session(TH_SESSION_MS);
  states_seen seen, removed;
  int id_kept = 0, id_removed = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  memset(&seen, 0, sizeof(seen));
  memset(&removed, 0, sizeof(removed));
  CU_ASSERT_EQUAL(zkr_session_add_listener(s, record_state, &seen, &id_kept), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_session_add_listener(s, record_state, &removed, &id_removed), ZKR_OK);
  CU_ASSERT_NOT_EQUAL(id_kept, id_removed);
  CU_ASSERT_EQUAL(zkr_session_remove_listener(s, id_removed), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_session_add_listener(s, NULL, NULL, NULL), ZKR_EINVAL);

  CU_ASSERT_EQUAL(th_expire(s), 0);
  /* Strict: the client learns of the expiry when it reconnects, at the
   * latest the local clock declares it after timeout - margin. */
  CU_ASSERT_TRUE(th_wait_until(saw_lost, &seen, TH_EXPIRED_BY_MS(zkr_session_timeout(s))));
  CU_ASSERT_EQUAL(zkr_session_get_state(s), ZKR_SESSION_LOST);
  CU_ASSERT_EQUAL(zkr_session_valid_until(s), 0);
  /* Why: the server expired it (seen on reconnecting), or our own clock ran
   * out first; never "closed". */
  CU_ASSERT_TRUE(zkr_session_lost_reason(s) == ZKR_LOST_EXPIRED ||
                 zkr_session_lost_reason(s) == ZKR_LOST_DEADLINE);
  /* LOST is terminal and reported once. */
  CU_ASSERT_EQUAL(atomic_load(&seen.lost), 1);
  zkr_session_close(s);
  CU_ASSERT_EQUAL(atomic_load(&seen.lost), 1);
  /* A removed listener is never called. */
  CU_ASSERT_EQUAL(atomic_load(&removed.calls), 0);
}

/* --- chroot and authentication ------------------------------------------------------- */

static void test_session_chroot(void) {
  zhandle_t *raw = th_raw();
  char *root = th_path("chroot");
  char hosts[1024], inside[512];
  zkr_session_opts o;
  zkr_session *s = NULL;
  int rc;

  CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
  CU_ASSERT_EQUAL(ensure_test_root(raw), 0);
  CU_ASSERT_EQUAL(zoo_create(raw, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(hosts, sizeof(hosts), "%s%s", th_hosts(), root);
  snprintf(inside, sizeof(inside), "%s/x", root);

  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = TH_SESSION_MS;
  rc = zkr_session_open(&s, hosts, &o);
  CU_ASSERT_EQUAL(rc, ZKR_OK);
  if (rc == ZKR_OK) {
    /* "/x" of the session is root + "/x" on the server. */
    CU_ASSERT_EQUAL(zoo_create(zkr_session_zhandle(s), "/x", "v", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
    CU_ASSERT_EQUAL(zoo_exists(raw, inside, 0, NULL), ZOK);
    CU_ASSERT_EQUAL(zoo_exists(raw, "/x", 0, NULL), ZNONODE);
    zkr_session_close(s);
  }
  CU_ASSERT_EQUAL(th_delete_tree(root), 0);
  drop_test_root(raw);
  th_raw_close(raw);
  free(root);
}

/* A chroot that does not exist is named at open (a session cannot create
 * its own root; before, recipes failed with "unexpected ZooKeeper error"
 * and listings looked empty). Nothing is left behind. */
static void test_session_missing_chroot(void) {
  char *root = th_path("no-such-chroot");
  char hosts[1024];
  zkr_session_opts o;
  zkr_session *s = NULL;
  int threads = th_thread_count();

  snprintf(hosts, sizeof(hosts), "%s%s", th_hosts(), root);
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = TH_SESSION_MS;
  CU_ASSERT_EQUAL(zkr_session_open(&s, hosts, &o), ZKR_ENOCHROOT);
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT_PTR_NOT_NULL(strstr(zkr_strerror(ZKR_ENOCHROOT), "chroot"));
  CU_ASSERT_EQUAL(th_thread_count(), threads);
  free(root);
}

/* A chroot deleted after the session was opened: a lock under it names the
 * chroot (not "unexpected ZooKeeper error"), and leaves nothing behind. */
static void test_session_chroot_deleted_after_open(void) {
  zhandle_t *raw = th_raw();
  char *root = th_path("gone-chroot");
  char hosts[1024];
  zkr_session_opts o;
  zkr_session *s = NULL;
  zkr_lock *l = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
  CU_ASSERT_EQUAL(ensure_test_root(raw), 0);
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, root, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(hosts, sizeof(hosts), "%s%s", th_hosts(), root);
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = TH_SESSION_MS;
  CU_ASSERT_EQUAL_FATAL(zkr_session_open(&s, hosts, &o), ZKR_OK);
  CU_ASSERT_EQUAL(zoo_delete(raw, root, -1), ZOK);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, "/locks/a", NULL), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, TH_SETTLE_MS), ZKR_ENOCHROOT);
  zkr_lock_free(l);
  zkr_session_close(s);
  CU_ASSERT_EQUAL(zoo_exists(raw, root, 0, NULL), ZNONODE);
  drop_test_root(raw);
  th_raw_close(raw);
  free(root);
}

/* A host name that does not resolve is "unreachable", not "invalid
 * argument": the string is well formed. */
static void test_session_unresolvable_host_econnect(void) {
  zkr_session_opts o;
  zkr_session *s = NULL;

  memset(&o, 0, sizeof(o));
  o.connect_timeout_ms = UNREACHABLE_CONNECT_MS;
  CU_ASSERT_EQUAL(zkr_session_open(&s, "no-such-host.invalid:2181", &o), ZKR_ECONNECT);
  CU_ASSERT_PTR_NULL(s);
}

/* More sessions than the old fixed limit of 32 route their log at once;
 * the limit that remains has its own error code. */
static void test_session_log_routes_beyond_32(void) {
  enum { N = 40 };
  zkr_session *s[N];
  zkr_session_opts o;
  FILE *f = tmpfile();
  int i, slots[ZKR_LOG_ROUTES_MAX], extra;

  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = TH_SESSION_MS;
  o.log_stream = f;
  for (i = 0; i < N; i++)
    CU_ASSERT_EQUAL(zkr_session_open(&s[i], th_hosts(), &o), ZKR_OK);
  for (i = 0; i < N; i++)
    zkr_session_close(s[i]);
  /* The limit itself, on the routing table directly. */
  for (i = 0; i < ZKR_LOG_ROUTES_MAX; i++)
    CU_ASSERT_PTR_NOT_NULL(zkr__log_bind(NULL, NULL, f, &slots[i]));
  CU_ASSERT_PTR_NULL(zkr__log_bind(NULL, NULL, f, &extra));
  for (i = 0; i < ZKR_LOG_ROUTES_MAX; i++)
    zkr__log_unbind(slots[i]);
  CU_ASSERT_PTR_NOT_NULL(zkr__log_bind(NULL, NULL, f, &extra));
  zkr__log_unbind(extra);
  fclose(f);
}

static void test_session_digest_auth(void) {
  zhandle_t *raw = th_raw();
  char *path = th_path("auth");
  zkr_session_opts o;
  zkr_session *s = NULL;
  char buf[16];
  int len, rc;

  CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
  CU_ASSERT_EQUAL(ensure_test_root(raw), 0);
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = TH_SESSION_MS;
  o.digest = "user:pw";
  rc = zkr_session_open(&s, th_hosts(), &o);
  CU_ASSERT_EQUAL(rc, ZKR_OK);
  if (rc == ZKR_OK) {
    zhandle_t *zh = zkr_session_zhandle(s);

    /* CREATOR_ALL: only the authenticated identity ("digest:user:...") may
     * touch the node, so creating it fails unless auth took effect. */
    CU_ASSERT_EQUAL(zoo_create(zh, path, "secret", 6, &ZOO_CREATOR_ALL_ACL, 0, NULL, 0), ZOK);
    len = sizeof(buf);
    CU_ASSERT_EQUAL(zoo_get(raw, path, 0, buf, &len, NULL), ZNOAUTH);
    len = sizeof(buf);
    CU_ASSERT_EQUAL(zoo_get(zh, path, 0, buf, &len, NULL), ZOK);
    CU_ASSERT_TRUE(len == 6 && memcmp(buf, "secret", 6) == 0);
    CU_ASSERT_EQUAL(zoo_delete(zh, path, -1), ZOK);
    zkr_session_close(s);
  }
  /* The parent's ACL is open: whatever is left can go with the raw handle. */
  CU_ASSERT_EQUAL(th_delete_tree(path), 0);
  drop_test_root(raw);
  th_raw_close(raw);
  free(path);
}

/* --- log routing ------------------------------------------------------------------------ */

static void test_session_log_fn_receives_lines(void) {
  zkr_session_opts o;
  zkr_session *s = NULL;
  ZooLogLevel saved = logLevel;
  log_seen ls;
  int fd, port, rc;

  port = closed_port(&fd);
  CU_ASSERT_TRUE_FATAL(port > 0);
  memset(&ls, 0, sizeof(ls));
  snprintf(ls.needle, sizeof(ls.needle), "127.0.0.1:%d", port);
  /* The client logs a refused connection at ERROR; a global level below
   * WARN would suppress it (the default is INFO). */
  if (saved < ZOO_LOG_LEVEL_WARN)
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  memset(&o, 0, sizeof(o));
  o.connect_timeout_ms = UNREACHABLE_CONNECT_MS;
  o.log_fn = record_log;
  o.log_arg = &ls;
  rc = zkr_session_open(&s, ls.needle, &o);
  if (saved < ZOO_LOG_LEVEL_WARN)
    zoo_set_debug_level(saved);
  CU_ASSERT_EQUAL(rc, ZKR_ECONNECT);
  if (rc == ZKR_OK)
    zkr_session_close(s);
  CU_ASSERT_TRUE(atomic_load(&ls.lines) >= 1);
  CU_ASSERT_TRUE(atomic_load(&ls.mentions) >= 1);
  close(fd);
}

static void test_session_log_stream_receives_lines(void) {
  zkr_session_opts o;
  zkr_session *s = NULL;
  FILE *f = tmpfile();
  char line[1024];
  int fd, port, rc, lines = 0;
  char hosts[64];

  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  port = closed_port(&fd);
  CU_ASSERT_TRUE(port > 0);
  if (port <= 0) {
    fclose(f);
    return;
  }
  snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", port);
  memset(&o, 0, sizeof(o));
  o.connect_timeout_ms = UNREACHABLE_CONNECT_MS;
  o.log_stream = f;
  rc = zkr_session_open(&s, hosts, &o);
  CU_ASSERT_EQUAL(rc, ZKR_ECONNECT);
  if (rc == ZKR_OK)
    zkr_session_close(s);
  /* One message per line, each ending in a newline. */
  rewind(f);
  while (fgets(line, sizeof(line), f) != NULL)
    lines++;
  CU_ASSERT_TRUE(lines >= 1);
  fclose(f);
  close(fd);
}

static void test_session_quiet_without_log_option(void) {
  zkr_session_opts o;
  zkr_session *s = NULL;
  char hosts[64], buf[4096];
  int p[2], saved, fd, port, rc;
  ssize_t n, total = 0;

  port = closed_port(&fd);
  CU_ASSERT_TRUE_FATAL(port > 0);
  snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", port);
  CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
  /* Non-blocking: if the library printed more than a pipe holds it must not
   * hang; the bytes that fit are proof enough. */
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  fflush(stderr);
  saved = dup(2);
  CU_ASSERT_TRUE_FATAL(saved >= 0);
  dup2(p[1], 2);

  memset(&o, 0, sizeof(o));
  o.connect_timeout_ms = UNREACHABLE_CONNECT_MS; /* no log_fn, no log_stream */
  rc = zkr_session_open(&s, hosts, &o);
  if (rc == ZKR_OK)
    zkr_session_close(s);

  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(p[1]);
  while ((n = read(p[0], buf, sizeof(buf) - 1)) > 0) {
    buf[n] = '\0';
    if (total == 0)
      fprintf(stderr, "printed on stderr: %.300s\n", buf);
    total += n;
  }
  close(p[0]);
  close(fd);
  CU_ASSERT_EQUAL(rc, ZKR_ECONNECT);
  CU_ASSERT_EQUAL(total, 0);
}

int main(void) {
  static const th_test tests[] = {
      {"test_session_open_close_no_thread_leak", test_session_open_close_no_thread_leak},
      {"test_session_close_null_accepted", test_session_close_null_accepted},
      {"test_session_malformed_hosts_einval", test_session_malformed_hosts_einval},
      {"test_session_bad_opts_einval", test_session_bad_opts_einval},
      {"test_session_unreachable_econnect", test_session_unreachable_econnect},
      {"test_session_properties_after_open", test_session_properties_after_open},
      {"test_session_valid_until_within_timeout", test_session_valid_until_within_timeout},
      {"test_session_on_state_sees_connected", test_session_on_state_sees_connected},
      {"test_session_listener_sees_lost_on_expiry", test_session_listener_sees_lost_on_expiry},
      {"test_session_chroot", test_session_chroot},
      {"test_session_missing_chroot", test_session_missing_chroot},
      {"test_session_chroot_deleted_after_open", test_session_chroot_deleted_after_open},
      {"test_session_unresolvable_host_econnect", test_session_unresolvable_host_econnect},
      {"test_session_log_routes_beyond_32", test_session_log_routes_beyond_32},
      {"test_session_digest_auth", test_session_digest_auth},
      {"test_session_log_fn_receives_lines", test_session_log_fn_receives_lines},
      {"test_session_log_stream_receives_lines", test_session_log_stream_receives_lines},
      {"test_session_quiet_without_log_option", test_session_quiet_without_log_option},
      {NULL, NULL}};

  th_hosts(); /* fail at once, not per test, without a server */
  return th_run("session", tests);
}
