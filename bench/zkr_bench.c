/* One client process of the lock benchmark (driven by bench/run.py).
 *
 *   zkr_bench --impl zkr|zkr-nowait|raw|naive|raw-v2|zkr-async --mode MODE
 *             --connect HOSTS --path PATH [--count N] [--warmup W] [--hold-us U]
 *             [--waiters N] [--locks N] [--acquirers N] [--paths K] [--stack-kb S]
 *             --ready FILE --go FILE --out FILE
 *
 * Implementations: zkr (zkr_lock_acquire / zkr_lock_release), zkr-nowait
 * (release with zkr_lock_release_nowait), raw (the floor: the minimal
 * correct recipe on the raw client, all calls synchronous: create, list,
 * getData-watch on the predecessor, list again when it fires, delete),
 * naive (raw, but every waiter watches the directory's children: the herd
 * control).
 *
 * Modes: uncontended, contended (with peers: the same protocol as
 * bench/peers/), reentrant, herd, scale-waiters, scale-held; see run.py.
 * rw (zkr_rwlock against a raw read-write lock floor; --read-pct P of the
 * operations are reads, the rest writes, drawn from a generator seeded by
 * --client so every implementation runs the same sequence) and sem
 * (zkr_semaphore with --max-leases N against a raw floor) take --impl zkr
 * or raw (sem also raw-v2: the raw floor of zkr's and Curator's protocol); their peers are
 * bench/peers/CuratorRecipesBench.java. many (bench/many.c): --acquirers N
 * acquirers on --paths K locks through one session, --impl zkr-async (one
 * loop thread, the asynchronous API on a loop-mode session) or zkr (N
 * threads, the blocking API). Everything is timed with CLOCK_MONOTONIC, so the driver can merge the
 * timestamps of several processes. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zkr/semaphore.h>
#include <zkr/zkr.h>

#include "bench.h"

bench_opts opt = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, 2000, 500, 0, 50, 10000, 95, 4, 0, 1000, 100, 64};

void die(const char *what, int rc) {
  fprintf(stderr, "zkr_bench: %s: %d\n", what, rc);
  exit(1);
}

int64_t now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* utime + stime of the whole process (all threads). */
static int64_t cpu_ns(void) {
  char buf[1024], *p;
  unsigned long ut = 0, st = 0;
  FILE *f = fopen("/proc/self/stat", "r");
  size_t n;

  if (f == NULL)
    return 0;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return 0;
  return (int64_t)(ut + st) * (1000000000 / sysconf(_SC_CLK_TCK));
}

/* A number from /proc/self/status, e.g. "VmRSS:" (kB) or "Threads:". */
static long status_field(const char *name) {
  char line[256];
  long v = 0;
  size_t n = strlen(name);
  FILE *f = fopen("/proc/self/status", "r");

  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, name, n) == 0) {
      v = atol(line + n);
      break;
    }
  if (f != NULL)
    fclose(f);
  return v;
}

long rss_kb(void) {
  return status_field("VmRSS:");
}

int thread_count(void) {
  return (int)status_field("Threads:");
}

void sleep_ns(int64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};

  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

void touch(const char *path) {
  FILE *f = fopen(path, "w");

  if (f == NULL)
    die("cannot write the ready file", errno);
  fclose(f);
}

/* Reads the driver's "START_NS END_NS" line if it is there yet: 1, else 0. */
int read_go(int64_t *start, int64_t *end) {
  char buf[128] = "";
  FILE *f = fopen(opt.go, "r");
  size_t n = 0;

  if (f != NULL) {
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
  }
  buf[n] = '\0';
  return strchr(buf, '\n') != NULL && sscanf(buf, "%ld %ld", (long *)start, (long *)end) == 2;
}

/* Waits for the driver's "START_NS END_NS" line, then for START_NS. */
void wait_go(int64_t *start, int64_t *end) {
  while (!read_go(start, end))
    sleep_ns(1000000);
  while (now_ns() < *start)
    sleep_ns(100000);
}

/* --- the raw client: the floor ----------------------------------------------- */

typedef struct raw {
  zhandle_t *zh;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  int connected;
  unsigned fired;         /* watch events seen */
  unsigned long notified; /* all watch notifications (herd counting) */
  char node[512];
} raw;

static void raw_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  raw *r = ctx;

  (void)zh;
  (void)path;
  pthread_mutex_lock(&r->mu);
  if (type == ZOO_SESSION_EVENT)
    r->connected = state == ZOO_CONNECTED_STATE;
  else
    r->fired++, r->notified++;
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->mu);
}

static raw *raw_open(void) {
  raw *r = calloc(1, sizeof(*r));

  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cond, NULL);
  zoo_set_debug_level(0);
  r->zh = zookeeper_init(opt.connect, raw_watcher, SESSION_MS, NULL, r, 0);
  if (r->zh == NULL)
    die("zookeeper_init", errno);
  /* Without it the client resolves the host names on every I/O pass. */
  zoo_set_servers_resolution_delay(r->zh, -1);
  pthread_mutex_lock(&r->mu);
  while (!r->connected)
    pthread_cond_wait(&r->cond, &r->mu);
  pthread_mutex_unlock(&r->mu);
  return r;
}

static void raw_close(raw *r) {
  zookeeper_close(r->zh);
  free(r);
}

static void raw_mkdirs(raw *r, const char *dir) {
  char p[512];
  size_t i, n = strlen(dir);

  for (i = 1; i <= n; i++) {
    if (i < n && dir[i] != '/')
      continue;
    memcpy(p, dir, i);
    p[i] = '\0';
    zoo_create(r->zh, p, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  }
}

static long seq_of(const char *name) {
  const char *d = strrchr(name, '-');

  return d != NULL ? atol(d + 1) : -1;
}

/* Creates DIR/NAME-<seq> (EPHEMERAL_SEQUENTIAL) into out, making DIR
 * first if it is missing. */
static void raw_create(raw *r, const char *dir, const char *name, char *out, int outlen) {
  char prefix[600];
  int rc;

  snprintf(prefix, sizeof(prefix), "%s/%s-", dir, name);
  rc = zoo_create(r->zh, prefix, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, out, outlen);
  if (rc == ZNONODE) {
    raw_mkdirs(r, dir);
    rc = zoo_create(r->zh, prefix, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, out, outlen);
  }
  if (rc != ZOK)
    die("create", rc);
}

/* The watcher's count of fired watches: read before a request that sets a
 * watch, then raw_await() sleeps until it moves on (no wake-up lost). */
static unsigned raw_fired(raw *r) {
  unsigned fired;

  pthread_mutex_lock(&r->mu);
  fired = r->fired;
  pthread_mutex_unlock(&r->mu);
  return fired;
}

static void raw_await(raw *r, unsigned fired) {
  pthread_mutex_lock(&r->mu);
  while (r->fired == fired)
    pthread_cond_wait(&r->cond, &r->mu);
  pthread_mutex_unlock(&r->mu);
}

/* The raw queue floor: create DIR/NAME-<seq>; list; wait for the nearest
 * earlier node that blocks us (every one; only "write-" ones when blocker
 * is "write-": a reader) with a getData watch, list again when it fires.
 * naive: a children watch on DIR instead (the herd). */
static void raw_queue_acquire(raw *r, const char *dir, const char *name, const char *blocker, int naive) {
  char pred[600];
  int rc;

  raw_create(r, dir, name, r->node, sizeof(r->node));
  for (;;) {
    struct String_vector kids;
    long mine = seq_of(r->node), best = -1;
    unsigned fired = raw_fired(r);
    int i;

    rc =
        naive ? zoo_wget_children(r->zh, dir, raw_watcher, r, &kids) : zoo_get_children(r->zh, dir, 0, &kids);
    if (rc != ZOK)
      die("get_children", rc);
    for (i = 0; i < kids.count; i++) {
      long s = seq_of(kids.data[i]);
      if (s < mine && s > best && (blocker == NULL || strncmp(kids.data[i], blocker, strlen(blocker)) == 0)) {
        best = s;
        snprintf(pred, sizeof(pred), "%s/%s", dir, kids.data[i]);
      }
    }
    deallocate_String_vector(&kids);
    if (best < 0)
      return;
    if (!naive) {
      char buf[1];
      int len = sizeof(buf);
      rc = zoo_wget(r->zh, pred, raw_watcher, r, buf, &len, NULL);
      if (rc == ZNONODE)
        continue;
      if (rc != ZOK)
        die("wget", rc);
    }
    raw_await(r, fired);
  }
}

/* The raw lock floor: the queue with every earlier node blocking. */
static void raw_acquire(raw *r, const char *dir, int naive) {
  raw_queue_acquire(r, dir, "lock", NULL, naive);
}

static void raw_release(raw *r) {
  int rc = zoo_delete(r->zh, r->node, -1);

  if (rc != ZOK)
    die("delete", rc);
}

/* --- one client of any implementation -------------------------------------- */

typedef struct client {
  raw *r;
  zkr_session *s;
  zkr_lock *l;
  char dir[512];
} client;

static int is_zkr(void) {
  return strncmp(opt.impl, "zkr", 3) == 0;
}

static void client_open(client *c, const char *dir) {
  memset(c, 0, sizeof(*c));
  snprintf(c->dir, sizeof(c->dir), "%s", dir);
  if (is_zkr()) {
    zkr_session_opts so;
    int rc;
    memset(&so, 0, sizeof(so));
    so.session_timeout_ms = SESSION_MS;
    rc = zkr_session_open(&c->s, opt.connect, &so);
    if (rc != ZKR_OK)
      die("zkr_session_open", rc);
    rc = zkr_lock_new(&c->l, c->s, dir, NULL);
    if (rc != ZKR_OK)
      die("zkr_lock_new", rc);
  } else {
    c->r = raw_open();
  }
}

static void client_close(client *c) {
  if (c->l != NULL) {
    zkr_lock_free(c->l);
    zkr_session_close(c->s);
  } else {
    raw_close(c->r);
  }
}

static void acquire(client *c) {
  if (c->l != NULL) {
    int rc = zkr_lock_acquire(c->l, -1);
    if (rc != ZKR_OK)
      die("zkr_lock_acquire", rc);
  } else {
    raw_acquire(c->r, c->dir, strcmp(opt.impl, "naive") == 0);
  }
}

static void release(client *c) {
  if (c->l != NULL) {
    int rc = strcmp(opt.impl, "zkr-nowait") == 0 ? zkr_lock_release_nowait(c->l) : zkr_lock_release(c->l);
    if (rc != ZKR_OK)
      die("zkr_lock_release", rc);
  } else {
    raw_release(c->r);
  }
}

/* --- JSON output ------------------------------------------------------------- */

static FILE *out;

void out_begin(void) {
  char tmp[1024];

  snprintf(tmp, sizeof(tmp), "%s.tmp", opt.out);
  out = fopen(tmp, "w");
  if (out == NULL)
    die("cannot write the output", errno);
  fprintf(out, "{\"impl\": \"%s\", \"mode\": \"%s\"", opt.impl, opt.mode);
}

void out_int(const char *key, int64_t v) {
  fprintf(out, ", \"%s\": %lld", key, (long long)v);
}

void out_array(const char *key, const int64_t *v, long n) {
  long i;

  fprintf(out, ", \"%s\": [", key);
  for (i = 0; i < n; i++)
    fprintf(out, i > 0 ? ", %lld" : "%lld", (long long)v[i]);
  fprintf(out, "]");
}

void out_end(void) {
  char tmp[1024];

  fprintf(out, "}\n");
  fclose(out);
  snprintf(tmp, sizeof(tmp), "%s.tmp", opt.out);
  if (rename(tmp, opt.out) != 0)
    die("rename", errno);
}

int64_t *array(long n) {
  int64_t *a = calloc((size_t)(n > 0 ? n : 1), sizeof(*a));

  if (a == NULL)
    die("out of memory", 0);
  return a;
}

/* --- modes ------------------------------------------------------------------- */

static void warm_up(client *c) {
  long i;

  for (i = 0; i < opt.warmup; i++) {
    acquire(c);
    release(c);
  }
}

static void mode_uncontended(void) {
  int64_t *acq = array(opt.count), *rel = array(opt.count), start, end, t0 = 0, t2 = 0, c0, c1;
  client c;
  long i;

  client_open(&c, opt.path);
  warm_up(&c);
  touch(opt.ready);
  wait_go(&start, &end);
  c0 = cpu_ns();
  for (i = 0; i < opt.count; i++) {
    int64_t a = now_ns(), b, e;
    acquire(&c);
    b = now_ns();
    release(&c);
    e = now_ns();
    acq[i] = b - a;
    rel[i] = e - b;
    if (i == 0)
      t0 = a;
    t2 = e;
  }
  c1 = cpu_ns();
  out_begin();
  out_array("acq_ns", acq, opt.count);
  out_array("rel_ns", rel, opt.count);
  out_int("loop_ns", t2 - t0);
  out_int("cpu_ns", c1 - c0);
  out_int("count", opt.count);
  out_end();
  client_close(&c);
}

static void mode_contended(void) {
  long cap = 1 << 20, n = 0;
  int64_t *enter = array(cap), *exit_ = array(cap), start, end, c0, c1;
  char warm[600];
  client c, w;

  snprintf(warm, sizeof(warm), "%s-warm", opt.path);
  client_open(&w, warm);
  warm_up(&w);
  client_close(&w);
  client_open(&c, opt.path);
  touch(opt.ready);
  wait_go(&start, &end);
  c0 = cpu_ns();
  while (now_ns() < end && n < cap) {
    int64_t t;
    acquire(&c);
    t = now_ns();
    enter[n] = t;
    while (opt.hold_us > 0 && now_ns() < t + opt.hold_us * 1000)
      ;
    exit_[n] = now_ns();
    release(&c);
    n++;
  }
  c1 = cpu_ns();
  out_begin();
  out_array("enter", enter, n);
  out_array("exit", exit_, n);
  out_int("cpu_ns", c1 - c0);
  out_int("count", n);
  if (c.r != NULL)
    out_int("notifications", (int64_t)c.r->notified);
  out_end();
  client_close(&c);
}

/* Re-acquires by the holding thread: a count, no request. */
static void mode_reentrant(void) {
  int64_t *acq = array(opt.count), *rel = array(opt.count), start, end;
  client c;
  long i;

  if (!is_zkr())
    die("reentrant needs --impl zkr", 0);
  client_open(&c, opt.path);
  acquire(&c);
  touch(opt.ready);
  wait_go(&start, &end);
  for (i = 0; i < opt.count; i++) {
    int64_t a = now_ns(), b, e;
    if (zkr_lock_acquire(c.l, -1) != ZKR_OK)
      die("reentrant acquire", 0);
    b = now_ns();
    zkr_lock_release(c.l);
    e = now_ns();
    acq[i] = b - a;
    rel[i] = e - b;
  }
  release(&c);
  out_begin();
  out_array("acq_ns", acq, opt.count);
  out_array("rel_ns", rel, opt.count);
  out_int("count", opt.count);
  out_end();
  client_close(&c);
}

/* --- herd: one holder and N queued waiters, each its own session ------------- */

/* The server's watch fires so far, from its "mntr" counters. */
static long server_watch_fires(void) {
  static const char *keys[] = {"zk_sum_node_deleted_watch_count", "zk_sum_node_children_watch_count",
                               "zk_sum_node_changed_watch_count", "zk_sum_node_created_watch_count"};
  char host[256], *colon, buf[65536];
  struct addrinfo hints, *ai = NULL;
  size_t got = 0;
  ssize_t n;
  long total = 0;
  int fd, i;

  snprintf(host, sizeof(host), "%s", opt.connect);
  colon = strchr(host, ',');
  if (colon != NULL)
    *colon = '\0';
  colon = strrchr(host, ':');
  if (colon == NULL)
    return -1;
  *colon = '\0';
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
    return -1;
  fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 || write(fd, "mntr", 4) != 4) {
    freeaddrinfo(ai);
    if (fd >= 0)
      close(fd);
    return -1;
  }
  freeaddrinfo(ai);
  while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
    got += (size_t)n;
  close(fd);
  buf[got] = '\0';
  for (i = 0; i < 4; i++) {
    char *p = strstr(buf, keys[i]);
    if (p != NULL)
      total += atol(p + strlen(keys[i]));
  }
  return total;
}

typedef struct waiter {
  pthread_t t;
  client c;
  pthread_mutex_t *mu;
  pthread_cond_t *cond;
  int holding, release_now;
  int64_t got_at;
} waiter;

static void *waiter_main(void *arg) {
  waiter *w = arg;

  acquire(&w->c);
  pthread_mutex_lock(w->mu);
  w->holding = 1;
  w->got_at = now_ns();
  pthread_cond_broadcast(w->cond);
  while (!w->release_now)
    pthread_cond_wait(w->cond, w->mu);
  pthread_mutex_unlock(w->mu);
  release(&w->c);
  return NULL;
}

static int children(client *probe) {
  struct String_vector kids;
  int n;

  if (zoo_get_children(probe->r->zh, opt.path, 0, &kids) != ZOK)
    return -1;
  n = kids.count;
  deallocate_String_vector(&kids);
  return n;
}

static unsigned long raw_notified(waiter *w, long n) {
  unsigned long total = 0;
  long i;

  for (i = 0; i < n; i++)
    if (w[i].c.r != NULL)
      total += w[i].c.r->notified;
  return total;
}

static void mode_herd(void) {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  long n = opt.waiters, i;
  int64_t *fires = array(n + 1), *clients = array(n + 1), *handoff = array(n + 1), start, end;
  waiter *w = calloc((size_t)n + 1, sizeof(*w));
  const char *impl = opt.impl;
  client probe;

  /* The probe only counts nodes: a raw session whatever the impl. */
  opt.impl = "raw";
  client_open(&probe, opt.path);
  opt.impl = impl;
  for (i = 0; i <= n; i++) {
    w[i].mu = &mu;
    w[i].cond = &cond;
    client_open(&w[i].c, opt.path);
  }
  /* Queue them in order: w[0] holds, w[i] waits behind w[i-1]. */
  for (i = 0; i <= n; i++) {
    if (pthread_create(&w[i].t, NULL, waiter_main, &w[i]) != 0)
      die("pthread_create", errno);
    while (children(&probe) < i + 1)
      sleep_ns(1000000);
  }
  pthread_mutex_lock(&mu);
  while (!w[0].holding)
    pthread_cond_wait(&cond, &mu);
  pthread_mutex_unlock(&mu);
  sleep_ns(500000000); /* the last waiters' watches */
  touch(opt.ready);
  wait_go(&start, &end);
  for (i = 0; i < n; i++) {
    long f0 = server_watch_fires();
    unsigned long c0 = raw_notified(w, n + 1);
    int64_t t;
    pthread_mutex_lock(&mu);
    t = now_ns();
    w[i].release_now = 1;
    pthread_cond_broadcast(&cond);
    while (!w[i + 1].holding)
      pthread_cond_wait(&cond, &mu);
    handoff[i] = w[i + 1].got_at - t;
    pthread_mutex_unlock(&mu);
    sleep_ns(30000000); /* stray notifications of a herd arrive late */
    fires[i] = server_watch_fires() - f0;
    clients[i] = (int64_t)(raw_notified(w, n + 1) - c0);
  }
  pthread_mutex_lock(&mu);
  w[n].release_now = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&mu);
  for (i = 0; i <= n; i++) {
    pthread_join(w[i].t, NULL);
    client_close(&w[i].c);
  }
  out_begin();
  out_array("server_fires", fires, n);
  if (!is_zkr())
    out_array("client_notifications", clients, n);
  out_array("handoff_ns", handoff, n);
  out_int("count", n);
  out_end();
  client_close(&probe);
  free(w);
}

/* --- scale ------------------------------------------------------------------- */

typedef struct scale_waiter {
  pthread_t t;
  zkr_lock *l;
  int64_t *done_at;
} scale_waiter;

static void *scale_waiter_main(void *arg) {
  scale_waiter *sw = arg;

  if (zkr_lock_acquire(sw->l, -1) != ZKR_OK)
    die("scale acquire", 0);
  *sw->done_at = now_ns();
  zkr_lock_release(sw->l);
  return NULL;
}

/* N threads of one process wait on one lock through one session (one
 * zkr_lock shared by all: each thread contends on its own). */
static void mode_scale_waiters(void) {
  long n = opt.waiters, i;
  scale_waiter *sw = calloc((size_t)n, sizeof(*sw));
  int64_t *done = array(n), start, end, t0, last = 0;
  int threads0, threads1;
  long rss0, rss1;
  client holder, c, probe;
  const char *impl = opt.impl;

  if (!is_zkr())
    die("scale-waiters needs --impl zkr", 0);
  opt.impl = "raw";
  client_open(&probe, opt.path);
  opt.impl = impl;
  client_open(&holder, opt.path);
  client_open(&c, opt.path);
  acquire(&holder);
  touch(opt.ready);
  wait_go(&start, &end);
  threads0 = thread_count();
  rss0 = rss_kb();
  for (i = 0; i < n; i++) {
    sw[i].l = c.l;
    sw[i].done_at = &done[i];
    if (pthread_create(&sw[i].t, NULL, scale_waiter_main, &sw[i]) != 0)
      die("pthread_create", errno);
  }
  while (children(&probe) < n + 1)
    sleep_ns(10000000);
  threads1 = thread_count();
  rss1 = rss_kb();
  t0 = now_ns();
  release(&holder);
  for (i = 0; i < n; i++) {
    pthread_join(sw[i].t, NULL);
    if (done[i] > last)
      last = done[i];
  }
  out_begin();
  out_int("waiters", n);
  out_int("library_threads_added", threads1 - threads0 - n);
  out_int("rss_kb_added", rss1 - rss0);
  out_int("drain_ns", last - t0);
  out_int("count", n);
  out_end();
  client_close(&holder);
  client_close(&c);
  client_close(&probe);
  free(sw);
  free(done);
}

/* One session, one thread, N distinct locks held at once. */
static void mode_scale_held(void) {
  long n = opt.locks, i;
  zkr_lock **l = calloc((size_t)n, sizeof(*l));
  zkr_session *s;
  zkr_session_opts so;
  int64_t start, end, t0, t1, t2;
  long rss0, rss1;
  int rc;

  if (!is_zkr())
    die("scale-held needs --impl zkr", 0);
  memset(&so, 0, sizeof(so));
  so.session_timeout_ms = SESSION_MS;
  rc = zkr_session_open(&s, opt.connect, &so);
  if (rc != ZKR_OK)
    die("zkr_session_open", rc);
  touch(opt.ready);
  wait_go(&start, &end);
  rss0 = rss_kb();
  t0 = now_ns();
  for (i = 0; i < n; i++) {
    char p[600];
    snprintf(p, sizeof(p), "%s/l%06ld", opt.path, i);
    if (zkr_lock_new(&l[i], s, p, NULL) != ZKR_OK || zkr_lock_acquire(l[i], -1) != ZKR_OK)
      die("scale-held acquire", (int)i);
  }
  t1 = now_ns();
  rss1 = rss_kb();
  for (i = 0; i < n; i++) {
    if (!zkr_lock_held(l[i]))
      die("scale-held: lost a lock", (int)i);
    zkr_lock_release(l[i]);
    zkr_lock_free(l[i]);
  }
  t2 = now_ns();
  out_begin();
  out_int("locks", n);
  out_int("rss_kb_added", rss1 - rss0);
  out_int("acquire_all_ns", t1 - t0);
  out_int("release_all_ns", t2 - t1);
  out_int("count", n);
  out_end();
  zkr_session_close(s);
  free(l);
}

/* --- rw and sem: the read-write lock and the semaphore ----------------------- */

/* The semaphore may be missing from the library this was linked against
 * (it landed after the bench): weak references, checked at run time. */
#pragma weak zkr_semaphore_new
#pragma weak zkr_semaphore_acquire
#pragma weak zkr_lease_release
#pragma weak zkr_semaphore_free

/* The raw read-write lock floor: reader "read-<seq>", writer "write-<seq>"
 * (EPHEMERAL_SEQUENTIAL); list; a reader waits only for the nearest
 * earlier writer, a writer for its predecessor of either kind (getData
 * watch, list again when it fires); release = delete. */
static void raw_rw_acquire(raw *r, const char *dir, int write) {
  raw_queue_acquire(r, dir, write ? "write" : "read", write ? NULL : "write-", 0);
}

/* The raw semaphore floor: create "lease-<seq>" (EPHEMERAL_SEQUENTIAL) in
 * DIR; list with a children watch; held once fewer than max_leases leases
 * have a lower sequence number (a lower lease only ever goes away, so no
 * mutex is needed); else wait for the children to change and list again.
 * Release = delete. */
static void raw_sem_acquire(raw *r, const char *dir) {
  raw_create(r, dir, "lease", r->node, sizeof(r->node));
  for (;;) {
    struct String_vector kids;
    long mine = seq_of(r->node), lower = 0;
    unsigned fired = raw_fired(r);
    int i, rc;

    rc = zoo_wget_children(r->zh, dir, raw_watcher, r, &kids);
    if (rc != ZOK)
      die("get_children", rc);
    for (i = 0; i < kids.count; i++)
      if (seq_of(kids.data[i]) < mine)
        lower++;
    deallocate_String_vector(&kids);
    if (lower < opt.max_leases)
      return;
    raw_await(r, fired);
  }
}

/* The raw floor of Curator's InterProcessSemaphoreV2 protocol (what
 * zkr_semaphore follows): the raw lock on DIR/locks, then
 * DIR/leases/lease-<seq>, then list DIR/leases with a children watch until
 * at most max_leases exist, then release the lock. */
static void raw_sem_v2_acquire(raw *r, const char *dir) {
  char locks[600], leases[600], lease[512];

  snprintf(locks, sizeof(locks), "%s/locks", dir);
  snprintf(leases, sizeof(leases), "%s/leases", dir);
  raw_acquire(r, locks, 0);
  raw_create(r, leases, "lease", lease, sizeof(lease));
  for (;;) {
    struct String_vector kids;
    unsigned fired = raw_fired(r);
    int n, rc;

    rc = zoo_wget_children(r->zh, leases, raw_watcher, r, &kids);
    if (rc != ZOK)
      die("get_children", rc);
    n = kids.count;
    deallocate_String_vector(&kids);
    if (n <= opt.max_leases)
      break;
    raw_await(r, fired);
  }
  raw_release(r); /* the lock node */
  memcpy(r->node, lease, sizeof(lease));
}

typedef struct rclient {
  raw *r;
  zkr_session *s;
  zkr_rwlock *rw;
  zkr_semaphore *sem;
  zkr_lease *lease;
  char dir[512];
} rclient;

static void rclient_open(rclient *c, const char *dir, int sem) {
  memset(c, 0, sizeof(*c));
  snprintf(c->dir, sizeof(c->dir), "%s", dir);
  if (strcmp(opt.impl, "zkr") == 0) {
    zkr_session_opts so;
    int rc;
    memset(&so, 0, sizeof(so));
    so.session_timeout_ms = SESSION_MS;
    rc = zkr_session_open(&c->s, opt.connect, &so);
    if (rc != ZKR_OK)
      die("zkr_session_open", rc);
    if (sem) {
      if (zkr_semaphore_new == NULL)
        die("this libzkrecipes has no zkr_semaphore", 0);
      rc = zkr_semaphore_new(&c->sem, c->s, dir, (int)opt.max_leases, NULL);
    } else {
      rc = zkr_rwlock_new(&c->rw, c->s, dir, NULL);
    }
    if (rc != ZKR_OK)
      die("zkr_rwlock_new/zkr_semaphore_new", rc);
  } else if (strcmp(opt.impl, "raw") == 0 || (sem && strcmp(opt.impl, "raw-v2") == 0)) {
    c->r = raw_open();
  } else {
    die("rw takes --impl zkr or raw, sem zkr, raw or raw-v2", 0);
  }
}

static void rclient_close(rclient *c) {
  if (c->r != NULL) {
    raw_close(c->r);
    return;
  }
  if (c->sem != NULL)
    zkr_semaphore_free(c->sem);
  if (c->rw != NULL)
    zkr_rwlock_free(c->rw);
  zkr_session_close(c->s);
}

/* kind: 0 read, 1 write, 2 semaphore lease. */
static void racquire(rclient *c, int kind) {
  int rc;

  if (c->r != NULL) {
    if (kind == 2 && strcmp(opt.impl, "raw-v2") == 0)
      raw_sem_v2_acquire(c->r, c->dir);
    else if (kind == 2)
      raw_sem_acquire(c->r, c->dir);
    else
      raw_rw_acquire(c->r, c->dir, kind);
    return;
  }
  if (kind == 2)
    rc = zkr_semaphore_acquire(c->sem, -1, &c->lease);
  else
    rc = kind ? zkr_rwlock_wrlock(c->rw, -1) : zkr_rwlock_rdlock(c->rw, -1);
  if (rc != ZKR_OK)
    die("acquire", rc);
}

static void rrelease(rclient *c, int kind) {
  int rc;

  if (c->r != NULL) {
    raw_release(c->r);
    return;
  }
  rc = kind == 2 ? zkr_lease_release(c->lease) : zkr_rwlock_unlock(c->rw);
  c->lease = NULL;
  if (rc != ZKR_OK)
    die("release", rc);
}

/* xorshift64: the same operation sequence for every implementation. */
static uint64_t rng_next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static int next_kind(uint64_t *x, int sem) {
  if (sem)
    return 2;
  return (long)(rng_next(x) % 100) < opt.read_pct ? 0 : 1;
}

/* K processes (one client each) loop acquire / hold / release for the
 * window, reads with probability read_pct (rw) or leases (sem). */
static void mode_rwsem(int sem) {
  long cap = 1 << 20, n = 0, i;
  int64_t *enter = array(cap), *exit_ = array(cap), *acq = array(cap), *kind = array(cap), start, end, c0, c1;
  uint64_t x = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)(opt.client + 1) * 0xbf58476d1ce4e5b9ULL);
  char warm[600];
  rclient c, w;

  snprintf(warm, sizeof(warm), "%s-warm", opt.path);
  rclient_open(&w, warm, sem);
  for (i = 0; i < opt.warmup; i++) {
    int k = next_kind(&x, sem);
    racquire(&w, k);
    rrelease(&w, k);
  }
  rclient_close(&w);
  x = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)(opt.client + 1) * 0xbf58476d1ce4e5b9ULL);
  rclient_open(&c, opt.path, sem);
  touch(opt.ready);
  wait_go(&start, &end);
  c0 = cpu_ns();
  while (now_ns() < end && n < cap) {
    int k = next_kind(&x, sem);
    int64_t a = now_ns(), t;
    racquire(&c, k);
    t = now_ns();
    enter[n] = t;
    acq[n] = t - a;
    kind[n] = k;
    while (opt.hold_us > 0 && now_ns() < t + opt.hold_us * 1000)
      ;
    exit_[n] = now_ns();
    rrelease(&c, k);
    n++;
  }
  c1 = cpu_ns();
  out_begin();
  out_array("enter", enter, n);
  out_array("exit", exit_, n);
  out_array("acq_ns", acq, n);
  out_array("kind", kind, n);
  out_int("cpu_ns", c1 - c0);
  out_int("count", n);
  out_end();
  rclient_close(&c);
}

/* --- main -------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr, "usage: zkr_bench --impl zkr|zkr-nowait|raw|naive|raw-v2|zkr-async --mode "
                  "uncontended|contended|reentrant|herd|scale-waiters|scale-held|rw|sem|many\n"
                  "       --connect HOSTS --path PATH [--count N] [--warmup W] [--hold-us U]\n"
                  "       [--waiters N] [--locks N] [--read-pct P] [--max-leases N] [--client I]\n"
                  "       [--acquirers N] [--paths K] [--stack-kb S]\n"
                  "       --ready FILE --go FILE --out FILE\n");
  exit(2);
}

int main(int argc, char **argv) {
  static const struct {
    const char *flag;
    const char **s;
    long *n;
  } flags[] = {{"--impl", &opt.impl, NULL},         {"--mode", &opt.mode, NULL},
               {"--connect", &opt.connect, NULL},   {"--path", &opt.path, NULL},
               {"--ready", &opt.ready, NULL},       {"--go", &opt.go, NULL},
               {"--out", &opt.out, NULL},           {"--count", NULL, &opt.count},
               {"--warmup", NULL, &opt.warmup},     {"--hold-us", NULL, &opt.hold_us},
               {"--waiters", NULL, &opt.waiters},   {"--locks", NULL, &opt.locks},
               {"--read-pct", NULL, &opt.read_pct}, {"--max-leases", NULL, &opt.max_leases},
               {"--client", NULL, &opt.client},     {"--acquirers", NULL, &opt.acquirers},
               {"--paths", NULL, &opt.paths},       {"--stack-kb", NULL, &opt.stack_kb}};
  int i;
  size_t f;

  /* For the driver: does the library this was linked against have the semaphore? */
  if (argc == 2 && strcmp(argv[1], "--has-semaphore") == 0)
    return zkr_semaphore_new != NULL ? 0 : 1;
  for (i = 1; i < argc; i += 2) {
    for (f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
      if (strcmp(argv[i], flags[f].flag) == 0)
        break;
    if (f == sizeof(flags) / sizeof(flags[0]) || i + 1 >= argc)
      usage();
    if (flags[f].s != NULL)
      *flags[f].s = argv[i + 1];
    else
      *flags[f].n = atol(argv[i + 1]);
  }
  if (opt.impl == NULL || opt.mode == NULL || opt.connect == NULL || opt.path == NULL || opt.ready == NULL ||
      opt.go == NULL || opt.out == NULL)
    usage();
  if (strcmp(opt.impl, "zkr") != 0 && strcmp(opt.impl, "zkr-nowait") != 0 && strcmp(opt.impl, "raw") != 0 &&
      strcmp(opt.impl, "naive") != 0 && strcmp(opt.impl, "raw-v2") != 0 && strcmp(opt.impl, "zkr-async") != 0)
    usage();
  zoo_set_debug_level(0);
  if (strcmp(opt.mode, "uncontended") == 0)
    mode_uncontended();
  else if (strcmp(opt.mode, "contended") == 0)
    mode_contended();
  else if (strcmp(opt.mode, "reentrant") == 0)
    mode_reentrant();
  else if (strcmp(opt.mode, "herd") == 0)
    mode_herd();
  else if (strcmp(opt.mode, "scale-waiters") == 0)
    mode_scale_waiters();
  else if (strcmp(opt.mode, "scale-held") == 0)
    mode_scale_held();
  else if (strcmp(opt.mode, "rw") == 0)
    mode_rwsem(0);
  else if (strcmp(opt.mode, "sem") == 0)
    mode_rwsem(1);
  else if (strcmp(opt.mode, "many") == 0)
    mode_many();
  else
    usage();
  return 0;
}
