/*
 * IKE_AUTH with a pre-shared key or certificates (RFC 7427 Digital
 * Signature) and the first CHILD SA (RFC 7296 1.2, 2.9, 2.15, 2.17,
 * 2.21.2), both halves:
 *
 *   HDR, SK { IDi, [CERT+, CERTREQ,] AUTH, SAi2, TSi, TSr }  -->
 *                     <--  HDR, SK { IDr, [CERT+,] AUTH, SAr2, TSi, TSr }
 *                     <--  HDR, SK { IDr, AUTH, N(NO_PROPOSAL_CHOSEN | TS_UNACCEPTABLE) }
 *                     <--  HDR, SK { N(AUTHENTICATION_FAILED) }
 *
 * A CHILD SA that cannot be agreed leaves the IKE SA up (2.21.2). An
 * initiator that rejects the responder's AUTH says so in an INFORMATIONAL
 * { N(AUTHENTICATION_FAILED) } (2.21.2), and the responder drops the SA it
 * had completed. N(INITIAL_CONTACT) (3.10.1) goes in our IKE_AUTH request
 * when no other IKE SA of ours joins the same identities (other_sa);
 * received, it removes every other IKE SA (and its CHILD SAs) with the same
 * peer identity, silently.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ike/cert.h"
#include "ike/proposal.h"
#include "ike/sa.h"
#include "ike/ts.h"
#include "iketcp/stats.h"

static const char key_pad[] = "Key Pad for IKEv2"; /* 2.15, 17 octets without the NUL */

/*
 * 2.15: AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>),
 * SignedOctets = first message | the other side's nonce | prf(SK_p, ID body).
 */
static int psk_auth(const struct ike_prf_alg *prf, const char *psk, const uint8_t *msg, size_t msg_len,
		    const uint8_t *nonce, size_t nonce_len, const struct secret *sk_p, const uint8_t *id_body,
		    size_t id_len, uint8_t out[IKE_PRF_MAX_OUT])
{
	uint8_t macid[IKE_PRF_MAX_OUT], key[IKE_PRF_MAX_OUT];
	struct ike_blob id = { id_body, id_len }, pad = { (const uint8_t *)key_pad, sizeof(key_pad) - 1 };
	int err = -EINVAL;

	if (!psk)
		goto out;
	err = ike_prf(prf, sk_p->p, sk_p->len, &id, 1, macid);
	if (err)
		goto out;
	err = ike_prf(prf, (const uint8_t *)psk, strlen(psk), &pad, 1, key);
	if (err)
		goto out;
	struct ike_blob parts[] = { { msg, msg_len }, { nonce, nonce_len }, { macid, prf->out_len } };
	err = ike_prf(prf, key, prf->out_len, parts, ARRAY_SIZE(parts), out);
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(macid, sizeof(macid));
	return err;
}

/* 2.15 with signatures: sign or verify <SignedOctets> = first message | the other side's nonce | prf(SK_p, ID body). */
static int signed_octets_macid(const struct ike_prf_alg *prf, const struct secret *sk_p, const uint8_t *id_body,
			       size_t id_len, uint8_t macid[IKE_PRF_MAX_OUT])
{
	struct ike_blob id = { id_body, id_len };
	return ike_prf(prf, sk_p->p, sk_p->len, &id, 1, macid);
}

static int sig_auth(const struct ike_cred *c, const struct ike_prf_alg *prf, const uint8_t *msg, size_t msg_len,
		    const uint8_t *nonce, size_t nonce_len, const struct secret *sk_p, const uint8_t *id_body,
		    size_t id_len, uint8_t *out, size_t cap, size_t *len)
{
	uint8_t macid[IKE_PRF_MAX_OUT];
	int err = signed_octets_macid(prf, sk_p, id_body, id_len, macid);
	if (!err) {
		struct ike_blob parts[] = { { msg, msg_len }, { nonce, nonce_len }, { macid, prf->out_len } };
		err = ike_cert_sign(c, IKE_SIG_DEFAULT, parts, ARRAY_SIZE(parts), out, cap, len);
	}
	OPENSSL_cleanse(macid, sizeof(macid));
	return err;
}

/* The peer's CERT chain, its ID against the certificate and peerid, and its AUTH; false with why. */
static bool sig_peer_ok(const struct ike_cred *c, const struct ike_msg *m, const struct ike_pl *id,
			const struct ike_pl *auth, const char *peerid, const struct ike_prf_alg *prf,
			const uint8_t *msg, size_t msg_len, const uint8_t *nonce, size_t nonce_len,
			const struct secret *sk_p, char *why, size_t cap)
{
	uint8_t macid[IKE_PRF_MAX_OUT];
	bool ok = false;

	if (auth->u.auth.method != AUTH_DIGITAL_SIGNATURE) {
		snprintf(why, cap, "peer did not use a digital signature (AUTH method %s)",
			 ike_auth_method_name(auth->u.auth.method));
		return false;
	}
	X509 *leaf = ike_cert_peer_verify(c, m, why, cap);
	if (!leaf)
		return false;
	if (!ike_cert_id_matches(leaf, &id->u.id)) {
		snprintf(why, cap, "ID mismatch (the ID is not in the certificate)");
		goto out;
	}
	if (!ike_cert_peerid_matches(&id->u.id, peerid)) {
		snprintf(why, cap, "ID mismatch (the ID is not peerid)");
		goto out;
	}
	if (signed_octets_macid(prf, sk_p, id->body, id->body_len, macid)) {
		snprintf(why, cap, "cannot compute the signed octets");
		goto out;
	}
	struct ike_blob parts[] = { { msg, msg_len }, { nonce, nonce_len }, { macid, prf->out_len } };
	ok = !ike_cert_verify_auth(leaf, auth->u.auth.data, auth->u.auth.len, parts, ARRAY_SIZE(parts), why, cap);
out:
	OPENSSL_cleanse(macid, sizeof(macid));
	X509_free(leaf);
	return ok;
}

/* Our credentials for p1, or NULL after one error line naming the files. */
static const struct ike_cred *our_cred(const struct conf_phase1 *p1)
{
	char why[IKE_CERT_WHY_MAX + 4096];
	const struct ike_cred *c = ike_cred_get(p1->certificate, p1->ca, why, sizeof(why));
	if (!c)
		log_error("%s: certificate authentication unusable: %s", p1->name, why);
	return c;
}

static size_t p1_index(const struct ike *ike, const struct conf_phase1 *p1)
{
	return (size_t)(p1 - ike->conf->phase1);
}

static void subnet4(struct child_ts *t, const struct conf_subnet4 *s)
{
	memset(t, 0, sizeof(*t));
	t->family = AF_INET;
	t->addr.v4 = s->addr;
	t->prefix_len = s->prefix_len;
}

static void subnet6(struct child_ts *t, const struct conf_subnet6 *s)
{
	memset(t, 0, sizeof(*t));
	t->family = AF_INET6;
	t->addr.v6 = s->addr;
	t->prefix_len = s->prefix_len;
}

/* A phase2's selectors: local (src-subnet) and remote (dst-subnet), IPv4 then IPv6. */
unsigned ike_p2_selectors(const struct conf_phase2 *p2, struct child_ts *local, struct child_ts *remote)
{
	unsigned n = 0;
	subnet4(&local[n], &p2->src_subnet);
	subnet4(&remote[n], &p2->dst_subnet);
	n++;
	if (p2->has_src_subnet6 && p2->has_dst_subnet6) {
		subnet6(&local[n], &p2->src_subnet6);
		subnet6(&remote[n], &p2->dst_subnet6);
		n++;
	}
	return n;
}

static void enc_id(struct ike_enc *e, uint8_t type, const struct ike_id *id)
{
	struct ike_pl pl = { .type = type };
	pl.u.id = (struct ike_id_pl){ id->type, id->data, id->len };
	if (ike_pl_encode(e, &pl))
		e->w.overflow = true; /* reported when the message is finished */
}

static void enc_auth(struct ike_enc *e, uint8_t method, const uint8_t *auth, size_t len)
{
	struct ike_pl pl = { .type = IKE_PL_AUTH };
	pl.u.auth = (struct ike_auth_pl){ method, auth, len };
	if (ike_pl_encode(e, &pl))
		e->w.overflow = true; /* reported when the message is finished */
}

void ike_enc_ts(struct ike_enc *e, uint8_t type, const struct child_ts *ts, unsigned n)
{
	struct ike_ts sel[CHILD_MAX_TS];
	struct ike_pl pl = { .type = type };
	for (unsigned i = 0; i < n; i++)
		ike_ts_from_prefix(&sel[i], &ts[i]);
	pl.u.ts = (struct ike_ts_pl){ (uint8_t)n, sel };
	if (ike_pl_encode(e, &pl))
		e->w.overflow = true; /* reported when the message is finished */
}

void ike_enc_sa(struct ike_enc *e, const struct prop_buf *pb)
{
	struct ike_pl pl = { .type = IKE_PL_SA };
	pl.u.sa = pb->sa;
	if (ike_pl_encode(e, &pl))
		e->w.overflow = true; /* reported when the message is finished */
}

/* The ID payload body as AUTH signs it: type, three reserved octets, data. */
static size_t id_body(const struct ike_id *id, uint8_t *out)
{
	out[0] = id->type;
	out[1] = out[2] = out[3] = 0;
	memcpy(out + 4, id->data, id->len);
	return 4u + id->len;
}

static enum esp_cipher esp_cipher_of(const struct esp_suite *s)
{
	if (s->encr->id == ENCR_CHACHA20_POLY1305)
		return ESP_CHACHA20_POLY1305;
	return s->encr->aead ? ESP_AES_GCM_16 : ESP_AES_CBC_HMAC_SHA2;
}

static void fill_params(struct esp_sa_params *p, const struct ike_sa *sa, const struct conf_phase2 *p2,
			const struct esp_suite *s, bool esn, uint32_t spi, bool outbound, const uint8_t *km,
			size_t km_len)
{
	memset(p, 0, sizeof(*p));
	p->spi = spi;
	p->outbound = outbound;
	p->cipher = esp_cipher_of(s);
	p->enc_key_bits = (uint16_t)(s->encr->key_len * 8);
	p->integ_bits = s->integ ? (uint16_t)(s->integ->key_len * 8) : 0;
	p->keymat = km;
	p->keymat_len = km_len;
	p->esn = esn;
	p->replay = !outbound && p2->replay;
	if (p2->keylife_type != CONF_KEYLIFE_KBS) {
		p->life_secs_hard = p2->keylifeseconds;
		p->life_secs_soft = p2->keylifeseconds - p2->keylifeseconds / 10;
	}
	if (p2->keylife_type != CONF_KEYLIFE_SECONDS) {
		/* The dataplane refuses packets past the hard count; the rekey starts at 90%. */
		p->life_bytes_hard = (uint64_t)p2->keylifekbs * 1024;
		p->life_bytes_soft = p->life_bytes_hard - p->life_bytes_hard / 10;
	}
	p->now_secs = sa->ike->loop ? loop_now_ms(sa->ike->loop) / 1000 : 0;
}

static size_t keymat(uint8_t *out, const struct secret *enc, const struct secret *integ)
{
	size_t n = enc->len;
	memcpy(out, enc->p, enc->len);
	if (integ) {
		memcpy(out + n, integ->p, integ->len);
		n += integ->len;
	}
	return n;
}

/* KEYMAT (2.17) and the hand-off to the dataplane; the initiator's outbound keys are the _i ones. */
int ike_child_install(struct ike_sa *sa, const struct conf_phase2 *p2, const struct esp_suite *s, bool esn,
		      uint32_t spi_in, uint32_t spi_out, const struct child_ts *local, const struct child_ts *remote,
		      unsigned nts, const struct ike_child_nonces *kn)
{
	struct ike *ike = sa->ike;
	struct child_keys k = { 0 };
	uint8_t km_in[160], km_out[160];
	struct child_sa cs = { 0 };
	struct ike_child *ch = ike_sa_child_add(sa);
	int err;

	if (!ch)
		return -ENOSPC;
	/* IKE_AUTH's CHILD SA uses the IKE SA's nonces; CREATE_CHILD_SA its own, and g^ir with PFS (2.17). */
	struct ike_blob ni = kn ? (struct ike_blob){ kn->ni, kn->ni_len } : (struct ike_blob){ sa->ni, sa->ni_len };
	struct ike_blob nr = kn ? (struct ike_blob){ kn->nr, kn->nr_len } : (struct ike_blob){ sa->nr, sa->nr_len };
	err = child_keys_derive(sa->suite.prf, sa->keys.sk_d, s, kn ? kn->gir : NULL, ni, nr, &k);
	if (err)
		return err;
	bool ini = kn ? kn->initiator : sa->initiator; /* of the exchange that made it (2.17) */
	const struct secret *ie = ini ? k.encr_r : k.encr_i, *ii = ini ? k.integ_r : k.integ_i;
	const struct secret *oe = ini ? k.encr_i : k.encr_r, *oi = ini ? k.integ_i : k.integ_r;
	if (ie->len + (ii ? ii->len : 0) > sizeof(km_in)) {
		err = -EINVAL;
		goto out;
	}
	size_t nin = keymat(km_in, ie, ii), nout = keymat(km_out, oe, oi);
	fill_params(&cs.in, sa, p2, s, esn, spi_in, false, km_in, nin);
	fill_params(&cs.out, sa, p2, s, esn, spi_out, true, km_out, nout);
	ch->spi_in = spi_in;
	ch->spi_out = spi_out;
	ch->suite = *s;
	ch->esn = esn;
	snprintf(ch->phase2, sizeof(ch->phase2), "%s", p2->name);
	esp_suite_name(s, ch->proposal, sizeof(ch->proposal));
	cs.phase1 = sa->tun->name;
	cs.phase2 = ch->phase2;
	cs.spi_in = spi_in;
	cs.spi_out = spi_out;
	cs.n_ts = nts;
	memcpy(cs.local_ts, local, nts * sizeof(*local));
	memcpy(cs.remote_ts, remote, nts * sizeof(*remote));
	cs.conn = sa->conn;
	cs.proposal = ch->proposal;
	err = ike->child.install ? ike->child.install(ike->child_arg, &cs) : -ENOSYS;
	if (!err) {
		ch->used = true;
		ch->p2 = (size_t)(p2 - ike->conf->phase2);
		log_info("%s: CHILD SA %s %08x_i %08x_o %s established", sa->tun->name, p2->name, spi_in, spi_out,
			 ch->proposal);
		ike_child_installed(sa, ch, p2);
	} else {
		memset(ch, 0, sizeof(*ch));
		log_error("%s: CHILD SA %s could not be installed: %s", sa->tun->name, p2->name, strerror(-err));
	}
out:
	OPENSSL_cleanse(km_in, sizeof(km_in));
	OPENSSL_cleanse(km_out, sizeof(km_out));
	child_keys_free(&k);
	return err;
}

/*
 * The authenticated peer's identity. peer_id keeps at most IKE_ID_MAX octets (status, logs); a DER DN
 * can be longer, and two peers whose IDs differ only past that are told apart by the digest of the
 * whole ID, which is what INITIAL_CONTACT compares.
 */
static int peer_id_set(struct ike_sa *sa, const struct ike_id_pl *id)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, &id->id_type, 1) &&
		 EVP_DigestUpdate(ctx, id->data, id->len) && EVP_DigestFinal_ex(ctx, sa->peer_id_digest, NULL);

	EVP_MD_CTX_free(ctx);
	sa->peer_id.type = id->id_type;
	sa->peer_id.len = (uint8_t)MIN(id->len, (size_t)IKE_ID_MAX);
	memcpy(sa->peer_id.data, id->data, sa->peer_id.len);
	return ok ? 0 : -EIO;
}

/* 3.10.1: the peer says this is its only IKE SA with us: others it had are stale (it restarted). */
static void initial_contact(struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike *ike = sa->ike;

	if (!ike_msg_find_notify(m, INITIAL_CONTACT))
		return;
	for (struct ike_sa *o = ike->sas, *next; o; o = next) {
		next = o->next;
		if (o == sa || o->tun != sa->tun || (o->state != SA_ESTABLISHED && o->state != SA_DELETING) ||
		    memcmp(o->peer_id_digest, sa->peer_id_digest, sizeof(sa->peer_id_digest)))
			continue;
		log_info("%s: INITIAL_CONTACT: IKE SA %016llx_i %016llx_r with the same peer removed", sa->tun->name,
			 (unsigned long long)o->spi_i, (unsigned long long)o->spi_r);
		if (ike->alive_sa == o)
			ike->alive_sa = NULL;
		ike_sa_free(o);
	}
}

static bool same_str(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/*
 * 3.10.1: INITIAL_CONTACT claims this is the only IKE SA between the two identities, and the peer
 * deletes every other. So not while the tunnel has another SA up, nor while another tunnel with our
 * localid talks to the same peer (in any state: tunnels come up side by side), or we would delete
 * our own live SAs at the peer.
 */
static bool other_sa(const struct ike_sa *sa)
{
	const struct conf_phase1 *p1 = sa->tun->p1;

	for (const struct ike_sa *o = sa->ike->sas; o; o = o->next) {
		if (o == sa || !o->tun || o->state == SA_DELETING)
			continue;
		if (o->tun == sa->tun) {
			if (o->state == SA_ESTABLISHED)
				return true;
			continue;
		}
		if (o->tun->p1 && same_str(o->tun->p1->localid, p1->localid) && sockaddr_same(&o->remote, &sa->remote, false))
			return true;
	}
	return false;
}

/* ---- initiator --------------------------------------------------------------------- */

int ike_auth_start(struct ike_sa *sa)
{
	struct ike *ike = sa->ike;
	const struct conf_phase1 *p1 = sa->tun->p1;
	const struct ike_cred *cred = NULL;
	struct ike_id me;
	uint8_t body[4 + IKE_ID_MAX], auth[IKE_CERT_AUTH_MAX];
	size_t auth_len = sa->suite.prf->out_len;
	struct ike_enc inner;
	struct prop_buf pb;

	if (p1->authmethod == CONF_AUTH_SIGNATURE && !(cred = our_cred(p1))) {
		ike_fail(sa, "certificate unusable");
		return -EINVAL;
	}
	if (cred ? ike_cred_id(cred, p1->localid, &me) : ike_id_from_conf(&me, p1->localid, &sa->local)) {
		ike_fail(sa, "localid unusable");
		return -EINVAL;
	}
	size_t blen = id_body(&me, body);
	if (cred ? sig_auth(cred, sa->suite.prf, sa->init_req, sa->init_req_len, sa->nr, sa->nr_len, sa->keys.sk_pi,
			    body, blen, auth, sizeof(auth), &auth_len)
		 : psk_auth(sa->suite.prf, p1->psksecret, sa->init_req, sa->init_req_len, sa->nr, sa->nr_len,
			    sa->keys.sk_pi, body, blen, auth)) {
		ike_fail(sa, cred ? "cannot sign AUTH" : "cannot compute AUTH (psksecret unset?)");
		return -EINVAL;
	}
	ike_inner_begin(ike, &inner);
	enc_id(&inner, IKE_PL_IDI, &me);
	if (cred) {
		ike_cert_enc_certs(&inner, cred);
		ike_cert_enc_certreq(&inner, cred);
	}
	enc_auth(&inner, cred ? AUTH_DIGITAL_SIGNATURE : AUTH_PSK, auth, auth_len);
	OPENSSL_cleanse(auth, sizeof(auth));
	bool ic = !other_sa(sa);
	if (ic)
		ike_enc_notify(&inner, IKE_PROTO_NONE, NULL, 0, INITIAL_CONTACT, NULL, 0);

	/* The first phase2 of this phase1 rides along (1.2). */
	sa->child_offered = false;
	for (size_t i = 0; i < ike->conf->n_phase2; i++) {
		const struct conf_phase2 *p2 = &ike->conf->phase2[i];
		struct child_ts local[CHILD_MAX_TS], remote[CHILD_MAX_TS];
		if (p2->phase1_index != p1_index(ike, p1))
			continue;
		sa->child_spi = ike_child_new_spi(ike);
		if (ike_prop_build_esp(&pb, p2->proposals, p2->n_proposals, sa->child_spi))
			continue;
		unsigned n = ike_p2_selectors(p2, local, remote);
		ike_enc_sa(&inner, &pb);
		ike_enc_ts(&inner, IKE_PL_TSI, local, n);
		ike_enc_ts(&inner, IKE_PL_TSR, remote, n);
		sa->child_offered = true;
		sa->child_p2 = i;
		break;
	}
	sa->state = SA_AUTH_SENT;
	log_debug("%s: IKE_AUTH { IDi%s AUTH%s%s } -->", sa->tun->name, cred ? " CERT CERTREQ" : "",
		  ic ? " N(INITIAL_CONTACT)" : "", sa->child_offered ? " SA TSi TSr" : "");
	return ike_request(sa, IKE_AUTH, &inner);
}

/* tell: we rejected the responder's AUTH; it has completed the SA and must hear it (2.21.2). */
static void auth_failed_initiator(struct ike_sa *sa, const char *why, bool tell)
{
	struct ike *ike = sa->ike;
	char a[INET6_ADDRSTRLEN + 8];
	STAT_INC(ike, auth_failures);
	log_rl(&ike->rl_auth, LOG_LVL_WARN, "%s: authentication with %s failed: %s", sa->tun->name,
	       sockaddr_str(&sa->remote, a, sizeof(a)), why);
	if (tell) {
		struct ike_enc inner;
		ike_inner_begin(ike, &inner);
		ike_enc_notify(&inner, IKE_PROTO_NONE, NULL, 0, AUTHENTICATION_FAILED, NULL, 0);
		log_debug("%s: INFORMATIONAL { N(AUTHENTICATION_FAILED) } -->", sa->tun->name);
		(void)ike_request(sa, INFORMATIONAL, &inner); /* not waited for */
	}
	ike_sa_free(sa);
}

/* The responder's selectors must lie inside what we offered (2.9). */
unsigned ike_ts_accepted(const struct ike_ts_pl *tsp, const struct child_ts *offered, unsigned noff,
			    struct child_ts *out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < tsp->count && n < CHILD_MAX_TS; i++) {
		struct child_ts t;
		if (!ike_ts_to_prefix(&tsp->ts[i], &t))
			return 0;
		bool ok = false;
		for (unsigned j = 0; j < noff && !ok; j++)
			ok = ike_ts_prefix_within(&t, &offered[j]);
		if (!ok)
			return 0;
		out[n++] = t;
	}
	return n;
}

void ike_auth_response(struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const struct conf_phase1 *p1 = sa->tun->p1;
	const struct ike_pl *idr = ike_msg_find(m, IKE_PL_IDR, NULL), *auth = ike_msg_find(m, IKE_PL_AUTH, NULL);
	const struct ike_pl *n;
	uint8_t expect[IKE_PRF_MAX_OUT];

	if (ike_msg_find_notify(m, AUTHENTICATION_FAILED))
		return auth_failed_initiator(sa, "peer answered AUTHENTICATION_FAILED", false);
	if (!idr || !auth) {
		for (n = NULL; (n = ike_msg_find(m, IKE_PL_N, n));)
			if (n->u.n.type < IKE_NOTIFY_STATUS_MIN)
				break;
		ike_fail(sa, n ? ike_notify_name(n->u.n.type) : "IKE_AUTH answer without IDr/AUTH");
		return;
	}
	if (p1->authmethod == CONF_AUTH_SIGNATURE) {
		char why[IKE_CERT_WHY_MAX];
		const struct ike_cred *cred = our_cred(p1);
		if (!cred) {
			ike_fail(sa, "certificate unusable");
			return;
		}
		if (!sig_peer_ok(cred, m, idr, auth, p1->peerid, sa->suite.prf, sa->init_rsp, sa->init_rsp_len, sa->ni,
				 sa->ni_len, sa->keys.sk_pr, why, sizeof(why)))
			return auth_failed_initiator(sa, why, true);
	} else if (!ike_id_matches(&idr->u.id, p1->peerid)) {
		return auth_failed_initiator(sa, "responder ID does not match peerid", true);
	} else if (auth->u.auth.method != AUTH_PSK) {
		return auth_failed_initiator(sa, "responder did not use a pre-shared key", true);
	} else if (psk_auth(sa->suite.prf, p1->psksecret, sa->init_rsp, sa->init_rsp_len, sa->ni, sa->ni_len,
		     sa->keys.sk_pr, idr->body, idr->body_len, expect) ||
	    auth->u.auth.len != sa->suite.prf->out_len ||
	    CRYPTO_memcmp(expect, auth->u.auth.data, sa->suite.prf->out_len)) {
		OPENSSL_cleanse(expect, sizeof(expect));
		return auth_failed_initiator(sa, "responder AUTH does not verify (pre-shared key mismatch?)", true);
	}
	OPENSSL_cleanse(expect, sizeof(expect));
	if (peer_id_set(sa, &idr->u.id)) {
		ike_fail(sa, "cannot record the responder's ID");
		return;
	}
	ike_sa_established(sa);
	initial_contact(sa, m);

	const struct ike_pl *sap = ike_msg_find(m, IKE_PL_SA, NULL);
	const struct conf_phase2 *p2 = sa->child_offered ? ike_phase2(ike, sa->child_p2) : NULL;
	sa->child_offered = false;
	if (!p2)
		return;
	if (!sap) {
		for (n = NULL; (n = ike_msg_find(m, IKE_PL_N, n));)
			if (n->u.n.type < IKE_NOTIFY_STATUS_MIN)
				break;
		log_warn("%s: IKE SA up without CHILD SA %s: %s", sa->tun->name, p2->name,
			 n ? ike_notify_name(n->u.n.type) : "no SA in the answer");
		return;
	}
	struct esp_suite s;
	bool esn;
	uint32_t spi_out;
	struct child_ts off_l[CHILD_MAX_TS], off_r[CHILD_MAX_TS], loc[CHILD_MAX_TS], rem[CHILD_MAX_TS];
	unsigned noff = ike_p2_selectors(p2, off_l, off_r);
	unsigned nl = ike_ts_accepted(&ike_msg_find(m, IKE_PL_TSI, NULL)->u.ts, off_l, noff, loc);
	unsigned nr = ike_ts_accepted(&ike_msg_find(m, IKE_PL_TSR, NULL)->u.ts, off_r, noff, rem);
	/* The responder made the CHILD SA: one we do not take is DELETEd, or it would keep its half. */
	if (ike_prop_accept_esp(&sap->u.sa, p2->proposals, p2->n_proposals, &s, &esn, &spi_out)) {
		log_warn("%s: CHILD SA %s: the answer chose a proposal we did not offer", sa->tun->name, p2->name);
		ike_child_delete_unused(sa, sa->child_spi);
		return;
	}
	if (!nl || nl != nr) {
		log_warn("%s: CHILD SA %s: the answer's selectors are not inside ours", sa->tun->name, p2->name);
		ike_child_delete_unused(sa, sa->child_spi);
		return;
	}
	if (ike_child_install(sa, p2, &s, esn, sa->child_spi, spi_out, loc, rem, nl, NULL))
		ike_child_delete_unused(sa, sa->child_spi);
}

/* ---- responder --------------------------------------------------------------------- */

/* Whether phase1 entry p1 allows the suite negotiated in IKE_SA_INIT. */
static bool p1_allows(const struct conf_phase1 *p1, const struct ike_suite *s)
{
	bool group = false;
	for (size_t i = 0; i < p1->n_dhgrp; i++)
		group |= p1->dhgrp[i] == s->ke;
	for (size_t i = 0; group && i < p1->n_proposals; i++) {
		struct ike_suite c;
		if (!suite_from_fortios_ike(p1->proposals[i], &c) && c.encr == s->encr && c.prf == s->prf &&
		    c.integ == s->integ)
			return true;
	}
	return false;
}

static void auth_failed_responder(struct ike_sa *sa, const char *why)
{
	struct ike *ike = sa->ike;
	char a[INET6_ADDRSTRLEN + 8];
	struct ike_enc inner;

	STAT_INC(ike, auth_failures);
	log_rl(&ike->rl_auth, LOG_LVL_WARN, "IKE_AUTH from %s: authentication failed: %s",
	       sockaddr_str(&sa->remote, a, sizeof(a)), why);
	ike_inner_begin(ike, &inner);
	ike_enc_notify(&inner, IKE_PROTO_NONE, NULL, 0, AUTHENTICATION_FAILED, NULL, 0);
	(void)ike_answer(sa, IKE_AUTH, &inner);
	ike_sa_free(sa); /* 2.21.2: the half-open SA goes */
}

/* Narrow the initiator's selectors to one of our phase2 entries (2.9). */
unsigned ike_ts_narrow_p2(const struct conf_phase2 *p2, const struct ike_ts_pl *tsi, const struct ike_ts_pl *tsr,
		       struct child_ts *local, struct child_ts *remote)
{
	struct child_ts my_l[CHILD_MAX_TS], my_r[CHILD_MAX_TS];
	unsigned nmine = ike_p2_selectors(p2, my_l, my_r), n = 0;

	for (unsigned f = 0; f < nmine; f++) {
		bool have_r = false, have_l = false;
		/* TSi is the initiator's side: our dst-subnet; TSr ours: src-subnet. */
		for (unsigned i = 0; i < tsi->count && !have_r; i++)
			have_r = ike_ts_narrow(&tsi->ts[i], &my_r[f], &remote[n]);
		for (unsigned i = 0; i < tsr->count && !have_l; i++)
			have_l = ike_ts_narrow(&tsr->ts[i], &my_l[f], &local[n]);
		if (have_r && have_l)
			n++;
	}
	return n;
}

void ike_auth_request(struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const struct ike_pl *idi = ike_msg_find(m, IKE_PL_IDI, NULL), *auth = ike_msg_find(m, IKE_PL_AUTH, NULL);
	const struct conf_phase1 *p1 = NULL;
	const struct ike_cred *cred = NULL;
	uint8_t expect[IKE_PRF_MAX_OUT], body[4 + IKE_ID_MAX], mine[IKE_CERT_AUTH_MAX];
	size_t mine_len = sa->suite.prf->out_len;
	bool sig = auth->u.auth.method == AUTH_DIGITAL_SIGNATURE;
	char idstr[300], why[IKE_CERT_WHY_MAX];

	if (ike->loop)
		loop_timer_cancel(ike->loop, &sa->timer);
	/* Static entries by the peer's address first, then dynamic ones by peerid. */
	for (int pass = 0; pass < 2 && !p1; pass++) {
		for (size_t i = 0; i < ike->conf->n_phase1 && !p1; i++) {
			const struct conf_phase1 *c = &ike->conf->phase1[i];
			if ((pass == 0) != (c->type == CONF_P1_STATIC) || !ike_p1_candidate(c, &sa->remote))
				continue;
			bool id_ok = sig ? c->authmethod == CONF_AUTH_SIGNATURE && ike_cert_peerid_matches(&idi->u.id, c->peerid)
				       : c->authmethod == CONF_AUTH_PSK && ike_id_matches(&idi->u.id, c->peerid);
			if (id_ok && p1_allows(c, &sa->suite) && ike_tunnel_find(ike, c->name))
				p1 = c;
		}
	}
	ike_id_str(idi->u.id.id_type, idi->u.id.data, idi->u.id.len, idstr, sizeof(idstr));
	if (!p1)
		return auth_failed_responder(sa, sig ? "no phase1 entry with authmethod signature matches the peer's ID"
						     : "no phase1 entry matches the peer's ID");
	if (sig) {
		if (!(cred = our_cred(p1)))
			return auth_failed_responder(sa, "our certificate is unusable");
		if (!sig_peer_ok(cred, m, idi, auth, p1->peerid, sa->suite.prf, sa->init_req, sa->init_req_len, sa->nr,
				 sa->nr_len, sa->keys.sk_pi, why, sizeof(why)))
			return auth_failed_responder(sa, why);
		if (!ike_cert_certreq_names_us(cred, m))
			log_debug("%s: the peer's CERTREQ names none of our anchors: sending our certificate anyway",
				  p1->name);
	} else if (auth->u.auth.method != AUTH_PSK) {
		return auth_failed_responder(sa, "peer did not use a pre-shared key");
	} else if (psk_auth(sa->suite.prf, p1->psksecret, sa->init_req, sa->init_req_len, sa->nr, sa->nr_len,
		     sa->keys.sk_pi, idi->body, idi->body_len, expect) ||
	    auth->u.auth.len != sa->suite.prf->out_len ||
	    CRYPTO_memcmp(expect, auth->u.auth.data, sa->suite.prf->out_len)) {
		OPENSSL_cleanse(expect, sizeof(expect));
		return auth_failed_responder(sa, "AUTH does not verify (pre-shared key mismatch?)");
	}
	OPENSSL_cleanse(expect, sizeof(expect));
	sa->tun = ike_tunnel_find(ike, p1->name);
	if (peer_id_set(sa, &idi->u.id)) {
		ike_fail(sa, "cannot record the initiator's ID");
		return;
	}

	struct ike_id me;
	struct ike_enc inner;
	if (cred ? ike_cred_id(cred, p1->localid, &me) : ike_id_from_conf(&me, p1->localid, &sa->local)) {
		ike_fail(sa, "localid unusable");
		return;
	}
	size_t blen = id_body(&me, body);
	if (cred ? sig_auth(cred, sa->suite.prf, sa->init_rsp, sa->init_rsp_len, sa->ni, sa->ni_len, sa->keys.sk_pr,
			    body, blen, mine, sizeof(mine), &mine_len)
		 : psk_auth(sa->suite.prf, p1->psksecret, sa->init_rsp, sa->init_rsp_len, sa->ni, sa->ni_len,
			    sa->keys.sk_pr, body, blen, mine)) {
		ike_fail(sa, "cannot compute AUTH");
		return;
	}
	ike_inner_begin(ike, &inner);
	enc_id(&inner, IKE_PL_IDR, &me);
	if (cred)
		ike_cert_enc_certs(&inner, cred);
	enc_auth(&inner, cred ? AUTH_DIGITAL_SIGNATURE : AUTH_PSK, mine, mine_len);
	OPENSSL_cleanse(mine, sizeof(mine));

	/* The CHILD SA: the first phase2 whose selectors narrow and whose proposals fit. */
	const struct ike_pl *sap = ike_msg_find(m, IKE_PL_SA, NULL);
	const struct conf_phase2 *chosen = NULL;
	uint16_t refuse = 0;
	struct child_ts loc[CHILD_MAX_TS], rem[CHILD_MAX_TS];
	unsigned nts = 0;
	struct esp_suite s;
	bool esn = false;
	uint8_t num = 0;
	uint32_t spi_out = 0;
	if (sap) {
		const struct ike_ts_pl *tsi = &ike_msg_find(m, IKE_PL_TSI, NULL)->u.ts;
		const struct ike_ts_pl *tsr = &ike_msg_find(m, IKE_PL_TSR, NULL)->u.ts;
		refuse = TS_UNACCEPTABLE;
		for (size_t i = 0; i < ike->conf->n_phase2 && !chosen; i++) {
			const struct conf_phase2 *p2 = &ike->conf->phase2[i];
			if (p2->phase1_index != p1_index(ike, p1))
				continue;
			nts = ike_ts_narrow_p2(p2, tsi, tsr, loc, rem);
			if (!nts)
				continue;
			if (ike_prop_choose_esp(&sap->u.sa, p2->proposals, p2->n_proposals, &s, &esn, &num, &spi_out)) {
				refuse = NO_PROPOSAL_CHOSEN;
				continue;
			}
			chosen = p2;
		}
	}
	uint32_t spi_in = 0;
	if (chosen) {
		spi_in = ike_child_new_spi(ike);
		/* The keys need the SA up: derive, install, then answer. */
		if (ike_child_install(sa, chosen, &s, esn, spi_in, spi_out, loc, rem, nts, NULL)) {
			chosen = NULL;
			refuse = NO_PROPOSAL_CHOSEN;
		}
	}
	if (chosen) {
		struct prop_buf pb;
		ike_prop_answer_esp(&pb, num, &s, esn, spi_in);
		ike_enc_sa(&inner, &pb);
		ike_enc_ts(&inner, IKE_PL_TSI, rem, nts);
		ike_enc_ts(&inner, IKE_PL_TSR, loc, nts);
	} else if (refuse) {
		ike_enc_notify(&inner, IKE_PROTO_NONE, NULL, 0, refuse, NULL, 0);
		log_warn("%s: CHILD SA refused to %s: %s", p1->name, idstr, ike_notify_name(refuse));
	}
	log_debug("%s: <-- IKE_AUTH { IDr%s AUTH%s }", p1->name, cred ? " CERT" : "", chosen ? " SA TSi TSr" : refuse ? " N" : "");
	(void)ike_answer(sa, IKE_AUTH, &inner);
	ike_sa_established(sa);
	initial_contact(sa, m);
}
