/* Routing the ZooKeeper client's log per session.
 *
 * The client's per-handle log callback takes no context pointer, so each
 * session that routes its log gets one of a fixed set of trampolines, each
 * bound to one slot holding the caller's function and argument. */
#include "internal.h"

#include <stdio.h>

#define ZKR__LOG_SLOTS 32

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
#define T(i) \
  static void tramp##i(const char *m) { deliver(i, m); }
T(0) T(1) T(2) T(3) T(4) T(5) T(6) T(7) T(8) T(9) T(10) T(11) T(12) T(13) T(14) T(15)
T(16) T(17) T(18) T(19) T(20) T(21) T(22) T(23) T(24) T(25) T(26) T(27) T(28) T(29) T(30) T(31)
#undef T

static const log_callback_fn tramps[ZKR__LOG_SLOTS] = {
    tramp0,  tramp1,  tramp2,  tramp3,  tramp4,  tramp5,  tramp6,  tramp7,  tramp8,  tramp9,  tramp10,
    tramp11, tramp12, tramp13, tramp14, tramp15, tramp16, tramp17, tramp18, tramp19, tramp20, tramp21,
    tramp22, tramp23, tramp24, tramp25, tramp26, tramp27, tramp28, tramp29, tramp30, tramp31};
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
