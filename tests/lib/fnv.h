/*
 * FNV-1a over bytes: a fingerprint for tests that check a buffer is still what
 * it was, and a cheap stand-in for an ICV. Header only, like inet_csum.h.
 */
#ifndef IKETCP_TESTS_FNV_H
#define IKETCP_TESTS_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_INIT 0xcbf29ce484222325ull

/* h carried on over p[0..n): start from FNV1A_INIT. */
static inline uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

#endif
