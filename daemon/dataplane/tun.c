/*
 * The TUN dataplane: the kernel routes each CHILD SA's remote selectors into
 * a TUN device; what it reads there is sealed into the SA's ESP and sent on
 * the SA's RFC 9329 stream, and ESP from a stream is opened, checked against
 * the SA's selectors (RFC 4301 section 5.2) and written back to the TUN.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <openssl/crypto.h>

#include "iketcp/buf.h"
#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "dataplane/dataplane.h"
#include "dataplane/route.h"
#include "esp/spi_table.h"
#include "loop.h"

#define DP_MAX_SAS 256
#define DP_TUN_MTU 1400
#define DP_BATCH 64 /* reads per wakeup, so one busy TUN cannot starve the streams */
#define DP_PKT_MAX 65535

struct dp_sa {
	struct esp_sa in, out;
	/* Normalized (host bits cleared); pairs local_ts[i] <-> remote_ts[i]. */
	struct child_ts local_ts[CHILD_MAX_TS], remote_ts[CHILD_MAX_TS];
	unsigned n_ts;
	struct tcp_conn *conn;
	uint64_t order; /* install order: with equal prefixes the newest SA (a rekey) wins */
};

struct dataplane {
	struct loop *loop;
	struct loop_io io;
	bool watching;
	int tun_fd, ifindex;
	char ifname[IFNAMSIZ];
	dataplane_send_fn send;
	void *send_arg;
	struct route_sock rs;
	struct spi_table spis;
	struct dp_sa *sas[DP_MAX_SAS];
	unsigned n_sas;
	uint64_t next_order;
	struct dataplane_counters ctr;
	struct log_ratelimit rl;
	/* Per-packet buffers, allocated once: clear packet (read or opened), sealed packet. */
	uint8_t pkt[DP_PKT_MAX];
	uint8_t esp[DP_PKT_MAX + ESP_MAX_OVERHEAD];
};

/* ---- selectors ----------------------------------------------------------- */

/* The addresses of an IPv4 or IPv6 packet, pointing into it. */
struct ip_addrs {
	uint8_t family;
	const uint8_t *src, *dst;
};

static bool ip_addrs_of(const uint8_t *p, size_t len, struct ip_addrs *a)
{
	struct rd r = rd_init(p, len);
	uint8_t vihl;

	if (rd_u8(&r, &vihl))
		return false;
	switch (vihl >> 4) {
	case 4: /* version/IHL .. protocol, checksum | source | destination */
		a->family = AF_INET;
		return !rd_skip(&r, 11) && !rd_view(&r, &a->src, 4) && !rd_view(&r, &a->dst, 4);
	case 6: /* version/class/label, payload length, next header, hop limit | source | destination */
		a->family = AF_INET6;
		return !rd_skip(&r, 7) && !rd_view(&r, &a->src, 16) && !rd_view(&r, &a->dst, 16);
	default:
		return false;
	}
}

static bool ts_contains(const struct child_ts *ts, uint8_t family, const uint8_t *addr)
{
	const uint8_t *net = ts->family == AF_INET ? (const uint8_t *)&ts->addr.v4 : ts->addr.v6.s6_addr;
	unsigned bits = ts->prefix_len;

	if (ts->family != family)
		return false;
	if (memcmp(net, addr, bits / 8) != 0)
		return false;
	if (bits % 8 == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff00 >> (bits % 8));
	return (addr[bits / 8] & mask) == net[bits / 8];
}

static bool ts_equal(const struct child_ts *a, const struct child_ts *b)
{
	if (a->family != b->family || a->prefix_len != b->prefix_len)
		return false;
	if (a->family == AF_INET)
		return a->addr.v4.s_addr == b->addr.v4.s_addr;
	return memcmp(&a->addr.v6, &b->addr.v6, sizeof(a->addr.v6)) == 0;
}

/* Outbound: the SA whose remote selector holds dst and local selector src; longest prefix wins. */
static struct dp_sa *sa_for_packet(struct dataplane *dp, const struct ip_addrs *a)
{
	struct dp_sa *best = NULL;
	int best_r = -1, best_l = -1;

	for (unsigned s = 0; s < dp->n_sas; s++) {
		struct dp_sa *sa = dp->sas[s];
		for (unsigned i = 0; i < sa->n_ts; i++) {
			int r = sa->remote_ts[i].prefix_len, l = sa->local_ts[i].prefix_len;
			if (!ts_contains(&sa->remote_ts[i], a->family, a->dst) ||
			    !ts_contains(&sa->local_ts[i], a->family, a->src))
				continue;
			if (r > best_r || (r == best_r && l > best_l) ||
			    (r == best_r && l == best_l && sa->order > best->order)) {
				best = sa;
				best_r = r;
				best_l = l;
			}
		}
	}
	return best;
}

/* Inbound: the peer may only send from its side's selectors to ours. */
static bool sa_allows(const struct dp_sa *sa, const struct ip_addrs *a)
{
	for (unsigned i = 0; i < sa->n_ts; i++)
		if (ts_contains(&sa->remote_ts[i], a->family, a->src) &&
		    ts_contains(&sa->local_ts[i], a->family, a->dst))
			return true;
	return false;
}

static bool route_needed_by_other(const struct dataplane *dp, const struct dp_sa *self,
				  const struct child_ts *ts)
{
	for (unsigned s = 0; s < dp->n_sas; s++) {
		if (dp->sas[s] == self)
			continue;
		for (unsigned i = 0; i < dp->sas[s]->n_ts; i++)
			if (ts_equal(&dp->sas[s]->remote_ts[i], ts))
				return true;
	}
	return false;
}

/* Deletes sa's routes that no other installed SA needs; the first n of its selectors. */
static void routes_release(struct dataplane *dp, const struct dp_sa *sa, unsigned n)
{
	if (!dp->ifindex) /* a test dataplane without a device */
		return;
	for (unsigned i = 0; i < n; i++) {
		if (route_needed_by_other(dp, sa, &sa->remote_ts[i]))
			continue;
		int err = route_delete(&dp->rs, dp->ifindex, &sa->remote_ts[i]);
		if (err)
			log_warn("dataplane: %s: cannot delete a route: %s", dp->ifname, strerror(-err));
	}
}

/* ---- packets ------------------------------------------------------------- */

/* One clear packet from the TUN: seal it and send it on its SA's stream. */
static void tun_packet(struct dataplane *dp, size_t len)
{
	struct ip_addrs a;
	struct dp_sa *sa;

	if (!ip_addrs_of(dp->pkt, len, &a) || !(sa = sa_for_packet(dp, &a))) {
		dp->ctr.no_sa++;
		return;
	}
	if (!sa->conn) {
		dp->ctr.no_stream++;
		return;
	}
	ssize_t n = esp_encap(&sa->out, dp->pkt, len, dp->esp, sizeof(dp->esp));
	if (n < 0) {
		if (n == -EKEYEXPIRED)
			dp->ctr.expired++;
		else
			dp->ctr.send_errors++;
		log_rl(&dp->rl, LOG_LVL_DEBUG, "dataplane: SPI %08x: cannot seal %zu bytes: %s",
		       sa->out.spi, len, strerror((int)-n));
		return;
	}
	STAT_INC(esp, packets_out);
	if (dp->send(dp->send_arg, sa->conn, dp->esp, (size_t)n) < 0)
		dp->ctr.send_errors++;
}

static void tun_readable(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct dataplane *dp = container_of(io, struct dataplane, io);

	(void)events;
	for (int i = 0; i < DP_BATCH; i++) {
		ssize_t n = read(dp->tun_fd, dp->pkt, sizeof(dp->pkt));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			/* EBADFD: the device was deleted under us; epoll would report it forever. */
			log_error("dataplane: %s: read: %s; no longer reading the TUN", dp->ifname,
				  strerror(errno));
			loop_io_del(loop, &dp->io);
			dp->watching = false;
			return;
		}
		if (n == 0)
			return;
		tun_packet(dp, (size_t)n);
	}
}

void dataplane_esp_input(struct dataplane *dp, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	struct ip_addrs a;
	uint8_t nh = 0;

	/* ESP is accepted on any stream: after a reconnection the peer may switch before IKE tells us. */
	(void)c;
	uint32_t spi = esp_spi_of(esp, len);
	if (len < ESP_HDR_LEN || spi == 0) {
		STAT_INC(esp, malformed);
		return;
	}
	struct esp_sa *in = spi_table_lookup(&dp->spis, spi);
	if (!in) {
		STAT_INC(esp, unknown_spi);
		log_rl(&dp->rl, LOG_LVL_DEBUG, "dataplane: ESP for unknown SPI %08x dropped", spi);
		return;
	}
	struct dp_sa *sa = container_of(in, struct dp_sa, in);

	ssize_t n = esp_decap(in, esp, len, dp->pkt, sizeof(dp->pkt), &nh);
	switch (n) {
	case -EBADMSG:
	case -ENOSPC:
		STAT_INC(esp, malformed);
		return;
	case -EKEYREJECTED:
		STAT_INC(esp, auth_failures);
		return;
	case -EALREADY:
		STAT_INC(esp, replay_drops);
		return;
	case -EKEYEXPIRED:
		dp->ctr.expired++;
		return;
	case 0: /* Next Header 59: dummy packet, discarded silently (RFC 4303 section 2.6) */
		return;
	default:
		if (n < 0) {
			log_rl(&dp->rl, LOG_LVL_WARN, "dataplane: SPI %08x: cannot open: %s", spi,
			       strerror((int)-n));
			return;
		}
	}
	STAT_INC(esp, packets_in);

	if (!ip_addrs_of(dp->pkt, (size_t)n, &a) || !sa_allows(sa, &a)) {
		dp->ctr.policy_drops++;
		log_rl(&dp->rl, LOG_LVL_DEBUG, "dataplane: SPI %08x: inner packet outside the selectors dropped",
		       spi);
		return;
	}
	if (write(dp->tun_fd, dp->pkt, (size_t)n) != n)
		dp->ctr.tun_write_errors++;
}

/* ---- CHILD SAs ----------------------------------------------------------- */

static int find_sa(const struct dataplane *dp, uint32_t spi_in)
{
	for (unsigned s = 0; s < dp->n_sas; s++)
		if (dp->sas[s]->in.spi == spi_in)
			return (int)s;
	return -1;
}

static void sa_free(struct dp_sa *sa)
{
	if (!sa)
		return;
	esp_sa_destroy(&sa->in); /* wipes the keys */
	esp_sa_destroy(&sa->out);
	free(sa);
}

static int dp_install(void *arg, const struct child_sa *csa)
{
	struct dataplane *dp = arg;
	struct esp_sa_params in = csa->in, out = csa->out;
	struct dp_sa *sa = NULL;
	unsigned routed = 0;
	bool in_table = false;
	int err;

	if (csa->n_ts == 0 || csa->n_ts > CHILD_MAX_TS || csa->spi_in == 0 || csa->spi_out == 0)
		return -EINVAL;
	if (dp->n_sas == DP_MAX_SAS)
		return -ENOSPC;
	sa = calloc(1, sizeof(*sa));
	if (!sa)
		return -ENOMEM;
	sa->n_ts = csa->n_ts;
	for (unsigned i = 0; i < csa->n_ts; i++) {
		if (!route_ts_normalize(&csa->local_ts[i], &sa->local_ts[i]) ||
		    !route_ts_normalize(&csa->remote_ts[i], &sa->remote_ts[i]) ||
		    sa->local_ts[i].family != sa->remote_ts[i].family) {
			err = -EINVAL;
			goto fail;
		}
	}
	in.spi = csa->spi_in;
	in.outbound = false;
	out.spi = csa->spi_out;
	out.outbound = true;
	err = esp_sa_init(&sa->in, &in);
	if (err)
		goto fail;
	err = esp_sa_init(&sa->out, &out);
	if (err)
		goto fail;
	err = spi_table_insert(&dp->spis, csa->spi_in, &sa->in);
	if (err)
		goto fail;
	in_table = true;
	for (; routed < sa->n_ts && dp->ifindex; routed++) {
		err = route_replace(&dp->rs, dp->ifindex, &sa->remote_ts[routed]);
		if (err) {
			log_warn("dataplane: %s: cannot add a route: %s", dp->ifname, strerror(-err));
			goto fail;
		}
	}
	sa->conn = csa->conn;
	sa->order = ++dp->next_order;
	dp->sas[dp->n_sas++] = sa;
	log_info("dataplane: %s/%s: CHILD SA in %08x out %08x installed on %s", csa->phase1 ? csa->phase1 : "-",
		 csa->phase2 ? csa->phase2 : "-", csa->spi_in, csa->spi_out, dp->ifname);
	return 0;

fail:
	routes_release(dp, sa, routed);
	if (in_table)
		spi_table_remove(&dp->spis, csa->spi_in);
	sa_free(sa);
	return err;
}

static void dp_update_conn(void *arg, uint32_t spi_in, struct tcp_conn *conn)
{
	struct dataplane *dp = arg;
	int s = find_sa(dp, spi_in);

	if (s >= 0)
		dp->sas[s]->conn = conn;
}

static void dp_remove(void *arg, uint32_t spi_in)
{
	struct dataplane *dp = arg;
	int s = find_sa(dp, spi_in);

	if (s < 0)
		return;
	struct dp_sa *sa = dp->sas[s];
	routes_release(dp, sa, sa->n_ts);
	spi_table_remove(&dp->spis, spi_in);
	dp->sas[s] = dp->sas[--dp->n_sas];
	dp->sas[dp->n_sas] = NULL;
	sa_free(sa);
}

static int dp_counters(void *arg, uint32_t spi_in, struct child_sa_counters *out)
{
	struct dataplane *dp = arg;
	int s = find_sa(dp, spi_in);

	if (s < 0)
		return -ENOENT;
	const struct dp_sa *sa = dp->sas[s];
	*out = (struct child_sa_counters){
		.packets_in = sa->in.stats.packets,
		.packets_out = sa->out.stats.packets,
		.bytes_in = sa->in.stats.bytes,
		.bytes_out = sa->out.stats.bytes,
		.replay_drops = sa->in.stats.replay_drops,
		.auth_failures = sa->in.stats.auth_failures,
	};
	return 0;
}

const struct child_sa_ops dataplane_child_ops = {
	.install = dp_install,
	.update_conn = dp_update_conn,
	.remove = dp_remove,
	.counters = dp_counters,
};

/* ---- the device ---------------------------------------------------------- */

/* A TUN device without packet information, MTU DP_TUN_MTU, up. 0 or -errno. */
static int tun_open(struct dataplane *dp, const char *name)
{
	struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
	int s = -1, err = 0;

	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	memcpy(ifr.ifr_name, name, strlen(name));
	dp->tun_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (dp->tun_fd < 0)
		return -errno;
	if (ioctl(dp->tun_fd, TUNSETIFF, &ifr) < 0)
		goto fail_errno;
	memcpy(dp->ifname, ifr.ifr_name, IFNAMSIZ);
	dp->ifname[IFNAMSIZ - 1] = '\0';

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		goto fail_errno;
	ifr.ifr_mtu = DP_TUN_MTU;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto fail_errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0 || ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		goto fail_errno;
	dp->ifindex = ifr.ifr_ifindex;
	close(s);
	return 0;

fail_errno:
	err = -errno;
	if (s >= 0)
		close(s);
	close(dp->tun_fd);
	dp->tun_fd = -1;
	return err;
}

struct dataplane *dataplane_tun_new(struct loop *loop, const char *ifname, dataplane_send_fn send,
				    void *send_arg)
{
	struct dataplane *dp;
	int err;

	if (!loop || !ifname || !*ifname || !send)
		return NULL;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return NULL;
	dp->loop = loop;
	dp->send = send;
	dp->send_arg = send_arg;
	dp->tun_fd = -1;
	dp->rs.fd = -1;
	err = spi_table_init(&dp->spis, DP_MAX_SAS);
	if (err)
		goto fail;
	err = route_sock_open(&dp->rs);
	if (err) {
		log_error("dataplane: rtnetlink socket: %s", strerror(-err));
		goto fail;
	}
	err = tun_open(dp, ifname);
	if (err) {
		log_error("dataplane: TUN device %s: %s", ifname, strerror(-err));
		goto fail;
	}
	err = loop_io_add(loop, &dp->io, dp->tun_fd, EPOLLIN, tun_readable);
	if (err) {
		log_error("dataplane: %s: cannot watch: %s", dp->ifname, strerror(err < 0 ? -err : err));
		goto fail;
	}
	dp->watching = true;
	log_info("dataplane: TUN %s up (ifindex %d, MTU %d)", dp->ifname, dp->ifindex, DP_TUN_MTU);
	return dp;

fail:
	dataplane_free(dp);
	return NULL;
}

void dataplane_free(struct dataplane *dp)
{
	if (!dp)
		return;
	while (dp->n_sas)
		dp_remove(dp, dp->sas[dp->n_sas - 1]->in.spi);
	if (dp->watching)
		loop_io_del(dp->loop, &dp->io);
	if (dp->tun_fd >= 0)
		close(dp->tun_fd);
	route_sock_close(&dp->rs);
	spi_table_free(&dp->spis);
	OPENSSL_cleanse(dp->pkt, sizeof(dp->pkt));
	OPENSSL_cleanse(dp->esp, sizeof(dp->esp));
	free(dp);
}

const char *dataplane_ifname(const struct dataplane *dp)
{
	return dp->ifname;
}

void dataplane_counters(const struct dataplane *dp, struct dataplane_counters *out)
{
	*out = dp->ctr;
}

unsigned dataplane_sa_count(const struct dataplane *dp)
{
	return dp->n_sas;
}

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
struct dataplane *dataplane_fd_new_for_test(int fd, dataplane_send_fn send, void *send_arg)
{
	struct dataplane *dp = calloc(1, sizeof(*dp));

	if (!dp)
		return NULL;
	dp->send = send;
	dp->send_arg = send_arg;
	dp->rs.fd = -1;
	dp->tun_fd = fd;
	snprintf(dp->ifname, sizeof(dp->ifname), "test");
	if (spi_table_init(&dp->spis, DP_MAX_SAS)) {
		dataplane_free(dp);
		return NULL;
	}
	return dp;
}

void dataplane_tun_input_for_test(struct dataplane *dp, const uint8_t *pkt, size_t len)
{
	len = MIN(len, sizeof(dp->pkt));
	memcpy(dp->pkt, pkt, len);
	tun_packet(dp, len);
}
#endif
