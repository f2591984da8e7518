/* Routing the ZooKeeper client's log per session.
 *
 * The client's per-handle log callback takes no context pointer, so each
 * session that routes its log gets one of a fixed set of trampolines, each
 * bound to one slot holding the caller's function and argument. With every
 * slot taken, opening one more such session fails with ZKR_ELOGROUTES. */
#include "common.h"

#include <stdio.h>

#define ZKR__LOG_SLOTS ZKR_LOG_ROUTES_MAX /* stated in zkr/session.h */

typedef struct log_slot {
  int used;
  zkr_log_fn fn;
  void *arg;
  FILE *stream;
} log_slot;

static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static log_slot slots[ZKR__LOG_SLOTS];

static void deliver(int i, const char *message) {
  log_slot *sl = &slots[i];

  /* A slot is written only while its session is being opened or closed,
   * when the client's threads do not log through it. */
  if (sl->fn != NULL)
    sl->fn(message, sl->arg);
  else if (sl->stream != NULL)
    fprintf(sl->stream, "%s\n", message);
}

static void discard(const char *message) {
  (void)message;
}

/* clang-format off */
/* ZKR__LOG_SLOTS trampolines: T64(d, d) makes the 64 whose base-4 names
 * start with digit d; each computes its slot number from its name. */
#define T(name, n) static void tramp##name(const char *m) { deliver(n, m); }
#define T4(name, n) T(name##0, (n)*4) T(name##1, (n)*4+1) T(name##2, (n)*4+2) T(name##3, (n)*4+3)
#define T16(name, n) T4(name##0, (n)*4) T4(name##1, (n)*4+1) T4(name##2, (n)*4+2) T4(name##3, (n)*4+3)
#define T64(name, n) T16(name##0, (n)*4) T16(name##1, (n)*4+1) T16(name##2, (n)*4+2) T16(name##3, (n)*4+3)
T64(0, 0) T64(1, 1) T64(2, 2) T64(3, 3)
#define E(i) tramp##i,
#define E4(i) E(i##0) E(i##1) E(i##2) E(i##3)
#define E16(i) E4(i##0) E4(i##1) E4(i##2) E4(i##3)
#define E64(i) E16(i##0) E16(i##1) E16(i##2) E16(i##3)
static const log_callback_fn tramps[ZKR__LOG_SLOTS] = {E64(0) E64(1) E64(2) E64(3)};
#undef T
#undef T4
#undef T16
#undef T64
#undef E
#undef E4
#undef E16
#undef E64
/* clang-format on */

log_callback_fn zkr__log_bind(zkr_log_fn fn, void *arg, FILE *stream, int *slot) {
  int i;

  *slot = -1;
  if (fn == NULL && stream == NULL)
    return discard;
  pthread_mutex_lock(&slots_mu);
  for (i = 0; i < ZKR__LOG_SLOTS; i++) {
    if (!slots[i].used) {
      slots[i].used = 1;
      slots[i].fn = fn;
      slots[i].arg = arg;
      slots[i].stream = stream;
      *slot = i;
      break;
    }
  }
  pthread_mutex_unlock(&slots_mu);
  return *slot >= 0 ? tramps[*slot] : NULL;
}

void zkr__log_unbind(int slot) {
  if (slot < 0)
    return;
  pthread_mutex_lock(&slots_mu);
  slots[slot].used = 0;
  slots[slot].fn = NULL;
  slots[slot].stream = NULL;
  pthread_mutex_unlock(&slots_mu);
}
