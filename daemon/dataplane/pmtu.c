/* Path MTU for inner packets: MSS clamping and ICMP "too big" (pmtu.h). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "dataplane/inet_csum.h"
#include "dataplane/pmtu.h"
#include "esp/esp.h"
#include "iketcp/buf.h"

enum {
	IP4_HLEN_MIN = 20,
	IP6_HLEN = 40,
	UDP_HLEN = 8,
	TCP_HLEN_MIN = 20,
	ESP_HDR = 8,                 /* SPI, sequence number */
	ESP_TRAILER = 2,             /* pad length, next header */
	ICMP_HLEN = 8,
	ICMP4_QUOTE_MAX = 576 - IP4_HLEN_MIN - ICMP_HLEN, /* RFC 1812 4.3.2.3 */
	ICMP6_QUOTE_MAX = 1280 - IP6_HLEN - ICMP_HLEN,    /* RFC 4443 2.4 (c) */
	IPV6_MIN_MTU = 1280,
	TCPOPT_EOL = 0, TCPOPT_NOP = 1, TCPOPT_MSS = 2,
	TCP_FLAG_SYN = 0x02,
};

size_t pmtu_inner_max(size_t outer_mtu, bool outer_ipv6, bool udp, const struct esp_sa *sa)
{
	size_t fixed = (outer_ipv6 ? IP6_HLEN : IP4_HLEN_MIN) + (udp ? UDP_HLEN : 0) + ESP_HDR + sa->iv_len +
		       sa->icv_len;
	size_t block = sa->block ? sa->block : 4;

	if (outer_mtu <= fixed + ESP_TRAILER)
		return 0;
	/* The encrypted part (inner + padding + trailer) is a multiple of block. */
	size_t room = (outer_mtu - fixed) / block * block;
	return room > ESP_TRAILER ? room - ESP_TRAILER : 0;
}

uint16_t pmtu_mss_for(size_t inner_max, bool ipv6)
{
	size_t hdrs = (ipv6 ? IP6_HLEN : IP4_HLEN_MIN) + TCP_HLEN_MIN;
	if (inner_max <= hdrs + 64)
		return 64;
	return inner_max - hdrs > 65535 ? 65535 : (uint16_t)(inner_max - hdrs);
}

/* The TCP header of an unfragmented IPv4/IPv6 packet (no IPv6 extension headers); NULL otherwise. */
static uint8_t *tcp_of(uint8_t *ip, size_t len, size_t *tcp_len)
{
	struct rd r = rd_init(ip, len);
	uint8_t vihl, proto;
	uint16_t frag;
	size_t hlen;

	if (rd_u8(&r, &vihl))
		return NULL;
	if (vihl >> 4 == 4) {
		hlen = (size_t)(vihl & 0x0f) * 4;
		if (hlen < IP4_HLEN_MIN || len < hlen || rd_peek_be16(&r, 5, &frag) || (frag & 0x3fff) ||
		    ip[9] != IPPROTO_TCP)
			return NULL; /* a fragment: no TCP header to trust */
	} else if (vihl >> 4 == 6) {
		hlen = IP6_HLEN;
		if (len < hlen)
			return NULL;
		proto = ip[6];
		if (proto != IPPROTO_TCP)
			return NULL;
	} else {
		return NULL;
	}
	if (len - hlen < TCP_HLEN_MIN)
		return NULL;
	*tcp_len = len - hlen;
	return ip + hlen;
}

/* RFC 1624: HC' = ~(~HC + ~m + m') for one 16-bit word. */
static void csum_replace16(uint8_t *csum, uint16_t old, uint16_t new)
{
	uint32_t sum = (uint16_t)~(csum[0] << 8 | csum[1]);
	sum += (uint16_t)~old;
	sum += new;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	csum[0] = (uint8_t)(sum >> 8);
	csum[1] = (uint8_t)sum;
}

bool pmtu_clamp_mss(uint8_t *ip, size_t len, uint16_t mss)
{
	size_t tcp_len;
	uint8_t *tcp = tcp_of(ip, len, &tcp_len);

	if (!tcp || !(tcp[13] & TCP_FLAG_SYN))
		return false;
	size_t doff = (size_t)(tcp[12] >> 4) * 4;
	if (doff < TCP_HLEN_MIN || doff > tcp_len)
		return false;
	struct rd r = rd_init(tcp + TCP_HLEN_MIN, doff - TCP_HLEN_MIN);
	while (!rd_empty(&r)) {
		uint8_t kind, olen;
		if (rd_u8(&r, &kind) || kind == TCPOPT_EOL)
			return false;
		if (kind == TCPOPT_NOP)
			continue;
		if (rd_u8(&r, &olen) || olen < 2 || rd_left(&r) < (size_t)olen - 2)
			return false;
		if (kind != TCPOPT_MSS || olen != 4) {
			if (rd_skip(&r, (size_t)olen - 2))
				return false;
			continue;
		}
		uint8_t *v = (uint8_t *)rd_ptr(&r);
		uint16_t cur = (uint16_t)(v[0] << 8 | v[1]);
		if (cur <= mss)
			return false;
		v[0] = (uint8_t)(mss >> 8);
		v[1] = (uint8_t)mss;
		/* At an odd offset (after a NOP or a 3-byte option) the value straddles two checksum
		 * words, where it adds in with its bytes swapped (RFC 1071 2 (B)). */
		if ((size_t)(v - tcp) & 1)
			csum_replace16(tcp + 16, (uint16_t)(cur << 8 | cur >> 8), (uint16_t)(mss << 8 | mss >> 8));
		else
			csum_replace16(tcp + 16, cur, mss);
		return true;
	}
	return false;
}

/* RFC 1812 4.3.2.7: a source that names a single host (not 0/8, 127/8, multicast, class E, broadcast). */
static bool ip4_src_unicast(const uint8_t *a)
{
	return a[0] != 0 && a[0] != 127 && a[0] < 224;
}

/* Errors about ICMP errors, or about types we do not know, would feed loops (RFC 1812 4.3.2.7). */
static bool icmp4_is_error(uint8_t type)
{
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12 || type > 18;
}

static bool ipv4_wants_too_big(const uint8_t *ip, size_t len)
{
	size_t hlen = (size_t)(ip[0] & 0x0f) * 4;

	if (hlen < IP4_HLEN_MIN || len < hlen)
		return false;
	if (!(ip[6] & 0x40))
		return false; /* DF clear: the outer packet may be fragmented instead */
	if ((ip[6] & 0x1f) || ip[7])
		return false; /* a later fragment: not the one to answer */
	if (!ip4_src_unicast(ip + 12) || ip[16] >= 224)
		return false; /* from no single host, or to multicast/broadcast */
	if (ip[9] == IPPROTO_ICMP && (len < hlen + 1 || icmp4_is_error(ip[hlen])))
		return false; /* an ICMP error, or an ICMP header we cannot see */
	return true;
}

/*
 * IPv6: never from :: or multicast (RFC 4443 2.4 (e.6)), never about an ICMPv6 error (types
 * 0-127, 2.4 (e.1)), found behind the extension headers (RFC 8200 4). A chain cut short is not
 * answered; a later fragment is, as its upper-layer header is in the first one.
 */
static bool ipv6_wants_too_big(const uint8_t *ip, size_t len)
{
	static const uint8_t unspecified[16];
	struct rd r;
	uint8_t nh;

	if (len < IP6_HLEN)
		return false;
	if (ip[8] == 0xff || !memcmp(ip + 8, unspecified, sizeof(unspecified)))
		return false;
	nh = ip[6];
	r = rd_init(ip + IP6_HLEN, len - IP6_HLEN);
	for (int i = 0; i < 16; i++) {
		uint8_t next, hl, type;
		uint16_t frag;
		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_AH:
			if (rd_u8(&r, &next) || rd_u8(&r, &hl))
				return false;
			/* Length in 8-byte units after the first 8; AH counts 4-byte units after the first 8. */
			if (rd_skip(&r, nh == IPPROTO_AH ? (size_t)hl * 4 + 6 : (size_t)hl * 8 + 6))
				return false;
			nh = next;
			break;
		case IPPROTO_FRAGMENT:
			if (rd_u8(&r, &next) || rd_skip(&r, 1) || rd_be16(&r, &frag) || rd_skip(&r, 4))
				return false;
			if (frag & 0xfff8)
				return true;
			nh = next;
			break;
		case IPPROTO_ICMPV6:
			if (rd_u8(&r, &type))
				return false;
			return type >= 128;
		default:
			return true;
		}
	}
	return false; /* a chain this long is not a real packet */
}

bool pmtu_wants_too_big(const uint8_t *ip, size_t len)
{
	if (len < 1)
		return false;
	if (ip[0] >> 4 == 4)
		return ipv4_wants_too_big(ip, len);
	if (ip[0] >> 4 == 6)
		return ipv6_wants_too_big(ip, len);
	return false;
}

ssize_t pmtu_too_big(const uint8_t *ip, size_t len, uint16_t mtu, uint8_t *out, size_t cap)
{
	if (!pmtu_wants_too_big(ip, len))
		return -EINVAL;
	bool v6 = ip[0] >> 4 == 6;
	size_t hlen = v6 ? IP6_HLEN : IP4_HLEN_MIN;
	size_t quote = len < (v6 ? ICMP6_QUOTE_MAX : ICMP4_QUOTE_MAX) ? len : (v6 ? ICMP6_QUOTE_MAX : ICMP4_QUOTE_MAX);
	size_t total = hlen + ICMP_HLEN + quote;
	struct wr w = wr_init(out, cap);

	if (cap < total)
		return -ENOSPC;
	if (!v6) {
		/* From the packet's destination: the far side could not take it. */
		wr_u8(&w, 0x45);
		wr_u8(&w, 0);
		wr_be16(&w, (uint16_t)total);
		wr_be32(&w, 0);            /* id, flags, fragment offset */
		wr_u8(&w, 64);
		wr_u8(&w, IPPROTO_ICMP);
		size_t csum_at = wr_hole16(&w);
		wr_bytes(&w, ip + 16, 4);  /* source: its destination */
		wr_bytes(&w, ip + 12, 4);  /* destination: its source */
		wr_fill16(&w, csum_at, inet_csum_final(inet_csum_add(out, IP4_HLEN_MIN, 0)));
		size_t icmp = IP4_HLEN_MIN;
		wr_u8(&w, 3);              /* destination unreachable */
		wr_u8(&w, 4);              /* fragmentation needed and DF set (RFC 1191) */
		size_t icsum_at = wr_hole16(&w);
		wr_be16(&w, 0);
		wr_be16(&w, mtu);
		wr_bytes(&w, ip, quote);
		wr_fill16(&w, icsum_at, inet_csum_final(inet_csum_add(out + icmp, ICMP_HLEN + quote, 0)));
	} else {
		if (mtu < IPV6_MIN_MTU)
			mtu = IPV6_MIN_MTU;
		wr_be32(&w, 0x60000000);
		wr_be16(&w, (uint16_t)(ICMP_HLEN + quote));
		wr_u8(&w, IPPROTO_ICMPV6);
		wr_u8(&w, 64);
		wr_bytes(&w, ip + 24, 16); /* source: its destination */
		wr_bytes(&w, ip + 8, 16);  /* destination: its source */
		size_t icmp = IP6_HLEN;
		wr_u8(&w, 2);              /* packet too big */
		wr_u8(&w, 0);
		size_t icsum_at = wr_hole16(&w);
		wr_be32(&w, mtu);
		wr_bytes(&w, ip, quote);
		/* Pseudo-header: addresses, upper-layer length, next header. */
		uint32_t sum = inet_csum_add(out + 8, 32, 0) + (uint32_t)(ICMP_HLEN + quote) + IPPROTO_ICMPV6;
		wr_fill16(&w, icsum_at, inet_csum_final(inet_csum_add(out + icmp, ICMP_HLEN + quote, sum)));
	}
	return wr_ok(&w) ? (ssize_t)total : -ENOSPC;
}
