/*
 * IKE SAs established per second by the engine itself: an initiator with N static tunnels and a
 * dynamic responder, two ike engines in this one process on one core, joined by an in-memory queue
 * instead of TCP. Each SA is a full IKE_SA_INIT + IKE_AUTH with PSK, Curve25519 and AES-GCM, and its
 * first CHILD SA (handed to a recording dataplane that keeps nothing). What this measures is the
 * engine and its crypto, both halves on the same core; the responder's share is timed separately
 * (the CPU spent in its ike_input), which is the rate one responder core could sustain. Beyond its
 * half-open threshold the responder answers with a COOKIE and closes the stream (RFC 9329 6.3): the
 * harness reconnects it, as the transport does, and the SA is counted once it comes up.
 * Over real TCP, with the daemon's transport and dataplane: scripts/bench_ike.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "conf/conf.h"
#include "ike/ike.h"
#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "loop.h"

#define MAX_TUNNELS 1500 /* the configuration text stays under its 1 MB limit */
#define SECONDS 2.0      /* rounds until this much time went into establishing */
#define QMAX (4 * MAX_TUNNELS)

/* Per round: tunnels of the initiator, SAs at the responder (argument 1, default 100). */
static unsigned TUNNELS = 100;

enum { INI, RSP };

struct qmsg {
	int to;          /* INI or RSP */
	unsigned conn;   /* tunnel index: both ends of stream i */
	size_t len;
	uint8_t *buf;
};

static struct {
	struct ike *ike[2];
	char conn[2][MAX_TUNNELS]; /* the streams' handles: only their addresses matter */
	unsigned nconn;
	unsigned pending_up;   /* initiator streams connected but not yet reported up */
	unsigned reopen[MAX_TUNNELS], nreopen; /* streams the responder closed (behind a COOKIE), to reconnect */
	struct qmsg q[QMAX];
	unsigned qhead, qn;
	unsigned children;
	double rsp_cpu;        /* thread CPU seconds inside the responder's ike_input */
} g;

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct tcp_conn *conn_of(int side, unsigned i)
{
	return (struct tcp_conn *)&g.conn[side][i];
}

static unsigned index_of(int side, const struct tcp_conn *c)
{
	return (unsigned)((const char *)c - g.conn[side]);
}

static struct tcp_conn *io_connect(void *arg, const struct sockaddr *peer, socklen_t len, bool tls)
{
	(void)arg, (void)peer, (void)len, (void)tls;
	if (g.nconn >= TUNNELS)
		return NULL;
	g.pending_up++;
	return conn_of(INI, g.nconn++);
}

static int io_send(void *arg, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	int from = (int)(intptr_t)arg;
	if (g.qn >= QMAX)
		return -1;
	struct qmsg *m = &g.q[(g.qhead + g.qn++) % QMAX];
	m->to = !from;
	m->conn = index_of(from, c);
	m->len = len;
	m->buf = malloc(len);
	if (!m->buf)
		abort();
	memcpy(m->buf, msg, len);
	return 0;
}

/* The responder closes a stream after a COOKIE (RFC 9329 6.3): the initiator's transport reconnects it. */
static void io_close(void *arg, struct tcp_conn *c)
{
	if ((int)(intptr_t)arg == RSP && g.nreopen < MAX_TUNNELS)
		g.reopen[g.nreopen++] = index_of(RSP, c);
}

static void io_hold(void *arg, struct tcp_conn *c, bool carries)
{
	(void)arg, (void)c, (void)carries;
}

static void set4(struct sockaddr_storage *ss, const char *a, uint16_t port)
{
	struct sockaddr_in *s4 = (void *)ss;
	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	inet_pton(AF_INET, a, &s4->sin_addr);
}

/* Stream i: 198.51.100.1:(40000 + i) to 203.0.113.2:443. */
static void io_addrs(void *arg, struct tcp_conn *c, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
	int side = (int)(intptr_t)arg;
	uint16_t port = (uint16_t)(40000 + index_of(side, c));
	set4(side == INI ? local : peer, "198.51.100.1", port);
	set4(side == INI ? peer : local, "203.0.113.2", 443);
}

static int dp_install(void *arg, const struct child_sa *sa)
{
	(void)arg, (void)sa;
	g.children++;
	return 0;
}

static void dp_update(void *arg, uint32_t spi_in, struct tcp_conn *c)
{
	(void)arg, (void)spi_in, (void)c;
}

static void dp_remove(void *arg, uint32_t spi_in)
{
	(void)arg, (void)spi_in;
}

static int dp_counters(void *arg, uint32_t spi_in, struct child_sa_counters *out)
{
	(void)arg, (void)spi_in;
	memset(out, 0, sizeof(*out));
	return 0;
}

static const struct child_sa_ops dp_ops = { dp_install, dp_update, dp_remove, dp_counters };

static struct config *load(const char *text)
{
	struct config *c = NULL;
	struct conf_diag d;
	int err = conf_load_string("bench.conf", text, strlen(text), &c, &d);
	for (size_t i = 0; i < d.n; i++)
		fprintf(stderr, "%s\n", d.lines[i]);
	conf_diag_free(&d);
	if (err) {
		fprintf(stderr, "bench_ike_sa: configuration refused\n");
		exit(1);
	}
	return c;
}

#define SETTINGS                                                                                   \
	"config system settings\n    set ike-tcp-service enable\n    set ike-tcp-port 443\n"            \
	"    set inner-interface \"lan0\"\nend\n"
#define P1_COMMON                                                                                  \
	"        set interface \"wan0\"\n        set ike-version 2\n        set authmethod psk\n"      \
	"        set psksecret \"correct horse battery staple\"\n"                                     \
	"        set proposal aes128gcm-prfsha256\n        set dhgrp 31\n"

/* N static tunnels, each with its own pair of host selectors so that the CHILD SAs' selectors never collide. */
static struct config *initiator_conf(void)
{
	size_t cap = 2048 + (size_t)TUNNELS * 640, n = 0;
	char *t = malloc(cap);
	if (!t)
		abort();
	n += (size_t)snprintf(t + n, cap - n, SETTINGS "config vpn ipsec phase1-interface\n");
	for (unsigned i = 0; i < TUNNELS; i++)
		n += (size_t)snprintf(t + n, cap - n,
				      "    edit \"t%u\"\n        set remote-gw 203.0.113.2\n        set transport tcp\n"
				      P1_COMMON "        set localid \"branch.example\"\n"
				      "        set peerid \"hq.example\"\n    next\n", i);
	n += (size_t)snprintf(t + n, cap - n, "end\nconfig vpn ipsec phase2-interface\n");
	for (unsigned i = 0; i < TUNNELS; i++)
		n += (size_t)snprintf(t + n, cap - n,
				      "    edit \"t%u-lan\"\n        set phase1name \"t%u\"\n"
				      "        set proposal aes128gcm\n        set src-subnet 10.1.%u.%u 255.255.255.255\n"
				      "        set dst-subnet 10.2.%u.%u 255.255.255.255\n    next\n", i, i, i / 256,
				      i % 256, i / 256, i % 256);
	n += (size_t)snprintf(t + n, cap - n, "end\n");
	if (n >= cap)
		abort();
	struct config *c = load(t);
	free(t);
	return c;
}

static struct config *responder_conf(void)
{
	return load(SETTINGS "config vpn ipsec phase1-interface\n    edit \"branch\"\n        set type dynamic\n"
		    P1_COMMON "        set localid \"hq.example\"\n        set peerid \"branch.example\"\n    next\nend\n"
		    "config vpn ipsec phase2-interface\n    edit \"branch-lan\"\n        set phase1name \"branch\"\n"
		    "        set proposal aes128gcm\n        set src-subnet 10.2.0.0 255.255.0.0\n"
		    "        set dst-subnet 10.1.0.0 255.255.0.0\n    next\nend\n");
}

/* Deliver stream ups and messages until nothing moves. */
static void pump(void)
{
	for (;;) {
		if (g.pending_up) {
			/* streams come up in the order they were opened */
			unsigned i = g.nconn - g.pending_up--;
			ike_conn_up(g.ike[INI], conn_of(INI, i));
			continue;
		}
		if (!g.qn && g.nreopen) { /* after what was sent before the close, as TCP delivers it */
			unsigned i = g.reopen[--g.nreopen];
			ike_conn_down(g.ike[INI], conn_of(INI, i));
			ike_conn_up(g.ike[INI], conn_of(INI, i));
			continue;
		}
		if (!g.qn)
			return;
		struct qmsg m = g.q[g.qhead];
		g.qhead = (g.qhead + 1) % QMAX;
		g.qn--;
		if (m.to == RSP) {
			double c0 = thread_cpu();
			ike_input(g.ike[RSP], conn_of(RSP, m.conn), m.buf, m.len);
			g.rsp_cpu += thread_cpu() - c0;
		} else {
			ike_input(g.ike[INI], conn_of(INI, m.conn), m.buf, m.len);
		}
		free(m.buf);
	}
}

int main(int argc, char **argv)
{
	static const struct ike_io io_i = { .connect = io_connect, .send = io_send, .close = io_close,
				  .hold = io_hold, .addrs = io_addrs, .arg = (void *)(intptr_t)INI };
	static const struct ike_io io_r = { .connect = io_connect, .send = io_send, .close = io_close,
				  .hold = io_hold, .addrs = io_addrs, .arg = (void *)(intptr_t)RSP };
	if (argc > 1)
		TUNNELS = (unsigned)strtoul(argv[1], NULL, 10);
	if (TUNNELS < 1 || TUNNELS > MAX_TUNNELS || TUNNELS > 256 * 256) {
		fprintf(stderr, "usage: bench_ike_sa [TUNNELS 1-%u]\n", MAX_TUNNELS);
		return 2;
	}
	struct config *ci = initiator_conf(), *cr = responder_conf();
	struct loop *loop = loop_new();
	double busy = 0, cpu = 0;
	unsigned rounds = 0;
	uint64_t sas = 0;

	if (!loop)
		return 1;
	log_set_level(LOG_LVL_WARN);
	while (busy < SECONDS) {
		memset(&stats, 0, sizeof(stats));
		g.nconn = g.pending_up = g.children = g.nreopen = 0;
		g.ike[INI] = ike_new(loop, &io_i, &dp_ops, NULL);
		g.ike[RSP] = ike_new(loop, &io_r, &dp_ops, NULL);
		if (!g.ike[INI] || !g.ike[RSP] || ike_configure(g.ike[RSP], cr))
			return 1;
		double t0 = mono(), c0 = thread_cpu();
		/* initiating opens the N streams; each IKE_SA_INIT goes out when its stream is up */
		if (ike_configure(g.ike[INI], ci))
			return 1;
		pump();
		busy += mono() - t0;
		cpu += thread_cpu() - c0;
		/* both ends count the SA: 2 per tunnel; CHILD SAs installed on both ends */
		if (stats.ike.sa_established != 2 * TUNNELS || g.children != 2 * TUNNELS ||
		    stats.ike.auth_failures || stats.ike.invalid_messages) {
			fprintf(stderr, "round %u: %llu of %u SAs established (%u CHILD SAs, %llu auth failures, "
				"%llu invalid)\n", rounds, (unsigned long long)stats.ike.sa_established / 2, TUNNELS,
				g.children / 2, (unsigned long long)stats.ike.auth_failures,
				(unsigned long long)stats.ike.invalid_messages);
			return 1;
		}
		sas += TUNNELS;
		rounds++;
		ike_free(g.ike[INI]);
		ike_free(g.ike[RSP]);
	}
	double pair = (double)sas / busy, rsp = (double)sas / g.rsp_cpu;
	printf("IKE SA establishment, in process (engine + crypto; PSK, CURVE25519, aes128gcm-prfsha256, "
	       "with the first CHILD SA)\n");
	printf("%-40s %10s %12s\n", "", "SAs/s", "us per SA");
	printf("%-40s %10.0f %12.1f\n", "initiator + responder on one core", pair, 1e6 / pair);
	printf("%-40s %10.0f %12.1f\n", "responder alone (its CPU share)", rsp, 1e6 * g.rsp_cpu / (double)sas);
	printf("(%llu SAs in %u rounds of %u tunnels, %.2f s wall, %.2f s CPU, of it %.2f s responder)\n",
	       (unsigned long long)sas, rounds, TUNNELS, busy, cpu, g.rsp_cpu);
	printf("{\"bench\":\"ike_sa\",\"mode\":\"in_process\",\"tunnels\":%u,\"suite\":\"aes128gcm-prfsha256\",\"dhgrp\":31,"
	       "\"auth\":\"psk\",\"sas\":%llu,\"seconds\":%.3f,\"pair_sas_per_s\":%.0f,"
	       "\"responder_sas_per_s\":%.0f,\"responder_us_per_sa\":%.1f}\n",
	       TUNNELS, (unsigned long long)sas, busy, pair, rsp, 1e6 * g.rsp_cpu / (double)sas);
	conf_free(ci);
	conf_free(cr);
	loop_free(loop);
	return 0;
}
