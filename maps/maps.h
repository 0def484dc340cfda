/*
 * Every BPF map key/value layout, counter index and the maps ABI version, included
 * by the BPF programs (after vmlinux.h) and by the daemon (which gets <linux/types.h>).
 * Fixed-width fields, explicit padding, a size assertion on each struct: the
 * daemon never keeps a hand-synchronised copy of these.
 */
#ifndef IKETCP_MAPS_H
#define IKETCP_MAPS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * Bump on any change to a struct, map name, map type or counter index below.
 * The loader writes it into the ABI map so that a reader of pinned maps (iketcpctl,
 * a newer daemon finding stale pins) can refuse maps it does not understand.
 */
#define IKETCP_MAPS_ABI 2

/* Shared by every program: the one-entry ABI map's value. */
struct iketcp_abi {
	__u32 version; /* IKETCP_MAPS_ABI; 0 = not written (program attached by hand) */
};
_Static_assert(sizeof(struct iketcp_abi) == 4, "iketcp_abi layout");

/*
 * An IPv4 or IPv6 address as a map key: IPv6 as is, IPv4 as ::ffff:a.b.c.d
 * (RFC 4291 2.5.5.2), so one key type serves both families. Network order.
 */
struct iketcp_addr {
	__u8 addr[16];
};
_Static_assert(sizeof(struct iketcp_addr) == 16, "iketcp_addr layout");

/* ===== steer.bpf.c: WAN-side port steering (XDP ingress, tc egress) ===== */

#define STEER_DEFAULT_IKE_TCP_PORT  443
#define STEER_DEFAULT_INTERNAL_PORT 11443
#define STEER_NATT_PORT             4500 /* ike-tcp-port 4500: nothing to steer */

#define STEER_SYN_TABLE_SIZE   65536 /* sources tracked by the SYN limiter (LRU) */
#define STEER_LOCAL_ADDRS_MAX  64    /* addresses of one WAN interface */

/* steer_config.flags */
#define STEER_F_LOCAL_ONLY (1u << 0) /* steer only to addresses in steer_local */

/*
 * steer_config[0]. Host byte order. A zero field means its built-in default
 * (443 -> 11443, no SYN limit), so an all-zero entry, as left by a hand
 * `ip link set dev X xdp obj steer.bpf.o`, steers with the defaults.
 */
struct steer_config {
	__u16 ike_tcp_port;  /* ike-tcp-port: what peers connect to */
	__u16 internal_port; /* ike-tcp-internal-port: where the daemon listens */
	__u32 syn_rate;      /* ike-tcp-syn-rate: SYNs/s per source, burst the same; 0 = off */
	__u32 flags;         /* STEER_F_* */
	__u32 pad;
};
_Static_assert(sizeof(struct steer_config) == 16, "steer_config layout");

/*
 * steer_syn: one token bucket per IPv4 source address or IPv6 source /64 (the
 * key's low 64 bits zero), kept as credit in nanoseconds.
 * Each SYN costs 1e9 / rate ns of credit; credit grows with elapsed time up to
 * rate * (1e9 / rate) ns, i.e. a burst of `rate` SYNs.
 */
struct steer_syn_bucket {
	__u64 last_ns; /* bpf_ktime_get_ns() at the last update */
	__u64 credit_ns;
};
_Static_assert(sizeof(struct steer_syn_bucket) == 16, "steer_syn_bucket layout");

/* steer_local: the WAN interface's own addresses (value unused, 1). */
struct steer_local_val {
	__u32 present;
};
_Static_assert(sizeof(struct steer_local_val) == 4, "steer_local_val layout");

/*
 * Index into the per-CPU steer_counters array; summed over CPUs in userspace.
 * passed and malformed count XDP ingress only; steered_out counts tc egress.
 */
enum steer_counter {
	STEER_CNT_STEERED_IN,  /* ingress ike-tcp-port rewritten to the internal port */
	STEER_CNT_STEERED_OUT, /* egress internal port rewritten back */
	STEER_CNT_PASSED,      /* ingress packets left untouched */
	STEER_CNT_SYN_DROPPED, /* SYNs over the per-source limit, XDP_DROP */
	STEER_CNT_MALFORMED,   /* truncated or inconsistent headers, passed untouched */
	STEER_CNT_MAX
};

/* ===== clear.bpf.c: clear-side selectors -> AF_XDP =====
 * One program per inner interface. A packet whose destination lies in an
 * installed CHILD SA's remote selector is redirected to the AF_XDP socket of
 * its RX queue; all else (ARP, neighbour discovery, traffic to the gateway,
 * malformed) passes to the kernel. The daemon (afxdp.c) is the only writer;
 * its SA table is the truth and clear_v4/clear_v6 are its projection.
 */

#define CLEAR_SELECTORS_MAX 1024 /* LPM entries per family */
#define CLEAR_QUEUES_MAX    64   /* XSKMAP slots: RX queues of one interface */

/* LPM trie keys: prefixlen in bits, then the address in network order. */
struct clear_v4_key {
	__u32 prefixlen; /* 0..32 */
	__u8 addr[4];
};
_Static_assert(sizeof(struct clear_v4_key) == 8, "clear_v4_key layout");

struct clear_v6_key {
	__u32 prefixlen; /* 0..128 */
	__u8 addr[16];
};
_Static_assert(sizeof(struct clear_v6_key) == 20, "clear_v6_key layout");

/* The value: how many installed SAs have this remote selector (a rekey overlaps). */
struct clear_sel {
	__u32 sa_count;
	__u32 pad;
};
_Static_assert(sizeof(struct clear_sel) == 8, "clear_sel layout");

/* Index into the per-CPU clear_counters array; summed over CPUs in userspace. */
enum clear_counter {
	CLEAR_CNT_TO_XSK,    /* selector match, redirected to the queue's AF_XDP socket */
	CLEAR_CNT_PASSED,    /* no selector matches, or not IPv4/IPv6: to the kernel */
	CLEAR_CNT_NO_XSK,    /* selector match but no socket on this queue: to the kernel */
	CLEAR_CNT_MALFORMED, /* truncated or inconsistent headers: to the kernel */
	CLEAR_CNT_MAX
};

#endif
