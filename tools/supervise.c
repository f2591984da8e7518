/* Child supervision for the zkr tool: the command's whole process tree runs
 * only while the hold is valid, signals and the terminal reach it, and zkr
 * returns only once the tree is gone.
 *
 * zkr is the subreaper of everything the command starts
 * (PR_SET_CHILD_SUBREAPER), so a process whose parent ended is re-parented
 * to zkr instead of init: waitpid(-1) failing with ECHILD then means that
 * no process of the tree is left, and "the tree" is every process whose
 * chain of parents reaches zkr, found by walking /proc. That catches
 * processes that left the command's process group or session (setsid),
 * which signalling the group alone would miss. */
#define _GNU_SOURCE
#include "supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* The signals whose default action would end zkr and that it can catch:
 * zkr must not die of one and leave the command's tree running without the
 * lock. The fault signals (ILL, TRAP, ABRT, BUS, FPE, SEGV, SYS) are here
 * for when another process sends them; one raised by a fault of zkr itself
 * is delivered by the kernel whatever the mask, like SIGKILL. The realtime
 * signals are added at run time (SIGRTMIN is not a constant). */
static const int ending_signals[] = {
    SIGHUP,    SIGINT,  SIGQUIT, SIGILL,  SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGUSR1,   SIGSEGV,
    SIGUSR2,   SIGALRM, SIGTERM, SIGXCPU, SIGXFSZ, SIGPROF, SIGSYS, SIGIO,  SIGVTALRM,
#ifdef SIGSTKFLT
    SIGSTKFLT,
#endif
#ifdef SIGPWR
    SIGPWR,
#endif
};

/* What SIGPIPE did when zkr started: the command gets it back. */
static void (*initial_sigpipe)(int) = SIG_DFL;

int sv_signals(void) {
  static const int job[] = {SIGCHLD, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT};
  sigset_t set;
  size_t i;
  int rt;

  sigemptyset(&set);
  for (i = 0; i < sizeof(job) / sizeof(job[0]); i++)
    sigaddset(&set, job[i]);
  for (i = 0; i < sizeof(ending_signals) / sizeof(ending_signals[0]); i++)
    sigaddset(&set, ending_signals[i]);
  for (rt = SIGRTMIN; rt <= SIGRTMAX; rt++)
    sigaddset(&set, rt);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
    return -1;
  return signalfd(-1, &set, SFD_CLOEXEC);
}

void sv_ignore_sigpipe(void) {
  initial_sigpipe = signal(SIGPIPE, SIG_IGN);
  if (initial_sigpipe == SIG_ERR)
    initial_sigpipe = SIG_DFL;
}

/* 1 if sig, received on the signalfd, asks zkr to end. */
static int is_ending(int sig) {
  size_t i;

  if (sig >= SIGRTMIN && sig <= SIGRTMAX)
    return 1;
  for (i = 0; i < sizeof(ending_signals) / sizeof(ending_signals[0]); i++)
    if (ending_signals[i] == sig)
      return 1;
  return 0;
}

/* INT, TERM and HUP are for the command (a daemon may reload on HUP); the
 * other ending signals are meant for zkr alone. */
static int is_forwarded(int sig) {
  return sig == SIGINT || sig == SIGTERM || sig == SIGHUP;
}

static int read_signal(int sigfd) {
  struct signalfd_siginfo si;

  if (read(sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
    return 0;
  return (int)si.ssi_signo;
}

static int is_job_stop(int sig) {
  return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

typedef struct watcher {
  int sigfd;
  int stop_fd[2];
  void (*cancel)(void *);
  void *arg;
  int sig;
} watcher;

/* Waits for a terminating signal (then cancels) or for the stop request. */
static void *watch_signals(void *p) {
  watcher *w = p;

  for (;;) {
    struct pollfd pf[2] = {{w->stop_fd[0], POLLIN, 0}, {w->sigfd, POLLIN, 0}};
    if (poll(pf, 2, -1) < 0 && errno != EINTR)
      return NULL;
    if (pf[0].revents & POLLIN)
      return NULL;
    if (pf[1].revents & POLLIN) {
      int s = read_signal(w->sigfd);
      if (is_job_stop(s)) {
        /* No command runs yet: Ctrl-Z stops just us, as it would any
         * program; the wait goes on once continued. */
        raise(SIGSTOP);
      } else if (is_ending(s)) {
        w->sig = s;
        w->cancel(w->arg); /* makes fn return soon */
        return NULL;
      }
    }
  }
}

int sv_wait_interruptible(int sigfd, int (*fn)(void *), void (*cancel)(void *), void *arg, int *sig) {
  watcher w = {sigfd, {-1, -1}, cancel, arg, 0};
  pthread_t t;
  int rc;

  /* fn runs on this thread: the lock's hold belongs to the thread that
   * acquired it, and that is the one that later runs and releases. */
  if (pipe2(w.stop_fd, O_CLOEXEC) != 0 || pthread_create(&t, NULL, watch_signals, &w) != 0)
    return ZKR_ENOMEM;
  rc = fn(arg);
  if (write(w.stop_fd[1], "x", 1) != 1)
    abort();
  pthread_join(t, NULL);
  close(w.stop_fd[0]);
  close(w.stop_fd[1]);
  *sig = w.sig;
  return rc;
}

static int64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int exit_status(int st) {
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  if (WIFSIGNALED(st))
    return 128 + WTERMSIG(st);
  return ZKR_TOOL_SOFTWARE;
}

/* --- the process tree -------------------------------------------------------- */

typedef struct proc_list {
  pid_t *pid, *ppid;
  size_t n, cap;
} proc_list;

/* Reads the state letter and the parent of process pid from
 * /proc/PID/stat. Returns 0, or -1 if it is gone. */
static int read_stat(int pid, char *state, int *ppid) {
  char path[64], buf[512], *rp = NULL;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  f = fopen(path, "re");
  if (f == NULL)
    return -1;
  if (fgets(buf, sizeof(buf), f) != NULL)
    rp = strrchr(buf, ')');
  fclose(f);
  /* The name in parentheses may itself hold ") ": the fields after the
   * last one are "S PPID ...". */
  return rp != NULL && sscanf(rp + 1, " %c %d", state, ppid) == 2 ? 0 : -1;
}

/* Lists every process of the system with its parent. */
static int list_procs(proc_list *pl) {
  DIR *d = opendir("/proc");
  struct dirent *e;

  pl->n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    int pid = atoi(e->d_name), ppid;
    char state;

    if (pid <= 0 || read_stat(pid, &state, &ppid) != 0)
      continue; /* not a process, or it ended meanwhile */
    if (pl->n == pl->cap) {
      size_t cap = pl->cap ? pl->cap * 2 : 256;
      pid_t *a = realloc(pl->pid, cap * sizeof(*a)), *b;
      if (a == NULL)
        break;
      pl->pid = a;
      b = realloc(pl->ppid, cap * sizeof(*b));
      if (b == NULL)
        break;
      pl->ppid = b;
      pl->cap = cap;
    }
    pl->pid[pl->n] = pid;
    pl->ppid[pl->n] = ppid;
    pl->n++;
  }
  closedir(d);
  return 0;
}

/* The processes one signal_tree() call has signalled. */
typedef struct pid_set {
  pid_t *pid;
  size_t n, cap;
} pid_set;

static int pid_set_has(const pid_set *ps, pid_t p) {
  size_t i;

  for (i = 0; i < ps->n; i++)
    if (ps->pid[i] == p)
      return 1;
  return 0;
}

static int pid_set_add(pid_set *ps, pid_t p) {
  if (ps->n == ps->cap) {
    size_t cap = ps->cap ? ps->cap * 2 : 64;
    pid_t *a = realloc(ps->pid, cap * sizeof(*a));
    if (a == NULL)
      return -1;
    ps->pid = a;
    ps->cap = cap;
  }
  ps->pid[ps->n++] = p;
  return 0;
}

/* Sends sig to every descendant of zkr found in one walk of /proc that is
 * not in done yet, and adds it there. Returns how many were added. */
static size_t signal_tree_once(int sig, pid_set *done) {
  proc_list pl = {NULL, NULL, 0, 0};
  pid_t self = getpid();
  size_t i, j, found = 0, added = 0;
  int grew = 1;

  if (list_procs(&pl) != 0)
    return 0;
  /* Mark descendants by moving them to the front: a process belongs once
   * its parent is zkr or an already marked process; repeat until no pass
   * adds one (a child may be listed before its parent). */
  while (grew) {
    grew = 0;
    for (i = found; i < pl.n; i++) {
      int in = pl.ppid[i] == self;
      for (j = 0; j < found && !in; j++)
        in = pl.ppid[i] == pl.pid[j];
      if (in) {
        pid_t p = pl.pid[i], pp = pl.ppid[i];
        pl.pid[i] = pl.pid[found];
        pl.ppid[i] = pl.ppid[found];
        pl.pid[found] = p;
        pl.ppid[found] = pp;
        found++;
        grew = 1;
      }
    }
  }
  for (i = 0; i < found; i++) {
    if (pid_set_has(done, pl.pid[i]))
      continue;
    kill(pl.pid[i], sig);
    /* Out of memory, a process is not remembered: it may get sig again,
     * but the walks still end (only remembered ones count as new). */
    if (pid_set_add(done, pl.pid[i]) == 0)
      added++;
  }
  free(pl.pid);
  free(pl.ppid);
  return added;
}

/* Walks of one signal_tree() call at most: a tree that keeps forking new
 * processes (a loop ignoring SIGTERM) would otherwise hold zkr here, and
 * the SIGKILL at the end of the grace must still come. */
#define SIGNAL_WALKS_MAX 64

/* Sends sig once to each process of the tree: a process forked between a
 * walk and its signals is found by the next walk, so walk until one finds
 * no process not yet signalled. Signalling a process twice is not
 * harmless: a TERM trap would run twice. */
static void signal_tree(int sig) {
  pid_set done = {NULL, 0, 0};
  int walks = 0;

  while (walks < SIGNAL_WALKS_MAX && signal_tree_once(sig, &done) > 0)
    walks++;
  free(done.pid);
}

/* Sends a signal the command may trap (SIGTERM) once to each process of the
 * tree, and to none forked after it was sent: walking until no new process
 * appears would also find what a TERM trap starts (its `date`, its
 * `sleep`) and kill it. So the tree is frozen first (SIGSTOP, walked until
 * no new process appears: a stopped process cannot fork), then every
 * process gets sig in one walk, then SIGCONT: a trap runs only then, and
 * its children are never signalled. Our SIGSTOPs are no job-control
 * request (reap() tells them apart). */
static void signal_tree_frozen(int sig) {
  pid_set stopped = {NULL, 0, 0}, done = {NULL, 0, 0};
  int walks = 0;

  while (walks < SIGNAL_WALKS_MAX && signal_tree_once(SIGSTOP, &stopped) > 0)
    walks++;
  signal_tree_once(sig, &done);
  free(done.pid);
  done.pid = NULL;
  done.n = done.cap = 0;
  signal_tree_once(SIGCONT, &done);
  free(done.pid);
  free(stopped.pid);
}

/* --- running the command ---------------------------------------------------- */

typedef struct run {
  const sv_hold *h;
  int tty;       /* the terminal whose foreground we hand on, or -1 */
  pid_t pid;     /* the command's first process and its process group */
  int main_done; /* pid was reaped; status holds its exit status */
  int status;
  int stop_asked;  /* a job-control stop (of the command or of zkr) */
  int ending;      /* zkr was asked to end: once the command's first
                      process has ended, the rest of the tree must go */
  int end_sig;     /* a signal meant for zkr alone ended it: 128+N */
  int lost;        /* the hold was lost */
  int tree_termed; /* the whole tree got SIGTERM */
  int failed;      /* zkr could not wait for signals any more */
  int64_t kill_at; /* when SIGKILL goes to the tree; -1 = not yet */
} run;

/* The terminal zkr may share with the command: only when zkr runs in its
 * foreground (started from a shell's foreground job, or the session's own
 * process). */
static int find_tty(void) {
  int fd;

  for (fd = 0; fd <= 2; fd++)
    if (isatty(fd) && tcgetpgrp(fd) == getpgrp())
      return fd;
  return -1;
}

static pid_t spawn(const run *r, char *const argv[], char *const env_add[]) {
  pid_t parent = getpid(), pid = fork();
  sigset_t all;
  size_t i;

  if (pid != 0)
    return pid;
  /* Child: own process group (so the whole command tree gets our signals),
   * the terminal's foreground if we had it (SIGTTOU is still blocked, so
   * this works from the background group we are in a moment), dies with
   * us, default signal mask, SIGPIPE as zkr found it. */
  setpgid(0, 0);
  if (r->tty >= 0)
    tcsetpgrp(r->tty, getpid());
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(ZKR_TOOL_LOST); /* we died before prctl took effect */
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, NULL);
  signal(SIGPIPE, initial_sigpipe);
  for (i = 0; env_add != NULL && env_add[i] != NULL; i++)
    putenv(env_add[i]);
  execvp(argv[0], argv);
  fprintf(stderr, "zkr: cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(errno == ENOENT ? 127 : 126);
}

/* Gives the terminal's foreground back to zkr's group if the command has
 * it (not when a shell has meanwhile given it to another job). */
static void take_tty(const run *r) {
  if (r->tty >= 0 && tcgetpgrp(r->tty) == r->pid)
    tcsetpgrp(r->tty, getpgrp());
}

/* 1 if process p is stopped now. */
static int is_stopped(pid_t p) {
  char state;
  int ppid;

  return read_stat((int)p, &state, &ppid) == 0 && state == 'T';
}

/* Reaps every child that changed state. Returns 1 once zkr has no child
 * left: as the subreaper, that means the tree is gone. */
static int reap(run *r) {
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG | WUNTRACED);

    if (p < 0)
      return errno == ECHILD;
    if (p == 0)
      return 0;
    if (WIFSTOPPED(st)) {
      /* Our own SIGSTOPs are not a request; a terminal's are, unless the
       * report is stale: a process of the group whose report came after
       * the tree was stopped and continued again. */
      if (is_job_stop(WSTOPSIG(st)) && is_stopped(p))
        r->stop_asked = 1;
      continue;
    }
    if (p == r->pid) {
      r->main_done = 1;
      r->status = exit_status(st);
      take_tty(r);
    }
  }
}

static void lose(run *r) {
  fprintf(stderr, "zkr: %s lost (%s); stopping the command\n", r->h->what, r->h->cause(r->h->arg));
  r->lost = 1;
  r->ending = 1;
}

/* Continues a tree stopped by job control, but only under a valid hold: a
 * lost one means the tree is killed without running again. */
static void resume(run *r) {
  if (!r->lost && !r->h->held(r->h->arg))
    lose(r);
  if (r->lost) {
    r->tree_termed = 1;
    r->kill_at = now_ms();
    signal_tree(SIGKILL);
    return;
  }
  /* `fg` gave zkr the terminal: hand it on (also when zkr started in the
   * background and was stopped because the command read the terminal).
   * After `bg` zkr runs in the background and the command does too. */
  if (r->tty < 0)
    r->tty = find_tty();
  if (r->tty >= 0 && !r->main_done && tcgetpgrp(r->tty) == getpgrp())
    tcsetpgrp(r->tty, r->pid);
  signal_tree(SIGCONT);
}

/* Ctrl-Z stopped the command's group (or zkr got a stop signal): stop the
 * rest of the tree, then zkr itself so the shell sees the job stopped. */
static void stop_all(run *r) {
  r->stop_asked = 0;
  signal_tree(SIGSTOP);
  take_tty(r);
  raise(SIGSTOP);
  resume(r);
}

/* zkr must end: the tree gets SIGTERM now (continued after it, so that a
 * stopped process can act on it) and SIGKILL when the grace period ends. */
static void term_tree(run *r, int grace_ms) {
  int64_t at = now_ms() + grace_ms;

  r->tree_termed = 1;
  signal_tree_frozen(SIGTERM);
  if (r->kill_at < 0 || at < r->kill_at)
    r->kill_at = at;
}

int sv_run(int sigfd, char *const argv[], char *const env_add[], const sv_hold *h, int grace_ms) {
  run r = {h, find_tty(), 0, 0, 0, 0, 0, 0, 0, 0, 0, -1};

  prctl(PR_SET_CHILD_SUBREAPER, 1);
  r.pid = spawn(&r, argv, env_add);
  if (r.pid < 0) {
    fprintf(stderr, "zkr: fork: %s\n", strerror(errno));
    return ZKR_TOOL_SOFTWARE;
  }
  setpgid(r.pid, r.pid); /* both sides set it: no race with the exec */
  if (r.tty >= 0)
    tcsetpgrp(r.tty, r.pid);
  for (;;) {
    struct pollfd pf[2] = {{sigfd, POLLIN, 0}, {h->lost_fd, POLLIN, 0}};
    int timeout = 250; /* safety net; the lost fd normally wakes us */

    if (reap(&r))
      break;
    if (r.stop_asked && !r.lost && r.end_sig == 0)
      stop_all(&r);
    if (!r.lost && !h->held(h->arg)) {
      lose(&r);
      term_tree(&r, grace_ms);
    }
    /* Asked to end and the command's first process is gone: what it left
     * behind must not keep running. */
    if (r.ending && r.main_done && !r.tree_termed)
      term_tree(&r, grace_ms);
    if (r.kill_at >= 0) {
      int64_t left = r.kill_at - now_ms();
      if (left <= 0) {
        signal_tree(SIGKILL);
        left = 50; /* until the SIGCHLDs of the killed processes */
      }
      timeout = left < timeout ? (int)left : timeout;
    }
    if (poll(pf, r.lost ? 1 : 2, timeout) < 0) {
      if (errno != EINTR && !r.failed) {
        /* Signals can no longer be seen: never leave the tree behind. */
        fprintf(stderr, "zkr: poll: %s; killing the command\n", strerror(errno));
        r.failed = 1;
        r.ending = 1;
        r.kill_at = now_ms();
      }
      continue;
    }
    if (pf[0].revents & POLLIN) {
      int s = read_signal(sigfd);
      if (is_job_stop(s)) {
        r.stop_asked = 1;
      } else if (is_forwarded(s) && !r.lost) {
        /* Forward; the command decides whether and how to end (a daemon
         * may reload on SIGHUP): while its first process runs, the lock
         * still covers it. Once that process has ended, the rest of the
         * tree is ended with it (below). */
        kill(-r.pid, s);
        r.ending = 1;
      } else if (is_ending(s) && !is_forwarded(s) && r.end_sig == 0) {
        /* Meant for zkr (USR1 may mean "reopen logs" to the command): zkr
         * ends as the signal asks, but not before the tree. */
        r.end_sig = s;
        r.ending = 1;
        if (!r.tree_termed)
          term_tree(&r, grace_ms);
      }
      /* SIGCONT after a SIGSTOP from outside: the loop's held() check
       * comes before the command is waited for again. */
    }
  }
  if (r.failed)
    return ZKR_TOOL_SOFTWARE;
  if (r.lost)
    return ZKR_TOOL_LOST;
  return r.end_sig != 0 ? 128 + r.end_sig : r.status;
}
