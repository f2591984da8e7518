/* zkr_election: leader election on ZooKeeper.
 *
 * Participants create EPHEMERAL_SEQUENTIAL children "_c_<uuid>-latch-<seq>"
 * (Curator's LeaderLatch naming) under the election path; the lowest leads
 * and every other participant watches only its predecessor. The leader's
 * term has an epoch: the czxid of its node, strictly increasing from term to
 * term, to fence the leader's writes.
 *
 * A leader steps down on its own clock: once the session's validity
 * deadline passes without the server confirming the session (see
 * zkr_session_valid_until), before the server can elect someone else.
 * After its session is lost a participant does not rejoin by itself: open a
 * new session, create a new election object on it and join again.
 *
 * All functions are safe from any thread; join, is_leader, epoch and
 * resign_nowait never block (an event loop joins, is told through
 * on_change, and resigns without waiting); the others must not be called
 * from a zkr callback, except free from this election's own on_change. */
#ifndef ZKR_ELECTION_H
#define ZKR_ELECTION_H

#include <stddef.h>
#include <stdint.h>
#include <zkr/export.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_election zkr_election;

/* Leadership changed: leader is 1 exactly once when this participant gains
 * it, 0 exactly once when that term ends (resign, session lost or past its
 * validity, our node deleted). A deletion of our node is seen at once once
 * the participation has existed 0.25 s (the watch on our own node is set
 * then), else when that watch is set. Runs on the session's event thread;
 * it must not block nor call a blocking zkr function. */
typedef void (*zkr_election_fn)(zkr_election *e, int leader, void *arg);

typedef struct zkr_election_opts {
  const char *id;            /* stored in our node; NULL = "<hostname>:<pid>". Copied. */
  zkr_election_fn on_change; /* optional */
  void *arg;
  const struct ACL_vector *acl; /* NULL = open; borrowed, must outlive e */
} zkr_election_opts;

/* Creates an election participant for path (copied) on s. Sends nothing.
 * Caller owns *out; free with zkr_election_free(). Returns ZKR_OK,
 * ZKR_EINVAL (bad path, option), ZKR_ENOMEM. */
ZKR_EXTERN int zkr_election_new(zkr_election **out, zkr_session *s, const char *path,
                                const zkr_election_opts *opts);

/* Starts participating (at the back of the queue) and returns at once.
 * Joining while already participating is a no-op. Returns ZKR_OK,
 * ZKR_ESESSION / ZKR_ECLOSED (session unusable), ZKR_ENOMEM. */
ZKR_EXTERN int zkr_election_join(zkr_election *e);

/* Waits until this participant leads. timeout_ms < 0 forever, 0 only
 * checks. Returns ZKR_OK (leading), ZKR_ETIMEDOUT, ZKR_ENOTHELD (not
 * participating), ZKR_ESESSION, ZKR_ELOST, ZKR_ECLOSED. */
ZKR_EXTERN int zkr_election_await(zkr_election *e, int timeout_ms);

/* 1 while this participant leads and its validity deadline has not passed:
 * from the moment zkr_election_await() returns ZKR_OK (on_change(1) may be
 * delivered a moment later) until the term ends (on_change(0) may follow a
 * moment later). Never blocks. */
ZKR_EXTERN int zkr_election_is_leader(zkr_election *e);

/* Stores this participant's term epoch in *epoch. Returns ZKR_OK or
 * ZKR_ENOTHELD when not leading. */
ZKR_EXTERN int zkr_election_epoch(zkr_election *e, int64_t *epoch);

/* Copies the current leader's id (from the server) into id. Returns ZKR_OK,
 * ZKR_ENOLEADER (nobody participates), ZKR_EINVAL (buffer too small), or a
 * session/connection error. Blocking (one listing and one read). */
ZKR_EXTERN int zkr_election_leader(zkr_election *e, char *id, size_t len);

/* Leaves the election: a leader hands over (its node is deleted, the next
 * participant is notified), a waiter leaves the queue. Returns once the
 * server confirmed. on_change(0) follows if we were leading. join() may be
 * called again later. Returns ZKR_OK (also when the term had already ended
 * with its node), ZKR_ENOTHELD (not participating), ZKR_ESESSION. */
ZKR_EXTERN int zkr_election_resign(zkr_election *e);

/* Like zkr_election_resign(), but returns as soon as our node's delete is
 * sent, without waiting for the server: for an event loop (see "Loop mode"
 * in zkr/session.h), which must not wait. The delete is confirmed in the
 * background, retried across connection loss; the next participant leads
 * once the server ran it; on_change(0) follows through the event thread if
 * we were leading. Never blocks; may be called from a zkr callback. Returns
 * ZKR_OK, ZKR_ENOTHELD (not participating), ZKR_ESESSION. */
ZKR_EXTERN int zkr_election_resign_nowait(zkr_election *e);

/* Resigns if needed and frees. Accepts NULL. May be called from this
 * election's own on_change (what is still owed to it is then not
 * announced); from another thread it waits for a running on_change. */
ZKR_EXTERN void zkr_election_free(zkr_election *e);

/* Observes an election without participating: waits until its leader is
 * different from the one whose epoch is *epoch (0 = none known yet), then
 * stores the new leader's epoch in *epoch (0 = no leader) and its id in id
 * (may be NULL). timeout_ms < 0 waits forever. Returns ZKR_OK,
 * ZKR_ETIMEDOUT, ZKR_EINVAL, or a session error. Blocking; one children
 * watch, no polling. */
ZKR_EXTERN int zkr_election_observe(zkr_session *s, const char *path, int64_t *epoch, char *id, size_t len,
                                    int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
