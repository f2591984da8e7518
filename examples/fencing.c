/* Fencing: why a lock needs a token. A holder that pauses (GC, SIGSTOP, a
 * stalled VM) past its session timeout loses the lock without knowing; its
 * next write must be refused. The storage here keeps the highest fencing
 * token it has seen and rejects writes that carry a smaller one.
 *
 *   fencing HOSTS STORAGE NAME [pause]
 *
 * Acquires /zkr-demo/fencing, checks it still holds the lock, and with
 * "pause" stops itself (SIGSTOP) right between that check and its write —
 * the worst moment. Once continued it writes anyway, as a paused process
 * would, and reports what the storage and the library said. */
#define _GNU_SOURCE
#include <zkr/zkr.h>

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The storage: "highest-token value" in one file, updated under flock. */
static int fenced_write(const char *file, int64_t token, const char *value, int64_t *highest) {
  char buf[256] = {0};
  int fd = open(file, O_RDWR | O_CREAT, 0644), ok;

  if (fd < 0 || flock(fd, LOCK_EX) != 0)
    return -1;
  if (pread(fd, buf, sizeof(buf) - 1, 0) < 0)
    buf[0] = '\0';
  *highest = strtoll(buf, NULL, 10);
  ok = token >= *highest;
  if (ok) {
    int n = snprintf(buf, sizeof(buf), "%" PRId64 " %s\n", token, value);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
      ok = -1;
  }
  close(fd);
  return ok;
}

int main(int argc, char **argv) {
  zkr_session_opts so;
  zkr_session *s;
  zkr_lock *l;
  int64_t token, highest = 0, valid_until;
  int rc, pause = argc > 4 && strcmp(argv[4], "pause") == 0;

  if (argc < 4) {
    fprintf(stderr, "usage: fencing HOSTS STORAGE NAME [pause]\n");
    return 64;
  }
  memset(&so, 0, sizeof(so));
  so.session_timeout_ms = 2000;
  if ((rc = zkr_session_open(&s, argv[1], &so)) != ZKR_OK ||
      (rc = zkr_lock_new(&l, s, "/zkr-demo/fencing", NULL)) != ZKR_OK ||
      (rc = zkr_lock_acquire(l, 30000)) != ZKR_OK) {
    fprintf(stderr, "%s: %s\n", argv[3], zkr_strerror(rc));
    return 1;
  }
  zkr_lock_token(l, &token);
  valid_until = zkr_lock_valid_until(l);
  printf("    %s: acquired the lock, fencing token %" PRId64 "; held() = %d\n", argv[3], token,
         zkr_lock_held(l));
  fflush(stdout);
  if (pause)
    raise(SIGSTOP); /* the pause strikes after the check, before the write */
  rc = fenced_write(argv[2], token, argv[3], &highest);
  printf("    %s: wrote with token %" PRId64 ": %s (storage's highest token was %" PRId64 ")\n", argv[3],
         token, rc == 1 ? "ACCEPTED" : "REJECTED as stale", highest);
  if (pause)
    printf("    %s: its validity deadline had passed %.1f s before that write; held() now = %d\n", argv[3],
           (double)(zkr_monotonic_ns() - valid_until) / 1e9, zkr_lock_held(l));
  zkr_lock_release(l);
  zkr_lock_free(l);
  zkr_session_close(s);
  return rc == 1 ? 0 : 2;
}
