/* Transport internals shared by listener.c, conn.c and splice.c only. */
#ifndef IKETCP_TRANSPORT_INTERNAL_H
#define IKETCP_TRANSPORT_INTERNAL_H

#include <netinet/in.h>
#include <sys/uio.h>

#include "transport/sniff.h"
#include "transport/tls.h"
#include "transport/transport.h"

#define MAX_LISTENERS 2
#define TX_QUEUE_MAX (1u << 20) /* bytes queued for a peer that is slow to read */
#define TX_GATHER_MAX 512       /* frames transport_queue holds by reference until transport_flush */
#define SNIFF_MAX SNIFF_MAX_BYTES

struct listener {
	struct loop_io io;
	struct loop_timer resume; /* accepting again after running out of descriptors */
	struct transport *tp;
	uint16_t port;
	bool passthrough; /* non-IKE connections go to the admin service */
};

enum conn_state {
	CONN_CONNECTING, /* outbound: connect() in progress */
	CONN_BACKOFF,    /* outbound: waiting to reconnect */
	CONN_SNIFF,      /* inbound: what is it, IKETCP, TLS or the admin's HTTP(S)? */
	CONN_STREAM,     /* prefix and frames (inside TLS when tls != NULL) */
	CONN_SPLICE,     /* admin pass-through, owned by splice.c */
	CONN_UDP,        /* a UDP peer path (udp.c): no socket of its own */
};

struct splice;

struct tcp_conn {
	struct loop_io io;
	struct loop_timer timer;
	struct transport *tp;
	struct tcp_conn *prev, *next;
	enum conn_state state;
	bool outbound, passthrough, held, want_tls;
	/* Re-entrancy: a handler may close the connection it is being called for. */
	unsigned dispatching;            /* inside a frame handler: closes are deferred */
	bool close_pending;
	enum conn_close_reason pending_why;
	bool closing;                    /* inside conn_close (its closed handler runs) */
	bool close_for_good;             /* asked to close during closing: no reconnect */
	struct sockaddr_storage local, peer;
	socklen_t peer_len;
	struct tls_conn *tls;
	struct encap_rx rx;
	uint8_t *sniff;         /* first bytes while classifying */
	size_t sniff_len;
	uint8_t *txq;           /* bytes accepted but not yet written start at txq + txq_head */
	size_t txq_head, txq_len, txq_cap;
	struct tcp_conn *flush_next; /* on tp->flush_list: frames queued by transport_queue */
	bool flush_listed;
	size_t gather_bytes;         /* of those, held by reference in tp->gather (gather.c) */
	uint64_t opened_ms, last_rx_ms, frame_start_ms;
	uint32_t backoff_ms;
	bool peer_spoke;                 /* outbound: frames came since the last (re)connect */
	uint64_t quick_ms;               /* outbound: when it last reconnected without backing off */
	struct splice *splice;
	void *user;
	/* UDP paths only (udp.c) */
	struct udp_sock *usock;
	struct tcp_conn *hnext;          /* hash chain */
	unsigned holds;                  /* IKE SAs that use the path */
	uint32_t mtu;                    /* of the route to the peer; 0: not asked yet */
	uint64_t last_tx_ms;
	/* Two threads (transport_defer_frees): gone, but IKE may still hold the pointer */
	bool dead;
	uint64_t buried_at;              /* *tp->bury_seq when it died */
	struct tcp_conn *gnext;          /* tp->graveyard */
	uint64_t alive_ms;               /* transport_conn_alive_due */
};

struct udp;

/* A frame transport_queue took by reference (plain TCP): header and body, in the caller's buffer. */
struct gather_frame {
	struct tcp_conn *c; /* NULL: written or copied out already */
	const uint8_t *p;
	size_t len;
};

struct transport {
	struct loop *loop;
	struct transport_handlers h;
	struct transport_config cfg;
	struct listener listeners[MAX_LISTENERS];
	size_t n_listeners;
	struct tls_ctx *tls_server, *tls_client;
	struct tls_ctx *tls_retired[16]; /* replaced on reload, still used by live connections */
	size_t n_tls_retired;
	struct tcp_conn *conns; /* all connections, for shutdown */
	struct tcp_conn *flush_list; /* connections with frames from transport_queue not yet written */
	struct gather_frame gather[TX_GATHER_MAX]; /* in the order queued, all connections together */
	unsigned n_gather;
	struct iovec gather_iov[TX_GATHER_MAX]; /* one stream's frames, those back to back joined */
	unsigned n_conns;
	struct udp *udp;        /* udp.c: NULL while no phase1 uses UDP */
	const uint64_t *bury_seq;   /* NULL: connections are freed when they go (one thread) */
	struct tcp_conn *graveyard; /* gone, waiting for transport_reap */
	uint8_t scratch[256 * 1024]; /* one read: many frames dispatched per syscall */
};

/* conn.c */
/* The end of an unlinked connection or path: freed, or buried (transport_defer_frees). */
void conn_release(struct transport *tp, struct tcp_conn *c);
void conn_accepted(struct transport *tp, int fd, bool passthrough);
void conn_close(struct tcp_conn *c, enum conn_close_reason why);
/* Appends a then b to the send queue (0, -ENOBUFS past TX_QUEUE_MAX, -ENOMEM). */
int conn_txq_append(struct tcp_conn *c, const void *a, size_t alen, const void *b, size_t blen);

/* gather.c: frames queued by reference, written with one sendmsg per stream at transport_flush. */
void gather_add(struct tcp_conn *c, const uint8_t *frame, size_t len);
/* Copies c's held frames behind its send queue, in order, before anything else is queued there. */
void gather_spill(struct tcp_conn *c);
/* Forgets c's held frames (the connection is going). */
void gather_drop(struct tcp_conn *c);
/* Writes c's held frames after its queue, copying what the socket refuses into the queue; -1: closed. */
int gather_write(struct tcp_conn *c);
/* After a flush: the frames still held (queued by a handler meanwhile) move to the front. */
void gather_compact(struct transport *tp);
int set_nonblock_cloexec(int fd);

/* udp.c: transport_send, transport_conn_hold and transport_configure hand UDP paths here. */
int udp_configure(struct transport *tp, const struct transport_config *cfg);
void udp_free(struct transport *tp);
int udp_send(struct tcp_conn *c, enum encap_kind kind, const void *data, size_t len);
int udp_queue(struct tcp_conn *c, enum encap_kind kind, const void *data, size_t len); /* ESP: to udp_flush */
void udp_flush(struct transport *tp);
void udp_hold(struct tcp_conn *c, bool carries_sa);

/* splice.c: hand the connection (and the bytes sniffed so far) to the admin service. */
int splice_start(struct tcp_conn *c, uint16_t admin_port, const uint8_t *sniffed, size_t len);
void splice_free(struct tcp_conn *c);

#endif
