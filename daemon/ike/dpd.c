/*
 * Liveness of an established IKE SA (RFC 7296 2.4) per phase1 `dpd`,
 * `dpd-retryinterval` and `dpd-retrycount`, and ike_peer_alive for ESP.
 *
 * Every half retryinterval the SA is looked at:
 *   - heard from the peer since the last look (an authenticated IKE message,
 *     ike_peer_alive, or its CHILD SAs' inbound packet counters grew): alive;
 *   - a request of ours (a probe, or any other) is out and nothing came back
 *     since it was sent: one miss per full retryinterval. Over TCP nothing is
 *     retransmitted (RFC 9329 6.2), so a miss is an interval of silence, not
 *     a resend. After retrycount misses (at least one) the peer is dead, so
 *     between (retrycount + 1) and (retrycount + 1.5) intervals after it fell
 *     silent (the first interval tells idle from dead): the IKE SA and its
 *     CHILD SAs are removed locally and, for a static auto-negotiate tunnel,
 *     a new IKE SA is initiated after the backoff (engine.c);
 *   - nothing out, the peer silent for retryinterval: on-idle sends an empty
 *     INFORMATIONAL request. on-demand sends it only when we have sent ESP
 *     since we last heard from the peer (the CHILD SAs' outbound packet
 *     counters grew): traffic that got no answer. Without counters it
 *     behaves as on-idle.
 */
#include <string.h>

#include "ike/sa.h"

static uint32_t interval_ms(const struct ike_sa *sa)
{
	const struct conf_phase1 *p1 = sa->tun ? sa->tun->p1 : NULL;
	if (!p1 || p1->dpd == CONF_DPD_DISABLE || p1->dpd_retryinterval == 0)
		return 0;
	return p1->dpd_retryinterval * 1000;
}

/* Sum of the CHILD SAs' packet counters; false when the dataplane cannot say. */
static bool esp_counts(const struct ike_sa *sa, uint64_t *in, uint64_t *out)
{
	const struct ike *ike = sa->ike;
	*in = *out = 0;
	if (!ike->child.counters)
		return false;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		struct child_sa_counters c = { 0 };
		if (!sa->child[i].used || ike->child.counters(ike->child_arg, sa->child[i].spi_in, &c))
			continue;
		*in += c.packets_in;
		*out += c.packets_out;
	}
	return true;
}

static void dead(struct ike_sa *sa)
{
	struct ike_tunnel *t = sa->tun;
	char a[INET6_ADDRSTRLEN + 8];

	log_warn("%s: peer %s is dead (%u DPD intervals without an answer), IKE SA %016llx_i %016llx_r deleted",
		 t ? t->name : "?", sockaddr_str(&sa->remote, a, sizeof(a)), sa->dpd_misses,
		 (unsigned long long)sa->spi_i, (unsigned long long)sa->spi_r);
	ike_sa_free(sa);
	if (t)
		ike_tunnel_retry(t, "dead peer");
}

static void dpd_tick(struct loop *loop, struct loop_timer *timer)
{
	struct ike_sa *sa = container_of(timer, struct ike_sa, dpd_timer);
	uint32_t ival = interval_ms(sa);
	uint64_t now = loop_now_ms(loop), in, out;
	bool have = esp_counts(sa, &in, &out);
	bool sent_esp = have && out != sa->esp_out_mark;

	if (!ival || sa->state != SA_ESTABLISHED)
		return;
	if (have && in != sa->esp_in_mark)
		sa->last_rx_ms = now;
	sa->esp_in_mark = in;
	if (sa->req_out && sa->last_rx_ms <= sa->req_sent_ms) {
		/* one miss per full interval since the request went out */
		uint32_t count = sa->tun->p1->dpd_retrycount ? sa->tun->p1->dpd_retrycount : 1;
		if (now + 50 >= sa->req_sent_ms + (uint64_t)(sa->dpd_misses + 1) * ival) {
			if (++sa->dpd_misses >= count)
				return dead(sa);
			log_info("%s: no answer from the peer for %u s (%u/%u)", sa->tun->name,
				 (unsigned)((now - sa->req_sent_ms) / 1000), sa->dpd_misses, count);
		}
	} else if (!sa->req_out) {
		sa->dpd_misses = 0;
		bool idle = now - sa->last_rx_ms + 50 >= ival;
		bool probe = sa->tun->p1->dpd == CONF_DPD_ON_IDLE || !have || sent_esp;
		if (idle && probe) {
			struct ike_enc inner;
			log_debug("%s: INFORMATIONAL { } --> (DPD)", sa->tun->name);
			ike_inner_begin(sa->ike, &inner);
			(void)ike_request(sa, INFORMATIONAL, &inner); /* a failed send is a miss later */
		}
	}
	/* on-demand: outbound traffic counts from the last time we heard the peer. */
	if (now - sa->last_rx_ms < ival)
		sa->esp_out_mark = out;
	(void)loop_timer_arm(loop, &sa->dpd_timer, ival / 2);
}

void ike_dpd_start(struct ike_sa *sa)
{
	struct loop *loop = sa->ike->loop;
	uint32_t ival = interval_ms(sa);

	sa->dpd_timer.cb = dpd_tick;
	sa->dpd_misses = 0;
	if (!loop)
		return;
	sa->last_rx_ms = loop_now_ms(loop);
	(void)esp_counts(sa, &sa->esp_in_mark, &sa->esp_out_mark);
	if (ival)
		(void)loop_timer_arm(loop, &sa->dpd_timer, ival / 2);
}

void ike_dpd_heard(struct ike_sa *sa)
{
	if (sa->ike->loop)
		sa->last_rx_ms = loop_now_ms(sa->ike->loop);
}

/* Called from the ESP input path for every packet: one compare when the
 * stream is the one seen last (one IKE SA per stream, RFC 9329 6.1). */
void ike_peer_alive(struct ike *ike, struct tcp_conn *c)
{
	struct ike_sa *sa = ike->alive_sa;

	if (!c || !ike->loop)
		return;
	if (!sa || sa->conn != c) {
		for (sa = ike->sas; sa && sa->conn != c; sa = sa->next)
			;
		ike->alive_sa = sa;
	}
	if (sa)
		sa->last_rx_ms = loop_now_ms(ike->loop);
}
