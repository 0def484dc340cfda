/*
 * Diffie-Hellman for the KE payload: agreement in every group, the published
 * RFC 5903 section 8 (ECP, including the IKE KE encoding) and RFC 7748
 * section 6 (X25519 / X448) vectors, and hostile peer values.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bn.h>

#include "ike/crypto.h"

static const uint16_t all_groups[] = {
	MODP_2048, MODP_3072, MODP_4096, ECP_256, ECP_384, ECP_521, CURVE_25519, CURVE_448,
};

static uint8_t *unhex(const char *h, size_t *len)
{
	size_t n = 0;
	uint8_t *b = malloc(strlen(h) / 2 + 1);
	int hi = -1;

	assert_non_null(b);
	for (; *h; h++) {
		int v = 0;
		if (*h == ' ')
			continue;
		if (*h >= '0' && *h <= '9')
			v = *h - '0';
		else if (*h >= 'a' && *h <= 'f')
			v = *h - 'a' + 10;
		else if (*h >= 'A' && *h <= 'F')
			v = *h - 'A' + 10;
		else
			fail_msg("bad hex digit %c", *h);
		if (hi < 0) {
			hi = v;
		} else {
			b[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	assert_int_equal(hi, -1);
	*len = n;
	return b;
}

static void test_dh_table(void **state)
{
	(void)state;
	static const struct {
		uint16_t group;
		size_t len;
	} t[] = {
		{ MODP_2048, 256 }, { MODP_3072, 384 }, { MODP_4096, 512 }, { ECP_256, 64 },
		{ ECP_384, 96 },    { ECP_521, 132 },   { CURVE_25519, 32 }, { CURVE_448, 56 },
	};
	static const uint16_t unsupported[] = { 0, MODP_768, MODP_1024, MODP_1536, MODP_8192,
						MODP_2048_256, ECP_256_BP, 33, 0xffff };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_true(ike_dh_supported(t[i].group));
		assert_int_equal(ike_dh_public_len(t[i].group), t[i].len);
	}
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		assert_false(ike_dh_supported(unsupported[i]));
		assert_int_equal(ike_dh_public_len(unsupported[i]), 0);
		assert_null(ike_dh_new(unsupported[i]));
	}
	ike_dh_free(NULL);
}

/* Two parties agree, in every group; a third party gets something else. */
static void test_dh_agree_all_groups(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(all_groups) / sizeof(all_groups[0]); i++) {
		uint16_t g = all_groups[i];
		size_t len = ike_dh_public_len(g), la = 600, lb = 600, lc = 600;
		uint8_t pa[600], pb[600], pc[600];
		struct ike_dh *a = ike_dh_new(g), *b = ike_dh_new(g), *c = ike_dh_new(g);
		struct secret *sa, *sb, *sc;

		assert_non_null(a);
		assert_non_null(b);
		assert_non_null(c);
		assert_int_equal(ike_dh_group(a), g);
		assert_int_equal(ike_dh_public(a, pa, &la), 0);
		assert_int_equal(ike_dh_public(b, pb, &lb), 0);
		assert_int_equal(ike_dh_public(c, pc, &lc), 0);
		assert_int_equal(la, len);
		assert_int_equal(lb, len);
		assert_memory_not_equal(pa, pb, len);
		assert_int_equal(ike_dh_derive(a, pb, lb, &sa), 0);
		assert_int_equal(ike_dh_derive(b, pa, la, &sb), 0);
		assert_int_equal(ike_dh_derive(c, pa, la, &sc), 0);
		assert_int_equal(sa->len, sb->len);
		/* MODP: padded to the prime; ECP: the x coordinate; XDH: raw. */
		assert_int_equal(sa->len, g == ECP_256 ? 32 : g == ECP_384 ? 48 : g == ECP_521 ? 66 : len);
		assert_memory_equal(sa->p, sb->p, sa->len);
		assert_memory_not_equal(sa->p, sc->p, sa->len);
		secret_free(sa);
		secret_free(sb);
		secret_free(sc);
		ike_dh_free(a);
		ike_dh_free(b);
		ike_dh_free(c);
	}
}

struct dh_vec {
	const char *source;
	uint16_t group;
	const char *i, *gi, *r, *gr, *gir;
};

/* ECP: gi / gr are the KE payload data exactly as RFC 5903 section 8
 * prints them ("The initiator sends the following value in the KE
 * payload": gix | giy, no format octet); gir is its girx. */
static const struct dh_vec vecs[] = {
	{
		"RFC 5903 section 8.1, 256-bit random ECP group",
		ECP_256,
		"C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
		"DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
		"5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
		"C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53",
		"D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
		"56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
		"D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE",
	},
	{
		"RFC 5903 section 8.2, 384-bit random ECP group",
		ECP_384,
		"099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655"
		"E35B538041E649EE3FAEF896783AB194",
		"667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6"
		"DE3AC808ACB4BDB4C88732AEE95F41AA"
		"9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38E"
		"EB9FCFF3C2C947DAE69B4C634573A81C",
		"41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942"
		"E0308312916B8ED2960E4BD55A7448FC",
		"E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D"
		"0D1AC43A0336DEF96FDA41D0774A3571"
		"DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FF"
		"F83FA40142209DFF5EAAD96DB9E6386C",
		"11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4"
		"D603135569B9E9D09CF5D4A270F59746",
	},
	{
		"RFC 7748 section 6.1, X25519",
		CURVE_25519,
		"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
		"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
		"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
		"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
	},
	{
		"RFC 7748 section 6.2, X448",
		CURVE_448,
		"9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28d"
		"d9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b",
		"9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c"
		"22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0",
		"1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d"
		"6927c120bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d",
		"3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b430"
		"27d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609",
		"07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282b"
		"b60c0b56fd2464c335543936521c24403085d59a449a5037514a879d",
	},
};

static void one_side(uint16_t group, const char *priv_hex, const char *pub_hex,
		     const char *peer_hex, const char *gir_hex)
{
	size_t pl, publ, peerl, girl, got_len = 200;
	uint8_t *priv = unhex(priv_hex, &pl), *pub = unhex(pub_hex, &publ);
	uint8_t *peer = unhex(peer_hex, &peerl), *gir = unhex(gir_hex, &girl), got[200];
	struct ike_dh *dh = ike_dh_new_with_private(group, priv, pl);
	struct secret *s;

	assert_non_null(dh);
	assert_int_equal(ike_dh_public(dh, got, &got_len), 0);
	assert_int_equal(got_len, publ);
	assert_memory_equal(got, pub, publ);
	assert_int_equal(ike_dh_derive(dh, peer, peerl, &s), 0);
	assert_int_equal(s->len, girl);
	assert_memory_equal(s->p, gir, girl);
	secret_free(s);
	ike_dh_free(dh);
	free(priv);
	free(pub);
	free(peer);
	free(gir);
}

static void test_dh_published_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		print_message("  %s\n", vecs[i].source);
		one_side(vecs[i].group, vecs[i].i, vecs[i].gi, vecs[i].gr, vecs[i].gir); /* initiator */
		one_side(vecs[i].group, vecs[i].r, vecs[i].gr, vecs[i].gi, vecs[i].gir); /* responder */
	}
}

static void test_dh_bad_private(void **state)
{
	(void)state;
	uint8_t k[66] = { 1 };

	assert_null(ike_dh_new_with_private(ECP_256, k, 31));
	assert_null(ike_dh_new_with_private(ECP_256, k, 33));
	assert_null(ike_dh_new_with_private(CURVE_25519, k, 31));
	assert_null(ike_dh_new_with_private(CURVE_448, k, 32));
	assert_null(ike_dh_new_with_private(MODP_2048, k, 32)); /* not offered for MODP */
	assert_null(ike_dh_new_with_private(1, k, 32));
	assert_null(ike_dh_new_with_private(ECP_256, NULL, 32));
	memset(k, 0, sizeof(k));
	assert_null(ike_dh_new_with_private(ECP_256, k, 32)); /* zero scalar */
}

/* Every wrong length is malformed, for every group. */
static void test_dh_wrong_length(void **state)
{
	(void)state;
	uint8_t buf[600] = { 0 };

	for (size_t i = 0; i < sizeof(all_groups) / sizeof(all_groups[0]); i++) {
		struct ike_dh *dh = ike_dh_new(all_groups[i]);
		size_t len = ike_dh_public_len(all_groups[i]), l = sizeof(buf);
		struct secret *s = (struct secret *)1;

		assert_non_null(dh);
		assert_int_equal(ike_dh_public(dh, buf, &l), 0);
		static const int deltas[] = { -1, 1, 2 };
		for (size_t j = 0; j < 3; j++) {
			assert_int_equal(ike_dh_derive(dh, buf, len + (size_t)deltas[j], &s), -EBADMSG);
			assert_null(s);
		}
		assert_int_equal(ike_dh_derive(dh, buf, 0, &s), -EBADMSG);
		assert_int_equal(ike_dh_derive(dh, buf, len / 2, &s), -EBADMSG);
		assert_int_equal(ike_dh_derive(dh, buf, len * 2 > sizeof(buf) ? len + 65 : len * 2, &s),
				 -EBADMSG);
		/* Output buffer too small for our own public value. */
		l = len - 1;
		assert_int_equal(ike_dh_public(dh, buf, &l), -ENOSPC);
		ike_dh_free(dh);
	}
}

/* ECP: points off the curve, the point at infinity's all-zero encoding and
 * coordinates >= p are all refused. */
static void test_dh_ecp_invalid_points(void **state)
{
	(void)state;
	static const uint16_t ecp[] = { ECP_256, ECP_384, ECP_521 };

	for (size_t i = 0; i < 3; i++) {
		struct ike_dh *dh = ike_dh_new(ecp[i]), *peer = ike_dh_new(ecp[i]);
		size_t len = ike_dh_public_len(ecp[i]), l = 200;
		uint8_t pub[200], bad[200];
		struct secret *s;

		assert_non_null(dh);
		assert_non_null(peer);
		assert_int_equal(ike_dh_public(peer, pub, &l), 0);
		assert_int_equal(ike_dh_derive(dh, pub, len, &s), 0);
		secret_free(s);

		/* y + 1 and x + 1: off the curve. */
		memcpy(bad, pub, len);
		bad[len - 1] ^= 1;
		assert_int_equal(ike_dh_derive(dh, bad, len, &s), -EBADMSG);
		memcpy(bad, pub, len);
		bad[len / 2 - 1] ^= 1;
		assert_int_equal(ike_dh_derive(dh, bad, len, &s), -EBADMSG);
		/* All zero: (0, 0) is not on these curves (and is how some encode infinity). */
		memset(bad, 0, len);
		assert_int_equal(ike_dh_derive(dh, bad, len, &s), -EBADMSG);
		/* All ones: coordinates >= p. */
		memset(bad, 0xff, len);
		assert_int_equal(ike_dh_derive(dh, bad, len, &s), -EBADMSG);
		/* x and y swapped. */
		memcpy(bad, pub + len / 2, len / 2);
		memcpy(bad + len / 2, pub, len / 2);
		assert_int_equal(ike_dh_derive(dh, bad, len, &s), -EBADMSG);
		/* The key still works after the refusals. */
		assert_int_equal(ike_dh_derive(dh, pub, len, &s), 0);
		secret_free(s);
		ike_dh_free(dh);
		ike_dh_free(peer);
	}
}

/* MODP: 0, 1, p - 1, p and anything above are refused (RFC 7296 2.12 leaves
 * the check to us; these force a predictable shared secret). */
static void test_dh_modp_invalid(void **state)
{
	(void)state;
	static const struct {
		uint16_t group;
		BIGNUM *(*prime)(BIGNUM *);
	} t[] = {
		{ MODP_2048, BN_get_rfc3526_prime_2048 },
		{ MODP_3072, BN_get_rfc3526_prime_3072 },
		{ MODP_4096, BN_get_rfc3526_prime_4096 },
	};

	for (size_t i = 0; i < 3; i++) {
		struct ike_dh *dh = ike_dh_new(t[i].group);
		size_t len = ike_dh_public_len(t[i].group);
		BIGNUM *p = t[i].prime(NULL), *v = BN_new();
		uint8_t buf[512];
		struct secret *s;

		assert_non_null(dh);
		assert_non_null(p);
		assert_non_null(v);
		/* 0 and 1 */
		memset(buf, 0, len);
		assert_int_equal(ike_dh_derive(dh, buf, len, &s), -EBADMSG);
		buf[len - 1] = 1;
		assert_int_equal(ike_dh_derive(dh, buf, len, &s), -EBADMSG);
		/* 2 is the generator: fine. */
		buf[len - 1] = 2;
		assert_int_equal(ike_dh_derive(dh, buf, len, &s), 0);
		assert_int_equal(s->len, len);
		secret_free(s);
		/* p - 1, p, p + 1 */
		assert_non_null(BN_copy(v, p));
		assert_int_equal(BN_sub_word(v, 1), 1);
		assert_int_equal(BN_bn2binpad(v, buf, (int)len), (int)len);
		assert_int_equal(ike_dh_derive(dh, buf, len, &s), -EBADMSG);
		assert_int_equal(BN_bn2binpad(p, buf, (int)len), (int)len);
		assert_int_equal(ike_dh_derive(dh, buf, len, &s), -EBADMSG);
		assert_int_equal(BN_add_word(v, 2), 1);
		assert_int_equal(BN_bn2binpad(v, buf, (int)len), (int)len);
		assert_int_equal(ike_dh_derive(dh, buf, len, &s), -EBADMSG);
		/* p - 2 is in range. */
		assert_int_equal(BN_sub_word(v, 3), 1);
		assert_int_equal(BN_bn2binpad(v, buf, (int)len), (int)len);
		assert_int_equal(ike_dh_derive(dh, buf, len, &s), 0);
		secret_free(s);
		memset(buf, 0xff, len);
		assert_int_equal(ike_dh_derive(dh, buf, len, &s), -EBADMSG);
		BN_free(p);
		BN_free(v);
		ike_dh_free(dh);
	}
}

/* X25519 / X448: small-order points give an all-zero secret (RFC 7748 6). */
static void test_dh_xdh_small_order(void **state)
{
	(void)state;
	static const uint16_t g[] = { CURVE_25519, CURVE_448 };

	for (size_t i = 0; i < 2; i++) {
		struct ike_dh *dh = ike_dh_new(g[i]);
		size_t len = ike_dh_public_len(g[i]);
		uint8_t u[56] = { 0 };
		struct secret *s = NULL;

		assert_non_null(dh);
		assert_int_equal(ike_dh_derive(dh, u, len, &s), -EBADMSG); /* u = 0 */
		assert_null(s);
		u[0] = 1;
		assert_int_equal(ike_dh_derive(dh, u, len, &s), -EBADMSG); /* u = 1 */
		ike_dh_free(dh);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dh_table),
		cmocka_unit_test(test_dh_agree_all_groups),
		cmocka_unit_test(test_dh_published_vectors),
		cmocka_unit_test(test_dh_bad_private),
		cmocka_unit_test(test_dh_wrong_length),
		cmocka_unit_test(test_dh_ecp_invalid_points),
		cmocka_unit_test(test_dh_modp_invalid),
		cmocka_unit_test(test_dh_xdh_small_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
