/* What every file of the library shares (zkr__ prefix, never exported):
 * time, error mapping, paths, contender names, the recipe base, logging.
 * No session or queue internals: see engine.h (recipes) and core.h (the
 * session and the queue). */
#ifndef ZKR_COMMON_H
#define ZKR_COMMON_H

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
/* What is left of such a deadline as a timeout_ms for a nested call: -1 for
 * none, at least 1 while time is left, 0 once it has passed. */
int zkr__timeout_left(int64_t deadline_ns);
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

/* "dir/name", malloc'ed (caller owns; free()), or NULL when out of memory. */
char *zkr__path_join(const char *dir, const char *name);

/* ZKR_OK if hosts looks like "host:port[,host:port...][/chroot]". */
int zkr__hosts_check(const char *hosts);

/* --- name.c: contender names ---------------------------------------------- */

/* Where a child name's sequence is and which protocol made it. */
/* What a contender node asks for, told by its marker. */
enum {
  ZKR__EXCLUSIVE = ZKR_MODE_EXCLUSIVE,
  ZKR__SHARED = ZKR_MODE_SHARED,
  ZKR__LEASE = ZKR_MODE_LEASE,
  ZKR__LEADER = ZKR_MODE_LEADER
};

typedef struct zkr__name {
  const char *name; /* borrowed: the whole child name */
  const char *seq;  /* points into name: the sequence suffix */
  int kind;         /* ZKR__EXCLUSIVE, ZKR__SHARED (a reader), ZKR__LEASE, ZKR__LEADER */
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
/* A recipe object: size zeroed bytes whose first member is its zkr__recipe,
 * filled by zkr__recipe_init(); NULL with *rc set to why. Freed with
 * zkr__recipe_free() once the recipe's own state is torn down. */
void *zkr__recipe_new(size_t size, zkr_session *s, const char *path, const char *id,
                      const struct ACL_vector *acl, int *rc);
void zkr__recipe_free(void *recipe);

/* --- log.c ---------------------------------------------------------------- */

/* Returns a ZooKeeper log callback routed to fn/arg (or stream), or one that
 * discards everything when both are NULL. *slot receives what
 * zkr__log_unbind() needs. Returns NULL if no routing slot is free. */
log_callback_fn zkr__log_bind(zkr_log_fn fn, void *arg, FILE *stream, int *slot);
void zkr__log_unbind(int slot);

#endif
