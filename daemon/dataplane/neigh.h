/*
 * Next-hop MAC addresses for decrypted packets leaving through AF_XDP: the
 * kernel's route to the inner destination (RTM_GETROUTE: output interface,
 * gateway) and that next hop's neighbour entry (RTM_GETNEIGH), kept a short
 * while in a small cache so the kernel stays the only ARP/ND speaker.
 */
#ifndef IKETCP_DATAPLANE_NEIGH_H
#define IKETCP_DATAPLANE_NEIGH_H

#include <stdbool.h>
#include <stdint.h>

#include "iketcp/compiler.h"

#define NEIGH_CACHE_SIZE 256   /* direct-mapped by destination */
#define NEIGH_TTL_MS 1000      /* a resolved next hop is trusted this long */
#define NEIGH_MISS_TTL_MS 100  /* an unresolved one is asked again after this */

struct neigh_entry {
	uint64_t expires_ms; /* 0: empty */
	uint8_t family;
	bool resolved;       /* mac valid */
	uint8_t dst[16];
	int oif;
	uint8_t mac[6];
};

struct neigh {
	int fd;
	uint32_t seq;
	struct neigh_entry cache[NEIGH_CACHE_SIZE];
	uint64_t queries; /* netlink round trips, for tests */
};

/* 0 or -errno. */
must_check int neigh_open(struct neigh *n);
void neigh_close(struct neigh *n);

/*
 * The next hop toward dst (4 or 16 bytes by family): *oif the output interface
 * and, when it returns 0, mac its link-layer address. -EHOSTUNREACH: no route;
 * -ENOENT: routed through *oif but the neighbour is not (yet) resolved.
 */
int neigh_lookup(struct neigh *n, uint8_t family, const uint8_t *dst, uint64_t now_ms, int *oif,
		 uint8_t mac[6]);

/* Forgets every cached answer. */
void neigh_flush(struct neigh *n);

/* Parsers of the kernel's replies, exposed for unit tests and fuzzing (untrusted-bytes discipline). */
/* RTM_NEWROUTE payload (rtmsg + attributes): oif and gateway (gw_len 0 when on-link). 0 or -EBADMSG. */
int neigh_parse_route(const uint8_t *p, size_t len, uint8_t family, int *oif, uint8_t gw[16], unsigned *gw_len);
/* RTM_NEWNEIGH payload (ndmsg + attributes): 0 with mac when usable, -ENOENT when not, -EBADMSG. */
int neigh_parse_neigh(const uint8_t *p, size_t len, uint8_t mac[6]);

#endif
