/*
 * Certificate authentication for IKE_AUTH (RFC 7296 2.15, 3.6, 3.7; RFC 7427):
 * our certificate, chain and private key, the trust anchors peers must chain
 * to, CERT and CERTREQ payloads, Digital Signature AUTH data (method 14) and
 * the checks on the peer: chain, validity, ID against the certificate.
 * Internal to daemon/ike.
 */
#ifndef IKETCP_IKE_CERT_H
#define IKETCP_IKE_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "conf/conf.h"
#include "ike/crypto.h"
#include "ike/id.h"
#include "ike/payload.h"

struct ike_msg;
struct ike_cred;

enum {
	IKE_CERT_MAX_CHAIN = 4,          /* our certificate and up to three intermediates */
	IKE_CERT_MAX_ANCHORS = 16,       /* trust anchors from one ca file */
	IKE_CERT_AUTH_MAX = 1100,        /* AUTH data: AlgorithmIdentifier and an RSA-8192 signature */
	IKE_CERT_WHY_MAX = 160,
};

/* How to sign. DEFAULT: RSA PKCS#1 v1.5 with SHA-256, ECDSA with the curve's hash (P-256: SHA-256,
 * P-384: SHA-384, P-521: SHA-512). RSA_PSS_SHA256: RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-octet salt. */
enum ike_sig_scheme { IKE_SIG_DEFAULT, IKE_SIG_RSA_PSS_SHA256 };

/*
 * The credentials behind a phase1 entry with authmethod signature: the
 * certificate file (one PEM with our certificate first, optionally its chain,
 * and the private key, in any order) and the ca file (one or more PEM trust
 * anchors). Loaded at first use and kept by file names; reloaded when either
 * file changes. NULL on failure, with why naming the file and the problem.
 * The pointer is valid until the next call.
 */
const struct ike_cred *ike_cred_get(const char *certificate, const char *ca, char *why, size_t cap);
/* For ike_configure: load p1's credentials now; 0, or -EINVAL after one error line naming the tunnel. */
int ike_cert_check_phase1(const struct conf_phase1 *p1);
/* Drop every cached credential (tests, shutdown). */
void ike_cred_cache_flush(void);

/* Our ID: localid when set (ike_id_from_conf), else the certificate's subject DN as ID_DER_ASN1_DN. */
int ike_cred_id(const struct ike_cred *c, const char *localid, struct ike_id *id);
/* CERT (X.509 Certificate - Signature) for our certificate, then one per chain certificate. */
void ike_cert_enc_certs(struct ike_enc *e, const struct ike_cred *c);
/* CERTREQ (X.509 Certificate - Signature) with the SHA-1 of each trust anchor's SubjectPublicKeyInfo. */
void ike_cert_enc_certreq(struct ike_enc *e, const struct ike_cred *c);
/* N(SIGNATURE_HASH_ALGORITHMS) for IKE_SA_INIT (RFC 7427 4): SHA2-256, SHA2-384, SHA2-512, what we verify. */
void ike_cert_enc_hash_algorithms(struct ike_enc *e);
/* Whether the peer sent no CERTREQ, or one naming the anchor our chain ends at. */
bool ike_cert_certreq_names_us(const struct ike_cred *c, const struct ike_msg *m);

/* RFC 7427 3 AUTH data (ASN.1 length, AlgorithmIdentifier, signature) over parts[] concatenated. */
int ike_cert_sign(const struct ike_cred *c, enum ike_sig_scheme scheme, const struct ike_blob *parts,
		  size_t nparts, uint8_t *out, size_t cap, size_t *len);

/*
 * The peer's end-entity certificate from its CERT payloads (the first X.509
 * one; the others are untrusted intermediates), verified up to one of c's
 * trust anchors with validity dates. NULL with why: "no certificate",
 * "expired certificate", "untrusted certificate (...)". Caller X509_free()s.
 */
X509 *ike_cert_peer_verify(const struct ike_cred *c, const struct ike_msg *m, char *why, size_t cap);
/* Whether the peer's ID names the certificate: DN = subject, FQDN = SAN DNS, RFC822 = SAN email, IP = SAN IP. */
bool ike_cert_id_matches(X509 *leaf, const struct ike_id_pl *id);
/* The configured peerid against a peer ID: a DN ID compares with its RFC 2253 text, others as ike_id_matches. */
bool ike_cert_peerid_matches(const struct ike_id_pl *id, const char *peerid);
/* Verify RFC 7427 AUTH data over parts[] with leaf's key: 0 or -EKEYREJECTED with why. */
int ike_cert_verify_auth(X509 *leaf, const uint8_t *auth, size_t len, const struct ike_blob *parts, size_t nparts,
			 char *why, size_t cap);

#endif
