/*
 * RFC 9329 stream framer. The first byte picks how the rest is split into
 * feeds (so frame boundaries land everywhere); the stream must never crash,
 * leak, or deliver a payload longer than a frame can hold.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "transport/encap.h"

static int check_frame(void *arg, enum encap_kind kind, const uint8_t *p, size_t len)
{
	(void)arg;
	(void)p;
	if (len > ENCAP_MAX_FRAME - ENCAP_LEN_FIELD)
		abort();
	if (kind == ENCAP_KEEPALIVE && len != 1)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct encap_rx rx;
	size_t chunk, off = 0;

	if (size < 1)
		return 0;
	chunk = (size_t)(data[0] & 0x3f) + 1;
	encap_rx_init(&rx, data[0] & 0x80);
	data++;
	size--;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (encap_rx_feed(&rx, data + off, n, check_frame, NULL) < 0)
			break;
		off += n;
	}
	encap_rx_free(&rx);
	return 0;
}
