/* The fault proxy (tests/proxy.h) on its own, with the raw ZooKeeper C
 * client against the test server: pass-through, request counting, the cut
 * that loses a reply, stalls that expire a session, dropped and refused
 * connections.
 *
 * The framing tests put a fake server of their own behind the proxy and
 * speak hand-made frames from a plain socket, so they control how the bytes
 * are split and when each side reads.
 *
 * Every wait is on an observable condition (th_wait_until, or a read with
 * a time limit), bounded as harness.h says; even the stall that expires a
 * session lasts until the server has expired it (its ephemeral node is
 * gone), not a fixed time. Every test deletes the znodes it creates and
 * stops its proxy. */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/proto.h>

#include "harness.h"
#include "proxy.h"

/* Session timeout of clients that must survive reconnections. */
#define LONG_SESSION_MS 10000
/* Session timeout of the expiry test. */
#define SHORT_SESSION_MS 2000
/* Bound of waits for things that take a round trip or a reconnection of a
 * client of LONG_SESSION_MS (it notices a silent connection after two
 * thirds of its timeout): a settle of that timeout. */
#define WAIT_MS TH_SETTLE_FOR(LONG_SESSION_MS)

/* --- helpers ----------------------------------------------------------------------------- */

/* Session events seen by a client's watcher (the client's completion
 * thread writes, the test reads). */
typedef struct client {
  zhandle_t *zh;
  atomic_int state; /* last session state */
  atomic_int connected;
  atomic_int connecting; /* connection losses */
  atomic_int expired;
  int want_connected; /* for reconnected(): CONNECTED events to wait for */
} client;

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
  client *c = ctx;

  (void)zh;
  (void)path;
  if (type != ZOO_SESSION_EVENT)
    return;
  atomic_store(&c->state, state);
  if (state == ZOO_CONNECTED_STATE)
    atomic_fetch_add(&c->connected, 1);
  else if (state == ZOO_CONNECTING_STATE)
    atomic_fetch_add(&c->connecting, 1);
  else if (state == ZOO_EXPIRED_SESSION_STATE)
    atomic_fetch_add(&c->expired, 1);
}

/* The client logs every lost connection; those are what these tests make. */
static void quiet_log(const char *message) {
  (void)message;
}

static int is_connected(void *arg) {
  client *c = arg;

  return zoo_state(c->zh) == ZOO_CONNECTED_STATE;
}

static int saw_connecting(void *arg) {
  return atomic_load(&((client *)arg)->connecting) > 0;
}

static int saw_expired(void *arg) {
  return atomic_load(&((client *)arg)->expired) > 0;
}

/* Connected again after a loss: want_connected CONNECTED events (events
 * come in order, so the loss before it has been seen too) and the state. */
static int reconnected(void *arg) {
  client *c = arg;

  return atomic_load(&c->connected) >= c->want_connected && zoo_state(c->zh) == ZOO_CONNECTED_STATE;
}

/* Opens a raw client through the proxy and waits until it is connected.
 * Returns 0 on success. */
static int client_open(client *c, tp_proxy *p, int session_timeout_ms) {
  memset(c, 0, sizeof(*c));
  c->want_connected = 2;
  c->zh = zookeeper_init2(tp_hosts(p), watcher, session_timeout_ms, NULL, c, 0, quiet_log);
  if (c->zh == NULL) {
    fprintf(stderr, "zookeeper_init2(%s): %s\n", tp_hosts(p), strerror(errno));
    return -1;
  }
  if (!th_wait_until(is_connected, c, WAIT_MS)) {
    fprintf(stderr, "no connection through the proxy %s\n", tp_hosts(p));
    return -1;
  }
  return 0;
}

static void client_close(client *c) {
  if (c->zh != NULL)
    zookeeper_close(c->zh);
  c->zh = NULL;
}

static int64_t session_id(client *c) {
  return zoo_client_id(c->zh)->client_id;
}

typedef struct cut_target {
  tp_proxy *p;
  int n;
} cut_target;

static int cut_reached(void *arg) {
  cut_target *t = arg;

  return tp_cut_fired(t->p) >= t->n;
}

/* Result of an asynchronous exists call; rc is -1000 until it completes. */
typedef struct async_result {
  atomic_int rc;
} async_result;

static void stat_done(int rc, const struct Stat *stat, const void *data) {
  async_result *r = (async_result *)data;

  (void)stat;
  atomic_store(&r->rc, rc);
}

static int async_completed(void *arg) {
  return atomic_load(&((async_result *)arg)->rc) != -1000;
}

/* zoo_exists through a fresh inspection handle, bypassing the proxy. */
static int raw_exists(const char *path) {
  zhandle_t *zh = th_raw();
  struct Stat st;
  int rc;

  if (zh == NULL)
    return -1000;
  rc = zoo_exists(zh, path, 0, &st);
  th_raw_close(zh);
  return rc;
}

/* Creates /zkr-test (the parent of th_path() names) if missing. */
static void ensure_test_root(void) {
  zhandle_t *zh = th_raw();
  int rc;

  CU_ASSERT_PTR_NOT_NULL_FATAL(zh);
  rc = zoo_create(zh, "/zkr-test", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
  CU_ASSERT_TRUE(rc == ZOK || rc == ZNODEEXISTS);
  th_raw_close(zh);
}

/* Deletes path's tree and checks that nothing is left. */
static void cleanup_path(char *path) {
  CU_ASSERT_EQUAL(th_delete_tree(path), 0);
  CU_ASSERT_EQUAL(raw_exists(path), ZNONODE);
  free(path);
}

/* Open file descriptors of this process. */
static int fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.')
      n++;
  }
  closedir(d);
  /* Not counting the directory's own descriptor. */
  return n - 1;
}

/* For th_wait_until: 1 once path is gone on the server. */
static int raw_gone(void *path) {
  return raw_exists(path) == ZNONODE;
}

/* For th_wait_until: 1 once c's client no longer counts itself connected. */
static int not_connected(void *arg) {
  return zoo_state(((client *)arg)->zh) != ZOO_CONNECTED_STATE;
}

/* --- a fake server and hand-made frames ---------------------------------------------------- */

/* A listening loopback socket on a free port; *port gets the port. */
static int fake_listen(int *port) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  if (fd < 0)
    return -1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

/* 1 if fd becomes readable (or closed) within ms. */
static int readable_within(int fd, int ms) {
  struct pollfd pfd = {fd, POLLIN, 0};

  return poll(&pfd, 1, ms) == 1;
}

/* A blocking connection to the proxy. */
static int dial(tp_proxy *p) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  if (fd < 0)
    return -1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)tp_port(p));
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The proxy's connection to the fake server, or -1 if none comes. */
static int fake_accept(int lfd) {
  if (!readable_within(lfd, WAIT_MS))
    return -1;
  return accept(lfd, NULL, NULL);
}

static int send_all(int fd, const unsigned char *b, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, b, n, MSG_NOSIGNAL);

    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Reads exactly n bytes, each within WAIT_MS. Returns 0, or -1 if the
 * connection ended or nothing came. */
static int read_exact(int fd, unsigned char *b, size_t n) {
  while (n > 0) {
    ssize_t k;

    if (!readable_within(fd, WAIT_MS))
      return -1;
    k = recv(fd, b, n, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

/* 1 if the peer closed fd (end of stream or reset) with no data before. */
static int closed_by_peer(int fd) {
  unsigned char b;
  ssize_t k;

  if (!readable_within(fd, WAIT_MS))
    return 0;
  k = recv(fd, &b, 1, 0);
  return k == 0 || (k < 0 && errno == ECONNRESET);
}

static size_t put_be32(unsigned char *b, uint32_t v) {
  b[0] = (unsigned char)(v >> 24);
  b[1] = (unsigned char)(v >> 16);
  b[2] = (unsigned char)(v >> 8);
  b[3] = (unsigned char)v;
  return 4;
}

/* A request frame: length, xid, opcode, body_len filler bytes. */
static size_t request_frame(unsigned char *b, int32_t xid, int op, size_t body_len) {
  size_t n = put_be32(b, (uint32_t)(8 + body_len));

  n += put_be32(b + n, (uint32_t)xid);
  n += put_be32(b + n, (uint32_t)op);
  memset(b + n, 0x5a, body_len);
  return n + body_len;
}

/* A reply frame: length, xid, zxid (8 bytes), err. */
static size_t reply_frame(unsigned char *b, int32_t xid) {
  size_t n = put_be32(b, 16);

  n += put_be32(b + n, (uint32_t)xid);
  memset(b + n, 0, 12);
  return n + 12;
}

/* The connect frames: a length and an opaque body, no header. */
static size_t connect_frame(unsigned char *b, size_t body_len) {
  size_t n = put_be32(b, (uint32_t)body_len);

  memset(b + n, 0x11, body_len);
  return n + body_len;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_proxy_start_stop_address(void) {
  int fds_before = fd_count();
  tp_proxy *p = tp_start(th_hosts());
  char expect[32];

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_TRUE(tp_port(p) > 0 && tp_port(p) < 65536);
  snprintf(expect, sizeof(expect), "127.0.0.1:%d", tp_port(p));
  CU_ASSERT_STRING_EQUAL(tp_hosts(p), expect);
  CU_ASSERT_EQUAL(tp_connections(p), 0);
  CU_ASSERT_EQUAL(tp_requests(p, TP_ANY_OP), 0);
  CU_ASSERT_EQUAL(tp_cut_fired(p), 0);
  /* A cut needs a positive count. */
  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE_OP, 0), -1);
  tp_stop(p);
  tp_stop(NULL);
  /* A bad upstream is refused at once. */
  CU_ASSERT_PTR_NULL(tp_start("no-port-here"));
  CU_ASSERT_EQUAL(fd_count(), fds_before);
}

static void test_proxy_framing_split_and_coalesced(void) {
  unsigned char out[512], in[512];
  size_t n, i, k;
  int port, lfd, cfd, ufd;
  tp_proxy *p;

  lfd = fake_listen(&port);
  CU_ASSERT_TRUE_FATAL(lfd >= 0);
  snprintf((char *)out, sizeof(out), "127.0.0.1:%d", port);
  p = tp_start((const char *)out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  cfd = dial(p);
  ufd = fake_accept(lfd);
  CU_ASSERT_FATAL(cfd >= 0 && ufd >= 0);

  /* The ConnectRequest split inside its length: counted once complete. */
  n = connect_frame(out, 40);
  CU_ASSERT_EQUAL(send_all(cfd, out, 3), 0);
  CU_ASSERT_EQUAL(read_exact(ufd, in, 3), 0);
  CU_ASSERT_EQUAL(tp_requests(p, TP_CONNECT_OP), 0);
  CU_ASSERT_EQUAL(send_all(cfd, out + 3, n - 3), 0);
  CU_ASSERT_EQUAL(read_exact(ufd, in + 3, n - 3), 0);
  CU_ASSERT_TRUE(memcmp(in, out, n) == 0);
  CU_ASSERT_EQUAL(tp_requests(p, TP_CONNECT_OP), 1);
  CU_ASSERT_EQUAL(tp_requests(p, TP_ANY_OP), 0);

  /* A request one byte at a time: counted when its opcode is complete. */
  n = request_frame(out, 1, ZOO_GETDATA_OP, 20);
  for (i = 0; i < n; i++) {
    CU_ASSERT_EQUAL(send_all(cfd, out + i, 1), 0);
    CU_ASSERT_EQUAL(read_exact(ufd, in + i, 1), 0);
    CU_ASSERT_EQUAL(tp_requests(p, ZOO_GETDATA_OP), i + 1 >= 12 ? 1 : 0);
  }
  CU_ASSERT_TRUE(memcmp(in, out, n) == 0);

  /* Several requests in one write, the last one cut short, then finished. */
  n = request_frame(out, 2, ZOO_EXISTS_OP, 30);
  n += request_frame(out + n, 3, ZOO_EXISTS_OP, 0);
  k = n;
  n += request_frame(out + n, 4, ZOO_GETCHILDREN2_OP, 25);
  CU_ASSERT_EQUAL(send_all(cfd, out, k + 10), 0);
  CU_ASSERT_EQUAL(read_exact(ufd, in, k + 10), 0);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_EXISTS_OP), 2);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_GETCHILDREN2_OP), 0);
  CU_ASSERT_EQUAL(send_all(cfd, out + k + 10, n - k - 10), 0);
  CU_ASSERT_EQUAL(read_exact(ufd, in + k + 10, n - k - 10), 0);
  CU_ASSERT_TRUE(memcmp(in, out, n) == 0);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_GETCHILDREN2_OP), 1);
  CU_ASSERT_EQUAL(tp_requests(p, TP_ANY_OP), 4);

  /* Replies pass through unchanged. */
  n = connect_frame(out, 36);
  n += reply_frame(out + n, 1);
  n += reply_frame(out + n, 2);
  CU_ASSERT_EQUAL(send_all(ufd, out, n), 0);
  CU_ASSERT_EQUAL(read_exact(cfd, in, n), 0);
  CU_ASSERT_TRUE(memcmp(in, out, n) == 0);

  close(cfd);
  close(ufd);
  tp_stop(p);
  close(lfd);
}

static void test_proxy_cut_waits_for_reply(void) {
  unsigned char out[512], in[512];
  size_t n, first;
  int port, lfd, cfd, ufd;
  cut_target fired = {NULL, 1};
  tp_proxy *p;

  lfd = fake_listen(&port);
  CU_ASSERT_TRUE_FATAL(lfd >= 0);
  snprintf((char *)out, sizeof(out), "127.0.0.1:%d", port);
  p = tp_start((const char *)out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  fired.p = p;
  cfd = dial(p);
  ufd = fake_accept(lfd);
  CU_ASSERT_FATAL(cfd >= 0 && ufd >= 0);
  n = connect_frame(out, 40);
  CU_ASSERT_EQUAL(send_all(cfd, out, n), 0);
  CU_ASSERT_EQUAL(read_exact(ufd, in, n), 0);

  /* The create and the delete behind it in one write: only the create
   * reaches the server, then the client's connection is closed. */
  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE_OP, 1), 0);
  first = request_frame(out, 7, ZOO_CREATE_OP, 50);
  n = first + request_frame(out + first, 8, ZOO_DELETE_OP, 20);
  CU_ASSERT_EQUAL(send_all(cfd, out, n), 0);
  CU_ASSERT_EQUAL(read_exact(ufd, in, first), 0);
  CU_ASSERT_TRUE(memcmp(in, out, first) == 0);
  CU_ASSERT_TRUE(closed_by_peer(cfd));
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_CREATE_OP), 1);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_DELETE_OP), 0);
  /* The server's side stays open until it replies to xid 7; a new client
   * waits in the backlog meanwhile. */
  CU_ASSERT_EQUAL(tp_cut_fired(p), 0);
  CU_ASSERT_EQUAL(tp_connections(p), 1);

  /* A notification (xid -1) and the reply to xid 7: then the proxy closes
   * the server's side, without ever forwarding the delete. */
  n = reply_frame(out, -1);
  n += reply_frame(out + n, 7);
  CU_ASSERT_EQUAL(send_all(ufd, out, n), 0);
  CU_ASSERT_TRUE(closed_by_peer(ufd));
  CU_ASSERT_TRUE(th_wait_until(cut_reached, &fired, WAIT_MS));
  CU_ASSERT_EQUAL(tp_cut_fired(p), 1);
  close(cfd);
  close(ufd);

  /* One-shot: the next connection's create passes. */
  cfd = dial(p);
  ufd = fake_accept(lfd);
  CU_ASSERT_FATAL(cfd >= 0 && ufd >= 0);
  n = connect_frame(out, 40);
  n += request_frame(out + n, 1, ZOO_CREATE_OP, 10);
  CU_ASSERT_EQUAL(send_all(cfd, out, n), 0);
  CU_ASSERT_EQUAL(read_exact(ufd, in, n), 0);
  n = connect_frame(out, 36);
  n += reply_frame(out + n, 1);
  CU_ASSERT_EQUAL(send_all(ufd, out, n), 0);
  CU_ASSERT_EQUAL(read_exact(cfd, in, n), 0);
  CU_ASSERT_EQUAL(tp_cut_fired(p), 1);
  CU_ASSERT_EQUAL(tp_connections(p), 2);

  close(cfd);
  close(ufd);
  tp_stop(p);
  close(lfd);
}

static void test_proxy_drop_and_refuse_close_both_sides(void) {
  unsigned char out[64];
  int port, lfd, cfd, ufd;
  size_t n;
  tp_proxy *p;

  lfd = fake_listen(&port);
  CU_ASSERT_TRUE_FATAL(lfd >= 0);
  snprintf((char *)out, sizeof(out), "127.0.0.1:%d", port);
  p = tp_start((const char *)out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  cfd = dial(p);
  ufd = fake_accept(lfd);
  CU_ASSERT_FATAL(cfd >= 0 && ufd >= 0);

  /* Both sides are closed by the time tp_drop_all returns. */
  tp_drop_all(p);
  CU_ASSERT_TRUE(closed_by_peer(cfd));
  CU_ASSERT_TRUE(closed_by_peer(ufd));
  close(cfd);
  close(ufd);

  /* Refused: the client is closed at once, the server never called. */
  tp_refuse(p, 1);
  cfd = dial(p);
  CU_ASSERT_TRUE_FATAL(cfd >= 0);
  CU_ASSERT_TRUE(closed_by_peer(cfd));
  CU_ASSERT_FALSE(readable_within(lfd, 0));
  CU_ASSERT_EQUAL(tp_connections(p), 1);
  close(cfd);

  /* Accepted again afterwards. */
  tp_refuse(p, 0);
  cfd = dial(p);
  ufd = fake_accept(lfd);
  CU_ASSERT_FATAL(cfd >= 0 && ufd >= 0);
  n = connect_frame(out, 8);
  CU_ASSERT_EQUAL(send_all(cfd, out, n), 0);
  CU_ASSERT_EQUAL(read_exact(ufd, out, n), 0);
  CU_ASSERT_EQUAL(tp_connections(p), 2);

  close(cfd);
  close(ufd);
  tp_stop(p);
  close(lfd);
}

static void test_proxy_pass_through(void) {
  tp_proxy *p = tp_start(th_hosts());
  char *path = th_path("proxy-pass");
  char buf[64];
  int len = sizeof(buf);
  struct Stat st;
  client c;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  ensure_test_root();
  CU_ASSERT_EQUAL_FATAL(client_open(&c, p, LONG_SESSION_MS), 0);
  CU_ASSERT_EQUAL(tp_connections(p), 1);
  CU_ASSERT_EQUAL(tp_requests(p, TP_CONNECT_OP), 1);

  CU_ASSERT_EQUAL(zoo_create(c.zh, path, "hello", 5, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  /* The node is on the server, not only in the proxy's view. */
  CU_ASSERT_EQUAL(raw_exists(path), ZOK);
  CU_ASSERT_EQUAL(zoo_get(c.zh, path, 0, buf, &len, &st), ZOK);
  CU_ASSERT_EQUAL(len, 5);
  CU_ASSERT_TRUE(len == 5 && memcmp(buf, "hello", 5) == 0);
  CU_ASSERT_EQUAL(zoo_delete(c.zh, path, -1), ZOK);
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZNONODE);
  CU_ASSERT_EQUAL(raw_exists(path), ZNONODE);
  CU_ASSERT_EQUAL(tp_cut_fired(p), 0);
  CU_ASSERT_EQUAL(atomic_load(&c.connecting), 0);

  client_close(&c);
  tp_stop(p);
  cleanup_path(path);
}

static void test_proxy_requests_counted_by_opcode(void) {
  tp_proxy *p = tp_start(th_hosts());
  char *path = th_path("proxy-count");
  char child[256];
  char buf[16];
  struct String_vector kids;
  struct Stat st;
  client c;
  int i;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  ensure_test_root();
  CU_ASSERT_EQUAL_FATAL(client_open(&c, p, LONG_SESSION_MS), 0);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_GETDATA_OP), 0);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_CREATE_OP), 0);

  /* A synchronous call returns after its reply, so its request has passed
   * the proxy: the counts are exact. */
  CU_ASSERT_EQUAL(zoo_create(c.zh, path, "v", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  snprintf(child, sizeof(child), "%s/kid", path);
  CU_ASSERT_EQUAL(zoo_create(c.zh, child, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  for (i = 0; i < 3; i++) {
    int len = sizeof(buf);

    CU_ASSERT_EQUAL(zoo_get(c.zh, path, 0, buf, &len, &st), ZOK);
  }
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZOK);
  memset(&kids, 0, sizeof(kids));
  CU_ASSERT_EQUAL(zoo_get_children(c.zh, path, 0, &kids), ZOK);
  CU_ASSERT_EQUAL(kids.count, 1);
  deallocate_String_vector(&kids);
  memset(&kids, 0, sizeof(kids));
  CU_ASSERT_EQUAL(zoo_get_children2(c.zh, path, 0, &kids, &st), ZOK);
  deallocate_String_vector(&kids);
  CU_ASSERT_EQUAL(zoo_delete(c.zh, child, -1), ZOK);

  CU_ASSERT_EQUAL(tp_requests(p, ZOO_CREATE_OP), 2);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_CREATE2_OP), 0);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_GETDATA_OP), 3);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_EXISTS_OP), 1);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_GETCHILDREN_OP), 1);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_GETCHILDREN2_OP), 1);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_DELETE_OP), 1);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_SETDATA_OP), 0);
  CU_ASSERT_EQUAL(tp_requests(p, TP_CONNECT_OP), 1);
  /* Every request but the ConnectRequest; pings may come on top. */
  CU_ASSERT_TRUE(tp_requests(p, TP_ANY_OP) >= 9);
  CU_ASSERT_EQUAL(tp_requests(p, TP_ANY_OP) - tp_requests(p, ZOO_PING_OP), 9);

  client_close(&c);
  /* zookeeper_close sends a close request before it returns. */
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_CLOSE_OP), 1);
  tp_stop(p);
  cleanup_path(path);
}

static void test_proxy_cut_loses_create_reply(void) {
  int fds_before = fd_count();
  tp_proxy *p = tp_start(th_hosts());
  char *path = th_path("proxy-cut");
  char child[256];
  cut_target first = {p, 1};
  int64_t sid;
  client c;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  ensure_test_root();
  CU_ASSERT_EQUAL_FATAL(client_open(&c, p, LONG_SESSION_MS), 0);
  sid = session_id(&c);

  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE_OP, 1), 0);
  /* The server executes the create, the client never hears of it. */
  CU_ASSERT_EQUAL(zoo_create(c.zh, path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZCONNECTIONLOSS);
  CU_ASSERT_TRUE(th_wait_until(cut_reached, &first, WAIT_MS));
  CU_ASSERT_EQUAL(tp_cut_fired(p), 1);
  CU_ASSERT_EQUAL(raw_exists(path), ZOK);

  /* The client reconnects through the proxy to the same session, and finds
   * its own node. */
  CU_ASSERT_TRUE(th_wait_until(reconnected, &c, WAIT_MS));
  CU_ASSERT_EQUAL(session_id(&c), sid);
  CU_ASSERT_TRUE(atomic_load(&c.connecting) >= 1);
  CU_ASSERT_EQUAL(tp_connections(p), 2);
  CU_ASSERT_EQUAL(zoo_create(c.zh, path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZNODEEXISTS);

  /* One-shot: the next create goes through. */
  snprintf(child, sizeof(child), "%s/after", path);
  CU_ASSERT_EQUAL(zoo_create(c.zh, child, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  CU_ASSERT_EQUAL(tp_cut_fired(p), 1);
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_CREATE_OP), 3);
  CU_ASSERT_EQUAL(tp_connections(p), 2);

  client_close(&c);
  tp_stop(p);
  CU_ASSERT_EQUAL(fd_count(), fds_before);
  cleanup_path(path);
}

static void test_proxy_cut_counts_only_its_opcode(void) {
  tp_proxy *p = tp_start(th_hosts());
  char *path = th_path("proxy-cut2");
  char a[256], b[256], buf[16];
  int len = sizeof(buf);
  cut_target first = {p, 1};
  struct Stat st;
  client c;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  ensure_test_root();
  CU_ASSERT_EQUAL_FATAL(client_open(&c, p, LONG_SESSION_MS), 0);
  snprintf(a, sizeof(a), "%s/a", path);
  snprintf(b, sizeof(b), "%s/b", path);

  /* The second create is cut; other requests do not count towards it. */
  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE_OP, 2), 0);
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZNONODE);
  CU_ASSERT_EQUAL(zoo_create(c.zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  CU_ASSERT_EQUAL(zoo_get(c.zh, path, 0, buf, &len, &st), ZOK);
  CU_ASSERT_EQUAL(zoo_set(c.zh, path, "v", 1, -1), ZOK);
  CU_ASSERT_EQUAL(tp_cut_fired(p), 0);
  CU_ASSERT_EQUAL(zoo_create(c.zh, a, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZCONNECTIONLOSS);
  CU_ASSERT_TRUE(th_wait_until(cut_reached, &first, WAIT_MS));
  CU_ASSERT_EQUAL(raw_exists(a), ZOK);
  CU_ASSERT_TRUE(th_wait_until(reconnected, &c, WAIT_MS));
  CU_ASSERT_EQUAL(zoo_create(c.zh, b, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  CU_ASSERT_EQUAL(tp_cut_fired(p), 1);

  /* Re-arming replaces the armed cut: the delete, not the create, is cut. */
  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_CREATE_OP, 1), 0);
  CU_ASSERT_EQUAL(tp_cut_after(p, ZOO_DELETE_OP, 1), 0);
  CU_ASSERT_EQUAL(zoo_create(c.zh, a, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZNODEEXISTS);
  CU_ASSERT_EQUAL(zoo_delete(c.zh, b, -1), ZCONNECTIONLOSS);
  first.n = 2;
  CU_ASSERT_TRUE(th_wait_until(cut_reached, &first, WAIT_MS));
  CU_ASSERT_EQUAL(raw_exists(b), ZNONODE);

  client_close(&c);
  tp_stop(p);
  cleanup_path(path);
}

static void test_proxy_stall_expires_session(void) {
  tp_proxy *p = tp_start(th_hosts());
  char *path = th_path("proxy-stall"), *eph = th_path("proxy-stall-eph");
  async_result r;
  int exists_before;
  client c;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_EQUAL_FATAL(client_open(&c, p, SHORT_SESSION_MS), 0);
  atomic_init(&r.rc, -1000);
  /* An ephemeral node of the session: the server deletes it when it
   * expires the session, which is how the test sees the expiry. */
  ensure_test_root();
  CU_ASSERT_EQUAL(zoo_create(c.zh, eph, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0), ZOK);
  exists_before = tp_requests(p, ZOO_EXISTS_OP);

  tp_stall(p, 1);
  /* Sent by the client, never read by the proxy while it stalls. */
  CU_ASSERT_EQUAL(zoo_aexists(c.zh, path, 0, stat_done, &r), ZOK);
  /* The stall lasts until the server has expired the session (after its
   * timeout), and the client has given up on the silent connection (after
   * two thirds of it). */
  CU_ASSERT_TRUE(th_wait_until(raw_gone, eph, TH_SETTLE_FOR(SHORT_SESSION_MS)));
  CU_ASSERT_TRUE(th_wait_until(not_connected, &c, TH_SETTLE_FOR(SHORT_SESSION_MS)));
  CU_ASSERT_EQUAL(tp_requests(p, ZOO_EXISTS_OP), exists_before);
  /* Only the server can tell the client its session expired. */
  CU_ASSERT_EQUAL(atomic_load(&c.expired), 0);
  tp_stall(p, 0);

  CU_ASSERT_TRUE(th_wait_until(saw_expired, &c, WAIT_MS));
  CU_ASSERT_EQUAL(zoo_state(c.zh), ZOO_EXPIRED_SESSION_STATE);
  /* The request stuck in the stall failed, before the expiry was known. */
  CU_ASSERT_TRUE(th_wait_until(async_completed, &r, WAIT_MS));
  /* The client gives up on a silent connection after two thirds of the
   * session timeout and fails what it sent with ZOPERATIONTIMEOUT. */
  CU_ASSERT_EQUAL(atomic_load(&r.rc), ZOPERATIONTIMEOUT);

  client_close(&c);
  tp_stop(p);
  cleanup_path(path);
  cleanup_path(eph);
}

static void test_proxy_drop_all_keeps_session(void) {
  int fds_before = fd_count();
  tp_proxy *p = tp_start(th_hosts());
  char *path = th_path("proxy-drop");
  async_result r;
  struct Stat st;
  int64_t sid;
  client c;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_EQUAL_FATAL(client_open(&c, p, LONG_SESSION_MS), 0);
  sid = session_id(&c);

  /* Plain drop: the client loses its connection and comes back to the
   * same session through the proxy. */
  tp_drop_all(p);
  CU_ASSERT_TRUE(th_wait_until(reconnected, &c, WAIT_MS));
  CU_ASSERT_TRUE(atomic_load(&c.connecting) >= 1);
  CU_ASSERT_EQUAL(session_id(&c), sid);
  CU_ASSERT_EQUAL(tp_connections(p), 2);
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZNONODE);

  /* A request in flight when the connection drops fails with a connection
   * loss: the stall keeps it from reaching the server first. */
  atomic_init(&r.rc, -1000);
  tp_stall(p, 1);
  CU_ASSERT_EQUAL(zoo_aexists(c.zh, path, 0, stat_done, &r), ZOK);
  tp_drop_all(p);
  tp_stall(p, 0);
  CU_ASSERT_TRUE(th_wait_until(async_completed, &r, WAIT_MS));
  CU_ASSERT_EQUAL(atomic_load(&r.rc), ZCONNECTIONLOSS);
  c.want_connected = 3;
  CU_ASSERT_TRUE(th_wait_until(reconnected, &c, WAIT_MS));
  CU_ASSERT_TRUE(atomic_load(&c.connecting) >= 2);
  CU_ASSERT_EQUAL(session_id(&c), sid);
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZNONODE);

  client_close(&c);
  tp_stop(p);
  /* Every connection the proxy and the client opened is closed. */
  CU_ASSERT_EQUAL(fd_count(), fds_before);
  cleanup_path(path);
}

static void test_proxy_refuse_then_accept(void) {
  tp_proxy *p = tp_start(th_hosts());
  char *path = th_path("proxy-refuse");
  struct Stat st;
  int64_t sid;
  client c;

  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_EQUAL_FATAL(client_open(&c, p, LONG_SESSION_MS), 0);
  sid = session_id(&c);

  tp_refuse(p, 1);
  /* The current connection is kept. */
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZNONODE);
  tp_drop_all(p);
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZCONNECTIONLOSS);
  CU_ASSERT_TRUE(th_wait_until(saw_connecting, &c, WAIT_MS));
  /* Every reconnection is closed at once: requests keep failing. */
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZCONNECTIONLOSS);
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZCONNECTIONLOSS);
  CU_ASSERT_EQUAL(atomic_load(&c.connected), 1);
  CU_ASSERT_EQUAL(tp_connections(p), 1);
  tp_refuse(p, 0);
  CU_ASSERT_TRUE(th_wait_until(reconnected, &c, WAIT_MS));
  CU_ASSERT_EQUAL(session_id(&c), sid);
  CU_ASSERT_EQUAL(tp_connections(p), 2);
  CU_ASSERT_EQUAL(zoo_exists(c.zh, path, 0, &st), ZNONODE);

  client_close(&c);
  tp_stop(p);
  cleanup_path(path);
}

int main(void) {
  static const th_test tests[] = {
      {"test_proxy_start_stop_address", test_proxy_start_stop_address},
      {"test_proxy_framing_split_and_coalesced", test_proxy_framing_split_and_coalesced},
      {"test_proxy_cut_waits_for_reply", test_proxy_cut_waits_for_reply},
      {"test_proxy_drop_and_refuse_close_both_sides", test_proxy_drop_and_refuse_close_both_sides},
      {"test_proxy_pass_through", test_proxy_pass_through},
      {"test_proxy_requests_counted_by_opcode", test_proxy_requests_counted_by_opcode},
      {"test_proxy_cut_loses_create_reply", test_proxy_cut_loses_create_reply},
      {"test_proxy_cut_counts_only_its_opcode", test_proxy_cut_counts_only_its_opcode},
      {"test_proxy_stall_expires_session", test_proxy_stall_expires_session},
      {"test_proxy_drop_all_keeps_session", test_proxy_drop_all_keeps_session},
      {"test_proxy_refuse_then_accept", test_proxy_refuse_then_accept},
      {NULL, NULL}};

  zhandle_t *zh;
  int rc = th_run("proxy", tests);

  /* Removes /zkr-test unless another program still has nodes below it. */
  zh = th_raw();
  if (zh != NULL) {
    (void)zoo_delete(zh, "/zkr-test", -1);
    th_raw_close(zh);
  }
  return rc;
}
