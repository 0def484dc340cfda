/*
 * TCP segmentation and coalescing for the TUN's virtio-net offloads
 * (dataplane/gso.c): superpackets split into segments checked field by field
 * with checksums recomputed from scratch (tests/lib/inet_csum.h), checksum
 * completion, segments joined back (and split again to the same bytes), every
 * reason not to join, and hostile vnet headers and packets.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dataplane/gso.h"
#include "iketcp/compiler.h"
#include "tests/lib/inet_csum.h"
#include "tests/lib/tcp_build.h"

static uint8_t super[70000], work[70000], seg[70000], out[70000], joined[GSO_PKT_MAX];

static struct gso_hdr tso(bool v6, uint16_t gso_size, uint16_t hdr_len)
{
	return (struct gso_hdr){ .flags = GSO_F_NEEDS_CSUM, .gso_type = v6 ? GSO_TYPE_TCPV6 : GSO_TYPE_TCPV4,
				 .hdr_len = hdr_len, .gso_size = gso_size, .csum_start = v6 ? 40 : 20,
				 .csum_offset = 16 };
}

/* ---- the vnet header -------------------------------------------------------- */

static void test_hdr_roundtrip(void **state)
{
	(void)state;
	struct gso_hdr h = { .flags = 1, .gso_type = GSO_TYPE_TCPV6, .hdr_len = 0x1234, .gso_size = 1448,
			     .csum_start = 40, .csum_offset = 16 }, g;
	uint8_t b[GSO_VNET_HDR_LEN];
	static const uint8_t want[] = { 1, 4, 0x34, 0x12, 0xa8, 0x05, 40, 0, 16, 0 }; /* little-endian */

	gso_hdr_write(b, &h);
	assert_memory_equal(b, want, sizeof(want));
	assert_int_equal(gso_hdr_parse(b, sizeof(b), &g), 0);
	assert_memory_equal(&g, &h, sizeof(h));
	for (size_t n = 0; n < sizeof(b); n++)
		assert_int_equal(gso_hdr_parse(b, n, &g), -EBADMSG);
}

/* ---- segmentation ------------------------------------------------------------ */

/*
 * Splits super (len) and checks every segment against the superpacket it came
 * from; a copy of it split in place gives the same segments, and so does a
 * second copy split with the headers apart, which leaves that copy unchanged.
 */
static unsigned split_check(const struct gso_hdr *h, size_t len, size_t max_len, size_t want_mss)
{
	static uint8_t apart_copy[sizeof(work)], apart_seg[sizeof(seg)];
	struct gso_split sp, ip, ap;
	const uint8_t *apay;
	size_t ahl, aplen;
	uint8_t *in_place;
	size_t ilen;
	size_t ih = ip_hlen(super), hl = ih + (size_t)(super[ih + 12] >> 4) * 4, off = hl;
	bool v6 = super[0] >> 4 == 6;
	uint8_t flags = super[ih + 13];
	unsigned n = 0;
	ssize_t r;

	assert_int_equal(gso_split_init(&sp, h, super, len, max_len), 0);
	memcpy(work, super, len);
	assert_int_equal(gso_split_init(&ip, h, work, len, max_len), 0);
	memcpy(apart_copy, super, len);
	assert_int_equal(gso_split_init(&ap, h, apart_copy, len, max_len), 0);
	while ((r = gso_split_next(&sp, seg, sizeof(seg))) > 0) {
		ahl = gso_split_next_apart(&ap, apart_seg, &apay, &aplen);
		assert_int_equal(ahl + aplen, r);
		assert_true(apay >= apart_copy && apay + aplen <= apart_copy + len);
		memcpy(apart_seg + ahl, apay, aplen);
		assert_memory_equal(apart_seg, seg, (size_t)r);
		in_place = gso_split_next_inplace(&ip, &ilen);
		assert_non_null(in_place);
		assert_int_equal(ilen, r);
		assert_memory_equal(in_place, seg, ilen);
		assert_true(in_place >= work && in_place + ilen <= work + len);
		size_t pay = MIN(want_mss, len - off);
		bool last = off + pay == len;
		assert_int_equal(r, hl + pay);
		if (v6) {
			assert_int_equal(be16(seg + 4), r - 40);
			assert_memory_equal(seg, super, 4);
			assert_memory_equal(seg + 6, super + 6, 34);
		} else {
			assert_int_equal(be16(seg + 2), r);
			assert_int_equal(be16(seg + 4), (uint16_t)(be16(super + 4) + n));
			assert_true(ip4_hdr_ok(seg));
			assert_memory_equal(seg + 6, super + 6, 4);
			assert_memory_equal(seg + 12, super + 12, ih - 12);
		}
		const uint8_t *t = seg + ih;
		assert_memory_equal(t, super + ih, 4);
		assert_int_equal(be32(t + 4), be32(super + ih + 4) + (uint32_t)(off - hl));
		assert_memory_equal(t + 8, super + ih + 8, 5); /* ACK number, data offset */
		uint8_t want = flags;
		if (!last)
			want &= (uint8_t)~(TH_FIN | TH_PSH);
		if (n)
			want &= (uint8_t)~TH_CWR;
		assert_int_equal(t[13], want);
		assert_memory_equal(t + 14, super + ih + 14, 2);
		assert_memory_equal(t + 20, super + ih + 20, hl - ih - 20); /* options */
		assert_true(l4_sum_ok(seg, (size_t)r, IPPROTO_TCP));
		assert_memory_equal(seg + hl, super + off, pay);
		off += pay;
		n++;
	}
	assert_int_equal(r, 0);
	assert_null(gso_split_next_inplace(&ip, &ilen));
	assert_int_equal(gso_split_next_apart(&ap, apart_seg, &apay, &aplen), 0);
	assert_memory_equal(apart_copy, super, len); /* apart: the superpacket is left as it was */
	assert_int_equal(off, len);
	assert_int_equal(gso_split_next(&sp, seg, sizeof(seg)), 0); /* stays done */
	assert_null(gso_split_next_inplace(&ip, &ilen));
	return n;
}

static void test_split_v4(void **state)
{
	(void)state;
	/* The sequence number wraps inside the superpacket. */
	struct tcp_spec s = { .seq = 0xfffff000u, .flags = TH_ACK | TH_PSH | TH_FIN | TH_CWR, .id = 0xfffe,
			      .df = true, .payload = 5000, .fill = 7 };
	size_t len = mk_tcp(super, &s);
	struct gso_hdr h = tso(false, 1400, 40);

	assert_int_equal(split_check(&h, len, 0, 1400), 4); /* 1400 1400 1400 800 */
	/* A path that takes 1000-byte packets: 960 bytes of payload each. */
	assert_int_equal(split_check(&h, len, 1000, 960), 6);
	/* A limit above gso_size or below the headers changes nothing. */
	assert_int_equal(split_check(&h, len, 9000, 1400), 4);
	assert_int_equal(split_check(&h, len, 30, 1400), 4);
	/* Equal segments: the last is full, PSH on it. */
	s.payload = 2800;
	len = mk_tcp(super, &s);
	assert_int_equal(split_check(&h, len, 0, 1400), 2);
}

static void test_split_v6_options(void **state)
{
	(void)state;
	struct tcp_spec s = { .v6 = true, .optlen = 12, .seq = 1000, .flags = TH_ACK | TH_PSH,
			      .payload = 3000, .fill = 0x55 };
	size_t len = mk_tcp(super, &s);
	struct gso_hdr h = tso(true, 1000, 72);

	assert_int_equal(split_check(&h, len, 0, 1000), 3);
	/* hdr_len is a hint (the kernel's linear part): any value within the packet is taken. */
	h.hdr_len = 0;
	assert_int_equal(split_check(&h, len, 0, 1000), 3);
	h.hdr_len = (uint16_t)len;
	assert_int_equal(split_check(&h, len, 0, 1000), 3);
}

/* gso_size above the payload: one segment, as tcp_gso_segment leaves a packet no bigger than the MSS. */
static void test_split_one_segment(void **state)
{
	(void)state;
	struct tcp_spec s = { .seq = 5, .flags = TH_ACK | TH_PSH, .id = 9, .payload = 100 };
	size_t len = mk_tcp(super, &s);
	struct gso_hdr h = tso(false, 1400, 40);

	super[36] ^= 0xff; /* a stale checksum: recomputed */
	assert_int_equal(split_check(&h, len, 0, 1400), 1);
	h.gso_size = 65535;
	assert_int_equal(split_check(&h, len, 0, 65535), 1);
}

static void test_split_refused(void **state)
{
	(void)state;
	struct tcp_spec s = { .seq = 1, .flags = TH_ACK, .id = 1, .df = true, .payload = 3000 };
	size_t len = mk_tcp(super, &s);
	struct gso_split sp;
	struct gso_hdr h;

	/* Hostile header values. */
	h = tso(false, 0, 40);
	assert_int_equal(gso_split_init(&sp, &h, super, len, 0), -EBADMSG);
	h = tso(false, 1400, (uint16_t)(len + 1));
	assert_int_equal(gso_split_init(&sp, &h, super, len, 0), -EBADMSG);
	/* Types we did not offer. */
	static const uint8_t types[] = { GSO_TYPE_NONE, GSO_TYPE_UDP, GSO_TYPE_UDP_L4, GSO_TYPE_TCPV4 | GSO_TYPE_ECN,
					 GSO_TYPE_TCPV6 | GSO_TYPE_ECN, 2, 0x7f, 0xff };
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		h = tso(false, 1400, 40);
		h.gso_type = types[i];
		assert_int_equal(gso_split_init(&sp, &h, super, len, 0), -EPROTONOSUPPORT);
	}
	/* The type says the other family. */
	h = tso(true, 1400, 40);
	assert_int_equal(gso_split_init(&sp, &h, super, len, 0), -EBADMSG);
	/* Every truncation of the headers, and a length field beyond what was read. */
	h = tso(false, 1400, 0);
	for (size_t n = 0; n < 40; n++)
		assert_int_equal(gso_split_init(&sp, &h, super, n, 0), -EBADMSG);
	assert_int_equal(gso_split_init(&sp, &h, super, len - 1, 0), -EBADMSG); /* tot_len > len */
	/* Header fields that do not hold together. */
	struct {
		size_t at;
		uint8_t v;
	} bad[] = {
		{ 0, 0x44 },        /* IHL 4 */
		{ 0, 0x4f },        /* IHL 15: options beyond the TCP header */
		{ 0, 0x55 },        /* version 5 */
		{ 9, IPPROTO_UDP }, /* not TCP */
		{ 6, 0x20 },        /* MF */
		{ 7, 0x01 },        /* a fragment offset */
		{ 32, 0x40 },       /* data offset 4 */
		{ 32, 0x10 },       /* data offset 1 */
		{ 33, TH_ACK | TH_SYN },
		{ 33, TH_ACK | TH_RST },
		{ 33, TH_ACK | TH_URG },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint8_t save = super[bad[i].at];
		super[bad[i].at] = bad[i].v;
		assert_int_equal(gso_split_init(&sp, &h, super, len, 0), -EBADMSG);
		super[bad[i].at] = save;
	}
	/* A short IPv4 total length cutting into the TCP header. */
	put16(super + 2, 30);
	assert_int_equal(gso_split_init(&sp, &h, super, len, 0), -EBADMSG);
	put16(super + 2, 10);
	assert_int_equal(gso_split_init(&sp, &h, super, len, 0), -EBADMSG);
	/* IPv6: payload length beyond the read, extension header. */
	s.v6 = true;
	len = mk_tcp(super, &s);
	h = tso(true, 1400, 0);
	assert_int_equal(gso_split_init(&sp, &h, super, len - 1, 0), -EBADMSG);
	super[6] = 0; /* hop-by-hop options */
	assert_int_equal(gso_split_init(&sp, &h, super, len, 0), -EBADMSG);
	super[6] = IPPROTO_TCP;
	assert_int_equal(gso_split_init(&sp, &h, super, len, 0), 0);
	/* An output buffer too small for a segment. */
	assert_int_equal(gso_split_next(&sp, seg, 100), -ENOSPC);
	assert_int_equal(gso_split_next(&sp, seg, 60 + 1400), 60 + 1400);
}

/* Trailing bytes after the IP packet's own length are not part of any segment. */
static void test_split_trailing(void **state)
{
	(void)state;
	struct tcp_spec s = { .seq = 1, .flags = TH_ACK, .id = 1, .payload = 2000 };
	size_t len = mk_tcp(super, &s);
	struct gso_split sp;
	struct gso_hdr h = tso(false, 1400, 40);
	ssize_t a, b;

	memset(super + len, 0xee, 100);
	assert_int_equal(gso_split_init(&sp, &h, super, len + 100, 0), 0);
	a = gso_split_next(&sp, seg, sizeof(seg));
	b = gso_split_next(&sp, seg, sizeof(seg));
	assert_int_equal(a + b, 40 + 40 + 2000);
	assert_int_equal(gso_split_next(&sp, seg, sizeof(seg)), 0);
}

/* ---- checksum completion --------------------------------------------------- */

static void test_csum_complete(void **state)
{
	(void)state;
	struct tcp_spec s = { .seq = 1, .flags = TH_ACK | TH_PSH, .id = 1, .payload = 333 };
	size_t len = mk_tcp(super, &s), off;

	for (int v6 = 0; v6 < 2; v6++) {
		s.v6 = v6;
		len = mk_tcp(super, &s);
		size_t ih = ip_hlen(super);
		/* What the kernel leaves: the pseudo-header sum in the field, not inverted. */
		uint16_t ps = fold16(pseudo_sum(super, len, IPPROTO_TCP, &off));
		put16(super + ih + 16, ps);
		assert_false(l4_sum_ok(super, len, IPPROTO_TCP));
		assert_int_equal(gso_csum_complete(super, len, (uint16_t)ih, 16), 0);
		assert_true(l4_sum_ok(super, len, IPPROTO_TCP));
	}
	/* Out of bounds: start at or past the end, the field past the end. */
	assert_int_equal(gso_csum_complete(super, len, (uint16_t)len, 0), -EBADMSG);
	assert_int_equal(gso_csum_complete(super, len, 65535, 65535), -EBADMSG);
	assert_int_equal(gso_csum_complete(super, len, 40, (uint16_t)(len - 40 - 1)), -EBADMSG);
	assert_int_equal(gso_csum_complete(super, len, 40, (uint16_t)(len - 40 - 2)), 0);
	assert_int_equal(gso_csum_complete(super, 1, 0, 0), -EBADMSG);
	assert_int_equal(gso_csum_complete(super, 0, 0, 0), -EBADMSG);
}

/* ---- coalescing -------------------------------------------------------------- */

struct flow {
	struct tcp_spec s;
	size_t mss;
};

/* Segment i of a flow: seq and id follow i, full-size payloads. */
static size_t flow_seg(const struct flow *f, unsigned i, uint8_t *p)
{
	struct tcp_spec s = f->s;
	s.seq += (uint32_t)(i * f->mss);
	s.id = (uint16_t)(s.id + i);
	s.payload = f->mss;
	s.fill = (uint8_t)(s.fill + i * f->mss);
	return mk_tcp(p, &s);
}

static void test_coalesce_roundtrip(void **state)
{
	(void)state;
	for (int v6 = 0; v6 < 2; v6++) {
		/* A superpacket split, its segments joined: the same superpacket, made to be split again. */
		struct tcp_spec s = { .v6 = v6, .optlen = 12, .seq = 0xffffff00u, .flags = TH_ACK | TH_PSH,
				      .id = 0xfffd, .df = false, .payload = 9000, .fill = 3 };
		size_t len = mk_tcp(super, &s), hl = (v6 ? 40 : 20) + 32;
		struct gso_hdr h = tso(v6, 1300, (uint16_t)hl), g;
		struct gso_split sp;
		struct gso_coalesce c;
		static uint8_t segs[8][2000];
		size_t lens[8], n = 0, got;
		ssize_t r;

		assert_int_equal(gso_split_init(&sp, &h, super, len, 0), 0);
		while ((r = gso_split_next(&sp, segs[n], sizeof(segs[n]))) > 0)
			lens[n++] = (size_t)r;
		assert_int_equal(n, 7);
		gso_coalesce_init(&c, joined);
		assert_false(gso_coalesce_finish(&c, &g, &got));
		for (size_t i = 0; i < n; i++)
			assert_int_equal(gso_coalesce_add(&c, segs[i], lens[i]), GSO_ADDED);
		assert_true(gso_coalesce_finish(&c, &g, &got));
		assert_int_equal(got, len);
		assert_int_equal(g.flags, GSO_F_NEEDS_CSUM);
		assert_int_equal(g.gso_type, v6 ? GSO_TYPE_TCPV6 : GSO_TYPE_TCPV4);
		assert_int_equal(g.gso_size, 1300);
		assert_int_equal(g.hdr_len, hl);
		assert_int_equal(g.csum_start, v6 ? 40 : 20);
		assert_int_equal(g.csum_offset, 16);
		/* Headers as the superpacket's but for the checksum field; the payload whole. */
		size_t csum_at = (v6 ? 40 : 20) + 16;
		assert_memory_equal(joined, super, csum_at);
		assert_memory_equal(joined + csum_at + 2, super + csum_at + 2, len - csum_at - 2);
		if (!v6)
			assert_true(ip4_hdr_ok(joined));
		/* The field holds the pseudo-header sum: completing it gives a right checksum. */
		size_t off;
		assert_int_equal(be16(joined + g.csum_start + 16), fold16(pseudo_sum(joined, len, IPPROTO_TCP, &off)));
		memcpy(out, joined, len);
		assert_int_equal(gso_csum_complete(out, len, g.csum_start, g.csum_offset), 0);
		assert_true(l4_sum_ok(out, len, IPPROTO_TCP));
		/* Split again as the kernel would: the same segments, byte for byte. */
		assert_int_equal(gso_split_init(&sp, &g, joined, got, 0), 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(gso_split_next(&sp, seg, sizeof(seg)), lens[i]);
			assert_memory_equal(seg, segs[i], lens[i]);
		}
		assert_int_equal(gso_split_next(&sp, seg, sizeof(seg)), 0);
		/* Emptied: the next segment starts anew. */
		assert_int_equal(gso_coalesce_add(&c, segs[0], lens[0]), GSO_ADDED);
		assert_int_equal(c.segs, 1);
	}
}

/* One segment alone goes as it came, without offload. */
static void test_coalesce_single(void **state)
{
	(void)state;
	struct flow f = { .s = { .seq = 1, .flags = TH_ACK, .id = 1, .df = true }, .mss = 1000 };
	struct gso_coalesce c;
	struct gso_hdr g;
	size_t len = flow_seg(&f, 0, seg), got;

	gso_coalesce_init(&c, joined);
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_ADDED);
	assert_true(gso_coalesce_finish(&c, &g, &got));
	assert_int_equal(got, len);
	assert_memory_equal(joined, seg, len);
	assert_int_equal(g.gso_type, GSO_TYPE_NONE);
	assert_int_equal(g.flags, 0);
	assert_false(gso_coalesce_finish(&c, &g, &got));
}

/* A shorter segment ends the superpacket; so does PSH; 64 KiB is the most. */
static void test_coalesce_ends(void **state)
{
	(void)state;
	struct flow f = { .s = { .seq = 100, .flags = TH_ACK, .id = 1, .df = true, .fill = 1 }, .mss = 1000 };
	struct gso_coalesce c;
	struct gso_hdr g;
	size_t len, got;

	gso_coalesce_init(&c, joined);
	len = flow_seg(&f, 0, seg);
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_ADDED);
	struct tcp_spec s = f.s;
	s.seq += 1000, s.id++, s.payload = 500, s.fill = (uint8_t)(1 + 1000);
	len = mk_tcp(seg, &s);
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_ADDED);
	len = flow_seg(&f, 2, seg); /* at the wrong seq anyway, but closed first */
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_FLUSH);
	assert_true(gso_coalesce_finish(&c, &g, &got));
	assert_int_equal(got, 40 + 1500);
	assert_int_equal(g.gso_size, 1000);

	/* PSH on the second: appended, PSH on the superpacket, nothing after it. */
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, 0, seg)), GSO_ADDED);
	assert_int_equal(joined[33], TH_ACK);
	f.s.flags = TH_ACK | TH_PSH;
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, 1, seg)), GSO_ADDED);
	assert_int_equal(joined[33], TH_ACK | TH_PSH);
	f.s.flags = TH_ACK;
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, 2, seg)), GSO_FLUSH);
	assert_true(gso_coalesce_finish(&c, &g, &got));

	/* PSH on the first: it is alone. */
	f.s.flags = TH_ACK | TH_PSH;
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, 0, seg)), GSO_ADDED);
	f.s.flags = TH_ACK;
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, 1, seg)), GSO_FLUSH);
	assert_true(gso_coalesce_finish(&c, &g, &got));

	/* Up to GSO_PKT_MAX bytes: 65 segments of 1000 fit with 40 bytes of headers, the 66th does not. */
	unsigned i;
	for (i = 0; gso_coalesce_add(&c, seg, flow_seg(&f, i, seg)) == GSO_ADDED; i++)
		assert_true(i < 100);
	assert_int_equal(i, 65);
	assert_true(gso_coalesce_finish(&c, &g, &got));
	assert_int_equal(got, 40 + 65000);
	assert_int_equal(be16(joined + 2), 40 + 65000);
	assert_true(ip4_hdr_ok(joined));
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, i, seg)), GSO_ADDED);
}

/* Each reason the second segment cannot join the first: mutate, fix its checksums, try. */
struct mutation {
	const char *what;
	size_t at;     /* byte offset in an IPv4 packet without options (TCP at 20) */
	uint8_t x;     /* XORed in */
	enum gso_add want;
};

static void test_coalesce_refused(void **state)
{
	(void)state;
	static const struct mutation m[] = {
		{ "seq gap", 27, 0x01, GSO_FLUSH },
		{ "seq overlap", 26, 0x01, GSO_FLUSH },
		{ "other ACK number", 31, 0x01, GSO_FLUSH },
		{ "other window", 35, 0x01, GSO_FLUSH },
		{ "other source port", 21, 0x01, GSO_FLUSH },
		{ "other destination port", 23, 0x01, GSO_FLUSH },
		{ "other source address", 15, 0x01, GSO_FLUSH },
		{ "other destination address", 19, 0x01, GSO_FLUSH },
		{ "other TOS", 1, 0x04, GSO_FLUSH },
		{ "other ECN codepoint", 1, 0x03, GSO_FLUSH },
		{ "other TTL", 8, 0x01, GSO_FLUSH },
		{ "DF cleared", 6, 0x40, GSO_FLUSH },
		{ "other option byte", 45, 0x01, GSO_FLUSH },
		{ "other AE bit", 32, 0x01, GSO_FLUSH }, /* reserved bits beside the data offset (tcp_gro_receive) */
		{ "FIN", 33, TH_FIN, GSO_AS_IS },
		{ "SYN", 33, TH_SYN, GSO_AS_IS },
		{ "RST", 33, TH_RST, GSO_AS_IS },
		{ "URG", 33, TH_URG, GSO_AS_IS },
		{ "ECE", 33, TH_ECE, GSO_AS_IS },
		{ "CWR", 33, TH_CWR, GSO_AS_IS },
		{ "no ACK", 33, TH_ACK, GSO_AS_IS },
		{ "MF", 6, 0x20, GSO_AS_IS },
		{ "fragment offset", 7, 0x01, GSO_AS_IS },
		{ "UDP", 9, IPPROTO_TCP ^ IPPROTO_UDP, GSO_AS_IS },
	};
	struct flow f = { .s = { .optlen = 12, .seq = 7, .flags = TH_ACK, .id = 1, .df = true }, .mss = 1000 };
	struct gso_coalesce c;
	uint8_t first[2000];
	size_t flen = flow_seg(&f, 0, first);

	gso_coalesce_init(&c, joined);
	for (size_t i = 0; i < ARRAY_SIZE(m); i++) {
		size_t len = flow_seg(&f, 1, seg);
		seg[m[i].at] ^= m[i].x;
		if (m[i].at != 9)
			fix_csums(seg, len);
		assert_int_equal(gso_coalesce_add(&c, first, flen), GSO_ADDED);
		enum gso_add got = gso_coalesce_add(&c, seg, len);
		if (got != m[i].want)
			fail_msg("%s: %d, want %d", m[i].what, got, m[i].want);
		assert_int_equal(c.segs, 1);
		struct gso_hdr g;
		size_t glen;
		assert_true(gso_coalesce_finish(&c, &g, &glen));
		assert_int_equal(glen, flen);
		assert_memory_equal(joined, first, flen); /* the held segment untouched */
	}
	/* A damaged segment after the first goes as it is (its payload copied past what is held, then
	 * dropped from there); the next good one still joins. */
	size_t len = flow_seg(&f, 1, seg);
	seg[len - 1] ^= 1;
	assert_int_equal(gso_coalesce_add(&c, first, flen), GSO_ADDED);
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_AS_IS);
	assert_int_equal(c.len, flen);
	len = flow_seg(&f, 1, seg);
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_ADDED);
	assert_int_equal(c.segs, 2);
	assert_memory_equal(joined + flen, seg + (len - 1000), 1000);
	assert_memory_equal(joined + 40 + 12, first + 40 + 12, flen - 40 - 12);
}

static void test_coalesce_refused_more(void **state)
{
	(void)state;
	struct flow f = { .s = { .optlen = 12, .seq = 7, .flags = TH_ACK, .id = 1, .df = true }, .mss = 1000 };
	struct gso_coalesce c;
	struct gso_hdr g;
	size_t len, got;

	gso_coalesce_init(&c, joined);
	/* A bigger segment after the first. */
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, 0, seg)), GSO_ADDED);
	struct tcp_spec s = f.s;
	s.seq += 1000, s.id++, s.payload = 1001;
	assert_int_equal(gso_coalesce_add(&c, seg, mk_tcp(seg, &s)), GSO_FLUSH);
	assert_true(gso_coalesce_finish(&c, &g, &got));
	/* Options of another length. */
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, 0, seg)), GSO_ADDED);
	s = f.s, s.optlen = 8, s.seq += 1000, s.id++, s.payload = 1000;
	assert_int_equal(gso_coalesce_add(&c, seg, mk_tcp(seg, &s)), GSO_FLUSH);
	assert_true(gso_coalesce_finish(&c, &g, &got));
	/* Another family. */
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, 0, seg)), GSO_ADDED);
	s = f.s, s.v6 = true, s.seq += 1000, s.payload = 1000;
	assert_int_equal(gso_coalesce_add(&c, seg, mk_tcp(seg, &s)), GSO_FLUSH);
	assert_true(gso_coalesce_finish(&c, &g, &got));
	/* Without DF the IPv4 IDs must go up by one; with DF they may not. */
	struct flow nodf = f;
	nodf.s.df = false;
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&nodf, 0, seg)), GSO_ADDED);
	len = flow_seg(&nodf, 1, seg);
	put16(seg + 4, 77);
	fix_csums(seg, len);
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_FLUSH);
	assert_true(gso_coalesce_finish(&c, &g, &got));
	assert_int_equal(gso_coalesce_add(&c, seg, flow_seg(&f, 0, seg)), GSO_ADDED);
	len = flow_seg(&f, 1, seg);
	put16(seg + 4, 77);
	fix_csums(seg, len);
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_ADDED);
	assert_true(gso_coalesce_finish(&c, &g, &got));

	/* Never held, whatever is pending: IPv4 options, a damaged checksum, a pure ACK, trailing bytes. */
	static const char *what[] = { "IPv4 options", "bad checksum", "pure ACK", "trailing byte", "IPv6 ext" };
	for (size_t i = 0; i < ARRAY_SIZE(what); i++) {
		struct tcp_spec t = f.s;
		t.payload = 1000;
		if (i == 4)
			t.v6 = true;
		len = mk_tcp(seg, &t);
		switch (i) {
		case 0: /* move the TCP header 4 bytes on behind an options word (NOP NOP NOP EOL) */
			memmove(seg + 24, seg + 20, len - 20);
			seg[0] = 0x46;
			memcpy(seg + 20, (uint8_t[]){ 1, 1, 1, 0 }, 4);
			len += 4;
			put16(seg + 2, (uint16_t)len);
			fix_csums(seg, len);
			break;
		case 1:
			seg[len - 1] ^= 1;
			break;
		case 2:
			t.payload = 0;
			len = mk_tcp(seg, &t);
			break;
		case 3:
			seg[len++] = 0;
			break;
		case 4:
			seg[6] = 60; /* destination options */
			break;
		}
		gso_coalesce_init(&c, joined);
		if (gso_coalesce_add(&c, seg, len) != GSO_AS_IS)
			fail_msg("%s: held", what[i]);
		assert_int_equal(c.len, 0);
	}
}

/*
 * A damaged IPv4 header is not joined (inet_gro_receive refuses it too): the superpacket's header
 * checksum is made anew, which would vouch for a header the kernel drops.
 */
static void test_coalesce_ip4_header_damaged(void **state)
{
	(void)state;
	struct flow f = { .s = { .seq = 7, .flags = TH_ACK, .id = 1, .df = true }, .mss = 1000 };
	struct gso_coalesce c;
	uint8_t first[2000];
	size_t flen = flow_seg(&f, 0, first), len;

	gso_coalesce_init(&c, joined);
	/* As the first segment: not held. */
	len = flow_seg(&f, 0, seg);
	seg[10] ^= 0x01;
	assert_false(gso_coalesce_candidate(seg, len));
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_AS_IS);
	assert_int_equal(c.len, 0);
	/* After one: it goes as it is, the held segment stays as it was. */
	assert_int_equal(gso_coalesce_add(&c, first, flen), GSO_ADDED);
	len = flow_seg(&f, 1, seg);
	seg[10] ^= 0x01;
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_AS_IS);
	assert_int_equal(c.segs, 1);
	assert_int_equal(c.len, flen);
	/* The same header whole: it joins. */
	seg[10] ^= 0x01;
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_ADDED);
	assert_int_equal(c.segs, 2);
}

/* Which flow a packet is of, and whether it could start a superpacket at all. */
static void test_coalesce_flow_and_candidate(void **state)
{
	(void)state;
	struct flow f = { .s = { .seq = 7, .flags = TH_ACK, .id = 1, .df = true }, .mss = 500 };
	struct gso_coalesce c;
	uint8_t other[1000];
	size_t len = flow_seg(&f, 0, seg);

	gso_coalesce_init(&c, joined);
	assert_false(gso_coalesce_same_flow(&c, seg, len)); /* empty */
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_ADDED);
	/* The same flow whatever its sequence number, flags or payload. */
	len = flow_seg(&f, 5, other);
	assert_true(gso_coalesce_same_flow(&c, other, len));
	struct tcp_spec s = f.s;
	s.flags = TH_ACK | TH_FIN, s.payload = 0;
	len = mk_tcp(other, &s);
	assert_true(gso_coalesce_same_flow(&c, other, len));
	/* Another port, address or family; not TCP; not a whole packet. */
	static const size_t at[] = { 21, 23, 15, 19 };
	for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
		len = flow_seg(&f, 1, other);
		other[at[i]] ^= 1;
		assert_false(gso_coalesce_same_flow(&c, other, len));
	}
	s = f.s, s.v6 = true, s.payload = 500;
	len = mk_tcp(other, &s);
	assert_false(gso_coalesce_same_flow(&c, other, len));
	len = flow_seg(&f, 1, other);
	other[9] = IPPROTO_UDP;
	assert_false(gso_coalesce_same_flow(&c, other, len));
	assert_false(gso_coalesce_same_flow(&c, other, 10));

	/* Candidates: data with ACK (and PSH) only, no IPv4 options, nothing after it. */
	len = flow_seg(&f, 1, other);
	assert_true(gso_coalesce_candidate(other, len));
	assert_false(gso_coalesce_candidate(other, len - 1));
	other[33] |= TH_PSH;
	assert_true(gso_coalesce_candidate(other, len));
	other[33] |= TH_FIN;
	assert_false(gso_coalesce_candidate(other, len));
	s = f.s, s.payload = 0;
	assert_false(gso_coalesce_candidate(other, mk_tcp(other, &s))); /* a pure ACK */
	s.payload = 10, s.flags = TH_PSH;
	assert_false(gso_coalesce_candidate(other, mk_tcp(other, &s))); /* no ACK */
	len = flow_seg(&f, 1, other);
	other[0] = 0x46;
	assert_false(gso_coalesce_candidate(other, len));
	for (size_t n = 0; n < 60; n++)
		assert_false(gso_coalesce_candidate(other, n));
}

/* Whatever bytes come, every truncation: never held beyond what was given, never a crash. */
static void test_coalesce_truncated(void **state)
{
	(void)state;
	struct flow f = { .s = { .optlen = 12, .seq = 7, .flags = TH_ACK, .id = 1, .df = true }, .mss = 100 };
	struct gso_coalesce c;
	size_t len = flow_seg(&f, 0, seg);

	gso_coalesce_init(&c, joined);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(gso_coalesce_add(&c, seg, n), GSO_AS_IS);
	assert_int_equal(c.len, 0);
	assert_int_equal(gso_coalesce_add(&c, seg, len), GSO_ADDED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_roundtrip),
		cmocka_unit_test(test_split_v4),
		cmocka_unit_test(test_split_v6_options),
		cmocka_unit_test(test_split_one_segment),
		cmocka_unit_test(test_split_refused),
		cmocka_unit_test(test_split_trailing),
		cmocka_unit_test(test_csum_complete),
		cmocka_unit_test(test_coalesce_roundtrip),
		cmocka_unit_test(test_coalesce_single),
		cmocka_unit_test(test_coalesce_ends),
		cmocka_unit_test(test_coalesce_refused),
		cmocka_unit_test(test_coalesce_refused_more),
		cmocka_unit_test(test_coalesce_ip4_header_damaged),
		cmocka_unit_test(test_coalesce_flow_and_candidate),
		cmocka_unit_test(test_coalesce_truncated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
