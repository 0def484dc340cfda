/*
 * The IKEv2 engine (RFC 7296) over RFC 9329 streams: IKE_SA_INIT, IKE_AUTH
 * with PSK and the first CHILD SA, INFORMATIONAL (liveness, DELETE). The
 * daemon feeds it whole IKE messages and stream events; it answers through
 * struct ike_io and hands negotiated CHILD SAs to the dataplane through
 * struct child_sa_ops.
 */
#ifndef IKETCP_IKE_IKE_H
#define IKETCP_IKE_IKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dataplane/child_sa.h"

struct tcp_conn;
struct ike;
struct loop;
struct config;
struct jw;

/* How the engine reaches the network; production: the RFC 9329 transport, tests: an in-memory pipe. */
struct ike_io {
	/* Open (and keep reopening after losses) a stream to a static peer; TLS when asked. */
	struct tcp_conn *(*connect)(void *arg, const struct sockaddr *peer, socklen_t len, bool tls);
	int (*send)(void *arg, struct tcp_conn *c, const uint8_t *msg, size_t len); /* one IKE message */
	void (*close)(void *arg, struct tcp_conn *c);                                /* for good */
	void (*hold)(void *arg, struct tcp_conn *c, bool carries_sa); /* exempt from the idle timeout */
	/* Our address and the peer's, with ports, for NAT detection and status. */
	void (*addrs)(void *arg, struct tcp_conn *c, struct sockaddr_storage *local,
		      struct sockaddr_storage *peer);
	/* UDP (NULL: streams only). A path to peer's ike-port (natt false) or ike-natt-port (natt true),
	 * always up; datagram() tells paths from streams (requests are retransmitted on paths only). */
	struct tcp_conn *(*open_udp)(void *arg, const struct sockaddr *peer, socklen_t len, bool natt);
	bool (*datagram)(void *arg, struct tcp_conn *c);
	bool (*natt)(void *arg, struct tcp_conn *c);  /* a path on ike-natt-port: ESP can ride it */
	bool (*tls)(void *arg, struct tcp_conn *c);   /* a stream inside TLS (status only; NULL: never) */
	void *arg;
};

struct ike *ike_new(struct loop *loop, const struct ike_io *io, const struct child_sa_ops *child,
		    void *child_arg);
void ike_free(struct ike *ike); /* frees everything, sends nothing; NULL ok */
/* At start and after each reload (conf stays valid until the next call): initiate static phase1 entries with
 * auto-negotiate enable that have no IKE SA; delete SAs whose phase1 entry is gone. */
int ike_configure(struct ike *ike, const struct config *conf);
void ike_input(struct ike *ike, struct tcp_conn *c, const uint8_t *msg, size_t len); /* one IKE message */
void ike_conn_up(struct ike *ike, struct tcp_conn *c);   /* an outbound stream is (re)connected */
void ike_conn_down(struct ike *ike, struct tcp_conn *c); /* a stream is gone (inbound: forever) */
/* An ESP packet from the peer arrived on c: its IKE SA is alive (DPD, daemon/ike/dpd.c). Cheap. */
void ike_peer_alive(struct ike *ike, struct tcp_conn *c);
/* The dataplane: the CHILD SA of inbound SPI spi_in passed a soft lifetime (sequence numbers or
 * bytes); its rekey starts now, as at its time (nothing when it is gone or already rekeying). */
void ike_child_soft_life(struct ike *ike, uint32_t spi_in);
int ike_up(struct ike *ike, const char *phase1, const char **err);   /* iketcpctl up: 0 or -1 with *err */
int ike_down(struct ike *ike, const char *phase1, const char **err); /* DELETE the IKE SA (and its children) */
/* iketcpctl rekey: rekey the tunnel's IKE SAs now (RFC 7296 1.3.2); 0 or -1 with *err. */
int ike_rekey(struct ike *ike, const char *phase1, const char **err);
void ike_shutdown(struct ike *ike);
unsigned ike_half_open(const struct ike *ike); /* responder SAs waiting for IKE_AUTH now */ /* SIGTERM: send DELETE for every IKE SA now, best effort */
/* The tunnel's live members for iketcpctl status, written into the JSON object the caller has open:
 * "state" ("down"|"connecting"|"established"), "transport" ("udp"|"tcp"|"tls"), "transport_why" (transport auto:
 * why that one), "ike_sa" (null or {"spi_i","spi_r"
 * as 16 hex digits,"proposal","dhgrp","established_s","local","remote","role","peer_id"}), "child_sas" ([{"name","spi_in",
 * "spi_out" (8 hex digits),"proposal","bytes_in","bytes_out","packets_in","packets_out"}] with counters from
 * child_sa_ops.counters). For a dynamic phase1 with several peers, one IKE SA per peer: list the first and add
 * "peers": N and "ike_sas": every peer's IKE SA as above plus "transport" and "child_sas". json=false: one human line for the text status instead. */
void ike_status_tunnel(struct ike *ike, const char *phase1, struct jw *w, bool json);

#endif
