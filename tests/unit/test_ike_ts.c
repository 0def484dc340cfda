/* Traffic selector narrowing (RFC 7296 2.9), table-driven: peer range x our prefix -> result. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ike/ts.h"

static struct ike_ts range(const char *start, const char *end, uint8_t proto, uint16_t p0, uint16_t p1)
{
	struct ike_ts t = { 0 };
	bool v6 = strchr(start, ':') != NULL;
	t.type = v6 ? TS_IPV6_ADDR_RANGE : TS_IPV4_ADDR_RANGE;
	t.ip_proto = proto;
	t.start_port = p0;
	t.end_port = p1;
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, start, t.start), 1);
	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, end, t.end), 1);
	return t;
}

static struct child_ts prefix(const char *addr, unsigned plen)
{
	struct child_ts p = { 0 };
	bool v6 = strchr(addr, ':') != NULL;
	p.family = v6 ? AF_INET6 : AF_INET;
	p.prefix_len = (uint8_t)plen;
	assert_int_equal(inet_pton(p.family, addr, v6 ? (void *)&p.addr.v6 : (void *)&p.addr.v4), 1);
	return p;
}

static void prefix_str(const struct child_ts *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(p->family, p->family == AF_INET ? (const void *)&p->addr.v4 : (const void *)&p->addr.v6, a,
		  sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->prefix_len);
}

struct narrow_case {
	const char *what;
	const char *start, *end;
	uint8_t proto;
	uint16_t p0, p1;
	const char *ours;
	unsigned ours_len;
	const char *want; /* NULL: no narrowing possible */
};

static const struct narrow_case narrow_cases[] = {
	{ "equal", "10.1.0.0", "10.1.0.255", 0, 0, 65535, "10.1.0.0", 24, "10.1.0.0/24" },
	{ "peer wider", "10.1.0.0", "10.1.255.255", 0, 0, 65535, "10.1.0.0", 24, "10.1.0.0/24" },
	{ "ours wider", "10.1.0.0", "10.1.0.255", 0, 0, 65535, "10.0.0.0", 8, "10.1.0.0/24" },
	{ "peer everything", "0.0.0.0", "255.255.255.255", 0, 0, 65535, "10.2.0.0", 24, "10.2.0.0/24" },
	{ "ours everything", "192.0.2.0", "192.0.2.127", 0, 0, 65535, "0.0.0.0", 0, "192.0.2.0/25" },
	{ "host", "10.1.0.0", "10.1.0.255", 0, 0, 65535, "10.1.0.9", 32, "10.1.0.9/32" },
	{ "disjoint", "10.1.0.0", "10.1.0.255", 0, 0, 65535, "10.9.0.0", 24, NULL },
	{ "adjacent", "10.1.1.0", "10.1.1.255", 0, 0, 65535, "10.1.0.0", 24, NULL },
	{ "not a block: cut at start", "10.1.0.10", "10.1.0.20", 0, 0, 65535, "10.1.0.0", 24, "10.1.0.10/31" },
	{ "odd start", "10.1.0.7", "10.1.0.200", 0, 0, 65535, "10.1.0.0", 24, "10.1.0.7/32" },
	{ "reversed range", "10.1.0.255", "10.1.0.0", 0, 0, 65535, "10.1.0.0", 24, NULL },
	{ "protocol only", "10.1.0.0", "10.1.0.255", 6, 0, 65535, "10.1.0.0", 24, NULL },
	{ "port range", "10.1.0.0", "10.1.0.255", 0, 443, 443, "10.1.0.0", 24, NULL },
	{ "family mismatch", "2001:db8::", "2001:db8::ffff", 0, 0, 65535, "10.1.0.0", 24, NULL },
	{ "v6 equal", "2001:db8:1::", "2001:db8:1:ffff:ffff:ffff:ffff:ffff", 0, 0, 65535, "2001:db8:1::", 48,
	  "2001:db8:1::/48" },
	{ "v6 peer wider", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0, 0, 65535, "2001:db8:2::", 64,
	  "2001:db8:2::/64" },
	{ "v6 disjoint", "2001:db8:1::", "2001:db8:1::ffff", 0, 0, 65535, "2001:db8:2::", 64, NULL },
};

static void test_narrow_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(narrow_cases) / sizeof(narrow_cases[0]); i++) {
		const struct narrow_case *c = &narrow_cases[i];
		struct ike_ts peer = range(c->start, c->end, c->proto, c->p0, c->p1);
		struct child_ts ours = prefix(c->ours, c->ours_len), out;
		char got[64];
		memset(&out, 0xa5, sizeof(out));
		bool ok = ike_ts_narrow(&peer, &ours, &out);
		if (!c->want) {
			if (ok) {
				prefix_str(&out, got, sizeof(got));
				fail_msg("%s: narrowed to %s, expected nothing", c->what, got);
			}
			continue;
		}
		if (!ok)
			fail_msg("%s: not narrowed, expected %s", c->what, c->want);
		prefix_str(&out, got, sizeof(got));
		if (strcmp(got, c->want))
			fail_msg("%s: got %s, expected %s", c->what, got, c->want);
		/* A narrowing is always inside both inputs (2.9). */
		assert_true(ike_ts_prefix_within(&out, &ours));
	}
}

struct prefix_case {
	const char *start, *end;
	uint8_t proto;
	uint16_t p0, p1;
	const char *want;
};

static const struct prefix_case prefix_cases[] = {
	{ "10.1.0.0", "10.1.0.255", 0, 0, 65535, "10.1.0.0/24" },
	{ "0.0.0.0", "255.255.255.255", 0, 0, 65535, "0.0.0.0/0" },
	{ "10.1.0.1", "10.1.0.1", 0, 0, 65535, "10.1.0.1/32" },
	{ "10.1.0.0", "10.1.0.254", 0, 0, 65535, NULL },   /* not one block */
	{ "10.1.0.1", "10.1.0.2", 0, 0, 65535, NULL },     /* unaligned */
	{ "10.1.0.0", "10.1.0.255", 17, 0, 65535, NULL },  /* a protocol */
	{ "10.1.0.0", "10.1.0.255", 0, 1, 65535, NULL },   /* ports */
	{ "10.1.0.9", "10.1.0.0", 0, 0, 65535, NULL },     /* reversed */
	{ "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", 0, 0, 65535, "2001:db8::/64" },
};

static void test_to_prefix_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(prefix_cases) / sizeof(prefix_cases[0]); i++) {
		const struct prefix_case *c = &prefix_cases[i];
		struct ike_ts t = range(c->start, c->end, c->proto, c->p0, c->p1);
		struct child_ts out;
		char got[64];
		bool ok = ike_ts_to_prefix(&t, &out);
		if (!c->want) {
			if (ok)
				fail_msg("%s-%s: prefix accepted", c->start, c->end);
			continue;
		}
		if (!ok)
			fail_msg("%s-%s: refused, expected %s", c->start, c->end, c->want);
		prefix_str(&out, got, sizeof(got));
		assert_string_equal(got, c->want);
	}
}

static void test_from_prefix_round_trip(void **state)
{
	(void)state;
	static const struct {
		const char *addr;
		unsigned len;
		const char *start, *end;
	} cases[] = {
		{ "10.1.0.0", 24, "10.1.0.0", "10.1.0.255" },
		{ "10.1.0.77", 24, "10.1.0.0", "10.1.0.255" }, /* host bits ignored */
		{ "0.0.0.0", 0, "0.0.0.0", "255.255.255.255" },
		{ "192.0.2.1", 32, "192.0.2.1", "192.0.2.1" },
		{ "10.0.0.0", 9, "10.0.0.0", "10.127.255.255" },
		{ "2001:db8::", 33, "2001:db8::", "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct child_ts p = prefix(cases[i].addr, cases[i].len), back;
		struct ike_ts t, want = range(cases[i].start, cases[i].end, 0, 0, 65535);
		ike_ts_from_prefix(&t, &p);
		assert_int_equal(t.type, want.type);
		assert_int_equal(t.ip_proto, 0);
		assert_int_equal(t.start_port, 0);
		assert_int_equal(t.end_port, 65535);
		assert_memory_equal(t.start, want.start, 16);
		assert_memory_equal(t.end, want.end, 16);
		assert_true(ike_ts_to_prefix(&t, &back));
		assert_int_equal(back.prefix_len, cases[i].len);
	}
}

static void test_within(void **state)
{
	(void)state;
	struct child_ts a = prefix("10.1.0.0", 24), b = prefix("10.1.0.0", 16), c = prefix("10.2.0.0", 24);
	struct child_ts all = prefix("0.0.0.0", 0), v6 = prefix("::", 0);
	assert_true(ike_ts_prefix_within(&a, &b));
	assert_false(ike_ts_prefix_within(&b, &a));
	assert_false(ike_ts_prefix_within(&c, &b));
	assert_true(ike_ts_prefix_within(&a, &a));
	assert_true(ike_ts_prefix_within(&c, &all));
	assert_false(ike_ts_prefix_within(&a, &v6));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_narrow_table),
		cmocka_unit_test(test_to_prefix_table),
		cmocka_unit_test(test_from_prefix_round_trip),
		cmocka_unit_test(test_within),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
