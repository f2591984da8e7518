/* The test harness (see harness.h): CUnit runner, the test server's address,
 * raw inspection handles, expiry on demand and waiting helpers.
 *
 * Raw handles are opened per call rather than cached: a cached handle would
 * add two client threads at an unpredictable moment and break the tests that
 * compare thread counts, and it would need cleaning up before valgrind's
 * leak check. Opening one costs a few milliseconds on the loopback server. */
#include "config.h"

#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* Session timeout requested for raw handles: long enough that a raw handle
 * outlives any wait a test makes with it (the server never expires it
 * under a test's feet). A parameter, not a bound. */
#define TH_RAW_TIMEOUT_MS (4 * TH_SESSION_MS)
/* Longest znode path the tree walkers build. */
#define TH_PATH_MAX 4096

static atomic_int path_counter;

/* --- ThreadSanitizer ---------------------------------------------------------- */

/* The ZooKeeper C client formats server addresses with sprintf into one
 * static buffer (format_endpoint_info), so two handles connecting at once
 * race inside the client; every test with a raw handle beside a session
 * does. That race is not ours: suppress reports whose top frame is that
 * sprintf (the library itself never calls sprintf). ThreadSanitizer calls
 * this function when the program defines it; other builds ignore it. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) {
  return "race_top:vsprintf\n";
}

/* --- running ------------------------------------------------------------------- */

int th_run(const char *suite, const th_test *tests) {
  CU_pSuite s;
  unsigned registered = 0, ran, failed, failures, suites_failed;
  const th_test *t;

  if (CU_initialize_registry() != CUE_SUCCESS) {
    fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    return 1;
  }
  s = CU_add_suite(suite, NULL, NULL);
  if (s == NULL) {
    fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return 1;
  }
  for (t = tests; t->name != NULL; t++) {
    if (CU_add_test(s, t->name, t->fn) == NULL) {
      fprintf(stderr, "CUnit: cannot add %s: %s\n", t->name, CU_get_error_msg());
      CU_cleanup_registry();
      return 1;
    }
    registered++;
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  if (CU_basic_run_tests() != CUE_SUCCESS) {
    fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return 1;
  }
  CU_basic_show_failures(CU_get_failure_list());
  printf("\n");
  ran = CU_get_number_of_tests_run();
  failed = CU_get_number_of_tests_failed();
  failures = CU_get_number_of_failures();
  suites_failed = CU_get_number_of_suites_failed();
  CU_cleanup_registry();
  /* An empty list is a mistake in the program, not a pass. A test that did
   * not run (inactive, or its suite failed) is not a pass either. */
  if (registered == 0) {
    fprintf(stderr, "%s: no tests\n", suite);
    return 1;
  }
  if (ran != registered) {
    fprintf(stderr, "%s: only %u of %u tests ran\n", suite, ran, registered);
    return 1;
  }
  return failed == 0 && failures == 0 && suites_failed == 0 ? 0 : 1;
}

const char *th_hosts(void) {
  const char *h = getenv("ZKR_TEST_HOSTS");

  /* A missing server fails the program: a silent skip would pass CI. */
  if (h == NULL || h[0] == '\0') {
    fprintf(stderr, "ZKR_TEST_HOSTS is not set: run this test through tests/with-zk.sh "
                    "(make check does) or point it at a ZooKeeper server\n");
    exit(1);
  }
  return h;
}

zkr_session *th_session_at(const char *hosts, int session_timeout_ms, int loop) {
  zkr_session_opts o;
  zkr_session *s = NULL;
  int rc;

  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = session_timeout_ms > 0 ? session_timeout_ms : TH_SESSION_MS;
  o.connect_timeout_ms = TH_CONNECT_MS;
  o.loop = loop;
  rc = zkr_session_open(&s, hosts, &o);
  CU_ASSERT_EQUAL(rc, ZKR_OK);
  if (rc != ZKR_OK) {
    fprintf(stderr, "th_session: zkr_session_open(%s): %s\n", hosts, zkr_strerror(rc));
    return NULL;
  }
  return s;
}

zkr_session *th_session(int session_timeout_ms) {
  return th_session_at(th_hosts(), session_timeout_ms, 0);
}

/* --- time ------------------------------------------------------------------------ */

int64_t th_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  /* Restart after a signal with what is left. */
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

int th_wait_until(int (*pred)(void *arg), void *arg, int timeout_ms) {
  int64_t deadline = th_now_ms() + timeout_ms;

  for (;;) {
    if (pred(arg))
      return 1;
    if (th_now_ms() >= deadline)
      return 0;
    sleep_ms(1);
  }
}

/* --- raw handles ----------------------------------------------------------------- */

/* Raw handles are for inspection: their client log would only clutter the
 * test output. */
static void quiet_log(const char *message) {
  (void)message;
}

/* Waits until zh is connected. Returns ZOO_CONNECTED_STATE, the terminal
 * state it reached instead (expired, auth failed), or 0 on timeout. */
static int wait_connected(zhandle_t *zh, int timeout_ms) {
  int64_t deadline = th_now_ms() + timeout_ms;

  for (;;) {
    int st = zoo_state(zh);

    if (st == ZOO_CONNECTED_STATE || st == ZOO_EXPIRED_SESSION_STATE || st == ZOO_AUTH_FAILED_STATE)
      return st;
    if (th_now_ms() >= deadline)
      return 0;
    sleep_ms(1);
  }
}

static zhandle_t *raw_open(const clientid_t *cid, int *state) {
  zhandle_t *zh;

  *state = 0;
  zh = zookeeper_init2(th_hosts(), NULL, TH_RAW_TIMEOUT_MS, cid, NULL, 0, quiet_log);
  if (zh == NULL) {
    fprintf(stderr, "zookeeper_init2(%s): %s\n", th_hosts(), strerror(errno));
    return NULL;
  }
  /* Resolve the (numeric) address once, not on every I/O loop iteration. */
  zoo_set_servers_resolution_delay(zh, -1);
  *state = wait_connected(zh, TH_CONNECT_MS);
  return zh;
}

zhandle_t *th_raw(void) {
  int state;
  zhandle_t *zh = raw_open(NULL, &state);

  if (zh != NULL && state != ZOO_CONNECTED_STATE) {
    fprintf(stderr, "th_raw: no connection to %s (state %d)\n", th_hosts(), state);
    zookeeper_close(zh);
    return NULL;
  }
  return zh;
}

void th_raw_close(zhandle_t *zh) {
  if (zh != NULL)
    zookeeper_close(zh);
}

/* --- expiry ------------------------------------------------------------------------- */

int th_expire_id(int64_t session_id, const char *passwd16) {
  clientid_t cid;
  int attempt;

  if (session_id == 0 || passwd16 == NULL)
    return -1;
  memset(&cid, 0, sizeof(cid));
  cid.client_id = session_id;
  memcpy(cid.passwd, passwd16, sizeof(cid.passwd));
  /* A second client attaching to the session takes it over on the server
   * (the original connection is dropped); closing that client closes the
   * session, so the original client learns it expired when it reconnects.
   * The original client may reconnect first and take the session back, so
   * that our close request is never sent: attach again until the server
   * answers that the session is gone. */
  for (attempt = 0; attempt < 20; attempt++) {
    zhandle_t *zh;
    int state;

    zh = raw_open(&cid, &state);
    if (zh == NULL)
      return -1;
    if (state == ZOO_EXPIRED_SESSION_STATE) {
      zookeeper_close(zh);
      return 0;
    }
    if (state != ZOO_CONNECTED_STATE) {
      fprintf(stderr, "th_expire_id: could not attach to session 0x%llx (state %d)\n",
              (unsigned long long)session_id, state);
      zookeeper_close(zh);
      return -1;
    }
    zookeeper_close(zh);
  }
  fprintf(stderr, "th_expire_id: session 0x%llx survives every close\n", (unsigned long long)session_id);
  return -1;
}

int th_expire(zkr_session *s) {
  zhandle_t *zh = zkr_session_zhandle(s);
  clientid_t cid;

  if (zh == NULL)
    return -1;
  /* Copied: the session's client id may change under us once it expires. */
  cid = *zoo_client_id(zh);
  return th_expire_id(cid.client_id, cid.passwd);
}

/* --- znodes ---------------------------------------------------------------------------- */

char *th_path(const char *tag) {
  int n = atomic_fetch_add(&path_counter, 1);
  int len = snprintf(NULL, 0, "/zkr-test/%s-%ld-%d", tag, (long)getpid(), n);
  char *p = malloc((size_t)len + 1);

  if (p == NULL) {
    fprintf(stderr, "th_path: out of memory\n");
    exit(1);
  }
  snprintf(p, (size_t)len + 1, "/zkr-test/%s-%ld-%d", tag, (long)getpid(), n);
  return p;
}

static int join_path(char *buf, size_t len, const char *dir, const char *child) {
  /* The root's children are "/x", not "//x". */
  int n = snprintf(buf, len, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, child);

  return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Descendants of path; 0 if it does not exist, -1 on error. */
static int count_below(zhandle_t *zh, const char *path) {
  struct String_vector kids;
  int rc, i, total = 0;

  memset(&kids, 0, sizeof(kids));
  rc = zoo_get_children(zh, path, 0, &kids);
  if (rc == ZNONODE)
    return 0;
  if (rc != ZOK) {
    fprintf(stderr, "th_count_nodes: get_children(%s): %s\n", path, zerror(rc));
    return -1;
  }
  for (i = 0; i < kids.count && total >= 0; i++) {
    char child[TH_PATH_MAX];
    int n;

    if (join_path(child, sizeof(child), path, kids.data[i]) != 0) {
      total = -1;
      break;
    }
    n = count_below(zh, child);
    total = n < 0 ? -1 : total + 1 + n;
  }
  deallocate_String_vector(&kids);
  return total;
}

int th_count_nodes(const char *path) {
  zhandle_t *zh = th_raw();
  int n;

  if (zh == NULL)
    return -1;
  n = count_below(zh, path);
  zookeeper_close(zh);
  return n;
}

const char *th_children(const char *path) {
  /* Per thread, so threads may build messages at the same time. */
  static _Thread_local char buf[8192];
  struct String_vector kids;
  zhandle_t *zh;
  size_t used = 0;
  int rc, i;

  buf[0] = '\0';
  zh = th_raw();
  if (zh == NULL) {
    snprintf(buf, sizeof(buf), "(no connection)");
    return buf;
  }
  memset(&kids, 0, sizeof(kids));
  rc = zoo_get_children(zh, path, 0, &kids);
  if (rc != ZOK) {
    snprintf(buf, sizeof(buf), "(%s: %s)", path, zerror(rc));
  } else {
    for (i = 0; i < kids.count; i++) {
      int n = snprintf(buf + used, sizeof(buf) - used, "%s\n", kids.data[i]);
      if (n < 0 || (size_t)n >= sizeof(buf) - used) {
        /* Truncated: say so rather than cut a name silently. */
        snprintf(buf + sizeof(buf) - 5, 5, "...\n");
        break;
      }
      used += (size_t)n;
    }
    deallocate_String_vector(&kids);
  }
  zookeeper_close(zh);
  return buf;
}

static int delete_below(zhandle_t *zh, const char *path) {
  int attempt;

  /* The server's own subtree cannot be deleted (reached from "/"). */
  if (strcmp(path, "/zookeeper") == 0 || strncmp(path, "/zookeeper/", 11) == 0)
    return 0;
  /* A child may appear between the listing and the delete (a recipe's
   * background work): list again a few times before giving up. */
  for (attempt = 0; attempt < 10; attempt++) {
    struct String_vector kids;
    int rc, i, err = 0;

    memset(&kids, 0, sizeof(kids));
    rc = zoo_get_children(zh, path, 0, &kids);
    if (rc == ZNONODE)
      return 0;
    if (rc != ZOK) {
      fprintf(stderr, "th_delete_tree: get_children(%s): %s\n", path, zerror(rc));
      return -1;
    }
    for (i = 0; i < kids.count && err == 0; i++) {
      char child[TH_PATH_MAX];

      if (join_path(child, sizeof(child), path, kids.data[i]) != 0)
        err = -1;
      else
        err = delete_below(zh, child);
    }
    deallocate_String_vector(&kids);
    if (err != 0)
      return err;
    /* The root cannot be deleted; its children are. */
    if (strcmp(path, "/") == 0)
      return 0;
    rc = zoo_delete(zh, path, -1);
    if (rc == ZOK || rc == ZNONODE)
      return 0;
    if (rc != ZNOTEMPTY) {
      fprintf(stderr, "th_delete_tree: delete(%s): %s\n", path, zerror(rc));
      return -1;
    }
  }
  fprintf(stderr, "th_delete_tree: %s keeps getting new children\n", path);
  return -1;
}

int th_delete_tree(const char *path) {
  zhandle_t *zh = th_raw();
  int rc;

  if (zh == NULL)
    return -1;
  rc = delete_below(zh, path);
  zookeeper_close(zh);
  return rc;
}

/* --- process ------------------------------------------------------------------------- */

int th_thread_count(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  int n = -1;

  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (sscanf(line, "Threads: %d", &n) == 1)
      break;
  }
  fclose(f);
  return n;
}

typedef struct nodes_arg {
  const char *path;
  int want;
} nodes_arg;

static int nodes_are(void *arg) {
  nodes_arg *a = arg;
  return th_count_nodes(a->path) == a->want;
}

int th_await_nodes(const char *path, int want) {
  nodes_arg a = {path, want};
  return th_wait_until(nodes_are, &a, TH_SETTLE_MS);
}

void th_finish_path(char *path) {
  CU_ASSERT_TRUE(th_await_nodes(path, 0));
  CU_ASSERT_EQUAL(th_count_nodes(path), 0);
  th_delete_tree(path);
  free(path);
}

int th_wchp(char *buf, size_t cap) {
  const char *hosts = th_hosts(), *colon = strrchr(hosts, ':');
  struct sockaddr_in sa;
  size_t n = 0;
  ssize_t r;
  int fd;

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(colon + 1));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || write(fd, "wchp", 4) != 4) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
    n += (size_t)r;
  close(fd);
  buf[n] = '\0';
  return 0;
}

int th_watchers(const char *path) {
  char *buf = malloc(65536), *line, *save;
  int n = 0, in = 0;

  if (buf == NULL || th_wchp(buf, 65536) != 0) {
    free(buf);
    return -1;
  }
  /* A path line, then one line per session watching it. */
  for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '/')
      in = strcmp(line, path) == 0;
    else if (in && strstr(line, "0x") != NULL)
      n++;
  }
  free(buf);
  return n;
}

int th_watched(const char *path) {
  return th_watchers(path) > 0;
}

zkr_lock *th_lock(zkr_session *s, const char *path) {
  zkr_lock *l = NULL;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  return l;
}

static int told_to_release(void *arg) {
  return __atomic_load_n(&((th_acquirer *)arg)->release_now, __ATOMIC_SEQ_CST);
}

static void *acquirer_main(void *arg) {
  th_acquirer *a = arg;

  a->rc = zkr_lock_acquire(a->l, a->timeout_ms);
  a->returned_ms = th_now_ms();
  __atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
  if (a->rc == ZKR_OK) {
    /* Held as long as the test says: the bound only paces the loop. */
    while (a->hold && !th_wait_until(told_to_release, a, TH_SETTLE_MS))
      ;
    a->release_rc = zkr_lock_release(a->l);
  }
  return NULL;
}

void th_acquirer_start(th_acquirer *a, zkr_lock *l, int timeout_ms, int hold) {
  memset(a, 0, sizeof(*a));
  a->l = l;
  a->timeout_ms = timeout_ms;
  a->hold = hold;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&a->t, NULL, acquirer_main, a), 0);
}

int th_acquirer_done(void *a) {
  return __atomic_load_n(&((th_acquirer *)a)->done, __ATOMIC_SEQ_CST);
}

int th_acquirer_finish(th_acquirer *a) {
  __atomic_store_n(&a->release_now, 1, __ATOMIC_SEQ_CST);
  pthread_join(a->t, NULL);
  if (a->rc == ZKR_OK)
    CU_ASSERT_EQUAL(a->release_rc, ZKR_OK);
  return a->rc;
}

pid_t th_child_holding(int (*take)(zkr_session *s, const char *path), const char *path,
                       int session_timeout_ms) {
  int up[2], st;
  char c = 0;
  pid_t pid;

  if (pipe(up) != 0)
    return -1;
  pid = fork();
  if (pid == 0) {
    zkr_session *s = NULL;
    zkr_session_opts so;

    close(up[0]);
    memset(&so, 0, sizeof(so));
    so.session_timeout_ms = session_timeout_ms > 0 ? session_timeout_ms : TH_SESSION_MS;
    if (zkr_session_open(&s, th_hosts(), &so) != ZKR_OK || take(s, path) != ZKR_OK)
      _exit(1);
    if (write(up[1], "x", 1) != 1)
      _exit(1);
    for (;;)
      pause(); /* holding until killed */
  }
  close(up[1]);
  /* One byte once it holds; end of file if it failed. */
  if (pid < 0 || read(up[0], &c, 1) != 1) {
    close(up[0]);
    if (pid > 0)
      waitpid(pid, &st, 0);
    return -1;
  }
  close(up[0]);
  return pid;
}

void th_child_kill(pid_t pid) {
  int st;

  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
}
