/* Checking and showing text for the zkr tool. */
#include "text.h"

#include <string.h>

/* The longest recipe path the library accepts. */
#define PATH_MAX_BYTES 1024

const char *path_problem(const char *path) {
  size_t len = strlen(path), i, start;

  if (path[0] != '/')
    return "it must be absolute (start with /)";
  if (len < 2)
    return "it must name a node below /, not / itself";
  if (len > PATH_MAX_BYTES)
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

const char *hosts_problem(const char *hosts) {
  const char *chroot = strchr(hosts, '/'), *p = hosts, *end;

  if (hosts[0] == '\0')
    return "it is empty";
  if (strlen(hosts) > 4096)
    return "it is longer than 4096 bytes";
  end = chroot != NULL ? chroot : hosts + strlen(hosts);
  if (chroot != NULL && chroot[1] != '\0' && path_problem(chroot) != NULL)
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

/* Length of the well-formed UTF-8 sequence at s (1 to 4), or 0 if the bytes
 * there are not one (stray continuation, overlong form, surrogate, beyond
 * U+10FFFF, or cut by the end of the string). */
static size_t utf8_len(const unsigned char *s) {
  size_t n, i;
  unsigned long cp;

  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf) {
    n = 2;
    cp = s[0] & 0x1fu;
  } else if ((s[0] & 0xf0) == 0xe0) {
    n = 3;
    cp = s[0] & 0x0fu;
  } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
    n = 4;
    cp = s[0] & 0x07u;
  } else {
    return 0;
  }
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return 0;
  return n;
}

static int is_control(unsigned char ch) {
  return ch < 0x20 || ch == 0x7f;
}

const char *printable(const char *s, char *buf, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t used = 0;

  while (*p != '\0') {
    size_t n = utf8_len(p);
    char piece[8];
    size_t plen;

    if (n == 0 || (n == 1 && is_control(*p))) {
      plen = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", *p);
      n = 1;
    } else {
      memcpy(piece, p, n);
      plen = n;
    }
    if (used + plen + 4 > len) { /* room for "..." and the NUL */
      memcpy(buf + used, "...", 3);
      used += 3;
      break;
    }
    memcpy(buf + used, piece, plen);
    used += plen;
    p += n;
  }
  buf[used] = '\0';
  return buf;
}

void json_string(FILE *out, const char *s) {
  const unsigned char *p = (const unsigned char *)s;

  fputc('"', out);
  while (*p != '\0') {
    size_t n = utf8_len(p);

    if (n == 0) {
      fputs("\\ufffd", out);
      n = 1;
    } else if (*p == '"' || *p == '\\') {
      fprintf(out, "\\%c", *p);
    } else if (n == 1 && is_control(*p)) {
      fprintf(out, "\\u%04x", *p);
    } else {
      fwrite(p, 1, n, out);
    }
    p += n;
  }
  fputc('"', out);
}
