/* ESP per-packet core: tunnel-mode encapsulation and decapsulation (RFC 4303). */
#include <errno.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "iketcp/buf.h"
#include "esp/aead_mb.h"
#include "esp/esp.h"

static bool is_aead(const struct esp_sa *sa)
{
	return sa->cipher != ESP_AES_CBC_HMAC_SHA2;
}

size_t esp_payload_offset(const struct esp_sa *sa)
{
	return ESP_HDR_LEN + sa->iv_len;
}

/* Payload, then 1,2,3.. padding so that payload + pad + 2 fills whole blocks. */
static size_t pad_for(const struct esp_sa *sa, size_t ip_len)
{
	size_t used = (ip_len + 2) % sa->block;
	return used ? sa->block - used : 0;
}

size_t esp_encap_len(const struct esp_sa *sa, size_t ip_len)
{
	return esp_payload_offset(sa) + ip_len + pad_for(sa, ip_len) + 2 + sa->icv_len;
}

uint32_t esp_spi_of(const uint8_t *esp, size_t len)
{
	struct rd r = rd_init(esp, len);
	uint32_t spi;

	if (rd_be32(&r, &spi))
		return 0;
	return spi;
}

/* AEAD AAD: SPI | seq_lo, or SPI | seq_hi | seq_lo with ESN (RFC 4106 section 5). */
static size_t aead_aad(const struct esp_sa *sa, uint64_t seq, uint8_t aad[12])
{
	wr_put_be32(aad, sa->spi);
	if (!sa->esn) {
		wr_put_be32(aad + 4, (uint32_t)seq);
		return 8;
	}
	wr_put_be32(aad + 4, (uint32_t)(seq >> 32));
	wr_put_be32(aad + 8, (uint32_t)seq);
	return 12;
}

/*
 * The ICV travels as an OSSL_PARAM straight to the provider: OpenSSL 3.0's
 * EVP_CIPHER_CTX_ctrl would build the same parameter on every packet and look
 * up its name once more on the way (strcmp on the packet path).
 */
static OSSL_PARAM aead_tag_param(uint8_t *tag)
{
	return OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, ESP_AEAD_ICV_LEN);
}

static void aead_nonce(const struct esp_sa *sa, const uint8_t *iv, uint8_t nonce[12])
{
	memcpy(nonce, sa->salt, ESP_SALT_LEN);
	memcpy(nonce + ESP_SALT_LEN, iv, ESP_AEAD_IV_LEN);
}

/*
 * HMAC-SHA2 ICV (RFC 4303 section 2.8, RFC 4868): over the ESP header, IV and
 * ciphertext; with ESN the high 32 bits follow, for the ICV only (2.2.1).
 */
static int hmac_icv(struct esp_sa *sa, const uint8_t *msg, size_t msg_len, uint64_t seq,
		    uint8_t icv[ESP_MAX_ICV_LEN * 2])
{
	uint8_t hi[4];
	size_t n = 0;

	if (EVP_MAC_init(sa->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(sa->mac, msg, msg_len) != 1)
		return -EIO;
	if (sa->esn) {
		wr_put_be32(hi, (uint32_t)(seq >> 32));
		if (EVP_MAC_update(sa->mac, hi, sizeof(hi)) != 1)
			return -EIO;
	}
	if (EVP_MAC_final(sa->mac, icv, &n, ESP_MAX_ICV_LEN * 2) != 1 || n < sa->icv_len)
		return -EIO;
	return 0;
}

/* One EVP update that must consume everything it is given (stream modes) or
 * whole blocks (CBC, the rest waits in the context). */
static int cipher_update(EVP_CIPHER_CTX *ctx, uint8_t *out, size_t *done, const uint8_t *in, size_t len)
{
	int n = 0;

	if (len == 0)
		return 0;
	if (EVP_CipherUpdate(ctx, out ? out + *done : NULL, &n, in, (int)len) != 1 || n < 0)
		return -EIO;
	*done += (size_t)n;
	return 0;
}

/*
 * Write SPI | seq | IV | enc(parts) | ICV at out. The first part may be the
 * ciphertext position itself (in place); the others lie apart from out.
 */
static ssize_t seal(struct esp_sa *sa, uint64_t seq, const uint8_t *iv, const struct iovec *parts, unsigned n_parts,
		    uint8_t *out, size_t out_cap)
{
	size_t hdr = esp_payload_offset(sa), ct_len = 0, done = 0;
	uint8_t aad[12], nonce[12], icv[ESP_MAX_ICV_LEN * 2];
	int n = 0;

	for (unsigned i = 0; i < n_parts; i++)
		ct_len += parts[i].iov_len;
	if (!is_aead(sa) && ct_len % sa->block)
		return -EINVAL;
	if (out_cap < hdr || out_cap - hdr < ct_len || out_cap - hdr - ct_len < sa->icv_len)
		return -ENOSPC;
	wr_put_be32(out, sa->spi);
	wr_put_be32(out + 4, (uint32_t)seq);
	memcpy(out + ESP_HDR_LEN, iv, sa->iv_len);
	uint8_t *ct = out + hdr;
	if (sa->mb) {
		aead_nonce(sa, out + ESP_HDR_LEN, nonce);
		size_t aad_len = aead_aad(sa, seq, aad);
		aead_mb_seal(sa->mb, nonce, aad, aad_len, ct, parts, n_parts, ct + ct_len);
		return (ssize_t)(hdr + ct_len + sa->icv_len);
	}
	/*
	 * Lay the plaintext out whole and encrypt it in place in one update:
	 * splitting at a partial block takes OpenSSL off its fast bulk path,
	 * which costs more than copying the packet.
	 */
	for (size_t i = 0, at = 0; i < n_parts; at += parts[i++].iov_len)
		if (parts[i].iov_base != ct + at && parts[i].iov_len)
			memcpy(ct + at, parts[i].iov_base, parts[i].iov_len);

	if (is_aead(sa)) {
		aead_nonce(sa, out + ESP_HDR_LEN, nonce);
		size_t aad_len = aead_aad(sa, seq, aad);
		OSSL_PARAM tag[2] = { aead_tag_param(ct + ct_len), OSSL_PARAM_END };
		if (EVP_CipherInit_ex(sa->ctx, NULL, NULL, NULL, nonce, 1) != 1 ||
		    EVP_CipherUpdate(sa->ctx, NULL, &n, aad, (int)aad_len) != 1 ||
		    cipher_update(sa->ctx, ct, &done, ct, ct_len) ||
		    EVP_CipherFinal_ex(sa->ctx, ct + done, &n) != 1 || done + (size_t)n != ct_len ||
		    EVP_CIPHER_CTX_get_params(sa->ctx, tag) != 1)
			return -EIO;
	} else {
		if (EVP_CipherInit_ex(sa->ctx, NULL, NULL, NULL, out + ESP_HDR_LEN, 1) != 1 ||
		    cipher_update(sa->ctx, ct, &done, ct, ct_len) ||
		    EVP_CipherFinal_ex(sa->ctx, ct + done, &n) != 1 || done + (size_t)n != ct_len)
			return -EIO;
		if (hmac_icv(sa, out, hdr + ct_len, seq, icv))
			return -EIO;
		memcpy(ct + ct_len, icv, sa->icv_len);
	}
	return (ssize_t)(hdr + ct_len + sa->icv_len);
}

/* CBC needs an unpredictable IV: encrypt the unique block seq | SPI | 0 under
 * the SA key (NIST SP 800-38A appendix C). */
static int cbc_iv(struct esp_sa *sa, uint64_t seq, uint8_t iv[ESP_CBC_IV_LEN])
{
	uint8_t block[ESP_CBC_IV_LEN] = { 0 };
	int n = 0;

	wr_put_be32(block, (uint32_t)(seq >> 32));
	wr_put_be32(block + 4, (uint32_t)seq);
	wr_put_be32(block + 8, sa->spi);
	if (EVP_EncryptUpdate(sa->iv_ctx, iv, &n, block, sizeof(block)) != 1 || n != ESP_CBC_IV_LEN)
		return -EIO;
	return 0;
}

static bool overlaps(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return a < b + blen && b < a + alen;
}

static void count_bytes(struct esp_sa *sa, size_t bytes)
{
	sa->stats.packets++;
	sa->stats.bytes += bytes;
	if (sa->life_bytes_soft && sa->stats.bytes >= sa->life_bytes_soft)
		sa->soft_expired = true;
	if (sa->life_bytes_hard && sa->stats.bytes >= sa->life_bytes_hard)
		sa->hard_expired = true;
}

bool esp_sa_parallel(const struct esp_sa *sa)
{
	return sa->mb != NULL; /* keyed once, read only; OpenSSL's contexts carry per-packet state */
}

int esp_encap_prepare_parts(struct esp_sa *sa, const struct iovec *ip, unsigned n, uint8_t *out, size_t out_cap,
			    struct esp_seal_job *j)
{
	size_t ip_len = 0;
	uint8_t nh;

	if (!sa->outbound || n == 0 || n > ESP_MAX_PARTS || ip[0].iov_len == 0)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		ip_len += ip[i].iov_len;
	if (ip_len > ESP_MAX_INNER)
		return -EINVAL;
	switch (((const uint8_t *)ip[0].iov_base)[0] >> 4) {
	case 4: nh = ESP_NH_IPV4; break;
	case 6: nh = ESP_NH_IPV6; break;
	default: return -EINVAL;
	}
	if (sa->hard_expired || sa->seq >= sa->seq_max) {
		/* RFC 4303 section 3.3.3: the counter must never cycle. */
		sa->hard_expired = true;
		sa->stats.expired++;
		return -EKEYEXPIRED;
	}
	size_t pad = pad_for(sa, ip_len);
	if (out_cap < esp_encap_len(sa, ip_len))
		return -ENOSPC;
	/* The plaintext is copied into place: a partial overlap would corrupt it. Only the first part may
	 * be in place. */
	for (unsigned i = 0; i < n; i++)
		if ((i > 0 || ip[i].iov_base != out + esp_payload_offset(sa)) &&
		    overlaps(ip[i].iov_base, ip[i].iov_len, out, out_cap))
			return -EINVAL;

	uint64_t seq = ++sa->seq; /* consumed even if sealing fails: never reuse a nonce */
	if (sa->seq >= sa->seq_soft)
		sa->soft_expired = true;
	if (is_aead(sa)) {
		wr_put_be32(j->iv, (uint32_t)(seq >> 32));
		wr_put_be32(j->iv + 4, (uint32_t)seq);
	} else if (cbc_iv(sa, seq, j->iv)) {
		return -EIO;
	}
	for (size_t i = 0; i < pad; i++)
		j->trailer[i] = (uint8_t)(i + 1);
	j->trailer[pad] = (uint8_t)pad;
	j->trailer[pad + 1] = nh;
	memcpy(j->parts, ip, n * sizeof(*ip));
	j->parts[n] = (struct iovec){ j->trailer, pad + 2 };
	j->n_parts = n + 1;
	j->sa = sa;
	j->seq = seq;
	j->ip_len = ip_len;
	j->out = out;
	j->out_cap = out_cap;
	/* Counted now, in order: the lifetimes see every packet whichever thread seals it. */
	count_bytes(sa, ip_len);
	return 0;
}

int esp_encap_prepare(struct esp_sa *sa, const uint8_t *ip, size_t ip_len, uint8_t *out, size_t out_cap,
		      struct esp_seal_job *j)
{
	struct iovec v = { (void *)ip, ip_len };

	return esp_encap_prepare_parts(sa, &v, 1, out, out_cap, j);
}

ssize_t esp_encap_seal(const struct esp_seal_job *j)
{
	return seal(j->sa, j->seq, j->iv, j->parts, j->n_parts, j->out, j->out_cap);
}

ssize_t esp_encap(struct esp_sa *sa, const uint8_t *ip, size_t ip_len, uint8_t *out, size_t out_cap)
{
	struct esp_seal_job j;
	int err = esp_encap_prepare(sa, ip, ip_len, out, out_cap, &j);

	return err ? err : esp_encap_seal(&j);
}

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
ssize_t esp_seal_raw_for_test(struct esp_sa *sa, uint64_t seq, const uint8_t *iv, const uint8_t *pt,
			      size_t pt_len, uint8_t *out, size_t out_cap)
{
	struct iovec v = { (void *)pt, pt_len };

	return seal(sa, seq, iv, &v, 1, out, out_cap);
}
#endif

/* The inner packet's own length: drops TFC padding (RFC 4303 section 2.7). */
static int inner_length(uint8_t nh, const uint8_t *ip, size_t len, size_t *inner)
{
	struct rd r = rd_init(ip, len);
	uint8_t vhl;
	uint16_t l;

	if (rd_u8(&r, &vhl) || rd_skip(&r, nh == ESP_NH_IPV4 ? 1 : 3) || rd_be16(&r, &l))
		return -EBADMSG;
	if (nh == ESP_NH_IPV4) {
		if (vhl >> 4 != 4 || (vhl & 0xf) < 5 || l < (vhl & 0xf) * 4u || l > len)
			return -EBADMSG;
		*inner = l;
	} else {
		if (vhl >> 4 != 6 || len < 40 || l > len - 40)
			return -EBADMSG;
		*inner = 40u + l;
	}
	return 0;
}

static ssize_t malformed(struct esp_sa *sa)
{
	sa->stats.malformed++;
	return -EBADMSG;
}

int esp_decap_prepare(struct esp_sa *sa, const uint8_t *esp, size_t len, uint8_t *out, size_t out_cap,
		      struct esp_open_job *j)
{
	struct rd r = rd_init(esp, len);
	uint32_t spi, seq_lo;

	if (sa->outbound)
		return -EINVAL;
	size_t min_ct = is_aead(sa) ? 2 : sa->block;
	if (rd_be32(&r, &spi) || rd_be32(&r, &seq_lo) || rd_view(&r, &j->iv, sa->iv_len) ||
	    rd_left(&r) < (size_t)sa->icv_len + min_ct)
		return malformed(sa);
	if (spi != sa->spi)
		return -EINVAL;
	size_t ct_len = rd_left(&r) - sa->icv_len;
	if (ct_len % (is_aead(sa) ? 1 : sa->block))
		return malformed(sa);
	if (rd_view(&r, &j->ct, ct_len) || rd_view(&r, &j->icv, sa->icv_len))
		return malformed(sa);
	if (sa->hard_expired) {
		sa->stats.expired++;
		return -EKEYEXPIRED;
	}
	if (!out) /* in place: the caller's copy of esp is writable */
		out = (uint8_t *)j->ct;
	if (out_cap < ct_len)
		return -ENOSPC;
	if (out != j->ct && overlaps(out, ct_len, esp, len))
		return -EINVAL;

	/* Replay first: a cheap drop before the expensive ICV (RFC 4303 section 3.4.3). */
	if (replay_check(&sa->replay, seq_lo, &j->seq)) {
		sa->stats.replay_drops++;
		return -EALREADY;
	}
	j->sa = sa;
	j->esp = esp;
	j->ct_len = ct_len;
	j->out = out;
	j->err = 0;
	return 0;
}

void esp_decap_open(struct esp_open_job *j)
{
	struct esp_sa *sa = j->sa;
	uint8_t nonce[12], aad[12], mac[ESP_MAX_ICV_LEN * 2];
	size_t done = 0;
	int n = 0;

	j->err = 0;
	if (sa->mb) {
		aead_nonce(sa, j->iv, nonce);
		size_t aad_len = aead_aad(sa, j->seq, aad);
		if (!aead_mb_open(sa->mb, nonce, aad, aad_len, j->out, j->ct, j->ct_len, j->icv))
			j->err = -EKEYREJECTED;
	} else if (is_aead(sa)) {
		aead_nonce(sa, j->iv, nonce);
		size_t aad_len = aead_aad(sa, j->seq, aad);
		/*
		 * GCM takes the expected ICV with the nonce: one call into the provider
		 * instead of two. ChaCha20-Poly1305's init forgets a tag set there, so it
		 * gets it afterwards.
		 */
		OSSL_PARAM tag[2] = { aead_tag_param((uint8_t *)j->icv), OSSL_PARAM_END };
		bool gcm = sa->cipher == ESP_AES_GCM_16;
		if (EVP_CipherInit_ex2(sa->ctx, NULL, NULL, nonce, 0, gcm ? tag : NULL) != 1 ||
		    EVP_CipherUpdate(sa->ctx, NULL, &n, aad, (int)aad_len) != 1 ||
		    cipher_update(sa->ctx, j->out, &done, j->ct, j->ct_len) ||
		    (!gcm && EVP_CIPHER_CTX_set_params(sa->ctx, tag) != 1)) {
			j->err = -EIO;
			return;
		}
		/* The tag is compared inside EVP (constant time); a failure here is the ICV. */
		if (EVP_CipherFinal_ex(sa->ctx, j->out + done, &n) != 1) {
			OPENSSL_cleanse(j->out, j->ct_len);
			j->err = -EKEYREJECTED;
		}
	} else {
		if (hmac_icv(sa, j->esp, ESP_HDR_LEN + sa->iv_len + j->ct_len, j->seq, mac)) {
			j->err = -EIO;
			return;
		}
		if (CRYPTO_memcmp(mac, j->icv, sa->icv_len) != 0) {
			j->err = -EKEYREJECTED;
			return;
		}
		if (EVP_CipherInit_ex(sa->ctx, NULL, NULL, NULL, j->iv, 0) != 1 ||
		    cipher_update(sa->ctx, j->out, &done, j->ct, j->ct_len) ||
		    EVP_CipherFinal_ex(sa->ctx, j->out + done, &n) != 1 || done + (size_t)n != j->ct_len)
			j->err = -EIO;
	}
}

ssize_t esp_decap_finish(const struct esp_open_job *j, uint8_t *next_header)
{
	struct esp_sa *sa = j->sa;
	const uint8_t *out = j->out;
	size_t ct_len = j->ct_len;
	int err;

	if (j->err == -EKEYREJECTED)
		sa->stats.auth_failures++;
	if (j->err)
		return j->err;
	/* Authenticated: now the window may move (a second copy in the same batch stops here). */
	if (replay_update(&sa->replay, j->seq)) {
		sa->stats.replay_drops++;
		return -EALREADY;
	}

	/* Trailer: ... | padding 1,2,3.. | pad length | next header (RFC 4303 section 2.4). */
	uint8_t pad = out[ct_len - 2], nh = out[ct_len - 1];
	if ((size_t)pad + 2 > ct_len)
		return malformed(sa);
	size_t inner = ct_len - 2 - pad;
	for (size_t i = 0; i < pad; i++)
		if (out[inner + i] != (uint8_t)(i + 1))
			return malformed(sa);

	switch (nh) {
	case ESP_NH_DUMMY:
		sa->stats.dummy++;
		*next_header = nh;
		return 0;
	case ESP_NH_IPV4:
	case ESP_NH_IPV6:
		err = inner_length(nh, out, inner, &inner);
		if (err)
			return malformed(sa);
		break;
	default:
		return malformed(sa);
	}
	count_bytes(sa, inner);
	*next_header = nh;
	return (ssize_t)inner;
}

ssize_t esp_decap(struct esp_sa *sa, const uint8_t *esp, size_t len, uint8_t *out, size_t out_cap,
		  uint8_t *next_header)
{
	struct esp_open_job j;
	int err = esp_decap_prepare(sa, esp, len, out, out_cap, &j);

	if (err)
		return err;
	esp_decap_open(&j);
	return esp_decap_finish(&j, next_header);
}
