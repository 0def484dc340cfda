/*
 * Rekeying the IKE SA with CREATE_CHILD_SA (RFC 7296 1.3.2, 2.8, 2.8.2,
 * 2.18, 2.25), INITIAL_CONTACT (3.10.1) and the cleanup after an initiator
 * rejects the responder's AUTH (2.21.2). gwA (static initiator) and gwB
 * (dynamic responder) run in one process over an in-memory pipe; the
 * dataplane is the harness's recorder (ikeh_rec_ops): every install and
 * removal.
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

#include "conf/conf.h"
#include "ike/ike.h"
#include "ike/message.h"
#include "ike/proposal.h"
#include "ike/sa.h"
#include "iketcp/stats.h"
#include "loop.h"
#include "tests/lib/ike_harness.h"

/* ---- the pipe ------------------------------------------------------------------------ */

struct side {
	bool held;                 /* what io.hold last said of the side's stream */
	unsigned ccsa_req;         /* CREATE_CHILD_SA requests sent */
	unsigned info_req;         /* INFORMATIONAL requests sent */
};

struct net {
	struct ikeh_pipe p; /* p.rec[side]: that side's recorded CHILD SAs */
	struct side s[2];
};

/* The phase1 dhgrp / proposal and extra phase1 lines of gwA and gwB for the next net_new. */
static const char *g_dh[2] = { "19", "19" };
static const char *g_p1x[2] = { "", "" };
static const char *g_peerid[2]; /* NULL: IKEH_PEERID */
static bool g_b_any_peer;       /* gwB without peerid: any ID that knows the key */

static int conn_tags[2];
#define CONN_A ((struct tcp_conn *)&conn_tags[0])
#define CONN_B ((struct tcp_conn *)&conn_tags[1])

static struct net *g_net;

static int io_send(void *arg, struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	struct net *n = g_net;
	int from = ikeh_side(arg);
	(void)c;
	if (from == 0 && n->p.pending_up)
		return -ENOTCONN;
	if (len > 19 && buf[18] == CREATE_CHILD_SA && !(buf[19] & IKE_FLAG_R))
		n->s[from].ccsa_req++;
	if (len > 19 && buf[18] == INFORMATIONAL && !(buf[19] & IKE_FLAG_R))
		n->s[from].info_req++;
	ikeh_enqueue(&n->p, !from, n->p.conn[!from], buf, len);
	return 0;
}

static void io_hold(void *arg, struct tcp_conn *c, bool carries)
{
	(void)c;
	g_net->s[ikeh_side(arg)].held = carries;
}

static const struct ike_io io = { .connect = ikeh_io_connect, .send = io_send, .close = ikeh_io_close,
				  .hold = io_hold, .addrs = ikeh_io_addrs, .arg = NULL };

#define pump(n) ikeh_pump(&(n)->p)
#define run_for(n, ms) ikeh_run_for(&(n)->p, (ms))

static struct config *gw_conf(bool initiator, const char *dh, const char *proposal)
{
	char p1x[512];
	snprintf(p1x, sizeof(p1x), "        set dpd disable\n%s", g_p1x[!initiator]);
	const struct ikeh_gw g = {
		.initiator = initiator,
		.localid = IKEH_LOCALID(initiator),
		.peerid = !initiator && g_b_any_peer ? NULL
			  : g_peerid[!initiator] ? g_peerid[!initiator] : IKEH_PEERID(initiator),
		.p1_extra = p1x,
		.dhgrp = dh,
		.proposal = proposal,
		.p2_extra = "        set pfs disable\n",
	};
	return ikeh_gw_conf(&g);
}

static struct net *net_new(void)
{
	struct net *n = g_net = calloc(1, sizeof(*n));
	assert_non_null(n);
	n->p.guard = 200;
	ikeh_open(&n->p, CONN_A, CONN_B, gw_conf(true, g_dh[0], NULL), gw_conf(false, g_dh[1], NULL), &io,
		  &ikeh_rec_ops);
	pump(n);
	return n;
}

static void net_free(struct net *n)
{
	ikeh_close(&n->p);
	free(n);
	g_net = NULL;
	unsetenv("IKETCP_TEST_IKE_LIFETIME_S");
	g_dh[0] = g_dh[1] = "19";
	g_p1x[0] = g_p1x[1] = "";
	g_peerid[0] = g_peerid[1] = NULL;
	g_b_any_peer = false;
}

/* gwB takes another configuration (a reload). */
static void reload_b(struct net *n, const char *dh, const char *proposal)
{
	struct config *c = gw_conf(false, dh, proposal);
	assert_int_equal(ike_configure(n->p.ike[1], c), 0);
	conf_free(n->p.conf[1]);
	n->p.conf[1] = c;
}

static unsigned nsas(struct net *n, int side)
{
	unsigned k = 0;
	for (struct ike_sa *sa = n->p.ike[side]->sas; sa; sa = sa->next)
		k++;
	return k;
}

static struct ike_sa *the_sa(struct net *n, int side)
{
	struct ike_sa *sa = n->p.ike[side]->sas;
	assert_non_null(sa);
	assert_null(sa->next);
	assert_int_equal(sa->state, SA_ESTABLISHED);
	assert_false(sa->rekeyed);
	return sa;
}

static const struct ike_child *only_child(struct net *n, int side)
{
	const struct ike_child *ch = NULL;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		if (!the_sa(n, side)->child[i].used)
			continue;
		assert_null(ch);
		ch = &the_sa(n, side)->child[i];
	}
	assert_non_null(ch);
	return ch;
}

struct snap {
	uint64_t spi_i, spi_r;
	uint32_t a_in, b_in;
};

static struct snap snap(struct net *n)
{
	struct snap s = { the_sa(n, 0)->spi_i, the_sa(n, 0)->spi_r, only_child(n, 0)->spi_in,
			  only_child(n, 1)->spi_in };
	return s;
}

/* Exactly one IKE SA on each side, the same one, with fresh SPIs; the CHILD SA pair as it was, not
 * reinstalled; message IDs counted from 0 on the new SA; the old SA gone on both sides. */
static void assert_rekeyed(struct net *n, const struct snap *old, bool a_initiated)
{
	struct ike_sa *a = the_sa(n, 0), *b = the_sa(n, 1);
	assert_true(a->spi_i == b->spi_i && a->spi_r == b->spi_r);
	assert_true(a->spi_i != old->spi_i && a->spi_i != old->spi_r);
	assert_true(a->spi_r != old->spi_i && a->spi_r != old->spi_r);
	assert_true(a->initiator == a_initiated && b->initiator == !a_initiated);
	assert_false(a->req_out || b->req_out || a->ike_rk_out || b->ike_rk_out);
	assert_int_equal(a->my_msg_id, 0);
	assert_int_equal(a->peer_msg_id, 0);
	assert_int_equal(b->my_msg_id, 0);
	assert_int_equal(b->peer_msg_id, 0);
	assert_true(a->suite.prf == b->suite.prf && a->suite.ke == b->suite.ke);
	assert_memory_equal(a->keys.sk_d->p, b->keys.sk_d->p, a->keys.sk_d->len);
	assert_null(ike_sa_find(n->p.ike[0], old->spi_i, old->spi_r, true));
	assert_null(ike_sa_find(n->p.ike[1], old->spi_i, old->spi_r, false));
	/* the CHILD SAs came along untouched */
	assert_int_equal(only_child(n, 0)->spi_in, old->a_in);
	assert_int_equal(only_child(n, 1)->spi_in, old->b_in);
	assert_int_equal(n->p.rec[0].installs, 1);
	assert_int_equal(n->p.rec[1].installs, 1);
	assert_int_equal(n->p.rec[0].removes + n->p.rec[1].removes, 0);
	assert_true(n->s[0].held && n->s[1].held);
	assert_string_equal(a->tun->name, "to-hq");
	assert_string_equal(b->tun->name, "branch");
}

/* The new SA works: an INFORMATIONAL each way, then a CHILD SA rekey on it. */
static void assert_usable(struct net *n)
{
	for (int side = 0; side < 2; side++) {
		struct ike_enc inner;
		uint32_t id = the_sa(n, side)->my_msg_id;
		assert_int_equal(the_sa(n, !side)->peer_msg_id, id);
		ike_inner_begin(n->p.ike[side], &inner);
		assert_int_equal(ike_request(the_sa(n, side), INFORMATIONAL, &inner), 0);
		pump(n);
		assert_false(the_sa(n, side)->req_out);
		assert_int_equal(the_sa(n, side)->my_msg_id, id + 1);
		assert_int_equal(the_sa(n, !side)->peer_msg_id, id + 1);
	}
	uint32_t a0 = only_child(n, 0)->spi_in;
	unsigned inst = n->p.rec[1].installs;
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a0), 0);
	pump(n);
	assert_int_not_equal(only_child(n, 0)->spi_in, a0);
	assert_int_equal(only_child(n, 0)->spi_in, only_child(n, 1)->spi_out);
	assert_int_equal(n->p.rec[1].installs, inst + 1);
	struct ikeh_rec_sa *da = ikeh_rec_find(&n->p.rec[0], only_child(n, 0)->spi_in);
	struct ikeh_rec_sa *db = ikeh_rec_find(&n->p.rec[1], only_child(n, 1)->spi_in);
	assert_non_null(da);
	assert_non_null(db);
	assert_memory_equal(da->km_out, db->km_in, da->km_out_len);
}

/* ---- rekeys ---------------------------------------------------------------------------- */

static void test_rekey_by_initiator(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct snap old = snap(n);
	uint8_t old_skd[64];
	size_t skd_len = the_sa(n, 0)->keys.sk_d->len;
	memcpy(old_skd, the_sa(n, 0)->keys.sk_d->p, skd_len);

	/* CREATE_CHILD_SA { SA(IKE) Ni KEi } -->  <-- { SA(IKE) Nr KEr }
	 * INFORMATIONAL { D(IKE) } --> (old SA)  <-- { } */
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), -EBUSY);
	assert_int_equal(ike_child_rekey(the_sa(n, 0), old.a_in), -EBUSY);
	pump(n);
	assert_rekeyed(n, &old, true);
	assert_memory_not_equal(the_sa(n, 0)->keys.sk_d->p, old_skd, skd_len);
	assert_int_equal(n->s[0].ccsa_req, 1);
	assert_int_equal(n->s[0].info_req, 1); /* the DELETE of the old SA */
	assert_int_equal(stats.ike.invalid_messages, 0);
	assert_usable(n);

	/* and again: a rekeyed SA is rekeyed like any other */
	old = snap(n);
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	pump(n);
	assert_true(the_sa(n, 0)->spi_i != old.spi_i);
	assert_true(the_sa(n, 0)->spi_i == the_sa(n, 1)->spi_i && the_sa(n, 0)->spi_r == the_sa(n, 1)->spi_r);
	assert_int_equal(nsas(n, 0) + nsas(n, 1), 2);
	net_free(n);
}

/* gwB (the TCP responder) rekeys: it becomes the new SA's original initiator (2.18). */
static void test_rekey_by_responder(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct snap old = snap(n);
	assert_int_equal(ike_rekey_ike(the_sa(n, 1)), 0);
	pump(n);
	assert_rekeyed(n, &old, false);
	assert_usable(n);
	/* gwA rekeys the SA gwB made */
	old = snap(n);
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	pump(n);
	assert_true(the_sa(n, 0)->initiator && !the_sa(n, 1)->initiator);
	assert_true(the_sa(n, 0)->spi_i == the_sa(n, 1)->spi_i && the_sa(n, 0)->spi_r == the_sa(n, 1)->spi_r);
	assert_true(the_sa(n, 1)->spi_r != old.spi_r);
	/* down on the new SA removes the CHILD SAs on both sides */
	const char *err = NULL;
	assert_int_equal(ike_down(n->p.ike[0], "to-hq", &err), 0);
	pump(n);
	assert_int_equal(nsas(n, 0) + nsas(n, 1), 0);
	assert_int_equal(n->p.rec[0].removes, n->p.rec[0].installs);
	assert_int_equal(n->p.rec[1].removes, n->p.rec[1].installs);
	net_free(n);
}

/* 2.8.2: both rekey at once: two new SAs, the lowest nonce's goes, one survives on both sides. */
static void test_simultaneous_rekey(void **state)
{
	(void)state;
	unsigned a_won = 0;
	for (int round = 0; round < 12; round++) {
		struct net *n = net_new();
		struct snap old = snap(n);
		assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
		assert_int_equal(ike_rekey_ike(the_sa(n, 1)), 0);
		pump(n);
		struct ike_sa *a = the_sa(n, 0), *b = the_sa(n, 1);
		a_won += a->initiator;
		assert_rekeyed(n, &old, a->initiator);
		assert_int_equal(n->s[0].ccsa_req, 1);
		assert_int_equal(n->s[1].ccsa_req, 1);
		/* one DELETE for the redundant SA, one for the old one */
		assert_int_equal(n->s[0].info_req + n->s[1].info_req, 2);
		assert_int_equal(stats.ike.invalid_messages, 0);
		(void)b;
		assert_usable(n);
		net_free(n);
	}
	/* both outcomes happen (each round 1/2; 12 rounds all one way: 1 in 2048) */
	assert_true(a_won > 0 && a_won < 12);
}

/* gwB's reload leaves only group 20: gwA's KEi (19) gets INVALID_KE_PAYLOAD(20), the retry works. */
static void test_invalid_ke_then_retry(void **state)
{
	(void)state;
	g_dh[0] = "19 20";
	g_dh[1] = "19 20";
	struct net *n = net_new();
	assert_int_equal(the_sa(n, 0)->suite.ke, 19);
	struct snap old = snap(n);
	reload_b(n, "20", NULL);
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	pump(n);
	assert_int_equal(n->s[0].ccsa_req, 2);
	assert_rekeyed(n, &old, true);
	assert_int_equal(the_sa(n, 0)->suite.ke, 20);
	assert_int_equal(the_sa(n, 1)->suite.ke, 20);
	assert_usable(n);
	net_free(n);

	/* No group in common: NO_PROPOSAL_CHOSEN, one request, the old SA stays and works. */
	n = net_new();
	old = snap(n);
	reload_b(n, "21", NULL);
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	pump(n);
	assert_int_equal(n->s[0].ccsa_req, 1);
	assert_non_null(ike_msg_find_notify(&n->p.ike[0]->msg, NO_PROPOSAL_CHOSEN));
	assert_int_equal(the_sa(n, 0)->spi_i, old.spi_i);
	assert_int_equal(the_sa(n, 1)->spi_r, old.spi_r);
	assert_false(the_sa(n, 0)->ike_rk_out);
	assert_true(loop_timer_armed(&the_sa(n, 0)->ike_rekey_timer)); /* tried again later */
	assert_null(the_sa(n, 0)->rk_dh);
	assert_usable(n);
	net_free(n);
}

static void test_no_proposal_keeps_old(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct snap old = snap(n);
	reload_b(n, "19", "aes256gcm-prfsha384");
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	pump(n);
	assert_non_null(ike_msg_find_notify(&n->p.ike[0]->msg, NO_PROPOSAL_CHOSEN));
	assert_int_equal(the_sa(n, 0)->spi_i, old.spi_i);
	assert_int_equal(nsas(n, 1), 1);
	assert_int_equal(n->p.rec[0].installs + n->p.rec[1].installs, 2);
	assert_usable(n);
	net_free(n);
}

static void test_rekey_by_timer(void **state)
{
	(void)state;
	setenv("IKETCP_TEST_IKE_LIFETIME_S", "2", 1);
	struct net *n = net_new();
	struct snap old = snap(n);
	/* 2 s life: each side's timer fires between 1.7 and 1.9 s; the first one rekeys. */
	run_for(n, 1500);
	assert_int_equal(the_sa(n, 0)->spi_i, old.spi_i);
	run_for(n, 600);
	assert_int_equal(nsas(n, 0), 1);
	assert_int_equal(nsas(n, 1), 1);
	assert_true(the_sa(n, 0)->spi_i != old.spi_i);
	assert_true(the_sa(n, 0)->spi_i == the_sa(n, 1)->spi_i && the_sa(n, 0)->spi_r == the_sa(n, 1)->spi_r);
	assert_int_equal(only_child(n, 0)->spi_in, old.a_in);
	uint64_t first = the_sa(n, 0)->spi_i;
	/* and the new SA has its own timer */
	run_for(n, 2000);
	assert_int_equal(nsas(n, 0), 1);
	assert_int_equal(nsas(n, 1), 1);
	assert_true(the_sa(n, 0)->spi_i != first);
	/* One request per rekey, or two when both timers fired before either request arrived (a loaded
	 * machine delays the harness): the collision rules then keep one SA. */
	assert_in_range(n->s[0].ccsa_req + n->s[1].ccsa_req, 2, 4);
	assert_int_equal(stats.ike.invalid_messages, 0);
	net_free(n);
}

/* keylife without a successful rekey: the SA is deleted (both sides), and a static tunnel will start again. */
static void test_expiry_without_rekey(void **state)
{
	(void)state;
	setenv("IKETCP_TEST_IKE_LIFETIME_S", "2", 1);
	struct net *n = net_new();
	reload_b(n, "19", "aes256gcm-prfsha384"); /* every rekey either way is refused: no proposal in common */
	run_for(n, 1600);
	assert_int_equal(nsas(n, 0), 1);
	assert_int_equal(stats.ike.sa_expired, 0);
	run_for(n, 700); /* past 2 s */
	assert_true(stats.ike.sa_expired >= 1); /* both ends have the timer: one or both */
	assert_int_equal(nsas(n, 0), 0);
	assert_int_equal(nsas(n, 1), 0); /* the DELETE reached gwB */
	assert_int_equal(n->p.rec[0].installs, n->p.rec[0].removes);
	net_free(n);
}

/* Window 1 on our side; TEMPORARY_FAILURE when the peer's exchange crosses ours (2.25). */
static void test_window_and_collisions(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct snap old = snap(n);
	struct ike_enc inner;
	ike_inner_begin(n->p.ike[0], &inner);
	assert_int_equal(ike_request(the_sa(n, 0), INFORMATIONAL, &inner), 0);
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), -EBUSY);
	pump(n);
	assert_int_equal(ike_child_rekey(the_sa(n, 0), old.a_in), 0);
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), -EBUSY);
	pump(n);
	assert_int_not_equal(only_child(n, 0)->spi_in, old.a_in);

	/* gwA rekeys a CHILD SA while gwB rekeys the IKE SA: both get TEMPORARY_FAILURE, nothing changes */
	old = snap(n);
	unsigned inst = n->p.rec[0].installs;
	assert_int_equal(ike_child_rekey(the_sa(n, 0), old.a_in), 0);
	assert_int_equal(ike_rekey_ike(the_sa(n, 1)), 0);
	n->p.hold_queue = true;
	ikeh_deliver(&n->p); /* gwA's CHILD SA rekey reaches gwB, which rekeys the IKE SA: 2.25.1 */
	ikeh_deliver(&n->p); /* gwB's IKE SA rekey reaches gwA, which rekeys a CHILD SA: 2.25.2 */
	for (int side = 0; side < 2; side++) {
		ikeh_deliver(&n->p);
		const struct ike_msg *m = &n->p.ike[side]->msg;
		assert_true(m->hdr.exchange == CREATE_CHILD_SA && ike_hdr_is_response(&m->hdr));
		assert_non_null(ike_msg_find_notify(m, TEMPORARY_FAILURE));
	}
	n->p.hold_queue = false;
	pump(n);
	assert_int_equal(the_sa(n, 0)->spi_i, old.spi_i);
	assert_int_equal(only_child(n, 0)->spi_in, old.a_in);
	assert_int_equal(only_child(n, 0)->rekey, CHILD_LIVE);
	assert_int_equal(n->p.rec[0].installs, inst);
	assert_true(loop_timer_armed(&the_sa(n, 1)->ike_rekey_timer));
	/* then, one at a time, both work */
	assert_int_equal(ike_rekey_ike(the_sa(n, 1)), 0);
	pump(n);
	assert_true(the_sa(n, 0)->spi_i != old.spi_i && the_sa(n, 1)->spi_i == the_sa(n, 0)->spi_i);
	assert_true(the_sa(n, 1)->initiator);
	assert_int_equal(only_child(n, 0)->spi_in, old.a_in);
	assert_int_equal(n->p.rec[0].installs, inst);
	net_free(n);
}

/* CREATE_CHILD_SA requests for an IKE SA rekey that gwA builds by hand (authentic, malformed):
 * each refused, the IKE SA as it was and still usable. */
enum bad { BAD_SPI_SIZE0, BAD_SPI_SIZE4, BAD_SPI_ZERO, BAD_NO_KE, BAD_KE_LEN, BAD_KE_POINT, BAD_REKEY_SA };

static void hostile(struct net *n, enum bad what, uint16_t answer)
{
	struct ike_sa *sa = the_sa(n, 0);
	const struct conf_phase1 *p1 = &n->p.conf[0]->phase1[0];
	struct snap old = snap(n);
	struct ike_enc inner;
	struct prop_buf pb;
	uint8_t nonce[32] = { 1 }, ke[64];
	uint64_t invalid = stats.ike.invalid_messages;

	assert_int_equal(ike_prop_build_ike(&pb, p1->proposals, p1->n_proposals, p1->dhgrp, p1->n_dhgrp), 0);
	for (unsigned i = 0; i < pb.sa.nprops; i++) {
		pb.props[i].spi_size = what == BAD_SPI_SIZE0 ? 0 : what == BAD_SPI_SIZE4 ? 4 : 8;
		memset(pb.props[i].spi, what == BAD_SPI_ZERO ? 0 : 0x42, 8);
	}
	ike_inner_begin(n->p.ike[0], &inner);
	if (what == BAD_REKEY_SA)
		ike_enc_notify(&inner, IKE_PROTO_ESP, (const uint8_t *)"\1\2\3\4", 4, REKEY_SA, NULL, 0);
	ike_enc_sa(&inner, &pb);
	ike_enc_data(&inner, IKE_PL_NONCE, nonce, sizeof(nonce));
	if (what != BAD_NO_KE) {
		struct ike_pl pl = { .type = IKE_PL_KE };
		memset(ke, 0xff, sizeof(ke)); /* not a point on P-256 */
		pl.u.ke = (struct ike_ke_pl){ 19, ke, what == BAD_KE_LEN ? 63 : sizeof(ke) };
		assert_int_equal(ike_pl_encode(&inner, &pl), 0);
	}
	assert_int_equal(ike_request(sa, CREATE_CHILD_SA, &inner), 0);
	pump(n);
	/* the last message gwA read is gwB's answer: <-- CREATE_CHILD_SA { N(answer) } */
	const struct ike_msg *m = &n->p.ike[0]->msg;
	assert_int_equal(m->hdr.exchange, CREATE_CHILD_SA);
	assert_true(ike_hdr_is_response(&m->hdr));
	assert_null(ike_msg_find(m, IKE_PL_SA, NULL));
	assert_non_null(ike_msg_find_notify(m, answer));
	assert_false(the_sa(n, 0)->req_out);
	assert_int_equal(nsas(n, 0), 1);
	assert_int_equal(nsas(n, 1), 1);
	assert_int_equal(the_sa(n, 1)->spi_r, old.spi_r);
	assert_int_equal(only_child(n, 1)->spi_in, old.b_in);
	if (what != BAD_NO_KE && what != BAD_REKEY_SA)
		assert_true(stats.ike.invalid_messages > invalid); /* counted at gwB */
}

static void test_hostile_ike_rekeys(void **state)
{
	(void)state;
	struct net *n = net_new();
	hostile(n, BAD_SPI_SIZE0, INVALID_SYNTAX); /* 3.3.1: an IKE SA rekey proposal without its SPI */
	hostile(n, BAD_SPI_SIZE4, INVALID_SYNTAX); /* a 4-octet IKE SPI: the codec rejects it */
	hostile(n, BAD_SPI_ZERO, INVALID_SYNTAX);
	hostile(n, BAD_NO_KE, INVALID_KE_PAYLOAD); /* no KEi: the group gwB wants */
	const struct ike_pl *g = ike_msg_find_notify(&n->p.ike[0]->msg, INVALID_KE_PAYLOAD);
	assert_int_equal(g->u.n.len, 2);
	assert_int_equal(g->u.n.data[0] << 8 | g->u.n.data[1], 19);
	hostile(n, BAD_KE_LEN, INVALID_SYNTAX);    /* KEi one octet short */
	hostile(n, BAD_KE_POINT, INVALID_SYNTAX);  /* KEi not on the curve */
	hostile(n, BAD_REKEY_SA, INVALID_SYNTAX);  /* N(REKEY_SA) without TS */
	assert_int_equal(n->p.rec[1].installs, 1);
	/* and a real rekey still works afterwards */
	struct snap old = snap(n);
	n->s[0].ccsa_req = 0;
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	pump(n);
	assert_rekeyed(n, &old, true);
	net_free(n);
}

static void test_status_shows_new_spis(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct snap old = snap(n);
	const char *err = NULL;
	assert_int_equal(ike_rekey(n->p.ike[0], "to-hq", &err), 0);
	assert_int_equal(ike_rekey(n->p.ike[0], "to-hq", &err), -1);
	assert_string_equal(err, "an exchange is in flight, try again");
	assert_int_equal(ike_rekey(n->p.ike[0], "nope", &err), -1);
	pump(n);
	char want[64], gone[64];
	for (int side = 0; side < 2; side++) {
		char *s = ikeh_status_json(n->p.ike[side], side ? "branch" : "to-hq");
		snprintf(want, sizeof(want), "\"spi_i\":\"%016llx\"", (unsigned long long)the_sa(n, side)->spi_i);
		snprintf(gone, sizeof(gone), "\"spi_i\":\"%016llx\"", (unsigned long long)old.spi_i);
		assert_non_null(strstr(s, want));
		assert_null(strstr(s, gone));
		assert_non_null(strstr(s, "\"state\":\"established\""));
		free(s);
	}
	net_free(n);
}

/* The old SA's DELETE never comes: gwB drops it after the response timeout, keeping the new SA. */
static void test_lost_delete(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct snap old = snap(n);
	n->p.hold_queue = true;
	assert_int_equal(ike_rekey_ike(the_sa(n, 0)), 0);
	ikeh_deliver(&n->p); /* the request to gwB */
	ikeh_deliver(&n->p); /* its answer to gwA, which DELETEs the old SA */
	assert_int_equal(n->p.qn, 1);
	ikeh_queue_clear(&n->p); /* lost */
	n->p.hold_queue = false;
	assert_int_equal(nsas(n, 1), 2);
	/* IKE_RESPONSE_TIMEOUT_MS later, on both sides: */
	for (int side = 0; side < 2; side++) {
		struct ike_sa *o = NULL;
		for (struct ike_sa *sa = n->p.ike[side]->sas; sa; sa = sa->next)
			if (sa->rekeyed)
				o = sa;
		assert_non_null(o);
		assert_true(loop_timer_armed(&o->timer));
		o->timer.cb(n->p.loop, &o->timer);
	}
	assert_int_equal(nsas(n, 0), 1);
	assert_int_equal(nsas(n, 1), 1);
	assert_true(the_sa(n, 1)->spi_i != old.spi_i);
	assert_int_equal(only_child(n, 1)->spi_in, old.b_in);
	assert_int_equal(n->p.rec[1].removes, 0);
	assert_true(n->s[1].held);
	net_free(n);
}

/* ---- INITIAL_CONTACT and a rejected AUTH ----------------------------------------------- */

/* gwA loses its state (a crash): its new IKE_AUTH carries INITIAL_CONTACT and gwB drops the stale SA. */
static void test_initial_contact(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct snap old = snap(n);
	ike_sa_free(the_sa(n, 0)); /* forgotten, nothing sent */
	assert_int_equal(nsas(n, 1), 1);
	const char *err = NULL;
	assert_int_equal(ike_up(n->p.ike[0], "to-hq", &err), 0);
	pump(n);
	struct ike_sa *b = the_sa(n, 1); /* only the new one */
	assert_true(b->spi_i != old.spi_i);
	assert_true(b->spi_i == the_sa(n, 0)->spi_i && b->spi_r == the_sa(n, 0)->spi_r);
	assert_null(ikeh_rec_find(&n->p.rec[1], old.b_in));
	assert_int_equal(n->p.rec[1].removes, 1);
	assert_int_equal(n->p.rec[1].installs, 2);
	assert_usable(n);

	/* A second IKE SA next to a live one carries no INITIAL_CONTACT: gwB keeps both. */
	struct ike_sa *live = the_sa(n, 0);
	struct ike_sa *extra = ike_sa_new(n->p.ike[0], true, n->p.conn[0]);
	assert_non_null(extra);
	extra->tun = live->tun;
	extra->spi_i = ike_sa_new_spi(n->p.ike[0]);
	extra->remote = live->remote;
	extra->state = SA_CONNECTING;
	assert_int_equal(ike_init_start(extra), 0);
	pump(n);
	assert_int_equal(nsas(n, 0), 2);
	assert_int_equal(nsas(n, 1), 2);
	for (struct ike_sa *sa = n->p.ike[1]->sas; sa; sa = sa->next)
		assert_int_equal(sa->state, SA_ESTABLISHED);
	net_free(n);
}

/*
 * A new IKE SA of gwA's whose IKE_AUTH gwB sees with the identity ID_FQDN id (gwA's own IKE_AUTH is
 * dropped: no localid can be this long): IKE_SA_INIT runs as usual, then
 *   IKE_AUTH { IDi(id) AUTH(psk) [N(INITIAL_CONTACT)] } --> gwB
 * is handed to gwB as its decrypted form. Returns gwB's SA, established.
 */
static struct ike_sa *auth_as(struct net *n, const uint8_t *id, size_t len, bool initial)
{
	static const char psk[] = "correct horse battery staple", pad[] = "Key Pad for IKEv2";
	struct ike *a = n->p.ike[0], *b = n->p.ike[1];
	struct ike_sa *xa = ike_sa_new(a, true, n->p.conn[0]), *sb = NULL;
	uint8_t body[4 + 512] = { ID_FQDN }, macid[IKE_PRF_MAX_OUT], key[IKE_PRF_MAX_OUT], auth[IKE_PRF_MAX_OUT];

	assert_non_null(xa);
	assert_true(len <= sizeof(body) - 4);
	xa->tun = ike_tunnel_find(a, "to-hq");
	xa->spi_i = ike_sa_new_spi(a);
	xa->state = SA_CONNECTING;
	assert_int_equal(ike_init_start(xa), 0);
	ikeh_deliver(&n->p); /* IKE_SA_INIT request --> gwB */
	ikeh_deliver(&n->p); /* <-- response, and gwA's own IKE_AUTH goes out: */
	ikeh_queue_clear(&n->p);
	for (struct ike_sa *sa = b->sas; sa; sa = sa->next)
		if (!sa->initiator && sa->spi_i == xa->spi_i)
			sb = sa;
	assert_non_null(sb);
	assert_int_equal(sb->state, SA_INIT_DONE);

	/* 2.15: AUTH = prf(prf(psk, "Key Pad for IKEv2"), IKE_SA_INIT request | Nr | prf(SK_pi, IDi body)) */
	const struct ike_prf_alg *prf = sb->suite.prf;
	memcpy(body + 4, id, len);
	struct ike_blob idb = { body, 4 + len }, padb = { (const uint8_t *)pad, sizeof(pad) - 1 };
	assert_int_equal(ike_prf(prf, sb->keys.sk_pi->p, sb->keys.sk_pi->len, &idb, 1, macid), 0);
	assert_int_equal(ike_prf(prf, (const uint8_t *)psk, sizeof(psk) - 1, &padb, 1, key), 0);
	struct ike_blob parts[] = { { sb->init_req, sb->init_req_len }, { sb->nr, sb->nr_len }, { macid, prf->out_len } };
	assert_int_equal(ike_prf(prf, key, prf->out_len, parts, ARRAY_SIZE(parts), auth), 0);

	struct ike_msg *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	m->hdr = (struct ike_hdr){ .spi_i = sb->spi_i, .spi_r = sb->spi_r, .exchange = IKE_AUTH, .flags = IKE_FLAG_I,
				   .msg_id = 1 };
	struct ike_pl *p = &m->pl[m->npl++];
	*p = (struct ike_pl){ .type = IKE_PL_IDI, .inner = true, .body = body, .body_len = 4 + len };
	p->u.id = (struct ike_id_pl){ ID_FQDN, body + 4, len };
	p = &m->pl[m->npl++];
	*p = (struct ike_pl){ .type = IKE_PL_AUTH, .inner = true };
	p->u.auth = (struct ike_auth_pl){ AUTH_PSK, auth, prf->out_len };
	if (initial) {
		p = &m->pl[m->npl++];
		*p = (struct ike_pl){ .type = IKE_PL_N, .inner = true };
		p->u.n.type = INITIAL_CONTACT;
	}
	uint64_t spi_r = sb->spi_r;
	ike_auth_request(sb, m); /* frees sb when AUTH does not verify */
	free(m);
	ikeh_queue_clear(&n->p); /* gwB's answer: gwA's SA could not check it */
	ike_sa_free(xa);
	for (sb = b->sas; sb && sb->spi_r != spi_r; sb = sb->next)
		;
	assert_non_null(sb);
	assert_int_equal(sb->state, SA_ESTABLISHED);
	return sb;
}

static bool b_has(struct net *n, uint64_t spi_r)
{
	for (struct ike_sa *sa = n->p.ike[1]->sas; sa; sa = sa->next)
		if (sa->spi_r == spi_r)
			return true;
	return false;
}

/* 3.10.1 with identities longer than the IKE_ID_MAX octets gwB keeps for status (long DER DNs): two
 * peers whose IDs differ only after that must not be taken for one, so one's INITIAL_CONTACT leaves
 * the other's IKE SA alone; the same long ID's INITIAL_CONTACT still removes its stale SA. */
static void test_initial_contact_long_ids(void **state)
{
	(void)state;
	g_b_any_peer = true;
	struct net *n = net_new();
	uint8_t x[300], y[300];
	memset(x, 'a', sizeof(x));
	x[sizeof(x) - 1] = 'x';
	memcpy(y, x, sizeof(y));
	y[sizeof(y) - 1] = 'y';

	uint64_t sa_x = auth_as(n, x, sizeof(x), false)->spi_r;
	uint64_t sa_y = auth_as(n, y, sizeof(y), true)->spi_r;
	assert_int_equal(nsas(n, 1), 3);
	assert_true(b_has(n, sa_x));
	assert_true(b_has(n, sa_y));

	uint64_t sa_x2 = auth_as(n, x, sizeof(x), true)->spi_r;
	assert_false(b_has(n, sa_x));
	assert_true(b_has(n, sa_x2));
	assert_true(b_has(n, sa_y));
	assert_int_equal(nsas(n, 1), 3);
	net_free(n);
}

/* 2.21.2: gwA rejects gwB's AUTH (gwB's ID is not its peerid) after gwB completed the SA: gwA says
 * AUTHENTICATION_FAILED in an INFORMATIONAL and gwB removes the SA and its CHILD SA. */
static void test_initiator_rejects_auth(void **state)
{
	(void)state;
	g_peerid[0] = "someone-else.example";
	struct net *n = net_new();
	assert_int_equal(nsas(n, 0), 0);
	assert_int_equal(nsas(n, 1), 0);
	assert_int_equal(n->p.rec[1].installs, 1); /* gwB had installed its CHILD SA */
	assert_int_equal(n->p.rec[1].removes, 1);
	assert_int_equal(n->p.rec[0].installs, 0);
	assert_int_equal(n->s[0].info_req, 1);
	assert_int_equal(stats.ike.auth_failures, 2); /* one on each side */
	net_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rekey_by_initiator),
		cmocka_unit_test(test_rekey_by_responder),
		cmocka_unit_test(test_simultaneous_rekey),
		cmocka_unit_test(test_invalid_ke_then_retry),
		cmocka_unit_test(test_no_proposal_keeps_old),
		cmocka_unit_test(test_rekey_by_timer),
		cmocka_unit_test(test_expiry_without_rekey),
		cmocka_unit_test(test_window_and_collisions),
		cmocka_unit_test(test_hostile_ike_rekeys),
		cmocka_unit_test(test_status_shows_new_spis),
		cmocka_unit_test(test_lost_delete),
		cmocka_unit_test(test_initial_contact),
		cmocka_unit_test(test_initial_contact_long_ids),
		cmocka_unit_test(test_initiator_rejects_auth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
