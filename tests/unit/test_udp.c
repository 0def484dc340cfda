/*
 * IKE and ESP over UDP (transport/udp.c) through the public transport API, over real sockets on
 * 127.0.0.1 and ::1 in a private network namespace: what each port delivers to which handler, what
 * transport_send puts on the wire and from where, and the bound on peer paths.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "iketcp/stats.h"
#include "tests/lib/transport_harness.h"
#include "transport/transport.h"

enum { IKE_PORT = 10500, NATT_PORT = 14500, MAX_CLOSED = 64 };

struct ctx {
	struct th t;
	struct tcp_conn *closed_conns[MAX_CLOSED];
	bool send_in_closed; /* the closed handler tries to send on the path going away */
	bool open_in_ike;    /* the IKE handler opens a path to open_peer */
	struct sockaddr_storage open_peer;
	socklen_t open_len;
	struct tcp_conn *opened;
};

static void on_ike(void *arg, struct tcp_conn *c, const uint8_t *m, size_t len)
{
	struct ctx *x = arg;
	x->t.ike++;
	th_keep(&x->t, c, m, len);
	if (x->open_in_ike)
		x->opened = transport_udp_open(x->t.tp, (struct sockaddr *)&x->open_peer, x->open_len, true);
}

static void on_esp(void *arg, struct tcp_conn *c, const uint8_t *p, size_t len)
{
	struct ctx *x = arg;
	x->t.esp++;
	th_keep(&x->t, c, p, len);
}

static void on_closed(void *arg, struct tcp_conn *c)
{
	struct ctx *x = arg;
	assert_true(transport_conn_is_udp(c));
	if (x->send_in_closed)
		assert_int_equal(transport_send(c, ENCAP_IKE, "x", 1), -ENOTCONN);
	if (x->t.closed < MAX_CLOSED)
		x->closed_conns[x->t.closed] = c;
	x->t.closed++;
}

static struct transport_config udp_cfg(uint32_t max_conns)
{
	return (struct transport_config){
		.tcp = false, .udp = true, .ike_port = IKE_PORT, .natt_port = NATT_PORT,
		.ike_tcp_port = 443, .internal_port = 11443, .admin_sport = 8443,
		.max_conns = max_conns, .idle_timeout_s = 300, .prefix_timeout_ms = 300, .frame_timeout_ms = 400,
	};
}

static struct ctx *ctx_new(const struct transport_config *cfg)
{
	struct ctx *x = calloc(1, sizeof(*x));
	struct transport_handlers h = { .ike = on_ike, .esp = on_esp, .closed = on_closed, .arg = x };

	th_open(&x->t, &h, cfg);
	return x;
}

static void ctx_free(struct ctx *x)
{
	th_close(&x->t);
	free(x);
}

/* ---- the far side: plain UDP sockets ------------------------------------------------------------ */

static struct sockaddr_storage addr_of(int family, uint16_t port, socklen_t *len)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		*len = sizeof(*a);
	}
	return ss;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
					      : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* A peer socket on the loopback, on an ephemeral port. */
static int peer_sock(int family)
{
	socklen_t len;
	struct sockaddr_storage a = addr_of(family, 0, &len);
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);
	return fd;
}

static struct sockaddr_storage sock_name(int fd, socklen_t *len)
{
	struct sockaddr_storage ss;
	*len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, len), 0);
	return ss;
}

static void send_to(int fd, int family, uint16_t port, const void *p, size_t n)
{
	socklen_t len;
	struct sockaddr_storage a = addr_of(family, port, &len);
	assert_int_equal(sendto(fd, p, n, 0, (struct sockaddr *)&a, len), (ssize_t)n);
}

/* One datagram within ms: its length, and the port it came from; -1 when none came. */
static ssize_t recv_from(struct ctx *x, int fd, uint8_t *buf, size_t cap, uint16_t *from_port, int ms)
{
	for (int waited = 0; waited <= ms; waited += 10) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);
		if (n >= 0) {
			if (from_port)
				*from_port = port_of(&ss);
			return n;
		}
		assert_int_equal(errno, EAGAIN);
		loop_once(x->t.loop, 10);
	}
	return -1;
}

static size_t ike_msg(uint8_t *out, size_t len, uint8_t fill)
{
	memset(out, fill, len);
	out[0] = 0x11; /* a non-zero initiator SPI */
	return len;
}

/* Non-ESP marker, then an IKE message of len bytes. */
static size_t natt_ike(uint8_t *out, size_t len, uint8_t fill)
{
	memset(out, 0, 4);
	return 4 + ike_msg(out + 4, len, fill);
}

static size_t esp_pkt(uint8_t *out, uint32_t spi, size_t len)
{
	memset(out, 0xe5, len);
	out[0] = (uint8_t)(spi >> 24);
	out[1] = (uint8_t)(spi >> 16);
	out[2] = (uint8_t)(spi >> 8);
	out[3] = (uint8_t)spi;
	return len;
}

/* The peer sends IKE to natt (with the marker) or ike port; returns the path the handler saw. */
static struct tcp_conn *ike_from(struct ctx *x, int fd, int family, bool natt)
{
	uint8_t b[128];
	int before = x->t.ike;
	size_t n = natt ? natt_ike(b, 60, 0x42) : ike_msg(b, 60, 0x42);
	send_to(fd, family, natt ? NATT_PORT : IKE_PORT, b, n);
	for (int i = 0; i < 100 && x->t.ike == before; i++)
		loop_once(x->t.loop, 10);
	assert_int_equal(x->t.ike, before + 1);
	return x->t.last_conn;
}

static const int families[] = { AF_INET, AF_INET6 };

/* ---- tests --------------------------------------------------------------------------------------- */

static void test_ike_port_delivers_whole(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(16);
	struct ctx *x = ctx_new(&cfg);
	uint16_t ip, np;

	assert_true(transport_udp_ports(x->t.tp, &ip, &np));
	assert_int_equal(ip, IKE_PORT);
	assert_int_equal(np, NATT_PORT);
	for (size_t f = 0; f < 2; f++) {
		int fd = peer_sock(families[f]);
		uint8_t b[1500], want[1500];
		memset(&stats, 0, sizeof(stats));
		x->t.ike = 0;

		/* A whole IKE message on 500: no marker is looked for or stripped. */
		ike_msg(want, 1200, 0x33);
		memset(want + 4, 0, 4); /* bytes 4-7 zero: still IKE on this port */
		send_to(fd, families[f], IKE_PORT, want, 1200);
		assert_true(th_run_until(&x->t, &stats.udp.ike_in, 1, 1000));
		assert_int_equal(x->t.ike, 1);
		assert_int_equal(x->t.last_len, 1200);
		assert_memory_equal(x->t.last, want, 1200);
		struct tcp_conn *c = x->t.last_conn;
		assert_true(transport_conn_is_udp(c));
		assert_false(transport_conn_is_natt(c));
		assert_true(transport_conn_up(c));
		assert_false(transport_conn_outbound(c));
		/* The path knows both ends: the peer's address and the port it sent to. */
		socklen_t pl;
		struct sockaddr_storage me = sock_name(fd, &pl);
		assert_int_equal(transport_conn_peer(c)->ss_family, families[f]);
		assert_int_equal(port_of(transport_conn_peer(c)), port_of(&me));
		assert_int_equal(port_of(transport_conn_local(c)), IKE_PORT);
		assert_int_equal(stats.udp.paths, 1);

		/* A message starting with four zero bytes (an ESP-looking or marker-looking start) on 500. */
		memset(b, 0, 28);
		send_to(fd, families[f], IKE_PORT, b, 28);
		assert_true(th_run_until(&x->t, &stats.udp.ike_in, 2, 1000));
		assert_int_equal(x->t.last_len, 28);
		assert_ptr_equal(x->t.last_conn, c);

		/* Shorter than an IKE header: dropped, counted, no path. */
		send_to(fd, families[f], IKE_PORT, b, 27);
		send_to(fd, families[f], IKE_PORT, b, 0);
		assert_true(th_run_until(&x->t, &stats.udp.malformed, 2, 1000));
		assert_int_equal(x->t.ike, 2);
		assert_int_equal(stats.udp.datagrams_in, 4);
		assert_int_equal(stats.udp.paths, 1);
		close(fd);
	}
	ctx_free(x);
}

static void test_natt_classifies(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(16);
	struct ctx *x = ctx_new(&cfg);

	for (size_t f = 0; f < 2; f++) {
		int fd = peer_sock(families[f]), other = peer_sock(families[f]);
		uint8_t b[2000];
		memset(&stats, 0, sizeof(stats));
		x->t.ike = x->t.esp = 0;

		/* ESP (non-zero SPI) from an address that never spoke IKE: nobody hears it, no path. */
		send_to(fd, families[f], NATT_PORT, b, esp_pkt(b, 0x01020304, 100));
		assert_true(th_run_until(&x->t, &stats.udp.esp_no_path, 1, 1000));
		assert_int_equal(x->t.esp, 0);
		assert_int_equal(stats.udp.paths, 0);

		/* IKE with the marker: delivered without it. */
		size_t n = natt_ike(b, 300, 0x5c);
		send_to(fd, families[f], NATT_PORT, b, n);
		assert_true(th_run_until(&x->t, &stats.udp.ike_in, 1, 1000));
		assert_int_equal(x->t.ike, 1);
		assert_int_equal(x->t.last_len, 300);
		assert_memory_equal(x->t.last, b + 4, 300);
		struct tcp_conn *c = x->t.last_conn;
		assert_true(transport_conn_is_natt(c));
		assert_int_equal(port_of(transport_conn_local(c)), NATT_PORT);

		/* The smallest IKE message: marker + 28. */
		send_to(fd, families[f], NATT_PORT, b, natt_ike(b, 28, 0x01));
		assert_true(th_run_until(&x->t, &stats.udp.ike_in, 2, 1000));
		assert_int_equal(x->t.last_len, 28);

		/* Now ESP from the same address reaches the ESP handler on the same path, SPI first. */
		n = esp_pkt(b, 0xc0ffee01, 1400);
		send_to(fd, families[f], NATT_PORT, b, n);
		assert_true(th_run_until(&x->t, &stats.udp.esp_in, 1, 1000));
		assert_int_equal(x->t.esp, 1);
		assert_ptr_equal(x->t.last_conn, c);
		assert_int_equal(x->t.last_len, 1400);
		assert_memory_equal(x->t.last, b, 1400);
		/* The smallest non-marker datagram is ESP by this rule: four bytes. */
		send_to(fd, families[f], NATT_PORT, b, esp_pkt(b, 0xff000000, 4));
		assert_true(th_run_until(&x->t, &stats.udp.esp_in, 2, 1000));
		assert_int_equal(x->t.last_len, 4);

		/* ESP from another port of the same host: another address, no path. */
		send_to(other, families[f], NATT_PORT, b, esp_pkt(b, 0xc0ffee01, 100));
		assert_true(th_run_until(&x->t, &stats.udp.esp_no_path, 2, 1000));
		assert_int_equal(x->t.esp, 2);

		/* NAT keepalive: one 0xFF byte, counted, never delivered, no path for a new address. */
		send_to(other, families[f], NATT_PORT, "\xff", 1);
		send_to(fd, families[f], NATT_PORT, "\xff", 1);
		assert_true(th_run_until(&x->t, &stats.udp.keepalives, 2, 1000));

		/* Malformed: 0, 1 (not 0xFF), 2 and 3 bytes, the marker alone, marker + 27. */
		send_to(fd, families[f], NATT_PORT, b, 0);
		send_to(fd, families[f], NATT_PORT, "\x00", 1);
		send_to(fd, families[f], NATT_PORT, "\xfe", 1);
		send_to(fd, families[f], NATT_PORT, "\xff\xff", 2);
		send_to(fd, families[f], NATT_PORT, "\x00\x00\x00", 3);
		send_to(fd, families[f], NATT_PORT, b, natt_ike(b, 0, 0));
		send_to(fd, families[f], NATT_PORT, b, natt_ike(b, 27, 0x01));
		assert_true(th_run_until(&x->t, &stats.udp.malformed, 7, 1000));
		th_run_for(&x->t, 50);
		assert_int_equal(stats.udp.malformed, 7);
		assert_int_equal(x->t.ike, 2);
		assert_int_equal(x->t.esp, 2);
		assert_int_equal(stats.udp.paths, 1);
		assert_int_equal(stats.udp.datagrams_in, 15);
		close(fd);
		close(other);
	}
	ctx_free(x);
}

/* A path per (our port, peer address): IKE on 500 does not let ESP in on 4500. */
static void test_paths_per_port(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(16);
	struct ctx *x = ctx_new(&cfg);
	int fd = peer_sock(AF_INET);
	uint8_t b[200];

	struct tcp_conn *c500 = ike_from(x, fd, AF_INET, false);
	send_to(fd, AF_INET, NATT_PORT, b, esp_pkt(b, 0x1234, 100));
	assert_true(th_run_until(&x->t, &stats.udp.esp_no_path, 1, 1000));
	assert_int_equal(x->t.esp, 0);
	struct tcp_conn *c4500 = ike_from(x, fd, AF_INET, true);
	assert_ptr_not_equal(c500, c4500);
	assert_ptr_equal(ike_from(x, fd, AF_INET, false), c500);
	assert_ptr_equal(ike_from(x, fd, AF_INET, true), c4500);
	assert_int_equal(stats.udp.paths, 2);
	close(fd);
	ctx_free(x);
}

static void test_send(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(16);
	struct ctx *x = ctx_new(&cfg);

	for (size_t f = 0; f < 2; f++) {
		int fd = peer_sock(families[f]);
		uint8_t b[2000], msg[1500];
		uint16_t from;
		memset(&stats, 0, sizeof(stats));
		ike_msg(msg, 1000, 0x77);

		/* On a 4500 path: IKE gets the marker, ESP and keepalives go bare, all from 4500. */
		struct tcp_conn *c = ike_from(x, fd, families[f], true);
		assert_int_equal(transport_send(c, ENCAP_IKE, msg, 1000), 0);
		assert_int_equal(recv_from(x, fd, b, sizeof(b), &from, 1000), 1004);
		assert_int_equal(from, NATT_PORT);
		assert_memory_equal(b, "\0\0\0\0", 4);
		assert_memory_equal(b + 4, msg, 1000);
		esp_pkt(msg, 0xabcdef01, 1400);
		assert_int_equal(transport_send(c, ENCAP_ESP, msg, 1400), 0);
		assert_int_equal(recv_from(x, fd, b, sizeof(b), &from, 1000), 1400);
		assert_int_equal(from, NATT_PORT);
		assert_memory_equal(b, msg, 1400);
		assert_int_equal(transport_send(c, ENCAP_KEEPALIVE, NULL, 0), 0);
		assert_int_equal(recv_from(x, fd, b, sizeof(b), &from, 1000), 1);
		assert_int_equal(b[0], 0xff);
		/* Kinds that never go on the wire. */
		assert_int_equal(transport_send(c, ENCAP_MALFORMED, msg, 10), -EINVAL);
		assert_int_equal(transport_send(c, ENCAP_IKE_SHORT, msg, 10), -EINVAL);

		/* On a 500 path: IKE bare, from 500; no ESP, no keepalives (RFC 3948 is 4500 only). */
		ike_msg(msg, 500, 0x78);
		struct tcp_conn *d = ike_from(x, fd, families[f], false);
		assert_int_equal(transport_send(d, ENCAP_IKE, msg, 500), 0);
		assert_int_equal(recv_from(x, fd, b, sizeof(b), &from, 1000), 500);
		assert_int_equal(from, IKE_PORT);
		assert_memory_equal(b, msg, 500);
		assert_int_equal(transport_send(d, ENCAP_ESP, msg, 100), -EINVAL);
		assert_int_equal(transport_send(d, ENCAP_KEEPALIVE, NULL, 0), -EINVAL);
		assert_int_equal(recv_from(x, fd, b, sizeof(b), NULL, 50), -1);
		assert_int_equal(stats.udp.datagrams_out, 4);
		close(fd);
	}
	ctx_free(x);
}

/* transport_queue gathers ESP for one sendmmsg at transport_flush, in order; IKE still goes at once. */
static void test_queue_and_flush(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(16);
	struct ctx *x = ctx_new(&cfg);
	int fd = peer_sock(AF_INET);
	uint8_t b[2000], msg[1500]; /* small datagrams: the peer's default receive buffer holds them all */
	uint16_t from;

	struct tcp_conn *c = ike_from(x, fd, AF_INET, true);
	memset(&stats, 0, sizeof(stats));
	for (uint32_t i = 0; i < 70; i++) { /* more than one batch: the 65th flushes the first 64 */
		esp_pkt(msg, 0x200 + i, 200 + i);
		assert_int_equal(transport_queue(c, ENCAP_ESP, msg, 200 + i), 0);
	}
	assert_int_equal(stats.udp.datagrams_out, 64);
	ike_msg(msg, 200, 0x42);
	assert_int_equal(transport_queue(c, ENCAP_IKE, msg, 200), 0); /* not gathered */
	assert_int_equal(stats.udp.datagrams_out, 65);
	transport_flush(x->t.tp);
	assert_int_equal(stats.udp.datagrams_out, 71);
	for (uint32_t i = 0; i < 64; i++) {
		assert_int_equal(recv_from(x, fd, b, sizeof(b), &from, 1000), 200 + i);
		assert_int_equal(from, NATT_PORT);
		esp_pkt(msg, 0x200 + i, 200 + i);
		assert_memory_equal(b, msg, 200 + i);
	}
	assert_int_equal(recv_from(x, fd, b, sizeof(b), NULL, 1000), 204); /* marker + IKE */
	for (uint32_t i = 64; i < 70; i++) {
		assert_int_equal(recv_from(x, fd, b, sizeof(b), NULL, 1000), 200 + i);
		esp_pkt(msg, 0x200 + i, 200 + i);
		assert_memory_equal(b, msg, 200 + i);
	}
	transport_flush(x->t.tp); /* nothing left */
	assert_int_equal(recv_from(x, fd, b, sizeof(b), NULL, 50), -1);
	close(fd);
	ctx_free(x);
}

/*
 * Queued ESP of one path and one size leaves as UDP_SEGMENT messages (a shorter datagram may end a run,
 * a new size starts one); a peer without UDP_GRO still reads every datagram, in order. ESP a peer sends
 * with UDP_SEGMENT arrives in one read (UDP_GRO) and is handed over datagram by datagram.
 */
static void test_gso_send_gro_receive(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(16);
	struct ctx *x = ctx_new(&cfg);
	int fd = peer_sock(AF_INET);
	static const size_t sizes[] = { 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 800,
					800, 800, 800, 300 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	uint8_t b[2000], msg[1500];

	struct tcp_conn *c = ike_from(x, fd, AF_INET, true);
	memset(&stats, 0, sizeof(stats));
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(transport_queue(c, ENCAP_ESP, msg, esp_pkt(msg, 0x300 + i, sizes[i])), 0);
	transport_flush(x->t.tp);
	/* Runs: ten of 1000 and the first 800 as the shorter last; three of 800 and the 300. */
	assert_int_equal(stats.udp.gso_sends, 2);
	assert_int_equal(stats.udp.datagrams_out, N);
	assert_int_equal(stats.udp.send_errors, 0);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(recv_from(x, fd, b, sizeof(b), NULL, 1000), (ssize_t)sizes[i]);
		esp_pkt(msg, 0x300 + i, sizes[i]);
		assert_memory_equal(b, msg, sizes[i]);
	}

	/* The peer joins five datagrams of 600 bytes and one of 100 into one send. */
	uint8_t big[5 * 600 + 100];
	for (uint32_t i = 0; i < 6; i++)
		esp_pkt(big + i * 600, 0x400 + i, i < 5 ? 600 : 100);
	socklen_t al;
	struct sockaddr_storage to = addr_of(AF_INET, NATT_PORT, &al);
	struct iovec iov = { big, sizeof(big) };
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl = { 0 };
	struct msghdr mh = { .msg_name = &to, .msg_namelen = al, .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = IPPROTO_UDP, cm->cmsg_type = UDP_SEGMENT, cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
	uint16_t gso = 600;
	memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
	int esp_before = x->t.esp;
	assert_int_equal(sendmsg(fd, &mh, 0), (ssize_t)sizeof(big));
	for (int i = 0; i < 100 && x->t.esp < esp_before + 6; i++)
		loop_once(x->t.loop, 10);
	assert_int_equal(x->t.esp, esp_before + 6);
	assert_int_equal(stats.udp.gro_reads, 1);
	assert_int_equal(stats.udp.esp_in, 6);
	assert_int_equal(x->t.last_len, 100); /* the last one, whole and alone */
	assert_memory_equal(x->t.last, big + 3000, 100);
	close(fd);
	ctx_free(x);
}

/* Paths we open: the same one per peer and port, answers from the port we sent from. */
static void test_open(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(16);
	struct ctx *x = ctx_new(&cfg);

	for (size_t f = 0; f < 2; f++) {
		int fd = peer_sock(families[f]);
		socklen_t len;
		struct sockaddr_storage peer = sock_name(fd, &len);
		uint8_t b[200], msg[100];
		uint16_t from;

		struct tcp_conn *n = transport_udp_open(x->t.tp, (struct sockaddr *)&peer, len, true);
		assert_non_null(n);
		assert_ptr_equal(transport_udp_open(x->t.tp, (struct sockaddr *)&peer, len, true), n);
		assert_true(transport_conn_is_natt(n));
		assert_true(transport_conn_outbound(n));
		assert_true(transport_conn_up(n));
		/* Our side as NAT detection must hash it: a loopback address and our port. */
		const struct sockaddr_storage *l = transport_conn_local(n);
		assert_int_equal(l->ss_family, families[f]);
		assert_int_equal(port_of(l), NATT_PORT);
		if (families[f] == AF_INET)
			assert_int_equal(((const struct sockaddr_in *)l)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
		else
			assert_true(IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)l)->sin6_addr));

		struct tcp_conn *o = transport_udp_open(x->t.tp, (struct sockaddr *)&peer, len, false);
		assert_non_null(o);
		assert_ptr_not_equal(o, n);
		assert_false(transport_conn_is_natt(o));
		assert_ptr_equal(transport_udp_open(x->t.tp, (struct sockaddr *)&peer, len, false), o);

		ike_msg(msg, 80, 0x21);
		assert_int_equal(transport_send(n, ENCAP_IKE, msg, 80), 0);
		assert_int_equal(recv_from(x, fd, b, sizeof(b), &from, 1000), 84);
		assert_int_equal(from, NATT_PORT);
		assert_int_equal(transport_send(o, ENCAP_IKE, msg, 80), 0);
		assert_int_equal(recv_from(x, fd, b, sizeof(b), &from, 1000), 80);
		assert_int_equal(from, IKE_PORT);

		/* The peer's answers land on the paths we opened. */
		assert_ptr_equal(ike_from(x, fd, families[f], true), n);
		assert_ptr_equal(ike_from(x, fd, families[f], false), o);
		send_to(fd, families[f], NATT_PORT, b, esp_pkt(b, 0x99, 64));
		int esp = x->t.esp;
		for (int i = 0; i < 100 && x->t.esp == esp; i++)
			loop_once(x->t.loop, 10);
		assert_int_equal(x->t.esp, esp + 1);
		assert_ptr_equal(x->t.last_conn, n);
		close(fd);
	}
	/* Not IP, or too long a socket address. */
	struct sockaddr_storage ss = { .ss_family = AF_UNIX };
	assert_null(transport_udp_open(x->t.tp, (struct sockaddr *)&ss, sizeof(ss), true));
	ss.ss_family = AF_INET;
	assert_null(transport_udp_open(x->t.tp, (struct sockaddr *)&ss, sizeof(ss) + 1, true));
	ctx_free(x);
}

static void test_bound_evicts_oldest_unheld(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(4);
	struct ctx *x = ctx_new(&cfg);
	int fds[10];
	struct tcp_conn *c[10];
	uint8_t b[200];

	for (int i = 0; i < 10; i++)
		fds[i] = peer_sock(AF_INET);
	for (int i = 0; i < 4; i++)
		c[i] = ike_from(x, fds[i], AF_INET, true);
	assert_int_equal(stats.udp.paths, 4);
	assert_int_equal(x->t.closed, 0);

	/* The oldest is held (an IKE SA uses it): the next oldest makes room. */
	transport_conn_hold(c[0], true);
	x->send_in_closed = true;
	c[4] = ike_from(x, fds[4], AF_INET, true);
	assert_int_equal(x->t.closed, 1);
	assert_ptr_equal(x->closed_conns[0], c[1]);
	assert_int_equal(stats.udp.paths_evicted, 1);
	assert_int_equal(stats.udp.paths, 4);
	/* Its peer is a stranger now: ESP from it finds no path. */
	send_to(fds[1], AF_INET, NATT_PORT, b, esp_pkt(b, 0x77, 64));
	assert_true(th_run_until(&x->t, &stats.udp.esp_no_path, 1, 1000));

	c[5] = ike_from(x, fds[5], AF_INET, true);
	assert_int_equal(x->t.closed, 2);
	assert_ptr_equal(x->closed_conns[1], c[2]);

	/* Everything held (c[0] twice: two SAs), so a new source is refused and nobody hears it. */
	transport_conn_hold(c[0], true);
	transport_conn_hold(c[3], true);
	transport_conn_hold(c[4], true);
	transport_conn_hold(c[5], true);
	int ike = x->t.ike;
	send_to(fds[6], AF_INET, NATT_PORT, b, natt_ike(b, 40, 1));
	assert_true(th_run_until(&x->t, &stats.tcp.refused_limit, 1, 1000));
	th_run_for(&x->t, 30);
	assert_int_equal(x->t.ike, ike);
	assert_int_equal(x->t.closed, 2);
	assert_int_equal(stats.udp.paths, 4);
	/* A path we would open is refused too. */
	socklen_t len;
	struct sockaddr_storage peer = sock_name(fds[7], &len);
	assert_null(transport_udp_open(x->t.tp, (struct sockaddr *)&peer, len, true));
	/* The held paths still work both ways. */
	assert_ptr_equal(ike_from(x, fds[0], AF_INET, true), c[0]);
	esp_pkt(b, 0x55, 64);
	assert_int_equal(transport_send(c[5], ENCAP_ESP, b, 64), 0);
	assert_int_equal(recv_from(x, fds[5], b, sizeof(b), NULL, 1000), 64);

	/* One SA of c[0] goes: still held by the other. c[3] is let go: it is the one evicted. */
	transport_conn_hold(c[0], false);
	transport_conn_hold(c[3], false);
	c[6] = ike_from(x, fds[6], AF_INET, true);
	assert_int_equal(x->t.closed, 3);
	assert_ptr_equal(x->closed_conns[2], c[3]);
	/* Releasing more than was held does not underflow into "held". */
	transport_conn_hold(c[6], false);
	transport_conn_hold(c[0], false);
	transport_conn_hold(c[0], false);
	c[7] = ike_from(x, fds[7], AF_INET, true);
	assert_int_equal(x->t.closed, 4);
	assert_ptr_equal(x->closed_conns[3], c[0]);
	assert_int_equal(stats.udp.paths_evicted, 4);
	assert_int_equal(stats.udp.paths, 4);

	for (int i = 0; i < 10; i++)
		close(fds[i]);
	ctx_free(x);
	/* transport_free said goodbye to the 4 that were left. */
}

/* Opening a path evicts like receiving does; but never the path whose handler is running, nor one we opened. */
static void test_open_evicts_but_not_dispatching(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(1);
	struct ctx *x = ctx_new(&cfg);
	int fd = peer_sock(AF_INET), other = peer_sock(AF_INET), third = peer_sock(AF_INET);

	/* One slot, one unheld path: opening another evicts it. */
	struct tcp_conn *c = ike_from(x, fd, AF_INET, true);
	socklen_t len;
	struct sockaddr_storage peer = sock_name(other, &len);
	struct tcp_conn *o = transport_udp_open(x->t.tp, (struct sockaddr *)&peer, len, true);
	assert_non_null(o);
	assert_int_equal(x->t.closed, 1);
	assert_ptr_equal(x->closed_conns[0], c);
	assert_int_equal(stats.udp.paths, 1);

	/* From inside the IKE handler for o, opening a third path cannot evict o: refused. */
	x->open_in_ike = true;
	x->open_peer = sock_name(third, &x->open_len);
	x->opened = o; /* overwritten by the handler */
	assert_ptr_equal(ike_from(x, other, AF_INET, true), o);
	assert_null(x->opened);
	assert_int_equal(x->t.closed, 1);
	assert_int_equal(stats.udp.paths, 1);
	/* Outside the handler too: o is a path we opened (a handshake of ours may be in flight), never
	 * evicted, so neither a datagram from a new source nor another open makes room. */
	x->open_in_ike = false;
	assert_null(transport_udp_open(x->t.tp, (struct sockaddr *)&x->open_peer, x->open_len, true));
	uint8_t b[128];
	int before = x->t.ike;
	uint64_t refused = stats.tcp.refused_limit;
	send_to(third, AF_INET, IKE_PORT, b, ike_msg(b, 60, 0x42));
	for (int i = 0; i < 20; i++)
		loop_once(x->t.loop, 10);
	assert_int_equal(x->t.ike, before);
	assert_int_equal(stats.tcp.refused_limit, refused + 1);
	assert_int_equal(x->t.closed, 1);
	assert_int_equal(stats.udp.paths, 1);
	close(fd);
	close(other);
	close(third);
	ctx_free(x);
}

static void test_reconfigure_off_and_on(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(8);
	struct ctx *x = ctx_new(&cfg);
	int fd4 = peer_sock(AF_INET), fd6 = peer_sock(AF_INET6);
	uint8_t b[200];

	struct tcp_conn *a = ike_from(x, fd4, AF_INET, true);
	ike_from(x, fd4, AF_INET, false);
	struct tcp_conn *c = ike_from(x, fd6, AF_INET6, true);
	transport_conn_hold(a, true);
	transport_conn_hold(c, true);
	assert_int_equal(stats.udp.paths, 3);

	/* Re-applying the same settings keeps everything. */
	assert_int_equal(transport_configure(x->t.tp, &cfg), 0);
	assert_int_equal(x->t.closed, 0);
	assert_ptr_equal(ike_from(x, fd4, AF_INET, true), a);

	/* No phase1 uses UDP any more: every path goes, held or not, and the ports close. */
	cfg.udp = false;
	assert_int_equal(transport_configure(x->t.tp, &cfg), 0);
	assert_int_equal(x->t.closed, 3);
	assert_int_equal(stats.udp.paths, 0);
	uint16_t ip, np;
	assert_false(transport_udp_ports(x->t.tp, &ip, &np));
	socklen_t len;
	struct sockaddr_storage peer = sock_name(fd4, &len);
	assert_null(transport_udp_open(x->t.tp, (struct sockaddr *)&peer, len, true));
	/* Nobody listens: the kernel answers port unreachable, which a connected socket sees. */
	uint64_t in = stats.udp.datagrams_in;
	for (size_t f = 0; f < 2; f++) {
		socklen_t al;
		struct sockaddr_storage to = addr_of(families[f], NATT_PORT, &al);
		int s = socket(families[f], SOCK_DGRAM | SOCK_CLOEXEC, 0);
		assert_int_equal(connect(s, (struct sockaddr *)&to, al), 0);
		assert_int_equal(send(s, b, natt_ike(b, 40, 1), 0), 44);
		usleep(20000);
		assert_int_equal(recv(s, b, sizeof(b), MSG_DONTWAIT), -1);
		assert_int_equal(errno, ECONNREFUSED);
		close(s);
	}
	th_run_for(&x->t, 30);
	assert_int_equal(stats.udp.datagrams_in, in);

	/* And back on: fresh paths. */
	memset(&stats, 0, sizeof(stats));
	cfg.udp = true;
	assert_int_equal(transport_configure(x->t.tp, &cfg), 0);
	ike_from(x, fd4, AF_INET, true);
	assert_int_equal(stats.udp.paths, 1);

	/* New ports: the old paths cannot be answered from them, so they go; the old port closes. */
	cfg.natt_port = NATT_PORT + 1;
	assert_int_equal(transport_configure(x->t.tp, &cfg), 0);
	assert_int_equal(x->t.closed, 4);
	assert_int_equal(stats.udp.paths, 0);
	assert_true(transport_udp_ports(x->t.tp, &ip, &np));
	assert_int_equal(np, NATT_PORT + 1);
	memset(&stats, 0, sizeof(stats));
	send_to(fd4, AF_INET, NATT_PORT + 1, b, natt_ike(b, 40, 1));
	assert_true(th_run_until(&x->t, &stats.udp.ike_in, 1, 1000));
	send_to(fd4, AF_INET, NATT_PORT, b, natt_ike(b, 40, 1));
	th_run_for(&x->t, 50);
	assert_int_equal(stats.udp.ike_in, 1);
	assert_int_equal(stats.udp.datagrams_in, 1);

	close(fd4);
	close(fd6);
	int closed = x->t.closed;
	transport_free(x->t.tp);
	x->t.tp = NULL;
	assert_int_equal(closed + 1, x->t.closed); /* the last path, at shutdown */
	loop_free(x->t.loop);
	free(x);
}

/* Another socket has the port (UDP or TCP): the refused configuration leaves UDP exactly as it was.
 * Ports we already hold are kept, so swapping them works. */
static void test_reconfigure_port_taken(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(8);
	struct ctx *x = ctx_new(&cfg);
	int fd4 = peer_sock(AF_INET);
	uint8_t b[200];
	uint16_t ip, np;
	socklen_t len;

	struct tcp_conn *a = ike_from(x, fd4, AF_INET, true);
	transport_conn_hold(a, true);

	/* A new NAT-T port somebody else has. */
	struct sockaddr_storage busy_at = addr_of(AF_INET, NATT_PORT + 2, &len);
	int busy = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(busy, (struct sockaddr *)&busy_at, len), 0);
	cfg.natt_port = NATT_PORT + 2;
	assert_int_equal(transport_configure(x->t.tp, &cfg), -EADDRINUSE);
	close(busy);

	/* A new NAT-T port that is free, with a TCP listener port somebody else has. */
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(11443) };
	int tcp_busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(tcp_busy, (struct sockaddr *)&any, sizeof(any)), 0);
	assert_int_equal(listen(tcp_busy, 1), 0);
	cfg.natt_port = NATT_PORT + 1;
	cfg.tcp = true;
	assert_int_equal(transport_configure(x->t.tp, &cfg), -EADDRINUSE);
	close(tcp_busy);

	/* Still on the old ports, with the path and the SA's hold on it. */
	assert_int_equal(x->t.closed, 0);
	assert_true(transport_udp_ports(x->t.tp, &ip, &np));
	assert_int_equal(ip, IKE_PORT);
	assert_int_equal(np, NATT_PORT);
	assert_ptr_equal(ike_from(x, fd4, AF_INET, true), a);
	assert_int_equal(transport_send(a, ENCAP_IKE, "abc", 3), 0);
	uint16_t from;
	assert_int_equal(recv_from(x, fd4, b, sizeof(b), &from, 500), 7);
	assert_int_equal(from, NATT_PORT);

	/* Swapped ports: each socket we hold is kept for the other role. */
	cfg.tcp = false;
	cfg.ike_port = NATT_PORT;
	cfg.natt_port = IKE_PORT;
	assert_int_equal(transport_configure(x->t.tp, &cfg), 0);
	assert_true(transport_udp_ports(x->t.tp, &ip, &np));
	assert_int_equal(ip, NATT_PORT);
	assert_int_equal(np, IKE_PORT);
	memset(&stats, 0, sizeof(stats));
	send_to(fd4, AF_INET, IKE_PORT, b, natt_ike(b, 40, 1)); /* NAT-T now: the marker is stripped */
	assert_true(th_run_until(&x->t, &stats.udp.ike_in, 1, 1000));
	assert_int_equal(x->t.last_len, 40);
	send_to(fd4, AF_INET, NATT_PORT, b, ike_msg(b, 40, 1)); /* plain IKE now */
	assert_true(th_run_until(&x->t, &stats.udp.ike_in, 2, 1000));
	assert_int_equal(x->t.last_len, 40);

	close(fd4);
	ctx_free(x);
}

/* Unheld paths go after the idle time (here 1 s) once the sweep (every 5 s) runs; held ones stay. */
static void test_idle_sweep(void **state)
{
	(void)state;
	struct transport_config cfg = udp_cfg(8);
	cfg.idle_timeout_s = 1;
	struct ctx *x = ctx_new(&cfg);
	int fd = peer_sock(AF_INET), fd2 = peer_sock(AF_INET);

	struct tcp_conn *held = ike_from(x, fd, AF_INET, true);
	struct tcp_conn *idle = ike_from(x, fd2, AF_INET, true);
	transport_conn_hold(held, true);
	for (int i = 0; i < 700 && !x->t.closed; i++)
		loop_once(x->t.loop, 10);
	assert_int_equal(x->t.closed, 1);
	assert_ptr_equal(x->closed_conns[0], idle);
	assert_int_equal(stats.udp.paths, 1);
	assert_ptr_equal(ike_from(x, fd, AF_INET, true), held);
	close(fd);
	close(fd2);
	ctx_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_ike_port_delivers_whole, th_setup),
		cmocka_unit_test_setup(test_natt_classifies, th_setup),
		cmocka_unit_test_setup(test_paths_per_port, th_setup),
		cmocka_unit_test_setup(test_send, th_setup),
		cmocka_unit_test_setup(test_queue_and_flush, th_setup),
		cmocka_unit_test_setup(test_gso_send_gro_receive, th_setup),
		cmocka_unit_test_setup(test_open, th_setup),
		cmocka_unit_test_setup(test_bound_evicts_oldest_unheld, th_setup),
		cmocka_unit_test_setup(test_open_evicts_but_not_dispatching, th_setup),
		cmocka_unit_test_setup(test_reconfigure_off_and_on, th_setup),
		cmocka_unit_test_setup(test_reconfigure_port_taken, th_setup),
		cmocka_unit_test_setup(test_idle_sweep, th_setup),
	};
	/* Our own network namespace: the ports on a loopback nobody else uses. */
	th_netns("test_udp");
	return cmocka_run_group_tests_name("udp", tests, NULL, NULL);
}
