/* The lock's contract against a real server: mutual exclusion across
 * processes and threads, FIFO, reentrancy, try and timed acquisition, no
 * herd, fencing tokens, fenced writes, loss notification, bad input. Fault
 * scenarios are in test_faults.c. Every case leaves no znode behind. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "harness.h"

static zkr_lock *lock_on(zkr_session *s, const char *path, const zkr_lock_opts *o) {
  zkr_lock *l = NULL;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, o), ZKR_OK);
  return l;
}

/* --- naming and data ----------------------------------------------------- */

static void test_lock_node_name_and_data(void) {
  char *path = th_path("l-name"), node[1024], data[64], host[300];
  zkr_session *s = th_session(0);
  zkr_lock_opts o;
  zkr_lock *a, *b;
  zhandle_t *raw = th_raw();
  regex_t re;
  int len = sizeof(data) - 1;

  memset(&o, 0, sizeof(o));
  o.id = "worker-7";
  a = lock_on(s, path, &o);
  b = lock_on(s, path, NULL);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(a, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(a, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_EQUAL(
      regcomp(&re, "/_c_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-lock-[0-9]{10}$",
              REG_EXTENDED),
      0);
  CU_ASSERT_EQUAL(regexec(&re, node, 0, NULL, 0), 0);
  regfree(&re);
  CU_ASSERT_EQUAL(strncmp(node, path, strlen(path)), 0);
  CU_ASSERT_EQUAL(zoo_get(raw, node, 0, data, &len, NULL), ZOK);
  data[len > 0 ? len : 0] = '\0';
  CU_ASSERT_STRING_EQUAL(data, "worker-7");
  CU_ASSERT_EQUAL(zkr_lock_release(a), ZKR_OK);
  /* Default id: host name and pid. */
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(b, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(b, node, sizeof(node)), ZKR_OK);
  len = sizeof(data) - 1;
  CU_ASSERT_EQUAL(zoo_get(raw, node, 0, data, &len, NULL), ZOK);
  data[len > 0 ? len : 0] = '\0';
  gethostname(host, sizeof(host));
  snprintf(host + strlen(host), sizeof(host) - strlen(host), ":%d", (int)getpid());
  CU_ASSERT_STRING_EQUAL(data, host);
  CU_ASSERT_EQUAL(zkr_lock_node(b, node, 4), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lock_release(b), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(b, node, sizeof(node)), ZKR_ENOTHELD);
  zkr_lock_free(a);
  zkr_lock_free(b);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
}

/* --- mutual exclusion ---------------------------------------------------- */

#define ME_PROCS 4
#define ME_THREADS 3
#define ME_ROUNDS 15

typedef struct me_shared {
  int occupancy;
  int violations;
  int entries;
} me_shared;

typedef struct me_thread {
  zkr_lock *l;
  me_shared *sh;
  const char *file;
  int failures;
} me_thread;

static void *me_main(void *p) {
  me_thread *t = p;
  int i;

  for (i = 0; i < ME_ROUNDS; i++) {
    char buf[32] = {0};
    int fd, v;

    /* Behind every other contender at worst. */
    if (zkr_lock_acquire(t->l, TH_QUEUE_MS(ME_PROCS * ME_THREADS - 1)) != ZKR_OK) {
      t->failures++;
      continue;
    }
    if (__atomic_add_fetch(&t->sh->occupancy, 1, __ATOMIC_SEQ_CST) != 1)
      __atomic_add_fetch(&t->sh->violations, 1, __ATOMIC_SEQ_CST);
    /* Read-modify-write of a shared counter: loses updates without the lock. */
    fd = open(t->file, O_RDWR);
    if (fd >= 0 && pread(fd, buf, sizeof(buf) - 1, 0) >= 0) {
      v = atoi(buf);
      usleep(200);
      snprintf(buf, sizeof(buf), "%-20d", v + 1);
      if (pwrite(fd, buf, strlen(buf), 0) < 0)
        t->failures++;
    }
    if (fd >= 0)
      close(fd);
    __atomic_add_fetch(&t->sh->entries, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(&t->sh->occupancy, 1, __ATOMIC_SEQ_CST);
    if (zkr_lock_release(t->l) != ZKR_OK)
      t->failures++;
  }
  return NULL;
}

static int me_process(const char *path, me_shared *sh, const char *file) {
  zkr_session *s = th_session(0);
  me_thread t[ME_THREADS];
  pthread_t tid[ME_THREADS];
  zkr_lock *l = NULL;
  int i, failures = 0;

  /* Threads of one process share one zkr_lock: they contend like separate
   * clients. */
  if (s == NULL || zkr_lock_new(&l, s, path, NULL) != ZKR_OK)
    return 1;
  for (i = 0; i < ME_THREADS; i++) {
    t[i].l = l;
    t[i].sh = sh;
    t[i].file = file;
    t[i].failures = 0;
    pthread_create(&tid[i], NULL, me_main, &t[i]);
  }
  for (i = 0; i < ME_THREADS; i++) {
    pthread_join(tid[i], NULL);
    failures += t[i].failures;
  }
  zkr_lock_free(l);
  zkr_session_close(s);
  return failures == 0 ? 0 : 1;
}

static void test_lock_mutual_exclusion(void) {
  char *path = th_path("l-mutex"), file[] = "/tmp/zkr-test-counter-XXXXXX", buf[32] = {0};
  me_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid_t pid[ME_PROCS];
  int fd = mkstemp(file), i, st;

  CU_ASSERT_FATAL(sh != MAP_FAILED && fd >= 0);
  memset(sh, 0, sizeof(*sh));
  CU_ASSERT_EQUAL(write(fd, "0", 1), 1);
  close(fd);
  for (i = 0; i < ME_PROCS; i++) {
    pid[i] = fork();
    if (pid[i] == 0)
      _exit(me_process(path, sh, file));
  }
  for (i = 0; i < ME_PROCS; i++) {
    CU_ASSERT_EQUAL(waitpid(pid[i], &st, 0), pid[i]);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  fd = open(file, O_RDONLY);
  CU_ASSERT_TRUE(fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0);
  close(fd);
  unlink(file);
  CU_ASSERT_EQUAL(sh->violations, 0);
  CU_ASSERT_EQUAL(sh->entries, ME_PROCS * ME_THREADS * ME_ROUNDS);
  CU_ASSERT_EQUAL(atoi(buf), ME_PROCS * ME_THREADS * ME_ROUNDS); /* no lost update */
  munmap(sh, sizeof(*sh));
  th_finish_path(path);
}

/* --- FIFO ------------------------------------------------------------------- */

#define FIFO_WAITERS 5

typedef struct fifo_ctx {
  pthread_mutex_t mu;
  int order[8];
  int n;
} fifo_ctx;

typedef struct fifo_waiter {
  zkr_lock *l;
  int id;
  fifo_ctx *ctx;
} fifo_waiter;

static void *fifo_main(void *p) {
  fifo_waiter *w = p;

  if (zkr_lock_acquire(w->l, TH_QUEUE_MS(FIFO_WAITERS)) == ZKR_OK) {
    pthread_mutex_lock(&w->ctx->mu);
    w->ctx->order[w->ctx->n++] = w->id;
    pthread_mutex_unlock(&w->ctx->mu);
    zkr_lock_release(w->l);
  }
  return NULL;
}

static void test_lock_fifo(void) {
  char *path = th_path("l-fifo");
  zkr_session *s = th_session(0);
  zkr_lock *h = lock_on(s, path, NULL);
  fifo_ctx ctx = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
  fifo_waiter w[FIFO_WAITERS];
  pthread_t t[FIFO_WAITERS];
  int i;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(h, -1), ZKR_OK);
  for (i = 0; i < FIFO_WAITERS; i++) {
    w[i].l = lock_on(s, path, NULL);
    w[i].id = i;
    w[i].ctx = &ctx;
    pthread_create(&t[i], NULL, fifo_main, &w[i]);
    CU_ASSERT_TRUE(th_await_nodes(path, i + 2)); /* queued before the next one starts */
  }
  CU_ASSERT_EQUAL(zkr_lock_release(h), ZKR_OK);
  for (i = 0; i < FIFO_WAITERS; i++)
    pthread_join(t[i], NULL);
  CU_ASSERT_EQUAL(ctx.n, FIFO_WAITERS);
  for (i = 0; i < FIFO_WAITERS; i++) {
    CU_ASSERT_EQUAL(ctx.order[i], i);
    zkr_lock_free(w[i].l);
  }
  zkr_lock_free(h);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- reentrancy, other threads ---------------------------------------------- */

typedef struct other_arg {
  zkr_lock *l;
  int release_rc, try_rc, held;
} other_arg;

static void *other_main(void *p) {
  other_arg *a = p;

  a->held = zkr_lock_held(a->l);
  a->release_rc = zkr_lock_release(a->l);
  a->try_rc = zkr_lock_acquire(a->l, 0);
  return NULL;
}

static void test_lock_reentrancy(void) {
  char *path = th_path("l-reent");
  zkr_session *s = th_session(0);
  zkr_lock *l = lock_on(s, path, NULL);
  other_arg oa = {l, 0, 0, 0};
  int64_t t1 = 0, t2 = 0;
  pthread_t t;
  int64_t t0;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_token(l, &t1), ZKR_OK);
  t0 = zkr_monotonic_ns();
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, 0), ZKR_OK);
  /* Counts only, no round trip: far below what the server's answer takes
   * under any load we allow (a quarter of the session timeout, scaled). */
  CU_ASSERT_TRUE(zkr_monotonic_ns() - t0 < (int64_t)TH_LATE_MS * 1000000 / 10);
  CU_ASSERT_EQUAL(zkr_lock_held(l), 1);
  CU_ASSERT_EQUAL(zkr_lock_token(l, &t2), ZKR_OK);
  CU_ASSERT_EQUAL(t1, t2);
  /* Another thread sharing the object neither holds nor can release. */
  pthread_create(&t, NULL, other_main, &oa);
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(oa.held, 0);
  CU_ASSERT_EQUAL(oa.release_rc, ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(oa.try_rc, ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zkr_lock_held(l), 1);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 0); /* gone when release returned */
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(zkr_lock_held(l), 0);
  CU_ASSERT_EQUAL(zkr_lock_token(l, &t2), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(zkr_lock_valid_until(l), 0);
  zkr_lock_free(l);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- try and timeout ----------------------------------------------------------- */

static void test_lock_try_and_timeout(void) {
  char *path = th_path("l-try");
  zkr_session *a = th_session(0), *b = th_session(0);
  zkr_lock *la = lock_on(a, path, NULL), *lb = lock_on(b, path, NULL);
  int64_t t0, ms;
  /* The timed wait under test; its end must come on time (strict). */
  const int timed_ms = 700;

  CU_ASSERT_EQUAL(zkr_lock_acquire(lb, 0), ZKR_OK); /* free: a try gets it */
  CU_ASSERT_EQUAL(zkr_lock_release(lb), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(la, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(lb, 0), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1); /* its node was gone when it returned */
  t0 = th_now_ms();
  CU_ASSERT_EQUAL(zkr_lock_acquire(lb, timed_ms), ZKR_ETIMEDOUT);
  ms = th_now_ms() - t0;
  printf("[timed acquire of %d ms returned after %lld ms] ", timed_ms, (long long)ms);
  CU_ASSERT_TRUE(ms >= timed_ms && ms < timed_ms + TH_LATE_MS);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  CU_ASSERT_EQUAL(zkr_lock_held(lb), 0);
  CU_ASSERT_EQUAL(zkr_lock_release(la), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(lb, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(lb), ZKR_OK);
  zkr_lock_free(la);
  zkr_lock_free(lb);
  zkr_session_close(a);
  zkr_session_close(b);
  th_finish_path(path);
}

/* --- herd ---------------------------------------------------------------------- */

#define HERD 50

typedef struct herd_w {
  zkr_session *s;
  zkr_lock *l;
  int rc;
  int done;
} herd_w;

static void *herd_main(void *p) {
  herd_w *w = p;

  w->rc = zkr_lock_acquire(w->l, TH_QUEUE_MS(HERD));
  __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* From the server's "wchp" (watched paths, each followed by the sessions
 * watching it): the largest number of sessions other than skip and the
 * path's own owner watching one path, and the number of paths watched. The
 * next in line watches its own node too; a herd is many sessions watching
 * one node that is not theirs. */
static int watchers(int64_t skip, int *paths) {
  static char buf[65536];
  char skiphex[32], ownerhex[32] = "";
  int max = 0, cur = 0;
  char *line, *save;
  zhandle_t *raw = th_raw();

  snprintf(skiphex, sizeof(skiphex), "0x%llx", (unsigned long long)skip);
  if (raw == NULL || th_wchp(buf, sizeof(buf)) != 0) {
    th_raw_close(raw);
    return -1;
  }
  *paths = 0;
  for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '/') {
      struct Stat st;
      cur = 0;
      ++*paths;
      ownerhex[0] = '\0';
      if (zoo_exists(raw, line, 0, &st) == ZOK && st.ephemeralOwner != 0)
        snprintf(ownerhex, sizeof(ownerhex), "0x%llx", (unsigned long long)st.ephemeralOwner);
    } else if (strstr(line, "0x") != NULL && strstr(line, skiphex) == NULL &&
               (ownerhex[0] == '\0' || strstr(line, ownerhex) == NULL) && ++cur > max) {
      max = cur;
    }
  }
  th_raw_close(raw);
  return max;
}

typedef struct herd_watch {
  int64_t holder;
} herd_watch;

static int all_watching(void *arg) {
  int paths = 0;

  /* Every waiter watches its predecessor: HERD distinct watched paths. */
  watchers(((herd_watch *)arg)->holder, &paths);
  return paths >= HERD;
}

static int count_done(herd_w *w) {
  int i, n = 0;

  for (i = 0; i < HERD; i++)
    n += __atomic_load_n(&w[i].done, __ATOMIC_SEQ_CST);
  return n;
}

typedef struct done_arg {
  herd_w *w;
  int want;
} done_arg;

static int done_reached(void *arg) {
  done_arg *d = arg;
  return count_done(d->w) >= d->want;
}

static void test_lock_herd(void) {
  char *path = th_path("l-herd");
  zkr_session *s = th_session(0);
  zkr_lock *h = lock_on(s, path, NULL);
  herd_w *w = calloc(HERD, sizeof(*w));
  herd_watch hw = {zkr_session_id(s)};
  pthread_t t[HERD];
  int i, round, paths = 0, extra = 0;

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(h, -1), ZKR_OK);
  for (i = 0; i < HERD; i++) {
    w[i].s = th_session(0);
    w[i].l = lock_on(w[i].s, path, NULL);
    pthread_create(&t[i], NULL, herd_main, &w[i]);
  }
  CU_ASSERT_TRUE(th_await_nodes(path, HERD + 1));
  CU_ASSERT_TRUE(th_wait_until(all_watching, &hw, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(watchers(hw.holder, &paths), 1); /* no node watched by two waiters */
  CU_ASSERT_EQUAL(zkr_lock_release(h), ZKR_OK);
  /* Each release lets exactly one waiter through: the next in line. */
  for (round = 0; round < HERD; round++) {
    done_arg d = {w, round + 1};
    CU_ASSERT_TRUE(th_wait_until(done_reached, &d, TH_SETTLE_MS));
    if (count_done(w) != round + 1)
      extra++;
    for (i = 0; i < HERD; i++) {
      if (__atomic_load_n(&w[i].done, __ATOMIC_SEQ_CST) && w[i].l != NULL) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(w[i].rc, ZKR_OK);
        zkr_lock_free(w[i].l); /* releases the hold its thread left */
        w[i].l = NULL;
        break;
      }
    }
  }
  CU_ASSERT_EQUAL(extra, 0);
  CU_ASSERT_EQUAL(count_done(w), HERD);
  for (i = 0; i < HERD; i++)
    zkr_session_close(w[i].s);
  free(w);
  zkr_lock_free(h);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- tokens ---------------------------------------------------------------------- */

static void test_lock_token_increases(void) {
  char *path = th_path("l-token");
  zkr_session *s = th_session(0);
  zkr_lock *l = lock_on(s, path, NULL);
  int64_t prev = 0, tok = 0;
  int i;

  for (i = 0; i < 6; i++) {
    CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
    CU_ASSERT_EQUAL(zkr_lock_token(l, &tok), ZKR_OK);
    CU_ASSERT_TRUE(tok > prev);
    prev = tok;
    CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_OK);
    if (i == 2)
      CU_ASSERT_EQUAL(th_delete_tree(path), 0); /* the sequence restarts; the token does not */
  }
  zkr_lock_free(l);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- validity, fenced writes, loss by deletion ---------------------------------------- */

typedef struct lost_n {
  int n;
} lost_n;

static void on_lost(zkr_lock *l, void *arg) {
  (void)l;
  __atomic_add_fetch(&((lost_n *)arg)->n, 1, __ATOMIC_SEQ_CST);
}

static int lost_seen(void *arg) {
  return __atomic_load_n(&((lost_n *)arg)->n, __ATOMIC_SEQ_CST) > 0;
}

static void test_lock_valid_until_and_multi(void) {
  char *path = th_path("l-multi"), *data = th_path("l-multi-data"), node[1024];
  zkr_session *s = th_session(TH_SESSION_MS);
  zkr_lock *l = lock_on(s, path, NULL);
  zhandle_t *raw = th_raw();
  zoo_op_t op;
  zoo_op_result_t res;
  int64_t now, until;

  CU_ASSERT_EQUAL(zoo_create(raw, "/zkr-test", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0) == ZOK ||
                      zoo_exists(raw, "/zkr-test", 0, NULL) == ZOK,
                  1);
  CU_ASSERT_EQUAL(zkr_lock_multi(l, 0, NULL, NULL), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  now = zkr_monotonic_ns();
  until = zkr_lock_valid_until(l);
  CU_ASSERT_TRUE(until > now && until <= now + (int64_t)TH_SESSION_MS * 1000000); /* the protocol's bound */
  zoo_create_op_init(&op, data, "v", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  CU_ASSERT_EQUAL(zkr_lock_multi(l, 1, &op, &res), ZKR_OK);
  CU_ASSERT_EQUAL(zoo_exists(raw, data, 0, NULL), ZOK);
  CU_ASSERT_EQUAL(zkr_lock_multi(l, 1, &op, &res), ZKR_EZK); /* our op fails: node exists */
  CU_ASSERT_EQUAL(res.err, ZNODEEXISTS);
  CU_ASSERT_EQUAL(zoo_delete(raw, data, -1), ZOK);
  /* Our node deleted behind our back: the fenced write must not commit. */
  CU_ASSERT_EQUAL(zkr_lock_node(l, node, sizeof(node)), ZKR_OK);
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_NOT_EQUAL(zkr_lock_multi(l, 1, &op, &res), ZKR_OK);
  CU_ASSERT_EQUAL(zoo_exists(raw, data, 0, NULL), ZNONODE);
  zkr_lock_release(l);
  zkr_lock_free(l);
  zkr_session_close(s);
  th_raw_close(raw);
  free(data);
  th_finish_path(path);
}

static int node_watched(void *arg) {
  return th_watched(arg);
}

static void test_lock_node_deleted_on_lost(void) {
  char *path = th_path("l-deleted"), node[1024];
  zkr_session *s = th_session(0);
  lost_n lc = {0};
  zkr_lock_opts o;
  zkr_lock *l, *other;
  zhandle_t *raw = th_raw();

  memset(&o, 0, sizeof(o));
  o.on_lost = on_lost;
  o.arg = &lc;
  l = lock_on(s, path, &o);
  other = lock_on(s, path, NULL);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_node(l, node, sizeof(node)), ZKR_OK);
  /* The own-node watch is set asynchronously after the grant: await it. */
  CU_ASSERT_TRUE(th_wait_until(node_watched, node, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  CU_ASSERT_TRUE(th_wait_until(lost_seen, &lc, TH_SETTLE_MS));
  CU_ASSERT_EQUAL(lc.n, 1);
  CU_ASSERT_EQUAL(zkr_lock_held(l), 0);
  CU_ASSERT_EQUAL(zkr_lock_lost_reason(l), ZKR_LOST_DELETED);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_ELOST); /* says why, not "session lost" */
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_ENOTHELD);
  CU_ASSERT_EQUAL(zkr_lock_acquire(other, 0), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(other), ZKR_OK);
  CU_ASSERT_EQUAL(lc.n, 1);
  zkr_lock_free(l);
  zkr_lock_free(other);
  zkr_session_close(s);
  th_raw_close(raw);
  th_finish_path(path);
}

/* --- free, session close ----------------------------------------------------------- */

static void test_lock_free_while_held(void) {
  char *path = th_path("l-free");
  zkr_session *s = th_session(0);
  zkr_lock *l = lock_on(s, path, NULL);

  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  CU_ASSERT_EQUAL(th_count_nodes(path), 1);
  zkr_lock_free(l);
  CU_ASSERT_EQUAL(th_count_nodes(path), 0); /* released first */
  zkr_lock_free(NULL);
  /* Closing the session first, the lock object can still be freed. */
  l = lock_on(s, path, NULL);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(l, -1), ZKR_OK);
  zkr_session_close(s);
  CU_ASSERT_EQUAL(zkr_lock_held(l), 0);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, 0), ZKR_ESESSION);
  zkr_lock_free(l);
  th_finish_path(path);
}

/* --- participants ----------------------------------------------------------------- */

static void test_lock_participants(void) {
  char *path = th_path("l-parts");
  zkr_session *s = th_session(0);
  zkr_lock_opts o;
  zkr_lock *a, *b;
  zkr_participant *p = NULL;
  size_t n = 0;
  int64_t tok = 0;

  memset(&o, 0, sizeof(o));
  o.id = "first";
  a = lock_on(s, path, &o);
  o.id = "second";
  b = lock_on(s, path, &o);
  CU_ASSERT_EQUAL(zkr_participants(s, path, &p, &n), ZKR_OK);
  CU_ASSERT_EQUAL(n, 0); /* absent path: empty */
  zkr_participants_free(p, n);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_acquire(a, -1), ZKR_OK);
  zkr_lock_token(a, &tok);
  CU_ASSERT_EQUAL(zkr_lock_acquire(b, 300), ZKR_ETIMEDOUT);
  CU_ASSERT_EQUAL(zkr_participants(s, path, &p, &n), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(n, 1);
  CU_ASSERT_STRING_EQUAL(p[0].id, "first");
  CU_ASSERT_EQUAL(p[0].holder, 1);
  CU_ASSERT_EQUAL(p[0].token, tok);
  CU_ASSERT_EQUAL(p[0].session, zkr_session_id(s));
  CU_ASSERT_TRUE(p[0].age_ms >= 0 && p[0].age_ms < TH_SETTLE_MS); /* made in this test */
  zkr_participants_free(p, n);
  CU_ASSERT_EQUAL(zkr_participants(NULL, path, &p, &n), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_participants(s, "bad", &p, &n), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lock_release(a), ZKR_OK);
  zkr_lock_free(a);
  zkr_lock_free(b);
  zkr_session_close(s);
  th_finish_path(path);
}

/* --- bad input ------------------------------------------------------------------------ */

/* A parent whose ACL denies us: "not authorized", whether the denial comes
 * when creating a missing parent or our own node (before, the first gave
 * "unexpected ZooKeeper error"). Nothing is left behind. */
static void test_lock_parent_acl_denied(void) {
  struct ACL read_only[] = {{0, {"world", "anyone"}}};
  struct ACL_vector acl = {1, read_only};
  char *path = th_path("l-acl"), *nodel = th_path("l-acl-nodel"), deep[1100];
  zhandle_t *raw = th_raw();
  zkr_session *s = th_session(0);
  zkr_lock *l = NULL, *ld = NULL;
  zkr_election *e = NULL;

  read_only[0].perms = ZOO_PERM_READ;                                    /* no CREATE for anyone */
  zoo_create(raw, "/zkr-test", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0); /* may exist */
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, path, "", 0, &acl, 0, NULL, 0), ZOK);
  snprintf(deep, sizeof(deep), "%s/a/b", path);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, path, NULL), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&ld, s, deep, NULL), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, TH_SETTLE_MS), ZKR_ENOAUTH);
  CU_ASSERT_EQUAL(zkr_lock_acquire(ld, TH_SETTLE_MS), ZKR_ENOAUTH);
  CU_ASSERT_EQUAL(zkr_election_new(&e, s, deep, NULL), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_join(e), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_election_await(e, TH_SETTLE_MS), ZKR_ENOAUTH);
  zkr_election_free(e);
  CU_ASSERT_EQUAL(th_count_nodes(path), 0);
  zkr_lock_free(l);
  zkr_lock_free(ld);
  /* An ACL that lets us create but not delete: release names the refusal
   * (the node stays until the session ends), not "session lost". */
  read_only[0].perms = ZOO_PERM_READ | ZOO_PERM_CREATE | ZOO_PERM_WRITE;
  CU_ASSERT_EQUAL_FATAL(zoo_create(raw, nodel, "", 0, &acl, 0, NULL, 0), ZOK);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_new(&l, s, nodel, NULL), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_acquire(l, TH_SETTLE_MS), ZKR_OK);
  CU_ASSERT_EQUAL(zkr_lock_release(l), ZKR_ENOAUTH);
  zkr_lock_free(l);
  zkr_session_close(s);
  CU_ASSERT_TRUE(th_await_nodes(nodel, 0));
  CU_ASSERT_EQUAL(zoo_delete(raw, path, -1), ZOK);
  CU_ASSERT_EQUAL(zoo_delete(raw, nodel, -1), ZOK);
  th_raw_close(raw);
  th_finish_path(path);
  th_finish_path(nodel);
}

static void test_lock_bad_input(void) {
  static const char *const bad[] = {"",       "relative", "/",          "/a/",          "//a",     "/a//b",
                                    "/a/./b", "/a/../b",  "/zookeeper", "/zookeeper/x", "/a\001b", "/x/"};
  zkr_session *s = th_session(0);
  zkr_lock *l = NULL;
  zkr_lock_opts o;
  struct ACL_vector empty = {0, NULL};
  char *longp = malloc(2001);
  int64_t tok;
  size_t i;

  CU_ASSERT_EQUAL(zkr_lock_new(NULL, s, "/a", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lock_new(&l, NULL, "/a", NULL), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(l);
  CU_ASSERT_EQUAL(zkr_lock_new(&l, s, NULL, NULL), ZKR_EINVAL);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CU_ASSERT_EQUAL(zkr_lock_new(&l, s, bad[i], NULL), ZKR_EINVAL);
    CU_ASSERT_PTR_NULL(l);
  }
  memset(longp, 'a', 2000);
  longp[0] = '/';
  longp[2000] = '\0';
  CU_ASSERT_EQUAL(zkr_lock_new(&l, s, longp, NULL), ZKR_EINVAL);
  memset(&o, 0, sizeof(o));
  o.acl = &empty;
  CU_ASSERT_EQUAL(zkr_lock_new(&l, s, "/a", &o), ZKR_EINVAL);
  /* Nothing was created on the server. */
  CU_ASSERT_EQUAL(th_count_nodes("/a"), 0);
  CU_ASSERT_EQUAL(th_count_nodes("/x"), 0);
  CU_ASSERT_EQUAL(zkr_lock_acquire(NULL, 0), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lock_release(NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lock_held(NULL), 0);
  CU_ASSERT_EQUAL(zkr_lock_token(NULL, &tok), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lock_valid_until(NULL), 0);
  CU_ASSERT_EQUAL(zkr_lock_node(NULL, longp, 10), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_lock_multi(NULL, 0, NULL, NULL), ZKR_EINVAL);
  free(longp);
  zkr_session_close(s);
}

int main(void) {
  static const th_test tests[] = {{"test_lock_node_name_and_data", test_lock_node_name_and_data},
                                  {"test_lock_mutual_exclusion", test_lock_mutual_exclusion},
                                  {"test_lock_fifo", test_lock_fifo},
                                  {"test_lock_reentrancy", test_lock_reentrancy},
                                  {"test_lock_try_and_timeout", test_lock_try_and_timeout},
                                  {"test_lock_herd", test_lock_herd},
                                  {"test_lock_token_increases", test_lock_token_increases},
                                  {"test_lock_valid_until_and_multi", test_lock_valid_until_and_multi},
                                  {"test_lock_node_deleted_on_lost", test_lock_node_deleted_on_lost},
                                  {"test_lock_free_while_held", test_lock_free_while_held},
                                  {"test_lock_participants", test_lock_participants},
                                  {"test_lock_parent_acl_denied", test_lock_parent_acl_denied},
                                  {"test_lock_bad_input", test_lock_bad_input},
                                  {NULL, NULL}};

  return th_run("lock", tests);
}
