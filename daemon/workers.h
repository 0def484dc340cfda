/*
 * The dataplane's crypto workers: one thread per core, WireGuard's way. The
 * dataplane thread keeps everything that has an order (sequence numbers, the
 * replay window, counters, the stream) and hands out only the sealing and
 * opening of a batch, which touches nothing but the packet and its SA's
 * keys. workers_run is a parallel for: the caller takes items too and returns
 * when all are done, so results come back in the batch's order.
 *
 * An item is claimed with one compare-and-swap on a word that also holds the
 * batch's generation and size, so a worker that wakes late can never take an
 * item of the next batch with the last one's function.
 */
#ifndef IKETCP_WORKERS_H
#define IKETCP_WORKERS_H

#include <stdbool.h>

#define WORKERS_MAX 64        /* threads, the caller included */
#define WORKERS_MAX_ITEMS 65535

struct workers;

typedef void (*workers_fn)(void *arg, unsigned i);

/*
 * threads: how many take part, the caller included (1: the caller alone, no
 * thread is started; 0: one per online CPU). NULL on failure (logged).
 */
struct workers *workers_new(unsigned threads);
/* Stops and joins the threads. NULL is a no-op. */
void workers_free(struct workers *w);
/* How many take part, the caller included (1 for NULL). */
unsigned workers_threads(const struct workers *w);

/*
 * fn(arg, i) for every i < n (n <= WORKERS_MAX_ITEMS), each exactly once, on
 * this thread or a worker; returns when all have returned. fn's writes are
 * then visible to the caller. One caller at a time; NULL w runs them here.
 */
void workers_run(struct workers *w, unsigned n, workers_fn fn, void *arg);

/* How many items workers (not the caller) have run: for tests and stats. */
unsigned long workers_helped(const struct workers *w);

#endif
