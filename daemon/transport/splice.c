/*
 * Admin coexistence: a connection on the IKE port that is plain HTTP, or TLS
 * offering ALPN http/1.1 or h2, is relayed byte for byte to the admin service
 * on the same local address at admin-sport. Its TLS is not terminated here.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "transport/internal.h"

#define SPLICE_BUF 65536

struct pipe_buf {
	uint8_t data[SPLICE_BUF];
	size_t len, off;
	bool eof;      /* the reading side has closed */
	bool shut;     /* we have passed the close on */
};

struct splice {
	struct tcp_conn *c;      /* the client side; c->io.fd is its socket */
	struct loop_io client_io;
	struct loop_io admin_io;
	bool client_watched, admin_watched; /* in the loop (see watch) */
	bool admin_connected;
	struct pipe_buf to_admin, to_client;
};

static void splice_client_cb(struct loop *loop, struct loop_io *io, uint32_t events);
static void splice_admin_cb(struct loop *loop, struct loop_io *io, uint32_t events);

/* Read what fits from `from`, write what is buffered to `to`. Returns -1 on a socket error. */
static int pump(int from, int to, struct pipe_buf *b, bool can_write)
{
	if (!b->eof && b->len < SPLICE_BUF) {
		ssize_t n = read(from, b->data + b->len, SPLICE_BUF - b->len);
		if (n == 0)
			b->eof = true;
		else if (n > 0)
			b->len += (size_t)n;
		else if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
	if (can_write && b->off < b->len) {
		ssize_t n = send(to, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
		if (n > 0)
			b->off += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (b->off == b->len)
			b->off = b->len = 0;
	}
	if (can_write && b->eof && b->len == 0 && !b->shut) {
		shutdown(to, SHUT_WR);
		b->shut = true;
	}
	return 0;
}

/*
 * Wait for ev on io. A socket we expect nothing of leaves the loop: epoll reports a hung-up or failed
 * socket whatever it was asked for, so with no events it would wake us forever, and every wakeup would
 * count as activity that keeps the idle timeout away.
 */
static int watch(struct loop *loop, struct loop_io *io, bool *watched, uint32_t ev)
{
	if (!ev) {
		if (*watched)
			loop_io_del(loop, io);
		*watched = false;
		return 0;
	}
	if (*watched)
		return loop_io_mod(loop, io, ev);
	int err = loop_io_add(loop, io, io->fd, ev, io->cb);
	*watched = !err;
	return err;
}

static int splice_update(struct splice *s)
{
	struct loop *loop = s->c->tp->loop;
	uint32_t cev = 0, aev = 0;
	int err;

	if (!s->to_admin.eof && s->to_admin.len < SPLICE_BUF)
		cev |= EPOLLIN;
	if (s->to_client.len > s->to_client.off)
		cev |= EPOLLOUT;
	if (!s->admin_connected || s->to_admin.len > s->to_admin.off)
		aev |= EPOLLOUT;
	if (s->admin_connected && !s->to_client.eof && s->to_client.len < SPLICE_BUF)
		aev |= EPOLLIN;
	if ((err = watch(loop, &s->client_io, &s->client_watched, cev)) ||
	    (err = watch(loop, &s->admin_io, &s->admin_watched, aev)))
		log_error("epoll: cannot update admin pass-through events");
	return err;
}

static void splice_step(struct splice *s)
{
	struct tcp_conn *c = s->c;
	int cfd = s->client_io.fd, afd = s->admin_io.fd;

	c->last_rx_ms = loop_now_ms(c->tp->loop);
	if (pump(cfd, afd, &s->to_admin, s->admin_connected) ||
	    (s->admin_connected && pump(afd, cfd, &s->to_client, true))) {
		conn_close(c, CLOSE_RESET);
		return;
	}
	if (s->to_admin.shut && s->to_client.shut) {
		conn_close(c, CLOSE_PEER);
		return;
	}
	(void)splice_update(s); /* logged; the idle timeout ends a connection left unwatched */
}

static void splice_client_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	splice_step(container_of(io, struct splice, client_io));
}

static void splice_admin_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct splice *s = container_of(io, struct splice, admin_io);
	(void)loop;

	if (!s->admin_connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			log_warn("admin pass-through: cannot reach the admin service: %s",
				 strerror(err ? err : errno));
			conn_close(s->c, CLOSE_RESET);
			return;
		}
		s->admin_connected = true;
	}
	splice_step(s);
}

int splice_start(struct tcp_conn *c, uint16_t admin_port, const uint8_t *sniffed, size_t len)
{
	struct loop *loop = c->tp->loop;
	struct sockaddr_storage admin = c->local;
	struct splice *s;
	int afd, err;

	/* The admin service at the address the client reached, on admin-sport. */
	if (admin.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&admin)->sin6_port = htons(admin_port);
	else
		((struct sockaddr_in *)&admin)->sin_port = htons(admin_port);

	if (len > SPLICE_BUF)
		return -EMSGSIZE;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	afd = socket(admin.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (afd < 0 || (connect(afd, (struct sockaddr *)&admin, sizeof(admin)) < 0 && errno != EINPROGRESS)) {
		err = -errno;
		log_warn("admin pass-through: connect: %s", strerror(errno));
		if (afd >= 0)
			close(afd);
		free(s);
		return err;
	}
	s->c = c;
	memcpy(s->to_admin.data, sniffed, len); /* the bytes sniffed so far go first */
	s->to_admin.len = len;

	/* The client socket moves from conn.c's callback to ours. */
	loop_io_del(loop, &c->io);
	s->client_io = (struct loop_io){ .fd = c->io.fd, .cb = splice_client_cb };
	s->admin_io = (struct loop_io){ .fd = afd, .cb = splice_admin_cb };
	if (splice_update(s)) {
		loop_io_del(loop, &s->client_io);
		loop_io_del(loop, &s->admin_io);
		close(afd);
		free(s);
		return -ENOMEM;
	}
	c->splice = s;
	c->state = CONN_SPLICE;
	STAT_INC(tcp, admin_passthrough);
	return 0;
}

void splice_free(struct tcp_conn *c)
{
	struct splice *s = c->splice;
	struct loop *loop = c->tp->loop;

	loop_io_del(loop, &s->client_io);
	loop_io_del(loop, &s->admin_io);
	close(s->admin_io.fd);
	free(s);
	c->splice = NULL;
}
