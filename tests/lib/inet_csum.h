/*
 * The Internet checksum computed from scratch (RFC 1071), for tests and fuzz targets to check what
 * the daemon's incremental updates produce. Header only: the fuzz targets link no test library.
 */
#ifndef IKETCP_TESTS_INET_CSUM_H
#define IKETCP_TESTS_INET_CSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Add n bytes as big-endian 16-bit words (an odd last byte padded with zero) to sum. */
static inline uint32_t sum_words(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i < n; i++)
		sum += i & 1 ? p[i] : (uint32_t)p[i] << 8;
	return sum;
}

static inline uint16_t fold16(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * The IPv4 or IPv6 packet ip of len bytes, upper layer proto: the pseudo-header sum (RFC 793 3.1,
 * RFC 8200 8.1) and where the upper-layer header starts (*off; no IPv6 extension headers).
 */
static inline uint32_t pseudo_sum(const uint8_t *ip, size_t len, uint8_t proto, size_t *off)
{
	if (ip[0] >> 4 == 4) {
		*off = (size_t)(ip[0] & 0x0f) * 4;
		return sum_words(ip + 12, 8, 0) + proto + (uint32_t)(len - *off);
	}
	*off = 40;
	return sum_words(ip + 8, 32, 0) + proto + (uint32_t)(len - *off);
}

/* The upper-layer checksum of the whole segment is right: it sums to 0xffff. */
static inline bool l4_sum_ok(const uint8_t *ip, size_t len, uint8_t proto)
{
	size_t off;
	uint32_t sum = pseudo_sum(ip, len, proto, &off);
	return fold16(sum_words(ip + off, len - off, sum)) == 0xffff;
}

#endif
