/* zkrecipes version. */
#ifndef ZKR_VERSION_H
#define ZKR_VERSION_H

#include <zkr/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZKR_VERSION_MAJOR 0
#define ZKR_VERSION_MINOR 1
#define ZKR_VERSION_PATCH 0

/* Returns "MAJOR.MINOR.PATCH" of the library actually linked (static). */
ZKR_EXTERN const char *zkr_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
