/*
 * esp_decap on hostile bytes. Input: mode | suite | bytes.
 *   mode 0: the bytes are an ESP packet for a fixed inbound SA (ICV fails
 *           mostly; the length, SPI and replay checks are what is reached).
 *   mode 1: the bytes are an inner packet: encapsulate, decapsulate, compare.
 *   mode 2: the bytes are a plaintext with its own trailer, sealed with the
 *           test hook, so the post-ICV checks (padding, next header, inner
 *           IP length) see arbitrary authenticated data.
 * suite: low 3 bits pick the cipher suite (7: AES-128-GCM through OpenSSL's
 * EVP rather than intel-ipsec-mb), bit 3 ESN, bit 4 replay off, bit 5 keeps
 * the input's SPI instead of the SA's, bit 6 gives the inbound SA the other
 * AEAD engine (modes 1 and 2: the engines must agree; ChaCha20-Poly1305 too).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esp/aead_mb.h"
#include "esp/esp.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define FUZZ_SPI 0xc0ffee01u

static const struct {
	enum esp_cipher cipher;
	uint16_t enc, integ;
} suites[8] = {
	{ ESP_AES_GCM_16, 128, 0 },        { ESP_AES_GCM_16, 256, 0 },
	{ ESP_CHACHA20_POLY1305, 256, 0 }, { ESP_AES_CBC_HMAC_SHA2, 128, 256 },
	{ ESP_AES_CBC_HMAC_SHA2, 128, 384 }, { ESP_AES_CBC_HMAC_SHA2, 256, 256 },
	{ ESP_AES_CBC_HMAC_SHA2, 256, 512 }, { ESP_AES_GCM_16, 128, 0 }, /* 7: through EVP */
};

static uint8_t wire[ESP_MAX_INNER + ESP_MAX_OVERHEAD], out[ESP_MAX_INNER + ESP_MAX_OVERHEAD];

static int sa_for(struct esp_sa *sa, uint8_t sel, bool outbound)
{
	static uint8_t keymat[128];
	for (size_t i = 0; i < sizeof(keymat); i++)
		keymat[i] = (uint8_t)(i * 7 + 3);
	const typeof(suites[0]) *s = &suites[sel & 7];
	struct esp_sa_params p = {
		.spi = FUZZ_SPI,
		.outbound = outbound,
		.cipher = s->cipher,
		.enc_key_bits = s->enc,
		.integ_bits = s->integ,
		.keymat = keymat,
		.keymat_len = s->enc / 8u + (s->cipher == ESP_AES_CBC_HMAC_SHA2 ? s->integ / 8u : ESP_SALT_LEN),
		.esn = sel & 8,
		.replay = !(sel & 16),
	};
	bool evp = (sel & 7) == 7;
	if (!outbound && (sel & 64))
		evp = !evp;
	aead_mb_disable_for_test(evp);
	int err = esp_sa_init(sa, &p);
	aead_mb_disable_for_test(false);
	return err;
}

static void decap_raw(uint8_t sel, const uint8_t *data, size_t len)
{
	struct esp_sa in;
	uint8_t nh = 0;

	CHECK(sa_for(&in, sel, false) == 0);
	memcpy(wire, data, len);
	if (!(sel & 32) && len >= 4) {
		wire[0] = FUZZ_SPI >> 24;
		wire[1] = FUZZ_SPI >> 16 & 0xff;
		wire[2] = FUZZ_SPI >> 8 & 0xff;
		wire[3] = FUZZ_SPI & 0xff;
	}
	ssize_t n = esp_decap(&in, wire, len, out, sizeof(out), &nh);
	CHECK(n < 0 || (size_t)n <= len);
	esp_sa_destroy(&in);
}

static void round_trip(uint8_t sel, const uint8_t *data, size_t len)
{
	struct esp_sa o, in;
	uint8_t nh = 0;

	CHECK(sa_for(&o, sel, true) == 0);
	CHECK(sa_for(&in, sel, false) == 0);
	ssize_t wl = esp_encap(&o, data, len, wire, sizeof(wire));
	if (wl >= 0) {
		CHECK((size_t)wl == esp_encap_len(&o, len));
		ssize_t n = esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh);
		/* Only the inner IP header can make it fail, and never the ICV. */
		CHECK(n == -EBADMSG || (n >= 0 && (size_t)n <= len && memcmp(out, data, (size_t)n) == 0));
		CHECK(in.stats.auth_failures == 0 && in.stats.replay_drops == 0);
		/* And once only. */
		if (in.replay.enabled)
			CHECK(esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh) == -EALREADY);
	} else {
		CHECK(wl == -EINVAL);
	}
	esp_sa_destroy(&o);
	esp_sa_destroy(&in);
}

static void sealed_trailer(uint8_t sel, const uint8_t *data, size_t len)
{
	struct esp_sa o, in;
	uint8_t nh = 0, iv[16] = { 0 };

	CHECK(sa_for(&o, sel, true) == 0);
	CHECK(sa_for(&in, sel, false) == 0);
	if (o.block == 16)
		len -= len % 16;
	if (len == 0)
		goto out;
	memcpy(iv, data, len < 16 ? len : 16);
	ssize_t wl = esp_seal_raw_for_test(&o, 1, iv, data, len, wire, sizeof(wire));
	CHECK(wl > 0);
	ssize_t n = esp_decap(&in, wire, (size_t)wl, out, sizeof(out), &nh);
	CHECK(n == -EBADMSG || (n >= 0 && (size_t)n <= len && memcmp(out, data, (size_t)n) == 0));
	CHECK(in.stats.auth_failures == 0);
out:
	esp_sa_destroy(&o);
	esp_sa_destroy(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size - 2 > ESP_MAX_INNER)
		return 0;
	uint8_t mode = data[0] % 3, sel = data[1];
	data += 2;
	size -= 2;
	switch (mode) {
	case 0: decap_raw(sel, data, size); break;
	case 1: round_trip(sel, data, size); break;
	default: sealed_trailer(sel, data, size); break;
	}
	return 0;
}
