/*
 * The floor of a TUN-and-TCP tunnel, for bench_tunnel.sh: TUN superpackets
 * (vnet header and all) relayed over one TCP connection behind a 4-byte
 * length, with no ESP, no crypto and no per-packet work. One blocking thread
 * per direction, so the relay adds no event loop either. What it moves is the
 * most the kernel's side of iketcp's TUN dataplane could carry on this
 * machine; the tunnel rows are read against it.
 *
 *   tun_relay IFNAME listen ADDR PORT   (accepts one connection)
 *   tun_relay IFNAME connect ADDR PORT  (retries for 10 s)
 *
 * Runs until the connection closes. Not a product: trusts its peer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/tun_dev.h"

#define FRAME_MAX (64 + 65535 + 64) /* vnet header, a GSO skb's 64 KiB, margin */
#define RX_BUF (1024 * 1024)

struct relay {
	int tun, tcp;
};

static void die(const char *what)
{
	fprintf(stderr, "tun_relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write to the connection");
		p += w;
		n -= (size_t)w;
	}
}

/* TUN -> TCP: each read is one frame. */
static void *up(void *arg)
{
	struct relay *r = arg;
	static uint8_t buf[4 + FRAME_MAX];

	for (;;) {
		ssize_t n = read(r->tun, buf + 4, FRAME_MAX);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read from the TUN");
		uint32_t be = htonl((uint32_t)n);
		memcpy(buf, &be, 4);
		write_all(r->tcp, buf, 4 + (size_t)n);
	}
	return NULL;
}

/* TCP -> TUN: one write per whole frame; a partial frame waits for the next read. */
static void down(struct relay *r)
{
	static uint8_t buf[RX_BUF];
	size_t have = 0;

	for (;;) {
		ssize_t n = read(r->tcp, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read from the connection");
		if (n == 0)
			exit(0);
		have += (size_t)n;
		size_t at = 0;
		while (have - at >= 4) {
			uint32_t be;
			memcpy(&be, buf + at, 4);
			size_t len = ntohl(be);
			if (len == 0 || len > FRAME_MAX) {
				fprintf(stderr, "tun_relay: bad frame length %zu\n", len);
				exit(1);
			}
			if (have - at < 4 + len)
				break;
			if (write(r->tun, buf + at + 4, len) < 0 && errno != EINVAL && errno != ENOBUFS)
				die("write to the TUN");
			at += 4 + len;
		}
		memmove(buf, buf + at, have - at);
		have -= at;
	}
}

static int tcp_socket(const char *addr, const char *port, struct sockaddr_in *sa)
{
	*sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
	if (inet_pton(AF_INET, addr, &sa->sin_addr) != 1) {
		fprintf(stderr, "tun_relay: not an IPv4 address: %s\n", addr);
		exit(2);
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	return fd;
}

static int tcp_connect(const char *addr, const char *port)
{
	struct sockaddr_in sa;
	for (int tries = 0; tries < 100; tries++) {
		int fd = tcp_socket(addr, port, &sa);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
	}
	die("connect");
	return -1;
}

static int tcp_accept(const char *addr, const char *port)
{
	struct sockaddr_in sa;
	int one = 1, fd = tcp_socket(addr, port, &sa);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
		die("listen");
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		die("accept");
	close(fd);
	return c;
}

int main(int argc, char **argv)
{
	struct relay r;
	struct tun_dev t;
	pthread_t th;
	int one = 1, err;

	if (argc != 5 || (strcmp(argv[2], "listen") && strcmp(argv[2], "connect"))) {
		fprintf(stderr, "usage: tun_relay IFNAME listen|connect ADDR PORT\n");
		return 2;
	}
	err = tun_dev_open(&t, argv[1], 1500);
	if (err) {
		fprintf(stderr, "tun_relay: TUN %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	if (!t.vnet)
		fprintf(stderr, "tun_relay: %s: no offloads; the floor is per packet\n", t.ifname);
	if (fcntl(t.fd, F_SETFL, 0) < 0) /* blocking: one thread per direction */
		die("fcntl");
	r.tun = t.fd;
	r.tcp = strcmp(argv[2], "listen") ? tcp_connect(argv[3], argv[4]) : tcp_accept(argv[3], argv[4]);
	setsockopt(r.tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* as the daemon's streams */
	if (pthread_create(&th, NULL, up, &r))
		die("pthread_create");
	down(&r);
	return 0;
}
