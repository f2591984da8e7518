/* zkr_barrier and zkr_double_barrier: ZooKeeper's barrier recipes.
 *
 * A barrier (Curator's DistributedBarrier, Kazoo's Barrier) holds waiters
 * back while its node, PATH, exists: zkr_barrier_set() creates it
 * (persistent; missing parents as containers), zkr_barrier_remove() deletes
 * it, zkr_barrier_wait() returns once it does not exist.
 *
 * A double barrier (Curator's DistributedDoubleBarrier, Kazoo's
 * DoubleBarrier) lets member_qty participants start and end a step
 * together. Layout (Curator's, so C and Java participants share one):
 * each participant creates an EPHEMERAL node PATH/<uuid> holding its id;
 * the first to list member_qty of them creates the persistent node
 * PATH/ready, which lets everyone in (also later arrivals: member_qty is a
 * threshold, not a limit). Leaving deletes the own node at once and waits
 * until no other participant's node remains (or until PATH/ready is gone:
 * a participant that finished leaving removes it); the last one out
 * deletes PATH/ready so the path can be used again. Every participant
 * watches PATH's children: each arrival or departure costs every waiting
 * participant one listing, so a double barrier is meant for tens of
 * participants, not thousands. Every child of PATH but "ready" counts as
 * a participant, as Curator counts them: keep PATH for the barrier alone.
 *
 * A participant that dies is seen by the others when its session ends and
 * its node goes: during enter, a participant's node that vanishes before
 * PATH/ready appears breaks the barrier (ZKR_EBROKEN for every waiting
 * participant at once: that set can no longer be complete); during leave
 * a vanishing node is the normal way out. A waiter never hangs on a dead
 * participant past its own deadline, nor past that participant's session
 * expiry.
 *
 * All functions are safe from any thread; the blocking ones must not be
 * called from a zkr or ZooKeeper callback. One double barrier object is one
 * participant: its enter and leave must not run at the same time (the
 * second call returns ZKR_EINVAL). */
#ifndef ZKR_BARRIER_H
#define ZKR_BARRIER_H

#include <zkr/export.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_barrier zkr_barrier;
typedef struct zkr_double_barrier zkr_double_barrier;

typedef struct zkr_barrier_opts {
  const char *id;               /* double barrier: our node's data; NULL =
                                   "<hostname>:<pid>". Copied. Unused by
                                   zkr_barrier. */
  const struct ACL_vector *acl; /* of the nodes we create; NULL = open;
                                   borrowed: must outlive the object */
} zkr_barrier_opts;

/* Creates a barrier object for path (absolute; copied) on session s. Sends
 * nothing. opts may be NULL. The caller owns *out; free it with
 * zkr_barrier_free(). Returns ZKR_OK, ZKR_EINVAL (NULL, bad path or
 * option; *out is NULL), ZKR_ENOMEM. */
ZKR_EXTERN int zkr_barrier_new(zkr_barrier **out, zkr_session *s, const char *path,
                               const zkr_barrier_opts *opts);

/* Sets the barrier: creates its node (missing parents as containers).
 * Setting a barrier that is set already succeeds. Retries across
 * connection loss; returns once the server confirmed. Returns ZKR_OK,
 * ZKR_ENOAUTH, ZKR_ESESSION, ZKR_ECLOSED, ZKR_EINVAL (b NULL), ZKR_ENOMEM,
 * ZKR_EZK. */
ZKR_EXTERN int zkr_barrier_set(zkr_barrier *b);

/* Removes the barrier: deletes its node, which lets every waiter go.
 * Removing a barrier that is not set succeeds. Retries across connection
 * loss. Returns ZKR_OK, ZKR_ENOAUTH, ZKR_EZK (the node has children),
 * ZKR_ESESSION, ZKR_ECLOSED, ZKR_EINVAL (b NULL), ZKR_ENOMEM. */
ZKR_EXTERN int zkr_barrier_remove(zkr_barrier *b);

/* Waits until the barrier's node does not exist. timeout_ms < 0 waits
 * forever, 0 only looks (one read, no watch), > 0 waits at most that long
 * (CLOCK_MONOTONIC). One data watch on the node (re-armed by the client
 * after a reconnection); creates nothing. Returns ZKR_OK (not set, or removed),
 * ZKR_ETIMEDOUT (still set), ZKR_ESESSION (session lost), ZKR_ECLOSED (b
 * being freed or session closed), ZKR_ENOAUTH, ZKR_EINVAL (b NULL),
 * ZKR_ENOMEM, ZKR_EZK. */
ZKR_EXTERN int zkr_barrier_wait(zkr_barrier *b, int timeout_ms);

/* Frees b; threads inside zkr_barrier_wait() return ZKR_ECLOSED and free
 * waits for them. The barrier's node stays as it is. Accepts NULL. */
ZKR_EXTERN void zkr_barrier_free(zkr_barrier *b);

/* Creates a double barrier participant for path (absolute; copied) with
 * member_qty (>= 1) participants, on session s. Sends nothing. opts may be
 * NULL. The caller owns *out; free it with zkr_double_barrier_free().
 * Returns ZKR_OK, ZKR_EINVAL (NULL, bad path or option, member_qty < 1;
 * *out is NULL), ZKR_ENOMEM. */
ZKR_EXTERN int zkr_double_barrier_new(zkr_double_barrier **out, zkr_session *s, const char *path,
                                      int member_qty, const zkr_barrier_opts *opts);

/* Enters: creates our node and waits until member_qty participants have
 * entered (PATH/ready exists). timeout_ms < 0 waits forever, 0 decides
 * from the first listing, > 0 is one total deadline (CLOCK_MONOTONIC).
 * On any failure our node is deleted before returning (waiting for the
 * server's confirmation at most 0.1 s past the deadline; then it is
 * deleted in the background, and goes with the session at the latest).
 * Returns ZKR_OK (entered: leave with zkr_double_barrier_leave()),
 * ZKR_ETIMEDOUT (fewer than member_qty arrived in time), ZKR_EBROKEN (a
 * participant's node vanished before the barrier was complete: it left or
 * its session ended), ZKR_ELOST (our own node was deleted by another
 * client), ZKR_ESESSION, ZKR_ECLOSED (db being freed, session closed),
 * ZKR_ENOAUTH, ZKR_EINVAL (db NULL, already entered, or another call on db
 * in progress), ZKR_ENOMEM, ZKR_EZK. Not a cancellation point. */
ZKR_EXTERN int zkr_double_barrier_enter(zkr_double_barrier *db, int timeout_ms);

/* Leaves: deletes our node at once, then waits until no other
 * participant's node remains (each left or its session ended), or until a
 * participant that finished leaving removed PATH/ready; the last one out
 * removes PATH/ready. timeout_ms as for enter. Our node is gone whatever
 * it returns (deleted in the background if the server did not confirm in
 * time). Returns ZKR_OK (everyone left), ZKR_ETIMEDOUT (others still
 * inside at the deadline), ZKR_ESESSION, ZKR_ECLOSED, ZKR_ENOAUTH,
 * ZKR_ENOTHELD (not entered), ZKR_EINVAL (db NULL, or another call on db
 * in progress), ZKR_ENOMEM, ZKR_EZK. Not a cancellation point. */
ZKR_EXTERN int zkr_double_barrier_leave(zkr_double_barrier *db, int timeout_ms);

/* Frees db. A thread inside enter or leave returns ZKR_ECLOSED and free
 * waits for it; our node, if still there, is deleted in the background
 * (and goes with the session at the latest). Accepts NULL. */
ZKR_EXTERN void zkr_double_barrier_free(zkr_double_barrier *db);

#ifdef __cplusplus
}
#endif
#endif
