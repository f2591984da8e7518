/* Checking and showing text for the zkr tool. */
#include "text.h"

#include <string.h>

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
