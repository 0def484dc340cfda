/*
 * The Encrypted (SK) payload body: RFC 7296 section 3.14 (AES-CBC with
 * HMAC-SHA2 truncated ICV), RFC 5282 (AES-GCM in IKEv2) and RFC 7634
 * (ChaCha20-Poly1305 in IKEv2).
 *
 *   +----------------+------------------------------------+-----------+
 *   | IV (8 or 16)   | E( inner payloads | pad | padlen ) | ICV       |
 *   +----------------+------------------------------------+-----------+
 *
 * The sender's pad bytes are zero (RFC 7296: any value); the receiver
 * checks only that the pad length stays inside the decrypted data.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ike/crypto.h"

#define SK_MAX_ICV 32
#define SK_NONCE_LEN 12 /* salt (4) | IV (8), RFC 5282 section 4, RFC 7634 section 2 */

/* Ciphers fetched once: implicit fetches per message would dominate. */
static const char *const cipher_names[] = {
	"AES-128-CBC", "AES-256-CBC", "AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305",
};
static EVP_CIPHER *ciphers[ARRAY_SIZE(cipher_names)];
static EVP_MAC *hmac;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_all(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(cipher_names); i++)
		ciphers[i] = EVP_CIPHER_fetch(NULL, cipher_names[i], NULL);
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static const EVP_CIPHER *cipher_of(const struct ike_encr_alg *e)
{
	pthread_once(&fetch_once, fetch_all);
	for (size_t i = 0; e->evp && i < ARRAY_SIZE(cipher_names); i++)
		if (!strcmp(cipher_names[i], e->evp))
			return ciphers[i];
	return NULL;
}

static size_t icv_len(const struct ike_suite *s)
{
	return s->encr->aead ? s->encr->icv_len : s->integ->icv_len;
}

static size_t pad_len(const struct ike_encr_alg *e, size_t plain_len)
{
	size_t b = e->block_len ? e->block_len : 1;

	return (b - (plain_len + 1) % b) % b;
}

size_t sk_overhead(const struct ike_suite *s, size_t plain_len)
{
	return s->encr->iv_len + pad_len(s->encr, plain_len) + 1 + icv_len(s);
}

/* Checks the suite and the key sizes it implies. */
static int check_keys(const struct ike_suite *s, const struct secret *enc_key,
		      const struct secret *integ_key)
{
	if (!ike_suite_valid(s) || !enc_key || enc_key->len != ike_suite_sk_e_len(s))
		return -EINVAL;
	if (!s->encr->aead && (!integ_key || integ_key->len != s->integ->key_len))
		return -EINVAL;
	pthread_once(&fetch_once, fetch_all);
	if (s->encr->evp && !cipher_of(s->encr))
		return -EIO;
	if (!s->encr->aead && !hmac)
		return -EIO;
	return 0;
}

/* HMAC(integ_key, aad | iv | ct) truncated to the suite's ICV length. */
static int cbc_icv(const struct ike_suite *s, const struct secret *integ_key, const uint8_t *aad,
		   size_t aad_len, const uint8_t *iv_ct, size_t iv_ct_len, uint8_t *icv)
{
	uint8_t full[EVP_MAX_MD_SIZE];
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;
	size_t n = 0;
	int err = -EIO;

	if (!(ctx = EVP_MAC_CTX_new(hmac)))
		return -ENOMEM;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)s->integ->md, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, integ_key->p, integ_key->len, params) &&
	    (!aad_len || EVP_MAC_update(ctx, aad, aad_len)) &&
	    EVP_MAC_update(ctx, iv_ct, iv_ct_len) && EVP_MAC_final(ctx, full, &n, sizeof(full)) &&
	    n >= s->integ->icv_len) {
		memcpy(icv, full, s->integ->icv_len);
		err = 0;
	}
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(full, sizeof(full));
	return err;
}

/* Sets up ctx for one message: key and IV (CBC) or nonce and AAD (AEAD). */
static int cipher_init(EVP_CIPHER_CTX *ctx, const struct ike_suite *s, const struct secret *enc_key,
		       const uint8_t *iv, const uint8_t *aad, size_t aad_len, int enc)
{
	const struct ike_encr_alg *e = s->encr;
	uint8_t nonce[SK_NONCE_LEN];
	int outl, ok;

	if (!e->aead) {
		ok = EVP_CipherInit_ex2(ctx, cipher_of(e), enc_key->p, iv, enc, NULL) &&
		     EVP_CIPHER_CTX_set_padding(ctx, 0);
		return ok ? 0 : -EIO;
	}
	memcpy(nonce, enc_key->p + e->key_len, e->salt_len);
	memcpy(nonce + e->salt_len, iv, e->iv_len);
	ok = EVP_CipherInit_ex2(ctx, cipher_of(e), enc_key->p, nonce, enc, NULL) &&
	     (!aad_len || EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len));
	OPENSSL_cleanse(nonce, sizeof(nonce));
	return ok ? 0 : -EIO;
}

ssize_t sk_seal_iv(const struct ike_suite *s, const struct secret *enc_key,
		   const struct secret *integ_key, const uint8_t *iv, const uint8_t *aad,
		   size_t aad_len, const uint8_t *plain, size_t plain_len, uint8_t *out,
		   size_t out_cap)
{
	uint8_t tail[256] = { 0 };
	EVP_CIPHER_CTX *ctx = NULL;
	size_t pad, ct_len, icv, total;
	uint8_t *ct;
	int outl, n = 0, err;

	if (!s || !iv || !out || (!plain && plain_len) || (!aad && aad_len) || plain_len > INT32_MAX / 2 ||
	    aad_len > INT32_MAX)
		return -EINVAL;
	if ((err = check_keys(s, enc_key, integ_key)))
		return err;
	pad = pad_len(s->encr, plain_len);
	ct_len = plain_len + pad + 1;
	icv = icv_len(s);
	total = s->encr->iv_len + ct_len + icv;
	if (out_cap < total)
		return -ENOSPC;
	/* plain may already sit at out + iv_len (in place); memmove keeps the IV copy safe. */
	memmove(out, iv, s->encr->iv_len);
	ct = out + s->encr->iv_len;
	tail[pad] = (uint8_t)pad;

	if (!s->encr->evp) { /* ENCR_NULL: test and fuzz builds only */
		memmove(ct, plain, plain_len);
		memcpy(ct + plain_len, tail, pad + 1);
		return (ssize_t)total;
	}
	err = -EIO;
	if (!(ctx = EVP_CIPHER_CTX_new()) || cipher_init(ctx, s, enc_key, iv, aad, aad_len, 1))
		goto out;
	if ((plain_len && !EVP_EncryptUpdate(ctx, ct, &outl, plain, (int)plain_len)) ||
	    !EVP_EncryptUpdate(ctx, ct + (plain_len ? outl : 0), &n, tail, (int)(pad + 1)))
		goto out;
	n += plain_len ? outl : 0;
	if (!EVP_EncryptFinal_ex(ctx, ct + n, &outl) || (size_t)(n + outl) != ct_len)
		goto out;
	if (s->encr->aead) {
		if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)icv, ct + ct_len))
			goto out;
	} else if (cbc_icv(s, integ_key, aad, aad_len, out, s->encr->iv_len + ct_len, ct + ct_len)) {
		goto out;
	}
	err = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (err) {
		OPENSSL_cleanse(out, MIN(out_cap, total));
		return err;
	}
	return (ssize_t)total;
}

ssize_t sk_seal(const struct ike_suite *s, const struct secret *enc_key,
		const struct secret *integ_key, const uint8_t *aad, size_t aad_len,
		const uint8_t *plain, size_t plain_len, uint8_t *out, size_t out_cap)
{
	uint8_t iv[16];

	if (!s || !s->encr || s->encr->iv_len > sizeof(iv))
		return -EINVAL;
	/* A random IV: CBC needs unpredictability (RFC 7296 3.14); the AEADs
	 * need uniqueness, and IKE sends far fewer than 2^32 messages per key. */
	if (RAND_bytes(iv, s->encr->iv_len) != 1)
		return -EIO;
	return sk_seal_iv(s, enc_key, integ_key, iv, aad, aad_len, plain, plain_len, out, out_cap);
}

/* Authenticates and decrypts ct_len bytes into plain_out (ct_len of room). */
static int open_body(const struct ike_suite *s, const struct secret *enc_key,
		     const struct secret *integ_key, const uint8_t *aad, size_t aad_len,
		     const uint8_t *sealed, size_t ct_len, uint8_t *plain_out)
{
	const uint8_t *iv = sealed, *ct = sealed + s->encr->iv_len;
	size_t icv = icv_len(s);
	uint8_t want[SK_MAX_ICV], tag[SK_MAX_ICV];
	EVP_CIPHER_CTX *ctx = NULL;
	int outl, n = 0, err;

	if (!s->encr->evp) { /* ENCR_NULL: test and fuzz builds only */
		memmove(plain_out, ct, ct_len);
		return 0;
	}
	if (!s->encr->aead) {
		/* Encrypt-then-MAC: authenticate before touching the ciphertext. */
		err = cbc_icv(s, integ_key, aad, aad_len, sealed, s->encr->iv_len + ct_len, want);
		if (!err && CRYPTO_memcmp(want, ct + ct_len, icv))
			err = -EKEYREJECTED;
		OPENSSL_cleanse(want, sizeof(want));
		if (err)
			return err;
	}
	err = -EIO;
	if (!(ctx = EVP_CIPHER_CTX_new()) || cipher_init(ctx, s, enc_key, iv, aad, aad_len, 0))
		goto out;
	if (s->encr->aead) {
		memcpy(tag, ct + ct_len, icv);
		if (!EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)icv, tag))
			goto out;
	}
	if (!EVP_DecryptUpdate(ctx, plain_out, &n, ct, (int)ct_len))
		goto out;
	/* For the AEADs this is where the tag is checked. */
	if (!EVP_DecryptFinal_ex(ctx, plain_out + n, &outl)) {
		err = s->encr->aead ? -EKEYREJECTED : -EIO;
		goto out;
	}
	if ((size_t)(n + outl) == ct_len)
		err = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return err;
}

ssize_t sk_open(const struct ike_suite *s, const struct secret *enc_key,
		const struct secret *integ_key, const uint8_t *aad, size_t aad_len,
		const uint8_t *sealed, size_t sealed_len, uint8_t *plain_out, size_t cap)
{
	size_t icv, ct_len, block;
	int err;

	if (!s || !plain_out || (!sealed && sealed_len) || (!aad && aad_len) || sealed_len > INT32_MAX ||
	    aad_len > INT32_MAX)
		return -EINVAL;
	if ((err = check_keys(s, enc_key, integ_key)))
		return err;
	icv = icv_len(s);
	block = s->encr->block_len ? s->encr->block_len : 1;
	/* Structure first: IV, at least the pad length octet, whole blocks, ICV. */
	if (sealed_len < s->encr->iv_len + 1 + icv)
		return -EBADMSG;
	ct_len = sealed_len - s->encr->iv_len - icv;
	if (ct_len % block)
		return -EBADMSG;
	if (cap < ct_len)
		return -ENOSPC;
	err = open_body(s, enc_key, integ_key, aad, aad_len, sealed, ct_len, plain_out);
	/* Authentic, but the pad length must stay inside the decrypted data. */
	if (!err && (size_t)plain_out[ct_len - 1] + 1 > ct_len)
		err = -EBADMSG;
	if (err) {
		OPENSSL_cleanse(plain_out, ct_len);
		return err;
	}
	return (ssize_t)(ct_len - 1 - plain_out[ct_len - 1]);
}
