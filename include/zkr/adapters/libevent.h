/* zkr/adapters/libevent.h: runs a loop-mode session (zkr/session.h, "Loop
 * mode") on a libevent event_base. Header-only: include it in the one file
 * that attaches, and link libevent and libzkrecipes. Its functions are
 * static inline: a file that includes it and uses none gets no warning.
 *
 *   zkr_event *a;
 *   zkr_event_attach(s, base, &a);             // s opened with opts.loop = 1
 *   ... event_base_dispatch(base) ...          // zkr callbacks run in it
 *   zkr_event_detach(a);                       // then zkr_session_close(s)
 *
 * A persistent EV_READ event watches zkr_session_fd() and a timer event
 * fires after the time the last zkr_session_dispatch() returned; either one
 * dispatches, and the timer is re-armed with the new value after every
 * dispatch. Both events are pending while attached, so the base does not
 * run out of events while a session is attached: a session that is not
 * dispatched in time would be lost.
 *
 * Every function here must be called on the base's thread. */
#ifndef ZKR_ADAPTERS_LIBEVENT_H
#define ZKR_ADAPTERS_LIBEVENT_H

#include <event2/event.h>
#include <stdlib.h>
#include <zkr/error.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One attachment of a session to a base. The fields are the adapter's own:
 * do not touch them. */
typedef struct zkr_event {
  zkr_session *s; /* borrowed */
  struct event *read;
  struct event *timer;
  int dispatching; /* inside zkr_session_dispatch(): a detach defers the free */
  int detached;
} zkr_event;

/* Both events' callback: dispatches, then re-arms the timer with the time
 * dispatch returned, unless a callback run by the dispatch detached us;
 * the memory is freed here then, the one place that still reads it. */
static inline void zkr__event_dispatch(evutil_socket_t fd, short what, void *arg) {
  zkr_event *a = (zkr_event *)arg;
  struct timeval tv;
  int ms;

  (void)fd;
  (void)what;
  a->dispatching = 1;
  ms = zkr_session_dispatch(a->s);
  a->dispatching = 0;
  if (a->detached) {
    free(a);
    return;
  }
  /* ms < 0 only when dispatch was reentered (the base run from inside a zkr
   * callback): the outer dispatch re-arms the timer when it returns. */
  if (ms >= 0) {
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(a->timer, &tv);
  }
}

/* Attaches the loop-mode session s to base: from now on the base dispatches
 * s whenever its descriptor is readable or its timeout expires, and every
 * zkr callback of s runs inside event_base_dispatch() (or _loop()), on the
 * base's thread. The first dispatch happens in the base's next iteration (a
 * zero timeout).
 *
 * s and base are borrowed: both must outlive the attachment. On success
 * *out receives the attachment; the caller owns it and ends it with
 * zkr_event_detach(). Call on the base's thread (a zkr callback is fine).
 * Attach a session once: libevent accepts a second attachment of one
 * descriptor without complaint (the libuv adapter refuses it), and the
 * session would then be dispatched twice per wake-up.
 *
 * Returns ZKR_OK; ZKR_EINVAL if s, base or out is NULL, s is not in loop
 * mode (opts.loop = 0), or libevent refuses the descriptor; ZKR_ENOMEM. On
 * failure nothing is attached and *out is untouched. */
static inline int zkr_event_attach(zkr_session *s, struct event_base *base, zkr_event **out) {
  struct timeval now = {0, 0};
  zkr_event *a;
  int fd = zkr_session_fd(s), rc = ZKR_ENOMEM;

  if (fd < 0 || base == NULL || out == NULL)
    return ZKR_EINVAL;
  a = (zkr_event *)calloc(1, sizeof(*a));
  if (a == NULL)
    return ZKR_ENOMEM;
  a->s = s;
  a->read = event_new(base, fd, EV_READ | EV_PERSIST, zkr__event_dispatch, a);
  a->timer = evtimer_new(base, zkr__event_dispatch, a);
  if (a->read != NULL && a->timer != NULL) {
    /* event_add fails only when the backend refuses the descriptor. */
    rc = event_add(a->read, NULL) == 0 && evtimer_add(a->timer, &now) == 0 ? ZKR_OK : ZKR_EINVAL;
  }
  if (rc != ZKR_OK) {
    /* event_free() does not accept NULL. */
    if (a->read != NULL)
      event_free(a->read);
    if (a->timer != NULL)
      event_free(a->timer);
    free(a);
    return rc;
  }
  *out = a;
  return ZKR_OK;
}

/* Ends the attachment: s is no longer dispatched and its descriptor is no
 * longer watched (so zkr_session_close(s) may follow at once), and a is
 * freed: at once, or, when called from a zkr callback running in this
 * adapter's dispatch, as soon as that dispatch returns. Accepts NULL; call
 * it once, on the base's thread.
 *
 * A session left attached to nothing is not dispatched: close it, or
 * attach it again, promptly (a session not dispatched past its validity is
 * lost). */
static inline void zkr_event_detach(zkr_event *a) {
  if (a == NULL)
    return;
  /* Freeing an event from inside its own callback is allowed by libevent
   * (single-threaded base); only our struct must outlive the dispatch. */
  event_free(a->read);
  event_free(a->timer);
  if (a->dispatching)
    a->detached = 1;
  else
    free(a);
}

#ifdef __cplusplus
}
#endif
#endif
