/*
 * CHILD SA rekeying and additional CHILD SAs with CREATE_CHILD_SA (RFC 7296
 * 1.3.1, 1.3.3, 2.8, 2.8.1). gwA (static initiator) and gwB (dynamic
 * responder) run in one process over an in-memory pipe; the dataplane is the
 * harness's recorder (ikeh_rec_ops): every install and removal, in order,
 * with its keys.
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
#include "iketcp/json.h"
#include "iketcp/stats.h"
#include "loop.h"
#include "tests/lib/ike_harness.h"

/* ---- the pipe ------------------------------------------------------------------------ */

struct net {
	struct ikeh_pipe p;   /* p.rec[side]: that side's recorded CHILD SAs */
	unsigned ccsa_req[2]; /* CREATE_CHILD_SA requests sent by each side */
};

/* The phase2 pfs / dhgrp lines of gwA and gwB for the next net_new. */
static const char *g_pfs[2] = { "set pfs disable", "set pfs disable" };

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
		n->ccsa_req[from]++;
	ikeh_enqueue(&n->p, !from, n->p.conn[!from], buf, len);
	return 0;
}

static const struct ike_io io = { .connect = ikeh_io_connect, .send = io_send, .close = ikeh_io_close,
				  .hold = ikeh_io_hold, .addrs = ikeh_io_addrs, .arg = NULL };

#define pump(n) ikeh_pump(&(n)->p)

#define run_for(n, ms) ikeh_run_for(&(n)->p, (ms))

/* ---- configurations ---------------------------------------------------------------- */

static struct config *gw_conf(bool initiator, const char *p2_proposal, const char *p2_extra)
{
	char pfs[128];
	snprintf(pfs, sizeof(pfs), "        %s\n", g_pfs[!initiator]);
	const struct ikeh_gw g = {
		.initiator = initiator,
		.localid = IKEH_LOCALID(initiator),
		.peerid = IKEH_PEERID(initiator),
		.p1_extra = "        set dpd disable\n",
		.p2proposal = p2_proposal,
		.p2_extra = pfs,
		.after_p2 = p2_extra,
	};
	return ikeh_gw_conf(&g);
}

static struct net *net_new_p2(const char *a_extra, const char *b_extra)
{
	struct net *n = g_net = calloc(1, sizeof(*n));
	assert_non_null(n);
	n->p.guard = 200;
	ikeh_open(&n->p, CONN_A, CONN_B, gw_conf(true, "aes128gcm", a_extra),
		  gw_conf(false, "aes128gcm", b_extra), &io, &ikeh_rec_ops);
	pump(n);
	return n;
}

static struct net *net_new(void)
{
	return net_new_p2(NULL, NULL);
}

static void net_free(struct net *n)
{
	ikeh_close(&n->p);
	free(n);
	g_net = NULL;
	unsetenv("IKETCP_TEST_CHILD_LIFETIME_S");
	g_pfs[0] = g_pfs[1] = "set pfs disable";
}

static struct ike_sa *the_sa(struct net *n, int side)
{
	struct ike_sa *sa = n->p.ike[side]->sas;
	assert_non_null(sa);
	assert_null(sa->next);
	assert_int_equal(sa->state, SA_ESTABLISHED);
	return sa;
}

static unsigned nchildren(struct net *n, int side)
{
	unsigned c = 0;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++)
		c += the_sa(n, side)->child[i].used;
	return c;
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

/* Both ends agree: one pair, A's out is B's in with the same keys, and each
 * side's IKE state matches its dataplane. */
static void assert_pair(struct net *n)
{
	const struct ike_child *a = only_child(n, 0), *b = only_child(n, 1);
	assert_int_equal(a->spi_in, b->spi_out);
	assert_int_equal(a->spi_out, b->spi_in);
	assert_int_equal(ikeh_rec_present(&n->p.rec[0]), 1);
	assert_int_equal(ikeh_rec_present(&n->p.rec[1]), 1);
	struct ikeh_rec_sa *da = ikeh_rec_find(&n->p.rec[0], a->spi_in);
	struct ikeh_rec_sa *db = ikeh_rec_find(&n->p.rec[1], b->spi_in);
	assert_non_null(da);
	assert_non_null(db);
	assert_int_equal(da->km_out_len, db->km_in_len);
	assert_memory_equal(da->km_out, db->km_in, da->km_out_len);
	assert_int_equal(da->km_in_len, db->km_out_len);
	assert_memory_equal(da->km_in, db->km_out, da->km_in_len);
	assert_memory_not_equal(da->km_in, da->km_out, da->km_in_len);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_rekey(void **state)
{
	(void)state;
	struct net *n = net_new();
	assert_pair(n);
	struct ike_child a0 = *only_child(n, 0), b0 = *only_child(n, 1);
	struct ikeh_rec_sa olda = *ikeh_rec_find(&n->p.rec[0], a0.spi_in);
	struct ikeh_rec_sa oldb = *ikeh_rec_find(&n->p.rec[1], b0.spi_in);

	/* CREATE_CHILD_SA { N(REKEY_SA) SA Ni TSi TSr } -->  <-- { SA Nr TSi TSr }
	 * INFORMATIONAL { D(ESP old) } -->  <-- { D(ESP old) } */
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a0.spi_in), 0);
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a0.spi_in), -ENOENT); /* already being rekeyed */
	pump(n);
	assert_pair(n);
	const struct ike_child *a1 = only_child(n, 0), *b1 = only_child(n, 1);
	assert_int_not_equal(a1->spi_in, a0.spi_in);
	assert_int_not_equal(a1->spi_out, a0.spi_out);
	assert_string_equal(a1->phase2, "to-hq-lan");
	assert_string_equal(b1->phase2, "branch-lan");
	assert_int_equal(n->p.rec[0].installs, 2);
	assert_int_equal(n->p.rec[1].installs, 2);
	assert_int_equal(n->p.rec[0].removes, 1);
	assert_int_equal(n->p.rec[1].removes, 1);

	/* Fresh keys in both directions. */
	struct ikeh_rec_sa *na = ikeh_rec_find(&n->p.rec[0], a1->spi_in);
	struct ikeh_rec_sa *nb = ikeh_rec_find(&n->p.rec[1], b1->spi_in);
	assert_memory_not_equal(na->km_in, olda.km_in, na->km_in_len);
	assert_memory_not_equal(na->km_out, olda.km_out, na->km_out_len);
	assert_memory_not_equal(nb->km_in, oldb.km_in, nb->km_in_len);

	/* Make before break: each side installed the new pair before the old went, and
	 * the old one went only after both sides had the new one. */
	struct ikeh_rec_sa *gone_a = NULL, *gone_b = NULL;
	for (unsigned i = 0; i < n->p.rec[0].n; i++)
		if (n->p.rec[0].sa[i].spi_in == a0.spi_in)
			gone_a = &n->p.rec[0].sa[i];
	for (unsigned i = 0; i < n->p.rec[1].n; i++)
		if (n->p.rec[1].sa[i].spi_in == b0.spi_in)
			gone_b = &n->p.rec[1].sa[i];
	assert_non_null(gone_a);
	assert_non_null(gone_b);
	assert_false(gone_a->present || gone_b->present);
	unsigned both_new = na->installed_at > nb->installed_at ? na->installed_at : nb->installed_at;
	assert_true(gone_a->removed_at > both_new);
	assert_true(gone_b->removed_at > both_new);
	assert_int_equal(stats.ike.invalid_messages, 0);

	/* And again: a rekeyed SA is rekeyed like any other. */
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a1->spi_in), 0);
	pump(n);
	assert_pair(n);
	assert_int_equal(n->p.rec[0].installs, 3);
	assert_int_equal(n->p.rec[1].removes, 2);
	net_free(n);
}

static void test_responder_rekeys(void **state)
{
	(void)state;
	struct net *n = net_new();
	uint32_t old = only_child(n, 1)->spi_in;
	assert_int_equal(ike_child_rekey(the_sa(n, 1), old), 0);
	pump(n);
	assert_pair(n);
	assert_int_not_equal(only_child(n, 1)->spi_in, old);
	assert_int_equal(n->p.rec[0].removes, 1);
	assert_int_equal(n->p.rec[1].removes, 1);
	net_free(n);
}

static void test_rekey_by_timer(void **state)
{
	(void)state;
	setenv("IKETCP_TEST_CHILD_LIFETIME_S", "2", 1);
	struct net *n = net_new();
	uint32_t first = only_child(n, 0)->spi_in;
	/* 2 s life: rekeyed between 1.6 and 1.8 s, on each side's own timer. */
	run_for(n, 1500);
	assert_int_equal(only_child(n, 0)->spi_in, first);
	run_for(n, 2600);
	assert_pair(n);
	assert_int_not_equal(only_child(n, 0)->spi_in, first);
	assert_true(n->p.rec[0].installs >= 3); /* at least two rekeys in 4.1 s */
	assert_int_equal(n->p.rec[0].installs - n->p.rec[0].removes, 1);
	assert_int_equal(n->p.rec[1].installs - n->p.rec[1].removes, 1);
	assert_int_equal(stats.ike.invalid_messages, 0);
	net_free(n);
}

/* 2.8.1: both ends rekey the same SA at once; the lowest nonce's SA goes. */
static void test_simultaneous_rekey(void **state)
{
	(void)state;
	for (int round = 0; round < 8; round++) {
		struct net *n = net_new();
		uint32_t a0 = only_child(n, 0)->spi_in, b0 = only_child(n, 1)->spi_in;
		assert_int_equal(ike_child_rekey(the_sa(n, 0), a0), 0);
		assert_int_equal(ike_child_rekey(the_sa(n, 1), b0), 0);
		pump(n);
		assert_pair(n);
		assert_int_not_equal(only_child(n, 0)->spi_in, a0);
		assert_int_not_equal(only_child(n, 1)->spi_in, b0);
		/* two new pairs were made, one survives; the old one and the loser are gone */
		assert_int_equal(n->p.rec[0].installs, 3);
		assert_int_equal(n->p.rec[1].installs, 3);
		assert_int_equal(n->p.rec[0].removes, 2);
		assert_int_equal(n->p.rec[1].removes, 2);
		assert_false(the_sa(n, 0)->req_out || the_sa(n, 1)->req_out);
		assert_int_equal(stats.ike.invalid_messages, 0);
		net_free(n);
	}
}

static void test_child_sa_not_found(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct ike_sa *sb = the_sa(n, 1);
	/* gwB forgets the CHILD SA (as after a lost DELETE): gwA's rekey names an SPI it does not know. */
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++)
		if (sb->child[i].used)
			sb->child[i].spi_out ^= 0x5a5a;
	uint32_t a0 = only_child(n, 0)->spi_in;
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a0), 0);
	pump(n);
	/* refused: gwA keeps its SA, nothing installed or removed anywhere */
	assert_int_equal(only_child(n, 0)->spi_in, a0);
	assert_int_equal(only_child(n, 0)->rekey, CHILD_LIVE);
	assert_true(only_child(n, 0)->rekey_ms > loop_now_ms(n->p.loop));
	assert_int_equal(n->p.rec[0].installs + n->p.rec[1].installs, 2);
	assert_int_equal(n->p.rec[0].removes + n->p.rec[1].removes, 0);
	assert_false(the_sa(n, 0)->rk_out);
	net_free(n);
}

static void test_no_proposal_chosen_keeps_old(void **state)
{
	(void)state;
	struct net *n = net_new();
	uint32_t a0 = only_child(n, 0)->spi_in, b0 = only_child(n, 1)->spi_in;
	/* gwB's phase2 now wants another cipher (a reload): the rekey finds no proposal. */
	struct config *c = gw_conf(false, "aes256gcm", NULL);
	assert_int_equal(ike_configure(n->p.ike[1], c), 0);
	conf_free(n->p.conf[1]);
	n->p.conf[1] = c;
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a0), 0);
	pump(n);
	assert_int_equal(only_child(n, 0)->spi_in, a0);
	assert_int_equal(only_child(n, 1)->spi_in, b0);
	assert_int_equal(only_child(n, 0)->rekey, CHILD_LIVE);
	assert_int_equal(n->p.rec[0].installs + n->p.rec[1].installs, 2);
	assert_int_equal(n->p.rec[0].removes + n->p.rec[1].removes, 0);
	/* the IKE SA is fine: the next exchange works */
	struct ike_enc inner;
	ike_inner_begin(n->p.ike[0], &inner);
	assert_int_equal(ike_request(the_sa(n, 0), INFORMATIONAL, &inner), 0);
	pump(n);
	assert_false(the_sa(n, 0)->req_out);
	net_free(n);
}

static void test_busy_window(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct ike_enc inner;
	ike_inner_begin(n->p.ike[0], &inner);
	assert_int_equal(ike_request(the_sa(n, 0), INFORMATIONAL, &inner), 0);
	assert_int_equal(ike_child_rekey(the_sa(n, 0), only_child(n, 0)->spi_in), -EBUSY);
	assert_int_equal(ike_child_rekey(the_sa(n, 0), 0x12345678), -ENOENT);
	pump(n);
	assert_int_equal(ike_child_rekey(the_sa(n, 0), only_child(n, 0)->spi_in), 0);
	pump(n);
	assert_pair(n);
	net_free(n);
}

/* CREATE_CHILD_SA without REKEY_SA: an additional CHILD SA for a second phase2. */
static void test_additional_child(void **state)
{
	(void)state;
	const char *a2 = "    edit \"to-hq-dmz\"\n"
			 "        set phase1name \"to-hq\"\n"
			 "        set proposal aes256gcm\n"
			 "        set pfs disable\n"
			 "        set src-subnet 10.1.9.0 255.255.255.0\n"
			 "        set dst-subnet 10.2.9.0 255.255.255.0\n"
			 "    next\n";
	const char *b2 = "    edit \"branch-dmz\"\n"
			 "        set phase1name \"branch\"\n"
			 "        set proposal aes128gcm aes256gcm\n"
			 "        set pfs disable\n"
			 "        set src-subnet 10.2.0.0 255.255.0.0\n"
			 "        set dst-subnet 10.1.0.0 255.255.0.0\n"
			 "    next\n";
	struct net *n = net_new_p2(a2, b2);
	assert_int_equal(nchildren(n, 0), 1);
	assert_int_equal(ike_child_create(the_sa(n, 0), 1), 0);
	pump(n);
	assert_int_equal(nchildren(n, 0), 2);
	assert_int_equal(nchildren(n, 1), 2);
	assert_int_equal(ikeh_rec_present(&n->p.rec[1]), 2);
	bool found = false;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		const struct ike_child *b = &the_sa(n, 1)->child[i];
		if (b->used && !strcmp(b->phase2, "branch-dmz")) {
			found = true;
			assert_string_equal(b->proposal, "AES_GCM_16_256");
			struct ikeh_rec_sa *db = ikeh_rec_find(&n->p.rec[1], b->spi_in);
			struct ikeh_rec_sa *da = ikeh_rec_find(&n->p.rec[0], b->spi_out);
			assert_non_null(db);
			assert_non_null(da);
			assert_memory_equal(da->km_out, db->km_in, da->km_out_len);
		}
	}
	assert_true(found);
	assert_int_equal(n->p.rec[0].removes + n->p.rec[1].removes, 0);

	/* a selector gwB has no phase2 for: TS_UNACCEPTABLE, nothing installed */
	struct ike_sa *sa = the_sa(n, 0);
	char *saved = n->p.conf[1]->phase2[1].name;
	n->p.conf[1]->phase2[1].phase1_index = 99; /* gwB's dmz entry no longer belongs to this phase1 */
	assert_int_equal(ike_child_create(sa, 1), 0);
	pump(n);
	n->p.conf[1]->phase2[1].phase1_index = 0;
	(void)saved;
	assert_int_equal(nchildren(n, 0), 2);
	assert_int_equal(n->p.rec[1].installs, 2);
	net_free(n);
}

/* pfs enable: KEi/KEr of group 19, KEYMAT with the new g^ir. */
static void test_rekey_pfs(void **state)
{
	(void)state;
	g_pfs[0] = g_pfs[1] = "set pfs enable\n        set dhgrp 19";
	struct net *n = net_new();
	struct ikeh_rec_sa old = *ikeh_rec_find(&n->p.rec[0], only_child(n, 0)->spi_in);
	assert_int_equal(ike_child_rekey(the_sa(n, 0), old.spi_in), 0);
	pump(n);
	assert_pair(n);
	struct ikeh_rec_sa *now = ikeh_rec_find(&n->p.rec[0], only_child(n, 0)->spi_in);
	assert_int_not_equal(now->spi_in, old.spi_in);
	assert_memory_not_equal(now->km_in, old.km_in, now->km_in_len);
	assert_int_equal(n->ccsa_req[0], 1);
	assert_null(the_sa(n, 0)->rk_dh);
	/* the responder rekeys with PFS too */
	assert_int_equal(ike_child_rekey(the_sa(n, 1), only_child(n, 1)->spi_in), 0);
	pump(n);
	assert_pair(n);
	assert_int_equal(n->p.rec[1].installs, 3);
	net_free(n);
}

/* One side wants PFS, the other not: NO_PROPOSAL_CHOSEN, the old SA stays. */
static void test_pfs_mismatch(void **state)
{
	(void)state;
	for (int side = 0; side < 2; side++) {
		g_pfs[side] = "set pfs enable\n        set dhgrp 19";
		struct net *n = net_new();
		uint32_t a0 = only_child(n, 0)->spi_in;
		assert_int_equal(ike_child_rekey(the_sa(n, 0), a0), 0);
		pump(n);
		assert_int_equal(only_child(n, 0)->spi_in, a0);
		assert_int_equal(only_child(n, 0)->rekey, CHILD_LIVE);
		assert_int_equal(n->p.rec[0].installs + n->p.rec[1].installs, 2);
		assert_int_equal(n->p.rec[0].removes + n->p.rec[1].removes, 0);
		net_free(n);
	}
}

/* gwA sends KEi of group 19, gwB takes only 20: INVALID_KE_PAYLOAD(20), then a second request with 20. */
static void test_pfs_invalid_ke_retry(void **state)
{
	(void)state;
	g_pfs[0] = "set pfs enable\n        set dhgrp 19 20";
	g_pfs[1] = "set pfs enable\n        set dhgrp 20";
	struct net *n = net_new();
	uint32_t a0 = only_child(n, 0)->spi_in;
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a0), 0);
	pump(n);
	assert_int_equal(n->ccsa_req[0], 2);
	assert_pair(n);
	assert_int_not_equal(only_child(n, 0)->spi_in, a0);
	assert_int_equal(n->p.rec[0].removes, 1);
	assert_int_equal(n->p.rec[1].removes, 1);
	net_free(n);

	/* No group in common: NO_PROPOSAL_CHOSEN (3.10.1: INVALID_KE only names an acceptable group), no second try. */
	g_pfs[0] = "set pfs enable\n        set dhgrp 19";
	g_pfs[1] = "set pfs enable\n        set dhgrp 20";
	n = net_new();
	a0 = only_child(n, 0)->spi_in;
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a0), 0);
	pump(n);
	assert_int_equal(n->ccsa_req[0], 1);
	assert_int_equal(only_child(n, 0)->spi_in, a0);
	assert_int_equal(n->p.rec[0].installs + n->p.rec[1].installs, 2);
	net_free(n);
}

/* Requests gwA builds by hand (authentic, odd): each refused, nothing installed, the IKE SA fine. */
static void hostile(struct net *n, uint8_t rk_proto, uint8_t rk_spi_size, bool with_ts, bool bad_ke)
{
	struct ike_sa *sa = the_sa(n, 0);
	const struct ike_child *ch = only_child(n, 0);
	const struct conf_phase2 *p2 = &n->p.conf[0]->phase2[0];
	struct ike_enc inner;
	struct prop_buf pb;
	struct child_ts l[CHILD_MAX_TS], r[CHILD_MAX_TS];
	uint8_t spi[8] = { (uint8_t)(ch->spi_in >> 24), (uint8_t)(ch->spi_in >> 16), (uint8_t)(ch->spi_in >> 8),
			   (uint8_t)ch->spi_in }, nonce[32] = { 1 }, ke[64];
	unsigned installs = n->p.rec[1].installs;

	ike_inner_begin(n->p.ike[0], &inner);
	if (rk_proto)
		ike_enc_notify(&inner, rk_proto, spi, rk_spi_size, REKEY_SA, NULL, 0);
	assert_int_equal(ike_prop_build_esp_ke(&pb, p2->proposals, p2->n_proposals, 0x01020304, p2->dhgrp,
					       bad_ke ? 1 : 0), 0);
	ike_enc_sa(&inner, &pb);
	ike_enc_data(&inner, IKE_PL_NONCE, nonce, sizeof(nonce));
	if (bad_ke) {
		struct ike_pl pl = { .type = IKE_PL_KE };
		memset(ke, 0xff, sizeof(ke)); /* not a point on P-256 */
		pl.u.ke = (struct ike_ke_pl){ 19, ke, sizeof(ke) };
		assert_int_equal(ike_pl_encode(&inner, &pl), 0);
	}
	if (with_ts) {
		unsigned k = ike_p2_selectors(p2, l, r);
		ike_enc_ts(&inner, IKE_PL_TSI, l, k);
		ike_enc_ts(&inner, IKE_PL_TSR, r, k);
	}
	assert_int_equal(ike_request(sa, CREATE_CHILD_SA, &inner), 0);
	pump(n);
	assert_false(the_sa(n, 0)->req_out);
	assert_int_equal(n->p.rec[1].installs, installs);
	assert_int_equal(nchildren(n, 1), 1);
	assert_int_equal(only_child(n, 1)->rekey, CHILD_LIVE);
}

static void test_hostile_requests(void **state)
{
	(void)state;
	g_pfs[0] = g_pfs[1] = "set pfs enable\n        set dhgrp 19";
	struct net *n = net_new();
	hostile(n, IKE_PROTO_AH, 4, true, true);  /* REKEY_SA for AH: CHILD_SA_NOT_FOUND */
	hostile(n, IKE_PROTO_ESP, 8, true, true); /* an 8-octet SPI: CHILD_SA_NOT_FOUND or INVALID_SYNTAX */
	hostile(n, IKE_PROTO_ESP, 4, true, true); /* KEi not on the curve: NO_PROPOSAL_CHOSEN */
	hostile(n, IKE_PROTO_ESP, 4, true, false); /* pfs enable without KEi: NO_PROPOSAL_CHOSEN */
	hostile(n, 0, 0, false, true);            /* no TS (an IKE SA rekey): NO_ADDITIONAL_SAS */
	/* and a real rekey still works afterwards */
	assert_int_equal(ike_child_rekey(the_sa(n, 0), only_child(n, 0)->spi_in), 0);
	pump(n);
	assert_pair(n);
	assert_int_equal(n->p.rec[1].installs, 2);
	net_free(n);
}

/* A reload that adds a phase2 entry before to-hq-dmz moves it to another index: its CHILD SA must still be
 * rekeyed (it follows its entry by name), not left to expire at its hard lifetime. */
static void test_rekey_after_reload_moves_phase2(void **state)
{
	(void)state;
	const char *dmz = "    edit \"to-hq-dmz\"\n"
			  "        set phase1name \"to-hq\"\n"
			  "        set proposal aes128gcm\n"
			  "        set pfs disable\n"
			  "        set src-subnet 10.1.9.0 255.255.255.0\n"
			  "        set dst-subnet 10.2.9.0 255.255.255.0\n"
			  "    next\n";
	const char *b2 = "    edit \"branch-dmz\"\n"
			 "        set phase1name \"branch\"\n"
			 "        set proposal aes128gcm\n"
			 "        set pfs disable\n"
			 "        set src-subnet 10.2.9.0 255.255.255.0\n"
			 "        set dst-subnet 10.1.9.0 255.255.255.0\n"
			 "    next\n";
	char moved[1024];
	snprintf(moved, sizeof(moved),
		 "    edit \"to-hq-voice\"\n"
		 "        set phase1name \"to-hq\"\n"
		 "        set proposal aes128gcm\n"
		 "        set pfs disable\n"
		 "        set src-subnet 10.1.8.0 255.255.255.0\n"
		 "        set dst-subnet 10.2.8.0 255.255.255.0\n"
		 "    next\n%s",
		 dmz);
	struct net *n = net_new_p2(dmz, b2);
	assert_int_equal(ike_child_create(the_sa(n, 0), 1), 0);
	pump(n);
	assert_int_equal(nchildren(n, 0), 2);
	uint32_t dmz_in = 0;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++)
		if (the_sa(n, 0)->child[i].used && !strcmp(the_sa(n, 0)->child[i].phase2, "to-hq-dmz"))
			dmz_in = the_sa(n, 0)->child[i].spi_in;
	assert_int_not_equal(dmz_in, 0);

	/* gwA reloads: to-hq-voice now sits where to-hq-dmz was (index 1), to-hq-dmz is index 2. */
	struct config *c = gw_conf(true, "aes128gcm", moved);
	assert_int_equal(ike_configure(n->p.ike[0], c), 0);
	conf_free(n->p.conf[0]);
	n->p.conf[0] = c;
	assert_string_equal(c->phase2[2].name, "to-hq-dmz");

	/* CREATE_CHILD_SA { N(REKEY_SA) SA Ni TSi TSr } -->  <-- { SA Nr TSi TSr }, then the DELETE */
	assert_int_equal(ike_child_rekey(the_sa(n, 0), dmz_in), 0);
	pump(n);
	assert_int_equal(nchildren(n, 0), 2);
	assert_int_equal(nchildren(n, 1), 2);
	assert_int_equal(n->p.rec[0].installs, 3);
	assert_int_equal(n->p.rec[1].installs, 3);
	assert_null(ikeh_rec_find(&n->p.rec[0], dmz_in));
	bool found = false;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		const struct ike_child *ch = &the_sa(n, 0)->child[i];
		if (ch->used && !strcmp(ch->phase2, "to-hq-dmz")) {
			found = true;
			assert_int_not_equal(ch->spi_in, dmz_in);
			assert_int_equal(ch->p2, 2);
		}
	}
	assert_true(found);
	net_free(n);
}

/* gwB made the CHILD SA gwA asked for, but its answer no longer fits gwA's phase2 (narrowed by a reload while
 * the request was out): gwA takes nothing and DELETEs gwB's half, which would otherwise carry gwB's traffic
 * into an SA gwA does not have, for its whole lifetime. */
static void test_rejected_answer_is_deleted(void **state)
{
	(void)state;
	const char *a2 = "    edit \"to-hq-dmz\"\n"
			 "        set phase1name \"to-hq\"\n"
			 "        set proposal aes128gcm\n"
			 "        set pfs disable\n"
			 "        set src-subnet 10.1.9.0 255.255.255.0\n"
			 "        set dst-subnet 10.2.9.0 255.255.255.0\n"
			 "    next\n";
	const char *b2 = "    edit \"branch-dmz\"\n"
			 "        set phase1name \"branch\"\n"
			 "        set proposal aes128gcm\n"
			 "        set pfs disable\n"
			 "        set src-subnet 10.2.9.0 255.255.255.0\n"
			 "        set dst-subnet 10.1.9.0 255.255.255.0\n"
			 "    next\n";
	struct net *n = net_new_p2(a2, b2);

	/* CREATE_CHILD_SA { SA Ni TSi TSr } -->  <-- { SA Nr TSi(10.1.9.0/24) TSr(10.2.9.0/24) }
	 * INFORMATIONAL { D(ESP gwB's new SA) } -->  <-- { D(ESP) } */
	assert_int_equal(ike_child_create(the_sa(n, 0), 1), 0);
	n->p.conf[0]->phase2[1].dst_subnet.prefix_len = 25; /* TSr 10.2.9.0/24 is no longer inside */
	pump(n);
	assert_int_equal(nchildren(n, 0), 1);
	assert_int_equal(nchildren(n, 1), 1);
	assert_int_equal(n->p.rec[1].installs, 2);
	assert_int_equal(ikeh_rec_present(&n->p.rec[1]), 1);
	assert_int_equal(n->p.rec[0].installs, 1);
	net_free(n);
}

/* The same for IKE_AUTH's CHILD SA: the IKE SA comes up on both sides, gwB's CHILD SA is DELETEd. */
static void test_rejected_auth_child_is_deleted(void **state)
{
	(void)state;
	struct net *n = net_new();
	ike_sa_free(the_sa(n, 0)); /* both forget: a fresh IKE SA follows */
	ike_sa_free(the_sa(n, 1));
	const char *err = NULL;
	assert_int_equal(ike_up(n->p.ike[0], "to-hq", &err), 0);
	ikeh_deliver(&n->p); /* IKE_SA_INIT --> */
	ikeh_deliver(&n->p); /* <-- IKE_SA_INIT, and IKE_AUTH { IDi AUTH SA TSi TSr } goes out */
	n->p.conf[0]->phase2[0].dst_subnet.prefix_len = 25;
	/* <-- IKE_AUTH { IDr AUTH SA TSi TSr(10.2.0.0/24) }, INFORMATIONAL { D(ESP) } --> */
	pump(n);
	assert_int_equal(nchildren(n, 0), 0);
	assert_int_equal(nchildren(n, 1), 0);
	assert_int_equal(n->p.rec[1].installs, 2);
	assert_int_equal(ikeh_rec_present(&n->p.rec[1]), 0);
	net_free(n);
}

/* How many Delete payloads the sealed message msg, sent to the SA to, carries. */
static unsigned deletes_in(struct ike_sa *to, const struct ikeh_msg *msg)
{
	struct ike_msg *m = calloc(1, sizeof(*m));
	uint8_t *plain = malloc(IKE_MSG_MAX_LEN);
	const struct secret *enc, *integ;

	assert_non_null(m);
	assert_non_null(plain);
	assert_int_equal(ike_msg_parse(m, msg->buf, msg->len), 0);
	assert_int_equal(m->hdr.exchange, INFORMATIONAL);
	ike_sa_keys_dir(&to->keys, to->initiator, false, &enc, &integ);
	ssize_t k = sk_open(&to->suite, enc, integ, m->sk.aad, m->sk.aad_len, m->sk.sealed, m->sk.sealed_len, plain,
			    IKE_MSG_MAX_LEN);
	assert_true(k >= 0);
	assert_int_equal(ike_msg_parse_inner(m, m->sk.inner_first, plain, (size_t)k), 0);
	unsigned d = ike_msg_count(m, IKE_PL_D);
	free(plain);
	free(m);
	return d;
}

/* 1.4.1: both ends DELETE the old CHILD SA after a rekey and the requests cross. Each removes it, and an
 * answer "MUST NOT include Delete payloads for the deleted SAs" (they could name the wrong SA). */
static void test_crossed_deletes(void **state)
{
	(void)state;
	struct net *n = net_new();
	struct ike_sa *a = the_sa(n, 0), *b = the_sa(n, 1);
	uint32_t old_a = only_child(n, 0)->spi_in, old_b = only_child(n, 1)->spi_in;

	assert_int_equal(ike_child_rekey(a, old_a), 0);
	ikeh_deliver(&n->p); /* CREATE_CHILD_SA { N(REKEY_SA) SA Ni TSi TSr } --> */
	ikeh_deliver(&n->p); /* <-- { SA Nr TSi TSr }, and INFORMATIONAL { D(ESP old) } --> is queued */
	assert_int_equal(n->p.qn, 1);

	/* gwB deletes the old pair too: <-- INFORMATIONAL { D(ESP old) } */
	uint8_t spi[4] = { (uint8_t)(old_b >> 24), (uint8_t)(old_b >> 16), (uint8_t)(old_b >> 8), (uint8_t)old_b };
	struct ike_pl pl = { .type = IKE_PL_D };
	struct ike_enc inner;
	pl.u.d = (struct ike_delete_pl){ IKE_PROTO_ESP, 4, 1, spi };
	ike_inner_begin(n->p.ike[1], &inner);
	assert_int_equal(ike_pl_encode(&inner, &pl), 0);
	assert_int_equal(ike_request(b, INFORMATIONAL, &inner), 0);

	ikeh_deliver(&n->p); /* gwA's DELETE reaches gwB, which answers */
	ikeh_deliver(&n->p); /* gwB's DELETE reaches gwA, whose own is out */
	assert_int_equal(n->p.qn, 2);
	assert_int_equal(n->p.q[1]->to, 1);
	assert_int_equal(deletes_in(b, n->p.q[1]), 0); /* gwA's answer */
	pump(n);
	assert_pair(n);
	assert_int_not_equal(only_child(n, 0)->spi_in, old_a);
	assert_null(ikeh_rec_find(&n->p.rec[0], old_a));
	assert_null(ikeh_rec_find(&n->p.rec[1], old_b));
	net_free(n);
}

/* Phase2 entries side-dmz1.. sideN (10.1.1k.0/24 <-> 10.2.1k.0/24) for gwA (initiator) or gwB. */
static void dmz_entries(char *buf, size_t cap, bool initiator, unsigned count)
{
	size_t o = 0;
	for (unsigned k = 1; k <= count; k++) {
		int w = snprintf(buf + o, cap - o,
				 "    edit \"%s-dmz%u\"\n"
				 "        set phase1name \"%s\"\n"
				 "        set proposal aes128gcm\n"
				 "        set pfs disable\n"
				 "        set src-subnet 10.%u.1%u.0 255.255.255.0\n"
				 "        set dst-subnet 10.%u.1%u.0 255.255.255.0\n"
				 "    next\n",
				 initiator ? "to-hq" : "branch", k, initiator ? "to-hq" : "branch", initiator ? 1 : 2, k,
				 initiator ? 2 : 1, k);
		assert_true(w > 0 && (size_t)w < cap - o);
		o += (size_t)w;
	}
}

/* Every CHILD SA of an IKE SA that holds as many as it may must still be rekeyable: a rekey holds the old
 * and the new SA at once, so a new CHILD SA never takes the last free slot, on either side. */
static void test_full_table_still_rekeys(void **state)
{
	(void)state;
	char a2[2048], b2[2048];
	dmz_entries(a2, sizeof(a2), true, 4);
	dmz_entries(b2, sizeof(b2), false, 4);
	struct net *n = net_new_p2(a2, b2);
	for (size_t p2 = 1; p2 <= 3; p2++) {
		assert_int_equal(ike_child_create(the_sa(n, 0), p2), 0);
		pump(n);
	}
	assert_int_equal(nchildren(n, 0), 4);
	assert_int_equal(nchildren(n, 1), 4);
	assert_int_equal(ike_child_create(the_sa(n, 0), 4), -ENOSPC);

	/* gwB refuses one more too: CREATE_CHILD_SA { SA Ni TSi TSr } -->  <-- { N(NO_ADDITIONAL_SAS) } */
	const struct conf_phase2 *p2 = &n->p.conf[0]->phase2[4];
	struct child_ts l[CHILD_MAX_TS], r[CHILD_MAX_TS];
	struct prop_buf pb;
	struct ike_enc inner;
	uint8_t nonce[32] = { 1 };
	ike_inner_begin(n->p.ike[0], &inner);
	assert_int_equal(ike_prop_build_esp(&pb, p2->proposals, p2->n_proposals, 0x01020304), 0);
	ike_enc_sa(&inner, &pb);
	ike_enc_data(&inner, IKE_PL_NONCE, nonce, sizeof(nonce));
	unsigned k = ike_p2_selectors(p2, l, r);
	ike_enc_ts(&inner, IKE_PL_TSI, l, k);
	ike_enc_ts(&inner, IKE_PL_TSR, r, k);
	assert_int_equal(ike_request(the_sa(n, 0), CREATE_CHILD_SA, &inner), 0);
	pump(n);
	assert_int_equal(nchildren(n, 1), 4);
	assert_int_equal(n->p.rec[1].installs, 4);

	/* and each of the four is rekeyed */
	uint32_t olds[IKE_MAX_CHILDREN];
	unsigned nold = 0;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++)
		if (the_sa(n, 0)->child[i].used)
			olds[nold++] = the_sa(n, 0)->child[i].spi_in;
	assert_int_equal(nold, 4);
	for (unsigned i = 0; i < nold; i++) {
		uint32_t old = olds[i];
		unsigned installs = n->p.rec[0].installs;
		assert_int_equal(ike_child_rekey(the_sa(n, 0), old), 0);
		pump(n);
		assert_int_equal(n->p.rec[0].installs, installs + 1);
		assert_null(ikeh_rec_find(&n->p.rec[0], old));
		assert_int_equal(nchildren(n, 0), 4);
		assert_int_equal(nchildren(n, 1), 4);
	}
	assert_int_equal(n->p.rec[0].installs, 8);
	net_free(n);
}

static void test_status_lists_new_spis(void **state)
{
	(void)state;
	struct net *n = net_new();
	uint32_t a0 = only_child(n, 0)->spi_in;
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a0), 0);
	pump(n);
	struct jw w;
	jw_init(&w);
	jw_obj_open(&w, NULL);
	ike_status_tunnel(n->p.ike[0], "to-hq", &w, true);
	jw_obj_close(&w);
	assert_false(w.oom);
	char *s = strndup(w.buf, w.len);
	jw_free(&w);
	char want[64], old[64];
	snprintf(want, sizeof(want), "\"spi_in\":\"%08x\"", only_child(n, 0)->spi_in);
	snprintf(old, sizeof(old), "\"spi_in\":\"%08x\"", a0);
	assert_non_null(strstr(s, want));
	assert_null(strstr(s, old));
	free(s);
	net_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rekey),
		cmocka_unit_test(test_responder_rekeys),
		cmocka_unit_test(test_rekey_by_timer),
		cmocka_unit_test(test_simultaneous_rekey),
		cmocka_unit_test(test_child_sa_not_found),
		cmocka_unit_test(test_no_proposal_chosen_keeps_old),
		cmocka_unit_test(test_busy_window),
		cmocka_unit_test(test_additional_child),
		cmocka_unit_test(test_rekey_after_reload_moves_phase2),
		cmocka_unit_test(test_rejected_answer_is_deleted),
		cmocka_unit_test(test_rejected_auth_child_is_deleted),
		cmocka_unit_test(test_crossed_deletes),
		cmocka_unit_test(test_full_table_still_rekeys),
		cmocka_unit_test(test_status_lists_new_spis),
		cmocka_unit_test(test_rekey_pfs),
		cmocka_unit_test(test_pfs_mismatch),
		cmocka_unit_test(test_pfs_invalid_ke_retry),
		cmocka_unit_test(test_hostile_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
