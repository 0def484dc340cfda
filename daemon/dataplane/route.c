/*
 * rtnetlink routes for the TUN dataplane: RTM_NEWROUTE (create or replace)
 * and RTM_DELROUTE for one prefix via one device, each followed by its ack
 * (an NLMSG_ERROR whose error is 0 or -errno, rtnetlink(7)).
 *
 *   nlmsghdr | rtmsg | RTA_DST (4 or 16 bytes) | RTA_OIF (u32)
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "iketcp/buf.h"
#include "iketcp/log.h"
#include "dataplane/route.h"

/* RTA_ALIGN(sizeof(struct rtattr)) is 4; both attributes are multiples of 4. */
struct route_req {
	struct nlmsghdr nh;
	struct rtmsg rt;
	uint8_t attrs[RTA_SPACE(16) + RTA_SPACE(4)];
};

int rtnl_open(int timeout_s)
{
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = timeout_s };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int route_sock_open(struct route_sock *rs)
{
	/* The kernel acks at once; the timeout only guards against a lost ack. */
	rs->seq = 0;
	rs->fd = rtnl_open(2);
	return rs->fd < 0 ? rs->fd : 0;
}

void route_sock_close(struct route_sock *rs)
{
	if (rs->fd >= 0)
		close(rs->fd);
	rs->fd = -1;
}

bool route_ts_normalize(const struct child_ts *ts, struct child_ts *out)
{
	size_t bytes;
	uint8_t *a;

	*out = (struct child_ts){ .family = ts->family, .prefix_len = ts->prefix_len };
	if (ts->family == AF_INET) {
		bytes = 4;
		out->addr.v4 = ts->addr.v4;
		a = (uint8_t *)&out->addr.v4;
	} else if (ts->family == AF_INET6) {
		bytes = 16;
		out->addr.v6 = ts->addr.v6;
		a = out->addr.v6.s6_addr;
	} else {
		return false;
	}
	if (ts->prefix_len > bytes * 8)
		return false;
	for (size_t i = 0; i < bytes; i++) {
		unsigned keep = ts->prefix_len > i * 8 ? ts->prefix_len - i * 8 : 0;
		if (keep < 8)
			a[i] &= (uint8_t)(0xff00 >> keep);
	}
	return true;
}

static void put_attr(uint8_t **at, uint16_t type, const void *data, size_t len)
{
	struct rtattr rta = { .rta_len = (unsigned short)RTA_LENGTH(len), .rta_type = type };

	memcpy(*at, &rta, sizeof(rta));
	memcpy(*at + RTA_LENGTH(0), data, len);
	*at += RTA_SPACE(len);
}

/* The ack for seq: its error (0 or -errno). Other messages are skipped. */
static int read_ack(struct route_sock *rs, uint32_t seq)
{
	uint8_t buf[8192];

	for (;;) {
		ssize_t n = recv(rs->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		struct rd r = rd_init(buf, (size_t)n);
		while (rd_left(&r) >= sizeof(struct nlmsghdr)) {
			struct nlmsghdr nh;
			struct nlmsgerr e;
			struct rd msg;

			memcpy(&nh, rd_ptr(&r), sizeof(nh));
			if (nh.nlmsg_len < sizeof(nh) || rd_sub(&r, &msg, nh.nlmsg_len))
				return -EBADMSG;
			if (rd_skip(&r, MIN(NLMSG_ALIGN(nh.nlmsg_len) - nh.nlmsg_len, rd_left(&r))))
				return -EBADMSG;
			if (nh.nlmsg_type != NLMSG_ERROR || nh.nlmsg_seq != seq)
				continue;
			if (rd_skip(&msg, sizeof(nh)) || rd_copy(&msg, &e, sizeof(e)))
				return -EBADMSG;
			return e.error;
		}
	}
}

static int route_request(struct route_sock *rs, uint16_t type, uint16_t flags, int ifindex,
			 const struct child_ts *ts)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct route_req req;
	struct child_ts dst;
	uint32_t oif = (uint32_t)ifindex;

	if (rs->fd < 0 || ifindex <= 0 || !route_ts_normalize(ts, &dst))
		return -EINVAL;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_type = type;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	req.nh.nlmsg_seq = ++rs->seq;
	req.rt.rtm_family = dst.family;
	req.rt.rtm_dst_len = dst.prefix_len;
	req.rt.rtm_table = RT_TABLE_MAIN;
	req.rt.rtm_protocol = RTPROT_STATIC;
	/* What `ip route add PREFIX dev DEV` sends: link scope for IPv4, universe for IPv6. */
	req.rt.rtm_scope = dst.family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
	req.rt.rtm_type = RTN_UNICAST;

	uint8_t *at = req.attrs;
	put_attr(&at, RTA_DST, &dst.addr, dst.family == AF_INET ? 4 : 16);
	put_attr(&at, RTA_OIF, &oif, sizeof(oif));
	req.nh.nlmsg_len = (uint32_t)(at - (uint8_t *)&req);

	if (sendto(rs->fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	return read_ack(rs, req.nh.nlmsg_seq);
}

int route_replace(struct route_sock *rs, int ifindex, const struct child_ts *ts)
{
	return route_request(rs, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, ifindex, ts);
}

int route_delete(struct route_sock *rs, int ifindex, const struct child_ts *ts)
{
	int err = route_request(rs, RTM_DELROUTE, 0, ifindex, ts);

	/* ESRCH: no such route (already removed, or its device is gone). */
	if (err == -ESRCH || err == -ENOENT || err == -ENODEV)
		return 0;
	return err;
}
