/* The transform tables, suite key sizes, FortiOS proposal names and suite names. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ike/suite.h"
#include "iketcp/compiler.h"

/*
 * AEAD salts: RFC 5282 section 7.1 (GCM: 4 bytes taken after the key from
 * KEYMAT / SK_e) and RFC 7634 section 2 (ChaCha20-Poly1305: 4 bytes).
 * Explicit IVs: 8 bytes for both AEADs, 16 for CBC (RFC 3602).
 * Padding: CBC plaintext | pad | pad length must fill whole blocks; the
 * AEADs are stream-like, so any length is fine (block 1).
 */
static const struct ike_encr_alg encr_algs[] = {
	{ ENCR_AES_CBC, 128, "AES_CBC_128", "AES-128-CBC", 16, 0, 16, 16, 0, false },
	{ ENCR_AES_CBC, 256, "AES_CBC_256", "AES-256-CBC", 32, 0, 16, 16, 0, false },
	{ ENCR_AES_GCM_16, 128, "AES_GCM_16_128", "AES-128-GCM", 16, 4, 8, 1, 16, true },
	{ ENCR_AES_GCM_16, 256, "AES_GCM_16_256", "AES-256-GCM", 32, 4, 8, 1, 16, true },
	{ ENCR_CHACHA20_POLY1305, 0, "CHACHA20_POLY1305", "ChaCha20-Poly1305", 32, 4, 8, 1, 16, true },
};

/* RFC 4868 section 2.1.2 and RFC 7296 section 2.13: for HMAC PRFs the
 * preferred key size is the output length. */
static const struct ike_prf_alg prf_algs[] = {
	{ PRF_HMAC_SHA1, "PRF_HMAC_SHA1", "SHA1", 20, 20 },
	{ PRF_HMAC_SHA2_256, "PRF_HMAC_SHA2_256", "SHA2-256", 32, 32 },
	{ PRF_HMAC_SHA2_384, "PRF_HMAC_SHA2_384", "SHA2-384", 48, 48 },
	{ PRF_HMAC_SHA2_512, "PRF_HMAC_SHA2_512", "SHA2-512", 64, 64 },
};

/* RFC 4868 section 2.1: key = full hash length, ICV = half of it. */
static const struct ike_integ_alg integ_algs[] = {
	{ AUTH_HMAC_SHA2_256_128, "HMAC_SHA2_256_128", "SHA2-256", 32, 16 },
	{ AUTH_HMAC_SHA2_384_192, "HMAC_SHA2_384_192", "SHA2-384", 48, 24 },
	{ AUTH_HMAC_SHA2_512_256, "HMAC_SHA2_512_256", "SHA2-512", 64, 32 },
};

static const struct {
	uint16_t id;
	const char *name;
} ke_names[] = {
	{ MODP_2048, "MODP_2048" },
	{ MODP_3072, "MODP_3072" },
	{ MODP_4096, "MODP_4096" },
	{ ECP_256, "ECP_256" },
	{ ECP_384, "ECP_384" },
	{ ECP_521, "ECP_521" },
	{ CURVE_25519, "CURVE25519" },
	{ CURVE_448, "CURVE448" },
};

const struct ike_encr_alg *ike_encr_lookup(uint16_t id, uint16_t key_bits)
{
	for (size_t i = 0; i < ARRAY_SIZE(encr_algs); i++)
		if (encr_algs[i].id == id && encr_algs[i].key_bits == key_bits)
			return &encr_algs[i];
	return NULL;
}

const struct ike_prf_alg *ike_prf_lookup(uint16_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(prf_algs); i++)
		if (prf_algs[i].id == id)
			return &prf_algs[i];
	return NULL;
}

const struct ike_integ_alg *ike_integ_lookup(uint16_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(integ_algs); i++)
		if (integ_algs[i].id == id)
			return &integ_algs[i];
	return NULL;
}

const char *ike_ke_name(uint16_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(ke_names); i++)
		if (ke_names[i].id == id)
			return ke_names[i].name;
	return NULL;
}

size_t ike_suite_sk_e_len(const struct ike_suite *s)
{
	return (size_t)s->encr->key_len + s->encr->salt_len;
}

size_t ike_suite_sk_a_len(const struct ike_suite *s)
{
	return s->integ ? s->integ->key_len : 0;
}

size_t ike_suite_sk_p_len(const struct ike_suite *s)
{
	return s->prf->key_len;
}

size_t esp_suite_encr_len(const struct esp_suite *s)
{
	return (size_t)s->encr->key_len + s->encr->salt_len;
}

size_t esp_suite_integ_len(const struct esp_suite *s)
{
	return s->integ ? s->integ->key_len : 0;
}

bool ike_suite_valid(const struct ike_suite *s)
{
	return s && s->encr && s->prf && (s->encr->aead == (s->integ == NULL));
}

bool esp_suite_valid(const struct esp_suite *s)
{
	return s && s->encr && (s->encr->aead == (s->integ == NULL));
}

/*
 * FortiOS names: "<cipher>[-<hash>]" where cipher is aes128, aes256 (CBC),
 * aes128gcm, aes256gcm or chacha20poly1305. In phase 1 an AEAD cipher is
 * followed by "prfsha<N>" (the PRF alone) and CBC by "sha<N>" (integrity and
 * PRF both from that hash). In phase 2 AEADs stand alone.
 */
static const struct {
	const char *name;
	uint16_t id, key_bits;
} fortios_ciphers[] = {
	{ "aes128", ENCR_AES_CBC, 128 },
	{ "aes256", ENCR_AES_CBC, 256 },
	{ "aes128gcm", ENCR_AES_GCM_16, 128 },
	{ "aes256gcm", ENCR_AES_GCM_16, 256 },
	{ "chacha20poly1305", ENCR_CHACHA20_POLY1305, 0 },
};

static const struct {
	const char *name;
	uint16_t prf, integ;
} fortios_hashes[] = {
	{ "sha256", PRF_HMAC_SHA2_256, AUTH_HMAC_SHA2_256_128 },
	{ "sha384", PRF_HMAC_SHA2_384, AUTH_HMAC_SHA2_384_192 },
	{ "sha512", PRF_HMAC_SHA2_512, AUTH_HMAC_SHA2_512_256 },
};

/* Splits "cipher-rest" and finds the cipher; *rest is NULL without '-'. */
static const struct ike_encr_alg *fortios_cipher(const char *name, const char **rest)
{
	const char *dash = strchr(name, '-');
	size_t n = dash ? (size_t)(dash - name) : strlen(name);

	*rest = dash ? dash + 1 : NULL;
	for (size_t i = 0; i < ARRAY_SIZE(fortios_ciphers); i++)
		if (strlen(fortios_ciphers[i].name) == n && !strncmp(fortios_ciphers[i].name, name, n))
			return ike_encr_lookup(fortios_ciphers[i].id, fortios_ciphers[i].key_bits);
	return NULL;
}

static int fortios_hash(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(fortios_hashes); i++)
		if (!strcmp(fortios_hashes[i].name, s))
			return (int)i;
	return -1;
}

int suite_from_fortios_ike(const char *name, struct ike_suite *out)
{
	const struct ike_encr_alg *encr;
	const char *rest;
	int h;

	if (!name || !out)
		return -EINVAL;
	encr = fortios_cipher(name, &rest);
	if (!encr || !rest)
		return -EINVAL;
	if (encr->aead) {
		if (strncmp(rest, "prf", 3))
			return -EINVAL;
		h = fortios_hash(rest + 3);
	} else {
		h = fortios_hash(rest);
	}
	if (h < 0)
		return -EINVAL;
	*out = (struct ike_suite){
		.encr = encr,
		.prf = ike_prf_lookup(fortios_hashes[h].prf),
		.integ = encr->aead ? NULL : ike_integ_lookup(fortios_hashes[h].integ),
	};
	return 0;
}

int suite_from_fortios_esp(const char *name, struct esp_suite *out)
{
	const struct ike_encr_alg *encr;
	const char *rest;
	int h = -1;

	if (!name || !out)
		return -EINVAL;
	encr = fortios_cipher(name, &rest);
	if (!encr)
		return -EINVAL;
	if (encr->aead != (rest == NULL))
		return -EINVAL;
	if (rest && (h = fortios_hash(rest)) < 0)
		return -EINVAL;
	*out = (struct esp_suite){
		.encr = encr,
		.integ = h < 0 ? NULL : ike_integ_lookup(fortios_hashes[h].integ),
	};
	return 0;
}

const char *ike_suite_name(const struct ike_suite *s, char *buf, size_t len)
{
	const char *ke = s->ke ? ike_ke_name(s->ke) : NULL;

	if (!len)
		return buf;
	snprintf(buf, len, "%s%s%s/%s%s%s", s->encr ? s->encr->name : "?",
		 s->integ ? "/" : "", s->integ ? s->integ->name : "",
		 s->prf ? s->prf->name : "?", ke ? "/" : "", ke ? ke : "");
	return buf;
}

const char *esp_suite_name(const struct esp_suite *s, char *buf, size_t len)
{
	if (!len)
		return buf;
	snprintf(buf, len, "%s%s%s", s->encr ? s->encr->name : "?",
		 s->integ ? "/" : "", s->integ ? s->integ->name : "");
	return buf;
}

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
static const struct ike_encr_alg encr_null = {
	ENCR_NULL, 0, "NULL", NULL, 0, 0, 8, 1, 0, true,
};

const struct ike_suite ike_suite_null = {
	.encr = &encr_null,
	.prf = &prf_algs[1],
	.integ = NULL,
};
#endif
