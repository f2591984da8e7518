/* The README's first example: run a report at most once at a time across
 * a fleet. Build: cc daily_report.c $(pkg-config --cflags --libs zkrecipes)
 * Run: ./daily_report zk1:2181,zk2:2181,zk3:2181 */
#include <stdio.h>
#include <zkr/zkr.h>

static void run_report(int64_t token) {
  printf("report runs under fencing token %lld\n", (long long)token);
}

int main(int argc, char **argv) {
  const char *hosts = argc > 1 ? argv[1] : "127.0.0.1:2181";
  zkr_session *s;
  zkr_lock *l;
  int64_t token;
  int rc;

  rc = zkr_session_open(&s, hosts, NULL); /* waits until connected */
  if (rc != ZKR_OK) {
    fprintf(stderr, "%s: %s\n", hosts, zkr_strerror(rc));
    return 1;
  }
  zkr_lock_new(&l, s, "/locks/daily-report", NULL); /* opts: on_lost, id, ACL */
  rc = zkr_lock_acquire(l, 5000);                   /* <0 forever, 0 try, >0 ms */
  if (rc == ZKR_OK) {
    zkr_lock_token(l, &token); /* fencing token: pass it to storage */
    run_report(token);         /* while zkr_lock_held(l) */
    rc = zkr_lock_release(l);  /* returns once the server deleted the node */
  }
  if (rc != ZKR_OK)
    fprintf(stderr, "daily-report: %s\n", zkr_strerror(rc));
  zkr_lock_free(l);
  zkr_session_close(s);
  return rc == ZKR_OK ? 0 : 1;
}
