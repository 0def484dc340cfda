/*
 * IKEv2 messages: header, payload chain, SK split and per-exchange rules.
 * The IKE_SA_INIT request below is written out by hand from RFC 7296 3.1-3.10
 * and checked byte for byte against both the parser and the encoder.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ike/message.h"
#include "ike/rules.h"
#include "tests/lib/fnv.h"

static const uint8_t init_req_hex[] = {
	/* SPIi */
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	/* SPIr: zero in the first request */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* Next SA, version 2.0, IKE_SA_INIT, flags I, message ID 0 */
	0x21, 0x20, 0x22, 0x08, 0x00, 0x00, 0x00, 0x00,
	/* Length 250 */
	0x00, 0x00, 0x00, 0xfa,
	/* SA: next KE, length 48 */
	0x22, 0x00, 0x00, 0x30,
	/* proposal: last, length 44, #1, IKE, SPI size 0, 4 transforms */
	0x00, 0x00, 0x00, 0x2c, 0x01, 0x01, 0x00, 0x04,
	/* ENCR AES_GCM_16, Key Length 256 */
	0x03, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x14, 0x80, 0x0e, 0x01, 0x00,
	/* PRF HMAC_SHA2_512 */
	0x03, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x07,
	/* D-H CURVE_25519 */
	0x03, 0x00, 0x00, 0x08, 0x04, 0x00, 0x00, 0x1f,
	/* D-H ECP_256, last */
	0x00, 0x00, 0x00, 0x08, 0x04, 0x00, 0x00, 0x13,
	/* KE: next Nonce, length 40, group 31 */
	0x28, 0x00, 0x00, 0x28, 0x00, 0x1f, 0x00, 0x00,
	/* key exchange data */
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
	0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
	0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
	/* Nonce: next N, length 36 */
	0x29, 0x00, 0x00, 0x24,
	/* nonce data */
	0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
	0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
	0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7,
	0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
	/* N: next N, length 28, NAT_DETECTION_SOURCE_IP */
	0x29, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x04,
	/* SHA-1 digest */
	0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
	0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
	0x55, 0x55, 0x55, 0x55,
	/* N: next N, length 28, NAT_DETECTION_DESTINATION_IP */
	0x29, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x05,
	/* SHA-1 digest */
	0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
	0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
	0x66, 0x66, 0x66, 0x66,
	/* N: next N, length 8, IKEV2_FRAGMENTATION_SUPPORTED */
	0x29, 0x00, 0x00, 0x08, 0x00, 0x00, 0x40, 0x2e,
	/* N: next V, length 14, SIGNATURE_HASH_ALGORITHMS */
	0x2b, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x40, 0x2f,
	/* SHA2_256, SHA2_384, SHA2_512 */
	0x00, 0x02, 0x00, 0x03, 0x00, 0x04,
	/* V: last, length 20 */
	0x00, 0x00, 0x00, 0x14,
	/* vendor ID */
	0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
	0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
};

static struct ike_msg msg; /* ~6 KiB: kept off the test stack */

static uint8_t seq(uint8_t from, size_t i) { return (uint8_t)(from + i); }

/* The same message through the encoder. */
static size_t encode_init_req(uint8_t *buf, size_t cap)
{
	static const struct ike_transform xf[] = {
		{ .type = IKE_XF_ENCR, .id = ENCR_AES_GCM_16, .has_key_len = true, .key_len = 256 },
		{ .type = IKE_XF_PRF, .id = PRF_HMAC_SHA2_512 },
		{ .type = IKE_XF_DH, .id = CURVE_25519 },
		{ .type = IKE_XF_DH, .id = ECP_256 },
	};
	static const struct ike_proposal prop = { .num = 1, .proto = IKE_PROTO_IKE, .nxf = 4, .xf = xf };
	uint8_t ke[32], nonce[32], nat_s[20], nat_d[20], vid[16];
	static const uint8_t hashes[] = { 0, 2, 0, 3, 0, 4 };
	for (size_t i = 0; i < 32; i++)
		ke[i] = seq(0xa0, i), nonce[i] = seq(0xc0, i);
	memset(nat_s, 0x55, sizeof(nat_s));
	memset(nat_d, 0x66, sizeof(nat_d));
	memset(vid, 0x77, sizeof(vid));

	struct ike_hdr h = { .spi_i = 0x0102030405060708ull, .exchange = IKE_SA_INIT, .flags = IKE_FLAG_I };
	struct ike_enc e;
	ike_msg_begin(&e, buf, cap, &h);
	assert_int_equal(ike_pl_encode(&e, &(struct ike_pl){ .type = IKE_PL_SA, .u.sa = { 1, &prop } }), 0);
	assert_int_equal(ike_pl_encode(&e, &(struct ike_pl){ .type = IKE_PL_KE,
		.u.ke = { .group = CURVE_25519, .data = ke, .len = sizeof(ke) } }), 0);
	ike_enc_data(&e, IKE_PL_NONCE, nonce, sizeof(nonce));
	ike_enc_notify(&e, 0, NULL, 0, NAT_DETECTION_SOURCE_IP, nat_s, sizeof(nat_s));
	ike_enc_notify(&e, 0, NULL, 0, NAT_DETECTION_DESTINATION_IP, nat_d, sizeof(nat_d));
	ike_enc_notify(&e, 0, NULL, 0, IKEV2_FRAGMENTATION_SUPPORTED, NULL, 0);
	ike_enc_notify(&e, 0, NULL, 0, SIGNATURE_HASH_ALGORITHMS, hashes, sizeof(hashes));
	ike_enc_data(&e, IKE_PL_V, vid, sizeof(vid));
	ssize_t n = ike_msg_end(&e);
	assert_true(n > 0);
	return (size_t)n;
}

static void test_init_req_layout(void **state)
{
	(void)state;
	struct ike_rule_error rerr;
	assert_int_equal(ike_msg_parse(&msg, init_req_hex, sizeof(init_req_hex)), 0);
	assert_int_equal(msg.hdr.spi_i, 0x0102030405060708ull);
	assert_int_equal(msg.hdr.spi_r, 0);
	assert_int_equal(msg.hdr.exchange, IKE_SA_INIT);
	assert_int_equal(msg.hdr.flags, IKE_FLAG_I);
	assert_true(ike_hdr_is_initiator(&msg.hdr));
	assert_false(ike_hdr_is_response(&msg.hdr));
	assert_int_equal(msg.hdr.msg_id, 0);
	assert_int_equal(msg.hdr.length, 250);
	assert_false(msg.sk.present);
	assert_int_equal(msg.npl, 8);
	assert_int_equal(msg.nouter, 8);
	static const uint8_t types[] = { IKE_PL_SA, IKE_PL_KE, IKE_PL_NONCE, IKE_PL_N,
					 IKE_PL_N, IKE_PL_N, IKE_PL_N, IKE_PL_V };
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(msg.pl[i].type, types[i]);
		assert_false(msg.pl[i].inner);
	}
	const struct ike_proposal *p = &msg.pl[0].u.sa.props[0];
	assert_int_equal(msg.pl[0].u.sa.nprops, 1);
	assert_int_equal(p->nxf, 4);
	assert_int_equal(p->xf[0].key_len, 256);
	assert_int_equal(p->xf[3].id, ECP_256);
	assert_int_equal(msg.pl[1].u.ke.group, CURVE_25519);
	assert_ptr_equal(msg.pl[1].u.ke.data, init_req_hex + 28 + 48 + 8);
	assert_int_equal(msg.pl[2].u.nonce.len, 32);
	assert_int_equal(msg.pl[2].u.nonce.data[0], 0xc0);
	const struct ike_pl *n = ike_msg_find_notify(&msg, SIGNATURE_HASH_ALGORITHMS);
	assert_non_null(n);
	assert_int_equal(n->u.n.len, 6);
	assert_int_equal(n->u.n.data[5], 4);
	assert_non_null(ike_msg_find_notify(&msg, NAT_DETECTION_DESTINATION_IP));
	assert_null(ike_msg_find_notify(&msg, COOKIE));
	assert_int_equal(ike_msg_count(&msg, IKE_PL_N), 4);
	assert_int_equal(ike_rules_check(&msg, false, &rerr), 0);
	assert_int_equal(ike_rules_check(&msg, true, &rerr), 0);

	uint8_t buf[512];
	size_t len = encode_init_req(buf, sizeof(buf));
	assert_int_equal(len, sizeof(init_req_hex));
	assert_memory_equal(buf, init_req_hex, len);
}

/* Every truncation fails, whether the Length field is left alone or made to agree. */
static void test_init_req_truncations(void **state)
{
	(void)state;
	uint8_t b[sizeof(init_req_hex)];
	for (size_t n = 0; n < sizeof(init_req_hex); n++) {
		assert_int_equal(ike_msg_parse(&msg, init_req_hex, n), -EBADMSG);
		memcpy(b, init_req_hex, n);
		if (n >= IKE_HDR_LEN) {
			wr_put_be32(b + 24, (uint32_t)n);
			assert_int_equal(ike_msg_parse(&msg, b, n), -EBADMSG);
			assert_int_equal(msg.err.notify, INVALID_SYNTAX);
			assert_non_null(msg.err.why);
		}
	}
}

static void test_header(void **state)
{
	(void)state;
	uint8_t b[sizeof(init_req_hex)];
	struct ike_hdr h;
	struct ike_parse_error err;

	assert_int_equal(ike_hdr_decode(init_req_hex, 27, &h, &err), -EBADMSG);
	assert_int_equal(ike_hdr_decode(init_req_hex, 28, &h, &err), 0);

	/* 2.5: another major version is answered with INVALID_MAJOR_VERSION. */
	for (unsigned v = 0; v < 16; v++) {
		memcpy(b, init_req_hex, sizeof(b));
		b[17] = (uint8_t)(v << 4);
		int ret = ike_msg_parse(&msg, b, sizeof(b));
		if (v == 2) {
			assert_int_equal(ret, 0);
		} else {
			assert_int_equal(ret, -EBADMSG);
			assert_int_equal(msg.err.notify, INVALID_MAJOR_VERSION);
		}
	}
	/* The minor version and reserved flag bits are ignored. */
	memcpy(b, init_req_hex, sizeof(b));
	b[17] = 0x2f;
	b[19] = 0xc7 | IKE_FLAG_I;
	assert_int_equal(ike_msg_parse(&msg, b, sizeof(b)), 0);
	assert_true(ike_hdr_is_initiator(&msg.hdr));

	/* Length must be the message size exactly. */
	static const uint32_t lengths[] = { 0, 27, 28, 249, 251, 0xffff, 0xffffffff };
	for (size_t i = 0; i < ARRAY_SIZE(lengths); i++) {
		memcpy(b, init_req_hex, sizeof(b));
		wr_put_be32(b + 24, lengths[i]);
		assert_int_equal(ike_msg_parse(&msg, b, sizeof(b)), -EBADMSG);
	}

	/* A bare header with no payloads parses (rules refuse it later). */
	memcpy(b, init_req_hex, 28);
	b[16] = IKE_PL_NONE;
	wr_put_be32(b + 24, 28);
	assert_int_equal(ike_msg_parse(&msg, b, 28), 0);
	assert_int_equal(msg.npl, 0);
	struct ike_rule_error rerr;
	assert_int_equal(ike_rules_check(&msg, false, &rerr), -EBADMSG);
	assert_int_equal(rerr.why, IKE_RULE_TOO_FEW);
	assert_int_equal(rerr.payload, IKE_PL_SA);
}

struct len_case {
	const char *what;
	size_t at;      /* offset of the 16-bit length to overwrite */
	uint16_t len;
};

static void test_hostile_lengths(void **state)
{
	(void)state;
	enum { SA = 28, KE = 76, NONCE = 116, V = 230 };
	static const struct len_case cases[] = {
		{ "SA length 0", SA + 2, 0 },
		{ "SA length 3", SA + 2, 3 },
		{ "SA length 4: empty SA", SA + 2, 4 },
		{ "SA length one short", SA + 2, 47 },
		{ "SA length one long", SA + 2, 49 },
		{ "SA length 0xFFFF", SA + 2, 0xffff },
		{ "KE length 7: no group", KE + 2, 7 },
		{ "Nonce length past the end", NONCE + 2, 200 },
		{ "V length short: trailing bytes", V + 2, 19 },
		{ "V length past the end", V + 2, 21 },
		{ "V length 0xFFFF", V + 2, 0xffff },
		{ "proposal length 0xFFFF", SA + 6, 0xffff },
		{ "proposal length short", SA + 6, 36 },
		{ "transform length 0", SA + 14, 0 },
	};
	uint8_t b[sizeof(init_req_hex)];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memcpy(b, init_req_hex, sizeof(b));
		wr_put_be16(b + cases[i].at, cases[i].len);
		if (ike_msg_parse(&msg, b, sizeof(b)) != -EBADMSG)
			fail_msg("%s: parsed", cases[i].what);
		assert_int_equal(msg.err.notify, INVALID_SYNTAX);
	}

	/* The last payload says another follows, but the message ends. */
	memcpy(b, init_req_hex, sizeof(b));
	b[V] = IKE_PL_N;
	assert_int_equal(ike_msg_parse(&msg, b, sizeof(b)), -EBADMSG);

	/* Bytes after the last payload. */
	uint8_t longer[sizeof(init_req_hex) + 4] = { 0 };
	memcpy(longer, init_req_hex, sizeof(init_req_hex));
	wr_put_be32(longer + 24, sizeof(longer));
	assert_int_equal(ike_msg_parse(&msg, longer, sizeof(longer)), -EBADMSG);
	assert_string_equal(msg.err.why, "bytes after the last payload");
}

/* ---- message builder for the rule tables ----------------------------------- */

#define NT(x) (0x10000u | (x))  /* a Notify of type x */
#define OUT(x) (0x20000u | (x)) /* outside SK even in a sealed exchange */

/* A test-only null cipher: IV(8) || plain ^ 0x5a || pad length 0 || ICV(8). */
static size_t null_sealed_len(void *ctx, size_t plain_len)
{
	(void)ctx;
	return 8 + plain_len + 1 + 8;
}

static ssize_t null_seal(void *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *plain,
			 size_t plain_len, uint8_t *out, size_t out_cap)
{
	(void)ctx;
	if (out_cap != null_sealed_len(NULL, plain_len))
		return -EINVAL;
	memset(out, 0x49, 8);
	for (size_t i = 0; i < plain_len; i++)
		out[8 + i] = plain[i] ^ 0x5a;
	out[8 + plain_len] = 0;
	uint64_t icv = fnv1a(fnv1a(FNV1A_INIT, aad, aad_len), out, 8 + plain_len + 1);
	wr_put_be32(out + out_cap - 8, (uint32_t)(icv >> 32));
	wr_put_be32(out + out_cap - 4, (uint32_t)icv);
	return (ssize_t)out_cap;
}

static const struct ike_sealer null_sealer = { null_sealed_len, null_seal, NULL };

/* Check the ICV and undo the null cipher: the plaintext length, or -1. */
static ssize_t null_open(const struct ike_msg *m, uint8_t *plain, size_t cap)
{
	const struct ike_sk_info *sk = &m->sk;
	if (sk->sealed_len < 17 || sk->sealed_len - 17 > cap)
		return -1;
	size_t body = sk->sealed_len - 8;
	uint64_t icv = fnv1a(fnv1a(FNV1A_INIT, sk->aad, sk->aad_len), sk->sealed, body);
	uint8_t want[8];
	wr_put_be32(want, (uint32_t)(icv >> 32));
	wr_put_be32(want + 4, (uint32_t)icv);
	if (memcmp(want, sk->sealed + body, 8))
		return -1;
	size_t n = body - 8 - 1;
	for (size_t i = 0; i < n; i++)
		plain[i] = sk->sealed[8 + i] ^ 0x5a;
	return (ssize_t)n;
}

static const struct ike_transform esp_xf[] = {
	{ .type = IKE_XF_ENCR, .id = ENCR_AES_GCM_16, .has_key_len = true, .key_len = 256 },
	{ .type = IKE_XF_ESN, .id = ESN_NO },
};
static const struct ike_proposal esp_prop = {
	.num = 1, .proto = IKE_PROTO_ESP, .spi_size = 4, .spi = { 0xca, 0xfe, 0, 1 }, .nxf = 2, .xf = esp_xf,
};
static const struct ike_ts ts_any = {
	.type = TS_IPV4_ADDR_RANGE, .end_port = 0xffff, .end = { 255, 255, 255, 255 },
};
static const uint8_t filler[64] = { 0x42 };
static const struct ike_cp_attr cp_attr = { .type = INTERNAL_IP4_ADDRESS };
static const uint8_t esp_spi[4] = { 1, 2, 3, 4 };

static void append(struct ike_enc *e, uint32_t code)
{
	uint8_t type = code & 0x10000u ? IKE_PL_N : (uint8_t)code;
	struct ike_pl pl = { .type = type };
	switch (type) {
	case IKE_PL_SA: pl.u.sa = (struct ike_sa_pl){ 1, &esp_prop }; break;
	case IKE_PL_KE: pl.u.ke = (struct ike_ke_pl){ ECP_256, filler, 64 }; break;
	case IKE_PL_NONCE: pl.u.nonce = (struct ike_data_pl){ filler, 32 }; break;
	case IKE_PL_IDI:
	case IKE_PL_IDR: pl.u.id = (struct ike_id_pl){ ID_FQDN, (const uint8_t *)"a.example", 9 }; break;
	case IKE_PL_CERT:
	case IKE_PL_CERTREQ: pl.u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, filler, 20 }; break;
	case IKE_PL_AUTH: pl.u.auth = (struct ike_auth_pl){ AUTH_PSK, filler, 32 }; break;
	case IKE_PL_N: pl.u.n = (struct ike_notify_pl){ .type = (uint16_t)code }; break;
	case IKE_PL_D: pl.u.d = (struct ike_delete_pl){ IKE_PROTO_ESP, 4, 1, esp_spi }; break;
	case IKE_PL_V: pl.u.v = (struct ike_data_pl){ filler, 16 }; break;
	case IKE_PL_TSI:
	case IKE_PL_TSR: pl.u.ts = (struct ike_ts_pl){ 1, &ts_any }; break;
	case IKE_PL_CP: pl.u.cp = (struct ike_cp_pl){ CFG_REQUEST, 1, &cp_attr }; break;
	default: fail_msg("no builder for payload %u", type);
	}
	assert_int_equal(ike_pl_encode(e, &pl), 0);
}

enum { SEAL, CLEAR };

/* Build (exchange, request|response) with these payloads, parse it (opening SK
 * with the null cipher) and return the rules verdict. */
static int build_parse_check(uint8_t exchange, bool response, int mode, const uint32_t *codes,
			     struct ike_rule_error *rerr)
{
	static uint8_t buf[4096], inner_buf[4096], plain[4096];
	struct ike_hdr h = { .spi_i = 0x1111, .spi_r = 0x2222, .exchange = exchange, .msg_id = 1,
			     .flags = response ? IKE_FLAG_R : IKE_FLAG_I };
	bool sealed = mode == SEAL && exchange != IKE_SA_INIT;
	struct ike_enc e, in;
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	ike_enc_init(&in, inner_buf, sizeof(inner_buf));
	for (const uint32_t *c = codes; *c; c++)
		append(sealed && !(*c & 0x20000u) ? &in : &e, *c & 0x1ffffu);
	ssize_t len = sealed ? ike_msg_end_sealed(&e, &in, &null_sealer) : ike_msg_end(&e);
	assert_true(len > 0);

	assert_int_equal(ike_msg_parse(&msg, buf, (size_t)len), 0);
	assert_int_equal(msg.sk.present, sealed);
	if (sealed) {
		/* Before decryption only the outer part is judged. */
		int outer = ike_rules_check(&msg, false, rerr);
		ssize_t n = null_open(&msg, plain, sizeof(plain));
		assert_int_equal(n, in.w.off);
		assert_memory_equal(plain, inner_buf, (size_t)n);
		assert_int_equal(ike_msg_parse_inner(&msg, msg.sk.inner_first, plain, (size_t)n), 0);
		if (outer)
			return outer;
	}
	return ike_rules_check(&msg, true, rerr);
}

struct rule_case {
	const char *what;
	uint8_t exchange;
	bool response;
	int mode;
	uint32_t codes[12];
	enum ike_rule_why why;
	uint8_t payload;
};

#define REQ false
#define RSP true
#define PASS IKE_RULE_OK, IKE_PL_NONE

static const struct rule_case rule_cases[] = {
	/* IKE_SA_INIT { SA KE Ni [N] [V] } --> */
	{ "init request", IKE_SA_INIT, REQ, CLEAR,
	  { IKE_PL_SA, IKE_PL_KE, IKE_PL_NONCE, NT(NAT_DETECTION_SOURCE_IP), NT(NAT_DETECTION_DESTINATION_IP), IKE_PL_V }, PASS },
	{ "init request with cookie first", IKE_SA_INIT, REQ, CLEAR,
	  { NT(COOKIE), IKE_PL_SA, IKE_PL_KE, IKE_PL_NONCE }, PASS },
	{ "init request with cookie second", IKE_SA_INIT, REQ, CLEAR,
	  { IKE_PL_SA, NT(COOKIE), IKE_PL_KE, IKE_PL_NONCE }, IKE_RULE_ORDER, IKE_PL_N },
	{ "init request without KE", IKE_SA_INIT, REQ, CLEAR,
	  { IKE_PL_SA, IKE_PL_NONCE }, IKE_RULE_TOO_FEW, IKE_PL_KE },
	{ "init request with two SA", IKE_SA_INIT, REQ, CLEAR,
	  { IKE_PL_SA, IKE_PL_SA, IKE_PL_KE, IKE_PL_NONCE }, IKE_RULE_TOO_MANY, IKE_PL_SA },
	{ "init request with two nonces", IKE_SA_INIT, REQ, CLEAR,
	  { IKE_PL_SA, IKE_PL_KE, IKE_PL_NONCE, IKE_PL_NONCE }, IKE_RULE_TOO_MANY, IKE_PL_NONCE },
	{ "init request with IDi", IKE_SA_INIT, REQ, CLEAR,
	  { IKE_PL_SA, IKE_PL_KE, IKE_PL_NONCE, IKE_PL_IDI }, IKE_RULE_NOT_ALLOWED, IKE_PL_IDI },
	{ "init request with CERTREQ", IKE_SA_INIT, REQ, CLEAR,
	  { IKE_PL_SA, IKE_PL_KE, IKE_PL_NONCE, IKE_PL_CERTREQ }, IKE_RULE_NOT_ALLOWED, IKE_PL_CERTREQ },
	{ "init request with only N", IKE_SA_INIT, REQ, CLEAR,
	  { NT(COOKIE) }, IKE_RULE_TOO_FEW, IKE_PL_SA },
	/* <-- IKE_SA_INIT { SA KE Nr [CERTREQ] [N] } */
	{ "init response", IKE_SA_INIT, RSP, CLEAR,
	  { IKE_PL_SA, IKE_PL_KE, IKE_PL_NONCE, IKE_PL_CERTREQ, NT(NAT_DETECTION_SOURCE_IP), IKE_PL_V }, PASS },
	{ "init response NO_PROPOSAL_CHOSEN", IKE_SA_INIT, RSP, CLEAR, { NT(NO_PROPOSAL_CHOSEN) }, PASS },
	{ "init response COOKIE", IKE_SA_INIT, RSP, CLEAR, { NT(COOKIE) }, PASS },
	{ "init response INVALID_KE_PAYLOAD", IKE_SA_INIT, RSP, CLEAR, { IKE_PL_V, NT(INVALID_KE_PAYLOAD) }, PASS },
	{ "init response only V", IKE_SA_INIT, RSP, CLEAR, { IKE_PL_V }, IKE_RULE_TOO_FEW, IKE_PL_SA },
	{ "init response without nonce", IKE_SA_INIT, RSP, CLEAR,
	  { IKE_PL_SA, IKE_PL_KE, NT(NAT_DETECTION_SOURCE_IP) }, IKE_RULE_TOO_FEW, IKE_PL_NONCE },
	{ "init response with D", IKE_SA_INIT, RSP, CLEAR,
	  { IKE_PL_SA, IKE_PL_KE, IKE_PL_NONCE, IKE_PL_D }, IKE_RULE_NOT_ALLOWED, IKE_PL_D },
	/* IKE_AUTH { IDi [CERT] [CERTREQ] [IDr] AUTH [CP] SA TSi TSr } --> */
	{ "auth request", IKE_AUTH, REQ, SEAL,
	  { IKE_PL_IDI, IKE_PL_AUTH, IKE_PL_SA, IKE_PL_TSI, IKE_PL_TSR, NT(INITIAL_CONTACT) }, PASS },
	{ "auth request, everything", IKE_AUTH, REQ, SEAL,
	  { IKE_PL_IDI, IKE_PL_CERT, IKE_PL_CERTREQ, IKE_PL_IDR, IKE_PL_AUTH, IKE_PL_CP, IKE_PL_SA,
	    IKE_PL_TSI, IKE_PL_TSR, IKE_PL_V }, PASS },
	{ "auth request, childless", IKE_AUTH, REQ, SEAL, { IKE_PL_IDI, IKE_PL_AUTH }, PASS },
	{ "auth request without IDi", IKE_AUTH, REQ, SEAL,
	  { IKE_PL_AUTH, IKE_PL_SA, IKE_PL_TSI, IKE_PL_TSR }, IKE_RULE_TOO_FEW, IKE_PL_IDI },
	{ "auth request without AUTH", IKE_AUTH, REQ, SEAL,
	  { IKE_PL_IDI, IKE_PL_SA, IKE_PL_TSI, IKE_PL_TSR }, IKE_RULE_TOO_FEW, IKE_PL_AUTH },
	{ "auth request TSi without TSr", IKE_AUTH, REQ, SEAL,
	  { IKE_PL_IDI, IKE_PL_AUTH, IKE_PL_SA, IKE_PL_TSI }, IKE_RULE_NOT_TOGETHER, IKE_PL_TSR },
	{ "auth request TS without SA", IKE_AUTH, REQ, SEAL,
	  { IKE_PL_IDI, IKE_PL_AUTH, IKE_PL_TSI, IKE_PL_TSR }, IKE_RULE_NOT_TOGETHER, IKE_PL_SA },
	{ "auth request with two IDi", IKE_AUTH, REQ, SEAL,
	  { IKE_PL_IDI, IKE_PL_IDI, IKE_PL_AUTH }, IKE_RULE_TOO_MANY, IKE_PL_IDI },
	{ "auth request with KE", IKE_AUTH, REQ, SEAL,
	  { IKE_PL_IDI, IKE_PL_AUTH, IKE_PL_KE }, IKE_RULE_NOT_ALLOWED, IKE_PL_KE },
	{ "auth request in clear", IKE_AUTH, REQ, CLEAR,
	  { IKE_PL_IDI, IKE_PL_AUTH }, IKE_RULE_MUST_BE_ENCRYPTED, IKE_PL_IDI },
	{ "auth request, N outside SK", IKE_AUTH, REQ, SEAL,
	  { OUT(NT(INITIAL_CONTACT)), IKE_PL_IDI, IKE_PL_AUTH }, IKE_RULE_MUST_BE_ENCRYPTED, IKE_PL_N },
	/* <-- IKE_AUTH { IDr [CERT] AUTH [CP] SA TSi TSr } */
	{ "auth response", IKE_AUTH, RSP, SEAL,
	  { IKE_PL_IDR, IKE_PL_CERT, IKE_PL_AUTH, IKE_PL_SA, IKE_PL_TSI, IKE_PL_TSR }, PASS },
	{ "auth response AUTHENTICATION_FAILED", IKE_AUTH, RSP, SEAL, { NT(AUTHENTICATION_FAILED) }, PASS },
	{ "auth response, child failed", IKE_AUTH, RSP, SEAL,
	  { IKE_PL_IDR, IKE_PL_AUTH, NT(TS_UNACCEPTABLE) }, PASS },
	{ "auth response without AUTH", IKE_AUTH, RSP, SEAL,
	  { IKE_PL_IDR, IKE_PL_SA, IKE_PL_TSI, IKE_PL_TSR }, IKE_RULE_TOO_FEW, IKE_PL_AUTH },
	{ "auth response with IDi", IKE_AUTH, RSP, SEAL,
	  { IKE_PL_IDI, IKE_PL_AUTH }, IKE_RULE_NOT_ALLOWED, IKE_PL_IDI },
	{ "auth response empty", IKE_AUTH, RSP, SEAL, { 0 }, IKE_RULE_TOO_FEW, IKE_PL_IDR },
	/* CREATE_CHILD_SA { [N(REKEY_SA)] SA Ni [KEi] [TSi TSr] } --> */
	{ "child request", CREATE_CHILD_SA, REQ, SEAL,
	  { NT(REKEY_SA), IKE_PL_SA, IKE_PL_NONCE, IKE_PL_KE, IKE_PL_TSI, IKE_PL_TSR }, PASS },
	{ "IKE SA rekey request", CREATE_CHILD_SA, REQ, SEAL, { IKE_PL_SA, IKE_PL_NONCE, IKE_PL_KE }, PASS },
	{ "child request without nonce", CREATE_CHILD_SA, REQ, SEAL,
	  { IKE_PL_SA, IKE_PL_TSI, IKE_PL_TSR }, IKE_RULE_TOO_FEW, IKE_PL_NONCE },
	{ "child request TSi only", CREATE_CHILD_SA, REQ, SEAL,
	  { IKE_PL_SA, IKE_PL_NONCE, IKE_PL_TSI }, IKE_RULE_NOT_TOGETHER, IKE_PL_TSR },
	{ "child request with two KE", CREATE_CHILD_SA, REQ, SEAL,
	  { IKE_PL_SA, IKE_PL_NONCE, IKE_PL_KE, IKE_PL_KE }, IKE_RULE_TOO_MANY, IKE_PL_KE },
	{ "child request notify only", CREATE_CHILD_SA, REQ, SEAL,
	  { NT(REKEY_SA) }, IKE_RULE_TOO_FEW, IKE_PL_SA },
	{ "child response", CREATE_CHILD_SA, RSP, SEAL,
	  { IKE_PL_SA, IKE_PL_NONCE, IKE_PL_TSI, IKE_PL_TSR }, PASS },
	{ "child response NO_ADDITIONAL_SAS", CREATE_CHILD_SA, RSP, SEAL, { NT(NO_ADDITIONAL_SAS) }, PASS },
	{ "child response TEMPORARY_FAILURE", CREATE_CHILD_SA, RSP, SEAL, { NT(TEMPORARY_FAILURE) }, PASS },
	/* INFORMATIONAL { [N] [D] [CP] } --> */
	{ "liveness check", INFORMATIONAL, REQ, SEAL, { 0 }, PASS },
	{ "liveness answer", INFORMATIONAL, RSP, SEAL, { 0 }, PASS },
	{ "delete", INFORMATIONAL, REQ, SEAL, { IKE_PL_D, IKE_PL_D, NT(INVALID_SPI) }, PASS },
	{ "info with SA", INFORMATIONAL, REQ, SEAL, { IKE_PL_SA }, IKE_RULE_NOT_ALLOWED, IKE_PL_SA },
	{ "info with two CP", INFORMATIONAL, RSP, SEAL,
	  { IKE_PL_CP, IKE_PL_CP }, IKE_RULE_TOO_MANY, IKE_PL_CP },
	{ "info in clear", INFORMATIONAL, REQ, CLEAR, { IKE_PL_D }, IKE_RULE_MUST_BE_ENCRYPTED, IKE_PL_D },
	{ "info in clear, empty", INFORMATIONAL, REQ, CLEAR, { 0 }, IKE_RULE_TOO_FEW, IKE_PL_SK },
	/* Not IKEv2 exchanges. */
	{ "exchange 33", 33, REQ, CLEAR, { IKE_PL_SA }, IKE_RULE_UNKNOWN_EXCHANGE, IKE_PL_NONE },
	{ "exchange 38", 38, RSP, CLEAR, { 0 }, IKE_RULE_UNKNOWN_EXCHANGE, IKE_PL_NONE },
};

static void test_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(rule_cases); i++) {
		const struct rule_case *c = &rule_cases[i];
		struct ike_rule_error rerr;
		int ret = build_parse_check(c->exchange, c->response, c->mode, c->codes, &rerr);
		int want = c->why == IKE_RULE_OK ? 0 : -EBADMSG;
		if (ret != want || rerr.why != c->why || (want && rerr.payload != c->payload))
			fail_msg("%s: got %d %s (%s), want %s (%s)", c->what, ret,
				 ike_rule_why_name(rerr.why), ike_payload_name(rerr.payload),
				 ike_rule_why_name(c->why), ike_payload_name(c->payload));
		assert_int_equal(rerr.exchange, c->exchange);
		assert_int_equal(rerr.response, c->response);
	}
}

/* ---- SK --------------------------------------------------------------------- */

static size_t build_auth_req(uint8_t *buf, size_t cap)
{
	static const uint32_t codes[] = { IKE_PL_IDI, IKE_PL_AUTH, IKE_PL_SA, IKE_PL_TSI, IKE_PL_TSR,
					  NT(INITIAL_CONTACT), 0 };
	uint8_t inner_buf[1024];
	struct ike_hdr h = { .spi_i = 0x1111, .spi_r = 0x2222, .exchange = IKE_AUTH, .msg_id = 1,
			     .flags = IKE_FLAG_I };
	struct ike_enc e, in;
	ike_msg_begin(&e, buf, cap, &h);
	ike_enc_init(&in, inner_buf, sizeof(inner_buf));
	for (const uint32_t *c = codes; *c; c++)
		append(&in, *c);
	ssize_t n = ike_msg_end_sealed(&e, &in, &null_sealer);
	assert_true(n > 0);
	return (size_t)n;
}

static void test_sk_split(void **state)
{
	(void)state;
	uint8_t buf[1024], plain[1024];
	size_t len = build_auth_req(buf, sizeof(buf));
	struct ike_rule_error rerr;

	/* The encoder's layout: header, then SK's generic header naming IDi. */
	assert_int_equal(buf[16], IKE_PL_SK);
	assert_int_equal(buf[28], IKE_PL_IDI);
	assert_int_equal(buf[29], 0);
	assert_int_equal(buf[30] << 8 | buf[31], len - 28);

	assert_int_equal(ike_msg_parse(&msg, buf, len), 0);
	assert_true(msg.sk.present);
	assert_false(msg.sk.fragment);
	assert_int_equal(msg.sk.inner_first, IKE_PL_IDI);
	assert_ptr_equal(msg.sk.aad, buf);
	assert_int_equal(msg.sk.at, 28);
	assert_int_equal(msg.sk.aad_len, 32);
	assert_ptr_equal(msg.sk.sealed, buf + 32);
	assert_int_equal(msg.sk.sealed_len, len - 32);
	assert_int_equal(msg.npl, 1);
	assert_int_equal(msg.nouter, 1);
	assert_int_equal(ike_rules_check(&msg, false, &rerr), 0);
	/* Inner payloads are required once the inner chain is in. */
	assert_int_equal(ike_rules_check(&msg, true, &rerr), -EBADMSG);
	assert_int_equal(rerr.why, IKE_RULE_TOO_FEW);

	/* Inner parse before decryption is refused... */
	assert_int_equal(ike_msg_parse_inner(&msg, msg.sk.inner_first, msg.sk.sealed, msg.sk.sealed_len),
			 -EBADMSG);
	assert_int_equal(msg.npl, 1);
	assert_int_equal(msg.arena.nprops, 0);

	ssize_t n = null_open(&msg, plain, sizeof(plain));
	assert_true(n > 0);
	assert_int_equal(ike_msg_parse_inner(&msg, msg.sk.inner_first, plain, (size_t)n), 0);
	assert_int_equal(msg.npl, 7);
	assert_int_equal(msg.nouter, 1);
	for (unsigned i = 1; i < msg.npl; i++)
		assert_true(msg.pl[i].inner);
	const struct ike_pl *id = ike_msg_find(&msg, IKE_PL_IDI, NULL);
	assert_non_null(id);
	assert_int_equal(id->u.id.id_type, ID_FQDN);
	assert_ptr_equal(id->body, plain + 4);
	assert_int_equal(ike_msg_find(&msg, IKE_PL_SA, NULL)->u.sa.props[0].spi[0], 0xca);
	assert_int_equal(ike_rules_check(&msg, true, &rerr), 0);
	/* ...and so is a second one. */
	assert_int_equal(ike_msg_parse_inner(&msg, IKE_PL_IDI, plain, (size_t)n), -EINVAL);

	/* Tampering with the header breaks the ICV: the AAD covers it. */
	buf[20] ^= 1;
	assert_int_equal(ike_msg_parse(&msg, buf, len), 0);
	assert_int_equal(null_open(&msg, plain, sizeof(plain)), -1);
	buf[20] ^= 1;

	/* Every truncation of the inner chain fails and leaves the outer part. */
	assert_int_equal(ike_msg_parse(&msg, buf, len), 0);
	n = null_open(&msg, plain, sizeof(plain));
	for (size_t k = 1; k < (size_t)n; k++) {
		assert_int_equal(ike_msg_parse_inner(&msg, IKE_PL_IDI, plain, k), -EBADMSG);
		assert_int_equal(msg.npl, 1);
	}
	/* An empty inner chain is fine structurally. */
	assert_int_equal(ike_msg_parse_inner(&msg, IKE_PL_NONE, plain, 0), 0);
	/* Inner parse without SK is a caller error. */
	assert_int_equal(ike_msg_parse(&msg, init_req_hex, sizeof(init_req_hex)), 0);
	assert_int_equal(ike_msg_parse_inner(&msg, IKE_PL_IDI, plain, (size_t)n), -EINVAL);
}

static void test_sk_placement(void **state)
{
	(void)state;
	uint8_t buf[256];
	struct ike_hdr h = { .exchange = INFORMATIONAL, .flags = IKE_FLAG_I, .msg_id = 2 };
	struct ike_enc e;

	/* SK followed by another payload: 3.14 says SK is last. */
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	size_t at = ike_pl_open(&e, IKE_PL_SK, false);
	wr_bytes(&e.w, filler, 24);
	ike_pl_close(&e, at);
	ike_enc_data(&e, IKE_PL_V, filler, 8);
	ssize_t len = ike_msg_end(&e);
	assert_true(len > 0);
	assert_int_equal(ike_msg_parse(&msg, buf, (size_t)len), -EBADMSG);
	assert_int_equal(msg.err.payload, IKE_PL_SK);

	/* V then SK is structurally fine; the rules refuse V outside SK. */
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	ike_enc_data(&e, IKE_PL_V, filler, 8);
	at = ike_pl_open(&e, IKE_PL_SK, false);
	wr_bytes(&e.w, filler, 24);
	ike_pl_close(&e, at);
	len = ike_msg_end(&e);
	assert_int_equal(ike_msg_parse(&msg, buf, (size_t)len), 0);
	assert_true(msg.sk.present);
	assert_int_equal(msg.sk.at, 28 + 12);
	assert_int_equal(msg.sk.aad_len, 28 + 12 + 4);
	assert_int_equal(msg.sk.sealed_len, 24);
	struct ike_rule_error rerr;
	assert_int_equal(ike_rules_check(&msg, false, &rerr), -EBADMSG);
	assert_int_equal(rerr.why, IKE_RULE_MUST_BE_ENCRYPTED);
	assert_int_equal(rerr.payload, IKE_PL_V);

	/* SK inside SK. */
	uint8_t inner[64];
	struct ike_enc in;
	ike_enc_init(&in, inner, sizeof(inner));
	at = ike_pl_open(&in, IKE_PL_SK, false);
	wr_bytes(&in.w, filler, 8);
	ike_pl_close(&in, at);
	assert_int_equal(ike_msg_parse_inner(&msg, in.first, inner, in.w.off), -EBADMSG);
	assert_string_equal(msg.err.why, "SK inside SK");

	/* SKF: the AAD also covers the fragment numbers (RFC 7383 2.5). */
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	at = ike_pl_open(&e, IKE_PL_SKF, false);
	e.w.p[at] = IKE_PL_D;
	wr_be16(&e.w, 1);
	wr_be16(&e.w, 2);
	wr_bytes(&e.w, filler, 20);
	ike_pl_close(&e, at);
	len = ike_msg_end(&e);
	assert_int_equal(ike_msg_parse(&msg, buf, (size_t)len), 0);
	assert_true(msg.sk.fragment);
	assert_int_equal(msg.sk.frag_num, 1);
	assert_int_equal(msg.sk.frag_total, 2);
	assert_int_equal(msg.sk.inner_first, IKE_PL_D);
	assert_int_equal(msg.sk.aad_len, 36);
	assert_int_equal(msg.sk.sealed_len, 20);
}

/* A sealer that fails, or lies about its size, fails the message. */
static ssize_t bad_seal(void *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *plain,
			size_t plain_len, uint8_t *out, size_t out_cap)
{
	(void)aad, (void)aad_len, (void)plain, (void)plain_len, (void)out;
	return ctx ? (ssize_t)out_cap - 1 : -EIO;
}

static void test_seal_errors(void **state)
{
	(void)state;
	uint8_t buf[256], inner[64];
	struct ike_hdr h = { .exchange = INFORMATIONAL, .flags = IKE_FLAG_I };
	struct ike_enc e, in;

	struct ike_sealer s = { null_sealed_len, bad_seal, NULL };
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	ike_enc_init(&in, inner, sizeof(inner));
	assert_int_equal(ike_msg_end_sealed(&e, &in, &s), -EIO);
	s.ctx = &s;
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	assert_int_equal(ike_msg_end_sealed(&e, &in, &s), -EINVAL);

	/* No room for the sealed bytes. */
	ike_msg_begin(&e, buf, 40, &h);
	ike_enc_data(&in, IKE_PL_V, filler, 20);
	assert_int_equal(ike_msg_end_sealed(&e, &in, &null_sealer), -ENOSPC);
	/* The inner chain overflowed. */
	ike_enc_init(&in, inner, 8);
	ike_enc_data(&in, IKE_PL_V, filler, 20);
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	assert_int_equal(ike_msg_end_sealed(&e, &in, &null_sealer), -EINVAL);
	/* Plain message too big for its buffer. */
	ike_msg_begin(&e, buf, 30, &h);
	ike_enc_data(&e, IKE_PL_V, filler, 20);
	assert_int_equal(ike_msg_end(&e), -ENOSPC);
}

/* ---- unknown and critical payloads, limits ---------------------------------- */

static size_t build_with_unknown(uint8_t *buf, size_t cap, uint8_t type, bool critical)
{
	uint8_t b[sizeof(init_req_hex)];
	struct ike_enc e;
	struct ike_hdr h = { .spi_i = 1, .exchange = IKE_SA_INIT, .flags = IKE_FLAG_I };
	memcpy(b, init_req_hex, sizeof(b));
	assert_int_equal(ike_msg_parse(&msg, b, sizeof(b)), 0);
	ike_msg_begin(&e, buf, cap, &h);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(ike_pl_encode(&e, &msg.pl[i]), 0);
	size_t at = ike_pl_open(&e, type, critical);
	wr_bytes(&e.w, filler, 10);
	ike_pl_close(&e, at);
	ike_enc_data(&e, IKE_PL_V, filler, 16);
	ssize_t n = ike_msg_end(&e);
	assert_true(n > 0);
	return (size_t)n;
}

static void test_unknown_payloads(void **state)
{
	(void)state;
	uint8_t buf[512];
	struct ike_rule_error rerr;

	size_t len = build_with_unknown(buf, sizeof(buf), 200, false);
	assert_int_equal(ike_msg_parse(&msg, buf, len), 0);
	assert_int_equal(msg.npl, 4);
	assert_int_equal(msg.nskipped, 1);
	assert_int_equal(msg.pl[3].type, IKE_PL_V);
	assert_int_equal(ike_rules_check(&msg, false, &rerr), 0);

	/* 3.2: a critical payload we do not know is answered with its type. */
	len = build_with_unknown(buf, sizeof(buf), 200, true);
	assert_int_equal(ike_msg_parse(&msg, buf, len), -EBADMSG);
	assert_int_equal(msg.err.notify, UNSUPPORTED_CRITICAL_PAYLOAD);
	assert_int_equal(msg.err.payload, 200);
	len = build_with_unknown(buf, sizeof(buf), IKE_PL_EAP, true);
	assert_int_equal(ike_msg_parse(&msg, buf, len), -EBADMSG);
	assert_int_equal(msg.err.notify, UNSUPPORTED_CRITICAL_PAYLOAD);
	assert_int_equal(msg.err.payload, IKE_PL_EAP);

	/* The critical bit on a payload we know changes nothing. */
	len = build_with_unknown(buf, sizeof(buf), IKE_PL_V, true);
	assert_int_equal(ike_msg_parse(&msg, buf, len), 0);
	assert_true(msg.pl[3].critical);
	assert_int_equal(ike_rules_check(&msg, false, &rerr), 0);

	/* Known payload type 0 in the middle ends the chain early: trailing bytes. */
	uint8_t b[sizeof(init_req_hex)];
	memcpy(b, init_req_hex, sizeof(b));
	b[28] = IKE_PL_NONE;
	assert_int_equal(ike_msg_parse(&msg, b, sizeof(b)), -EBADMSG);
}

static void test_too_many_payloads(void **state)
{
	(void)state;
	static uint8_t buf[2048];
	struct ike_hdr h = { .exchange = INFORMATIONAL, .flags = IKE_FLAG_I };
	struct ike_enc e;

	for (unsigned count = IKE_MSG_MAX_PAYLOADS; count <= IKE_MSG_MAX_PAYLOADS + 1; count++) {
		ike_msg_begin(&e, buf, sizeof(buf), &h);
		for (unsigned i = 0; i < count; i++)
			ike_enc_data(&e, IKE_PL_V, filler, 4);
		ssize_t len = ike_msg_end(&e);
		assert_true(len > 0);
		int want = count <= IKE_MSG_MAX_PAYLOADS ? 0 : -EBADMSG;
		assert_int_equal(ike_msg_parse(&msg, buf, (size_t)len), want);
	}
	assert_string_equal(msg.err.why, "more payloads than we accept");

	/* Hundreds of skipped unknown payloads cost time bounded by the length. */
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	for (unsigned i = 0; i < 300; i++) {
		size_t at = ike_pl_open(&e, 250, false);
		ike_pl_close(&e, at);
	}
	ssize_t len = ike_msg_end(&e);
	assert_int_equal(ike_msg_parse(&msg, buf, (size_t)len), 0);
	assert_int_equal(msg.npl, 0);
	assert_int_equal(msg.nskipped, UINT8_MAX);
}

/* A response built by the responder half parses back to the same values. */
static void test_init_response_round_trip(void **state)
{
	(void)state;
	static const struct ike_transform xf[] = {
		{ .type = IKE_XF_ENCR, .id = ENCR_AES_GCM_16, .has_key_len = true, .key_len = 256 },
		{ .type = IKE_XF_PRF, .id = PRF_HMAC_SHA2_512 },
		{ .type = IKE_XF_DH, .id = CURVE_25519 },
	};
	static const struct ike_proposal prop = { .num = 1, .proto = IKE_PROTO_IKE, .nxf = 3, .xf = xf };
	uint8_t buf[512];
	struct ike_hdr h = { .spi_i = 0x0102030405060708ull, .spi_r = 0xf1f2f3f4f5f6f7f8ull,
			     .exchange = IKE_SA_INIT, .flags = IKE_FLAG_R };
	struct ike_enc e;
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	assert_int_equal(ike_pl_encode(&e, &(struct ike_pl){ .type = IKE_PL_SA, .u.sa = { 1, &prop } }), 0);
	assert_int_equal(ike_pl_encode(&e, &(struct ike_pl){ .type = IKE_PL_KE,
		.u.ke = { CURVE_25519, filler, 32 } }), 0);
	ike_enc_data(&e, IKE_PL_NONCE, filler, 32);
	assert_int_equal(ike_pl_encode(&e, &(struct ike_pl){ .type = IKE_PL_CERTREQ,
		.u.cert = { CERT_X509_SIGNATURE, filler, 20 } }), 0);
	ike_enc_notify(&e, 0, NULL, 0, NAT_DETECTION_SOURCE_IP, filler, 20);
	ssize_t len = ike_msg_end(&e);
	assert_int_equal(len, 28 + 40 + 40 + 36 + 25 + 28);

	/* Header bytes as RFC 7296 3.1 lays them out. */
	static const uint8_t hdr[] = { 1, 2, 3, 4, 5, 6, 7, 8, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
				       0xf8, 0x21, 0x20, 0x22, 0x20, 0, 0, 0, 0, 0, 0, 0, 197 };
	assert_memory_equal(buf, hdr, sizeof(hdr));

	struct ike_rule_error rerr;
	assert_int_equal(ike_msg_parse(&msg, buf, (size_t)len), 0);
	assert_int_equal(msg.hdr.spi_r, 0xf1f2f3f4f5f6f7f8ull);
	assert_true(ike_hdr_is_response(&msg.hdr));
	assert_int_equal(msg.npl, 5);
	assert_int_equal(msg.pl[0].u.sa.props[0].nxf, 3);
	assert_int_equal(msg.pl[3].u.cert.encoding, CERT_X509_SIGNATURE);
	assert_int_equal(ike_rules_check(&msg, false, &rerr), 0);

	for (size_t n = 0; n < (size_t)len; n++) {
		uint8_t b[512];
		memcpy(b, buf, n);
		if (n >= 28)
			wr_put_be32(b + 24, (uint32_t)n);
		assert_int_equal(ike_msg_parse(&msg, b, n), -EBADMSG);
	}
}

/* ---- meaning ------------------------------------------------------------------ */

static const struct ike_transform m_xf[] = {
	{ .type = IKE_XF_ENCR, .id = ENCR_AES_GCM_16, .has_key_len = true, .key_len = 256 },
	{ .type = IKE_XF_PRF, .id = PRF_HMAC_SHA2_256 },
	{ .type = IKE_XF_DH, .id = ECP_256 },
};

/* Encode these payloads in clear into a message and run the meaning check. */
static int meaning_of(uint8_t exchange, bool response, const struct ike_pl *pls, size_t n,
		      struct ike_rule_error *rerr)
{
	static uint8_t buf[2048];
	struct ike_hdr h = { .exchange = exchange, .flags = response ? IKE_FLAG_R : IKE_FLAG_I };
	struct ike_enc e;
	ike_msg_begin(&e, buf, sizeof(buf), &h);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ike_pl_encode(&e, &pls[i]), 0);
	ssize_t len = ike_msg_end(&e);
	assert_true(len > 0);
	assert_int_equal(ike_msg_parse(&msg, buf, (size_t)len), 0);
	int ret = ike_msg_check_meaning(&msg, true, rerr);
	if (ret) {
		assert_int_equal(rerr->why, IKE_RULE_MEANING);
		assert_non_null(rerr->detail);
	}
	return ret;
}

static void test_meaning(void **state)
{
	(void)state;
	static uint8_t big[300];
	struct ike_rule_error rerr;
	struct ike_proposal props[2] = {
		{ .num = 1, .proto = IKE_PROTO_IKE, .nxf = 3, .xf = m_xf },
		{ .num = 2, .proto = IKE_PROTO_IKE, .nxf = 3, .xf = m_xf },
	};
	struct ike_pl pls[3] = {
		{ .type = IKE_PL_SA, .u.sa = { 2, props } },
		{ .type = IKE_PL_KE, .u.ke = { ECP_256, big, 64 } },
		{ .type = IKE_PL_NONCE, .u.nonce = { big, 32 } },
	};

	/* The hand-written request means what it says. */
	assert_int_equal(ike_msg_parse(&msg, init_req_hex, sizeof(init_req_hex)), 0);
	assert_int_equal(ike_msg_check_meaning(&msg, false, &rerr), 0);

	/* 3.9: nonces of 16..256 bytes. */
	static const struct { size_t len; int want; } nonces[] = {
		{ 0, -EBADMSG }, { 15, -EBADMSG }, { 16, 0 }, { 256, 0 }, { 257, -EBADMSG }, { 300, -EBADMSG },
	};
	for (size_t i = 0; i < ARRAY_SIZE(nonces); i++) {
		pls[2].u.nonce.len = nonces[i].len;
		assert_int_equal(meaning_of(IKE_SA_INIT, REQ, pls, 3, &rerr), nonces[i].want);
		if (nonces[i].want)
			assert_int_equal(rerr.payload, IKE_PL_NONCE);
	}
	pls[2].u.nonce.len = 32;

	/* KE without data. */
	pls[1].u.ke.len = 0;
	assert_int_equal(meaning_of(IKE_SA_INIT, REQ, pls, 3, &rerr), -EBADMSG);
	assert_int_equal(rerr.payload, IKE_PL_KE);
	pls[1].u.ke.len = 64;

	/* 3.3.1 / 2.7: a request numbers from 1; a response picks one proposal. */
	assert_int_equal(meaning_of(IKE_SA_INIT, REQ, pls, 3, &rerr), 0);
	assert_int_equal(meaning_of(IKE_SA_INIT, RSP, pls, 3, &rerr), -EBADMSG);
	assert_int_equal(rerr.payload, IKE_PL_SA);
	pls[0].u.sa = (struct ike_sa_pl){ 1, &props[1] };
	assert_int_equal(meaning_of(IKE_SA_INIT, RSP, pls, 3, &rerr), 0);
	assert_int_equal(meaning_of(IKE_SA_INIT, REQ, pls, 3, &rerr), -EBADMSG);
	/* A response offering two D-H groups has not chosen. */
	static const struct ike_transform two_dh[] = {
		{ .type = IKE_XF_ENCR, .id = ENCR_AES_GCM_16, .has_key_len = true, .key_len = 256 },
		{ .type = IKE_XF_PRF, .id = PRF_HMAC_SHA2_256 },
		{ .type = IKE_XF_DH, .id = ECP_256 },
		{ .type = IKE_XF_DH, .id = CURVE_25519 },
	};
	struct ike_proposal chosen = { .num = 1, .proto = IKE_PROTO_IKE, .nxf = 4, .xf = two_dh };
	pls[0].u.sa = (struct ike_sa_pl){ 1, &chosen };
	assert_int_equal(meaning_of(IKE_SA_INIT, RSP, pls, 3, &rerr), -EBADMSG);
	assert_int_equal(meaning_of(IKE_SA_INIT, REQ, pls, 3, &rerr), 0);
	/* Protocols per exchange. */
	chosen.spi_size = 8;
	assert_int_equal(meaning_of(IKE_SA_INIT, REQ, pls, 3, &rerr), -EBADMSG);
	assert_int_equal(meaning_of(CREATE_CHILD_SA, REQ, pls, 3, &rerr), 0);
	assert_int_equal(meaning_of(IKE_AUTH, REQ, pls, 1, &rerr), -EBADMSG);
	chosen.proto = IKE_PROTO_ESP;
	chosen.spi_size = 4;
	assert_int_equal(meaning_of(IKE_AUTH, REQ, pls, 1, &rerr), 0);
	assert_int_equal(meaning_of(CREATE_CHILD_SA, REQ, pls, 1, &rerr), 0);
	assert_int_equal(meaning_of(IKE_SA_INIT, REQ, pls, 1, &rerr), -EBADMSG);

	/* Identities and configuration attributes of the wrong size. */
	static const uint8_t five[5] = { 10, 0, 0, 1, 0 };
	struct ike_pl id = { .type = IKE_PL_IDI, .u.id = { ID_IPV4_ADDR, five, 4 } };
	assert_int_equal(meaning_of(IKE_AUTH, REQ, &id, 1, &rerr), 0);
	id.u.id.len = 5;
	assert_int_equal(meaning_of(IKE_AUTH, REQ, &id, 1, &rerr), -EBADMSG);
	id.u.id = (struct ike_id_pl){ ID_IPV6_ADDR, big, 16 };
	assert_int_equal(meaning_of(IKE_AUTH, REQ, &id, 1, &rerr), 0);
	id.u.id.id_type = ID_FQDN;
	id.u.id.len = 0;
	assert_int_equal(meaning_of(IKE_AUTH, REQ, &id, 1, &rerr), -EBADMSG);
	struct ike_pl auth = { .type = IKE_PL_AUTH, .u.auth = { AUTH_PSK, big, 0 } };
	assert_int_equal(meaning_of(IKE_AUTH, REQ, &auth, 1, &rerr), -EBADMSG);

	struct ike_cp_attr attrs[] = { { INTERNAL_IP4_ADDRESS, NULL, 0 }, { INTERNAL_IP6_ADDRESS, NULL, 0 },
				       { APPLICATION_VERSION, big, 7 } };
	struct ike_pl cp = { .type = IKE_PL_CP, .u.cp = { CFG_REQUEST, 3, attrs } };
	assert_int_equal(meaning_of(IKE_AUTH, REQ, &cp, 1, &rerr), 0);
	attrs[0] = (struct ike_cp_attr){ INTERNAL_IP4_ADDRESS, big, 4 };
	attrs[1] = (struct ike_cp_attr){ INTERNAL_IP6_ADDRESS, big, 17 };
	assert_int_equal(meaning_of(IKE_AUTH, RSP, &cp, 1, &rerr), 0);
	attrs[0].len = 3;
	assert_int_equal(meaning_of(IKE_AUTH, RSP, &cp, 1, &rerr), -EBADMSG);
	assert_int_equal(rerr.payload, IKE_PL_CP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_req_layout),
		cmocka_unit_test(test_init_req_truncations),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_hostile_lengths),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_sk_split),
		cmocka_unit_test(test_sk_placement),
		cmocka_unit_test(test_seal_errors),
		cmocka_unit_test(test_unknown_payloads),
		cmocka_unit_test(test_too_many_payloads),
		cmocka_unit_test(test_init_response_round_trip),
		cmocka_unit_test(test_meaning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
