/*
 * Bounds-checked header parsing for XDP and tc, in the xdp-tools style: a cursor
 * that only advances after `(h + 1) > data_end` (or an explicit length) was
 * checked. Each parser returns the next protocol, PARSE_OTHER when the packet is
 * fine but not for us, or PARSE_MALFORMED when a header is cut short or lies.
 */
#ifndef IKETCP_BPF_PARSE_H
#define IKETCP_BPF_PARSE_H

#include <bpf/bpf_endian.h>

#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#endif
#define IPV4_FRAG_OFFSET 0x1fff
#define IPV6_FRAG_OFFSET 0xfff8 /* in frag_off, network order converted */

#define PARSE_MALFORMED (-1)
#define PARSE_OTHER     (-2)

#define VLAN_MAX_DEPTH 2 /* 802.1ad + 802.1Q */
#define IPV6_EXT_MAX   4 /* extension headers walked before giving up (PARSE_OTHER) */

struct hdr_cursor {
	void *pos;
};

/* Returns the EtherType after up to VLAN_MAX_DEPTH tags, in network order. */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end)
{
	struct ethhdr *eth = nh->pos;
	struct vlan_hdr *vlh;
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	nh->pos = eth + 1;
	proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		vlh = nh->pos;
		if ((void *)(vlh + 1) > data_end)
			return PARSE_MALFORMED;
		proto = vlh->h_vlan_encapsulated_proto;
		nh->pos = vlh + 1;
	}
	return proto;
}

/*
 * IPv4 with options (RFC 791 3.1): IHL 5..15 words, all inside the packet. A
 * non-first fragment carries no transport header: PARSE_OTHER.
 */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end, struct iphdr **iphdr)
{
	struct iphdr *iph = nh->pos;
	__u32 hdrsize;

	if ((void *)(iph + 1) > data_end)
		return PARSE_MALFORMED;
	if (iph->version != 4)
		return PARSE_MALFORMED;
	hdrsize = iph->ihl * 4;
	if (hdrsize < sizeof(*iph))
		return PARSE_MALFORMED;
	if (nh->pos + hdrsize > data_end)
		return PARSE_MALFORMED;
	*iphdr = iph;
	nh->pos += hdrsize;
	if (iph->frag_off & bpf_htons(IPV4_FRAG_OFFSET))
		return PARSE_OTHER;
	return iph->protocol;
}

struct ipv6_opt_hdr_min {
	__u8 nexthdr;
	__u8 hdrlen;
};

/*
 * IPv6 (RFC 8200 4) and the extension headers that may precede TCP: Hop-by-Hop,
 * Routing, Destination Options ((len + 1) * 8 bytes), Fragment (8 bytes; a
 * non-first fragment is PARSE_OTHER) and AH (RFC 4302: (len + 2) * 4 bytes).
 */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end,
					struct ipv6hdr **ip6hdr)
{
	struct ipv6hdr *ip6h = nh->pos;
	struct ipv6_opt_hdr_min *opt;
	struct frag_hdr *fh;
	__u8 next;

	if ((void *)(ip6h + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip6h->version != 6)
		return PARSE_MALFORMED;
	*ip6hdr = ip6h;
	nh->pos = ip6h + 1;
	next = ip6h->nexthdr;

#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		switch (next) {
		case 0:  /* IPPROTO_HOPOPTS */
		case 43: /* IPPROTO_ROUTING */
		case 60: /* IPPROTO_DSTOPTS */
			opt = nh->pos;
			if ((void *)(opt + 1) > data_end)
				return PARSE_MALFORMED;
			next = opt->nexthdr;
			nh->pos += (opt->hdrlen + 1) * 8;
			break;
		case 51: /* IPPROTO_AH */
			opt = nh->pos;
			if ((void *)(opt + 1) > data_end)
				return PARSE_MALFORMED;
			next = opt->nexthdr;
			nh->pos += (opt->hdrlen + 2) * 4;
			break;
		case 44: /* IPPROTO_FRAGMENT */
			fh = nh->pos;
			if ((void *)(fh + 1) > data_end)
				return PARSE_MALFORMED;
			if (fh->frag_off & bpf_htons(IPV6_FRAG_OFFSET))
				return PARSE_OTHER;
			next = fh->nexthdr;
			nh->pos = fh + 1;
			break;
		default:
			return next;
		}
	}
	/* Too many extension headers to follow: not ours to judge. */
	return PARSE_OTHER;
}

/* TCP (RFC 9293 3.1): data offset 5..15 words, options inside the packet. */
static __always_inline int parse_tcphdr(struct hdr_cursor *nh, void *data_end, struct tcphdr **tcphdr)
{
	struct tcphdr *tcp = nh->pos;
	__u32 len;

	if ((void *)(tcp + 1) > data_end)
		return PARSE_MALFORMED;
	len = tcp->doff * 4;
	if (len < sizeof(*tcp))
		return PARSE_MALFORMED;
	if (nh->pos + len > data_end)
		return PARSE_MALFORMED;
	*tcphdr = tcp;
	nh->pos += len;
	return 0;
}

#endif
