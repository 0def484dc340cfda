/*
 * The RFC 9329 transport: TCP listeners and connections carrying IKE and ESP
 * frames, plain or inside TLS 1.3. The IKE and ESP layers see only frames and
 * a connection handle; they never touch sockets or TLS.
 */
#ifndef IKETCP_TRANSPORT_H
#define IKETCP_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "iketcp/addr.h"
#include "loop.h"
#include "transport/encap.h"

struct transport;
struct tcp_conn;

struct transport_config {
	bool tcp;                    /* ike-tcp-service: the TCP listeners below */
	uint16_t ike_tcp_port;       /* what peers connect to */
	uint16_t internal_port;      /* where we listen when ike_tcp_port != natt_port */
	uint16_t natt_port;          /* 4500: always a listener */
	uint16_t admin_sport;        /* admin pass-through target when == ike_tcp_port */
	bool tls;                    /* ike-tls-service */
	const char *tls_cert, *tls_key;
	uint32_t max_conns;
	uint32_t idle_timeout_s;     /* connections that carry no IKE SA */
	uint32_t prefix_timeout_ms;  /* RFC 9329 prefix (and TLS handshake) deadline */
	uint32_t frame_timeout_ms;   /* a started frame must complete within this */
	bool udp;                    /* some phase1 uses UDP: sockets on ike_port and natt_port */
	uint16_t ike_port;           /* UDP 500 */
};

struct transport_handlers {
	void (*ike)(void *arg, struct tcp_conn *c, const uint8_t *msg, size_t len);
	void (*esp)(void *arg, struct tcp_conn *c, const uint8_t *pkt, size_t len);
	/* Outbound connection (re)established: the IKE layer resends outstanding requests. */
	void (*connected)(void *arg, struct tcp_conn *c);
	/* The connection is going away (inbound) or lost (outbound, reconnecting). */
	void (*closed)(void *arg, struct tcp_conn *c);
	/* Optional: after the frames of one read were dispatched (the ESP handler may batch its output). */
	void (*rx_batch_end)(void *arg);
	void *arg;
};

enum conn_close_reason {
	CLOSE_PEER,           /* orderly close */
	CLOSE_RESET,          /* socket error */
	CLOSE_PREFIX,         /* not the IKETCP prefix */
	CLOSE_PREFIX_TIMEOUT,
	CLOSE_LENGTH,         /* length 0 or 1 */
	CLOSE_IDLE,           /* idle or too slow */
	CLOSE_TLS,            /* TLS handshake or record error */
	CLOSE_LOCAL,          /* our decision: shutdown, tunnel down */
	CLOSE_OVERFLOW,       /* peer stopped reading */
	CLOSE_NOMEM,
};

struct transport *transport_new(struct loop *loop, const struct transport_handlers *h);
/* Apply (or re-apply on SIGHUP) settings: listeners are opened, kept or closed to match. */
int transport_configure(struct transport *tp, const struct transport_config *cfg);
/* Close every connection and listener, then free. NULL ok. */
void transport_free(struct transport *tp);
const char *transport_tls_fingerprint(const struct transport *tp);

/* Send one frame (IKE: the marker is added). -ENOBUFS when the peer is not reading, -ENOTCONN while reconnecting. */
int transport_send(struct tcp_conn *c, enum encap_kind kind, const void *data, size_t len);
/*
 * The same frame, queued without writing it: transport_flush() writes
 * everything queued since, one sendmsg (or SSL_write) per connection. On a
 * plain TCP stream an ESP frame is held by reference, its header written into
 * the TRANSPORT_QUEUE_LEAD bytes before data: those and data must stay until
 * transport_flush, and frames queued back to back go out as one piece. Other
 * frames, and frames for TLS or UDP, are copied. Errors as transport_send; a
 * refused frame leaves the stream intact (nothing of it was queued).
 */
#define TRANSPORT_QUEUE_LEAD 2 /* RFC 9329's length field */
int transport_queue(struct tcp_conn *c, enum encap_kind kind, uint8_t *data, size_t len);
void transport_flush(struct transport *tp);

/*
 * Originator: connect to peer (with TLS when asked), write the prefix, and on
 * an unexpected close reconnect with exponential backoff (1 s .. 32 s) until
 * transport_conn_close(). The handle stays valid across reconnects.
 */
struct tcp_conn *transport_connect(struct transport *tp, const struct sockaddr *peer, socklen_t peer_len,
				   bool tls);
void transport_conn_close(struct tcp_conn *c);

/* A connection that carries an IKE SA is not closed for idleness (DPD owns its liveness). */
void transport_conn_hold(struct tcp_conn *c, bool carries_sa);
/* Opaque pointer for the IKE layer. */
void transport_conn_set_user(struct tcp_conn *c, void *user);
void *transport_conn_user(const struct tcp_conn *c);
bool transport_conn_is_tls(const struct tcp_conn *c);
bool transport_conn_outbound(const struct tcp_conn *c);
bool transport_conn_up(const struct tcp_conn *c);
const struct sockaddr_storage *transport_conn_local(const struct tcp_conn *c);
const struct sockaddr_storage *transport_conn_peer(const struct tcp_conn *c);
unsigned transport_conn_count(const struct transport *tp);

/*
 * UDP (udp.c): a path is a struct tcp_conn for a (local port, peer address) pair;
 * transport_send and transport_conn_hold work on it as on a stream, it is always up,
 * never reconnects, and goes away (closed handler) when no IKE SA holds it and it idles.
 * Open ours to a peer's 500 (natt false) or 4500 (natt true); NULL when UDP is off.
 */
struct tcp_conn *transport_udp_open(struct transport *tp, const struct sockaddr *peer, socklen_t len, bool natt);
bool transport_conn_is_udp(const struct tcp_conn *c);
bool transport_udp_ports(const struct transport *tp, uint16_t *ike_port, uint16_t *natt_port); /* false: off */
bool transport_conn_is_natt(const struct tcp_conn *c); /* a UDP path on ike-natt-port */
/* The MTU of the route to a UDP path's peer (what an outer packet must fit); 0 for a stream, which
 * has no such limit. Asked of the kernel once per path. */
size_t transport_conn_mtu(struct tcp_conn *c);

/*
 * With two threads (daemon/dpthread.c) the IKE thread hears of a connection's end through a queue and
 * may still hold its pointer: a connection or path that goes is then buried, stamped with *seq (how many
 * events were queued by then), and freed by transport_reap once the IKE thread has handled that many.
 * A buried connection refuses sends (-ENOTCONN) and ignores close and hold.
 */
void transport_defer_frees(struct transport *tp, const uint64_t *seq);
void transport_reap(struct transport *tp, uint64_t done_seq);
bool transport_has_buried(const struct transport *tp);
/* ESP arrived on c: true at most once a second per connection (the IKE thread's DPD hears of it). */
bool transport_conn_alive_due(struct tcp_conn *c, uint64_t now_ms);
const char *conn_close_reason_name(enum conn_close_reason r);

#endif
