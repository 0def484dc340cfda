/*
 * The daemon's wiring: the RFC 9329 transport delivers IKE messages to the IKE
 * engine (through the dataplane thread's queue, dpthread.h) and ESP packets to
 * the dataplane (by SPI); the engine sends through the transport and installs
 * CHILD SAs, each call under the dataplane lock; the dataplane frames ESP onto
 * each SA's stream.
 */
#include <errno.h>
#include <netinet/in.h>

#include "daemon.h"
#include "dataplane/afxdp.h"
#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "dpthread.h"
#include "wiring.h"

/* ---- the dataplane thread: what the transport tells IKE goes through the queue ---- */

static void on_ike(void *arg, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	struct daemon *d = arg;

	dpthread_post(&d->dpt, DP_EV_IKE, c, msg, len);
}

static void on_esp(void *arg, struct tcp_conn *c, const uint8_t *pkt, size_t len)
{
	struct daemon *d = arg;

	/* DPD: ESP from the peer is proof of life; IKE hears of it once a second, not per packet. */
	if (transport_conn_alive_due(c, loop_now_ms(d->dpt.loop)))
		dpthread_post(&d->dpt, DP_EV_ALIVE, c, NULL, 0);
	if (d->xdp) {
		afxdp_esp_queue(d->xdp, c, pkt, len); /* sent at on_rx_batch_end */
		return;
	}
	if (d->dp) {
		dataplane_esp_queue(d->dp, c, pkt, len); /* opened at on_rx_batch_end */
		return;
	}
	STAT_INC(esp, unknown_spi); /* no dataplane: no SA can exist */
}

/* One AF_XDP wakeup, or one TUN write of joined TCP segments, for the ESP of one stream read. */
static void on_rx_batch_end(void *arg)
{
	struct daemon *d = arg;

	if (d->xdp)
		afxdp_tx_flush(d->xdp);
	if (d->dp)
		dataplane_tx_flush(d->dp);
}

bool wiring_soft_life(void *arg, uint32_t spi_in)
{
	struct daemon *d = arg;

	return dpthread_post_soft_life(&d->dpt, spi_in);
}

static void on_connected(void *arg, struct tcp_conn *c)
{
	struct daemon *d = arg;

	dpthread_post(&d->dpt, DP_EV_CONNECTED, c, NULL, 0);
}

static void on_closed(void *arg, struct tcp_conn *c)
{
	struct daemon *d = arg;

	dpthread_post(&d->dpt, DP_EV_CLOSED, c, NULL, 0);
}

void wiring_transport_handlers(struct daemon *d, struct transport_handlers *h)
{
	*h = (struct transport_handlers){
		.ike = on_ike, .esp = on_esp, .connected = on_connected, .closed = on_closed,
		.rx_batch_end = on_rx_batch_end, .arg = d,
	};
}

/* ---- the IKE thread: queued events to the engine ---- */

static void ike_event(void *arg, const struct dp_event *ev)
{
	struct daemon *d = arg;

	if (!d->ike)
		return;
	switch (ev->kind) {
	case DP_EV_IKE: ike_input(d->ike, ev->c, ev->msg, ev->len); break;
	case DP_EV_CONNECTED: ike_conn_up(d->ike, ev->c); break;
	case DP_EV_CLOSED: ike_conn_down(d->ike, ev->c); break;
	case DP_EV_ALIVE: ike_peer_alive(d->ike, ev->c); break;
	case DP_EV_SOFT_LIFE: ike_child_soft_life(d->ike, ev->spi_in); break;
	}
}

/* Every event queued up to handled_seq has been through IKE: connections buried by then can go. */
static void ike_events_done(void *arg, uint64_t handled_seq)
{
	struct daemon *d = arg;

	if (d->tp)
		transport_reap(d->tp, handled_seq);
}

void wiring_dpthread_sink(struct daemon *d, struct dpthread_sink *sink)
{
	*sink = (struct dpthread_sink){ .event = ike_event, .done = ike_events_done, .arg = d };
}

/* ---- the IKE thread: calls into the transport, under the dataplane lock ---- */

static struct tcp_conn *io_connect(void *arg, const struct sockaddr *peer, socklen_t len, bool tls)
{
	struct daemon *d = arg;

	dpthread_lock(&d->dpt);
	struct tcp_conn *c = transport_connect(d->tp, peer, len, tls);
	dpthread_unlock(&d->dpt);
	return c;
}

static int io_send(void *arg, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	struct daemon *d = arg;

	dpthread_lock(&d->dpt);
	int err = transport_send(c, ENCAP_IKE, msg, len);
	dpthread_unlock(&d->dpt);
	return err;
}

static void io_close(void *arg, struct tcp_conn *c)
{
	struct daemon *d = arg;

	dpthread_lock(&d->dpt);
	transport_conn_close(c);
	dpthread_unlock(&d->dpt);
}

static void io_hold(void *arg, struct tcp_conn *c, bool carries_sa)
{
	struct daemon *d = arg;

	dpthread_lock(&d->dpt);
	transport_conn_hold(c, carries_sa);
	dpthread_unlock(&d->dpt);
}

/* The port a peer dialled: XDP steered ike-tcp-port to the internal port, which the peer never saw. */
static void undo_steering(const struct daemon *d, struct sockaddr_storage *local)
{
	const struct conf_settings *s = &d->conf->settings;
	in_port_t *port = local->ss_family == AF_INET6 ? &((struct sockaddr_in6 *)local)->sin6_port
						       : &((struct sockaddr_in *)local)->sin_port;

	if (s->ike_tcp_port != s->ike_natt_port && ntohs(*port) == s->ike_tcp_internal_port)
		*port = htons(s->ike_tcp_port);
}

static void io_addrs(void *arg, struct tcp_conn *c, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
	struct daemon *d = arg;

	dpthread_lock(&d->dpt);
	*local = *transport_conn_local(c);
	*peer = *transport_conn_peer(c);
	dpthread_unlock(&d->dpt);
	/* NAT detection (RFC 9329 section 6.5) must hash what the peer hashed. */
	if (!transport_conn_outbound(c) && !transport_conn_is_udp(c))
		undo_steering(d, local);
}

static struct tcp_conn *io_open_udp(void *arg, const struct sockaddr *peer, socklen_t len, bool natt)
{
	struct daemon *d = arg;

	dpthread_lock(&d->dpt);
	struct tcp_conn *c = transport_udp_open(d->tp, peer, len, natt);
	dpthread_unlock(&d->dpt);
	return c;
}

static bool io_datagram(void *arg, struct tcp_conn *c)
{
	struct daemon *d = arg;

	dpthread_lock(&d->dpt);
	bool udp = transport_conn_is_udp(c);
	dpthread_unlock(&d->dpt);
	return udp;
}

static bool io_tls(void *arg, struct tcp_conn *c)
{
	struct daemon *d = arg;

	dpthread_lock(&d->dpt); /* the TLS session comes and goes with reconnects */
	bool tls = transport_conn_is_tls(c);
	dpthread_unlock(&d->dpt);
	return tls;
}

static bool io_natt(void *arg, struct tcp_conn *c)
{
	struct daemon *d = arg;

	dpthread_lock(&d->dpt);
	bool natt = transport_conn_is_natt(c);
	dpthread_unlock(&d->dpt);
	return natt;
}

void wiring_ike_io(struct daemon *d, struct ike_io *io)
{
	*io = (struct ike_io){
		.connect = io_connect, .send = io_send, .close = io_close, .hold = io_hold, .addrs = io_addrs,
		.open_udp = io_open_udp, .datagram = io_datagram, .natt = io_natt, .tls = io_tls, .arg = d,
	};
}

/* ---- the IKE thread: CHILD SAs into the dataplane, under the dataplane lock ---- */

static const struct child_sa_ops *dataplane_ops(struct daemon *d, void **arg)
{
	*arg = d->xdp ? (void *)d->xdp : (void *)d->dp;
	return d->xdp ? &afxdp_child_ops : &dataplane_child_ops;
}

static int child_install(void *arg, const struct child_sa *csa)
{
	struct daemon *d = arg;
	void *dp;
	const struct child_sa_ops *ops = dataplane_ops(d, &dp);

	dpthread_lock(&d->dpt);
	int err = dp ? ops->install(dp, csa) : -ENODEV;
	dpthread_unlock(&d->dpt);
	return err;
}

static void child_update_conn(void *arg, uint32_t spi_in, struct tcp_conn *conn)
{
	struct daemon *d = arg;
	void *dp;
	const struct child_sa_ops *ops = dataplane_ops(d, &dp);

	dpthread_lock(&d->dpt);
	if (dp)
		ops->update_conn(dp, spi_in, conn);
	dpthread_unlock(&d->dpt);
}

static void child_remove(void *arg, uint32_t spi_in)
{
	struct daemon *d = arg;
	void *dp;
	const struct child_sa_ops *ops = dataplane_ops(d, &dp);

	dpthread_lock(&d->dpt);
	if (dp)
		ops->remove(dp, spi_in);
	dpthread_unlock(&d->dpt);
}

static int child_counters(void *arg, uint32_t spi_in, struct child_sa_counters *out)
{
	struct daemon *d = arg;
	void *dp;
	const struct child_sa_ops *ops = dataplane_ops(d, &dp);

	dpthread_lock(&d->dpt);
	int err = dp ? ops->counters(dp, spi_in, out) : -ENOENT;
	dpthread_unlock(&d->dpt);
	return err;
}

const struct child_sa_ops wiring_child_ops = {
	.install = child_install, .update_conn = child_update_conn, .remove = child_remove,
	.counters = child_counters,
};

int wiring_send_esp(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	(void)arg;
	return transport_send(c, ENCAP_ESP, esp, len);
}

_Static_assert(DATAPLANE_QUEUE_LEAD == TRANSPORT_QUEUE_LEAD, "a queued packet leaves room for its frame header");

int wiring_queue_esp(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	(void)arg;
	/* A batch's sealed packet (dataplane_set_batch, afxdp_set_batch): writable, its lead before it. */
	return transport_queue(c, ENCAP_ESP, (uint8_t *)esp, len);
}

void wiring_flush_esp(void *arg)
{
	struct daemon *d = arg;

	if (d->tp)
		transport_flush(d->tp);
}
