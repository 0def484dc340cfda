/*
 * The engine over UDP (RFC 7296 2.1, 2.23): IKE_SA_INIT on 500, the move to
 * 4500 for IKE_AUTH and ESP, requests retransmitted when lost and answered
 * from the cache when repeated, the peer followed to its new port, and
 * transport auto falling back to TCP (RFC 9329 5.1). Two engines over the
 * harness's pipe; the io here plays the UDP transport: four paths, and a
 * knob that loses what one side sends.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "ike/ike.h"
#include "iketcp/stats.h"
#include "loop.h"
#include "tests/lib/ike_harness.h"

/* Path handles: gwA's to gwB's 500 and 4500, and the ones gwB sees gwA's datagrams on. */
static char paths[7];
#define A500 ((struct tcp_conn *)&paths[0])
#define A4500 ((struct tcp_conn *)&paths[1])
#define B500 ((struct tcp_conn *)&paths[2])
#define B4500 ((struct tcp_conn *)&paths[3])
#define ATCP ((struct tcp_conn *)&paths[4]) /* gwA's TCP stream (transport auto's fallback) */
#define BTCP ((struct tcp_conn *)&paths[5]) /* the same stream at gwB */
#define BEVIL ((struct tcp_conn *)&paths[6]) /* gwB's path to an attacker on 4500 */

struct net {
	struct ikeh_pipe p;
	unsigned lose[2];         /* what side 0 / 1 sends next is lost, this many times */
	unsigned sent[2], lost[2];
	unsigned installs[2];
	uint8_t init_answer[2][64];       /* gwB's IKE_SA_INIT answers, their first bytes */
	unsigned init_answers;
	uint8_t auth_req[IKE_MSG_MAX_LEN];  /* gwA's IKE_AUTH request, as an attacker on the path saw it */
	size_t auth_req_len;
	unsigned to_evil;
	struct tcp_conn *install_conn[2];
	bool udp_open_fails;
};
static struct net *g_net;

static bool is_udp(struct tcp_conn *c)
{
	return c == A500 || c == A4500 || c == B500 || c == B4500 || c == BEVIL;
}

static struct tcp_conn *io_open_udp(void *arg, const struct sockaddr *peer, socklen_t len, bool natt)
{
	(void)peer;
	(void)len;
	assert_int_equal(ikeh_side(arg), 0); /* only the static initiator opens paths */
	return g_net->udp_open_fails ? NULL : natt ? A4500 : A500;
}

static bool io_datagram(void *arg, struct tcp_conn *c)
{
	(void)arg;
	return is_udp(c);
}

static bool io_natt(void *arg, struct tcp_conn *c)
{
	(void)arg;
	return c == A4500 || c == B4500 || c == BEVIL;
}

/* Datagrams from a path arrive on the matching path of the other side; TCP as the harness does it. */
static int io_send(void *arg, struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	struct net *n = g_net;
	int from = ikeh_side(arg);
	struct tcp_conn *to;

	if (!is_udp(c)) {
		if (from == 0 && n->p.pending_up)
			return -ENOTCONN;
		ikeh_enqueue(&n->p, !from, from ? ATCP : BTCP, buf, len);
		return 0;
	}
	n->sent[from]++;
	if (from == 1 && len >= 64 && buf[18] == IKE_SA_INIT && n->init_answers < 2)
		memcpy(n->init_answer[n->init_answers++], buf, 64);
	if (from == 0 && len > 19 && buf[18] == IKE_AUTH && !(buf[19] & IKE_FLAG_R) && len <= sizeof(n->auth_req)) {
		memcpy(n->auth_req, buf, len);
		n->auth_req_len = len;
	}
	if (c == BEVIL) {
		n->to_evil++;
		return 0;
	}
	if (n->lose[from]) {
		n->lose[from]--;
		n->lost[from]++;
		return 0; /* a datagram may be lost: the sender cannot tell */
	}
	if (from == 0)
		to = c == A4500 ? B4500 : B500;
	else
		to = c == B4500 ? A4500 : A500;
	ikeh_enqueue(&n->p, !from, to, buf, len);
	return 0;
}

/* gwA 100.64.0.2 behind a NAT that shows it as 203.0.113.1; gwB 203.0.113.2. Ports: the path's. */
static void io_addrs(void *arg, struct tcp_conn *c, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
	int side = ikeh_side(arg);
	uint16_t port = c == A4500 || c == B4500 ? 4500 : c == ATCP ? 443 : 500;

	if (!is_udp(c)) {
		ikeh_io_addrs(arg, c, local, peer);
		return;
	}
	if (c == BEVIL) {
		ikeh_set4(local, "203.0.113.2", 4500);
		ikeh_set4(peer, "198.51.100.66", 40000);
		return;
	}
	ikeh_set4(side ? local : peer, "203.0.113.2", port);
	ikeh_set4(side ? peer : local, side ? "203.0.113.1" : "100.64.0.2", port);
}

static int dp_install(void *arg, const struct child_sa *sa)
{
	int side = ikeh_side(arg);
	g_net->installs[side]++;
	g_net->install_conn[side] = sa->conn;
	return 0;
}

static const struct child_sa_ops dp_ops = { dp_install, ikeh_dp_update, ikeh_dp_remove, ikeh_dp_counters };
static const struct ike_io io = { .connect = ikeh_io_connect, .send = io_send, .close = ikeh_io_close,
				  .hold = ikeh_io_hold, .addrs = io_addrs, .open_udp = io_open_udp,
				  .datagram = io_datagram, .natt = io_natt, .arg = NULL };

/* lose_a / lose_b: how many of the first datagrams each side sends are lost (from the very first). */
static struct net *net_new(const char *transport, const char *p1_extra, bool udp_open_fails, unsigned lose_a,
			   unsigned lose_b)
{
	struct net *n = calloc(1, sizeof(*n));
	assert_non_null(n);
	g_net = n;
	n->udp_open_fails = udp_open_fails;
	n->lose[0] = lose_a;
	n->lose[1] = lose_b;
	const struct ikeh_gw a = { .initiator = true, .transport = transport, .localid = IKEH_LOCALID(true),
				   .peerid = IKEH_PEERID(true), .p1_extra = p1_extra };
	const struct ikeh_gw b = { .initiator = false, .localid = IKEH_LOCALID(false), .peerid = IKEH_PEERID(false) };
	ikeh_open(&n->p, ATCP, BTCP, ikeh_gw_conf(&a), ikeh_gw_conf(&b), &io, &dp_ops);
	return n;
}

static void net_free(struct net *n)
{
	ikeh_close(&n->p);
	free(n);
	g_net = NULL;
}

static bool has(struct ike *ike, const char *tunnel, const char *needle)
{
	char *s = ikeh_status_json(ike, tunnel);
	bool yes = strstr(s, needle) != NULL;
	if (!yes)
		print_message("status of %s: %s\n(no %s)\n", tunnel, s, needle);
	free(s);
	return yes;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_establishes_and_moves_to_4500(void **state)
{
	(void)state;
	struct net *n = net_new("udp", NULL, false, 0, 0);
	ikeh_pump(&n->p);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_int_equal(n->p.connects, 0); /* no TCP at all */
	/* IKE_SA_INIT on 500, everything after on 4500, ESP too (the CHILD SAs' paths). */
	assert_true(has(n->p.ike[0], "to-hq", "\"transport\":\"udp\""));
	assert_true(has(n->p.ike[0], "to-hq", "\"remote\":\"203.0.113.2:4500\""));
	assert_true(has(n->p.ike[1], "branch", "\"remote\":\"203.0.113.1:4500\""));
	assert_ptr_equal(n->install_conn[0], A4500);
	assert_ptr_equal(n->install_conn[1], B4500);
	assert_int_equal(stats.ike.retransmits, 0);
	net_free(n);
}

static void test_lost_requests_are_retransmitted(void **state)
{
	(void)state;
	/* IKE_SA_INIT lost twice: sent again after 1 s, then after 2 s more. */
	struct net *n = net_new("udp", NULL, false, 2, 0);
	ikeh_pump(&n->p);
	assert_int_equal(stats.ike.sa_established, 0);
	ikeh_run_for(&n->p, 1200);
	assert_int_equal(stats.ike.retransmits, 1);
	assert_int_equal(stats.ike.sa_established, 0);
	ikeh_run_for(&n->p, 2200);
	assert_int_equal(stats.ike.retransmits, 2);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_int_equal(n->lost[0], 2);
	net_free(n);
}

static void test_lost_answer_comes_from_the_cache(void **state)
{
	(void)state;
	struct net *n = net_new("udp", NULL, false, 0, 1); /* gwB's IKE_SA_INIT answer is lost */
	ikeh_pump(&n->p);
	unsigned answers = n->sent[1];
	ikeh_run_for(&n->p, 1300);
	/* gwA sent IKE_SA_INIT again; gwB answered it from its cache: the same bytes, the same SPIr. */
	assert_int_equal(stats.ike.retransmits, 1);
	assert_true(n->sent[1] >= answers + 1);
	assert_int_equal(n->init_answers, 2);
	assert_memory_equal(n->init_answer[0], n->init_answer[1], 64);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_true(has(n->p.ike[1], "branch", "\"peers\":1"));

	/* Now lose gwB's answer to an INFORMATIONAL of gwA's (a DELETE): retransmitted on 4500, answered
	 * from the cache, never processed twice. */
	const char *err = NULL;
	n->lose[1] = 1;
	assert_int_equal(ike_down(n->p.ike[0], "to-hq", &err), 0);
	ikeh_pump(&n->p);
	ikeh_run_for(&n->p, 1300);
	assert_int_equal(stats.ike.retransmits, 2);
	assert_true(has(n->p.ike[0], "to-hq", "\"state\":\"down\""));
	assert_true(has(n->p.ike[1], "branch", "\"state\":\"down\""));
	net_free(n);
}

/* 2.23: an old request replayed from elsewhere is answered from the cache there, but moves nothing. */
static void test_replayed_request_does_not_move_the_sa(void **state)
{
	(void)state;
	struct net *n = net_new("udp", NULL, false, 0, 0);
	ikeh_pump(&n->p);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_true(n->auth_req_len > 0);
	ikeh_enqueue(&n->p, 1, BEVIL, n->auth_req, n->auth_req_len);
	ikeh_pump(&n->p);
	assert_int_equal(n->to_evil, 1); /* the cached IKE_AUTH answer, to where the replay came from */
	assert_true(has(n->p.ike[1], "branch", "\"remote\":\"203.0.113.1:4500\""));
	assert_int_equal(n->p.updates[1], 0); /* the CHILD SA's ESP did not follow the attacker */
	/* A new request from the real peer still gets through on its own path. */
	const char *err = NULL;
	assert_int_equal(ike_down(n->p.ike[0], "to-hq", &err), 0);
	ikeh_pump(&n->p);
	assert_true(has(n->p.ike[1], "branch", "\"state\":\"down\""));
	assert_int_equal(n->to_evil, 1);
	net_free(n);
}

static void test_auto_falls_back_to_tcp(void **state)
{
	(void)state;
	/* UDP goes nowhere (a carrier that drops it). */
	struct net *n = net_new("auto", "        set auto-transport-threshold 1\n", false, 1000, 0);
	ikeh_pump(&n->p);
	assert_true(has(n->p.ike[0], "to-hq", "\"transport_why\":\"auto: trying UDP first\""));
	ikeh_run_for(&n->p, 1500);
	/* RFC 9329 5.1: a new IKE_SA_INIT over TCP (new SPI), which the responder answers. */
	assert_int_equal(n->p.connects, 1);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_true(has(n->p.ike[0], "to-hq", "\"transport\":\"tcp\""));
	assert_true(has(n->p.ike[0], "to-hq", "no answer over UDP in 1 s"));
	assert_ptr_equal(n->install_conn[0], ATCP);
	net_free(n);
}

static void test_auto_stays_on_udp_when_answered(void **state)
{
	(void)state;
	struct net *n = net_new("auto", "        set auto-transport-threshold 1\n", false, 0, 0);
	ikeh_pump(&n->p);
	ikeh_run_for(&n->p, 1300); /* past the threshold: nothing changes */
	assert_int_equal(n->p.connects, 0);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_true(has(n->p.ike[0], "to-hq", "\"transport_why\":\"auto: UDP answered\""));
	net_free(n);
}

static void test_no_udp_path(void **state)
{
	(void)state;
	/* transport udp without a path: nothing starts, and up says why. */
	struct net *n = net_new("udp", NULL, true, 0, 0);
	const char *err = NULL;
	assert_int_equal(ike_up(n->p.ike[0], "to-hq", &err), -1);
	assert_non_null(strstr(err, "UDP"));
	ikeh_pump(&n->p);
	assert_int_equal(stats.ike.sa_established, 0);
	net_free(n);
	/* transport auto without a path: TCP at once. */
	n = net_new("auto", NULL, true, 0, 0);
	ikeh_pump(&n->p);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_true(has(n->p.ike[0], "to-hq", "\"transport\":\"tcp\""));
	net_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_establishes_and_moves_to_4500),
		cmocka_unit_test(test_lost_requests_are_retransmitted),
		cmocka_unit_test(test_lost_answer_comes_from_the_cache),
		cmocka_unit_test(test_replayed_request_does_not_move_the_sa),
		cmocka_unit_test(test_auto_falls_back_to_tcp),
		cmocka_unit_test(test_auto_stays_on_udp_when_answered),
		cmocka_unit_test(test_no_udp_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
