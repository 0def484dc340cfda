/*
 * IKE_SA_INIT (RFC 7296 1.2, 2.6-2.7, 2.10, 2.14, 2.23), both halves:
 *
 *   HDR, SAi1, KEi, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP)  -->
 *                           <--  HDR, SAr1, KEr, Nr, N(NAT_DETECTION_*)
 *                           <--  HDR, N(INVALID_KE_PAYLOAD) | N(NO_PROPOSAL_CHOSEN)
 *
 * NAT detection hashes use the stream's addresses and TCP ports (RFC 9329 6.5).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ike/proposal.h"
#include "ike/sa.h"
#include "ike/cert.h"
#include "iketcp/stats.h"

/* 2.23: SHA-1(SPIi | SPIr | IP | Port). */
static int natd_hash(uint64_t spi_i, uint64_t spi_r, const struct sockaddr_storage *ss, uint8_t out[20])
{
	uint8_t buf[8 + 8 + 16 + 2];
	size_t n = 16;
	unsigned int olen = 0;

	ike_spi_bytes(spi_i, buf);
	ike_spi_bytes(spi_r, buf + 8);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		memcpy(buf + n, &s4->sin_addr, 4);
		n += 4;
		memcpy(buf + n, &s4->sin_port, 2);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		memcpy(buf + n, &s6->sin6_addr, 16);
		n += 16;
		memcpy(buf + n, &s6->sin6_port, 2);
	} else {
		return -EINVAL;
	}
	n += 2;
	return EVP_Digest(buf, n, out, &olen, EVP_sha1(), NULL) == 1 ? 0 : -EIO;
}

static void enc_natd(struct ike_enc *e, const struct ike_sa *sa, uint64_t spi_r)
{
	uint8_t h[20];
	/* Over UDP our ESP is always UDP-encapsulated (the dataplane is in userspace and has no raw ESP),
	 * so the peer must believe there is a NAT in front of us: a source hash that cannot match does that
	 * (what nattraversal forced means in FortiOS, and strongSwan's encap=yes). */
	if (ike_sa_datagram(sa) && RAND_bytes(h, sizeof(h)) == 1)
		ike_enc_notify(e, IKE_PROTO_NONE, NULL, 0, NAT_DETECTION_SOURCE_IP, h, sizeof(h));
	else if (!natd_hash(sa->spi_i, spi_r, &sa->local, h))
		ike_enc_notify(e, IKE_PROTO_NONE, NULL, 0, NAT_DETECTION_SOURCE_IP, h, sizeof(h));
	if (!natd_hash(sa->spi_i, spi_r, &sa->remote, h))
		ike_enc_notify(e, IKE_PROTO_NONE, NULL, 0, NAT_DETECTION_DESTINATION_IP, h, sizeof(h));
	/* RFC 7427 section 4: the hashes we accept in signatures, in both IKE_SA_INIT messages. */
	ike_cert_enc_hash_algorithms(e);
}

/* Log what the peer's NAT detection says; over TCP it changes nothing else. */
static void check_natd(const struct ike_sa *sa, const struct ike_msg *m, uint64_t spi_r)
{
	uint8_t h[20];
	const struct ike_pl *n = ike_msg_find_notify(m, NAT_DETECTION_DESTINATION_IP);
	if (n && !natd_hash(sa->spi_i, spi_r, &sa->local, h) && (n->u.n.len != 20 || memcmp(h, n->u.n.data, 20)))
		log_info("%s: NAT detected in front of us (RFC 7296 2.23)", sa->tun ? sa->tun->name : "responder");
	bool match = false, any = false;
	for (const struct ike_pl *p = NULL; (p = ike_msg_find(m, IKE_PL_N, p));) {
		if (p->u.n.type != NAT_DETECTION_SOURCE_IP)
			continue;
		any = true;
		if (!natd_hash(sa->spi_i, spi_r, &sa->remote, h) && p->u.n.len == 20 && !memcmp(h, p->u.n.data, 20))
			match = true;
	}
	if (any && !match)
		log_info("%s: NAT detected in front of the peer (RFC 7296 2.23)",
			 sa->tun ? sa->tun->name : "responder");
}

/* IKE_SA_INIT's SA and KE payloads, either way (1.2). */
static int enc_sa_ke(struct ike_enc *e, const struct prop_buf *pb, uint16_t group, const uint8_t *pub,
		     size_t publen)
{
	struct ike_pl pl;

	memset(&pl, 0, sizeof(pl));
	pl.type = IKE_PL_SA;
	pl.u.sa = pb->sa;
	int err = ike_pl_encode(e, &pl);
	memset(&pl, 0, sizeof(pl));
	pl.type = IKE_PL_KE;
	pl.u.ke = (struct ike_ke_pl){ group, pub, publen };
	return err ? err : ike_pl_encode(e, &pl);
}

static void set_addrs(struct ike_sa *sa)
{
	struct ike *ike = sa->ike;
	if (sa->conn && ike->io.addrs)
		ike->io.addrs(ike->io.arg, sa->conn, &sa->local, &sa->remote);
}

static int derive(struct ike_sa *sa, const uint8_t *peer_ke, size_t len)
{
	struct secret *gir = NULL;
	uint8_t spi_i[8], spi_r[8];
	int err = ike_dh_derive(sa->dh, peer_ke, len, &gir);
	if (err)
		return err;
	ike_spi_bytes(sa->spi_i, spi_i);
	ike_spi_bytes(sa->spi_r, spi_r);
	err = ike_sa_keys_initial(&sa->suite, gir, (struct ike_blob){ sa->ni, sa->ni_len },
				  (struct ike_blob){ sa->nr, sa->nr_len }, spi_i, spi_r, &sa->keys);
	secret_free(gir);
	if (!err)
		sa->have_keys = true;
	return err;
}

/* ---- initiator --------------------------------------------------------------------- */

int ike_init_start(struct ike_sa *sa)
{
	struct ike *ike = sa->ike;
	const struct conf_phase1 *p1 = sa->tun->p1;
	struct prop_buf pb;
	uint8_t pub[1024];
	size_t publen = sizeof(pub);
	struct ike_enc e;

	/* A fresh start (or a restart after the stream came back). */
	ike_sa_keys_free(&sa->keys);
	sa->have_keys = false;
	free(sa->init_req);
	free(sa->init_rsp);
	sa->init_req = sa->init_rsp = NULL;
	sa->spi_r = 0;
	sa->my_msg_id = 0;
	sa->peer_msg_id = 0;
	if (!sa->suite.ke) {
		for (size_t i = 0; i < p1->n_dhgrp && !sa->suite.ke; i++)
			if (ike_dh_supported(p1->dhgrp[i]))
				sa->suite.ke = p1->dhgrp[i];
	}
	if (!sa->dh || ike_dh_group(sa->dh) != sa->suite.ke) {
		ike_dh_free(sa->dh);
		sa->dh = sa->suite.ke ? ike_dh_new(sa->suite.ke) : NULL;
	}
	if (!sa->dh || ike_dh_public(sa->dh, pub, &publen)) {
		ike_fail(sa, "no usable dhgrp");
		return -EINVAL;
	}
	if (ike_prop_build_ike(&pb, p1->proposals, p1->n_proposals, p1->dhgrp, p1->n_dhgrp)) {
		ike_fail(sa, "no usable proposal");
		return -EINVAL;
	}
	if (!sa->ni_len) {
		if (RAND_bytes(sa->ni, IKE_NONCE_LEN) != 1) {
			ike_fail(sa, "no randomness");
			return -EIO;
		}
		sa->ni_len = IKE_NONCE_LEN;
	}
	set_addrs(sa);

	struct ike_hdr h = { .spi_i = sa->spi_i, .exchange = IKE_SA_INIT, .flags = IKE_FLAG_I };
	ike_msg_begin(&e, ike->out, sizeof(ike->out), &h);
	if (sa->cookie_len) /* 2.6: the cookie comes first */
		ike_enc_notify(&e, IKE_PROTO_NONE, NULL, 0, COOKIE, sa->cookie, sa->cookie_len);
	int err = enc_sa_ke(&e, &pb, sa->suite.ke, pub, publen);
	ike_enc_data(&e, IKE_PL_NONCE, sa->ni, sa->ni_len);
	enc_natd(&e, sa, 0);
	ssize_t n = ike_msg_end(&e);
	if (err || n < 0) {
		ike_fail(sa, "cannot build IKE_SA_INIT");
		return -ENOSPC;
	}
	sa->init_req = ike_memdup(ike->out, (size_t)n);
	if (!sa->init_req) {
		ike_fail(sa, "out of memory");
		return -ENOMEM;
	}
	sa->init_req_len = (size_t)n;
	sa->state = SA_INIT_SENT;
	sa->req_out = true;
	sa->req_exchange = IKE_SA_INIT;
	sa->my_msg_id = 1;
	ike_sa_arm_timer(sa);
	log_debug("%s: IKE_SA_INIT { SA KE(%s) Ni N(NATD_S) N(NATD_D) } -->", sa->tun->name,
		  ike_ke_name(sa->suite.ke));
	/* A lost stream restarts the exchange from ike_conn_up. */
	(void)ike_send_plain(ike, sa->conn, ike->out, (size_t)n);
	return 0;
}

static bool group_configured(const struct conf_phase1 *p1, uint16_t g)
{
	for (size_t i = 0; i < p1->n_dhgrp; i++)
		if (p1->dhgrp[i] == g)
			return ike_dh_supported(g);
	return false;
}

/* 2.23: IKE_AUTH and ESP go to the peer's ike-natt-port. We move there whether or not a NAT was
 * detected (allowed by 2.23), because ESP can only ride UDP 4500 here. */
static void float_to_natt(struct ike_sa *sa)
{
	struct ike *ike = sa->ike;
	struct sockaddr_storage peer = sa->remote;
	uint16_t port = htons(ike->conf->settings.ike_natt_port);

	if (!ike->io.open_udp || (ike->io.natt && ike->io.natt(ike->io.arg, sa->conn)))
		return;
	if (peer.ss_family == AF_INET)
		((struct sockaddr_in *)&peer)->sin_port = port;
	else
		((struct sockaddr_in6 *)&peer)->sin6_port = port;
	struct tcp_conn *c = ike->io.open_udp(ike->io.arg, (const struct sockaddr *)&peer,
					      peer.ss_family == AF_INET ? sizeof(struct sockaddr_in)
									: sizeof(struct sockaddr_in6), true);
	if (!c) {
		log_warn("%s: cannot open a path to the peer's port %u: staying on %u", sa->tun->name,
			 ntohs(port), ike->conf->settings.ike_port);
		return;
	}
	sa->conn = c;
	set_addrs(sa);
}

void ike_init_response(struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const struct conf_phase1 *p1 = sa->tun->p1;
	const struct ike_pl *n, *sap, *ke, *nonce;
	struct ike_suite s;

	if (ike->loop)
		loop_timer_cancel(ike->loop, &sa->timer);
	ike_auto_transport_answered(sa); /* any answer, even a notify, proves the path */
	sap = ike_msg_find(m, IKE_PL_SA, NULL);
	if (!sap) {
		/* 1.2 / 2.7: a notify-only answer. */
		if ((n = ike_msg_find_notify(m, COOKIE))) {
			ike_cookie_received(sa, n);
			return;
		}
		if ((n = ike_msg_find_notify(m, INVALID_KE_PAYLOAD))) {
			uint16_t g = n->u.n.len == 2 ? (uint16_t)(n->u.n.data[0] << 8 | n->u.n.data[1]) : 0;
			log_info("%s: <-- IKE_SA_INIT { N(INVALID_KE_PAYLOAD %s) }", sa->tun->name,
				 ike_ke_name(g) ? ike_ke_name(g) : "?");
			if (!group_configured(p1, g) || g == sa->suite.ke || ++sa->ke_retries > 2) {
				ike_fail(sa, "INVALID_KE_PAYLOAD asks for a group we did not offer");
				return;
			}
			/* 1.2: retry with the group asked for; SPIi and Ni stay, SPIr is 0 again. */
			sa->suite.ke = g;
			(void)ike_init_start(sa);
			return;
		}
		for (n = NULL; (n = ike_msg_find(m, IKE_PL_N, n));)
			if (n->u.n.type < IKE_NOTIFY_STATUS_MIN)
				break;
		ike_fail(sa, n ? ike_notify_name(n->u.n.type) : "IKE_SA_INIT answer without SA");
		return;
	}
	if (m->hdr.spi_r == 0) {
		ike_fail(sa, "IKE_SA_INIT answer with SPIr 0");
		return;
	}
	if (ike_prop_accept_ike(&sap->u.sa, p1->proposals, p1->n_proposals, p1->dhgrp, p1->n_dhgrp, &s)) {
		ike_fail(sa, "IKE_SA_INIT answer chose a proposal we did not offer");
		return;
	}
	ke = ike_msg_find(m, IKE_PL_KE, NULL);
	nonce = ike_msg_find(m, IKE_PL_NONCE, NULL);
	if (ke->u.ke.group != s.ke || s.ke != sa->suite.ke) {
		ike_fail(sa, "IKE_SA_INIT answer KE group differs from ours");
		return;
	}
	sa->suite = s;
	sa->spi_r = m->hdr.spi_r;
	memcpy(sa->nr, nonce->u.nonce.data, nonce->u.nonce.len);
	sa->nr_len = nonce->u.nonce.len;
	check_natd(sa, m, sa->spi_r);
	sa->init_rsp = ike_memdup(m->buf, m->len);
	if (!sa->init_rsp) {
		ike_fail(sa, "out of memory");
		return;
	}
	sa->init_rsp_len = m->len;
	if (derive(sa, ke->u.ke.data, ke->u.ke.len)) {
		ike_fail(sa, "key exchange failed (bad KEr)");
		return;
	}
	if (ike_sa_datagram(sa))
		float_to_natt(sa);
	(void)ike_auth_start(sa);
}

/* ---- responder --------------------------------------------------------------------- */

/* 1.2, 3.7: <-- [CERTREQ]: the anchors of every phase1 that may authenticate this peer by certificate, so
 * that peers that send their certificate only when asked (strongSwan's default) send it. */
static void enc_certreqs(struct ike *ike, struct ike_enc *e, const struct sockaddr_storage *peer)
{
	char why[160];

	for (size_t i = 0; i < ike->conf->n_phase1; i++) {
		const struct conf_phase1 *p1 = &ike->conf->phase1[i];
		bool seen = false;
		if (p1->authmethod != CONF_AUTH_SIGNATURE || !p1->ca || !ike_p1_candidate(p1, peer))
			continue;
		for (size_t j = 0; j < i && !seen; j++) {
			const struct conf_phase1 *q = &ike->conf->phase1[j];
			seen = q->authmethod == CONF_AUTH_SIGNATURE && q->ca && !strcmp(q->ca, p1->ca) &&
			       ike_p1_candidate(q, peer);
		}
		const struct ike_cred *cred = seen ? NULL : ike_cred_get(p1->certificate, p1->ca, why, sizeof(why));
		if (cred)
			ike_cert_enc_certreq(e, cred);
	}
}

static bool addr_is(const struct sockaddr_storage *ss, const struct conf_phase1 *p1)
{
	if (ss->ss_family == AF_INET && p1->has_remote_gw)
		return !memcmp(&((const struct sockaddr_in *)ss)->sin_addr, &p1->remote_gw, 4);
	if (ss->ss_family == AF_INET6 && p1->has_remote_gw6)
		return !memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, &p1->remote_gw6, 16);
	return false;
}

/* Whether p1 may answer this peer: static entries by address, dynamic ones any. */
bool ike_p1_candidate(const struct conf_phase1 *p1, const struct sockaddr_storage *peer)
{
	return p1->type == CONF_P1_DYNAMIC || addr_is(peer, p1);
}

/*
 * Half-open SAs (IKE_SA_INIT answered, no IKE_AUTH yet) are what anyone who
 * can open a TCP stream makes us keep (2.6): at most IKE_MAX_HALF_OPEN, the
 * oldest going first, so a flood can neither fill the SA table nor starve a
 * real peer, whose IKE_AUTH follows within a round trip. No bound per source
 * address: behind carrier-grade NAT many gateways share one.
 */
static void half_open_make_room(struct ike *ike, const struct sockaddr_storage *peer)
{
	struct ike_sa *oldest = NULL;
	size_t all = 0;
	char a[INET6_ADDRSTRLEN + 8], b[INET6_ADDRSTRLEN + 8];

	for (struct ike_sa *sa = ike->sas; sa; sa = sa->next) {
		if (sa->initiator || sa->state != SA_INIT_DONE)
			continue;
		all++;
		oldest = sa; /* the list is newest first */
	}
	if (all < IKE_MAX_HALF_OPEN)
		return;
	log_rl(&ike->rl_drop, LOG_LVL_WARN, "IKE_SA_INIT from %s: %zu half-open IKE SAs, dropping the oldest (%s)",
	       sockaddr_str(peer, a, sizeof(a)), all, sockaddr_str(&oldest->remote, b, sizeof(b)));
	ike_sa_free(oldest);
}

void ike_init_request(struct ike *ike, struct tcp_conn *c, const struct ike_msg *m)
{
	const struct ike_hdr *h = &m->hdr;
	struct sockaddr_storage local = { 0 }, peer = { 0 };
	char a[INET6_ADDRSTRLEN + 8];
	struct ike_suite s;
	uint8_t num = 0;
	bool chosen = false;

	struct ike_sa *old = ike_sa_find_half_open(ike, h->spi_i, c);
	if (old) {
		/* 2.1: a retransmission gets the same answer; nothing is recomputed. */
		if (h->msg_id == 0 && old->init_rsp && m->len == old->init_req_len &&
		    !memcmp(m->buf, old->init_req, m->len)) {
			(void)ike_send_plain(ike, c, old->init_rsp, old->init_rsp_len);
		} else {
			STAT_INC(ike, invalid_messages);
		}
		return;
	}
	if (h->msg_id != 0 || !ike->conf) {
		STAT_INC(ike, invalid_messages);
		return;
	}
	const struct ike_pl *sap = ike_msg_find(m, IKE_PL_SA, NULL);
	const struct ike_pl *ke = ike_msg_find(m, IKE_PL_KE, NULL);
	const struct ike_pl *nonce = ike_msg_find(m, IKE_PL_NONCE, NULL);
	if (c && ike->io.addrs)
		ike->io.addrs(ike->io.arg, c, &local, &peer);
	if (ike_cookie_gate(ike, c, m, &peer))
		return; /* 2.6: under load, no state before the initiator proves its address */

	/* Static entries for this address first, then dynamic ones, each in our order. */
	for (int pass = 0; pass < 2 && !chosen; pass++) {
		for (size_t i = 0; i < ike->conf->n_phase1 && !chosen; i++) {
			const struct conf_phase1 *p1 = &ike->conf->phase1[i];
			if (pass == 0 ? !(p1->type == CONF_P1_STATIC && addr_is(&peer, p1))
				      : p1->type != CONF_P1_DYNAMIC)
				continue;
			/* `transport` is how we initiate; as responder, ike-tcp-service decides (config.md). */
			chosen = !ike_prop_choose_ike(&sap->u.sa, p1->proposals, p1->n_proposals, p1->dhgrp,
						  p1->n_dhgrp, ke->u.ke.group, &s, &num);
		}
	}
	if (!chosen) {
		log_rl(&ike->rl_auth, LOG_LVL_WARN, "IKE_SA_INIT from %s: no proposal chosen",
		       sockaddr_str(&peer, a, sizeof(a)));
		ike_answer_init_notify(ike, c, h, NO_PROPOSAL_CHOSEN, NULL, 0);
		return;
	}
	if (s.ke != ke->u.ke.group) {
		uint8_t g[2] = { (uint8_t)(s.ke >> 8), (uint8_t)s.ke };
		log_debug("IKE_SA_INIT from %s: KE %s, asking for %s", sockaddr_str(&peer, a, sizeof(a)),
			  ike_ke_name(ke->u.ke.group) ? ike_ke_name(ke->u.ke.group) : "?", ike_ke_name(s.ke));
		ike_answer_init_notify(ike, c, h, INVALID_KE_PAYLOAD, g, sizeof(g));
		return;
	}
	if (ke->u.ke.len != ike_dh_public_len(s.ke)) {
		STAT_INC(ike, invalid_messages);
		ike_answer_init_notify(ike, c, h, INVALID_SYNTAX, NULL, 0);
		return;
	}

	half_open_make_room(ike, &peer);
	struct ike_sa *sa = ike_sa_new(ike, false, c);
	if (!sa) {
		log_rl(&ike->rl_drop, LOG_LVL_WARN, "IKE_SA_INIT from %s: too many IKE SAs",
		       sockaddr_str(&peer, a, sizeof(a)));
		return;
	}
	uint8_t pub[1024];
	size_t publen = sizeof(pub);
	struct prop_buf pb;
	struct ike_enc e;

	sa->spi_i = h->spi_i;
	sa->spi_r = ike_sa_new_spi(ike);
	sa->suite = s;
	sa->local = local;
	sa->remote = peer;
	memcpy(sa->ni, nonce->u.nonce.data, nonce->u.nonce.len);
	sa->ni_len = nonce->u.nonce.len;
	sa->nr_len = IKE_NONCE_LEN;
	sa->dh = ike_dh_new(s.ke);
	sa->init_req = ike_memdup(m->buf, m->len);
	sa->init_req_len = m->len;
	if (!sa->dh || !sa->init_req || RAND_bytes(sa->nr, IKE_NONCE_LEN) != 1 ||
	    ike_dh_public(sa->dh, pub, &publen)) {
		ike_sa_free(sa);
		return;
	}
	if (derive(sa, ke->u.ke.data, ke->u.ke.len)) {
		STAT_INC(ike, invalid_messages);
		log_rl(&ike->rl_drop, LOG_LVL_DEBUG, "IKE_SA_INIT from %s: bad KE data", sockaddr_str(&peer, a, sizeof(a)));
		ike_sa_free(sa);
		return;
	}
	check_natd(sa, m, 0);

	struct ike_hdr rh = { .spi_i = sa->spi_i, .spi_r = sa->spi_r, .exchange = IKE_SA_INIT, .flags = IKE_FLAG_R };
	ike_msg_begin(&e, ike->out, sizeof(ike->out), &rh);
	ike_prop_answer_ike(&pb, num, &s);
	int err = enc_sa_ke(&e, &pb, s.ke, pub, publen);
	ike_enc_data(&e, IKE_PL_NONCE, sa->nr, sa->nr_len);
	enc_certreqs(ike, &e, &peer);
	enc_natd(&e, sa, sa->spi_r);
	ssize_t n = ike_msg_end(&e);
	if (err || n < 0 || !(sa->init_rsp = ike_memdup(ike->out, (size_t)n))) {
		ike_sa_free(sa);
		return;
	}
	sa->init_rsp_len = (size_t)n;
	sa->state = SA_INIT_DONE;
	sa->peer_msg_id = 1;
	ike_sa_arm_timer(sa);
	/* No longer needed: g^ir went into the keys. */
	ike_dh_free(sa->dh);
	sa->dh = NULL;
	(void)ike_send_plain(ike, c, ike->out, (size_t)n);
}
