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

#ifdef IKETCP_CLEAR_MAPS

/* LPM tries need BPF_F_NO_PREALLOC. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CLEAR_SELECTORS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct clear_v4_key);
	__type(value, struct clear_sel);
} clear_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CLEAR_SELECTORS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct clear_v6_key);
	__type(value, struct clear_sel);
} clear_v6 SEC(".maps");

/* RX queue index -> AF_XDP socket fd (written by the daemon). */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, CLEAR_QUEUES_MAX);
	__type(key, __u32);
	__type(value, __u32);
} clear_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLEAR_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} clear_counters SEC(".maps");

#endif /* IKETCP_CLEAR_MAPS */

#endif
