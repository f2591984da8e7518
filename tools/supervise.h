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
  ZKR_TOOL_LOST = 75         /* lock or leadership lost while COMMAND ran */
};

/* What the supervisor watches: "still held?" and a wake-up fd that becomes
 * readable when the hold is lost (written by an on_lost/on_change callback). */
typedef struct sv_hold {
  int (*held)(void *arg);
  void *arg;
  int lost_fd;
  const char *what; /* "lock" or "leadership", for messages */
} sv_hold;

/* Blocks SIGINT, SIGTERM, SIGHUP and SIGCHLD in the calling thread (call
 * before any thread is created, so every thread inherits the mask) and
 * returns a signalfd for them, or -1. */
int sv_signals(void);

/* Runs fn(arg) on the calling thread while a helper thread watches sigfd:
 * a signal makes it call cancel(arg), which must make fn return. Returns
 * fn's result; *sig receives the signal that interrupted (0 if none). */
int sv_wait_interruptible(int sigfd, int (*fn)(void *), void (*cancel)(void *), void *arg, int *sig);

/* Runs argv in its own process group with env additions (NAME=VALUE
 * strings, NULL-terminated) while h says held. Forwards INT/TERM/HUP to the
 * command; if the hold is lost sends SIGTERM, then SIGKILL after grace_ms,
 * prints why, and returns ZKR_TOOL_LOST. Otherwise returns the command's
 * exit status (128+N for a signal death). */
int sv_run(int sigfd, char *const argv[], char *const env_add[], const sv_hold *h, int grace_ms);

#endif
