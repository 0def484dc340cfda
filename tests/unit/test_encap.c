/* RFC 9329 framer: prefix, frame lengths, classification, and every way a stream can be cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "transport/encap.h"

struct seen {
	int ike, esp, keepalive, malformed, ike_short;
	size_t last_len;
	uint8_t last[65536];
	int stop_after; /* callback returns non-zero after this many frames (0 = never) */
	int total;
};

static int collect(void *arg, enum encap_kind kind, const uint8_t *p, size_t len)
{
	struct seen *s = arg;
	switch (kind) {
	case ENCAP_IKE: s->ike++; break;
	case ENCAP_ESP: s->esp++; break;
	case ENCAP_KEEPALIVE: s->keepalive++; break;
	case ENCAP_MALFORMED: s->malformed++; break;
	case ENCAP_IKE_SHORT: s->ike_short++; break;
	}
	memcpy(s->last, p, len);
	s->last_len = len;
	s->total++;
	return s->stop_after && s->total >= s->stop_after ? 7 : 0;
}

/* An IKE frame: length, zero marker, then a 28+ byte IKE message filled with `fill`. */
static size_t ike_frame(uint8_t *out, size_t msg_len, uint8_t fill)
{
	size_t n = encap_frame_header(out, ENCAP_IKE, msg_len);
	memset(out + n, fill, msg_len);
	return n + msg_len;
}

static size_t esp_frame(uint8_t *out, uint32_t spi, size_t len)
{
	size_t n = encap_frame_header(out, ENCAP_ESP, len);
	memset(out + n, 0xab, len);
	out[n] = (uint8_t)(spi >> 24);
	out[n + 1] = (uint8_t)(spi >> 16);
	out[n + 2] = (uint8_t)(spi >> 8);
	out[n + 3] = (uint8_t)spi;
	return n + len;
}

static void test_prefix_then_frames(void **state)
{
	(void)state;
	uint8_t buf[512];
	size_t n = 0;
	struct encap_rx rx;
	struct seen s = { 0 };

	memcpy(buf, "IKETCP", 6);
	n = 6;
	n += ike_frame(buf + n, 40, 0x11);
	n += esp_frame(buf + n, 0x01020304, 60);
	buf[n++] = 0;
	buf[n++] = 3;
	buf[n++] = 0xff; /* keepalive */

	encap_rx_init(&rx, true);
	assert_int_equal(encap_rx_feed(&rx, buf, n, collect, &s), 0);
	assert_int_equal(s.ike, 1);
	assert_int_equal(s.esp, 1);
	assert_int_equal(s.keepalive, 1);
	assert_true(encap_rx_prefix_done(&rx));
	assert_false(encap_rx_mid_frame(&rx));
	encap_rx_free(&rx);
}

static void test_byte_at_a_time(void **state)
{
	(void)state;
	uint8_t buf[1024];
	size_t n = 6;
	struct encap_rx rx;
	struct seen s = { 0 };

	memcpy(buf, "IKETCP", 6);
	n += ike_frame(buf + n, 300, 0x22);
	n += esp_frame(buf + n, 0xdeadbeef, 500);
	encap_rx_init(&rx, true);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(encap_rx_feed(&rx, buf + i, 1, collect, &s), 0);
	assert_int_equal(s.ike, 1);
	assert_int_equal(s.esp, 1);
	assert_int_equal(s.last_len, 500);
	assert_int_equal(s.last[0], 0xde);
	encap_rx_free(&rx);
}

/* Every split point of a two-frame stream gives the same frames. */
static void test_every_split(void **state)
{
	(void)state;
	uint8_t buf[256];
	size_t n = 6;

	memcpy(buf, "IKETCP", 6);
	n += ike_frame(buf + n, 30, 0x33);
	n += esp_frame(buf + n, 7, 20);
	for (size_t cut = 0; cut <= n; cut++) {
		struct encap_rx rx;
		struct seen s = { 0 };
		encap_rx_init(&rx, true);
		assert_int_equal(encap_rx_feed(&rx, buf, cut, collect, &s), 0);
		assert_int_equal(encap_rx_feed(&rx, buf + cut, n - cut, collect, &s), 0);
		assert_int_equal(s.ike, 1);
		assert_int_equal(s.esp, 1);
		encap_rx_free(&rx);
	}
}

static void test_many_frames_one_write(void **state)
{
	(void)state;
	static uint8_t buf[200 * 80];
	size_t n = 0;
	struct encap_rx rx;
	struct seen s = { 0 };

	for (int i = 0; i < 200; i++)
		n += i % 2 ? esp_frame(buf + n, (uint32_t)i + 1, 70) : ike_frame(buf + n, 70, (uint8_t)i);
	encap_rx_init(&rx, false);
	assert_int_equal(encap_rx_feed(&rx, buf, n, collect, &s), 0);
	assert_int_equal(s.ike, 100);
	assert_int_equal(s.esp, 100);
	encap_rx_free(&rx);
}

struct prefix_case {
	const char *bytes;
	size_t len;
	int ret;
};

static void test_bad_prefixes(void **state)
{
	(void)state;
	static const struct prefix_case cases[] = {
		{ "GET / HTTP/1.1\r\n", 16, -1 },
		{ "\x16\x03\x01\x02\x00\x01", 6, -1 }, /* a TLS ClientHello */
		{ "IKETCQ", 6, -1 },
		{ "iketcp", 6, -1 },
		{ "IKE", 3, 0 },                        /* truncated: not an error yet */
		{ "\0\0\0\0\0\0", 6, -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct encap_rx rx;
		struct seen s = { 0 };
		encap_rx_init(&rx, true);
		int ret = encap_rx_feed(&rx, (const uint8_t *)cases[i].bytes, cases[i].len, collect, &s);
		assert_int_equal(ret < 0 ? -1 : 0, cases[i].ret);
		if (ret < 0) {
			assert_int_equal(rx.error, ENCAP_ERR_PREFIX);
			/* A failed stream stays failed. */
			assert_true(encap_rx_feed(&rx, (const uint8_t *)"IKETCP", 6, collect, &s) < 0);
		}
		assert_int_equal(s.total, 0);
		encap_rx_free(&rx);
	}
}

/* Lengths 0 and 1 close (RFC 9329 section 3); 2 and 5 are dropped frames; 65535 waits for its bytes. */
static void test_lengths(void **state)
{
	(void)state;
	struct encap_rx rx;
	struct seen s = { 0 };
	uint8_t zero[] = { 0, 0 }, one[] = { 0, 1 }, two[] = { 0, 2 };
	uint8_t five[] = { 0, 5, 1, 2, 3 }, five_zero[] = { 0, 5, 0, 0, 0 };
	uint8_t big[] = { 0xff, 0xff, 1, 2, 3, 4 };
	uint8_t short_ike[] = { 0, 10, 0, 0, 0, 0, 1, 2, 3, 4 };
	uint8_t one_byte_not_ka[] = { 0, 3, 0x00 };

	encap_rx_init(&rx, false);
	assert_true(encap_rx_feed(&rx, zero, 2, collect, &s) < 0);
	assert_int_equal(rx.error, ENCAP_ERR_LENGTH);
	encap_rx_free(&rx);

	encap_rx_init(&rx, false);
	assert_true(encap_rx_feed(&rx, one, 2, collect, &s) < 0);
	assert_int_equal(rx.error, ENCAP_ERR_LENGTH);
	encap_rx_free(&rx);

	/* Length 1 split across two feeds is caught too. */
	encap_rx_init(&rx, false);
	assert_int_equal(encap_rx_feed(&rx, one, 1, collect, &s), 0);
	assert_true(encap_rx_feed(&rx, one + 1, 1, collect, &s) < 0);
	encap_rx_free(&rx);

	encap_rx_init(&rx, false);
	assert_int_equal(encap_rx_feed(&rx, two, 2, collect, &s), 0);
	assert_int_equal(encap_rx_feed(&rx, five, 5, collect, &s), 0);
	assert_int_equal(encap_rx_feed(&rx, five_zero, 5, collect, &s), 0);
	assert_int_equal(encap_rx_feed(&rx, one_byte_not_ka, 3, collect, &s), 0);
	assert_int_equal(s.malformed, 4);
	assert_int_equal(encap_rx_feed(&rx, short_ike, sizeof(short_ike), collect, &s), 0);
	assert_int_equal(s.ike_short, 1);
	assert_int_equal(s.ike + s.esp, 0);

	assert_int_equal(encap_rx_feed(&rx, big, sizeof(big), collect, &s), 0);
	assert_true(encap_rx_mid_frame(&rx)); /* a frame larger than what follows: held, bounded */
	encap_rx_free(&rx);
	assert_false(encap_rx_mid_frame(&rx));
}

static void test_max_frame(void **state)
{
	(void)state;
	static uint8_t buf[65535];
	struct encap_rx rx;
	struct seen s = { 0 };

	size_t n = ike_frame(buf, 65535 - 6, 0x44);
	assert_int_equal(n, 65535);
	encap_rx_init(&rx, false);
	assert_int_equal(encap_rx_feed(&rx, buf, 1000, collect, &s), 0);
	assert_int_equal(encap_rx_feed(&rx, buf + 1000, n - 1000, collect, &s), 0);
	assert_int_equal(s.ike, 1);
	assert_int_equal(s.last_len, 65535 - 6);
	encap_rx_free(&rx);
}

static void test_callback_stops_feed(void **state)
{
	(void)state;
	uint8_t buf[400];
	size_t n = 0;
	struct encap_rx rx;
	struct seen s = { .stop_after = 2 };

	for (int i = 0; i < 5; i++)
		n += esp_frame(buf + n, (uint32_t)i + 1, 30);
	encap_rx_init(&rx, false);
	assert_int_equal(encap_rx_feed(&rx, buf, n, collect, &s), 7);
	assert_int_equal(s.esp, 2);
	encap_rx_free(&rx);
}

static void test_frame_header(void **state)
{
	(void)state;
	uint8_t h[6];

	assert_int_equal(encap_frame_header(h, ENCAP_IKE, 100), 6);
	assert_int_equal(h[0] << 8 | h[1], 106);
	assert_int_equal(h[2] | h[3] | h[4] | h[5], 0);
	assert_int_equal(encap_frame_header(h, ENCAP_ESP, 100), 2);
	assert_int_equal(h[0] << 8 | h[1], 102);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_then_frames),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_many_frames_one_write),
		cmocka_unit_test(test_bad_prefixes),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_max_frame),
		cmocka_unit_test(test_callback_stops_feed),
		cmocka_unit_test(test_frame_header),
	};
	return cmocka_run_group_tests_name("encap", tests, NULL, NULL);
}
