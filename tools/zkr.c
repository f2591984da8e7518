/* zkr: run commands under a ZooKeeper lock or only while leader, and
 * inspect lock queues. Uses only the public API (<zkr/zkr.h>).
 *
 *   zkr [--hosts H] [--session-timeout MS] lock [-n | -w SECONDS] [-E CODE] PATH -- COMMAND...
 *   zkr [--hosts H] [--session-timeout MS] elect [--id ID] PATH -- COMMAND...
 *   zkr [--hosts H] status [--json] PATH
 *   zkr [--hosts H] leader PATH
 */
#define _GNU_SOURCE
#include <zkr/zkr.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervise.h"

typedef struct global {
  const char *hosts;
  int session_timeout_ms;
  int connect_timeout_ms;
} global;

static const char usage_main[] =
    "usage: zkr [--hosts H] [--session-timeout MS] [--connect-timeout MS] COMMAND ...\n"
    "\n"
    "  lock   [-n | -w SECONDS] [-E CODE] [--grace SECONDS] [--id ID] PATH -- COMMAND [ARG...]\n"
    "         run COMMAND while holding the lock at PATH\n"
    "  elect  [--id ID] [--grace SECONDS] PATH -- COMMAND [ARG...]\n"
    "         run COMMAND only while this participant leads the election at PATH\n"
    "  status [--json] PATH      list holder and waiters in queue order\n"
    "  leader PATH               print the current leader's id (exit 1 if none)\n"
    "\n"
    "Hosts: --hosts, else $ZKR_HOSTS, else 127.0.0.1:2181. `zkr COMMAND --help` for details.\n"
    "Exit: COMMAND's status (128+N if killed by signal N); 1 (or -E CODE) not acquired;\n"
    "64 usage; 69 ZooKeeper unavailable; 70 internal error; 75 lock or leadership lost.\n";

static const char usage_lock[] =
    "usage: zkr lock [-n | -w SECONDS] [-E CODE] [--grace SECONDS] [--id ID] PATH -- COMMAND [ARG...]\n"
    "\n"
    "Runs COMMAND while holding the ZooKeeper lock at PATH (Curator-compatible) and exits with\n"
    "its status. -n gives up at once if the lock is held, -w waits at most SECONDS (fractions\n"
    "allowed); giving up exits 1, or CODE with -E. If the lock is lost while COMMAND runs\n"
    "(session expired, disconnected past the session timeout, node deleted), COMMAND's process\n"
    "group gets SIGTERM, SIGKILL after --grace SECONDS (default 5), and zkr exits 75.\n"
    "SIGINT, SIGTERM and SIGHUP are forwarded to COMMAND. COMMAND's environment gets\n"
    "ZKR_LOCK_PATH, ZKR_LOCK_NODE and ZKR_FENCING_TOKEN.\n";

static const char usage_elect[] =
    "usage: zkr elect [--id ID] [--grace SECONDS] PATH -- COMMAND [ARG...]\n"
    "\n"
    "Joins the election at PATH, waits to lead, then runs COMMAND while leading and exits with\n"
    "its status (resigning). If leadership is lost while COMMAND runs it is stopped as with\n"
    "`zkr lock` and zkr exits 75. --id is what `zkr leader` shows (default host:pid).\n"
    "COMMAND's environment gets ZKR_ELECTION_PATH and ZKR_EPOCH (the term's fencing token).\n";

static const char usage_status[] =
    "usage: zkr status [--json] PATH\n"
    "\n"
    "Lists the contenders at PATH in queue order, holder first: role, participant id, session,\n"
    "fencing token, age, node. Curator and Kazoo contenders are included.\n";

static const char usage_leader[] =
    "usage: zkr leader PATH\n\nPrints the current leader's id; exit 1 if none.\n";

static int usage_error(const char *usage, const char *msg) {
  if (msg != NULL)
    fprintf(stderr, "zkr: %s\n", msg);
  fputs(usage, stderr);
  return ZKR_TOOL_USAGE;
}

static int parse_seconds_ms(const char *s, int *ms) {
  char *end;
  double v = strtod(s, &end);

  if (end == s || *end != '\0' || v < 0 || v > 86400.0 * 365)
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

static int open_session(const global *g, int sigfd, zkr_session **s) {
  zkr_session_opts o;
  int rc;

  (void)sigfd;
  memset(&o, 0, sizeof(o));
  o.session_timeout_ms = g->session_timeout_ms;
  o.connect_timeout_ms = g->connect_timeout_ms;
  rc = zkr_session_open(s, g->hosts, &o);
  if (rc == ZKR_EINVAL) {
    fprintf(stderr, "zkr: bad --hosts '%s': %s\n", g->hosts, zkr_strerror(rc));
    return ZKR_TOOL_USAGE;
  }
  if (rc != ZKR_OK) {
    fprintf(stderr, "zkr: cannot connect to ZooKeeper at %s: %s\n", g->hosts, zkr_strerror(rc));
    return ZKR_TOOL_UNAVAILABLE;
  }
  return 0;
}

static int tool_code(int rc) {
  return rc == ZKR_ECONNLOSS || rc == ZKR_ESESSION || rc == ZKR_ECONNECT ? ZKR_TOOL_UNAVAILABLE
                                                                         : ZKR_TOOL_SOFTWARE;
}

/* A pipe that callbacks write to when a hold is lost. */
static int lost_pipe[2] = {-1, -1};

static void notify_lost(void) {
  ssize_t n = write(lost_pipe[1], "x", 1);
  (void)n;
}

/* --- lock ------------------------------------------------------------------ */

/* First member of every waiting context: what a signal needs to cancel. */
typedef struct cancel_ctx {
  zkr_session *s;
  int closed; /* the session was closed to interrupt the wait */
} cancel_ctx;

typedef struct lock_ctx {
  cancel_ctx cc;
  zkr_lock *l;
  int timeout_ms;
} lock_ctx;

static void on_lock_lost(zkr_lock *l, void *arg) {
  (void)l;
  (void)arg;
  notify_lost();
}

static int do_acquire(void *p) {
  lock_ctx *c = p;

  return zkr_lock_acquire(c->l, c->timeout_ms);
}

/* A signal while waiting: closing the session wakes the waiter with
 * ZKR_ECLOSED and removes its node at once. */
static void cancel_wait(void *p) {
  cancel_ctx *c = p; /* the first member of the context */

  c->closed = 1;
  zkr_session_close(c->s);
}

static int lock_held(void *p) {
  return zkr_lock_held(((lock_ctx *)p)->l);
}

/* Shared by lock and elect: PATH [--] COMMAND... */
static int split_command(int argc, char **argv, const char *usage, const char **path, char ***cmd) {
  if (optind >= argc)
    return usage_error(usage, "missing PATH");
  *path = argv[optind++];
  if (optind < argc && strcmp(argv[optind], "--") == 0)
    optind++;
  if (optind >= argc)
    return usage_error(usage, "missing COMMAND");
  *cmd = argv + optind;
  return 0;
}

static int cmd_lock(const global *g, int argc, char **argv) {
  static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                           {"nonblock", no_argument, NULL, 'n'},
                                           {"wait", required_argument, NULL, 'w'},
                                           {"timeout", required_argument, NULL, 'w'},
                                           {"conflict-exit-code", required_argument, NULL, 'E'},
                                           {"grace", required_argument, NULL, 'g'},
                                           {"id", required_argument, NULL, 'i'},
                                           {"leases", required_argument, NULL, 'L'},
                                           {NULL, 0, NULL, 0}};
  int timeout_ms = -1, conflict = ZKR_TOOL_GAVE_UP, grace_ms = 5000, leases = 1, opt, rc, sigfd, sig;
  const char *path, *id = NULL;
  char **cmd;
  zkr_session *s = NULL;
  zkr_lock_opts lo;
  lock_ctx ctx = {{NULL, 0}, NULL, -1};

  optind = 1;
  while ((opt = getopt_long(argc, argv, "+hnw:E:", longopts, NULL)) != -1) {
    switch (opt) {
    case 'h':
      fputs(usage_lock, stdout);
      return 0;
    case 'n':
      timeout_ms = 0;
      break;
    case 'w':
      if (parse_seconds_ms(optarg, &timeout_ms) != 0)
        return usage_error(usage_lock, "bad -w SECONDS");
      break;
    case 'E':
      if (parse_int(optarg, 0, 255, &conflict) != 0)
        return usage_error(usage_lock, "bad -E CODE (0-255)");
      break;
    case 'g':
      if (parse_seconds_ms(optarg, &grace_ms) != 0)
        return usage_error(usage_lock, "bad --grace SECONDS");
      break;
    case 'i':
      id = optarg;
      break;
    case 'L':
      if (parse_int(optarg, 1, 1000000, &leases) != 0)
        return usage_error(usage_lock, "bad --leases N");
      break;
    default:
      return usage_error(usage_lock, NULL);
    }
  }
  if (leases != 1)
    return usage_error(usage_lock, "--leases N > 1 needs the semaphore, not in this version");
  rc = split_command(argc, argv, usage_lock, &path, &cmd);
  if (rc != 0)
    return rc;

  sigfd = sv_signals();
  if (sigfd < 0 || pipe(lost_pipe) != 0)
    return ZKR_TOOL_SOFTWARE;
  rc = open_session(g, sigfd, &s);
  if (rc != 0)
    return rc;
  ctx.cc.s = s;
  memset(&lo, 0, sizeof(lo));
  lo.on_lost = on_lock_lost;
  lo.id = id;
  rc = zkr_lock_new(&ctx.l, s, path, &lo);
  if (rc != ZKR_OK) {
    zkr_session_close(s);
    fprintf(stderr, "zkr: bad lock path '%s': %s\n", path, zkr_strerror(rc));
    return ZKR_TOOL_USAGE;
  }
  ctx.timeout_ms = timeout_ms;
  rc = sv_wait_interruptible(sigfd, do_acquire, cancel_wait, &ctx, &sig);
  if (rc == ZKR_OK && sig == 0) {
    char node[2048], tok[64], *env[4];
    int64_t token = 0;
    sv_hold h = {lock_held, &ctx, lost_pipe[0], "lock"};
    char *envp_path, *envp_node;

    zkr_lock_token(ctx.l, &token);
    zkr_lock_node(ctx.l, node, sizeof(node));
    snprintf(tok, sizeof(tok), "ZKR_FENCING_TOKEN=%" PRId64, token);
    if (asprintf(&envp_path, "ZKR_LOCK_PATH=%s", path) < 0 ||
        asprintf(&envp_node, "ZKR_LOCK_NODE=%s", node) < 0)
      return ZKR_TOOL_SOFTWARE;
    env[0] = envp_path;
    env[1] = envp_node;
    env[2] = tok;
    env[3] = NULL;
    rc = sv_run(sigfd, cmd, env, &h, grace_ms);
    zkr_lock_release(ctx.l); /* ZKR_ESESSION after a loss: nothing left to do */
    free(envp_path);
    free(envp_node);
  } else if (sig != 0) {
    rc = 128 + sig;
  } else if (rc == ZKR_ETIMEDOUT) {
    rc = conflict;
  } else {
    fprintf(stderr, "zkr: lock %s: %s\n", path, zkr_strerror(rc));
    rc = tool_code(rc);
  }
  zkr_lock_free(ctx.l);
  if (!ctx.cc.closed)
    zkr_session_close(s);
  return rc;
}

/* --- elect ----------------------------------------------------------------- */

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
  return zkr_election_is_leader(p);
}

static int cmd_elect(const global *g, int argc, char **argv) {
  static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                           {"id", required_argument, NULL, 'i'},
                                           {"grace", required_argument, NULL, 'g'},
                                           {NULL, 0, NULL, 0}};
  int grace_ms = 5000, opt, rc, sigfd, sig;
  const char *path, *id = NULL;
  char **cmd;
  zkr_session *s = NULL;
  zkr_election *e = NULL;
  zkr_election_opts eo;
  elect_ctx ectx = {{NULL, 0}, NULL};

  optind = 1;
  while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'h':
      fputs(usage_elect, stdout);
      return 0;
    case 'i':
      id = optarg;
      break;
    case 'g':
      if (parse_seconds_ms(optarg, &grace_ms) != 0)
        return usage_error(usage_elect, "bad --grace SECONDS");
      break;
    default:
      return usage_error(usage_elect, NULL);
    }
  }
  rc = split_command(argc, argv, usage_elect, &path, &cmd);
  if (rc != 0)
    return rc;
  sigfd = sv_signals();
  if (sigfd < 0 || pipe(lost_pipe) != 0)
    return ZKR_TOOL_SOFTWARE;
  rc = open_session(g, sigfd, &s);
  if (rc != 0)
    return rc;
  memset(&eo, 0, sizeof(eo));
  eo.id = id;
  eo.on_change = on_leader_change;
  rc = zkr_election_new(&e, s, path, &eo);
  if (rc != ZKR_OK) {
    zkr_session_close(s);
    fprintf(stderr, "zkr: bad election path '%s': %s\n", path, zkr_strerror(rc));
    return ZKR_TOOL_USAGE;
  }
  ectx.cc.s = s;
  ectx.e = e;
  rc = zkr_election_join(e);
  if (rc == ZKR_OK)
    rc = sv_wait_interruptible(sigfd, do_await, cancel_wait, &ectx, &sig);
  if (rc == ZKR_OK && sig == 0) {
    char epoch[64], *envp_path, *env[3];
    int64_t ep = 0;
    sv_hold h = {leading, e, lost_pipe[0], "leadership"};

    if (zkr_election_epoch(e, &ep) != ZKR_OK) { /* lost between await and here */
      fprintf(stderr, "zkr: leadership lost before the command started\n");
      zkr_election_free(e);
      zkr_session_close(s);
      return ZKR_TOOL_LOST;
    }
    snprintf(epoch, sizeof(epoch), "ZKR_EPOCH=%" PRId64, ep);
    if (asprintf(&envp_path, "ZKR_ELECTION_PATH=%s", path) < 0)
      return ZKR_TOOL_SOFTWARE;
    env[0] = envp_path;
    env[1] = epoch;
    env[2] = NULL;
    rc = sv_run(sigfd, cmd, env, &h, grace_ms);
    free(envp_path);
  } else if (sig != 0) {
    rc = 128 + sig;
  } else {
    fprintf(stderr, "zkr: elect %s: %s\n", path, zkr_strerror(rc));
    rc = tool_code(rc);
  }
  zkr_election_free(e);
  if (!ectx.cc.closed)
    zkr_session_close(s);
  return rc;
}

/* --- status, leader ----------------------------------------------------- */

static const char *protocol_of(const char *node) {
  return strstr(node, "__lock__") != NULL || strstr(node, "__rlock__") != NULL ? "kazoo" : "curator";
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s != '\0'; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch < 0x20)
      printf("\\u%04x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

static int list(const global *g, const char *path, zkr_session **s, zkr_participant **p, size_t *n) {
  int rc = open_session(g, -1, s);

  if (rc != 0)
    return rc;
  rc = zkr_participants(*s, path, p, n);
  if (rc == ZKR_EINVAL) {
    zkr_session_close(*s);
    fprintf(stderr, "zkr: bad path '%s'\n", path);
    return ZKR_TOOL_USAGE;
  }
  if (rc != ZKR_OK) {
    zkr_session_close(*s);
    fprintf(stderr, "zkr: listing %s: %s\n", path, zkr_strerror(rc));
    return tool_code(rc);
  }
  return 0;
}

static int cmd_status(const global *g, int argc, char **argv) {
  static const struct option longopts[] = {
      {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
  int json = 0, opt, rc;
  zkr_session *s;
  zkr_participant *p;
  size_t n, i;

  optind = 1;
  while ((opt = getopt_long(argc, argv, "+hj", longopts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(usage_status, stdout);
      return 0;
    }
    if (opt != 'j')
      return usage_error(usage_status, NULL);
    json = 1;
  }
  if (optind != argc - 1)
    return usage_error(usage_status, "expected exactly one PATH");
  rc = list(g, argv[optind], &s, &p, &n);
  if (rc != 0)
    return rc;
  if (json) {
    printf("{\"path\":");
    json_string(argv[optind]);
    printf(",\"participants\":[");
    for (i = 0; i < n; i++) {
      printf("%s{\"role\":\"%s\",\"id\":", i ? "," : "", p[i].holder ? "holder" : "waiter");
      json_string(p[i].id);
      printf(",\"node\":");
      json_string(p[i].node);
      printf(",\"session\":\"0x%" PRIx64 "\",\"token\":%" PRId64 ",\"age_ms\":%" PRId64
             ",\"protocol\":\"%s\"}",
             (uint64_t)p[i].session, p[i].token, p[i].age_ms, protocol_of(p[i].node));
    }
    printf("]}\n");
  } else {
    printf("%-7s %-24s %-18s %-12s %-9s %s\n", "ROLE", "ID", "SESSION", "TOKEN", "AGE", "NODE");
    for (i = 0; i < n; i++) {
      char age[32];
      snprintf(age, sizeof(age), "%.1fs", (double)p[i].age_ms / 1000.0);
      printf("%-7s %-24s 0x%-16" PRIx64 " %-12" PRId64 " %-9s %s\n", p[i].holder ? "holder" : "waiter",
             p[i].id, (uint64_t)p[i].session, p[i].token, age, p[i].node);
    }
  }
  zkr_participants_free(p, n);
  zkr_session_close(s);
  return 0;
}

static int cmd_leader(const global *g, int argc, char **argv) {
  zkr_session *s;
  zkr_participant *p;
  size_t n;
  int rc;

  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(usage_leader, stdout);
    return 0;
  }
  if (argc != 2 || argv[1][0] == '-')
    return usage_error(usage_leader, "expected exactly one PATH");
  rc = list(g, argv[1], &s, &p, &n);
  if (rc != 0)
    return rc;
  if (n > 0)
    printf("%s\n", p[0].id);
  else
    fprintf(stderr, "zkr: no leader at %s\n", argv[1]);
  rc = n > 0 ? 0 : 1;
  zkr_participants_free(p, n);
  zkr_session_close(s);
  return rc;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"hosts", required_argument, NULL, 'H'},
                                           {"session-timeout", required_argument, NULL, 't'},
                                           {"connect-timeout", required_argument, NULL, 'c'},
                                           {"help", no_argument, NULL, 'h'},
                                           {"version", no_argument, NULL, 'V'},
                                           {NULL, 0, NULL, 0}};
  global g = {NULL, 10000, 5000};
  int opt;

  g.hosts =
      getenv("ZKR_HOSTS") != NULL && getenv("ZKR_HOSTS")[0] != '\0' ? getenv("ZKR_HOSTS") : "127.0.0.1:2181";
  while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'H':
      g.hosts = optarg;
      break;
    case 't':
      if (parse_int(optarg, 1, 3600000, &g.session_timeout_ms) != 0)
        return usage_error(usage_main, "bad --session-timeout MS");
      break;
    case 'c':
      if (parse_int(optarg, 1, 3600000, &g.connect_timeout_ms) != 0)
        return usage_error(usage_main, "bad --connect-timeout MS");
      break;
    case 'h':
      fputs(usage_main, stdout);
      return 0;
    case 'V':
      printf("zkr %s\n", zkr_version_string());
      return 0;
    default:
      return usage_error(usage_main, NULL);
    }
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
  return usage_error(usage_main, "unknown COMMAND");
}
