/*
 * TCP packets built from scratch for tests: IPv4 10.1.0.10 or fd01::10 ->
 * 10.2.0.10 or fd02::10, ports 40000 -> 5001, with checksums computed by
 * tests/lib/inet_csum.h, never by the code under test. Header only.
 */
#ifndef IKETCP_TESTS_TCP_BUILD_H
#define IKETCP_TESTS_TCP_BUILD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tests/lib/inet_csum.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20
#define TH_ECE 0x40
#define TH_CWR 0x80

static inline bool ip4_hdr_ok(const uint8_t *ip)
{
	return fold16(sum_words(ip, (size_t)(ip[0] & 0x0f) * 4, 0)) == 0xffff;
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static inline size_t ip_hlen(const uint8_t *p)
{
	return p[0] >> 4 == 4 ? (size_t)(p[0] & 0x0f) * 4 : 40;
}

/* Both checksums of a whole packet (IPv4 header; TCP, or UDP), from scratch. */
static inline void fix_csums(uint8_t *p, size_t len)
{
	size_t off, ih = ip_hlen(p);
	if (p[0] >> 4 == 4) {
		p[10] = p[11] = 0;
		put16(p + 10, (uint16_t)~fold16(sum_words(p, ih, 0)));
	}
	uint8_t proto = p[0] >> 4 == 4 ? p[9] : p[6];
	size_t at = ih + (proto == IPPROTO_TCP ? 16 : 6);
	p[at] = p[at + 1] = 0;
	uint32_t sum = pseudo_sum(p, len, proto, &off);
	put16(p + at, (uint16_t)~fold16(sum_words(p + off, len - off, sum)));
}

struct tcp_spec {
	bool v6;
	size_t optlen; /* a multiple of 4 */
	uint32_t seq;
	uint8_t flags;
	uint16_t id;
	bool df;
	size_t payload;
	uint8_t fill; /* payload byte i is fill + i */
};

/* The packet s describes into p; its length. */
static inline size_t mk_tcp(uint8_t *p, const struct tcp_spec *s)
{
	size_t ih = s->v6 ? 40 : 20, th = 20 + s->optlen, len = ih + th + s->payload;

	memset(p, 0, ih + th);
	if (s->v6) {
		p[0] = 0x60;
		put16(p + 4, (uint16_t)(len - 40));
		p[6] = IPPROTO_TCP;
		p[7] = 64;
		p[8] = 0xfd, p[9] = 0x01, p[23] = 0x10;
		p[24] = 0xfd, p[25] = 0x02, p[39] = 0x10;
	} else {
		p[0] = 0x45;
		put16(p + 2, (uint16_t)len);
		put16(p + 4, s->id);
		put16(p + 6, s->df ? 0x4000 : 0);
		p[8] = 64;
		p[9] = IPPROTO_TCP;
		p[12] = 10, p[13] = 1, p[15] = 10;
		p[16] = 10, p[17] = 2, p[19] = 10;
	}
	uint8_t *t = p + ih;
	put16(t, 40000);
	put16(t + 2, 5001);
	put32(t + 4, s->seq);
	put32(t + 8, 0x11223344);
	t[12] = (uint8_t)((th / 4) << 4);
	t[13] = s->flags;
	put16(t + 14, 0x2000);
	for (size_t i = 0; i < s->optlen; i++)
		t[20 + i] = i < 2 ? 1 : (uint8_t)(0x30 + i); /* NOP NOP, then bytes no code here reads */
	for (size_t i = 0; i < s->payload; i++)
		p[ih + th + i] = (uint8_t)(s->fill + i);
	fix_csums(p, len);
	return len;
}

#endif
