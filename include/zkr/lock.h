/* zkr_lock: a reentrant distributed mutex on ZooKeeper.
 *
 * Protocol: the lock path is a directory; each contender creates an
 * EPHEMERAL_SEQUENTIAL child "_c_<uuid>-lock-<seq>" (Curator's protected
 * InterProcessMutex naming; Kazoo's "__lock__" names are recognised too).
 * The lowest sequence holds; every waiter watches only its predecessor.
 *
 * Reentrancy is per thread: the holding thread may acquire again (a count,
 * no request); other threads sharing one zkr_lock contend like separate
 * clients. Holds are keyed by pthread_t: release before a thread ends (a
 * later thread given the same id by the system would count as the holder).
 * To acquire without a blocked thread (an event loop), see zkr/async.h:
 * zkr_lock_acquire_async() gives a hold of its own, tied to no thread. All functions are safe from any
 * thread; the blocking ones (acquire, release, free, multi) must not be called from a zkr or ZooKeeper
 * callback, except free from a callback of one of l's asynchronous holds (zkr/async.h). */
#ifndef ZKR_LOCK_H
#define ZKR_LOCK_H

#include <stdint.h>
#include <zkr/export.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_lock zkr_lock;

/* Called once per hold when a held lock is lost: the session expired or
 * closed, its validity deadline passed (see zkr_lock_valid_until), or the
 * lock node was deleted by someone else (seen at once while a watch on our
 * own node is set: from the grant for the next in line, else once the
 * contender has existed 0.25 s, to spare short uncontended holds a request;
 * a deletion before that is seen when it is set, or by zkr_lock_release();
 * zkr_lock_multi checks the node every time). Runs on the session's event thread;
 * it must not block nor call a blocking zkr function. After it, the holder
 * must stop touching what the lock protects; zkr_lock_release() then
 * returns ZKR_ELOST (node deleted) or ZKR_ESESSION (session lost) and clears
 * the hold; zkr_lock_lost_reason() tells why. */
typedef void (*zkr_lock_lost_fn)(zkr_lock *l, void *arg);

typedef struct zkr_lock_opts {
  zkr_lock_lost_fn on_lost;     /* optional */
  void *arg;                    /* passed to on_lost */
  const char *id;               /* participant id stored as the node's data;
                                   NULL = "<hostname>:<pid>". Copied. */
  const struct ACL_vector *acl; /* NULL = ZOO_OPEN_ACL_UNSAFE; borrowed:
                                   must outlive the lock */
} zkr_lock_opts;

/* Creates a lock object for path (absolute, e.g. "/locks/daily-report";
 * copied) on session s. Sends nothing to the server. opts may be NULL.
 * On success the caller owns *out; free it with zkr_lock_free().
 * Returns ZKR_EINVAL for a bad path or option, ZKR_ENOMEM. */
ZKR_EXTERN int zkr_lock_new(zkr_lock **out, zkr_session *s, const char *path, const zkr_lock_opts *opts);

/* Acquires the lock for the calling thread. timeout_ms < 0 waits forever,
 * 0 tries once, > 0 waits at most that long (CLOCK_MONOTONIC).
 * Returns ZKR_OK (held; reentrant acquires only count), ZKR_ETIMEDOUT (not
 * acquired; our node was deleted before returning), ZKR_ESESSION (session
 * lost), ZKR_ECLOSED (lock being freed or session closed), ZKR_ELOST (our
 * waiting node was deleted by someone else), ZKR_ENOAUTH, ZKR_EZK.
 * The wait is a cancellation point: a thread cancelled in it leaves the
 * queue (its node is deleted) and holds nothing. */
ZKR_EXTERN int zkr_lock_acquire(zkr_lock *l, int timeout_ms);

/* Releases one level of the calling thread's hold. At zero the node is
 * deleted and the call returns once the server confirmed it (it keeps trying
 * across connection loss) so another client can acquire at once.
 * Returns ZKR_OK, ZKR_ENOTHELD (calling thread holds nothing; nothing
 * changes), ZKR_ELOST (the hold had been lost: another client deleted our
 * node — also when the delete finds it gone, the only news a young hold may
 * get), ZKR_ESESSION (lost with the session), ZKR_ENOAUTH (the directory's
 * ACL lets us create but not delete: our node stays until the session
 * ends); local state is cleared. */
ZKR_EXTERN int zkr_lock_release(zkr_lock *l);

/* Like zkr_lock_release(), but at zero it returns as soon as the delete is
 * sent: the library confirms it in the background, retrying across
 * connection loss, and if the session is lost meanwhile deletes the node as
 * soon as it can. The calling thread holds nothing on return; another client
 * gets the lock once the server has run the delete. A re-acquire through the
 * same session is ordered after it (its node sorts after ours, so it waits
 * for the delete). Saves one round trip per release, for callers that need
 * no confirmation. Returns ZKR_OK, ZKR_ENOTHELD, ZKR_ESESSION as
 * zkr_lock_release() does. */
ZKR_EXTERN int zkr_lock_release_nowait(zkr_lock *l);

/* Returns 1 if the calling thread holds the lock and its validity deadline
 * has not passed, else 0. Never blocks. */
ZKR_EXTERN int zkr_lock_held(zkr_lock *l);

/* Stores the fencing token of the calling thread's hold in *token: the czxid
 * of its lock node, strictly increasing across successive holders of the
 * path (also after the parent is re-created). A storage layer that remembers
 * the highest token it has seen and rejects writes carrying a smaller one
 * is safe from holders that paused past their session.
 * Returns ZKR_OK, ZKR_ENOTHELD, ZKR_EINVAL. */
ZKR_EXTERN int zkr_lock_token(zkr_lock *l, int64_t *token);

/* Returns the CLOCK_MONOTONIC time (ns) until which the calling thread's hold
 * is certainly valid: the server cannot have expired the session and handed
 * the lock on before then. Do work only while zkr_monotonic_ns() is below
 * it. 0 if the calling thread holds nothing. */
ZKR_EXTERN int64_t zkr_lock_valid_until(zkr_lock *l);

/* Copies the full path of the calling thread's lock node into buf.
 * Returns ZKR_OK, ZKR_ENOTHELD, ZKR_EINVAL (buf too small). */
ZKR_EXTERN int zkr_lock_node(zkr_lock *l, char *buf, size_t len);

/* Fenced write: runs ops as one ZooKeeper multi preceded by a check that our
 * lock node still exists, so the write commits only while we hold the lock.
 * results (count entries, may be NULL) receives the results of ops.
 * Returns ZKR_OK, ZKR_ENOTHELD (not held, or the check failed: nothing was
 * written), ZKR_ESESSION, ZKR_ECONNLOSS, ZKR_EZK (an op of the caller failed;
 * see results). */
ZKR_EXTERN int zkr_lock_multi(zkr_lock *l, int count, const zoo_op_t *ops, zoo_op_result_t *results);

/* Returns why the calling thread's hold was lost, or else why the most
 * recently lost hold of l (of any thread) was: a zkr_lost_reason
 * (ZKR_LOST_EXPIRED, ZKR_LOST_DEADLINE, ZKR_LOST_DELETED, ZKR_LOST_CLOSED,
 * ZKR_LOST_AUTH), or ZKR_LOST_NONE if no hold of l was ever lost. Known as
 * soon as zkr_lock_held() returns 0 for that reason, and before on_lost
 * runs. Never waits for the network. */
ZKR_EXTERN int zkr_lock_lost_reason(zkr_lock *l);

/* Frees the lock. A hold of any thread is released first; threads waiting
 * in zkr_lock_acquire() return ZKR_ECLOSED, and free waits for them to
 * leave; a callback of an asynchronous hold of l running on another thread
 * is waited for (a call on l it makes meanwhile returns ZKR_ECLOSED).
 * Accepts NULL. No other call on l may start once free has begun. */
ZKR_EXTERN void zkr_lock_free(zkr_lock *l);

#ifdef __cplusplus
}
#endif
#endif
