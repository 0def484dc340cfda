/*
 * Rekeying the IKE SA with CREATE_CHILD_SA (RFC 7296 1.3.2, 2.8, 2.8.2,
 * 2.18, 2.25.2), both halves:
 *
 *   HDR, SK { SA(IKE, SPIi'), Ni, KEi }  -->
 *                        <--  HDR, SK { SA(IKE, SPIr'), Nr, KEr }
 *                        <--  HDR, SK { N(INVALID_KE_PAYLOAD | NO_PROPOSAL_CHOSEN | TEMPORARY_FAILURE) }
 *   then, on the old SA:  INFORMATIONAL { D(IKE) }  -->   <--  { }
 *
 * The new SA takes SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with
 * the old PRF, and its keys from prf+ (SKEYSEED, Ni | Nr | SPIi' | SPIr')
 * with the new suite (2.18). Whoever initiates the rekey is the new SA's
 * original initiator. It inherits the tunnel, the peer's identity, the
 * stream and every CHILD SA (the dataplane is not touched: CHILD SAs are
 * keyed by their own SPIs); message IDs start again at 0. The old SA then
 * only carries its DELETE: the rekey initiator sends it, the responder
 * answers it and frees the old SA (or after IKE_RESPONSE_TIMEOUT_MS).
 *
 * Both ends rekeying at once (2.8.2): each answers the other and gets an
 * answer, making two new SAs. The one made by the exchange holding the
 * lowest of the four nonces is redundant: its initiator DELETEs it, and the
 * initiator of the survivor DELETEs the old SA.
 *
 * Rekeys run at phase1 keylife minus 5-15% (both ends have a timer; the
 * jitter keeps them apart). No IKE SA rekey starts while a request of ours
 * is out (window 1), and a CHILD SA exchange against an IKE SA being
 * rekeyed, or the other way round, gets TEMPORARY_FAILURE (2.25).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "ike/proposal.h"
#include "ike/sa.h"
#include "iketcp/stats.h"

enum {
	IKE_REKEY_RETRY_MS = 1000,   /* a request of ours is out: try again */
	IKE_REKEY_REFUSED_MS = 5000, /* the peer refused or failed: not before this */
	IKE_KE_MAX = 1024,           /* the largest KE data (MODP 8192) */
};

static const char *tname(const struct ike_sa *sa)
{
	return sa->tun ? sa->tun->name : "?";
}

static void spi_put(uint8_t out[8], uint64_t v)
{
	ike_spi_bytes(v, out);
}

static uint64_t spi_get(const uint8_t in[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | in[i];
	return v;
}

/* TEST ONLY: IKETCP_TEST_IKE_LIFETIME_S overrides phase1 keylife for the rekey
 * timer (the configuration's minimum is 120 s); tests/netns/test_rekey.sh uses it. */
static uint64_t lifetime_ms(const struct ike_sa *sa)
{
	const char *e = getenv("IKETCP_TEST_IKE_LIFETIME_S");
	if (e && *e) {
		unsigned long v = strtoul(e, NULL, 10);
		if (v >= 2 && v <= 172800)
			return (uint64_t)v * 1000;
	}
	return sa->tun && sa->tun->p1 ? (uint64_t)sa->tun->p1->keylife * 1000 : 0;
}

/* keylife minus 5% minus up to another 10%. */
static uint64_t rekey_delay_ms(const struct ike_sa *sa)
{
	uint64_t life = lifetime_ms(sa), jitter = 0;
	uint32_t r = 0;
	if (life / 10 && RAND_bytes((uint8_t *)&r, sizeof(r)) == 1)
		jitter = r % (life / 10);
	return life - life / 20 - jitter;
}

/* Never later than the SA's keylife: that is when it expires if no rekey made it. */
static void arm_in(struct ike_sa *sa, uint64_t ms)
{
	struct loop *loop = sa->ike->loop;
	uint64_t life = lifetime_ms(sa);

	if (!loop)
		return;
	if (life && sa->established_ms) {
		uint64_t age = loop_now_ms(loop) - sa->established_ms;
		ms = age >= life ? 0 : MIN(ms, life - age);
	}
	(void)loop_timer_arm(loop, &sa->ike_rekey_timer, ms);
}

/* keylife reached without a rekey (the peer kept refusing, or never answered): the SA goes, with a
 * DELETE, and a static tunnel comes back with a new IKE_SA_INIT. */
static void expire(struct ike_sa *sa)
{
	struct ike_tunnel *t = sa->tun;

	log_warn("%s: IKE SA %016llx_i %016llx_r reached its keylife without a rekey: deleted", tname(sa),
		 (unsigned long long)sa->spi_i, (unsigned long long)sa->spi_r);
	STAT_INC(ike, sa_expired);
	if (!(sa->state == SA_ESTABLISHED && !sa->req_out && ike_info_delete_ike(sa, true) == 0))
		ike_sa_free(sa); /* otherwise freed when the DELETE is answered, or at its timeout */
	if (t)
		ike_tunnel_retry(t, "IKE SA expired");
}

void ike_rekey_arm(struct ike_sa *sa)
{
	uint64_t d = rekey_delay_ms(sa);
	if (d)
		arm_in(sa, d);
}

static void rekey_fire(struct loop *loop, struct loop_timer *t)
{
	struct ike_sa *sa = container_of(t, struct ike_sa, ike_rekey_timer);
	uint64_t life = lifetime_ms(sa);

	if (sa->rekeyed || sa->state != SA_ESTABLISHED)
		return;
	if (life && sa->established_ms && loop_now_ms(loop) - sa->established_ms >= life) {
		expire(sa);
		return;
	}
	int err = ike_rekey_ike(sa);
	if (err == -EBUSY)
		arm_in(sa, IKE_REKEY_RETRY_MS);
	else if (err && err != -EPROTO)
		arm_in(sa, IKE_REKEY_REFUSED_MS);
}

void ike_rekey_timer_init(struct ike_sa *sa)
{
	loop_timer_init(&sa->ike_rekey_timer, rekey_fire);
}

void ike_rekey_retire(struct ike_sa *sa)
{
	struct loop *loop = sa->ike->loop;

	sa->rekeyed = true;
	if (!loop)
		return;
	loop_timer_cancel(loop, &sa->dpd_timer);
	loop_timer_cancel(loop, &sa->rekey_timer);
	loop_timer_cancel(loop, &sa->ike_rekey_timer);
	/* The DELETE for it is due within the response timeout (a request of ours out has that timer already). */
	if (!sa->req_out)
		ike_sa_arm_timer(sa);
}

/* The new SA next to old: keys from the old SK_d (2.18), same tunnel, peer and stream. */
static struct ike_sa *sa_make(struct ike_sa *old, bool initiator, uint64_t spi_i, uint64_t spi_r,
			      const struct ike_suite *s, const struct secret *gir, const uint8_t *ni, size_t ni_len,
			      const uint8_t *nr, size_t nr_len)
{
	struct ike *ike = old->ike;
	uint8_t bi[8], br[8];
	struct ike_sa *sa = ike_sa_new(ike, initiator, old->conn);

	if (!sa)
		return NULL;
	spi_put(bi, spi_i);
	spi_put(br, spi_r);
	if (ike_sa_keys_rekey(old->suite.prf, old->keys.sk_d, s, gir, (struct ike_blob){ ni, ni_len },
			      (struct ike_blob){ nr, nr_len }, bi, br, &sa->keys)) {
		ike_sa_free(sa);
		return NULL;
	}
	sa->have_keys = true;
	sa->spi_i = spi_i;
	sa->spi_r = spi_r;
	sa->suite = *s;
	sa->tun = old->tun;
	sa->peer_id = old->peer_id;
	memcpy(sa->peer_id_digest, old->peer_id_digest, sizeof(sa->peer_id_digest));
	sa->local = old->local;
	sa->remote = old->remote;
	memcpy(sa->ni, ni, ni_len);
	sa->ni_len = ni_len;
	memcpy(sa->nr, nr, nr_len);
	sa->nr_len = nr_len;
	return sa;
}

/* The new SA carries what the old one did: CHILD SAs, the hold on the stream, ESP liveness. */
static void take_over(struct ike_sa *to, struct ike_sa *from)
{
	ike_child_adopt(to, from);
	if (to->ike->alive_sa == from)
		to->ike->alive_sa = to;
	if (from->held && !to->held) {
		to->held = true; /* the stream stays held: only the owner changes */
		from->held = false;
	}
}

static void went_up(struct ike_sa *sa, const struct ike_sa *old)
{
	ike_sa_established(sa);
	STAT_INC(ike, sa_rekeyed);
	log_info("%s: IKE SA %016llx_i %016llx_r rekeyed to %016llx_i %016llx_r (%s)", tname(sa),
		 (unsigned long long)old->spi_i, (unsigned long long)old->spi_r, (unsigned long long)sa->spi_i,
		 (unsigned long long)sa->spi_r, sa->initiator ? "ours" : "the peer's");
}

/* ---- initiator --------------------------------------------------------------------- */

/* CREATE_CHILD_SA { SA(IKE, SPIi'), Ni, KEi } on sa. */
static int rekey_start(struct ike_sa *sa)
{
	struct ike *ike = sa->ike;
	const struct conf_phase1 *p1 = sa->tun ? sa->tun->p1 : NULL;
	struct ike_enc inner;
	struct prop_buf pb;
	uint8_t pub[IKE_KE_MAX];
	size_t publen = sizeof(pub);

	if (sa->state != SA_ESTABLISHED || sa->rekeyed || !p1)
		return -EPROTO;
	if (sa->req_out || sa->rk_out || sa->ike_rk_out)
		return -EBUSY;
	/* KEi: the group INVALID_KE_PAYLOAD asked for, else the one in use if still configured. */
	uint16_t g = sa->rk_group;
	for (size_t j = 0; j < p1->n_dhgrp && !g; j++)
		if (p1->dhgrp[j] == sa->suite.ke && ike_dh_supported(sa->suite.ke))
			g = sa->suite.ke;
	for (size_t j = 0; j < p1->n_dhgrp && !g; j++)
		if (ike_dh_supported(p1->dhgrp[j]))
			g = p1->dhgrp[j];
	ike_dh_free(sa->rk_dh);
	sa->rk_dh = NULL;
	if (!g || !(sa->rk_dh = ike_dh_new(g)) || ike_dh_public(sa->rk_dh, pub, &publen))
		return -EINVAL;
	if (ike_prop_build_ike(&pb, p1->proposals, p1->n_proposals, p1->dhgrp, p1->n_dhgrp))
		return -EINVAL;
	if (RAND_bytes(sa->rk_ni, sizeof(sa->rk_ni)) != 1)
		return -EIO;
	sa->ike_rk_spi = ike_sa_new_spi(ike);
	for (unsigned i = 0; i < pb.sa.nprops; i++) {
		pb.props[i].spi_size = IKE_SPI_LEN; /* 3.3.1: the new SA's SPI */
		spi_put(pb.props[i].spi, sa->ike_rk_spi);
	}
	ike_inner_begin(ike, &inner);
	ike_enc_sa(&inner, &pb);
	ike_enc_data(&inner, IKE_PL_NONCE, sa->rk_ni, sizeof(sa->rk_ni));
	struct ike_pl ke = { .type = IKE_PL_KE };
	ke.u.ke = (struct ike_ke_pl){ g, pub, publen };
	if (ike_pl_encode(&inner, &ke))
		inner.w.overflow = true;
	sa->ike_rk_out = true;
	sa->peer_rk_spi_i = sa->peer_rk_spi_r = 0;
	sa->peer_rk_nmin_len = 0;
	log_info("%s: rekeying IKE SA %016llx_i %016llx_r (new SPI %016llx, %s)", tname(sa),
		 (unsigned long long)sa->spi_i, (unsigned long long)sa->spi_r, (unsigned long long)sa->ike_rk_spi,
		 ike_ke_name(g) ? ike_ke_name(g) : "?");
	log_debug("%s: CREATE_CHILD_SA { SA(IKE) Ni KEi } -->", tname(sa));
	/* A send failure leaves the request outstanding: it goes again on the next stream (RFC 9329 6.1)
	 * or fails the IKE SA at the response timeout. */
	int err = ike_request(sa, CREATE_CHILD_SA, &inner);
	if (err)
		log_debug("%s: CREATE_CHILD_SA not sent now: %s", tname(sa), strerror(-err));
	return 0;
}

int ike_rekey_ike(struct ike_sa *sa)
{
	if (!sa->ike_rk_out) {
		sa->rk_group = 0;
		sa->rk_ke_retries = 0;
	}
	return rekey_start(sa);
}

static void refused(struct ike_sa *sa, const char *why)
{
	uint64_t wait = lifetime_ms(sa) / 20;
	ike_dh_free(sa->rk_dh);
	sa->rk_dh = NULL;
	log_warn("%s: rekey of IKE SA %016llx_i refused: %s; the old SA stays", tname(sa),
		 (unsigned long long)sa->spi_i, why);
	if (!sa->rekeyed)
		arm_in(sa, wait > IKE_REKEY_REFUSED_MS ? wait : IKE_REKEY_REFUSED_MS);
}

void ike_rekey_response(struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const struct conf_phase1 *p1 = sa->tun ? sa->tun->p1 : NULL;
	const struct ike_pl *sap = ike_msg_find(m, IKE_PL_SA, NULL), *nonce = ike_msg_find(m, IKE_PL_NONCE, NULL);
	const struct ike_pl *ke = ike_msg_find(m, IKE_PL_KE, NULL), *n;
	struct ike_suite s;

	sa->ike_rk_out = false;
	if (!p1)
		return refused(sa, "phase1 gone from the configuration");
	if (!sap && (n = ike_msg_find_notify(m, INVALID_KE_PAYLOAD)) && n->u.n.len == 2 && sa->rk_ke_retries < 1 &&
	    !sa->rekeyed) {
		/* 1.3.2 / 3.10.1: once more with the group the responder wants, if we allow it. */
		uint16_t g = (uint16_t)(n->u.n.data[0] << 8 | n->u.n.data[1]);
		bool ours = false;
		for (size_t j = 0; j < p1->n_dhgrp; j++)
			ours |= p1->dhgrp[j] == g && ike_dh_supported(g);
		if (ours && (!sa->rk_dh || g != ike_dh_group(sa->rk_dh))) {
			log_info("%s: <-- CREATE_CHILD_SA { N(INVALID_KE_PAYLOAD %s) }: rekeying the IKE SA again",
				 tname(sa), ike_ke_name(g) ? ike_ke_name(g) : "?");
			sa->rk_group = g;
			sa->rk_ke_retries++;
			if (!rekey_start(sa))
				return;
		}
	}
	if (!sap) {
		for (n = NULL; (n = ike_msg_find(m, IKE_PL_N, n));)
			if (n->u.n.type < IKE_NOTIFY_STATUS_MIN)
				break;
		return refused(sa, n ? ike_notify_name(n->u.n.type) : "no SA in the answer");
	}
	if (!nonce || !ke || !sa->rk_dh)
		return refused(sa, "answer without Nr or KEr");
	if (ike_prop_accept_ike(&sap->u.sa, p1->proposals, p1->n_proposals, p1->dhgrp, p1->n_dhgrp, &s) ||
	    sap->u.sa.props[0].spi_size != IKE_SPI_LEN || s.ke != ike_dh_group(sa->rk_dh) || ke->u.ke.group != s.ke)
		return refused(sa, "the answer chose a proposal or group we did not offer");
	uint64_t spi_r = spi_get(sap->u.sa.props[0].spi);
	struct secret *gir = NULL;
	if (!spi_r || ike_dh_derive(sa->rk_dh, ke->u.ke.data, ke->u.ke.len, &gir))
		return refused(sa, "SPIr 0 or KEr unusable");
	struct ike_sa *nsa = sa_make(sa, true, sa->ike_rk_spi, spi_r, &s, gir, sa->rk_ni, sizeof(sa->rk_ni),
				     nonce->u.nonce.data, nonce->u.nonce.len);
	secret_free(gir);
	ike_dh_free(sa->rk_dh);
	sa->rk_dh = NULL;
	if (!nsa)
		return refused(sa, "the new SA could not be made");

	struct ike_sa *theirs = sa->peer_rk_nmin_len ? ike_sa_find(ike, sa->peer_rk_spi_i, sa->peer_rk_spi_r, false)
						     : NULL;
	if (theirs) {
		/* 2.8.2: the peer rekeyed this SA too (its SA already holds the CHILD SAs). */
		const uint8_t *mn;
		size_t mlen;
		ike_nonce_min(sa->rk_ni, sizeof(sa->rk_ni), nonce->u.nonce.data, nonce->u.nonce.len, &mn, &mlen);
		went_up(nsa, sa);
		if (ike_nonce_cmp(mn, mlen, sa->peer_rk_nmin, sa->peer_rk_nmin_len) < 0) {
			log_info("%s: simultaneous IKE SA rekey: ours (%016llx_i) lost, deleting it, keeping %016llx_r",
				 tname(sa), (unsigned long long)nsa->spi_i, (unsigned long long)theirs->spi_r);
			ike_rekey_retire(nsa);
			(void)ike_info_delete_ike(nsa, true);
			ike_rekey_retire(sa); /* the peer DELETEs the old SA; if it never does, it goes at the deadline */
			return;
		}
		log_info("%s: simultaneous IKE SA rekey: ours (%016llx_i) won", tname(sa), (unsigned long long)nsa->spi_i);
		take_over(nsa, theirs);
		ike_rekey_retire(theirs); /* the peer DELETEs it */
	} else {
		take_over(nsa, sa);
		went_up(nsa, sa);
	}
	ike_rekey_retire(sa);
	(void)ike_info_delete_ike(sa, true);
}

/* ---- responder --------------------------------------------------------------------- */

static void answer_notify(struct ike_sa *sa, uint16_t type, const void *data, size_t len)
{
	struct ike_enc inner;
	ike_inner_begin(sa->ike, &inner);
	ike_enc_notify(&inner, IKE_PROTO_NONE, NULL, 0, type, data, len);
	(void)ike_answer(sa, CREATE_CHILD_SA, &inner);
}

void ike_rekey_request(struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const struct conf_phase1 *p1 = sa->tun ? sa->tun->p1 : NULL;
	const struct ike_pl *sap = ike_msg_find(m, IKE_PL_SA, NULL), *nonce = ike_msg_find(m, IKE_PL_NONCE, NULL);
	const struct ike_pl *kei = ike_msg_find(m, IKE_PL_KE, NULL);
	const struct ike_sa_pl *peer = &sap->u.sa;
	struct ike_suite s;
	uint8_t num = 0, nr[IKE_NONCE_LEN];

	if (!p1 || !nonce)
		return answer_notify(sa, NO_PROPOSAL_CHOSEN, NULL, 0);
	if (ike_msg_find_notify(m, REKEY_SA)) {
		log_info("%s: CREATE_CHILD_SA with N(REKEY_SA) but no TS refused", tname(sa));
		return answer_notify(sa, INVALID_SYNTAX, NULL, 0);
	}
	/* 3.3.1: a proposal for a new IKE SA carries its 8-octet SPI, never 0. */
	for (unsigned i = 0; i < peer->nprops; i++) {
		const struct ike_proposal *p = &peer->props[i];
		if (p->proto == IKE_PROTO_IKE && (p->spi_size != IKE_SPI_LEN || !spi_get(p->spi))) {
			STAT_INC(ike, invalid_messages);
			log_info("%s: IKE SA rekey with a %u-octet or zero SPI refused", tname(sa), p->spi_size);
			return answer_notify(sa, INVALID_SYNTAX, NULL, 0);
		}
	}
	if (ike_prop_choose_ike(peer, p1->proposals, p1->n_proposals, p1->dhgrp, p1->n_dhgrp,
				kei ? kei->u.ke.group : 0, &s, &num)) {
		log_warn("%s: IKE SA rekey refused: no proposal chosen", tname(sa));
		return answer_notify(sa, NO_PROPOSAL_CHOSEN, NULL, 0);
	}
	if (!kei || kei->u.ke.group != s.ke) {
		/* 1.3.2 / 3.10.1: the group we want, for the initiator's next try. */
		uint8_t g[2] = { (uint8_t)(s.ke >> 8), (uint8_t)s.ke };
		log_info("%s: IKE SA rekey with KEi %s: asking for %s (INVALID_KE_PAYLOAD)", tname(sa),
			 kei && ike_ke_name(kei->u.ke.group) ? ike_ke_name(kei->u.ke.group) : "none",
			 ike_ke_name(s.ke) ? ike_ke_name(s.ke) : "?");
		return answer_notify(sa, INVALID_KE_PAYLOAD, g, sizeof(g));
	}
	if (sa->rk_out || (sa->req_out && !sa->ike_rk_out)) {
		/* 2.25.2: a CHILD SA exchange of ours is under way on this SA; the peer tries again. */
		log_info("%s: IKE SA rekey while a request of ours is out: TEMPORARY_FAILURE", tname(sa));
		return answer_notify(sa, TEMPORARY_FAILURE, NULL, 0);
	}
	const struct ike_proposal *chosen = NULL;
	for (unsigned i = 0; i < peer->nprops && !chosen; i++)
		if (peer->props[i].num == num)
			chosen = &peer->props[i];
	uint64_t spi_i = chosen ? spi_get(chosen->spi) : 0;

	struct ike_dh *dh = NULL;
	struct secret *gir = NULL;
	uint8_t pub[IKE_KE_MAX];
	size_t publen = sizeof(pub);
	if (!spi_i || RAND_bytes(nr, sizeof(nr)) != 1 || !(dh = ike_dh_new(s.ke)) || ike_dh_public(dh, pub, &publen) ||
	    kei->u.ke.len != ike_dh_public_len(s.ke) || ike_dh_derive(dh, kei->u.ke.data, kei->u.ke.len, &gir)) {
		ike_dh_free(dh);
		STAT_INC(ike, invalid_messages);
		log_warn("%s: IKE SA rekey refused: KEi unusable", tname(sa));
		return answer_notify(sa, INVALID_SYNTAX, NULL, 0);
	}
	ike_dh_free(dh);
	uint64_t spi_r = ike_sa_new_spi(ike);
	struct ike_sa *nsa = sa_make(sa, false, spi_i, spi_r, &s, gir, nonce->u.nonce.data, nonce->u.nonce.len, nr,
				     sizeof(nr));
	secret_free(gir);
	if (!nsa) {
		log_warn("%s: IKE SA rekey refused: no room for the new SA", tname(sa));
		return answer_notify(sa, TEMPORARY_FAILURE, NULL, 0);
	}
	struct ike_enc inner;
	struct prop_buf pb;
	ike_prop_answer_ike(&pb, num, &s);
	pb.props[0].spi_size = IKE_SPI_LEN;
	spi_put(pb.props[0].spi, spi_r);
	ike_inner_begin(ike, &inner);
	ike_enc_sa(&inner, &pb);
	ike_enc_data(&inner, IKE_PL_NONCE, nr, sizeof(nr));
	struct ike_pl ke = { .type = IKE_PL_KE };
	ke.u.ke = (struct ike_ke_pl){ s.ke, pub, publen };
	if (ike_pl_encode(&inner, &ke))
		inner.w.overflow = true;
	log_debug("%s: <-- CREATE_CHILD_SA { SA(IKE) Nr KEr }", tname(sa));
	(void)ike_answer(sa, CREATE_CHILD_SA, &inner);

	if (sa->ike_rk_out) {
		/* 2.8.2: we are rekeying it too; decided when our answer comes. */
		const uint8_t *mn;
		size_t mlen;
		ike_nonce_min(nonce->u.nonce.data, nonce->u.nonce.len, nr, sizeof(nr), &mn, &mlen);
		mlen = mlen < sizeof(sa->peer_rk_nmin) ? mlen : sizeof(sa->peer_rk_nmin);
		memcpy(sa->peer_rk_nmin, mn, mlen);
		sa->peer_rk_nmin_len = mlen;
		sa->peer_rk_spi_i = spi_i;
		sa->peer_rk_spi_r = spi_r;
	}
	take_over(nsa, sa);
	went_up(nsa, sa);
	/* The old SA waits for the initiator's DELETE; if our rekey is out too, its answer still comes on it. */
	ike_rekey_retire(sa);
}

/* ---- control ------------------------------------------------------------------------- */

int ike_rekey(struct ike *ike, const char *phase1, const char **err)
{
	struct ike_tunnel *t = ike_tunnel_find(ike, phase1);
	unsigned n = 0, busy = 0;

	if (!t) {
		*err = "no such phase1-interface";
		return -1;
	}
	for (struct ike_sa *sa = ike->sas; sa; sa = sa->next) {
		if (sa->tun != t || sa->state != SA_ESTABLISHED || sa->rekeyed)
			continue;
		int e = ike_rekey_ike(sa);
		n += e == 0;
		busy += e == -EBUSY;
	}
	if (!n) {
		*err = busy ? "an exchange is in flight, try again" : "no established IKE SA";
		return -1;
	}
	return 0;
}
