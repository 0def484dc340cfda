/*
 * The RFC 9329 transport over real sockets, in a private network namespace:
 * raw clients send good and hostile byte streams; two transports in one
 * process talk as originator and responder, plain and in TLS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <sys/param.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "iketcp/stats.h"
#include "tests/lib/fnv.h"
#include "tests/lib/transport_harness.h"
#include "transport/tls.h"
#include "transport/transport.h"
#include "tests/lib/fd_exhaust.h"

struct ctx {
	struct th t;
	int connected;
	int batch_ends;        /* rx_batch_end calls */
	int seq, ike_seq, esp_seq; /* arrival order of the last IKE and ESP frames */
	bool close_on_ike;     /* the IKE handler closes the connection it is called for */
	bool check_held;       /* ESP handed over stays as it was until the read's batch ends */
	struct { const uint8_t *p; size_t n; uint64_t sum; } held[16];
	unsigned n_held, held_checked;
	bool stop_on_closed;   /* the closed handler closes for good (no reconnect) */
};

static void on_ike(void *arg, struct tcp_conn *c, const uint8_t *m, size_t len)
{
	struct ctx *x = arg;
	x->t.ike++;
	x->ike_seq = ++x->seq;
	th_keep(&x->t, c, m, len);
	if (x->close_on_ike) {
		transport_conn_close(c);
		/* Closing is deferred, sending is refused, and closing twice is harmless. */
		assert_int_equal(transport_send(c, ENCAP_IKE, "x", 1), -ENOTCONN);
		transport_conn_close(c);
	}
}

static void on_esp(void *arg, struct tcp_conn *c, const uint8_t *p, size_t len)
{
	struct ctx *x = arg;
	x->t.esp++;
	x->esp_seq = ++x->seq;
	th_keep(&x->t, c, p, len);
	if (x->check_held && x->n_held < 16) {
		x->held[x->n_held].p = p;
		x->held[x->n_held].n = len;
		x->held[x->n_held].sum = fnv1a(FNV1A_INIT, p, len);
		x->n_held++;
	}
}

/* The dataplane opens a read's ESP only here, from where the transport handed it over. */
static void on_rx_batch_end(void *arg)
{
	struct ctx *x = arg;
	x->batch_ends++;
	for (unsigned i = 0; i < x->n_held; i++) /* under ASan a freed frame fails here */
		assert_true(fnv1a(FNV1A_INIT, x->held[i].p, x->held[i].n) == x->held[i].sum);
	x->held_checked += x->n_held;
	x->n_held = 0;
}

static void on_connected(void *arg, struct tcp_conn *c)
{
	struct ctx *x = arg;
	(void)c;
	x->connected++;
}

static void on_closed(void *arg, struct tcp_conn *c)
{
	struct ctx *x = arg;
	x->t.closed++;
	if (x->stop_on_closed && transport_conn_outbound(c))
		transport_conn_close(c);
}

static struct transport_config base_cfg(void)
{
	return (struct transport_config){
		.tcp = true,
		.ike_tcp_port = 443, .internal_port = 11443, .natt_port = 4500, .admin_sport = 8443,
		.max_conns = 100, .idle_timeout_s = 1, .prefix_timeout_ms = 300, .frame_timeout_ms = 400,
	};
}

static struct ctx *ctx_new(const struct transport_config *cfg)
{
	struct ctx *x = calloc(1, sizeof(*x));
	struct transport_handlers h = {
		.ike = on_ike, .esp = on_esp, .connected = on_connected, .closed = on_closed,
		.rx_batch_end = on_rx_batch_end, .arg = x,
	};

	th_open(&x->t, &h, cfg);
	return x;
}

static void ctx_free(struct ctx *x)
{
	th_close(&x->t);
	free(x);
}

static int client(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void send_all(int fd, const void *p, size_t len)
{
	assert_int_equal(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* True when the peer has closed: read returns 0 or an error without blocking. */
static bool closed_by_daemon(struct ctx *x, int fd)
{
	char b[256];
	for (int i = 0; i < 100; i++) {
		loop_once(x->t.loop, 10);
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
	}
	return false;
}

/* fd's prefix and one IKE frame: the daemon now holds the stream (x->t.last_conn). */
static void stream_up(struct ctx *x, int fd)
{
	send_all(fd, "IKETCP", 6);
	send_all(fd, "\x00\x22\x00\x00\x00\x00" "0123456789012345678901234567", 34);
	assert_true(th_run_until_int(&x->t, &x->t.ike, 1, 1000));
}

static size_t ike_frame(uint8_t *out, size_t msg_len)
{
	size_t n = encap_frame_header(out, ENCAP_IKE, msg_len);
	memset(out + n, 0x5a, msg_len);
	return n + msg_len;
}

static void test_frames_plain(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	uint8_t buf[512];
	size_t n = 6;
	int fd = client(4500);

	memcpy(buf, "IKETCP", 6);
	n += ike_frame(buf + n, 60);
	n += encap_frame_header(buf + n, ENCAP_ESP, 24);
	memset(buf + n, 0x77, 24);
	n += 24;
	memcpy(buf + n, "\x00\x03\xff", 3);
	n += 3;
	send_all(fd, buf, n);
	assert_true(th_run_until(&x->t, &stats.tcp.keepalives, 1, 1000));
	assert_int_equal(x->t.ike, 1);
	assert_int_equal(x->t.esp, 1);
	assert_int_equal(stats.tcp.frames_ike, 1);
	assert_int_equal(stats.tcp.frames_esp, 1);
	assert_int_equal(stats.tcp.accepted, 1);
	assert_int_equal(stats.tcp.active, 1);

	/* The responder answers on the same connection, without a prefix. */
	assert_int_equal(transport_send(x->t.last_conn, ENCAP_IKE, "\x01\x02\x03", 3), 0);
	uint8_t reply[16];
	th_run_for(&x->t, 20);
	assert_int_equal(recv(fd, reply, sizeof(reply), 0), 9);
	assert_memory_equal(reply, "\x00\x09\x00\x00\x00\x00\x01\x02\x03", 9);

	close(fd);
	assert_true(th_run_until(&x->t, &stats.tcp.closed_by_peer, 1, 1000));
	assert_int_equal(stats.tcp.active, 0);
	ctx_free(x);
}

/* One-byte writes, and many frames in one write. */
static void test_split_and_batched(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	static uint8_t buf[100 * 40];
	size_t n = 6;
	int fd = client(11443);

	memcpy(buf, "IKETCP", 6);
	n += ike_frame(buf + n, 30);
	for (size_t i = 0; i < n; i++) {
		send_all(fd, buf + i, 1);
		loop_once(x->t.loop, 1);
	}
	assert_true(th_run_until_int(&x->t, &x->t.ike, 1, 1000));
	n = 0;
	for (int i = 0; i < 100; i++)
		n += ike_frame(buf + n, 30);
	send_all(fd, buf, n);
	assert_true(th_run_until_int(&x->t, &x->t.ike, 101, 1000));
	close(fd);
	ctx_free(x);
}

struct bad_case {
	const char *name;
	const uint8_t *bytes;
	size_t len;
	size_t counter; /* offset into struct stats */
};

#define TCP_STAT(f) offsetof(struct stats, tcp.f)

static void test_bad_streams_close(void **state)
{
	(void)state;
	static const uint8_t http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00 };
	static const uint8_t len0[] = "IKETCP\x00\x00";
	static const uint8_t len1[] = "IKETCP\x00\x01";
	static const uint8_t junk[] = "\x00\x00\x00\x00\x00\x00\x00\x00";
	const struct bad_case cases[] = {
		{ "http request", http, sizeof(http) - 1, TCP_STAT(prefix_errors) },
		{ "TLS ClientHello, TLS off", hello, sizeof(hello), TCP_STAT(prefix_errors) },
		{ "length 0", len0, 8, TCP_STAT(bad_length) },
		{ "length 1", len1, 8, TCP_STAT(bad_length) },
		{ "binary junk", junk, 8, TCP_STAT(prefix_errors) },
	};
	struct transport_config cfg = base_cfg();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ctx *x = ctx_new(&cfg);
		int fd = client(4500);
		const uint64_t *ctr = (const uint64_t *)((const char *)&stats + cases[i].counter);
		send_all(fd, cases[i].bytes, cases[i].len);
		if (!th_run_until(&x->t, ctr, 1, 1000))
			fail_msg("%s: not counted", cases[i].name);
		assert_true(closed_by_daemon(x, fd));
		assert_int_equal(stats.tcp.active, 0);
		close(fd);
		ctx_free(x);
	}
}

/* Lengths 2 and 5 and short IKE messages are dropped, counted, and the stream goes on. */
static void test_dropped_frames_keep_stream(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	uint8_t buf[128];
	size_t n = 0;
	int fd = client(4500);

	static const uint8_t dropped[] = {
		'I', 'K', 'E', 'T', 'C', 'P',
		0x00, 0x02,                                           /* length 2: nothing in it */
		0x00, 0x05, 'x', 'y', 'z',                            /* length 5: too short for anything */
		0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 'a', 'b', 'c', 'd', /* marker + 4 bytes: not an IKE header */
	};
	memcpy(buf, dropped, sizeof(dropped));
	n = sizeof(dropped);
	n += ike_frame(buf + n, 28);
	send_all(fd, buf, n);
	assert_true(th_run_until_int(&x->t, &x->t.ike, 1, 1000));
	assert_int_equal(stats.tcp.frames_malformed, 2);
	assert_int_equal(stats.tcp.ike_too_short, 1);
	assert_int_equal(stats.tcp.active, 1);
	close(fd);
	ctx_free(x);
}

static void test_timeouts(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	int silent = client(4500), truncated = client(4500), slow = client(4500), idle = client(4500);

	send_all(truncated, "IKE", 3);
	send_all(slow, "IKETCP\xff\xff\x01\x02", 10);
	send_all(idle, "IKETCP", 6);
	assert_true(th_run_until(&x->t, &stats.tcp.prefix_timeouts, 2, 2000)); /* silent + truncated */
	assert_true(th_run_until(&x->t, &stats.tcp.timeouts, 2, 3000));        /* slow frame + idle */
	assert_true(closed_by_daemon(x, silent));
	assert_true(closed_by_daemon(x, slow));
	assert_int_equal(stats.tcp.active, 0);
	close(silent);
	close(truncated);
	close(slow);
	close(idle);
	ctx_free(x);
}

static void test_partial_at_close(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	uint8_t buf[200] = "IKETCP\xff\xff";
	int fd = client(4500);

	send_all(fd, buf, 150);
	th_run_for(&x->t, 50);
	close(fd);
	assert_true(th_run_until(&x->t, &stats.tcp.partial_at_close, 1, 1000));
	assert_int_equal(stats.tcp.closed_by_peer, 1);
	assert_int_equal(x->t.ike + x->t.esp, 0);
	ctx_free(x);
}

static void test_connection_limit(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	int fds[4];

	cfg.max_conns = 3;
	struct ctx *x = ctx_new(&cfg);
	for (int i = 0; i < 3; i++) {
		fds[i] = client(4500);
		send_all(fds[i], "IKETCP", 6);
	}
	assert_true(th_run_until(&x->t, &stats.tcp.accepted, 3, 1000));
	fds[3] = client(4500);
	assert_true(th_run_until(&x->t, &stats.tcp.refused_limit, 1, 1000));
	assert_true(closed_by_daemon(x, fds[3]));
	assert_int_equal(stats.tcp.active, 3);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	ctx_free(x);
}

/*
 * Out of descriptors, a connection waiting to be accepted does not make the loop spin (epoll reports it
 * again and again while accept4 says EMFILE); once there are descriptors again it is accepted.
 */
static void test_accept_out_of_fds(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	struct fd_exhaust ex;

	int fd = client(4500); /* queued on the listener */
	fd_exhaust_begin(&ex);
	int wakeups = loop_wakeups(x->t.loop, 300);
	fd_exhaust_end(&ex);
	assert_int_equal(stats.tcp.accepted, 0);
	assert_true(wakeups < 50); /* a spinning loop wakes up thousands of times */

	assert_true(th_run_until(&x->t, &stats.tcp.accepted, 1, 1000));
	send_all(fd, "IKETCP", 6);
	assert_int_equal(stats.tcp.active, 1);
	close(fd);
	ctx_free(x);
}

/* The transport as originator to its own listener on 4500: the outbound connection, not up yet. */
static struct tcp_conn *connect_self(struct ctx *x, bool tls)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(4500) };
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct tcp_conn *out = transport_connect(x->t.tp, (struct sockaddr *)&peer, sizeof(peer), tls);
	assert_non_null(out);
	return out;
}

/* Originator and responder are the same transport: it connects to its own listener. */
static void roundtrip(bool tls)
{
	struct transport_config cfg = base_cfg();
	cfg.tls = tls;
	struct ctx *x = ctx_new(&cfg);

	struct tcp_conn *out = connect_self(x, tls);
	assert_true(th_run_until_int(&x->t, &x->connected, 1, 2000));
	static uint8_t msg[60000];
	memset(msg, 0xc3, sizeof(msg));
	assert_int_equal(transport_send(out, ENCAP_IKE, msg, 100), 0);
	assert_true(th_run_until_int(&x->t, &x->t.ike, 1, 2000));
	assert_int_equal(x->t.last_len, 100);
	struct tcp_conn *in = x->t.last_conn;
	assert_true(in != out);
	assert_int_equal(transport_conn_is_tls(in), tls);
	/* A near-maximum frame each way. */
	assert_int_equal(transport_send(in, ENCAP_ESP, msg, sizeof(msg)), 0);
	assert_true(th_run_until_int(&x->t, &x->t.esp, 1, 2000));
	assert_int_equal(x->t.last_len, sizeof(msg));
	assert_true(x->t.last_conn == out);
	assert_int_equal(transport_send(out, ENCAP_IKE, msg, 65535), -EMSGSIZE);
	if (tls)
		assert_int_equal(stats.tcp.tls_handshakes, 1);

	/* The responder drops the connection: the originator reconnects, prefix and all. */
	transport_conn_close(in);
	assert_true(th_run_until_int(&x->t, &x->connected, 2, 3000));
	assert_int_equal(stats.tcp.reconnects, 1);
	assert_int_equal(transport_send(out, ENCAP_IKE, msg, 40), 0);
	assert_true(th_run_until_int(&x->t, &x->t.ike, 2, 2000));
	transport_conn_close(out);
	ctx_free(x);
}

static void test_roundtrip_plain(void **state)
{
	(void)state;
	roundtrip(false);
}

static void test_roundtrip_tls(void **state)
{
	(void)state;
	roundtrip(true);
}

/*
 * transport_queue: frames wait for transport_flush, leave in order with frames
 * sent meanwhile, and the receiving side dispatches them as one read batch.
 */
static void queue_flush(bool tls)
{
	struct transport_config cfg = base_cfg();
	cfg.tls = tls;
	struct ctx *x = ctx_new(&cfg);
	static uint8_t room[TRANSPORT_QUEUE_LEAD + 65535]; /* transport_queue writes an ESP frame's header before it */
	uint8_t *msg = room + TRANSPORT_QUEUE_LEAD;

	struct tcp_conn *out = connect_self(x, tls);
	assert_int_equal(transport_queue(out, ENCAP_ESP, msg, 100), -ENOTCONN); /* still connecting */
	assert_true(th_run_until_int(&x->t, &x->connected, 1, 2000));
	assert_int_equal(transport_send(out, ENCAP_IKE, "0123456789012345678901234567", 28), 0);
	assert_true(th_run_until_int(&x->t, &x->t.ike, 1, 2000));
	struct tcp_conn *in = x->t.last_conn;

	/* each unchanged until the flush: plain TCP holds them by reference */
	static uint8_t held[50][TRANSPORT_QUEUE_LEAD + 100];
	for (int i = 0; i < 50; i++) {
		memset(held[i], i + 1, sizeof(held[i]));
		assert_int_equal(transport_queue(in, ENCAP_ESP, held[i] + TRANSPORT_QUEUE_LEAD, 100), 0);
	}
	th_run_for(&x->t, 50);
	assert_int_equal(x->t.esp, 0); /* nothing leaves before the flush */
	/* A frame sent meanwhile queues behind them. */
	assert_int_equal(transport_send(in, ENCAP_IKE, "abcdefghijklmnopqrstuvwxyz01", 28), 0);
	x->batch_ends = 0;
	transport_flush(x->t.tp);
	transport_flush(x->t.tp); /* nothing left: a no-op */
	assert_true(th_run_until_int(&x->t, &x->t.ike, 2, 2000));
	assert_int_equal(x->t.esp, 50);
	assert_int_equal(x->t.last_len, 28);
	assert_true(x->esp_seq < x->ike_seq);
	assert_true(x->batch_ends >= 1 && x->batch_ends < 50);
	assert_int_equal(transport_queue(in, ENCAP_IKE, msg, 65535), -EMSGSIZE);
	assert_int_equal(transport_queue(in, ENCAP_IKE + 10, msg, 10), -EINVAL);

	/* Closed with frames queued: off the flush list, so a later flush does not touch it. */
	assert_int_equal(transport_queue(in, ENCAP_ESP, msg, 100), 0);
	transport_conn_close(in);
	transport_flush(x->t.tp);
	transport_conn_close(out);
	ctx_free(x);
}

static void test_queue_flush_plain(void **state)
{
	(void)state;
	queue_flush(false);
}

static void test_queue_flush_tls(void **state)
{
	(void)state;
	queue_flush(true);
}

/*
 * A peer that never reads, behind a small receive buffer: frames of 60000 bytes go to it (queued and
 * flushed, or sent) until one is refused with -ENOBUFS, well before 16 MiB. Its socket, to close.
 */
static int fill_stuck_peer(struct ctx *x, bool queue)
{
	static uint8_t room[TRANSPORT_QUEUE_LEAD + 60000];
	uint8_t *msg = room + TRANSPORT_QUEUE_LEAD;
	int fd = client(4500), rcv = 4096;
	size_t sent = 0;
	int err = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	stream_up(x, fd);
	while (sent < (64u << 20)) {
		if (queue)
			err = transport_queue(x->t.last_conn, ENCAP_ESP, msg, 60000);
		else
			err = transport_send(x->t.last_conn, ENCAP_ESP, msg, 60000);
		if (err)
			break;
		sent += 60000;
		if (queue)
			transport_flush(x->t.tp);
		loop_once(x->t.loop, 0);
	}
	assert_int_equal(err, -ENOBUFS);
	assert_true(sent < (16u << 20));
	assert_true(stats.tcp.write_overflow >= 1);
	return fd;
}

/* transport_queue refuses whole frames at the bound and the stream stays up. */
static void test_queue_bounded(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	int fd = fill_stuck_peer(x, true);

	assert_int_equal(x->t.closed, 0); /* a refused frame left nothing half-written */
	assert_int_equal(transport_send(x->t.last_conn, ENCAP_KEEPALIVE, "\xff", 1), 0);
	close(fd);
	ctx_free(x);
}

/*
 * Frames held by reference reach a slow reader whole and in order, however the
 * socket cuts the writes: what it refuses is copied behind what waits, so the
 * caller may reuse its buffers after each flush. Frames refused at the bound
 * are left out whole.
 */
static void test_queue_partial_writes(void **state)
{
	(void)state;
	enum { FRAMES = 6000, BATCH = 64, LEN = 1400 };
	struct transport_config cfg = base_cfg();
	cfg.idle_timeout_s = 60; /* the client sends nothing after its first frame */
	struct ctx *x = ctx_new(&cfg);
	/* Rows back to back: runs of 8 frames go out as one piece, a spare row between runs. */
	static uint8_t bufs[BATCH + BATCH / 8][TRANSPORT_QUEUE_LEAD + LEN], rx[1 << 16];
	static uint32_t accepted[FRAMES];
	unsigned n_acc = 0, next = 0, got = 0;
	size_t rx_len = 0;
	int fd = client(4500), rcv = 65536; /* and no autotuning: the stream fills up well before 8 MB */

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	stream_up(x, fd);
	struct tcp_conn *c = x->t.last_conn;

	/* The writer queues 64 frames every fourth turn. The reader starts once a frame was refused (the
	 * socket full, writes cut short, the queue at its bound), then takes at most 8 KiB a turn. */
	for (int iter = 0; iter < 20000 && (next < FRAMES || got < n_acc); iter++) {
		if (next < FRAMES && iter % 4 == 0) {
			for (unsigned k = 0; k < BATCH && next < FRAMES; k++, next++) {
				uint8_t *frame = bufs[k + k / 8] + TRANSPORT_QUEUE_LEAD;
				memset(frame, (uint8_t)next, LEN);
				memcpy(frame, &next, sizeof(next));
				if (transport_queue(c, ENCAP_ESP, frame, LEN) == 0)
					accepted[n_acc++] = next;
			}
			transport_flush(x->t.tp);
		}
		loop_once(x->t.loop, 1);
		if (n_acc == next)
			continue;
		ssize_t n = recv(fd, rx + rx_len, MIN(sizeof(rx) - rx_len, (size_t)8192), MSG_DONTWAIT);
		if (n > 0)
			rx_len += (size_t)n;
		size_t off = 0;
		while (rx_len - off >= 2 + LEN) {
			uint32_t idx;
			assert_int_equal((rx[off] << 8) | rx[off + 1], 2 + LEN);
			memcpy(&idx, rx + off + 2, sizeof(idx));
			assert_true(got < n_acc);
			assert_int_equal(idx, accepted[got]);
			for (size_t i = sizeof(idx); i < LEN; i++)
				assert_int_equal(rx[off + 2 + i], (uint8_t)idx);
			got++;
			off += 2 + LEN;
		}
		memmove(rx, rx + off, rx_len - off);
		rx_len -= off;
	}
	assert_int_equal(next, FRAMES);
	assert_int_equal(got, n_acc);
	assert_true(n_acc >= FRAMES / 10);
	assert_true(n_acc < FRAMES); /* the bound was reached: refused frames were left out whole */
	assert_int_equal(x->t.closed, 0);
	close(fd);
	ctx_free(x);
}

/*
 * ESP frames stay where they were handed over until the read's batch ends,
 * including one that straddled two reads (held in its own buffer) and the
 * frames of a read that ends in a bad length, which closes the stream.
 */
static void test_frames_live_until_batch_end(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	uint8_t a[100], b[300], c[120];
	int fd = client(4500);

	stream_up(x, fd);
	x->check_held = true;
	/* Frames: 2-byte length, then an SPI (non-zero) and a pattern. */
	uint8_t *frames[] = { a, b, c };
	size_t sizes[] = { sizeof(a), sizeof(b), sizeof(c) };
	for (int k = 0; k < 3; k++) {
		frames[k][0] = (uint8_t)(sizes[k] >> 8), frames[k][1] = (uint8_t)sizes[k];
		for (size_t i = 2; i < sizes[k]; i++)
			frames[k][i] = (uint8_t)(k * 50 + i);
	}
	/* Read one: a, and the first half of b. */
	uint8_t one[sizeof(a) + 150];
	memcpy(one, a, sizeof(a));
	memcpy(one + sizeof(a), b, 150);
	send_all(fd, one, sizeof(one));
	assert_true(th_run_until_int(&x->t, &x->t.esp, 1, 1000));
	/* Read two: the rest of b (delivered from its own buffer), c, then a length of 1: the stream closes. */
	uint8_t two[sizeof(b) - 150 + sizeof(c) + 2];
	memcpy(two, b + 150, sizeof(b) - 150);
	memcpy(two + sizeof(b) - 150, c, sizeof(c));
	two[sizeof(two) - 2] = 0, two[sizeof(two) - 1] = 1;
	send_all(fd, two, sizeof(two));
	assert_true(th_run_until(&x->t, &stats.tcp.bad_length, 1, 1000));
	assert_int_equal(x->t.esp, 3);
	assert_int_equal(x->held_checked, 3);
	assert_true(closed_by_daemon(x, fd));
	close(fd);
	ctx_free(x);
}

/* The send queue stops growing at its bound. */
static void test_send_queue_bounded(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);

	close(fill_stuck_peer(x, false));
	ctx_free(x);
}

/* The HTTPS admin service's stand-in: a listener on loopback port 443. */
static int admin_service(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(443) };
	int one = 1, admin = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(admin >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(admin, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(admin, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(admin, 4), 0);
	return admin;
}

/* Admin coexistence: HTTP arriving on the internal port reaches the admin service. */
static void test_admin_passthrough(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	cfg.admin_sport = 443; /* == ike_tcp_port: pass-through on 11443 */
	struct ctx *x = ctx_new(&cfg);
	int admin = admin_service();

	int fd = client(11443);
	send_all(fd, "GET / HTTP/1.1\r\nHost: gw\r\n\r\n", 28);
	assert_true(th_run_until(&x->t, &stats.tcp.admin_passthrough, 1, 1000));
	int srv = accept(admin, NULL, NULL);
	assert_true(srv >= 0);
	char req[64] = { 0 };
	th_run_for(&x->t, 30);
	assert_int_equal(recv(srv, req, sizeof(req), 0), 28);
	assert_memory_equal(req, "GET / HTTP/1.1\r\n", 16);
	send_all(srv, "HTTP/1.1 200 OK\r\n\r\nadmin", 24);
	close(srv);
	char resp[64] = { 0 };
	size_t got = 0;
	for (int i = 0; i < 100 && got < 24; i++) {
		loop_once(x->t.loop, 10);
		ssize_t n = recv(fd, resp + got, sizeof(resp) - got, MSG_DONTWAIT);
		if (n > 0)
			got += (size_t)n;
	}
	assert_int_equal(got, 24);
	assert_memory_equal(resp + 19, "admin", 5);
	assert_true(closed_by_daemon(x, fd));
	/* The same bytes on 4500 are not passed through: a prefix error. */
	int fd2 = client(4500);
	send_all(fd2, "GET / HTTP/1.1\r\n\r\n", 18);
	assert_true(th_run_until(&x->t, &stats.tcp.prefix_errors, 1, 1000));
	close(fd);
	close(fd2);
	close(admin);
	ctx_free(x);
}

/*
 * A pass-through client half-closes, then resets, while the admin service stays open and silent: its
 * socket, hung up, must not keep waking the loop (each wakeup counted as activity): the connection
 * goes at the idle timeout.
 */
static void test_admin_passthrough_client_reset(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	cfg.admin_sport = 443; /* == ike_tcp_port: pass-through on 11443 */
	struct ctx *x = ctx_new(&cfg);
	int admin = admin_service();

	int fd = client(11443);
	send_all(fd, "GET / HTTP/1.1\r\n", 16);
	assert_true(th_run_until(&x->t, &stats.tcp.admin_passthrough, 1, 1000));
	int srv = accept(admin, NULL, NULL);
	assert_true(srv >= 0);
	shutdown(fd, SHUT_WR);
	th_run_for(&x->t, 50); /* the FIN is passed on */
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	close(fd);
	int wakeups = 0;
	for (uint64_t start = mono_ms(); !stats.tcp.timeouts && mono_ms() - start < 3000; wakeups++)
		loop_once(x->t.loop, 100);
	assert_int_equal(stats.tcp.timeouts, 1); /* idle_timeout_s is 1 */
	assert_true(wakeups < 100);               /* a spinning loop wakes up thousands of times */
	assert_int_equal(stats.tcp.active, 0);
	close(srv);
	close(admin);
	ctx_free(x);
}

/* A handler closes its own connection in the middle of a batch of frames. */
static void test_close_from_handler(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	uint8_t buf[512];
	size_t n = 6;
	int fd = client(4500);

	x->close_on_ike = true;
	memcpy(buf, "IKETCP", 6);
	for (int i = 0; i < 5; i++)
		n += ike_frame(buf + n, 40);
	send_all(fd, buf, n);
	assert_true(closed_by_daemon(x, fd));
	assert_int_equal(x->t.ike, 1); /* the frames after the close were not delivered */
	assert_int_equal(stats.tcp.closed_local, 1);
	assert_int_equal(stats.tcp.active, 0);
	close(fd);
	ctx_free(x);
}

/* The closed handler of an outbound connection says "for good": no reconnect. */
static void test_stop_reconnect_from_closed(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);

	x->stop_on_closed = true;
	struct tcp_conn *out = connect_self(x, false);
	assert_true(th_run_until_int(&x->t, &x->connected, 1, 2000));
	assert_int_equal(transport_send(out, ENCAP_IKE, "0123456789012345678901234567", 28), 0);
	assert_true(th_run_until_int(&x->t, &x->t.ike, 1, 2000));
	transport_conn_close(x->t.last_conn); /* the responder side */
	th_run_for(&x->t, 1500);
	assert_int_equal(x->connected, 1);
	assert_int_equal(stats.tcp.reconnects, 0);
	assert_int_equal(transport_conn_count(x->t.tp), 0);
	ctx_free(x);
}

/*
 * Two threads (transport_defer_frees): a connection that goes is buried, stamped with the event count,
 * and only freed once IKE has handled that many events. Meanwhile its pointer stays usable: sends are
 * refused, close and hold do nothing. (ASan checks the memory: a premature free or a leak fails.)
 */
static void test_deferred_free(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	uint64_t seq = 7;

	transport_defer_frees(x->t.tp, &seq);
	struct tcp_conn *out = connect_self(x, false);
	assert_true(th_run_until_int(&x->t, &x->connected, 1, 2000));
	assert_int_equal(transport_send(out, ENCAP_IKE, "0123456789012345678901234567", 28), 0);
	assert_true(th_run_until_int(&x->t, &x->t.ike, 1, 2000));
	struct tcp_conn *in = x->t.last_conn;

	seq = 9; /* two events queued since */
	transport_conn_close(in);  /* the inbound side: gone for good, buried at 9 */
	transport_conn_close(out); /* ours, for good: buried at 9 too */
	assert_int_equal(x->t.closed, 2);
	assert_true(transport_has_buried(x->t.tp));
	assert_int_equal(transport_conn_count(x->t.tp), 0);
	assert_false(transport_conn_up(in));
	assert_int_equal(transport_send(in, ENCAP_IKE, "0123456789012345678901234567", 28), -ENOTCONN);
	uint8_t frame[TRANSPORT_QUEUE_LEAD + 8] = { 0 };
	assert_int_equal(transport_queue(out, ENCAP_ESP, frame + TRANSPORT_QUEUE_LEAD, 8), -ENOTCONN);
	transport_conn_hold(in, true);
	transport_conn_close(in);
	assert_true(transport_conn_peer(in)->ss_family == AF_INET); /* still readable */

	transport_reap(x->t.tp, 8); /* IKE has not seen the close yet */
	assert_true(transport_has_buried(x->t.tp));
	transport_reap(x->t.tp, 9);
	assert_false(transport_has_buried(x->t.tp));

	/* transport_free frees what is still buried. */
	struct tcp_conn *again = connect_self(x, false);
	assert_true(th_run_until_int(&x->t, &x->connected, 2, 2000));
	transport_conn_close(again);
	assert_true(transport_has_buried(x->t.tp));
	ctx_free(x);
}

/* ESP on a connection tells IKE at most once a second. */
static void test_alive_due(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	struct ctx *x = ctx_new(&cfg);
	struct tcp_conn *out = connect_self(x, false);

	assert_true(transport_conn_alive_due(out, 5000));
	assert_false(transport_conn_alive_due(out, 5000));
	assert_false(transport_conn_alive_due(out, 5999));
	assert_true(transport_conn_alive_due(out, 6000));
	transport_conn_close(out);
	ctx_free(x);
}

/* Thousands of idle connections are held (bounded: no buffer until bytes arrive), then all released. */
static void test_thousands_idle(void **state)
{
	(void)state;
	enum { N = 3000 };
	struct transport_config cfg = base_cfg();
	cfg.max_conns = N;
	cfg.idle_timeout_s = 60;
	struct ctx *x = ctx_new(&cfg);
	static int fds[N];

	for (int i = 0; i < N; i++) {
		fds[i] = client(4500);
		send_all(fds[i], "IKETCP", 6);
		if (i % 100 == 0)
			loop_once(x->t.loop, 0);
	}
	assert_true(th_run_until(&x->t, &stats.tcp.accepted, N, 5000));
	th_run_for(&x->t, 100);
	assert_int_equal(stats.tcp.active, N);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	assert_true(th_run_until(&x->t, &stats.tcp.closed_by_peer, N, 5000));
	assert_int_equal(stats.tcp.active, 0);
	assert_int_equal(transport_conn_count(x->t.tp), 0);
	ctx_free(x);
}

/*
 * A reconfiguration refused for a busy port keeps the TLS identity too: the new certificate is used
 * only once the listeners are had.
 */
static void test_refused_reconfigure_keeps_tls(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	char fp[TLS_FINGERPRINT_LEN], dir[] = "/tmp/iketcp-test-tls-XXXXXX", cert[64], key[64], cmd[256];

	cfg.tls = true; /* a self-signed certificate */
	struct ctx *x = ctx_new(&cfg);
	snprintf(fp, sizeof(fp), "%s", transport_tls_fingerprint(x->t.tp));
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-subj /CN=t -days 1 -keyout %s -out %s 2>/dev/null", key, cert);
	assert_int_equal(system(cmd), 0);

	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(11444) };
	int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(busy, (struct sockaddr *)&any, sizeof(any)), 0);
	assert_int_equal(listen(busy, 1), 0);
	cfg.tls_cert = cert;
	cfg.tls_key = key;
	cfg.internal_port = 11444;
	assert_int_equal(transport_configure(x->t.tp, &cfg), -EADDRINUSE);
	assert_string_equal(transport_tls_fingerprint(x->t.tp), fp);

	close(busy);
	assert_int_equal(transport_configure(x->t.tp, &cfg), 0);
	assert_string_not_equal(transport_tls_fingerprint(x->t.tp), fp);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	ctx_free(x);
}

/* Only 4500 when ike-tcp-port is 4500. */
static void test_listener_rule(void **state)
{
	(void)state;
	struct transport_config cfg = base_cfg();
	cfg.ike_tcp_port = 4500;
	struct ctx *x = ctx_new(&cfg);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(11443) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, ECONNREFUSED);
	close(fd);
	/* Reconfigure to 443: 11443 opens, 4500 stays. */
	cfg.ike_tcp_port = 443;
	assert_int_equal(transport_configure(x->t.tp, &cfg), 0);
	close(client(11443));
	close(client(4500));
	ctx_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_frames_plain, th_setup),
		cmocka_unit_test_setup(test_split_and_batched, th_setup),
		cmocka_unit_test_setup(test_bad_streams_close, th_setup),
		cmocka_unit_test_setup(test_dropped_frames_keep_stream, th_setup),
		cmocka_unit_test_setup(test_timeouts, th_setup),
		cmocka_unit_test_setup(test_partial_at_close, th_setup),
		cmocka_unit_test_setup(test_connection_limit, th_setup),
		cmocka_unit_test_setup(test_accept_out_of_fds, th_setup),
		cmocka_unit_test_setup(test_roundtrip_plain, th_setup),
		cmocka_unit_test_setup(test_roundtrip_tls, th_setup),
		cmocka_unit_test_setup(test_send_queue_bounded, th_setup),
		cmocka_unit_test_setup(test_queue_flush_plain, th_setup),
		cmocka_unit_test_setup(test_queue_flush_tls, th_setup),
		cmocka_unit_test_setup(test_queue_bounded, th_setup),
		cmocka_unit_test_setup(test_queue_partial_writes, th_setup),
		cmocka_unit_test_setup(test_frames_live_until_batch_end, th_setup),
		cmocka_unit_test_setup(test_admin_passthrough, th_setup),
		cmocka_unit_test_setup(test_admin_passthrough_client_reset, th_setup),
		cmocka_unit_test_setup(test_listener_rule, th_setup),
		cmocka_unit_test_setup(test_refused_reconfigure_keeps_tls, th_setup),
		cmocka_unit_test_setup(test_close_from_handler, th_setup),
		cmocka_unit_test_setup(test_thousands_idle, th_setup),
		cmocka_unit_test_setup(test_stop_reconnect_from_closed, th_setup),
		cmocka_unit_test_setup(test_deferred_free, th_setup),
		cmocka_unit_test_setup(test_alive_due, th_setup),
	};
	/* Our own network namespace: ports 443, 4500, 11443 on a loopback nobody else uses. */
	struct rlimit rl = { 8192, 8192 }; /* 3,000 connections, both ends in this process */
	setrlimit(RLIMIT_NOFILE, &rl);
	th_netns("test_transport");
	return cmocka_run_group_tests_name("transport", tests, NULL, NULL);
}
