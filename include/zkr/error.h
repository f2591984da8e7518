/* zkrecipes error codes.
 *
 * Every int-returning zkr_ function returns ZKR_OK (0) or one of the
 * negative codes below. Published values never change; new codes are only
 * ever appended. Safe from any thread. */
#ifndef ZKR_ERROR_H
#define ZKR_ERROR_H

#include <zkr/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* clang-format off */
/* X(name, value, message): the one list the enum, zkr_strerror() and
 * zkr_err_name() are generated from. */
#define ZKR_ERRNO_MAP(X)                                                                  \
  X(EINVAL, -1, "invalid argument")                                                       \
  X(ETIMEDOUT, -2, "timed out")                                                           \
  X(ENOTHELD, -3, "not held by the calling thread (or not leading, not participating)")  \
  X(ESESSION, -4, "ZooKeeper session lost (expired, closed or past its validity)")        \
  X(ECONNLOSS, -5, "connection to ZooKeeper lost")                                        \
  X(ENOAUTH, -6, "not authorized (ACL or authentication failure)")                        \
  X(ENOMEM, -7, "out of memory")                                                          \
  X(EZK, -8, "unexpected ZooKeeper error")                                                \
  X(ECLOSED, -9, "object is being freed or its session closed")                           \
  X(ELOST, -10, "our contender node was deleted by another client")                       \
  X(ECONNECT, -11, "could not connect to any ZooKeeper server")                           \
  X(ENOLEADER, -12, "no leader: nobody participates in the election")                   \
  X(EEXHAUSTED, -13, "the directory's sequence counter is exhausted (2^31 children created): "     \
                     "recreate the directory while nobody uses it")                            \
  X(ENOCHROOT, -14, "the chroot in the host string does not exist on the server")          \
  X(ELOGROUTES, -15, "too many open sessions route the ZooKeeper client's log (at most 256)") \
  X(EDEADLK, -16, "the calling thread holds the read lock: taking the write lock would wait for "  \
                  "itself forever (release the read lock first)")                                 \
  X(EMISMATCH, -17, "the participants disagree on max_leases (a semaphore) or period and zone (a once key), recorded on the path") \
  X(EBROKEN, -18, "the barrier is broken: a participant left or lost its session before all had entered") \
  X(ECANCELLED, -19, "the asynchronous acquisition was cancelled (zkr_hold_cancel)")
/* clang-format on */

typedef enum zkr_errno {
  ZKR_OK = 0,
#define ZKR__ENUM(name, value, msg) ZKR_##name = (value),
  ZKR_ERRNO_MAP(ZKR__ENUM)
#undef ZKR__ENUM
} zkr_errno;

/* Returns a human-readable, static description of code. Unknown codes get
 * a generic text; never NULL. */
ZKR_EXTERN const char *zkr_strerror(int code);

/* Returns the symbolic name of code ("ZKR_EINVAL"), or "ZKR_UNKNOWN". */
ZKR_EXTERN const char *zkr_err_name(int code);

#ifdef __cplusplus
}
#endif
#endif
