/*
 * The dataplane's Internet checksum (dataplane/inet_csum.c) against the
 * byte-at-a-time reference (tests/lib/inet_csum.h): every length and
 * alignment around the vector path's boundaries, chained sums, and the
 * all-zero and all-ones words where ones' complement has two zeros.
 */
#include <setjmp.h>
#include <sys/param.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dataplane/inet_csum.h"
#include "tests/lib/inet_csum.h"

static uint8_t buf[70000 + 64];

/* What inet_csum_add promises: the folded sum, 0 only when everything added was 0. */
static uint16_t reference(const uint8_t *p, size_t n, uint32_t sum)
{
	return fold16(sum_words(p, n, sum));
}

static void fill_random(unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
}

static void test_every_length_and_alignment(void **state)
{
	(void)state;
	fill_random(1);
	for (size_t off = 0; off < 40; off++)
		for (size_t n = 0; n < 700; n++) {
			uint32_t sum = (uint32_t)(n * 2654435761u) & 0x7ffff;
			uint16_t want = reference(buf + off, n, sum);
			assert_int_equal(inet_csum_add(buf + off, n, sum), want);
			assert_int_equal(inet_csum_add_scalar(buf + off, n, sum), want);
		}
}

static void test_large(void **state)
{
	(void)state;
	fill_random(2);
	static const size_t lens[] = { 1499, 1500, 9000, 65535, 65536, 70000 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (size_t off = 0; off < 3; off++)
			assert_int_equal(inet_csum_add(buf + off, lens[i], 0), reference(buf + off, lens[i], 0));
}

static void test_extremes(void **state)
{
	(void)state;
	memset(buf, 0, sizeof(buf));
	assert_int_equal(inet_csum_add(buf, 65536, 0), 0);
	assert_int_equal(inet_csum_add(buf, 0, 0), 0);
	/* All ones: every 64-bit lane and every carry at its limit. */
	memset(buf, 0xff, sizeof(buf));
	for (size_t n = 126; n < 140; n++)
		assert_int_equal(inet_csum_add(buf, n, 0), reference(buf, n, 0));
	assert_int_equal(inet_csum_add(buf, 65536, 0), 0xffff);
	assert_int_equal(inet_csum_add(buf, 65535, 0x7fffffff), reference(buf, 65535, 0x7fffffff));
	/* A packet whose checksum field is right sums to 0xffff. */
	fill_random(3);
	buf[16] = buf[17] = 0;
	uint16_t c = inet_csum_final(inet_csum_add(buf, 1400, 0));
	buf[16] = (uint8_t)(c >> 8), buf[17] = (uint8_t)c;
	assert_int_equal(inet_csum_add(buf, 1400, 0), 0xffff);
}

/* Longer than the vector path's 1 MiB block, whose 32-bit lanes must not overflow: all ones and random. */
static void test_beyond_block(void **state)
{
	(void)state;
	static uint8_t big[(3u << 20) + 8];
	static const size_t lens[] = { 1u << 20, (1u << 20) + 64, (1u << 20) + 69, (2u << 20) - 1, 3u << 20 };

	for (int pass = 0; pass < 2; pass++) {
		srand(5);
		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = pass ? (uint8_t)rand() : 0xff;
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			for (size_t off = 0; off < 2; off++) {
				uint32_t want = 0; /* the reference in 64 KiB pieces: its 32-bit sum cannot overflow */
				for (size_t at = 0; at < lens[i]; at += 65536)
					want = fold16(sum_words(big + off + at, MIN(65536, lens[i] - at), want));
				assert_int_equal(inet_csum_add(big + off, lens[i], 0), want);
			}
	}
}

/* The copying sum: the same sum as inet_csum_add, and a faithful copy, at every length and alignment. */
static void test_copy(void **state)
{
	(void)state;
	static uint8_t dst[2100 + 64];
	fill_random(6);
	for (size_t off = 0; off < 9; off++)
		for (size_t n = 0; n < 2100; n += n < 300 ? 1 : 37) {
			memset(dst, 0x5a, sizeof(dst));
			uint32_t sum = (uint32_t)(n * 40503u) & 0x7ffff;
			assert_int_equal(inet_csum_copy(dst + 3, buf + off, n, sum), reference(buf + off, n, sum));
			assert_memory_equal(dst + 3, buf + off, n);
			assert_int_equal(dst[2], 0x5a); /* nothing written around it */
			assert_int_equal(dst[3 + n], 0x5a);
		}
}

static void test_chained(void **state)
{
	(void)state;
	fill_random(4);
	/* Even-length chunks summed one after the other equal one pass. */
	for (size_t cut = 0; cut <= 1024; cut += 2) {
		uint16_t first = inet_csum_add(buf, cut, 17);
		assert_int_equal(inet_csum_add(buf + cut, 1025 - cut, first), reference(buf, 1025, 17));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_length_and_alignment),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_extremes),
		cmocka_unit_test(test_beyond_block),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_chained),
	};
	return cmocka_run_group_tests_name("inet_csum", tests, NULL, NULL);
}
