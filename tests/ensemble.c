/* C side of the ensemble harness: runs tests/zk-ensemble.sh. */
#define _GNU_SOURCE
#include "ensemble.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct th_ens {
  char dir[256];
  char hosts[512];
  int n;
  struct th_ens *next;
};

static th_ens *running; /* stopped by the atexit handler */

static const char *script(void) {
  static char path[1024];
  const char *src = getenv("srcdir");

  snprintf(path, sizeof(path), "%s/tests/zk-ensemble.sh", src != NULL && src[0] != '\0' ? src : ".");
  if (access(path, X_OK) != 0)
    snprintf(path, sizeof(path), "tests/zk-ensemble.sh");
  return path;
}

/* Runs the script with args; its stdout (first line) into out if given. */
static int run(th_ens *e, const char *args, char *out, size_t len) {
  char cmd[2048];
  FILE *p;
  int rc;

  snprintf(cmd, sizeof(cmd), "'%s' %s", script(), args);
  p = popen(cmd, "r");
  if (p == NULL)
    return -1;
  if (out != NULL && fgets(out, (int)len, p) == NULL)
    out[0] = '\0';
  if (out != NULL)
    out[strcspn(out, "\n")] = '\0';
  rc = pclose(p);
  (void)e;
  return rc == 0 ? 0 : -1;
}

static void stop_all_at_exit(void) {
  while (running != NULL) {
    th_ens *e = running;
    running = e->next;
    th_ens_free(e);
  }
}

th_ens *th_ens_start(int n) {
  static int registered;
  th_ens *e = calloc(1, sizeof(*e));
  char args[512];

  if (e == NULL)
    return NULL;
  snprintf(e->dir, sizeof(e->dir), "/tmp/zkr-ens-XXXXXX");
  if (mkdtemp(e->dir) == NULL) {
    free(e);
    return NULL;
  }
  e->n = n;
  if (!registered) {
    atexit(stop_all_at_exit);
    registered = 1;
  }
  e->next = running;
  running = e;
  /* The script's watchdog stops the members once this process is gone,
   * also when it dies where atexit does not run. */
  snprintf(args, sizeof(args), "start '%s' %d %ld", e->dir, n, (long)getpid());
  if (run(e, args, e->hosts, sizeof(e->hosts)) != 0 || e->hosts[0] == '\0') {
    th_ens_free(e);
    return NULL;
  }
  return e;
}

const char *th_ens_hosts(th_ens *e) {
  return e->hosts;
}

static int member_cmd(th_ens *e, const char *what, int i, char *out, size_t len) {
  char args[512];

  snprintf(args, sizeof(args), "%s '%s' %d", what, e->dir, i);
  return run(e, args, out, len);
}

int th_ens_leader(th_ens *e) {
  char out[32], args[512];

  snprintf(args, sizeof(args), "leader '%s'", e->dir);
  if (run(e, args, out, sizeof(out)) != 0)
    return -1;
  return atoi(out) > 0 ? atoi(out) : -1;
}

int th_ens_await_leader(th_ens *e) {
  char args[512];

  snprintf(args, sizeof(args), "wait '%s'", e->dir);
  return run(e, args, NULL, 0);
}

int th_ens_port(th_ens *e, int i) {
  char out[32];

  return member_cmd(e, "port", i, out, sizeof(out)) == 0 ? atoi(out) : -1;
}

int th_ens_kill(th_ens *e, int i) {
  return member_cmd(e, "kill-member", i, NULL, 0);
}

int th_ens_stop_member(th_ens *e, int i) {
  return member_cmd(e, "stop-member", i, NULL, 0);
}

int th_ens_start_member(th_ens *e, int i) {
  return member_cmd(e, "start-member", i, NULL, 0);
}

int th_ens_stop_all(th_ens *e) {
  char args[512];

  snprintf(args, sizeof(args), "stop '%s'", e->dir);
  return run(e, args, NULL, 0);
}

int th_ens_start_all(th_ens *e) {
  char cmd[2048];
  int i, rc = 0;

  /* Start all first (a lone member cannot serve without a quorum), then
   * wait for a leader. */
  for (i = 1; i <= e->n; i++) {
    snprintf(cmd, sizeof(cmd), "'%s' start-member '%s' %d > /dev/null 2>&1 &", script(), e->dir, i);
    if (system(cmd) != 0)
      rc = -1;
  }
  if (th_ens_await_leader(e) != 0)
    rc = -1;
  return rc;
}

void th_ens_free(th_ens *e) {
  th_ens **pp;
  char cmd[1024];

  if (e == NULL)
    return;
  for (pp = &running; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == e) {
      *pp = e->next;
      break;
    }
  }
  th_ens_stop_all(e);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
  if (system(cmd) != 0)
    fprintf(stderr, "th_ens_free: could not remove %s\n", e->dir);
  free(e);
}
