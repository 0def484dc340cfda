/*
 * CHILD SA rekeying and additional CHILD SAs with CREATE_CHILD_SA (RFC 7296
 * 1.3.1, 1.3.3, 2.8, 2.8.1). gwA (static initiator) and gwB (dynamic
 * responder) run in one process over an in-memory pipe; the dataplane is a
 * table that records every install and removal, in order, with its keys.
 */
#include <arpa/inet.h>
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

/* ---- the pipe and the recording dataplane ------------------------------------------ */

#define MAX_Q 64
#define MAX_DP 16

struct msg {
	int to;
	size_t len;
	uint8_t buf[IKE_MSG_MAX_LEN];
};

struct dp_sa {
	bool present;
	uint32_t spi_in, spi_out;
	unsigned installed_at, removed_at; /* global event sequence */
	uint8_t km_in[160], km_out[160];
	size_t km_in_len, km_out_len;
};

struct side {
	struct ike *ike;
	struct config *conf;
	struct dp_sa dp[MAX_DP];
	unsigned ndp, installs, removes;
};

struct net {
	struct loop *loop;
	struct side s[2];
	struct msg *q[MAX_Q];
	unsigned qn, seq;
	bool pending_up;
	unsigned ccsa_req[2]; /* CREATE_CHILD_SA requests sent by each side */
};

/* The phase2 pfs / dhgrp lines of gwA and gwB for the next net_new. */
static const char *g_pfs[2] = { "set pfs disable", "set pfs disable" };

static int conn_tags[2];
#define CONN_A ((struct tcp_conn *)&conn_tags[0])
#define CONN_B ((struct tcp_conn *)&conn_tags[1])

static struct net *g_net;

static int side_of(void *arg)
{
	return (int)(intptr_t)arg;
}

static struct tcp_conn *io_connect(void *arg, const struct sockaddr *peer, socklen_t len, bool tls)
{
	(void)peer;
	(void)len;
	(void)tls;
	assert_int_equal(side_of(arg), 0);
	g_net->pending_up = true;
	return CONN_A;
}

static int io_send(void *arg, struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	struct net *n = g_net;
	(void)c;
	if (side_of(arg) == 0 && n->pending_up)
		return -ENOTCONN;
	struct msg *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	assert_true(len <= IKE_MSG_MAX_LEN);
	if (len > 19 && buf[18] == CREATE_CHILD_SA && !(buf[19] & IKE_FLAG_R))
		n->ccsa_req[side_of(arg)]++;
	m->to = !side_of(arg);
	m->len = len;
	memcpy(m->buf, buf, len);
	assert_true(n->qn < MAX_Q);
	n->q[n->qn++] = m;
	return 0;
}

static void io_close(void *arg, struct tcp_conn *c)
{
	(void)arg;
	(void)c;
}

static void io_hold(void *arg, struct tcp_conn *c, bool carries)
{
	(void)arg;
	(void)c;
	(void)carries;
}

static void set4(struct sockaddr_storage *ss, const char *a, uint16_t port)
{
	struct sockaddr_in *s4 = (void *)ss;
	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, a, &s4->sin_addr), 1);
}

static void io_addrs(void *arg, struct tcp_conn *c, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
	(void)c;
	set4(side_of(arg) ? local : peer, "203.0.113.2", 443);
	set4(side_of(arg) ? peer : local, "198.51.100.1", 40000);
}

static struct dp_sa *dp_find(struct side *s, uint32_t spi_in)
{
	for (unsigned i = 0; i < s->ndp; i++)
		if (s->dp[i].present && s->dp[i].spi_in == spi_in)
			return &s->dp[i];
	return NULL;
}

static int dp_install(void *arg, const struct child_sa *sa)
{
	struct side *s = &g_net->s[side_of(arg)];
	assert_null(dp_find(s, sa->spi_in));
	assert_true(s->ndp < MAX_DP);
	struct dp_sa *d = &s->dp[s->ndp++];
	d->present = true;
	d->spi_in = sa->spi_in;
	d->spi_out = sa->spi_out;
	d->installed_at = ++g_net->seq;
	assert_true(sa->in.keymat_len <= sizeof(d->km_in) && sa->out.keymat_len <= sizeof(d->km_out));
	memcpy(d->km_in, sa->in.keymat, sa->in.keymat_len);
	memcpy(d->km_out, sa->out.keymat, sa->out.keymat_len);
	d->km_in_len = sa->in.keymat_len;
	d->km_out_len = sa->out.keymat_len;
	s->installs++;
	return 0;
}

static void dp_update(void *arg, uint32_t spi_in, struct tcp_conn *c)
{
	(void)arg;
	(void)spi_in;
	(void)c;
}

static void dp_remove(void *arg, uint32_t spi_in)
{
	struct side *s = &g_net->s[side_of(arg)];
	struct dp_sa *d = dp_find(s, spi_in);
	assert_non_null(d);
	d->present = false;
	d->removed_at = ++g_net->seq;
	s->removes++;
}

static int dp_counters(void *arg, uint32_t spi_in, struct child_sa_counters *out)
{
	(void)arg;
	(void)spi_in;
	memset(out, 0, sizeof(*out));
	return 0;
}

static const struct child_sa_ops dp_ops = { dp_install, dp_update, dp_remove, dp_counters };
static const struct ike_io io_a = { io_connect, io_send, io_close, io_hold, io_addrs, (void *)(intptr_t)0 };
static const struct ike_io io_b = { io_connect, io_send, io_close, io_hold, io_addrs, (void *)(intptr_t)1 };

static void deliver(struct net *n)
{
	struct msg *m = n->q[0];
	memmove(n->q, n->q + 1, --n->qn * sizeof(n->q[0]));
	ike_input(n->s[m->to].ike, m->to ? CONN_B : CONN_A, m->buf, m->len);
	free(m);
}

static void pump(struct net *n)
{
	for (int guard = 0; guard < 200; guard++) {
		if (n->pending_up) {
			n->pending_up = false;
			ike_conn_up(n->s[0].ike, CONN_A);
			continue;
		}
		if (n->qn == 0)
			return;
		deliver(n);
	}
	fail_msg("messages kept flowing");
}

static void run_for(struct net *n, unsigned ms)
{
	uint64_t end = loop_now_ms(n->loop) + ms;
	while (loop_now_ms(n->loop) < end) {
		(void)loop_once(n->loop, 20);
		pump(n);
	}
}

/* ---- configurations ---------------------------------------------------------------- */

static struct config *gw_conf(bool initiator, const char *p2_proposal, const char *p2_extra)
{
	char text[4096];
	struct config *c = NULL;
	struct conf_diag d;
	snprintf(text, sizeof(text),
		 "config system settings\n"
		 "    set ike-tcp-service enable\n"
		 "    set ike-tls-service disable\n"
		 "    set ike-tcp-port 443\n"
		 "    set inner-interface \"lan0\"\n"
		 "end\n"
		 "config vpn ipsec phase1-interface\n"
		 "    edit \"%s\"\n"
		 "        set interface \"wan0\"\n"
		 "        %s\n"
		 "        set transport tcp\n"
		 "        set authmethod psk\n"
		 "        set psksecret \"correct horse battery staple\"\n"
		 "        set localid \"%s\"\n"
		 "        set peerid \"%s\"\n"
		 "        set proposal aes128gcm-prfsha256\n"
		 "        set dhgrp 19\n"
		 "        set dpd disable\n"
		 "    next\n"
		 "end\n"
		 "config vpn ipsec phase2-interface\n"
		 "    edit \"%s\"\n"
		 "        set phase1name \"%s\"\n"
		 "        set proposal %s\n"
		 "        %s\n"
		 "        set src-subnet %s\n"
		 "        set dst-subnet %s\n"
		 "    next\n"
		 "%s"
		 "end\n",
		 initiator ? "to-hq" : "branch", initiator ? "set remote-gw 203.0.113.2" : "set type dynamic",
		 initiator ? "branch.example" : "hq.example", initiator ? "hq.example" : "branch.example",
		 initiator ? "to-hq-lan" : "branch-lan", initiator ? "to-hq" : "branch", p2_proposal, g_pfs[!initiator],
		 initiator ? "10.1.0.0 255.255.255.0" : "10.2.0.0 255.255.255.0",
		 initiator ? "10.2.0.0 255.255.255.0" : "10.1.0.0 255.255.255.0", p2_extra ? p2_extra : "");
	int err = conf_load_string("test.conf", text, strlen(text), &c, &d);
	for (size_t i = 0; i < d.n; i++)
		print_error("%s\n", d.lines[i]);
	conf_diag_free(&d);
	assert_int_equal(err, 0);
	return c;
}

static struct net *net_new_p2(const char *a_extra, const char *b_extra)
{
	struct net *n = calloc(1, sizeof(*n));
	assert_non_null(n);
	g_net = n;
	memset(&stats, 0, sizeof(stats));
	n->loop = loop_new();
	assert_non_null(n->loop);
	n->s[0].conf = gw_conf(true, "aes128gcm", a_extra);
	n->s[1].conf = gw_conf(false, "aes128gcm", b_extra);
	n->s[0].ike = ike_new(n->loop, &io_a, &dp_ops, (void *)(intptr_t)0);
	n->s[1].ike = ike_new(n->loop, &io_b, &dp_ops, (void *)(intptr_t)1);
	assert_non_null(n->s[0].ike);
	assert_non_null(n->s[1].ike);
	assert_int_equal(ike_configure(n->s[1].ike, n->s[1].conf), 0);
	assert_int_equal(ike_configure(n->s[0].ike, n->s[0].conf), 0);
	pump(n);
	return n;
}

static struct net *net_new(void)
{
	return net_new_p2(NULL, NULL);
}

static void net_free(struct net *n)
{
	while (n->qn)
		free(n->q[--n->qn]);
	for (int i = 0; i < 2; i++) {
		ike_free(n->s[i].ike);
		conf_free(n->s[i].conf);
	}
	loop_free(n->loop);
	free(n);
	g_net = NULL;
	unsetenv("IKETCP_TEST_CHILD_LIFETIME_S");
	g_pfs[0] = g_pfs[1] = "set pfs disable";
}

static struct ike_sa *the_sa(struct net *n, int side)
{
	struct ike_sa *sa = n->s[side].ike->sas;
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

static unsigned dp_present(struct side *s)
{
	unsigned c = 0;
	for (unsigned i = 0; i < s->ndp; i++)
		c += s->dp[i].present;
	return c;
}

/* Both ends agree: one pair, A's out is B's in with the same keys, and each
 * side's IKE state matches its dataplane. */
static void assert_pair(struct net *n)
{
	const struct ike_child *a = only_child(n, 0), *b = only_child(n, 1);
	assert_int_equal(a->spi_in, b->spi_out);
	assert_int_equal(a->spi_out, b->spi_in);
	assert_int_equal(dp_present(&n->s[0]), 1);
	assert_int_equal(dp_present(&n->s[1]), 1);
	struct dp_sa *da = dp_find(&n->s[0], a->spi_in), *db = dp_find(&n->s[1], b->spi_in);
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
	struct dp_sa olda = *dp_find(&n->s[0], a0.spi_in), oldb = *dp_find(&n->s[1], b0.spi_in);

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
	assert_int_equal(n->s[0].installs, 2);
	assert_int_equal(n->s[1].installs, 2);
	assert_int_equal(n->s[0].removes, 1);
	assert_int_equal(n->s[1].removes, 1);

	/* Fresh keys in both directions. */
	struct dp_sa *na = dp_find(&n->s[0], a1->spi_in), *nb = dp_find(&n->s[1], b1->spi_in);
	assert_memory_not_equal(na->km_in, olda.km_in, na->km_in_len);
	assert_memory_not_equal(na->km_out, olda.km_out, na->km_out_len);
	assert_memory_not_equal(nb->km_in, oldb.km_in, nb->km_in_len);

	/* Make before break: each side installed the new pair before the old went, and
	 * the old one went only after both sides had the new one. */
	struct dp_sa *gone_a = NULL, *gone_b = NULL;
	for (unsigned i = 0; i < n->s[0].ndp; i++)
		if (n->s[0].dp[i].spi_in == a0.spi_in)
			gone_a = &n->s[0].dp[i];
	for (unsigned i = 0; i < n->s[1].ndp; i++)
		if (n->s[1].dp[i].spi_in == b0.spi_in)
			gone_b = &n->s[1].dp[i];
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
	assert_int_equal(n->s[0].installs, 3);
	assert_int_equal(n->s[1].removes, 2);
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
	assert_int_equal(n->s[0].removes, 1);
	assert_int_equal(n->s[1].removes, 1);
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
	assert_true(n->s[0].installs >= 3); /* at least two rekeys in 4.1 s */
	assert_int_equal(n->s[0].installs - n->s[0].removes, 1);
	assert_int_equal(n->s[1].installs - n->s[1].removes, 1);
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
		assert_int_equal(n->s[0].installs, 3);
		assert_int_equal(n->s[1].installs, 3);
		assert_int_equal(n->s[0].removes, 2);
		assert_int_equal(n->s[1].removes, 2);
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
	assert_true(only_child(n, 0)->rekey_ms > loop_now_ms(n->loop));
	assert_int_equal(n->s[0].installs + n->s[1].installs, 2);
	assert_int_equal(n->s[0].removes + n->s[1].removes, 0);
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
	assert_int_equal(ike_configure(n->s[1].ike, c), 0);
	conf_free(n->s[1].conf);
	n->s[1].conf = c;
	assert_int_equal(ike_child_rekey(the_sa(n, 0), a0), 0);
	pump(n);
	assert_int_equal(only_child(n, 0)->spi_in, a0);
	assert_int_equal(only_child(n, 1)->spi_in, b0);
	assert_int_equal(only_child(n, 0)->rekey, CHILD_LIVE);
	assert_int_equal(n->s[0].installs + n->s[1].installs, 2);
	assert_int_equal(n->s[0].removes + n->s[1].removes, 0);
	/* the IKE SA is fine: the next exchange works */
	struct ike_enc inner;
	ike_inner_begin(n->s[0].ike, &inner);
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
	ike_inner_begin(n->s[0].ike, &inner);
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
	assert_int_equal(dp_present(&n->s[1]), 2);
	bool found = false;
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		const struct ike_child *b = &the_sa(n, 1)->child[i];
		if (b->used && !strcmp(b->phase2, "branch-dmz")) {
			found = true;
			assert_string_equal(b->proposal, "AES_GCM_16_256");
			struct dp_sa *db = dp_find(&n->s[1], b->spi_in);
			struct dp_sa *da = dp_find(&n->s[0], b->spi_out);
			assert_non_null(db);
			assert_non_null(da);
			assert_memory_equal(da->km_out, db->km_in, da->km_out_len);
		}
	}
	assert_true(found);
	assert_int_equal(n->s[0].removes + n->s[1].removes, 0);

	/* a selector gwB has no phase2 for: TS_UNACCEPTABLE, nothing installed */
	struct ike_sa *sa = the_sa(n, 0);
	char *saved = n->s[1].conf->phase2[1].name;
	n->s[1].conf->phase2[1].phase1_index = 99; /* gwB's dmz entry no longer belongs to this phase1 */
	assert_int_equal(ike_child_create(sa, 1), 0);
	pump(n);
	n->s[1].conf->phase2[1].phase1_index = 0;
	(void)saved;
	assert_int_equal(nchildren(n, 0), 2);
	assert_int_equal(n->s[1].installs, 2);
	net_free(n);
}

/* pfs enable: KEi/KEr of group 19, KEYMAT with the new g^ir. */
static void test_rekey_pfs(void **state)
{
	(void)state;
	g_pfs[0] = g_pfs[1] = "set pfs enable\n        set dhgrp 19";
	struct net *n = net_new();
	struct dp_sa old = *dp_find(&n->s[0], only_child(n, 0)->spi_in);
	assert_int_equal(ike_child_rekey(the_sa(n, 0), old.spi_in), 0);
	pump(n);
	assert_pair(n);
	struct dp_sa *now = dp_find(&n->s[0], only_child(n, 0)->spi_in);
	assert_int_not_equal(now->spi_in, old.spi_in);
	assert_memory_not_equal(now->km_in, old.km_in, now->km_in_len);
	assert_int_equal(n->ccsa_req[0], 1);
	assert_null(the_sa(n, 0)->rk_dh);
	/* the responder rekeys with PFS too */
	assert_int_equal(ike_child_rekey(the_sa(n, 1), only_child(n, 1)->spi_in), 0);
	pump(n);
	assert_pair(n);
	assert_int_equal(n->s[1].installs, 3);
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
		assert_int_equal(n->s[0].installs + n->s[1].installs, 2);
		assert_int_equal(n->s[0].removes + n->s[1].removes, 0);
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
	assert_int_equal(n->s[0].removes, 1);
	assert_int_equal(n->s[1].removes, 1);
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
	assert_int_equal(n->s[0].installs + n->s[1].installs, 2);
	net_free(n);
}

/* Requests gwA builds by hand (authentic, odd): each refused, nothing installed, the IKE SA fine. */
static void hostile(struct net *n, uint8_t rk_proto, uint8_t rk_spi_size, bool with_ts, bool bad_ke)
{
	struct ike_sa *sa = the_sa(n, 0);
	const struct ike_child *ch = only_child(n, 0);
	const struct conf_phase2 *p2 = &n->s[0].conf->phase2[0];
	struct ike_enc inner;
	struct prop_buf pb;
	struct child_ts l[CHILD_MAX_TS], r[CHILD_MAX_TS];
	uint8_t spi[8] = { (uint8_t)(ch->spi_in >> 24), (uint8_t)(ch->spi_in >> 16), (uint8_t)(ch->spi_in >> 8),
			   (uint8_t)ch->spi_in }, nonce[32] = { 1 }, ke[64];
	unsigned installs = n->s[1].installs;

	ike_inner_begin(n->s[0].ike, &inner);
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
	assert_int_equal(n->s[1].installs, installs);
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
	assert_int_equal(n->s[1].installs, 2);
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
	ike_status_tunnel(n->s[0].ike, "to-hq", &w, true);
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
		cmocka_unit_test(test_status_lists_new_spis),
		cmocka_unit_test(test_rekey_pfs),
		cmocka_unit_test(test_pfs_mismatch),
		cmocka_unit_test(test_pfs_invalid_ke_retry),
		cmocka_unit_test(test_hostile_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
