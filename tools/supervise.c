/* Child supervision for the zkr tool: the command runs only while the hold
 * is valid, signals reach it, and it dies with us. */
#define _GNU_SOURCE
#include "supervise.h"

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
#include <time.h>
#include <unistd.h>

int sv_signals(void) {
  sigset_t set;

  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCHLD);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
    return -1;
  return signalfd(-1, &set, SFD_CLOEXEC);
}

static int read_signal(int sigfd) {
  struct signalfd_siginfo si;

  if (read(sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
    return 0;
  return (int)si.ssi_signo;
}

typedef struct watcher {
  int sigfd;
  int stop_fd[2];
  void (*cancel)(void *);
  void *arg;
  int sig;
} watcher;

/* Waits for a signal (then cancels) or for the stop request. */
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
      if (s != 0 && s != SIGCHLD) {
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

/* Reaps the child if it ended; returns 1 and its status then. */
static int reaped(pid_t pid, int *status) {
  int st;

  if (waitpid(pid, &st, WNOHANG) != pid)
    return 0;
  *status = exit_status(st);
  return 1;
}

static pid_t spawn(char *const argv[], char *const env_add[]) {
  pid_t parent = getpid(), pid = fork();
  sigset_t all;
  size_t i;

  if (pid != 0)
    return pid;
  /* Child: own process group (so the whole command tree gets our signals),
   * dies with us, default signal mask. */
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(ZKR_TOOL_LOST); /* we died before prctl took effect */
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, NULL);
  for (i = 0; env_add != NULL && env_add[i] != NULL; i++)
    putenv(env_add[i]);
  execvp(argv[0], argv);
  fprintf(stderr, "zkr: cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(errno == ENOENT ? 127 : 126);
}

int sv_run(int sigfd, char *const argv[], char *const env_add[], const sv_hold *h, int grace_ms) {
  pid_t pid = spawn(argv, env_add);
  int status = 0;
  int64_t kill_at = -1;

  if (pid < 0) {
    fprintf(stderr, "zkr: fork: %s\n", strerror(errno));
    return ZKR_TOOL_SOFTWARE;
  }
  setpgid(pid, pid); /* both sides set it: no race with the exec */
  for (;;) {
    struct pollfd pf[2] = {{sigfd, POLLIN, 0}, {h->lost_fd, POLLIN, 0}};
    int timeout = 250; /* safety net; the lost fd normally wakes us */

    if (kill_at < 0 && !h->held(h->arg)) {
      fprintf(stderr,
              "zkr: %s lost (session expired or past its validity, or node deleted); stopping the command\n",
              h->what);
      kill(-pid, SIGTERM);
      kill_at = now_ms() + grace_ms;
    }
    if (kill_at >= 0) {
      int64_t left = kill_at - now_ms();
      if (left <= 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return ZKR_TOOL_LOST;
      }
      timeout = left < timeout ? (int)left : timeout;
    }
    if (poll(pf, kill_at >= 0 ? 1 : 2, timeout) < 0 && errno != EINTR)
      break;
    if (pf[0].revents & POLLIN) {
      int s = read_signal(sigfd);
      if (s != SIGCHLD && s != 0 && kill_at < 0)
        kill(-pid, s); /* forward; we end when the command does */
    }
    if (reaped(pid, &status))
      return kill_at >= 0 ? ZKR_TOOL_LOST : status;
  }
  kill(-pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return ZKR_TOOL_SOFTWARE;
}
