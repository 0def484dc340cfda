/*
 * The TUN dataplane's packet paths on hostile bytes, with a device-less
 * dataplane (opened packets go to a pipe) and one CHILD SA
 * 10.1.0.0/24 <-> 10.2.0.0/24, fd01::/64 <-> fd02::/64. Input: mode | bytes.
 *   mode 0: the bytes are an ESP frame from a stream (mostly unknown SPI or ICV failure).
 *   mode 1: the bytes are a plaintext with its own trailer, sealed by the peer:
 *           authenticated junk reaches the inner-header parse and the policy check.
 *           Oracle: whatever reaches the TUN is from the remote selector to the local one.
 *   mode 2: the bytes are a packet read from the TUN: selector lookup and seal.
 *           Oracle: a sent frame opens to the packet, which matched the selectors.
 *   mode 0x10: the bytes are a read from a TUN with virtio-net headers (vnet header, then
 *           maybe a TCP superpacket): split, sealed. Oracle: every sent frame opens to a
 *           packet from our selector to theirs.
 *   mode 0x11: the bytes are [length (2) | plaintext with its trailer]..., each sealed by the
 *           peer and opened with offloads on, joined until the batch ends. Oracle: every
 *           write to the TUN is from their selector to ours, and a superpacket's checksum,
 *           completed as the kernel will, is right.
 * Other modes: mode 0 with the SA's SPI written over the first 4 bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dataplane/dataplane.h"
#include "dataplane/gso.h"
#include "esp/esp.h"
#include "workers.h"
#include "tests/lib/inet_csum.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define SPI_IN 0xa0000001u
#define SPI_OUT 0xb0000001u

static char stream;
static uint8_t key_out[20], key_in[20];
static uint8_t wire[ESP_MAX_INNER + ESP_MAX_OVERHEAD], opened[ESP_MAX_INNER + ESP_MAX_OVERHEAD];
static struct esp_sa peer_in;
static const uint8_t *cur;
static size_t cur_len;
static bool vnet;

static struct esp_sa_params gcm(uint32_t spi, bool outbound, const uint8_t *key)
{
	return (struct esp_sa_params){ .spi = spi, .outbound = outbound, .cipher = ESP_AES_GCM_16,
				       .enc_key_bits = 128, .keymat = key, .keymat_len = 20, .replay = true };
}

/* addr inside side x's selector (1 local, 2 remote): 10.x.0.0/24 or fd0x::/64. */
static bool in_side(bool v6, const uint8_t *addr, uint8_t x)
{
	if (!v6)
		return addr[0] == 10 && addr[1] == x && addr[2] == 0;
	static const uint8_t zero[6];
	return addr[0] == 0xfd && addr[1] == x && memcmp(addr + 2, zero, 6) == 0;
}

/* The packet goes from side `from` to side `to`. */
static bool flows(const uint8_t *p, size_t len, uint8_t from, uint8_t to)
{
	if (len >= 20 && p[0] >> 4 == 4)
		return in_side(false, p + 12, from) && in_side(false, p + 16, to);
	if (len >= 40 && p[0] >> 4 == 6)
		return in_side(true, p + 8, from) && in_side(true, p + 24, to);
	return false;
}

static int on_send(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	uint8_t nh;

	(void)arg;
	CHECK(c == (struct tcp_conn *)&stream);
	if (vnet) { /* a segment of what was read (the peer may refuse one whose header lies about its length) */
		ssize_t n = esp_decap(&peer_in, esp, len, opened, sizeof(opened), &nh);
		if (n > 0)
			CHECK(flows(opened, (size_t)n, 1, 2));
		return 0;
	}
	/* Only a packet from our selector to theirs is sealed. */
	CHECK(flows(cur, cur_len, 1, 2));
	ssize_t n = esp_decap(&peer_in, esp, len, opened, sizeof(opened), &nh);
	/* The inner header may disagree with the length read; the peer may trim or refuse it. */
	if (n > 0)
		CHECK((size_t)n <= cur_len && memcmp(opened, cur, (size_t)n) == 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct esp_sa peer_out;
	int pipefd[2];

	if (size < 1 || size > ESP_MAX_INNER)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	for (size_t i = 0; i < sizeof(key_out); i++) {
		key_out[i] = (uint8_t)(0x10 + i);
		key_in[i] = (uint8_t)(0x80 + 3 * i);
	}
	vnet = mode == 0x10 || mode == 0x11;
	if (vnet) { /* one datagram a write, as a TUN reads out */
		CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pipefd) == 0);
		int big = 4 << 20;
		setsockopt(pipefd[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	} else {
		CHECK(pipe2(pipefd, O_NONBLOCK | O_CLOEXEC) == 0);
		fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
	}
	struct dataplane *dp = dataplane_fd_new_for_test(pipefd[1], on_send, NULL);
	CHECK(dp);
	/* Two threads share each batch's crypto, as on a 2-core gateway; kept across inputs. */
	static struct workers *workers;
	if (!workers)
		CHECK((workers = workers_new(2)));
	dataplane_set_workers(dp, workers);
	struct child_sa sa = {
		.spi_in = SPI_IN, .spi_out = SPI_OUT, .in = gcm(SPI_IN, false, key_in),
		.out = gcm(SPI_OUT, true, key_out), .n_ts = 2, .conn = (struct tcp_conn *)&stream,
	};
	sa.local_ts[0] = (struct child_ts){ .family = AF_INET, .prefix_len = 24 };
	sa.remote_ts[0] = sa.local_ts[0];
	inet_pton(AF_INET, "10.1.0.0", &sa.local_ts[0].addr.v4);
	inet_pton(AF_INET, "10.2.0.0", &sa.remote_ts[0].addr.v4);
	sa.local_ts[1] = (struct child_ts){ .family = AF_INET6, .prefix_len = 64 };
	sa.remote_ts[1] = sa.local_ts[1];
	inet_pton(AF_INET6, "fd01::", &sa.local_ts[1].addr.v6);
	inet_pton(AF_INET6, "fd02::", &sa.remote_ts[1].addr.v6);
	CHECK(dataplane_child_ops.install(dp, &sa) == 0);
	struct esp_sa_params pin = gcm(SPI_OUT, false, key_out), pout = gcm(SPI_IN, true, key_in);
	CHECK(esp_sa_init(&peer_in, &pin) == 0);
	CHECK(esp_sa_init(&peer_out, &pout) == 0);

	if (mode == 1) {
		static const uint8_t iv[8];
		ssize_t n = esp_seal_raw_for_test(&peer_out, 1, iv, data, size, wire, sizeof(wire));
		if (n > 0)
			dataplane_esp_input(dp, (struct tcp_conn *)&stream, wire, (size_t)n);
	} else if (mode == 0x10) {
		dataplane_vnet_for_test(dp, true);
		dataplane_tun_input_for_test(dp, data, size);
	} else if (mode == 0x11) {
		static const uint8_t iv[8];
		dataplane_vnet_for_test(dp, true);
		for (uint64_t seq = 1; size >= 2; seq++) {
			size_t n = (size_t)(data[0] << 8 | data[1]);
			data += 2, size -= 2;
			n = n < size ? n : size;
			ssize_t e = esp_seal_raw_for_test(&peer_out, seq, iv, data, n, wire, sizeof(wire));
			if (e > 0) /* one stream read: opened together at dataplane_tx_flush */
				dataplane_esp_queue(dp, (struct tcp_conn *)&stream, wire, (size_t)e);
			data += n, size -= n;
		}
		dataplane_tx_flush(dp);
		for (ssize_t got; (got = recv(pipefd[0], opened, sizeof(opened), 0)) > 0;) {
			struct gso_hdr h;
			CHECK(gso_hdr_parse(opened, (size_t)got, &h) == 0);
			uint8_t *p = opened + GSO_VNET_HDR_LEN;
			size_t len = (size_t)got - GSO_VNET_HDR_LEN;
			CHECK(flows(p, len, 2, 1));
			if (h.gso_type != GSO_TYPE_NONE) {
				CHECK(h.gso_type == (p[0] >> 4 == 4 ? GSO_TYPE_TCPV4 : GSO_TYPE_TCPV6));
				CHECK(h.hdr_len < len && h.gso_size && len - h.hdr_len > h.gso_size);
				CHECK(gso_csum_complete(p, len, h.csum_start, h.csum_offset) == 0);
				CHECK(l4_sum_ok(p, len, IPPROTO_TCP));
			}
		}
	} else if (mode == 2) {
		cur = data;
		cur_len = size;
		dataplane_tun_input_for_test(dp, data, size);
	} else {
		memcpy(wire, data, size);
		if (mode != 0 && size >= 4) {
			wire[0] = SPI_IN >> 24;
			wire[1] = (SPI_IN >> 16) & 0xff;
			wire[2] = (SPI_IN >> 8) & 0xff;
			wire[3] = SPI_IN & 0xff;
		}
		dataplane_esp_input(dp, (struct tcp_conn *)&stream, wire, size);
	}

	/* Whatever reached the TUN came from their selector to ours. */
	ssize_t got = read(pipefd[0], opened, sizeof(opened));
	if (got > 0)
		CHECK(mode == 1 && flows(opened, (size_t)got, 2, 1));
	vnet = false;
	close(pipefd[0]);
	dataplane_free(dp); /* closes pipefd[1] */
	esp_sa_destroy(&peer_in);
	esp_sa_destroy(&peer_out);
	return 0;
}
