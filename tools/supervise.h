/* Running a command while a lock or leadership is held, for the zkr tool. */
#ifndef ZKR_TOOLS_SUPERVISE_H
#define ZKR_TOOLS_SUPERVISE_H

#include <zkr/zkr.h>

/* Exit codes of the zkr tool besides the command's own status. */
enum {
  ZKR_TOOL_GAVE_UP = 1,      /* -n / -w: not acquired (or -E CODE) */
  ZKR_TOOL_USAGE = 64,       /* EX_USAGE */
  ZKR_TOOL_UNAVAILABLE = 69, /* EX_UNAVAILABLE: no ZooKeeper */
  ZKR_TOOL_SOFTWARE = 70,    /* EX_SOFTWARE: unexpected library error */
  ZKR_TOOL_LOST = 75,        /* lock or leadership lost while COMMAND ran */
  ZKR_TOOL_NOPERM = 77       /* EX_NOPERM: the server's ACL refused us */
};

/* What the supervisor watches: "still held?", why not, and a wake-up fd
 * that becomes readable when the hold is lost (written by an
 * on_lost/on_change callback). */
typedef struct sv_hold {
  int (*held)(void *arg);
  const char *(*cause)(void *arg); /* why held() became 0, for the message */
  void *arg;
  int lost_fd;
  const char *what; /* "lock /a/b" or "leadership of /a/b", for messages */
} sv_hold;

/* Blocks the signals zkr handles itself in the calling thread (call before
 * any thread is created, so every thread inherits the mask) and returns a
 * signalfd for them, or -1: every catchable signal whose default action
 * would end zkr (HUP, INT, QUIT, TERM, USR1, USR2, ALRM, the realtime
 * ones...; PIPE aside, see sv_ignore_sigpipe), CHLD, and the job-control
 * TSTP, TTIN, TTOU and CONT. */
int sv_signals(void);

/* Ignores SIGPIPE, so that a message to a closed stderr cannot kill zkr
 * and leave the command's tree running; the command gets the disposition
 * zkr started with. */
void sv_ignore_sigpipe(void);

/* Runs fn(arg) on the calling thread while a helper thread watches sigfd:
 * a signal that would end zkr makes it call cancel(arg), which must make
 * fn return; a job-control stop (Ctrl-Z) stops the process and the wait
 * goes on once continued. Returns fn's result; *sig receives the signal
 * that interrupted (0 if none). */
int sv_wait_interruptible(int sigfd, int (*fn)(void *), void (*cancel)(void *), void *arg, int *sig);

/* Runs argv with env additions (NAME=VALUE strings, NULL-terminated) while
 * h says held, and returns only once every process of the command's tree
 * (every descendant of zkr: zkr is their subreaper) has ended.
 *
 * The command leads its own process group; started from a terminal's
 * foreground it gets the terminal while it runs. INT, TERM and HUP are
 * forwarded to its group, and whatever of the tree is left once its first
 * process ended gets SIGTERM; any other signal that would end zkr gives
 * the whole tree SIGTERM at once (SIGKILL after grace_ms) and the result
 * is 128+N. A job-control
 * stop of the command or of zkr stops the whole tree and then zkr; on
 * SIGCONT the tree runs again only if the hold is still valid. If the hold
 * is lost the tree gets SIGTERM, then SIGKILL after grace_ms, and the
 * result is ZKR_TOOL_LOST; otherwise the command's exit status (128+N for
 * a signal death). Each process gets each SIGTERM once. */
int sv_run(int sigfd, char *const argv[], char *const env_add[], const sv_hold *h, int grace_ms);

#endif
