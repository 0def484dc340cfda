/*
 * AES-GCM for ESP (RFC 4106) through Intel's multi-buffer IPsec library, whose
 * one-call seal and open cost about a quarter of OpenSSL 3.0's EVP sequence
 * on a 1400-byte packet: EVP looks its parameters up by name on every IV and
 * tag. OpenSSL stays the fallback where the library cannot run.
 */
#ifndef IKETCP_ESP_AESGCM_H
#define IKETCP_ESP_AESGCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iketcp/compiler.h"

#define AESGCM_NONCE_LEN 12
#define AESGCM_TAG_LEN 16

struct aesgcm;

/* A keyed context for a 16- or 32-byte key; NULL when the library is unusable here or the key is not. */
struct aesgcm *aesgcm_new(const uint8_t *key, size_t key_len);
/* Wipes the expanded key; NULL is fine. */
void aesgcm_free(struct aesgcm *g);

/*
 * Encrypts p1 | p2 (l1 + l2 bytes) to out and writes the tag. p1 may be out
 * itself (in place) or disjoint from it; p2 (a trailer) is disjoint.
 */
void aesgcm_seal(const struct aesgcm *g, const uint8_t nonce[AESGCM_NONCE_LEN], const uint8_t *aad,
		 size_t aad_len, uint8_t *out, const uint8_t *p1, size_t l1, const uint8_t *p2, size_t l2,
		 uint8_t tag[AESGCM_TAG_LEN]);

/*
 * Decrypts in (len bytes) to out (the same place or disjoint) and checks the
 * tag in constant time; on a mismatch out is wiped and false returned.
 */
must_check bool aesgcm_open(const struct aesgcm *g, const uint8_t nonce[AESGCM_NONCE_LEN], const uint8_t *aad,
			    size_t aad_len, uint8_t *out, const uint8_t *in, size_t len,
			    const uint8_t tag[AESGCM_TAG_LEN]);

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
/* Tests: make aesgcm_new refuse (true), so SAs key OpenSSL's EVP instead, for differential checks. */
void aesgcm_disable_for_test(bool off);
#endif

#endif
