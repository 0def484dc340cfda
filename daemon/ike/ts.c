/* Traffic selector narrowing (RFC 7296 2.9) between prefixes and address ranges. */
#include <string.h>
#include <sys/socket.h>

#include "ike/ts.h"

static size_t alen_of(uint8_t type)
{
	return type == TS_IPV4_ADDR_RANGE ? 4 : type == TS_IPV6_ADDR_RANGE ? 16 : 0;
}

/* addr with the bits after prefix_len cleared (lo) or set (hi). */
static void prefix_bound(uint8_t *out, const uint8_t *addr, size_t alen, unsigned plen, bool hi)
{
	for (size_t i = 0; i < alen; i++) {
		unsigned bits = plen >= (i + 1) * 8 ? 8 : plen > i * 8 ? plen - (unsigned)i * 8 : 0;
		uint8_t mask = bits ? (uint8_t)(0xff << (8 - bits)) : 0;
		out[i] = hi ? (uint8_t)(addr[i] | ~mask) : (uint8_t)(addr[i] & mask);
	}
}

void ike_ts_from_prefix(struct ike_ts *out, const struct child_ts *p)
{
	bool v4 = p->family == AF_INET;
	size_t alen = v4 ? 4 : 16;
	const uint8_t *a = v4 ? (const uint8_t *)&p->addr.v4 : p->addr.v6.s6_addr;

	memset(out, 0, sizeof(*out));
	out->type = v4 ? TS_IPV4_ADDR_RANGE : TS_IPV6_ADDR_RANGE;
	out->ip_proto = 0;
	out->start_port = 0;
	out->end_port = 65535;
	prefix_bound(out->start, a, alen, p->prefix_len, false);
	prefix_bound(out->end, a, alen, p->prefix_len, true);
}

static void set_prefix(struct child_ts *out, uint8_t type, const uint8_t *start, unsigned plen)
{
	memset(out, 0, sizeof(*out));
	out->prefix_len = (uint8_t)plen;
	if (type == TS_IPV4_ADDR_RANGE) {
		out->family = AF_INET;
		memcpy(&out->addr.v4, start, 4);
	} else {
		out->family = AF_INET6;
		memcpy(out->addr.v6.s6_addr, start, 16);
	}
}

/* The shortest prefix length whose block starts at start and ends within end. */
static int largest_block(const uint8_t *start, const uint8_t *end, size_t alen)
{
	uint8_t lo[16], hi[16];

	for (unsigned p = 0; p <= alen * 8; p++) {
		prefix_bound(lo, start, alen, p, false);
		if (memcmp(lo, start, alen))
			continue;
		prefix_bound(hi, start, alen, p, true);
		if (memcmp(hi, end, alen) <= 0)
			return (int)p;
	}
	return -1;
}

static bool any_proto_port(const struct ike_ts *ts)
{
	return ts->ip_proto == 0 && ts->start_port == 0 && ts->end_port == 65535;
}

bool ike_ts_to_prefix(const struct ike_ts *ts, struct child_ts *out)
{
	size_t alen = alen_of(ts->type);
	uint8_t hi[16];

	if (!alen || !any_proto_port(ts) || memcmp(ts->start, ts->end, alen) > 0)
		return false;
	int p = largest_block(ts->start, ts->end, alen);
	if (p < 0)
		return false;
	prefix_bound(hi, ts->start, alen, (unsigned)p, true);
	if (memcmp(hi, ts->end, alen))
		return false;
	set_prefix(out, ts->type, ts->start, (unsigned)p);
	return true;
}

bool ike_ts_narrow(const struct ike_ts *peer, const struct child_ts *ours, struct child_ts *out)
{
	struct ike_ts mine;
	size_t alen = alen_of(peer->type);

	ike_ts_from_prefix(&mine, ours);
	if (!alen || mine.type != peer->type || !any_proto_port(peer))
		return false;
	const uint8_t *start = memcmp(peer->start, mine.start, alen) > 0 ? peer->start : mine.start;
	const uint8_t *end = memcmp(peer->end, mine.end, alen) < 0 ? peer->end : mine.end;
	if (memcmp(start, end, alen) > 0)
		return false;
	int p = largest_block(start, end, alen);
	if (p < 0)
		return false;
	set_prefix(out, peer->type, start, (unsigned)p);
	return true;
}

bool ike_ts_prefix_within(const struct child_ts *a, const struct child_ts *b)
{
	struct ike_ts ra, rb;

	if (a->family != b->family)
		return false;
	ike_ts_from_prefix(&ra, a);
	ike_ts_from_prefix(&rb, b);
	size_t alen = alen_of(ra.type);
	return memcmp(ra.start, rb.start, alen) >= 0 && memcmp(ra.end, rb.end, alen) <= 0;
}
