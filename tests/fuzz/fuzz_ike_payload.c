/*
 * Each IKEv2 payload decoder over arbitrary bytes; the first byte picks the
 * payload type. Whatever decodes must re-encode, and the encoding must be a
 * fixed point: decode(encode(x)) encodes to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ike/payload.h"

static const uint8_t types[] = {
	IKE_PL_SA, IKE_PL_KE, IKE_PL_IDI, IKE_PL_IDR, IKE_PL_CERT, IKE_PL_CERTREQ,
	IKE_PL_AUTH, IKE_PL_NONCE, IKE_PL_N, IKE_PL_D, IKE_PL_V, IKE_PL_TSI,
	IKE_PL_TSR, IKE_PL_SK, IKE_PL_CP, IKE_PL_SKF,
};

static struct ike_arena a1, a2;
static uint8_t out1[70000], out2[70000];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ike_pl pl, again;
	const char *why;

	/* The body must fit a payload's 16-bit length to be re-encoded. */
	if (size < 1 || size - 1 > UINT16_MAX - IKE_PL_HDR_LEN)
		return 0;
	uint8_t type = types[data[0] % ARRAY_SIZE(types)];
	ike_arena_reset(&a1);
	int err = ike_pl_decode(&pl, type, data + 1, size - 1, &a1, &why);
	if (err) {
		if (!why)
			__builtin_trap();
		return 0;
	}
	if (type == IKE_PL_SK || type == IKE_PL_SKF)
		return 0;

	pl.type = type;
	pl.critical = data[0] & 0x80;
	struct ike_enc e1, e2;
	ike_enc_init(&e1, out1, sizeof(out1));
	if (ike_pl_encode(&e1, &pl) || !wr_ok(&e1.w))
		__builtin_trap();
	ike_arena_reset(&a2);
	if (ike_pl_decode(&again, type, out1 + 4, e1.w.off - 4, &a2, &why))
		__builtin_trap();
	again.type = type;
	again.critical = pl.critical;
	ike_enc_init(&e2, out2, sizeof(out2));
	if (ike_pl_encode(&e2, &again) || e2.w.off != e1.w.off || memcmp(out1, out2, e1.w.off))
		__builtin_trap();
	return 0;
}
