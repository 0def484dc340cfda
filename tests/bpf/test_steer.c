/*
 * steer.bpf.c through BPF_PROG_TEST_RUN: packet fixtures in, verdict, bytes and
 * counters out. Checksums after a rewrite are verified by a full recomputation.
 * Needs root and BPF; every test skips when the object cannot be loaded.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "iketcp/compiler.h"
#include "maps/maps.h"
#include "steer.skel.h"
#include "tests/bpf/bpf_test.h"
#include "tests/bpf/steer_pkt.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

static struct steer_bpf *skel;
static int ncpus;

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

static uint64_t counter(enum steer_counter idx)
{
	uint64_t v[ncpus], sum = 0;
	uint32_t k = idx;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.steer_counters), &k, v), 0);
	for (int i = 0; i < ncpus; i++)
		sum += v[i];
	return sum;
}

static void set_config(uint16_t ike, uint16_t internal, uint32_t rate, uint32_t flags)
{
	struct steer_config c = { .ike_tcp_port = ike, .internal_port = internal, .syn_rate = rate, .flags = flags };
	uint32_t k = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.steer_config), &k, &c, BPF_ANY), 0);
}





static int setup(void **state)
{
	(void)state;
	if (!skel)
		return 0;
	set_config(0, 0, 0, 0);
	clear_map(skel->maps.steer_syn);
	clear_map(skel->maps.steer_local);
	return 0;
}

struct run {
	int rc;
	uint32_t retval;
	uint8_t out[2048];
	uint32_t out_len;
};

static void run_prog(int prog_fd, const uint8_t *in, size_t len, struct run *r)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .repeat = 1);

	r->rc = bpf_prog_test_run_opts(prog_fd, &o);
	r->retval = o.retval;
	r->out_len = o.data_size_out;
}

/* Which ingress program the cases run: xdp_steer, or tc_steer_in (`set steer-hook tc`) with its
 * verdicts read as XDP's, so that every ingress case holds for both. */
static bool ingress_tc;

/*
 * false when the kernel's test harness refuses the frame for tc (a frame of
 * nothing but an Ethernet header, an IPv4 header cut short: -EINVAL before the
 * program runs); such cases still run through XDP.
 */
static bool ran_ingress(const uint8_t *in, size_t len, struct run *r)
{
	if (!ingress_tc) {
		run_prog(bpf_program__fd(skel->progs.xdp_steer), in, len, r);
	} else {
		run_prog(bpf_program__fd(skel->progs.tc_steer_in), in, len, r);
		if (r->rc == -EINVAL)
			return false;
		r->retval = r->retval == TC_ACT_OK ? XDP_PASS : r->retval == TC_ACT_SHOT ? XDP_DROP : 0xdead;
	}
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->out_len, len);
	return true;
}

static void run_ingress(const uint8_t *in, size_t len, struct run *r)
{
	assert_true(ran_ingress(in, len, r));
}

static void run_tc(const uint8_t *in, size_t len, struct run *r)
{
	run_prog(bpf_program__fd(skel->progs.tc_steer), in, len, r);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->out_len, len);
	assert_int_equal(r->retval, TC_ACT_OK);
}

/* in -> out differs exactly in the TCP dport (or sport) and check; checksum valid. */
static void assert_rewritten(const uint8_t *in, const struct run *r, const struct pkt_layout *l, bool v6,
			     size_t port_off, uint16_t want_port)
{
	for (size_t i = 0; i < l->len; i++) {
		if (i == l->l4 + port_off || i == l->l4 + port_off + 1 || i == l->l4 + 16 || i == l->l4 + 17)
			continue;
		assert_int_equal(in[i], r->out[i]);
	}
	assert_int_equal(pkt_be16(r->out + l->l4 + port_off), want_port);
	assert_int_equal(l4_csum_verify(r->out, l, v6, 6), 0);
}

/* XDP: the spec'd packet comes out rewritten to `want` (or untouched when want == 0). */
static void xdp_case(const struct pkt_spec *s, uint32_t verdict, uint16_t want, enum steer_counter cnt)
{
	uint8_t in[2048];
	struct pkt_layout l;
	struct run r;
	uint64_t before = counter(cnt);

	assert_true(pkt_build(in, sizeof(in), s, &l) > 0);
	assert_int_equal(l4_csum_verify(in, &l, s->v6, s->proto ? s->proto : 6), 0);
	run_ingress(in, l.len, &r);
	assert_int_equal(r.retval, verdict);
	if (want)
		assert_rewritten(in, &r, &l, s->v6, 2, want);
	else
		assert_memory_equal(in, r.out, l.len);
	assert_int_equal(counter(cnt), before + 1);
}

static void test_v4_steered(void **state)
{
	(void)state;
	xdp_case(&(struct pkt_spec){ .sport = 40000, .dport = 443, .payload_len = 100 }, XDP_PASS, 11443,
		 STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .sport = 40000, .dport = 443, .tcp_flags = TCPF_SYN, .payload_len = 0 },
		 XDP_PASS, 11443, STEER_CNT_STEERED_IN);
}

static void test_v4_options_steered(void **state)
{
	(void)state;
	for (int ipo = 0; ipo <= 40; ipo += 12)
		for (int tcpo = 0; tcpo <= 40; tcpo += 8)
			xdp_case(&(struct pkt_spec){ .sport = 51000, .dport = 443, .ip_opt_len = ipo,
						     .tcp_opt_len = tcpo, .payload_len = 33 },
				 XDP_PASS, 11443, STEER_CNT_STEERED_IN);
}

static void test_v6_steered(void **state)
{
	(void)state;
	xdp_case(&(struct pkt_spec){ .v6 = true, .sport = 40000, .dport = 443, .payload_len = 64 }, XDP_PASS,
		 11443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .v6 = true, .sport = 40000, .dport = 443, .tcp_opt_len = 12,
				     .ext_hop = 8, .ext_dst = 16, .payload_len = 7 },
		 XDP_PASS, 11443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .v6 = true, .sport = 40000, .dport = 443, .ext_frag = true,
				     .payload_len = 20 },
		 XDP_PASS, 11443, STEER_CNT_STEERED_IN);
}

static void test_vlan_steered(void **state)
{
	(void)state;
	xdp_case(&(struct pkt_spec){ .vlan = 1, .sport = 40000, .dport = 443, .payload_len = 5 }, XDP_PASS,
		 11443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .vlan = 2, .v6 = true, .sport = 40000, .dport = 443 }, XDP_PASS, 11443,
		 STEER_CNT_STEERED_IN);
}

static void test_not_ours_passed(void **state)
{
	(void)state;
	/* Other ports, the internal port itself, other protocols, the reply direction. */
	xdp_case(&(struct pkt_spec){ .dport = 80, .sport = 443 }, XDP_PASS, 0, STEER_CNT_PASSED);
	xdp_case(&(struct pkt_spec){ .dport = 11443 }, XDP_PASS, 0, STEER_CNT_PASSED);
	xdp_case(&(struct pkt_spec){ .v6 = true, .dport = 4430 }, XDP_PASS, 0, STEER_CNT_PASSED);
	xdp_case(&(struct pkt_spec){ .proto = 17, .dport = 443 }, XDP_PASS, 0, STEER_CNT_PASSED);
	xdp_case(&(struct pkt_spec){ .v6 = true, .proto = 17, .dport = 443 }, XDP_PASS, 0, STEER_CNT_PASSED);
	/* Three IPv6 extension headers (Hop-by-Hop, Destination, Fragment) are followed. */
	xdp_case(&(struct pkt_spec){ .v6 = true, .dport = 443, .ext_hop = 8, .ext_dst = 8, .ext_frag = true },
		 XDP_PASS, 11443, STEER_CNT_STEERED_IN);
}

/* Raw frames: ARP, a non-first IPv4 fragment, an IPv6 non-first fragment. */
static void test_other_frames_passed(void **state)
{
	uint8_t in[2048];
	struct pkt_layout l;
	struct run r;
	uint64_t before;

	(void)state;
	memset(in, 0, 60);
	in[12] = 0x08, in[13] = 0x06; /* ARP */
	before = counter(STEER_CNT_PASSED);
	run_ingress(in, 60, &r);
	assert_int_equal(r.retval, XDP_PASS);
	assert_int_equal(counter(STEER_CNT_PASSED), before + 1);

	pkt_build(in, sizeof(in), &(struct pkt_spec){ .dport = 443, .payload_len = 20 }, &l);
	in[l.l3 + 6] = 0x00, in[l.l3 + 7] = 0x10; /* fragment offset 128: bytes at l4 are not TCP */
	before = counter(STEER_CNT_PASSED);
	run_ingress(in, l.len, &r);
	assert_int_equal(r.retval, XDP_PASS);
	assert_memory_equal(in, r.out, l.len);
	assert_int_equal(counter(STEER_CNT_PASSED), before + 1);

	pkt_build(in, sizeof(in), &(struct pkt_spec){ .v6 = true, .ext_frag = true, .dport = 443 }, &l);
	in[l.l4 - 8 + 2] = 0x01; /* fragment offset 32 */
	before = counter(STEER_CNT_PASSED);
	run_ingress(in, l.len, &r);
	assert_int_equal(r.retval, XDP_PASS);
	assert_memory_equal(in, r.out, l.len);
	assert_int_equal(counter(STEER_CNT_PASSED), before + 1);
}

/* Each mutation of a good matching packet must come out untouched, counted malformed. */
static void test_malformed(void **state)
{
	static const struct {
		const char *what;
		bool v6;
		int ext_hop;
		int cut;                 /* frame length: l.len - cut */
		int off_from;            /* 0 = l3, 1 = l4, 2 = ext header */
		int off, val;            /* byte to overwrite, -1 = none */
	} cases[] = {
		{ "eth only", false, 0, -14, 0, -1, 0 },      /* cut to exactly 14 bytes, see below */
		{ "ipv4 cut", false, 0, -24, 0, -1, 0 },
		{ "ipv4 ihl 4", false, 0, 0, 0, 0, 0x44 },
		{ "ipv4 ihl 0", false, 0, 0, 0, 0, 0x40 },
		{ "ipv4 version 6", false, 0, 0, 0, 0, 0x65 },
		{ "ipv4 ihl past end", false, 0, -54, 0, 0, 0x4f },
		{ "tcp cut", false, 0, -44, 0, -1, 0 },
		{ "tcp doff 4", false, 0, 0, 1, 12, 0x40 },
		{ "tcp doff 0", false, 0, 0, 1, 12, 0x00 },
		{ "tcp doff past end", false, 0, 0, 1, 12, 0xf0 },
		{ "ipv6 cut", true, 0, -50, 0, -1, 0 },
		{ "ipv6 version 4", true, 0, 0, 0, 0, 0x40 },
		{ "ipv6 ext cut", true, 8, -55, 0, -1, 0 },
		{ "ipv6 ext len past end", true, 8, 0, 2, 1, 0xff },
		{ "ipv6 tcp cut", true, 0, -64, 0, -1, 0 },
	};
	uint8_t in[2048];
	struct pkt_layout l;
	struct run r;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len, at;
		uint64_t before = counter(STEER_CNT_MALFORMED);

		pkt_build(in, sizeof(in), &(struct pkt_spec){ .v6 = cases[i].v6, .ext_hop = cases[i].ext_hop,
							     .dport = 443, .payload_len = 0 }, &l);
		/* A negative cut is an absolute length: -N keeps N bytes. */
		len = cases[i].cut < 0 ? (size_t)-cases[i].cut : l.len - (size_t)cases[i].cut;
		if (cases[i].off >= 0) {
			at = (cases[i].off_from == 0 ? l.l3 : cases[i].off_from == 1 ? l.l4 : l.l3 + 40) +
			     (size_t)cases[i].off;
			in[at] = (uint8_t)cases[i].val;
		}
		if (!ran_ingress(in, len, &r))
			continue;
		if (r.retval != XDP_PASS || counter(STEER_CNT_MALFORMED) != before + 1 ||
		    memcmp(in, r.out, len) != 0)
			fail_msg("%s: verdict %u, malformed %+d", cases[i].what, r.retval,
				 (int)(counter(STEER_CNT_MALFORMED) - before));
	}
}

static void test_configured_ports(void **state)
{
	(void)state;
	set_config(8443, 9443, 0, 0);
	xdp_case(&(struct pkt_spec){ .dport = 8443 }, XDP_PASS, 9443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .v6 = true, .dport = 8443 }, XDP_PASS, 9443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .dport = 443 }, XDP_PASS, 0, STEER_CNT_PASSED);
	/* Only one field set: the other keeps its default. */
	set_config(0, 2000, 0, 0);
	xdp_case(&(struct pkt_spec){ .dport = 443 }, XDP_PASS, 2000, STEER_CNT_STEERED_IN);
}

static void test_defaults_all_zero(void **state)
{
	struct steer_config c;
	uint32_t k = 0;

	(void)state;
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.steer_config), &k, &c), 0);
	assert_int_equal(c.ike_tcp_port | c.internal_port | c.syn_rate | c.flags, 0);
	xdp_case(&(struct pkt_spec){ .dport = 443 }, XDP_PASS, 11443, STEER_CNT_STEERED_IN);
	/* No SYN limit by default. */
	for (int i = 0; i < 50; i++)
		xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN }, XDP_PASS, 11443,
			 STEER_CNT_STEERED_IN);
}

static void test_4500_not_rewritten(void **state)
{
	(void)state;
	set_config(4500, 11443, 0, 0);
	xdp_case(&(struct pkt_spec){ .dport = 4500 }, XDP_PASS, 0, STEER_CNT_PASSED);
	xdp_case(&(struct pkt_spec){ .dport = 443 }, XDP_PASS, 0, STEER_CNT_PASSED);
	set_config(7000, 7000, 0, 0);
	xdp_case(&(struct pkt_spec){ .v6 = true, .dport = 7000 }, XDP_PASS, 0, STEER_CNT_PASSED);
}

static void test_syn_limit(void **state)
{
	const uint32_t rate = 4;

	(void)state;
	set_config(0, 0, rate, 0);
	/* The burst (rate SYNs) from one source passes, the next is dropped. */
	for (uint32_t i = 0; i < rate; i++)
		xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_PASS,
			 11443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_DROP, 0,
		 STEER_CNT_SYN_DROPPED);
	xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_DROP, 0,
		 STEER_CNT_SYN_DROPPED);
	/* Not SYNs: an established flow from the same source, a SYN to another port. */
	xdp_case(&(struct pkt_spec){ .dport = 443, .src_last = 7 }, XDP_PASS, 11443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN | TCPF_ACK, .src_last = 7 }, XDP_PASS,
		 11443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .dport = 80, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_PASS, 0,
		 STEER_CNT_PASSED);
	/* Another source, in both families, has its own bucket. */
	xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 8 }, XDP_PASS, 11443,
		 STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .v6 = true, .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_PASS,
		 11443, STEER_CNT_STEERED_IN);
	/* IPv6: one bucket per /64; another /64 is another source. */
	for (uint32_t i = 1; i < rate; i++)
		xdp_case(&(struct pkt_spec){ .v6 = true, .dport = 443, .tcp_flags = TCPF_SYN, .src_last = (uint8_t)(7 + i) },
			 XDP_PASS, 11443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .v6 = true, .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 99 }, XDP_DROP, 0,
		 STEER_CNT_SYN_DROPPED);
	xdp_case(&(struct pkt_spec){ .v6 = true, .dport = 443, .tcp_flags = TCPF_SYN, .src_net = 1, .src_last = 99 },
		 XDP_PASS, 11443, STEER_CNT_STEERED_IN);
	/* Credit comes back with time: 1/rate s buys one SYN. */
	usleep(1000000 / rate + 20000);
	xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_PASS, 11443,
		 STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_DROP, 0,
		 STEER_CNT_SYN_DROPPED);
	/* A long idle refills to the burst and no further. */
	usleep(1300000);
	for (uint32_t i = 0; i < rate; i++)
		xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_PASS,
			 11443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_DROP, 0,
		 STEER_CNT_SYN_DROPPED);
	/* With ike-tcp-port 4500 there is no rewrite, but the limit still holds. */
	set_config(4500, 0, rate, 0);
	for (uint32_t i = 0; i < rate; i++)
		xdp_case(&(struct pkt_spec){ .dport = 4500, .tcp_flags = TCPF_SYN, .src_last = 9 }, XDP_PASS, 0,
			 STEER_CNT_PASSED);
	xdp_case(&(struct pkt_spec){ .dport = 4500, .tcp_flags = TCPF_SYN, .src_last = 9 }, XDP_DROP, 0,
		 STEER_CNT_SYN_DROPPED);
	/* Rate 0: no limit, even for the source that was over it. */
	set_config(0, 0, 0, 0);
	for (int i = 0; i < 20; i++)
		xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_PASS,
			 11443, STEER_CNT_STEERED_IN);
}

/*
 * Another CPU may stamp a bucket after this one read the clock, so a bucket can be a little ahead of
 * now: no time has passed then, and the bucket must not count the difference as ages of credit.
 */
static void test_syn_bucket_ahead(void **state)
{
	const uint32_t rate = 4;
	int fd = bpf_map__fd(skel->maps.steer_syn);
	struct iketcp_addr key;
	struct steer_syn_bucket b;

	(void)state;
	set_config(0, 0, rate, 0);
	for (uint32_t i = 0; i < rate; i++)
		xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_PASS,
			 11443, STEER_CNT_STEERED_IN);
	/* The one bucket, stamped 100 ms after the next SYN reads the clock. */
	assert_int_equal(bpf_map_get_next_key(fd, NULL, &key), 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &key, &b), 0);
	assert_true(b.credit_ns < 1000000000ull / rate);
	b.last_ns += 100000000ull;
	assert_int_equal(bpf_map_update_elem(fd, &key, &b, BPF_EXIST), 0);
	xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_DROP, 0,
		 STEER_CNT_SYN_DROPPED);
	xdp_case(&(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 7 }, XDP_DROP, 0,
		 STEER_CNT_SYN_DROPPED);
}

static void test_local_only(void **state)
{
	struct iketcp_addr a = { { [10] = 0xff, [11] = 0xff, [12] = 198, [13] = 51, [14] = 100, [15] = 1 } };
	struct steer_local_val one = { 1 };

	(void)state;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.steer_local), &a, &one, BPF_ANY), 0);
	/* Entries without the flag: any destination (the flag is how the loader says "restrict"). */
	xdp_case(&(struct pkt_spec){ .dport = 443, .dst_last = 2 }, XDP_PASS, 11443, STEER_CNT_STEERED_IN);
	set_config(0, 0, 0, STEER_F_LOCAL_ONLY);
	xdp_case(&(struct pkt_spec){ .dport = 443, .dst_last = 1 }, XDP_PASS, 11443, STEER_CNT_STEERED_IN);
	xdp_case(&(struct pkt_spec){ .dport = 443, .dst_last = 2 }, XDP_PASS, 0, STEER_CNT_PASSED);
	xdp_case(&(struct pkt_spec){ .v6 = true, .dport = 443, .dst_last = 1 }, XDP_PASS, 0, STEER_CNT_PASSED);
}

/* Random ports, payloads and lengths: the incremental update always matches a full recomputation. */
static void test_checksum_random(void **state)
{
	(void)state;
	srand(4242);
	for (int i = 0; i < 300; i++) {
		uint16_t ike = (uint16_t)(1 + rand() % 65535), in = (uint16_t)(1 + rand() % 65535);

		if (ike == 4500 || ike == in)
			continue;
		set_config(ike, in, 0, 0);
		xdp_case(&(struct pkt_spec){ .v6 = i & 1, .dport = ike, .sport = (uint16_t)rand(),
					     .payload_len = rand() % 200, .fill = (uint8_t)rand(),
					     .tcp_opt_len = 4 * (rand() % 11), .src_last = (uint8_t)rand() },
			 XDP_PASS, in, STEER_CNT_STEERED_IN);
	}
}

/*
 * Hostile bytes: valid packets with random bytes overwritten and random cuts.
 * With no SYN limit every verdict is XDP_PASS, exactly one counter moves, and
 * the output differs from the input in at most the 4 bytes of a port and the
 * checksum, and only when steered_in moved.
 */
static void test_mutated(void **state)
{
	uint8_t in[2048];
	struct pkt_layout l;
	struct run r;

	(void)state;
	srand(1624);
	for (int i = 0; i < 4000; i++) {
		uint64_t before[STEER_CNT_MAX], after_sum = 0, before_sum = 0;
		size_t len, diff = 0;

		pkt_build(in, sizeof(in), &(struct pkt_spec){ .v6 = i & 1, .vlan = (i >> 1) % 3,
							     .ip_opt_len = 4 * (rand() % 3), .ext_hop = (i & 8) ? 8 : 0,
							     .tcp_opt_len = 4 * (rand() % 4), .dport = 443,
							     .payload_len = rand() % 40 }, &l);
		for (int m = rand() % 4; m >= 0; m--)
			in[rand() % (int)l.len] = (uint8_t)rand();
		len = 14 + (size_t)rand() % (l.len - 13);
		for (int c = 0; c < STEER_CNT_MAX; c++)
			before[c] = counter(c), before_sum += before[c];
		if (!ran_ingress(in, len, &r))
			continue;
		assert_int_equal(r.retval, XDP_PASS);
		for (int c = 0; c < STEER_CNT_MAX; c++)
			after_sum += counter(c);
		assert_int_equal(after_sum, before_sum + 1);
		for (size_t b = 0; b < len; b++)
			diff += in[b] != r.out[b];
		assert_true(diff <= 4);
		if (diff)
			assert_int_equal(counter(STEER_CNT_STEERED_IN), before[STEER_CNT_STEERED_IN] + 1);
	}
}

/* tc egress: replies from the internal port leave with ike-tcp-port. */
static void tc_case(const struct pkt_spec *s, uint16_t want)
{
	uint8_t in[2048];
	struct pkt_layout l;
	struct run r;
	uint64_t before = counter(STEER_CNT_STEERED_OUT);

	assert_true(pkt_build(in, sizeof(in), s, &l) > 0);
	run_tc(in, l.len, &r);
	if (want) {
		assert_rewritten(in, &r, &l, s->v6, 0, want);
		assert_int_equal(counter(STEER_CNT_STEERED_OUT), before + 1);
	} else {
		assert_memory_equal(in, r.out, l.len);
		assert_int_equal(counter(STEER_CNT_STEERED_OUT), before);
	}
}

static void test_tc_egress(void **state)
{
	(void)state;
	tc_case(&(struct pkt_spec){ .sport = 11443, .dport = 40000, .payload_len = 99 }, 443);
	tc_case(&(struct pkt_spec){ .sport = 11443, .dport = 40000, .tcp_flags = TCPF_SYN | TCPF_ACK,
				    .tcp_opt_len = 20 },
		443);
	tc_case(&(struct pkt_spec){ .v6 = true, .sport = 11443, .dport = 40000, .ip_opt_len = 0,
				    .payload_len = 1000 },
		443);
	tc_case(&(struct pkt_spec){ .sport = 11444, .dport = 40000 }, 0);
	tc_case(&(struct pkt_spec){ .sport = 443, .dport = 11443 }, 0);
	tc_case(&(struct pkt_spec){ .proto = 17, .sport = 11443, .dport = 40000 }, 0);
	set_config(8443, 9443, 0, 0);
	tc_case(&(struct pkt_spec){ .sport = 9443, .dport = 1234, .ip_opt_len = 8 }, 8443);
	tc_case(&(struct pkt_spec){ .sport = 11443, .dport = 1234 }, 0);
	set_config(4500, 11443, 0, 0);
	tc_case(&(struct pkt_spec){ .sport = 11443, .dport = 1234 }, 0);
	set_config(0, 0, 0, 0);
	srand(77);
	for (int i = 0; i < 100; i++)
		tc_case(&(struct pkt_spec){ .v6 = i & 1, .sport = 11443, .dport = (uint16_t)rand(),
					    .payload_len = rand() % 300, .fill = (uint8_t)rand() },
			443);
}

static void test_abi_map_present(void **state)
{
	struct iketcp_abi abi = { 1234 };
	uint32_t k = 0;

	(void)state;
	/* Not written by the program itself: zero until the loader writes IKETCP_MAPS_ABI. */
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.steer_abi), &k, &abi), 0);
	assert_int_equal(abi.version, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		GUARDED(test_abi_map_present),
		GUARDED(test_defaults_all_zero),
		GUARDED(test_v4_steered),
		GUARDED(test_v4_options_steered),
		GUARDED(test_v6_steered),
		GUARDED(test_vlan_steered),
		GUARDED(test_not_ours_passed),
		GUARDED(test_other_frames_passed),
		GUARDED(test_malformed),
		GUARDED(test_configured_ports),
		GUARDED(test_4500_not_rewritten),
		GUARDED(test_syn_limit),
		GUARDED(test_syn_bucket_ahead),
		GUARDED(test_local_only),
		GUARDED(test_checksum_random),
		GUARDED(test_mutated),
		GUARDED(test_tc_egress),
	};

	libbpf_set_print(quiet);
	skel = steer_bpf__open_and_load();
	bpf_test_loaded = skel != NULL;
	if (!skel)
		fprintf(stderr, "steer.bpf.o does not load (%s): skipping (needs root and BPF)\n",
			strerror(errno));
	ncpus = libbpf_num_possible_cpus();
	int rc = cmocka_run_group_tests_name("bpf_steer", tests, NULL, NULL);
	ingress_tc = true;
	rc |= cmocka_run_group_tests_name("bpf_steer_tc_ingress", tests, NULL, NULL);
	steer_bpf__destroy(skel);
	return rc;
}
