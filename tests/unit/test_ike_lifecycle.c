/*
 * An IKE SA's life over a stream that gets cut: reconnection (RFC 9329 6.1),
 * liveness / DPD with re-initiation, and COOKIEs under load (RFC 7296 2.6,
 * RFC 9329 6.3). gwA (static initiator) and gwB (dynamic responder) run in
 * one process over an in-memory pipe. gwA's outbound handle stays the same
 * across reconnects (as the transport's does); each new connection is a new
 * inbound handle at gwB.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ike/cookie.h"
#include "ike/ike.h"
#include "ike/message.h"
#include "ike/sa.h"
#include "iketcp/stats.h"
#include "loop.h"
#include "tests/lib/ike_harness.h"

/* ---- the pipe ---------------------------------------------------------------------- */

#define NCONN 8

struct side {
	unsigned installs, removes;
	uint64_t esp_in, esp_out; /* what the dataplane reports as packets_in / packets_out */
};

struct net {
	struct ikeh_pipe p;      /* p.a_down: gwA's stream is cut, nothing goes through */
	struct side s[2];
	bool drop_to_a;          /* gwB's messages are lost (a dead peer, seen from gwA) */
	struct tcp_conn *b_conn; /* gwB's handle of gwA's current stream */
	unsigned next_conn;
	unsigned b_closes;       /* gwB closed a stream (after a COOKIE) */
	unsigned stray;          /* sent on a stream that is gone */
	unsigned sent_to_b;
	uint8_t last_to_b[IKE_MSG_MAX_LEN];
	size_t last_to_b_len;
};

static int conn_tags[NCONN];
#define CONN(i) ((struct tcp_conn *)&conn_tags[i])
#define CONN_A CONN(0)

static struct net *g_net;

static int io_send(void *arg, struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	struct net *n = g_net;
	assert_true(len <= IKE_MSG_MAX_LEN);
	if (ikeh_side(arg) == 0) {
		assert_ptr_equal(c, CONN_A);
		if (n->p.a_down || n->p.pending_up)
			return -ENOTCONN;
		n->sent_to_b++;
		memcpy(n->last_to_b, buf, len);
		n->last_to_b_len = len;
		ikeh_enqueue(&n->p, 1, n->b_conn, buf, len);
		return 0;
	}
	if (c != n->b_conn || n->p.a_down) {
		n->stray++;
		return 0;
	}
	if (!n->drop_to_a)
		ikeh_enqueue(&n->p, 0, CONN_A, buf, len);
	return 0;
}

static void io_close(void *arg, struct tcp_conn *c)
{
	if (ikeh_side(arg) == 1 && c == g_net->b_conn)
		g_net->b_closes++;
}

/* Each new stream has a new source port; CONN(7) is an attacker elsewhere. */
static void io_addrs(void *arg, struct tcp_conn *c, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
	uint16_t port = (uint16_t)(40000 + g_net->next_conn);
	const char *a = c == CONN(7) ? "192.0.2.66" : "198.51.100.1";
	ikeh_addrs(ikeh_side(arg), a, port, local, peer);
}

static int dp_install(void *arg, const struct child_sa *sa)
{
	(void)sa;
	g_net->s[ikeh_side(arg)].installs++;
	return 0;
}

static void dp_remove(void *arg, uint32_t spi_in)
{
	(void)spi_in;
	g_net->s[ikeh_side(arg)].removes++;
}

static int dp_counters(void *arg, uint32_t spi_in, struct child_sa_counters *out)
{
	(void)spi_in;
	memset(out, 0, sizeof(*out));
	out->packets_in = g_net->s[ikeh_side(arg)].esp_in;
	out->packets_out = g_net->s[ikeh_side(arg)].esp_out;
	return 0;
}

static const struct child_sa_ops dp_ops = { dp_install, ikeh_dp_update, dp_remove, dp_counters };
static const struct ike_io io = { .connect = ikeh_io_connect, .send = io_send, .close = io_close,
				  .hold = ikeh_io_hold, .addrs = io_addrs, .arg = NULL };

#define deliver(n) ikeh_deliver(&(n)->p)

#define pump(n) ikeh_pump(&(n)->p)

#define queue_clear(n) ikeh_queue_clear(&(n)->p)

/* The TCP connection dies. b_notices: gwB sees it too (an RST reached it). */
static void cut(struct net *n, bool b_notices)
{
	queue_clear(n);
	n->p.a_down = true;
	ike_conn_down(n->p.ike[0], CONN_A);
	if (b_notices)
		ike_conn_down(n->p.ike[1], n->b_conn);
}

/* gwA's transport reconnects: a new inbound handle at gwB. */
static void reconnect(struct net *n)
{
	assert_true(n->next_conn + 1 < 7);
	n->b_conn = CONN(++n->next_conn);
	n->p.a_down = false;
	ike_conn_up(n->p.ike[0], CONN_A);
}

#define run_for(n, ms) ikeh_run_for(&(n)->p, (ms))

/* ---- configurations ---------------------------------------------------------------- */

static struct config *gw_conf(bool initiator, const char *extra)
{
	const struct ikeh_gw g = {
		.initiator = initiator,
		.localid = IKEH_LOCALID(initiator),
		.peerid = IKEH_PEERID(initiator),
		.p1_extra = extra,
	};
	return ikeh_gw_conf(&g);
}

static const char *const dpd_off = "        set dpd disable\n";

static struct net *net_new(const char *a_extra, const char *b_extra)
{
	struct net *n = g_net = calloc(1, sizeof(*n));
	assert_non_null(n);
	n->b_conn = CONN(1);
	n->next_conn = 1;
	ikeh_open(&n->p, CONN_A, CONN(1), gw_conf(true, a_extra), gw_conf(false, b_extra), &io, &dp_ops);
	return n;
}

static void net_free(struct net *n)
{
	ikeh_close(&n->p);
	free(n);
	g_net = NULL;
}

static struct ike_sa *the_sa(struct net *n, int side)
{
	struct ike_sa *sa = n->p.ike[side]->sas;
	assert_non_null(sa);
	assert_null(sa->next);
	return sa;
}

static bool established(struct net *n, int side)
{
	struct ike_sa *sa = n->p.ike[side]->sas;
	return sa && !sa->next && sa->state == SA_ESTABLISHED;
}

/* Exchange type and flags of the last message gwA sent. */
static uint8_t last_to_b_exchange(const struct net *n)
{
	return n->last_to_b[18];
}

/* An empty INFORMATIONAL request (a liveness check) from side's only SA. */
static void informational(struct net *n, int side)
{
	struct ike_enc inner;
	ike_inner_begin(n->p.ike[side], &inner);
	assert_int_equal(ike_request(the_sa(n, side), INFORMATIONAL, &inner), 0);
}

/* ---- reconnection (RFC 9329 6.1) ------------------------------------------------------ */

static void test_reconnect_idle(void **state)
{
	(void)state;
	struct net *n = net_new(dpd_off, dpd_off);
	pump(n);
	assert_true(established(n, 0) && established(n, 1));
	uint64_t spi_i = the_sa(n, 0)->spi_i, spi_r = the_sa(n, 0)->spi_r;
	char *before = ikeh_status_json(n->p.ike[0], "to-hq");

	/* The stream dies (gwB notices too); ESP has nowhere to go. */
	cut(n, true);
	assert_ptr_equal(n->p.last_update_conn[0], NULL);
	assert_ptr_equal(n->p.last_update_conn[1], NULL);
	assert_null(the_sa(n, 1)->conn);
	unsigned ua = n->p.updates[0], ub = n->p.updates[1], sent = n->sent_to_b;

	/* gwA reconnects with nothing outstanding:
	 * INFORMATIONAL { } --> on the new stream, <-- INFORMATIONAL { } */
	reconnect(n);
	assert_int_equal(n->sent_to_b, sent + 1);
	assert_int_equal(last_to_b_exchange(n), INFORMATIONAL);
	assert_int_equal(n->p.updates[0], ua + 1);
	assert_ptr_equal(n->p.last_update_conn[0], CONN_A);
	pump(n);
	/* gwB moved the SA and its CHILD SA to the new stream; same SPIs on both sides. */
	assert_int_equal(n->p.updates[1], ub + 1);
	assert_ptr_equal(n->p.last_update_conn[1], CONN(2));
	assert_ptr_equal(the_sa(n, 1)->conn, CONN(2));
	assert_false(the_sa(n, 0)->req_out);
	assert_int_equal(the_sa(n, 0)->spi_i, spi_i);
	assert_int_equal(the_sa(n, 1)->spi_r, spi_r);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_int_equal(stats.ike.invalid_messages, 0);
	assert_int_equal(n->s[0].installs, 1);
	assert_int_equal(n->s[0].removes + n->s[1].removes, 0);
	char *after = ikeh_status_json(n->p.ike[0], "to-hq");
	char want[64];
	snprintf(want, sizeof(want), "\"spi_i\":\"%016llx\"", (unsigned long long)spi_i);
	assert_non_null(strstr(before, want));
	assert_non_null(strstr(after, want));
	free(before);
	free(after);

	/* gwB now answers on the new stream: its own liveness request round-trips. */
	struct ike_enc inner;
	ike_inner_begin(n->p.ike[1], &inner);
	assert_int_equal(ike_request(the_sa(n, 1), INFORMATIONAL, &inner), 0);
	pump(n);
	assert_false(the_sa(n, 1)->req_out);
	assert_int_equal(n->stray, 0);
	net_free(n);
}

static void test_reconnect_outstanding_request(void **state)
{
	(void)state;
	struct net *n = net_new(dpd_off, dpd_off);
	pump(n);
	struct ike_sa *a = the_sa(n, 0);

	/* INFORMATIONAL { } --> is out when the stream dies; only gwA notices (a
	 * forged RST on its side): gwB still holds the old, dead stream. */
	informational(n, 0);
	uint32_t id = a->my_msg_id - 1;
	uint8_t first[IKE_MSG_MAX_LEN];
	size_t first_len = n->last_to_b_len;
	memcpy(first, n->last_to_b, first_len);
	cut(n, false);
	assert_ptr_equal(the_sa(n, 1)->conn, CONN(1));
	unsigned sent = n->sent_to_b;

	/* Reconnected: the same request (same message ID, same bytes) goes again. */
	reconnect(n);
	assert_int_equal(n->sent_to_b, sent + 1);
	assert_int_equal(n->last_to_b_len, first_len);
	assert_memory_equal(n->last_to_b, first, first_len);
	assert_int_equal(a->my_msg_id, id + 1);
	pump(n);
	assert_false(a->req_out);
	assert_ptr_equal(the_sa(n, 1)->conn, CONN(2));
	assert_ptr_equal(n->p.last_update_conn[1], CONN(2));
	assert_ptr_equal(n->p.last_update_conn[0], CONN_A);
	assert_int_equal(stats.ike.sa_established, 2);

	/* And again, with gwB's answer lost with the stream: gwB answers the
	 * resent request from its cache on the newest stream. A resend proves
	 * nothing (anyone can replay it), so gwB stays until gwA answers its
	 * liveness check there. */
	informational(n, 0);
	deliver(n); /* gwB answers ... */
	cut(n, false); /* ... into the cut */
	assert_true(a->req_out);
	unsigned ub = n->p.updates[1];
	reconnect(n);
	deliver(n); /* the resend: answered from the cache, INFORMATIONAL { } <-- on both streams */
	assert_ptr_equal(the_sa(n, 1)->conn, CONN(2));
	assert_int_equal(n->p.updates[1], ub);
	assert_true(the_sa(n, 1)->req_out);
	pump(n);
	assert_false(a->req_out);
	assert_false(the_sa(n, 1)->req_out);
	assert_ptr_equal(the_sa(n, 1)->conn, CONN(3));
	assert_ptr_equal(n->p.last_update_conn[1], CONN(3));
	assert_int_equal(stats.ike.invalid_messages, 0);

	/* Once more, gwB seeing the cut this time: its stream is gone, so the resend moves the SA at once. */
	informational(n, 0);
	deliver(n);
	cut(n, true);
	assert_null(the_sa(n, 1)->conn);
	reconnect(n);
	deliver(n);
	assert_ptr_equal(the_sa(n, 1)->conn, CONN(4));
	assert_false(the_sa(n, 1)->req_out);
	pump(n);
	assert_false(a->req_out);
	assert_int_equal(stats.ike.invalid_messages, 0);
	net_free(n);
}

static unsigned nsas(struct net *n, int side)
{
	unsigned k = 0;
	for (struct ike_sa *sa = n->p.ike[side]->sas; sa; sa = sa->next)
		k++;
	return k;
}

/* The stream dies in the middle of an IKE SA rekey (RFC 7296 1.3.2 over RFC 9329 6.1). */
static void test_reconnect_during_ike_rekey(void **state)
{
	(void)state;
	struct net *n = net_new(dpd_off, dpd_off);
	pump(n);
	uint64_t spi_i = the_sa(n, 0)->spi_i;

	/* CREATE_CHILD_SA { SA(IKE) Ni KEi } is out when only gwA sees the stream die: it goes again on the
	 * new one, gwB follows with the old SA and makes the new SA on that stream. */
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	cut(n, false);
	reconnect(n);
	pump(n);
	assert_true(established(n, 0) && established(n, 1));
	assert_true(the_sa(n, 0)->spi_i != spi_i && the_sa(n, 0)->spi_i == the_sa(n, 1)->spi_i);
	assert_ptr_equal(the_sa(n, 1)->conn, CONN(2));
	assert_ptr_equal(n->p.last_update_conn[1], CONN(2));
	assert_int_equal(n->s[0].installs + n->s[1].installs, 2);
	assert_int_equal(n->s[0].removes + n->s[1].removes, 0);

	/* The answer arrived, the old SA's DELETE is lost with the stream (both sides notice): the new SA
	 * carries on over the next stream, gwB drops the old one at its deadline. */
	spi_i = the_sa(n, 0)->spi_i;
	n->p.hold_queue = true;
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	deliver(n);
	deliver(n); /* gwA has the new SA; its D(IKE) for the old one is queued */
	n->p.hold_queue = false;
	cut(n, true);
	assert_int_equal(nsas(n, 0), 1); /* the old SA, DELETE unanswered, went with the stream */
	assert_int_equal(nsas(n, 1), 2);
	reconnect(n);
	pump(n);
	struct ike_sa *old = NULL, *cur = NULL;
	for (struct ike_sa *sa = n->p.ike[1]->sas; sa; sa = sa->next)
		*(sa->rekeyed ? &old : &cur) = sa;
	assert_non_null(old);
	assert_non_null(cur);
	assert_true(cur->spi_i == the_sa(n, 0)->spi_i && cur->spi_i != spi_i);
	assert_ptr_equal(cur->conn, CONN(3));
	assert_ptr_equal(n->p.last_update_conn[1], CONN(3));
	assert_true(loop_timer_armed(&old->timer));
	old->timer.cb(n->p.loop, &old->timer); /* IKE_RESPONSE_TIMEOUT_MS later */
	assert_true(established(n, 1));
	assert_int_equal(n->s[0].removes + n->s[1].removes, 0);
	assert_int_equal(n->stray, 0);
	assert_int_equal(stats.ike.invalid_messages, 0);
	net_free(n);
}

static void test_forged_message_does_not_move_sa(void **state)
{
	(void)state;
	struct net *n = net_new(dpd_off, dpd_off);
	pump(n);
	struct ike_sa *b = the_sa(n, 1);
	unsigned ub = n->p.updates[1];

	/* A copy of gwA's next request with one ICV byte flipped, on the attacker's stream. */
	struct ike_enc inner;
	ike_inner_begin(n->p.ike[0], &inner);
	assert_int_equal(ike_request(the_sa(n, 0), INFORMATIONAL, &inner), 0);
	uint8_t bad[IKE_MSG_MAX_LEN];
	size_t len = n->last_to_b_len;
	memcpy(bad, n->last_to_b, len);
	bad[len - 1] ^= 1;
	ike_input(n->p.ike[1], CONN(7), bad, len);
	assert_ptr_equal(b->conn, CONN(1));
	assert_int_equal(n->p.updates[1], ub);
	assert_int_equal(stats.ike.invalid_messages, 1);

	/* Unknown SPIs and an IKE_SA_INIT-less header on the new stream: nothing moves. */
	bad[0] ^= 0xff;
	ike_input(n->p.ike[1], CONN(7), bad, len);
	assert_int_equal(stats.ike.unknown_spi, 1);
	assert_ptr_equal(b->conn, CONN(1));

	/* The genuine request still works on the SA's own stream. */
	pump(n);
	assert_false(the_sa(n, 0)->req_out);
	assert_ptr_equal(b->conn, CONN(1));
	assert_int_equal(n->p.updates[1], ub);

	/* Nor does gwA (the originator) follow a stream opened to it. */
	ike_inner_begin(n->p.ike[1], &inner);
	assert_int_equal(ike_request(b, INFORMATIONAL, &inner), 0);
	struct ikeh_msg *m = n->p.q[0];
	ike_input(n->p.ike[0], CONN(6), m->buf, m->len);
	assert_int_equal(stats.ike.invalid_messages, 2);
	assert_ptr_equal(the_sa(n, 0)->conn, CONN_A);
	net_free(n);
}

/* A request gwB answered, captured and replayed on someone else's stream: answered from the cache
 * there, but the SA stays where gwA is. */
static void test_replayed_request_does_not_move_sa(void **state)
{
	(void)state;
	struct net *n = net_new(dpd_off, dpd_off);
	pump(n);
	struct ike_sa *b = the_sa(n, 1);

	informational(n, 0);
	uint8_t copy[IKE_MSG_MAX_LEN];
	size_t len = n->last_to_b_len;
	memcpy(copy, n->last_to_b, len);
	pump(n);
	unsigned ub = n->p.updates[1], stray = n->stray;

	/* The replay: the cached answer and a liveness check go to the attacker (who can read neither), the
	 * check to gwA as well. */
	ike_input(n->p.ike[1], CONN(7), copy, len);
	assert_ptr_equal(b->conn, CONN(1));
	assert_int_equal(n->p.updates[1], ub);
	assert_true(b->req_out);
	assert_int_equal(n->stray, stray + 2);
	/* Replayed again while the check is out: only the check goes again, to the attacker. */
	ike_input(n->p.ike[1], CONN(7), copy, len);
	assert_int_equal(n->stray, stray + 4);
	/* gwA answers on its own stream: the SA stays, and ESP with it. */
	pump(n);
	assert_false(b->req_out);
	assert_ptr_equal(b->conn, CONN(1));
	assert_int_equal(n->p.updates[1], ub);
	assert_false(the_sa(n, 0)->req_out);
	assert_int_equal(stats.ike.invalid_messages, 0);
	assert_true(established(n, 0) && established(n, 1));
	net_free(n);
}

/* ---- DPD ------------------------------------------------------------------------------ */

static const char *const dpd_fast = "        set dpd on-idle\n"
				    "        set dpd-retryinterval 1\n"
				    "        set dpd-retrycount 2\n";

static void test_dpd_answered(void **state)
{
	(void)state;
	struct net *n = net_new(dpd_fast, dpd_off);
	pump(n);
	uint64_t spi = the_sa(n, 0)->spi_i;
	unsigned sent = n->sent_to_b;

	/* Idle for 2.5 intervals: INFORMATIONAL { } --> <-- { }, twice; the SA stays. */
	run_for(n, 2500);
	assert_true(n->sent_to_b >= sent + 2);
	assert_int_equal(last_to_b_exchange(n), INFORMATIONAL);
	assert_true(established(n, 0));
	assert_int_equal(the_sa(n, 0)->spi_i, spi);
	assert_int_equal(the_sa(n, 0)->dpd_misses, 0);

	/* ESP from the peer (the dataplane's counter, or ike_peer_alive) makes probes unnecessary. */
	sent = n->sent_to_b;
	for (int i = 0; i < 15; i++) {
		n->s[0].esp_in++;
		ike_peer_alive(n->p.ike[0], CONN_A);
		run_for(n, 100);
	}
	assert_int_equal(n->sent_to_b, sent);
	assert_true(established(n, 0));
	net_free(n);
}

/* on-demand: silence alone is no reason to probe; traffic sent into silence is. */
static void test_dpd_on_demand(void **state)
{
	(void)state;
	struct net *n = net_new("        set dpd on-demand\n"
				"        set dpd-retryinterval 1\n"
				"        set dpd-retrycount 2\n",
				dpd_off);
	pump(n);
	unsigned sent = n->sent_to_b;
	run_for(n, 1600);
	assert_int_equal(n->sent_to_b, sent);

	/* ESP both ways: no probe either */
	for (int i = 0; i < 16; i++) {
		n->s[0].esp_out++;
		n->s[0].esp_in++;
		run_for(n, 100);
	}
	assert_int_equal(n->sent_to_b, sent);

	/* ESP out, nothing back for an interval: INFORMATIONAL { } --> */
	for (int i = 0; i < 16 && n->sent_to_b == sent; i++) {
		n->s[0].esp_out++;
		run_for(n, 100);
	}
	assert_int_equal(n->sent_to_b, sent + 1);
	assert_int_equal(last_to_b_exchange(n), INFORMATIONAL);
	assert_true(established(n, 0));
	net_free(n);
}

static void test_dpd_dead_peer_reinitiates(void **state)
{
	(void)state;
	struct net *n = net_new(dpd_fast, dpd_off);
	pump(n);
	uint64_t spi = the_sa(n, 0)->spi_i;

	/* gwB goes silent: one probe, no answer for retrycount (2) intervals. */
	n->drop_to_a = true;
	run_for(n, 1500);
	assert_true(established(n, 0));
	assert_true(the_sa(n, 0)->req_out);
	run_for(n, 2000);
	/* dead: the IKE SA and its CHILD SA are gone locally */
	assert_null(n->p.ike[0]->sas);
	assert_int_equal(n->s[0].removes, 1);
	char *s = ikeh_status_json(n->p.ike[0], "to-hq");
	assert_non_null(strstr(s, "\"state\":\"down\""));
	free(s);
	/* auto-negotiate: a new IKE SA after the backoff (5 s; fired here by hand) */
	struct ike_tunnel *t = ike_tunnel_find(n->p.ike[0], "to-hq");
	assert_non_null(t);
	assert_true(loop_timer_armed(&t->retry));
	assert_int_equal(t->backoff_ms, 2 * IKE_RETRY_MIN_MS);
	n->drop_to_a = false;
	t->retry.cb(n->p.loop, &t->retry);
	assert_int_equal(last_to_b_exchange(n), IKE_SA_INIT);
	pump(n);
	assert_true(established(n, 0));
	assert_int_not_equal(the_sa(n, 0)->spi_i, spi);
	assert_int_equal(t->backoff_ms, 0);
	net_free(n);
}

static void test_failure_backoff(void **state)
{
	(void)state;
	struct net *n = net_new(dpd_off, dpd_off);
	struct ike_tunnel *t = ike_tunnel_find(n->p.ike[0], "to-hq");
	/* IKE_SA_INIT --> unanswered: each failure re-arms with 5, 10, 20, 40, 60, 60 s. */
	static const uint32_t next[] = { 10000, 20000, 40000, 60000, 60000, 60000 };
	for (size_t i = 0; i < ARRAY_SIZE(next); i++) {
		if (n->p.pending_up) {
			n->p.pending_up = false;
			ike_conn_up(n->p.ike[0], CONN_A);
		}
		queue_clear(n);
		struct ike_sa *a = the_sa(n, 0);
		assert_int_equal(a->state, SA_INIT_SENT);
		a->timer.cb(n->p.loop, &a->timer);
		assert_null(n->p.ike[0]->sas);
		assert_true(loop_timer_armed(&t->retry));
		assert_int_equal(t->backoff_ms, next[i]);
		t->retry.cb(n->p.loop, &t->retry);
		loop_timer_cancel(n->p.loop, &t->retry);
	}
	/* ike_down stops the retries */
	queue_clear(n);
	struct ike_sa *a = the_sa(n, 0);
	a->timer.cb(n->p.loop, &a->timer);
	assert_true(loop_timer_armed(&t->retry));
	const char *err = NULL;
	(void)ike_down(n->p.ike[0], "to-hq", &err);
	assert_false(loop_timer_armed(&t->retry));
	net_free(n);
}

/* ---- COOKIE (RFC 7296 2.6, RFC 9329 6.3) ---------------------------------------------- */

static void test_cookie_codec(void **state)
{
	(void)state;
	struct ike_cookie_state cs = { 0 };
	struct sockaddr_storage p1, p2, p3;
	uint8_t ni[32] = { 1, 2, 3 }, c[IKE_COOKIE_LEN], c2[IKE_COOKIE_LEN];

	ikeh_set4(&p1, "198.51.100.1", 40001);
	ikeh_set4(&p2, "198.51.100.1", 40999); /* same address, new connection */
	ikeh_set4(&p3, "198.51.100.9", 40001);
	assert_int_equal(ike_cookie_make(&cs, 1000, ni, sizeof(ni), &p1, 0x1122, c), 0);
	assert_true(ike_cookie_valid(&cs, 1000, ni, sizeof(ni), &p1, 0x1122, c, sizeof(c)));
	assert_true(ike_cookie_valid(&cs, 2000, ni, sizeof(ni), &p2, 0x1122, c, sizeof(c)));
	assert_false(ike_cookie_valid(&cs, 2000, ni, sizeof(ni), &p3, 0x1122, c, sizeof(c)));
	assert_false(ike_cookie_valid(&cs, 2000, ni, sizeof(ni), &p1, 0x1123, c, sizeof(c)));
	assert_false(ike_cookie_valid(&cs, 2000, ni, sizeof(ni) - 1, &p1, 0x1122, c, sizeof(c)));
	assert_false(ike_cookie_valid(&cs, 2000, ni, sizeof(ni), &p1, 0x1122, c, sizeof(c) - 1));
	assert_false(ike_cookie_valid(&cs, 2000, ni, sizeof(ni), &p1, 0x1122, c, 0));
	for (size_t i = 0; i < sizeof(c); i++) {
		memcpy(c2, c, sizeof(c));
		c2[i] ^= 0x80;
		assert_false(ike_cookie_valid(&cs, 2000, ni, sizeof(ni), &p1, 0x1122, c2, sizeof(c2)));
	}
	/* One rotation: the previous secret still counts; two: it is gone. */
	assert_true(ike_cookie_valid(&cs, 1000 + IKE_COOKIE_ROTATE_MS, ni, sizeof(ni), &p1, 0x1122, c, sizeof(c)));
	assert_int_equal(ike_cookie_make(&cs, 1000 + IKE_COOKIE_ROTATE_MS, ni, sizeof(ni), &p1, 0x1122, c2), 0);
	assert_memory_not_equal(c, c2, sizeof(c));
	assert_false(ike_cookie_valid(&cs, 1000 + 2 * IKE_COOKIE_ROTATE_MS, ni, sizeof(ni), &p1, 0x1122, c,
				      sizeof(c)));
	assert_true(ike_cookie_valid(&cs, 1000 + 2 * IKE_COOKIE_ROTATE_MS, ni, sizeof(ni), &p1, 0x1122, c2,
				     sizeof(c2)));
	ike_cookie_wipe(&cs);
}

static void test_cookie_under_load(void **state)
{
	(void)state;
	struct net *n = net_new(dpd_off, dpd_off);
	ike_cookie_set_threshold(n->p.ike[1], 2);

	/* Two half-open SAs from elsewhere (copies of gwA's IKE_SA_INIT with other SPIs). */
	n->p.pending_up = false;
	ike_conn_up(n->p.ike[0], CONN_A);
	assert_int_equal(n->p.qn, 1);
	struct ikeh_msg *init = n->p.q[0];
	for (uint8_t i = 1; i <= 2; i++) {
		uint8_t copy[IKE_MSG_MAX_LEN];
		memcpy(copy, init->buf, init->len);
		copy[0] ^= i;
		ike_input(n->p.ike[1], CONN(7), copy, init->len);
	}
	assert_int_equal(n->p.ike[1]->nsas, 2);
	assert_int_equal(stats.ike.cookies_sent, 0);

	/* IKE_SA_INIT { SA KE Ni } -->  <-- IKE_SA_INIT { N(COOKIE) }, stream closed, no state kept */
	deliver(n);
	assert_int_equal(stats.ike.cookies_sent, 1);
	assert_int_equal(n->b_closes, 1);
	assert_int_equal(n->p.ike[1]->nsas, 2);
	deliver(n);
	struct ike_sa *a = the_sa(n, 0);
	assert_int_equal(a->state, SA_CONNECTING);
	assert_int_equal(a->cookie_len, IKE_COOKIE_LEN);

	/* gwB closed the stream (RFC 9329 6.3): gwA's transport reconnects.
	 * IKE_SA_INIT { N(COOKIE) SA KE Ni } --> on the new stream, then IKE_AUTH. */
	cut(n, true);
	reconnect(n);
	assert_int_equal(last_to_b_exchange(n), IKE_SA_INIT);
	struct ike_msg *m = malloc(sizeof(*m));
	assert_non_null(m);
	assert_int_equal(ike_msg_parse(m, n->last_to_b, n->last_to_b_len), 0);
	assert_int_equal(m->pl[0].type, IKE_PL_N);
	assert_int_equal(m->pl[0].u.n.type, COOKIE);
	free(m);
	pump(n);
	assert_true(established(n, 0));
	assert_int_equal(stats.ike.cookies_sent, 1);
	assert_int_equal(stats.ike.sa_established, 2);

	net_free(n);

	/* A forged cookie (one byte off) gets a fresh N(COOKIE), never state. */
	uint8_t forged[IKE_MSG_MAX_LEN];
	n = net_new(dpd_off, dpd_off);
	ike_cookie_set_threshold(n->p.ike[1], 0);
	pump(n); /* init --> <-- COOKIE, a waits */
	assert_int_equal(stats.ike.cookies_sent, 1);
	cut(n, true);
	reconnect(n);
	size_t flen = n->last_to_b_len;
	memcpy(forged, n->last_to_b, flen);
	queue_clear(n);
	forged[IKE_HDR_LEN + 4 + 4] ^= 1; /* a byte of the cookie data (N header: 4 + proto/spi/type 4) */
	ike_input(n->p.ike[1], n->b_conn, forged, flen);
	assert_int_equal(stats.ike.cookies_sent, 2);
	assert_int_equal(n->p.ike[1]->nsas, 0);
	net_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reconnect_idle),
		cmocka_unit_test(test_reconnect_outstanding_request),
		cmocka_unit_test(test_reconnect_during_ike_rekey),
		cmocka_unit_test(test_forged_message_does_not_move_sa),
		cmocka_unit_test(test_replayed_request_does_not_move_sa),
		cmocka_unit_test(test_dpd_answered),
		cmocka_unit_test(test_dpd_on_demand),
		cmocka_unit_test(test_dpd_dead_peer_reinitiates),
		cmocka_unit_test(test_failure_backoff),
		cmocka_unit_test(test_cookie_codec),
		cmocka_unit_test(test_cookie_under_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
