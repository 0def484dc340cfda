/*
 * CREATE_CHILD_SA for CHILD SAs (RFC 7296 1.3.1, 1.3.3, 2.8, 2.8.1), both
 * halves:
 *
 *   HDR, SK { [N(REKEY_SA)], SA, Ni, TSi, TSr }  -->
 *                                  <--  HDR, SK { SA, Nr, TSi, TSr }
 *                                  <--  HDR, SK { N(NO_PROPOSAL_CHOSEN | TS_UNACCEPTABLE | CHILD_SA_NOT_FOUND) }
 *
 * A rekey installs the new pair first and only then DELETEs the old one;
 * the old pair is removed when that INFORMATIONAL is answered, so both
 * exist for a moment and no packet finds no SA (the dataplane sends on the
 * newest). When both ends rekey the same SA at once (2.8.1), the exchange
 * holding the lowest of the four nonces loses: its initiator deletes the SA
 * it made, the winner deletes the old one.
 *
 * With pfs enable the exchange carries KEi/KEr of a phase2 dhgrp and the
 * proposals a KE transform; KEYMAT then takes the new g^ir (2.17). A group
 * the responder does not want is answered with INVALID_KE_PAYLOAD naming
 * the one it does, and the initiator tries once more with that one.
 *
 * Without TS the exchange rekeys the IKE SA (ike_rekey.c). A CHILD SA
 * exchange while the IKE SA is being rekeyed gets TEMPORARY_FAILURE (2.25.1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "ike/proposal.h"
#include "ike/sa.h"
#include "ike/ts.h"

enum {
	REKEY_RETRY_MS = 1000,      /* a request of ours is out: try again */
	REKEY_REFUSED_MIN_MS = 5000, /* the peer refused: not before this */
	CHILD_KE_MAX = 1024,        /* the largest KE data (MODP 8192) */
};

static const char *tname(const struct ike_sa *sa)
{
	return sa->tun ? sa->tun->name : "?";
}

static void be32_put(uint8_t out[4], uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t in[4])
{
	return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

/* TEST ONLY: IKETCP_TEST_CHILD_LIFETIME_S overrides keylifeseconds for the rekey
 * timer (the configuration's minimum is 120 s); tests/netns/test_rekey.sh uses it. */
static uint64_t lifetime_ms(const struct conf_phase2 *p2)
{
	const char *e = getenv("IKETCP_TEST_CHILD_LIFETIME_S");
	if (e && *e) {
		unsigned long v = strtoul(e, NULL, 10);
		if (v >= 2 && v <= 172800)
			return (uint64_t)v * 1000;
	}
	return (uint64_t)p2->keylifeseconds * 1000;
}

/* 90% of the lifetime minus up to another 10%, so both ends rarely start together. */
static uint64_t rekey_delay_ms(const struct conf_phase2 *p2)
{
	uint64_t life = lifetime_ms(p2), jitter = 0;
	uint32_t r = 0;
	if (life / 10 && RAND_bytes((uint8_t *)&r, sizeof(r)) == 1)
		jitter = r % (life / 10);
	return life - life / 10 - jitter;
}

static struct ike_child *child_by_in(struct ike_sa *sa, uint32_t spi_in)
{
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++)
		if (sa->child[i].used && sa->child[i].spi_in == spi_in)
			return &sa->child[i];
	return NULL;
}

static void rearm(struct ike_sa *sa)
{
	struct ike *ike = sa->ike;
	uint64_t next = 0;

	if (!ike->loop)
		return;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		const struct ike_child *ch = &sa->child[i];
		if (ch->used && ch->rekey == CHILD_LIVE && ch->rekey_ms && (!next || ch->rekey_ms < next))
			next = ch->rekey_ms;
	}
	loop_timer_cancel(ike->loop, &sa->rekey_timer);
	if (next) {
		uint64_t now = loop_now_ms(ike->loop);
		(void)loop_timer_arm(ike->loop, &sa->rekey_timer, next > now ? next - now : 0);
	}
}

void ike_child_installed(struct ike_sa *sa, struct ike_child *ch, const struct conf_phase2 *p2)
{
	if (!sa->ike->loop)
		return;
	/* keylife-type kbs: only the dataplane's byte count starts the rekey (ike_child_soft_life). */
	ch->rekey_ms = p2->keylife_type == CONF_KEYLIFE_KBS ? 0 : loop_now_ms(sa->ike->loop) + rekey_delay_ms(p2);
	rearm(sa);
}

void ike_child_soft_life(struct ike *ike, uint32_t spi_in)
{
	for (struct ike_sa *sa = ike->sas; sa; sa = sa->next) {
		struct ike_child *ch = child_by_in(sa, spi_in);
		if (!ch)
			continue;
		if (ch->rekey != CHILD_LIVE || !ike->loop)
			return; /* its rekey or delete is under way */
		log_info("%s: CHILD SA %08x_i passed its soft lifetime in the dataplane: rekeying now", tname(sa),
			 spi_in);
		ch->rekey_ms = loop_now_ms(ike->loop) | 1; /* 0 would mean no rekey */
		rearm(sa);
		return;
	}
}

static void rekey_fire(struct loop *loop, struct loop_timer *t)
{
	struct ike_sa *sa = container_of(t, struct ike_sa, rekey_timer);
	uint64_t now = loop_now_ms(loop);

	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		struct ike_child *ch = &sa->child[i];
		if (!ch->used || ch->rekey != CHILD_LIVE || !ch->rekey_ms || ch->rekey_ms > now)
			continue;
		int err = ike_child_rekey(sa, ch->spi_in);
		if (err && ch->used && ch->rekey == CHILD_LIVE && ch->rekey_ms)
			ch->rekey_ms = now + (err == -EBUSY ? REKEY_RETRY_MS : REKEY_REFUSED_MIN_MS);
		if (err == -EBUSY || !err)
			break; /* one request at a time (window 1) */
	}
	rearm(sa);
}

void ike_child_timer_init(struct ike_sa *sa)
{
	loop_timer_init(&sa->rekey_timer, rekey_fire);
}

void ike_child_adopt(struct ike_sa *to, struct ike_sa *from)
{
	struct ike *ike = to->ike;
	unsigned j = 0;

	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		struct ike_child *ch = &from->child[i];
		if (!ch->used)
			continue;
		while (j < IKE_MAX_CHILDREN && to->child[j].used)
			j++;
		if (j == IKE_MAX_CHILDREN) {
			/* cannot happen (to has no more than from had), but never leak a dataplane SA */
			if (ike->child.remove && !ike->freeing)
				ike->child.remove(ike->child_arg, ch->spi_in);
		} else {
			to->child[j] = *ch;
		}
		memset(ch, 0, sizeof(*ch));
	}
	if (ike->loop)
		loop_timer_cancel(ike->loop, &from->rekey_timer);
	rearm(to);
}

/* A rekey holds the old and the new CHILD SA at once: a new CHILD SA never takes the last free slot, or
 * none of them could be rekeyed again and all would die at their hard lifetime. */
static bool room_for_new(const struct ike_sa *sa)
{
	unsigned free_slots = 0;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++)
		free_slots += !sa->child[i].used;
	return free_slots >= 2;
}

/* ---- initiator --------------------------------------------------------------------- */

/* CREATE_CHILD_SA { [N(REKEY_SA)], SA, Ni, TSi, TSr } for phase2 entry p2i; ch: the SA it replaces, or NULL. */
static int create_start(struct ike_sa *sa, struct ike_child *ch, size_t p2i)
{
	struct ike *ike = sa->ike;
	const struct conf_phase2 *p2 = ike_phase2(ike, p2i);
	struct child_ts local[CHILD_MAX_TS], remote[CHILD_MAX_TS];
	struct ike_enc inner;
	struct prop_buf pb;
	uint8_t spi[4];

	if (sa->state != SA_ESTABLISHED || sa->req_out || sa->rk_out)
		return -EBUSY;
	if (!p2 || (ch && strcmp(p2->name, ch->phase2))) {
		if (ch)
			ch->rekey_ms = 0; /* its phase2 is gone from the configuration: it lives out its lifetime */
		return -ENOENT;
	}
	if (!ch && !room_for_new(sa))
		return -ENOSPC;
	size_t ndh = p2->pfs ? p2->n_dhgrp : 0;
	uint8_t pub[CHILD_KE_MAX];
	size_t publen = sizeof(pub);
	ike_dh_free(sa->rk_dh);
	sa->rk_dh = NULL;
	if (ndh) {
		/* KEi: the group INVALID_KE_PAYLOAD asked for, else our first usable one. */
		uint16_t g = sa->rk_group;
		for (size_t j = 0; j < ndh && !g; j++)
			if (ike_dh_supported(p2->dhgrp[j]))
				g = p2->dhgrp[j];
		if (!g || !(sa->rk_dh = ike_dh_new(g)) || ike_dh_public(sa->rk_dh, pub, &publen))
			return -EINVAL;
	}
	sa->rk_new_spi = ike_child_new_spi(ike);
	if (ike_prop_build_esp_ke(&pb, p2->proposals, p2->n_proposals, sa->rk_new_spi, p2->dhgrp, ndh))
		return -EINVAL;
	if (RAND_bytes(sa->rk_ni, sizeof(sa->rk_ni)) != 1)
		return -EIO;
	unsigned n = ike_p2_selectors(p2, local, remote);
	ike_inner_begin(ike, &inner);
	if (ch) {
		be32_put(spi, ch->spi_in); /* 1.3.3: the SPI we expect inbound */
		ike_enc_notify(&inner, IKE_PROTO_ESP, spi, 4, REKEY_SA, NULL, 0);
	}
	ike_enc_sa(&inner, &pb);
	ike_enc_data(&inner, IKE_PL_NONCE, sa->rk_ni, sizeof(sa->rk_ni));
	if (sa->rk_dh) {
		struct ike_pl ke = { .type = IKE_PL_KE };
		ke.u.ke = (struct ike_ke_pl){ ike_dh_group(sa->rk_dh), pub, publen };
		if (ike_pl_encode(&inner, &ke))
			inner.w.overflow = true;
	}
	ike_enc_ts(&inner, IKE_PL_TSI, local, n);
	ike_enc_ts(&inner, IKE_PL_TSR, remote, n);
	sa->rk_out = true;
	sa->rk_old_spi = ch ? ch->spi_in : 0;
	sa->rk_p2 = p2i;
	if (ch)
		ch->rekey = CHILD_REKEYING;
	log_debug("%s: CREATE_CHILD_SA { %sSA Ni%s TSi TSr } -->", tname(sa), ch ? "N(REKEY_SA) " : "",
		  sa->rk_dh ? " KEi" : "");
	/* A send failure leaves the request outstanding: it goes again on the next stream (RFC 9329 6.1)
	 * or fails the IKE SA at the response timeout, so the rekey stays in flight either way. */
	int err = ike_request(sa, CREATE_CHILD_SA, &inner);
	if (err)
		log_debug("%s: CREATE_CHILD_SA not sent now: %s", tname(sa), strerror(-err));
	return 0;
}

/* The index of ch's phase2 entry now: a reload that adds or removes an entry before it moves it, and the
 * CHILD SA follows it by name. SIZE_MAX when it is gone. */
static size_t child_p2(struct ike_sa *sa, struct ike_child *ch)
{
	const struct ike *ike = sa->ike;
	const struct conf_phase2 *p2 = ike_phase2(ike, ch->p2);

	if (p2 && !strcmp(p2->name, ch->phase2))
		return ch->p2;
	for (size_t i = 0; ike->conf && i < ike->conf->n_phase2; i++)
		if (!strcmp(ike->conf->phase2[i].name, ch->phase2))
			return ch->p2 = i;
	return SIZE_MAX;
}

int ike_child_rekey(struct ike_sa *sa, uint32_t spi_in)
{
	struct ike_child *ch = child_by_in(sa, spi_in);
	if (!ch || ch->rekey != CHILD_LIVE)
		return -ENOENT;
	if (!sa->rk_out) {
		sa->rk_group = 0;
		sa->rk_ke_retries = 0;
	}
	return create_start(sa, ch, child_p2(sa, ch));
}

int ike_child_create(struct ike_sa *sa, size_t p2)
{
	if (!sa->rk_out) {
		sa->rk_group = 0;
		sa->rk_ke_retries = 0;
	}
	return create_start(sa, NULL, p2);
}

/* INFORMATIONAL { D(ESP, spi_in) } (1.4.1): spi_in is what we expect inbound, the peer's outbound. */
static void send_delete(struct ike_sa *sa, uint32_t spi_in)
{
	struct ike_enc inner;
	struct ike_pl pl = { .type = IKE_PL_D };
	uint8_t spi[4];

	be32_put(spi, spi_in);
	pl.u.d = (struct ike_delete_pl){ IKE_PROTO_ESP, 4, 1, spi };
	ike_inner_begin(sa->ike, &inner);
	if (ike_pl_encode(&inner, &pl))
		inner.w.overflow = true;
	log_debug("%s: INFORMATIONAL { D(ESP %08x) } -->", tname(sa), spi_in);
	(void)ike_request(sa, INFORMATIONAL, &inner);
}

/* The peer removes its half, we ours when it answers. */
static void delete_child(struct ike_sa *sa, struct ike_child *ch)
{
	ch->rekey = CHILD_RETIRING;
	ch->rekey_ms = 0;
	send_delete(sa, ch->spi_in);
}

void ike_child_delete_unused(struct ike_sa *sa, uint32_t spi_in)
{
	log_info("%s: deleting the peer's CHILD SA for our %08x_i, which we did not take", tname(sa), spi_in);
	send_delete(sa, spi_in);
}

static void refused(struct ike_sa *sa, struct ike_child *old, const char *why)
{
	const struct conf_phase2 *p2 = ike_phase2(sa->ike, sa->rk_p2);
	if (sa->rk_old_spi)
		log_warn("%s: rekey of CHILD SA %08x_i refused: %s; the old SA stays", tname(sa), sa->rk_old_spi, why);
	else
		log_warn("%s: new CHILD SA refused: %s", tname(sa), why);
	if (!old || !sa->ike->loop)
		return;
	old->rekey = CHILD_LIVE;
	uint64_t wait = p2 ? lifetime_ms(p2) / 20 : 0;
	old->rekey_ms = loop_now_ms(sa->ike->loop) + (wait > REKEY_REFUSED_MIN_MS ? wait : REKEY_REFUSED_MIN_MS);
	rearm(sa);
}

/* Refused after the peer made the SA we asked for (its answer carried SA): it must not keep it. */
static void refused_made(struct ike_sa *sa, struct ike_child *old, const char *why)
{
	refused(sa, old, why);
	ike_child_delete_unused(sa, sa->rk_new_spi);
}

void ike_child_response(struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const struct ike_pl *sap = ike_msg_find(m, IKE_PL_SA, NULL), *nonce = ike_msg_find(m, IKE_PL_NONCE, NULL);
	const struct ike_pl *tsi = ike_msg_find(m, IKE_PL_TSI, NULL), *tsr = ike_msg_find(m, IKE_PL_TSR, NULL);
	const struct conf_phase2 *p2 = ike_phase2(ike, sa->rk_p2);
	struct ike_child *old;

	if (sa->ike_rk_out)
		return ike_rekey_response(sa, m);
	if (!sa->rk_out)
		return;
	sa->rk_out = false;
	old = child_by_in(sa, sa->rk_old_spi);
	const struct ike_pl *ike_n = ike_msg_find_notify(m, INVALID_KE_PAYLOAD);
	if (!sap && ike_n && p2 && p2->pfs && ike_n->u.n.len == 2 && sa->rk_ke_retries < 1) {
		/* 1.3.1 / 3.10.1: once more with the group the responder wants, if we allow it. */
		uint16_t g = (uint16_t)(ike_n->u.n.data[0] << 8 | ike_n->u.n.data[1]);
		bool ours = false;
		for (size_t j = 0; j < p2->n_dhgrp; j++)
			ours |= p2->dhgrp[j] == g && ike_dh_supported(g);
		if (ours && (!sa->rk_dh || g != ike_dh_group(sa->rk_dh))) {
			log_info("%s: <-- CREATE_CHILD_SA { N(INVALID_KE_PAYLOAD %s) }: trying again", tname(sa),
				 ike_ke_name(g) ? ike_ke_name(g) : "?");
			sa->rk_group = g;
			sa->rk_ke_retries++;
			if (old)
				old->rekey = CHILD_LIVE;
			if (!create_start(sa, old, sa->rk_p2))
				return;
		}
	}
	if (!sap) {
		const struct ike_pl *n;
		for (n = NULL; (n = ike_msg_find(m, IKE_PL_N, n));)
			if (n->u.n.type < IKE_NOTIFY_STATUS_MIN)
				break;
		return refused(sa, old, n ? ike_notify_name(n->u.n.type) : "no SA in the answer");
	}
	if (!p2 || !nonce || !tsi || !tsr)
		return refused_made(sa, old, "answer without Nr or TS, or phase2 gone");
	struct esp_suite s;
	bool esn;
	uint32_t spi_out;
	struct child_ts off_l[CHILD_MAX_TS], off_r[CHILD_MAX_TS], loc[CHILD_MAX_TS], rem[CHILD_MAX_TS];
	unsigned noff = ike_p2_selectors(p2, off_l, off_r);
	unsigned nl = ike_ts_accepted(&tsi->u.ts, off_l, noff, loc);
	unsigned nr = ike_ts_accepted(&tsr->u.ts, off_r, noff, rem);
	uint16_t group = 0;
	if (ike_prop_accept_esp_ke(&sap->u.sa, p2->proposals, p2->n_proposals, p2->dhgrp, sa->rk_dh ? p2->n_dhgrp : 0,
				   &s, &esn, &spi_out, &group) ||
	    (sa->rk_dh && group != ike_dh_group(sa->rk_dh)))
		return refused_made(sa, old, "the answer chose a proposal we did not offer");
	if (!nl || nl != nr)
		return refused_made(sa, old, "the answer's selectors are not inside ours");
	struct secret *gir = NULL;
	if (sa->rk_dh) {
		const struct ike_pl *ke = ike_msg_find(m, IKE_PL_KE, NULL);
		if (!ke || ke->u.ke.group != group || ike_dh_derive(sa->rk_dh, ke->u.ke.data, ke->u.ke.len, &gir))
			return refused_made(sa, old, "KEr missing or unusable (PFS)");
	}
	struct ike_child_nonces kn = { sa->rk_ni, nonce->u.nonce.data, sizeof(sa->rk_ni), nonce->u.nonce.len, gir,
				       true };
	int ierr = ike_child_install(sa, p2, &s, esn, sa->rk_new_spi, spi_out, loc, rem, nl, &kn);
	secret_free(gir);
	ike_dh_free(sa->rk_dh);
	sa->rk_dh = NULL;
	if (ierr)
		return refused_made(sa, old, "the new SA could not be installed");
	if (!old) {
		if (sa->rk_old_spi)
			log_info("%s: CHILD SA %s %08x_i rekeyed to %08x_i %08x_o (the old one is already gone)",
				 tname(sa), p2->name, sa->rk_old_spi, sa->rk_new_spi, spi_out);
		return;
	}
	struct ike_child *mine = child_by_in(sa, sa->rk_new_spi);
	if (old->peer_new_spi && child_by_in(sa, old->peer_new_spi) && mine) {
		/* 2.8.1: both rekeyed it. The lowest of the four nonces loses. */
		const uint8_t *mn;
		size_t mlen;
		ike_nonce_min(sa->rk_ni, sizeof(sa->rk_ni), nonce->u.nonce.data, nonce->u.nonce.len, &mn, &mlen);
		if (ike_nonce_cmp(mn, mlen, old->peer_nmin, old->peer_nmin_len) < 0) {
			log_info("%s: simultaneous rekey of CHILD SA %s %08x_i: ours lost, deleting %08x_i, keeping %08x_i",
				 tname(sa), p2->name, old->spi_in, mine->spi_in, old->peer_new_spi);
			old->rekey = CHILD_REPLACED; /* the winner deletes it */
			old->rekey_ms = 0;
			delete_child(sa, mine);
			return;
		}
		log_info("%s: simultaneous rekey of CHILD SA %s %08x_i: ours won, keeping %08x_i", tname(sa), p2->name,
			 old->spi_in, mine->spi_in);
	}
	log_info("%s: CHILD SA %s rekeyed: %08x_i %08x_o -> %08x_i %08x_o", tname(sa), p2->name, old->spi_in,
		 old->spi_out, sa->rk_new_spi, spi_out);
	delete_child(sa, old);
}

void ike_child_info_response(struct ike_sa *sa)
{
	struct ike *ike = sa->ike;

	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		struct ike_child *ch = &sa->child[i];
		if (!ch->used || ch->rekey != CHILD_RETIRING)
			continue;
		log_info("%s: CHILD SA %s %08x_i deleted", tname(sa), ch->phase2, ch->spi_in);
		if (ike->child.remove)
			ike->child.remove(ike->child_arg, ch->spi_in);
		memset(ch, 0, sizeof(*ch));
	}
}

/* ---- responder --------------------------------------------------------------------- */

static void answer_notify(struct ike_sa *sa, uint8_t proto, const uint8_t *spi, uint8_t spi_len, uint16_t type)
{
	struct ike_enc inner;
	ike_inner_begin(sa->ike, &inner);
	ike_enc_notify(&inner, proto, spi, spi_len, type, NULL, 0);
	(void)ike_answer(sa, CREATE_CHILD_SA, &inner);
}

void ike_child_request(struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const struct ike_pl *rk = ike_msg_find_notify(m, REKEY_SA);
	const struct ike_pl *sap = ike_msg_find(m, IKE_PL_SA, NULL), *nonce = ike_msg_find(m, IKE_PL_NONCE, NULL);
	const struct ike_pl *tsi = ike_msg_find(m, IKE_PL_TSI, NULL), *tsr = ike_msg_find(m, IKE_PL_TSR, NULL);
	struct ike_child *old = NULL;
	const struct conf_phase2 *chosen = NULL;
	uint16_t refuse = TS_UNACCEPTABLE;
	struct child_ts loc[CHILD_MAX_TS], rem[CHILD_MAX_TS];
	unsigned nts = 0;
	struct esp_suite s;
	bool esn = false;
	uint8_t num = 0, nr[IKE_NONCE_LEN];
	uint32_t spi_out = 0;

	if (sa->rekeyed) {
		/* 2.25: this IKE SA has been replaced; the peer goes on with the new one. */
		log_info("%s: CREATE_CHILD_SA on a rekeyed IKE SA: TEMPORARY_FAILURE", tname(sa));
		return answer_notify(sa, IKE_PROTO_NONE, NULL, 0, TEMPORARY_FAILURE);
	}
	if (sa->tun && ike->conf && sap && nonce && !tsi && !tsr)
		return ike_rekey_request(sa, m); /* 1.3.2: no TS, an IKE SA rekey */
	if (!sa->tun || !ike->conf || !sap || !nonce || !tsi || !tsr)
		return answer_notify(sa, IKE_PROTO_NONE, NULL, 0, NO_ADDITIONAL_SAS);
	if (sa->ike_rk_out) {
		/* 2.25.1: we are rekeying the IKE SA; the peer tries again on the new one. */
		log_info("%s: CREATE_CHILD_SA while we rekey the IKE SA: TEMPORARY_FAILURE", tname(sa));
		return answer_notify(sa, IKE_PROTO_NONE, NULL, 0, TEMPORARY_FAILURE);
	}
	if (rk) {
		uint32_t spi = rk->u.n.spi_size == 4 ? be32_get(rk->u.n.spi) : 0;
		for (unsigned i = 0; i < IKE_MAX_CHILDREN && !old; i++) {
			struct ike_child *ch = &sa->child[i];
			if (ch->used && ch->spi_out == spi && rk->u.n.proto == IKE_PROTO_ESP &&
			    (ch->rekey == CHILD_LIVE || ch->rekey == CHILD_REKEYING))
				old = ch;
		}
		if (!old) {
			log_info("%s: peer rekeys CHILD SA %08x_o we do not have: CHILD_SA_NOT_FOUND", tname(sa), spi);
			return answer_notify(sa, rk->u.n.proto, rk->u.n.spi, rk->u.n.spi_size, CHILD_SA_NOT_FOUND);
		}
	} else if (!room_for_new(sa)) {
		log_warn("%s: CREATE_CHILD_SA refused: %u CHILD SAs already (NO_ADDITIONAL_SAS)", tname(sa),
			 IKE_MAX_CHILDREN - 1);
		return answer_notify(sa, IKE_PROTO_NONE, NULL, 0, NO_ADDITIONAL_SAS);
	}
	const struct ike_pl *kei = ike_msg_find(m, IKE_PL_KE, NULL);
	uint16_t group = 0;
	size_t p1i = (size_t)(sa->tun->p1 - ike->conf->phase1);
	for (size_t i = 0; i < ike->conf->n_phase2 && !chosen; i++) {
		const struct conf_phase2 *p2 = &ike->conf->phase2[i];
		if (p2->phase1_index != p1i || (old && strcmp(p2->name, old->phase2)))
			continue;
		nts = ike_ts_narrow_p2(p2, &tsi->u.ts, &tsr->u.ts, loc, rem);
		if (!nts)
			continue;
		/* pfs enable: a proposal with one of our groups and KEi; disable: neither. */
		if (ike_prop_choose_esp_ke(&sap->u.sa, p2->proposals, p2->n_proposals, p2->dhgrp,
					   p2->pfs ? p2->n_dhgrp : 0, kei ? kei->u.ke.group : 0, &s, &esn, &num,
					   &spi_out, &group) ||
		    (!p2->pfs && kei)) {
			refuse = NO_PROPOSAL_CHOSEN;
			continue;
		}
		chosen = p2;
	}
	if (!chosen) {
		log_warn("%s: CREATE_CHILD_SA%s refused: %s", tname(sa), old ? " (rekey)" : "", ike_notify_name(refuse));
		return answer_notify(sa, IKE_PROTO_NONE, NULL, 0, refuse);
	}
	if (group && (!kei || kei->u.ke.group != group)) {
		/* 1.3.1 / 3.10.1: the group we want, for the initiator's next try. */
		uint8_t g[2] = { (uint8_t)(group >> 8), (uint8_t)group };
		struct ike_enc inner;
		log_info("%s: CREATE_CHILD_SA with KEi %s: asking for %s (INVALID_KE_PAYLOAD)", tname(sa),
			 kei && ike_ke_name(kei->u.ke.group) ? ike_ke_name(kei->u.ke.group) : "none",
			 ike_ke_name(group) ? ike_ke_name(group) : "?");
		ike_inner_begin(ike, &inner);
		ike_enc_notify(&inner, IKE_PROTO_NONE, NULL, 0, INVALID_KE_PAYLOAD, g, sizeof(g));
		(void)ike_answer(sa, CREATE_CHILD_SA, &inner);
		return;
	}
	if (RAND_bytes(nr, sizeof(nr)) != 1)
		return answer_notify(sa, IKE_PROTO_NONE, NULL, 0, NO_PROPOSAL_CHOSEN);
	/* PFS: KEr and g^ir (2.17). */
	struct ike_dh *dh = NULL;
	struct secret *gir = NULL;
	uint8_t pub[CHILD_KE_MAX];
	size_t publen = sizeof(pub);
	if (group && (!(dh = ike_dh_new(group)) || ike_dh_public(dh, pub, &publen) ||
		      ike_dh_derive(dh, kei->u.ke.data, kei->u.ke.len, &gir))) {
		ike_dh_free(dh);
		log_warn("%s: CREATE_CHILD_SA refused: KEi unusable", tname(sa));
		return answer_notify(sa, IKE_PROTO_NONE, NULL, 0, NO_PROPOSAL_CHOSEN);
	}
	ike_dh_free(dh);
	uint32_t spi_in = ike_child_new_spi(ike);
	uint32_t old_in = old ? old->spi_in : 0; /* old may move if the table is rearranged: keep the SPI */
	struct ike_child_nonces kn = { nonce->u.nonce.data, nr, nonce->u.nonce.len, sizeof(nr), gir, false };
	int ierr = ike_child_install(sa, chosen, &s, esn, spi_in, spi_out, loc, rem, nts, &kn);
	secret_free(gir);
	if (ierr) {
		log_warn("%s: CREATE_CHILD_SA refused: the new SA could not be installed", tname(sa));
		return answer_notify(sa, IKE_PROTO_NONE, NULL, 0, NO_ADDITIONAL_SAS);
	}
	struct ike_enc inner;
	struct prop_buf pb;
	ike_prop_answer_esp_ke(&pb, num, &s, esn, spi_in, group);
	ike_inner_begin(ike, &inner);
	ike_enc_sa(&inner, &pb);
	ike_enc_data(&inner, IKE_PL_NONCE, nr, sizeof(nr));
	if (group) {
		struct ike_pl ke = { .type = IKE_PL_KE };
		ke.u.ke = (struct ike_ke_pl){ group, pub, publen };
		if (ike_pl_encode(&inner, &ke))
			inner.w.overflow = true;
	}
	ike_enc_ts(&inner, IKE_PL_TSI, rem, nts);
	ike_enc_ts(&inner, IKE_PL_TSR, loc, nts);
	log_debug("%s: <-- CREATE_CHILD_SA { SA Nr TSi TSr }", tname(sa));
	(void)ike_answer(sa, CREATE_CHILD_SA, &inner);
	old = old_in ? child_by_in(sa, old_in) : NULL;
	if (!old)
		return;
	log_info("%s: peer rekeyed CHILD SA %s: %08x_i %08x_o -> %08x_i %08x_o", tname(sa), chosen->name, old->spi_in,
		 old->spi_out, spi_in, spi_out);
	if (old->rekey == CHILD_REKEYING && sa->rk_out && sa->rk_old_spi == old->spi_in) {
		/* 2.8.1: we are rekeying it too; decided when our answer comes. */
		const uint8_t *mn;
		size_t mlen;
		ike_nonce_min(nonce->u.nonce.data, nonce->u.nonce.len, nr, sizeof(nr), &mn, &mlen);
		old->peer_new_spi = spi_in;
		mlen = mlen < sizeof(old->peer_nmin) ? mlen : sizeof(old->peer_nmin); /* 16..256 by the rules */
		memcpy(old->peer_nmin, mn, mlen);
		old->peer_nmin_len = mlen;
		return;
	}
	old->rekey = CHILD_REPLACED; /* removed when the peer's DELETE comes */
	old->rekey_ms = 0;
	rearm(sa);
}
