/* The history recorder, checker and fenced resource that the multi-process
 * lock fault tests rely on, tested on synthetic histories and on histories
 * recorded by forked processes around a process-shared mutex. No server
 * needed: a checker that misses or invents violations would make every
 * fault test meaningless, so it is tested on its own first. */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "history.h"

/* Processes and sections of the multi-process tests. */
#define NPROC 4
#define NSECTIONS 1000

/* Appends one synthetic event with an explicit timestamp. */
static void add(th_hist *h, int type, int participant, int64_t token, int64_t t_ns) {
  th_hist_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.participant = participant;
  ev.token = token;
  ev.t_ns = t_ns;
  CU_ASSERT_EQUAL(th_hist_add(h, &ev), 0);
}

static void add_mark(th_hist *h, int participant, const char *label, int64_t t_ns) {
  th_hist_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.type = TH_HIST_MARK;
  ev.participant = participant;
  ev.t_ns = t_ns;
  snprintf(ev.label, sizeof(ev.label), "%s", label);
  CU_ASSERT_EQUAL(th_hist_add(h, &ev), 0);
}

static void add_paused(th_hist *h, int participant, int64_t from_ns, int64_t to_ns) {
  th_hist_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.type = TH_HIST_PAUSED;
  ev.participant = participant;
  ev.t_ns = from_ns;
  ev.end_ns = to_ns;
  CU_ASSERT_EQUAL(th_hist_add(h, &ev), 0);
}

/* A section of participant p from enter_ns to exit_ns with token. */
static void add_section(th_hist *h, int p, int64_t token, int64_t enter_ns, int64_t exit_ns) {
  add(h, TH_HIST_ENTER, p, token, enter_ns);
  add(h, TH_HIST_EXIT, p, token, exit_ns);
}

/* Runs the checker, asserts its verdict and prints the summary when the
 * verdict is not the expected one, so that a failure comes with the whole
 * picture. */
static void check(th_hist *h, const th_hist_opts *opts, th_hist_report *rep, int expect) {
  int rc = th_hist_check(h, opts, rep);

  CU_ASSERT_EQUAL(rc, expect);
  if (rc != expect)
    th_hist_print(rep, stdout);
}

static void sleep_us(long us) {
  struct timespec ts = {0, us * 1000};

  nanosleep(&ts, NULL);
}

/* Waits for every child; returns how many did not exit with status 0. */
static int reap(const pid_t *pids, int n) {
  int i, bad = 0;

  for (i = 0; i < n; i++) {
    int status = 0;

    if (pids[i] <= 0 || waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      bad++;
  }
  return bad;
}

/* --- synthetic histories ----------------------------------------------------------- */

static void test_history_clean_alternating_sections(void) {
  th_hist *h = th_hist_create(1000);
  th_hist_opts opts = {0, 100, 0};
  th_hist_report rep;
  int i;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  /* Three participants take turns; each waits a little before its turn and
   * the next one enters exactly when the previous one leaves. */
  for (i = 0; i < 99; i++) {
    if (i > 0)
      add(h, TH_HIST_WAIT_BEGIN, i % 3, 0, 10 * i - 5);
    add_section(h, i % 3, i + 1, 10 * i, 10 * i + 10);
  }
  check(h, &opts, &rep, 0);
  CU_ASSERT_EQUAL(rep.events, 98 * 3 + 2);
  CU_ASSERT_EQUAL(rep.sections, 99);
  CU_ASSERT_EQUAL(rep.overlaps, 0);
  CU_ASSERT_EQUAL(rep.fenced_overlaps, 0);
  CU_ASSERT_EQUAL(rep.token_regressions, 0);
  CU_ASSERT_EQUAL(rep.lost_progress, 0);
  CU_ASSERT_EQUAL(rep.longest_stall_ns, 0);
  CU_ASSERT_EQUAL(rep.unclosed, 0);
  CU_ASSERT_EQUAL(rep.unmatched_exits, 0);
  CU_ASSERT_EQUAL(rep.first_violation[0], '\0');
  th_hist_destroy(h);
}

static void test_history_overlapping_pair_detected(void) {
  th_hist *h = th_hist_create(100);
  th_hist_report rep;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  add_section(h, 0, 1, 0, 100);
  add_section(h, 1, 2, 50, 150);
  /* A third section after both: no further pair. */
  add_section(h, 2, 3, 150, 200);
  check(h, NULL, &rep, 1);
  CU_ASSERT_EQUAL(rep.sections, 3);
  CU_ASSERT_EQUAL(rep.overlaps, 1);
  CU_ASSERT_EQUAL(rep.fenced_overlaps, 0);
  CU_ASSERT_EQUAL(rep.token_regressions, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(rep.first_violation, "overlap"));
  th_hist_destroy(h);

  /* One section inside another counts once, too; the order of the appends
   * does not matter, only the timestamps. */
  h = th_hist_create(100);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  add_section(h, 1, 2, 20, 30);
  add_section(h, 0, 1, 10, 40);
  check(h, NULL, &rep, 1);
  CU_ASSERT_EQUAL(rep.overlaps, 1);
  th_hist_destroy(h);
}

static void test_history_paused_holder_overlap_is_fenced(void) {
  th_hist *h = th_hist_create(100);
  th_hist_report rep;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  /* p0 holds, is stopped from 10 to 50, p1 takes over at 60 (p0's session
   * expired meanwhile), p0 resumes and notices its loss only at 100. */
  add(h, TH_HIST_ENTER, 0, 1, 0);
  add_mark(h, 0, "sigstop", 10);
  add_paused(h, 0, 10, 50);
  add(h, TH_HIST_WAIT_BEGIN, 1, 0, 5);
  add_section(h, 1, 2, 60, 70);
  add(h, TH_HIST_EXIT, 0, 1, 100);
  check(h, NULL, &rep, 0);
  CU_ASSERT_EQUAL(rep.overlaps, 0);
  CU_ASSERT_EQUAL(rep.fenced_overlaps, 1);
  CU_ASSERT_EQUAL(rep.pauses, 1);
  CU_ASSERT_EQUAL(rep.unclosed, 0);
  CU_ASSERT_EQUAL(rep.max_gap_after_mark_ns, 50);
  th_hist_destroy(h);

  /* p1 entered before the pause began: the pause explains nothing. */
  h = th_hist_create(100);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  add(h, TH_HIST_ENTER, 0, 1, 0);
  add_section(h, 1, 2, 5, 70);
  add_paused(h, 0, 10, 50);
  add(h, TH_HIST_EXIT, 0, 1, 100);
  check(h, NULL, &rep, 1);
  CU_ASSERT_EQUAL(rep.overlaps, 1);
  CU_ASSERT_EQUAL(rep.fenced_overlaps, 0);
  th_hist_destroy(h);

  /* A pause of a third participant explains nothing either. */
  h = th_hist_create(100);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  add(h, TH_HIST_ENTER, 0, 1, 0);
  add_paused(h, 2, 10, 50);
  add_section(h, 1, 2, 60, 70);
  add(h, TH_HIST_EXIT, 0, 1, 100);
  check(h, NULL, &rep, 1);
  CU_ASSERT_EQUAL(rep.overlaps, 1);
  CU_ASSERT_EQUAL(rep.fenced_overlaps, 0);
  th_hist_destroy(h);
}

static void test_history_takeover_per_fault_kind(void) {
  th_hist *h = th_hist_create(100);
  th_hist_report rep;
  size_t i;
  int seen = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  /* sigstop at 10, next enter at 60; expiry at 100, next enter at 105;
   * sigstop again at 200, next enter at 220; a cut at 300, nobody after. */
  add(h, TH_HIST_ENTER, 0, 1, 0);
  add_mark(h, 0, "sigstop", 10);
  add_paused(h, 0, 10, 50);
  add(h, TH_HIST_EXIT, 0, 1, 55);
  add_section(h, 1, 2, 60, 70);
  add_mark(h, -1, "expiry", 100);
  add_section(h, 1, 3, 105, 110);
  add_mark(h, -1, "sigstop", 200);
  add_section(h, 0, 4, 220, 230);
  add_mark(h, -1, "proxy-cut", 300);
  check(h, NULL, &rep, 0);
  CU_ASSERT_EQUAL(rep.marks, 4);
  CU_ASSERT_EQUAL(rep.marks_unanswered, 1);
  CU_ASSERT_EQUAL(rep.max_gap_after_mark_ns, 50);
  CU_ASSERT_EQUAL(rep.kinds, 3);
  for (i = 0; i < rep.kinds; i++) {
    const struct th_hist_takeover *k = &rep.takeover[i];

    if (strcmp(k->label, "sigstop") == 0) {
      CU_ASSERT_EQUAL(k->marks, 2);
      CU_ASSERT_EQUAL(k->max_gap_ns, 50);
      seen |= 1;
    } else if (strcmp(k->label, "expiry") == 0) {
      CU_ASSERT_EQUAL(k->marks, 1);
      CU_ASSERT_EQUAL(k->max_gap_ns, 5);
      seen |= 2;
    } else if (strcmp(k->label, "proxy-cut") == 0) {
      CU_ASSERT_EQUAL(k->marks, 1);
      CU_ASSERT_EQUAL(k->max_gap_ns, 0);
      seen |= 4;
    }
  }
  CU_ASSERT_EQUAL(seen, 7);
  th_hist_destroy(h);
}

static void test_history_token_regression_detected(void) {
  th_hist *h = th_hist_create(100);
  th_hist_opts equal_ok = {1, 0, 0};
  th_hist_report rep;
  const int64_t tokens[] = {1, 2, 2, 3, 1, 4};
  int i;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  for (i = 0; i < 6; i++)
    add_section(h, i % 2, tokens[i], 10 * i, 10 * i + 5);
  /* 2 after 2 and 1 after 3; 4 is above everything again. */
  check(h, NULL, &rep, 1);
  CU_ASSERT_EQUAL(rep.token_regressions, 2);
  CU_ASSERT_EQUAL(rep.overlaps, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(rep.first_violation, "token regression"));
  check(h, &equal_ok, &rep, 1);
  CU_ASSERT_EQUAL(rep.token_regressions, 1);
  th_hist_destroy(h);
}

/* p0 holds from 0 to 10 and is gone; p1 waits from 5 and enters only at
 * 1000: a stall of 990 ns. mark_ns >= 0 adds a fault there. */
static th_hist *stall_history(int64_t mark_ns) {
  th_hist *h = th_hist_create(100);

  if (h == NULL)
    return NULL;
  add_section(h, 0, 1, 0, 10);
  add(h, TH_HIST_WAIT_BEGIN, 1, 0, 5);
  add_section(h, 1, 2, 1000, 1010);
  if (mark_ns >= 0)
    add_mark(h, -1, "zk-restart", mark_ns);
  return h;
}

static void test_history_lost_progress_detected(void) {
  th_hist *h = stall_history(-1);
  th_hist_opts tight = {0, 500, 0}, loose = {0, 2000, 0};
  th_hist_report rep;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  check(h, &tight, &rep, 1);
  CU_ASSERT_EQUAL(rep.lost_progress, 1);
  CU_ASSERT_EQUAL(rep.longest_stall_ns, 990);
  CU_ASSERT_PTR_NOT_NULL(strstr(rep.first_violation, "lost progress"));
  check(h, &loose, &rep, 0);
  CU_ASSERT_EQUAL(rep.lost_progress, 0);
  CU_ASSERT_EQUAL(rep.longest_stall_ns, 990);
  /* No bound, no check. */
  check(h, NULL, &rep, 0);
  th_hist_destroy(h);

  /* Nobody holding while nobody waits is no stall. */
  h = th_hist_create(100);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  add_section(h, 0, 1, 0, 10);
  add(h, TH_HIST_WAIT_BEGIN, 1, 0, 900);
  add_section(h, 1, 2, 1000, 1010);
  check(h, &tight, &rep, 0);
  CU_ASSERT_EQUAL(rep.longest_stall_ns, 100);
  th_hist_destroy(h);

  /* A waiter that gave up (wait_end) stops counting. */
  h = th_hist_create(100);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  add_section(h, 0, 1, 0, 10);
  add(h, TH_HIST_WAIT_BEGIN, 1, 0, 5);
  add(h, TH_HIST_WAIT_END, 1, 0, 20);
  add_section(h, 1, 2, 1000, 1010);
  check(h, &tight, &rep, 0);
  CU_ASSERT_EQUAL(rep.longest_stall_ns, 10);
  th_hist_destroy(h);
}

static void test_history_lost_progress_excused_within_fault_grace(void) {
  th_hist *h = stall_history(8);
  th_hist_opts grace = {0, 500, 100}, short_grace = {0, 500, 1};
  th_hist_report rep;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  /* The stall begins at 10, 2 ns after the fault at 8. */
  check(h, &grace, &rep, 0);
  CU_ASSERT_EQUAL(rep.lost_progress, 0);
  CU_ASSERT_EQUAL(rep.longest_stall_ns, 990);
  CU_ASSERT_EQUAL(rep.marks, 1);
  CU_ASSERT_EQUAL(rep.max_gap_after_mark_ns, 1000 - 8);
  check(h, &short_grace, &rep, 1);
  CU_ASSERT_EQUAL(rep.lost_progress, 1);
  th_hist_destroy(h);

  /* A fault after the stall began excuses nothing. */
  h = stall_history(20);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  check(h, &grace, &rep, 1);
  CU_ASSERT_EQUAL(rep.lost_progress, 1);
  th_hist_destroy(h);
}

static void test_history_killed_holder_section_ends_at_its_kill(void) {
  th_hist *h = th_hist_create(100);
  th_hist_opts opts = {0, 10, 100};
  th_hist_report rep;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  /* p0 enters and is killed at 50 without an exit; p1 takes over at 80. */
  add(h, TH_HIST_ENTER, 0, 1, 0);
  add(h, TH_HIST_WAIT_BEGIN, 1, 0, 20);
  add_mark(h, 0, "sigkill", 50);
  add_section(h, 1, 2, 80, 90);
  check(h, &opts, &rep, 0);
  CU_ASSERT_EQUAL(rep.unclosed, 1);
  CU_ASSERT_EQUAL(rep.overlaps, 0);
  CU_ASSERT_EQUAL(rep.longest_stall_ns, 30);
  CU_ASSERT_EQUAL(rep.lost_progress, 0);
  CU_ASSERT_EQUAL(rep.max_gap_after_mark_ns, 30);
  CU_ASSERT_EQUAL(rep.marks_unanswered, 0);
  th_hist_destroy(h);

  /* Without the kill mark the section lasts to the end of the history and
   * overlaps p1's; a mark after the last enter is unanswered. */
  h = th_hist_create(100);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  add(h, TH_HIST_ENTER, 0, 1, 0);
  add_section(h, 1, 2, 80, 90);
  add_mark(h, -1, "partition", 95);
  check(h, NULL, &rep, 1);
  CU_ASSERT_EQUAL(rep.unclosed, 1);
  CU_ASSERT_EQUAL(rep.overlaps, 1);
  CU_ASSERT_EQUAL(rep.marks_unanswered, 1);
  CU_ASSERT_EQUAL(rep.max_gap_after_mark_ns, 0);
  th_hist_destroy(h);

  /* A restarted participant's next attempt closes its dead section. */
  h = th_hist_create(100);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  add(h, TH_HIST_ENTER, 0, 1, 0);
  add(h, TH_HIST_WAIT_BEGIN, 0, 0, 40);
  add_section(h, 0, 2, 50, 60);
  add(h, TH_HIST_EXIT, 1, 0, 70);
  check(h, NULL, &rep, 0);
  CU_ASSERT_EQUAL(rep.unclosed, 1);
  CU_ASSERT_EQUAL(rep.unmatched_exits, 1);
  CU_ASSERT_EQUAL(rep.overlaps, 0);
  th_hist_destroy(h);
}

static void test_history_full_history_counts_dropped(void) {
  th_hist *h = th_hist_create(10);
  th_hist_event ev;
  th_hist_report rep;
  int i, failed = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT_PTR_NULL(th_hist_create(0));
  memset(&ev, 0, sizeof(ev));
  ev.type = TH_HIST_MARK;
  for (i = 0; i < 15; i++) {
    ev.t_ns = i;
    failed += th_hist_add(h, &ev) != 0;
  }
  CU_ASSERT_EQUAL(failed, 5);
  CU_ASSERT_EQUAL(th_hist_count(h), 10);
  /* An incomplete history cannot be vouched for. */
  check(h, NULL, &rep, 1);
  CU_ASSERT_EQUAL(rep.events, 10);
  CU_ASSERT_EQUAL(rep.dropped, 5);
  CU_ASSERT_EQUAL(th_hist_check(NULL, NULL, &rep), -1);
  CU_ASSERT_EQUAL(th_hist_check(h, NULL, NULL), -1);
  th_hist_destroy(h);
  th_hist_destroy(NULL);
}

static void test_history_dump_and_print(void) {
  th_hist *h = th_hist_create(100);
  th_hist_report rep;
  char path[] = "/tmp/zkr-history-XXXXXX";
  char line[256], *text = NULL;
  size_t text_len = 0;
  int fd, lines = 0, found_label = 0, found_paused = 0;
  int64_t now;
  FILE *f;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  th_hist_wait_begin(h, 1);
  th_hist_enter(h, 1, 7);
  th_hist_mark(h, 1, "kill\nnow");
  th_hist_mark(h, -1, "a label that is much longer than the field");
  now = th_hist_now_ns();
  th_hist_paused(h, 1, now, now + 1000000);
  th_hist_exit(h, 1, 7);
  th_hist_wait_end(h, 1);
  CU_ASSERT_EQUAL(th_hist_count(h), 7);

  fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  CU_ASSERT_EQUAL(th_hist_dump(h, path), 0);
  f = fopen(path, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  while (fgets(line, sizeof(line), f) != NULL) {
    lines++;
    /* The newline of the label became '?': one event, one line. */
    found_label += strstr(line, "label=kill?now") != NULL;
    found_paused += strstr(line, "paused p=1") != NULL && strstr(line, "(1.000ms)") != NULL;
    /* Truncated to the field, NUL included. */
    if (strstr(line, "label=a label") != NULL)
      CU_ASSERT_PTR_NOT_NULL(strstr(line, "label=a label that is much lo\n"));
  }
  fclose(f);
  unlink(path);
  CU_ASSERT_EQUAL(lines, 7);
  CU_ASSERT_EQUAL(found_label, 1);
  CU_ASSERT_EQUAL(found_paused, 1);
  CU_ASSERT_EQUAL(th_hist_dump(h, "/nonexistent-dir/history.txt"), -1);

  check(h, NULL, &rep, 0);
  CU_ASSERT_EQUAL(rep.sections, 1);
  CU_ASSERT_EQUAL(rep.marks, 2);
  f = open_memstream(&text, &text_len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  th_hist_print(&rep, f);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "1 acquisitions, 2 faults injected"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "0 overlaps, 0 fenced overlaps"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "0 token regressions"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "max takeover time"));
  free(text);
  th_hist_destroy(h);
}

/* --- concurrent recording -------------------------------------------------------- */

#define NTHREADS 4
#define NAPPENDS 10000

static void *append_marks(void *arg) {
  th_hist *h = arg;
  int i;

  for (i = 0; i < NAPPENDS; i++)
    th_hist_mark(h, -1, "m");
  return NULL;
}

static void test_history_concurrent_appends_all_kept(void) {
  th_hist *h = th_hist_create(3 * NTHREADS * NAPPENDS);
  pthread_t threads[NTHREADS];
  pid_t pids[2];
  th_hist_report rep;
  int i, started = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  /* Two processes beside this one, each with NTHREADS threads. */
  for (i = 0; i < 2; i++) {
    pids[i] = fork();
    if (pids[i] == 0) {
      int j, ok = 1;

      for (j = 0; j < NTHREADS; j++)
        ok &= pthread_create(&threads[j], NULL, append_marks, h) == 0;
      for (j = 0; ok && j < NTHREADS; j++)
        pthread_join(threads[j], NULL);
      _exit(ok ? 0 : 1);
    }
  }
  for (i = 0; i < NTHREADS; i++)
    started += pthread_create(&threads[i], NULL, append_marks, h) == 0;
  CU_ASSERT_EQUAL(started, NTHREADS);
  for (i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  CU_ASSERT_EQUAL(reap(pids, 2), 0);
  CU_ASSERT_EQUAL(th_hist_count(h), 3 * NTHREADS * NAPPENDS);
  check(h, NULL, &rep, 0);
  CU_ASSERT_EQUAL(rep.marks, 3 * NTHREADS * NAPPENDS);
  CU_ASSERT_EQUAL(rep.dropped, 0);
  th_hist_destroy(h);
}

/* The "lock" of the multi-process tests and the start line, shared. */
typedef struct shared_lock {
  pthread_mutex_t mu;
  int64_t token;
  _Atomic int64_t free_token; /* for the runs without the mutex */
  atomic_int ready;
  atomic_int go;
} shared_lock;

static shared_lock *shared_lock_create(void) {
  shared_lock *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pthread_mutexattr_t attr;
  int rc;

  if (s == MAP_FAILED)
    return NULL;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  rc = pthread_mutex_init(&s->mu, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) {
    munmap(s, sizeof(*s));
    return NULL;
  }
  return s;
}

static void shared_lock_destroy(shared_lock *s) {
  pthread_mutex_destroy(&s->mu);
  munmap(s, sizeof(*s));
}

/* One child: NSECTIONS critical sections, under the mutex or not. Each
 * section sleeps a little so that, without the mutex, sections of different
 * processes do overlap even on one CPU. */
static void contend(th_hist *h, shared_lock *s, int participant, int use_mutex) {
  int i;

  atomic_fetch_add(&s->ready, 1);
  while (!atomic_load(&s->go))
    sched_yield();
  for (i = 0; i < NSECTIONS; i++) {
    int64_t token;

    th_hist_wait_begin(h, participant);
    if (use_mutex) {
      pthread_mutex_lock(&s->mu);
      token = ++s->token;
    } else {
      token = atomic_fetch_add(&s->free_token, 1) + 1;
    }
    th_hist_enter(h, participant, token);
    sleep_us(5);
    th_hist_exit(h, participant, token);
    if (use_mutex)
      pthread_mutex_unlock(&s->mu);
  }
  _exit(0);
}

/* Forks NPROC contenders, lets them go at once, waits for them and checks
 * the history. */
static void run_contenders(int use_mutex, th_hist_report *rep, int *rc) {
  th_hist *h = th_hist_create(NPROC * NSECTIONS * 3);
  shared_lock *s = shared_lock_create();
  th_hist_opts opts = {0, 1000000000, 0};
  pid_t pids[NPROC];
  int i;

  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  for (i = 0; i < NPROC; i++) {
    pids[i] = fork();
    if (pids[i] == 0)
      contend(h, s, i, use_mutex);
  }
  while (atomic_load(&s->ready) < NPROC)
    sched_yield();
  atomic_store(&s->go, 1);
  CU_ASSERT_EQUAL(reap(pids, NPROC), 0);
  *rc = th_hist_check(h, &opts, rep);
  th_hist_print(rep, stdout);
  shared_lock_destroy(s);
  th_hist_destroy(h);
}

static void test_history_multiprocess_mutex_no_overlap(void) {
  th_hist_report rep;
  int rc;

  run_contenders(1, &rep, &rc);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_EQUAL(rep.events, NPROC * NSECTIONS * 3);
  CU_ASSERT_EQUAL(rep.sections, NPROC * NSECTIONS);
  CU_ASSERT_EQUAL(rep.overlaps, 0);
  CU_ASSERT_EQUAL(rep.fenced_overlaps, 0);
  CU_ASSERT_EQUAL(rep.token_regressions, 0);
  CU_ASSERT_EQUAL(rep.lost_progress, 0);
  CU_ASSERT_EQUAL(rep.unclosed, 0);
}

/* Negative control: the same contenders without the mutex must be caught. */
static void test_history_multiprocess_without_mutex_overlaps(void) {
  th_hist_report rep;
  int rc;

  run_contenders(0, &rep, &rc);
  CU_ASSERT_EQUAL(rc, 1);
  CU_ASSERT_EQUAL(rep.sections, NPROC * NSECTIONS);
  CU_ASSERT(rep.overlaps > 0);
  CU_ASSERT_EQUAL(rep.fenced_overlaps, 0);
}

/* --- fenced resource ---------------------------------------------------------------- */

static void test_history_fence_accepts_increasing_rejects_stale(void) {
  th_fence *f = th_fence_create();

  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(th_fence_highest(f), TH_FENCE_NONE);
  CU_ASSERT_EQUAL(th_fence_write(f, 1), 1);
  CU_ASSERT_EQUAL(th_fence_write(f, 2), 1);
  /* The same holder writing again with its token. */
  CU_ASSERT_EQUAL(th_fence_write(f, 2), 1);
  CU_ASSERT_EQUAL(th_fence_write(f, 1), 0);
  CU_ASSERT_EQUAL(th_fence_highest(f), 2);
  CU_ASSERT_EQUAL(th_fence_accepted(f), 3);
  CU_ASSERT_EQUAL(th_fence_rejected(f), 1);
  th_fence_destroy(f);
  th_fence_destroy(NULL);
}

static void test_history_fence_rejects_stale_across_processes(void) {
  th_fence *f = th_fence_create();
  pid_t pids[NPROC];
  int i;

  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  /* A child with a stale token is refused after the parent's newer write;
   * its newer write then refuses the parent's stale one. */
  CU_ASSERT_EQUAL(th_fence_write(f, 100), 1);
  pids[0] = fork();
  if (pids[0] == 0)
    _exit(th_fence_write(f, 50) == 0 && th_fence_write(f, 200) == 1 ? 0 : 1);
  CU_ASSERT_EQUAL(reap(pids, 1), 0);
  CU_ASSERT_EQUAL(th_fence_write(f, 150), 0);
  CU_ASSERT_EQUAL(th_fence_highest(f), 200);
  CU_ASSERT_EQUAL(th_fence_accepted(f), 2);
  CU_ASSERT_EQUAL(th_fence_rejected(f), 2);
  th_fence_destroy(f);

  /* Concurrent writers: process i writes i, i + NPROC, ...; whatever the
   * interleaving every write is counted once and the maximum wins. A
   * process's own writes increase, so its first one may be refused but it
   * never sees highest go down. */
  f = th_fence_create();
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  for (i = 0; i < NPROC; i++) {
    pids[i] = fork();
    if (pids[i] == 0) {
      int k, ok = 1;
      int64_t seen = TH_FENCE_NONE;

      for (k = 0; k < NSECTIONS; k++) {
        int64_t now;

        th_fence_write(f, (int64_t)k * NPROC + i);
        now = th_fence_highest(f);
        ok &= now >= seen && now >= (int64_t)k * NPROC + i;
        seen = now;
      }
      _exit(ok ? 0 : 1);
    }
  }
  CU_ASSERT_EQUAL(reap(pids, NPROC), 0);
  CU_ASSERT_EQUAL(th_fence_accepted(f) + th_fence_rejected(f), NPROC * NSECTIONS);
  CU_ASSERT_EQUAL(th_fence_highest(f), (int64_t)NSECTIONS * NPROC - 1);
  th_fence_destroy(f);
}

int main(void) {
  static const th_test tests[] = {
      {"test_history_clean_alternating_sections", test_history_clean_alternating_sections},
      {"test_history_overlapping_pair_detected", test_history_overlapping_pair_detected},
      {"test_history_paused_holder_overlap_is_fenced", test_history_paused_holder_overlap_is_fenced},
      {"test_history_takeover_per_fault_kind", test_history_takeover_per_fault_kind},
      {"test_history_token_regression_detected", test_history_token_regression_detected},
      {"test_history_lost_progress_detected", test_history_lost_progress_detected},
      {"test_history_lost_progress_excused_within_fault_grace",
       test_history_lost_progress_excused_within_fault_grace},
      {"test_history_killed_holder_section_ends_at_its_kill",
       test_history_killed_holder_section_ends_at_its_kill},
      {"test_history_full_history_counts_dropped", test_history_full_history_counts_dropped},
      {"test_history_dump_and_print", test_history_dump_and_print},
      {"test_history_concurrent_appends_all_kept", test_history_concurrent_appends_all_kept},
      {"test_history_multiprocess_mutex_no_overlap", test_history_multiprocess_mutex_no_overlap},
      {"test_history_multiprocess_without_mutex_overlaps", test_history_multiprocess_without_mutex_overlaps},
      {"test_history_fence_accepts_increasing_rejects_stale",
       test_history_fence_accepts_increasing_rejects_stale},
      {"test_history_fence_rejects_stale_across_processes",
       test_history_fence_rejects_stale_across_processes},
      {NULL, NULL},
  };

  return th_run("history", tests);
}
