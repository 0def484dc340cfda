/* SA payloads from FortiOS proposal names, and the choice among a peer's proposals (RFC 7296 2.7, 3.3). */
#include <errno.h>
#include <string.h>

#include "ike/crypto.h"
#include "ike/proposal.h"

static struct ike_transform *xf_add(struct prop_buf *b, uint8_t type, uint16_t id, uint16_t key_bits)
{
	if (b->nxf >= ARRAY_SIZE(b->xf))
		return NULL;
	struct ike_transform *t = &b->xf[b->nxf++];
	memset(t, 0, sizeof(*t));
	t->type = type;
	t->id = id;
	t->has_key_len = key_bits != 0;
	t->key_len = key_bits;
	return t;
}

/* Start proposal number num; its transforms follow in b->xf. */
static struct ike_proposal *prop_add(struct prop_buf *b, uint8_t proto, uint32_t spi)
{
	if (b->sa.nprops >= ARRAY_SIZE(b->props))
		return NULL;
	struct ike_proposal *p = &b->props[b->sa.nprops++];
	memset(p, 0, sizeof(*p));
	p->num = b->sa.nprops;
	p->proto = proto;
	if (proto != IKE_PROTO_IKE) {
		p->spi_size = 4;
		p->spi[0] = (uint8_t)(spi >> 24);
		p->spi[1] = (uint8_t)(spi >> 16);
		p->spi[2] = (uint8_t)(spi >> 8);
		p->spi[3] = (uint8_t)spi;
	}
	p->xf = &b->xf[b->nxf];
	return p;
}

static void prop_reset(struct prop_buf *b)
{
	b->nxf = 0;
	b->sa.nprops = 0;
	b->sa.props = b->props;
}

/* A proposal left without transforms (table full) is dropped. */
static void prop_close(struct prop_buf *b, struct ike_proposal *p)
{
	p->nxf = (uint8_t)(&b->xf[b->nxf] - p->xf);
	if (p->nxf == 0)
		b->sa.nprops--;
}

int ike_prop_build_ike(struct prop_buf *b, char *const *names, size_t n, const uint16_t *dh, size_t ndh)
{
	prop_reset(b);
	for (size_t i = 0; i < n; i++) {
		struct ike_suite s;
		if (suite_from_fortios_ike(names[i], &s))
			continue;
		struct ike_proposal *p = prop_add(b, IKE_PROTO_IKE, 0);
		if (!p)
			break;
		xf_add(b, IKE_XF_ENCR, s.encr->id, s.encr->key_bits);
		xf_add(b, IKE_XF_PRF, s.prf->id, 0);
		if (s.integ)
			xf_add(b, IKE_XF_INTEG, s.integ->id, 0);
		for (size_t j = 0; j < ndh; j++)
			if (ike_dh_supported(dh[j]))
				xf_add(b, IKE_XF_DH, dh[j], 0);
		prop_close(b, p);
	}
	return b->sa.nprops ? 0 : -EINVAL;
}

int ike_prop_build_esp_ke(struct prop_buf *b, char *const *names, size_t n, uint32_t spi, const uint16_t *dh,
			  size_t ndh)
{
	prop_reset(b);
	for (size_t i = 0; i < n; i++) {
		struct esp_suite s;
		if (suite_from_fortios_esp(names[i], &s))
			continue;
		struct ike_proposal *p = prop_add(b, IKE_PROTO_ESP, spi);
		if (!p)
			break;
		xf_add(b, IKE_XF_ENCR, s.encr->id, s.encr->key_bits);
		if (s.integ)
			xf_add(b, IKE_XF_INTEG, s.integ->id, 0);
		for (size_t j = 0; j < ndh; j++)
			if (ike_dh_supported(dh[j]))
				xf_add(b, IKE_XF_DH, dh[j], 0);
		xf_add(b, IKE_XF_ESN, ESN_NO, 0);
		xf_add(b, IKE_XF_ESN, ESN_YES, 0);
		prop_close(b, p);
	}
	return b->sa.nprops ? 0 : -EINVAL;
}

int ike_prop_build_esp(struct prop_buf *b, char *const *names, size_t n, uint32_t spi)
{
	return ike_prop_build_esp_ke(b, names, n, spi, NULL, 0);
}

void ike_prop_answer_ike(struct prop_buf *b, uint8_t num, const struct ike_suite *s)
{
	prop_reset(b);
	struct ike_proposal *p = prop_add(b, IKE_PROTO_IKE, 0);
	xf_add(b, IKE_XF_ENCR, s->encr->id, s->encr->key_bits);
	xf_add(b, IKE_XF_PRF, s->prf->id, 0);
	if (s->integ)
		xf_add(b, IKE_XF_INTEG, s->integ->id, 0);
	xf_add(b, IKE_XF_DH, s->ke, 0);
	prop_close(b, p);
	p->num = num;
}

void ike_prop_answer_esp_ke(struct prop_buf *b, uint8_t num, const struct esp_suite *s, bool esn, uint32_t spi,
			    uint16_t group)
{
	prop_reset(b);
	struct ike_proposal *p = prop_add(b, IKE_PROTO_ESP, spi);
	xf_add(b, IKE_XF_ENCR, s->encr->id, s->encr->key_bits);
	if (s->integ)
		xf_add(b, IKE_XF_INTEG, s->integ->id, 0);
	if (group)
		xf_add(b, IKE_XF_DH, group, 0);
	xf_add(b, IKE_XF_ESN, esn ? ESN_YES : ESN_NO, 0);
	prop_close(b, p);
	p->num = num;
}

void ike_prop_answer_esp(struct prop_buf *b, uint8_t num, const struct esp_suite *s, bool esn, uint32_t spi)
{
	ike_prop_answer_esp_ke(b, num, s, esn, spi, 0);
}

/* Whether proposal p offers this transform (3.3.6: transforms with unknown
 * attributes are not offers). ENCR also needs the same Key Length. */
static bool offers(const struct ike_proposal *p, uint8_t type, uint16_t id, uint16_t key_bits)
{
	for (unsigned i = 0; i < p->nxf; i++) {
		const struct ike_transform *t = &p->xf[i];
		if (t->type != type || t->id != id || t->unknown_attrs)
			continue;
		if (type == IKE_XF_ENCR && (t->has_key_len ? t->key_len : 0) != key_bits)
			continue;
		return true;
	}
	return false;
}

static bool has_type(const struct ike_proposal *p, uint8_t type)
{
	for (unsigned i = 0; i < p->nxf; i++)
		if (p->xf[i].type == type)
			return true;
	return false;
}

/*
 * 3.3.6: a proposal holding a Transform Type we do not understand (RFC 9370's Additional Key
 * Exchanges, say) is unacceptable as a whole: answering it without that type makes an answer the
 * initiator rejects, when its next proposal would have done. Its other proposals still count.
 */
static bool types_known(const struct ike_proposal *p)
{
	for (unsigned i = 0; i < p->nxf; i++)
		if (p->xf[i].type < IKE_XF_ENCR || p->xf[i].type > IKE_XF_ESN)
			return false;
	return true;
}

/* Encryption, PRF and integrity of s all offered by p (integrity absent or NONE for AEAD). */
static bool ike_algs_fit(const struct ike_proposal *p, const struct ike_suite *s)
{
	if (p->proto != IKE_PROTO_IKE || !types_known(p) ||
	    !offers(p, IKE_XF_ENCR, s->encr->id, s->encr->key_bits) || !offers(p, IKE_XF_PRF, s->prf->id, 0))
		return false;
	if (s->integ)
		return offers(p, IKE_XF_INTEG, s->integ->id, 0);
	return !has_type(p, IKE_XF_INTEG) || offers(p, IKE_XF_INTEG, AUTH_NONE, 0);
}

static bool esp_algs_fit(const struct ike_proposal *p, const struct esp_suite *s)
{
	if (p->proto != IKE_PROTO_ESP || p->spi_size != 4 || !types_known(p) ||
	    !offers(p, IKE_XF_ENCR, s->encr->id, s->encr->key_bits))
		return false;
	if (s->integ)
		return offers(p, IKE_XF_INTEG, s->integ->id, 0);
	return !has_type(p, IKE_XF_INTEG) || offers(p, IKE_XF_INTEG, AUTH_NONE, 0);
}

static uint32_t spi32(const struct ike_proposal *p)
{
	return (uint32_t)p->spi[0] << 24 | (uint32_t)p->spi[1] << 16 | (uint32_t)p->spi[2] << 8 | p->spi[3];
}

int ike_prop_choose_ike(const struct ike_sa_pl *peer, char *const *names, size_t n, const uint16_t *dh,
		    size_t ndh, uint16_t ke_group, struct ike_suite *out, uint8_t *num)
{
	for (size_t i = 0; i < n; i++) {
		struct ike_suite s;
		if (suite_from_fortios_ike(names[i], &s))
			continue;
		for (unsigned k = 0; k < peer->nprops; k++) {
			const struct ike_proposal *p = &peer->props[k];
			if (!ike_algs_fit(p, &s))
				continue;
			uint16_t group = 0;
			for (size_t j = 0; j < ndh && !group; j++)
				if (dh[j] == ke_group && ike_dh_supported(dh[j]) &&
				    offers(p, IKE_XF_DH, dh[j], 0))
					group = dh[j];
			for (size_t j = 0; j < ndh && !group; j++)
				if (ike_dh_supported(dh[j]) && offers(p, IKE_XF_DH, dh[j], 0))
					group = dh[j];
			if (!group)
				continue;
			s.ke = group;
			*out = s;
			*num = p->num;
			return 0;
		}
	}
	return -ENOENT;
}

static bool esn_choice(const struct ike_proposal *p, bool *esn)
{
	/* RFC 7296 3.3.2: ESN is part of every ESP proposal; treat its absence as "no". */
	if (offers(p, IKE_XF_ESN, ESN_NO, 0) || !has_type(p, IKE_XF_ESN)) {
		*esn = false;
		return true;
	}
	if (offers(p, IKE_XF_ESN, ESN_YES, 0)) {
		*esn = true;
		return true;
	}
	return false;
}

int ike_prop_choose_esp(const struct ike_sa_pl *peer, char *const *names, size_t n, struct esp_suite *out,
		    bool *esn, uint8_t *num, uint32_t *spi)
{
	for (size_t i = 0; i < n; i++) {
		struct esp_suite s;
		if (suite_from_fortios_esp(names[i], &s))
			continue;
		for (unsigned k = 0; k < peer->nprops; k++) {
			const struct ike_proposal *p = &peer->props[k];
			if (!esp_algs_fit(p, &s) || !esn_choice(p, esn) || spi32(p) == 0)
				continue;
			*out = s;
			*num = p->num;
			*spi = spi32(p);
			return 0;
		}
	}
	return -ENOENT;
}

/* 2.7: the answer holds exactly one transform of each type we offered. */
static bool exact(const struct ike_proposal *p, unsigned ntypes)
{
	return p->nxf == ntypes;
}

int ike_prop_accept_ike(const struct ike_sa_pl *answer, char *const *names, size_t n, const uint16_t *dh,
		    size_t ndh, struct ike_suite *out)
{
	if (answer->nprops != 1)
		return -EBADMSG;
	const struct ike_proposal *p = &answer->props[0];
	for (size_t i = 0; i < n; i++) {
		struct ike_suite s;
		if (suite_from_fortios_ike(names[i], &s) || !ike_algs_fit(p, &s) ||
		    !exact(p, s.integ ? 4 : 3))
			continue;
		for (size_t j = 0; j < ndh; j++) {
			if (offers(p, IKE_XF_DH, dh[j], 0) && ike_dh_supported(dh[j])) {
				s.ke = dh[j];
				*out = s;
				return 0;
			}
		}
	}
	return -EBADMSG;
}

int ike_prop_accept_esp(const struct ike_sa_pl *answer, char *const *names, size_t n, struct esp_suite *out,
		    bool *esn, uint32_t *spi)
{
	if (answer->nprops != 1)
		return -EBADMSG;
	const struct ike_proposal *p = &answer->props[0];
	for (size_t i = 0; i < n; i++) {
		struct esp_suite s;
		if (suite_from_fortios_esp(names[i], &s) || !esp_algs_fit(p, &s) ||
		    !exact(p, s.integ ? 3 : 2) || !esn_choice(p, esn) || spi32(p) == 0)
			continue;
		*out = s;
		*spi = spi32(p);
		return 0;
	}
	return -EBADMSG;
}

/* ---- ESP with a KE transform (PFS in CREATE_CHILD_SA, RFC 7296 1.3.1, 3.3.3) ---------- */

/* The group a proposal allows from ours: ke_group when offered, else our first offered; 0: none.
 * ndh == 0 (no PFS): the proposal must offer no group or NONE. */
static uint16_t esp_group(const struct ike_proposal *p, const uint16_t *dh, size_t ndh, uint16_t ke_group)
{
	if (!ndh)
		return !has_type(p, IKE_XF_DH) || offers(p, IKE_XF_DH, 0, 0) ? 0 : UINT16_MAX;
	for (size_t j = 0; j < ndh; j++)
		if (dh[j] == ke_group && ike_dh_supported(dh[j]) && offers(p, IKE_XF_DH, dh[j], 0))
			return dh[j];
	for (size_t j = 0; j < ndh; j++)
		if (ike_dh_supported(dh[j]) && offers(p, IKE_XF_DH, dh[j], 0))
			return dh[j];
	return UINT16_MAX;
}

int ike_prop_choose_esp_ke(const struct ike_sa_pl *peer, char *const *names, size_t n, const uint16_t *dh,
			   size_t ndh, uint16_t ke_group, struct esp_suite *out, bool *esn, uint8_t *num,
			   uint32_t *spi, uint16_t *group)
{
	for (size_t i = 0; i < n; i++) {
		struct esp_suite s;
		if (suite_from_fortios_esp(names[i], &s))
			continue;
		for (unsigned k = 0; k < peer->nprops; k++) {
			const struct ike_proposal *p = &peer->props[k];
			uint16_t g = esp_group(p, dh, ndh, ke_group);
			if (g == UINT16_MAX || !esp_algs_fit(p, &s) || !esn_choice(p, esn) || spi32(p) == 0)
				continue;
			*out = s;
			*num = p->num;
			*spi = spi32(p);
			*group = g;
			return 0;
		}
	}
	return -ENOENT;
}

int ike_prop_accept_esp_ke(const struct ike_sa_pl *answer, char *const *names, size_t n, const uint16_t *dh,
			   size_t ndh, struct esp_suite *out, bool *esn, uint32_t *spi, uint16_t *group)
{
	if (answer->nprops != 1)
		return -EBADMSG;
	const struct ike_proposal *p = &answer->props[0];
	uint16_t g = esp_group(p, dh, ndh, 0);
	if (g == UINT16_MAX || (ndh && !g))
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		struct esp_suite s;
		if (suite_from_fortios_esp(names[i], &s) || !esp_algs_fit(p, &s) ||
		    !exact(p, (s.integ ? 3u : 2u) + (g ? 1u : 0u)) || !esn_choice(p, esn) || spi32(p) == 0)
			continue;
		*out = s;
		*spi = spi32(p);
		*group = g;
		return 0;
	}
	return -EBADMSG;
}
