/*
 * Traffic selector narrowing (RFC 7296 section 2.9): the responder answers
 * with the intersection of what the initiator proposed and its own policy,
 * the initiator checks the answer is inside what it offered. Our policy is
 * whole-protocol, whole-port subnets, so results are prefixes (child_ts).
 */
#ifndef IKETCP_IKE_TS_H
#define IKETCP_IKE_TS_H

#include <stdbool.h>

#include "dataplane/child_sa.h"
#include "ike/payload.h"

/* A configured subnet as a selector: all protocols, all ports. */
void ike_ts_from_prefix(struct ike_ts *out, const struct child_ts *p);
/* The prefix a selector is exactly, or false (ranges that are not one CIDR
 * block, a protocol or a port range other than "any"). */
bool ike_ts_to_prefix(const struct ike_ts *ts, struct child_ts *out);
/*
 * Narrow the peer's selector to our prefix: the intersection, itself cut to
 * the largest CIDR block at its start when it is not one (a subset is a valid
 * narrowing). false when they are disjoint, of different families, or the
 * peer's selector is not "any protocol, any port" (we cannot express less).
 */
bool ike_ts_narrow(const struct ike_ts *peer, const struct child_ts *ours, struct child_ts *out);
/* Whether prefix a lies inside prefix b (same family). */
bool ike_ts_prefix_within(const struct child_ts *a, const struct child_ts *b);

#endif
