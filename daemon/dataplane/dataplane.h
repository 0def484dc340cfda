/*
 * The TUN dataplane (`set dataplane tun`, and the fallback for xdp): clear
 * packets the kernel routes into the TUN device are sealed into their CHILD
 * SA's ESP and sent as frames on the SA's RFC 9329 stream; ESP from a stream
 * is opened, checked against the SA's selectors and written back to the TUN.
 * Runs in the loop it is given (the daemon's dataplane thread, daemon/dpthread.h;
 * other threads call it under that thread's lock); the per-packet path does not allocate.
 *
 * Global counters: this module keeps stats.esp.* itself, per packet (do not
 * also add its SAs' esp_sa_stats with esp_sa_stats_add).
 */
#ifndef IKETCP_DATAPLANE_H
#define IKETCP_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/child_sa.h"

struct loop;
struct tcp_conn;
struct dataplane;

/* Sends one ESP packet as a frame on a stream; production: transport_send(c, ENCAP_ESP, ...). */
typedef int (*dataplane_send_fn)(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len);

/* Runs once after a batch of queued frames: production transport_flush. */
typedef void (*dataplane_flush_fn)(void *arg);

/*
 * Create the TUN device (IFF_TUN | IFF_NO_PI, and IFF_VNET_HDR with TCP
 * segmentation offload when the kernel has it), MTU 1500, up, watched in
 * loop. NULL on failure (logged).
 */
struct dataplane *dataplane_tun_new(struct loop *loop, const char *ifname, dataplane_send_fn send,
				    void *send_arg);
/*
 * Batched sending, as afxdp_set_batch: each sealed frame goes to queue
 * (production: transport_queue) and flush(send_arg) runs after each pass over
 * the TUN (transport_flush). queue may hold the frame by reference and write
 * the DATAPLANE_QUEUE_LEAD bytes before it: both stay until flush has run,
 * and frames sealed one after the other lie back to back (esp_batch_hold).
 * Both NULL: send each frame at once (the default).
 */
#define DATAPLANE_QUEUE_LEAD 2 /* a stream frame's header (RFC 9329: the length) */
void dataplane_set_batch(struct dataplane *dp, dataplane_send_fn queue, dataplane_flush_fn flush);
/* Removes its routes, destroys its SAs (keys wiped), closes the TUN. NULL is a no-op. */
void dataplane_free(struct dataplane *dp);

/* arg: the struct dataplane *. */
extern const struct child_sa_ops dataplane_child_ops;

/*
 * An ESP frame from a stream (SPI first). Unknown SPI, ICV failure, replay,
 * malformed: dropped and counted. With offloads, in-order TCP segments of one
 * flow are held and joined into one superpacket, written by
 * dataplane_tx_flush (call it once per stream read); any other packet is
 * written at once, after what was held.
 */
void dataplane_esp_input(struct dataplane *dp, struct tcp_conn *c, const uint8_t *esp, size_t len);
/* The same, opened with the rest of the stream read at dataplane_tx_flush. */
void dataplane_esp_queue(struct dataplane *dp, struct tcp_conn *c, const uint8_t *esp, size_t len);
/* Opens what was queued, then writes the held superpacket to the TUN. NULL is a no-op. */
void dataplane_tx_flush(struct dataplane *dp);

struct workers;
/* Who shares the sealing and opening of each batch (workers.h); NULL (the default): this thread alone. */
void dataplane_set_workers(struct dataplane *dp, struct workers *w);

const char *dataplane_ifname(const struct dataplane *dp);

/* Drops this module counts besides stats.esp. */
struct dataplane_counters {
	uint64_t no_sa;            /* TUN packet matching no SA's selectors (or not IPv4/IPv6) */
	uint64_t no_stream;        /* TUN packet whose SA has no stream right now */
	uint64_t send_errors;      /* the stream refused the frame, or esp_encap failed */
	uint64_t policy_drops;     /* decrypted packet outside the SA's selectors */
	uint64_t tun_write_errors; /* the TUN refused a decrypted packet */
	uint64_t expired;          /* the SA is past its hard lifetime or out of sequence numbers */
	/* virtio-net offloads (gso.h) */
	uint64_t gso_reads;          /* TCP superpackets read from the TUN */
	uint64_t gso_segments;       /* the segments they were split into */
	uint64_t gso_drops;          /* reads with a malformed vnet header or packet, an unoffered type, or too long */
	uint64_t coalesced;          /* superpackets written to the TUN */
	uint64_t coalesced_segments; /* the opened segments joined into them */
};
void dataplane_counters(const struct dataplane *dp, struct dataplane_counters *out);

/* Installed CHILD SAs (for status and tests). */
unsigned dataplane_sa_count(const struct dataplane *dp);

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
/* Test hooks: a dataplane with no device and no routes that writes opened
 * packets to fd (it takes fd over), and a packet as if read from the TUN
 * (then the batch is flushed). With vnet on, fd's reads and writes are
 * framed as a TUN with IFF_VNET_HDR frames them (a virtio_net_hdr first). */
struct dataplane *dataplane_fd_new_for_test(int fd, dataplane_send_fn send, void *send_arg);
void dataplane_vnet_for_test(struct dataplane *dp, bool on);
void dataplane_tun_input_for_test(struct dataplane *dp, const uint8_t *pkt, size_t len);
#endif

#endif
