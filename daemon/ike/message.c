/* IKEv2 message header and payload chain, outer and (after decryption) inner. */
#include <errno.h>
#include <string.h>

#include "ike/message.h"

static int fail(struct ike_parse_error *err, uint16_t notify, uint8_t payload, size_t offset,
		const char *why)
{
	err->notify = notify;
	err->payload = payload;
	err->offset = offset;
	err->why = why;
	return -EBADMSG;
}

/* rd_be64 in buf.h trips gcc's warn_unused_result (a (void) cast does not
 * silence it), so 64-bit SPIs are read as two halves. */
static must_check int rd_spi(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;
	if (!rd_has(r, 8) || rd_be32(r, &hi) || rd_be32(r, &lo))
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

int ike_hdr_decode(const uint8_t *buf, size_t len, struct ike_hdr *h, struct ike_parse_error *err)
{
	struct rd r = rd_init(buf, len);

	memset(err, 0, sizeof(*err));
	if (rd_spi(&r, &h->spi_i) || rd_spi(&r, &h->spi_r) || rd_u8(&r, &h->next) ||
	    rd_u8(&r, &h->version) || rd_u8(&r, &h->exchange) || rd_u8(&r, &h->flags) ||
	    rd_be32(&r, &h->msg_id) || rd_be32(&r, &h->length))
		return fail(err, INVALID_SYNTAX, IKE_PL_NONE, 0, "shorter than an IKE header");
	/* 2.5: a different major version is not ours; the minor one is ignored. */
	if (h->version >> 4 != IKE_MAJOR_VERSION)
		return fail(err, INVALID_MAJOR_VERSION, IKE_PL_NONE, 17, "major version is not 2");
	return 0;
}

/*
 * Walk one chain of generic payload headers (3.2) from off to the end of
 * base[0..len), decoding each known payload into m->pl.
 *
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 */
static int parse_chain(struct ike_msg *m, const uint8_t *base, size_t len, size_t off,
		       uint8_t type, bool inner)
{
	struct rd r = rd_init(base, len);
	const char *why;

	r.off = off;
	while (type != IKE_PL_NONE) {
		size_t at = r.off;
		uint8_t next, flags;
		uint16_t plen;
		struct rd body;

		if (rd_u8(&r, &next) || rd_u8(&r, &flags) || rd_be16(&r, &plen))
			return fail(&m->err, INVALID_SYNTAX, type, at, "payload header truncated");
		if (plen < IKE_PL_HDR_LEN)
			return fail(&m->err, INVALID_SYNTAX, type, at, "payload length below 4");
		if (rd_sub(&r, &body, plen - IKE_PL_HDR_LEN))
			return fail(&m->err, INVALID_SYNTAX, type, at, "payload length past the end");
		bool critical = flags & IKE_PL_CRITICAL;
		if (!ike_pl_known(type)) {
			/* 3.2: skip what we do not understand unless told it matters. */
			if (critical)
				return fail(&m->err, UNSUPPORTED_CRITICAL_PAYLOAD, type, at,
					    "unknown payload marked critical");
			if (m->nskipped < UINT8_MAX)
				m->nskipped++;
			type = next;
			continue;
		}
		bool is_sk = type == IKE_PL_SK || type == IKE_PL_SKF;
		if (is_sk && inner)
			return fail(&m->err, INVALID_SYNTAX, type, at, "SK inside SK");
		if (m->npl >= IKE_MSG_MAX_PAYLOADS)
			return fail(&m->err, INVALID_SYNTAX, type, at, "more payloads than we accept");

		struct ike_pl *pl = &m->pl[m->npl];
		int err = ike_pl_decode(pl, type, body.p, body.len, &m->arena, &why);
		if (err)
			return fail(&m->err, INVALID_SYNTAX, type, at, why);
		pl->type = type;
		pl->next = next;
		pl->critical = critical;
		pl->inner = inner;
		m->npl++;

		if (is_sk) {
			/* 3.14: "the Encrypted payload, if present in a message, MUST be
			 * the last payload"; its Next Payload names the first inner one. */
			if (!rd_empty(&r))
				return fail(&m->err, INVALID_SYNTAX, type, at, "SK is not the last payload");
			struct ike_sk_info *sk = &m->sk;
			sk->present = true;
			sk->fragment = type == IKE_PL_SKF;
			sk->inner_first = next;
			sk->at = at;
			sk->aad = base;
			sk->aad_len = at + IKE_PL_HDR_LEN;
			if (sk->fragment) {
				sk->frag_num = pl->u.skf.frag_num;
				sk->frag_total = pl->u.skf.frag_total;
				sk->aad_len += 4;
				sk->sealed = pl->u.skf.data;
				sk->sealed_len = pl->u.skf.len;
			} else {
				sk->sealed = pl->u.sk.data;
				sk->sealed_len = pl->u.sk.len;
			}
			return 0;
		}
		type = next;
	}
	if (!rd_empty(&r))
		return fail(&m->err, INVALID_SYNTAX, IKE_PL_NONE, r.off, "bytes after the last payload");
	return 0;
}

int ike_msg_parse(struct ike_msg *m, const uint8_t *buf, size_t len)
{
	m->buf = buf;
	m->len = len;
	m->npl = m->nouter = m->nskipped = 0;
	memset(&m->sk, 0, sizeof(m->sk));
	ike_arena_reset(&m->arena);

	int err = ike_hdr_decode(buf, len, &m->hdr, &m->err);
	if (err)
		return err;
	if (m->hdr.length != len)
		return fail(&m->err, INVALID_SYNTAX, IKE_PL_NONE, 24, "Length disagrees with the message size");
	err = parse_chain(m, buf, len, IKE_HDR_LEN, m->hdr.next, false);
	m->nouter = m->npl;
	return err;
}

int ike_msg_parse_inner(struct ike_msg *m, uint8_t first, const uint8_t *plain, size_t len)
{
	if (!m->sk.present || m->npl != m->nouter)
		return -EINVAL;
	struct ike_arena *a = &m->arena;
	uint16_t nprops = a->nprops, nxf = a->nxf, nts = a->nts, nattrs = a->nattrs;
	memset(&m->err, 0, sizeof(m->err));
	int err = parse_chain(m, plain, len, 0, first, true);
	if (err) {
		/* Leave the message as it was before: outer payloads only. */
		m->npl = m->nouter;
		a->nprops = nprops;
		a->nxf = nxf;
		a->nts = nts;
		a->nattrs = nattrs;
	}
	return err;
}

const struct ike_pl *ike_msg_find(const struct ike_msg *m, uint8_t type, const struct ike_pl *prev)
{
	unsigned i = prev ? (unsigned)(prev - m->pl) + 1 : 0;
	for (; i < m->npl; i++)
		if (m->pl[i].type == type)
			return &m->pl[i];
	return NULL;
}

const struct ike_pl *ike_msg_find_notify(const struct ike_msg *m, uint16_t ntype)
{
	for (const struct ike_pl *p = NULL; (p = ike_msg_find(m, IKE_PL_N, p));)
		if (p->u.n.type == ntype)
			return p;
	return NULL;
}

unsigned ike_msg_count(const struct ike_msg *m, uint8_t type)
{
	unsigned n = 0;
	for (unsigned i = 0; i < m->npl; i++)
		n += m->pl[i].type == type;
	return n;
}

/* ---- encoding -------------------------------------------------------------- */

enum { HDR_NEXT_AT = 16, HDR_LENGTH_AT = 24 };

void ike_msg_begin(struct ike_enc *e, void *buf, size_t cap, const struct ike_hdr *h)
{
	ike_enc_init(e, buf, cap);
	wr_be64(&e->w, h->spi_i);
	wr_be64(&e->w, h->spi_r);
	wr_u8(&e->w, IKE_PL_NONE);
	wr_u8(&e->w, IKE_VERSION);
	wr_u8(&e->w, h->exchange);
	wr_u8(&e->w, h->flags);
	wr_be32(&e->w, h->msg_id);
	wr_be32(&e->w, 0);
	e->next_at = HDR_NEXT_AT;
}

ssize_t ike_msg_end(struct ike_enc *e)
{
	if (!wr_ok(&e->w) || e->w.off > IKE_MSG_MAX_LEN)
		return -ENOSPC;
	wr_fill32(&e->w, HDR_LENGTH_AT, (uint32_t)e->w.off);
	return (ssize_t)e->w.off;
}

ssize_t ike_msg_end_sealed(struct ike_enc *e, const struct ike_enc *inner, const struct ike_sealer *s)
{
	if (!wr_ok(&inner->w))
		return -EINVAL;
	size_t plain_len = inner->w.off;
	size_t sealed_len = s->sealed_len(s->ctx, plain_len);

	size_t at = ike_pl_open(e, IKE_PL_SK, false);
	uint8_t *out = wr_reserve(&e->w, sealed_len);
	if (!out || !wr_ok(&e->w) || e->w.off > IKE_MSG_MAX_LEN)
		return -ENOSPC;
	e->w.p[at] = inner->count ? inner->first : IKE_PL_NONE;
	ike_pl_close(e, at);
	if (!wr_ok(&e->w))
		return -ENOSPC;
	wr_fill32(&e->w, HDR_LENGTH_AT, (uint32_t)e->w.off);

	/* 3.14: the AAD runs from the IKE header to the end of the SK header. */
	ssize_t n = s->seal(s->ctx, e->w.p, at + IKE_PL_HDR_LEN, inner->w.p, plain_len, out,
			    sealed_len);
	if (n < 0)
		return n;
	if ((size_t)n != sealed_len)
		return -EINVAL;
	return (ssize_t)e->w.off;
}
