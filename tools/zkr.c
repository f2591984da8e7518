/* zkr: run commands under a ZooKeeper lock or only while leader, and
 * inspect lock queues. Uses only the public API (<zkr/zkr.h>).
 *
 *   zkr [GLOBAL] lock [-x | -s | --leases N] [-n | -w SECONDS] [-E CODE] PATH -- COMMAND... | PATH -c 'SHELL
 * COMMAND' zkr [GLOBAL] elect [--id ID] PATH -- COMMAND... zkr [GLOBAL] status [--json] PATH zkr [GLOBAL]
 * leader [--watch [--json]] PATH
 *   zkr [GLOBAL] once --key NAME --period P [--tz ZONE] -- COMMAND... | once --key NAME status [--json]
 *
 * Global options may also follow the subcommand. Everything that can be
 * checked without the server (options, paths, the host string) is checked
 * before connecting, so a usage error never waits for a connect timeout.
 */
#define _GNU_SOURCE
#include <zkr/zkr.h>

#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"
#include "text.h"

typedef struct global {
  const char *hosts;
  int session_timeout_ms;
  int connect_timeout_ms;
  int verbose;
  const char *auth_file; /* --auth-file, else $ZKR_AUTH_FILE, else NULL */
  int acl_creator;       /* --acl creator */
} global;

/* Not an exit status: an option did all that was asked (--version,
 * --help); the caller exits 0. */
#define ZKR_TOOL_DONE 1000

/* Bounds of --session-timeout and --connect-timeout, in ms. */
#define TIMEOUT_MIN_MS 100
#define TIMEOUT_MAX_MS 3600000

static const char usage_main[] =
    "usage: zkr [GLOBAL OPTIONS] COMMAND ...\n"
    "\n"
    "  lock   [-x | -s | --leases N] [-n | -w SECONDS] [-E CODE] [--grace SECONDS] [--id ID]\n"
    "         PATH -- COMMAND [ARG...]\n"
    "  lock   [options] PATH -c 'SHELL COMMAND'\n"
    "         run COMMAND while holding the lock at PATH (-s: shared, a read lock;\n"
    "         --leases N: one of the N leases of the semaphore at PATH)\n"
    "  elect  [--id ID] [--grace SECONDS] PATH -- COMMAND [ARG...]\n"
    "         run COMMAND only while this participant leads the election at PATH\n"
    "  status [--json] PATH      list holders and waiters in queue order, with their mode\n"
    "  leader [--watch [--json]] PATH\n"
    "         print the current leader's id (exit 1 if none); --watch: each change\n"
    "  once   --key NAME --period P [--tz ZONE] [-w SECONDS] [-E CODE] -- COMMAND [ARG...]\n"
    "  once   --key NAME status [--json]\n"
    "         run COMMAND once per period across every machine that fires it; list recent runs\n"
    "  barrier set|remove PATH   set or remove the barrier at PATH\n"
    "  barrier wait [-w SECONDS] PATH\n"
    "         wait until the barrier at PATH is removed (exit 1 if still set after -w)\n"
    "  barrier --count N [-w SECONDS] [--grace SECONDS] [--id ID] PATH -- COMMAND [ARG...]\n"
    "         double barrier: once N participants entered, run COMMAND, then leave together\n"
    "\n"
    "Global options (before or after COMMAND):\n"
    "  --hosts H             host:port[,host:port...][/chroot]; else $ZKR_HOSTS, else 127.0.0.1:2181\n"
    "  --session-timeout MS  requested session timeout (default 10000; 100-3600000)\n"
    "  --connect-timeout MS  give up connecting after MS (default 5000; 100-3600000)\n"
    "  --auth-file FILE      digest credentials user:password (else $ZKR_AUTH_FILE)\n"
    "  --acl creator         create nodes readable and writable only by that identity\n"
    "  -v, --verbose         connection, session and lock events on stderr\n"
    "  -V, --version         print the version\n"
    "\n"
    "`zkr COMMAND --help` for details.\n"
    "Exit: COMMAND's status (128+N if killed by signal N); 1 (or -E CODE) not acquired;\n"
    "64 usage (also --leases N unlike the limit PATH records); 69 ZooKeeper unavailable;\n"
    "70 internal error; 75 lock or leadership lost (or our waiting node deleted); 77 not authorized.\n";

static const char usage_lock[] =
    "usage: zkr lock [-x | -s | --leases N] [-n | -w SECONDS] [-E CODE] [--grace SECONDS]\n"
    "                [--id ID] PATH -- COMMAND [ARG...]\n"
    "       zkr lock [options] PATH -c 'SHELL COMMAND'\n"
    "\n"
    "Runs COMMAND while holding the ZooKeeper lock at PATH (Curator-compatible) and exits with\n"
    "its status. Without -s or -x it is a mutex (Curator's InterProcessMutex). -s (--shared)\n"
    "and -x (--exclusive) take the read and the write side of the read-write lock at PATH\n"
    "(Curator's InterProcessReadWriteLock): any number of -s commands run together, none\n"
    "beside a -x, and a -s arriving after a waiting -x queues behind it. Among zkr commands\n"
    "the mutex excludes both sides; Curator's read-write lock does not see a mutex, so a path\n"
    "shared with Curator's read-write lock takes -s and -x only.\n"
    "--leases N takes one lease of the semaphore at PATH (Curator's InterProcessSemaphoreV2):\n"
    "at most N commands run at once; N must match the limit PATH records (else exit 64).\n"
    "-n gives up at once if the lock is held, -w waits at most SECONDS (decimal,\n"
    "e.g. 30 or 0.5); giving up exits 1, or CODE with -E (not 64, 69, 70, 75 or 77: zkr's own).\n"
    "-c runs SHELL COMMAND with /bin/sh -c (after PATH: exactly one argument).\n"
    "The lock is held until every process COMMAND started has ended, background jobs included.\n"
    "If the lock is lost (session expired, disconnected past the session's validity, node\n"
    "deleted), every process of COMMAND's tree gets SIGTERM, SIGKILL after --grace SECONDS\n"
    "(default: half the session's expiry margin, 0.5 s for a 10 s session; COMMAND may overlap\n"
    "the next holder during the grace), and zkr exits 75 once they are gone; 75 also if another\n"
    "client deletes our waiting node. SIGINT, SIGTERM and SIGHUP are forwarded to COMMAND; any\n"
    "other signal that would end zkr ends COMMAND's tree first (exit 128+N); SIGPIPE is ignored.\n"
    "Ctrl-Z stops COMMAND with zkr; it continues only if the lock is still held.\n"
    "COMMAND's environment gets ZKR_LOCK_PATH, ZKR_LOCK_NODE and ZKR_FENCING_TOKEN (of its\n"
    "lock, read or lease node).\n";

static const char usage_elect[] =
    "usage: zkr elect [--id ID] [--grace SECONDS] PATH -- COMMAND [ARG...]\n"
    "       zkr elect [options] PATH -c 'SHELL COMMAND'\n"
    "\n"
    "Joins the election at PATH, waits to lead, then runs COMMAND while leading and exits with\n"
    "its status (resigning). If leadership is lost while COMMAND runs it is stopped as with\n"
    "`zkr lock` and zkr exits 75. --id is what `zkr leader` shows (default host:pid).\n"
    "COMMAND's environment gets ZKR_ELECTION_PATH and ZKR_EPOCH (the term's fencing token;\n"
    "no ZKR_FENCING_TOKEN or ZKR_LOCK_*).\n";

static const char usage_status[] =
    "usage: zkr status [--json] PATH\n"
    "\n"
    "Lists the contenders at PATH in queue order, holders first: role, mode (read, write,\n"
    "lease, leader), participant id, session, fencing token, age, node. Curator and Kazoo\n"
    "contenders are included. For a semaphore (PATH/leases exists): the limit recorded at\n"
    "PATH, then its leases (the first N hold) and the acquirers waiting for one.\n";

static const char usage_leader[] =
    "usage: zkr leader [--watch [--json]] PATH\n"
    "\n"
    "Prints the current leader's id; exit 1 if none. With --watch, prints the leader at start,\n"
    "then its id each time it changes (an empty line when nobody leads) until interrupted;\n"
    "--json prints one JSON object per line instead ({\"leader\":null,...} when nobody leads).\n";

static const char usage_once[] =
    "usage: zkr once --key NAME --period P [--tz ZONE] [--keep N] [-w SECONDS] [-E CODE]\n"
    "                [--grace SECONDS] [--id ID] -- COMMAND [ARG...]\n"
    "       zkr once [options] -c 'SHELL COMMAND'\n"
    "       zkr once --key NAME status [--json]\n"
    "\n"
    "Runs COMMAND at most once per period P across every machine that runs the same line\n"
    "(a cron entry, a timer). Under the lock of the key: if the period is marked done, COMMAND\n"
    "does not run (exit 0, or CODE with -E) and zkr says on stderr who ran it when; else\n"
    "COMMAND runs as under `zkr lock` and, if it exits 0, the period is marked done. A run\n"
    "that fails, dies or loses the lock marks nothing: the next firing in the period runs\n"
    "COMMAND again. The period comes from the ZooKeeper server's clock, not the machine's.\n"
    "P: a count and a unit: Ns, Nm, Nh (dividing a day: 30s, 15m, 1h, 6h), Nd (calendar days),\n"
    "Nw (ISO weeks), in ZONE (a tzdata name such as Europe/Berlin; default UTC): 1d turns at\n"
    "local midnight. NAME is the key's path if it starts with /, else /zkr/once/NAME.\n"
    "A key keeps one period and zone: its first firing records them; another P or ZONE exits 64.\n"
    "--keep N keeps the newest N records (default 100). -w waits at most SECONDS for a run in\n"
    "progress elsewhere (default: as long as it takes), then exits 1.\n"
    "COMMAND's environment gets ZKR_ONCE_PERIOD (the period's id, e.g. 2026-11-29),\n"
    "ZKR_FENCING_TOKEN, ZKR_LOCK_PATH and ZKR_LOCK_NODE.\n"
    "status lists the recent periods: result, exit status, runner, start (UTC), duration,\n"
    "fencing token; --json prints one JSON object. A node under the key's done/ that is no record\n"
    "of zkr once is listed as foreign; at the period's marker name it stops every firing (exit 70).\n"
    "status exits 1 if NAME is no once key (nothing ever ran under it).\n";

static const char usage_barrier[] =
    "usage: zkr barrier set PATH\n"
    "       zkr barrier remove PATH\n"
    "       zkr barrier wait [-w SECONDS] PATH\n"
    "       zkr barrier --count N [-w SECONDS] [-E CODE] [--grace SECONDS] [--id ID]\n"
    "                   PATH -- COMMAND [ARG...]\n"
    "       zkr barrier --count N [options] PATH -c 'SHELL COMMAND'\n"
    "\n"
    "set creates the barrier node PATH, remove deletes it, wait returns once it does not exist\n"
    "(Curator's DistributedBarrier); wait -w gives up after SECONDS (exit 1, or CODE with -E).\n"
    "--count N joins the double barrier at PATH (Curator's DistributedDoubleBarrier): waits until\n"
    "N participants entered, runs COMMAND supervised as under `zkr lock`, then leaves and waits\n"
    "until every participant has left; exits with COMMAND's status. -w bounds the enter and, once\n"
    "COMMAND ended, the leave, each (exit 1, or CODE with -E, if the others did not come, or did\n"
    "not leave, in time). A participant that leaves or dies before all entered breaks the barrier:\n"
    "every waiting participant exits 75 without running COMMAND. If the session is lost while\n"
    "COMMAND runs, COMMAND's tree is stopped as under `zkr lock` and zkr exits 75; lost while\n"
    "leaving after COMMAND succeeded, zkr exits 75 too (whether all left together is unknown).\n"
    "COMMAND's environment gets ZKR_BARRIER_PATH.\n";

static int usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *usage, const char *fmt, ...) {
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    fputs("zkr: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
  }
  fputs(usage, stderr);
  return ZKR_TOOL_USAGE;
}

/* Seconds as a plain decimal number (digits, optionally a point and more
 * digits), 0 to a year. strtod alone would also take "0x10", "1e3", "inf"
 * and leading blanks. */
static int parse_seconds_ms(const char *s, int *ms) {
  size_t digits = strspn(s, "0123456789");
  double v;

  if (digits == 0)
    return -1;
  if (s[digits] == '.') {
    size_t frac = strspn(s + digits + 1, "0123456789");
    if (frac == 0 || s[digits + 1 + frac] != '\0')
      return -1;
  } else if (s[digits] != '\0') {
    return -1;
  }
  v = strtod(s, NULL);
  if (v > 86400.0 * 365)
    return -1;
  *ms = (int)(v * 1000.0 + 0.5);
  return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
  char *end;
  long v = strtol(s, &end, 10);

  if (end == s || *end != '\0' || v < lo || v > hi)
    return -1;
  *out = (int)v;
  return 0;
}

/* What an exit code means when zkr itself returns it, or NULL if zkr never
 * does (then -E may use it without making two outcomes look alike). */
static const char *own_code(int code) {
  switch (code) {
  case ZKR_TOOL_USAGE:
    return "usage error";
  case ZKR_TOOL_UNAVAILABLE:
    return "ZooKeeper unavailable";
  case ZKR_TOOL_SOFTWARE:
    return "internal error";
  case ZKR_TOOL_LOST:
    return "lock lost";
  case ZKR_TOOL_NOPERM:
    return "not authorized";
  default:
    return NULL;
  }
}

/* --- global options ------------------------------------------------------------ */

enum { OPT_HOSTS = 256, OPT_SESSION_TIMEOUT, OPT_CONNECT_TIMEOUT, OPT_AUTH_FILE, OPT_ACL };

/* Spliced into every subcommand's option table, so that global options may
 * come after the subcommand too (as git and etcdctl accept them). */
#define GLOBAL_LONGOPTS                                                                                      \
  {"hosts", required_argument, NULL, OPT_HOSTS},                                                             \
      {"session-timeout", required_argument, NULL, OPT_SESSION_TIMEOUT},                                     \
      {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},                                     \
      {"auth-file", required_argument, NULL, OPT_AUTH_FILE}, {"acl", required_argument, NULL, OPT_ACL},      \
      {"verbose", no_argument, NULL, 'v'}, {"version", no_argument, NULL, 'V'}, {                            \
    "help", no_argument, NULL, 'h'                                                                           \
  }

/* The options of the subcommands that run a command under a recipe (lock,
 * barrier --count, once): waits, exit code on giving up, grace,
 * id, shell command. */
#define RUN_LONGOPTS                                                                                         \
  {"wait", required_argument, NULL, 'w'}, {"timeout", required_argument, NULL, 'w'},                         \
      {"conflict-exit-code", required_argument, NULL, 'E'}, {"grace", required_argument, NULL, 'g'},         \
      {"id", required_argument, NULL, 'i'}, {                                                                \
    "command", required_argument, NULL, 'c'                                                                  \
  }

/* Handles a global option. Returns 0, -1 if opt is not one, or an exit
 * code (printing the version or a usage error) for the caller to return. */
static int global_option(global *g, int opt, const char *usage) {
  switch (opt) {
  case OPT_HOSTS:
    g->hosts = optarg;
    return 0;
  case OPT_SESSION_TIMEOUT:
    if (parse_int(optarg, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS, &g->session_timeout_ms) != 0)
      return usage_error(usage, "bad --session-timeout '%s': expected %d to %d ms", optarg, TIMEOUT_MIN_MS,
                         TIMEOUT_MAX_MS);
    return 0;
  case OPT_CONNECT_TIMEOUT:
    if (parse_int(optarg, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS, &g->connect_timeout_ms) != 0)
      return usage_error(usage, "bad --connect-timeout '%s': expected %d to %d ms", optarg, TIMEOUT_MIN_MS,
                         TIMEOUT_MAX_MS);
    return 0;
  case OPT_AUTH_FILE:
    g->auth_file = optarg;
    return 0;
  case OPT_ACL:
    if (strcmp(optarg, "creator") != 0 && strcmp(optarg, "open") != 0)
      return usage_error(usage, "bad --acl '%s': expected creator or open", optarg);
    g->acl_creator = strcmp(optarg, "creator") == 0;
    return 0;
  case 'v':
    g->verbose = 1;
    return 0;
  case 'V':
    printf("zkr %s\n", zkr_version_string());
    return ZKR_TOOL_DONE;
  default:
    return -1;
  }
}

/* --- connecting ------------------------------------------------------------------ */

/* Reads "user:password" from the first line of path into a new string. */
static char *read_digest(const char *path) {
  FILE *f = fopen(path, "re");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;

  if (f == NULL) {
    fprintf(stderr, "zkr: cannot read the auth file %s: %m\n", path);
    return NULL;
  }
  n = getline(&line, &cap, f);
  fclose(f);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  if (n <= 0 || strchr(line, ':') == NULL || line[0] == ':') {
    fprintf(stderr, "zkr: the auth file %s does not start with a user:password line\n", path);
    free(line);
    return NULL;
  }
  return line;
}

/* Which of the host names of hosts do not resolve: their names, comma
 * separated, into out (empty if all resolve). Returns how many. */
static int unresolved_hosts(const char *hosts, char *out, size_t len) {
  const char *p = hosts, *end = hosts + strcspn(hosts, "/");
  int bad = 0;

  out[0] = '\0';
  while (p < end) {
    size_t n = strcspn(p, ",/");
    char entry[512], *host = entry, *colon;
    struct addrinfo hints, *ai = NULL;

    snprintf(entry, sizeof(entry), "%.*s", (int)n, p);
    p += n + (p[n] == ',');
    colon = strrchr(entry, ':');
    if (colon == NULL)
      continue;
    *colon = '\0';
    if (host[0] == '[' && colon > host && colon[-1] == ']') { /* [v6addr]:port */
      host++;
      colon[-1] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
      size_t used = strlen(out);
      snprintf(out + used, len - used, "%s%s", bad ? ", " : "", host);
      bad++;
    } else {
      freeaddrinfo(ai);
    }
  }
  return bad;
}

static const char *state_name(int state) {
  return state == ZKR_SESSION_CONNECTED ? "connected" : state == ZKR_SESSION_SUSPENDED ? "suspended" : "lost";
}

/* -v: every session state change, on the session's event thread. */
static void on_state_verbose(zkr_session *s, zkr_session_state state, void *arg) {
  (void)arg;
  if (state == ZKR_SESSION_LOST)
    fprintf(stderr, "zkr: session 0x%" PRIx64 " lost (%s)\n", (uint64_t)zkr_session_id(s),
            zkr_lost_reason_str(zkr_session_lost_reason(s)));
  else
    fprintf(stderr, "zkr: session 0x%" PRIx64 " %s\n", (uint64_t)zkr_session_id(s), state_name(state));
}

/* Opens the session, or prints why not and returns the exit code. */
static int open_session(const global *g, zkr_session **s) {
  zkr_session_opts o;
  char *digest = NULL, bad[1024];
  int rc;

  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = g->session_timeout_ms;
  o.connect_timeout_ms = g->connect_timeout_ms;
  if (g->auth_file != NULL) {
    digest = read_digest(g->auth_file);
    if (digest == NULL)
      return ZKR_TOOL_USAGE;
    o.digest = digest;
  }
  if (g->verbose)
    o.on_state = on_state_verbose;
  rc = zkr_session_open(s, g->hosts, &o);
  free(digest); /* copied by the session */
  if (rc == ZKR_OK) {
    if (g->verbose) {
      int negotiated = zkr_session_timeout(*s);
      const char *server = zoo_get_current_server(zkr_session_zhandle(*s));
      fprintf(stderr, "zkr: connected to %s, session 0x%" PRIx64 ", timeout %d ms\n",
              server != NULL ? server : "?", (uint64_t)zkr_session_id(*s), negotiated);
      if (negotiated != g->session_timeout_ms)
        fprintf(stderr, "zkr: warning: the server %s the session timeout from %d to %d ms\n",
                negotiated < g->session_timeout_ms ? "lowered" : "raised", g->session_timeout_ms, negotiated);
    }
    return 0;
  }
  if (unresolved_hosts(g->hosts, bad, sizeof(bad)) > 0 && (rc == ZKR_ECONNECT || rc == ZKR_EINVAL)) {
    fprintf(stderr, "zkr: cannot resolve %s (in --hosts '%s')\n", bad, g->hosts);
    return ZKR_TOOL_UNAVAILABLE;
  }
  if (rc == ZKR_ENOCHROOT) {
    fprintf(stderr, "zkr: the chroot %s does not exist on %s\n", strchr(g->hosts, '/'), g->hosts);
    return ZKR_TOOL_UNAVAILABLE;
  }
  if (rc == ZKR_ENOAUTH) {
    fprintf(stderr, "zkr: %s refused our credentials: %s\n", g->hosts, zkr_strerror(rc));
    return ZKR_TOOL_NOPERM;
  }
  fprintf(stderr, "zkr: cannot connect to ZooKeeper at %s: %s\n", g->hosts, zkr_strerror(rc));
  return rc == ZKR_EINVAL ? ZKR_TOOL_USAGE : ZKR_TOOL_UNAVAILABLE;
}

/* Checks what can be checked before connecting: the host string, the
 * recipe path (noun names it in the message), that --acl creator has
 * credentials. */
static int check_target(const global *g, const char *usage, const char *noun, const char *path) {
  const char *why = zkr_hosts_problem(g->hosts);

  if (why != NULL)
    return usage_error(usage, "bad --hosts '%s': %s", g->hosts, why);
  why = zkr_path_problem(path);
  if (why != NULL) {
    char shown[256];
    return usage_error(usage, "bad %s '%s': %s", noun, printable(path, shown, sizeof(shown)), why);
  }
  if (g->acl_creator && g->auth_file == NULL)
    return usage_error(usage, "--acl creator needs credentials (--auth-file or $ZKR_AUTH_FILE)");
  return 0;
}

static int tool_code(int rc) {
  if (rc == ZKR_ENOAUTH)
    return ZKR_TOOL_NOPERM;
  return rc == ZKR_ECONNLOSS || rc == ZKR_ESESSION || rc == ZKR_ECONNECT || rc == ZKR_ENOCHROOT
             ? ZKR_TOOL_UNAVAILABLE
             : ZKR_TOOL_SOFTWARE;
}

/* A failed recipe call: names the path and the cause. */
static int recipe_error(const char *what, const char *path, int rc) {
  char shown[256];

  fprintf(stderr, "zkr: %s %s: %s\n", what, printable(path, shown, sizeof(shown)), zkr_strerror(rc));
  return tool_code(rc);
}

/* Another client deleted our node while we waited: the command never
 * started, but the place in the queue was lost as a hold would be. */
static int waiting_node_deleted(const char *what, const char *path) {
  char shown[256];

  fprintf(stderr, "zkr: %s %s: our waiting node was deleted by another client; giving up\n", what,
          printable(path, shown, sizeof(shown)));
  return ZKR_TOOL_LOST;
}

/* A pipe that callbacks write to when a hold is lost. */
static int lost_pipe[2] = {-1, -1};

static void notify_lost(void) {
  ssize_t n = write(lost_pipe[1], "x", 1);
  (void)n;
}

/* --- lock and elect: shared parts --------------------------------------------------- */

/* First member of every waiting context: what a signal needs to cancel. */
typedef struct cancel_ctx {
  zkr_session *s;
  int closed; /* the session was closed to interrupt the wait */
} cancel_ctx;

/* A signal while waiting: closing the session wakes the waiter with
 * ZKR_ECLOSED and removes its node at once. */
static void cancel_wait(void *p) {
  cancel_ctx *c = p; /* the first member of the context */

  c->closed = 1;
  zkr_session_close(c->s);
}

/* Why a hold on s was lost, for the message: the hold's own reason if it
 * has one (an election has none; a lock's may not be recorded yet when
 * held() already answers 0 from the validity clock), else the session's; a
 * session neither lost nor past its validity means our node was deleted. */
static const char *hold_cause(zkr_session *s, int reason) {
  if (reason == ZKR_LOST_NONE)
    reason = zkr_session_lost_reason(s);
  if (reason == ZKR_LOST_NONE)
    reason = zkr_session_valid_until(s) <= zkr_monotonic_ns() ? ZKR_LOST_DEADLINE : ZKR_LOST_DELETED;
  return zkr_lost_reason_str(reason);
}

/* What lock and elect parse the same way. */
typedef struct run_opts {
  int grace_ms; /* -1: default_grace_ms() */
  const char *id;
  const char *shell; /* -c: a shell command instead of argv */
} run_opts;

/* The default --grace: half the session's expiry margin (the library
 * steps down max(timeout / 10, 50 ms) before the server can expire the
 * session). After a loss found by that deadline, a tree killed within the
 * grace is gone before the next holder can be granted the lock. */
static int default_grace_ms(zkr_session *s) {
  int margin = zkr_session_timeout(s) / 10;

  return (margin > 50 ? margin : 50) / 2;
}

/* Shared by lock and elect: PATH [--] COMMAND..., PATH -c 'COMMAND', or
 * -c given as an option before PATH. *cmd is argv-like. */
static int split_command(int argc, char **argv, const char *usage, run_opts *ro, const char **path,
                         char ***cmd) {
  static char *shell_argv[4] = {"/bin/sh", "-c", NULL, NULL};

  if (optind >= argc)
    return usage_error(usage, "missing PATH");
  *path = argv[optind++];
  /* -c after PATH (flock's order) takes exactly one argument: anything
   * else would run "-c" as a program after taking the lock. */
  if (ro->shell == NULL && optind < argc && strcmp(argv[optind], "-c") == 0) {
    if (optind + 2 != argc)
      return usage_error(usage, "-c needs exactly one SHELL COMMAND after it (quote it)");
    ro->shell = argv[optind + 1];
    optind += 2;
  }
  if (ro->shell != NULL) {
    if (optind < argc)
      return usage_error(usage, "-c 'SHELL COMMAND' and a COMMAND both given");
    shell_argv[2] = (char *)ro->shell;
    *cmd = shell_argv;
    return 0;
  }
  if (optind < argc && strcmp(argv[optind], "--") == 0)
    optind++;
  if (optind >= argc)
    return usage_error(usage, "missing COMMAND (or -c 'SHELL COMMAND')");
  *cmd = argv + optind;
  return 0;
}

/* Handles an option every command that runs something shares: a global
 * one, -h (prints usage), or a run option. Returns 0, -1 if opt is not one,
 * or an exit code for the caller to return (ZKR_TOOL_DONE: 0). */
static int run_option(global *g, run_opts *ro, int opt, const char *usage) {
  int rc = global_option(g, opt, usage);

  if (rc >= 0)
    return rc;
  switch (opt) {
  case 'h':
    fputs(usage, stdout);
    return ZKR_TOOL_DONE;
  case 'g':
    if (parse_seconds_ms(optarg, &ro->grace_ms) != 0)
      return usage_error(usage, "bad --grace '%s': expected decimal seconds such as 30 or 0.5", optarg);
    return 0;
  case 'i':
    ro->id = optarg;
    return 0;
  case 'c':
    ro->shell = optarg;
    return 0;
  default:
    return -1;
  }
}

/* --- lock --------------------------------------------------------------------------- */

/* What `zkr lock` can hold: the mutex (default), the read (-s) or write
 * (-x) side of the read-write lock, or one lease of a semaphore (--leases N). The
 * supervision (waiting, running the command, stopping it when the hold is
 * lost, releasing) is the same for all three and sees a kind only through
 * these operations. */
typedef struct lock_ctx lock_ctx;

typedef struct lock_kind {
  const char *noun; /* "lock", "read lock", "lease of": names the hold in messages */
  const char *tag;  /* "", " (shared)", " (lease)": after the path in -v messages */
  int write;        /* the read-write lock's side: 1 write (-x), 0 read (-s) */
  int (*make)(lock_ctx *c, const char *path, const char *id, const struct ACL_vector *acl);
  int (*acquire)(lock_ctx *c, int timeout_ms);
  int (*held)(lock_ctx *c);
  /* The fencing token, and the node's full path into buf. */
  int (*describe)(lock_ctx *c, const char *path, int64_t *token, char *buf, size_t len);
  int (*lost_reason)(lock_ctx *c); /* a zkr_lost_reason */
  void (*release)(lock_ctx *c);
  void (*destroy)(lock_ctx *c);
} lock_kind;

struct lock_ctx {
  cancel_ctx cc;
  const lock_kind *kind;
  int timeout_ms;
  zkr_lock *l;        /* mutex */
  zkr_rwlock *rw;     /* read lock */
  zkr_semaphore *sem; /* semaphore */
  int max_leases;     /* --leases N */
  zkr_lease *lease;   /* held lease, NULL if none */
  /* once: its object (whose lock is l), what begin decided, and the
   * command's status, which its release records and may change. */
  zkr_once *once;
  const char *key, *period, *tz;
  int keep;
  zkr_once_verdict verdict;
  zkr_once_record rec;
  int status;
  char *extra_env; /* one more NAME=VALUE for the command, or NULL */
};

/* Every kind's on_lost callback: on the session's event thread, so it only
 * wakes the supervisor. */
static void on_lock_lost(zkr_lock *l, void *arg) {
  (void)l;
  (void)arg;
  notify_lost();
}

static void on_rwlock_lost(zkr_rwlock *rw, void *arg) {
  (void)rw;
  (void)arg;
  notify_lost();
}

static void on_lease_lost(zkr_lease *lease, void *arg) {
  (void)lease;
  (void)arg;
  notify_lost();
}

/* The mutex: zkr_lock. */

static int mutex_make(lock_ctx *c, const char *path, const char *id, const struct ACL_vector *acl) {
  zkr_lock_opts lo;

  memset(&lo, 0, sizeof(lo));
  lo.on_lost = on_lock_lost;
  lo.id = id;
  lo.acl = acl;
  return zkr_lock_new(&c->l, c->cc.s, path, &lo);
}

static int mutex_acquire(lock_ctx *c, int timeout_ms) {
  return zkr_lock_acquire(c->l, timeout_ms);
}

static int mutex_held(lock_ctx *c) {
  return zkr_lock_held(c->l);
}

static int mutex_describe(lock_ctx *c, const char *path, int64_t *token, char *buf, size_t len) {
  (void)path;
  if (zkr_lock_token(c->l, token) != ZKR_OK)
    return ZKR_ENOTHELD;
  return zkr_lock_node(c->l, buf, len);
}

static int mutex_lost_reason(lock_ctx *c) {
  return zkr_lock_lost_reason(c->l);
}

static void mutex_release(lock_ctx *c) {
  zkr_lock_release(c->l); /* ZKR_ESESSION after a loss: nothing left to do */
}

static void mutex_destroy(lock_ctx *c) {
  zkr_lock_free(c->l);
}

static const lock_kind kind_mutex = {
    .noun = "lock",
    .tag = "",
    .make = mutex_make,
    .acquire = mutex_acquire,
    .held = mutex_held,
    .describe = mutex_describe,
    .lost_reason = mutex_lost_reason,
    .release = mutex_release,
    .destroy = mutex_destroy,
};

/* The read-write lock (-s: its read side, -x: its write side): zkr_rwlock.
 * Its holds are per thread; the main thread acquires (sv_wait_interruptible
 * runs do_acquire on it), checks (sv_run) and releases. */

static int rw_make(lock_ctx *c, const char *path, const char *id, const struct ACL_vector *acl) {
  zkr_rwlock_opts ro;

  memset(&ro, 0, sizeof(ro));
  ro.on_lost = on_rwlock_lost;
  ro.id = id;
  ro.acl = acl;
  return zkr_rwlock_new(&c->rw, c->cc.s, path, &ro);
}

static int rw_acquire(lock_ctx *c, int timeout_ms) {
  return c->kind->write ? zkr_rwlock_wrlock(c->rw, timeout_ms) : zkr_rwlock_rdlock(c->rw, timeout_ms);
}

static int rw_held(lock_ctx *c) {
  return zkr_rwlock_held(c->rw, c->kind->write);
}

static int rw_describe(lock_ctx *c, const char *path, int64_t *token, char *buf, size_t len) {
  (void)path;
  if (zkr_rwlock_token(c->rw, c->kind->write, token) != ZKR_OK)
    return ZKR_ENOTHELD;
  return zkr_rwlock_node(c->rw, c->kind->write, buf, len);
}

static int rw_lost_reason(lock_ctx *c) {
  return zkr_rwlock_lost_reason(c->rw);
}

static void rw_release(lock_ctx *c) {
  zkr_rwlock_unlock(c->rw);
}

static void rw_destroy(lock_ctx *c) {
  zkr_rwlock_free(c->rw);
}

static const lock_kind kind_read = {
    .noun = "read lock",
    .tag = " (shared)",
    .make = rw_make,
    .acquire = rw_acquire,
    .held = rw_held,
    .describe = rw_describe,
    .lost_reason = rw_lost_reason,
    .release = rw_release,
    .destroy = rw_destroy,
};

static const lock_kind kind_write = {
    .noun = "write lock",
    .tag = " (exclusive)",
    .write = 1,
    .make = rw_make,
    .acquire = rw_acquire,
    .held = rw_held,
    .describe = rw_describe,
    .lost_reason = rw_lost_reason,
    .release = rw_release,
    .destroy = rw_destroy,
};

/* One lease of a semaphore: zkr_semaphore with --leases N. */

static int lease_make(lock_ctx *c, const char *path, const char *id, const struct ACL_vector *acl) {
  zkr_semaphore_opts so;

  memset(&so, 0, sizeof(so));
  so.on_lost = on_lease_lost;
  so.id = id;
  so.acl = acl;
  return zkr_semaphore_new(&c->sem, c->cc.s, path, c->max_leases, &so);
}

static int lease_acquire(lock_ctx *c, int timeout_ms) {
  return zkr_semaphore_acquire(c->sem, timeout_ms, &c->lease);
}

static int lease_held(lock_ctx *c) {
  return c->lease != NULL && zkr_lease_held(c->lease);
}

static int lease_describe(lock_ctx *c, const char *path, int64_t *token, char *buf, size_t len) {
  (void)path;
  if (c->lease == NULL || zkr_lease_token(c->lease, token) != ZKR_OK)
    return ZKR_ENOTHELD;
  return zkr_lease_node(c->lease, buf, len);
}

static int lease_lost_reason(lock_ctx *c) {
  return c->lease != NULL ? zkr_lease_lost_reason(c->lease) : ZKR_LOST_NONE;
}

static void lease_release(lock_ctx *c) {
  if (c->lease != NULL)
    zkr_lease_release(c->lease); /* frees it, lost or not */
  c->lease = NULL;
}

static void lease_destroy(lock_ctx *c) {
  zkr_semaphore_free(c->sem);
}

static const lock_kind kind_lease = {
    .noun = "lease of",
    .tag = " (lease)",
    .make = lease_make,
    .acquire = lease_acquire,
    .held = lease_held,
    .describe = lease_describe,
    .lost_reason = lease_lost_reason,
    .release = lease_release,
    .destroy = lease_destroy,
};

/* A period's run: zkr_once. Its lock is a plain mutex (c->l), so the
 * mutex's operations watch it; release records the run. */

static int once_make(lock_ctx *c, const char *path, const char *id, const struct ACL_vector *acl) {
  zkr_once_opts oo;
  int rc;

  memset(&oo, 0, sizeof(oo));
  oo.tz = c->tz;
  oo.keep = c->keep;
  oo.on_lost = on_lock_lost;
  oo.id = id;
  oo.acl = acl;
  rc = zkr_once_new(&c->once, c->cc.s, path, c->period, &oo);
  c->l = zkr_once_lock(c->once);
  return rc;
}

static int once_acquire(lock_ctx *c, int timeout_ms) {
  return zkr_once_begin(c->once, timeout_ms, &c->verdict, &c->rec);
}

/* Records the run. A command that succeeded but whose marker could not be
 * written is reported as lost (75), whatever kept it out (the lock lost
 * first, the connection down until the lock's validity ended, another
 * error): 75 is the documented "could not mark" status, meaning the period
 * is not done and the next firing in it runs the command again. */
static void once_release(lock_ctx *c) {
  int rc = zkr_once_done(c->once, c->status);

  if (rc == ZKR_OK || c->status != 0)
    return; /* a failure's record is informational */
  /* The cause: why the lock was lost if it was (the usual case), else the
   * error. Another firing may have run and marked the period meanwhile. */
  fprintf(stderr,
          "zkr: once %s: the command succeeded but period %s could not be marked done (%s); "
          "unless another firing has run it meanwhile, the next firing in this period runs it again\n",
          c->key, c->rec.period,
          rc == ZKR_ENOTHELD && zkr_lock_lost_reason(zkr_once_lock(c->once)) != ZKR_LOST_NONE
              ? zkr_lost_reason_str(zkr_lock_lost_reason(zkr_once_lock(c->once)))
              : zkr_strerror(rc));
  c->status = ZKR_TOOL_LOST;
}

static void once_destroy(lock_ctx *c) {
  zkr_once_free(c->once);
}

static const lock_kind kind_once = {
    .noun = "once key",
    .tag = " (once)",
    .make = once_make,
    .acquire = once_acquire,
    .held = mutex_held,
    .describe = mutex_describe,
    .lost_reason = mutex_lost_reason,
    .release = once_release,
    .destroy = once_destroy,
};

/* The supervisor's view of a lock_ctx. */

static int do_acquire(void *p) {
  lock_ctx *c = p;

  return c->kind->acquire(c, c->timeout_ms);
}

static int lock_held(void *p) {
  lock_ctx *c = p;

  return c->kind->held(c);
}

static const char *lock_cause(void *p) {
  lock_ctx *c = p;

  return hold_cause(c->cc.s, c->kind->lost_reason(c));
}

/* Runs cmd under the hold ctx has, then releases it. */
static int run_locked(const global *g, lock_ctx *ctx, const char *path, char **cmd, int sigfd, int grace_ms) {
  char node[2048], tok[64], what[1100], *env[5], *envp_path = NULL, *envp_node = NULL;
  int64_t token = 0;
  sv_hold h = {lock_held, lock_cause, ctx, lost_pipe[0], what};
  int rc;

  node[0] = '\0';
  if (ctx->kind->describe(ctx, path, &token, node, sizeof(node)) != ZKR_OK && !lock_held(ctx)) {
    /* Lost between the grant and here: the command must not start. */
    fprintf(stderr, "zkr: %s %s lost before the command started (%s)\n", ctx->kind->noun, path,
            lock_cause(ctx));
    ctx->status = ZKR_TOOL_LOST;
    ctx->kind->release(ctx);
    return ZKR_TOOL_LOST;
  }
  if (g->verbose)
    fprintf(stderr, "zkr: holding %s%s as %s, fencing token %" PRId64 "\n", path, ctx->kind->tag, node,
            token);
  snprintf(what, sizeof(what), "%s %s", ctx->kind->noun, path);
  snprintf(tok, sizeof(tok), "ZKR_FENCING_TOKEN=%" PRId64, token);
  if (asprintf(&envp_path, "ZKR_LOCK_PATH=%s", path) < 0 ||
      asprintf(&envp_node, "ZKR_LOCK_NODE=%s", node) < 0) {
    rc = ZKR_TOOL_SOFTWARE;
  } else {
    env[0] = envp_path;
    env[1] = envp_node;
    env[2] = tok;
    env[3] = ctx->extra_env;
    env[4] = NULL;
    rc = sv_run(sigfd, cmd, env, &h, grace_ms);
  }
  ctx->status = rc;
  ctx->kind->release(ctx);
  rc = ctx->status; /* once: a success it could not record */
  if (g->verbose)
    fprintf(stderr, "zkr: released %s\n", path);
  free(envp_path);
  free(envp_node);
  return rc;
}

/* --leases N differs from the limit the semaphore's participants recorded
 * at path: a usage error, though found only once connected. */
static int leases_mismatch(zkr_session *s, const char *path, int max_leases) {
  char data[64], shown[256], recorded[256];
  int len = (int)sizeof(data) - 1;

  if (zoo_get(zkr_session_zhandle(s), path, 0, data, &len, NULL) != ZOK || len < 0)
    len = 0;
  data[len] = '\0';
  fprintf(stderr, "zkr: semaphore %s: --leases %d, but %s%s: %s\n", printable(path, shown, sizeof(shown)),
          max_leases, len > 0 ? "its path records " : "its path records another limit",
          printable(data, recorded, sizeof(recorded)), zkr_strerror(ZKR_EMISMATCH));
  return ZKR_TOOL_USAGE;
}

/* What lock and once do before their verdict: signals, a session (into
 * ctx->cc.s), the recipe object of ctx->kind on path, and the acquisition,
 * which a signal interrupts (*sig). Returns an exit code (> 0) when it got
 * no further, with nothing left open; else what the acquisition returned
 * (a ZKR_ code: 0 or negative). */
static int acquire_for_run(const global *g, lock_ctx *ctx, const char *path, const char *id, int timeout_ms,
                           int *sigfd, int *sig) {
  int rc;

  *sigfd = sv_signals();
  if (*sigfd < 0 || pipe(lost_pipe) != 0)
    return ZKR_TOOL_SOFTWARE;
  sv_ignore_sigpipe();
  rc = open_session(g, &ctx->cc.s);
  if (rc != 0)
    return rc;
  rc = ctx->kind->make(ctx, path, id, g->acl_creator ? &ZOO_CREATOR_ALL_ACL : NULL);
  if (rc != ZKR_OK) {
    zkr_session_close(ctx->cc.s);
    return recipe_error(ctx->kind->noun, path, rc);
  }
  ctx->timeout_ms = timeout_ms;
  if (g->verbose)
    fprintf(stderr, "zkr: waiting for %s%s\n", path, ctx->kind->tag);
  return sv_wait_interruptible(*sigfd, do_acquire, cancel_wait, ctx, sig);
}

static int cmd_lock(global *g, int argc, char **argv) {
  static const struct option longopts[] = {GLOBAL_LONGOPTS,
                                           RUN_LONGOPTS,
                                           {"nonblock", no_argument, NULL, 'n'},
                                           {"exclusive", no_argument, NULL, 'x'},
                                           {"shared", no_argument, NULL, 's'},
                                           {"leases", required_argument, NULL, 'L'},
                                           {NULL, 0, NULL, 0}};
  int timeout_ms = -1, conflict = ZKR_TOOL_GAVE_UP, nonblock = 0, waits = 0, opt, rc, sigfd, sig;
  int exclusive = 0, shared = 0;
  run_opts ro = {-1, NULL, NULL};
  const char *path;
  char **cmd;
  zkr_session *s = NULL;
  lock_ctx ctx;

  memset(&ctx, 0, sizeof(ctx));
  optind = 1;
  while ((opt = getopt_long(argc, argv, "+hvVnw:E:c:xsL:", longopts, NULL)) != -1) {
    rc = run_option(g, &ro, opt, usage_lock);
    if (rc > 0)
      return rc == ZKR_TOOL_DONE ? 0 : rc;
    if (rc == 0)
      continue;
    switch (opt) {
    case 'n':
      nonblock = 1;
      timeout_ms = 0;
      break;
    case 'w':
      waits = 1;
      if (parse_seconds_ms(optarg, &timeout_ms) != 0)
        return usage_error(usage_lock, "bad -w '%s': expected decimal seconds such as 30 or 0.5", optarg);
      break;
    case 'E':
      if (parse_int(optarg, 0, 255, &conflict) != 0)
        return usage_error(usage_lock, "bad -E '%s': expected an exit code, 0 to 255", optarg);
      if (own_code(conflict) != NULL)
        return usage_error(usage_lock, "bad -E %d: zkr itself exits %d (%s); pick another code", conflict,
                           conflict, own_code(conflict));
      break;
    case 'x':
      exclusive = 1;
      break;
    case 's':
      shared = 1;
      break;
    case 'L':
      if (parse_int(optarg, 1, INT32_MAX, &ctx.max_leases) != 0)
        return usage_error(usage_lock, "bad --leases '%s': expected a number of leases, 1 or more", optarg);
      break;
    default:
      return usage_error(usage_lock, NULL);
    }
  }
  if (nonblock && waits)
    return usage_error(usage_lock, "-n and -w exclude each other: -n is -w 0");
  if (exclusive && shared)
    return usage_error(usage_lock, "-x (exclusive) and -s (shared) exclude each other");
  if (ctx.max_leases > 0 && (exclusive || shared))
    return usage_error(usage_lock, "--leases (a semaphore) excludes %s",
                       shared ? "-s (shared)" : "-x (exclusive)");
  rc = split_command(argc, argv, usage_lock, &ro, &path, &cmd);
  if (rc == 0)
    rc = check_target(g, usage_lock, "lock path", path);
  if (rc != 0)
    return rc;
  ctx.kind = ctx.max_leases > 0 ? &kind_lease : shared ? &kind_read : exclusive ? &kind_write : &kind_mutex;

  rc = acquire_for_run(g, &ctx, path, ro.id, timeout_ms, &sigfd, &sig);
  if (rc > 0)
    return rc;
  s = ctx.cc.s;
  if (rc == ZKR_OK && sig == 0)
    rc = run_locked(g, &ctx, path, cmd, sigfd, ro.grace_ms >= 0 ? ro.grace_ms : default_grace_ms(s));
  else if (sig != 0)
    rc = 128 + sig;
  else if (rc == ZKR_ETIMEDOUT)
    rc = conflict;
  else if (rc == ZKR_ELOST)
    rc = waiting_node_deleted(ctx.kind->noun, path);
  else if (rc == ZKR_EMISMATCH)
    rc = leases_mismatch(s, path, ctx.max_leases);
  else
    rc = recipe_error(ctx.kind->noun, path, rc);
  ctx.kind->destroy(&ctx);
  if (!ctx.cc.closed)
    zkr_session_close(s);
  return rc;
}

/* --- elect ---------------------------------------------------------------------------- */

static void on_leader_change(zkr_election *e, int leader, void *arg) {
  (void)e;
  (void)arg;
  if (!leader)
    notify_lost();
}

typedef struct elect_ctx {
  cancel_ctx cc;
  zkr_election *e;
} elect_ctx;

static int do_await(void *p) {
  return zkr_election_await(((elect_ctx *)p)->e, -1);
}

static int leading(void *p) {
  return zkr_election_is_leader(((elect_ctx *)p)->e);
}

static const char *leadership_cause(void *p) {
  return hold_cause(((elect_ctx *)p)->cc.s, ZKR_LOST_NONE);
}

static int run_leading(const global *g, elect_ctx *ctx, const char *path, char **cmd, int sigfd,
                       int grace_ms) {
  char epoch[64], what[1100], *envp_path, *env[3];
  int64_t ep = 0;
  sv_hold h = {leading, leadership_cause, ctx, lost_pipe[0], what};
  int rc;

  if (zkr_election_epoch(ctx->e, &ep) != ZKR_OK) { /* lost between await and here */
    fprintf(stderr, "zkr: leadership of %s lost before the command started (%s)\n", path,
            leadership_cause(ctx));
    return ZKR_TOOL_LOST;
  }
  if (g->verbose)
    fprintf(stderr, "zkr: leading %s, epoch %" PRId64 "\n", path, ep);
  snprintf(what, sizeof(what), "leadership of %s", path);
  snprintf(epoch, sizeof(epoch), "ZKR_EPOCH=%" PRId64, ep);
  if (asprintf(&envp_path, "ZKR_ELECTION_PATH=%s", path) < 0)
    return ZKR_TOOL_SOFTWARE;
  env[0] = envp_path;
  env[1] = epoch;
  env[2] = NULL;
  rc = sv_run(sigfd, cmd, env, &h, grace_ms);
  free(envp_path);
  return rc;
}

static int cmd_elect(global *g, int argc, char **argv) {
  static const struct option longopts[] = {GLOBAL_LONGOPTS,
                                           {"id", required_argument, NULL, 'i'},
                                           {"grace", required_argument, NULL, 'g'},
                                           {"command", required_argument, NULL, 'c'},
                                           {NULL, 0, NULL, 0}};
  int opt, rc, sigfd, sig = 0;
  run_opts ro = {-1, NULL, NULL};
  const char *path;
  char **cmd;
  zkr_session *s = NULL;
  zkr_election_opts eo;
  elect_ctx ectx = {{NULL, 0}, NULL};

  optind = 1;
  while ((opt = getopt_long(argc, argv, "+hvVc:", longopts, NULL)) != -1) {
    rc = run_option(g, &ro, opt, usage_elect);
    if (rc > 0)
      return rc == ZKR_TOOL_DONE ? 0 : rc;
    if (rc == 0)
      continue;
    return usage_error(usage_elect, NULL);
  }
  rc = split_command(argc, argv, usage_elect, &ro, &path, &cmd);
  if (rc == 0)
    rc = check_target(g, usage_elect, "election path", path);
  if (rc != 0)
    return rc;
  sigfd = sv_signals();
  if (sigfd < 0 || pipe(lost_pipe) != 0)
    return ZKR_TOOL_SOFTWARE;
  sv_ignore_sigpipe();
  rc = open_session(g, &s);
  if (rc != 0)
    return rc;
  memset(&eo, 0, sizeof(eo));
  eo.id = ro.id;
  eo.on_change = on_leader_change;
  eo.acl = g->acl_creator ? &ZOO_CREATOR_ALL_ACL : NULL;
  rc = zkr_election_new(&ectx.e, s, path, &eo);
  if (rc != ZKR_OK) {
    zkr_session_close(s);
    return recipe_error("elect", path, rc);
  }
  ectx.cc.s = s;
  rc = zkr_election_join(ectx.e);
  if (rc == ZKR_OK)
    rc = sv_wait_interruptible(sigfd, do_await, cancel_wait, &ectx, &sig);
  if (rc == ZKR_OK && sig == 0)
    rc = run_leading(g, &ectx, path, cmd, sigfd, ro.grace_ms >= 0 ? ro.grace_ms : default_grace_ms(s));
  else if (sig != 0)
    rc = 128 + sig;
  else if (rc == ZKR_ELOST)
    rc = waiting_node_deleted("election", path);
  else
    rc = recipe_error("elect", path, rc);
  zkr_election_free(ectx.e);
  if (!ectx.cc.closed)
    zkr_session_close(s);
  return rc;
}

/* --- barrier -------------------------------------------------------------------------- */

typedef struct barrier_ctx {
  cancel_ctx cc;
  zkr_barrier *b;
  zkr_double_barrier *db;
  int timeout_ms;
} barrier_ctx;

static int do_barrier_wait(void *p) {
  barrier_ctx *c = p;

  return zkr_barrier_wait(c->b, c->timeout_ms);
}

static int do_enter(void *p) {
  barrier_ctx *c = p;

  return zkr_double_barrier_enter(c->db, c->timeout_ms);
}

static int do_leave(void *p) {
  barrier_ctx *c = p;

  return zkr_double_barrier_leave(c->db, c->timeout_ms);
}

/* A double barrier holds nothing but our session: while it is valid, our
 * node is there and the others wait for us in leave. */
static int session_valid(void *p) {
  barrier_ctx *c = p;

  return zkr_session_get_state(c->cc.s) != ZKR_SESSION_LOST &&
         zkr_monotonic_ns() < zkr_session_valid_until(c->cc.s);
}

static const char *session_cause(void *p) {
  return hold_cause(((barrier_ctx *)p)->cc.s, ZKR_LOST_NONE);
}

/* On the session's event thread: wakes the supervisor. */
static void on_barrier_state(zkr_session *s, zkr_session_state state, void *arg) {
  (void)s;
  (void)arg;
  if (state == ZKR_SESSION_LOST)
    notify_lost();
}

/* Enter, COMMAND, leave. Returns the exit code. */
static int run_double_barrier(const global *g, barrier_ctx *ctx, const char *path, char **cmd, int sigfd,
                              int grace_ms, int conflict) {
  char what[1100], *envp_path = NULL, *env[2];
  sv_hold h = {session_valid, session_cause, ctx, lost_pipe[0], what};
  int rc, sig = 0, left;

  if (g->verbose)
    fprintf(stderr, "zkr: entering %s\n", path);
  rc = sv_wait_interruptible(sigfd, do_enter, cancel_wait, ctx, &sig);
  if (sig != 0)
    return 128 + sig;
  if (rc == ZKR_ETIMEDOUT) {
    fprintf(stderr, "zkr: double barrier %s: not all participants came before -w ran out\n", path);
    return conflict;
  }
  if (rc == ZKR_EBROKEN) {
    fprintf(stderr, "zkr: double barrier %s: %s\n", path, zkr_strerror(rc));
    return ZKR_TOOL_LOST;
  }
  if (rc == ZKR_ELOST)
    return waiting_node_deleted("double barrier", path);
  if (rc != ZKR_OK)
    return recipe_error("double barrier", path, rc);
  if (g->verbose)
    fprintf(stderr, "zkr: entered %s\n", path);
  snprintf(what, sizeof(what), "double barrier %s", path);
  if (asprintf(&envp_path, "ZKR_BARRIER_PATH=%s", path) < 0)
    return ZKR_TOOL_SOFTWARE;
  env[0] = envp_path;
  env[1] = NULL;
  rc = sv_run(sigfd, cmd, env, &h, grace_ms);
  free(envp_path);
  if (rc == ZKR_TOOL_LOST)
    return rc; /* our node went with the session: nothing to leave */
  left = sv_wait_interruptible(sigfd, do_leave, cancel_wait, ctx, &sig);
  if (sig != 0)
    return 128 + sig;
  if (g->verbose && left == ZKR_OK)
    fprintf(stderr, "zkr: left %s\n", path);
  /* COMMAND's own failure comes first; then why the leave did not end
   * together with the others. */
  if (rc != 0 || left == ZKR_OK)
    return rc;
  if (left == ZKR_ETIMEDOUT) {
    fprintf(stderr, "zkr: double barrier %s: others still inside when -w ran out\n", path);
    return conflict;
  }
  if (left == ZKR_ESESSION || left == ZKR_ECLOSED) {
    /* COMMAND ran and succeeded, but whether all left together is unknown:
     * not "unavailable before the command" (69), which a wrapper retries. */
    fprintf(stderr, "zkr: double barrier %s: %s while leaving (the command had exited 0)\n", path,
            zkr_strerror(left));
    return ZKR_TOOL_LOST;
  }
  return recipe_error("double barrier", path, left);
}

static int cmd_barrier(global *g, int argc, char **argv) {
  static const struct option longopts[] = {
      GLOBAL_LONGOPTS, RUN_LONGOPTS, {"count", required_argument, NULL, 'N'}, {NULL, 0, NULL, 0}};
  int count = 0, timeout_ms = -1, conflict = ZKR_TOOL_GAVE_UP, opt, rc, sigfd, sig = 0;
  run_opts ro = {-1, NULL, NULL};
  const char *action = NULL, *path;
  char **cmd = NULL;
  zkr_session *s = NULL;
  zkr_barrier_opts bo;
  barrier_ctx ctx;

  memset(&ctx, 0, sizeof(ctx));
  optind = 1;
  /* Options may come before and after the action word (set, remove,
   * wait): getopt stops at it, and goes on after it. */
  for (;;) {
    while ((opt = getopt_long(argc, argv, "+hvVw:E:c:", longopts, NULL)) != -1) {
      rc = run_option(g, &ro, opt, usage_barrier);
      if (rc > 0)
        return rc == ZKR_TOOL_DONE ? 0 : rc;
      if (rc == 0)
        continue;
      switch (opt) {
      case 'N':
        if (parse_int(optarg, 1, INT32_MAX, &count) != 0)
          return usage_error(usage_barrier, "bad --count '%s': expected a number of participants, 1 or more",
                             optarg);
        break;
      case 'w':
        if (parse_seconds_ms(optarg, &timeout_ms) != 0)
          return usage_error(usage_barrier, "bad -w '%s': expected decimal seconds such as 30 or 0.5",
                             optarg);
        break;
      case 'E':
        if (parse_int(optarg, 0, 255, &conflict) != 0)
          return usage_error(usage_barrier, "bad -E '%s': expected an exit code, 0 to 255", optarg);
        if (own_code(conflict) != NULL)
          return usage_error(usage_barrier, "bad -E %d: zkr itself exits %d (%s); pick another code",
                             conflict, conflict, own_code(conflict));
        break;
      default:
        return usage_error(usage_barrier, NULL);
      }
    }
    if (action != NULL || optind >= argc ||
        (strcmp(argv[optind], "set") != 0 && strcmp(argv[optind], "remove") != 0 &&
         strcmp(argv[optind], "wait") != 0))
      break;
    action = argv[optind++];
  }
  if (action != NULL && count > 0)
    return usage_error(usage_barrier, "--count (a double barrier) excludes %s", action);
  if (action == NULL && count == 0)
    return usage_error(usage_barrier, "expected set, remove, wait or --count N");
  if (action != NULL && (ro.shell != NULL || ro.id != NULL || ro.grace_ms >= 0))
    return usage_error(usage_barrier, "-c, --id and --grace go with --count");
  if (action != NULL && strcmp(action, "wait") != 0 && timeout_ms >= 0)
    return usage_error(usage_barrier, "-w goes with wait or --count");
  if (action != NULL) {
    if (argc - optind != 1)
      return usage_error(usage_barrier, "expected exactly one PATH");
    path = argv[optind];
    rc = 0;
  } else {
    rc = split_command(argc, argv, usage_barrier, &ro, &path, &cmd);
  }
  if (rc == 0)
    rc = check_target(g, usage_barrier, "barrier path", path);
  if (rc != 0)
    return rc;

  sigfd = sv_signals();
  if (sigfd < 0 || pipe(lost_pipe) != 0)
    return ZKR_TOOL_SOFTWARE;
  sv_ignore_sigpipe();
  rc = open_session(g, &s);
  if (rc != 0)
    return rc;
  ctx.cc.s = s;
  ctx.timeout_ms = timeout_ms;
  memset(&bo, 0, sizeof(bo));
  bo.id = ro.id;
  bo.acl = g->acl_creator ? &ZOO_CREATOR_ALL_ACL : NULL;
  if (action != NULL)
    rc = zkr_barrier_new(&ctx.b, s, path, &bo);
  else
    rc = zkr_double_barrier_new(&ctx.db, s, path, count, &bo);
  if (rc != ZKR_OK) {
    zkr_session_close(s);
    return recipe_error("barrier", path, rc);
  }
  if (action != NULL && strcmp(action, "set") == 0) {
    rc = zkr_barrier_set(ctx.b);
  } else if (action != NULL && strcmp(action, "remove") == 0) {
    rc = zkr_barrier_remove(ctx.b);
    if (rc == ZKR_EZK) { /* the one ZooKeeper answer remove leaves to us: children */
      fprintf(stderr, "zkr: barrier %s: the node has children, so it is no barrier of ours; not removed\n",
              path);
      rc = ZKR_TOOL_USAGE;
    }
  } else if (action != NULL) {
    rc = sv_wait_interruptible(sigfd, do_barrier_wait, cancel_wait, &ctx, &sig);
    if (sig != 0)
      rc = 128 + sig;
    else if (rc == ZKR_ETIMEDOUT)
      rc = conflict;
  } else {
    rc = zkr_session_add_listener(s, on_barrier_state, NULL, NULL);
    if (rc == ZKR_OK)
      rc = run_double_barrier(g, &ctx, path, cmd, sigfd, ro.grace_ms >= 0 ? ro.grace_ms : default_grace_ms(s),
                              conflict);
  }
  if (rc < 0)
    rc = recipe_error("barrier", path, rc);
  zkr_barrier_free(ctx.b);
  zkr_double_barrier_free(ctx.db);
  if (!ctx.cc.closed)
    zkr_session_close(s);
  return rc;
}

/* --- status, leader ------------------------------------------------------------------- */

static const char *protocol_of(const char *node) {
  return strstr(node, "__lock__") != NULL || strstr(node, "__rlock__") != NULL ? "kazoo" : "curator";
}

/* How `zkr status` names a contender's mode (zkr_participant.mode). */
static const char *mode_name(int mode) {
  switch (mode) {
  case ZKR_MODE_SHARED:
    return "read";
  case ZKR_MODE_LEASE:
    return "lease";
  case ZKR_MODE_LEADER:
    return "leader";
  default:
    return "write";
  }
}

/* One line of `zkr status`: a contender of zkr_participants() with the
 * role and mode worked out for the recipe at the path. */
typedef struct contender {
  const zkr_participant *p; /* borrowed from a listing */
  const char *mode;         /* "read", "write", "lease", "leader" */
  const char *dir;          /* "" or the subdirectory ("leases/", "locks/") */
  int holder;
} contender;

/* What `zkr status` shows of a path: its contenders in queue order and,
 * for a semaphore, its recorded limit. */
typedef struct status_view {
  zkr_participant *queue, *leases, *locks; /* caller owns: status_view_free() */
  size_t nqueue, nleases, nlocks;
  contender *c;
  size_t n;
  int semaphore; /* PATH/leases exists */
  int limit;     /* recorded max_leases, -1 if none or unreadable */
} status_view;

static void status_view_free(status_view *v) {
  zkr_participants_free(v->queue, v->nqueue);
  zkr_participants_free(v->leases, v->nleases);
  zkr_participants_free(v->locks, v->nlocks);
  free(v->c);
}

/* A failed raw ZooKeeper call: names the path and the cause. */
static int zk_error(const char *path, int zrc) {
  char shown[256];

  fprintf(stderr, "zkr: listing %s: %s\n", printable(path, shown, sizeof(shown)), zerror(zrc));
  if (zrc == ZNOAUTH)
    return ZKR_TOOL_NOPERM;
  return zrc == ZCONNECTIONLOSS || zrc == ZSESSIONEXPIRED || zrc == ZOPERATIONTIMEOUT || zrc == ZCLOSING
             ? ZKR_TOOL_UNAVAILABLE
             : ZKR_TOOL_SOFTWARE;
}

/* The semaphore's layout (Curator's InterProcessSemaphoreV2): leases under
 * PATH/leases, acquirers queued on the mutex PATH/locks. The first limit
 * leases hold; one beyond (there is at most one: the mutex holder's) waits
 * for a lease to go. The mutex's other contenders wait too; its head is
 * the acquirer whose lease is listed already, if its session has one. */
static int semaphore_view(zkr_session *s, const char *path, status_view *v) {
  char dir[2048], data[32];
  int len = (int)sizeof(data) - 1, zrc, rc;
  size_t i;

  zrc = zoo_get(zkr_session_zhandle(s), path, 0, data, &len, NULL);
  if (zrc != ZOK && zrc != ZNONODE)
    return zk_error(path, zrc);
  data[zrc == ZOK && len > 0 ? len : 0] = '\0';
  if (parse_int(data, 1, INT32_MAX, &v->limit) != 0)
    v->limit = -1;
  snprintf(dir, sizeof(dir), "%s/leases", path);
  rc = zkr_participants(s, dir, &v->leases, &v->nleases);
  if (rc == ZKR_OK) {
    snprintf(dir, sizeof(dir), "%s/locks", path);
    rc = zkr_participants(s, dir, &v->locks, &v->nlocks);
  }
  if (rc != ZKR_OK)
    return recipe_error("listing", dir, rc);
  v->c = calloc(v->nleases + v->nlocks + 1, sizeof(*v->c));
  if (v->c == NULL)
    return ZKR_TOOL_SOFTWARE;
  for (i = 0; i < v->nleases; i++) {
    contender *c = &v->c[v->n++];
    c->p = &v->leases[i];
    c->mode = "lease";
    c->dir = "leases/";
    c->holder = v->leases[i].holder; /* the first max_leases, as recorded */
  }
  for (i = 0; i < v->nlocks; i++) {
    contender *c = &v->c[v->n];
    size_t j;
    int listed = 0;

    for (j = 0; j < v->nleases && i == 0; j++)
      listed |= v->leases[j].session == v->locks[i].session;
    if (listed)
      continue;
    c->p = &v->locks[i];
    c->mode = "lease";
    c->dir = "locks/";
    c->holder = 0;
    v->n++;
  }
  return 0;
}

/* Fills v for path: a semaphore if PATH/leases exists, else the contender
 * queue at path. Returns 0 or an exit code (the message printed). */
static int status_view_load(zkr_session *s, const char *path, status_view *v) {
  char dir[2048];
  struct Stat st;
  size_t i;
  int zrc, rc;

  memset(v, 0, sizeof(*v));
  v->limit = -1;
  snprintf(dir, sizeof(dir), "%s/leases", path);
  zrc = zoo_exists(zkr_session_zhandle(s), dir, 0, &st);
  if (zrc != ZOK && zrc != ZNONODE)
    return zk_error(path, zrc);
  if (zrc == ZOK) {
    v->semaphore = 1;
    return semaphore_view(s, path, v);
  }
  rc = zkr_participants(s, path, &v->queue, &v->nqueue);
  if (rc != ZKR_OK)
    return recipe_error("listing", path, rc);
  v->c = calloc(v->nqueue + 1, sizeof(*v->c));
  if (v->c == NULL)
    return ZKR_TOOL_SOFTWARE;
  for (i = 0; i < v->nqueue; i++) {
    v->c[i].p = &v->queue[i];
    v->c[i].mode = mode_name(v->queue[i].mode);
    v->c[i].dir = "";
    v->c[i].holder = v->queue[i].holder;
  }
  v->n = v->nqueue;
  return 0;
}

/* Parses the options of status and leader: --json, and --watch for leader
 * (watch == NULL for status). Returns 0 with optind at PATH, or an exit
 * code. */
static int parse_query(global *g, int argc, char **argv, const char *usage, int *json, int *watch) {
  static const struct option longopts[] = {GLOBAL_LONGOPTS,
                                           {"json", no_argument, NULL, 'j'},
                                           {"watch", no_argument, NULL, 'W'},
                                           {NULL, 0, NULL, 0}};
  int opt, rc;

  optind = 1;
  while ((opt = getopt_long(argc, argv, "+hvV", longopts, NULL)) != -1) {
    rc = global_option(g, opt, usage);
    if (rc > 0)
      return rc;
    if (rc == 0)
      continue;
    if (opt == 'h') {
      fputs(usage, stdout);
      return ZKR_TOOL_DONE;
    }
    if (opt == 'j')
      *json = 1;
    else if (opt == 'W' && watch != NULL)
      *watch = 1;
    else
      return usage_error(usage, NULL);
  }
  if (optind != argc - 1)
    return usage_error(usage, "expected exactly one PATH");
  return check_target(g, usage, "path", argv[optind]);
}

static int list(const global *g, const char *path, zkr_session **s, zkr_participant **p, size_t *n) {
  int rc = open_session(g, s);

  if (rc != 0)
    return rc;
  rc = zkr_participants(*s, path, p, n);
  if (rc != ZKR_OK) {
    zkr_session_close(*s);
    return recipe_error("listing", path, rc);
  }
  return 0;
}

static void print_status_json(const char *path, const status_view *v) {
  char node[2048];
  size_t i;

  printf("{\"path\":");
  json_string(stdout, path);
  if (v->semaphore && v->limit >= 0)
    printf(",\"limit\":%d", v->limit);
  else if (v->semaphore)
    printf(",\"limit\":null");
  printf(",\"participants\":[");
  for (i = 0; i < v->n; i++) {
    const zkr_participant *p = v->c[i].p;
    printf("%s{\"role\":\"%s\",\"mode\":\"%s\",\"id\":", i ? "," : "", v->c[i].holder ? "holder" : "waiter",
           v->c[i].mode);
    json_string(stdout, p->id);
    snprintf(node, sizeof(node), "%s%s", v->c[i].dir, p->node);
    printf(",\"node\":");
    json_string(stdout, node);
    printf(",\"session\":\"0x%" PRIx64 "\",\"token\":%" PRId64 ",\"age_ms\":%" PRId64 ",\"protocol\":\"%s\"}",
           (uint64_t)p->session, p->token, p->age_ms, protocol_of(p->node));
  }
  printf("]}\n");
}

static void print_status_table(const char *path, const status_view *v) {
  size_t i, held = 0;

  if (v->semaphore) {
    char shown[256];
    for (i = 0; i < v->n; i++)
      held += v->c[i].holder;
    printf("semaphore %s: ", printable(path, shown, sizeof(shown)));
    if (v->limit >= 0)
      printf("limit %d, %zu held\n", v->limit, held);
    else
      printf("no limit recorded, %zu held\n", held);
  }
  printf("%-7s %-6s %-24s %-18s %-12s %-9s %s\n", "ROLE", "MODE", "ID", "SESSION", "TOKEN", "AGE", "NODE");
  for (i = 0; i < v->n; i++) {
    const zkr_participant *p = v->c[i].p;
    char age[32], id[1024], node[1024];
    snprintf(age, sizeof(age), "%.1fs", (double)p->age_ms / 1000.0);
    printf("%-7s %-6s %-24s 0x%-16" PRIx64 " %-12" PRId64 " %-9s %s%s\n",
           v->c[i].holder ? "holder" : "waiter", v->c[i].mode, printable(p->id, id, sizeof(id)),
           (uint64_t)p->session, p->token, age, v->c[i].dir, printable(p->node, node, sizeof(node)));
  }
}

static int cmd_status(global *g, int argc, char **argv) {
  int json = 0, rc;
  zkr_session *s;
  status_view v;

  rc = parse_query(g, argc, argv, usage_status, &json, NULL);
  if (rc != 0)
    return rc == ZKR_TOOL_DONE ? 0 : rc;
  rc = open_session(g, &s);
  if (rc != 0)
    return rc;
  rc = status_view_load(s, argv[optind], &v);
  if (rc == 0 && json)
    print_status_json(argv[optind], &v);
  else if (rc == 0)
    print_status_table(argv[optind], &v);
  status_view_free(&v);
  zkr_session_close(s);
  return rc;
}

/* One line for a leader: its id (printable, empty if none), or a JSON
 * object with the epoch. */
static void print_leader(const char *id, int64_t epoch, int json) {
  if (json) {
    printf("{\"leader\":");
    if (id != NULL)
      json_string(stdout, id);
    else
      printf("null");
    printf(",\"epoch\":%" PRId64 "}\n", epoch);
  } else {
    char shown[1024];
    printf("%s\n", id != NULL ? printable(id, shown, sizeof(shown)) : "");
  }
  fflush(stdout);
}

typedef struct watch_ctx {
  cancel_ctx cc;
  const char *path;
  int json;
} watch_ctx;

/* --watch: one line per change of leader, until a signal closes the
 * session (then zkr_election_observe returns ZKR_ECLOSED). */
static int do_watch(void *p) {
  watch_ctx *w = p;
  int64_t epoch = 0;
  char id[4096];
  int rc;

  /* The first look does not wait: the leader at start, or nobody (a
   * leader differing from "none known" times out at once). */
  rc = zkr_election_observe(w->cc.s, w->path, &epoch, id, sizeof(id), 0);
  if (rc != ZKR_OK && rc != ZKR_ETIMEDOUT)
    return rc;
  for (;;) {
    print_leader(epoch != 0 ? id : NULL, epoch, w->json);
    rc = zkr_election_observe(w->cc.s, w->path, &epoch, id, sizeof(id), -1);
    if (rc != ZKR_OK)
      return rc;
  }
}

static int watch_leader(const global *g, const char *path, int json) {
  watch_ctx w = {{NULL, 0}, path, json};
  int sigfd = sv_signals(), rc, sig = 0;

  if (sigfd < 0)
    return ZKR_TOOL_SOFTWARE;
  rc = open_session(g, &w.cc.s);
  if (rc != 0)
    return rc;
  rc = sv_wait_interruptible(sigfd, do_watch, cancel_wait, &w, &sig);
  if (!w.cc.closed)
    zkr_session_close(w.cc.s);
  if (sig != 0)
    return 128 + sig;
  return recipe_error("watching", path, rc);
}

static int cmd_leader(global *g, int argc, char **argv) {
  int json = 0, watch = 0, rc;
  zkr_session *s;
  zkr_participant *p;
  size_t n;

  rc = parse_query(g, argc, argv, usage_leader, &json, &watch);
  if (rc != 0)
    return rc == ZKR_TOOL_DONE ? 0 : rc;
  if (json && !watch)
    return usage_error(usage_leader, "--json goes with --watch");
  if (watch)
    return watch_leader(g, argv[optind], json);
  rc = list(g, argv[optind], &s, &p, &n);
  if (rc != 0)
    return rc;
  if (n > 0)
    print_leader(p[0].id, p[0].token, 0);
  else
    fprintf(stderr, "zkr: no leader at %s\n", argv[optind]);
  rc = n > 0 ? 0 : 1;
  zkr_participants_free(p, n);
  zkr_session_close(s);
  return rc;
}

/* --- once --------------------------------------------------------------------------- */

/* ms since the epoch as "2026-11-29T00:00:40.123Z". */
static const char *utc_text(int64_t ms, char *buf, size_t len) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;

  if (gmtime_r(&t, &tm) == NULL)
    snprintf(buf, len, "?");
  else
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
  return buf;
}

/* 1 if PATH is a once key: its node records the key's setting (once.h). */
static int once_key_exists(zkr_session *s, const char *path) {
  static const char magic[] = "zkr-once-key 1\n";
  char data[64];
  int len = (int)sizeof(data);

  return zoo_get(zkr_session_zhandle(s), path, 0, data, &len, NULL) == ZOK && len >= (int)sizeof(magic) - 1 &&
         memcmp(data, magic, sizeof(magic) - 1) == 0;
}

static int once_status(const global *g, const char *path, int json) {
  zkr_once_record *h = NULL;
  zkr_session *s;
  size_t n = 0, i;
  char start[64], shown[512];
  int rc = open_session(g, &s);

  if (rc != 0)
    return rc;
  /* A key nobody fired, or a path that is no key (a typo), is said so:
   * an empty table would read as "no runs yet". */
  if (!once_key_exists(s, path)) {
    zkr_session_close(s);
    fprintf(stderr,
            "zkr: once %s: no such key (no firing ever ran under it, or the path is not a once key)\n",
            printable(path, shown, sizeof(shown)));
    return ZKR_TOOL_GAVE_UP;
  }
  rc = zkr_once_history(s, path, &h, &n);
  zkr_session_close(s);
  if (rc != ZKR_OK)
    return recipe_error("once: reading", path, rc);
  if (json) {
    printf("{\"key\":");
    json_string(stdout, path);
    printf(",\"runs\":[");
  } else {
    printf("%-26s %-6s %-4s %-24s %-24s %-10s %s\n", "PERIOD", "RESULT", "EXIT", "RUNNER", "START (UTC)",
           "DURATION", "TOKEN");
  }
  for (i = 0; i < n; i++) {
    const zkr_once_record *r = &h[i];
    /* A node that is no record of ours: its name, and no time (never an
     * epoch-0 one). It blocks its period's firings until deleted. */
    if (r->foreign && json) {
      printf("%s{\"period\":", i ? "," : "");
      json_string(stdout, r->period);
      printf(",\"result\":\"foreign\",\"status\":null,\"runner\":null,\"start\":null,\"start_ms\":null,"
             "\"end_ms\":null,\"duration_ms\":null,\"token\":null}");
      continue;
    }
    if (r->foreign) {
      printf("%-26s %-6s %-4s %-24s %-24s %-10s %s\n", printable(r->period, shown, sizeof(shown)), "foreign",
             "-", "-", "-", "-", "-");
      continue;
    }
    utc_text(r->start_ms, start, sizeof(start));
    if (json) {
      printf("%s{\"period\":", i ? "," : "");
      json_string(stdout, r->period);
      printf(",\"result\":\"%s\",\"status\":%d,\"runner\":", r->status == 0 ? "done" : "failed", r->status);
      json_string(stdout, r->runner);
      printf(",\"start\":\"%s\",\"start_ms\":%" PRId64 ",\"end_ms\":%" PRId64 ",\"duration_ms\":%" PRId64
             ",\"token\":%" PRId64 "}",
             start, r->start_ms, r->end_ms, r->end_ms - r->start_ms, r->token);
    } else {
      char dur[32];
      snprintf(dur, sizeof(dur), "%.1fs", (double)(r->end_ms - r->start_ms) / 1000.0);
      printf("%-26s %-6s %-4d %-24s %-24s %-10s %" PRId64 "\n", r->period, r->status == 0 ? "done" : "failed",
             r->status, printable(r->runner, shown, sizeof(shown)), start, dur, r->token);
    }
  }
  if (json)
    printf("]}\n");
  zkr_once_history_free(h);
  return 0;
}

/* The key records another period or zone (or PATH holds other data): a
 * usage error, though found only once connected, as --leases is. */
static int once_mismatch(zkr_session *s, const char *path, const char *period, const char *tz) {
  char data[256], shown[256], recorded[512];
  int len = (int)sizeof(data) - 1, i;

  if (zoo_get(zkr_session_zhandle(s), path, 0, data, &len, NULL) != ZOK || len < 0)
    len = 0;
  data[len] = '\0';
  while (len > 0 && data[len - 1] == '\n')
    data[--len] = '\0';
  if (strncmp(data, "zkr-once-key 1\n", 15) == 0) {
    memmove(data, data + 15, strlen(data + 15) + 1);
    for (i = 0; data[i] != '\0'; i++)
      if (data[i] == '\n')
        data[i] = ',';
    fprintf(stderr, "zkr: once %s: --period %s --tz %s, but the key records %s: %s\n",
            printable(path, shown, sizeof(shown)), period, tz != NULL ? tz : "UTC",
            printable(data, recorded, sizeof(recorded)), zkr_strerror(ZKR_EMISMATCH));
  } else {
    fprintf(stderr, "zkr: once %s: --period %s --tz %s, but the key's path holds other data (%s): %s\n",
            printable(path, shown, sizeof(shown)), period, tz != NULL ? tz : "UTC",
            printable(data, recorded, sizeof(recorded)), zkr_strerror(ZKR_EMISMATCH));
  }
  return ZKR_TOOL_USAGE;
}

static int cmd_once(global *g, int argc, char **argv) {
  static const struct option longopts[] = {GLOBAL_LONGOPTS,
                                           RUN_LONGOPTS,
                                           {"key", required_argument, NULL, 'k'},
                                           {"period", required_argument, NULL, 'p'},
                                           {"tz", required_argument, NULL, 'z'},
                                           {"keep", required_argument, NULL, 'K'},
                                           {NULL, 0, NULL, 0}};
  static char *shell_argv[4] = {"/bin/sh", "-c", NULL, NULL};
  int timeout_ms = -1, done_code = 0, opt, rc, sigfd, sig = 0, json = 0;
  run_opts ro = {-1, NULL, NULL};
  const char *key = NULL, *why;
  char path[1100], when[64], runner[512], **cmd;
  zkr_session *s = NULL;
  lock_ctx ctx;

  memset(&ctx, 0, sizeof(ctx));
  optind = 1;
  while ((opt = getopt_long(argc, argv, "+hvVw:E:c:", longopts, NULL)) != -1) {
    rc = run_option(g, &ro, opt, usage_once);
    if (rc > 0)
      return rc == ZKR_TOOL_DONE ? 0 : rc;
    if (rc == 0)
      continue;
    switch (opt) {
    case 'k':
      key = optarg;
      break;
    case 'p':
      ctx.period = optarg;
      break;
    case 'z':
      ctx.tz = optarg;
      break;
    case 'K':
      if (parse_int(optarg, 1, 1000000, &ctx.keep) != 0)
        return usage_error(usage_once, "bad --keep '%s': expected a number of records, 1 to 1000000", optarg);
      break;
    case 'w':
      if (parse_seconds_ms(optarg, &timeout_ms) != 0)
        return usage_error(usage_once, "bad -w '%s': expected decimal seconds such as 30 or 0.5", optarg);
      break;
    case 'E':
      if (parse_int(optarg, 0, 255, &done_code) != 0)
        return usage_error(usage_once, "bad -E '%s': expected an exit code, 0 to 255", optarg);
      if (own_code(done_code) != NULL)
        return usage_error(usage_once, "bad -E %d: zkr itself exits %d (%s); pick another code", done_code,
                           done_code, own_code(done_code));
      break;
    default:
      return usage_error(usage_once, NULL);
    }
  }
  if (key == NULL)
    return usage_error(usage_once, "missing --key NAME");
  /* A bare name lives under /zkr/once; a path is taken as it is. */
  snprintf(path, sizeof(path), "%s%s", key[0] == '/' ? "" : "/zkr/once/", key);
  rc = check_target(g, usage_once, "--key", path);
  if (rc != 0)
    return rc;
  if (strlen(path) > ZKR_ONCE_PATH_MAX)
    return usage_error(usage_once,
                       "bad --key: its path is %zu bytes; at most %d (its lock and marker nodes go below it)",
                       strlen(path), ZKR_ONCE_PATH_MAX);
  /* The status subcommand only before "--": after it, "status" is the
   * COMMAND's name (getopt consumed the "--", which is then just before). */
  if (optind < argc && strcmp(argv[optind], "status") == 0 && strcmp(argv[optind - 1], "--") != 0) {
    if (optind + 1 < argc && strcmp(argv[optind + 1], "--json") == 0)
      json = 1;
    if (optind + 1 + json != argc)
      return usage_error(usage_once, "status takes only --json");
    if (ctx.period != NULL || ro.shell != NULL)
      return usage_error(usage_once, "status takes no --period and no command");
    return once_status(g, path, json);
  }
  if (ctx.period == NULL)
    return usage_error(usage_once, "missing --period P (such as 1d, 1h, 15m, 1w)");
  why = zkr_once_period_problem(ctx.period, NULL);
  if (why != NULL)
    return usage_error(usage_once, "bad --period '%s': %s", ctx.period, why);
  why = zkr_once_period_problem(ctx.period, ctx.tz);
  if (why != NULL)
    return usage_error(usage_once, "bad --tz '%s': %s", ctx.tz, why);
  if (ro.shell != NULL) {
    if (optind < argc)
      return usage_error(usage_once, "-c 'SHELL COMMAND' and a COMMAND both given");
    shell_argv[2] = (char *)ro.shell;
    cmd = shell_argv;
  } else {
    if (optind < argc && strcmp(argv[optind], "--") == 0)
      optind++;
    if (optind >= argc)
      return usage_error(usage_once, "missing COMMAND (or -c 'SHELL COMMAND')");
    cmd = argv + optind;
  }
  ctx.kind = &kind_once;
  ctx.key = path;

  rc = acquire_for_run(g, &ctx, path, ro.id, timeout_ms, &sigfd, &sig);
  if (rc > 0)
    return rc;
  s = ctx.cc.s;
  if (rc == ZKR_OK && sig == 0 && ctx.verdict == ZKR_ONCE_DONE) {
    fprintf(stderr,
            "zkr: once %s: period %s already done by %s at %s (ran %.1f s, fencing token %" PRId64
            "); not running the command\n",
            path, ctx.rec.period, printable(ctx.rec.runner, runner, sizeof(runner)),
            utc_text(ctx.rec.start_ms, when, sizeof(when)),
            (double)(ctx.rec.end_ms - ctx.rec.start_ms) / 1000.0, ctx.rec.token);
    rc = done_code;
  } else if (rc == ZKR_OK && sig == 0) {
    if (asprintf(&ctx.extra_env, "ZKR_ONCE_PERIOD=%s", ctx.rec.period) < 0)
      rc = ZKR_TOOL_SOFTWARE;
    else
      rc = run_locked(g, &ctx, path, cmd, sigfd, ro.grace_ms >= 0 ? ro.grace_ms : default_grace_ms(s));
    free(ctx.extra_env);
  } else if (sig != 0) {
    rc = 128 + sig;
  } else if (rc == ZKR_ETIMEDOUT) {
    fprintf(stderr, "zkr: once %s: a run elsewhere still holds the key after -w; not running the command\n",
            path);
    rc = ZKR_TOOL_GAVE_UP;
  } else if (rc == ZKR_ELOST) {
    rc = waiting_node_deleted(ctx.kind->noun, path);
  } else if (rc == ZKR_EMISMATCH) {
    rc = once_mismatch(s, path, ctx.period, ctx.tz);
  } else if (rc == ZKR_EINVAL) {
    fprintf(stderr,
            "zkr: once %s: the key lies inside another once key, or over other nodes (once keys below it); "
            "choose a key apart from them\n",
            path);
    rc = ZKR_TOOL_USAGE;
  } else if (rc == ZKR_EZK && ctx.rec.foreign) {
    fprintf(stderr,
            "zkr: once %s: %s/done/%s is not a zkr once marker (other data, children, or not a success of "
            "that period); not running the command: delete that node to let the period run\n",
            path, path, printable(ctx.rec.period, runner, sizeof(runner)));
    rc = ZKR_TOOL_SOFTWARE;
  } else {
    rc = recipe_error(ctx.kind->noun, path, rc);
  }
  ctx.kind->destroy(&ctx);
  if (!ctx.cc.closed)
    zkr_session_close(s);
  return rc;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {GLOBAL_LONGOPTS, {NULL, 0, NULL, 0}};
  global g = {NULL, 10000, 5000, 0, NULL, 0};
  const char *env_hosts = getenv("ZKR_HOSTS"), *env_auth = getenv("ZKR_AUTH_FILE");
  char shown[256];
  int opt, rc;

  g.hosts = env_hosts != NULL && env_hosts[0] != '\0' ? env_hosts : "127.0.0.1:2181";
  g.auth_file = env_auth != NULL && env_auth[0] != '\0' ? env_auth : NULL;
  while ((opt = getopt_long(argc, argv, "+hvV", longopts, NULL)) != -1) {
    rc = global_option(&g, opt, usage_main);
    if (rc > 0)
      return rc == ZKR_TOOL_DONE ? 0 : rc;
    if (rc == 0)
      continue;
    if (opt == 'h') {
      fputs(usage_main, stdout);
      return 0;
    }
    return usage_error(usage_main, NULL);
  }
  if (optind >= argc)
    return usage_error(usage_main, "missing COMMAND");
  argc -= optind;
  argv += optind;
  if (strcmp(argv[0], "lock") == 0)
    return cmd_lock(&g, argc, argv);
  if (strcmp(argv[0], "elect") == 0)
    return cmd_elect(&g, argc, argv);
  if (strcmp(argv[0], "status") == 0)
    return cmd_status(&g, argc, argv);
  if (strcmp(argv[0], "leader") == 0)
    return cmd_leader(&g, argc, argv);
  if (strcmp(argv[0], "once") == 0)
    return cmd_once(&g, argc, argv);
  if (strcmp(argv[0], "barrier") == 0)
    return cmd_barrier(&g, argc, argv);
  return usage_error(usage_main, "unknown command '%s'", printable(argv[0], shown, sizeof(shown)));
}
