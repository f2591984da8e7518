/* zkr_once: a job once per period, decided by the server's clock.
 *
 * One firing, top to bottom:
 *  1. zkr_once_begin takes the key's lock (a plain zkr_lock on PATH/lock)
 *     and compares its period and zone with those PATH records (written
 *     by the key's first firing): another is ZKR_EMISMATCH;
 *  2. writes PATH/clock and takes its mtime as "now": the server's clock,
 *     so machines with skewed clocks agree on the period;
 *  3. reads PATH/done/<period>: a marker of ours, the period is done
 *     (release, say who ran it); absent, the caller runs the job under
 *     the lock; any other node there, nothing is decided (ZKR_EZK);
 *  4. zkr_once_done writes the marker (or a ~failed record) in one multi
 *     behind a check of our lock node, prunes old markers, releases.
 *
 * Premises the guarantee rests on (once.h states it):
 *  O1 Only a lock holder decides: steps 2-4 run while we hold the lock, so
 *     no two firings decide at once, and a firing that waited for the lock
 *     sees the marker its predecessor wrote: the marker's multi committed
 *     before the predecessor's release, our grant came after that, our
 *     write of PATH/clock after our grant, and a server answers a session's
 *     read only once it has applied that session's earlier write, so the
 *     read of step 3 sees the marker even on a lagging follower.
 *  O2 A marker is written only while the lock is held: the multi's check
 *     of our lock node fails once the node is gone (session expired,
 *     deleted), so a holder that lost the lock mid-run, or died, marks
 *     nothing and the next firing of the period runs the job again.
 *  O3 After a connection loss during the multi it may or may not have
 *     committed. We read the marker back before retrying: a marker with
 *     our token is ours (tokens are czxids, unique per hold). A retry
 *     after a read that raced a still-travelling multi finds the marker
 *     (NODEEXISTS) and reads it again, so the outcome is the same.
 *  O5 A connection loss after the grant ends nothing by itself: every
 *     request of steps 2-4 is idempotent and tried again while our lock
 *     is held (while_held), as zkr_lock keeps a hold across a leader
 *     election; only a lock lost (validity deadline passed, session
 *     expired, node deleted) ends the firing.
 *  O4 The time is the leader's wall clock: ZooKeeper stamps a write's mtime
 *     with the clock of the leader that ordered it. One leader's stamps
 *     follow its own clock; after a leader change they follow the new
 *     leader's, so the servers' clocks must agree (NTP) to within what a
 *     period boundary can stand: firings that straddle a boundary during
 *     such a change may see two periods. The machines' clocks play no part.
 */
#include "engine.h"
#include "period.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t zkr__once_skew_ms;

#define ONCE_KEEP_DEFAULT 100
#define ONCE_FAILED_SUFFIX "~failed"
#define ONCE_RECORD_MAX 1024

struct zkr_once {
  zkr__recipe r;
  zkr_lock *lock;
  zkr__period period;
  zkr__zone *zone;
  int keep;
  char *clock, *done; /* PATH/clock, PATH/done */
  char *setting;      /* the key's record at PATH: "zkr-once-key 1\nperiod P\ntz Z\n" */
  char *tz_name;      /* the zone's name as recorded, "UTC" for NULL */
  int running;        /* between begin (RUN) and done */
  zkr_once_record run;
};

static const struct ACL_vector *acl_of(const zkr_once *o) {
  return o->r.acl != NULL ? o->r.acl : &ZOO_OPEN_ACL_UNSAFE;
}

/* --- records -------------------------------------------------------------- */

static int record_format(const zkr_once_record *r, char *buf, size_t len) {
  char runner[sizeof(r->runner)];
  size_t i;
  int n;

  /* The runner is the last line: a newline in it would end it early. */
  for (i = 0; r->runner[i] != '\0' && i + 1 < sizeof(runner); i++)
    runner[i] = (unsigned char)r->runner[i] < 0x20 ? '?' : r->runner[i];
  runner[i] = '\0';
  n = snprintf(buf, len, "zkr-once 1\nperiod %s\nstart %lld\nend %lld\nstatus %d\ntoken %lld\nrunner %s\n",
               r->period, (long long)r->start_ms, (long long)r->end_ms, r->status, (long long)r->token,
               runner);
  return n > 0 && (size_t)n < len ? n : -1;
}

/* Parses a marker's data. Returns 0, or -1 if it is not one of ours. */
static int record_parse(const char *data, int len, zkr_once_record *r) {
  char buf[ONCE_RECORD_MAX + 1], *line, *save = NULL;
  int seen = 0;

  if (len <= 0 || len > ONCE_RECORD_MAX)
    return -1;
  memcpy(buf, data, (size_t)len);
  buf[len] = '\0';
  memset(r, 0, sizeof(*r));
  if (strncmp(buf, "zkr-once 1\n", 11) != 0)
    return -1;
  for (line = strtok_r(buf + 11, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    char *value = strchr(line, ' ');
    if (value == NULL)
      continue;
    *value++ = '\0';
    if (strcmp(line, "period") == 0 && strlen(value) < sizeof(r->period)) {
      strcpy(r->period, value);
      seen |= 1;
    } else if (strcmp(line, "start") == 0) {
      r->start_ms = strtoll(value, NULL, 10);
      seen |= 2;
    } else if (strcmp(line, "end") == 0) {
      r->end_ms = strtoll(value, NULL, 10);
    } else if (strcmp(line, "status") == 0) {
      r->status = (int)strtol(value, NULL, 10);
      seen |= 4;
    } else if (strcmp(line, "token") == 0) {
      r->token = strtoll(value, NULL, 10);
      seen |= 8;
    } else if (strcmp(line, "runner") == 0) {
      snprintf(r->runner, sizeof(r->runner), "%s", value);
    }
  }
  return seen == 15 ? 0 : -1;
}

/* Reads the record at node, named name below PATH/done: *found is
 * RECORD_NONE, RECORD_OURS, or RECORD_FOREIGN. Premise: only a record that
 * says what its name says may count: it parses, its period line is the
 * name's period, its status is 0 for a marker ("<id>") and not 0 for a
 * "<id>~failed" record, and the node has no children. Anything else at
 * that name (garbage, a record copied to another name, a node with
 * children) is foreign: r then names only the period (the node's name)
 * and has foreign set; it never counts as a run, done or failed. */
enum { RECORD_NONE, RECORD_OURS, RECORD_FOREIGN };

static int record_read(zhandle_t *zh, const char *node, const char *name, zkr_once_record *r, int *found) {
  char data[ONCE_RECORD_MAX];
  int len = (int)sizeof(data), zrc, ok;
  size_t base = strcspn(name, "~");
  struct Stat st;

  *found = RECORD_NONE;
  if (zh == NULL)
    return ZKR_ECLOSED;
  memset(&st, 0, sizeof(st));
  zrc = zoo_get(zh, node, 0, data, &len, &st);
  if (zrc == ZNONODE)
    return ZKR_OK;
  if (zrc != ZOK)
    return zkr__from_zk(zrc);
  *found = RECORD_OURS;
  ok = record_parse(data, len, r) == 0 && st.numChildren == 0 && strlen(r->period) == base &&
       strncmp(r->period, name, base) == 0 &&
       (name[base] == '\0' ? r->status == 0 : strcmp(name + base, ONCE_FAILED_SUFFIX) == 0 && r->status != 0);
  if (!ok) {
    *found = RECORD_FOREIGN;
    memset(r, 0, sizeof(*r));
    snprintf(r->period, sizeof(r->period), "%s", name);
    r->foreign = 1;
  }
  return ZKR_OK;
}

/* --- the server's clock ---------------------------------------------------- */

/* Writes PATH/clock and returns its new mtime: the server's time, stamped
 * by the leader as it orders the write (O4). Called with the lock held,
 * so PATH exists (the lock's node is below it). */
static int server_now(zkr_once *o, int64_t *ms) {
  zhandle_t *zh = zkr_session_zhandle(o->r.s);
  struct Stat st;
  int zrc;

  if (zh == NULL)
    return ZKR_ECLOSED;
  zrc = zoo_set2(zh, o->clock, "", 0, -1, &st);
  if (zrc == ZNONODE) {
    zrc = zoo_create2(zh, o->clock, "", 0, acl_of(o), ZOO_PERSISTENT, NULL, 0, &st);
    if (zrc == ZNODEEXISTS)
      zrc = zoo_set2(zh, o->clock, "", 0, -1, &st);
  }
  if (zrc != ZOK)
    return zkr__from_zk(zrc);
  *ms = st.mtime + __atomic_load_n(&zkr__once_skew_ms, __ATOMIC_SEQ_CST);
  return ZKR_OK;
}

/* --- riding through a connection loss --------------------------------------- */

/* Runs step until it ends otherwise than with a connection loss, trying it
 * again after one only while our lock is still held (as zkr_lock rides
 * through a leader election). Premises: every step given is idempotent (a
 * read; the set of PATH/clock, whose every try only moves its mtime; a
 * create that takes NODEEXISTS as done), so a try whose reply was lost
 * changes nothing a second try would not; and zkr_lock_held() is false
 * once the lock's validity deadline (the session's lifetime counted
 * locally) has passed, so no retry acts for a hold the server may have
 * handed on, and the loop ends when the connection stays down that long. */
typedef int (*once_step)(zkr_once *o, void *arg);

static int while_held(zkr_once *o, once_step step, void *arg) {
  pthread_mutex_t *mu = zkr__session_mutex(o->r.s);

  for (;;) {
    unsigned since;
    int rc, up;

    pthread_mutex_lock(mu);
    since = zkr__session_connections(o->r.s);
    pthread_mutex_unlock(mu);
    rc = step(o, arg);
    if (rc != ZKR_ECONNLOSS || !zkr_lock_held(o->lock))
      return rc;
    /* A try fails at once until the client has connected again: wait for
     * that, at most while the lock's validity lasts. */
    pthread_mutex_lock(mu);
    up = zkr__session_await_reconnect(o->r.s, since, zkr_lock_valid_until(o->lock));
    pthread_mutex_unlock(mu);
    if (up != ZKR_OK)
      return rc;
  }
}

static int step_now(zkr_once *o, void *arg) {
  return server_now(o, arg);
}

typedef struct read_args {
  const char *node, *period;
  zkr_once_record *r;
  int *found;
} read_args;

static int step_read(zkr_once *o, void *arg) {
  read_args *a = arg;

  return record_read(zkr_session_zhandle(o->r.s), a->node, a->period, a->r, a->found);
}

/* PATH/done, the markers' parent. */
static int step_done_dir(zkr_once *o, void *arg) {
  zhandle_t *zh = zkr_session_zhandle(o->r.s);
  int zrc;

  (void)arg;
  if (zh == NULL)
    return ZKR_ECLOSED;
  zrc = zoo_create(zh, o->done, NULL, -1, acl_of(o), ZOO_PERSISTENT, NULL, 0);
  return zrc == ZOK || zrc == ZNODEEXISTS ? ZKR_OK : zkr__from_zk(zrc);
}

/* The key's setting, recorded as PATH's data by its first firing. Premise:
 * a key's period ids are comparable only under one period and zone (a key
 * fired with 1d and with 1h, or in two zones, would run once per id of
 * each, several times a day): so every firing compares its period and zone
 * with the record, under the lock, and one that differs decides nothing
 * (ZKR_EMISMATCH). The period is compared by value ("15m" is "900s"), the
 * zone by name (NULL is "UTC"). Idempotent: the first write is a set with
 * the version read (empty data), and a retry finds it written. */
static int setting_matches(const zkr_once *o, const char *data, int len) {
  char buf[256], *p, *t, *e;
  zkr__period got;

  if (len <= 0 || len >= (int)sizeof(buf))
    return 0;
  memcpy(buf, data, (size_t)len);
  buf[len] = '\0';
  if (strncmp(buf, "zkr-once-key 1\nperiod ", 22) != 0)
    return 0;
  p = buf + 22;
  t = strstr(p, "\ntz ");
  if (t == NULL)
    return 0;
  *t = '\0';
  t += 4;
  e = strchr(t, '\n');
  if (e == NULL || e[1] != '\0')
    return 0;
  *e = '\0';
  return zkr__period_parse(p, &got) == NULL && got.kind == o->period.kind && got.n == o->period.n &&
         strcmp(t, o->tz_name) == 0;
}

/* 1 if path, a node that records no setting, has a child that is no part of
 * a key's layout: other nodes, most likely once keys below it, which a key
 * here would swallow (its marker folder would be theirs). A first firing
 * that died before recording the setting leaves only the layout. */
static int holds_others(zhandle_t *zh, const char *path) {
  struct String_vector kids;
  int i, others = 0;

  if (zoo_get_children(zh, path, 0, &kids) != ZOK)
    return 0;
  for (i = 0; i < kids.count; i++)
    others += strcmp(kids.data[i], "lock") != 0 && strcmp(kids.data[i], "clock") != 0 &&
              strcmp(kids.data[i], "done") != 0;
  deallocate_String_vector(&kids);
  return others > 0;
}

/* Before the lock's node is created (a refused firing must write
 * nothing): a key whose recorded setting differs is ZKR_EMISMATCH; a path
 * inside another once key (a typo such as KEY/done/ID, whose lock node
 * would make that key's marker foreign), or over other nodes (keys below
 * it: the same nesting the other way round, which would refuse every one
 * of them from then on) is ZKR_EINVAL.
 * Only a pre-check: a race with a first firing elsewhere is decided by
 * step_setting() under the lock. An error reading is left to that path. */
static int precheck(zkr_once *o) {
  static const char magic[] = "zkr-once-key 1\n";
  zhandle_t *zh = zkr_session_zhandle(o->r.s);
  char up[ZKR__PATH_MAX + 1], data[256], *slash;
  int len = (int)sizeof(data);

  if (zh == NULL)
    return ZKR_OK;
  snprintf(up, sizeof(up), "%s", o->r.path);
  while ((slash = strrchr(up, '/')) != NULL && slash != up) {
    *slash = '\0';
    if (zoo_get(zh, up, 0, data, &len, NULL) == ZOK && len >= (int)sizeof(magic) - 1 &&
        memcmp(data, magic, sizeof(magic) - 1) == 0)
      return ZKR_EINVAL;
    len = (int)sizeof(data);
  }
  if (zoo_get(zh, o->r.path, 0, data, &len, NULL) != ZOK)
    return ZKR_OK; /* no key yet (or unreadable: the lock's steps will say) */
  if (len > 0)
    return setting_matches(o, data, len) ? ZKR_OK : ZKR_EMISMATCH;
  return holds_others(zh, o->r.path) ? ZKR_EINVAL : ZKR_OK;
}

static int step_setting(zkr_once *o, void *arg) {
  zhandle_t *zh = zkr_session_zhandle(o->r.s);
  char data[256];
  struct Stat st;
  int len, zrc;

  (void)arg;
  if (zh == NULL)
    return ZKR_ECLOSED;
  for (;;) {
    len = (int)sizeof(data);
    zrc = zoo_get(zh, o->r.path, 0, data, &len, &st);
    if (zrc != ZOK)
      return zkr__from_zk(zrc);
    if (len > 0)
      return setting_matches(o, data, len) ? ZKR_OK : ZKR_EMISMATCH;
    zrc = zoo_set(zh, o->r.path, o->setting, (int)strlen(o->setting), st.version);
    if (zrc == ZOK)
      return ZKR_OK;
    if (zrc != ZBADVERSION)
      return zkr__from_zk(zrc);
  }
}

/* --- creating ----------------------------------------------------------------- */

const char *zkr_once_period_problem(const char *period, const char *tz) {
  zkr__period p;
  zkr__zone *z;
  const char *why = zkr__period_parse(period, &p);

  if (why != NULL)
    return why;
  why = zkr__zone_load(tz, &z);
  zkr__zone_free(z);
  return why;
}

int zkr_once_new(zkr_once **out, zkr_session *s, const char *path, const char *period,
                 const zkr_once_opts *opts) {
  zkr_lock_opts lo;
  zkr_once *o;
  char *lock_path;
  const char *why;
  int rc;

  if (out == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  /* Premise: the derived paths (ZKR_ONCE_PATH_MAX) must be valid too, or
   * the lock's acquire or the marker's write would fail mid-firing. */
  if ((opts != NULL && opts->keep < 0) || path == NULL || strlen(path) > ZKR_ONCE_PATH_MAX)
    return ZKR_EINVAL;
  o = zkr__recipe_new(sizeof(*o), s, path, opts != NULL ? opts->id : NULL, opts != NULL ? opts->acl : NULL,
                      &rc);
  if (o == NULL)
    return rc;
  o->keep = opts != NULL && opts->keep > 0 ? opts->keep : ONCE_KEEP_DEFAULT;
  rc = ZKR_EINVAL;
  if (zkr__period_parse(period, &o->period) != NULL)
    goto fail;
  why = zkr__zone_load(opts != NULL ? opts->tz : NULL, &o->zone);
  if (why != NULL) {
    rc = strcmp(why, "out of memory") == 0 ? ZKR_ENOMEM : ZKR_EINVAL;
    goto fail;
  }
  rc = ZKR_ENOMEM;
  {
    const char *tz = opts != NULL && opts->tz != NULL ? opts->tz : "UTC";
    size_t n = strlen(period) + strlen(tz) + 40;
    o->setting = malloc(n);
    o->tz_name = strdup(tz);
    if (o->setting == NULL || o->tz_name == NULL)
      goto fail;
    snprintf(o->setting, n, "zkr-once-key 1\nperiod %s\ntz %s\n", period, tz);
  }
  o->clock = zkr__path_join(path, "clock");
  o->done = zkr__path_join(path, "done");
  lock_path = zkr__path_join(path, "lock");
  if (o->clock == NULL || o->done == NULL || lock_path == NULL) {
    free(lock_path);
    goto fail;
  }
  memset(&lo, 0, sizeof(lo));
  lo.on_lost = opts != NULL ? opts->on_lost : NULL;
  lo.arg = opts != NULL ? opts->arg : NULL;
  lo.id = o->r.id;
  lo.acl = o->r.acl;
  rc = zkr_lock_new(&o->lock, s, lock_path, &lo);
  free(lock_path);
  if (rc != ZKR_OK)
    goto fail;
  *out = o;
  return ZKR_OK;
fail:
  zkr_once_free(o);
  return rc;
}

/* --- a firing ------------------------------------------------------------------- */

int zkr_once_begin(zkr_once *o, int timeout_ms, zkr_once_verdict *verdict, zkr_once_record *rec) {
  zkr_once_record found_rec;
  char node[ZKR__PATH_MAX + 128];
  int64_t now = 0;
  int rc, found = RECORD_NONE;

  if (o == NULL || verdict == NULL || o->running)
    return ZKR_EINVAL;
  rc = precheck(o);
  if (rc == ZKR_OK)
    rc = zkr_lock_acquire(o->lock, timeout_ms);
  if (rc != ZKR_OK)
    return rc;
  memset(&o->run, 0, sizeof(o->run));
  rc = while_held(o, step_setting, NULL);
  if (rc == ZKR_OK)
    rc = while_held(o, step_now, &now);
  if (rc == ZKR_OK && zkr__period_id(&o->period, o->zone, now, o->run.period, sizeof(o->run.period)) != 0)
    rc = ZKR_EINVAL;
  if (rc == ZKR_OK) {
    read_args a = {node, o->run.period, &found_rec, &found};
    snprintf(node, sizeof(node), "%s/%s", o->done, o->run.period);
    rc = while_held(o, step_read, &a);
  }
  if (rc == ZKR_OK && !found && zkr_lock_token(o->lock, &o->run.token) != ZKR_OK)
    rc = ZKR_ENOTHELD; /* lost since the grant: decide nothing */
  /* A node at the marker's name that is no marker of ours: neither done
   * (it says nothing of a run) nor free to run (someone put it there, and
   * our marker could not be written over it). Refused, naming it. */
  if (rc == ZKR_OK && found == RECORD_FOREIGN) {
    rc = ZKR_EZK;
    if (rec != NULL)
      *rec = found_rec;
  }
  if (rc != ZKR_OK || found) {
    zkr_lock_release(o->lock);
    if (rc == ZKR_OK) {
      *verdict = ZKR_ONCE_DONE;
      if (rec != NULL)
        *rec = found_rec;
    }
    return rc;
  }
  snprintf(o->run.runner, sizeof(o->run.runner), "%s", o->r.id);
  o->run.start_ms = now;
  o->running = 1;
  *verdict = ZKR_ONCE_RUN;
  if (rec != NULL)
    *rec = o->run;
  return ZKR_OK;
}

/* Writes the run's record (the marker, or the ~failed record) in one multi
 * behind the check of our lock node (O2), reading it back after a
 * connection loss before trying again (O3). */
static int record_write(zkr_once *o) {
  zhandle_t *zh = zkr_session_zhandle(o->r.s);
  zkr_once_record *r = &o->run, got;
  char node[ZKR__PATH_MAX + 128], data[ONCE_RECORD_MAX];
  zoo_op_t op;
  zoo_op_result_t res;
  int len, rc, found, set = 0;

  if (zh == NULL)
    return ZKR_ECLOSED;
  rc = while_held(o, step_now, &r->end_ms);
  if (rc == ZKR_OK)
    rc = while_held(o, step_done_dir, NULL);
  if (rc != ZKR_OK)
    return rc;
  snprintf(node, sizeof(node), "%s/%s%s", o->done, r->period, r->status == 0 ? "" : ONCE_FAILED_SUFFIX);
  len = record_format(r, data, sizeof(data));
  if (len < 0)
    return ZKR_EINVAL;
  for (;;) {
    /* A ~failed record of the period may be there from an earlier
     * failure: it is replaced. A marker never is. */
    if (set)
      zoo_set_op_init(&op, node, data, len, -1, NULL);
    else
      zoo_create_op_init(&op, node, data, len, acl_of(o), ZOO_PERSISTENT, NULL, 0);
    memset(&res, 0, sizeof(res));
    rc = zkr_lock_multi(o->lock, 1, &op, &res);
    if (rc == ZKR_OK)
      return ZKR_OK;
    if (rc == ZKR_EZK && res.err == ZNODEEXISTS && r->status != 0 && !set) {
      set = 1;
      continue;
    }
    if (rc != ZKR_ECONNLOSS && !(rc == ZKR_EZK && res.err == ZNODEEXISTS))
      return rc;
    /* The multi may have committed (O3): read before writing again. */
    {
      read_args a = {node, strrchr(node, '/') + 1, &got, &found};
      rc = while_held(o, step_read, &a);
      if (rc != ZKR_OK)
        return rc; /* the record's fate is unknown */
    }
    if (found == RECORD_OURS && got.token == r->token && got.status == r->status && got.end_ms == r->end_ms)
      return ZKR_OK;
    if (found != RECORD_NONE && r->status == 0)
      return ZKR_EZK; /* a marker of someone who did not hold the lock */
    set = found != RECORD_NONE;
  }
}

/* A key's records in time order. Premise: a period id does not sort by
 * time (a marker "D" sorts before its older "D~failed"; an autumn night's
 * second "T02:00+01:00" before its first "T02:00+02:00"), so records are
 * never ordered by name: by the server time their run began (the record's
 * start), a node that is no record of ours by its mtime. */
typedef struct timed_name {
  char *name;
  int64_t at;
  int ours; /* a record of zkr once (else foreign: listed, never pruned) */
} timed_name;

static int by_time(const void *a, const void *b) {
  const timed_name *x = a, *y = b;

  if (x->at != y->at)
    return x->at < y->at ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* The base period id of a record's name (without ~failed) equals period. */
static int of_period(const char *name, const char *period) {
  size_t n = strcspn(name, "~");

  return strlen(period) == n && strncmp(name, period, n) == 0;
}

/* Keeps the newest o->keep records by time (above), deleting the older
 * ones, but never a record of the current period (the marker just written
 * must stay, or the next firing in the period runs again) and never a node
 * that is no record of ours (someone else's: status lists it, an operator
 * decides). Only our records count toward keep. Best effort: what is left
 * now goes at the next run. */
static void prune(zkr_once *o) {
  zhandle_t *zh = zkr_session_zhandle(o->r.s);
  struct String_vector kids = {0, NULL};
  char node[ZKR__PATH_MAX + 128], data[ONCE_RECORD_MAX];
  timed_name *t;
  int i, extra, ours = 0;

  if (zh == NULL || zoo_get_children(zh, o->done, 0, &kids) != ZOK)
    return;
  if (kids.count <= o->keep || (t = calloc((size_t)kids.count, sizeof(*t))) == NULL) {
    deallocate_String_vector(&kids);
    return;
  }
  for (i = 0; i < kids.count; i++) {
    zkr_once_record r;
    struct Stat st;
    int len = (int)sizeof(data);
    t[i].name = kids.data[i];
    memset(&st, 0, sizeof(st));
    if (snprintf(node, sizeof(node), "%s/%s", o->done, kids.data[i]) < 0 ||
        zoo_get(zh, node, 0, data, &len, &st) != ZOK) {
      t[i].at = INT64_MAX; /* unknown: counted as newest, not deleted */
    } else {
      t[i].ours = record_parse(data, len, &r) == 0 && st.numChildren == 0;
      t[i].at = t[i].ours ? r.start_ms : st.mtime;
    }
    ours += t[i].ours;
  }
  qsort(t, (size_t)kids.count, sizeof(*t), by_time);
  extra = ours - o->keep;
  for (i = 0; i < kids.count && extra > 0; i++) {
    if (!t[i].ours || of_period(t[i].name, o->run.period) || t[i].at == INT64_MAX)
      continue;
    snprintf(node, sizeof(node), "%s/%s", o->done, t[i].name);
    if (zoo_delete(zh, node, -1) == ZOK)
      extra--;
  }
  free(t);
  deallocate_String_vector(&kids);
}

int zkr_once_done(zkr_once *o, int status) {
  int rc;

  if (o == NULL)
    return ZKR_EINVAL;
  if (!o->running)
    return ZKR_ENOTHELD;
  o->running = 0;
  o->run.status = status;
  rc = zkr_lock_held(o->lock) ? record_write(o) : ZKR_ENOTHELD;
  if (rc == ZKR_OK)
    prune(o);
  /* The record is fenced: a release that finds the hold lost since
   * changes nothing about it. */
  zkr_lock_release(o->lock);
  return rc;
}

zkr_lock *zkr_once_lock(zkr_once *o) {
  return o != NULL ? o->lock : NULL;
}

/* --- history -------------------------------------------------------------------- */

/* Newest run first: by the start of the run (see by_time). */
static int history_order(const void *a, const void *b) {
  const zkr_once_record *x = a, *y = b;

  if (x->foreign != y->foreign)
    return x->foreign - y->foreign; /* foreign nodes last: they have no time */

  if (x->start_ms != y->start_ms)
    return x->start_ms > y->start_ms ? -1 : 1;
  return strcmp(y->period, x->period);
}

int zkr_once_history(zkr_session *s, const char *path, zkr_once_record **out, size_t *n) {
  struct String_vector kids = {0, NULL};
  char dir[ZKR__PATH_MAX + 16], node[ZKR__PATH_MAX + 128];
  zkr_once_record *recs;
  zhandle_t *zh;
  int zrc, i, rc = ZKR_OK, found;

  if (out == NULL || n == NULL)
    return ZKR_EINVAL;
  *out = NULL;
  *n = 0;
  if (s == NULL || zkr_path_problem(path) != NULL)
    return ZKR_EINVAL;
  zh = zkr_session_zhandle(s);
  if (zh == NULL)
    return ZKR_ECLOSED;
  snprintf(dir, sizeof(dir), "%s/done", path);
  zrc = zoo_get_children(zh, dir, 0, &kids);
  if (zrc == ZNONODE)
    return ZKR_OK;
  if (zrc != ZOK)
    return zkr__from_zk(zrc);
  recs = calloc((size_t)kids.count + 1, sizeof(*recs));
  if (recs == NULL) {
    deallocate_String_vector(&kids);
    return ZKR_ENOMEM;
  }
  for (i = 0; i < kids.count && rc == ZKR_OK; i++) {
    zkr_once_record *r = &recs[*n];
    snprintf(node, sizeof(node), "%s/%s", dir, kids.data[i]);
    rc = record_read(zh, node, kids.data[i], r, &found);
    /* Gone since the listing (pruned): skipped. A foreign node is listed
     * (foreign set): it may block its period's firings. */
    if (rc == ZKR_OK && found != RECORD_NONE)
      (*n)++;
  }
  deallocate_String_vector(&kids);
  if (rc == ZKR_OK)
    qsort(recs, *n, sizeof(*recs), history_order);
  if (rc != ZKR_OK || *n == 0) {
    free(recs);
    *n = 0;
    return rc;
  }
  *out = recs;
  return ZKR_OK;
}

void zkr_once_history_free(zkr_once_record *records) {
  free(records);
}

void zkr_once_free(zkr_once *o) {
  if (o == NULL)
    return;
  zkr_lock_free(o->lock); /* releases a run's hold: no record */
  zkr__zone_free(o->zone);
  free(o->clock);
  free(o->done);
  free(o->setting);
  free(o->tz_name);
  zkr__recipe_free(o);
}
