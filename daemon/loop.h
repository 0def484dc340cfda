/*
 * The event loop: one epoll set and one timer heap. The only place the daemon
 * blocks. Handlers are embedded in their owners (container_of) so the loop
 * allocates nothing per file descriptor or timer.
 */
#ifndef IKETCP_LOOP_H
#define IKETCP_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;

struct loop_io {
	int fd;
	uint32_t events;
	void (*cb)(struct loop *loop, struct loop_io *io, uint32_t events);
};

struct loop_timer {
	uint64_t when_ms;
	size_t heap_idx; /* SIZE_MAX when not armed */
	void (*cb)(struct loop *loop, struct loop_timer *t);
};

struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* Milliseconds on CLOCK_MONOTONIC, refreshed once per loop iteration. */
uint64_t loop_now_ms(struct loop *loop);

int loop_io_add(struct loop *loop, struct loop_io *io, int fd, uint32_t events,
		void (*cb)(struct loop *, struct loop_io *, uint32_t));
int loop_io_mod(struct loop *loop, struct loop_io *io, uint32_t events);
/* Safe from inside any callback: pending events for io are discarded. */
void loop_io_del(struct loop *loop, struct loop_io *io);

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop *, struct loop_timer *));
bool loop_timer_armed(const struct loop_timer *t);
/* (Re)arm t to fire delay_ms from now. Returns -ENOMEM if the heap cannot grow. */
int loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t delay_ms);
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);

/*
 * After accept4 on the listening io failed with err. Out of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM) the connection stays queued and epoll reports it again at once: io is then not
 * watched for LOOP_ACCEPT_PAUSE_MS, after which resume fires (its callback watches io for EPOLLIN
 * again), instead of the loop spinning. True when paused.
 */
#define LOOP_ACCEPT_PAUSE_MS 100
bool loop_accept_pause(struct loop *loop, struct loop_io *io, struct loop_timer *resume, int err);

/* Runs until loop_stop(); returns 0, or a negative errno from epoll. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);
/* One iteration waiting at most timeout_ms (tests drive the loop with it). */
int loop_once(struct loop *loop, int timeout_ms);

/*
 * A loop that another thread also changes (the dataplane thread's, daemon/dpthread.c): its thread holds
 * a lock while it works and calls before (unlock) and after (lock) around epoll_wait; the other thread
 * changes the loop only under that lock. The batch of a sleep during which a descriptor was deleted or
 * modified is dropped (descriptors are level-triggered: what is still pending is reported again).
 */
void loop_set_wait_hooks(struct loop *loop, void (*before)(void *), void (*after)(void *), void *arg);
/* Under the lock, from the other thread: true while the loop's thread sleeps (and its clock is then
 * brought up to date, so timers armed now start from now). */
bool loop_sleeping(struct loop *loop);
/* Under the lock: a timer armed during the sleep is due before the sleep ends (the thread must be woken);
 * clears the flag. */
bool loop_take_wake(struct loop *loop);

#endif
