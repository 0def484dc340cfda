/*
 * The dataplane thread: it runs its own event loop with the transport (TCP streams, UDP sockets, TLS)
 * and the ESP dataplane (AF_XDP or TUN), so packets keep moving while the IKE thread (the main loop:
 * IKE engine, control socket, signals, reload) computes key exchanges, signs, or answers a slow peer.
 *
 * One lock guards everything the dataplane thread owns. That thread holds it while it works and lets go
 * only while it sleeps in epoll_wait; the IKE thread takes it for each call into the transport or the
 * dataplane (a send, a CHILD SA install, a counter read), never while it computes. What the transport
 * tells IKE (an IKE message, a stream up or down, ESP seen on a stream) goes through a queue the IKE
 * thread drains; IKE messages beyond the queue's bound are dropped and counted (ike.queue_drops).
 */
#ifndef IKETCP_DPTHREAD_H
#define IKETCP_DPTHREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

struct tcp_conn;

enum dp_event_kind {
	DP_EV_IKE,       /* an IKE message arrived on c */
	DP_EV_CONNECTED, /* an outbound stream is (re)connected */
	DP_EV_CLOSED,    /* a stream or path is gone */
	DP_EV_ALIVE,     /* ESP arrived on c (at most once a second per connection) */
	DP_EV_SOFT_LIFE, /* the CHILD SA of inbound SPI spi_in passed a soft lifetime: rekey it */
};

struct dp_event {
	struct dp_event *next;
	enum dp_event_kind kind;
	struct tcp_conn *c;
	uint32_t spi_in; /* DP_EV_SOFT_LIFE */
	size_t len;
	uint8_t msg[]; /* DP_EV_IKE */
};

/* The IKE thread's side: each event in order, then done (under the lock) with how many were queued
 * before the batch was taken: all of those have now been handled (transport_reap). */
struct dpthread_sink {
	void (*event)(void *arg, const struct dp_event *ev);
	void (*done)(void *arg, uint64_t handled_seq);
	void *arg;
};

#define DPTHREAD_MAX_MSGS 4096
#define DPTHREAD_MAX_BYTES (16u << 20)

struct dpthread {
	struct loop *loop;      /* the dataplane thread's */
	struct loop *ike_loop;  /* where the queue is drained */
	pthread_mutex_t mx;     /* recursive: the IKE thread may nest (status -> CHILD SA counters) */
	atomic_uint want;       /* the IKE thread is waiting for mx: the dataplane thread lets it in */
	pthread_t tid;
	bool running, stopping;
	bool lost;              /* a connection event was lost (no memory): nothing buried is freed any more */
	int wake_fd;            /* eventfd: wakes the dataplane thread */
	struct loop_io wake_io;
	int queue_fd;           /* eventfd: wakes the IKE thread */
	struct loop_io queue_io;
	struct dp_event *head, *tail;
	unsigned n_msgs;
	size_t bytes;
	uint64_t queued_seq;    /* events ever queued: what buried connections are stamped with */
	struct dpthread_sink sink;
};

/* The dataplane loop and both eventfds; the queue's reader goes into ike_loop. 0 or -errno. */
int dpthread_init(struct dpthread *t, struct loop *ike_loop, const struct dpthread_sink *sink);
/* Start the thread (everything on t->loop is set up). 0 or -errno. */
int dpthread_start(struct dpthread *t);
/* Stop and join; afterwards one thread owns everything again. No-op when not running. */
void dpthread_stop(struct dpthread *t);
/* After dpthread_stop and after everything on t->loop is freed: drops queued events, frees the loop. */
void dpthread_free(struct dpthread *t);

/* The IKE thread, around each call into what the dataplane thread owns. */
void dpthread_lock(struct dpthread *t);
void dpthread_unlock(struct dpthread *t);

/* Under the lock (either thread). A copy of msg for DP_EV_IKE; false when dropped (queue full, no memory). */
bool dpthread_post(struct dpthread *t, enum dp_event_kind kind, struct tcp_conn *c, const uint8_t *msg,
		   size_t len);
/* Under the lock: drop every queued event unhandled (the transport they came from is being replaced). */
void dpthread_purge(struct dpthread *t);
/* DP_EV_SOFT_LIFE for spi_in; false when there was no memory (the caller asks again later). */
bool dpthread_post_soft_life(struct dpthread *t, uint32_t spi_in);

#endif
