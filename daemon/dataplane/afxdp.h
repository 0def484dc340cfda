/*
 * The AF_XDP dataplane (`set dataplane xdp` with inner interfaces): clear.bpf.c
 * on each inner interface hands packets for a CHILD SA's remote selectors to
 * AF_XDP sockets (one per RX queue, libxdp xsk API, zero-copy when the driver
 * allows, copy mode otherwise); they are sealed into ESP and sent on the SA's
 * RFC 9329 stream. ESP from a stream is opened, checked against the selectors
 * and sent to the LAN host from an AF_XDP socket with an Ethernet header built
 * from the kernel's route and neighbour tables, or, when the neighbour is not
 * resolved (or the route leaves elsewhere), through a raw IP socket so that
 * the kernel routes it and resolves the neighbour.
 *
 * Same contract as dataplane.h (which it mirrors): runs in the loop it is given
 * (the daemon's dataplane thread, daemon/dpthread.h; other threads call it under
 * that thread's lock), no allocation per packet, keeps stats.esp.* itself per packet.
 */
#ifndef IKETCP_DATAPLANE_AFXDP_H
#define IKETCP_DATAPLANE_AFXDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/child_sa.h"
#include "dataplane/dataplane.h" /* dataplane_send_fn */
#include "maps/maps.h"

struct loop;
struct tcp_conn;
struct afxdp;

#define AFXDP_MAX_IFS 8

/*
 * Loads clear.bpf.o on each interface (native XDP, else generic; generic
 * only: `set xdp-mode generic`), opens one AF_XDP socket per RX queue
 * (multi-buffer where the kernel has it) and watches them in loop. pin_root
 * (NULL: no pins) gets <pin_root>/<ifname>/clear_{v4,v6,xsks,counters}. NULL when AF_XDP cannot
 * be set up, with the reason logged: the caller falls back to TUN.
 */
struct afxdp *dataplane_afxdp_new(struct loop *loop, const char *const *ifnames, size_t n,
				  const char *pin_root, bool generic, dataplane_send_fn send, void *send_arg);
/* Detaches the programs, removes pins, destroys its SAs (keys wiped). NULL is a no-op. */
void afxdp_free(struct afxdp *dp);

/* arg: the struct afxdp *. Install/remove also update the selector LPM maps. */
extern const struct child_sa_ops afxdp_child_ops;

/* An ESP frame from a stream (SPI first). Unknown SPI, ICV failure, replay, malformed: dropped and counted. */
void afxdp_esp_input(struct afxdp *dp, struct tcp_conn *c, const uint8_t *esp, size_t len);
/*
 * The same, but an AF_XDP transmission waits for afxdp_tx_flush(): the frames
 * of one stream read leave with one kernel wakeup, not one each, and in-order
 * TCP segments of one flow are joined into a superpacket sent whole through a
 * packet socket with a vnet header (AF_XDP has no GSO).
 */
void afxdp_esp_queue(struct afxdp *dp, struct tcp_conn *c, const uint8_t *esp, size_t len);
void afxdp_tx_flush(struct afxdp *dp);

/*
 * Batched stream output: the frames sealed from one AF_XDP RX pass go through
 * queue (production: transport_queue) and flush(send_arg) runs once after the
 * pass (transport_flush). queue may hold the frame by reference and write the
 * DATAPLANE_QUEUE_LEAD bytes before it, as dataplane_set_batch. Both NULL: send
 * each frame at once (the default).
 */
typedef void (*dataplane_flush_fn)(void *arg);
void afxdp_set_batch(struct afxdp *dp, dataplane_send_fn queue, dataplane_flush_fn flush);

struct workers;
/* Who shares the sealing and opening of each batch (workers.h); NULL (the default): this thread alone. */
void afxdp_set_workers(struct afxdp *dp, struct workers *w);

struct afxdp_counters {
	uint64_t rx_frames;     /* frames read from the AF_XDP sockets */
	uint64_t malformed;     /* frames that are not a whole untagged IPv4/IPv6 packet */
	uint64_t no_sa;         /* destination in a selector but no SA's pair matches */
	uint64_t no_stream;     /* its SA has no stream right now */
	uint64_t send_errors;   /* the stream refused the frame, or esp_encap failed */
	uint64_t expired;       /* SA past its hard lifetime or out of sequence numbers */
	uint64_t policy_drops;  /* decrypted packet outside the SA's selectors */
	uint64_t tx_xsk;        /* decrypted packets sent from an AF_XDP socket */
	uint64_t tx_kernel;     /* decrypted packets handed to the kernel (neighbour miss, other route) */
	uint64_t tx_errors;     /* no route, TX ring full, raw socket refused */
	/* Offloads, as the TUN dataplane's (stats.tun) */
	uint64_t gso_reads;          /* TCP superpackets received (multi-buffer frames), split before sealing */
	uint64_t gso_segments;       /* the segments they were split into */
	uint64_t gso_drops;          /* frames bigger than the link that were not TCP, or over 64 KiB */
	uint64_t coalesced;          /* opened TCP segments joined into superpackets, sent by the packet socket */
	uint64_t coalesced_segments; /* the segments joined into them */
};
void afxdp_counters(const struct afxdp *dp, struct afxdp_counters *out);
/* clear.bpf.c's counters summed over CPUs and interfaces; 0 or -errno. */
int afxdp_bpf_counters(const struct afxdp *dp, uint64_t out[CLEAR_CNT_MAX]);

unsigned afxdp_sa_count(const struct afxdp *dp);
/* Every inner interface has its program attached in native mode. */
bool afxdp_all_native(const struct afxdp *dp);
/* Sockets opened, and how many of them are zero-copy. */
unsigned afxdp_socket_count(const struct afxdp *dp, unsigned *zerocopy);

#endif
