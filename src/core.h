/* The session and the queue between themselves (session.c, queue.c, and
 * tests that look inside): no recipe includes this. */
#ifndef ZKR_CORE_H
#define ZKR_CORE_H

#include "engine.h"

/* --- session.c, for the queue (mutex held) ---------------------------------- */

/* Records that a request sent at sent_ns was answered by the server. */
void zkr__session_acked(zkr_session *s, int64_t sent_ns);
/* Same for every child of dir whose name starts with prefix. */
void zkr__session_orphan_prefix(zkr_session *s, const char *dir, const char *prefix);
int64_t zkr__session_id_locked(zkr_session *s);
/* Wakes the session's event thread if it sleeps past due (CLOCK_MONOTONIC
 * ns), so it looks again at what falls due then. */
void zkr__session_kick(zkr_session *s, int64_t due);
/* A new contender's own-node watch falls due then (CLOCK_MONOTONIC ns):
 * zkr__queue_arm looks again by then (and the event thread wakes). */
void zkr__session_arm_by(zkr_session *s, int64_t due);
/* The session's zkr_lost_reason while LOST, else ZKR_LOST_NONE. */
int zkr__session_lost_reason_locked(zkr_session *s);

/* Per-session state of the queue, kept inside the session. */
typedef struct zkr__qstate {
  zkr__list contenders; /* every live contender of the session */
  zkr__list tickets;    /* every watch context not yet fired */
  char **skipped;       /* persistent look-alikes seen (full paths) */
  int nskipped;
} zkr__qstate;
zkr__qstate *zkr__session_queue(zkr_session *s);

/* --- queue.c, for the session (mutex held) ---------------------------------- */

/* Called when the session's state changes: reconnection retries what
 * connection loss interrupted; loss fails every contender. */
void zkr__queue_reconnected(zkr_session *s);
void zkr__queue_session_lost(zkr_session *s, int code);
/* Contenders (waiting or holding) that have existed ZKR__OWN_WATCH_AFTER_NS
 * get a watch on their own node (mutex held, from the session's event
 * thread), so that a deletion by someone else ends their wait or hold at
 * once. A contender pays that request only once it has lasted: most are
 * shorter, and one request more per acquisition is a fifth more load on
 * the server. Returns when the next one falls due (CLOCK_MONOTONIC ns), or
 * 0 if none is pending. */
#define ZKR__OWN_WATCH_AFTER_NS (250 * 1000000LL)
int64_t zkr__queue_arm(zkr_session *s, int64_t now);
/* The session's delay before that watch (mutex held), and a test's way to
 * change it (request counts that must not depend on the machine's speed). */
int64_t zkr__session_own_watch_after(zkr_session *s);
void zkr__session_set_own_watch_after(zkr_session *s, int64_t ns);

/* async.c, for tests: h's contender while it has one, else NULL (mutex
 * held). With zkr__contender_held_now() a test sees a grant that the event
 * thread has not delivered yet. */
zkr__contender *zkr__hold_contender(zkr_hold *h);

/* Number of watch contexts the session keeps (for tests). */
int zkr__queue_tickets(zkr_session *s);

/* Frees what the queue keeps per session (watch tickets) once the
 * ZooKeeper handle is closed and no callback can run any more. */
void zkr__queue_session_closed(zkr_session *s);

#endif
