/* zkr_multilock: several zkr_locks taken as one, all or none.
 *
 * For work that needs more than one resource at once (moving stock between
 * two warehouses needs both). One zkr_lock per path, each speaking the
 * zkr_lock protocol, so a single zkr_lock on one of the paths excludes the
 * multi-lock and the other way round.
 *
 * The parts are always taken in one global order, the paths sorted by
 * strcmp(), whatever order the caller gives them in: two multi-locks over
 * overlapping paths can never deadlock each other. (Curator's
 * InterProcessMultiLock takes them in the caller's order and can.) A
 * duplicate path is rejected, not collapsed: it is most likely a bug in the
 * caller.
 *
 * Reentrancy is per thread like zkr_lock's: the holding thread may acquire
 * again (a count, no request); other threads sharing one zkr_multilock
 * contend like separate clients. All functions are safe from any thread;
 * acquire, release and free must not be called from a zkr or ZooKeeper
 * callback. */
#ifndef ZKR_MULTILOCK_H
#define ZKR_MULTILOCK_H

#include <stdint.h>
#include <zkr/export.h>
#include <zkr/lock.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_multilock zkr_multilock;

/* Creates a multi-lock over count paths (absolute, e.g. "/stock/berlin";
 * the array is borrowed for the call, the paths are copied) on session s.
 * Sends nothing to the server. opts may be NULL; its id and acl apply to
 * every part. Its on_lost, if set, is called once per hold of the
 * multi-lock, when the first of its parts is lost, with that part's
 * zkr_lock (owned by the multi-lock: use it only inside the callback, e.g.
 * for zkr_lock_lost_reason()) and opts->arg; it runs on the session's event
 * thread and must not block nor call a blocking zkr function (see
 * zkr_lock_lost_fn). On success the caller owns *out; free it with
 * zkr_multilock_free(). Returns ZKR_EINVAL (out or s NULL, count <= 0,
 * paths NULL, a bad or duplicate path, a bad option: *out is NULL and
 * nothing was kept), ZKR_ENOMEM. */
ZKR_EXTERN int zkr_multilock_new(zkr_multilock **out, zkr_session *s, const char *const *paths, int count,
                                 const zkr_lock_opts *opts);

/* Acquires every part for the calling thread, or none. timeout_ms is one
 * deadline for the whole acquisition (CLOCK_MONOTONIC): < 0 waits forever,
 * 0 tries each part once, > 0 waits at most that long in total; each part
 * gets the time left, and once it is gone the acquisition fails. On failure
 * every part taken is released (its node deleted) before the call returns,
 * and the code is the cause, the first failing part's:
 * Returns ZKR_OK (all held; reentrant acquires only count), ZKR_ETIMEDOUT,
 * ZKR_ESESSION, ZKR_ECLOSED, ZKR_ELOST (a part's node was deleted by
 * someone else, also one taken earlier in this acquisition), ZKR_ENOAUTH,
 * ZKR_EZK, ZKR_ENOMEM, ZKR_EINVAL (m NULL). A reentrant acquire while a part
 * is lost returns ZKR_ELOST or ZKR_ESESSION and counts nothing. The wait is
 * a cancellation point: a thread cancelled in it holds no part. */
ZKR_EXTERN int zkr_multilock_acquire(zkr_multilock *m, int timeout_ms);

/* Releases one level of the calling thread's hold; inner levels only
 * count. At zero every part is released, in reverse order, each returning
 * once the server deleted its node; a part that fails does not stop the
 * others, and a lost part is reported here. Returns ZKR_OK,
 * ZKR_ENOTHELD (the calling thread holds nothing; nothing changes), or the
 * first error of a part in release order: ZKR_ELOST, ZKR_ESESSION,
 * ZKR_ENOAUTH as zkr_lock_release() returns them; ZKR_EINVAL (m NULL). The
 * calling thread holds nothing at zero whatever the code. */
ZKR_EXTERN int zkr_multilock_release(zkr_multilock *m);

/* Returns 1 if the calling thread holds the multi-lock and every part is
 * held and valid (zkr_lock_held()), else 0. Never blocks. */
ZKR_EXTERN int zkr_multilock_held(zkr_multilock *m);

/* Returns the CLOCK_MONOTONIC time (ns) until which every part of the
 * calling thread's hold is certainly valid: the earliest of the parts'
 * zkr_lock_valid_until(). 0 if the calling thread does not hold every
 * part. */
ZKR_EXTERN int64_t zkr_multilock_valid_until(zkr_multilock *m);

/* Frees the multi-lock and its parts; a hold is released first (every
 * part's node deleted, in reverse order). Accepts NULL. Unlike
 * zkr_lock_free() it does not wake waiters: no other call on m may be in
 * progress or start once free has begun. */
ZKR_EXTERN void zkr_multilock_free(zkr_multilock *m);

#ifdef __cplusplus
}
#endif
#endif
