/* ESP SA life cycle: key the EVP contexts once, count lifetimes, wipe on destroy. */
#include <errno.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "iketcp/stats.h"
#include "esp/aead_mb.h"
#include "esp/esp.h"

struct suite_shape {
	const EVP_CIPHER *cipher;
	const char *digest; /* CBC only */
	size_t enc_key, integ_key;
	uint8_t iv_len, icv_len, block;
};

/* Key sizes and wire sizes from RFC 4106, RFC 7634, RFC 3602 and RFC 4868. */
static int suite_shape(const struct esp_sa_params *p, struct suite_shape *s)
{
	memset(s, 0, sizeof(*s));
	switch (p->cipher) {
	case ESP_AES_GCM_16:
		if (p->enc_key_bits == 128)
			s->cipher = EVP_aes_128_gcm();
		else if (p->enc_key_bits == 256)
			s->cipher = EVP_aes_256_gcm();
		else
			return -EINVAL;
		s->iv_len = ESP_AEAD_IV_LEN;
		s->icv_len = ESP_AEAD_ICV_LEN;
		s->block = 4;
		break;
	case ESP_CHACHA20_POLY1305:
		if (p->enc_key_bits != 256)
			return -EINVAL;
		s->cipher = EVP_chacha20_poly1305();
		s->iv_len = ESP_AEAD_IV_LEN;
		s->icv_len = ESP_AEAD_ICV_LEN;
		s->block = 4;
		break;
	case ESP_AES_CBC_HMAC_SHA2:
		if (p->enc_key_bits == 128)
			s->cipher = EVP_aes_128_cbc();
		else if (p->enc_key_bits == 256)
			s->cipher = EVP_aes_256_cbc();
		else
			return -EINVAL;
		switch (p->integ_bits) {
		case 256: s->digest = "SHA256"; break;
		case 384: s->digest = "SHA384"; break;
		case 512: s->digest = "SHA512"; break;
		default: return -EINVAL;
		}
		s->integ_key = p->integ_bits / 8;
		s->icv_len = (uint8_t)(p->integ_bits / 16); /* RFC 4868: truncated to half */
		s->iv_len = ESP_CBC_IV_LEN;
		s->block = 16;
		break;
	default:
		return -EINVAL;
	}
	s->enc_key = p->enc_key_bits / 8;
	return 0;
}

static int init_cbc_extras(struct esp_sa *sa, const struct suite_shape *s, const uint8_t *enc_key,
			   const uint8_t *integ_key)
{
	if (sa->outbound) {
		const EVP_CIPHER *ecb = s->enc_key == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb();
		sa->iv_ctx = EVP_CIPHER_CTX_new();
		if (!sa->iv_ctx)
			return -ENOMEM;
		if (EVP_EncryptInit_ex(sa->iv_ctx, ecb, NULL, enc_key, NULL) != 1 ||
		    EVP_CIPHER_CTX_set_padding(sa->iv_ctx, 0) != 1)
			return -EIO;
	}
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!hmac)
		return -EIO;
	sa->mac = EVP_MAC_CTX_new(hmac);
	EVP_MAC_free(hmac); /* the context keeps its own reference */
	if (!sa->mac)
		return -ENOMEM;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)s->digest, 0),
		OSSL_PARAM_construct_end(),
	};
	if (EVP_MAC_init(sa->mac, integ_key, s->integ_key, params) != 1)
		return -EIO;
	return 0;
}

int esp_sa_init(struct esp_sa *sa, const struct esp_sa_params *p)
{
	struct suite_shape s;
	int err;

	memset(sa, 0, sizeof(*sa));
	/* SPIs 1..255 are reserved by IANA and 0 means "none" (RFC 4303 section 2.1). */
	if (p->spi < 256 || !p->keymat)
		return -EINVAL;
	err = suite_shape(p, &s);
	if (err)
		return err;
	bool aead = p->cipher != ESP_AES_CBC_HMAC_SHA2;
	if (p->keymat_len != s.enc_key + (aead ? ESP_SALT_LEN : s.integ_key))
		return -EINVAL;

	sa->spi = p->spi;
	sa->outbound = p->outbound;
	sa->esn = p->esn;
	sa->cipher = p->cipher;
	sa->iv_len = s.iv_len;
	sa->icv_len = s.icv_len;
	sa->block = s.block;
	sa->seq_max = p->esn ? UINT64_MAX : UINT32_MAX;
	sa->seq_soft = sa->seq_max - (sa->seq_max >> 4);
	sa->life_bytes_soft = p->life_bytes_soft;
	sa->life_bytes_hard = p->life_bytes_hard;
	sa->life_secs_soft = p->life_secs_soft;
	sa->life_secs_hard = p->life_secs_hard;
	sa->born_secs = p->now_secs;

	if (!p->outbound) {
		err = replay_init(&sa->replay, p->replay_window, p->esn, p->replay);
		if (err)
			goto fail;
	}

	if (aead) {
		memcpy(sa->salt, p->keymat + s.enc_key, ESP_SALT_LEN); /* either engine's nonce starts with it */
		sa->mb = aead_mb_new(p->cipher == ESP_AES_GCM_16 ? AEAD_MB_AES_GCM : AEAD_MB_CHACHA20_POLY1305,
				     p->keymat, s.enc_key);
		if (sa->mb)
			return 0;
	}
	sa->ctx = EVP_CIPHER_CTX_new();
	if (!sa->ctx) {
		err = -ENOMEM;
		goto fail;
	}
	err = -EIO;
	if (EVP_CipherInit_ex(sa->ctx, s.cipher, NULL, p->keymat, NULL, p->outbound) != 1)
		goto fail;
	if (aead) {
		if (EVP_CIPHER_CTX_ctrl(sa->ctx, EVP_CTRL_AEAD_SET_IVLEN, ESP_SALT_LEN + ESP_AEAD_IV_LEN,
					NULL) != 1)
			goto fail;
	} else {
		if (EVP_CIPHER_CTX_set_padding(sa->ctx, 0) != 1)
			goto fail;
		err = init_cbc_extras(sa, &s, p->keymat, p->keymat + s.enc_key);
		if (err)
			goto fail;
	}
	return 0;
fail:
	esp_sa_destroy(sa);
	return err;
}

void esp_sa_destroy(struct esp_sa *sa)
{
	/* The contexts hold the expanded keys; they are cleansed when freed. */
	aead_mb_free(sa->mb);
	EVP_CIPHER_CTX_free(sa->ctx);
	EVP_CIPHER_CTX_free(sa->iv_ctx);
	EVP_MAC_CTX_free(sa->mac);
	replay_free(&sa->replay);
	OPENSSL_cleanse(sa, sizeof(*sa));
}

enum esp_life esp_sa_tick(struct esp_sa *sa, uint64_t now_secs)
{
	uint64_t age = now_secs > sa->born_secs ? now_secs - sa->born_secs : 0;

	if (sa->life_secs_soft && age >= sa->life_secs_soft)
		sa->soft_expired = true;
	if (sa->life_secs_hard && age >= sa->life_secs_hard)
		sa->hard_expired = true;
	if (sa->hard_expired)
		return ESP_LIFE_HARD;
	return sa->soft_expired ? ESP_LIFE_SOFT : ESP_LIFE_OK;
}

void esp_sa_stats_add(struct stats *dst, const struct esp_sa_stats *s, bool outbound)
{
	if (outbound)
		dst->esp.packets_out += s->packets;
	else
		dst->esp.packets_in += s->packets;
	dst->esp.replay_drops += s->replay_drops;
	dst->esp.auth_failures += s->auth_failures;
	dst->esp.malformed += s->malformed;
}

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
void esp_sa_set_seq_for_test(struct esp_sa *sa, uint64_t last_sent)
{
	sa->seq = last_sent;
}
#endif
