/* The oversell problem: N worker processes sell from one stock of items
 * kept in a shared file (a stand-in for a database row). Each sale reads the
 * stock, thinks for a moment, and writes it back decremented.
 *
 *   oversell HOSTS STOCKFILE lock|nolock [WORKERS [TIMELINE]]
 *
 * Without a lock, workers read the same stock and sell the same item twice:
 * more items are sold than existed. With zkr_lock around each sale, exactly
 * the stock is sold. Prints one line: "sold=N stock=M sales_per_worker=...".
 * With TIMELINE, each sale appends "worker enter_ns exit_ns" to that file. */
#define _GNU_SOURCE /* pread, MAP_ANONYMOUS */
#include <zkr/zkr.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOCK_PATH "/zkr-demo/oversell"

static int read_stock(int fd) {
  char buf[32] = {0};

  if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
    return -1;
  return atoi(buf);
}

static void write_stock(int fd, int stock) {
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%-20d\n", stock);

  if (pwrite(fd, buf, (size_t)n, 0) != n)
    perror("pwrite");
}

/* One sale's "business logic": long enough for others to interleave. */
static void think(void) {
  struct timespec ts = {0, 2000000};

  nanosleep(&ts, NULL);
}

static int64_t now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int worker(const char *hosts, const char *file, int use_lock, int *sold, int id, int timeline) {
  zkr_session *s = NULL;
  zkr_lock *l = NULL;
  int fd = open(file, O_RDWR), rc;

  if (fd < 0) {
    perror(file);
    return 1;
  }
  if (use_lock) {
    rc = zkr_session_open(&s, hosts, NULL);
    if (rc == ZKR_OK)
      rc = zkr_lock_new(&l, s, LOCK_PATH, NULL);
    if (rc != ZKR_OK) {
      fprintf(stderr, "worker: %s\n", zkr_strerror(rc));
      return 1;
    }
  }
  for (;;) {
    int stock;

    if (use_lock && (rc = zkr_lock_acquire(l, -1)) != ZKR_OK) {
      fprintf(stderr, "acquire: %s\n", zkr_strerror(rc));
      break;
    }
    int64_t enter = now_ns();
    stock = read_stock(fd);
    if (stock > 0) {
      think();
      write_stock(fd, stock - 1);
      (*sold)++;
    }
    if (timeline >= 0 && stock > 0)
      dprintf(timeline, "%d %lld %lld\n", id, (long long)enter, (long long)now_ns());
    if (use_lock)
      zkr_lock_release(l);
    if (stock <= 0)
      break;
  }
  zkr_lock_free(l);
  zkr_session_close(s);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  int workers = argc > 4 ? atoi(argv[4]) : 8, i, total = 0, failed = 0, fd;
  int *sold, timeline = -1;

  if (argc < 4 || (strcmp(argv[3], "lock") != 0 && strcmp(argv[3], "nolock") != 0) || workers < 1 ||
      workers > 64) {
    fprintf(stderr, "usage: oversell HOSTS STOCKFILE lock|nolock [WORKERS]\n");
    return 64;
  }
  if (argc > 5 && (timeline = open(argv[5], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644)) < 0) {
    perror(argv[5]);
    return 1;
  }
  sold = mmap(NULL, sizeof(int) * (size_t)workers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sold == MAP_FAILED)
    return 1;
  for (i = 0; i < workers; i++) {
    pid_t pid = fork();
    if (pid == 0)
      _exit(worker(argv[1], argv[2], strcmp(argv[3], "lock") == 0, &sold[i], i, timeline));
    if (pid < 0)
      return 1;
  }
  for (i = 0; i < workers; i++) {
    int st;
    wait(&st);
    failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
  }
  fd = open(argv[2], O_RDONLY);
  for (i = 0; i < workers; i++)
    total += sold[i];
  printf("sold=%d stock=%d workers=%d per_worker=", total, fd >= 0 ? read_stock(fd) : -1, workers);
  for (i = 0; i < workers; i++)
    printf("%s%d", i ? "," : "", sold[i]);
  printf("\n");
  return failed ? 1 : 0;
}
