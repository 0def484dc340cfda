/*
 * The CHILD SA table both dataplanes share (tun.c, afxdp.c): SAs by inbound
 * SPI, selector matching (RFC 4301 section 5.2), install/remove with full
 * rollback, and the ESP open path with its stats.esp.* counting. What differs,
 * the kernel projection of the remote selectors (routes for TUN, LPM map
 * entries for AF_XDP), is a pair of hooks; I/O stays with each dataplane.
 */
#ifndef IKETCP_DATAPLANE_SA_SET_H
#define IKETCP_DATAPLANE_SA_SET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "iketcp/compiler.h"
#include "iketcp/log.h"
#include "dataplane/child_sa.h"
#include "esp/spi_table.h"

#define SA_SET_MAX 256

struct sa_set_sa {
	struct esp_sa in, out;
	/* Normalized (host bits cleared); pairs local_ts[i] <-> remote_ts[i]. */
	struct child_ts local_ts[CHILD_MAX_TS], remote_ts[CHILD_MAX_TS];
	unsigned n_ts;
	struct tcp_conn *conn;
	size_t inner_max; /* the largest inner packet that fits conn's path (pmtu.c); 0: no limit (a stream) */
	uint64_t order; /* install order: with equal prefixes the newest SA (a rekey) wins */
	bool soft_told; /* the soft lifetime's passing reached sa_set.soft_life */
};

/*
 * The projection of remote selectors. others: how many other installed SAs
 * hold an equal remote selector. add: 0 or -errno (logged by the hook);
 * release: on remove (rollback false) or when an install is undone (true).
 */
struct sa_set_hooks {
	int (*add)(void *arg, const struct child_ts *ts, uint32_t others);
	void (*release)(void *arg, const struct child_ts *ts, uint32_t others, bool rollback);
};

/*
 * The first member of its dataplane, so that the dataplane's pointer, the
 * child_sa_ops arg, is also the set's (SA_SET_CHILD_OPS).
 */
struct sa_set {
	const char *name;   /* log prefix: "dataplane", "afxdp" */
	const char *ifname; /* for the install log line; NULL: none */
	const struct sa_set_hooks *hooks;
	void *arg;
	struct spi_table spis;
	struct sa_set_sa *sas[SA_SET_MAX];
	unsigned n;
	uint64_t next_order;
	size_t (*path_mtu)(struct tcp_conn *conn); /* NULL: no path limits (sa_set_path_mtu_fn) */
	bool (*soft_life)(void *arg, uint32_t spi_in); /* NULL: nobody to tell (sa_set_soft_life_fn) */
	void *soft_life_arg;
	struct log_ratelimit rl;
};

/* The addresses of an IPv4 or IPv6 packet, pointing into it. */
struct ip_addrs {
	uint8_t family;
	const uint8_t *src, *dst;
};

/*
 * The packet's addresses. With ip_len, also its length by its own header (an
 * Ethernet frame may carry padding), false unless it is a whole packet.
 */
bool ip_addrs_parse(const uint8_t *p, size_t len, struct ip_addrs *a, size_t *ip_len);

/* 0, -EINVAL or -ENOMEM. */
must_check int sa_set_init(struct sa_set *set, const char *name, const struct sa_set_hooks *hooks, void *arg);
/* Removes every SA (through the hooks), then frees the SPI table. */
void sa_set_free(struct sa_set *set);

/* child_sa_ops on a struct sa_set * (arg): install does both directions and
 * the projection, or returns -errno with nothing left half-done. */
int sa_set_install(void *set, const struct child_sa *csa);
void sa_set_update_conn(void *set, uint32_t spi_in, struct tcp_conn *conn);
void sa_set_remove(void *set, uint32_t spi_in);
int sa_set_counters(void *set, uint32_t spi_in, struct child_sa_counters *out);
#define SA_SET_CHILD_OPS                                                                                     \
	{ .install = sa_set_install, .update_conn = sa_set_update_conn, .remove = sa_set_remove,              \
	  .counters = sa_set_counters }

/* How big outer packets on a connection may be (0: a stream, no limit): the transport knows; the set
 * (either dataplane, whose first member it is) asks at install and on every move to a new path. */
void sa_set_path_mtu_fn(void *set, size_t (*path_mtu)(struct tcp_conn *conn));

/*
 * Who hears that an SA passed a soft lifetime the dataplane counts (RFC 4301 section 4.4.2.1:
 * sequence numbers near exhaustion, or bytes, either direction), so IKE rekeys it before the hard
 * limit refuses packets. Called on the dataplane thread, once per SA while it returns true (false:
 * not passed on, asked again at the SA's next packet).
 */
void sa_set_soft_life_fn(void *set, bool (*soft_life)(void *arg, uint32_t spi_in), void *arg);
void sa_set_tell_soft_life(struct sa_set *set, struct sa_set_sa *sa);
/* After each packet sealed or opened with sa: the soft lifetime's passing told, once. */
static inline void sa_set_check_life(struct sa_set *set, struct sa_set_sa *sa)
{
	if (unlikely((sa->out.soft_expired || sa->in.soft_expired) && !sa->soft_told))
		sa_set_tell_soft_life(set, sa);
}

/* Outbound: the SA whose selector pair holds the packet; longest prefix, then newest, wins. */
struct sa_set_sa *sa_set_lookup(const struct sa_set *set, const struct ip_addrs *a);

/*
 * Before sealing pkt (a whole IP packet, checksums complete) into sa: over a UDP path a TCP SYN gets
 * its MSS clamped to what fits (esp.mss_clamped), and a packet too big for the path that must not be
 * fragmented gets its ICMP error built into icmp (esp.too_big): its length > 0, and pkt is not to be
 * sent. 0: send pkt (a big one without DF, or an IPv6 one of at most 1280 bytes, is sent, and the outer
 * packet fragmented).
 */
ssize_t sa_set_fit(struct sa_set_sa *sa, uint8_t *pkt, size_t len, uint8_t *icmp, size_t cap);

/*
 * The open path, cut for esp_batch (see esp.h): the SPI's SA found and esp
 * checked up to the ICV, to be opened at out (NULL: in place, esp writable). 1: open
 * it (esp_decap_open), then sa_set_open_finish; 0: dropped and counted in
 * stats.esp; -EKEYEXPIRED (the SA is expired) for the caller's own counters.
 */
ssize_t sa_set_open_prepare(struct sa_set *set, const uint8_t *esp, size_t len, uint8_t *out, size_t cap,
			    struct esp_open_job *j);
/*
 * After esp_decap_open: checks the inner packet (at j->out) against its SA's
 * selectors (whole-packet parsing when ip_len is given, see ip_addrs_parse).
 * The inner length (> 0) with its addresses in *a; 0 when dropped and counted
 * in stats.esp (or a dummy packet); -EKEYEXPIRED (SA expired) or -EACCES
 * (outside the selectors) for the caller's own counters.
 */
ssize_t sa_set_open_finish(struct sa_set *set, const struct esp_open_job *j, struct ip_addrs *a, size_t *ip_len);

#endif
