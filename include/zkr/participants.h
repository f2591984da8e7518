/* Listing a recipe's contender queue: holders first, then waiters in queue
 * order. Works for zkr, Curator and Kazoo contenders on the same path. */
#ifndef ZKR_PARTICIPANTS_H
#define ZKR_PARTICIPANTS_H

#include <stddef.h>
#include <stdint.h>
#include <zkr/export.h>
#include <zkr/session.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a contender asks for, told by its node's name. */
typedef enum zkr_mode {
  ZKR_MODE_EXCLUSIVE = 1, /* a mutex ("-lock-", Kazoo's "__lock__") or a writer ("__WRIT__") */
  ZKR_MODE_SHARED = 2,    /* a reader ("__READ__", Kazoo's "__rlock__") */
  ZKR_MODE_LEASE = 3,     /* a semaphore lease ("-lease-") */
  ZKR_MODE_LEADER = 4     /* an election participant ("-latch-") */
} zkr_mode;

typedef struct zkr_participant {
  char *id;        /* node data (participant id), NUL-terminated */
  char *node;      /* child name */
  int64_t session; /* ephemeralOwner */
  int64_t token;   /* czxid: the fencing token of this contender */
  int64_t age_ms;  /* now - node creation time (server clock) */
  int holder;      /* 1 for a holder, by the rule of its mode (see below) */
  int mode;        /* zkr_mode */
} zkr_participant;

/* Lists the contenders under path in queue order into a new array (*out,
 * *count; caller owns it, free with zkr_participants_free()). Children that
 * are not contender nodes are skipped. An absent path gives 0 entries.
 * holder follows the rule the recipes apply: an exclusive node or a leader
 * holds at the head; a reader while no other kind of node precedes it (a
 * zkr downgrade keeps the write node, and no read node); a lease while fewer leases
 * than the semaphore's max_leases precede it (recorded on the parent of a
 * ".../leases" path; every lease holds if no count is recorded).
 * Returns ZKR_OK, ZKR_EINVAL, ZKR_ENOMEM, ZKR_ECONNLOSS, ZKR_ESESSION,
 * ZKR_ENOAUTH, ZKR_EZK. Blocking. */
ZKR_EXTERN int zkr_participants(zkr_session *s, const char *path, zkr_participant **out, size_t *count);

/* Frees an array from zkr_participants(). Accepts NULL. */
ZKR_EXTERN void zkr_participants_free(zkr_participant *p, size_t count);

#ifdef __cplusplus
}
#endif
#endif
