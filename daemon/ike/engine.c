/*
 * The IKEv2 engine: one entry for every message (structure, SA lookup,
 * message IDs, SK), dispatch to the exchange files, and the daemon-facing
 * calls (configure, up, down, shutdown, stream events, status).
 *
 * Over TCP nothing is retransmitted (RFC 9329 6.2): a request without an
 * answer in IKE_RESPONSE_TIMEOUT_MS fails its SA. Over UDP (2.1) requests are
 * retransmitted with a doubling wait (sa.c). A retransmitted request of the
 * peer's is answered from the cached response, never processed twice. Over
 * UDP an SA follows its peer to the address an authenticated message came
 * from (2.23: the move to port 4500, NAT rebinding).
 *
 * A lost stream is not a lost SA (RFC 9329 6.1): the originator's transport
 * reconnects and ike_conn_up sends the outstanding request again (the one
 * resend) or an empty INFORMATIONAL; the responder moves the SA and its CHILD
 * SAs to the stream an authenticated message came on (rebind, after the ICV).
 * A message only the peer can have made now moves it: a new request, or an
 * answer. A request answered before proves nothing, since anyone who saw it
 * pass can replay it into a stream of his own (no TLS, or TLS to the peer's
 * end only); it moves the SA only when ours is gone, otherwise our request
 * goes on the new stream too and the peer's answer there moves it
 * (probe_stream). A failed SA of a static auto-negotiate tunnel is initiated
 * again after 5 s, doubling to 60 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ike/cert.h"
#include "ike/sa.h"
#include "iketcp/addr.h"
#include "iketcp/json.h"
#include "iketcp/stats.h"

const struct conf_phase2 *ike_phase2(const struct ike *ike, size_t i)
{
	return ike->conf && i < ike->conf->n_phase2 ? &ike->conf->phase2[i] : NULL;
}

/* ---- sending ------------------------------------------------------------------- */

static int send_bytes(struct ike *ike, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	if (!c || !ike->io.send)
		return -ENOTCONN;
	int err = ike->io.send(ike->io.arg, c, msg, len);
	if (!err)
		STAT_INC(ike, messages_out);
	return err;
}

int ike_send_plain(struct ike *ike, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	return send_bytes(ike, c, msg, len);
}

struct seal_ctx {
	const struct ike_suite *suite;
	const struct secret *enc, *integ;
};

static size_t seal_len(void *ctx, size_t plain_len)
{
	struct seal_ctx *s = ctx;
	return plain_len + sk_overhead(s->suite, plain_len);
}

static ssize_t seal(void *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *plain, size_t plain_len,
		    uint8_t *out, size_t out_cap)
{
	struct seal_ctx *s = ctx;
	return sk_seal(s->suite, s->enc, s->integ, aad, aad_len, plain, plain_len, out, out_cap);
}

void ike_inner_begin(struct ike *ike, struct ike_enc *inner)
{
	ike_enc_init(inner, ike->inner, sizeof(ike->inner));
}

/* Build the sealed message in ike->out; its length or -errno. */
static ssize_t build_sealed(struct ike_sa *sa, uint8_t exchange, bool response, uint32_t msg_id,
			    const struct ike_enc *inner)
{
	struct ike *ike = sa->ike;
	struct seal_ctx ctx = { .suite = &sa->suite };
	struct ike_sealer sealer = { seal_len, seal, &ctx };
	struct ike_hdr h = {
		.spi_i = sa->spi_i,
		.spi_r = sa->spi_r,
		.exchange = exchange,
		.flags = (uint8_t)((sa->initiator ? IKE_FLAG_I : 0) | (response ? IKE_FLAG_R : 0)),
		.msg_id = msg_id,
	};
	struct ike_enc e;

	if (!sa->have_keys)
		return -EPROTO;
	ike_sa_keys_dir(&sa->keys, sa->initiator, true, &ctx.enc, &ctx.integ);
	ike_msg_begin(&e, ike->out, sizeof(ike->out), &h);
	ssize_t n = ike_msg_end_sealed(&e, inner, &sealer);
	if (n < 0)
		log_error("cannot build %s: %s", ike_exchange_name(exchange), strerror((int)-n));
	return n;
}

int ike_send_sealed(struct ike_sa *sa, uint8_t exchange, bool response, uint32_t msg_id,
		    const struct ike_enc *inner)
{
	struct ike *ike = sa->ike;
	ssize_t n = build_sealed(sa, exchange, response, msg_id, inner);

	if (n < 0)
		return (int)n;
	if (response) {
		uint8_t *copy = ike_memdup(ike->out, (size_t)n);
		if (copy) {
			free(sa->last_rsp);
			sa->last_rsp = copy;
			sa->last_rsp_len = (size_t)n;
		}
	}
	return send_bytes(ike, sa->conn, ike->out, (size_t)n);
}

int ike_request(struct ike_sa *sa, uint8_t exchange, const struct ike_enc *inner)
{
	struct ike *ike = sa->ike;
	uint32_t id = sa->my_msg_id++;
	sa->req_out = true;
	sa->req_exchange = exchange;
	sa->req_sent_ms = ike->loop ? loop_now_ms(ike->loop) : 0;
	ike_sa_arm_timer(sa);
	ssize_t n = build_sealed(sa, exchange, false, id, inner);
	if (n < 0)
		return (int)n;
	/* Kept for a new stream (RFC 9329 6.1): the one case where a request is sent twice. */
	if (sa->last_req)
		OPENSSL_cleanse(sa->last_req, sa->last_req_len);
	free(sa->last_req);
	sa->last_req = ike_memdup(ike->out, (size_t)n);
	sa->last_req_len = sa->last_req ? (size_t)n : 0;
	return send_bytes(ike, sa->conn, ike->out, (size_t)n);
}

void ike_resend_request(struct ike_sa *sa)
{
	if (!sa->req_out || !sa->last_req)
		return;
	log_debug("%s: %s request #%u sent again on the new stream", sa->tun ? sa->tun->name : "?",
		  ike_exchange_name(sa->req_exchange), sa->my_msg_id - 1);
	(void)send_bytes(sa->ike, sa->conn, sa->last_req, sa->last_req_len);
}

int ike_answer(struct ike_sa *sa, uint8_t exchange, const struct ike_enc *inner)
{
	uint32_t id = sa->peer_msg_id++;
	return ike_send_sealed(sa, exchange, true, id, inner);
}

void ike_fail(struct ike_sa *sa, const char *why)
{
	char a[INET6_ADDRSTRLEN + 8];
	struct ike_tunnel *t = sa->state == SA_DELETING ? NULL : sa->tun;
	log_warn("%s: IKE SA %016llx_i with %s failed: %s", sa->tun ? sa->tun->name : "(responder)",
		 (unsigned long long)sa->spi_i, sockaddr_str(&sa->remote, a, sizeof(a)), why);
	ike_sa_free(sa);
	if (t)
		ike_tunnel_retry(t, why);
}

/* ---- input --------------------------------------------------------------------- */

static void drop(struct ike *ike, const char *why, const struct ike_hdr *h)
{
	STAT_INC(ike, invalid_messages);
	log_rl(&ike->rl_drop, LOG_LVL_DEBUG, "IKE message dropped (%s, %s #%u): %s",
	       h ? ike_exchange_name(h->exchange) : "?", h && ike_hdr_is_response(h) ? "response" : "request",
	       h ? h->msg_id : 0, why);
}

/* An unauthenticated IKE_SA_INIT error answer (2.21.1): SPIr stays 0. */
void ike_answer_init_notify(struct ike *ike, struct tcp_conn *c, const struct ike_hdr *req, uint16_t type,
			    const void *data, size_t len)
{
	struct ike_hdr h = {
		.spi_i = req->spi_i,
		.exchange = IKE_SA_INIT,
		.flags = IKE_FLAG_R,
		.msg_id = req->msg_id,
	};
	struct ike_enc e;

	ike_msg_begin(&e, ike->out, sizeof(ike->out), &h);
	ike_enc_notify(&e, IKE_PROTO_NONE, NULL, 0, type, data, len);
	ssize_t n = ike_msg_end(&e);
	if (n > 0)
		(void)send_bytes(ike, c, ike->out, (size_t)n);
}

static void answer_sealed_notify(struct ike_sa *sa, uint8_t exchange, uint16_t type, const void *data,
				 size_t len)
{
	struct ike_enc inner;
	ike_inner_begin(sa->ike, &inner);
	ike_enc_notify(&inner, IKE_PROTO_NONE, NULL, 0, type, data, len);
	(void)ike_answer(sa, exchange, &inner);
}

static void input_init(struct ike *ike, struct tcp_conn *c, struct ike_msg *m)
{
	const struct ike_hdr *h = &m->hdr;

	if (!ike_hdr_is_response(h)) {
		if (!ike_hdr_is_initiator(h) || h->spi_r != 0)
			return drop(ike, "IKE_SA_INIT request with SPIr or without the I flag", h);
		ike_init_request(ike, c, m);
		return;
	}
	for (struct ike_sa *sa = ike->sas; sa; sa = sa->next) {
		if (sa->initiator && sa->spi_i == h->spi_i && sa->state == SA_INIT_SENT && sa->conn == c) {
			if (h->msg_id != 0 || ike_hdr_is_initiator(h))
				return drop(ike, "IKE_SA_INIT response with a wrong message ID or flags", h);
			sa->req_out = false;
			ike_init_response(sa, m);
			return;
		}
	}
	STAT_INC(ike, unknown_spi);
}

/* Authenticate and decrypt SK, then check the inner payloads. 0: go on;
 * -EKEYREJECTED: not authentic, dropped; -EBADMSG: authentic but malformed,
 * a request was answered with a notify. */
static int open_sk(struct ike_sa *sa, struct ike_msg *m, bool retransmit)
{
	struct ike *ike = sa->ike;
	const struct secret *enc, *integ;
	struct ike_rule_error rerr;
	bool request = !ike_hdr_is_response(&m->hdr);

	if (!m->sk.present || m->sk.fragment) {
		drop(ike, m->sk.fragment ? "IKEv2 fragments are not supported" : "no SK payload", &m->hdr);
		return -EBADMSG;
	}
	ike_sa_keys_dir(&sa->keys, sa->initiator, false, &enc, &integ);
	ssize_t n = sk_open(&sa->suite, enc, integ, m->sk.aad, m->sk.aad_len, m->sk.sealed, m->sk.sealed_len,
			    ike->plain, sizeof(ike->plain));
	if (n < 0) {
		/* 2.21: ICV failures are dropped silently (counted); nothing unauthenticated
		 * may change the SA, so a malformed SK counts the same. */
		drop(ike, n == -EKEYREJECTED ? "ICV mismatch" : "SK payload malformed", &m->hdr);
		return -EKEYREJECTED;
	}
	ike_dpd_heard(sa);
	if (retransmit)
		return 0;
	if (ike_msg_parse_inner(m, m->sk.inner_first, ike->plain, (size_t)n)) {
		if (request && m->err.notify == UNSUPPORTED_CRITICAL_PAYLOAD) {
			uint8_t t = m->err.payload;
			STAT_INC(ike, invalid_messages);
			answer_sealed_notify(sa, m->hdr.exchange, UNSUPPORTED_CRITICAL_PAYLOAD, &t, 1);
		} else if (request) {
			STAT_INC(ike, invalid_messages);
			answer_sealed_notify(sa, m->hdr.exchange, INVALID_SYNTAX, NULL, 0);
		} else {
			drop(ike, m->err.why, &m->hdr);
		}
		return -EBADMSG;
	}
	if (ike_rules_check(m, true, &rerr) || ike_msg_check_meaning(m, true, &rerr)) {
		char why[96];
		snprintf(why, sizeof(why), "%s %s%s%s", ike_rule_why_name(rerr.why), ike_payload_name(rerr.payload),
			 rerr.detail ? ": " : "", rerr.detail ? rerr.detail : "");
		if (request) {
			STAT_INC(ike, invalid_messages);
			answer_sealed_notify(sa, m->hdr.exchange, INVALID_SYNTAX, NULL, 0);
		} else {
			drop(ike, why, &m->hdr);
		}
		return -EBADMSG;
	}
	return 0;
}

/* RFC 9329 6.1: the originator reconnected and this authenticated message
 * (ICV checked) came on the new stream: the SA and its CHILD SAs move there. */
static void rebind(struct ike_sa *sa, struct tcp_conn *c)
{
	struct ike *ike = sa->ike;
	char a[INET6_ADDRSTRLEN + 8];

	if (sa->held && sa->conn && ike->io.hold)
		ike->io.hold(ike->io.arg, sa->conn, false); /* the old stream may now idle out */
	sa->held = false;
	sa->conn = c;
	if (ike->alive_sa == sa)
		ike->alive_sa = NULL;
	if (ike->io.addrs)
		ike->io.addrs(ike->io.arg, c, &sa->local, &sa->remote);
	for (unsigned j = 0; j < IKE_MAX_CHILDREN; j++)
		if (sa->child[j].used && ike->child.update_conn)
			ike->child.update_conn(ike->child_arg, sa->child[j].spi_in, c);
	if (ike->io.hold) {
		ike->io.hold(ike->io.arg, c, true);
		sa->held = true;
	}
	if (ike->io.datagram && ike->io.datagram(ike->io.arg, c))
		log_info("%s: IKE SA %016llx_i %016llx_r now with %s (RFC 7296 2.23)",
			 sa->tun ? sa->tun->name : "responder", (unsigned long long)sa->spi_i,
			 (unsigned long long)sa->spi_r, sockaddr_str(&sa->remote, a, sizeof(a)));
	else
		log_info("%s: IKE SA %016llx_i %016llx_r moved to a new stream from %s (RFC 9329 6.1)",
			 sa->tun ? sa->tun->name : "?", (unsigned long long)sa->spi_i,
			 (unsigned long long)sa->spi_r, sockaddr_str(&sa->remote, a, sizeof(a)));
	ike_resend_request(sa);
}

/*
 * A request we answered before came again on another stream (RFC 9329 6.1):
 * the originator reconnected after a cut we did not see, or someone replays a
 * captured message into a stream of his own. Only the peer can answer our
 * request, so it goes on that stream too (a new liveness check when none is
 * out) and an answer there moves the SA (input_response). A stream we know is
 * gone has nothing to keep: the SA moves at once.
 */
static void probe_stream(struct ike_sa *sa, struct tcp_conn *c)
{
	struct ike *ike = sa->ike;

	if (!sa->conn) {
		rebind(sa, c);
		return;
	}
	if (sa->state != SA_ESTABLISHED)
		return;
	log_debug("%s: IKE SA %016llx_i %016llx_r: an answered request came again on another stream; asking there",
		  sa->tun ? sa->tun->name : "responder", (unsigned long long)sa->spi_i, (unsigned long long)sa->spi_r);
	if (!sa->req_out) {
		struct ike_enc inner;
		ike_inner_begin(ike, &inner);
		(void)ike_request(sa, INFORMATIONAL, &inner); /* on our stream, and kept in last_req */
	}
	if (sa->req_out && sa->last_req)
		(void)send_bytes(ike, c, sa->last_req, sa->last_req_len);
}

static void input_request(struct ike_sa *sa, struct tcp_conn *c, struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const struct ike_hdr *h = &m->hdr;
	bool retransmit = sa->last_rsp && h->msg_id + 1 == sa->peer_msg_id;

	if (!retransmit && h->msg_id != sa->peer_msg_id)
		return drop(ike, "unexpected message ID", h);
	if (open_sk(sa, m, retransmit))
		goto maybe_fail;
	/* 2.23: only a new request moves the SA; an old one replayed from elsewhere would otherwise take
	 * it (and its ESP) anywhere. */
	if (sa->conn != c && !retransmit)
		rebind(sa, c);
	if (retransmit) {
		/* 2.1: answer a retransmission from the cache, never process it again; to where it came from. */
		(void)send_bytes(ike, c, sa->last_rsp, sa->last_rsp_len);
		if (sa->conn != c && !(ike->io.datagram && ike->io.datagram(ike->io.arg, c)))
			probe_stream(sa, c);
		return;
	}
	switch (h->exchange) {
	case IKE_AUTH:
		if (sa->initiator || sa->state != SA_INIT_DONE)
			return drop(ike, "IKE_AUTH request not expected now", h);
		ike_auth_request(sa, m);
		return;
	case INFORMATIONAL:
		if (sa->state != SA_ESTABLISHED && sa->state != SA_DELETING)
			return drop(ike, "INFORMATIONAL before the SA is up", h);
		ike_info_request(sa, m);
		return;
	case CREATE_CHILD_SA:
		/* CHILD SA rekeys and additional CHILD SAs (ike_child.c). */
		if (sa->state != SA_ESTABLISHED)
			return drop(ike, "CREATE_CHILD_SA before the SA is up", h);
		ike_child_request(sa, m);
		return;
	default:
		return drop(ike, "unexpected exchange", h);
	}
maybe_fail:
	/* A half-open SA whose IKE_AUTH could not be read is not kept (2.21.2). */
	if (sa->state == SA_INIT_DONE && h->exchange == IKE_AUTH && sa->peer_msg_id > 1)
		ike_fail(sa, "malformed IKE_AUTH request");
}

static void input_response(struct ike_sa *sa, struct tcp_conn *c, struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const struct ike_hdr *h = &m->hdr;

	if (!sa->req_out || h->msg_id + 1 != sa->my_msg_id || h->exchange != sa->req_exchange)
		return drop(ike, "response we did not ask for", h);
	int err = open_sk(sa, m, false);
	if (err) {
		/* Authenticated but malformed: the exchange cannot complete. */
		if (err != -EKEYREJECTED && h->exchange == IKE_AUTH)
			ike_fail(sa, "malformed IKE_AUTH response");
		return;
	}
	sa->req_out = false;
	if (sa->conn != c)
		rebind(sa, c);
	if (ike->loop)
		loop_timer_cancel(ike->loop, &sa->timer);
	switch (h->exchange) {
	case IKE_AUTH:
		ike_auth_response(sa, m);
		return;
	case INFORMATIONAL:
		ike_child_info_response(sa); /* CHILD SAs we DELETEd after a rekey go now */
		ike_info_response(sa, m);
		return;
	case CREATE_CHILD_SA:
		ike_child_response(sa, m);
		return;
	default:
		return;
	}
}

void ike_input(struct ike *ike, struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	struct ike_msg *m = &ike->msg;
	struct ike_rule_error rerr;

	STAT_INC(ike, messages_in);
	if (ike_msg_parse(m, buf, len)) {
		/* 2.5 / 3.2: only an IKE_SA_INIT request is answered unauthenticated. */
		if (m->err.notify == UNSUPPORTED_CRITICAL_PAYLOAD && len >= IKE_HDR_LEN &&
		    m->hdr.exchange == IKE_SA_INIT && !ike_hdr_is_response(&m->hdr) && m->hdr.spi_r == 0) {
			uint8_t t = m->err.payload;
			ike_answer_init_notify(ike, c, &m->hdr, UNSUPPORTED_CRITICAL_PAYLOAD, &t, 1);
		}
		/* 2.5: a higher major version SHOULD hear ours, in the header of an INVALID_MAJOR_VERSION (3.10.1). */
		if (m->err.notify == INVALID_MAJOR_VERSION && m->hdr.exchange == IKE_SA_INIT &&
		    !ike_hdr_is_response(&m->hdr) && m->hdr.spi_r == 0)
			ike_answer_init_notify(ike, c, &m->hdr, INVALID_MAJOR_VERSION, NULL, 0);
		return drop(ike, m->err.why ? m->err.why : "malformed", NULL);
	}
	if (ike_rules_check(m, false, &rerr) || ike_msg_check_meaning(m, false, &rerr))
		return drop(ike, ike_rule_why_name(rerr.why), &m->hdr);
	if (m->hdr.exchange == IKE_SA_INIT)
		return input_init(ike, c, m);

	/* The I flag says who sent it: the original initiator sets it (3.1). */
	bool we_initiated = !ike_hdr_is_initiator(&m->hdr);
	struct ike_sa *sa = ike_sa_find(ike, m->hdr.spi_i, m->hdr.spi_r, we_initiated);
	if (!sa || !sa->have_keys) {
		STAT_INC(ike, unknown_spi);
		log_rl(&ike->rl_drop, LOG_LVL_DEBUG, "%s for unknown IKE SA %016llx_i %016llx_r dropped",
		       ike_exchange_name(m->hdr.exchange), (unsigned long long)m->hdr.spi_i,
		       (unsigned long long)m->hdr.spi_r);
		return;
	}
	/* RFC 9329 6.1: only the responder follows the originator to a new stream,
	 * only for an established SA, and only once the ICV checked (rebind()).
	 * 2.23: over UDP either side follows the peer's address, also once the ICV checked. */
	bool path_move = ike->io.datagram && ike->io.datagram(ike->io.arg, c) && sa->conn &&
			 ike->io.datagram(ike->io.arg, sa->conn);
	if (sa->conn != c && !path_move &&
	    (sa->initiator || (sa->state != SA_ESTABLISHED && sa->state != SA_DELETING)))
		return drop(ike, "IKE SA is bound to another stream", &m->hdr);
	if (ike_hdr_is_response(&m->hdr))
		input_response(sa, c, m);
	else
		input_request(sa, c, m);
}

/* ---- configuration and control ------------------------------------------------- */

struct ike *ike_new(struct loop *loop, const struct ike_io *io, const struct child_sa_ops *child,
		    void *child_arg)
{
	struct ike *ike = calloc(1, sizeof(*ike));
	if (!ike)
		return NULL;
	ike->loop = loop;
	if (io)
		ike->io = *io;
	if (child)
		ike->child = *child;
	ike->child_arg = child_arg;
	ike->cookie_threshold = IKE_COOKIE_THRESHOLD;
	return ike;
}

void ike_free(struct ike *ike)
{
	if (!ike)
		return;
	ike->freeing = true;
	while (ike->sas)
		ike_sa_free(ike->sas);
	for (size_t i = 0; i < ike->ntun; i++) {
		ike_tunnel_retry_cancel(ike->tun[i]);
		if (ike->loop)
			loop_timer_cancel(ike->loop, &ike->tun[i]->auto_timer);
		free(ike->tun[i]);
	}
	ike_cookie_wipe(&ike->cookie);
	free(ike->tun);
	OPENSSL_cleanse(ike->plain, sizeof(ike->plain));
	OPENSSL_cleanse(ike->inner, sizeof(ike->inner));
	free(ike);
}

static size_t sas_of(struct ike *ike, const struct ike_tunnel *t, struct ike_sa **first)
{
	size_t n = 0;
	*first = NULL;
	for (struct ike_sa *sa = ike->sas; sa; sa = sa->next) {
		if (sa->tun != t || sa->rekeyed)
			continue;
		if (!*first || (sa->state == SA_ESTABLISHED && (*first)->state != SA_ESTABLISHED))
			*first = sa;
		n++;
	}
	return n;
}

static int peer_addr(const struct conf_phase1 *p1, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (p1->has_remote_gw) {
		struct sockaddr_in *s4 = (void *)ss;
		s4->sin_family = AF_INET;
		s4->sin_addr = p1->remote_gw;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (p1->has_remote_gw6) {
		struct sockaddr_in6 *s6 = (void *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = p1->remote_gw6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

static int initiate(struct ike *ike, struct ike_tunnel *t, const char **err);

/* Over UDP: IKE_SA_INIT to the peer's ike-port now (paths are always up). */
static int initiate_udp(struct ike *ike, struct ike_tunnel *t, const char **err)
{
	const struct conf_phase1 *p1 = t->p1;
	struct ike_sa *sa;
	struct sockaddr_storage ss;
	socklen_t sl;

	if (peer_addr(p1, ike->conf->settings.ike_port, &ss, &sl)) {
		*err = "no remote-gw to send to";
		return -EINVAL;
	}
	if (sas_of(ike, t, &sa))
		return 0;
	struct tcp_conn *c = ike->io.open_udp ? ike->io.open_udp(ike->io.arg, (struct sockaddr *)&ss, sl, false)
					     : NULL;
	if (!c) {
		*err = "no UDP path to the peer (are the UDP ports open?)";
		return -EIO;
	}
	if (!(sa = ike_sa_new(ike, true, c))) {
		*err = "out of memory or too many IKE SAs";
		return -ENOMEM;
	}
	sa->tun = t;
	sa->spi_i = ike_sa_new_spi(ike);
	sa->remote = ss;
	if (p1->transport == CONF_TRANSPORT_AUTO) {
		if (!loop_timer_armed(&t->auto_timer) && ike->loop)
			(void)loop_timer_arm(ike->loop, &t->auto_timer, (uint64_t)p1->auto_transport_threshold * 1000);
		snprintf(t->transport_why, sizeof(t->transport_why), "auto: trying UDP first");
	}
	log_info("%s: initiating IKE SA %016llx_i over UDP", t->name, (unsigned long long)sa->spi_i);
	return ike_init_start(sa);
}

/* transport auto (RFC 9329 5.1): UDP got no answer in auto-transport-threshold seconds, so a new
 * IKE_SA_INIT, with a new SPI and new NAT detection, goes over TCP. */
static void auto_transport_fire(struct loop *loop, struct loop_timer *timer)
{
	struct ike_tunnel *t = container_of(timer, struct ike_tunnel, auto_timer);
	struct ike *ike = t->ike;
	const char *err = NULL;
	(void)loop;

	if (!t->present || !t->p1 || t->p1->transport != CONF_TRANSPORT_AUTO || t->auto_tcp)
		return;
	for (struct ike_sa *sa = ike->sas; sa; sa = sa->next)
		if (sa->tun == t && sa->initiator && sa->state != SA_INIT_SENT && sa->state != SA_CONNECTING)
			return; /* UDP answered after all */
	for (struct ike_sa *sa = ike->sas, *next; sa; sa = next) {
		next = sa->next;
		if (sa->tun == t && sa->initiator)
			ike_sa_free(sa);
	}
	t->auto_tcp = true;
	snprintf(t->transport_why, sizeof(t->transport_why), "auto: no answer over UDP in %u s, using TCP",
		 t->p1->auto_transport_threshold);
	log_warn("%s: transport %s (RFC 9329 5.1)", t->name, t->transport_why);
	ike_tunnel_retry_cancel(t);
	if (initiate(ike, t, &err))
		ike_tunnel_retry(t, err ? err : "cannot initiate over TCP");
}

void ike_auto_transport_answered(struct ike_sa *sa)
{
	struct ike_tunnel *t = sa->tun;

	if (!t || !t->p1 || t->p1->transport != CONF_TRANSPORT_AUTO || !ike_sa_datagram(sa))
		return;
	if (sa->ike->loop)
		loop_timer_cancel(sa->ike->loop, &t->auto_timer);
	snprintf(t->transport_why, sizeof(t->transport_why), "auto: UDP answered");
}

/* Start an IKE SA as initiator for a static tunnel (no-op when one exists). */
static int initiate(struct ike *ike, struct ike_tunnel *t, const char **err)
{
	const struct conf_phase1 *p1 = t->p1;
	struct ike_sa *sa;
	struct sockaddr_storage ss;
	socklen_t sl;

	if (p1->type != CONF_P1_STATIC) {
		*err = "a dynamic phase1 only answers";
		return -EINVAL;
	}
	if (p1->transport == CONF_TRANSPORT_UDP || (p1->transport == CONF_TRANSPORT_AUTO && !t->auto_tcp)) {
		int rc = initiate_udp(ike, t, err);
		if (rc != -EIO || p1->transport != CONF_TRANSPORT_AUTO)
			return rc;
		t->auto_tcp = true; /* no UDP path at all: straight to TCP */
		snprintf(t->transport_why, sizeof(t->transport_why), "auto: %s, using TCP", *err);
		log_warn("%s: transport %s", t->name, t->transport_why);
	}
	if (peer_addr(p1, ike->conf->settings.ike_tcp_port, &ss, &sl)) {
		*err = "no remote-gw to connect to";
		return -EINVAL;
	}
	if (sas_of(ike, t, &sa))
		return 0;
	sa = ike_sa_new(ike, true, NULL);
	if (!sa) {
		*err = "out of memory or too many IKE SAs";
		return -ENOMEM;
	}
	sa->tun = t;
	sa->state = SA_CONNECTING;
	sa->spi_i = ike_sa_new_spi(ike);
	if (!t->conn && ike->io.connect) {
		t->tls = ike->conf->settings.ike_tls_service;
		t->conn = ike->io.connect(ike->io.arg, (const struct sockaddr *)&ss, sl, t->tls);
		t->conn_up = false;
	}
	if (!t->conn) {
		ike_sa_free(sa);
		*err = "cannot open a stream to the peer";
		return -EIO;
	}
	sa->conn = t->conn;
	sa->remote = ss;
	log_info("%s: initiating IKE SA %016llx_i", t->name, (unsigned long long)sa->spi_i);
	if (t->conn_up)
		return ike_init_start(sa);
	return 0;
}

static void tunnel_retry_fire(struct loop *loop, struct loop_timer *timer)
{
	struct ike_tunnel *t = container_of(timer, struct ike_tunnel, retry);
	const char *err = NULL;
	(void)loop;

	if (!t->present || !t->p1)
		return;
	if (initiate(t->ike, t, &err))
		ike_tunnel_retry(t, err ? err : "cannot initiate");
}

void ike_tunnel_retry(struct ike_tunnel *t, const char *why)
{
	struct ike *ike = t->ike;

	if (!ike || !ike->loop || ike->freeing || !t->present || !t->p1 || t->p1->type != CONF_P1_STATIC ||
	    !t->p1->auto_negotiate || loop_timer_armed(&t->retry))
		return;
	if (!t->backoff_ms)
		t->backoff_ms = IKE_RETRY_MIN_MS;
	log_info("%s: %s: initiating again in %u s", t->name, why, t->backoff_ms / 1000);
	(void)loop_timer_arm(ike->loop, &t->retry, t->backoff_ms);
	t->backoff_ms = t->backoff_ms * 2 > IKE_RETRY_MAX_MS ? IKE_RETRY_MAX_MS : t->backoff_ms * 2;
}

void ike_tunnel_retry_cancel(struct ike_tunnel *t)
{
	if (t->ike && t->ike->loop)
		loop_timer_cancel(t->ike->loop, &t->retry);
}

int ike_configure(struct ike *ike, const struct config *conf)
{
	const char *err;

	ike->conf = conf;
	for (size_t i = 0; i < ike->ntun; i++) {
		ike->tun[i]->present = false;
		ike->tun[i]->p1 = NULL;
	}
	for (size_t i = 0; i < conf->n_phase1; i++) {
		const struct conf_phase1 *p1 = &conf->phase1[i];
		struct ike_tunnel *t = NULL;
		for (size_t j = 0; j < ike->ntun && !t; j++)
			if (!strcmp(ike->tun[j]->name, p1->name))
				t = ike->tun[j];
		if (!t) {
			struct ike_tunnel **nt = realloc(ike->tun, (ike->ntun + 1) * sizeof(*nt));
			if (!nt)
				return -ENOMEM;
			ike->tun = nt;
			t = calloc(1, sizeof(*t));
			if (!t)
				return -ENOMEM;
			snprintf(t->name, sizeof(t->name), "%s", p1->name);
			t->ike = ike;
			loop_timer_init(&t->retry, tunnel_retry_fire);
			loop_timer_init(&t->auto_timer, auto_transport_fire);
			ike->tun[ike->ntun++] = t;
		}
		t->present = true;
		t->p1 = p1;
		/* A bad certificate or CA file is reported now, not at the first IKE_AUTH. */
		if (p1->authmethod == CONF_AUTH_SIGNATURE && ike_cert_check_phase1(p1))
			log_error("%s: its certificates cannot be used; IKE_AUTH will fail until they are fixed",
				  p1->name);
	}
	/* SAs of removed tunnels: DELETE what is up, forget the rest. */
	for (struct ike_sa *sa = ike->sas, *next; sa; sa = next) {
		next = sa->next;
		if (!sa->tun || sa->tun->present)
			continue;
		if (sa->state == SA_ESTABLISHED)
			(void)ike_info_delete_ike(sa, false);
		log_info("%s: removed from the configuration, IKE SA %016llx_i deleted", sa->tun->name,
			 (unsigned long long)sa->spi_i);
		ike_sa_free(sa);
	}
	for (size_t i = 0; i < ike->ntun;) {
		struct ike_tunnel *t = ike->tun[i];
		if (t->present) {
			i++;
			continue;
		}
		if (t->conn && ike->io.close)
			ike->io.close(ike->io.arg, t->conn);
		ike_tunnel_retry_cancel(t);
		if (ike->loop)
			loop_timer_cancel(ike->loop, &t->auto_timer);
		free(t);
		ike->tun[i] = ike->tun[--ike->ntun];
	}
	for (size_t i = 0; i < ike->ntun; i++) {
		struct ike_tunnel *t = ike->tun[i];
		if (t->p1->type == CONF_P1_STATIC && t->p1->auto_negotiate)
			(void)initiate(ike, t, &err);
	}
	return 0;
}

int ike_up(struct ike *ike, const char *phase1, const char **err)
{
	struct ike_tunnel *t = ike_tunnel_find(ike, phase1);
	if (!t) {
		*err = "no such phase1-interface";
		return -1;
	}
	return initiate(ike, t, err) ? -1 : 0;
}

int ike_down(struct ike *ike, const char *phase1, const char **err)
{
	struct ike_tunnel *t = ike_tunnel_find(ike, phase1);
	size_t n = 0;

	if (!t) {
		*err = "no such phase1-interface";
		return -1;
	}
	ike_tunnel_retry_cancel(t); /* down means down until ike_up or a reload */
	for (struct ike_sa *sa = ike->sas, *next; sa; sa = next) {
		next = sa->next;
		if (sa->tun != t)
			continue;
		n++;
		if (sa->state == SA_ESTABLISHED && !sa->req_out && ike_info_delete_ike(sa, true) == 0)
			continue; /* freed when the answer comes, or at the timeout */
		ike_sa_free(sa);
	}
	if (!n) {
		*err = "no IKE SA";
		return -1;
	}
	return 0;
}

void ike_shutdown(struct ike *ike)
{
	for (struct ike_sa *sa = ike->sas; sa; sa = sa->next)
		if (sa->state == SA_ESTABLISHED)
			(void)ike_info_delete_ike(sa, false);
}

void ike_conn_up(struct ike *ike, struct tcp_conn *c)
{
	for (size_t i = 0; i < ike->ntun; i++)
		if (ike->tun[i]->conn == c)
			ike->tun[i]->conn_up = true;
	for (struct ike_sa *sa = ike->sas, *next; sa; sa = next) {
		next = sa->next;
		if (sa->conn != c)
			continue;
		if (sa->state == SA_ESTABLISHED) {
			/* RFC 9329 6.1: the SA survives its stream; ESP follows the new one. */
			for (unsigned j = 0; j < IKE_MAX_CHILDREN; j++)
				if (sa->child[j].used && ike->child.update_conn)
					ike->child.update_conn(ike->child_arg, sa->child[j].spi_in, c);
			if (ike->io.hold) {
				ike->io.hold(ike->io.arg, c, true);
				sa->held = true;
			}
			/* The responder learns the new stream from our next message: the
			 * outstanding request again, or an empty INFORMATIONAL (liveness). */
			if (sa->req_out) {
				ike_resend_request(sa);
			} else {
				struct ike_enc inner;
				ike_inner_begin(ike, &inner);
				(void)ike_request(sa, INFORMATIONAL, &inner);
			}
		} else if (sa->state == SA_DELETING) {
			ike_sa_free(sa);
		} else if (sa->initiator) {
			(void)ike_init_start(sa);
		}
	}
}

void ike_conn_down(struct ike *ike, struct tcp_conn *c)
{
	bool outbound = false;

	for (size_t i = 0; i < ike->ntun; i++) {
		if (ike->tun[i]->conn == c) {
			ike->tun[i]->conn_up = false;
			outbound = true;
		}
	}
	for (struct ike_sa *sa = ike->sas, *next; sa; sa = next) {
		next = sa->next;
		if (sa->conn != c)
			continue;
		for (unsigned j = 0; j < IKE_MAX_CHILDREN; j++)
			if (sa->child[j].used && ike->child.update_conn)
				ike->child.update_conn(ike->child_arg, sa->child[j].spi_in, NULL);
		if (sa->state == SA_ESTABLISHED) {
			if (!outbound) {
				sa->conn = NULL; /* inbound: gone for good */
				sa->held = false;
			}
			continue;
		}
		if (outbound && sa->initiator && sa->state != SA_DELETING) {
			/* The exchange in flight is lost; start again when the stream returns. */
			sa->state = SA_CONNECTING;
			sa->req_out = false;
			if (ike->loop)
				loop_timer_cancel(ike->loop, &sa->timer);
			continue;
		}
		ike_sa_free(sa);
	}
	/* RFC 9329 6.1: the initiator re-opens a stream for the SAs it carries. With none left (after a
	 * DELETE, `iketcpctl down`, a failed AUTH) the transport must not keep re-dialling the peer. */
	for (size_t i = 0; i < ike->ntun; i++) {
		struct ike_tunnel *t = ike->tun[i];
		bool used = false;
		if (t->conn != c)
			continue;
		for (struct ike_sa *sa = ike->sas; sa && !used; sa = sa->next)
			used = sa->conn == c;
		if (!used && ike->io.close) {
			ike->io.close(ike->io.arg, c);
			t->conn = NULL;
		}
	}
}

/* ---- status ---------------------------------------------------------------------- */

static const char *state_name(const struct ike_sa *sa)
{
	if (!sa)
		return "down";
	return sa->state == SA_ESTABLISHED ? "established" : sa->state == SA_DELETING ? "down" : "connecting";
}

/* One IKE SA's members, into the object open in w. */
static void status_sa(const struct ike_sa *sa, struct jw *w, uint64_t now)
{
	char prop[96] = "", addr[INET6_ADDRSTRLEN + 8], buf[24], id[300];
	struct ike_suite s = sa->suite;

	s.ke = 0;
	if (s.encr)
		ike_suite_name(&s, prop, sizeof(prop));
	snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)sa->spi_i);
	jw_str(w, "spi_i", buf);
	snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)sa->spi_r);
	jw_str(w, "spi_r", buf);
	jw_str(w, "proposal", prop);
	jw_u64(w, "dhgrp", sa->suite.ke);
	jw_u64(w, "established_s", (now - sa->established_ms) / 1000);
	jw_str(w, "local", sockaddr_str(&sa->local, addr, sizeof(addr)));
	jw_str(w, "remote", sockaddr_str(&sa->remote, addr, sizeof(addr)));
	jw_str(w, "role", sa->initiator ? "initiator" : "responder");
	jw_str(w, "peer_id", ike_id_str(sa->peer_id.type, sa->peer_id.data, sa->peer_id.len, id, sizeof(id)));
}

/* The SA's "child_sas" array, counters from the dataplane. */
static void status_children(struct ike *ike, const struct ike_sa *sa, struct jw *w)
{
	char buf[24];

	jw_arr_open(w, "child_sas");
	for (unsigned i = 0; sa && sa->state == SA_ESTABLISHED && i < IKE_MAX_CHILDREN; i++) {
		const struct ike_child *ch = &sa->child[i];
		struct child_sa_counters cnt = { 0 };
		if (!ch->used)
			continue;
		if (ike->child.counters)
			(void)ike->child.counters(ike->child_arg, ch->spi_in, &cnt);
		jw_obj_open(w, NULL);
		jw_str(w, "name", ch->phase2);
		snprintf(buf, sizeof(buf), "%08x", ch->spi_in);
		jw_str(w, "spi_in", buf);
		snprintf(buf, sizeof(buf), "%08x", ch->spi_out);
		jw_str(w, "spi_out", buf);
		jw_str(w, "proposal", ch->proposal);
		jw_u64(w, "bytes_in", cnt.bytes_in);
		jw_u64(w, "bytes_out", cnt.bytes_out);
		jw_u64(w, "packets_in", cnt.packets_in);
		jw_u64(w, "packets_out", cnt.packets_out);
		jw_obj_close(w);
	}
	jw_arr_close(w);
}

static unsigned children_up(const struct ike_sa *sa)
{
	unsigned n = 0;
	for (unsigned i = 0; sa->state == SA_ESTABLISHED && i < IKE_MAX_CHILDREN; i++)
		n += sa->child[i].used;
	return n;
}

void ike_status_tunnel(struct ike *ike, const char *phase1, struct jw *w, bool json)
{
	struct ike_tunnel *t = ike_tunnel_find(ike, phase1);
	struct ike_sa *sa = NULL;
	size_t n = t ? sas_of(ike, t, &sa) : 0;
	bool tls = t && t->conn ? t->tls : ike->conf && ike->conf->settings.ike_tls_service;
	const char *transport = tls ? "tls" : "tcp";
	char prop[96] = "", local[INET6_ADDRSTRLEN + 8], remote[INET6_ADDRSTRLEN + 8], id[300];
	uint64_t now = ike->loop ? loop_now_ms(ike->loop) : 0;
	bool up = sa && sa->state == SA_ESTABLISHED;

	if (sa ? ike_sa_datagram(sa)
	       : t && t->p1 && (t->p1->transport == CONF_TRANSPORT_UDP ||
				(t->p1->transport == CONF_TRANSPORT_AUTO && !t->auto_tcp)))
		transport = "udp";
	if (!json) {
		jw_printf(w, "%s: %s %s", phase1, state_name(sa), transport);
		if (t && t->transport_why[0])
			jw_printf(w, " (%s)", t->transport_why);
		/* One line per established IKE SA: a dynamic phase1 may have many peers. */
		for (const struct ike_sa *p = ike->sas; p && t; p = p->next) {
			if (p->tun != t || p->state != SA_ESTABLISHED || p->rekeyed)
				continue;
			struct ike_suite s = p->suite;
			unsigned nch = children_up(p);
			s.ke = 0;
			ike_suite_name(&s, prop, sizeof(prop));
			jw_printf(w, "%s%s -> %s %s %s %s up %llus, %u child SA%s", n > 1 ? "\n    " : " ",
				  sockaddr_str(&p->local, local, sizeof(local)),
				  sockaddr_str(&p->remote, remote, sizeof(remote)),
				  ike_id_str(p->peer_id.type, p->peer_id.data, p->peer_id.len, id, sizeof(id)), prop,
				  ike_ke_name(p->suite.ke) ? ike_ke_name(p->suite.ke) : "?",
				  (unsigned long long)((now - p->established_ms) / 1000), nch, nch == 1 ? "" : "s");
		}
		jw_printf(w, "\n");
		return;
	}
	jw_str(w, "state", state_name(sa));
	jw_str(w, "transport", transport);
	if (t && t->transport_why[0])
		jw_str(w, "transport_why", t->transport_why);
	if (!up) {
		jw_null(w, "ike_sa");
	} else {
		jw_obj_open(w, "ike_sa");
		status_sa(sa, w, now);
		jw_obj_close(w);
	}
	status_children(ike, up ? sa : NULL, w);
	if (t && t->p1 && t->p1->type == CONF_P1_DYNAMIC) {
		/* Every peer's IKE SA, each with its CHILD SAs and transport. */
		jw_u64(w, "peers", n);
		jw_arr_open(w, "ike_sas");
		for (const struct ike_sa *p = ike->sas; p; p = p->next) {
			if (p->tun != t || p->state != SA_ESTABLISHED || p->rekeyed)
				continue;
			jw_obj_open(w, NULL);
			status_sa(p, w, now);
			bool p_tls = p->conn && ike->io.tls && ike->io.tls(ike->io.arg, p->conn);
			jw_str(w, "transport", ike_sa_datagram(p) ? "udp" : p_tls ? "tls" : "tcp");
			status_children(ike, p, w);
			jw_obj_close(w);
		}
		jw_arr_close(w);
	}
}
