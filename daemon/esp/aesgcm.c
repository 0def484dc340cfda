/*
 * AES-GCM through intel-ipsec-mb's direct API. One manager for the process,
 * set up once: the direct functions only read it (their state is the key and
 * a per-call context on the stack), so every thread may share it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <intel-ipsec-mb.h>
#include <openssl/crypto.h>

#include "esp/aesgcm.h"
#include "iketcp/log.h"

struct aesgcm {
	struct gcm_key_data key; /* the expanded key and hash-key powers: 64-byte aligned */
	bool aes256;
};

static IMB_MGR *mgr;
static pthread_once_t mgr_once = PTHREAD_ONCE_INIT;

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
static bool disabled_for_test;
void aesgcm_disable_for_test(bool off)
{
	disabled_for_test = off;
}
#endif

static void mgr_setup(void)
{
	IMB_MGR *m = alloc_mb_mgr(0);
	if (!m) {
		log_warn("esp: intel-ipsec-mb unavailable; AES-GCM through OpenSSL");
		return;
	}
	IMB_ARCH arch = IMB_ARCH_NONE;
	init_mb_mgr_auto(m, &arch);
	if (imb_get_errno(m)) {
		log_warn("esp: intel-ipsec-mb: %s; AES-GCM through OpenSSL", imb_get_strerror(imb_get_errno(m)));
		free_mb_mgr(m);
		return;
	}
	static const char *const names[] = { [IMB_ARCH_SSE] = "SSE", [IMB_ARCH_AVX] = "AVX",
					      [IMB_ARCH_AVX2] = "AVX2", [IMB_ARCH_AVX512] = "AVX-512" };
	if (arch < IMB_ARCH_SSE || arch >= IMB_ARCH_NUM) {
		/* No AES-NI: OpenSSL's table-free AES is the constant-time choice. */
		log_info("esp: no AES-NI; AES-GCM through OpenSSL");
		free_mb_mgr(m);
		return;
	}
	log_info("esp: AES-GCM through intel-ipsec-mb %s (%s)", imb_get_version_str(), names[arch]);
	mgr = m;
}

struct aesgcm *aesgcm_new(const uint8_t *key, size_t key_len)
{
#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
	if (disabled_for_test)
		return NULL;
#endif
	if (key_len != 16 && key_len != 32)
		return NULL;
	pthread_once(&mgr_once, mgr_setup);
	if (!mgr)
		return NULL;
	struct aesgcm *g;
	if (posix_memalign((void **)&g, 64, sizeof(*g)))
		return NULL;
	memset(g, 0, sizeof(*g));
	g->aes256 = key_len == 32;
	if (g->aes256)
		IMB_AES256_GCM_PRE(mgr, key, &g->key);
	else
		IMB_AES128_GCM_PRE(mgr, key, &g->key);
	return g;
}

void aesgcm_free(struct aesgcm *g)
{
	if (!g)
		return;
	OPENSSL_cleanse(g, sizeof(*g));
	free(g);
}

void aesgcm_seal(const struct aesgcm *g, const uint8_t nonce[AESGCM_NONCE_LEN], const uint8_t *aad,
		 size_t aad_len, uint8_t *out, const uint8_t *p1, size_t l1, const uint8_t *p2, size_t l2,
		 uint8_t tag[AESGCM_TAG_LEN])
{
	struct gcm_context_data ctx;

	/* Streamed, so the packet is read where it lies instead of being copied next to its trailer first. */
	if (g->aes256) {
		IMB_AES256_GCM_INIT(mgr, &g->key, &ctx, nonce, aad, aad_len);
		IMB_AES256_GCM_ENC_UPDATE(mgr, &g->key, &ctx, out, p1, l1);
		if (l2)
			IMB_AES256_GCM_ENC_UPDATE(mgr, &g->key, &ctx, out + l1, p2, l2);
		IMB_AES256_GCM_ENC_FINALIZE(mgr, &g->key, &ctx, tag, AESGCM_TAG_LEN);
	} else {
		IMB_AES128_GCM_INIT(mgr, &g->key, &ctx, nonce, aad, aad_len);
		IMB_AES128_GCM_ENC_UPDATE(mgr, &g->key, &ctx, out, p1, l1);
		if (l2)
			IMB_AES128_GCM_ENC_UPDATE(mgr, &g->key, &ctx, out + l1, p2, l2);
		IMB_AES128_GCM_ENC_FINALIZE(mgr, &g->key, &ctx, tag, AESGCM_TAG_LEN);
	}
	OPENSSL_cleanse(&ctx, sizeof(ctx)); /* it holds a keystream block */
}

bool aesgcm_open(const struct aesgcm *g, const uint8_t nonce[AESGCM_NONCE_LEN], const uint8_t *aad,
		 size_t aad_len, uint8_t *out, const uint8_t *in, size_t len, const uint8_t tag[AESGCM_TAG_LEN])
{
	struct gcm_context_data ctx;
	uint8_t computed[AESGCM_TAG_LEN];

	if (g->aes256)
		IMB_AES256_GCM_DEC(mgr, &g->key, &ctx, out, in, len, nonce, aad, aad_len, computed, sizeof(computed));
	else
		IMB_AES128_GCM_DEC(mgr, &g->key, &ctx, out, in, len, nonce, aad, aad_len, computed, sizeof(computed));
	OPENSSL_cleanse(&ctx, sizeof(ctx));
	if (CRYPTO_memcmp(computed, tag, AESGCM_TAG_LEN) != 0) {
		OPENSSL_cleanse(out, len); /* never hand out plaintext that failed its check */
		return false;
	}
	return true;
}
