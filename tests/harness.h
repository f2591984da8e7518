/* Test harness shared by every CUnit program: the throw-away ZooKeeper
 * server (started by tests/with-zk.sh, which exports ZKR_TEST_HOSTS), raw
 * inspection handles, session expiry on demand, and small waiting helpers.
 * All th_ functions may be used from any test thread. */
#ifndef ZKR_TESTS_HARNESS_H
#define ZKR_TESTS_HARNESS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <CUnit/CUnit.h>
#include <zkr/zkr.h>

/* One test case: name "test_<recipe>_<behaviour>" and its function. */
typedef struct th_test {
  const char *name;
  void (*fn)(void);
} th_test;

/* Runs tests (terminated by {NULL, NULL}) as one CUnit suite with the
 * verbose basic runner, prints CUnit's summary, and returns the process exit
 * status: 0 only if every test ran and passed. Meant as `return th_run(...)`
 * from main(). */
int th_run(const char *suite, const th_test *tests);

/* Connect string of the test server ($ZKR_TEST_HOSTS). Aborts the program
 * with a message (a failure, never a skip) when unset. */
const char *th_hosts(void);

/* Opens a zkr session to th_hosts() with the given session timeout (ms; 0 =
 * TH_SESSION_MS, the tests' usual timeout) and asserts success. Returns NULL
 * on failure. */
#define TH_SESSION_MS 4000
zkr_session *th_session(int session_timeout_ms);

/* The same through hosts (a fault proxy's, say), in loop mode (zkr/session.h)
 * when loop is 1; waits TH_CONNECT_MS at most for the connection. */
zkr_session *th_session_at(const char *hosts, int session_timeout_ms, int loop);

/* A zkr_lock on path through s (asserts success; fatal on failure). */
zkr_lock *th_lock(zkr_session *s, const char *path);

/* An acquire on a thread of its own (holds are per thread). done is set
 * once it returned (returned_ms, th_now_ms()). A granted hold is released
 * by the same thread (release_rc) at once, or with hold = 1 only once
 * th_acquirer_finish() tells it to. */
typedef struct th_acquirer {
  zkr_lock *l;
  int timeout_ms, hold;
  int rc, done, release_now, release_rc;
  int64_t returned_ms;
  pthread_t t;
} th_acquirer;
void th_acquirer_start(th_acquirer *a, zkr_lock *l, int timeout_ms, int hold);
/* For th_wait_until: 1 once a's acquire has returned. */
int th_acquirer_done(void *a);
/* Lets a release its hold, joins its thread and returns what its acquire
 * returned; asserts the release succeeded. */
int th_acquirer_finish(th_acquirer *a);

/* A child process that holds something; call it before this process opens
 * any session (a fork of a process with threads cannot start threads under
 * ThreadSanitizer, and is unsafe in general): forks, opens a session with the
 * given timeout (ms; 0 = TH_SESSION_MS), calls take(s, path) (returns a
 * ZKR code), and returns once take succeeded, with the child paused and
 * holding; the caller SIGKILLs or reaps it. Returns the child's pid, or -1
 * if it failed to take (the child is reaped). */
pid_t th_child_holding(int (*take)(zkr_session *s, const char *path), const char *path,
                       int session_timeout_ms);
/* SIGKILLs a child from th_child_holding() and reaps it. */
void th_child_kill(pid_t pid);

/* A raw, connected ZooKeeper handle for inspecting the server, quiet log.
 * Returns NULL on failure. Close with th_raw_close(). */
zhandle_t *th_raw(void);
void th_raw_close(zhandle_t *zh);

/* Expires session s on the server on demand: opens a second handle with the
 * same client id and password, waits until it is connected, closes it.
 * Returns 0 on success. */
int th_expire(zkr_session *s);

/* Same, for a raw client id (used by child processes' ids passed over pipes). */
int th_expire_id(int64_t session_id, const char *passwd16);

/* Returns a fresh path unique to this process and call:
 * "/zkr-test/<tag>-<pid>-<n>". Caller frees. */
char *th_path(const char *tag);

/* Number of nodes below path (descendants, not counting path itself); 0 if
 * path does not exist; -1 on error. */
int th_count_nodes(const char *path);

/* Names of path's children, one per line in a static buffer (for messages). */
const char *th_children(const char *path);

/* Deletes path and everything below it (ignores a missing path). 0 on success. */
int th_delete_tree(const char *path);

/* Calls pred(arg) until it returns non-zero or timeout_ms passes, checking
 * every millisecond. Returns 1 if pred came true, 0 on timeout. */
int th_wait_until(int (*pred)(void *arg), void *arg, int timeout_ms);

/* Waits (up to TH_SETTLE_MS) until path has exactly want nodes below it;
 * returns 1 if it got there. */
int th_await_nodes(const char *path, int want);

/* End of a test's use of path (from th_path): asserts nothing is left
 * below it (waiting up to TH_SETTLE_MS for sessions' nodes to go), removes
 * it and frees the string. */
void th_finish_path(char *path);

/* The test server's "wchp" answer (watched paths, each followed by the
 * sessions watching it) into buf. 0 on success, -1 on error. */
int th_wchp(char *buf, size_t cap);

/* Number of sessions the test server reports watching path (-1 on error),
 * and whether there is any. */
int th_watchers(const char *path);
int th_watched(const char *path);

/* Number of threads of this process (from /proc/self/status). */
int th_thread_count(void);

/* --- time bounds ---------------------------------------------------------
 *
 * No test bound is a fixed number of seconds: each is derived from the
 * session timeout of the sessions involved (t below; TH_SESSION_MS for most)
 * and multiplied by TH_TIME_SCALE. Two kinds, with different aims:
 *
 * - Waits for what is expected to happen (a handoff, a watch set, a node
 *   gone, a connection, a leader): generous, several times the protocol's
 *   own time, so that only a broken test reaches them, never a loaded
 *   machine. Being generous costs nothing when the test passes.
 * - Assertions that something happens within a protocol bound (a takeover
 *   within the session timeout, a timed acquire returning on time, a
 *   resign handing over at once): the bound the library promises plus a
 *   scaled margin for our threads to run, no looser, so that a library
 *   that waited for one more timer or timeout still fails. */

/* Factor for every time bound: 1 in a plain build, 3 under AddressSanitizer
 * or ThreadSanitizer, whose slowdown of our threads (not of the server's)
 * stretches every reaction. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TH_TIME_SCALE 3
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TH_TIME_SCALE 3
#endif
#endif
#ifndef TH_TIME_SCALE
#define TH_TIME_SCALE 1
#endif

/* Expected: something that settles within the session timeout t of the
 * sessions involved (a watch set, a handoff, a node gone after its session
 * closed, a thread exiting, a leader elected, a client reconnecting: each
 * a few round trips, or at worst one timeout). Three timeouts, scaled:
 * 12 s for TH_SESSION_MS in a plain build, 36 s under sanitizers. */
#define TH_SETTLE_FOR(t) (3 * (t)*TH_TIME_SCALE)
#define TH_SETTLE_MS TH_SETTLE_FOR(TH_SESSION_MS)

/* Expected: a connection to the loopback server (the ZooKeeper client
 * gives each attempt a fraction of the session timeout), as a settle. */
#define TH_CONNECT_MS TH_SETTLE_MS

/* Expected: an acquire queued behind n others that each hold briefly and
 * hand over (each handoff a settle). */
#define TH_QUEUE_MS(n) (((n) + 1) * TH_SETTLE_MS)

/* Strict: how late a step may come after the moment the protocol fixes
 * for it (a timed acquire returning after its timeout, a resign handing
 * over, an argument check, a notification after an expiry): a few
 * loopback round trips and a thread wake-up, which take milliseconds. A
 * quarter of TH_SESSION_MS, scaled (1 s plain, 3 s under sanitizers):
 * loose enough for a loaded machine, well short of the timer or session
 * timeout a wrong implementation would wait for. */
#define TH_LATE_MS (TH_SESSION_MS / 4 * TH_TIME_SCALE)

/* Strict: by when the end of a session of timeout t that went silent (its
 * process killed, paused or cut off) has had its effect: the server
 * expires it within t (the library's own clock declares it lost by then
 * too), then the server's expiry tick (tickTime, 500 ms standalone, 200 ms
 * in the ensemble) and the notification with a few round trips, each
 * within TH_LATE_MS. A waiter that missed the notification never gets in. */
#define TH_EXPIRED_BY_MS(t) ((t) + 2 * TH_LATE_MS)

/* CLOCK_MONOTONIC in ms. */
int64_t th_now_ms(void);

#endif
