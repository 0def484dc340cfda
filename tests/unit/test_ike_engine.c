/*
 * The IKEv2 engine end to end: an initiator (gwA, static) and a responder
 * (gwB, dynamic) in one process over an in-memory pipe, the dataplane
 * replaced by a recorder that keys real ESP SAs from what it is given, so
 * a packet sealed with the initiator's outbound SA must open with the
 * responder's inbound one. Each step is annotated like a strongSwan trace.
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
#include <sys/stat.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "esp/esp.h"
#include "ike/ike.h"
#include "ike/message.h"
#include "ike/proposal.h"
#include "ike/sa.h"
#include "iketcp/json.h"
#include "iketcp/stats.h"
#include "loop.h"
#include "tests/lib/ike_harness.h"

/* ---- the pipe (tests/lib/ike_harness.c) and the recording dataplane ------------------- */

#define MAX_LOG 64

struct installed {
	struct child_sa sa;
	uint8_t km_in[160], km_out[160];
	char phase2[64];
	bool removed;
	struct esp_sa in, out;
};

struct side {
	struct installed inst[8];
	unsigned ninst, nremoved;
	unsigned holds;
};

struct net {
	struct ikeh_pipe p;
	struct side s[2];
	/* every message sent, in order, for traces, retransmits and corpora */
	struct ikeh_msg *log[MAX_LOG];
	unsigned nlog;
};

/* The two ends of the one stream: gwA's outbound handle and gwB's inbound one. */
static int conn_a_tag, conn_b_tag;
#define CONN_A ((struct tcp_conn *)&conn_a_tag)
#define CONN_B ((struct tcp_conn *)&conn_b_tag)

static struct net *g_net;

static struct tcp_conn *io_connect(void *arg, const struct sockaddr *peer, socklen_t len, bool tls)
{
	const struct sockaddr_in *s4 = (const void *)peer;
	assert_int_equal(len, sizeof(*s4));
	assert_int_equal(ntohs(s4->sin_port), 443);
	assert_false(tls);
	return ikeh_io_connect(arg, peer, len, tls);
}

static int io_send(void *arg, struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	int from = ikeh_side(arg);
	assert_ptr_equal(c, from == 0 ? CONN_A : CONN_B);
	struct ikeh_msg *m = ikeh_enqueue(&g_net->p, !from, g_net->p.conn[!from], buf, len);
	if (g_net->nlog < MAX_LOG) {
		struct ikeh_msg *l = malloc(sizeof(*l));
		assert_non_null(l);
		*l = *m;
		g_net->log[g_net->nlog++] = l;
	}
	return 0;
}

static void io_hold(void *arg, struct tcp_conn *c, bool carries)
{
	(void)c;
	if (carries)
		g_net->s[ikeh_side(arg)].holds++;
}

static int dp_install(void *arg, const struct child_sa *sa)
{
	struct side *s = &g_net->s[ikeh_side(arg)];
	assert_true(s->ninst < 8);
	struct installed *i = &s->inst[s->ninst++];
	memset(i, 0, sizeof(*i));
	i->sa = *sa;
	assert_true(sa->in.keymat_len <= sizeof(i->km_in) && sa->out.keymat_len <= sizeof(i->km_out));
	memcpy(i->km_in, sa->in.keymat, sa->in.keymat_len);
	memcpy(i->km_out, sa->out.keymat, sa->out.keymat_len);
	snprintf(i->phase2, sizeof(i->phase2), "%s", sa->phase2);
	i->sa.in.keymat = i->km_in;
	i->sa.out.keymat = i->km_out;
	i->sa.phase2 = i->phase2;
	assert_int_equal(sa->in.spi, sa->spi_in);
	assert_int_equal(sa->out.spi, sa->spi_out);
	assert_false(sa->in.outbound);
	assert_true(sa->out.outbound);
	assert_ptr_equal(sa->conn, ikeh_side(arg) == 0 ? CONN_A : CONN_B);
	/* What the dataplane will do with them: they must key real SAs. */
	assert_int_equal(esp_sa_init(&i->in, &sa->in), 0);
	assert_int_equal(esp_sa_init(&i->out, &sa->out), 0);
	return 0;
}

static void dp_remove(void *arg, uint32_t spi_in)
{
	struct side *s = &g_net->s[ikeh_side(arg)];
	for (unsigned i = 0; i < s->ninst; i++) {
		if (s->inst[i].sa.spi_in == spi_in && !s->inst[i].removed) {
			s->inst[i].removed = true;
			s->nremoved++;
			return;
		}
	}
	fail_msg("remove of an SPI never installed: %08x", spi_in);
}

static int dp_counters(void *arg, uint32_t spi_in, struct child_sa_counters *out)
{
	(void)arg;
	memset(out, 0, sizeof(*out));
	out->packets_in = spi_in & 0xff;
	out->bytes_in = 1000;
	return 0;
}

static const struct child_sa_ops dp_ops = { dp_install, ikeh_dp_update, dp_remove, dp_counters };
static const struct ike_io io = { .connect = io_connect, .send = io_send, .close = ikeh_io_close,
				  .hold = io_hold, .addrs = ikeh_io_addrs, .arg = NULL };

/* Deliver until quiet (gwA's stream comes up first when it was asked for). */
#define pump(n) ikeh_pump(&(n)->p)

#define queue_clear(n) ikeh_queue_clear(&(n)->p)

/* ---- configurations ---------------------------------------------------------------- */

struct tun_conf {
	const char *proposal, *dhgrp, *psk, *localid, *peerid, *p2proposal, *src, *dst;
	const char *transport; /* NULL: tcp */
	const char *p2extra;   /* more phase2 lines, or NULL */
};

static const struct tun_conf gwa_default = {
	"aes128gcm-prfsha256 aes256gcm-prfsha384", "19 31", "correct horse battery staple",
	"branch.example", "hq.example", "aes128gcm aes256gcm", "10.1.0.0 255.255.255.0", "10.2.0.0 255.255.255.0",
	NULL, NULL,
};
static const struct tun_conf gwb_default = {
	"aes128gcm-prfsha256 aes256gcm-prfsha384", "19 31", "correct horse battery staple",
	"hq.example", "branch.example", "aes128gcm aes256gcm", "10.2.0.0 255.255.255.0", "10.1.0.0 255.255.255.0",
	NULL, NULL,
};

static struct config *gw_conf(bool initiator, const struct tun_conf *t)
{
	const struct ikeh_gw g = {
		.initiator = initiator,
		.ike_version = true,
		.transport = t->transport,
		.psk = t->psk,
		.localid = t->localid,
		.peerid = t->peerid,
		.proposal = t->proposal,
		.dhgrp = t->dhgrp,
		.p2proposal = t->p2proposal,
		.src = t->src,
		.dst = t->dst,
		.p2_extra = t->p2extra,
	};
	return ikeh_gw_conf(&g);
}

static struct net *net_new(const struct tun_conf *a, const struct tun_conf *b)
{
	struct net *n = g_net = calloc(1, sizeof(*n));
	assert_non_null(n);
	ikeh_open(&n->p, CONN_A, CONN_B, gw_conf(true, a), gw_conf(false, b), &io, &dp_ops);
	return n;
}

static void net_free(struct net *n)
{
	for (int i = 0; i < 2; i++) {
		for (unsigned j = 0; j < n->s[i].ninst; j++) {
			esp_sa_destroy(&n->s[i].inst[j].in);
			esp_sa_destroy(&n->s[i].inst[j].out);
		}
	}
	ikeh_close(&n->p);
	for (unsigned i = 0; i < n->nlog; i++)
		free(n->log[i]);
	free(n);
	g_net = NULL;
}

/* Exchange type and R flag of logged message i. */
static uint8_t log_exchange(const struct net *n, unsigned i)
{
	return n->log[i]->buf[18];
}

static bool log_response(const struct net *n, unsigned i)
{
	return n->log[i]->buf[19] & IKE_FLAG_R;
}

/* ---- a tiny JSON checker (the output must parse) ----------------------------------- */

static const char *js_value(const char *p);

static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *js_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p && *p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\')
			p++;
		if (*p)
			p++;
	}
	return *p == '"' ? p + 1 : NULL;
}

static const char *js_value(const char *p)
{
	p = js_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';
		p = js_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				if (!(p = js_string(js_ws(p))))
					return NULL;
				p = js_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			if (!(p = js_value(p)))
				return NULL;
			p = js_ws(p);
			if (*p == ',') {
				p++;
				continue;
			}
			return *p == close ? p + 1 : NULL;
		}
	}
	if (*p == '"')
		return js_string(p);
	if (!strncmp(p, "null", 4) || !strncmp(p, "true", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (*p == '-' || (*p >= '0' && *p <= '9')) {
		p++;
		while ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-')
			p++;
		return p;
	}
	return NULL;
}

static char *status_json(struct ike *ike, const char *name)
{
	char *s = ikeh_status_json(ike, name);
	const char *end = js_value(s);
	assert_non_null(end);
	assert_string_equal(js_ws(end), "");
	return s;
}

static bool state_is(struct ike *ike, const char *name, const char *state)
{
	char *s = status_json(ike, name), want[64];
	snprintf(want, sizeof(want), "\"state\":\"%s\"", state);
	bool ok = strstr(s, want) != NULL;
	if (!ok)
		print_error("status of %s: %s\n", name, s);
	free(s);
	return ok;
}

/* ---- checks -------------------------------------------------------------------------- */

static void prefix_is(const struct child_ts *t, const char *addr, unsigned plen)
{
	char a[INET_ADDRSTRLEN];
	assert_int_equal(t->family, AF_INET);
	inet_ntop(AF_INET, &t->addr.v4, a, sizeof(a));
	assert_string_equal(a, addr);
	assert_int_equal(t->prefix_len, plen);
}

/* Initiator out == responder in and the reverse, down to the key bytes, and
 * a packet sealed by one end opens at the other. */
static void check_crosswise(struct net *n)
{
	assert_int_equal(n->s[0].ninst, 1);
	assert_int_equal(n->s[1].ninst, 1);
	struct installed *a = &n->s[0].inst[0], *b = &n->s[1].inst[0];

	assert_int_equal(a->sa.spi_out, b->sa.spi_in);
	assert_int_equal(a->sa.spi_in, b->sa.spi_out);
	assert_int_not_equal(a->sa.spi_in, a->sa.spi_out);
	assert_int_equal(a->sa.out.keymat_len, b->sa.in.keymat_len);
	assert_memory_equal(a->km_out, b->km_in, a->sa.out.keymat_len);
	assert_int_equal(a->sa.in.keymat_len, b->sa.out.keymat_len);
	assert_memory_equal(a->km_in, b->km_out, a->sa.in.keymat_len);
	assert_memory_not_equal(a->km_in, a->km_out, a->sa.in.keymat_len);
	assert_int_equal(a->sa.out.cipher, b->sa.in.cipher);
	assert_int_equal(a->sa.out.esn, false); /* NO_ESN preferred */
	assert_int_equal(b->sa.in.replay, true);
	assert_int_equal(b->sa.in.life_secs_hard, 43200);
	assert_string_equal(a->sa.phase1, "to-hq");
	assert_string_equal(a->phase2, "to-hq-lan");
	assert_string_equal(b->phase2, "branch-lan");

	/* 10.1.0.5 -> 10.2.0.7 through the tunnel */
	uint8_t ip[40] = { 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 5, 10, 2, 0, 7 };
	uint8_t wire[256], back[256], nh;
	ssize_t w = esp_encap(&a->out, ip, sizeof(ip), wire, sizeof(wire));
	assert_true(w > 0);
	ssize_t r = esp_decap(&b->in, wire, (size_t)w, back, sizeof(back), &nh);
	assert_int_equal(r, sizeof(ip));
	assert_memory_equal(back, ip, sizeof(ip));
	w = esp_encap(&b->out, ip, sizeof(ip), wire, sizeof(wire));
	assert_true(w > 0);
	assert_int_equal(esp_decap(&a->in, wire, (size_t)w, back, sizeof(back), &nh), sizeof(ip));
}

static void check_selectors(struct net *n, const char *a_local, unsigned a_lp, const char *a_remote,
			    unsigned a_rp)
{
	struct installed *a = &n->s[0].inst[0], *b = &n->s[1].inst[0];
	assert_int_equal(a->sa.n_ts, 1);
	assert_int_equal(b->sa.n_ts, 1);
	prefix_is(&a->sa.local_ts[0], a_local, a_lp);
	prefix_is(&a->sa.remote_ts[0], a_remote, a_rp);
	prefix_is(&b->sa.local_ts[0], a_remote, a_rp);
	prefix_is(&b->sa.remote_ts[0], a_local, a_lp);
}

/* Optional: write the initiator's requests as a fuzz seed corpus. */
static void dump_corpus(struct net *n, const char *tag)
{
	const char *dir = getenv("IKE_DUMP_CORPUS");
	if (!dir)
		return;
	for (unsigned i = 0; i < n->nlog; i++) {
		if (n->log[i]->to != 1 || log_response(n, i))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s-%u-%s", dir, tag, i, log_exchange(n, i) == 34 ? "init" : "sk");
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(n->log[i]->buf, 1, n->log[i]->len, f), n->log[i]->len);
		fclose(f);
	}
}


/* Parse logged message i and open its SK with gwA's IKE SA keys (either direction). */
static uint8_t open_plain[IKE_MSG_MAX_LEN];

static struct ike_msg *open_logged(struct net *n, unsigned i)
{
	struct ike_sa *sa = n->p.ike[0]->sas;
	const struct secret *enc, *integ;
	struct ike_msg *m = malloc(sizeof(*m));

	assert_non_null(sa);
	assert_non_null(m);
	assert_int_equal(ike_msg_parse(m, n->log[i]->buf, n->log[i]->len), 0);
	assert_true(m->sk.present);
	ike_sa_keys_dir(&sa->keys, true, n->log[i]->to == 1, &enc, &integ);
	ssize_t len = sk_open(&sa->suite, enc, integ, m->sk.aad, m->sk.aad_len, m->sk.sealed, m->sk.sealed_len,
			      open_plain, sizeof(open_plain));
	assert_true(len >= 0);
	assert_int_equal(ike_msg_parse_inner(m, m->sk.inner_first, open_plain, (size_t)len), 0);
	return m;
}

static bool logged_has_notify(struct net *n, unsigned i, uint16_t type)
{
	struct ike_msg *m = open_logged(n, i);
	bool found = ike_msg_find_notify(m, type) != NULL;
	free(m);
	return found;
}

/* ---- establishment -------------------------------------------------------------------- */

struct suite_case {
	const char *p1, *group, *p2;
};

static const struct suite_case suites[] = {
	{ "aes128gcm-prfsha256", "19", "aes128gcm" },
	{ "aes256gcm-prfsha384", "14", "aes256gcm" },
	{ "chacha20poly1305-prfsha256", "31", "chacha20poly1305" },
	{ "aes128-sha256", "32", "aes128-sha256" },
	{ "aes256-sha256", "20", "aes256-sha512" },
};

static void test_establish_every_suite(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(suites); i++) {
		struct tun_conf a = gwa_default, b = gwb_default;
		a.proposal = b.proposal = suites[i].p1;
		a.dhgrp = b.dhgrp = suites[i].group;
		a.p2proposal = b.p2proposal = suites[i].p2;
		struct net *n = net_new(&a, &b);

		/* connect() --> stream up */
		assert_int_equal(n->p.connects, 1);
		assert_true(state_is(n->p.ike[0], "to-hq", "connecting"));
		pump(n);
		/* IKE_SA_INIT { SA KE Ni N(NATD_S) N(NATD_D) } -->
		 * <-- IKE_SA_INIT { SA KE Nr N(NATD_S) N(NATD_D) }
		 * IKE_AUTH { IDi AUTH SA TSi TSr } -->
		 * <-- IKE_AUTH { IDr AUTH SA TSi TSr } */
		assert_int_equal(n->nlog, 4);
		assert_int_equal(log_exchange(n, 0), IKE_SA_INIT);
		assert_false(log_response(n, 0));
		assert_int_equal(log_exchange(n, 1), IKE_SA_INIT);
		assert_true(log_response(n, 1));
		assert_int_equal(log_exchange(n, 2), IKE_AUTH);
		assert_int_equal(log_exchange(n, 3), IKE_AUTH);
		assert_int_equal(stats.ike.sa_established, 2);
		assert_int_equal(stats.ike.invalid_messages, 0);
		assert_int_equal(stats.ike.auth_failures, 0);
		assert_true(state_is(n->p.ike[0], "to-hq", "established"));
		assert_true(state_is(n->p.ike[1], "branch", "established"));
		check_crosswise(n);
		check_selectors(n, "10.1.0.0", 24, "10.2.0.0", 24);
		assert_int_equal(n->s[0].holds, 1);
		assert_int_equal(n->s[1].holds, 1);
		char tag[64];
		snprintf(tag, sizeof(tag), "%s-%s", suites[i].p1, suites[i].group);
		dump_corpus(n, tag);
		net_free(n);
	}
}

static void test_status_json(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	pump(n);
	char *a = status_json(n->p.ike[0], "to-hq");
	char *b = status_json(n->p.ike[1], "branch");
	static const char *const fields[] = {
		"\"state\":\"established\"", "\"transport\":\"tcp\"", "\"spi_i\":\"", "\"spi_r\":\"",
		"\"proposal\":\"AES_GCM_16_128/PRF_HMAC_SHA2_256\"", "\"dhgrp\":19", "\"established_s\":0",
		"\"local\":\"198.51.100.1:40000\"", "\"remote\":\"203.0.113.2:443\"", "\"role\":\"initiator\"",
		"\"child_sas\":[{\"name\":\"to-hq-lan\"", "\"spi_in\":\"", "\"spi_out\":\"", "\"bytes_in\":1000",
		"\"packets_out\":0",
	};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (!strstr(a, fields[i]))
			fail_msg("%s missing from %s", fields[i], a);
	assert_non_null(strstr(b, "\"role\":\"responder\""));
	assert_non_null(strstr(b, "\"peers\":1"));
	/* spi_in as 8 hex digits and equal to the installed one */
	char want[40];
	snprintf(want, sizeof(want), "\"spi_in\":\"%08x\"", n->s[0].inst[0].sa.spi_in);
	assert_non_null(strstr(a, want));
	free(a);
	free(b);

	struct jw w;
	jw_init(&w);
	ike_status_tunnel(n->p.ike[0], "to-hq", &w, false);
	assert_non_null(strstr(w.buf, "to-hq: established tcp 198.51.100.1:40000 -> 203.0.113.2:443"));
	jw_free(&w);
	char *none = status_json(n->p.ike[0], "nonexistent");
	assert_non_null(strstr(none, "\"state\":\"down\""));
	assert_non_null(strstr(none, "\"ike_sa\":null"));
	free(none);
	net_free(n);
}

static void test_narrowing_wider_initiator(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	/* gwA offers 10.1.0.0/16 <-> 10.2.0.0/16; gwB allows only the /24s. */
	a.src = "10.1.0.0 255.255.0.0";
	a.dst = "10.2.0.0 255.255.0.0";
	struct net *n = net_new(&a, &b);
	pump(n);
	assert_int_equal(stats.ike.sa_established, 2);
	check_crosswise(n);
	check_selectors(n, "10.1.0.0", 24, "10.2.0.0", 24);
	net_free(n);
}

static void test_narrowing_wider_responder(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	/* gwB allows 10.0.0.0/8 on both sides: gwA's /24s stay as offered. */
	b.src = "10.0.0.0 255.0.0.0";
	b.dst = "10.0.0.0 255.0.0.0";
	struct net *n = net_new(&a, &b);
	pump(n);
	check_crosswise(n);
	check_selectors(n, "10.1.0.0", 24, "10.2.0.0", 24);
	net_free(n);
}

static void test_invalid_ke_retry(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	a.dhgrp = "19 31";
	b.dhgrp = "31";
	struct net *n = net_new(&a, &b);
	pump(n);
	/* IKE_SA_INIT { SA KE(ECP_256) Ni } -->
	 * <-- IKE_SA_INIT { N(INVALID_KE_PAYLOAD CURVE_25519) }
	 * IKE_SA_INIT { SA KE(CURVE_25519) Ni } -->   (same SPIi, SPIr 0)
	 * <-- IKE_SA_INIT { SA KE Nr }, then IKE_AUTH as usual */
	assert_int_equal(n->nlog, 6);
	struct ike_msg *m = malloc(sizeof(*m));
	assert_non_null(m);
	assert_int_equal(ike_msg_parse(m, n->log[1]->buf, n->log[1]->len), 0);
	const struct ike_pl *ke = ike_msg_find_notify(m, INVALID_KE_PAYLOAD);
	assert_non_null(ke);
	assert_int_equal(ke->u.n.len, 2);
	assert_int_equal(ke->u.n.data[1], CURVE_25519);
	assert_int_equal(m->hdr.spi_r, 0);
	uint64_t spi_i = m->hdr.spi_i;
	assert_int_equal(ike_msg_parse(m, n->log[2]->buf, n->log[2]->len), 0);
	assert_int_equal(m->hdr.spi_i, spi_i);
	assert_int_equal(m->hdr.spi_r, 0);
	assert_int_equal(m->hdr.msg_id, 0);
	assert_int_equal(ike_msg_find(m, IKE_PL_KE, NULL)->u.ke.group, CURVE_25519);
	free(m);
	assert_int_equal(stats.ike.sa_established, 2);
	char *s = status_json(n->p.ike[0], "to-hq");
	assert_non_null(strstr(s, "\"dhgrp\":31"));
	free(s);
	check_crosswise(n);
	net_free(n);
}

static void test_wrong_psk(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	b.psk = "not the same secret";
	struct net *n = net_new(&a, &b);
	pump(n);
	/* IKE_AUTH { IDi AUTH SA TSi TSr } -->  <-- IKE_AUTH { N(AUTHENTICATION_FAILED) } */
	assert_int_equal(n->nlog, 4);
	assert_int_equal(stats.ike.auth_failures, 2); /* one on each side */
	assert_int_equal(stats.ike.sa_established, 0);
	assert_int_equal(n->s[0].ninst + n->s[1].ninst, 0);
	assert_true(state_is(n->p.ike[0], "to-hq", "down"));
	assert_true(state_is(n->p.ike[1], "branch", "down"));
	/* The responder's half-open SA is gone: a replay of the request finds nothing. */
	uint64_t unknown = stats.ike.unknown_spi;
	ike_input(n->p.ike[1], CONN_B, n->log[2]->buf, n->log[2]->len);
	assert_int_equal(stats.ike.unknown_spi, unknown + 1);
	net_free(n);
}

static void test_peerid_mismatch_responder(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	b.peerid = "someone-else.example";
	struct net *n = net_new(&a, &b);
	pump(n);
	assert_int_equal(stats.ike.auth_failures, 2);
	assert_int_equal(stats.ike.sa_established, 0);
	assert_int_equal(n->s[0].ninst + n->s[1].ninst, 0);
	net_free(n);
}

static void test_peerid_mismatch_initiator(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	a.peerid = "not-hq.example";
	struct net *n = net_new(&a, &b);
	pump(n);
	/* gwB authenticated gwA and was up; gwA refuses gwB's identity and says so in
	 * INFORMATIONAL { N(AUTHENTICATION_FAILED) } (2.21.2): gwB drops the SA too. */
	assert_int_equal(stats.ike.auth_failures, 2);
	assert_int_equal(stats.ike.sa_established, 1);
	assert_int_equal(n->s[0].ninst, 0);
	assert_true(state_is(n->p.ike[0], "to-hq", "down"));
	assert_true(state_is(n->p.ike[1], "branch", "down"));
	assert_null(n->p.ike[1]->sas);
	net_free(n);
}

static void test_no_common_ike_proposal(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	a.proposal = "aes128gcm-prfsha256";
	b.proposal = "aes256-sha256";
	struct net *n = net_new(&a, &b);
	pump(n);
	/* IKE_SA_INIT { SA KE Ni } -->  <-- IKE_SA_INIT { N(NO_PROPOSAL_CHOSEN) } */
	assert_int_equal(n->nlog, 2);
	struct ike_msg *m = malloc(sizeof(*m));
	assert_non_null(m);
	assert_int_equal(ike_msg_parse(m, n->log[1]->buf, n->log[1]->len), 0);
	assert_non_null(ike_msg_find_notify(m, NO_PROPOSAL_CHOSEN));
	free(m);
	assert_int_equal(stats.ike.sa_established, 0);
	assert_true(state_is(n->p.ike[0], "to-hq", "down"));
	net_free(n);
}

static void test_no_common_esp_proposal(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	a.p2proposal = "aes128gcm";
	b.p2proposal = "chacha20poly1305";
	struct net *n = net_new(&a, &b);
	pump(n);
	/* <-- IKE_AUTH { IDr AUTH N(NO_PROPOSAL_CHOSEN) }: the IKE SA stays (2.21.2). */
	assert_int_equal(stats.ike.sa_established, 2);
	assert_int_equal(n->s[0].ninst + n->s[1].ninst, 0);
	assert_true(state_is(n->p.ike[0], "to-hq", "established"));
	assert_true(state_is(n->p.ike[1], "branch", "established"));
	assert_true(logged_has_notify(n, 3, NO_PROPOSAL_CHOSEN));
	assert_false(logged_has_notify(n, 3, TS_UNACCEPTABLE));
	net_free(n);
}

static void test_ts_unacceptable(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	b.dst = "10.9.0.0 255.255.255.0"; /* gwB does not route gwA's 10.1.0.0/24 */
	struct net *n = net_new(&a, &b);
	pump(n);
	/* <-- IKE_AUTH { IDr AUTH N(TS_UNACCEPTABLE) } */
	assert_int_equal(stats.ike.sa_established, 2);
	assert_int_equal(n->s[0].ninst + n->s[1].ninst, 0);
	assert_true(logged_has_notify(n, 3, TS_UNACCEPTABLE));
	assert_false(logged_has_notify(n, 3, NO_PROPOSAL_CHOSEN));
	net_free(n);
}

/* ---- message IDs, retransmits and junk ---------------------------------------------- */

static void test_retransmit_answered_from_cache(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	pump(n);
	assert_int_equal(n->nlog, 4);
	uint64_t out = stats.ike.messages_out;

	/* IKE_AUTH { ... } --> again: the same bytes come back, nothing is redone. */
	ike_input(n->p.ike[1], CONN_B, n->log[2]->buf, n->log[2]->len);
	assert_int_equal(n->p.qn, 1);
	assert_int_equal(n->p.q[0]->len, n->log[3]->len);
	assert_memory_equal(n->p.q[0]->buf, n->log[3]->buf, n->log[3]->len);
	assert_int_equal(stats.ike.messages_out, out + 1);
	assert_int_equal(n->s[1].ninst, 1);
	assert_int_equal(stats.ike.sa_established, 2);
	queue_clear(n);

	/* IKE_SA_INIT { ... } --> again: the cached answer, no second SA. */
	ike_input(n->p.ike[1], CONN_B, n->log[0]->buf, n->log[0]->len);
	assert_int_equal(n->p.qn, 1);
	assert_memory_equal(n->p.q[0]->buf, n->log[1]->buf, n->log[1]->len);
	queue_clear(n);
	char *s = status_json(n->p.ike[1], "branch");
	assert_non_null(strstr(s, "\"peers\":1"));
	assert_non_null(strstr(s, "\"ike_sas\":[{\"spi_i\":"));
	free(s);

	/* The cached answer is replayed to gwA: a response it did not ask for. */
	uint64_t invalid = stats.ike.invalid_messages;
	ike_input(n->p.ike[0], CONN_A, n->log[3]->buf, n->log[3]->len);
	assert_int_equal(stats.ike.invalid_messages, invalid + 1);
	assert_int_equal(n->p.qn, 0);
	net_free(n);
}

static void test_garbage_dropped(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	pump(n);
	struct ike *b = n->p.ike[1];
	uint8_t buf[IKE_MSG_MAX_LEN];
	const struct ikeh_msg *auth = n->log[2];
	uint64_t invalid = stats.ike.invalid_messages;

	/* truncated: the header says longer */
	ike_input(b, CONN_B, auth->buf, 20);
	ike_input(b, CONN_B, auth->buf, auth->len - 1);
	/* garbage */
	for (size_t i = 0; i < 200; i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	ike_input(b, CONN_B, buf, 200);
	ike_input(b, CONN_B, buf, 0);
	assert_int_equal(stats.ike.invalid_messages, invalid + 4);

	/* unknown SPI: counted separately, never answered */
	memcpy(buf, auth->buf, auth->len);
	buf[8] ^= 0xff;
	ike_input(b, CONN_B, buf, auth->len);
	assert_int_equal(stats.ike.unknown_spi, 1);

	/* wrong message ID (neither the next nor the last one) */
	memcpy(buf, auth->buf, auth->len);
	buf[23] = 7;
	ike_input(b, CONN_B, buf, auth->len);
	assert_int_equal(stats.ike.invalid_messages, invalid + 5);

	/* ICV failure on a retransmission: dropped silently, not answered from the cache */
	memcpy(buf, auth->buf, auth->len);
	buf[auth->len - 1] ^= 0x01;
	ike_input(b, CONN_B, buf, auth->len);
	assert_int_equal(stats.ike.invalid_messages, invalid + 6);

	/* an IKE_SA_INIT request with an unknown critical payload gets UNSUPPORTED_CRITICAL_PAYLOAD */
	const struct ikeh_msg *init = n->log[0];
	memcpy(buf, init->buf, init->len);
	/* append a payload of type 99, critical: chain it after the last one */
	struct ike_msg *m = malloc(sizeof(*m));
	assert_non_null(m);
	assert_int_equal(ike_msg_parse(m, buf, init->len), 0);
	size_t last_at = 28;
	for (unsigned i = 0; i + 1 < m->npl; i++)
		last_at += 4 + m->pl[i].body_len;
	buf[last_at] = 99;
	size_t len = init->len;
	buf[len] = 0;
	buf[len + 1] = 0x80;
	buf[len + 2] = 0;
	buf[len + 3] = 8;
	memset(buf + len + 4, 0, 4);
	len += 8;
	buf[24] = (uint8_t)(len >> 24);
	buf[25] = (uint8_t)(len >> 16);
	buf[26] = (uint8_t)(len >> 8);
	buf[27] = (uint8_t)len;
	buf[0] ^= 0x55; /* another SPIi: not a retransmission */
	ike_input(b, CONN_B, buf, len);
	assert_int_equal(n->p.qn, 1);
	assert_int_equal(ike_msg_parse(m, n->p.q[0]->buf, n->p.q[0]->len), 0);
	const struct ike_pl *ucp = ike_msg_find_notify(m, UNSUPPORTED_CRITICAL_PAYLOAD);
	assert_non_null(ucp);
	assert_int_equal(ucp->u.n.len, 1);
	assert_int_equal(ucp->u.n.data[0], 99);
	free(m);
	queue_clear(n);

	/* nothing above touched the SAs */
	assert_int_equal(n->s[1].ninst, 1);
	assert_int_equal(n->s[1].nremoved, 0);
	assert_true(state_is(b, "branch", "established"));
	/* and the tunnel still works: a liveness check is answered */
	net_free(n);
}

static void test_down_deletes_both_sides(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	const char *err = NULL;
	pump(n);
	assert_int_equal(n->s[0].ninst, 1);

	/* INFORMATIONAL { D(IKE) } -->   <-- INFORMATIONAL { } */
	assert_int_equal(ike_down(n->p.ike[0], "to-hq", &err), 0);
	assert_int_equal(n->s[0].nremoved, 1);
	pump(n);
	assert_int_equal(n->nlog, 6);
	assert_int_equal(log_exchange(n, 4), INFORMATIONAL);
	assert_false(log_response(n, 4));
	assert_int_equal(log_exchange(n, 5), INFORMATIONAL);
	assert_true(log_response(n, 5));
	assert_int_equal(n->s[1].nremoved, 1);
	assert_true(state_is(n->p.ike[0], "to-hq", "down"));
	assert_true(state_is(n->p.ike[1], "branch", "down"));
	assert_int_equal(stats.ike.invalid_messages, 0);
	assert_int_equal(stats.ike.unknown_spi, 0);

	assert_int_equal(ike_down(n->p.ike[0], "to-hq", &err), -1);
	assert_string_equal(err, "no IKE SA");
	assert_int_equal(ike_down(n->p.ike[0], "nope", &err), -1);

	/* ike_up brings it back on the same stream */
	assert_int_equal(ike_up(n->p.ike[0], "to-hq", &err), 0);
	pump(n);
	assert_int_equal(n->s[0].ninst, 2);
	assert_int_equal(n->p.connects, 1);
	assert_true(state_is(n->p.ike[0], "to-hq", "established"));
	assert_int_equal(ike_up(n->p.ike[1], "branch", &err), -1);
	net_free(n);
}

static void test_shutdown_and_stream_events(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	pump(n);
	/* The stream drops and comes back: the SA stays, ESP follows (RFC 9329 6.1). */
	ike_conn_down(n->p.ike[0], CONN_A);
	assert_ptr_equal(n->p.last_update_conn[0], NULL);
	ike_conn_up(n->p.ike[0], CONN_A);
	assert_ptr_equal(n->p.last_update_conn[0], CONN_A);
	assert_int_equal(n->p.updates[0], 2);
	assert_true(state_is(n->p.ike[0], "to-hq", "established"));
	ike_conn_down(n->p.ike[1], CONN_B);
	assert_int_equal(n->p.updates[1], 1);
	assert_true(state_is(n->p.ike[1], "branch", "established"));

	/* The reconnected initiator's liveness check (RFC 9329 6.1) is answered first. */
	pump(n);
	/* SIGTERM: DELETE for every SA, now */
	ike_shutdown(n->p.ike[0]);
	assert_int_equal(n->p.qn, 1);
	assert_int_equal(log_exchange(n, n->nlog - 1), INFORMATIONAL);
	net_free(n);
}

static void test_reload_removes_tunnel(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	pump(n);
	/* gwB's new configuration no longer has "branch": its SA is deleted,
	 * INFORMATIONAL { D(IKE) } --> reaches gwA, which removes its side. */
	struct config *c2 = ikeh_conf_load("config system settings\n"
				 "    set ike-tcp-service enable\n"
				 "    set inner-interface \"lan0\"\n"
				 "end\n");
	assert_int_equal(ike_configure(n->p.ike[1], c2), 0);
	assert_int_equal(n->s[1].nremoved, 1);
	conf_free(n->p.conf[1]);
	n->p.conf[1] = c2;
	pump(n);
	assert_int_equal(n->s[0].nremoved, 1);
	assert_true(state_is(n->p.ike[0], "to-hq", "down"));
	/* gwB forgot the SA at once: gwA's answer finds nothing there. */
	assert_int_equal(stats.ike.unknown_spi, 1);
	net_free(n);
}

static void test_liveness_and_child_delete(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	pump(n);
	struct ike_sa *b = n->p.ike[1]->sas;
	struct ike_enc inner;
	assert_non_null(b);

	/* <-- INFORMATIONAL { }   INFORMATIONAL { } --> (liveness, 2.4) */
	ike_inner_begin(n->p.ike[1], &inner);
	assert_int_equal(ike_request(b, INFORMATIONAL, &inner), 0);
	pump(n);
	assert_false(b->req_out);
	assert_int_equal(n->nlog, 6);
	assert_true(log_response(n, 5));
	assert_int_equal(stats.ike.invalid_messages, 0);

	/* <-- INFORMATIONAL { D(ESP, gwB's inbound SPI) }
	 * INFORMATIONAL { D(ESP, gwA's inbound SPI) } --> */
	uint32_t spi = n->s[1].inst[0].sa.spi_in;
	uint8_t spib[4] = { (uint8_t)(spi >> 24), (uint8_t)(spi >> 16), (uint8_t)(spi >> 8), (uint8_t)spi };
	struct ike_pl d = { .type = IKE_PL_D };
	d.u.d = (struct ike_delete_pl){ IKE_PROTO_ESP, 4, 1, spib };
	ike_inner_begin(n->p.ike[1], &inner);
	assert_int_equal(ike_pl_encode(&inner, &d), 0);
	assert_int_equal(ike_request(b, INFORMATIONAL, &inner), 0);
	pump(n);
	assert_int_equal(n->s[0].nremoved, 1);
	struct ike_msg *m = open_logged(n, 7);
	const struct ike_pl *dp = ike_msg_find(m, IKE_PL_D, NULL);
	assert_non_null(dp);
	assert_int_equal(dp->u.d.count, 1);
	uint32_t back = (uint32_t)dp->u.d.spis[0] << 24 | (uint32_t)dp->u.d.spis[1] << 16 |
			(uint32_t)dp->u.d.spis[2] << 8 | dp->u.d.spis[3];
	assert_int_equal(back, n->s[0].inst[0].sa.spi_in);
	free(m);
	/* the IKE SA itself stays */
	assert_true(state_is(n->p.ike[0], "to-hq", "established"));

	/* CREATE_CHILD_SA { SA(ESP) Ni } without TS is an IKE SA rekey (1.3.2) offering no IKE proposal:
	 * <-- N(NO_PROPOSAL_CHOSEN), nothing changes */
	static struct prop_buf pb;
	char *names[] = { "aes128gcm" };
	uint8_t nonce[32] = { 1 };
	struct ike_pl sap = { .type = IKE_PL_SA };
	assert_int_equal(ike_prop_build_esp(&pb, names, 1, 0x12345678), 0);
	sap.u.sa = pb.sa;
	ike_inner_begin(n->p.ike[1], &inner);
	assert_int_equal(ike_pl_encode(&inner, &sap), 0);
	ike_enc_data(&inner, IKE_PL_NONCE, nonce, sizeof(nonce));
	assert_int_equal(ike_request(b, CREATE_CHILD_SA, &inner), 0);
	pump(n);
	assert_int_equal(n->nlog, 10);
	assert_true(logged_has_notify(n, 9, NO_PROPOSAL_CHOSEN));
	assert_non_null(n->p.ike[1]->sas);
	assert_null(n->p.ike[1]->sas->next);
	assert_int_equal(n->s[0].ninst, 1);
	net_free(n);
}

static void test_response_timeouts(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	n->p.hold_queue = true;
	pump(n);
	/* IKE_SA_INIT --> is out, no answer: after the timeout the SA is gone (RFC 9329 6.2). */
	struct ike_sa *a = n->p.ike[0]->sas;
	assert_non_null(a);
	assert_true(loop_timer_armed(&a->timer));
	a->timer.cb(n->p.loop, &a->timer);
	assert_null(n->p.ike[0]->sas);
	assert_true(state_is(n->p.ike[0], "to-hq", "down"));

	/* gwB answered IKE_SA_INIT but IKE_AUTH never comes: the half-open SA goes too. */
	struct ikeh_msg *init = n->p.q[0];
	ike_input(n->p.ike[1], CONN_B, init->buf, init->len);
	struct ike_sa *b = n->p.ike[1]->sas;
	assert_non_null(b);
	assert_true(loop_timer_armed(&b->timer));
	b->timer.cb(n->p.loop, &b->timer);
	assert_null(n->p.ike[1]->sas);
	net_free(n);
}

/* Deliver the first queued message only. */
static void step(struct net *n)
{
	ikeh_deliver(&n->p);
}

static void test_forged_auth_response_ignored(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	n->p.hold_queue = true;
	pump(n); /* stream up, IKE_SA_INIT --> queued */
	step(n); /* gwB answers */
	step(n); /* gwA sends IKE_AUTH */
	step(n); /* gwB answers IKE_AUTH */
	assert_int_equal(n->p.qn, 1);
	/* <-- IKE_AUTH with a broken ICV first: dropped, the SA waits on. */
	struct ikeh_msg *good = n->p.q[0];
	uint8_t bad[IKE_MSG_MAX_LEN];
	memcpy(bad, good->buf, good->len);
	bad[good->len - 3] ^= 0x40;
	uint64_t invalid = stats.ike.invalid_messages;
	ike_input(n->p.ike[0], CONN_A, bad, good->len);
	assert_int_equal(stats.ike.invalid_messages, invalid + 1);
	assert_true(state_is(n->p.ike[0], "to-hq", "connecting"));
	/* then the real one */
	step(n);
	assert_true(state_is(n->p.ike[0], "to-hq", "established"));
	check_crosswise(n);
	net_free(n);
}

static void test_transport_auto_and_udp(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default;
	/* gwA.conf says "transport auto": this harness has streams only (no open_udp), so TCP at once. */
	a.transport = "auto";
	struct net *n = net_new(&a, &gwb_default);
	pump(n);
	assert_int_equal(stats.ike.sa_established, 2);
	net_free(n);

	/* "transport udp" without UDP: nothing is initiated, and ike_up says why. */
	a.transport = "udp";
	n = net_new(&a, &gwb_default);
	const char *err = NULL;
	assert_int_equal(n->p.connects, 0);
	assert_int_equal(ike_up(n->p.ike[0], "to-hq", &err), -1);
	assert_non_null(strstr(err, "UDP"));
	pump(n);
	assert_int_equal(n->nlog, 0);
	net_free(n);
}

static void test_ipv4_and_ipv6_selectors(void **state)
{
	(void)state;
	struct tun_conf a = gwa_default, b = gwb_default;
	a.p2extra = "        set src-subnet6 2001:db8:1::/48\n        set dst-subnet6 2001:db8:2::/48\n";
	b.p2extra = "        set src-subnet6 2001:db8:2::/64\n        set dst-subnet6 2001:db8::/32\n";
	struct net *n = net_new(&a, &b);
	pump(n);
	check_crosswise(n);
	struct installed *ia = &n->s[0].inst[0], *ib = &n->s[1].inst[0];
	assert_int_equal(ia->sa.n_ts, 2);
	assert_int_equal(ib->sa.n_ts, 2);
	char buf[INET6_ADDRSTRLEN];
	/* gwA's local /48 fits gwB's remote /32 as is; gwA's remote /48 narrows to gwB's /64. */
	assert_int_equal(ia->sa.local_ts[1].family, AF_INET6);
	inet_ntop(AF_INET6, &ia->sa.local_ts[1].addr.v6, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:1::");
	assert_int_equal(ia->sa.local_ts[1].prefix_len, 48);
	inet_ntop(AF_INET6, &ia->sa.remote_ts[1].addr.v6, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:2::");
	assert_int_equal(ia->sa.remote_ts[1].prefix_len, 64);
	assert_int_equal(ib->sa.local_ts[1].prefix_len, 64);
	assert_int_equal(ib->sa.remote_ts[1].prefix_len, 48);
	net_free(n);
}

/* gwB with two dynamic entries: the one whose peerid matches IDi answers, with its own PSK. */
static void test_responder_picks_phase1_by_id(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	struct config *c2 = ikeh_conf_load("config system settings\n"
				 "    set ike-tcp-service enable\n"
				 "    set inner-interface \"lan0\"\n"
				 "end\n"
				 "config vpn ipsec phase1-interface\n"
				 "    edit \"other\"\n"
				 "        set interface \"wan0\"\n"
				 "        set type dynamic\n"
				 "        set transport tcp\n"
				 "        set psksecret \"another secret\"\n"
				 "        set localid \"hq.example\"\n"
				 "        set peerid \"other.example\"\n"
				 "        set proposal aes128gcm-prfsha256\n"
				 "        set dhgrp 19\n"
				 "    next\n"
				 "    edit \"branch\"\n"
				 "        set interface \"wan0\"\n"
				 "        set type dynamic\n"
				 "        set transport tcp\n"
				 "        set psksecret \"correct horse battery staple\"\n"
				 "        set localid \"hq.example\"\n"
				 "        set peerid \"branch.example\"\n"
				 "        set proposal aes128gcm-prfsha256\n"
				 "        set dhgrp 19\n"
				 "    next\n"
				 "end\n"
				 "config vpn ipsec phase2-interface\n"
				 "    edit \"other-lan\"\n"
				 "        set phase1name \"other\"\n"
				 "        set proposal aes128gcm\n"
				 "        set src-subnet 10.2.0.0 255.255.255.0\n"
				 "        set dst-subnet 10.1.0.0 255.255.255.0\n"
				 "    next\n"
				 "    edit \"branch-lan\"\n"
				 "        set phase1name \"branch\"\n"
				 "        set proposal aes128gcm\n"
				 "        set src-subnet 10.2.0.0 255.255.255.0\n"
				 "        set dst-subnet 10.1.0.0 255.255.255.0\n"
				 "    next\n"
				 "end\n");
	assert_int_equal(ike_configure(n->p.ike[1], c2), 0);
	conf_free(n->p.conf[1]);
	n->p.conf[1] = c2;
	pump(n);
	assert_int_equal(stats.ike.sa_established, 2);
	assert_int_equal(stats.ike.auth_failures, 0);
	assert_string_equal(n->s[1].inst[0].phase2, "branch-lan");
	assert_true(state_is(n->p.ike[1], "branch", "established"));
	assert_true(state_is(n->p.ike[1], "other", "down"));
	net_free(n);
}

static void test_initiator_stream_restart(void **state)
{
	(void)state;
	struct net *n = net_new(&gwa_default, &gwb_default);
	/* The stream comes up, IKE_SA_INIT goes out, the stream drops before the answer. */
	n->p.hold_queue = true;
	pump(n);
	assert_int_equal(n->p.qn, 1);
	queue_clear(n);
	ike_conn_down(n->p.ike[0], CONN_A);
	/* Back up: IKE_SA_INIT starts again and completes. */
	n->p.hold_queue = false;
	ike_conn_up(n->p.ike[0], CONN_A);
	pump(n);
	assert_int_equal(stats.ike.sa_established, 2);
	net_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_establish_every_suite),
		cmocka_unit_test(test_status_json),
		cmocka_unit_test(test_narrowing_wider_initiator),
		cmocka_unit_test(test_narrowing_wider_responder),
		cmocka_unit_test(test_invalid_ke_retry),
		cmocka_unit_test(test_wrong_psk),
		cmocka_unit_test(test_peerid_mismatch_responder),
		cmocka_unit_test(test_peerid_mismatch_initiator),
		cmocka_unit_test(test_no_common_ike_proposal),
		cmocka_unit_test(test_no_common_esp_proposal),
		cmocka_unit_test(test_ts_unacceptable),
		cmocka_unit_test(test_retransmit_answered_from_cache),
		cmocka_unit_test(test_garbage_dropped),
		cmocka_unit_test(test_down_deletes_both_sides),
		cmocka_unit_test(test_shutdown_and_stream_events),
		cmocka_unit_test(test_reload_removes_tunnel),
		cmocka_unit_test(test_initiator_stream_restart),
		cmocka_unit_test(test_liveness_and_child_delete),
		cmocka_unit_test(test_response_timeouts),
		cmocka_unit_test(test_transport_auto_and_udp),
		cmocka_unit_test(test_ipv4_and_ipv6_selectors),
		cmocka_unit_test(test_responder_picks_phase1_by_id),
		cmocka_unit_test(test_forged_auth_response_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
