/* zkr_once: run a job once per period (a day, an hour...) across a fleet
 * whose machines all fire the same timer.
 *
 * A lock alone does not do it: a machine whose timer fires after the first
 * run has finished takes the free lock and runs again. zkr_once takes a
 * lock on the key, reads the time from the ZooKeeper server (the mtime of
 * a node it writes), works out which period that is, and runs the job only
 * if no completion marker of that period exists; a successful run writes
 * the marker, fenced by the lock. Machines with skewed clocks agree on the
 * period, because no machine's clock is used.
 *
 * The guarantee, exactly: at most one run at a time (the lock, with the
 * caveats of zkr_lock: a holder paused past its session is fenced by the
 * token, not stopped); and every firing (zkr_once_begin) runs the job
 * unless a run of the same period has succeeded and been recorded, or it
 * returns an error that says why it decided nothing (the lock not
 * acquired, or lost; the connection down until the lock's validity ended;
 * ZKR_EMISMATCH: the key records another period or zone; ZKR_EZK with
 * rec->foreign: a node at the marker's name that is no marker of ours), so
 * a period in which any machine's firing got past those gets at least one
 * run. A second run in a period only follows one that failed, died, lost
 * the lock, or succeeded but could not write its marker (the lock lost
 * first, or the connection down until its validity ended), or, across a
 * ZooKeeper leader change at a period boundary, from leaders whose clocks
 * disagree (the time is the leader's). The job gets the fencing token and
 * the period id to make its effects idempotent.
 *
 * The key's setting is PATH's data, written by its first firing: three
 * lines "zkr-once-key 1", "period P" (as given), "tz Z" (the zone's name,
 * "UTC" for NULL). A firing whose period (compared by value: "86400s" is
 * "24h", "1d" is not) or zone (by name) differs, or that finds other data
 * at PATH, decides nothing: ZKR_EMISMATCH, for a key's period ids are
 * comparable only under one period and zone.
 *
 * Layout under the key's path PATH (absolute): PATH/lock, the lock (a
 * zkr_lock, Curator's mutex naming); PATH/clock, a persistent node written
 * to read the server's time; PATH/done/<period id>, a persistent marker per
 * successful run, and PATH/done/<period id>~failed, the last failed run of
 * the period (a record only: it never marks the period done). A record's
 * data is text, one "name value" line each: "zkr-once 1", "period ID",
 * "start MS", "end MS" (server time, ms since the epoch), "status N" (0:
 * done), "token T" (the lock's fencing token), "runner ID" (last: the rest
 * of the line). The newest `keep` records (100 by default) are kept: each
 * zkr_once_done() deletes the older ones, so nothing grows without bound.
 * Records are ordered by time (the start of their run; a node that is no
 * record by its mtime), never by name (a marker sorts before its older
 * ~failed record, an autumn night's second 02:00 before its first), and a
 * record of the current period is never deleted, even past `keep`.
 * TTL nodes are not used: a marker must be written in a multi behind the
 * lock's check, and the 3.8 C client's multi cannot create TTL nodes
 * (ZUNIMPLEMENTED, also from a server started with extendedTypesEnabled,
 * which Debian's is not by default), so the records of a key no longer run
 * stay, at most `keep` of them.
 *
 * Periods ("N" and a unit; period ids in brackets): Ns, Nm, Nh that divide
 * a day, wall-clock intervals of the zone's day from local midnight
 * ["2026-11-29T14:15+01:00", "...T14:15Z" in UTC; seconds shown for
 * periods that are not whole minutes]; Nd, calendar days of the zone
 * counted from 1970-01-01 (1d turns at local midnight: DST days are 23 or
 * 25 h long) ["2026-11-29", its first day]; Nw, ISO weeks (Monday to
 * Sunday) counted from the week of 1970-01-01 ["2026-W48", its first week].
 * The zone is a tzdata name ("Europe/Berlin"), read from its zone file
 * under $TZDIR or /usr/share/zoneinfo; NULL or "UTC" is UTC. The right/
 * (leap-second) and posix/ copies are refused. One key should
 * keep one period and zone (recorded, above).
 *
 * One zkr_once runs one period at a time: zkr_once_begin() and
 * zkr_once_done() are called by the same thread (the lock's hold belongs
 * to it), and the object is not shared by threads that run at once. The
 * blocking calls must not be called from a zkr or ZooKeeper callback. */
#ifndef ZKR_ONCE_H
#define ZKR_ONCE_H

#include <stdint.h>
#include <zkr/export.h>
#include <zkr/lock.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkr_once zkr_once;

/* The longest key path, in bytes: the nodes below it (PATH/lock/<lock
 * node>, PATH/done/<period id>~failed) take up to 80 more, and every path
 * must stay within the 1024 bytes zkr_path_problem() allows, so that a
 * key too long is refused by zkr_once_new() (ZKR_EINVAL) before any
 * request, never midway through a firing. */
#define ZKR_ONCE_PATH_MAX 944

typedef struct zkr_once_opts {
  const char *tz;               /* zone of the periods; NULL = UTC. Copied. */
  int keep;                     /* markers kept; 0 = 100 */
  zkr_lock_lost_fn on_lost;     /* the lock's (see zkr/lock.h); optional */
  void *arg;                    /* passed to on_lost */
  const char *id;               /* runner id, in the lock node and the marker;
                                   NULL = "<hostname>:<pid>". Copied. */
  const struct ACL_vector *acl; /* NULL = open; borrowed: must outlive the object */
} zkr_once_opts;

/* One run as a marker records it (or as zkr_once_begin() starts it). */
typedef struct zkr_once_record {
  char period[64];  /* period id */
  char runner[256]; /* runner id (truncated to 255 bytes) */
  int64_t start_ms; /* server time the run began, ms since the epoch */
  int64_t end_ms;   /* server time it ended; 0 while it runs */
  int status;       /* 0: done; else the failed run's status */
  int64_t token;    /* fencing token of the run's lock */
  int foreign;      /* 1: the node PATH/done/<period> holds no record of ours (other data,
                       children, another period's record, a marker whose status is not 0):
                       only period (the node's name) is set; it counts as no run */
} zkr_once_record;

/* What zkr_once_begin() decided. */
typedef enum zkr_once_verdict {
  ZKR_ONCE_RUN = 1, /* not done in this period: the caller holds the lock
                       and runs the job, then calls zkr_once_done() */
  ZKR_ONCE_DONE = 2 /* done in this period already: the lock is released */
} zkr_once_verdict;

/* Which rule period or tz breaks, as a static text, or NULL if they are
 * usable (tz NULL = UTC; the zone's file is read). zkr_once_new() refuses
 * exactly these with ZKR_EINVAL. Any thread. */
ZKR_EXTERN const char *zkr_once_period_problem(const char *period, const char *tz);

/* Creates a once object for the key at path (absolute; copied) with period
 * (such as "1d", "15m"; copied) on session s. Sends nothing. opts may be
 * NULL. The caller owns *out; free it with zkr_once_free(). Returns ZKR_OK,
 * ZKR_EINVAL (bad path or one longer than ZKR_ONCE_PATH_MAX, period, zone,
 * keep < 0), ZKR_ENOMEM. */
ZKR_EXTERN int zkr_once_new(zkr_once **out, zkr_session *s, const char *path, const char *period,
                            const zkr_once_opts *opts);

/* Takes the key's lock (timeout_ms < 0 waits forever, 0 tries once, > 0
 * at most that long: it bounds the wait for the lock only; the requests
 * after it take a round trip each), reads the server's time by writing
 * PATH/clock, and looks for the marker of that period.
 * On ZKR_OK *verdict says what to do and *rec (may be NULL) is filled:
 * ZKR_ONCE_RUN: the calling thread holds the lock; rec is this run (period,
 * our id, start, token; the environment of zkr once gives the job the
 * period and token as ZKR_ONCE_PERIOD and ZKR_FENCING_TOKEN); run the job
 * while zkr_lock_held(zkr_once_lock(o)), then call zkr_once_done().
 * ZKR_ONCE_DONE: the lock was released; rec is the marker (who ran the job,
 * when). On failure the lock is not held. Returns ZKR_OK, ZKR_ETIMEDOUT
 * (lock not acquired), ZKR_EMISMATCH (the key records another period or
 * zone, or PATH holds other data: nothing decided), ZKR_EZK with
 * rec->foreign set (rec may not be NULL to tell it) when the marker's
 * name PATH/done/<rec->period> holds a node that is no marker of ours:
 * the period counts neither as done nor as free, nothing runs until
 * someone deletes that node; ZKR_EINVAL (NULL argument, a run begun and not
 * done, or a key inside another once key or over other nodes, such as
 * keys below it, refused before anything is written), and the errors of zkr_lock_acquire(); after the grant a
 * connection loss is ridden through (each request tried again while the
 * lock is held), and ZKR_ECONNLOSS means the connection stayed down until
 * the lock's validity ended (ZKR_ENOTHELD: the lock was lost otherwise). */
ZKR_EXTERN int zkr_once_begin(zkr_once *o, int timeout_ms, zkr_once_verdict *verdict, zkr_once_record *rec);

/* Ends the run begun by zkr_once_begin() with the job's status (0:
 * success) and releases the lock, on the thread that began it. status 0
 * writes the period's completion marker in one multi with a check of our
 * lock node, so it commits only while the lock is held; another status
 * writes a ~failed record instead (informational: it never marks the
 * period done). A connection loss is ridden through while the lock is
 * held: the reads and the write of PATH/clock are tried again, and after
 * one during the record's write the record is read back before anything
 * is retried. Then the markers past `keep` are
 * deleted. Returns ZKR_OK (record written), ZKR_ENOTHELD (no run begun,
 * or the lock was lost before the record could be written: the period is
 * not marked done), ZKR_ESESSION, ZKR_ECONNLOSS (the record's fate is
 * unknown: the connection stayed down while the lock's validity lasted),
 * ZKR_ENOAUTH, ZKR_EZK. The lock is released whatever the result. */
ZKR_EXTERN int zkr_once_done(zkr_once *o, int status);

/* The key's lock (borrowed; lives as long as o): for zkr_lock_held(),
 * zkr_lock_token(), zkr_lock_valid_until() and zkr_lock_multi() during a
 * run. Releasing or freeing it is not allowed. NULL for NULL. */
ZKR_EXTERN zkr_lock *zkr_once_lock(zkr_once *o);

/* The recent runs of the key at path, newest first (by the server time
 * each run began), read from the markers with one request each; a node
 * under PATH/done that is no record of ours is listed last with foreign
 * set (it blocks its period's firings: see zkr_once_begin()). On ZKR_OK the caller owns *out
 * (n entries; NULL when n is 0) and frees it with zkr_once_history_free().
 * A key never run has no runs. Returns ZKR_OK, ZKR_EINVAL, ZKR_ENOMEM,
 * ZKR_ECONNLOSS, ZKR_ESESSION, ZKR_ENOAUTH, ZKR_EZK. Any thread. */
ZKR_EXTERN int zkr_once_history(zkr_session *s, const char *path, zkr_once_record **out, size_t *n);

ZKR_EXTERN void zkr_once_history_free(zkr_once_record *records);

/* Frees o. A run begun and not done ends without a record (its lock is
 * released): the period stays not done. Accepts NULL. */
ZKR_EXTERN void zkr_once_free(zkr_once *o);

#ifdef __cplusplus
}
#endif
#endif
