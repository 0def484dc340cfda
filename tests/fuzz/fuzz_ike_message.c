/*
 * A whole IKEv2 message: header, outer chain, the rules, and the SK contents
 * parsed as if they had been decrypted (the fuzzer cannot forge an ICV, so
 * the bytes after the SK header stand in for the plaintext). Every payload
 * that decodes must re-encode to a fixed point.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ike/message.h"
#include "ike/rules.h"

static struct ike_msg msg;
static struct ike_arena arena;
static uint8_t out1[70000], out2[70000];

static void reencode(const struct ike_pl *pl)
{
	struct ike_enc e1, e2;
	struct ike_pl again;
	const char *why;

	if (pl->type == IKE_PL_SK || pl->type == IKE_PL_SKF)
		return;
	ike_enc_init(&e1, out1, sizeof(out1));
	if (ike_pl_encode(&e1, pl) || !wr_ok(&e1.w))
		__builtin_trap();
	ike_arena_reset(&arena);
	if (ike_pl_decode(&again, pl->type, out1 + 4, e1.w.off - 4, &arena, &why))
		__builtin_trap();
	again.type = pl->type;
	again.critical = pl->critical;
	ike_enc_init(&e2, out2, sizeof(out2));
	if (ike_pl_encode(&e2, &again) || e2.w.off != e1.w.off || memcmp(out1, out2, e1.w.off))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ike_rule_error rerr;

	if (ike_msg_parse(&msg, data, size)) {
		if (!msg.err.why || !msg.err.notify)
			__builtin_trap();
		return 0;
	}
	if (msg.hdr.length != size || msg.npl != msg.nouter)
		__builtin_trap();
	(void)ike_rules_check(&msg, false, &rerr);
	if (msg.sk.present) {
		if (msg.sk.aad != data || msg.sk.aad_len + msg.sk.sealed_len != size)
			__builtin_trap();
		if (ike_msg_parse_inner(&msg, msg.sk.inner_first, msg.sk.sealed, msg.sk.sealed_len) == 0)
			(void)ike_rules_check(&msg, true, &rerr);
		else if (msg.npl != msg.nouter)
			__builtin_trap();
	}
	(void)ike_msg_check_meaning(&msg, true, &rerr);
	(void)ike_rule_why_name(rerr.why);
	for (unsigned i = 0; i < msg.npl; i++)
		reencode(&msg.pl[i]);
	return 0;
}
