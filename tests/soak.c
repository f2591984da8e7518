/* Soak: worker processes hammer a few locks on a 3-node ensemble while the
 * driver injects one fault every few seconds, in rotation: ensemble leader
 * SIGKILLed, a member restarted, a session expired on demand, a proxy cut,
 * a worker process SIGSTOPped for 1.5x the session timeout. Every critical
 * section is recorded; the checker then looks for overlaps among holders
 * that were not paused, fence violations, orphan nodes and slow takeovers.
 *
 *   soak [SECONDS=60] [PROCESSES=8] [THREADS=4]
 *
 * Prints the figures and "N passed, M failed" for its checks. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ensemble.h"
#include "harness.h"
#include "history.h"
#include "proxy.h"

#define LOCKS 3
#define T_MS 4000 /* session timeout of the participants */
#define MAX_PARTS 256
/* Length of a SIGSTOP fault (the fault itself, not a bound): longer than
 * the session timeout, so that the paused holder's session expires. */
#define PAUSE_MS (T_MS * 3 / 2)
/* The faults, in the order they rotate. */
static const char *const fault_names[] = {"leader-kill", "member-restart", "expiry", "proxy-cut", "sigstop"};
#define FAULTS 5

/* Strict: the longest a takeover may take after fault f (ms), from the
 * fault's start to the next grant of each lock. A paused, expired or cut
 * off holder: its session ends within the timeout and the waiter hears of
 * it (TH_EXPIRED_BY_MS). A dead leader: first the ensemble elects and syncs
 * a new one (TH_ENS_ELECTION_MS); a holder whose own clock ran out
 * meanwhile has stepped down, and its node goes when its session does, in
 * the time of an expiry after that. A restarted follower: its clients move
 * to another member at once, no worse than an expiry. */
static int64_t takeover_bound_ms(int f) {
  return (f == 0 ? TH_ENS_ELECTION_MS : 0) + TH_EXPIRED_BY_MS(T_MS);
}

/* Shared between the driver and the workers. */
typedef struct board {
  volatile int stop;
  char hosts[1024];       /* set by the driver once its proxy runs */
  int64_t sid[MAX_PARTS]; /* current session of each participant */
  char pw[MAX_PARTS][16];
  /* A fault on a holder (expiry, sigstop) hits one that holds: the driver
   * sets bait to a lock's index + 1, the next participant to enter that
   * lock takes it (bait_part, -1 until then) and stays inside until
   * bait_done, so the takeover measured is the one from a stuck holder. */
  int bait, bait_part, bait_done;
  long acquisitions;
  long fence_rejected;
  int bait_kind;               /* the fault the bait is for */
  long stale_rejected[FAULTS]; /* writes of a bait holder after its fault, refused */
  long errors;
} board;

static board *bd;
static th_hist *hist[LOCKS];
static th_fence *fence[LOCKS];
static char lock_path[LOCKS][64];

/* The driver's schedule: a fault falls due at a time, not on a condition. */
static void sleep_until(int64_t at_ms) {
  int64_t left = at_ms - th_now_ms();

  struct timespec ts;

  if (left <= 0)
    return;
  ts.tv_sec = left / 1000;
  ts.tv_nsec = (long)(left % 1000) * 1000000;
  nanosleep(&ts, NULL);
}

static void publish(int part, zkr_session *s) {
  const clientid_t *cid = zoo_client_id(zkr_session_zhandle(s));

  memcpy(bd->pw[part], cid->passwd, 16);
  __atomic_store_n(&bd->sid[part], cid->client_id, __ATOMIC_SEQ_CST);
}

static void spin_us(int us) {
  int64_t until = zkr_monotonic_ns() + (int64_t)us * 1000;
  while (zkr_monotonic_ns() < until)
    ;
}

static int bait_done(void *arg) {
  (void)arg;
  return __atomic_load_n(&bd->bait_done, __ATOMIC_SEQ_CST) || bd->stop;
}

static int bait_taken(void *arg) {
  (void)arg;
  return __atomic_load_n(&bd->bait_part, __ATOMIC_SEQ_CST) >= 0;
}

typedef struct worker {
  int part;
  unsigned seed;
} worker;

/* One participant: its own session and one zkr_lock per path. A lost
 * session is replaced, as a real service would. */
static void *worker_main(void *arg) {
  worker *w = arg;
  zkr_session *s = NULL;
  zkr_lock *l[LOCKS] = {NULL};
  int i;

  while (!bd->stop) {
    int k = (int)(rand_r(&w->seed) % LOCKS), rc;
    int64_t token = 0;

    if (s == NULL) {
      zkr_session_opts o;
      memset(&o, 0, sizeof(o));
      o.session_timeout_ms = T_MS;
      if (zkr_session_open(&s, bd->hosts, &o) != ZKR_OK) {
        s = NULL;
        continue;
      }
      publish(w->part, s);
      for (i = 0; i < LOCKS; i++)
        zkr_lock_new(&l[i], s, lock_path[i], NULL);
    }
    th_hist_wait_begin(hist[k], w->part);
    /* Patience through a fault; a timeout is no error, it tries again. */
    rc = zkr_lock_acquire(l[k], TH_SETTLE_FOR(T_MS));
    th_hist_wait_end(hist[k], w->part);
    if (rc == ZKR_OK && zkr_lock_token(l[k], &token) == ZKR_OK) {
      th_hist_enter(hist[k], w->part, token);
      if (!th_fence_write(fence[k], token))
        __atomic_add_fetch(&bd->fence_rejected, 1, __ATOMIC_SEQ_CST);
      spin_us((int)(rand_r(&w->seed) % 500));
      if (__atomic_load_n(&bd->bait, __ATOMIC_SEQ_CST) == k + 1) {
        int none = -1;

        if (__atomic_compare_exchange_n(&bd->bait_part, &none, w->part, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
          th_wait_until(bait_done, NULL, TH_SETTLE_FOR(PAUSE_MS));
          /* A write after the fault: once another holder has written, the
           * fence must refuse this stale one. */
          if (!th_fence_write(fence[k], token))
            __atomic_add_fetch(&bd->stale_rejected[bd->bait_kind], 1, __ATOMIC_SEQ_CST);
        }
      }
      th_hist_exit(hist[k], w->part, token);
      __atomic_add_fetch(&bd->acquisitions, 1, __ATOMIC_SEQ_CST);
      zkr_lock_release(l[k]);
    } else if (rc == ZKR_ESESSION || rc == ZKR_ECLOSED || zkr_session_get_state(s) == ZKR_SESSION_LOST) {
      for (i = 0; i < LOCKS; i++)
        zkr_lock_free(l[i]);
      zkr_session_close(s);
      s = NULL;
    } else if (rc != ZKR_ETIMEDOUT) {
      __atomic_add_fetch(&bd->errors, 1, __ATOMIC_SEQ_CST);
    }
  }
  for (i = 0; s != NULL && i < LOCKS; i++)
    zkr_lock_free(l[i]);
  zkr_session_close(s);
  return NULL;
}

static int hosts_published(void *arg) {
  (void)arg;
  return __atomic_load_n(&bd->hosts[0], __ATOMIC_SEQ_CST) != '\0';
}

static int worker_process(int proc, int threads) {
  pthread_t t[64];
  worker w[64];
  int i;

  /* Forked before the driver starts any thread (ThreadSanitizer does not
   * follow threads across fork): wait for the hosts it publishes. */
  if (!th_wait_until(hosts_published, NULL, TH_SETTLE_MS))
    return 1;

  for (i = 0; i < threads; i++) {
    w[i].part = proc * threads + i;
    w[i].seed = (unsigned)(proc * 7919 + i * 104729 + 1);
    pthread_create(&t[i], NULL, worker_main, &w[i]);
  }
  for (i = 0; i < threads; i++)
    pthread_join(t[i], NULL);
  return 0;
}

static void mark_all(int part, const char *label) {
  int k;

  for (k = 0; k < LOCKS; k++)
    th_hist_mark(hist[k], part, label);
}

static int count_orphans(void) {
  int k, n = 0;

  for (k = 0; k < LOCKS; k++) {
    int c = th_count_nodes(lock_path[k]);
    n += c > 0 ? c : 0;
  }
  return n;
}

static int no_orphans(void *arg) {
  (void)arg;
  return count_orphans() == 0;
}

int main(int argc, char **argv) {
  int secs = argc > 1 ? atoi(argv[1]) : 60, procs = argc > 2 ? atoi(argv[2]) : 8;
  int threads = argc > 3 ? atoi(argv[3]) : 4, i, k, f, fault = 0, passed = 0, failed = 0, down = 0;
  pid_t pid[64];
  th_ens *ens;
  tp_proxy *px;
  char *first;
  int64_t start, end, next_fault;
  size_t overlaps = 0, fenced = 0, regressions = 0, sections = 0, marks = 0, unanswered = 0;
  int64_t takeover[FAULTS] = {0};
  int injected[FAULTS] = {0};

  if (secs < 10 || procs < 1 || procs > 64 || threads < 1 || procs * threads > MAX_PARTS) {
    fprintf(stderr, "usage: soak [SECONDS>=10] [PROCESSES<=64] [THREADS]\n");
    return 64;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  bd = mmap(NULL, sizeof(*bd), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  memset(bd, 0, sizeof(*bd));
  for (k = 0; k < LOCKS; k++) {
    hist[k] = th_hist_create(2000000);
    fence[k] = th_fence_create();
    snprintf(lock_path[k], sizeof(lock_path[k]), "/zkr-soak/%d/lock-%d", (int)getpid(), k);
  }
  printf("soak: starting a 3-node ensemble ...\n");
  ens = th_ens_start(3);
  if (ens == NULL) {
    printf("soak: ensemble did not start\n0 passed, 1 failed\n");
    return 1;
  }
  /* Half the clients may go through the proxy (it forwards to member 1):
   * its cuts hit whoever is connected through it. */
  setenv("ZKR_TEST_HOSTS", th_ens_hosts(ens), 1); /* for th_count_nodes etc. */
  printf("soak: %d processes x %d threads over %d locks for %d s, session timeout %d ms\n", procs, threads,
         LOCKS, secs, T_MS);
  for (i = 0; i < procs; i++) {
    pid[i] = fork();
    if (pid[i] == 0)
      _exit(worker_process(i, threads));
  }
  first = strdup(th_ens_hosts(ens));
  first[strcspn(first, ",")] = '\0';
  px = tp_start(first);
  free(first);
  snprintf(bd->hosts, sizeof(bd->hosts), "%s,%s", tp_hosts(px), th_ens_hosts(ens));
  start = th_now_ms();
  next_fault = start + takeover_bound_ms(FAULTS - 1);
  end = start + (int64_t)secs * 1000;
  while (th_now_ms() < end) {
    int victim = -1; /* the participant a fault on a holder hits */
    int leader = -1;

    sleep_until(next_fault < end ? next_fault : end);
    if (th_now_ms() < next_fault)
      continue;
    if (down > 0) { /* the member killed last time comes back first */
      th_ens_start_member(ens, down);
      down = 0;
    }
    f = fault++ % FAULTS;
    if (f == 2 || f == 4) { /* a fault on a holder: wait for one */
      __atomic_store_n(&bd->bait_part, -1, __ATOMIC_SEQ_CST);
      __atomic_store_n(&bd->bait_kind, f, __ATOMIC_SEQ_CST);
      __atomic_store_n(&bd->bait_done, 0, __ATOMIC_SEQ_CST);
      __atomic_store_n(&bd->bait, fault % LOCKS + 1, __ATOMIC_SEQ_CST);
      if (!th_wait_until(bait_taken, NULL, TH_SETTLE_FOR(T_MS))) {
        failed++,
            printf("soak: FAIL nobody entered lock %d for the %s fault\n", fault % LOCKS, fault_names[f]);
        break;
      }
      victim = __atomic_load_n(&bd->bait_part, __ATOMIC_SEQ_CST);
    }
    injected[f]++;
    mark_all(-1, fault_names[f]);
    printf("soak: t=%4.1fs fault %-14s acquisitions so far %ld\n", (double)(th_now_ms() - start) / 1000,
           fault_names[f], bd->acquisitions);
    if (f == 0 || f == 1) {
      /* An election may still be settling after the last fault. */
      leader = th_ens_leader(ens);
      if (leader < 1 && th_ens_await_leader(ens) == 0)
        leader = th_ens_leader(ens);
      if (leader < 1) {
        failed++, printf("soak: FAIL no leader for the %s fault\n", fault_names[f]);
        break;
      }
    }
    if (f == 0) {
      down = leader;
      th_ens_kill(ens, down);
    } else if (f == 1) {
      int m = leader % 3 + 1; /* a follower */
      th_ens_stop_member(ens, m);
      th_ens_start_member(ens, m);
    } else if (f == 2) {
      int part = victim;
      int64_t sid = __atomic_load_n(&bd->sid[part], __ATOMIC_SEQ_CST), t0 = th_hist_now_ns();
      /* Killed behind its back, the victim may still be inside a section
       * until it hears of it: that window is fenced, record it as such. */
      th_expire_id(sid, bd->pw[part]);
      /* It learns by its own clock at the latest, within the timeout. */
      for (k = 0; k < LOCKS; k++)
        th_hist_paused(hist[k], part, t0, th_hist_now_ns() + (int64_t)TH_EXPIRED_BY_MS(T_MS) * 1000000);
      __atomic_store_n(&bd->bait_done, 1, __ATOMIC_SEQ_CST);
    } else if (f == 3) {
      tp_drop_all(px);
    } else {
      int64_t t0 = th_hist_now_ns(), t1;
      int proc = victim / threads;

      kill(pid[proc], SIGSTOP);
      usleep(PAUSE_MS * 1000); /* the pause is the fault */
      t1 = th_hist_now_ns();
      __atomic_store_n(&bd->bait_done, 1, __ATOMIC_SEQ_CST);
      kill(pid[proc], SIGCONT);
      for (i = 0; i < threads; i++)
        for (k = 0; k < LOCKS; k++)
          th_hist_paused(hist[k], proc * threads + i, t0, t1);
    }
    __atomic_store_n(&bd->bait, 0, __ATOMIC_SEQ_CST);
    /* Quiet until this fault's takeover bound has passed, so that faults
     * never stack and each takeover is measured on its own, however long
     * the fault itself took on a loaded machine. */
    next_fault = th_now_ms() + takeover_bound_ms(f);
  }
  /* The last fault's takeover is measured too: run until its bound has
   * passed (every fault must be followed by a grant of every lock). */
  sleep_until(next_fault);
  if (down > 0)
    th_ens_start_member(ens, down);
  bd->stop = 1;
  for (i = 0; i < procs; i++) {
    int st;
    if (waitpid(pid[i], &st, 0) != pid[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      failed++, printf("soak: FAIL worker process %d did not finish cleanly\n", i);
  }
  /* Orphans: none once the last sessions' ends have had their effect
   * (strict: the workers closed them, or they expired). */
  th_wait_until(no_orphans, NULL, TH_EXPIRED_BY_MS(T_MS));
  i = count_orphans();
  if (i == 0)
    passed++;
  else
    failed++, printf("soak: FAIL %d orphan node(s) left\n", i);

  for (k = 0; k < LOCKS; k++) {
    th_hist_opts ho;
    th_hist_report r;

    memset(&ho, 0, sizeof(ho));
    th_hist_check(hist[k], &ho, &r);
    overlaps += r.overlaps;
    fenced += r.fenced_overlaps;
    regressions += r.token_regressions;
    unanswered += r.marks_unanswered;
    sections += r.sections;
    marks = r.marks;
    for (i = 0; i < (int)r.kinds; i++)
      for (f = 0; f < FAULTS; f++)
        if (strcmp(r.takeover[i].label, fault_names[f]) == 0 && r.takeover[i].max_gap_ns > takeover[f])
          takeover[f] = r.takeover[i].max_gap_ns;
    if (r.overlaps > 0)
      printf("soak: lock %d: %s\n", k, r.first_violation);
  }
  printf("soak: %zu acquisitions, %zu faults injected (", sections, marks);
  for (f = 0; f < FAULTS; f++)
    printf("%s%s %d", f ? ", " : "", fault_names[f], injected[f]);
  printf("), %zu overlaps among unpaused holders, %zu fenced overlaps (paused or expired holders), "
         "%zu token regressions, %ld writes at entry refused by the fence, %ld writes of a holder after its "
         "fault refused, %ld unexpected errors\n",
         overlaps, fenced, regressions, bd->fence_rejected, bd->stale_rejected[2] + bd->stale_rejected[4],
         bd->errors);
  /* A paused holder resumes after the takeover (the pause outlasts the
   * session): each such stale write must have been refused. */
  if (bd->stale_rejected[4] >= injected[4])
    passed++;
  else
    failed++, printf("soak: FAIL only %ld of %d writes after a pause refused by the fence\n",
                     bd->stale_rejected[4], injected[4]);
  /* A lock that never granted again after a fault is no quick takeover. */
  if (unanswered == 0)
    passed++;
  else
    failed++, printf("soak: FAIL %zu fault marks without a later grant of their lock\n", unanswered);
  passed += overlaps == 0, failed += overlaps != 0;
  passed += regressions == 0, failed += regressions != 0;
  passed += sections > (size_t)secs, failed += sections <= (size_t)secs;
  /* Strict, per kind of fault (takeover_bound_ms()). */
  for (f = 0; f < FAULTS; f++) {
    int ok = takeover[f] <= takeover_bound_ms(f) * 1000000;

    printf("soak: %s max takeover after %-14s %5.2f s (bound %.1f s)\n", ok ? "ok  " : "FAIL", fault_names[f],
           (double)takeover[f] / 1e9, takeover_bound_ms(f) / 1000.0);
    passed += ok, failed += !ok;
  }
  for (k = 0; k < LOCKS; k++) {
    th_hist_destroy(hist[k]);
    th_fence_destroy(fence[k]);
  }
  tp_stop(px);
  th_ens_free(ens);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
