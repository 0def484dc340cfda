/*
 * Loader for the WAN steering programs (bpf/steer.bpf.c): attach XDP ingress and
 * tc egress to one interface, pin its maps under <pin_root>/<ifname>/, and be the
 * only writer of its config and local-address maps.
 */
#ifndef IKETCP_BPFSYNC_H
#define IKETCP_BPFSYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "iketcp/compiler.h"

struct steer_settings {
	uint16_t ike_tcp_port, internal_port; /* 1-65535 each */
	uint32_t syn_rate;                    /* SYNs/s per source, burst the same; 0 = off */
};

/* Where ingress steering runs: XDP (native, falling back to generic; or generic), or tc ingress. */
enum bpfsync_xdp_mode { BPFSYNC_XDP_NATIVE, BPFSYNC_XDP_GENERIC, BPFSYNC_TC_INGRESS };

struct bpfsync_wan;

/*
 * One handle per interface at a time. Load steer.bpf.o, remove what an earlier daemon killed with SIGKILL left on
 * this interface (an attached xdp_steer, our tc filters, stale pins), attach XDP
 * (native, falling back to generic with a warning; or generic when asked), or
 * the tc ingress filter for BPFSYNC_TC_INGRESS, and the tc egress filter, pin
 * maps and programs under pin_root/ifname/, write the config and ABI maps. An
 * XDP program that is not ours on the interface: -EBUSY, except with tc ingress,
 * which runs after it and leaves it alone.
 */
must_check int bpfsync_wan_attach(const char *ifname, const char *pin_root, enum bpfsync_xdp_mode mode,
				  const struct steer_settings *s, struct bpfsync_wan **out);
/* New settings (SIGHUP); keeps the local-address restriction. */
must_check int bpfsync_wan_update(struct bpfsync_wan *w, const struct steer_settings *s);
/*
 * Replace the local-address map with the interface's addresses (getifaddrs, in
 * the caller's network namespace). With at least one address, only traffic to
 * those addresses is steered; with none, traffic to any address is. -ENOSPC
 * when the interface has more than STEER_LOCAL_ADDRS_MAX (the first ones are kept).
 */
must_check int bpfsync_wan_set_local_addrs(struct bpfsync_wan *w);

/* The per-CPU counters summed over CPUs. */
struct steer_counters {
	uint64_t steered_in, steered_out, passed, syn_dropped, malformed;
};
must_check int bpfsync_wan_counters(struct bpfsync_wan *w, struct steer_counters *out);

/* Detach both programs, unpin, remove pin_root/ifname/, free. NULL is a no-op. */
void bpfsync_wan_detach(struct bpfsync_wan *w);

const char *bpfsync_wan_ifname(const struct bpfsync_wan *w);
bool bpfsync_wan_native(const struct bpfsync_wan *w);
/* Ingress steering at tc (BPFSYNC_TC_INGRESS), not XDP. */
bool bpfsync_wan_tc_ingress(const struct bpfsync_wan *w);
/* Where ingress steering runs, for people: "native XDP", "generic XDP" or "tc ingress". */
const char *bpfsync_wan_hook_name(const struct bpfsync_wan *w);
/* pin_root/ifname, where the maps are pinned. */
const char *bpfsync_wan_pin_dir(const struct bpfsync_wan *w);

/* Our tc egress filter's fixed handle and priority, so a restart can find it. */
#define BPFSYNC_TC_HANDLE 0x1c4b
#define BPFSYNC_TC_PRIO   0x1c4b

#endif
