/*
 * Packet fixtures for steer.bpf.c tests and benchmarks: Ethernet (+VLAN) / IPv4
 * (+options) or IPv6 (+extension headers) / TCP (+options) / payload, with the IP
 * and TCP checksums computed from scratch (not incrementally, unlike the program).
 */
#ifndef IKETCP_TESTS_STEER_PKT_H
#define IKETCP_TESTS_STEER_PKT_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct pkt_spec {
	bool v6;
	int vlan;          /* number of 802.1Q tags, 0-2 */
	int ip_opt_len;    /* IPv4 options, multiple of 4, <= 40 */
	int ext_hop;       /* IPv6 Hop-by-Hop header bytes (multiple of 8, 0 = none) */
	int ext_dst;       /* IPv6 Destination Options bytes */
	bool ext_frag;     /* IPv6 Fragment header (first fragment) */
	uint8_t proto;     /* 0 = TCP */
	uint16_t sport, dport;
	uint8_t tcp_flags; /* 0 = ACK|PSH */
	int tcp_opt_len;   /* multiple of 4, <= 40 */
	int payload_len;
	uint8_t src_last;  /* last byte of the source address (sources for the SYN limit) */
	uint8_t src_net;   /* IPv6: byte 7 of the source address, i.e. which /64 */
	uint8_t dst_last;  /* last byte of the destination address; 0 = 1 */
	uint8_t fill;      /* payload byte seed */
};

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_PSH 0x08
#define TCPF_ACK 0x10

struct pkt_layout {
	size_t len;
	size_t l3, l4; /* offsets of the IP and TCP headers */
};

static inline uint32_t csum_add_bytes(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)(p[n - 1] << 8);
	return sum;
}

static inline uint16_t csum_finish(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Full L4 checksum over pseudo-header + segment with the check field as it is: 0 when valid. */
static inline uint16_t l4_csum_verify(const uint8_t *pkt, const struct pkt_layout *l, bool v6, uint8_t proto)
{
	size_t seg = l->len - l->l4;
	uint32_t sum = 0;

	if (v6) {
		sum = csum_add_bytes(sum, pkt + l->l3 + 8, 32);
		sum += (uint32_t)(seg >> 16) + (uint32_t)(seg & 0xffff);
	} else {
		sum = csum_add_bytes(sum, pkt + l->l3 + 12, 8);
		sum += (uint32_t)seg;
	}
	sum += proto;
	sum = csum_add_bytes(sum, pkt + l->l4, seg);
	return csum_finish(sum);
}

static inline size_t pkt_build(uint8_t *b, size_t cap, const struct pkt_spec *s, struct pkt_layout *l)
{
	uint8_t proto = s->proto ? s->proto : 6;
	size_t off = 0, tcp_len = 20 + (size_t)s->tcp_opt_len;
	size_t l4_len = (proto == 6 ? tcp_len : 8) + (size_t)s->payload_len;
	size_t ext = (size_t)s->ext_hop + (size_t)s->ext_dst + (s->ext_frag ? 8 : 0);
	size_t need = 14 + 4 * (size_t)s->vlan + (s->v6 ? 40 + ext : 20 + (size_t)s->ip_opt_len) + l4_len;
	uint16_t ethertype = s->v6 ? 0x86dd : 0x0800;

	if (need > cap)
		return 0;
	memset(b, 0, need);
	memcpy(b, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02", 12);
	off = 12;
	for (int i = 0; i < s->vlan; i++) {
		b[off] = 0x81, b[off + 1] = 0x00, b[off + 2] = 0, b[off + 3] = (uint8_t)(10 + i);
		off += 4;
	}
	b[off] = (uint8_t)(ethertype >> 8), b[off + 1] = (uint8_t)ethertype;
	off += 2;
	l->l3 = off;
	if (!s->v6) {
		size_t ihl = 20 + (size_t)s->ip_opt_len, tot = ihl + l4_len;
		b[off] = (uint8_t)(0x40 | ihl / 4);
		b[off + 2] = (uint8_t)(tot >> 8), b[off + 3] = (uint8_t)tot;
		b[off + 4] = 0x12, b[off + 5] = 0x34;
		b[off + 6] = 0x40; /* DF */
		b[off + 8] = 64, b[off + 9] = proto;
		memcpy(b + off + 12, "\xc0\x00\x02", 3), b[off + 15] = s->src_last;
		memcpy(b + off + 16, "\xc6\x33\x64", 3), b[off + 19] = s->dst_last ? s->dst_last : 1;
		for (int i = 0; i < s->ip_opt_len; i++) /* NOPs, then End of Options */
			b[off + 20 + i] = i == s->ip_opt_len - 1 ? 0 : 1;
		uint16_t c = csum_finish(csum_add_bytes(0, b + off, ihl));
		b[off + 10] = (uint8_t)(c >> 8), b[off + 11] = (uint8_t)c;
		off += ihl;
	} else {
		size_t plen = ext + l4_len;
		uint8_t *nh = b + off + 6;
		b[off] = 0x60;
		b[off + 4] = (uint8_t)(plen >> 8), b[off + 5] = (uint8_t)plen;
		b[off + 7] = 64;
		memcpy(b + off + 8, "\x20\x01\x0d\xb8", 4), b[off + 15] = s->src_net, b[off + 23] = s->src_last;
		memcpy(b + off + 24, "\x20\x01\x0d\xb8\x00\x01", 6), b[off + 39] = s->dst_last ? s->dst_last : 1;
		off += 40;
		if (s->ext_hop) {
			*nh = 0, nh = b + off;
			b[off + 1] = (uint8_t)(s->ext_hop / 8 - 1);
			b[off + 2] = 1, b[off + 3] = (uint8_t)(s->ext_hop - 4); /* PadN */
			off += (size_t)s->ext_hop;
		}
		if (s->ext_dst) {
			*nh = 60, nh = b + off;
			b[off + 1] = (uint8_t)(s->ext_dst / 8 - 1);
			b[off + 2] = 1, b[off + 3] = (uint8_t)(s->ext_dst - 4);
			off += (size_t)s->ext_dst;
		}
		if (s->ext_frag) {
			*nh = 44, nh = b + off;
			b[off + 3] = 1; /* offset 0, M = 1: the first fragment */
			b[off + 4] = 0xab;
			off += 8;
		}
		*nh = proto;
	}
	l->l4 = off;
	if (proto == 6) {
		b[off] = (uint8_t)(s->sport >> 8), b[off + 1] = (uint8_t)s->sport;
		b[off + 2] = (uint8_t)(s->dport >> 8), b[off + 3] = (uint8_t)s->dport;
		memcpy(b + off + 4, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
		b[off + 12] = (uint8_t)(tcp_len / 4 << 4);
		b[off + 13] = s->tcp_flags ? s->tcp_flags : TCPF_ACK | TCPF_PSH;
		b[off + 14] = 0xff, b[off + 15] = 0xff;
		for (int i = 0; i < s->tcp_opt_len; i++) /* MSS 1460 then NOPs */
			b[off + 20 + i] = i < 4 ? (uint8_t[]){ 2, 4, 0x05, 0xb4 }[i] : 1;
		off += tcp_len;
	} else {
		b[off] = (uint8_t)(s->sport >> 8), b[off + 1] = (uint8_t)s->sport;
		b[off + 2] = (uint8_t)(s->dport >> 8), b[off + 3] = (uint8_t)s->dport;
		b[off + 4] = (uint8_t)(l4_len >> 8), b[off + 5] = (uint8_t)l4_len;
		off += 8;
	}
	for (int i = 0; i < s->payload_len; i++)
		b[off + (size_t)i] = (uint8_t)(s->fill + i * 7);
	off += (size_t)s->payload_len;
	l->len = off;
	if (proto == 6 || proto == 17) {
		size_t ck = l->l4 + (proto == 6 ? 16 : 6);
		uint16_t c = l4_csum_verify(b, l, s->v6, proto);
		b[ck] = (uint8_t)(c >> 8), b[ck + 1] = (uint8_t)c;
	}
	return off;
}

static inline uint16_t pkt_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

#endif
