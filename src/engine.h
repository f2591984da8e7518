/* The contender engine: everything a recipe may use, and nothing more.
 *
 * Adding a recipe (recipes/<name>.c, include/zkr/<name>.h):
 *  - Describe its grant rule as a zkr__policy: the marker of its nodes and
 *    which other contenders block it (and how many may hold at once). The
 *    queue does the rest: protected create and its recovery, the listing,
 *    which node to watch, when a deletion alone decides (checked here, not
 *    by the policy), retries across connection loss, session loss, lost
 *    holds. Give the marker to name.c so every listing knows its kind.
 *  - Lock-like recipes keep per-thread reentrant holds with zkr__holds;
 *    others (the election, a lease) drive a zkr__contender directly.
 *  - Start from zkr__recipe (checked path, id, ACL, session reference).
 *
 * Threading rules: every zkr__contender_* and zkr__holds_* function except
 * the *_now/valid_until readers is called with the session mutex held
 * (zkr__session_mutex); the blocking ones wait on it. Callbacks a recipe
 * gives the engine (on_granted, on_lost, on_change, policy->blocks) run on
 * the session's threads: blocks with the mutex held, the others on the
 * event thread outside it (in loop mode, the thread in
 * zkr_session_dispatch(); a session close or a loop-mode quiesce runs what
 * is owed on its own thread, which then counts as the event thread); none
 * may block nor call a blocking function. A recipe that must not block its
 * caller at all (zkr/async.h) drives a contender by on_change and the
 * session's timers instead of zkr__contender_wait(). Work a
 * recipe must do outside the mutex goes through zkr__session_post, and
 * zkr__session_quiesce waits for it before the recipe frees its state.
 * A recipe never sends ZooKeeper requests for its contenders itself; those
 * for nodes of its own (a record, a barrier) go through zkr__request. */
#ifndef ZKR_ENGINE_H
#define ZKR_ENGINE_H

#include "common.h"
#include "list.h"

/* --- the session's services ------------------------------------------------ */

/* The session's mutex guards the state of every contender on it. */
pthread_mutex_t *zkr__session_mutex(zkr_session *s);
void zkr__session_ref(zkr_session *s);
void zkr__session_unref(zkr_session *s);
/* ZKR_OK while usable, else ZKR_ESESSION or ZKR_ECLOSED (mutex held). */
int zkr__session_usable(zkr_session *s);
/* The session's handshakes so far (mutex held): read it before a request;
 * if the request fails with a connection loss, the connection it went out
 * on is gone and zkr__session_await_reconnect(s, that count, ...) waits for
 * the next one, instead of resending on a timer. */
unsigned zkr__session_connections(zkr_session *s);
/* Waits (mutex held; it is released while waiting) until the client has
 * connected again since the count since, and is connected: ZKR_OK; or the
 * session is lost or closing (zkr__session_usable()'s code), or deadline
 * (zkr__deadline(); < 0: none) passes: ZKR_ETIMEDOUT. */
int zkr__session_await_reconnect(zkr_session *s, unsigned since, int64_t deadline);
/* Work for the session's event thread, embedded in the state of whoever
 * posts it: posting never allocates, so a notification cannot be dropped
 * for lack of memory. owner tags it for zkr__session_quiesce(). */
typedef struct zkr__event {
  zkr__list link; /* on the session's queue while posted */
  void (*fn)(void *arg);
  void *arg;
  const void *owner;
} zkr__event;
void zkr__event_init(zkr__event *ev, void (*fn)(void *arg), void *arg, const void *owner);
/* Queues ev to run fn(arg) on the event thread, outside the mutex (mutex
 * held). An event already queued stays queued once: it runs once. ev must
 * stay alive until it ran or its owner was quiesced. Returns ZKR_OK, or
 * ZKR_ECLOSED once the session is closed (it will never run). */
int zkr__session_post(zkr_session *s, zkr__event *ev);
/* Waits until no event of owner is running (not queued ones: a dropped
 * contender's are void). Returns at once on the event thread. owner is
 * only compared, never dereferenced. Mutex held. */
void zkr__session_quiesce_running(zkr_session *s, const void *owner);
/* Waits (mutex held, released meanwhile) for the session's condition,
 * broadcast when an event has run and on state changes. */
void zkr__session_wait(zkr_session *s);
/* Takes ev off the queue if it is queued: it will not run (mutex held). */
void zkr__session_unpost(zkr_session *s, zkr__event *ev);
/* Before owner is freed: waits until no event of owner is queued or
 * running. In loop mode it runs owner's queued events itself, in order, on
 * the calling thread (the loop's, by the rule of loop mode). On the event
 * thread (owner freed from a callback) it takes owner's queued events off
 * the queue instead (they will not run) and returns at once; an event of
 * owner running there is the caller's own, which must not touch owner once
 * its callback returned. */
void zkr__session_quiesce(zkr_session *s, const void *owner);
/* An event posted once due (CLOCK_MONOTONIC ns) has passed: the session's
 * housekeeping posts it. Embedded in its owner like an event. */
typedef struct zkr__timer {
  zkr__list link; /* on the session's timers while started */
  int64_t due;
  zkr__event ev;
} zkr__timer;
void zkr__timer_init(zkr__timer *t, void (*fn)(void *arg), void *arg, const void *owner);
/* Starts (or moves) t to fire at due (mutex held). */
void zkr__timer_start(zkr_session *s, zkr__timer *t, int64_t due);
/* Stops t: it will not fire, and its event, if posted, will not run
 * (mutex held). */
void zkr__timer_stop(zkr_session *s, zkr__timer *t);
/* zkr_session_valid_until(): read without the mutex (published atomically). */
int64_t zkr__session_valid_until(zkr_session *s);
/* The handle, or NULL once the session is closing: no request may be sent
 * (mutex held). For observers (zkr__watch_*) only. */
zhandle_t *zkr__session_zh(zkr_session *s);
/* Asks the session to delete path in the background until it is deleted or
 * the session is gone (copied; mutex held). For a node a recipe created
 * itself, not a contender's (the queue deletes those): a double barrier's
 * node whose delete was not confirmed within the caller's deadline. */
void zkr__session_orphan(zkr_session *s, const char *path);

/* A thread waiting for a watch to fire (observers such as a leader
 * watcher). With the session mutex held: zkr__watch_new() makes a context
 * for zoo_w* calls with zkr__watch_fn; when the watch fires, w->fired is
 * set and w->cond signalled and the context belongs to the session again;
 * so it does when the session is lost. Otherwise zkr__watch_done() detaches
 * w: registered = 0 when the zoo_w* call left no watch on the server (freed
 * at once). */
typedef struct zkr__waiter {
  pthread_cond_t cond;
  int fired;
} zkr__waiter;
struct zkr__ticket *zkr__watch_new(zkr_session *s, zkr__waiter *w);
void zkr__watch_done(struct zkr__ticket *t, zkr__waiter *w, int registered);
void zkr__watch_fn(zhandle_t *zh, int type, int state, const char *path, void *ctx);

/* --- request.c: a recipe's own requests ------------------------------------ */

/* For nodes that are no contender's (a semaphore's record, a barrier's
 * nodes): one request sent asynchronously and waited for on the session
 * mutex within the caller's deadline, so that a stalled connection never
 * holds the caller and a lost session ends the wait. What the answer means
 * is the recipe's. All of these are called with the session mutex held and
 * wait on it. */
enum { ZKR__REQ_CREATE, ZKR__REQ_DELETE, ZKR__REQ_GET, ZKR__REQ_SET, ZKR__REQ_CHILDREN };

typedef struct zkr__req {
  int op; /* ZKR__REQ_* */
  const char *path;
  const char *data;             /* CREATE, SET: NUL-terminated, sent without the NUL */
  int flags;                    /* CREATE: ZOO_EPHEMERAL, ZOO_CONTAINER, 0 */
  int version;                  /* SET, DELETE: the expected version, -1 for any */
  const struct ACL_vector *acl; /* CREATE: NULL = open */
  struct zkr__ticket *watch;    /* GET, CHILDREN: from zkr__watch_new(), NULL: no watch */
} zkr__req;

/* An answer. zrc is the server's code, the client's (ZCONNECTIONLOSS...),
 * or its refusal to send at all; the rest is filled only when zrc is ZOK. */
typedef struct zkr__reply {
  int zrc;
  struct Stat stat; /* GET, SET */
  char *data;       /* GET: the node's data, NULL when it has none */
  int len;          /* GET: its length */
  char **kids;      /* CHILDREN: the names */
  int nkids;
} zkr__reply;
/* Frees what a reply holds (a zeroed one, or one given by zkr__request()). */
void zkr__reply_clear(zkr__reply *r);

/* Who asks: the session and the recipe's own reasons to stop waiting. */
typedef struct zkr__requester {
  zkr_session *s;
  /* NULL, or the recipe's reason to end a wait now (mutex held; must not
   * wait): ZKR_OK to go on, else the code the wait returns (ZKR_ECLOSED:
   * the object is being freed). Checked at least every 50 ms. */
  int (*stop)(void *arg);
  void *arg;
} zkr__requester;

/* Why a wait must end now, or ZKR_OK: rq->stop's code, the session's
 * (zkr__session_usable()), or ZKR_ETIMEDOUT once deadline (zkr__deadline();
 * < 0: none) has passed. */
int zkr__request_stopped(const zkr__requester *rq, int64_t deadline);
/* Sends q and waits for its answer until deadline (< 0: while the session
 * lives). Returns ZKR_OK with the answer in *out (free it with
 * zkr__reply_clear()), or why no answer came: zkr__request_stopped()'s
 * code, ZKR_ECLOSED when the session is closing, ZKR_ENOMEM. */
int zkr__request(const zkr__requester *rq, const zkr__req *q, int64_t deadline, zkr__reply *out);
/* 1 if the answer was lost to the connection (the request may or may not
 * have been applied): ZCONNECTIONLOSS, ZOPERATIONTIMEOUT. */
int zkr__request_conn_lost(int zrc);
/* The wait before sending again after a connection loss: until the
 * client has connected again since since (zkr__session_connections() read
 * before the failed request), checking rq->stop every 50 ms. Returns ZKR_OK,
 * or why not to send again (zkr__request_stopped()). */
int zkr__request_pause(const zkr__requester *rq, unsigned since, int64_t deadline);
/* zkr__request(), sent again after each connection loss (with the pause)
 * until the server answers: for a request that may be applied twice, a read
 * or one whose answer tells whether it had done its work (a create that
 * finds the node, a delete that finds none). */
int zkr__request_answered(const zkr__requester *rq, const zkr__req *q, int64_t deadline, zkr__reply *out);

/* --- queue.c: contenders ----------------------------------------------------- */

typedef struct zkr__contender zkr__contender;

/* A recipe's grant rule. The queue asks it, for each other contender in a
 * listing, whether that one keeps us waiting; everything else (the
 * protocol, which node to watch, when a deletion alone decides, recovery,
 * retries, session loss) is the queue's. Copied into each contender: a
 * recipe may make one per object (a semaphore's limit).
 *
 * A queue (whole = 0): only earlier nodes (queue order) are asked about;
 * granted when none blocks, else the nearest that does is watched; once it
 * is gone, a read of our own node decides if it was the only one, a fresh
 * listing otherwise. A pool (whole = 1): every node is asked about
 * (earlier = 0 for later ones); granted while fewer than limit block,
 * else the directory is watched and listed again on each change. */
typedef struct zkr__policy {
  const char *marker; /* of our node: "-lock-", "-latch-", "-__READ__"... */
  /* NULL: every earlier contender blocks (a mutex). Called with the session
   * mutex held; must not send anything. */
  int (*blocks)(const zkr__name *me, const zkr__name *other, int earlier);
  int whole; /* a pool: see above */
  int limit; /* a pool's places (>= 1); a queue's is 1 */
} zkr__policy;

/* Curator's InterProcessMutex ("-lock-", every earlier node blocks): the
 * lock's, and the semaphore's internal lock. */
extern const zkr__policy zkr__mutex_policy;

typedef struct zkr__contender_cfg {
  const char *dir;              /* checked recipe directory; copied */
  const zkr__policy *policy;    /* copied */
  const char *data;             /* node data; copied */
  const struct ACL_vector *acl; /* borrowed; NULL = open */
  /* Event thread, outside the mutex, each at most once per contender and
   * in this order: on_granted when it was granted (even if lost since),
   * on_lost when a granted contender lost its hold. Neither fires once the
   * recipe dropped the contender. */
  void (*on_lost)(void *owner, zkr__contender *c);
  void (*on_granted)(void *owner, zkr__contender *c);
  /* Event thread, outside the mutex: after any change a thread in
   * zkr__contender_wait() would wake for (the outcome known, a release
   * confirmed). Coalesced: one call may cover several changes, so it reads
   * the state (zkr__contender_outcome(), zkr__contender_released()). */
  void (*on_change)(void *owner, zkr__contender *c);
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

/* Not an error code: the outcome is not known yet. */
#define ZKR__PENDING 1
/* What zkr__contender_wait() would return now without waiting (deadline
 * aside), or ZKR__PENDING. Mutex held. */
int zkr__contender_outcome(const zkr__contender *c);
/* After zkr__contender_release(c, 0): what a waiting release would have
 * returned, or ZKR__PENDING while the delete is unconfirmed. Mutex held. */
int zkr__contender_released(const zkr__contender *c);

/* How long past the caller's deadline a give-up waits for the server to
 * confirm the delete of our node: a connected server answers in a round
 * trip; one that does not (a stalled or lost connection) must not hold the
 * caller, whose deadline is a promise. The delete then completes in the
 * background (retried on reconnection; the node also goes with the
 * session), and a later contender of this session sorts after it. */
#define ZKR__GIVE_UP_GRACE_NS (100 * 1000000LL)
/* The caller's deadline (< 0: none) plus that grace, counted from now if
 * the deadline has passed: how long a confirmation is waited for. */
int64_t zkr__give_up_by(int64_t deadline_ns);

/* Called with the session mutex held. Ends a wait that returned rc: a
 * give-up (ZKR_ETIMEDOUT, ZKR_ECLOSED) deletes our node, waiting for the
 * confirmation until deadline_ns (the caller's, zkr__deadline(); < 0 = as
 * long as the session lives) plus ZKR__GIVE_UP_GRACE_NS; a grant that won
 * the race against the deadline is kept when keep_late, else handed back.
 * Returns ZKR_OK when the caller holds c, else why not (ZKR_ELOST if our
 * node had been deleted: the cause, not the symptom). */
int zkr__contender_settle(zkr__contender *c, int rc, int keep_late, int64_t deadline_ns);

/* Called with the session mutex held. Gives up waiting: the node is
 * deleted; waits for the confirmation until give_up_by (< 0: while the
 * session lives), then leaves it to the background. Returns ZKR_OK if the
 * contender had been granted meanwhile (the caller holds it), ZKR_ELOST if
 * someone else had deleted our node, else ZKR_ETIMEDOUT. */
int zkr__contender_withdraw(zkr__contender *c, int64_t give_up_by);

/* Called with the session mutex held. Deletes a granted contender's node
 * (retrying across connection loss). With wait, returns once the server
 * confirmed it, ZKR_OK; ZKR_ELOST if the hold had been lost to a deletion
 * by someone else (also one we learn of only now, from the delete);
 * ZKR_ESESSION if it had been lost with the session or the session went
 * away first. Without, returns ZKR_OK once the delete is sent (ZKR_ELOST /
 * ZKR_ESESSION if the hold had been lost) and the contender finishes in the
 * background; dropping it then is fine. */
int zkr__contender_release(zkr__contender *c, int wait);
/* The same, waiting for the confirmation until until (CLOCK_MONOTONIC ns;
 * < 0: as long as the session lives; 0: not at all). */
int zkr__contender_release_until(zkr__contender *c, int64_t until);

/* Called with the session mutex held. The recipe forgets c: no callback will
 * be fired for it any more (its queued events are void); a node still on
 * the server is deleted in the background. c must not be used afterwards.
 * Waits (on the mutex) for a callback of c already running on the event
 * thread to return, so that the owner may be freed next; returns at once
 * on the event thread. */
void zkr__contender_drop(zkr__contender *c);
/* The same without that wait: it never blocks. A callback of c that had
 * started before may still be running, or about to take the mutex: the
 * owner must outlive it. Before freeing the owner, wait for it with
 * zkr__session_quiesce_running(s, tag), tag being c's address kept as a
 * plain value (never dereferenced: c may be gone by then). For callers
 * promised never to block (zkr_hold_cancel, zkr_election_resign_nowait),
 * whose owner lives on. */
void zkr__contender_abandon(zkr__contender *c);

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
/* Copies the node's full path into buf: ZKR_OK, or ZKR_EINVAL if it does
 * not fit (what every recipe's _node() accessor returns). */
int zkr__contender_copy_node(const zkr__contender *c, char *buf, size_t len);

/* The contender's state read without the session mutex (published
 * atomically): 1 while granted and not lost. */
int zkr__contender_held_now(const zkr__contender *c);

/* recipe.c: a contender of recipe r in directory dir (r->path for most)
 * with policy: every field but those zeroed (callbacks, owner, try_once). */
void zkr__recipe_contender(const zkr__recipe *r, const char *dir, const zkr__policy *policy,
                           zkr__contender_cfg *cfg);

/* --- async.c: asynchronous holds (zkr/async.h) ------------------------------ */

/* A recipe's outstanding zkr_hold handles. */
typedef struct zkr__asyncs {
  zkr__list holds; /* zkr_hold, under the session mutex */
  int closed;      /* the recipe is being freed: no new one */
} zkr__asyncs;
void zkr__asyncs_init(zkr__asyncs *as);
/* Starts an asynchronous acquisition of a contender of recipe r in its
 * directory with policy (takes the session mutex): checks its arguments
 * and returns as zkr_lock_acquire_async() does. */
int zkr__async_start(zkr__asyncs *as, const zkr__recipe *r, const zkr__policy *policy, int timeout_ms,
                     zkr_hold_fn on_acquired, zkr_hold_fn on_lost, void *arg, zkr_hold **out);
/* Mutex held (released while user callbacks run). Ends every hold of the
 * recipe: a pending acquisition's on_acquired and a pending release's
 * on_released get ZKR_ECLOSED (or the owed outcome), on this thread;
 * granted holds are released without a callback; all are freed. */
void zkr__async_close(zkr__asyncs *as);

/* --- holds.c: per-thread reentrant holds (lock, rwlock) -------------------- */

typedef struct zkr__hold {
  zkr__list link; /* on its set's list */
  pthread_t thread;
  int count; /* 0 while still acquiring */
  zkr__contender *c;
} zkr__hold;

typedef struct zkr__holds {
  zkr_session *s;
  zkr__list holds;     /* zkr__hold; changed under the session mutex and mu */
  pthread_mutex_t mu;  /* lets zkr__holds_valid_until() skip the session's */
  pthread_cond_t cond; /* acquiring reached 0 */
  int acquiring;       /* threads inside zkr__holds_acquire */
  int freeing;
  int lost_reason;            /* of the last lost hold; atomic */
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

#endif
