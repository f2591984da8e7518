/* Asynchronous holds: acquire a lock without a blocked thread.
 *
 * zkr_lock_acquire_async() and zkr_rwlock_acquire_async() start an
 * acquisition and return at once; the outcome comes to on_acquired on the
 * session's event thread (in loop mode: inside zkr_session_dispatch(), see
 * zkr/session.h), exactly once. A granted acquisition is a zkr_hold: a
 * handle of its own, not tied to any thread and not reentrant (each
 * acquisition is a contender node of its own, queued like another
 * client's). Blocking and asynchronous acquisitions of one object may be
 * mixed; they contend with each other as separate clients do.
 *
 * Ownership of a zkr_hold:
 *  - after on_acquired(h, rc != ZKR_OK) returns, the library frees h;
 *  - after on_acquired(h, ZKR_OK), the caller holds it until it calls
 *    zkr_hold_release(); once that call's on_released returns, the library
 *    frees h. A hold lost meanwhile (on_lost) is still released that way;
 *  - freeing the lock object (zkr_lock_free(), zkr_rwlock_free()) ends every
 *    hold of it, on the freeing thread, before the free returns (a callback
 *    of a hold running on another thread is waited for first: it may still
 *    release its hold, but an acquisition it starts gets ZKR_ECLOSED): a
 *    pending acquisition's on_acquired gets ZKR_ECLOSED, a pending
 *    release's on_released too; a granted hold is released without a
 *    callback; then the handles are freed (also those the caller still
 *    holds: do not use them after the free). Freed from inside a hold's own
 *    callback, that hold's owed callback comes once the running one
 *    returned;
 *  - closing the session (zkr_session_close()) ends what runs on it before
 *    the close returns (on the event thread, or on the closing thread for
 *    what the event thread had not run yet; in loop mode, on the closing
 *    thread): a pending acquisition's on_acquired gets ZKR_ECLOSED, a
 *    granted hold's on_lost ZKR_ESESSION, a pending release's on_released
 *    its outcome (ZKR_OK if the server confirmed the delete in time, else
 *    ZKR_ESESSION). A granted hold can no longer be released then
 *    (zkr_hold_release() returns ZKR_ECLOSED): the lock's free frees it.
 * No callback of a hold runs after its last one (on_acquired with an error,
 * or on_released) returned.
 *
 * Callbacks must not block nor call a blocking zkr function; they may call
 * every function of this header (release a hold from its on_acquired, start
 * the next acquisition from on_released).
 *
 * Functions here never block on the network and may be called from any
 * thread (a loop-mode session's from the loop's thread), and from callbacks.
 * Outside loop mode a call on h from another thread must not race h's last
 * callback, after which h is freed: in loop mode there is no such race,
 * since the callbacks run on the caller's own thread. */
#ifndef ZKR_ASYNC_H
#define ZKR_ASYNC_H

#include <stddef.h>
#include <stdint.h>
#include <zkr/export.h>
#include <zkr/lock.h>
#include <zkr/rwlock.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_hold zkr_hold;

/* A hold's callback: rc is the outcome; arg the pointer given with it. */
typedef void (*zkr_hold_fn)(zkr_hold *h, int rc, void *arg);

/* Starts acquiring l. timeout_ms < 0 waits as long as the session lives, 0
 * tries once (the outcome still comes through on_acquired), > 0 waits at
 * most that long (CLOCK_MONOTONIC).
 *
 * on_acquired(h, rc, arg) (required) is called exactly once with:
 *   ZKR_OK        granted: the caller holds h (token, validity below);
 *   ZKR_ETIMEDOUT the deadline passed (or a try found the lock taken);
 *   ZKR_ECANCELLED zkr_hold_cancel() was called before the outcome came;
 *   ZKR_ELOST     our waiting node was deleted by another client;
 *   ZKR_ESESSION  the session was lost; ZKR_ECLOSED the lock is being freed
 *                 or the session closed; ZKR_ENOAUTH, ZKR_EEXHAUSTED, ZKR_EZK.
 * With any code but ZKR_OK our node is gone or being deleted (the delete is
 * sent and completes in the background, retried across connection loss;
 * a later contender of this session sorts after it).
 *
 * on_lost(h, rc, arg) (optional) is called at most once, after
 * on_acquired(h, ZKR_OK), when the granted hold is lost: rc is ZKR_ELOST
 * (our node was deleted) or ZKR_ESESSION (the session was lost or its
 * validity passed); zkr_hold_lost_reason() tells more. The lock's own
 * zkr_lock_opts.on_lost is for its threads' holds and is not called.
 *
 * On success *out receives the handle (the caller may keep it to cancel;
 * outside loop mode on_acquired may run, and free h, before this returns).
 * Returns ZKR_OK, ZKR_EINVAL (NULL l, on_acquired or out), ZKR_ESESSION /
 * ZKR_ECLOSED (session unusable, lock being freed), ZKR_ENOMEM: then no
 * callback is ever called. */
ZKR_EXTERN int zkr_lock_acquire_async(zkr_lock *l, int timeout_ms, zkr_hold_fn on_acquired,
                                      zkr_hold_fn on_lost, void *arg, zkr_hold **out);

/* The same for the read (write = 0) or write (write = 1) side of rw. A
 * read hold waits only for earlier writers; a write hold for everyone
 * earlier. rw's own on_lost is not called for asynchronous holds. */
ZKR_EXTERN int zkr_rwlock_acquire_async(zkr_rwlock *rw, int write, int timeout_ms, zkr_hold_fn on_acquired,
                                        zkr_hold_fn on_lost, void *arg, zkr_hold **out);

/* Cancels a pending acquisition: our node is deleted (in the background)
 * and on_acquired is called with ZKR_ECANCELLED, through the event thread,
 * even if the grant had arrived but not yet been delivered: exactly one
 * outcome, and nothing is held afterwards. Never waits, not even for the
 * event thread. Returns ZKR_OK, or ZKR_EINVAL when h is NULL, a cancel was
 * accepted already, or its grant was already delivered (a granted hold is given back with
 * zkr_hold_release()). After on_acquired delivered an error, h is freed:
 * do not call this any more. */
ZKR_EXTERN int zkr_hold_cancel(zkr_hold *h);

/* Releases a granted hold: our node is deleted and on_released(h, rc, arg)
 * (may be NULL) is called once the server confirmed it (it keeps trying
 * across connection loss), with ZKR_OK; ZKR_ELOST if the hold had been
 * lost to a deletion by another client (also one first seen by the
 * delete); ZKR_ESESSION if it had been lost with the session, or the
 * session went first (the node goes with it); ZKR_ENOAUTH if the ACL
 * refuses the delete; ZKR_ECLOSED if the lock is freed first. Then h is
 * freed. Returns ZKR_OK (on_released will be called), ZKR_ECLOSED when the
 * session is closed (nothing is called; the lock's free frees h), or
 * ZKR_EINVAL when h is NULL, not granted, or already released. */
ZKR_EXTERN int zkr_hold_release(zkr_hold *h, zkr_hold_fn on_released, void *arg);

/* 1 while h is granted, not lost and within its validity deadline, else 0. */
ZKR_EXTERN int zkr_hold_held(zkr_hold *h);

/* Stores the hold's fencing token (the czxid of its node: strictly
 * increasing across successive holders of the path) in *token. Returns
 * ZKR_OK, ZKR_ENOTHELD (not granted, or lost), ZKR_EINVAL. */
ZKR_EXTERN int zkr_hold_token(zkr_hold *h, int64_t *token);

/* The CLOCK_MONOTONIC time (ns) until which the hold is certainly valid (see
 * zkr_lock_valid_until()); 0 when not granted or lost. */
ZKR_EXTERN int64_t zkr_hold_valid_until(zkr_hold *h);

/* Copies the full path of the hold's node into buf. Returns ZKR_OK,
 * ZKR_ENOTHELD (no node known yet, or the hold ended), ZKR_EINVAL (buf too
 * small). */
ZKR_EXTERN int zkr_hold_node(zkr_hold *h, char *buf, size_t len);

/* Why the hold was lost (a zkr_lost_reason), or ZKR_LOST_NONE. */
ZKR_EXTERN int zkr_hold_lost_reason(zkr_hold *h);

#ifdef __cplusplus
}
#endif
#endif
