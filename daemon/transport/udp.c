/*
 * IKE and ESP over UDP (RFC 7296 section 2.23, RFC 3948): sockets on ike-port
 * (500) and ike-natt-port (4500) for IPv4 and IPv6, and one path per (socket,
 * peer address) that the IKE engine and the dataplane use the way they use a
 * stream. On 4500 an IKE message carries the four-byte non-ESP marker, a lone
 * 0xFF byte is a NAT keepalive and anything else is ESP; on 500 only IKE.
 *
 * A path an IKE SA holds on 4500 sends a NAT keepalive after 20 s without
 * sending anything else: our NAT detection always claims a NAT (ike_init.c),
 * so either side may be behind one.
 *
 * Paths cost memory that any sender can make us spend, so they are bounded:
 * the oldest path no IKE SA holds makes room for a new one, and unheld paths
 * are reaped after UDP_UNHELD_IDLE_MS without traffic.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "transport/internal.h"

enum {
	UDP_SOCK_IKE4, UDP_SOCK_IKE6, UDP_SOCK_NATT4, UDP_SOCK_NATT6, UDP_SOCKS,
	UDP_HASH_SIZE = 4096,
	UDP_BATCH = 16,
	UDP_BUF = 65536,
	UDP_SWEEP_MS = 5000,
	UDP_UNHELD_IDLE_MS = 60000,
	UDP_SOCKBUF = 4 << 20,
	UDP_KEEPALIVE_MS = 20000,    /* RFC 3948 section 4: keeps NAT bindings of quiet SAs alive */
	UDP_TX_BATCH = 64,           /* ESP datagrams gathered for one sendmmsg */
	UDP_TX_ARENA = 256 * 1024,
	UDP_GSO_SEGS = 64,           /* datagrams joined into one UDP_SEGMENT send (UDP_MAX_SEGMENTS of older kernels) */
	UDP_GSO_BYTES = 65000,       /* and their bytes: one IP packet's worth */
};

/* Room for a packet-info control message and a UDP_SEGMENT or UDP_GRO one. */
union udp_ctl {
	char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

/* What transport_queue gathered for one socket until transport_flush: copies, so that nothing
 * depends on the path or the caller's buffer living until then. */
struct udp_txq {
	struct mmsghdr mm[UDP_TX_BATCH];
	struct iovec iov[UDP_TX_BATCH];
	struct sockaddr_storage peer[UDP_TX_BATCH];
	union udp_ctl ctl[UDP_TX_BATCH];
	bool fits[UDP_TX_BATCH];       /* within the path's MTU: may be joined */
	/* At flush, runs of datagrams joined into UDP_SEGMENT messages: message k is datagrams
	 * first[k] .. first[k] + segs[k] - 1. */
	struct mmsghdr gm[UDP_TX_BATCH];
	struct iovec giov[UDP_TX_BATCH];
	union udp_ctl gctl[UDP_TX_BATCH];
	unsigned first[UDP_TX_BATCH], segs[UDP_TX_BATCH];
	unsigned n;
	size_t used;
	uint8_t arena[UDP_TX_ARENA];
};

struct udp_sock {
	struct loop_io io;
	struct udp *u;
	uint16_t port;
	int family;
	bool natt;
	bool gso;      /* UDP_SEGMENT works here: until the kernel or the route refuses it */
};

struct udp {
	struct transport *tp;
	struct udp_sock socks[UDP_SOCKS];
	uint16_t ike_port, natt_port;
	struct tcp_conn *hash[UDP_HASH_SIZE];
	struct tcp_conn *head, *tail; /* every path, oldest first (eviction order) */
	unsigned n_paths;
	bool freeing_all;              /* no new paths while every path is being freed */
	struct loop_timer sweep;
	struct log_ratelimit rl;
	uint8_t bufs[UDP_BATCH][UDP_BUF];
	struct udp_txq txq[UDP_SOCKS];
};

static unsigned path_hash(const struct udp_sock *s, const struct sockaddr_storage *peer)
{
	uint32_t h = 2166136261u ^ (uint32_t)(s - s->u->socks);
	const uint8_t *p;
	size_t n;

	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)peer;
		p = (const uint8_t *)&a->sin_addr;
		n = sizeof(a->sin_addr);
		h = (h ^ a->sin_port) * 16777619u;
	} else {
		const struct sockaddr_in6 *a = (const void *)peer;
		p = (const uint8_t *)&a->sin6_addr;
		n = sizeof(a->sin6_addr);
		h = (h ^ a->sin6_port) * 16777619u;
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h % UDP_HASH_SIZE;
}

static struct tcp_conn *path_find(struct udp_sock *s, const struct sockaddr_storage *peer)
{
	for (struct tcp_conn *c = s->u->hash[path_hash(s, peer)]; c; c = c->hnext)
		if (c->usock == s && sockaddr_same(&c->peer, peer, true))
			return c;
	return NULL;
}

static void path_unlink(struct udp *u, struct tcp_conn *c)
{
	for (struct tcp_conn **pp = &u->hash[path_hash(c->usock, &c->peer)]; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	if (c->prev)
		c->prev->next = c->next;
	else
		u->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		u->tail = c->prev;
	u->n_paths--;
	STAT_DEC(udp, paths);
}

/* The IKE layer hears about it (its half-open SAs on the path go), then it is gone. */
static void path_free(struct udp *u, struct tcp_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (u->tp->h.closed)
		u->tp->h.closed(u->tp->h.arg, c);
	path_unlink(u, c);
	conn_release(u->tp, c);
}

static struct tcp_conn *path_new(struct udp_sock *s, const struct sockaddr_storage *peer,
				 const struct sockaddr_storage *local)
{
	struct udp *u = s->u;

	if (u->freeing_all)
		return NULL;
	if (u->n_paths >= u->tp->cfg.max_conns) {
		/* Never one an SA holds, one being closed, or one we opened (our handshakes in flight). */
		struct tcp_conn *old = u->head;
		while (old && (old->holds || old->dispatching || old->closing || old->outbound))
			old = old->next;
		if (!old) {
			STAT_INC(tcp, refused_limit);
			return NULL;
		}
		STAT_INC(udp, paths_evicted);
		path_free(u, old);
	}
	struct tcp_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->tp = u->tp;
	c->io.fd = -1;
	c->state = CONN_UDP;
	c->usock = s;
	c->peer = *peer;
	c->peer_len = peer->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	c->local = *local;
	c->opened_ms = c->last_rx_ms = c->last_tx_ms = loop_now_ms(u->tp->loop);
	unsigned h = path_hash(s, peer);
	c->hnext = u->hash[h];
	u->hash[h] = c;
	c->prev = u->tail;
	if (u->tail)
		u->tail->next = c;
	else
		u->head = c;
	u->tail = c;
	u->n_paths++;
	STAT_INC(udp, paths);
	return c;
}

/* ---- receiving ----------------------------------------------------------------- */

/* The address the datagram was sent to, with our port: what the peer hashed for NAT detection. */
static void local_from_cmsg(const struct udp_sock *s, struct msghdr *mh, struct sockaddr_storage *local)
{
	memset(local, 0, sizeof(*local));
	local->ss_family = (sa_family_t)s->family;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			((struct sockaddr_in *)local)->sin_addr = pi.ipi_addr;
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			((struct sockaddr_in6 *)local)->sin6_addr = pi.ipi6_addr;
		}
	}
	if (s->family == AF_INET)
		((struct sockaddr_in *)local)->sin_port = htons(s->port);
	else
		((struct sockaddr_in6 *)local)->sin6_port = htons(s->port);
}

static void datagram(struct udp_sock *s, const uint8_t *p, size_t len, struct sockaddr_storage *peer,
		     struct msghdr *mh)
{
	const struct transport_handlers *h = &s->u->tp->h;
	enum encap_kind kind = ENCAP_IKE;
	const uint8_t *body = p;
	size_t body_len = len;

	STAT_INC(udp, datagrams_in);
	if (s->natt)
		kind = encap_classify(p, len, &body, &body_len);
	else if (len < IKE_HEADER_LEN)
		kind = ENCAP_IKE_SHORT;
	switch (kind) {
	case ENCAP_KEEPALIVE:
		STAT_INC(udp, keepalives);
		return;
	case ENCAP_MALFORMED:
	case ENCAP_IKE_SHORT:
		STAT_INC(udp, malformed);
		return;
	default:
		break;
	}

	struct tcp_conn *c = path_find(s, peer);
	if (!c && kind == ENCAP_ESP) {
		STAT_INC(udp, esp_no_path);
		return;
	}
	if (!c) {
		struct sockaddr_storage local;
		local_from_cmsg(s, mh, &local);
		if (!(c = path_new(s, peer, &local)))
			return;
	}
	c->last_rx_ms = loop_now_ms(s->u->tp->loop);
	c->dispatching++;
	if (kind == ENCAP_IKE) {
		STAT_INC(udp, ike_in);
		if (h->ike)
			h->ike(h->arg, c, body, body_len);
	} else {
		STAT_INC(udp, esp_in);
		if (h->esp)
			h->esp(h->arg, c, body, body_len);
	}
	c->dispatching--;
}

/* The size of the datagrams a UDP_GRO read joined (all but the last are that long); len when not joined. */
static size_t gro_size(struct msghdr *mh, size_t len)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == IPPROTO_UDP && cm->cmsg_type == UDP_GRO) {
			int gso;
			memcpy(&gso, CMSG_DATA(cm), sizeof(gso));
			if (gso > 0 && (size_t)gso < len) {
				STAT_INC(udp, gro_reads);
				return (size_t)gso;
			}
		}
	}
	return len ? len : 1; /* an empty datagram is one too */
}

static void udp_readable(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct udp_sock *s = container_of(io, struct udp_sock, io);
	struct udp *u = s->u;
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage peers[UDP_BATCH];
	union udp_ctl ctl[UDP_BATCH];
	(void)loop;
	(void)events;

	/* A bounded number of batches per wakeup: the loop's other users get their turn. */
	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < UDP_BATCH; i++) {
			iov[i] = (struct iovec){ u->bufs[i], UDP_BUF };
			mm[i].msg_hdr = (struct msghdr){
				.msg_name = &peers[i], .msg_namelen = sizeof(peers[i]), .msg_iov = &iov[i],
				.msg_iovlen = 1, .msg_control = ctl[i].buf, .msg_controllen = sizeof(ctl[i].buf),
			};
			mm[i].msg_len = 0;
		}
		int n = recvmmsg(io->fd, mm, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				log_rl(&u->rl, LOG_LVL_WARN, "UDP port %u: %s", s->port, strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC) {
				STAT_INC(udp, malformed);
				continue;
			}
			size_t len = mm[i].msg_len, seg = gro_size(&mm[i].msg_hdr, len);
			size_t off = 0;
			do {
				datagram(s, u->bufs[i] + off, MIN(seg, len - off), &peers[i], &mm[i].msg_hdr);
				off += seg;
			} while (off < len);
		}
		/* The ESP handler may have batched its output (decrypted packets to the LAN). */
		if (u->tp->h.rx_batch_end)
			u->tp->h.rx_batch_end(u->tp->h.arg);
		if (n < UDP_BATCH)
			return;
	}
}

/* ---- sending ------------------------------------------------------------------- */

/* One control message after those mh has (buf: its control buffer, room for all of them). */
static void put_cmsg(struct msghdr *mh, char *buf, int level, int type, const void *data, size_t len)
{
	size_t at = mh->msg_control ? mh->msg_controllen : 0;

	memset(buf + at, 0, CMSG_SPACE(len));
	mh->msg_control = buf;
	mh->msg_controllen = at + CMSG_SPACE(len);
	struct cmsghdr *cm = (struct cmsghdr *)(buf + at);
	cm->cmsg_level = level;
	cm->cmsg_type = type;
	cm->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(cm), data, len);
}

/* Answer from the address the peer sent to: it may have several. */
static void put_source(struct msghdr *mh, char *buf, const struct tcp_conn *c)
{
	if (c->local.ss_family == AF_INET && ((const struct sockaddr_in *)&c->local)->sin_addr.s_addr) {
		struct in_pktinfo pi = { .ipi_spec_dst = ((const struct sockaddr_in *)&c->local)->sin_addr };
		put_cmsg(mh, buf, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
	} else if (c->local.ss_family == AF_INET6 &&
		   !IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&c->local)->sin6_addr)) {
		struct in6_pktinfo pi = { .ipi6_addr = ((const struct sockaddr_in6 *)&c->local)->sin6_addr };
		put_cmsg(mh, buf, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
	}
}

int udp_send(struct tcp_conn *c, enum encap_kind kind, const void *data, size_t len)
{
	static const uint8_t marker[ENCAP_NON_ESP_MARKER_LEN];
	static const uint8_t keepalive = 0xFF;
	struct udp_sock *s = c->usock;
	struct iovec iov[2];
	size_t n_iov = 0;
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = { .msg_name = &c->peer, .msg_namelen = c->peer_len, .msg_iov = iov };

	if (c->closing)
		return -ENOTCONN;
	switch (kind) {
	case ENCAP_IKE:
		if (s->natt)
			iov[n_iov++] = (struct iovec){ (void *)marker, sizeof(marker) };
		break;
	case ENCAP_ESP:
		if (!s->natt)
			return -EINVAL; /* ESP rides on 4500 only (RFC 3948) */
		break;
	case ENCAP_KEEPALIVE:
		if (!s->natt)
			return -EINVAL;
		data = &keepalive;
		len = 1;
		break;
	default:
		return -EINVAL;
	}
	iov[n_iov++] = (struct iovec){ (void *)data, len };
	mh.msg_iovlen = n_iov;
	put_source(&mh, ctl.buf, c);
	if (sendmsg(s->io.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		int err = errno;
		STAT_INC(udp, send_errors);
		return err == EAGAIN || err == ENOBUFS ? -ENOBUFS : -err;
	}
	STAT_INC(udp, datagrams_out);
	c->last_tx_ms = loop_now_ms(c->tp->loop);
	return 0;
}

/* Datagrams i and j leave from the same source to the same peer. */
static bool same_path(const struct udp_txq *q, unsigned i, unsigned j)
{
	const struct msghdr *a = &q->mm[i].msg_hdr, *b = &q->mm[j].msg_hdr;

	return a->msg_namelen == b->msg_namelen && !memcmp(a->msg_name, b->msg_name, a->msg_namelen) &&
	       a->msg_controllen == b->msg_controllen &&
	       (!a->msg_controllen || !memcmp(a->msg_control, b->msg_control, a->msg_controllen));
}

/*
 * Joins runs of queued datagrams into UDP_SEGMENT messages (q->gm): one path, one size (the last may be
 * shorter), each within the path's MTU, contiguous in the arena. The kernel sends each run as one packet
 * through the stack and cuts it at the device, or not at all on a veth whose far end takes GSO; a peer
 * with UDP_GRO reads it in one piece. How many messages.
 */
static unsigned txq_join(struct udp_txq *q)
{
	unsigned m = 0;

	for (unsigned i = 0, j; i < q->n; i = j) {
		size_t seg = q->iov[i].iov_len, total = seg;
		for (j = i + 1; j < q->n && q->fits[i] && q->fits[j] && j - i < UDP_GSO_SEGS; j++) {
			size_t len = q->iov[j].iov_len;
			if (q->iov[j - 1].iov_len != seg || len > seg || total + len > UDP_GSO_BYTES ||
			    (uint8_t *)q->iov[j].iov_base != (uint8_t *)q->iov[j - 1].iov_base + q->iov[j - 1].iov_len ||
			    !same_path(q, i, j))
				break;
			total += len;
		}
		q->first[m] = i;
		q->segs[m] = j - i;
		q->giov[m] = (struct iovec){ q->iov[i].iov_base, total };
		struct msghdr *mh = &q->gm[m].msg_hdr;
		*mh = q->mm[i].msg_hdr;
		mh->msg_iov = &q->giov[m];
		if (mh->msg_controllen)
			memcpy(q->gctl[m].buf, mh->msg_control, mh->msg_controllen);
		mh->msg_control = mh->msg_controllen ? q->gctl[m].buf : NULL;
		if (j - i > 1) {
			uint16_t gso = (uint16_t)seg;
			put_cmsg(mh, q->gctl[m].buf, IPPROTO_UDP, UDP_SEGMENT, &gso, sizeof(gso));
		}
		q->gm[m].msg_len = 0;
		m++;
	}
	return m;
}

/* sendmmsg of n messages, each of segs[k] datagrams (NULL: one each). How many went; *err says why not all. */
static unsigned send_all(struct udp_sock *s, struct mmsghdr *mm, unsigned n, const unsigned *segs, int *err)
{
	unsigned done = 0;

	*err = 0;
	while (done < n) {
		int k = sendmmsg(s->io.fd, mm + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			*err = k < 0 ? errno : EAGAIN;
			break;
		}
		for (int i = 0; i < k; i++)
			STAT_ADD(udp, datagrams_out, segs ? segs[done + (unsigned)i] : 1);
		done += (unsigned)k;
	}
	return done;
}

static void txq_flush(struct udp_sock *s, struct udp_txq *q)
{
	unsigned sent = 0; /* datagrams gone */
	int err = 0;

	if (s->gso) {
		unsigned m = txq_join(q), k = send_all(s, q->gm, m, q->segs, &err);
		for (unsigned i = 0; i < k; i++)
			STAT_ADD(udp, gso_sends, q->segs[i] > 1);
		sent = k < m ? q->first[k] : q->n;
		/* The kernel or the route refuses UDP_SEGMENT (no checksum offload, an IPsec policy, too big
		 * for the device): from here on, one datagram a message. */
		if (k < m && q->segs[k] > 1 && (err == EIO || err == EINVAL || err == EOPNOTSUPP)) {
			log_warn("UDP port %u: UDP segmentation offload refused (%s): sending datagrams one by one",
				 s->port, strerror(err));
			s->gso = false;
			err = 0;
		}
	}
	if (!err && sent < q->n)
		sent += send_all(s, q->mm + sent, q->n - sent, NULL, &err);
	/* The socket buffer is full or the route is gone: the rest is lost, as ESP may be. */
	STAT_ADD(udp, send_errors, q->n - sent);
	q->n = 0;
	q->used = 0;
}

void udp_flush(struct transport *tp)
{
	struct udp *u = tp->udp;

	for (int i = 0; u && i < UDP_SOCKS; i++)
		if (u->txq[i].n)
			txq_flush(&u->socks[i], &u->txq[i]);
}

int udp_queue(struct tcp_conn *c, enum encap_kind kind, const void *data, size_t len)
{
	struct udp_sock *s = c->usock;
	struct udp_txq *q = &s->u->txq[s - s->u->socks];

	if (kind != ENCAP_ESP || !s->natt || c->closing || len > UDP_TX_ARENA)
		return udp_send(c, kind, data, len); /* IKE, keepalives and refusals as before */
	if (q->n == UDP_TX_BATCH || q->used + len > UDP_TX_ARENA)
		txq_flush(s, q);
	unsigned i = q->n++;
	memcpy(q->arena + q->used, data, len);
	q->peer[i] = c->peer;
	q->iov[i] = (struct iovec){ q->arena + q->used, len };
	q->used += len;
	q->mm[i].msg_len = 0;
	q->mm[i].msg_hdr = (struct msghdr){ .msg_name = &q->peer[i], .msg_namelen = c->peer_len,
					    .msg_iov = &q->iov[i], .msg_iovlen = 1 };
	put_source(&q->mm[i].msg_hdr, q->ctl[i].buf, c);
	q->fits[i] = len + (c->peer.ss_family == AF_INET ? 28 : 48) <= transport_conn_mtu(c);
	c->last_tx_ms = loop_now_ms(c->tp->loop);
	return 0;
}

void udp_hold(struct tcp_conn *c, bool carries_sa)
{
	if (carries_sa)
		c->holds++;
	else if (c->holds)
		c->holds--;
}

/* ---- paths the IKE layer opens --------------------------------------------------- */

/* Which of our addresses the kernel would send from: what NAT detection hashes before any answer. */
static void route_source(const struct sockaddr_storage *peer, socklen_t len, struct sockaddr_storage *local)
{
	socklen_t ll = sizeof(*local);
	int fd = socket(peer->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(local, 0, sizeof(*local));
	local->ss_family = peer->ss_family;
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)peer, len) == 0)
		getsockname(fd, (struct sockaddr *)local, &ll);
	close(fd);
}

struct tcp_conn *transport_udp_open(struct transport *tp, const struct sockaddr *peer, socklen_t len, bool natt)
{
	struct udp *u = tp->udp;
	struct sockaddr_storage ss, local;

	if (!u || len > sizeof(ss) || (peer->sa_family != AF_INET && peer->sa_family != AF_INET6) ||
	    len < (peer->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))
		return NULL;
	struct udp_sock *s = &u->socks[(natt ? UDP_SOCK_NATT4 : UDP_SOCK_IKE4) + (peer->sa_family == AF_INET6)];
	if (s->io.fd < 0)
		return NULL;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, peer, len);
	struct tcp_conn *c = path_find(s, &ss);
	if (c) {
		c->outbound = true;
		return c;
	}
	route_source(&ss, len, &local);
	if (local.ss_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = htons(s->port);
	else
		((struct sockaddr_in6 *)&local)->sin6_port = htons(s->port);
	c = path_new(s, &ss, &local);
	if (c)
		c->outbound = true;
	return c;
}

bool transport_udp_ports(const struct transport *tp, uint16_t *ike_port, uint16_t *natt_port)
{
	if (!tp || !tp->udp)
		return false;
	*ike_port = tp->udp->ike_port;
	*natt_port = tp->udp->natt_port;
	return true;
}

size_t transport_conn_mtu(struct tcp_conn *c)
{
	if (!transport_conn_is_udp(c))
		return 0;
	if (!c->mtu) {
		int fd = socket(c->peer.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), mtu = 0;
		socklen_t ml = sizeof(mtu);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&c->peer, c->peer_len) == 0)
			(void)getsockopt(fd, c->peer.ss_family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
					 c->peer.ss_family == AF_INET ? IP_MTU : IPV6_MTU, &mtu, &ml);
		if (fd >= 0)
			close(fd);
		c->mtu = mtu >= 576 ? (uint32_t)mtu : 1500; /* no route yet: Ethernet's */
	}
	return c->mtu;
}

bool transport_conn_is_udp(const struct tcp_conn *c) { return c && c->state == CONN_UDP; }
bool transport_conn_is_natt(const struct tcp_conn *c) { return transport_conn_is_udp(c) && !c->dead && c->usock->natt; }

/* ---- sockets and configuration ----------------------------------------------------- */

static int udp_socket(int family, uint16_t port)
{
	int one = 1, big = UDP_SOCKBUF, dont = IP_PMTUDISC_DONT;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* No SO_REUSEADDR: on UDP it would let another socket share (and take) our ports. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (family == AF_INET) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
		/* Outer packets bigger than the path are fragmented rather than lost. */
		setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof(dont));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
	} else {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port),
					  .sin6_addr = IN6ADDR_ANY_INIT };
		int pmtu6 = IPV6_PMTUDISC_DONT;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu6, sizeof(pmtu6));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
	}
	int err = -errno;
	close(fd);
	return err;
}

static bool fd_in(int fd, const int fds[UDP_SOCKS])
{
	for (int i = 0; fds && i < UDP_SOCKS; i++)
		if (fds[i] == fd)
			return true;
	return false;
}

/* Every socket leaves the loop (what it has queued is sent first) and is closed, unless keep has it. */
static void socks_release(struct udp *u, const int keep[UDP_SOCKS])
{
	for (int i = 0; i < UDP_SOCKS; i++) {
		struct udp_sock *s = &u->socks[i];
		if (s->io.fd < 0)
			continue;
		if (u->txq[i].n)
			txq_flush(s, &u->txq[i]);
		loop_io_del(u->tp->loop, &s->io);
		if (!fd_in(s->io.fd, keep))
			close(s->io.fd);
		s->io.fd = -1;
	}
}

static void socks_close(struct udp *u)
{
	socks_release(u, NULL);
}

static void paths_free_all(struct udp *u)
{
	u->freeing_all = true;
	for (struct tcp_conn *c = u->head, *next; c; c = next) {
		next = c->next;
		path_free(u, c); /* a path already closing is freed by whoever is closing it */
	}
	u->freeing_all = false;
}

static void sweep_fire(struct loop *loop, struct loop_timer *t)
{
	struct udp *u = container_of(t, struct udp, sweep);
	uint64_t now = loop_now_ms(loop);
	uint64_t idle = MIN((uint64_t)u->tp->cfg.idle_timeout_s * 1000, (uint64_t)UDP_UNHELD_IDLE_MS);

	for (struct tcp_conn *c = u->head, *next; c; c = next) {
		next = c->next;
		uint64_t last = MAX(c->last_rx_ms, c->last_tx_ms);
		if (!c->holds && !c->dispatching && now - last > idle)
			path_free(u, c);
		else if (c->holds && c->usock->natt && now - c->last_tx_ms >= UDP_KEEPALIVE_MS &&
			 udp_send(c, ENCAP_KEEPALIVE, NULL, 0) == 0)
			STAT_INC(udp, keepalives_sent);
	}
	(void)loop_timer_arm(loop, &u->sweep, UDP_SWEEP_MS);
}

/* Our socket already bound to family and port (a reconfiguration keeps it), or -1. */
static int sock_bound(const struct udp *u, int family, uint16_t port)
{
	for (int i = 0; i < UDP_SOCKS; i++)
		if (u->socks[i].io.fd >= 0 && u->socks[i].family == family && u->socks[i].port == port)
			return u->socks[i].io.fd;
	return -1;
}

/*
 * Every socket on the new ports is had before the old ones go (a port we already hold is kept), so a
 * port that cannot be had changes nothing: the old sockets and their paths go on serving.
 */
static int socks_open(struct udp *u, uint16_t ike_port, uint16_t natt_port)
{
	static const struct { int family; bool natt; } kinds[UDP_SOCKS] = {
		[UDP_SOCK_IKE4] = { AF_INET, false }, [UDP_SOCK_IKE6] = { AF_INET6, false },
		[UDP_SOCK_NATT4] = { AF_INET, true }, [UDP_SOCK_NATT6] = { AF_INET6, true },
	};
	int fds[UDP_SOCKS];
	bool kept[UDP_SOCKS];

	for (int i = 0; i < UDP_SOCKS; i++) {
		uint16_t port = kinds[i].natt ? natt_port : ike_port;
		fds[i] = sock_bound(u, kinds[i].family, port);
		kept[i] = fds[i] >= 0;
		if (kept[i])
			continue;
		fds[i] = udp_socket(kinds[i].family, port);
		if (fds[i] >= 0 || (kinds[i].family == AF_INET6 && (fds[i] == -EAFNOSUPPORT ||
								    fds[i] == -EADDRNOTAVAIL)))
			continue; /* no IPv6 here: IPv4 only */
		log_error("cannot open UDP port %u: %s", port, strerror(-fds[i]));
		for (int k = 0; k < i; k++)
			if (fds[k] >= 0 && !kept[k])
				close(fds[k]);
		return fds[i];
	}
	/* New ports: the old paths cannot be answered from them. */
	paths_free_all(u);
	socks_release(u, fds);
	for (int i = 0; i < UDP_SOCKS; i++) {
		struct udp_sock *s = &u->socks[i];
		*s = (struct udp_sock){ .u = u, .family = kinds[i].family, .natt = kinds[i].natt,
					.port = kinds[i].natt ? natt_port : ike_port, .gso = kinds[i].natt };
		s->io.fd = -1;
		if (fds[i] < 0)
			continue;
		/* ESP arriving as one GSO packet (a peer's UDP_SEGMENT) is handed over whole, the datagrams'
		 * size in a UDP_GRO control message, instead of being cut up by the kernel first. (Set either
		 * way: a kept socket may have changed roles.) */
		(void)setsockopt(fds[i], IPPROTO_UDP, UDP_GRO, &(int){ s->natt }, sizeof(int));
		if (loop_io_add(u->tp->loop, &s->io, fds[i], EPOLLIN, udp_readable)) {
			close(fds[i]);
			s->io.fd = -1;
			log_error("epoll: cannot watch UDP port %u", s->port);
			continue;
		}
	}
	u->ike_port = ike_port;
	u->natt_port = natt_port;
	log_info("listening on UDP ports %u and %u (IKE, NAT-T and ESP in UDP)", ike_port, natt_port);
	return 0;
}

int udp_configure(struct transport *tp, const struct transport_config *cfg)
{
	struct udp *u = tp->udp;

	if (!cfg->udp) {
		if (u)
			log_info("no phase1 uses UDP any more: UDP ports closed");
		udp_free(tp);
		return 0;
	}
	if (u && u->ike_port == cfg->ike_port && u->natt_port == cfg->natt_port)
		return 0;
	if (cfg->ike_port == cfg->natt_port)
		return -EINVAL; /* IKE without the non-ESP marker cannot share a port with ESP (RFC 3948) */
	if (!u) {
		if (!(u = calloc(1, sizeof(*u))))
			return -ENOMEM;
		u->tp = tp;
		for (int i = 0; i < UDP_SOCKS; i++)
			u->socks[i].io.fd = -1;
		loop_timer_init(&u->sweep, sweep_fire);
	}
	int err = socks_open(u, cfg->ike_port, cfg->natt_port);
	if (err) {
		if (tp->udp != u)
			free(u);
		return err; /* the sockets and paths we had are still there */
	}
	tp->udp = u;
	if (!loop_timer_armed(&u->sweep))
		(void)loop_timer_arm(tp->loop, &u->sweep, UDP_SWEEP_MS);
	return 0;
}

void udp_free(struct transport *tp)
{
	struct udp *u = tp->udp;

	if (!u)
		return;
	paths_free_all(u);
	socks_close(u);
	loop_timer_cancel(tp->loop, &u->sweep);
	tp->udp = NULL;
	free(u);
}
