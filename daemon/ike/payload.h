/*
 * IKEv2 payload codec (RFC 7296 section 3): structure only, never meaning.
 *
 * Decoded payloads point into the message buffer; nothing is allocated. The
 * variable parts (proposals, transforms, selectors, CP attributes) go into a
 * bounded arena owned by the caller (one per message). Every decoder sees only
 * its own bytes and must consume them all.
 *
 * Encoders append to a chain: each payload's generic header is written with a
 * zero Next Payload and a length hole, and the next payload opened patches the
 * previous one's Next Payload byte.
 */
#ifndef IKETCP_IKE_PAYLOAD_H
#define IKETCP_IKE_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iketcp/buf.h"
#include "iketcp/compiler.h"
#include "ike/wire.h"

/* Bounds of what one message may carry; beyond them the message is rejected. */
enum {
	IKE_MSG_MAX_PAYLOADS = 32,
	IKE_ARENA_PROPOSALS = 32,
	IKE_ARENA_TRANSFORMS = 128,
	IKE_ARENA_SELECTORS = 32,
	IKE_ARENA_CP_ATTRS = 32,
	IKE_MAX_SPI_LEN = 8,
};

/* One transform (3.3.2) with its only defined attribute, Key Length (3.3.5). */
struct ike_transform {
	uint8_t type;           /* enum ike_transform_type */
	uint16_t id;
	uint16_t key_len;       /* bits; valid when has_key_len */
	bool has_key_len;
	uint8_t unknown_attrs;  /* attributes we do not know: 3.3.6 says reject the proposal */
};

/* One proposal substructure (3.3.1). */
struct ike_proposal {
	uint8_t num;
	uint8_t proto;          /* enum ike_protocol */
	uint8_t spi_size;       /* 0, 4 or 8 */
	uint8_t spi[IKE_MAX_SPI_LEN];
	uint8_t nxf;
	const struct ike_transform *xf;
};

struct ike_sa_pl {
	uint8_t nprops;
	const struct ike_proposal *props;
};

struct ike_ke_pl {
	uint16_t group;         /* enum ike_dh_id */
	const uint8_t *data;
	size_t len;
};

/* Nonce, Vendor ID, SK: opaque bytes. */
struct ike_data_pl {
	const uint8_t *data;
	size_t len;
};

/* IDi / IDr (3.5): the payload body is also what AUTH signs (2.15). */
struct ike_id_pl {
	uint8_t id_type;        /* enum ike_id_type */
	const uint8_t *data;
	size_t len;
};

/* CERT and CERTREQ (3.6, 3.7). */
struct ike_cert_pl {
	uint8_t encoding;       /* enum ike_cert_encoding */
	const uint8_t *data;
	size_t len;
};

struct ike_auth_pl {
	uint8_t method;         /* enum ike_auth_method */
	const uint8_t *data;
	size_t len;
};

struct ike_notify_pl {
	uint8_t proto;          /* enum ike_protocol, 0 when not about an SA */
	uint8_t spi_size;       /* 0, 4 or 8 */
	uint16_t type;          /* enum ike_notify_type */
	uint8_t spi[IKE_MAX_SPI_LEN];
	const uint8_t *data;
	size_t len;
};

/* Delete (3.11): count SPIs of spi_size bytes each, back to back. */
struct ike_delete_pl {
	uint8_t proto;
	uint8_t spi_size;       /* 0 for IKE, 4 for AH/ESP */
	uint16_t count;
	const uint8_t *spis;
};

/* One traffic selector (3.13.1); addresses in network order. */
struct ike_ts {
	uint8_t type;           /* TS_IPV4_ADDR_RANGE or TS_IPV6_ADDR_RANGE */
	uint8_t ip_proto;       /* 0: any */
	uint16_t start_port;
	uint16_t end_port;
	uint8_t start[16];      /* first 4 bytes for IPv4 */
	uint8_t end[16];
};

struct ike_ts_pl {
	uint8_t count;
	const struct ike_ts *ts;
};

struct ike_cp_attr {
	uint16_t type;          /* enum ike_cfg_attr (15 bits) */
	const uint8_t *value;
	uint16_t len;
};

struct ike_cp_pl {
	uint8_t cfg_type;       /* enum ike_cfg_type */
	uint8_t nattrs;
	const struct ike_cp_attr *attrs;
};

/* SKF (RFC 7383 2.5): SK plus fragment numbering. */
struct ike_skf_pl {
	uint16_t frag_num;
	uint16_t frag_total;
	const uint8_t *data;
	size_t len;
};

struct ike_pl {
	uint8_t type;           /* enum ike_payload_type */
	uint8_t next;           /* Next Payload as received */
	bool critical;
	bool inner;             /* came from the decrypted SK contents */
	const uint8_t *body;    /* bytes after the generic header */
	size_t body_len;
	union {
		struct ike_sa_pl sa;
		struct ike_ke_pl ke;
		struct ike_data_pl nonce;
		struct ike_id_pl id;        /* IDi, IDr */
		struct ike_cert_pl cert;    /* CERT, CERTREQ */
		struct ike_auth_pl auth;
		struct ike_notify_pl n;
		struct ike_delete_pl d;
		struct ike_data_pl v;
		struct ike_ts_pl ts;        /* TSi, TSr */
		struct ike_cp_pl cp;
		struct ike_data_pl sk;
		struct ike_skf_pl skf;
	} u;
};

/* Storage for the variable-count parts of one message's payloads. */
struct ike_arena {
	uint16_t nprops, nxf, nts, nattrs;
	struct ike_proposal props[IKE_ARENA_PROPOSALS];
	struct ike_transform xf[IKE_ARENA_TRANSFORMS];
	struct ike_ts ts[IKE_ARENA_SELECTORS];
	struct ike_cp_attr attrs[IKE_ARENA_CP_ATTRS];
};

static inline void ike_arena_reset(struct ike_arena *a)
{
	a->nprops = a->nxf = a->nts = a->nattrs = 0;
}

/* Whether we decode this payload type (anything else is skipped or, when
 * critical, answered with UNSUPPORTED_CRITICAL_PAYLOAD). */
bool ike_pl_known(uint8_t type);

/*
 * Decode the body (the bytes after the generic header) of a payload of a known
 * type into pl->u. 0, or -EBADMSG with *why set to a static reason; -EINVAL for
 * a type we do not decode. Does not touch pl->type/next/critical/inner.
 */
must_check int ike_pl_decode(struct ike_pl *pl, uint8_t type, const uint8_t *body, size_t len,
			     struct ike_arena *a, const char **why);

/* ---- encoding -------------------------------------------------------------- */

/* A payload chain being written: an IKE message, or the plaintext of an SK. */
struct ike_enc {
	struct wr w;
	size_t next_at;         /* offset of the Next Payload byte to patch; SIZE_MAX: none yet */
	uint8_t first;          /* type of the first payload appended */
	unsigned count;         /* payloads appended */
};

/* Start an inner (SK plaintext) chain. */
void ike_enc_init(struct ike_enc *e, void *buf, size_t cap);

/* Open a payload: links it into the chain, writes the generic header with a
 * length hole; returns the header's offset for ike_pl_close. */
size_t ike_pl_open(struct ike_enc *e, uint8_t type, bool critical);
void ike_pl_close(struct ike_enc *e, size_t at);

/*
 * Append a whole payload from its decoded form (pl->type selects the codec;
 * for SA/TS/CP the arrays pl->u.*.props/ts/attrs are read). -EINVAL for a type
 * we do not encode or a value that cannot be represented; overflow is sticky
 * in e->w and reported by whoever finishes the buffer.
 */
must_check int ike_pl_encode(struct ike_enc *e, const struct ike_pl *pl);

/* Convenience for the common small payloads. */
void ike_enc_notify(struct ike_enc *e, uint8_t proto, const uint8_t *spi, uint8_t spi_size,
		    uint16_t type, const void *data, size_t len);
void ike_enc_data(struct ike_enc *e, uint8_t type, const void *data, size_t len); /* Nonce, V */

#endif
