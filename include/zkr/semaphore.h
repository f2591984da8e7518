/* zkr_semaphore: a distributed counting semaphore on ZooKeeper.
 *
 * At most max_leases leases are held at once across every process that
 * uses the path. Protocol and layout: Curator's InterProcessSemaphoreV2, so
 * C and Java processes share one semaphore: a mutex on PATH/locks orders
 * the acquirers; the one holding it creates its lease,
 * PATH/leases/_c_<uuid>-lease-<seq> (EPHEMERAL_SEQUENTIAL), and waits,
 * watching PATH/leases, until at most max_leases leases exist; then it
 * releases the mutex. Only that one acquirer watches the leases: no herd.
 * Leases die with their session. max_leases is recorded as the data of
 * PATH (as Kazoo does); a participant that disagrees gets ZKR_EMISMATCH.
 * Curator keeps no such record: a Curator peer with another count is not
 * detected.
 *
 * All functions are safe from any thread; the blocking ones must not be
 * called from a zkr or ZooKeeper callback. */
#ifndef ZKR_SEMAPHORE_H
#define ZKR_SEMAPHORE_H

#include <stdint.h>
#include <zkr/export.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_semaphore zkr_semaphore;
typedef struct zkr_lease zkr_lease;

/* Called once when a held lease is lost (session expired or closed, its
 * validity deadline passed, or its node deleted by someone else); on the
 * session's event thread; it must not block nor call a blocking zkr
 * function. It may run before zkr_semaphore_acquire() has returned the
 * lease, if the lease is lost at once. The lease must still be released
 * with zkr_lease_release(). */
typedef void (*zkr_lease_lost_fn)(zkr_lease *lease, void *arg);

typedef struct zkr_semaphore_opts {
  zkr_lease_lost_fn on_lost;    /* optional */
  void *arg;                    /* passed to on_lost */
  const char *id;               /* lease node data; NULL = "<hostname>:<pid>". Copied. */
  const struct ACL_vector *acl; /* NULL = open; borrowed: must outlive sem */
} zkr_semaphore_opts;

/* Creates a semaphore object for path (absolute; copied) with max_leases
 * (>= 1) on session s. Sends nothing. opts may be NULL. The caller owns
 * *out; free it with zkr_semaphore_free(). Returns ZKR_OK, ZKR_EINVAL,
 * ZKR_ENOMEM. */
ZKR_EXTERN int zkr_semaphore_new(zkr_semaphore **out, zkr_session *s, const char *path, int max_leases,
                                 const zkr_semaphore_opts *opts);

/* Acquires one lease. timeout_ms < 0 waits forever, 0 tries once, > 0 is
 * one total deadline (CLOCK_MONOTONIC) across the internal mutex and the
 * wait for a free lease. A try decides from the first listing of each, so
 * it also fails while another acquirer holds the internal mutex, even
 * briefly (as Curator's does). Each call reads PATH's record of
 * max_leases (one round trip; the first also writes it into an empty
 * PATH). Leases belong to no thread: one thread may hold several.
 * On ZKR_OK the caller owns *lease (release it with zkr_lease_release()
 * from any thread); on failure *lease is NULL and neither our lease node
 * nor our internal mutex node is left on the server. Returns ZKR_OK,
 * ZKR_ETIMEDOUT, ZKR_EMISMATCH (PATH records another max_leases, or other
 * data), ZKR_ESESSION, ZKR_ECLOSED (sem being freed, session closed),
 * ZKR_ELOST (a node of ours deleted by another client while waiting),
 * ZKR_ENOAUTH, ZKR_EEXHAUSTED, ZKR_ECONNLOSS (the record could not be
 * read), ZKR_EINVAL (sem or lease NULL), ZKR_ENOMEM, ZKR_EZK. Not a
 * cancellation point: cancellation is held off until it returns. */
ZKR_EXTERN int zkr_semaphore_acquire(zkr_semaphore *sem, int timeout_ms, zkr_lease **lease);

/* Stores the fencing token of a lease in *token: the czxid of its node,
 * larger for every later grant on the path (also after PATH is
 * re-created). Safe from any thread. Returns ZKR_OK, ZKR_ENOTHELD (lost,
 * or its validity deadline passed), ZKR_EINVAL. */
ZKR_EXTERN int zkr_lease_token(zkr_lease *lease, int64_t *token);

/* Copies the full path of the lease's node into buf. Returns ZKR_OK,
 * ZKR_ENOTHELD (lost), ZKR_EINVAL (NULL, or buf too small). */
ZKR_EXTERN int zkr_lease_node(zkr_lease *lease, char *buf, size_t len);

/* Why the lease was lost (a zkr_lost_reason), or ZKR_LOST_NONE while it is
 * held. Never waits for the network. */
ZKR_EXTERN int zkr_lease_lost_reason(zkr_lease *lease);

/* 1 while the lease is held and its validity deadline (the session's,
 * zkr_session_valid_until()) has not passed, else 0 (also for NULL).
 * Never blocks, not even behind the session's event thread. */
ZKR_EXTERN int zkr_lease_held(zkr_lease *lease);

/* Releases the lease (its node is deleted; returns once the server
 * confirmed it, retrying across connection loss) and frees it, from any
 * thread; a pending on_lost for it will not run once this returns.
 * Returns ZKR_OK, ZKR_ELOST (it had been lost: node deleted by someone
 * else), ZKR_ESESSION (lost with the session), ZKR_ENOAUTH (PATH's ACL
 * refuses the delete: the node stays until the session ends), ZKR_EINVAL
 * (NULL); the lease is freed in every case but ZKR_EINVAL. */
ZKR_EXTERN int zkr_lease_release(zkr_lease *lease);

/* Frees sem. Leases still out are released (their nodes deleted before it
 * returns) and freed (a later zkr_lease_release on them is not allowed);
 * threads inside zkr_semaphore_acquire return ZKR_ECLOSED and free waits
 * for them. Accepts NULL. No other call on sem may start once free has
 * begun. */
ZKR_EXTERN void zkr_semaphore_free(zkr_semaphore *sem);

#ifdef __cplusplus
}
#endif
#endif
