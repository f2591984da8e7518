/* zkr_peer: the C side of the interoperability tests (tests/test_interop.sh).
 *
 *   zkr_peer MODE --hosts H --path P --dir D --name NAME [--iterations N]
 *            [--hold-ms MS] [--session-ms MS] [--timeout-ms MS]
 *
 * MODE is mutex (zkr_lock) or elect (zkr_election). The Java peer
 * (InteropPeer.java, Curator) and the Python peer (kazoo_peer.py) take the
 * same command line and follow the same steps, so one driver runs them side
 * by side on one path:
 *
 *   1. connect, create D/NAME.ready, wait for D/go (a common start; at
 *      most twice the --timeout-ms, which bounds each acquisition);
 *   2. N times: acquire; enter (below); hold MS; exit; release;
 *   3. print "RESULT name=NAME mode=MODE iterations=DONE overlaps=K".
 *
 * Entering claims a marker file in D with O_CREAT|O_EXCL: D/held.w for an
 * exclusive hold (lock, leadership). The create fails with EEXIST if
 * another peer, of any language, is inside at that moment: an overlap,
 * counted. Each hold is also logged to D/NAME.log as
 * "ENTER_NS EXIT_NS KIND NAME SEQ" (CLOCK_MONOTONIC, the clock of Java's
 * System.nanoTime() and Python's time.monotonic_ns(); SEQ is the sequence
 * suffix of our node, "-" when unknown) for the driver's interval and order
 * checks.
 *
 * Uses the public API only (<zkr/zkr.h>). Exit status: 0 every iteration
 * done without overlap, 3 an overlap was seen, 1 an error (said on stderr),
 * 2 a usage error.
 *
 * Modes: mutex (zkr_lock) and elect (zkr_election), marker kind X; read
 * and write (zkr_rwlock), kinds R and W; sema (zkr_semaphore with
 * --leases N), kind L; dbarrier (zkr_double_barrier on P/ITERATION with
 * --count N participants: acquire enters, release leaves), kind B: no
 * marker, and SEQ is the time enter was called (ns), so the driver can
 * check that no one entered before the last one came. Each is one entry in
 * modes[]. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zkr/zkr.h>

typedef struct peer {
  const char *hosts, *path, *dir, *name, *mode;
  int iterations, hold_ms, session_ms, timeout_ms, leases;
  zkr_session *s;
  zkr_lock *lock;
  zkr_election *el;
  zkr_rwlock *rw;
  zkr_semaphore *sem;
  zkr_lease *lease;
  zkr_double_barrier *db;
  int count, round; /* dbarrier: participants, next iteration */
  FILE *log;
  int overlaps;
} peer;

/* One recipe: acquire fills seq (the node's sequence suffix or "-");
 * both return ZKR_OK or an error code. */
typedef struct mode {
  const char *name;
  char kind; /* marker kind: X exclusive */
  int (*setup)(peer *p);
  int (*acquire)(peer *p, char *seq, size_t len);
  int (*release)(peer *p);
} mode;

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static void seq_of(const char *node, char *seq, size_t len) {
  size_t n = strlen(node);

  snprintf(seq, len, "%s", n >= 10 ? node + n - 10 : "-");
}

/* --- zkr_lock ---------------------------------------------------------------- */

static int mutex_setup(peer *p) {
  zkr_lock_opts o = {0};

  o.id = p->name;
  return zkr_lock_new(&p->lock, p->s, p->path, &o);
}

static int mutex_acquire(peer *p, char *seq, size_t len) {
  char node[512];
  int rc = zkr_lock_acquire(p->lock, p->timeout_ms);

  if (rc != ZKR_OK)
    return rc;
  rc = zkr_lock_node(p->lock, node, sizeof node);
  if (rc == ZKR_OK)
    seq_of(node, seq, len);
  return rc;
}

static int mutex_release(peer *p) {
  return zkr_lock_release(p->lock);
}

/* --- zkr_election: every term is a fresh join at the back of the queue --------- */

static int elect_setup(peer *p) {
  zkr_election_opts o = {0};

  o.id = p->name;
  return zkr_election_new(&p->el, p->s, p->path, &o);
}

static int elect_acquire(peer *p, char *seq, size_t len) {
  int rc = zkr_election_join(p->el);

  if (rc == ZKR_OK)
    rc = zkr_election_await(p->el, p->timeout_ms);
  if (rc == ZKR_OK && !zkr_election_is_leader(p->el))
    rc = ZKR_ELOST;
  snprintf(seq, len, "-");
  return rc;
}

static int elect_release(peer *p) {
  return zkr_election_resign(p->el);
}

/* --- zkr_rwlock: the token is the node's czxid, not its name: no seq ------- */

static int rw_setup(peer *p) {
  zkr_rwlock_opts o = {0};

  o.id = p->name;
  return zkr_rwlock_new(&p->rw, p->s, p->path, &o);
}

static int read_acquire(peer *p, char *seq, size_t len) {
  snprintf(seq, len, "-");
  return zkr_rwlock_rdlock(p->rw, p->timeout_ms);
}

static int write_acquire(peer *p, char *seq, size_t len) {
  snprintf(seq, len, "-");
  return zkr_rwlock_wrlock(p->rw, p->timeout_ms);
}

static int rw_release(peer *p) {
  return zkr_rwlock_unlock(p->rw);
}

/* --- zkr_semaphore: Curator's InterProcessSemaphoreV2 layout ---------------- */

static int sema_setup(peer *p) {
  zkr_semaphore_opts o = {0};

  o.id = p->name;
  return zkr_semaphore_new(&p->sem, p->s, p->path, p->leases, &o);
}

static int sema_acquire(peer *p, char *seq, size_t len) {
  snprintf(seq, len, "-");
  return zkr_semaphore_acquire(p->sem, p->timeout_ms, &p->lease);
}

static int sema_release(peer *p) {
  zkr_lease *l = p->lease;

  p->lease = NULL;
  return zkr_lease_release(l);
}

/* --- zkr_double_barrier: Curator's DistributedDoubleBarrier layout --------- */

static int dbarrier_setup(peer *p) {
  (void)p;
  return ZKR_OK; /* one double barrier per iteration, made by acquire */
}

static int dbarrier_acquire(peer *p, char *seq, size_t len) {
  zkr_barrier_opts o = {0};
  char path[512];
  int rc;

  snprintf(seq, len, "%lld", (long long)zkr_monotonic_ns());
  snprintf(path, sizeof path, "%s/%d", p->path, p->round++);
  o.id = p->name;
  rc = zkr_double_barrier_new(&p->db, p->s, path, p->count, &o);
  return rc == ZKR_OK ? zkr_double_barrier_enter(p->db, p->timeout_ms) : rc;
}

static int dbarrier_release(peer *p) {
  int rc = zkr_double_barrier_leave(p->db, p->timeout_ms);

  zkr_double_barrier_free(p->db);
  p->db = NULL;
  return rc;
}

static const mode modes[] = {
    {"mutex", 'X', mutex_setup, mutex_acquire, mutex_release},
    {"elect", 'X', elect_setup, elect_acquire, elect_release},
    {"read", 'R', rw_setup, read_acquire, rw_release},
    {"write", 'W', rw_setup, write_acquire, rw_release},
    {"sema", 'L', sema_setup, sema_acquire, sema_release},
    {"dbarrier", 'B', dbarrier_setup, dbarrier_acquire, dbarrier_release},
};

/* --- markers ---------------------------------------------------------------------- */

/* Creates path exclusively: 1, or 0 if it existed. */
static int claim(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);

  if (fd < 0) {
    if (errno != EEXIST) {
      perror(path);
      exit(1);
    }
    return 0;
  }
  close(fd);
  return 1;
}

/* 1 if some reader's marker D/held.r.* exists. */
static int readers_in(peer *p) {
  struct dirent *e;
  DIR *d = opendir(p->dir);
  int found = 0;

  while (d != NULL && !found && (e = readdir(d)) != NULL)
    found = strncmp(e->d_name, "held.r.", 7) == 0;
  if (d != NULL)
    closedir(d);
  return found;
}

/* Claims the marker of kind (as the Java and Python peers do): a lease one
 * of D/held.l.0 .. held.l.{LEASES-1}; a reader
 * D/held.r.NAME, then D/held.w must not exist; a writer or exclusive
 * holder D/held.w, and for a writer no D/held.r.* may exist. Fills marker
 * with what to remove on exit (empty: nothing). 1 if no overlap. */
static int enter(peer *p, char kind, char *marker, size_t len) {
  char w[512];

  snprintf(w, sizeof w, "%s/held.w", p->dir);
  if (kind == 'B') {
    marker[0] = '\0'; /* a barrier excludes nobody */
    return 1;
  }
  if (kind == 'L') {
    int i;

    for (i = 0; i < p->leases; i++) {
      snprintf(marker, len, "%s/held.l.%d", p->dir, i);
      if (claim(marker))
        return 1;
    }
    marker[0] = '\0';
    return 0; /* more holders than leases */
  }
  if (kind == 'R') {
    snprintf(marker, len, "%s/held.r.%s", p->dir, p->name);
    if (!claim(marker)) {
      fprintf(stderr, "%s exists: two peers named %s\n", marker, p->name);
      exit(1);
    }
    return access(w, F_OK) != 0;
  }
  snprintf(marker, len, "%s", w);
  if (!claim(w)) {
    marker[0] = '\0';
    return 0;
  }
  return kind != 'W' || !readers_in(p);
}

static int await_go(peer *p) {
  char f[512];
  int64_t deadline;

  snprintf(f, sizeof f, "%s/%s.ready", p->dir, p->name);
  if (close(open(f, O_WRONLY | O_CREAT, 0644)) != 0) {
    perror(f);
    return -1;
  }
  snprintf(f, sizeof f, "%s/go", p->dir);
  deadline = zkr_monotonic_ns() + 2 * (int64_t)p->timeout_ms * 1000000;
  while (access(f, F_OK) != 0) {
    if (zkr_monotonic_ns() > deadline)
      return -1;
    sleep_ms(5);
  }
  return 0;
}

static int run(peer *p, const mode *m) {
  char seq[32], marker[512];
  int i, rc, claimed;
  int64_t t_enter, t_exit;

  for (i = 0; i < p->iterations; i++) {
    rc = m->acquire(p, seq, sizeof seq);
    if (rc != ZKR_OK) {
      fprintf(stderr, "%s: %s acquire %d: %s\n", p->name, m->name, i + 1, zkr_err_name(rc));
      return i;
    }
    t_enter = zkr_monotonic_ns();
    claimed = enter(p, m->kind, marker, sizeof marker);
    if (!claimed)
      p->overlaps++;
    sleep_ms(p->hold_ms);
    t_exit = zkr_monotonic_ns();
    if (marker[0] != '\0' && unlink(marker) != 0)
      perror(marker);
    fprintf(p->log, "%lld %lld %c %s %s\n", (long long)t_enter, (long long)t_exit, m->kind, p->name, seq);
    fflush(p->log);
    rc = m->release(p);
    if (rc != ZKR_OK) {
      fprintf(stderr, "%s: %s release %d: %s\n", p->name, m->name, i + 1, zkr_err_name(rc));
      return i;
    }
  }
  return i;
}

static int usage(void) {
  fprintf(stderr,
          "usage: zkr_peer mutex|elect|read|write|sema|dbarrier --hosts H --path P --dir D --name NAME\n"
          "       [--iterations N] [--hold-ms MS] [--session-ms MS] [--timeout-ms MS] [--leases N] [--count "
          "N]\n");
  return 2;
}

int main(int argc, char **argv) {
  peer p = {0};
  const mode *m = NULL;
  zkr_session_opts so = {0};
  char f[512];
  size_t k;
  int i, rc, done;

  p.iterations = 20;
  p.hold_ms = 5;
  p.session_ms = 2000;
  p.timeout_ms = 10000;
  p.leases = 1;
  p.count = 2;
  if (argc < 2)
    return usage();
  p.mode = argv[1];
  for (i = 2; i + 1 < argc; i += 2) {
    const char *k2 = argv[i], *v = argv[i + 1];
    if (strcmp(k2, "--hosts") == 0)
      p.hosts = v;
    else if (strcmp(k2, "--path") == 0)
      p.path = v;
    else if (strcmp(k2, "--dir") == 0)
      p.dir = v;
    else if (strcmp(k2, "--name") == 0)
      p.name = v;
    else if (strcmp(k2, "--iterations") == 0)
      p.iterations = atoi(v);
    else if (strcmp(k2, "--hold-ms") == 0)
      p.hold_ms = atoi(v);
    else if (strcmp(k2, "--session-ms") == 0)
      p.session_ms = atoi(v);
    else if (strcmp(k2, "--timeout-ms") == 0)
      p.timeout_ms = atoi(v);
    else if (strcmp(k2, "--leases") == 0)
      p.leases = atoi(v);
    else if (strcmp(k2, "--count") == 0)
      p.count = atoi(v);
    else
      return usage();
  }
  if (i != argc || !p.hosts || !p.path || !p.dir || !p.name)
    return usage();
  for (k = 0; k < sizeof modes / sizeof modes[0]; k++)
    if (strcmp(modes[k].name, p.mode) == 0)
      m = &modes[k];
  if (m == NULL)
    return usage();

  snprintf(f, sizeof f, "%s/%s.log", p.dir, p.name);
  p.log = fopen(f, "w");
  if (p.log == NULL) {
    perror(f);
    return 1;
  }
  so.session_timeout_ms = p.session_ms;
  so.connect_timeout_ms = p.timeout_ms;
  rc = zkr_session_open(&p.s, p.hosts, &so);
  if (rc == ZKR_OK)
    rc = m->setup(&p);
  if (rc != ZKR_OK) {
    fprintf(stderr, "%s: setup: %s\n", p.name, zkr_strerror(rc));
    return 1;
  }
  if (await_go(&p) != 0) {
    fprintf(stderr, "%s: no go file within %d ms\n", p.name, 2 * p.timeout_ms);
    return 1;
  }
  done = run(&p, m);
  zkr_lock_free(p.lock);
  zkr_election_free(p.el);
  zkr_rwlock_free(p.rw);
  zkr_semaphore_free(p.sem);
  zkr_double_barrier_free(p.db);
  zkr_session_close(p.s);
  fclose(p.log);
  printf("RESULT name=%s mode=%s iterations=%d overlaps=%d\n", p.name, p.mode, done, p.overlaps);
  if (done != p.iterations)
    return 1;
  return p.overlaps > 0 ? 3 : 0;
}
