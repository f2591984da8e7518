/* A recipe's own requests (engine.h): one ZooKeeper request for a node that
 * is no contender's, sent asynchronously and waited for on the session
 * mutex within the caller's deadline.
 *
 * Premises the waiting rests on:
 *  R1 The client runs the completion of a request it accepted (zoo_a*
 *     returned ZOK) exactly once: with the server's answer, with
 *     ZCONNECTIONLOSS / ZOPERATIONTIMEOUT when the connection drops, or
 *     with ZCLOSING from zookeeper_close(). A request it refused runs none.
 *     So the call's state is freed exactly once: by the waiter when it saw
 *     the completion, else by the completion. Safety needs only "at most
 *     once"; should a completion ever not run (drop_node in
 *     recipes/barrier.c records one lost in a close, seen by valgrind), its
 *     call and session reference leak, and nothing is freed twice.
 *  R2 The waiter may return before the completion runs (deadline passed,
 *     session unusable, the recipe's stop()): the call's state must outlive
 *     the wait. It is heap-allocated, not on the waiter's stack, and the
 *     waiter marks it abandoned under the session mutex; the completion
 *     checks the mark under the same mutex and then frees it. Nothing of the
 *     caller's (its reply, its buffers) is reachable from the call, and q is
 *     read only while sending, so an abandoned call touches only itself.
 *  R3 The session outlives every completion: each call holds a session
 *     reference from the send to the completion, so the mutex the
 *     completion takes is alive even when the caller closed the session and
 *     freed its recipe meanwhile (zookeeper_close runs the ZCLOSING
 *     completions, without the session mutex held).
 *  R4 Completions run on the client's completion thread and must never
 *     block: they take the session mutex only to copy the answer and signal,
 *     and waiters hold it only between waits.
 *  R5 Nothing signals the call's condvar when the session is lost or the
 *     recipe stops (they do not know the call): the wait runs in slices and
 *     checks for them at each one.
 *  R6 A request is sent with the session mutex held and only while
 *     zkr__session_zh() gives a handle: the session sets closing under the
 *     mutex before it closes the handle, so the handle is alive while we
 *     send. And a completion, however quick, needs the mutex: it cannot
 *     finish before the waiter has started waiting. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

/* How often a wait looks at what its condvar does not tell (R5). */
#define REQUEST_SLICE_NS (50 * 1000000LL)

/* One request in flight. Heap-allocated: it outlives a wait given up (R2). */
typedef struct call {
  zkr_session *s; /* referenced until the completion (R3) */
  pthread_cond_t cond;
  int done;      /* the completion ran: reply is final */
  int abandoned; /* the waiter left: the completion frees the call */
  zkr__reply reply;
} call;

void zkr__reply_clear(zkr__reply *r) {
  int i;

  for (i = 0; i < r->nkids; i++)
    free(r->kids[i]);
  free(r->kids);
  free(r->data);
  memset(r, 0, sizeof(*r));
}

static void call_free(call *c) {
  zkr__reply_clear(&c->reply);
  pthread_cond_destroy(&c->cond);
  free(c);
}

/* --- on the completion thread ------------------------------------------------ */

/* A completion starts here: it reads abandoned and copies the answer under
 * the session mutex, as the waiter sets abandoned under it (R2). */
static call *completing(const void *data) {
  call *c = (call *)data;

  pthread_mutex_lock(zkr__session_mutex(c->s));
  return c;
}

/* The completion's one ending (R1), the mutex held and released here: hands
 * the answer to the waiter, or frees the call the waiter left behind (R2).
 * The session's reference goes last, once the mutex is released: were it
 * the last one, the mutex would go with the session (R3). */
static void finish(call *c, int zrc) {
  zkr_session *s = c->s;

  c->reply.zrc = zrc;
  c->done = 1;
  if (c->abandoned)
    call_free(c);
  else
    pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(zkr__session_mutex(s));
  zkr__session_unref(s);
}

static void created(int rc, const char *value, const void *data) {
  (void)value;
  finish(completing(data), rc);
}

static void deleted(int rc, const void *data) {
  finish(completing(data), rc);
}

static void set_done(int rc, const struct Stat *st, const void *data) {
  call *c = completing(data);

  if (rc == ZOK && !c->abandoned)
    c->reply.stat = *st;
  finish(c, rc);
}

/* A copy that fails for lack of memory ends the call with ZSYSTEMERROR
 * (zkr__from_zk: ZKR_ENOMEM). Nothing is copied for an abandoned call. */
static void got(int rc, const char *value, int len, const struct Stat *st, const void *data) {
  call *c = completing(data);

  if (rc == ZOK && !c->abandoned) {
    c->reply.stat = *st;
    if (value != NULL && len > 0) {
      c->reply.data = malloc((size_t)len);
      if (c->reply.data != NULL) {
        memcpy(c->reply.data, value, (size_t)len);
        c->reply.len = len;
      } else {
        rc = ZSYSTEMERROR;
      }
    }
  }
  finish(c, rc);
}

static void listed(int rc, const struct String_vector *kids, const void *data) {
  call *c = completing(data);
  int i;

  if (rc == ZOK && !c->abandoned && kids->count > 0) {
    c->reply.kids = calloc((size_t)kids->count, sizeof(*c->reply.kids));
    for (i = 0; c->reply.kids != NULL && i < kids->count; i++) {
      c->reply.kids[i] = strdup(kids->data[i]);
      if (c->reply.kids[i] == NULL)
        break;
    }
    c->reply.nkids = i;
    if (c->reply.kids == NULL || i < kids->count)
      rc = ZSYSTEMERROR;
  }
  finish(c, rc);
}

/* --- the waiter ------------------------------------------------------------------ */

static int send_req(zhandle_t *zh, const zkr__req *q, call *c) {
  const struct ACL_vector *acl = q->acl != NULL ? q->acl : &ZOO_OPEN_ACL_UNSAFE;
  watcher_fn wfn = q->watch != NULL ? zkr__watch_fn : NULL;
  int len = q->data != NULL ? (int)strlen(q->data) : -1;

  switch (q->op) {
  case ZKR__REQ_CREATE:
    return zoo_acreate(zh, q->path, q->data, len, acl, q->flags, created, c);
  case ZKR__REQ_DELETE:
    return zoo_adelete(zh, q->path, q->version, deleted, c);
  case ZKR__REQ_SET:
    return zoo_aset(zh, q->path, q->data, len, q->version, set_done, c);
  case ZKR__REQ_CHILDREN:
    return zoo_awget_children(zh, q->path, wfn, q->watch, listed, c);
  case ZKR__REQ_GET:
    return zoo_awget(zh, q->path, wfn, q->watch, got, c);
  default:
    return ZBADARGUMENTS;
  }
}

int zkr__request_stopped(const zkr__requester *rq, int64_t deadline) {
  int rc = rq->stop != NULL ? rq->stop(rq->arg) : ZKR_OK;

  if (rc != ZKR_OK)
    return rc;
  rc = zkr__session_usable(rq->s);
  if (rc != ZKR_OK)
    return rc;
  if (deadline >= 0 && zkr__now_ns() >= deadline)
    return ZKR_ETIMEDOUT;
  return ZKR_OK;
}

/* The earlier of deadline (< 0: none) and now + ns. */
static int64_t until(int64_t deadline, int64_t ns) {
  int64_t t = zkr__now_ns() + ns;

  return deadline >= 0 && deadline < t ? deadline : t;
}

int zkr__request(const zkr__requester *rq, const zkr__req *q, int64_t deadline, zkr__reply *out) {
  zkr_session *s = rq->s;
  pthread_mutex_t *mu = zkr__session_mutex(s);
  zhandle_t *zh = zkr__session_zh(s);
  call *c;
  int rc;

  memset(out, 0, sizeof(*out));
  if (zh == NULL)
    return ZKR_ECLOSED; /* closing: no request may be sent */
  c = calloc(1, sizeof(*c));
  if (c == NULL || zkr__cond_init(&c->cond) != ZKR_OK) {
    free(c);
    return ZKR_ENOMEM;
  }
  c->s = s;
  zkr__session_ref(s); /* R3; the completion drops it */
  rc = send_req(zh, q, c);
  if (rc != ZOK) {
    /* Refused at once: no completion will run (R1). The code says why. */
    zkr__session_unref(s);
    call_free(c);
    out->zrc = rc;
    return ZKR_OK;
  }
  while (!c->done) {
    rc = zkr__request_stopped(rq, deadline);
    if (rc != ZKR_OK) {
      c->abandoned = 1; /* R2: the completion frees it */
      return rc;
    }
    zkr__cond_wait(&c->cond, mu, until(deadline, REQUEST_SLICE_NS)); /* R5 */
  }
  /* The completion ran and left the call to us: its answer moves to out. */
  *out = c->reply;
  memset(&c->reply, 0, sizeof(c->reply));
  call_free(c);
  return ZKR_OK;
}

int zkr__request_conn_lost(int zrc) {
  return zrc == ZCONNECTIONLOSS || zrc == ZOPERATIONTIMEOUT;
}

/* Resending before the client has connected again would only fail at
 * once (it fails requests while an attempt to connect fails): the pause
 * waits for the next handshake, in slices so that rq->stop is seen (R5). */
int zkr__request_pause(const zkr__requester *rq, unsigned since, int64_t deadline) {
  for (;;) {
    int rc = zkr__request_stopped(rq, deadline);

    if (rc != ZKR_OK)
      return rc;
    rc = zkr__session_await_reconnect(rq->s, since, until(deadline, REQUEST_SLICE_NS));
    if (rc != ZKR_ETIMEDOUT)
      return rc == ZKR_OK ? zkr__request_stopped(rq, deadline) : rc;
  }
}

int zkr__request_answered(const zkr__requester *rq, const zkr__req *q, int64_t deadline, zkr__reply *out) {
  for (;;) {
    unsigned since = zkr__session_connections(rq->s);
    int rc = zkr__request(rq, q, deadline, out);

    if (rc != ZKR_OK || !zkr__request_conn_lost(out->zrc))
      return rc;
    zkr__reply_clear(out);
    rc = zkr__request_pause(rq, since, deadline);
    if (rc != ZKR_OK)
      return rc;
  }
}
