/*
 * The daemon's wiring: the RFC 9329 transport delivers IKE messages to the IKE
 * engine and ESP packets to the dataplane (by SPI); the engine sends through
 * the transport; the dataplane frames ESP onto each SA's stream.
 */
#include <netinet/in.h>

#include "daemon.h"
#include "dataplane/afxdp.h"
#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "wiring.h"

static void on_ike(void *arg, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	struct daemon *d = arg;

	ike_input(d->ike, c, msg, len);
}

static void on_esp(void *arg, struct tcp_conn *c, const uint8_t *pkt, size_t len)
{
	struct daemon *d = arg;

	if (d->ike)
		ike_peer_alive(d->ike, c); /* DPD: ESP from the peer is proof of life */
	if (d->xdp) {
		afxdp_esp_queue(d->xdp, c, pkt, len); /* sent at on_rx_batch_end */
		return;
	}
	if (d->dp) {
		dataplane_esp_input(d->dp, c, pkt, len);
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

static void on_connected(void *arg, struct tcp_conn *c)
{
	struct daemon *d = arg;
	ike_conn_up(d->ike, c);
}

static void on_closed(void *arg, struct tcp_conn *c)
{
	struct daemon *d = arg;
	if (d->ike)
		ike_conn_down(d->ike, c);
}

void wiring_transport_handlers(struct daemon *d, struct transport_handlers *h)
{
	*h = (struct transport_handlers){
		.ike = on_ike, .esp = on_esp, .connected = on_connected, .closed = on_closed,
		.rx_batch_end = on_rx_batch_end, .arg = d,
	};
}

static struct tcp_conn *io_connect(void *arg, const struct sockaddr *peer, socklen_t len, bool tls)
{
	struct daemon *d = arg;
	return transport_connect(d->tp, peer, len, tls);
}

static int io_send(void *arg, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	(void)arg;
	return transport_send(c, ENCAP_IKE, msg, len);
}

static void io_close(void *arg, struct tcp_conn *c)
{
	(void)arg;
	transport_conn_close(c);
}

static void io_hold(void *arg, struct tcp_conn *c, bool carries_sa)
{
	(void)arg;
	transport_conn_hold(c, carries_sa);
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

	*local = *transport_conn_local(c);
	*peer = *transport_conn_peer(c);
	/* NAT detection (RFC 9329 section 6.5) must hash what the peer hashed. */
	if (!transport_conn_outbound(c) && !transport_conn_is_udp(c))
		undo_steering(d, local);
}

static struct tcp_conn *io_open_udp(void *arg, const struct sockaddr *peer, socklen_t len, bool natt)
{
	struct daemon *d = arg;
	return transport_udp_open(d->tp, peer, len, natt);
}

static bool io_datagram(void *arg, struct tcp_conn *c)
{
	(void)arg;
	return transport_conn_is_udp(c);
}

static bool io_tls(void *arg, struct tcp_conn *c)
{
	(void)arg;
	return transport_conn_is_tls(c);
}

static bool io_natt(void *arg, struct tcp_conn *c)
{
	(void)arg;
	return transport_conn_is_natt(c);
}

void wiring_ike_io(struct daemon *d, struct ike_io *io)
{
	*io = (struct ike_io){
		.connect = io_connect, .send = io_send, .close = io_close, .hold = io_hold, .addrs = io_addrs,
		.open_udp = io_open_udp, .datagram = io_datagram, .natt = io_natt, .tls = io_tls, .arg = d,
	};
}

int wiring_send_esp(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	(void)arg;
	return transport_send(c, ENCAP_ESP, esp, len);
}

int wiring_queue_esp(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len)
{
	(void)arg;
	return transport_queue(c, ENCAP_ESP, esp, len);
}

void wiring_flush_esp(void *arg)
{
	struct daemon *d = arg;

	if (d->tp)
		transport_flush(d->tp);
}
