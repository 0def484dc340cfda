/*
 * clear.bpf.c through BPF_PROG_TEST_RUN: destinations in and out of the
 * selector tries (IPv4, IPv6, nested prefixes), empty maps, non-IP and
 * malformed frames, and the XSKMAP verdict with and without a socket bound to
 * the RX queue (a veth in a private netns carries the AF_XDP socket).
 * Needs root and BPF; every test skips when the object cannot be loaded.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#include "iketcp/compiler.h"
#include "maps/maps.h"
#include "clear.skel.h"
#include "tests/bpf/bpf_test.h"
#include "tests/bpf/steer_pkt.h"

static struct clear_bpf *skel;
static int ncpus;
static int veth_ifindex; /* 0: no veth, the XSK test skips */

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

static uint64_t counter(enum clear_counter idx)
{
	uint64_t v[ncpus], sum = 0;
	uint32_t k = idx;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.clear_counters), &k, v), 0);
	for (int i = 0; i < ncpus; i++)
		sum += v[i];
	return sum;
}


static void add_v4(const char *net, uint32_t plen)
{
	struct clear_v4_key k = { .prefixlen = plen };
	struct clear_sel v = { .sa_count = 1 };

	assert_int_equal(inet_pton(AF_INET, net, k.addr), 1);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.clear_v4), &k, &v, BPF_ANY), 0);
}

static void add_v6(const char *net, uint32_t plen)
{
	struct clear_v6_key k = { .prefixlen = plen };
	struct clear_sel v = { .sa_count = 1 };

	assert_int_equal(inet_pton(AF_INET6, net, k.addr), 1);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.clear_v6), &k, &v, BPF_ANY), 0);
}




static int setup(void **state)
{
	(void)state;
	if (!skel)
		return 0;
	clear_map(skel->maps.clear_v4);
	clear_map(skel->maps.clear_v6);
	uint32_t q = 0;
	bpf_map_delete_elem(bpf_map__fd(skel->maps.clear_xsks), &q);
	return 0;
}

/* Runs the frame; with ifindex, as received on that device's queue 0. Returns the verdict. */
static uint32_t run_on(const uint8_t *in, size_t len, int ifindex)
{
	uint8_t out[2048];
	/* The kernel wants data_end == the frame's length when a context is given. */
	struct xdp_md ctx = { .data_end = (uint32_t)len, .ingress_ifindex = (uint32_t)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);

	if (ifindex)
		o.ctx_in = &ctx, o.ctx_size_in = sizeof(ctx);
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.xdp_clear), &o), 0);
	/* Nothing is ever rewritten. */
	assert_int_equal(o.data_size_out, len);
	assert_memory_equal(in, out, len);
	return o.retval;
}

/* The frame gets `verdict` and moves exactly the counter `cnt`. */
static void xdp_case_on(const uint8_t *in, size_t len, int ifindex, uint32_t verdict, enum clear_counter cnt)
{
	uint64_t before[CLEAR_CNT_MAX];

	for (int c = 0; c < CLEAR_CNT_MAX; c++)
		before[c] = counter(c);
	assert_int_equal(run_on(in, len, ifindex), verdict);
	for (int c = 0; c < CLEAR_CNT_MAX; c++)
		assert_int_equal(counter(c), before[c] + (c == (int)cnt));
}

static void xdp_case(const uint8_t *in, size_t len, uint32_t verdict, enum clear_counter cnt)
{
	xdp_case_on(in, len, 0, verdict, cnt);
}

/* A UDP packet to dst (v4 or v6 literal). */
static size_t build(uint8_t *b, const char *dst)
{
	struct pkt_layout l;
	bool v6 = strchr(dst, ':') != NULL;

	assert_true(pkt_build(b, 2048, &(struct pkt_spec){ .v6 = v6, .proto = 17, .payload_len = 32 }, &l) > 0);
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, dst, b + l.l3 + (v6 ? 24 : 16)), 1);
	return l.len;
}

static void expect(const char *dst, uint32_t verdict, enum clear_counter cnt)
{
	uint8_t b[2048];
	size_t len = build(b, dst);

	xdp_case(b, len, verdict, cnt);
}

static void test_empty_maps_pass(void **state)
{
	(void)state;
	expect("10.2.0.10", XDP_PASS, CLEAR_CNT_PASSED);
	expect("198.51.100.1", XDP_PASS, CLEAR_CNT_PASSED);
	expect("2001:db8:2::10", XDP_PASS, CLEAR_CNT_PASSED);
	expect("::", XDP_PASS, CLEAR_CNT_PASSED);
}

/* A match with no socket on the queue still goes to the kernel, counted apart. */
static void test_v4_match_and_miss(void **state)
{
	(void)state;
	add_v4("10.2.0.0", 24);
	expect("10.2.0.10", XDP_PASS, CLEAR_CNT_NO_XSK);
	expect("10.2.0.255", XDP_PASS, CLEAR_CNT_NO_XSK);
	expect("10.2.1.10", XDP_PASS, CLEAR_CNT_PASSED);
	expect("10.1.0.10", XDP_PASS, CLEAR_CNT_PASSED);
	/* A v4 selector never matches IPv6, even the mapped form. */
	expect("::ffff:10.2.0.10", XDP_PASS, CLEAR_CNT_PASSED);
	add_v4("10.3.0.7", 32);
	expect("10.3.0.7", XDP_PASS, CLEAR_CNT_NO_XSK);
	expect("10.3.0.8", XDP_PASS, CLEAR_CNT_PASSED);
	add_v4("0.0.0.0", 0);
	expect("203.0.113.9", XDP_PASS, CLEAR_CNT_NO_XSK);
}

static void test_v6_match_and_miss(void **state)
{
	(void)state;
	add_v6("2001:db8:2::", 48);
	expect("2001:db8:2::10", XDP_PASS, CLEAR_CNT_NO_XSK);
	expect("2001:db8:2:ffff::1", XDP_PASS, CLEAR_CNT_NO_XSK);
	expect("2001:db8:3::10", XDP_PASS, CLEAR_CNT_PASSED);
	expect("10.2.0.10", XDP_PASS, CLEAR_CNT_PASSED);
	add_v6("2001:db8:9::1", 128);
	expect("2001:db8:9::1", XDP_PASS, CLEAR_CNT_NO_XSK);
	expect("2001:db8:9::2", XDP_PASS, CLEAR_CNT_PASSED);
}

static void test_not_ip_passed(void **state)
{
	uint8_t arp[42] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06 };
	uint8_t b[2048];
	size_t len;

	(void)state;
	add_v4("0.0.0.0", 0);
	xdp_case(arp, sizeof(arp), XDP_PASS, CLEAR_CNT_PASSED);
	/* A VLAN-tagged frame is not ours (the daemon strips only Ethernet). */
	struct pkt_layout l;
	len = pkt_build(b, sizeof(b), &(struct pkt_spec){ .vlan = 1, .proto = 17, .payload_len = 8 }, &l);
	xdp_case(b, len, XDP_PASS, CLEAR_CNT_PASSED);
}

static void test_malformed_passed(void **state)
{
	uint8_t b[2048];
	size_t len;

	(void)state;
	add_v4("0.0.0.0", 0);
	add_v6("::", 0);
	/* Every cut inside the IPv4 and IPv6 headers. */
	len = build(b, "10.2.0.10");
	for (size_t cut = 14; cut < 14 + 20; cut++)
		xdp_case(b, cut, XDP_PASS, CLEAR_CNT_MALFORMED);
	len = build(b, "2001:db8::1");
	for (size_t cut = 14; cut < 14 + 40; cut++)
		xdp_case(b, cut, XDP_PASS, CLEAR_CNT_MALFORMED);
	/* Wrong version under the EtherType, IHL below 5, IHL past the end. */
	len = build(b, "10.2.0.10");
	b[14] = 0x65;
	xdp_case(b, len, XDP_PASS, CLEAR_CNT_MALFORMED);
	b[14] = 0x44;
	xdp_case(b, len, XDP_PASS, CLEAR_CNT_MALFORMED);
	b[14] = 0x4f;
	xdp_case(b, 14 + 40, XDP_PASS, CLEAR_CNT_MALFORMED);
	len = build(b, "2001:db8::1");
	b[14] = 0x40;
	xdp_case(b, len, XDP_PASS, CLEAR_CNT_MALFORMED);
}

/* Random bytes: always XDP_PASS (no socket), exactly one counter moves, nothing rewritten. */
static void test_mutated(void **state)
{
	uint8_t b[2048];

	(void)state;
	add_v4("10.2.0.0", 16);
	add_v6("2001:db8::", 32);
	srand(77);
	for (int i = 0; i < 3000; i++) {
		size_t len = build(b, (i & 1) ? "2001:db8::5" : "10.2.3.4");
		for (int m = rand() % 4; m >= 0; m--)
			b[rand() % (int)len] = (uint8_t)rand();
		len = 14 + (size_t)rand() % (len - 13);
		uint64_t before = 0, after = 0;
		for (int c = 0; c < CLEAR_CNT_MAX; c++)
			before += counter(c);
		assert_int_equal(run_on(b, len, 0), XDP_PASS);
		for (int c = 0; c < CLEAR_CNT_MAX; c++)
			after += counter(c);
		assert_int_equal(after, before + 1);
	}
}

/* An AF_XDP socket on the veth's queue 0 in the XSKMAP: a match is XDP_REDIRECT, a miss still passes. */
static void test_xsk_redirect(void **state)
{
	struct xsk_socket_config cfg = { .rx_size = 64, .tx_size = 64, .bind_flags = XDP_COPY,
					 .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD };
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp, rx;
	struct xsk_umem *umem = NULL;
	struct xsk_socket *xsk = NULL;
	size_t area_len = 64 * 4096;
	uint8_t b[2048];
	size_t len;

	(void)state;
	if (!veth_ifindex)
		skip();
	void *area = mmap(NULL, area_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(area != MAP_FAILED);
	assert_int_equal(xsk_umem__create(&umem, area, area_len, &fill, &comp, NULL), 0);
	assert_int_equal(xsk_socket__create(&xsk, "clrt0", 0, umem, &rx, NULL, &cfg), 0);
	uint32_t q = 0, fd = (uint32_t)xsk_socket__fd(xsk);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.clear_xsks), &q, &fd, BPF_ANY), 0);

	add_v4("10.2.0.0", 24);
	add_v6("2001:db8:2::", 64);
	len = build(b, "10.2.0.10");
	xdp_case_on(b, len, veth_ifindex, XDP_REDIRECT, CLEAR_CNT_TO_XSK);
	len = build(b, "2001:db8:2::7");
	xdp_case_on(b, len, veth_ifindex, XDP_REDIRECT, CLEAR_CNT_TO_XSK);
	len = build(b, "10.9.0.10");
	xdp_case_on(b, len, veth_ifindex, XDP_PASS, CLEAR_CNT_PASSED);
	/* The socket gone from the map: back to no_xsk. */
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(skel->maps.clear_xsks), &q), 0);
	len = build(b, "10.2.0.10");
	xdp_case_on(b, len, veth_ifindex, XDP_PASS, CLEAR_CNT_NO_XSK);

	xsk_socket__delete(xsk);
	assert_int_equal(xsk_umem__delete(umem), 0);
	munmap(area, area_len);
}

/* A private netns with one veth pair for the XSK test; failures only skip that test. */
static void veth_setup(void)
{
	if (unshare(CLONE_NEWNET) != 0)
		return;
	if (system("ip link add clrt0 type veth peer name clrt1 && ip link set clrt0 up && "
		   "ip link set clrt1 up") != 0)
		return;
	veth_ifindex = (int)if_nametoindex("clrt0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		GUARDED(test_empty_maps_pass),  GUARDED(test_v4_match_and_miss), GUARDED(test_v6_match_and_miss),
		GUARDED(test_not_ip_passed),    GUARDED(test_malformed_passed),  GUARDED(test_mutated),
		GUARDED(test_xsk_redirect),
	};

	libbpf_set_print(quiet);
	ncpus = libbpf_num_possible_cpus();
	veth_setup();
	skel = clear_bpf__open_and_load();
	bpf_test_loaded = skel != NULL;
	if (!skel)
		fprintf(stderr, "clear.bpf.o cannot be loaded (%s): skipping\n", strerror(errno));
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	clear_bpf__destroy(skel);
	return rc;
}
