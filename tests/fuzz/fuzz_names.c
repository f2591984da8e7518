/* libFuzzer target: path and host validation, contender-name parsing and
 * queue order must never crash, read out of bounds or disagree with
 * themselves, whatever the bytes. Build: scripts/fuzz.sh */
#include "common.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char *s = malloc(size + 1), *a, *b;
  zkr__name na, nb;
  int pa, pb;

  if (s == NULL)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  if (zkr__path_check(s) == ZKR_OK && (s[0] != '/' || strstr(s, "//") != NULL || strlen(s) > ZKR__PATH_MAX))
    abort(); /* accepted a path it must refuse */
  (void)zkr__hosts_check(s);
  /* Split the input in two names and check the order is antisymmetric. */
  a = s;
  b = strchr(s, '\n');
  if (b != NULL)
    *b++ = '\0';
  else
    b = s;
  pa = zkr__name_parse(a, &na);
  pb = zkr__name_parse(b, &nb);
  if (pa && (na.seq < a || na.seq > a + strlen(a)))
    abort();
  if (pa && pb) {
    int x = zkr__name_cmp(&na, &nb), y = zkr__name_cmp(&nb, &na);
    if ((x < 0 && y <= 0) || (x > 0 && y >= 0) || (x == 0 && (y != 0 || strcmp(a, b) != 0)))
      abort();
  }
  free(s);
  return 0;
}
