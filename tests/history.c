/* History recorder, checker and fenced resource (see history.h).
 *
 * The log is one shared anonymous mapping: a header with an atomic append
 * index and an array of slots. An append claims a slot with fetch_add, fills
 * it and then publishes it with a release store of the slot's ready flag, so
 * the checker never reads a half-written event, even one whose writer was
 * killed between the two steps. Process-shared C11 atomics need to be
 * lock-free (a lock-based fallback would live in each process's memory, not
 * in the mapping), hence the check below. */
#include "config.h"

#include "history.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if ATOMIC_INT_LOCK_FREE != 2 || ATOMIC_LONG_LOCK_FREE != 2 || ATOMIC_LLONG_LOCK_FREE != 2
#error "history.c needs lock-free atomics to share them between processes"
#endif

typedef struct th_hist_slot {
  atomic_int ready; /* 1 once ev is complete */
  th_hist_event ev;
} th_hist_slot;

struct th_hist {
  size_t map_len;        /* length of the mapping, for munmap */
  size_t capacity;       /* number of slots */
  _Atomic uint64_t next; /* next slot to claim; past capacity: dropped */
  th_hist_slot slots[];
};

struct th_fence {
  _Atomic int64_t highest;
  atomic_int accepted;
  atomic_int rejected;
};

/* --- recording ------------------------------------------------------------------ */

int64_t th_hist_now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

th_hist *th_hist_create(size_t capacity) {
  th_hist *h;
  size_t len;

  if (capacity == 0 || capacity > (SIZE_MAX - sizeof(th_hist)) / sizeof(th_hist_slot))
    return NULL;
  len = sizeof(th_hist) + capacity * sizeof(th_hist_slot);
  h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (h == MAP_FAILED)
    return NULL;
  /* The mapping comes zero-filled: every slot starts not ready. */
  h->map_len = len;
  h->capacity = capacity;
  atomic_init(&h->next, 0);
  return h;
}

void th_hist_destroy(th_hist *h) {
  if (h != NULL)
    munmap(h, h->map_len);
}

int th_hist_add(th_hist *h, const th_hist_event *ev) {
  uint64_t i;
  th_hist_slot *s;

  if (h == NULL || ev == NULL)
    return -1;
  i = atomic_fetch_add(&h->next, 1);
  if (i >= h->capacity)
    return -1;
  s = &h->slots[i];
  s->ev = *ev;
  s->ev.label[TH_HIST_LABEL - 1] = '\0';
  atomic_store_explicit(&s->ready, 1, memory_order_release);
  return 0;
}

/* Appends an event of type stamped now. The time is read before the slot is
 * claimed; the checker orders by time, not by slot. */
static void record(th_hist *h, int type, int participant, int64_t token, const char *label) {
  th_hist_event ev;
  size_t i;

  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.participant = participant;
  ev.token = token;
  ev.t_ns = th_hist_now_ns();
  for (i = 0; label != NULL && label[i] != '\0' && i < TH_HIST_LABEL - 1; i++) {
    unsigned char c = (unsigned char)label[i];

    /* One event is one line in a dump. */
    ev.label[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  th_hist_add(h, &ev);
}

void th_hist_enter(th_hist *h, int participant, int64_t token) {
  record(h, TH_HIST_ENTER, participant, token, NULL);
}

void th_hist_exit(th_hist *h, int participant, int64_t token) {
  record(h, TH_HIST_EXIT, participant, token, NULL);
}

void th_hist_wait_begin(th_hist *h, int participant) {
  record(h, TH_HIST_WAIT_BEGIN, participant, 0, NULL);
}

void th_hist_wait_end(th_hist *h, int participant) {
  record(h, TH_HIST_WAIT_END, participant, 0, NULL);
}

void th_hist_mark(th_hist *h, int participant, const char *label) {
  record(h, TH_HIST_MARK, participant, 0, label);
}

void th_hist_paused(th_hist *h, int participant, int64_t from_ns, int64_t to_ns) {
  th_hist_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.type = TH_HIST_PAUSED;
  ev.participant = participant;
  ev.t_ns = from_ns;
  ev.end_ns = to_ns;
  th_hist_add(h, &ev);
}

size_t th_hist_count(const th_hist *h) {
  size_t n, i, ready = 0;
  uint64_t next;

  if (h == NULL)
    return 0;
  next = atomic_load((_Atomic uint64_t *)&h->next);
  n = next < h->capacity ? (size_t)next : h->capacity;
  for (i = 0; i < n; i++)
    ready += atomic_load_explicit((atomic_int *)&h->slots[i].ready, memory_order_acquire) == 1;
  return ready;
}

/* --- reading -------------------------------------------------------------------- */

typedef struct item {
  th_hist_event ev;
  size_t seq; /* slot number: breaks ties of equal timestamps */
} item;

static int item_cmp(const void *a, const void *b) {
  const item *x = a, *y = b;

  if (x->ev.t_ns != y->ev.t_ns)
    return x->ev.t_ns < y->ev.t_ns ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Copies the complete events out of the shared log, sorted by time. The
 * const casts are for the atomic loads only: nothing is written. */
static int collect(const th_hist *h, item **out, size_t *count, size_t *dropped) {
  uint64_t next = atomic_load((_Atomic uint64_t *)&h->next);
  size_t n = next < h->capacity ? (size_t)next : h->capacity;
  size_t i, k = 0;
  item *v;

  *dropped = next > h->capacity ? (size_t)(next - h->capacity) : 0;
  v = malloc((n > 0 ? n : 1) * sizeof(*v));
  if (v == NULL)
    return -1;
  for (i = 0; i < n; i++) {
    if (atomic_load_explicit((atomic_int *)&h->slots[i].ready, memory_order_acquire) != 1)
      continue;
    v[k].ev = h->slots[i].ev;
    v[k].seq = i;
    k++;
  }
  qsort(v, k, sizeof(*v), item_cmp);
  *out = v;
  *count = k;
  return 0;
}

static const char *type_name(int type) {
  switch (type) {
  case TH_HIST_ENTER:
    return "enter";
  case TH_HIST_EXIT:
    return "exit";
  case TH_HIST_WAIT_BEGIN:
    return "wait_begin";
  case TH_HIST_WAIT_END:
    return "wait_end";
  case TH_HIST_MARK:
    return "mark";
  case TH_HIST_PAUSED:
    return "paused";
  default:
    return "unknown";
  }
}

/* --- checking ------------------------------------------------------------------- */

typedef struct section {
  int participant;
  int64_t token;
  int64_t enter_ns;
  int64_t exit_ns;
} section;

typedef struct span {
  int participant;
  int64_t from_ns;
  int64_t to_ns;
} span;

/* What the sweep knows about one participant. */
typedef struct pstate {
  int id;
  long open_section; /* index into sections, -1 if none */
  int waiting;       /* 1 while a wait is open */
  int64_t wait_from_ns;
  int has_mark;         /* a mark hit it since its last enter or wait_begin */
  int64_t last_mark_ns; /* the last such mark */
} pstate;

/* A change of the number of holders or waiters, for the stall sweep. */
typedef struct point {
  int64_t t_ns;
  int held;
  int waiting;
} point;

typedef struct checker {
  const th_hist_opts *opts;
  th_hist_report *rep;
  item *ev;
  size_t nev;
  int64_t end_ns; /* last moment of the history */
  pstate *ps;
  size_t nps;
  section *sec;
  size_t nsec;
  span *waits;
  size_t nwaits;
  span *pauses;
  size_t npauses;
  int64_t *marks;
  size_t nmarks;
} checker;

static int int_cmp(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;

  return x < y ? -1 : x > y;
}

static int point_cmp(const void *a, const void *b) {
  const point *x = a, *y = b;

  return x->t_ns < y->t_ns ? -1 : x->t_ns > y->t_ns;
}

static pstate *lookup(checker *c, int id) {
  size_t lo = 0, hi = c->nps;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (c->ps[mid].id == id)
      return &c->ps[mid];
    if (c->ps[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL; /* not reached: every id was entered */
}

/* Describes the first violation found, for assertion messages. */
static void violation(checker *c, const char *fmt, ...) {
  va_list ap;

  if (c->rep->first_violation[0] != '\0')
    return;
  va_start(ap, fmt);
  vsnprintf(c->rep->first_violation, sizeof(c->rep->first_violation), fmt, ap);
  va_end(ap);
}

/* The participant table: the distinct ids, sorted. */
static int build_participants(checker *c) {
  int *ids = malloc((c->nev > 0 ? c->nev : 1) * sizeof(*ids));
  size_t i, n = 0;

  if (ids == NULL)
    return -1;
  for (i = 0; i < c->nev; i++)
    ids[i] = c->ev[i].ev.participant;
  qsort(ids, c->nev, sizeof(*ids), int_cmp);
  c->ps = calloc(c->nev > 0 ? c->nev : 1, sizeof(*c->ps));
  if (c->ps == NULL) {
    free(ids);
    return -1;
  }
  for (i = 0; i < c->nev; i++) {
    if (n > 0 && c->ps[n - 1].id == ids[i])
      continue;
    c->ps[n].id = ids[i];
    c->ps[n].open_section = -1;
    n++;
  }
  c->nps = n;
  free(ids);
  return 0;
}

/* Where an open section or wait of p ends when the event that should have
 * closed it never came: at the last fault that hit p (its kill), else at
 * the moment the sweep noticed (p's next event, or the end). */
static int64_t unclosed_end(const pstate *p, int64_t noticed_ns) {
  return p->has_mark ? p->last_mark_ns : noticed_ns;
}

static void close_section(checker *c, pstate *p, int64_t end_ns) {
  c->sec[p->open_section].exit_ns = end_ns;
  p->open_section = -1;
}

static void close_wait(checker *c, pstate *p, int64_t end_ns) {
  span *w = &c->waits[c->nwaits++];

  w->participant = p->id;
  w->from_ns = p->wait_from_ns;
  w->to_ns = end_ns;
  p->waiting = 0;
}

/* Pass 1: turns the events into sections, waits, pauses and marks. */
static void build_spans(checker *c) {
  size_t i;

  for (i = 0; i < c->nev; i++) {
    const th_hist_event *e = &c->ev[i].ev;
    pstate *p = lookup(c, e->participant);

    switch (e->type) {
    case TH_HIST_ENTER:
      if (p->open_section >= 0) {
        c->rep->unclosed++;
        close_section(c, p, unclosed_end(p, e->t_ns));
      }
      if (p->waiting)
        close_wait(c, p, e->t_ns);
      c->sec[c->nsec].participant = e->participant;
      c->sec[c->nsec].token = e->token;
      c->sec[c->nsec].enter_ns = e->t_ns;
      c->sec[c->nsec].exit_ns = e->t_ns;
      p->open_section = (long)c->nsec++;
      p->has_mark = 0;
      break;
    case TH_HIST_EXIT:
      if (p->open_section >= 0)
        close_section(c, p, e->t_ns);
      else
        c->rep->unmatched_exits++;
      break;
    case TH_HIST_WAIT_BEGIN:
      /* A new attempt while holding or waiting: the process that held or
       * waited is gone (or forgot its exit). */
      if (p->open_section >= 0) {
        c->rep->unclosed++;
        close_section(c, p, unclosed_end(p, e->t_ns));
      }
      if (p->waiting) {
        c->rep->unclosed++;
        close_wait(c, p, unclosed_end(p, e->t_ns));
      }
      p->waiting = 1;
      p->wait_from_ns = e->t_ns;
      p->has_mark = 0;
      break;
    case TH_HIST_WAIT_END:
      if (p->waiting)
        close_wait(c, p, e->t_ns);
      break;
    case TH_HIST_MARK:
      c->marks[c->nmarks++] = e->t_ns;
      p->last_mark_ns = e->t_ns;
      p->has_mark = 1;
      break;
    case TH_HIST_PAUSED:
      c->pauses[c->npauses].participant = e->participant;
      c->pauses[c->npauses].from_ns = e->t_ns;
      c->pauses[c->npauses].to_ns = e->end_ns;
      c->npauses++;
      break;
    default:
      break;
    }
  }
  for (i = 0; i < c->nps; i++) {
    pstate *p = &c->ps[i];

    if (p->open_section >= 0) {
      c->rep->unclosed++;
      close_section(c, p, unclosed_end(p, c->end_ns));
    }
    if (p->waiting) {
      c->rep->unclosed++;
      close_wait(c, p, unclosed_end(p, c->end_ns));
    }
  }
  c->rep->sections = c->nsec;
  c->rep->marks = c->nmarks;
  c->rep->pauses = c->npauses;
}

/* x's participant was stopped during x, the stop beginning before y entered:
 * y's entry is the takeover from a paused holder, which fencing has to stop,
 * not a lock bug. Intersection rather than containment: the driver reads
 * from_ns just before SIGSTOP, so a holder that entered in between still
 * counts as paused in its section. */
static int paused_before(const checker *c, const section *x, const section *y) {
  size_t i;

  for (i = 0; i < c->npauses; i++) {
    const span *p = &c->pauses[i];

    if (p->participant == x->participant && p->from_ns < x->exit_ns && p->to_ns > x->enter_ns &&
        p->from_ns <= y->enter_ns)
      return 1;
  }
  return 0;
}

/* Pass 2: overlapping pairs. Sections are in enter order; the active list
 * holds those that have not ended by the current enter. */
static int check_overlaps(checker *c) {
  size_t *active = malloc((c->nsec > 0 ? c->nsec : 1) * sizeof(*active));
  size_t nactive = 0, i, j;

  if (active == NULL)
    return -1;
  for (i = 0; i < c->nsec; i++) {
    const section *s = &c->sec[i];
    size_t kept = 0;

    for (j = 0; j < nactive; j++) {
      const section *a = &c->sec[active[j]];

      if (a->exit_ns <= s->enter_ns)
        continue;
      active[kept++] = active[j];
      if (a->participant == s->participant || !(a->enter_ns < s->exit_ns))
        continue;
      if (paused_before(c, a, s) || paused_before(c, s, a)) {
        c->rep->fenced_overlaps++;
      } else {
        c->rep->overlaps++;
        violation(c, "overlap of p%d (entered %lld ns) and p%d (entered %lld ns)", a->participant,
                  (long long)a->enter_ns, s->participant, (long long)s->enter_ns);
      }
    }
    nactive = kept;
    active[nactive++] = i;
  }
  free(active);
  return 0;
}

/* Pass 3: tokens strictly increase (or do not decrease) in enter order. */
static void check_tokens(checker *c) {
  size_t i;
  int64_t highest = 0;
  int highest_p = 0;
  int allow_equal = c->opts->allow_equal;

  for (i = 0; i < c->nsec; i++) {
    const section *s = &c->sec[i];

    if (i > 0 && (s->token < highest || (s->token == highest && !allow_equal))) {
      c->rep->token_regressions++;
      violation(c, "token regression: p%d entered at %lld ns with %lld after p%d with %lld", s->participant,
                (long long)s->enter_ns, (long long)s->token, highest_p, (long long)highest);
      continue;
    }
    highest = s->token;
    highest_p = s->participant;
  }
}

/* Pass 4: stalls, times when someone waits and nobody holds. */
static int check_progress(checker *c) {
  size_t npoints = 2 * (c->nsec + c->nwaits), k = 0, i, m = 0;
  point *pts = malloc((npoints > 0 ? npoints : 1) * sizeof(*pts));
  int held = 0, waiting = 0, stalled = 0;
  int64_t stall_from = 0;

  if (pts == NULL)
    return -1;
  for (i = 0; i < c->nsec; i++) {
    pts[k++] = (point){c->sec[i].enter_ns, 1, 0};
    pts[k++] = (point){c->sec[i].exit_ns, -1, 0};
  }
  for (i = 0; i < c->nwaits; i++) {
    pts[k++] = (point){c->waits[i].from_ns, 0, 1};
    pts[k++] = (point){c->waits[i].to_ns, 0, -1};
  }
  qsort(pts, k, sizeof(*pts), point_cmp);
  /* Every span ends at a point of its own (open ones at the end of the
   * history), so after the last point nobody holds or waits and any stall
   * has ended. */
  i = 0;
  while (i < k) {
    /* All changes at one instant apply together: a hand-over within one
     * nanosecond is no stall. */
    int64_t t = pts[i].t_ns;
    int now_stalled;

    while (i < k && pts[i].t_ns == t) {
      held += pts[i].held;
      waiting += pts[i].waiting;
      i++;
    }
    now_stalled = held == 0 && waiting > 0;
    if (stalled && !now_stalled) {
      int64_t len = t - stall_from;
      int excused;

      if (len > c->rep->longest_stall_ns)
        c->rep->longest_stall_ns = len;
      /* The last mark at or before the stall began. */
      while (m < c->nmarks && c->marks[m] <= stall_from)
        m++;
      excused = m > 0 && stall_from - c->marks[m - 1] <= c->opts->fault_grace_ns;
      if (c->opts->progress_bound_ns > 0 && len > c->opts->progress_bound_ns && !excused) {
        c->rep->lost_progress++;
        violation(c, "lost progress: nobody held while someone waited from %lld ns to %lld ns",
                  (long long)stall_from, (long long)t);
      }
    }
    if (!stalled && now_stalled)
      stall_from = t;
    stalled = now_stalled;
  }
  free(pts);
  return 0;
}

/* The report's entry for a mark label: found, or added while there is
 * room (NULL when not). */
static struct th_hist_takeover *takeover_of(th_hist_report *rep, const char *label) {
  size_t i;

  for (i = 0; i < rep->kinds; i++)
    if (strcmp(rep->takeover[i].label, label) == 0)
      return &rep->takeover[i];
  if (rep->kinds == TH_HIST_KINDS)
    return NULL;
  snprintf(rep->takeover[rep->kinds].label, TH_HIST_LABEL, "%s", label);
  return &rep->takeover[rep->kinds++];
}

/* Pass 5: from each mark to the next enter, overall and per label. */
static void check_takeover(checker *c) {
  size_t i;
  int have_next = 0;
  int64_t next_enter = 0;

  for (i = c->nev; i-- > 0;) {
    const th_hist_event *e = &c->ev[i].ev;

    if (e->type == TH_HIST_ENTER) {
      next_enter = e->t_ns;
      have_next = 1;
    } else if (e->type == TH_HIST_MARK) {
      struct th_hist_takeover *k = takeover_of(c->rep, e->label);

      if (k != NULL)
        k->marks++;
      if (!have_next) {
        c->rep->marks_unanswered++;
        continue;
      }
      if (next_enter - e->t_ns > c->rep->max_gap_after_mark_ns)
        c->rep->max_gap_after_mark_ns = next_enter - e->t_ns;
      if (k != NULL && next_enter - e->t_ns > k->max_gap_ns)
        k->max_gap_ns = next_enter - e->t_ns;
    }
  }
}

int th_hist_check(const th_hist *h, const th_hist_opts *opts, th_hist_report *rep) {
  static const th_hist_opts defaults = {0, 0, 0};
  checker c;
  size_t i, dropped;
  int rc = -1;

  if (h == NULL || rep == NULL)
    return -1;
  memset(rep, 0, sizeof(*rep));
  memset(&c, 0, sizeof(c));
  c.opts = opts != NULL ? opts : &defaults;
  c.rep = rep;
  if (collect(h, &c.ev, &c.nev, &dropped) != 0)
    return -1;
  rep->events = c.nev;
  rep->dropped = dropped;
  for (i = 0; i < c.nev; i++) {
    const th_hist_event *e = &c.ev[i].ev;

    if (e->t_ns > c.end_ns || i == 0)
      c.end_ns = e->t_ns;
    if (e->type == TH_HIST_PAUSED && e->end_ns > c.end_ns)
      c.end_ns = e->end_ns;
  }
  /* Every kind of span gets at most one entry per event. */
  if (build_participants(&c) != 0)
    goto out;
  c.sec = malloc((c.nev > 0 ? c.nev : 1) * sizeof(*c.sec));
  c.waits = malloc((c.nev > 0 ? c.nev : 1) * sizeof(*c.waits));
  c.pauses = malloc((c.nev > 0 ? c.nev : 1) * sizeof(*c.pauses));
  c.marks = malloc((c.nev > 0 ? c.nev : 1) * sizeof(*c.marks));
  if (c.sec == NULL || c.waits == NULL || c.pauses == NULL || c.marks == NULL)
    goto out;
  build_spans(&c);
  if (check_overlaps(&c) != 0)
    goto out;
  check_tokens(&c);
  if (check_progress(&c) != 0)
    goto out;
  check_takeover(&c);
  rc =
      (rep->overlaps > 0 || rep->token_regressions > 0 || rep->lost_progress > 0 || rep->dropped > 0) ? 1 : 0;
out:
  free(c.ev);
  free(c.ps);
  free(c.sec);
  free(c.waits);
  free(c.pauses);
  free(c.marks);
  return rc;
}

void th_hist_print(const th_hist_report *rep, FILE *out) {
  if (rep == NULL || out == NULL)
    return;
  fprintf(out,
          "history: %zu events (%zu dropped), %zu acquisitions, %zu faults injected, %zu pauses; "
          "%zu overlaps, %zu fenced overlaps (paused holders), %zu token regressions, "
          "%zu lost progress (longest stall %.3f ms); max takeover time after a fault %.3f ms "
          "(%zu faults without a later acquisition); %zu unclosed, %zu unmatched exits.",
          rep->events, rep->dropped, rep->sections, rep->marks, rep->pauses, rep->overlaps,
          rep->fenced_overlaps, rep->token_regressions, rep->lost_progress,
          (double)rep->longest_stall_ns / 1e6, (double)rep->max_gap_after_mark_ns / 1e6,
          rep->marks_unanswered, rep->unclosed, rep->unmatched_exits);
  if (rep->first_violation[0] != '\0')
    fprintf(out, " First violation: %s.", rep->first_violation);
  fputc('\n', out);
}

int th_hist_dump(const th_hist *h, const char *path) {
  item *v;
  size_t n, dropped, i;
  FILE *f;
  int rc = 0;

  if (h == NULL || path == NULL)
    return -1;
  if (collect(h, &v, &n, &dropped) != 0)
    return -1;
  f = fopen(path, "w");
  if (f == NULL) {
    free(v);
    return -1;
  }
  for (i = 0; i < n; i++) {
    const th_hist_event *e = &v[i].ev;

    fprintf(f, "%lld +%.3fms %s p=%d token=%lld", (long long)e->t_ns, (double)(e->t_ns - v[0].ev.t_ns) / 1e6,
            type_name(e->type), e->participant, (long long)e->token);
    if (e->type == TH_HIST_PAUSED)
      fprintf(f, " until=%lld (%.3fms)", (long long)e->end_ns, (double)(e->end_ns - e->t_ns) / 1e6);
    if (e->type == TH_HIST_MARK)
      fprintf(f, " label=%s", e->label);
    fputc('\n', f);
  }
  if (dropped > 0)
    fprintf(f, "# %zu events dropped: history full\n", dropped);
  if (ferror(f))
    rc = -1;
  if (fclose(f) != 0)
    rc = -1;
  free(v);
  return rc;
}

/* --- fenced resource ------------------------------------------------------------ */

th_fence *th_fence_create(void) {
  th_fence *f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

  if (f == MAP_FAILED)
    return NULL;
  atomic_init(&f->highest, TH_FENCE_NONE);
  atomic_init(&f->accepted, 0);
  atomic_init(&f->rejected, 0);
  return f;
}

void th_fence_destroy(th_fence *f) {
  if (f != NULL)
    munmap(f, sizeof(*f));
}

int th_fence_write(th_fence *f, int64_t token) {
  int64_t cur = atomic_load(&f->highest);

  /* Raise highest to token unless someone raised it past token meanwhile; a
   * failed exchange reloads cur, and the comparison is made again. */
  for (;;) {
    if (token < cur) {
      atomic_fetch_add(&f->rejected, 1);
      return 0;
    }
    if (token == cur || atomic_compare_exchange_weak(&f->highest, &cur, token))
      break;
  }
  atomic_fetch_add(&f->accepted, 1);
  return 1;
}

int64_t th_fence_highest(th_fence *f) {
  return atomic_load(&f->highest);
}

int th_fence_accepted(th_fence *f) {
  return atomic_load(&f->accepted);
}

int th_fence_rejected(th_fence *f) {
  return atomic_load(&f->rejected);
}
