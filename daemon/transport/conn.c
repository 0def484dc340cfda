/*
 * One RFC 9329 connection: classify the first bytes (IKETCP, TLS, or the admin
 * service's HTTP/HTTPS), then the prefix and frames, with deadlines for every
 * stage, a bounded send queue, and reconnection for the originator.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "transport/internal.h"

#define CONNECT_TIMEOUT_MS 10000
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 32000
#define RECONNECT_QUICK_MS 20

static void conn_io_cb(struct loop *loop, struct loop_io *io, uint32_t events);
static void conn_timer_cb(struct loop *loop, struct loop_timer *t);
static void conn_start_connect(struct tcp_conn *c);

static struct log_ratelimit rl_close;

int set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

const char *conn_close_reason_name(enum conn_close_reason r)
{
	static const char *const names[] = {
		[CLOSE_PEER] = "closed by peer", [CLOSE_RESET] = "reset",
		[CLOSE_PREFIX] = "bad prefix", [CLOSE_PREFIX_TIMEOUT] = "prefix timeout",
		[CLOSE_LENGTH] = "invalid frame length", [CLOSE_IDLE] = "timeout",
		[CLOSE_TLS] = "TLS error", [CLOSE_LOCAL] = "closed locally",
		[CLOSE_OVERFLOW] = "peer not reading", [CLOSE_NOMEM] = "out of memory",
	};
	return r < ARRAY_SIZE(names) && names[r] ? names[r] : "unknown";
}

static void count_close(enum conn_close_reason why)
{
	switch (why) {
	case CLOSE_PEER: STAT_INC(tcp, closed_by_peer); break;
	case CLOSE_RESET: STAT_INC(tcp, closed_reset); break;
	case CLOSE_PREFIX: STAT_INC(tcp, prefix_errors); break;
	case CLOSE_PREFIX_TIMEOUT: STAT_INC(tcp, prefix_timeouts); break;
	case CLOSE_LENGTH: STAT_INC(tcp, bad_length); break;
	case CLOSE_IDLE: STAT_INC(tcp, timeouts); break;
	case CLOSE_TLS: STAT_INC(tcp, tls_failures); break;
	case CLOSE_LOCAL: STAT_INC(tcp, closed_local); break;
	case CLOSE_OVERFLOW: STAT_INC(tcp, write_overflow); break;
	case CLOSE_NOMEM: STAT_INC(tcp, closed_reset); break;
	}
}

/* ---- lifetime -------------------------------------------------------------- */

static struct tcp_conn *conn_alloc(struct transport *tp)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->tp = tp;
	c->io.fd = -1;
	loop_timer_init(&c->timer, conn_timer_cb);
	c->next = tp->conns;
	if (tp->conns)
		tp->conns->prev = c;
	tp->conns = c;
	tp->n_conns++;
	return c;
}

static void conn_unlink_free(struct tcp_conn *c)
{
	struct transport *tp = c->tp;

	if (c->prev)
		c->prev->next = c->next;
	else
		tp->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	tp->n_conns--;
	conn_release(tp, c);
}

void conn_release(struct transport *tp, struct tcp_conn *c)
{
	if (!tp->bury_seq) {
		free(c);
		return;
	}
	c->dead = true;
	c->buried_at = *tp->bury_seq;
	c->gnext = tp->graveyard;
	tp->graveyard = c;
}

void transport_defer_frees(struct transport *tp, const uint64_t *seq)
{
	tp->bury_seq = seq;
}

void transport_reap(struct transport *tp, uint64_t done_seq)
{
	for (struct tcp_conn **pp = &tp->graveyard; *pp;) {
		struct tcp_conn *c = *pp;
		if (c->buried_at <= done_seq) {
			*pp = c->gnext;
			free(c);
		} else {
			pp = &c->gnext;
		}
	}
}

bool transport_has_buried(const struct transport *tp)
{
	return tp->graveyard != NULL;
}

bool transport_conn_alive_due(struct tcp_conn *c, uint64_t now_ms)
{
	if (c->alive_ms && now_ms - c->alive_ms < 1000)
		return false;
	c->alive_ms = now_ms;
	return true;
}

/* Off tp->flush_list (a connection going away has nothing left to flush). */
static void flush_unlist(struct tcp_conn *c)
{
	if (!c->flush_listed)
		return;
	for (struct tcp_conn **pp = &c->tp->flush_list; *pp; pp = &(*pp)->flush_next) {
		if (*pp == c) {
			*pp = c->flush_next;
			break;
		}
	}
	c->flush_next = NULL;
	c->flush_listed = false;
}

/* Release the socket and everything tied to it; the object itself survives. */
static void conn_teardown(struct tcp_conn *c)
{
	struct loop *loop = c->tp->loop;

	loop_timer_cancel(loop, &c->timer);
	if (c->splice)
		splice_free(c);
	tls_conn_free(c->tls);
	c->tls = NULL;
	encap_rx_free(&c->rx);
	free(c->sniff);
	c->sniff = NULL;
	c->sniff_len = 0;
	free(c->txq);
	c->txq = NULL;
	c->txq_head = c->txq_len = c->txq_cap = 0;
	gather_drop(c);
	flush_unlist(c);
	if (c->io.fd >= 0) {
		loop_io_del(loop, &c->io);
		close(c->io.fd);
		c->io.fd = -1;
		if (c->state != CONN_CONNECTING)
			STAT_DEC(tcp, active);
	}
}

static void schedule_reconnect(struct tcp_conn *c)
{
	c->state = CONN_BACKOFF;
	uint32_t delay;
	uint64_t now = loop_now_ms(c->tp->loop);
	/* At most one quick reconnect a second: a peer that answers and hangs up cannot make us spin. */
	if (c->peer_spoke && now - c->quick_ms >= BACKOFF_MIN_MS) {
		c->quick_ms = now;
		/* The stream worked (the peer sent frames): RFC 9329 6.1 wants it back now, e.g. after the
		 * responder closed it behind a COOKIE (6.3). Failures from here on back off. */
		c->peer_spoke = false;
		c->backoff_ms = 0;
		delay = RECONNECT_QUICK_MS;
	} else {
		c->backoff_ms = c->backoff_ms ? MIN(c->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
		delay = c->backoff_ms;
		c->peer_spoke = false;
	}
	if (loop_timer_arm(c->tp->loop, &c->timer, delay))
		log_error("cannot arm reconnect timer");
}

void conn_close(struct tcp_conn *c, enum conn_close_reason why)
{
	char peer[64];
	bool was_up = c->state == CONN_STREAM || c->state == CONN_SPLICE;

	if (c->closing)
		return;
	if (c->dispatching) {
		/* The framer is still reading this connection: finish when it returns. */
		if (!c->close_pending) {
			c->close_pending = true;
			c->pending_why = why;
		}
		return;
	}
	c->closing = true;

	if (c->state == CONN_STREAM && encap_rx_mid_frame(&c->rx))
		STAT_INC(tcp, partial_at_close);
	if (c->state != CONN_BACKOFF && c->state != CONN_CONNECTING)
		count_close(why);
	log_rl(&rl_close, why == CLOSE_PEER || why == CLOSE_LOCAL ? LOG_LVL_DEBUG : LOG_LVL_INFO,
	       "TCP %s %s: %s", c->outbound ? "to" : "from",
	       sockaddr_str(&c->peer, peer, sizeof(peer)), conn_close_reason_name(why));
	conn_teardown(c);
	if (was_up && c->state == CONN_STREAM && c->tp->h.closed)
		c->tp->h.closed(c->tp->h.arg, c);
	c->closing = false;
	if (c->outbound && why != CLOSE_LOCAL && !c->close_for_good) {
		schedule_reconnect(c);
		return;
	}
	conn_unlink_free(c);
}

void transport_conn_close(struct tcp_conn *c)
{
	if (!c || c->dead)
		return;
	if (c->state == CONN_UDP)
		return; /* paths are shared by every SA with that peer: the idle sweep reaps them */
	if (c->closing) {
		c->close_for_good = true; /* from the closed handler: do not reconnect */
		return;
	}
	if (c->state == CONN_BACKOFF) {
		loop_timer_cancel(c->tp->loop, &c->timer);
		conn_unlink_free(c);
		return;
	}
	conn_close(c, CLOSE_LOCAL);
}

/* ---- deadlines: one timer, armed for the earliest, re-checked when it fires ---- */

static uint64_t conn_deadline(const struct tcp_conn *c)
{
	const struct transport_config *cfg = &c->tp->cfg;
	uint64_t d = UINT64_MAX;

	switch (c->state) {
	case CONN_CONNECTING:
		return c->opened_ms + CONNECT_TIMEOUT_MS;
	case CONN_BACKOFF:
		return c->timer.when_ms;
	case CONN_SNIFF:
		return c->opened_ms + cfg->prefix_timeout_ms;
	case CONN_STREAM:
		if (!encap_rx_prefix_done(&c->rx) || (c->tls && !tls_conn_handshake_done(c->tls)))
			d = c->opened_ms + cfg->prefix_timeout_ms;
		if (c->frame_start_ms)
			d = MIN(d, c->frame_start_ms + cfg->frame_timeout_ms);
		if (!c->held && !c->outbound)
			d = MIN(d, c->last_rx_ms + (uint64_t)cfg->idle_timeout_s * 1000);
		return d;
	case CONN_SPLICE:
		return c->last_rx_ms + (uint64_t)cfg->idle_timeout_s * 1000;
	case CONN_UDP: /* udp.c sweeps its paths */
		break;
	}
	return d;
}

static void conn_arm(struct tcp_conn *c)
{
	struct loop *loop = c->tp->loop;
	uint64_t d = conn_deadline(c), now = loop_now_ms(loop);

	if (d == UINT64_MAX) {
		loop_timer_cancel(loop, &c->timer);
		return;
	}
	if (loop_timer_armed(&c->timer) && c->timer.when_ms <= d)
		return; /* fires earlier and re-checks then */
	if (loop_timer_arm(loop, &c->timer, d > now ? d - now : 0))
		log_error("cannot arm connection timer");
}

static void conn_timer_cb(struct loop *loop, struct loop_timer *t)
{
	struct tcp_conn *c = container_of(t, struct tcp_conn, timer);
	uint64_t now = loop_now_ms(loop);

	if (c->state == CONN_BACKOFF) {
		STAT_INC(tcp, reconnects);
		conn_start_connect(c);
		return;
	}
	if (conn_deadline(c) > now) {
		conn_arm(c);
		return;
	}
	switch (c->state) {
	case CONN_CONNECTING:
		conn_close(c, CLOSE_RESET);
		break;
	case CONN_SNIFF:
		conn_close(c, CLOSE_PREFIX_TIMEOUT);
		break;
	case CONN_STREAM:
		conn_close(c, !encap_rx_prefix_done(&c->rx) ||
				      (c->tls && !tls_conn_handshake_done(c->tls))
			      ? CLOSE_PREFIX_TIMEOUT : CLOSE_IDLE);
		break;
	default:
		conn_close(c, CLOSE_IDLE);
	}
}

/* ---- I/O ------------------------------------------------------------------- */

static ssize_t conn_read(struct tcp_conn *c, void *buf, size_t len)
{
	if (c->tls)
		return tls_conn_read(c->tls, buf, len);
	ssize_t n = read(c->io.fd, buf, len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n;
}

static ssize_t conn_write(struct tcp_conn *c, const void *buf, size_t len)
{
	if (c->tls)
		return tls_conn_write(c->tls, buf, len);
	ssize_t n = send(c->io.fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n;
}

static void conn_update_events(struct tcp_conn *c)
{
	uint32_t ev = EPOLLIN;

	if (c->state == CONN_CONNECTING)
		ev = EPOLLOUT;
	else if (c->txq_len)
		ev |= EPOLLOUT;
	if (c->tls)
		ev |= tls_conn_wants(c->tls);
	if (loop_io_mod(c->tp->loop, &c->io, ev))
		log_error("epoll_ctl: cannot update connection events");
}

static void count_tls_handshake(struct tcp_conn *c, bool *counted)
{
	if (c->tls && !*counted && tls_conn_handshake_done(c->tls)) {
		*counted = true;
		STAT_INC(tcp, tls_handshakes);
	}
}

/*
 * Write queued bytes, all of them in one send (or SSL_write) when the socket
 * takes them; returns -1 when the connection was closed. What the socket
 * refuses stays at txq_head, where the next flush starts (the TLS contract:
 * the same bytes again, maybe more after them).
 */
static int conn_flush(struct tcp_conn *c)
{
	while (c->txq_len) {
		ssize_t n = conn_write(c, c->txq + c->txq_head, c->txq_len);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			conn_close(c, n == -EPROTO ? CLOSE_TLS : CLOSE_RESET);
			return -1;
		}
		c->txq_head += (size_t)n;
		c->txq_len -= (size_t)n;
	}
	if (!c->txq_len)
		c->txq_head = 0;
	return 0;
}

/* Grown once towards TX_QUEUE_MAX and kept: appending does not allocate per frame. */
int conn_txq_append(struct tcp_conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
	size_t need = c->txq_len + alen + blen;

	if (need > TX_QUEUE_MAX)
		return -ENOBUFS;
	if (c->txq_head + need > c->txq_cap && c->txq_head) {
		memmove(c->txq, c->txq + c->txq_head, c->txq_len);
		c->txq_head = 0;
	}
	if (need > c->txq_cap) {
		size_t cap = c->txq_cap ? c->txq_cap : 4096;
		while (cap < need)
			cap *= 2;
		uint8_t *q = realloc(c->txq, MIN(cap, (size_t)TX_QUEUE_MAX));
		if (!q)
			return -ENOMEM;
		c->txq = q;
		c->txq_cap = MIN(cap, (size_t)TX_QUEUE_MAX);
	}
	uint8_t *tail = c->txq + c->txq_head + c->txq_len;
	memcpy(tail, a, alen);
	if (blen)
		memcpy(tail + alen, b, blen);
	c->txq_len = need;
	return 0;
}

/* transport_send's checks; 0 or -errno. */
static int frame_ok(const struct tcp_conn *c, enum encap_kind kind, size_t len)
{
	if (c->state != CONN_STREAM || c->close_pending)
		return -ENOTCONN;
	if (kind != ENCAP_IKE && kind != ENCAP_ESP && kind != ENCAP_KEEPALIVE)
		return -EINVAL;
	if (len + ENCAP_LEN_FIELD + ENCAP_NON_ESP_MARKER_LEN > ENCAP_MAX_FRAME)
		return -EMSGSIZE;
	return 0;
}

int transport_send(struct tcp_conn *c, enum encap_kind kind, const void *data, size_t len)
{
	uint8_t hdr[6];
	size_t hdr_len, done = 0;
	int err = frame_ok(c, kind, len);

	if (c->dead)
		return -ENOTCONN;
	if (c->state == CONN_UDP)
		return udp_send(c, kind, data, len);
	if (err)
		return err;
	hdr_len = encap_frame_header(hdr, kind, len);
	gather_spill(c); /* frames queued before this one go first */

	/* Plain TCP with nothing queued: one writev, queue only what the socket refused. */
	if (!c->tls && !c->txq_len) {
		struct iovec iov[2] = { { hdr, hdr_len }, { (void *)data, len } };
		ssize_t n = writev(c->io.fd, iov, 2);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(c, CLOSE_RESET);
			return -EPIPE;
		}
		done = n > 0 ? (size_t)n : 0;
		if (done == hdr_len + len)
			return 0;
	}
	if (done < hdr_len)
		err = conn_txq_append(c, hdr + done, hdr_len - done, data, len);
	else
		err = conn_txq_append(c, (const uint8_t *)data + (done - hdr_len), len - (done - hdr_len), NULL, 0);
	if (err) {
		STAT_INC(tcp, write_overflow);
		if (done) /* half a frame is on the wire: the stream cannot be resynchronised */
			conn_close(c, CLOSE_OVERFLOW);
		return err;
	}
	if (c->tls && conn_flush(c))
		return -EPIPE;
	conn_update_events(c);
	return 0;
}

int transport_queue(struct tcp_conn *c, enum encap_kind kind, uint8_t *data, size_t len)
{
	uint8_t hdr[6];
	int err = frame_ok(c, kind, len);

	if (c->dead)
		return -ENOTCONN;
	if (c->state == CONN_UDP)
		return udp_queue(c, kind, data, len); /* gathered for one sendmmsg */
	if (err)
		return err;
	size_t hdr_len = encap_frame_header(hdr, kind, len);
	if (c->tls || kind != ENCAP_ESP) {
		err = conn_txq_append(c, hdr, hdr_len, data, len); /* SSL_write wants it in one piece */
	} else if (c->txq_len + c->gather_bytes + hdr_len + len > TX_QUEUE_MAX) {
		err = -ENOBUFS;
	} else {
		_Static_assert(ENCAP_LEN_FIELD == TRANSPORT_QUEUE_LEAD, "an ESP frame's header is its length");
		memcpy(data - hdr_len, hdr, hdr_len); /* the caller's lead: the frame is one piece */
		if (c->tp->n_gather == TX_GATHER_MAX) {
			gather_spill(c);
			err = conn_txq_append(c, data - hdr_len, hdr_len + len, NULL, 0);
		} else {
			gather_add(c, data - hdr_len, hdr_len + len);
		}
	}
	if (err) {
		STAT_INC(tcp, write_overflow);
		return err;
	}
	if (!c->flush_listed) {
		c->flush_listed = true;
		c->flush_next = c->tp->flush_list;
		c->tp->flush_list = c;
	}
	return 0;
}

void transport_flush(struct transport *tp)
{
	struct tcp_conn *c;

	udp_flush(tp);
	while ((c = tp->flush_list)) {
		tp->flush_list = c->flush_next;
		c->flush_next = NULL;
		c->flush_listed = false;
		if (conn_flush(c) || gather_write(c))
			continue; /* closed */
		conn_update_events(c);
	}
	gather_compact(tp); /* every held frame was written, copied or dropped with its connection */
}

/* ---- receiving frames -------------------------------------------------------- */

static int on_frame(void *arg, enum encap_kind kind, const uint8_t *p, size_t len)
{
	struct tcp_conn *c = arg;
	const struct transport_handlers *h = &c->tp->h;

	switch (kind) {
	case ENCAP_IKE:
		STAT_INC(tcp, frames_ike);
		c->peer_spoke = true; /* a later loss reconnects at once, then backs off afresh */
		if (h->ike)
			h->ike(h->arg, c, p, len);
		break;
	case ENCAP_ESP:
		STAT_INC(tcp, frames_esp);
		if (h->esp)
			h->esp(h->arg, c, p, len);
		break;
	case ENCAP_KEEPALIVE:
		STAT_INC(tcp, keepalives);
		break;
	case ENCAP_IKE_SHORT:
		STAT_INC(tcp, ike_too_short);
		break;
	case ENCAP_MALFORMED:
		STAT_INC(tcp, frames_malformed);
		break;
	}
	/* A handler may have asked to close the connection: stop feeding it. */
	return c->close_pending ? 1 : 0;
}

/* Returns -1 when the connection is gone. */
static int conn_feed(struct tcp_conn *c, const uint8_t *data, size_t len)
{
	const struct transport_handlers *h = &c->tp->h;
	int ret;

	c->dispatching++;
	ret = encap_rx_feed(&c->rx, data, len, on_frame, c);
	c->dispatching--;
	/* The frames of one read are one batch for the handlers (one TX wakeup, not one per packet). It
	 * ends here, while everything they may point into is still there: the read buffer, a frame that
	 * straddled reads, the connection (a bad frame closes it just below). */
	if (h->rx_batch_end)
		h->rx_batch_end(h->arg);
	if (c->close_pending && !c->dispatching) {
		c->close_pending = false;
		conn_close(c, c->pending_why);
		return -1;
	}
	if (ret > 0)
		return -1;
	if (ret < 0) {
		conn_close(c, c->rx.error == ENCAP_ERR_PREFIX ? CLOSE_PREFIX
			      : c->rx.error == ENCAP_ERR_LENGTH ? CLOSE_LENGTH : CLOSE_NOMEM);
		return -1;
	}
	if (!encap_rx_mid_frame(&c->rx))
		c->frame_start_ms = 0;
	else if (!c->frame_start_ms)
		c->frame_start_ms = loop_now_ms(c->tp->loop);
	return 0;
}

/* The first bytes are classified; switch to the stream, TLS or the admin service. */
static int conn_sniffed(struct tcp_conn *c, enum sniff_kind kind, const uint8_t *data, size_t len)
{
	const struct transport_config *cfg = &c->tp->cfg;
	bool admin = kind == SNIFF_HTTP || kind == SNIFF_TLS_ADMIN;
	bool tls = kind == SNIFF_TLS_IKE || kind == SNIFF_TLS_ADMIN;

	if (admin && c->passthrough) {
		if (splice_start(c, cfg->admin_sport, data, len)) {
			conn_close(c, CLOSE_RESET);
			return -1;
		}
		return 1;
	}
	c->state = CONN_STREAM;
	encap_rx_init(&c->rx, true);
	if (tls && cfg->tls && c->tp->tls_server) {
		c->tls = tls_conn_new(c->tp->tls_server, c->io.fd, true, data, len);
		if (!c->tls) {
			conn_close(c, CLOSE_NOMEM);
			return -1;
		}
		return 0;
	}
	/* IKETCP, or anything else: the framer says whether the prefix is right. */
	return conn_feed(c, data, len);
}

/* Returns -1 when closed, 1 when handed to splice.c, 0 to keep reading. */
static int conn_sniff_bytes(struct tcp_conn *c, const uint8_t *data, size_t len)
{
	enum sniff_kind kind;
	int ret;

	if (!c->sniff_len) {
		kind = sniff_classify(data, len);
		if (kind != SNIFF_NEED_MORE)
			return conn_sniffed(c, kind, data, len);
	}
	uint8_t *grown = realloc(c->sniff, c->sniff_len + len);
	if (!grown) {
		conn_close(c, CLOSE_NOMEM);
		return -1;
	}
	c->sniff = grown;
	memcpy(c->sniff + c->sniff_len, data, len);
	c->sniff_len += len;
	kind = sniff_classify(c->sniff, c->sniff_len);
	if (kind == SNIFF_NEED_MORE && c->sniff_len < SNIFF_MAX)
		return 0;
	if (kind == SNIFF_NEED_MORE)
		kind = SNIFF_UNKNOWN;
	uint8_t *held = c->sniff;
	size_t held_len = c->sniff_len;
	c->sniff = NULL;
	c->sniff_len = 0;
	ret = conn_sniffed(c, kind, held, held_len);
	free(held);
	return ret;
}

/* Returns -1 when the connection was closed (why: after the bytes before it were dispatched). */
static int conn_read_status(struct tcp_conn *c, ssize_t n)
{
	if (n == 0) {
		conn_close(c, CLOSE_PEER);
		return -1;
	}
	if (n < 0 && n != -EAGAIN) {
		conn_close(c, n == -EPROTO ? CLOSE_TLS : CLOSE_RESET);
		return -1;
	}
	return 0;
}

static void conn_readable(struct tcp_conn *c)
{
	struct transport *tp = c->tp; /* c may be gone after a feed */
	uint8_t *buf = tp->scratch;
	bool tls_counted = c->tls && tls_conn_handshake_done(c->tls);

	/* Bounded per wakeup for fairness; TLS is drained fully since epoll cannot see its buffer. */
	for (int i = 0; i < 16 || (c->tls && i < 256); i++) {
		size_t want = sizeof(tp->scratch), have;
		if (c->state == CONN_SNIFF)
			want = SNIFF_MAX - c->sniff_len;
		ssize_t n = conn_read(c, buf, want), last = n;
		count_tls_handshake(c, &tls_counted);
		if (n <= 0) {
			if (!conn_read_status(c, n))
				break; /* -EAGAIN */
			return;
		}
		/* TLS hands out one record per read: gather a buffer's worth so one feed is one batch. */
		for (have = (size_t)n; c->tls && c->state == CONN_STREAM && have < want; have += (size_t)last) {
			last = conn_read(c, buf + have, want - have);
			if (last <= 0)
				break;
		}
		c->last_rx_ms = loop_now_ms(tp->loop);
		if (c->state == CONN_SNIFF) {
			int ret = conn_sniff_bytes(c, buf, have);
			if (tp->h.rx_batch_end)
				tp->h.rx_batch_end(tp->h.arg);
			if (ret)
				return;
			continue;
		}
		if (conn_feed(c, buf, have)) /* ends the read's batch */
			return;
		if (last <= 0) {
			if (conn_read_status(c, last))
				return;
			break; /* -EAGAIN */
		}
		if (!c->tls && have < want)
			break; /* drained: level-triggered epoll says when more comes, no read for -EAGAIN */
	}
	if (c->txq_len && conn_flush(c))
		return;
	conn_update_events(c);
	conn_arm(c);
}

static void conn_connected(struct tcp_conn *c)
{
	int err = 0, one = 1;
	socklen_t len = sizeof(err);
	socklen_t llen = sizeof(c->local);

	if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		char peer[64];
		log_rl(&rl_close, LOG_LVL_INFO, "TCP connect to %s: %s",
		       sockaddr_str(&c->peer, peer, sizeof(peer)), strerror(err ? err : errno));
		conn_close(c, CLOSE_RESET);
		return;
	}
	STAT_INC(tcp, connected);
	STAT_INC(tcp, active);
	setsockopt(c->io.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	getsockname(c->io.fd, (struct sockaddr *)&c->local, &llen);
	c->state = CONN_STREAM;
	c->opened_ms = c->last_rx_ms = loop_now_ms(c->tp->loop);
	encap_rx_init(&c->rx, false); /* the responder's direction has no prefix */
	if (c->want_tls) {
		c->tls = tls_conn_new(c->tp->tls_client, c->io.fd, false, NULL, 0);
		if (!c->tls) {
			conn_close(c, CLOSE_NOMEM);
			return;
		}
	}
	/* RFC 9329 section 4: the originator's first bytes, on every new connection. */
	if (conn_txq_append(c, ENCAP_PREFIX, ENCAP_PREFIX_LEN, NULL, 0) || conn_flush(c))
		return;
	conn_update_events(c);
	conn_arm(c);
	if (c->tp->h.connected)
		c->tp->h.connected(c->tp->h.arg, c);
}

static void conn_io_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct tcp_conn *c = container_of(io, struct tcp_conn, io);
	(void)loop;

	if (c->state == CONN_CONNECTING) {
		conn_connected(c);
		return;
	}
	if (c->state == CONN_SPLICE)
		return; /* splice.c registered its own callback */
	if ((events & EPOLLOUT) && c->txq_len && conn_flush(c))
		return;
	if ((events & EPOLLOUT) && c->tls && !c->txq_len) {
		/* Ciphertext the socket refused earlier (tls.c keeps it): push it out. */
		ssize_t n = tls_conn_write(c->tls, NULL, 0);
		if (n < 0 && n != -EAGAIN) {
			conn_close(c, n == -EPROTO ? CLOSE_TLS : CLOSE_RESET);
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) || c->tls)
		conn_readable(c);
	else
		conn_update_events(c);
}

void conn_accepted(struct transport *tp, int fd, bool passthrough)
{
	struct tcp_conn *c = conn_alloc(tp);
	socklen_t plen = sizeof(c ? c->peer : (struct sockaddr_storage){ 0 });
	socklen_t llen = plen;
	int one = 1;

	if (!c) {
		close(fd);
		return;
	}
	STAT_INC(tcp, accepted);
	STAT_INC(tcp, active);
	getpeername(fd, (struct sockaddr *)&c->peer, &plen);
	getsockname(fd, (struct sockaddr *)&c->local, &llen);
	sockaddr_unmap(&c->peer);
	sockaddr_unmap(&c->local);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->peer_len = plen;
	c->passthrough = passthrough;
	c->state = CONN_SNIFF;
	c->opened_ms = c->last_rx_ms = loop_now_ms(tp->loop);
	if (loop_io_add(tp->loop, &c->io, fd, EPOLLIN, conn_io_cb)) {
		c->io.fd = fd;
		conn_close(c, CLOSE_NOMEM);
		return;
	}
	conn_arm(c);
}

static void conn_start_connect(struct tcp_conn *c)
{
	int fd = socket(c->peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	c->state = CONN_CONNECTING;
	c->opened_ms = loop_now_ms(c->tp->loop);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		schedule_reconnect(c);
		return;
	}
	if (connect(fd, (struct sockaddr *)&c->peer, c->peer_len) < 0 && errno != EINPROGRESS) {
		char peer[64];
		log_rl(&rl_close, LOG_LVL_INFO, "TCP connect to %s: %s",
		       sockaddr_str(&c->peer, peer, sizeof(peer)), strerror(errno));
		close(fd);
		schedule_reconnect(c);
		return;
	}
	if (loop_io_add(c->tp->loop, &c->io, fd, EPOLLOUT, conn_io_cb)) {
		close(fd);
		schedule_reconnect(c);
		return;
	}
	conn_arm(c);
}

struct tcp_conn *transport_connect(struct transport *tp, const struct sockaddr *peer, socklen_t peer_len,
				   bool tls)
{
	struct tcp_conn *c;

	if (peer_len > sizeof(c->peer) || (tls && !tp->tls_client))
		return NULL;
	c = conn_alloc(tp);
	if (!c)
		return NULL;
	c->outbound = true;
	c->want_tls = tls;
	memcpy(&c->peer, peer, peer_len);
	c->peer_len = peer_len;
	conn_start_connect(c);
	return c;
}

void transport_conn_hold(struct tcp_conn *c, bool carries_sa)
{
	if (c->dead)
		return;
	if (c->state == CONN_UDP)
		udp_hold(c, carries_sa);
	else
		c->held = carries_sa;
}
void transport_conn_set_user(struct tcp_conn *c, void *user) { c->user = user; }
void *transport_conn_user(const struct tcp_conn *c) { return c->user; }
bool transport_conn_is_tls(const struct tcp_conn *c) { return c->tls != NULL; }
bool transport_conn_outbound(const struct tcp_conn *c) { return c->outbound; }
bool transport_conn_up(const struct tcp_conn *c)
{
	return !c->dead && (c->state == CONN_STREAM || c->state == CONN_UDP);
}
const struct sockaddr_storage *transport_conn_local(const struct tcp_conn *c) { return &c->local; }
const struct sockaddr_storage *transport_conn_peer(const struct tcp_conn *c) { return &c->peer; }
unsigned transport_conn_count(const struct transport *tp) { return tp->n_conns; }
