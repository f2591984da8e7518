/* examples/uv_lock.c on a libevent base instead of a libuv loop: 20
 * asynchronous acquisitions of one lock, all on the base's thread, no
 * thread waits. Each holder checks it is alone and that its fencing token
 * is above the last one, then releases; one waiter is cancelled on the way.
 * Build: cc event_lock.c $(pkg-config --cflags --libs zkrecipes libevent)
 * Run: ./event_lock zk1:2181,zk2:2181,zk3:2181 (or with $ZKR_HOSTS set) */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <event2/event.h>
#include <zkr/zkr.h>
#include <zkr/adapters/libevent.h>

#define N 20
#define CANCELLED (N / 2) /* the waiter we cancel */

static pthread_t base_thread;
static zkr_event *adapter;
static zkr_hold *holds[N];
static int holding, granted, cancelled, ended, failures;
static int64_t last_token;

static void check(int ok, const char *what, int rc) {
  if (!ok) {
    fprintf(stderr, "event_lock: %s%s%s\n", what, rc != ZKR_OK ? ": " : "",
            rc != ZKR_OK ? zkr_strerror(rc) : "");
    failures++;
  }
}

/* Each hold ends with one last callback: on_acquired with an error, or
 * on_released. After the last one the base has no event left. */
static void hold_ended(void) {
  if (++ended == N) {
    zkr_event_detach(adapter);
    adapter = NULL;
  }
}

static void on_released(zkr_hold *h, int rc, void *arg) {
  (void)h;
  (void)arg;
  /* Held until the server confirmed the delete: a grant to another
   * holder before that would be two holders. */
  holding--;
  check(rc == ZKR_OK, "release", rc);
  hold_ended();
}

static void on_lost(zkr_hold *h, int rc, void *arg) {
  (void)h;
  (void)arg;
  check(0, "hold lost", rc);
}

static void on_acquired(zkr_hold *h, int rc, void *arg) {
  int i = (int)(intptr_t)arg;
  int64_t token = 0;

  check(pthread_equal(pthread_self(), base_thread), "callback off the base's thread", 0);
  if (i == CANCELLED) {
    check(rc == ZKR_ECANCELLED, "the cancelled waiter", rc);
    cancelled += rc == ZKR_ECANCELLED;
    hold_ended();
    return;
  }
  check(rc == ZKR_OK, "acquire", rc);
  if (rc != ZKR_OK) {
    hold_ended();
    return;
  }
  check(++holding == 1 && zkr_hold_held(h), "two holders at once, or not held", 0);
  if (granted++ == 0) { /* the first grant: CANCELLED still waits in the queue */
    rc = zkr_hold_cancel(holds[CANCELLED]);
    check(rc == ZKR_OK, "cancel", rc);
  }
  rc = zkr_hold_token(h, &token);
  check(rc == ZKR_OK, "token", rc);
  check(token > last_token, "fencing token not increasing", 0);
  last_token = token;
  rc = zkr_hold_release(h, on_released, NULL);
  check(rc == ZKR_OK, "release", rc);
  if (rc != ZKR_OK) {
    holding--;
    hold_ended();
  }
}

int main(int argc, char **argv) {
  const char *hosts = argc > 1 ? argv[1] : getenv("ZKR_HOSTS");
  zkr_session_opts so = {.loop = 1}; /* no library thread: our base runs it */
  struct event_base *base = event_base_new();
  zkr_session *s;
  zkr_lock *l = NULL;
  char path[64];
  int i, rc;

  if (base == NULL) {
    fprintf(stderr, "event_lock: event_base_new failed\n");
    return 1;
  }
  if (hosts == NULL) {
    fprintf(stderr, "usage: event_lock HOSTS (or set ZKR_HOSTS)\n");
    return 64;
  }
  base_thread = pthread_self();
  rc = zkr_session_open(&s, hosts, &so); /* waits until connected */
  if (rc != ZKR_OK) {
    fprintf(stderr, "event_lock: %s: %s\n", hosts, zkr_strerror(rc));
    return 1;
  }
  snprintf(path, sizeof(path), "/zkr-examples/event-lock-%ld", (long)getpid());
  if ((rc = zkr_lock_new(&l, s, path, NULL)) == ZKR_OK)
    rc = zkr_event_attach(s, base, &adapter);
  for (i = 0; i < N && rc == ZKR_OK; i++) /* 30 s each at most: never hangs */
    rc = zkr_lock_acquire_async(l, 30000, on_acquired, on_lost, (void *)(intptr_t)i, &holds[i]);
  check(rc == ZKR_OK, "start", rc);
  if (rc != ZKR_OK) { /* nothing to wait for: the lock's free ends the rest */
    zkr_event_detach(adapter);
    adapter = NULL;
  }
  event_base_dispatch(base); /* until the last hold ended and detached */
  zkr_lock_free(l);          /* ends what is still pending, on this thread */
  zkr_session_close(s);      /* its nodes go with it */
  event_base_free(base);
  check(granted == N - 1 && cancelled == 1, "not every acquisition completed", 0);
  if (failures > 0)
    return 1;
  printf(
      "event_lock: %d holders one at a time on the base's thread, tokens increasing to %lld, 1 cancelled\n",
      granted, (long long)last_token);
  return 0;
}
