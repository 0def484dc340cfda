// SPDX-License-Identifier: GPL-2.0
/*
 * WAN-side port steering. XDP ingress (or tc ingress, `set steer-hook tc`): TCP
 * to ike-tcp-port on one of our addresses is rewritten to ike-tcp-internal-port,
 * where the daemon listens, and SYN floods per source are dropped. tc egress: the daemon's replies from the
 * internal port get ike-tcp-port back, so peers only ever see ike-tcp-port.
 * Everything else, malformed included, passes untouched (we only drop floods).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IKETCP_STEER_MAPS
#include "maps/maps.bpf.h"
#include "lib/parse.h"
#include "lib/csum.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define NSEC_PER_SEC 1000000000ULL

char LICENSE[] SEC("license") = "GPL";

struct steer_eff {
	__u16 ike_tcp_port;
	__u16 internal_port;
	__u32 syn_rate;
	__u32 flags;
};

/* The config entry with its zero fields replaced by the built-in defaults. */
static __always_inline void steer_eff_load(struct steer_eff *e)
{
	__u32 key = 0;
	struct steer_config *c = bpf_map_lookup_elem(&steer_config, &key);

	e->ike_tcp_port = STEER_DEFAULT_IKE_TCP_PORT;
	e->internal_port = STEER_DEFAULT_INTERNAL_PORT;
	e->syn_rate = 0;
	e->flags = 0;
	if (!c)
		return;
	if (c->ike_tcp_port)
		e->ike_tcp_port = c->ike_tcp_port;
	if (c->internal_port)
		e->internal_port = c->internal_port;
	e->syn_rate = c->syn_rate;
	e->flags = c->flags;
}

/* ike-tcp-port 4500 is served directly (FortiOS), and equal ports need no steering. */
static __always_inline bool steer_rewrites(const struct steer_eff *e)
{
	return e->ike_tcp_port != STEER_NATT_PORT && e->ike_tcp_port != e->internal_port;
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&steer_counters, &idx);

	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

/* What the ingress and egress programs need from one parsed packet. */
struct steer_pkt {
	struct tcphdr *tcp;
	__u32 l4_off; /* from the start of the frame */
	bool v6;
	struct iketcp_addr saddr, daddr;
};

/* ::ffff:a.b.c.d, as maps/maps.h keys IPv4 addresses. */
static __always_inline void addr_v4mapped(struct iketcp_addr *k, const __be32 *v4)
{
	__builtin_memset(k->addr, 0, 10);
	k->addr[10] = 0xff;
	k->addr[11] = 0xff;
	__builtin_memcpy(&k->addr[12], v4, 4);
}

/* 0 with *p filled for TCP, PARSE_OTHER, or PARSE_MALFORMED. */
static __always_inline int steer_parse(void *data, void *data_end, struct steer_pkt *p)
{
	struct hdr_cursor nh = { .pos = data };
	struct ipv6hdr *ip6h;
	struct iphdr *iph;
	int proto;

	proto = parse_ethhdr(&nh, data_end);
	if (proto < 0)
		return proto;
	if (proto == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &iph);
		if (proto < 0)
			return proto;
		addr_v4mapped(&p->saddr, &iph->saddr);
		addr_v4mapped(&p->daddr, &iph->daddr);
		p->v6 = false;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
		if (proto < 0)
			return proto;
		__builtin_memcpy(&p->saddr, &ip6h->saddr, sizeof(p->saddr));
		__builtin_memcpy(&p->daddr, &ip6h->daddr, sizeof(p->daddr));
		p->v6 = true;
	} else {
		return PARSE_OTHER;
	}
	if (proto != IPPROTO_TCP)
		return PARSE_OTHER;
	p->l4_off = nh.pos - data;
	return parse_tcphdr(&nh, data_end, &p->tcp);
}

/*
 * Token bucket per source, as nanoseconds of credit: a SYN costs 1e9/rate ns,
 * credit accrues with time up to rate * cost (a burst of `rate`). Races between
 * CPUs on one bucket can let a SYN or two more through; that is fine for a
 * flood limit and avoids a lock per SYN.
 */
static __always_inline bool syn_allowed(const struct iketcp_addr *src, __u32 rate)
{
	__u64 cost = NSEC_PER_SEC / rate;
	__u64 cap = cost * rate;
	__u64 now = bpf_ktime_get_ns();
	struct steer_syn_bucket *b, nb;
	__u64 credit;

	b = bpf_map_lookup_elem(&steer_syn, src);
	if (!b) {
		nb.last_ns = now;
		nb.credit_ns = cap - cost;
		bpf_map_update_elem(&steer_syn, src, &nb, BPF_ANY);
		return true;
	}
	/* Another CPU may have stamped the bucket after we read the clock: then no time has passed, where
	 * now - last_ns would wrap to a full bucket. */
	credit = b->credit_ns;
	if (now > b->last_ns) {
		credit += now - b->last_ns;
		b->last_ns = now;
	}
	if (credit > cap)
		credit = cap;
	if (credit < cost) {
		b->credit_ns = credit;
		return false;
	}
	b->credit_ns = credit - cost;
	return true;
}

enum steer_verdict { STEER_PASS, STEER_DROP, STEER_REWRITE };

/* What ingress does with a parsed TCP packet; the same at XDP and at tc. Counted, except a
 * rewrite: the caller counts it once it is done. */
static __always_inline enum steer_verdict steer_ingress(struct steer_pkt *p, const struct steer_eff *e)
{
	if (p->tcp->dest != bpf_htons(e->ike_tcp_port))
		goto pass;
	if ((e->flags & STEER_F_LOCAL_ONLY) && !bpf_map_lookup_elem(&steer_local, &p->daddr))
		goto pass;
	if (e->syn_rate && p->tcp->syn && !p->tcp->ack) {
		/* One bucket per IPv6 /64: a single host usually has a whole /64 to pick from. */
		if (p->v6)
			__builtin_memset(&p->saddr.addr[8], 0, 8);
		if (!syn_allowed(&p->saddr, e->syn_rate)) {
			count(STEER_CNT_SYN_DROPPED);
			return STEER_DROP;
		}
	}
	if (!steer_rewrites(e))
		goto pass;
	return STEER_REWRITE;
pass:
	count(STEER_CNT_PASSED);
	return STEER_PASS;
}

SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct steer_pkt p;
	struct steer_eff e;
	__be16 to;
	int rc;

	rc = steer_parse(data, data_end, &p);
	if (rc == PARSE_MALFORMED) {
		count(STEER_CNT_MALFORMED);
		return XDP_PASS;
	}
	if (rc < 0) {
		count(STEER_CNT_PASSED);
		return XDP_PASS;
	}
	steer_eff_load(&e);
	switch (steer_ingress(&p, &e)) {
	case STEER_DROP:
		return XDP_DROP;
	case STEER_REWRITE:
		/*
		 * RFC 1624 update of the full checksum a NIC delivers. A veth peer may hand
		 * us CHECKSUM_PARTIAL (check holds only the pseudo-header sum); that skb is
		 * trusted by the stack without verification, so the adjusted field is
		 * never looked at and the rewrite stays correct either way.
		 */
		to = bpf_htons(e.internal_port);
		csum_replace2(&p.tcp->check, p.tcp->dest, to);
		p.tcp->dest = to;
		count(STEER_CNT_STEERED_IN);
		return XDP_PASS;
	default:
		return XDP_PASS;
	}
}

/*
 * A parsed skb at tc, either direction: headers not all in the linear part
 * are pulled in once and parsed again. 0, PARSE_OTHER or PARSE_MALFORMED.
 */
static __always_inline int steer_parse_skb(struct __sk_buff *skb, struct steer_pkt *p)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	int rc = steer_parse(data, data_end, p);

	if (rc == PARSE_MALFORMED && skb->len > data_end - data) {
		if (bpf_skb_pull_data(skb, skb->len < 256 ? skb->len : 256))
			return PARSE_MALFORMED;
		data_end = (void *)(long)skb->data_end;
		data = (void *)(long)skb->data;
		rc = steer_parse(data, data_end, p);
	}
	return rc;
}

/* TCP port from -> to at l4_off, checksum first (see tc_steer): 0 or a helper's error. */
static __always_inline int skb_port_rewrite(struct __sk_buff *skb, __u32 l4_off, __u32 field, __be16 from,
					    __be16 to)
{
	int err = bpf_l4_csum_replace(skb, l4_off + offsetof(struct tcphdr, check), from, to, sizeof(to));

	return err ? err : bpf_skb_store_bytes(skb, l4_off + field, &to, sizeof(to), 0);
}

/*
 * Ingress at tc (`set steer-hook tc`): what xdp_steer does, for WANs where
 * XDP is taken or only generic (which copies every non-linear skb for the
 * program; tc reads the skb as it is).
 */
SEC("classifier") /* its own section: `sec tc` by hand still means the egress program */
int tc_steer_in(struct __sk_buff *skb)
{
	struct steer_pkt p;
	struct steer_eff e;
	int rc;

	rc = steer_parse_skb(skb, &p);
	if (rc == PARSE_MALFORMED) {
		count(STEER_CNT_MALFORMED);
		return TC_ACT_OK;
	}
	if (rc < 0) {
		count(STEER_CNT_PASSED);
		return TC_ACT_OK;
	}
	steer_eff_load(&e);
	switch (steer_ingress(&p, &e)) {
	case STEER_DROP:
		return TC_ACT_SHOT;
	case STEER_REWRITE:
		/* Only an skb that cannot be made writable fails here: it goes on as it came. */
		if (skb_port_rewrite(skb, p.l4_off, offsetof(struct tcphdr, dest), bpf_htons(e.ike_tcp_port),
				     bpf_htons(e.internal_port)))
			count(STEER_CNT_PASSED);
		else
			count(STEER_CNT_STEERED_IN);
		return TC_ACT_OK;
	default:
		return TC_ACT_OK;
	}
}

/*
 * Egress, clsact direct-action. bpf_l4_csum_replace knows CHECKSUM_PARTIAL: the
 * pseudo-header sum in the field does not cover ports, so it leaves the field
 * alone then and updates a complete checksum otherwise.
 */
SEC("tc")
int tc_steer(struct __sk_buff *skb)
{
	struct steer_pkt p;
	struct steer_eff e;
	__be16 from;

	if (steer_parse_skb(skb, &p) < 0)
		return TC_ACT_OK;
	steer_eff_load(&e);
	if (!steer_rewrites(&e))
		return TC_ACT_OK;
	from = bpf_htons(e.internal_port);
	if (p.tcp->source != from)
		return TC_ACT_OK;
	if (skb_port_rewrite(skb, p.l4_off, offsetof(struct tcphdr, source), from, bpf_htons(e.ike_tcp_port)))
		return TC_ACT_OK;
	count(STEER_CNT_STEERED_OUT);
	return TC_ACT_OK;
}
