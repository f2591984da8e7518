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

typedef struct zkr_participant {
  char *id;        /* node data (participant id), NUL-terminated */
  char *node;      /* child name */
  int64_t session; /* ephemeralOwner */
  int64_t token;   /* czxid: the fencing token of this contender */
  int64_t age_ms;  /* now - node creation time (server clock) */
  int holder;      /* 1 for the holder */
} zkr_participant;

/* Lists the contenders under path in queue order into a new array (*out,
 * *count; caller owns it, free with zkr_participants_free()). Children that
 * are not contender nodes are skipped. An absent path gives 0 entries.
 * Returns ZKR_OK, ZKR_EINVAL, ZKR_ENOMEM, ZKR_ECONNLOSS, ZKR_ESESSION,
 * ZKR_ENOAUTH, ZKR_EZK. Blocking. */
ZKR_EXTERN int zkr_participants(zkr_session *s, const char *path, zkr_participant **out, size_t *count);

/* Frees an array from zkr_participants(). Accepts NULL. */
ZKR_EXTERN void zkr_participants_free(zkr_participant *p, size_t count);

#ifdef __cplusplus
}
#endif
#endif
