/*
 * TCP segmentation of the TUN's superpackets and coalescing of opened
 * segments into superpackets (virtio-net offloads, see gso.h). The rules are
 * the kernel's own: tcp_gso_segment for splitting, tcp_gro_receive for what
 * may be joined.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "iketcp/buf.h"
#include "dataplane/gso.h"
#include "dataplane/inet_csum.h"

#define IP4_HLEN 20
#define IP6_HLEN 40
#define TCP_HLEN 20
#define TCP_CSUM_AT 16

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20
#define TH_ECE 0x40
#define TH_CWR 0x80

#define IP4_DF 0x4000

/* The TCP pseudo-header sum (RFC 9293 3.1, RFC 8200 8.1), unfolded. */
static uint32_t pseudo_sum(const uint8_t *ip, bool v6, size_t tcp_len)
{
	uint32_t sum = IPPROTO_TCP + (uint32_t)tcp_len;

	return sum + inet_csum_add(v6 ? ip + 8 : ip + 12, v6 ? 32 : 8, 0);
}

static void ip4_fix_csum(uint8_t *ip, size_t ip_hlen)
{
	ip[10] = ip[11] = 0;
	wr_put_be16(ip + 10, (uint16_t)~inet_csum_add(ip, ip_hlen, 0));
}

/* ---- the vnet header ------------------------------------------------------ */

static int rd_le16(struct rd *r, uint16_t *v)
{
	uint16_t be;
	int err = rd_be16(r, &be);
	if (!err)
		*v = (uint16_t)(be >> 8 | be << 8);
	return err;
}

int gso_hdr_parse(const uint8_t *p, size_t len, struct gso_hdr *h)
{
	struct rd r = rd_init(p, len);

	if (rd_u8(&r, &h->flags) || rd_u8(&r, &h->gso_type) || rd_le16(&r, &h->hdr_len) ||
	    rd_le16(&r, &h->gso_size) || rd_le16(&r, &h->csum_start) || rd_le16(&r, &h->csum_offset))
		return -EBADMSG;
	return 0;
}

static void put_le16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

void gso_hdr_write(uint8_t out[GSO_VNET_HDR_LEN], const struct gso_hdr *h)
{
	out[0] = h->flags;
	out[1] = h->gso_type;
	put_le16(out + 2, h->hdr_len);
	put_le16(out + 4, h->gso_size);
	put_le16(out + 6, h->csum_start);
	put_le16(out + 8, h->csum_offset);
}

int gso_csum_complete(uint8_t *pkt, size_t len, uint16_t csum_start, uint16_t csum_offset)
{
	size_t at = (size_t)csum_start + csum_offset;

	if (len < 2 || csum_start >= len || at > len - 2)
		return -EBADMSG;
	uint16_t c = (uint16_t)~inet_csum_add(pkt + csum_start, len - csum_start, 0);
	wr_put_be16(pkt + at, c ? c : 0xffff); /* as skb_checksum_help: 0 and 0xffff are one value */
	return 0;
}

/* ---- one TCP packet's headers --------------------------------------------- */

struct tcp_view {
	bool v6;
	size_t ip_hlen, hlen, total; /* total: by the IP header's length, <= the buffer */
	uint16_t id, frag;           /* IPv4 */
	uint32_t seq, ack;
	uint8_t flags;
};

/* 0, -EBADMSG (malformed) or -EPROTONOSUPPORT (IP without TCP next, or a fragment). */
static int tcp_parse(const uint8_t *p, size_t len, struct tcp_view *t)
{
	struct rd r = rd_init(p, len), tcp;
	uint8_t vihl, u8, proto, doff;
	uint16_t tot, u16;

	if (rd_u8(&r, &vihl))
		return -EBADMSG;
	if (vihl >> 4 == 4) {
		t->v6 = false;
		t->ip_hlen = (size_t)(vihl & 0x0f) * 4;
		if (rd_u8(&r, &u8) || rd_be16(&r, &tot) || rd_be16(&r, &t->id) || rd_be16(&r, &t->frag) ||
		    rd_u8(&r, &u8) || rd_u8(&r, &proto))
			return -EBADMSG;
		if (t->ip_hlen < IP4_HLEN || tot < t->ip_hlen || tot > len)
			return -EBADMSG;
		t->total = tot;
		if (proto != IPPROTO_TCP || (t->frag & 0x3fff)) /* MF or an offset */
			return -EPROTONOSUPPORT;
	} else if (vihl >> 4 == 6) {
		t->v6 = true;
		t->ip_hlen = IP6_HLEN;
		t->id = t->frag = 0;
		if (rd_skip(&r, 3) || rd_be16(&r, &u16) || rd_u8(&r, &proto) || len < IP6_HLEN)
			return -EBADMSG;
		if (u16 > len - IP6_HLEN)
			return -EBADMSG;
		t->total = IP6_HLEN + (size_t)u16;
		if (proto != IPPROTO_TCP) /* extension headers included: not ours to walk */
			return -EPROTONOSUPPORT;
	} else {
		return -EBADMSG;
	}
	r = rd_init(p, t->total);
	if (rd_skip(&r, t->ip_hlen) || rd_sub(&r, &tcp, t->total - t->ip_hlen))
		return -EBADMSG;
	if (rd_skip(&tcp, 4) || rd_be32(&tcp, &t->seq) || rd_be32(&tcp, &t->ack) || rd_u8(&tcp, &doff) ||
	    rd_u8(&tcp, &t->flags))
		return -EBADMSG;
	size_t thlen = (size_t)(doff >> 4) * 4;
	if (thlen < TCP_HLEN || thlen > t->total - t->ip_hlen)
		return -EBADMSG;
	t->hlen = t->ip_hlen + thlen;
	return 0;
}

/* ---- segmentation ----------------------------------------------------------- */

int gso_split_init(struct gso_split *s, const struct gso_hdr *h, uint8_t *pkt, size_t len, size_t max_len)
{
	struct tcp_view t;
	int err;

	if (h->gso_type != GSO_TYPE_TCPV4 && h->gso_type != GSO_TYPE_TCPV6)
		return -EPROTONOSUPPORT; /* UDP, UDP_L4 and the ECN bit were not offered */
	if (!h->gso_size || h->hdr_len > len)
		return -EBADMSG;
	err = tcp_parse(pkt, len, &t);
	if (err)
		return err == -EPROTONOSUPPORT ? -EBADMSG : err; /* a TCP type must hold TCP */
	if (t.v6 != (h->gso_type == GSO_TYPE_TCPV6))
		return -EBADMSG;
	if (t.flags & (TH_SYN | TH_RST | TH_URG)) /* TCP never sends these as one superpacket */
		return -EBADMSG;
	_Static_assert(GSO_HDR_MAX >= 60 + 60, "the longest IPv4 and TCP headers fit the copy kept");
	*s = (struct gso_split){
		.pkt = pkt, .len = t.total, .ip_hlen = t.ip_hlen, .hlen = t.hlen, .mss = h->gso_size,
		.off = t.hlen, .seq = t.seq, .id = t.id, .tcp_flags = t.flags, .v6 = t.v6,
	};
	memcpy(s->hdr, pkt, t.hlen);
	if (max_len > t.hlen && max_len - t.hlen < s->mss)
		s->mss = max_len - t.hlen;
	return 0;
}

/* Payload bytes of the next segment; false when all are made. A payload-less superpacket (a FIN, say) is still one segment. */
static bool next_payload(const struct gso_split *s, size_t *pay)
{
	if (s->off >= s->len && (s->n || s->off > s->len))
		return false;
	*pay = MIN(s->mss, s->len - s->off);
	return true;
}

/* The next segment's headers at seg, for its pay payload bytes at payload; then on to the next. */
static size_t seg_finish(struct gso_split *s, uint8_t *seg, const uint8_t *payload, size_t pay)
{
	size_t n = s->hlen + pay;
	bool last = s->off + pay >= s->len;

	memcpy(seg, s->hdr, s->hlen);
	if (s->v6) {
		wr_put_be16(seg + 4, (uint16_t)(n - IP6_HLEN));
	} else {
		wr_put_be16(seg + 2, (uint16_t)n);
		wr_put_be16(seg + 4, (uint16_t)(s->id + s->n));
		ip4_fix_csum(seg, s->ip_hlen);
	}
	uint8_t *tcp = seg + s->ip_hlen;
	wr_put_be32(tcp + 4, s->seq + (uint32_t)(s->off - s->hlen));
	uint8_t flags = s->tcp_flags;
	if (!last)
		flags &= (uint8_t)~(TH_FIN | TH_PSH);
	if (s->n)
		flags &= (uint8_t)~TH_CWR;
	tcp[13] = flags;
	tcp[TCP_CSUM_AT] = tcp[TCP_CSUM_AT + 1] = 0;
	size_t tcp_len = n - s->ip_hlen, tcp_hlen = s->hlen - s->ip_hlen;
	/* The TCP header's length is a multiple of 4: the payload's sum carries on from it. */
	uint16_t sum = inet_csum_add(tcp, tcp_hlen, pseudo_sum(seg, s->v6, tcp_len));
	wr_put_be16(tcp + TCP_CSUM_AT, (uint16_t)~inet_csum_add(payload, pay, sum));
	s->off += pay;
	if (!pay)
		s->off++; /* the one empty segment is made */
	s->n++;
	return n;
}

ssize_t gso_split_next(struct gso_split *s, uint8_t *out, size_t cap)
{
	size_t pay;

	if (!next_payload(s, &pay))
		return 0;
	if (s->hlen + pay > cap)
		return -ENOSPC;
	memcpy(out + s->hlen, s->pkt + s->off, pay);
	return (ssize_t)seg_finish(s, out, out + s->hlen, pay);
}

size_t gso_split_next_apart(struct gso_split *s, uint8_t hdr[GSO_HDR_MAX], const uint8_t **payload, size_t *pay_len)
{
	size_t pay;

	if (!next_payload(s, &pay))
		return 0;
	*payload = s->pkt + s->off;
	*pay_len = pay;
	seg_finish(s, hdr, *payload, pay);
	return s->hlen;
}

uint8_t *gso_split_next_inplace(struct gso_split *s, size_t *len)
{
	size_t pay;

	if (!next_payload(s, &pay))
		return NULL;
	/* off >= hlen: the headers land on the superpacket's own or on a segment already used. */
	uint8_t *seg = s->pkt + s->off - s->hlen;
	*len = seg_finish(s, seg, seg + s->hlen, pay);
	return seg;
}

/* ---- coalescing ------------------------------------------------------------- */

void gso_coalesce_init(struct gso_coalesce *c, uint8_t *buf)
{
	*c = (struct gso_coalesce){ .buf = buf };
}

/*
 * Whether the segment's TCP checksum is right, checked while its payload is
 * copied to dst (one pass; dst is written even when it is not).
 */
static bool tcp_csum_copy_ok(uint8_t *dst, const uint8_t *p, const struct tcp_view *t)
{
	size_t tcp_len = t->total - t->ip_hlen, tcp_hlen = t->hlen - t->ip_hlen; /* a multiple of 4: chains */
	uint16_t s = inet_csum_add(p + t->ip_hlen, tcp_hlen, pseudo_sum(p, t->v6, tcp_len));

	return inet_csum_copy(dst, p + t->hlen, t->total - t->hlen, s) == 0xffff;
}

/* The same flow, and nothing in the headers that one superpacket's header could not say for both. */
static bool same_headers(const struct gso_coalesce *c, const uint8_t *p, const struct tcp_view *t)
{
	const uint8_t *q = c->buf;

	if (t->v6 != c->v6 || t->hlen != c->hlen)
		return false;
	if (t->v6) {
		/* version, traffic class, flow label; hop limit; addresses */
		if (memcmp(p, q, 4) || p[7] != q[7] || memcmp(p + 8, q + 8, 32))
			return false;
	} else {
		/* TOS; DF (and no fragment, tcp_parse); TTL; addresses */
		if (p[1] != q[1] || memcmp(p + 6, q + 6, 4) || memcmp(p + 12, q + 12, 8))
			return false;
	}
	const uint8_t *a = p + t->ip_hlen, *b = q + c->ip_hlen;
	/* ports; ACK number; data offset and reserved bits (AE, RFC 9768); window; options byte for byte
	 * (tcp_gro_receive) */
	return !memcmp(a, b, 4) && !memcmp(a + 8, b + 8, 5) && !memcmp(a + 14, b + 14, 2) &&
	       !memcmp(a + TCP_HLEN, b + TCP_HLEN, t->hlen - t->ip_hlen - TCP_HLEN);
}

/* The headers allow joining: TCP with data, only ACK (and PSH), no IPv4 options, nothing after it. */
static bool candidate(const uint8_t *p, size_t len, struct tcp_view *t)
{
	if (tcp_parse(p, len, t) || t->total != len)
		return false;
	if ((t->flags & ~(TH_ACK | TH_PSH)) || !(t->flags & TH_ACK) || t->hlen == t->total)
		return false; /* SYN, FIN, RST, URG, ECN signals, pure ACKs: as they are */
	if (t->v6)
		return true;
	/* A damaged header goes as it is, for the kernel to drop (inet_gro_receive): a superpacket's
	 * header gets a new checksum that would vouch for it. */
	return t->ip_hlen == IP4_HLEN && inet_csum_add(p, IP4_HLEN, 0) == 0xffff;
}

bool gso_coalesce_candidate(const uint8_t *p, size_t len)
{
	struct tcp_view t;
	return candidate(p, len, &t);
}

enum gso_add gso_coalesce_add(struct gso_coalesce *c, const uint8_t *p, size_t len)
{
	struct tcp_view t;

	if (!candidate(p, len, &t))
		return GSO_AS_IS;
	size_t pay = t.total - t.hlen;

	/* A damaged segment goes as it is: the receiver must see it, no offload vouches for it. Its
	 * payload is copied while its checksum is checked, past what the builder holds until it passes. */
	if (!c->len) {
		if (!tcp_csum_copy_ok(c->buf + t.hlen, p, &t))
			return GSO_AS_IS;
		memcpy(c->buf, p, t.hlen);
		c->len = len;
		c->ip_hlen = t.ip_hlen;
		c->hlen = t.hlen;
		c->mss = pay;
		c->segs = 1;
		c->v6 = t.v6;
		c->closed = (t.flags & TH_PSH) != 0;
		c->next_seq = t.seq + (uint32_t)pay;
		c->next_id = (uint16_t)(t.id + 1);
		return GSO_ADDED;
	}
	if (c->closed || !same_headers(c, p, &t) || t.seq != c->next_seq || pay > c->mss ||
	    c->len + pay > GSO_PKT_MAX)
		return GSO_FLUSH;
	if (!t.v6 && !(t.frag & IP4_DF) && t.id != c->next_id)
		return GSO_FLUSH; /* without DF the IDs must go up one by one, as segmentation makes them */
	if (!tcp_csum_copy_ok(c->buf + c->len, p, &t))
		return GSO_AS_IS;
	c->len += pay;
	c->segs++;
	c->next_seq += (uint32_t)pay;
	c->next_id = (uint16_t)(t.id + 1);
	if (t.flags & TH_PSH) {
		c->buf[c->ip_hlen + 13] |= TH_PSH;
		c->closed = true;
	}
	if (pay < c->mss)
		c->closed = true;
	return GSO_ADDED;
}

bool gso_coalesce_same_flow(const struct gso_coalesce *c, const uint8_t *p, size_t len)
{
	struct tcp_view t;
	const uint8_t *q = c->buf;

	if (!c->len || tcp_parse(p, len, &t) || t.v6 != c->v6)
		return false;
	if (t.v6 ? memcmp(p + 8, q + 8, 32) : memcmp(p + 12, q + 12, 8))
		return false;
	return !memcmp(p + t.ip_hlen, q + c->ip_hlen, 4);
}

bool gso_coalesce_finish(struct gso_coalesce *c, struct gso_hdr *h, size_t *len)
{
	if (!c->len)
		return false;
	*h = (struct gso_hdr){ .gso_type = GSO_TYPE_NONE };
	*len = c->len;
	if (c->segs > 1) {
		uint8_t *ip = c->buf, *tcp = ip + c->ip_hlen;
		size_t tcp_len = c->len - c->ip_hlen;
		if (c->v6) {
			wr_put_be16(ip + 4, (uint16_t)(c->len - IP6_HLEN));
		} else {
			wr_put_be16(ip + 2, (uint16_t)c->len);
			ip4_fix_csum(ip, c->ip_hlen);
		}
		/* CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the kernel adds the rest. */
		uint32_t ps = pseudo_sum(ip, c->v6, tcp_len);
		ps = (ps & 0xffff) + (ps >> 16);
		ps = (ps & 0xffff) + (ps >> 16);
		wr_put_be16(tcp + TCP_CSUM_AT, (uint16_t)ps);
		*h = (struct gso_hdr){
			.flags = GSO_F_NEEDS_CSUM,
			.gso_type = c->v6 ? GSO_TYPE_TCPV6 : GSO_TYPE_TCPV4,
			.hdr_len = (uint16_t)c->hlen,
			.gso_size = (uint16_t)c->mss,
			.csum_start = (uint16_t)c->ip_hlen,
			.csum_offset = TCP_CSUM_AT,
		};
	}
	c->len = 0;
	c->segs = 0;
	return true;
}
