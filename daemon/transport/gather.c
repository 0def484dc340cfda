/*
 * Frames transport_queue holds by reference until transport_flush, on plain
 * TCP streams: the dataplane's sealed ESP stays in its batch until the flush,
 * with room before it for the frame header, so each frame goes from there to
 * the socket whole, in one sendmsg per stream, without a copy into the send
 * queue. Only what the socket refuses is copied, behind whatever the queue
 * already holds, so a stream's bytes keep their order.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "iketcp/stats.h"
#include "transport/internal.h"

void gather_add(struct tcp_conn *c, const uint8_t *frame, size_t len)
{
	struct gather_frame *f = &c->tp->gather[c->tp->n_gather++];

	f->c = c;
	f->p = frame;
	f->len = len;
	c->gather_bytes += len;
}

static void forget(struct gather_frame *f)
{
	f->c->gather_bytes -= f->len;
	f->c = NULL;
}

void gather_drop(struct tcp_conn *c)
{
	for (unsigned i = 0; c->gather_bytes && i < c->tp->n_gather; i++)
		if (c->tp->gather[i].c == c)
			forget(&c->tp->gather[i]);
}

/* From byte skip of f on into the queue; a whole frame that finds no room is lost like a packet. */
static int copy_out(struct tcp_conn *c, struct gather_frame *f, size_t skip)
{
	int err = conn_txq_append(c, f->p + skip, f->len - skip, NULL, 0);

	if (err && !skip)
		STAT_INC(tcp, write_overflow);
	forget(f);
	return skip ? err : 0;
}

void gather_spill(struct tcp_conn *c)
{
	for (unsigned i = 0; c->gather_bytes && i < c->tp->n_gather; i++)
		if (c->tp->gather[i].c == c)
			(void)copy_out(c, &c->tp->gather[i], 0);
}

int gather_write(struct tcp_conn *c)
{
	struct transport *tp = c->tp;
	struct iovec *iov = tp->gather_iov;
	unsigned k = 0;

	if (!c->gather_bytes)
		return 0;
	if (c->txq_len) { /* the socket is behind: these go after what waits */
		gather_spill(c);
		return 0;
	}
	for (unsigned i = 0; i < tp->n_gather; i++) {
		struct gather_frame *f = &tp->gather[i];
		if (f->c != c)
			continue;
		if (k && (const uint8_t *)iov[k - 1].iov_base + iov[k - 1].iov_len == f->p)
			iov[k - 1].iov_len += f->len; /* back to back in the caller's buffer */
		else
			iov[k++] = (struct iovec){ (void *)f->p, f->len };
	}
	ssize_t n = sendmsg(c->io.fd, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = k }, MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		gather_drop(c);
		conn_close(c, CLOSE_RESET);
		return -1;
	}
	/* What went out is done; the frame cut short and those after it wait in the queue. */
	size_t done = n > 0 ? (size_t)n : 0;
	for (unsigned i = 0; c->gather_bytes && i < tp->n_gather; i++) {
		struct gather_frame *f = &tp->gather[i];
		if (f->c != c)
			continue;
		if (done >= f->len) {
			done -= f->len;
			forget(f);
			continue;
		}
		if (copy_out(c, f, done)) { /* half a frame is on the wire: the stream cannot be resynchronised */
			gather_drop(c);
			conn_close(c, CLOSE_OVERFLOW);
			return -1;
		}
		done = 0;
	}
	return 0;
}

void gather_compact(struct transport *tp)
{
	unsigned k = 0;

	for (unsigned i = 0; i < tp->n_gather; i++)
		if (tp->gather[i].c)
			tp->gather[k++] = tp->gather[i];
	tp->n_gather = k;
}
