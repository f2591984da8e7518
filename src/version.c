#include "common.h"

#define ZKR__STR2(x) #x
#define ZKR__STR(x) ZKR__STR2(x)

const char *zkr_version_string(void) {
  return ZKR__STR(ZKR_VERSION_MAJOR) "." ZKR__STR(ZKR_VERSION_MINOR) "." ZKR__STR(ZKR_VERSION_PATCH);
}
