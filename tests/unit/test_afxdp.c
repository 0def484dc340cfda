/*
 * The AF_XDP dataplane on a real veth pair, in this process's own network
 * namespace (the gateway) and a named one for the LAN host:
 *
 *   [ gateway: this process ]                     [ host: afxh-<pid> ]
 *    afx0 10.1.0.1/24  (clear.bpf.o, AF_XDP) ---- afx1 10.1.0.10/24, 10.1.0.11/24
 *    SA: local 10.1.0.0/24 <-> remote 10.2.0.0/24  route 10.2.0.0/24 via 10.1.0.1
 *
 * The host's UDP to 10.2.0.10 must come out of the fake stream as ESP that the
 * peer's SA opens; ESP from the peer must reach the host's sockets, from an
 * AF_XDP socket when the neighbour is known and through the kernel when not.
 * Needs root, veth and AF_XDP: every test skips otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "iketcp/stats.h"
#include "dataplane/afxdp.h"
#include "dataplane/neigh.h"
#include "esp/esp.h"
#include "loop.h"
#include "maps/maps.h"

#define SPI_IN 0x1001u  /* ours: what the peer sends to */
#define SPI_OUT 0x2002u /* the peer's */

static bool have_env;
static char host_ns[32], pin_root[64];
static int gw_fd = -1, host_fd = -1;
static const uint8_t key_in[20] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };
static const uint8_t key_out[20] = { 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40 };
static int stream_a; /* its address stands for the SA's stream */

struct capture {
	unsigned sent;
	unsigned queued, flushes, queued_at_flush; /* the batched pair (afxdp_set_batch) */
	struct tcp_conn *conn;
	size_t len;
	uint8_t frame[70000];
};

struct fixture {
	struct loop *loop;
	struct afxdp *dp;
	struct capture cap;
	struct esp_sa peer_in, peer_out; /* the peer's side: opens what we seal, seals what we open */
	int host_udp10, host_udp11;      /* the host's sockets on 10.1.0.10:5000 and 10.1.0.11:5000 */
};

static int fake_send(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	struct capture *cap = arg;

	cap->sent++;
	cap->conn = c;
	cap->len = len;
	memcpy(cap->frame, esp, len);
	return 0;
}

static int fake_queue(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	struct capture *cap = arg;

	cap->queued++;
	cap->conn = c;
	cap->len = len;
	memcpy(cap->frame, esp, len);
	return 0;
}

static void fake_flush(void *arg)
{
	struct capture *cap = arg;

	cap->flushes++;
	cap->queued_at_flush = cap->queued;
}

static struct esp_sa_params gcm(uint32_t spi, bool outbound, const uint8_t *key)
{
	return (struct esp_sa_params){ .spi = spi, .outbound = outbound, .cipher = ESP_AES_GCM_16,
				       .enc_key_bits = 128, .keymat = key, .keymat_len = 20, .replay = true };
}

static struct child_ts ts4(const char *a, uint8_t len)
{
	struct child_ts t = { .family = AF_INET, .prefix_len = len };
	assert_int_equal(inet_pton(AF_INET, a, &t.addr.v4), 1);
	return t;
}

static struct child_ts ts6(const char *a, uint8_t len)
{
	struct child_ts t = { .family = AF_INET6, .prefix_len = len };
	assert_int_equal(inet_pton(AF_INET6, a, &t.addr.v6), 1);
	return t;
}

/* 10.1.0.0/24 <-> 10.2.0.0/24 and fd01::/64 <-> fd02::/64. */
static struct child_sa child(void)
{
	return (struct child_sa){
		.phase1 = "p1", .phase2 = "p2", .spi_in = SPI_IN, .spi_out = SPI_OUT,
		.in = gcm(SPI_IN, false, key_in), .out = gcm(SPI_OUT, true, key_out),
		.local_ts = { ts4("10.1.0.0", 24), ts6("fd01::", 64) },
		.remote_ts = { ts4("10.2.0.0", 24), ts6("fd02::", 64) }, .n_ts = 2,
		.conn = (struct tcp_conn *)&stream_a,
	};
}

/* ---- the host namespace -------------------------------------------------- */

static int host_udp(const char *addr, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int s;

	assert_int_equal(setns(host_fd, CLONE_NEWNET), 0);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_int_equal(setns(gw_fd, CLONE_NEWNET), 0);
	assert_true(s >= 0);
	assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return s;
}

/* A host socket of family/type, bound to addr:port (port 0: any), non-blocking. */
static int host_sock(int family, int type, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	int s;

	assert_int_equal(setns(host_fd, CLONE_NEWNET), 0);
	s = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_int_equal(setns(gw_fd, CLONE_NEWNET), 0);
	assert_true(s >= 0);
	if (family == AF_INET) {
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
	} else {
		s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
	}
	assert_int_equal(bind(s, (struct sockaddr *)&ss, family == AF_INET ? sizeof(*s4) : sizeof(*s6)), 0);
	return s;
}

static void sockaddr_of(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6, s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET, s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
		*len = sizeof(*s4);
	}
}

static uint16_t csum(uint32_t sum, const uint8_t *p, size_t n);

/* The TCP or UDP checksum of an inner IPv4/IPv6 packet verifies (0). */
static uint16_t l4_verify(const uint8_t *ip, size_t len)
{
	bool v6 = ip[0] >> 4 == 6;
	size_t hl = v6 ? 40 : (size_t)(ip[0] & 0xf) * 4, l4 = len - hl;
	uint32_t sum = (v6 ? ip[6] : ip[9]) + (uint32_t)l4;

	for (size_t i = v6 ? 8 : 12; i < (v6 ? 40u : 20u); i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	return csum(sum, ip + hl, l4);
}

/* The host's socket s sends payload to 10.2.0.10:6000. */
static void host_send(int s, const char *payload)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(6000) };

	assert_int_equal(inet_pton(AF_INET, "10.2.0.10", &to.sin_addr), 1);
	assert_int_equal(sendto(s, payload, strlen(payload), 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)strlen(payload));
}

/* What s receives within 1 s, or -1. */
static ssize_t host_recv(int s, char *buf, size_t cap, struct sockaddr_in *from)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	socklen_t fl = sizeof(*from);

	if (poll(&p, 1, 1000) != 1)
		return -1;
	return recvfrom(s, buf, cap, 0, (struct sockaddr *)from, &fl);
}

/* ---- packets ------------------------------------------------------------- */

static uint16_t csum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)(p[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* IPv4 | UDP src:6000 -> dst:5000 | payload, both checksums valid. Its length. */
static size_t udp4(uint8_t *b, const char *src, const char *dst, const char *payload)
{
	size_t pl = strlen(payload), ulen = 8 + pl, tot = 20 + ulen;
	uint32_t sum;

	memset(b, 0, tot);
	b[0] = 0x45, b[2] = (uint8_t)(tot >> 8), b[3] = (uint8_t)tot, b[8] = 64, b[9] = 17;
	assert_int_equal(inet_pton(AF_INET, src, b + 12), 1);
	assert_int_equal(inet_pton(AF_INET, dst, b + 16), 1);
	uint16_t c = csum(0, b, 20);
	b[10] = (uint8_t)(c >> 8), b[11] = (uint8_t)c;
	b[20] = 6000 >> 8, b[21] = 6000 & 0xff, b[22] = 5000 >> 8, b[23] = 5000 & 0xff;
	b[24] = (uint8_t)(ulen >> 8), b[25] = (uint8_t)ulen;
	memcpy(b + 28, payload, pl);
	sum = 17 + (uint32_t)ulen;
	for (int i = 12; i < 20; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	c = csum(sum, b + 20, ulen);
	b[26] = (uint8_t)(c >> 8), b[27] = (uint8_t)c;
	return tot;
}

/* IPv6 | UDP src:6000 -> dst:5000 | payload, checksum valid. Its length. */
static size_t udp6(uint8_t *b, const char *src, const char *dst, const char *payload)
{
	size_t pl = strlen(payload), ulen = 8 + pl;

	memset(b, 0, 40 + ulen);
	b[0] = 0x60, b[4] = (uint8_t)(ulen >> 8), b[5] = (uint8_t)ulen, b[6] = 17, b[7] = 64;
	assert_int_equal(inet_pton(AF_INET6, src, b + 8), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, b + 24), 1);
	b[40] = 6000 >> 8, b[41] = 6000 & 0xff, b[42] = 5000 >> 8, b[43] = 5000 & 0xff;
	b[44] = (uint8_t)(ulen >> 8), b[45] = (uint8_t)ulen;
	memcpy(b + 48, payload, pl);
	uint16_t c = l4_verify(b, 40 + ulen);
	b[46] = (uint8_t)(c >> 8), b[47] = (uint8_t)c;
	return 40 + ulen;
}

/* The peer seals an inner packet for us and it goes in as if from the stream. */
static void peer_sends(struct fixture *f, const uint8_t *inner, size_t len)
{
	uint8_t esp[2048];
	ssize_t n = esp_encap(&f->peer_out, inner, len, esp, sizeof(esp));

	assert_true(n > 0);
	afxdp_esp_input(f->dp, (struct tcp_conn *)&stream_a, esp, (size_t)n);
}

/* Drives the loop until the fake stream got `want` frames, at most 3 s. */
static void loop_until_sent(struct fixture *f, unsigned want)
{
	for (int i = 0; i < 300 && f->cap.sent < want; i++)
		loop_once(f->loop, 10);
	assert_int_equal(f->cap.sent, want);
}

static int sel_count(const char *net, uint32_t plen, uint32_t *count)
{
	char path[128];
	struct clear_v4_key k = { .prefixlen = plen };
	struct clear_sel v;

	snprintf(path, sizeof(path), "%s/afx0/clear_v4", pin_root);
	int fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, net, k.addr), 1);
	int rc = bpf_map_lookup_elem(fd, &k, &v);
	close(fd);
	*count = rc == 0 ? v.sa_count : 0;
	return rc;
}

/* IPv4 | TCP sport -> dport (no options) | payload, both checksums valid. Its length. */
static size_t tcp4(uint8_t *b, const char *src, uint16_t sport, const char *dst, uint16_t dport, uint32_t seq,
		   uint32_t ack, uint8_t flags, const uint8_t *payload, size_t pl)
{
	size_t tot = 40 + pl;

	memset(b, 0, 40);
	b[0] = 0x45, b[2] = (uint8_t)(tot >> 8), b[3] = (uint8_t)tot, b[6] = 0x40, b[8] = 64, b[9] = 6;
	assert_int_equal(inet_pton(AF_INET, src, b + 12), 1);
	assert_int_equal(inet_pton(AF_INET, dst, b + 16), 1);
	uint16_t c = csum(0, b, 20);
	b[10] = (uint8_t)(c >> 8), b[11] = (uint8_t)c;
	uint8_t *t = b + 20;
	t[0] = (uint8_t)(sport >> 8), t[1] = (uint8_t)sport, t[2] = (uint8_t)(dport >> 8), t[3] = (uint8_t)dport;
	for (int i = 0; i < 4; i++) {
		t[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
		t[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
	}
	t[12] = 5 << 4, t[13] = flags, t[14] = 0xff, t[15] = 0xff;
	if (pl)
		memcpy(t + 20, payload, pl);
	c = l4_verify(b, tot);
	t[16] = (uint8_t)(c >> 8), t[17] = (uint8_t)c;
	return tot;
}

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
	static const char *const ifs[] = { "afx0" };
	struct fixture *f;

	if (!have_env)
		return 0;
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->loop = loop_new();
	assert_non_null(f->loop);
	f->dp = dataplane_afxdp_new(f->loop, ifs, 1, pin_root, false, fake_send, &f->cap);
	assert_non_null(f->dp);
	struct esp_sa_params pin = gcm(SPI_OUT, false, key_out), pout = gcm(SPI_IN, true, key_in);
	assert_int_equal(esp_sa_init(&f->peer_in, &pin), 0);
	assert_int_equal(esp_sa_init(&f->peer_out, &pout), 0);
	f->host_udp10 = host_udp("10.1.0.10", 5000);
	f->host_udp11 = host_udp("10.1.0.11", 5000);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	afxdp_free(f->dp);
	loop_free(f->loop);
	esp_sa_destroy(&f->peer_in);
	esp_sa_destroy(&f->peer_out);
	close(f->host_udp10);
	close(f->host_udp11);
	free(f);
	*state = NULL;
	return 0;
}

#define NEED_ENV()            \
	do {                  \
		if (!have_env) \
			skip(); \
	} while (0)

/* ---- tests --------------------------------------------------------------- */

static void test_copy_mode_on_veth(void **state)
{
	struct fixture *f = *state;
	unsigned zc = 99;

	NEED_ENV();
	/* veth has no zero-copy AF_XDP: one socket (one RX queue), copy mode. */
	assert_int_equal(afxdp_socket_count(f->dp, &zc), 1);
	assert_int_equal(zc, 0);
	assert_int_equal(afxdp_sa_count(f->dp), 0);
}

/* Install writes the selector into the pinned LPM trie, remove takes it out; a rekey holds it. */
static void test_maps_follow_sas(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child(), c2 = child();
	uint32_t n;

	NEED_ENV();
	assert_int_equal(sel_count("10.2.0.0", 24, &n), -ENOENT);
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	assert_int_equal(sel_count("10.2.0.0", 24, &n), 0);
	assert_int_equal(n, 1);
	c2.spi_in = SPI_IN + 1, c2.spi_out = SPI_OUT + 1;
	c2.remote_ts[0] = ts4("10.2.0.77", 24); /* host bits cleared on install */
	assert_int_equal(afxdp_child_ops.install(f->dp, &c2), 0);
	assert_int_equal(sel_count("10.2.0.0", 24, &n), 0);
	assert_int_equal(n, 2);
	afxdp_child_ops.remove(f->dp, SPI_IN);
	assert_int_equal(sel_count("10.2.0.0", 24, &n), 0);
	assert_int_equal(n, 1);
	afxdp_child_ops.remove(f->dp, SPI_IN + 1);
	assert_int_equal(sel_count("10.2.0.0", 24, &n), -ENOENT);
	/* A refused install leaves no entry. */
	c.remote_ts[0].prefix_len = 33;
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), -EINVAL);
	assert_int_equal(afxdp_sa_count(f->dp), 0);
}

/* Host -> 10.2.0.10: through XDP and AF_XDP into ESP the peer opens to the very packet. */
static void test_outbound_sealed(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	uint64_t b0[CLEAR_CNT_MAX], b1[CLEAR_CNT_MAX];
	uint8_t inner[2048], nh = 0;

	NEED_ENV();
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	assert_int_equal(afxdp_bpf_counters(f->dp, b0), 0);
	host_send(f->host_udp10, "hello through AF_XDP");
	loop_until_sent(f, 1);
	assert_ptr_equal(f->cap.conn, &stream_a);
	ssize_t n = esp_decap(&f->peer_in, f->cap.frame, f->cap.len, inner, sizeof(inner), &nh);
	assert_int_equal(n, 20 + 8 + 20);
	assert_int_equal(nh, ESP_NH_IPV4);
	uint8_t src[4], dst[4];
	inet_pton(AF_INET, "10.1.0.10", src);
	inet_pton(AF_INET, "10.2.0.10", dst);
	assert_memory_equal(inner + 12, src, 4);
	assert_memory_equal(inner + 16, dst, 4);
	assert_memory_equal(inner + 28, "hello through AF_XDP", 20);
	/* Both checksums complete although the host left UDP's to offload: the far LAN verifies them. */
	assert_int_equal(csum(0, inner, 20), 0);
	uint32_t sum = 17 + 28;
	for (int i = 12; i < 20; i += 2)
		sum += (uint32_t)(inner[i] << 8 | inner[i + 1]);
	assert_int_equal(csum(sum, inner + 20, 28), 0);
	assert_int_equal(afxdp_bpf_counters(f->dp, b1), 0);
	assert_int_equal(b1[CLEAR_CNT_TO_XSK], b0[CLEAR_CNT_TO_XSK] + 1);
	struct afxdp_counters ctr;
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.rx_frames, 1);
	assert_int_equal(ctr.no_sa + ctr.malformed + ctr.no_stream + ctr.send_errors, 0);

	/* The stream down: counted, nothing sent. */
	afxdp_child_ops.update_conn(f->dp, SPI_IN, NULL);
	host_send(f->host_udp10, "no stream");
	for (int i = 0; i < 100 && ctr.no_stream == 0; i++) {
		loop_once(f->loop, 10);
		afxdp_counters(f->dp, &ctr);
	}
	assert_int_equal(ctr.no_stream, 1);
	assert_int_equal(f->cap.sent, 1);

	/* Removed: the program passes it to the kernel; nothing reaches the stream. */
	afxdp_child_ops.remove(f->dp, SPI_IN);
	assert_int_equal(afxdp_bpf_counters(f->dp, b0), 0);
	host_send(f->host_udp10, "no SA");
	for (int i = 0; i < 100; i++) {
		loop_once(f->loop, 10);
		assert_int_equal(afxdp_bpf_counters(f->dp, b1), 0);
		if (b1[CLEAR_CNT_PASSED] > b0[CLEAR_CNT_PASSED])
			break;
	}
	assert_true(b1[CLEAR_CNT_PASSED] > b0[CLEAR_CNT_PASSED]);
	assert_int_equal(b1[CLEAR_CNT_TO_XSK], b0[CLEAR_CNT_TO_XSK]);
	assert_int_equal(f->cap.sent, 1);
}

/* TCP (a SYN) and IPv6 UDP from the host, both with offloaded checksums: sealed, checksums completed. */
static void test_outbound_tcp_and_v6(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	struct sockaddr_storage to;
	socklen_t tl;
	uint8_t inner[2048], nh = 0;

	NEED_ENV();
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	int t = host_sock(AF_INET, SOCK_STREAM, "10.1.0.10", 0);
	sockaddr_of("10.2.0.10", 7000, &to, &tl);
	assert_int_equal(connect(t, (struct sockaddr *)&to, tl), -1);
	assert_int_equal(errno, EINPROGRESS);
	loop_until_sent(f, 1);
	ssize_t n = esp_decap(&f->peer_in, f->cap.frame, f->cap.len, inner, sizeof(inner), &nh);
	assert_true(n >= 40);
	assert_int_equal(nh, ESP_NH_IPV4);
	assert_int_equal(inner[9], IPPROTO_TCP);
	assert_int_equal(inner[20 + 13] & 0x12, 0x02); /* SYN */
	assert_int_equal(l4_verify(inner, (size_t)n), 0);
	close(t);

	int u = host_sock(AF_INET6, SOCK_DGRAM, "fd01::10", 5000);
	sockaddr_of("fd02::10", 6000, &to, &tl);
	/* The host resolves fd01::1 first (neighbour discovery passes the program). */
	for (int i = 0; i < 300 && f->cap.sent < 2; i++) {
		if (i % 50 == 0)
			assert_int_equal(sendto(u, "v6 through AF_XDP", 17, 0, (struct sockaddr *)&to, tl), 17);
		loop_once(f->loop, 10);
	}
	assert_true(f->cap.sent >= 2);
	n = esp_decap(&f->peer_in, f->cap.frame, f->cap.len, inner, sizeof(inner), &nh);
	assert_int_equal(n, 40 + 8 + 17);
	assert_int_equal(nh, ESP_NH_IPV6);
	assert_memory_equal(inner + 48, "v6 through AF_XDP", 17);
	assert_int_equal(l4_verify(inner, (size_t)n), 0);
	close(u);
}

/* Peer -> host over IPv6, neighbour known: AF_XDP with the host's MAC. */
static void test_inbound_v6(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	struct sockaddr_storage ss;
	struct afxdp_counters ctr;
	uint8_t pkt[256];
	char buf[256];

	NEED_ENV();
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	int u = host_sock(AF_INET6, SOCK_DGRAM, "fd01::10", 5000);
	assert_int_equal(system("ip -6 neigh replace fd01::10 dev afx0 lladdr 02:00:00:00:aa:10 nud reachable"), 0);
	peer_sends(f, pkt, udp6(pkt, "fd02::10", "fd01::10", "six back"));
	struct pollfd p = { .fd = u, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 1000), 1);
	socklen_t sl = sizeof(ss);
	assert_int_equal(recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl), 8);
	assert_memory_equal(buf, "six back", 8);
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.tx_xsk, 1);
	close(u);
}

/* Peer -> host with the neighbour known: sent from the AF_XDP socket with the host's MAC. */
static void test_inbound_via_xsk(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	struct sockaddr_in from;
	struct afxdp_counters ctr;
	uint8_t pkt[256];
	char buf[256];

	NEED_ENV();
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	/* The host's MAC for 10.1.0.10 as the kernel would learn it. */
	assert_int_equal(system("ip neigh replace 10.1.0.10 dev afx0 lladdr 02:00:00:00:aa:10 nud reachable"), 0);
	peer_sends(f, pkt, udp4(pkt, "10.2.0.10", "10.1.0.10", "back to the LAN"));
	assert_int_equal(host_recv(f->host_udp10, buf, sizeof(buf), &from), 15);
	assert_memory_equal(buf, "back to the LAN", 15);
	assert_int_equal(from.sin_addr.s_addr, inet_addr("10.2.0.10"));
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.tx_xsk, 1);
	assert_int_equal(ctr.tx_kernel + ctr.tx_errors + ctr.policy_drops, 0);

	/* A wrong MAC in the neighbour table: the host's NIC discards the frame (proof the MAC is used). */
	assert_int_equal(system("ip neigh replace 10.1.0.10 dev afx0 lladdr 02:00:00:00:aa:99 nud reachable"), 0);
	usleep((NEIGH_TTL_MS + 50) * 1000);
	loop_once(f->loop, 0); /* refresh loop_now_ms */
	peer_sends(f, pkt, udp4(pkt, "10.2.0.10", "10.1.0.10", "wrong mac"));
	assert_int_equal(host_recv(f->host_udp10, buf, sizeof(buf), &from), -1);
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.tx_xsk, 2);
}

/*
 * Opened TCP segments of one flow, queued in one batch, leave as one
 * superpacket through the packet socket (AF_XDP has no GSO): a real TCP
 * connection on the host gets every byte, in order.
 */
static void test_inbound_tcp_coalesced(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	struct afxdp_counters ctr;
	uint8_t pkt[2048], esp[2048], inner[2048], data[20 * 1000], got[sizeof(data)], nh;

	NEED_ENV();
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	assert_int_equal(system("ip neigh replace 10.1.0.10 dev afx0 lladdr 02:00:00:00:aa:10 nud reachable"), 0);
	int l = host_sock(AF_INET, SOCK_STREAM, "10.1.0.10", 7000);
	assert_int_equal(listen(l, 1), 0);
	/* 10.2.0.10:40000 connects through the tunnel; the SYN-ACK comes back sealed. */
	peer_sends(f, pkt, tcp4(pkt, "10.2.0.10", 40000, "10.1.0.10", 7000, 1000, 0, 0x02, NULL, 0));
	loop_until_sent(f, 1);
	ssize_t n = esp_decap(&f->peer_in, f->cap.frame, f->cap.len, inner, sizeof(inner), &nh);
	assert_true(n >= 40);
	assert_int_equal(inner[33] & 0x12, 0x12); /* SYN-ACK */
	uint32_t isn = be32_at(inner + 24);
	peer_sends(f, pkt, tcp4(pkt, "10.2.0.10", 40000, "10.1.0.10", 7000, 1001, isn + 1, 0x10, NULL, 0));

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	for (unsigned i = 0; i < 20; i++) {
		uint8_t flags = i == 19 ? 0x18 : 0x10; /* ACK, PSH on the last */
		size_t il = tcp4(pkt, "10.2.0.10", 40000, "10.1.0.10", 7000, 1001 + i * 1000, isn + 1, flags,
				 data + i * 1000, 1000);
		n = esp_encap(&f->peer_out, pkt, il, esp, sizeof(esp));
		assert_true(n > 0);
		afxdp_esp_queue(f->dp, (struct tcp_conn *)&stream_a, esp, (size_t)n);
	}
	afxdp_tx_flush(f->dp);
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.coalesced, 1);
	assert_int_equal(ctr.coalesced_segments, 20);
	assert_int_equal(ctr.tx_errors, 0);

	struct pollfd p = { .fd = l, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 1000), 1);
	int a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	size_t have = 0;
	p.fd = a;
	while (have < sizeof(got) && poll(&p, 1, 1000) == 1) {
		ssize_t r = read(a, got + have, sizeof(got) - have);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	assert_int_equal(have, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
	/* A reset, not a FIN the host would retransmit into the next test's dataplane. */
	assert_int_equal(setsockopt(a, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger)), 0);
	close(a);
	close(l);
	for (int i = 0; i < 10; i++)
		loop_once(f->loop, 10);
}

/* Every frame the dataplane sends, opened by the peer: the segments of a superpacket. */
struct opened {
	struct esp_sa *peer_in;
	unsigned n;
	size_t len[32];
	uint8_t pkt[32][2048];
};

static int open_send(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	struct opened *o = arg;
	uint8_t nh;

	(void)c;
	if (o->n >= 32)
		return -ENOBUFS;
	ssize_t n = esp_decap(o->peer_in, esp, len, o->pkt[o->n], sizeof(o->pkt[0]), &nh);
	if (n <= 0)
		return -EBADMSG;
	o->len[o->n++] = (size_t)n;
	return 0;
}

/* The host sends one GSO superpacket of type over afx1, behind a vnet header; the checksum left to us. */
static void host_send_superpacket(uint8_t gso_type, uint8_t proto, size_t payload)
{
	uint8_t frame[12 + 14 + 40 + 12000] = { 0 }, *vh = frame, *eth = frame + 10, *ip = eth + 14;
	size_t l4h = proto == 6 ? 20 : 8, tot = 20 + l4h + payload;
	struct ifreq ifr = { 0 };

	assert_true(tot + 24 <= sizeof(frame));
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "afx0");
	assert_int_equal(ioctl(s, SIOCGIFHWADDR, &ifr), 0);
	close(s);
	memcpy(eth, ifr.ifr_hwaddr.sa_data, 6);
	memcpy(eth + 6, "\x02\x00\x00\x00\xaa\x10", 6);
	eth[12] = 0x08;
	ip[0] = 0x45, ip[2] = (uint8_t)(tot >> 8), ip[3] = (uint8_t)tot, ip[6] = 0x40, ip[8] = 64, ip[9] = proto;
	assert_int_equal(inet_pton(AF_INET, "10.1.0.10", ip + 12), 1);
	assert_int_equal(inet_pton(AF_INET, "10.2.0.10", ip + 16), 1);
	uint16_t c = csum(0, ip, 20);
	ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
	uint8_t *l4 = ip + 20;
	l4[0] = 7001 >> 8, l4[1] = 7001 & 0xff, l4[2] = 7002 >> 8, l4[3] = 7002 & 0xff;
	if (proto == 6) {
		l4[4] = 0x10, l4[12] = 5 << 4, l4[13] = 0x18, l4[14] = 0xff, l4[15] = 0xff; /* seq 0x10000000, PSH|ACK */
	} else {
		l4[4] = (uint8_t)((8 + payload) >> 8), l4[5] = (uint8_t)(8 + payload);
	}
	for (size_t i = 0; i < payload; i++)
		l4[l4h + i] = (uint8_t)(i * 13 + i / 509);
	/* CHECKSUM_PARTIAL: the field holds the pseudo-header sum (without the length, for TCP GSO it is
	 * the kernel's to add per segment; over the whole it is what a sender leaves). */
	uint32_t ps = proto + (uint32_t)(l4h + payload);
	for (int i = 12; i < 20; i += 2)
		ps += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (ps >> 16)
		ps = (ps & 0xffff) + (ps >> 16);
	uint8_t *cf = l4 + (proto == 6 ? 16 : 6);
	cf[0] = (uint8_t)(ps >> 8), cf[1] = (uint8_t)ps;
	/* virtio_net_hdr: NEEDS_CSUM, gso_type, hdr_len, gso_size 1000, csum_start, csum_offset (little-endian) */
	vh[0] = 1, vh[1] = gso_type;
	vh[2] = (uint8_t)(14 + 20 + l4h), vh[4] = 1000 & 0xff, vh[5] = 1000 >> 8;
	vh[6] = 14 + 20, vh[8] = proto == 6 ? 16 : 6;

	assert_int_equal(setns(host_fd, CLONE_NEWNET), 0);
	s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex("afx1"),
				   .sll_protocol = htons(ETH_P_IP) };
	assert_int_equal(setns(gw_fd, CLONE_NEWNET), 0);
	assert_true(s >= 0);
	assert_int_equal(setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &(int){ 1 }, sizeof(int)), 0);
	size_t len = 10 + 14 + tot;
	assert_int_equal(sendto(s, frame, len, 0, (struct sockaddr *)&sll, sizeof(sll)), (ssize_t)len);
	close(s);
}

/*
 * `xdp-mode generic`: the host's GSO survives to the gateway, and its TCP
 * superpacket arrives whole in several AF_XDP descriptors. It is sealed as
 * segments that fit the link, with sequence numbers, flags and checksums right;
 * a UDP superpacket, whose segment size the frame does not carry, is dropped
 * and counted.
 */
static void test_outbound_superpacket_generic(void **state)
{
	static const char *const ifs[] = { "afx0" };
	struct fixture *f = *state;
	struct child_sa c = child();
	struct afxdp_counters ctr;
	static struct opened opened;
	struct opened *o = &opened;

	NEED_ENV();
	*o = (struct opened){ .peer_in = &f->peer_in };
	afxdp_free(f->dp);
	f->dp = dataplane_afxdp_new(f->loop, ifs, 1, NULL, true, open_send, o);
	assert_non_null(f->dp);
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);

	host_send_superpacket(1 /* TCPV4 */, 6, 10000);
	for (int i = 0; i < 300 && o->n < 7; i++)
		loop_once(f->loop, 10);
	/* 1500-byte link: 1460 bytes a segment, 7 segments for 10000. */
	assert_int_equal(o->n, 7);
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.gso_reads, 1);
	assert_int_equal(ctr.gso_segments, 7);
	size_t off = 0;
	for (unsigned i = 0; i < o->n; i++) {
		const uint8_t *ip = o->pkt[i], *t = ip + 20;
		size_t pl = o->len[i] - 40;
		assert_true(o->len[i] <= 1500);
		assert_int_equal(l4_verify(ip, o->len[i]), 0);
		assert_int_equal(be32_at(t + 4), 0x10000000u + off);
		assert_int_equal(t[13], i + 1 == o->n ? 0x18 : 0x10); /* PSH on the last only */
		for (size_t k = 0; k < pl; k++)
			assert_int_equal(t[20 + k], (uint8_t)((off + k) * 13 + (off + k) / 509));
		off += pl;
	}
	assert_int_equal(off, 10000);

	host_send_superpacket(5 /* UDP_L4 */, 17, 5000);
	for (int i = 0; i < 100 && !ctr.gso_drops; i++) {
		loop_once(f->loop, 10);
		afxdp_counters(f->dp, &ctr);
	}
	assert_int_equal(ctr.gso_drops, 1);
	assert_int_equal(o->n, 7);
	afxdp_free(f->dp);
	f->dp = NULL;
}

/*
 * A jumbo-frame LAN (MTU 9000 on both ends): the program attaches natively
 * (it declares multi-buffer support; veth refuses any other above a page) and
 * a datagram bigger than a UMEM frame arrives in several descriptors, joined
 * and sealed whole.
 */
static void test_jumbo_mtu_native(void **state)
{
	static const char *const ifs[] = { "afx0" };
	struct fixture *f = *state;
	struct child_sa c = child();
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(6000) };
	static uint8_t big[8000], inner[9000];
	char cmd[256];
	uint8_t nh;

	NEED_ENV();
	afxdp_free(f->dp);
	snprintf(cmd, sizeof(cmd), "ip link set afx0 mtu 9000 && ip -n %s link set afx1 mtu 9000", host_ns);
	assert_int_equal(system(cmd), 0);
	f->dp = dataplane_afxdp_new(f->loop, ifs, 1, NULL, false, fake_send, &f->cap);
	assert_non_null(f->dp);
	assert_true(afxdp_all_native(f->dp));
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 31 + i / 257);
	assert_int_equal(inet_pton(AF_INET, "10.2.0.10", &to.sin_addr), 1);
	assert_int_equal(sendto(f->host_udp10, big, sizeof(big), 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)sizeof(big));
	loop_until_sent(f, 1);
	ssize_t n = esp_decap(&f->peer_in, f->cap.frame, f->cap.len, inner, sizeof(inner), &nh);
	assert_int_equal(n, 20 + 8 + sizeof(big));
	assert_int_equal(l4_verify(inner, (size_t)n), 0);
	assert_memory_equal(inner + 28, big, sizeof(big));
	afxdp_free(f->dp);
	f->dp = NULL;
	snprintf(cmd, sizeof(cmd), "ip link set afx0 mtu 1500 && ip -n %s link set afx1 mtu 1500", host_ns);
	assert_int_equal(system(cmd), 0);
}

/*
 * The link's MTU lowered under a running dataplane: within a second no superpacket is sent whose
 * segments would not fit it (nothing would cut them smaller); they go one by one, the kernel's way,
 * which refuses them (DF) and is counted.
 */
static void test_inbound_no_superpacket_over_mtu(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	struct afxdp_counters ctr;
	uint8_t pkt[2048], esp[2048], data[1000] = { 0 };

	NEED_ENV();
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	assert_int_equal(system("ip link set afx0 mtu 1024"), 0);
	usleep(1100 * 1000);
	loop_once(f->loop, 0); /* refresh loop_now_ms */
	assert_int_equal(system("ip neigh replace 10.1.0.10 dev afx0 lladdr 02:00:00:00:aa:10 nud reachable"), 0);
	for (unsigned i = 0; i < 3; i++) {
		size_t il = tcp4(pkt, "10.2.0.10", 40001, "10.1.0.10", 7001, 1 + i * 1000, 1, 0x10, data, 1000);
		ssize_t n = esp_encap(&f->peer_out, pkt, il, esp, sizeof(esp));
		assert_true(n > 0);
		afxdp_esp_queue(f->dp, (struct tcp_conn *)&stream_a, esp, (size_t)n);
	}
	afxdp_tx_flush(f->dp);
	assert_int_equal(system("ip link set afx0 mtu 1500"), 0);
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.coalesced, 0);
	assert_int_equal(ctr.tx_errors + ctr.tx_kernel, 3);
}

/* Batched output: frames go through queue, one flush follows each RX pass, send is not used. */
static void test_outbound_batched(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	uint8_t inner[2048], nh = 0;

	NEED_ENV();
	afxdp_set_batch(f->dp, fake_queue, fake_flush);
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	for (int i = 0; i < 5; i++)
		host_send(f->host_udp10, "batched");
	for (int i = 0; i < 300 && f->cap.queued_at_flush < 5; i++)
		loop_once(f->loop, 10);
	assert_int_equal(f->cap.queued, 5);
	assert_int_equal(f->cap.queued_at_flush, 5); /* the last frame was followed by a flush */
	assert_true(f->cap.flushes >= 1 && f->cap.flushes <= 5);
	assert_int_equal(f->cap.sent, 0);
	assert_int_equal(esp_decap(&f->peer_in, f->cap.frame, f->cap.len, inner, sizeof(inner), &nh), 20 + 8 + 7);
	assert_memory_equal(inner + 28, "batched", 7);
	/* Either half alone is refused: frames would never be flushed. */
	afxdp_set_batch(f->dp, fake_queue, NULL);
	host_send(f->host_udp10, "unbatched");
	loop_until_sent(f, 1);
	assert_int_equal(f->cap.queued, 5);
}

/*
 * Peer -> host, many at once: afxdp_esp_queue holds the AF_XDP transmissions
 * until afxdp_tx_flush, which must get them all out although the kernel's
 * copy-mode TX takes only 32 per wakeup.
 */
static void test_inbound_batch_flush(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	struct sockaddr_in from;
	struct afxdp_counters ctr;
	uint8_t pkt[256], esp[512];
	char buf[256], want[32];
	int got = 0;

	NEED_ENV();
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	assert_int_equal(system("ip neigh replace 10.1.0.10 dev afx0 lladdr 02:00:00:00:aa:10 nud reachable"), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(want, sizeof(want), "batched packet %03d", i);
		ssize_t n = esp_encap(&f->peer_out, pkt, udp4(pkt, "10.2.0.10", "10.1.0.10", want), esp, sizeof(esp));
		assert_true(n > 0);
		afxdp_esp_queue(f->dp, (struct tcp_conn *)&stream_a, esp, (size_t)n);
	}
	/* Copy mode (test_copy_mode_on_veth): nothing is transmitted before the wakeup. */
	struct pollfd p = { .fd = f->host_udp10, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 100), 0);
	afxdp_tx_flush(f->dp);
	for (; got < 100; got++) {
		snprintf(want, sizeof(want), "batched packet %03d", got);
		assert_int_equal(host_recv(f->host_udp10, buf, sizeof(buf), &from), (ssize_t)strlen(want));
		assert_memory_equal(buf, want, strlen(want)); /* all of them, in order */
	}
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.tx_xsk, 100);
	assert_int_equal(ctr.tx_kernel + ctr.tx_errors, 0);
	afxdp_tx_flush(f->dp); /* nothing pending: harmless */
}

/* No neighbour entry: the kernel takes the packet (and resolves), then AF_XDP takes over. */
static void test_inbound_neighbour_miss(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	struct sockaddr_in from;
	struct afxdp_counters ctr;
	uint8_t pkt[256];
	char buf[256];

	NEED_ENV();
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	assert_int_equal(system("ip neigh flush dev afx0"), 0);
	peer_sends(f, pkt, udp4(pkt, "10.2.0.10", "10.1.0.11", "first, via the kernel"));
	assert_int_equal(host_recv(f->host_udp11, buf, sizeof(buf), &from), 21);
	assert_memory_equal(buf, "first, via the kernel", 21);
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.tx_kernel, 1);
	assert_int_equal(ctr.tx_xsk, 0);

	/* ARP done by the kernel; once the negative cache entry expires, AF_XDP sends. */
	usleep((NEIGH_MISS_TTL_MS + 50) * 1000);
	loop_once(f->loop, 0);
	peer_sends(f, pkt, udp4(pkt, "10.2.0.10", "10.1.0.11", "second, via AF_XDP"));
	assert_int_equal(host_recv(f->host_udp11, buf, sizeof(buf), &from), 18);
	assert_memory_equal(buf, "second, via AF_XDP", 18);
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.tx_kernel, 1);
	assert_int_equal(ctr.tx_xsk, 1);
}

/* Outside the selectors, unknown SPI, forged ICV: nothing reaches the host. */
static void test_inbound_drops(void **state)
{
	struct fixture *f = *state;
	struct child_sa c = child();
	struct sockaddr_in from;
	struct afxdp_counters ctr;
	uint8_t pkt[256], esp[512];
	char buf[256];
	size_t len;

	NEED_ENV();
	assert_int_equal(afxdp_child_ops.install(f->dp, &c), 0);
	peer_sends(f, pkt, udp4(pkt, "10.9.0.10", "10.1.0.10", "spoofed source"));
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.policy_drops, 1);
	/* Inner headers that lie (total length past the end, IHL below 5, a cut IPv6 header): esp_decap's
	 * inner-header check refuses them as malformed before the selectors are consulted. */
	uint64_t malformed = stats.esp.malformed;
	len = udp4(pkt, "10.2.0.10", "10.1.0.10", "liar");
	pkt[3] += 1;
	peer_sends(f, pkt, len);
	pkt[3] -= 1, pkt[0] = 0x44;
	peer_sends(f, pkt, len);
	pkt[0] = 0x60;
	peer_sends(f, pkt, 39);
	assert_int_equal(stats.esp.malformed, malformed + 3);
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.policy_drops, 1);

	uint64_t unknown = stats.esp.unknown_spi, auth = stats.esp.auth_failures;
	len = udp4(pkt, "10.2.0.10", "10.1.0.10", "tampered");
	ssize_t n = esp_encap(&f->peer_out, pkt, len, esp, sizeof(esp));
	assert_true(n > 0);
	esp[n - 1] ^= 1;
	afxdp_esp_input(f->dp, NULL, esp, (size_t)n);
	assert_int_equal(stats.esp.auth_failures, auth + 1);
	esp[3] = 0x77; /* SPI 0x00001077 */
	afxdp_esp_input(f->dp, NULL, esp, (size_t)n);
	assert_int_equal(stats.esp.unknown_spi, unknown + 1);
	afxdp_esp_input(f->dp, NULL, esp, 3);
	assert_int_equal(host_recv(f->host_udp10, buf, sizeof(buf), &from), -1);
	afxdp_counters(f->dp, &ctr);
	assert_int_equal(ctr.tx_xsk + ctr.tx_kernel, 0);
}

static void test_new_refuses_bad_interface(void **state)
{
	static const char *const bad[] = { "afx-nonexistent" };
	struct fixture *f = *state;

	NEED_ENV();
	assert_null(dataplane_afxdp_new(f->loop, bad, 1, NULL, false, fake_send, &f->cap));
	assert_null(dataplane_afxdp_new(f->loop, bad, 0, NULL, false, fake_send, &f->cap));
	/* The second interface fails after the first was attached: nothing stays attached. */
	static const char *const half[] = { "lo", "afx-nonexistent" };
	uint32_t prog = 1;
	assert_null(dataplane_afxdp_new(f->loop, half, 2, NULL, false, fake_send, &f->cap));
	assert_int_equal(bpf_xdp_query_id(1 /* lo */, 0, &prog), 0);
	assert_int_equal(prog, 0);
	afxdp_free(NULL);
}

/* ---- two gateways back to back ------------------------------------------- */

/*
 * A second gateway in its own namespace with a LAN host behind a 4-queue veth;
 * the two dataplanes' streams are direct calls into each other:
 *
 *   hostA 10.1.0.10 -- afx0 [gwA: this process] ~~ESP~~ [gwB] bgw0 -- hostB bh0 10.2.0.10
 */
struct pair {
	struct afxdp *a, *b;
};

static int send_to_b(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	struct pair *p = arg;
	afxdp_esp_input(p->b, c, esp, len);
	return 0;
}

static int send_to_a(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	struct pair *p = arg;
	afxdp_esp_input(p->a, c, esp, len);
	return 0;
}

/* Runs cmd in the background while the loop turns; its exit status, or -1 after 10 s. */
static int run_while_looping(struct loop *loop, const char *cmd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (time_t end = time(NULL) + 10; time(NULL) < end;) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		loop_once(loop, 10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void test_two_gateways_ping(void **state)
{
	static const char *const ifa[] = { "afx0" }, *const ifb[] = { "bgw0" };
	struct fixture *f = *state;
	struct pair p = { 0 };
	struct child_sa ca = child(), cb = child();
	char gwb[32], hostb[32], cmd[1024], path[64];
	unsigned zc;

	NEED_ENV();
	snprintf(gwb, sizeof(gwb), "afxgb-%d", (int)getpid());
	snprintf(hostb, sizeof(hostb), "afxhb-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %1$s && ip netns add %2$s && "
		 "ip link add bgw0 netns %1$s numtxqueues 4 numrxqueues 4 type veth peer name bh0 netns %2$s "
		 "numtxqueues 4 numrxqueues 4 && "
		 "ip -n %1$s addr add 10.2.0.1/24 dev bgw0 && ip -n %1$s link set bgw0 up && ip -n %1$s link set lo up && "
		 "ip -n %2$s addr add 10.2.0.10/24 dev bh0 && ip -n %2$s link set bh0 up && ip -n %2$s link set lo up && "
		 "ip -n %2$s route add 10.1.0.0/24 via 10.2.0.1",
		 gwb, hostb);
	int ok = system(cmd) == 0;
	snprintf(path, sizeof(path), "/run/netns/%s", gwb);
	int bfd = ok ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (bfd >= 0) {
		/* gwB's sockets, netlink and XDP attach belong to its namespace: create (and free) it there. */
		assert_int_equal(setns(bfd, CLONE_NEWNET), 0);
		p.b = dataplane_afxdp_new(f->loop, ifb, 1, NULL, false, send_to_a, &p);
		assert_int_equal(setns(gw_fd, CLONE_NEWNET), 0);
	}
	afxdp_free(f->dp); /* afx0 gets a dataplane whose stream leads to gwB */
	f->dp = NULL;
	p.a = dataplane_afxdp_new(f->loop, ifa, 1, NULL, false, send_to_b, &p);
	if (p.a && p.b) {
		assert_int_equal(afxdp_socket_count(p.b, &zc), 4); /* one per RX queue */
		/* gwB's SA is gwA's mirrored. */
		cb.spi_in = SPI_OUT, cb.spi_out = SPI_IN, cb.in = gcm(SPI_OUT, false, key_out);
		cb.out = gcm(SPI_IN, true, key_in);
		for (unsigned i = 0; i < cb.n_ts; i++) {
			struct child_ts t = cb.local_ts[i];
			cb.local_ts[i] = cb.remote_ts[i], cb.remote_ts[i] = t;
		}
		assert_int_equal(afxdp_child_ops.install(p.a, &ca), 0);
		assert_int_equal(afxdp_child_ops.install(p.b, &cb), 0);

		snprintf(cmd, sizeof(cmd), "ip netns exec %s ping -c 5 -i 0.2 -W 2 10.2.0.10 >/dev/null 2>&1", host_ns);
		ok = run_while_looping(f->loop, cmd) == 0;
		snprintf(cmd, sizeof(cmd), "ip netns exec %s ping -c 3 -i 0.2 -W 2 -s 1400 10.1.0.10 >/dev/null 2>&1",
			 hostb);
		ok = ok && run_while_looping(f->loop, cmd) == 0;
		struct afxdp_counters a, b;
		afxdp_counters(p.a, &a);
		afxdp_counters(p.b, &b);
		/* 5 + 3 echo requests and their replies through both dataplanes; at most the first packet to
		 * each host (its neighbour unresolved) through the kernel. */
		if (ok)
			ok = a.rx_frames == 8 && b.rx_frames == 8 && a.tx_xsk + a.tx_kernel == 8 &&
			     b.tx_xsk + b.tx_kernel == 8 && a.tx_xsk >= 7 && b.tx_xsk >= 7;
		fprintf(stderr, "gwA: rx %lu tx_xsk %lu tx_kernel %lu; gwB: rx %lu tx_xsk %lu tx_kernel %lu\n",
			(unsigned long)a.rx_frames, (unsigned long)a.tx_xsk, (unsigned long)a.tx_kernel,
			(unsigned long)b.rx_frames, (unsigned long)b.tx_xsk, (unsigned long)b.tx_kernel);
		/* AFXDP_IPERF=1: a rough TCP throughput figure through both dataplanes (not an assertion). */
		if (ok && getenv("AFXDP_IPERF")) {
			snprintf(cmd, sizeof(cmd),
				 "ip netns exec %s timeout 8 iperf3 -s -1 -B 10.2.0.10 >/dev/null 2>&1 & sleep 0.5; "
				 "ip netns exec %s timeout 6 iperf3 -c 10.2.0.10 -t 2 -f m > /tmp/afxdp-iperf.txt 2>&1; wait",
				 hostb, host_ns);
			run_while_looping(f->loop, cmd);
		}
	} else {
		ok = 0;
	}
	afxdp_free(p.a);
	if (bfd >= 0) {
		assert_int_equal(setns(bfd, CLONE_NEWNET), 0);
		afxdp_free(p.b);
		assert_int_equal(setns(gw_fd, CLONE_NEWNET), 0);
		close(bfd);
	}
	snprintf(cmd, sizeof(cmd), "ip netns del %s; ip netns del %s", gwb, hostb);
	(void)system(cmd);
	assert_true(ok);
}

/* ---- netlink reply parsers (no environment needed) ---------------------- */

/* rtmsg (12 bytes) for family, RTN_UNICAST, then attributes appended by nl_attr. */
static size_t rt_hdr(uint8_t *b, uint8_t family, uint8_t type)
{
	memset(b, 0, 12);
	b[0] = family, b[7] = type; /* rtm_family ... rtm_type at offset 7 */
	return 12;
}

static size_t nl_attr(uint8_t *b, size_t off, uint16_t type, const void *v, uint16_t vlen)
{
	uint16_t len = (uint16_t)(4 + vlen);
	memcpy(b + off, &len, 2);
	memcpy(b + off + 2, &type, 2);
	memcpy(b + off + 4, v, vlen);
	return off + ((len + 3u) & ~3u);
}

static void test_parse_route(void **state)
{
	uint8_t b[256], gw[16], four[4] = { 10, 1, 0, 254 };
	uint32_t oif = 7;
	unsigned gw_len;
	int o;

	(void)state;
	size_t n = rt_hdr(b, AF_INET, 1 /* RTN_UNICAST */);
	n = nl_attr(b, n, 1 /* RTA_DST */, four, 4);
	n = nl_attr(b, n, 4 /* RTA_OIF */, &oif, 4);
	assert_int_equal(neigh_parse_route(b, n, AF_INET, &o, gw, &gw_len), 0);
	assert_int_equal(o, 7);
	assert_int_equal(gw_len, 0);
	size_t with_gw = nl_attr(b, n, 5 /* RTA_GATEWAY */, four, 4);
	assert_int_equal(neigh_parse_route(b, with_gw, AF_INET, &o, gw, &gw_len), 0);
	assert_int_equal(gw_len, 4);
	assert_memory_equal(gw, four, 4);
	/* Every truncation is refused, except the whole message before RTA_GATEWAY. */
	for (size_t cut = 0; cut < with_gw; cut++)
		if (cut != n)
			assert_true(neigh_parse_route(b, cut, AF_INET, &o, gw, &gw_len) < 0);
	/* Wrong family, a gateway of the wrong size, an OIF of the wrong size, a hostile length. */
	assert_int_equal(neigh_parse_route(b, with_gw, AF_INET6, &o, gw, &gw_len), -EBADMSG);
	size_t bad = nl_attr(b, n, 5, four, 3);
	assert_int_equal(neigh_parse_route(b, bad, AF_INET, &o, gw, &gw_len), -EBADMSG);
	bad = nl_attr(b, 12, 4, &oif, 2);
	assert_int_equal(neigh_parse_route(b, bad, AF_INET, &o, gw, &gw_len), -EBADMSG);
	n = rt_hdr(b, AF_INET, 1);
	n = nl_attr(b, n, 4, &oif, 4);
	b[12] = 0xff, b[13] = 0xff; /* rta_len 65535 */
	assert_int_equal(neigh_parse_route(b, n, AF_INET, &o, gw, &gw_len), -EBADMSG);
	b[12] = 3, b[13] = 0; /* rta_len below its own header */
	assert_int_equal(neigh_parse_route(b, n, AF_INET, &o, gw, &gw_len), -EBADMSG);
	/* Not a unicast route (RTN_UNREACHABLE): no next hop. */
	n = rt_hdr(b, AF_INET, 7);
	n = nl_attr(b, n, 4, &oif, 4);
	assert_int_equal(neigh_parse_route(b, n, AF_INET, &o, gw, &gw_len), -EHOSTUNREACH);
}

static void test_parse_neigh(void **state)
{
	static const uint8_t lladdr[6] = { 2, 0, 0, 0, 0xaa, 0x10 };
	uint8_t b[256], mac[6], dst[4] = { 10, 1, 0, 10 };
	size_t n;

	(void)state;
	/* ndmsg: family, pad, pad, ifindex(4), state(2) at offset 8, flags, type. */
	for (unsigned st = 1; st < 0x100; st <<= 1) {
		memset(b, 0, 12);
		b[0] = AF_INET;
		uint16_t state16 = (uint16_t)st;
		memcpy(b + 8, &state16, 2);
		n = nl_attr(b, 12, 1 /* NDA_DST */, dst, 4);
		n = nl_attr(b, n, 2 /* NDA_LLADDR */, lladdr, 6);
		/* INCOMPLETE (0x01) and FAILED (0x20) are not usable; the others are. */
		int want = (st == 0x01 || st == 0x20) ? -ENOENT : 0;
		memset(mac, 0, 6);
		assert_int_equal(neigh_parse_neigh(b, n, mac), want);
		if (!want)
			assert_memory_equal(mac, lladdr, 6);
	}
	for (size_t cut = 0; cut < n; cut++)
		assert_true(neigh_parse_neigh(b, cut, mac) < 0);
	/* No link-layer address, or not an Ethernet one. */
	n = nl_attr(b, 12, 1, dst, 4);
	assert_int_equal(neigh_parse_neigh(b, n, mac), -ENOENT);
	n = nl_attr(b, 12, 2, lladdr, 4);
	assert_int_equal(neigh_parse_neigh(b, n, mac), -ENOENT);
}

/* ---- environment --------------------------------------------------------- */

static void env_cleanup(void)
{
	char cmd[96];

	if (host_ns[0]) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", host_ns);
		(void)system(cmd);
	}
	if (pin_root[0])
		rmdir(pin_root);
}

static bool env_setup(void)
{
	char cmd[1024], path[64];

	if (unshare(CLONE_NEWNET) != 0)
		return false;
	gw_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(host_ns, sizeof(host_ns), "afxh-%d", (int)getpid());
	snprintf(pin_root, sizeof(pin_root), "/sys/fs/bpf/afxt-%d", (int)getpid());
	atexit(env_cleanup);
	if (mkdir(pin_root, 0700) != 0)
		return false;
	/* The host leaves its checksums to "hardware" (veth default): the dataplane must complete them. */
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %1$s && ip link set lo up && "
		 "ip link add afx0 type veth peer name afx1 netns %1$s && "
		 "ip addr add 10.1.0.1/24 dev afx0 && ip addr add fd01::1/64 dev afx0 nodad && ip link set afx0 up && "
		 "ip -n %1$s link set lo up && ip -n %1$s link set afx1 address 02:00:00:00:aa:10 && "
		 "ip -n %1$s addr add 10.1.0.10/24 dev afx1 && ip -n %1$s addr add 10.1.0.11/24 dev afx1 && "
		 "ip -n %1$s addr add fd01::10/64 dev afx1 nodad && "
		 "ip -n %1$s link set afx1 up && ip -n %1$s route add 10.2.0.0/24 via 10.1.0.1 && "
		 "ip -n %1$s route add fd02::/64 via fd01::1 && "
		 "ip netns exec %1$s ethtool -K afx1 tx on >/dev/null",
		 host_ns);
	if (system(cmd) != 0)
		return false;
	snprintf(path, sizeof(path), "/run/netns/%s", host_ns);
	host_fd = open(path, O_RDONLY | O_CLOEXEC);
	return gw_fd >= 0 && host_fd >= 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy_mode_on_veth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maps_follow_sas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbound_sealed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbound_tcp_and_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbound_batched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_batch_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_via_xsk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_tcp_coalesced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_no_superpacket_over_mtu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbound_superpacket_generic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_neighbour_miss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_refuses_bad_interface, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_gateways_ping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jumbo_mtu_native, setup, teardown),
		cmocka_unit_test(test_parse_route),
		cmocka_unit_test(test_parse_neigh),
	};

	have_env = env_setup();
	if (!have_env)
		fprintf(stderr, "test_afxdp: no netns with veth and ip(8): skipping\n");
	return cmocka_run_group_tests_name("afxdp", tests, NULL, NULL);
}
