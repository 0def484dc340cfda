/*
 * The SEC(".maps") definitions (BPF side only). BTF-defined, so `bpftool map
 * dump` shows named fields. Not pinned by libbpf: the loader pins them under
 * <bpf-pin-path>/<ifname>/ itself, and a hand attach gets private maps.
 */
#ifndef IKETCP_MAPS_BPF_H
#define IKETCP_MAPS_BPF_H

#include "maps/maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct iketcp_abi);
} steer_abi SEC(".maps");

/* Each program defines which groups it needs before including this file. */
#ifdef IKETCP_STEER_MAPS

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} steer_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} steer_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_LOCAL_ADDRS_MAX);
	__type(key, struct iketcp_addr);
	__type(value, struct steer_local_val);
} steer_local SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, STEER_SYN_TABLE_SIZE);
	__type(key, struct iketcp_addr);
	__type(value, struct steer_syn_bucket);
} steer_syn SEC(".maps");

#endif /* IKETCP_STEER_MAPS */

/* clear.bpf.c maps (selector LPM tries, XSKMAP) will be added below. */

#endif
