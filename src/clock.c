/* The monotonic clock every deadline uses, and condvars that follow it. */
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <time.h>

int64_t zkr__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t zkr__deadline(int timeout_ms) {
  return timeout_ms < 0 ? -1 : zkr__now_ns() + (int64_t)timeout_ms * 1000000;
}

int zkr__timeout_left(int64_t deadline_ns) {
  int64_t left;

  if (deadline_ns < 0)
    return -1;
  left = deadline_ns - zkr__now_ns();
  if (left <= 0)
    return 0;
  left = (left + 999999) / 1000000; /* rounded up: never 0 while time is left */
  return left > INT_MAX ? INT_MAX : (int)left;
}

int64_t zkr_monotonic_ns(void) {
  return zkr__now_ns();
}

int zkr__cond_init(pthread_cond_t *cond) {
  pthread_condattr_t attr;
  int rc;

  if (pthread_condattr_init(&attr) != 0)
    return ZKR_ENOMEM;
  /* Wall-clock jumps must not stretch or shorten a timeout. */
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  rc = pthread_cond_init(cond, &attr);
  pthread_condattr_destroy(&attr);
  return rc == 0 ? ZKR_OK : ZKR_ENOMEM;
}

int zkr__cond_wait(pthread_cond_t *cond, pthread_mutex_t *mu, int64_t deadline_ns) {
  struct timespec ts;

  if (deadline_ns < 0) {
    pthread_cond_wait(cond, mu);
    return 0;
  }
  if (zkr__now_ns() >= deadline_ns)
    return ETIMEDOUT;
  ts.tv_sec = deadline_ns / 1000000000;
  ts.tv_nsec = deadline_ns % 1000000000;
  return pthread_cond_timedwait(cond, mu, &ts) == ETIMEDOUT ? ETIMEDOUT : 0;
}
