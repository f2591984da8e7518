/* Contender node names: parsing, queue order, and the random part. */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Markers that precede the sequence suffix, and what a node so named
 * asks for: Curator's protected mutex, latch, read-write lock and semaphore
 * lease names (go-zookeeper uses the mutex's), Kazoo's lock and read lock. */
static const struct {
  const char *marker;
  int kind;
} markers[] = {
    {"-lock-", ZKR__EXCLUSIVE},   {"-latch-", ZKR__LEADER},  {"__WRIT__", ZKR__EXCLUSIVE},
    {"__lock__", ZKR__EXCLUSIVE}, {"__READ__", ZKR__SHARED}, {"__rlock__", ZKR__SHARED},
    {"-lease-", ZKR__LEASE},
};

static const char *last_occurrence(const char *s, const char *needle) {
  const char *hit = NULL, *p = s;

  while ((p = strstr(p, needle)) != NULL) {
    hit = p;
    p++;
  }
  return hit;
}

/* A sequence is what ZooKeeper's "%010d" makes: digits with an optional
 * leading '-' once the counter overflowed. Anything else is not ours. */
static int seq_valid(const char *seq) {
  size_t i = 0, digits = 0;

  if (seq[0] == '-')
    i++;
  for (; seq[i] != '\0'; i++, digits++)
    if (seq[i] < '0' || seq[i] > '9')
      return 0;
  return digits >= 1 && digits <= 20;
}

int zkr__name_parse(const char *name, zkr__name *out) {
  const char *best_seq = NULL;
  int kind = 0;
  size_t i;

  if (name == NULL)
    return 0;
  for (i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
    const char *hit = last_occurrence(name, markers[i].marker);
    const char *seq;

    if (hit == NULL)
      continue;
    seq = hit + strlen(markers[i].marker);
    if (seq_valid(seq) && (best_seq == NULL || seq < best_seq)) {
      best_seq = seq;
      kind = markers[i].kind;
    }
  }
  if (best_seq == NULL)
    return 0;
  out->name = name;
  out->seq = best_seq;
  out->kind = kind;
  return 1;
}

int zkr__contender_check(const char *name, int64_t ephemeral_owner, zkr__name *out) {
  return ephemeral_owner != 0 && zkr__name_parse(name, out);
}

int zkr__name_seq_exhausted(const zkr__name *n) {
  long long v;
  char *end;

  if (n->seq[0] == '-')
    return 1; /* wrapped */
  errno = 0;
  v = strtoll(n->seq, &end, 10);
  return errno == ERANGE || v >= ZKR__SEQ_LIMIT;
}

int zkr__name_cmp(const zkr__name *a, const zkr__name *b) {
  int c = strcmp(a->seq, b->seq);

  return c != 0 ? c : strcmp(a->name, b->name);
}

int zkr__uuid(char out[37]) {
  unsigned char b[16];
  size_t got = 0;
  int tries = 0;

  /* A signal may cut a read short; anything else (no entropy source at
   * all) is an error to report, not a reason to spin. */
  while (got < sizeof(b)) {
    ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
    if (n > 0)
      got += (size_t)n;
    else if (!(n < 0 && errno == EINTR) || ++tries > 100)
      return ZKR_EZK;
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
           b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return ZKR_OK;
}

void zkr__default_id(char *buf, size_t len) {
  char host[256];

  if (gethostname(host, sizeof(host)) != 0)
    strcpy(host, "unknown");
  host[sizeof(host) - 1] = '\0';
  snprintf(buf, len, "%s:%ld", host, (long)getpid());
}
