/* IKEv2 payload bodies: decode (structure only) and encode, RFC 7296 section 3. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ike/payload.h"

#define BAD(reason)                                                                  \
	do {                                                                         \
		*why = (reason);                                                     \
		return -EBADMSG;                                                     \
	} while (0)

/* Every SPI field in IKEv2 is 0, 4 (AH/ESP) or 8 (IKE) bytes. */
static bool spi_size_ok(uint8_t proto, uint8_t size)
{
	switch (proto) {
	case IKE_PROTO_IKE:
		return size == 0 || size == IKE_SPI_LEN;
	case IKE_PROTO_AH:
	case IKE_PROTO_ESP:
		return size == 4;
	default:
		return size == 0 || size == 4 || size == IKE_SPI_LEN;
	}
}

/*
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |A|       Attribute Type        |    AF=0  Attribute Length     |
 * |F|                             |    AF=1  Attribute Value      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                   AF=0  Attribute Value                       |
 * |                   AF=1  Not Transmitted                       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
static int decode_attrs(struct rd *r, struct ike_transform *t, const char **why)
{
	while (!rd_empty(r)) {
		uint16_t type, v;
		if (rd_be16(r, &type) || rd_be16(r, &v))
			BAD("transform attribute truncated");
		bool tv = type & IKE_ATTR_AF;
		type &= (uint16_t)~IKE_ATTR_AF;
		if (!tv && rd_skip(r, v))
			BAD("transform attribute value past its transform");
		if (type != IKE_ATTR_KEY_LENGTH) {
			if (t->unknown_attrs < UINT8_MAX)
				t->unknown_attrs++;
			continue;
		}
		if (!tv)
			BAD("Key Length attribute must be TV");
		if (t->has_key_len)
			BAD("Key Length attribute repeated");
		t->has_key_len = true;
		t->key_len = v;
	}
	return 0;
}

/*
 * Transform substructure (3.3.2):
 * | Last Substruc |   RESERVED    |        Transform Length       |
 * |Transform Type |   RESERVED    |          Transform ID         |
 * ~                      Transform Attributes                     ~
 */
/* What differs between the proposal and transform substructure headers: the "more" value and the words. */
struct substruct {
	uint8_t more;
	unsigned hdr_len;
	const char *truncated, *bad_more, *too_short, *past_end;
};

/*
 * The shared start of proposals and transforms: Last Substruc (0 or `more`),
 * RESERVED, a length that counts the 4 bytes read here, and a sub-reader
 * holding the rest of the substructure.
 */
static int decode_substruct(struct rd *r, const struct substruct *k, struct rd *body, bool *last,
			    const char **why)
{
	uint8_t more, res;
	uint16_t len;

	if (rd_u8(r, &more) || rd_u8(r, &res) || rd_be16(r, &len))
		BAD(k->truncated);
	if (more != 0 && more != k->more)
		BAD(k->bad_more);
	if (len < k->hdr_len)
		BAD(k->too_short);
	if (rd_sub(r, body, len - 4u))
		BAD(k->past_end);
	*last = more == 0;
	return 0;
}

static const struct substruct transform_hdr = {
	IKE_XFORM_MORE, IKE_XFORM_HDR_LEN, "transform header truncated",
	"transform Last Substruc neither 0 nor 3", "transform length below 8", "transform length past its proposal",
};

static const struct substruct proposal_hdr = {
	IKE_PROP_MORE, IKE_PROP_HDR_LEN, "proposal header truncated",
	"proposal Last Substruc neither 0 nor 2", "proposal length below 8", "proposal length past the SA payload",
};

static int decode_transform(struct rd *r, struct ike_transform *t, bool *last, const char **why)
{
	uint8_t res2;
	struct rd body;

	if (decode_substruct(r, &transform_hdr, &body, last, why))
		return -EBADMSG;
	memset(t, 0, sizeof(*t));
	if (rd_u8(&body, &t->type) || rd_u8(&body, &res2) || rd_be16(&body, &t->id))
		BAD("transform header truncated");
	return decode_attrs(&body, t, why);
}

/*
 * Proposal substructure (3.3.1):
 * | Last Substruc |   RESERVED    |         Proposal Length       |
 * | Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
 * ~                        SPI (variable)                         ~
 * ~                        <Transforms>                           ~
 */
static int decode_proposal(struct rd *r, struct ike_proposal *p, struct ike_arena *a, bool *last,
			   const char **why)
{
	struct rd body;

	if (decode_substruct(r, &proposal_hdr, &body, last, why))
		return -EBADMSG;
	memset(p, 0, sizeof(*p));
	if (rd_u8(&body, &p->num) || rd_u8(&body, &p->proto) || rd_u8(&body, &p->spi_size) ||
	    rd_u8(&body, &p->nxf))
		BAD("proposal header truncated");
	if (p->num == 0)
		BAD("proposal number 0");
	if (!spi_size_ok(p->proto, p->spi_size))
		BAD("proposal SPI size does not fit its protocol");
	if (rd_copy(&body, p->spi, p->spi_size))
		BAD("proposal SPI truncated");
	if (p->nxf == 0)
		BAD("proposal without transforms");
	if (p->nxf > IKE_ARENA_TRANSFORMS - a->nxf)
		BAD("too many transforms in one message");

	struct ike_transform *xf = &a->xf[a->nxf];
	bool xlast = false;
	for (unsigned i = 0; i < p->nxf; i++) {
		if (xlast)
			BAD("transform after the last one");
		if (rd_empty(&body))
			BAD("fewer transforms than Num Transforms");
		int err = decode_transform(&body, &xf[i], &xlast, why);
		if (err)
			return err;
	}
	if (!xlast)
		BAD("last transform not marked last");
	if (!rd_empty(&body))
		BAD("bytes after the last transform");
	a->nxf = (uint16_t)(a->nxf + p->nxf);
	p->xf = xf;
	return 0;
}

/* SA payload (3.3): proposals numbered consecutively (3.3.1). */
static int decode_sa(struct rd *r, struct ike_sa_pl *sa, struct ike_arena *a, const char **why)
{
	struct ike_proposal *props = &a->props[a->nprops];
	unsigned n = 0;
	bool last = false;

	if (rd_empty(r))
		BAD("SA payload without proposals");
	while (!last) {
		if (rd_empty(r))
			BAD("last proposal not marked last");
		if (a->nprops + n >= IKE_ARENA_PROPOSALS)
			BAD("too many proposals in one message");
		int err = decode_proposal(r, &props[n], a, &last, why);
		if (err)
			return err;
		if (n > 0 && props[n].num != props[n - 1].num + 1)
			BAD("proposal numbers not consecutive");
		n++;
	}
	if (!rd_empty(r))
		BAD("bytes after the last proposal");
	a->nprops = (uint16_t)(a->nprops + n);
	sa->props = props;
	sa->nprops = (uint8_t)n;
	return 0;
}

/* KE (3.4): | DH Group Num | RESERVED | Key Exchange Data ~ */
static int decode_ke(struct rd *r, struct ike_ke_pl *ke, const char **why)
{
	uint16_t res;
	if (rd_be16(r, &ke->group) || rd_be16(r, &res))
		BAD("KE header truncated");
	ke->len = rd_left(r);
	ke->data = rd_ptr(r);
	return rd_skip(r, ke->len) ? -EBADMSG : 0;
}

/* ID (3.5), AUTH (3.8): | type | RESERVED (3) | data ~ */
static int decode_typed(struct rd *r, uint8_t *type, const uint8_t **data, size_t *len,
			const char **why)
{
	uint8_t res[3];
	if (rd_u8(r, type) || rd_copy(r, res, sizeof(res)))
		BAD("payload header truncated");
	*len = rd_left(r);
	*data = rd_ptr(r);
	return rd_skip(r, *len) ? -EBADMSG : 0;
}

/* CERT, CERTREQ (3.6, 3.7): | Cert Encoding | data ~ */
static int decode_cert(struct rd *r, struct ike_cert_pl *c, const char **why)
{
	if (rd_u8(r, &c->encoding))
		BAD("certificate encoding missing");
	c->len = rd_left(r);
	c->data = rd_ptr(r);
	return rd_skip(r, c->len) ? -EBADMSG : 0;
}

static void decode_opaque(struct rd *r, struct ike_data_pl *d)
{
	d->len = rd_left(r);
	d->data = rd_ptr(r);
	r->off = r->len;
}

/*
 * Notify (3.10):
 * |  Protocol ID  |   SPI Size    |      Notify Message Type      |
 * ~                Security Parameter Index (SPI)                 ~
 * ~                       Notification Data                       ~
 */
static int decode_notify(struct rd *r, struct ike_notify_pl *n, const char **why)
{
	memset(n->spi, 0, sizeof(n->spi));
	if (rd_u8(r, &n->proto) || rd_u8(r, &n->spi_size) || rd_be16(r, &n->type))
		BAD("notify header truncated");
	if (!spi_size_ok(n->proto, n->spi_size) && n->spi_size != 0)
		BAD("notify SPI size does not fit its protocol");
	if (rd_copy(r, n->spi, n->spi_size))
		BAD("notify SPI truncated");
	n->len = rd_left(r);
	n->data = rd_ptr(r);
	return rd_skip(r, n->len) ? -EBADMSG : 0;
}

/*
 * Delete (3.11):
 * | Protocol ID   |   SPI Size    |          Num of SPIs          |
 * ~               Security Parameter Index(es) (SPI)              ~
 */
static int decode_delete(struct rd *r, struct ike_delete_pl *d, const char **why)
{
	if (rd_u8(r, &d->proto) || rd_u8(r, &d->spi_size) || rd_be16(r, &d->count))
		BAD("delete header truncated");
	if (d->proto == IKE_PROTO_IKE) {
		if (d->spi_size != 0 || d->count != 0)
			BAD("IKE SA delete must carry no SPI");
	} else if (d->proto == IKE_PROTO_AH || d->proto == IKE_PROTO_ESP) {
		if (d->spi_size != 4)
			BAD("AH/ESP delete SPI size must be 4");
	} else {
		BAD("delete for an unknown protocol");
	}
	if ((size_t)d->count * d->spi_size != rd_left(r))
		BAD("delete SPI count times size disagrees with its length");
	return rd_view(r, &d->spis, rd_left(r)) ? -EBADMSG : 0;
}

/*
 * Traffic selector payload (3.13) and one selector (3.13.1):
 * | Number of TSs |                 RESERVED                      |
 * |   TS Type     |IP Protocol ID*|       Selector Length         |
 * |           Start Port*         |           End Port*           |
 * ~                         Starting Address*                     ~
 * ~                         Ending Address*                       ~
 */
static int decode_ts(struct rd *r, struct ike_ts_pl *tsp, struct ike_arena *a, const char **why)
{
	uint8_t res[3];
	if (rd_u8(r, &tsp->count) || rd_copy(r, res, sizeof(res)))
		BAD("TS header truncated");
	if (tsp->count == 0)
		BAD("TS payload without selectors");
	if (tsp->count > IKE_ARENA_SELECTORS - a->nts)
		BAD("too many traffic selectors in one message");
	struct ike_ts *ts = &a->ts[a->nts];
	for (unsigned i = 0; i < tsp->count; i++) {
		struct ike_ts *t = &ts[i];
		uint16_t sel_len;
		memset(t, 0, sizeof(*t));
		if (rd_u8(r, &t->type) || rd_u8(r, &t->ip_proto) || rd_be16(r, &sel_len))
			BAD("fewer selectors than Number of TSs");
		size_t alen;
		if (t->type == TS_IPV4_ADDR_RANGE)
			alen = 4;
		else if (t->type == TS_IPV6_ADDR_RANGE)
			alen = 16;
		else
			BAD("unknown TS type");
		if (sel_len != 8 + 2 * alen)
			BAD("selector length does not match its TS type");
		if (rd_be16(r, &t->start_port) || rd_be16(r, &t->end_port) ||
		    rd_copy(r, t->start, alen) || rd_copy(r, t->end, alen))
			BAD("selector truncated");
	}
	if (!rd_empty(r))
		BAD("bytes after the last selector");
	a->nts = (uint16_t)(a->nts + tsp->count);
	tsp->ts = ts;
	return 0;
}

/*
 * Configuration payload (3.15) and attributes (3.15.1):
 * |   CFG Type    |                    RESERVED                   |
 * |R|         Attribute Type      |            Length             |
 * ~                             Value                             ~
 */
static int decode_cp(struct rd *r, struct ike_cp_pl *cp, struct ike_arena *a, const char **why)
{
	uint8_t res[3];
	if (rd_u8(r, &cp->cfg_type) || rd_copy(r, res, sizeof(res)))
		BAD("CP header truncated");
	struct ike_cp_attr *attrs = &a->attrs[a->nattrs];
	unsigned n = 0;
	while (!rd_empty(r)) {
		if (a->nattrs + n >= IKE_ARENA_CP_ATTRS)
			BAD("too many configuration attributes in one message");
		struct ike_cp_attr *at = &attrs[n];
		if (rd_be16(r, &at->type) || rd_be16(r, &at->len))
			BAD("configuration attribute truncated");
		at->type &= IKE_CFG_ATTR_TYPE_MASK;
		if (rd_view(r, &at->value, at->len))
			BAD("configuration attribute value past the payload");
		n++;
	}
	a->nattrs = (uint16_t)(a->nattrs + n);
	cp->attrs = attrs;
	cp->nattrs = (uint8_t)n;
	return 0;
}

/* SKF (RFC 7383 2.5): | Fragment Number | Total Fragments | IV, ciphertext, ICV ~ */
static int decode_skf(struct rd *r, struct ike_skf_pl *f, const char **why)
{
	if (rd_be16(r, &f->frag_num) || rd_be16(r, &f->frag_total))
		BAD("SKF header truncated");
	if (f->frag_num == 0 || f->frag_num > f->frag_total)
		BAD("SKF fragment number outside 1..total");
	f->len = rd_left(r);
	f->data = rd_ptr(r);
	r->off = r->len;
	return 0;
}

bool ike_pl_known(uint8_t type)
{
	return (type >= IKE_PL_SA && type <= IKE_PL_CP) || type == IKE_PL_SKF;
}

int ike_pl_decode(struct ike_pl *pl, uint8_t type, const uint8_t *body, size_t len,
		  struct ike_arena *a, const char **why)
{
	struct rd r = rd_init(body, len);
	int err;

	*why = NULL;
	pl->body = body;
	pl->body_len = len;
	memset(&pl->u, 0, sizeof(pl->u));
	switch (type) {
	case IKE_PL_SA:
		err = decode_sa(&r, &pl->u.sa, a, why);
		break;
	case IKE_PL_KE:
		err = decode_ke(&r, &pl->u.ke, why);
		break;
	case IKE_PL_IDI:
	case IKE_PL_IDR:
		err = decode_typed(&r, &pl->u.id.id_type, &pl->u.id.data, &pl->u.id.len, why);
		break;
	case IKE_PL_CERT:
	case IKE_PL_CERTREQ:
		err = decode_cert(&r, &pl->u.cert, why);
		break;
	case IKE_PL_AUTH:
		err = decode_typed(&r, &pl->u.auth.method, &pl->u.auth.data, &pl->u.auth.len, why);
		break;
	case IKE_PL_NONCE:
		decode_opaque(&r, &pl->u.nonce);
		err = 0;
		break;
	case IKE_PL_N:
		err = decode_notify(&r, &pl->u.n, why);
		break;
	case IKE_PL_D:
		err = decode_delete(&r, &pl->u.d, why);
		break;
	case IKE_PL_V:
		decode_opaque(&r, &pl->u.v);
		err = 0;
		break;
	case IKE_PL_TSI:
	case IKE_PL_TSR:
		err = decode_ts(&r, &pl->u.ts, a, why);
		break;
	case IKE_PL_CP:
		err = decode_cp(&r, &pl->u.cp, a, why);
		break;
	case IKE_PL_SK:
		decode_opaque(&r, &pl->u.sk);
		err = 0;
		break;
	case IKE_PL_SKF:
		err = decode_skf(&r, &pl->u.skf, why);
		break;
	default:
		*why = "payload type not decoded";
		return -EINVAL;
	}
	if (err) {
		if (!*why)
			*why = "payload truncated";
		return err;
	}
	/* Every decoder consumes its bytes; this catches one that forgot. */
	if (!rd_empty(&r)) {
		*why = "trailing bytes in payload";
		return -EBADMSG;
	}
	return 0;
}

/* ---- encoding -------------------------------------------------------------- */

void ike_enc_init(struct ike_enc *e, void *buf, size_t cap)
{
	e->w = wr_init(buf, cap);
	e->next_at = SIZE_MAX;
	e->first = IKE_PL_NONE;
	e->count = 0;
}

size_t ike_pl_open(struct ike_enc *e, uint8_t type, bool critical)
{
	if (e->count == 0)
		e->first = type;
	if (!e->w.overflow && e->next_at < e->w.off)
		e->w.p[e->next_at] = type;
	e->count++;
	size_t at = e->w.off;
	e->next_at = at;
	wr_u8(&e->w, IKE_PL_NONE);
	wr_u8(&e->w, critical ? IKE_PL_CRITICAL : 0);
	(void)wr_hole16(&e->w);
	return at;
}

void ike_pl_close(struct ike_enc *e, size_t at)
{
	size_t len = e->w.off - at;
	if (len > UINT16_MAX)
		e->w.overflow = true;
	else
		wr_fill16(&e->w, at + 2, (uint16_t)len);
}

static void wr_res(struct wr *w, size_t n)
{
	uint8_t *b = wr_reserve(w, n);
	if (b)
		memset(b, 0, n);
}

static int encode_sa(struct wr *w, const struct ike_sa_pl *sa)
{
	if (sa->nprops == 0)
		return -EINVAL;
	for (unsigned i = 0; i < sa->nprops; i++) {
		const struct ike_proposal *p = &sa->props[i];
		if (p->spi_size > IKE_MAX_SPI_LEN || p->nxf == 0)
			return -EINVAL;
		size_t at = w->off;
		wr_u8(w, i + 1u == sa->nprops ? IKE_PROP_LAST : IKE_PROP_MORE);
		wr_u8(w, 0);
		(void)wr_hole16(w);
		wr_u8(w, p->num);
		wr_u8(w, p->proto);
		wr_u8(w, p->spi_size);
		wr_u8(w, p->nxf);
		wr_bytes(w, p->spi, p->spi_size);
		for (unsigned j = 0; j < p->nxf; j++) {
			const struct ike_transform *t = &p->xf[j];
			wr_u8(w, j + 1u == p->nxf ? IKE_XFORM_LAST : IKE_XFORM_MORE);
			wr_u8(w, 0);
			wr_be16(w, t->has_key_len ? 12 : 8);
			wr_u8(w, t->type);
			wr_u8(w, 0);
			wr_be16(w, t->id);
			if (t->has_key_len) {
				wr_be16(w, IKE_ATTR_AF | IKE_ATTR_KEY_LENGTH);
				wr_be16(w, t->key_len);
			}
		}
		if (w->off - at > UINT16_MAX)
			return -EINVAL;
		wr_fill16(w, at + 2, (uint16_t)(w->off - at));
	}
	return 0;
}

static int encode_ts(struct wr *w, const struct ike_ts_pl *tsp)
{
	if (tsp->count == 0)
		return -EINVAL;
	wr_u8(w, tsp->count);
	wr_res(w, 3);
	for (unsigned i = 0; i < tsp->count; i++) {
		const struct ike_ts *t = &tsp->ts[i];
		size_t alen;
		if (t->type == TS_IPV4_ADDR_RANGE)
			alen = 4;
		else if (t->type == TS_IPV6_ADDR_RANGE)
			alen = 16;
		else
			return -EINVAL;
		wr_u8(w, t->type);
		wr_u8(w, t->ip_proto);
		wr_be16(w, (uint16_t)(8 + 2 * alen));
		wr_be16(w, t->start_port);
		wr_be16(w, t->end_port);
		wr_bytes(w, t->start, alen);
		wr_bytes(w, t->end, alen);
	}
	return 0;
}

static int encode_body(struct wr *w, const struct ike_pl *pl)
{
	switch (pl->type) {
	case IKE_PL_SA:
		return encode_sa(w, &pl->u.sa);
	case IKE_PL_KE:
		wr_be16(w, pl->u.ke.group);
		wr_be16(w, 0);
		wr_bytes(w, pl->u.ke.data, pl->u.ke.len);
		return 0;
	case IKE_PL_IDI:
	case IKE_PL_IDR:
		wr_u8(w, pl->u.id.id_type);
		wr_res(w, 3);
		wr_bytes(w, pl->u.id.data, pl->u.id.len);
		return 0;
	case IKE_PL_CERT:
	case IKE_PL_CERTREQ:
		wr_u8(w, pl->u.cert.encoding);
		wr_bytes(w, pl->u.cert.data, pl->u.cert.len);
		return 0;
	case IKE_PL_AUTH:
		wr_u8(w, pl->u.auth.method);
		wr_res(w, 3);
		wr_bytes(w, pl->u.auth.data, pl->u.auth.len);
		return 0;
	case IKE_PL_NONCE:
		wr_bytes(w, pl->u.nonce.data, pl->u.nonce.len);
		return 0;
	case IKE_PL_N:
		if (pl->u.n.spi_size > IKE_MAX_SPI_LEN)
			return -EINVAL;
		wr_u8(w, pl->u.n.proto);
		wr_u8(w, pl->u.n.spi_size);
		wr_be16(w, pl->u.n.type);
		wr_bytes(w, pl->u.n.spi, pl->u.n.spi_size);
		wr_bytes(w, pl->u.n.data, pl->u.n.len);
		return 0;
	case IKE_PL_D:
		wr_u8(w, pl->u.d.proto);
		wr_u8(w, pl->u.d.spi_size);
		wr_be16(w, pl->u.d.count);
		wr_bytes(w, pl->u.d.spis, (size_t)pl->u.d.count * pl->u.d.spi_size);
		return 0;
	case IKE_PL_V:
		wr_bytes(w, pl->u.v.data, pl->u.v.len);
		return 0;
	case IKE_PL_TSI:
	case IKE_PL_TSR:
		return encode_ts(w, &pl->u.ts);
	case IKE_PL_CP:
		wr_u8(w, pl->u.cp.cfg_type);
		wr_res(w, 3);
		for (unsigned i = 0; i < pl->u.cp.nattrs; i++) {
			const struct ike_cp_attr *at = &pl->u.cp.attrs[i];
			wr_be16(w, at->type & IKE_CFG_ATTR_TYPE_MASK);
			wr_be16(w, at->len);
			wr_bytes(w, at->value, at->len);
		}
		return 0;
	default:
		/* SK/SKF are written by the message encoder, which owns the sealing. */
		return -EINVAL;
	}
}

int ike_pl_encode(struct ike_enc *e, const struct ike_pl *pl)
{
	if (!ike_pl_known(pl->type) || pl->type == IKE_PL_SK || pl->type == IKE_PL_SKF)
		return -EINVAL;
	size_t at = ike_pl_open(e, pl->type, pl->critical);
	int err = encode_body(&e->w, pl);
	ike_pl_close(e, at);
	return err;
}

void ike_enc_notify(struct ike_enc *e, uint8_t proto, const uint8_t *spi, uint8_t spi_size,
		    uint16_t type, const void *data, size_t len)
{
	size_t at = ike_pl_open(e, IKE_PL_N, false);
	wr_u8(&e->w, proto);
	wr_u8(&e->w, spi_size);
	wr_be16(&e->w, type);
	wr_bytes(&e->w, spi, spi_size);
	wr_bytes(&e->w, data, len);
	ike_pl_close(e, at);
}

void ike_enc_data(struct ike_enc *e, uint8_t type, const void *data, size_t len)
{
	size_t at = ike_pl_open(e, type, false);
	wr_bytes(&e->w, data, len);
	ike_pl_close(e, at);
}
