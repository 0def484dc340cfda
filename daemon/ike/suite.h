/*
 * IKEv2 / ESP cryptographic suites: the transforms we implement, with the
 * IANA numbers of RFC 7296 section 3.3.2 ("IKEv2 Transform Type N Transform
 * IDs" registries), and the FortiOS proposal names that select them.
 *
 * The Transform IDs themselves (ENCR_*, PRF_*, AUTH_*, MODP_* / ECP_* /
 * CURVE_*) are wire constants and live in ike/wire.h.
 */
#ifndef IKETCP_IKE_SUITE_H
#define IKETCP_IKE_SUITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ike/wire.h"
#include "iketcp/compiler.h"

struct ike_encr_alg {
	uint16_t id;          /* enum ike_encr_id */
	uint16_t key_bits;    /* Key Length attribute value; 0 = attribute absent */
	const char *name;     /* for logs and status, e.g. "AES_GCM_16_128" */
	const char *evp;      /* OpenSSL cipher name */
	uint8_t key_len;      /* cipher key bytes */
	uint8_t salt_len;     /* AEAD: bytes after the key in SK_e / KEYMAT (RFC 5282, RFC 7634) */
	uint8_t iv_len;       /* explicit IV carried in each message */
	uint8_t block_len;    /* padding alignment of plaintext | pad | pad length */
	uint8_t icv_len;      /* AEAD tag bytes; 0 when an integrity transform supplies the ICV */
	bool aead;
};

struct ike_prf_alg {
	uint16_t id;          /* enum ike_prf_id */
	const char *name;     /* "PRF_HMAC_SHA2_256" */
	const char *md;       /* OpenSSL digest name */
	uint8_t out_len;      /* prf output bytes */
	uint8_t key_len;      /* preferred key size: SK_d, SK_pi, SK_pr (RFC 7296 2.13) */
};

struct ike_integ_alg {
	uint16_t id;          /* enum ike_integ_id */
	const char *name;     /* "HMAC_SHA2_256_128" */
	const char *md;
	uint8_t key_len;      /* SK_a length (RFC 4868: the full hash length) */
	uint8_t icv_len;      /* truncated output */
};

/* What an IKE SA uses. integ is NULL exactly when encr->aead. */
struct ike_suite {
	const struct ike_encr_alg *encr;
	const struct ike_prf_alg *prf;
	const struct ike_integ_alg *integ;
	uint16_t ke;          /* enum ike_dh_id; 0 when not chosen (FortiOS: dhgrp is separate) */
};

/* What an ESP Child SA uses. integ is NULL exactly when encr->aead. */
struct esp_suite {
	const struct ike_encr_alg *encr;
	const struct ike_integ_alg *integ;
};

/* Table lookups; NULL when we do not implement the transform. key_bits is the
 * Key Length attribute (0 when absent, as for ChaCha20-Poly1305). */
const struct ike_encr_alg *ike_encr_lookup(uint16_t id, uint16_t key_bits);
const struct ike_prf_alg *ike_prf_lookup(uint16_t id);
const struct ike_integ_alg *ike_integ_lookup(uint16_t id);
/* "MODP_2048", "ECP_256", "CURVE25519"...; NULL for groups we do not know. */
const char *ike_ke_name(uint16_t id);

/* Key sizes derived from a suite (RFC 7296 section 2.14, RFC 5282 section 7.1). */
size_t ike_suite_sk_e_len(const struct ike_suite *s);   /* key + salt */
size_t ike_suite_sk_a_len(const struct ike_suite *s);   /* 0 for AEAD */
size_t ike_suite_sk_p_len(const struct ike_suite *s);   /* = SK_d length */
size_t esp_suite_encr_len(const struct esp_suite *s);   /* key + salt */
size_t esp_suite_integ_len(const struct esp_suite *s);

/* Whether the suite is internally consistent (AEAD iff no integ, PRF set). */
bool ike_suite_valid(const struct ike_suite *s);
bool esp_suite_valid(const struct esp_suite *s);

/* FortiOS "proposal" names (config keys phase1 proposal / phase2 proposal).
 * Phase 1: "aes128gcm-prfsha256", "aes256-sha384" (CBC + HMAC integ + the
 * PRF of the same hash), "chacha20poly1305-prfsha512"...
 * Phase 2: "aes128gcm", "chacha20poly1305", "aes256-sha512"...
 * Return 0, or -EINVAL for a name we do not implement. out->ke is left 0. */
must_check int suite_from_fortios_ike(const char *name, struct ike_suite *out);
must_check int suite_from_fortios_esp(const char *name, struct esp_suite *out);

/* "AES_GCM_16_128/PRF_HMAC_SHA2_256[/ECP_256]" or
 * "AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256[/MODP_2048]". Always
 * NUL-terminates (truncating) when len > 0; returns buf. */
const char *ike_suite_name(const struct ike_suite *s, char *buf, size_t len);
const char *esp_suite_name(const struct esp_suite *s, char *buf, size_t len);

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
/* ENCR_NULL with no ICV: lets fuzzers and tests reach the inner payloads.
 * Compiled only into test and fuzz builds: a zero-length ICV must never be
 * negotiable in production. */
extern const struct ike_suite ike_suite_null;
#endif

#endif
