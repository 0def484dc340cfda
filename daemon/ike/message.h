/*
 * IKEv2 messages (RFC 7296 3.1, 3.14): the header, the payload chain, and
 * where the SK payload sits. Parsing is in two steps because decryption sits
 * between them: ike_msg_parse stops at SK and reports the AAD and the sealed
 * bytes; once the crypto has opened them, ike_msg_parse_inner adds the inner
 * chain to the same message. Structure only: per-exchange payload rules are
 * rules.c, meaning (nonce sizes, groups) is the exchange's job.
 */
#ifndef IKETCP_IKE_MESSAGE_H
#define IKETCP_IKE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ike/payload.h"

/*
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       IKE SA Initiator's SPI                  |
 * |                       IKE SA Responder's SPI                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
 * |                          Message ID                           |
 * |                            Length                             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
struct ike_hdr {
	uint64_t spi_i;         /* read big-endian: %016llx prints the wire bytes */
	uint64_t spi_r;         /* 0 in the first IKE_SA_INIT request */
	uint8_t next;
	uint8_t version;        /* IKE_VERSION on output */
	uint8_t exchange;       /* enum ike_exchange */
	uint8_t flags;          /* enum ike_hdr_flag */
	uint32_t msg_id;
	uint32_t length;
};

static inline bool ike_hdr_is_response(const struct ike_hdr *h) { return h->flags & IKE_FLAG_R; }
static inline bool ike_hdr_is_initiator(const struct ike_hdr *h) { return h->flags & IKE_FLAG_I; }

/* Why a message was refused: enough to log it and, where the RFC asks, to answer. */
struct ike_parse_error {
	uint16_t notify;        /* INVALID_SYNTAX, UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_MAJOR_VERSION */
	uint8_t payload;        /* payload type concerned (for UNSUPPORTED_CRITICAL_PAYLOAD: its data) */
	size_t offset;          /* in the message or in the inner plaintext */
	const char *why;        /* static text */
};

/* Where the SK (or SKF) payload is, once ike_msg_parse found one. */
struct ike_sk_info {
	bool present;
	bool fragment;          /* SKF: frag_num/frag_total valid */
	uint8_t inner_first;    /* SK's Next Payload: first inner payload */
	uint16_t frag_num, frag_total;
	size_t at;              /* offset of the SK(F) generic header in the message */
	const uint8_t *aad;     /* IKE header .. end of the SK(F) payload header */
	size_t aad_len;
	const uint8_t *sealed;  /* IV || ciphertext || ICV */
	size_t sealed_len;
};

struct ike_msg {
	struct ike_hdr hdr;
	const uint8_t *buf;     /* the whole message, as received */
	size_t len;
	uint8_t npl;            /* payloads, outer first, then inner */
	uint8_t nouter;         /* of which outer (the SK payload included) */
	uint8_t nskipped;       /* unknown non-critical payloads skipped */
	struct ike_sk_info sk;
	struct ike_parse_error err;
	struct ike_pl pl[IKE_MSG_MAX_PAYLOADS];
	struct ike_arena arena;
};

/* The 28-byte header only: lets the caller find the SA before parsing more.
 * -EBADMSG (too short, or major version != 2: err->notify says which). */
must_check int ike_hdr_decode(const uint8_t *buf, size_t len, struct ike_hdr *h,
			      struct ike_parse_error *err);

/*
 * Parse a whole message: the header (its Length must equal len) and the
 * outer payload chain, up to and including SK if present, which must be last.
 * 0 or -EBADMSG with m->err filled in. m may be reused; the message points
 * into buf, which must outlive it.
 */
must_check int ike_msg_parse(struct ike_msg *m, const uint8_t *buf, size_t len);

/*
 * Parse the decrypted contents of SK (padding already removed) as a chain
 * starting with payload type first (m->sk.inner_first). The payloads are
 * added to m with inner = true. 0 or -EBADMSG with m->err filled in.
 */
must_check int ike_msg_parse_inner(struct ike_msg *m, uint8_t first, const uint8_t *plain,
				   size_t len);

/* The first payload of type after prev (NULL: from the start), outer or inner. */
const struct ike_pl *ike_msg_find(const struct ike_msg *m, uint8_t type, const struct ike_pl *prev);
/* The first Notify of this type. */
const struct ike_pl *ike_msg_find_notify(const struct ike_msg *m, uint16_t ntype);
/* How many payloads of this type (outer and inner). */
unsigned ike_msg_count(const struct ike_msg *m, uint8_t type);

/* ---- encoding -------------------------------------------------------------- */

/*
 * Begin a message in buf: writes the header (h->next and h->length ignored,
 * version forced to 2.0) and returns a chain whose first payload goes in the
 * header's Next Payload. Append payloads with ike_pl_encode & co.
 */
void ike_msg_begin(struct ike_enc *e, void *buf, size_t cap, const struct ike_hdr *h);

/* Finish a plaintext message: fills in Length. Message length or -ENOSPC. */
must_check ssize_t ike_msg_end(struct ike_enc *e);

/*
 * What sealing needs from the crypto: the sealed size for a plaintext size
 * (IV + padded plaintext + pad length byte + ICV), known before sealing since
 * the header and SK lengths are inside the AAD; and the seal itself, which
 * writes IV || ciphertext || ICV and returns its length (must equal
 * sealed_len) or a negative errno. Over crypto.h it is two lines each:
 *   sealed_len: return plain_len + sk_overhead(ctx->suite, plain_len);
 *   seal:       return sk_seal(ctx->suite, ctx->sk_e, ctx->sk_a, aad, aad_len,
 *                              plain, plain_len, out, out_cap);
 */
struct ike_sealer {
	size_t (*sealed_len)(void *ctx, size_t plain_len);
	ssize_t (*seal)(void *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *plain,
			size_t plain_len, uint8_t *out, size_t out_cap);
	void *ctx;
};

/*
 * Finish a message whose payloads so far (usually none) are followed by an SK
 * payload carrying the inner chain: writes the SK header (Next Payload =
 * inner->first), fixes every length, then seals inner's bytes behind it.
 * Message length, -ENOSPC, -EINVAL (inner chain overflowed) or the seal error.
 */
must_check ssize_t ike_msg_end_sealed(struct ike_enc *e, const struct ike_enc *inner,
				      const struct ike_sealer *s);

#endif
