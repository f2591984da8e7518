/* zkr_rwlock: a reentrant distributed read-write lock on ZooKeeper.
 *
 * Protocol: Curator's InterProcessReadWriteLock. Each contender creates an
 * EPHEMERAL_SEQUENTIAL child of the lock path, "_c_<uuid>-__READ__<seq>"
 * or "_c_<uuid>-__WRIT__<seq>"; Kazoo's "__rlock__" (reader) and
 * "__lock__" (writer) nodes, and any exclusive lock node ("-lock-") on the
 * same path, are recognised, so Java, Python and C processes share one
 * lock. A reader waits only for writers queued before it (watching the
 * nearest one); a writer waits for every node before it (watching its
 * predecessor). A reader that arrives after a waiting writer queues behind
 * it: writers are not starved.
 *
 * Reentrancy is per thread and per mode (keyed by pthread_t, as zkr_lock:
 * release before a thread ends). A thread holding the write lock
 * may take the read lock (downgrade: take read, then release write); a
 * thread holding only the read lock that asks for the write lock gets
 * ZKR_EDEADLK at once (it would wait for itself). Faults are handled as by
 * zkr_lock: a lost hold is notified, a give-up leaves no node, every grant
 * carries a fencing token and follows a server answer that shows our node.
 * zkr_rwlock_acquire_async() (zkr/async.h) takes either side without a
 * blocked thread.
 *
 * All functions are safe from any thread; the blocking ones (rdlock,
 * wrlock, unlock, free) must not be called from a zkr or ZooKeeper
 * callback. */
#ifndef ZKR_RWLOCK_H
#define ZKR_RWLOCK_H

#include <stdint.h>
#include <zkr/export.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_rwlock zkr_rwlock;

/* Called once per hold (read or write) when it is lost, as zkr_lock's
 * on_lost: on the session's event thread; it must not block nor call a
 * blocking zkr function. */
typedef void (*zkr_rwlock_lost_fn)(zkr_rwlock *rw, void *arg);

typedef struct zkr_rwlock_opts {
  zkr_rwlock_lost_fn on_lost;   /* optional */
  void *arg;                    /* passed to on_lost */
  const char *id;               /* node data; NULL = "<hostname>:<pid>". Copied. */
  const struct ACL_vector *acl; /* NULL = open; borrowed: must outlive rw */
} zkr_rwlock_opts;

/* Creates a read-write lock object for path (absolute; copied) on session
 * s. Sends nothing. opts may be NULL. The caller owns *out; free it with
 * zkr_rwlock_free(). Returns ZKR_OK, ZKR_EINVAL (bad path or option),
 * ZKR_ENOMEM. */
ZKR_EXTERN int zkr_rwlock_new(zkr_rwlock **out, zkr_session *s, const char *path,
                              const zkr_rwlock_opts *opts);

/* Takes the read lock (shared) for the calling thread. timeout_ms < 0 waits
 * forever, 0 tries once, > 0 waits at most that long. Returns as
 * zkr_lock_acquire(): ZKR_OK, ZKR_ETIMEDOUT (nothing left behind),
 * ZKR_ESESSION, ZKR_ECLOSED, ZKR_ELOST, ZKR_ENOAUTH, ZKR_EEXHAUSTED,
 * ZKR_EZK. A thread holding the write lock is granted at once past its own
 * write node (downgrade). */
ZKR_EXTERN int zkr_rwlock_rdlock(zkr_rwlock *rw, int timeout_ms);

/* Takes the write lock (exclusive) for the calling thread; as
 * zkr_rwlock_rdlock(). Returns ZKR_EDEADLK at once, sending nothing, if the
 * calling thread holds the read lock but not the write lock. */
ZKR_EXTERN int zkr_rwlock_wrlock(zkr_rwlock *rw, int timeout_ms);

/* Releases one level of the calling thread's innermost hold: of the mode
 * its most recent still-counted rdlock/wrlock took (after wrlock, rdlock:
 * the read hold). At zero the node is deleted and the call returns once
 * the server confirmed it. Returns as zkr_lock_release(): ZKR_OK,
 * ZKR_ENOTHELD, ZKR_ELOST, ZKR_ESESSION, ZKR_ENOAUTH. */
ZKR_EXTERN int zkr_rwlock_unlock(zkr_rwlock *rw);

/* Releases one level of the calling thread's read (rdunlock) or write
 * (wrunlock) hold, whatever was taken last: a downgrade is wrlock, rdlock,
 * wrunlock. Returns as zkr_rwlock_unlock(). */
ZKR_EXTERN int zkr_rwlock_rdunlock(zkr_rwlock *rw);
ZKR_EXTERN int zkr_rwlock_wrunlock(zkr_rwlock *rw);

/* 1 if the calling thread holds the read (write = 0) or write (write = 1)
 * lock and its validity deadline has not passed; 0 otherwise, also for any
 * other value of write. Never blocks. */
ZKR_EXTERN int zkr_rwlock_held(zkr_rwlock *rw, int write);

/* The fencing token (czxid of the node) of the calling thread's read
 * (write = 0) or write (write = 1) hold. Returns ZKR_OK, ZKR_ENOTHELD,
 * ZKR_EINVAL (NULL, or write neither 0 nor 1). */
ZKR_EXTERN int zkr_rwlock_token(zkr_rwlock *rw, int write, int64_t *token);

/* As zkr_lock_valid_until(), for the calling thread's read or write hold;
 * 0 if it holds none. */
ZKR_EXTERN int64_t zkr_rwlock_valid_until(zkr_rwlock *rw, int write);

/* Copies the full path of the node serving the calling thread's read
 * (write = 0) or write (write = 1) hold into buf (a downgraded read is
 * served by the write node). Returns ZKR_OK, ZKR_ENOTHELD, ZKR_EINVAL (buf
 * too small). */
ZKR_EXTERN int zkr_rwlock_node(zkr_rwlock *rw, int write, char *buf, size_t len);

/* As zkr_lock_lost_reason(): why the calling thread's hold (either mode)
 * was lost, else why the most recently lost hold of rw was, else
 * ZKR_LOST_NONE. Never waits for the network. */
ZKR_EXTERN int zkr_rwlock_lost_reason(zkr_rwlock *rw);

/* Frees rw: every hold of any thread is released first; waiting threads
 * return ZKR_ECLOSED and free waits for them. Accepts NULL. */
ZKR_EXTERN void zkr_rwlock_free(zkr_rwlock *rw);

#ifdef __cplusplus
}
#endif
#endif
