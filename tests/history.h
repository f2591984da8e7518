/* History recorder, checker and fenced resource for multi-process lock fault
 * tests (Jepsen-style, on one host).
 *
 * A th_hist is an append-only log of events in shared memory: create it
 * before fork() and every child records into the same log. Appending takes
 * one atomic increment, no lock, so any thread of any process may record at
 * any moment, and a process killed half-way through an append leaves at most
 * one unfinished slot, which the checker skips. Timestamps are
 * CLOCK_MONOTONIC nanoseconds, the clock of zkr_monotonic_ns(), which every
 * process of one host shares.
 *
 * Recording discipline: call th_hist_enter() right after acquiring the lock
 * and th_hist_exit() right before releasing it, so that the recorded section
 * covers every moment the participant may touch what the lock protects.
 * A participant is one contender (a process, or a thread with its own lock
 * handle): give each its own small non-negative id. Events that name a fault
 * (th_hist_mark, th_hist_paused) name the participant the fault hit, or -1
 * for a fault that hits nobody in particular (a server restart).
 *
 * th_fence is a resource that remembers the highest fencing token it has
 * seen and refuses writes that carry a smaller one, also shared by fork().
 *
 * All functions are safe from any thread of any process that inherited the
 * object, except th_hist_destroy() and th_fence_destroy(), which must come
 * after every other call on the object has returned. */
#ifndef ZKR_TESTS_HISTORY_H
#define ZKR_TESTS_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Size of an event's label field, terminating NUL included. */
#define TH_HIST_LABEL 24
/* Distinct mark labels whose takeovers the report keeps apart; marks with
 * further labels count only in the overall figure. */
#define TH_HIST_KINDS 8

typedef enum th_hist_type {
  TH_HIST_ENTER = 1,  /* entered the critical section with token */
  TH_HIST_EXIT,       /* left the critical section */
  TH_HIST_WAIT_BEGIN, /* started waiting for the lock */
  TH_HIST_WAIT_END,   /* stopped waiting (acquired, gave up or failed) */
  TH_HIST_MARK,       /* a fault was injected; label says which */
  TH_HIST_PAUSED      /* participant was SIGSTOPped from t_ns to end_ns */
} th_hist_type;

/* One event as stored and as given to th_hist_add(). */
typedef struct th_hist_event {
  int type;                  /* th_hist_type */
  int participant;           /* who, or whom the fault hit; -1 = nobody */
  int64_t token;             /* ENTER and EXIT: the fencing token; else 0 */
  int64_t t_ns;              /* CLOCK_MONOTONIC; PAUSED: start of the pause */
  int64_t end_ns;            /* PAUSED: end of the pause; else 0 */
  char label[TH_HIST_LABEL]; /* MARK: what was injected; else empty */
} th_hist_event;

typedef struct th_hist th_hist;

/* Creates an empty history with room for capacity events in shared
 * anonymous memory; create it before fork() so children share it. Events
 * past capacity are dropped and counted (see th_hist_report.dropped).
 * Returns NULL if capacity is 0 or memory cannot be mapped. Caller owns;
 * free with th_hist_destroy(). */
th_hist *th_hist_create(size_t capacity);

/* Unmaps the history in the calling process (each process that inherited it
 * may destroy its own mapping, or simply exit). Accepts NULL. */
void th_hist_destroy(th_hist *h);

/* CLOCK_MONOTONIC in ns: the clock of every recorded timestamp, for the test
 * driver's own th_hist_paused() windows. */
int64_t th_hist_now_ns(void);

/* Records that participant entered (left) its critical section holding
 * token, timestamped now. */
void th_hist_enter(th_hist *h, int participant, int64_t token);
void th_hist_exit(th_hist *h, int participant, int64_t token);

/* Records that participant started (stopped) waiting for the lock, now.
 * An enter also ends its participant's wait, so wait_end is optional after
 * a successful acquire; it is needed after a timeout or an error. */
void th_hist_wait_begin(th_hist *h, int participant);
void th_hist_wait_end(th_hist *h, int participant);

/* Records a fault injected now into participant (-1: none in particular).
 * label (borrowed, may be NULL) is copied, truncated to TH_HIST_LABEL - 1
 * bytes, with control characters replaced by '?'. */
void th_hist_mark(th_hist *h, int participant, const char *label);

/* Records that participant was stopped (SIGSTOP) from from_ns to to_ns,
 * times taken with th_hist_now_ns() before SIGSTOP and after SIGCONT. */
void th_hist_paused(th_hist *h, int participant, int64_t from_ns, int64_t to_ns);

/* Appends a copy of *ev as it is, timestamps included: for synthetic
 * histories in tests of the checker. Returns 0, or -1 if the history is
 * full (the event is counted as dropped) or an argument is NULL. */
int th_hist_add(th_hist *h, const th_hist_event *ev);

/* Number of events recorded so far (dropped ones not included). */
size_t th_hist_count(const th_hist *h);

typedef struct th_hist_opts {
  int allow_equal;           /* 1: an enter with a token equal to the highest
                                earlier one is no regression */
  int64_t progress_bound_ns; /* a stall longer than this is lost progress;
                                <= 0 disables the lost-progress check */
  int64_t fault_grace_ns;    /* stalls that begin at most this long after a
                                mark are expected and not counted */
} th_hist_opts;

typedef struct th_hist_report {
  size_t events;                 /* complete events examined */
  size_t dropped;                /* appends lost to a full history */
  size_t sections;               /* critical sections (enters) */
  size_t marks;                  /* faults injected */
  size_t pauses;                 /* paused windows */
  size_t unclosed;               /* sections or waits without their end event */
  size_t unmatched_exits;        /* exits with no open section */
  size_t overlaps;               /* violating pairs of overlapping sections */
  size_t fenced_overlaps;        /* overlaps explained by a paused holder */
  size_t token_regressions;      /* enters with a token not above all earlier */
  size_t lost_progress;          /* stalls longer than progress_bound_ns */
  int64_t longest_stall_ns;      /* longest stall, grace or not (0 if none) */
  int64_t max_gap_after_mark_ns; /* longest mark-to-next-enter (takeover) */
  size_t marks_unanswered;       /* marks with no enter after them */
  struct th_hist_takeover {      /* the same, per mark label (fault kind) */
    char label[TH_HIST_LABEL];
    size_t marks;
    int64_t max_gap_ns;
  } takeover[TH_HIST_KINDS];
  size_t kinds;              /* entries of takeover[] used */
  char first_violation[192]; /* description of the first violation found */
} th_hist_report;

/* Checks the history (see history.c for the exact rules) and fills *rep.
 *
 * Events are ordered by timestamp. Each enter opens a section of its
 * participant that the participant's next exit closes. A section without an
 * exit (its process died) ends at the last mark that hit its participant
 * before the participant's next event, else at that next event, else at the
 * end of the history. Two sections of different participants overlap when
 * each begins before the other ends; the overlap is fenced, not a violation,
 * when one side's participant was paused during its section, the pause
 * beginning before the other side entered. Tokens must strictly increase in
 * enter order (opts->allow_equal: may also repeat). A stall is a time when
 * someone waits and nobody holds; one longer than opts->progress_bound_ns is
 * lost progress unless it begins within opts->fault_grace_ns after a mark.
 *
 * opts (borrowed) may be NULL: strict tokens, no lost-progress check.
 * Returns 0 if the history is complete and shows no violation (overlaps,
 * token regressions, lost progress), 1 if it does or events were dropped,
 * -1 if h or rep is NULL or memory runs out. */
int th_hist_check(const th_hist *h, const th_hist_opts *opts, th_hist_report *rep);

/* Prints a one-paragraph human summary of rep to out. */
void th_hist_print(const th_hist_report *rep, FILE *out);

/* Writes the complete events to path, one per line in time order:
 * "<t_ns> <+ms since first> <type> p=<participant> token=<token> ...".
 * Returns 0, or -1 if the file cannot be written or memory runs out. */
int th_hist_dump(const th_hist *h, const char *path);

/* Value of th_fence_highest() before any accepted write. */
#define TH_FENCE_NONE INT64_MIN

typedef struct th_fence th_fence;

/* Creates a fenced resource in shared anonymous memory; create it before
 * fork(). Returns NULL if memory cannot be mapped. Caller owns; free with
 * th_fence_destroy(). */
th_fence *th_fence_create(void);

/* Unmaps the resource in the calling process. Accepts NULL. */
void th_fence_destroy(th_fence *f);

/* Writes with token: accepted if token >= the highest token accepted so far
 * (then it becomes the highest), else rejected and counted. Atomic across
 * processes. Returns 1 if accepted, 0 if rejected. */
int th_fence_write(th_fence *f, int64_t token);

/* Highest token accepted so far, TH_FENCE_NONE if none. */
int64_t th_fence_highest(th_fence *f);

/* Numbers of accepted and rejected writes so far. */
int th_fence_accepted(th_fence *f);
int th_fence_rejected(th_fence *f);

#endif
