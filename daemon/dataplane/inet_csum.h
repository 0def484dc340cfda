/*
 * The Internet checksum (RFC 1071) over the packets the dataplane rewrites:
 * one implementation for segmentation, coalescing, AF_XDP checksum completion
 * and the ICMP errors it builds.
 */
#ifndef IKETCP_DATAPLANE_INET_CSUM_H
#define IKETCP_DATAPLANE_INET_CSUM_H

#include <stddef.h>
#include <stdint.h>

/*
 * The ones' complement sum of p[0..n) as big-endian 16-bit words (an odd last
 * byte padded with zero), plus sum (unfolded, below 2^31), folded to 16 bits
 * and not inverted. Chunks summed one after the other must all but the last
 * be of even length.
 */
uint16_t inet_csum_add(const uint8_t *p, size_t n, uint32_t sum);

/* The same without vector instructions, whatever the CPU: for tests. */
uint16_t inet_csum_add_scalar(const uint8_t *p, size_t n, uint32_t sum);

/* inet_csum_add over src, copying it to dst (not overlapping) on the way: one pass over the bytes. */
uint16_t inet_csum_copy(uint8_t *dst, const uint8_t *src, size_t n, uint32_t sum);

/* ~fold(sum): what goes into a checksum field. */
static inline uint16_t inet_csum_final(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

#endif
