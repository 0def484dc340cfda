/*
 * The floor of a TUN-and-TCP tunnel, for bench_tunnel.sh: TUN superpackets
 * (vnet header and all) relayed over one TCP connection behind a 4-byte
 * length, with no ESP, no crypto and no per-packet work. One blocking thread
 * per direction, so the relay adds no event loop either. What it moves is the
 * most the kernel's side of iketcp's TUN dataplane could carry on this
 * machine; the tunnel rows are read against it.
 *
 * With "aead", each superpacket is also sealed as ESP's AEAD would seal its
 * packets, through the daemon's own AES-128-GCM (esp/aead_mb.c): cut into
 * 1,500-byte pieces (an MTU-sized IP packet each), each with an 8-byte IV,
 * 8 bytes of associated data and a 16-byte tag, sealed out of place into the
 * send buffer and opened out of place into the TUN write's. That is the least
 * work any ESP tunnel through a TUN and a kernel TCP socket does here: no ESP
 * header or trailer, no segmentation, checksum or coalescing, no event loop.
 *
 *   tun_relay IFNAME listen ADDR PORT [aead]   (accepts one connection)
 *   tun_relay IFNAME connect ADDR PORT [aead]  (retries for 10 s)
 *
 * Runs until the connection closes. Not a product: trusts its peer, and its
 * key is a constant.
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
#include "esp/aead_mb.h"

#define FRAME_MAX (64 + 65535 + 64) /* vnet header, a GSO skb's 64 KiB, margin */
#define RX_BUF (1024 * 1024)
#define PIECE 1500                  /* plaintext bytes per seal: one MTU-sized packet */
#define PIECE_IV 8                  /* as ESP's GCM IV (RFC 4106) */
#define PIECE_AAD 8                 /* as ESP's SPI and sequence number */
#define PIECE_OVERHEAD (PIECE_IV + AEAD_MB_TAG_LEN)
#define SEALED_MAX (4 + FRAME_MAX + (FRAME_MAX / PIECE + 1) * PIECE_OVERHEAD)

struct relay {
	int tun, tcp;
	struct aead_mb *aead; /* NULL: no crypto */
	uint8_t salt[4];
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

static size_t sealed_len(size_t plain)
{
	return plain + (plain + PIECE - 1) / PIECE * PIECE_OVERHEAD;
}

/* The frame's plaintext (n bytes) sealed piece by piece into out; the sealed length. */
static size_t seal_frame(const struct relay *r, uint64_t *iv, const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t *o = out;

	for (size_t at = 0; at < n; at += PIECE) {
		size_t len = n - at < PIECE ? n - at : PIECE;
		uint8_t nonce[AEAD_MB_NONCE_LEN], aad[PIECE_AAD] = { 0 };
		uint64_t v = (*iv)++;

		memcpy(nonce, r->salt, 4);
		memcpy(nonce + 4, &v, 8);
		memcpy(aad + 4, &v, 4);
		memcpy(o, &v, PIECE_IV);
		aead_mb_seal(r->aead, nonce, aad, sizeof(aad), o + PIECE_IV, &(struct iovec){ (void *)(in + at), len },
			     1, o + PIECE_IV + len);
		o += PIECE_OVERHEAD + len;
	}
	return (size_t)(o - out);
}

/* A sealed frame of n bytes opened into out; its plaintext length, or 0 when a piece fails. */
static size_t open_frame(const struct relay *r, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t plain = 0;

	while (n) {
		if (n <= PIECE_OVERHEAD)
			return 0;
		size_t len = n - PIECE_OVERHEAD < PIECE ? n - PIECE_OVERHEAD : PIECE;
		uint8_t nonce[AEAD_MB_NONCE_LEN], aad[PIECE_AAD] = { 0 };

		memcpy(nonce, r->salt, 4);
		memcpy(nonce + 4, in, PIECE_IV);
		memcpy(aad + 4, in, 4);
		if (!aead_mb_open(r->aead, nonce, aad, sizeof(aad), out + plain, in + PIECE_IV, len,
				  in + PIECE_IV + len))
			return 0;
		plain += len;
		in += PIECE_OVERHEAD + len;
		n -= PIECE_OVERHEAD + len;
	}
	return plain;
}

/* TUN -> TCP: each read is one frame. */
static void *up(void *arg)
{
	struct relay *r = arg;
	static uint8_t buf[4 + FRAME_MAX], sealed[SEALED_MAX];
	uint64_t iv = 1;

	for (;;) {
		ssize_t n = read(r->tun, buf + 4, FRAME_MAX);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read from the TUN");
		uint8_t *frame = buf;
		size_t len = (size_t)n;
		if (r->aead) {
			frame = sealed;
			len = seal_frame(r, &iv, buf + 4, (size_t)n, sealed + 4);
		}
		uint32_t be = htonl((uint32_t)len);
		memcpy(frame, &be, 4);
		write_all(r->tcp, frame, 4 + len);
	}
	return NULL;
}

/* TCP -> TUN: one write per whole frame; a partial frame waits for the next read. */
static void down(struct relay *r)
{
	static uint8_t buf[RX_BUF], opened[FRAME_MAX];
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
			if (len == 0 || len > (r->aead ? sealed_len(FRAME_MAX) : FRAME_MAX)) {
				fprintf(stderr, "tun_relay: bad frame length %zu\n", len);
				exit(1);
			}
			if (have - at < 4 + len)
				break;
			const uint8_t *frame = buf + at + 4;
			size_t plain = len;
			if (r->aead) {
				plain = open_frame(r, frame, len, opened);
				if (!plain) {
					fprintf(stderr, "tun_relay: a frame failed to open\n");
					exit(1);
				}
				frame = opened;
			}
			if (write(r->tun, frame, plain) < 0 && errno != EINVAL && errno != ENOBUFS)
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

	if (argc < 5 || argc > 6 || (strcmp(argv[2], "listen") && strcmp(argv[2], "connect")) ||
	    (argc == 6 && strcmp(argv[5], "aead"))) {
		fprintf(stderr, "usage: tun_relay IFNAME listen|connect ADDR PORT [aead]\n");
		return 2;
	}
	r.aead = NULL;
	if (argc == 6) {
		static const uint8_t key[16] = "tun_relay bench";
		memcpy(r.salt, "salt", 4);
		r.aead = aead_mb_new(AEAD_MB_AES_GCM, key, sizeof(key));
		if (!r.aead) {
			fprintf(stderr, "tun_relay: intel-ipsec-mb's AES-GCM is not usable here\n");
			return 1;
		}
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
