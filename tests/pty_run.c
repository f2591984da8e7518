/* Runs a command on a new pseudo-terminal, as a terminal emulator would, for
 * the CLI suite's job-control and terminal tests.
 *
 *   pty_run COMMAND [ARG...]
 *
 * COMMAND becomes a session leader with the pty as its controlling
 * terminal. Bytes read from our stdin are written to the terminal as typed
 * keys (so "\x1a" is Ctrl-Z, "\x03" Ctrl-C under the default line
 * discipline); everything the terminal shows is copied to our stdout.
 * Exits with COMMAND's status (128+N for signal N) once it has ended and
 * its output is drained. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Writes all of buf to fd; 0 or -1. */
static int write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct winsize ws = {24, 80, 0, 0};
  int master, st, input_open = 1;
  pid_t pid;

  if (argc < 2) {
    fprintf(stderr, "usage: %s COMMAND [ARG...]\n", argv[0]);
    return 2;
  }
  pid = forkpty(&master, NULL, NULL, &ws);
  if (pid < 0) {
    perror("pty_run: forkpty");
    return 1;
  }
  if (pid == 0) {
    sigset_t none;
    int sig;

    /* A terminal emulator starts its shell with every signal at its
     * default; we may have been started with SIGINT ignored (a background
     * job of a shell without job control), which Ctrl-C tests must not
     * inherit. */
    for (sig = 1; sig < NSIG; sig++)
      signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[1], argv + 1);
    fprintf(stderr, "pty_run: cannot run %s: %s\n", argv[1], strerror(errno));
    _exit(127);
  }
  /* Until the terminal reports the end of its output (EIO once the last
   * process holding the slave side closed it). */
  for (;;) {
    struct pollfd pf[2] = {{master, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    char buf[4096];
    ssize_t n;

    if (poll(pf, input_open ? 2 : 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      n = read(master, buf, sizeof(buf));
      if (n <= 0)
        break;
      if (write_all(STDOUT_FILENO, buf, (size_t)n) != 0)
        break;
    }
    if (input_open && (pf[1].revents & (POLLIN | POLLHUP))) {
      n = read(STDIN_FILENO, buf, sizeof(buf));
      if (n <= 0)
        input_open = 0;
      else if (write_all(master, buf, (size_t)n) != 0)
        break;
    }
  }
  if (waitpid(pid, &st, 0) != pid)
    return 1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
