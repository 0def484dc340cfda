/*
 * The TUN dataplane in a private network namespace: one dataplane (A) whose
 * streams are a capture callback, and a peer that is nothing but two esp_sa
 * built from the same keys (peer in = A's out, peer out = A's in).
 *
 *   socket 10.1.0.1 / fd01::1 (lo) --route--> iketcp0 --A seals--> captured ESP --peer opens
 *   peer seals --> dataplane_esp_input --> iketcp0 --> socket bound to 10.1.0.1 / fd01::1
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "iketcp/stats.h"
#include "dataplane/dataplane.h"
#include "esp/esp.h"
#include "loop.h"

#define IFNAME "iketcp0"
#define SPI_A_IN 0xa0000001u  /* what the peer sends to */
#define SPI_A_OUT 0xb0000001u /* what A sends with */

static bool have_netns;

/* Stand-ins for two streams: the dataplane only passes them to the send callback. */
static char stream_a, stream_b;
#define CONN_A ((struct tcp_conn *)&stream_a)
#define CONN_B ((struct tcp_conn *)&stream_b)

struct fix {
	struct loop *loop;
	struct dataplane *dp;
	struct esp_sa peer_in, peer_out;
	/* the send callback's capture */
	unsigned sent;
	bool refuse;
	struct tcp_conn *conn;
	size_t len;
	uint8_t frame[70000];
};

static uint8_t key_out[20], key_in[20]; /* AES-GCM-128: key(16) | salt(4), A's view */

static int capture(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	struct fix *f = arg;

	if (f->refuse)
		return -ENOBUFS;
	f->sent++;
	f->conn = c;
	f->len = len;
	memcpy(f->frame, esp, len);
	return 0;
}

static struct esp_sa_params gcm(uint32_t spi, bool outbound, const uint8_t *key)
{
	return (struct esp_sa_params){
		.spi = spi,
		.outbound = outbound,
		.cipher = ESP_AES_GCM_16,
		.enc_key_bits = 128,
		.keymat = key,
		.keymat_len = 20,
		.replay = true,
	};
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

/* 10.1.0.0/24 <-> 10.2.0.0/24 and fd01::/64 <-> fd02::/64 on stream A. */
static struct child_sa child(uint32_t spi_in, uint32_t spi_out)
{
	struct child_sa c = {
		.phase1 = "p1",
		.phase2 = "p2",
		.spi_in = spi_in,
		.spi_out = spi_out,
		.in = gcm(spi_in, false, key_in),
		.out = gcm(spi_out, true, key_out),
		.n_ts = 2,
		.conn = CONN_A,
		.proposal = "AES_GCM_16_128",
	};
	c.local_ts[0] = ts4("10.1.0.0", 24);
	c.remote_ts[0] = ts4("10.2.0.0", 24);
	c.local_ts[1] = ts6("fd01::", 64);
	c.remote_ts[1] = ts6("fd02::", 64);
	return c;
}

static void sh(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0)
		fail_msg("`%s` failed (%d)", cmd, rc);
}

/* Routes to prefix on the TUN device, as `ip route` shows them. */
static int routes_to(const char *prefix)
{
	char cmd[128], line[256];
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ip %s route show dev " IFNAME " 2>/dev/null",
		 strchr(prefix, ':') ? "-6" : "-4");
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		if (strncmp(line, prefix, strlen(prefix)) == 0 && line[strlen(prefix)] == ' ')
			n++;
	pclose(p);
	return n;
}

static int setup(void **state)
{
	struct fix *f;

	*state = NULL;
	if (!have_netns)
		return 0; /* each test skips */
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	for (size_t i = 0; i < sizeof(key_out); i++) {
		key_out[i] = (uint8_t)(0x10 + i);
		key_in[i] = (uint8_t)(0x80 + 3 * i);
	}
	f->loop = loop_new();
	assert_non_null(f->loop);
	f->dp = dataplane_tun_new(f->loop, IFNAME, capture, f);
	assert_non_null(f->dp);
	assert_string_equal(dataplane_ifname(f->dp), IFNAME);
	struct child_sa c = child(SPI_A_IN, SPI_A_OUT);
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), 0);
	/* The peer: opens what A sends, seals what A receives. */
	struct esp_sa_params pin = gcm(SPI_A_OUT, false, key_out), pout = gcm(SPI_A_IN, true, key_in);
	assert_int_equal(esp_sa_init(&f->peer_in, &pin), 0);
	assert_int_equal(esp_sa_init(&f->peer_out, &pout), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	if (!f)
		return 0;
	dataplane_free(f->dp);
	loop_free(f->loop);
	esp_sa_destroy(&f->peer_in);
	esp_sa_destroy(&f->peer_out);
	free(f);
	return 0;
}

/* The fixture, or a skip when there is no private namespace to run in. */
static struct fix *fixture(void **state)
{
	if (!*state)
		skip();
	return *state;
}

/* Runs the loop until want frames were sent or about a second passes. */
static bool pump_sent(struct fix *f, unsigned want)
{
	for (int i = 0; i < 100 && f->sent < want; i++)
		loop_once(f->loop, 10);
	return f->sent >= want;
}

static struct dataplane_counters ctrs(struct fix *f)
{
	struct dataplane_counters c;
	dataplane_counters(f->dp, &c);
	return c;
}

/* ---- clear packets and sockets ------------------------------------------- */

static int udp_socket(int family, const char *addr, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &a->sin_addr), 1);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
		sl = sizeof(*a);
	}
	assert_int_equal(bind(s, (struct sockaddr *)&ss, sl), 0);
	sl = sizeof(ss);
	assert_int_equal(getsockname(s, (struct sockaddr *)&ss, &sl), 0);
	if (bound)
		*bound = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						 : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return s;
}

static void udp_send(int s, int family, const char *addr, uint16_t port, const char *msg)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;

	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &a->sin_addr), 1);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
		sl = sizeof(*a);
	}
	assert_int_equal(sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&ss, sl), (ssize_t)strlen(msg));
}

/* A datagram within ms, or -1. */
static ssize_t udp_recv(int s, char *buf, size_t cap, int ms)
{
	struct pollfd p = { .fd = s, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return recv(s, buf, cap, MSG_DONTWAIT);
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* IPv4/UDP src:sport -> dst:dport carrying msg; returns its length. */
static size_t ip4_udp(uint8_t *p, const char *src, uint16_t sport, const char *dst, uint16_t dport,
		      const char *msg)
{
	size_t plen = strlen(msg), len = 20 + 8 + plen;

	memset(p, 0, 28);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = IPPROTO_UDP;
	assert_int_equal(inet_pton(AF_INET, src, p + 12), 1);
	assert_int_equal(inet_pton(AF_INET, dst, p + 16), 1);
	uint16_t c = csum_fold(csum_add(0, p, 20));
	p[10] = (uint8_t)(c >> 8);
	p[11] = (uint8_t)c;
	p[20] = (uint8_t)(sport >> 8);
	p[21] = (uint8_t)sport;
	p[22] = (uint8_t)(dport >> 8);
	p[23] = (uint8_t)dport;
	p[24] = (uint8_t)((8 + plen) >> 8);
	p[25] = (uint8_t)(8 + plen);
	memcpy(p + 28, msg, plen); /* UDP checksum 0: none (RFC 768) */
	return len;
}

/* IPv6/UDP with its mandatory checksum. */
static size_t ip6_udp(uint8_t *p, const char *src, uint16_t sport, const char *dst, uint16_t dport,
		      const char *msg)
{
	size_t plen = strlen(msg), ulen = 8 + plen;

	memset(p, 0, 48);
	p[0] = 0x60;
	p[4] = (uint8_t)(ulen >> 8);
	p[5] = (uint8_t)ulen;
	p[6] = IPPROTO_UDP;
	p[7] = 64;
	assert_int_equal(inet_pton(AF_INET6, src, p + 8), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, p + 24), 1);
	uint8_t *u = p + 40;
	u[0] = (uint8_t)(sport >> 8);
	u[1] = (uint8_t)sport;
	u[2] = (uint8_t)(dport >> 8);
	u[3] = (uint8_t)dport;
	u[4] = (uint8_t)(ulen >> 8);
	u[5] = (uint8_t)ulen;
	memcpy(u + 8, msg, plen);
	uint32_t sum = csum_add(0, p + 8, 32); /* pseudo-header: addresses, length, next header */
	sum += (uint32_t)ulen + IPPROTO_UDP;
	uint16_t c = csum_fold(csum_add(sum, u, ulen));
	if (c == 0)
		c = 0xffff;
	u[6] = (uint8_t)(c >> 8);
	u[7] = (uint8_t)c;
	return 40 + ulen;
}

/*
 * The UDP checksum of a sealed inner packet is right and present: the TUN offers
 * checksum offload, so the kernel hands over packets whose checksum A completes.
 */
static bool udp_csum_ok(const uint8_t *ip, size_t len)
{
	bool v6 = ip[0] >> 4 == 6;
	size_t off = v6 ? 40 : (size_t)(ip[0] & 0x0f) * 4;
	uint32_t sum = csum_add(0, ip + (v6 ? 8 : 12), v6 ? 32 : 8) + IPPROTO_UDP + (uint32_t)(len - off);

	return (ip[off + 6] | ip[off + 7]) && csum_fold(csum_add(sum, ip + off, len - off)) == 0;
}

/* The peer seals an inner packet for A. */
static size_t peer_seal(struct fix *f, const uint8_t *ip, size_t len, uint8_t *esp)
{
	ssize_t n = esp_encap(&f->peer_out, ip, len, esp, 70000);
	assert_true(n > 0);
	return (size_t)n;
}

/* ---- outbound ------------------------------------------------------------ */

static void test_outbound_ipv4(void **state)
{
	struct fix *f = fixture(state);
	struct stats before = stats;
	uint8_t inner[70000], nh = 0;
	struct child_sa_counters sc;
	const char *msg = "clear to the peer's LAN";

	int s = udp_socket(AF_INET, "10.1.0.1", 0, NULL);
	udp_send(s, AF_INET, "10.2.0.10", 9, msg);
	assert_true(pump_sent(f, 1));
	close(s);

	assert_ptr_equal(f->conn, CONN_A);
	assert_int_equal(esp_spi_of(f->frame, f->len), SPI_A_OUT);
	ssize_t n = esp_decap(&f->peer_in, f->frame, f->len, inner, sizeof(inner), &nh);
	assert_int_equal(n, 28 + (ssize_t)strlen(msg));
	assert_int_equal(nh, ESP_NH_IPV4);
	assert_int_equal(inner[9], IPPROTO_UDP);
	uint8_t a[4];
	inet_pton(AF_INET, "10.1.0.1", a);
	assert_memory_equal(inner + 12, a, 4);
	inet_pton(AF_INET, "10.2.0.10", a);
	assert_memory_equal(inner + 16, a, 4);
	assert_int_equal(inner[22] << 8 | inner[23], 9);
	assert_memory_equal(inner + 28, msg, strlen(msg));
	assert_true(udp_csum_ok(inner, (size_t)n));

	assert_int_equal(stats.esp.packets_out - before.esp.packets_out, 1);
	assert_int_equal(dataplane_child_ops.counters(f->dp, SPI_A_IN, &sc), 0);
	assert_int_equal(sc.packets_out, 1);
	assert_int_equal(sc.bytes_out, (uint64_t)n);
	assert_int_equal(sc.packets_in, 0);
}

static void test_outbound_ipv6(void **state)
{
	struct fix *f = fixture(state);
	uint8_t inner[70000], nh = 0, a[16];
	const char *msg = "six";

	int s = udp_socket(AF_INET6, "fd01::1", 0, NULL);
	udp_send(s, AF_INET6, "fd02::10", 9, msg);
	assert_true(pump_sent(f, 1));
	close(s);

	ssize_t n = esp_decap(&f->peer_in, f->frame, f->len, inner, sizeof(inner), &nh);
	assert_int_equal(n, 48 + (ssize_t)strlen(msg));
	assert_int_equal(nh, ESP_NH_IPV6);
	assert_int_equal(inner[6], IPPROTO_UDP);
	inet_pton(AF_INET6, "fd01::1", a);
	assert_memory_equal(inner + 8, a, 16);
	inet_pton(AF_INET6, "fd02::10", a);
	assert_memory_equal(inner + 24, a, 16);
	assert_memory_equal(inner + 48, msg, strlen(msg));
	assert_true(udp_csum_ok(inner, (size_t)n));
}

/* Traffic outside every selector (here: from an address not in local_ts) is not sealed. */
static void test_outbound_no_sa(void **state)
{
	struct fix *f = fixture(state);
	uint64_t no_sa = ctrs(f).no_sa;

	sh("ip addr add 10.7.0.1/32 dev lo");
	int s = udp_socket(AF_INET, "10.7.0.1", 0, NULL);
	udp_send(s, AF_INET, "10.2.0.10", 9, "wrong source");
	close(s);
	for (int i = 0; i < 100 && ctrs(f).no_sa == no_sa; i++)
		loop_once(f->loop, 10);
	assert_true(ctrs(f).no_sa > no_sa);
	sh("ip addr del 10.7.0.1/32 dev lo");
	assert_int_equal(f->sent, 0);
}

/* update_conn(NULL): nothing to send on, counted; a new stream takes over. */
static void test_update_conn(void **state)
{
	struct fix *f = fixture(state);
	int s = udp_socket(AF_INET, "10.1.0.1", 0, NULL);

	dataplane_child_ops.update_conn(f->dp, SPI_A_IN, NULL);
	udp_send(s, AF_INET, "10.2.0.10", 9, "stream down");
	for (int i = 0; i < 100 && ctrs(f).no_stream < 1; i++)
		loop_once(f->loop, 10);
	assert_int_equal(ctrs(f).no_stream, 1);
	assert_int_equal(f->sent, 0);

	dataplane_child_ops.update_conn(f->dp, SPI_A_IN, CONN_B);
	udp_send(s, AF_INET, "10.2.0.10", 9, "stream back");
	assert_true(pump_sent(f, 1));
	assert_ptr_equal(f->conn, CONN_B);
	assert_int_equal(ctrs(f).no_stream, 1);

	/* A stream refusing the frame is a send error, not a crash or a retry. */
	f->refuse = true;
	udp_send(s, AF_INET, "10.2.0.10", 9, "queue full");
	for (int i = 0; i < 100 && ctrs(f).send_errors < 1; i++)
		loop_once(f->loop, 10);
	assert_int_equal(ctrs(f).send_errors, 1);
	close(s);
}

/* A rekeyed SA with the same selectors takes over the outbound traffic. */
static void test_rekey_newest_wins_and_routes_shared(void **state)
{
	struct fix *f = fixture(state);
	struct child_sa c2 = child(SPI_A_IN + 1, SPI_A_OUT + 1);

	assert_int_equal(dataplane_child_ops.install(f->dp, &c2), 0);
	assert_int_equal(dataplane_sa_count(f->dp), 2);
	int s = udp_socket(AF_INET, "10.1.0.1", 0, NULL);
	udp_send(s, AF_INET, "10.2.0.10", 9, "after rekey");
	assert_true(pump_sent(f, 1));
	assert_int_equal(esp_spi_of(f->frame, f->len), SPI_A_OUT + 1);

	/* The old SA goes: the route stays, the new SA still needs it. */
	dataplane_child_ops.remove(f->dp, SPI_A_IN);
	assert_int_equal(routes_to("10.2.0.0/24"), 1);
	assert_int_equal(routes_to("fd02::/64"), 1);
	/* A more specific selector beats the broader one. */
	struct child_sa c3 = child(SPI_A_IN + 2, SPI_A_OUT + 2);
	c3.n_ts = 1;
	c3.remote_ts[0] = ts4("10.2.0.8", 29);
	assert_int_equal(dataplane_child_ops.install(f->dp, &c3), 0);
	assert_int_equal(routes_to("10.2.0.8/29"), 1);
	udp_send(s, AF_INET, "10.2.0.10", 9, "specific");
	assert_true(pump_sent(f, 2));
	assert_int_equal(esp_spi_of(f->frame, f->len), SPI_A_OUT + 2);
	udp_send(s, AF_INET, "10.2.0.20", 9, "broad");
	assert_true(pump_sent(f, 3));
	assert_int_equal(esp_spi_of(f->frame, f->len), SPI_A_OUT + 1);
	close(s);

	dataplane_child_ops.remove(f->dp, SPI_A_IN + 2);
	assert_int_equal(routes_to("10.2.0.8/29"), 0);
	assert_int_equal(routes_to("10.2.0.0/24"), 1);
	dataplane_child_ops.remove(f->dp, SPI_A_IN + 1);
	assert_int_equal(dataplane_sa_count(f->dp), 0);
	assert_int_equal(routes_to("10.2.0.0/24"), 0);
	assert_int_equal(routes_to("fd02::/64"), 0);
	/* Removing twice, or an SPI never installed, is harmless. */
	dataplane_child_ops.remove(f->dp, SPI_A_IN + 1);
	dataplane_child_ops.update_conn(f->dp, 0x12345678, NULL);
}

/* ---- routes and install -------------------------------------------------- */

static void test_routes_follow_sas(void **state)
{
	struct fix *f = fixture(state);
	struct child_sa_counters sc;

	assert_int_equal(routes_to("10.2.0.0/24"), 1);
	assert_int_equal(routes_to("fd02::/64"), 1);
	dataplane_child_ops.remove(f->dp, SPI_A_IN);
	assert_int_equal(routes_to("10.2.0.0/24"), 0);
	assert_int_equal(routes_to("fd02::/64"), 0);
	assert_int_equal(dataplane_child_ops.counters(f->dp, SPI_A_IN, &sc), -ENOENT);
	assert_int_equal(dataplane_sa_count(f->dp), 0);

	/* Host bits in a selector are cleared: the route is to the prefix. */
	struct child_sa c = child(SPI_A_IN, SPI_A_OUT);
	c.remote_ts[0] = ts4("10.2.0.77", 24);
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), 0);
	assert_int_equal(routes_to("10.2.0.0/24"), 1);
}

static void test_install_refused_leaves_nothing(void **state)
{
	struct fix *f = fixture(state);
	struct child_sa c;

	/* The same inbound SPI twice. */
	c = child(SPI_A_IN, SPI_A_OUT + 9);
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), -EEXIST);
	/* Bad selectors and SPIs. */
	c = child(SPI_A_IN + 1, SPI_A_OUT + 1);
	c.remote_ts[0].prefix_len = 33;
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), -EINVAL);
	c = child(SPI_A_IN + 1, SPI_A_OUT + 1);
	c.local_ts[1] = ts4("10.1.0.0", 24); /* pair of two families */
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), -EINVAL);
	c = child(SPI_A_IN + 1, SPI_A_OUT + 1);
	c.n_ts = 0;
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), -EINVAL);
	c = child(0, SPI_A_OUT + 1);
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), -EINVAL);
	/* A bad key length: esp_sa_init refuses. */
	c = child(SPI_A_IN + 1, SPI_A_OUT + 1);
	c.out.keymat_len = 19;
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), -EINVAL);
	assert_int_equal(dataplane_sa_count(f->dp), 1);

	/* The second route fails (IPv6 off on the device): the first one is taken back. */
	sh("sysctl -qw net.ipv6.conf." IFNAME ".disable_ipv6=1");
	c = child(SPI_A_IN + 1, SPI_A_OUT + 1);
	c.remote_ts[0] = ts4("10.3.0.0", 16);
	c.remote_ts[1] = ts6("fd03::", 64);
	int err = dataplane_child_ops.install(f->dp, &c);
	sh("sysctl -qw net.ipv6.conf." IFNAME ".disable_ipv6=0");
	assert_true(err < 0);
	assert_int_equal(routes_to("10.3.0.0/16"), 0);
	assert_int_equal(dataplane_sa_count(f->dp), 1);
	/* Its inbound SPI is not left in the table. */
	uint64_t unknown = stats.esp.unknown_spi;
	uint8_t esp[64] = { 0xa0, 0, 0, 2, 0, 0, 0, 1 };
	dataplane_esp_input(f->dp, CONN_A, esp, sizeof(esp));
	assert_int_equal(stats.esp.unknown_spi, unknown + 1);
	/* The SA already there is untouched. */
	assert_int_equal(routes_to("10.2.0.0/24"), 1);
}

/* ---- inbound ------------------------------------------------------------- */

static void inbound_one(struct fix *f, int family, const char *src, const char *dst)
{
	uint8_t ip[200], esp[400];
	char got[100];
	uint16_t port;
	struct stats before = stats;
	struct dataplane_counters c0 = ctrs(f);
	const char *msg = "from the peer's LAN";

	int s = udp_socket(family, dst, 0, &port);
	size_t len = family == AF_INET ? ip4_udp(ip, src, 5555, dst, port, msg)
				       : ip6_udp(ip, src, 5555, dst, port, msg);
	size_t n = peer_seal(f, ip, len, esp);
	dataplane_esp_input(f->dp, CONN_A, esp, n);
	ssize_t r = udp_recv(s, got, sizeof(got), 1000);
	close(s);
	assert_int_equal(r, (ssize_t)strlen(msg));
	assert_memory_equal(got, msg, strlen(msg));
	assert_int_equal(stats.esp.packets_in - before.esp.packets_in, 1);
	struct dataplane_counters c = ctrs(f);
	assert_int_equal(c.policy_drops, c0.policy_drops);
	assert_int_equal(c.tun_write_errors, c0.tun_write_errors);
}

static void test_inbound_ipv4(void **state)
{
	struct fix *f = fixture(state);
	struct child_sa_counters sc;

	inbound_one(f, AF_INET, "10.2.0.10", "10.1.0.1");
	assert_int_equal(dataplane_child_ops.counters(f->dp, SPI_A_IN, &sc), 0);
	assert_int_equal(sc.packets_in, 1);
	assert_int_equal(sc.bytes_in, 28 + strlen("from the peer's LAN"));
}

static void test_inbound_ipv6(void **state)
{
	inbound_one(fixture(state), AF_INET6, "fd02::10", "fd01::1");
}

static void test_inbound_drops(void **state)
{
	struct fix *f = fixture(state);
	struct stats before = stats;
	struct child_sa_counters sc;
	uint8_t ip[200], esp[400], bad[400];
	char got[100];
	uint16_t port;

	int s = udp_socket(AF_INET, "10.1.0.1", 0, &port);
	size_t len = ip4_udp(ip, "10.2.0.10", 5555, "10.1.0.1", port, "x");
	size_t n = peer_seal(f, ip, len, esp);

	/* Unknown SPI. */
	memcpy(bad, esp, n);
	bad[3] ^= 0x40;
	dataplane_esp_input(f->dp, CONN_A, bad, n);
	assert_int_equal(stats.esp.unknown_spi - before.esp.unknown_spi, 1);
	/* Too short to hold an ESP header, and SPI 0. */
	dataplane_esp_input(f->dp, CONN_A, esp, 3);
	dataplane_esp_input(f->dp, CONN_A, esp, 7);
	memset(bad, 0, 16);
	dataplane_esp_input(f->dp, CONN_A, bad, 16);
	assert_int_equal(stats.esp.malformed - before.esp.malformed, 3);
	/* Truncated after the header: malformed by esp_decap. */
	dataplane_esp_input(f->dp, CONN_A, esp, 20);
	assert_int_equal(stats.esp.malformed - before.esp.malformed, 4);
	/* Tampered ciphertext and tampered ICV. */
	memcpy(bad, esp, n);
	bad[20] ^= 1;
	dataplane_esp_input(f->dp, CONN_A, bad, n);
	memcpy(bad, esp, n);
	bad[n - 1] ^= 0x80;
	dataplane_esp_input(f->dp, CONN_A, bad, n);
	assert_int_equal(stats.esp.auth_failures - before.esp.auth_failures, 2);
	assert_int_equal(udp_recv(s, got, sizeof(got), 50), -1);

	/* The real one passes once; the replay is dropped. */
	dataplane_esp_input(f->dp, CONN_A, esp, n);
	assert_int_equal(udp_recv(s, got, sizeof(got), 1000), 1);
	dataplane_esp_input(f->dp, CONN_A, esp, n);
	assert_int_equal(stats.esp.replay_drops - before.esp.replay_drops, 1);
	assert_int_equal(udp_recv(s, got, sizeof(got), 100), -1);

	assert_int_equal(dataplane_child_ops.counters(f->dp, SPI_A_IN, &sc), 0);
	assert_int_equal(sc.packets_in, 1);
	assert_int_equal(sc.auth_failures, 2);
	assert_int_equal(sc.replay_drops, 1);
	assert_int_equal(stats.esp.packets_in - before.esp.packets_in, 1);
	close(s);
}

/* A peer may only send from its own selectors to ours (RFC 4301 section 5.2). */
static void test_inbound_policy(void **state)
{
	struct fix *f = fixture(state);
	uint8_t ip[200], esp[400];
	char got[100];
	uint16_t port;
	static const struct {
		int family;
		const char *src, *dst;
	} spoofed[] = {
		{ AF_INET, "10.9.9.9", "10.1.0.1" },   /* source outside remote_ts */
		{ AF_INET, "10.2.0.10", "10.7.0.1" },  /* destination outside local_ts */
		{ AF_INET6, "fd09::9", "fd01::1" },
		{ AF_INET6, "fd02::10", "fd07::1" },
	};

	sh("ip addr add 10.7.0.1/32 dev lo");
	sh("ip -6 addr add fd07::1/128 dev lo nodad");
	for (size_t i = 0; i < sizeof(spoofed) / sizeof(spoofed[0]); i++) {
		int fam = spoofed[i].family;
		/* A socket on the wildcard address would see the packet if it got through. */
		int s = udp_socket(fam, fam == AF_INET ? "0.0.0.0" : "::", 0, &port);
		size_t len = fam == AF_INET ? ip4_udp(ip, spoofed[i].src, 5555, spoofed[i].dst, port, "spoof")
					    : ip6_udp(ip, spoofed[i].src, 5555, spoofed[i].dst, port, "spoof");
		uint64_t in = stats.esp.packets_in;
		dataplane_esp_input(f->dp, CONN_A, esp, peer_seal(f, ip, len, esp));
		assert_int_equal(stats.esp.packets_in, in + 1); /* authentic, then refused */
		assert_int_equal(ctrs(f).policy_drops, i + 1);
		assert_int_equal(udp_recv(s, got, sizeof(got), 100), -1);
		close(s);
	}
	sh("ip addr del 10.7.0.1/32 dev lo");
	sh("ip -6 addr del fd07::1/128 dev lo");
	/* The control: the same path with an allowed pair is delivered. */
	inbound_one(f, AF_INET, "10.2.0.10", "10.1.0.1");
}

/* Next Header 59 (RFC 4303 section 2.6): authenticated, then discarded without a trace. */
static void test_inbound_dummy(void **state)
{
	struct fix *f = fixture(state);
	struct stats before = stats;
	struct dataplane_counters c0 = ctrs(f);
	static const uint8_t pt[] = { 1, 2, 2, ESP_NH_DUMMY }, iv[8] = { 0 };
	uint8_t esp[100];

	ssize_t n = esp_seal_raw_for_test(&f->peer_out, 1, iv, pt, sizeof(pt), esp, sizeof(esp));
	assert_true(n > 0);
	dataplane_esp_input(f->dp, CONN_A, esp, (size_t)n);
	assert_memory_equal(&stats.esp, &before.esp, sizeof(stats.esp));
	struct dataplane_counters c1 = ctrs(f);
	assert_memory_equal(&c0, &c1, sizeof(c0));
	assert_int_equal(f->peer_out.stats.packets, 0);
}

/* dataplane_free with SAs still installed: routes go, keys are wiped, LSan sees no leak. */
static void test_free_with_sas(void **state)
{
	struct fix *f = fixture(state);
	struct child_sa c = child(SPI_A_IN + 1, SPI_A_OUT + 1);

	c.remote_ts[0] = ts4("10.4.0.0", 16);
	assert_int_equal(dataplane_child_ops.install(f->dp, &c), 0);
	assert_int_equal(routes_to("10.4.0.0/16"), 1);
	dataplane_free(f->dp);
	f->dp = NULL;
	assert_int_equal(system("ip link show " IFNAME " >/dev/null 2>&1") == 0, 0);
	/* A new dataplane gets the name back. */
	f->dp = dataplane_tun_new(f->loop, IFNAME, capture, f);
	assert_non_null(f->dp);
	assert_int_equal(routes_to("10.4.0.0/16"), 0);
	assert_null(dataplane_tun_new(f->loop, "a-name-far-too-long-for-ifnamsiz", capture, f));
}

/* The device deleted under the dataplane: it stops reading instead of spinning on EPOLLERR. */
static void test_device_deleted(void **state)
{
	struct fix *f = fixture(state);
	struct timespec t0, t1;

	sh("ip link del " IFNAME);
	loop_once(f->loop, 10);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 5; i++)
		loop_once(f->loop, 40);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 150); /* the loop waited: nothing left firing */
	/* Its SAs go quietly: the routes went with the device. */
	dataplane_child_ops.remove(f->dp, SPI_A_IN);
	assert_int_equal(dataplane_sa_count(f->dp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_outbound_ipv4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbound_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbound_no_sa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rekey_newest_wins_and_routes_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes_follow_sas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_install_refused_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_ipv4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_dummy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_sas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_deleted, setup, teardown),
	};
	/* Our own network namespace: its routes, addresses and TUN device vanish with the process. */
	have_netns = unshare(CLONE_NEWNET) == 0 && access("/dev/net/tun", R_OK | W_OK) == 0 &&
		     system("ip link set lo up && ip addr add 10.1.0.1/32 dev lo && "
			    "ip -6 addr add fd01::1/128 dev lo nodad") == 0;
	if (!have_netns)
		fprintf(stderr, "test_dataplane: no private network namespace with TUN and ip(8): skipping\n");
	return cmocka_run_group_tests_name("dataplane", tests, NULL, NULL);
}
