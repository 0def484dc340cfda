/*
 * Next hops for the AF_XDP dataplane over rtnetlink (rtnetlink(7)): one
 * RTM_GETROUTE for the destination (output interface, gateway), one
 * RTM_GETNEIGH for the next hop on that interface (its MAC and NUD state).
 * Answers are cached briefly; a miss costs two round trips on the socket.
 *
 *   request:  nlmsghdr | rtmsg | RTA_DST         nlmsghdr | ndmsg | NDA_DST
 *   reply:    nlmsghdr | rtmsg | RTA_* ...       nlmsghdr | ndmsg | NDA_* ...
 *             or nlmsghdr NLMSG_ERROR | -errno
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>

#include "iketcp/buf.h"
#include "dataplane/neigh.h"
#include "dataplane/route.h"

/* NUD states in which the kernel is willing to use the link-layer address. */
#define NUD_USABLE (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)

int neigh_open(struct neigh *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = rtnl_open(1); /* the kernel answers at once */
	return n->fd < 0 ? n->fd : 0;
}

void neigh_close(struct neigh *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}

void neigh_flush(struct neigh *n)
{
	memset(n->cache, 0, sizeof(n->cache));
}

/* One attribute: rta_len (native u16, header included) | rta_type | value, padded to 4. */
static int nla_next(struct rd *r, uint16_t *type, struct rd *val)
{
	uint16_t len;

	if (rd_copy(r, &len, 2) || rd_copy(r, type, 2))
		return -EBADMSG;
	*type &= NLA_TYPE_MASK;
	if (len < 4 || rd_sub(r, val, len - 4u))
		return -EBADMSG;
	/* The kernel pads every attribute, the last one too. */
	return rd_skip(r, NLA_ALIGN(len) - len) ? -EBADMSG : 0;
}

int neigh_parse_route(const uint8_t *p, size_t len, uint8_t family, int *oif, uint8_t gw[16], unsigned *gw_len)
{
	struct rd r = rd_init(p, len), val;
	struct rtmsg rt;
	unsigned alen = family == AF_INET ? 4 : 16;
	uint16_t type;

	*oif = 0;
	*gw_len = 0;
	if (rd_copy(&r, &rt, sizeof(rt)) || rt.rtm_family != family)
		return -EBADMSG;
	while (!rd_empty(&r)) {
		if (nla_next(&r, &type, &val))
			return -EBADMSG;
		if (type == RTA_OIF) {
			uint32_t v;
			if (rd_left(&val) != 4 || rd_copy(&val, &v, 4))
				return -EBADMSG;
			*oif = (int)v;
		} else if (type == RTA_GATEWAY) {
			if (rd_left(&val) != alen || rd_copy(&val, gw, alen))
				return -EBADMSG;
			*gw_len = alen;
		}
	}
	if (rt.rtm_type != RTN_UNICAST)
		return -EHOSTUNREACH; /* local, blackhole, unreachable, prohibit */
	return *oif > 0 ? 0 : -EBADMSG;
}

int neigh_parse_neigh(const uint8_t *p, size_t len, uint8_t mac[6])
{
	struct rd r = rd_init(p, len), val;
	struct ndmsg nd;
	uint16_t type;
	bool have = false;

	if (rd_copy(&r, &nd, sizeof(nd)))
		return -EBADMSG;
	while (!rd_empty(&r)) {
		if (nla_next(&r, &type, &val))
			return -EBADMSG;
		if (type == NDA_LLADDR) {
			if (rd_left(&val) != 6) /* not Ethernet */
				return -ENOENT;
			if (rd_copy(&val, mac, 6))
				return -EBADMSG;
			have = true;
		}
	}
	return have && (nd.ndm_state & NUD_USABLE) ? 0 : -ENOENT;
}

/* Sends req and returns the payload of the reply of type want in buf: its length, or -errno. */
static ssize_t nl_ask(struct neigh *n, struct nlmsghdr *req, uint16_t want, uint8_t *buf, size_t cap,
		      const uint8_t **payload)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	req->nlmsg_seq = ++n->seq;
	n->queries++;
	if (sendto(n->fd, req, req->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		ssize_t got = recv(n->fd, buf, cap, 0);
		if (got < 0)
			return errno == EINTR ? -EAGAIN : -errno;
		struct rd r = rd_init(buf, (size_t)got);
		while (rd_left(&r) >= sizeof(struct nlmsghdr)) {
			struct nlmsghdr h;
			struct rd body;
			if (rd_copy(&r, &h, sizeof(h)) || h.nlmsg_len < sizeof(h) ||
			    rd_sub(&r, &body, h.nlmsg_len - sizeof(h)))
				return -EBADMSG;
			size_t pad = NLMSG_ALIGN(h.nlmsg_len) - h.nlmsg_len;
			if (rd_skip(&r, pad > rd_left(&r) ? rd_left(&r) : pad))
				return -EBADMSG;
			if (h.nlmsg_seq != n->seq)
				continue; /* a late answer to an earlier question */
			if (h.nlmsg_type == NLMSG_ERROR) {
				int32_t e;
				if (rd_copy(&body, &e, 4))
					return -EBADMSG;
				return e < 0 ? e : -ENODATA;
			}
			if (h.nlmsg_type != want)
				return -EBADMSG;
			*payload = rd_ptr(&body);
			return (ssize_t)rd_left(&body);
		}
	}
}

/* Request with one address attribute after the family header (rtmsg or ndmsg). */
struct nl_req {
	struct nlmsghdr nh;
	union {
		struct rtmsg rt;
		struct ndmsg nd;
	};
	uint8_t attrs[RTA_SPACE(16)];
};

static void put_addr_attr(struct nl_req *q, size_t hdr, uint16_t type, const uint8_t *a, unsigned alen)
{
	struct rtattr *rta = (struct rtattr *)((uint8_t *)q + NLMSG_LENGTH(hdr));

	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(alen);
	memcpy(RTA_DATA(rta), a, alen);
	q->nh.nlmsg_len = NLMSG_LENGTH(hdr) + RTA_SPACE(alen);
}

static int ask_route(struct neigh *n, uint8_t family, const uint8_t *dst, int *oif, uint8_t hop[16])
{
	unsigned alen = family == AF_INET ? 4 : 16, gw_len;
	struct nl_req q = { .nh = { .nlmsg_type = RTM_GETROUTE, .nlmsg_flags = NLM_F_REQUEST } };
	uint8_t buf[4096];
	const uint8_t *p;

	q.rt.rtm_family = family;
	q.rt.rtm_dst_len = (unsigned char)(alen * 8);
	put_addr_attr(&q, sizeof(q.rt), RTA_DST, dst, alen);
	ssize_t len = nl_ask(n, &q.nh, RTM_NEWROUTE, buf, sizeof(buf), &p);
	if (len < 0)
		return len == -ENETUNREACH || len == -EHOSTUNREACH ? -EHOSTUNREACH : (int)len;
	int err = neigh_parse_route(p, (size_t)len, family, oif, hop, &gw_len);
	if (err)
		return err;
	if (!gw_len) /* on-link: the destination is its own next hop */
		memcpy(hop, dst, alen);
	return 0;
}

static int ask_neigh(struct neigh *n, uint8_t family, const uint8_t *hop, int oif, uint8_t mac[6])
{
	unsigned alen = family == AF_INET ? 4 : 16;
	struct nl_req q = { .nh = { .nlmsg_type = RTM_GETNEIGH, .nlmsg_flags = NLM_F_REQUEST } };
	uint8_t buf[1024];
	const uint8_t *p;

	q.nd.ndm_family = family;
	q.nd.ndm_ifindex = oif;
	put_addr_attr(&q, sizeof(q.nd), NDA_DST, hop, alen);
	ssize_t len = nl_ask(n, &q.nh, RTM_NEWNEIGH, buf, sizeof(buf), &p);
	if (len < 0)
		return len == -ENOENT ? -ENOENT : (int)len;
	return neigh_parse_neigh(p, (size_t)len, mac);
}

static unsigned hash_dst(uint8_t family, const uint8_t *dst)
{
	unsigned alen = family == AF_INET ? 4 : 16;
	uint32_t h = 2166136261u; /* FNV-1a */

	for (unsigned i = 0; i < alen; i++)
		h = (h ^ dst[i]) * 16777619u;
	return h % NEIGH_CACHE_SIZE;
}

int neigh_lookup(struct neigh *n, uint8_t family, const uint8_t *dst, uint64_t now_ms, int *oif,
		 uint8_t mac[6])
{
	unsigned alen = family == AF_INET ? 4 : 16;
	struct neigh_entry *e;
	uint8_t hop[16];
	int err;

	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	e = &n->cache[hash_dst(family, dst)];
	if (e->expires_ms > now_ms && e->family == family && memcmp(e->dst, dst, alen) == 0)
		goto answer;

	*e = (struct neigh_entry){ .family = family };
	memcpy(e->dst, dst, alen);
	err = ask_route(n, family, dst, &e->oif, hop);
	if (err) {
		e->expires_ms = 0;
		return err;
	}
	err = ask_neigh(n, family, hop, e->oif, e->mac);
	if (err && err != -ENOENT) {
		e->expires_ms = 0;
		return err;
	}
	e->resolved = err == 0;
	e->expires_ms = now_ms + (e->resolved ? NEIGH_TTL_MS : NEIGH_MISS_TTL_MS);
answer:
	*oif = e->oif;
	if (!e->resolved)
		return -ENOENT;
	memcpy(mac, e->mac, 6);
	return 0;
}
