/* What the ESP benchmarks seal: a key pattern and an IPv4 packet of len bytes with a byte pattern. */
#ifndef IKETCP_BENCH_PACKET_H
#define IKETCP_BENCH_PACKET_H

#include <stddef.h>
#include <stdint.h>

static inline void bench_packet(uint8_t *keymat, size_t key_len, uint8_t *ip, size_t len)
{
	for (size_t i = 0; i < key_len; i++)
		keymat[i] = (uint8_t)(i * 7 + 3);
	for (size_t i = 0; i < len; i++)
		ip[i] = (uint8_t)i;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(len >> 8);
	ip[3] = (uint8_t)len;
}

#endif
