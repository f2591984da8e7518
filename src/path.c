/* Validation of recipe paths and connect strings: bad input is rejected
 * before anything is sent to the server, with the rule it breaks. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *zkr_path_problem(const char *path) {
  size_t len, i, start;

  if (path == NULL)
    return "it is NULL";
  len = strlen(path);
  if (path[0] != '/')
    return "it must be absolute (start with /)";
  if (len < 2)
    return "it must name a node below /, not / itself";
  if (len > ZKR__PATH_MAX)
    return "it is longer than 1024 bytes";
  if (path[len - 1] == '/')
    return "it must not end with /";
  for (i = 0; i < len; i++)
    if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
      return "it contains a control character";
  for (start = 1; start <= len;) {
    const char *slash = strchr(path + start, '/');
    size_t end = slash != NULL ? (size_t)(slash - path) : len, n = end - start;

    if (n == 0)
      return "it has an empty component (//)";
    if ((n == 1 && path[start] == '.') || (n == 2 && path[start] == '.' && path[start + 1] == '.'))
      return "it has a . or .. component";
    start = end + 1;
  }
  if (strncmp(path, "/zookeeper", 10) == 0 && (path[10] == '\0' || path[10] == '/'))
    return "/zookeeper is the server's own subtree";
  return NULL;
}

const char *zkr_hosts_problem(const char *hosts) {
  const char *chroot, *p = hosts, *end;

  if (hosts == NULL)
    return "it is NULL";
  if (hosts[0] == '\0')
    return "it is empty";
  chroot = strchr(hosts, '/');
  if (strlen(hosts) > 4096)
    return "it is longer than 4096 bytes";
  end = chroot != NULL ? chroot : hosts + strlen(hosts);
  if (chroot != NULL && chroot[1] != '\0' && zkr_path_problem(chroot) != NULL)
    return "the chroot after the first / is not a valid path";
  if (p == end)
    return "no host:port before the chroot";
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p)), *e = comma != NULL ? comma : end;
    const char *colon = NULL, *q;
    unsigned long port = 0;

    /* "[v6addr]:port" or "host:port": the port follows the last ':'. */
    for (q = p; q < e; q++)
      if (*q == ':')
        colon = q;
    if (p == e)
      return "an empty entry between commas";
    if (colon == NULL)
      return "each entry needs an explicit :port (host:2181)";
    if (colon == p)
      return "an entry has a :port but no host";
    for (q = p; q < colon; q++)
      if ((unsigned char)*q <= ' ')
        return "a host name contains a space or control character";
    if (colon + 1 == e || e - colon - 1 > 5)
      return "a port must be a number from 1 to 65535";
    for (q = colon + 1; q < e; q++) {
      if (*q < '0' || *q > '9')
        return "a port must be a number from 1 to 65535";
      port = port * 10 + (unsigned long)(*q - '0');
    }
    if (port < 1 || port > 65535)
      return "a port must be a number from 1 to 65535";
    p = comma != NULL ? comma + 1 : end;
    if (comma != NULL && p == end)
      return "an empty entry after the last comma";
  }
  return NULL;
}

int zkr__path_check(const char *path) {
  return zkr_path_problem(path) == NULL ? ZKR_OK : ZKR_EINVAL;
}

int zkr__hosts_check(const char *hosts) {
  return zkr_hosts_problem(hosts) == NULL ? ZKR_OK : ZKR_EINVAL;
}

char *zkr__path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + 1 + strlen(name) + 1;
  char *p = malloc(n);

  if (p != NULL)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}
