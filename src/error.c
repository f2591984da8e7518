/* Error codes: texts and the mapping from ZooKeeper's codes. */
#include "common.h"

const char *zkr_strerror(int code) {
  switch (code) {
  case ZKR_OK:
    return "success";
#define ZKR__STR(name, value, msg)                                                                           \
  case ZKR_##name:                                                                                           \
    return msg;
    ZKR_ERRNO_MAP(ZKR__STR)
#undef ZKR__STR
  default:
    return "unknown zkrecipes error code";
  }
}

const char *zkr_err_name(int code) {
  switch (code) {
  case ZKR_OK:
    return "ZKR_OK";
#define ZKR__NAME(name, value, msg)                                                                          \
  case ZKR_##name:                                                                                           \
    return "ZKR_" #name;
    ZKR_ERRNO_MAP(ZKR__NAME)
#undef ZKR__NAME
  default:
    return "ZKR_UNKNOWN";
  }
}

int zkr__from_zk(int zrc) {
  switch (zrc) {
  case ZOK:
    return ZKR_OK;
  case ZCONNECTIONLOSS:
  case ZOPERATIONTIMEOUT:
    return ZKR_ECONNLOSS;
  case ZSESSIONEXPIRED:
  case ZSESSIONMOVED:
  case ZINVALIDSTATE:
    return ZKR_ESESSION;
  case ZCLOSING:
    return ZKR_ECLOSED;
  case ZNOAUTH:
  case ZAUTHFAILED:
    return ZKR_ENOAUTH;
  case ZBADARGUMENTS:
    return ZKR_EINVAL;
  case ZSYSTEMERROR:
    return ZKR_ENOMEM; /* the C client's only system error is allocation */
  default:
    return ZKR_EZK;
  }
}

int zkr__zk_answered(int zrc) {
  if (zrc == ZOK)
    return 1;
  /* Codes above ZAPIERROR are the client's own (connection loss, timeouts,
   * bad state); a few API codes are made locally too. */
  if (zrc > ZAPIERROR)
    return 0;
  switch (zrc) {
  case ZSESSIONEXPIRED:
  case ZSESSIONMOVED:
  case ZCLOSING:
  case ZNOTHING:
  case ZNOWATCHER:
  case ZINVALIDCALLBACK:
    return 0;
  default:
    return 1;
  }
}

const char *zkr_lost_reason_str(int reason) {
  switch (reason) {
  case ZKR_LOST_NONE:
    return "not lost";
  case ZKR_LOST_EXPIRED:
    return "session expired";
  case ZKR_LOST_DEADLINE:
    return "validity deadline passed while the server did not confirm the session (disconnected or paused)";
  case ZKR_LOST_DELETED:
    return "node deleted by another client";
  case ZKR_LOST_CLOSED:
    return "session closed";
  case ZKR_LOST_AUTH:
    return "authentication failed";
  default:
    return "unknown reason";
  }
}
