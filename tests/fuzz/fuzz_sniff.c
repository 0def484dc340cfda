/*
 * libFuzzer target for the connection sniffer. Besides "no crash", it checks
 * the promise the acceptor relies on: a prefix of an input classified X is
 * classified NEED_MORE or X, so waiting for more bytes never changes a
 * verdict, and nothing is decided on a cut ClientHello.
 */
#include <stdint.h>
#include <stdlib.h>

#include "transport/sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum sniff_kind full = sniff_classify(data, size);
	size_t step;

	if (full > SNIFF_UNKNOWN || !sniff_kind_name(full))
		abort();
	if (full == SNIFF_UNKNOWN)
		return 0;
	/* every prefix of small inputs, about 64 of large ones */
	step = size <= 1024 ? 1 : size / 64;
	for (size_t n = 0; n < size; n += step) {
		enum sniff_kind k = sniff_classify(data, n);
		if (k != SNIFF_NEED_MORE && k != full)
			abort();
	}
	if (size && sniff_classify(data, size - 1) != SNIFF_NEED_MORE &&
	    sniff_classify(data, size - 1) != full)
		abort();
	return 0;
}
