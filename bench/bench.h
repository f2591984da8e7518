/* What the lock benchmark's source files share (bench/zkr_bench.c: options,
 * clock, the driver's ready/go handshake, JSON output; bench/many.c: the
 * many-acquirers mode). Not installed, not part of the library. */
#ifndef ZKR_BENCH_H
#define ZKR_BENCH_H

#include <stdint.h>

#define SESSION_MS 10000

typedef struct bench_opts {
  const char *impl, *mode, *connect, *path, *ready, *go, *out;
  long count, warmup, hold_us, waiters, locks, read_pct, max_leases, client;
  long acquirers, paths, stack_kb; /* mode many */
} bench_opts;

extern bench_opts opt;

/* Prints "zkr_bench: WHAT: RC" and exits 1. */
void die(const char *what, int rc);

/* CLOCK_MONOTONIC, ns: the clock of the driver's go file and of zkr. */
int64_t now_ns(void);
void sleep_ns(int64_t ns);

/* From /proc/self/status: VmRSS in kB, the number of threads. */
long rss_kb(void);
int thread_count(void);

/* The handshake: touch(opt.ready) once warmed up; then wait_go() blocks
 * until the driver's start instant, or read_go() looks without waiting
 * (1 once the line is there, with *start and *end set). */
void touch(const char *path);
void wait_go(int64_t *start, int64_t *end);
int read_go(int64_t *start, int64_t *end);

/* One JSON object into opt.out (written to a .tmp, renamed by out_end). */
void out_begin(void);
void out_int(const char *key, int64_t v);
void out_array(const char *key, const int64_t *v, long n);
void out_end(void);

/* n zeroed int64_t (at least one); exits on failure. */
int64_t *array(long n);

/* bench/many.c: N acquirers on K lock paths, through one loop-mode session
 * and the asynchronous API (--impl zkr-async), or N threads through one
 * threaded session and the blocking API (--impl zkr). */
void mode_many(void);

#endif
