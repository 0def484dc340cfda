/* The IKEv2 PRF, prf+ and the SKEYSEED / SK_* / KEYMAT derivations (RFC 7296 2.13-2.18). */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "ike/crypto.h"

static EVP_MAC *hmac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* An HMAC context keyed with key for the PRF's digest; NULL on failure. */
static EVP_MAC_CTX *prf_ctx(const struct ike_prf_alg *prf, const uint8_t *key, size_t key_len)
{
	static const uint8_t empty[1];
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;

	pthread_once(&hmac_once, hmac_fetch);
	if (!hmac || !(ctx = EVP_MAC_CTX_new(hmac)))
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)prf->md, 0);
	params[1] = OSSL_PARAM_construct_end();
	/* An empty key is legal HMAC; OpenSSL wants a non-NULL pointer. */
	if (!EVP_MAC_init(ctx, key_len ? key : empty, key_len, params)) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int mac_parts(EVP_MAC_CTX *ctx, const struct ike_blob *parts, size_t nparts)
{
	for (size_t i = 0; i < nparts; i++)
		if (parts[i].len && !EVP_MAC_update(ctx, parts[i].p, parts[i].len))
			return -EIO;
	return 0;
}

static int mac_final(EVP_MAC_CTX *ctx, uint8_t *out, size_t want)
{
	size_t got = 0;

	if (!EVP_MAC_final(ctx, out, &got, want) || got != want)
		return -EIO;
	return 0;
}

int ike_prf(const struct ike_prf_alg *prf, const uint8_t *key, size_t key_len,
	    const struct ike_blob *parts, size_t nparts, uint8_t *out)
{
	EVP_MAC_CTX *ctx;
	int err;

	if (!prf || !out || (!key && key_len))
		return -EINVAL;
	if (!(ctx = prf_ctx(prf, key, key_len)))
		return -EIO;
	err = mac_parts(ctx, parts, nparts);
	if (!err)
		err = mac_final(ctx, out, prf->out_len);
	EVP_MAC_CTX_free(ctx);
	return err;
}

int ike_prf_plus(const struct ike_prf_alg *prf, const uint8_t *key, size_t key_len,
		 const struct ike_blob *seed, size_t nseed, uint8_t *out, size_t out_len)
{
	uint8_t t[IKE_PRF_MAX_OUT];
	EVP_MAC_CTX *keyed = NULL, *ctx = NULL;
	size_t n = 0, done = 0;
	int err = 0;

	if (!prf || (!out && out_len) || (!key && key_len))
		return -EINVAL;
	if (out_len > (size_t)IKE_PRF_PLUS_MAX_BLOCKS * prf->out_len)
		return -EINVAL;
	if (!(keyed = prf_ctx(prf, key, key_len)))
		return -EIO;
	/* Key once, then copy the keyed state for each block. */
	while (done < out_len) {
		uint8_t counter = (uint8_t)++n;
		size_t take = MIN(out_len - done, (size_t)prf->out_len);

		if (!(ctx = EVP_MAC_CTX_dup(keyed))) {
			err = -EIO;
			break;
		}
		if (n > 1 && !EVP_MAC_update(ctx, t, prf->out_len))
			err = -EIO;
		if (!err)
			err = mac_parts(ctx, seed, nseed);
		if (!err && !EVP_MAC_update(ctx, &counter, 1))
			err = -EIO;
		if (!err)
			err = mac_final(ctx, t, prf->out_len);
		EVP_MAC_CTX_free(ctx);
		if (err)
			break;
		memcpy(out + done, t, take);
		done += take;
	}
	EVP_MAC_CTX_free(keyed);
	OPENSSL_cleanse(t, sizeof(t));
	if (err && out_len)
		OPENSSL_cleanse(out, out_len);
	return err;
}

int ike_skeyseed(const struct ike_prf_alg *prf, struct ike_blob ni, struct ike_blob nr,
		 const struct secret *gir, struct secret **skeyseed)
{
	struct secret *key = NULL, *out = NULL;
	struct ike_blob data;
	int err = -ENOMEM;

	if (!prf || !gir || !skeyseed)
		return -EINVAL;
	*skeyseed = NULL;
	/* The key is Ni | Nr: concatenate into a secret-typed buffer. */
	if (!(key = secret_new(ni.len + nr.len)) || !(out = secret_new(prf->out_len)))
		goto out;
	if (ni.len)
		memcpy(key->p, ni.p, ni.len);
	if (nr.len)
		memcpy(key->p + ni.len, nr.p, nr.len);
	data = (struct ike_blob){ gir->p, gir->len };
	err = ike_prf(prf, key->p, key->len, &data, 1, out->p);
	if (!err) {
		*skeyseed = out;
		out = NULL;
	}
out:
	secret_free(key);
	secret_free(out);
	return err;
}

int ike_skeyseed_rekey(const struct ike_prf_alg *old_prf, const struct secret *old_sk_d,
		       const struct secret *gir_new, struct ike_blob ni, struct ike_blob nr,
		       struct secret **skeyseed)
{
	struct ike_blob data[3];
	struct secret *out;
	int err;

	if (!old_prf || !old_sk_d || !gir_new || !skeyseed)
		return -EINVAL;
	*skeyseed = NULL;
	if (!(out = secret_new(old_prf->out_len)))
		return -ENOMEM;
	data[0] = (struct ike_blob){ gir_new->p, gir_new->len };
	data[1] = ni;
	data[2] = nr;
	err = ike_prf(old_prf, old_sk_d->p, old_sk_d->len, data, 3, out->p);
	if (err) {
		secret_free(out);
		return err;
	}
	*skeyseed = out;
	return 0;
}

void ike_sa_keys_free(struct ike_sa_keys *k)
{
	if (!k)
		return;
	secret_free(k->sk_d);
	secret_free(k->sk_ai);
	secret_free(k->sk_ar);
	secret_free(k->sk_ei);
	secret_free(k->sk_er);
	secret_free(k->sk_pi);
	secret_free(k->sk_pr);
	memset(k, 0, sizeof(*k));
}

void ike_sa_keys_dir(const struct ike_sa_keys *k, bool we_are_initiator, bool outbound,
		     const struct secret **enc, const struct secret **integ)
{
	bool from_initiator = we_are_initiator == outbound;

	*enc = from_initiator ? k->sk_ei : k->sk_er;
	*integ = from_initiator ? k->sk_ai : k->sk_ar;
}

/* Cuts *off..*off+len of keymat into a new secret (NULL, no error, for len 0). */
static int take(const struct secret *keymat, size_t *off, size_t len, struct secret **out)
{
	*out = NULL;
	if (!len)
		return 0;
	if (!(*out = secret_from(keymat->p + *off, len)))
		return -ENOMEM;
	*off += len;
	return 0;
}

int ike_sa_keys_derive(const struct ike_suite *s, const struct secret *skeyseed,
		       struct ike_blob ni, struct ike_blob nr, const uint8_t spi_i[8],
		       const uint8_t spi_r[8], struct ike_sa_keys *out)
{
	size_t d, a, e, p, off = 0;
	struct secret *keymat;
	struct ike_blob seed[4];
	int err;

	if (!ike_suite_valid(s) || !skeyseed || !spi_i || !spi_r || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	d = p = ike_suite_sk_p_len(s);
	a = ike_suite_sk_a_len(s);
	e = ike_suite_sk_e_len(s);
	if (!(keymat = secret_new(d + 2 * a + 2 * e + 2 * p)))
		return -ENOMEM;
	seed[0] = ni;
	seed[1] = nr;
	seed[2] = (struct ike_blob){ spi_i, 8 };
	seed[3] = (struct ike_blob){ spi_r, 8 };
	err = ike_prf_plus(s->prf, skeyseed->p, skeyseed->len, seed, 4, keymat->p, keymat->len);
	if (!err)
		err = take(keymat, &off, d, &out->sk_d);
	if (!err)
		err = take(keymat, &off, a, &out->sk_ai);
	if (!err)
		err = take(keymat, &off, a, &out->sk_ar);
	if (!err)
		err = take(keymat, &off, e, &out->sk_ei);
	if (!err)
		err = take(keymat, &off, e, &out->sk_er);
	if (!err)
		err = take(keymat, &off, p, &out->sk_pi);
	if (!err)
		err = take(keymat, &off, p, &out->sk_pr);
	secret_free(keymat);
	if (err)
		ike_sa_keys_free(out);
	return err;
}

int ike_sa_keys_initial(const struct ike_suite *s, const struct secret *gir, struct ike_blob ni,
			struct ike_blob nr, const uint8_t spi_i[8], const uint8_t spi_r[8],
			struct ike_sa_keys *out)
{
	struct secret *skeyseed;
	int err;

	if (!ike_suite_valid(s) || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	err = ike_skeyseed(s->prf, ni, nr, gir, &skeyseed);
	if (err)
		return err;
	err = ike_sa_keys_derive(s, skeyseed, ni, nr, spi_i, spi_r, out);
	secret_free(skeyseed);
	return err;
}

int ike_sa_keys_rekey(const struct ike_prf_alg *old_prf, const struct secret *old_sk_d,
		      const struct ike_suite *new_suite, const struct secret *gir_new,
		      struct ike_blob ni, struct ike_blob nr, const uint8_t spi_i[8],
		      const uint8_t spi_r[8], struct ike_sa_keys *out)
{
	struct secret *skeyseed;
	int err;

	if (!ike_suite_valid(new_suite) || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	err = ike_skeyseed_rekey(old_prf, old_sk_d, gir_new, ni, nr, &skeyseed);
	if (err)
		return err;
	err = ike_sa_keys_derive(new_suite, skeyseed, ni, nr, spi_i, spi_r, out);
	secret_free(skeyseed);
	return err;
}

int ike_child_keymat(const struct ike_prf_alg *prf, const struct secret *sk_d,
		     const struct secret *gir, struct ike_blob ni, struct ike_blob nr,
		     uint8_t *out, size_t out_len)
{
	struct ike_blob seed[3];
	size_t n = 0;

	if (!prf || !sk_d)
		return -EINVAL;
	if (gir)
		seed[n++] = (struct ike_blob){ gir->p, gir->len };
	seed[n++] = ni;
	seed[n++] = nr;
	return ike_prf_plus(prf, sk_d->p, sk_d->len, seed, n, out, out_len);
}

void child_keys_free(struct child_keys *k)
{
	if (!k)
		return;
	secret_free(k->encr_i);
	secret_free(k->integ_i);
	secret_free(k->encr_r);
	secret_free(k->integ_r);
	memset(k, 0, sizeof(*k));
}

int child_keys_derive(const struct ike_prf_alg *prf, const struct secret *sk_d,
		      const struct esp_suite *s, const struct secret *gir, struct ike_blob ni,
		      struct ike_blob nr, struct child_keys *out)
{
	size_t e, a, off = 0;
	struct secret *keymat;
	int err;

	if (!prf || !sk_d || !esp_suite_valid(s) || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	e = esp_suite_encr_len(s);
	a = esp_suite_integ_len(s);
	if (!(keymat = secret_new(2 * (e + a))))
		return -ENOMEM;
	err = ike_child_keymat(prf, sk_d, gir, ni, nr, keymat->p, keymat->len);
	/* RFC 7296 2.17: all initiator-to-responder keys (encryption, then
	 * integrity) come first, then responder-to-initiator. */
	if (!err)
		err = take(keymat, &off, e, &out->encr_i);
	if (!err)
		err = take(keymat, &off, a, &out->integ_i);
	if (!err)
		err = take(keymat, &off, e, &out->encr_r);
	if (!err)
		err = take(keymat, &off, a, &out->integ_r);
	secret_free(keymat);
	if (err)
		child_keys_free(out);
	return err;
}
