/* epoll + a binary min-heap of timers. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "iketcp/compiler.h"
#include "loop.h"

#define LOOP_BATCH 64

struct loop {
	int epfd;
	bool stop;
	uint64_t now_ms;
	struct loop_timer **heap;
	size_t heap_len, heap_cap;
	/* The batch being dispatched, so loop_io_del can cancel pending events. */
	struct epoll_event batch[LOOP_BATCH];
	int batch_len, batch_pos;
	/* Shared loops (loop_set_wait_hooks): while its thread sleeps in epoll_wait another thread may
	 * change the loop. A deleted or modified descriptor makes the batch being collected stale (it is
	 * dropped: every descriptor is level-triggered, so what is still pending comes back); a timer due
	 * before the sleep ends asks for a wake-up. */
	void (*before_wait)(void *arg), (*after_wait)(void *arg);
	void *wait_arg;
	bool in_wait, batch_stale, wake_needed;
	uint64_t wait_until_ms;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
	struct loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	loop->now_ms = mono_ms();
	return loop;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->heap);
	free(loop);
}

uint64_t loop_now_ms(struct loop *loop) { return loop->now_ms; }

int loop_io_add(struct loop *loop, struct loop_io *io, int fd, uint32_t events,
		void (*cb)(struct loop *, struct loop_io *, uint32_t))
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->events = events;
	io->cb = cb;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int loop_io_mod(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (io->events == events)
		return 0;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	io->events = events;
	loop->batch_stale |= loop->in_wait;
	return 0;
}

void loop_io_del(struct loop *loop, struct loop_io *io)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	loop->batch_stale |= loop->in_wait;
	for (int i = loop->batch_pos; i < loop->batch_len; i++)
		if (loop->batch[i].data.ptr == io)
			loop->batch[i].data.ptr = NULL;
}

/* ---- timers: a min-heap ordered by when_ms ---- */

static void heap_swap(struct loop *loop, size_t a, size_t b)
{
	struct loop_timer *t = loop->heap[a];
	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
	loop->heap[a]->heap_idx = a;
	loop->heap[b]->heap_idx = b;
}

static void heap_up(struct loop *loop, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (loop->heap[parent]->when_ms <= loop->heap[i]->when_ms)
			break;
		heap_swap(loop, i, parent);
		i = parent;
	}
}

static void heap_down(struct loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		if (l < loop->heap_len && loop->heap[l]->when_ms < loop->heap[min]->when_ms)
			min = l;
		if (r < loop->heap_len && loop->heap[r]->when_ms < loop->heap[min]->when_ms)
			min = r;
		if (min == i)
			return;
		heap_swap(loop, i, min);
		i = min;
	}
}

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop *, struct loop_timer *))
{
	t->when_ms = 0;
	t->heap_idx = SIZE_MAX;
	t->cb = cb;
}

bool loop_timer_armed(const struct loop_timer *t) { return t->heap_idx != SIZE_MAX; }

void loop_timer_cancel(struct loop *loop, struct loop_timer *t)
{
	size_t i = t->heap_idx;

	if (i == SIZE_MAX)
		return;
	t->heap_idx = SIZE_MAX;
	loop->heap_len--;
	if (i == loop->heap_len)
		return;
	loop->heap[i] = loop->heap[loop->heap_len];
	loop->heap[i]->heap_idx = i;
	heap_up(loop, i);
	heap_down(loop, loop->heap[i]->heap_idx);
}

int loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t delay_ms)
{
	loop_timer_cancel(loop, t);
	if (loop->heap_len == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct loop_timer **h = reallocarray(loop->heap, cap, sizeof(*h));
		if (!h)
			return -ENOMEM;
		loop->heap = h;
		loop->heap_cap = cap;
	}
	t->when_ms = loop->now_ms + delay_ms;
	t->heap_idx = loop->heap_len;
	loop->heap[loop->heap_len++] = t;
	heap_up(loop, t->heap_idx);
	if (loop->in_wait && t->when_ms < loop->wait_until_ms)
		loop->wake_needed = true;
	return 0;
}

static void run_timers(struct loop *loop)
{
	while (loop->heap_len && loop->heap[0]->when_ms <= loop->now_ms) {
		struct loop_timer *t = loop->heap[0];
		loop_timer_cancel(loop, t);
		t->cb(loop, t);
	}
}

static int next_timeout(struct loop *loop, int cap_ms)
{
	if (!loop->heap_len)
		return cap_ms;
	uint64_t when = loop->heap[0]->when_ms;
	uint64_t wait = when > loop->now_ms ? when - loop->now_ms : 0;
	if (cap_ms >= 0 && wait > (uint64_t)cap_ms)
		return cap_ms;
	return wait > 60000 ? 60000 : (int)wait;
}

int loop_once(struct loop *loop, int timeout_ms)
{
	int timeout = next_timeout(loop, timeout_ms);
	int n, err = 0;

	if (loop->before_wait) {
		loop->in_wait = true;
		loop->batch_stale = loop->wake_needed = false;
		loop->wait_until_ms = timeout < 0 ? UINT64_MAX : loop->now_ms + (uint64_t)timeout;
		loop->before_wait(loop->wait_arg);
	}
	n = epoll_wait(loop->epfd, loop->batch, LOOP_BATCH, timeout);
	if (n < 0)
		err = errno;
	if (loop->after_wait) {
		loop->after_wait(loop->wait_arg);
		loop->in_wait = false;
		if (loop->batch_stale)
			n = 0;
	}
	if (n < 0 && err != EINTR)
		return -err;
	loop->now_ms = mono_ms();
	loop->batch_len = n > 0 ? n : 0;
	for (loop->batch_pos = 0; loop->batch_pos < loop->batch_len;) {
		struct epoll_event *ev = &loop->batch[loop->batch_pos++];
		struct loop_io *io = ev->data.ptr;
		if (io)
			io->cb(loop, io, ev->events);
	}
	loop->batch_len = loop->batch_pos = 0;
	run_timers(loop);
	return 0;
}

int loop_run(struct loop *loop)
{
	loop->stop = false;
	while (!loop->stop) {
		int err = loop_once(loop, -1);
		if (err)
			return err;
	}
	return 0;
}

void loop_stop(struct loop *loop) { loop->stop = true; }

void loop_set_wait_hooks(struct loop *loop, void (*before)(void *), void (*after)(void *), void *arg)
{
	loop->before_wait = before;
	loop->after_wait = after;
	loop->wait_arg = arg;
}

bool loop_sleeping(struct loop *loop)
{
	if (loop->in_wait)
		loop->now_ms = mono_ms(); /* its own clock stopped when it went to sleep */
	return loop->in_wait;
}

bool loop_take_wake(struct loop *loop)
{
	bool wake = loop->wake_needed;

	loop->wake_needed = false;
	return wake;
}

bool loop_accept_pause(struct loop *loop, struct loop_io *io, struct loop_timer *resume, int err)
{
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return false;
	if (!loop_io_mod(loop, io, 0) && !loop_timer_arm(loop, resume, LOOP_ACCEPT_PAUSE_MS))
		return true;
	(void)loop_io_mod(loop, io, EPOLLIN); /* no pause to be had: as before, watched */
	return false;
}
