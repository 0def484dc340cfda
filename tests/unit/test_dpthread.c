/*
 * The dataplane thread (daemon/dpthread.c) and the shared-loop rules it relies on (daemon/loop.c):
 * events reach the IKE loop in order and only IKE messages are ever refused; a timer armed from the
 * IKE thread wakes the sleeping dataplane thread; a descriptor deleted while the loop's thread was
 * between epoll_wait and its lock never gets its stale event; the IKE thread gets the lock from a
 * dataplane thread that is never idle.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "dpthread.h"
#include "iketcp/compiler.h"
#include "iketcp/stats.h"
#include "tests/lib/mono_ms.h"

struct sink_log {
	int n;
	enum dp_event_kind kinds[8];
	uintptr_t conns[8];
	size_t lens[8];
	uint64_t done_seq;
	int done_calls;
};

static void sink_event(void *arg, const struct dp_event *ev)
{
	struct sink_log *l = arg;
	if (l->n < 8) {
		l->kinds[l->n] = ev->kind;
		l->conns[l->n] = (uintptr_t)ev->c;
		l->lens[l->n] = ev->len;
	}
	if (ev->kind == DP_EV_IKE && ev->len)
		assert_int_equal(ev->msg[0], 0xab);
	l->n++;
}

static void sink_done(void *arg, uint64_t seq)
{
	struct sink_log *l = arg;
	l->done_seq = seq;
	l->done_calls++;
}

struct fx {
	struct loop *ike_loop;
	struct dpthread t;
	struct sink_log log;
};

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->ike_loop = loop_new();
	assert_non_null(f->ike_loop);
	struct dpthread_sink sink = { .event = sink_event, .done = sink_done, .arg = &f->log };
	assert_int_equal(dpthread_init(&f->t, f->ike_loop, &sink), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	dpthread_stop(&f->t);
	dpthread_free(&f->t);
	loop_free(f->ike_loop);
	free(f);
}

/* Order, the bound on IKE messages (counted), and closes that are never refused. */
static void test_queue_order_and_bound(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	static uint8_t msg[300];
	memset(msg, 0xab, sizeof(msg));
	memset(&stats, 0, sizeof(stats));

	dpthread_lock(&f->t);
	assert_true(dpthread_post(&f->t, DP_EV_CONNECTED, (struct tcp_conn *)0x10, NULL, 0));
	assert_true(dpthread_post(&f->t, DP_EV_IKE, (struct tcp_conn *)0x10, msg, sizeof(msg)));
	assert_true(dpthread_post(&f->t, DP_EV_ALIVE, (struct tcp_conn *)0x10, msg, sizeof(msg)));
	for (int i = 1; i < DPTHREAD_MAX_MSGS; i++)
		assert_true(dpthread_post(&f->t, DP_EV_IKE, (struct tcp_conn *)0x20, msg, 28));
	/* Full: the next message is dropped and counted, a close still gets through. */
	assert_false(dpthread_post(&f->t, DP_EV_IKE, (struct tcp_conn *)0x20, msg, 28));
	assert_int_equal(stats.ike.queue_drops, 1);
	assert_true(dpthread_post(&f->t, DP_EV_CLOSED, (struct tcp_conn *)0x20, NULL, 0));
	dpthread_unlock(&f->t);

	assert_int_equal(loop_once(f->ike_loop, 1000), 0);
	assert_int_equal(f->log.n, DPTHREAD_MAX_MSGS + 3);
	assert_int_equal(f->log.kinds[0], DP_EV_CONNECTED);
	assert_int_equal(f->log.kinds[1], DP_EV_IKE);
	assert_int_equal(f->log.lens[1], sizeof(msg));
	assert_int_equal(f->log.kinds[2], DP_EV_ALIVE);
	assert_int_equal(f->log.lens[2], 0); /* only IKE messages carry bytes */
	assert_int_equal(f->log.done_calls, 1);
	assert_int_equal(f->log.done_seq, DPTHREAD_MAX_MSGS + 3);

	/* Drained: room again. A byte bound too: 16 MiB of big messages. */
	dpthread_lock(&f->t);
	int taken = 0;
	static uint8_t big[60000];
	memset(big, 0xab, sizeof(big));
	while (dpthread_post(&f->t, DP_EV_IKE, NULL, big, sizeof(big)))
		taken++;
	assert_int_equal(taken, DPTHREAD_MAX_BYTES / sizeof(big));
	assert_int_equal(stats.ike.queue_drops, 2);
	dpthread_purge(&f->t); /* a transport being replaced: nothing is delivered */
	dpthread_unlock(&f->t);
	f->log.n = 0;
	loop_once(f->ike_loop, 50);
	assert_int_equal(f->log.n, 0);
	fx_free(f);
}

static atomic_int fired;

static void on_timer(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	(void)t;
	atomic_store(&fired, 1);
}

/* The dataplane thread sleeps with nothing to do; a timer armed from the IKE thread still fires. */
static void test_timer_from_ike_thread_wakes(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	struct loop_timer t;

	loop_timer_init(&t, on_timer);
	atomic_store(&fired, 0);
	assert_int_equal(dpthread_start(&f->t), 0);
	usleep(100 * 1000); /* asleep in epoll_wait, without a timeout */
	dpthread_lock(&f->t);
	assert_int_equal(loop_timer_arm(f->t.loop, &t, 20), 0);
	dpthread_unlock(&f->t);
	uint64_t t0 = mono_ms();
	while (!atomic_load(&fired) && mono_ms() - t0 < 3000)
		usleep(1000);
	assert_true(atomic_load(&fired));
	dpthread_lock(&f->t);
	loop_timer_cancel(f->t.loop, &t);
	dpthread_unlock(&f->t);
	fx_free(f);
}

/* Events posted on the dataplane thread reach the IKE loop. */
struct poster {
	struct loop_io io;
	struct dpthread *t;
	int fds[2];
};

static void poster_readable(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct poster *p = (struct poster *)io;
	uint8_t b;
	(void)loop;
	(void)events;
	while (read(p->fds[0], &b, 1) == 1)
		dpthread_post(p->t, DP_EV_IKE, NULL, (const uint8_t[]){ 0xab, b }, 2);
}

static void test_events_cross_threads(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	struct poster p = { .t = &f->t };

	assert_int_equal(pipe2(p.fds, O_NONBLOCK), 0);
	assert_int_equal(loop_io_add(f->t.loop, &p.io, p.fds[0], EPOLLIN, poster_readable), 0);
	assert_int_equal(dpthread_start(&f->t), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(write(p.fds[1], "x", 1), 1);
	uint64_t t0 = mono_ms();
	while (f->log.n < 5 && mono_ms() - t0 < 3000)
		loop_once(f->ike_loop, 100);
	assert_int_equal(f->log.n, 5);
	dpthread_stop(&f->t);
	loop_io_del(f->t.loop, &p.io);
	close(p.fds[0]);
	close(p.fds[1]);
	fx_free(f);
}

/* ---- loop.c: a descriptor deleted while the loop's thread waits for its lock ---- */

struct stale {
	struct loop *loop;
	struct loop_io io;
	int calls;
	bool delete_in_after;
};

static void stale_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct stale *s = container_of(io, struct stale, io);
	(void)loop;
	(void)events;
	s->calls++;
}

static void hook_before(void *arg) { (void)arg; }

static void hook_after(void *arg)
{
	struct stale *s = arg;
	/* What the IKE thread does while the dataplane thread is still blocked on the lock. */
	if (s->delete_in_after) {
		loop_io_del(s->loop, &s->io);
		s->delete_in_after = false;
	}
}

static void test_loop_drops_stale_batch(void **state)
{
	(void)state;
	struct stale s = { 0 };
	int fds[2];

	s.loop = loop_new();
	assert_non_null(s.loop);
	loop_set_wait_hooks(s.loop, hook_before, hook_after, &s);
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(loop_io_add(s.loop, &s.io, fds[0], EPOLLIN, stale_cb), 0);
	/* Readable, but deleted after epoll_wait reported it: the callback must not run. */
	s.delete_in_after = true;
	assert_int_equal(loop_once(s.loop, 100), 0);
	assert_int_equal(s.calls, 0);
	/* Level-triggered: added again, the pending byte is reported in the next batch. */
	assert_int_equal(loop_io_add(s.loop, &s.io, fds[0], EPOLLIN, stale_cb), 0);
	assert_int_equal(loop_once(s.loop, 100), 0);
	assert_int_equal(s.calls, 1);
	loop_io_del(s.loop, &s.io);
	close(fds[0]);
	close(fds[1]);
	loop_free(s.loop);
}

/* ---- the lock: the IKE thread gets in even when the dataplane thread never sleeps ---- */

struct busy {
	struct loop_io io;
	atomic_long spins;
};

static void busy_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct busy *b = (struct busy *)io;
	(void)loop;
	(void)events;
	atomic_fetch_add(&b->spins, 1); /* never drains the fd: readable forever */
}

static void test_lock_under_busy_dataplane(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	struct busy b = { 0 };
	int fds[2];

	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(loop_io_add(f->t.loop, &b.io, fds[0], EPOLLIN, busy_cb), 0);
	assert_int_equal(dpthread_start(&f->t), 0);
	while (atomic_load(&b.spins) < 100)
		usleep(1000);
	for (int i = 0; i < 2000; i++) {
		dpthread_lock(&f->t);
		dpthread_lock(&f->t); /* nests */
		dpthread_unlock(&f->t);
		dpthread_unlock(&f->t);
	}
	long before = atomic_load(&b.spins);
	usleep(20 * 1000);
	assert_true(atomic_load(&b.spins) > before); /* and the dataplane thread went on working */
	dpthread_stop(&f->t);
	loop_io_del(f->t.loop, &b.io);
	close(fds[0]);
	close(fds[1]);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_order_and_bound),
		cmocka_unit_test(test_timer_from_ike_thread_wakes),
		cmocka_unit_test(test_events_cross_threads),
		cmocka_unit_test(test_loop_drops_stale_batch),
		cmocka_unit_test(test_lock_under_busy_dataplane),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
