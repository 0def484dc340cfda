/*
 * Certificate authentication (RFC 7296 2.15, RFC 7427): a small PKI made
 * here with OpenSSL (two CAs; RSA-2048, ECDSA P-256 and P-384 gateways with
 * SAN DNS names; an expired one; one from the other CA), then two engines in
 * one process over an in-memory pipe, and the signing and checking pieces
 * on their own (tampered AUTH, RSASSA-PSS, hostile AUTH and CERT bytes).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ike/cert.h"
#include "ike/ike.h"
#include "ike/message.h"
#include "ike/sa.h"
#include "iketcp/stats.h"
#include "tests/lib/ike_harness.h"

/* ---- the PKI ------------------------------------------------------------------------ */

static char dir[64];

static char *path(const char *name)
{
	static char p[8][160];
	static int i;
	i = (i + 1) % 8;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static EVP_PKEY *keygen(const char *kind)
{
	EVP_PKEY *k = !strcmp(kind, "rsa") ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
					   : EVP_PKEY_Q_keygen(NULL, NULL, "EC", kind);
	assert_non_null(k);
	return k;
}

static void ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* issuer NULL: self-signed CA. san NULL: none. Validity in days from now. */
static X509 *mkcert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, const char *san, long from_days,
		    long to_days)
{
	static long serial = 1;
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"iketcp test", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_set_pubkey(x, key);
	if (!issuer) {
		ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE");
		ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
	}
	if (san)
		ext(x, issuer, NID_subject_alt_name, san);
	assert_true(X509_sign(x, issuer ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static void write_pem(const char *name, X509 *cert, X509 *chain, EVP_PKEY *key)
{
	FILE *f = fopen(path(name), "w");
	assert_non_null(f);
	if (cert)
		assert_int_equal(PEM_write_X509(f, cert), 1);
	if (chain)
		assert_int_equal(PEM_write_X509(f, chain), 1);
	if (key)
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static X509 *ca_a, *ca_b;
static EVP_PKEY *ca_a_key, *ca_b_key;

/* One gateway: key kind, CN, SAN, validity, issuing CA; written as NAME.pem (certificate then key). */
static void gateway(const char *name, const char *kind, const char *cn, const char *san, long from, long to, bool other_ca)
{
	EVP_PKEY *k = keygen(kind);
	X509 *x = mkcert(cn, k, other_ca ? ca_b : ca_a, other_ca ? ca_b_key : ca_a_key, san, from, to);
	char file[64];
	snprintf(file, sizeof(file), "%s.pem", name);
	write_pem(file, x, NULL, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int pki_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/iketcp-cert-XXXXXX");
	assert_non_null(mkdtemp(dir));
	ca_a_key = keygen("P-256");
	ca_b_key = keygen("P-256");
	ca_a = mkcert("Test CA A", ca_a_key, NULL, NULL, NULL, -1, 3650);
	ca_b = mkcert("Test CA B", ca_b_key, NULL, NULL, NULL, -1, 3650);
	write_pem("ca_a.pem", ca_a, NULL, NULL);
	write_pem("ca_b.pem", ca_b, NULL, NULL);
	write_pem("ca_ab.pem", ca_b, ca_a, NULL);
	gateway("branch_rsa", "rsa", "branch.example", "DNS:branch.example", -1, 365, false);
	gateway("hq_rsa", "rsa", "hq.example", "DNS:hq.example,IP:203.0.113.2", -1, 365, false);
	gateway("branch_ec256", "P-256", "branch.example", "DNS:branch.example,email:ops@branch.example", -1, 365,
		false);
	gateway("hq_ec384", "P-384", "hq.example", "DNS:hq.example", -1, 365, false);
	gateway("hq_expired", "P-256", "hq.example", "DNS:hq.example", -30, -1, false);
	gateway("hq_other_ca", "P-256", "hq.example", "DNS:hq.example", -1, 365, true);
	/* key first, then the certificate: allowed */
	EVP_PKEY *k = keygen("P-256");
	X509 *x = mkcert("hq.example", k, ca_a, ca_a_key, "DNS:hq.example", -1, 365);
	FILE *f = fopen(path("hq_keyfirst.pem"), "w");
	assert_non_null(f);
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	PEM_write_X509(f, x);
	fclose(f);
	/* a certificate with somebody else's key */
	EVP_PKEY *k2 = keygen("P-256");
	write_pem("mismatch.pem", x, NULL, k2);
	write_pem("nokey.pem", x, NULL, NULL);
	EVP_PKEY_free(k2);
	X509_free(x);
	EVP_PKEY_free(k);
	f = fopen(path("garbage.pem"), "w");
	assert_non_null(f);
	fputs("this is not PEM\n", f);
	fclose(f);
	return 0;
}

static int pki_teardown(void **state)
{
	(void)state;
	char cmd[128];
	ike_cred_cache_flush();
	X509_free(ca_a);
	X509_free(ca_b);
	EVP_PKEY_free(ca_a_key);
	EVP_PKEY_free(ca_b_key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the pipe (tests/lib/ike_harness.c) --------------------------------------------- */

struct side {
	unsigned ninst;
	uint32_t spi_in, spi_out;
};

struct net {
	struct ikeh_pipe p;
	struct side s[2];
	unsigned nsent;
};

static int conn_a_tag, conn_b_tag;
#define CONN_A ((struct tcp_conn *)&conn_a_tag)
#define CONN_B ((struct tcp_conn *)&conn_b_tag)

static struct net *g_net;

static int io_send(void *arg, struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	int from = ikeh_side(arg);
	assert_ptr_equal(c, from == 0 ? CONN_A : CONN_B);
	ikeh_enqueue(&g_net->p, !from, g_net->p.conn[!from], buf, len);
	g_net->nsent++;
	return 0;
}

static int dp_install(void *arg, const struct child_sa *sa)
{
	struct side *s = &g_net->s[ikeh_side(arg)];
	s->ninst++;
	s->spi_in = sa->spi_in;
	s->spi_out = sa->spi_out;
	return 0;
}

static const struct child_sa_ops dp_ops = { dp_install, ikeh_dp_update, ikeh_dp_remove, ikeh_dp_counters };
static const struct ike_io io = { .connect = ikeh_io_connect, .send = io_send, .close = ikeh_io_close,
				  .hold = ikeh_io_hold, .addrs = ikeh_io_addrs, .arg = NULL };

/* One gateway's signature tunnel; localid/peerid NULL: unset. */
struct gw {
	const char *cert, *ca, *localid, *peerid;
};

static struct config *gw_conf(bool initiator, const struct gw *g)
{
	char auth[512];
	snprintf(auth, sizeof(auth),
		 "        set authmethod signature\n"
		 "        set certificate \"%s\"\n"
		 "        set ca \"%s\"\n",
		 path(g->cert), path(g->ca));
	const struct ikeh_gw c = {
		.initiator = initiator,
		.ike_version = true,
		.auth = auth,
		.localid = g->localid,
		.peerid = g->peerid,
	};
	return ikeh_gw_conf(&c);
}

static void net_free(struct net *n)
{
	ikeh_close(&n->p);
	free(n);
	g_net = NULL;
}

static struct net *run(const struct gw *a, const struct gw *b)
{
	struct net *n = g_net = calloc(1, sizeof(*n));
	assert_non_null(n);
	n->p.max_q = 16;
	n->p.guard = 50;
	ikeh_open(&n->p, CONN_A, CONN_B, gw_conf(true, a), gw_conf(false, b), &io, &dp_ops);
	/* IKE_SA_INIT { SA KE Ni } -->  <-- IKE_SA_INIT { SA KE Nr }
	 * IKE_AUTH { IDi CERT CERTREQ AUTH(14) SA TSi TSr } -->
	 * <-- IKE_AUTH { IDr CERT AUTH(14) SA TSi TSr } or { N(AUTHENTICATION_FAILED) } */
	ikeh_pump(&n->p);
	return n;
}

static void expect_up(const struct gw *a, const struct gw *b)
{
	struct net *n = run(a, b);
	assert_int_equal(n->nsent, 4);
	assert_int_equal(stats.ike.auth_failures, 0);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_int_equal(n->s[0].ninst, 1);
	assert_int_equal(n->s[1].ninst, 1);
	assert_int_equal(n->s[0].spi_out, n->s[1].spi_in);
	assert_int_equal(n->s[1].spi_out, n->s[0].spi_in);
	net_free(n);
}

/* failures: 2 when the responder refused (it counts, the initiator counts the notify); 1 when the
 * initiator refused the responder's AUTH: it says so in INFORMATIONAL { N(AUTHENTICATION_FAILED) }
 * (2.21.2), which the responder counts too before it drops the SA it had completed. */
static void expect_refused(const struct gw *a, const struct gw *b, unsigned failures)
{
	struct net *n = run(a, b);
	assert_int_equal(n->nsent, failures == 2 ? 4 : 6);
	assert_int_equal(stats.ike.auth_failures, 2);
	assert_int_equal(n->s[0].ninst, 0);
	if (failures == 2) {
		assert_int_equal(stats.ike.sa_established, 0);
		assert_int_equal(n->s[1].ninst, 0);
	}
	assert_null(n->p.ike[0]->sas);
	assert_null(n->p.ike[1]->sas); /* no stale SA on the responder either */
	net_free(n);
}

static const struct gw branch_rsa = { "branch_rsa.pem", "ca_a.pem", "branch.example", "hq.example" };
static const struct gw hq_rsa = { "hq_rsa.pem", "ca_a.pem", "hq.example", "branch.example" };
static const struct gw branch_ec = { "branch_ec256.pem", "ca_a.pem", "branch.example", "hq.example" };
static const struct gw hq_ec = { "hq_ec384.pem", "ca_a.pem", "hq.example", "branch.example" };

static void test_rsa_both(void **state)
{
	(void)state;
	expect_up(&branch_rsa, &hq_rsa);
}

static void test_ecdsa_both(void **state)
{
	(void)state;
	expect_up(&branch_ec, &hq_ec);
}

static void test_mixed_both_ways(void **state)
{
	(void)state;
	expect_up(&branch_ec, &hq_rsa);
	expect_up(&branch_rsa, &hq_ec);
}

/* No localid: the subject DN as ID_DER_ASN1_DN; peerid as its RFC 2253 text. */
static void test_dn_ids(void **state)
{
	(void)state;
	struct gw a = { "branch_rsa.pem", "ca_a.pem", NULL, "CN=hq.example,O=iketcp test" };
	struct gw b = { "hq_ec384.pem", "ca_a.pem", NULL, "CN=branch.example,O=iketcp test" };
	expect_up(&a, &b);
	/* a peerid naming another DN refuses */
	b.peerid = "CN=elsewhere.example,O=iketcp test";
	expect_refused(&a, &b, 2);
}

/* Several anchors in one ca file, an IP ID found in the SAN, a key before the certificate. */
static void test_ip_id_and_anchor_list(void **state)
{
	(void)state;
	struct gw a = { "branch_ec256.pem", "ca_ab.pem", "ops@branch.example", "203.0.113.2" };
	struct gw b = { "hq_rsa.pem", "ca_ab.pem", "203.0.113.2", NULL };
	expect_up(&a, &b);
	struct gw b2 = { "hq_keyfirst.pem", "ca_a.pem", "hq.example", NULL };
	struct gw a2 = { "branch_ec256.pem", "ca_a.pem", "branch.example", "hq.example" };
	expect_up(&a2, &b2);
}

static void test_wrong_ca(void **state)
{
	(void)state;
	/* gwB trusts CA B only: it refuses gwA's certificate and gwA hears AUTHENTICATION_FAILED */
	struct gw b = hq_rsa;
	b.ca = "ca_b.pem";
	expect_refused(&branch_rsa, &b, 2);
	/* gwA trusts CA B only: it refuses gwB's answer */
	struct gw a = branch_ec;
	a.ca = "ca_b.pem";
	expect_refused(&a, &hq_ec, 1);
	/* gwB's certificate comes from CA B */
	struct gw b3 = { "hq_other_ca.pem", "ca_a.pem", "hq.example", "branch.example" };
	expect_refused(&branch_ec, &b3, 1);
}

static void test_expired(void **state)
{
	(void)state;
	struct gw b = { "hq_expired.pem", "ca_a.pem", "hq.example", "branch.example" };
	expect_refused(&branch_ec, &b, 1);
	/* and the other way: the responder refuses an expired initiator */
	struct gw a = { "hq_expired.pem", "ca_a.pem", "hq.example", "branch.example" };
	struct gw b2 = { "branch_ec256.pem", "ca_a.pem", "branch.example", "hq.example" };
	expect_refused(&a, &b2, 2);
}

static void test_id_mismatch(void **state)
{
	(void)state;
	/* gwB claims an FQDN its certificate does not carry */
	struct gw b = hq_rsa;
	b.localid = "other.example";
	struct gw a = branch_rsa;
	a.peerid = NULL;
	expect_refused(&a, &b, 1);
	/* gwA claims one */
	struct gw a2 = branch_ec;
	a2.localid = "hq.example";
	struct gw b2 = hq_ec;
	b2.peerid = NULL;
	expect_refused(&a2, &b2, 2);
}

/* A bad certificate file: the initiator never sends IKE_AUTH, ike_cert_check_phase1 says why. */
static void test_bad_credentials(void **state)
{
	(void)state;
	char why[4200];
	static const char *const bad[] = { "mismatch.pem", "nokey.pem", "garbage.pem", "missing.pem" };
	static const char *const reason[] = { "does not match", "no PEM private key", "no PEM certificate",
					      "cannot read" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_null(ike_cred_get(path(bad[i]), path("ca_a.pem"), why, sizeof(why)));
		assert_non_null(strstr(why, bad[i]));
		assert_non_null(strstr(why, reason[i]));
	}
	assert_null(ike_cred_get(path("hq_rsa.pem"), path("garbage.pem"), why, sizeof(why)));
	assert_non_null(strstr(why, "garbage.pem"));
	assert_null(ike_cred_get(NULL, path("ca_a.pem"), why, sizeof(why)));

	struct gw a = { "mismatch.pem", "ca_a.pem", "branch.example", NULL };
	struct net *n = run(&a, &hq_rsa);
	assert_int_equal(stats.ike.sa_established, 0);
	assert_true(n->nsent <= 2); /* IKE_SA_INIT only */
	assert_int_equal(ike_cert_check_phase1(&n->p.conf[0]->phase1[0]), -EINVAL);
	assert_int_equal(ike_cert_check_phase1(&n->p.conf[1]->phase1[0]), 0);
	net_free(n);
}

/* ---- the pieces on their own ------------------------------------------------------ */

static X509 *load_cert(const char *name)
{
	FILE *f = fopen(path(name), "r");
	assert_non_null(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static const uint8_t octets1[] = "IKE_SA_INIT request bytes", octets2[] = "Nr", octets3[32] = { 1, 2, 3 };
static const struct ike_blob parts[] = { { octets1, sizeof(octets1) }, { octets2, 2 }, { octets3, 32 } };

/* ai_prefix: the first ai_prefix_len octets of the ai_len-octet AlgorithmIdentifier expected. */
static void sign_verify(const char *certfile, enum ike_sig_scheme scheme, const uint8_t *ai_prefix,
			size_t ai_prefix_len, size_t ai_len)
{
	char why[IKE_CERT_WHY_MAX];
	uint8_t auth[IKE_CERT_AUTH_MAX];
	size_t len = 0;
	const struct ike_cred *c = ike_cred_get(path(certfile), path("ca_a.pem"), why, sizeof(why));
	assert_non_null(c);
	assert_int_equal(ike_cert_sign(c, scheme, parts, 3, auth, sizeof(auth), &len), 0);
	assert_true(len > 1 + ai_len);
	assert_int_equal(auth[0], ai_len);
	assert_memory_equal(auth + 1, ai_prefix, ai_prefix_len);
	X509 *x = load_cert(certfile);
	assert_int_equal(ike_cert_verify_auth(x, auth, len, parts, 3, why, sizeof(why)), 0);

	/* tampered signature, tampered signed octets, truncated: all refused */
	auth[len - 3] ^= 0x40;
	assert_int_equal(ike_cert_verify_auth(x, auth, len, parts, 3, why, sizeof(why)), -EKEYREJECTED);
	assert_non_null(strstr(why, "bad signature"));
	auth[len - 3] ^= 0x40;
	struct ike_blob other[3] = { parts[0], parts[1], { octets1, 20 } };
	assert_int_equal(ike_cert_verify_auth(x, auth, len, other, 3, why, sizeof(why)), -EKEYREJECTED);
	assert_int_equal(ike_cert_verify_auth(x, auth, len - 1, parts, 3, why, sizeof(why)), -EKEYREJECTED);
	/* the right signature under another certificate's key */
	X509 *y = load_cert("hq_other_ca.pem");
	assert_int_equal(ike_cert_verify_auth(y, auth, len, parts, 3, why, sizeof(why)), -EKEYREJECTED);
	X509_free(y);
	X509_free(x);
}

static void test_sign_verify(void **state)
{
	(void)state;
	static const uint8_t rsa256[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b };
	static const uint8_t ec256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
	static const uint8_t ec384[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03 };
	static const uint8_t pss[] = { 0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a };
	sign_verify("hq_rsa.pem", IKE_SIG_DEFAULT, rsa256, sizeof(rsa256), 15);
	sign_verify("branch_ec256.pem", IKE_SIG_DEFAULT, ec256, sizeof(ec256), 12);
	sign_verify("hq_ec384.pem", IKE_SIG_DEFAULT, ec384, sizeof(ec384), 12);
	sign_verify("hq_rsa.pem", IKE_SIG_RSA_PSS_SHA256, pss, sizeof(pss), 0x43);
}

/* A PSS signature made by OpenSSL alone, with its own AlgorithmIdentifier (salt 32, SHA-384) verifies. */
static void test_pss_foreign(void **state)
{
	(void)state;
	char why[IKE_CERT_WHY_MAX];
	uint8_t auth[1024], sig[512];
	size_t slen = sizeof(sig), ai_len = 0;
	FILE *f = fopen(path("hq_rsa.pem"), "r");
	assert_non_null(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx;
	assert_int_equal(EVP_DigestSignInit(mc, &pctx, EVP_sha384(), NULL, k), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) > 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(EVP_DigestSignUpdate(mc, parts[i].p, parts[i].len), 1);
	assert_int_equal(EVP_DigestSignFinal(mc, sig, &slen), 1);
	/* the AlgorithmIdentifier OpenSSL itself puts in certificates */
	OSSL_PARAM p[] = { OSSL_PARAM_construct_octet_string("algorithm-id", auth + 1, sizeof(auth) - 1),
			   OSSL_PARAM_construct_end() };
	assert_int_equal(EVP_PKEY_CTX_get_params(pctx, p), 1);
	ai_len = p[0].return_size;
	assert_true(ai_len > 20 && ai_len < 128);
	auth[0] = (uint8_t)ai_len;
	memcpy(auth + 1 + ai_len, sig, slen);
	assert_int_equal(ike_cert_verify_auth(x, auth, 1 + ai_len + slen, parts, 3, why, sizeof(why)), 0);
	/* the same bytes claimed as PKCS#1 v1.5: refused */
	static const uint8_t rsa384[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
					  0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00 };
	auth[0] = sizeof(rsa384);
	memcpy(auth + 1, rsa384, sizeof(rsa384));
	memcpy(auth + 1 + sizeof(rsa384), sig, slen);
	assert_int_equal(ike_cert_verify_auth(x, auth, 1 + sizeof(rsa384) + slen, parts, 3, why, sizeof(why)),
			 -EKEYREJECTED);
	EVP_MD_CTX_free(mc);
	EVP_PKEY_free(k);
	X509_free(x);
}

/* Hostile AUTH data: lengths past the end, garbage AlgorithmIdentifiers, SHA-1, ECDSA claimed for RSA. */
static void test_auth_malformed(void **state)
{
	(void)state;
	char why[IKE_CERT_WHY_MAX];
	X509 *x = load_cert("hq_rsa.pem");
	static const uint8_t sha1rsa[] = { 15, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
					   0x0d, 0x01, 0x01, 0x05, 0x05, 0x00, 0xaa };
	static const uint8_t ecdsa[] = { 12, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x30, 0x00 };
	static const uint8_t trailing[] = { 16, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0, 0, 0, 0, 1 };
	static const uint8_t pss_sha1[] = { 13, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0xaa };
	const struct {
		const uint8_t *p;
		size_t len;
	} cases[] = {
		{ (const uint8_t *)"", 0 },
		{ (const uint8_t *)"\x00", 1 },
		{ (const uint8_t *)"\xff\x30", 2 },
		{ (const uint8_t *)"\x02\x30\x7f", 3 },
		{ (const uint8_t *)"\x04\x30\x02\x05\x00\x01", 6 },
		{ sha1rsa, sizeof(sha1rsa) },
		{ ecdsa, sizeof(ecdsa) },
		{ trailing, sizeof(trailing) },
		{ pss_sha1, sizeof(pss_sha1) },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		why[0] = 0;
		assert_int_equal(ike_cert_verify_auth(x, cases[i].p, cases[i].len, parts, 3, why, sizeof(why)),
				 -EKEYREJECTED);
		assert_non_null(strstr(why, "bad signature"));
	}
	X509_free(x);
}

/* CERT payloads as the peer sent them: none, garbage, truncated DER, expired, another CA, an intermediate. */
static void test_peer_chain(void **state)
{
	(void)state;
	char why[IKE_CERT_WHY_MAX];
	struct ike_msg *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	const struct ike_cred *c = ike_cred_get(path("hq_rsa.pem"), path("ca_a.pem"), why, sizeof(why));
	assert_non_null(c);
	X509 *good = load_cert("branch_ec256.pem"), *expired = load_cert("hq_expired.pem");
	X509 *other = load_cert("hq_other_ca.pem");
	unsigned char *der = NULL;
	int n = i2d_X509(good, &der);
	assert_true(n > 0);

	assert_null(ike_cert_peer_verify(c, m, why, sizeof(why)));
	assert_string_equal(why, "no certificate");

	m->npl = 1;
	m->pl[0].type = IKE_PL_CERT;
	m->pl[0].u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, der, (size_t)n };
	X509 *leaf = ike_cert_peer_verify(c, m, why, sizeof(why));
	assert_non_null(leaf);
	struct ike_id_pl id = { ID_FQDN, (const uint8_t *)"branch.example", 14 };
	assert_true(ike_cert_id_matches(leaf, &id));
	id = (struct ike_id_pl){ ID_FQDN, (const uint8_t *)"branch.exampl", 13 };
	assert_false(ike_cert_id_matches(leaf, &id));
	id = (struct ike_id_pl){ ID_FQDN, (const uint8_t *)"branch.example\0x", 16 };
	assert_false(ike_cert_id_matches(leaf, &id));
	id = (struct ike_id_pl){ ID_RFC822_ADDR, (const uint8_t *)"ops@branch.example", 18 };
	assert_true(ike_cert_id_matches(leaf, &id));
	id = (struct ike_id_pl){ ID_IPV4_ADDR, (const uint8_t *)"\xcb\x00\x71\x02", 4 };
	assert_false(ike_cert_id_matches(leaf, &id));
	id = (struct ike_id_pl){ ID_DER_ASN1_DN, (const uint8_t *)"\x30\x03\x31\x01", 4 };
	assert_false(ike_cert_id_matches(leaf, &id));
	id = (struct ike_id_pl){ ID_KEY_ID, (const uint8_t *)"k", 1 };
	assert_false(ike_cert_id_matches(leaf, &id));
	X509_free(leaf);

	/* truncated DER, trailing bytes, a CERT of another encoding only */
	m->pl[0].u.cert.len = (size_t)n - 1;
	assert_null(ike_cert_peer_verify(c, m, why, sizeof(why)));
	assert_string_equal(why, "malformed certificate");
	uint8_t *longer = malloc((size_t)n + 1);
	assert_non_null(longer);
	memcpy(longer, der, (size_t)n);
	longer[n] = 0;
	m->pl[0].u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, longer, (size_t)n + 1 };
	assert_null(ike_cert_peer_verify(c, m, why, sizeof(why)));
	m->pl[0].u.cert = (struct ike_cert_pl){ CERT_PKCS7_X509, der, (size_t)n };
	assert_null(ike_cert_peer_verify(c, m, why, sizeof(why)));
	assert_string_equal(why, "no certificate");
	free(longer);
	OPENSSL_free(der);

	der = NULL;
	n = i2d_X509(expired, &der);
	m->pl[0].u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, der, (size_t)n };
	assert_null(ike_cert_peer_verify(c, m, why, sizeof(why)));
	assert_string_equal(why, "expired certificate");
	OPENSSL_free(der);

	der = NULL;
	n = i2d_X509(other, &der);
	m->pl[0].u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, der, (size_t)n };
	assert_null(ike_cert_peer_verify(c, m, why, sizeof(why)));
	assert_non_null(strstr(why, "untrusted certificate"));
	/* sending CA B along does not make it trusted */
	unsigned char *der_b = NULL;
	int nb = i2d_X509(ca_b, &der_b);
	m->npl = 2;
	m->pl[1].type = IKE_PL_CERT;
	m->pl[1].u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, der_b, (size_t)nb };
	assert_null(ike_cert_peer_verify(c, m, why, sizeof(why)));
	assert_non_null(strstr(why, "untrusted certificate"));
	OPENSSL_free(der_b);
	OPENSSL_free(der);

	X509_free(good);
	X509_free(expired);
	X509_free(other);
	free(m);
}

static void test_certreq(void **state)
{
	(void)state;
	char why[IKE_CERT_WHY_MAX];
	uint8_t buf[512];
	struct ike_msg *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	const struct ike_cred *c = ike_cred_get(path("hq_rsa.pem"), path("ca_ab.pem"), why, sizeof(why));
	assert_non_null(c);
	struct ike_enc e;
	ike_enc_init(&e, buf, sizeof(buf));
	ike_cert_enc_certreq(&e, c);
	assert_true(wr_ok(&e.w));
	/* generic header (4) + encoding (1) + two SHA-1 hashes */
	assert_int_equal(e.w.off, 4 + 1 + 40);
	assert_int_equal(buf[4], CERT_X509_SIGNATURE);

	/* N(SIGNATURE_HASH_ALGORITHMS): header, protocol 0, SPI size 0, type 16431, three hash IDs */
	ike_enc_init(&e, buf + 100, 64);
	ike_cert_enc_hash_algorithms(&e);
	assert_true(wr_ok(&e.w));
	static const uint8_t shan[] = { 0, 0, 0, 14, 0, 0, 0x40, 0x2f, 0, 2, 0, 3, 0, 4 };
	assert_int_equal(e.w.off, sizeof(shan));
	assert_memory_equal(buf + 100, shan, sizeof(shan));

	assert_true(ike_cert_certreq_names_us(c, m)); /* none sent */
	m->npl = 1;
	m->pl[0].type = IKE_PL_CERTREQ;
	m->pl[0].u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, buf + 5, 40 };
	assert_true(ike_cert_certreq_names_us(c, m));
	m->pl[0].u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, buf + 5, 20 }; /* CA B only */
	assert_false(ike_cert_certreq_names_us(c, m));
	m->pl[0].u.cert = (struct ike_cert_pl){ CERT_X509_SIGNATURE, buf + 5, 7 }; /* truncated */
	assert_false(ike_cert_certreq_names_us(c, m));
	free(m);
}

static void test_own_id(void **state)
{
	(void)state;
	char why[IKE_CERT_WHY_MAX];
	struct ike_id id;
	const struct ike_cred *c = ike_cred_get(path("hq_rsa.pem"), path("ca_a.pem"), why, sizeof(why));
	assert_non_null(c);
	assert_int_equal(ike_cred_id(c, NULL, &id), 0);
	assert_int_equal(id.type, ID_DER_ASN1_DN);
	X509 *x = load_cert("hq_rsa.pem");
	struct ike_id_pl pl = { id.type, id.data, id.len };
	assert_true(ike_cert_id_matches(x, &pl));
	assert_true(ike_cert_peerid_matches(&pl, "CN=hq.example,O=iketcp test"));
	assert_true(ike_cert_peerid_matches(&pl, NULL));
	assert_false(ike_cert_peerid_matches(&pl, "CN=hq.example"));
	assert_int_equal(ike_cred_id(c, "hq.example", &id), 0);
	assert_int_equal(id.type, ID_FQDN);
	X509_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_both),
		cmocka_unit_test(test_ecdsa_both),
		cmocka_unit_test(test_mixed_both_ways),
		cmocka_unit_test(test_dn_ids),
		cmocka_unit_test(test_ip_id_and_anchor_list),
		cmocka_unit_test(test_wrong_ca),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_id_mismatch),
		cmocka_unit_test(test_bad_credentials),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_pss_foreign),
		cmocka_unit_test(test_auth_malformed),
		cmocka_unit_test(test_peer_chain),
		cmocka_unit_test(test_certreq),
		cmocka_unit_test(test_own_id),
	};
	return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
