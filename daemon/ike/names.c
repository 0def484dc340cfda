/* RFC names of IKEv2 numbers, for logs: numbers are never logged bare. */
#include <stdio.h>

#include "iketcp/compiler.h"
#include "ike/wire.h"

struct name {
	unsigned v;
	const char *s;
};

#define N(x) { x, #x }

static const char *unknown(unsigned v)
{
	static __thread char ring[8][24];
	static __thread unsigned next;
	char *b = ring[next++ % ARRAY_SIZE(ring)];
	snprintf(b, sizeof(ring[0]), "unknown(%u)", v);
	return b;
}

static const char *lookup(const struct name *t, size_t n, unsigned v)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].v == v)
			return t[i].s;
	return unknown(v);
}

#define LOOKUP(t, v) lookup((t), ARRAY_SIZE(t), (v))

static const struct name exchanges[] = {
	N(IKE_SA_INIT), N(IKE_AUTH), N(CREATE_CHILD_SA), N(INFORMATIONAL),
};

static const struct name payloads[] = {
	{ IKE_PL_NONE, "NONE" }, { IKE_PL_SA, "SA" }, { IKE_PL_KE, "KE" },
	{ IKE_PL_IDI, "IDi" }, { IKE_PL_IDR, "IDr" }, { IKE_PL_CERT, "CERT" },
	{ IKE_PL_CERTREQ, "CERTREQ" }, { IKE_PL_AUTH, "AUTH" }, { IKE_PL_NONCE, "Nonce" },
	{ IKE_PL_N, "N" }, { IKE_PL_D, "D" }, { IKE_PL_V, "V" }, { IKE_PL_TSI, "TSi" },
	{ IKE_PL_TSR, "TSr" }, { IKE_PL_SK, "SK" }, { IKE_PL_CP, "CP" }, { IKE_PL_EAP, "EAP" },
	{ IKE_PL_SKF, "SKF" },
};

static const struct name notifies[] = {
	N(UNSUPPORTED_CRITICAL_PAYLOAD), N(INVALID_IKE_SPI), N(INVALID_MAJOR_VERSION),
	N(INVALID_SYNTAX), N(INVALID_MESSAGE_ID), N(INVALID_SPI), N(NO_PROPOSAL_CHOSEN),
	N(INVALID_KE_PAYLOAD), N(AUTHENTICATION_FAILED), N(SINGLE_PAIR_REQUIRED),
	N(NO_ADDITIONAL_SAS), N(INTERNAL_ADDRESS_FAILURE), N(FAILED_CP_REQUIRED),
	N(TS_UNACCEPTABLE), N(INVALID_SELECTORS), N(UNACCEPTABLE_ADDRESSES),
	N(UNEXPECTED_NAT_DETECTED), N(TEMPORARY_FAILURE), N(CHILD_SA_NOT_FOUND),
	N(INITIAL_CONTACT), N(SET_WINDOW_SIZE), N(ADDITIONAL_TS_POSSIBLE), N(IPCOMP_SUPPORTED),
	N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP), N(COOKIE),
	N(USE_TRANSPORT_MODE), N(HTTP_CERT_LOOKUP_SUPPORTED), N(REKEY_SA),
	N(ESP_TFC_PADDING_NOT_SUPPORTED), N(NON_FIRST_FRAGMENTS_ALSO), N(MOBIKE_SUPPORTED),
	N(MULTIPLE_AUTH_SUPPORTED), N(ANOTHER_AUTH_FOLLOWS), N(REDIRECT_SUPPORTED),
	N(IKEV2_FRAGMENTATION_SUPPORTED), N(SIGNATURE_HASH_ALGORITHMS),
};

static const struct name protocols[] = {
	{ IKE_PROTO_NONE, "NONE" }, { IKE_PROTO_IKE, "IKE" }, { IKE_PROTO_AH, "AH" },
	{ IKE_PROTO_ESP, "ESP" },
};

static const struct name transform_types[] = {
	{ IKE_XF_ENCR, "ENCR" }, { IKE_XF_PRF, "PRF" }, { IKE_XF_INTEG, "INTEG" },
	{ IKE_XF_DH, "D-H" }, { IKE_XF_ESN, "ESN" },
};

static const struct name encr_ids[] = {
	N(ENCR_3DES), N(ENCR_NULL), N(ENCR_AES_CBC), N(ENCR_AES_CTR), N(ENCR_AES_CCM_8),
	N(ENCR_AES_CCM_12), N(ENCR_AES_CCM_16), N(ENCR_AES_GCM_8), N(ENCR_AES_GCM_12),
	N(ENCR_AES_GCM_16), N(ENCR_NULL_AUTH_AES_GMAC), N(ENCR_CHACHA20_POLY1305),
};

static const struct name prf_ids[] = {
	N(PRF_HMAC_MD5), N(PRF_HMAC_SHA1), N(PRF_AES128_XCBC), N(PRF_HMAC_SHA2_256),
	N(PRF_HMAC_SHA2_384), N(PRF_HMAC_SHA2_512), N(PRF_AES128_CMAC),
};

static const struct name integ_ids[] = {
	N(AUTH_NONE), N(AUTH_HMAC_MD5_96), N(AUTH_HMAC_SHA1_96), N(AUTH_AES_XCBC_96),
	N(AUTH_HMAC_MD5_128), N(AUTH_HMAC_SHA1_160), N(AUTH_AES_CMAC_96), N(AUTH_AES_128_GMAC),
	N(AUTH_AES_192_GMAC), N(AUTH_AES_256_GMAC), N(AUTH_HMAC_SHA2_256_128),
	N(AUTH_HMAC_SHA2_384_192), N(AUTH_HMAC_SHA2_512_256),
};

static const struct name dh_ids[] = {
	{ DH_NONE, "NONE" }, { MODP_768, "MODP_768" }, { MODP_1024, "MODP_1024" },
	{ MODP_1536, "MODP_1536" }, { MODP_2048, "MODP_2048" }, { MODP_3072, "MODP_3072" },
	{ MODP_4096, "MODP_4096" }, { MODP_6144, "MODP_6144" }, { MODP_8192, "MODP_8192" },
	{ ECP_256, "ECP_256" }, { ECP_384, "ECP_384" }, { ECP_521, "ECP_521" },
	{ MODP_1024_160, "MODP_1024_160" }, { MODP_2048_224, "MODP_2048_224" },
	{ MODP_2048_256, "MODP_2048_256" }, { ECP_192, "ECP_192" }, { ECP_224, "ECP_224" },
	{ ECP_224_BP, "ECP_224_BP" }, { ECP_256_BP, "ECP_256_BP" }, { ECP_384_BP, "ECP_384_BP" },
	{ ECP_512_BP, "ECP_512_BP" }, { CURVE_25519, "CURVE_25519" }, { CURVE_448, "CURVE_448" },
};

static const struct name esn_ids[] = {
	{ ESN_NO, "NO_ESN" }, { ESN_YES, "ESN" },
};

static const struct name id_types[] = {
	N(ID_IPV4_ADDR), N(ID_FQDN), N(ID_RFC822_ADDR), N(ID_IPV6_ADDR), N(ID_DER_ASN1_DN),
	N(ID_DER_ASN1_GN), N(ID_KEY_ID), N(ID_NULL),
};

static const struct name auth_methods[] = {
	{ AUTH_RSA_SIG, "RSA_DIGITAL_SIGNATURE" }, { AUTH_PSK, "SHARED_KEY_MIC" },
	{ AUTH_DSS_SIG, "DSS_DIGITAL_SIGNATURE" }, { AUTH_ECDSA_256, "ECDSA_SHA256_P256" },
	{ AUTH_ECDSA_384, "ECDSA_SHA384_P384" }, { AUTH_ECDSA_521, "ECDSA_SHA512_P521" },
	{ AUTH_NULL, "NULL_AUTH" }, { AUTH_DIGITAL_SIGNATURE, "DIGITAL_SIGNATURE" },
};

static const struct name cert_encodings[] = {
	N(CERT_PKCS7_X509), N(CERT_PGP), N(CERT_DNS_SIGNED_KEY), N(CERT_X509_SIGNATURE),
	N(CERT_KERBEROS_TOKEN), N(CERT_CRL), N(CERT_ARL), N(CERT_SPKI), N(CERT_X509_ATTRIBUTE),
	N(CERT_RAW_RSA_KEY), N(CERT_HASH_URL_X509), N(CERT_HASH_URL_BUNDLE),
};

static const struct name ts_types[] = {
	N(TS_IPV4_ADDR_RANGE), N(TS_IPV6_ADDR_RANGE),
};

static const struct name cfg_types[] = {
	N(CFG_REQUEST), N(CFG_REPLY), N(CFG_SET), N(CFG_ACK),
};

static const struct name cfg_attrs[] = {
	N(INTERNAL_IP4_ADDRESS), N(INTERNAL_IP4_NETMASK), N(INTERNAL_IP4_DNS),
	N(INTERNAL_IP4_NBNS), N(INTERNAL_IP4_DHCP), N(APPLICATION_VERSION),
	N(INTERNAL_IP6_ADDRESS), N(INTERNAL_IP6_DNS), N(INTERNAL_IP6_DHCP),
	N(INTERNAL_IP4_SUBNET), N(SUPPORTED_ATTRIBUTES), N(INTERNAL_IP6_SUBNET),
};

const char *ike_exchange_name(unsigned v) { return LOOKUP(exchanges, v); }
const char *ike_payload_name(unsigned v) { return LOOKUP(payloads, v); }
const char *ike_notify_name(unsigned v) { return LOOKUP(notifies, v); }
const char *ike_protocol_name(unsigned v) { return LOOKUP(protocols, v); }
const char *ike_transform_type_name(unsigned v) { return LOOKUP(transform_types, v); }
const char *ike_id_type_name(unsigned v) { return LOOKUP(id_types, v); }
const char *ike_auth_method_name(unsigned v) { return LOOKUP(auth_methods, v); }
const char *ike_cert_encoding_name(unsigned v) { return LOOKUP(cert_encodings, v); }
const char *ike_ts_type_name(unsigned v) { return LOOKUP(ts_types, v); }
const char *ike_cfg_type_name(unsigned v) { return LOOKUP(cfg_types, v); }
const char *ike_cfg_attr_name(unsigned v) { return LOOKUP(cfg_attrs, v); }

const char *ike_transform_id_name(unsigned type, unsigned id)
{
	switch (type) {
	case IKE_XF_ENCR: return LOOKUP(encr_ids, id);
	case IKE_XF_PRF: return LOOKUP(prf_ids, id);
	case IKE_XF_INTEG: return LOOKUP(integ_ids, id);
	case IKE_XF_DH: return LOOKUP(dh_ids, id);
	case IKE_XF_ESN: return LOOKUP(esn_ids, id);
	default: return unknown(id);
	}
}
