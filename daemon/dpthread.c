/* The dataplane thread, its lock, and the queue from it to the IKE thread (see dpthread.h). */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dpthread.h"
#include "iketcp/compiler.h"
#include "iketcp/log.h"
#include "iketcp/stats.h"

/* How deep the IKE thread is in dpthread_lock (it may nest). */
static __thread unsigned lock_depth;

static void kick(int fd)
{
	uint64_t one = 1;
	/* EAGAIN: the counter is already non-zero, so the reader wakes anyway. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("dataplane thread: eventfd write: %s", strerror(errno));
}

static void drain_fd(int fd)
{
	uint64_t n;
	while (read(fd, &n, sizeof(n)) == sizeof(n))
		;
}

/* ---- the dataplane thread's side of the lock ---- */

static void before_wait(void *arg)
{
	struct dpthread *t = arg;
	pthread_mutex_unlock(&t->mx);
}

static void after_wait(void *arg)
{
	struct dpthread *t = arg;
	/* The IKE thread is waiting: let it in first, or a busy dataplane could keep the lock forever. */
	while (atomic_load_explicit(&t->want, memory_order_acquire))
		sched_yield();
	pthread_mutex_lock(&t->mx);
}

static void wake_readable(struct loop *loop, struct loop_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	drain_fd(io->fd);
}

static void *thread_main(void *arg)
{
	struct dpthread *t = arg;
	int err = 0;

	pthread_mutex_lock(&t->mx);
	while (!t->stopping && !err)
		err = loop_once(t->loop, -1);
	if (err)
		log_error("dataplane thread: event loop: %s; packets stop", strerror(-err));
	pthread_mutex_unlock(&t->mx);
	return NULL;
}

/* ---- the IKE thread's side ---- */

void dpthread_lock(struct dpthread *t)
{
	if (lock_depth++) {
		pthread_mutex_lock(&t->mx);
		return;
	}
	atomic_fetch_add_explicit(&t->want, 1, memory_order_acq_rel);
	pthread_mutex_lock(&t->mx);
	atomic_fetch_sub_explicit(&t->want, 1, memory_order_acq_rel);
	(void)loop_sleeping(t->loop); /* timers armed from here start from now, not from its last wake-up */
}

void dpthread_unlock(struct dpthread *t)
{
	bool wake = false;

	if (--lock_depth == 0)
		wake = loop_take_wake(t->loop);
	pthread_mutex_unlock(&t->mx);
	if (wake)
		kick(t->wake_fd);
}

static void queue_readable(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct dpthread *t = container_of(io, struct dpthread, queue_io);
	struct dp_event *ev, *next;
	uint64_t seq;

	(void)loop;
	(void)events;
	drain_fd(io->fd);
	dpthread_lock(t);
	ev = t->head;
	t->head = t->tail = NULL;
	t->n_msgs = 0;
	t->bytes = 0;
	seq = t->lost ? 0 : t->queued_seq;
	dpthread_unlock(t);

	for (; ev; ev = next) {
		next = ev->next;
		t->sink.event(t->sink.arg, ev);
		free(ev);
	}
	dpthread_lock(t);
	t->sink.done(t->sink.arg, seq);
	dpthread_unlock(t);
}

/* ---- the queue ---- */

static void enqueue(struct dpthread *t, struct dp_event *ev)
{
	t->queued_seq++;
	if (t->tail) {
		t->tail->next = ev;
	} else {
		t->head = ev;
		kick(t->queue_fd);
	}
	t->tail = ev;
}

bool dpthread_post(struct dpthread *t, enum dp_event_kind kind, struct tcp_conn *c, const uint8_t *msg,
		   size_t len)
{
	struct dp_event *ev;

	if (kind != DP_EV_IKE)
		len = 0;
	/* Only IKE messages may be refused: losing a close would leave IKE holding a dangling stream. */
	if (kind == DP_EV_IKE && (t->n_msgs >= DPTHREAD_MAX_MSGS || t->bytes + len > DPTHREAD_MAX_BYTES)) {
		STAT_INC(ike, queue_drops);
		return false;
	}
	ev = malloc(sizeof(*ev) + len);
	if (!ev) {
		if (kind == DP_EV_IKE) {
			STAT_INC(ike, queue_drops);
			return false;
		}
		/* IKE may now hold a connection it will never hear is gone: from here on nothing buried is
		 * freed (a leak, not a use after free), and DPD ends the SAs on dead connections. */
		if (!t->lost)
			log_error("dataplane thread: out of memory: a connection event was lost; connections "
				  "are no longer freed");
		t->lost = true;
		return false;
	}
	ev->next = NULL;
	ev->kind = kind;
	ev->c = c;
	ev->spi_in = 0;
	ev->len = len;
	if (len)
		memcpy(ev->msg, msg, len);
	if (kind == DP_EV_IKE) {
		t->n_msgs++;
		t->bytes += len;
	}
	enqueue(t, ev);
	return true;
}

bool dpthread_post_soft_life(struct dpthread *t, uint32_t spi_in)
{
	struct dp_event *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return false;
	ev->kind = DP_EV_SOFT_LIFE;
	ev->spi_in = spi_in;
	enqueue(t, ev);
	return true;
}

void dpthread_purge(struct dpthread *t)
{
	for (struct dp_event *ev = t->head, *next; ev; ev = next) {
		next = ev->next;
		free(ev);
	}
	t->head = t->tail = NULL;
	t->n_msgs = 0;
	t->bytes = 0;
}

/* ---- lifecycle ---- */

int dpthread_init(struct dpthread *t, struct loop *ike_loop, const struct dpthread_sink *sink)
{
	pthread_mutexattr_t ma;
	int err;

	memset(t, 0, sizeof(*t));
	t->wake_fd = t->queue_fd = -1;
	t->ike_loop = ike_loop;
	t->sink = *sink;
	atomic_init(&t->want, 0);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	err = pthread_mutex_init(&t->mx, &ma);
	pthread_mutexattr_destroy(&ma);
	if (err)
		return -err;
	if (!(t->loop = loop_new()))
		goto fail_nomem;
	t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->queue_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->wake_fd < 0 || t->queue_fd < 0) {
		err = -errno;
		goto fail;
	}
	if ((err = loop_io_add(t->loop, &t->wake_io, t->wake_fd, EPOLLIN, wake_readable)) ||
	    (err = loop_io_add(ike_loop, &t->queue_io, t->queue_fd, EPOLLIN, queue_readable))) {
		loop_io_del(t->loop, &t->wake_io);
		goto fail;
	}
	loop_set_wait_hooks(t->loop, before_wait, after_wait, t);
	return 0;

fail_nomem:
	err = -ENOMEM;
fail:
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	if (t->queue_fd >= 0)
		close(t->queue_fd);
	loop_free(t->loop);
	t->loop = NULL;
	t->wake_fd = t->queue_fd = -1;
	pthread_mutex_destroy(&t->mx);
	return err;
}

int dpthread_start(struct dpthread *t)
{
	int err = pthread_create(&t->tid, NULL, thread_main, t);

	if (err) {
		log_error("cannot start the dataplane thread: %s", strerror(err));
		return -err;
	}
	t->running = true;
	return 0;
}

void dpthread_stop(struct dpthread *t)
{
	if (!t->running)
		return;
	dpthread_lock(t);
	t->stopping = true;
	dpthread_unlock(t);
	kick(t->wake_fd);
	pthread_join(t->tid, NULL);
	t->running = false;
}

void dpthread_free(struct dpthread *t)
{
	if (!t->loop)
		return;
	dpthread_purge(t);
	loop_io_del(t->ike_loop, &t->queue_io);
	loop_io_del(t->loop, &t->wake_io);
	close(t->wake_fd);
	close(t->queue_fd);
	loop_free(t->loop);
	t->loop = NULL;
	pthread_mutex_destroy(&t->mx);
}
