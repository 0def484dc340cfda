/*
 * IKEv2 cryptography over OpenSSL 3 EVP: the PRF and key derivation
 * (RFC 7296 sections 2.13, 2.14, 2.17, 2.18), Diffie-Hellman in the KE
 * payload encoding (RFC 7296 3.4, RFC 5903 7, RFC 8031), and SK payload
 * protection (RFC 7296 3.14, RFC 5282).
 *
 * Every function returns 0 (or a length) or a negative errno: -EINVAL bad
 * argument, -ENOMEM, -EBADMSG malformed peer input, -EKEYREJECTED ICV
 * mismatch, -ENOSPC output buffer too small, -EIO OpenSSL failure.
 */
#ifndef IKETCP_IKE_CRYPTO_H
#define IKETCP_IKE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ike/suite.h"
#include "iketcp/compiler.h"
#include "iketcp/secret.h"

/* A read-only byte string, for building PRF inputs without copying. */
struct ike_blob {
	const uint8_t *p;
	size_t len;
};

#define IKE_PRF_MAX_OUT 64
#define IKE_PRF_PLUS_MAX_BLOCKS 255 /* the counter is one octet (RFC 7296 2.13) */

/* ---- PRF and key derivation (prf.c) ----------------------------------- */

/* out[0..prf->out_len) = prf(key, parts[0] | parts[1] | ...). */
must_check int ike_prf(const struct ike_prf_alg *prf, const uint8_t *key, size_t key_len,
		       const struct ike_blob *parts, size_t nparts, uint8_t *out);

/* prf+ (K, S): T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n); out gets the
 * first out_len bytes of T1 | T2 | ... S is the concatenation of seed[].
 * -EINVAL when out_len needs more than 255 blocks. */
must_check int ike_prf_plus(const struct ike_prf_alg *prf, const uint8_t *key, size_t key_len,
			    const struct ike_blob *seed, size_t nseed, uint8_t *out, size_t out_len);

/* SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 2.14). */
must_check int ike_skeyseed(const struct ike_prf_alg *prf, struct ike_blob ni, struct ike_blob nr,
			    const struct secret *gir, struct secret **skeyseed);

/* SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 2.18); prf is
 * the OLD IKE SA's PRF. */
must_check int ike_skeyseed_rekey(const struct ike_prf_alg *old_prf, const struct secret *old_sk_d,
				  const struct secret *gir_new, struct ike_blob ni,
				  struct ike_blob nr, struct secret **skeyseed);

struct ike_sa_keys {
	struct secret *sk_d;
	struct secret *sk_ai, *sk_ar;  /* NULL for AEAD suites */
	struct secret *sk_ei, *sk_er;  /* AEAD: key | salt */
	struct secret *sk_pi, *sk_pr;
};

/* {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} =
 *     prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr), lengths from the suite. */
must_check int ike_sa_keys_derive(const struct ike_suite *s, const struct secret *skeyseed,
				  struct ike_blob ni, struct ike_blob nr, const uint8_t spi_i[8],
				  const uint8_t spi_r[8], struct ike_sa_keys *out);

/* IKE_SA_INIT: SKEYSEED from g^ir, then the seven keys; SKEYSEED is wiped. */
must_check int ike_sa_keys_initial(const struct ike_suite *s, const struct secret *gir,
				   struct ike_blob ni, struct ike_blob nr, const uint8_t spi_i[8],
				   const uint8_t spi_r[8], struct ike_sa_keys *out);

/* IKE SA rekey (RFC 7296 2.18): SKEYSEED with the old PRF and SK_d, keys
 * with the new suite and the new SPIs. */
must_check int ike_sa_keys_rekey(const struct ike_prf_alg *old_prf, const struct secret *old_sk_d,
				 const struct ike_suite *new_suite, const struct secret *gir_new,
				 struct ike_blob ni, struct ike_blob nr, const uint8_t spi_i[8],
				 const uint8_t spi_r[8], struct ike_sa_keys *out);

/* Wipes and frees every key, leaving all pointers NULL. */
void ike_sa_keys_free(struct ike_sa_keys *k);

/* The SK keys for one direction (RFC 7296 2.14): messages from the original
 * initiator use SK_ei / SK_ai, those from the original responder SK_er /
 * SK_ar, whichever side of an exchange sends them. integ is NULL for AEAD. */
void ike_sa_keys_dir(const struct ike_sa_keys *k, bool we_are_initiator, bool outbound,
		     const struct secret **enc, const struct secret **integ);

/* KEYMAT = prf+ (SK_d, [g^ir (new) |] Ni | Nr) (RFC 7296 2.17); gir may be NULL. */
must_check int ike_child_keymat(const struct ike_prf_alg *prf, const struct secret *sk_d,
				const struct secret *gir, struct ike_blob ni, struct ike_blob nr,
				uint8_t *out, size_t out_len);

/* Child SA keys, initiator-to-responder first (RFC 7296 2.17). */
struct child_keys {
	struct secret *encr_i, *integ_i;  /* integ_* NULL for AEAD; encr_* = key | salt */
	struct secret *encr_r, *integ_r;
};

must_check int child_keys_derive(const struct ike_prf_alg *prf, const struct secret *sk_d,
				 const struct esp_suite *s, const struct secret *gir,
				 struct ike_blob ni, struct ike_blob nr, struct child_keys *out);
void child_keys_free(struct child_keys *k);

/* ---- Diffie-Hellman (dh.c) -------------------------------------------- */

struct ike_dh;

bool ike_dh_supported(uint16_t group);
/* Bytes of the KE payload's Key Exchange Data for group; 0 if unsupported. */
size_t ike_dh_public_len(uint16_t group);
/* A fresh private key for group; NULL when unsupported or on failure. */
must_check struct ike_dh *ike_dh_new(uint16_t group);
/* Tests and known-answer vectors: a fixed private key. ECP: big-endian
 * scalar of the field length; X25519/X448: raw 32/56 bytes. MODP is not
 * supported (NULL). */
must_check struct ike_dh *ike_dh_new_with_private(uint16_t group, const uint8_t *priv, size_t len);
uint16_t ike_dh_group(const struct ike_dh *dh);
/* Our public value in KE payload encoding: MODP big-endian padded to the
 * prime length; ECP x | y each padded to the field length (no 0x04, RFC
 * 5903 section 7); X25519/X448 raw. *len is the capacity in, bytes out. */
must_check int ike_dh_public(const struct ike_dh *dh, uint8_t *out, size_t *len);
/* g^ir from the peer's KE data. -EBADMSG for a wrong length, a point not on
 * the curve, 0/1/p-1 (MODP) or an all-zero X25519/X448 result. The shared
 * secret is padded to the public length (MODP), the x coordinate (ECP) or
 * raw (X25519/X448). */
must_check int ike_dh_derive(struct ike_dh *dh, const uint8_t *peer, size_t len,
			     struct secret **shared);
void ike_dh_free(struct ike_dh *dh);

/* ---- SK payload protection (sk.c) ------------------------------------- */

/*
 * The Encrypted payload body (RFC 7296 3.14, RFC 5282 3):
 *
 *   IV | E( inner payloads | padding | pad length ) | ICV
 *
 * aad is every message byte before the IV: the IKE header and the SK (or
 * SKF) generic payload header, with their lengths already final.
 *   AEAD:     nonce = salt (last 4 bytes of enc_key) | IV; AAD = aad; ICV = tag.
 *   CBC+HMAC: ICV = HMAC(integ_key, aad | IV | ciphertext) truncated.
 * enc_key is SK_ei/SK_er (key | salt for AEAD); integ_key SK_ai/SK_ar or
 * NULL for AEAD.
 */

/* IV + pad + pad length byte + ICV that sealing plain_len bytes adds. */
size_t sk_overhead(const struct ike_suite *s, size_t plain_len);

/* Writes IV | ciphertext | ICV into out; a random IV. Returns bytes written.
 * plain may be out + iv_len (encrypt in place). */
must_check ssize_t sk_seal(const struct ike_suite *s, const struct secret *enc_key,
			   const struct secret *integ_key, const uint8_t *aad, size_t aad_len,
			   const uint8_t *plain, size_t plain_len, uint8_t *out, size_t out_cap);

/* The same with a caller-chosen IV of s->encr->iv_len bytes (a counter, or a
 * known-answer test). An AEAD IV must never repeat under one key. */
must_check ssize_t sk_seal_iv(const struct ike_suite *s, const struct secret *enc_key,
			      const struct secret *integ_key, const uint8_t *iv,
			      const uint8_t *aad, size_t aad_len, const uint8_t *plain,
			      size_t plain_len, uint8_t *out, size_t out_cap);

/* Verifies and decrypts; returns the inner payload length written to
 * plain_out (which needs room for the whole ciphertext, and may be
 * sealed + iv_len to decrypt in place). -EKEYREJECTED on an
 * ICV mismatch (plain_out is wiped), -EBADMSG when the structure is wrong
 * (too short, not whole blocks, pad length beyond the data). */
must_check ssize_t sk_open(const struct ike_suite *s, const struct secret *enc_key,
			   const struct secret *integ_key, const uint8_t *aad, size_t aad_len,
			   const uint8_t *sealed, size_t sealed_len, uint8_t *plain_out, size_t cap);

#endif
