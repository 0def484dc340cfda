/*
 * A TUN read with virtio-net headers (dataplane/gso.c): the input is a
 * virtio_net_hdr, one byte choosing the path's packet limit, then the packet.
 * A superpacket that is split gives segments no bigger than asked, each with
 * right IPv4 header and TCP checksums, whose payloads add up to the whole;
 * joined again they give superpackets of at most 64 KiB that the kernel would
 * accept, with the field the kernel completes into a right checksum. The raw
 * packet offered to the coalescer, and checksum completion at hostile offsets,
 * stay within their buffers.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "dataplane/gso.h"
#include "tests/lib/inet_csum.h"

static uint8_t seg[GSO_PKT_MAX], joined[GSO_PKT_MAX], scratch[GSO_PKT_MAX];

static size_t ip_hlen(const uint8_t *p)
{
	return p[0] >> 4 == 4 ? (size_t)(p[0] & 0x0f) * 4 : 40;
}

/* A finished superpacket: within 64 KiB, its IP length right, its checksum completable. */
static void check_joined(const struct gso_hdr *h, size_t len)
{
	if (len > GSO_PKT_MAX || len < 40)
		abort();
	if (h->gso_type == GSO_TYPE_NONE)
		return;
	size_t ih = ip_hlen(joined);
	if (h->csum_start != ih || h->csum_offset != 16 || h->hdr_len > len || !h->gso_size ||
	    len - h->hdr_len <= h->gso_size)
		abort();
	if (joined[0] >> 4 == 4 && (fold16(sum_words(joined, ih, 0)) != 0xffff || (size_t)(joined[2] << 8 | joined[3]) != len))
		abort();
	if (joined[0] >> 4 == 6 && (size_t)(joined[4] << 8 | joined[5]) + 40 != len)
		abort();
	memcpy(scratch, joined, len);
	if (gso_csum_complete(scratch, len, h->csum_start, h->csum_offset) || !l4_sum_ok(scratch, len, IPPROTO_TCP))
		abort();
}

static void split(const struct gso_hdr *h, uint8_t *pkt, size_t len, size_t max_len)
{
	struct gso_split sp, ip;
	uint8_t *work = malloc(len ? len : 1), *in_place;
	size_t ilen;
	struct gso_coalesce c;
	struct gso_hdr jh;
	size_t payload = 0, jlen;
	ssize_t n;

	memcpy(work, pkt, len);
	if (gso_split_init(&sp, h, pkt, len, max_len)) {
		if (!gso_split_init(&ip, h, work, len, max_len))
			abort();
		free(work);
		return;
	}
	if (gso_split_init(&ip, h, work, len, max_len))
		abort();
	gso_coalesce_init(&c, joined);
	while ((n = gso_split_next(&sp, seg, sizeof(seg))) > 0) {
		/* In place: the same bytes, inside the superpacket. */
		in_place = gso_split_next_inplace(&ip, &ilen);
		if (!in_place || ilen != (size_t)n || memcmp(in_place, seg, ilen) || in_place < work ||
		    in_place + ilen > work + len)
			abort();
		size_t ih = ip_hlen(seg);
		if ((size_t)n < sp.hlen || (size_t)n - sp.hlen > sp.mss || sp.mss > h->gso_size)
			abort();
		if (max_len > sp.hlen && (size_t)n > max_len)
			abort();
		if (seg[0] >> 4 == 4 && fold16(sum_words(seg, ih, 0)) != 0xffff)
			abort();
		if (!l4_sum_ok(seg, (size_t)n, IPPROTO_TCP))
			abort();
		payload += (size_t)n - sp.hlen;
		enum gso_add a = gso_coalesce_add(&c, seg, (size_t)n);
		if (a == GSO_FLUSH) {
			if (!gso_coalesce_finish(&c, &jh, &jlen))
				abort();
			check_joined(&jh, jlen);
			a = gso_coalesce_add(&c, seg, (size_t)n);
			if (a == GSO_FLUSH)
				abort(); /* an empty builder takes any segment it would hold */
		}
	}
	if (n < 0 || payload != sp.len - sp.hlen || gso_split_next_inplace(&ip, &ilen))
		abort();
	free(work);
	if (gso_coalesce_finish(&c, &jh, &jlen))
		check_joined(&jh, jlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t limits[] = { 0, 68, 576, 1280, 1400, 9000 };
	struct gso_hdr h;
	struct gso_coalesce c;

	if (gso_hdr_parse(data, size, &h) || size < GSO_VNET_HDR_LEN + 1)
		return 0;
	size_t max_len = limits[data[GSO_VNET_HDR_LEN] % (sizeof(limits) / sizeof(limits[0]))];
	size_t len = size - GSO_VNET_HDR_LEN - 1;
	/* The packet in a buffer of its exact size, so ASan sees reads past the end. */
	uint8_t *pkt = malloc(len ? len : 1);
	memcpy(pkt, data + GSO_VNET_HDR_LEN + 1, len);

	split(&h, pkt, len, max_len);
	/* The same packet as a TSO read of either family. */
	h.gso_type = GSO_TYPE_TCPV4;
	split(&h, pkt, len, max_len);
	h.gso_type = GSO_TYPE_TCPV6;
	split(&h, pkt, len, max_len);

	/* As an opened packet: held or not, twice over. */
	if (len <= GSO_PKT_MAX) {
		struct gso_hdr jh;
		size_t jlen;
		gso_coalesce_init(&c, joined);
		bool cand = gso_coalesce_candidate(pkt, len);
		if (gso_coalesce_same_flow(&c, pkt, len))
			abort(); /* an empty builder holds no flow */
		enum gso_add first = gso_coalesce_add(&c, pkt, len);
		if ((first == GSO_ADDED && !cand) || first == GSO_FLUSH)
			abort();
		if (first == GSO_ADDED && !gso_coalesce_same_flow(&c, pkt, len))
			abort();
		for (int i = 0; i < 2; i++)
			if (gso_coalesce_add(&c, pkt, len) == GSO_FLUSH && gso_coalesce_finish(&c, &jh, &jlen))
				check_joined(&jh, jlen);
		if (gso_coalesce_finish(&c, &jh, &jlen))
			check_joined(&jh, jlen);
	}

	if (gso_csum_complete(pkt, len, h.csum_start, h.csum_offset) == 0 &&
	    ((size_t)h.csum_start >= len || (size_t)h.csum_start + h.csum_offset + 2 > len))
		abort();
	free(pkt);
	return 0;
}
