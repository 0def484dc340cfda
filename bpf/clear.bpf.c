// SPDX-License-Identifier: GPL-2.0
/*
 * Clear side (XDP on each inner interface): a packet whose destination lies in
 * an installed CHILD SA's remote selector (LPM tries clear_v4/clear_v6) goes to
 * the AF_XDP socket of its RX queue, where the daemon seals it into ESP.
 * Everything else passes to the kernel untouched: ARP and neighbour discovery,
 * traffic to the gateway itself, VLAN-tagged and malformed frames. With empty
 * maps (a hand `ip link set dev X xdp obj clear.bpf.o sec xdp`) all passes.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IKETCP_CLEAR_MAPS
#include "maps/maps.bpf.h"

#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#endif

char LICENSE[] SEC("license") = "GPL";

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&clear_counters, &idx);

	if (v)
		*v += 1;
}

/* Only the destination is looked up: the daemon checks the full selector pair. */
static __always_inline int clear_match(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);
		struct clear_v4_key k = { .prefixlen = 32 };

		if ((void *)(iph + 1) > data_end)
			return -1;
		if (iph->version != 4 || iph->ihl < 5 || (void *)iph + iph->ihl * 4 > data_end)
			return -1;
		__builtin_memcpy(k.addr, &iph->daddr, 4);
		return bpf_map_lookup_elem(&clear_v4, &k) != NULL;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);
		struct clear_v6_key k = { .prefixlen = 128 };

		if ((void *)(ip6h + 1) > data_end)
			return -1;
		if (ip6h->version != 6)
			return -1;
		__builtin_memcpy(k.addr, &ip6h->daddr, 16);
		return bpf_map_lookup_elem(&clear_v6, &k) != NULL;
	}
	return 0;
}

SEC("xdp")
int xdp_clear(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 q = ctx->rx_queue_index;
	int m = clear_match(data, data_end);

	if (m < 0) {
		count(CLEAR_CNT_MALFORMED);
		return XDP_PASS;
	}
	if (m == 0) {
		count(CLEAR_CNT_PASSED);
		return XDP_PASS;
	}
	/* An XSKMAP lookup says whether a socket is bound to this queue (kernel >= 5.3). */
	if (!bpf_map_lookup_elem(&clear_xsks, &q)) {
		count(CLEAR_CNT_NO_XSK);
		return XDP_PASS;
	}
	count(CLEAR_CNT_TO_XSK);
	return bpf_redirect_map(&clear_xsks, q, XDP_PASS);
}
