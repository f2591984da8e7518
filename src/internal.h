/* Internal interfaces shared between the library's files (zkr__ prefix,
 * never exported). */
#ifndef ZKR_INTERNAL_H
#define ZKR_INTERNAL_H

#include "config.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <zkr/zkr.h>

/* --- clock.c, error.c --------------------------------------------------- */

int64_t zkr__now_ns(void);
/* The CLOCK_MONOTONIC deadline of a timeout in ms: -1 (none) for < 0, else
 * now + timeout (0 gives "now": a wait that only looks). */
int64_t zkr__deadline(int timeout_ms);
/* Maps a ZooKeeper return code to a zkr code. */
int zkr__from_zk(int zrc);
/* 1 if a completion code means the server answered the request (so the
 * session was alive on the server when the request arrived). */
int zkr__zk_answered(int zrc);
/* Blocks on cond (a CLOCK_MONOTONIC condvar) until deadline_ns (< 0: no
 * deadline). Returns 0, or ETIMEDOUT once the deadline has passed. */
int zkr__cond_wait(pthread_cond_t *cond, pthread_mutex_t *mu, int64_t deadline_ns);
int zkr__cond_init(pthread_cond_t *cond);

/* --- path.c --------------------------------------------------------------- */

/* Longest recipe directory we accept: leaves room for the node name under
 * ZooKeeper's limits. */
#define ZKR__PATH_MAX 1024

/* ZKR_OK if path is a usable recipe directory: absolute, not "/", no empty,
 * "." or ".." component, no trailing '/', no control characters, not under
 * /zookeeper, at most ZKR__PATH_MAX bytes. Else ZKR_EINVAL. */
int zkr__path_check(const char *path);

/* ZKR_OK if hosts looks like "host:port[,host:port...][/chroot]". */
int zkr__hosts_check(const char *hosts);

/* --- name.c: contender names ---------------------------------------------- */

/* Where a child name's sequence is and which protocol made it. */
/* What a contender node asks for, told by its marker. */
enum { ZKR__EXCLUSIVE = 1, ZKR__SHARED, ZKR__LEASE };

typedef struct zkr__name {
  const char *name; /* borrowed: the whole child name */
  const char *seq;  /* points into name: the sequence suffix */
  int kind;         /* ZKR__EXCLUSIVE, ZKR__SHARED (a reader), ZKR__LEASE */
} zkr__name;

/* Parses a child of a recipe directory. Returns 1 if it is a contender node
 * of a known protocol (a marker "-lock-", "-latch-", "__WRIT__", "__lock__"
 * (exclusive), "__READ__", "__rlock__" (shared) or "-lease-" followed by a
 * numeric sequence), else 0: such children are not contenders and are
 * ignored. */
int zkr__name_parse(const char *name, zkr__name *out);

/* The one rule for "is a contender", used by the queue and by every
 * listing (zkr_participants, zkr status, zkr_election_leader): a name
 * zkr__name_parse() accepts on an ephemeral node (ephemeral_owner != 0). A
 * persistent node named like one belongs to no session: it is no lock of
 * any peer and would block the queue forever. Fills out like
 * zkr__name_parse(). */
int zkr__contender_check(const char *name, int64_t ephemeral_owner, zkr__name *out);

/* The sequence suffix is the parent's child version, a signed 32-bit
 * counter. At its limit the server repeats 2147483647 (3.8) or wraps to
 * negative values (others): from then on suffixes no longer follow creation
 * order. 1 if n's suffix is such a one (>= the limit, or negative). */
#define ZKR__SEQ_LIMIT 2147483647LL
int zkr__name_seq_exhausted(const zkr__name *n);

/* Queue order of two parsed names: by sequence suffix, compared as strings
 * (the order Curator and Kazoo use, so mixed queues agree), then by name. */
int zkr__name_cmp(const zkr__name *a, const zkr__name *b);

/* Writes a random RFC 4122 version 4 uuid, 36 characters + NUL. Returns
 * ZKR_OK, or ZKR_EZK when the system gives no random bytes. */
int zkr__uuid(char out[37]);

/* Default participant id "<hostname>:<pid>" into buf. */
void zkr__default_id(char *buf, size_t len);

/* What every recipe object starts from: its session, checked and copied
 * path and participant id, its ACL. */
typedef struct zkr__recipe {
  zkr_session *s; /* referenced */
  char *path;
  char *id;
  const struct ACL_vector *acl;
} zkr__recipe;

/* Checks the arguments every recipe's _new() takes (session, path, id:
 * NULL = "<hostname>:<pid>", ACL: NULL = open) and fills r, taking a
 * reference on s. Returns ZKR_OK, ZKR_EINVAL, ZKR_ENOMEM. */
int zkr__recipe_init(zkr__recipe *r, zkr_session *s, const char *path, const char *id,
                     const struct ACL_vector *acl);
void zkr__recipe_done(zkr__recipe *r);

/* --- log.c ---------------------------------------------------------------- */

/* Returns a ZooKeeper log callback routed to fn/arg (or stream), or one that
 * discards everything when both are NULL. *slot receives what
 * zkr__log_unbind() needs. Returns NULL if no routing slot is free. */
log_callback_fn zkr__log_bind(zkr_log_fn fn, void *arg, FILE *stream, int *slot);
void zkr__log_unbind(int slot);

/* --- session.c: what the contender core needs from the session ------------- */

/* The session's mutex guards the state of every contender on it. */
pthread_mutex_t *zkr__session_mutex(zkr_session *s);
void zkr__session_ref(zkr_session *s);
void zkr__session_unref(zkr_session *s);
/* The following are called with the session mutex held. */
int zkr__session_connected(zkr_session *s);
/* ZKR_OK while usable, else ZKR_ESESSION or ZKR_ECLOSED. */
int zkr__session_usable(zkr_session *s);
/* Records that a request sent at sent_ns was answered by the server. */
void zkr__session_acked(zkr_session *s, int64_t sent_ns);
/* Runs fn(arg) on the session's event thread, outside the mutex. owner tags
 * the event so zkr__session_quiesce(owner) can wait for it. */
int zkr__session_post(zkr_session *s, void (*fn)(void *arg), void *arg, const void *owner);
/* Waits until no event of owner is queued or running (returns at once on
 * the event thread). */
void zkr__session_quiesce(zkr_session *s, const void *owner);
/* Asks the session to delete path in the background until it is deleted or
 * the session is gone (copied). */
void zkr__session_orphan(zkr_session *s, const char *path);
/* Same for every child of dir whose name starts with prefix. */
void zkr__session_orphan_prefix(zkr_session *s, const char *dir, const char *prefix);

/* --- queue.c: the contender queue every recipe uses --------------------- */

typedef struct zkr__contender zkr__contender;

/* A recipe's grant rule. The queue asks it, for each other contender in a
 * listing, whether that one keeps us waiting; everything else (the
 * protocol, which node to watch, when a deletion alone decides, recovery,
 * retries, session loss) is the queue's.
 *
 * With limit <= 1 the queue asks only about earlier nodes (queue order),
 * grants when none blocks, else watches the nearest that does; once it is
 * gone, a read of our own node decides if it was the only one, a fresh
 * listing otherwise. With limit > 1 it asks about every node (earlier = 0
 * for later ones), grants while fewer than limit block, else watches the
 * directory and lists again on each change. */
typedef struct zkr__policy {
  const char *marker; /* of our node: "-lock-", "-latch-", "-__READ__"... */
  /* NULL: every earlier contender blocks (a mutex). Called with the session
   * mutex held; must not send anything. */
  int (*blocks)(const zkr__name *me, const zkr__name *other, int earlier);
  int limit;
} zkr__policy;

typedef struct zkr__contender_cfg {
  const char *dir;              /* checked recipe directory; copied */
  const zkr__policy *policy;    /* static */
  const char *ignore;           /* a child name of ours that never blocks us
                                   (a write hold taking the read lock); copied */
  const char *data;             /* node data; copied */
  const struct ACL_vector *acl; /* borrowed; NULL = open */
  /* Event thread, outside the mutex, each at most once per contender and
   * in this order: on_granted when it was granted (even if lost since),
   * on_lost when a granted contender lost its hold. Neither fires once the
   * recipe dropped the contender. */
  void (*on_lost)(void *owner, zkr__contender *c);
  void (*on_granted)(void *owner, zkr__contender *c);
  void *owner;
  int try_once; /* a try: decide without setting a watch */
} zkr__contender_cfg;

/* Called with the session mutex held. Creates a contender and starts the
 * protocol (create + listing sent back to back); returns at once. */
int zkr__contender_start(zkr_session *s, const zkr__contender_cfg *cfg, zkr__contender **out);

/* Called with the session mutex held; waits on it. Returns ZKR_OK once
 * granted, ZKR_ETIMEDOUT when deadline_ns (zkr__deadline(); < 0 = none)
 * passed first or, for a try_once contender, once a live contender ahead
 * of us is known, or the error that ended it. */
int zkr__contender_wait(zkr__contender *c, int64_t deadline_ns);

/* Called with the session mutex held. Gives up waiting: the node is deleted
 * (waits for the confirmation while the session lives). Returns ZKR_OK if
 * the contender had been granted meanwhile (the caller holds it), ZKR_ELOST
 * if someone else had deleted our node, else ZKR_ETIMEDOUT. */
int zkr__contender_withdraw(zkr__contender *c);

/* Called with the session mutex held. Deletes a granted contender's node
 * (retrying across connection loss). With wait, returns once the server
 * confirmed it, ZKR_OK; ZKR_ELOST if the hold had been lost to a deletion
 * by someone else (also one we learn of only now, from the delete);
 * ZKR_ESESSION if it had been lost with the session or the session went
 * away first. Without, returns ZKR_OK once the delete is sent (ZKR_ELOST /
 * ZKR_ESESSION if the hold had been lost) and the contender finishes in the
 * background; dropping it then is fine. */
int zkr__contender_release(zkr__contender *c, int wait);

/* Called with the session mutex held. The recipe forgets c: no callback will
 * be fired for it any more; a node still on the server is deleted in the
 * background. c must not be used afterwards. */
void zkr__contender_drop(zkr__contender *c);

/* Called with the session mutex held. Wakes a waiting zkr__contender_wait
 * with ZKR_ECLOSED (the recipe object is being freed). */
void zkr__contender_close(zkr__contender *c);

/* Accessors; called with the session mutex held. */
int zkr__contender_granted(const zkr__contender *c);     /* granted and not lost */
int zkr__contender_active(const zkr__contender *c);      /* waiting or granted, not lost */
int zkr__contender_was_granted(const zkr__contender *c); /* granted at some point */
int64_t zkr__contender_token(const zkr__contender *c);
int zkr__contender_lost_reason(const zkr__contender *c);  /* zkr_lost_reason */
const char *zkr__contender_node(const zkr__contender *c); /* full path or NULL */

/* The contender's state read without the session mutex (published
 * atomically): 1 while granted and not lost. */
int zkr__contender_held_now(const zkr__contender *c);

/* --- holds.c: per-thread reentrant holds (lock, rwlock) -------------------- */

typedef struct zkr__hold {
  struct zkr__hold *next;
  pthread_t thread;
  int count; /* 0 while still acquiring */
  zkr__contender *c;
} zkr__hold;

typedef struct zkr__holds {
  zkr_session *s;
  zkr__hold *head;  /* changed under the session mutex and mu */
  pthread_mutex_t mu; /* lets zkr__holds_valid_until() skip the session's */
  pthread_cond_t cond; /* acquiring reached 0 */
  int acquiring;       /* threads inside zkr__holds_acquire */
  int freeing;
  int lost_reason; /* of the last lost hold; atomic */
  void (*on_lost)(void *arg); /* the recipe's; event thread, once per hold */
  void *arg;
} zkr__holds;

int zkr__holds_init(zkr__holds *hs, zkr_session *s, void (*on_lost)(void *arg), void *arg);
void zkr__holds_destroy(zkr__holds *hs);
/* The following are called with the session mutex held. */
/* The calling thread's hold (acquiring or held), or NULL. */
zkr__hold *zkr__holds_mine(zkr__holds *hs);
/* Acquires for the calling thread, waiting on the session mutex until
 * deadline (zkr__deadline()); cfg->try_once as the caller wants, on_lost
 * and owner are set here. A thread that holds already only counts (or gets
 * why its hold was lost: ZKR_ELOST, ZKR_ESESSION). Returns as
 * zkr_lock_acquire(). */
int zkr__holds_acquire(zkr__holds *hs, zkr__contender_cfg *cfg, int64_t deadline);
/* Releases one level of the calling thread's hold; returns as
 * zkr_lock_release() (wait) or zkr_lock_release_nowait(). */
int zkr__holds_release(zkr__holds *hs, int wait);
/* The calling thread's granted hold whose validity deadline has not
 * passed, or NULL: the one snapshot every accessor answers from. */
zkr__hold *zkr__holds_granted(zkr__holds *hs);
/* As zkr_lock_lost_reason(). */
int zkr__holds_lost_reason(zkr__holds *hs);
/* Frees: waiters return ZKR_ECLOSED, every hold is released. */
void zkr__holds_close(zkr__holds *hs);
/* Without the session mutex (never waits for the completion thread): the
 * session's validity deadline if the calling thread holds, else 0. */
int64_t zkr__holds_valid_until(zkr__holds *hs);

/* Called by the session (mutex held) when its state changes: reconnection
 * retries what connection loss interrupted; loss fails every contender. */
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
/* A thread waiting for a watch to fire (observers). With the session mutex
 * held: zkr__watch_new() makes a context for zoo_w* calls with
 * zkr__watch_fn; when the watch fires, w->fired is set and w->cond
 * signalled and the context belongs to the session again; so it does when
 * the session is lost. Otherwise zkr__watch_done() detaches w: registered =
 * 0 when the zoo_w* call left no watch on the server (freed at once). */
typedef struct zkr__waiter {
  pthread_cond_t cond;
  int fired;
} zkr__waiter;
struct zkr__ticket *zkr__watch_new(zkr_session *s, zkr__waiter *w);
void zkr__watch_done(struct zkr__ticket *t, zkr__waiter *w, int registered);
void zkr__watch_fn(zhandle_t *zh, int type, int state, const char *path, void *ctx);

/* Number of watch contexts the session keeps (mutex held; for tests). */
int zkr__queue_tickets(zkr_session *s);

/* Frees what the queue keeps per session (watch tickets) once the
 * ZooKeeper handle is closed and no callback can run any more. */
void zkr__queue_session_closed(zkr_session *s);

/* Per-session state of the queue, kept inside the session. */
typedef struct zkr__qstate {
  zkr__contender *head;        /* every live contender of the session */
  struct zkr__ticket *tickets; /* every watch context not yet fired */
  char **skipped;              /* persistent look-alikes seen (full paths) */
  int nskipped;
} zkr__qstate;
zkr__qstate *zkr__session_queue(zkr_session *s);
/* The handle, or NULL once the session is closing: no request may be sent. */
zhandle_t *zkr__session_zh(zkr_session *s);
int64_t zkr__session_id_locked(zkr_session *s);
/* Wakes the session's event thread if it sleeps past due (CLOCK_MONOTONIC
 * ns), so it looks again at what falls due then (mutex held). */
void zkr__session_kick(zkr_session *s, int64_t due);
/* zkr_session_valid_until(): read without the mutex (published atomically). */
int64_t zkr__session_valid_until(zkr_session *s);
/* The session's zkr_lost_reason while LOST, else ZKR_LOST_NONE. */
int zkr__session_lost_reason_locked(zkr_session *s);

#endif
