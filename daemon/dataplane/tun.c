/*
 * The TUN dataplane: the kernel routes each CHILD SA's remote selectors into
 * a TUN device; what it reads there is sealed into the SA's ESP and sent on
 * the SA's RFC 9329 stream, and ESP from a stream is opened, checked against
 * the SA's selectors (RFC 4301 section 5.2) and written back to the TUN.
 */
#include <errno.h>
#include <stddef.h>
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
#include "dataplane/sa_set.h"
#include "loop.h"

#define DP_TUN_MTU 1400
#define DP_BATCH 64 /* reads per wakeup, so one busy TUN cannot starve the streams */
#define DP_PKT_MAX 65535

struct dataplane {
	struct sa_set set; /* first: the child_sa_ops arg is both */
	struct loop *loop;
	struct loop_io io;
	bool watching;
	int tun_fd, ifindex;
	char ifname[IFNAMSIZ];
	dataplane_send_fn send;
	void *send_arg;
	struct route_sock rs;
	struct dataplane_counters ctr;
	/* Per-packet buffers, allocated once: clear packet (read or opened), sealed packet. */
	uint8_t pkt[DP_PKT_MAX];
	uint8_t esp[DP_PKT_MAX + ESP_MAX_OVERHEAD];
};

/* ---- routes: the selector projection ---------------------------------- */

static int route_add(void *arg, const struct child_ts *ts, uint32_t others)
{
	struct dataplane *dp = arg;
	int err;

	(void)others; /* replacing an existing route is harmless */
	if (!dp->ifindex) /* a test dataplane without a device */
		return 0;
	err = route_replace(&dp->rs, dp->ifindex, ts);
	if (err)
		log_warn("dataplane: %s: cannot add a route: %s", dp->ifname, strerror(-err));
	return err;
}

/* Deletes the route unless another installed SA needs it. */
static void route_release(void *arg, const struct child_ts *ts, uint32_t others, bool rollback)
{
	struct dataplane *dp = arg;

	(void)rollback;
	if (!dp->ifindex || others)
		return;
	int err = route_delete(&dp->rs, dp->ifindex, ts);
	if (err)
		log_warn("dataplane: %s: cannot delete a route: %s", dp->ifname, strerror(-err));
}

static const struct sa_set_hooks route_hooks = { .add = route_add, .release = route_release };

/* ---- packets ------------------------------------------------------------- */

/* One clear packet from the TUN: seal it and send it on its SA's stream. */
static void tun_packet(struct dataplane *dp, size_t len)
{
	struct ip_addrs a;
	struct sa_set_sa *sa;

	if (!ip_addrs_parse(dp->pkt, len, &a, NULL) || !(sa = sa_set_lookup(&dp->set, &a))) {
		dp->ctr.no_sa++;
		return;
	}
	if (!sa->conn) {
		dp->ctr.no_stream++;
		return;
	}
	/* Too big for a UDP path and not to be fragmented: the ICMP error goes back in through the TUN. */
	ssize_t icmp = sa_set_fit(sa, dp->pkt, len, dp->esp, sizeof(dp->esp));
	if (icmp > 0) {
		if (write(dp->tun_fd, dp->esp, (size_t)icmp) != icmp)
			dp->ctr.send_errors++;
		return;
	}
	ssize_t n = sa_set_seal(&dp->set, sa, dp->pkt, len, dp->esp, sizeof(dp->esp));
	if (n < 0) {
		if (n == -EKEYEXPIRED)
			dp->ctr.expired++;
		else
			dp->ctr.send_errors++;
		return;
	}
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

	/* ESP is accepted on any stream: after a reconnection the peer may switch before IKE tells us. */
	(void)c;
	ssize_t n = sa_set_open(&dp->set, esp, len, dp->pkt, sizeof(dp->pkt), &a, NULL);
	if (n == -EKEYEXPIRED)
		dp->ctr.expired++;
	else if (n == -EACCES)
		dp->ctr.policy_drops++;
	if (n <= 0)
		return;
	if (write(dp->tun_fd, dp->pkt, (size_t)n) != n)
		dp->ctr.tun_write_errors++;
}

/* ---- CHILD SAs ----------------------------------------------------------- */

_Static_assert(offsetof(struct dataplane, set) == 0, "SA_SET_CHILD_OPS takes the dataplane as its set");
const struct child_sa_ops dataplane_child_ops = SA_SET_CHILD_OPS;

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
	err = sa_set_init(&dp->set, "dataplane", &route_hooks, dp);
	if (err)
		goto fail;
	dp->set.ifname = dp->ifname;
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
	sa_set_free(&dp->set); /* its routes need the rtnetlink socket */
	if (dp->watching)
		loop_io_del(dp->loop, &dp->io);
	if (dp->tun_fd >= 0)
		close(dp->tun_fd);
	route_sock_close(&dp->rs);
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
	return dp->set.n;
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
	if (sa_set_init(&dp->set, "dataplane", &route_hooks, dp)) {
		dataplane_free(dp);
		return NULL;
	}
	dp->set.ifname = dp->ifname;
	return dp;
}

void dataplane_tun_input_for_test(struct dataplane *dp, const uint8_t *pkt, size_t len)
{
	len = MIN(len, sizeof(dp->pkt));
	memcpy(dp->pkt, pkt, len);
	tun_packet(dp, len);
}
#endif
