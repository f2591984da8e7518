/* A deterministic loopback TCP fault proxy for ZooKeeper client tests.
 *
 * tp_start() listens on 127.0.0.1 on a free port and forwards every accepted
 * connection to the upstream server. One background thread runs all the
 * connections with poll(). The proxy follows the ZooKeeper framing in the
 * client-to-server direction (4-byte big-endian length, then the payload;
 * the first frame is the ConnectRequest, every later one starts with xid and
 * opcode), so a test can count requests by opcode and cut a connection right
 * after a chosen request reached the server ("the reply was lost").
 *
 * Threads: every tp_ function may be called from any thread, except that
 * tp_stop() must not run concurrently with other calls on the same proxy.
 * Control calls take effect before they return: once tp_stall(p, 1)
 * returns, nothing more is read or written; once tp_drop_all() returns, the
 * connections are closed; once tp_cut_after() returns, the next matching
 * request is counted. */
#ifndef ZKR_TESTS_PROXY_H
#define ZKR_TESTS_PROXY_H

/* Opcode under which the proxy counts (and can cut after) the ConnectRequest
 * that opens each connection: it has no header of its own; the server knows
 * it as createSession (-10). Other opcodes are those of <zookeeper/proto.h>. */
#define TP_CONNECT_OP (-10)

/* Opcode value meaning "any request" for tp_requests(). */
#define TP_ANY_OP (-1)

typedef struct tp_proxy tp_proxy;

/* Starts a proxy to upstream_host_port ("host:port"; of a comma-separated
 * list only the first entry is used; a chroot suffix is ignored). The name
 * is resolved once, here. Returns the proxy (caller owns; free with
 * tp_stop()) or NULL on failure, with a message on stderr. */
tp_proxy *tp_start(const char *upstream_host_port);

/* The loopback port the proxy listens on. */
int tp_port(tp_proxy *p);

/* The connect string of the proxy, "127.0.0.1:PORT" (borrowed; valid until
 * tp_stop()). */
const char *tp_hosts(tp_proxy *p);

/* Closes every connection and the listening socket, joins the thread and
 * frees the proxy. Accepts NULL. */
void tp_stop(tp_proxy *p);

/* Arms a one-shot cut: when the count-th request (1 = the next one) with
 * this opcode passes from a client to the server, on whichever connection,
 * the proxy forwards that whole frame to the server, from then on forwards
 * nothing more to the client and closes the client's socket; it closes the
 * server's socket once the server has replied to that request. The server
 * thus executes the request but the client never gets the reply.
 *
 * The server's side stays open until the reply because a ZooKeeper server
 * (3.6 and later) drops a queued request whose connection has closed; and
 * meanwhile new connections wait in the listen backlog, because the
 * client's reconnection to its session would close the old connection just
 * as well. That wait is as long as the server takes to reply.
 *
 * Re-arming replaces an armed cut. Returns 0, or -1 if count < 1. */
int tp_cut_after(tp_proxy *p, int opcode, int count);

/* Arms a one-shot stall: when the count-th request (1 = the next one) with
 * this opcode arrives from a client, the proxy stalls as tp_stall(p, 1)
 * does, before it forwards that request: the server never sees it until
 * tp_stall(p, 0). Deterministic where a thread that watches tp_requests()
 * and then stalls would race the forwarding. Re-arming replaces an armed
 * stall. Returns 0, or -1 if count < 1. */
int tp_stall_at(tp_proxy *p, int opcode, int count);
/* Number of cuts completed so far. A cut completes when the server has
 * replied to the cut request (so it has executed it), when the server
 * closes the connection first, when tp_drop_all() closes it, or 5 s after
 * the request was forwarded. A test awaits this before looking at the
 * server. */
int tp_cut_fired(tp_proxy *p);

/* While on, the proxy reads and writes nothing on its connections, nor
 * accepts new ones (they wait in the listen backlog); sockets stay open, so
 * a client sees silence, not a closed connection. Off resumes. Returns once
 * the proxy thread has taken the change into account. */
void tp_stall(tp_proxy *p, int on);

/* Closes every current connection now, both sides, including connections
 * waiting in the listen backlog. Data not yet forwarded is discarded. New
 * connections are still accepted. Returns once they are closed. */
void tp_drop_all(tp_proxy *p);

/* While on, new connections are accepted and closed at once (the server
 * seems down); current connections are kept. Returns once in effect. */
void tp_refuse(tp_proxy *p, int on);

/* Number of requests with this opcode seen from clients so far (their
 * header fully received by the proxy, whether forwarded or not),
 * TP_CONNECT_OP for ConnectRequests, TP_ANY_OP (-1) for every request except
 * ConnectRequests (pings included). */
int tp_requests(tp_proxy *p, int opcode);

/* Number of client connections accepted and forwarded so far (refused ones
 * are not counted). */
int tp_connections(tp_proxy *p);

#endif
