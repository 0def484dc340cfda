/* Certificates for IKE_AUTH: our credentials, CERT/CERTREQ, RFC 7427 signatures, the peer's checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "ike/cert.h"
#include "ike/message.h"
#include "iketcp/log.h"

struct ike_cred {
	struct ike_cred *next;
	char *cert_path, *ca_path;
	struct timespec cert_mtime, ca_mtime;
	X509 *chain[IKE_CERT_MAX_CHAIN]; /* [0]: ours */
	size_t nchain;
	EVP_PKEY *key;
	X509_STORE *store;
	uint8_t anchor_ids[IKE_CERT_MAX_ANCHORS][SHA_DIGEST_LENGTH]; /* SHA-1 of each anchor's SPKI */
	size_t nanchors;
	uint8_t my_anchor[SHA_DIGEST_LENGTH]; /* the anchor our own chain ends at, if known */
	bool have_my_anchor;
};

static struct ike_cred *cache;

/* ---- RFC 7427 AlgorithmIdentifiers (appendix A) ------------------------------------- */

static const uint8_t ai_rsa_sha256[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
					 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00 };
static const uint8_t ai_ecdsa_sha256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
static const uint8_t ai_ecdsa_sha384[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03 };
static const uint8_t ai_ecdsa_sha512[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04 };
/* RSASSA-PSS { hashAlgorithm sha256, maskGenAlgorithm mgf1(sha256), saltLength 32 } */
static const uint8_t ai_rsa_pss_sha256[] = {
	0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0, 0x0f,
	0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa1, 0x1c,
	0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09,
	0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
};

/* ---- loading ----------------------------------------------------------------------- */

static void cred_free(struct ike_cred *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nchain; i++)
		X509_free(c->chain[i]);
	EVP_PKEY_free(c->key);
	X509_STORE_free(c->store);
	free(c->cert_path);
	free(c->ca_path);
	free(c);
}

void ike_cred_cache_flush(void)
{
	while (cache) {
		struct ike_cred *c = cache;
		cache = c->next;
		cred_free(c);
	}
}

static int spki_sha1(X509 *x, uint8_t out[SHA_DIGEST_LENGTH])
{
	unsigned char *der = NULL;
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (n <= 0)
		return -EINVAL;
	SHA1(der, (size_t)n, out);
	OPENSSL_free(der);
	return 0;
}

/* Every certificate in a PEM file, in order (other PEM blocks are skipped). */
static size_t read_certs(const char *path, X509 **out, size_t cap, size_t *extra, char *why, size_t wcap)
{
	BIO *b = BIO_new_file(path, "r");
	size_t n = 0;
	X509 *x;

	*extra = 0;
	if (!b) {
		snprintf(why, wcap, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
		ERR_clear_error();
		return 0;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (n < cap)
			out[n++] = x;
		else {
			X509_free(x);
			(*extra)++;
		}
	}
	ERR_clear_error();
	BIO_free(b);
	if (!n)
		snprintf(why, wcap, "%s: no PEM certificate in it", path);
	return n;
}

static EVP_PKEY *read_key(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	ERR_clear_error();
	BIO_free(b);
	return k;
}

/* The private key kinds we sign with. */
static bool key_usable(EVP_PKEY *k)
{
	char group[64];
	size_t gl;

	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA)
		return true;
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &gl))
		return false;
	return !strcmp(group, "prime256v1") || !strcmp(group, "secp384r1") || !strcmp(group, "secp521r1");
}

static struct ike_cred *cred_load(const char *certificate, const char *ca, char *why, size_t cap)
{
	struct ike_cred *c = calloc(1, sizeof(*c));
	X509 *anchors[IKE_CERT_MAX_ANCHORS] = { 0 };
	size_t nanch = 0, extra;

	if (!c || !(c->cert_path = strdup(certificate)) || !(c->ca_path = strdup(ca)) ||
	    !(c->store = X509_STORE_new())) {
		snprintf(why, cap, "out of memory");
		goto fail;
	}
	c->nchain = read_certs(certificate, c->chain, IKE_CERT_MAX_CHAIN, &extra, why, cap);
	if (!c->nchain)
		goto fail;
	if (extra) {
		snprintf(why, cap, "%s: more than %d certificates in the chain", certificate, IKE_CERT_MAX_CHAIN);
		goto fail;
	}
	c->key = read_key(certificate);
	if (!c->key) {
		snprintf(why, cap, "%s: no PEM private key after the certificate", certificate);
		goto fail;
	}
	if (X509_check_private_key(c->chain[0], c->key) != 1) {
		ERR_clear_error();
		snprintf(why, cap, "%s: the private key does not match the certificate", certificate);
		goto fail;
	}
	if (!key_usable(c->key)) {
		snprintf(why, cap, "%s: key type not supported (RSA, ECDSA P-256/P-384/P-521)", certificate);
		goto fail;
	}
	nanch = read_certs(ca, anchors, IKE_CERT_MAX_ANCHORS, &extra, why, cap);
	if (!nanch)
		goto fail;
	if (extra) {
		snprintf(why, cap, "%s: more than %d trust anchors", ca, IKE_CERT_MAX_ANCHORS);
		goto fail;
	}
	X509 *top = c->chain[c->nchain - 1];
	for (size_t i = 0; i < nanch; i++) {
		if (!X509_STORE_add_cert(c->store, anchors[i]) || spki_sha1(anchors[i], c->anchor_ids[i])) {
			snprintf(why, cap, "%s: cannot use certificate %zu", ca, i + 1);
			goto fail;
		}
		if (X509_check_issued(anchors[i], top) == X509_V_OK) {
			memcpy(c->my_anchor, c->anchor_ids[i], SHA_DIGEST_LENGTH);
			c->have_my_anchor = true;
		}
	}
	c->nanchors = nanch;
	/* Our chain may end at a CA the peer trusts but we do not: a self-signed top is its own anchor. */
	if (!c->have_my_anchor && X509_check_issued(top, top) == X509_V_OK && !spki_sha1(top, c->my_anchor))
		c->have_my_anchor = true;
	for (size_t i = 0; i < nanch; i++)
		X509_free(anchors[i]);
	ERR_clear_error();
	return c;
fail:
	for (size_t i = 0; i < nanch; i++)
		X509_free(anchors[i]);
	ERR_clear_error();
	cred_free(c);
	return NULL;
}

static bool mtime(const char *path, struct timespec *t)
{
	struct stat st;
	if (stat(path, &st))
		return false;
	*t = st.st_mtim;
	return true;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

const struct ike_cred *ike_cred_get(const char *certificate, const char *ca, char *why, size_t cap)
{
	struct timespec tc = { 0 }, ta = { 0 };
	struct ike_cred **pp, *c;

	if (!certificate || !ca) {
		snprintf(why, cap, "authmethod signature needs both certificate and ca");
		return NULL;
	}
	bool have_tc = mtime(certificate, &tc), have_ta = mtime(ca, &ta);
	for (pp = &cache; (c = *pp); pp = &c->next) {
		if (strcmp(c->cert_path, certificate) || strcmp(c->ca_path, ca))
			continue;
		if (have_tc && have_ta && same_time(&tc, &c->cert_mtime) && same_time(&ta, &c->ca_mtime))
			return c;
		*pp = c->next; /* changed or gone: load again */
		cred_free(c);
		break;
	}
	c = cred_load(certificate, ca, why, cap);
	if (!c)
		return NULL;
	c->cert_mtime = tc;
	c->ca_mtime = ta;
	c->next = cache;
	cache = c;
	return c;
}

int ike_cert_check_phase1(const struct conf_phase1 *p1)
{
	char why[IKE_CERT_WHY_MAX + 4096];

	if (p1->authmethod != CONF_AUTH_SIGNATURE)
		return 0;
	if (ike_cred_get(p1->certificate, p1->ca, why, sizeof(why)))
		return 0;
	log_error("%s: certificate authentication unusable: %s", p1->name, why);
	return -EINVAL;
}

/* ---- what we send ------------------------------------------------------------------ */

int ike_cred_id(const struct ike_cred *c, const char *localid, struct ike_id *id)
{
	unsigned char *der = NULL;

	if (localid && *localid)
		return ike_id_from_conf(id, localid, NULL);
	memset(id, 0, sizeof(*id));
	int n = i2d_X509_NAME(X509_get_subject_name(c->chain[0]), &der);
	if (n <= 0 || n > IKE_ID_MAX) {
		OPENSSL_free(der);
		return -EINVAL;
	}
	id->type = ID_DER_ASN1_DN;
	id->len = (uint8_t)n;
	memcpy(id->data, der, (size_t)n);
	OPENSSL_free(der);
	return 0;
}

void ike_cert_enc_certs(struct ike_enc *e, const struct ike_cred *c)
{
	for (size_t i = 0; i < c->nchain; i++) {
		unsigned char *der = NULL;
		int n = i2d_X509(c->chain[i], &der);
		struct ike_pl pl = { .type = IKE_PL_CERT };
		pl.u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, der, n > 0 ? (size_t)n : 0 };
		if (n <= 0 || ike_pl_encode(e, &pl))
			e->w.overflow = true; /* reported when the message is finished */
		OPENSSL_free(der);
	}
}

void ike_cert_enc_certreq(struct ike_enc *e, const struct ike_cred *c)
{
	struct ike_pl pl = { .type = IKE_PL_CERTREQ };
	pl.u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, &c->anchor_ids[0][0],
					  c->nanchors * SHA_DIGEST_LENGTH };
	if (ike_pl_encode(e, &pl))
		e->w.overflow = true;
}

void ike_cert_enc_hash_algorithms(struct ike_enc *e)
{
	static const uint8_t algs[] = { 0, HASH_SHA2_256, 0, HASH_SHA2_384, 0, HASH_SHA2_512 };
	ike_enc_notify(e, IKE_PROTO_NONE, NULL, 0, SIGNATURE_HASH_ALGORITHMS, algs, sizeof(algs));
}

bool ike_cert_certreq_names_us(const struct ike_cred *c, const struct ike_msg *m)
{
	const struct ike_pl *p = NULL;
	bool any = false;

	while ((p = ike_msg_find(m, IKE_PL_CERTREQ, p))) {
		if (p->u.cert.encoding != CERT_X509_SIGNATURE)
			continue;
		any = true;
		for (size_t o = 0; c->have_my_anchor && o + SHA_DIGEST_LENGTH <= p->u.cert.len; o += SHA_DIGEST_LENGTH)
			if (!memcmp(p->u.cert.data + o, c->my_anchor, SHA_DIGEST_LENGTH))
				return true;
	}
	return !any;
}

/* ---- signatures (RFC 7427 3) ------------------------------------------------------- */

static const EVP_MD *ec_hash(EVP_PKEY *k, const uint8_t **ai, size_t *ai_len)
{
	int bits = EVP_PKEY_get_bits(k);
	if (bits > 384) {
		*ai = ai_ecdsa_sha512;
		*ai_len = sizeof(ai_ecdsa_sha512);
		return EVP_sha512();
	}
	if (bits > 256) {
		*ai = ai_ecdsa_sha384;
		*ai_len = sizeof(ai_ecdsa_sha384);
		return EVP_sha384();
	}
	*ai = ai_ecdsa_sha256;
	*ai_len = sizeof(ai_ecdsa_sha256);
	return EVP_sha256();
}

static int set_pss(EVP_PKEY_CTX *pctx, const EVP_MD *md, const EVP_MD *mgf, int salt)
{
	return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
	       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, mgf) > 0 && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) > 0 &&
	       EVP_PKEY_CTX_set_signature_md(pctx, md) > 0;
}

int ike_cert_sign(const struct ike_cred *c, enum ike_sig_scheme scheme, const struct ike_blob *parts,
		  size_t nparts, uint8_t *out, size_t cap, size_t *len)
{
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const uint8_t *ai = ai_rsa_sha256;
	size_t ai_len = sizeof(ai_rsa_sha256), siglen = 0;
	const EVP_MD *md = EVP_sha256();
	bool rsa = EVP_PKEY_get_base_id(c->key) == EVP_PKEY_RSA;
	int err = -EINVAL;

	if (!mc)
		return -ENOMEM;
	if (!rsa)
		md = ec_hash(c->key, &ai, &ai_len);
	else if (scheme == IKE_SIG_RSA_PSS_SHA256) {
		ai = ai_rsa_pss_sha256;
		ai_len = sizeof(ai_rsa_pss_sha256);
	}
	if (cap < 1 + ai_len || EVP_DigestSignInit(mc, &pctx, md, NULL, c->key) != 1)
		goto out;
	if (rsa && scheme == IKE_SIG_RSA_PSS_SHA256 && !set_pss(pctx, md, md, 32))
		goto out;
	for (size_t i = 0; i < nparts; i++)
		if (EVP_DigestSignUpdate(mc, parts[i].p, parts[i].len) != 1)
			goto out;
	if (EVP_DigestSignFinal(mc, NULL, &siglen) != 1 || siglen > cap - 1 - ai_len)
		goto out;
	out[0] = (uint8_t)ai_len;
	memcpy(out + 1, ai, ai_len);
	if (EVP_DigestSignFinal(mc, out + 1 + ai_len, &siglen) != 1)
		goto out;
	*len = 1 + ai_len + siglen;
	err = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(mc);
	return err;
}

static const EVP_MD *sha2(int nid)
{
	switch (nid) {
	case NID_sha256:
		return EVP_sha256();
	case NID_sha384:
		return EVP_sha384();
	case NID_sha512:
		return EVP_sha512();
	default:
		return NULL; /* SHA-1 and others: not for IKEv2 signatures (RFC 8247 3.2) */
	}
}

/* An AlgorithmIdentifier's parameters as a nested AlgorithmIdentifier (PSS hash, MGF1 hash). */
static X509_ALGOR *nested_algor(const X509_ALGOR *a)
{
	const ASN1_OBJECT *obj;
	int ptype;
	const void *pval;

	X509_ALGOR_get0(&obj, &ptype, &pval, a);
	if (ptype != V_ASN1_SEQUENCE)
		return NULL;
	const ASN1_STRING *s = pval;
	const unsigned char *p = ASN1_STRING_get0_data(s);
	return d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(s));
}

/* RSASSA-PSS-params (RFC 4055 3.1): hash, MGF1 with a hash, salt length; SHA-2 only. */
static bool pss_params(const X509_ALGOR *a, const EVP_MD **md, const EVP_MD **mgf, int *salt)
{
	const ASN1_OBJECT *obj;
	int ptype;
	const void *pval;
	bool ok = false;
	X509_ALGOR *mh = NULL;

	X509_ALGOR_get0(&obj, &ptype, &pval, a);
	if (ptype != V_ASN1_SEQUENCE)
		return false;
	const ASN1_STRING *s = pval;
	const unsigned char *p = ASN1_STRING_get0_data(s);
	RSA_PSS_PARAMS *pp = d2i_RSA_PSS_PARAMS(NULL, &p, ASN1_STRING_length(s));
	if (!pp || !pp->hashAlgorithm || !pp->maskGenAlgorithm)
		goto out;
	*md = sha2(OBJ_obj2nid(pp->hashAlgorithm->algorithm));
	if (OBJ_obj2nid(pp->maskGenAlgorithm->algorithm) != NID_mgf1 || !(mh = nested_algor(pp->maskGenAlgorithm)))
		goto out;
	*mgf = sha2(OBJ_obj2nid(mh->algorithm));
	long sl = pp->saltLength ? ASN1_INTEGER_get(pp->saltLength) : 20;
	if (pp->trailerField && ASN1_INTEGER_get(pp->trailerField) != 1)
		goto out;
	*salt = (int)sl;
	ok = *md && *mgf && sl >= 0 && sl <= 512;
out:
	X509_ALGOR_free(mh);
	RSA_PSS_PARAMS_free(pp);
	return ok;
}

int ike_cert_verify_auth(X509 *leaf, const uint8_t *auth, size_t len, const struct ike_blob *parts, size_t nparts,
			 char *why, size_t cap)
{
	EVP_PKEY *k = X509_get0_pubkey(leaf);
	EVP_MD_CTX *mc = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	X509_ALGOR *alg = NULL;
	const EVP_MD *md = NULL, *mgf = NULL;
	int salt = 0, err = -EKEYREJECTED;
	bool pss = false;

	if (!k || len < 2 || (size_t)auth[0] + 1 > len) {
		snprintf(why, cap, "bad signature (AUTH data malformed)");
		goto out;
	}
	const unsigned char *p = auth + 1;
	alg = d2i_X509_ALGOR(NULL, &p, auth[0]);
	if (!alg || p != auth + 1 + auth[0]) {
		snprintf(why, cap, "bad signature (AlgorithmIdentifier malformed)");
		goto out;
	}
	int nid = OBJ_obj2nid(alg->algorithm), key_id = EVP_PKEY_get_base_id(k);
	bool want_rsa = true;
	switch (nid) {
	case NID_sha256WithRSAEncryption:
		md = EVP_sha256();
		break;
	case NID_sha384WithRSAEncryption:
		md = EVP_sha384();
		break;
	case NID_sha512WithRSAEncryption:
		md = EVP_sha512();
		break;
	case NID_ecdsa_with_SHA256:
		md = EVP_sha256();
		want_rsa = false;
		break;
	case NID_ecdsa_with_SHA384:
		md = EVP_sha384();
		want_rsa = false;
		break;
	case NID_ecdsa_with_SHA512:
		md = EVP_sha512();
		want_rsa = false;
		break;
	case NID_rsassaPss:
		pss = true;
		if (!pss_params(alg, &md, &mgf, &salt)) {
			snprintf(why, cap, "bad signature (RSASSA-PSS parameters not supported)");
			goto out;
		}
		break;
	default:
		snprintf(why, cap, "bad signature (algorithm %s not supported)", OBJ_nid2sn(nid));
		goto out;
	}
	if (want_rsa ? key_id != EVP_PKEY_RSA && key_id != EVP_PKEY_RSA_PSS : key_id != EVP_PKEY_EC) {
		snprintf(why, cap, "bad signature (%s does not fit the certificate's key)", OBJ_nid2sn(nid));
		goto out;
	}
	mc = EVP_MD_CTX_new();
	if (!mc || EVP_DigestVerifyInit(mc, &pctx, md, NULL, k) != 1 || (pss && !set_pss(pctx, md, mgf, salt))) {
		snprintf(why, cap, "bad signature (cannot set up %s)", OBJ_nid2sn(nid));
		goto out;
	}
	bool fed = true;
	for (size_t i = 0; i < nparts && fed; i++)
		fed = EVP_DigestVerifyUpdate(mc, parts[i].p, parts[i].len) == 1;
	if (fed && EVP_DigestVerifyFinal(mc, p, len - 1 - auth[0]) == 1)
		err = 0;
	else
		snprintf(why, cap, "bad signature (%s)", OBJ_nid2sn(nid));
out:
	ERR_clear_error();
	EVP_MD_CTX_free(mc);
	X509_ALGOR_free(alg);
	return err;
}

/* ---- the peer's certificate --------------------------------------------------------- */

X509 *ike_cert_peer_verify(const struct ike_cred *c, const struct ike_msg *m, char *why, size_t cap)
{
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509 *leaf = NULL;
	const struct ike_pl *p = NULL;
	bool ok = false;

	if (!untrusted || !ctx) {
		snprintf(why, cap, "out of memory");
		goto out;
	}
	while ((p = ike_msg_find(m, IKE_PL_CERT, p))) {
		if (p->u.cert.encoding != CERT_X509_SIGNATURE || p->u.cert.len > INT32_MAX)
			continue;
		const unsigned char *d = p->u.cert.data;
		X509 *x = d2i_X509(NULL, &d, (long)p->u.cert.len);
		if (!x || d != p->u.cert.data + p->u.cert.len) {
			X509_free(x);
			snprintf(why, cap, "malformed certificate");
			goto out;
		}
		if (!leaf)
			leaf = x;
		else if (sk_X509_num(untrusted) >= 8 || !sk_X509_push(untrusted, x)) {
			X509_free(x);
			snprintf(why, cap, "too many certificates");
			goto out;
		}
	}
	if (!leaf) {
		snprintf(why, cap, "no certificate");
		goto out;
	}
	if (X509_STORE_CTX_init(ctx, c->store, leaf, untrusted) != 1) {
		snprintf(why, cap, "out of memory");
		goto out;
	}
	if (X509_verify_cert(ctx) == 1) {
		ok = true;
		goto out;
	}
	int e = X509_STORE_CTX_get_error(ctx);
	if (e == X509_V_ERR_CERT_HAS_EXPIRED)
		snprintf(why, cap, "expired certificate");
	else if (e == X509_V_ERR_CERT_NOT_YET_VALID)
		snprintf(why, cap, "certificate not yet valid");
	else
		snprintf(why, cap, "untrusted certificate (%s)", X509_verify_cert_error_string(e));
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	if (!ok) {
		X509_free(leaf);
		leaf = NULL;
	}
	return leaf;
}

bool ike_cert_id_matches(X509 *leaf, const struct ike_id_pl *id)
{
	const unsigned char *p = id->data;
	bool ok = false;

	switch (id->id_type) {
	case ID_DER_ASN1_DN: {
		X509_NAME *n = d2i_X509_NAME(NULL, &p, (long)id->len);
		ok = n && p == id->data + id->len && !X509_NAME_cmp(n, X509_get_subject_name(leaf));
		X509_NAME_free(n);
		break;
	}
	case ID_FQDN:
		ok = id->len && !memchr(id->data, 0, id->len) &&
		     X509_check_host(leaf, (const char *)id->data, id->len,
				     X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
				     NULL) == 1;
		break;
	case ID_RFC822_ADDR:
		ok = id->len && !memchr(id->data, 0, id->len) &&
		     X509_check_email(leaf, (const char *)id->data, id->len, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT) == 1;
		break;
	case ID_IPV4_ADDR:
	case ID_IPV6_ADDR:
		ok = id->len == (id->id_type == ID_IPV4_ADDR ? 4u : 16u) && X509_check_ip(leaf, id->data, id->len, 0) == 1;
		break;
	default:
		break;
	}
	ERR_clear_error();
	return ok;
}

bool ike_cert_peerid_matches(const struct ike_id_pl *id, const char *peerid)
{
	if (!peerid || !*peerid || id->id_type != ID_DER_ASN1_DN)
		return ike_id_matches(id, peerid);
	const unsigned char *p = id->data;
	X509_NAME *n = d2i_X509_NAME(NULL, &p, (long)id->len);
	BIO *b = BIO_new(BIO_s_mem());
	bool ok = false;
	char *s;

	if (n && b && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
		long l = BIO_get_mem_data(b, &s);
		ok = l >= 0 && (size_t)l == strlen(peerid) && !strncasecmp(s, peerid, (size_t)l);
	}
	BIO_free(b);
	X509_NAME_free(n);
	ERR_clear_error();
	return ok;
}
