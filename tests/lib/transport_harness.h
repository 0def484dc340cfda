/*
 * One transport (transport/transport.h) on a private loopback, for tests/unit/test_transport.c and
 * test_udp.c: the network namespace, the loop and transport they share, what the handlers saw last,
 * and running the loop until a counter moves. Each test embeds struct th in its own context and
 * keeps its own handlers and far-side sockets.
 */
#ifndef IKETCP_TESTS_TRANSPORT_HARNESS_H
#define IKETCP_TESTS_TRANSPORT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

struct th {
	struct loop *loop;
	struct transport *tp;
	int ike, esp, closed;        /* handler calls, counted by the tests' handlers */
	size_t last_len;             /* the last IKE message or ESP packet delivered */
	uint8_t last[70000];
	struct tcp_conn *last_conn;  /* and the connection or path it came on */
};

/* Enter a network namespace of our own with its loopback up; false (and a note naming test) if we cannot. */
bool th_netns(const char *test);
/* cmocka setup: skip when th_netns failed, else clear the stats. */
int th_setup(void **state);

/* A loop and a transport with handlers h, configured with cfg; the stats cleared. */
void th_open(struct th *t, const struct transport_handlers *h, const struct transport_config *cfg);
void th_close(struct th *t);

/* Keep what a handler was given in last, last_len and last_conn. */
void th_keep(struct th *t, struct tcp_conn *c, const uint8_t *p, size_t len);

/* Run the loop in 10 ms steps until *v reaches want or ms pass; whether it did. */
bool th_run_until(struct th *t, const uint64_t *v, uint64_t want, int ms);
bool th_run_until_int(struct th *t, const int *v, int want, int ms);
void th_run_for(struct th *t, int ms);

#endif
