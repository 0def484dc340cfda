/* Diffie-Hellman for the KE payload: MODP (RFC 3526), ECP (RFC 5903), X25519/X448 (RFC 8031). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "ike/crypto.h"

enum dh_kind { KIND_MODP, KIND_ECP, KIND_XDH };

struct dh_group {
	uint16_t id;
	enum dh_kind kind;
	const char *ossl;     /* OpenSSL group / curve / key type name */
	int nid;              /* ECP: for computing an injected key's public point */
	size_t pub_len;       /* KE data bytes */
	size_t field_len;     /* ECP coordinate bytes; MODP prime bytes; XDH key bytes */
};

static const struct dh_group groups[] = {
	{ MODP_2048, KIND_MODP, "modp_2048", 0, 256, 256 },
	{ MODP_3072, KIND_MODP, "modp_3072", 0, 384, 384 },
	{ MODP_4096, KIND_MODP, "modp_4096", 0, 512, 512 },
	{ ECP_256, KIND_ECP, "P-256", NID_X9_62_prime256v1, 64, 32 },
	{ ECP_384, KIND_ECP, "P-384", NID_secp384r1, 96, 48 },
	{ ECP_521, KIND_ECP, "P-521", NID_secp521r1, 132, 66 },
	{ CURVE_25519, KIND_XDH, "X25519", 0, 32, 32 },
	{ CURVE_448, KIND_XDH, "X448", 0, 56, 56 },
};

struct ike_dh {
	const struct dh_group *g;
	EVP_PKEY *key;
};

static const struct dh_group *group_find(uint16_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
		if (groups[i].id == id)
			return &groups[i];
	return NULL;
}

bool ike_dh_supported(uint16_t group)
{
	return group_find(group) != NULL;
}

size_t ike_dh_public_len(uint16_t group)
{
	const struct dh_group *g = group_find(group);

	return g ? g->pub_len : 0;
}

uint16_t ike_dh_group(const struct ike_dh *dh)
{
	return dh ? dh->g->id : 0;
}

static EVP_PKEY *keygen(const struct dh_group *g)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key = NULL;
	OSSL_PARAM params[2];

	ctx = EVP_PKEY_CTX_new_from_name(NULL, g->kind == KIND_MODP ? "DH" : g->kind == KIND_ECP ? "EC" : g->ossl,
					 NULL);
	if (!ctx)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)g->ossl, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_PKEY_keygen_init(ctx) <= 0 ||
	    (g->kind != KIND_XDH && !EVP_PKEY_CTX_set_params(ctx, params)) ||
	    EVP_PKEY_generate(ctx, &key) <= 0)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

struct ike_dh *ike_dh_new(uint16_t group)
{
	const struct dh_group *g = group_find(group);
	struct ike_dh *dh;

	if (!g || !(dh = calloc(1, sizeof(*dh))))
		return NULL;
	dh->g = g;
	if (!(dh->key = keygen(g))) {
		free(dh);
		return NULL;
	}
	return dh;
}

/* Imports an EC or DH key from OSSL params built by the caller. */
static EVP_PKEY *fromdata(const char *type, int selection, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *key = NULL;

	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, selection, params) <= 0)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return key;
}

/* An EC key pair from a fixed scalar: the public point is computed here
 * because OpenSSL does not derive it on import. */
static EVP_PKEY *ecp_from_private(const struct dh_group *g, const uint8_t *priv, size_t len)
{
	uint8_t pub[1 + 2 * 66];
	EC_GROUP *grp = NULL;
	EC_POINT *pt = NULL;
	BIGNUM *d = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *key = NULL;
	size_t pub_len;

	if (len != g->field_len)
		return NULL;
	if (!(d = BN_secure_new()) || !BN_bin2bn(priv, (int)len, d) || BN_is_zero(d) ||
	    !(grp = EC_GROUP_new_by_curve_name(g->nid)) || !(pt = EC_POINT_new(grp)) ||
	    !EC_POINT_mul(grp, pt, d, NULL, NULL, NULL))
		goto out;
	pub_len = EC_POINT_point2oct(grp, pt, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof(pub), NULL);
	if (pub_len != 1 + g->pub_len || !(bld = OSSL_PARAM_BLD_new()) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, g->ossl, 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len))
		goto out;
	key = fromdata("EC", EVP_PKEY_KEYPAIR, bld);
out:
	OSSL_PARAM_BLD_free(bld);
	EC_POINT_free(pt);
	EC_GROUP_free(grp);
	BN_clear_free(d);
	return key;
}

struct ike_dh *ike_dh_new_with_private(uint16_t group, const uint8_t *priv, size_t len)
{
	const struct dh_group *g = group_find(group);
	struct ike_dh *dh;
	EVP_PKEY *key = NULL;

	if (!g || !priv)
		return NULL;
	if (g->kind == KIND_ECP)
		key = ecp_from_private(g, priv, len);
	else if (g->kind == KIND_XDH && len == g->field_len)
		key = EVP_PKEY_new_raw_private_key_ex(NULL, g->ossl, NULL, priv, len);
	if (!key)
		return NULL;
	if (!(dh = calloc(1, sizeof(*dh)))) {
		EVP_PKEY_free(key);
		return NULL;
	}
	dh->g = g;
	dh->key = key;
	return dh;
}

int ike_dh_public(const struct ike_dh *dh, uint8_t *out, size_t *len)
{
	uint8_t pt[1 + 2 * 66];
	BIGNUM *y = NULL;
	size_t n = 0;
	int err = -EIO;

	if (!dh || !out || !len)
		return -EINVAL;
	if (*len < dh->g->pub_len)
		return -ENOSPC;
	switch (dh->g->kind) {
	case KIND_MODP:
		if (EVP_PKEY_get_bn_param(dh->key, OSSL_PKEY_PARAM_PUB_KEY, &y) &&
		    BN_bn2binpad(y, out, (int)dh->g->pub_len) == (int)dh->g->pub_len)
			err = 0;
		BN_free(y);
		break;
	case KIND_ECP:
		/* OpenSSL gives 0x04 | x | y; the KE payload has no format octet. */
		if (EVP_PKEY_get_octet_string_param(dh->key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
						    sizeof(pt), &n) &&
		    n == 1 + dh->g->pub_len && pt[0] == POINT_CONVERSION_UNCOMPRESSED) {
			memcpy(out, pt + 1, dh->g->pub_len);
			err = 0;
		}
		break;
	case KIND_XDH:
		n = dh->g->pub_len;
		if (EVP_PKEY_get_raw_public_key(dh->key, out, &n) && n == dh->g->pub_len)
			err = 0;
		break;
	}
	if (!err)
		*len = dh->g->pub_len;
	return err;
}

/* The peer's MODP value as a key, after 1 < y < p - 1 (RFC 7296 2.12 leaves
 * validation to us; 0, 1 and p-1 would force a known shared secret). */
static int modp_peer(const struct ike_dh *dh, const uint8_t *peer, size_t len, EVP_PKEY **out)
{
	BIGNUM *p = NULL, *y = NULL, *pm1 = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	int err = -EIO;

	if (!EVP_PKEY_get_bn_param(dh->key, OSSL_PKEY_PARAM_FFC_P, &p) ||
	    !(y = BN_bin2bn(peer, (int)len, NULL)) || !(pm1 = BN_dup(p)) || !BN_sub_word(pm1, 1))
		goto out;
	err = -EBADMSG;
	if (BN_is_zero(y) || BN_is_one(y) || BN_cmp(y, pm1) >= 0)
		goto out;
	err = -EIO;
	if (!(bld = OSSL_PARAM_BLD_new()) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, dh->g->ossl, 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, y))
		goto out;
	if ((*out = fromdata("DH", EVP_PKEY_PUBLIC_KEY, bld)))
		err = 0;
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(pm1);
	BN_free(y);
	BN_free(p);
	return err;
}

static int ecp_peer(const struct ike_dh *dh, const uint8_t *peer, size_t len, EVP_PKEY **out)
{
	uint8_t pt[1 + 2 * 66];
	OSSL_PARAM_BLD *bld;
	int err = -EIO;

	pt[0] = POINT_CONVERSION_UNCOMPRESSED;
	memcpy(pt + 1, peer, len);
	if (!(bld = OSSL_PARAM_BLD_new()) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, dh->g->ossl, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, len + 1))
		goto out;
	/* Import decodes the point and refuses one that is not on the curve. */
	*out = fromdata("EC", EVP_PKEY_PUBLIC_KEY, bld);
	err = *out ? 0 : -EBADMSG;
out:
	OSSL_PARAM_BLD_free(bld);
	return err;
}

int ike_dh_derive(struct ike_dh *dh, const uint8_t *peer, size_t len, struct secret **shared)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	struct secret *s = NULL;
	size_t n = 0;
	int err;

	if (!dh || !peer || !shared)
		return -EINVAL;
	*shared = NULL;
	if (len != dh->g->pub_len)
		return -EBADMSG;
	switch (dh->g->kind) {
	case KIND_MODP:
		err = modp_peer(dh, peer, len, &pkey);
		break;
	case KIND_ECP:
		err = ecp_peer(dh, peer, len, &pkey);
		break;
	default:
		pkey = EVP_PKEY_new_raw_public_key_ex(NULL, dh->g->ossl, NULL, peer, len);
		err = pkey ? 0 : -EBADMSG;
		break;
	}
	if (err)
		goto out;
	err = -EIO;
	if (!(ctx = EVP_PKEY_CTX_new_from_pkey(NULL, dh->key, NULL)) || EVP_PKEY_derive_init(ctx) <= 0)
		goto out;
	/* RFC 7296 section 2.14: g^ir is padded to the length of the modulus. */
	if (dh->g->kind == KIND_MODP && EVP_PKEY_CTX_set_dh_pad(ctx, 1) <= 0)
		goto out;
	/* ECP: the full public-key check (on the curve, in the group); the
	 * others were range-checked above or have no invalid encodings. */
	if (EVP_PKEY_derive_set_peer_ex(ctx, pkey, dh->g->kind == KIND_ECP) <= 0) {
		err = -EBADMSG;
		goto out;
	}
	if (EVP_PKEY_derive(ctx, NULL, &n) <= 0 || !(s = secret_new(n)))
		goto out;
	/* X25519/X448 fail here on an all-zero result (a small-order peer
	 * point, RFC 7748 section 6); that is the peer's fault. */
	if (EVP_PKEY_derive(ctx, s->p, &n) <= 0) {
		err = dh->g->kind == KIND_XDH ? -EBADMSG : -EIO;
		goto out;
	}
	s->len = n;
	if (n != dh->g->field_len) {
		err = -EIO;
		goto out;
	}
	*shared = s;
	s = NULL;
	err = 0;
out:
	secret_free(s);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return err;
}

void ike_dh_free(struct ike_dh *dh)
{
	if (!dh)
		return;
	EVP_PKEY_free(dh->key);
	free(dh);
}
