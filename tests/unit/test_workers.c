/*
 * The crypto workers (daemon/workers.c): every item of every batch runs exactly once, batches do not
 * bleed into each other however late a worker wakes, the caller gets the workers' writes, and the
 * items really run on more than one thread at once.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "workers.h"

struct count_batch {
	unsigned n;
	unsigned round;
	_Atomic bool out_of_range; /* no cmocka asserts off the test's thread */
	_Atomic unsigned calls[1000];
	unsigned value[1000]; /* plain writes: the caller must see them after workers_run */
};

static void count_item(void *arg, unsigned i)
{
	struct count_batch *b = arg;

	if (i >= b->n) {
		atomic_store(&b->out_of_range, true);
		return;
	}
	atomic_fetch_add(&b->calls[i], 1);
	b->value[i] = b->round * 1000 + i;
}

/* One batch of n items, numbered round: each ran once and its write is seen here. */
static void run_batch(struct workers *w, struct count_batch *b, unsigned round, unsigned n)
{
	b->n = n;
	b->round = round;
	for (unsigned i = 0; i < n; i++)
		atomic_store(&b->calls[i], 0);
	workers_run(w, n, count_item, b);
	assert_false(atomic_load(&b->out_of_range));
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(atomic_load(&b->calls[i]), 1);
		assert_int_equal(b->value[i], round * 1000 + i);
	}
}

static void run_rounds(struct workers *w, unsigned rounds)
{
	struct count_batch *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	srand(7);
	for (unsigned r = 1; r <= rounds; r++)
		run_batch(w, b, r, (unsigned)rand() % 1000);
	free(b);
}

static void test_every_item_once(void **state)
{
	(void)state;
	for (unsigned t = 1; t <= 4; t++) {
		struct workers *w = workers_new(t);
		assert_non_null(w);
		assert_int_equal(workers_threads(w), t);
		run_rounds(w, 2000);
		workers_free(w);
	}
	run_rounds(NULL, 10); /* no workers: all on this thread */
}

/* Tiny batches back to back: a worker that wakes for one may find the next one published. */
static void test_tiny_batches(void **state)
{
	struct workers *w = workers_new(4);
	struct count_batch *b = calloc(1, sizeof(*b));

	(void)state;
	assert_non_null(w);
	assert_non_null(b);
	for (unsigned r = 1; r <= 50000; r++)
		run_batch(w, b, r, 2 + r % 3);
	free(b);
	workers_free(w);
}

struct overlap {
	pthread_t caller;
	uint64_t until;
	_Atomic unsigned on_worker; /* items run by a thread that is not the caller */
	_Atomic bool timed_out;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The caller's items wait (10 s in all at most) until a worker has run one: only true parallelism ends it. */
static void overlap_item(void *arg, unsigned i)
{
	struct overlap *o = arg;

	(void)i;
	if (!pthread_equal(pthread_self(), o->caller)) {
		atomic_fetch_add(&o->on_worker, 1);
		return;
	}
	while (!atomic_load(&o->on_worker)) {
		if (now_ms() > o->until) {
			atomic_store(&o->timed_out, true);
			return;
		}
		sched_yield();
	}
}

static void test_items_run_at_once(void **state)
{
	struct workers *w = workers_new(2);
	struct overlap o = { .caller = pthread_self(), .until = now_ms() + 10000 };

	(void)state;
	assert_non_null(w);
	workers_run(w, 64, overlap_item, &o);
	assert_false(atomic_load(&o.timed_out));
	assert_true(atomic_load(&o.on_worker) >= 1);
	assert_int_equal(workers_helped(w), atomic_load(&o.on_worker));
	workers_free(w);
}

static void test_limits(void **state)
{
	struct count_batch b = { .n = 1, .round = 1 };
	struct workers *w;

	(void)state;
	w = workers_new(0); /* one per online CPU */
	assert_non_null(w);
	assert_int_equal(workers_threads(w), (unsigned)sysconf(_SC_NPROCESSORS_ONLN) > WORKERS_MAX
							  ? WORKERS_MAX
							  : (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	workers_run(w, 0, count_item, &b); /* nothing to do: fn never runs */
	assert_int_equal(atomic_load(&b.calls[0]), 0);
	workers_run(w, 1, count_item, &b);
	assert_int_equal(atomic_load(&b.calls[0]), 1);
	workers_free(w);
	assert_null(workers_new(WORKERS_MAX + 1));
	assert_int_equal(workers_threads(NULL), 1);
	assert_int_equal(workers_helped(NULL), 0);
	workers_free(NULL);
	/* Started and stopped again and again, idle or just after a batch. */
	for (int i = 0; i < 200; i++) {
		w = workers_new(3);
		assert_non_null(w);
		if (i % 2)
			run_rounds(w, 1);
		workers_free(w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_item_once),
		cmocka_unit_test(test_tiny_batches),
		cmocka_unit_test(test_items_run_at_once),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
