/*
 * Inner packets from the clear side (dataplane/pmtu.c): the input is one IP packet. MSS clamping
 * may change only the MSS value and the TCP checksum, keeps a valid checksum valid and is
 * idempotent; "too big" answers fit their buffer and the RFC caps, with valid checksums.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "dataplane/pmtu.h"
#include "tests/lib/inet_csum.h"

/* TCP checksum over pseudo-header and segment; only called on packets clamping accepted. */
static bool tcp_csum_ok(const uint8_t *ip, size_t len)
{
	return l4_sum_ok(ip, len, IPPROTO_TCP);
}

static void clamp(const uint8_t *data, size_t size, uint16_t mss)
{
	uint8_t *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	bool valid = false;
	if (size >= 1 && data[0] >> 4 == 4 && (size_t)(data[0] & 0x0f) * 4 >= 20 &&
	    (size_t)(data[0] & 0x0f) * 4 <= size)
		valid = tcp_csum_ok(data, size);
	else if (size >= 40 && data[0] >> 4 == 6)
		valid = tcp_csum_ok(data, size);
	if (pmtu_clamp_mss(p, size, mss)) {
		size_t diff = 0;
		for (size_t i = 0; i < size; i++)
			diff += p[i] != data[i];
		if (diff > 4 || diff == 0)
			abort(); /* only the MSS value and the checksum */
		if (valid && !tcp_csum_ok(p, size))
			abort();
		if (pmtu_clamp_mss(p, size, mss))
			abort(); /* already clamped */
	} else if (memcmp(p, data, size)) {
		abort(); /* unchanged means unchanged */
	}
	free(p);
}

static void too_big(const uint8_t *data, size_t size, uint16_t mtu, size_t cap)
{
	uint8_t *out = malloc(cap ? cap : 1);
	ssize_t n = pmtu_too_big(data, size, mtu, out, cap);
	bool wants = pmtu_wants_too_big(data, size);

	if (n < 0) {
		if (wants && n != -ENOSPC)
			abort();
		if (!wants && n != -EINVAL)
			abort();
	} else {
		if (!wants || (size_t)n > cap || n < 48 - 20 * (data[0] >> 4 == 4))
			abort();
		if (data[0] >> 4 == 4 && (n > 576 || fold16(sum_words(out, 20, 0)) != 0xffff ||
					  fold16(sum_words(out + 20, (size_t)n - 20, 0)) != 0xffff))
			abort();
		if (data[0] >> 4 == 6 && (n > 1280 || out[6] != IPPROTO_ICMPV6 ||
					  fold16(sum_words(out + 40, (size_t)n - 40,
							   sum_words(out + 8, 32, 0) + IPPROTO_ICMPV6 +
							   (uint32_t)(n - 40))) != 0xffff))
			abort();
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t msses[] = { 0, 536, 1200, 1460, 65535 };
	for (size_t i = 0; i < sizeof(msses) / sizeof(msses[0]); i++)
		clamp(data, size, msses[i]);

	/* The packet in a buffer of its exact size, so ASan sees reads past the end. */
	uint8_t *pkt = malloc(size ? size : 1);
	memcpy(pkt, data, size);
	too_big(pkt, size, 1400, 2048);
	too_big(pkt, size, 0, 1280);
	too_big(pkt, size, 576, size % 64);   /* tiny buffers */
	too_big(pkt, size, 1280, size / 2);
	free(pkt);
	return 0;
}
