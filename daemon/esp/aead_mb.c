/*
 * AES-GCM and ChaCha20-Poly1305 through intel-ipsec-mb's direct API. One
 * manager for the process, set up once: the direct functions only read it
 * (their state is the key and a per-call context on the stack), so every
 * thread may share it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <intel-ipsec-mb.h>
#include <openssl/crypto.h>

#include "esp/aead_mb.h"
#include "iketcp/log.h"

struct aead_mb {
	union {
		struct gcm_key_data gcm; /* the expanded key and hash-key powers: 64-byte aligned */
		uint8_t chacha[32];
	} key;
	enum aead_mb_kind kind;
	bool aes256;
};

static IMB_MGR *mgr;
static pthread_once_t mgr_once = PTHREAD_ONCE_INIT;

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
static bool disabled_for_test;
void aead_mb_disable_for_test(bool off)
{
	disabled_for_test = off;
}
#endif

static void mgr_setup(void)
{
	IMB_MGR *m = alloc_mb_mgr(0);
	if (!m) {
		log_warn("esp: intel-ipsec-mb unavailable; AEADs through OpenSSL");
		return;
	}
	IMB_ARCH arch = IMB_ARCH_NONE;
	init_mb_mgr_auto(m, &arch);
	if (imb_get_errno(m)) {
		log_warn("esp: intel-ipsec-mb: %s; AEADs through OpenSSL", imb_get_strerror(imb_get_errno(m)));
		free_mb_mgr(m);
		return;
	}
	static const char *const names[] = { [IMB_ARCH_SSE] = "SSE", [IMB_ARCH_AVX] = "AVX",
					      [IMB_ARCH_AVX2] = "AVX2", [IMB_ARCH_AVX512] = "AVX-512" };
	if (arch < IMB_ARCH_SSE || arch >= IMB_ARCH_NUM) {
		/* No AES-NI: OpenSSL's table-free AES is the constant-time choice. */
		log_info("esp: no AES-NI; AEADs through OpenSSL");
		free_mb_mgr(m);
		return;
	}
	log_info("esp: AES-GCM and ChaCha20-Poly1305 through intel-ipsec-mb %s (%s)", imb_get_version_str(),
		 names[arch]);
	mgr = m;
}

struct aead_mb *aead_mb_new(enum aead_mb_kind kind, const uint8_t *key, size_t key_len)
{
#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
	if (disabled_for_test)
		return NULL;
#endif
	if (kind == AEAD_MB_AES_GCM ? key_len != 16 && key_len != 32 : key_len != 32)
		return NULL;
	pthread_once(&mgr_once, mgr_setup);
	if (!mgr)
		return NULL;
	struct aead_mb *a;
	if (posix_memalign((void **)&a, 64, sizeof(*a)))
		return NULL;
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->aes256 = key_len == 32;
	if (kind == AEAD_MB_CHACHA20_POLY1305)
		memcpy(a->key.chacha, key, sizeof(a->key.chacha));
	else if (a->aes256)
		IMB_AES256_GCM_PRE(mgr, key, &a->key.gcm);
	else
		IMB_AES128_GCM_PRE(mgr, key, &a->key.gcm);
	return a;
}

void aead_mb_free(struct aead_mb *a)
{
	if (!a)
		return;
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

/* Streamed, so each part is read where it lies instead of being copied next to the others first. */
void aead_mb_seal(const struct aead_mb *a, const uint8_t nonce[AEAD_MB_NONCE_LEN], const uint8_t *aad,
		  size_t aad_len, uint8_t *out, const struct iovec *parts, unsigned n, uint8_t tag[AEAD_MB_TAG_LEN])
{
	size_t at = 0;

	if (a->kind == AEAD_MB_CHACHA20_POLY1305) {
		struct chacha20_poly1305_context_data ctx;
		IMB_CHACHA20_POLY1305_INIT(mgr, a->key.chacha, &ctx, nonce, aad, aad_len);
		for (unsigned i = 0; i < n; at += parts[i++].iov_len)
			if (parts[i].iov_len)
				IMB_CHACHA20_POLY1305_ENC_UPDATE(mgr, a->key.chacha, &ctx, out + at, parts[i].iov_base,
								 parts[i].iov_len);
		IMB_CHACHA20_POLY1305_ENC_FINALIZE(mgr, &ctx, tag, AEAD_MB_TAG_LEN);
		OPENSSL_cleanse(&ctx, sizeof(ctx)); /* it holds keystream */
		return;
	}
	struct gcm_context_data ctx;
	if (a->aes256) {
		IMB_AES256_GCM_INIT(mgr, &a->key.gcm, &ctx, nonce, aad, aad_len);
		for (unsigned i = 0; i < n; at += parts[i++].iov_len)
			if (parts[i].iov_len)
				IMB_AES256_GCM_ENC_UPDATE(mgr, &a->key.gcm, &ctx, out + at, parts[i].iov_base,
							  parts[i].iov_len);
		IMB_AES256_GCM_ENC_FINALIZE(mgr, &a->key.gcm, &ctx, tag, AEAD_MB_TAG_LEN);
	} else {
		IMB_AES128_GCM_INIT(mgr, &a->key.gcm, &ctx, nonce, aad, aad_len);
		for (unsigned i = 0; i < n; at += parts[i++].iov_len)
			if (parts[i].iov_len)
				IMB_AES128_GCM_ENC_UPDATE(mgr, &a->key.gcm, &ctx, out + at, parts[i].iov_base,
							  parts[i].iov_len);
		IMB_AES128_GCM_ENC_FINALIZE(mgr, &a->key.gcm, &ctx, tag, AEAD_MB_TAG_LEN);
	}
	OPENSSL_cleanse(&ctx, sizeof(ctx)); /* it holds a keystream block */
}

bool aead_mb_open(const struct aead_mb *a, const uint8_t nonce[AEAD_MB_NONCE_LEN], const uint8_t *aad,
		  size_t aad_len, uint8_t *out, const uint8_t *in, size_t len, const uint8_t tag[AEAD_MB_TAG_LEN])
{
	uint8_t computed[AEAD_MB_TAG_LEN];

	if (a->kind == AEAD_MB_CHACHA20_POLY1305) {
		struct chacha20_poly1305_context_data ctx;
		IMB_CHACHA20_POLY1305_INIT(mgr, a->key.chacha, &ctx, nonce, aad, aad_len);
		IMB_CHACHA20_POLY1305_DEC_UPDATE(mgr, a->key.chacha, &ctx, out, in, len);
		IMB_CHACHA20_POLY1305_DEC_FINALIZE(mgr, &ctx, computed, sizeof(computed));
		OPENSSL_cleanse(&ctx, sizeof(ctx));
	} else {
		struct gcm_context_data ctx;
		if (a->aes256)
			IMB_AES256_GCM_DEC(mgr, &a->key.gcm, &ctx, out, in, len, nonce, aad, aad_len, computed,
					   sizeof(computed));
		else
			IMB_AES128_GCM_DEC(mgr, &a->key.gcm, &ctx, out, in, len, nonce, aad, aad_len, computed,
					   sizeof(computed));
		OPENSSL_cleanse(&ctx, sizeof(ctx));
	}
	if (CRYPTO_memcmp(computed, tag, AEAD_MB_TAG_LEN) != 0) {
		OPENSSL_cleanse(out, len); /* never hand out plaintext that failed its check */
		return false;
	}
	return true;
}
