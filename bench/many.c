/* Mode many: N acquirers (--acquirers, default 1,000) take and give back
 * locks chosen among K paths (--paths, default 100: PATH/p000 ...) for the
 * driver's window, all through one session of one process:
 *
 *   --impl zkr-async  one thread. A plain poll loop on zkr_session_fd() of a
 *                     loop-mode session, calling zkr_session_dispatch() when
 *                     the descriptor is readable or when the time it returned
 *                     has passed; every acquirer is a small state machine
 *                     driven by zkr_lock_acquire_async() / zkr_hold_release().
 *   --impl zkr        N threads (stack --stack-kb, default 64 KiB) on one
 *                     ordinary (threaded) session, each in a loop of
 *                     zkr_lock_acquire() / zkr_lock_release(). The K
 *                     zkr_lock objects are shared by all threads, as the
 *                     scale-waiters mode shares one: holds are per thread.
 *
 * Both run the same workload. Acquirer i draws its paths from a generator
 * seeded by i (the same sequence in both), asks with no timeout, holds for
 * --hold-us (0 by default), releases, and asks again until the window ends;
 * then the acquirers still queued finish (the drain). The async variant
 * releases a grant after the dispatch that delivered it returns, not inside
 * on_acquired: the hold then spans the other callbacks of that dispatch,
 * which is what gives the check below something to see.
 *
 * Checked at every grant: a per-path count of holders (from the grant until
 * the release call; above 1 is a violation) and the fencing token, which
 * must be greater than the path's previous one. The bench fails (exit 1) on
 * any error, and the driver on any violation.
 *
 * Measured: grants inside the window (acquisitions/s), the latency of every
 * measured acquisition (ask to grant), and getrusage(RUSAGE_SELF) user+sys
 * from the start instant until the last acquirer stopped (window and drain;
 * all threads of the process, the ZooKeeper client's included), divided by
 * the acquisitions granted over that time. Warm-up (--warmup per acquirer),
 * session opening and thread creation are outside it. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zkr/async.h>
#include <zkr/zkr.h>

#include "bench.h"

#define LAT_CAP (1L << 21)

typedef struct acquirer {
  long idx;
  uint64_t rng;
  int path;         /* the path of the current acquisition */
  int64_t asked;    /* when it was asked for */
  long warm_left;   /* warm-up acquisitions still to make */
  long in_window;   /* grants inside the window */
  zkr_hold *h;      /* zkr-async: the current hold */
  int64_t rel_at;   /* zkr-async: when to release it */
  pthread_t thread; /* zkr: its thread */
} acquirer;

/* What both variants share; atomics since the threads' grants race. */
static struct {
  zkr_session *s;
  zkr_lock **locks;
  acquirer *a;
  atomic_int *holders;         /* per path: current holders */
  _Atomic int64_t *last_token; /* per path: the last fencing token granted */
  atomic_long violations;
  atomic_long total; /* measured grants, window and drain */
  int64_t *lat;      /* latency of the first LAT_CAP of them */
  int64_t start, end;
  long rss_kb;
  int threads;
} m;

/* xorshift64, seeded by the acquirer's index. */
static int next_path(acquirer *a) {
  a->rng ^= a->rng << 13;
  a->rng ^= a->rng >> 7;
  a->rng ^= a->rng << 17;
  return (int)(a->rng % (uint64_t)opt.paths);
}

/* The process's CPU so far (all its threads) and its context switches. */
typedef struct usage {
  int64_t user_ns, sys_ns, switches;
} usage;

static usage usage_now(void) {
  struct rusage ru;
  usage u;

  getrusage(RUSAGE_SELF, &ru);
  u.user_ns = (int64_t)ru.ru_utime.tv_sec * 1000000000 + (int64_t)ru.ru_utime.tv_usec * 1000;
  u.sys_ns = (int64_t)ru.ru_stime.tv_sec * 1000000000 + (int64_t)ru.ru_stime.tv_usec * 1000;
  u.switches = (int64_t)ru.ru_nvcsw + ru.ru_nivcsw;
  return u;
}

static usage usage_since(usage u0) {
  usage u = usage_now();

  u.user_ns -= u0.user_ns;
  u.sys_ns -= u0.sys_ns;
  u.switches -= u0.switches;
  return u;
}

/* A grant of a->path with fencing token tok at time t: the checks, and the
 * counts unless it is a warm-up. */
static void granted(acquirer *a, int64_t tok, int64_t t, int measure) {
  long i;

  if (atomic_fetch_add(&m.holders[a->path], 1) != 0)
    atomic_fetch_add(&m.violations, 1);
  if (atomic_exchange(&m.last_token[a->path], tok) >= tok)
    atomic_fetch_add(&m.violations, 1);
  if (!measure)
    return;
  i = atomic_fetch_add(&m.total, 1);
  if (i < LAT_CAP)
    m.lat[i] = t - a->asked;
  if (t >= m.start && t < m.end)
    a->in_window++;
}

/* Called before the release request: from here on a->path is not ours. */
static void releasing(acquirer *a) {
  atomic_fetch_sub(&m.holders[a->path], 1);
}

static void open_all(int loop) {
  zkr_session_opts so;
  long i;
  int rc;

  memset(&so, 0, sizeof(so));
  so.session_timeout_ms = SESSION_MS;
  so.loop = loop;
  rc = zkr_session_open(&m.s, opt.connect, &so);
  if (rc != ZKR_OK)
    die("zkr_session_open", rc);
  m.locks = calloc((size_t)opt.paths, sizeof(*m.locks));
  m.holders = calloc((size_t)opt.paths, sizeof(*m.holders));
  m.last_token = calloc((size_t)opt.paths, sizeof(*m.last_token));
  m.a = calloc((size_t)opt.acquirers, sizeof(*m.a));
  m.lat = array(LAT_CAP);
  if (m.locks == NULL || m.holders == NULL || m.last_token == NULL || m.a == NULL)
    die("out of memory", 0);
  for (i = 0; i < opt.paths; i++) {
    char p[600];
    snprintf(p, sizeof(p), "%s/p%03ld", opt.path, i);
    rc = zkr_lock_new(&m.locks[i], m.s, p, NULL);
    if (rc != ZKR_OK)
      die("zkr_lock_new", rc);
  }
  for (i = 0; i < opt.acquirers; i++) {
    m.a[i].idx = i;
    m.a[i].rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)(i + 1) * 0xbf58476d1ce4e5b9ULL);
    m.a[i].warm_left = opt.warmup;
  }
}

static void close_all(void) {
  long i;

  for (i = 0; i < opt.paths; i++)
    zkr_lock_free(m.locks[i]);
  zkr_session_close(m.s);
}

/* --- zkr-async: one loop thread -------------------------------------------------- */

static struct {
  int fd;
  int64_t next_dispatch; /* dispatch at the latest then */
  acquirer **q;          /* granted, in order of rel_at (a ring of N) */
  long q_head, q_len;
  long warm_busy; /* acquirers still warming up */
  long active;    /* acquirers with an acquisition or a release under way */
  int stopping;   /* the window is over: start nothing new */
} lp;

static void async_acquired(zkr_hold *h, int rc, void *arg);
static void async_released(zkr_hold *h, int rc, void *arg);

static void async_lost(zkr_hold *h, int rc, void *arg) {
  (void)h;
  (void)arg;
  die("zkr-async: a hold was lost", rc);
}

static void async_start(acquirer *a) {
  int rc;

  a->path = next_path(a);
  a->asked = now_ns();
  rc = zkr_lock_acquire_async(m.locks[a->path], -1, async_acquired, async_lost, a, &a->h);
  if (rc != ZKR_OK)
    die("zkr_lock_acquire_async", rc);
}

static void async_acquired(zkr_hold *h, int rc, void *arg) {
  acquirer *a = arg;
  int64_t t = now_ns(), tok = 0;

  if (rc != ZKR_OK)
    die("zkr-async: acquisition failed", rc);
  rc = zkr_hold_token(h, &tok);
  if (rc != ZKR_OK)
    die("zkr_hold_token", rc);
  granted(a, tok, t, a->warm_left == 0);
  /* Released by the loop once this dispatch is over and the hold is due. */
  a->rel_at = t + opt.hold_us * 1000;
  lp.q[(lp.q_head + lp.q_len) % opt.acquirers] = a;
  lp.q_len++;
}

static void async_released(zkr_hold *h, int rc, void *arg) {
  acquirer *a = arg;

  (void)h;
  if (rc != ZKR_OK)
    die("zkr-async: release failed", rc);
  a->h = NULL;
  if (a->warm_left > 0) {
    if (--a->warm_left > 0)
      async_start(a);
    else
      lp.warm_busy--;
  } else if (!lp.stopping) {
    async_start(a);
  } else {
    lp.active--;
  }
}

/* One turn of the loop: waits for the descriptor until the next dispatch,
 * the next release that falls due or wake_at, whichever is first; then
 * dispatches if the descriptor is readable or the dispatch is due, and
 * releases what fell due. */
static void loop_once(int64_t wake_at) {
  struct pollfd pfd = {lp.fd, POLLIN, 0};
  int64_t until = lp.next_dispatch, now = now_ns(), wait;
  struct timespec ts;

  if (wake_at < until)
    until = wake_at;
  if (lp.q_len > 0 && lp.q[lp.q_head]->rel_at < until)
    until = lp.q[lp.q_head]->rel_at;
  wait = until > now ? until - now : 0;
  ts.tv_sec = (time_t)(wait / 1000000000);
  ts.tv_nsec = (long)(wait % 1000000000);
  if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR)
    die("ppoll", errno);
  now = now_ns();
  if ((pfd.revents & POLLIN) != 0 || now >= lp.next_dispatch) {
    int ms = zkr_session_dispatch(m.s);
    if (ms < 0)
      die("zkr_session_dispatch", ms);
    now = now_ns();
    lp.next_dispatch = now + (int64_t)ms * 1000000;
  }
  while (lp.q_len > 0 && lp.q[lp.q_head]->rel_at <= now) {
    acquirer *a = lp.q[lp.q_head];
    int rc;
    lp.q_head = (lp.q_head + 1) % opt.acquirers;
    lp.q_len--;
    releasing(a);
    rc = zkr_hold_release(a->h, async_released, a);
    if (rc != ZKR_OK)
      die("zkr_hold_release", rc);
  }
}

static void run_async(usage *cpu) {
  usage c0;
  long i;

  open_all(1);
  lp.fd = zkr_session_fd(m.s);
  if (lp.fd < 0)
    die("zkr_session_fd", lp.fd);
  lp.q = calloc((size_t)opt.acquirers, sizeof(*lp.q));
  if (lp.q == NULL)
    die("out of memory", 0);
  lp.next_dispatch = now_ns();
  if (opt.warmup > 0) {
    lp.warm_busy = opt.acquirers;
    for (i = 0; i < opt.acquirers; i++)
      async_start(&m.a[i]);
  }
  while (lp.warm_busy > 0)
    loop_once(INT64_MAX);
  touch(opt.ready);
  /* The session must be served while the driver makes up its mind. */
  while (!read_go(&m.start, &m.end))
    loop_once(now_ns() + 1000000);
  while (now_ns() < m.start)
    loop_once(m.start);
  c0 = usage_now();
  lp.active = opt.acquirers;
  for (i = 0; i < opt.acquirers; i++)
    async_start(&m.a[i]);
  while (now_ns() < m.end)
    loop_once(m.end);
  lp.stopping = 1;
  m.rss_kb = rss_kb();
  m.threads = thread_count();
  while (lp.active > 0)
    loop_once(INT64_MAX);
  *cpu = usage_since(c0);
  close_all();
  free(lp.q);
}

/* --- zkr: one thread per acquirer ---------------------------------------------- */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  long warmed;
  int go;
} th = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void thread_one(acquirer *a, int measure) {
  zkr_lock *l;
  int64_t t, tok = 0;
  int rc;

  a->path = next_path(a);
  l = m.locks[a->path];
  a->asked = now_ns();
  rc = zkr_lock_acquire(l, -1);
  if (rc != ZKR_OK)
    die("zkr_lock_acquire", rc);
  t = now_ns();
  rc = zkr_lock_token(l, &tok);
  if (rc != ZKR_OK)
    die("zkr_lock_token", rc);
  granted(a, tok, t, measure);
  if (opt.hold_us > 0)
    sleep_ns(opt.hold_us * 1000);
  releasing(a);
  rc = zkr_lock_release(l);
  if (rc != ZKR_OK)
    die("zkr_lock_release", rc);
}

static void *thread_main(void *arg) {
  acquirer *a = arg;
  long i;

  for (i = 0; i < opt.warmup; i++)
    thread_one(a, 0);
  a->warm_left = 0;
  pthread_mutex_lock(&th.mu);
  th.warmed++;
  pthread_cond_broadcast(&th.cond);
  while (!th.go)
    pthread_cond_wait(&th.cond, &th.mu);
  pthread_mutex_unlock(&th.mu);
  while (now_ns() < m.end)
    thread_one(a, 1);
  return NULL;
}

static void run_threads(usage *cpu) {
  pthread_attr_t attr;
  int64_t start, end;
  usage c0;
  long i;
  int rc;

  open_all(0);
  pthread_attr_init(&attr);
  rc = pthread_attr_setstacksize(&attr, (size_t)opt.stack_kb * 1024);
  if (rc != 0)
    die("pthread_attr_setstacksize", rc);
  for (i = 0; i < opt.acquirers; i++) {
    rc = pthread_create(&m.a[i].thread, &attr, thread_main, &m.a[i]);
    if (rc != 0)
      die("pthread_create (see ulimit -u, --stack-kb)", rc);
  }
  pthread_attr_destroy(&attr);
  pthread_mutex_lock(&th.mu);
  while (th.warmed < opt.acquirers)
    pthread_cond_wait(&th.cond, &th.mu);
  pthread_mutex_unlock(&th.mu);
  touch(opt.ready);
  wait_go(&start, &end);
  c0 = usage_now();
  pthread_mutex_lock(&th.mu);
  m.start = start;
  m.end = end;
  th.go = 1;
  pthread_cond_broadcast(&th.cond);
  pthread_mutex_unlock(&th.mu);
  if (end > now_ns())
    sleep_ns(end - now_ns());
  m.rss_kb = rss_kb();
  m.threads = thread_count();
  for (i = 0; i < opt.acquirers; i++)
    pthread_join(m.a[i].thread, NULL);
  *cpu = usage_since(c0);
  close_all();
}

/* --- the mode ---------------------------------------------------------------------- */

void mode_many(void) {
  int async = strcmp(opt.impl, "zkr-async") == 0;
  usage cpu;
  int64_t *per;
  long i, total;

  if (!async && strcmp(opt.impl, "zkr") != 0)
    die("many takes --impl zkr-async or zkr", 0);
  if (opt.acquirers < 1 || opt.paths < 1 || opt.paths > 1000 || opt.stack_kb < 16)
    die("many needs --acquirers >= 1, 1 <= --paths <= 1000, --stack-kb >= 16", 0);
  if (async)
    run_async(&cpu);
  else
    run_threads(&cpu);
  total = atomic_load(&m.total);
  per = array(opt.acquirers);
  for (i = 0; i < opt.acquirers; i++)
    per[i] = m.a[i].in_window;
  out_begin();
  out_int("acquirers", opt.acquirers);
  out_int("paths", opt.paths);
  out_int("hold_us", opt.hold_us);
  out_int("stack_kb", async ? 0 : opt.stack_kb);
  out_int("count", total);
  out_int("cpu_ns", cpu.user_ns + cpu.sys_ns);
  out_int("user_ns", cpu.user_ns);
  out_int("sys_ns", cpu.sys_ns);
  out_int("context_switches", cpu.switches);
  out_int("violations", atomic_load(&m.violations));
  out_int("rss_kb", m.rss_kb);
  out_int("threads", m.threads);
  out_array("per_acquirer", per, opt.acquirers);
  out_array("acq_ns", m.lat, total < LAT_CAP ? total : LAT_CAP);
  out_end();
  free(per);
}
