/* Listing a contender queue for inspection (zkr status, dashboards). */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
  zkr__name name;
  zkr_participant p;
} entry;

static int cmp_entries(const void *a, const void *b) {
  return zkr__name_cmp(&((const entry *)a)->name, &((const entry *)b)->name);
}

static int64_t wall_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The max_leases a semaphore recorded on the parent of its ".../leases"
 * directory, or -1. */
static int recorded_limit(zhandle_t *zh, const char *path) {
  char parent[ZKR__PATH_MAX + 1], buf[16];
  size_t n = strlen(path);
  int len = (int)sizeof(buf) - 1;
  long v;
  char *end;

  if (n < 8 || n > ZKR__PATH_MAX || strcmp(path + n - 7, "/leases") != 0)
    return -1;
  memcpy(parent, path, n - 7);
  parent[n - 7] = '\0';
  if (zoo_get(zh, parent, 0, buf, &len, NULL) != ZOK || len <= 0)
    return -1;
  buf[len] = '\0';
  v = strtol(buf, &end, 10);
  return *end == '\0' && v >= 1 && v <= 0x7fffffff ? (int)v : -1;
}

/* Who holds, by the rule of each one's mode (see zkr_participants()). */
static void mark_holders(zhandle_t *zh, const char *path, zkr_participant *p, size_t n) {
  int limit = -2, leases = 0;
  size_t i, j;

  for (i = 0; i < n; i++) {
    switch (p[i].mode) {
    case ZKR_MODE_SHARED:
      p[i].holder = 1;
      for (j = 0; j < i && p[i].holder; j++)
        if (p[j].mode != ZKR_MODE_SHARED)
          p[i].holder = 0;
      break;
    case ZKR_MODE_LEASE:
      if (limit == -2)
        limit = recorded_limit(zh, path);
      p[i].holder = limit < 0 || leases++ < limit;
      break;
    default:
      p[i].holder = i == 0;
    }
  }
}

void zkr_participants_free(zkr_participant *p, size_t count) {
  size_t i;

  if (p == NULL)
    return;
  for (i = 0; i < count; i++) {
    free(p[i].id);
    free(p[i].node);
  }
  free(p);
}

int zkr_participants(zkr_session *s, const char *path, zkr_participant **out, size_t *count) {
  struct String_vector kids = {0, NULL};
  entry *es = NULL;
  zkr_participant *res;
  zhandle_t *zh;
  size_t n = 0, i;
  int zrc, rc = ZKR_OK;

  if (out == NULL || count == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  *count = 0;
  if (s == NULL || zkr__path_check(path) != ZKR_OK)
    return ZKR_EINVAL;
  zh = zkr_session_zhandle(s);
  if (zh == NULL)
    return ZKR_ECLOSED;
  zrc = zoo_get_children(zh, path, 0, &kids);
  if (zrc == ZNONODE)
    return ZKR_OK;
  if (zrc != ZOK)
    return zkr__from_zk(zrc);
  es = calloc((size_t)(kids.count > 0 ? kids.count : 1), sizeof(*es));
  if (es == NULL) {
    deallocate_String_vector(&kids);
    return ZKR_ENOMEM;
  }
  for (i = 0; i < (size_t)kids.count && rc == ZKR_OK; i++) {
    char full[ZKR__PATH_MAX + 256], buf[ZKR__PATH_MAX * 4 + 1];
    int len = (int)sizeof(buf) - 1;
    struct Stat st;
    entry *e = &es[n];

    if (!zkr__name_parse(kids.data[i], &e->name))
      continue; /* not a contender: no need to read it */
    snprintf(full, sizeof(full), "%s/%s", path, kids.data[i]);
    zrc = zoo_get(zh, full, 0, buf, &len, &st);
    if (zrc == ZNOAUTH) {
      /* Unreadable (its owner's ACL): still a contender, as the queue sees
       * it through an exists, which needs no permission; no id to show. */
      len = 0;
      zrc = zoo_exists(zh, full, 0, &st);
    }
    if (zrc == ZNONODE)
      continue; /* left while we looked */
    if (zrc != ZOK) {
      rc = zkr__from_zk(zrc);
      break;
    }
    if (!zkr__contender_check(kids.data[i], st.ephemeralOwner, &e->name))
      continue; /* the queue's own rule: a persistent look-alike waits for nobody */
    buf[len > 0 ? len : 0] = '\0';
    e->p.id = strdup(buf);
    e->p.node = strdup(kids.data[i]);
    e->p.session = st.ephemeralOwner;
    e->p.token = st.czxid;
    e->p.age_ms = wall_ms() - st.ctime;
    n++;
    if (e->p.id == NULL || e->p.node == NULL)
      rc = ZKR_ENOMEM;
    else
      e->name.name = e->p.node; /* the listing is freed below */
    e->name.seq = e->p.node != NULL ? e->p.node + (e->name.seq - kids.data[i]) : NULL;
  }
  deallocate_String_vector(&kids);
  res = rc == ZKR_OK ? calloc(n > 0 ? n : 1, sizeof(*res)) : NULL;
  if (rc == ZKR_OK && res == NULL)
    rc = ZKR_ENOMEM;
  if (rc != ZKR_OK) {
    for (i = 0; i < n; i++) {
      free(es[i].p.id);
      free(es[i].p.node);
    }
    free(es);
    return rc;
  }
  qsort(es, n, sizeof(*es), cmp_entries);
  for (i = 0; i < n; i++) {
    res[i] = es[i].p;
    res[i].mode = es[i].name.kind;
  }
  free(es);
  mark_holders(zh, path, res, n);
  *out = res;
  *count = n;
  return ZKR_OK;
}
