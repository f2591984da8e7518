/* Validation of recipe paths and connect strings: bad input is rejected
 * before anything is sent to the server. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int zkr__path_check(const char *path) {
  size_t len, i, start;

  if (path == NULL || path[0] != '/')
    return ZKR_EINVAL;
  len = strlen(path);
  if (len < 2 || len > ZKR__PATH_MAX || path[len - 1] == '/')
    return ZKR_EINVAL;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)path[i];
    /* ZooKeeper rejects control characters; refusing them here keeps the
     * error local and clear. */
    if (ch < 0x20 || ch == 0x7f)
      return ZKR_EINVAL;
  }
  /* Components: none empty ("//"), none "." or "..". */
  for (start = 1; start <= len;) {
    const char *slash = strchr(path + start, '/');
    size_t end = slash != NULL ? (size_t)(slash - path) : len;
    size_t n = end - start;

    if (n == 0)
      return ZKR_EINVAL;
    if ((n == 1 && path[start] == '.') || (n == 2 && path[start] == '.' && path[start + 1] == '.'))
      return ZKR_EINVAL;
    start = end + 1;
  }
  /* The server's own subtree: never a place for recipes. */
  if (strncmp(path, "/zookeeper", 10) == 0 && (path[10] == '\0' || path[10] == '/'))
    return ZKR_EINVAL;
  return ZKR_OK;
}

static int port_check(const char *p, size_t n) {
  unsigned long v = 0;
  size_t i;

  if (n == 0 || n > 5)
    return ZKR_EINVAL;
  for (i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return ZKR_EINVAL;
    v = v * 10 + (unsigned long)(p[i] - '0');
  }
  return v >= 1 && v <= 65535 ? ZKR_OK : ZKR_EINVAL;
}

int zkr__hosts_check(const char *hosts) {
  const char *chroot, *p, *end;

  if (hosts == NULL || hosts[0] == '\0' || strlen(hosts) > 4096)
    return ZKR_EINVAL;
  chroot = strchr(hosts, '/');
  end = chroot != NULL ? chroot : hosts + strlen(hosts);
  if (chroot != NULL && chroot[1] != '\0' && zkr__path_check(chroot) != ZKR_OK)
    return ZKR_EINVAL;
  for (p = hosts; p < end;) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *e = comma != NULL ? comma : end;
    const char *colon;

    /* "[v6addr]:port" or "host:port": the port follows the last ':'. */
    colon = NULL;
    for (const char *q = p; q < e; q++)
      if (*q == ':')
        colon = q;
    if (colon == NULL || colon == p)
      return ZKR_EINVAL;
    if (port_check(colon + 1, (size_t)(e - colon - 1)) != ZKR_OK)
      return ZKR_EINVAL;
    for (const char *q = p; q < colon; q++)
      if ((unsigned char)*q <= ' ')
        return ZKR_EINVAL;
    p = comma != NULL ? comma + 1 : end;
    if (comma != NULL && p == end)
      return ZKR_EINVAL;
  }
  return ZKR_OK;
}
