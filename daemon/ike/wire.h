/*
 * Every IKEv2 wire constant in one place (RFC 7296 section 3, IANA "IKEv2
 * Parameters"). Names follow the RFC so code and logs read like the spec;
 * names.c turns each number back into its RFC name.
 */
#ifndef IKETCP_IKE_WIRE_H
#define IKETCP_IKE_WIRE_H

/* RFC 7296 3.1: the fixed IKE header. */
enum {
	IKE_HDR_LEN = 28,
	IKE_SPI_LEN = 8,
	IKE_VERSION = 0x20, /* major 2, minor 0 */
	IKE_MAJOR_VERSION = 2,
	IKE_PL_HDR_LEN = 4,    /* generic payload header, 3.2 */
	IKE_MSG_MAX_LEN = 65535, /* RFC 8229 frames carry a 16-bit length */
};

/* RFC 7296 3.1: Exchange Type. */
enum ike_exchange {
	IKE_SA_INIT = 34,
	IKE_AUTH = 35,
	CREATE_CHILD_SA = 36,
	INFORMATIONAL = 37,
};

/* RFC 7296 3.1: Flags; the other bits are reserved, sent zero, ignored. */
enum ike_hdr_flag {
	IKE_FLAG_I = 0x08, /* sent by the original initiator */
	IKE_FLAG_V = 0x10, /* higher major version supported: never set */
	IKE_FLAG_R = 0x20, /* response */
};

/* RFC 7296 3.2: Payload Type; NONE ends a chain. */
enum ike_payload_type {
	IKE_PL_NONE = 0,
	IKE_PL_SA = 33,
	IKE_PL_KE = 34,
	IKE_PL_IDI = 35,
	IKE_PL_IDR = 36,
	IKE_PL_CERT = 37,
	IKE_PL_CERTREQ = 38,
	IKE_PL_AUTH = 39,
	IKE_PL_NONCE = 40,
	IKE_PL_N = 41,
	IKE_PL_D = 42,
	IKE_PL_V = 43,
	IKE_PL_TSI = 44,
	IKE_PL_TSR = 45,
	IKE_PL_SK = 46,
	IKE_PL_CP = 47,
	IKE_PL_EAP = 48,  /* known name, not decoded: we do no EAP */
	IKE_PL_SKF = 53,  /* RFC 7383 Encrypted Fragment */
};

/* RFC 7296 3.2: the byte after Next Payload. */
enum { IKE_PL_CRITICAL = 0x80 };

/* RFC 7296 3.3.1: Protocol ID. */
enum ike_protocol {
	IKE_PROTO_NONE = 0, /* notify not about any SA */
	IKE_PROTO_IKE = 1,
	IKE_PROTO_AH = 2,
	IKE_PROTO_ESP = 3,
};

/* RFC 7296 3.3.1 / 3.3.2: Last Substruc values. */
enum {
	IKE_PROP_LAST = 0,
	IKE_PROP_MORE = 2,
	IKE_XFORM_LAST = 0,
	IKE_XFORM_MORE = 3,
	IKE_PROP_HDR_LEN = 8,
	IKE_XFORM_HDR_LEN = 8,
};

/* RFC 7296 3.3.2: Transform Type. */
enum ike_transform_type {
	IKE_XF_ENCR = 1,
	IKE_XF_PRF = 2,
	IKE_XF_INTEG = 3,
	IKE_XF_DH = 4, /* "Key Exchange Method" since RFC 9370 */
	IKE_XF_ESN = 5,
};

/* Transform Type 1: Encryption Algorithm IDs. */
enum ike_encr_id {
	ENCR_3DES = 3,
	ENCR_NULL = 11,
	ENCR_AES_CBC = 12,
	ENCR_AES_CTR = 13,
	ENCR_AES_CCM_8 = 14,
	ENCR_AES_CCM_12 = 15,
	ENCR_AES_CCM_16 = 16,
	ENCR_AES_GCM_8 = 18,
	ENCR_AES_GCM_12 = 19,
	ENCR_AES_GCM_16 = 20,
	ENCR_NULL_AUTH_AES_GMAC = 21,
	ENCR_CHACHA20_POLY1305 = 28,
};

/* Transform Type 2: Pseudorandom Function IDs. */
enum ike_prf_id {
	PRF_HMAC_MD5 = 1,
	PRF_HMAC_SHA1 = 2,
	PRF_AES128_XCBC = 4,
	PRF_HMAC_SHA2_256 = 5,
	PRF_HMAC_SHA2_384 = 6,
	PRF_HMAC_SHA2_512 = 7,
	PRF_AES128_CMAC = 8,
};

/* Transform Type 3: Integrity Algorithm IDs. */
enum ike_integ_id {
	AUTH_NONE = 0,
	AUTH_HMAC_MD5_96 = 1,
	AUTH_HMAC_SHA1_96 = 2,
	AUTH_AES_XCBC_96 = 5,
	AUTH_HMAC_MD5_128 = 6,
	AUTH_HMAC_SHA1_160 = 7,
	AUTH_AES_CMAC_96 = 8,
	AUTH_AES_128_GMAC = 9,
	AUTH_AES_192_GMAC = 10,
	AUTH_AES_256_GMAC = 11,
	AUTH_HMAC_SHA2_256_128 = 12,
	AUTH_HMAC_SHA2_384_192 = 13,
	AUTH_HMAC_SHA2_512_256 = 14,
};

/* Transform Type 4: Diffie-Hellman Group IDs. */
enum ike_dh_id {
	DH_NONE = 0,
	MODP_768 = 1,
	MODP_1024 = 2,
	MODP_1536 = 5,
	MODP_2048 = 14,
	MODP_3072 = 15,
	MODP_4096 = 16,
	MODP_6144 = 17,
	MODP_8192 = 18,
	ECP_256 = 19,
	ECP_384 = 20,
	ECP_521 = 21,
	MODP_1024_160 = 22,
	MODP_2048_224 = 23,
	MODP_2048_256 = 24,
	ECP_192 = 25,
	ECP_224 = 26,
	ECP_224_BP = 27,
	ECP_256_BP = 28,
	ECP_384_BP = 29,
	ECP_512_BP = 30,
	CURVE_25519 = 31,
	CURVE_448 = 32,
};

/* Transform Type 5: Extended Sequence Numbers. */
enum ike_esn_id {
	ESN_NO = 0,
	ESN_YES = 1,
};

/* RFC 7296 3.3.5: Transform attributes; AF set means TV (2-byte value). */
enum {
	IKE_ATTR_AF = 0x8000,
	IKE_ATTR_KEY_LENGTH = 14,
};

/* RFC 7296 3.5: ID Type. */
enum ike_id_type {
	ID_IPV4_ADDR = 1,
	ID_FQDN = 2,
	ID_RFC822_ADDR = 3,
	ID_IPV6_ADDR = 5,
	ID_DER_ASN1_DN = 9,
	ID_DER_ASN1_GN = 10,
	ID_KEY_ID = 11,
	ID_NULL = 13, /* RFC 7619 */
};

/* RFC 7296 3.6: Certificate Encoding. */
enum ike_cert_encoding {
	CERT_PKCS7_X509 = 1,
	CERT_PGP = 2,
	CERT_DNS_SIGNED_KEY = 3,
	CERT_X509_SIGNATURE = 4,
	CERT_KERBEROS_TOKEN = 6,
	CERT_CRL = 7,
	CERT_ARL = 8,
	CERT_SPKI = 9,
	CERT_X509_ATTRIBUTE = 10,
	CERT_RAW_RSA_KEY = 11,
	CERT_HASH_URL_X509 = 12,
	CERT_HASH_URL_BUNDLE = 13,
};

/* RFC 7296 3.8 and RFC 7427: Auth Method. */
enum ike_auth_method {
	AUTH_RSA_SIG = 1,
	AUTH_PSK = 2,
	AUTH_DSS_SIG = 3,
	AUTH_ECDSA_256 = 9,
	AUTH_ECDSA_384 = 10,
	AUTH_ECDSA_521 = 11,
	AUTH_NULL = 13,
	AUTH_DIGITAL_SIGNATURE = 14,
};

/* RFC 7427 4: hash algorithms in SIGNATURE_HASH_ALGORITHMS. */
enum ike_hash_id {
	HASH_SHA1 = 1,
	HASH_SHA2_256 = 2,
	HASH_SHA2_384 = 3,
	HASH_SHA2_512 = 4,
	HASH_IDENTITY = 5,
};

/* RFC 7296 3.10.1: Notify Message Types. Below 16384: errors. */
enum ike_notify_type {
	UNSUPPORTED_CRITICAL_PAYLOAD = 1,
	INVALID_IKE_SPI = 4,
	INVALID_MAJOR_VERSION = 5,
	INVALID_SYNTAX = 7,
	INVALID_MESSAGE_ID = 9,
	INVALID_SPI = 11,
	NO_PROPOSAL_CHOSEN = 14,
	INVALID_KE_PAYLOAD = 17,
	AUTHENTICATION_FAILED = 24,
	SINGLE_PAIR_REQUIRED = 34,
	NO_ADDITIONAL_SAS = 35,
	INTERNAL_ADDRESS_FAILURE = 36,
	FAILED_CP_REQUIRED = 37,
	TS_UNACCEPTABLE = 38,
	INVALID_SELECTORS = 39,
	UNACCEPTABLE_ADDRESSES = 40,
	UNEXPECTED_NAT_DETECTED = 41,
	TEMPORARY_FAILURE = 43,
	CHILD_SA_NOT_FOUND = 44,

	IKE_NOTIFY_STATUS_MIN = 16384,
	INITIAL_CONTACT = 16384,
	SET_WINDOW_SIZE = 16385,
	ADDITIONAL_TS_POSSIBLE = 16386,
	IPCOMP_SUPPORTED = 16387,
	NAT_DETECTION_SOURCE_IP = 16388,
	NAT_DETECTION_DESTINATION_IP = 16389,
	COOKIE = 16390,
	USE_TRANSPORT_MODE = 16391,
	HTTP_CERT_LOOKUP_SUPPORTED = 16392,
	REKEY_SA = 16393,
	ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
	NON_FIRST_FRAGMENTS_ALSO = 16395,
	MOBIKE_SUPPORTED = 16396,
	MULTIPLE_AUTH_SUPPORTED = 16404,
	ANOTHER_AUTH_FOLLOWS = 16405,
	REDIRECT_SUPPORTED = 16406,
	IKEV2_FRAGMENTATION_SUPPORTED = 16430,
	SIGNATURE_HASH_ALGORITHMS = 16431,
};

/* RFC 7296 3.13.1: TS Type and the fixed selector lengths that go with it. */
enum ike_ts_type {
	TS_IPV4_ADDR_RANGE = 7,
	TS_IPV6_ADDR_RANGE = 8,
	IKE_TS_IPV4_LEN = 16,
	IKE_TS_IPV6_LEN = 40,
};

/* RFC 7296 3.15: CFG Type. */
enum ike_cfg_type {
	CFG_REQUEST = 1,
	CFG_REPLY = 2,
	CFG_SET = 3,
	CFG_ACK = 4,
};

/* RFC 7296 3.15.1: Configuration Attributes (15-bit type; top bit reserved). */
enum ike_cfg_attr {
	INTERNAL_IP4_ADDRESS = 1,
	INTERNAL_IP4_NETMASK = 2,
	INTERNAL_IP4_DNS = 3,
	INTERNAL_IP4_NBNS = 4,
	INTERNAL_IP4_DHCP = 6,
	APPLICATION_VERSION = 7,
	INTERNAL_IP6_ADDRESS = 8,
	INTERNAL_IP6_DNS = 10,
	INTERNAL_IP6_DHCP = 12,
	INTERNAL_IP4_SUBNET = 13,
	SUPPORTED_ATTRIBUTES = 14,
	INTERNAL_IP6_SUBNET = 15,
	IKE_CFG_ATTR_TYPE_MASK = 0x7fff,
};

/*
 * names.c: the RFC name of each number, for logs ("IKE_SA_INIT",
 * "NO_PROPOSAL_CHOSEN"); an unknown one prints as "unknown(99)" from a small
 * per-thread ring, valid for the next few calls.
 */
const char *ike_exchange_name(unsigned v);
const char *ike_payload_name(unsigned v);
const char *ike_notify_name(unsigned v);
const char *ike_protocol_name(unsigned v);
const char *ike_transform_type_name(unsigned v);
const char *ike_transform_id_name(unsigned type, unsigned id);
const char *ike_id_type_name(unsigned v);
const char *ike_auth_method_name(unsigned v);
const char *ike_cert_encoding_name(unsigned v);
const char *ike_ts_type_name(unsigned v);
const char *ike_cfg_type_name(unsigned v);
const char *ike_cfg_attr_name(unsigned v);

#endif
