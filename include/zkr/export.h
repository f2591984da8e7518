/* Symbol visibility: the library is built with -fvisibility=hidden and
 * exports exactly the declarations marked ZKR_EXTERN. */
#ifndef ZKR_EXPORT_H
#define ZKR_EXPORT_H

#if defined(__GNUC__) && __GNUC__ >= 4
#define ZKR_EXTERN __attribute__((visibility("default")))
#else
#define ZKR_EXTERN
#endif

#endif
