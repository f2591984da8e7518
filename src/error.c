/* Error codes: texts and the mapping from ZooKeeper's codes. */
#include "internal.h"

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
