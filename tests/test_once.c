/* zkr_once against a real server: one run per period whether the firings
 * come together or one after another, the server's clock deciding the
 * period (moved by the test-only skew), a killed, failing or fenced-out
 * runner leaving the period not done, markers pruned, a day turning at
 * local midnight on DST change days; and the period arithmetic itself,
 * checked against tzdata's answers (Python's zoneinfo). Every case removes
 * what it created. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "period.h"
#include "proxy.h"

/* --- helpers ---------------------------------------------------------------- */

static zkr_once *once_on(zkr_session *s, const char *path, const char *period, const char *tz, int keep,
                         const char *id) {
  zkr_once_opts o;
  zkr_once *once = NULL;

  memset(&o, 0, sizeof(o));
  o.tz = tz;
  o.keep = keep;
  o.id = id;
  CU_ASSERT_EQUAL_FATAL(zkr_once_new(&once, s, path, period, &o), ZKR_OK);
  return once;
}

/* One firing: begin; if told to run, done(status). Returns the verdict and
 * fills *rec (begin's record). */
static zkr_once_verdict fire(zkr_once *o, int status, zkr_once_record *rec) {
  zkr_once_verdict v = 0;

  CU_ASSERT_EQUAL_FATAL(zkr_once_begin(o, TH_SETTLE_MS, &v, rec), ZKR_OK);
  if (v == ZKR_ONCE_RUN)
    CU_ASSERT_EQUAL(zkr_once_done(o, status), ZKR_OK);
  return v;
}

/* The server's time now, from the mtime of a write to path itself (made
 * persistent if missing; removed with the test's tree). */
static int64_t server_ms(const char *path) {
  zhandle_t *raw = th_raw();
  struct Stat st;
  int zrc;

  zoo_create(raw, "/zkr-test", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
  zoo_create(raw, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
  zrc = zoo_set2(raw, path, "", 0, -1, &st);
  CU_ASSERT_EQUAL_FATAL(zrc, ZOK);
  th_raw_close(raw);
  return st.mtime;
}

/* Moves the server time zkr_once reads to about target_ms (ms since the
 * epoch; a few ms later by the time a firing reads it). */
static void server_at(const char *path, int64_t target_ms) {
  int64_t now = server_ms(path);

  __atomic_store_n(&zkr__once_skew_ms, target_ms - now, __ATOMIC_SEQ_CST);
}

static void server_real(void) {
  __atomic_store_n(&zkr__once_skew_ms, 0, __ATOMIC_SEQ_CST);
}

static const char *sub(char *buf, size_t len, const char *path, const char *name) {
  snprintf(buf, len, "%s/%s", path, name);
  return buf;
}

/* The children of path/done, sorted, space separated ("" if none). */
static const char *markers(const char *path) {
  static char out[4096];
  struct String_vector kids = {0, NULL};
  zhandle_t *raw = th_raw();
  char dir[1100];
  int i, j;

  out[0] = '\0';
  if (zoo_get_children(raw, sub(dir, sizeof(dir), path, "done"), 0, &kids) == ZOK) {
    for (i = 1; i < kids.count; i++) /* insertion sort: a handful of names */
      for (j = i; j > 0 && strcmp(kids.data[j - 1], kids.data[j]) > 0; j--) {
        char *t = kids.data[j];
        kids.data[j] = kids.data[j - 1];
        kids.data[j - 1] = t;
      }
    for (i = 0; i < kids.count; i++)
      snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? " " : "", kids.data[i]);
  }
  deallocate_String_vector(&kids);
  th_raw_close(raw);
  return out;
}

/* End of a test's key: no lock contender left, then the tree goes. */
static void once_finish(char *path) {
  char dir[1100];

  server_real();
  CU_ASSERT_TRUE(th_await_nodes(sub(dir, sizeof(dir), path, "lock"), 0));
  th_delete_tree(path);
  free(path);
}

/* --- the period arithmetic -------------------------------------------------------- */

static const char *id_of(const char *spec, const char *tz, int64_t ms) {
  static char buf[64];
  zkr__period p;
  zkr__zone *z = NULL;

  CU_ASSERT_PTR_NULL_FATAL(zkr__period_parse(spec, &p));
  CU_ASSERT_PTR_NULL_FATAL(zkr__zone_load(tz, &z));
  CU_ASSERT_EQUAL(zkr__period_id(&p, z, ms, buf, sizeof(buf)), 0);
  zkr__zone_free(z);
  return buf;
}

static int32_t offset_of(const char *tz, int64_t ms) {
  zkr__zone *z = NULL;
  int32_t off;

  CU_ASSERT_PTR_NULL_FATAL(zkr__zone_load(tz, &z));
  off = zkr__zone_offset(z, ms / 1000);
  zkr__zone_free(z);
  return off;
}

/* Expected values from Python's zoneinfo (tzdata) and datetime. */
static void test_once_period_ids(void) {
  /* Europe/Berlin's 23-hour day: 2026-03-29 runs from 23:00Z to 22:00Z. */
  CU_ASSERT_STRING_EQUAL(id_of("1d", "Europe/Berlin", 1774738799000), "2026-03-28"); /* 22:59:59Z */
  CU_ASSERT_STRING_EQUAL(id_of("1d", "Europe/Berlin", 1774738800000), "2026-03-29"); /* 23:00:00Z */
  CU_ASSERT_STRING_EQUAL(id_of("1d", "Europe/Berlin", 1774821599000), "2026-03-29"); /* 21:59:59Z */
  CU_ASSERT_STRING_EQUAL(id_of("1d", "Europe/Berlin", 1774821600000), "2026-03-30"); /* 22:00:00Z */
  CU_ASSERT_STRING_EQUAL(id_of("1d", NULL, 1774821600000), "2026-03-29");
  /* The 25-hour day 2026-10-25 ends at 23:00Z; its 02:00 comes twice. */
  CU_ASSERT_STRING_EQUAL(id_of("1d", "Europe/Berlin", 1792969199000), "2026-10-25");
  CU_ASSERT_STRING_EQUAL(id_of("1d", "Europe/Berlin", 1792969200000), "2026-10-26");
  CU_ASSERT_STRING_EQUAL(id_of("1h", "Europe/Berlin", 1792888200000), "2026-10-25T02:00+02:00");
  CU_ASSERT_STRING_EQUAL(id_of("1h", "Europe/Berlin", 1792891800000), "2026-10-25T02:00+01:00");
  /* Clock periods in UTC; seconds only when the period needs them. */
  CU_ASSERT_STRING_EQUAL(id_of("15m", "UTC", 1795962599000), "2026-11-29T14:15Z"); /* 14:29:59Z */
  CU_ASSERT_STRING_EQUAL(id_of("30s", NULL, 1795962599000), "2026-11-29T14:29:30Z");
  CU_ASSERT_STRING_EQUAL(id_of("6h", NULL, 1795962599000), "2026-11-29T12:00Z");
  /* ISO weeks: 2026-11-29 is the Sunday of 2026-W48; 2027-01-01 is in
   * 2026-W53; 2027-01-04 starts 2027-W01. */
  CU_ASSERT_STRING_EQUAL(id_of("1w", NULL, 1795962599000), "2026-W48");
  CU_ASSERT_STRING_EQUAL(id_of("1w", NULL, 1798761600000), "2026-W53"); /* 2027-01-01T00:00Z */
  CU_ASSERT_STRING_EQUAL(id_of("1w", NULL, 1799020800000), "2027-W01"); /* 2027-01-04T00:00Z */
  CU_ASSERT_STRING_EQUAL(id_of("1d", NULL, -1000), "1969-12-31");
  CU_ASSERT_STRING_EQUAL(id_of("2d", NULL, 1795962599000), "2026-11-29"); /* day 20421 */
  /* Past the zone file's table (2037): the zone's POSIX rule decides. */
  CU_ASSERT_EQUAL(offset_of("Europe/Berlin", 2216249999000), 3600); /* 2040-03-25T00:59:59Z */
  CU_ASSERT_EQUAL(offset_of("Europe/Berlin", 2216250000000), 7200);
  CU_ASSERT_EQUAL(offset_of("Europe/Berlin", 2234998799000), 7200); /* 2040-10-28T00:59:59Z */
  CU_ASSERT_EQUAL(offset_of("Europe/Berlin", 2234998800000), 3600);
  /* A southern zone: summer across the new year. */
  CU_ASSERT_EQUAL(offset_of("Australia/Sydney", 2374675199000), 39600); /* 2045-04-01T15:59:59Z */
  CU_ASSERT_EQUAL(offset_of("Australia/Sydney", 2374675200000), 36000);
  CU_ASSERT_EQUAL(offset_of("Australia/Sydney", 2390399999000), 36000); /* 2045-09-30T15:59:59Z */
  CU_ASSERT_EQUAL(offset_of("Australia/Sydney", 2390400000000), 39600);
}

static void test_once_period_problems(void) {
  static const char *const bad_periods[] = {
      "",    "d",   "0d",  "1.5h",  "7m",   "25h",      "1x",       "1D",
      "-1d", "1d ", " 1d", "3661d", "521w", "1000000s", "1000000d", "99999999999999999999999w"};
  /* The last three GLib would take: a POSIX rule (UTC-5), an offset, a
   * file of the zone directory that is no zone (GLib logs a critical). */
  static const char *const bad_zones[] = {"Nowhere/City",
                                          "../etc/passwd",
                                          "/etc/localtime",
                                          "Europe//Berlin",
                                          "Europe/Berlin/",
                                          "",
                                          "UTC+5",
                                          "+0100",
                                          "leapseconds",
                                          "right/Europe/Berlin",
                                          "posix/Europe/Berlin",
                                          "right/UTC"};
  size_t i;

  CU_ASSERT_PTR_NULL(zkr_once_period_problem("1d", NULL));
  CU_ASSERT_PTR_NULL(zkr_once_period_problem("15m", "Europe/Berlin"));
  CU_ASSERT_PTR_NULL(zkr_once_period_problem("1w", "UTC"));
  CU_ASSERT_PTR_NULL(zkr_once_period_problem("24h", "Asia/Kolkata"));
  CU_ASSERT_PTR_NOT_NULL(zkr_once_period_problem(NULL, NULL));
  CU_ASSERT_STRING_EQUAL(zkr_once_period_problem("1000000d", NULL), zkr_once_period_problem("3661d", NULL));
  CU_ASSERT_STRING_EQUAL(zkr_once_period_problem("99999999999w", NULL),
                         zkr_once_period_problem("521w", NULL));
  CU_ASSERT_PTR_NOT_NULL(strstr(zkr_once_period_problem("1d", "right/Europe/Berlin"), "right/"));
  for (i = 0; i < sizeof(bad_periods) / sizeof(*bad_periods); i++) {
    const char *why = zkr_once_period_problem(bad_periods[i], NULL);
    CU_ASSERT_PTR_NOT_NULL(why);
    if (why == NULL)
      fprintf(stderr, "period '%s' accepted\n", bad_periods[i]);
  }
  for (i = 0; i < sizeof(bad_zones) / sizeof(*bad_zones); i++) {
    const char *why = zkr_once_period_problem("1d", bad_zones[i]);
    CU_ASSERT_PTR_NOT_NULL(why);
    if (why == NULL)
      fprintf(stderr, "zone '%s' accepted\n", bad_zones[i]);
  }
}

/* --- against the server ------------------------------------------------------------- */

/* Firings one after another, each after the previous run ended (the case a
 * lock alone gets wrong): the first runs, the others are told who ran it. */
static void test_once_staggered_runs_once(void) {
  char *path = th_path("once-staggered");
  zkr_session *s[3];
  zkr_once *o[3];
  zkr_once_record first, rec;
  zkr_once_record *h = NULL;
  size_t n = 0;
  int i;

  for (i = 0; i < 3; i++) {
    char id[32];
    snprintf(id, sizeof(id), "machine-%d", i);
    s[i] = th_session(0);
    o[i] = once_on(s[i], path, "1d", NULL, 0, id);
  }
  CU_ASSERT_EQUAL(fire(o[0], 0, &first), ZKR_ONCE_RUN);
  CU_ASSERT_STRING_EQUAL(first.runner, "machine-0");
  CU_ASSERT_TRUE(first.token > 0);
  for (i = 1; i < 3; i++) {
    memset(&rec, 0, sizeof(rec));
    CU_ASSERT_EQUAL(fire(o[i], 0, &rec), ZKR_ONCE_DONE);
    CU_ASSERT_STRING_EQUAL(rec.runner, "machine-0");
    CU_ASSERT_STRING_EQUAL(rec.period, first.period);
    CU_ASSERT_EQUAL(rec.token, first.token);
    CU_ASSERT_EQUAL(rec.status, 0);
    CU_ASSERT_TRUE(rec.end_ms >= rec.start_ms && rec.start_ms == first.start_ms);
  }
  CU_ASSERT_EQUAL(zkr_once_history(s[0], path, &h, &n), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(n, 1);
  CU_ASSERT_STRING_EQUAL(h[0].runner, "machine-0");
  zkr_once_history_free(h);
  CU_ASSERT_STRING_EQUAL(markers(path), first.period);
  for (i = 0; i < 3; i++) {
    zkr_once_free(o[i]);
    zkr_session_close(s[i]);
  }
  once_finish(path);
}

/* Firings at the same instant, each with a session of its own. */
typedef struct firing {
  const char *path;
  pthread_barrier_t *go;
  zkr_once_verdict v;
  int rc;
} firing;

static void *fire_main(void *arg) {
  firing *f = arg;
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, f->path, "1d", NULL, 0, NULL);

  pthread_barrier_wait(f->go);
  f->rc = zkr_once_begin(o, TH_QUEUE_MS(6), &f->v, NULL);
  if (f->rc == ZKR_OK && f->v == ZKR_ONCE_RUN)
    f->rc = zkr_once_done(o, 0);
  zkr_once_free(o);
  zkr_session_close(s);
  return NULL;
}

static void test_once_together_runs_once(void) {
  char *path = th_path("once-together");
  firing f[6];
  pthread_t t[6];
  pthread_barrier_t go;
  int i, runs = 0;

  pthread_barrier_init(&go, NULL, 6);
  for (i = 0; i < 6; i++) {
    memset(&f[i], 0, sizeof(f[i]));
    f[i].path = path;
    f[i].go = &go;
    pthread_create(&t[i], NULL, fire_main, &f[i]);
  }
  for (i = 0; i < 6; i++) {
    pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(f[i].rc, ZKR_OK);
    runs += f[i].v == ZKR_ONCE_RUN;
  }
  CU_ASSERT_EQUAL(runs, 1);
  pthread_barrier_destroy(&go);
  once_finish(path);
}

/* In a child: begins a run and keeps it (the job "runs" until killed). */
static int begin_and_hold(zkr_session *s, const char *path) {
  zkr_once *o = NULL;
  zkr_once_verdict v = 0;
  int rc = zkr_once_new(&o, s, path, "1d", NULL);

  if (rc == ZKR_OK)
    rc = zkr_once_begin(o, -1, &v, NULL);
  return rc == ZKR_OK && v == ZKR_ONCE_RUN ? ZKR_OK : ZKR_EZK;
}

/* A runner killed mid-run leaves no marker: the next firing of the period
 * waits for its lock to go with its session, then runs the job. */
static void test_once_killed_runner_reruns(void) {
  char *path = th_path("once-killed");
  pid_t pid = th_child_holding(begin_and_hold, path, 0); /* first: no threads yet */
  zkr_session *s;
  zkr_once *o;
  zkr_once_verdict v = 0;
  int64_t t0;

  CU_ASSERT_FATAL(pid > 0);
  s = th_session(0);
  o = once_on(s, path, "1d", NULL, 0, "second");
  CU_ASSERT_EQUAL(zkr_once_begin(o, 0, &v, NULL), ZKR_ETIMEDOUT); /* the child runs */
  th_child_kill(pid);
  t0 = th_now_ms();
  CU_ASSERT_EQUAL_FATAL(zkr_once_begin(o, TH_SETTLE_MS, &v, NULL), ZKR_OK);
  CU_ASSERT_EQUAL(v, ZKR_ONCE_RUN);
  CU_ASSERT_TRUE(th_now_ms() - t0 <= TH_EXPIRED_BY_MS(TH_SESSION_MS));
  CU_ASSERT_STRING_EQUAL(markers(path), "");
  CU_ASSERT_EQUAL(zkr_once_done(o, 0), ZKR_OK);
  CU_ASSERT_EQUAL(fire(o, 0, NULL), ZKR_ONCE_DONE);
  zkr_once_free(o);
  zkr_session_close(s);
  once_finish(path);
}

/* A failed run leaves a ~failed record, never a marker: the next firing
 * runs the job again; status lists both. */
static void test_once_failure_not_marked(void) {
  char *path = th_path("once-failed");
  zkr_session *s = th_session(0);
  zkr_once *a = once_on(s, path, "1d", NULL, 0, "a"), *b = once_on(s, path, "1d", NULL, 0, "b");
  zkr_once_record ra, rb;
  zkr_once_record *h = NULL;
  size_t n = 0;
  char want[200];

  CU_ASSERT_EQUAL(fire(a, 3, &ra), ZKR_ONCE_RUN);
  snprintf(want, sizeof(want), "%s~failed", ra.period);
  CU_ASSERT_STRING_EQUAL(markers(path), want);
  CU_ASSERT_EQUAL(fire(a, 4, NULL), ZKR_ONCE_RUN); /* a second failure replaces the record */
  CU_ASSERT_EQUAL(fire(b, 0, &rb), ZKR_ONCE_RUN);
  CU_ASSERT_STRING_EQUAL(rb.period, ra.period);
  CU_ASSERT_EQUAL(fire(a, 0, NULL), ZKR_ONCE_DONE);
  CU_ASSERT_EQUAL(zkr_once_history(s, path, &h, &n), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(n, 2);
  CU_ASSERT_STRING_EQUAL(h[0].runner, "b");
  CU_ASSERT_EQUAL(h[0].status, 0);
  CU_ASSERT_STRING_EQUAL(h[1].runner, "a");
  CU_ASSERT_EQUAL(h[1].status, 4);
  zkr_once_history_free(h);
  zkr_once_free(a);
  zkr_once_free(b);
  zkr_session_close(s);
  once_finish(path);
}

static int lock_not_held(void *arg) {
  return !zkr_lock_held(arg);
}

/* A runner that lost the lock during the run marks nothing: its node
 * deleted by someone else (the multi's check fails), or its session
 * expired. */
static void test_once_lock_lost_no_marker(void) {
  char *path = th_path("once-lost");
  zkr_session *s = th_session(0), *s2 = th_session(0);
  zkr_once *o = once_on(s, path, "1d", NULL, 0, "lost"), *o2;
  zkr_once_verdict v = 0;
  char node[1200];
  zhandle_t *raw;

  CU_ASSERT_EQUAL_FATAL(zkr_once_begin(o, TH_SETTLE_MS, &v, NULL), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(v, ZKR_ONCE_RUN);
  CU_ASSERT_EQUAL_FATAL(zkr_lock_node(zkr_once_lock(o), node, sizeof(node)), ZKR_OK);
  raw = th_raw();
  CU_ASSERT_EQUAL(zoo_delete(raw, node, -1), ZOK);
  th_raw_close(raw);
  CU_ASSERT_EQUAL(zkr_once_done(o, 0), ZKR_ENOTHELD);
  CU_ASSERT_STRING_EQUAL(markers(path), "");

  CU_ASSERT_EQUAL_FATAL(zkr_once_begin(o, TH_SETTLE_MS, &v, NULL), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(v, ZKR_ONCE_RUN);
  CU_ASSERT_EQUAL(th_expire(s), 0);
  CU_ASSERT_TRUE(th_wait_until(lock_not_held, zkr_once_lock(o), TH_SETTLE_MS));
  CU_ASSERT_NOT_EQUAL(zkr_once_done(o, 0), ZKR_OK);
  CU_ASSERT_STRING_EQUAL(markers(path), "");
  zkr_once_free(o);
  zkr_session_close(s);

  o2 = once_on(s2, path, "1d", NULL, 0, "next");
  CU_ASSERT_EQUAL(fire(o2, 0, NULL), ZKR_ONCE_RUN);
  zkr_once_free(o2);
  zkr_session_close(s2);
  once_finish(path);
}

/* The reply of the marker's multi lost with the connection (the server ran
 * it): the marker is read back before anything is retried and found to be
 * ours, so done() succeeds and the marker is written once; the same for a
 * ~failed record. */
static void test_once_marker_reply_lost(void) {
  char *path = th_path("once-reply-lost");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *s = NULL;
  zkr_once *o;
  zkr_once_verdict v = 0;
  zkr_once_record r, *h = NULL;
  char want[200];
  size_t n = 0;
  int status;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = th_session_at(tp_hosts(p), 0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  o = once_on(s, path, "1d", NULL, 0, "cut");
  for (status = 3; status >= 0; status -= 3) {
    int fired = tp_cut_fired(p);
    CU_ASSERT_EQUAL_FATAL(zkr_once_begin(o, TH_SETTLE_MS, &v, &r), ZKR_OK);
    CU_ASSERT_EQUAL_FATAL(v, ZKR_ONCE_RUN);
    CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_MULTI_OP, 1), 0);
    CU_ASSERT_EQUAL(zkr_once_done(o, status), ZKR_OK);
    CU_ASSERT_EQUAL(tp_cut_fired(p), fired + 1);
  }
  snprintf(want, sizeof(want), "%s %s~failed", r.period, r.period);
  CU_ASSERT_STRING_EQUAL(markers(path), want);
  CU_ASSERT_EQUAL(zkr_once_history(s, path, &h, &n), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(n, 2);
  CU_ASSERT_EQUAL(h[0].token, r.token);
  CU_ASSERT_EQUAL(h[0].status, 0);
  CU_ASSERT_EQUAL(h[1].status, 3);
  zkr_once_history_free(h);
  CU_ASSERT_EQUAL(fire(o, 0, NULL), ZKR_ONCE_DONE);
  zkr_once_free(o);
  zkr_session_close(s);
  tp_stop(p);
  once_finish(path);
}

/* A connection cut right after the grant (the reply of begin's write of
 * PATH/clock lost, then of its read of the marker) and right before the
 * marker's write (the reply of done's write of PATH/clock, then of its
 * create of PATH/done): each step is tried again while the lock is held,
 * so every firing still runs the job once and marks its period. */
static void test_once_rides_connection_loss(void) {
  static const struct {
    int begin_op, done_op;
  } cuts[] = {{ZOO_SETDATA_OP, ZOO_SETDATA_OP}, {ZOO_GETDATA_OP, ZOO_CREATE_OP}};
  char *path = th_path("once-blip");
  tp_proxy *p = tp_start(th_hosts());
  zkr_session *s = NULL;
  zkr_once *o;
  zkr_once_verdict v = 0;
  zkr_once_record r;
  int64_t day0 = 1795910400000; /* 2026-11-29T00:00:00Z */
  size_t i;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  s = th_session_at(tp_hosts(p), 0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  o = once_on(s, path, "1d", NULL, 0, "blip");
  for (i = 0; i < sizeof(cuts) / sizeof(*cuts); i++) {
    int fired = tp_cut_fired(p);
    server_at(path, day0 + (int64_t)i * 86400000 + 3600000);
    CU_ASSERT_EQUAL(tp_cut_after(p, cuts[i].begin_op, 1), 0);
    CU_ASSERT_EQUAL_FATAL(zkr_once_begin(o, TH_SETTLE_MS, &v, &r), ZKR_OK);
    CU_ASSERT_EQUAL_FATAL(v, ZKR_ONCE_RUN);
    CU_ASSERT_EQUAL(tp_cut_fired(p), fired + 1);
    CU_ASSERT_EQUAL(tp_cut_after(p, cuts[i].done_op, 1), 0);
    CU_ASSERT_EQUAL(zkr_once_done(o, 0), ZKR_OK);
    CU_ASSERT_EQUAL(tp_cut_fired(p), fired + 2);
    CU_ASSERT_EQUAL(fire(o, 0, NULL), ZKR_ONCE_DONE);
  }
  CU_ASSERT_STRING_EQUAL(markers(path), "2026-11-29 2026-11-30");
  zkr_once_free(o);
  zkr_session_close(s);
  tp_stop(p);
  once_finish(path);
}

/* The server's clock decides: its period is the run's, and moving it (the
 * test-only skew) to the next day makes a new period, back again the old
 * one, done. The process's own clock is not read at all (the CLI suite
 * runs zkr under faketime to show it). */
static void test_once_server_time_decides(void) {
  char *path = th_path("once-server-time");
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, path, "1d", NULL, 0, NULL);
  zkr_once_record r1, r2, r3;
  char expect[64];
  int64_t before = server_ms(path), after;

  CU_ASSERT_EQUAL(fire(o, 0, &r1), ZKR_ONCE_RUN);
  after = server_ms(path);
  CU_ASSERT_TRUE(r1.start_ms >= before && r1.start_ms <= after);
  CU_ASSERT_STRING_EQUAL(r1.period, id_of("1d", NULL, r1.start_ms));
  server_at(path, r1.start_ms + 86400000);
  CU_ASSERT_EQUAL(fire(o, 0, &r2), ZKR_ONCE_RUN);
  snprintf(expect, sizeof(expect), "%s", id_of("1d", NULL, r1.start_ms + 86400000));
  CU_ASSERT_STRING_EQUAL(r2.period, expect);
  server_real();
  CU_ASSERT_EQUAL(fire(o, 0, &r3), ZKR_ONCE_DONE);
  CU_ASSERT_STRING_EQUAL(r3.period, r1.period);
  zkr_once_free(o);
  zkr_session_close(s);
  once_finish(path);
}

/* 1d in Europe/Berlin turns at local midnight on both DST change days (a
 * 23-hour and a 25-hour day), where a UTC key turns an hour or two later. */
static void test_once_dst_local_midnight(void) {
  char *path = th_path("once-dst"), *upath = th_path("once-dst-utc");
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, path, "1d", "Europe/Berlin", 0, NULL), *u = once_on(s, upath, "1d", NULL, 0, NULL);
  zkr_once_record r;

  server_at(path, 1774821570000); /* 2026-03-29T21:59:30Z, 23:59:30 CEST */
  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_RUN);
  CU_ASSERT_STRING_EQUAL(r.period, "2026-03-29");
  CU_ASSERT_EQUAL(fire(u, 0, &r), ZKR_ONCE_RUN);
  CU_ASSERT_STRING_EQUAL(r.period, "2026-03-29");
  server_at(path, 1774821630000); /* 22:00:30Z: local midnight has passed */
  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_RUN);
  CU_ASSERT_STRING_EQUAL(r.period, "2026-03-30");
  CU_ASSERT_EQUAL(fire(u, 0, &r), ZKR_ONCE_DONE); /* still 2026-03-29 in UTC */

  server_at(path, 1792879230000); /* 2026-10-24T22:00:30Z: 00:00:30 CEST of the 25-hour day */
  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_RUN);
  CU_ASSERT_STRING_EQUAL(r.period, "2026-10-25");
  server_at(path, 1792969170000); /* 24h59m later, 23:59:30 CET: the same day */
  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_DONE);
  CU_ASSERT_STRING_EQUAL(r.period, "2026-10-25");
  server_at(path, 1792969230000); /* 23:00:30Z: the next day */
  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_RUN);
  CU_ASSERT_STRING_EQUAL(r.period, "2026-10-26");
  CU_ASSERT_STRING_EQUAL(markers(path), "2026-03-29 2026-03-30 2026-10-25 2026-10-26");
  zkr_once_free(o);
  zkr_once_free(u);
  zkr_session_close(s);
  once_finish(path);
  once_finish(upath);
}

/* keep = 3: after each run at most 3 records, the newest. */
static void test_once_markers_pruned(void) {
  char *path = th_path("once-prune");
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, path, "1d", NULL, 3, NULL);
  int64_t day0 = 1795910400000; /* 2026-11-29T00:00:00Z */
  char got[4096];
  int d;

  for (d = 0; d < 6; d++) {
    server_at(path, day0 + d * 86400000LL + 3600000);
    const char *p;
    int records = 1;
    CU_ASSERT_EQUAL(fire(o, d == 4 ? 1 : 0, NULL), ZKR_ONCE_RUN);
    snprintf(got, sizeof(got), "%s", markers(path));
    for (p = got; *p != '\0'; p++)
      records += *p == ' ';
    CU_ASSERT_EQUAL(records, d < 3 ? d + 1 : 3);
  }
  /* Day 4 failed: its ~failed record counts as one of the three. */
  CU_ASSERT_STRING_EQUAL(markers(path), "2026-12-02 2026-12-03~failed 2026-12-04");
  zkr_once_free(o);
  zkr_session_close(s);
  once_finish(path);
}

/* A node under PATH/done that is no record of ours (an operator's note) is
 * listed, never pruned, and does not count toward keep: keep = 2 keeps two
 * records of ours beside it. */
static void test_once_foreign_not_pruned(void) {
  char *path = th_path("once-prune-foreign");
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, path, "1d", NULL, 2, NULL);
  int64_t day0 = 1795910400000; /* 2026-11-29T00:00:00Z */
  char note[256];
  int d;

  for (d = 0; d < 4; d++) {
    server_at(path, day0 + d * 86400000LL + 3600000);
    CU_ASSERT_EQUAL(fire(o, 0, NULL), ZKR_ONCE_RUN);
    if (d == 0) {
      snprintf(note, sizeof(note), "%s/done/operator-note", path);
      CU_ASSERT_EQUAL(
          zoo_create(zkr_session_zhandle(s), note, "do not delete", 13, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
          ZOK);
    }
  }
  CU_ASSERT_STRING_EQUAL(markers(path), "2026-12-01 2026-12-02 operator-note");
  zkr_once_free(o);
  zkr_session_close(s);
  once_finish(path);
}

/* keep = 1 after a failed and a successful run of one period: the marker
 * sorts before its ~failed record by name, but is the newer record: it is
 * kept (records are ordered by time, and a record of the current period
 * is never pruned), so the third firing finds the period done. */
static void test_once_keep1_keeps_marker(void) {
  char *path = th_path("once-keep1");
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, path, "1d", NULL, 1, NULL);
  zkr_once_record r;

  CU_ASSERT_EQUAL(fire(o, 3, &r), ZKR_ONCE_RUN);
  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_RUN);
  CU_ASSERT_EQUAL(fire(o, 0, NULL), ZKR_ONCE_DONE);
  CU_ASSERT_PTR_NOT_NULL(strstr(markers(path), r.period));
  zkr_once_free(o);
  zkr_session_close(s);
  once_finish(path);
}

/* The repeated hour of an autumn night (1h in Europe/Berlin): the second
 * 02:00 ("+01:00") sorts before the first ("+02:00") by name but is the
 * newer period: with keep 1 it is kept (a firing in it finds it done), and
 * the history lists it first. */
static void test_once_dst_repeated_hour(void) {
  char *path = th_path("once-dst-hour"), *hpath = th_path("once-dst-hour-h");
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, path, "1h", "Europe/Berlin", 1, NULL),
           *h = once_on(s, hpath, "1h", "Europe/Berlin", 0, NULL);
  zkr_once_record r, *hist = NULL;
  size_t n = 0;

  server_at(path, 1792888230000); /* 2026-10-25T00:30:30Z, 02:30:30 CEST */
  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_RUN);
  CU_ASSERT_STRING_EQUAL(r.period, "2026-10-25T02:00+02:00");
  CU_ASSERT_EQUAL(fire(h, 0, &r), ZKR_ONCE_RUN);
  server_at(path, 1792891830000); /* 01:30:30Z, 02:30:30 CET */
  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_RUN);
  CU_ASSERT_STRING_EQUAL(r.period, "2026-10-25T02:00+01:00");
  CU_ASSERT_EQUAL(fire(h, 0, &r), ZKR_ONCE_RUN);
  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_DONE);
  CU_ASSERT_STRING_EQUAL(markers(path), "2026-10-25T02:00+01:00");
  CU_ASSERT_EQUAL(zkr_once_history(s, hpath, &hist, &n), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(n, 2);
  CU_ASSERT_STRING_EQUAL(hist[0].period, "2026-10-25T02:00+01:00");
  CU_ASSERT_STRING_EQUAL(hist[1].period, "2026-10-25T02:00+02:00");
  zkr_once_history_free(hist);
  zkr_once_free(o);
  zkr_once_free(h);
  zkr_session_close(s);
  once_finish(path);
  once_finish(hpath);
}

/* A firing on a path inside another once key (a typo: KEY/done/ID) is
 * refused before it writes anything: no lock node lands in the other
 * key's marker, whose period stays done. */
static void test_once_nested_key_refused(void) {
  char *path = th_path("once-nested"), nested[1200], lockdir[1300];
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, path, "1d", NULL, 0, NULL), *n;
  zkr_once_record r;
  zkr_once_verdict v = 0;
  zhandle_t *raw;

  CU_ASSERT_EQUAL(fire(o, 0, &r), ZKR_ONCE_RUN);
  snprintf(nested, sizeof(nested), "%s/done/%s", path, r.period);
  n = once_on(s, nested, "1d", NULL, 0, NULL);
  CU_ASSERT_EQUAL(zkr_once_begin(n, TH_SETTLE_MS, &v, NULL), ZKR_EINVAL);
  snprintf(lockdir, sizeof(lockdir), "%s/lock", nested);
  raw = th_raw();
  CU_ASSERT_EQUAL(zoo_exists(raw, lockdir, 0, NULL), ZNONODE);
  th_raw_close(raw);
  CU_ASSERT_EQUAL(fire(o, 0, NULL), ZKR_ONCE_DONE);
  zkr_once_free(n);
  zkr_once_free(o);
  zkr_session_close(s);
  once_finish(path);
}

/* Found by a newcomer: the other direction. A key over existing keys
 * (PATH above PATH/daily) was accepted, ran, and from then on every key
 * below it was refused as nested. It is refused before anything is
 * written; a key whose first firing left only its layout is not. */
static void test_once_key_over_keys_refused(void) {
  char *path = th_path("once-over"), below[1200], lockdir[1300];
  zkr_session *s = th_session(0);
  zkr_once *b, *over, *o;
  zkr_once_verdict v = 0;
  zhandle_t *raw = th_raw();

  snprintf(below, sizeof(below), "%s/daily", path);
  b = once_on(s, below, "1d", NULL, 0, NULL);
  CU_ASSERT_EQUAL(fire(b, 0, NULL), ZKR_ONCE_RUN);
  over = once_on(s, path, "1d", NULL, 0, NULL);
  CU_ASSERT_EQUAL(zkr_once_begin(over, TH_SETTLE_MS, &v, NULL), ZKR_EINVAL);
  snprintf(lockdir, sizeof(lockdir), "%s/lock", path);
  CU_ASSERT_EQUAL(zoo_exists(raw, lockdir, 0, NULL), ZNONODE);
  CU_ASSERT_EQUAL(fire(b, 0, NULL), ZKR_ONCE_DONE); /* the key below still works */
  zkr_once_free(over);
  zkr_once_free(b);
  /* A key that holds only a layout (a first firing that died before it
   * recorded its setting) is taken over as a key. */
  CU_ASSERT_EQUAL(th_delete_tree(path), 0);
  CU_ASSERT_EQUAL(zoo_create(raw, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  CU_ASSERT_EQUAL(zoo_create(raw, lockdir, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  o = once_on(s, path, "1d", NULL, 0, NULL);
  CU_ASSERT_EQUAL(fire(o, 0, NULL), ZKR_ONCE_RUN);
  zkr_once_free(o);
  th_raw_close(raw);
  zkr_session_close(s);
  once_finish(path);
}

/* A key records its period and zone on first use; a firing with another
 * period (1h; 1d too: calendar days, not 24h of clock), another zone, or
 * on a path with other data is refused with ZKR_EMISMATCH and decides
 * nothing; the same period spelt otherwise ("86400s" for "24h", "UTC"
 * for NULL) is the same. */
static void test_once_setting_mismatch(void) {
  char *path = th_path("once-setting"), *other = th_path("once-setting-other");
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, path, "24h", NULL, 0, NULL), *h = once_on(s, path, "1h", NULL, 0, NULL),
           *d = once_on(s, path, "1d", NULL, 0, NULL), *z = once_on(s, path, "24h", "Europe/Berlin", 0, NULL),
           *same = once_on(s, path, "86400s", "UTC", 0, NULL), *f = once_on(s, other, "1d", NULL, 0, NULL);
  zkr_once_verdict v = 0;
  zhandle_t *raw;

  CU_ASSERT_EQUAL(fire(o, 0, NULL), ZKR_ONCE_RUN);
  CU_ASSERT_EQUAL(zkr_once_begin(h, TH_SETTLE_MS, &v, NULL), ZKR_EMISMATCH);
  CU_ASSERT_EQUAL(zkr_once_begin(d, TH_SETTLE_MS, &v, NULL), ZKR_EMISMATCH);
  CU_ASSERT_EQUAL(zkr_once_begin(z, TH_SETTLE_MS, &v, NULL), ZKR_EMISMATCH);
  CU_ASSERT_FALSE(zkr_lock_held(zkr_once_lock(h)));
  CU_ASSERT_EQUAL(fire(same, 0, NULL), ZKR_ONCE_DONE);
  raw = th_raw();
  zoo_create(raw, "/zkr-test", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
  CU_ASSERT_EQUAL(zoo_create(raw, other, "app data", 8, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
  th_raw_close(raw);
  CU_ASSERT_EQUAL(zkr_once_begin(f, TH_SETTLE_MS, &v, NULL), ZKR_EMISMATCH);
  CU_ASSERT_STRING_EQUAL(markers(other), "");
  zkr_once_free(o);
  zkr_once_free(h);
  zkr_once_free(d);
  zkr_once_free(z);
  zkr_once_free(same);
  zkr_once_free(f);
  zkr_session_close(s);
  once_finish(path);
  once_finish(other);
}

/* Nodes at a marker's name that are no marker of ours block the period
 * (begin refuses with ZKR_EZK, rec.foreign set, naming it) instead of
 * counting as done: garbage data, a record with children, a record whose
 * status is not 0, a record of another period; status lists each as
 * foreign. */
static void test_once_foreign_marker(void) {
  static const char *const data[] = {
      "garbage",
      "zkr-once 1\nperiod 2030-01-02\nstart 1\nend 2\nstatus 0\ntoken 5\nrunner x\n", /* + a child */
      "zkr-once 1\nperiod 2030-01-03\nstart 1\nend 2\nstatus 3\ntoken 5\nrunner x\n",
      "zkr-once 1\nperiod 2026-01-01\nstart 1\nend 2\nstatus 0\ntoken 5\nrunner x\n"};
  char *path = th_path("once-foreign");
  zkr_session *s = th_session(0);
  zkr_once *o = once_on(s, path, "1d", NULL, 0, NULL);
  int64_t day0 = 1893456000000; /* 2030-01-01T00:00:00Z */
  zkr_once_verdict v = 0;
  zkr_once_record r, *h = NULL;
  char node[1200], kid[1300], id[64];
  zhandle_t *raw;
  size_t i, n = 0;

  CU_ASSERT_EQUAL(fire(o, 0, NULL), ZKR_ONCE_RUN); /* PATH/done exists */
  raw = th_raw();
  for (i = 0; i < 4; i++) {
    snprintf(id, sizeof(id), "%s", id_of("1d", NULL, day0 + (int64_t)i * 86400000));
    snprintf(node, sizeof(node), "%s/done/%s", path, id);
    CU_ASSERT_EQUAL(
        zoo_create(raw, node, data[i], (int)strlen(data[i]), &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0),
        ZOK);
    if (i == 1) {
      snprintf(kid, sizeof(kid), "%s/x", node);
      CU_ASSERT_EQUAL(zoo_create(raw, kid, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    }
    server_at(path, day0 + (int64_t)i * 86400000 + 3600000);
    memset(&r, 0, sizeof(r));
    CU_ASSERT_EQUAL(zkr_once_begin(o, TH_SETTLE_MS, &v, &r), ZKR_EZK);
    CU_ASSERT_EQUAL(r.foreign, 1);
    CU_ASSERT_STRING_EQUAL(r.period, id);
    CU_ASSERT_FALSE(zkr_lock_held(zkr_once_lock(o)));
  }
  th_raw_close(raw);
  CU_ASSERT_EQUAL(zkr_once_history(s, path, &h, &n), ZKR_OK);
  CU_ASSERT_EQUAL_FATAL(n, 5);
  CU_ASSERT_EQUAL(h[0].foreign, 0);
  for (i = 1; i < 5; i++) {
    CU_ASSERT_EQUAL(h[i].foreign, 1);
    CU_ASSERT_EQUAL(h[i].start_ms, 0);
  }
  zkr_once_history_free(h);
  zkr_once_free(o);
  zkr_session_close(s);
  once_finish(path);
}

static void test_once_bad_input(void) {
  char *path = th_path("once-bad");
  zkr_session *s = th_session(0);
  zkr_once *o = NULL;
  zkr_once_opts opts;
  zkr_once_verdict v;
  zkr_once_record *h = NULL;
  size_t n = 5;

  memset(&opts, 0, sizeof(opts));
  CU_ASSERT_EQUAL(zkr_once_new(NULL, s, path, "1d", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_once_new(&o, NULL, path, "1d", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_once_new(&o, s, "relative", "1d", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_once_new(&o, s, path, "1y", NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_once_new(&o, s, path, NULL, NULL), ZKR_EINVAL);
  opts.tz = "Nowhere/City";
  CU_ASSERT_EQUAL(zkr_once_new(&o, s, path, "1d", &opts), ZKR_EINVAL);
  {
    /* The longest key is accepted; one byte more is not (its lock node
     * would pass zkr_path_problem's 1024 bytes). */
    char *longest = malloc(ZKR_ONCE_PATH_MAX + 2);
    memset(longest, 'k', ZKR_ONCE_PATH_MAX + 1);
    longest[0] = '/';
    longest[ZKR_ONCE_PATH_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(zkr_once_new(&o, s, longest, "1d", NULL), ZKR_EINVAL);
    longest[ZKR_ONCE_PATH_MAX] = '\0';
    CU_ASSERT_EQUAL(zkr_once_new(&o, s, longest, "1d", NULL), ZKR_OK);
    zkr_once_free(o);
    o = NULL;
    free(longest);
  }
  opts.tz = NULL;
  opts.keep = -1;
  CU_ASSERT_EQUAL(zkr_once_new(&o, s, path, "1d", &opts), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(o);
  CU_ASSERT_EQUAL(zkr_once_begin(NULL, 0, &v, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_once_done(NULL, 0), ZKR_EINVAL);
  CU_ASSERT_PTR_NULL(zkr_once_lock(NULL));
  CU_ASSERT_EQUAL(zkr_once_history(s, "relative", &h, &n), ZKR_EINVAL);
  CU_ASSERT_EQUAL(n, 0);
  zkr_once_free(NULL);
  CU_ASSERT_EQUAL(th_count_nodes(path), 0); /* nothing sent */

  o = once_on(s, path, "1d", NULL, 0, NULL);
  CU_ASSERT_EQUAL(zkr_once_begin(o, 0, NULL, NULL), ZKR_EINVAL);
  CU_ASSERT_EQUAL(zkr_once_done(o, 0), ZKR_ENOTHELD);         /* nothing begun */
  CU_ASSERT_EQUAL(zkr_once_history(s, path, &h, &n), ZKR_OK); /* never run */
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT_EQUAL_FATAL(zkr_once_begin(o, TH_SETTLE_MS, &v, NULL), ZKR_OK);
  CU_ASSERT_EQUAL(v, ZKR_ONCE_RUN);
  CU_ASSERT_EQUAL(zkr_once_begin(o, 0, &v, NULL), ZKR_EINVAL); /* a run is open */
  zkr_once_free(o);                                            /* ends the run without a record */
  CU_ASSERT_STRING_EQUAL(markers(path), "");
  zkr_session_close(s);
  once_finish(path);
}

int main(void) {
  static const th_test tests[] = {{"test_once_period_ids", test_once_period_ids},
                                  {"test_once_period_problems", test_once_period_problems},
                                  {"test_once_staggered_runs_once", test_once_staggered_runs_once},
                                  {"test_once_together_runs_once", test_once_together_runs_once},
                                  {"test_once_killed_runner_reruns", test_once_killed_runner_reruns},
                                  {"test_once_failure_not_marked", test_once_failure_not_marked},
                                  {"test_once_lock_lost_no_marker", test_once_lock_lost_no_marker},
                                  {"test_once_marker_reply_lost", test_once_marker_reply_lost},
                                  {"test_once_rides_connection_loss", test_once_rides_connection_loss},
                                  {"test_once_server_time_decides", test_once_server_time_decides},
                                  {"test_once_dst_local_midnight", test_once_dst_local_midnight},
                                  {"test_once_markers_pruned", test_once_markers_pruned},
                                  {"test_once_foreign_not_pruned", test_once_foreign_not_pruned},
                                  {"test_once_keep1_keeps_marker", test_once_keep1_keeps_marker},
                                  {"test_once_dst_repeated_hour", test_once_dst_repeated_hour},
                                  {"test_once_setting_mismatch", test_once_setting_mismatch},
                                  {"test_once_nested_key_refused", test_once_nested_key_refused},
                                  {"test_once_key_over_keys_refused", test_once_key_over_keys_refused},
                                  {"test_once_foreign_marker", test_once_foreign_marker},
                                  {"test_once_bad_input", test_once_bad_input},
                                  {NULL, NULL}};

  return th_run("once", tests);
}
