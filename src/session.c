/* The session: one ZooKeeper handle, the local expiry clock, heartbeats,
 * background deletes and the event thread that runs user callbacks.
 *
 * Threads: the ZooKeeper client runs its I/O thread and its completion
 * thread (watchers and completions, one at a time); this file adds one event
 * thread per session. Nothing here ever blocks the completion thread: its
 * handlers only take the session mutex briefly. User callbacks run on the
 * event thread, outside the mutex.
 *
 * Loop mode replaces the event thread with the caller's: what the thread
 * would do (run posted events, then the housekeeping that fell due) is one
 * zkr_session_dispatch(), and what would wake it writes an eventfd the
 * caller's loop watches. Everything else is the same code. */
#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct listener {
  zkr__list link;
  int id;
  zkr_state_fn fn;
  void *arg;
} listener;

/* A node to delete in the background: path, or every child of path whose
 * name starts with prefix (a node whose create reply was lost: only its
 * uuid is known). */
typedef struct orphan {
  zkr__list link;
  zkr_session *s;
  int inflight;
  const char *prefix; /* NULL, or points into path's buffer */
  char path[];
} orphan;

struct zkr_session {
  pthread_mutex_t mu;
  pthread_cond_t cond;    /* state changes, finished events */
  pthread_cond_t ev_cond; /* wakes the event thread */
  int refs;               /* the caller's, one per recipe object and per request in flight */

  zhandle_t *zh;
  int state;       /* 0 until the first connection, then a zkr_session_state */
  int lost_code;   /* why LOST: ZKR_ESESSION, ZKR_ENOAUTH, ZKR_ECLOSED */
  int lost_reason; /* the zkr_lost_reason behind lost_code */
  int closing;     /* no request may be sent any more */
  int stop;        /* the event thread should exit */
  int dead;        /* closed: no event can run any more */
  int64_t id;
  int timeout_ms;
  int64_t margin_ns;
  int64_t last_ack_sent; /* send time of the last request the server answered */
  int64_t valid_until;
  int ping_inflight;
  int64_t ping_inflight_sent;
  int ping_now;            /* reconnected: confirm the session at once */
  int zk_connected;        /* the client is connected (even after we declared LOST) */
  unsigned connections;    /* handshakes so far: zkr__session_await_reconnect() */
  int64_t own_watch_after; /* see zkr__queue_arm */
  int64_t arm_due;         /* when zkr__queue_arm must look again; 0: now */
  int64_t sleeping_until;  /* the event thread waits until then; 0 while it runs */

  zkr__list events;          /* zkr__event, in the order posted */
  const void *running_owner; /* owner of the event now running */
  int event_running;         /* an event runs, on event_runner */
  pthread_t event_runner;
  int running_listener; /* id of the listener now running, or 0 */
  zkr__list listeners;
  int next_listener_id;
  zkr__list orphans;
  zkr__qstate queue;

  zkr__list timers; /* zkr__timer, started and not yet fired */

  pthread_t thread;
  int thread_started;
  int log_slot;

  /* Loop mode (no event thread): */
  int loop;
  int efd;           /* eventfd the caller's loop watches; -1 outside loop mode */
  int efd_signalled; /* written and not yet drained */
  int dispatching;   /* a zkr_session_dispatch() is running, on dispatcher */
  pthread_t dispatcher;
};

/* A state change for the listeners. Allocated: when memory runs out the
 * listeners miss one change (the contenders' notifications are embedded
 * in them and never missed). */
typedef struct state_ev {
  zkr__event ev;
  zkr_session *s;
  int state;
} state_ev;

/* --- small helpers (mutex held) -------------------------------------------- */

pthread_mutex_t *zkr__session_mutex(zkr_session *s) {
  return &s->mu;
}

zkr__qstate *zkr__session_queue(zkr_session *s) {
  return &s->queue;
}

zhandle_t *zkr__session_zh(zkr_session *s) {
  return s->closing ? NULL : s->zh;
}

int64_t zkr__session_id_locked(zkr_session *s) {
  return s->id;
}

static int connected(zkr_session *s) {
  return s->state == ZKR_SESSION_CONNECTED && !s->closing;
}

int zkr__session_usable(zkr_session *s) {
  if (s->closing)
    return ZKR_ECLOSED;
  if (s->state == ZKR_SESSION_LOST)
    return s->lost_code;
  return ZKR_OK;
}

unsigned zkr__session_connections(zkr_session *s) {
  return s->connections;
}

int zkr__session_await_reconnect(zkr_session *s, unsigned since, int64_t deadline) {
  for (;;) {
    int rc = zkr__session_usable(s);

    if (rc != ZKR_OK)
      return rc;
    if (s->connections != since && s->zk_connected)
      return ZKR_OK;
    if (zkr__cond_wait(&s->cond, &s->mu, deadline) != 0)
      return ZKR_ETIMEDOUT;
  }
}

void zkr__session_ref(zkr_session *s) {
  __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void zkr__session_unref(zkr_session *s) {
  if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
    return;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cond);
  pthread_cond_destroy(&s->ev_cond);
  if (s->efd >= 0)
    close(s->efd);
  free(s);
}

/* Wakes whoever runs the events and the housekeeping (mutex held): the
 * event thread, or in loop mode the caller's loop, through the eventfd
 * (written once until a dispatch drains it). */
static void wake_events(zkr_session *s) {
  uint64_t one = 1;

  if (!s->loop) {
    pthread_cond_signal(&s->ev_cond);
    return;
  }
  /* A dispatch running on this thread looks again before it returns. */
  if (s->efd_signalled || (s->dispatching && pthread_equal(pthread_self(), s->dispatcher)))
    return;
  /* Cannot fail but with EAGAIN (the counter is full: readable anyway). */
  if (write(s->efd, &one, sizeof(one)) == (ssize_t)sizeof(one) || errno == EAGAIN)
    s->efd_signalled = 1;
}

/* Written with the mutex held, read without it too (held() and
 * valid_until() of every recipe must not wait behind the completion
 * thread): published atomically, 0 once the session is lost. */
static void update_valid_until(zkr_session *s) {
  __atomic_store_n(&s->valid_until, s->last_ack_sent + (int64_t)s->timeout_ms * 1000000 - s->margin_ns,
                   __ATOMIC_RELEASE);
}

void zkr__session_acked(zkr_session *s, int64_t sent_ns) {
  if (s->state == ZKR_SESSION_LOST || s->state == 0 || sent_ns <= s->last_ack_sent)
    return;
  s->last_ack_sent = sent_ns;
  update_valid_until(s);
  pthread_cond_broadcast(&s->cond); /* open waits for the first one */
}

void zkr__event_init(zkr__event *ev, void (*fn)(void *arg), void *arg, const void *owner) {
  zkr__list_init(&ev->link);
  ev->fn = fn;
  ev->arg = arg;
  ev->owner = owner;
}

int zkr__session_post(zkr_session *s, zkr__event *ev) {
  if (s->dead)
    return ZKR_ECLOSED;
  if (!zkr__list_linked(&ev->link)) /* already queued: it runs once */
    zkr__list_push_back(&s->events, &ev->link);
  wake_events(s);
  return ZKR_OK;
}

/* Takes the first queued event off the queue, or NULL. */
static zkr__event *next_event(zkr_session *s) {
  zkr__list *l = zkr__list_first(&s->events);

  if (l == NULL)
    return NULL;
  zkr__list_remove(l);
  return zkr__list_entry(l, zkr__event, link);
}

/* The calling thread runs an event now (the event thread, a dispatch, a
 * close or a quiesce running what is owed inline), or is the event thread:
 * waiting for events to finish would wait for itself. */
static int on_event_thread(zkr_session *s) {
  if (s->event_running && pthread_equal(pthread_self(), s->event_runner))
    return 1;
  return !s->loop && s->thread_started && pthread_equal(pthread_self(), s->thread);
}

/* Runs one taken event outside the mutex (mutex held on entry and exit). */
static void run_event(zkr_session *s, zkr__event *ev) {
  /* ev may be freed by its own fn: read what we need first. */
  void (*fn)(void *) = ev->fn;
  void *arg = ev->arg;
  const void *before = s->running_owner;
  int was_running = s->event_running;
  pthread_t runner = s->event_runner;

  s->running_owner = ev->owner;
  s->event_running = 1;
  s->event_runner = pthread_self();
  pthread_mutex_unlock(&s->mu);
  fn(arg);
  pthread_mutex_lock(&s->mu);
  s->running_owner = before;
  s->event_running = was_running;
  s->event_runner = runner;
  pthread_cond_broadcast(&s->cond);
}

/* The first queued event of owner, taken off the queue, or NULL. */
static zkr__event *take_owned(zkr_session *s, const void *owner) {
  zkr__list *l;

  zkr__list_foreach(l, &s->events) {
    zkr__event *ev = zkr__list_entry(l, zkr__event, link);
    if (ev->owner == owner) {
      zkr__list_remove(l);
      return ev;
    }
  }
  return NULL;
}

static int owner_pending(zkr_session *s, const void *owner) {
  zkr__list *l;

  if (s->running_owner == owner)
    return 1;
  zkr__list_foreach(l, &s->events) {
    if (zkr__list_entry(l, zkr__event, link)->owner == owner)
      return 1;
  }
  return 0;
}

void zkr__session_quiesce(zkr_session *s, const void *owner) {
  /* From the event thread itself, the running event is the caller: waiting
   * would deadlock (hence the rule that callbacks do not block). The owner
   * is being freed from a callback: its queued events must not run. */
  if (on_event_thread(s)) {
    zkr__event *ev;
    while ((ev = take_owned(s, owner)) != NULL)
      ;
    return;
  }
  for (;;) {
    zkr__event *ev;
    /* In loop mode nobody else would run them: the caller is the loop's
     * thread (the rule of loop mode), so they run here, in order. */
    if (s->loop && s->running_owner != owner && (ev = take_owned(s, owner)) != NULL) {
      run_event(s, ev);
      continue;
    }
    if (!owner_pending(s, owner))
      break;
    pthread_cond_wait(&s->cond, &s->mu);
  }
}

void zkr__session_wait(zkr_session *s) {
  pthread_cond_wait(&s->cond, &s->mu);
}

void zkr__session_quiesce_running(zkr_session *s, const void *owner) {
  if (on_event_thread(s))
    return;
  while (s->running_owner == owner)
    pthread_cond_wait(&s->cond, &s->mu);
}

void zkr__session_unpost(zkr_session *s, zkr__event *ev) {
  (void)s;
  if (zkr__list_linked(&ev->link))
    zkr__list_remove(&ev->link);
}

void zkr__timer_init(zkr__timer *t, void (*fn)(void *arg), void *arg, const void *owner) {
  zkr__list_init(&t->link);
  t->due = 0;
  zkr__event_init(&t->ev, fn, arg, owner);
}

void zkr__timer_start(zkr_session *s, zkr__timer *t, int64_t due) {
  if (zkr__list_linked(&t->link))
    zkr__list_remove(&t->link);
  t->due = due;
  zkr__list_push_back(&s->timers, &t->link);
  zkr__session_kick(s, due);
}

void zkr__timer_stop(zkr_session *s, zkr__timer *t) {
  if (zkr__list_linked(&t->link))
    zkr__list_remove(&t->link);
  zkr__session_unpost(s, &t->ev);
}

/* Posts the timers that fell due; returns the next due time, or 0. */
static int64_t fire_timers(zkr_session *s, int64_t now) {
  zkr__list *l, *tmp;
  int64_t next = 0;

  zkr__list_foreach_safe(l, tmp, &s->timers) {
    zkr__timer *t = zkr__list_entry(l, zkr__timer, link);
    if (t->due <= now) {
      zkr__list_remove(l);
      zkr__session_post(s, &t->ev);
    } else if (next == 0 || t->due < next) {
      next = t->due;
    }
  }
  return next;
}

static void add_orphan(zkr_session *s, const char *path, const char *prefix) {
  size_t n = strlen(path) + 1, m = prefix != NULL ? strlen(prefix) + 1 : 0;
  orphan *o = malloc(sizeof(*o) + n + m);

  if (o == NULL)
    return; /* the node still goes when the session ends */
  o->s = s;
  o->inflight = 0;
  memcpy(o->path, path, n);
  o->prefix = NULL;
  if (prefix != NULL) {
    memcpy(o->path + n, prefix, m);
    o->prefix = o->path + n;
  }
  zkr__list_push_front(&s->orphans, &o->link);
  wake_events(s);
}

void zkr__session_orphan(zkr_session *s, const char *path) {
  add_orphan(s, path, NULL);
}

void zkr__session_orphan_prefix(zkr_session *s, const char *dir, const char *prefix) {
  add_orphan(s, dir, prefix);
}

static void state_event(void *arg) {
  state_ev *se = arg;
  zkr_session *s = se->s;
  int last = 0;

  /* Listeners are called in id order; the list may change between calls. */
  pthread_mutex_lock(&s->mu);
  for (;;) {
    listener *next = NULL;
    zkr__list *ll;
    zkr__list_foreach(ll, &s->listeners) {
      listener *l = zkr__list_entry(ll, listener, link);
      if (l->id > last && (next == NULL || l->id < next->id))
        next = l;
    }
    if (next == NULL)
      break;
    last = next->id;
    s->running_listener = next->id;
    {
      zkr_state_fn fn = next->fn;
      void *fa = next->arg;
      pthread_mutex_unlock(&s->mu);
      fn(s, (zkr_session_state)se->state, fa);
      pthread_mutex_lock(&s->mu);
    }
    s->running_listener = 0;
    pthread_cond_broadcast(&s->cond);
  }
  pthread_mutex_unlock(&s->mu);
  free(se);
}

static void set_state(zkr_session *s, int state) {
  state_ev *se;

  if (s->state == state)
    return;
  s->state = state;
  pthread_cond_broadcast(&s->cond);
  se = malloc(sizeof(*se));
  if (se == NULL)
    return;
  se->s = s;
  se->state = state;
  zkr__event_init(&se->ev, state_event, se, s);
  if (zkr__session_post(s, &se->ev) != ZKR_OK)
    free(se);
}

/* Declares the session lost (terminal). code and reason say why. */
static void lose(zkr_session *s, int code, int reason) {
  if (s->state == ZKR_SESSION_LOST)
    return;
  s->lost_code = code;
  s->lost_reason = reason;
  __atomic_store_n(&s->valid_until, 0, __ATOMIC_RELEASE);
  set_state(s, ZKR_SESSION_LOST);
  zkr__queue_session_lost(s, code);
  wake_events(s);
}

/* --- the ZooKeeper side (completion thread) ------------------------------- */

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  zkr_session *s = ctx;

  (void)path;
  if (type != ZOO_SESSION_EVENT)
    return;
  pthread_mutex_lock(&s->mu);
  s->zk_connected = state == ZOO_CONNECTED_STATE;
  if (state == ZOO_CONNECTED_STATE) {
    /* Counted per handshake, whatever our state says: a request that
     * failed with a connection loss waits for the next one. */
    s->connections++;
    pthread_cond_broadcast(&s->cond);
    if (s->state != ZKR_SESSION_LOST) {
      if (s->state == 0) {
        s->id = zoo_client_id(zh)->client_id;
        s->timeout_ms = zoo_recv_timeout(zh);
        if (s->margin_ns == 0) {
          int64_t m = (int64_t)s->timeout_ms * 1000000 / 10;
          s->margin_ns = m > 50000000 ? m : 50000000;
        }
      }
      /* When the (re-)handshake was sent is unknown (attempts may have
       * failed before it): the validity window moves only with answered
       * requests, so confirm with a ping now. open() waits for it. */
      s->ping_now = 1;
      set_state(s, ZKR_SESSION_CONNECTED);
      zkr__queue_reconnected(s);
      wake_events(s);
    }
  } else if (state == ZOO_CONNECTING_STATE || state == ZOO_ASSOCIATING_STATE) {
    if (s->state == ZKR_SESSION_CONNECTED)
      set_state(s, ZKR_SESSION_SUSPENDED);
  } else if (state == ZOO_EXPIRED_SESSION_STATE) {
    lose(s, ZKR_ESESSION, ZKR_LOST_EXPIRED);
  } else if (state == ZOO_AUTH_FAILED_STATE) {
    lose(s, ZKR_ENOAUTH, ZKR_LOST_AUTH);
  }
  wake_events(s); /* orphans may be deletable now */
  pthread_mutex_unlock(&s->mu);
}

static void ping_done(int rc, const struct Stat *stat, const void *data) {
  zkr_session *s = (zkr_session *)data;
  int64_t sent;

  (void)stat;
  pthread_mutex_lock(&s->mu);
  sent = s->ping_inflight ? s->ping_inflight_sent : 0;
  s->ping_inflight = 0;
  if (zkr__zk_answered(rc))
    zkr__session_acked(s, sent);
  wake_events(s);
  pthread_mutex_unlock(&s->mu);
  zkr__session_unref(s);
}

static void orphan_settle(orphan *o, int rc);

static void orphan_done(int rc, const void *data) {
  orphan *o = (orphan *)data;
  zkr_session *s = o->s;

  pthread_mutex_lock(&s->mu);
  orphan_settle(o, rc);
  pthread_mutex_unlock(&s->mu);
  zkr__session_unref(s);
}

/* Listing for a prefix orphan: each match becomes a plain orphan. */
static void orphan_listed(int rc, const struct String_vector *kids, const void *data) {
  orphan *o = (orphan *)data;
  zkr_session *s = o->s;
  int i;

  pthread_mutex_lock(&s->mu);
  for (i = 0; rc == ZOK && i < kids->count; i++) {
    if (strncmp(kids->data[i], o->prefix, strlen(o->prefix)) == 0) {
      char path[ZKR__PATH_MAX + 256];
      snprintf(path, sizeof(path), "%s/%s", o->path, kids->data[i]);
      add_orphan(s, path, NULL);
    }
  }
  orphan_settle(o, rc);
  pthread_mutex_unlock(&s->mu);
  zkr__session_unref(s);
}

static void orphan_settle(orphan *o, int rc) {
  zkr_session *s = o->s;

  o->inflight = 0;
  /* Only connection loss is worth another try: any answer, or the end of
   * the session, settles it. */
  if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT) {
    zkr__list_remove(&o->link);
    free(o);
  }
  wake_events(s);
}

/* --- the event thread -------------------------------------------------------- */

/* Requests below take their session reference only once sent: their
 * completion needs the mutex we hold, so it cannot run before. */
static void send_ping(zkr_session *s, int64_t now) {
  s->ping_now = 0;
  /* Any answered request proves the session alive; exists("/") is the
   * cheapest one (a chroot that does not exist still gets an answer). */
  if (zoo_aexists(s->zh, "/", 0, ping_done, s) != ZOK)
    return;
  zkr__session_ref(s);
  s->ping_inflight = 1;
  s->ping_inflight_sent = now;
}

static void send_orphan_deletes(zkr_session *s) {
  zkr__list *l, *tmp;

  zkr__list_foreach_safe(l, tmp, &s->orphans) {
    orphan *o = zkr__list_entry(l, orphan, link);
    int zrc = ZOK;

    if (!o->inflight)
      zrc = o->prefix != NULL ? zoo_aget_children(s->zh, o->path, 0, orphan_listed, o)
                              : zoo_adelete(s->zh, o->path, -1, orphan_done, o);
    if (zrc != ZOK) {
      /* Refused at once: the handle is dead, and the node with it. */
      zkr__list_remove(&o->link);
      free(o);
      continue;
    }
    if (!o->inflight) {
      zkr__session_ref(s);
      o->inflight = 1;
    }
  }
}

/* The session's own clock: past the validity deadline, the server may have
 * expired us (mutex held). */
static void check_clock(zkr_session *s, int64_t now) {
  if (s->last_ack_sent > 0 && s->state != ZKR_SESSION_LOST && now >= s->valid_until)
    lose(s, ZKR_ESESSION, ZKR_LOST_DEADLINE);
}

/* Everything but the events that falls due: timers, background deletes,
 * own-node watches, pings (mutex held). Returns when to look again. */
static int64_t housekeep(zkr_session *s, int64_t now) {
  int64_t wake = now + 1000000000, due;

  due = fire_timers(s, now);
  if (due > 0 && due < wake)
    wake = due;
  if (s->zk_connected && !s->closing && !zkr__list_empty(&s->orphans))
    send_orphan_deletes(s);
  if (connected(s)) {
    /* Own-node watches that fell due. The walk covers every contender: it
     * runs only when the earliest it returned (or a new contender's) is
     * due, not on every dispatch of a busy loop. */
    if (s->arm_due == 0 || now >= s->arm_due) {
      due = zkr__queue_arm(s, now);
      s->arm_due = due > 0 ? due : INT64_MAX;
    }
    if (s->arm_due < wake)
      wake = s->arm_due;
  }
  if (connected(s)) {
    /* Keep the validity window fresh: confirm the session once a fifth of
     * the timeout has passed without an answered request. */
    int64_t ping_at = s->last_ack_sent + (int64_t)s->timeout_ms * 1000000 / 5;
    if (!s->ping_inflight && (s->ping_now || now >= ping_at))
      send_ping(s, now);
    else if (!s->ping_inflight && ping_at < wake)
      wake = ping_at;
  }
  if (s->last_ack_sent > 0 && s->state != ZKR_SESSION_LOST && s->valid_until < wake)
    wake = s->valid_until;
  return wake;
}

static void *event_thread(void *arg) {
  zkr_session *s = arg;

  pthread_mutex_lock(&s->mu);
  for (;;) {
    int64_t now = zkr__now_ns(), wake;

    check_clock(s, now);
    if (!zkr__list_empty(&s->events)) {
      run_event(s, next_event(s));
      continue;
    }
    if (s->stop)
      break;
    wake = housekeep(s, now);
    if (!zkr__list_empty(&s->events))
      continue;
    s->sleeping_until = wake;
    zkr__cond_wait(&s->ev_cond, &s->mu, wake);
    s->sleeping_until = 0;
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int zkr_session_fd(zkr_session *s) {
  return s != NULL && s->loop ? s->efd : ZKR_EINVAL;
}

int zkr_session_dispatch(zkr_session *s) {
  int64_t now, wake;
  uint64_t n;
  zkr__list *l;
  zkr__event *ev;
  long budget = 0;

  if (s == NULL || !s->loop)
    return ZKR_EINVAL;
  pthread_mutex_lock(&s->mu);
  if (s->dispatching) {
    pthread_mutex_unlock(&s->mu);
    return ZKR_EINVAL; /* reentered from a callback */
  }
  s->dispatching = 1;
  s->dispatcher = pthread_self();
  s->sleeping_until = 0;
  if (s->efd_signalled && read(s->efd, &n, sizeof(n)) >= 0)
    s->efd_signalled = 0;
  /* Only the events queued on entry: under a steady stream from the
   * client's threads a dispatch still ends, and the loop serves its other
   * sources before it comes back (at once: 0 below). */
  now = zkr__now_ns();
  check_clock(s, now);
  zkr__list_foreach(l, &s->events) budget++;
  while (budget-- > 0 && (ev = next_event(s)) != NULL)
    run_event(s, ev);
  wake = s->dead ? now + 1000000000 : housekeep(s, now);
  if (!zkr__list_empty(&s->events))
    wake = now; /* posted meanwhile, or fired timers: the next dispatch runs them */
  /* Anything due before wake, posted from the client's threads from now on,
   * writes the eventfd (zkr__session_kick, wake_events). */
  s->sleeping_until = wake;
  s->dispatching = 0;
  pthread_mutex_unlock(&s->mu);
  now = zkr__now_ns();
  return wake <= now ? 0 : (int)((wake - now + 999999) / 1000000);
}

/* --- public API -------------------------------------------------------------- */

static int opts_check(const zkr_session_opts *o) {
  if (o == NULL)
    return ZKR_OK;
  if (o->session_timeout_ms < 0 || o->connect_timeout_ms < 0 || o->expiry_margin_ms < 0 ||
      o->resolve_delay_ms < 0 || (o->loop != 0 && o->loop != 1))
    return ZKR_EINVAL;
  if (o->session_timeout_ms > 0 && o->expiry_margin_ms * 2 >= o->session_timeout_ms)
    return ZKR_EINVAL;
  if (o->digest != NULL && strchr(o->digest, ':') == NULL)
    return ZKR_EINVAL;
  return ZKR_OK;
}

static void drop_listeners(zkr_session *s) {
  zkr__list *l;

  while ((l = zkr__list_first(&s->listeners)) != NULL) {
    zkr__list_remove(l);
    free(zkr__list_entry(l, listener, link));
  }
}

static void teardown(zkr_session *s) {
  orphan *o;
  zkr__event *ev;

  pthread_mutex_lock(&s->mu);
  s->closing = 1;
  s->stop = 1;
  lose(s, ZKR_ECLOSED, ZKR_LOST_CLOSED);
  pthread_cond_broadcast(&s->ev_cond);
  pthread_mutex_unlock(&s->mu);
  if (s->thread_started)
    pthread_join(s->thread, NULL);
  /* Closing the handle ends the session on the server (its nodes go) and
   * fails pending requests with ZCLOSING, whose completions may run on this
   * thread: the mutex must not be held here. */
  if (s->zh != NULL)
    zookeeper_close(s->zh);
  pthread_mutex_lock(&s->mu);
  s->thread_started = 0;
  zkr__queue_session_closed(s);
  while (!zkr__list_empty(&s->orphans)) {
    o = zkr__list_entry(s->orphans.next, orphan, link);
    zkr__list_remove(&o->link);
    free(o);
  }
  /* Completions run by zookeeper_close may have posted events after the
   * event thread ended (in loop mode: since the last dispatch): run them
   * here, so each fires and frees its data. */
  while ((ev = next_event(s)) != NULL)
    run_event(s, ev);
  s->dead = 1;
  /* Timers are embedded in their owners: they only leave the list. */
  while (!zkr__list_empty(&s->timers))
    zkr__list_remove(s->timers.next);
  pthread_cond_broadcast(&s->cond);
  drop_listeners(s);
  pthread_mutex_unlock(&s->mu);
  zkr__log_unbind(s->log_slot);
}

/* A chroot must exist: a session cannot create its own root, and every
 * recipe under a missing one would fail with a misleading NONODE while
 * listings looked empty. With a chroot, "/" is the chroot itself. */
static int check_chroot(zkr_session *s, const char *hosts) {
  struct Stat st;
  int zrc;

  if (strchr(hosts, '/') == NULL)
    return ZKR_OK;
  zrc = zoo_exists(s->zh, "/", 0, &st);
  return zrc == ZNONODE ? ZKR_ENOCHROOT : zkr__from_zk(zrc);
}

int zkr_session_open(zkr_session **out, const char *hosts, const zkr_session_opts *opts) {
  zkr_session_opts o;
  zkr_session *s;
  log_callback_fn logcb;
  int rc = ZKR_OK, timeout, connect_ms;
  int64_t deadline;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  if (zkr__hosts_check(hosts) != ZKR_OK || opts_check(opts) != ZKR_OK)
    return ZKR_EINVAL;
  memset(&o, 0, sizeof(o));
  if (opts != NULL)
    o = *opts;
  timeout = o.session_timeout_ms > 0 ? o.session_timeout_ms : 10000;
  connect_ms = o.connect_timeout_ms > 0 ? o.connect_timeout_ms : 10000;

  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return ZKR_ENOMEM;
  s->refs = 1;
  s->log_slot = -1;
  zkr__list_init(&s->events);
  zkr__list_init(&s->listeners);
  zkr__list_init(&s->orphans);
  zkr__list_init(&s->timers);
  s->efd = -1;
  zkr__list_init(&s->queue.contenders);
  zkr__list_init(&s->queue.tickets);
  s->own_watch_after = ZKR__OWN_WATCH_AFTER_NS;
  s->margin_ns = (int64_t)o.expiry_margin_ms * 1000000;
  pthread_mutex_init(&s->mu, NULL);
  if (zkr__cond_init(&s->cond) != ZKR_OK || zkr__cond_init(&s->ev_cond) != ZKR_OK) {
    free(s);
    return ZKR_ENOMEM;
  }
  if (o.on_state != NULL && zkr_session_add_listener(s, o.on_state, o.state_arg, NULL) != ZKR_OK) {
    zkr__session_unref(s);
    return ZKR_ENOMEM;
  }
  logcb = zkr__log_bind(o.log_fn, o.log_arg, o.log_stream, &s->log_slot);
  if (logcb == NULL) {
    teardown(s);
    zkr__session_unref(s);
    return ZKR_ELOGROUTES;
  }

  pthread_mutex_lock(&s->mu);
  errno = 0;
  s->zh = zookeeper_init2(hosts, session_watcher, timeout, NULL, s, 0, logcb);
  if (s->zh == NULL) {
    /* The syntax was checked above: the client refuses a hosts string only
     * when none of its names resolves. */
    rc = errno == ENOMEM ? ZKR_ENOMEM : ZKR_ECONNECT;
  } else {
    /* By default the client calls getaddrinfo on every I/O loop iteration;
     * resolve only on reconnection unless asked otherwise. */
    zoo_set_servers_resolution_delay(s->zh, o.resolve_delay_ms > 0 ? o.resolve_delay_ms : -1);
    if (o.digest != NULL && zoo_add_auth(s->zh, "digest", o.digest, (int)strlen(o.digest), NULL, NULL) != ZOK)
      rc = ZKR_EINVAL;
    if (rc == ZKR_OK && o.loop) {
      s->loop = 1;
      s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (s->efd < 0)
        rc = errno == ENOMEM ? ZKR_ENOMEM : ZKR_EZK;
      s->sleeping_until = INT64_MAX; /* until the first dispatch: any kick signals */
    } else if (rc == ZKR_OK && pthread_create(&s->thread, NULL, event_thread, s) != 0) {
      rc = ZKR_ENOMEM;
    } else if (rc == ZKR_OK) {
      s->thread_started = 1;
    }
  }
  deadline = zkr__deadline(connect_ms);
  while (rc == ZKR_OK && (s->state == 0 || (s->state != ZKR_SESSION_LOST && s->last_ack_sent == 0))) {
    int64_t until = deadline;
    /* In loop mode nobody else sends the first ping: the housekeeping runs
     * here until the session is confirmed (events wait for dispatch). */
    if (s->loop) {
      int64_t wake = housekeep(s, zkr__now_ns());
      until = wake < deadline ? wake : deadline;
    }
    if (zkr__cond_wait(&s->cond, &s->mu, until) != 0 && until == deadline)
      break;
  }
  if (rc == ZKR_OK && (s->state != ZKR_SESSION_CONNECTED || s->last_ack_sent == 0))
    rc = s->state == ZKR_SESSION_LOST && s->lost_code == ZKR_ENOAUTH ? ZKR_ENOAUTH : ZKR_ECONNECT;
  pthread_mutex_unlock(&s->mu);
  if (rc == ZKR_OK)
    rc = check_chroot(s, hosts);
  if (rc != ZKR_OK) {
    /* A failed open fires no callback: drop the listeners first. */
    pthread_mutex_lock(&s->mu);
    drop_listeners(s);
    pthread_mutex_unlock(&s->mu);
    teardown(s);
    zkr__session_unref(s);
    return rc;
  }
  *out = s;
  return ZKR_OK;
}

void zkr_session_close(zkr_session *s) {
  if (s == NULL)
    return;
  teardown(s);
  zkr__session_unref(s);
}

zhandle_t *zkr_session_zhandle(zkr_session *s) {
  zhandle_t *zh;

  if (s == NULL)
    return NULL;
  pthread_mutex_lock(&s->mu);
  zh = zkr__session_zh(s);
  pthread_mutex_unlock(&s->mu);
  return zh;
}

int zkr_session_get_state(zkr_session *s) {
  int st;

  if (s == NULL)
    return ZKR_EINVAL;
  pthread_mutex_lock(&s->mu);
  st = s->state;
  pthread_mutex_unlock(&s->mu);
  return st;
}

int64_t zkr_session_id(zkr_session *s) {
  int64_t id;

  if (s == NULL)
    return 0;
  pthread_mutex_lock(&s->mu);
  id = s->id;
  pthread_mutex_unlock(&s->mu);
  return id;
}

int zkr_session_timeout(zkr_session *s) {
  int t;

  if (s == NULL)
    return ZKR_EINVAL;
  pthread_mutex_lock(&s->mu);
  t = s->timeout_ms;
  pthread_mutex_unlock(&s->mu);
  return t;
}

int64_t zkr__session_own_watch_after(zkr_session *s) {
  return s->own_watch_after;
}

void zkr__session_set_own_watch_after(zkr_session *s, int64_t ns) {
  pthread_mutex_lock(&s->mu);
  s->own_watch_after = ns;
  s->arm_due = 0;
  wake_events(s);
  pthread_mutex_unlock(&s->mu);
}

void zkr__session_arm_by(zkr_session *s, int64_t due) {
  if (s->arm_due != 0 && due < s->arm_due)
    s->arm_due = due;
  zkr__session_kick(s, due);
}

void zkr__session_kick(zkr_session *s, int64_t due) {
  /* Only when it would sleep past due: a stream of short acquisitions must
   * not wake it once each (a running thread looks again anyway). In loop
   * mode sleeping_until is when the caller's loop will dispatch next. */
  if (s->sleeping_until != 0 && due < s->sleeping_until)
    wake_events(s);
}

int64_t zkr__session_valid_until(zkr_session *s) {
  return __atomic_load_n(&s->valid_until, __ATOMIC_ACQUIRE);
}

int64_t zkr_session_valid_until(zkr_session *s) {
  return s != NULL ? zkr__session_valid_until(s) : 0;
}

int zkr_session_lost_reason(zkr_session *s) {
  int r;

  if (s == NULL)
    return ZKR_LOST_NONE;
  pthread_mutex_lock(&s->mu);
  r = s->state == ZKR_SESSION_LOST ? s->lost_reason : ZKR_LOST_NONE;
  pthread_mutex_unlock(&s->mu);
  return r;
}

int zkr__session_lost_reason_locked(zkr_session *s) {
  return s->state == ZKR_SESSION_LOST ? s->lost_reason : ZKR_LOST_NONE;
}

int zkr_session_add_listener(zkr_session *s, zkr_state_fn fn, void *arg, int *id) {
  listener *l;

  if (s == NULL || fn == NULL)
    return ZKR_EINVAL;
  l = malloc(sizeof(*l));
  if (l == NULL)
    return ZKR_ENOMEM;
  l->fn = fn;
  l->arg = arg;
  pthread_mutex_lock(&s->mu);
  l->id = ++s->next_listener_id;
  zkr__list_push_back(&s->listeners, &l->link);
  pthread_mutex_unlock(&s->mu);
  if (id != NULL)
    *id = l->id;
  return ZKR_OK;
}

int zkr_session_remove_listener(zkr_session *s, int id) {
  zkr__list *ll;
  int rc = ZKR_EINVAL;

  if (s == NULL)
    return ZKR_EINVAL;
  pthread_mutex_lock(&s->mu);
  zkr__list_foreach(ll, &s->listeners) {
    listener *l = zkr__list_entry(ll, listener, link);
    if (l->id == id) {
      zkr__list_remove(&l->link);
      free(l);
      rc = ZKR_OK;
      break;
    }
  }
  while (rc == ZKR_OK && !on_event_thread(s) && s->running_listener == id)
    pthread_cond_wait(&s->cond, &s->mu);
  pthread_mutex_unlock(&s->mu);
  return rc;
}
