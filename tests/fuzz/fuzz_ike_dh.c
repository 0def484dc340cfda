/*
 * The peer's KE payload data (RFC 7296 section 3.4) for every supported group:
 * wrong lengths, points off the curve, small-order values must be refused with
 * an error, never a crash. The first byte picks the group.
 */
#include <stdint.h>
#include <stdlib.h>

#include "ike/crypto.h"
#include "iketcp/secret.h"

static const uint16_t groups[] = { 19, 20, 21, 31, 32, 14 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ike_dh *dh[sizeof(groups) / sizeof(groups[0])];
	struct secret *shared = NULL;

	if (size < 1)
		return 0;
	size_t g = data[0] % (sizeof(groups) / sizeof(groups[0]));
	/* One key pair per group for the whole run: generating MODP keys per input would be too slow. */
	if (!dh[g] && !(dh[g] = ike_dh_new(groups[g])))
		abort();
	int err = ike_dh_derive(dh[g], data + 1, size - 1, &shared);
	if (!err && (!shared || size - 1 != ike_dh_public_len(groups[g])))
		abort();
	secret_free(shared);
	return 0;
}
