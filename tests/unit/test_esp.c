/*
 * ESP packet core: published vectors, round trips, tampering, truncation, replay, limits, SPI table.
 * Everything runs twice: with the AEADs (AES-GCM, ChaCha20-Poly1305) through intel-ipsec-mb (the default where it runs) and through
 * OpenSSL's EVP (the fallback); the two engines must also produce and accept each other's packets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "iketcp/stats.h"
#include "esp/aead_mb.h"
#include "esp/esp.h"
#include "esp/spi_table.h"

#define BUF 10000

static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = 0;
	int hi = -1;

	for (; *s; s++) {
		int v;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return n;
}

/* ---- the suites under test ---------------------------------------------- */

struct suite {
	const char *name;
	enum esp_cipher cipher;
	uint16_t enc_bits, integ_bits;
};

static const struct suite suites[] = {
	{ "aes128gcm16", ESP_AES_GCM_16, 128, 0 },
	{ "aes256gcm16", ESP_AES_GCM_16, 256, 0 },
	{ "chacha20poly1305", ESP_CHACHA20_POLY1305, 256, 0 },
	{ "aes128-sha256", ESP_AES_CBC_HMAC_SHA2, 128, 256 },
	{ "aes128-sha384", ESP_AES_CBC_HMAC_SHA2, 128, 384 },
	{ "aes256-sha256", ESP_AES_CBC_HMAC_SHA2, 256, 256 },
	{ "aes256-sha512", ESP_AES_CBC_HMAC_SHA2, 256, 512 },
};

static size_t keymat_len(const struct suite *s)
{
	return s->enc_bits / 8 + (s->cipher == ESP_AES_CBC_HMAC_SHA2 ? s->integ_bits / 8 : ESP_SALT_LEN);
}

static uint8_t keymat[128];

static struct esp_sa_params params_for(const struct suite *s, bool outbound, bool esn)
{
	for (size_t i = 0; i < sizeof(keymat); i++)
		keymat[i] = (uint8_t)(i * 7 + 3);
	return (struct esp_sa_params){
		.spi = 0xc0ffee01,
		.outbound = outbound,
		.cipher = s->cipher,
		.enc_key_bits = s->enc_bits,
		.integ_bits = s->integ_bits,
		.keymat = keymat,
		.keymat_len = keymat_len(s),
		.esn = esn,
		.replay = true,
		.replay_window = 1024,
	};
}

static void pair(const struct suite *s, bool esn, struct esp_sa *out, struct esp_sa *in)
{
	struct esp_sa_params p = params_for(s, true, esn);
	assert_int_equal(esp_sa_init(out, &p), 0);
	p.outbound = false;
	assert_int_equal(esp_sa_init(in, &p), 0);
}

static void unpair(struct esp_sa *out, struct esp_sa *in)
{
	esp_sa_destroy(out);
	esp_sa_destroy(in);
}

/* An inner packet with a valid header for its version and a patterned body. */
static size_t make_ip(uint8_t *p, size_t len, int version)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + len);
	if (version == 4) {
		p[0] = 0x45;
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
	} else {
		p[0] = 0x60;
		p[4] = (uint8_t)((len - 40) >> 8);
		p[5] = (uint8_t)(len - 40);
	}
	return len;
}

/* Tests place the window directly; the ring then starts empty, as after a jump. */
static void set_top(struct replay_window *w, uint64_t top)
{
	w->top = top;
	memset(w->bitmap, 0, ((size_t)w->word_mask + 1) * sizeof(*w->bitmap));
}

/* ---- known answers --------------------------------------------------------- */

/* RFC 7634 Appendix A: a complete tunnel-mode ChaCha20-Poly1305 ESP packet. */
static void test_kat_rfc7634(void **state)
{
	(void)state;
	static uint8_t km[64], iv[8], pt[128], ct[128], tag[16], wire[256], out[256];
	size_t kml = unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3", km);
	unhex("1011121314151617", iv);
	size_t ptl = unhex("45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10"
			   "0007362708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
			   "2425262728292a2b2c2d2e2f303132333435363701020204", pt);
	size_t ctl = unhex("24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c6"
			   "14ee8099d52844eb61aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3"
			   "cbec163fac469b502773f6fb94e664da9165b82829f641e0", ct);
	unhex("76aaa8266b7fb0f7b11b369907e1ad43", tag);
	assert_int_equal(ptl, 88);
	assert_int_equal(ctl, 88);
	size_t wl = unhex("0102030400000005", wire);
	memcpy(wire + wl, iv, 8);
	memcpy(wire + wl + 8, ct, ctl);
	memcpy(wire + wl + 8 + ctl, tag, 16);
	wl += 8 + ctl + 16;

	struct esp_sa_params p = {
		.spi = 0x01020304, .outbound = true, .cipher = ESP_CHACHA20_POLY1305, .enc_key_bits = 256,
		.keymat = km, .keymat_len = kml, .replay = true,
	};
	struct esp_sa out_sa, in_sa;
	assert_int_equal(esp_sa_init(&out_sa, &p), 0);
	p.outbound = false;
	assert_int_equal(esp_sa_init(&in_sa, &p), 0);

	/* Seal: byte for byte the published packet. */
	assert_int_equal(esp_seal_raw_for_test(&out_sa, 5, iv, pt, ptl, out, sizeof(out)), (ssize_t)wl);
	assert_memory_equal(out, wire, wl);
	/* esp_encap pads the 84-byte packet the same way: 01 02 | 02 | 04. */
	assert_int_equal(esp_encap_len(&out_sa, 84), wl);

	/* Open: the inner packet comes back, next header 4. */
	uint8_t nh = 0;
	assert_int_equal(esp_decap(&in_sa, wire, wl, out, sizeof(out), &nh), 84);
	assert_int_equal(nh, ESP_NH_IPV4);
	assert_memory_equal(out, pt, 84);
	assert_int_equal(in_sa.stats.packets, 1);
	assert_int_equal(in_sa.stats.bytes, 84);
	/* Once only. */
	assert_int_equal(esp_decap(&in_sa, wire, wl, out, sizeof(out), &nh), -EALREADY);
	assert_int_equal(in_sa.stats.replay_drops, 1);
	unpair(&out_sa, &in_sa);
}

/*
 * draft-mcgrew-gcm-test-01 section 4. Its plaintexts carry next header 1
 * (not a tunnel-mode value), so esp_decap authenticates and decrypts them and
 * then refuses the next header: -EBADMSG with no ICV failure counted.
 */
struct gcm_vector {
	const char *name, *key_salt, *spi_seq, *iv, *pt, *ct_tag;
	uint64_t seq64;
	bool esn;
	bool aligned; /* the draft's payload ends on a 4-byte boundary */
};

static const struct gcm_vector gcm_vectors[] = {
	{
		"packet 1: AES-128, ESN",
		"4c80cdefbb5d10da906ac73c3613a634 2e443b68",
		"00004321 00000000",
		"4956ed7e3b244cfe",
		"45000048699a000080114db7c0a80102c0a801010a9bf15638d3010000010000"
		"00000000045f736970045f756470037369700963796265726369747902646b00"
		"0021000101020201",
		"fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34"
		"cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce"
		"61bc17d768fd9732459018148f6cbe722fd04796562dfdb4",
		0x8765432100000000ull, true, true,
	},
	{
		"packet 2: AES-128",
		"feffe9928665731c6d6a8f9467308308 cafebabe",
		"0000a5f8 0000000a",
		"facedbaddecaf888",
		"4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d00100"
		"0001000000000000037369700963796265726369747902646b00000100010001",
		"deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c"
		"3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1"
		"83b70d3aa8bc6ee4c309e9d85a41ad4a",
		0x0a, false, false,
	},
	{
		"packet 3: AES-256",
		"abbccddef00112233445566778899aababbccddef00112233445566778899aab 11223344",
		"4a2cbfe3 00000002",
		"0102030405060708",
		"4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000"
		"7002400020bf0000020405b40101040201020201",
		"ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763"
		"748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c49"
		"15956c96",
		2, false, true,
	},
	{
		"AES-256, ESN at 2^64 - 1",
		"6c6567616c697a656d6172696a75616e61616e64646f69746265666f72656961 7475726e",
		"796b6963 ffffffff",
		"333021696765746d",
		"45000030da3a00008001df3bc0a80005c0a800010800c6cd0200070061626364"
		"65666768696a6b6c6d6e6f707172737401020201",
		"f97ab2aa356d8edce17644ac8c78e25dd24dedbb29ebf1b64a274b39b49c3a86"
		"4cd3d78ca4ae68a32b42458fb57dbe821dcc63b9d0937ba2945f669368661a32"
		"9fb4c053",
		UINT64_MAX, true, true,
	},
};

static void test_kat_gcm_draft(void **state)
{
	(void)state;
	for (size_t v = 0; v < ARRAY_SIZE(gcm_vectors); v++) {
		const struct gcm_vector *t = &gcm_vectors[v];
		uint8_t km[64], hdr[8], iv[8], pt[128], wire[256], out[256], nh = 0;
		size_t kml = unhex(t->key_salt, km), ptl = unhex(t->pt, pt);
		unhex(t->spi_seq, hdr);
		unhex(t->iv, iv);
		memcpy(wire, hdr, 8);
		memcpy(wire + 8, iv, 8);
		size_t wl = 16 + unhex(t->ct_tag, wire + 16);
		assert_int_equal(wl, 16 + ptl + 16);
		uint32_t spi = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];

		struct esp_sa_params p = {
			.spi = spi, .outbound = true, .cipher = ESP_AES_GCM_16,
			.enc_key_bits = (uint16_t)((kml - 4) * 8), .keymat = km, .keymat_len = kml,
			.esn = t->esn, .replay = true,
		};
		struct esp_sa out_sa, in_sa;
		assert_int_equal(esp_sa_init(&out_sa, &p), 0);
		p.outbound = false;
		assert_int_equal(esp_sa_init(&in_sa, &p), 0);

		ssize_t n = esp_seal_raw_for_test(&out_sa, t->seq64, iv, pt, ptl, out, sizeof(out));
		if (n != (ssize_t)wl || memcmp(out, wire, wl) != 0)
			fail_msg("%s: sealed packet differs from the draft", t->name);

		/* The window sits just below the vector's number so ESN infers its high half. */
		set_top(&in_sa.replay, t->seq64 - 1);
		memset(out, 0, sizeof(out));
		n = esp_decap(&in_sa, wire, wl, out, sizeof(out), &nh);
		if (n != -EBADMSG || in_sa.stats.auth_failures != 0 || in_sa.stats.malformed != 1)
			fail_msg("%s: decap %zd, auth failures %llu", t->name, n,
				 (unsigned long long)in_sa.stats.auth_failures);
		assert_memory_equal(out, pt, ptl); /* decrypted in full before the trailer check */
		assert_int_equal(in_sa.replay.top, t->seq64); /* authenticated: the window moved */

		/* One bit off in the tag: the ICV now fails. */
		set_top(&in_sa.replay, t->seq64 - 1);
		wire[wl - 1] ^= 1;
		assert_int_equal(esp_decap(&in_sa, wire, wl, out, sizeof(out), &nh), -EKEYREJECTED);
		assert_int_equal(in_sa.stats.auth_failures, 1);
		unpair(&out_sa, &in_sa);
	}
}

/* CBC + HMAC against OpenSSL one-shot calls: ICV over SPI | seq | IV | ct (| seq_hi). */
static void test_cbc_hmac_layout(void **state)
{
	(void)state;
	for (size_t si = 3; si < ARRAY_SIZE(suites); si++) {
		for (int esn = 0; esn <= 1; esn++) {
			const struct suite *s = &suites[si];
			struct esp_sa o, i;
			uint8_t ip[200], wire[400], icv[64], pt[400];
			unsigned int icv_len = 0;
			int n1 = 0, n2 = 0;
			pair(s, esn, &o, &i);
			esp_sa_set_seq_for_test(&o, esn ? 0x1fffffff0ull : 0xfffffff0u);
			size_t ipl = make_ip(ip, 77, 4);
			ssize_t wl = esp_encap(&o, ip, ipl, wire, sizeof(wire));
			assert_int_equal(wl, 8 + 16 + 80 + s->integ_bits / 16);
			uint64_t seq = o.seq;

			const EVP_MD *md = s->integ_bits == 256 ? EVP_sha256() :
					   s->integ_bits == 384 ? EVP_sha384() : EVP_sha512();
			uint8_t msg[400];
			size_t ml = (size_t)wl - s->integ_bits / 16;
			memcpy(msg, wire, ml);
			if (esn) {
				msg[ml++] = (uint8_t)(seq >> 56);
				msg[ml++] = (uint8_t)(seq >> 48);
				msg[ml++] = (uint8_t)(seq >> 40);
				msg[ml++] = (uint8_t)(seq >> 32);
			}
			HMAC(md, keymat + s->enc_bits / 8, s->integ_bits / 8, msg, ml, icv, &icv_len);
			assert_memory_equal(icv, wire + wl - s->integ_bits / 16, s->integ_bits / 16);

			EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
			assert_int_equal(EVP_DecryptInit_ex(c, s->enc_bits == 128 ? EVP_aes_128_cbc() :
							    EVP_aes_256_cbc(), NULL, keymat, wire + 8), 1);
			EVP_CIPHER_CTX_set_padding(c, 0);
			assert_int_equal(EVP_DecryptUpdate(c, pt, &n1, wire + 24, 80), 1);
			assert_int_equal(EVP_DecryptFinal_ex(c, pt + n1, &n2), 1);
			EVP_CIPHER_CTX_free(c);
			assert_int_equal(n1 + n2, 80);
			assert_memory_equal(pt, ip, 77);
			assert_int_equal(pt[77], 1); /* padding 1 */
			assert_int_equal(pt[78], 1); /* pad length */
			assert_int_equal(pt[79], ESP_NH_IPV4);

			/* Two packets never share an IV. */
			uint8_t wire2[400];
			assert_int_equal(esp_encap(&o, ip, ipl, wire2, sizeof(wire2)), wl);
			assert_memory_not_equal(wire + 8, wire2 + 8, 16);
			unpair(&o, &i);
		}
	}
}

/* ---- round trips ----------------------------------------------------------- */

static void round_trip(const struct suite *s, bool esn)
{
	static uint8_t ip[BUF], wire[BUF + ESP_MAX_OVERHEAD], out[BUF + ESP_MAX_OVERHEAD];
	struct esp_sa o, in;
	uint8_t nh;

	pair(s, esn, &o, &in);
	for (int version = 4; version <= 6; version += 2) {
		for (size_t len = version == 4 ? 20 : 40; len <= 9000; len += len < 300 ? 1 : 97) {
			make_ip(ip, len, version);
			ssize_t wl = esp_encap(&o, ip, len, wire, sizeof(wire));
			if (wl != (ssize_t)esp_encap_len(&o, len))
				fail_msg("%s esn=%d v%d len %zu: encap %zd", s->name, esn, version, len, wl);
			assert_int_equal((wl - 8 - o.iv_len - o.icv_len) % o.block, 0);
			assert_int_equal(esp_spi_of(wire, (size_t)wl), 0xc0ffee01);
			nh = 0;
			ssize_t n = esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh);
			if (n != (ssize_t)len || memcmp(out, ip, len) != 0)
				fail_msg("%s esn=%d v%d len %zu: decap %zd", s->name, esn, version, len, n);
			assert_int_equal(nh, version == 4 ? ESP_NH_IPV4 : ESP_NH_IPV6);
		}
	}
	/* In place both ways: the inner packet sits at the payload offset. */
	size_t off = esp_payload_offset(&o);
	make_ip(wire + off, 1420, 4);
	memcpy(ip, wire + off, 1420);
	ssize_t wl = esp_encap(&o, wire + off, 1420, wire, sizeof(wire));
	assert_int_equal(wl, (ssize_t)esp_encap_len(&o, 1420));
	assert_int_equal(esp_decap(&in, wire, (size_t)wl, wire + off, sizeof(wire) - off, &nh), 1420);
	assert_memory_equal(wire + off, ip, 1420);
	/* Partially overlapping buffers are refused both ways. */
	make_ip(wire + off + 1, 100, 4);
	assert_int_equal(esp_encap(&o, wire + off + 1, 100, wire, sizeof(wire)), -EINVAL);
	assert_int_equal(esp_encap(&o, wire + off + 1, 100, wire + 200, sizeof(wire) - 200), 
			 (ssize_t)esp_encap_len(&o, 100)); /* disjoint: fine */
	assert_int_equal(esp_decap(&in, wire + 200, esp_encap_len(&o, 100), ip, sizeof(ip), &nh), 100);
	wl = esp_encap(&o, ip, 100, wire, sizeof(wire));
	assert_int_equal(esp_decap(&in, wire, (size_t)wl, wire + 1, sizeof(wire) - 1, &nh), -EINVAL);

	assert_int_equal(in.stats.auth_failures + in.stats.malformed + in.stats.replay_drops, 0);
	assert_int_equal(in.stats.packets, o.stats.packets - 1);
	unpair(&o, &in);
}

static void test_round_trip_all(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(suites); i++) {
		round_trip(&suites[i], false);
		round_trip(&suites[i], true);
	}
}

/* ---- hostile input --------------------------------------------------------- */

static void test_tamper_every_byte(void **state)
{
	(void)state;
	for (size_t si = 0; si < ARRAY_SIZE(suites); si++) {
		for (int esn = 0; esn <= 1; esn++) {
			struct esp_sa o, in;
			uint8_t ip[200], wire[400], bad[400], out[400], nh;
			pair(&suites[si], esn, &o, &in);
			esp_sa_set_seq_for_test(&o, 999);
			make_ip(ip, 61, 4);
			ssize_t wl = esp_encap(&o, ip, 61, wire, sizeof(wire));
			assert_true(wl > 0);
			for (size_t at = 4; at < (size_t)wl; at++) { /* the SPI picks the SA: not here */
				for (int bit = 0; bit < 8; bit += 7) {
					memcpy(bad, wire, (size_t)wl);
					bad[at] ^= (uint8_t)(1 << bit);
					ssize_t n = esp_decap(&in, bad, (size_t)wl, out, sizeof(out), &nh);
					if (n != -EKEYREJECTED)
						fail_msg("%s esn=%d byte %zu bit %d: %zd", suites[si].name, esn,
							 at, bit, n);
				}
			}
			/* Nothing moved the window: the genuine packet still opens, once. */
			assert_int_equal(esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh), 61);
			assert_int_equal(esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh), -EALREADY);
			assert_int_equal(in.stats.packets, 1);
			assert_int_equal(in.stats.auth_failures, 2 * ((size_t)wl - 4));
			/* A foreign SPI is the caller's mistake, not counted. */
			memcpy(bad, wire, (size_t)wl);
			bad[0] ^= 0x80;
			assert_int_equal(esp_decap(&in, bad, (size_t)wl, out, sizeof(out), &nh), -EINVAL);
			unpair(&o, &in);
		}
	}
}

/*
 * Every truncation fails. Below the minimum size, or off the CBC block
 * size, it is malformed; otherwise the ICV is read from the wrong place and
 * fails (ESP has no length field: the framing above carries the length).
 */
static void test_truncate_everywhere(void **state)
{
	(void)state;
	for (size_t si = 0; si < ARRAY_SIZE(suites); si++) {
		struct esp_sa o, in;
		uint8_t ip[200], wire[400], out[400], nh;
		pair(&suites[si], false, &o, &in);
		make_ip(ip, 100, 4);
		ssize_t wl = esp_encap(&o, ip, 100, wire, sizeof(wire));
		size_t min = 8 + o.iv_len + o.icv_len + (o.block == 16 ? 16 : 2);
		uint64_t malformed = 0;
		for (size_t len = 0; len < (size_t)wl; len++) {
			ssize_t n = esp_decap(&in, wire, len, out, sizeof(out), &nh);
			bool short_or_unaligned = len < min || (o.block == 16 && (len - 8 - 16 - o.icv_len) % 16);
			if (short_or_unaligned) {
				malformed++;
				if (n != -EBADMSG)
					fail_msg("%s len %zu: %zd, want -EBADMSG", suites[si].name, len, n);
			} else if (n != -EKEYREJECTED) {
				fail_msg("%s len %zu: %zd, want -EKEYREJECTED", suites[si].name, len, n);
			}
		}
		assert_int_equal(in.stats.malformed, malformed);
		assert_int_equal(esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh), 100);
		assert_int_equal(esp_spi_of(wire, 3), 0);
		unpair(&o, &in);
	}
}

static void test_replay_drops(void **state)
{
	(void)state;
	struct esp_sa o, in;
	static uint8_t ip[100], wire[1100][200], out[200];
	ssize_t wl[1100];
	uint8_t nh;
	make_ip(ip, 60, 4);
	for (int esn = 0; esn <= 1; esn++) {
		pair(&suites[0], esn, &o, &in);
		for (int k = 0; k < 1100; k++)
			wl[k] = esp_encap(&o, ip, 60, wire[k], sizeof(wire[k]));
		/*
		 * Newest first: all inside the window except the 76 oldest. Those
		 * are replays with 32-bit numbers; with ESN, RFC 4303 A2 reads a
		 * number left of the window as the next 2^32 subspace, so the ICV
		 * (computed over the other high half) rejects them instead.
		 */
		for (int k = 1099; k >= 0; k--) {
			ssize_t n = esp_decap(&in, wire[k], (size_t)wl[k], out, sizeof(out), &nh);
			assert_int_equal(n, k >= 1100 - 1024 ? 60 : esn ? -EKEYREJECTED : -EALREADY);
		}
		assert_int_equal(in.stats.replay_drops, esn ? 0 : 76);
		assert_int_equal(in.stats.auth_failures, esn ? 76 : 0);
		/* Inside the window a duplicate is a replay either way. */
		assert_int_equal(esp_decap(&in, wire[1099], (size_t)wl[1099], out, sizeof(out), &nh), -EALREADY);
		assert_int_equal(esp_decap(&in, wire[500], (size_t)wl[500], out, sizeof(out), &nh), -EALREADY);
		assert_int_equal(in.stats.replay_drops, esn ? 2 : 78);
		unpair(&o, &in);
	}

	/* Replay disabled: the same packet is accepted again. */
	struct esp_sa_params p = params_for(&suites[2], true, false);
	assert_int_equal(esp_sa_init(&o, &p), 0);
	p.outbound = false;
	p.replay = false;
	assert_int_equal(esp_sa_init(&in, &p), 0);
	wl[0] = esp_encap(&o, ip, 60, wire[0], sizeof(wire[0]));
	for (int k = 0; k < 3; k++)
		assert_int_equal(esp_decap(&in, wire[0], (size_t)wl[0], out, sizeof(out), &nh), 60);
	unpair(&o, &in);
}

/* Authenticated but wrong inside: crafted plaintexts sealed with the test hook. */
static ssize_t open_crafted(const struct suite *s, const uint8_t *pt, size_t len, uint8_t *out,
			    size_t cap, uint8_t *nh, struct esp_sa_stats *st)
{
	struct esp_sa o, in;
	uint8_t wire[600], iv[16] = { 1, 2, 3 };
	pair(s, false, &o, &in);
	ssize_t wl = esp_seal_raw_for_test(&o, 1, iv, pt, len, wire, sizeof(wire));
	assert_true(wl > 0);
	ssize_t n = esp_decap(&in, wire, (size_t)wl, out, cap, nh);
	*st = in.stats;
	/* Past the ICV the window moved, whatever the trailer said. */
	assert_int_equal(in.replay.top, n == -ENOSPC ? 0 : 1);
	unpair(&o, &in);
	return n;
}

static void test_bad_trailers(void **state)
{
	(void)state;
	uint8_t pt[512], out[600], nh = 0;
	struct esp_sa_stats st;
	for (size_t si = 0; si < ARRAY_SIZE(suites); si++) {
		const struct suite *s = &suites[si];
		/* 46-byte IPv4 packet, pad 0: 48 bytes, aligned for every suite via 16 * 3. */
		make_ip(pt, 46, 4);
		pt[46] = 0;
		pt[47] = ESP_NH_IPV4;
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), 46);

		pt[47] = 17; /* UDP: not tunnel mode */
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), -EBADMSG);
		assert_int_equal(st.malformed, 1);
		assert_int_equal(st.auth_failures, 0);

		pt[47] = ESP_NH_IPV6; /* says IPv6, carries IPv4 */
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), -EBADMSG);

		pt[47] = ESP_NH_DUMMY; /* RFC 4303 2.6: authenticated, then dropped */
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), 0);
		assert_int_equal(nh, ESP_NH_DUMMY);
		assert_int_equal(st.dummy, 1);
		assert_int_equal(st.malformed, 0);

		pt[47] = ESP_NH_IPV4;
		pt[46] = 47; /* pad length + 2 > payload */
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), -EBADMSG);
		pt[46] = 255;
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), -EBADMSG);
		pt[46] = 46; /* pad length exactly the rest: no room for the IP header */
		for (int i = 0; i < 46; i++)
			pt[i] = (uint8_t)(i + 1);
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), -EBADMSG);

		/* Padding must read 1, 2, 3, ... */
		make_ip(pt, 40, 4);
		for (int i = 0; i < 6; i++)
			pt[40 + i] = (uint8_t)(i + 1);
		pt[46] = 6;
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), 40);
		pt[43] = 9;
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), -EBADMSG);

		/* TFC padding after the inner packet is trimmed by the IP length. */
		make_ip(pt, 28, 4);
		memset(pt + 28, 0, 18);
		pt[46] = 0;
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), 28);
		/* An IP length beyond the payload is malformed. */
		pt[3] = 47;
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), -EBADMSG);
		pt[3] = 19; /* shorter than its own header */
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), -EBADMSG);

		/* IPv6 inner: payload length honoured, too short refused. */
		make_ip(pt, 46, 6);
		pt[46] = 0;
		pt[47] = ESP_NH_IPV6;
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), 46);
		assert_int_equal(nh, ESP_NH_IPV6);
		pt[5] = 7;
		assert_int_equal(open_crafted(s, pt, 48, out, sizeof(out), &nh, &st), -EBADMSG);

		/* The output buffer must hold the whole decrypted payload. */
		make_ip(pt, 46, 4);
		pt[46] = 0;
		pt[47] = ESP_NH_IPV4;
		assert_int_equal(open_crafted(s, pt, 48, out, 47, &nh, &st), -ENOSPC);
	}
}

/* ---- sequence numbers and lifetimes ----------------------------------------- */

static void test_sequence_exhaustion(void **state)
{
	(void)state;
	uint8_t ip[100], wire[300], out[300], nh;
	make_ip(ip, 64, 4);
	for (size_t si = 0; si < ARRAY_SIZE(suites); si++) {
		struct esp_sa o, in;
		/* 32-bit: 2^32 - 1 is the last number. */
		pair(&suites[si], false, &o, &in);
		esp_sa_set_seq_for_test(&o, 0xfffffffeu);
		ssize_t wl = esp_encap(&o, ip, 64, wire, sizeof(wire));
		assert_true(wl > 0);
		assert_true(o.soft_expired);
		assert_false(o.hard_expired);
		assert_int_equal(esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh), 64);
		assert_int_equal(esp_encap(&o, ip, 64, wire, sizeof(wire)), -EKEYEXPIRED);
		assert_int_equal(esp_encap(&o, ip, 64, wire, sizeof(wire)), -EKEYEXPIRED);
		assert_true(o.hard_expired);
		assert_int_equal(o.stats.expired, 2);
		unpair(&o, &in);

		/* ESN: across 2^32 (the high half goes into AAD or ICV), then up to 2^64 - 1. */
		pair(&suites[si], true, &o, &in);
		esp_sa_set_seq_for_test(&o, 0xfffffffdu);
		set_top(&in.replay, 0xfffffff0u);
		for (int k = 0; k < 4; k++) {
			wl = esp_encap(&o, ip, 64, wire, sizeof(wire));
			assert_int_equal(esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh), 64);
		}
		assert_int_equal(in.replay.top, 0x100000001ull);
		assert_false(o.soft_expired);
		esp_sa_set_seq_for_test(&o, UINT64_MAX - 1);
		set_top(&in.replay, UINT64_MAX - 5);
		wl = esp_encap(&o, ip, 64, wire, sizeof(wire));
		assert_int_equal(esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh), 64);
		assert_int_equal(in.replay.top, UINT64_MAX);
		assert_int_equal(esp_encap(&o, ip, 64, wire, sizeof(wire)), -EKEYEXPIRED);
		unpair(&o, &in);

		/* ESN on one side only: the AAD/ICV differ once the high half is not 0. */
		struct esp_sa_params p = params_for(&suites[si], true, true);
		assert_int_equal(esp_sa_init(&o, &p), 0);
		p.outbound = false;
		p.esn = false;
		assert_int_equal(esp_sa_init(&in, &p), 0);
		esp_sa_set_seq_for_test(&o, 0x100000005ull);
		wl = esp_encap(&o, ip, 64, wire, sizeof(wire));
		assert_int_equal(esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh), -EKEYREJECTED);
		unpair(&o, &in);
	}
}

static void test_lifetimes(void **state)
{
	(void)state;
	uint8_t ip[1000], wire[1200], out[1200], nh;
	struct esp_sa o, in;
	struct esp_sa_params p = params_for(&suites[0], true, false);
	p.life_bytes_soft = 1500;
	p.life_bytes_hard = 3000;
	p.life_secs_soft = 100;
	p.life_secs_hard = 120;
	p.now_secs = 1000;
	assert_int_equal(esp_sa_init(&o, &p), 0);
	p.outbound = false;
	assert_int_equal(esp_sa_init(&in, &p), 0);
	make_ip(ip, 1000, 4);
	for (int k = 0; k < 3; k++) {
		ssize_t wl = esp_encap(&o, ip, 1000, wire, sizeof(wire));
		assert_true(wl > 0);
		assert_int_equal(esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh), 1000);
		assert_int_equal(o.soft_expired, k >= 1);
		assert_int_equal(o.hard_expired, k >= 2);
		assert_int_equal(in.hard_expired, k >= 2);
	}
	assert_int_equal(esp_encap(&o, ip, 1000, wire, sizeof(wire)), -EKEYEXPIRED);
	assert_int_equal(esp_decap(&in, wire, 100, out, sizeof(out), &nh), -EKEYEXPIRED);
	unpair(&o, &in);

	p.life_bytes_soft = p.life_bytes_hard = 0;
	p.outbound = true;
	assert_int_equal(esp_sa_init(&o, &p), 0);
	assert_int_equal(esp_sa_tick(&o, 1000), ESP_LIFE_OK);
	assert_int_equal(esp_sa_tick(&o, 1099), ESP_LIFE_OK);
	assert_int_equal(esp_sa_tick(&o, 1100), ESP_LIFE_SOFT);
	assert_int_equal(esp_sa_tick(&o, 1119), ESP_LIFE_SOFT);
	assert_int_equal(esp_sa_tick(&o, 1120), ESP_LIFE_HARD);
	assert_int_equal(esp_sa_tick(&o, 5), ESP_LIFE_HARD); /* sticky, clock going back or not */
	assert_int_equal(esp_encap(&o, ip, 100, wire, sizeof(wire)), -EKEYEXPIRED);
	esp_sa_destroy(&o);
}

static void test_params_and_errors(void **state)
{
	(void)state;
	struct esp_sa sa;
	struct esp_sa_params p = params_for(&suites[0], true, false);
	uint8_t ip[100], wire[200], nh;

	p.spi = 255;
	assert_int_equal(esp_sa_init(&sa, &p), -EINVAL);
	p = params_for(&suites[0], true, false);
	p.enc_key_bits = 192;
	assert_int_equal(esp_sa_init(&sa, &p), -EINVAL);
	p = params_for(&suites[0], true, false);
	p.keymat_len = 16; /* salt missing */
	assert_int_equal(esp_sa_init(&sa, &p), -EINVAL);
	p = params_for(&suites[2], true, false);
	p.enc_key_bits = 128;
	assert_int_equal(esp_sa_init(&sa, &p), -EINVAL);
	p = params_for(&suites[3], true, false);
	p.integ_bits = 160;
	assert_int_equal(esp_sa_init(&sa, &p), -EINVAL);
	p = params_for(&suites[3], true, false);
	p.keymat_len--;
	assert_int_equal(esp_sa_init(&sa, &p), -EINVAL);
	p = params_for(&suites[0], false, false);
	p.replay_window = 10;
	assert_int_equal(esp_sa_init(&sa, &p), -EINVAL);
	p.cipher = (enum esp_cipher)42;
	assert_int_equal(esp_sa_init(&sa, &p), -EINVAL);
	esp_sa_destroy(&sa); /* zeroed by the failed init: harmless */

	p = params_for(&suites[0], true, false);
	assert_int_equal(esp_sa_init(&sa, &p), 0);
	make_ip(ip, 60, 4);
	/* Too small by one byte: refused, and the number is not used up. */
	assert_int_equal(esp_encap(&sa, ip, 60, wire, esp_encap_len(&sa, 60) - 1), -ENOSPC);
	assert_int_equal(sa.seq, 0);
	ip[0] = 0x50;
	assert_int_equal(esp_encap(&sa, ip, 60, wire, sizeof(wire)), -EINVAL);
	assert_int_equal(esp_encap(&sa, ip, 0, wire, sizeof(wire)), -EINVAL);
	assert_int_equal(esp_decap(&sa, wire, sizeof(wire), ip, sizeof(ip), &nh), -EINVAL); /* outbound */
	esp_sa_destroy(&sa);
	esp_sa_destroy(&sa);

	p.outbound = false;
	assert_int_equal(esp_sa_init(&sa, &p), 0);
	assert_int_equal(esp_encap(&sa, ip, 60, wire, sizeof(wire)), -EINVAL); /* inbound */
	esp_sa_destroy(&sa);
}

static void test_stats_add(void **state)
{
	(void)state;
	struct stats st;
	struct esp_sa_stats in = { .packets = 5, .replay_drops = 2, .auth_failures = 3, .malformed = 4 };
	struct esp_sa_stats out = { .packets = 7 };
	memset(&st, 0, sizeof(st));
	esp_sa_stats_add(&st, &in, false);
	esp_sa_stats_add(&st, &out, true);
	esp_sa_stats_add(&st, &in, false);
	assert_int_equal(st.esp.packets_in, 10);
	assert_int_equal(st.esp.packets_out, 7);
	assert_int_equal(st.esp.replay_drops, 4);
	assert_int_equal(st.esp.auth_failures, 6);
	assert_int_equal(st.esp.malformed, 8);
}

/* ---- SPI table ----------------------------------------------------------- */

static void test_spi_table(void **state)
{
	(void)state;
	enum { N = 1000 };
	struct spi_table t;
	static struct esp_sa sas[N];
	static uint32_t spis[N];
	unsigned int rnd = 99;

	assert_int_equal(spi_table_init(&t, 0), -EINVAL);
	assert_int_equal(spi_table_init(&t, N), 0);
	for (int i = 0; i < N; i++) {
		/* Half random, half sequential (sequential SPIs probe the mixing). */
		rnd = rnd * 1103515245u + 12345u;
		spis[i] = i % 2 ? (rnd | 0x100u) : 0x1000u + (uint32_t)i;
		assert_int_equal(spi_table_insert(&t, spis[i], &sas[i]), 0);
	}
	assert_int_equal(spi_table_insert(&t, 0x77777777, &sas[0]), -ENOSPC);
	assert_int_equal(spi_table_insert(&t, spis[5], &sas[0]), -EEXIST);
	assert_int_equal(spi_table_insert(&t, 0, &sas[0]), -EINVAL);
	assert_null(spi_table_lookup(&t, 0));
	assert_null(spi_table_lookup(&t, 0x77777777));
	for (int i = 0; i < N; i++)
		assert_ptr_equal(spi_table_lookup(&t, spis[i]), &sas[i]);
	/* Remove every third, in scattered order; all others stay reachable. */
	for (int i = N - 1; i >= 0; i -= 3)
		assert_int_equal(spi_table_remove(&t, spis[i]), 0);
	assert_int_equal(spi_table_remove(&t, spis[N - 1]), -ENOENT);
	for (int i = 0; i < N; i++)
		assert_ptr_equal(spi_table_lookup(&t, spis[i]), (N - 1 - i) % 3 == 0 ? NULL : &sas[i]);
	/* Freed room is usable again. */
	assert_int_equal(spi_table_insert(&t, 0x77777777, &sas[1]), 0);
	assert_ptr_equal(spi_table_lookup(&t, 0x77777777), &sas[1]);
	for (int i = 0; i < N; i++)
		if ((N - 1 - i) % 3 != 0)
			assert_int_equal(spi_table_remove(&t, spis[i]), 0);
	assert_int_equal(spi_table_remove(&t, 0x77777777), 0);
	assert_int_equal(t.count, 0);
	for (uint32_t i = 0; i <= t.mask; i++)
		assert_int_equal(t.slots[i].spi, 0);
	spi_table_free(&t);
	spi_table_free(&t);
}

/* ---- the two AES-GCM engines ------------------------------------------------ */

static int engine_fast(void **state)
{
	(void)state;
	aead_mb_disable_for_test(false);
	return 0;
}

static int engine_evp(void **state)
{
	(void)state;
	aead_mb_disable_for_test(true);
	return 0;
}

static void test_aead_engines_agree(void **state)
{
	static uint8_t ip[9000], w_fast[9100], w_evp[9100], out[9100];
	(void)state;
	for (size_t si = 0; si < 3; si++) { /* aes128gcm16, aes256gcm16, chacha20poly1305 */
		for (int esn = 0; esn <= 1; esn++) {
			struct esp_sa fo, fi, eo, ei;
			uint8_t nh;
			aead_mb_disable_for_test(false);
			pair(&suites[si], esn, &fo, &fi);
			assert_non_null(fo.mb); /* x86-64 with AES-NI: the fast engine is the one tested here */
			assert_null(fo.ctx);
			aead_mb_disable_for_test(true);
			pair(&suites[si], esn, &eo, &ei);
			assert_null(eo.mb);
			assert_non_null(eo.ctx);
			aead_mb_disable_for_test(false);
			if (esn) {
				esp_sa_set_seq_for_test(&fo, 0x1fffffff0ull);
				esp_sa_set_seq_for_test(&eo, 0x1fffffff0ull);
				set_top(&fi.replay, 0x1fffffff0ull);
				set_top(&ei.replay, 0x1fffffff0ull);
			}
			for (size_t len = 20; len <= 9000; len += len < 200 ? 1 : 331) {
				make_ip(ip, len, 4);
				ssize_t a = esp_encap(&fo, ip, len, w_fast, sizeof(w_fast));
				ssize_t b = esp_encap(&eo, ip, len, w_evp, sizeof(w_evp));
				assert_true(a > 0);
				assert_int_equal(a, b);
				if (memcmp(w_fast, w_evp, (size_t)a) != 0)
					fail_msg("%s esn=%d len %zu: the engines seal differently", suites[si].name, esn, len);
				/* Each opens the other's packet. */
				assert_int_equal(esp_decap(&ei, w_fast, (size_t)a, out, sizeof(out), &nh), (ssize_t)len);
				assert_memory_equal(out, ip, len);
				assert_int_equal(esp_decap(&fi, w_evp, (size_t)b, out, sizeof(out), &nh), (ssize_t)len);
				assert_memory_equal(out, ip, len);
			}
			/* A failed check leaves no plaintext behind, in place or not. */
			make_ip(ip, 500, 4);
			ssize_t a = esp_encap(&fo, ip, 500, w_fast, sizeof(w_fast));
			w_fast[a - 1] ^= 0x40;
			memset(out, 0xaa, sizeof(out));
			assert_int_equal(esp_decap(&fi, w_fast, (size_t)a, out, sizeof(out), &nh), -EKEYREJECTED);
			for (size_t i = 0; i < 500; i++)
				if (out[i])
					fail_msg("%s esn=%d: byte %zu left after a failed ICV", suites[si].name, esn, i);
			size_t off = esp_payload_offset(&fo);
			assert_int_equal(esp_decap(&fi, w_fast, (size_t)a, w_fast + off, sizeof(w_fast) - off, &nh),
					 -EKEYREJECTED);
			assert_int_equal(fi.stats.auth_failures, 2);
			unpair(&fo, &fi);
			unpair(&eo, &ei);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kat_rfc7634),
		cmocka_unit_test(test_kat_gcm_draft),
		cmocka_unit_test(test_cbc_hmac_layout),
		cmocka_unit_test(test_round_trip_all),
		cmocka_unit_test(test_tamper_every_byte),
		cmocka_unit_test(test_truncate_everywhere),
		cmocka_unit_test(test_replay_drops),
		cmocka_unit_test(test_bad_trailers),
		cmocka_unit_test(test_sequence_exhaustion),
		cmocka_unit_test(test_lifetimes),
		cmocka_unit_test(test_params_and_errors),
		cmocka_unit_test(test_stats_add),
		cmocka_unit_test(test_spi_table),
	};
	const struct CMUnitTest agree[] = {
		cmocka_unit_test(test_aead_engines_agree),
	};
	int failed = cmocka_run_group_tests_name("esp (AEADs: intel-ipsec-mb)", tests, engine_fast, NULL);
	failed += cmocka_run_group_tests_name("esp (AEADs: OpenSSL EVP)", tests, engine_evp, engine_fast);
	failed += cmocka_run_group_tests_name("esp (AEAD engines agree)", agree, NULL, NULL);
	return failed;
}
