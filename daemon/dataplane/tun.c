/*
 * The TUN dataplane: the kernel routes each CHILD SA's remote selectors into
 * a TUN device; what it reads there is sealed into the SA's ESP and sent on
 * the SA's RFC 9329 stream, and ESP from a stream is opened, checked against
 * the SA's selectors (RFC 4301 section 5.2) and written back to the TUN.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <net/if.h>
#include <openssl/crypto.h>

#include "iketcp/buf.h"
#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "dataplane/dataplane.h"
#include "dataplane/esp_batch.h"
#include "dataplane/gso.h"
#include "dataplane/gso_flows.h"
#include "dataplane/route.h"
#include "dataplane/sa_set.h"
#include "dataplane/tun_dev.h"
#include "loop.h"

#define DP_TUN_MTU 1500
#define DP_BATCH 64 /* reads per wakeup, so one busy TUN cannot starve the streams */
#define DP_PKT_MAX 65535
#define DP_FLUSH_BYTES (256 * 1024) /* sealed bytes queued before a flush: below the stream's queue limit */

_Static_assert(DP_PKT_MAX >= GSO_PKT_MAX, "a superpacket fits the packet buffers");

struct dataplane {
	struct sa_set set; /* first: the child_sa_ops arg is both */
	struct loop *loop;
	struct loop_io io;
	bool watching;
	int tun_fd, ifindex;
	char ifname[IFNAMSIZ];
	bool vnet; /* IFF_VNET_HDR: every read and write starts with a virtio_net_hdr (gso.h) */
	bool in_held; /* the sealing batch reads segment payloads from dp->in: flush before reading again */
	dataplane_send_fn send, queue;
	dataplane_flush_fn flush;
	void *send_arg;
	size_t queued; /* bytes given to queue since the last flush */
	struct route_sock rs;
	struct dataplane_counters ctr;
	struct gso_flows flows; /* opened TCP segments of this stream read, joined (in cobuf) */
	struct esp_batch sealing; /* what one wakeup reads from the TUN, sealed together */
	struct esp_batch opening; /* ESP of one stream read, opened together */
	/* Per-packet buffers, allocated once: a read with a vnet header (a superpacket, split into the
	 * batch), an ICMP error for a packet too big for its path, the superpacket being coalesced. */
	uint8_t in[GSO_VNET_HDR_LEN + DP_PKT_MAX + 64]; /* a GSO skb is <= 64 KiB; margin, not trust */
	uint8_t icmp[DP_PKT_MAX];
	uint8_t cobuf[GSO_FLOWS][GSO_PKT_MAX];
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

/* A packet to the TUN, behind a vnet header (h, or none: GSO_TYPE_NONE) when the device has them. */
static void tun_write(struct dataplane *dp, const struct gso_hdr *h, const uint8_t *pkt, size_t len)
{
	static const struct gso_hdr plain = { .gso_type = GSO_TYPE_NONE };
	uint8_t vh[GSO_VNET_HDR_LEN];
	struct iovec iov[2] = { { vh, sizeof(vh) }, { (void *)pkt, len } };
	ssize_t want = (ssize_t)len;

	if (dp->vnet) {
		gso_hdr_write(vh, h ? h : &plain);
		want += (ssize_t)sizeof(vh);
	}
	if (writev(dp->tun_fd, dp->vnet ? iov : iov + 1, dp->vnet ? 2 : 1) != want)
		dp->ctr.tun_write_errors++;
}

/* Seals what the wakeup read; after that dp->in may be read into again. */
static void sealing_flush(struct dataplane *dp)
{
	esp_batch_flush(&dp->sealing);
	dp->in_held = false;
}

/* Sends what the batch queued, one write per stream. */
static void tx_flush_streams(struct dataplane *dp)
{
	if (dp->flush && dp->queued) {
		dp->flush(dp->send_arg);
		dp->queued = 0;
	}
}

/* esp_batch_hold's: the streams are done with the sealed packets they held (written, or copied). */
static void tx_release(void *arg)
{
	tx_flush_streams(arg);
}

/* The end of a wakeup: everything sealed and sent, the batch's room free again. */
static void tx_done(struct dataplane *dp)
{
	sealing_flush(dp);
	tx_flush_streams(dp);
	esp_batch_release(&dp->sealing);
}

/* esp_batch's report, in order: a sealed packet onto its SA's stream. */
static void tun_sealed(void *arg, struct sa_set_sa *sa, const uint8_t *esp, ssize_t n)
{
	struct dataplane *dp = arg;

	if (n < 0) {
		*(n == -EKEYEXPIRED ? &dp->ctr.expired : &dp->ctr.send_errors) += 1;
		return;
	}
	if (dp->queue) {
		if (dp->queue(dp->send_arg, sa->conn, esp, (size_t)n) < 0)
			dp->ctr.send_errors++;
		else if ((dp->queued += (size_t)n) >= DP_FLUSH_BYTES)
			tx_flush_streams(dp);
	} else if (dp->send(dp->send_arg, sa->conn, esp, (size_t)n) < 0) {
		dp->ctr.send_errors++;
	}
}

/*
 * One clear packet for sa (a whole IP packet, checksums complete), written
 * into the batch at pkt (esp_batch_seal_place): sealed there at the flush.
 */
static void tun_packet_sa(struct dataplane *dp, struct sa_set_sa *sa, uint8_t *pkt, size_t len)
{
	if (!sa->conn) {
		dp->ctr.no_stream++;
		return;
	}
	/* Too big for a UDP path and not to be fragmented: the ICMP error goes back in through the TUN. */
	ssize_t n = sa_set_fit(sa, pkt, len, dp->icmp, sizeof(dp->icmp));
	if (n > 0) {
		tun_write(dp, NULL, dp->icmp, (size_t)n);
		return;
	}
	esp_batch_seal_placed(&dp->sealing, sa, pkt, len);
}

static struct sa_set_sa *tun_lookup(struct dataplane *dp, const uint8_t *pkt, size_t len)
{
	struct ip_addrs a;
	struct sa_set_sa *sa;

	if (!ip_addrs_parse(pkt, len, &a, NULL) || !(sa = sa_set_lookup(&dp->set, &a))) {
		dp->ctr.no_sa++;
		return NULL;
	}
	return sa;
}

/* One packet as read from a TUN without vnet headers, into the batch at pkt. */
static void tun_packet(struct dataplane *dp, uint8_t *pkt, size_t len)
{
	struct sa_set_sa *sa = tun_lookup(dp, pkt, len);

	if (sa)
		tun_packet_sa(dp, sa, pkt, len);
}

/* A copy of a packet in the batch, for tun_packet_sa (its SA when known); NULL when the batch has no room (counted). */
static uint8_t *tun_place(struct dataplane *dp, const struct sa_set_sa *sa, size_t cap)
{
	uint8_t *at = esp_batch_seal_place(&dp->sealing, sa, cap);

	if (!at)
		dp->ctr.send_errors++;
	return at;
}

/*
 * One read from a TUN with vnet headers (dp->in, n bytes): a superpacket is
 * split into segments, each sealed on its own with its headers made in the
 * batch and its payload read where it lies; its segments share their
 * addresses, so one lookup serves them all.
 */
static void tun_vnet_packet(struct dataplane *dp, size_t n)
{
	struct gso_hdr h;
	struct gso_split sp;
	struct sa_set_sa *sa;
	uint8_t *pkt = dp->in + GSO_VNET_HDR_LEN, *at;
	size_t len;

	if (gso_hdr_parse(dp->in, n, &h)) {
		dp->ctr.gso_drops++;
		return;
	}
	len = n - GSO_VNET_HDR_LEN;
	if (h.gso_type == GSO_TYPE_NONE) {
		if ((h.flags & GSO_F_NEEDS_CSUM) && gso_csum_complete(pkt, len, h.csum_start, h.csum_offset)) {
			dp->ctr.gso_drops++;
			return;
		}
		if ((sa = tun_lookup(dp, pkt, len)) && (at = tun_place(dp, sa, len))) {
			memcpy(at, pkt, len);
			tun_packet_sa(dp, sa, at, len);
		}
		return;
	}
	if (!(sa = tun_lookup(dp, pkt, len)))
		return;
	if (gso_split_init(&sp, &h, pkt, len, sa->inner_max)) {
		dp->ctr.gso_drops++;
		return;
	}
	dp->ctr.gso_reads++;
	if (!sa->conn) {
		dp->ctr.no_stream++;
		return;
	}
	for (;;) {
		const uint8_t *pay;
		size_t hlen, plen;
		if (!(at = tun_place(dp, sa, (size_t)sp.hlen + sp.mss)))
			return;
		if (!(hlen = gso_split_next_apart(&sp, at, &pay, &plen)))
			return;
		dp->ctr.gso_segments++;
		/* Each fits the path (split to inner_max): only a SYN would need its MSS clamped, and GSO makes
		 * none. dp->in must stay as it is until the batch is flushed. */
		esp_batch_seal_placed_apart(&dp->sealing, sa, at, hlen, pay, plen);
		dp->in_held = true;
	}
}

static void tun_readable(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct dataplane *dp = container_of(io, struct dataplane, io);

	(void)events;
	for (int i = 0; i < DP_BATCH; i++) {
		/* Without vnet headers a packet is read straight into the batch, where it is sealed. */
		uint8_t *at = dp->vnet ? NULL : tun_place(dp, NULL, DP_PKT_MAX);
		if (!dp->vnet && !at)
			break;
		if (dp->in_held)
			sealing_flush(dp);
		ssize_t n = dp->vnet ? read(dp->tun_fd, dp->in, sizeof(dp->in)) : read(dp->tun_fd, at, DP_PKT_MAX);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			if (errno == EFAULT || errno == EINVAL) {
				/* A packet longer than our buffer (tun_put_user): the kernel dropped it, go on. */
				dp->ctr.gso_drops++;
				continue;
			}
			/* EBADFD: the device was deleted under us; epoll would report it forever. */
			log_error("dataplane: %s: read: %s; no longer reading the TUN", dp->ifname,
				  strerror(errno));
			loop_io_del(loop, &dp->io);
			dp->watching = false;
			break;
		}
		if (n == 0)
			break;
		if (dp->vnet)
			tun_vnet_packet(dp, (size_t)n);
		else
			tun_packet(dp, at, (size_t)n);
	}
	tx_done(dp);
}

/* gso_flows' writer: a superpacket (or a lone segment) behind its vnet header, or a packet as it is. */
static void co_write(void *arg, const struct gso_hdr *h, uint8_t *pkt, size_t len, unsigned segs)
{
	struct dataplane *dp = arg;

	if (segs > 1) {
		dp->ctr.coalesced++;
		dp->ctr.coalesced_segments += segs;
	}
	tun_write(dp, h, pkt, len);
}

void dataplane_tx_flush(struct dataplane *dp)
{
	if (!dp)
		return;
	esp_batch_flush(&dp->opening);
	gso_flows_flush(&dp->flows);
}

void dataplane_esp_queue(struct dataplane *dp, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	/* ESP is accepted on any stream: after a reconnection the peer may switch before IKE tells us. */
	(void)c;
	esp_batch_open(&dp->opening, esp, len);
}

void dataplane_esp_input(struct dataplane *dp, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	dataplane_esp_queue(dp, c, esp, len);
	esp_batch_flush(&dp->opening); /* TCP segments still wait for dataplane_tx_flush, joined */
}

/* esp_batch's report, in order: an opened packet to the TUN. */
static void tun_opened(void *arg, uint8_t *pkt, ssize_t n, const struct ip_addrs *a)
{
	struct dataplane *dp = arg;

	(void)a;
	if (n == -EKEYEXPIRED)
		dp->ctr.expired++;
	else if (n == -EACCES)
		dp->ctr.policy_drops++;
	if (n <= 0)
		return;
	if (!dp->vnet) {
		tun_write(dp, NULL, pkt, (size_t)n);
		return;
	}
	/* TCP segments wait for the end of dataplane_tx_flush, joined; anything else keeps its place in its flow. */
	gso_flows_input(&dp->flows, pkt, (size_t)n);
}

void dataplane_set_workers(struct dataplane *dp, struct workers *w)
{
	esp_batch_set_workers(&dp->sealing, w);
	esp_batch_set_workers(&dp->opening, w);
}

void dataplane_set_batch(struct dataplane *dp, dataplane_send_fn queue, dataplane_flush_fn flush)
{
	dp->queue = flush ? queue : NULL;
	dp->flush = queue ? flush : NULL;
	/* queue holds the sealed packets by reference until flush */
	esp_batch_hold(&dp->sealing, dp->queue ? tx_release : NULL, DATAPLANE_QUEUE_LEAD);
}

/* ---- CHILD SAs ----------------------------------------------------------- */

_Static_assert(offsetof(struct dataplane, set) == 0, "SA_SET_CHILD_OPS takes the dataplane as its set");
const struct child_sa_ops dataplane_child_ops = SA_SET_CHILD_OPS;

/* ---- the device ---------------------------------------------------------- */

static int tun_open(struct dataplane *dp, const char *name)
{
	struct tun_dev t;
	int err = tun_dev_open(&t, name, DP_TUN_MTU);

	if (err)
		return err;
	dp->tun_fd = t.fd;
	dp->ifindex = t.ifindex;
	dp->vnet = t.vnet;
	memcpy(dp->ifname, t.ifname, IFNAMSIZ);
	return 0;
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
	gso_flows_init(&dp->flows, dp->cobuf, co_write, dp);
	esp_batch_init_seal(&dp->sealing, &dp->set, tun_sealed, dp);
	esp_batch_init_open(&dp->opening, &dp->set, false, tun_opened, dp);
	log_info("dataplane: TUN %s up (ifindex %d, MTU %d%s)", dp->ifname, dp->ifindex, DP_TUN_MTU,
		 dp->vnet ? ", TCP segmentation offload" : "");
	return dp;

fail:
	dataplane_free(dp);
	return NULL;
}

void dataplane_free(struct dataplane *dp)
{
	if (!dp)
		return;
	if (dp->ifindex && dp->vnet) /* what the offloads did, also in iketcpctl stats (tun) */
		log_info("dataplane: %s: %" PRIu64 " superpackets read, split into %" PRIu64
			 " segments; %" PRIu64 " written, joined from %" PRIu64 " segments; %" PRIu64
			 " refused",
			 dp->ifname, dp->ctr.gso_reads, dp->ctr.gso_segments, dp->ctr.coalesced,
			 dp->ctr.coalesced_segments, dp->ctr.gso_drops);
	sa_set_free(&dp->set); /* its routes need the rtnetlink socket */
	if (dp->watching)
		loop_io_del(dp->loop, &dp->io);
	if (dp->tun_fd >= 0)
		close(dp->tun_fd);
	route_sock_close(&dp->rs);
	esp_batch_wipe(&dp->sealing);
	esp_batch_wipe(&dp->opening);
	OPENSSL_cleanse(dp->icmp, sizeof(dp->icmp));
	OPENSSL_cleanse(dp->in, sizeof(dp->in));
	OPENSSL_cleanse(dp->cobuf, sizeof(dp->cobuf));
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
	gso_flows_init(&dp->flows, dp->cobuf, co_write, dp);
	esp_batch_init_seal(&dp->sealing, &dp->set, tun_sealed, dp);
	esp_batch_init_open(&dp->opening, &dp->set, false, tun_opened, dp);
	if (sa_set_init(&dp->set, "dataplane", &route_hooks, dp)) {
		dataplane_free(dp);
		return NULL;
	}
	dp->set.ifname = dp->ifname;
	return dp;
}

void dataplane_vnet_for_test(struct dataplane *dp, bool on)
{
	dp->vnet = on;
}

void dataplane_tun_input_for_test(struct dataplane *dp, const uint8_t *pkt, size_t len)
{
	uint8_t *at;

	if (dp->vnet) {
		if (dp->in_held)
			sealing_flush(dp);
		len = MIN(len, sizeof(dp->in));
		memcpy(dp->in, pkt, len);
		tun_vnet_packet(dp, len);
	} else if ((at = tun_place(dp, NULL, DP_PKT_MAX))) {
		len = MIN(len, DP_PKT_MAX);
		memcpy(at, pkt, len);
		tun_packet(dp, at, len);
	}
	tx_done(dp);
}
#endif
