/*
 * Daemon-wide counters, one X-macro list per section so that `iketcpctl stats`
 * (text and JSON) is generated from the same list the code increments.
 * Add a counter by adding one X(name) line; nothing else needs to change.
 */
#ifndef IKETCP_STATS_H
#define IKETCP_STATS_H

#include <stdint.h>

/* RFC 9329 stream: connections and why each one ended. */
#define STATS_TCP(X)                                                                  \
	X(accepted)          /* inbound connections accepted */                       \
	X(active)            /* connections open now (a gauge) */                     \
	X(connected)         /* outbound connections established */                   \
	X(prefix_errors)     /* closed: bytes were not the "IKETCP" prefix */         \
	X(prefix_timeouts)   /* closed: the prefix did not arrive in time */          \
	X(bad_length)        /* closed: frame length 0 or 1, or too short */          \
	X(timeouts)          /* closed: idle or too slow */                           \
	X(frames_ike)        /* frames with the non-ESP marker, to IKE */             \
	X(frames_esp)        /* frames with an SPI, to ESP */                         \
	X(keepalives)        /* 1-byte 0xFF frames, dropped */                        \
	X(ike_too_short)     /* IKE frames shorter than an IKE header, dropped */     \
	X(frames_malformed)  /* frames too short to be IKE, ESP or a keepalive */     \
	X(partial_at_close)  /* a frame cut short by the close, discarded */          \
	X(closed_by_peer)    /* orderly close from the peer */                        \
	X(closed_reset)      /* reset or socket error */                              \
	X(closed_local)      /* closed by us (shutdown, tunnel down) */               \
	X(refused_limit)     /* refused: max-connections reached */                   \
	X(write_overflow)    /* frames dropped: peer not reading, send queue full */  \
	X(tls_handshakes)    /* TLS 1.3 handshakes completed */                       \
	X(tls_failures)      /* closed: TLS handshake or record error */              \
	X(admin_passthrough) /* non-IKE connections spliced to the admin service */  \
	X(reconnects)        /* originator reconnect attempts */

/* IKE and ESP over UDP 500/4500 (RFC 7296 2.23, RFC 3948): datagrams and peer paths. */
#define STATS_UDP(X)                                                                  \
	X(datagrams_in)                                                              \
	X(datagrams_out)                                                             \
	X(ike_in)           /* IKE messages (500, or 4500 with the non-ESP marker) */ \
	X(esp_in)           /* ESP packets on 4500 */                                \
	X(keepalives)       /* NAT keepalives (one 0xFF byte) received */            \
	X(keepalives_sent)  /* sent on quiet 4500 paths that carry an SA */          \
	X(malformed)        /* too short to be IKE, ESP or a keepalive, dropped */   \
	X(esp_no_path)      /* ESP from an address no IKE SA talks to, dropped */    \
	X(paths)            /* peer paths now (a gauge) */                           \
	X(paths_evicted)    /* paths no SA held, dropped to make room */            \
	X(send_errors)      /* sendmsg failed (buffer full, no route) */           \
	X(gso_sends)        /* messages of several ESP datagrams (UDP_SEGMENT) */   \
	X(gro_reads)        /* reads of several ESP datagrams joined (UDP_GRO) */

#define STATS_IKE(X)                                                                  \
	X(sa_established)   /* IKE SAs up, by IKE_AUTH or by a rekey */              \
	X(sa_rekeyed)       /* of those, by an IKE SA rekey (CREATE_CHILD_SA) */    \
	X(sa_expired)       /* deleted at keylife because no rekey succeeded */      \
	X(auth_failures)                                                             \
	X(invalid_messages)                                                          \
	X(cookies_sent)                                                              \
	X(messages_in)                                                               \
	X(messages_out)                                                              \
	X(retransmits)      /* requests sent again over UDP (2.1) */                 \
	X(half_open)        /* responder SAs waiting for IKE_AUTH now (a gauge) */   \
	X(queue_drops)      /* messages dropped: the IKE thread was too far behind */ \
	X(unknown_spi)

#define STATS_ESP(X)                                                                  \
	X(packets_in)                                                                \
	X(packets_out)                                                               \
	X(replay_drops)                                                              \
	X(auth_failures)                                                             \
	X(unknown_spi)                                                               \
	X(malformed)                                                                 \
	X(no_sa)            /* clear packet matching no CHILD SA (from the dataplane) */ \
	X(no_stream)        /* its SA had no stream at that moment */                \
	X(policy_drops)     /* decrypted, but outside the SA's traffic selectors */  \
	X(send_errors)                                                               \
	X(expired)          /* refused: SA past its hard lifetime */ \
	X(mss_clamped)      /* TCP SYNs whose MSS was lowered to fit a UDP path */   \
	X(too_big)          /* ICMP "fragmentation needed" / "packet too big" sent */ \
	X(shared_batches)   /* batches whose crypto the dataplane's workers shared */ \
	X(worker_packets)   /* packets sealed or opened on a worker thread */

/* Offloads of either dataplane: TCP superpackets the kernel hands over whole (TUN vnet headers; AF_XDP
 * multi-buffer frames) are split before sealing, opened segments are joined before they leave (TUN
 * write; AF_XDP's packet socket). The section keeps its first user's name. */
#define STATS_TUN(X)                                                                  \
	X(gso_reads)          /* TCP superpackets received, split before sealing */   \
	X(gso_segments)       /* the segments they were split into */                \
	X(gso_drops)          /* bad vnet header, unoffered type, oversized non-TCP */ \
	X(coalesced)          /* superpackets of opened segments sent whole */       \
	X(coalesced_segments) /* the opened segments joined into them */

/* Summed from the BPF per-CPU counter maps when asked for. */
#define STATS_XDP(X)                                                                  \
	X(steered_in)                                                                \
	X(steered_out)                                                               \
	X(passed)                                                                    \
	X(syn_dropped)                                                               \
	X(malformed)                                                                 \
	X(to_xsk)

#define STATS_SECTIONS(S) S(tcp, STATS_TCP) S(udp, STATS_UDP) S(ike, STATS_IKE) S(esp, STATS_ESP) S(tun, STATS_TUN) S(xdp, STATS_XDP)

#define STATS_FIELD(name) uint64_t name;
#define STATS_STRUCT(sec, LIST) struct { LIST(STATS_FIELD) } sec;
struct stats {
	STATS_SECTIONS(STATS_STRUCT)
};
#undef STATS_STRUCT
#undef STATS_FIELD

extern struct stats stats;

#define STAT_INC(sec, name) (stats.sec.name++)
#define STAT_DEC(sec, name) (stats.sec.name--)
#define STAT_ADD(sec, name, n) (stats.sec.name += (n))

struct jw;
/* Write every section of s as JSON members of the object open in w. */
void stats_write_json(const struct stats *s, struct jw *w);

#endif
