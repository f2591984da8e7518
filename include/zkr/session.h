/* zkr_session: one ZooKeeper session that recipes run on.
 *
 * A session owns one ZooKeeper client handle (zhandle_t), one event thread of
 * the library (heartbeats, the local expiry clock, user notifications; in
 * loop mode, below, the caller's thread inside zkr_session_dispatch() takes
 * its place: "the session's event thread" means that thread then) and the
 * contender nodes of every recipe object created on it.
 *
 * States: CONNECTED; SUSPENDED (connection lost, the session may survive on
 * the server: locks stay held, waiters keep their place); LOST (expired,
 * closed, or its validity deadline passed without the server confirming it:
 * terminal — open a new session to continue).
 *
 * The library counts the session's lifetime itself: ZooKeeper tells a client
 * that its session expired only once it reconnects. The session is declared
 * LOST once `negotiated timeout - expiry margin` has passed since the moment
 * the last request the server acknowledged was sent.
 *
 * Thread safety: every function here may be called from any thread, except
 * zkr_session_close(), which must not be called from a zkr callback, and
 * those of a session in loop mode (below), which belong to the loop's
 * thread. */
#ifndef ZKR_SESSION_H
#define ZKR_SESSION_H

#include <stdint.h>
#include <stdio.h>
#include <zkr/export.h>
#include <zookeeper/zookeeper.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_session zkr_session;

typedef enum zkr_session_state {
  ZKR_SESSION_CONNECTED = 1,
  ZKR_SESSION_SUSPENDED = 2,
  ZKR_SESSION_LOST = 3
} zkr_session_state;

/* Why a session, or a hold on one, was lost (zkr_session_lost_reason(),
 * zkr_lock_lost_reason()). */
typedef enum zkr_lost_reason {
  ZKR_LOST_NONE = 0,     /* nothing was lost */
  ZKR_LOST_EXPIRED = 1,  /* the server expired the session */
  ZKR_LOST_DEADLINE = 2, /* the validity deadline passed before the server
                            confirmed the session (disconnected or paused) */
  ZKR_LOST_DELETED = 3,  /* another client deleted our node (holds only) */
  ZKR_LOST_CLOSED = 4,   /* the session was closed */
  ZKR_LOST_AUTH = 5      /* authentication failed on reconnection */
} zkr_lost_reason;

/* Returns a short static text for a zkr_lost_reason ("session expired",
 * "validity deadline passed while disconnected", "node deleted by another
 * client", ...); never NULL. Any thread. */
ZKR_EXTERN const char *zkr_lost_reason_str(int reason);

/* Receives one line of the ZooKeeper client's own log (no trailing newline).
 * Called from any of the client's threads; must not block or call zkr. */
typedef void (*zkr_log_fn)(const char *message, void *arg);

/* Called on the session's event thread (in loop mode: in
 * zkr_session_dispatch()) on every state change, in order.
 * It must not call zkr_session_close(); it may call non-blocking zkr
 * functions (zkr_session_get_state(), zkr_lock_held(), ...). */
typedef void (*zkr_state_fn)(zkr_session *s, zkr_session_state state, void *arg);

/* At most this many open sessions may route the client's log (log_fn or
 * log_stream) at once: the client's log callback carries no context, so
 * each such session takes one of a fixed set of entry points. */
#define ZKR_LOG_ROUTES_MAX 256

typedef struct zkr_session_opts {
  int session_timeout_ms; /* requested; 0 = 10000. The server may negotiate it */
  int connect_timeout_ms; /* wait for the first connection; 0 = 10000 */
  int expiry_margin_ms;   /* subtracted from the lifetime; 0 = timeout/10, at least 50 */
  const char *digest;     /* "user:password" for digest auth, or NULL (copied) */
  zkr_log_fn log_fn;      /* the client's log goes here; NULL and log_stream */
  void *log_arg;          /*   NULL = quiet (discarded) */
  FILE *log_stream;       /* borrowed; used when log_fn is NULL */
  int resolve_delay_ms;   /* host re-resolution window; 0 = never during normal
                             operation (only on reconnect), >0 = that window */
  zkr_state_fn on_state;  /* optional listener installed before connecting */
  void *state_arg;
  int loop; /* 1: loop mode (see "Loop mode" below); 0: the event thread;
               anything else is refused (ZKR_EINVAL) */
} zkr_session_opts;

/* Which rule a connect string "host:port[,host:port...][/chroot]" breaks,
 * as a static text ("each entry needs an explicit :port (host:2181)"), or
 * NULL if it is well formed: zkr_session_open() refuses exactly these with
 * ZKR_EINVAL. Any thread. */
ZKR_EXTERN const char *zkr_hosts_problem(const char *hosts);

/* Which rule a recipe path breaks, as a static text ("it must be absolute
 * (start with /)"), or NULL if it is usable: every recipe's _new() refuses
 * exactly these with ZKR_EINVAL. Any thread. */
ZKR_EXTERN const char *zkr_path_problem(const char *path);

/* Opens a session to hosts ("host:port,host:port[/chroot]") and waits until it
 * is connected. opts may be NULL (defaults) and is copied.
 *
 * On success *out is set; the caller owns it and frees it with
 * zkr_session_close(). Returns ZKR_EINVAL for a NULL or malformed hosts
 * string or bad options, ZKR_ECONNECT when no server answered within
 * connect_timeout_ms or no host name resolves, ZKR_ENOCHROOT when the
 * chroot ("/app" in "h:2181/app") does not exist on the server (a session
 * cannot create its own root), ZKR_ENOAUTH when authentication failed,
 * ZKR_ELOGROUTES when ZKR_LOG_ROUTES_MAX open sessions already route their
 * log, ZKR_ENOMEM.
 * On failure nothing is left behind (no thread, no memory). */
ZKR_EXTERN int zkr_session_open(zkr_session **out, const char *hosts, const zkr_session_opts *opts);

/* Closes the session: every lock held through it is released (its node goes
 * with the session), every waiter on it returns ZKR_ECLOSED, every recipe
 * object on it becomes unusable (free them with their _free()). Accepts NULL.
 * Must not be called from a zkr or ZooKeeper callback. */
ZKR_EXTERN void zkr_session_close(zkr_session *s);

/* Returns the underlying ZooKeeper handle (borrowed; valid until close). Do
 * not close it or replace its watcher. */
ZKR_EXTERN zhandle_t *zkr_session_zhandle(zkr_session *s);

/* Returns the current zkr_session_state. */
ZKR_EXTERN int zkr_session_get_state(zkr_session *s);

/* Returns the ZooKeeper session id (0 if s is NULL). */
ZKR_EXTERN int64_t zkr_session_id(zkr_session *s);

/* Returns the session timeout negotiated with the server, in ms. */
ZKR_EXTERN int zkr_session_timeout(zkr_session *s);

/* Returns the CLOCK_MONOTONIC time (ns) until which the session is certainly
 * alive on the server: send time of the last acknowledged request +
 * negotiated timeout - expiry margin. 0 once LOST. */
ZKR_EXTERN int64_t zkr_session_valid_until(zkr_session *s);

/* Returns why the session became LOST (a zkr_lost_reason), or
 * ZKR_LOST_NONE while it is not LOST. Never blocks on the network. */
ZKR_EXTERN int zkr_session_lost_reason(zkr_session *s);

/* Adds a state listener (see zkr_state_fn). *id, if not NULL, receives a
 * handle for zkr_session_remove_listener(). Returns ZKR_OK, ZKR_EINVAL,
 * ZKR_ENOMEM. */
ZKR_EXTERN int zkr_session_add_listener(zkr_session *s, zkr_state_fn fn, void *arg, int *id);

/* Removes a listener; once it returns the listener is not running and will
 * not be called again (unless called from that listener itself). */
ZKR_EXTERN int zkr_session_remove_listener(zkr_session *s, int id);

/* --- Loop mode ----------------------------------------------------------------
 *
 * For single-threaded event loops (libuv, libevent, epoll): a session opened
 * with opts.loop = 1 starts no event thread of its own. Every zkr callback
 * on it (state listeners, on_lost, on_change, asynchronous completions:
 * zkr/async.h) runs inside zkr_session_dispatch(), on the thread that calls
 * it, and on no other thread. The session's housekeeping (its validity
 * clock, the pings that keep it confirmed, background deletes, watches on
 * our own nodes) runs there too. The ZooKeeper client keeps its own two
 * threads (I/O and completions); they never call user code.
 *
 * The loop watches zkr_session_fd() for readability and calls
 * zkr_session_dispatch() when it is readable, and at the latest after the
 * number of ms the last dispatch returned. A loop that stalls for longer
 * than the session's validity (timeout - expiry margin) loses the
 * session: the library's clock can no longer vouch for it, so every hold
 * on it stops being valid at once (zkr_lock_held(), zkr_hold_held() and
 * the valid_until functions say so during the stall), and the next
 * dispatch declares the session LOST (state listeners, on_lost) and
 * deletes its nodes. Unlike a paused process, the ZooKeeper client's own
 * threads keep the session alive on the server meanwhile: other clients
 * get the lock only once the loop turns again (or the process ends). The
 * state (zkr_session_get_state()) changes at that dispatch too.
 *
 * zkr_session_open() still blocks until the session is connected (it drives
 * the housekeeping itself meanwhile); call it before entering the loop.
 * Call every zkr function of a loop-mode session from the loop's thread:
 * freeing an object or closing the session runs the callbacks still owed
 * to it there, at once. The adapters in zkr/adapters/ (libuv, libevent)
 * do the watching in a few lines. */

/* The file descriptor a loop-mode session signals through: readable while
 * zkr_session_dispatch() has work. Borrowed (valid until close; never close
 * it, never read it). Returns the descriptor, or ZKR_EINVAL if s is NULL or
 * not in loop mode. Any thread. */
ZKR_EXTERN int zkr_session_fd(zkr_session *s);

/* Runs, on the calling thread, the callbacks of a loop-mode session pending
 * on entry and the housekeeping that fell due. Returns the time in ms (>= 0)
 * after which it must be called again even if the descriptor stays quiet (0
 * when more is pending already: callbacks queued meanwhile), or
 * ZKR_EINVAL if s is NULL, not in loop mode, or the call comes from inside
 * a dispatch (from a zkr callback: it is not reentrant). Never blocks on the
 * network. */
ZKR_EXTERN int zkr_session_dispatch(zkr_session *s);

/* CLOCK_MONOTONIC now, in ns: the clock every zkr deadline uses. */
ZKR_EXTERN int64_t zkr_monotonic_ns(void);

#ifdef __cplusplus
}
#endif
#endif
