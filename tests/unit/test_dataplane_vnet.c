/*
 * The TUN dataplane with virtio-net offloads, without a device: the "TUN" is
 * a SOCK_SEQPACKET socket pair framed as IFF_VNET_HDR frames it, and the peer
 * is two esp_sa built from the same keys (peer in = A's out, peer out = A's in).
 *
 *   vnet read (superpacket) --dataplane_tun_input_for_test--> split, sealed --> queued frames --peer opens
 *   peer seals segments --> dataplane_esp_input ... dataplane_tx_flush --> one vnet write --> test reads
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "dataplane/dataplane.h"
#include "dataplane/gso.h"
#include "esp/esp.h"
#include "iketcp/compiler.h"
#include "iketcp/stats.h"
#include "tests/lib/tcp_build.h"
#include "workers.h"

#define SPI_A_IN 0xa0000001u
#define SPI_A_OUT 0xb0000001u
#define MAX_FRAMES 128

static char stream_a;
#define CONN_A ((struct tcp_conn *)&stream_a)

struct fix {
	struct dataplane *dp;
	int tun; /* the test's end of the "TUN" */
	struct esp_sa peer_in, peer_out;
	/* what the dataplane queued for the stream, and how often it flushed */
	unsigned n_frames, flushes;
	size_t len[MAX_FRAMES];
	uint8_t frame[MAX_FRAMES][2048];
};

static uint8_t key_out[20], key_in[20];

static int queue(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	struct fix *f = arg;

	assert_ptr_equal(c, CONN_A);
	assert_true(f->n_frames < MAX_FRAMES && len <= sizeof(f->frame[0]));
	memcpy(f->frame[f->n_frames], esp, len);
	f->len[f->n_frames++] = len;
	return 0;
}

static void flush(void *arg)
{
	((struct fix *)arg)->flushes++;
}

static int send_unbatched(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	(void)arg, (void)c, (void)esp, (void)len;
	fail_msg("sent without the batch");
	return -EIO;
}

static struct esp_sa_params gcm(uint32_t spi, bool outbound, const uint8_t *key)
{
	return (struct esp_sa_params){ .spi = spi, .outbound = outbound, .cipher = ESP_AES_GCM_16,
				       .enc_key_bits = 128, .keymat = key, .keymat_len = 20, .replay = true };
}

static struct child_ts ts(int family, uint8_t net, uint8_t len)
{
	struct child_ts t = { .family = (uint8_t)family, .prefix_len = len };
	if (family == AF_INET) {
		uint8_t a[4] = { 10, net, 0, 0 };
		memcpy(&t.addr.v4, a, 4);
	} else {
		uint8_t a[16] = { 0xfd, net };
		memcpy(&t.addr.v6, a, 16);
	}
	return t;
}

/* The second round: two threads share each batch's crypto (dataplane/esp_batch.h). */
static struct workers *workers;

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	int sp[2];

	assert_non_null(f);
	for (size_t i = 0; i < sizeof(key_out); i++) {
		key_out[i] = (uint8_t)(0x10 + i);
		key_in[i] = (uint8_t)(0x80 + 3 * i);
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
	int big = 4 << 20;
	assert_int_equal(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
	f->tun = sp[1];
	f->dp = dataplane_fd_new_for_test(sp[0], send_unbatched, f);
	assert_non_null(f->dp);
	dataplane_vnet_for_test(f->dp, true);
	dataplane_set_batch(f->dp, queue, flush);
	dataplane_set_workers(f->dp, workers);
	/* 10.1.0.0/24 <-> 10.2.0.0/24 and fd01::/64 <-> fd02::/64 */
	struct child_sa c = { .phase1 = "p1", .phase2 = "p2", .spi_in = SPI_A_IN, .spi_out = SPI_A_OUT,
			      .in = gcm(SPI_A_IN, false, key_in), .out = gcm(SPI_A_OUT, true, key_out),
			      .n_ts = 2, .conn = CONN_A, .proposal = "AES_GCM_16_128" };
	c.local_ts[0] = ts(AF_INET, 1, 24);
	c.remote_ts[0] = ts(AF_INET, 2, 24);
	c.local_ts[1] = ts(AF_INET6, 1, 64);
	c.remote_ts[1] = ts(AF_INET6, 2, 64);
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), 0);
	struct esp_sa_params pin = gcm(SPI_A_OUT, false, key_out), pout = gcm(SPI_A_IN, true, key_in);
	assert_int_equal(esp_sa_init(&f->peer_in, &pin), 0);
	assert_int_equal(esp_sa_init(&f->peer_out, &pout), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	dataplane_free(f->dp);
	close(f->tun);
	esp_sa_destroy(&f->peer_in);
	esp_sa_destroy(&f->peer_out);
	free(f);
	return 0;
}

static struct dataplane_counters ctrs(struct fix *f)
{
	struct dataplane_counters c;
	dataplane_counters(f->dp, &c);
	return c;
}

static uint8_t rd[GSO_VNET_HDR_LEN + 70000], inner[70000], esp[70000];

/* A vnet header and packet as one TUN read. */
static size_t vnet_read(const struct gso_hdr *h, const uint8_t *pkt, size_t len)
{
	gso_hdr_write(rd, h);
	memcpy(rd + GSO_VNET_HDR_LEN, pkt, len);
	return GSO_VNET_HDR_LEN + len;
}

/* Frame i opened by the peer: the inner packet's length. */
static size_t open_frame(struct fix *f, unsigned i)
{
	uint8_t nh = 0;
	ssize_t n = esp_decap(&f->peer_in, f->frame[i], f->len[i], inner, sizeof(inner), &nh);
	assert_true(n > 0);
	return (size_t)n;
}

/* ---- read side: superpackets split, sealed, queued, flushed once ------------- */

static void tso_read(struct fix *f, bool v6)
{
	static uint8_t pkt[70000];
	struct tcp_spec s = { .v6 = v6, .optlen = 12, .seq = 0x10000, .flags = TH_ACK | TH_PSH, .id = 7,
			      .df = true, .payload = 4500, .fill = 9 };
	size_t len = mk_tcp(pkt, &s), hl = (v6 ? 40 : 20) + 32;
	struct gso_hdr h = { .flags = GSO_F_NEEDS_CSUM, .gso_type = v6 ? GSO_TYPE_TCPV6 : GSO_TYPE_TCPV4,
			     .hdr_len = (uint16_t)hl, .gso_size = 1000, .csum_start = v6 ? 40 : 20, .csum_offset = 16 };
	size_t off, at = hl;

	/* As the kernel hands it over: the TCP checksum field holds the pseudo-header sum only. */
	put16(pkt + (v6 ? 40 : 20) + 16, fold16(pseudo_sum(pkt, len, IPPROTO_TCP, &off)));
	dataplane_tun_input_for_test(f->dp, rd, vnet_read(&h, pkt, len));
	assert_int_equal(f->n_frames, 5);
	assert_int_equal(f->flushes, 1);
	for (unsigned i = 0; i < 5; i++) {
		size_t n = open_frame(f, i), pay = i < 4 ? 1000 : 500;
		assert_int_equal(n, hl + pay);
		assert_true(l4_sum_ok(inner, n, IPPROTO_TCP));
		if (!v6)
			assert_true(ip4_hdr_ok(inner));
		assert_int_equal(be32(inner + (v6 ? 40 : 20) + 4), 0x10000 + (at - hl));
		assert_int_equal(inner[(v6 ? 40 : 20) + 13], i < 4 ? TH_ACK : TH_ACK | TH_PSH);
		assert_memory_equal(inner + hl, pkt + at, pay);
		at += pay;
	}
	assert_int_equal(ctrs(f).gso_reads, 1);
	assert_int_equal(ctrs(f).gso_segments, 5);
	assert_int_equal(ctrs(f).gso_drops, 0);
}

static void test_tso_read_v4(void **state)
{
	tso_read(*state, false);
}

static void test_tso_read_v6(void **state)
{
	tso_read(*state, true);
}

/* NEEDS_CSUM without GSO: completed before sealing. */
static void test_csum_read(void **state)
{
	struct fix *f = *state;
	static uint8_t pkt[2000];
	struct tcp_spec s = { .seq = 1, .flags = TH_ACK, .id = 1, .payload = 333 };
	size_t len = mk_tcp(pkt, &s), off;
	struct gso_hdr h = { .flags = GSO_F_NEEDS_CSUM, .gso_type = GSO_TYPE_NONE, .csum_start = 20, .csum_offset = 16 };

	put16(pkt + 36, fold16(pseudo_sum(pkt, len, IPPROTO_TCP, &off)));
	dataplane_tun_input_for_test(f->dp, rd, vnet_read(&h, pkt, len));
	assert_int_equal(f->n_frames, 1);
	assert_int_equal(open_frame(f, 0), len);
	assert_true(l4_sum_ok(inner, len, IPPROTO_TCP));
	assert_int_equal(ctrs(f).gso_reads, 0);
}

/* Hostile vnet headers and superpackets: counted, nothing sealed, nothing written. */
static void test_hostile_read(void **state)
{
	struct fix *f = *state;
	static uint8_t pkt[5000];
	struct tcp_spec s = { .seq = 1, .flags = TH_ACK, .id = 1, .payload = 3000 };
	size_t len = mk_tcp(pkt, &s);
	const struct gso_hdr tso = { .flags = GSO_F_NEEDS_CSUM, .gso_type = GSO_TYPE_TCPV4, .hdr_len = 40,
				     .gso_size = 1400, .csum_start = 20, .csum_offset = 16 };
	struct gso_hdr bad[] = { tso, tso, tso, tso, tso, tso, tso };
	bad[0].gso_size = 0;
	bad[1].hdr_len = (uint16_t)(len + 1);
	bad[2].gso_type = GSO_TYPE_UDP_L4;
	bad[3].gso_type = GSO_TYPE_TCPV4 | GSO_TYPE_ECN;
	bad[4].gso_type = GSO_TYPE_TCPV6;
	bad[5] = (struct gso_hdr){ .flags = GSO_F_NEEDS_CSUM, .csum_start = (uint16_t)len };
	bad[6] = (struct gso_hdr){ .flags = GSO_F_NEEDS_CSUM, .csum_start = 20, .csum_offset = 0xfff0 };
	uint64_t drops = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		dataplane_tun_input_for_test(f->dp, rd, vnet_read(&bad[i], pkt, len));
		assert_int_equal(ctrs(f).gso_drops, ++drops);
	}
	/* Shorter than a vnet header; a superpacket whose IPv4 length runs past the read. */
	dataplane_tun_input_for_test(f->dp, rd, GSO_VNET_HDR_LEN - 1);
	assert_int_equal(ctrs(f).gso_drops, ++drops);
	dataplane_tun_input_for_test(f->dp, rd, vnet_read(&tso, pkt, len) - 1);
	assert_int_equal(ctrs(f).gso_drops, ++drops);
	assert_int_equal(f->n_frames, 0);
	assert_int_equal(ctrs(f).gso_reads, 0);
	/* The same superpacket, well formed, still goes. */
	dataplane_tun_input_for_test(f->dp, rd, vnet_read(&tso, pkt, len));
	assert_int_equal(f->n_frames, 3);
}

/* ---- write side: opened segments joined until the batch ends ------------------- */

/* The peer's segment i of a flow 10.2.0.10:sport -> 10.1.0.10:5001 (sport 0: 40000). */
static void peer_segment_port(struct fix *f, const struct tcp_spec *base, unsigned i, size_t mss, uint16_t sport);

/* The peer's segment i of a flow 10.2.0.10 -> 10.1.0.10 (the addresses of mk_tcp swapped: sums unchanged). */
static void peer_segment(struct fix *f, const struct tcp_spec *base, unsigned i, size_t mss)
{
	peer_segment_port(f, base, i, mss, 0);
}

static void peer_segment_port(struct fix *f, const struct tcp_spec *base, unsigned i, size_t mss, uint16_t sport)
{
	static uint8_t pkt[2000];
	struct tcp_spec s = *base;
	s.seq += (uint32_t)(i * mss);
	s.id = (uint16_t)(s.id + i);
	s.payload = mss;
	s.fill = (uint8_t)(s.fill + i * mss);
	size_t len = mk_tcp(pkt, &s), a = s.v6 ? 8 : 12, n = s.v6 ? 16 : 4;
	uint8_t tmp[16];
	memcpy(tmp, pkt + a, n);
	memcpy(pkt + a, pkt + a + n, n);
	memcpy(pkt + a + n, tmp, n);
	if (sport) {
		put16(pkt + (s.v6 ? 40 : 20), sport);
		fix_csums(pkt, len);
	}
	ssize_t e = esp_encap(&f->peer_out, pkt, len, esp, sizeof(esp));
	assert_true(e > 0);
	dataplane_esp_input(f->dp, CONN_A, esp, (size_t)e);
}

/* The next write to the "TUN", its vnet header parsed: the packet's length, or 0 when none is waiting. */
static size_t tun_written(struct fix *f, struct gso_hdr *h)
{
	ssize_t n = recv(f->tun, rd, sizeof(rd), 0);
	if (n < 0) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	assert_int_equal(gso_hdr_parse(rd, (size_t)n, h), 0);
	return (size_t)n - GSO_VNET_HDR_LEN;
}

static void test_coalesce_write(void **state)
{
	struct fix *f = *state;
	const struct tcp_spec s = { .seq = 0xfffff000u, .flags = TH_ACK, .id = 100, .df = true, .fill = 3 };
	struct gso_hdr h;

	for (unsigned i = 0; i < 10; i++)
		peer_segment(f, &s, i, 1000);
	assert_int_equal(tun_written(f, &h), 0); /* held until the stream read is done */
	dataplane_tx_flush(f->dp);
	assert_int_equal(tun_written(f, &h), 40 + 10000);
	assert_int_equal(h.gso_type, GSO_TYPE_TCPV4);
	assert_int_equal(h.flags, GSO_F_NEEDS_CSUM);
	assert_int_equal(h.gso_size, 1000);
	assert_int_equal(h.hdr_len, 40);
	assert_int_equal(h.csum_start, 20);
	assert_int_equal(h.csum_offset, 16);
	uint8_t *p = rd + GSO_VNET_HDR_LEN;
	assert_int_equal(be16(p + 2), 40 + 10000);
	assert_true(ip4_hdr_ok(p));
	assert_int_equal(be32(p + 24), 0xfffff000u);
	for (size_t i = 0; i < 10000; i++)
		assert_int_equal(p[40 + i], (uint8_t)(3 + i));
	/* Completing the checksum as the kernel will gives a right one. */
	assert_int_equal(gso_csum_complete(p, 40 + 10000, h.csum_start, h.csum_offset), 0);
	assert_true(l4_sum_ok(p, 40 + 10000, IPPROTO_TCP));
	assert_int_equal(ctrs(f).coalesced, 1);
	assert_int_equal(ctrs(f).coalesced_segments, 10);
	assert_int_equal(tun_written(f, &h), 0);
	dataplane_tx_flush(f->dp); /* nothing held: nothing written */
	dataplane_tx_flush(NULL);
	assert_int_equal(tun_written(f, &h), 0);
}

/* What cannot join is written in the order it came: the held superpacket first. */
static void test_write_order(void **state)
{
	struct fix *f = *state;
	const struct tcp_spec s = { .v6 = true, .seq = 5000, .flags = TH_ACK, .fill = 1 };
	struct tcp_spec fin = s;
	struct gso_hdr h;

	peer_segment(f, &s, 0, 1200);
	peer_segment(f, &s, 1, 1200);
	fin.flags = TH_ACK | TH_FIN;
	peer_segment(f, &fin, 2, 1200); /* FIN: as it is, after the two before it */
	peer_segment(f, &s, 4, 1200);   /* after a gap (no segment 3): a superpacket of its own */
	peer_segment(f, &s, 5, 1200);
	assert_int_equal(tun_written(f, &h), 40 + 20 + 2 * 1200);
	assert_int_equal(h.gso_type, GSO_TYPE_TCPV6);
	assert_int_equal(h.gso_size, 1200);
	assert_int_equal(tun_written(f, &h), 60 + 1200);
	assert_int_equal(h.gso_type, GSO_TYPE_NONE);
	assert_int_equal(rd[GSO_VNET_HDR_LEN + 40 + 13], TH_ACK | TH_FIN);
	assert_true(l4_sum_ok(rd + GSO_VNET_HDR_LEN, 60 + 1200, IPPROTO_TCP)); /* untouched */
	assert_int_equal(tun_written(f, &h), 0); /* segments 4 and 5 held */
	dataplane_tx_flush(f->dp);
	assert_int_equal(tun_written(f, &h), 60 + 2400);
	assert_int_equal(be32(rd + GSO_VNET_HDR_LEN + 44), 5000 + 4 * 1200);
	assert_int_equal(tun_written(f, &h), 0);
	assert_int_equal(ctrs(f).coalesced, 2);
	assert_int_equal(ctrs(f).coalesced_segments, 4);
	assert_int_equal(ctrs(f).tun_write_errors, 0);
}

/* One segment alone goes without offload, as it came. */
static void test_single_segment(void **state)
{
	struct fix *f = *state;
	const struct tcp_spec s = { .seq = 1, .flags = TH_ACK | TH_PSH, .id = 1, .df = true };
	struct gso_hdr h;

	peer_segment(f, &s, 0, 700);
	dataplane_tx_flush(f->dp);
	assert_int_equal(tun_written(f, &h), 40 + 700);
	assert_int_equal(h.gso_type, GSO_TYPE_NONE);
	assert_int_equal(h.flags, 0);
	assert_true(l4_sum_ok(rd + GSO_VNET_HDR_LEN, 740, IPPROTO_TCP));
	assert_int_equal(ctrs(f).coalesced, 0);
}

/*
 * Interleaved flows: each joined with its own, up to as many builders as the
 * dataplane keeps; beyond that they take turns, and every flow still gets its
 * bytes complete and in order.
 */
static void interleaved(struct fix *f, unsigned flows, unsigned rounds, bool ack_between)
{
	const struct tcp_spec s = { .seq = 1000, .flags = TH_ACK, .id = 1, .df = true, .fill = 5 };
	uint32_t next[8];
	struct gso_hdr h;
	size_t n;

	for (unsigned i = 0; i < rounds; i++) {
		for (unsigned fl = 0; fl < flows; fl++) {
			peer_segment_port(f, &s, i, 600, (uint16_t)(41000 + fl));
			if (ack_between && fl == 1) { /* a pure ACK of yet another flow */
				struct tcp_spec a = s;
				a.payload = 0;
				peer_segment_port(f, &a, 0, 0, 50000);
			}
		}
	}
	dataplane_tx_flush(f->dp);
	for (unsigned fl = 0; fl < flows; fl++)
		next[fl] = 1000;
	while ((n = tun_written(f, &h))) {
		const uint8_t *p = rd + GSO_VNET_HDR_LEN;
		unsigned fl = be16(p + 20) - 41000u;
		if (be16(p + 20) == 50000) {
			assert_int_equal(n, 40);
			continue;
		}
		assert_true(fl < flows);
		assert_int_equal(be32(p + 24), next[fl]);
		assert_int_equal((n - 40) % 600, 0);
		assert_int_equal(h.gso_type, n > 640 ? GSO_TYPE_TCPV4 : GSO_TYPE_NONE);
		for (size_t b = 0; b < n - 40; b++)
			assert_int_equal(p[40 + b], (uint8_t)(5 + (next[fl] - 1000) + b));
		next[fl] += (uint32_t)(n - 40);
	}
	for (unsigned fl = 0; fl < flows; fl++)
		assert_int_equal(next[fl], 1000 + rounds * 600);
}

static void test_interleaved_flows(void **state)
{
	struct fix *f = *state;

	interleaved(f, 4, 3, true); /* four builders: each flow one superpacket, the ACKs evict none */
	assert_int_equal(ctrs(f).coalesced, 4);
	assert_int_equal(ctrs(f).coalesced_segments, 12);
}

static void test_interleaved_more_flows(void **state)
{
	interleaved(*state, 6, 3, false); /* more flows than builders: correct, if less joined */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tso_read_v4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tso_read_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csum_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coalesce_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interleaved_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interleaved_more_flows, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("one thread", tests, NULL, NULL);
	workers = workers_new(2);
	if (!workers)
		return 1;
	failed += cmocka_run_group_tests_name("two crypto threads", tests, NULL, NULL);
	workers_free(workers);
	/* One thread seals and opens each packet as it comes: only the second round shared batches. */
	if (stats.esp.shared_batches == 0) {
		fprintf(stderr, "test_dataplane_vnet: the second round shared no batch with the workers\n");
		failed++;
	}
	return failed;
}
