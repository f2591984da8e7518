/* The arguments every recipe object starts from, checked once. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#define ZKR__ID_MAX 4096

int zkr__recipe_init(zkr__recipe *r, zkr_session *s, const char *path, const char *id,
                     const struct ACL_vector *acl) {
  char idbuf[300];

  memset(r, 0, sizeof(*r));
  if (s == NULL || zkr__path_check(path) != ZKR_OK)
    return ZKR_EINVAL;
  if (id != NULL && strlen(id) > ZKR__ID_MAX)
    return ZKR_EINVAL;
  /* The server refuses an empty ACL: say so before anything is sent. */
  if (acl != NULL && (acl->count <= 0 || acl->data == NULL))
    return ZKR_EINVAL;
  if (id == NULL) {
    zkr__default_id(idbuf, sizeof(idbuf));
    id = idbuf;
  }
  r->path = strdup(path);
  r->id = strdup(id);
  if (r->path == NULL || r->id == NULL) {
    zkr__recipe_done(r);
    return ZKR_ENOMEM;
  }
  r->acl = acl;
  r->s = s;
  zkr__session_ref(s);
  return ZKR_OK;
}

void zkr__recipe_done(zkr__recipe *r) {
  free(r->path);
  free(r->id);
  if (r->s != NULL)
    zkr__session_unref(r->s);
  memset(r, 0, sizeof(*r));
}

void *zkr__recipe_new(size_t size, zkr_session *s, const char *path, const char *id,
                      const struct ACL_vector *acl, int *rc) {
  zkr__recipe *r = calloc(1, size);

  if (r == NULL) {
    *rc = ZKR_ENOMEM;
    return NULL;
  }
  *rc = zkr__recipe_init(r, s, path, id, acl);
  if (*rc != ZKR_OK) {
    free(r);
    return NULL;
  }
  return r;
}

void zkr__recipe_free(void *recipe) {
  zkr__recipe_done(recipe);
  free(recipe);
}

void zkr__recipe_contender(const zkr__recipe *r, const char *dir, const zkr__policy *policy,
                           zkr__contender_cfg *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->dir = dir;
  cfg->policy = policy;
  cfg->data = r->id;
  cfg->acl = r->acl;
}
