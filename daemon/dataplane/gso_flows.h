/*
 * Coalescing across a few TCP flows at once: the opened segments of one
 * stream read are joined per flow into superpackets (gso.h) and written when
 * the read ends (gso_flows_flush). Each flow keeps its order: a packet that
 * cannot join is written after what its flow holds. Between flows order does
 * not matter. Shared by the TUN (written behind a vnet header) and AF_XDP
 * (written through a packet socket) dataplanes.
 */
#ifndef IKETCP_DATAPLANE_GSO_FLOWS_H
#define IKETCP_DATAPLANE_GSO_FLOWS_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/gso.h"

#define GSO_FLOWS 4 /* flows joined at once: the rest take turns */

/*
 * Writes one packet: h NULL, a packet as it came; otherwise a builder's
 * result, a superpacket of segs segments (gso_type NONE when segs is 1).
 */
/* pkt is writable: the caller's packet or a builder's buffer. */
typedef void (*gso_write_fn)(void *arg, const struct gso_hdr *h, uint8_t *pkt, size_t len, unsigned segs);

struct gso_flows {
	struct gso_coalesce co[GSO_FLOWS];
	unsigned next; /* the builder a new flow takes when all are busy */
	gso_write_fn write;
	void *arg;
};

/* bufs: GSO_FLOWS buffers of GSO_PKT_MAX bytes, the caller's. */
void gso_flows_init(struct gso_flows *f, uint8_t (*bufs)[GSO_PKT_MAX], gso_write_fn write, void *arg);
/* One opened IP packet: joined, or written (after its flow's superpacket). */
void gso_flows_input(struct gso_flows *f, uint8_t *pkt, size_t len);
/* Writes every superpacket held. */
void gso_flows_flush(struct gso_flows *f);

#endif
