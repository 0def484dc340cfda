/*
 * The AF_XDP dataplane: clear.bpf.c steers packets for the CHILD SAs' remote
 * selectors into one AF_XDP socket per RX queue of each inner interface; they
 * are sealed into ESP and sent on the SA's RFC 9329 stream. Opened ESP is
 * checked against the SA's selectors (RFC 4301 section 5.2) and leaves from an
 * AF_XDP socket behind an Ethernet header for the kernel's next hop, or through
 * a raw IP socket when that next hop's MAC is not known yet.
 *
 * The SA table and selector matching are sa_set.c's, shared with tun.c; that
 * table is the truth and the clear_v4/clear_v6 maps its projection, rewritten
 * on every install/remove through the sa_set hooks below.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/sockios.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/if_packet.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#include "iketcp/buf.h"
#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "dataplane/afxdp.h"
#include "dataplane/esp_batch.h"
#include "dataplane/gso.h"
#include "dataplane/gso_flows.h"
#include "dataplane/inet_csum.h"
#include "dataplane/neigh.h"
#include "dataplane/route.h"
#include "dataplane/sa_set.h"
#include "loop.h"
#include "clear.skel.h"

#define AFX_FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE /* 4096: one page per frame */
#define AFX_RING 2048                               /* RX, TX, fill and completion rings */
#define AFX_FRAMES (2 * AFX_RING)                   /* first half RX (fill ring), second half TX */
#define AFX_BATCH 64       /* RX descriptors per pass; each pass is one batch for the stream */
#define AFX_RX_PASSES 4     /* passes per wakeup before epoll gets a say again */
#define AFX_KICK_BATCH 32   /* descriptors the kernel's copy-mode TX takes per sendto (TX_BATCH_SIZE) */
#define AFX_PKT_MAX 65535
#define AFX_TX_MAX (AFX_FRAME_SIZE - ETH_HLEN)      /* biggest decrypted packet sent by AF_XDP */
#define AFX_GATHER_MAX (ETH_HLEN + AFX_PKT_MAX)     /* a multi-buffer frame: Ethernet and a 64 KiB packet */
#define AFX_LINK_TTL_MS 1000 /* an administrator may change an interface's MTU or MAC under us */

/* linux/if_xdp.h of kernels >= 6.6, which the build host's headers may predate. */
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif

struct afx_if;

/* One AF_XDP socket on one RX queue, with its own UMEM. */
struct afx_xsk {
	struct afxdp *dp;
	struct afx_if *ifc;
	uint32_t queue;
	bool zerocopy, watching;
	struct loop_io io;
	void *area;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	uint64_t tx_free[AFX_RING]; /* TX frame addresses not in flight */
	unsigned n_tx_free;
	unsigned tx_unkicked;       /* descriptors submitted since the last wakeup */
	/* Multi-buffer RX (XDP_USE_SG): the descriptors of one frame, joined. */
	bool sg;
	bool gather_bad;            /* the frame being joined overflowed: dropped at its last descriptor */
	size_t gather_len;
	uint8_t gather[AFX_GATHER_MAX];
};

struct afx_if {
	char name[IFNAMSIZ];
	int ifindex;
	uint8_t mac[ETH_ALEN];
	unsigned mtu;
	uint64_t mtu_at_ms; /* when mac and mtu were read: again after AFX_LINK_TTL_MS */
	struct clear_bpf *skel;
	uint32_t xdp_flags; /* the mode it is attached in; 0: not attached */
	char pin_dir[256];  /* empty: not pinned */
	struct afx_xsk *xsks[CLEAR_QUEUES_MAX];
	unsigned n_xsks;
};

struct afxdp {
	struct sa_set set; /* first: the child_sa_ops arg is both */
	struct loop *loop;
	dataplane_send_fn send;
	dataplane_send_fn queue;   /* NULL: send each frame */
	dataplane_flush_fn flush;
	void *send_arg;
	struct afx_if ifs[AFXDP_MAX_IFS];
	unsigned n_ifs;
	struct neigh neigh;
	int raw4, raw6;
	int packet_fd;             /* AF_PACKET with vnet headers: superpackets out; -1: none */
	bool generic;              /* `set xdp-mode generic` */
	struct afxdp_counters ctr;
	struct gso_flows flows;    /* opened TCP segments of one stream read, joined (in cobuf) */
	uint8_t cobuf[GSO_FLOWS][GSO_PKT_MAX];
	uint8_t icmp[AFX_PKT_MAX]; /* an ICMP error for a packet too big for its SA's path */
	struct esp_batch sealing;  /* clear packets of one RX pass */
	struct esp_batch opening;  /* ESP of one stream read */
};

/*
 * Completes the TCP or UDP checksum of an unfragmented packet. A sender on a
 * veth or virtio link leaves it to "hardware" (CHECKSUM_PARTIAL: the field
 * holds only the pseudo-header sum) and XDP frames carry no checksum state, so
 * a packet stolen by AF_XDP would otherwise leave the tunnel with a checksum
 * the far LAN host rejects. A correct checksum is rewritten to the same value.
 */
static void l4_csum_complete(uint8_t *ip, size_t ip_len, const struct ip_addrs *a)
{
	struct rd r = rd_init(ip, ip_len);
	uint8_t vihl, proto;
	uint16_t frag;
	size_t hl;

	if (rd_u8(&r, &vihl))
		return;
	if (a->family == AF_INET) {
		hl = (vihl & 0xf) * 4u;
		if (rd_skip(&r, 5) || rd_be16(&r, &frag) || rd_skip(&r, 1) || rd_u8(&r, &proto))
			return;
		if (frag & 0x3fff) /* MF or an offset: the checksum spans fragments */
			return;
	} else {
		hl = 40; /* extension headers: left as they are */
		if (rd_skip(&r, 5) || rd_u8(&r, &proto))
			return;
	}
	if (hl > ip_len)
		return;
	size_t l4_len = ip_len - hl, at;
	if (proto == IPPROTO_TCP && l4_len >= 20)
		at = 16;
	else if (proto == IPPROTO_UDP && l4_len >= 8)
		at = 6;
	else
		return;
	uint8_t *l4 = ip + hl;
	if (proto == IPPROTO_UDP && a->family == AF_INET && l4[6] == 0 && l4[7] == 0)
		return; /* IPv4 UDP without a checksum (RFC 768) */
	unsigned alen = a->family == AF_INET ? 4 : 16;
	uint32_t sum = inet_csum_add(a->src, alen, 0);
	sum = inet_csum_add(a->dst, alen, sum);
	sum += proto + (uint32_t)(l4_len >> 16) + (uint32_t)(l4_len & 0xffff);
	l4[at] = 0, l4[at + 1] = 0;
	uint16_t c = inet_csum_final(inet_csum_add(l4, l4_len, sum));
	if (c == 0 && proto == IPPROTO_UDP)
		c = 0xffff;
	l4[at] = (uint8_t)(c >> 8), l4[at + 1] = (uint8_t)c;
}

/* ---- the selector maps: a projection of the SA table --------------------- */

/* Writes ts's entry with `users` (deleting it at 0) in every interface's trie. 0 or -errno. */
static int sel_write(struct afxdp *dp, const struct child_ts *ts, uint32_t users)
{
	struct clear_v4_key k4 = { .prefixlen = ts->prefix_len };
	struct clear_v6_key k6 = { .prefixlen = ts->prefix_len };
	struct clear_sel v = { .sa_count = users };
	int err = 0;

	memcpy(k4.addr, &ts->addr.v4, 4);
	memcpy(k6.addr, ts->addr.v6.s6_addr, 16);
	for (unsigned f = 0; f < dp->n_ifs; f++) {
		struct clear_bpf *sk = dp->ifs[f].skel;
		int fd = bpf_map__fd(ts->family == AF_INET ? sk->maps.clear_v4 : sk->maps.clear_v6);
		const void *key = ts->family == AF_INET ? (const void *)&k4 : (const void *)&k6;
		int rc = users ? bpf_map_update_elem(fd, key, &v, BPF_ANY) : bpf_map_delete_elem(fd, key);
		if (rc && !(rc == -ENOENT && !users))
			err = rc;
	}
	return err;
}

static int sel_add(void *arg, const struct child_ts *ts, uint32_t others)
{
	int err = sel_write(arg, ts, others + 1);

	if (err)
		log_warn("afxdp: cannot write a selector map entry: %s", strerror(-err));
	return err;
}

static void sel_release(void *arg, const struct child_ts *ts, uint32_t others, bool rollback)
{
	int err = sel_write(arg, ts, others);

	if (err && !rollback)
		log_warn("afxdp: cannot update a selector map entry: %s", strerror(-err));
}

static const struct sa_set_hooks sel_hooks = { .add = sel_add, .release = sel_release };

/* ---- packets ------------------------------------------------------------- */

static void clear_output(struct afxdp *dp, const struct ip_addrs *a, const uint8_t *pkt, size_t len);

static int if_mac_mtu(struct afx_if *ifc);

/* Every interface's MAC and MTU, read again when older than AFX_LINK_TTL_MS (a failed read keeps them). */
static void links_refresh(struct afxdp *dp)
{
	uint64_t now = loop_now_ms(dp->loop);

	for (unsigned f = 0; f < dp->n_ifs; f++) {
		struct afx_if *ifc = &dp->ifs[f];
		if (now - ifc->mtu_at_ms < AFX_LINK_TTL_MS)
			continue;
		ifc->mtu_at_ms = now;
		(void)if_mac_mtu(ifc);
	}
}

/*
 * Before sealing a whole clear IP packet for sa (checksums complete): false
 * when it is not to be sealed, because it is too big for a UDP path and not
 * to be fragmented (the ICMP error goes back to the sender instead).
 */
static bool clear_fits(struct afxdp *dp, struct sa_set_sa *sa, uint8_t *ip, size_t ip_len)
{
	ssize_t n = sa_set_fit(sa, ip, ip_len, dp->icmp, sizeof(dp->icmp));
	struct ip_addrs ia;
	size_t il;

	if (n <= 0)
		return true;
	if (ip_addrs_parse(dp->icmp, (size_t)n, &ia, &il))
		clear_output(dp, &ia, dp->icmp, il);
	return false;
}

/* esp_batch's report, in order: a sealed packet onto its SA's stream. */
static void clear_sealed(void *arg, struct sa_set_sa *sa, const uint8_t *esp, ssize_t n)
{
	struct afxdp *dp = arg;

	if (n < 0) {
		*(n == -EKEYEXPIRED ? &dp->ctr.expired : &dp->ctr.send_errors) += 1;
		return;
	}
	dataplane_send_fn out = dp->queue ? dp->queue : dp->send;
	if (out(dp->send_arg, sa->conn, esp, (size_t)n) < 0)
		dp->ctr.send_errors++;
}

/*
 * One whole clear IP packet for sa, checksums complete, into the RX pass's
 * batch. stable: it stays in its UMEM frame until the pass ends, so it is
 * sealed from there; otherwise (a joined frame) it is copied in.
 */
static void clear_seal(struct afxdp *dp, struct sa_set_sa *sa, uint8_t *ip, size_t ip_len, bool stable)
{
	if (!clear_fits(dp, sa, ip, ip_len))
		return;
	if (stable) {
		esp_batch_seal(&dp->sealing, sa, ip, ip_len);
		return;
	}
	uint8_t *at = esp_batch_seal_place(&dp->sealing, sa, ip_len);
	if (!at) {
		dp->ctr.send_errors++;
		return;
	}
	memcpy(at, ip, ip_len);
	esp_batch_seal_placed(&dp->sealing, sa, at, ip_len);
}

/*
 * A packet bigger than its link: a TCP superpacket the kernel handed over
 * whole (generic XDP keeps the sender's GSO, as does native XDP on a veth with
 * GRO on), in several descriptors. Split into segments that fit the link and
 * the SA's path: each one's headers are made in the batch and sealed there
 * with its payload read where it lies in the frame. The sender's
 * segment size is not in the frame; the link's is what it would have used.
 * Anything else that big (UDP GSO) is dropped and counted.
 */
static void clear_superpacket(struct afxdp *dp, struct sa_set_sa *sa, uint8_t *ip, size_t ip_len,
			      const struct ip_addrs *a, unsigned mtu)
{
	struct gso_hdr h = { .gso_type = a->family == AF_INET ? GSO_TYPE_TCPV4 : GSO_TYPE_TCPV6,
			     .gso_size = (uint16_t)mtu };
	size_t max = sa->inner_max && sa->inner_max < mtu ? sa->inner_max : mtu;
	struct gso_split sp;

	if (gso_split_init(&sp, &h, ip, ip_len, max)) {
		dp->ctr.gso_drops++;
		return;
	}
	dp->ctr.gso_reads++;
	for (;;) {
		const uint8_t *pay;
		size_t hlen, plen;
		uint8_t *at = esp_batch_seal_place(&dp->sealing, sa, max);
		if (!at) {
			dp->ctr.send_errors++;
			return;
		}
		if (!(hlen = gso_split_next_apart(&sp, at, &pay, &plen)))
			return;
		dp->ctr.gso_segments++;
		/* Each fits the path (max): only a SYN would need its MSS clamped, and GSO makes none. */
		esp_batch_seal_placed_apart(&dp->sealing, sa, at, hlen, pay, plen);
	}
}

/*
 * One frame from an AF_XDP socket on ifc: strip Ethernet, seal, send on the SA's stream. stable: the
 * frame stays where it is until the RX pass ends (a UMEM frame; not x->gather).
 */
static void clear_frame(struct afxdp *dp, const struct afx_if *ifc, uint8_t *frame, size_t len, bool stable)
{
	struct ip_addrs a;
	struct sa_set_sa *sa;
	size_t ip_len;

	dp->ctr.rx_frames++;
	/* The program only steers untagged IPv4/IPv6; check again, the bytes are the wire's. */
	if (len < ETH_HLEN || ((frame[12] << 8 | frame[13]) != ETH_P_IP && (frame[12] << 8 | frame[13]) != ETH_P_IPV6) ||
	    !ip_addrs_parse(frame + ETH_HLEN, len - ETH_HLEN, &a, &ip_len)) {
		dp->ctr.malformed++;
		return;
	}
	sa = sa_set_lookup(&dp->set, &a);
	if (!sa) {
		dp->ctr.no_sa++;
		return;
	}
	if (!sa->conn) {
		dp->ctr.no_stream++;
		return;
	}
	if (ip_len > ifc->mtu) {
		clear_superpacket(dp, sa, frame + ETH_HLEN, ip_len, &a, ifc->mtu);
		/* Its segments are sealed from the frame: one the next frame reuses goes out first. */
		if (!stable)
			esp_batch_flush(&dp->sealing);
		return;
	}
	l4_csum_complete(frame + ETH_HLEN, ip_len, &a);
	clear_seal(dp, sa, frame + ETH_HLEN, ip_len, stable);
}

/*
 * One RX descriptor: a frame of its own, or a part of a multi-buffer one
 * (XDP_PKT_CONTD on all but its last), joined in x->gather first.
 */
static void rx_desc(struct afx_xsk *x, const struct xdp_desc *d)
{
	uint8_t *data = xsk_umem__get_data(x->area, d->addr);
	bool more = d->options & XDP_PKT_CONTD;

	if (!more && !x->gather_len && !x->gather_bad) {
		clear_frame(x->dp, x->ifc, data, d->len, true);
		return;
	}
	if (!x->gather_bad && d->len <= sizeof(x->gather) - x->gather_len) {
		memcpy(x->gather + x->gather_len, data, d->len);
		x->gather_len += d->len;
	} else {
		x->gather_bad = true;
	}
	if (more)
		return;
	if (x->gather_bad)
		x->dp->ctr.gso_drops++;
	else
		clear_frame(x->dp, x->ifc, x->gather, x->gather_len, false);
	x->gather_len = 0;
	x->gather_bad = false;
}

/*
 * One kernel wakeup for the descriptors submitted since the last one, when the
 * ring asks for it (XDP_USE_NEED_WAKEUP). In copy mode the sendto is what
 * transmits, at most AFX_KICK_BATCH descriptors a call (-EAGAIN: more left).
 */
static void kick_tx(struct afx_xsk *x)
{
	unsigned calls = x->tx_unkicked / AFX_KICK_BATCH + 1;

	if (!x->tx_unkicked)
		return;
	x->tx_unkicked = 0;
	if (x->zerocopy && !xsk_ring_prod__needs_wakeup(&x->tx))
		return;
	for (unsigned i = 0; i < calls; i++)
		if (sendto(xsk_socket__fd(x->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0 || errno != EAGAIN)
			break;
}

static void reclaim_tx(struct afx_xsk *x)
{
	uint32_t idx = 0; /* set by peek only when it returns > 0 */
	unsigned n = xsk_ring_cons__peek(&x->comp, AFX_RING, &idx);

	for (unsigned i = 0; i < n; i++)
		x->tx_free[x->n_tx_free++] = *xsk_ring_cons__comp_addr(&x->comp, idx + i);
	if (n)
		xsk_ring_cons__release(&x->comp, n);
}

/*
 * The kernel copied the frame into the UMEM, often on the other CPU: its
 * first reader (the checksum) used to stall on every cache line. Asking for
 * the next frame while the current one is sealed hides that latency.
 */
static void prefetch_frame(const struct afx_xsk *x, const struct xdp_desc *d)
{
	const uint8_t *f = xsk_umem__get_data(x->area, d->addr);

	for (uint32_t off = 0; off < d->len; off += 64)
		__builtin_prefetch(f + off);
}

/* One pass over at most AFX_BATCH RX descriptors; how many there were. */
static unsigned xsk_rx_pass(struct afx_xsk *x)
{
	uint32_t idx_rx, idx_fill;

	unsigned n = xsk_ring_cons__peek(&x->rx, AFX_BATCH, &idx_rx);
	if (!n)
		return 0;
	prefetch_frame(x, xsk_ring_cons__rx_desc(&x->rx, idx_rx));
	for (unsigned i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx_rx + i);
		if (i + 1 < n)
			prefetch_frame(x, xsk_ring_cons__rx_desc(&x->rx, idx_rx + i + 1));
		rx_desc(x, d);
	}
	/* Sealed together, then out in one write per stream; after that the frames may go back. */
	esp_batch_flush(&x->dp->sealing);
	if (x->dp->flush)
		x->dp->flush(x->dp->send_arg);
	esp_batch_release(&x->dp->sealing);
	/* Every RX frame goes straight back to the fill ring: frames in the fill and RX rings are
	 * exactly the RX half, so the n just consumed always fit. */
	if (xsk_ring_prod__reserve(&x->fill, n, &idx_fill) != n) {
		log_rl(&x->dp->set.rl, LOG_LVL_ERROR, "afxdp: %s queue %u: fill ring full", x->ifc->name, x->queue);
		xsk_ring_cons__release(&x->rx, n);
		return n;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t addr = xsk_ring_cons__rx_desc(&x->rx, idx_rx + i)->addr;
		*xsk_ring_prod__fill_addr(&x->fill, idx_fill + i) = xsk_umem__extract_addr(addr);
	}
	xsk_ring_prod__submit(&x->fill, n);
	xsk_ring_cons__release(&x->rx, n);
	return n;
}

static void xsk_readable(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct afx_xsk *x = container_of(io, struct afx_xsk, io);

	(void)loop, (void)events;
	links_refresh(x->dp);
	reclaim_tx(x);
	for (unsigned p = 0; p < AFX_RX_PASSES && xsk_rx_pass(x) == AFX_BATCH; p++)
		;
	if (xsk_ring_prod__needs_wakeup(&x->fill))
		(void)recvfrom(xsk_socket__fd(x->xsk), NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

static struct afx_if *if_by_index(struct afxdp *dp, int ifindex)
{
	for (unsigned f = 0; f < dp->n_ifs; f++)
		if (dp->ifs[f].ifindex == ifindex)
			return &dp->ifs[f];
	return NULL;
}

/* The Ethernet header from ifc to the next hop's mac. */
static void eth_build(uint8_t *f, const struct afx_if *ifc, const uint8_t mac[ETH_ALEN], uint8_t family)
{
	uint16_t type = family == AF_INET ? ETH_P_IP : ETH_P_IPV6;

	memcpy(f, mac, ETH_ALEN);
	memcpy(f + ETH_ALEN, ifc->mac, ETH_ALEN);
	f[12] = (uint8_t)(type >> 8), f[13] = (uint8_t)type;
}

/* Ethernet header for the next hop, then the packet, on the interface's first socket. 0 or -errno. */
static int xsk_send(struct afx_if *ifc, const uint8_t mac[ETH_ALEN], const uint8_t *pkt, size_t len,
		    uint8_t family)
{
	struct afx_xsk *x = ifc->xsks[0];
	uint32_t idx = 0; /* set by peek only when it returns > 0 */

	if (len > AFX_TX_MAX)
		return -EMSGSIZE;
	reclaim_tx(x);
	if (!x->n_tx_free && x->tx_unkicked) {
		/* Every frame is in flight: let the kernel send (and complete) what waits. */
		kick_tx(x);
		reclaim_tx(x);
	}
	if (!x->n_tx_free || xsk_ring_prod__reserve(&x->tx, 1, &idx) != 1)
		return -ENOBUFS;
	uint64_t addr = x->tx_free[--x->n_tx_free];
	uint8_t *f = xsk_umem__get_data(x->area, addr);
	eth_build(f, ifc, mac, family);
	memcpy(f + ETH_HLEN, pkt, len);
	*xsk_ring_prod__tx_desc(&x->tx, idx) = (struct xdp_desc){ .addr = addr, .len = (uint32_t)(ETH_HLEN + len) };
	xsk_ring_prod__submit(&x->tx, 1);
	x->tx_unkicked++;
	return 0;
}

/* The kernel routes it and resolves the neighbour (IPPROTO_RAW: the header is ours). */
static int kernel_send(struct afxdp *dp, const struct ip_addrs *a, const uint8_t *pkt, size_t len)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd;

	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a->dst, 4);
		sl = sizeof(*s4), fd = dp->raw4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a->dst, 16);
		sl = sizeof(*s6), fd = dp->raw6;
	}
	if (fd < 0)
		return -EAFNOSUPPORT;
	return sendto(fd, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) == (ssize_t)len ? 0 : -errno;
}

static void clear_output(struct afxdp *dp, const struct ip_addrs *a, const uint8_t *pkt, size_t len)
{
	uint8_t mac[ETH_ALEN];
	int oif = 0;
	int err = neigh_lookup(&dp->neigh, a->family, a->dst, loop_now_ms(dp->loop), &oif, mac);
	struct afx_if *ifc = oif ? if_by_index(dp, oif) : NULL;

	/* Bigger than the link: the kernel fragments it or answers with ICMP, as for TUN. */
	if (err == 0 && ifc && ifc->n_xsks && len <= ifc->mtu && xsk_send(ifc, mac, pkt, len, a->family) == 0) {
		dp->ctr.tx_xsk++;
		return;
	}
	if (err == -EHOSTUNREACH) {
		dp->ctr.tx_errors++;
		return;
	}
	/* Neighbour not resolved, a route out of another interface, too big, a full ring: the kernel's way. */
	if (kernel_send(dp, a, pkt, len) == 0)
		dp->ctr.tx_kernel++;
	else
		dp->ctr.tx_errors++;
}

/*
 * A TCP superpacket through the packet socket behind a vnet header: one skb
 * the kernel segments at the far end, or a veth hands over whole, where
 * AF_XDP would send each segment as its own frame. 0 or -errno.
 */
static int packet_send(struct afxdp *dp, const struct afx_if *ifc, const uint8_t mac[ETH_ALEN],
		       const struct gso_hdr *h, const uint8_t *pkt, size_t len, uint8_t family)
{
	uint8_t vh[GSO_VNET_HDR_LEN], eth[ETH_HLEN];
	struct gso_hdr fh = *h;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = ifc->ifindex,
				   .sll_protocol = htons(family == AF_INET ? ETH_P_IP : ETH_P_IPV6) };
	struct iovec iov[3] = { { vh, sizeof(vh) }, { eth, sizeof(eth) }, { (void *)pkt, len } };
	struct msghdr m = { .msg_name = &sll, .msg_namelen = sizeof(sll), .msg_iov = iov, .msg_iovlen = 3 };

	/* Offsets count from the frame's start: the Ethernet header is ours here, not the TUN's IP-first. */
	fh.hdr_len = (uint16_t)(fh.hdr_len + ETH_HLEN);
	fh.csum_start = (uint16_t)(fh.csum_start + ETH_HLEN);
	gso_hdr_write(vh, &fh);
	eth_build(eth, ifc, mac, family);
	return sendmsg(dp->packet_fd, &m, MSG_DONTWAIT) == (ssize_t)(sizeof(vh) + sizeof(eth) + len) ? 0 : -errno;
}

/* A superpacket of segs opened segments (gso_flows): whole to a known neighbour, else segment by segment. */
static void superpacket_output(struct afxdp *dp, const struct ip_addrs *a, const struct gso_hdr *h, uint8_t *pkt,
			       size_t len, unsigned segs)
{
	uint8_t mac[ETH_ALEN];
	int oif = 0;
	int err = neigh_lookup(&dp->neigh, a->family, a->dst, loop_now_ms(dp->loop), &oif, mac);
	struct afx_if *ifc = oif ? if_by_index(dp, oif) : NULL;

	/* Its segments must fit the link as they are: nothing on the way cuts them smaller. */
	if (err == 0 && ifc && (size_t)h->hdr_len + h->gso_size <= ifc->mtu) {
		/* The flow's earlier packets may wait in a TX ring: they go first. */
		for (unsigned i = 0; i < ifc->n_xsks; i++)
			kick_tx(ifc->xsks[i]);
		if (packet_send(dp, ifc, mac, h, pkt, len, a->family) == 0) {
			dp->ctr.coalesced++;
			dp->ctr.coalesced_segments += segs;
			return;
		}
	}
	/* Neighbour not resolved, a route out of another interface, the socket refused: as they came. */
	struct gso_split sp;
	uint8_t *seg;
	size_t slen;
	if (gso_split_init(&sp, h, pkt, len, 0)) {
		dp->ctr.tx_errors++;
		return;
	}
	while ((seg = gso_split_next_inplace(&sp, &slen)))
		clear_output(dp, a, seg, slen);
}

/* gso_flows' writer: h NULL or a lone segment, the usual way; a superpacket, superpacket_output. */
static void co_write(void *arg, const struct gso_hdr *h, uint8_t *pkt, size_t len, unsigned segs)
{
	struct afxdp *dp = arg;
	struct ip_addrs a;
	size_t ip_len;

	if (!ip_addrs_parse(pkt, len, &a, &ip_len)) { /* opened and checked before: not expected */
		dp->ctr.tx_errors++;
		return;
	}
	if (h && h->gso_type != GSO_TYPE_NONE)
		superpacket_output(dp, &a, h, pkt, ip_len, segs);
	else
		clear_output(dp, &a, pkt, ip_len);
}

void afxdp_tx_flush(struct afxdp *dp)
{
	links_refresh(dp);
	esp_batch_flush(&dp->opening);
	gso_flows_flush(&dp->flows);
	for (unsigned f = 0; f < dp->n_ifs; f++)
		for (unsigned i = 0; i < dp->ifs[f].n_xsks; i++)
			kick_tx(dp->ifs[f].xsks[i]);
}

void afxdp_esp_input(struct afxdp *dp, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	afxdp_esp_queue(dp, c, esp, len);
	afxdp_tx_flush(dp);
}

void afxdp_esp_queue(struct afxdp *dp, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	(void)c; /* any stream: after a reconnection the peer may switch before IKE tells us */
	esp_batch_open(&dp->opening, esp, len);
}

/* esp_batch's report, in order: an opened packet to the LAN. */
static void esp_opened(void *arg, uint8_t *pkt, ssize_t n, const struct ip_addrs *a)
{
	struct afxdp *dp = arg;

	if (n == -EKEYEXPIRED)
		dp->ctr.expired++;
	else if (n == -EACCES)
		dp->ctr.policy_drops++;
	if (n <= 0)
		return;
	/* TCP segments wait for the end of afxdp_tx_flush, joined; anything else keeps its place in its flow. */
	if (dp->packet_fd >= 0)
		gso_flows_input(&dp->flows, pkt, (size_t)n);
	else
		clear_output(dp, a, pkt, (size_t)n);
}

void afxdp_set_workers(struct afxdp *dp, struct workers *w)
{
	esp_batch_set_workers(&dp->sealing, w);
	esp_batch_set_workers(&dp->opening, w);
}

/* ---- CHILD SAs ----------------------------------------------------------- */

_Static_assert(offsetof(struct afxdp, set) == 0, "SA_SET_CHILD_OPS takes the afxdp as its set");
const struct child_sa_ops afxdp_child_ops = SA_SET_CHILD_OPS;

/* ---- sockets and programs ------------------------------------------------ */

static void xsk_close(struct afx_xsk *x)
{
	if (!x)
		return;
	if (x->watching)
		loop_io_del(x->dp->loop, &x->io);
	if (x->xsk)
		xsk_socket__delete(x->xsk);
	if (x->umem)
		xsk_umem__delete(x->umem);
	if (x->area) {
		OPENSSL_cleanse(x->area, (size_t)AFX_FRAMES * AFX_FRAME_SIZE);
		munmap(x->area, (size_t)AFX_FRAMES * AFX_FRAME_SIZE);
	}
	OPENSSL_cleanse(x->gather, sizeof(x->gather));
	free(x);
}

/*
 * One socket on ifc's queue q: zero-copy if the driver can, else copy mode;
 * multi-buffer (XDP_USE_SG) where the kernel has it, so that a frame bigger
 * than a UMEM frame (a GSO superpacket under generic XDP) arrives in parts
 * rather than being dropped. 0 or -errno.
 */
static int xsk_open(struct afxdp *dp, struct afx_if *ifc, uint32_t q)
{
	struct xsk_umem_config ucfg = { .fill_size = AFX_RING, .comp_size = AFX_RING,
					.frame_size = AFX_FRAME_SIZE,
					.frame_headroom = XSK_UMEM__DEFAULT_FRAME_HEADROOM };
	struct xsk_socket_config cfg = { .rx_size = AFX_RING, .tx_size = AFX_RING,
					 .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
					 .bind_flags = XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY };
	size_t size = (size_t)AFX_FRAMES * AFX_FRAME_SIZE;
	struct afx_xsk *x = calloc(1, sizeof(*x));
	uint32_t idx = 0; /* set by peek only when it returns > 0 */
	int err;

	if (!x)
		return -ENOMEM;
	x->dp = dp, x->ifc = ifc, x->queue = q;
	x->area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (x->area == MAP_FAILED) {
		x->area = NULL;
		err = -errno;
		goto fail;
	}
	err = xsk_umem__create(&x->umem, x->area, size, &x->fill, &x->comp, &ucfg);
	if (err)
		goto fail;
	static const uint32_t binds[] = { XDP_ZEROCOPY | XDP_USE_SG, XDP_ZEROCOPY, XDP_COPY | XDP_USE_SG, XDP_COPY };
	err = -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(binds) && err; i++) {
		cfg.bind_flags = XDP_USE_NEED_WAKEUP | binds[i];
		err = xsk_socket__create(&x->xsk, ifc->name, q, x->umem, &x->rx, &x->tx, &cfg);
		if (!err) {
			x->zerocopy = binds[i] & XDP_ZEROCOPY;
			x->sg = binds[i] & XDP_USE_SG;
		}
	}
	if (err)
		goto fail;
	if (xsk_ring_prod__reserve(&x->fill, AFX_RING, &idx) != AFX_RING) {
		err = -ENOBUFS;
		goto fail;
	}
	for (unsigned i = 0; i < AFX_RING; i++)
		*xsk_ring_prod__fill_addr(&x->fill, idx + i) = (uint64_t)i * AFX_FRAME_SIZE;
	xsk_ring_prod__submit(&x->fill, AFX_RING);
	for (unsigned i = 0; i < AFX_RING; i++)
		x->tx_free[x->n_tx_free++] = (uint64_t)(AFX_RING + i) * AFX_FRAME_SIZE;

	int fd = xsk_socket__fd(x->xsk);
	err = bpf_map_update_elem(bpf_map__fd(ifc->skel->maps.clear_xsks), &q, &fd, BPF_ANY);
	if (err)
		goto fail;
	err = loop_io_add(dp->loop, &x->io, fd, EPOLLIN, xsk_readable);
	if (err) {
		err = err < 0 ? err : -err;
		goto fail;
	}
	x->watching = true;
	ifc->xsks[ifc->n_xsks++] = x;
	return 0;

fail:
	xsk_close(x);
	return err;
}

/*
 * RX queues the device has (ETHTOOL_GCHANNELS: rx + combined), at least 1.
 * ethtool rather than /sys/class/net, which shows the namespace sysfs was
 * mounted in, not necessarily ours.
 */
static unsigned rx_queue_count(const char *ifname)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr = { .ifr_data = (void *)&ch };
	unsigned n = 0;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return 1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(s, SIOCETHTOOL, &ifr) == 0)
		n = ch.rx_count + ch.combined_count;
	close(s);
	return n ? n : 1;
}

/* The interface's MAC and MTU. 0 or -errno. */
static int if_mac_mtu(struct afx_if *ifc)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifc->name);
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
		err = -errno;
	} else {
		memcpy(ifc->mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
		if (ioctl(s, SIOCGIFMTU, &ifr) < 0)
			err = -errno;
		else
			ifc->mtu = (unsigned)ifr.ifr_mtu;
	}
	close(s);
	return err;
}

static const char *const pinned_maps[] = { "clear_v4", "clear_v6", "clear_xsks", "clear_counters" };

static void if_unpin(struct afx_if *ifc)
{
	char path[320];

	if (!ifc->pin_dir[0])
		return;
	for (size_t i = 0; i < ARRAY_SIZE(pinned_maps); i++) {
		snprintf(path, sizeof(path), "%s/%s", ifc->pin_dir, pinned_maps[i]);
		unlink(path);
	}
	rmdir(ifc->pin_dir); /* fails harmlessly when steer's pins share it */
	ifc->pin_dir[0] = '\0';
}

static int if_pin(struct afx_if *ifc, const char *pin_root)
{
	char path[320];

	if (snprintf(ifc->pin_dir, sizeof(ifc->pin_dir), "%s/%s", pin_root, ifc->name) >= (int)sizeof(ifc->pin_dir))
		return -ENAMETOOLONG;
	/* Without ike-tcp-service no steering made the root: this dataplane may be its only user. */
	if ((mkdir(pin_root, 0700) < 0 && errno != EEXIST) || (mkdir(ifc->pin_dir, 0700) < 0 && errno != EEXIST))
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(pinned_maps); i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(ifc->skel->obj, pinned_maps[i]);
		snprintf(path, sizeof(path), "%s/%s", ifc->pin_dir, pinned_maps[i]);
		unlink(path); /* a stale pin from a previous run: the SA table is rebuilt whole */
		int err = m ? bpf_map__pin(m, path) : -ENOENT;
		if (err)
			return err;
	}
	return 0;
}

static void if_close(struct afx_if *ifc)
{
	for (unsigned i = 0; i < ifc->n_xsks; i++)
		xsk_close(ifc->xsks[i]);
	ifc->n_xsks = 0;
	if (ifc->xdp_flags) {
		LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = bpf_program__fd(ifc->skel->progs.xdp_clear));
		bpf_xdp_detach(ifc->ifindex, ifc->xdp_flags | XDP_FLAGS_REPLACE, &o);
		ifc->xdp_flags = 0;
	}
	if_unpin(ifc);
	clear_bpf__destroy(ifc->skel);
	ifc->skel = NULL;
}

/*
 * clear.bpf.c, loaded as able to see multi-buffer frames (BPF_F_XDP_HAS_FRAGS)
 * where the kernel has them: it reads only the headers, in the first buffer.
 * 0 or -errno.
 */
static int clear_load(struct afx_if *ifc)
{
	for (int frags = 1; frags >= 0; frags--) {
		ifc->skel = clear_bpf__open();
		if (!ifc->skel)
			return errno ? -errno : -EINVAL;
		struct bpf_program *p = ifc->skel->progs.xdp_clear;
		if (frags)
			bpf_program__set_flags(p, bpf_program__flags(p) | BPF_F_XDP_HAS_FRAGS);
		int err = clear_bpf__load(ifc->skel);
		if (!err)
			return 0;
		clear_bpf__destroy(ifc->skel);
		ifc->skel = NULL;
		if (!frags)
			return err < 0 ? err : -err;
	}
	return -EINVAL;
}

static int if_open(struct afxdp *dp, struct afx_if *ifc, const char *name, const char *pin_root)
{
	int err;

	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	snprintf(ifc->name, sizeof(ifc->name), "%s", name);
	ifc->ifindex = (int)if_nametoindex(name);
	if (!ifc->ifindex)
		return -errno;
	err = if_mac_mtu(ifc);
	if (err)
		return err;
	ifc->mtu_at_ms = loop_now_ms(dp->loop);
	err = clear_load(ifc);
	if (err)
		return err;
	if (pin_root && *pin_root) {
		err = if_pin(ifc, pin_root);
		if (err)
			log_warn("afxdp: %s: cannot pin maps under %s: %s", name, pin_root, strerror(-err));
	}
	/* xdp-mode: native (veth has it), falling back to generic (skb) mode when the driver has none. */
	int prog = bpf_program__fd(ifc->skel->progs.xdp_clear);
	static const uint32_t modes[] = { XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE };
	for (size_t i = dp->generic ? 1 : 0; i < ARRAY_SIZE(modes) && !ifc->xdp_flags; i++) {
		err = bpf_xdp_attach(ifc->ifindex, prog, modes[i] | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
		if (!err)
			ifc->xdp_flags = modes[i];
		else if (modes[i] == XDP_FLAGS_DRV_MODE)
			log_warn("afxdp: %s: native XDP: %s; trying generic mode", name, strerror(-err));
	}
	if (!ifc->xdp_flags)
		return err;
	unsigned nq = rx_queue_count(name);
	if (nq > CLEAR_QUEUES_MAX)
		nq = CLEAR_QUEUES_MAX;
	for (uint32_t q = 0; q < nq; q++) {
		err = xsk_open(dp, ifc, q);
		if (err) {
			log_error("afxdp: %s: AF_XDP socket on queue %u: %s", name, q, strerror(-err));
			return err;
		}
	}
	log_info("afxdp: %s: XDP %s mode, %u AF_XDP socket(s), %s, need_wakeup%s", name,
		 ifc->xdp_flags == XDP_FLAGS_DRV_MODE ? "native" : "generic", nq,
		 ifc->xsks[0]->zerocopy ? "zero-copy" : "copy mode", ifc->xsks[0]->sg ? ", multi-buffer" : "");
	return 0;
}

struct afxdp *dataplane_afxdp_new(struct loop *loop, const char *const *ifnames, size_t n,
				  const char *pin_root, bool generic, dataplane_send_fn send, void *send_arg)
{
	struct afxdp *dp;
	int err;

	if (!loop || !ifnames || n == 0 || n > AFXDP_MAX_IFS || !send)
		return NULL;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return NULL;
	dp->loop = loop;
	dp->send = send;
	dp->send_arg = send_arg;
	dp->generic = generic;
	dp->neigh.fd = -1;
	gso_flows_init(&dp->flows, dp->cobuf, co_write, dp);
	esp_batch_init_seal(&dp->sealing, &dp->set, clear_sealed, dp);
	esp_batch_init_open(&dp->opening, &dp->set, true, esp_opened, dp);
	dp->packet_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (dp->packet_fd >= 0 &&
	    setsockopt(dp->packet_fd, SOL_PACKET, PACKET_VNET_HDR, &(int){ 1 }, sizeof(int)) < 0) {
		close(dp->packet_fd);
		dp->packet_fd = -1;
	}
	if (dp->packet_fd < 0)
		log_warn("afxdp: packet socket with vnet headers: %s; opened TCP leaves segment by segment",
			 strerror(errno));
	dp->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	dp->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (dp->raw4 < 0) {
		log_error("afxdp: raw IPv4 socket: %s", strerror(errno));
		goto fail;
	}
	if (dp->raw6 < 0)
		log_warn("afxdp: raw IPv6 socket: %s; IPv6 neighbour misses will be dropped", strerror(errno));
	err = sa_set_init(&dp->set, "afxdp", &sel_hooks, dp);
	if (err)
		goto fail;
	err = neigh_open(&dp->neigh);
	if (err) {
		log_error("afxdp: rtnetlink socket: %s", strerror(-err));
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct afx_if *ifc = &dp->ifs[dp->n_ifs++];
		err = if_open(dp, ifc, ifnames[i], pin_root);
		if (err) {
			log_error("afxdp: %s: cannot set up AF_XDP: %s", ifnames[i], strerror(-err));
			goto fail;
		}
	}
	return dp;

fail:
	afxdp_free(dp);
	return NULL;
}

void afxdp_free(struct afxdp *dp)
{
	if (!dp)
		return;
	sa_set_free(&dp->set); /* its map entries need the skeletons */
	for (unsigned f = 0; f < dp->n_ifs; f++)
		if_close(&dp->ifs[f]);
	neigh_close(&dp->neigh);
	if (dp->raw4 >= 0)
		close(dp->raw4);
	if (dp->raw6 >= 0)
		close(dp->raw6);
	if (dp->packet_fd >= 0)
		close(dp->packet_fd);
	esp_batch_wipe(&dp->sealing);
	esp_batch_wipe(&dp->opening);
	OPENSSL_cleanse(dp->cobuf, sizeof(dp->cobuf));
	OPENSSL_cleanse(dp->icmp, sizeof(dp->icmp));
	free(dp);
}

/* esp_batch_hold's: the streams are done with the sealed packets they held (written, or copied). */
static void tx_release(void *arg)
{
	struct afxdp *dp = arg;

	dp->flush(dp->send_arg);
}

void afxdp_set_batch(struct afxdp *dp, dataplane_send_fn queue, dataplane_flush_fn flush)
{
	dp->queue = flush ? queue : NULL;
	dp->flush = queue ? flush : NULL;
	/* queue holds the sealed packets by reference until flush */
	esp_batch_hold(&dp->sealing, dp->queue ? tx_release : NULL, DATAPLANE_QUEUE_LEAD);
}

void afxdp_counters(const struct afxdp *dp, struct afxdp_counters *out)
{
	*out = dp->ctr;
}

int afxdp_bpf_counters(const struct afxdp *dp, uint64_t out[CLEAR_CNT_MAX])
{
	int ncpus = libbpf_num_possible_cpus();

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	uint64_t v[ncpus];
	memset(out, 0, sizeof(uint64_t) * CLEAR_CNT_MAX);
	for (unsigned f = 0; f < dp->n_ifs; f++) {
		for (uint32_t k = 0; k < CLEAR_CNT_MAX; k++) {
			int err = bpf_map_lookup_elem(bpf_map__fd(dp->ifs[f].skel->maps.clear_counters), &k, v);
			if (err)
				return err;
			for (int c = 0; c < ncpus; c++)
				out[k] += v[c];
		}
	}
	return 0;
}

unsigned afxdp_sa_count(const struct afxdp *dp)
{
	return dp->set.n;
}

bool afxdp_all_native(const struct afxdp *dp)
{
	for (unsigned f = 0; f < dp->n_ifs; f++)
		if (dp->ifs[f].xdp_flags != XDP_FLAGS_DRV_MODE)
			return false;
	return true;
}

unsigned afxdp_socket_count(const struct afxdp *dp, unsigned *zerocopy)
{
	unsigned n = 0, z = 0;

	for (unsigned f = 0; f < dp->n_ifs; f++)
		for (unsigned i = 0; i < dp->ifs[f].n_xsks; i++, n++)
			z += dp->ifs[f].xsks[i]->zerocopy;
	if (zerocopy)
		*zerocopy = z;
	return n;
}
