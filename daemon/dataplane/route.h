/*
 * Routes to a CHILD SA's remote selectors through the TUN device, over a
 * NETLINK_ROUTE socket written by hand (rtnetlink(7)): one request, one ack.
 */
#ifndef IKETCP_DATAPLANE_ROUTE_H
#define IKETCP_DATAPLANE_ROUTE_H

#include "iketcp/compiler.h"
#include "dataplane/child_sa.h"

struct route_sock {
	int fd;
	uint32_t seq;
};

/* 0 or -errno. */
/* A bound NETLINK_ROUTE socket whose reads give up after timeout_s: the fd, or -errno. */
int rtnl_open(int timeout_s);
must_check int route_sock_open(struct route_sock *rs);
void route_sock_close(struct route_sock *rs);

/* ts->addr/prefix_len via ifindex in the main table, replacing a route to the same prefix. */
must_check int route_replace(struct route_sock *rs, int ifindex, const struct child_ts *ts);
/* 0 also when the route is already gone (the device went away with it). */
int route_delete(struct route_sock *rs, int ifindex, const struct child_ts *ts);

/* The prefix with its host bits cleared; false for a bad family or length. */
bool route_ts_normalize(const struct child_ts *ts, struct child_ts *out);

#endif
