/*
 * libFuzzer target for what the peer controls in certificate authentication: RFC 7427 AUTH data
 * (ASN.1 length, AlgorithmIdentifier, signature) and the ID checked against a certificate.
 * Input: one selector octet, then the bytes: 0 AUTH data, 1 ID_DER_ASN1_DN, 2 FQDN, 3 RFC822,
 * 4 IPv4/IPv6 address, 5 a DN against peerid. Nothing may crash or leak; nothing verifies.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ike/cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *leaf(void)
{
	static X509 *x;
	if (x)
		return x;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	x = X509_new();
	if (!k || !x)
		__builtin_trap();
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"hq.example",
				   -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	if (X509_sign(x, k, EVP_sha256()) <= 0)
		__builtin_trap();
	EVP_PKEY_free(k);
	return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t octets[] = "signed octets";
	struct ike_blob parts[] = { { octets, sizeof(octets) } };
	char why[IKE_CERT_WHY_MAX];

	if (size < 1)
		return 0;
	X509 *x = leaf();
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	uint8_t sel = data[0] % 6;
	if (sel == 0) {
		if (ike_cert_verify_auth(x, p, n, parts, 1, why, sizeof(why)) != -EKEYREJECTED)
			__builtin_trap(); /* no key to forge with */
		return 0;
	}
	static const uint8_t types[] = { 0, ID_DER_ASN1_DN, ID_FQDN, ID_RFC822_ADDR, ID_IPV4_ADDR, ID_DER_ASN1_DN };
	struct ike_id_pl id = { types[sel], p, n };
	if (sel == 4 && n == 16)
		id.id_type = ID_IPV6_ADDR;
	if (sel == 5)
		(void)ike_cert_peerid_matches(&id, "CN=hq.example");
	else
		(void)ike_cert_id_matches(x, &id);
	return 0;
}
