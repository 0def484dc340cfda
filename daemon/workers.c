/* The dataplane's crypto workers: a parallel for over a batch (see workers.h). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "iketcp/log.h"
#include "workers.h"

#define SPINS_BEFORE_YIELD 256 /* an item is a packet: a worker holding one is done within microseconds */

struct workers {
	unsigned threads; /* the caller included */
	unsigned started; /* threads running worker_main */
	pthread_t tid[WORKERS_MAX];
	/* gen (32 bits) | n (16) | next (16): one word, so a claim is for one batch only. */
	_Atomic uint64_t claim;
	_Atomic uint32_t gen;      /* the futex word: a new batch, or stop */
	_Atomic unsigned done;     /* items of this batch finished */
	_Atomic unsigned sleepers; /* workers in futex_wait or about to be */
	_Atomic bool stop;
	_Atomic unsigned long helped;
	uint32_t last_gen;         /* the caller's */
	/* Written before claim is published, read after an item is claimed. */
	workers_fn fn;
	void *arg;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

static void futex_wait(_Atomic uint32_t *word, uint32_t val)
{
	/* EAGAIN (changed already), EINTR: the caller looks again either way. */
	(void)syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
	(void)syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/*
 * Claims and runs items of whatever batch is published until none is left. A worker
 * (helper) counts each item in helped before it counts it done: the caller reads helped once all are.
 */
static void take(struct workers *w, bool helper)
{
	uint64_t c = atomic_load_explicit(&w->claim, memory_order_acquire);

	for (;;) {
		unsigned n = (unsigned)(c >> 16) & 0xffff, next = (unsigned)c & 0xffff;
		if (next >= n)
			return;
		if (!atomic_compare_exchange_weak_explicit(&w->claim, &c, c + 1, memory_order_acq_rel,
							   memory_order_acquire))
			continue; /* c now holds the current word */
		w->fn(w->arg, next);
		if (helper)
			atomic_fetch_add_explicit(&w->helped, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->done, 1, memory_order_release);
		c = atomic_load_explicit(&w->claim, memory_order_acquire);
	}
}

static void *worker_main(void *p)
{
	struct workers *w = p;
	uint32_t seen = 0; /* gen before any batch: one may be published before this thread runs */

	while (!atomic_load(&w->stop)) {
		uint32_t g = atomic_load(&w->gen);
		if (g == seen) {
			/* sleepers is raised before gen is read again: a caller that bumps gen after that
			 * read sees the sleeper and wakes it; one that bumped it before is seen here. */
			atomic_fetch_add(&w->sleepers, 1);
			if (atomic_load(&w->gen) == seen && !atomic_load(&w->stop))
				futex_wait(&w->gen, seen);
			atomic_fetch_sub(&w->sleepers, 1);
			continue;
		}
		seen = g;
		take(w, true);
	}
	return NULL;
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : (unsigned)n;
}

struct workers *workers_new(unsigned threads)
{
	struct workers *w;

	if (threads == 0)
		threads = online_cpus();
	if (threads > WORKERS_MAX) {
		log_error("dataplane: at most %u dataplane threads, not %u", WORKERS_MAX, threads);
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		log_error("dataplane: crypto workers: out of memory");
		return NULL;
	}
	w->threads = threads;
	for (; w->started + 1 < threads; w->started++) {
		int err = pthread_create(&w->tid[w->started], NULL, worker_main, w);
		if (err) {
			log_error("dataplane: cannot start a crypto worker: %s", strerror(err));
			workers_free(w);
			return NULL;
		}
	}
	return w;
}

void workers_free(struct workers *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	atomic_fetch_add(&w->gen, 1);
	futex_wake_all(&w->gen);
	for (unsigned i = 0; i < w->started; i++)
		pthread_join(w->tid[i], NULL);
	free(w);
}

unsigned workers_threads(const struct workers *w)
{
	return w ? w->threads : 1;
}

unsigned long workers_helped(const struct workers *w)
{
	return w ? atomic_load_explicit(&w->helped, memory_order_relaxed) : 0;
}

static void run_here(unsigned n, workers_fn fn, void *arg)
{
	for (unsigned i = 0; i < n; i++)
		fn(arg, i);
}

void workers_run(struct workers *w, unsigned n, workers_fn fn, void *arg)
{
	/* More than the claim word can count is not expected (batches are far smaller): all here. */
	if (!w || w->started == 0 || n < 2 || n > WORKERS_MAX_ITEMS) {
		run_here(n, fn, arg);
		return;
	}
	w->fn = fn;
	w->arg = arg;
	atomic_store_explicit(&w->done, 0, memory_order_relaxed);
	w->last_gen++;
	atomic_store_explicit(&w->claim, (uint64_t)w->last_gen << 32 | (uint64_t)n << 16, memory_order_release);
	atomic_store(&w->gen, w->last_gen);
	if (atomic_load(&w->sleepers))
		futex_wake_all(&w->gen);
	take(w, false);
	/* What is left is in a worker's hands, being run. */
	for (unsigned spins = 0; atomic_load_explicit(&w->done, memory_order_acquire) < n; spins++) {
		if (spins < SPINS_BEFORE_YIELD)
			cpu_relax();
		else
			sched_yield(); /* that worker lost its CPU: give it ours */
	}
}
