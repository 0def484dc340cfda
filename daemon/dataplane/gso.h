/*
 * TCP segmentation and coalescing for the TUN dataplane's virtio-net offloads
 * (IFF_VNET_HDR): a read from the TUN may be one TCP superpacket of up to
 * 64 KiB that we split into MSS-sized segments before sealing each into ESP,
 * and the opened segments of one stream read are joined back into superpackets
 * the kernel segments (or forwards whole) after our one write. Pure functions
 * on caller buffers: no I/O, no allocation. The header and packet come from
 * the kernel (and, opened, from the peer) and are parsed as untrusted.
 *
 *   virtio_net_hdr (10 bytes, little-endian: TUNSETVNETLE)
 *   +-------+----------+---------+----------+------------+-------------+
 *   | flags | gso_type | hdr_len | gso_size | csum_start | csum_offset |
 *   |  u8   |   u8     |  le16   |  le16    |   le16     |    le16     |
 *   +-------+----------+---------+----------+------------+-------------+
 */
#ifndef IKETCP_DATAPLANE_GSO_H
#define IKETCP_DATAPLANE_GSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "iketcp/compiler.h"

#define GSO_VNET_HDR_LEN 10 /* sizeof(struct virtio_net_hdr) */
#define GSO_PKT_MAX 65535   /* an IPv4 total length, an IPv6 header plus payload length we accept */
#define GSO_HDR_MAX 120     /* IPv4 with options and TCP with options */

/* linux/virtio_net.h values, named once here. */
#define GSO_F_NEEDS_CSUM 1
#define GSO_TYPE_NONE 0
#define GSO_TYPE_TCPV4 1
#define GSO_TYPE_UDP 3
#define GSO_TYPE_TCPV6 4
#define GSO_TYPE_UDP_L4 5
#define GSO_TYPE_ECN 0x80

/* A virtio_net_hdr in host order. */
struct gso_hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

/* The header at the front of p: 0, or -EBADMSG when len < GSO_VNET_HDR_LEN. */
must_check int gso_hdr_parse(const uint8_t *p, size_t len, struct gso_hdr *h);
void gso_hdr_write(uint8_t out[GSO_VNET_HDR_LEN], const struct gso_hdr *h);

/*
 * NEEDS_CSUM without segmentation: the Internet checksum (RFC 1071) of
 * pkt[csum_start..len) stored at csum_start + csum_offset, whose field holds
 * the pseudo-header sum (as skb_checksum_help). 0 or -EBADMSG (out of bounds).
 */
must_check int gso_csum_complete(uint8_t *pkt, size_t len, uint16_t csum_start, uint16_t csum_offset);

/* ---- segmentation (read side) ------------------------------------------ */

struct gso_split {
	uint8_t *pkt;
	size_t len;         /* by the IP header's own length */
	size_t ip_hlen;     /* IPv4 with options, or 40 */
	size_t hlen;        /* IP and TCP headers */
	size_t mss;         /* payload bytes per segment */
	size_t off;         /* next payload byte */
	uint32_t seq;       /* of the first segment */
	uint16_t id;        /* IPv4 ID of the first segment */
	uint8_t tcp_flags;  /* of the superpacket */
	bool v6;
	unsigned n;         /* segments made so far */
	uint8_t hdr[GSO_HDR_MAX]; /* the superpacket's headers, kept: in place they are overwritten */
};

/*
 * A TCPV4/TCPV6 superpacket (h->gso_type, ECN bit refused: not offered) of
 * len bytes: IPv4 without fragmentation or IPv6 with TCP as next header, each
 * header whole, gso_size > 0, hdr_len within the packet. Segments carry at
 * most gso_size payload bytes, and fewer when max_len (0: no limit) caps a
 * whole segment. 0, -EBADMSG (malformed) or -EPROTONOSUPPORT (another type).
 */
must_check int gso_split_init(struct gso_split *s, const struct gso_hdr *h, uint8_t *pkt, size_t len,
			      size_t max_len);
/*
 * The next segment into out: IPv4 total length, ID (+1 each) and header
 * checksum, IPv6 payload length, TCP sequence number, FIN and PSH only on the
 * last and CWR only on the first, and the TCP checksum computed in full.
 * Its length, 0 when all are made, -ENOSPC when cap is too small.
 */
ssize_t gso_split_next(struct gso_split *s, uint8_t *out, size_t cap);
/*
 * The same segment made in place, without copying its payload: its headers
 * are written just before its payload in the superpacket, over the bytes of
 * the segment before it (use each segment before asking for the next, and
 * one of the two ways per superpacket). NULL when all are made.
 */
uint8_t *gso_split_next_inplace(struct gso_split *s, size_t *len);
/*
 * The same segment with its headers apart: they are written to hdr, and its
 * payload is left where it is in the superpacket (*payload, *pay_len bytes),
 * which stays as it was, so every segment made this way stays valid. The
 * headers' length, 0 when all are made. One of the three ways per superpacket.
 */
size_t gso_split_next_apart(struct gso_split *s, uint8_t hdr[GSO_HDR_MAX], const uint8_t **payload, size_t *pay_len);

/* ---- coalescing (write side) ------------------------------------------- */

/*
 * One superpacket being built in buf (at least GSO_PKT_MAX bytes, the
 * caller's): the first segment's headers, then the payloads of in-order
 * segments of the same TCP flow that followed it.
 */
struct gso_coalesce {
	uint8_t *buf;
	size_t len;      /* 0: empty */
	size_t ip_hlen, hlen;
	size_t mss;      /* payload of the first segment: the gso_size */
	unsigned segs;
	bool v6, closed; /* closed: a shorter segment or PSH ended it */
	uint32_t next_seq;
	uint16_t next_id;
};

enum gso_add {
	GSO_ADDED,     /* pkt is in the superpacket (as its first segment, or appended) */
	GSO_FLUSH,     /* a TCP segment that does not continue it: finish and write it, then add again */
	GSO_AS_IS,     /* not for coalescing (not TCP, flags, options, fragment, checksum): write pkt alone */
};

void gso_coalesce_init(struct gso_coalesce *c, uint8_t *buf);
/*
 * Appends pkt (a whole IP packet whose TCP checksum must be right) when it
 * continues the flow: same addresses, ports, ACK number, reserved bits (AE), window, TOS/traffic
 * class, TTL/hop limit, DF and TCP options; sequence number where the last
 * segment ended; only ACK (and PSH) set; the same payload size, or a shorter
 * last one; at most GSO_PKT_MAX bytes in all.
 */
enum gso_add gso_coalesce_add(struct gso_coalesce *c, const uint8_t *pkt, size_t len);
/* pkt could start a superpacket (its headers only; the checksum is left to gso_coalesce_add). */
bool gso_coalesce_candidate(const uint8_t *pkt, size_t len);
/* pkt is TCP of the flow c holds (family, addresses, ports): false when c is empty or it is not. */
bool gso_coalesce_same_flow(const struct gso_coalesce *c, const uint8_t *pkt, size_t len);
/*
 * The superpacket to write (*len bytes at c->buf, vnet header in *h) and the
 * builder emptied. One segment goes as it came (GSO_TYPE_NONE); more get their
 * IP lengths and checksum fixed, the TCP checksum field set to the pseudo-header
 * sum and NEEDS_CSUM, as virtio_net_hdr_to_skb expects. False when empty.
 */
bool gso_coalesce_finish(struct gso_coalesce *c, struct gso_hdr *h, size_t *len);

#endif
