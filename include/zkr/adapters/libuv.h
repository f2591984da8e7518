/* zkr/adapters/libuv.h: runs a loop-mode session (zkr/session.h, "Loop
 * mode") on a libuv loop. Header-only: include it in the one file that
 * attaches, and link libuv and libzkrecipes. Its functions are static
 * inline: a file that includes it and uses none gets no warning.
 *
 *   zkr_uv *a;
 *   zkr_uv_attach(s, uv_default_loop(), &a);   // s opened with opts.loop = 1
 *   ... uv_run(loop, UV_RUN_DEFAULT) ...        // zkr callbacks run in it
 *   zkr_uv_detach(a);                           // then zkr_session_close(s)
 *
 * A uv_poll_t watches zkr_session_fd() and a uv_timer_t fires after the
 * time the last zkr_session_dispatch() returned; either one dispatches, and
 * the timer is re-armed with the new value after every dispatch. Both
 * handles are active while attached, so the loop does not end on its own
 * while a session is attached: a session that is not dispatched in time
 * would be lost.
 *
 * Every function here must be called on the loop's thread. Under -std=c11
 * (no GNU extensions), define _POSIX_C_SOURCE 200809L before any include:
 * uv.h needs the POSIX types it hides otherwise.
 */
#ifndef ZKR_ADAPTERS_LIBUV_H
#define ZKR_ADAPTERS_LIBUV_H

#include <stdlib.h>
#include <uv.h>
#include <zkr/error.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One attachment of a session to a loop. The fields are the adapter's own:
 * do not touch them. */
typedef struct zkr_uv {
  zkr_session *s; /* borrowed */
  uv_poll_t poll;
  uv_timer_t timer;
  int open; /* handles not yet closed; the memory goes with the last */
} zkr_uv;

/* The timer's callback, and the descriptor's through zkr__uv_poll_cb:
 * dispatches, then re-arms the timer with the time dispatch returned, unless
 * a callback run by the dispatch detached us. The handles are closing then,
 * but their memory lives until their close callbacks, which libuv runs after
 * this callback returns. */
static inline void zkr__uv_dispatch(uv_timer_t *t) {
  zkr_uv *a = (zkr_uv *)t->data;
  int ms = zkr_session_dispatch(a->s);

  /* ms < 0 only when dispatch was reentered (the loop run from inside a zkr
   * callback): the outer dispatch re-arms the timer when it returns. */
  if (ms >= 0 && !uv_is_closing((uv_handle_t *)t))
    uv_timer_start(t, zkr__uv_dispatch, (uint64_t)ms, 0);
}

static inline void zkr__uv_poll_cb(uv_poll_t *p, int status, int events) {
  /* An error status (an eventfd has none) is handled as readable: a
   * dispatch with nothing to do costs nothing. */
  (void)status;
  (void)events;
  zkr__uv_dispatch(&((zkr_uv *)p->data)->timer);
}

static inline void zkr__uv_close_cb(uv_handle_t *h) {
  zkr_uv *a = (zkr_uv *)h->data;

  if (--a->open == 0)
    free(a);
}

/* Attaches the loop-mode session s to loop: from now on the loop dispatches
 * s whenever its descriptor is readable or its timeout expires, and every
 * zkr callback of s runs inside uv_run(), on the loop's thread. The first
 * dispatch happens in the loop's next iteration (a zero timeout).
 *
 * s and loop are borrowed: both must outlive the attachment. On success
 * *out receives the attachment; the caller owns it and ends it with
 * zkr_uv_detach(). Call on the loop's thread (a zkr callback is fine).
 *
 * Returns ZKR_OK; ZKR_EINVAL if s, loop or out is NULL, s is not in loop
 * mode (opts.loop = 0), or libuv refuses the descriptor (s is attached to
 * this loop already); ZKR_ENOMEM. On
 * failure nothing is attached and *out is untouched. */
static inline int zkr_uv_attach(zkr_session *s, uv_loop_t *loop, zkr_uv **out) {
  zkr_uv *a;
  int fd = zkr_session_fd(s);

  if (fd < 0 || loop == NULL || out == NULL)
    return ZKR_EINVAL;
  a = (zkr_uv *)calloc(1, sizeof(*a));
  if (a == NULL)
    return ZKR_ENOMEM;
  if (uv_poll_init(loop, &a->poll, fd) != 0) {
    /* Nothing was registered with the loop: no close needed. */
    free(a);
    return ZKR_EINVAL;
  }
  /* uv_timer_init cannot fail; from here on the memory is freed by the
   * handles' close callbacks. */
  uv_timer_init(loop, &a->timer);
  a->s = s;
  a->open = 2;
  a->poll.data = a;
  a->timer.data = a;
  uv_poll_start(&a->poll, UV_READABLE, zkr__uv_poll_cb);
  uv_timer_start(&a->timer, zkr__uv_dispatch, 0, 0);
  *out = a;
  return ZKR_OK;
}

/* Ends the attachment: s is no longer dispatched and its descriptor is no
 * longer watched (so zkr_session_close(s) may follow at once). Accepts
 * NULL. May be called from a zkr callback running in this loop's dispatch.
 *
 * The handles are closed with uv_close() and a is freed in their close
 * callbacks, which run in a later iteration of the loop: let uv_run() go on
 * (or run it once more) before uv_loop_close(). A session left attached to
 * nothing is not dispatched: close it, or attach it again, promptly (a
 * session not dispatched past its validity is lost). Call on the loop's
 * thread. */
static inline void zkr_uv_detach(zkr_uv *a) {
  if (a == NULL || uv_is_closing((uv_handle_t *)&a->timer))
    return;
  uv_close((uv_handle_t *)&a->poll, zkr__uv_close_cb);
  uv_close((uv_handle_t *)&a->timer, zkr__uv_close_cb);
}

#ifdef __cplusplus
}
#endif
#endif
