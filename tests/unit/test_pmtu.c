/*
 * Inner path MTU (dataplane/pmtu.c): the ESP-in-UDP arithmetic checked by hand and against esp_encap,
 * MSS clamping on real SYNs with the checksum recomputed from scratch, and the ICMP/ICMPv6 "too big"
 * answers checked field by field.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dataplane/pmtu.h"
#include "dataplane/sa_set.h"
#include "esp/esp.h"
#include "iketcp/compiler.h"
#include "tests/lib/inet_csum.h"

/* ---- independent checksums ------------------------------------------------------------------- */

/* A header or message whose checksum field is right sums to 0xffff (RFC 1071). */
static bool ip4_hdr_ok(const uint8_t *ip)
{
	return fold16(sum_words(ip, (size_t)(ip[0] & 0x0f) * 4, 0)) == 0xffff;
}

/* Upper-layer checksum with the pseudo-header (RFC 793 / RFC 8200 8.1), over the whole segment. */
static bool l4_csum_ok(const uint8_t *ip, size_t len)
{
	return l4_sum_ok(ip, len, ip[0] >> 4 == 4 ? ip[9] : ip[6]);
}

static void set_l4_csum(uint8_t *ip, size_t len, size_t csum_at)
{
	size_t off;
	ip[csum_at] = ip[csum_at + 1] = 0;
	uint32_t sum = pseudo_sum(ip, len, ip[0] >> 4 == 4 ? ip[9] : ip[6], &off);
	uint16_t c = (uint16_t)~fold16(sum_words(ip + off, len - off, sum));
	ip[csum_at] = (uint8_t)(c >> 8);
	ip[csum_at + 1] = (uint8_t)c;
}

/* ---- packet builders ------------------------------------------------------------------------- */

/* Linux's SYN options: MSS, SACK-permitted, timestamps, NOP, window scale 7 (20 bytes). */
static const uint8_t linux_opts[] = {
	2, 4, 0x05, 0xb4,                         /* MSS 1460 */
	4, 2,                                     /* SACK permitted */
	8, 10, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, /* timestamps */
	1,                                        /* NOP */
	3, 3, 7,                                  /* window scale */
};

struct pkt {
	uint8_t b[2048];
	size_t len;
	size_t tcp;  /* offset of the TCP (or other L4) header */
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

/* IPv4 header with ip_opts (a multiple of 4), protocol proto, l4_len bytes after it, DF set. */
static size_t ip4_hdr(struct pkt *k, const uint8_t *ip_opts, size_t ip_opts_len, uint8_t proto, size_t l4_len)
{
	size_t hl = 20 + ip_opts_len;
	memset(k->b, 0, hl);
	k->b[0] = (uint8_t)(0x40 | hl / 4);
	put16(k->b + 2, (uint16_t)(hl + l4_len));
	put16(k->b + 4, 0x1234);
	k->b[6] = 0x40; /* DF */
	k->b[8] = 64;
	k->b[9] = proto;
	memcpy(k->b + 12, (uint8_t[]){ 10, 0, 0, 1 }, 4);
	memcpy(k->b + 16, (uint8_t[]){ 10, 0, 1, 2 }, 4);
	if (ip_opts_len)
		memcpy(k->b + 20, ip_opts, ip_opts_len);
	uint16_t c = (uint16_t)~fold16(sum_words(k->b, hl, 0));
	put16(k->b + 10, c);
	return hl;
}

static size_t ip6_hdr(struct pkt *k, uint8_t nh, size_t payload_len)
{
	memset(k->b, 0, 40);
	k->b[0] = 0x60;
	put16(k->b + 4, (uint16_t)payload_len);
	k->b[6] = nh;
	k->b[7] = 64;
	inet_pton(AF_INET6, "2001:db8::1", k->b + 8);
	inet_pton(AF_INET6, "2001:db8:1::2", k->b + 24);
	return 40;
}

/* TCP header at off with flags and options, a valid checksum. */
static void tcp_hdr(struct pkt *k, size_t off, uint8_t flags, const uint8_t *opts, size_t opts_len)
{
	uint8_t *t = k->b + off;
	size_t pad = (4 - opts_len % 4) % 4;
	memset(t, 0, 20 + opts_len + pad);
	put16(t, 40000);
	put16(t + 2, 443);
	memcpy(t + 4, "\x9a\xbc\xde\xf0", 4);
	t[12] = (uint8_t)((20 + opts_len + pad) / 4 << 4);
	t[13] = flags;
	put16(t + 14, 64240);
	if (opts_len)
		memcpy(t + 20, opts, opts_len); /* padded with EOL (zeros) */
	k->tcp = off;
	k->len = off + 20 + opts_len + pad;
	set_l4_csum(k->b, k->len, off + 16);
}

static void syn4(struct pkt *k, const uint8_t *opts, size_t opts_len, uint8_t flags)
{
	size_t pad = (4 - opts_len % 4) % 4;
	size_t hl = ip4_hdr(k, NULL, 0, IPPROTO_TCP, 20 + opts_len + pad);
	tcp_hdr(k, hl, flags, opts, opts_len);
}

static void syn6(struct pkt *k, const uint8_t *opts, size_t opts_len, uint8_t flags)
{
	size_t pad = (4 - opts_len % 4) % 4;
	size_t hl = ip6_hdr(k, IPPROTO_TCP, 20 + opts_len + pad);
	tcp_hdr(k, hl, flags, opts, opts_len);
}

enum { SYN = 0x02, ACK = 0x10 };

/* Clamp a copy held in a buffer of exactly len bytes (ASan sees any read past it). */
static bool clamp_exact(uint8_t *pkt, size_t len, uint16_t mss)
{
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, pkt, len);
	bool changed = pmtu_clamp_mss(copy, len, mss);
	memcpy(pkt, copy, len);
	free(copy);
	return changed;
}

/* Unchanged: false and not one byte different. */
static void assert_untouched(const struct pkt *k, uint16_t mss)
{
	struct pkt c = *k;
	assert_false(clamp_exact(c.b, c.len, mss));
	assert_memory_equal(c.b, k->b, k->len);
}

/* k with the byte at `at` set to each of vals in turn: left untouched by a clamp to 536 every time. */
static void untouched_as(struct pkt *k, size_t at, const uint8_t *vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		k->b[at] = vals[i];
		assert_untouched(k, 536);
	}
}

/* ---- pmtu_inner_max ---------------------------------------------------------------------------- */

static struct esp_sa sa_of(uint8_t iv, uint8_t icv, uint8_t block)
{
	struct esp_sa sa;
	memset(&sa, 0, sizeof(sa));
	sa.iv_len = iv;
	sa.icv_len = icv;
	sa.block = block;
	return sa;
}

static void test_inner_max_by_hand(void **state)
{
	(void)state;
	struct esp_sa gcm = sa_of(8, 16, 4), chacha = sa_of(8, 16, 4), cbc = sa_of(16, 16, 16);
	/*
	 * RFC 4303 2.4 / RFC 3948 2.2: outer IP | UDP 8 | SPI 4 | seq 4 | IV | enc(inner | pad | 2) | ICV,
	 * with inner + pad + 2 a multiple of the block.
	 * GCM, IPv4, 1500: 1500 - 20 - 8 - 8 - 8 - 16 = 1440 (a multiple of 4), inner 1438.
	 */
	assert_int_equal(pmtu_inner_max(1500, false, true, &gcm), 1438);
	assert_int_equal(pmtu_inner_max(1500, false, true, &chacha), 1438);
	/* IPv6 outer: 20 more bytes of header: 1420, inner 1418. */
	assert_int_equal(pmtu_inner_max(1500, true, true, &gcm), 1418);
	assert_int_equal(pmtu_inner_max(1500, true, true, &chacha), 1418);
	/* Without UDP (ESP straight on IP): 1448, inner 1446. */
	assert_int_equal(pmtu_inner_max(1500, false, false, &gcm), 1446);
	/* CBC + HMAC-SHA256-128, IPv4: 1500 - 20 - 8 - 8 - 16 - 16 = 1432 -> 1424 (16s), inner 1422. */
	assert_int_equal(pmtu_inner_max(1500, false, true, &cbc), 1422);
	/* IPv6: 1412 -> 1408, inner 1406. */
	assert_int_equal(pmtu_inner_max(1500, true, true, &cbc), 1406);
	/* IPv6 minimum link, GCM: 1280 - 80 = 1200, inner 1198; CBC: 1280 - 88 = 1192 -> 1184, 1182. */
	assert_int_equal(pmtu_inner_max(1280, true, true, &gcm), 1198);
	assert_int_equal(pmtu_inner_max(1280, true, true, &cbc), 1182);
	/* A 1400 link with a 1-byte misalignment: 1401 - 60 = 1341 -> 1340, inner 1338. */
	assert_int_equal(pmtu_inner_max(1401, false, true, &gcm), 1338);
	assert_int_equal(pmtu_inner_max(1403, false, true, &gcm), 1338);
	assert_int_equal(pmtu_inner_max(1404, false, true, &gcm), 1342);
	/* Nothing fits: the fixed 60 bytes plus the trailer, or less. */
	assert_int_equal(pmtu_inner_max(0, false, true, &gcm), 0);
	assert_int_equal(pmtu_inner_max(60, false, true, &gcm), 0);
	assert_int_equal(pmtu_inner_max(62, false, true, &gcm), 0);
	assert_int_equal(pmtu_inner_max(63, false, true, &gcm), 0);
	assert_int_equal(pmtu_inner_max(64, false, true, &gcm), 2);
	assert_int_equal(pmtu_inner_max(68 + 15, false, true, &cbc), 0);
	assert_int_equal(pmtu_inner_max(68 + 16, false, true, &cbc), 14);
}

/* Every MTU from 0 to 9000: inner_max fits (by esp_encap_len) and one more byte does not. */
static void test_inner_max_matches_esp(void **state)
{
	(void)state;
	const struct esp_sa sas[] = { sa_of(8, 16, 4), sa_of(16, 16, 16), sa_of(16, 24, 16), sa_of(16, 32, 16) };
	for (size_t i = 0; i < sizeof(sas) / sizeof(sas[0]); i++)
		for (int v6 = 0; v6 < 2; v6++)
			for (int udp = 0; udp < 2; udp++)
				for (size_t mtu = 0; mtu <= 9000; mtu++) {
					size_t outer = (v6 ? 40 : 20) + (udp ? 8 : 0);
					size_t n = pmtu_inner_max(mtu, v6, udp, &sas[i]);
					if (n)
						assert_true(outer + esp_encap_len(&sas[i], n) <= mtu);
					assert_true(outer + esp_encap_len(&sas[i], n + 1) > mtu);
				}
}

/* A real AES-GCM and CBC SA: an inner packet of inner_max bytes encapsulates to exactly the MTU. */
static void test_inner_max_real_sa(void **state)
{
	(void)state;
	static uint8_t keymat[64], inner[2000], out[2100];
	const struct { enum esp_cipher c; uint16_t enc, integ; size_t km; } suites[] = {
		{ ESP_AES_GCM_16, 128, 0, 20 },
		{ ESP_CHACHA20_POLY1305, 256, 0, 36 },
		{ ESP_AES_CBC_HMAC_SHA2, 128, 256, 48 },
	};
	for (size_t i = 0; i < sizeof(keymat); i++)
		keymat[i] = (uint8_t)(i * 13 + 1);
	for (size_t s = 0; s < sizeof(suites) / sizeof(suites[0]); s++) {
		struct esp_sa sa;
		struct esp_sa_params p = {
			.spi = 0x1001, .outbound = true, .cipher = suites[s].c, .enc_key_bits = suites[s].enc,
			.integ_bits = suites[s].integ, .keymat = keymat, .keymat_len = suites[s].km,
		};
		memset(&sa, 0, sizeof(sa));
		assert_int_equal(esp_sa_init(&sa, &p), 0);
		for (size_t mtu = 1280; mtu <= 1500; mtu += 7) {
			size_t n = pmtu_inner_max(mtu, false, true, &sa);
			memset(inner, 0, n);
			inner[0] = 0x45;
			put16(inner + 2, (uint16_t)n);
			ssize_t w = esp_encap(&sa, inner, n, out, sizeof(out));
			assert_true(w > 0);
			assert_true(20 + 8 + (size_t)w <= mtu);
			assert_true(20 + 8 + (size_t)w > mtu - sa.block); /* no block left unused */
		}
		esp_sa_destroy(&sa);
	}
}

static void test_mss_for(void **state)
{
	(void)state;
	assert_int_equal(pmtu_mss_for(1438, false), 1398);
	assert_int_equal(pmtu_mss_for(1418, true), 1358);
	assert_int_equal(pmtu_mss_for(1500, false), 1460);
	assert_int_equal(pmtu_mss_for(1500, true), 1440);
	assert_int_equal(pmtu_mss_for(105, false), 65);
	assert_int_equal(pmtu_mss_for(104, false), 64);
	assert_int_equal(pmtu_mss_for(0, false), 64);
	assert_int_equal(pmtu_mss_for(0, true), 64);
	assert_int_equal(pmtu_mss_for(100000, false), 65535);
}

/* ---- pmtu_clamp_mss --------------------------------------------------------------------------- */

static void check_clamped(struct pkt *k, size_t mss_at, uint16_t mss)
{
	struct pkt before = *k;
	assert_true(l4_csum_ok(k->b, k->len));
	assert_true(clamp_exact(k->b, k->len, mss));
	assert_int_equal(get16(k->b + mss_at), mss);
	assert_true(l4_csum_ok(k->b, k->len));
	if (k->b[0] >> 4 == 4)
		assert_true(ip4_hdr_ok(k->b));
	/* Only the MSS value and the checksum changed. */
	for (size_t i = 0; i < k->len; i++)
		if (i != mss_at && i != mss_at + 1 && i != k->tcp + 16 && i != k->tcp + 17)
			assert_int_equal(k->b[i], before.b[i]);
	/* Clamping again is a no-op. */
	assert_untouched(k, mss);
}

static void test_clamp_ipv4_linux_syn(void **state)
{
	(void)state;
	struct pkt k;
	syn4(&k, linux_opts, sizeof(linux_opts), SYN);
	assert_int_equal(k.len, 60);
	check_clamped(&k, 20 + 20 + 2, 1360);
	/* SYN-ACK too: both directions announce an MSS. */
	syn4(&k, linux_opts, sizeof(linux_opts), SYN | ACK);
	check_clamped(&k, 42, 1398);
}

static void test_clamp_mss_after_other_options(void **state)
{
	(void)state;
	/* NOP NOP TS, SACK-perm, WS, then MSS last. */
	static const uint8_t opts[] = {
		1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8,
		4, 2, 3, 3, 14,
		2, 4, 0x23, 0x28, /* 9000 */
	};
	struct pkt k;
	syn4(&k, opts, sizeof(opts), SYN);
	check_clamped(&k, 20 + 20 + 19, 1400);
	syn6(&k, opts, sizeof(opts), SYN);
	check_clamped(&k, 40 + 20 + 19, 1380);
}

static void test_clamp_ipv4_with_ip_options(void **state)
{
	(void)state;
	static const uint8_t router_alert[] = { 0x94, 0x04, 0x00, 0x00 };
	static const uint8_t nops[] = { 1, 1, 1, 1, 1, 1, 1, 0 };
	struct pkt k;
	size_t hl = ip4_hdr(&k, router_alert, sizeof(router_alert), IPPROTO_TCP, 40);
	tcp_hdr(&k, hl, SYN, linux_opts, sizeof(linux_opts));
	assert_int_equal(k.b[0], 0x46);
	check_clamped(&k, 24 + 22, 1300);

	hl = ip4_hdr(&k, nops, sizeof(nops), IPPROTO_TCP, 40);
	tcp_hdr(&k, hl, SYN, linux_opts, sizeof(linux_opts));
	check_clamped(&k, 28 + 22, 536);
}

static void test_clamp_ipv6(void **state)
{
	(void)state;
	struct pkt k;
	syn6(&k, linux_opts, sizeof(linux_opts), SYN);
	assert_int_equal(k.len, 80);
	check_clamped(&k, 62, 1358);
}

/* The incremental update against a from-scratch checksum over many values, ports and carries. */
static void test_clamp_checksum_many(void **state)
{
	(void)state;
	uint32_t x = 12345;
	for (int i = 0; i < 20000; i++) {
		struct pkt k;
		x = x * 1103515245u + 12345u;
		uint16_t cur = (uint16_t)(x >> 8 | 2), mss = (uint16_t)(x >> 16);
		/* Every third one behind a NOP: the value at an odd offset, across two checksum words. */
		uint8_t opts[5] = { 1, 2, 4, (uint8_t)(cur >> 8), (uint8_t)cur };
		size_t skip = i % 3 ? 1 : 0;
		if (i & 1)
			syn4(&k, opts + skip, 5 - skip, SYN);
		else
			syn6(&k, opts + skip, 5 - skip, SYN);
		/* Vary ports and addresses so the checksum takes every kind of carry. */
		put16(k.b + k.tcp, (uint16_t)(x >> 3));
		put16(k.b + k.tcp + 4, (uint16_t)(x >> 11));
		if (i % 7 == 0)
			memset(k.b + k.tcp + 4, 0xff, 4);
		set_l4_csum(k.b, k.len, k.tcp + 16);
		if (cur > mss)
			check_clamped(&k, k.tcp + 23 - skip, mss);
		else
			assert_untouched(&k, mss);
	}
}

static void test_clamp_unchanged(void **state)
{
	(void)state;
	static const uint8_t no_mss[] = { 1, 1, 4, 2, 1, 3, 3, 7 };
	struct pkt k;

	/* Already at or under the limit. */
	syn4(&k, linux_opts, sizeof(linux_opts), SYN);
	assert_untouched(&k, 1460);
	assert_untouched(&k, 1461);
	assert_untouched(&k, 65535);
	/* No MSS option at all, or no options. */
	syn4(&k, no_mss, sizeof(no_mss), SYN);
	assert_untouched(&k, 536);
	syn4(&k, NULL, 0, SYN);
	assert_untouched(&k, 536);
	/* Not a SYN: an ACK that happens to carry the option. */
	syn4(&k, linux_opts, sizeof(linux_opts), ACK);
	assert_untouched(&k, 536);
	syn6(&k, linux_opts, sizeof(linux_opts), ACK);
	assert_untouched(&k, 536);
	/* UDP, and ICMP, with bytes that would read as a SYN with an MSS. */
	syn4(&k, linux_opts, sizeof(linux_opts), SYN);
	k.b[9] = IPPROTO_UDP;
	assert_untouched(&k, 536);
	syn6(&k, linux_opts, sizeof(linux_opts), SYN);
	k.b[6] = IPPROTO_UDP;
	assert_untouched(&k, 536);
	/* Fragments: MF set (first fragment), or any offset. */
	syn4(&k, linux_opts, sizeof(linux_opts), SYN);
	k.b[6] = 0x20;
	assert_untouched(&k, 536);
	k.b[6] = 0x00;
	k.b[7] = 0x01;
	assert_untouched(&k, 536);
	k.b[6] = 0x40;
	k.b[7] = 0x00;
	k.b[6] |= 0x10; /* offset high bits */
	assert_untouched(&k, 536);
	/* DF alone is not a fragment. */
	k.b[6] = 0x40;
	assert_true(clamp_exact(k.b, k.len, 536));
	/* IPv6 with a hop-by-hop header before TCP: not looked into. */
	syn6(&k, linux_opts, sizeof(linux_opts), SYN);
	struct pkt e = k;
	memmove(e.b + 48, e.b + 40, k.len - 40);
	e.b[6] = IPPROTO_HOPOPTS;
	memset(e.b + 40, 0, 8);
	e.b[40] = IPPROTO_TCP;
	e.b[42] = 1; /* PadN */
	e.b[43] = 4;
	e.len += 8;
	put16(e.b + 4, (uint16_t)(e.len - 40));
	assert_untouched(&e, 536);
	/* Neither IPv4 nor IPv6. */
	syn4(&k, linux_opts, sizeof(linux_opts), SYN);
	untouched_as(&k, 0, (const uint8_t[]){ 0x55, 0x05 }, 2);
}

static void test_clamp_truncated_everywhere(void **state)
{
	(void)state;
	struct pkt k;
	for (int v6 = 0; v6 < 2; v6++) {
		if (v6)
			syn6(&k, linux_opts, sizeof(linux_opts), SYN);
		else
			syn4(&k, linux_opts, sizeof(linux_opts), SYN);
		for (size_t len = 0; len < k.len; len++) {
			struct pkt c = k;
			assert_false(clamp_exact(c.b, len, 536));
			assert_memory_equal(c.b, k.b, k.len);
		}
	}
	/* The TCP header cut inside the options, IP total length unchanged: still nothing. */
	syn4(&k, linux_opts, sizeof(linux_opts), SYN);
	for (size_t len = 40; len < 60; len++) {
		struct pkt c = k;
		assert_false(clamp_exact(c.b, len, 536));
	}
}

static void test_clamp_malformed(void **state)
{
	(void)state;
	struct pkt k, c;

	/* IHL below 5. */
	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		syn4(&k, linux_opts, sizeof(linux_opts), SYN);
		k.b[0] = (uint8_t)(0x40 | ihl);
		assert_untouched(&k, 536);
	}
	/* IHL past the packet, and one that leaves less than a TCP header. */
	syn4(&k, linux_opts, sizeof(linux_opts), SYN);
	untouched_as(&k, 0, (const uint8_t[]){ 0x4f, 0x4b }, 2);
	/* Data offset below 5, or beyond the packet. */
	for (uint8_t doff = 0; doff < 16; doff++) {
		syn4(&k, linux_opts, sizeof(linux_opts), SYN);
		k.b[k.tcp + 12] = (uint8_t)(doff << 4);
		set_l4_csum(k.b, k.len, k.tcp + 16);
		c = k;
		bool changed = clamp_exact(c.b, c.len, 536);
		/* Only offsets that reach past byte 24 (the MSS value) and stay in the packet may clamp. */
		assert_int_equal(changed, doff >= 6 && doff <= 10);
		if (changed)
			assert_true(l4_csum_ok(c.b, c.len));
	}
	/* Option length 0 and 1 (would loop or step back), and one running over the header. */
	static const uint8_t len0[] = { 1, 4, 0, 2, 4, 5, 0xb4, 0, 0, 0 };
	static const uint8_t len1[] = { 4, 1, 2, 4, 5, 0xb4 };
	static const uint8_t over[] = { 1, 1, 8, 40, 2, 4, 5, 0xb4 };
	static const uint8_t over_mss[] = { 1, 1, 1, 1, 1, 1, 2, 4 }; /* MSS value past the header */
	static const uint8_t eol_first[] = { 1, 0, 2, 4, 5, 0xb4, 1, 1 };
	static const uint8_t mss_len3[] = { 2, 3, 5, 1, 1, 1, 1, 1 };
	static const uint8_t mss_len5[] = { 2, 5, 5, 0xb4, 0, 1, 1, 1 };
	static const uint8_t mss_len2[] = { 2, 2, 1, 1, 1, 1, 1, 1 };
	static const uint8_t lone_kind[] = { 1, 1, 1, 8 }; /* a kind with no length byte */
	const struct { const uint8_t *o; size_t n; } bad[] = {
		{ len0, sizeof(len0) }, { len1, sizeof(len1) }, { over, sizeof(over) },
		{ over_mss, sizeof(over_mss) }, { eol_first, sizeof(eol_first) }, { mss_len3, sizeof(mss_len3) },
		{ mss_len5, sizeof(mss_len5) }, { mss_len2, sizeof(mss_len2) }, { lone_kind, sizeof(lone_kind) },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		syn4(&k, bad[i].o, bad[i].n, SYN);
		assert_untouched(&k, 536);
		syn6(&k, bad[i].o, bad[i].n, SYN);
		assert_untouched(&k, 536);
	}
}

/* ---- pmtu_wants_too_big ---------------------------------------------------------------------- */

/* Bytes after the hl-byte IP header up to total, a pattern every test can tell from zeros. */
static void fill_l4(struct pkt *k, size_t hl, size_t total)
{
	for (size_t i = hl; i < total; i++)
		k->b[i] = (uint8_t)(i * 31 + 7);
	k->len = total;
	k->tcp = hl;
}

static void big4(struct pkt *k, uint8_t proto, size_t total)
{
	fill_l4(k, ip4_hdr(k, NULL, 0, proto, total - 20), total);
}

static void big6(struct pkt *k, uint8_t nh, size_t total)
{
	fill_l4(k, ip6_hdr(k, nh, total - 40), total);
}

static bool wants_exact(const struct pkt *k)
{
	uint8_t *copy = malloc(k->len ? k->len : 1);
	memcpy(copy, k->b, k->len);
	bool w = pmtu_wants_too_big(copy, k->len);
	free(copy);
	return w;
}

static void test_wants_ipv4(void **state)
{
	(void)state;
	struct pkt k;

	big4(&k, IPPROTO_TCP, 1400);
	assert_true(wants_exact(&k));
	k.b[6] = 0x00; /* DF clear */
	assert_false(wants_exact(&k));
	k.b[6] = 0x60; /* DF and MF: the first fragment */
	assert_true(wants_exact(&k));
	k.b[6] = 0x40;
	k.b[7] = 0xb9; /* a later fragment */
	assert_false(wants_exact(&k));
	k.b[6] = 0x41;
	k.b[7] = 0x00;
	assert_false(wants_exact(&k));

	/* ICMP: echo request and reply are answered; errors never. */
	big4(&k, IPPROTO_ICMP, 1400);
	const struct { uint8_t type; bool answer; } icmp[] = {
		{ 8, true }, { 0, true }, { 13, true }, { 3, false }, { 4, false }, { 5, false },
		{ 11, false }, { 12, false }, { 200, false },
	};
	for (size_t i = 0; i < sizeof(icmp) / sizeof(icmp[0]); i++) {
		k.b[20] = icmp[i].type;
		assert_int_equal(wants_exact(&k), icmp[i].answer);
	}
	/* An ICMP packet cut before its type: unknown, so not answered. */
	k.len = 20;
	assert_false(wants_exact(&k));

	/* Sources that are no single host, destinations that are many (RFC 1812 4.3.2.7). */
	const uint8_t srcs[][4] = { { 0, 0, 0, 0 }, { 127, 0, 0, 1 }, { 224, 0, 0, 5 }, { 240, 1, 2, 3 },
				    { 255, 255, 255, 255 } };
	for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
		big4(&k, IPPROTO_UDP, 1400);
		memcpy(k.b + 12, srcs[i], 4);
		assert_false(wants_exact(&k));
		big4(&k, IPPROTO_UDP, 1400);
		if (srcs[i][0] >= 224) {
			memcpy(k.b + 16, srcs[i], 4);
			assert_false(wants_exact(&k));
		}
	}

	/* Malformed: nothing, IHL below 5 or past the end, truncated. */
	big4(&k, IPPROTO_TCP, 1400);
	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		k.b[0] = (uint8_t)(0x40 | ihl);
		assert_false(wants_exact(&k));
	}
	k.b[0] = 0x4f;
	k.len = 59;
	assert_false(wants_exact(&k));
	big4(&k, IPPROTO_TCP, 1400);
	for (size_t len = 0; len < 20; len++) {
		k.len = len;
		assert_false(wants_exact(&k));
	}
	k.len = 20;
	assert_true(wants_exact(&k)); /* a bare header of TCP: answered */
	k.b[0] = 0x55;
	assert_false(wants_exact(&k));
}

static void test_wants_ipv6(void **state)
{
	(void)state;
	struct pkt k;

	big6(&k, IPPROTO_TCP, 1500);
	assert_true(wants_exact(&k));
	big6(&k, IPPROTO_ICMPV6, 1500);
	k.b[40] = 128; /* echo request */
	assert_true(wants_exact(&k));
	k.b[40] = 129;
	assert_true(wants_exact(&k));
	for (unsigned t = 0; t < 128; t++) { /* every error type */
		k.b[40] = (uint8_t)t;
		assert_false(wants_exact(&k));
	}
	k.len = 40; /* ICMPv6 with no type byte */
	assert_false(wants_exact(&k));

	/* An ICMPv6 error behind hop-by-hop and destination options: still an error. */
	big6(&k, IPPROTO_HOPOPTS, 1500);
	k.b[40] = IPPROTO_DSTOPTS;
	k.b[41] = 0;          /* 8 bytes */
	k.b[48] = IPPROTO_ICMPV6;
	k.b[49] = 1;          /* 16 bytes */
	k.b[64] = 1;          /* destination unreachable */
	assert_false(wants_exact(&k));
	k.b[64] = 128;
	assert_true(wants_exact(&k));
	k.len = 64;           /* the chain ends where the ICMPv6 header would start */
	assert_false(wants_exact(&k));
	k.len = 60;           /* cut inside the destination options */
	assert_false(wants_exact(&k));
	k.len = 1500;
	k.b[49] = 200;        /* runs past the packet */
	assert_false(wants_exact(&k));

	/* Fragment header: a first fragment is looked into, a later one cannot be. */
	big6(&k, IPPROTO_FRAGMENT, 1500);
	memset(k.b + 40, 0, 8);
	k.b[40] = IPPROTO_ICMPV6;
	k.b[43] = 1;          /* offset 0, M */
	k.b[48] = 3;          /* time exceeded */
	assert_false(wants_exact(&k));
	put16(k.b + 42, 185 << 3);
	assert_true(wants_exact(&k));

	/* Sources that are not one node (RFC 4443 2.4 (e.6)); a multicast destination is fine (e.2). */
	big6(&k, IPPROTO_UDP, 1500);
	memset(k.b + 8, 0, 16);
	assert_false(wants_exact(&k));
	big6(&k, IPPROTO_UDP, 1500);
	inet_pton(AF_INET6, "ff02::1", k.b + 8);
	assert_false(wants_exact(&k));
	big6(&k, IPPROTO_UDP, 1500);
	inet_pton(AF_INET6, "ff0e::1234", k.b + 24);
	assert_true(wants_exact(&k));

	/* A chain of 20 hop-by-hop headers: refused rather than followed forever. */
	big6(&k, IPPROTO_HOPOPTS, 1500);
	for (int i = 0; i < 20; i++) {
		k.b[40 + 8 * i] = IPPROTO_HOPOPTS;
		k.b[41 + 8 * i] = 0;
	}
	assert_false(wants_exact(&k));

	for (size_t len = 0; len < 40; len++) {
		big6(&k, IPPROTO_TCP, 1500);
		k.len = len;
		assert_false(wants_exact(&k));
	}
}

/* ---- pmtu_too_big ------------------------------------------------------------------------------ */

static ssize_t too_big_exact(const struct pkt *k, uint16_t mtu, uint8_t *out, size_t cap)
{
	uint8_t *in = malloc(k->len ? k->len : 1), *o = malloc(cap ? cap : 1);
	memcpy(in, k->b, k->len);
	ssize_t n = pmtu_too_big(in, k->len, mtu, o, cap);
	if (n > 0)
		memcpy(out, o, (size_t)n);
	free(in);
	free(o);
	return n;
}

static void check_icmp4(const struct pkt *k, uint16_t mtu, const uint8_t *o, ssize_t n, size_t quote)
{
	assert_int_equal(n, 20 + 8 + quote);
	assert_int_equal(o[0], 0x45);
	assert_int_equal(get16(o + 2), n);
	assert_int_equal(get16(o + 6) & 0x1fff, 0); /* not a fragment */
	assert_true(o[8] > 0);
	assert_int_equal(o[9], IPPROTO_ICMP);
	assert_true(ip4_hdr_ok(o));
	assert_memory_equal(o + 12, k->b + 16, 4); /* from its destination */
	assert_memory_equal(o + 16, k->b + 12, 4); /* to its source */
	assert_int_equal(o[20], 3);
	assert_int_equal(o[21], 4);
	assert_int_equal(get16(o + 24), 0);
	assert_int_equal(get16(o + 26), mtu);
	assert_int_equal(fold16(sum_words(o + 20, (size_t)n - 20, 0)), 0xffff);
	assert_memory_equal(o + 28, k->b, quote);
}

/* Answer k for mtu in a roomy buffer and check the answer: it announces announced and quotes quote bytes. */
static ssize_t answered(const struct pkt *k, uint16_t mtu, uint32_t announced, size_t quote);

/* Small packets are quoted whole, odd lengths included (the checksum pads with zero). */
struct quote_case {
	uint8_t proto;
	size_t len;
	uint16_t mtu;
	size_t quote;
};

static void check_quotes(void (*build)(struct pkt *, uint8_t, size_t), const struct quote_case *c, size_t n)
{
	struct pkt k;
	for (size_t i = 0; i < n; i++) {
		build(&k, c[i].proto, c[i].len);
		answered(&k, c[i].mtu, c[i].mtu, c[i].quote);
	}
}

/* The answer to k needs exactly need bytes of room: one byte less, or tiny, is refused. */
static void check_room(const struct pkt *k, uint16_t mtu, size_t need, size_t tiny)
{
	static uint8_t o[2048];
	assert_int_equal(too_big_exact(k, mtu, o, need), need);
	assert_int_equal(too_big_exact(k, mtu, o, need - 1), -ENOSPC);
	assert_int_equal(too_big_exact(k, mtu, o, tiny), -ENOSPC);
}

/* k gets no answer at all, however roomy the buffer. */
static void check_unanswered(const struct pkt *k)
{
	static uint8_t o[2048];
	assert_int_equal(too_big_exact(k, 1400, o, sizeof(o)), -EINVAL);
}

static void test_too_big_ipv4(void **state)
{
	(void)state;
	struct pkt k;

	/* A 1400-byte DF packet: RFC 1812 4.3.2.3 caps the whole answer at 576, so 548 quoted. */
	big4(&k, IPPROTO_TCP, 1400);
	assert_int_equal(answered(&k, 1438, 1438, 548), 576);
	/* Exactly enough room, then one byte short. */
	check_room(&k, 1438, 576, 0);
	static const struct quote_case quotes[] = {
		{ IPPROTO_UDP, 101, 68, 101 }, { IPPROTO_UDP, 548, 1000, 548 }, { IPPROTO_UDP, 549, 1000, 548 },
	};
	check_quotes(big4, quotes, ARRAY_SIZE(quotes));
	/* ICMP echo with IP options: the whole header is in the quote. */
	static const uint8_t ra[] = { 0x94, 0x04, 0, 0 };
	size_t hl = ip4_hdr(&k, ra, sizeof(ra), IPPROTO_ICMP, 1000);
	k.len = hl + 1000;
	memset(k.b + hl, 0x33, 1000);
	k.b[hl] = 8;
	answered(&k, 1400, 1400, 548);

	/* Packets we do not answer: DF clear, an ICMP error, a later fragment, nothing at all. */
	static const struct { uint8_t proto; size_t at; uint8_t v; } unanswered[] = {
		{ IPPROTO_TCP, 6, 0 }, { IPPROTO_ICMP, 20, 3 }, { IPPROTO_TCP, 7, 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(unanswered); i++) {
		big4(&k, unanswered[i].proto, 1400);
		k.b[unanswered[i].at] = unanswered[i].v;
		check_unanswered(&k);
	}
	k.len = 0;
	check_unanswered(&k);
}

static void check_icmp6(const struct pkt *k, uint32_t mtu, const uint8_t *o, ssize_t n, size_t quote)
{
	assert_int_equal(n, 40 + 8 + quote);
	assert_true(n <= 1280);
	assert_int_equal(o[0] >> 4, 6);
	assert_int_equal(get16(o + 4), n - 40);
	assert_int_equal(o[6], IPPROTO_ICMPV6);
	assert_true(o[7] > 0);
	assert_memory_equal(o + 8, k->b + 24, 16);
	assert_memory_equal(o + 24, k->b + 8, 16);
	assert_int_equal(o[40], 2);
	assert_int_equal(o[41], 0);
	assert_int_equal(get32(o + 44), mtu);
	assert_true(l4_csum_ok(o, (size_t)n));
	assert_memory_equal(o + 48, k->b, quote);
}

static ssize_t answered(const struct pkt *k, uint16_t mtu, uint32_t announced, size_t quote)
{
	static uint8_t o[2048];
	ssize_t n = too_big_exact(k, mtu, o, sizeof(o));
	if (k->b[0] >> 4 == 4)
		check_icmp4(k, (uint16_t)announced, o, n, quote);
	else
		check_icmp6(k, announced, o, n, quote);
	return n;
}

static void test_too_big_ipv6(void **state)
{
	(void)state;
	struct pkt k;

	/* 1500 bytes: quoted up to 1280 in all (RFC 4443 2.4 (c)), 1232 of them. */
	big6(&k, IPPROTO_TCP, 1500);
	assert_int_equal(answered(&k, 1418, 1418, 1232), 1280);
	/* An MTU below the IPv6 minimum is announced as 1280. */
	static const struct { uint16_t mtu; uint32_t announced; } mtus[] = {
		{ 1000, 1280 }, { 0, 1280 }, { 1280, 1280 }, { 65535, 65535 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(mtus); i++)
		answered(&k, mtus[i].mtu, mtus[i].announced, 1232);
	/* Short buffers. */
	check_room(&k, 1400, 1280, 48);
	static const struct quote_case quotes[] = {
		{ IPPROTO_UDP, 333, 1300, 333 }, { IPPROTO_UDP, 1233, 1300, 1232 },
	};
	check_quotes(big6, quotes, ARRAY_SIZE(quotes));
	/* Echo is answered, errors are not. */
	big6(&k, IPPROTO_ICMPV6, 1500);
	k.b[40] = 128;
	answered(&k, 1400, 1400, 1232);
	k.b[40] = 2;
	check_unanswered(&k);
	k.len = 39;
	check_unanswered(&k);
}

/* ---- sa_set_fit: which packets too big for the path are answered -------------------------------- */

/*
 * An IPv6 packet of at most 1280 bytes goes out whatever the path, in a fragmented outer packet (RFC
 * 8200 section 5): "too big" announces at least 1280, so its sender would send it again as it is, and
 * again be answered, for ever. Bigger ones, and IPv4 with DF, are still answered.
 */
static void test_fit_ipv6_minimum_mtu(void **state)
{
	(void)state;
	static struct sa_set_sa sa = { .inner_max = 1198 }; /* an IPv6 path of 1280 bytes, AES-GCM */
	static uint8_t icmp[2048];
	struct pkt k;

	big6(&k, IPPROTO_UDP, 1280);
	assert_int_equal(sa_set_fit(&sa, k.b, k.len, icmp, sizeof(icmp)), 0);
	big6(&k, IPPROTO_UDP, 1199);
	assert_int_equal(sa_set_fit(&sa, k.b, k.len, icmp, sizeof(icmp)), 0);
	big6(&k, IPPROTO_UDP, 1281);
	assert_int_equal(sa_set_fit(&sa, k.b, k.len, icmp, sizeof(icmp)), 40 + 8 + 1232);
	assert_int_equal(get32(icmp + 44), 1280);
	big4(&k, IPPROTO_UDP, 1199);
	assert_int_equal(sa_set_fit(&sa, k.b, k.len, icmp, sizeof(icmp)), 576);
	assert_int_equal(get16(icmp + 26), 1198);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inner_max_by_hand),
		cmocka_unit_test(test_inner_max_matches_esp),
		cmocka_unit_test(test_inner_max_real_sa),
		cmocka_unit_test(test_mss_for),
		cmocka_unit_test(test_clamp_ipv4_linux_syn),
		cmocka_unit_test(test_clamp_mss_after_other_options),
		cmocka_unit_test(test_clamp_ipv4_with_ip_options),
		cmocka_unit_test(test_clamp_ipv6),
		cmocka_unit_test(test_clamp_checksum_many),
		cmocka_unit_test(test_clamp_unchanged),
		cmocka_unit_test(test_clamp_truncated_everywhere),
		cmocka_unit_test(test_clamp_malformed),
		cmocka_unit_test(test_wants_ipv4),
		cmocka_unit_test(test_wants_ipv6),
		cmocka_unit_test(test_too_big_ipv4),
		cmocka_unit_test(test_too_big_ipv6),
		cmocka_unit_test(test_fit_ipv6_minimum_mtu),
	};
	return cmocka_run_group_tests_name("pmtu", tests, NULL, NULL);
}
