/*
 * ESP's AEADs, AES-GCM (RFC 4106) and ChaCha20-Poly1305 (RFC 7634), through
 * Intel's multi-buffer IPsec library: its direct seal and open cost about a
 * quarter of OpenSSL 3.0's EVP sequence on a 1400-byte packet, since EVP looks
 * its parameters up by name on every IV and tag. OpenSSL stays the fallback
 * where the library cannot run.
 */
#ifndef IKETCP_ESP_AEAD_MB_H
#define IKETCP_ESP_AEAD_MB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "iketcp/compiler.h"

#define AEAD_MB_NONCE_LEN 12
#define AEAD_MB_TAG_LEN 16

enum aead_mb_kind {
	AEAD_MB_AES_GCM,           /* 16- or 32-byte key */
	AEAD_MB_CHACHA20_POLY1305, /* 32-byte key */
};

struct aead_mb;

/* A keyed context; NULL when the library is unusable here or the key is not. */
struct aead_mb *aead_mb_new(enum aead_mb_kind kind, const uint8_t *key, size_t key_len);
/* Wipes the key; NULL is fine. */
void aead_mb_free(struct aead_mb *a);

/*
 * Encrypts the n parts of the plaintext, one after the other, to out and
 * writes the tag. A part may lie at its own place in out (in place) or apart
 * from out.
 */
void aead_mb_seal(const struct aead_mb *a, const uint8_t nonce[AEAD_MB_NONCE_LEN], const uint8_t *aad,
		  size_t aad_len, uint8_t *out, const struct iovec *parts, unsigned n, uint8_t tag[AEAD_MB_TAG_LEN]);

/*
 * Decrypts in (len bytes) to out (the same place or disjoint) and checks the
 * tag in constant time; on a mismatch out is wiped and false returned.
 */
must_check bool aead_mb_open(const struct aead_mb *a, const uint8_t nonce[AEAD_MB_NONCE_LEN], const uint8_t *aad,
			     size_t aad_len, uint8_t *out, const uint8_t *in, size_t len,
			     const uint8_t tag[AEAD_MB_TAG_LEN]);

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
/* Tests: make aead_mb_new refuse (true), so SAs key OpenSSL's EVP instead, for differential checks. */
void aead_mb_disable_for_test(bool off);
#endif

#endif
