/*
 * The Internet checksum. The sum commutes with byte swapping (RFC 1071
 * section 2 B), so words are added in host order, wide, and the result is
 * swapped once. Hot: every segment the TUN dataplane makes or joins, and
 * every packet AF_XDP steals, passes through here whole.
 */
#include <arpa/inet.h>
#include <string.h>

#include "dataplane/inet_csum.h"

/* a + b with the carry out added back in: one's complement addition on 64-bit words. */
static inline uint64_t add_c(uint64_t a, uint64_t b)
{
	uint64_t s;
	return __builtin_add_overflow(a, b, &s) ? s + 1 : s;
}

/* A 64-bit ones' complement sum in host order, folded to 16 bits, swapped to big-endian terms, plus sum. */
static uint16_t finish(uint64_t s, uint32_t sum)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	uint32_t r = (uint32_t)ntohs((uint16_t)s) + sum;
	r = (r & 0xffff) + (r >> 16);
	r = (r & 0xffff) + (r >> 16);
	return (uint16_t)r;
}

/* 64-bit words on two accumulators; the tail padded with zero as a big-endian word's low byte. */
static uint64_t sum_scalar(const uint8_t *p, size_t n)
{
	uint64_t s0 = 0, s1 = 0, w0, w1;

	for (; n >= 32; p += 32, n -= 32) {
		memcpy(&w0, p, 8);
		memcpy(&w1, p + 8, 8);
		s0 = add_c(s0, w0);
		s1 = add_c(s1, w1);
		memcpy(&w0, p + 16, 8);
		memcpy(&w1, p + 24, 8);
		s0 = add_c(s0, w0);
		s1 = add_c(s1, w1);
	}
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w0, p, 8);
		s0 = add_c(s0, w0);
	}
	if (n) {
		uint8_t tail[8] = { 0 };
		memcpy(tail, p, n);
		memcpy(&w0, tail, 8);
		s1 = add_c(s1, w0);
	}
	return add_c(s0, s1);
}

uint16_t inet_csum_add_scalar(const uint8_t *p, size_t n, uint32_t sum)
{
	return finish(sum_scalar(p, n), sum);
}

static uint16_t csum_copy_scalar(uint8_t *dst, const uint8_t *src, size_t n, uint32_t sum)
{
	memcpy(dst, src, n);
	return inet_csum_add_scalar(src, n, sum);
}

#if defined(__x86_64__)
#include <immintrin.h>

/*
 * AVX2: each 32-bit word split into its two 16-bit halves, added in 32-bit
 * lanes; masks, shifts and adds only, no cross-lane shuffles (half again as
 * fast as widening to 64 bits on the machines we measured). A lane takes
 * 65536 halves before it could overflow: blocks of 1 MiB give it 32768.
 */
#define AVX2_BLOCK (1u << 20)

/* dst NULL: sum only; else each 64 bytes loaded are stored at dst too. Inlined into both, so the test folds. */
__attribute__((always_inline, target("avx2"))) static inline uint64_t sum_avx2_to(uint8_t *dst, const uint8_t *p,
										size_t n)
{
	const __m256i low16 = _mm256_set1_epi32(0xffff);
	uint64_t s = 0;

	while (n >= 64) {
		__m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
		size_t block = n < AVX2_BLOCK ? n : AVX2_BLOCK;
		n -= block & ~(size_t)63;
		for (; block >= 64; p += 64, block -= 64) {
			__m256i v0 = _mm256_loadu_si256((const __m256i *)p);
			__m256i v1 = _mm256_loadu_si256((const __m256i *)(p + 32));
			if (dst) {
				_mm256_storeu_si256((__m256i *)dst, v0);
				_mm256_storeu_si256((__m256i *)(dst + 32), v1);
				dst += 64;
			}
			lo = _mm256_add_epi32(lo, _mm256_and_si256(v0, low16));
			hi = _mm256_add_epi32(hi, _mm256_srli_epi32(v0, 16));
			lo = _mm256_add_epi32(lo, _mm256_and_si256(v1, low16));
			hi = _mm256_add_epi32(hi, _mm256_srli_epi32(v1, 16));
		}
		uint32_t l[8], h[8];
		_mm256_storeu_si256((__m256i *)l, lo);
		_mm256_storeu_si256((__m256i *)h, hi);
		/* Host-order halves: a 32-bit word is lo + (hi << 16), ones' complement-equivalent once folded. */
		for (int i = 0; i < 8; i++)
			s = add_c(s, (uint64_t)l[i] + ((uint64_t)h[i] << 16));
	}
	if (dst)
		memcpy(dst, p, n);
	return add_c(s, sum_scalar(p, n));
}

__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t n)
{
	return sum_avx2_to(NULL, p, n);
}

__attribute__((target("avx2"))) static uint64_t sum_copy_avx2(uint8_t *dst, const uint8_t *p, size_t n)
{
	return sum_avx2_to(dst, p, n);
}

uint16_t inet_csum_copy(uint8_t *dst, const uint8_t *src, size_t n, uint32_t sum)
{
	if (n >= 128 && __builtin_cpu_supports("avx2"))
		return finish(sum_copy_avx2(dst, src, n), sum);
	return csum_copy_scalar(dst, src, n, sum);
}

/* Short runs (headers, pseudo-headers) stay scalar; __builtin_cpu_supports is one load of libgcc's CPU model. */
uint16_t inet_csum_add(const uint8_t *p, size_t n, uint32_t sum)
{
	if (n >= 128 && __builtin_cpu_supports("avx2"))
		return finish(sum_avx2(p, n), sum);
	return inet_csum_add_scalar(p, n, sum);
}
#else
uint16_t inet_csum_add(const uint8_t *p, size_t n, uint32_t sum)
{
	return inet_csum_add_scalar(p, n, sum);
}

uint16_t inet_csum_copy(uint8_t *dst, const uint8_t *src, size_t n, uint32_t sum)
{
	return csum_copy_scalar(dst, src, n, sum);
}
#endif
