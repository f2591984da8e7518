/* The fault proxy (see proxy.h).
 *
 * One thread runs every connection with poll(). The thread holds the mutex
 * except while it sleeps in poll(), so control calls and counters need no
 * finer locking, and every socket call is non-blocking. A control call
 * changes the shared state, wakes the thread through a self-pipe and waits
 * until the thread acknowledges a sequence number at the top of its loop:
 * the thread rebuilds its poll set after that point, so from then on it
 * acts on the new state.
 *
 * Per connection both streams are parsed just far enough to know where
 * each frame ends, the requests' xid and opcode and the replies' xid; the
 * bytes themselves are forwarded as they come, never held back for a whole
 * frame.
 *
 * A cut closes the client as soon as the cut request is forwarded, but
 * keeps the server's side open until the server has replied to it. The
 * server (3.6 and later) silently drops a queued request whose connection
 * has closed (its "stale request" check), so closing both sides at once
 * would leave it to a race whether the request is executed. For the same
 * reason no new connection is accepted meanwhile: the client's reconnection
 * to its session would make the server close the old connection. */
#include "config.h"

#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Bytes buffered per direction and connection. */
#define TP_BUF 65536
/* How long a cut connection waits for the server's reply at most. */
#define TP_DRAIN_MS 5000
/* Distinct opcodes counted separately (ZooKeeper has about 30). */
#define TP_MAX_OPS 128

typedef struct tp_buf {
  unsigned char data[TP_BUF];
  size_t start, end;
} tp_buf;

/* Where a parser is in a stream of frames. */
typedef struct tp_framing {
  int lost;         /* a nonsense length: stop parsing, keep forwarding */
  int seen_connect; /* the first frame (ConnectRequest/Response, no header) */
  unsigned char hdr[12];
  size_t hdr_len;
  uint32_t skip; /* payload bytes of the current frame still to pass */
} tp_framing;

typedef struct tp_conn {
  struct tp_conn *next;
  int cfd;          /* client socket; -1 once closed */
  int ufd;          /* upstream socket; -1 once closed */
  int connecting;   /* non-blocking connect to upstream in progress */
  int c_eof;        /* the client ended its stream */
  int u_eof;        /* the server ended its stream */
  int u_shut;       /* our write side to the server is shut down */
  int cut;          /* the cut fired on this connection */
  int draining;     /* cut frame forwarded: waiting for the server's reply */
  int replied;      /* the server replied to the cut request */
  int dead;         /* closed; freed after the current loop iteration */
  int64_t cut_end;  /* client stream offset just past the cut frame */
  int32_t cut_xid;  /* xid of the cut request */
  int cut_connect;  /* the cut request is the ConnectRequest */
  int64_t deadline; /* draining ends at this time (ms) at the latest */
  int64_t c_in;     /* bytes read from the client */
  int64_t c_out;    /* bytes sent to the server */
  /* Framing of the client stream (requests) and server stream (replies). */
  tp_framing req, rep;
  /* Indexes into the poll set; -1 when not polled. */
  int cidx, uidx;
  tp_buf c2s, s2c;
} tp_conn;

typedef struct tp_count {
  int op, n;
} tp_count;

struct tp_proxy {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int lfd;
  int wake_r, wake_w;
  int port;
  char hosts[32];
  struct sockaddr_storage up;
  socklen_t up_len;
  tp_conn *conns;
  struct pollfd *pfds;
  size_t pfd_cap;
  /* Control state, under mu. */
  int stop;
  int loop_done;
  int stalled;
  int refusing;
  int drop_req;
  uint64_t req_seq, ack_seq;
  int cut_op, cut_left;
  int stall_op, stall_left; /* tp_stall_at() */
  /* Counters, under mu. */
  int cuts_fired;
  int connections;
  int total;
  tp_count ops[TP_MAX_OPS];
  int nops;
};

/* --- small helpers ------------------------------------------------------------ */

static int64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Non-blocking and close-on-exec (tests fork helper processes). */
static int set_fd_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);

  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -1;
  fl = fcntl(fd, F_GETFD);
  if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
    return -1;
  return 0;
}

/* ZooKeeper frames are small: without TCP_NODELAY, Nagle and delayed ACKs
 * would add tens of milliseconds per hop. */
static void set_nodelay(int fd) {
  int one = 1;

  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static void wake(tp_proxy *p) {
  char c = 1;
  ssize_t n;

  /* A full pipe already holds a wake-up. */
  do {
    n = write(p->wake_w, &c, 1);
  } while (n < 0 && errno == EINTR);
}

static void drain_wake(tp_proxy *p) {
  char buf[64];

  while (read(p->wake_r, buf, sizeof(buf)) > 0)
    ;
}

static int buf_len(const tp_buf *b) {
  return (int)(b->end - b->start);
}

/* --- counting and cutting -------------------------------------------------------- */

static void count_op(tp_proxy *p, int op) {
  int i;

  if (op != TP_CONNECT_OP)
    p->total++;
  for (i = 0; i < p->nops; i++) {
    if (p->ops[i].op == op) {
      p->ops[i].n++;
      return;
    }
  }
  if (p->nops < TP_MAX_OPS) {
    p->ops[p->nops].op = op;
    p->ops[p->nops].n = 1;
    p->nops++;
  }
}

/* A request's header has arrived; its frame ends at client stream offset
 * frame_end. */
static void on_request(tp_proxy *p, tp_conn *c, int op, int32_t xid, int64_t frame_end) {
  count_op(p, op);
  /* Stalled from here: this request, read but not yet forwarded, waits
   * (handle_conn forwards nothing while stalled). */
  if (p->stall_left > 0 && p->stall_op == op && --p->stall_left == 0)
    p->stalled = 1;
  if (p->cut_left > 0 && p->cut_op == op) {
    p->cut_left--;
    if (p->cut_left == 0) {
      c->cut = 1;
      c->cut_end = frame_end;
      c->cut_xid = xid;
      c->cut_connect = op == TP_CONNECT_OP;
      /* Nothing more reaches the client, not even replies already read. */
      c->s2c.start = c->s2c.end = 0;
    }
  }
}

/* A reply's header has arrived (connect: the ConnectResponse). */
static void on_reply(tp_conn *c, int connect, int32_t xid) {
  if (c->cut && (c->cut_connect ? connect : !connect && xid == c->cut_xid))
    c->replied = 1;
}

/* Follows the request framing over n new client bytes that start at client
 * stream offset base. Stops at a cut: bytes past the cut frame are never
 * forwarded, so their requests are not counted either. */
static void parse_requests(tp_proxy *p, tp_conn *c, const unsigned char *data, size_t n, int64_t base) {
  tp_framing *f = &c->req;
  size_t i = 0;

  while (i < n && !c->cut && !f->lost) {
    uint32_t len;

    if (f->skip > 0) {
      size_t k = n - i < f->skip ? n - i : f->skip;

      f->skip -= (uint32_t)k;
      i += k;
      continue;
    }
    f->hdr[f->hdr_len++] = data[i++];
    if (f->hdr_len < 4)
      continue;
    len = be32(f->hdr);
    if (len > 0x7fffffffu) {
      f->lost = 1;
    } else if (!f->seen_connect) {
      /* The ConnectRequest: length, then a body without xid or type. */
      f->seen_connect = 1;
      f->hdr_len = 0;
      f->skip = len;
      on_request(p, c, TP_CONNECT_OP, 0, base + (int64_t)i + len);
    } else if (len < 8) {
      /* Too short for a header: not a request, just pass it on. */
      f->hdr_len = 0;
      f->skip = len;
    } else if (f->hdr_len == 12) {
      f->hdr_len = 0;
      f->skip = len - 8;
      on_request(p, c, (int32_t)be32(f->hdr + 8), (int32_t)be32(f->hdr + 4), base + (int64_t)i + f->skip);
    }
  }
}

/* Follows the reply framing over n new server bytes: a reply starts with
 * its request's xid. */
static void parse_replies(tp_conn *c, const unsigned char *data, size_t n) {
  tp_framing *f = &c->rep;
  size_t i = 0;

  while (i < n && !f->lost) {
    uint32_t len;

    if (f->skip > 0) {
      size_t k = n - i < f->skip ? n - i : f->skip;

      f->skip -= (uint32_t)k;
      i += k;
      continue;
    }
    f->hdr[f->hdr_len++] = data[i++];
    if (f->hdr_len < 4)
      continue;
    len = be32(f->hdr);
    if (len > 0x7fffffffu) {
      f->lost = 1;
    } else if (!f->seen_connect) {
      f->seen_connect = 1;
      f->hdr_len = 0;
      f->skip = len;
      on_reply(c, 1, 0);
    } else if (len < 4) {
      f->hdr_len = 0;
      f->skip = len;
    } else if (f->hdr_len == 8) {
      f->hdr_len = 0;
      f->skip = len - 4;
      on_reply(c, 0, (int32_t)be32(f->hdr + 4));
    }
  }
}

/* --- connections ------------------------------------------------------------------ */

static void close_conn(tp_proxy *p, tp_conn *c) {
  if (c->dead)
    return;
  if (c->cfd >= 0)
    close(c->cfd);
  if (c->ufd >= 0)
    close(c->ufd);
  c->cfd = c->ufd = -1;
  c->dead = 1;
  /* A cut counts once its frame went out, however the connection ends. */
  if (c->draining)
    p->cuts_fired++;
}

static void close_all(tp_proxy *p) {
  tp_conn *c;

  for (c = p->conns; c != NULL; c = c->next)
    close_conn(p, c);
}

static void reap(tp_proxy *p) {
  tp_conn **pp = &p->conns;

  while (*pp != NULL) {
    tp_conn *c = *pp;

    if (c->dead) {
      *pp = c->next;
      free(c);
    } else {
      pp = &c->next;
    }
  }
}

/* Sends what b holds. Returns 0 (all sent or the socket is full), -1 on a
 * broken connection. */
static int flush_buf(int fd, tp_buf *b, int64_t *sent) {
  while (b->end > b->start) {
    ssize_t n = send(fd, b->data + b->start, b->end - b->start, MSG_NOSIGNAL);

    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    b->start += (size_t)n;
    if (sent != NULL)
      *sent += n;
  }
  b->start = b->end = 0;
  return 0;
}

/* Makes room at the end of b. */
static size_t buf_space(tp_buf *b) {
  if (b->start > 0) {
    memmove(b->data, b->data + b->start, b->end - b->start);
    b->end -= b->start;
    b->start = 0;
  }
  return TP_BUF - b->end;
}

static int flush_up(tp_conn *c) {
  if (c->connecting || c->ufd < 0)
    return 0;
  return flush_buf(c->ufd, &c->c2s, &c->c_out);
}

static int flush_down(tp_conn *c) {
  if (c->cut || c->cfd < 0)
    return 0;
  return flush_buf(c->cfd, &c->s2c, NULL);
}

/* Reads what the client sent. Returns -1 on a broken connection. */
static int read_client(tp_proxy *p, tp_conn *c) {
  for (;;) {
    size_t room = buf_space(&c->c2s);
    ssize_t n;

    /* Past the cut frame nothing is read: it is never forwarded. */
    if (c->cut && (int64_t)room > c->cut_end - c->c_in)
      room = (size_t)(c->cut_end - c->c_in);
    if (room == 0)
      return 0;
    n = recv(c->cfd, c->c2s.data + c->c2s.end, room, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    if (n == 0) {
      c->c_eof = 1;
      return 0;
    }
    parse_requests(p, c, c->c2s.data + c->c2s.end, (size_t)n, c->c_in);
    /* The cut may have fired inside these bytes: drop what follows it. */
    if (c->cut && c->c_in + n > c->cut_end)
      n = (ssize_t)(c->cut_end - c->c_in);
    c->c2s.end += (size_t)n;
    c->c_in += n;
  }
}

/* Reads what the server sent; discarded once the connection is cut.
 * Returns -1 on a broken connection. */
static int read_upstream(tp_conn *c) {
  for (;;) {
    unsigned char scratch[4096];
    size_t room = c->cut ? sizeof(scratch) : buf_space(&c->s2c);
    unsigned char *dst = c->cut ? scratch : c->s2c.data + c->s2c.end;
    ssize_t n;

    if (room == 0)
      return 0;
    n = recv(c->ufd, dst, room, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    if (n == 0) {
      c->u_eof = 1;
      return 0;
    }
    parse_replies(c, dst, (size_t)n);
    if (!c->cut)
      c->s2c.end += (size_t)n;
  }
}

static int finish_connect(tp_conn *c) {
  int err = 0;
  socklen_t len = sizeof(err);

  if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
    return -1;
  c->connecting = 0;
  return 0;
}

/* Moves a connection on after I/O: detaches the client once the cut frame
 * is out and closes the server once it replied; half-closes and closes at
 * end of stream. */
static void advance(tp_proxy *p, tp_conn *c) {
  if (c->dead)
    return;
  if (c->cut) {
    if (!c->draining) {
      if (c->c_out >= c->cut_end && !c->connecting) {
        /* The server has the whole request: the client loses the
         * connection now, the server keeps it until it has replied. */
        close(c->cfd);
        c->cfd = -1;
        c->draining = 1;
        c->deadline = now_ms() + TP_DRAIN_MS;
      } else if ((c->c_eof && c->c_in < c->cut_end) || c->u_eof) {
        /* The client or the server left before the frame was through. */
        close_conn(p, c);
        return;
      }
    }
    if (c->draining && (c->replied || c->u_eof))
      close_conn(p, c);
    return;
  }
  if (c->c_eof && buf_len(&c->c2s) == 0 && !c->connecting && !c->u_shut) {
    shutdown(c->ufd, SHUT_WR);
    c->u_shut = 1;
  }
  /* The server is gone: once the client has all it sent, so is the client. */
  if (c->u_eof && buf_len(&c->s2c) == 0)
    close_conn(p, c);
}

static void handle_conn(tp_proxy *p, tp_conn *c) {
  short cre = c->cidx >= 0 ? p->pfds[c->cidx].revents : 0;
  short ure = c->uidx >= 0 ? p->pfds[c->uidx].revents : 0;

  if (c->draining) {
    if (ure != 0 && read_upstream(c) < 0)
      close_conn(p, c);
    advance(p, c);
    return;
  }
  if (p->stalled)
    return; /* a tp_stall_at() fired while this round was handled */
  if (ure != 0 && c->connecting) {
    if (finish_connect(c) < 0) {
      close_conn(p, c);
      return;
    }
    ure = 0;
    if (flush_up(c) < 0) {
      close_conn(p, c);
      return;
    }
  }
  if (ure != 0) {
    if (flush_up(c) < 0 || read_upstream(c) < 0 || flush_down(c) < 0) {
      close_conn(p, c);
      return;
    }
  }
  if (cre != 0) {
    /* Forward at once rather than after another round of poll (unless the
     * request just read stalled the proxy). */
    if (read_client(p, c) < 0 || (!p->stalled && (flush_up(c) < 0 || flush_down(c) < 0))) {
      close_conn(p, c);
      return;
    }
  }
  advance(p, c);
}

/* Accepts and closes what waits in the listen backlog. */
static void close_backlog(tp_proxy *p) {
  for (;;) {
    int fd = accept(p->lfd, NULL, NULL);

    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      return;
    }
    close(fd);
  }
}

static void accept_all(tp_proxy *p) {
  for (;;) {
    int cfd, ufd;
    tp_conn *c;

    cfd = accept(p->lfd, NULL, NULL);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      return;
    }
    if (p->refusing || set_fd_flags(cfd) != 0) {
      close(cfd);
      continue;
    }
    set_nodelay(cfd);
    ufd = socket(p->up.ss_family, SOCK_STREAM, 0);
    if (ufd < 0) {
      close(cfd);
      continue;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || set_fd_flags(ufd) != 0) {
      free(c);
      close(cfd);
      close(ufd);
      continue;
    }
    set_nodelay(ufd);
    c->cfd = cfd;
    c->ufd = ufd;
    c->cut_end = -1;
    c->cidx = c->uidx = -1;
    if (connect(ufd, (struct sockaddr *)&p->up, p->up_len) != 0) {
      if (errno != EINPROGRESS && errno != EINTR) {
        /* The server is down: the client sees its connection closed. */
        close(cfd);
        close(ufd);
        free(c);
        continue;
      }
      c->connecting = 1;
    }
    c->next = p->conns;
    p->conns = c;
    p->connections++;
  }
}

/* --- the loop ------------------------------------------------------------------------- */

static int add_pfd(tp_proxy *p, size_t *n, int fd, short events) {
  if (fd < 0 || events == 0)
    return -1;
  p->pfds[*n].fd = fd;
  p->pfds[*n].events = events;
  p->pfds[*n].revents = 0;
  return (int)(*n)++;
}

/* Fills the poll set from the connections' states. Returns its size, or 0
 * when out of memory; *timeout is the poll timeout. */
static size_t build_poll_set(tp_proxy *p, int *timeout) {
  size_t need = 2, n = 0;
  int cut_pending = 0;
  int64_t now = now_ms(), next = -1;
  tp_conn *c;

  for (c = p->conns; c != NULL; c = c->next) {
    need += 2;
    if (c->cut)
      cut_pending = 1;
  }
  if (need > p->pfd_cap) {
    struct pollfd *np = realloc(p->pfds, need * sizeof(*np));

    if (np == NULL)
      return 0;
    p->pfds = np;
    p->pfd_cap = need;
  }
  add_pfd(p, &n, p->wake_r, POLLIN);
  /* While stalled, or while a cut waits for its reply (see the top of the
   * file), new connections wait in the backlog. */
  if (add_pfd(p, &n, p->stalled || cut_pending ? -1 : p->lfd, POLLIN) < 0) {
    p->pfds[n].fd = -1;
    p->pfds[n].events = p->pfds[n].revents = 0;
    n++;
  }
  for (c = p->conns; c != NULL; c = c->next) {
    short ce = 0, ue = 0;

    if (c->draining) {
      /* Detached from the client: keeps draining even while stalled. */
      ue = POLLIN;
      if (next < 0 || c->deadline < next)
        next = c->deadline;
    } else if (!p->stalled) {
      /* Reading stops while a buffer is full, and past a cut frame. */
      if (!c->c_eof && buf_len(&c->c2s) < TP_BUF && (!c->cut || c->c_in < c->cut_end))
        ce |= POLLIN;
      if (!c->cut && buf_len(&c->s2c) > 0)
        ce |= POLLOUT;
      if (c->connecting) {
        ue = POLLOUT;
      } else {
        if (!c->u_eof && (c->cut || buf_len(&c->s2c) < TP_BUF))
          ue |= POLLIN;
        if (buf_len(&c->c2s) > 0)
          ue |= POLLOUT;
      }
    }
    /* Not polling a socket with no wanted event: a closed peer would
     * report POLLHUP on every round and spin. */
    c->cidx = add_pfd(p, &n, c->cfd, ce);
    c->uidx = add_pfd(p, &n, c->ufd, ue);
  }
  if (next < 0) {
    *timeout = -1;
  } else {
    int64_t left = next - now;

    *timeout = left < 0 ? 0 : (int)left;
  }
  return n;
}

static void *loop(void *arg) {
  tp_proxy *p = arg;

  pthread_mutex_lock(&p->mu);
  for (;;) {
    size_t n;
    int timeout, rc;
    tp_conn *c;
    int64_t now;

    if (p->drop_req) {
      close_all(p);
      close_backlog(p);
      reap(p);
      p->drop_req = 0;
    }
    /* From here on the new control state applies. */
    p->ack_seq = p->req_seq;
    pthread_cond_broadcast(&p->cv);
    if (p->stop)
      break;
    n = build_poll_set(p, &timeout);
    if (n == 0) {
      fprintf(stderr, "tp: out of memory\n");
      break;
    }
    pthread_mutex_unlock(&p->mu);
    rc = poll(p->pfds, n, timeout);
    pthread_mutex_lock(&p->mu);
    if (rc < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "tp: poll: %s\n", strerror(errno));
      break;
    }
    if (p->pfds[0].revents != 0)
      drain_wake(p);
    if (p->pfds[1].revents != 0)
      accept_all(p);
    now = now_ms();
    for (c = p->conns; c != NULL; c = c->next) {
      if (c->dead)
        continue;
      handle_conn(p, c);
      if (c->draining && !c->dead && now >= c->deadline)
        close_conn(p, c);
    }
    reap(p);
  }
  p->loop_done = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Called with mu held: waits until the loop has applied the current
 * control state. */
static void sync_loop(tp_proxy *p) {
  uint64_t seq = ++p->req_seq;

  wake(p);
  while (p->ack_seq < seq && !p->loop_done)
    pthread_cond_wait(&p->cv, &p->mu);
}

/* --- setup ------------------------------------------------------------------------------ */

/* Resolves the first "host:port" of a ZooKeeper connect string. */
static int resolve(tp_proxy *p, const char *hosts) {
  char buf[256], *colon, *host;
  size_t len = strcspn(hosts, ",/");
  struct addrinfo hints, *res = NULL;
  int rc;

  if (len == 0 || len >= sizeof(buf)) {
    fprintf(stderr, "tp_start: bad upstream \"%s\"\n", hosts);
    return -1;
  }
  memcpy(buf, hosts, len);
  buf[len] = '\0';
  colon = strrchr(buf, ':');
  if (colon == NULL || colon[1] == '\0') {
    fprintf(stderr, "tp_start: no port in \"%s\"\n", hosts);
    return -1;
  }
  *colon = '\0';
  host = buf;
  /* "[::1]:2181" */
  if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
    host++;
    colon[-1] = '\0';
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo(host, colon + 1, &hints, &res);
  if (rc != 0 || res == NULL) {
    fprintf(stderr, "tp_start: cannot resolve \"%s\": %s\n", hosts, gai_strerror(rc));
    return -1;
  }
  memcpy(&p->up, res->ai_addr, res->ai_addrlen);
  p->up_len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static int open_listener(tp_proxy *p) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);

  p->lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (p->lfd < 0)
    return -1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (set_fd_flags(p->lfd) != 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(p->lfd, SOMAXCONN) != 0 || getsockname(p->lfd, (struct sockaddr *)&a, &len) != 0)
    return -1;
  p->port = ntohs(a.sin_port);
  snprintf(p->hosts, sizeof(p->hosts), "127.0.0.1:%d", p->port);
  return 0;
}

static void free_proxy(tp_proxy *p) {
  close_all(p);
  reap(p);
  if (p->lfd >= 0)
    close(p->lfd);
  if (p->wake_r >= 0)
    close(p->wake_r);
  if (p->wake_w >= 0)
    close(p->wake_w);
  free(p->pfds);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

tp_proxy *tp_start(const char *upstream_host_port) {
  tp_proxy *p;
  int fds[2];

  if (upstream_host_port == NULL)
    return NULL;
  p = calloc(1, sizeof(*p));
  if (p == NULL)
    return NULL;
  p->lfd = p->wake_r = p->wake_w = -1;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (resolve(p, upstream_host_port) != 0) {
    free_proxy(p);
    return NULL;
  }
  if (pipe(fds) != 0) {
    fprintf(stderr, "tp_start: pipe: %s\n", strerror(errno));
    free_proxy(p);
    return NULL;
  }
  p->wake_r = fds[0];
  p->wake_w = fds[1];
  if (set_fd_flags(p->wake_r) != 0 || set_fd_flags(p->wake_w) != 0 || open_listener(p) != 0) {
    fprintf(stderr, "tp_start: %s\n", strerror(errno));
    free_proxy(p);
    return NULL;
  }
  if (pthread_create(&p->thread, NULL, loop, p) != 0) {
    fprintf(stderr, "tp_start: cannot start the proxy thread\n");
    free_proxy(p);
    return NULL;
  }
  return p;
}

void tp_stop(tp_proxy *p) {
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  wake(p);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->thread, NULL);
  free_proxy(p);
}

/* --- control ------------------------------------------------------------------------------ */

int tp_port(tp_proxy *p) {
  return p->port;
}

const char *tp_hosts(tp_proxy *p) {
  return p->hosts;
}

int tp_cut_after(tp_proxy *p, int opcode, int count) {
  if (count < 1)
    return -1;
  pthread_mutex_lock(&p->mu);
  p->cut_op = opcode;
  p->cut_left = count;
  sync_loop(p);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int tp_stall_at(tp_proxy *p, int opcode, int count) {
  if (count < 1)
    return -1;
  pthread_mutex_lock(&p->mu);
  p->stall_op = opcode;
  p->stall_left = count;
  sync_loop(p);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int tp_cut_fired(tp_proxy *p) {
  int n;

  pthread_mutex_lock(&p->mu);
  n = p->cuts_fired;
  pthread_mutex_unlock(&p->mu);
  return n;
}

void tp_stall(tp_proxy *p, int on) {
  pthread_mutex_lock(&p->mu);
  p->stalled = on != 0;
  sync_loop(p);
  pthread_mutex_unlock(&p->mu);
}

void tp_drop_all(tp_proxy *p) {
  pthread_mutex_lock(&p->mu);
  p->drop_req = 1;
  sync_loop(p);
  pthread_mutex_unlock(&p->mu);
}

void tp_refuse(tp_proxy *p, int on) {
  pthread_mutex_lock(&p->mu);
  p->refusing = on != 0;
  sync_loop(p);
  pthread_mutex_unlock(&p->mu);
}

int tp_requests(tp_proxy *p, int opcode) {
  int i, n = 0;

  pthread_mutex_lock(&p->mu);
  if (opcode == TP_ANY_OP) {
    n = p->total;
  } else {
    for (i = 0; i < p->nops; i++) {
      if (p->ops[i].op == opcode) {
        n = p->ops[i].n;
        break;
      }
    }
  }
  pthread_mutex_unlock(&p->mu);
  return n;
}

int tp_connections(tp_proxy *p) {
  int n;

  pthread_mutex_lock(&p->mu);
  n = p->connections;
  pthread_mutex_unlock(&p->mu);
  return n;
}
