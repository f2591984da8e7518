/* The event-loop adapters (zkr/adapters/libuv.h, libevent.h): what the
 * examples (tests/adapter-examples.sh) do not show. The examples finish within
 * a second, driven by the descriptor alone; here the adapter's timer must
 * do its part: a session idle on the loop for longer than its timeout stays
 * alive (its pings are housekeeping, run only by a dispatch), and an
 * acquisition's deadline ends it on time (nothing writes the descriptor
 * then). Each scenario runs on both loops through a small driver. */
#define _POSIX_C_SOURCE 200809L /* uv.h needs POSIX types, which -std=c11 hides */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <zkr/adapters/libevent.h>
#include <zkr/adapters/libuv.h>

/* One loop library as the scenarios see it: attach and detach, and a
 * one-shot timer that can be cancelled until it fired. */
typedef struct driver {
  const char *name;
  void *(*open)(void);
  int (*attach)(void *loop, zkr_session *s, void **adapter);
  void (*detach)(void *adapter);
  void *(*after)(void *loop, int ms, void (*fn)(void *arg), void *arg);
  void (*cancel)(void *timer);
  void (*run)(void *loop); /* until nothing is left to watch */
  void (*close)(void *loop);
} driver;

/* --- libuv ---------------------------------------------------------------------- */

typedef struct drv_uv_timer {
  uv_timer_t t;
  void (*fn)(void *arg);
  void *arg;
} drv_uv_timer;

static void *drv_uv_open(void) {
  uv_loop_t *loop = malloc(sizeof(*loop));

  CU_ASSERT_FATAL(loop != NULL && uv_loop_init(loop) == 0);
  return loop;
}

static int drv_uv_attach(void *loop, zkr_session *s, void **adapter) {
  return zkr_uv_attach(s, loop, (zkr_uv **)adapter);
}

static void drv_uv_detach(void *adapter) {
  zkr_uv_detach(adapter);
}

static void drv_uv_after_free(uv_handle_t *h) {
  free(h->data);
}

static void drv_uv_after_fire(uv_timer_t *t) {
  drv_uv_timer *a = t->data;

  a->fn(a->arg);
  uv_close((uv_handle_t *)t, drv_uv_after_free);
}

static void *drv_uv_after(void *loop, int ms, void (*fn)(void *arg), void *arg) {
  drv_uv_timer *a = malloc(sizeof(*a));

  CU_ASSERT_FATAL(a != NULL);
  a->fn = fn;
  a->arg = arg;
  uv_timer_init(loop, &a->t);
  a->t.data = a;
  uv_timer_start(&a->t, drv_uv_after_fire, (uint64_t)ms, 0);
  return a;
}

static void drv_uv_cancel(void *timer) {
  uv_close((uv_handle_t *)&((drv_uv_timer *)timer)->t, drv_uv_after_free);
}

static void drv_uv_run(void *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
}

static void drv_uv_close(void *loop) {
  /* Every handle is closed: the adapter's included. */
  CU_ASSERT(uv_loop_close(loop) == 0);
  free(loop);
}

static const driver uv_driver = {"libuv",      drv_uv_open,   drv_uv_attach, drv_uv_detach,
                                 drv_uv_after, drv_uv_cancel, drv_uv_run,    drv_uv_close};

/* --- libevent ------------------------------------------------------------------- */

typedef struct drv_ev_timer {
  struct event *ev;
  void (*fn)(void *arg);
  void *arg;
} drv_ev_timer;

static void *drv_ev_open(void) {
  struct event_base *base = event_base_new();

  CU_ASSERT_FATAL(base != NULL);
  return base;
}

static int drv_ev_attach(void *base, zkr_session *s, void **adapter) {
  return zkr_event_attach(s, base, (zkr_event **)adapter);
}

static void drv_ev_detach(void *adapter) {
  zkr_event_detach(adapter);
}

static void drv_ev_cancel(void *timer) {
  drv_ev_timer *a = timer;

  event_free(a->ev);
  free(a);
}

static void drv_ev_after_fire(evutil_socket_t fd, short what, void *arg) {
  drv_ev_timer *a = arg;

  (void)fd;
  (void)what;
  a->fn(a->arg);
  drv_ev_cancel(a);
}

static void *drv_ev_after(void *base, int ms, void (*fn)(void *arg), void *arg) {
  drv_ev_timer *a = malloc(sizeof(*a));
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

  CU_ASSERT_FATAL(a != NULL);
  a->fn = fn;
  a->arg = arg;
  a->ev = evtimer_new(base, drv_ev_after_fire, a);
  CU_ASSERT_FATAL(a->ev != NULL && evtimer_add(a->ev, &tv) == 0);
  return a;
}

static void drv_ev_run(void *base) {
  event_base_dispatch(base);
}

static void drv_ev_close(void *base) {
  event_base_free(base);
}

static const driver ev_driver = {"libevent",   drv_ev_open,   drv_ev_attach, drv_ev_detach,
                                 drv_ev_after, drv_ev_cancel, drv_ev_run,    drv_ev_close};

/* --- scenarios ------------------------------------------------------------------ */

#define NOT_YET 1 /* no zkr code is positive */
#define IDLE_SESSION_MS (TH_SESSION_MS / 2)

typedef struct scene {
  const driver *d;
  void *loop, *adapter, *guard;
  zkr_session *s;
  zkr_hold *h;
  int acquired_rc, released_rc, lost_rc;
  int held_after_idle, state_after_idle;
  int timed_out; /* the guard ended the scene */
  int64_t started_ms, acquired_ms;
} scene;

/* Ends the scene's loop: the adapter goes, and the guard with it, so
 * run() returns. */
static void scene_end(scene *c) {
  c->d->detach(c->adapter);
  c->adapter = NULL;
  if (c->guard != NULL)
    c->d->cancel(c->guard);
  c->guard = NULL;
}

/* Fires only if the scenario did not end in time: a failure. */
static void scene_guard(void *arg) {
  scene *c = arg;

  c->guard = NULL; /* fired: it frees itself */
  c->timed_out = 1;
  fprintf(stderr, "%s: the scene did not end in time\n", c->d->name);
  scene_end(c);
}

static void scene_start(scene *c, const driver *d, zkr_session *s, int guard_ms) {
  memset(c, 0, sizeof(*c));
  c->d = d;
  c->s = s;
  c->acquired_rc = c->released_rc = c->lost_rc = NOT_YET;
  c->loop = d->open();
  CU_ASSERT_FATAL(d->attach(c->loop, s, &c->adapter) == ZKR_OK);
  c->guard = d->after(c->loop, guard_ms, scene_guard, c);
  c->started_ms = th_now_ms();
}

static void on_released(zkr_hold *h, int rc, void *arg) {
  scene *c = arg;

  (void)h;
  c->released_rc = rc;
  scene_end(c); /* from inside the adapter's dispatch */
}

static void on_lost(zkr_hold *h, int rc, void *arg) {
  (void)h;
  ((scene *)arg)->lost_rc = rc;
}

/* After the idle time: is the session, and the hold, still there? */
static void idle_over(void *arg) {
  scene *c = arg;

  c->held_after_idle = zkr_hold_held(c->h);
  c->state_after_idle = zkr_session_get_state(c->s);
  CU_ASSERT(zkr_hold_release(c->h, on_released, c) == ZKR_OK);
}

static void on_acquired_then_idle(zkr_hold *h, int rc, void *arg) {
  scene *c = arg;
  int idle_ms = zkr_session_timeout(c->s) * 5 / 2;

  c->acquired_rc = rc;
  if (rc == ZKR_OK)
    c->d->after(c->loop, idle_ms, idle_over, c);
  else
    scene_end(c);
  (void)h;
}

/* A session idle for 2.5 timeouts on the loop, holding a lock: only the
 * adapter's timer dispatches it meanwhile (its pings), and both survive. */
static void idle_session_survives(const driver *d) {
  zkr_session *s = th_session_at(th_hosts(), IDLE_SESSION_MS, 1);
  char *path = th_path("adapters-idle");
  zkr_lock *l = th_lock(s, path);
  scene c;

  scene_start(&c, d, s, zkr_session_timeout(s) * 5 / 2 + TH_SETTLE_FOR(IDLE_SESSION_MS));
  CU_ASSERT_FATAL(zkr_lock_acquire_async(l, -1, on_acquired_then_idle, on_lost, &c, &c.h) == ZKR_OK);
  d->run(c.loop);
  CU_ASSERT(c.timed_out == 0);
  CU_ASSERT(c.acquired_rc == ZKR_OK);
  CU_ASSERT(c.held_after_idle == 1);
  CU_ASSERT(c.state_after_idle == ZKR_SESSION_CONNECTED);
  CU_ASSERT(c.lost_rc == NOT_YET);
  CU_ASSERT(c.released_rc == ZKR_OK);
  zkr_lock_free(l);
  zkr_session_close(s);
  d->close(c.loop);
  th_finish_path(path);
}

static void test_adapters_uv_idle_session_survives(void) {
  idle_session_survives(&uv_driver);
}

static void test_adapters_event_idle_session_survives(void) {
  idle_session_survives(&ev_driver);
}

#define DEADLINE_MS (TH_SESSION_MS / 4) /* the acquisition's timeout under test */

static void on_acquired_record(zkr_hold *h, int rc, void *arg) {
  scene *c = arg;

  (void)h;
  c->acquired_rc = rc;
  c->acquired_ms = th_now_ms();
  scene_end(c);
}

/* An acquisition behind another client's hold ends at its deadline: the
 * session's timer, which only a dispatch at the time the adapter was given
 * runs. */
static void deadline_on_time(const driver *d) {
  zkr_session *holder_s = th_session(0), *s = th_session_at(th_hosts(), 0, 1);
  char *path = th_path("adapters-deadline");
  zkr_lock *holder = th_lock(holder_s, path), *l = th_lock(s, path);
  scene c;
  int64_t took;

  CU_ASSERT_FATAL(zkr_lock_acquire(holder, TH_SETTLE_MS) == ZKR_OK);
  scene_start(&c, d, s, DEADLINE_MS + TH_SETTLE_MS);
  CU_ASSERT_FATAL(zkr_lock_acquire_async(l, DEADLINE_MS, on_acquired_record, NULL, &c, &c.h) == ZKR_OK);
  d->run(c.loop);
  took = c.acquired_ms - c.started_ms;
  CU_ASSERT(c.timed_out == 0);
  CU_ASSERT(c.acquired_rc == ZKR_ETIMEDOUT);
  CU_ASSERT(took >= DEADLINE_MS && took <= DEADLINE_MS + TH_LATE_MS);
  if (c.acquired_rc != ZKR_ETIMEDOUT || took < DEADLINE_MS || took > DEADLINE_MS + TH_LATE_MS)
    fprintf(stderr, "%s: outcome %s after %lld ms\n", d->name, zkr_err_name(c.acquired_rc), (long long)took);
  zkr_lock_free(l);
  zkr_session_close(s);
  d->close(c.loop);
  CU_ASSERT(zkr_lock_release(holder) == ZKR_OK);
  zkr_lock_free(holder);
  zkr_session_close(holder_s);
  th_finish_path(path);
}

static void test_adapters_uv_deadline_on_time(void) {
  deadline_on_time(&uv_driver);
}

static void test_adapters_event_deadline_on_time(void) {
  deadline_on_time(&ev_driver);
}

/* Attaching refuses what it cannot watch, and leaves nothing behind. */
static void test_adapters_attach_refuses(void) {
  zkr_session *threaded = th_session(0), *s = th_session_at(th_hosts(), 0, 1);
  uv_loop_t loop;
  struct event_base *base = event_base_new();
  zkr_uv *u = NULL, *u2 = NULL;
  zkr_event *e = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_FATAL(uv_loop_init(&loop) == 0 && base != NULL);
  CU_ASSERT(zkr_uv_attach(threaded, &loop, &u) == ZKR_EINVAL);
  CU_ASSERT(zkr_uv_attach(NULL, &loop, &u) == ZKR_EINVAL);
  CU_ASSERT(zkr_uv_attach(s, NULL, &u) == ZKR_EINVAL);
  CU_ASSERT(zkr_uv_attach(s, &loop, NULL) == ZKR_EINVAL);
  CU_ASSERT(zkr_event_attach(threaded, base, &e) == ZKR_EINVAL);
  CU_ASSERT(zkr_event_attach(NULL, base, &e) == ZKR_EINVAL);
  CU_ASSERT(zkr_event_attach(s, NULL, &e) == ZKR_EINVAL);
  CU_ASSERT(zkr_event_attach(s, base, NULL) == ZKR_EINVAL);
  CU_ASSERT(u == NULL && e == NULL);
  /* libuv watches a descriptor through one handle per loop. */
  CU_ASSERT_FATAL(zkr_uv_attach(s, &loop, &u) == ZKR_OK);
  CU_ASSERT(zkr_uv_attach(s, &loop, &u2) == ZKR_EINVAL);
  CU_ASSERT(u2 == NULL);
  zkr_uv_detach(u);
  zkr_uv_detach(NULL);
  zkr_event_detach(NULL);
  uv_run(&loop, UV_RUN_DEFAULT); /* the close callbacks free u */
  CU_ASSERT(uv_loop_close(&loop) == 0);
  event_base_free(base);
  zkr_session_close(s);
  zkr_session_close(threaded);
}

int main(void) {
  static const th_test tests[] = {
      {"test_adapters_attach_refuses", test_adapters_attach_refuses},
      {"test_adapters_uv_idle_session_survives", test_adapters_uv_idle_session_survives},
      {"test_adapters_event_idle_session_survives", test_adapters_event_idle_session_survives},
      {"test_adapters_uv_deadline_on_time", test_adapters_uv_deadline_on_time},
      {"test_adapters_event_deadline_on_time", test_adapters_event_deadline_on_time},
      {NULL, NULL}};

  return th_run("adapters", tests);
}
